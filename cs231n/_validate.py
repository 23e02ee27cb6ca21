"""Checks at the boundary of the public functions (machinery; nothing here is an exercise).

Each raises a ``ValueError`` that names the argument, what was expected and, where it
helps, how to fix it. Inside, the functions that call these trust their data.
"""

from __future__ import annotations

import reprlib

import numpy as np

# Labels are 0 ... C-1 with C = y.max() + 1 unless num_classes says otherwise. Without it,
# at most this many (or as many as are present, if more) of those C labels may be absent:
# a stray label such as 20000 among ten classes would otherwise make W 2000 times too wide.
MAX_ABSENT_CLASSES = 10


def short(value: object) -> str:
    """A bounded repr, for values that may be huge or come from untrusted files."""
    return reprlib.repr(value)


def describe(a: object) -> str:
    """What ``a`` is, for an error message: its shape if an array, else its type."""
    if isinstance(a, np.ndarray):
        return f"an array of shape {a.shape}"
    return f"a {type(a).__name__} (convert with np.asarray)"


def refuse_matrix(a: object, name: str) -> None:
    """ValueError when ``a`` is an ``np.matrix``, whose ``*`` is a matrix product."""
    if isinstance(a, np.matrix):
        raise ValueError(
            f"{name} is an np.matrix, whose * and indexing differ from arrays': "
            f"pass np.asarray({name})"
        )


def check_loss_inputs(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> None:
    """The arguments of a softmax loss: W (D, C) and X (N, D) floats, with N >= 1, y (N,)
    integer labels in [0, C), reg a finite number >= 0."""
    for name, a in (("W", W), ("X", X), ("y", y)):
        if isinstance(a, np.matrix):  # its * is a matrix product and it stays 2-D
            raise ValueError(f"{name} is an np.matrix: pass np.asarray({name})")
    if not isinstance(W, np.ndarray) or W.ndim != 2:
        raise ValueError(f"W must be a 2-D array of shape (D, C); got {describe(W)}")
    if not isinstance(X, np.ndarray) or X.ndim != 2:
        raise ValueError(f"X must be a 2-D array of shape (N, D); got {describe(X)}")
    if not isinstance(y, np.ndarray) or y.ndim != 1:
        raise ValueError(f"y must be a 1-D array of shape (N,); got {describe(y)}")
    if not np.issubdtype(W.dtype, np.floating):
        raise ValueError(f"W must hold floats; got dtype {W.dtype}")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(
            f"X must hold floats; got dtype {X.dtype} (convert with X.astype(np.float64))"
        )
    if X.shape[1] != W.shape[0]:
        raise ValueError(
            f"X has {X.shape[1]} columns but W has {W.shape[0]} rows: X is (N, D), W is (D, C)"
        )
    if X.shape[0] == 0:
        raise ValueError("X has no rows: the loss is a mean over examples and needs at least one")
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"y has {y.shape[0]} labels but X has {X.shape[0]} rows")
    if not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"y must hold integer class labels; got dtype {y.dtype}")
    num_classes = W.shape[1]
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(
            f"y must hold labels in [0, {num_classes}) for W with {num_classes} columns; "
            f"got labels from {y.min()} to {y.max()}"
        )
    if (
        not isinstance(reg, (int, float, np.integer, np.floating))
        or not np.isfinite(reg)
        or reg < 0
    ):
        raise ValueError(f"reg must be a finite number >= 0; got {reg!r}")


def check_X_y(
    X: np.ndarray,
    y: np.ndarray,
    X_name: str = "X",
    y_name: str = "y",
    num_classes: int | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Training data: X (N, D) finite floats, y (N,) labels in [0, C); returns X, y.

    C is num_classes when given; otherwise ``y.max() + 1``, refused when more than
    ``max(MAX_ABSENT_CLASSES, distinct labels)`` labels below it never occur. Errors call
    the arrays by ``X_name`` and ``y_name``, the caller's argument names. One pass over
    X (a column sum), so callers check once per call, never per minibatch.
    """
    refuse_matrix(X, X_name)
    if not isinstance(X, np.ndarray) or X.ndim != 2 or X.shape[0] == 0:
        raise ValueError(f"{X_name} must be a non-empty 2-D array (N, D); got {describe(X)}")
    if not np.issubdtype(X.dtype, np.floating):
        raise ValueError(
            f"{X_name} must hold floats; got dtype {X.dtype} "
            f"(convert with {X_name}.astype(np.float32) or np.float64)"
        )
    refuse_matrix(y, y_name)
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
    check_finite(X, X_name)
    return X, y


def check_finite(X: np.ndarray, name: str) -> None:
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
