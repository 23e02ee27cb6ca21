"""Grade a folder of submissions: ``make grade SUBMISSIONS=dir [OUT=grading] [JOBS=2]``.

For each ``*.zip`` (the student id is the file name less ``.zip``) the driver

1. reads the allow-listed files out of the zip (:mod:`tools.grade.unpack`): the files of
   ``cs231n/`` that hold student-written blocks, and ``notebooks/softmax.ipynb``;
2. lays them over a clean student edition, built once from this checkout, so that
   ``checks.py`` and every other file are the instructor's own;
3. runs the hidden code tests and the notebook re-execution, which run the student's code
   only through :func:`tools.grade.sandbox.run`; whatever reads the submission's content
   (the notebook, the texts similarity compares, the figures above each question, the
   record of unfinished work) runs in sandboxes of its own too
   (:mod:`tools.grade.contained`), so the worker holds no more of it than capped outputs;
4. writes ``OUT/students/<student>/results.json`` (Gradescope's schema), ``feedback.md``
   and ``answers.md`` (the TA page), then ``OUT/grades.csv``, ``OUT/similarity.csv`` and
   the class report ``OUT/report.html`` (:mod:`grades`, :mod:`similarity`, :mod:`report`).
   Per-student files live in a folder of their own (:func:`grades.student_dir`), so no
   student id can name a file of the grader's.

With ``MANUAL`` and an existing grades.csv, the TA points are merged into grades.csv and
every report without a regrade.

Each submission is graded in a process of its own (``jobs`` at a time), forked for it and
holding its scratch folder on a size-limited tmpfs (``disk`` bytes; where mounting needs a
root that is missing, the sandbox counts the folder's size instead). A submission that
breaks anything still gets its row, with the worst thing that happened as its status; one
whose process dies (killed, out of memory) gets ``crashed``, and the batch goes on.
"""

from __future__ import annotations

import base64
import ctypes
import dataclasses
import importlib
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

from . import contained, feedback, grades, judge, judging, report, rubric, sandbox, similarity
from .grades import GradingError, fmt, read_manual, student_dir  # noqa: F401 - public names
from .grades import write_atomic as _write_atomic
from .rubric import TestResult
from .status import STATUSES, worst
from .unpack import NOTEBOOK, InvalidSubmission, unpack

REPO = Path(__file__).resolve().parents[2]
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
# A checkout builds from git's tracked files; Gradescope's unpacked autograder has no
# .git, and its files came from exactly such a build (tools/grade/gradescope_pack.py).
_IN_GIT = (REPO / ".git").exists()
STUDENT_FILES = tuple(sorted({key[0] for key in TASKS}))  # the files with TODO blocks
STUDENTS = grades.STUDENTS  # OUT/students/<id>/: every file of one student, and nothing else


