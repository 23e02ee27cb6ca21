"""Figures for the notebook: showing a figure with a text alternative, and the numbers
behind the template, confusion-matrix, probability and reliability plots.

Each plot in the notebook is drawn with matplotlib and shown with :func:`show`, which
attaches a text alternative (what a screen reader reads out, and what an HTML export puts
in the image's ``alt``). The helpers here compute; the notebook cells draw.
"""

from __future__ import annotations

import base64
import html
import io

import matplotlib.pyplot as plt
import numpy as np
from IPython.display import display
from matplotlib.figure import Figure


def show(fig: Figure, alt: str) -> None:
    """Display ``fig`` inline with ``alt`` as its text alternative, then close it.

    The output holds the PNG, an ``<img>`` with the ``alt`` attribute (what JupyterLab,
    Colab and an nbconvert HTML export show) and ``alt`` as its plain text.
    """
    if not alt.strip():
        raise ValueError("alt must describe the figure; got an empty text")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    plt.close(fig)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    img = f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{png}"/>'
    display(
        {"image/png": png, "text/html": img, "text/plain": alt},
        raw=True,
        metadata={"image/png": {"alt": alt}},
    )


def sci(value: float) -> str:
    """Short scientific notation for tick labels, two significant digits at most:
    2e-05 -> "2e-5", 25000.0 -> "2.5e4", 1000.0 -> "1e3"."""
    mantissa, exponent = f"{value:.1e}".split("e")
    return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"


def confusion_fractions(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) array: entry [i, j] is the fraction of class-i examples predicted as j.

    y_true, y_pred: (N,) ints in [0, C). A class with no examples gets a row of zeros.
    """
    counts = np.zeros((num_classes, num_classes))
    np.add.at(counts, (y_true, y_pred), 1)
    totals = counts.sum(axis=1)[:, None]  # (C, 1): each row divides by its own total
    return np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)


def probabilities(scores: np.ndarray) -> np.ndarray:
    """Softmax probabilities of each row of ``scores``, (N, C) -> (N, C), in float64.

    Computed one row at a time with the row's largest score subtracted first (section 4 of
    the notebook), so any finite scores give finite probabilities that sum to 1 per row.
    """
    scores = np.asarray(scores, dtype=np.float64)
    if scores.ndim != 2:
        raise ValueError(f"scores must be a 2-D (N, C) array; got shape {scores.shape}")
    probs = np.empty_like(scores)
    for i, row in enumerate(scores):
        exp_row = np.exp(row - row.max())
        probs[i] = exp_row / exp_row.sum()
    return probs


def reliability(
    probs: np.ndarray, y: np.ndarray, num_bins: int = 10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Confidence against accuracy, in equal-width bins of the confidence.

    probs: (N, C) probabilities, rows summing to 1; y: (N,) true labels. The confidence
    of an example is its largest probability, and it counts as right when that class is
    y. Returns (mean_confidence, accuracy, count), each (num_bins,), for the bins
    [0, 1/num_bins), ..., [1 - 1/num_bins, 1]; empty bins hold NaN, NaN, 0.
    """
    confidence = probs.max(axis=1)
    correct = probs.argmax(axis=1) == y
    which = np.minimum((confidence * num_bins).astype(int), num_bins - 1)
    count = np.bincount(which, minlength=num_bins)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_conf = np.bincount(which, weights=confidence, minlength=num_bins) / count
        accuracy = np.bincount(which, weights=correct, minlength=num_bins) / count
    return mean_conf, accuracy, count


def template_images(W: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The columns of W (D, C), bias row dropped, as C images of ``image_shape``.

    Returns (C, *image_shape).
    """
    num_classes = W.shape[1]
    return np.moveaxis(W[:-1].reshape(*image_shape, num_classes), -1, 0)
