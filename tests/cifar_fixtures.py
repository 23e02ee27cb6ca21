"""CIFAR-10 fixtures written byte for byte the way the real batches were written.

The real ``cifar-10-batches-py`` files were written by Python 2's ``cPickle`` at
protocol 2, holding a dict of Python 2 ``str`` keys, a numpy ``uint8`` array and
lists. Python 3 cannot produce that stream with ``pickle.dumps`` (it writes
``BINUNICODE`` keys, ``numpy._core`` module names and wraps bytes in
``_codecs.encode``), so this module assembles the opcodes itself. What it emits,
and why each opcode is the one Python 2 used:

====================  ===========================================================
opcode                used for
====================  ===========================================================
``PROTO 2``           header: cPickle at protocol 2 (``\\x80\\x02``)
``EMPTY_DICT``        the batch dict, filled by ``MARK ... SETITEMS`` (a dict of
                      one entry: ``k v SETITEM``)
``SHORT_BINSTRING``   every Python 2 ``str`` under 256 bytes: the keys
                      (``'data'``, ``'labels'``, ...), ``'batch_label'``'s value,
                      file names, dtype code ``'u1'``, byte order ``'|'``.
                      Loading these needs ``encoding='latin1'`` (-> ``str``) or
                      ``encoding='bytes'`` (-> ``bytes``); that is why a plain
                      ``pickle.load`` of a real batch fails under Python 3.
``BINSTRING``         a Python 2 ``str`` of 256 bytes or more: the raw pixel
                      buffer (``N * 3072`` bytes, 4-byte little-endian length)
``GLOBAL``            ``numpy.core.multiarray _reconstruct``, ``numpy ndarray``
                      and ``numpy dtype``: the names Python 2 numpy wrote (numpy
                      2 renamed the module ``numpy._core``)
``BININT1/2``, ``BININT``  ints: labels, shape, dtype and array state fields
``TUPLE1/2/3``,       small tuples; ``MARK ... TUPLE`` for the 8-field dtype
``MARK ... TUPLE``    state ``(3, '|', None, None, None, -1, -1, 0)`` and the
                      5-field array state ``(1, shape, dtype, False, raw)``
``REDUCE``, ``BUILD`` ``_reconstruct(ndarray, (0,), 'b')`` then
                      ``ndarray.__setstate__``; ``dtype('u1', 0, 1)`` then
                      ``dtype.__setstate__`` (old numpy passed ints 0 and 1,
                      not bools, to ``dtype``)
``NONE``, ``NEWFALSE``  ``None`` fields of the dtype state; the array's
                      "is Fortran order" flag (a bool, so ``NEWFALSE``)
``EMPTY_LIST``,       the ``labels`` and ``filenames`` lists, in batches of
``APPENDS``/``APPEND``  1000 (``x APPEND`` for a lone last item, as cPickle did)
``BINPUT``/``BINGET`` memo marks, numbered from 1 as cPickle numbered them
``STOP``              end
====================  ===========================================================

Memo marks follow cPickle's rules as far as they matter here: numbering starts at
1, one-character strings and the temporary tuples built by ``__reduce__`` get no
mark. Which objects the real files memoised cannot change what a loader builds;
the opcode set above is what a loader has to handle.

Key order follows the real files: ``batch_label, labels, data, filenames`` for a
batch and ``num_cases_per_batch, label_names, num_vis`` for ``batches.meta``.

Run ``python tests/cifar_fixtures.py OUT_DIR [N_PER_BATCH [N_TEST]]`` to write a fake
``OUT_DIR/cifar-10-batches-py`` (for example to point ``CIFAR10_DIR`` at it); tests
import ``write_cifar_folder`` instead.
"""

from __future__ import annotations

import struct
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

CIFAR10_CLASSES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
BATCH_FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]


class Py2Str:
    """Marks text that Python 2 held as ``str`` (a byte string): pickled as BINSTRING."""

    def __init__(self, value: str | bytes):
        self.value = value.encode("latin1") if isinstance(value, str) else bytes(value)


