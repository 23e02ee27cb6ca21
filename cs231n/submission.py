"""Pack your submission: run ``make submission`` (or ``python -m cs231n.submission``).

It refuses, and lists what is missing, while a self-check fails (see cs231n.checks), a
TODO cell of the notebook still raises NotImplementedError or an answer is still blank.
Then it runs the whole notebook headless, top to bottom, and writes ``submission.zip``
holding your ``cs231n/`` code and the executed notebook.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import zipfile
from pathlib import Path

import nbformat

from .checks import CHECKS, check

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/softmax.ipynb"
ARCHIVE = "submission.zip"
BLANK = "*fill this in*"  # what an unanswered "Your answer" cell still says


def unfinished(root: Path = ROOT) -> list[str]:
    """What still keeps the work in ``root`` from being complete, one line per item.

    The self-checks run on the imported cs231n, the package this module belongs to:
    the one in ``root`` when run as ``python -m cs231n.submission`` from there.
    """
    problems = []
    for name in CHECKS:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            passed = check(name)
        if not passed:
            problems.append(output.getvalue().strip())
    notebook = root / NOTEBOOK
    if not notebook.is_file():
        return [*problems, f"{NOTEBOOK} is missing"]
    try:
        cells = nbformat.read(notebook, as_version=4).cells
    except Exception as error:  # not JSON, not a notebook: say so instead of a traceback
        return [*problems, f"{NOTEBOOK} cannot be read as a notebook ({error})"]
    for number, cell in enumerate(cells, start=1):  # numbered from 1, as people count
        where = f"{NOTEBOOK} cell {number} of {len(cells)}"
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            first_line = _shorten(cell.source)
            problems.append(f"{where} ({first_line}): still raises NotImplementedError")
        elif cell.cell_type == "markdown" and BLANK in cell.source:
            question = _shorten(cells[number - 2].source) if number > 1 else ""
            problems.append(f"{where} (after {question!r}): the answer still says {BLANK}")
    return problems


def _shorten(text: str, width: int = 60) -> str:
    first_line = (text.strip().splitlines() or [""])[0]
    return first_line if len(first_line) <= width else first_line[: width - 3] + "..."


def execute_notebook(root: Path = ROOT, timeout: int = 1200) -> nbformat.NotebookNode:
    """Run the notebook top to bottom in a fresh kernel that imports ``root``'s cs231n."""
    from nbclient import NotebookClient  # imported here: only packing needs Jupyter

    nb = nbformat.read(root / NOTEBOOK, as_version=4)
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str((root / NOTEBOOK).parent)}},
    )
    client.execute(env=env)
    return nb


def pack(root: Path, nb: nbformat.NotebookNode) -> Path:
    """Write ``root/submission.zip``: the .py files of cs231n/ and the executed notebook."""
    archive = root / ARCHIVE
    code = sorted(p for p in (root / "cs231n").rglob("*.py") if "__pycache__" not in p.parts)
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in code:
            zf.write(path, path.relative_to(root).as_posix())
        zf.writestr(NOTEBOOK, nbformat.writes(nb) + "\n")
    return archive


def main(root: Path = ROOT) -> int:
    """Check, execute, pack; print what is missing and return 1 when not ready."""
    problems = unfinished(root)
    if not problems:
        from nbclient.exceptions import CellExecutionError

        print(f"all checks pass; running {NOTEBOOK} from top to bottom ...", flush=True)
        try:
            nb = execute_notebook(root)
        except CellExecutionError as error:
            problems.append(f"{NOTEBOOK} stops with an error: {error.ename}: {error.evalue}")
    if problems:
        print(f"Not packed: {len(problems)} thing(s) to finish first:")
        for problem in problems:
            print(f"  - {problem}")
        print("Fix these, then run `make submission` again.")
        return 1
    archive = pack(root, nb)
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    print(f"wrote {archive} ({len(names)} files: cs231n/*.py and the executed notebook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
