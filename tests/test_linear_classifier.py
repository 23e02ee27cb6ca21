"""Training, prediction, reproducibility and persistence of the linear classifiers."""

import io
import pickle
import subprocess
import sys
import tracemalloc
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

from cs231n import _threads
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
    with pytest.raises(ValueError, match="objects.npy is not a classifier file") as refused:
        Softmax().load(tmp_path / "objects.npy")
    assert "allow_pickle" not in str(refused.value)  # never point at the unsafe path
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


# ----------------------------------------------------------------------------------------
# Data checks at the boundary: once per call, naming the array
# ----------------------------------------------------------------------------------------


def as_matrix(a):
    """``np.asmatrix(a)`` without its PendingDeprecationWarning (an error under pytest)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        return np.asmatrix(a)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_X_is_refused_by_position_before_training(bad, monkeypatch):
    X, y = separable()
    X[123, 7] = bad
    losses = []
    monkeypatch.setattr(Softmax, "loss", lambda self, *a: losses.append(1) or (0.0, 0 * self.W))
    clf = Softmax()
    with pytest.raises(
        ValueError, match=rf"^X holds 1 NaN or infinite value\(s\), the first X\[123, 7\] = {bad}"
    ):
        clf.train(X, y, num_iters=5, seed=0)
    assert losses == [] and clf.W is None  # refused before the first step


def test_finite_X_whose_column_sums_overflow_is_accepted():
    # The quick check sums columns; 1e308 + 1e308 overflows although every entry is finite.
    X, y = separable(n=40, d=3)
    X[:2, 0] = 1e308
    Softmax().train(X, y, learning_rate=0.0, num_iters=1, seed=0)  # lr 0: no divergence


def test_X_is_checked_once_per_call_not_per_minibatch(monkeypatch):
    from cs231n import _validate

    seen = []
    real = _validate.check_finite
    monkeypatch.setattr(_validate, "check_finite", lambda X, n: seen.append(n) or real(X, n))
    Softmax().train(*separable(), num_iters=50, seed=0)
    assert seen == ["X"]


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda X, y: (as_matrix(X), y), r"^X is an np.matrix, .*: pass np.asarray\(X\)"),
        (lambda X, y: (X, as_matrix(y)), r"^y is an np.matrix"),
        (
            lambda X, y: (X[None], y),
            r"^X must be a non-empty 2-D array \(N, D\); got an array of shape \(1, 600, 21\)",
        ),
        (
            lambda X, y: (X.tolist(), y),
            r"^X must be a non-empty 2-D array .* a list \(convert with np.asarray\)",
        ),
        (lambda X, y: (X, y + 0.5), r"^y must hold integer class labels; got dtype float64"),
        (lambda X, y: (X, y.astype(bool)), r"^y must hold integer class labels; got dtype bool"),
        (lambda X, y: (X, y[:, None]), r"^y must have shape \(600,\)"),
        (lambda X, y: (X.astype(complex), y), r"^X must hold floats"),
    ],
)
def test_bad_data_gets_a_message_not_a_traceback(make, match):
    with pytest.raises(ValueError, match=match):
        Softmax().train(*make(*separable()), num_iters=1)


def test_predict_refuses_a_matrix():
    clf = Softmax()
    clf.W = np.eye(3)
    with pytest.raises(ValueError, match="X is an np.matrix"):
        clf.predict(as_matrix(np.eye(3)))


def test_a_stray_label_is_refused_before_W_is_made():
    # One label 20000 among ten classes: W would be 3073 x 20001 floats (492 MB).
    rng = np.random.default_rng(0)
    X = rng.standard_normal((300, 3073))
    y = rng.integers(0, 10, size=300)
    y[17] = 20000
    tracemalloc.start()
    try:
        with pytest.raises(
            ValueError,
            match=r"^y holds 11 distinct labels but its largest is 20000: 19990 classes "
            r".*num_classes=C",
        ):
            Softmax().train(X, y, num_iters=1)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20e6, peak  # far below W's 492 MB: refused before allocating


def test_absent_classes_are_fine_up_to_the_limit_and_with_num_classes():
    X, y = separable(n=40, d=3, c=2)
    y = np.where(y == 1, 9, 0)  # labels 0 and 9: eight classes absent, W has 10 columns
    clf = Softmax()
    clf.train(X, y, num_iters=2, seed=0)
    assert clf.W.shape == (4, 10)
    y[0] = 30  # now 28 absent among 3 present: refused, unless num_classes says so
    with pytest.raises(ValueError, match="pass num_classes=C"):
        Softmax().train(X, y, num_iters=2, seed=0)
    wide = Softmax()
    wide.train(X, y, num_iters=2, seed=0, num_classes=40)
    assert wide.W.shape == (4, 40)
    with pytest.raises(ValueError, match=r"^y holds label 30, but there are 20 classes"):
        Softmax().train(X, y, num_iters=2, num_classes=20)
    with pytest.raises(ValueError, match="num_classes=50, but the existing W has 40 columns"):
        wide.train(X, y, num_iters=2, num_classes=50)
    with pytest.raises(ValueError, match=r"^y holds label 30, but there are 10 classes"):
        clf.train(X, y, num_iters=2)  # training on: C is W's number of columns


def test_divergence_is_reported_with_lr_and_reg():
    X, y = separable()
    clf = Softmax()
    with pytest.warns(
        RuntimeWarning,
        match=r"learning_rate=1e\+30, reg=0\.5 diverged: the loss was (nan|inf) at iteration \d+",
    ):
        history = clf.train(X, y, learning_rate=1e30, reg=0.5, num_iters=30, seed=0)
    assert not np.isfinite(history[-1]) and len(history) == 30


def test_healthy_training_warns_nothing():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Softmax().train(*separable(), learning_rate=1e-2, num_iters=50, seed=0)


# ----------------------------------------------------------------------------------------
# save() and load(): the file is untrusted
# ----------------------------------------------------------------------------------------


def write_npz(path, members, compression=zipfile.ZIP_STORED):
    """An .npz made by hand: each member's .npy bytes, as np.savez lays them out."""
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name + ".npy", data)
    return path


