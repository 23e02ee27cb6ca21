"""Self-checks for the TODOs: run ``check("softmax_loss_naive")`` in a notebook cell, or
``python -m cs231n.checks`` for all of them (``python -m cs231n.checks train`` for one).

Checks, by name:

- ``softmax_loss_naive``: ``softmax_loss_naive`` in classifiers/softmax.py
- ``softmax_loss_vectorized``: ``softmax_loss_vectorized`` in the same file
- ``train``: both TODOs of ``LinearClassifier.train`` in classifiers/linear_classifier.py
- ``predict``: ``LinearClassifier.predict`` in the same file
- ``grid_search``: the optional batched step ``_train_together`` in tuning.py. It passes
  while that block still raises NotImplementedError (grid_search then trains the
  configurations one by one); once written, every configuration must end with the
  weights of ``Softmax().train`` with the same seed

Each check prints one line, ``PASS <name>: ...`` or ``FAIL <name>: <problem>: <hint>``,
and returns True or False. The checks do not contain the solution: they compare your
code with facts that hold for any correct one (the loss at W = 0 is log C, a numerical
gradient, adding a constant to a row of scores changes nothing, SGD on a bowl-shaped
loss shrinks the distance to its bottom by a known factor, the batched search step gives
the models your own ``Softmax.train`` gives). All data are seeded, so the output is the
same on every run.
"""

from __future__ import annotations

import math
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from . import tuning as _tuning
from .classifiers import linear_classifier as _linear
from .classifiers import softmax as _softmax
from .gradient_check import eval_numerical_gradient

__all__ = ["CHECKS", "check", "main"]

_N, _D, _C = 12, 5, 10  # a small problem: the naive loss and numerical gradients are fast
_REG = 0.1
_GRAD_TOL = 1e-6  # centred differences with h=1e-5 agree to ~1e-9 in float64


class _Fail(Exception):
    """A check found a problem; the message says what and how to fix it."""


def check(name: str) -> bool:
    """Run the self-check ``name``, print PASS or FAIL with a hint, return whether it passed.

    Parameters
    ----------
    name : one of ``"softmax_loss_naive"``, ``"softmax_loss_vectorized"``, ``"train"``,
        ``"predict"``, ``"grid_search"`` (the optional exercise in tuning.py).

    Returns
    -------
    passed : True when the code passed every test of the check.
    """
    if name not in CHECKS:
        raise ValueError(f"no check named {name!r}; choose one of {', '.join(CHECKS)}")
    try:
        # Broken code may overflow on purpose-made inputs; the check reports that itself.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = CHECKS[name]()
    except _Fail as problem:
        print(f"FAIL {name}: {problem}")
        return False
    except NotImplementedError as stub:
        print(f"FAIL {name}: not implemented yet: {stub}")
        return False
    except Exception as error:  # the student's code crashed: say where, not a traceback
        print(f"FAIL {name}: your code raised {type(error).__name__}: {error}{_where(error)}")
        return False
    print(f"PASS {name}: {summary}")
    return True


def _where(error: Exception) -> str:
    """Where in cs231n/ (outside this file) the error was raised: ' (in f, file line n)'."""
    package = Path(__file__).resolve().parent
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).resolve().is_relative_to(package)
        and Path(f.filename).resolve() != Path(__file__).resolve()
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (in {frame.name}, {Path(frame.filename).name} line {frame.lineno})"


# --- softmax loss -------------------------------------------------------------------------


def _problem(seed: int = 231) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    W = 0.5 * rng.standard_normal((_D, _C))
    X = rng.standard_normal((_N, _D))
    y = rng.permutation(np.arange(_N) % _C)  # every class appears
    return W, X, y


def _call(loss_fn: Callable, W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float):
    """Call the loss and insist on the contract: (a number, an array of W's shape)."""
    out = loss_fn(W, X, y, reg)
    if not isinstance(out, tuple) or len(out) != 2:
        raise _Fail(f"returned {type(out).__name__}, expected a pair (loss, dW)")
    loss, dW = out
    if np.ndim(loss) != 0:
        raise _Fail(f"loss has shape {np.shape(loss)}: it should be one number (a mean)")
    if not isinstance(dW, np.ndarray) or dW.shape != W.shape:
        raise _Fail(
            f"dW is {getattr(dW, 'shape', type(dW).__name__)}, expected W's shape {W.shape}"
        )
    return float(loss), dW


