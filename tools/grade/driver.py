"""Grade a folder of submissions: ``make grade SUBMISSIONS=dir [OUT=grading] [JOBS=2]``.

For each ``*.zip`` (the student id is the file name less ``.zip``) the driver

1. reads the allow-listed files out of the zip (:mod:`tools.grade.unpack`): the files of
   ``cs231n/`` that hold student-written blocks, and ``notebooks/softmax.ipynb``;
2. lays them over a clean student edition, built once from this checkout, so that
   ``checks.py`` and every other file are the instructor's own;
3. runs the hidden code tests and the notebook re-execution, which run the student's code
   only through :func:`tools.grade.sandbox.run` and judge its outputs in this process;
4. writes ``OUT/<student>/results.json`` (Gradescope's schema), ``feedback.md``, the TA
   page ``OUT/answers/<student>.md``, then ``OUT/grades.csv``, ``OUT/similarity.csv`` and
   the class report ``OUT/report.html`` (:mod:`grades`, :mod:`similarity`, :mod:`report`).

Each submission is graded in a worker process (``jobs`` at a time); a submission that
breaks anything still gets its row, with the worst thing that happened as its status.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from multiprocessing import get_context
from pathlib import Path

from tools.release.stubs import TASKS

from . import feedback, grades, report, sandbox, similarity
from .grades import GradingError, fmt, read_manual  # noqa: F401 - driver's public names
from .grades import write_atomic as _write_atomic
from .hidden import TestResult
from .unpack import NOTEBOOK, InvalidSubmission, unpack

REPO = Path(__file__).resolve().parents[2]
STATUSES = ("ok", "crashed", "memory", "timeout", "invalid")  # from best to worst
STUDENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
# A checkout builds from git's tracked files; Gradescope's unpacked autograder has no
# .git, and its files came from exactly such a build (tools/grade/gradescope_pack.py).
_IN_GIT = (REPO / ".git").exists()
STUDENT_FILES = tuple(sorted({key[0] for key in TASKS}))  # the files with TODO blocks


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
    notebook_cpu: float = 600.0  # for the notebook's re-execution (the kernel's CPU)
    memory: int = 4 * sandbox.GB  # address space per process
    max_wall: float | None = None  # caps every wall-clock limit the tests ask for
    code_tests: str = "tools.grade.hidden"  # module with load_rubric and grade_code
    notebook_tests: str = "tools.grade.notebook"  # grade_notebook and answers_markdown
    progress: bool = True


@dataclass
class Graded:
    """One submission's row: points per rubric item, status and where it came from."""

    student: str
    points: dict[str, float]
    status: str
    blocks: dict = field(default_factory=dict)


def worst(statuses: list[str]) -> str:
    """The worst of ``statuses`` in the order ok < crashed < memory < timeout < invalid."""
    known = [s if s in STATUSES else "crashed" for s in statuses]
    return max(known, key=STATUSES.index, default="ok")


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


def scratch_copy(edition: Path, files: dict[str, bytes], dest: Path) -> Path:
    """``dest`` = the clean edition with the student's allow-listed files laid over it."""
    shutil.copytree(edition, dest, copy_function=_link_or_copy)
    for rel, data in files.items():
        target = dest / rel
        target.unlink(missing_ok=True)
        target.write_bytes(data)
    return dest


# --- grading one submission -------------------------------------------------------------


def _modules(options: Options):
    return importlib.import_module(options.code_tests), importlib.import_module(
        options.notebook_tests
    )


def _bound_run(workdir: Path, options: Options, timing: dict, phase: str) -> Callable:
    """``run(argv, wall)`` for the tests: the sandbox with this submission's limits.

    Adds each command's CPU and wall seconds to ``timing[phase]``.
    """

    def run(argv: list[str], wall: float) -> sandbox.RunResult:
        if options.max_wall is not None:
            wall = min(wall, options.max_wall)
        cpu = options.notebook_cpu if phase == "notebook" else options.cpu
        result = sandbox.run(argv, workdir, wall=wall, cpu=cpu, memory=options.memory)
        spent = timing.setdefault(phase, {"cpu": 0.0, "wall": 0.0, "runs": 0})
        spent["cpu"] += result.cpu
        spent["wall"] += result.wall
        spent["runs"] += 1
        return result

    return run


