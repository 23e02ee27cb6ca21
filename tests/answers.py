"""A catalogue of student answers to the marked blocks: wrong ones, and right ones written
differently from the reference.

Each answer is the body of one solution block (the lines between cs231n's START and END
markers), keyed ``(path, function, block)`` as in ``tools/release/stubs.TASKS`` and
indented as it sits in the file. ``apply(root, answer)`` writes it into the tree at
``root`` (a copy of the repository); nothing else changes.

The wrong answers are the mistakes students make: a shift by the global maximum, sampling
with the global ``np.random``, a forgotten factor 2, an upcast to float64, labels off by
one, ... Every one must fail its self-check (tests/test_checks.py) and lose points under
the hidden tests. The right ones must pass everything. Several answers are one edit away
from a student's right answer; ``_edit`` makes that edit and insists that the text it
replaces is there, so a reworded base answer fails loudly instead of silently giving a
copy of the right answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from tools.release import pysource

SOFTMAX = "cs231n/classifiers/softmax.py"
LINEAR = "cs231n/classifiers/linear_classifier.py"
TUNING = "cs231n/tuning.py"

NAIVE = (SOFTMAX, "softmax_loss_naive", 0)
VECTORIZED = (SOFTMAX, "softmax_loss_vectorized", 0)
SAMPLE = (LINEAR, "LinearClassifier.train", 0)
UPDATE = (LINEAR, "LinearClassifier.train", 1)
PREDICT = (LINEAR, "LinearClassifier.predict", 0)
TOGETHER = (TUNING, "train_together", 0)

# The self-check that judges each block.
CHECK_OF = {
    NAIVE: "softmax_loss_naive",
    VECTORIZED: "softmax_loss_vectorized",
    SAMPLE: "train",
    UPDATE: "train",
    PREDICT: "predict",
    TOGETHER: "grid_search",
}


@dataclass(frozen=True)
class Answer:
    id: str  # unique, e.g. "naive_global_max"
    key: tuple[str, str, int]  # the block it fills, as in stubs.TASKS
    body: str  # the block's code, indented as it sits in the file
    correct: bool  # True: a right answer written differently
    mistake: str = ""  # for wrong ones: what is wrong, in words


def apply(root: Path, answer: Answer) -> None:
    """Write ``answer.body`` into its block of the file under ``root``; the rest stays."""
    path, function, index = answer.key
    file = Path(root) / path
    text = file.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    blocks = pysource.find_blocks(text, path)
    bodies = ["".join(lines[b.start + 1 : b.end]) for b in blocks]
    positions = [i for i, b in enumerate(blocks) if (b.function, b.index) == (function, index)]
    if len(positions) != 1:
        raise ValueError(f"{path} has no marked block {index} in {function}")
    bodies[positions[0]] = answer.body if answer.body.endswith("\n") else answer.body + "\n"
    file.write_text(pysource.replace_bodies(text, path, bodies), encoding="utf-8")


def _edit(base: str, old: str, new: str) -> str:
    """``base`` with the one occurrence of ``old`` replaced by ``new``."""
    if base.count(old) != 1:
        raise ValueError(f"{old!r} must occur exactly once in the base answer")
    return base.replace(old, new)


# --- softmax_loss_naive -------------------------------------------------------------------

# A right answer unlike the reference: a loop over classes, probabilities one at a time.
NAIVE_BY_CLASS = """\
    num_train = X.shape[0]
    num_classes = W.shape[1]
    for i in range(num_train):
        scores = X[i].dot(W)
        scores -= np.max(scores)
        sum_exp = np.sum(np.exp(scores))
        loss += np.log(sum_exp) - scores[y[i]]
        for j in range(num_classes):
            p = np.exp(scores[j]) / sum_exp
            if j == y[i]:
                dW[:, j] += (p - 1) * X[i]
            else:
                dW[:, j] += p * X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
