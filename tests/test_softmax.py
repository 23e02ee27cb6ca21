"""The softmax loss and gradient against independent oracles.

Oracles: an extended-precision (np.longdouble, 80-bit on x86-64) computation that does
not shift the scores (its exponent range holds exp(1e4)), the closed form at W = 0,
and centred-difference numerical gradients.
"""

import warnings

import numpy as np
import pytest

from cs231n.classifiers.softmax import softmax_loss_naive, softmax_loss_vectorized
from cs231n.gradient_check import eval_numerical_gradient, rel_error

LOSSES = [softmax_loss_naive, softmax_loss_vectorized]
IDS = ["naive", "vectorized"]


def oracle(W, X, y, reg):
    """Loss and gradient in long double, straight from the definition: no max shift."""
    W, X = W.astype(np.longdouble), X.astype(np.longdouble)
    n = X.shape[0]
    S = X @ W
    E = np.exp(S)
    P = E / E.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(E.sum(axis=1)) - S[np.arange(n), y]) + reg * np.sum(W * W)
    Y = np.zeros_like(P)
    Y[np.arange(n), y] = 1
    dW = X.T @ (P - Y) / n + 2 * reg * W
    return loss, dW


def problem(n=40, d=15, c=7, scale=1.0, seed=0):
    rng = np.random.default_rng(seed)
    W = 0.1 * rng.standard_normal((d, c))
    X = scale * rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    return W, X, y


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_matches_long_double_oracle(f, reg):
    W, X, y = problem()
    loss, dW = f(W, X, y, reg)
    loss_ref, dW_ref = oracle(W, X, y, reg)
    assert isinstance(loss, float)
    assert dW.shape == W.shape and dW.dtype == np.float64
    assert abs(loss - float(loss_ref)) <= 1e-13 * abs(float(loss_ref))
    np.testing.assert_allclose(dW, dW_ref.astype(np.float64), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("reg", [0.0, 1e-3, 2.5])
def test_naive_and_vectorized_agree(reg):
    W, X, y = problem(n=64, d=30, c=10, seed=1)
    loss_n, dW_n = softmax_loss_naive(W, X, y, reg)
    loss_v, dW_v = softmax_loss_vectorized(W, X, y, reg)
    assert abs(loss_n - loss_v) < 1e-12
    assert rel_error(dW_n, dW_v) < 1e-10


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
@pytest.mark.parametrize("c", [2, 10, 100])
def test_zero_weights_give_log_C(f, c):
    # Every score is 0, so every class has probability 1/C and every L_i = log C.
    n, d = 16, 5
    rng = np.random.default_rng(c)
    X = rng.standard_normal((n, d))
    y = rng.integers(0, c, size=n)
    loss, dW = f(np.zeros((d, c)), X, y, 0.0)
    assert loss == pytest.approx(np.log(c), rel=1e-15, abs=0)
    # Closed-form gradient at W = 0: X^T (1/C - Y) / N.
    Y = np.eye(c)[y]
    np.testing.assert_allclose(dW, X.T @ (1.0 / c - Y) / n, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
@pytest.mark.parametrize("reg", [0.0, 0.5])
def test_gradient_matches_numerical_gradient(f, reg):
    W, X, y = problem(n=12, d=6, c=4, seed=2)
    _, dW = f(W, X, y, reg)
    dW_num = eval_numerical_gradient(lambda w: f(w, X, y, reg)[0], W.copy(), verbose=False)
    assert rel_error(dW, dW_num) < 1e-6  # a wrong term gives > 1e-2


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
def test_regularisation_term_is_reg_times_sum_of_squares(f):
    W, X, y = problem(seed=3)
    loss0, dW0 = f(W, X, y, 0.0)
    loss1, dW1 = f(W, X, y, 0.7)
    assert loss1 - loss0 == pytest.approx(0.7 * np.sum(W**2), rel=1e-12)
    np.testing.assert_allclose(dW1 - dW0, 1.4 * W, rtol=1e-12, atol=1e-15)


@pytest.mark.skipif(
    np.finfo(np.longdouble).maxexp <= 1024,
    reason="np.longdouble is float64 here (macOS arm64, Windows): the oracle cannot hold exp(1e4)",
)
@pytest.mark.parametrize("f", LOSSES, ids=IDS)
def test_extreme_scores_are_stable_per_row(f):
    # Half the rows score near 1e4, half near 0: a global max shift would send the
    # small rows' exponentials to 0 (log 0 = -inf); a per-row shift keeps them exact.
    n, d, c = 20, 8, 5
    rng = np.random.default_rng(4)
    W = rng.standard_normal((d, c))
    X = rng.standard_normal((n, d))
    X[: n // 2] *= 1e4 / np.abs(X[: n // 2] @ W).max()
    y = rng.integers(0, c, size=n)
    scores = X @ W
    assert np.abs(scores).max() > 9e3 and np.abs(scores[n // 2 :]).max() < 50
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # inf or nan fails
        loss, dW = f(W, X, y, 0.1)
    loss_ref, dW_ref = oracle(W, X, y, 0.1)
    assert np.isfinite(loss) and np.all(np.isfinite(dW))
    assert abs(loss - float(loss_ref)) <= 1e-11 * abs(float(loss_ref))
    np.testing.assert_allclose(dW, dW_ref.astype(np.float64), rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
def test_shift_invariance(f):
    # Adding the same constant to every class score (a constant column of X @ W) leaves
    # the probabilities, and so the data loss, unchanged.
    W, X, y = problem(seed=5)
    X1 = np.hstack([X, np.ones((X.shape[0], 1))])
    W_shifted = np.vstack([W, np.full((1, W.shape[1]), 700.0)])  # exp(700 + s) overflows
    W_plain = np.vstack([W, np.zeros((1, W.shape[1]))])
    loss_a, _ = f(W_plain, X1, y, 0.0)
    loss_b, _ = f(W_shifted, X1, y, 0.0)
    assert loss_b == pytest.approx(loss_a, rel=1e-10)


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
def test_float32_in_float32_out(f):
    W, X, y = problem(seed=6)
    W32, X32 = W.astype(np.float32), X.astype(np.float32)
    loss32, dW32 = f(W32, X32, y, 0.1)
    loss64, dW64 = f(W32.astype(np.float64), X32.astype(np.float64), y, 0.1)
    assert dW32.dtype == np.float32
    assert loss32 == pytest.approx(loss64, rel=1e-5)
    np.testing.assert_allclose(dW32, dW64, rtol=1e-3, atol=1e-6)


def as_matrix(a):
    """``np.asmatrix(a)`` without its PendingDeprecationWarning (an error under pytest)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(a)


@pytest.mark.parametrize("f", LOSSES, ids=IDS)
@pytest.mark.parametrize(
    "case, match",
    [
        (lambda W, X, y: (W[:, 0], X, y, 0.1), r"^W must be a 2-D array"),
        (lambda W, X, y: (W, X[0], y, 0.1), r"^X must be a 2-D array"),
        (lambda W, X, y: (W, X, y[:, None], 0.1), r"^y must be a 1-D array"),
        (lambda W, X, y: (W, X[:, :-1], y, 0.1), r"^X has 14 columns but W has 15 rows"),
        (lambda W, X, y: (W, X, y[:-1], 0.1), r"^y has 39 labels but X has 40 rows"),
        (lambda W, X, y: (W, X, y.astype(float), 0.1), r"^y must hold integer class labels"),
        (lambda W, X, y: (W, X, np.where(y == 0, -1, y), 0.1), r"^y must hold labels in \[0, 7\)"),
        (lambda W, X, y: (W, X, np.where(y == 0, 7, y), 0.1), r"^y must hold labels in \[0, 7\)"),
        (lambda W, X, y: (W, X.astype(np.int64), y, 0.1), r"^X must hold floats"),
        (lambda W, X, y: (W.astype(np.int64), X, y, 0.1), r"^W must hold floats"),
        (lambda W, X, y: (W, X[:0], y[:0], 0.1), r"^X has no rows"),
        (lambda W, X, y: (W, X, y, -1.0), r"^reg must be a finite number >= 0"),
        (lambda W, X, y: (W, X, y, float("nan")), r"^reg must be a finite number >= 0"),
        (lambda W, X, y: (W, X, y, "0.1"), r"^reg must be a finite number >= 0"),
        (lambda W, X, y: (W.tolist(), X, y, 0.1), r"^W must be a 2-D array"),
        (lambda W, X, y: (W, as_matrix(X), y, 0.1), r"^X is an np.matrix: pass np.asarray"),
        (lambda W, X, y: (as_matrix(W), X, y, 0.1), r"^W is an np.matrix"),
    ],
)
def test_bad_input_names_the_argument(f, case, match):
    W, X, y = problem()
    with pytest.raises(ValueError, match=match):
        f(*case(W, X, y))
