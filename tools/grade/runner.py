"""The child runner: the hidden cases go to the sandboxed child, their outputs come back.

:func:`run_calls` writes the calls to ``grade-request.npz`` in the submission's scratch
folder and runs ``child.py`` there in the sandbox (the ``run`` it is given). The child
calls the student's functions and writes their outputs, nothing else. This process
reads those files back without trusting them: through a directory descriptor (no
symlink is followed), regular files only, each call's file capped, every array read
header first by ``cs231n._safe_io`` (a header that claims more than the cap is refused
before anything is allocated), expected names only, no pickles. A forged or broken
file costs only the call it belongs to.

Isolation of failures: all calls first run in one child. When it dies (crash, timeout,
memory, ``os._exit``), the calls that finished keep their outputs; the call that was
running (named in ``grade-started``) fails with the child's status, and the rest run
again in a new child, the failed function's other calls last. A death while importing
the submission's cs231n costs every call. A function whose calls ran out of time
``MAX_HANGS`` times has its other calls failed as timeouts without running them. All
children of one submission share a wall-clock budget (``BUDGET_WALL``), so a submission
that hangs everywhere cannot hold up a batch.
"""

from __future__ import annotations

import builtins
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cs231n import _safe_io

from . import child
from .cases import BIG, Call, calls
from .status import CRASHED, MEMORY, OK, TIMEOUT

CHILD_SOURCE = Path(child.__file__).resolve()
CHILD_NAME = "_grade_child.py"
CALL_WALL = 20.0  # seconds for one child: all calls take well under 1 s of CPU when right
BUDGET_WALL = 120.0  # seconds for all children of one submission; then the rest fail
MAX_HANGS = 2  # calls of one function that run out of time before its others are not run
MAX_OUTPUT_BYTES = 4 << 20  # one call's output file; the real ones are a few kB
NOTEBOOK = "notebooks/softmax.ipynb"
MAX_NOTEBOOK_BYTES = 64 << 20  # the sandbox's file-size limit; figures make notebooks big

# The exception names a report may show: Python's own and numpy's. Any other name is
# the student's own class, whose name could carry anything (even a hidden input).
REPORTED_ERRORS = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
) | {"AxisError", "LinAlgError"}

OUTPUT_NAMES = {
    "loss": {"loss", "dW", "W_after"},
    "predict": {"y_pred"},
    "sample": {"np_draws", "X_after", "y_after"}
    | {f"{p}_batches{t}" for p in "Xy" for t in ("", "_again", "_other", "_preset")},
    "update": {"W"},
    "grid": {"W_all", "bar_n", "W_solo"},
}


class Folder:
    """The scratch folder, used through a directory descriptor: no symlink is followed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    def close(self) -> None:
        os.close(self.fd)

    def remove(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            shutil.rmtree(self.path / name, ignore_errors=True)

    def write(self, name: str, data: bytes) -> None:
        """Create ``name`` afresh (whatever stood there is removed first), mode 0644."""
        self.remove(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(name, flags, 0o644, dir_fd=self.fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def read(self, name: str, limit: int) -> bytes | None:
        """The bytes of regular file ``name`` (at most ``limit``), or None if absent or odd."""
        return self.read_at(self.fd, name, limit)

    @staticmethod
    def read_at(dir_fd: int, name: str, limit: int) -> bytes | None:
        try:
            return _safe_io.read_file(name, limit, "a child's output", dir_fd=dir_fd)
        except (OSError, ValueError):
            return None


@dataclass
class Outcome:
    """What one call gave: its outputs, or why there are none, and the process status."""

    outputs: dict[str, np.ndarray] | None
    problem: str = ""
    status: str = OK
    cpu: float | None = None  # CPU seconds the call took, for the calls that are timed


def error_name(raw: object) -> str:
    """How a report names the exception the child says the student's code raised."""
    name = str(raw)
    return name if name in REPORTED_ERRORS else "an exception of your own"


def parse_outcome(data: bytes, kind: str) -> Outcome:
    """One call's output file as an Outcome; a file that is not what the child writes
    makes an Outcome without outputs (its problem said without the file's content)."""
    try:
        arrays = _safe_io.load_npz(
            data, OUTPUT_NAMES[kind] | {"error"}, MAX_OUTPUT_BYTES, "the output file"
        )
    except ValueError:
        return Outcome(None, "the output file holds something unexpected or cannot be read")
    if "error" in arrays:
        name = error_name(arrays["error"])
        # A MemoryError is the address-space cap at work: the item's status says so.
        return Outcome(None, f"your code raised {name}", MEMORY if name == "MemoryError" else OK)
    return Outcome(arrays)


def _request(batch: list[Call]) -> bytes:
    arrays = {
        "plan": np.array(json.dumps([{"id": c.id, "kind": c.kind, "fn": c.fn} for c in batch]))
    }
    for call in batch:
        for name, value in call.inputs.items():
            arrays[f"{call.id}.{name}"] = value
    return child._npz_bytes(arrays)


