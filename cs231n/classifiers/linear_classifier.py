"""Linear classifiers trained by minibatch stochastic gradient descent."""

from __future__ import annotations

import abc
from pathlib import Path

import numpy as np
from tqdm.auto import trange

from .softmax import softmax_loss_vectorized


class LinearClassifier(abc.ABC):
    """A linear model ``scores = X @ W`` with W of shape (D, C).

    Subclasses choose the loss by implementing :meth:`loss`.
    """

    def __init__(self) -> None:
        self.W: np.ndarray | None = None

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

        Returns
        -------
        loss_history : list of num_iters floats, the minibatch loss before each step.
        """
        X, y = _check_X_y(X, y)
        if num_iters < 0 or batch_size < 1:
            raise ValueError(
                f"need num_iters >= 0 and batch_size >= 1; got {num_iters} and {batch_size}"
            )
        num_train, dim = X.shape
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
            # (batch_size, D) and y_batch (batch_size,). Draw the indices with      #
            # rng.choice(num_train, batch_size, replace=True): sampling with        #
            # replacement is faster, and using rng keeps runs reproducible.         #
            #########################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            idx = rng.choice(num_train, batch_size, replace=True)
            X_batch = X[idx]
            y_batch = y[idx]
            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            loss, grad = self.loss(X_batch, y_batch, reg)
            loss_history.append(loss)

            #########################################################################
            # TODO: Update the weights with the gradient and the learning rate.     #
            #########################################################################
            # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
            self.W -= learning_rate * grad
            # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

            if verbose and it % 100 == 0:
                print(f"iteration {it} / {num_iters}: loss {loss:f}")

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
        """Write W to an ``.npz`` file (no pickle), tagged with the class name."""
        W = self._trained_W()
        np.savez(path, W=W, classifier=np.array(type(self).__name__))

    def load(self, path: str | Path) -> LinearClassifier:
        """Read W from a file written by :meth:`save`; returns self.

        Raises ValueError when the file was saved by another classifier class or
        holds no 2-D float W.
        """
        if not Path(path).exists() and Path(f"{path}.npz").exists():
            path = f"{path}.npz"  # save() let np.savez append the suffix
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError(f"{path} is not a classifier file written by save() (an .npz)")
        with data:
            if "W" not in data or "classifier" not in data:
                raise ValueError(f"{path} is not a classifier file written by save()")
            saved_by = str(data["classifier"])
            W = data["W"]
        if saved_by != type(self).__name__:
            raise ValueError(f"{path} holds a {saved_by}, not a {type(self).__name__}")
        if W.ndim != 2 or not np.issubdtype(W.dtype, np.floating):
            raise ValueError(
                f"{path} holds W of shape {W.shape} and dtype {W.dtype}; "
                "expected a 2-D float array"
            )
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


def _check_X_y(
    X: np.ndarray, y: np.ndarray, X_name: str = "X", y_name: str = "y"
) -> tuple[np.ndarray, np.ndarray]:
    """Validate data at the boundary: X (N, D) floats, y (N,) integer labels >= 0.

    Errors call the arrays by ``X_name`` and ``y_name``, the caller's argument names.
    """
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(
            f"{X_name} must be a non-empty 2-D array (N, D); got {getattr(X, 'shape', X)}"
        )
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(
            f"{X_name} must hold floats; got dtype {X.dtype} "
            f"(convert with {X_name}.astype(np.float32) or np.float64)"
        )
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"{y_name} must have shape ({X.shape[0]},) to match {X_name}; got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{y_name} must hold integer class labels; got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"{y_name} must hold labels >= 0; its smallest is {y.min()}")
    return X, y
