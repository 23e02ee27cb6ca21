"""The hidden tests (tools/grade: cases, oracle, runner, judging), the notebook re-execution
and the answers page.

What is held here:
- the reference gets full marks and the untouched student edition 0 for code, graded in
  the sandbox the driver uses;
- every answer in the catalogue (tests/answers.py) gets full marks when right and loses
  points when wrong;
- forgeries (patched numpy and math, a fake cs231n.checks, fake output files, symlinks
  planted for the grader to write through) change no verdict and reach nothing outside;
- a crash or a hang costs only the calls it happened in;
- the long-double oracle that judges the loss agrees with independent facts;
- the notebook is re-executed with its stored outputs cleared, and the answers page.

The catalogue runs in rounds, one answer per block in each tree, each answer judged on
the items of its own block, so 112 answers take about 27 gradings.
"""

from __future__ import annotations

import os
import resource
import shutil
import subprocess
import time
import zipfile
from pathlib import Path

import nbformat
import numpy as np
import pytest
from answers import (  # the shared catalogue of student answers
    ANSWERS,
    LINEAR,
    NAIVE,
    PREDICT,
    SAMPLE,
    SOFTMAX,
    TOGETHER,
    UPDATE,
    VECTORIZED,
    apply,
)
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from cs231n import _properties as props
from cs231n.gradient_check import eval_numerical_gradient
from tools.grade import cases, child, judging, oracle, rubric, runner, sandbox
from tools.grade import notebook as nbgrade
from tools.release import build
from tools.release import notebook as nbsteps

REPO = Path(__file__).resolve().parents[1]

OWNED = {  # the hidden items that judge each block and nothing else
    NAIVE: ["naive_loss", "naive_gradient", "naive_stability"],
    VECTORIZED: [
        "vectorized_loss",
        "vectorized_gradient",
        "vectorized_stability",
        "vectorized_no_loop",
        "vectorized_float32",
    ],
    SAMPLE: ["train_sampling"],
    UPDATE: ["train_update"],
    PREDICT: ["predict"],
    TOGETHER: ["grid_search"],
}


def _prepend_to_naive(work: Path, code: str) -> None:
    """Put ``code`` (indented for the function body) first in softmax_loss_naive's block."""
    text = (work / SOFTMAX).read_text()
    marker = "    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****\n"
    start = text.index(marker) + len(marker)
    (work / SOFTMAX).write_text(text[:start] + code + text[start:])


# --- trees and runners ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def trees(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The student edition and the reference code over it, built once for the session."""
    root = tmp_path_factory.mktemp("grade-trees")
    edition = build.build_edition(REPO)
    build.write_tree(edition, root / "student")
    reference = {p: f for p, f in build.select_files(REPO).items() if p.startswith("cs231n/")}
    build.write_tree({**edition, **reference}, root / "reference")
    return {"student": root / "student", "reference": root / "reference"}


def scratch(trees: dict[str, Path], base: str, dest: Path) -> Path:
    """A scratch folder: a copy of one of the trees (the bundled data linked, not copied)."""

    def link(src: str, dst: str) -> None:
        if "/datasets/" in src:
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(trees[base], dest, copy_function=link)
    return dest


def sandboxed(workdir: Path):
    """The runner the driver gives: the sandbox, with this submission's limits."""
    sandbox.prepare_workdir(workdir)

    def run(argv: list[str], wall: float) -> sandbox.RunResult:
        return sandbox.run(argv, workdir, wall=wall, cpu=60, memory=4 * sandbox.GB)

    return run


def plain(workdir: Path):
    """A runner without the sandbox (a child process only), for the many catalogue rounds.

    The verdicts do not depend on the sandbox, only on the arrays the child writes; CPU
    is measured the way the sandbox does, from the kernel's accounting of the child.
    """

    def run(argv: list[str], wall: float) -> sandbox.RunResult:
        started = time.monotonic()
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        with subprocess.Popen(
            argv, cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        ) as process:
            try:
                _, stderr = process.communicate(timeout=wall)
            except subprocess.TimeoutExpired:
                process.kill()
                process.communicate()
                return sandbox.RunResult("timeout", None, "", "", wall, wall)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
        status = "ok" if process.returncode == 0 else "crashed"
        wall_used = time.monotonic() - started
        return sandbox.RunResult(status, process.returncode, "", stderr.decode(), wall_used, cpu)

    return run


