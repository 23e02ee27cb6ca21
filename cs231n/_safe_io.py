"""Bounded reads of untrusted files and arrays (machinery; nothing here is an exercise).

- :func:`read_file` reads a regular file of at most ``max_bytes``, never waiting on a
  pipe and never following a link unless asked to. It uses only the ``os`` flags the
  platform has: ``O_BINARY`` (Windows, where a file opened without it is read as text),
  ``O_NOFOLLOW`` and ``O_NONBLOCK`` (POSIX).
- :func:`load_npy` and :func:`load_npz` read arrays header first: an object dtype
  (which would need unpickling), an array whose header claims more than ``max_bytes``,
  or an archive member that would inflate beyond its caps is refused before anything
  is allocated for it. :func:`open_npz` reads an archive one member at a time, each with
  its own cap, for callers that check a small member before reading a big one.

Every refusal is a ``ValueError`` whose message names the file and what is wrong.
"""

from __future__ import annotations

import io
import math
import os
import stat
import zipfile
import zlib
from collections.abc import Collection, Iterator
from contextlib import contextmanager

import numpy as np

# An archive member beyond 1 MB may be compressed at most this much: np.savez stores
# arrays uncompressed, and np.savez_compressed gains far less on real weights or data.
MAX_INFLATION = 20
MAX_MEMBERS = 1000
# The kinds of array a file may hold: numbers, booleans, text, dates. Object arrays
# need unpickling and structured ones ("V") can hide objects in their fields.
_PLAIN_KINDS = "biufcUSmM"


class FileRefused(ValueError):
    """:func:`read_file` refused ``path``: ``reason`` is one of ``"link"``,
    ``"not regular"``, ``"too big"``, ``"grew"``; ``size`` is its size in bytes (for a
    link, the link's own). Callers with their own wording catch it and rephrase."""

    def __init__(self, message: str, path: str | os.PathLike, reason: str, size: int) -> None:
        super().__init__(message)
        self.path, self.reason, self.size = path, reason, size


def open_flags(*, follow_links: bool = False) -> int:
    """``os.O_RDONLY`` plus those of ``O_BINARY``, ``O_NOFOLLOW``, ``O_NONBLOCK`` that
    ``os`` has (Windows lacks the last two, POSIX the first)."""
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    if not follow_links:
        flags |= getattr(os, "O_NOFOLLOW", 0)
    return flags


