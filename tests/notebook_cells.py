"""The notebook's opening code, as the tests of students' environments read it."""

from __future__ import annotations

import nbformat

AUTORELOAD = "%load_ext autoreload"


def import_prelude(nb: nbformat.NotebookNode) -> str:
    """The code that runs before the notebook's first third-party import: every code cell
    after the Colab set-up cell, up to and including the one that loads autoreload."""
    sources = []
    for cell in nb.cells:
        if cell.cell_type != "code" or "google.colab" in cell.source:
            continue
        sources.append(cell.source)
        if AUTORELOAD in cell.source:
            return "\n".join(sources) + "\n"
    raise AssertionError(f"the notebook has no cell with {AUTORELOAD!r}")
