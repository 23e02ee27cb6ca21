"""The student's lesson: measured on the student edition the release builder writes.

What a student reads is the edition, not the reference: answers blanked, solution cells
stubbed, ``cs231n/`` with its TODO blocks replaced. These tests build it (in memory, as
``make release`` does) and measure it: the required path's length, that no text hands over
the gradient, a vectorization recipe or a sampling call, that the derivation and the kink
questions are asked, and that every TODO has a check that fails, with a hint, on wrong work.
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest

from cs231n import notebook_checks
from cs231n.classifiers import Softmax
from cs231n.classifiers import softmax as softmax_module
from tools.release.build import build_edition

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/softmax.ipynb"
OPTIONAL = "## Optional: going further"
MAX_REQUIRED_WORDS = 2000


@pytest.fixture(scope="module")
def edition() -> dict[str, str]:
    """The student edition's text files, by path."""
    tree = build_edition(REPO)
    return {
        path: file.data.decode("utf-8")
        for path, file in tree.items()
        if path.endswith((".py", ".ipynb", ".md", ".json", "Makefile"))
    }


@pytest.fixture(scope="module")
def student_nb(edition) -> nbformat.NotebookNode:
    return nbformat.reads(edition[NOTEBOOK], as_version=4)


@pytest.fixture(scope="module")
def reference_nb() -> nbformat.NotebookNode:
    return nbformat.read(REPO / NOTEBOOK, as_version=4)


def _readable(edition: dict[str, str]) -> dict[str, str]:
    """What a student reads in each file: notebooks as their cell sources."""
    out = {}
    for path, text in edition.items():
        if path.endswith(".ipynb"):
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells)
        out[path] = text
    return out


def required_words(nb: nbformat.NotebookNode) -> int:
    """Whitespace-separated words of markdown before the Optional heading."""
    words = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            if cell.source.startswith(OPTIONAL):
                return words
            words += len(cell.source.split())
    raise AssertionError(f"no markdown cell starts with {OPTIONAL!r}")


def test_required_path_is_at_most_2000_words(student_nb):
    headings = [c for c in student_nb.cells if c.source.startswith(OPTIONAL)]
    assert len(headings) == 1
    words = required_words(student_nb)
    assert words <= MAX_REQUIRED_WORDS, f"{words} words of markdown before {OPTIONAL!r}"


def test_the_word_count_counts_the_blanked_edition_not_the_reference(student_nb, reference_nb):
    # The reference's worked answers are long; the edition blanks them, so it must be
    # shorter. (Guards against measuring the wrong notebook.)
    assert required_words(reference_nb) > required_words(student_nb) + 500


# Closed forms of the gradient and recipes, in LaTeX, prose and code.
GIVEAWAYS = {
    "closed form (LaTeX)": r"X\^\{?(\\top|T)\}?\s*\(?\s*P\s*-\s*Y|\(P\s*-\s*Y\)|P\s*-\s*Y\b",
    "closed form (indicator)": r"p_k\s*-\s*\\mathbb\{1\}|\\mathbb\{1\}\[k\s*=\s*y_i\]",
    "closed form (code)": r"X\.T\s*@|X\.T\.dot\(|\.T\s*@\s*dscores|dscores\[.*\]\s*-=\s*1",
    "subtract-one recipe": r"subtract 1 from",
    "fancy-index recipe": r"np\.arange\((N|num_train|_N|len\([^)]*\))\),\s*\w+\]",
    "keepdims recipe": r"keepdims",
    "sampling call": r"rng\.choice\(|rng\.integers\([^)]*(num_train|batch_size|_N)|"
    r"np\.random\.choice\(",
}


# The lesson's own files, and everything else the edition ships (the check library, the
# helpers): both are read by students, and both are held to the same rule.
LESSON_FILES = {
    NOTEBOOK,
    "README.md",
    "cs231n/classifiers/softmax.py",
    "cs231n/classifiers/linear_classifier.py",
    "cs231n/tuning.py",
    "cs231n/vis_utils.py",
    "cs231n/notebook_checks.py",
}


