"""The property library (cs231n/_properties.py), shared by the self-checks and the grader.

What is held here:
- each of the five properties (known best class, whole-row minibatches, the reg term's
  closed form, stability at huge scores, grid search against solo training) is stated
  once: replacing its judge or input maker changes both the public check and the hidden
  item that use it;
- every kind of hidden case has a public counterpart;
- the input makers' known answers agree with independent computations (long double,
  argmax of the constructed scores), and the judges accept right and refuse wrong data;
- what comes back from the child cannot cost more than its own items: a forged header
  claiming a huge array, an exception whose name carries the inputs;
- the no-loop timing's baseline runs no student code;
- ``check(name, **values)`` hands notebook checks their values.
"""

from __future__ import annotations

import io
import sys
import types
import zipfile
from pathlib import Path

import numpy as np
import pytest
from test_grade_hidden import plain, scratch, trees  # noqa: F401 - trees is a fixture

from cs231n import _properties as props
from cs231n import checks
from tools.grade import cases, child, judging, oracle, rubric, runner, status


class _Spied(Exception):
    pass


def _spy(monkeypatch, name: str) -> list:
    """Replace ``props.<name>`` with a spy that records its calls and fails."""
    calls: list = []

    def spy(*args, **kwargs):
        calls.append(args)
        raise props.Failed("the spy says no", "the spy says no")

    monkeypatch.setattr(props, name, spy)
    return calls


@pytest.fixture(scope="module")
def reference_outcomes(trees, tmp_path_factory) -> dict:  # noqa: F811
    """Every hidden call but the big one, run on the reference code (plain child)."""
    work = scratch(trees, "reference", tmp_path_factory.mktemp("props") / "work")
    wanted = [c for c in cases.calls().values() if c.id != cases.BIG]
    outcomes, _, _ = runner.run_calls(work, plain(work), wanted)
    return outcomes


def _item(name: str) -> rubric.Item:
    return next(i for i in rubric.load_rubric() if i.name == name)


def _hidden(name: str, outcomes: dict) -> rubric.TestResult:
    return judging.grade_item(_item(name), judging.item_cases()[name], outcomes)


# --- each property is stated once and used by both sides ----------------------------------

SHARED_JUDGES = [  # (property's judge, the public check, the hidden item)
    ("judge_best_class", "predict", "predict"),
    ("batch_indices", "train", "train_sampling"),
    ("judge_uniform", "train", "train_sampling"),
    ("judge_seeded", "train", "train_sampling"),
    ("judge_update", "train", "train_update"),
    ("judge_unchanged", "train", "train_sampling"),
    ("judge_unchanged", "softmax_loss_vectorized", "vectorized_loss"),
    ("judge_reg_term", "softmax_loss_naive", "reg_term"),
    ("judge_reg_term", "softmax_loss_vectorized", "reg_term"),
    ("judge_shift_invariant", "softmax_loss_naive", "naive_stability"),
    ("judge_shift_invariant", "softmax_loss_vectorized", "vectorized_stability"),
    ("judge_far_below", "softmax_loss_naive", "naive_stability"),
    ("judge_far_below", "softmax_loss_vectorized", "vectorized_stability"),
    ("judge_together", "grid_search", "grid_search"),
]


def test_the_reference_passes_every_hidden_case_it_is_judged_on(reference_outcomes):
    for _, _, item in SHARED_JUDGES:
        result = _hidden(item, reference_outcomes)
        passed, run = result.output.split(" hidden cases passed")[0].split(" of ")
        assert passed == run, result.output


@pytest.mark.parametrize(("judge", "check", "item"), SHARED_JUDGES, ids=lambda x: str(x))
def test_one_judge_decides_the_public_check_and_the_hidden_item(
    judge, check, item, reference_outcomes, monkeypatch, capsys
):
    spied = _spy(monkeypatch, judge)
    assert checks.check(check) is False
    assert "the spy says no" in capsys.readouterr().out and spied
    spied.clear()
    result = _hidden(item, reference_outcomes)
    assert spied, f"{item} does not use {judge}"
    assert (
        "the spy says no" in result.output
        and result.hint == f'Run check("{_item(item).check}") in the notebook.'
    )


MAKERS = [  # (property's input maker, a public check that uses it, a hidden call it made)
    ("best_class_problem", "predict", "predict_P0"),
    ("far_below_problem", "softmax_loss_naive", "naive_S2"),
    ("shifted_rows", "softmax_loss_vectorized", "vectorized_S1"),
    ("offsets", "softmax_loss_naive", "naive_S3"),
    ("grid_problem", "grid_search", "grid_G0"),
]


