"""The notebook's share of the grade: its own work, judged from a run, and its answers.

The notebook item judges what only the notebook holds: the cells the student writes
(the experiment of inline question 2 and the hyperparameter search, the cells tagged
``solution``) and the written answers. The code in ``cs231n/`` is judged by the code items
(:mod:`tools.grade.judging`), so here the reference's ``cs231n/`` stands in for the
student's: a bug in the loss costs the loss's items, not the notebook's too.

:func:`grade_notebook` runs the submitted notebook in a fresh kernel in the sandbox, on the
bundled Fashion-MNIST, with stored outputs cleared (they count for nothing). The run:

- stops before the "Optional: going further" heading: nothing after it is graded;
- leaves out the edition's cells that only show or re-check the kit's code (plots,
  gradient checks, timings, the self-checks), where the student left them unchanged
  (:data:`KEEP` names the setup cells that always run). Every cell the student wrote or
  changed runs;
- goes on past a cell that raises, so each TODO cell is judged on its own;
- starts with a grader cell that lets ``Softmax.train`` reuse runs the grader already made
  (:mod:`tools.grade.trainings`), and ends with one that exports the values the
  notebook's checks look at (:mod:`tools.grade.kernel_shim`).

Nothing the kernel says is taken on trust. The export is read in the judge's sandbox
(:mod:`tools.grade.judge`) into plain numbers, and judged here by the same functions as
the notebook's own checks (:mod:`cs231n.notebook_checks`), against runs the grader makes
itself from the reference and the bundled data. The item's points are split into parts
(:data:`PARTS`): the question-2 experiment, the search's runs, its best model, the best
lying inside the grid above the bar, and the written answers being filled in (their
content is for the TAs: ``MANUAL=``). The untouched stub earns none of them.

Budget: :data:`NOTEBOOK_CPU` seconds of CPU (five times the reference's graded run with no
run reused, a floor of 60 s) and :data:`NOTEBOOK_WALL` seconds of wall clock for the whole
run and for any one cell. The student's ``cs231n/`` code never runs here, so code that hangs
in the code tests cannot hold the notebook's slot too.

Trust: with the driver's runner (as root) the kernel runs as the student's user, and
nbclient, its client, as a user apart whose folder the kernel cannot reach; the executed
notebook is read only once every process of the run is dead.

:func:`answers_markdown` gathers the written answers (the markdown cells tagged
``answer`` in the reference, with the question above each) and the code the student
wrote into the notebook (cells tagged ``solution``, such as the search cell) into one
page per student for the TAs.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

from cs231n import notebook_checks

from . import child, contained, judge, kernel_shim, trainings
from .rubric import NOTEBOOK_ITEM, TestResult, load_rubric
from .runner import CHILD_NAME, CHILD_SOURCE, MAX_NOTEBOOK_BYTES
from .runner import Folder as _Folder
from .runner import read_notebook_bytes as submitted_notebook

REPO = Path(__file__).resolve().parents[2]
REFERENCE = REPO / "notebooks" / "softmax.ipynb"
# The budget comes from the reference's graded run with no run reused: about 12 s of CPU
# on the bundled data (nine search runs of about a second each). A submission gets five
# times that with a floor of 60 s, so a 6 x 6 grid of new runs still fits, and a wall clock
# twice its CPU, for a loaded machine; no cell may take longer than the whole.
REFERENCE_CPU = 12.0
NOTEBOOK_CPU = max(60.0, 5 * REFERENCE_CPU)
NOTEBOOK_WALL = 2 * NOTEBOOK_CPU
VERDICT_LIMIT = 8 << 20  # bytes of the judge's verdict (the export's numbers among them)
PAGE_LIMIT = 4 * judge.MAX_PAGE  # bytes of the answers page (UTF-8 of MAX_PAGE characters)
SHIM_NAME = "_grade_shim.py"
# Cells of the edition that always run: the setup, the data and its splits. The others
# that are not the student's to write only show or re-check the kit's code.
KEEP = ("colab", "deps", "imports", "load", "summary", "splits", "preprocess", "prove")
# The item's parts and their shares of its points.
PARTS = {
    "q2": (0.2, "inline question 2's experiment"),
    "runs": (0.15, "the search's results"),
    "best": (0.1, "the search's best model"),
    "inside": (0.15, "the search's best inside the grid"),
    "answers": (0.4, "written answers filled in"),
}
Q2_NAMES = ("margins", "svm_losses", "log_losses", "log1p_losses")
# The grader's new runs per notebook, in examples seen (num_iters * batch_size): forty
# runs of the notebook's own settings. A search of more new runs fails, naming the cap.
MAX_NEW_WORK = 40 * 1500 * 200

_PREPARED: dict[str, tuple[bytes, str, dict]] = {}  # the last notebook prepared, by hash
_TRAININGS: list[trainings.Trainings] = []  # a process's own, when none is given


@functools.cache
def _reference_cells() -> tuple[dict, ...]:
    """The reference notebook's cells, read once per process (it is the grader's own)."""
    return tuple(json.loads(REFERENCE.read_text(encoding="utf-8"))["cells"])


@functools.cache
def _plan() -> bytes:
    """What the judge leaves out: the edition's code cells (id -> source) less KEEP."""
    edition = {
        cell["id"]: "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        for cell in _reference_cells()
        if cell.get("cell_type") == "code" and isinstance(cell.get("id"), str)
    }
    return json.dumps({"edition": edition, "keep": list(KEEP)}).encode()


