"""Numerical gradients against closed-form derivatives, and the sparse checker's verdicts."""

import numpy as np
import pytest

from cs231n.gradient_check import (
    eval_numerical_gradient,
    eval_numerical_gradient_array,
    grad_check_sparse,
    rel_error,
)


def cubic(x):
    return float(np.sum(x**3 + 2 * x))


def cubic_grad(x):
    return 3 * x**2 + 2


def test_eval_numerical_gradient_matches_closed_form():
    x = np.random.default_rng(0).standard_normal((3, 4))
    x_before = x.copy()
    grad = eval_numerical_gradient(cubic, x, verbose=False)
    # Centred differences are exact up to the h**2 term: here h**2 * f'''/6 = 1e-10.
    np.testing.assert_allclose(grad, cubic_grad(x), rtol=1e-8, atol=1e-8)
    np.testing.assert_array_equal(x, x_before)  # x restored after the in-place probing


def test_eval_numerical_gradient_verbose_prints_each_index(capsys):
    eval_numerical_gradient(cubic, np.zeros(3), verbose=True)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(")")[0] + ")" for line in lines] == ["(0,)", "(1,)", "(2,)"]


def test_eval_numerical_gradient_array_contracts_with_upstream():
    rng = np.random.default_rng(1)
    A = rng.standard_normal((5, 3))
    x = rng.standard_normal((3, 2))
    df = rng.standard_normal((5, 2))
    # f(x) = A x, so the backward pass is A^T df.
    grad = eval_numerical_gradient_array(lambda v: A @ v, x, df)
    np.testing.assert_allclose(grad, A.T @ df, rtol=1e-8, atol=1e-10)


def test_grad_check_sparse_small_on_correct_gradient(capsys):
    x = np.random.default_rng(2).standard_normal((6, 5))
    errors = grad_check_sparse(cubic, x, cubic_grad(x), num_checks=12, seed=0)
    assert errors.shape == (12,)
    assert errors.max() < 1e-8
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 12
    assert all(line.startswith("numerical: ") and ", relative error: " in line for line in lines)


def test_grad_check_sparse_large_on_wrong_gradient(capsys):
    x = np.random.default_rng(3).standard_normal((6, 5)) + 3  # keeps the gradient away from 0
    wrong = cubic_grad(x) * 1.5
    errors = grad_check_sparse(cubic, x, wrong, num_checks=10, seed=0)
    # |g - 1.5 g| / (|g| + 1.5 |g|) = 0.2 for every entry.
    np.testing.assert_allclose(errors, 0.2, rtol=1e-6)


def test_grad_check_sparse_reproducible_with_seed(capsys):
    x = np.random.default_rng(4).standard_normal((50, 40))
    wrong = cubic_grad(x) + np.random.default_rng(5).standard_normal(x.shape)
    a = grad_check_sparse(cubic, x, wrong, seed=7)
    out_a = capsys.readouterr().out
    b = grad_check_sparse(cubic, x, wrong, seed=7)
    out_b = capsys.readouterr().out
    c = grad_check_sparse(cubic, x, wrong, seed=8)
    np.testing.assert_array_equal(a, b)
    assert out_a == out_b
    assert not np.array_equal(a, c)


def test_grad_check_sparse_rejects_mismatched_shapes():
    with pytest.raises(ValueError, match="analytic_grad has shape"):
        grad_check_sparse(cubic, np.zeros((2, 3)), np.zeros((3, 2)))


def test_rel_error():
    assert rel_error(np.zeros(4), np.zeros(4)) == 0.0  # no division by zero
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0, 3.0]), np.array([1.0, 1.0])) == pytest.approx(0.5)
    assert rel_error(1.0, -1.0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="one shape"):
        rel_error(np.zeros(2), np.zeros(3))