def npy(array):
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_header(shape, descr="<f8"):
    """The header np.save would write for an array of this shape, without the data."""
    buffer = io.BytesIO()
    header = {"descr": descr, "fortran_order": False, "shape": shape}
    np.lib.format.write_array_header_1_0(buffer, header)
    return buffer.getvalue()


def tag(name="Softmax"):
    return npy(np.array(name))


@pytest.mark.parametrize(
    "saved_by, match",
    [
        ("SVM", "holds a SVM, not a Softmax"),  # the tag is read before W
        ("Softmax", r"W would inflate from \d+ to 80000128 bytes"),  # a bomb with our tag
    ],
)
def test_a_small_file_claiming_a_huge_W_is_refused_without_inflating_it(tmp_path, saved_by, match):
    # A W of 10 million float64 zeros (80 MB), compressed to well under 1 MB.
    path = tmp_path / "bomb.npz"
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("classifier.npy", tag(saved_by))
        with archive.open("W.npy", "w", force_zip64=True) as f:
            f.write(npy_header((1000000, 10)))  # 128 bytes
            for _ in range(80):
                f.write(bytes(1_000_000))
    assert path.stat().st_size < 1e6
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=match):
            Softmax().load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5e6, peak


def test_load_checks_W_header_against_the_data_before_reading(tmp_path):
    header = npy_header((1000000, 10))
    path = write_npz(tmp_path / "short.npz", {"classifier": tag(), "W": header + bytes(800)})
    with pytest.raises(
        ValueError,
        match=r"claims shape \(1000000, 10\) \(80000000 bytes of data\), but the file holds 800$",
    ):
        Softmax().load(path)