def _prepare(data: bytes) -> tuple[bytes, str, dict]:
    """The notebook to run, the answers page and a summary, made by the judge in a sandbox
    of its own. ValueError when it is not a notebook.

    The answers page and the run both need it: the last result is kept (one entry, so
    a worker holds at most one notebook's worth), keyed by the bytes' SHA-256.
    """
    key = hashlib.sha256(data).hexdigest()
    if key in _PREPARED:
        return _PREPARED[key]
    found = contained.run_judge(
        "prepare",
        {"submitted.ipynb": data, "plan.json": _plan()},
        {"sent.ipynb": MAX_NOTEBOOK_BYTES, "answers.md": PAGE_LIMIT, "summary.json": 4096},
    )
    try:
        summary = json.loads(found["summary.json"])
    except ValueError:
        summary = {}
    if not isinstance(summary, dict):
        summary = {}
    prepared = found["sent.ipynb"], found["answers.md"].decode("utf-8", "replace"), summary
    _PREPARED.clear()
    _PREPARED[key] = prepared
    return prepared


def _verdict(sent: bytes, ran: bytes) -> dict:
    """The judge's reading of the executed notebook, each field checked here."""
    found = contained.run_judge(
        "verdict", {"sent.ipynb": sent, "ran.ipynb": ran}, {"verdict.json": VERDICT_LIMIT}
    )
    try:
        raw = json.loads(found["verdict.json"])
        status, stopped = str(raw["status"]), str(raw["stopped"])[:500]
        failed = [
            (str(f["where"])[:400], str(f["error"])[:60])
            for f in raw["failed"][: judge.MAX_FAILED]
        ]
        export = raw["export"]
        setup_failed = raw["setup_failed"] is True
    except (ValueError, KeyError, TypeError):
        raise contained.JudgeFailed("crashed", "the reader's verdict is malformed") from None
    if status not in ("ok", "timeout", "memory", "crashed") or not (
        export is None or isinstance(export, dict)
    ):
        raise contained.JudgeFailed("crashed", "the reader's verdict is out of range")
    return {
        "status": status,
        "stopped": stopped,
        "failed": failed,
        "export": export,
        "setup_failed": setup_failed,
    }


def _default_trainings() -> trainings.Trainings:
    if not _TRAININGS:
        folder = tempfile.mkdtemp(prefix="cs231n-trainings-")
        atexit.register(shutil.rmtree, folder, True)
        _TRAININGS.append(trainings.Trainings(Path(folder)))
    return _TRAININGS[0]


def reference_answers() -> int:
    """How many written answers the reference asks for (its cells tagged ``answer``)."""
    cells = _reference_cells()
    return sum(judge.ANSWER_TAG in cell.get("metadata", {}).get("tags", []) for cell in cells)