def read_file(
    path: str | os.PathLike, max_bytes: int, what: str, *, follow_links: bool = False
) -> bytes:
    """The bytes of the regular file ``path``, at most ``max_bytes`` of them.

    Parameters
    ----------
    path : the file.
    max_bytes : the most it may hold; a bigger file is refused unread.
    what : what the file should be, for messages ("a CIFAR-10 batch").
    follow_links : read what a symbolic link points at (still only a regular file)
        instead of refusing the link.

    Raises
    ------
    FileRefused (a ValueError) : ``path`` is a symbolic link, not a regular file (a
        folder, device or named pipe: opening a pipe does not wait for a writer), holds
        more than ``max_bytes``, or grew while being read (beyond the size it had
        when opened).
    OSError : it cannot be opened (FileNotFoundError when it does not exist).
    """
    if not follow_links and os.path.islink(path):  # O_NOFOLLOW, where it exists, closes the race
        raise FileRefused(
            f"{path} is a symbolic link (to {os.readlink(path)}); {what} is read only from a "
            "regular file: put the file itself there",
            path, "link", os.lstat(path).st_size,
        )  # fmt: skip
    try:
        fd = os.open(path, open_flags(follow_links=follow_links))
    except OSError:
        if not follow_links and os.path.islink(path):  # replaced by a link since the check
            raise FileRefused(
                f"{path} is a symbolic link; {what} is read only from a regular file",
                path, "link", 0,
            ) from None  # fmt: skip
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise FileRefused(
                f"{path}: not a regular file (a folder, device or pipe); {what} is read only "
                "from a regular file: replace it with one",
                path, "not regular", info.st_size,
            )  # fmt: skip
        if info.st_size > max_bytes:
            raise FileRefused(
                f"{path}: {info.st_size:,} bytes, more than {what} may hold "
                f"({max_bytes:,}): is it the right file?",
                path, "too big", info.st_size,
            )  # fmt: skip
        # Read the stated size and one byte more, to see a file that grows as it is
        # read (being written, or not a plain file at all, as /proc's are not).
        chunks, total = [], 0
        while total <= info.st_size:
            chunk = os.read(fd, info.st_size + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
    finally:
        os.close(fd)
    if total > info.st_size:
        raise FileRefused(
            f"{path}: it grew while being read (from {info.st_size:,} bytes); read it again "
            "once nothing writes to it",
            path, "grew", total,
        )  # fmt: skip
    return b"".join(chunks)


def _npy_header(f: io.BufferedIOBase, what: str) -> tuple[tuple[int, ...], bool, np.dtype]:
    """Shape, Fortran order and dtype from the header of the .npy stream ``f``."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            return np.lib.format.read_array_header_1_0(f)
        if version == (2, 0):
            return np.lib.format.read_array_header_2_0(f)
    except ValueError as error:
        raise ValueError(f"{what} is not a valid .npy array ({error})") from None
    raise ValueError(
        f"{what} is a .npy of version {version[0]}.{version[1]}; only versions 1.0 and 2.0 "
        "(what np.save writes for plain arrays) are read"
    )


def _check_dtype(dtype: np.dtype, dtypes: tuple | None, what: str) -> None:
    if dtype.hasobject or dtype.kind == "O":
        raise ValueError(
            f"{what} has dtype object, whose data is a pickle that could run code: refused"
        )
    if dtypes is None:
        if dtype.kind not in _PLAIN_KINDS:
            raise ValueError(
                f"{what} has dtype {dtype}; only plain number or text arrays are read"
            )
        return
    allowed = [np.dtype(d) for d in dtypes]
    if dtype.newbyteorder("=") not in allowed:
        names = " or ".join(str(d) for d in allowed)
        raise ValueError(f"{what} has dtype {dtype}; expected {names}")


def _read_array(
    f: io.BufferedIOBase, available: int, max_bytes: int, what: str, dtypes: tuple | None
) -> np.ndarray:
    """The array of the .npy stream ``f`` of ``available`` bytes, its header checked first."""
    shape, fortran_order, dtype = _npy_header(f, what)
    _check_dtype(dtype, dtypes, what)
    nbytes = math.prod(shape) * dtype.itemsize
    if nbytes > max_bytes:
        raise ValueError(
            f"{what} claims shape {shape} ({nbytes:,} bytes of data), more than the "
            f"{max_bytes:,} it may hold: refused unread"
        )
    left = available - f.tell()
    if left != nbytes:
        raise ValueError(
            f"{what} claims shape {shape} ({nbytes} bytes of data), but the file holds {left}"
        )
    flat = np.empty(math.prod(shape), dtype=dtype)
    view, filled = memoryview(flat).cast("B"), 0
    while filled < nbytes:
        n = f.readinto(view[filled:])
        if not n:
            raise ValueError(f"{what} ends after {filled} of {nbytes} bytes")
        filled += n
    if f.read(1):  # also makes a zip member check its CRC
        raise ValueError(f"{what} holds more bytes than its header says")
    array = flat.reshape(shape, order="F" if fortran_order else "C")
    return array.astype(dtype.newbyteorder("="), order="C", copy=False)


def load_npy(data: bytes, max_bytes: int, what: str, dtypes: tuple | None = None) -> np.ndarray:
    """The array stored in ``data``, the bytes of a ``.npy`` file, never unpickled.

    Parameters
    ----------
    data : the file's bytes.
    max_bytes : the most the array's data may take; a header claiming more is refused
        before anything is allocated.
    what : what the array is, for messages ("model.npz: W").
    dtypes : the dtypes allowed (either byte order); None allows any plain number, text
        or date dtype.

    Returns
    -------
    The array, C-contiguous, writeable, in native byte order.

    Raises
    ------
    ValueError : not a .npy of version 1.0 or 2.0, an object or structured dtype, a dtype
        not in ``dtypes``, more than ``max_bytes``, or data of another length than the
        header's shape needs.
    """
    return _read_array(io.BytesIO(data), len(data), max_bytes, what, dtypes)


class Npz:
    """An open ``.npz`` archive whose members are read one at a time, each header first.

    ``names`` holds the member names less ``.npy``. Made by :func:`open_npz`.
    """

    def __init__(self, archive: zipfile.ZipFile, what: str) -> None:
        self.archive, self.what = archive, what
        infos = archive.infolist()
        if len(infos) > MAX_MEMBERS:
            raise ValueError(f"{what} holds {len(infos)} members, more than {MAX_MEMBERS}")
        self.infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = info.filename.removesuffix(".npy")
            if name == info.filename or name in self.infos:
                shown = ascii(info.filename[:60])
                raise ValueError(f"{what} holds {shown}, not one .npy array per name")
            self.infos[name] = info
        self.names = set(self.infos)

    def size(self, name: str) -> int:
        """The uncompressed size that the archive states for member ``name``."""
        return self.infos[name].file_size

    def array(
        self, name: str, max_bytes: int, what: str | None = None, dtypes: tuple | None = None
    ) -> np.ndarray:
        """Member ``name`` as an array (see :func:`load_npy`); ``max_bytes`` caps the
        member as the archive states it, before it is decompressed."""
        what = what or f"{self.what}: {name}"
        info = self.infos[name]
        if info.file_size > max_bytes:
            raise ValueError(
                f"{what} is {info.file_size:,} bytes, too big (at most {max_bytes:,})"
            )
        if info.file_size > MAX_INFLATION * max(info.compress_size, 1 << 20):
            raise ValueError(
                f"{what} would inflate from {info.compress_size} to {info.file_size} bytes, "
                f"more than {MAX_INFLATION}-fold: refused unread"
            )
        with _as_value_error(self.what), self.archive.open(info) as f:
            return _read_array(f, info.file_size, max_bytes, what, dtypes)


@contextmanager
def _as_value_error(what: str) -> Iterator[None]:
    try:
        yield
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, OSError) as error:
        raise ValueError(f"{what} is a damaged or unsupported .npz ({error})") from None


def is_npz(data: bytes) -> bool:
    """Whether ``data`` looks like a zip archive (an ``.npz``) at all."""
    return zipfile.is_zipfile(io.BytesIO(data))


@contextmanager
def open_npz(data: bytes, what: str) -> Iterator[Npz]:
    """The ``.npz`` in ``data`` as an :class:`Npz`, for reading member by member.

    Raises ``ValueError`` when ``data`` is not a zip archive, is damaged, or holds
    something other than ``.npy`` members.
    """
    if not is_npz(data):
        raise ValueError(f"{what} is not an .npz (a zip archive)")
    with _as_value_error(what), zipfile.ZipFile(io.BytesIO(data)) as archive:
        yield Npz(archive, what)


def load_npz(
    data: bytes, names: Collection[str] | None, max_bytes: int, what: str
) -> dict[str, np.ndarray]:
    """Every array of the ``.npz`` in ``data``, by name, never unpickled.

    Parameters
    ----------
    data : the archive's bytes.
    names : the names (less ``.npy``) it may hold; a member by any other name is
        refused. None allows any name.
    max_bytes : the most all its members together may take once decompressed; checked
        against the sizes the archive states, and each array's header, before reading.
    what : what the archive is, for messages.

    Returns
    -------
    dict from name to array (see :func:`load_npy`), in the archive's order.

    Raises
    ------
    ValueError : see :func:`load_npy` and :func:`open_npz`; also a name not in
        ``names``, or members that would decompress to more than ``max_bytes``.
    """
    with open_npz(data, what) as npz:
        unexpected = sorted(npz.names - set(names)) if names is not None else []
        if unexpected:
            shown = ", ".join(ascii(n[:40]) for n in unexpected[:5])
            raise ValueError(f"{what} holds {shown}, which it should not")
        total = sum(npz.size(name) for name in npz.names)
        if total > max_bytes:
            raise ValueError(
                f"{what} would decompress to {total:,} bytes, more than {max_bytes:,}: "
                "refused unread"
            )
        return {name: npz.array(name, max_bytes) for name in npz.infos}