@pytest.mark.parametrize(
    "W, match",
    [
        (np.array([[1.0, np.nan]]), "holds NaN or infinite values"),
        (np.array([[1.0], [np.inf]]), "holds NaN or infinite values"),
        (np.ones((3, 2), dtype=np.float16), "dtype float16; expected float32 or float64"),
        (np.ones((3, 2), dtype=np.int64), "dtype int64; expected float32 or float64"),
        (np.ones((3, 2), dtype=np.complex128), "dtype complex128"),
        (np.zeros((0, 0)), r"shape \(0, 0\); expected a non-empty 2-D"),
        (np.zeros((5, 0)), r"shape \(5, 0\)"),
        (np.ones(4), r"shape \(4,\)"),
        (np.ones((2, 2, 2)), r"shape \(2, 2, 2\)"),
    ],
)
def test_load_refuses_a_bad_W(tmp_path, W, match):
    path = write_npz(tmp_path / "bad.npz", {"classifier": tag(), "W": npy(W)})
    clf = Softmax()
    with pytest.raises(ValueError, match=match):
        clf.load(path)
    assert clf.W is None


def test_load_never_unpickles(tmp_path):
    # An object-dtype W is stored as a pickle inside the .npy; one that would run code
    # when unpickled must be refused by its header alone.
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    np.save(buffer, np.array([[Payload()]], dtype=object), allow_pickle=True)
    path = write_npz(tmp_path / "evil.npz", {"classifier": tag(), "W": buffer.getvalue()})
    with pytest.raises(ValueError, match="dtype object"):
        Softmax().load(path)
    (tmp_path / "evil.pkl").write_bytes(pickle.dumps(Payload()))
    with pytest.raises(ValueError, match="is not a classifier file") as refused:
        Softmax().load(tmp_path / "evil.pkl")
    assert "allow_pickle" not in str(refused.value)
    assert not marker.exists()


