"""The answers the hidden tests judge against, computed in the grader's own process.

A long-double softmax loss and gradient, written here independently of the reference
solution, and the reference checkout's own ``Softmax.train`` for the grid search (the
instructor's cs231n on this process's path, never the submission's).
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from .cases import calls


def oracle_loss(inputs: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient in long double, row by row stable: the judge's answer.

    Independent of the reference solution: ``L_i = logsumexp(s_i) - s_{i, y_i}`` with each
    row shifted by its own maximum, ``dW = X.T @ (P - Y) / N + 2 reg W``.
    """
    W = inputs["W"].astype(np.longdouble)
    X = inputs["X"].astype(np.longdouble)
    y, reg = inputs["y"], np.longdouble(float(inputs["reg"]))
    N = X.shape[0]
    scores = X @ W
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    loss = np.mean(log_sum - shifted[np.arange(N), y]) + reg * np.sum(W * W)
    P = np.exp(shifted - log_sum[:, None])
    P[np.arange(N), y] -= 1
    dW = X.T @ P / N + 2 * reg * W
    return float(loss), dW.astype(np.float64)


@functools.cache
def expected_loss(call_id: str) -> tuple[float, np.ndarray]:
    """The oracle's (loss, dW) for a loss call; for a shifted-rows case, the unshifted
    problem's (what shifting each row together must leave unchanged)."""
    call = calls()[call_id]
    return oracle_loss(call.known.get("base", call.inputs))


@functools.cache
def reference_solo(call_id: str) -> np.ndarray:
    """A grid call's models, each trained alone by the reference ``Softmax.train``."""
    from cs231n.classifiers.linear_classifier import Softmax

    a = calls()[call_id].inputs
    weights = []
    for lr, reg in a["configs"]:
        model = Softmax()
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.train(
                a["X"], a["y"], float(lr), float(reg), int(a["num_iters"]),
                int(a["batch_size"]), seed=int(a["seed"]),
            )  # fmt: skip
        weights.append(model.W)
    return np.hstack(weights)
