"""Load the assignment's images, split them and preprocess them.

Two datasets, one interface (``load_dataset``):

- **CIFAR-10** (``cifar10``): 32x32 colour images in 10 classes, downloaded by
  ``./get_datasets.sh`` into ``datasets/cifar-10-batches-py`` (or wherever the
  environment variable ``CIFAR10_DIR`` points).
- **Fashion-MNIST** (``fashion-mnist``): 28x28 greyscale images of clothes in 10
  classes. Its 10,000-image test split ships with the kit in ``datasets/fashion-mnist``
  so everything runs offline.

``CS231N_DATASET`` chooses: ``auto`` (the default) takes CIFAR-10 when it has been
downloaded and the bundled Fashion-MNIST otherwise; ``cifar10`` or ``fashion-mnist``
insist on one.

The CIFAR-10 batches are Python 2 pickles. Unpickling can run arbitrary code, and
even numpy's own array helpers can be turned against the process, so the batches are
read by a small interpreter here that builds uint8 and integer arrays from bytes of
checked length and refuses everything else with a message naming the file.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import pickle
import pickletools
import stat
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

REPO_ROOT = Path(__file__).resolve().parent.parent
DATASETS_DIR = REPO_ROOT / "datasets"
DATASET_NAMES = ("auto", "cifar10", "fashion-mnist")

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
FASHION_MNIST_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]
# sha256 of the bundled files, as listed in datasets/fashion-mnist/README.md
FASHION_MNIST_SHA256 = {
    "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",  # noqa: E501
    "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",  # noqa: E501
}
_GET_CIFAR = "run ./get_datasets.sh to download CIFAR-10, or set CIFAR10_DIR to its folder"


@dataclass
class Dataset:
    """One dataset's raw images and labels, pixel values 0..255.

    Attributes
    ----------
    name : 'cifar10' or 'fashion-mnist'.
    class_names : the C class names; label ``k`` means ``class_names[k]``.
    image_shape : (H, W, C): (32, 32, 3) for CIFAR-10, (28, 28, 1) for Fashion-MNIST.
    X_train : (N_train, H, W, C) images.
    y_train : (N_train,) int64 labels in [0, C).
    X_test : (N_test, H, W, C) images.
    y_test : (N_test,) int64 labels.
    reason : why this dataset was picked (printed by ``load_dataset``).
    """

    name: str
    class_names: list[str]
    image_shape: tuple[int, int, int]
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    reason: str

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, image_shape={self.image_shape}, "
            f"X_train={self.X_train.shape} {self.X_train.dtype}, "
            f"X_test={self.X_test.shape} {self.X_test.dtype}, classes={len(self.class_names)})"
        )


# --------------------------------------------------------------------------------------
# CIFAR-10: Python 2 pickles, read without running them
# --------------------------------------------------------------------------------------
#
# A pickle is a program for a small stack machine, and the stock unpickler will call any
# function the file names and hand any state to any object's __setstate__. Even
# restricted to numpy's own array helpers that is too much: a dtype with an object field
# rebuilt through BUILD crashes Python, an array from _reconstruct with no BUILD is
# uninitialised memory of any size, and a BUILD on a numpy function rewrites it for the
# rest of the process. So the batches are read by the interpreter below instead. It knows
# the few opcodes and the four names that real batches (and Python 3 re-saves of them)
# use, and builds every array itself with np.frombuffer from bytes of exactly the right
# length. numpy's reconstruction code never sees anything from the file.

_MAX_FILE_BYTES = 256 * 2**20  # a real batch is 31 MB
_MAX_OPCODES = 500_000  # a real batch has 30,100: this bounds the time a file takes
# the only names a CIFAR-10 pickle refers to; numpy 2 renamed numpy.core to numpy._core
_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("numpy.core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy._core.numeric", "_frombuffer"): "_frombuffer",
}
# the dtypes the format has: uint8 pixels and integer labels (type code -> item size)
_DTYPES = {f"{kind}{size}": size for kind in "ui" for size in (1, 2, 4, 8)}
_REMEDY = (
    "Nothing in it was run. Replace it with an intact copy: delete the cifar-10-batches-py "
    "folder and run ./get_datasets.sh again (or point CIFAR10_DIR at an intact copy)"
)


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """A CIFAR-10 file holds something a real batch never does; nothing of it was run."""


def _text(value: str | bytes, limit: int = 40) -> str:
    """Untrusted text from a file, quoted, shortened and escaped for a message."""
    if isinstance(value, bytes):
        value = value.decode("latin1")
    return ascii(value[:limit]) + ("..." if len(value) > limit else "")


class _Global:
    """A name the file asked for (``_reconstruct``, ``ndarray``, ``dtype``, ``_frombuffer``)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name


class _Dtype:
    """A dtype being read: its type code from REDUCE, its byte order from BUILD."""

    __slots__ = ("code", "order", "built")

    def __init__(self, code: str):
        self.code, self.order, self.built = code, "=", False

    def numpy(self) -> np.dtype:
        return np.dtype(self.order + self.code)  # only ever a code from _DTYPES


class _Array:
    """An array being read: made empty by _reconstruct, given its data by one BUILD."""

    __slots__ = ("value",)

    def __init__(self, value: np.ndarray | None = None):
        self.value = value