def grade_notebook(
    workdir: Path,
    run,
    kept_runs: trainings.Trainings | None = None,
    cpu: float = NOTEBOOK_CPU,
) -> TestResult:
    """Run the student's notebook in the sandbox and judge its own work.

    Parameters
    ----------
    workdir : the notebook's scratch folder: the clean student edition with the
        reference's ``cs231n/`` files and the student's ``notebooks/softmax.ipynb``.
    run : ``run(argv, wall_seconds, **kernel) -> RunResult`` in the sandbox, cwd ``workdir``.
    kept_runs : the grader's runs (:class:`tools.grade.trainings.Trainings`), shared by a
        batch; by default the process keeps its own, in a temporary folder.
    cpu : the run's CPU seconds (``run`` enforces them); its wall clock, for the whole
        run and for any one cell, is twice that.

    Returns
    -------
    The TestResult of the rubric's ``notebook`` item: points * the parts passed, weighted
    as :data:`PARTS` says.

    The notebook is read, and the executed one judged, by :mod:`tools.grade.judge` in
    sandboxes of their own, never in this process; the executed notebook is read only
    after every process of the run is dead, and only its size is trusted here.
    """
    item = next(i for i in load_rubric() if i.name == NOTEBOOK_ITEM)
    kept = kept_runs or _default_trainings()

    def result(fraction: float, output: str, status: str = "ok", hint: str = "") -> TestResult:
        score = item.points * fraction
        return TestResult(item.name, score, item.points, output, item.visibility, status, hint)

    try:
        sent, _, summary = _prepare(submitted_notebook(Path(workdir)))
    except ValueError as error:
        return result(0.0, f"Not run: {error}.")
    except contained.JudgeFailed as failed:
        return result(0.0, f"Not run: {failed}.", failed.status)
    answers = _answers_part(summary)
    folder = _Folder(Path(workdir))
    try:
        folder.write(SHIM_NAME, Path(kernel_shim.__file__).read_bytes())
    finally:
        folder.close()
    kept.copy_into(Path(workdir))
    wall = NOTEBOOK_WALL * cpu / NOTEBOOK_CPU
    timeout = str(int(wall))
    if "kernel" in _parameters(run):
        outcome, data = _run_attached(Path(workdir), run, sent, wall, timeout)
    else:  # a runner that cannot start a kernel apart: the client shares its sandbox
        folder = _Folder(Path(workdir))
        try:
            folder.write(CHILD_NAME, CHILD_SOURCE.read_bytes())
            folder.write(child.NOTEBOOK_IN, sent)
            folder.remove(child.NOTEBOOK_OUT)
            argv = [sys.executable, "-I", str(Path(workdir) / CHILD_NAME), "notebook", timeout]
            outcome = run(argv, wall)
            data = folder.read(child.NOTEBOOK_OUT, MAX_NOTEBOOK_BYTES)
        finally:
            folder.close()
    status = outcome.status
    if data is None:
        why = {"timeout": "it ran out of time", "memory": "it ran out of memory"}
        parts = {name: (False, "the notebook did not run") for name in PARTS if name != "answers"}
        parts["answers"] = answers
        score, text, hint = _score(parts, [], item.points)
        text = f"The notebook did not finish: {why.get(status, 'the run crashed')}.\n{text}"
        return result(score, text, status if status != "ok" else "crashed", hint)
    try:
        verdict = _verdict(sent, data)
    except ValueError as error:
        return result(0.0, f"The run cannot be judged: {error}.", "crashed")
    except contained.JudgeFailed as failed:
        return result(0.0, f"The run cannot be judged: {failed}.", failed.status)
    if verdict["setup_failed"]:
        return result(0.0, "The grader's first cell failed: the instructor is told.", "crashed")
    if verdict["status"] != "ok" and status == "ok":
        status = verdict["status"]
    export = verdict["export"] or {}
    parts = {"q2": _q2_part(export), **_search_parts(export, kept), "answers": answers}
    score, text, hint = _score(parts, verdict["failed"], item.points)
    if verdict["export"] is None:
        stopped = verdict["stopped"] or "the run stopped early"
        text = f"The notebook did not reach its end: {stopped}.\n{text}"
    return result(score, text, status, hint)


