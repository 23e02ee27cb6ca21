"""Grade a folder of submissions: ``make grade SUBMISSIONS=dir [OUT=grading] [JOBS=2]``.

For each ``*.zip`` (the student id is the file name less ``.zip``) the driver

1. reads the allow-listed files out of the zip (:mod:`tools.grade.unpack`): the files of
   ``cs231n/`` that hold student-written blocks, and ``notebooks/softmax.ipynb``;
2. lays them over a clean student edition, built once from this checkout, so that
   ``checks.py`` and every other file are the instructor's own;
3. runs the hidden code tests and the notebook re-execution, which run the student's code
   only through :func:`tools.grade.sandbox.run`; whatever reads the submission's content
   (the notebook, the blocks similarity compares) runs in sandboxes of its own too
   (:mod:`tools.grade.contained`), so the worker holds no more of it than capped outputs;
4. writes ``OUT/students/<student>/results.json`` (Gradescope's schema), ``feedback.md``
   and ``answers.md`` (the TA page), then ``OUT/grades.csv`` and ``OUT/similarity.csv``.
   Per-student files live in a folder of their own, so no student id can name a file of
   the grader's.

Each submission is graded in a process of its own (``jobs`` at a time), forked for it and
holding its scratch folder on a size-limited tmpfs (``disk`` bytes; where mounting needs a
root that is missing, the sandbox counts the folder's size instead). A submission that
breaks anything still gets its row, with the worst thing that happened as its status; one
whose process dies (killed, out of memory) gets ``crashed``, and the batch goes on.
"""

from __future__ import annotations

import csv
import ctypes
import dataclasses
import importlib
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import connection, get_context
from pathlib import Path

from cs231n import _threads
from tools.release.stubs import TASKS

from . import contained, judging, rubric, sandbox, similarity
from .rubric import TestResult
from .status import STATUSES, worst
from .unpack import NOTEBOOK, InvalidSubmission, unpack

REPO = Path(__file__).resolve().parents[2]
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
# A checkout builds from git's tracked files; Gradescope's unpacked autograder has no
# .git, and its files came from exactly such a build (tools/grade/gradescope_pack.py).
_IN_GIT = (REPO / ".git").exists()
STUDENT_FILES = tuple(sorted({key[0] for key in TASKS}))  # the files with TODO blocks
MANUAL_MAX_ROW = "max"
STUDENTS = "students"  # OUT/students/<id>/: every file of one student, and nothing else


class GradingError(Exception):
    """Grading cannot start (bad folder, bad MANUAL file); says what to fix."""


@dataclass(frozen=True)
class Options:
    """One ``make grade`` run. ``memory`` in bytes, times in seconds."""

    submissions: Path
    out: Path
    jobs: int = 2
    student: str | None = None
    manual: Path | None = None
    cpu: float = 60.0  # per sandboxed command of the code tests
    notebook_cpu: float = 125.0  # the notebook's re-execution: 5x the reference's CPU
    memory: int = 4 * sandbox.GB  # address space per process
    disk: int = 512 * sandbox.MB  # what one submission's scratch folders may hold
    disk_counted: bool = True  # the sandbox counts the disk (no tmpfs of its own holds it)
    submission_wall: float = 3600.0  # seconds for one submission's process, all of it
    max_wall: float | None = None  # caps every wall-clock limit the tests ask for
    grade_code: Callable = judging.grade_code  # (workdir, run) -> a TestResult per item
    load_rubric: Callable = rubric.load_rubric  # () -> the rubric's items
    notebook_tests: str = "tools.grade.notebook"  # grade_notebook and answers_markdown
    progress: bool = True


@dataclass
class Graded:
    """One submission's row: points per rubric item, status and where it came from."""

    student: str
    points: dict[str, float]
    status: str
    blocks: dict = field(default_factory=dict)


def student_dir(out: Path, student: str) -> Path:
    """Where one student's files go: ``OUT/students/<student>/``."""
    return out / STUDENTS / student


def fmt(x: float) -> str:
    """Points as people write them: 10, 2.5, 0.333."""
    return format(round(float(x), 3), "g")


# --- the clean student edition ----------------------------------------------------------


