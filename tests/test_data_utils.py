"""Tests for cs231n.data_utils: CIFAR-10 pickles (safe loading), Fashion-MNIST, splits.

The CIFAR-10 fixtures come from cifar_fixtures.py, which writes the real files'
Python 2 opcodes. Oracles: pixel values computed from the documented row layout by
explicit loops, the bundled IDX files decoded by hand, and long-double arithmetic.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import pickle
import pickletools
import shutil
import struct
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from cifar_fixtures import (
    CIFAR10_CLASSES,
    Py2Str,
    make_learnable_images,
    py2_dumps,
    write_cifar_batch,
    write_cifar_folder,
)

from cs231n import _datasets, data_utils
from cs231n.data_utils import (
    Dataset,
    UnsafePickleError,
    load_CIFAR10,
    load_CIFAR_batch,
    load_dataset,
    load_fashion_mnist,
    make_splits,
    preprocess,
)

FASHION_DIR = data_utils.REPO_ROOT / "datasets" / "fashion-mnist"


def pixel(i: int, r: int, c: int, ch: int) -> int:
    """A value that differs when image, row, column or channel are mixed up."""
    return (i * 37 + ch * 85 + r * 7 + c * 3) % 256


def hand_made_rows(n: int) -> np.ndarray:
    """CIFAR rows built from the format's description: 1024 R, 1024 G, 1024 B, row-major."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    for i in range(n):
        for ch in range(3):
            for r in range(32):
                for c in range(32):
                    data[i, ch * 1024 + r * 32 + c] = pixel(i, r, c, ch)
    return data


# --------------------------------------------------------------------------------------
# The fixtures are what Python 2 wrote
# --------------------------------------------------------------------------------------


def test_fixture_uses_python2_opcodes_and_names(tmp_path):
    path = write_cifar_batch(tmp_path / "b", hand_made_rows(2), [3, 4])
    ops = list(pickletools.genops(path.read_bytes()))
    names = {op.name for op, _, _ in ops}
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    assert {"SHORT_BINSTRING", "BINSTRING", "GLOBAL", "REDUCE", "BUILD", "NEWFALSE"} <= names
    # nothing Python 3 would have written
    assert not names & {"BINUNICODE", "SHORT_BINUNICODE", "BINBYTES", "STACK_GLOBAL", "FRAME"}
    globals_ = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    assert globals_ == ["numpy.core.multiarray _reconstruct", "numpy ndarray", "numpy dtype"]
    memo = [arg for op, arg, _ in ops if op.name == "BINPUT"]
    assert memo == list(range(1, len(memo) + 1))  # cPickle numbered its memo from 1
    keys = [arg for op, arg, _ in ops if op.name == "SHORT_BINSTRING"][:1]
    assert keys == ["batch_label"]


def test_fixture_loads_like_the_real_files_with_stock_pickle(tmp_path):
    # What the real batches are like: bytes keys under encoding='bytes',
    # str keys under 'latin1', and the default (ASCII) encoding cannot decode the pixels
    data = hand_made_rows(2)
    path = write_cifar_batch(tmp_path / "b", data, [3, 4])
    as_bytes = pickle.loads(path.read_bytes(), encoding="bytes")
    as_str = pickle.loads(path.read_bytes(), encoding="latin1")
    assert list(as_bytes) == [b"batch_label", b"labels", b"data", b"filenames"]
    assert list(as_str) == ["batch_label", "labels", "data", "filenames"]
    np.testing.assert_array_equal(as_str["data"], data)
    assert as_str["labels"] == [3, 4]
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(path.read_bytes())


def test_fixture_images_are_learnable(tmp_path):
    # A nearest-class-mean classifier must beat chance clearly on the fixture folder
    Xtr, ytr, Xte, yte = load_CIFAR10(write_cifar_folder(tmp_path, n_per_batch=40, n_test=100))
    means = np.stack([Xtr[ytr == k].mean(axis=0) for k in range(10)])
    distances = ((Xte[:, None] - means[None]) ** 2).sum(axis=(2, 3, 4))
    assert np.mean(distances.argmin(axis=1) == yte) > 0.5


# --------------------------------------------------------------------------------------
# load_CIFAR_batch / load_CIFAR10
# --------------------------------------------------------------------------------------


def test_batch_pixels_follow_the_channel_planes_and_row_major_layout(tmp_path):
    n = 3
    path = write_cifar_batch(tmp_path / "data_batch_1", hand_made_rows(n), [0, 5, 9])
    X, y = load_CIFAR_batch(path)
    assert X.shape == (n, 32, 32, 3) and X.dtype == np.float64
    assert y.dtype == np.int64 and y.tolist() == [0, 5, 9]
    for i in range(n):
        for r in range(32):
            for c in range(32):
                for ch in range(3):
                    assert X[i, r, c, ch] == pixel(i, r, c, ch), (i, r, c, ch)


