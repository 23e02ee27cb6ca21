"""A pickle interpreter for CIFAR-10's batches that runs nothing (machinery).

A pickle is a program for a small stack machine, and the stock unpickler will call any
function the file names and hand any state to any object's __setstate__. Even
restricted to numpy's own array helpers that is too much: a dtype with an object field
rebuilt through BUILD crashes Python, an array from _reconstruct with no BUILD is
uninitialised memory of any size, and a BUILD on a numpy function rewrites it for the
rest of the process. So the batches are read by the interpreter below instead. It knows
the few opcodes and the four names that real batches (and Python 3 re-saves of them)
use, and builds every array itself with np.frombuffer from bytes of exactly the right
length. numpy's reconstruction code never sees anything from the file.

:func:`interpret` is the entry point; ``cs231n/_datasets.py`` reads the files with it.
"""

from __future__ import annotations

import math
import pickle
import pickletools
import struct

import numpy as np

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


def interpret(raw: bytes) -> object:
    """The object the pickle ``raw`` builds, arrays as numpy arrays; nothing in it is run.

    Raises ``UnsafePickleError`` (a ValueError) saying what the pickle holds that a
    CIFAR-10 file never does, or where it is truncated or corrupt.
    """
    obj = _PickleReader(raw).run()
    if type(obj) is dict:
        return {k: (v.value if type(v) is _Array else v) for k, v in obj.items()}
    return obj
