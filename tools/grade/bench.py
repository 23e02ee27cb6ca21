"""The grading bench: CPU per submission's code tests, and the notebook re-execution's cost.

``python -m tools.grade.bench [--n 20] [--jobs 2] [--notebooks 1]`` (a row of
``make bench``); ``python -m tools.grade.bench --class 300 [--jobs 2]`` grades a whole
generated class instead, notebooks included (see :func:`bench_class`).

The default run generates ``n`` submissions from the reference (right answers, wrong
ones and the untouched stubs, in turn), grades their code tests with the real hidden
tests in the real sandbox, and reports

- CPU seconds per submission, all in: sandboxes, the student's code, judging, unpacking
  (every process's CPU, from ``RUSAGE_CHILDREN``); the target is at most 5 s;
- the batch's wall time, and what it gives for 300 submissions with the same ``jobs``
  (target: 15 minutes with JOBS=2 on 2 cores);
- then the notebook re-execution's CPU and wall seconds, for ``--notebooks`` submissions.

Timings on a shared machine vary: the bench prints the load average beside them. With
``--docs docs/speed.md`` (what ``make bench`` passes) it also writes its table into that
page's generated section ``grade-bench``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import sys
import tempfile
import time
import zipfile
from collections import Counter
from pathlib import Path

from tools.release import pysource

from . import driver, sandbox

SOFTMAX = "cs231n/classifiers/softmax.py"
TARGET_CPU = 5.0  # seconds of CPU per submission's code tests
TARGET_300 = 15 * 60.0  # seconds for 300 submissions' code tests with JOBS=2
TARGET_CLASS = 30 * 60.0  # seconds for 300 submissions, notebooks included, with JOBS=2
HANG_EVERY, SLOW_EVERY = 100, 100  # one hang and one slow answer per 100 submissions


def _variants(edition: Path) -> dict[str, dict[str, str]]:
    """Whole-file sources of the student files for a few kinds of submission."""
    reference = {p: (driver.REPO / p).read_text() for p in driver.STUDENT_FILES}
    stubs = {p: (edition / p).read_text() for p in driver.STUDENT_FILES}
    text = reference[SOFTMAX]
    bodies = pysource.block_bodies(text, SOFTMAX)
    global_max = [bodies[0], bodies[1].replace("max(axis=1, keepdims=True)", "max()")]
    no_reg = [b.replace("reg * np.sum(W * W)", "0.0") for b in bodies]
    return {
        "right": reference,
        "stubs": stubs,
        "global_max": {**reference, SOFTMAX: pysource.replace_bodies(text, SOFTMAX, global_max)},
        "no_reg": {**reference, SOFTMAX: pysource.replace_bodies(text, SOFTMAX, no_reg)},
    }


# A right naive loss that is slow: every score a Python sum over the features. Hidden
# tests' problems are small, so it passes them; the notebook's calls on the bundled data
# take seconds each.
SLOW_NAIVE = """\
    num_train, dim = X.shape
    num_classes = W.shape[1]
    for i in range(num_train):
        scores = np.array([sum(X[i, d] * W[d, k] for d in range(dim)) for k in range(num_classes)])
        scores = scores - scores.max()
        probs = np.exp(scores) / np.sum(np.exp(scores))
        loss += -np.log(probs[y[i]])
        probs[y[i]] -= 1
        dW += np.outer(X[i], probs)
    loss = loss / num_train + reg * np.sum(W * W)
    dW = dW / num_train + 2 * reg * W
"""
HANG_NAIVE = "    while True:\n        pass\n"


def _class_variants(edition: Path) -> dict[str, dict[str, str]]:
    """The bench's variants plus a hang and a slow right answer in the naive loss."""
    variants = _variants(edition)
    text = variants["right"][SOFTMAX]
    bodies = pysource.block_bodies(text, SOFTMAX)
    for name, naive in (("hang", HANG_NAIVE), ("slow", SLOW_NAIVE)):
        replaced = pysource.replace_bodies(text, SOFTMAX, [naive, *bodies[1:]])
        variants[name] = {**variants["right"], SOFTMAX: replaced}
    variants["nb_hang"] = variants["right"]  # right code; the notebook's search hangs
    return variants


