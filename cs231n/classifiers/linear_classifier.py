"""Linear classifiers trained by minibatch stochastic gradient descent."""

from __future__ import annotations

import abc
import functools
import math
import os
import reprlib
import tempfile
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import trange

from .. import _threads
from .softmax import softmax_loss_vectorized

# Labels are 0 ... C-1 with C = y.max() + 1 unless num_classes says otherwise. Without it,
# at most this many (or as many as are present, if more) of those C labels may be absent:
# a stray label such as 20000 among ten classes would otherwise make W 2000 times too wide.
MAX_ABSENT_CLASSES = 10


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
        X, y = _check_X_y(X, y, num_classes=num_classes)
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
        _refuse_matrix(X, "X")
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
        not_ours = f"{path} is not a classifier file written by save()"
        if not zipfile.is_zipfile(path):
            raise ValueError(f"{not_ours} (an .npz)")
        try:
            with zipfile.ZipFile(path) as archive:
                members = set(archive.namelist())
                if not {"W.npy", "classifier.npy"} <= members:
                    raise ValueError(f"{not_ours}: it holds {_short(sorted(members))}")
                saved_by = _read_tag(archive, "classifier.npy", f"{not_ours}: its class tag")
                if saved_by != type(self).__name__:
                    shown = saved_by if saved_by.isidentifier() else _short(saved_by)
                    raise ValueError(f"{path} holds a {shown}, not a {type(self).__name__}")
                W = _read_weights(archive, "W.npy", str(path))
        except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as error:
            raise ValueError(f"{path} is a damaged or unsupported .npz ({error})") from None
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
    X: np.ndarray,
    y: np.ndarray,
    X_name: str = "X",
    y_name: str = "y",
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Validate data at the boundary: X (N, D) finite floats, y (N,) labels in [0, C).

    C is num_classes when given; otherwise ``y.max() + 1``, refused when more than
    ``max(MAX_ABSENT_CLASSES, distinct labels)`` labels below it never occur. Errors call
    the arrays by ``X_name`` and ``y_name``, the caller's argument names. One pass over
    X (a column sum), so callers check once per call, never per minibatch.
    """
    _refuse_matrix(X, X_name)
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{X_name} must be a non-empty 2-D array (N, D); got {_describe(X)}")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(
            f"{X_name} must hold floats; got dtype {X.dtype} "
            f"(convert with {X_name}.astype(np.float32) or np.float64)"
        )
    _refuse_matrix(y, y_name)
    y = np.asarray(y)
    if y.shape != (X.shape[0],):
        raise ValueError(
            f"{y_name} must have shape ({X.shape[0]},) to match {X_name}; got {y.shape}"
        )
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{y_name} must hold integer class labels; got dtype {y.dtype}")
    if y.min() < 0:
        raise ValueError(f"{y_name} must hold labels >= 0; its smallest is {y.min()}")
    if num_classes is not None:
        if y.max() >= num_classes:
            raise ValueError(
                f"{y_name} holds label {y.max()}, but there are {num_classes} classes "
                f"(labels 0 to {num_classes - 1})"
            )
    else:
        present = len(np.unique(y))
        absent = int(y.max()) + 1 - present
        if absent > max(MAX_ABSENT_CLASSES, present):
            raise ValueError(
                f"{y_name} holds {present} distinct labels but its largest is {y.max()}: "
                f"{absent} classes would have no example, and W a column for each. Number "
                "the classes 0, 1, ..., C-1, or pass num_classes=C if so many are absent"
            )
    _check_finite(X, X_name)
    return X, y


def _check_finite(X: np.ndarray, name: str) -> None:
    """ValueError naming the first NaN or infinity in X, if any."""
    # A column sum is one cheap pass and is finite whenever X is, unless finite values
    # overflow when added: only then, or when X is not finite, look entry by entry.
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(X.sum(axis=0)).all():
            return
    for start in range(0, X.shape[0], 1024):
        bad = np.argwhere(~np.isfinite(X[start : start + 1024]))
        if len(bad):
            row, col = int(bad[0][0]) + start, int(bad[0][1])
            count = int(np.count_nonzero(~np.isfinite(X)))
            raise ValueError(
                f"{name} holds {count} NaN or infinite value(s), the first {name}[{row}, "
                f"{col}] = {X[row, col]}: fix or drop those rows before training"
            )


def _refuse_matrix(a: object, name: str) -> None:
    if isinstance(a, np.matrix):
        raise ValueError(
            f"{name} is an np.matrix, whose * and indexing differ from arrays': "
            f"pass np.asarray({name})"
        )


def _short(value: object) -> str:
    """A bounded repr, for values read from untrusted files."""
    return reprlib.repr(value)


def _describe(a: object) -> str:
    if isinstance(a, np.ndarray):
        return f"an array of shape {a.shape}"
    return f"a {type(a).__name__} (convert with np.asarray)"


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


# The only dtypes W is saved in (float32 and float64, either byte order); anything else in
# a file, float16 included, is refused.
_WEIGHT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MAX_TAG_BYTES = 4096
_MAX_INFLATION = 20  # W beyond 1 MB may be compressed at most this much (save() never does)


def _npy_header(f, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from the header of the .npy stream f."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    except ValueError as error:
        raise ValueError(f"{what} is not a valid .npy array ({error})") from None
    raise ValueError(f"{what} is a .npy of version {version}, which save() never writes")


def _read_tag(archive: zipfile.ZipFile, member: str, what: str) -> str:
    """The class name stored in ``member``: a 0-d unicode string, read with a size bound."""
    if archive.getinfo(member).file_size > _MAX_TAG_BYTES:
        raise ValueError(f"{what} is {archive.getinfo(member).file_size} bytes, too big")
    with archive.open(member) as f:
        shape, _, dtype = _npy_header(f, what)
        if shape != () or dtype.kind != "U":
            raise ValueError(f"{what} is not a single string")
        data = f.read(dtype.itemsize)
        if len(data) != dtype.itemsize:
            raise ValueError(f"{what} is cut short")
        return str(np.frombuffer(data, dtype=dtype, count=1)[0])


def _read_weights(archive: zipfile.ZipFile, member: str, path: str) -> np.ndarray:
    """W from ``member``, its header checked before any data is read."""
    what = f"{path}: W"
    with archive.open(member) as f:
        shape, fortran_order, dtype = _npy_header(f, what)
        if dtype.newbyteorder("=") not in _WEIGHT_DTYPES or dtype.hasobject:
            raise ValueError(f"{what} has dtype {dtype}; expected float32 or float64")
        if len(shape) != 2 or 0 in shape:
            raise ValueError(f"{what} has shape {shape}; expected a non-empty 2-D (D, C)")
        nbytes = math.prod(shape) * dtype.itemsize
        info = archive.getinfo(member)
        if info.file_size > _MAX_INFLATION * max(info.compress_size, 1 << 20):
            raise ValueError(
                f"{what} would inflate from {info.compress_size} to {info.file_size} bytes; "
                "save() writes W uncompressed: refused"
            )
        if archive.getinfo(member).file_size - f.tell() != nbytes:
            raise ValueError(
                f"{what} claims shape {shape} ({nbytes} bytes of data), but the file holds "
                f"{archive.getinfo(member).file_size - f.tell()}"
            )
        W = np.empty(math.prod(shape), dtype=dtype)
        view, filled = memoryview(W).cast("B"), 0
        while filled < nbytes:
            n = f.readinto(view[filled:])
            if not n:
                raise ValueError(f"{what} ends after {filled} of {nbytes} bytes")
            filled += n
    W = W.reshape(shape, order="F" if fortran_order else "C")
    W = np.ascontiguousarray(W, dtype=dtype.newbyteorder("="))
    if not np.isfinite(W).all():
        raise ValueError(f"{what} holds NaN or infinite values: refused")
    return W
