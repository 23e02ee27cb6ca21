"""How a submission's run ended, defined once for every step of the grader.

``ok``: the student's code ran (it may still have lost points). ``crashed``: a process
died or raised where it must not. ``memory``: it ran out of its memory cap. ``timeout``:
it used up its CPU or wall-clock time. ``invalid``: the submission could not be graded
at all (a bad zip, a bad student id).
"""

from __future__ import annotations

from collections.abc import Iterable

OK, CRASHED, MEMORY, TIMEOUT, INVALID = "ok", "crashed", "memory", "timeout", "invalid"
STATUSES = (OK, CRASHED, MEMORY, TIMEOUT, INVALID)  # from best to worst


def worst(statuses: Iterable[str]) -> str:
    """The worst of ``statuses`` in the order of :data:`STATUSES`; an unknown one counts
    as ``crashed``; ``ok`` when there are none."""
    known = [s if s in STATUSES else CRASHED for s in statuses]
    return max(known, key=STATUSES.index, default=OK)
