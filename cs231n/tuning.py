"""Hyperparameter search for the softmax classifier, with every configuration trained at once.

Training K (learning rate, regularisation) configurations one after another repeats the
same work K times: every run draws the same minibatches (same seed) and multiplies the
same ``X_batch`` by a thin (D, C) weight matrix. Here the K weight matrices sit side by
side in one (D, C*K) matrix ``W_all``, so one wide product ``X_batch @ W_all`` gives every
model's scores (B, C*K), the gradient too is computed for all models at once, and each
model's block of columns then takes its own step with its own learning rate and
regularisation. The result is the same as K separate ``Softmax().train`` calls
(equal up to floating-point rounding in the matrix products).

That step is itself a softmax gradient, so the student edition ships it as an optional
exercise: until a student writes it, ``grid_search`` trains the configurations one by
one with the student's own ``Softmax.train`` and gets the same models, only slower.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence

import numpy as np
from tqdm.auto import tqdm

from . import _threads
from ._validate import check_grid, check_X_y
from .classifiers.linear_classifier import Softmax, initial_weights


def grid_search(
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    learning_rates: Sequence[float],
    regularization_strengths: Sequence[float],
    num_iters: int = 1500,
    batch_size: int = 200,
    seed: int | None = 0,
    verbose: bool = False,
    progress: bool = False,
    chunk_size: int = 64,
    num_classes: int | None = None,
) -> tuple[dict[tuple[float, float], tuple[float, float]], Softmax]:
    """Train a Softmax classifier for every (learning rate, reg) pair; keep the best.

    Every configuration trains exactly as ``Softmax().train(X_train, y_train,
    learning_rate=lr, reg=reg, num_iters=num_iters, batch_size=batch_size, seed=seed)``
    would: same initial W, same minibatches, same updates. The configurations are
    trained together, ``chunk_size`` at a time, which is several times faster than a
    loop over ``Softmax().train`` (in the student edition: once the optional exercise
    in this module is done; until then it is that loop).

    Parameters
    ----------
    X_train : (N, D) float array of finite training examples. float32 trains in float32.
    y_train : (N,) int array of labels, ``0 <= y_train[i] < C``.
    X_val : (M, D) float array of finite validation examples, same dtype as X_train.
    y_val : (M,) int array of labels in ``[0, C)``.
    learning_rates : list (or tuple, or 1-D array) of K_lr distinct positive step sizes.
        Not a set: a set has no order, and the results and the tie-break follow it.
    regularization_strengths : list of K_reg distinct L2 strengths >= 0, likewise.
    num_iters : SGD steps per configuration.
    batch_size : examples per step, drawn with replacement.
    seed : seeds the initial W and the minibatches, as in ``Softmax.train``;
        None draws a fresh seed (shared by all configurations).
    verbose : print each configuration's accuracies when the search is done.
    progress : show a progress bar over the SGD steps (tqdm; a widget in Jupyter).
        Off by default so that executed notebooks compare cleanly under nbval.
    chunk_size : at most this many configurations train together. Their weights and
        gradients take about ``3 * D * C * chunk_size`` numbers (47 MB in float64 for
        CIFAR-10's D = 3073, C = 10 and the default 64). Each chunk replays the same
        seed, so the results do not depend on chunk_size.
    num_classes : C, as in ``Softmax.train``: None means ``y_train.max() + 1``, with at
        most ``max(10, distinct labels)`` labels below it absent from y_train.

    Returns
    -------
    results : dict mapping ``(lr, reg)`` to ``(train_accuracy, val_accuracy)``, the
        fractions of X_train and X_val rows whose argmax score is the true label,
        for all ``K_lr * K_reg`` pairs. A configuration that diverged (NaN or
        infinite weights or scores) gets ``(nan, nan)``.
    best : the trained Softmax with the highest validation accuracy (on a tie, the
        first in the order learning rate, then reg, as given); never a diverged one.

    Raises
    ------
    TypeError
        When a hyperparameter grid is a set, a generator or anything but a list of
        numbers.
    ValueError
        On empty or duplicate hyperparameter lists, a learning rate <= 0, a negative
        reg, or data whose shapes, dtypes, values (NaN, infinity) or labels do not fit
        together. Checked once, before training starts.
    RuntimeError
        When every configuration diverged.

    Warns
    -----
    RuntimeWarning
        Naming the (lr, reg) of every configuration that diverged.
    """
    X_train, y_train = check_X_y(X_train, y_train, "X_train", "y_train", num_classes)
    X_val, y_val = check_X_y(X_val, y_val, "X_val", "y_val", num_classes)
    if X_val.shape[1] != X_train.shape[1]:
        raise ValueError(
            f"X_val has {X_val.shape[1]} columns but X_train has {X_train.shape[1]}: "
            "preprocess both the same way"
        )
    if X_val.dtype != X_train.dtype:
        raise ValueError(
            f"X_val is {X_val.dtype} but X_train is {X_train.dtype}: convert both to one "
            "dtype (float32 trains faster) so that nothing is silently upcast"
        )
    if num_classes is None:
        num_classes = int(y_train.max()) + 1
    if y_val.max() >= num_classes:
        raise ValueError(
            f"y_val holds label {y_val.max()} but y_train's labels stop at {num_classes - 1}: "
            "the model would have no column for it; check the split"
        )
    lrs = check_grid("learning_rates", learning_rates, positive=True)
    regs = check_grid("regularization_strengths", regularization_strengths, positive=False)
    if num_iters < 0 or batch_size < 1 or chunk_size < 1:
        raise ValueError(
            "need num_iters >= 0, batch_size >= 1 and chunk_size >= 1; got "
            f"{num_iters}, {batch_size} and {chunk_size}"
        )

    configs = [(lr, reg) for lr in lrs for reg in regs]
    results: dict[tuple[float, float], tuple[float, float]] = {}
    best_W, best_val = None, -1.0
    trained = _train_in_chunks(
        X_train, y_train, configs, num_iters, batch_size, seed, chunk_size, progress, num_classes
    )
    # One thread count for the whole search: the accuracies run with the count the
    # training steps chose (no steps to time there).
    with _threads.adaptive_blas_threads(), np.errstate(all="ignore"):
        for chunk, W_all in trained:
            train_acc = _accuracies(X_train, y_train, W_all, num_classes)
            val_acc = _accuracies(X_val, y_val, W_all, num_classes)
            for k, config in enumerate(chunk):
                results[config] = (train_acc[k], val_acc[k])
                if val_acc[k] > best_val:  # False for nan: a diverged model never wins
                    best_val = val_acc[k]
                    best_W = W_all[:, k * num_classes : (k + 1) * num_classes].copy()
    diverged = [config for config, (_, val_acc) in results.items() if np.isnan(val_acc)]
    if len(diverged) == len(results):
        raise RuntimeError(
            f"every configuration diverged (NaN or infinite weights): {diverged}. Lower the "
            "learning rates (or the regularisation strengths)"
        )
    if diverged:
        warnings.warn(
            "grid_search: these (lr, reg) configurations diverged (NaN or infinite weights) "
            f"and are reported with nan accuracies: {diverged}. Lower the learning rate",
            RuntimeWarning,
            stacklevel=2,
        )

    if verbose:
        for (lr, reg), (train_acc, val_acc) in results.items():
            print(f"lr {lr:e} reg {reg:e} train accuracy: {train_acc:f} val accuracy: {val_acc:f}")
        print(f"best validation accuracy achieved during grid search: {best_val:f}")
    best = Softmax()
    best.W = best_W
    return results, best


def _train_in_chunks(
    X: np.ndarray,
    y: np.ndarray,
    configs: list[tuple[float, float]],
    num_iters: int,
    batch_size: int,
    seed: int | None,
    chunk_size: int,
    progress: bool,
    num_classes: int | None = None,
) -> Iterator[tuple[list[tuple[float, float]], np.ndarray]]:
    """Train the configurations chunk_size at a time; yield (chunk, its W side by side).

    The batched steps tick the innermost ``_threads.adaptive_blas_threads`` (grid_search
    opens one); NaN and overflow in a diverging model are left for the caller to report.
    """
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)  # one seed that every chunk replays
    if num_classes is None:
        num_classes = int(y.max()) + 1
    chunks = [configs[i : i + chunk_size] for i in range(0, len(configs), chunk_size)]
    total = num_iters * len(configs)  # counts one step of one configuration as 1
    with tqdm(total=total, desc="grid search", unit="step", disable=not progress) as bar:
        ticking = _TickingBar(bar)
        for chunk in chunks:
            try:
                with np.errstate(all="ignore"):
                    W_all = train_together(
                        X, y, chunk, num_classes, num_iters, batch_size, seed, ticking
                    )
            except NotImplementedError:  # the student edition, optional exercise not done
                W_all = None
            if W_all is None:  # outside the except: errors from Softmax.train read plainly
                W_all = _train_one_by_one(
                    X, y, chunk, num_iters, batch_size, seed, bar, num_classes
                )
            yield chunk, W_all


class _TickingBar:
    """The progress bar handed to ``train_together``: its one update per step is a tick."""

    def __init__(self, bar: tqdm) -> None:
        self._bar = bar

    def update(self, n: int = 1) -> None:
        self._bar.update(n)
        _threads.tick()


def train_together(
    X: np.ndarray,
    y: np.ndarray,
    configs: list[tuple[float, float]],
    num_classes: int,
    num_iters: int,
    batch_size: int,
    seed: int,
    bar: tqdm,
) -> np.ndarray:
    """Train K softmax models at once by SGD; return their weights side by side.

    The optional exercise. Model k is the configuration ``configs[k] = (lr, reg)``, and
    it must end where ``Softmax().train(X, y, learning_rate=lr, reg=reg,
    num_iters=num_iters, batch_size=batch_size, seed=seed)`` ends: the same RNG calls
    in the same order (the initial W, then one minibatch per step, shared by all
    models), and per model the arithmetic of ``softmax_loss_vectorized`` followed by
    ``W -= lr * dW``. ``grid_search`` calls it; until it is written (it raises
    NotImplementedError), grid_search trains the models one by one instead.

    Parameters
    ----------
    X : (N, D) float array of training examples; W_all has X's dtype.
    y : (N,) int array of labels, ``0 <= y[i] < C``.
    configs : list of K (learning rate, reg) pairs.
    num_classes : C, the number of classes (columns of each model's W).
    num_iters : SGD steps.
    batch_size : B, examples per step, drawn with replacement.
    seed : seeds the ``numpy.random.Generator`` that draws the initial W and the
        minibatches, as in ``Softmax.train``.
    bar : a progress bar (its ``update(n)`` method); advance it by K after each step.

    Returns
    -------
    W_all : (D, C*K) array; model k's weights are the columns ``k*C`` to ``k*C + C - 1``.
    """
    dim = X.shape[1]
    K, C = len(configs), num_classes
    rng = np.random.default_rng(seed)
    W0 = initial_weights(rng, dim, C, X.dtype)
    W_all = np.tile(W0, (1, K))  # (D, C*K); model k owns columns k*C ... k*C + C - 1

    #############################################################################
    # TODO (optional, not graded): run num_iters SGD steps for all K models at  #
    # once. Each step samples ONE minibatch with rng, as Softmax.train does,    #
    # and gets every model's scores and gradient from wide matrix products, no  #
    # loop over the models; each model's C columns step with its own lr, reg.   #
    # Advance the progress bar by K (bar.update) after each step. Until this is #
    # written, grid_search trains the models one by one with your               #
    # Softmax.train: the same models, only slower.                              #
    #############################################################################
    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    num_train = X.shape[0]
    # Per-column hyperparameters, rounded to X's dtype exactly as Python floats are when
    # they meet a float32 array, so float32 runs match Softmax.train bit for bit.
    lr = np.repeat(np.array([c[0] for c in configs]), C).astype(X.dtype)
    two_reg = np.repeat(np.array([2 * c[1] for c in configs]), C).astype(X.dtype)
    rows = np.arange(batch_size)
    for _ in range(num_iters):
        idx = rng.choice(num_train, batch_size, replace=True)
        X_batch, y_batch = X[idx], y[idx]
        scores = (X_batch @ W_all).reshape(batch_size, K, C)
        scores -= scores.max(axis=2, keepdims=True)
        exp_scores = np.exp(scores)
        dscores = exp_scores / exp_scores.sum(axis=2, keepdims=True)
        dscores[rows, :, y_batch] -= 1  # P - Y for every model at once
        dscores /= batch_size
        dW = X_batch.T @ dscores.reshape(batch_size, K * C)
        dW += two_reg * W_all
        dW *= lr
        W_all -= dW
        bar.update(K)
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

    return W_all


def _train_one_by_one(
    X: np.ndarray,
    y: np.ndarray,
    configs: list[tuple[float, float]],
    num_iters: int,
    batch_size: int,
    seed: int,
    bar: tqdm,
    num_classes: int | None = None,
) -> np.ndarray:
    """The same models as ``train_together``, one ``Softmax.train`` each; (D, C*K)."""
    weights = []
    for lr, reg in configs:
        model = Softmax()
        with warnings.catch_warnings():  # grid_search reports divergence once, for all
            warnings.simplefilter("ignore", RuntimeWarning)
            model.train(X, y, lr, reg, num_iters, batch_size, seed=seed, num_classes=num_classes)
        weights.append(model.W)
        bar.update(num_iters)
    return np.hstack(weights)


def _accuracies(
    X: np.ndarray, y: np.ndarray, W_all: np.ndarray, num_classes: int, block: int = 4096
) -> list[float]:
    """Fraction of rows each model gets right (argmax of X @ W), scoring X in row blocks.

    A model whose weights or scores are not all finite (it diverged) gets nan.
    """
    K = W_all.shape[1] // num_classes
    correct = np.zeros(K, dtype=np.int64)
    finite = np.isfinite(W_all).reshape(-1, K, num_classes).all(axis=(0, 2))
    for start in range(0, X.shape[0], block):
        scores = (X[start : start + block] @ W_all).reshape(-1, K, num_classes)
        correct += np.sum(scores.argmax(axis=2) == y[start : start + block, None], axis=0)
        finite &= np.isfinite(scores).all(axis=(0, 2))
    return [
        float(c) / X.shape[0] if ok else float("nan")
        for c, ok in zip(correct, finite, strict=True)
    ]