def _giveaways(edition: dict[str, str], what: str, lesson: bool) -> list[str]:
    pattern = re.compile(GIVEAWAYS[what])
    return [
        f"{path}: {line.strip()[:100]}"
        for path, text in _readable(edition).items()
        if (path in LESSON_FILES) == lesson
        for line in text.splitlines()
        if pattern.search(line)
    ]


@pytest.mark.parametrize("what", sorted(GIVEAWAYS))
def test_the_lesson_gives_nothing_away(edition, what):
    found = _giveaways(edition, what, lesson=True)
    assert not found, f"{what} in the student edition:\n" + "\n".join(found)


@pytest.mark.parametrize("what", sorted(GIVEAWAYS))
def test_the_rest_of_the_student_edition_gives_nothing_away(edition, what):
    found = _giveaways(edition, what, lesson=False)
    assert not found, f"{what} in the student edition:\n" + "\n".join(found)


@pytest.mark.parametrize(
    "line",
    [
        r"$$\frac{\partial L}{\partial W} = \frac{1}{N} X^\top (P - Y) + 2 \lambda W$$",
        "dW = X.T @ dscores + 2 * reg * W",
        "scores[np.arange(N), y]",
        "idx = rng.choice(num_train, batch_size, replace=True)",
        "e = scores.max(axis=1, keepdims=True)",
        r"= p_k - \mathbb{1}[k = y_i]",
    ],
)
def test_the_giveaway_patterns_match_what_they_are_for(line):
    assert any(re.search(p, line) for p in GIVEAWAYS.values()), line


def test_the_reference_still_holds_the_worked_derivation(reference_nb, student_nb):
    # The derivation is an answer cell: self-learners read it in the reference, and the
    # edition turns it into a question.
    derivation = [
        (ref, stu)
        for ref, stu in zip(reference_nb.cells, student_nb.cells, strict=True)
        if "answer" in ref.metadata.get("tags", []) and "X^\\top (P - Y)" in ref.source
    ]
    assert len(derivation) == 1
    reference_answer, student_cell = derivation[0]
    assert student_cell.source == "**Your answer:** *fill this in*"


def _question(nb: nbformat.NotebookNode, number: int) -> tuple[int, str]:
    found = [
        (i, c.source)
        for i, c in enumerate(nb.cells)
        if c.cell_type == "markdown" and f"**Inline question {number}.**" in c.source
    ]
    assert len(found) == 1, f"inline question {number}"
    return found[0]


def test_the_edition_asks_for_the_derivation(student_nb):
    index, text = _question(student_nb, 3)
    assert r"\partial L_i / \partial s_k" in text and r"\partial L / \partial W" in text
    assert "chain rule" in text
    assert student_nb.cells[index + 1].source == "**Your answer:** *fill this in*"
    # asked before the gradient is implemented and checked
    check_naive = next(
        i for i, c in enumerate(student_nb.cells) if 'check("softmax_loss_naive")' in c.source
    )
    assert index < check_naive


def test_the_edition_asks_the_kink_question_after_the_gradient_check(student_nb, reference_nb):
    index, text = _question(student_nb, 4)
    assert "gradient check" in text and "differentiable" in text and r"\Delta" in text
    gradcheck = next(i for i, c in enumerate(student_nb.cells) if "grad_check_sparse(" in c.source)
    assert gradcheck < index
    assert "kink" in reference_nb.cells[index + 1].source


def test_the_order_follows_the_lesson(student_nb):
    def first(needle: str) -> int:
        return next(i for i, c in enumerate(student_nb.cells) if needle in c.source)

    order = [
        first('check("naive_loss_only")'),
        first("**Inline question 1.**"),
        first('check("naive_loss_stable")'),
        first("**Inline question 3.**"),
        first('check("softmax_loss_naive")'),
        first("grad_check_sparse("),
        first('check("softmax_loss_vectorized")'),
        first('check("train")'),
        first('"hyperparameter_search",'),
        first("best_softmax.predict(X_test)"),
        first(OPTIONAL),
    ]
    assert order == sorted(order), order


def test_the_test_split_is_used_once(reference_nb):
    uses = [c.id for c in reference_nb.cells if c.cell_type == "code" and "y_test" in c.source]
    # preprocess names it; the test cell scores the chosen model on it, once
    assert uses == ["preprocess", "test"], uses
    test_cell = next(c for c in reference_nb.cells if c.id == "test")
    assert test_cell.source.count(".predict(X_test)") == 1