def _check_loss_at_zero(loss_fn: Callable) -> None:
    _, X, y = _problem()
    loss, _ = _call(loss_fn, np.zeros((_D, _C)), X, y, _REG)
    expected = math.log(_C)
    if np.isclose(loss, expected, rtol=1e-9):
        return
    said = f"loss at W=0 is {loss:.3f}, expected log({_C}) = {expected:.3f}"
    if np.isclose(loss, _N * expected, rtol=1e-9):
        hint = f"it is N = {_N} times too big: did you average over examples?"
    elif loss == 0:
        hint = "nothing was added to loss: did you accumulate each example's loss?"
    elif np.isclose(loss, -expected, rtol=1e-9):
        hint = "the sign is flipped: the loss is minus the log-probability of the true class"
    else:
        hint = "at W=0 every class has probability 1/C; check the log-probability term"
    raise _Fail(f"{said}: {hint}")


def _check_gradient(loss_fn: Callable, reg: float) -> None:
    W, X, y = _problem()
    _, dW = _call(loss_fn, W, X, y, reg)
    numerical = eval_numerical_gradient(lambda w: _call(loss_fn, w, X, y, reg)[0], W.copy(), False)
    scale = np.maximum(np.linalg.norm(dW, axis=0) + np.linalg.norm(numerical, axis=0), 1e-12)
    errors = np.linalg.norm(dW - numerical, axis=0) / scale
    if errors.max() <= _GRAD_TOL:
        return
    if not dW.any():
        raise _Fail("dW is all zeros: store the gradient in dW")
    if np.allclose(dW, _N * numerical, rtol=1e-5):
        raise _Fail(f"dW is N = {_N} times too big: did you average the gradient over examples?")
    if np.allclose(dW, -numerical, rtol=1e-5):
        raise _Fail("dW has the wrong sign: it is the gradient of the loss, not of -loss")
    column = int(errors.argmax())
    said = f"gradient column {column} is off (relative error {errors[column]:.2g})"
    if reg:
        hint = "check the 2*reg*W term (the gradient is right when reg=0)"
    else:
        hint = "with reg=0, compare dW[:, j] with d(loss)/d(W[:, j]) from cs231n.gradient_check"
    raise _Fail(f"{said}: {hint}")


def _check_regularization(loss_fn: Callable) -> None:
    W, X, y = _problem()
    plain, _ = _call(loss_fn, W, X, y, 0.0)
    regularized, _ = _call(loss_fn, W, X, y, _REG)
    expected = _REG * float(np.sum(W * W))
    added = regularized - plain
    if np.isclose(added, expected, rtol=1e-9):
        return
    said = f"reg={_REG} adds {added:.4f} to the loss, expected reg * sum(W**2) = {expected:.4f}"
    if added == 0:
        hint = "the loss ignores reg: add the regularisation term"
    elif np.isclose(added, expected / 2, rtol=1e-9):
        hint = "this kit uses reg * sum(W**2), without a factor 1/2"
    else:
        hint = "add the regularisation once, after averaging over examples"
    raise _Fail(f"{said}: {hint}")


def _check_large_scores(loss_fn: Callable) -> None:
    """Adding 1000 to every score of a row (a bias column) must not change the result."""
    W, X, y = _problem()
    loss, dW = _call(loss_fn, W, X, y, 0.0)
    W_big = np.vstack([W, np.full((1, _C), 1000.0)])
    X_big = np.hstack([X, np.ones((_N, 1))])
    big_loss, big_dW = _call(loss_fn, W_big, X_big, y, 0.0)
    if not np.isfinite(big_loss):
        raise _Fail(
            f"loss is {big_loss} for large scores (around 1000): subtract each row's maximum "
            "score before np.exp"
        )
    if not np.all(np.isfinite(big_dW)):
        raise _Fail(
            "dW has inf or nan for large scores (around 1000): compute the probabilities "
            "from the scores minus each row's maximum"
        )
    if not (np.isclose(big_loss, loss, rtol=1e-9) and np.allclose(big_dW[:_D], dW, rtol=1e-7)):
        raise _Fail(
            f"adding 1000 to every score changed the loss from {loss:.4f} to {big_loss:.4f}: "
            "softmax probabilities do not change when a row's scores shift together"
        )
    # One example whose true class scores 1000 below the best: a loss of almost exactly
    # 1000, though its probability exp(-1000) underflows to 0.
    W_far = np.zeros((_D, _C))
    W_far[0, 0] = 1000.0
    X_one = np.eye(1, _D)
    far_loss, far_dW = _call(loss_fn, W_far, X_one, np.array([1]), 0.0)
    if not (np.isclose(far_loss, 1000.0, rtol=1e-9) and np.all(np.isfinite(far_dW))):
        raise _Fail(
            f"loss is {far_loss} when the true class scores 1000 below the best, expected "
            "1000: take the log-probability as s_y - logsumexp(s), not log(p_y) of a "
            "probability that underflows to 0"
        )


