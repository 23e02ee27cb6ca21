"""Build the student edition: the pipeline, composed in :func:`build_edition`.

Every step is a function from a file tree to a file tree (paths relative to the
repository root, POSIX separators, mapped to :class:`File`), so each can be tested on a
hand-made tree. Writing to disk happens once, at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import nbformat

from cs231n import _safe_io
from cs231n.submission import RELEASE_RECORD

from . import leaks, pysource
from . import notebook as nbsteps
from .pysource import ReleaseError
from .stubs import TASKS

REPO = Path(__file__).resolve().parents[2]
OVERLAY_DIR = "tools/release/student"  # taken from the source's git, like the rest
OVERLAY = REPO / OVERLAY_DIR

# What a student gets, as glob patterns relative to the repository root (an allow-list:
# a new file ships only once it is named here). Files in OVERLAY are added on top.
SHIPPED = (
    "cs231n/**/*.py",
    "notebooks/*.ipynb",
    "datasets/fashion-mnist/**/*",
    "datasets/*.md",
    "datasets/*.txt",
    "datasets/LICENSE*",
    "get_datasets.sh",
    "requirements.txt",
    "requirements-student.txt",
    "pyproject.toml",
)
# The bundled sample is kept under 10 MB by design; anything near this limit means a
# downloaded dataset slipped into SHIPPED.
MAX_BYTES = 20_000_000
GIT_SYMLINK, GIT_SUBMODULE = "120000", "160000"  # git's modes for the two


@dataclass(frozen=True)
class File:
    data: bytes
    executable: bool = False


Tree = dict[str, File]


def select_files(src: Path, patterns: tuple[str, ...] = SHIPPED, *, git: bool = True) -> Tree:
    """Step 1: the files git tracks in ``src`` that match the allow-list.

    Only tracked files can ship, so nothing stray in the working tree (notes, keys,
    caches, downloads) reaches students; their content is the working tree's (see
    :func:`describe` for how a difference from the commit shows). A shipped path that
    is a symbolic link, a submodule or anything but a regular file fails the build.
    ``git=False`` takes every matching file on disk instead, for a copy without git
    history (an unpacked archive that is trusted as a whole, such as an autograder's).
    """
    matchers = [_glob(pattern) for pattern in patterns]
    listed = tracked_files(src) if git else _files_on_disk(src, patterns)
    tree: Tree = {}
    for rel, mode in sorted(listed.items()):
        if "__pycache__" in rel.split("/") or not any(m.fullmatch(rel) for m in matchers):
            continue
        if not rel.isprintable() or rel != rel.encode("utf-8", "replace").decode("utf-8"):
            raise ReleaseError(f"{ascii(rel)}: the file name is not printable UTF-8; rename it")
        if mode in (GIT_SYMLINK, GIT_SUBMODULE):
            kind = "a symbolic link" if mode == GIT_SYMLINK else "a git submodule"
            raise ReleaseError(f"{rel}: {kind} in git; shipped files must be regular files")
        file = _read_regular(src, rel)
        if file is not None:  # None: deleted in the working tree, so it does not ship
            tree[rel] = file
    return tree


def tracked_files(src: Path) -> dict[str, str]:
    """Paths (POSIX, relative to ``src``) that git tracks in ``src``, with git's modes."""
    top = Path(_git(src, "rev-parse", "--show-toplevel").strip())
    if top.resolve() != src.resolve():
        raise ReleaseError(
            f"{src} is not the root of its git checkout (that is {top}); "
            "pass the repository root as --src"
        )
    files: dict[str, str] = {}
    for entry in filter(None, _git(src, "ls-files", "-z", "--stage").split("\0")):
        info, rel = entry.split("\t", 1)  # "<mode> <object> <stage>\t<path>"
        files[rel] = info.split()[0]
    return files


def _files_on_disk(src: Path, patterns: tuple[str, ...]) -> dict[str, str]:
    """Files and links in ``src`` that match ``patterns``, as :func:`tracked_files` gives
    them (:func:`_read_regular` then refuses the links)."""
    found = (path for pattern in patterns for path in src.glob(pattern))
    return {
        path.relative_to(src).as_posix(): "100644"
        for path in found
        if path.is_file() or path.is_symlink()
    }


def describe(src: Path, patterns: tuple[str, ...] = SHIPPED) -> tuple[str, list[str]]:
    """The commit ``src`` is at, with ``-dirty`` when a file that shapes the edition
    (a shipped file or the builder in tools/release/) differs from it, and those files.
    """
    try:
        commit = _git(src, "rev-parse", "--short", "HEAD").strip()
    except ReleaseError:
        commit = "no commit"  # a repository with nothing committed yet
    status = _git(src, "status", "--porcelain=v1", "-z", "--untracked-files=no").split("\0")
    matchers = [_glob(p) for p in (*patterns, "tools/release/**/*")]
    changed, entries = [], iter(status)
    for entry in entries:
        if not entry:
            continue
        if entry[0] in "RC":  # a rename or copy is followed by its original path
            next(entries, None)
        if any(m.fullmatch(entry[3:]) for m in matchers):
            changed.append(entry[3:])
    return (f"{commit}-dirty" if changed else commit), changed


def _git(src: Path, *args: str) -> str:
    """Run git in ``src`` and return its output; a clear ReleaseError when it fails."""
    try:
        result = subprocess.run(
            ["git", "-C", str(src), *args],
            capture_output=True,
            encoding="utf-8",
            errors="surrogateescape",  # a file name that is not UTF-8 still gets a message
            check=False,
        )
    except FileNotFoundError:
        raise ReleaseError(
            "git is not installed; the release is built from the files git tracks "
            "(Debian: apt-get install git)"
        ) from None
    if result.returncode != 0:
        if "not a git repository" in result.stderr:
            raise ReleaseError(
                f"{src} is not a git checkout. The student edition is built only from "
                "files git tracks, so that nothing stray (notes, keys, links) ships: "
                "build it from a clone of the repository (git clone)"
            )
        raise ReleaseError(f"git {' '.join(args)} failed in {src}: {result.stderr.strip()}")
    return result.stdout


def _glob(pattern: str) -> re.Pattern[str]:
    """A regex for a POSIX path pattern: ``*`` within a folder, ``**/`` any depth."""
    parts = []
    for piece in pattern.split("/"):
        if piece == "**":
            parts.append("(?:[^/]+/)*")
        else:
            regex = "".join(
                "[^/]*" if c == "*" else "[^/]" if c == "?" else re.escape(c) for c in piece
            )
            parts.append(regex + "/")
    return re.compile("".join(parts)[:-1])


def _read_regular(src: Path, rel: str) -> File | None:
    """The file at ``src/rel``, never through a symbolic link (None when it is gone)."""
    path = src / rel
    for parent in reversed(Path(rel).parents[:-1]):  # a linked folder would lead out too
        if (src / parent).is_symlink():
            raise ReleaseError(
                f"{parent.as_posix()}/ is a symbolic link (to {os.readlink(src / parent)}); "
                f"shipped files must sit in real folders: {rel} would be read through it"
            )
    if path.is_symlink():
        raise ReleaseError(
            f"{rel} is a symbolic link (to {os.readlink(path)}); shipped files must be "
            "regular files: replace the link with the file or stop tracking it"
        )
    try:
        mode = path.lstat().st_mode
        # never through a link put there since the check above, never waiting on a pipe
        data = _safe_io.read_file(path, MAX_BYTES, "a shipped file")
    except FileNotFoundError:
        return None
    except _safe_io.FileRefused as refused:
        problem = {
            "too big": f"holds {refused.size:,} bytes, more than the whole edition may "
            f"({MAX_BYTES:,}); is a download tracked by mistake?",
            "link": "is a symbolic link; shipped files must be regular files",
            "grew": "grew while being read; build again once nothing writes to it",
        }.get(refused.reason, "is not a regular file; only regular files ship")
        raise ReleaseError(f"{rel} {problem}") from None
    except OSError as error:
        raise ReleaseError(f"{rel}: cannot be read: {error}") from None
    return File(data, bool(mode & stat.S_IXUSR))


def read_notebook(path: str, data: bytes) -> nbformat.NotebookNode:
    """Parse a notebook of the tree, or a ReleaseError naming the notebook and the cell.

    Every cell needs a unique id: the release record and ``make submission`` know cells
    by id. Jupyter gives cells ids since nbformat 4.5 (open and save the notebook).
    """
    try:
        raw = json.loads(data.decode("utf-8"))
    except ValueError as error:  # also UnicodeDecodeError, JSONDecodeError
        raise ReleaseError(f"{path}: not a notebook: not UTF-8 JSON ({error})") from None
    except RecursionError:
        raise ReleaseError(f"{path}: not a notebook: its JSON is nested too deep") from None
    if not isinstance(raw, dict) or raw.get("nbformat") != 4:
        raise ReleaseError(f'{path}: not a notebook in format 4 (no "nbformat": 4 at the top)')
    if not isinstance(raw.get("cells"), list):
        raise ReleaseError(f'{path}: has no "cells" list')
    seen: dict[str, int] = {}
    for index, cell in enumerate(raw["cells"]):
        where = f"{path}, cell {index}"
        if not isinstance(cell, dict):
            raise ReleaseError(f"{where}: is {type(cell).__name__}, not a cell (a JSON object)")
        cell_id = cell.get("id")
        if isinstance(cell_id, str):
            where += f" (id {cell_id})"
        if cell.get("cell_type") not in ("code", "markdown", "raw"):
            raise ReleaseError(
                f'{where}: "cell_type" is {cell.get("cell_type")!r}; '
                'expected "code", "markdown" or "raw"'
            )
        source = cell.get("source")
        if not isinstance(source, str) and not (
            isinstance(source, list) and all(isinstance(line, str) for line in source)
        ):
            raise ReleaseError(f'{where}: "source" is {source!r}, not text')
        metadata = cell.get("metadata", {})
        if not isinstance(metadata, dict):
            raise ReleaseError(f'{where}: "metadata" is {metadata!r}, not a JSON object')
        tags = metadata.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(tag, str) for tag in tags):
            raise ReleaseError(f"{where}: tags must be a list of strings, not {tags!r}")
        if not isinstance(cell_id, str) or not cell_id:
            raise ReleaseError(
                f"{where}: has no cell id; open and save the notebook in Jupyter (nbformat "
                "4.5 gives every cell one)"
            )
        if cell_id in seen:
            raise ReleaseError(f"{where}: cell {seen[cell_id]} has this id too; ids are unique")
        seen[cell_id] = index
    try:
        nbformat.validate(raw)
    except RecursionError:
        raise ReleaseError(f"{path}: not a valid notebook: nested too deep") from None
    except nbformat.ValidationError as error:
        place = "/".join(str(key) for key in error.absolute_path)
        raise ReleaseError(f"{path}: not a valid notebook: {place}: {error.message}") from None
    return nbsteps.read(data)