class _Py2Pickler:
    """Writes protocol-2 opcodes the way Python 2's cPickle did (see module docstring)."""

    def __init__(self) -> None:
        self.out = bytearray(b"\x80\x02")  # PROTO 2
        self.next_memo = 1  # cPickle numbered its memo from 1
        self.memo: dict[object, int] = {}

    def dumps(self, obj: object) -> bytes:
        self.save(obj)
        self.out += b"."  # STOP
        return bytes(self.out)

    def put(self, key: object = None) -> None:
        index = self.next_memo
        self.next_memo += 1
        if key is not None:
            self.memo[key] = index
        self.out += b"q" + bytes([index]) if index < 256 else b"r" + struct.pack("<I", index)

    def save_global(self, module: str, name: str) -> None:
        key = ("global", module, name)
        if key in self.memo:
            self.out += b"h" + bytes([self.memo[key]])  # BINGET
            return
        self.out += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        self.put(key)

    def save(self, obj: object) -> None:
        if obj is None:
            self.out += b"N"
        elif obj is True or obj is False:
            self.out += b"\x88" if obj else b"\x89"  # NEWTRUE / NEWFALSE
        elif isinstance(obj, int | np.integer):
            self.save_int(int(obj))
        elif isinstance(obj, str | bytes | Py2Str):
            self.save_str(obj if isinstance(obj, Py2Str) else Py2Str(obj))
        elif isinstance(obj, tuple):
            self.save_tuple(obj)
        elif isinstance(obj, list):
            self.out += b"]"  # EMPTY_LIST
            self.put()
            for start in range(0, len(obj), 1000):
                batch = obj[start : start + 1000]
                if len(batch) == 1:
                    self.save(batch[0])
                    self.out += b"a"  # APPEND
                else:
                    self.out += b"("
                    for item in batch:
                        self.save(item)
                    self.out += b"e"  # APPENDS
        elif isinstance(obj, dict):
            self.out += b"}"  # EMPTY_DICT
            self.put()
            items = list(obj.items())
            if len(items) == 1:  # cPickle's shortcut for a one-entry dict
                self.save(items[0][0])
                self.save(items[0][1])
                self.out += b"s"  # SETITEM
                return
            for start in range(0, len(items), 1000):
                self.out += b"("
                for key, value in items[start : start + 1000]:
                    self.save(key)
                    self.save(value)
                self.out += b"u"  # SETITEMS
        elif isinstance(obj, np.ndarray):
            self.save_ndarray(obj)
        else:
            raise TypeError(f"the Python 2 fixture pickler cannot write {type(obj).__name__}")

    def save_int(self, value: int) -> None:
        if 0 <= value < 256:
            self.out += b"K" + bytes([value])  # BININT1
        elif 0 <= value < 65536:
            self.out += b"M" + struct.pack("<H", value)  # BININT2
        elif -(2**31) <= value < 2**31:
            self.out += b"J" + struct.pack("<i", value)  # BININT
        else:
            raise ValueError(f"{value} needs a Python 2 long; CIFAR files hold none")

    def save_str(self, s: Py2Str) -> None:
        raw = s.value
        if len(raw) < 256:
            self.out += b"U" + bytes([len(raw)]) + raw  # SHORT_BINSTRING
        else:
            self.out += b"T" + struct.pack("<I", len(raw)) + raw  # BINSTRING
        if len(raw) >= 2:  # cPickle never memoised strings shorter than 2
            self.put()

    def save_tuple(self, items: tuple) -> None:
        if 1 <= len(items) <= 3:
            for item in items:
                self.save(item)
            self.out += {1: b"\x85", 2: b"\x86", 3: b"\x87"}[len(items)]  # TUPLE1..3
        else:
            self.out += b"("
            for item in items:
                self.save(item)
            self.out += b"t"  # TUPLE

    def save_dtype(self, dtype: np.dtype) -> None:
        if dtype.kind not in "uif" or dtype.hasobject:
            raise TypeError(f"the fixture pickler writes plain number dtypes, not {dtype}")
        # numpy of the Python 2 era: dtype(typestr, 0, 1) then __setstate__(8-tuple)
        self.save_global("numpy", "dtype")
        self.save_tuple((Py2Str(f"{dtype.kind}{dtype.itemsize}"), 0, 1))
        self.out += b"R"  # REDUCE
        self.put()
        order = "|" if dtype.itemsize == 1 else "<"
        self.save_tuple((3, Py2Str(order), None, None, None, -1, -1, 0))
        self.out += b"b"  # BUILD

    def save_ndarray(self, array: np.ndarray) -> None:
        array = np.ascontiguousarray(array)
        if array.dtype.itemsize > 1:
            array = array.astype(array.dtype.newbyteorder("<"))
        # ndarray.__reduce__ of Python 2 numpy: _reconstruct(ndarray, (0,), 'b')
        self.save_global("numpy.core.multiarray", "_reconstruct")
        self.save_global("numpy", "ndarray")
        self.save_tuple((0,))
        self.save(Py2Str("b"))
        self.out += b"\x87R"  # TUPLE3 REDUCE
        self.put()
        # ... then __setstate__((1, shape, dtype, is_fortran, raw bytes as a py2 str))
        self.out += b"("
        self.save(1)
        self.save_tuple(tuple(int(n) for n in array.shape))
        self.save_dtype(array.dtype)
        self.save(False)
        self.save(Py2Str(array.tobytes()))
        self.out += b"tb"  # TUPLE BUILD


