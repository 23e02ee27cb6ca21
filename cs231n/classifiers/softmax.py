"""Softmax (multinomial logistic regression) loss and its gradient.

For one example with scores ``s = x W`` (a row of C numbers) and true class ``y``::

    L_i = -log( exp(s_y) / sum_j exp(s_j) ) = logsumexp(s) - s_y

The full loss averages ``L_i`` over the N examples and adds ``reg * sum(W**2)``.
"""

from __future__ import annotations

import numpy as np

from .._validate import check_loss_inputs


def softmax_loss_naive(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient, with explicit loops over the examples.

    Parameters
    ----------
    W : (D, C) float array of weights.
    X : (N, D) float array, one example per row.
    y : (N,) int array of labels; ``0 <= y[i] < C``.
    reg : float, L2 regularisation strength (``reg * sum(W**2)`` is added to the loss).

    Returns
    -------
    loss : float, the mean cross-entropy plus the regularisation term.
    dW : (D, C) array, the gradient of ``loss`` with respect to W, in W's dtype.

    Raises
    ------
    ValueError
        When the shapes do not fit together, y holds non-integers or labels
        outside ``[0, C)``, or reg is negative.
    """
    check_loss_inputs(W, X, y, reg)
    dtype = np.result_type(W, X)
    loss = dtype.type(0)
    dW = np.zeros(W.shape, dtype=dtype)

    #############################################################################
    # TODO: Compute the softmax loss and its gradient using explicit loops over #
    # the examples. Store the loss in loss and the gradient in dW.              #
    # Do it in the notebook's order: first the loss alone (leave dW at zeros),  #
    # then make it stable (section 4: any finite scores must give a finite,     #
    # right loss), then dW from the gradient you derive in section 5. Don't     #
    # forget the regularisation, in the loss and in dW.                         #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    num_train, num_classes = X.shape[0], W.shape[1]
    for i in range(num_train):
        scores = X[i] @ W
        scores = scores - scores.max()  # shift: exp() now sees values <= 0
        log_sum_exp = np.log(np.sum(np.exp(scores)))
        loss += log_sum_exp - scores[y[i]]
        probs = np.exp(scores - log_sum_exp)
        for j in range(num_classes):
            dW[:, j] += (probs[j] - (j == y[i])) * X[i]
    loss /= num_train
    dW /= num_train
    loss += reg * np.sum(W * W)
    dW += 2 * reg * W
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    return float(loss), dW


def softmax_loss_vectorized(
    W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float
) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient, with no Python loop over the examples.

    Same inputs, outputs and errors as :func:`softmax_loss_naive`; float32 inputs
    give float32 work and a float32 gradient.
    """
    check_loss_inputs(W, X, y, reg)
    loss = 0.0
    dW = np.zeros_like(W)

    #############################################################################
    # TODO: Compute the softmax loss and its gradient without explicit loops.   #
    # Store the loss in loss and the gradient in dW. Work on the whole (N, C)   #
    # score matrix at once, stable as in the naive version, and watch the       #
    # shapes when you combine a per-row quantity with the matrix. Watch the     #
    # dtype too: float32 in should stay float32.                                #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    num_train = X.shape[0]
    rows = np.arange(num_train)
    scores = X @ W
    scores -= scores.max(axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    sum_exp = exp_scores.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(sum_exp[:, 0]) - scores[rows, y]) + reg * np.sum(W * W)
    dscores = exp_scores / sum_exp  # the probabilities P
    dscores[rows, y] -= 1  # P - Y
    dscores /= num_train
    dW = X.T @ dscores + 2 * reg * W
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    return float(loss), dW