def scores(results: list[rubric.TestResult]) -> dict[str, float]:
    return {r.name: r.score for r in results}


def cases_passed(result: rubric.TestResult) -> tuple[int, int]:
    """(passed, run) from an item's output, "N of M hidden cases passed." (an ungraded
    item earns 0 points either way)."""
    passed, run = result.output.split(" hidden cases passed")[0].split(" of ")
    return int(passed), int(run)


# --- the rubric -------------------------------------------------------------------------------


def test_rubric_items_have_cases_and_points() -> None:
    items = rubric.load_rubric()
    names = [i.name for i in items]
    assert names[-1] == rubric.NOTEBOOK_ITEM
    assert set(names[:-1]) == set(judging.item_cases()), "every code item needs hidden cases"
    assert all(i.points > 0 for i in items if i.graded)
    ungraded = [i for i in items if not i.graded]
    assert [i.name for i in ungraded] == ["grid_search"] and ungraded[0].points == 0
    assert "not graded" in ungraded[0].description.lower()
    assert {i.visibility for i in items if i.name != "notebook"} == {"after_published"}
    from cs231n.checks import CHECKS

    assert all(i.check in CHECKS for i in items if i.check is not None)
    assert items[-1].public_check and items[-1].visibility == "visible"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[]", "not a rubric"),
        ('{"items": [{"name": "a", "points": -1, "visibility": "visible"}]}', "points"),
        ('{"items": [{"name": "a", "points": 1, "visibility": "public"}]}', "visibility"),
        ('{"items": [{"name": "a", "points": 1}]}', "needs name, points and visibility"),
        (
            '{"items": [{"name": "a", "points": 1, "visibility": "visible", "public_check": 1}]}',
            "public_check must be true or false",
        ),
        (
            '{"items": [{"name": "a", "points": 1, "visibility": "visible"},'
            ' {"name": "a", "points": 2, "visibility": "visible"}]}',
            "not a fresh identifier",
        ),
    ],
)
def test_a_bad_rubric_is_refused_by_name(tmp_path: Path, text: str, problem: str) -> None:
    path = tmp_path / "rubric.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=problem):
        rubric.load_rubric(path)


def test_hidden_inputs_differ_from_the_public_checks() -> None:
    from cs231n import checks

    W, X, y = checks._problem()
    for call in cases.calls().values():
        if call.kind == "loss":
            assert call.inputs["W"].shape != W.shape or not np.allclose(call.inputs["W"], W)
    dtypes = {c.inputs["W"].dtype for c in cases.calls().values() if c.kind == "loss"}
    assert dtypes == {np.dtype(np.float32), np.dtype(np.float64)}
    regs = {float(c.inputs["reg"]) for c in cases.calls().values() if c.kind == "loss"}
    assert checks._REG not in regs and len(regs) >= 4


def test_hidden_tests_are_not_in_the_student_edition(trees, tmp_path: Path) -> None:
    archive = tmp_path / "student.zip"
    build.write_zip(build.build_edition(REPO), archive, root="student")
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
        texts = [zf.read(n) for n in names if n.endswith((".py", ".md", ".ipynb", "Makefile"))]
    assert not [n for n in names if "/tools/" in n or "grade" in n.rsplit("/", 1)[-1]]
    for marker in (b"vectorized_BIG", b"oracle_loss", b"grade-request", b"_grade_child"):
        assert not any(marker in text for text in texts), marker


# --- the oracle that judges -------------------------------------------------------------------


def test_oracle_at_zero_weights_is_log_C_with_closed_form_gradient() -> None:
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((7, 4)), np.array([0, 1, 2, 4, 4, 1, 0])
    loss, dW = oracle.oracle_loss({"W": np.zeros((4, 5)), "X": X, "y": y, "reg": np.array(0.3)})
    assert loss == pytest.approx(np.log(5), rel=1e-15)
    Y = np.eye(5)[y]
    np.testing.assert_allclose(dW, X.T @ (np.full((7, 5), 0.2) - Y) / 7, rtol=1e-13)


def test_oracle_gradient_matches_a_numerical_one_and_survives_huge_scores() -> None:
    inputs = cases.calls()["naive_L1"].inputs
    _, dW = oracle.oracle_loss(inputs)

    def f(W: np.ndarray) -> float:
        return oracle.oracle_loss({**inputs, "W": W})[0]

    numerical = eval_numerical_gradient(f, inputs["W"].copy(), verbose=False)
    assert props.column_errors(dW, numerical).max() < 1e-8
    for key in ("naive_S1", "naive_S2", "vectorized_F2"):
        loss, dW = oracle.oracle_loss(cases.calls()[key].inputs)
        assert np.isfinite(loss) and np.all(np.isfinite(dW))
    assert oracle.oracle_loss(cases.calls()["naive_S2"].inputs)[0] > 900  # true class far below


