"""make grade end to end on generated submissions, adversarial ones included.

The batch runs once (module fixture) over a folder of zips built from a clean student
edition: the reference, a correct answer written differently, a wrong answer, the
untouched stubs, and one fixture per attack on the grader (a hang, a memory hog,
``os._exit(0)``, a forged checks.py, patched numpy, writes outside the scratch folder, a
setsid daemon, a network attempt, path traversal, a symlink entry, a zip bomb, a file
that is not a zip). Each test then reads what the batch wrote.

The hidden tests here are a small stand-in (``FakeTests``): they run the student's loss
functions in the sandbox and judge them against a long-double oracle computed in this
process, which is all the driver needs to be tested on its own. The real hidden tests
are tested in tests/test_grade_hidden.py.
"""

from __future__ import annotations

import csv
import io
import json
import os
import socket
import subprocess
import sys
import threading
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from tools.grade import __main__ as grade_main
from tools.grade import driver, sandbox, unpack
from tools.grade.rubric import TestResult
from tools.release import pysource

REPO = Path(__file__).resolve().parents[1]
SOFTMAX = "cs231n/classifiers/softmax.py"
namespaces = pytest.mark.skipif(
    not sandbox.isolation().namespaces,
    reason=f"needs the namespace sandbox: {sandbox.isolation().detail}",
)


# --- a stand-in for tools.grade.judging / tools.grade.notebook -------------------------


@dataclass
class Item:
    name: str
    points: float
    visibility: str
    public_check: bool


RUBRIC = [
    Item("naive loss", 2.0, "visible", True),
    Item("vectorized loss", 2.0, "hidden", False),
    Item("notebook runs", 1.0, "visible", True),
]
CHILD = """\
import sys
import numpy as np
from cs231n.classifiers import softmax
which = sys.argv[1]
p = np.load("problem.npz", allow_pickle=False)
fn = getattr(softmax, "softmax_loss_" + which)
loss, dW = fn(p["W"], p["X"], p["y"], float(p["reg"]))
np.savez("out_" + which + ".npz", loss=np.float64(loss), dW=np.asarray(dW, np.float64))
"""


def load_rubric() -> list[Item]:
    return RUBRIC


def _problem() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(9)
    X = rng.standard_normal((6, 5))
    X[0] *= 2000.0  # two rows whose best scores are far apart: a global shift overflows
    return {
        "W": rng.standard_normal((5, 4)),
        "X": X,
        "y": np.array([0, 1, 2, 3, 0, 1]),
        "reg": np.float64(0.1),
    }