def test_a_pure_red_image_is_red(tmp_path):
    row = np.zeros((1, 3072), dtype=np.uint8)
    row[0, :1024] = 255  # the red plane
    row[0, 1024 + 5 * 32 + 7] = 100  # green at row 5, column 7
    X, _ = load_CIFAR_batch(write_cifar_batch(tmp_path / "b", row, [1]))
    assert np.all(X[0, :, :, 0] == 255) and np.all(X[0, :, :, 2] == 0)
    assert X[0, 5, 7, 1] == 100 and X[0, :, :, 1].sum() == 100


def test_load_cifar10_reads_any_number_of_images_per_batch(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    counts = [3, 1, 4, 1, 5]
    expected_rows, expected_labels = [], []
    for b, n in enumerate(counts, start=1):
        data, labels = make_learnable_images(n, seed=b)
        write_cifar_batch(folder / f"data_batch_{b}", data, labels)
        expected_rows.append(data)
        expected_labels += labels
    test_data, test_labels = make_learnable_images(7, seed=99)
    write_cifar_batch(folder / "test_batch", test_data, test_labels)

    Xtr, ytr, Xte, yte = load_CIFAR10(folder)
    assert Xtr.shape == (sum(counts), 32, 32, 3) and Xte.shape == (7, 32, 32, 3)
    assert ytr.tolist() == expected_labels and yte.tolist() == test_labels
    rows = np.concatenate(expected_rows)
    for i in range(len(rows)):  # each image back to a row by the documented layout
        row = np.concatenate([Xtr[i, :, :, ch].ravel() for ch in range(3)])
        np.testing.assert_array_equal(row, rows[i])


def test_float32_is_loaded_without_a_float64_copy(tmp_path):
    data, labels = make_learnable_images(1000)
    path = write_cifar_batch(tmp_path / "b", data, labels)
    X64, _ = load_CIFAR_batch(path)
    tracemalloc.start()
    try:
        X32, _ = load_CIFAR_batch(path, dtype=np.float32)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert X32.dtype == np.float32 and X32.flags.c_contiguous
    np.testing.assert_array_equal(X32, X64)
    # a float64 intermediate alone would take 2 * X32.nbytes
    assert peak < 1.5 * X32.nbytes, (peak, X32.nbytes)


def test_load_cifar10_float32(tmp_path):
    folder = write_cifar_folder(tmp_path, n_per_batch=4, n_test=3)
    Xtr, ytr, Xte, yte = load_CIFAR10(folder, dtype=np.float32)
    Xtr64, _, Xte64, _ = load_CIFAR10(folder)
    assert Xtr.dtype == Xte.dtype == np.float32
    np.testing.assert_array_equal(Xtr, Xtr64)
    np.testing.assert_array_equal(Xte, Xte64)


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_python3_pickles_with_bytes_keys_load(tmp_path, protocol):
    data = hand_made_rows(2)
    if protocol == 2:  # Python 3 cannot write protocol 2 bytes without _codecs: do it as py2
        raw = py2_dumps({b"data": data, b"labels": [1, 2]})
    else:
        raw = pickle.dumps({b"data": data, b"labels": [1, 2]}, protocol=protocol)
    path = tmp_path / "b"
    path.write_bytes(raw)
    X, y = load_CIFAR_batch(path)
    assert y.tolist() == [1, 2]
    assert X[1, 4, 9, 2] == pixel(1, 4, 9, 2)


def test_python3_pickle_with_str_keys_loads(tmp_path):
    path = tmp_path / "b"
    path.write_bytes(pickle.dumps({"data": hand_made_rows(1), "labels": [7]}))
    X, y = load_CIFAR_batch(path)
    assert y.tolist() == [7] and X[0, 31, 0, 1] == pixel(0, 31, 0, 1)


# --------------------------------------------------------------------------------------
# Hostile files: their code never runs
# --------------------------------------------------------------------------------------


def _py2_call(module: str, name: str, arg: str) -> bytes:
    """Python 2 opcodes that call module.name(arg): GLOBAL, a 1-tuple, REDUCE."""
    s = arg.encode()
    return b"c" + f"{module}\n{name}\n".encode() + b"U" + bytes([len(s)]) + s + b"\x85R"


def hostile_payloads(marker: Path) -> dict[str, bytes]:
    """Pickles that create the directory ``marker`` when loaded by a normal unpickler."""
    m = str(marker)
    data = py2_dumps({Py2Str("batch_label"): Py2Str("x"), Py2Str("data"): hand_made_rows(1)})
    # a normal batch whose 'labels' entry is a call to os.mkdir, after the data was read
    in_batch = data[:-2] + b"U\x06labels" + _py2_call("os", "mkdir", m) + b"u."

    class Evil:
        def __reduce__(self):
            return (os.mkdir, (m,))

    code = f"__import__('os').mkdir({m!r})"
    return {
        "os.mkdir inside a batch (protocol 2)": in_batch,
        "os.mkdir (protocol 5, STACK_GLOBAL)": pickle.dumps({"data": Evil()}, protocol=5),
        "builtins.exec": b"\x80\x02" + _py2_call("__builtin__", "exec", code) + b".",
        "numpy's own runstring helper": b"\x80\x02"
        + b"cnumpy.testing._private.utils\nrunstring\n"
        + py2_dumps((Py2Str(code), {}))[2:-1]
        + b"R.",
        "protocol 0 INST": f"(S'{m}'\nios\nmkdir\n.".encode(),
    }


def test_hostile_payloads_are_live_under_plain_pickle(tmp_path):
    # the oracle for the next test: each payload does run code under pickle.loads
    for label, raw in hostile_payloads(tmp_path / "marker").items():
        try:
            pickle.loads(raw, encoding="latin1")
        except Exception:
            pass  # the payload ran before the result was rejected
        assert (tmp_path / "marker").exists(), label
        os.rmdir(tmp_path / "marker")


@pytest.mark.parametrize("label", list(hostile_payloads(Path("m"))))
def test_hostile_pickle_is_refused_and_never_runs(tmp_path, label):
    marker = tmp_path / "marker"
    path = tmp_path / "data_batch_1"
    path.write_bytes(hostile_payloads(marker)[label])
    with pytest.raises(UnsafePickleError) as err:
        load_CIFAR_batch(path)
    assert str(path) in str(err.value)
    assert "get_datasets.sh" in str(err.value)
    assert not marker.exists()


# --------------------------------------------------------------------------------------
# Truncated, corrupt, malformed and missing files
# --------------------------------------------------------------------------------------


def test_truncated_batches_name_the_file(tmp_path):
    raw = write_cifar_batch(tmp_path / "full", hand_made_rows(2), [1, 2]).read_bytes()
    path = tmp_path / "data_batch_3"
    for cut in [0, 1, 2, 10, 60, 150, 300, len(raw) // 2, len(raw) - 200, len(raw) - 1]:
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match="data_batch_3") as err:
            load_CIFAR_batch(path)
        assert "truncated or corrupt" in str(err.value), cut


def test_corrupt_batches_name_the_file(tmp_path):
    raw = write_cifar_batch(tmp_path / "full", hand_made_rows(2), [1, 2]).read_bytes()
    rng = np.random.default_rng(0)
    path = tmp_path / "test_batch"
    for trial in range(40):
        damaged = bytearray(raw)
        for at in rng.integers(0, 400, size=3):  # the opcodes live before the pixels
            damaged[at] = rng.integers(0, 256)
        path.write_bytes(bytes(damaged))
        try:
            load_CIFAR_batch(path)  # a flipped pixel or label can still be a valid batch
        except (ValueError, pickle.UnpicklingError) as err:
            assert str(path) in str(err), trial
    path.write_bytes(rng.integers(0, 256, 5000, dtype=np.uint8).tobytes())
    with pytest.raises((ValueError, pickle.UnpicklingError), match="test_batch"):
        load_CIFAR_batch(path)


@pytest.mark.parametrize(
    ("batch", "message"),
    [
        ({"labels": [1]}, "no \\['data'\\]"),
        ({"data": np.zeros((2, 100), np.uint8), "labels": [1, 2]}, "3072 columns"),
        ({"data": np.zeros((2, 3072), np.float64), "labels": [1, 2]}, "uint8"),
        ({"data": np.zeros((2, 3072), np.uint8), "labels": [1]}, "2 images but 1 labels"),
        ({"data": np.zeros((1, 3072), np.uint8), "labels": [10]}, "0..9"),
        ({"data": np.zeros((1, 3072), np.uint8), "labels": ["cat"]}, "list of ints"),
        ({"data": np.zeros((1, 3072), np.uint8), "labels": [1.5]}, "list of ints"),
        ([1, 2, 3], "expected a dict"),
    ],
)
def test_malformed_batches_say_what_is_wrong(tmp_path, batch, message):
    path = tmp_path / "data_batch_2"
    path.write_bytes(pickle.dumps(batch))
    with pytest.raises(ValueError, match=message) as err:
        load_CIFAR_batch(path)
    assert str(path) in str(err.value)


def test_missing_folder_says_how_to_get_it(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        load_CIFAR10(tmp_path / "nowhere")
    assert "./get_datasets.sh" in str(err.value) and "CIFAR10_DIR" in str(err.value)


def test_missing_batch_file_is_named(tmp_path):
    folder = write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    (folder / "data_batch_4").unlink()
    with pytest.raises(FileNotFoundError, match="data_batch_4"):
        load_CIFAR10(folder)


def test_an_emptied_batch_is_reported_as_empty(tmp_path):
    folder = write_cifar_folder(tmp_path, n_per_batch=2, n_test=2)
    (folder / "data_batch_3").write_bytes(b"")
    with pytest.raises(ValueError) as err:
        load_CIFAR10(folder)
    message = str(err.value)
    assert message.startswith(f"{folder / 'data_batch_3'} is empty (0 bytes)"), message
    assert "./get_datasets.sh" in message


@pytest.mark.parametrize("protocol", [3, 4, 5])
def test_fortran_order_and_big_endian_arrays_load(tmp_path, protocol):
    # Python 3 re-saves may hold a Fortran-order data array (protocol 5 writes it through
    # _frombuffer with order 'F') and labels as a big-endian integer array
    data = hand_made_rows(3)
    labels = np.array([9, 0, 4], dtype=">i2")
    path = tmp_path / "b"
    path.write_bytes(
        pickle.dumps({"data": np.asfortranarray(data), "labels": labels}, protocol=protocol)
    )
    X, y = load_CIFAR_batch(path)
    assert y.dtype == np.int64 and y.tolist() == [9, 0, 4]
    assert X[2, 7, 30, 1] == pixel(2, 7, 30, 1) and X[0, 0, 0, 0] == pixel(0, 0, 0, 0)


def test_loading_never_calls_numpys_reconstruction_or_the_stock_unpickler(tmp_path):
    # A profiler sees every call the loader makes from Python: numpy's pickle helpers
    # (_reconstruct, _frombuffer, __setstate__) and pickle's own load never appear, and
    # np.frombuffer, which builds the arrays, does (so the profiler does see C calls)
    data = hand_made_rows(2)
    py2 = write_cifar_batch(tmp_path / "py2", data, [1, 2])
    py3 = tmp_path / "py3"
    py3.write_bytes(pickle.dumps({b"data": data, b"labels": [1, 2]}, protocol=5))
    for path in (py2, py3):
        called: set[str] = set()

        def profile(frame, event, arg, called=called):
            if event == "c_call":
                called.add(arg.__name__)
            elif event == "call":
                called.add(frame.f_code.co_name)

        sys.setprofile(profile)
        try:
            X, y = load_CIFAR_batch(path)
        finally:
            sys.setprofile(None)
        assert y.tolist() == [1, 2] and X[1, 4, 9, 2] == pixel(1, 4, 9, 2)
        assert "frombuffer" in called
        forbidden = {"_reconstruct", "_frombuffer", "__setstate__", "load", "loads", "Unpickler"}
        assert not called & forbidden, called & forbidden


@pytest.mark.parametrize(
    "names",
    [["cat"] * 9, [["cat"]] * 10, ["x" * 200] * 10, "0123456789", [""] * 10],
)
def test_bad_label_names_in_batches_meta_are_refused(tmp_path, names):
    folder = write_cifar_folder(tmp_path, n_per_batch=1, n_test=1)
    (folder / "batches.meta").write_bytes(py2_dumps({Py2Str("label_names"): names}))
    with pytest.raises(ValueError, match="'label_names' should be a list of 10 short names"):
        _datasets.cifar10_class_names(folder, data_utils.CIFAR10_CLASSES)


# --------------------------------------------------------------------------------------
# Fashion-MNIST (bundled) and IDX parsing
# --------------------------------------------------------------------------------------


def _decode_idx_by_hand(path: Path, header: int) -> np.ndarray:
    return np.frombuffer(gzip.open(path).read()[header:], dtype=np.uint8)


def test_bundled_files_match_their_readme_checksums():
    readme = (FASHION_DIR / "README.md").read_text()
    for name, sha in data_utils.FASHION_MNIST_SHA256.items():
        assert hashlib.sha256((FASHION_DIR / name).read_bytes()).hexdigest() == sha
        assert sha in readme
    assert (FASHION_DIR / "LICENSE").read_text().startswith("The MIT License")


def test_fashion_mnist_split_is_per_class_in_file_order():
    images = _decode_idx_by_hand(FASHION_DIR / "t10k-images-idx3-ubyte.gz", 16)
    images = images.reshape(10000, 28, 28)
    labels = _decode_idx_by_hand(FASHION_DIR / "t10k-labels-idx1-ubyte.gz", 8)
    train_idx, test_idx = [], []
    seen = np.zeros(10, dtype=int)
    for i, c in enumerate(labels):  # first 800 of each class train, the rest test
        (train_idx if seen[c] < 800 else test_idx).append(i)
        seen[c] += 1

    X_train, y_train, X_test, y_test = load_fashion_mnist(dtype=np.float32)
    assert X_train.shape == (8000, 28, 28, 1) and X_test.shape == (2000, 28, 28, 1)
    assert X_train.dtype == np.float32 and y_train.dtype == np.int64
    np.testing.assert_array_equal(y_train, labels[train_idx])
    np.testing.assert_array_equal(y_test, labels[test_idx])
    np.testing.assert_array_equal(X_train[..., 0], images[train_idx])
    np.testing.assert_array_equal(X_test[..., 0], images[test_idx])
    assert np.bincount(y_test).tolist() == [200] * 10


def _write_gz(path: Path, payload: bytes) -> Path:
    path.write_bytes(gzip.compress(payload))
    return path


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"\x01\x00\x08\x01" + struct.pack(">I", 2) + b"ab", "two zero bytes"),
        (b"\x00\x00\x0d\x01" + struct.pack(">I", 2) + b"abcdefgh", "type code 0x0d"),
        (b"\x00\x00\x08\x03" + struct.pack(">II", 2, 2), "truncated"),
        (b"\x00\x00\x08\x02" + struct.pack(">II", 2, 3) + b"abcde", "declares \\(2, 3\\)"),
        (b"\x00\x00\x08\x01" + struct.pack(">I", 2) + b"abc", "holds 3"),
        (b"\x00\x00", "two zero bytes"),
        (b"\x00\x00\x08\x03" + struct.pack(">III", 2**32 - 1, 2**32 - 1, 2**32 - 1), "declares"),
    ],
)
def test_bad_idx_headers_are_explained(tmp_path, payload, message):
    path = _write_gz(tmp_path / "x-idx.gz", payload)
    with pytest.raises(ValueError, match=message) as err:
        _datasets.read_idx(path)
    assert str(path) in str(err.value)