def build_edition(dest: Path) -> Path:
    """Write the student edition of this checkout to ``dest`` (tools/release)."""
    from tools.release import build

    build.write_tree(build.build_edition(REPO, git=_IN_GIT), dest)
    return dest


def _link_or_copy(src: str, dst: str) -> None:
    # The bundled data is shared read-only between submissions; code is copied, so a
    # submission can never change another's files.
    if "/datasets/" in src:
        try:
            os.link(src, dst)
            return
        except OSError:
            pass
    shutil.copy2(src, dst)


def scratch_copy_files(files: dict[str, bytes], dest: Path) -> None:
    """Write the student's allow-listed files alone into ``dest`` (paths kept)."""
    for rel, data in files.items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def _submitted_files(folder: Path) -> dict[str, Path]:
    return {p.relative_to(folder).as_posix(): p for p in folder.rglob("*") if p.is_file()}


def scratch_copy(edition: Path, files: dict[str, bytes] | Path, dest: Path) -> Path:
    """``dest`` = the clean edition with the student's allow-listed files laid over it.

    ``files`` maps paths to bytes, or is a folder of them (:func:`scratch_copy_files`).
    """
    shutil.copytree(edition, dest, copy_function=_link_or_copy)
    items = _submitted_files(files).items() if isinstance(files, Path) else files.items()
    for rel, data in items:
        target = dest / rel
        target.unlink(missing_ok=True)
        if isinstance(data, Path):
            shutil.copyfile(data, target)
        else:
            target.write_bytes(data)
    return dest


# --- grading one submission -------------------------------------------------------------


def _modules(options: Options):
    return importlib.import_module(options.notebook_tests)


def _bound_run(workdir: Path, options: Options, timing: dict, phase: str) -> Callable:
    """``run(argv, wall)`` for the tests: the sandbox with this submission's limits.

    Adds each command's CPU and wall seconds to ``timing[phase]``.
    """

    def run(argv: list[str], wall: float, **extra) -> sandbox.RunResult:
        # ``extra``: sandbox.run_limited's keywords (a kernel run's kernel, its folders)
        if options.max_wall is not None:
            wall = min(wall, options.max_wall)
        cpu = options.notebook_cpu if phase == "notebook" else options.cpu
        disk = options.disk if options.disk_counted else None
        limits = sandbox.Limits(wall=wall, cpu=cpu, memory=options.memory, disk=disk)
        result = sandbox.run_limited(argv, workdir, limits, **extra)
        spent = timing.setdefault(phase, {"cpu": 0.0, "wall": 0.0, "runs": 0})
        spent["cpu"] += result.cpu
        spent["wall"] += result.wall
        spent["runs"] += 1
        return result

    return run


def _as_result(result: object) -> TestResult:
    """A code or notebook test's result (from the injected grade_code) as the reports
    need it: every field present and of its type."""
    return TestResult(
        name=str(result.name),
        score=float(result.score),
        max_score=float(result.max_score),
        output=str(getattr(result, "output", "") or ""),
        visibility=str(getattr(result, "visibility", "visible") or "visible"),
        status=str(getattr(result, "status", "ok") or "ok"),
        hint=str(getattr(result, "hint", "") or ""),
    )