def run_calls(
    workdir: Path, run: Callable, batch: Iterable[Call]
) -> tuple[dict[str, Outcome], float, int]:
    """Run the calls in the sandbox (see the module docstring).

    Returns an Outcome for each call, the CPU seconds the children took (as the sandbox
    measured them) and how many children ran. An empty batch runs one child that only
    imports the submission's cs231n.
    """
    queue = list(batch)
    outcomes: dict[str, Outcome] = {}
    folder = Folder(Path(workdir))
    spent, cpu, runs = 0.0, 0.0, 0
    suspects: set[tuple[str, str]] = set()  # (kind, fn) of calls whose process died
    hangs: dict[tuple[str, str], int] = {}  # (kind, fn): the calls of it that timed out
    try:
        while queue or not runs:
            if spent >= BUDGET_WALL:
                for call in queue:
                    outcomes[call.id] = Outcome(
                        None, "not run: the time budget was used up", TIMEOUT
                    )
                break
            folder.write(CHILD_NAME, CHILD_SOURCE.read_bytes())
            folder.write(child.REQUEST, _request(queue))
            folder.remove(child.STARTED)
            for call in queue:
                folder.remove(f"{child.OUT_PREFIX}{call.id}.npz")
            started_at = time.monotonic()
            result = run(
                [sys.executable, "-I", str(Path(workdir) / CHILD_NAME), "calls"], CALL_WALL
            )
            spent += time.monotonic() - started_at
            cpu += float(result.cpu or 0.0)
            runs += 1
            for call in queue:
                data = folder.read(f"{child.OUT_PREFIX}{call.id}.npz", MAX_OUTPUT_BYTES)
                if data is not None:
                    outcomes[call.id] = parse_outcome(data, call.kind)
            missing = [c for c in queue if c.id not in outcomes]
            if not missing:
                break
            status = result.status if result.status != OK else CRASHED
            started = folder.read(child.STARTED, 100)
            if started is None:  # it died before the first call: importing cs231n
                for call in missing:
                    why = f"the process ended while importing your cs231n ({status})"
                    outcomes[call.id] = Outcome(None, why, status)
                break
            started_id = started.decode("ascii", "replace")
            blamed = next((c for c in missing if c.id == started_id), missing[0])
            outcomes[blamed.id] = Outcome(
                None, f"the process ended during this call ({status})", status
            )
            # The function that failed is likely to fail again: run the other functions'
            # calls first, so a function that hangs on every input cannot use up the
            # budget that the rest of the submission's calls need.
            suspects.add((blamed.kind, blamed.fn))
            queue = [c for c in missing if c is not blamed]
            # A function that ran out of time twice hangs for its inputs: its other calls
            # would each hold a child for CALL_WALL and win nothing.
            if status == TIMEOUT:
                hangs[(blamed.kind, blamed.fn)] = hangs.get((blamed.kind, blamed.fn), 0) + 1
            for call in [c for c in queue if hangs.get((c.kind, c.fn), 0) >= MAX_HANGS]:
                why = f"not run: {call.fn} ran out of time on {MAX_HANGS} earlier cases"
                outcomes[call.id] = Outcome(None, why, TIMEOUT)
                queue.remove(call)
            queue.sort(key=lambda c: (c.kind, c.fn) in suspects)  # stable: order kept
    finally:
        folder.close()
    return outcomes, cpu, runs


# The baseline child: this interpreter importing numpy, with nothing of the submission's
# (-I: neither the current folder nor PYTHONPATH is on the path), so no code of the
# student's can make the baseline slow and the timed call look fast.
BASELINE = "import numpy, json, zipfile"


def time_big(workdir: Path, run: Callable, outcomes: dict[str, Outcome]) -> None:
    """Run vectorized_BIG in a child of its own and set the CPU it took beyond a child
    that only starts Python and imports numpy.

    Alone, so that the other calls' CPU (a slow naive loss, the training calls) is never
    counted against it. The sandbox measures the CPU, not the student's process, so no
    patch can fake it; the student's module-level code counts against the call.
    """
    baseline = run([sys.executable, "-I", "-c", BASELINE], CALL_WALL)
    alone, cpu, _ = run_calls(workdir, run, [calls()[BIG]])
    outcomes[BIG] = alone[BIG]
    outcomes[BIG].cpu = max(0.0, cpu - float(baseline.cpu or 0.0))


def read_notebook_bytes(workdir: Path) -> bytes:
    """``notebooks/softmax.ipynb`` in ``workdir``, read without following any symlink.

    Raises ValueError when it is missing, not a regular file, or too large.
    """
    top = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        folder = os.open("notebooks", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
    except OSError:
        raise ValueError(f"{NOTEBOOK} is missing") from None
    finally:
        os.close(top)
    try:
        data = Folder.read_at(folder, "softmax.ipynb", MAX_NOTEBOOK_BYTES)
    finally:
        os.close(folder)
    if data is None:
        raise ValueError(
            f"{NOTEBOOK} is missing, or not a regular file under {MAX_NOTEBOOK_BYTES >> 20} MB"
        )
    return data