def _answers_part(summary: dict) -> tuple[bool, str] | tuple[float, str]:
    expected = reference_answers()
    answers, blank = summary.get("answers"), summary.get("blank_answers")
    if not isinstance(answers, int) or not isinstance(blank, int) or expected <= 0:
        return 0.0, "the written answers could not be counted"
    filled = max(0, min(expected, answers - blank))
    return filled / expected, (
        f"{filled} of {expected} written answers filled in (the TAs grade what they say)"
    )


def _q2_part(export: dict) -> tuple[bool, str]:
    values = [export.get(name) for name in Q2_NAMES]
    if any(v is None for v in values):
        missing = [n for n, v in zip(Q2_NAMES, values, strict=True) if v is None]
        return False, (
            f"{', '.join(missing)} not set to a list of numbers when the notebook had run: "
            "the experiment cell after inline question 2 fills them"
        )
    margins, svm, log, log1p = values
    return notebook_checks.inline_question_2(
        margins=margins, svm=svm, softmax_log=log, softmax_log1p=log1p
    )


def _search_parts(export: dict, kept: trainings.Trainings) -> dict[str, tuple[bool, str]]:
    def failed(problem: str) -> dict[str, tuple[bool, str]]:
        return {name: (False, problem) for name in notebook_checks.SEARCH_PARTS}

    rows = export.get("results")
    if rows is None:
        problem = (
            "results was not set to a dict when the notebook had run: the search cell fills it"
        )
        return failed(problem)
    if export.get("results_size", 0) > judge.MAX_CONFIGS:
        problem = f"results holds more than {judge.MAX_CONFIGS} configurations"
        return failed(problem)
    results: dict = {}
    for row in rows:
        if row is None:
            problem = (
                "results holds an entry that is not (lr, reg): (train_acc, val_acc), in numbers"
            )
            return failed(problem)
        results[(row[0], row[1])] = (row[2], row[3])
    calls = {}
    for call in export.get("calls", []):
        if call["settings"] is not None:
            calls[(call["settings"]["learning_rate"], call["settings"]["reg"])] = call
        else:
            calls.setdefault("unrepeatable", call)
    work = {"new": 0}

    def retrain(config: tuple[float, float]):
        lr, reg = config
        call = calls.get(config)
        if call is None:
            unrepeatable = (
                " (a train call without an integer seed cannot be repeated: pass seed=0)"
            )
            raise notebook_checks.CheckFailed(
                f"no run of train with learning_rate={lr:g} and reg={reg:g} and a seed gave "
                f"results[({lr:g}, {reg:g})]: fill each entry from the model trained with "
                "those values" + (unrepeatable if "unrepeatable" in calls else "")
            )
        if not call["on_train"]:
            raise notebook_checks.CheckFailed(
                f"the run for lr {lr:g}, reg {reg:g} did not train on X_train and y_train: "
                "train every configuration on the whole training split"
            )
        settings = call["settings"]
        if settings["seed"] < 0 or not kept.runnable(settings):
            raise notebook_checks.CheckFailed(
                f"the run for lr {lr:g}, reg {reg:g} has settings the grader does not repeat "
                f"(num_iters up to {trainings.MAX_ITERS}, batch_size up to "
                f"{trainings.MAX_BATCH}, a seed >= 0)"
            )
        if not kept.has(settings):
            work["new"] += settings["num_iters"] * settings["batch_size"]
            if work["new"] > MAX_NEW_WORK:
                raise notebook_checks.CheckFailed(
                    "the search trains more than the grader repeats for one notebook (forty "
                    "runs of 1500 iterations of 200 examples): use a smaller grid"
                )
        run = kept.run(settings)
        return (float(run["train_acc"]), float(run["val_acc"])), run["W"]

    W = export.get("best_W")
    data = kept.data()
    shape = (data["X_val"].shape[1], 10)
    model_val = kept.val_accuracy(W) if W is not None and (len(W), len(W[0])) == shape else None
    how = (
        "train each configuration with a new Softmax(), on X_train and y_train, with a seed, "
        "and measure the accuracies with predict on the whole training and validation splits"
    )
    parts = notebook_checks.search_parts(
        results,
        export.get("best_val"),
        model_val,
        W,
        retrain,
        n_train=len(data["y_train"]),
        n_val=len(data["y_val"]),
        dataset=trainings.DATASET,
        every=True,
        by="a reference run",
        how=how,
    )
    passed, message = parts["inside"]
    if not passed:  # a grid chosen for CIFAR-10 alone does not suit the bundled data
        parts["inside"] = (False, f"{message} (graded on the bundled {trainings.DATASET})")
    return parts