def _check_softmax_loss(loss_fn: Callable) -> None:
    _check_loss_at_zero(loss_fn)
    _check_gradient(loss_fn, reg=0.0)
    _check_regularization(loss_fn)
    _check_gradient(loss_fn, reg=_REG)
    _check_large_scores(loss_fn)


def _check_naive() -> str:
    _check_softmax_loss(_softmax.softmax_loss_naive)
    return (
        f"loss at W=0 is log({_C}), gradient matches the numerical one with and without "
        "reg, stable at huge scores"
    )


class _RowCounter(np.ndarray):
    """An array that counts reads of single rows (``X[i]``, ``X[i, j]``, ``for x in X``)."""

    reads = 0

    def __getitem__(self, key: object) -> object:
        first = key[0] if isinstance(key, tuple) and key else key
        if isinstance(first, int | np.integer):
            _RowCounter.reads += 1
        return super().__getitem__(key)

    def __iter__(self) -> Iterator[object]:
        for i in range(len(self)):
            yield self[i]


def _row_reads(loss_fn: Callable, n: int) -> int:
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, _D)).view(_RowCounter)
    y = (np.arange(n) % _C).view(_RowCounter)
    _RowCounter.reads = 0
    loss_fn(rng.standard_normal((_D, _C)), X, y, _REG)
    return _RowCounter.reads


def _check_vectorized() -> str:
    loss_fn = _softmax.softmax_loss_vectorized
    _check_softmax_loss(loss_fn)
    if _row_reads(loss_fn, 2 * _N) > _row_reads(loss_fn, _N):
        raise _Fail(
            "reads rows one at a time, more for more examples: a Python loop over the "
            "examples? Work on the whole (N, C) score matrix at once"
        )
    W, X, y = _problem()
    loss32, dW32 = _call(loss_fn, W.astype(np.float32), X.astype(np.float32), y, _REG)
    if dW32.dtype != np.float32:
        raise _Fail(f"float32 inputs gave a {dW32.dtype} dW: keep float32 inputs in float32")
    loss64, _ = _call(loss_fn, W, X, y, _REG)
    if not np.isclose(loss32, loss64, rtol=1e-4):
        raise _Fail(f"float32 loss {loss32:.5f} differs from the float64 one {loss64:.5f}")
    try:
        naive = _call(_softmax.softmax_loss_naive, W, X, y, _REG)
    except Exception:
        naive = None  # the naive version is checked on its own; compare only if it runs
    if naive is not None and not np.isclose(naive[0], loss64, rtol=1e-9):
        raise _Fail(
            f"loss {loss64:.6f} differs from softmax_loss_naive's {naive[0]:.6f}: "
            'see which of check("softmax_loss_naive") and this check fails first'
        )
    return (
        f"loss at W=0 is log({_C}), gradient matches the numerical one with and without "
        "reg, stable at huge scores, no loop over examples, float32 stays float32"
    )


# --- LinearClassifier.train ---------------------------------------------------------------


class _Bowl(_linear.LinearClassifier):
    """A stand-in loss ``0.5 * ||W - W_star||**2`` that records each minibatch.

    Its gradient is ``W - W_star``, so one SGD step with rate lr takes the distance to
    W_star from d to (1 - lr) * d: after k steps, (1 - lr)**k * d.
    """

    def __init__(self, W0: np.ndarray, W_star: np.ndarray) -> None:
        super().__init__()
        self.W = W0.copy()
        self.W_star = W_star
        self.batches: list[tuple[object, object]] = []

    def loss(self, X_batch: object, y_batch: object, reg: float) -> tuple[float, np.ndarray]:
        self.batches.append((X_batch, y_batch))
        diff = self.W - self.W_star
        return 0.5 * float(np.sum(diff * diff)), diff.copy()


