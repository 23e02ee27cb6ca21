"""Grading that no submission can break: each test is one attack on the grader, run for real.

The attacks: a command that forges the sandbox's report through an inherited descriptor, a
``setsid`` daemon that holds the grader's pipes open, student code run as root outside a
namespace, a submission that fills the disk, zip names that dodge the allow-list, student
ids that collide with the grader's own files, notebooks that make the answers page or the
notebook's judge blow up in time or memory, a worker that dies mid-submission, a notebook
watcher that replaces the executed notebook, and solutions hidden in a notebook's metadata.
Limits are kept short so that the tests stay fast.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from pathlib import Path

import pytest

from tools.grade import sandbox

REPO = Path(__file__).resolve().parents[1]
GB, MB = sandbox.GB, sandbox.MB
SYSTEM_PYTHON = next(
    (p for p in ("/usr/bin/python3", sys.executable) if Path(p).exists()), sys.executable
)


def _reachable_python() -> str | None:
    for candidate in (sys.executable, "/usr/bin/python3"):
        if Path(candidate).exists() and sandbox._reachable(Path(candidate)):
            return candidate
    return None


OPEN_PYTHON = _reachable_python()


@pytest.fixture(params=["namespaces", "rlimits"])
def mode(request, monkeypatch):
    if request.param == "namespaces" and not sandbox.isolation().namespaces:
        pytest.skip(f"needs the namespace sandbox: {sandbox.isolation().detail}")
    if request.param == "rlimits":
        monkeypatch.setenv("CS231N_GRADE_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    yield request.param
    monkeypatch.delenv("CS231N_GRADE_SANDBOX", raising=False)
    sandbox.isolation.cache_clear()


@pytest.fixture
def workdir() -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
    scratch.chmod(0o711)  # the sandbox's user must pass through (not under a 0700 tmp_path)
    work = scratch / "work"
    work.mkdir()
    sandbox.prepare_workdir(work)
    yield work
    shutil.rmtree(scratch, ignore_errors=True)


def python() -> str:
    """The interpreter for sandboxed commands: one the sandbox's user can run."""
    if sandbox.isolation().namespaces or os.geteuid() != 0:
        return sys.executable
    if OPEN_PYTHON is None:
        pytest.skip("no Python that other users can run, and no namespaces")
    return OPEN_PYTHON


def _running(tag: str) -> bool:
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:
            continue
        if tag.encode() in cmdline and b"sandbox_init.py" not in cmdline:
            return True
    return False


# --- nothing the command can touch carries a verdict --------------------------------------


def test_the_command_holds_no_descriptor_but_0_1_2(mode, workdir):
    code = """
    import os
    found = []
    for fd in range(3, 4096):
        try:
            os.fstat(fd)
        except OSError:
            continue
        found.append(fd)
    print(found)
    """
    result = sandbox.run(
        [python(), "-c", textwrap.dedent(code)], workdir, wall=20, cpu=20, memory=GB
    )
    assert (result.status, result.stdout.strip()) == ("ok", "[]")


FORGE = """
import fcntl, json, os, time
start = time.process_time()
while time.process_time() - start < 1.0:  # burn a second of CPU
    pass
forged = json.dumps({"returncode": 0, "timed_out": False, "wall": 0.0, "cpu": 0.0})
for fd in range(3, 1024):
    try:
        fcntl.fcntl(fd, 1031, 4096)  # F_SETPIPE_SZ: shrink the pipe to one page
        os.write(fd, forged.encode().ljust(4096))  # fill it: the real report would block
    except OSError:
        pass
raise SystemExit(3)
"""


def test_a_forged_report_changes_nothing(mode, workdir):
    start = time.monotonic()
    result = sandbox.run([python(), "-c", FORGE], workdir, wall=15, cpu=20, memory=GB)
    # A blocked report would hold the grader until its own clock (wall + 30 s) ran out.
    assert time.monotonic() - start < 40
    assert (result.status, result.returncode) == ("crashed", 3)
    assert result.cpu >= 0.8  # measured by the kernel (wait4), not by the forger's JSON


