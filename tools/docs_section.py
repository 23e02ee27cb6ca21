"""Write a generated section of a Markdown page, between its named markers.

A page such as ``docs/speed.md`` holds hand-written prose and sections a tool writes.
Each generated section sits between two HTML comments, which Markdown does not show::

    <!-- begin generated: bench -->
    ...replaced on each run...
    <!-- end generated: bench -->

``write_section(page, "bench", text)`` replaces what is between them and leaves the rest
of the page as it was. The page is written to a temporary file beside it and renamed
over it, so an interrupted run leaves the old page whole.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def markers(name: str) -> tuple[str, str]:
    """The begin and end comment lines of the section called name."""
    return f"<!-- begin generated: {name} -->", f"<!-- end generated: {name} -->"


def replace_section(page: str, name: str, body: str, where: str = "the page") -> str:
    """page with the text between name's markers replaced by body (one line break kept
    after the begin marker and before the end marker)."""
    begin, end = markers(name)
    counts = (page.count(begin), page.count(end))
    if counts != (1, 1):
        raise ValueError(
            f"{where}: expected one '{begin}' and one '{end}' line, found {counts[0]} and "
            f"{counts[1]}; put the two marker lines back around the generated section "
            "(git checkout restores the committed page)"
        )
    start, stop = page.index(begin) + len(begin), page.index(end)
    if stop < start:
        raise ValueError(f"{where}: '{end}' comes before '{begin}'; swap them back")
    return page[:start] + "\n" + body.strip("\n") + "\n" + page[stop:]


def write_section(path: Path, name: str, body: str) -> None:
    """Replace the section called name in the Markdown file at path, atomically."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ValueError(
            f"{path}: no such page to write the '{name}' section into; run from the "
            "repository root, or restore the page with git checkout"
        ) from None
    updated = replace_section(text, name, body, where=str(path))
    fd, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
            out.write(updated)
        os.replace(partial, path)
    except BaseException:
        os.unlink(partial)
        raise
