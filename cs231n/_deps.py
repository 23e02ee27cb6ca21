"""What the kit needs from the Python it runs in, said once and clearly. Standard library only.

:func:`require_packages` names every package that is missing (or too old) in one
``ImportError``, with the pip command that installs only those, so a student sees one
message instead of the first bare ``ModuleNotFoundError`` of many. It looks packages up
without importing them.

:func:`install_imp_shim` makes IPython 7's ``%load_ext autoreload`` work on Python 3.12 and
later: that IPython (the one Colab ships) still does ``from imp import reload``, and the
``imp`` module was removed from Python in 3.12.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import types
from collections.abc import Iterable

# What the kit imports, by import name: (the name pip knows it by, the oldest version the
# kit is tested with). requirements-student.txt lists the same minimums.
PACKAGES: dict[str, tuple[str, str]] = {
    "numpy": ("numpy", "1.26"),
    "matplotlib": ("matplotlib", "3.8"),
    "tqdm": ("tqdm", "4.62"),
    "threadpoolctl": ("threadpoolctl", "3.1"),
}
# What running and packing the notebook needs on top (``python -m cs231n.submission``).
NOTEBOOK_PACKAGES: dict[str, tuple[str, str]] = {
    "IPython": ("ipython", "7.34"),
    "ipykernel": ("ipykernel", "6.17"),
    "nbformat": ("nbformat", "5.7"),
    "nbclient": ("nbclient", "0.7"),
}


def install_imp_shim() -> None:
    """Register a stand-in ``imp`` module where ``import imp`` fails (Python >= 3.12).

    IPython 7's autoreload extension does ``from imp import reload``; the stand-in's
    ``reload`` is :func:`importlib.reload`, which is what ``imp.reload`` always was. Where
    a real ``imp`` exists (Python <= 3.11), nothing changes.
    """
    if _importable("imp"):  # looked up, not imported: importing it warns on 3.11
        return
    shim = types.ModuleType("imp", "Stand-in for the imp module, removed in Python 3.12.")
    shim.reload = importlib.reload  # type: ignore[attr-defined]
    sys.modules["imp"] = shim


def require_packages(
    extra: dict[str, tuple[str, str]] | None = None, *, exit: bool = False
) -> None:
    """Raise one ImportError naming every package the kit needs that is missing or too old.

    Parameters
    ----------
    extra : more packages to require, in the form of :data:`PACKAGES` (import name ->
        (pip name, oldest version)), e.g. :data:`NOTEBOOK_PACKAGES`.
    exit : for a command (``python -m cs231n.checks``): print the message alone to stderr
        and exit with status 1, instead of raising (which would print a traceback).

    Raises
    ------
    ImportError
        Naming each missing package, each one older than the kit needs, and the
        ``pip install`` command that installs only those (and nothing else).
    """
    try:
        _require({**PACKAGES, **(extra or {})})
    except ImportError as error:
        if not exit:
            raise
        print(error, file=sys.stderr)
        raise SystemExit(1) from None


def _require(packages: dict[str, tuple[str, str]]) -> None:
    missing, old = [], []
    for module, (pip_name, minimum) in packages.items():
        if not _importable(module):
            missing.append(pip_name)
            continue
        version = _version(pip_name)
        if version is not None and _numbers(version) < _numbers(minimum):
            old.append((pip_name, version, minimum))
    if not missing and not old:
        return
    lines = []
    if missing:
        lines.append(f"the cs231n kit needs {_join(missing)}, not installed in this Python")
    for pip_name, version, minimum in old:
        lines.append(f"the cs231n kit needs {pip_name} >= {minimum}; this Python has {version}")
    wanted = missing + [f"{name}>={minimum}" for name, _, minimum in old]
    numpy = _version("numpy") if "numpy" not in {w.split(">")[0] for w in wanted} else None
    if numpy is not None:
        # Keep this Python's numpy: the newest releases of what is missing may ask for a
        # newer one, and pandas or scipy built for this one would then fail to import.
        wanted.append(f"numpy=={numpy}")
    python = _quote(sys.executable or "python")
    lines += [
        "Install only these, keeping the numpy this Python has:",
        f"    {python} -m pip install {' '.join(_quote(w) for w in wanted)}",
        f"in a notebook cell: %pip install {' '.join(_quote(w) for w in wanted)}",
        "add --user after install where this Python's packages are not yours to change "
        "(a shared JupyterHub), then restart the kernel.",
    ]
    raise ImportError("\n".join(lines), name=(missing or [old[0][0]])[0])


def _importable(module: str) -> bool:
    """Whether ``import module`` can find it (looked up, not imported)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # ValueError: a module whose __spec__ is None
        return module in sys.modules and sys.modules[module] is not None


def _version(pip_name: str) -> str | None:
    try:
        return importlib.metadata.version(pip_name)
    except importlib.metadata.PackageNotFoundError:  # found, but installed without metadata
        return None


def _numbers(version: str) -> tuple[int, ...]:
    """The leading release numbers of a version: "2.1.3rc1" -> (2, 1, 3)."""
    numbers = []
    for part in version.split("."):
        match = re.match(r"\d+", part)
        if match is None:
            break
        numbers.append(int(match.group()))
        if match.end() < len(part):  # "3rc1": a pre-release; the numbers end here
            break
    return tuple(numbers)


def _join(names: Iterable[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _quote(word: str) -> str:
    """``word`` as one argument of a shell command (cmd.exe and POSIX shells alike)."""
    if re.fullmatch(r"[\w./:\\=-]+", word):
        return word
    if os.name == "nt":
        return f'"{word}"'
    return "'" + word.replace("'", "'\"'\"'") + "'"
