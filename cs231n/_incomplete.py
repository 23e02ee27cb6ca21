"""What ``make submission`` records as not done yet: ``incomplete.json`` inside the zip.

:func:`run_notebook` runs the notebook to the end, whatever fails on the way. The record
lists the failing self-checks, the notebook cells whose stored outputs hold a
``FAIL`` line (a check cell's verdict) or an error, each named by its heading and cell id,
and the TODOs and answers left open. The optional steps are listed apart: a failure
there is a warning, never incomplete work. The grader reads the record; it is the
student's file, so it informs and never scores.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

NOTEBOOK = "notebooks/softmax.ipynb"  # as in cs231n.submission
RECORD = "incomplete.json"  # its name inside the zip
OPTIONAL_CHECKS = frozenset({"grid_search"})  # the batched step of grid_search
MAX_CELL_ENTRIES = 200  # failing cells listed, required and optional each
_OPTIONAL_HEADING = re.compile(r"^#+\s*(?:\d+[.)]?\s*)?optional\b", re.IGNORECASE)


@dataclass(frozen=True)
class CellFailure:
    """A notebook cell whose outputs hold a ``FAIL`` line or an error."""

    number: int  # position in the notebook, counting from 1
    id: str  # Jupyter's cell id ("" when the cell has none)
    heading: str  # the last heading above the cell ("" when there is none)
    problem: str  # the FAIL line, or the error's name and message
    optional: bool  # the cell is under the "Optional" heading

    def __str__(self) -> str:
        where = f"{NOTEBOOK} cell {self.number}" + (f" (id {self.id})" if self.id else "")
        under = f" under {self.heading!r}" if self.heading else ""
        return f"{where}{under}: {self.problem}"


def run_notebook(nb, kit: Path, folder: Path, timeout: int) -> tuple[int | None, str]:
    """Run the notebook ``nb`` (nbformat's) in place, in a fresh kernel started in
    ``folder`` that imports the cs231n of ``kit``, every cell even after one raises.

    Returns (None, "") when every cell ran, else the index of the cell that ran past
    ``timeout`` seconds or killed the kernel and what happened; the cells after it are
    left without outputs.
    """
    from nbclient import NotebookClient  # imported here: only packing needs Jupyter
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(kit), env.get("PYTHONPATH")]))
    running = [0]  # index of the cell being run, kept up to date by the client
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": str(folder)}},
        on_cell_start=lambda cell, cell_index: running.__setitem__(0, cell_index),
    )
    try:
        client.execute(env=env)
    except (CellTimeoutError, DeadKernelError) as error:
        for cell in nb.cells[running[0] + 1 :]:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        if isinstance(error, CellTimeoutError):
            return running[0], f"still running after {timeout} s"
        return running[0], "the kernel died (out of memory, or a crash in native code?)"
    return None, ""


def failing_cells(nb: Mapping) -> list[CellFailure]:
    """The code cells of ``nb`` whose stored outputs hold a line starting with ``FAIL ``
    (a check cell's verdict) or an error, each named by its heading and cell id."""
    failures, heading, optional = [], "", False
    for number, cell in enumerate(nb.get("cells", []), start=1):
        source = cell.get("source", "")
        if cell.get("cell_type") == "markdown" and isinstance(source, str):
            for line in source.splitlines():
                if line.startswith("#"):
                    heading = line.lstrip("#").strip()
                    optional = optional or bool(_OPTIONAL_HEADING.match(line))
            continue
        if cell.get("cell_type") != "code":
            continue
        for problem in _output_problems(cell.get("outputs")):
            cell_id = cell.get("id")
            failures.append(
                CellFailure(
                    number=number,
                    id=cell_id if isinstance(cell_id, str) else "",
                    heading=_first_line(heading, width=70),
                    problem=_first_line(problem, width=300),
                    optional=optional,
                )
            )
    return failures


def _output_problems(outputs: object) -> Iterator[str]:
    for output in outputs if isinstance(outputs, list) else []:
        if not isinstance(output, dict):
            continue
        if output.get("output_type") == "error":
            name, value = str(output.get("ename", "error")), str(output.get("evalue", ""))
            yield f"stops with {name}: {value}" if value else f"stops with {name}"
        elif output.get("output_type") == "stream" and output.get("name") == "stdout":
            text = output.get("text", "")
            text = "".join(text) if isinstance(text, list) else str(text)
            yield from (line for line in text.splitlines() if line.startswith("FAIL "))


def make_record(
    checks: dict[str, str], unfinished: list[str], cells: list[CellFailure], stopped: list[str]
) -> dict:
    """What ``incomplete.json`` holds: the work not done, the optional steps apart.

    ``complete`` is true when nothing required is open; ``failing_checks`` names each
    failing self-check with its FAIL line; ``failing_cells`` each notebook cell with a
    FAIL line or an error (heading, cell id, position); ``unfinished`` the TODOs and
    answers left open and the released cells that are gone; ``notebook_stopped`` why the
    run ended early, if it did; ``optional`` the failing optional steps (warnings only).
    """
    required = {n: m for n, m in checks.items() if n not in OPTIONAL_CHECKS}
    required_cells = [c for c in cells if not c.optional]
    if len(required_cells) > MAX_CELL_ENTRIES:  # a cell that prints FAIL in a loop
        required_cells = required_cells[:MAX_CELL_ENTRIES]
        unfinished = [
            *unfinished,
            f"more failing notebook cells than the {MAX_CELL_ENTRIES} listed",
        ]
    cells = [c for c in cells if c.optional][:MAX_CELL_ENTRIES] + required_cells
    record = {
        "complete": not (required or required_cells or unfinished or stopped),
        "failing_checks": [{"name": n, "message": m} for n, m in required.items()],
        "failing_cells": [_cell_entry(c) for c in required_cells],
        "unfinished": list(unfinished),
        "notebook_stopped": list(stopped),
        "optional": [
            *({"check": n, "message": m} for n, m in checks.items() if n in OPTIONAL_CHECKS),
            *(_cell_entry(c) for c in cells if c.optional),
        ],
    }
    return record


def _cell_entry(cell: CellFailure) -> dict:
    return {
        "heading": cell.heading,
        "cell_id": cell.id,
        "cell": cell.number,
        "problem": cell.problem,
    }


def print_record(record: dict) -> None:
    required = [
        *(c["message"] for c in record["failing_checks"]),
        *record["unfinished"],
        *(_cell_line(c) for c in record["failing_cells"]),
        *record["notebook_stopped"],
    ]
    if required:
        print(f"Not done yet ({len(required)}):")
        for line in required:
            print("  - " + line.replace("\n", "\n    "))
    for item in record["optional"]:
        line = item["message"] if "check" in item else _cell_line(item)
        print(f"warning (optional step, packed all the same): {line}")


def _cell_line(entry: dict) -> str:
    return str(
        CellFailure(entry["cell"], entry["cell_id"], entry["heading"], entry["problem"], False)
    )


def _first_line(text: str, width: int) -> str:
    first_line = (text.strip().splitlines() or [""])[0]
    return first_line if len(first_line) <= width else first_line[: width - 3] + "..."