def grade_one(archive: Path, options: Options, edition: Path) -> dict:
    """Grade one zip; write its reports into ``options.out``; return its row as a dict.

    Runs in a worker process. Never raises for anything a submission does.
    """
    student = archive.name[: -len(".zip")]
    nb_mod = _modules(options)
    rubric = options.load_rubric()
    tests: list[TestResult] = []
    notes: list[str] = []
    status = "ok"
    blocks: dict = {}
    timing: dict = {}  # CPU and wall seconds of the sandboxed commands, per phase
    answers = "*No notebook was submitted.*\n"
    with tempfile.TemporaryDirectory(prefix="cs231n-grade-") as scratch:
        os.chmod(scratch, 0o711)  # the sandbox user may pass through, not list or write
        try:
            if not STUDENT_ID.fullmatch(student):
                raise InvalidSubmission(
                    f"the file name {archive.name!r} is not a usable student id (letters, "
                    "digits and . _ @ + - only); rename the file and regrade it"
                )
            allowed = set(STUDENT_FILES) | {NOTEBOOK}
            unpacked = unpack(archive, allowed)
            if unpacked.ignored:
                shown = ", ".join(unpacked.ignored[:10])
                more = (
                    f" and {len(unpacked.ignored) - 10} more" if len(unpacked.ignored) > 10 else ""
                )
                notes.append(f"Not graded (only your code and notebook are): {shown}{more}.")
            missing = [p for p in sorted(allowed) if p not in unpacked.files]
            if missing:
                notes.append(f"Missing from the zip (graded as the untouched stub): {missing}.")
        except InvalidSubmission as error:
            status = "invalid"
            notes.append(f"Not graded: {error}")
        if status != "invalid":
            work = scratch_copy(edition, unpacked.files, Path(scratch) / "work")
            submitted = Path(scratch) / "submitted"
            scratch_copy_files(unpacked.files, submitted)
            texts = {
                p: unpacked.files[p].decode("utf-8", "replace")
                for p in STUDENT_FILES
                if p in unpacked.files
            }
            blocks = _blocks(texts, notes)
            if NOTEBOOK in unpacked.files:
                try:
                    answers = nb_mod.answers_markdown(work / NOTEBOOK)
                except Exception as error:  # noqa: BLE001 - a broken notebook is the student's
                    answers = f"*The notebook cannot be read: {str(error)[:500]}*\n"
            del unpacked.files  # the scratch copies hold them; the worker keeps no copy
            sandbox.prepare_workdir(work)
            try:
                judged = time.process_time()
                results = list(options.grade_code(work, _bound_run(work, options, timing, "code")))
                timing.setdefault("code", {})["judge_cpu"] = time.process_time() - judged
                # The code tests could write anything into their folder (checks.py, the
                # notebook): the notebook runs in a fresh copy of what was submitted.
                fresh = scratch_copy(edition, submitted, Path(scratch) / "notebook")
                sandbox.prepare_workdir(fresh)
                # Code that already ran out of time will likely do so in the notebook too:
                # its run gets a short clock, not the whole budget.
                timed_out = {}
                if any(r.status == "timeout" for r in results) and "short" in _parameters(
                    nb_mod.grade_notebook
                ):
                    timed_out = {"short": True}
                results.append(
                    nb_mod.grade_notebook(
                        fresh, _bound_run(fresh, options, timing, "notebook"), **timed_out
                    )
                )
                tests = [_as_result(r) for r in results]
            except Exception:  # noqa: BLE001 - a grader bug must not stop the batch
                detail = traceback.format_exc()
                print(f"grade: grader error on {student}:\n{detail}", file=sys.stderr)
                notes.append("The grader failed on this submission; the instructor is told.")
                tests = []
                status = "crashed"
    status = worst([status, *(t.status for t in tests)])
    by_name = {t.name: t for t in tests}
    points: dict[str, float] = {}
    for item in rubric:
        test = by_name.get(item.name)
        points[item.name] = min(float(item.points), max(0.0, test.score)) if test else 0.0
    if STUDENT_ID.fullmatch(student):
        _write_reports(
            options.out, student, rubric, by_name, points, status, notes, answers, timing
        )
        _write_atomic(
            student_dir(options.out, student) / "blocks.json", json.dumps(blocks, indent=1)
        )
    return {
        "student": student,
        "points": points,
        "status": status,
        "timing": timing,
        "blank_answers": _blank_answers(answers),
    }


def _blank_answers(page: str) -> str:
    """``"2 of 3"`` written answers left blank, from the answers page ('' if unknown)."""
    from .judge import blank_answers

    found = blank_answers(page)
    return f"{found[0]} of {found[1]}" if found else ""


def _parameters(function: Callable) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)


BLOCKS_LIMIT = 4 << 20  # bytes of normalised blocks handed back for similarity