@pytest.mark.skipif(os.geteuid() != 0, reason="starting a grader as another user needs root")
def test_a_setsid_daemon_cannot_hold_a_non_root_grader(tmp_path):
    # Without root the sandbox is rlimits only and the command runs as the grader's user;
    # a daemon that keeps the grader's descriptors open must neither block the grader nor
    # outlive the command.
    setpriv = shutil.which("setpriv")
    if setpriv is None or not sandbox._reachable(Path(SYSTEM_PYTHON)):
        pytest.skip("needs setpriv and a Python every user can run")
    tag = f"cs231n-daemon-{uuid.uuid4().hex}"
    daemon = textwrap.dedent(
        f"""
        import os, sys, time
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                sys.argv.append({tag!r})
                os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(600)",
                                          {tag!r}])
            os._exit(0)
        time.sleep(0.3)
        """
    )
    grader = tmp_path / "grader.py"
    grader.write_text(
        textwrap.dedent(
            f"""
            import os, sys, tempfile
            from pathlib import Path
            from tools.grade import sandbox
            work = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
            sandbox.prepare_workdir(work)
            result = sandbox.run([sys.executable, "-c", {daemon!r}], work, wall=20, cpu=20,
                                 memory=sandbox.GB)
            print(result.status, sandbox.isolation().namespaces)
            """
        )
    )
    grader.chmod(0o644)
    tmp_path.chmod(0o755)
    for parent in tmp_path.parents:
        if parent == Path("/tmp"):
            break
        parent.chmod(parent.stat().st_mode | 0o005)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "HOME": "/tmp"}
    argv = [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", SYSTEM_PYTHON]
    start = time.monotonic()
    try:
        done = subprocess.run(
            [*argv, str(grader)], env=env, capture_output=True, text=True, timeout=40
        )
    finally:
        for proc in Path("/proc").iterdir():  # a daemon left by a failure dies here
            try:
                if tag.encode() in (proc / "cmdline").read_bytes():
                    os.kill(int(proc.name), 9)
            except (OSError, ValueError):
                continue
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["ok", "False"]
    assert time.monotonic() - start < 30
    assert not _running(tag)


# --- root only in a namespace ---------------------------------------------------------------


@pytest.mark.skipif(os.geteuid() != 0, reason="about what root does without namespaces")
def test_root_without_namespaces_never_runs_student_code_as_root(monkeypatch, workdir):
    # An interpreter in a folder other users cannot enter (a pyenv Python under /root): a
    # user of its own could not run it, and root must not run it instead.
    monkeypatch.setenv("CS231N_GRADE_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    closed = Path(tempfile.mkdtemp(prefix="cs231n-closed-"))
    try:
        closed.chmod(0o700)
        interpreter = closed / "python3"
        shutil.copy2(os.path.realpath(SYSTEM_PYTHON), interpreter)
        marker = workdir / "whoami"
        code = f"import os; open({str(marker)!r}, 'w').write(str(os.getuid()))"
        message = ""
        try:
            sandbox.run([str(interpreter), "-c", code], workdir, wall=10, cpu=10, memory=GB)
        except sandbox.SandboxError as error:
            message = str(error)
        assert not marker.exists(), f"student code ran as uid {marker.read_text()}"
        assert "would run as root" in message and "chmod o+x" in message
        assert "refused" in sandbox.user_line() or sandbox._reachable(Path(sys.executable))
    finally:
        shutil.rmtree(closed)
        sandbox.isolation.cache_clear()


def test_make_grade_prints_the_user_and_mode(tmp_path):
    done = subprocess.run(
        [sys.executable, "-m", "tools.grade", "batch", "--submissions", str(tmp_path / "no")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "grade: sandbox: " in done.stderr
    assert "grade: student code runs as " in done.stderr
    if os.geteuid() == 0 and sandbox.isolation().namespaces:
        assert "a user of its own" in done.stderr


# --- a disk budget per submission -----------------------------------------------------------

FILL = """
import os
written = 0
try:
    for i in range(400):
        with open(f"fill{i}", "wb") as f:
            f.write(b"x" * (1 << 20))
        written += 1
except OSError as error:
    print("stopped", type(error).__name__)
print(written)
"""


def test_the_fallback_stops_a_command_past_its_disk_budget(monkeypatch, workdir):
    monkeypatch.setenv("CS231N_GRADE_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    try:
        limits = sandbox.Limits(wall=30, cpu=30, memory=GB, disk=32 * MB)
        result = sandbox.run_limited([python(), "-c", FILL], workdir, limits)
    finally:
        sandbox.isolation.cache_clear()
    held = sum(p.stat().st_size for p in workdir.glob("fill*"))
    assert result.status == "crashed"
    assert "disk budget of 32 MB" in result.stderr
    assert held < 400 * MB // 2  # stopped within a poll or so of the budget, not at 400 MB


# --- zip names are normalised before the allow-list and the duplicate check ----------------

TUNING = "cs231n/tuning.py"


def _zip(path: Path, entries: list[tuple[str, bytes]]) -> Path:
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, data in entries:
            zf.writestr(zipfile.ZipInfo(name), data)
    return path


@pytest.mark.parametrize(
    "other", ["cs231n/./tuning.py", "cs231n//tuning.py", "./cs231n/tuning.py", "CS231N/Tuning.py"]
)
def test_a_second_spelling_of_one_file_is_refused(tmp_path, other):
    from tools.grade import unpack

    archive = _zip(tmp_path / "s.zip", [(TUNING, b"first = 1\n"), (other, b"second = 2\n")])
    with pytest.raises(unpack.InvalidSubmission, match="one file once their names"):
        unpack.unpack(archive, {TUNING})


def test_a_name_spelled_oddly_is_still_the_file_it_names(tmp_path):
    from tools.grade import unpack

    archive = _zip(tmp_path / "s.zip", [(".//cs231n/./tuning.py", b"x = 1\n")])
    assert unpack.unpack(archive, {TUNING}).files == {TUNING: b"x = 1\n"}


# --- the release strips metadata and attachments; the leak check reads the whole JSON -------


def _reference_with_hidden_solution(dest: Path) -> tuple[Path, str]:
    """A copy of this checkout whose notebook hides a solution line in metadata and in an
    attachment; returns the copy and that line."""
    import base64
    import json

    from tools.release import build

    for rel, file in build.select_files(REPO, git=(REPO / ".git").exists()).items():
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
    for rel in ("tools/release/student",):
        shutil.copytree(REPO / rel, dest / rel, dirs_exist_ok=True)
    path = dest / "notebooks" / "softmax.ipynb"
    nb = json.loads(path.read_text())
    solution = next(c for c in nb["cells"] if "solution" in c["metadata"].get("tags", []))
    source = "".join(solution["source"])
    line = max(
        (ln.strip() for ln in source.splitlines() if not ln.strip().startswith("#")), key=len
    )
    solution["metadata"]["backup"] = {"code": source}
    nb["metadata"]["grader_notes"] = line
    markdown = next(c for c in nb["cells"] if c["cell_type"] == "markdown")
    markdown["attachments"] = {
        "answer.txt": {"text/plain": base64.b64encode(line.encode()).decode()}
    }
    path.write_text(json.dumps(nb, indent=1))
    return dest, line


def test_the_release_ships_no_metadata_or_attachment_of_the_reference(tmp_path):
    import json

    from tools.release import build

    src, line = _reference_with_hidden_solution(tmp_path / "src")
    edition = build.build_edition(src, git=False)
    shipped = edition["notebooks/softmax.ipynb"].data.decode()
    assert line not in shipped
    nb = json.loads(shipped)
    assert set(nb["metadata"]) <= {"kernelspec", "language_info"}
    assert all(set(c.get("metadata", {})) <= {"tags"} for c in nb["cells"])
    assert not any("attachments" in c for c in nb["cells"])


def test_the_leak_check_reads_metadata_and_attachments(tmp_path):
    import json

    from tools.release import leaks

    src, line = _reference_with_hidden_solution(tmp_path / "src")
    data = (src / "notebooks" / "softmax.ipynb").read_bytes()
    nb = json.loads(data)
    for cell in nb["cells"]:  # the solution's own cell no longer holds it in its source
        if "solution" in cell["metadata"].get("tags", []):
            cell["source"] = "# TODO: stubbed\nraise NotImplementedError"
    nb["metadata"].pop("grader_notes")
    only_metadata = json.dumps(nb).encode()
    assert leaks.find_leaks({line}, {"nb.ipynb": only_metadata})
    for cell in nb["cells"]:
        cell["metadata"].pop("backup", None)
    only_attachment = json.dumps(nb).encode()
    assert leaks.find_leaks({line}, {"nb.ipynb": only_attachment})


# --- one submission never costs another its grade ------------------------------------------
#
# A batch of honest zips beside hostile ones, graded with a small stand-in for the hidden
# tests (this module: load_rubric, grade_code, grade_notebook) and the real answers page.
# The stand-in's code test runs one sandboxed command; the hostile zips kill the grading
# process, fill the disk, or carry a notebook built to make the answers page blow up.

import dataclasses  # noqa: E402
import json  # noqa: E402
import signal  # noqa: E402
import zipfile  # noqa: E402

from tools.grade import driver  # noqa: E402
from tools.grade import notebook as nbgrade  # noqa: E402
from tools.grade.rubric import TestResult  # noqa: E402

SOFTMAX = "cs231n/classifiers/softmax.py"
NOTEBOOK = "notebooks/softmax.ipynb"


@dataclasses.dataclass
class Item:
    name: str
    points: float
    visibility: str = "visible"
    public_check: bool = True


RUBRIC = [Item("code", 1.0), Item("notebook", 1.0)]


def load_rubric() -> list[Item]:
    return RUBRIC


def grade_code(workdir: Path, run) -> list[TestResult]:
    text = (workdir / SOFTMAX).read_text()
    if "KILL_THE_GRADER" in text:  # stands for a worker the kernel's OOM killer ended
        os.kill(os.getpid(), signal.SIGKILL)
    fill = "for i in range(1000):\n    open(f'fill{i}', 'wb').write(b'x' * (1 << 20))"
    result = run([sys.executable, "-c", fill if "FILL_THE_DISK" in text else "pass"], 30.0)
    score = 1.0 if result.status == "ok" else 0.0
    return [TestResult("code", score, 1.0, result.stderr[-300:], "visible", result.status, "")]


def grade_notebook(workdir: Path, run) -> TestResult:
    return TestResult("notebook", 1.0, 1.0, "", "visible", "ok", "")


answers_markdown = nbgrade.answers_markdown


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    return driver.build_edition(tmp_path_factory.mktemp("edition") / "student")


def _submission(path: Path, edition: Path, marker: str = "", notebook: bytes | None = None):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(SOFTMAX, (edition / SOFTMAX).read_text() + f"\n# {marker}\n")
        zf.writestr(
            NOTEBOOK, notebook if notebook is not None else (edition / NOTEBOOK).read_bytes()
        )
    return path


def _hostile_notebook(lines: int, answers: int) -> bytes:
    question = {"cell_type": "markdown", "metadata": {}, "source": "why?\n" * lines}
    answer = {"cell_type": "markdown", "metadata": {"tags": ["answer"]}, "source": "because"}
    nb = {
        "cells": [question] + [dict(answer, id=f"a{i}") for i in range(answers)],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    nb["cells"][0]["id"] = "q"
    return json.dumps(nb).encode()


def test_the_answers_page_is_linear_and_capped(tmp_path):
    # The question above every answer used to be copied whole: 3,000 answers under a
    # 20,000-line question made a page of 300 MB, in the grader's own process.
    path = tmp_path / "nb.ipynb"
    path.write_bytes(_hostile_notebook(lines=20_000, answers=3_000))
    start = time.monotonic()
    page = nbgrade.answers_markdown(path)
    assert time.monotonic() - start < 60
    assert len(page) <= 1.1 * (1 << 20)
    assert "because" in page and "why?" in page


def test_reading_a_notebook_runs_under_limits_of_its_own(tmp_path, monkeypatch):
    from tools.grade import contained

    # Millions of tiny JSON objects: small on disk, large once parsed.
    path = tmp_path / "nb.ipynb"
    path.write_bytes(b'{"nbformat": 4, "metadata": {}, "cells": [' + b"{}," * 3_000_000 + b"{}]}")
    tight = dataclasses.replace(contained.JUDGE_LIMITS, memory=300 * MB, cpu=20, wall=40)
    monkeypatch.setattr(contained, "JUDGE_LIMITS", tight)
    monkeypatch.setattr(contained.run_judge, "__defaults__", (tight,))
    with pytest.raises((contained.JudgeFailed, ValueError)) as caught:
        nbgrade.answers_markdown(path)
    if isinstance(caught.value, contained.JudgeFailed):
        assert caught.value.status in ("memory", "timeout", "crashed")


@pytest.fixture(scope="module")
def hostile_batch(tmp_path_factory, edition):
    tmp = tmp_path_factory.mktemp("hostile")
    subs, out, scratch = tmp / "submissions", tmp / "grading", tmp / "scratch"
    subs.mkdir()
    scratch.mkdir()
    scratch.chmod(0o711)
    for name in ("alice", "bob"):
        _submission(subs / f"{name}.zip", edition)
    _submission(subs / "killer.zip", edition, "KILL_THE_GRADER")
    _submission(subs / "filler.zip", edition, "FILL_THE_DISK")
    _submission(subs / "grades.csv.zip", edition)
    _submission(subs / "similarity.csv.zip", edition)
    _submission(subs / "pager.zip", edition, notebook=_hostile_notebook(20_000, 3_000))
    budget = {f.name for f in dataclasses.fields(driver.Options)} & {"disk"}
    options = driver.Options(
        submissions=subs,
        out=out,
        jobs=2,
        cpu=20.0,
        memory=2 * GB,
        max_wall=20.0,
        **dict.fromkeys(budget, 96 * MB),
        grade_code=grade_code,
        load_rubric=load_rubric,
        notebook_tests=__name__,
        progress=False,
    )
    saved = tempfile.tempdir
    tempfile.tempdir = str(scratch)  # every scratch folder of the batch lands here
    try:
        code = driver.grade_batch(options, edition=edition)
    finally:
        tempfile.tempdir = saved
    with (out / "grades.csv").open() as handle:
        import csv

        rows = {r["student"]: r for r in csv.DictReader(handle)}
    return {"code": code, "rows": rows, "out": out, "subs": subs, "scratch": scratch}


def test_every_row_is_written_beside_a_dying_worker(hostile_batch):
    rows = hostile_batch["rows"]
    names = sorted(p.name[: -len(".zip")] for p in hostile_batch["subs"].glob("*.zip"))
    assert hostile_batch["code"] == 0 and sorted(rows) == names
    assert rows["killer"]["status"] == "crashed"
    results = driver.student_dir(hostile_batch["out"], "killer") / "results.json"
    assert json.loads(results.read_text())["extra_data"]["status"] == "crashed"


def test_honest_rows_score_as_they_would_alone(hostile_batch):
    for name in ("alice", "bob", "grades.csv", "similarity.csv", "pager"):
        row = hostile_batch["rows"][name]
        assert (row["status"], row["total"]) == ("ok", "2"), name


def test_filling_the_disk_fails_only_that_submission(hostile_batch):
    row = hostile_batch["rows"]["filler"]
    assert row["status"] == "crashed" and row["code"] == "0"
    assert hostile_batch["rows"]["alice"]["status"] == "ok"


def test_student_ids_cannot_name_the_graders_files(hostile_batch):
    out = hostile_batch["out"]
    assert (out / "grades.csv").is_file() and (out / "similarity.csv").is_file()
    for name in ("grades.csv", "similarity.csv"):
        assert (driver.student_dir(out, name) / "results.json").is_file()
    graders = ["grades.csv", "report.html", "similarity", "similarity.csv", "students"]
    assert sorted(p.name for p in out.iterdir()) == graders


def test_no_scratch_folder_is_left_behind(hostile_batch):
    assert list(hostile_batch["scratch"].iterdir()) == []


# --- the executed notebook comes back from where the student's code cannot reach ----------

WATCHER = r"""
import json, os, time
work = os.path.abspath("..")  # the kernel runs in notebooks/
forged_inodes = set()
end = time.time() + 90
while time.time() < end:
    names = os.listdir(work)
    source = next((n for n in names if n.endswith(".ipynb") and "in" in n), None)
    for name in names:
        path = os.path.join(work, name)
        if not (name.endswith(".ipynb") and "out" in name) or source is None:
            continue
        try:
            if os.stat(path).st_ino in forged_inodes:
                continue
            nb = json.load(open(os.path.join(work, source)))
            count = 0
            for cell in nb["cells"]:
                if cell["cell_type"] == "code" and "".join(cell["source"]).strip():
                    count += 1
                    cell["execution_count"], cell["outputs"] = count, []
            with open(path + ".tmp", "w") as f:
                json.dump(nb, f)
            forged_inodes.add(os.stat(path + ".tmp").st_ino)
            os.replace(path + ".tmp", path)
        except (OSError, ValueError):
            pass
    time.sleep(0.001)
"""


def test_a_watcher_cannot_replace_the_executed_notebook(edition, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_notebook

    scratch = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
    scratch.chmod(0o711)
    try:
        work = driver.scratch_copy(edition, {}, scratch / "notebook")
        start_watcher = (
            "import subprocess, sys\n"
            f"subprocess.Popen([sys.executable, '-c', {WATCHER!r}], start_new_session=True)"
        )
        cells = [
            new_code_cell(start_watcher),
            new_code_cell("# TODO: the search\nraise NotImplementedError"),
            new_code_cell("x = 1"),
        ]
        (work / NOTEBOOK).write_text(nbformat.writes(new_notebook(cells=cells)))
        sandbox.prepare_workdir(work)
        options = driver.Options(
            submissions=tmp_path, out=tmp_path / "out", cpu=60, memory=4 * GB, progress=False
        )
        run = driver._bound_run(work, options, {}, "notebook")
        result = nbgrade.grade_notebook(work, run)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    # a clean notebook swapped in would have no failed TODO cell to name
    assert result.score == 0, result.output
    assert "raised NotImplementedError" in result.output


def test_blank_written_answers_are_flagged_in_grades_csv(hostile_batch):
    import nbformat

    # The stand-in edition's notebook is the student edition: every answer is blank, and
    # the reference has one answer cell per question.
    reference = nbformat.read(REPO / NOTEBOOK, as_version=4)
    answers = sum("answer" in cell.metadata.get("tags", []) for cell in reference.cells)
    assert answers > 0
    assert hostile_batch["rows"]["alice"]["blank_answers"] == f"{answers} of {answers}"


def test_the_notebook_runs_only_up_to_the_optional_heading(edition, tmp_path):
    import nbformat
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    scratch = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
    scratch.chmod(0o711)
    try:
        work = driver.scratch_copy(edition, {}, scratch / "notebook")
        cells = [
            new_code_cell("x = 1"),
            new_markdown_cell("## Optional: going further"),
            new_code_cell("while True:\n    pass"),  # never graded, so never run
        ]
        (work / NOTEBOOK).write_text(nbformat.writes(new_notebook(cells=cells)))
        sandbox.prepare_workdir(work)
        options = driver.Options(submissions=tmp_path, out=tmp_path / "out", progress=False)
        start = time.monotonic()
        result = nbgrade.grade_notebook(work, driver._bound_run(work, options, {}, "notebook"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    assert result.status == "ok", result.output
    assert "did not finish" not in result.output and "did not reach" not in result.output
    assert time.monotonic() - start < 60
