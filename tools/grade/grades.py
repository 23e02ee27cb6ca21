"""``grades.csv`` and the TAs' points: reading, writing and merging them.

``OUT/grades.csv`` has ``student``, one column per rubric item, one per TA item, then
``total``, ``max``, ``status`` and ``blank_answers`` (``2 of 3``: written answers left
blank, from the answers page). TA items come from a ``MANUAL=`` file::

    student,inline answers,style
    max,6,4
    ann,5,3
    bob,,4

A row ``max`` gives each item's maximum; a blank cell means "not marked yet" and stays
blank in grades.csv (it adds nothing to ``total``; it is never written as 0). Once merged,
the TA table is kept in ``OUT/manual.json``, so that a later ``STUDENT=`` regrade, which
has no ``MANUAL=``, keeps every TA column. A student id in the MANUAL file that has no
submission is an error that names it: a typo must not leave the real student unmarked.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

MANUAL_MAX_ROW = "max"
MANUAL_STATE = "manual.json"  # the merged TA table, kept beside grades.csv
TA_SUFFIX = " (TA)"  # a TA item's test name in results.json
FIXED_COLUMNS = ("total", "max", "status", "blank_answers")
REQUIRED_COLUMNS = FIXED_COLUMNS[:3]  # a grades.csv from before blank_answers still reads
STUDENTS = "students"  # OUT/students/<id>/: every file of one student, and nothing else


class GradingError(Exception):
    """Grading cannot start (bad folder, bad MANUAL file); says what to fix."""


def fmt(x: float) -> str:
    """Points as people write them: 10, 2.5, 0.333."""
    return format(round(float(x), 3), "g")


def student_dir(out: Path, student: str) -> Path:
    """The folder of one student's files under ``out`` (results.json, feedback.md, ...).

    Every module that reads or writes a student's files asks here, so the layout is
    decided in one place: ``OUT/students/<student>/``, a folder of its own, so that no
    student id (not even ``grades.csv``) can name a file of the grader's.
    """
    return Path(out) / STUDENTS / student


def answers_page(out: Path, student: str) -> Path:
    """The TAs' page of one student's written answers (its figures sit beside it)."""
    return student_dir(out, student) / "answers.md"


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename (never half a file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Manual:
    """The TAs' points: item names in column order, each item's maximum, and per student
    the points given (an item a TA has not marked is absent, not 0)."""

    items: list[str] = field(default_factory=list)
    maxima: dict[str, float] = field(default_factory=dict)
    points: dict[str, dict[str, float]] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.items)

    def total(self, student: str) -> float:
        """The student's TA points, blank items counting nothing."""
        return sum(self.points.get(student, {}).values())

    def maximum(self) -> float:
        return sum(self.maxima.values())

    def to_json(self) -> str:
        return json.dumps(
            {"items": self.items, "maxima": self.maxima, "points": self.points}, indent=1
        )

    @classmethod
    def from_json(cls, text: str) -> Manual:
        raw = json.loads(text)
        return cls(list(raw["items"]), dict(raw["maxima"]), dict(raw["points"]))


