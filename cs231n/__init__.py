"""Helper package for the cs231n softmax assignment.

Modules
-------
classifiers      the softmax loss (naive and vectorized) and the linear classifiers
gradient_check   numerical gradients and relative errors
"""
