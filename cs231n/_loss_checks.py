"""The loss's self-checks that need no grader: log C at W = 0, a loss known by
construction, the numerical gradient, float32 in and out, and arguments left as they
were. ``checks.py`` runs them; ``_properties.py`` holds the facts the grader shares."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np

from . import _properties as props
from .gradient_check import eval_numerical_gradient

_N, _D, _C = 12, 5, 10  # a small problem: the naive loss and numerical gradients are fast
_REG = 0.1
_GRAD_TOL = 1e-6  # centred differences with h=1e-5 agree to ~1e-9 in float64

_Fail = props.Failed


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
            props.judge_unchanged(function, name, copy, arrays[name])

    return verify


def _call(loss_fn: Callable, W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float):
    """Call the loss and insist on the contract: (a number, an array of W's shape), and
    W, X, y left as they were."""
    verify = _unchanged(loss_fn.__name__, W=W, X=X, y=y)
    out = loss_fn(W, X, y, reg)
    verify()
    if not isinstance(out, tuple) or len(out) != 2:
        raise _Fail(f"returned {type(out).__name__}, expected a pair (loss, dW)", "not a pair")
    loss, dW = out
    if np.ndim(loss) != 0:
        raise _Fail(
            f"loss has shape {np.shape(loss)}: it should be one number (a mean)", "not a number"
        )
    if not isinstance(dW, np.ndarray) or dW.shape != W.shape:
        raise _Fail(
            f"dW is {getattr(dW, 'shape', type(dW).__name__)}, expected W's shape {W.shape}",
            "dW does not have W's shape",
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
            "one per row), not taken over columns or the whole matrix"
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
