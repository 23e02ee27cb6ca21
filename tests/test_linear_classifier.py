"""Training, prediction, reproducibility and persistence of the linear classifiers."""

import numpy as np
import pytest

from cs231n.classifiers import LinearClassifier, Softmax


def separable(n=600, d=20, c=4, seed=0, dtype=np.float64):
    """Gaussian blobs around well-separated class centres, plus a bias column."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * rng.standard_normal((c, d))
    y = rng.integers(0, c, size=n)
    X = centres[y] + rng.standard_normal((n, d))
    X = np.hstack([X, np.ones((n, 1))])
    return X.astype(dtype), y


def test_training_reaches_high_accuracy_on_separable_data():
    X_all, y_all = separable(n=900)
    X, y, X_test, y_test = X_all[:600], y_all[:600], X_all[600:], y_all[600:]
    clf = Softmax()
    history = clf.train(X, y, learning_rate=1e-2, reg=1e-4, num_iters=300, batch_size=64, seed=0)
    assert len(history) == 300
    assert np.mean(history[-20:]) < 0.5 * history[0]
    assert np.mean(clf.predict(X) == y) > 0.95
    assert np.mean(clf.predict(X_test) == y_test) > 0.95


def test_same_seed_same_run_different_seed_different_run():
    X, y = separable()
    a, b, c = Softmax(), Softmax(), Softmax()
    ha = a.train(X, y, num_iters=30, seed=3)
    hb = b.train(X, y, num_iters=30, seed=3)
    hc = c.train(X, y, num_iters=30, seed=4)
    assert ha == hb
    np.testing.assert_array_equal(a.W, b.W)
    assert ha != hc


def test_initial_loss_is_about_log_C():
    # W starts at 0.001 * N(0, 1): scores are near 0, so the first loss is near log C.
    X, y = separable(c=10)
    history = Softmax().train(X, y, num_iters=1, seed=0)
    assert history[0] == pytest.approx(np.log(10), abs=0.05)


def test_float32_stays_float32():
    X, y = separable(dtype=np.float32)
    clf = Softmax()
    clf.train(X, y, num_iters=20, seed=0)
    assert clf.W.dtype == np.float32
    assert clf.predict(X).shape == (X.shape[0],)


def test_predict_returns_argmax_of_scores():
    clf = Softmax()
    clf.W = np.array([[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 3.0]])
    X = np.array([[5.0, 1.0, 1.0], [1.0, 5.0, 1.0], [1.0, 1.0, 5.0], [3.0, 1.0, 0.9]])
    y_pred = clf.predict(X)
    assert np.issubdtype(y_pred.dtype, np.integer)
    np.testing.assert_array_equal(y_pred, [0, 1, 2, 0])


def test_save_load_round_trip(tmp_path):
    X, y = separable()
    clf = Softmax()
    clf.train(X, y, num_iters=20, seed=0)
    path = tmp_path / "softmax.npz"
    clf.save(path)
    with np.load(path, allow_pickle=False) as data:  # plain arrays, no pickle inside
        assert set(data.files) == {"W", "classifier"}
    loaded = Softmax().load(path)
    np.testing.assert_array_equal(loaded.W, clf.W)
    np.testing.assert_array_equal(loaded.predict(X), clf.predict(X))
    # np.savez appends .npz to a bare name; load() finds the file under the same name
    clf.save(tmp_path / "model")
    np.testing.assert_array_equal(Softmax().load(tmp_path / "model").W, clf.W)


def test_load_refuses_other_classifier_and_foreign_files(tmp_path):
    class Other(Softmax):
        pass

    clf = Other()
    clf.W = np.zeros((3, 2))
    clf.save(tmp_path / "other.npz")
    with pytest.raises(ValueError, match="holds a Other, not a Softmax"):
        Softmax().load(tmp_path / "other.npz")
    np.savez(tmp_path / "foreign.npz", weights=np.zeros(3))
    with pytest.raises(ValueError, match="not a classifier file"):
        Softmax().load(tmp_path / "foreign.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match="allow_pickle"):
        Softmax().load(tmp_path / "objects.npy")
    np.save(tmp_path / "plain.npy", np.zeros((3, 2)))
    with pytest.raises(ValueError, match=r"plain.npy is not a classifier file .* \(an .npz\)"):
        Softmax().load(tmp_path / "plain.npy")


def test_linear_classifier_is_abstract():
    with pytest.raises(TypeError):
        LinearClassifier()


def test_untrained_classifier_says_what_to_do(tmp_path):
    with pytest.raises(RuntimeError, match="call train\\(\\) or load\\(\\) first"):
        Softmax().predict(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="call train\\(\\) or load\\(\\) first"):
        Softmax().save(tmp_path / "w.npz")


@pytest.mark.parametrize(
    "X, y, kwargs, match",
    [
        (np.zeros(5), np.zeros(5, dtype=int), {}, "X must be a non-empty 2-D array"),
        (np.zeros((5, 2), dtype=int), np.zeros(5, dtype=int), {}, "X must hold floats"),
        (np.zeros((5, 2)), np.zeros(4, dtype=int), {}, r"y must have shape \(5,\)"),
        (np.zeros((5, 2)), np.zeros(5), {}, "y must hold integer class labels; got dtype float64"),
        (
            np.zeros((5, 2)),
            -np.ones(5, dtype=int),
            {},
            "y must hold labels >= 0; its smallest is -1",
        ),
        (np.zeros((5, 2)), np.zeros(5, dtype=int), {"batch_size": 0}, "batch_size >= 1"),
    ],
)
def test_train_rejects_bad_input(X, y, kwargs, match):
    with pytest.raises(ValueError, match=match):
        Softmax().train(X, y, **kwargs)


def test_predict_rejects_wrong_width():
    clf = Softmax()
    clf.W = np.zeros((3, 2))
    with pytest.raises(ValueError, match=r"shape \(N, 3\)"):
        clf.predict(np.zeros((4, 5)))
