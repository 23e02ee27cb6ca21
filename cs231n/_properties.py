"""Facts that hold for every correct answer, each stated once: how to make inputs that
expose it, how to judge an output, and the hint for each way of failing.

The self-checks (``checks.py``) run these on their own public inputs in your process.
The grader runs the same properties on other inputs in a sandbox and judges what comes
back with its own copy of this module, so a mistake it can find, a self-check finds too.

A judge raises :class:`Failed` with two texts: ``message`` (what happened here and what
to do, for the self-check) and ``summary`` (a fixed sentence that names the mistake
without any of the inputs, for a grade report).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .gradient_check import eval_numerical_gradient


class Failed(Exception):
    """A property does not hold; ``message`` says what and how to fix it."""

    def __init__(self, message: str, summary: str = "the property does not hold") -> None:
        super().__init__(message)
        self.message = message
        self.summary = summary


def _fail(said: str, hint: str, summary: str) -> Failed:
    return Failed(f"{said}: {hint}", summary)


def judge_unchanged(function: str, name: str, before: np.ndarray, after: np.ndarray) -> None:
    """The caller's argument ``name`` must be as it was before the call."""
    if not np.array_equal(after, before):
        raise Failed(
            f"{function} changed its argument {name} in place: leave the caller's data as "
            f"it was; `a = {name}` is a second name for {name}, not a copy, so `a *= ...`, "
            f"`a[...] = ...` or a shuffle of a change {name} too: work on new arrays",
            f"the call changed the caller's {name}",
        )


# --- 1. known best class: predict -----------------------------------------------------------


