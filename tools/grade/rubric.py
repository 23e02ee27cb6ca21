"""The rubric: ``rubric.json``'s items, and one item's outcome for one submission."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from .status import OK

RUBRIC = Path(__file__).resolve().with_name("rubric.json")
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
NOTEBOOK_ITEM = "notebook"


@dataclass(frozen=True)
class Item:
    """One rubric item: its name, points and visibility (Gradescope's words).

    ``public_check`` says whether students can test the same thing themselves (a
    self-check, or running the notebook); ``check`` names the self-check in
    cs231n/checks.py, if any; ``description`` says what the hidden cases look at,
    without their inputs. ``graded`` is False for an optional step that is reported but
    earns nothing (its points are 0).
    """

    name: str
    points: float
    visibility: str
    public_check: bool
    check: str | None = None
    description: str = ""
    graded: bool = True


def load_rubric(path: Path = RUBRIC) -> list[Item]:
    """Every rubric item, in report order; ValueError naming the problem in a bad file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["items"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a rubric (a JSON object with 'items'): {error}") from None
    items, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}, item {number}"
        try:
            name, points = str(entry["name"]), float(entry["points"])
            visibility, public = str(entry["visibility"]), entry.get("public_check", False)
            check, graded = entry.get("check"), entry.get("graded", True)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: needs name, points and visibility ({error})") from None
        if not name.isidentifier() or name in seen:
            raise ValueError(f"{where}: name {name!r} is not a fresh identifier")
        if not math.isfinite(points) or points < 0:
            raise ValueError(f"{where}: points must be a number >= 0, got {points}")
        if visibility not in VISIBILITIES:
            raise ValueError(f"{where}: visibility must be one of {VISIBILITIES}")
        if not isinstance(public, bool) or not (check is None or isinstance(check, str)):
            raise ValueError(f"{where}: public_check must be true or false, check a name or null")
        if not isinstance(graded, bool) or (not graded and points != 0):
            raise ValueError(
                f"{where}: graded must be true or false; an ungraded item has 0 points"
            )
        seen.add(name)
        description = entry.get("description", "")
        items.append(Item(name, points, visibility, public, check, description, graded))
    return items


def code_items(path: Path = RUBRIC) -> list[Item]:
    """The rubric items the code tests grade (all but the notebook)."""
    return [item for item in load_rubric(path) if item.name != NOTEBOOK_ITEM]


@dataclass
class TestResult:
    """One rubric item's outcome for one submission.

    ``output`` says which kinds of case failed and why, never the inputs. ``status`` is
    ``ok`` when the student's code ran (even if it lost points), else what stopped it:
    ``timeout``, ``memory`` or ``crashed``. ``hint`` points to the public self-check.
    """

    __test__ = False  # not a pytest class

    name: str
    score: float
    max_score: float
    output: str
    visibility: str
    status: str = OK
    hint: str = ""
