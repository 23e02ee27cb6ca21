"""The batched grid search: same models as solo training, right bookkeeping, dtypes, errors."""

import warnings

import numpy as np
import pytest
from cifar_fixtures import write_cifar_folder
from threadpoolctl import threadpool_info, threadpool_limits

from cs231n import _threads, tuning
from cs231n.classifiers import Softmax
from cs231n.classifiers.softmax import softmax_loss_vectorized
from cs231n.data_utils import load_dataset, make_splits, preprocess
from cs231n.tuning import _train_in_chunks, grid_search

LRS = [3e-3, 3e-2, 3e-1]
REGS = [0.0, 1e-2, 5.0]
ITERS, BATCH = 60, 32


def blobs(n=400, d=24, c=5, seed=0, dtype=np.float64):
    """Overlapping Gaussian class clusters plus a bias column: accuracies spread out."""
    rng = np.random.default_rng(seed)
    centres = 1.5 * rng.standard_normal((c, d))
    y = rng.integers(0, c, size=n)
    X = np.hstack([centres[y] + rng.standard_normal((n, d)), np.ones((n, 1))])
    return X.astype(dtype), y


def split(dtype=np.float64):
    X, y = blobs(dtype=dtype)
    return X[:300], y[:300], X[300:], y[300:]


def solo(X, y, lr, reg, seed=0, iters=ITERS):
    """The oracle: one Softmax trained on its own by LinearClassifier.train."""
    model = Softmax()
    model.train(X, y, learning_rate=lr, reg=reg, num_iters=iters, batch_size=BATCH, seed=seed)
    return model


def rel_diff(a, b):
    return np.max(np.abs(a - b)) / np.max(np.abs(b))


@pytest.mark.parametrize("chunk_size", [1, 2, 4, 9, 64])
def test_every_configuration_equals_solo_training_float64(chunk_size):
    X, y, _, _ = split()
    configs = [(lr, reg) for lr in LRS for reg in REGS]
    seen = []
    for chunk, W_all in _train_in_chunks(X, y, configs, ITERS, BATCH, 7, chunk_size, False):
        assert W_all.shape == (X.shape[1], 5 * len(chunk))
        for k, (lr, reg) in enumerate(chunk):
            expected = solo(X, y, lr, reg, seed=7).W
            assert rel_diff(W_all[:, 5 * k : 5 * k + 5], expected) < 1e-10, (lr, reg)
            seen.append((lr, reg))
    assert seen == configs


def test_without_the_batched_step_the_same_search_runs_one_by_one(monkeypatch):
    # The student edition stubs train_together's step (it raises NotImplementedError
    # until the optional exercise is done); grid_search then trains each configuration
    # with Softmax.train and must give the same results and the same best model.
    X, y, X_val, y_val = split()
    kwargs = dict(num_iters=ITERS, batch_size=BATCH, chunk_size=4)
    results, best = grid_search(X, y, X_val, y_val, LRS, REGS, **kwargs)

    def stub(*args, **kwargs):
        raise NotImplementedError("train_together: optional exercise")

    monkeypatch.setattr(tuning, "train_together", stub)
    results_slow, best_slow = grid_search(X, y, X_val, y_val, LRS, REGS, **kwargs)
    assert results_slow == results
    assert rel_diff(best_slow.W, best.W) < 1e-10


def test_results_hold_the_solo_models_accuracies_for_every_pair():
    X, y, X_val, y_val = split()
    results, _ = grid_search(
        X, y, X_val, y_val, LRS, REGS, num_iters=ITERS, batch_size=BATCH, chunk_size=4
    )
    assert set(results) == {(lr, reg) for lr in LRS for reg in REGS}
    for (lr, reg), (train_acc, val_acc) in results.items():
        model = solo(X, y, lr, reg)
        assert train_acc == np.mean(model.predict(X) == y)
        assert val_acc == np.mean(model.predict(X_val) == y_val)
    # The data is hard enough that the configurations really differ.
    assert len({val for _, val in results.values()}) > 2


@pytest.mark.parametrize("chunk_size", [2, 64])
def test_best_is_the_configuration_with_the_highest_val_accuracy(chunk_size):
    X, y, X_val, y_val = split()
    results, best = grid_search(
        X, y, X_val, y_val, LRS, REGS, num_iters=ITERS, batch_size=BATCH, chunk_size=chunk_size
    )
    val = {config: np.mean(solo(X, y, *config).predict(X_val) == y_val) for config in results}
    top = max(val.values())
    winners = [config for config in results if val[config] == top]
    assert isinstance(best, Softmax)
    # On a tie the first configuration in (lr, reg) order wins.
    assert rel_diff(best.W, solo(X, y, *winners[0]).W) < 1e-10
    assert np.mean(best.predict(X_val) == y_val) == top


