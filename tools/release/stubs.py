"""What each marked block in cs231n/ asks the student to write: the stub table.

Keys are ``(path, function, block)``: the file relative to the repository root, the
qualified name of the function that holds the START/END markers (``Class.method`` for
methods) and the block's index within that function, counting from 0. Values describe
the task; the stub raises ``NotImplementedError("<function>: <task> (<path>)")``.

The builder refuses a marked block with no entry here, and an entry with no block, so
this table and the reference solution cannot drift apart silently.
"""

TASKS: dict[tuple[str, str, int], str] = {
    ("cs231n/classifiers/softmax.py", "softmax_loss_naive", 0): (
        "compute the loss and gradient with explicit loops"
    ),
    ("cs231n/classifiers/softmax.py", "softmax_loss_vectorized", 0): (
        "compute the loss and gradient without explicit loops"
    ),
    ("cs231n/classifiers/linear_classifier.py", "LinearClassifier.train", 0): (
        "sample a minibatch X_batch, y_batch of batch_size examples with rng"
    ),
    ("cs231n/classifiers/linear_classifier.py", "LinearClassifier.train", 1): (
        "update the weights self.W with the gradient and the learning rate"
    ),
    ("cs231n/classifiers/linear_classifier.py", "LinearClassifier.predict", 0): (
        "store the predicted labels in y_pred"
    ),
    ("cs231n/tuning.py", "train_together", 0): (
        "optional: train all configurations at once (until then grid_search trains them "
        "one by one)"
    ),
}