def stub_python(tree: Tree, tasks: dict[tuple[str, str, int], str] = TASKS) -> Tree:
    """Step 2: every marked block in a ``.py`` file becomes a NotImplementedError stub.

    Fails when a block has no entry in ``tasks`` or an entry of ``tasks`` has no block.
    """
    out = dict(tree)
    used: set[tuple[str, str, int]] = set()
    for path, file in tree.items():
        if path.endswith(".py"):
            text = file.data.decode("utf-8")
            used |= pysource.used_task_keys(text, path)
            stubbed = pysource.stub_source(text, path, tasks)
            out[path] = File(stubbed.encode("utf-8"), file.executable)
    stale = sorted(set(tasks) - used)
    if stale:
        raise ReleaseError(
            f"the stub table names blocks that the source does not have: {stale}; "
            "remove them from TASKS in tools/release/stubs.py or restore the markers"
        )
    return out


def _each_notebook(step: Callable[..., object], *, with_path: bool = True) -> Callable:
    """Lift a notebook -> notebook function to a tree -> tree step."""

    def tree_step(tree: Tree) -> Tree:
        out = dict(tree)
        for path, file in tree.items():
            if path.endswith(".ipynb"):
                nb = read_notebook(path, file.data)
                nb = step(nb, path) if with_path else step(nb)
                out[path] = File(nbsteps.write(nb), file.executable)
        return out

    tree_step.__name__ = step.__name__
    tree_step.__doc__ = step.__doc__
    return tree_step