def test_idx_reads_big_endian_dimensions(tmp_path):
    values = bytes((7 * k) % 256 for k in range(2 * 3 * 300))
    payload = b"\x00\x00\x08\x03" + struct.pack(">III", 2, 3, 300) + values
    array = _datasets.read_idx(_write_gz(tmp_path / "x.gz", payload))
    assert array.shape == (2, 3, 300)  # 300 > 255: a little-endian read would differ
    assert array[1, 2, 299] == values[-1] and array[0, 1, 5] == values[300 + 5]


def test_not_gzip_and_bad_checksum_are_explained(tmp_path):
    path = tmp_path / "x.gz"
    path.write_bytes(b"not gzip at all")
    with pytest.raises(ValueError, match="not a valid gzip"):
        _datasets.read_idx(path)
    folder = tmp_path / "fashion-mnist"
    shutil.copytree(FASHION_DIR, folder)
    damaged = bytearray((folder / "t10k-labels-idx1-ubyte.gz").read_bytes())
    damaged[-20] ^= 1
    (folder / "t10k-labels-idx1-ubyte.gz").write_bytes(bytes(damaged))
    with pytest.raises(ValueError, match="sha256") as err:
        load_fashion_mnist(folder)
    assert "t10k-labels-idx1-ubyte.gz" in str(err.value)
    (folder / "t10k-images-idx3-ubyte.gz").unlink()
    with pytest.raises(FileNotFoundError, match="t10k-images"):
        load_fashion_mnist(folder)