@dataclass(frozen=True)
class Options:
    """One ``make grade`` run. ``memory`` in bytes, times in seconds."""

    submissions: Path
    out: Path
    jobs: int = 2
    student: str | None = None
    manual: Path | None = None
    roster: Path | None = None  # id,name,email/sis_id: writes OUT/lms/ for Canvas and Moodle
    cpu: float = 60.0  # per sandboxed command of the code tests
    notebook_cpu: float = 60.0  # the notebook's run (tools/grade/notebook.py NOTEBOOK_CPU)
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
    texts: dict = {}  # what similarity compares, extracted in a sandbox
    timing: dict = {}  # CPU and wall seconds of the sandboxed commands, per phase
    answers = "*No notebook was submitted.*\n"
    figures: dict[int, list[bytes]] = {}  # PNGs above each question, re-encoded in a sandbox
    incomplete: list[str] = []  # what the student's make submission recorded as unfinished
    with tempfile.TemporaryDirectory(prefix="cs231n-grade-") as scratch:
        os.chmod(scratch, 0o711)  # the sandbox user may pass through, not list or write
        try:
            if not STUDENT_ID.fullmatch(student):
                raise InvalidSubmission(
                    f"the file name {archive.name!r} is not a usable student id (letters, "
                    "digits and . _ @ + - only); rename the file and regrade it"
                )
            allowed = set(STUDENT_FILES) | {NOTEBOOK}
            unpacked = unpack(archive, allowed | {feedback.INCOMPLETE_RECORD})
            record = unpacked.files.pop(feedback.INCOMPLETE_RECORD, None)
            if record is not None:
                incomplete = _incomplete(record)
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
            sources = {
                p: unpacked.files[p].decode("utf-8", "replace")
                for p in STUDENT_FILES
                if p in unpacked.files
            }
            texts = _similarity_texts(sources, unpacked.files.get(NOTEBOOK), edition, notes)
            if NOTEBOOK in unpacked.files:
                try:
                    answers = nb_mod.answers_markdown(work / NOTEBOOK)
                    figures = _figures(unpacked.files[NOTEBOOK])
                except Exception as error:  # noqa: BLE001 - a broken notebook is the student's
                    answers = f"*The notebook cannot be read: {str(error)[:500]}*\n"
            del unpacked.files  # the scratch copies hold them; the worker keeps no copy
            sandbox.prepare_workdir(work)
            try:
                judged = time.process_time()
                results = list(options.grade_code(work, _bound_run(work, options, timing, "code")))
                timing.setdefault("code", {})["judge_cpu"] = time.process_time() - judged
                # The code tests could write anything into their folder (checks.py, the
                # notebook): the notebook runs in a fresh folder, with the submitted
                # notebook and the reference's code, which the code items judge apart.
                fresh = scratch_copy(
                    edition, _notebook_files(submitted), Path(scratch) / "notebook"
                )
                sandbox.prepare_workdir(fresh)
                kept = {}
                if "kept_runs" in _parameters(nb_mod.grade_notebook):
                    kept = {"kept_runs": _kept_runs(options.out), "cpu": options.notebook_cpu}
                results.append(
                    nb_mod.grade_notebook(
                        fresh, _bound_run(fresh, options, timing, "notebook"), **kept
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
        _write_answer_figures(options.out, student, figures)
        folder = student_dir(options.out, student)
        _write_atomic(folder / "incomplete.json", json.dumps(incomplete) + "\n")
        _write_atomic(folder / similarity.SAVED, json.dumps(texts, indent=1))
    return {
        "student": student,
        "points": points,
        "status": status,
        "timing": timing,
        "blank_answers": _blank_answers(answers),
    }


def _notebook_files(submitted: Path) -> dict[str, bytes]:
    """The notebook's folder over the edition: the reference's files for the student's
    code files, and the submitted notebook (when there is one)."""
    files = {rel: (REPO / rel).read_bytes() for rel in STUDENT_FILES}
    notebook = submitted / NOTEBOOK
    if notebook.is_file() and not notebook.is_symlink():
        files[NOTEBOOK] = notebook.read_bytes()
    return files


_KEPT: dict = {}  # the batch's kept runs, made before the workers fork (they share its data)


def _kept_runs(out: Path):
    """The grader's runs for the notebook's search, kept in ``OUT/.trainings``."""
    from . import trainings

    folder = Path(out) / trainings.FOLDER
    if _KEPT.get("folder") != folder:
        _KEPT.update(folder=folder, runs=trainings.Trainings(folder))
    return _KEPT["runs"]


def _blank_answers(page: str) -> str:
    """``"2 of 3"`` written answers left blank, from the answers page ('' if unknown)."""
    from .judge import blank_answers

    found = blank_answers(page)
    return f"{found[0]} of {found[1]}" if found else ""


def _parameters(function: Callable) -> set[str]:
    import inspect

    return set(inspect.signature(function).parameters)


TEXTS_LIMIT = 4 << 20  # bytes of one student's compared texts (capped in the judge)
FIGURES_LIMIT = 17 << 20  # bytes of figures.json (the judge stops at 12 MB of base64)
LINES_LIMIT = 64 << 10  # bytes of the summary of what make submission recorded
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _similarity_texts(
    sources: dict[str, str], notebook: bytes | None, edition: Path, notes: list[str]
) -> dict:
    """What similarity compares of this submission (:func:`similarity.extract_texts`),
    extracted in a sandbox of its own from the files and the notebook, capped there and
    checked here; empty when it cannot be read."""
    stubs = {p: (edition / p).read_text("utf-8") for p in sources if (edition / p).is_file()}
    inputs = {
        "files.json": json.dumps(sources).encode(),
        "stubs.json": json.dumps(stubs).encode(),
    }
    if notebook is not None:
        inputs["submitted.ipynb"] = notebook
    try:
        found = contained.run_judge("texts", inputs, {"texts.json": TEXTS_LIMIT})
        raw = json.loads(found["texts.json"])
    except (ValueError, contained.JudgeFailed) as error:
        notes.append(f"Your code was not compared with others' ({str(error)[:200]}).")
        return {}
    if not isinstance(raw, dict):
        return {}
    answers = raw.get("answers") if isinstance(raw.get("answers"), dict) else {}
    blank = raw.get("blank_answers") if isinstance(raw.get("blank_answers"), list) else []
    cap = judge.MAX_TEXT_ANSWERS
    return {
        "code": str(raw.get("code", ""))[: judge.MAX_TEXT_CODE],
        "answers": {
            str(k)[:200]: str(v)[: judge.MAX_TEXT_ANSWER] for k, v in list(answers.items())[:cap]
        },
        "blank_answers": [str(b)[:200] for b in blank[:cap]],
        "notebook": raw.get("notebook") is True,
    }


def _figures(notebook: bytes) -> dict[int, list[bytes]]:
    """The figures above each question of the submitted notebook, found and re-encoded
    (by Pillow) in a sandbox of its own; none if it cannot be read. Here the PNGs are
    only checked to be PNGs, never decoded."""
    try:
        found = contained.run_judge(
            "figures", {"submitted.ipynb": notebook}, {"figures.json": FIGURES_LIMIT}
        )
        raw = json.loads(found["figures.json"])
    except (ValueError, contained.JudgeFailed):
        return {}
    figures: dict[int, list[bytes]] = {}
    for index, coded in raw.items() if isinstance(raw, dict) else ():
        if not (isinstance(index, str) and index.isdigit() and isinstance(coded, list)):
            continue
        pngs = []
        for text in coded[: feedback.MAX_FIGURES]:
            try:
                png = base64.b64decode(str(text), validate=True)
            except ValueError:
                continue
            if png.startswith(PNG_MAGIC):
                pngs.append(png)
        if pngs:
            figures[int(index)] = pngs
    return figures


def _incomplete(record: bytes) -> list[str]:
    """The lines of the submission's record of unfinished work (feedback.incomplete_summary),
    read in a sandbox of its own; it informs the TA and changes no grade."""
    if len(record) > feedback.MAX_RECORD_BYTES:
        return feedback.incomplete_summary(record)  # says it is too large, reading nothing
    try:
        found = contained.run_judge(
            "incomplete", {"incomplete.json": record}, {"lines.json": LINES_LIMIT}
        )
        raw = json.loads(found["lines.json"])
    except (ValueError, contained.JudgeFailed):
        return ["(the record of unfinished work cannot be read)"]
    lines = raw if isinstance(raw, list) else []
    return [str(line)[:200] for line in lines[: feedback.MAX_RECORD_LINES + 1]]


def _write_answer_figures(out: Path, student: str, figures: dict[int, list[bytes]]) -> None:
    page = grades.answers_page(out, student)
    for old in page.parent.glob(f"{student}-cell*.png"):  # an earlier run's, on a regrade
        old.unlink()
    if not figures or not page.is_file():
        return
    text = feedback.add_figures(page.read_text(encoding="utf-8"), figures, page.parent, student)
    _write_atomic(page, text)


def _write_reports(out, student, rubric, by_name, points, status, notes, answers, timing):
    folder = student_dir(out, student)
    result = feedback.results_json(rubric, by_name, points, status, notes, sandbox.isolation())
    result["extra_data"]["timing"] = timing
    _write_atomic(folder / "results.json", json.dumps(result, indent=2) + "\n")
    _write_atomic(folder / "feedback.md", feedback.feedback_markdown(student, result))
    page = grades.answers_page(out, student)
    _write_atomic(page, f"# {student}: written answers\n\n{answers}")


# --- the batch --------------------------------------------------------------------------


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
    """Grade the submissions; write grades.csv, similarity.csv, report.html. Returns 0.

    With ``MANUAL`` and an existing grades.csv, only the submissions without a row are
    graded: the TA points are merged into grades.csv and every report without a regrade.
    """
    zips = _zips(options)
    rubric = options.load_rubric()
    options.out.mkdir(parents=True, exist_ok=True)
    if options.roster:
        from . import lms

        lms.read_roster(options.roster)  # a bad roster fails before anything is graded
    regrade_all = options.student is None and not options.manual
    rows = {} if regrade_all else grades.read_grades(options.out / "grades.csv", rubric)
    manual = grades.load_state(options.out)
    if options.manual:
        manual = grades.read_manual(options.manual)
        known = {p.name[: -len(".zip")] for p in options.submissions.glob("*.zip")}
        grades.check_items(manual, rubric, str(options.manual))
        grades.check_students(manual, known | set(rows), str(options.manual))
    if options.student is None and options.manual:
        zips = [z for z in zips if z.name[: -len(".zip")] not in rows]
    with tempfile.TemporaryDirectory(prefix="cs231n-edition-") as tmp:
        if zips:  # none when MANUAL only merges
            if edition is None:
                edition = build_edition(Path(tmp) / "student")
            for row in _grade_all(zips, options, edition):
                rows[row["student"]] = row
            # The pairwise comparison runs here, in the grader: copydetect fingerprints
            # the texts each submission's judge sandbox extracted, which were capped there
            # and again on reading them back (_similarity_texts), so it reads only capped
            # text the grader itself wrote under OUT, never a submission's files.
            starter = similarity.baseline(edition, edition / NOTEBOOK)
            similarity.write(options.out, similarity.load(options.out, sorted(rows)), starter)
    if options.manual:
        grades.save_state(options.out, manual)
    grades.write_grades(options.out / "grades.csv", rubric, rows, manual)
    _merge_reports(options.out, sorted(rows), manual)
    report.write(options.out, rubric, manual)
    if options.roster:
        lms.write(options.out, options.roster)
    counts = {s: sum(1 for r in rows.values() if r["status"] == s) for s in STATUSES}
    what = f"graded {len(zips)} submission(s)" if zips else "merged the TA points (no regrade)"
    print(
        f"{what} into {options.out}/grades.csv: "
        + ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        + f"; class report {options.out}/report.html"
    )
    return 0


def _merge_reports(out: Path, students: list[str], manual: grades.Manual) -> None:
    """Make each results.json and feedback.md carry the TA points (none without any), so
    that ``score`` equals the total in grades.csv, also for students not regraded now."""
    for student in students:
        path = student_dir(out, student) / "results.json"
        if not path.is_file():
            continue
        result = grades.with_manual(json.loads(path.read_text(encoding="utf-8")), student, manual)
        _write_atomic(path, json.dumps(result, indent=2) + "\n")
        feedback_md = feedback.feedback_markdown(student, result)
        _write_atomic(student_dir(out, student) / "feedback.md", feedback_md)


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
    if "kept_runs" in _parameters(_modules(options).grade_notebook):
        _kept_runs(options.out).data()  # loaded once here; forked workers share it
    sandbox._matplotlib_cache()  # the same: importing matplotlib costs each worker 0.5 s
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