"""

# Another: one example at a time, the class dimension vectorised with np.outer.
NAIVE_OUTER = """\
    N = X.shape[0]
    for n in range(N):
        s = X[n] @ W
        s = s - s.max()
        log_z = np.log(np.exp(s).sum())
        loss -= s[y[n]] - log_z
        p = np.exp(s - log_z)
        p[y[n]] -= 1
        dW += np.outer(X[n], p)
    loss = loss / N + reg * (W**2).sum()
    dW = dW / N + 2 * reg * W
"""

_NAIVE_WRONG = [
    (
        "naive_no_shift",
        _edit(NAIVE_BY_CLASS, "        scores -= np.max(scores)\n", ""),
        "no max shift: np.exp overflows for scores near 1000",
    ),
    (
        "naive_min_shift",
        _edit(NAIVE_BY_CLASS, "scores -= np.max(scores)", "scores -= np.min(scores)"),
        "shifts by the row's minimum: the largest score still overflows np.exp",
    ),
    (
        "naive_global_max",
        _edit(
            NAIVE_BY_CLASS,
            "        scores -= np.max(scores)\n",
            "        scores -= np.max(X.dot(W))  # shift by the largest score of all\n",
        ),
        "shifts every row by one global maximum instead of its own",
    ),
    (
        "naive_log_of_probability",
        _edit(
            NAIVE_BY_CLASS,
            "loss += np.log(sum_exp) - scores[y[i]]",
            "loss += -np.log(np.exp(scores[y[i]]) / sum_exp)",
        ),
        "log of a probability that underflows to 0: loss is inf",
    ),
    (
        "naive_loss_not_averaged",
        _edit(NAIVE_BY_CLASS, "    loss /= num_train\n", ""),
        "loss summed over the examples, not averaged",
    ),
    (
        "naive_grad_not_averaged",
        _edit(NAIVE_BY_CLASS, "    dW /= num_train\n", ""),
        "dW not divided by N",
    ),
    (
        "naive_no_reg",
        _edit(NAIVE_BY_CLASS, "    loss += reg * np.sum(W * W)\n", ""),
        "regularisation left out of the loss",
    ),
    (
        "naive_half_reg",
        _edit(
            _edit(
                NAIVE_BY_CLASS, "loss += reg * np.sum(W * W)", "loss += 0.5 * reg * np.sum(W * W)"
            ),
            "dW += 2 * reg * W",
            "dW += reg * W",
        ),
        "the 0.5 * reg * sum(W**2) convention, not this kit's reg * sum(W**2)",
    ),
    (
        "naive_reg_norm_not_squared",
        _edit(NAIVE_BY_CLASS, "loss += reg * np.sum(W * W)", "loss += reg * np.linalg.norm(W)"),
        "regularisation with the norm of W, not the sum of its squares",
    ),
    (
        "naive_reg_grad_no_2",
        _edit(NAIVE_BY_CLASS, "dW += 2 * reg * W", "dW += reg * W"),
        "forgot the factor 2 in the regularisation gradient",
    ),
    (
        "naive_grad_sign",
        _edit(
            _edit(NAIVE_BY_CLASS, "dW[:, j] += (p - 1) * X[i]", "dW[:, j] += (1 - p) * X[i]"),
            "dW[:, j] += p * X[i]",
            "dW[:, j] -= p * X[i]",
        ),
        "gradient of -loss: every sign flipped",
    ),
    (
        "naive_label_off_by_one",
        _edit(
            _edit(NAIVE_BY_CLASS, "- scores[y[i]]", "- scores[y[i] - 1]"),
            "if j == y[i]:",
            "if j == y[i] - 1:",
        ),
        "labels off by one: the true class taken as y[i] - 1",
    ),
    (
        "naive_grad_overwritten",
        _edit(
            _edit(NAIVE_BY_CLASS, "dW[:, j] += (p - 1) * X[i]", "dW[:, j] = (p - 1) * X[i]"),
            "dW[:, j] += p * X[i]",
            "dW[:, j] = p * X[i]",
        ),
        "dW assigned instead of accumulated: only the last example counts",
    ),
    (
        "naive_loss_overwritten",
        _edit(
            NAIVE_BY_CLASS,
            "loss += np.log(sum_exp) - scores[y[i]]",
            "loss = np.log(sum_exp) - scores[y[i]]",
        ),
        "loss assigned instead of accumulated: only the last example counts",
    ),
    (
        "naive_true_class_term_missing",
        _edit(NAIVE_BY_CLASS, "dW[:, j] += (p - 1) * X[i]", "dW[:, j] += p * X[i]"),
        "gradient forgets the -1 of the true class",
    ),
    (
        "naive_float64_dW",
        "    dW = np.zeros((X.shape[1], W.shape[1]))  # start the gradient at zero\n"
        + NAIVE_BY_CLASS,
        "a fresh float64 dW: float32 inputs give a float64 gradient",
    ),
]

# --- softmax_loss_vectorized --------------------------------------------------------------

# A right answer unlike the reference: log-softmax, then probabilities from it.
VECTORIZED_LOG_SOFTMAX = """\
    N = X.shape[0]
    f = X.dot(W)
    f = f - np.max(f, axis=1, keepdims=True)
    log_probs = f - np.log(np.sum(np.exp(f), axis=1, keepdims=True))
    loss = -np.sum(log_probs[np.arange(N), y]) / N
    loss += reg * np.sum(W**2)
    probs = np.exp(log_probs)
    probs[np.arange(N), y] -= 1
    dW = X.T.dot(probs) / N + 2 * reg * W