def _bowl_run(seed: int, num_iters: int, batch_size: int, lr: float = 0.1):
    rng = np.random.default_rng(7)
    X = rng.standard_normal((_N, _D))
    y = rng.permutation(np.arange(_N) % 3)
    W0, W_star = rng.standard_normal((_D, 3)), rng.standard_normal((_D, 3))
    model = _Bowl(W0, W_star)
    history = model.train(
        X, y, learning_rate=lr, reg=0.0, num_iters=num_iters, batch_size=batch_size, seed=seed
    )
    return X, y, W0, W_star, model, history


def _batch_indices(X: np.ndarray, y: np.ndarray, batch: tuple, batch_size: int) -> list[int]:
    """Row indices of X that a recorded minibatch holds, checking labels go with rows."""
    X_batch, y_batch = batch
    if X_batch is None or y_batch is None:
        missing = "X_batch" if X_batch is None else "y_batch"
        raise _Fail(f"{missing} is still None: sample it from the training data")
    X_batch, y_batch = np.asarray(X_batch), np.asarray(y_batch)
    if X_batch.shape != (batch_size, X.shape[1]) or y_batch.shape != (batch_size,):
        raise _Fail(
            f"X_batch is {X_batch.shape} and y_batch {y_batch.shape}, expected "
            f"({batch_size}, {X.shape[1]}) and ({batch_size},): draw batch_size examples"
        )
    row_of = {row.tobytes(): i for i, row in enumerate(X)}
    indices = []
    for k, row in enumerate(X_batch):
        i = row_of.get(np.ascontiguousarray(row, dtype=X.dtype).tobytes())
        if i is None:
            raise _Fail(f"X_batch[{k}] is not a row of X: take whole rows of X")
        if y_batch[k] != y[i]:
            raise _Fail(
                f"y_batch[{k}] is not the label of X_batch[{k}]: index X and y with the "
                "same indices"
            )
        indices.append(i)
    return indices


def _check_train() -> str:
    batch_size, num_iters = 2 * _N, 30  # batch_size > N: only sampling with replacement works
    try:
        X, y, W0, W_star, model, history = _bowl_run(0, num_iters, batch_size)
    except ValueError as error:
        if "replace" in str(error):
            raise _Fail(
                f"batch_size={batch_size} with N={_N} examples raised ({error}): sample "
                "with replacement"
            ) from error
        raise
    if len(model.batches) != num_iters or len(history) != num_iters:
        raise _Fail(f"num_iters={num_iters} gave {len(history)} losses: one per iteration")
    drawn = [_batch_indices(X, y, batch, batch_size) for batch in model.batches]
    if all(d == drawn[0] for d in drawn):
        raise _Fail("every iteration used the same minibatch: draw new indices each time")
    if len(set().union(*drawn)) < _N:
        raise _Fail(f"only {len(set().union(*drawn))} of the {_N} rows were ever drawn")
    again = _bowl_run(0, num_iters, batch_size)[4]
    if [_batch_indices(X, y, b, batch_size) for b in again.batches] != drawn:
        raise _Fail(
            "two runs with seed=0 drew different minibatches: draw with rng, the "
            "generator that train() seeds, not with np.random"
        )

    lr = 0.1
    start, end = np.linalg.norm(W0 - W_star), np.linalg.norm(model.W - W_star)
    expected = (1 - lr) ** num_iters * start
    if np.array_equal(model.W, W0):
        raise _Fail("self.W never changed: update self.W itself, not a copy")
    if end > start:
        raise _Fail(
            f"the loss went up ({history[0]:.3f} to {history[-1]:.3f}): step against "
            "the gradient, not along it"
        )
    if not np.isclose(end, expected, rtol=1e-6):
        raise _Fail(
            f"on a test bowl, {num_iters} steps with learning_rate={lr} should shrink the "
            f"distance to the minimum from {start:.3f} to {expected:.5f}, not {end:.5f}: "
            "scale the gradient step by learning_rate"
        )
    return (
        "minibatches of batch_size rows with their labels, drawn with the seeded rng; "
        "the update steps down the gradient by learning_rate"
    )


# --- LinearClassifier.predict -------------------------------------------------------------


