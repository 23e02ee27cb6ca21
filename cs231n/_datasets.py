"""Finding, reading and checking the dataset files (machinery for ``data_utils``).

CIFAR-10's batches are read through :mod:`cs231n._pickle`, which runs nothing, after a
bounded read (:mod:`cs231n._safe_io`); every value is then checked against what a real
batch holds. Fashion-MNIST's gzipped IDX files are checked against their sha256 and
their headers. Every refusal names the file, what is wrong and what to do.
"""

from __future__ import annotations

import gzip
import hashlib
import math
import os
import struct
from pathlib import Path

import numpy as np

from . import _pickle, _safe_io
from ._pickle import UnsafePickleError

MAX_FILE_BYTES = 256 * 2**20  # a real batch is 31 MB
REMEDY = (
    "Nothing in it was run. Replace it with an intact copy: delete the cifar-10-batches-py "
    "folder and run ./get_datasets.sh again (or point CIFAR10_DIR at an intact copy)"
)


def unpickle(path: Path) -> dict:
    """Read a CIFAR-10 pickle into a dict with str keys and numpy arrays as values.

    Raises ``UnsafePickleError`` (a ValueError) naming the file, what is wrong with it
    and what to do, for anything a real CIFAR-10 file does not hold.
    """
    try:
        # a link is followed (a shared copy of the dataset may be linked in), but only to
        # a regular file: a pipe is not waited on, a device not read
        raw = _safe_io.read_file(path, MAX_FILE_BYTES, "a CIFAR-10 batch", follow_links=True)
    except _safe_io.FileRefused as refused:
        if refused.reason == "too big":
            problem = f"{refused.size} bytes, far more than any CIFAR-10 batch (31 MB)"
        elif refused.reason == "grew":
            problem = "it grew while being read"
        else:
            problem = "not a regular file (a folder, device or pipe)"
        raise UnsafePickleError(f"{path}: {problem}. {REMEDY}.") from None
    if not raw:
        raise UnsafePickleError(
            f"{path} is empty (0 bytes): it was emptied, or its download was cut short, so "
            f"it is truncated or corrupt. {REMEDY}."
        )
    try:
        obj = _pickle.interpret(raw)
    except UnsafePickleError as err:
        raise UnsafePickleError(f"{path}: refused to load: {err}. {REMEDY}.") from None
    if type(obj) is not dict:
        raise UnsafePickleError(
            f"{path}: expected a dict, found a {type(obj).__name__}. {REMEDY}."
        )
    # Loaded with encoding='bytes' (or re-saved that way) the keys are bytes: accept both
    return {(k.decode("latin1") if type(k) is bytes else k): v for k, v in obj.items()}


def check_labels(value: object, n: int, path: Path) -> np.ndarray:
    """``labels`` as (n,) int64 in 0..9: a flat list of ints, or a 1-D integer array."""
    if isinstance(value, np.ndarray):  # only ever an array this module built
        if value.ndim != 1:
            raise UnsafePickleError(
                f"{path}: 'labels' should be 1-D; its shape is {value.shape}. {REMEDY}."
            )
        found = len(value)
        lo, hi = (int(value.min()), int(value.max())) if found else (0, 0)
    elif type(value) is list:
        # one pass, and nothing but ints: a list inside (even the list itself) is refused
        bad = next((i for i, v in enumerate(value) if type(v) is not int), None)
        if bad is not None:
            raise UnsafePickleError(
                f"{path}: 'labels' should be a flat list of ints; item {bad} is a "
                f"{type(value[bad]).__name__}. {REMEDY}."
            )
        found = len(value)
        lo, hi = (min(value), max(value)) if found else (0, 0)
    else:
        raise UnsafePickleError(
            f"{path}: 'labels' should be a list of ints; it is a {type(value).__name__}. {REMEDY}."
        )
    if found != n:
        raise UnsafePickleError(f"{path}: {n} images but {found} labels. {REMEDY}.")
    if lo < 0 or hi > 9:
        raise UnsafePickleError(f"{path}: labels should be in 0..9; found {lo}..{hi}. {REMEDY}.")
    return np.array(value, dtype=np.int64)