def _blocks(texts: dict[str, str], notes: list[str]) -> dict[str, str]:
    """The student's normalised blocks, extracted in a sandbox of its own (capped)."""
    try:
        found = contained.run_judge(
            "blocks",
            {"files.json": json.dumps(texts).encode()},
            {"blocks.json": BLOCKS_LIMIT},
        )
        raw = json.loads(found["blocks.json"])
    except (ValueError, contained.JudgeFailed) as error:
        notes.append(f"Your code was not compared with others' ({str(error)[:200]}).")
        return {}
    if not isinstance(raw, dict):
        return {}
    return {str(k): str(v) for k, v in raw.items() if isinstance(v, str)}


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def results_json(
    rubric: list,
    by_name: dict[str, TestResult],
    points: dict[str, float],
    status: str,
    notes: list[str],
) -> dict:
    """Gradescope's autograder results: one test per rubric item; ``score`` is their sum.

    Points from a MANUAL file are added later by :func:`merge_manual`.
    """
    iso = sandbox.isolation()
    tests = []
    for item in rubric:
        test = by_name.get(item.name)
        output = test.output if test else "not run: " + (notes[-1] if notes else "no result")
        if test and test.status != "ok":
            output = f"[{test.status}] {output}"
        tests.append(
            {
                "name": item.name,
                "score": points[item.name],
                "max_score": float(item.points),
                "status": "passed" if points[item.name] >= float(item.points) else "failed",
                "output": output,
                "visibility": item.visibility,
            }
        )
    total = round(sum(points.values()), 6)
    full = sum(1 for t in tests if t["status"] == "passed")
    summary = [
        f"Autograded score {fmt(total)} of {fmt(sum(float(i.points) for i in rubric))}; "
        f"{full} of {len(tests)} tests earned full points (hidden ones included)."
    ]
    if status != "ok":
        summary.append(f"Status: {status}.")
    summary += notes
    return {
        "score": total,
        "output": "\n".join(summary),
        "tests": tests,
        "extra_data": {
            "status": status,
            "network_isolation": iso.network,
            "isolation": iso.detail,
        },
    }


def feedback_markdown(
    student: str,
    rubric: list,
    by_name: dict[str, TestResult],
    points: dict[str, float],
    status: str,
    notes: list[str],
) -> str:
    """The student's feedback: hints for failed public tests; names and points for hidden."""
    total = sum(points.values())
    lines = [
        f"# Feedback for {student}",
        "",
        f"Autograded score: **{fmt(total)} / {fmt(sum(float(i.points) for i in rubric))}**"
        + ("" if status == "ok" else f" (status: {status})"),
        "",
    ]
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    lines += ["| test | points | what to look at |", "|---|---|---|"]
    for item in rubric:
        test = by_name.get(item.name)
        got = f"{fmt(points[item.name])} / {fmt(item.points)}"
        if test is None:
            why = "not run"
        elif points[item.name] >= float(item.points):
            why = "passed"
        elif _is_hidden(item):
            why = "hidden test: its inputs are not shown"
        else:
            why = test.hint or (test.output.strip().splitlines() or ["failed"])[-1]
        if test is not None and test.status != "ok":
            why = f"{test.status}: {why}"
        lines.append(f"| {item.name} | {got} | {_cell(why)} |")
    return "\n".join(lines) + "\n"


def _is_hidden(item: object) -> bool:
    # A hidden test whose code a public self-check also tests may show its hint (which
    # points to that check); any other shows only its name and points.
    return item.visibility == "hidden" or not getattr(item, "public_check", False)


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:500]


def _write_reports(out, student, rubric, by_name, points, status, notes, answers, timing):
    folder = student_dir(out, student)
    result = results_json(rubric, by_name, points, status, notes)
    result["extra_data"]["timing"] = timing
    _write_atomic(folder / "results.json", json.dumps(result, indent=2) + "\n")
    _write_atomic(
        folder / "feedback.md", feedback_markdown(student, rubric, by_name, points, status, notes)
    )
    _write_atomic(folder / "answers.md", f"# {student}: written answers\n\n{answers}")


# --- the batch --------------------------------------------------------------------------