"""

# Another: a one-hot matrix in X's dtype and einsum.
VECTORIZED_ONE_HOT = """\
    num_train, num_classes = X.shape[0], W.shape[1]
    scores = X @ W
    scores = scores - scores.max(axis=1)[:, None]
    exp_scores = np.exp(scores)
    probs = exp_scores / exp_scores.sum(axis=1)[:, None]
    one_hot = np.zeros_like(probs)
    one_hot[np.arange(num_train), y] = 1
    correct = np.sum(scores * one_hot, axis=1)
    loss = np.mean(np.log(exp_scores.sum(axis=1)) - correct) + reg * np.sum(W * W)
    dW = np.einsum("nd,nc->dc", X, probs - one_hot) / num_train + 2 * reg * W
"""

_VECTORIZED_WRONG = [
    (
        "vec_global_max",
        _edit(
            VECTORIZED_LOG_SOFTMAX, "f = f - np.max(f, axis=1, keepdims=True)", "f = f - np.max(f)"
        ),
        "shifts all scores by one global maximum: rows far below it underflow",
    ),
    (
        "vec_no_shift",
        _edit(VECTORIZED_LOG_SOFTMAX, "    f = f - np.max(f, axis=1, keepdims=True)\n", ""),
        "no max shift: np.exp overflows",
    ),
    (
        "vec_max_over_columns",
        _edit(
            VECTORIZED_LOG_SOFTMAX,
            "f = f - np.max(f, axis=1, keepdims=True)",
            "f = f - np.max(f, axis=0, keepdims=True)",
        ),
        "shifts each column by its maximum (axis=0), which changes the softmax",
    ),
    (
        "vec_no_keepdims",
        _edit(
            VECTORIZED_ONE_HOT,
            "probs = exp_scores / exp_scores.sum(axis=1)[:, None]",
            "probs = exp_scores / exp_scores.sum(axis=1)",
        ),
        "row sums without keepdims: (N, C) / (N,) does not broadcast",
    ),
    (
        "vec_mean_over_all_entries",
        _edit(
            VECTORIZED_ONE_HOT,
            "loss = np.mean(np.log(exp_scores.sum(axis=1)) - correct) + reg * np.sum(W * W)",
            "loss = -np.mean(np.log(probs) * one_hot) + reg * np.sum(W * W)",
        ),
        "mean over all N*C entries: the loss is C times too small",
    ),
    (
        "vec_loss_summed",
        _edit(
            VECTORIZED_LOG_SOFTMAX,
            "loss = -np.sum(log_probs[np.arange(N), y]) / N",
            "loss = -np.sum(log_probs[np.arange(N), y])",
        ),
        "loss summed over the examples, not averaged",
    ),
    (
        "vec_grad_not_averaged",
        _edit(VECTORIZED_LOG_SOFTMAX, "X.T.dot(probs) / N", "X.T.dot(probs)"),
        "dW not divided by N",
    ),
    (
        "vec_one_hot_float64",
        _edit(VECTORIZED_ONE_HOT, "np.zeros_like(probs)", "np.zeros((num_train, num_classes))"),
        "float64 one-hot matrix: float32 inputs give a float64 gradient",
    ),
    (
        "vec_reg_grad_no_2",
        _edit(VECTORIZED_LOG_SOFTMAX, "/ N + 2 * reg * W", "/ N + reg * W"),
        "forgot the factor 2 in the regularisation gradient",
    ),
    (
        "vec_no_reg_grad",
        _edit(VECTORIZED_LOG_SOFTMAX, "/ N + 2 * reg * W", "/ N"),
        "regularisation left out of the gradient",
    ),
    (
        "vec_wrong_fancy_index",
        _edit(VECTORIZED_LOG_SOFTMAX, "probs[np.arange(N), y] -= 1", "probs[:, y] -= 1"),
        "P - Y with probs[:, y]: subtracts 1 in whole columns",
    ),
    (
        "vec_loop_over_examples",
        """\
    N = X.shape[0]
    for i in range(N):
        s = X[i].dot(W)
        s -= s.max()
        p = np.exp(s) / np.sum(np.exp(s))
        loss += np.log(np.sum(np.exp(s))) - s[y[i]]
        p[y[i]] -= 1
        dW += np.outer(X[i], p)
    loss = loss / N + reg * np.sum(W * W)
    dW = dW / N + 2 * reg * W
