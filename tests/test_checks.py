"""The self-checks pass on the reference and fail, with the right hint, on broken code.

Two kinds of broken code:

- Mutants of the reference, checked in this process: one string of the reference
  source is replaced and the function recompiled in its module's namespace. Each
  mutation asserts that its string is still in the reference, so a changed reference
  fails here loudly instead of silently testing nothing. These pin the exact wording.
- The catalogue of student answers in tests/answers.py, checked the way a student runs
  them: each answer is written into its own copy of cs231n/ and ``python -m
  cs231n.checks <name>`` runs there, in a child process. Every wrong answer must FAIL
  with a hint that names its mistake, every right one must PASS.
"""

from __future__ import annotations

import inspect
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import answers
import numpy as np
import pytest

from cs231n import checks, tuning
from cs231n.classifiers import linear_classifier, softmax
from tools.release import pysource, stubs

NAIVE = (softmax, "softmax_loss_naive")
VECTORIZED = (softmax, "softmax_loss_vectorized")
TRAIN = (linear_classifier.LinearClassifier, "train")
PREDICT = (linear_classifier.LinearClassifier, "predict")
TOGETHER = (tuning, "train_together")


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
        "loss is inf for all scores near 1000: subtract each row's maximum score",
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
        "W moved along the gradient: step against it",
    ),
    "train: no learning rate": (
        "train", TRAIN, "self.W -= learning_rate * grad", "self.W -= grad",
        "the step is 10 times learning_rate * grad",
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
        "changed the global np.random state: draw the minibatches with rng",
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
        "your code raised ValueError", "(in train_together, tuning.py line",
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
        raise NotImplementedError("train_together: optional: train all configurations at once")

    monkeypatch.setattr(tuning, "train_together", stub)
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

    monkeypatch.setattr(tuning, "train_together", one_by_one)
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


# --- the catalogue of student answers, each checked in its own child process ---------------

REPO = Path(__file__).resolve().parents[1]

# For each wrong answer, words its FAIL line must contain: the hint names the mistake.
HINT_WORDS = {
    "naive_no_shift": "maximum score before np.exp",
    "naive_min_shift": "maximum",
    "naive_global_max": "own maximum",
    "naive_log_of_probability": "underflows to 0",
    "naive_loss_not_averaged": "average over examples",
    "naive_grad_not_averaged": "N = 12 times too big",
    "naive_no_reg": "ignores reg",
    "naive_half_reg": "factor 1/2",
    "naive_reg_norm_not_squared": "squared",
    "naive_reg_grad_no_2": "2*reg*W",
    "naive_grad_sign": "wrong sign",
    "naive_label_off_by_one": "off by one",
    "naive_grad_overwritten": "accumulate (+=)",
    "naive_loss_overwritten": "add each example's loss (+=)",
    "naive_true_class_term_missing": "the true class",
    "naive_float64_dW": "float32 inputs gave a float64 dW",
    "vec_global_max": "own maximum",
    "vec_no_shift": "maximum score before np.exp",
    "vec_max_over_columns": "its own (axis=1",
    "vec_no_keepdims": "could not be broadcast",
    "vec_mean_over_all_entries": "not over all N*C entries",
    "vec_loss_summed": "average over examples",
    "vec_grad_not_averaged": "N = 12 times too big",
    "vec_one_hot_float64": "float32 inputs gave a float64 dW",
    "vec_reg_grad_no_2": "2*reg*W",
    "vec_no_reg_grad": "2*reg*W",
    "vec_wrong_fancy_index": "gradient column",
    "vec_loop_over_examples": "loop over the examples",
    "vec_grad_transposed": "expected W's shape",
    "vec_log_of_probability": "underflows to 0",
    "vec_label_off_by_one": "off by one",
    "vec_mutates_W": "changed its argument W in place",
    "vec_softmax_over_whole_matrix": "whole score matrix",
    "vec_no_minus_one": "true class",
    "vec_probs_unshifted": "own maximum",
    "vec_upcast_float64": "float32 inputs gave a float64 dW",
    "sample_global_seeded_once": "global np.random state",
    "sample_rng_of_iteration": "ignore seed",
    "sample_unseeded_np_random": "global np.random state",
    "sample_seed_plus_iteration": "not the draws of rng",
    "sample_without_replacement": "with replacement",
    "sample_permutation_slice": "with replacement",
    "sample_same_batch": "the same minibatch",
    "sample_labels_drawn_separately": "is not the label",
    "sample_choice_of_rows_and_labels": "is not the label",
    "sample_y_batch_missing": "y_batch is still None",
    "sample_last_row_never": "never drawn",
    "sample_reseeded_at_first_iteration": "not the draws of rng",
    "sample_upcast_to_float64": "float32 X gave a float64 X_batch",
    "sample_shuffles_X_in_place": "changed its argument X in place",
    "update_wrong_sign": "along the gradient",
    "update_no_learning_rate": "10 times learning_rate * grad",
    "update_a_copy": "never changed",
    "update_adds_reg_again": "regularisation is already in grad",
    "update_divides_by_batch": "times learning_rate * grad",
    "update_float64": "left a float64 W",
    "update_decays_learning_rate": "times learning_rate * grad",
    "update_sign_of_gradient": "exactly -learning_rate * grad",
    "predict_axis_0": "axis=1",
    "predict_no_axis": "axis=1",
    "predict_scores": "those are the scores",
    "predict_max_value": "integers",
    "predict_argmin": "lowest score",
    "predict_one_based": "count from 0",
    "predict_float_labels": "integers",
    "predict_softmax_overflow": "overflows",
    "predict_centres_X_in_place": "changed its argument X in place",
    "predict_not_stored": "store the predictions",
    "together_one_learning_rate": "its own learning rate",
    "together_no_reg": "as if reg were 0",
    "together_reg_no_2": "is 2 * reg * W",
    "together_not_averaged": "average it over the minibatch",
    "together_one_softmax": "its own softmax",
    "together_np_random": "not with np.random",
    "together_batch_per_model": "one minibatch per step",
    "together_no_shift": "maximum score",
    "together_global_max": "maximum score",
    "together_float64_hyperparameters": "float64 W_all",
    "together_bar_per_step": "progress bar",
    "together_class_major_layout": "its own columns",
}

# Runs in a child process: imports numpy and tqdm once, then forks one grandchild per
# answer, which imports cs231n from that answer's tree and runs it as
# ``python -m cs231n.checks <name>`` would, its stdout and stderr going to files there.
_WORKER = r"""
import json, os, runpy, signal, sys
import numpy, tqdm.auto  # what every check imports, loaded once for all the forks

for tree, name in json.load(sys.stdin):
    pid = os.fork()
    if pid == 0:
        for fd, file in ((1, "check.out"), (2, "check.err")):
            os.dup2(os.open(os.path.join(tree, file), os.O_WRONLY | os.O_CREAT), fd)
        signal.alarm(60)  # an answer that hangs dies instead of stalling the test
        sys.path.insert(0, tree)
        sys.argv = ["cs231n.checks", name]
        code = 0
        try:
            runpy.run_module("cs231n.checks", run_name="__main__", alter_sys=True)
        except SystemExit as exit:
            code = exit.code
        if not sys.modules["cs231n"].__file__.startswith(tree):
            print("cs231n was not imported from", tree, file=sys.stderr)
            code = 9
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    print(json.dumps([tree, os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])]), flush=True)
"""


def answer_tree(root: Path, answer: answers.Answer) -> Path:
    """A copy of cs231n/ under ``root`` with ``answer`` written into its block.

    The copy keeps the compiled modules in __pycache__ and the files' times (copy2),
    so only the edited file is compiled again when the check imports it.
    """
    shutil.copytree(REPO / "cs231n", root / "cs231n")
    answers.apply(root, answer)
    return root


@pytest.fixture(scope="module")
def verdicts(request, tmp_path_factory) -> dict[str, tuple[int, str, str]]:
    """``{answer id: (exit status, stdout, stderr)}`` of its check, for the answers
    this session runs, checked by two worker processes in parallel."""
    wanted = {
        item.callspec.params["answer"].id
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_catalogue_answer"
    }
    jobs = []
    for answer in answers.ANSWERS:
        if answer.id in wanted:
            tree = answer_tree(tmp_path_factory.mktemp(answer.id), answer)
            jobs.append((answer.id, str(tree), answers.CHECK_OF[answer.key]))
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path_factory.getbasetemp(),  # not the repository: its cs231n must not leak in
        )
        for _ in range(2)
    ]
    outputs = [
        worker.communicate(json.dumps([job[1:] for job in jobs[i::2]]), timeout=600)
        for i, worker in enumerate(workers)
    ]
    status = {}
    for worker, (out, err) in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, err
        status.update(json.loads(line) for line in out.splitlines())
    result = {}
    for answer_id, tree, _ in jobs:
        files = [(Path(tree) / f).read_text() for f in ("check.out", "check.err")]
        result[answer_id] = (status[tree], *files)
    return result


