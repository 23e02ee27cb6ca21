"""The self-checks pass on the reference and fail, with the right hint, on broken code.

Broken code is made by mutating the reference: one string of the reference source is
replaced and the function recompiled in its module's namespace. Each mutation asserts
that its string is still in the reference, so a changed reference fails here loudly
instead of silently testing nothing.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import pytest

from cs231n import checks, tuning
from cs231n.classifiers import linear_classifier, softmax

NAIVE = (softmax, "softmax_loss_naive")
VECTORIZED = (softmax, "softmax_loss_vectorized")
TRAIN = (linear_classifier.LinearClassifier, "train")
PREDICT = (linear_classifier.LinearClassifier, "predict")
TOGETHER = (tuning, "_train_together")


def mutant(owner: object, name: str, old: str, new: str):
    """The function ``owner.name`` with ``old`` replaced by ``new`` in its source."""
    func = getattr(owner, name)
    lines, first_line = inspect.getsourcelines(func)
    source = textwrap.dedent("".join(lines))
    assert source.count(old) == 1, f"{old!r} is not in {name} exactly once: update the mutant"
    # Compiled under the real file name and line numbers, as the student's code would be.
    padded = "\n" * (first_line - 1) + source.replace(old, new)
    namespace: dict = {}
    exec(compile(padded, inspect.getsourcefile(func), "exec"), func.__globals__, namespace)
    return namespace[name]


@pytest.mark.parametrize("name", list(checks.CHECKS))
def test_reference_passes(name, capsys):
    assert checks.check(name) is True
    out = capsys.readouterr()
    assert out.out.startswith(f"PASS {name}: ") and out.out.count("\n") == 1
    assert out.err == ""


def test_output_is_deterministic(capsys):
    runs = []
    for _ in range(2):
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(*NAIVE, mutant(*NAIVE, "dW += 2 * reg * W", "dW += 0 * W"))
            mp.setattr(*TOGETHER, mutant(*TOGETHER, "rng.choice(", "np.random.choice("))
            checks.check("softmax_loss_naive")
            checks.check("train")
            checks.check("grid_search")
        runs.append(capsys.readouterr().out)
    assert runs[0] == runs[1]


# (check, function to break, old, new, what the FAIL line must say)
MUTANTS = {
    "naive: no averaging": (
        "softmax_loss_naive", NAIVE, "    loss /= num_train\n", "",
        "loss at W=0 is 27.631, expected log(10) = 2.303: it is N = 12 times too big: "
        "did you average over examples?",
    ),
    "naive: gradient not averaged": (
        "softmax_loss_naive", NAIVE, "dW /= num_train", "dW /= 1",
        "dW is N = 12 times too big",
    ),
    "naive: nothing added to loss": (
        "softmax_loss_naive", NAIVE, "loss += log_sum_exp - scores[y[i]]", "pass",
        "loss at W=0 is 0.000, expected log(10) = 2.303: nothing was added",
    ),
    "naive: no reg in loss": (
        "softmax_loss_naive", NAIVE, "loss += reg * np.sum(W * W)", "loss += 0.0",
        "the loss ignores reg",
    ),
    "naive: half reg": (
        "softmax_loss_naive", NAIVE, "loss += reg * np.sum(W * W)",
        "loss += 0.5 * reg * np.sum(W * W)", "without a factor 1/2",
    ),
    "naive: no reg in gradient": (
        "softmax_loss_naive", NAIVE, "dW += 2 * reg * W", "dW += 0 * W",
        "is off (relative error", "check the 2*reg*W term",
    ),
    "naive: one gradient column wrong": (
        "softmax_loss_naive", NAIVE, "    dW /= num_train\n",
        "    dW /= num_train\n    dW[:, 3] *= 1.5\n", "gradient column 3 is off",
    ),
    "naive: gradient sign": (
        "softmax_loss_naive", NAIVE, "dW[:, j] +=", "dW[:, j] -=", "dW has the wrong sign",
    ),
    "naive: no max shift": (
        "softmax_loss_naive", NAIVE, "scores = scores - scores.max()", "scores = scores + 0",
        "for large scores (around 1000): subtract each row's maximum score",
    ),
    "naive: log of an underflowing probability": (
        "softmax_loss_naive", NAIVE, "loss += log_sum_exp - scores[y[i]]",
        "loss -= np.log(np.exp(scores[y[i]] - log_sum_exp))",
        "loss is inf when the true class scores 1000 below the best", "s_y - logsumexp(s)",
    ),
    "naive: crash": (
        "softmax_loss_naive", NAIVE, "scores = X[i] @ W", "scores = X @ W[i]",
        "your code raised ValueError", "(in softmax_loss_naive, softmax.py line",
    ),
    "vectorized: sum instead of mean": (
        "softmax_loss_vectorized", VECTORIZED, "loss = np.mean(", "loss = np.sum(",
        "did you average over examples?",
    ),
    "vectorized: no max shift": (
        "softmax_loss_vectorized", VECTORIZED, "scores -= scores.max(axis=1, keepdims=True)",
        "scores -= 0", "subtract each row's maximum score",
    ),
    "vectorized: float64 gradient": (
        "softmax_loss_vectorized", VECTORIZED, "dW = X.T @ dscores + 2 * reg * W",
        "dW = (X.T @ dscores + 2 * reg * W).astype(np.float64)",
        "float32 inputs gave a float64 dW",
    ),
    "train: step up the gradient": (
        "train", TRAIN, "self.W -= learning_rate * grad", "self.W += learning_rate * grad",
        "step against the gradient",
    ),
    "train: no learning rate": (
        "train", TRAIN, "self.W -= learning_rate * grad", "self.W -= grad",
        "scale the gradient step by learning_rate",
    ),
    "train: update a copy": (
        "train", TRAIN, "self.W -= learning_rate * grad", "W = self.W - learning_rate * grad",
        "self.W never changed",
    ),
    "train: labels from other rows": (
        "train", TRAIN, "y_batch = y[idx]", "y_batch = y[idx[::-1]]",
        "is not the label of X_batch",
    ),
    "train: unseeded sampling": (
        "train", TRAIN, "idx = rng.choice(", "idx = np.random.choice(",
        "draw with rng",
    ),
    "train: without replacement": (
        "train", TRAIN, "replace=True)\n", "replace=False)\n", "sample with replacement",
    ),
    "train: the same batch every time": (
        "train", TRAIN, "idx = rng.choice(num_train, batch_size, replace=True)",
        "idx = np.arange(batch_size) % num_train", "the same minibatch",
    ),
    "train: X_batch never set": (
        "train", TRAIN, "X_batch = X[idx]", "pass", "X_batch is still None",
    ),
    "predict: wrong axis": (
        "predict", PREDICT, "axis=1", "axis=0", "y_pred is (4,), expected shape (12,)",
    ),
    "predict: lowest score": (
        "predict", PREDICT, "np.argmax(", "np.argmin(", "but class", "has the highest score",
    ),
    "predict: scores, not labels": (
        "predict", PREDICT, "np.argmax(", "np.max(", "y_pred has dtype float64",
    ),
    "predict: nothing stored": (
        "predict", PREDICT, "y_pred = np.argmax(X @ W, axis=1)", "pass",
        "y_pred is all zeros",
    ),
    "grid_search: one learning rate for all": (
        "grid_search", TOGETHER, "np.array([c[0] for c in configs])",
        "np.array([configs[0][0]] * K)",
        "configuration (lr=0.2, reg=0) differs from Softmax().train with the same seed "
        "(relative error", "it trained with learning rate 0.05, another model's",
    ),
    "grid_search: no reg": (
        "grid_search", TOGETHER, "        dW += two_reg * W_all\n", "",
        "configuration (lr=0.05, reg=0.3) differs", "it trained as if reg were 0",
    ),
    "grid_search: one reg for all": (
        "grid_search", TOGETHER, "np.array([2 * c[1] for c in configs])",
        "np.array([2 * configs[1][1]] * K)",
        "configuration (lr=0.05, reg=0) differs", "it trained with reg 0.3, another model's",
    ),
    "grid_search: reg without the 2": (
        "grid_search", TOGETHER, "[2 * c[1] for c in configs]", "[c[1] for c in configs]",
        "configuration (lr=0.05, reg=0.3) differs", "the reg term of the gradient is half",
    ),
    "grid_search: summed over the minibatch": (
        "grid_search", TOGETHER, "dscores /= batch_size", "dscores /= 1",
        "configuration (lr=0.05, reg=0) differs",
        "the gradient is batch_size = 8 times too big: average it over the minibatch",
    ),
    "grid_search: averaged twice": (
        "grid_search", TOGETHER, "dscores /= batch_size", "dscores /= batch_size**2",
        "the gradient is batch_size = 8 times too small",
    ),
    "grid_search: one softmax over all models": (
        "grid_search", TOGETHER, "exp_scores.sum(axis=2, keepdims=True)",
        "exp_scores.sum(axis=(1, 2), keepdims=True)",
        "configuration (lr=0.05, reg=0) differs", "its own softmax over its C scores",
    ),
    "grid_search: unseeded minibatches": (
        "grid_search", TOGETHER, "rng.choice(", "np.random.choice(",
        "two runs with the same seed gave different weights", "not with np.random",
    ),
    "grid_search: batches drawn unlike Softmax.train": (
        "grid_search", TOGETHER, "rng.choice(num_train, batch_size, replace=True)",
        "rng.permutation(num_train)[:batch_size]",
        "configuration (lr=0.05, reg=0) differs",
        "draw one minibatch per step with rng, as Softmax.train does",
    ),
    "grid_search: W_all never stepped": (
        "grid_search", TOGETHER, "W_all -= dW", "W_all - dW", "W_all never changed",
    ),
    "grid_search: no max shift": (
        "grid_search", TOGETHER, "scores -= scores.max(axis=2, keepdims=True)", "scores -= 0",
        "W_all has inf or nan when the scores are large", "subtract each model's maximum",
    ),
    "grid_search: float64 step": (
        "grid_search", TOGETHER, "W_all -= dW", "W_all = W_all - dW.astype(np.float64)",
        "float32 data gave a float64 W_all",
    ),
    "grid_search: progress bar": (
        "grid_search", TOGETHER, "bar.update(K)", "bar.update(1)",
        "the progress bar advanced by 10 over 10 steps of K = 4 models, expected 40: "
        "advance it by K once per step",
    ),
    "grid_search: wrong shape": (
        "grid_search", TOGETHER, "    return W_all", "    return W_all.T",
        "returned W_all of shape (12, 5), expected (5, 12)",
    ),
    "grid_search: crash": (
        "grid_search", TOGETHER, "dW = X_batch.T @ dscores", "dW = X_batch @ dscores",
        "your code raised ValueError", "(in _train_together, tuning.py line",
    ),
}  # fmt: skip


@pytest.mark.parametrize("case", list(MUTANTS))
def test_broken_code_fails_with_its_hint(case, monkeypatch, capsys):
    check_name, (owner, name), old, new, *expected = MUTANTS[case]
    monkeypatch.setattr(owner, name, mutant(owner, name, old, new))
    assert checks.check(check_name) is False
    out = capsys.readouterr()
    assert out.out.startswith(f"FAIL {check_name}: ") and out.out.count("\n") == 1
    for fragment in expected:
        assert fragment in out.out
    assert "Traceback" not in out.out + out.err


def test_vectorized_with_a_loop_over_examples_fails(monkeypatch, capsys):
    monkeypatch.setattr(softmax, "softmax_loss_vectorized", softmax.softmax_loss_naive)
    assert checks.check("softmax_loss_vectorized") is False
    assert "a Python loop over the examples?" in capsys.readouterr().out


def test_vectorized_disagreeing_with_naive_fails(monkeypatch, capsys):
    # The naive version is broken in a way only the comparison sees (reg at 0.5 weight is
    # caught by its own check, but the vectorized check runs the comparison alone).
    broken = mutant(*NAIVE, "loss += reg * np.sum(W * W)", "loss += 0.5 * reg * np.sum(W * W)")
    monkeypatch.setattr(softmax, "softmax_loss_naive", broken)
    assert checks.check("softmax_loss_vectorized") is False
    assert "differs from softmax_loss_naive's" in capsys.readouterr().out


def test_a_stub_reports_not_implemented_with_its_message(monkeypatch, capsys):
    def stub(W, X, y, reg):
        raise NotImplementedError("softmax_loss_naive: do it (cs231n/classifiers/softmax.py)")

    monkeypatch.setattr(softmax, "softmax_loss_naive", stub)
    assert checks.check("softmax_loss_naive") is False
    assert capsys.readouterr().out == (
        "FAIL softmax_loss_naive: not implemented yet: "
        "softmax_loss_naive: do it (cs231n/classifiers/softmax.py)\n"
    )


def test_vectorized_check_runs_while_naive_is_a_stub(monkeypatch, capsys):
    def stub(W, X, y, reg):
        raise NotImplementedError("later")

    monkeypatch.setattr(softmax, "softmax_loss_naive", stub)
    assert checks.check("softmax_loss_vectorized") is True


def test_grid_search_passes_while_the_optional_step_is_not_written(monkeypatch, capsys):
    # What the student edition ships: the block raises, grid_search falls back.
    def stub(*args, **kwargs):
        raise NotImplementedError("_train_together: optional: train all configurations at once")

    monkeypatch.setattr(tuning, "_train_together", stub)
    # Softmax.train may still be a stub too: the optional check must not depend on it.
    monkeypatch.setattr(*TRAIN, stub)
    assert checks.check("grid_search") is True
    assert capsys.readouterr().out == (
        "PASS grid_search: optional batched step not written; grid_search trains the "
        "configurations one by one\n"
    )


def test_grid_search_needs_a_working_softmax_train_to_compare_with(monkeypatch, capsys):
    monkeypatch.setattr(*TRAIN, mutant(*TRAIN, "self.W -= learning_rate * grad", "self.W -= grad"))
    assert checks.check("grid_search") is False
    assert capsys.readouterr().out == (
        'FAIL grid_search: this check compares with your Softmax.train, but check("train") '
        "does not pass yet: make it pass first\n"
    )


def test_grid_search_accepts_a_different_but_correct_batched_step(monkeypatch, capsys):
    # Any correct step passes, not just the reference's: here, one Softmax.train per model.
    def one_by_one(X, y, configs, num_classes, num_iters, batch_size, seed, bar):
        return tuning._train_one_by_one(X, y, configs, num_iters, batch_size, seed, bar)

    monkeypatch.setattr(tuning, "_train_together", one_by_one)
    assert checks.check("grid_search") is True
    assert capsys.readouterr().out.startswith("PASS grid_search: each of 4 configurations")


def test_unknown_check_names_the_choices():
    with pytest.raises(ValueError, match="no check named 'svm'; choose one of softmax_loss_naive"):
        checks.check("svm")


def test_main_exit_status(monkeypatch, capsys):
    assert checks.main([]) == 0
    assert capsys.readouterr().out.count("PASS") == len(checks.CHECKS)
    assert checks.main(["nope"]) == 2
    assert "unknown check 'nope'" in capsys.readouterr().err
    monkeypatch.setattr(*PREDICT, mutant(*PREDICT, "np.argmax(", "np.argmin("))
    assert checks.main(["softmax_loss_naive", "predict"]) == 1
    out = capsys.readouterr().out.splitlines()
    assert [line.split(":")[0] for line in out] == ["PASS softmax_loss_naive", "FAIL predict"]


def test_command_line_runs_every_check():
    result = subprocess.run(
        [sys.executable, "-m", "cs231n.checks"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        f"PASS {name}" for name in checks.CHECKS
    ]
    assert result.stderr == ""