def read_cifar_batch(filename: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """The raw ``data`` (N, 3072) uint8 and ``labels`` (N,) int64 of one batch file."""
    path = Path(filename)
    batch = unpickle(path)
    missing = {"data", "labels"} - batch.keys()
    if missing:
        raise UnsafePickleError(
            f"{path}: not a CIFAR-10 batch, it has no {sorted(missing)} entry. {REMEDY}."
        )
    data = batch["data"]
    if not isinstance(data, np.ndarray):
        raise UnsafePickleError(
            f"{path}: 'data' should be a uint8 array (N, 3072); it is a {type(data).__name__}. "
            f"{REMEDY}."
        )
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise UnsafePickleError(
            f"{path}: 'data' should be a uint8 array (N, 3072 columns); it is {data.dtype} "
            f"of shape {data.shape}. {REMEDY}."
        )
    if len(data) == 0:
        raise UnsafePickleError(f"{path}: the batch holds no images. {REMEDY}.")
    return data, check_labels(batch["labels"], len(data), path)


BATCH_FILES = [*(f"data_batch_{b}" for b in range(1, 6)), "test_batch"]


def cifar_folder_problem(root: Path, datasets_dir: Path) -> str | None:
    """What is wrong with ``root`` as a ``cifar-10-batches-py`` folder, or None."""
    if not root.exists():
        return f"CIFAR-10 folder {root} not found."
    if not root.is_dir():
        return (
            f"{root} is a file, not a folder: CIFAR-10 is read from the cifar-10-batches-py "
            "folder that holds data_batch_1 ... test_batch."
        )
    missing = [name for name in BATCH_FILES if not (root / name).exists()]
    if len(missing) < len(BATCH_FILES):
        if not missing:
            return None
        if root.resolve() == (datasets_dir / "cifar-10-batches-py").resolve():
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


def cifar10_class_names(root: Path, default: list[str]) -> list[str]:
    meta = root / "batches.meta"
    if not meta.is_file():
        return list(default)
    names = unpickle(meta).get("label_names")
    if not (
        type(names) is list
        and len(names) == 10
        and all(type(n) in (str, bytes) and 0 < len(n) <= 100 for n in names)
    ):
        raise UnsafePickleError(
            f"{meta}: 'label_names' should be a list of 10 short names. {REMEDY}."
        )
    return [n.decode("latin1") if type(n) is bytes else n for n in names]


def read_idx(path: Path, sha256: str | None = None) -> np.ndarray:
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


def shown(path: Path, repo_root: Path) -> str:
    """A path as printed: relative to the repository, else just its folder name."""
    try:
        return path.resolve().relative_to(repo_root).as_posix()
    except ValueError:
        return path.name


def cifar10_dir_message(
    value: str, folder: Path, problem: str, repo_root: Path, datasets_dir: Path
) -> str:
    """Why CIFAR10_DIR=value cannot be used, and what to set it to instead."""
    message = f"CIFAR10_DIR is set to {value!r}: {problem}"
    if not folder.is_absolute():
        # a notebook's kernel runs in notebooks/, a terminal wherever it was opened
        message += (
            f" CIFAR10_DIR is a relative path, so it was resolved against the current "
            f"folder {Path.cwd()}, giving {Path.cwd() / folder}. Use an absolute path"
        )
        from_repo = repo_root / folder
        if from_repo.is_dir() and cifar_folder_problem(from_repo, datasets_dir) is None:
            message += f": from the repository it is CIFAR10_DIR={from_repo}"
        message += "."
    elif not folder.is_dir():
        message += " Set it to a cifar-10-batches-py folder."
    return message + " Or unset CIFAR10_DIR to use datasets/ (or the bundled Fashion-MNIST)."


def choose_dataset(
    name: str | None, repo_root: Path, datasets_dir: Path, names: tuple[str, ...]
) -> tuple[str, str, Path]:
    """Which dataset ``load_dataset(name)`` loads: (key, the reason, the CIFAR-10 folder).

    ``name`` (else ``CS231N_DATASET``, else 'auto') picks; 'auto' takes CIFAR-10 when its
    folder (``CIFAR10_DIR``, else ``datasets/cifar-10-batches-py``) exists.
    """
    env = os.environ.get("CS231N_DATASET", "").strip()
    if name is not None:
        requested, asked = name, f"load_dataset(name={name!r})"
    elif env:
        requested, asked = env, f"CS231N_DATASET={env}"
    else:
        requested, asked = "auto", "CS231N_DATASET is unset, meaning auto,"
    key = requested.lower()
    if key not in names:
        raise ValueError(
            f"unknown dataset {requested!r}: choose one of {', '.join(names)} "
            "(set CS231N_DATASET or pass name=...)"
        )

    cifar_env = os.environ.get("CIFAR10_DIR", "").strip()
    cifar_dir = Path(cifar_env).expanduser() if cifar_env else datasets_dir / "cifar-10-batches-py"
    where = shown(cifar_dir, repo_root)
    where = f"CIFAR10_DIR ({where})" if cifar_env else where
    if cifar_env and key != "fashion-mnist":
        problem = cifar_folder_problem(cifar_dir, datasets_dir)
        if problem:
            raise FileNotFoundError(
                cifar10_dir_message(cifar_env, cifar_dir, problem, repo_root, datasets_dir)
            )
    if key != "auto":
        return key, asked, cifar_dir
    if cifar_dir.is_dir():
        return "cifar10", f"{asked} and CIFAR-10 was found in {where}", cifar_dir
    reason = (
        f"{asked} and CIFAR-10 is not in {where} (./get_datasets.sh downloads it): "
        "using the bundled Fashion-MNIST"
    )
    return "fashion-mnist", reason, cifar_dir