@pytest.fixture
def fresh_cases():
    """The hidden cases made anew (they are cached), before and after the test."""

    def clear() -> None:
        for cached in (cases.calls, oracle.expected_loss, oracle.reference_solo):
            cached.cache_clear()

    clear()
    yield
    clear()


@pytest.mark.parametrize(("maker", "check", "call"), MAKERS, ids=lambda x: str(x))
def test_one_maker_makes_the_public_and_the_hidden_inputs(
    maker, check, call, monkeypatch, fresh_cases
):
    made: list = []
    real = getattr(props, maker)

    def recording(*args, **kwargs):
        made.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(props, maker, recording)
    assert checks.check(check) is True and made
    made.clear()
    assert call in cases.calls() and made


def test_every_kind_of_hidden_case_has_a_public_counterpart():
    # Row offsets: the public stability check tries every pattern the hidden cases use.
    hidden_patterns = {pattern for pattern, _ in cases.SHIFTED.values()}
    assert hidden_patterns == set(props.OFFSET_HINTS)  # the public check loops over these
    # Predict: hidden lifts and near-ties, public ones the same kinds.
    hidden_lifts = {
        float(np.sign(round(float(np.median(c.known["scores"])), -3)))
        for c in cases.calls().values()
        if c.kind == "predict"
    }
    assert hidden_lifts <= {np.sign(lift) for lift in checks._LIFTS} == {-1.0, 0.0, 1.0}
    for c in cases.calls().values():
        if c.kind == "predict" and len(c.known["labels"]) > 1:
            top = np.sort(c.known["scores"], axis=1)[:, -2:]
            assert (top[:, 1] - top[:, 0] < 0.05).any(), c.id  # it holds near-ties
    # Sampling: hidden batch sizes above and below N; the public check runs both.
    sizes = {
        int(c.inputs["batch_size"]) > len(c.inputs["X"])
        for c in cases.calls().values()
        if c.kind == "sample"
    }
    assert sizes == {True, False}


# --- the makers' answers against independent computations ---------------------------------


def test_far_below_problem_expects_what_the_long_double_oracle_gives():
    for seed, N, C in ((29, 8, 5), (8106, 7, 4), (3, 1, 2)):
        inputs, (loss, dW) = props.far_below_problem(seed, N, C)
        want, dW_want = oracle.oracle_loss(inputs)
        assert loss == pytest.approx(want, rel=1e-12) and loss > 900
        np.testing.assert_allclose(dW, dW_want, rtol=1e-9, atol=1e-12)
        scores = inputs["X"] @ inputs["W"]
        assert (scores.argmax(axis=1) != inputs["y"]).all()
        # the best class moves between columns, so no fixed column is a safe shift
        assert len(set(scores.argmax(axis=1))) == min(N, C)


@pytest.mark.parametrize("pattern", ["up", "down", "apart"])
def test_shifted_rows_leave_the_softmax_unchanged(pattern):
    base = cases.loss_problem(5, N=9, D=4, C=3, reg=0.0)
    shifted = props.shifted_rows(base, props.offsets(pattern, 9))
    lifted = shifted["X"] @ shifted["W"] - base["X"] @ base["W"]
    assert np.ptp(lifted, axis=1).max() < 1e-9  # every row moves as one
    assert np.abs(lifted).max() >= 1000
    loss0, dW0 = oracle.oracle_loss(base)
    loss, dW = oracle.oracle_loss(shifted)
    assert loss == pytest.approx(loss0, rel=1e-9)
    np.testing.assert_allclose(dW[:4], dW0, rtol=1e-7, atol=1e-12)
    if pattern != "up":
        assert (props.offsets(pattern, 9) < 0).any()  # rows pushed down, not only lifted


@pytest.mark.parametrize("lift", [0.0, 1000.0, -1000.0])
def test_best_class_problem_labels_are_the_argmax_with_near_ties(lift):
    inputs, labels, scores = props.best_class_problem(1, 10, 6, 4, lift=lift)
    assert np.array_equal((inputs["X"] @ inputs["W"]).argmax(axis=1), labels)
    top = np.sort(scores, axis=1)[:, -2:]
    assert np.allclose(top[1::2, 1] - top[1::2, 0], 1e-3)
    with pytest.raises(props.Failed, match="no rounding"):
        props.judge_best_class(np.round(scores).argmax(axis=1), labels, scores)