class _PickleReader:
    """Interpret a CIFAR-10 pickle: plain values, lists, tuples, dicts and number arrays.

    Every opcode a real batch uses is handled here; any other opcode, any other
    global, and any state that is not exactly what numpy writes for a plain number
    array raises ``UnsafePickleError``. Work and memory are bounded by the file's
    size: each opcode consumes at least one byte, and array data is a view of the
    file's own bytes.
    """

    def __init__(self, raw: bytes):
        self.raw, self.view, self.pos = raw, memoryview(raw), 0
        self.stack: list = []
        self.marks: list[list] = []
        self.memo: dict[int, object] = {}
        self.unbuilt = 0  # arrays from _reconstruct still waiting for their BUILD

    def fail(self, what: str) -> UnsafePickleError:
        return UnsafePickleError(f"{what} (at byte {self.pos})")

    def corrupt(self, what: str) -> UnsafePickleError:
        return self.fail(f"{what}: the file is truncated or corrupt")

    def take(self, n: int) -> memoryview:
        if n < 0 or n > len(self.raw) - self.pos:
            raise self.corrupt("it ends in the middle of a value")
        self.pos += n
        return self.view[self.pos - n : self.pos]

    def byte(self) -> int:
        if self.pos >= len(self.raw):
            raise self.corrupt("it ends in the middle of an opcode")
        self.pos += 1
        return self.raw[self.pos - 1]

    def number(self, fmt: str) -> int:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def line(self) -> str:
        end = self.raw.find(b"\n", self.pos, self.pos + 200)
        if end < 0:
            raise self.corrupt("a GLOBAL name is unterminated or too long")
        return bytes(self.take(end + 1 - self.pos)[:-1]).decode("latin1")

    def binary(self, n: int) -> bytes | memoryview:
        data = self.take(n)
        return data if n > 4096 else bytes(data)  # big ones stay views of the file

    def unicode(self, n: int) -> str:
        try:
            return str(self.take(n), "utf-8", "surrogatepass")
        except UnicodeDecodeError:
            raise self.corrupt("a text value is not valid UTF-8") from None

    def pop_mark(self) -> list:
        if not self.marks:
            raise self.corrupt("an opcode needs a MARK that is not there")
        items, self.stack = self.stack, self.marks.pop()
        return items

    def pop(self) -> object:
        if not self.stack:
            raise self.corrupt("an opcode needs a value that is not there")
        return self.stack.pop()

    def top(self, kind: type, opcode: str) -> object:
        if not self.stack or type(self.stack[-1]) is not kind:
            raise self.fail(f"{opcode} on something that is not a {kind.__name__}")
        return self.stack[-1]

    def add_items(self, target: dict, items: list) -> None:
        if len(items) % 2:
            raise self.corrupt("a dict is given a key without a value")
        for key, value in zip(items[::2], items[1::2], strict=True):
            if type(key) not in (str, bytes):
                raise self.fail(f"a dict key is a {type(key).__name__}, not text")
            target[key] = value

    def run(self) -> object:
        """Run the pickle to its STOP and return the object it built."""
        raw, stack = self.raw, self.stack
        for _ in range(_MAX_OPCODES):
            if self.pos >= len(raw):
                raise self.corrupt("it ends before its STOP opcode")
            op = raw[self.pos]
            self.pos += 1
            if op == 0x4B:  # K BININT1
                stack.append(self.byte())
            elif op == 0x71:  # q BINPUT
                self.memo[self.byte()] = self._peek()
            elif op == 0x55:  # U SHORT_BINSTRING: a Python 2 str
                stack.append(self.binary(self.byte()))
            elif op == 0x94:  # MEMOIZE
                self.memo[len(self.memo)] = self._peek()
            elif op == 0x8C:  # SHORT_BINUNICODE
                stack.append(self.unicode(self.byte()))
            elif op == 0x28:  # ( MARK
                self.marks.append(stack)
                self.stack = stack = []
            elif op == 0x65:  # e APPENDS
                items = self.pop_mark()
                stack = self.stack
                self.top(list, "APPENDS").extend(items)
            elif op == 0x61:  # a APPEND
                item = self.pop()
                self.top(list, "APPEND").append(item)
            elif op == 0x75:  # u SETITEMS
                items = self.pop_mark()
                stack = self.stack
                self.add_items(self.top(dict, "SETITEMS"), items)
            elif op == 0x73:  # s SETITEM
                value, key = self.pop(), self.pop()
                self.add_items(self.top(dict, "SETITEM"), [key, value])
            elif op in (0x68, 0x6A):  # h BINGET, j LONG_BINGET
                index = self.number("<B" if op == 0x68 else "<I")
                if index not in self.memo:
                    raise self.corrupt("it refers to a memo entry it never made")
                stack.append(self.memo[index])
            elif op == 0x72:  # r LONG_BINPUT
                self.memo[self.number("<I")] = self._peek()
            elif op == 0x4D:  # M BININT2
                stack.append(self.number("<H"))
            elif op == 0x4A:  # J BININT
                stack.append(self.number("<i"))
            elif op == 0x8A:  # LONG1: a Python 2 long
                n = self.byte()
                if n > 8:
                    raise self.fail(f"an integer of {n} bytes; CIFAR-10 files hold none")
                stack.append(int.from_bytes(self.take(n), "little", signed=True))
            elif op == 0x47:  # G BINFLOAT
                stack.append(self.number(">d"))
            elif op == 0x54:  # T BINSTRING
                stack.append(self.binary(self.number("<i")))
            elif op in (0x43, 0x42, 0x8E, 0x96):  # SHORT_BINBYTES, BINBYTES(8), BYTEARRAY8
                fmt = {0x43: "<B", 0x42: "<I", 0x8E: "<Q", 0x96: "<Q"}[op]
                stack.append(self.binary(self.number(fmt)))
            elif op in (0x58, 0x8D):  # X BINUNICODE, BINUNICODE8
                stack.append(self.unicode(self.number("<I" if op == 0x58 else "<Q")))
            elif op in (0x4E, 0x88, 0x89):  # N NONE, NEWTRUE, NEWFALSE
                stack.append({0x4E: None, 0x88: True, 0x89: False}[op])
            elif op == 0x7D:  # } EMPTY_DICT
                stack.append({})
            elif op == 0x5D:  # ] EMPTY_LIST
                stack.append([])
            elif op == 0x29:  # ) EMPTY_TUPLE
                stack.append(())
            elif op == 0x74:  # t TUPLE
                items = self.pop_mark()
                stack = self.stack
                stack.append(tuple(items))
            elif op in (0x85, 0x86, 0x87):  # TUPLE1, TUPLE2, TUPLE3
                n = op - 0x84
                if len(stack) < n:
                    raise self.corrupt("a tuple needs values that are not there")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif op == 0x63:  # c GLOBAL
                module = self.line()
                stack.append(self.find_global(module, self.line()))
            elif op == 0x93:  # STACK_GLOBAL
                name, module = self.pop(), self.pop()
                if type(module) is not str or type(name) is not str:
                    raise self.fail("STACK_GLOBAL on something that is not text")
                stack.append(self.find_global(module, name))
            elif op == 0x52:  # R REDUCE
                args = self.pop()
                stack.append(self.call(self.pop(), args))
            elif op == 0x62:  # b BUILD
                state = self.pop()
                if not stack:
                    raise self.corrupt("BUILD with nothing to build")
                self.build(stack[-1], state)
            elif op == 0x80 and self.pos == 1:  # PROTO, first opcode only
                if self.byte() > 5:
                    raise self.fail("a pickle protocol above 5, which does not exist")
            elif op == 0x95:  # FRAME: only a hint for buffering
                self.number("<Q")
            elif op == 0x2E:  # . STOP
                return self.stop()
            else:
                name = pickletools.code2op.get(chr(op))
                what = f"opcode {name.name}" if name else f"byte {op:#04x}, not an opcode"
                raise self.fail(f"{what}, which CIFAR-10 files never use")
        raise self.fail(
            f"more than {_MAX_OPCODES} pickle opcodes; a CIFAR-10 batch of 10,000 images "
            "has 30,100"
        )

    def _peek(self) -> object:
        if not self.stack:
            raise self.corrupt("a memo opcode with nothing to remember")
        return self.stack[-1]

    def find_global(self, module: str, name: str) -> _Global:
        if (module, name) not in _GLOBALS:
            raise self.fail(
                f"it asks for {_text(module)}.{_text(name)}, which a CIFAR-10 batch never "
                "contains (it holds numpy arrays, numbers and text only)"
            )
        return _Global(_GLOBALS[module, name])

    def call(self, func: object, args: object) -> object:
        """REDUCE: the three calls numpy's pickles make, checked and done here."""
        if type(func) is not _Global or type(args) is not tuple:
            raise self.fail(f"REDUCE calls a {type(func).__name__}, not a numpy helper")
        if func.name == "dtype" and 1 <= len(args) <= 3:  # dtype(code, align, copy)
            return _Dtype(self.dtype_code(args[0]))
        if func.name == "_reconstruct" and len(args) == 3:  # (ndarray, (0,), b'b')
            if type(args[0]) is not _Global or args[0].name != "ndarray":
                raise self.fail("_reconstruct of something other than a plain numpy array")
            self.unbuilt += 1
            return _Array()
        if func.name == "_frombuffer" and len(args) in (4, 5):  # protocol 5
            buf, dtype, shape, order, *axis_order = args
            order = order.decode("latin1") if type(order) is bytes else order
            if order not in ("C", "F") or axis_order not in ([], [None]):
                raise self.fail("_frombuffer with an order other than 'C' or 'F'")
            return _Array(self.array(shape, dtype, order == "F", buf))
        raise self.fail(f"it calls numpy's {func.name} in a way numpy's pickles never do")

    def dtype_code(self, code: object) -> str:
        if type(code) is bytes:
            code = code.decode("latin1")
        if type(code) is not str or code not in _DTYPES:
            shown = _text(code) if type(code) is str else f"a {type(code).__name__}"
            raise self.fail(
                f"it holds an array of dtype {shown}; a CIFAR-10 file holds only uint8 "
                "pixels and integer labels"
            )
        return code

    def build(self, target: object, state: object) -> None:
        """BUILD: only on a dtype or an array this load made and has not built yet."""
        if type(target) is _Dtype and not target.built:
            target.order = self.byte_order(target, state)
            target.built = True
        elif type(target) is _Array and target.value is None:
            if type(state) is tuple and len(state) == 5 and state[0] == 1:
                state = state[1:]  # (version, shape, dtype, is_fortran, data)
            if type(state) is not tuple or len(state) != 4:
                raise self.fail("an array's state is not (shape, dtype, is_fortran, data)")
            shape, dtype, fortran, data = state
            target.value = self.array(shape, dtype, fortran, data)
            self.unbuilt -= 1
        else:
            if type(target) is _Global:
                what = f"numpy's {target.name}"
            elif type(target) in (_Array, _Dtype):
                what = f"a{'n array' if type(target) is _Array else ' dtype'} already built"
            else:
                what = f"a {type(target).__name__}"
            raise self.fail(
                f"BUILD on {what}; a CIFAR-10 file only builds the fresh arrays and dtypes "
                "it makes"
            )

    def byte_order(self, target: _Dtype, state: object) -> str:
        # numpy's state for a plain number dtype: (3, order, None, None, None, -1, -1, 0),
        # or version 4 with a ninth field, metadata, that is None. Anything else (fields,
        # a subarray, objects, a changed size or flags) is refused.
        plain = (None, None, None, -1, -1, 0)
        if (
            type(state) is tuple
            and (state[:1] == (3,) and len(state) == 8 or state[:1] == (4,) and len(state) == 9)
            and state[2:8] == plain
            and state[8:] in ((), (None,))
            and state[1] in ("<", ">", "=", "|", b"<", b">", b"=", b"|")
        ):
            order = state[1].decode() if type(state[1]) is bytes else state[1]
            return "=" if order == "|" else order
        raise self.fail(
            f"the dtype {target.code}'s state has fields, a subarray, objects or flags; a "
            "CIFAR-10 file holds only plain uint8 and integer arrays"
        )

    def array(self, shape: object, dtype: object, fortran: object, data: object) -> np.ndarray:
        """An array over ``data``, which must hold exactly prod(shape) items."""
        if type(dtype) is not _Dtype:
            raise self.fail(f"an array's dtype is a {type(dtype).__name__}, not a dtype")
        if type(shape) is not tuple or len(shape) > 32 or any(type(n) is not int for n in shape):
            raise self.fail("an array's shape is not a tuple of integers")
        if any(n < 0 for n in shape):
            raise self.fail(f"an array's shape {shape} has a negative size")
        if fortran not in (True, False) or type(data) not in (bytes, memoryview):
            raise self.fail("an array's data is not raw bytes (an object array?)")
        count = math.prod(shape)
        if count * _DTYPES[dtype.code] != len(data):
            raise self.fail(
                f"an array of shape {shape} and dtype {dtype.code} needs "
                f"{count * _DTYPES[dtype.code]} bytes of data, the file gives {len(data)}"
            )
        flat = np.frombuffer(data, dtype=dtype.numpy(), count=count)
        return flat.reshape(shape, order="F" if fortran else "C")

    def stop(self) -> object:
        if self.unbuilt:
            raise self.fail(
                "it holds an array that is never given its data (_reconstruct with no BUILD)"
            )
        if len(self.stack) != 1 or self.marks:
            raise self.corrupt("STOP with more or less than one value left")
        if self.pos != len(self.raw):
            raise self.fail(f"{len(self.raw) - self.pos} bytes follow the end of the pickle")
        return self.stack[0]


