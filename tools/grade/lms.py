"""Grades for the LMS: ``OUT/lms/canvas.csv`` and ``OUT/lms/moodle.csv`` from a roster.

``make grade ... ROSTER=roster.csv`` (or ``python -m tools.grade.lms --out OUT --roster
roster.csv``). The roster is the instructor's CSV with a header row and the columns

- ``id``: the student id the grader uses (the zip's name less ``.zip``);
- ``name``: as the LMS shows it;
- ``email`` and/or ``sis_id``: how the LMS knows the student (at least one of them).

Both files carry one grade column, ``total`` from grades.csv (TA points included once
merged). A student on the roster without a row in grades.csv gets a blank cell, never 0,
so that importing does not overwrite a grade the LMS already has with a zero.

- **Canvas** (Gradebook > Import): the columns Canvas's own gradebook export has, in its
  order: ``Student``, ``ID``, ``SIS User ID``, ``SIS Login ID``, ``Section``, then the
  assignment; the second row is ``Points Possible`` with the maximum. Canvas matches a row
  by ``ID`` (its internal id, left blank here), then ``SIS User ID``, then ``SIS Login ID``
  (filled with the email where the roster has no login), so the roster's ``sis_id``
  should be the SIS user id. An assignment column whose name Canvas does not know becomes a
  new assignment.
- **Moodle** (Grades > Import > CSV file): a header row, one row per student; on the
  import page map "ID number" to ``useridnumber`` or "Email address" to ``useremail``
  ("Identify user by"), and the grade column to the grade item.
"""

from __future__ import annotations

import argparse
import csv
import io
import sys
from pathlib import Path

from .grades import GradingError, fmt, write_atomic

CANVAS_COLUMNS = ("Student", "ID", "SIS User ID", "SIS Login ID", "Section")
MOODLE_USER_COLUMNS = ("ID number", "Email address", "Full name")
DEFAULT_ASSIGNMENT = "Softmax (assignment 1)"
ROSTER_FIELDS = ("id", "name", "email", "sis_id", "login", "section")


def read_roster(path: Path) -> list[dict[str, str]]:
    """The roster's rows (lower-case column names, cells stripped); GradingError naming
    the row or column at fault."""
    try:
        with Path(path).open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            fields = [f.strip().lower() for f in (reader.fieldnames or [])]
            raw = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise GradingError(f"ROSTER={path}: cannot read it as CSV ({error})") from error
    if "id" not in fields or "name" not in fields:
        raise GradingError(f"ROSTER={path}: the header needs `id` and `name`; found {fields}")
    if "email" not in fields and "sis_id" not in fields:
        raise GradingError(
            f"ROSTER={path}: add a column `email` or `sis_id` (how the LMS knows each student)"
        )
    rows, seen = [], set()
    for number, row in enumerate(raw, start=2):
        pairs = zip(fields, reader.fieldnames, strict=True)
        clean = {f: (row.get(orig) or "").strip() for f, orig in pairs}
        who = clean.get("id", "")
        if not who:
            raise GradingError(f"ROSTER={path}, line {number}: no id")
        if who in seen:
            raise GradingError(f"ROSTER={path}, line {number}: {who!r} twice")
        if not clean.get("email") and not clean.get("sis_id"):
            raise GradingError(f"ROSTER={path}, line {number}: {who!r} has no email or sis_id")
        seen.add(who)
        rows.append(clean)
    return rows


def _grades(out: Path) -> tuple[dict[str, str], str]:
    path = Path(out) / "grades.csv"
    if not path.is_file():
        raise GradingError(f"{path} does not exist: grade first (make grade SUBMISSIONS=dir)")
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    totals = {r["student"]: r["total"] for r in rows}
    maximum = rows[0]["max"] if rows else ""
    return totals, maximum


def _safe(text: str) -> str:
    # A cell that a spreadsheet would run as a formula is kept as text.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text


def canvas_csv(roster: list[dict[str, str]], totals: dict, maximum: str, assignment: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow([*CANVAS_COLUMNS, assignment])
    writer.writerow(["    Points Possible", "", "", "", "", fmt(float(maximum or 0))])
    for r in roster:
        total = totals.get(r["id"])
        writer.writerow(
            [
                _safe(r["name"]),
                "",
                _safe(r.get("sis_id", "")),
                _safe(r.get("login") or r.get("email", "")),
                _safe(r.get("section", "")),
                fmt(float(total)) if total not in (None, "") else "",
            ]
        )
    return buffer.getvalue()


def moodle_csv(roster: list[dict[str, str]], totals: dict, assignment: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*MOODLE_USER_COLUMNS, assignment])
    for r in roster:
        total = totals.get(r["id"])
        writer.writerow(
            [
                _safe(r.get("sis_id", "")),
                _safe(r.get("email", "")),
                _safe(r["name"]),
                fmt(float(total)) if total not in (None, "") else "",
            ]
        )
    return buffer.getvalue()


def write(out: Path, roster_path: Path, assignment: str = DEFAULT_ASSIGNMENT) -> dict[str, Path]:
    """Write the Canvas and Moodle CSVs under ``out/lms``; return their paths.

    Graded students missing from the roster are named on stderr (they are not exported).
    """
    roster = read_roster(roster_path)
    totals, maximum = _grades(out)
    missing = sorted(set(totals) - {r["id"] for r in roster})
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        print(f"grade: not on the roster, so not exported: {shown}", file=sys.stderr)
    folder = Path(out) / "lms"
    paths = {"canvas": folder / "canvas.csv", "moodle": folder / "moodle.csv"}
    write_atomic(paths["canvas"], canvas_csv(roster, totals, maximum, assignment))
    write_atomic(paths["moodle"], moodle_csv(roster, totals, assignment))
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.grade.lms", description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("grading"))
    parser.add_argument("--roster", type=Path, required=True)
    parser.add_argument("--assignment", default=DEFAULT_ASSIGNMENT)
    args = parser.parse_args(argv)
    try:
        paths = write(args.out, args.roster, args.assignment)
    except GradingError as error:
        print(f"grade: {error}", file=sys.stderr)
        return 2
    print(f"wrote {paths['canvas']} and {paths['moodle']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