def read_manual(path: Path) -> tuple[list[str], dict[str, float], dict[str, dict[str, float]]]:
    """A TA points CSV: ``student`` then one column per item; a row ``max`` gives maxima.

    Returns (items, maxima, points per student). Raises GradingError naming the cell.
    """
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            table = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GradingError(f"MANUAL={path}: cannot read it as CSV ({error})") from error
    if not fields or fields[0] != "student" or len(fields) < 2:
        raise GradingError(
            f"MANUAL={path}: the header must be `student,<item>,...`; found {fields}"
        )
    items = fields[1:]
    maxima: dict[str, float] | None = None
    points: dict[str, dict[str, float]] = {}
    for number, row in enumerate(table, start=2):
        values = {}
        for item in items:
            cell = (row.get(item) or "").strip()
            try:
                values[item] = float(cell) if cell else 0.0
            except ValueError:
                raise GradingError(
                    f"MANUAL={path}, line {number}, column {item!r}: {cell!r} is not a number"
                ) from None
        who = (row.get("student") or "").strip()
        if who == MANUAL_MAX_ROW:
            maxima = values
        else:
            points[who] = values
    if maxima is None:
        raise GradingError(
            f"MANUAL={path}: add a row `{MANUAL_MAX_ROW},<points>,...` with each item's maximum"
        )
    for who, values in points.items():
        for item, value in values.items():
            if not 0 <= value <= maxima[item]:
                raise GradingError(
                    f"MANUAL={path}: {who} has {fmt(value)} for {item!r}, "
                    f"outside 0..{fmt(maxima[item])}"
                )
    return items, maxima, points


TA_SUFFIX = " (TA)"


def merge_manual(out: Path, students: list[str], manual) -> None:
    """Make each results.json carry this run's MANUAL points (none without MANUAL).

    The TAs' items become tests named ``<item> (TA)``, so that ``score`` equals the
    total in grades.csv, also for students not regraded in this run.
    """
    items, maxima, table = manual or ([], {}, {})
    for student in students:
        path = student_dir(out, student) / "results.json"
        if not path.is_file():
            continue
        result = json.loads(path.read_text(encoding="utf-8"))
        tests = [t for t in result["tests"] if not t["name"].endswith(TA_SUFFIX)]
        for item in items:
            got, most = table.get(student, {}).get(item, 0.0), maxima[item]
            tests.append(
                {
                    "name": item + TA_SUFFIX,
                    "score": got,
                    "max_score": most,
                    "status": "passed" if got >= most else "failed",
                    "output": "marked by a TA",
                    "visibility": "after_published",
                }
            )
        result["tests"] = tests
        result["score"] = round(sum(t["score"] for t in tests), 6)
        _write_atomic(path, json.dumps(result, indent=2) + "\n")


def _zips(options: Options) -> list[Path]:
    if not options.submissions.is_dir():
        raise GradingError(
            f"SUBMISSIONS={options.submissions} is not a folder; give the folder of *.zip files"
        )
    if options.student is not None:
        archive = options.submissions / f"{options.student}.zip"
        if not archive.is_file():
            raise GradingError(f"STUDENT={options.student}: there is no {archive}")
        return [archive]
    zips = sorted(p for p in options.submissions.glob("*.zip") if p.is_file())
    if not zips:
        raise GradingError(f"SUBMISSIONS={options.submissions} holds no *.zip file")
    return zips