# --- reference, student edition, catalogue ----------------------------------------------------


def test_reference_gets_full_marks_in_the_sandbox(trees, tmp_path: Path) -> None:
    work = scratch(trees, "reference", tmp_path / "work")
    results = judging.grade_code(work, sandboxed(work))
    assert [r.name for r in results] == [i.name for i in rubric.code_items()]
    for r in results:
        assert (r.score, r.status) == (r.max_score, "ok"), r.output


def test_untouched_student_edition_gets_zero_for_code(trees, tmp_path: Path) -> None:
    work = scratch(trees, "student", tmp_path / "work")
    results = judging.grade_code(work, sandboxed(work))
    assert all(r.score == 0 and r.status == "ok" for r in results), scores(results)
    assert "NotImplementedError" in results[0].output


def _rounds() -> list[list]:
    """Answers grouped so that each round holds at most one answer per block: a wrong
    answer to one block must not cost a right answer to another its points."""
    by_block: dict[tuple, list] = {key: [] for key in OWNED}
    for answer in ANSWERS:
        by_block[tuple(answer.key)].append(answer)
    count = max(len(v) for v in by_block.values())
    return [[v[r] for v in by_block.values() if r < len(v)] for r in range(count)]


@pytest.mark.parametrize("answers", _rounds(), ids=lambda r: "+".join(a.id for a in r))
def test_catalogue_right_answers_full_marks_wrong_ones_lose_points(trees, tmp_path, answers):
    work = scratch(trees, "reference", tmp_path / "work")
    for answer in answers:
        apply(work, answer)
    items = [name for a in answers for name in OWNED[tuple(a.key)]]
    got = {r.name: r for r in judging.grade_code(work, plain(work), items)}
    for answer in answers:
        owned = [got[name] for name in OWNED[tuple(answer.key)]]
        earned, most = (sum(n) for n in zip(*map(cases_passed, owned), strict=True))
        detail = "; ".join(f"{r.name} {r.score}/{r.max_score}: {r.output}" for r in owned)
        if answer.correct:
            assert earned == most, f"right answer {answer.id} failed cases: {detail}"
            assert all(r.score == r.max_score for r in owned), detail
        else:
            assert earned < most, f"wrong answer {answer.id} ({answer.mistake}) lost nothing"
            graded = [r for r in owned if r.max_score > 0]
            assert not graded or sum(r.score for r in graded) < sum(r.max_score for r in graded)
        # ok, or memory when the answer itself ran out of memory (a wrong one may build
        # an N x N matrix on the 100,000-example case); never a crash or a hang
        assert all(
            r.status == "ok" or (r.status == "memory" and "MemoryError" in r.output) for r in owned
        ), detail


def test_catalogue_has_right_answers_in_several_blocks() -> None:
    right = {tuple(a.key) for a in ANSWERS if a.correct}
    assert len([a for a in ANSWERS if a.correct]) >= 3
    assert len(right) >= 3


# --- forgeries --------------------------------------------------------------------------------

FORGE_CHECKS = """
import math, sys, types
import numpy as _np

for _name in ("allclose", "array_equal", "isclose", "array_equiv"):
    setattr(_np, _name, lambda *a, **k: True)
_np.testing.assert_allclose = lambda *a, **k: None
math.isclose = lambda *a, **k: True
_fake = types.ModuleType("cs231n.checks")
_fake.check = lambda name: True
_fake.CHECKS = {}
sys.modules["cs231n.checks"] = _fake
"""

FORGE_OUTPUTS = """
import io, json, os, zipfile
import numpy as _np

def _npz(arrays):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            _np.lib.format.write_array(member, _np.asarray(value), allow_pickle=False)
            archive.writestr(key + ".npy", member.getvalue())
    return buffer.getvalue()

if os.path.exists("grade-request.npz"):
    with _np.load("grade-request.npz") as _request:
        _plan = json.loads(str(_request["plan"]))
    for _call in _plan:  # "passed" flags, zeros and a reference guess for every call
        with open("grade-out." + _call["id"] + ".npz", "wb") as _f:
            _f.write(_npz({"passed": True, "score": 100.0, "loss": 0.0, "dW": _np.zeros((1, 1)),
                           "y_pred": _np.zeros(1, int), "W": _np.zeros((1, 1))}))
    os.symlink("/etc/passwd", "grade-out.predict_P0.npz.tmp")
    os._exit(0)
"""