def _score(parts: dict, failed: list[tuple[str, str]], points: float) -> tuple[float, str, str]:
    """The fraction of the item's points, the lines that say why, and the first hint."""
    fraction, lines, hint = 0.0, [], ""
    for name, (share, label) in PARTS.items():
        passed, message = parts[name]
        got = float(passed)  # a part is passed (True), failed (False) or a fraction
        fraction += share * got
        # a part not passed is a failed case, "- label: reason", as feedback and report read
        mark = "PASS" if got == 1.0 else "-"
        lines.append(
            f"{mark} {label} ({share * got * points:.1f} of {share * points:.1f}): {message}"
        )
        if got < 1.0 and not hint:
            hint = message
    for where, error in failed:
        what = f"raised {error}" if error else "did not run"
        lines.append(f"- the TODO cell {where}: {what}")
    return fraction, "\n".join(lines), hint


def _parameters(function) -> set[str]:
    import inspect

    try:
        parameters = inspect.signature(function).parameters.values()
    except (TypeError, ValueError):
        return set()
    if any(p.kind is p.VAR_KEYWORD for p in parameters):
        return {"kernel"}
    return {p.name for p in parameters}


def _run_attached(workdir: Path, run, sent: bytes, wall: float, timeout: str):
    """Run the notebook with the kernel as the student and its client as a user apart.

    The client's folder sits beside the scratch folder, out of the kernel's reach; the
    executed notebook is read from it once ``run`` returned, with every process dead.
    """
    trusted = Path(tempfile.mkdtemp(prefix="cs231n-client-", dir=workdir.parent))
    try:
        shutil.copyfile(CHILD_SOURCE, trusted / CHILD_NAME)
        (trusted / "in.ipynb").write_bytes(sent)
        argv = [sys.executable, "-I", str(trusted / CHILD_NAME), "attach", str(trusted), timeout]
        kernel = [sys.executable, "-m", "ipykernel_launcher"]
        outcome = run(
            argv,
            wall,
            kernel=kernel,
            kernel_cwd=workdir / "notebooks",
            trusted=trusted,
            env={"CS231N_DATASET": "fashion-mnist", "MPLBACKEND": "Agg"},
        )
        folder = _Folder(trusted)
        try:
            data = folder.read("out.ipynb", MAX_NOTEBOOK_BYTES)
        finally:
            folder.close()
        return outcome, data
    finally:
        shutil.rmtree(trusted, ignore_errors=True)


# --- the answers page ---------------------------------------------------------------------------


def answers_markdown(nb_path: Path) -> str:
    """One markdown page with the student's written answers and notebook code, for TAs.

    Answers are the markdown cells tagged ``answer`` (or, where a student dropped the
    tag, starting with ``**Your answer:**``), each under the question cell above it;
    code is the cells tagged ``solution`` (or starting with ``# TODO:``), each in a
    fenced block. Built by :mod:`tools.grade.judge` in a sandbox of its own, in one pass
    and with every part capped. Raises ValueError when the file is not a notebook, and
    :class:`tools.grade.contained.JudgeFailed` when reading it exceeds the judge's limits.
    """
    nb_path = Path(nb_path)
    folder = os.open(nb_path.parent, os.O_RDONLY | os.O_DIRECTORY)
    try:
        data = _Folder.read_at(folder, nb_path.name, MAX_NOTEBOOK_BYTES)
    finally:
        os.close(folder)
    if data is None:
        raise ValueError(
            f"{nb_path.name} is missing, or not a regular file under {MAX_NOTEBOOK_BYTES >> 20} MB"
        )
    return _prepare(data)[1]