def _as_result(result: object) -> TestResult:
    """A code or notebook test's result (from the module --code-tests names) as the reports
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
    code_mod, nb_mod = _modules(options)
    rubric = code_mod.load_rubric()
    tests: list[TestResult] = []
    notes: list[str] = []
    status = "ok"
    blocks: dict = {}
    timing: dict = {}  # CPU and wall seconds of the sandboxed commands, per phase
    answers = "*No notebook was submitted.*\n"
    figures: dict = {}
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
            incomplete = feedback.incomplete_summary(
                unpacked.files.pop(feedback.INCOMPLETE_RECORD, None)
            )
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
            texts = {
                p: unpacked.files[p].decode("utf-8", "replace")
                for p in STUDENT_FILES
                if p in unpacked.files
            }
            blocks = similarity.extract(texts, unpacked.files.get(NOTEBOOK), edition)
            if NOTEBOOK in unpacked.files:
                try:
                    answers = nb_mod.answers_markdown(work / NOTEBOOK)
                    figures = _question_figures(unpacked.files[NOTEBOOK])
                except Exception as error:  # noqa: BLE001 - a broken notebook is the student's
                    answers = f"*The notebook cannot be read: {error}*\n"
            sandbox.prepare_workdir(work)
            try:
                judged = time.process_time()
                results = list(
                    code_mod.grade_code(work, _bound_run(work, options, timing, "code"))
                )
                timing.setdefault("code", {})["judge_cpu"] = time.process_time() - judged
                # The code tests could write anything into their folder (checks.py, the
                # notebook): the notebook runs in a fresh copy of what was submitted.
                fresh = scratch_copy(edition, unpacked.files, Path(scratch) / "notebook")
                sandbox.prepare_workdir(fresh)
                results.append(
                    nb_mod.grade_notebook(fresh, _bound_run(fresh, options, timing, "notebook"))
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
        _write_answer_figures(options.out, student, answers, figures)
        folder = grades.student_dir(options.out, student)
        _write_atomic(folder / "incomplete.json", json.dumps(incomplete) + "\n")
        _write_atomic(folder / similarity.SAVED, json.dumps(blocks, indent=1))
    return {"student": student, "points": points, "status": status, "timing": timing}


def _write_reports(out, student, rubric, by_name, points, status, notes, answers, timing):
    folder = out / student
    result = feedback.results_json(rubric, by_name, points, status, notes, sandbox.isolation())
    result["extra_data"]["timing"] = timing
    _write_atomic(folder / "results.json", json.dumps(result, indent=2) + "\n")
    _write_atomic(folder / "feedback.md", feedback.feedback_markdown(student, result))
    _write_atomic(out / "answers" / f"{student}.md", f"# {student}: written answers\n\n{answers}")


def _question_figures(notebook: bytes) -> dict:
    """The figures above each question of the submitted notebook (none if unreadable)."""
    try:
        nb = json.loads(notebook.decode("utf-8"))
        return feedback.question_figures(nb, feedback.is_answer_cell)
    except Exception:  # noqa: BLE001 - a broken notebook shows no figures
        return {}


def _write_answer_figures(out: Path, student: str, answers: str, figures: dict) -> None:
    if not figures:
        return
    page = grades.answers_page(out, student)
    text = feedback.add_figures(page.read_text(encoding="utf-8"), figures, page.parent, student)
    _write_atomic(page, text)


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
    code_mod, _ = _modules(options)
    rubric = code_mod.load_rubric()
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
        path = grades.student_dir(out, student) / "results.json"
        if not path.is_file():
            continue
        result = grades.with_manual(json.loads(path.read_text(encoding="utf-8")), student, manual)
        _write_atomic(path, json.dumps(result, indent=2) + "\n")
        feedback_md = feedback.feedback_markdown(student, result)
        _write_atomic(grades.student_dir(out, student) / "feedback.md", feedback_md)


def _grade_all(zips: list[Path], options: Options, edition: Path):
    from tqdm import tqdm

    bar = tqdm(total=len(zips), desc="grading", unit="submission", disable=not options.progress)
    if options.jobs <= 1 or len(zips) == 1:
        for archive in zips:
            yield _safe_grade(archive, options, edition)
            bar.update()
        bar.close()
        return
    with ProcessPoolExecutor(max_workers=options.jobs, mp_context=get_context("spawn")) as pool:
        futures = {pool.submit(_safe_grade, a, options, edition): a for a in zips}
        for future in as_completed(futures):
            yield future.result()
            bar.update()
    bar.close()


def _safe_grade(archive: Path, options: Options, edition: Path) -> dict:
    try:
        return grade_one(archive, options, edition)
    except Exception:  # noqa: BLE001 - every zip gets its row
        print(f"grade: {archive.name}: {traceback.format_exc()}", file=sys.stderr)
        return {"student": archive.name[: -len(".zip")], "points": {}, "status": "crashed"}