# --------------------------------------------------------------------------------------
# The dataset switch
# --------------------------------------------------------------------------------------


@pytest.fixture
def fake_repo(tmp_path, monkeypatch):
    """A datasets/ folder with the bundled Fashion-MNIST and no CIFAR-10."""
    datasets = tmp_path / "repo" / "datasets"
    datasets.mkdir(parents=True)
    (datasets / "fashion-mnist").symlink_to(FASHION_DIR)
    monkeypatch.setattr(data_utils, "REPO_ROOT", datasets.parent)
    monkeypatch.setattr(data_utils, "DATASETS_DIR", datasets)
    monkeypatch.delenv("CS231N_DATASET", raising=False)
    monkeypatch.delenv("CIFAR10_DIR", raising=False)
    return datasets


def test_auto_without_cifar_uses_fashion_mnist_and_says_why(fake_repo, capsys):
    ds = load_dataset()
    out = capsys.readouterr().out
    assert ds.name == "fashion-mnist" and ds.image_shape == (28, 28, 1)
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"
    assert ds.X_train.shape == (8000, 28, 28, 1) and ds.X_train.dtype == np.float64
    assert 0 <= ds.X_train.min() and ds.X_train.max() == 255
    assert "fashion-mnist" in out and "datasets/cifar-10-batches-py" in out
    assert "get_datasets.sh" in ds.reason and ds.reason in out
    assert str(fake_repo.parent) not in out  # no absolute paths in notebook output
    load_dataset()
    assert capsys.readouterr().out == out  # deterministic


