"""Leak check: no line of reference solution may appear in the student edition."""

from __future__ import annotations

import json

from . import notebook as nbsteps
from . import pysource

# Shorter lines (``else:``, ``return``, ``loss = 0``) are too common to count as leaks.
MIN_CHARS = 12

# Solution lines that the reference also states in the open, with where: not leaks.
PUBLIC = {
    "scores = X @ W": "the model itself, in LinearClassifier's docstring",
}


def code_part(line: str) -> str:
    """A line without its indentation and trailing ``  # comment``."""
    stripped = line.strip()
    if stripped.startswith("#"):
        return ""
    return stripped.split("  #", 1)[0].rstrip()


def solution_snippets(reference: dict[str, bytes]) -> set[str]:
    """Non-trivial lines of every solution: inside markers and in tagged cells.

    ``reference`` maps paths to file contents. The TODO line of a solution cell is kept
    in the student edition on purpose, so it is not a snippet.
    """
    snippets: set[str] = set()
    for path, data in reference.items():
        if path.endswith(".py"):
            for body in pysource.block_bodies(data.decode("utf-8"), path):
                snippets.update(code_part(line) for line in body.splitlines())
        elif path.endswith(".ipynb"):
            nb = nbsteps.read(data)
            for index, source in nbsteps.tagged_sources(nb).items():
                lines = source.splitlines()
                if nbsteps.SOLUTION_TAG in nbsteps.tags(nb.cells[index]):
                    lines = [code_part(line) for line in lines[1:]]
                snippets.update(line.strip() for line in lines)
    return {s for s in snippets if len(s) >= MIN_CHARS and s not in PUBLIC}


def searchable_text(path: str, data: bytes) -> str:
    """What a reader of the file sees: notebooks as cell sources and outputs, not JSON."""
    if path.endswith(".ipynb"):
        nb = nbsteps.read(data)
        parts = [cell.source for cell in nb.cells]
        parts += [json.dumps(cell.get("outputs", []), ensure_ascii=False) for cell in nb.cells]
        return "\n".join(parts)
    return data.decode("utf-8", errors="replace")


def find_leaks(snippets: set[str], edition: dict[str, bytes]) -> list[str]:
    """``path: snippet`` for every snippet found in a file of ``edition``."""
    leaks = []
    for path, data in sorted(edition.items()):
        text = searchable_text(path, data)
        leaks += [f"{path}: {s!r}" for s in sorted(snippets) if s in text]
    return leaks
