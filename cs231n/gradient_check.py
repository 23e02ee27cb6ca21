"""Numerical gradients by centred differences, to check analytic gradients against.

The centred difference ``(f(x + h) - f(x - h)) / (2h)`` has error O(h**2), against
O(h) for the one-sided ``(f(x + h) - f(x)) / h``, so it is the one to trust.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def _centred_difference(
    f: Callable[[np.ndarray], float], x: np.ndarray, ix: tuple[int, ...], h: float
) -> float:
    """(f(x + h e_ix) - f(x - h e_ix)) / 2h, nudging x[ix] in place and restoring it."""
    old = x[ix]
    x[ix] = old + h
    f_plus = f(x)
    x[ix] = old - h
    f_minus = f(x)
    x[ix] = old
    return (f_plus - f_minus) / (2 * h)


def rel_error(x: np.ndarray | float, y: np.ndarray | float) -> float:
    """Largest elementwise relative error ``|x - y| / max(1e-8, |x| + |y|)``.

    The floor of 1e-8 in the denominator keeps two zeros from dividing by zero
    (their relative error is 0). Returns 0.0 for empty arrays.
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"rel_error needs arrays of one shape; got {x.shape} and {y.shape}")
    if x.size == 0:
        return 0.0
    return float(np.max(np.abs(x - y) / np.maximum(1e-8, np.abs(x) + np.abs(y))))


def eval_numerical_gradient(
    f: Callable[[np.ndarray], float], x: np.ndarray, verbose: bool = True, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of a scalar function ``f`` at ``x``.

    Parameters
    ----------
    f : function of one array argument returning a number.
    x : float array of any shape; changed in place while evaluating, restored after.
    verbose : print each index and its gradient entry.
    h : step of the centred difference.

    Returns
    -------
    grad : float array of x's shape, ``grad[ix] ~ df/dx[ix]``.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        grad[ix] = _centred_difference(f, x, ix, h)
        if verbose:
            print(ix, grad[ix])
    return grad


def eval_numerical_gradient_array(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, df: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Numerical gradient of an array-valued ``f`` at ``x``, contracted with upstream ``df``.

    Returns ``grad`` of x's shape with ``grad[ix] = sum(df * d f(x) / d x[ix])``: the
    backward pass of ``f`` given the gradient ``df`` (of f(x)'s shape) flowing in.
    """
    grad = np.zeros_like(x)
    for ix in np.ndindex(x.shape):
        old = x[ix]
        x[ix] = old + h
        f_plus = np.array(f(x), copy=True)
        x[ix] = old - h
        f_minus = np.array(f(x), copy=True)
        x[ix] = old
        grad[ix] = np.sum((f_plus - f_minus) * df) / (2 * h)
    return grad


def grad_check_sparse(
    f: Callable[[np.ndarray], float],
    x: np.ndarray,
    analytic_grad: np.ndarray,
    num_checks: int = 10,
    h: float = 1e-5,
    seed: int | None = None,
) -> np.ndarray:
    """Compare ``analytic_grad`` with centred differences at ``num_checks`` random entries.

    Prints one line per entry, as cs231n does::

        numerical: 1.234567 analytic: 1.234567, relative error: 1.234567e-09

    Parameters
    ----------
    f : function of x returning a number (x is changed in place, then restored).
    x : float array at which to check.
    analytic_grad : array of x's shape, the gradient under test.
    num_checks : how many random entries to check.
    h : step of the centred difference.
    seed : seeds the choice of entries; the same seed checks the same entries.

    Returns
    -------
    errors : (num_checks,) float64 array of relative errors, one per entry checked.
    """
    if analytic_grad.shape != x.shape:
        raise ValueError(
            f"analytic_grad has shape {analytic_grad.shape} but x has {x.shape}: "
            "the gradient must have the shape of the variable"
        )
    rng = np.random.default_rng(seed)
    errors = np.empty(num_checks)
    for k in range(num_checks):
        ix = tuple(int(rng.integers(m)) for m in x.shape)
        numerical = _centred_difference(f, x, ix, h)
        analytic = float(analytic_grad[ix])
        errors[k] = rel_error(numerical, analytic)
        print(f"numerical: {numerical:f} analytic: {analytic:f}, relative error: {errors[k]:e}")
    return errors