def test_auto_with_cifar_in_datasets_uses_it(fake_repo, capsys):
    write_cifar_folder(fake_repo, n_per_batch=3, n_test=2)
    ds = load_dataset(dtype=np.float32)
    out = capsys.readouterr().out
    assert ds.name == "cifar10" and ds.image_shape == (32, 32, 3)
    assert ds.class_names == CIFAR10_CLASSES
    assert ds.X_train.shape == (15, 32, 32, 3) and ds.X_train.dtype == np.float32
    assert "found in datasets/cifar-10-batches-py" in out
    assert str(fake_repo) not in out


def test_cifar10_dir_points_elsewhere(fake_repo, tmp_path, monkeypatch, capsys):
    folder = write_cifar_folder(tmp_path / "elsewhere", n_per_batch=2, n_test=1)
    monkeypatch.setenv("CIFAR10_DIR", str(folder))
    ds = load_dataset()
    assert ds.name == "cifar10" and len(ds.y_train) == 10 and len(ds.y_test) == 1
    out = capsys.readouterr().out
    assert "CIFAR10_DIR (cifar-10-batches-py)" in out and str(tmp_path) not in out
    monkeypatch.setenv("CIFAR10_DIR", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match="CIFAR10_DIR"):
        load_dataset()


def test_explicit_names_and_environment(fake_repo, monkeypatch, capsys):
    monkeypatch.setenv("CS231N_DATASET", "cifar10")
    with pytest.raises(FileNotFoundError, match="get_datasets.sh"):
        load_dataset()
    write_cifar_folder(fake_repo, n_per_batch=2, n_test=2)
    assert load_dataset(verbose=False).name == "cifar10"
    monkeypatch.setenv("CS231N_DATASET", "fashion-mnist")
    ds = load_dataset(verbose=False)  # even though CIFAR-10 is there
    assert ds.name == "fashion-mnist" and ds.reason == "CS231N_DATASET=fashion-mnist"
    assert load_dataset("cifar10", verbose=False).name == "cifar10"  # the argument wins
    assert capsys.readouterr().out == ""