def test_judge_uniform_and_seeded_accept_any_right_draws_and_refuse_wrong_ones():
    rng = np.random.default_rng(0)
    N, B = 12, 24
    right = [list(rng.integers(N, size=B)) for _ in range(100)]
    props.judge_uniform(right, N)
    props.judge_uniform([sorted(b) for b in right], N)  # the order within a batch is free
    ends_half = [list(np.round(rng.random(B) * (N - 1)).astype(int)) for _ in range(100)]
    with pytest.raises(props.Failed, match="probability 1/N"):
        props.judge_uniform(ends_half, N)
    small = [list(rng.permutation(N)[:6]) for _ in range(100)]
    with pytest.raises(props.Failed, match="with replacement"):
        props.judge_uniform(small, N)
    other = [list(rng.integers(N, size=B)) for _ in range(100)]
    preset = [list(rng.integers(N, size=B)) for _ in range(100)]
    props.judge_seeded(right, right, other, preset)
    with pytest.raises(props.Failed, match="not the draws of rng"):
        props.judge_seeded(right, right, right[1:] + other[:1], preset)  # seed + it
    with pytest.raises(props.Failed, match="not the draws of rng"):
        props.judge_seeded(right, right, other, right)  # a generator of its own


def test_judge_reg_term_is_the_closed_form():
    rng = np.random.default_rng(1)
    W, dW0 = rng.standard_normal((4, 3)), rng.standard_normal((4, 3))
    reg = 0.37
    plain_pair = (1.25, dW0)
    props.judge_reg_term(W, reg, plain_pair, (1.25 + reg * np.sum(W**2), dW0 + 2 * reg * W))
    with pytest.raises(props.Failed, match="factor 1/2"):
        props.judge_reg_term(W, reg, plain_pair, (1.25 + reg * np.sum(W**2) / 2, dW0))
    with pytest.raises(props.Failed, match=r"2\*reg\*W"):
        props.judge_reg_term(W, reg, plain_pair, (1.25 + reg * np.sum(W**2), dW0 + reg * W))


# --- what comes back from the child -------------------------------------------------------


def _forged_npz(name: str, shape: tuple) -> bytes:
    """An .npz whose one member's header claims ``shape``, with 8 bytes of data."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<i8", "fortran_order": False, "shape": shape}
    )
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(f"{name}.npy", header.getvalue() + b"\0" * 8)
    return buffer.getvalue()


def test_a_forged_huge_header_is_refused_unread():
    data = _forged_npz("y_pred", (2**45,))
    outcome = runner.parse_outcome(data, "predict")
    assert outcome.outputs is None and outcome.status == status.OK
    assert "2" not in outcome.problem  # no trace of the forged content


def test_a_forged_child_output_costs_only_its_own_items(trees, tmp_path):  # noqa: F811
    # The child writes every output, then a forged file replaces one call's: its header
    # claims 2**45 labels (256 TB). Only the item reading that call loses, one case.
    work = scratch(trees, "reference", tmp_path / "work")
    run_plain = plain(work)

    def run(argv, wall):
        result = run_plain(argv, wall)
        if argv[-1] == "calls" and (work / "grade-out.predict_P0.npz").exists():
            (work / "grade-out.predict_P0.npz").write_bytes(_forged_npz("y_pred", (2**45,)))
        return result

    items = ["predict", "naive_loss", "train_update"]
    got = {r.name: r for r in judging.grade_code(work, run, items)}
    predict = got.pop("predict")
    assert predict.score == pytest.approx(predict.max_score * 4 / 5), predict.output
    assert "unexpected or cannot be read" in predict.output
    assert all(r.score == r.max_score for r in got.values()), got


def test_exception_names_come_from_a_fixed_list():
    assert runner.error_name("ValueError") == "ValueError"
    assert runner.error_name("MemoryError") == "MemoryError"
    assert runner.error_name("N17x9x6_reg0p0_X00p797528489") == "an exception of your own"
    assert runner.error_name("<script>" * 100) == "an exception of your own"


def test_an_exception_named_after_the_inputs_shows_no_inputs(trees, tmp_path):  # noqa: F811
    work = scratch(trees, "reference", tmp_path / "work")
    path = work / "cs231n/classifiers/softmax.py"
    text = path.read_text()
    marker = "    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****\n"
    leak = (
        "    name = f'N{X.shape[0]}x{X.shape[1]}x{W.shape[1]}_reg{reg}'.replace('.', 'p')\n"
        "    raise type(name, (Exception,), {})()\n"
    )
    start = text.index(marker) + len(marker)  # the first block: softmax_loss_naive's
    path.write_text(text[:start] + leak + text[start:])
    (result,) = judging.grade_code(work, plain(work), ["naive_loss"])
    assert result.score == 0
    assert "your code raised an exception of your own" in result.output
    assert "_reg" not in result.output and "N17" not in result.output


BURN_IN_BASELINE = """
import json as _json, os as _os, time as _time
if _os.path.exists("grade-request.npz"):
    import numpy as _np
    with _np.load("grade-request.npz") as _request:
        if _json.loads(str(_request["plan"])) == []:  # the child that only imports
            _t = _time.process_time()
            while _time.process_time() - _t < 3:
                pass