def py2_dumps(obj: object) -> bytes:
    """Pickle ``obj`` as Python 2's cPickle did at protocol 2.

    Handles dict, list, tuple, int, bool, None, numpy number arrays, and text
    (``str``/``bytes``/``Py2Str``), which is written as a Python 2 ``str``.
    """
    return _Py2Pickler().dumps(obj)


def make_learnable_images(n: int, seed: int = 0) -> tuple[np.ndarray, list[int]]:
    """Images a linear classifier can learn: each class has its own colour and ramp.

    Returns
    -------
    data : (n, 3072) uint8, CIFAR row layout (1024 R, 1024 G, 1024 B, each row-major).
    labels : list of n ints in [0, 10), every class about n / 10 times, shuffled.
    """
    rng = np.random.default_rng(seed)
    labels = rng.permutation(np.arange(n) % 10)
    colours = np.array(
        [[200, 60, 60], [60, 200, 60], [60, 60, 200], [200, 200, 60], [200, 60, 200],
         [60, 200, 200], [130, 130, 130], [230, 150, 60], [60, 150, 230], [150, 60, 230]],
        dtype=np.float64,
    )  # fmt: skip
    ramp = np.linspace(-40.0, 40.0, 32)
    images = np.empty((n, 3, 32, 32))
    for i, c in enumerate(labels):
        # direction of the brightness ramp depends on the class, too
        pattern = ramp[None, :] if c % 2 else ramp[:, None]
        images[i] = colours[c][:, None, None] + pattern + rng.normal(0.0, 35.0, (3, 32, 32))
    data = np.clip(np.rint(images), 0, 255).astype(np.uint8).reshape(n, 3072)
    return data, [int(c) for c in labels]


def write_cifar_batch(
    path: Path,
    data: np.ndarray,
    labels: Sequence[int],
    batch_label: str = "training batch 1 of 5",
    filenames: Sequence[str] | None = None,
) -> Path:
    """Write one CIFAR-10 batch file: ``data`` (n, 3072) uint8 and ``labels`` (n ints)."""
    if filenames is None:
        filenames = [f"fixture_{i:06d}.png" for i in range(len(labels))]
    batch = {
        Py2Str("batch_label"): Py2Str(batch_label),
        Py2Str("labels"): [int(c) for c in labels],
        Py2Str("data"): np.asarray(data, dtype=np.uint8),
        Py2Str("filenames"): [Py2Str(f) for f in filenames],
    }
    path = Path(path)
    path.write_bytes(py2_dumps(batch))
    return path


def write_cifar_meta(path: Path, label_names: Sequence[str] = CIFAR10_CLASSES) -> Path:
    """Write ``batches.meta`` as the real one: cases per batch, label names, 3072."""
    meta = {
        Py2Str("num_cases_per_batch"): 10000,
        Py2Str("label_names"): [Py2Str(name) for name in label_names],
        Py2Str("num_vis"): 3072,
    }
    path = Path(path)
    path.write_bytes(py2_dumps(meta))
    return path


def write_cifar_folder(root: Path, n_per_batch: int = 20, n_test: int = 20, seed: int = 0) -> Path:
    """Write a complete ``root/cifar-10-batches-py`` folder with learnable images.

    Five training batches of ``n_per_batch`` images, a ``test_batch`` of ``n_test``
    and ``batches.meta``, all in the real files' Python 2 pickle format.

    Returns
    -------
    The path of the ``cifar-10-batches-py`` folder.
    """
    folder = Path(root) / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    data, labels = make_learnable_images(5 * n_per_batch + n_test, seed=seed)
    for b in range(5):
        rows = slice(b * n_per_batch, (b + 1) * n_per_batch)
        write_cifar_batch(
            folder / f"data_batch_{b + 1}",
            data[rows],
            labels[rows],
            f"training batch {b + 1} of 5",
        )
    rows = slice(5 * n_per_batch, None)
    write_cifar_batch(folder / "test_batch", data[rows], labels[rows], "testing batch 1 of 1")
    write_cifar_meta(folder / "batches.meta")
    return folder


if __name__ == "__main__":
    if not 2 <= len(sys.argv) <= 4:
        sys.exit(
            "usage: python tests/cifar_fixtures.py OUT_DIR [N_PER_BATCH [N_TEST]]\n"
            "writes OUT_DIR/cifar-10-batches-py (defaults: 1000 images per batch, 1000 test)"
        )
    sizes = [int(n) for n in sys.argv[2:]] + [1000] * (4 - len(sys.argv))
    print(write_cifar_folder(Path(sys.argv[1]), n_per_batch=sizes[0], n_test=sizes[1]))