def _check_predict() -> str:
    rng = np.random.default_rng(5)
    C = 4
    W = rng.standard_normal((C, C)) + 3 * np.eye(C)  # invertible
    labels = rng.permutation(np.arange(_N) % C)
    scores = rng.uniform(0, 1, (_N, C))
    scores[np.arange(_N), labels] = 2.0  # the highest score of each row, by construction
    X = np.linalg.solve(W.T, scores.T).T  # X @ W == scores
    model = _linear.Softmax()
    model.W = W
    y_pred = model.predict(X)
    if not isinstance(y_pred, np.ndarray) or y_pred.shape != (_N,):
        raise _Fail(
            f"y_pred is {getattr(y_pred, 'shape', type(y_pred).__name__)}, expected shape "
            f"({_N},): one label per row of X, the best class over the class axis"
        )
    if not np.issubdtype(y_pred.dtype, np.integer):
        raise _Fail(f"y_pred has dtype {y_pred.dtype}: labels are class indices (integers)")
    wrong = np.flatnonzero(y_pred != labels)
    if wrong.size:
        i = int(wrong[0])
        if not y_pred.any():
            raise _Fail("y_pred is all zeros: store the predictions in y_pred")
        raise _Fail(
            f"row {i}: predicted class {y_pred[i]}, but class {labels[i]} has the highest "
            "score: pick each row's highest score"
        )
    return "one integer label per row, the class with the highest score"


# --- grid_search's batched step (optional) ------------------------------------------------

_GRID = [(0.05, 0.0), (0.05, 0.3), (0.2, 0.0), (0.2, 0.3)]  # (lr, reg) of the K models
_GRID_ITERS, _GRID_BATCH, _GRID_SEED = 10, 8, 3
_GRID_TOL = 1e-9  # the same float64 arithmetic as Softmax.train, up to BLAS rounding
_NOT_WRITTEN = (
    "optional batched step not written; grid_search trains the configurations one by one"
)