# Steps 3-5: the notebook transformations, each applied to every notebook.
stub_solution_cells = _each_notebook(nbsteps.stub_solution_cells)
blank_answer_cells = _each_notebook(nbsteps.blank_answer_cells)
clear_outputs = _each_notebook(nbsteps.clear_outputs, with_path=False)
strip_metadata = _each_notebook(nbsteps.strip_metadata, with_path=False)


def record_release(tree: Tree) -> Tree:
    """Step 6: write down what each notebook was released as, in ``RELEASE_RECORD``.

    For every cell, in order: its id, type, tags and source (the stub, for a solution
    or answer cell). ``make submission`` compares the student's notebook with it.
    """
    notebooks = {}
    for path, file in sorted(tree.items()):
        if path.endswith(".ipynb"):
            cells = read_notebook(path, file.data).cells
            notebooks[path] = [
                {
                    "id": cell.id,
                    "cell_type": cell.cell_type,
                    "tags": sorted(nbsteps.tags(cell)),
                    "source": cell.source,
                }
                for cell in cells
            ]
    record = json.dumps({"notebooks": notebooks}, indent=1, ensure_ascii=False) + "\n"
    return {**tree, RELEASE_RECORD: File(record.encode("utf-8"))}


def add_overlay(tree: Tree, src: Path = REPO, *, git: bool = True) -> Tree:
    """Step 7: add the student variants of README.md and Makefile (replacing any)."""
    overlay = select_files(src, (f"{OVERLAY_DIR}/*",), git=git)
    return {**tree, **{rel.removeprefix(f"{OVERLAY_DIR}/"): f for rel, f in overlay.items()}}


