"""Linear classifiers and their losses."""

from .linear_classifier import LinearClassifier, Softmax

__all__ = ["LinearClassifier", "Softmax"]
