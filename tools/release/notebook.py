"""Notebook steps of the release: stub solution cells, blank answers, clear outputs.

Conventions in the reference notebook (cell tags, set in Jupyter's property inspector):

- ``solution``: a code cell the student writes. It starts with a comment
  ``# TODO: <task>`` (continued on more comment lines if long); the student edition
  keeps that comment and replaces the code below it with
  ``raise NotImplementedError("<task> (<notebook path>)")``.
- ``answer``: a markdown cell holding a worked answer; the student edition replaces it
  with :data:`ANSWER_BLANK`.

Cells are never added, removed or reordered, and tags and ids stay, so solutions can be
matched back to stubs by position. Any other metadata, and every attachment, is stripped
(:func:`strip_metadata`).
"""

from __future__ import annotations

import copy
import re

import nbformat

from .pysource import ReleaseError, string_literal

SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"
ANSWER_BLANK = "**Your answer:** *fill this in*"
_TODO = re.compile(r"#\s*TODO:\s*(?P<task>\S.*?)\s*$")


def tags(cell: nbformat.NotebookNode) -> set[str]:
    """The cell's tags (an empty set when it has none)."""
    return set(cell.get("metadata", {}).get("tags", []))


def check_tags(nb: nbformat.NotebookNode, path: str) -> None:
    """Raise ReleaseError for a tag on the wrong kind of cell or a cell with both tags."""
    for index, cell in enumerate(nb.cells):
        where = f"{path}, cell {index}"
        cell_tags = tags(cell)
        if {SOLUTION_TAG, ANSWER_TAG} <= cell_tags:
            raise ReleaseError(f"{where}: tagged both {SOLUTION_TAG!r} and {ANSWER_TAG!r}")
        if SOLUTION_TAG in cell_tags and cell.cell_type != "code":
            raise ReleaseError(
                f"{where}: tag {SOLUTION_TAG!r} is for code cells, this is {cell.cell_type}; "
                f"tag worked answers in markdown {ANSWER_TAG!r}"
            )
        if ANSWER_TAG in cell_tags and cell.cell_type != "markdown":
            raise ReleaseError(
                f"{where}: tag {ANSWER_TAG!r} is for markdown cells, this is {cell.cell_type}; "
                f"tag code the student writes {SOLUTION_TAG!r}"
            )


def solution_todo(cell: nbformat.NotebookNode, where: str) -> tuple[list[str], str]:
    """The TODO comment of a solution cell and its task.

    The comment is the first line ``# TODO: <task>`` and any comment lines right below
    it, which continue the task. Raises ReleaseError when the cell does not start with
    a TODO or has no code below it to replace.
    """
    lines = cell.source.splitlines()
    match = _TODO.fullmatch(lines[0].strip()) if lines else None
    if match is None:
        raise ReleaseError(
            f"{where}: a {SOLUTION_TAG!r} cell must start with a line '# TODO: <task>'; "
            f"it starts with {(lines or [''])[0]!r}"
        )
    end = 1
    while end < len(lines) and lines[end].lstrip().startswith("#"):
        end += 1
    if not any(line.strip() for line in lines[end:]):
        raise ReleaseError(
            f"{where}: {SOLUTION_TAG!r} cell has nothing to replace below its TODO comment; "
            "put the reference solution there or remove the tag"
        )
    more = [line.strip().lstrip("#").strip() for line in lines[1:end]]
    return lines[:end], " ".join([match["task"], *filter(None, more)])


def stub_solution_cells(nb: nbformat.NotebookNode, path: str) -> nbformat.NotebookNode:
    """Copy of ``nb`` with each solution cell cut to its TODO comment and a raise."""
    check_tags(nb, path)
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        if SOLUTION_TAG in tags(cell):
            todo, task = solution_todo(cell, f"{path}, cell {index}")
            stub = f"raise NotImplementedError({string_literal(f'{task} ({path})')})"
            cell.source = "\n".join([*todo, stub])
    return nb


def blank_answer_cells(nb: nbformat.NotebookNode, path: str) -> nbformat.NotebookNode:
    """Copy of ``nb`` with each answer cell replaced by the answer blank."""
    check_tags(nb, path)
    nb = copy.deepcopy(nb)
    for index, cell in enumerate(nb.cells):
        if ANSWER_TAG in tags(cell):
            if not cell.source.strip() or cell.source.strip() == ANSWER_BLANK:
                raise ReleaseError(
                    f"{path}, cell {index}: {ANSWER_TAG!r} cell has no worked answer to "
                    "replace; write it or remove the tag"
                )
            cell.source = ANSWER_BLANK
    return nb


def clear_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of ``nb`` without outputs, execution counts or execution timings."""
    nb = copy.deepcopy(nb)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
        cell.get("metadata", {}).pop("execution", None)
    return nb


# What a released notebook keeps of its metadata: everything else (an editor's state, a
# tool's notes, a solution pasted into a cell's metadata) could carry the reference.
KEPT_NOTEBOOK_METADATA = ("kernelspec", "language_info")
KEPT_CELL_METADATA = ("tags",)


def strip_metadata(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Copy of ``nb`` with only the metadata the student edition needs, and no attachments.

    The notebook keeps :data:`KEPT_NOTEBOOK_METADATA`, each cell
    :data:`KEPT_CELL_METADATA` (the tags: nbval's and the release's). Attachments (images
    pasted into markdown) go: a worked answer could hide in one.
    """
    nb = copy.deepcopy(nb)
    nb.metadata = nbformat.from_dict(
        {k: v for k, v in nb.metadata.items() if k in KEPT_NOTEBOOK_METADATA}
    )
    for cell in nb.cells:
        cell.metadata = nbformat.from_dict(
            {k: v for k, v in cell.get("metadata", {}).items() if k in KEPT_CELL_METADATA}
        )
        cell.pop("attachments", None)
    return nb


def tagged_sources(nb: nbformat.NotebookNode) -> dict[int, str]:
    """Sources of the solution and answer cells, by cell index (what the stubs hide)."""
    return {
        index: cell.source
        for index, cell in enumerate(nb.cells)
        if tags(cell) & {SOLUTION_TAG, ANSWER_TAG}
    }


def restore_sources(nb: nbformat.NotebookNode, sources: dict[int, str]) -> nbformat.NotebookNode:
    """Copy of ``nb`` with the cells at the given indices set back to ``sources``."""
    nb = copy.deepcopy(nb)
    for index, source in sources.items():
        nb.cells[index].source = source
    return nb


def read(data: bytes) -> nbformat.NotebookNode:
    """Parse notebook bytes (nbformat 4)."""
    return nbformat.reads(data.decode("utf-8"), as_version=4)


def write(nb: nbformat.NotebookNode) -> bytes:
    """Serialise a notebook the way Jupyter does (nbformat's writer, trailing newline)."""
    return (nbformat.writes(nb) + "\n").encode("utf-8")
