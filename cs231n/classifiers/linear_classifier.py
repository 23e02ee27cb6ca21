"""Linear classifiers trained by minibatch stochastic gradient descent."""

from __future__ import annotations

import abc
import functools
import math
import os
import tempfile
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import trange

from .. import _safe_io, _threads
from .._validate import check_X_y, refuse_matrix, short
from .softmax import softmax_loss_vectorized

# The most a file written by save() may hold: W for CIFAR-10 is 3073 x 10 float64, 246 KB.
MAX_FILE_BYTES = 2**30
_MAX_TAG_BYTES = 4096
# The only dtypes W is saved in (float32 and float64, either byte order); anything else in
# a file, float16 included, is refused.
_WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _tuned_and_quiet(train: Callable[..., list[float]]) -> Callable[..., list[float]]:
    """Run ``train`` with its BLAS thread count tuned (``cs231n/_threads.py``) and numpy's
    floating-point warnings off: a diverging run gets one clear warning, not numpy's many.
    """

    @functools.wraps(train)
    def tuned(*args: Any, **kwargs: Any) -> list[float]:
        with _threads.adaptive_blas_threads(), np.errstate(all="ignore"):
            return train(*args, **kwargs)

    return tuned


class LinearClassifier(abc.ABC):
    """A linear model ``scores = X @ W`` with W of shape (D, C).

    Subclasses choose the loss by implementing :meth:`loss`.
    """

    def __init__(self) -> None:
        self.W: np.ndarray | None = None

    @_tuned_and_quiet
    def train(
        self,
        X: np.ndarray,
        y: np.ndarray,
        learning_rate: float = 1e-3,
        reg: float = 1e-5,
        num_iters: int = 100,
        batch_size: int = 200,
        verbose: bool = False,
        seed: int | None = None,
        progress: bool = False,
        num_classes: int | None = None,
    ) -> list[float]:
        """Train W by minibatch SGD; return the loss at every iteration.

        Parameters
        ----------
        X : (N, D) float array of training examples (float32 trains in float32).
        y : (N,) int array of labels, ``0 <= y[i] < C``.
        learning_rate : SGD step size.
        reg : L2 regularisation strength.
        num_iters : number of SGD steps.
        batch_size : examples per step, drawn with replacement.
        verbose : print the loss every 100 iterations.
        seed : seeds a ``numpy.random.Generator`` that draws the initial W (when W is
            still None) and then every minibatch; the same seed gives the same run.
        progress : show a progress bar over the iterations (tqdm; a widget in Jupyter).
            Off by default: it writes to stderr, which nbval compares.
        num_classes : C, the number of columns of a new W. None: ``y.max() + 1``, and then
            at most ``max(10, number of distinct labels)`` of the labels below it may be
            absent from y (a stray label such as 20000 is refused before W is made).
            When W exists already (training goes on), C is its number of columns.

        Returns
        -------
        loss_history : list of num_iters floats, the minibatch loss before each step.

        Raises
        ------
        ValueError
            When X is not a 2-D float array of finite numbers (an ``np.matrix`` is
            refused too), y does not hold one integer label in ``[0, C)`` per row of X,
            or num_iters or batch_size is out of range. Checked once, before training.

        Warns
        -----
        RuntimeWarning
            When training diverges: a loss or W became NaN or infinite (lower the
            learning rate). The non-finite losses are in loss_history.

        Notes
        -----
        The BLAS thread count is tuned while training (see ``cs231n/_threads.py``): one
        thread when other processes keep the cores busy, your usual count otherwise.
        It is set back when train returns.
        """
        if self.W is not None:
            if num_classes not in (None, self.W.shape[1]):
                raise ValueError(
                    f"num_classes={num_classes}, but the existing W has {self.W.shape[1]} columns"
                )
            num_classes = self.W.shape[1]
        X, y = check_X_y(X, y, num_classes=num_classes)
        if num_iters < 0 or batch_size < 1:
            raise ValueError(
                f"need num_iters >= 0 and batch_size >= 1; got {num_iters} and {batch_size}"
            )
        num_train, dim = X.shape
        if num_classes is None:
            num_classes = int(y.max()) + 1  # y takes values 0...C-1
        rng = np.random.default_rng(seed)
        if self.W is None:
            self.W = initial_weights(rng, dim, num_classes, X.dtype)
        elif self.W.shape[0] != dim:
            raise ValueError(f"X has {dim} columns but the existing W has {self.W.shape[0]} rows")

        loss_history = []
        for it in trange(num_iters, desc="train", disable=not progress):
            X_batch = None
            y_batch = None

            #########################################################################
            # TODO: Sample batch_size examples and their labels into X_batch        #
            # (batch_size, D) and y_batch (batch_size,): batch_size rows of X with  #
            # replacement, uniformly, each with its own label. Draw only from rng   #
            # (not np.random), so the same seed gives the same batches.             #
            #########################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            idx = rng.choice(num_train, batch_size, replace=True)
            X_batch = X[idx]
            y_batch = y[idx]
            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            loss, grad = self.loss(X_batch, y_batch, reg)
            loss_history.append(loss)

            #########################################################################
            # TODO: Update the weights self.W: one step of size learning_rate       #
            # against the gradient.                                                 #
            #########################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            self.W -= learning_rate * grad
            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")
            _threads.tick()

        _warn_if_diverged(self.W, loss_history, learning_rate, reg)
        return loss_history

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted labels for the rows of X.

        Parameters
        ----------
        X : (N, D) float array.

        Returns
        -------
        y_pred : (N,) int array, the class with the highest score for each row.
        """
        W = self._trained_W()
        refuse_matrix(X, "X")
        if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[1] != W.shape[0]:
            raise ValueError(
                f"X must be an array of shape (N, {W.shape[0]}); got "
                f"{getattr(X, 'shape', type(X).__name__)}"
            )
        y_pred = np.zeros(X.shape[0], dtype=np.int64)

        #############################################################################
        # TODO: Store the predicted labels in y_pred: the index of each row's       #
        # highest score.                                                            #
        #############################################################################
        # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
        y_pred = np.argmax(X @ W, axis=1)
        # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

        return y_pred

    @abc.abstractmethod
    def loss(
        self, X_batch: np.ndarray, y_batch: np.ndarray, reg: float
    ) -> tuple[float, np.ndarray]:
        """Loss and gradient on a minibatch.

        Parameters
        ----------
        X_batch : (B, D) float array.
        y_batch : (B,) int array of labels.
        reg : L2 regularisation strength.

        Returns
        -------
        loss : float; dW : gradient with respect to self.W, of W's shape.
        """

    def save(self, path: str | Path) -> None:
        """Write W to an ``.npz`` file (no pickle), tagged with the class name.

        As with ``np.savez``, ``.npz`` is appended to a path without it. The file is
        written under a temporary name and renamed, so a failed save leaves no half file.
        """
        W = self._trained_W()
        path = Path(path)
        if path.suffix != ".npz":
            path = path.with_name(path.name + ".npz")
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, W=W, classifier=np.array(type(self).__name__))
            os.replace(tmp, path)
        except BaseException:
            os.unlink(tmp)
            raise

    def load(self, path: str | Path) -> LinearClassifier:
        """Read W from a file written by :meth:`save`; returns self.

        The file is untrusted: nothing in it is unpickled, the class tag is checked
        before W is read, and W's header (shape and dtype) and size before its data; a
        W that would inflate more than 20-fold from compression is refused unread.

        Raises
        ------
        ValueError
            When the file is not an ``.npz`` written by :meth:`save`, was saved by
            another classifier class, or holds a W that is not a non-empty 2-D float32
            or float64 array of finite numbers.
        """
        if not Path(path).exists() and Path(f"{path}.npz").exists():
            path = f"{path}.npz"  # save() appended the suffix
        if not Path(path).is_file():
            raise FileNotFoundError(f"{path}: no such file (write one with save())")
        data = _safe_io.read_file(path, MAX_FILE_BYTES, "a classifier file", follow_links=True)
        not_ours = f"{path} is not a classifier file written by save()"
        if not _safe_io.is_npz(data):
            raise ValueError(f"{not_ours} (an .npz)")
        with _safe_io.open_npz(data, str(path)) as archive:
            if not {"W", "classifier"} <= archive.names:
                raise ValueError(f"{not_ours}: it holds {short(sorted(archive.names))}")
            what = f"{not_ours}: its class tag"
            tag = archive.array("classifier", _MAX_TAG_BYTES, what)  # read before W
            if tag.shape != () or tag.dtype.kind != "U":
                raise ValueError(f"{what} is not a single string")
            saved_by = str(tag)
            if saved_by != type(self).__name__:
                shown = saved_by if saved_by.isidentifier() else short(saved_by)
                raise ValueError(f"{path} holds a {shown}, not a {type(self).__name__}")
            what = f"{path}: W"
            W = archive.array("W", MAX_FILE_BYTES, what, dtypes=_WEIGHT_DTYPES)
        if W.ndim != 2 or 0 in W.shape:
            raise ValueError(f"{what} has shape {W.shape}; expected a non-empty 2-D (D, C)")
        if not np.isfinite(W).all():
            raise ValueError(f"{what} holds NaN or infinite values: refused")
        self.W = W
        return self

    def _trained_W(self) -> np.ndarray:
        if self.W is None:
            raise RuntimeError(
                f"this {type(self).__name__} has no weights yet: call train() or load() first"
            )
        return self.W


def initial_weights(
    rng: np.random.Generator, dim: int, num_classes: int, dtype: np.dtype
) -> np.ndarray:
    """The (dim, num_classes) starting W of :meth:`LinearClassifier.train`: 0.001 * N(0, 1).

    It is the first draw ``train`` makes from its ``rng``; ``cs231n.tuning.grid_search``
    makes the same draw so that its models start where solo training starts.
    """
    return (0.001 * rng.standard_normal((dim, num_classes))).astype(dtype)


class Softmax(LinearClassifier):
    """Softmax (multinomial logistic regression) classifier."""

    def loss(
        self, X_batch: np.ndarray, y_batch: np.ndarray, reg: float
    ) -> tuple[float, np.ndarray]:
        return softmax_loss_vectorized(self.W, X_batch, y_batch, reg)


def _warn_if_diverged(W: np.ndarray, losses: list[float], lr: float, reg: float) -> None:
    """RuntimeWarning, naming lr and reg, when a loss or W is not finite after training."""
    first = next((i for i, loss in enumerate(losses) if not math.isfinite(loss)), None)
    if first is None and np.isfinite(W).all():
        return
    when = (
        f"the loss was {losses[first]} at iteration {first}"
        if first is not None
        else ("W holds NaN or infinite values")
    )
    warnings.warn(
        f"training with learning_rate={lr:g}, reg={reg:g} diverged: {when}. "
        "Lower the learning rate (or reg)",
        RuntimeWarning,
        stacklevel=4,  # the caller of train (through its wrapper)
    )
