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
code with facts that hold for any correct one:

- the loss: log C at W = 0; minus the mean log-probability of the true classes on
  scores built to have known softmax probabilities; a gradient equal to the numerical
  one, with and without reg; reg * sum(W**2) added exactly; the same loss when some
  rows' scores are lifted by 1000 and others not; float32 in, float32 dW out; W, X
  and y left unchanged;
- ``train``: minibatches of whole rows with their own labels, drawn with replacement
  from ``rng`` (the same seed repeats them, another seed changes them, the global
  ``np.random`` is not touched); every step is exactly ``W - learning_rate * grad``
  (on a stand-in loss whose gradient is known); float32 W stays float32;
- ``predict``: the class with the highest score, as integers, also for scores near 1000;
- ``grid_search``: the batched step gives the models your own ``Softmax.train`` gives.

All data are seeded, so the output is the same on every run.
"""

from __future__ import annotations

import math
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

from ._deps import require_packages

require_packages(exit=__name__ == "__main__")  # first: one message naming all that is missing

import numpy as np  # noqa: E402

from . import tuning as _tuning  # noqa: E402
from .classifiers import linear_classifier as _linear  # noqa: E402
from .classifiers import softmax as _softmax  # noqa: E402
from .gradient_check import eval_numerical_gradient  # noqa: E402

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


def _unchanged(function: str, **arrays: np.ndarray) -> Callable[[], None]:
    """Copy the arrays; the returned function fails if any of them has changed since."""
    copies = {name: a.copy() for name, a in arrays.items()}

    def verify() -> None:
        for name, copy in copies.items():
            if not np.array_equal(arrays[name], copy):
                raise _Fail(
                    f"{function} changed its argument {name} in place: leave the caller's "
                    f"data as it was; `a = {name}` is a second name for {name}, not a "
                    f"copy, so `a *= ...`, `a[...] = ...` or a shuffle of a change {name} "
                    "too: work on new arrays"
                )

    return verify


def _call(loss_fn: Callable, W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float):
    """Call the loss and insist on the contract: (a number, an array of W's shape), and
    W, X, y left as they were."""
    verify = _unchanged(loss_fn.__name__, W=W, X=X, y=y)
    out = loss_fn(W, X, y, reg)
    verify()
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
    elif np.isclose(loss, expected / _N, rtol=1e-9):
        hint = (
            f"it is N = {_N} times too small: only one example counted; add each "
            "example's loss (+=), then average"
        )
    elif np.isclose(loss, expected / _C, rtol=1e-9):
        hint = (
            f"it is C = {_C} times too small: average over the N examples, not over "
            "all N*C entries of the score matrix"
        )
    elif np.isclose(loss, math.log(_N * _C), rtol=1e-9):
        hint = (
            f"it is log(N*C) = log({_N * _C}): the probabilities were normalised over the "
            "whole score matrix; each row's softmax sums over its own C scores (axis=1)"
        )
    elif loss == 0:
        hint = "nothing was added to loss: did you accumulate each example's loss?"
    elif np.isclose(loss, -expected, rtol=1e-9):
        hint = "the sign is flipped: the loss is minus the log-probability of the true class"
    else:
        hint = "at W=0 every class has probability 1/C; check the log-probability term"
    raise _Fail(f"{said}: {hint}")


def _known_probabilities(shift: float) -> tuple[np.ndarray, ...]:
    """W, X, y, P with X @ W = log(P) + a constant per row, for probabilities P (rows
    summing to 1): the softmax of those scores is P, whatever the constants."""
    rng = np.random.default_rng(17)
    C = 6
    P = rng.dirichlet(np.ones(C), size=_N)
    y = rng.permutation(np.arange(_N) % C)
    scores = np.log(P) + rng.uniform(-shift, shift, (_N, 1))
    W = rng.standard_normal((C, C)) + 3 * np.eye(C)  # invertible
    X = np.linalg.solve(W.T, scores.T).T  # X @ W == scores
    return W, X, y, P


def _check_known_loss(loss_fn: Callable) -> None:
    """On scores whose softmax is known, the loss is -mean(log P[i, y[i]])."""
    W, X, y, P = _known_probabilities(shift=30.0)
    rows = np.arange(_N)
    loss, _ = _call(loss_fn, W, X, y, 0.0)
    expected = -np.mean(np.log(P[rows, y]))
    if np.isclose(loss, expected, rtol=1e-9):
        return
    said = (
        f"on scores whose softmax probabilities are known, the loss is {loss:.4f}, "
        f"expected {expected:.4f} (minus the mean log-probability of the true classes)"
    )
    C = P.shape[1]
    unshifted, _ = _call(loss_fn, *_known_probabilities(shift=0.0)[:3], 0.0)
    if not np.isclose(unshifted, loss, rtol=1e-9):
        hint = (
            "adding a constant to all scores of a row changed your loss, but softmax does "
            "not change: each row's maximum and sum of exponentials are its own (axis=1, "
            "keepdims=True), not taken over columns or the whole matrix"
        )
    elif any(np.isclose(loss, -np.mean(np.log(P[rows, (y + k) % C])), rtol=1e-9) for k in (-1, 1)):
        hint = (
            "it is the loss of the neighbouring class (label off by one?): the true "
            "class of example i is y[i], counting from 0"
        )
    else:
        hint = "check the log-probability of the true class, log(softmax(s)[y[i]])"
    raise _Fail(f"{said}: {hint}")


def _gradient_hint(
    loss_fn: Callable, problem: tuple, reg: float, dW: np.ndarray, numerical: np.ndarray
) -> str:
    """Name the mistake when dW and the numerical gradient at ``problem`` disagree."""
    if not dW.any():
        return "dW is all zeros: store the gradient in dW"
    ratio = float(np.sum(dW * numerical) / np.sum(numerical * numerical))
    if np.allclose(dW, ratio * numerical, rtol=1e-5, atol=1e-10):
        if np.isclose(ratio, _N, rtol=1e-6):
            return f"dW is N = {_N} times too big: did you average the gradient over examples?"
        if np.isclose(ratio, -1, rtol=1e-6):
            return "dW has the wrong sign: it is the gradient of the loss, not of -loss"
        return f"dW is {ratio:.4g} times the gradient: check how you average and scale it"
    W, X, y = problem
    rows = np.arange(len(y))
    true_scores = eval_numerical_gradient(lambda w: np.mean((X @ w)[rows, y]), W.copy(), False)
    if np.allclose(dW - numerical, true_scores, rtol=1e-5, atol=1e-8):
        return "dW leaves out the gradient of the -s_y term: the true class's score"
    last = eval_numerical_gradient(
        lambda w: _call(loss_fn, w, X[-1:], y[-1:], 0.0)[0], W.copy(), False
    )
    if np.allclose(dW, last / len(y) + 2 * reg * W, rtol=1e-5, atol=1e-8):
        return (
            "dW holds only the last example's gradient: accumulate (+=) every example's "
            "contribution instead of overwriting it"
        )
    if reg:
        return "check the 2*reg*W term (the gradient is right when reg=0)"
    return "with reg=0, compare dW[:, j] with d(loss)/d(W[:, j]) from cs231n.gradient_check"


def _check_gradient(loss_fn: Callable, reg: float) -> None:
    W, X, y = _problem()
    _, dW = _call(loss_fn, W, X, y, reg)
    numerical = eval_numerical_gradient(lambda w: _call(loss_fn, w, X, y, reg)[0], W.copy(), False)
    scale = np.maximum(np.linalg.norm(dW, axis=0) + np.linalg.norm(numerical, axis=0), 1e-12)
    errors = np.linalg.norm(dW - numerical, axis=0) / scale
    if errors.max() <= _GRAD_TOL:
        return
    hint = _gradient_hint(loss_fn, (W, X, y), reg, dW, numerical)
    if hint.startswith("dW "):
        raise _Fail(hint)
    column = int(errors.argmax())
    raise _Fail(f"gradient column {column} is off (relative error {errors[column]:.2g}): {hint}")


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
        hint = (
            "the term is reg times the sum of the squared weights, added once, after "
            "averaging over examples"
        )
    raise _Fail(f"{said}: {hint}")


def _check_large_scores(loss_fn: Callable) -> None:
    """Adding 1000 to all scores of some rows (a bias column) must not change the result."""
    W, X, y = _problem()
    loss, dW = _call(loss_fn, W, X, y, 0.0)
    W_big = np.vstack([W, np.full((1, _C), 1000.0)])
    for lifted, hint in (
        (np.ones(_N), "subtract each row's maximum score before np.exp"),
        (
            np.arange(_N) % 2,
            "one maximum for all rows leaves the rows far below it at exp(-1000) = 0; "
            "subtract each row's own maximum (axis=1, keepdims=True)",
        ),
    ):
        X_big = np.hstack([X, lifted[:, None]])
        said = "all scores near 1000" if lifted.all() else "rows whose best scores are 1000 apart"
        big_loss, big_dW = _call(loss_fn, W_big, X_big, y, 0.0)
        if not np.isfinite(big_loss):
            raise _Fail(f"loss is {big_loss} for {said}: {hint}")
        if not np.all(np.isfinite(big_dW)):
            raise _Fail(
                f"dW has inf or nan for {said}: compute the probabilities from the scores "
                f"minus each row's own maximum ({hint})"
            )
        if not (np.isclose(big_loss, loss, rtol=1e-9) and np.allclose(big_dW[:_D], dW, rtol=1e-7)):
            raise _Fail(
                f"adding 1000 to every score of some rows changed the loss from {loss:.4f} to "
                f"{big_loss:.4f}: softmax probabilities do not change when a row's scores "
                "shift together; shift each row by its own maximum"
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
            "1000: take the log-probability as s_y - logsumexp(s), with the row's maximum "
            "subtracted first; log(p_y) of a probability that underflows to 0, or np.exp "
            "of a score shifted by anything but the maximum, gives inf"
        )


def _check_float32(loss_fn: Callable) -> None:
    W, X, y = _problem()
    loss32, dW32 = _call(loss_fn, W.astype(np.float32), X.astype(np.float32), y, _REG)
    if dW32.dtype != np.float32:
        raise _Fail(
            f"float32 inputs gave a {dW32.dtype} dW: keep float32 inputs in float32 (a new "
            "np.zeros((N, C)) or a .astype(np.float64) is float64; np.zeros_like(W) or "
            "dtype=X.dtype are not)"
        )
    loss64, _ = _call(loss_fn, W, X, y, _REG)
    if not np.isclose(loss32, loss64, rtol=1e-4):
        raise _Fail(f"float32 loss {loss32:.5f} differs from the float64 one {loss64:.5f}")


def _check_softmax_loss(loss_fn: Callable) -> None:
    _check_loss_at_zero(loss_fn)
    _check_known_loss(loss_fn)
    _check_gradient(loss_fn, reg=0.0)
    _check_regularization(loss_fn)
    _check_gradient(loss_fn, reg=_REG)
    _check_large_scores(loss_fn)
    _check_float32(loss_fn)


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
    loss64, _ = _call(loss_fn, W, X, y, _REG)
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
    """A stand-in loss ``0.5 * ||W - W_star||**2`` that records every call.

    Its gradient is ``W - W_star``. It ignores reg (the real loss adds it to the
    gradient itself), so every update must be exactly ``W - learning_rate * grad``.
    W starts as None, so train() draws the starting W from rng, as for a new Softmax.
    """

    def __init__(self, W_star: np.ndarray) -> None:
        super().__init__()
        self.W_star = W_star
        self.batches: list[tuple[object, object]] = []
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []  # (W, grad) at each call

    def loss(self, X_batch: object, y_batch: object, reg: float) -> tuple[float, np.ndarray]:
        self.batches.append((X_batch, y_batch))
        diff = self.W - self.W_star
        self.steps.append((self.W.copy(), diff.copy()))
        return 0.5 * float(np.sum(diff * diff)), diff.copy()


_LR, _BOWL_REG = 0.1, 0.5


def _bowl_run(seed: int, num_iters: int, batch_size: int, dtype: type = np.float64):
    """Train a _Bowl on a small seeded problem; the global np.random state is kept."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((_N, _D)).astype(dtype)
    y = rng.permutation(np.arange(_N) % 3)
    model = _Bowl(W_star=rng.standard_normal((_D, 3)).astype(dtype))
    verify = _unchanged("train", X=X, y=y)
    # The legacy global state is what a stray np.random call would use, so watch it.
    global_state = np.random.get_state()  # noqa: NPY002
    try:
        history = model.train(
            X, y, _LR, _BOWL_REG, num_iters=num_iters, batch_size=batch_size, seed=seed
        )
        after = np.random.get_state()  # noqa: NPY002
    finally:
        np.random.set_state(global_state)  # noqa: NPY002  (leave the caller's state as it was)
    verify()
    if not (np.array_equal(global_state[1], after[1]) and global_state[2] == after[2]):
        raise _Fail(
            "train changed the global np.random state: draw the minibatches with rng, the "
            "Generator that train() makes from seed, not with np.random.seed or "
            "np.random.choice"
        )
    return X, y, model, history


def _batch_indices(X: np.ndarray, y: np.ndarray, batch: tuple, batch_size: int) -> list[int]:
    """Row indices of X that a recorded minibatch holds, checking labels go with rows."""
    X_batch, y_batch = batch
    if X_batch is None or y_batch is None:
        missing = "X_batch" if X_batch is None else "y_batch"
        raise _Fail(f"{missing} is still None: sample it from the training data")
    X_batch, y_batch = np.asarray(X_batch), np.asarray(y_batch)
    if X_batch.shape != (batch_size, X.shape[1]) or y_batch.shape != (batch_size,):
        said = (
            f"X_batch is {X_batch.shape} and y_batch {y_batch.shape}, expected "
            f"({batch_size}, {X.shape[1]}) and ({batch_size},)"
        )
        if X_batch.shape[:1] == (len(X),) < (batch_size,):
            raise _Fail(
                f"{said}: with batch_size={batch_size} > N={len(X)}, sampling without "
                "replacement cannot give batch_size rows; sample with replacement"
            )
        raise _Fail(f"{said}: draw batch_size examples")
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


def _check_sampling(batch_size: int, num_iters: int) -> _Bowl:
    try:
        X, y, model, history = _bowl_run(0, num_iters, batch_size)
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
    never = sorted(set(range(_N)) - set().union(*drawn))
    if never:
        raise _Fail(
            f"rows {never} of X were never drawn in {num_iters} minibatches: every row "
            "must be possible (the upper bound of rng.integers is exclusive)"
        )

    def indices(seed: int) -> list[list[int]]:
        return [
            _batch_indices(X, y, b, batch_size)
            for b in _bowl_run(seed, num_iters, batch_size)[2].batches
        ]

    if indices(0) != drawn:
        raise _Fail(
            "two runs with seed=0 drew different minibatches: draw with rng, the "
            "generator that train() seeds, not with np.random"
        )
    if indices(1) == drawn:
        raise _Fail(
            "seed=1 drew the same minibatches as seed=0: the draws ignore seed; draw with "
            "rng, the generator that train() makes from seed"
        )
    # rng's first draw is the starting W; every later draw is a minibatch's indices.
    rng = np.random.default_rng(0)
    _linear.initial_weights(rng, _D, 3, X.dtype)
    if drawn != [list(rng.integers(_N, size=batch_size)) for _ in range(num_iters)]:
        raise _Fail(
            "the minibatches are not the draws of rng, the generator train() makes from "
            "seed: draw each one from rng itself, rng.choice(num_train, batch_size, "
            "replace=True) as the TODO says (grid_search relies on exactly these draws)"
        )
    return model


def _check_update(model: _Bowl) -> None:
    W0 = model.steps[0][0]
    after = [W for W, _ in model.steps[1:]] + [model.W]
    if all(np.array_equal(W, W0) for W in after):
        raise _Fail("self.W never changed: update self.W itself, not a copy")
    for (W, grad), new in zip(model.steps, after, strict=True):
        step, expected = new - W, -_LR * grad
        if np.allclose(step, expected, rtol=1e-12, atol=1e-14):
            continue
        said = "an update changed W by something other than -learning_rate * grad"
        if np.allclose(step, -expected, rtol=1e-12, atol=1e-14):
            hint = "W moved along the gradient: step against it, downhill"
        elif np.allclose(
            step, (ratio := np.sum(step * expected) / np.sum(expected**2)) * expected
        ):
            hint = (
                f"the step is {ratio:.4g} times learning_rate * grad (learning_rate = {_LR}): "
                "take exactly learning_rate * grad"
            )
        elif np.allclose(
            step - expected, (extra := np.sum((step - expected) * W) / np.sum(W * W)) * W
        ):
            hint = (
                f"the step has an extra {extra:.3g} * W: the regularisation is already in "
                "grad (the loss adds 2 * reg * W), so do not add it again"
            )
        else:
            hint = "step by exactly -learning_rate * grad, with grad as the loss returned it"
        raise _Fail(f"{said} (on a test loss with learning_rate={_LR}): {hint}")


def _check_train() -> str:
    batch_size, num_iters = 2 * _N, 30  # batch_size > N: only sampling with replacement works
    _check_update(_check_sampling(batch_size, num_iters))
    model32 = _bowl_run(0, 3, batch_size, dtype=np.float32)[2]
    upcast = {str(np.asarray(X_batch).dtype) for X_batch, _ in model32.batches} - {"float32"}
    if upcast:
        raise _Fail(
            f"float32 X gave a {upcast.pop()} X_batch: take the rows as they are (no "
            ".astype), so that float32 data trains in float32"
        )
    W32 = model32.W
    if W32.dtype != np.float32:
        raise _Fail(
            f"training with float32 data and W left a {W32.dtype} W: keep W's dtype (a "
            "np.float64 learning rate or a float64 array upcasts what it multiplies)"
        )
    return (
        "minibatches of batch_size rows with their labels, drawn with the seeded rng; "
        "the update steps down the gradient by learning_rate"
    )


# --- LinearClassifier.predict -------------------------------------------------------------


def _predict_problem(lift: float) -> tuple[np.ndarray, ...]:
    """W (6, 4), X (N, 6) and labels with ``X @ W == scores``, where each row's highest
    score, 2 + lift, is at its label and the others lie in [lift, lift + 1)."""
    rng = np.random.default_rng(5)
    D, C = 6, 4
    W = rng.standard_normal((D, C))  # full column rank, so pinv(W) @ W = I
    labels = rng.permutation(np.arange(_N) % C)
    scores = rng.uniform(0, 1, (_N, C))
    scores[np.arange(_N), labels] = 2.0
    scores += lift
    return W, scores @ np.linalg.pinv(W), labels, scores


def _check_predict() -> str:
    for lift in (0.0, 1000.0):  # then scores near 1000, where np.exp overflows
        W, X, labels, scores = _predict_problem(lift)
        model = _linear.Softmax()
        model.W = W
        verify = _unchanged("predict", X=X, W=W)
        y_pred = model.predict(X)
        verify()
        _check_labels(y_pred, labels, scores)
    return "one integer label per row, the class with the highest score"


def _check_labels(y_pred: object, labels: np.ndarray, scores: np.ndarray) -> None:
    if not isinstance(y_pred, np.ndarray) or y_pred.shape != (_N,):
        shape = getattr(y_pred, "shape", type(y_pred).__name__)
        said = f"y_pred is {shape}, expected shape ({_N},)"
        if shape == scores.shape:
            raise _Fail(f"{said}: those are the scores; take each row's best class (axis=1)")
        raise _Fail(f"{said}: one label per row of X, the best class over the class axis (axis=1)")
    if not np.issubdtype(y_pred.dtype, np.integer):
        raise _Fail(f"y_pred has dtype {y_pred.dtype}: labels are class indices (integers)")
    wrong = np.flatnonzero(y_pred != labels)
    if not wrong.size:
        return
    i = int(wrong[0])
    if scores.max() > 100:  # the same rows passed with small scores
        hint = (
            "right for small scores, wrong for scores near 1000: pick the highest score "
            "itself; np.exp of scores that large overflows"
        )
    elif not y_pred.any():
        raise _Fail("y_pred is all zeros: store the predictions in y_pred")
    elif np.array_equal(y_pred, labels + 1):
        hint = "every label is one too high: class indices count from 0, like argmax's"
    elif np.array_equal(y_pred, scores.argmin(axis=1)):
        hint = "these are the classes with the lowest score: pick each row's highest"
    else:
        hint = "pick each row's highest score"
    raise _Fail(
        f"row {i}: predicted class {y_pred[i]}, but class {labels[i]} has the highest "
        f"score: {hint}"
    )


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