""",
        "a Python loop over the examples in the vectorized loss",
    ),
    (
        "vec_grad_transposed",
        _edit(
            VECTORIZED_LOG_SOFTMAX,
            "dW = X.T.dot(probs) / N + 2 * reg * W",
            "dW = probs.T.dot(X) / N + 2 * reg * W.T",
        ),
        "dW computed as (C, D): the transpose of W's shape",
    ),
    (
        "vec_log_of_probability",
        _edit(
            VECTORIZED_ONE_HOT,
            "loss = np.mean(np.log(exp_scores.sum(axis=1)) - correct) + reg * np.sum(W * W)",
            "loss = -np.mean(np.log(probs[np.arange(num_train), y])) + reg * np.sum(W * W)",
        ),
        "log of a probability that underflows to 0: loss is inf",
    ),
    (
        "vec_label_off_by_one",
        _edit(
            _edit(
                VECTORIZED_LOG_SOFTMAX,
                "log_probs[np.arange(N), y]",
                "log_probs[np.arange(N), y - 1]",
            ),
            "probs[np.arange(N), y] -= 1",
            "probs[np.arange(N), y - 1] -= 1",
        ),
        "labels off by one: the true class taken as y - 1",
    ),
    (
        "vec_mutates_W",
        """\
    N = X.shape[0]
    f = X.dot(W)
    f -= f.max(axis=1, keepdims=True)
    probs = np.exp(f) / np.exp(f).sum(axis=1, keepdims=True)
    loss = -np.mean(f[np.arange(N), y] - np.log(np.exp(f).sum(axis=1))) + reg * np.sum(W * W)
    probs[np.arange(N), y] -= 1
    dW = W  # the gradient has W's shape: start from the reg term
    dW *= 2 * reg
    dW += X.T.dot(probs) / N