def _cifar10_dir_error(monkeypatch, value: str, dataset: str) -> str:
    monkeypatch.setenv("CIFAR10_DIR", value)
    monkeypatch.setenv("CS231N_DATASET", dataset)
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(verbose=False)
    return str(err.value)


@pytest.mark.parametrize("dataset", ["auto", "cifar10"])
def test_cifar10_dir_at_the_datasets_root_or_home_says_so(
    fake_repo, tmp_path, monkeypatch, dataset
):
    # Neither is an incomplete CIFAR-10 folder, and neither must be deleted
    home = tmp_path / "home"
    home.mkdir()
    (home / "notes.txt").write_text("keep me")
    monkeypatch.setenv("HOME", str(home))
    for value, where in [(str(fake_repo), fake_repo), ("~", home)]:
        message = _cifar10_dir_error(monkeypatch, value, dataset)
        assert f"CIFAR10_DIR is set to {value!r}" in message
        assert f"{where} holds none of the CIFAR-10 batch files" in message, message
        assert "incomplete" not in message and "Delete" not in message, message
    folder = write_cifar_folder(fake_repo)
    message = _cifar10_dir_error(monkeypatch, str(fake_repo), dataset)
    assert f"point at that folder itself, {folder}" in message, message
    assert (home / "notes.txt").exists() and (folder / "data_batch_1").exists()


@pytest.mark.parametrize("dataset", ["auto", "cifar10"])
def test_cifar10_dir_naming_a_file_says_it_is_a_file(fake_repo, tmp_path, monkeypatch, dataset):
    path = write_cifar_batch(tmp_path / "data_batch_1", hand_made_rows(1), [1])
    message = _cifar10_dir_error(monkeypatch, str(path), dataset)
    assert f"{path} is a file, not a folder" in message, message
    assert "does not exist" not in message and "not found" not in message


