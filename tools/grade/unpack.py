"""Take a submission zip apart without trusting it.

A submission is untrusted input. :func:`unpack` never extracts to disk: it reads the
allow-listed members into memory, so an entry named ``../../x`` or ``/etc/x`` cannot land
anywhere, and it refuses the whole archive (:class:`InvalidSubmission`, which grading
reports as ``invalid``) when it holds an entry with ``..``, an absolute path, a symlink,
an encrypted or duplicated entry, or more than ``MAX_BYTES`` once uncompressed (counted as
the bytes come out, since a zip's stated sizes can lie). Entries that are not on the
allow-list are ignored and listed.

Every name is normalised before anything looks at it (:func:`normalise`): backslashes
become slashes, empty and ``.`` parts go, so ``./cs231n//tuning.py`` is
``cs231n/tuning.py``. Two entries whose normalised names differ only in case count as
duplicates (on a case-insensitive disk they are one file), and so the archive is refused
rather than one of them silently graded.
"""

from __future__ import annotations

import stat
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

MAX_BYTES = 20_000_000  # uncompressed, over the whole archive
MAX_ENTRIES = 10_000
NOTEBOOK = "notebooks/softmax.ipynb"


class InvalidSubmission(Exception):
    """The archive cannot be graded; the message says what is wrong and what to do."""


@dataclass
class Unpacked:
    """The allow-listed files of a submission (path -> bytes) and what was left out."""

    files: dict[str, bytes]
    ignored: list[str] = field(default_factory=list)
    prefix: str = ""  # a single top folder that was stripped, e.g. "student/"


def normalise(name: str) -> str:
    """A zip entry's name as a path: ``/`` only, no empty or ``.`` parts.

    ``./a//b/./c`` -> ``a/b/c``. Absolute paths and ``..`` are refused before this
    (:func:`_refuse_unsafe`), so the result is relative and stays inside the submission.
    """
    parts = name.replace("\\", "/").split("/")
    return "/".join(p for p in parts if p not in ("", "."))


def _refuse_unsafe(info: zipfile.ZipInfo) -> None:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    if stat.S_ISLNK(mode):
        raise InvalidSubmission(f"the archive holds a symlink ({info.filename!r}); zip files only")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise InvalidSubmission(f"the archive holds an absolute path ({info.filename!r})")
    if ".." in name.split("/"):
        raise InvalidSubmission(f"the archive holds a path with '..' ({info.filename!r})")
    if info.flag_bits & 0x1:
        raise InvalidSubmission(f"the archive holds an encrypted entry ({info.filename!r})")


def _common_prefix(names: list[str]) -> str:
    """A single top folder every entry sits in (zips made by hand often have one)."""
    if any(n.startswith(("cs231n/", "notebooks/")) for n in names):
        return ""
    tops = {n.split("/", 1)[0] for n in names if "/" in n}
    if len(tops) == 1 and all("/" in n for n in names):
        return tops.pop() + "/"
    return ""


def unpack(archive: Path, allowed: set[str], max_bytes: int = MAX_BYTES) -> Unpacked:
    """Read the members of ``archive`` whose paths are in ``allowed``.

    ``allowed`` holds POSIX paths relative to the submission root (``cs231n/...py``,
    ``notebooks/softmax.ipynb``). Raises InvalidSubmission for a file that is not a zip
    and for any unsafe archive (see the module docstring).
    """
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise InvalidSubmission(
            f"{archive.name} is not a zip archive ({error}); submit the submission.zip "
            "that `make submission` writes"
        ) from error
    with zf:
        infos = zf.infolist()
        if len(infos) > MAX_ENTRIES:
            raise InvalidSubmission(
                f"the archive holds {len(infos)} entries (at most {MAX_ENTRIES})"
            )
        for info in infos:
            _refuse_unsafe(info)
        names = [normalise(i.filename) for i in infos if not i.is_dir()]
        folded: dict[str, list[str]] = {}
        for info in infos:
            if not info.is_dir():
                folded.setdefault(normalise(info.filename).casefold(), []).append(info.filename)
        duplicates = sorted(n for group in folded.values() if len(group) > 1 for n in group)
        if duplicates:
            raise InvalidSubmission(
                f"the archive holds entries that are one file once their names are "
                f"normalised: {duplicates[:10]}; zip each file once (make submission does)"
            )
        stated = sum(i.file_size for i in infos)
        if stated > max_bytes:
            raise InvalidSubmission(
                f"the archive unpacks to {stated:,} bytes (at most {max_bytes:,}); "
                "submit only your code and the notebook"
            )
        prefix = _common_prefix(names)
        result = Unpacked(files={}, prefix=prefix)
        total = 0
        for info in infos:
            if info.is_dir():
                continue
            name = normalise(info.filename)
            rel = name[len(prefix) :] if prefix and name.startswith(prefix) else name
            if not rel:
                continue
            if rel not in allowed:
                result.ignored.append(name)
                continue
            chunks = []
            try:
                with zf.open(info) as member:
                    while chunk := member.read(1 << 16):
                        total += len(chunk)
                        if total > max_bytes:
                            raise InvalidSubmission(
                                f"the archive unpacks to more than {max_bytes:,} bytes "
                                "(its stated sizes are wrong)"
                            )
                        chunks.append(chunk)
            except (
                zipfile.BadZipFile,
                zlib.error,
                OSError,
                EOFError,
                ValueError,
                NotImplementedError,
            ) as error:
                raise InvalidSubmission(
                    f"cannot read {name!r} from the archive: {error}"
                ) from error
            result.files[rel] = b"".join(chunks)
    return result