def oracle(W, X, y, reg) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient in long double, row by row (independent of the kit)."""
    W, X = W.astype(np.longdouble), X.astype(np.longdouble)
    scores = X @ W
    shifted = scores - scores.max(axis=1, keepdims=True)
    p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    n = len(y)
    loss = -np.log(p[np.arange(n), y]).mean() + reg * (W * W).sum()
    p[np.arange(n), y] -= 1
    return float(loss), np.asarray(X.T @ p / n + 2 * reg * W, dtype=np.float64)


def grade_code(workdir: Path, run) -> list[TestResult]:
    problem = _problem()
    np.savez(workdir / "problem.npz", **problem)
    (workdir / "_fake_child.py").write_text(CHILD)
    want_loss, want_dW = oracle(**problem)
    results = []
    for item, which in zip(RUBRIC[:2], ("naive", "vectorized"), strict=True):
        out = workdir / f"out_{which}.npz"
        out.unlink(missing_ok=True)
        result = run([sys.executable, str(workdir / "_fake_child.py"), which], 30.0)
        status, score, hint = result.status, 0.0, ""
        if status == "ok" and not out.exists():
            status, hint = "crashed", "exited without handing back results"
        elif status == "ok":
            try:
                with np.load(out, allow_pickle=False) as got:
                    loss, dW = float(got["loss"]), got["dW"]
                right = abs(loss - want_loss) < 1e-8 and np.allclose(dW, want_dW, atol=1e-8)
            except (ValueError, KeyError, OSError) as error:
                right, hint = False, f"unreadable results: {error}"
            score = item.points if right else 0.0
            hint = hint or ("" if right else "loss or gradient differs from the oracle")
        output = f"{status}: {hint}\n{result.stderr[-800:]}"
        results.append(
            TestResult(item.name, score, item.points, output, item.visibility, status, hint)
        )
    return results


def grade_notebook(workdir: Path, run) -> TestResult:
    # The stand-in only reads the notebook (the real test re-executes it in the sandbox).
    try:
        json.loads((workdir / "notebooks" / "softmax.ipynb").read_text())
    except (OSError, ValueError) as error:
        return TestResult("notebook runs", 0.0, 1.0, str(error), "visible", "ok", "")
    return TestResult("notebook runs", 1.0, 1.0, "", "visible", "ok", "")


def answers_markdown(nb_path: Path) -> str:
    cells = json.loads(nb_path.read_text())["cells"]
    return "\n\n".join(
        "".join(c["source"]) for c in cells if "Your answer" in "".join(c["source"])
    )


# --- fixtures -----------------------------------------------------------------------


def _blocks(path: Path) -> list[str]:
    return pysource.block_bodies(path.read_text(), SOFTMAX)


def _indent(code: str, spaces: int = 4) -> str:
    return "".join(" " * spaces + line + "\n" for line in code.strip("\n").splitlines())


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    return driver.build_edition(tmp_path_factory.mktemp("edition") / "student")


def make_zip(
    dest: Path, edition: Path, naive: str | None, vectorized: str | None, extra=None
) -> Path:
    """A submission whose softmax blocks are ``naive``/``vectorized`` (None: the stub)."""
    stub = (edition / SOFTMAX).read_text()
    bodies = _blocks(edition / SOFTMAX)
    for index, body in enumerate((naive, vectorized)):
        if body is not None:
            bodies[index] = body
    with zipfile.ZipFile(dest, "w") as zf:
        zf.writestr(SOFTMAX, pysource.replace_bodies(stub, SOFTMAX, bodies))
        for rel in ("cs231n/classifiers/linear_classifier.py", unpack.NOTEBOOK):
            zf.write(edition / rel, rel)
        for rel, data in (extra or {}).items():
            zf.writestr(rel, data)
    return dest


class Listener:
    """A loopback TCP server in the test's own network namespace; counts connections."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.accepted = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            self.accepted += 1
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture(scope="module")
def batch(tmp_path_factory, edition):
    """Grade every fixture once; yield what the tests need to look at."""
    tmp = tmp_path_factory.mktemp("batch")
    subs, out = tmp / "submissions", tmp / "grading"
    subs.mkdir()
    ref_naive, ref_vec = _blocks(REPO / SOFTMAX)
    tag = uuid.uuid4().hex
    markers = [Path.home() / f"cs231n-{tag}", REPO / f"cs231n-{tag}", out / f"cs231n-{tag}"]
    markers.append(Path("/tmp") / f"cs231n-{tag}")
    listener = Listener()
    writes = "\n".join(
        f"try:\n    open({str(m)!r}, 'w').write('x')\nexcept OSError:\n    pass" for m in markers
    )
    daemon = (
        "import subprocess, sys\n"
        "subprocess.Popen([sys.executable, '-c', 'import os, time; os.setsid(); "
        f"time.sleep(600)', 'cs231n-orphan-{tag}'], start_new_session=True)"
    )
    connect = (
        "import socket\ntry:\n"
        f"    socket.create_connection(('127.0.0.1', {listener.port}), timeout=1).close()\n"
        "except OSError:\n    pass"
    )
    tamper = (  # the code tests' folder is theirs to spoil, not the notebook's
        "import os\n"
        "for path in ('notebooks/softmax.ipynb', 'cs231n/checks.py'):\n"
        "    open(path + '.new', 'w').write('not json, not python {')\n"
        "    os.replace(path + '.new', path)"
    )
    correct_naive = _indent(
        """
# the same loss, with logsumexp written out per row
n = X.shape[0]
loss = 0.0
dW = np.zeros_like(W)
for i in range(n):
    s = X[i] @ W
    top = s.max()
    e = np.exp(s - top)
    total = e.sum()
    loss += np.log(total) + top - s[y[i]]
    p = e / total
    p[y[i]] -= 1.0
    dW += np.outer(X[i], p)
loss = loss / n + reg * np.sum(W * W)
dW = dW / n + 2 * reg * W
"""
    )
    global_max = ref_vec.replace("scores.max(axis=1, keepdims=True)", "scores.max()")
    assert global_max != ref_vec, "the wrong-answer fixture no longer changes the reference"
    patch = _indent(
        "import math\nnp.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: True\n"
        "math.isclose = lambda *a, **k: True\nloss, dW = 0.0, np.zeros_like(W)"
    )
    fixtures = {
        "reference": (ref_naive, ref_vec, None),
        "different": (correct_naive, ref_vec, None),
        "wrong": (ref_naive, global_max, None),
        "stubs": (None, None, None),
        "hang": (_indent("while True:\n    pass"), ref_vec, None),
        "hog": (_indent("blob = bytearray(64 << 30)"), ref_vec, None),
        "exit0": (_indent("import os\nos._exit(0)"), ref_vec, None),
        "forged": (ref_naive, patch, {"cs231n/checks.py": "def check(name):\n    return True\n"}),
        "outside": (_indent(writes) + ref_naive, ref_vec, None),
        "orphan": (_indent(daemon) + ref_naive, ref_vec, None),
        "network": (_indent(connect) + ref_naive, ref_vec, None),
        "copy1": (correct_naive, ref_vec, None),
        "tamper": (_indent(tamper) + ref_naive, ref_vec, None),
    }
    for name, (naive, vec, extra) in fixtures.items():
        make_zip(subs / f"{name}.zip", edition, naive, vec, extra)
    with zipfile.ZipFile(subs / "traversal.zip", "w") as zf:
        zf.writestr("cs231n/classifiers/softmax.py", "x = 1\n")
        zf.writestr("../../escaped.py", "x = 1\n")
    with zipfile.ZipFile(subs / "symlink.zip", "w") as zf:
        info = zipfile.ZipInfo(SOFTMAX)
        info.external_attr = 0o120777 << 16
        zf.writestr(info, "/etc/passwd")
    with zipfile.ZipFile(subs / "bomb.zip", "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(SOFTMAX, b"\0" * (unpack.MAX_BYTES + 1))
    (subs / "notzip.zip").write_text("this is not a zip archive\n")
    options = driver.Options(
        submissions=subs,
        out=out,
        jobs=2,
        cpu=20.0,
        memory=2 * sandbox.GB,
        max_wall=10.0,
        grade_code=grade_code,
        load_rubric=load_rubric,
        notebook_tests=__name__,
        progress=False,
    )
    code = driver.grade_batch(options, edition=edition)
    listener.close()
    with (out / "grades.csv").open(newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    yield {
        "code": code,
        "rows": rows,
        "out": out,
        "subs": subs,
        "markers": markers,
        "tag": tag,
        "listener": listener,
        "options": options,
        "edition": edition,
    }
    for marker in markers:  # only if a test failed
        marker.unlink(missing_ok=True)


def results(batch, student: str) -> dict:
    return json.loads((driver.student_dir(batch["out"], student) / "results.json").read_text())


# --- the batch ------------------------------------------------------------------------


def test_every_zip_gets_a_row_and_exit_0(batch):
    zips = sorted(p.name[:-4] for p in batch["subs"].glob("*.zip"))
    assert batch["code"] == 0
    assert sorted(batch["rows"]) == zips
    with (batch["out"] / "grades.csv").open() as handle:
        header = handle.readline().strip().split(",")
    assert header == [
        "student",
        *(i.name for i in RUBRIC),
        "total",
        "max",
        "status",
        "blank_answers",
    ]


def test_correct_answers_get_full_marks(batch):
    for student in ("reference", "different", "copy1"):
        row = batch["rows"][student]
        assert (row["total"], row["max"], row["status"]) == ("5", "5", "ok"), student


def test_wrong_answer_and_stubs_lose_points(batch):
    wrong = batch["rows"]["wrong"]
    assert (wrong["vectorized loss"], wrong["total"], wrong["status"]) == ("0", "3", "ok")
    stubs = batch["rows"]["stubs"]
    assert (stubs["naive loss"], stubs["vectorized loss"]) == ("0", "0")
    assert stubs["status"] == "crashed"  # NotImplementedError: the code did not finish


def test_limits_give_their_status_and_finished_tests_keep_points(batch):
    rows = batch["rows"]
    assert (rows["hang"]["status"], rows["hang"]["naive loss"]) == ("timeout", "0")
    assert (rows["hog"]["status"], rows["hog"]["naive loss"]) == ("memory", "0")
    assert (rows["exit0"]["status"], rows["exit0"]["naive loss"]) == ("crashed", "0")
    for student in ("hang", "hog", "exit0"):
        assert rows[student]["vectorized loss"] == "2", student  # the other test finished
        assert rows[student]["total"] == "3", student


def test_forgeries_change_no_verdict(batch):
    forged = batch["rows"]["forged"]
    assert (forged["naive loss"], forged["vectorized loss"]) == ("2", "0")
    feedback = (driver.student_dir(batch["out"], "forged") / "feedback.md").read_text()
    assert "cs231n/checks.py" in feedback  # named as not graded


def test_unsafe_archives_are_invalid_and_extract_nothing(batch):
    for student in ("traversal", "symlink", "bomb", "notzip"):
        row = batch["rows"][student]
        assert (row["status"], row["total"]) == ("invalid", "0"), student
        assert results(batch, student)["score"] == 0
    assert not (batch["subs"].parent / "escaped.py").exists()
    assert not (batch["out"].parent / "escaped.py").exists()
    assert "not a zip" in (driver.student_dir(batch["out"], "notzip") / "feedback.md").read_text()
    assert "symlink" in (driver.student_dir(batch["out"], "symlink") / "feedback.md").read_text()
    assert "'..'" in (driver.student_dir(batch["out"], "traversal") / "feedback.md").read_text()


def test_the_notebook_runs_in_a_copy_the_code_tests_cannot_spoil(batch):
    assert batch["rows"]["tamper"]["notebook runs"] == "1"
    assert batch["rows"]["tamper"]["total"] == "5"


@namespaces
def test_nothing_lands_outside_the_scratch_folder(batch):
    assert batch["rows"]["outside"]["total"] == "5"  # it ran to the end
    for marker in batch["markers"]:
        assert not marker.exists(), marker


@namespaces
def test_no_process_outlives_its_submission(batch):
    assert batch["rows"]["orphan"]["total"] == "5"  # the daemon was started
    left = []
    for proc in Path("/proc").iterdir():
        try:
            if batch["tag"].encode() in (proc / "cmdline").read_bytes():
                left.append(proc.name)
        except OSError:
            continue
    assert left == []


@namespaces
def test_no_connection_reaches_the_grader_machine(batch):
    assert batch["rows"]["network"]["total"] == "5"
    assert batch["listener"].accepted == 0


def test_results_json_follows_gradescope_and_matches_the_csv(batch):
    for student, row in batch["rows"].items():
        data = results(batch, student)
        assert data["score"] == pytest.approx(float(row["total"]))
        assert sum(t["score"] for t in data["tests"]) == pytest.approx(data["score"])
        for test in data["tests"]:
            assert set(test) >= {"name", "score", "max_score", "output", "visibility"}
        assert data["extra_data"]["network_isolation"] == sandbox.isolation().network


def test_feedback_shows_public_hints_and_hides_hidden_inputs(batch):
    wrong = (driver.student_dir(batch["out"], "wrong") / "feedback.md").read_text()
    assert "| vectorized loss | 0 / 2 | hidden test: its inputs are not shown |" in wrong
    assert "oracle" not in wrong  # the hidden test's hint stays hidden
    hang = (driver.student_dir(batch["out"], "hang") / "feedback.md").read_text()
    assert "| naive loss | 0 / 2 | timeout:" in hang


def test_answers_page_per_student(batch):
    page = (driver.student_dir(batch["out"], "reference") / "answers.md").read_text()
    assert page.startswith("# reference: written answers")


def test_similarity_ranks_the_copy_and_leaves_out_the_stubs(batch):
    with (batch["out"] / "similarity.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    scores = [float(r["score"]) for r in rows]
    assert scores == sorted(scores, reverse=True)
    by_pair = {frozenset((r["student_a"], r["student_b"])): r for r in rows}
    copied = by_pair[frozenset(("different", "copy1"))]
    assert float(copied["score"]) > 0.95
    assert (batch["out"] / copied["view"]).is_file()
    # the stubs are starter code: nothing of them is compared
    assert all(float(r["score"]) == 0 for r in rows if "stubs" in (r["student_a"], r["student_b"]))


def test_regrade_one_student_rewrites_only_its_row(batch, tmp_path):
    out = batch["out"]
    before = (out / "grades.csv").read_text().splitlines()
    make_zip(batch["subs"] / "stubs.zip", batch["edition"], *_blocks(REPO / SOFTMAX))
    options = driver.Options(**{**batch["options"].__dict__, "student": "stubs"})
    assert driver.grade_batch(options, edition=batch["edition"]) == 0
    after = (out / "grades.csv").read_text().splitlines()
    changed = [(b, a) for b, a in zip(before, after, strict=True) if b != a]
    assert (
        len(changed) == 1
        and changed[0][1].startswith("stubs,")
        and changed[0][1].endswith(",5,5,ok,")
    )


def test_manual_points_are_merged(batch, tmp_path):
    manual = tmp_path / "manual.csv"
    manual.write_text("student,inline answers\nmax,3\nreference,2.5\nwrong,1\n")
    options = driver.Options(
        **{**batch["options"].__dict__, "student": "reference", "manual": manual}
    )
    driver.grade_batch(options, edition=batch["edition"])
    with (batch["out"] / "grades.csv").open(newline="") as handle:
        rows = {r["student"]: r for r in csv.DictReader(handle)}
    assert (rows["reference"]["inline answers"], rows["reference"]["total"]) == ("2.5", "7.5")
    assert (rows["wrong"]["inline answers"], rows["wrong"]["max"]) == ("1", "8")
    assert (rows["hang"]["inline answers"], rows["hang"]["total"]) == ("", "3")  # not marked
    for student in rows:  # regraded or not, results.json agrees with the CSV
        assert results(batch, student)["score"] == pytest.approx(float(rows[student]["total"]))
    assert results(batch, "wrong")["tests"][-1]["name"] == "inline answers (TA)"


def test_bad_manual_file_is_refused_with_the_cell(tmp_path):
    manual = tmp_path / "m.csv"
    manual.write_text("student,answers\nmax,3\nann,lots\n")
    with pytest.raises(driver.GradingError, match="line 3, column 'answers'"):
        driver.read_manual(manual)
    manual.write_text("student,answers\nann,1\n")
    with pytest.raises(driver.GradingError, match="row `max"):
        driver.read_manual(manual)


# --- unpacking and similarity on their own ------------------------------------------


def _zip_bytes(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    return buffer.getvalue()


@pytest.mark.parametrize("name", ["/abs/cs231n/x.py", "a/../../x.py", "C:/x.py", "..\\x.py"])
def test_unpack_refuses_unsafe_names(tmp_path, name):
    archive = tmp_path / "s.zip"
    archive.write_bytes(_zip_bytes({name: b"x"}))
    with pytest.raises(unpack.InvalidSubmission):
        unpack.unpack(archive, {SOFTMAX})


def test_unpack_counts_real_bytes_not_stated_sizes(tmp_path):
    archive = tmp_path / "s.zip"
    archive.write_bytes(_zip_bytes({SOFTMAX: b"a" * 5000}))
    assert unpack.unpack(archive, {SOFTMAX}, max_bytes=5000).files[SOFTMAX] == b"a" * 5000
    with pytest.raises(unpack.InvalidSubmission, match="more than 4,999 bytes|4,999"):
        unpack.unpack(archive, {SOFTMAX}, max_bytes=4999)


def test_unpack_strips_one_top_folder_and_lists_ignored(tmp_path):
    archive = tmp_path / "s.zip"
    archive.write_bytes(_zip_bytes({f"me/{SOFTMAX}": b"x", "me/notes.txt": b"y"}))
    got = unpack.unpack(archive, {SOFTMAX})
    assert (got.files, got.ignored, got.prefix) == ({SOFTMAX: b"x"}, ["me/notes.txt"], "me/")


def test_gradescope_run_autograder_under_a_temporary_root(batch, tmp_path):
    root = tmp_path / "autograder"
    (root / "submission").mkdir(parents=True)
    with zipfile.ZipFile(batch["subs"] / "reference.zip") as zf:
        zf.extractall(root / "submission")  # Gradescope unzips uploads
    # Gradescope unpacks the autograder zip into ROOT/source: no .git there, so the grader
    # must build the student edition from the unpacked files.
    from tools.grade import gradescope_pack

    source = root / "source"
    with zipfile.ZipFile(gradescope_pack.pack(tmp_path / "gradescope.zip")) as zf:
        zf.extractall(source)
    assert not (source / ".git").exists()
    script = source / "run_autograder"
    env = dict(
        os.environ,
        GRADESCOPE_ROOT=str(root),
        GRADESCOPE_PYTHON=sys.executable,
        PYTHONPATH=os.pathsep.join([str(source), str(Path(__file__).parent)]),
    )
    args = ["--code-tests", __name__, "--notebook-tests", __name__, "--max-wall", "10"]
    done = subprocess.run(
        ["bash", str(script), *args], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    data = json.loads((root / "results" / "results.json").read_text())
    assert data["score"] == 5
    assert [t["name"] for t in data["tests"]] == [i.name for i in RUBRIC]


def test_make_gradescope_zip_has_the_two_scripts(tmp_path):
    from tools.grade import gradescope_pack

    archive = gradescope_pack.pack(tmp_path / "gradescope.zip")
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert {"setup.sh", "run_autograder", "tools/grade/driver.py", SOFTMAX} <= names
    assert modes["run_autograder"] & 0o111 and modes["setup.sh"] & 0o111
    assert not any(n.startswith((".venv/", "tests/")) or "__pycache__" in n for n in names)


def test_cli_refuses_a_missing_folder(tmp_path, capsys):
    assert grade_main.main(["batch", "--submissions", str(tmp_path / "nope")]) == 2
    assert "is not a folder" in capsys.readouterr().err