def class_kinds(n: int) -> list[str]:
    """The kind of each of ``n`` generated submissions: in every eight, five right, two
    wrong and one untouched; in every hundred, one hang in the code, one hang in the
    notebook's search cell and one slow answer (at least one of each)."""
    cycle = ["right", "right", "global_max", "right", "stubs", "right", "no_reg", "right"]
    kinds = [cycle[i % len(cycle)] for i in range(n)]
    for i in range(HANG_EVERY // 3, n, HANG_EVERY):
        kinds[i] = "hang"
    for i in range(HANG_EVERY // 2, n, HANG_EVERY):
        kinds[i] = "nb_hang"
    for i in range(2 * SLOW_EVERY // 3, n, SLOW_EVERY):
        kinds[i] = "slow"
    for spot, kind in ((1, "hang"), (2, "slow"), (3, "nb_hang")):
        if n > spot and kind not in kinds:
            kinds[spot] = kind
    return kinds


# The search grids of generated notebooks: most keep the reference's, others pick their
# own log-spaced values, as students do. Every new configuration costs the grader a run.
REFERENCE_GRID = (
    "    learning_rates = [3e-6, 1e-5, 3e-5]\n",
    "    regularization_strengths = [1e1, 3e1, 1e2]\n",
)
OTHER_GRIDS = (
    ("[1e-6, 1e-5, 1e-4]", "[1e0, 1e1, 1e2]"),
    ("[5e-6, 1e-5, 2e-5]", "[3e0, 3e1, 3e2]"),
    ("[1e-6, 3e-6, 1e-5, 3e-5]", "[1e1, 3e1, 1e2]"),
    ("[3e-6, 1e-5, 3e-5]", "[1e0, 1e1, 1e2, 1e3]"),
    ("[2e-6, 5e-6, 1e-5, 2e-5, 5e-5]", "[5e0, 5e1, 5e2]"),
)


def _notebook(kind: str, i: int, reference: dict, stub: bytes) -> bytes:
    """The notebook of the ``i``-th generated submission of ``kind``."""
    if kind == "stubs":
        return stub
    nb = json.loads(json.dumps(reference))
    search = next(cell for cell in nb["cells"] if cell.get("id") == "search")
    lines = search["source"]
    if kind == "nb_hang":
        search["source"] = ["# TODO: the search\n", "while True:\n", "    pass\n"]
    elif i % 10 >= 5:
        lrs, regs = OTHER_GRIDS[i % 10 - 5]
        at = lines.index(REFERENCE_GRID[0])
        lines[at] = f"    learning_rates = {lrs}\n"
        lines[at + 1] = f"    regularization_strengths = {regs}\n"
    return json.dumps(nb, indent=1).encode()


def make_submissions(
    folder: Path, edition: Path, n: int, kinds: list[str] | None = None
) -> list[Path]:
    """``n`` zips in the layout ``make submission`` writes, cycling through the variants
    (or of the given ``kinds``)."""
    every = _class_variants(edition)
    variants = list(_variants(edition).items())
    reference = json.loads((driver.REPO / "notebooks" / "softmax.ipynb").read_text())
    stub = (edition / "notebooks" / "softmax.ipynb").read_bytes()
    zips = []
    for i in range(n):
        name, files = (kinds[i], every[kinds[i]]) if kinds else variants[i % len(variants)]
        archive = folder / f"s{i:03d}-{name}.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for rel, text in files.items():
                zf.writestr(rel, text)
            zf.writestr("notebooks/softmax.ipynb", _notebook(name, i, reference, stub))
        zips.append(archive)
    return zips


# A notebook "test" that does nothing: the code-tests batch is timed on its own.
def grade_notebook(workdir: Path, run) -> object:
    from .rubric import TestResult

    return TestResult("notebook", 0.0, 0.0, "not run by the bench", "visible")


def answers_markdown(nb_path: Path) -> str:
    return ""


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    own = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime + own.ru_utime + own.ru_stime


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.grade.bench", description=__doc__)
    parser.add_argument("--n", type=int, default=20, help="submissions to generate")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--notebooks", type=int, default=1, help="notebooks to re-execute")
    parser.add_argument(
        "--class", dest="klass", type=int, default=0, help="grade a class of N, notebooks too"
    )
    parser.add_argument(
        "--docs", type=Path, help="also write the table into this page (docs/speed.md)"
    )
    args = parser.parse_args(argv)
    if args.klass:
        return bench_class(args.klass, args.jobs, args.docs)
    print(f"grading bench: {args.n} generated submissions, JOBS={args.jobs}")
    print(f"  sandbox: {sandbox.isolation().detail}")
    with tempfile.TemporaryDirectory(prefix="cs231n-gradebench-") as tmp:
        tmp = Path(tmp)
        edition = driver.build_edition(tmp / "edition")
        subs = tmp / "submissions"
        subs.mkdir()
        make_submissions(subs, edition, args.n)
        options = driver.Options(
            submissions=subs,
            out=tmp / "out",
            jobs=args.jobs,
            notebook_tests=__name__,
            progress=False,
        )
        load = os.getloadavg()[0]
        cpu0, wall0 = _children_cpu(), time.perf_counter()
        driver.grade_batch(options, edition=edition)
        wall = time.perf_counter() - wall0
        cpu = _children_cpu() - cpu0
        timings = [
            json.loads(p.read_text())["extra_data"]["timing"].get("code", {})
            for p in sorted((tmp / "out").rglob("results.json"))
        ]
        per_test = [t.get("cpu", 0.0) + t.get("judge_cpu", 0.0) for t in timings]
        typical, worst = statistics.median(per_test), max(per_test)
        all_in = cpu / args.n
        by_cpu = 300 * all_in / min(args.jobs, os.cpu_count() or 1)
        by_wall = wall / args.n * 300
        print(f"  load average before the run: {load:.1f} ({os.cpu_count()} cores)")
        print(
            f"  code tests, CPU per submission (sandboxed commands + judging): median "
            f"{typical:.2f} s, max {worst:.2f} s (target <= {TARGET_CPU:g} s) "
            f"{'ok' if worst <= TARGET_CPU else 'OVER'}"
        )
        print(f"    all processes, worker start-up included, averaged: {all_in:.2f} s")
        print(
            f"  batch wall: {wall:.1f} s for {args.n}. 300 submissions: {by_cpu / 60:.1f} min "
            f"from CPU on idle cores, {by_wall / 60:.1f} min from this run's wall "
            f"(target <= {TARGET_300 / 60:g} min) {'ok' if by_cpu <= TARGET_300 else 'OVER'}"
        )
        notebooks = _bench_notebooks(tmp, edition, args.notebooks) if args.notebooks > 0 else []
    notebook_cpu = [cpu for _, cpu in notebooks]
    if args.docs:
        rows = [
            (
                "CPU per submission, code tests (sandboxed commands and judging)",
                f"median {typical:.2f} s, max {worst:.2f} s",
                f"<= {TARGET_CPU:g} s",
            ),
            ("the same, every process counted, worker start-up included", f"{all_in:.2f} s", "-"),
            (
                f"300 submissions' code tests, JOBS={args.jobs}",
                f"{by_cpu / 60:.1f} min from that CPU, {by_wall / 60:.1f} min from the batch's "
                f"wall time ({wall:.1f} s for {args.n})",
                f"<= {TARGET_300 / 60:g} min",
            ),
            *(row for row, _ in notebooks),
        ]
        context = (
            f"Measured by one `make bench` run on {time.strftime('%Y-%m-%d')} "
            f"({os.cpu_count()} cores, load average {load:.1f} as it began; sandbox: "
            f"{sandbox.isolation().detail}), with {args.n} submissions: right, wrong and "
            "untouched ones in turn."
        )
        cost = ""
        if notebook_cpu:
            per_notebook = statistics.median(notebook_cpu)
            cost = (
                f"\n\nWith nothing to reuse, the notebook costs about "
                f"{per_notebook / all_in:.0f} times the code tests. In a class most of its "
                "search's training runs are kept ones (see the class table below)."
            )
        write_docs(args.docs, context, rows, cost)
        print(f"  wrote the table into {args.docs}")
    return 0


def write_docs(page: Path, context: str, rows: list[tuple[str, str, str]], after: str) -> None:
    """Write the grading bench's table into page's generated section grade-bench."""
    from tools.docs_section import write_section

    lines = [("measurement", "measured", "target"), ("---", "---", "---"), *rows]
    table = "\n".join("| " + " | ".join(row) + " |" for row in lines)
    write_section(page, "grade-bench", context + "\n\n" + table + after)


def _bench_notebooks(tmp: Path, edition: Path, count: int) -> list[tuple[tuple, float]]:
    """Re-execute count notebooks; for each, a table row (measurement, measured, target)
    and its CPU seconds."""
    try:
        import tools.grade.notebook  # noqa: F401 - the real notebook test, if it is there
    except ImportError as error:
        print(f"  notebook re-execution: not measured ({error})")
        return []
    subs = tmp / "notebooks"
    subs.mkdir()
    zips = make_submissions(subs, edition, 1)
    for i in range(1, count):
        (subs / f"s{i:03d}-right.zip").write_bytes(zips[0].read_bytes())
    options = driver.Options(submissions=subs, out=tmp / "nb-out", jobs=1, progress=False)
    driver.grade_batch(options, edition=edition)
    rows = []
    for path in sorted((tmp / "nb-out").rglob("results.json")):
        data = json.loads(path.read_text())
        nb = data["extra_data"]["timing"].get("notebook", {})
        cpu, wall, status = nb.get("cpu", 0), nb.get("wall", 0), data["extra_data"]["status"]
        print(
            f"  notebook re-execution ({path.parent.name}): CPU {cpu:.1f} s, "
            f"wall {wall:.1f} s, status {status}"
        )
        row = (
            f"notebook run, with no kept training runs to reuse ({path.parent.name})",
            f"{cpu:.1f} s CPU, {wall:.1f} s wall, status {status}",
            "-",
        )
        rows.append((row, cpu))
    return rows


def bench_class(n: int, jobs: int, docs: Path | None = None) -> int:
    """Grade ``n`` generated submissions the way ``make grade`` does, notebooks included.

    The class is mostly right answers, with wrong ones, untouched stubs, and one hang and
    one slow right answer in every hundred (see :func:`class_kinds`). Prints the batch's
    wall time, what it gives for 300 at the same ``jobs``, and each kind's median seconds
    per phase (from results.json's timing). With ``docs``, writes them into that page's
    generated section ``class-bench``.
    """
    kinds = class_kinds(n)
    print(f"grading bench, a class: {n} generated submissions, notebooks included, JOBS={jobs}")
    print(f"  kinds: {dict(sorted(Counter(kinds).items()))}")
    print(f"  sandbox: {sandbox.isolation().detail}")
    with tempfile.TemporaryDirectory(prefix="cs231n-classbench-") as tmp:
        tmp = Path(tmp)
        edition = driver.build_edition(tmp / "edition")
        subs = tmp / "submissions"
        subs.mkdir()
        make_submissions(subs, edition, n, kinds)
        options = driver.Options(submissions=subs, out=tmp / "out", jobs=jobs, progress=False)
        load = os.getloadavg()[0]
        cpu0, wall0 = _children_cpu(), time.perf_counter()
        driver.grade_batch(options, edition=edition)
        wall = time.perf_counter() - wall0
        cpu = _children_cpu() - cpu0
        per_kind: dict[str, list[dict]] = {}
        for path in sorted((tmp / "out").rglob("results.json")):  # wherever the layout puts it
            data = json.loads(path.read_text())
            kind = path.parent.name.split("-", 1)[1]
            timing = data["extra_data"].get("timing", {})
            per_kind.setdefault(kind, []).append(
                {
                    "status": data["extra_data"]["status"],
                    "code": timing.get("code", {}).get("wall", 0.0),
                    "notebook": timing.get("notebook", {}).get("wall", 0.0),
                    "notebook_cpu": timing.get("notebook", {}).get("cpu", 0.0),
                }
            )
    scaled = wall / n * 300
    print(f"  load average before the run: {load:.1f} ({os.cpu_count()} cores)")
    print(f"  batch wall: {wall:.0f} s for {n}; CPU of every process: {cpu:.0f} s")
    by_cpu = 300 * cpu / n / min(jobs, os.cpu_count() or 1)
    print(
        f"  300 submissions at JOBS={jobs}: {scaled / 60:.1f} min from this run's wall, "
        f"{by_cpu / 60:.1f} min from its CPU on idle cores "
        f"(target <= {TARGET_CLASS / 60:g} min) {'ok' if scaled <= TARGET_CLASS else 'OVER'}"
    )
    table = [
        (
            "kind",
            "submissions",
            "median wall, code tests",
            "median wall (CPU), notebook",
            "statuses",
        ),
        ("---", "---", "---", "---", "---"),
    ]
    for kind, rows in sorted(per_kind.items()):
        statuses = dict(Counter(r["status"] for r in rows))
        print(
            f"  {kind:>10}: {len(rows):3d}, median wall code {_median(rows, 'code'):.1f} s, "
            f"notebook {_median(rows, 'notebook'):.1f} s "
            f"(CPU {_median(rows, 'notebook_cpu'):.1f} s); statuses {statuses}"
        )
        table.append(
            (
                kind,
                str(len(rows)),
                f"{_median(rows, 'code'):.1f} s",
                f"{_median(rows, 'notebook'):.1f} s ({_median(rows, 'notebook_cpu'):.1f} s)",
                ", ".join(f"{k} {v}" for k, v in sorted(statuses.items())),
            )
        )
    if docs:
        from tools.docs_section import write_section

        verdict = "within" if scaled <= TARGET_CLASS else "over"
        text = (
            f"Measured by `python -m tools.grade.bench --class {n} --jobs {jobs}` on "
            f"{time.strftime('%Y-%m-%d')} ({os.cpu_count()} cores, load average {load:.1f} "
            f"as it began; sandbox: {sandbox.isolation().detail}): {n} generated "
            f"submissions, notebooks included, graded as `make grade` grades them, in "
            f"**{wall / 60:.1f} minutes** at `JOBS={jobs}` ({cpu:.0f} s of CPU in all "
            f"processes). For 300 that is {scaled / 60:.1f} minutes, {verdict} the "
            f"target of {TARGET_CLASS / 60:g}.\n\n"
            + "\n".join("| " + " | ".join(row) + " |" for row in table)
        )
        write_section(docs, "class-bench", text)
        print(f"  wrote the class table into {docs}")
    return 0


def _median(rows: list[dict], key: str) -> float:
    return statistics.median(r[key] for r in rows) if rows else 0.0


if __name__ == "__main__":
    sys.exit(main())