def test_no_blas_nbval_or_instructor_remarks_reach_students(student_nb):
    text = "\n".join(c.source for c in student_nb.cells)
    for remark in ("BLAS", "nbval", "NBVAL", "thread", "instructor", "make reference"):
        assert remark not in text, remark


def test_the_checklist_names_every_check_and_a_time(student_nb):
    top = student_nb.cells[0].source
    for name in (
        "naive_loss_only",
        "naive_loss_stable",
        "inline_question_2",
        "softmax_loss_naive",
        "softmax_loss_vectorized",
        "train",
        "predict",
        "hyperparameter_search",
        "grid_search",
    ):
        assert f"`{name}`" in top, name
    rows = [line for line in top.splitlines() if line.startswith("| ") and "min |" in line]
    assert len(rows) >= 12
    # every check named in the checklist is called in the notebook
    sources = "\n".join(c.source for c in student_nb.cells if c.cell_type == "code")
    for name in ("naive_loss_only", "naive_loss_stable", "inline_question_2"):
        assert re.search(rf'check\(\s*"{name}"', sources), name


def test_every_todo_cell_is_followed_by_its_check(student_nb):
    todo = [i for i, c in enumerate(student_nb.cells) if c.source.startswith("# TODO")]
    assert len(todo) == 2
    for i in todo:
        assert "check(" in student_nb.cells[i + 1].source, student_nb.cells[i].source


def test_the_reference_loop_trains_each_configuration(reference_nb):
    cell = next(c for c in reference_nb.cells if c.id == "search")
    assert "solution" in cell.metadata.get("tags", [])
    assert "grid_search(" not in cell.source  # the student's loop, not the fast path
    tree = ast.parse(cell.source)
    loops = [node for node in ast.walk(tree) if isinstance(node, ast.For)]
    inner = [
        loop
        for loop in loops
        if any(isinstance(n, ast.For) for n in ast.walk(loop) if n is not loop) is False
    ]
    assert len(loops) == 2 and inner, "a loop over learning rates and one over strengths"
    trains = [
        n
        for n in ast.walk(inner[0])
        if isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "train"
    ]
    assert trains, "the inner loop trains a model"
    assigned = {
        t.id if isinstance(t, ast.Name) else ast.unparse(t)
        for n in ast.walk(tree)
        if isinstance(n, ast.Assign)
        for t in (n.targets[0].elts if isinstance(n.targets[0], ast.Tuple) else n.targets)
    }
    assert {"results", "best_val", "best_softmax"} <= assigned


def test_the_release_record_and_the_notebook_agree(edition, student_nb):
    record = json.loads(edition["notebooks/.release.json"])["notebooks"][NOTEBOOK]
    assert [c["id"] for c in record] == [c.id for c in student_nb.cells]


# --- the notebook checks fail, with a hint, on wrong work --------------------------------


def _stable_loss(W, X, y, reg):
    scores = X @ W
    loss = 0.0
    for row, label in zip(scores, y, strict=True):
        shifted = row - row.max()
        loss += np.log(np.exp(shifted).sum()) - shifted[label]
    return loss / len(y) + reg * np.sum(W * W), np.zeros_like(W)


def _unstable_loss(W, X, y, reg):
    scores = X @ W
    loss = 0.0
    for row, label in zip(scores, y, strict=True):
        loss -= np.log(np.exp(row[label]) / np.exp(row).sum())
    return loss / len(y) + reg * np.sum(W * W), np.zeros_like(W)


def _abs_shift_loss(W, X, y, reg):
    scores = X @ W
    loss = 0.0
    for row, label in zip(scores, y, strict=True):
        shifted = row - np.abs(row).max()  # shifts by the largest absolute score
        loss += np.log(np.exp(shifted).sum()) - shifted[label]
    return loss / len(y) + reg * np.sum(W * W), np.zeros_like(W)


def _sum_not_mean_loss(W, X, y, reg):
    loss, dW = _stable_loss(W, X, y, 0.0)
    return loss * len(y) + reg * np.sum(W * W), dW