def test_load_refuses_odd_tags_and_broken_archives(tmp_path):
    path = write_npz(
        tmp_path / "t.npz", {"classifier": npy(np.array(["Softmax", "x"])), "W": npy(np.eye(2))}
    )
    with pytest.raises(ValueError, match="class tag is not a single string"):
        Softmax().load(path)
    path = write_npz(tmp_path / "big.npz", {"classifier": tag("S" * 5000), "W": npy(np.eye(2))})
    with pytest.raises(ValueError, match="class tag is .* bytes, too big"):
        Softmax().load(path)
    path = write_npz(
        tmp_path / "v3.npz", {"classifier": tag(), "W": b"\x93NUMPY\x03\x00" + bytes(20)}
    )
    with pytest.raises(ValueError, match="version"):
        Softmax().load(path)
    good = write_npz(
        tmp_path / "good.npz", {"classifier": tag(), "W": npy(np.eye(2))}, zipfile.ZIP_DEFLATED
    )
    data = bytearray(good.read_bytes())
    at = data.index(b"PK\x01\x02")  # corrupt the compressed W just before the central directory
    data[at - 40 : at - 30] = bytes(10)
    (tmp_path / "damaged.npz").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="damaged or unsupported"):
        Softmax().load(tmp_path / "damaged.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        Softmax().load(tmp_path / "missing.npz")


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<f4", ">f4"])
def test_load_reads_every_layout_save_could_meet(tmp_path, dtype, order):
    W = np.arange(12.0).reshape(3, 4) / 7  # the oracle: known values
    stored = np.array(W, dtype=dtype, order=order)
    path = write_npz(tmp_path / "w.npz", {"classifier": tag(), "W": npy(stored)})
    loaded = Softmax().load(path).W
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=") and loaded.flags.writeable
    np.testing.assert_array_equal(loaded, W.astype(dtype))


def test_a_failed_save_leaves_no_file(tmp_path, monkeypatch):
    clf = Softmax()
    clf.W = np.eye(3)

    def broken_savez(f, **arrays):
        f.write(b"PK\x03\x04 half an archive")
        raise OSError("No space left on device")

    monkeypatch.setattr(np, "savez", broken_savez)
    with pytest.raises(OSError, match="No space left"):
        clf.save(tmp_path / "w.npz")
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------------------
# The BLAS thread policy (cs231n/_threads.py)
# ----------------------------------------------------------------------------------------

needs_blas = pytest.mark.skipif(
    not any(lib["user_api"] == "blas" for lib in threadpool_info()), reason="no BLAS found"
)


def blas_threads():
    return tuple(lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas")


@needs_blas
@pytest.mark.parametrize("fail_at", [None, 4, 40])
def test_train_sets_the_users_blas_threads_back(monkeypatch, fail_at):
    # The user's own setting (2 threads here) may change inside train only: train gives
    # it back on return, also when a step raises (4: inside the one-thread probe).
    seen = []
    real_loss = Softmax.loss

    def loss(self, X_batch, y_batch, reg):
        seen.append(blas_threads())
        if len(seen) == fail_at:
            raise KeyboardInterrupt
        return real_loss(self, X_batch, y_batch, reg)

    monkeypatch.setattr(Softmax, "loss", loss)
    with threadpool_limits(2, user_api="blas"):
        before = threadpool_info()
        if fail_at is None:
            Softmax().train(*separable(), num_iters=60, seed=0)
        else:
            with pytest.raises(KeyboardInterrupt):
                Softmax().train(*separable(), num_iters=60, seed=0)
        assert threadpool_info() == before
    assert {threads[0] for threads in seen} == {1, 2}  # it did change them inside


def simulate(cost, steps=1500, usual=2):
    """Run the tuner on a simulated loop whose step takes cost(step, threads) seconds.

    Returns the time of every step and the thread count it ran with.
    """
    clock = [0.0]
    used = []
    with threadpool_limits(usual, user_api="blas"):
        real_clock, _threads._clock = _threads._clock, lambda: clock[0]
        try:
            with _threads.adaptive_blas_threads() as tuner:
                for step in range(steps):
                    used.append(tuner.threads)
                    clock[0] += cost(step, tuner.threads)
                    _threads.tick()
        finally:
            _threads._clock = real_clock
    return [cost(step, threads) for step, threads in enumerate(used)], used


@needs_blas
def test_an_idle_machine_keeps_the_usual_thread_count():
    # Two threads 1.25x faster, as measured for SGD's products on an idle 2-core machine.
    times, used = simulate(lambda step, threads: 1.0 if threads == 2 else 1.25)
    assert used.count(1) <= 0.03 * len(used)
    assert sum(times) <= 1.01 * 1500  # within 1% of always using 2 threads


@needs_blas
def test_busy_cores_get_one_thread_and_probing_costs_little():
    # Two threads 4x slower, one thread 1.5x: next to two busy processes.
    times, used = simulate(lambda step, threads: 1.5 if threads == 1 else 6.0)
    assert used.count(2) <= 0.02 * len(used)
    assert sum(times) <= 1.03 * 1.5 * 1500  # within 3% of always using 1 thread


@needs_blas
def test_the_choice_follows_the_machine_when_it_changes():
    def cost(step, threads):
        busy = 500 <= step < 1000  # busy in the middle third only
        return (1.5 if threads == 1 else 6.0) if busy else (1.25 if threads == 1 else 1.0)

    times, used = simulate(cost, steps=4000)
    assert used[500 + 40 : 1000].count(1) >= 0.95 * 460  # one thread soon after the cores
    assert sum(times[540:1000]) <= 1.05 * 1.5 * 460  # got busy, and probing costs little;
    free = used[1000 + _threads.MAX_WINDOW + 2 * _threads.PROBE :]  # their usual count again
    assert free.count(2) >= 0.95 * len(free)  # once they are free


def test_one_usual_thread_means_nothing_to_tune():
    times, used = simulate(lambda step, threads: 1.0, steps=100, usual=1)
    assert set(used) == {1}


def test_workers_share_the_cpus():
    # In a fresh process: the helper changes the process's BLAS setting for good.
    code = (
        "import os; from threadpoolctl import threadpool_info; "
        "from cs231n._threads import limit_blas_threads_for_workers as f; "
        "n = f(1); cpus = len(os.sched_getaffinity(0)); "
        "assert n == cpus and f(cpus + 1) == 1 and f(2) == max(1, cpus // 2), n; "
        "assert all(lib['num_threads'] == max(1, cpus // 2) "
        "for lib in threadpool_info() if lib['user_api'] == 'blas')"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        _threads.limit_blas_threads_for_workers(0)
