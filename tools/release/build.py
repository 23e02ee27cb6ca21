"""Build the student edition: the pipeline, composed in :func:`build_edition`.

Every step is a function from a file tree to a file tree (paths relative to the
repository root, POSIX separators, mapped to :class:`File`), so each can be tested on a
hand-made tree. Writing to disk happens once, at the end.
"""

from __future__ import annotations

import argparse
import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import leaks, pysource
from . import notebook as nbsteps
from .pysource import ReleaseError
from .stubs import TASKS

REPO = Path(__file__).resolve().parents[2]
OVERLAY = Path(__file__).resolve().parent / "student"

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
    "pyproject.toml",
)
# The bundled sample is at most 10 MB (DESIGN.md); anything near this limit means a
# downloaded dataset slipped into SHIPPED.
MAX_BYTES = 20_000_000


@dataclass(frozen=True)
class File:
    data: bytes
    executable: bool = False


Tree = dict[str, File]


def select_files(src: Path, patterns: tuple[str, ...] = SHIPPED) -> Tree:
    """Step 1: the files of ``src`` that match the allow-list (caches never)."""
    tree: Tree = {}
    for pattern in patterns:
        for path in sorted(src.glob(pattern)):
            rel = path.relative_to(src).as_posix()
            if not path.is_file() or "__pycache__" in rel.split("/"):
                continue
            executable = bool(path.stat().st_mode & stat.S_IXUSR)
            tree[rel] = File(path.read_bytes(), executable)
    return tree


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
                nb = nbsteps.read(file.data)
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


def add_overlay(tree: Tree, overlay: Path = OVERLAY) -> Tree:
    """Step 6: add the student variants of README.md and Makefile (replacing any)."""
    return {**tree, **select_files(overlay, ("*",))}


def check_size(tree: Tree, limit: int = MAX_BYTES) -> Tree:
    """Step 7: refuse an edition too large to be code plus the bundled sample."""
    total = sum(len(f.data) for f in tree.values())
    if total > limit:
        largest = sorted(tree, key=lambda p: -len(tree[p].data))[:3]
        raise ReleaseError(
            f"the student edition would hold {total:,} bytes (limit {limit:,}); largest "
            f"files: {largest}. Is a downloaded dataset matched by SHIPPED?"
        )
    return tree


def check_no_leaks(reference: Tree, edition: Tree) -> None:
    """Step 8: refuse an edition in which a line of a solution still appears."""
    snippets = leaks.solution_snippets({p: f.data for p, f in reference.items()})
    found = leaks.find_leaks(snippets, {p: f.data for p, f in edition.items()})
    if found:
        raise ReleaseError(
            "solution code would ship in the student edition (reword it there, or list it "
            "in PUBLIC in tools/release/leaks.py if it gives nothing away):\n" + "\n".join(found)
        )


def build_edition(src: Path = REPO, tasks: dict[tuple[str, str, int], str] = TASKS) -> Tree:
    """The whole pipeline, reference files in, student files out (nothing written)."""
    reference = select_files(src)
    edition = stub_python(reference, tasks)
    edition = stub_solution_cells(edition)
    edition = blank_answer_cells(edition)
    edition = clear_outputs(edition)
    edition = add_overlay(edition)
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


def _describe_source(src: Path) -> str:
    try:
        result = subprocess.run(
            ["git", "-C", str(src), "describe", "--always", "--dirty"],
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return str(src)
    return f"{src} at {result.stdout.strip()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tools.release",
        description="Build the student edition into DIST/student/ and DIST/student.zip.",
    )
    parser.add_argument("--src", type=Path, default=REPO, help="reference repository root")
    parser.add_argument("--dist", type=Path, default=None, help="output folder (SRC/dist)")
    args = parser.parse_args(argv)
    dist = args.dist if args.dist is not None else args.src / "dist"
    try:
        edition = build_edition(args.src)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    write_tree(edition, dist / "student")
    write_zip(edition, dist / "student.zip", root="student")
    stubs = sum(
        len(pysource.find_blocks(f.data.decode("utf-8"), p))
        for p, f in edition.items()
        if p.endswith(".py")
    )
    print(f"student edition of {_describe_source(args.src)}")
    print(f"  {len(edition)} files, {stubs} code stubs: {dist / 'student'}")
    print(f"  zip: {dist / 'student.zip'}")
    return 0