def _half_penalty_loss(W, X, y, reg):
    loss, dW = _stable_loss(W, X, y, 0.0)
    return loss + 0.5 * reg * np.sum(W * W), dW


def _run(monkeypatch, capsys, loss_fn, name):
    monkeypatch.setattr(softmax_module, "softmax_loss_naive", loss_fn)
    passed = notebook_checks.check(name)
    return passed, capsys.readouterr().out


@pytest.mark.parametrize(
    "loss_fn, loss_only, stable, hint",
    [
        (_stable_loss, True, True, ""),
        (_unstable_loss, True, False, "shift each row"),
        (_abs_shift_loss, True, False, "row's own"),
        (_sum_not_mean_loss, False, None, "average"),
        (_half_penalty_loss, False, None, "no factor 1/2"),
    ],
)
def test_the_loss_checks_judge_the_loss_alone(
    monkeypatch, capsys, loss_fn, loss_only, stable, hint
):
    passed, out = _run(monkeypatch, capsys, loss_fn, "naive_loss_only")
    assert passed is loss_only, out
    if not loss_only:
        assert out.startswith("FAIL naive_loss_only: ") and hint in out, out
    if stable is not None:
        passed, out = _run(monkeypatch, capsys, loss_fn, "naive_loss_stable")
        assert passed is stable, out
        if not stable:
            assert out.startswith("FAIL naive_loss_stable: ") and hint in out, out


def test_no_loss_hint_answers_inline_question_1(monkeypatch, capsys):
    def uniform_but_wrong(W, X, y, reg):
        return 1.0, np.zeros_like(W)

    passed, out = _run(monkeypatch, capsys, uniform_but_wrong, "naive_loss_only")
    assert not passed
    assert "1/C" not in out and "probability 1/" not in out, out


def test_the_stubbed_loss_reports_not_implemented(monkeypatch, capsys):
    def stub(W, X, y, reg):
        raise NotImplementedError("softmax_loss_naive: compute the loss")

    passed, out = _run(monkeypatch, capsys, stub, "naive_loss_only")
    assert not passed and "not implemented yet" in out


def _q2(margins=(10.0, 40.0), **change):
    values = {"margins": list(margins), "svm": [], "softmax_log": [], "softmax_log1p": []}
    for m in margins:
        u = 2 * np.exp(-m)
        values["svm"].append(0.0)
        values["softmax_log"].append(float(np.log(1.0 + u)))
        values["softmax_log1p"].append(float(np.log1p(u)))
    values.update(change)
    return values


def test_the_q2_check_passes_computed_numbers_and_fails_made_up_ones(capsys):
    assert notebook_checks.check("inline_question_2", **_q2())
    right = _q2()
    made_up = _q2(softmax_log=[right["softmax_log"][0], 8.5e-18])  # as if log kept the digits
    assert not notebook_checks.check("inline_question_2", **made_up)
    out = capsys.readouterr().out
    assert "FAIL inline_question_2: margin 40" in out
    with_true_class = _q2(svm=[1.0, 1.0])
    assert not notebook_checks.check("inline_question_2", **with_true_class)
    assert "j != y_i" in capsys.readouterr().out
    # right numbers at margins that never show the rounding: asked for the margins again
    assert not notebook_checks.check("inline_question_2", **_q2(margins=(5.0, 10.0)))
    assert "margins 10 and 40" in capsys.readouterr().out


def test_the_q2_check_accepts_numpy_values():
    values = _q2()
    values = {k: np.array(v) for k, v in values.items()}
    assert notebook_checks.check("inline_question_2", **values)


class _Fixed:
    """A stand-in model: predicts y_val with a set number of mistakes."""

    def __init__(self, y_val: np.ndarray, mistakes: int) -> None:
        self.W = np.zeros((2, 3))
        self.pred = y_val.copy()
        self.pred[:mistakes] = (self.pred[:mistakes] + 1) % 3

    def predict(self, X: np.ndarray) -> np.ndarray:
        return self.pred


N_VAL = 100
Y_VAL = np.arange(N_VAL) % 3


