"""Run the grader's own code on a submission's content in a sandbox of its own.

Parsing a notebook, building the answers page, extracting the texts that similarity
compares, the figures above each question and the record of unfinished work read data
the student made, and data can be built to make a parser slow or big (a markdown cell
of two million lines, twenty thousand answer cells, six million empty JSON objects).
:func:`run_judge` does that work in :mod:`tools.grade.judge`, copied with the few modules
it imports into a fresh folder and run by :func:`tools.grade.sandbox.run` under
:data:`JUDGE_LIMITS`. The grader worker only writes the inputs, and reads back outputs it
caps in size and checks: it never holds more of a submission than those caps.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from cs231n import _safe_io

from . import sandbox

TOOLS = Path(__file__).resolve().parents[1]
# What the judge imports, relative to tools/: packages get empty __init__ files, so that
# nothing else of the grader (the hidden tests) is needed or copied.
MODULES = (
    "grade/judge.py",
    "grade/similarity.py",
    "grade/feedback.py",
    "grade/grades.py",
    "release/pysource.py",
    "release/stubs.py",
)
LAUNCHER = (
    "import os, sys\n"
    "sys.path.insert(0, os.getcwd())\n"
    "from tools.grade import judge\n"
    "sys.exit(judge.main(sys.argv[1:]))\n"
)
JUDGE_LIMITS = sandbox.Limits(
    wall=120.0, cpu=60.0, memory=2 * sandbox.GB, fsize=64 * sandbox.MB, nproc=16
)
PROBLEM_LIMIT = 1000  # bytes of the judge's "this is not a notebook" message


class JudgeFailed(Exception):
    """The judge ran out of a limit on this submission's data; ``status`` says which."""

    def __init__(self, status: str, message: str) -> None:
        super().__init__(message)
        self.status = status


def run_judge(
    mode: str,
    inputs: dict[str, bytes],
    outputs: dict[str, int],
    limits: sandbox.Limits = JUDGE_LIMITS,
) -> dict[str, bytes]:
    """Run ``judge.py MODE`` on ``inputs`` (file name -> bytes); return its ``outputs``.

    ``outputs`` maps each file the mode writes to the most bytes accepted. Raises
    ValueError with the judge's message when the data is not what it should be (not a
    notebook, say), and JudgeFailed when the judge ran out of time or memory, crashed, or
    wrote an output that is missing or too big.
    """
    folder = Path(tempfile.mkdtemp(prefix="cs231n-judge-"))
    try:
        for package in ("", "grade/", "release/"):
            (folder / "tools" / package).mkdir(parents=True, exist_ok=True)
            (folder / "tools" / package / "__init__.py").write_bytes(b"")
        for rel in MODULES:
            shutil.copyfile(TOOLS / rel, folder / "tools" / rel)
        (folder / "_grade_judge.py").write_text(LAUNCHER)
        for name, data in inputs.items():
            (folder / name).write_bytes(data)
        sandbox.prepare_workdir(folder)
        argv = [sys.executable, "-I", str(folder / "_grade_judge.py"), mode]
        result = sandbox.run_limited(argv, folder, limits)
        problem = _read_capped(folder / "problem.txt", PROBLEM_LIMIT)
        if result.status == "ok" and problem is not None:
            raise ValueError(problem.decode("utf-8", "replace"))
        if result.status != "ok":
            why = {"timeout": "ran out of time", "memory": "ran out of memory"}
            raise JudgeFailed(
                result.status, f"reading it {why.get(result.status, 'crashed the reader')}"
            )
        found = {}
        for name, limit in outputs.items():
            data = _read_capped(folder / name, limit)
            if data is None:
                raise JudgeFailed("crashed", f"the reader's {name} is missing or too big")
            found[name] = data
        return found
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _read_capped(path: Path, limit: int) -> bytes | None:
    """A regular file's bytes if it has at most ``limit`` of them (no symlink followed)."""
    try:
        return _safe_io.read_file(path, limit, "a judge's output")
    except (OSError, ValueError):
        return None