def test_the_best_model_can_be_the_last_chunk():
    # The best configuration is trained in a later chunk, so it must see the same
    # minibatches and initial W as solo training: the chunk replays the seed.
    X, y, X_val, y_val = split()
    lrs = [1e-6, 2e-6, 3e-1]  # tiny steps barely leave the random start
    _, best = grid_search(
        X, y, X_val, y_val, lrs, [1e-3], num_iters=ITERS, batch_size=BATCH, chunk_size=1
    )
    assert rel_diff(best.W, solo(X, y, 3e-1, 1e-3).W) < 1e-10


def test_float32_in_float32_out():
    X, y, X_val, y_val = split(np.float32)
    configs = [(lr, reg) for lr in LRS for reg in REGS]
    for chunk, W_all in _train_in_chunks(X, y, configs, ITERS, BATCH, 0, 4, False):
        assert W_all.dtype == np.float32
        for k, (lr, reg) in enumerate(chunk):
            expected = solo(X, y, lr, reg).W
            assert expected.dtype == np.float32
            assert rel_diff(W_all[:, 5 * k : 5 * k + 5], expected) < 1e-4
    _, best = grid_search(X, y, X_val, y_val, LRS, REGS, num_iters=ITERS, batch_size=BATCH)
    assert best.W.dtype == np.float32


def test_float32_from_the_files_to_the_best_model(tmp_path, monkeypatch):
    # The whole float32 path on CIFAR-format files: load, split, preprocess, loss,
    # train, search. Nothing may come back float64.
    monkeypatch.setenv("CIFAR10_DIR", str(write_cifar_folder(tmp_path, 40, 20)))
    ds = load_dataset("cifar10", dtype=np.float32, verbose=False)
    sizes = dict(num_training=160, num_validation=40, num_test=20, num_dev=20, verbose=False)
    data = preprocess(make_splits(ds, **sizes), verbose=False)
    X, y, X_val, y_val = data["X_train"], data["y_train"], data["X_val"], data["y_val"]
    assert X.dtype == X_val.dtype == np.float32
    W = np.full((X.shape[1], 10), 1e-3, dtype=np.float32)
    _, dW = softmax_loss_vectorized(W, X, y, 1.0)
    assert dW.dtype == np.float32
    model = Softmax()
    model.train(X, y, learning_rate=1e-7, reg=1.0, num_iters=10, seed=0)
    assert model.W.dtype == np.float32
    results, best = grid_search(X, y, X_val, y_val, [1e-7, 1e-6], [1.0], num_iters=30)
    assert best.W.dtype == np.float32
    assert all(type(acc) is float for pair in results.values() for acc in pair)


def test_same_seed_same_search_other_seed_other_models():
    X, y, X_val, y_val = split()
    args = (X, y, X_val, y_val, LRS[:2], REGS[:2])
    kwargs = dict(num_iters=ITERS, batch_size=BATCH)
    results_a, best_a = grid_search(*args, seed=5, **kwargs)
    results_b, best_b = grid_search(*args, seed=5, **kwargs)
    _, best_c = grid_search(*args, seed=6, **kwargs)
    assert results_a == results_b
    np.testing.assert_array_equal(best_a.W, best_b.W)
    assert not np.allclose(best_a.W, best_c.W)


def test_seed_none_still_replays_one_seed_across_chunks():
    # Two nearly equal configurations in separate chunks must end nearly equal, which
    # they only do when both chunks drew the same initial W and minibatches.
    X, y, _, _ = split()
    configs = [(1e-2, 0.0), (1e-2, 1e-9)]
    (_, W_a), (_, W_b) = _train_in_chunks(X, y, configs, ITERS, BATCH, None, 1, False)
    assert rel_diff(W_a, W_b) < 1e-6


def test_zero_iterations_keep_the_shared_initial_weights():
    X, y, X_val, y_val = split()
    _, best = grid_search(X, y, X_val, y_val, [1.0], [0.0], num_iters=0, seed=2)
    expected = (0.001 * np.random.default_rng(2).standard_normal((X.shape[1], 5))).astype(X.dtype)
    np.testing.assert_array_equal(best.W, expected)


def test_verbose_prints_one_line_per_configuration(capsys):
    X, y, X_val, y_val = split()
    grid_search(X, y, X_val, y_val, LRS[:2], REGS, num_iters=5, verbose=True)
    out = capsys.readouterr()
    assert out.out.count("val accuracy") == 6
    assert "best validation accuracy" in out.out
    assert out.err == ""  # no progress bar unless asked