def _by_hand(val: dict, monkeypatch) -> dict:
    """Check values for hand-made validation accuracies (hundredths); grid_search, the
    checker, is stood in by one that agrees with them."""
    results = {key: (acc / 100, acc / 100) for key, acc in val.items()}
    top = max(val.values())

    def agreeing_grid_search(X_train, y_train, X_val, y_val, lrs, regs, **kwargs):
        return {(lrs[0], regs[0]): results[(lrs[0], regs[0])]}, _Fixed(Y_VAL, 0)

    monkeypatch.setattr(notebook_checks._tuning, "grid_search", agreeing_grid_search)
    X = np.zeros((N_VAL, 2))
    return dict(
        results=results, best_val=top / 100, best_softmax=_Fixed(Y_VAL, N_VAL - top),
        X_train=X, y_train=Y_VAL, X_val=X, y_val=Y_VAL,
    )  # fmt: skip


LRS, REGS = (1e-6, 1e-5, 1e-4), (1.0, 10.0, 100.0)


def _grid(best: tuple[float, float], top: int = 83, also: tuple | None = None) -> dict:
    val = {(lr, reg): 70 for lr in LRS for reg in REGS}
    val[best] = top
    if also is not None:
        val[also] = top
    return val


def _verdict(capsys, **values):
    passed = notebook_checks.check("hyperparameter_search", **values)
    return passed, capsys.readouterr().out


def test_the_search_check_passes_a_best_inside_the_grid(capsys, monkeypatch):
    passed, out = _verdict(capsys, **_by_hand(_grid((1e-5, 10.0)), monkeypatch))
    assert passed, out
    assert out.startswith("PASS hyperparameter_search: 9 configurations")


@pytest.mark.parametrize(
    "best, words",
    [
        ((1e-4, 10.0), "learning rate 0.0001, the largest"),
        ((1e-6, 10.0), "learning rate 1e-06, the smallest"),
        ((1e-5, 100.0), "regularisation strength 100, the largest"),
        ((1e-5, 1.0), "regularisation strength 1, the smallest"),
    ],
)
def test_the_search_check_fails_a_best_on_an_edge(capsys, monkeypatch, best, words):
    passed, out = _verdict(capsys, **_by_hand(_grid(best), monkeypatch))
    assert not passed
    assert words in out and "extend the grid past it" in out, out


def test_the_search_check_counts_a_tie_on_the_edge_as_the_edge(capsys, monkeypatch):
    values = _by_hand(_grid((1e-5, 10.0), also=(1e-4, 100.0)), monkeypatch)
    passed, out = _verdict(capsys, **values)
    assert not passed and "tied with 1 other" in out, out


def test_the_search_check_fails_below_the_bar(capsys, monkeypatch):
    values = _by_hand(_grid((1e-5, 10.0), top=79), monkeypatch)
    monkeypatch.setitem(notebook_checks.BARS, "synthetic", (1, 0.8))
    passed, out = _verdict(capsys, dataset="synthetic", **values)
    assert not passed and "below the bar of 0.8" in out, out
    # the same search on a smaller set of that data: no bar applies
    monkeypatch.setitem(notebook_checks.BARS, "synthetic", (10**6, 0.8))
    passed, out = _verdict(capsys, dataset="synthetic", **values)
    assert passed and "bar" not in out, out


def test_the_bundled_bar_sits_between_the_first_run_and_the_reference(reference_nb):
    # measured from the reference: its first run (lr 1e-6) and its tuned best
    out = "".join(
        o.get("text", "") for c in reference_nb.cells if c.cell_type == "code" for o in c.outputs
    )
    first = float(re.search(r"validation accuracy: (0\.\d+)", out).group(1))
    best = float(re.search(r"^best: .*validation accuracy (0\.\d+)$", out, re.M).group(1))
    _, bar = notebook_checks.BARS["fashion-mnist"]
    assert first < bar < best - 0.01


def test_the_search_check_fails_a_wrong_best_val(capsys, monkeypatch):
    values = _by_hand(_grid((1e-5, 10.0)), monkeypatch)
    values["best_val"] = 0.70
    passed, out = _verdict(capsys, **values)
    assert not passed and "best_val is 0.7" in out, out


def test_the_search_check_fails_a_model_that_is_not_the_best(capsys, monkeypatch):
    values = _by_hand(_grid((1e-5, 10.0)), monkeypatch)
    values["best_softmax"] = _Fixed(Y_VAL, 30)
    passed, out = _verdict(capsys, **values)
    assert not passed and "best_softmax has validation accuracy 0.700" in out, out