def test_relative_cifar10_dir_says_where_it_was_resolved(fake_repo, tmp_path, monkeypatch):
    # The notebook's kernel runs in notebooks/: a path relative to the repository fails
    # there, and the message says against which folder it was resolved and what to set
    folder = write_cifar_folder(fake_repo, n_per_batch=1, n_test=1)
    notebooks = fake_repo.parent / "notebooks"
    notebooks.mkdir()
    monkeypatch.chdir(notebooks)
    message = _cifar10_dir_error(monkeypatch, "datasets/cifar-10-batches-py", "auto")
    assert "relative path" in message and f"current folder {notebooks}" in message, message
    assert f"giving {notebooks / 'datasets/cifar-10-batches-py'}" in message, message
    assert f"CIFAR10_DIR={folder}" in message, message
    monkeypatch.chdir(fake_repo.parent)  # from the repository the same value works
    assert load_dataset(verbose=False).name == "cifar10"


def test_incomplete_folders_get_the_right_remedy(fake_repo, tmp_path, monkeypatch):
    mine = write_cifar_folder(tmp_path / "mine", n_per_batch=1, n_test=1)
    (mine / "data_batch_4").unlink()
    message = _cifar10_dir_error(monkeypatch, str(mine), "auto")
    assert f"{mine} is an incomplete CIFAR-10 folder: it lacks data_batch_4" in message
    assert "rm -r" not in message  # a folder the user keeps elsewhere is not ours to delete
    monkeypatch.delenv("CIFAR10_DIR")
    default = write_cifar_folder(fake_repo, n_per_batch=1, n_test=1)
    (default / "test_batch").unlink()
    with pytest.raises(FileNotFoundError) as err:
        load_dataset(verbose=False)
    assert "lacks test_batch" in str(err.value)
    assert "rm -r datasets/cifar-10-batches-py" in str(err.value)


@pytest.mark.parametrize("name", ["mnist", "cifar100", "fashion_mnist"])
def test_unknown_dataset_lists_the_valid_names(fake_repo, monkeypatch, name):
    with pytest.raises(ValueError, match="auto, cifar10, fashion-mnist"):
        load_dataset(name)
    monkeypatch.setenv("CS231N_DATASET", name)
    with pytest.raises(ValueError, match=name):
        load_dataset()


# --------------------------------------------------------------------------------------
# make_splits and preprocess
# --------------------------------------------------------------------------------------


def numbered_dataset(n_train: int, n_test: int, shape=(2, 3, 1), dtype=np.float64) -> Dataset:
    """Image i of the training set is filled with the value i (test: 1000 + i)."""
    X_train = np.broadcast_to(
        np.arange(n_train, dtype=dtype)[:, None, None, None], (n_train, *shape)
    )
    X_test = np.broadcast_to(
        1000 + np.arange(n_test, dtype=dtype)[:, None, None, None], (n_test, *shape)
    )
    return Dataset(
        "toy", [f"c{k}" for k in range(10)], shape,
        X_train.copy(), np.arange(n_train) % 10, X_test.copy(), np.arange(n_test) % 10, "test",
    )  # fmt: skip


def test_splits_follow_cs231n_when_the_data_is_big_enough(capsys):
    ds = numbered_dataset(60, 9)
    s = make_splits(ds, num_training=40, num_validation=10, num_test=5, num_dev=8)
    assert s["X_train"][:, 0, 0, 0].tolist() == list(range(40))
    assert s["X_val"][:, 0, 0, 0].tolist() == list(range(40, 50))
    assert s["X_test"][:, 0, 0, 0].tolist() == [1000, 1001, 1002, 1003, 1004]
    dev = s["X_dev"][:, 0, 0, 0].astype(int)
    assert len(set(dev)) == 8 and all(0 <= i < 40 for i in dev)
    assert dev.tolist() == np.random.default_rng(0).choice(40, 8, replace=False).tolist()
    np.testing.assert_array_equal(s["y_dev"], dev % 10)
    assert capsys.readouterr().out == "Split sizes: train 40, validation 10, test 5, dev 8\n"
    again = make_splits(ds, num_training=40, num_validation=10, num_test=5, num_dev=8)
    np.testing.assert_array_equal(again["X_dev"], s["X_dev"])


def test_splits_shrink_in_proportion_on_fashion_mnist_sizes(capsys):
    s = make_splits(numbered_dataset(8000, 2000, shape=(1, 1, 1)))
    sizes = {k: len(v) for k, v in s.items() if k.startswith("y_")}
    assert sizes == {"y_train": 7840, "y_val": 160, "y_test": 1000, "y_dev": 80}
    out = capsys.readouterr().out
    assert "fewer than the 50000 asked for" in out and "x0.16" in out
    assert "train 7840, validation 160, test 1000, dev 80" in out