def _unpickle(path: Path) -> dict:
    """Read a CIFAR-10 pickle into a dict with str keys and numpy arrays as values.

    Raises ``UnsafePickleError`` (a ValueError) naming the file, what is wrong with it
    and what to do, for anything a real CIFAR-10 file does not hold.
    """
    # O_NONBLOCK: opening a FIFO must not wait for a writer (it is refused just below)
    with open(os.open(path, os.O_RDONLY | os.O_NONBLOCK), "rb") as f:
        info = os.fstat(f.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafePickleError(
                f"{path}: not a regular file (a folder, device or pipe). {_REMEDY}."
            )
        if info.st_size > _MAX_FILE_BYTES:
            raise UnsafePickleError(
                f"{path}: {info.st_size} bytes, far more than any CIFAR-10 batch (31 MB). "
                f"{_REMEDY}."
            )
        raw = f.read(info.st_size)
        if f.read(1):
            raise UnsafePickleError(f"{path}: it grew while being read. {_REMEDY}.")
    if not raw:
        raise UnsafePickleError(
            f"{path} is empty (0 bytes): it was emptied, or its download was cut short, so "
            f"it is truncated or corrupt. {_REMEDY}."
        )
    try:
        obj = _PickleReader(raw).run()
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: refused to load: {err}. {_REMEDY}.") from None
    if type(obj) is not dict:
        raise UnsafePickleError(
            f"{path}: expected a dict, found a {type(obj).__name__}. {_REMEDY}."
        )
    # Loaded with encoding='bytes' (or re-saved that way) the keys are bytes: accept both
    return {
        (k.decode("latin1") if type(k) is bytes else k): (v.value if type(v) is _Array else v)
        for k, v in obj.items()
    }


def _labels(value: object, n: int, path: Path) -> np.ndarray:
    """``labels`` as (n,) int64 in 0..9: a flat list of ints, or a 1-D integer array."""
    if isinstance(value, np.ndarray):  # only ever an array this module built
        if value.ndim != 1:
            raise UnsafePickleError(
                f"{path}: 'labels' should be 1-D; its shape is {value.shape}. {_REMEDY}."
            )
        found = len(value)
        lo, hi = (int(value.min()), int(value.max())) if found else (0, 0)
    elif type(value) is list:
        # one pass, and nothing but ints: a list inside (even the list itself) is refused
        bad = next((i for i, v in enumerate(value) if type(v) is not int), None)
        if bad is not None:
            raise UnsafePickleError(
                f"{path}: 'labels' should be a flat list of ints; item {bad} is a "
                f"{type(value[bad]).__name__}. {_REMEDY}."
            )
        found = len(value)
        lo, hi = (min(value), max(value)) if found else (0, 0)
    else:
        raise UnsafePickleError(
            f"{path}: 'labels' should be a list of ints; it is a {type(value).__name__}. "
            f"{_REMEDY}."
        )
    if found != n:
        raise UnsafePickleError(f"{path}: {n} images but {found} labels. {_REMEDY}.")
    if lo < 0 or hi > 9:
        raise UnsafePickleError(f"{path}: labels should be in 0..9; found {lo}..{hi}. {_REMEDY}.")
    return np.array(value, dtype=np.int64)


def _read_cifar_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The raw ``data`` (N, 3072) uint8 and ``labels`` (N,) int64 of one batch file."""
    path = Path(filename)
    batch = _unpickle(path)
    missing = {"data", "labels"} - batch.keys()
    if missing:
        raise UnsafePickleError(
            f"{path}: not a CIFAR-10 batch, it has no {sorted(missing)} entry. {_REMEDY}."
        )
    data = batch["data"]
    if not isinstance(data, np.ndarray):
        raise UnsafePickleError(
            f"{path}: 'data' should be a uint8 array (N, 3072); it is a {type(data).__name__}. "
            f"{_REMEDY}."
        )
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UnsafePickleError(
            f"{path}: 'data' should be a uint8 array (N, 3072 columns); it is {data.dtype} "
            f"of shape {data.shape}. {_REMEDY}."
        )
    if len(data) == 0:
        raise UnsafePickleError(f"{path}: the batch holds no images. {_REMEDY}.")
    return data, _labels(batch["labels"], len(data), path)


def _rows_to_images(data: np.ndarray, out: np.ndarray) -> None:
    # a row is 1024 red, 1024 green, 1024 blue values, each plane a row-major 32x32
    out[...] = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)


def load_CIFAR_batch(
    filename: str | os.PathLike, dtype: npt.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray]:
    """Load one CIFAR-10 batch file (``data_batch_1`` ... ``test_batch``).

    Parameters
    ----------
    filename : path of the batch file.
    dtype : dtype of the returned images; np.float32 halves the memory (the uint8
        pixels are converted straight to it, with no float64 copy in between).

    Returns
    -------
    X : (N, 32, 32, 3) images in ``dtype``, values 0..255, channels R, G, B.
    y : (N,) int64 labels in [0, 10).

    Raises
    ------
    UnsafePickleError : (a ValueError) the file is empty, truncated or corrupt, or holds
        anything a CIFAR-10 batch does not: code, other globals, arrays that are not
        uint8 pixels or integer labels, or data of the wrong length. Nothing of it is
        run, and numpy is left as it was.
    OSError : the file cannot be opened.
    """
    data, y = _read_cifar_batch(filename)
    X = np.empty((data.shape[0], 32, 32, 3), dtype=dtype)
    _rows_to_images(data, X)
    return X, y


def load_CIFAR10(
    ROOT: str | os.PathLike, dtype: npt.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load all of CIFAR-10 from a ``cifar-10-batches-py`` folder.

    Parameters
    ----------
    ROOT : the folder holding ``data_batch_1`` ... ``data_batch_5`` and ``test_batch``.
    dtype : dtype of the images (see ``load_CIFAR_batch``).

    Returns
    -------
    Xtr : (N_train, 32, 32, 3) training images (50000 in the real dataset).
    ytr : (N_train,) int64 labels.
    Xte : (N_test, 32, 32, 3) test images (10000 in the real dataset).
    yte : (N_test,) int64 labels.

    Raises
    ------
    FileNotFoundError : the folder is missing, is a file, or lacks batch files (the
        message says which, and what to do).
    UnsafePickleError : a batch file is not what a CIFAR-10 batch holds (see
        ``load_CIFAR_batch``).
    """
    root = Path(ROOT)
    problem = _cifar_folder_problem(root)
    if problem:
        if not root.is_dir():
            problem += f" {_GET_CIFAR[0].upper()}{_GET_CIFAR[1:]}."
        raise FileNotFoundError(problem)
    names = [f"data_batch_{b}" for b in range(1, 6)]
    batches = [_read_cifar_batch(root / name) for name in names]  # raw uint8: 150 MB
    Xtr = np.empty((sum(len(y) for _, y in batches), 32, 32, 3), dtype=dtype)
    start = 0
    for data, y in batches:
        _rows_to_images(data, Xtr[start : start + len(y)])
        start += len(y)
    ytr = np.concatenate([y for _, y in batches])
    Xte, yte = load_CIFAR_batch(root / "test_batch", dtype=dtype)
    return Xtr, ytr, Xte, yte


_BATCH_FILES = [*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]


def _cifar_folder_problem(root: Path) -> str | None:
    """What is wrong with ``root`` as a ``cifar-10-batches-py`` folder, or None."""
    if not root.exists():
        return f"CIFAR-10 folder {root} not found."
    if not root.is_dir():
        return (
            f"{root} is a file, not a folder: CIFAR-10 is read from the cifar-10-batches-py "
            "folder that holds data_batch_1 ... test_batch."
        )
    missing = [name for name in _BATCH_FILES if not (root / name).exists()]
    if len(missing) < len(_BATCH_FILES):
        if not missing:
            return None
        if root.resolve() == (DATASETS_DIR / "cifar-10-batches-py").resolve():
            remedy = "Delete it (rm -r datasets/cifar-10-batches-py) and run ./get_datasets.sh."
        else:
            remedy = "Copy the missing files from the CIFAR-10 archive, or use a complete copy."
        return f"{root} is an incomplete CIFAR-10 folder: it lacks {', '.join(missing)}. {remedy}"
    # none of the batch files: not a CIFAR-10 folder at all (never suggest deleting it)
    inside = root / "cifar-10-batches-py"
    if (inside / "data_batch_1").exists():
        return (
            f"{root} holds no CIFAR-10 batch files, but its cifar-10-batches-py folder does: "
            f"point at that folder itself, {inside.resolve()}."
        )
    return (
        f"{root} holds none of the CIFAR-10 batch files (data_batch_1 ... test_batch), so it "
        "is not a cifar-10-batches-py folder. Point at the cifar-10-batches-py folder that "
        "./get_datasets.sh makes in datasets/, or at a copy of it."
    )


def _cifar10_class_names(root: Path) -> list[str]:
    meta = root / "batches.meta"
    if not meta.is_file():
        return list(CIFAR10_CLASSES)
    names = _unpickle(meta).get("label_names")
    if not (
        type(names) is list
        and len(names) == 10
        and all(type(n) in (str, bytes) and 0 < len(n) <= 100 for n in names)
    ):
        raise UnsafePickleError(
            f"{meta}: 'label_names' should be a list of 10 short names. {_REMEDY}."
        )
    return [n.decode("latin1") if type(n) is bytes else n for n in names]


# --------------------------------------------------------------------------------------
# Fashion-MNIST: IDX files, gzipped
# --------------------------------------------------------------------------------------


def _read_idx(path: Path, sha256: str | None = None) -> np.ndarray:
    """Read a gzipped IDX file of unsigned bytes into an array of its dimensions.

    IDX (the MNIST format): two zero bytes, a type code (0x08 = unsigned byte), the
    number of dimensions, then each dimension as a big-endian uint32, then the data.
    """
    raw = Path(path).read_bytes()
    if sha256 is not None and hashlib.sha256(raw).hexdigest() != sha256:
        raise ValueError(
            f"{path}: sha256 is {hashlib.sha256(raw).hexdigest()}, expected {sha256}: the file "
            "is damaged or was replaced. Restore it with `git checkout -- datasets/`."
        )
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a valid gzip file ({err})") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (it should start with two zero bytes)")
    if data[2] != 0x08:
        raise ValueError(f"{path}: IDX type code {data[2]:#04x}; only 0x08 (uint8) is supported")
    ndim = data[3]
    header = 4 + 4 * ndim
    if ndim == 0 or len(data) < header:
        raise ValueError(f"{path}: IDX header is truncated or declares {ndim} dimensions")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    if len(data) != header + math.prod(dims):
        raise ValueError(
            f"{path}: IDX header declares {dims} = {math.prod(dims)} bytes of data, "
            f"the file holds {len(data) - header}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(dims)


def load_fashion_mnist(
    folder: str | os.PathLike | None = None, dtype: npt.DTypeLike = np.float64
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Load the bundled Fashion-MNIST test split, divided into train and test parts.

    Only the official 10,000-image test split is bundled. Each class's images are
    divided in file order: the first 80% go to the training part, the last 20% to the
    test part (8000 and 2000 images, 800 and 200 per class). No randomness involved.

    Parameters
    ----------
    folder : folder with ``t10k-images-idx3-ubyte.gz`` and ``t10k-labels-idx1-ubyte.gz``
        (default ``datasets/fashion-mnist``). Their sha256 checksums are verified.
    dtype : dtype of the images.

    Returns
    -------
    X_train : (8000, 28, 28, 1) images, values 0..255.
    y_train : (8000,) int64 labels in [0, 10).
    X_test : (2000, 28, 28, 1) images.
    y_test : (2000,) int64 labels.
    """
    folder = DATASETS_DIR / "fashion-mnist" if folder is None else Path(folder)
    paths = {name: folder / name for name in FASHION_MNIST_SHA256}
    for path in paths.values():
        if not path.is_file():
            raise FileNotFoundError(
                f"{path} is missing; it ships with the kit: restore it with "
                "`git checkout -- datasets/`."
            )
    images, labels = (
        _read_idx(paths[name], FASHION_MNIST_SHA256[name])
        for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
    )
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise ValueError(
            f"{folder}: expected images (N, H, W) and N labels; got {images.shape} and "
            f"{labels.shape}"
        )
    is_test = np.zeros(len(labels), dtype=bool)
    for c in np.unique(labels):
        members = np.flatnonzero(labels == c)
        is_test[members[len(members) - len(members) // 5 :]] = True
    # a channel axis makes them (N, 28, 28, 1), shaped like CIFAR-10's (N, 32, 32, 3)
    X_train, X_test = (images[part, :, :, None].astype(dtype) for part in (~is_test, is_test))
    return X_train, labels[~is_test].astype(np.int64), X_test, labels[is_test].astype(np.int64)


# --------------------------------------------------------------------------------------
# The dataset switch
# --------------------------------------------------------------------------------------


def _shown(path: Path) -> str:
    """A path as printed: relative to the repository, else just its folder name."""
    try:
        return path.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return path.name


def _cifar10_dir_message(value: str, folder: Path, problem: str) -> str:
    """Why CIFAR10_DIR=value cannot be used, and what to set it to instead."""
    message = f"CIFAR10_DIR is set to {value!r}: {problem}"
    if not folder.is_absolute():
        # a notebook's kernel runs in notebooks/, a terminal wherever it was opened
        message += (
            f" CIFAR10_DIR is a relative path, so it was resolved against the current "
            f"folder {Path.cwd()}, giving {Path.cwd() / folder}. Use an absolute path"
        )
        from_repo = REPO_ROOT / folder
        if from_repo.is_dir() and _cifar_folder_problem(from_repo) is None:
            message += f": from the repository it is CIFAR10_DIR={from_repo}"
        message += "."
    elif not folder.is_dir():
        message += " Set it to a cifar-10-batches-py folder."
    return message + " Or unset CIFAR10_DIR to use datasets/ (or the bundled Fashion-MNIST)."


def load_dataset(
    name: str | None = None, dtype: npt.DTypeLike = np.float64, verbose: bool = True
) -> Dataset:
    """Load CIFAR-10 or the bundled Fashion-MNIST, as ``name`` or ``CS231N_DATASET`` says.

    Parameters
    ----------
    name : 'auto', 'cifar10' or 'fashion-mnist'; None reads the environment variable
        ``CS231N_DATASET`` (default 'auto'). 'auto' takes CIFAR-10 when its folder
        exists, else Fashion-MNIST. The CIFAR-10 folder is ``CIFAR10_DIR`` when that
        is set, else ``datasets/cifar-10-batches-py`` in the repository.
    dtype : dtype of the images (pixel values stay 0..255).
    verbose : print which dataset was picked and why, and its shapes.

    Returns
    -------
    Dataset with X_train (N, H, W, C), y_train (N,), X_test, y_test, class_names,
    image_shape and the reason for the choice.

    Raises
    ------
    ValueError : unknown dataset name.
    FileNotFoundError : CIFAR-10 was asked for (by name, or by setting ``CIFAR10_DIR``)
        and is not there.
    """
    env = os.environ.get("CS231N_DATASET", "").strip()
    if name is not None:
        requested, asked = name, f"load_dataset(name={name!r})"
    elif env:
        requested, asked = env, f"CS231N_DATASET={env}"
    else:
        requested, asked = "auto", "CS231N_DATASET is unset, meaning auto,"
    key = requested.lower()
    if key not in DATASET_NAMES:
        raise ValueError(
            f"unknown dataset {requested!r}: choose one of {', '.join(DATASET_NAMES)} "
            "(set CS231N_DATASET or pass name=...)"
        )

    cifar_env = os.environ.get("CIFAR10_DIR", "").strip()
    cifar_dir = Path(cifar_env).expanduser() if cifar_env else DATASETS_DIR / "cifar-10-batches-py"
    where = f"CIFAR10_DIR ({_shown(cifar_dir)})" if cifar_env else _shown(cifar_dir)
    if cifar_env and key != "fashion-mnist":
        problem = _cifar_folder_problem(cifar_dir)
        if problem:
            raise FileNotFoundError(_cifar10_dir_message(cifar_env, cifar_dir, problem))
    if key == "auto":
        if cifar_dir.is_dir():
            key, reason = "cifar10", f"{asked} and CIFAR-10 was found in {where}"
        else:
            key = "fashion-mnist"
            reason = (
                f"{asked} and CIFAR-10 is not in {where} (./get_datasets.sh downloads it): "
                "using the bundled Fashion-MNIST"
            )
    else:
        reason = asked

    if key == "cifar10":
        X_train, y_train, X_test, y_test = load_CIFAR10(cifar_dir, dtype=dtype)
        ds = Dataset(
            "cifar10", _cifar10_class_names(cifar_dir), (32, 32, 3),
            X_train, y_train, X_test, y_test, reason,
        )  # fmt: skip
    else:
        X_train, y_train, X_test, y_test = load_fashion_mnist(dtype=dtype)
        ds = Dataset(
            "fashion-mnist", list(FASHION_MNIST_CLASSES), (28, 28, 1),
            X_train, y_train, X_test, y_test, reason,
        )  # fmt: skip
    if verbose:
        print(f"Dataset: {ds.name}, because {ds.reason}.")
        if ds.name == "fashion-mnist":
            print(
                f"Only Fashion-MNIST's 10,000-image test split is bundled: each class is split "
                f"in file order, 80% for training ({len(ds.y_train)}) and 20% for testing "
                f"({len(ds.y_test)})."
            )
        print(f"Training data shape: {ds.X_train.shape}, labels: {ds.y_train.shape}")
        print(f"Test data shape:     {ds.X_test.shape}, labels: {ds.y_test.shape}")
    return ds


# --------------------------------------------------------------------------------------
# Splits and preprocessing (the cs231n notebook's data step)
# --------------------------------------------------------------------------------------


def make_splits(
    ds: Dataset,
    num_training: int = 49000,
    num_validation: int = 1000,
    num_test: int = 1000,
    num_dev: int = 500,
    verbose: bool = True,
) -> dict[str, np.ndarray]:
    """Split a dataset into train / validation / test / dev sets, as cs231n does.

    Training images are the first ``num_training`` of the raw training set, the
    validation images the ``num_validation`` after them, test images the first
    ``num_test`` of the raw test set, and the dev set a random subset of the training
    images (drawn with ``np.random.default_rng(0)``) for quick experiments.

    When the dataset has fewer images than asked for, the sizes shrink in proportion
    (and a line says so): 8000 raw training images give 7840 train / 160 val / 80 dev.

    Parameters
    ----------
    ds : a Dataset from ``load_dataset``.
    num_training, num_validation, num_test, num_dev : requested sizes (>= 0).
    verbose : print the sizes (and why they shrank, if they did).

    Returns
    -------
    dict with X_train (n_train, H, W, C), y_train (n_train,), and likewise X_val,
    y_val, X_test, y_test, X_dev, y_dev. The train, val and test arrays are views of
    ``ds``'s arrays, not copies.
    """
    sizes = {"num_training": num_training, "num_validation": num_validation}
    sizes |= {"num_test": num_test, "num_dev": num_dev}
    for arg, n in sizes.items():
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise ValueError(f"{arg} should be an int >= 0; got {n!r}")
    if num_training == 0:
        raise ValueError("num_training should be at least 1")
    n_raw, n_raw_test = len(ds.y_train), len(ds.y_test)
    notes = []

    wanted = num_training + num_validation
    if wanted > n_raw:
        if n_raw < 1 + (num_validation > 0):
            raise ValueError(
                f"{ds.name} has {n_raw} training images: too few for a training and a "
                "validation set"
            )
        scale = n_raw / wanted
        num_validation = max(1, int(num_validation * scale)) if num_validation else 0
        num_training = n_raw - num_validation
        num_dev = max(1, int(num_dev * scale)) if num_dev else 0
        notes.append(
            f"{ds.name} has {n_raw} training images, fewer than the {wanted} asked for: "
            f"train, validation and dev shrink in proportion (x{scale:.4g})."
        )
    if num_dev > num_training:
        notes.append(f"The dev set can be at most the {num_training} training images.")
        num_dev = num_training
    if num_test > n_raw_test:
        notes.append(
            f"{ds.name} has {n_raw_test} test images, fewer than the {num_test} asked for."
        )
        num_test = n_raw_test

    dev = np.random.default_rng(0).choice(num_training, num_dev, replace=False)
    val = slice(num_training, num_training + num_validation)
    splits = {
        "X_train": ds.X_train[:num_training], "y_train": ds.y_train[:num_training],
        "X_val": ds.X_train[val], "y_val": ds.y_train[val],
        "X_test": ds.X_test[:num_test], "y_test": ds.y_test[:num_test],
        "X_dev": ds.X_train[dev], "y_dev": ds.y_train[dev],
    }  # fmt: skip
    if verbose:
        for note in notes:
            print(note)
        print(
            f"Split sizes: train {num_training}, validation {num_validation}, "
            f"test {num_test}, dev {num_dev}"
        )
    return splits


_SPLIT_NAMES = ("train", "val", "test", "dev")


def preprocess(splits: dict[str, np.ndarray], verbose: bool = True) -> dict[str, np.ndarray]:
    """Flatten images to rows, subtract the training mean image, append a bias column.

    The bias trick: a constant 1 feature at the end of each row lets the weight
    matrix W (D, C) hold the biases in its last row, so scores are just ``X.dot(W)``.

    Parameters
    ----------
    splits : dict from ``make_splits``: X_train, X_val, X_test, X_dev (n, H, W, C)
        images and y_train, y_val, y_test, y_dev (n,) labels.
    verbose : print every shape.

    Returns
    -------
    dict with X_train, X_val, X_test, X_dev as (n, H*W*C + 1) rows in the input dtype
    (integer images become float64), the y arrays unchanged, and ``mean_image``
    (H, W, C), the mean of the training images.
    """
    for s in _SPLIT_NAMES:
        for key in (f"X_{s}", f"y_{s}"):
            if key not in splits:
                raise ValueError(f"splits has no {key!r}; pass the dict from make_splits")
    shape = splits["X_train"].shape[1:]
    for s in _SPLIT_NAMES:
        X, y = splits[f"X_{s}"], splits[f"y_{s}"]
        if X.ndim != 4 or X.shape[1:] != shape or len(X) != len(y):
            raise ValueError(
                f"X_{s} should be ({len(y)}, *{shape}) images to match y_{s} and X_train; "
                f"its shape is {X.shape}"
            )
    if len(splits["X_train"]) == 0:
        raise ValueError("X_train is empty: there is no mean image to subtract")

    X_train = splits["X_train"]
    dtype = X_train.dtype if np.issubdtype(X_train.dtype, np.floating) else np.float64
    # accumulate in float64 so a float32 mean of 49000 images does not lose digits
    mean_image = X_train.mean(axis=0, dtype=np.float64).astype(dtype)
    D = mean_image.size
    out: dict[str, np.ndarray] = {}
    for s in _SPLIT_NAMES:
        X = splits[f"X_{s}"]
        rows = np.empty((len(X), D + 1), dtype=dtype)
        np.subtract(X.reshape(len(X), D), mean_image.reshape(D), out=rows[:, :D])
        rows[:, D] = 1.0  # the bias trick
        out[f"X_{s}"], out[f"y_{s}"] = rows, splits[f"y_{s}"]
    out["mean_image"] = mean_image
    if verbose:
        for s in _SPLIT_NAMES:
            print(f"X_{s}: {out[f'X_{s}'].shape}, y_{s}: {out[f'y_{s}'].shape}")
        print(f"mean_image: {mean_image.shape}")
    return out
