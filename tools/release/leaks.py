"""Leak check: no line of reference solution may appear in the student edition."""

from __future__ import annotations

import base64
import json
import re

from . import notebook as nbsteps
from . import pysource

# Shorter lines (``else:``, ``return``, ``loss = 0``) are too common to count as leaks,
# and so are lines that only pass an argument (``num_iters=1500,``).
MIN_CHARS = 12
_ARGUMENT = re.compile(r"[\w.]+(=[^=,]+)?,")  # one argument of an exploded call

# Solution lines that the student edition may show, each with the reason. Add a line
# here only when it gives nothing of the solution away.
PUBLIC = {
    "scores = X @ W": "the model itself, in LinearClassifier's docstring",
    'if ds.name == "cifar10":': "the notebook's dataset switch, used in several cells",
}


def is_snippet(code: str) -> bool:
    """Whether a line of solution code is specific enough to count as a leak."""
    return len(code) >= MIN_CHARS and not _ARGUMENT.fullmatch(code) and code not in PUBLIC


def code_part(line: str) -> str:
    """A line without its indentation and trailing ``  # comment``."""
    stripped = line.strip()
    if stripped.startswith("#"):
        return ""
    return stripped.split("  #", 1)[0].rstrip()


def solution_snippets(reference: dict[str, bytes]) -> set[str]:
    """Non-trivial lines of every solution: inside markers and in tagged cells.

    ``reference`` maps paths to file contents. Comments (such as the TODO comment of a
    solution cell, which the student edition keeps on purpose) are not snippets.
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
                    lines = [code_part(line) for line in lines]  # the TODO comment stays
                snippets.update(line.strip() for line in lines)
    return {s for s in snippets if is_snippet(s)}


def _strings(value: object) -> list[str]:
    """Every string in a parsed JSON value, keys included, depth first."""
    found, stack = [], [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            found.extend(k for k in item if isinstance(k, str))
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return found


def _decoded_attachments(raw: dict) -> list[str]:
    """The text inside every attachment's base64 data (a worked answer could hide there)."""
    texts = []
    for cell in raw.get("cells", []) if isinstance(raw.get("cells"), list) else []:
        attachments = cell.get("attachments") if isinstance(cell, dict) else None
        for bundle in (attachments or {}).values() if isinstance(attachments, dict) else []:
            for data in bundle.values() if isinstance(bundle, dict) else []:
                try:
                    texts.append(base64.b64decode(data).decode("utf-8", "replace"))
                except (TypeError, ValueError):
                    continue
    return texts


def searchable_text(path: str, data: bytes) -> str:
    """Everything a file holds as text: for a notebook, every string of its whole JSON.

    Sources and outputs, but also notebook and cell metadata and the decoded contents of
    attachments, each string unescaped, and multi-line sources joined as Jupyter shows them.
    """
    if path.endswith(".ipynb"):
        raw = json.loads(data.decode("utf-8"))
        parts = _strings(raw)
        for cell in raw.get("cells", []) if isinstance(raw, dict) else []:
            if isinstance(cell, dict) and isinstance(cell.get("source"), list):
                parts.append("".join(str(line) for line in cell["source"]))
        parts += _decoded_attachments(raw) if isinstance(raw, dict) else []
        return "\n".join(parts)
    return data.decode("utf-8", errors="replace")


def find_leaks(snippets: set[str], edition: dict[str, bytes]) -> list[str]:
    """``path: snippet`` for every snippet found in a file of ``edition``."""
    leaks = []
    for path, data in sorted(edition.items()):
        text = searchable_text(path, data)
        leaks += [f"{path}: {s!r}" for s in sorted(snippets) if s in text]
    return leaks