@pytest.mark.parametrize("answer", answers.ANSWERS, ids=lambda a: a.id)
def test_catalogue_answer(answer, verdicts):
    name = answers.CHECK_OF[answer.key]
    code, out, err = verdicts[answer.id]
    assert err == ""
    if answer.correct:
        assert (code, out.split(":")[0]) == (0, f"PASS {name}"), out
    else:
        assert code == 1, out
        assert out.startswith(f"FAIL {name}: ") and out.count("\n") == 1, out
        assert HINT_WORDS[answer.id] in out, f"the hint does not name: {answer.mistake}"
        assert "Traceback" not in out


def test_catalogue_is_big_and_varied():
    wrong = [a for a in answers.ANSWERS if not a.correct]
    right = [a for a in answers.ANSWERS if a.correct]
    assert len(wrong) >= 45 and len(right) >= 10
    assert set(HINT_WORDS) == {a.id for a in wrong}
    assert all(a.mistake for a in wrong) and not any(a.mistake for a in right)
    assert {a.key for a in wrong} == {a.key for a in right} == set(stubs.TASKS)
    assert set(answers.CHECK_OF) == set(stubs.TASKS)


def _normalised(code: str) -> str:
    return "".join(code.split())


def test_answers_fit_their_block_and_differ_from_the_reference(tmp_path):
    """Each body replaces exactly its block (the file still parses: find_blocks parses
    it) and is not the reference's code, up to whitespace."""
    reference = {}
    for path in {a.key[0] for a in answers.ANSWERS}:
        text = (REPO / path).read_text()
        reference[path] = (text, pysource.find_blocks(text, path))
    for answer in answers.ANSWERS:
        path = answer.key[0]
        original, blocks = reference[path]
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(original)
        answers.apply(tmp_path, answer)
        after = pysource.block_bodies((tmp_path / path).read_text(), path)
        lines = original.splitlines(keepends=True)
        for block, body in zip(blocks, after, strict=True):
            before = "".join(lines[block.start + 1 : block.end])
            if (block.function, block.index) == answer.key[1:]:
                assert body == answer.body and _normalised(body) != _normalised(before)
            else:
                assert body == before, answer.id


