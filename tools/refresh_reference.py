"""Re-execute the reference notebook in place, so its stored outputs match the code.

Run it (``make reference``) after changing the notebook or anything its outputs depend
on; nbval in ``make test`` then compares against the new outputs. It executes on the
bundled dataset (what the tests validate), keeps cell tags and sources untouched, and
leaves out what would only make the file differ from run to run: per-cell timing
records, progress-bar widgets and their saved state, and the grouping of a cell's
printed lines into stream chunks.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "softmax.ipynb"
WIDGET = "application/vnd.jupyter.widget-view+json"


def merge_streams(outputs: list) -> list:
    """Join consecutive stream outputs of the same name (stdout, stderr) into one."""
    merged: list = []
    for out in outputs:
        previous = merged[-1] if merged else None
        if (
            out.output_type == "stream"
            and previous is not None
            and previous.output_type == "stream"
            and previous.name == out.name
        ):
            previous.text += out.text
        else:
            merged.append(out)
    return merged


def tidy(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget outputs and state, and merge stream chunks; returns nb."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type == "code":
            outputs = [out for out in cell.outputs if WIDGET not in out.get("data", {})]
            cell.outputs = merge_streams(outputs)
    return nb


def stderr_cells(nb: nbformat.NotebookNode) -> list[str]:
    """One line per code cell that wrote to stderr (nbval strict would fail on it)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        text = "".join(
            out.text
            for out in cell.outputs
            if out.output_type == "stream" and out.name == "stderr"
        )
        if text:
            found.append(f"cell {index}: {text.strip().splitlines()[0]}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output",
        type=Path,
        default=NOTEBOOK,
        help="where to save the executed notebook (default: the reference, in place)",
    )
    args = parser.parse_args(argv)
    os.environ["CS231N_DATASET"] = "fashion-mnist"
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        record_timing=False,
        resources={"metadata": {"path": str(NOTEBOOK.parent)}},
    ).execute()
    noisy = stderr_cells(nb)
    if noisy:
        print("not saved: these cells wrote to stderr, which nbval compares:", file=sys.stderr)
        print("\n".join(noisy), file=sys.stderr)
        return 1
    output = args.output.resolve()
    # Written beside its destination and renamed over it: a failed write leaves the old file.
    partial = output.with_name(f".{output.name}.partial")
    nbformat.write(tidy(nb), partial)
    partial.replace(output)
    shown = output.relative_to(Path.cwd()) if output.is_relative_to(Path.cwd()) else output
    print(f"re-executed and saved {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