"""


def test_the_no_loop_baseline_runs_no_student_code(trees, tmp_path):  # noqa: F811
    # A looped "vectorized" loss whose module burns 3 s of CPU only where the baseline
    # child would import it: were the baseline to import it, the loop would look free.
    import answers

    work = scratch(trees, "reference", tmp_path / "work")
    (looped,) = [a for a in answers.ANSWERS if a.id == "vec_loop_over_examples"]
    answers.apply(work, looped)
    path = work / "cs231n/classifiers/softmax.py"
    path.write_text(path.read_text() + BURN_IN_BASELINE)
    (result,) = judging.grade_code(work, plain(work), ["vectorized_no_loop"])
    assert result.score == 0, result.output
    # the loop's CPU is seen (or, on a loaded machine, the loop runs out of time)
    assert "Python loop" in result.output or result.status == "timeout", result.output


# --- check(name, **values) -----------------------------------------------------------------


@pytest.fixture
def notebook_checks(monkeypatch):
    """A stand-in ``cs231n.notebook_checks`` with two checks that record their values."""
    seen: dict = {}

    def search(results, best_val):
        seen["search"] = (results, best_val)
        if best_val < 0.3:
            return False, "best_val is below 0.3: train longer or widen the grid"
        return True, f"{len(results)} configurations, best_val {best_val}"

    def broken(**values):
        raise KeyError("oops")

    module = types.ModuleType("cs231n.notebook_checks")
    module.CHECKS = {"hyperparameter_search": search, "inline_question_2": broken}
    monkeypatch.setitem(sys.modules, "cs231n.notebook_checks", module)
    return seen


def test_check_hands_a_notebook_check_its_values(notebook_checks, capsys):
    results = {(1e-7, 2.5e4): (0.3, 0.35)}
    assert checks.check("hyperparameter_search", results=results, best_val=0.35) is True
    assert notebook_checks["search"] == (results, 0.35)
    assert capsys.readouterr().out == (
        "PASS hyperparameter_search: 1 configurations, best_val 0.35\n"
    )
    assert checks.check("hyperparameter_search", results={}, best_val=0.1) is False
    assert capsys.readouterr().out == (
        "FAIL hyperparameter_search: best_val is below 0.3: train longer or widen the grid\n"
    )


def test_a_notebook_check_called_wrongly_or_crashing_fails_with_a_line(notebook_checks, capsys):
    assert checks.check("hyperparameter_search", results={}) is False
    out = capsys.readouterr().out
    assert out.startswith("FAIL hyperparameter_search: ") and "best_val" in out
    assert checks.check("inline_question_2", answer="x") is False
    assert capsys.readouterr().out.startswith("FAIL inline_question_2: your code raised KeyError")


def test_unknown_names_list_every_check_there_is(notebook_checks):
    with pytest.raises(ValueError, match="no check named 'svm'") as raised:
        checks.check("svm")
    assert "softmax_loss_naive" in str(raised.value)
    assert "hyperparameter_search, inline_question_2" in str(raised.value)


def test_without_notebook_checks_unknown_names_list_the_function_checks(monkeypatch):
    monkeypatch.setitem(sys.modules, "cs231n.notebook_checks", None)  # import fails
    with pytest.raises(ValueError, match="choose one of softmax_loss_naive") as raised:
        checks.check("hyperparameter_search", results={})
    assert str(raised.value).endswith(", ".join(checks.CHECKS))


def test_function_checks_take_no_values():
    with pytest.raises(TypeError, match="takes no values"):
        checks.check("predict", X=np.zeros(3))


# --- statuses -----------------------------------------------------------------------------


def test_statuses_are_defined_once_and_ordered():
    from tools.grade import driver

    assert driver.STATUSES is status.STATUSES
    assert status.worst([]) == "ok"
    assert status.worst(["ok", "memory", "crashed"]) == "memory"
    assert status.worst(["timeout", "invalid"]) == "invalid"
    assert status.worst(["something new"]) == "crashed"


def test_the_child_script_names_the_outputs_the_runner_accepts():
    # Every name the child writes for a kind is one the runner reads; nothing else is.
    for kind, names in runner.OUTPUT_NAMES.items():
        assert kind in child.KINDS and names
    assert Path(runner.CHILD_SOURCE) == Path(child.__file__).resolve()