def test_progress_bar_goes_to_stderr_only_when_asked(capsys):
    X, y, X_val, y_val = split()
    grid_search(X, y, X_val, y_val, LRS[:1], REGS[:2], num_iters=5, progress=True)
    err = capsys.readouterr().err
    assert "grid search" in err and "10/10" in err  # 2 configurations x 5 steps
    Softmax().train(X, y, num_iters=5, seed=0, progress=True)
    assert "train" in capsys.readouterr().err
    Softmax().train(X, y, num_iters=5, seed=0)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(learning_rates=[]), "learning_rates is empty"),
        (dict(regularization_strengths=[]), "regularization_strengths is empty"),
        (dict(learning_rates=[1e-3, 0.0]), "learning_rates must all be finite and > 0"),
        (dict(learning_rates=[-1e-3]), "learning_rates must all be finite and > 0"),
        (dict(learning_rates=[float("nan")]), "learning_rates must all be finite"),
        (dict(regularization_strengths=[-1.0]), "regularization_strengths must all be"),
        (dict(regularization_strengths=[1.0, 1.0]), "repeated values"),
        (dict(num_iters=-1), "num_iters >= 0"),
        (dict(batch_size=0), "batch_size >= 1"),
        (dict(chunk_size=0), "chunk_size >= 1"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(change, message):
    X, y, X_val, y_val = split()
    kwargs = dict(learning_rates=LRS, regularization_strengths=REGS, num_iters=5)
    kwargs.update(change)
    with pytest.raises(ValueError, match=message):
        grid_search(X, y, X_val, y_val, **kwargs)


def test_bad_data_is_refused_by_name():
    X, y, X_val, y_val = split()
    grid = ([1e-3], [0.0])
    with pytest.raises(ValueError, match="X_val has 24 columns but X_train has 25"):
        grid_search(X, y, X_val[:, 1:], y_val, *grid)
    with pytest.raises(ValueError, match="X_val is float32 but X_train is float64"):
        grid_search(X, y, X_val.astype(np.float32), y_val, *grid)
    with pytest.raises(ValueError, match=r"^y_train must have shape \(300,\) to match X_train"):
        grid_search(X, y[:-1], X_val, y_val, *grid)
    with pytest.raises(ValueError, match=r"^y_val must have shape \(100,\) to match X_val"):
        grid_search(X, y, X_val, y_val[:-1], *grid)
    with pytest.raises(ValueError, match="y_val holds label 9"):
        grid_search(X, y, X_val, np.full_like(y_val, 9), *grid)
    with pytest.raises(
        ValueError, match=r"^X_train must hold floats; got dtype int64 \(convert with"
    ):
        grid_search(X.astype(np.int64), y, X_val, y_val, *grid)


# ----------------------------------------------------------------------------------------
# Data checks, grids, divergence and BLAS threads
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["X_train", "X_val"])
def test_non_finite_data_is_refused_by_name(name):
    data = dict(zip(["X_train", "y_train", "X_val", "y_val"], split(), strict=True))
    data[name][5, 3] = np.nan
    with pytest.raises(
        ValueError, match=rf"^{name} holds 1 NaN or infinite value\(s\), the first {name}\[5, 3\]"
    ):
        grid_search(**data, learning_rates=LRS, regularization_strengths=REGS, num_iters=5)