def test_apply_refuses_a_block_that_does_not_exist(tmp_path):
    answer = answers.Answer("x", (answers.SOFTMAX, "softmax_loss_naive", 1), "    pass\n", True)
    shutil.copytree(REPO / "cs231n", tmp_path / "cs231n")
    with pytest.raises(ValueError, match="no marked block 1 in softmax_loss_naive"):
        answers.apply(tmp_path, answer)


def test_python_dash_m_judges_the_copy_it_runs_in(tmp_path):
    # The worker above imitates ``python -m cs231n.checks``; here is the real command,
    # run in a tree holding the global-max shift.
    (answer,) = [a for a in answers.ANSWERS if a.id == "vec_global_max"]
    tree = answer_tree(tmp_path, answer)
    result = subprocess.run(
        [sys.executable, "-m", "cs231n.checks", "softmax_loss_vectorized", "predict"],
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1 and result.stderr == ""
    failed, passed = result.stdout.splitlines()
    assert failed.startswith("FAIL softmax_loss_vectorized: loss is -inf for rows whose best")
    assert passed.startswith("PASS predict: ")


# --- the checks' own oracles, against independent computations ---------------------------


@pytest.mark.parametrize("shift", [0.0, 30.0])
def test_known_probabilities_are_the_softmax_of_the_scores(shift):
    W, X, y, P = checks._known_probabilities(shift)
    scores = (X @ W).astype(np.longdouble)
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    assert np.allclose(probs, P, rtol=1e-9, atol=0)
    assert np.isclose(np.ptp(scores - np.log(P), axis=1), 0, atol=1e-9).all()  # row shifts
    assert set(y) == set(range(P.shape[1]))


@pytest.mark.parametrize("lift", [0.0, 1000.0])
def test_predict_problem_has_its_labels_as_highest_scores(lift):
    W, X, labels, scores = checks._predict_problem(lift)
    assert np.allclose(X @ W, scores, rtol=1e-12, atol=1e-9)
    top_two = np.sort(X @ W, axis=1)[:, -2:]
    assert np.array_equal((X @ W).argmax(axis=1), labels)
    assert (top_two[:, 1] - top_two[:, 0] > 0.5).all()  # no near-ties for rounding to flip
    assert scores.min() >= lift