def _with_module_code(work: Path, code: str) -> None:
    path = work / SOFTMAX
    path.write_text(path.read_text() + "\n" + code)


@pytest.fixture(scope="module")
def wrong_vectorized_scores(trees, tmp_path_factory) -> dict[str, float]:
    """Scores of the reference with a global-max vectorized loss: what forgeries must match."""
    work = scratch(trees, "reference", tmp_path_factory.mktemp("wrong") / "work")
    _global_max(work)
    return scores(judging.grade_code(work, plain(work)))


def _global_max(work: Path) -> None:
    text = (work / SOFTMAX).read_text()
    (work / SOFTMAX).write_text(
        text.replace("scores -= scores.max(axis=1, keepdims=True)", "scores -= scores.max()")
    )


def test_patched_numpy_math_and_checks_change_no_verdict(
    trees, tmp_path, wrong_vectorized_scores
) -> None:
    # the mistake is seen: in every case where rows' scores lie 1000s apart
    assert wrong_vectorized_scores["vectorized_stability"] == 2.5
    work = scratch(trees, "reference", tmp_path / "work")
    _global_max(work)
    _with_module_code(work, FORGE_CHECKS)
    assert scores(judging.grade_code(work, sandboxed(work))) == wrong_vectorized_scores


def test_forged_output_files_and_symlinks_change_no_verdict(trees, tmp_path: Path) -> None:
    canary = tmp_path / "canary.txt"
    canary.write_text("untouched")
    work = scratch(trees, "student", tmp_path / "work")
    _with_module_code(work, FORGE_OUTPUTS)
    # Planted before grading: the grader must replace, not write through, these links.
    for name in (runner.CHILD_NAME, child.REQUEST, child.STARTED, "grade-out.naive_L0.npz"):
        os.symlink(canary, work / name)
    results = judging.grade_code(work, sandboxed(work))
    assert all(r.score == 0 for r in results), scores(results)
    assert canary.read_text() == "untouched"


def test_a_crash_or_hang_costs_only_the_calls_it_happened_in(trees, tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "CALL_WALL", 5.0)
    work = scratch(trees, "reference", tmp_path / "work")
    trap = (
        "    import os, time\n"
        "    if X.shape[0] == 1:  # the one-example problem: die\n"
        "        os._exit(3)\n"
        "    if X.shape[0] == 40:  # the absent-classes problem: hang\n"
        "        time.sleep(600)\n"
    )
    _prepend_to_naive(work, trap)
    got = {r.name: r for r in judging.grade_code(work, sandboxed(work))}
    naive_loss = got["naive_loss"]
    assert naive_loss.score == pytest.approx(naive_loss.max_score / 2), naive_loss.output
    assert naive_loss.status == "timeout"
    assert "one example: the process ended during this call (crashed)" in naive_loss.output
    assert got["naive_stability"].score == got["naive_stability"].max_score
    others = [r for name, r in got.items() if not name.startswith("naive")]
    assert all(r.score == r.max_score and r.status == "ok" for r in others)


def test_a_function_that_runs_out_of_memory_gets_status_memory(trees, tmp_path):
    # 6 GB at once is past the 4 GB address-space cap: MemoryError in the child, caught
    # there and reported; the item's status must say memory, not ok.
    work = scratch(trees, "reference", tmp_path / "work")
    hog = "    hog = bytearray(6 * 2**30)\n"
    _prepend_to_naive(work, hog)
    got = {r.name: r for r in judging.grade_code(work, sandboxed(work))}
    assert got["naive_loss"].score == 0 and got["naive_loss"].status == "memory"
    assert "MemoryError" in got["naive_loss"].output
    assert got["vectorized_loss"].status == "ok"
    assert got["vectorized_loss"].score == got["vectorized_loss"].max_score