class _Bar:
    """Stands in for the tqdm bar: counts what ``bar.update(n)`` adds up to."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def _grid_problem(scale: float = 1.0, dtype: type = np.float64) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(11)
    X = scale * rng.standard_normal((_N, _D))
    y = rng.permutation(np.arange(_N) % 3)  # C = 3, every class appears
    return X.astype(dtype), y


def _together(X: np.ndarray, y: np.ndarray, num_iters: int) -> tuple[np.ndarray, _Bar]:
    bar = _Bar()
    C = int(y.max()) + 1
    W_all = _tuning._train_together(X, y, _GRID, C, num_iters, _GRID_BATCH, _GRID_SEED, bar)
    if not isinstance(W_all, np.ndarray) or W_all.shape != (X.shape[1], C * len(_GRID)):
        got = getattr(W_all, "shape", type(W_all).__name__)
        raise _Fail(
            f"returned W_all of shape {got}, expected ({X.shape[1]}, {C * len(_GRID)}): the "
            f"K = {len(_GRID)} models' (D, C) weights side by side"
        )
    return W_all, bar


def _solo(X: np.ndarray, y: np.ndarray, lr: float, reg: float, num_iters: int) -> np.ndarray:
    model = _linear.Softmax()
    model.train(X, y, lr, reg, num_iters, _GRID_BATCH, seed=_GRID_SEED)
    return model.W


def _relative_error(W: np.ndarray, W_solo: np.ndarray) -> float:
    return float(np.linalg.norm(W - W_solo) / max(np.linalg.norm(W_solo), 1e-300))


def _diagnose(X: np.ndarray, y: np.ndarray, W: np.ndarray, lr: float, reg: float) -> str | None:
    """Name the mistake when W is what Softmax.train gives with other hyperparameters."""
    B = _GRID_BATCH
    candidates = []  # (lr, reg) that Softmax.train would need to give W, and what it means
    for lr_j in sorted({c[0] for c in _GRID} - {lr}):
        hint = (
            f"it trained with learning rate {lr_j:g}, another model's: each model's C columns "
            "step with its own learning rate"
        )
        candidates.append((lr_j, reg, hint))
    if reg:
        hint = "it trained as if reg were 0: add each model's own 2 * reg * W to its gradient"
        candidates.append((lr, 0.0, hint))
    for reg_j in sorted({c[1] for c in _GRID} - {reg, 0.0}):
        hint = f"it trained with reg {reg_j:g}, another model's: each model has its own reg"
        candidates.append((lr, reg_j, hint))
    if reg:
        rule = "the gradient of reg * sum(W**2) is 2 * reg * W"
        candidates.append((lr, reg / 2, f"the reg term of the gradient is half: {rule}"))
        candidates.append((lr, 2 * reg, f"the reg term of the gradient is doubled: {rule}"))
    # Scaling the data term by B is the same step as lr * B with reg / B.
    hint = f"the gradient is batch_size = {B} times too big: average it over the minibatch"
    candidates.append((lr * B, reg / B, hint))
    hint = f"the gradient is batch_size = {B} times too small: divide by batch_size only once"
    candidates.append((lr / B, reg * B, hint))
    for lr_j, reg_j, hint in candidates:
        if _relative_error(W, _solo(X, y, lr_j, reg_j, _GRID_ITERS)) <= 1e-6:
            return hint
    return None


def _compare_with_solo(X: np.ndarray, y: np.ndarray, W_all: np.ndarray, tol: float) -> None:
    C = int(y.max()) + 1
    for k, (lr, reg) in enumerate(_GRID):
        W = W_all[:, k * C : (k + 1) * C]
        error = _relative_error(W, _solo(X, y, lr, reg, _GRID_ITERS))
        if error <= tol:
            continue
        said = (
            f"configuration (lr={lr:g}, reg={reg:g}) differs from Softmax().train with the "
            f"same seed (relative error {error:.2g})"
        )
        hint = _diagnose(X, y, W, lr, reg) or (
            "draw one minibatch per step with rng, as Softmax.train does; does each model "
            "use its own columns (k*C to k*C + C - 1), its own softmax over its C scores, "
            "its own learning rate and reg?"
        )
        raise _Fail(f"{said}: {hint}")


def _check_grid_search() -> str:
    X, y = _grid_problem()
    K = len(_GRID)
    try:
        W_all, bar = _together(X, y, _GRID_ITERS)
    except NotImplementedError:  # grid_search falls back to Softmax.train; nothing to check
        return _NOT_WRITTEN
    if not np.array_equal(_together(X, y, _GRID_ITERS)[0], W_all):
        raise _Fail(
            "two runs with the same seed gave different weights: draw each minibatch with "
            "rng, the generator seeded with seed, not with np.random"
        )
    # The oracle is your Softmax.train: it has to be right before it can judge.
    for name, prerequisite in (
        ("softmax_loss_vectorized", _check_vectorized),
        ("train", _check_train),
    ):
        try:
            prerequisite()
        except Exception as error:
            raise _Fail(
                f'this check compares with your Softmax.train, but check("{name}") does not '
                "pass yet: make it pass first"
            ) from error
    if np.array_equal(W_all, np.tile(_solo(X, y, 1.0, 0.0, 0), (1, K))):
        raise _Fail(
            "W_all never changed: step W_all itself, every model's columns, each iteration"
        )
    _compare_with_solo(X, y, W_all, _GRID_TOL)

    X_big, _ = _grid_problem(scale=1e6)  # initial scores in the thousands
    W_big, _ = _together(X_big, y, 1)
    if not np.all(np.isfinite(W_big)):
        raise _Fail(
            "W_all has inf or nan when the scores are large (thousands): subtract each "
            "model's maximum score from its scores before np.exp"
        )

    X32, _ = _grid_problem(dtype=np.float32)
    W32, _ = _together(X32, y, _GRID_ITERS)
    if W32.dtype != np.float32:
        raise _Fail(
            f"float32 data gave a {W32.dtype} W_all: keep the step in X.dtype (a float64 "
            "array, of learning rates say, upcasts what it multiplies)"
        )
    _compare_with_solo(X32, y, W32, 1e-4)

    if bar.n != K * _GRID_ITERS:
        raise _Fail(
            f"the progress bar advanced by {bar.n} over {_GRID_ITERS} steps of K = {K} "
            f"models, expected {K * _GRID_ITERS}: advance it by K once per step (bar.update)"
        )
    return (
        f"each of {K} configurations ends with the weights of Softmax().train with the "
        "same seed, in float64 and float32; stable at huge scores; the bar advances K per step"
    )


CHECKS: dict[str, Callable[[], str]] = {
    "softmax_loss_naive": _check_naive,
    "softmax_loss_vectorized": _check_vectorized,
    "train": _check_train,
    "predict": _check_predict,
    "grid_search": _check_grid_search,  # last: optional, and its oracle is Softmax.train
}


def main(argv: list[str] | None = None) -> int:
    """Run the named checks (all by default); exit status 1 if any fails."""
    names = sys.argv[1:] if argv is None else argv
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    results = [check(name) for name in names or CHECKS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