def check_size(tree: Tree, limit: int = MAX_BYTES) -> Tree:
    """Step 8: refuse an edition too large to be code plus the bundled sample."""
    total = sum(len(f.data) for f in tree.values())
    if total > limit:
        largest = sorted(tree, key=lambda p: -len(tree[p].data))[:3]
        raise ReleaseError(
            f"the student edition would hold {total:,} bytes (limit {limit:,}); largest "
            f"files: {largest}. Is a downloaded dataset matched by SHIPPED?"
        )
    return tree


def check_no_leaks(reference: Tree, edition: Tree) -> None:
    """Step 9: refuse an edition in which a line of a solution still appears."""
    snippets = leaks.solution_snippets({p: f.data for p, f in reference.items()})
    found = leaks.find_leaks(snippets, {p: f.data for p, f in edition.items()})
    if found:
        raise ReleaseError(
            "solution code would ship in the student edition (reword it there, or list it "
            "in PUBLIC in tools/release/leaks.py if it gives nothing away):\n" + "\n".join(found)
        )


def build_edition(
    src: Path = REPO, tasks: dict[tuple[str, str, int], str] = TASKS, *, git: bool = True
) -> Tree:
    """The whole pipeline, reference files in, student files out (nothing written).

    ``git=False``: from every matching file in ``src``, not only tracked ones (see
    :func:`select_files`).
    """
    reference = select_files(src, git=git)
    edition = stub_python(reference, tasks)
    edition = stub_solution_cells(edition)
    edition = blank_answer_cells(edition)
    edition = clear_outputs(edition)
    edition = strip_metadata(edition)
    edition = record_release(edition)
    edition = add_overlay(edition, src, git=git)
    edition = check_size(edition)
    check_no_leaks(reference, edition)
    return edition


def write_tree(tree: Tree, dest: Path) -> None:
    """Write ``tree`` to ``dest``, replacing a previous build there as a whole."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    for rel, file in sorted(tree.items()):
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(file.data)
        target.chmod(0o755 if file.executable else 0o644)
    staging.chmod(0o755)
    if dest.exists():
        shutil.rmtree(dest)
    os.replace(staging, dest)


def write_zip(tree: Tree, path: Path, root: str) -> None:
    """Write ``tree`` as a zip under folder ``root``; same tree, same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for rel, file in sorted(tree.items()):
            info = zipfile.ZipInfo(f"{root}/{rel}", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = (0o100755 if file.executable else 0o100644) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, file.data)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.release",
        description="Build the student edition into DIST/student/ and DIST/student.zip.",
    )
    parser.add_argument("--src", type=Path, default=REPO, help="reference repository root")
    parser.add_argument("--dist", type=Path, default=None, help="output folder (SRC/dist)")
    parser.add_argument(
        "--no-git",
        action="store_true",
        help="SRC is not a git checkout (an unpacked archive): take every matching file "
        "in it, not only the ones git tracks. Anything stray in SRC ships too.",
    )
    args = parser.parse_args(argv)
    dist = args.dist if args.dist is not None else args.src / "dist"
    try:
        edition = build_edition(args.src, git=not args.no_git)
        commit, changed = describe(args.src) if not args.no_git else ("", [])
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    write_tree(edition, dist / "student")
    write_zip(edition, dist / "student.zip", root="cs231n-softmax")  # the Colab cell's KIT_FOLDER
    stubs = sum(
        len(pysource.find_blocks(f.data.decode("utf-8"), p))
        for p, f in edition.items()
        if p.endswith(".py")
    )
    where = "(every matching file, not from git)" if args.no_git else f"at {commit}"
    print(f"student edition of {args.src} {where}")
    if changed:
        print("  dirty: built from the working tree, which differs from that commit in:")
        print("".join(f"    {rel}\n" for rel in changed), end="")
    print(f"  {len(edition)} files, {stubs} code stubs: {dist / 'student'}")
    print(f"  zip: {dist / 'student.zip'}")
    return 0