def best_class_problem(
    seed: int, N: int, D: int, C: int, lift: float = 0.0, margin: float = 1e-3, dtype=np.float64
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """W (D, C), X (N, D) with ``X @ W == scores`` whose best class per row is known.

    The other scores lie in ``[lift, lift + 1)``; every second row's best score is only
    ``margin`` ahead of its runner-up (a near-tie: rounding the scores flips it), the
    others' a whole 1.0 ahead. Returns the inputs, the labels and the scores.
    """
    if D < C:
        raise ValueError("best_class_problem needs D >= C (W of full column rank)")
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((D, C))
    W[:C] += 3 * np.eye(C)  # full column rank, so pinv(W) @ W = I
    labels = rng.permutation(np.arange(N) % C)
    scores = rng.uniform(0, 1, (N, C))
    rows = np.arange(N)
    scores[rows, labels] = 0.0
    gap = np.where(rows % 2 == 1, margin, 1.0)
    scores[rows, labels] = scores.max(axis=1) + gap
    scores += lift
    X = scores @ np.linalg.pinv(W)
    return {"W": W.astype(dtype), "X": X.astype(dtype)}, labels, scores


def judge_best_class(y_pred: object, labels: np.ndarray, scores: np.ndarray) -> None:
    """``y_pred`` must be one integer label per row, the class with the highest score."""
    N = len(labels)
    if not isinstance(y_pred, np.ndarray) or y_pred.shape != (N,):
        shape = getattr(y_pred, "shape", type(y_pred).__name__)
        said = f"y_pred is {shape}, expected shape ({N},)"
        summary = "y_pred does not hold one label per row"
        if shape == scores.shape:
            raise _fail(said, "those are the scores; take each row's best class (axis=1)", summary)
        hint = "one label per row of X, the best class over the class axis (axis=1)"
        raise _fail(said, hint, summary)
    if not np.issubdtype(y_pred.dtype, np.integer):
        raise Failed(
            f"y_pred has dtype {y_pred.dtype}: labels are class indices (integers)",
            "the labels are not integers",
        )
    wrong = np.flatnonzero(y_pred != labels)
    if not wrong.size:
        return
    i = int(wrong[0])
    top_two = np.sort(scores, axis=1)[:, -2:]
    near = top_two[:, 1] - top_two[:, 0] < 0.5
    summary = "some labels are not the highest-scoring class"
    if np.abs(scores).max() > 100 and not near[wrong].all():  # scores near +-1000
        hint = (
            "wrong for scores near 1000 or -1000: pick the highest score itself; np.exp of "
            "scores that large overflows (or underflows to 0)"
        )
    elif not y_pred.any():
        raise Failed("y_pred is all zeros: store the predictions in y_pred", summary)
    elif np.array_equal(y_pred, labels + 1):
        hint = "every label is one too high: class indices count from 0, like argmax's"
    elif np.array_equal(y_pred, scores.argmin(axis=1)):
        hint = "these are the classes with the lowest score: pick each row's highest"
    elif near[wrong].all():
        hint = (
            "wrong only where the best score is a hair ahead of the next: compare the "
            "scores as they are (no rounding, no astype(int), no lower precision)"
        )
    else:
        hint = "pick each row's highest score"
    said = f"row {i}: predicted class {y_pred[i]}, but class {labels[i]} has the highest score"
    raise _fail(said, hint, summary)


# --- 2. whole-row minibatches: train's sampling ---------------------------------------------


def batch_indices(X: np.ndarray, y: np.ndarray, X_batch: object, y_batch: object, B: int):
    """The row of X each minibatch row is, checking shapes, dtype and that labels go
    with their rows; returns the indices."""
    if X_batch is None or y_batch is None:
        missing = "X_batch" if X_batch is None else "y_batch"
        raise Failed(f"{missing} is still None: sample it from the training data", "no minibatch")
    X_batch, y_batch = np.asarray(X_batch), np.asarray(y_batch)
    if X_batch.shape != (B, X.shape[1]) or y_batch.shape != (B,):
        said = (
            f"X_batch is {X_batch.shape} and y_batch {y_batch.shape}, expected "
            f"({B}, {X.shape[1]}) and ({B},)"
        )
        summary = "a minibatch does not hold batch_size rows"
        if X_batch.shape[:1] == (len(X),) < (B,):
            hint = (
                f"with batch_size={B} > N={len(X)}, sampling without replacement cannot "
                "give batch_size rows; sample with replacement"
            )
            raise _fail(said, hint, summary)
        raise _fail(said, "draw batch_size examples", summary)
    if X_batch.dtype != X.dtype:
        raise Failed(
            f"{X.dtype} X gave a {X_batch.dtype} X_batch: take the rows as they are (no "
            f".astype), so that {X.dtype} data trains in {X.dtype}",
            "the minibatch rows changed dtype",
        )
    row_of = {row.tobytes(): i for i, row in enumerate(X)}
    indices = []
    for k, row in enumerate(X_batch):
        i = row_of.get(np.ascontiguousarray(row).tobytes())
        if i is None:
            raise Failed(
                f"X_batch[{k}] is not a row of X: take whole rows of X",
                "a minibatch row is not a row of X",
            )
        if y_batch[k] != y[i]:
            raise Failed(
                f"y_batch[{k}] is not the label of X_batch[{k}]: index X and y with the "
                "same indices",
                "a minibatch label does not belong to its row",
            )
        indices.append(i)
    return indices


def judge_uniform(drawn: list[list[int]], N: int) -> None:
    """Minibatch indices drawn uniformly with replacement: each row about equally often."""
    B = len(drawn[0])
    if len({tuple(d) for d in drawn}) == 1:
        raise Failed(
            "every iteration used the same minibatch: draw new indices each time",
            "every iteration used the same minibatch",
        )
    counts = np.bincount(np.concatenate(drawn), minlength=N)
    expected = len(drawn) * B / N
    spread = 5 * np.sqrt(expected * (1 - 1 / N)) + 1  # five standard deviations
    never = np.flatnonzero(counts == 0).tolist()
    if never:
        raise Failed(
            f"rows {never} of X were never drawn in {len(drawn)} minibatches: every row "
            "must be possible (the upper bound of rng.integers is exclusive)",
            "some rows are never drawn",
        )
    odd = np.flatnonzero(np.abs(counts - expected) > spread).tolist()
    if odd:
        raise Failed(
            f"rows {odd} were drawn {counts[odd].tolist()} times, expected about "
            f"{expected:.0f}: draw every row with the same probability 1/N",
            "the rows are not drawn uniformly",
        )
    p_no_repeat = np.prod(1 - np.arange(B) / N) if B <= N else 0.0
    if p_no_repeat ** len(drawn) < 1e-9 and all(len(set(d)) == B for d in drawn):
        raise Failed(
            "no minibatch ever holds a row twice: sample with replacement",
            "the minibatches are drawn without replacement",
        )


def judge_seeded(same: list[list[int]], again: list[list[int]], other: list[list[int]],
                 preset: list[list[int]]) -> None:  # fmt: skip
    """Minibatches are the seeded rng's: the same seed repeats them, another seed shares
    none of them, and they follow the starting W in rng's one stream of draws (``preset``:
    the same seed, training an existing W, so nothing was drawn for W first)."""
    if again != same:
        raise Failed(
            "two runs with the same seed drew different minibatches: draw with rng, the "
            "generator that train() seeds, not with np.random",
            "the same seed gave different minibatches",
        )
    if {tuple(b) for b in other} & {tuple(b) for b in same}:
        raise Failed(
            "another seed drew minibatches that this seed drew too: the draws ignore seed "
            "or are not the draws of rng, the generator that train() makes from seed",
            "another seed gave the same minibatches",
        )
    if preset == same:
        raise Failed(
            "the minibatches do not depend on what rng drew before them (the starting W): "
            "they are not the draws of rng; draw each one from rng itself, not from a "
            "generator of your own",
            "the minibatches are not drawn from train's rng",
        )


def judge_global_random_untouched(before: np.ndarray, after: np.ndarray) -> None:
    """The global np.random state must be what it was (compare draws or states)."""
    if not np.array_equal(before, after):
        raise Failed(
            "train changed the global np.random state: draw the minibatches with rng, the "
            "Generator that train() makes from seed, not with np.random.seed or "
            "np.random.choice",
            "train changed the global np.random state",
        )


def judge_update(W: np.ndarray, W_next: np.ndarray, grad: np.ndarray, lr: float) -> None:
    """One SGD step: ``W_next == W - lr * grad``, in W's dtype."""
    if W_next.dtype != W.dtype:
        raise Failed(
            f"training a {W.dtype} W left a {W_next.dtype} W: keep W's dtype (a np.float64 "
            "learning rate or a float64 array upcasts what it multiplies)",
            "the update changed W's dtype",
        )
    step, expected = (W_next - W).astype(np.float64), -lr * grad.astype(np.float64)
    tol = {"rtol": 1e-12, "atol": 1e-14} if W.dtype == np.float64 else {"rtol": 1e-5, "atol": 1e-7}
    if np.allclose(step, expected, **tol):
        return
    said = f"an update changed W by other than -learning_rate * grad (learning_rate={lr:g})"
    summary = "a step is not W - learning_rate * grad"
    if not step.any():
        raise Failed("self.W never changed: update self.W itself, not a copy", summary)
    if np.allclose(step, -expected, **tol):
        hint = "W moved along the gradient: step against it, downhill"
    elif np.allclose(step, (ratio := np.sum(step * expected) / np.sum(expected**2)) * expected):
        hint = f"the step is {ratio:.4g} times learning_rate * grad: take exactly that"
    elif np.allclose(
        step - expected, (extra := np.sum((step - expected) * W) / np.sum(W * W)) * W
    ):
        hint = (
            f"the step has an extra {extra:.3g} * W: the regularisation is already in grad "
            "(the loss adds 2 * reg * W), so do not add it again"
        )
    else:
        hint = "step by exactly -learning_rate * grad, with grad as the loss returned it"
    raise _fail(said, hint, summary)


# --- 3. the reg term's closed form ----------------------------------------------------------


def judge_reg_term(W: np.ndarray, reg: float, plain: tuple, regularized: tuple) -> None:
    """Going from reg = 0 to reg adds exactly ``reg * sum(W**2)`` to the loss and
    ``2 * reg * W`` to dW. ``plain`` and ``regularized`` are (loss, dW) pairs."""
    (loss0, dW0), (loss, dW) = plain, regularized
    W64 = W.astype(np.float64)
    expected, added = reg * float(np.sum(W64 * W64)), loss - loss0
    rtol = 1e-9 if W.dtype == np.float64 else 1e-4
    if not abs(added - expected) <= rtol * max(1.0, abs(loss)):
        said = f"reg={reg:g} adds {added:.4f} to the loss, expected reg * sum(W**2) = "
        said += f"{expected:.4f}"
        if added == 0:
            hint = "the loss ignores reg: add the regularisation term"
        elif np.isclose(added, expected / 2, rtol=1e-6):
            hint = "this kit uses reg * sum(W**2), without a factor 1/2"
        else:
            hint = (
                "the term is reg times the sum of the squared weights, added once, after "
                "averaging over examples"
            )
        raise _fail(said, hint, "reg > 0 does not add reg * sum(W**2) to the loss")
    got, want = (dW - dW0).astype(np.float64), 2 * reg * W64
    errors = column_errors(got, want)
    if errors.max() > (1e-7 if W.dtype == np.float64 else 1e-3):
        column = int(errors.argmax())
        raise Failed(
            f"gradient column {column} is off (relative error {errors[column]:.2g}) with "
            f"reg={reg:g} but right with reg=0: check the 2*reg*W term",
            "reg > 0 does not add 2 * reg * W to dW",
        )


def column_errors(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Each column's relative error ``|got - want| / (|got| + |want|)``, floored."""
    got, want = got.astype(np.float64), want.astype(np.float64)
    floor = 1e-12 * max(float(np.linalg.norm(want)), 1e-300)
    scale = np.maximum(np.linalg.norm(got, axis=0) + np.linalg.norm(want, axis=0), floor)
    return np.linalg.norm(got - want, axis=0) / scale


# --- 4. stability at huge scores ------------------------------------------------------------

# Per-row offsets of the scores, with the hint for an answer that fails on them.
OFFSET_HINTS = {
    "up": "subtract each row's maximum score before np.exp",
    "apart": (
        "one maximum for all rows leaves the rows far below it at exp(-1000) = 0; "
        "subtract each row's own maximum (axis=1), not one maximum for the whole matrix"
    ),
    "down": (
        "rows whose scores all sit near -1000 lose everything to exp(-1000) = 0 unless "
        "shifted by their own maximum (the largest score, not the largest absolute value)"
    ),
}


def offsets(pattern: str, N: int, big: float = 1000.0) -> np.ndarray:
    """Row offsets: ``up`` every row +big; ``apart`` alternately +big, 0, -big, -3 big;
    ``down`` every row -big."""
    if pattern == "up":
        return np.full(N, big)
    if pattern == "down":
        return np.full(N, -big)
    return np.array([big, 0.0, -big, -3 * big])[np.arange(N) % 4]


def shifted_rows(inputs: dict, lift: np.ndarray) -> dict[str, np.ndarray]:
    """``inputs`` with one more feature: X's new column is ``lift`` and W's new row all
    ones, so row i's scores all move by lift[i], which leaves its softmax unchanged."""
    W, X = inputs["W"], inputs["X"]
    W_big = np.vstack([W, np.ones((1, W.shape[1]), W.dtype)])
    X_big = np.hstack([X, lift[:, None].astype(X.dtype)])
    return {**inputs, "W": W_big, "X": X_big}


def judge_shift_invariant(pattern: str, shifted: tuple, unshifted: tuple, rtol: float = 1e-9):
    """Loss and dW (its first D rows) on the shifted problem equal the unshifted ones."""
    (loss, dW), (loss0, dW0) = shifted, unshifted
    said = {"up": "all scores near 1000", "apart": "rows whose best scores are 1000s apart",
            "down": "all scores near -1000"}[pattern]  # fmt: skip
    hint = OFFSET_HINTS[pattern]
    if not np.isfinite(loss):
        raise _fail(f"loss is {loss} for {said}", hint, "the loss is not finite at huge scores")
    if not np.all(np.isfinite(dW)):
        raise _fail(
            f"dW has inf or nan for {said}",
            f"compute the probabilities from the scores minus each row's own maximum ({hint})",
            "dW is not finite at huge scores",
        )
    D = dW0.shape[0]
    if not (
        abs(loss - loss0) <= rtol * max(1.0, abs(loss0))
        and column_errors(dW[:D], dW0).max() <= 100 * rtol
    ):
        raise _fail(
            f"shifting every score of a row by the same amount ({said}) changed the loss "
            f"from {loss0:.4f} to {loss:.4f}",
            f"softmax probabilities do not change when a row's scores shift together; {hint}",
            "shifting a row's scores together changed the loss or dW",
        )


def far_below_problem(seed: int, N: int, C: int, gap: float = 1000.0):
    """Rows whose true class scores about ``gap`` below the best one, which sits in a
    different column from row to row; the rest lie near the true class.

    Every score but the best is at least gap below it, so ``exp`` of them relative to
    the best is below ``exp(-gap)``: the loss is ``mean(s_best - s_y)`` to double
    precision, a linear function of W, and dW is that function's centred difference
    (exact for a linear function at any step). Returns the inputs and that expected
    (loss, dW).
    """
    rng = np.random.default_rng(seed)
    best = rng.permutation(np.arange(N) % C)
    y = (best + 1 + rng.integers(0, C - 1, N)) % C  # never the best class
    scores = -gap - rng.uniform(0, 1, (N, C)) + rng.uniform(-gap, gap, (N, 1))
    rows = np.arange(N)
    scores[rows, best] += gap + rng.uniform(0, 1, N)
    W = rng.standard_normal((C, C)) + 3 * np.eye(C)  # invertible: X @ W == scores
    X = np.linalg.solve(W.T, scores.T).T
    scores = X @ W  # exactly what a student's X @ W gives, up to its last bits

    def gap(W_: np.ndarray) -> float:
        s = X @ W_
        return float(np.mean(s[rows, best] - s[rows, y]))

    loss = gap(W)
    dW = eval_numerical_gradient(gap, W.copy(), verbose=False, h=1.0)
    return {"W": W, "X": X, "y": y, "reg": np.array(0.0)}, (loss, dW)


def judge_far_below(got: tuple, expected: tuple, rtol: float = 1e-9) -> None:
    """The loss when the true class scores 1000s below the best: finite and right."""
    (loss, dW), (want, dW_want) = got, expected
    if (
        abs(loss - want) <= rtol * abs(want)
        and np.all(np.isfinite(dW))
        and (column_errors(dW, dW_want).max() <= 1e-6)
    ):
        return
    raise Failed(
        f"loss is {loss} when the true class scores 1000 below the best, expected "
        f"{want:.4f}: take the log-probability as s_y - logsumexp(s), with the row's "
        "maximum subtracted first; log(p_y) of a probability that underflows to 0, or "
        "np.exp of a score shifted by anything but the maximum, gives inf",
        "wrong or not finite when the true class scores 1000 below the best",
    )


# --- 5. grid search against solo training ---------------------------------------------------


def grid_problem(seed: int, N: int, D: int, C: int, scale: float = 1.0, dtype=np.float64):
    """X (N, D) and labels y with every one of C classes present."""
    rng = np.random.default_rng(seed)
    X = scale * rng.standard_normal((N, D))
    return X.astype(dtype), rng.permutation(np.arange(N) % C)


def judge_together(
    W_all: object,
    W_solos: list[np.ndarray],
    configs: list[tuple[float, float]],
    dtype: np.dtype,
    diagnose: Callable[[np.ndarray, float, float], str | None] | None = None,
) -> None:
    """The batched step's (D, C*K) ``W_all``: model k's columns equal ``W_solos[k]``,
    what ``Softmax().train`` gives alone with the same seed, lr and reg."""
    D, C = W_solos[0].shape
    judge_together_shape(W_all, D, C, len(configs))
    if not np.all(np.isfinite(W_all)):
        raise Failed(
            "W_all has inf or nan when the scores are large (thousands): subtract each "
            "model's maximum score from its scores before np.exp",
            "W_all is not finite",
        )
    if W_all.dtype != dtype:
        raise Failed(
            f"{dtype} data gave a {W_all.dtype} W_all: keep the step in X.dtype (a float64 "
            "array, of learning rates say, upcasts what it multiplies)",
            "W_all is not in X's dtype",
        )
    tol = 1e-9 if dtype == np.float64 else 1e-4
    for k, (lr, reg) in enumerate(configs):
        W, W_solo = W_all[:, k * C : (k + 1) * C], W_solos[k]
        error = float(np.linalg.norm(W - W_solo) / max(np.linalg.norm(W_solo), 1e-300))
        if error <= tol:
            continue
        said = (
            f"configuration (lr={lr:g}, reg={reg:g}) differs from Softmax().train with the "
            f"same seed (relative error {error:.2g})"
        )
        hint = (diagnose and diagnose(W, lr, reg)) or (
            "draw one minibatch per step with rng, as Softmax.train does; does each model "
            "use its own columns (k*C to k*C + C - 1), its own softmax over its C scores, "
            "its own learning rate and reg?"
        )
        raise _fail(said, hint, "a model differs from Softmax().train with the same seed")


def judge_together_shape(W_all: object, D: int, C: int, K: int) -> None:
    """The batched step returns the K models' (D, C) weights side by side."""
    if not isinstance(W_all, np.ndarray) or W_all.shape != (D, C * K):
        got = getattr(W_all, "shape", type(W_all).__name__)
        raise Failed(
            f"returned W_all of shape {got}, expected ({D}, {C * K}): the K = {K} models' "
            "(D, C) weights side by side",
            "W_all does not have shape (D, C*K)",
        )


def judge_bar(n: float, K: int, num_iters: int) -> None:
    """The progress bar advances by K per step: K * num_iters in all."""
    if n != K * num_iters:
        raise Failed(
            f"the progress bar advanced by {n:g} over {num_iters} steps of K = {K} models, "
            f"expected {K * num_iters}: advance it by K once per step (bar.update)",
            "the progress bar did not advance by K per step",
        )
