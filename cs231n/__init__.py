"""Helper package for the cs231n softmax assignment.

Modules
-------
classifiers      the softmax loss (naive and vectorized) and the linear classifiers
gradient_check   numerical gradients and relative errors
data_utils       CIFAR-10 and bundled Fashion-MNIST loaders, splits and preprocessing
tuning           grid_search over learning rates and regularisation strengths
checks           self-checks for your code: check("softmax_loss_naive"), ...
submission       packs submission.zip (``make submission``)
"""