""",
        "dW = W aliases W, so dW *= ... changes the caller's W in place",
    ),
    (
        "vec_softmax_over_whole_matrix",
        _edit(
            _edit(
                _edit(
                    VECTORIZED_ONE_HOT,
                    "probs = exp_scores / exp_scores.sum(axis=1)[:, None]",
                    "probs = exp_scores / np.sum(exp_scores)",
                ),
                "np.log(exp_scores.sum(axis=1))",
                "np.log(np.sum(exp_scores))",
            ),
            "scores.max(axis=1)[:, None]",
            "np.max(scores)",
        ),
        "normalises over the whole score matrix instead of each row",
    ),
    (
        "vec_no_minus_one",
        _edit(VECTORIZED_LOG_SOFTMAX, "    probs[np.arange(N), y] -= 1\n", ""),
        "dW = X.T P: forgot to subtract 1 at the true class (P - Y)",
    ),
    (
        "vec_probs_unshifted",
        _edit(
            VECTORIZED_LOG_SOFTMAX,
            "    probs = np.exp(log_probs)\n",
            "    probs = np.exp(X.dot(W)) / np.sum(np.exp(X.dot(W)), axis=1, keepdims=True)\n",
        ),
        "loss shifted but probabilities from unshifted scores: inf / inf = nan in dW",
    ),
    (
        "vec_upcast_float64",
        _edit(VECTORIZED_LOG_SOFTMAX, "f = X.dot(W)", "f = X.astype(np.float64).dot(W)"),
        "computes in float64: float32 inputs give a float64 gradient",
    ),
]

# --- LinearClassifier.train: sampling (block 0) ---------------------------------------------

SAMPLE_INTEGERS = """\
            idx = rng.integers(num_train, size=batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
"""

SAMPLE_CHOICE_DEFAULT = """\
            batch_idx = rng.choice(X.shape[0], size=batch_size)
            X_batch, y_batch = X[batch_idx], y[batch_idx]
"""

SAMPLE_TAKE = """\
            rows = rng.choice(np.arange(num_train), batch_size, replace=True)
            X_batch = np.take(X, rows, axis=0)
            y_batch = np.take(y, rows)
"""

_SAMPLE_WRONG = [
    (
        "sample_global_seeded_once",
        """\
            if it == 0:
                np.random.seed(seed)
            idx = np.random.choice(num_train, batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "the global np.random, seeded once at the first iteration, not rng",
    ),
    (
        "sample_rng_of_iteration",
        """\
            idx = np.random.default_rng(it).choice(num_train, batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "np.random.default_rng(it) ignores seed: every seed gives the same batches",
    ),
    (
        "sample_unseeded_np_random",
        """\
            idx = np.random.choice(num_train, batch_size, replace=True)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "the unseeded global np.random: runs cannot be repeated",
    ),
    (
        "sample_seed_plus_iteration",
        """\
            batch_rng = np.random.default_rng(seed + it)
            idx = batch_rng.choice(num_train, batch_size)
            X_batch, y_batch = X[idx], y[idx]
""",
        "a new generator per iteration from seed + it: not the draws of rng",
    ),
    (
        "sample_without_replacement",
        """\
            idx = rng.choice(num_train, batch_size, replace=False)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "sampling without replacement fails when batch_size > N",
    ),
    (
        "sample_permutation_slice",
        """\
            idx = rng.permutation(num_train)[:batch_size]
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "a permutation's first batch_size rows: fewer than batch_size when batch_size > N",
    ),
    (
        "sample_same_batch",
        """\
            idx = np.random.default_rng(seed).choice(num_train, batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "a new generator with seed every iteration: the same minibatch every time",
    ),
    (
        "sample_labels_drawn_separately",
        """\
            X_batch = X[rng.choice(num_train, batch_size)]
            y_batch = y[rng.choice(num_train, batch_size)]
""",
        "labels drawn separately from the rows: y_batch does not match X_batch",
    ),
    (
        "sample_choice_of_rows_and_labels",
        """\
            X_batch = rng.choice(X, batch_size)
            y_batch = rng.choice(y, batch_size)
""",
        "rows and labels drawn by two separate rng.choice calls: they do not match",
    ),
    (
        "sample_y_batch_missing",
        """\
            idx = rng.choice(num_train, batch_size)
            X_batch = X[idx]
""",
        "y_batch never set",
    ),
    (
        "sample_last_row_never",
        """\
            idx = rng.integers(0, num_train - 1, batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "off by one: integers' high is exclusive, so the last row is never drawn",
    ),
    (
        "sample_reseeded_at_first_iteration",
        """\
            if it == 0:
                rng = np.random.default_rng(seed)  # seed the sampling
            idx = rng.choice(num_train, batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "a second generator from seed: its draws repeat the one that drew the starting W",
    ),
    (
        "sample_upcast_to_float64",
        """\
            idx = rng.choice(num_train, batch_size)
            X_batch = X[idx].astype(np.float64)  # the loss wants floats
            y_batch = y[idx]
""",
        "float32 rows upcast to float64: float32 data silently trains in float64",
    ),
    (
        "sample_shuffles_X_in_place",
        """\
            order = rng.permutation(num_train)
            X[:] = X[order]
            y[:] = y[order]
            idx = rng.choice(num_train, batch_size)
            X_batch = X[idx]
            y_batch = y[idx]
""",
        "shuffles the caller's X and y in place",
    ),
]

# --- LinearClassifier.train: update (block 1) -----------------------------------------------

_UPDATE_WRONG = [
    ("update_wrong_sign", "            self.W += learning_rate * grad\n", "steps up the gradient"),
    ("update_no_learning_rate", "            self.W -= grad\n", "forgot the learning rate"),
    (
        "update_a_copy",
        "            W = self.W - learning_rate * grad\n",
        "updates a local copy; self.W never changes",
    ),
    (
        "update_adds_reg_again",
        "            self.W -= learning_rate * (grad + 2 * reg * self.W)\n",
        "adds the regularisation gradient again: grad already holds it",
    ),
    (
        "update_divides_by_batch",
        "            self.W -= learning_rate * grad / batch_size\n",
        "divides the step by batch_size: the loss already averages",
    ),
    (
        "update_float64",
        "            lr = np.float64(learning_rate)  # make sure it is a float\n"
        "            self.W = self.W - lr * grad\n",
        "a float64 learning rate turns a float32 W into float64",
    ),
    (
        "update_decays_learning_rate",
        "            self.W -= learning_rate * grad\n            learning_rate *= 0.95  # decay\n",
        "decays the learning rate inside train: later steps are too small",
    ),
    (
        "update_sign_of_gradient",
        "            self.W -= learning_rate * np.sign(grad)\n",
        "steps by the sign of the gradient, not the gradient",
    ),
]

# --- LinearClassifier.predict ---------------------------------------------------------------

_PREDICT_WRONG = [
    (
        "predict_axis_0",
        "        y_pred = np.argmax(X.dot(W), axis=0)\n",
        "argmax over the examples",
    ),
    (
        "predict_no_axis",
        "        y_pred = np.argmax(X.dot(W))\n",
        "argmax of the flattened scores",
    ),
    ("predict_scores", "        y_pred = X.dot(W)\n", "returns the scores, not labels"),
    (
        "predict_max_value",
        "        y_pred = np.max(X.dot(W), axis=1)\n",
        "the best score, not its class",
    ),
    ("predict_argmin", "        y_pred = np.argmin(X.dot(W), axis=1)\n", "the lowest score"),
    (
        "predict_one_based",
        "        y_pred = np.argmax(X.dot(W), axis=1) + 1  # classes 1..C\n",
        "labels off by one: classes counted from 1",
    ),
    (
        "predict_float_labels",
        """\
        y_pred = np.zeros(X.shape[0])
        for i in range(X.shape[0]):
            y_pred[i] = np.argmax(X[i].dot(W))
""",
        "float64 labels from a fresh np.zeros",
    ),
    (
        "predict_softmax_overflow",
        """\
        probs = np.exp(X.dot(W))
        probs /= probs.sum(axis=1, keepdims=True)
        y_pred = np.argmax(probs, axis=1)
""",
        "argmax of unshifted softmax probabilities: nan when scores are large",
    ),
    (
        "predict_centres_X_in_place",
        """\
        X -= np.mean(X, axis=0)  # centre the data first
        y_pred = np.argmax(X.dot(W), axis=1)
""",
        "centres the caller's X in place (and predicts from shifted scores)",
    ),
    (
        "predict_not_stored",
        "        np.argmax(X.dot(W), axis=1)\n",
        "the labels are computed but not stored in y_pred",
    ),
]

# --- tuning.train_together (optional) -------------------------------------------------------

# A right answer unlike the reference: per-model hyperparameters as (K, 1) columns of a
# (D, K, C) view of W_all.
TOGETHER_VIEWS = """\
    num_train = X.shape[0]
    lrs = np.array([lr for lr, _ in configs], dtype=X.dtype)[:, None]
    regs = np.array([reg for _, reg in configs], dtype=X.dtype)[:, None]
    ar = np.arange(batch_size)
    W3 = W_all.reshape(dim, K, C)  # a view: stepping W3 steps W_all
    for it in range(num_iters):
        batch = rng.choice(num_train, batch_size, replace=True)
        Xb, yb = X[batch], y[batch]
        s = (Xb @ W_all).reshape(batch_size, K, C)
        s = s - s.max(axis=2, keepdims=True)
        e = np.exp(s)
        p = e / e.sum(axis=2, keepdims=True)
        p[ar, :, yb] -= 1
        p /= batch_size
        g = (Xb.T @ p.reshape(batch_size, K * C)).reshape(dim, K, C)
        g += 2 * regs * W3
        W3 -= lrs * g
        bar.update(K)
"""

_TOGETHER_WRONG = [
    (
        "together_one_learning_rate",
        _edit(TOGETHER_VIEWS, "[lr for lr, _ in configs]", "[configs[0][0]] * K"),
        "every model steps with the first model's learning rate",
    ),
    (
        "together_no_reg",
        _edit(TOGETHER_VIEWS, "        g += 2 * regs * W3\n", ""),
        "regularisation left out of the batched gradient",
    ),
    (
        "together_reg_no_2",
        _edit(TOGETHER_VIEWS, "g += 2 * regs * W3", "g += regs * W3"),
        "forgot the factor 2 in the regularisation gradient",
    ),
    (
        "together_not_averaged",
        _edit(TOGETHER_VIEWS, "        p /= batch_size\n", ""),
        "gradient summed over the minibatch, not averaged",
    ),
    (
        "together_one_softmax",
        _edit(TOGETHER_VIEWS, "e.sum(axis=2, keepdims=True)", "e.sum(axis=(1, 2), keepdims=True)"),
        "one softmax over all K models' scores",
    ),
    (
        "together_np_random",
        _edit(
            TOGETHER_VIEWS,
            "rng.choice(num_train, batch_size, replace=True)",
            "np.random.choice(num_train, batch_size)",
        ),
        "minibatches from the global np.random, not rng",
    ),
    (
        "together_batch_per_model",
        _edit(
            TOGETHER_VIEWS,
            "        batch = rng.choice(num_train, batch_size, replace=True)\n",
            "        for k in range(K):  # every model draws its own minibatch\n"
            "            batch = rng.choice(num_train, batch_size, replace=True)\n",
        ),
        "draws K minibatches per step instead of one",
    ),
    (
        "together_no_shift",
        _edit(TOGETHER_VIEWS, "        s = s - s.max(axis=2, keepdims=True)\n", ""),
        "no max shift: np.exp overflows",
    ),
    (
        "together_global_max",
        _edit(TOGETHER_VIEWS, "s = s - s.max(axis=2, keepdims=True)", "s = s - s.max()"),
        "one global maximum for all models and examples",
    ),
    (
        "together_float64_hyperparameters",
        _edit(
            _edit(
                _edit(
                    TOGETHER_VIEWS,
                    "[lr for lr, _ in configs], dtype=X.dtype)",
                    "[lr for lr, _ in configs])",
                ),
                "[reg for _, reg in configs], dtype=X.dtype)",
                "[reg for _, reg in configs])",
            ),
            "        W3 -= lrs * g\n",
            "        W_all = W_all - (lrs * g).reshape(dim, K * C)\n"
            "        W3 = W_all.reshape(dim, K, C)\n",
        ),
        "float64 learning rates and an out-of-place step turn a float32 W_all into float64",
    ),
    (
        "together_bar_per_step",
        _edit(TOGETHER_VIEWS, "bar.update(K)", "bar.update()"),
        "progress bar advanced by 1 per step, not K",
    ),
    (
        "together_class_major_layout",
        _edit(
            _edit(
                TOGETHER_VIEWS,
                "s = (Xb @ W_all).reshape(batch_size, K, C)",
                "s = (Xb @ W_all).reshape(batch_size, C, K).transpose(0, 2, 1)",
            ),
            "g = (Xb.T @ p.reshape(batch_size, K * C)).reshape(dim, K, C)",
            "g = (Xb.T @ p.transpose(0, 2, 1).reshape(batch_size, K * C)).reshape(dim, K, C)",
        ),
        "reads the scores as (C, K): model k's columns mixed with the others'",
    ),
]

# --- the catalogue --------------------------------------------------------------------------

ANSWERS: list[Answer] = [
    Answer("naive_by_class", NAIVE, NAIVE_BY_CLASS, True),
    Answer("naive_outer", NAIVE, NAIVE_OUTER, True),
    Answer("vec_log_softmax", VECTORIZED, VECTORIZED_LOG_SOFTMAX, True),
    Answer("vec_one_hot_einsum", VECTORIZED, VECTORIZED_ONE_HOT, True),
    Answer("sample_integers", SAMPLE, SAMPLE_INTEGERS, True),
    Answer("sample_choice_default", SAMPLE, SAMPLE_CHOICE_DEFAULT, True),
    Answer("sample_take", SAMPLE, SAMPLE_TAKE, True),
    Answer(
        "update_reassign", UPDATE, "            self.W = self.W - learning_rate * grad\n", True
    ),
    Answer("update_add_negative", UPDATE, "            self.W += -learning_rate * grad\n", True),
    Answer(
        "update_scale_grad_first",
        UPDATE,
        "            grad *= learning_rate\n            self.W -= grad\n",
        True,
    ),
    Answer(
        "predict_via_scores",
        PREDICT,
        "        scores = X.dot(W)\n        y_pred = scores.argmax(axis=1)\n",
        True,
    ),
    Answer("predict_transposed", PREDICT, "        y_pred = np.argmax(W.T @ X.T, axis=0)\n", True),
    Answer(
        "predict_argsort", PREDICT, "        y_pred = np.argsort(X @ W, axis=1)[:, -1]\n", True
    ),
    Answer("predict_fill_in_place", PREDICT, "        y_pred[:] = (X @ W).argmax(axis=1)\n", True),
    Answer("together_views", TOGETHER, TOGETHER_VIEWS, True),
]
for _key, _wrong in (
    (NAIVE, _NAIVE_WRONG),
    (VECTORIZED, _VECTORIZED_WRONG),
    (SAMPLE, _SAMPLE_WRONG),
    (UPDATE, _UPDATE_WRONG),
    (PREDICT, _PREDICT_WRONG),
    (TOGETHER, _TOGETHER_WRONG),
):
    ANSWERS += [Answer(id_, _key, body, False, mistake) for id_, body, mistake in _wrong]

if len({a.id for a in ANSWERS}) != len(ANSWERS):
    raise ValueError("answer ids must be unique")