def grade_batch(options: Options, edition: Path | None = None) -> int:
    """Grade the submissions; write OUT/grades.csv and OUT/similarity.csv. Returns 0."""
    zips = _zips(options)
    manual = read_manual(options.manual) if options.manual else None
    rubric = options.load_rubric()
    options.out.mkdir(parents=True, exist_ok=True)
    rows: dict[str, dict] = {}
    if options.student is not None:
        rows = _read_grades(options.out / "grades.csv", rubric)
    with tempfile.TemporaryDirectory(prefix="cs231n-edition-") as tmp:
        if edition is None:
            edition = build_edition(Path(tmp) / "student")
        for row in _grade_all(zips, options, edition):
            rows[row["student"]] = row
    _write_grades(options.out / "grades.csv", rubric, rows, manual)
    merge_manual(options.out, sorted(rows), manual)
    _write_similarity(options.out, sorted(rows), edition_blocks=_edition_blocks())
    counts = {s: sum(1 for r in rows.values() if r["status"] == s) for s in STATUSES}
    print(
        f"graded {len(zips)} submission(s) into {options.out}/grades.csv: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    )
    return 0


def _grade_all(zips: list[Path], options: Options, edition: Path):
    """Grade each zip in a process of its own, ``options.jobs`` at a time; yield the rows.

    A process that dies without handing back its row (killed, out of memory, past
    ``submission_wall``) gives that submission a ``crashed`` row and reports; the others
    go on.
    """
    import tqdm as tqdm_module

    tqdm_module.tqdm.monitor_interval = 0  # no monitor thread: the grader forks
    bar = tqdm_module.tqdm(
        total=len(zips), desc="grading", unit="submission", disable=not options.progress
    )
    context = get_context("fork" if "fork" in _start_methods() else "spawn")
    queue, running = list(zips), {}
    try:
        while queue or running:
            while queue and len(running) < max(1, options.jobs):
                archive = queue.pop(0)
                running.update([_start(context, archive, options, edition)])
            ready = connection.wait(list(running), timeout=1.0)
            now = time.monotonic()
            for conn in list(running):
                job = running[conn]
                if conn in ready:
                    try:
                        row = conn.recv()
                    except (EOFError, OSError):
                        row = None
                elif now - job["started"] > options.submission_wall:
                    row = None
                else:
                    continue
                del running[conn]
                yield _finish(job, row, options)
                bar.update()
    finally:
        for conn, job in running.items():  # an interrupted batch leaves nothing running
            _kill(job["process"])
            conn.close()
            _clean_scratch(job)
        bar.close()


def _start_methods() -> list[str]:
    from multiprocessing import get_all_start_methods

    return get_all_start_methods()


def _start(context, archive: Path, options: Options, edition: Path):
    scratch = Path(tempfile.mkdtemp(prefix="cs231n-grade-"))
    os.chmod(scratch, 0o711)  # the sandbox user may pass through, not list or write
    token = uuid.uuid4().hex[:12]
    receive, send = context.Pipe(duplex=False)
    process = context.Process(
        target=_submission_process,
        args=(archive, options, edition, scratch, token, send),
        name=f"grade-{archive.name}",
    )
    process.start()
    send.close()
    job = {"process": process, "archive": archive, "scratch": scratch, "token": token}
    job["started"] = time.monotonic()
    return receive, job


def _submission_process(archive, options, edition, scratch, token, send) -> None:
    """The body of one submission's process: its own disk, then :func:`_safe_grade`."""
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # the batch decides when to stop
        # The grader's own judging (oracle, reference runs) shares the usable CPUs, a
        # container's CPU quota included, with the other jobs.
        _threads.limit_blas_threads_for_workers(max(1, options.jobs))
        sandbox.CGROUP_TAG = token + "-"
        if _private_tmpfs(scratch, options.disk):
            options = dataclasses.replace(options, disk_counted=False)
        tempfile.tempdir = str(scratch)  # every scratch folder, the sandbox's own included
        send.send(_safe_grade(archive, options, edition))
    finally:
        send.close()
        os._exit(0)  # no atexit or finaliser of the batch's runs in this copy


def _private_tmpfs(folder: Path, size: int) -> bool:
    """Mount a tmpfs of ``size`` bytes on ``folder``, seen by this process alone.

    A mount namespace of this process's own (as root) holds it: it disappears with the
    process, however that ends. False (nothing mounted) where that is not allowed.
    """
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        return False
    libc = ctypes.CDLL(None, use_errno=True)
    clone_newns, ms_rec, ms_slave = 0x00020000, 16384, 1 << 19
    ms_nosuid, ms_nodev = 2, 4
    if libc.unshare(clone_newns) != 0:
        return False
    if libc.mount(None, b"/", None, ms_rec | ms_slave, None) != 0:
        return False
    data = f"size={int(size)},mode=0711".encode()
    return libc.mount(b"tmpfs", str(folder).encode(), b"tmpfs", ms_nosuid | ms_nodev, data) == 0


def _finish(job: dict, row: dict | None, options: Options) -> dict:
    job["process"].join(timeout=5)
    _kill(job["process"])
    _clean_scratch(job)
    if row is not None:
        return row
    student = job["archive"].name[: -len(".zip")]
    code = job["process"].exitcode
    why = "it ran past its time" if code is None or code == -signal.SIGKILL else f"exit {code}"
    print(f"grade: {job['archive'].name}: the grading process died ({why})", file=sys.stderr)
    row = {"student": student, "points": {}, "status": "crashed"}
    if STUDENT_ID.fullmatch(student):
        try:
            rubric = options.load_rubric()
            points = {item.name: 0.0 for item in rubric}
            note = "The grader's process for this submission died; the instructor is told."
            _write_reports(options.out, student, rubric, {}, points, "crashed", [note], "", {})
        except Exception:  # noqa: BLE001 - the row is written anyway
            traceback.print_exc()
    return row


def _kill(process) -> None:
    if process.is_alive():
        process.kill()
    process.join()


def _clean_scratch(job: dict) -> None:
    shutil.rmtree(job["scratch"], ignore_errors=True)
    if sandbox.isolation().cgroup:  # a process that died could not remove its own
        for controller in ("memory", "pids"):
            for folder in (sandbox.CGROUP_V1 / controller).glob(f"cs231n-grade-{job['token']}-*"):
                try:
                    folder.rmdir()
                except OSError:
                    pass


def _safe_grade(archive: Path, options: Options, edition: Path) -> dict:
    try:
        return grade_one(archive, options, edition)
    except Exception:  # noqa: BLE001 - every zip gets its row
        print(f"grade: {archive.name}: {traceback.format_exc()}", file=sys.stderr)
        return {"student": archive.name[: -len(".zip")], "points": {}, "status": "crashed"}


def _edition_blocks() -> tuple[dict, dict]:
    """The reference's and the stubs' normalised blocks (similarity's two baselines)."""
    from tools.release import build

    reference = build.select_files(REPO, STUDENT_FILES, git=_IN_GIT)
    stubbed = build.stub_python(reference)
    ref = similarity.blocks_of({p: f.data.decode() for p, f in reference.items()})
    stub = similarity.blocks_of({p: f.data.decode() for p, f in stubbed.items()})
    return ref, stub


def _read_grades(path: Path, rubric: list) -> dict[str, dict]:
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        items = [i.name for i in rubric]
        missing = [
            c
            for c in ["student", *items, "total", "max", "status"]
            if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise GradingError(
                f"{path} was written for another rubric (no column {missing}); regrade "
                "everyone (leave out STUDENT=)"
            )
        return {
            r["student"]: {
                "student": r["student"],
                "points": {i: float(r[i] or 0) for i in items},
                "status": r["status"],
                "blank_answers": r.get("blank_answers") or "",
            }
            for r in reader
        }


def _write_grades(path: Path, rubric: list, rows: dict[str, dict], manual) -> None:
    items = [i.name for i in rubric]
    maximum = sum(float(i.points) for i in rubric)
    manual_items, manual_max, manual_points = manual or ([], {}, {})
    if manual:
        maximum += sum(manual_max.values())
        for who in sorted(set(manual_points) - set(rows)):
            print(f"grade: MANUAL names {who!r}, who has no submission", file=sys.stderr)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *items, *manual_items, "total", "max", "status", "blank_answers"])
    for student in sorted(rows):
        row = rows[student]
        auto = [row["points"].get(i, 0.0) for i in items]
        extra = [manual_points.get(student, {}).get(i, 0.0) for i in manual_items]
        total = sum(auto) + sum(extra)
        writer.writerow(
            [
                student,
                *map(fmt, auto),
                *map(fmt, extra),
                fmt(total),
                fmt(maximum),
                row["status"],
                row.get("blank_answers", ""),
            ]
        )
    _write_atomic(path, buffer.getvalue())


def _write_similarity(out: Path, students: list[str], edition_blocks: tuple[dict, dict]) -> None:
    reference, stub = edition_blocks
    per_student = {}
    for student in students:
        saved = student_dir(out, student) / "blocks.json"
        if saved.is_file():
            raw = json.loads(saved.read_text(encoding="utf-8"))
            per_student[student] = {_key(k): v for k, v in raw.items()}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=similarity.COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(similarity.rows(per_student, reference, stub))
    _write_atomic(out / "similarity.csv", buffer.getvalue())


def _key(text: str) -> tuple[str, str, int]:
    path, function, index = text.split("|")
    return path, function, int(index)