def test_a_function_that_hangs_on_every_input_leaves_the_budget_to_the_others(
    trees, tmp_path, monkeypatch
):
    # Two hangs fit in the budget: the first naive call's and one more. Without running
    # the other functions' calls first, the remaining naive calls would use it all up.
    monkeypatch.setattr(runner, "CALL_WALL", 4.0)
    monkeypatch.setattr(runner, "BUDGET_WALL", 10.0)
    work = scratch(trees, "reference", tmp_path / "work")
    hang = "    import time\n    time.sleep(600)\n"
    _prepend_to_naive(work, hang)
    got = {r.name: r for r in judging.grade_code(work, sandboxed(work))}
    assert all(got[n].score == 0 and got[n].status == "timeout" for n in got if "naive" in n)
    others = [r for name, r in got.items() if "naive" not in name and name != "reg_term"]
    assert others and all(r.score == r.max_score and r.status == "ok" for r in others), [
        (r.name, r.score, r.output) for r in others
    ]


def test_a_function_that_hung_twice_is_not_run_again(trees, tmp_path, monkeypatch):
    # A budget that would fit every naive call's hang: after MAX_HANGS of them the others
    # are failed without a child each, so the hang costs MAX_HANGS call walls, not the budget.
    monkeypatch.setattr(runner, "CALL_WALL", 3.0)
    monkeypatch.setattr(runner, "BUDGET_WALL", 600.0)
    work = scratch(trees, "reference", tmp_path / "work")
    _prepend_to_naive(work, "    import time\n    time.sleep(600)\n")
    batch = [c for c in cases.calls().values() if c.id != cases.BIG]
    naive = [c for c in batch if c.fn == "softmax_loss_naive"]
    assert len(naive) > runner.MAX_HANGS + 1
    started = time.monotonic()
    outcomes, _, runs = runner.run_calls(work, sandboxed(work), batch)
    took = time.monotonic() - started
    problems = [outcomes[c.id].problem for c in naive]
    assert all(outcomes[c.id].status == "timeout" for c in naive), problems
    assert sum("during this call" in p for p in problems) == runner.MAX_HANGS, problems
    skipped = f"not run: softmax_loss_naive ran out of time on {runner.MAX_HANGS} earlier cases"
    assert problems.count(skipped) == len(naive) - runner.MAX_HANGS
    assert runs == runner.MAX_HANGS and took < runner.MAX_HANGS * 3.0 + 30
    others = [c for c in batch if c.fn != "softmax_loss_naive"]
    assert others and all(outcomes[c.id].status == "ok" for c in others)


def test_a_death_while_importing_costs_every_call_in_one_run(trees, tmp_path: Path) -> None:
    work = scratch(trees, "reference", tmp_path / "work")
    _with_module_code(
        work, "import os\nos._exit(0)  # before any call: nothing to blame but all\n"
    )
    outcomes, _, runs = runner.run_calls(work, plain(work), list(cases.calls().values()))
    assert runs == 1
    assert {o.status for o in outcomes.values()} == {"crashed"}
    assert all("importing your cs231n" in o.problem for o in outcomes.values())


# --- reading what the child wrote -------------------------------------------------------------


def _npz(**arrays: object) -> bytes:
    return child._npz_bytes(arrays)