def test_matrix_and_stray_labels_are_refused_by_name():
    X, y, X_val, y_val = split()
    grid = ([1e-3], [0.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        X_val_matrix = np.asmatrix(X_val)
    with pytest.raises(ValueError, match=r"^X_val is an np.matrix"):
        grid_search(X, y, X_val_matrix, y_val, *grid)
    y = y.copy()
    y[0] = 20000
    with pytest.raises(
        ValueError, match=r"^y_train holds 6 distinct labels but its largest is 20000"
    ):
        grid_search(X, y, X_val, y_val, *grid)
    with pytest.raises(ValueError, match=r"^y_val holds label 4, but there are 3 classes"):
        grid_search(X, np.minimum(y, 2), X_val, y_val, *grid, num_classes=3)


@pytest.mark.parametrize(
    "grid, error, message",
    [
        (
            {1e-3, 1e-2},
            TypeError,
            r"learning_rates is a set, which has no order.*sorted\(learning_rates\)",
        ),
        (frozenset([1e-3]), TypeError, "is a set"),
        (
            (lr for lr in [1e-3, 1e-2]),
            TypeError,
            r"must be a list of numbers; got .* generator \(pass list\(...\) of it\)",
        ),
        (iter([1e-3]), TypeError, r"list_iterator \(pass list"),
        ({"a": 1e-3}, TypeError, "of type dict"),
        ("1e-3", TypeError, "of type str"),
        (["1e-3", 1e-2], TypeError, r"must hold numbers only; got \['1e-3'\]"),
        ([[1e-3, 1e-2]], TypeError, "must hold numbers only"),
        ([True], TypeError, "must hold numbers only"),
        ([1e-3, 1j], TypeError, "must hold numbers only"),
        (np.array([[1e-3, 1e-2]]), TypeError, "of type ndarray"),
        (None, TypeError, "of type NoneType"),
    ],
)
def test_grids_must_be_ordered_lists_of_numbers(grid, error, message):
    X, y, X_val, y_val = split()
    with pytest.raises(error, match=message):
        grid_search(X, y, X_val, y_val, grid, REGS, num_iters=2)


@pytest.mark.parametrize("grid", [(3e-3, 3e-2), np.array([3e-3, 3e-2]), range(1, 2), 3e-3])
def test_tuples_arrays_ranges_and_one_number_are_grids(grid):
    X, y, X_val, y_val = split()
    results, _ = grid_search(X, y, X_val, y_val, grid, [0.0], num_iters=2)
    assert list(results) == [(float(lr), 0.0) for lr in np.atleast_1d(np.asarray(grid, float))]


def skewed(n=400, seed=0):
    """60% of the labels in class 0: a diverged model predicting 0 everywhere scores 0.6."""
    rng = np.random.default_rng(seed)
    y = np.where(rng.random(n) < 0.6, 0, rng.integers(1, 5, size=n))
    X = np.hstack([rng.standard_normal((n, 24)) + 0.5 * y[:, None], np.ones((n, 1))])
    return X[:300], y[:300], X[300:], y[300:]


@pytest.mark.parametrize("batched", [True, False])
def test_a_diverged_configuration_is_nan_warned_and_never_best(batched, monkeypatch):
    if not batched:  # the student edition before the optional exercise: one by one
        monkeypatch.setattr(
            tuning, "train_together", lambda *a: (_ for _ in ()).throw(NotImplementedError)
        )
    X, y, X_val, y_val = skewed()
    with pytest.warns(RuntimeWarning, match=r"diverged .*\[\(1e\+30, 0\.1\)\]") as caught:
        results, best = grid_search(
            X, y, X_val, y_val, [1e-2, 1e30], [0.1], num_iters=40, batch_size=BATCH
        )
    assert len(caught) == 1  # one warning for the search, none from numpy
    assert np.isnan(results[(1e30, 0.1)]).all()
    healthy = solo(X, y, 1e-2, 0.1, iters=40)  # the oracle: trained on its own
    assert results[(1e-2, 0.1)] == (
        np.mean(healthy.predict(X) == y),
        np.mean(healthy.predict(X_val) == y_val),
    )
    assert np.isfinite(best.W).all() and rel_diff(best.W, healthy.W) < 1e-10


def test_when_every_configuration_diverges_the_search_says_so():
    X, y, X_val, y_val = skewed()
    with pytest.raises(
        RuntimeError, match=r"every configuration diverged .*\(1e\+30, 0\.1\), \(1e\+31, 0\.1\)"
    ):
        grid_search(X, y, X_val, y_val, [1e30, 1e31], [0.1], num_iters=40, batch_size=BATCH)


def blas_threads():
    return tuple(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


@pytest.mark.skipif(not blas_threads(), reason="no BLAS found")
@pytest.mark.parametrize("fail", [False, True])
def test_grid_search_tunes_its_steps_and_sets_the_users_threads_back(monkeypatch, fail):
    seen = []
    real_tick = _threads.tick

    def tick():
        seen.append(blas_threads()[0])
        real_tick()

    monkeypatch.setattr(_threads, "tick", tick)
    if fail:  # an error after training, while the search's thread limit is in force
        monkeypatch.setattr(tuning, "_accuracies", lambda *a: 1 / 0)
    X, y, X_val, y_val = split()
    with threadpool_limits(2, user_api="blas"):
        before = threadpool_info()
        if fail:
            with pytest.raises(ZeroDivisionError):
                grid_search(X, y, X_val, y_val, LRS, REGS, num_iters=ITERS, batch_size=BATCH)
        else:
            grid_search(X, y, X_val, y_val, LRS, REGS, num_iters=ITERS, batch_size=BATCH)
        assert threadpool_info() == before
    assert len(seen) == ITERS and set(seen) == {1, 2}  # one tick per batched step