def read_manual(path: Path) -> Manual:
    """A TA points CSV (see the module docstring); GradingError naming the cell at fault."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            table = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GradingError(f"MANUAL={path}: cannot read it as CSV ({error})") from error
    if not fields or fields[0].strip() != "student" or len(fields) < 2:
        raise GradingError(
            f"MANUAL={path}: the header must be `student,<item>,...`; found {fields}"
        )
    items = [f.strip() for f in fields[1:]]
    if any(not i for i in items) or len(set(items)) != len(items):
        raise GradingError(f"MANUAL={path}: item names must be non-empty and distinct: {items}")
    maxima: dict[str, float] | None = None
    points: dict[str, dict[str, float]] = {}
    for number, row in enumerate(table, start=2):
        values: dict[str, float] = {}
        for column, item in zip(fields[1:], items, strict=True):
            cell = (row.get(column) or "").strip()
            if not cell:
                continue
            try:
                values[item] = float(cell)
            except ValueError:
                values[item] = math.nan
            if not math.isfinite(values[item]):
                raise GradingError(
                    f"MANUAL={path}, line {number}, column {item!r}: {cell!r} is not a number"
                ) from None
        who = (row.get(fields[0]) or "").strip()
        if not who:
            raise GradingError(f"MANUAL={path}, line {number}: no student id in the first column")
        if who == MANUAL_MAX_ROW:
            maxima = values
        elif who in points:
            raise GradingError(f"MANUAL={path}, line {number}: {who!r} has a second row")
        else:
            points[who] = values
    if maxima is None or set(maxima) != set(items):
        raise GradingError(
            f"MANUAL={path}: add a row `{MANUAL_MAX_ROW},<points>,...` with every item's maximum"
        )
    for who, values in points.items():
        for item, value in values.items():
            if not 0 <= value <= maxima[item]:
                raise GradingError(
                    f"MANUAL={path}: {who} has {fmt(value)} for {item!r}, "
                    f"outside 0..{fmt(maxima[item])}"
                )
    return Manual(items, maxima, points)


def check_items(manual: Manual, rubric: list, source: str) -> None:
    """GradingError when a TA item has the name of a column grades.csv already has."""
    taken = {"student", *FIXED_COLUMNS, *(i.name for i in rubric)}
    clash = [i for i in manual.items if i in taken]
    if clash:
        raise GradingError(
            f"MANUAL={source}: the items {clash} have the names of autograded or fixed "
            "columns of grades.csv; rename them"
        )


def check_students(manual: Manual, known: set[str], source: str) -> None:
    """GradingError naming every id in ``manual`` that has no submission in ``known``."""
    unknown = sorted(set(manual.points) - known)
    if unknown:
        shown = ", ".join(repr(u) for u in unknown[:20])
        raise GradingError(
            f"MANUAL={source} names {len(unknown)} student(s) with no submission: {shown}. "
            "Fix the ids (they are the zip names less .zip) and run it again"
        )


def load_state(out: Path) -> Manual:
    """The TA table merged by an earlier run into ``out`` (empty when there is none)."""
    path = Path(out) / MANUAL_STATE
    if not path.is_file():
        return Manual()
    try:
        return Manual.from_json(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as error:
        raise GradingError(
            f"{path} is damaged ({error}); give the TA points again with MANUAL=file"
        ) from None


def save_state(out: Path, manual: Manual) -> None:
    write_atomic(Path(out) / MANUAL_STATE, manual.to_json() + "\n")


def read_grades(path: Path, rubric: list) -> dict[str, dict]:
    """The rows of an existing grades.csv: ``{student: {student, points, status,
    blank_answers}}``.

    Only the autograded columns are read back (TA points live in manual.json). Raises
    GradingError when the file was written for another rubric.
    """
    if not Path(path).is_file():
        return {}
    with Path(path).open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        items = [i.name for i in rubric]
        missing = [
            c for c in ["student", *items, *REQUIRED_COLUMNS] if c not in (reader.fieldnames or [])
        ]
        if missing:
            raise GradingError(
                f"{path} was written for another rubric (no column {missing}); regrade "
                "everyone (leave out STUDENT=)"
            )
        return {
            r["student"]: {
                "student": r["student"],
                "points": {i: float(r[i] or 0) for i in items},
                "status": r["status"],
                "blank_answers": r.get("blank_answers") or "",
            }
            for r in reader
        }


def write_grades(path: Path, rubric: list, rows: dict[str, dict], manual: Manual) -> None:
    """Write grades.csv: autograded points, TA points (blank where unmarked), totals."""
    items = [i.name for i in rubric]
    maximum = sum(float(i.points) for i in rubric) + manual.maximum()
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", *items, *manual.items, *FIXED_COLUMNS])
    for student in sorted(rows):
        row = rows[student]
        auto = [row["points"].get(i, 0.0) for i in items]
        given = manual.points.get(student, {})
        extra = [fmt(given[i]) if i in given else "" for i in manual.items]
        total = sum(auto) + manual.total(student)
        writer.writerow(
            [
                student,
                *map(fmt, auto),
                *extra,
                fmt(total),
                fmt(maximum),
                row["status"],
                row.get("blank_answers", ""),
            ]
        )
    write_atomic(Path(path), buffer.getvalue())


def with_manual(result: dict, student: str, manual: Manual) -> dict:
    """``result`` (a results.json) carrying exactly ``manual``'s items for ``student``.

    Each TA item becomes a test named ``<item> (TA)``; an unmarked one scores 0 with the
    output "not marked yet", so ``score`` (the sum of the tests) equals grades.csv's total.
    """
    tests = [t for t in result["tests"] if not str(t["name"]).endswith(TA_SUFFIX)]
    given = manual.points.get(student, {})
    for item in manual.items:
        most = manual.maxima[item]
        marked = item in given
        got = given.get(item, 0.0)
        tests.append(
            {
                "name": item + TA_SUFFIX,
                "score": got,
                "max_score": most,
                "status": "passed" if marked and got >= most else "failed",
                "output": "marked by a TA" if marked else "not marked yet",
                "visibility": "after_published",
                "extra_data": {"marked": marked},
            }
        )
    return {**result, "tests": tests, "score": round(sum(t["score"] for t in tests), 6)}
