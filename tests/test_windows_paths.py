"""The loaders on Windows' ``os``, simulated on Linux by removing what Windows lacks.

Windows' ``os`` has no ``O_NONBLOCK`` and no ``O_NOFOLLOW``, and has ``O_BINARY``:
without it ``os.open`` opens in text mode, where CR LF becomes LF and Ctrl-Z ends
the file, which would corrupt a pickle. Here both attributes are deleted from ``os``,
a stand-in ``O_BINARY`` is added, and ``os.open`` is wrapped to check that every open
the loaders make asks for binary mode (the stand-in bit is taken off before the real
open). The loaded pixels are compared with the fixture's, computed independently.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from cifar_fixtures import CIFAR10_CLASSES, write_cifar_batch, write_cifar_meta

from cs231n.classifiers import Softmax
from cs231n.data_utils import load_CIFAR10, load_CIFAR_batch, load_dataset

FAKE_O_BINARY = 1 << 29  # no Linux open flag uses this bit
POSIX_ONLY = {"O_NONBLOCK": os.O_NONBLOCK, "O_NOFOLLOW": os.O_NOFOLLOW}


@pytest.fixture
def windows_os(monkeypatch):
    """``os`` as Windows has it; yields the flags of every ``os.open`` made meanwhile."""
    opened: list[int] = []
    real_open = os.open

    def windows_open(path, flags, *args, **kwargs):
        opened.append(flags)
        assert flags & FAKE_O_BINARY, f"{path} opened without O_BINARY (text mode on Windows)"
        return real_open(path, flags & ~FAKE_O_BINARY, *args, **kwargs)

    for name in POSIX_ONLY:
        monkeypatch.delattr(os, name)
    monkeypatch.setattr(os, "O_BINARY", FAKE_O_BINARY, raising=False)
    monkeypatch.setattr(os, "open", windows_open)
    yield opened


def pixel(i: int, r: int, c: int, ch: int, batch: int) -> int:
    """A known pixel value; every byte value occurs, CR (13), LF (10) and Ctrl-Z (26) too."""
    return (batch * 101 + i * 53 + ch * 29 + r * 32 - 3 * c) % 256  # 13 then 10: CR LF


def rows(n: int, batch: int) -> np.ndarray:
    """CIFAR rows from the format's description: 1024 R, 1024 G, 1024 B, row-major."""
    data = np.zeros((n, 3072), dtype=np.uint8)
    for i in range(n):
        for ch in range(3):
            for r in range(32):
                for c in range(32):
                    data[i, ch * 1024 + r * 32 + c] = pixel(i, r, c, ch, batch)
    return data


def expected_images(n: int, batch: int) -> np.ndarray:
    """(n, 32, 32, 3) images, pixel by pixel from the same formula."""
    X = np.empty((n, 32, 32, 3))
    for i in range(n):
        for r in range(32):
            for c in range(32):
                for ch in range(3):
                    X[i, r, c, ch] = pixel(i, r, c, ch, batch)
    return X


def labels(n: int, batch: int) -> list[int]:
    return [(3 * i + batch) % 10 for i in range(n)]


@pytest.fixture(scope="module")
def cifar_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("win") / "cifar-10-batches-py"
    folder.mkdir()
    for b in range(1, 6):
        write_cifar_batch(folder / f"data_batch_{b}", rows(2, b), labels(2, b))
    write_cifar_batch(folder / "test_batch", rows(3, 0), labels(3, 0), "testing batch 1 of 1")
    write_cifar_meta(folder / "batches.meta")
    return folder


def test_the_fixture_holds_the_bytes_text_mode_would_corrupt(cifar_folder):
    raw = (cifar_folder / "data_batch_1").read_bytes()
    assert b"\r\n" in raw and b"\x1a" in raw


def test_load_cifar_batch_on_windows_os(windows_os, cifar_folder):
    assert not hasattr(os, "O_NONBLOCK") and not hasattr(os, "O_NOFOLLOW")
    X, y = load_CIFAR_batch(cifar_folder / "test_batch")
    np.testing.assert_array_equal(X, expected_images(3, 0))
    assert y.tolist() == labels(3, 0)
    assert len(windows_os) == 1


def test_load_cifar10_and_load_dataset_on_windows_os(windows_os, cifar_folder, monkeypatch):
    Xtr, ytr, Xte, yte = load_CIFAR10(cifar_folder)
    expected = np.concatenate([expected_images(2, b) for b in range(1, 6)])
    np.testing.assert_array_equal(Xtr, expected)
    assert ytr.tolist() == sum((labels(2, b) for b in range(1, 6)), [])
    np.testing.assert_array_equal(Xte, expected_images(3, 0))
    assert yte.tolist() == labels(3, 0)
    assert len(windows_os) == 6  # one open per batch, each in binary mode

    monkeypatch.setenv("CIFAR10_DIR", str(cifar_folder))
    ds = load_dataset("cifar10", verbose=False)
    assert ds.class_names == CIFAR10_CLASSES  # batches.meta, read the same way
    np.testing.assert_array_equal(ds.X_train, expected)
    assert len(windows_os) == 6 + 7


# W holds the bytes text mode would change: 13.0 and 10.0 as float64 start with them
W = np.array([[13.0, 10.0, 26.0], [-0.5, 1e-300, 2.0 / 3]])


@pytest.fixture
def saved(tmp_path) -> Path:
    """A classifier file written before Windows' os is put in place."""
    clf = Softmax()
    clf.W = W.copy()
    clf.save(tmp_path / "model.npz")
    return tmp_path / "model.npz"


def test_saved_classifier_loads_on_windows_os(saved, windows_os):
    loaded = Softmax().load(saved)
    np.testing.assert_array_equal(loaded.W, W)
    assert len(windows_os) == 1, "load() should read the file with one binary os.open"
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_array_equal(loaded.predict(X), np.argmax(X @ W, axis=1))


def test_classifier_saves_and_loads_on_windows_os(windows_os, tmp_path, monkeypatch):
    # save() writes through tempfile.mkstemp, whose flags tempfile works out once, at
    # import; on Windows they include O_BINARY, so give them the stand-in bit here too.
    monkeypatch.setattr(tempfile, "_bin_openflags", tempfile._bin_openflags | FAKE_O_BINARY)
    clf = Softmax()
    clf.W = W.copy()
    clf.save(tmp_path / "model")
    np.testing.assert_array_equal(Softmax().load(tmp_path / "model").W, W)
    assert len(windows_os) == 2  # the write and the read, both binary


def test_a_loader_that_used_posix_flags_would_fail_here(windows_os, tmp_path):
    # The oracle for the fixture itself: code written as the old loader was breaks.
    path = tmp_path / "f"
    path.write_bytes(b"x")
    with pytest.raises(AttributeError, match="O_NONBLOCK"):
        os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with pytest.raises(AssertionError, match="without O_BINARY"):
        os.open(path, os.O_RDONLY)