def test_outputs_with_pickles_odd_names_or_dtypes_are_refused() -> None:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        member = io.BytesIO()
        np.lib.format.write_array(member, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        archive.writestr("loss.npy", member.getvalue())
    for data in (
        buffer.getvalue(),
        _npz(passed=np.array(True)),
        _npz(loss=np.zeros(2, dtype=[("a", "f8")])),
        b"not a zip",
    ):
        outcome = runner.parse_outcome(data, "loss")
        assert outcome.outputs is None and "unexpected or cannot be read" in outcome.problem
    assert set(runner.parse_outcome(_npz(loss=np.array(1.0)), "loss").outputs) == {"loss"}


def test_folder_reads_no_symlink_or_fifo_and_writes_fresh_files(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.write_bytes(b"secret")
    work = tmp_path / "work"
    work.mkdir()
    os.symlink(outside, work / "link")
    os.mkfifo(work / "fifo")
    (work / "plain").write_bytes(b"data")
    folder = runner.Folder(work)
    try:
        assert folder.read("link", 100) is None
        assert folder.read("fifo", 100) is None
        assert folder.read("plain", 3) is None  # over the limit
        assert folder.read("plain", 100) == b"data"
        folder.write("link", b"new")
    finally:
        folder.close()
    assert outside.read_bytes() == b"secret"
    assert (work / "link").read_bytes() == b"new" and not (work / "link").is_symlink()


# --- the notebook -----------------------------------------------------------------------------


def _tiny_notebook(work: Path, cells: list) -> None:
    nb = new_notebook(cells=cells)
    (work / "notebooks" / "softmax.ipynb").write_text(nbformat.writes(nb))


def test_notebook_is_rerun_and_stored_outputs_count_for_nothing(trees, tmp_path: Path) -> None:
    work = scratch(trees, "student", tmp_path / "work")
    stored_error = new_code_cell("import os\nprint(os.environ['CS231N_DATASET'])")
    stored_error.outputs = [new_output("error", ename="ValueError", evalue="", traceback=[])]
    faked = new_code_cell("# TODO: x\n1 / 0", execution_count=2)  # stored as if it ran
    faked.outputs = [new_output("execute_result", {"text/plain": "0.5"}, execution_count=2)]
    cells = [
        stored_error,
        new_code_cell(""),
        faked,
        new_markdown_cell("x"),
        new_code_cell("x = 1"),
    ]
    _tiny_notebook(work, cells)
    # The code tests run first; code that swaps in a notebook that runs clean gains nothing.
    swap = nbformat.writes(new_notebook(cells=[new_code_cell("x = 1")]))
    path = work / LINEAR
    path.write_text(
        path.read_text() + "\nfrom pathlib import Path as _P\n"
        f"_P('notebooks/softmax.ipynb').write_text({swap!r})\n"
    )
    judging.grade_code(work, sandboxed(work), ["predict"])
    assert '"x = 1"' in (work / "notebooks" / "softmax.ipynb").read_text()  # it was swapped
    # As the driver does: the notebook runs in a fresh copy of what was submitted.
    fresh = scratch(trees, "student", tmp_path / "fresh")
    _tiny_notebook(fresh, cells)
    work = fresh
    result = nbgrade.grade_notebook(fresh, sandboxed(fresh))
    assert result.name == "notebook" and result.status == "ok"
    assert result.score == 0, result.output  # no TODO cell's work, no answer
    assert "raised ZeroDivisionError" in result.output  # the submitted cell ran, re-run
    ran = nbformat.read(work / child.NOTEBOOK_OUT, as_version=4)
    # the grader's first cell comes before the student's
    assert ran.cells[1].outputs == [new_output("stream", name="stdout", text="fashion-mnist\n")]


def test_a_notebook_that_cannot_be_read_gets_zero_without_a_run(trees, tmp_path: Path) -> None:
    work = scratch(trees, "student", tmp_path / "work")
    (work / "notebooks" / "softmax.ipynb").write_text("{not json")

    def run(argv: list[str], wall: float) -> sandbox.RunResult:
        raise AssertionError("nothing should run")

    result = nbgrade.grade_notebook(work, run)
    assert result.score == 0 and "cannot be read" in result.output
    (work / "notebooks" / "softmax.ipynb").unlink()
    os.symlink(REPO / "notebooks" / "softmax.ipynb", work / "notebooks" / "softmax.ipynb")
    assert "missing" in nbgrade.grade_notebook(work, run).output


def test_answers_page_has_the_written_answers_and_notebook_code(trees, tmp_path: Path) -> None:
    reference = nbformat.read(REPO / "notebooks" / "softmax.ipynb", as_version=4)
    answers = [c.source for c in reference.cells if nbsteps.ANSWER_TAG in nbsteps.tags(c)]
    code = [c.source for c in reference.cells if nbsteps.SOLUTION_TAG in nbsteps.tags(c)]
    page = nbgrade.answers_markdown(REPO / "notebooks" / "softmax.ipynb")
    assert answers and all(a.strip() in page for a in answers)
    assert code and all(c.rstrip() in page for c in code)
    assert "**Inline question 1.**" in page  # each answer under its question

    student = nbgrade.answers_markdown(trees["student"] / "notebooks" / "softmax.ipynb")
    assert student.count("*Not answered.*") == len(answers)
    assert "raise NotImplementedError" in student

    untagged = new_markdown_cell("**Your answer:** my own words")  # the tag was dropped
    tricky = new_code_cell("# TODO: search\ns = '```'\n")
    path = tmp_path / "nb.ipynb"
    path.write_text(
        nbformat.writes(new_notebook(cells=[new_markdown_cell("Q?"), untagged, tricky]))
    )
    page = nbgrade.answers_markdown(path)
    assert "> Q?" in page and "my own words" in page
    assert "````python\n# TODO: search\ns = '```'\n````" in page