def test_splits_never_crash_on_small_datasets():
    rng = np.random.default_rng(1)
    for _ in range(200):
        n_train, n_test = int(rng.integers(2, 40)), int(rng.integers(0, 10))
        asked = [int(k) for k in rng.integers(0, 60, size=4)]
        asked[0] = max(asked[0], 1)
        s = make_splits(numbered_dataset(n_train, n_test), *asked, verbose=False)
        n_tr, n_val = len(s["y_train"]), len(s["y_val"])
        assert n_tr >= 1 and n_tr + n_val <= n_train
        assert (n_val >= 1) == (asked[1] >= 1)
        assert len(s["y_test"]) == min(asked[2], n_test)
        assert len(s["y_dev"]) <= n_tr and len(set(s["X_dev"][:, 0, 0, 0])) == len(s["y_dev"])
        for k in ("train", "val", "test", "dev"):
            assert len(s[f"X_{k}"]) == len(s[f"y_{k}"])


def test_split_arguments_are_checked():
    ds = numbered_dataset(1, 1)
    with pytest.raises(ValueError, match="too few"):
        make_splits(ds)
    with pytest.raises(ValueError, match="num_dev"):
        make_splits(numbered_dataset(10, 1), num_dev=-1)
    with pytest.raises(ValueError, match="num_training"):
        make_splits(numbered_dataset(10, 1), num_training=2.5)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_preprocess_matches_a_long_double_computation(dtype, capsys):
    rng = np.random.default_rng(3)
    ds = numbered_dataset(30, 6, shape=(4, 3, 2), dtype=dtype)
    ds.X_train[:] = rng.integers(0, 256, ds.X_train.shape)
    ds.X_test[:] = rng.integers(0, 256, ds.X_test.shape)
    splits = make_splits(ds, 20, 5, 6, 4, verbose=False)
    before = {k: v.copy() for k, v in splits.items()}
    out = preprocess(splits)

    train = [np.array(x, dtype=np.longdouble).ravel() for x in splits["X_train"]]
    mean = sum(train) / len(train)
    for k in ("train", "val", "test", "dev"):
        X = out[f"X_{k}"]
        assert X.dtype == dtype and X.shape == (len(splits[f"X_{k}"]), 4 * 3 * 2 + 1)
        for i, image in enumerate(splits[f"X_{k}"]):
            expected = np.append(np.array(image, dtype=np.longdouble).ravel() - mean, 1)
            np.testing.assert_allclose(
                X[i], expected, rtol=0, atol=1e-12 if dtype == np.float64 else 1e-4
            )
        assert out[f"y_{k}"] is splits[f"y_{k}"]
        np.testing.assert_array_equal(splits[f"X_{k}"], before[f"X_{k}"])  # input untouched
    assert out["mean_image"].shape == (4, 3, 2)
    np.testing.assert_allclose(
        out["mean_image"].ravel(), mean, atol=1e-12 if dtype == np.float64 else 1e-4
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed == [
        "X_train: (20, 25), y_train: (20,)",
        "X_val: (5, 25), y_val: (5,)",
        "X_test: (6, 25), y_test: (6,)",
        "X_dev: (4, 25), y_dev: (4,)",
        "mean_image: (4, 3, 2)",
    ]


def test_preprocess_float32_keeps_precision_of_a_float64_mean():
    # 49,000 non-integer pixel values per column: a float32 running sum over the images
    # drifts by ~0.04 (numpy only sums pairwise along a contiguous axis), float64 does not
    ds = numbered_dataset(49001, 1, shape=(1, 1, 3), dtype=np.float32)
    rng = np.random.default_rng(0)
    ds.X_train[:] = rng.integers(0, 256, ds.X_train.shape) + np.float32(0.3)
    s = preprocess(make_splits(ds, 49000, 1, 1, 1, verbose=False), verbose=False)
    assert s["X_train"].dtype == s["mean_image"].dtype == np.float32
    oracle = ds.X_train[:49000].astype(np.float64).mean(axis=0)
    np.testing.assert_allclose(s["mean_image"], oracle, rtol=1e-7)


def test_preprocess_rejects_incomplete_or_mismatched_splits():
    s = make_splits(numbered_dataset(20, 5), 10, 5, 5, 3, verbose=False)
    with pytest.raises(ValueError, match="X_dev"):
        preprocess({k: v for k, v in s.items() if k != "X_dev"})
    s["X_val"] = s["X_val"][:, :1]
    with pytest.raises(ValueError, match="X_val"):
        preprocess(s)


def test_preprocess_on_the_bundled_dataset_has_785_columns(fake_repo):
    out = preprocess(make_splits(load_dataset(verbose=False), verbose=False), verbose=False)
    assert out["X_train"].shape == (7840, 785)
    assert np.all(out["X_train"][:, -1] == 1)
    np.testing.assert_allclose(out["X_train"][:, :-1].mean(axis=0), 0, atol=1e-9)