def test_the_search_check_wants_three_values_of_each(capsys, monkeypatch):
    val = {(lr, 10.0): 70 for lr in LRS}
    val[(1e-5, 10.0)] = 83
    passed, out = _verdict(capsys, **_by_hand(val, monkeypatch))
    assert not passed and "at least 3 of each" in out, out


def test_the_search_check_names_a_missing_grid_point(capsys, monkeypatch):
    val = _grid((1e-5, 10.0))
    del val[(1e-4, 100.0)]
    passed, out = _verdict(capsys, **_by_hand(val, monkeypatch))
    assert not passed and "full grid" in out, out


# grid_search itself as the checker, on a small problem, with the loop a student writes.
def _data(seed=0, n=400, d=12, c=3):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((c, d)) * 0.6
    y = rng.integers(0, c, n)
    X = np.hstack([centres[y] + rng.standard_normal((n, d)), np.ones((n, 1))])
    return X[:300], y[:300], X[300:], y[300:]


def _loop(lrs, regs, seed=0, reuse_model=False, num_iters=40):
    X_train, y_train, X_val, y_val = _data()
    results, best_val, best_softmax = {}, -1.0, None
    shared = Softmax()
    for lr in lrs:
        for reg in regs:
            model = shared if reuse_model else Softmax()
            model.train(
                X_train, y_train, learning_rate=lr, reg=reg, num_iters=num_iters, seed=seed
            )
            train_acc = float(np.mean(model.predict(X_train) == y_train))
            val_acc = float(np.mean(model.predict(X_val) == y_val))
            results[(lr, reg)] = (train_acc, val_acc)
            if val_acc > best_val:
                best_val, best_softmax = val_acc, model
    return dict(
        results=results, best_val=best_val, best_softmax=best_softmax, X_train=X_train,
        y_train=y_train, X_val=X_val, y_val=y_val, num_iters=40, seed=0,
    )  # fmt: skip


GRID = ([0.1, 0.3, 1.0], [0.0, 0.1, 1.0])


def test_grid_search_agrees_with_a_right_loop(capsys):
    passed, out = _verdict(capsys, **_loop(*GRID))
    assert "grid_search trains that configuration" not in out, out
    assert "best_val" not in out and "best_softmax" not in out, out


@pytest.mark.parametrize(
    "wrong",
    [{"seed": 5}, {"reuse_model": True}, {"num_iters": 10}],
    ids=["another seed", "one model reused", "fewer steps"],
)
def test_grid_search_catches_a_loop_that_trains_otherwise(capsys, wrong):
    passed, out = _verdict(capsys, **_loop(*GRID, **wrong))
    assert not passed, out
    assert "grid_search trains that configuration" in out or "best_softmax" in out, out
    assert "seed=0" in out or "new Softmax()" in out, out


def test_the_search_check_reports_a_missing_value_instead_of_crashing(capsys):
    passed = notebook_checks.check("hyperparameter_search", results={})
    out = capsys.readouterr().out
    assert not passed and out.startswith("FAIL hyperparameter_search: ")


def test_unknown_names_go_on_to_the_function_checks(capsys):
    assert notebook_checks.check("predict") in (True, False)
    assert capsys.readouterr().out.split()[1] == "predict:"


def test_probabilities_are_the_softmax_of_each_row_even_at_extreme_scores():
    from cs231n.vis_utils import probabilities

    rng = np.random.default_rng(3)
    scores = rng.standard_normal((6, 4)) * 3
    exact = np.exp(scores.astype(np.longdouble))
    exact /= exact.sum(axis=1)[:, None]
    np.testing.assert_allclose(probabilities(scores), exact.astype(np.float64), rtol=1e-12)
    # rows far up or down give the same probabilities, finite, summing to 1
    shifted = scores + np.array([1000.0, -1000.0, 0.0, 5000.0, -5000.0, 700.0])[:, None]
    np.testing.assert_allclose(probabilities(shifted), probabilities(scores), rtol=1e-9)
    with pytest.raises(ValueError, match="2-D"):
        probabilities(scores[0])
