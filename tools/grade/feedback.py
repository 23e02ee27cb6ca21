"""What a student gets back: ``results.json`` (Gradescope's schema) and ``feedback.md``.

``feedback.md`` is made from ``results.json`` alone, so that merging TA points later
rewrites both without a regrade. Each test in results.json carries, in its
``extra_data``, what the feedback needs: the item's hint, whether its inputs are hidden
and the status it ended with. A failed item's feedback lists each failed case by its
label and reason ("one example: dW is wrong"): the labels say what kind of case it was,
never its inputs.

The answers page (``OUT/students/<student>/answers.md``) gains the figures the questions
refer to: :func:`question_figures` takes the PNGs stored in the submitted notebook above
each question and re-encodes them (so nothing but pixels reaches the TA), and
:func:`add_figures` links them beside the question. :func:`question_figures` and
:func:`incomplete_summary` read the student's data: the grader runs them only inside
``tools/grade/judge.py``, in a sandbox of its own, and reads back capped outputs.
"""

from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from .grades import TA_SUFFIX, fmt

MAX_REASON_CHARS = 300  # one case's reason in feedback.md
MAX_CASES_SHOWN = 12
MAX_FIGURE_BYTES = 8 << 20  # one stored PNG
MAX_FIGURE_PIXELS = 4096 * 4096
MAX_FIGURES = 6  # per question
INCOMPLETE_RECORD = "incomplete.json"  # what make submission packs beside the work
MAX_RECORD_BYTES = 256 << 10
MAX_RECORD_LINES = 30


def _is_hidden(item: object) -> bool:
    # A hidden test whose code a public self-check also tests may show its hint (which
    # points to that check); any other shows only its name and points.
    return item.visibility == "hidden" or not getattr(item, "public_check", False)


def results_json(
    rubric: list,
    by_name: dict,
    points: dict[str, float],
    status: str,
    notes: list[str],
    isolation: object,
) -> dict:
    """Gradescope's autograder results: one test per rubric item; ``score`` is their sum.

    ``by_name`` maps item names to TestResults; ``isolation`` is the sandbox's
    (``network``, ``detail``). TA points are added later by :func:`grades.with_manual`.
    """
    tests = []
    for item in rubric:
        test = by_name.get(item.name)
        output = test.output if test else "not run: " + (notes[-1] if notes else "no result")
        if test and test.status != "ok":
            output = f"[{test.status}] {output}"
        tests.append(
            {
                "name": item.name,
                "score": points[item.name],
                "max_score": float(item.points),
                "status": "passed" if points[item.name] >= float(item.points) else "failed",
                "output": output,
                "visibility": item.visibility,
                "extra_data": {
                    "run": test is not None,
                    "hint": test.hint if test else "",
                    "item_status": test.status if test else "ok",
                    "hidden": _is_hidden(item),
                },
            }
        )
    total = round(sum(points.values()), 6)
    full = sum(1 for t in tests if t["status"] == "passed")
    summary = [
        f"Autograded score {fmt(total)} of {fmt(sum(float(i.points) for i in rubric))}; "
        f"{full} of {len(tests)} tests earned full points (hidden ones included)."
    ]
    if status != "ok":
        summary.append(f"Status: {status}.")
    summary += notes
    return {
        "score": total,
        "output": "\n".join(summary),
        "tests": tests,
        "extra_data": {
            "status": status,
            "notes": list(notes),
            "network_isolation": isolation.network,
            "isolation": isolation.detail,
        },
    }


def failed_cases(output: str) -> list[str]:
    """The ``- <label>: <reason>`` lines of a test's output, without the dash."""
    return [line[2:].strip() for line in output.splitlines() if line.startswith("- ")]


def _cell(text: str, limit: int = 500) -> str:
    return " ".join(text.split()).replace("|", "\\|")[:limit]


def _why(test: dict) -> tuple[str, list[str]]:
    """(the table's short reason, the failed cases to list) for one autograded test."""
    extra = test.get("extra_data", {})
    status = extra.get("item_status", "ok")
    if not extra.get("run", True):
        why, cases = "not run", []
    elif test["score"] >= test["max_score"]:
        why, cases = "passed", []
    elif extra.get("hidden", False):
        why, cases = "hidden test: its inputs are not shown", []
    else:
        cases = failed_cases(str(test.get("output", "")))
        lines = [ln for ln in str(test.get("output", "")).strip().splitlines() if ln.strip()]
        hint = str(extra.get("hint", ""))
        first = cases[0] if cases else (lines[-1] if lines else "failed")
        why = f"{first}. {hint}" if hint and cases else (hint or first)
    if status != "ok":
        why = f"{status}: {why}"
    return why, cases


def feedback_markdown(student: str, result: dict) -> str:
    """The student's feedback from their results.json: score, notes, every item with what
    failed in it, and the TA points (blank ones marked "not marked yet")."""
    extra = result.get("extra_data", {})
    status = extra.get("status", "ok")
    auto = [t for t in result["tests"] if not str(t["name"]).endswith(TA_SUFFIX)]
    ta = [t for t in result["tests"] if str(t["name"]).endswith(TA_SUFFIX)]
    auto_total = sum(t["score"] for t in auto)
    auto_max = sum(t["max_score"] for t in auto)
    lines = [
        f"# Feedback for {student}",
        "",
        f"Autograded score: **{fmt(auto_total)} / {fmt(auto_max)}**"
        + ("" if status == "ok" else f" (status: {status})"),
        "",
    ]
    if ta:
        lines += [
            f"Total with the TA points: **{fmt(result['score'])} / "
            f"{fmt(auto_max + sum(t['max_score'] for t in ta))}**",
            "",
        ]
    notes = extra.get("notes", [])
    lines += [f"- {note}" for note in notes]
    if notes:
        lines.append("")
    lines += ["| test | points | what to look at |", "|---|---|---|"]
    details: list[str] = []
    for test in auto:
        why, cases = _why(test)
        got = f"{fmt(test['score'])} / {fmt(test['max_score'])}"
        lines.append(f"| {test['name']} | {got} | {_cell(why)} |")
        if cases:
            details += [f"### {test['name']} ({got})", ""]
            details += [f"- {_cell(c, MAX_REASON_CHARS)}" for c in cases[:MAX_CASES_SHOWN]]
            if len(cases) > MAX_CASES_SHOWN:
                details.append(f"- and {len(cases) - MAX_CASES_SHOWN} more")
            hint = str(test.get("extra_data", {}).get("hint", ""))
            details += ["", hint, ""] if hint else [""]
    if ta:
        lines += ["", "## Points from the TAs", "", "| item | points |", "|---|---|"]
        for test in ta:
            marked = test.get("extra_data", {}).get("marked", True)
            got = (
                f"{fmt(test['score'])} / {fmt(test['max_score'])}" if marked else "not marked yet"
            )
            lines.append(f"| {_cell(test['name'][: -len(TA_SUFFIX)])} | {got} |")
    if details:
        lines += [
            "",
            "## What failed, case by case",
            "",
            "Each line names a kind of case and "
            "what was wrong in it; the cases' inputs are not shown.",
            "",
        ]
        lines += details
    return "\n".join(lines).rstrip("\n") + "\n"


def incomplete_summary(data: bytes | None) -> list[str]:
    """The lines of a submission's ``incomplete.json`` worth showing a TA, at most
    MAX_RECORD_LINES of at most 200 characters; [] when there is none or it says complete.

    The record is the student's (``make submission`` writes it): it informs, it never
    changes a grade.
    """
    if data is None:
        return []
    if len(data) > MAX_RECORD_BYTES:
        return ["(the record of unfinished work is too large to read)"]
    try:
        raw = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return ["(the record of unfinished work cannot be read)"]
    if not isinstance(raw, dict) or raw.get("complete") is True:
        return []
    lines: list[str] = []

    def entries(key: str) -> list:
        value = raw.get(key, [])
        return value if isinstance(value, list) else []

    for entry in entries("failing_checks"):
        if isinstance(entry, dict):
            lines.append(f"check {entry.get('name', '?')} fails: {entry.get('message', '')}")
    for entry in entries("failing_cells"):
        if isinstance(entry, dict):
            where = f"{entry.get('heading', '?')}, cell id {entry.get('cell_id', '?')}"
            lines.append(f"notebook cell fails ({where}): {entry.get('problem', '')}")
        else:
            lines.append(f"notebook cell fails: {entry}")
    lines += [f"unfinished: {e}" for e in entries("unfinished")]
    lines += [f"notebook stopped: {e}" for e in entries("notebook_stopped")]
    if not lines:
        lines = ["marked incomplete"]
    shown = [" ".join(str(line).split())[:200] for line in lines[:MAX_RECORD_LINES]]
    if len(lines) > MAX_RECORD_LINES:
        shown.append(f"and {len(lines) - MAX_RECORD_LINES} more")
    return shown


# --- figures for the answers page -----------------------------------------------------


def source_of(cell: dict) -> str:
    """A cell's source as one string (notebook JSON may store it as a list of lines)."""
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _is_heading(cell: dict) -> bool:
    return cell.get("cell_type") == "markdown" and source_of(cell).lstrip().startswith("#")


def _png(data: object) -> bytes | None:
    """A stored image/png output re-encoded by Pillow, or None if it is not a sane PNG."""
    from PIL import Image

    text = "".join(data) if isinstance(data, list) else str(data)
    if len(text) > MAX_FIGURE_BYTES * 4 // 3 + 16:
        return None
    try:
        raw = base64.b64decode(text, validate=False)
        if not raw.startswith(b"\x89PNG\r\n\x1a\n"):
            return None
        with Image.open(io.BytesIO(raw)) as image:
            if image.width * image.height > MAX_FIGURE_PIXELS:
                return None
            image.load()
            out = io.BytesIO()
            image.convert("RGBA").save(out, format="PNG")
            return out.getvalue()
    except Exception:  # noqa: BLE001 - any broken image is skipped, never shown
        return None


def _stored_pngs(cell: object) -> list:
    """The image/png outputs stored in a code cell, as the notebook's JSON holds them."""
    if not isinstance(cell, dict) or cell.get("cell_type") != "code":
        return []
    outputs = cell.get("outputs")
    found = []
    for output in outputs if isinstance(outputs, list) else []:
        data = output.get("data") if isinstance(output, dict) else None
        if isinstance(data, dict) and "image/png" in data:
            found.append(data["image/png"])
    return found


def question_figures(nb: dict, is_answer) -> dict[int, list[bytes]]:
    """For each answer cell (its index), the PNG figures above its question.

    The figures are those of the code cells between the question and the heading (or the
    previous answer) above it: the figure a question calls "above". ``is_answer(cell)``
    says which cells are answers. One pass over the cells: answers that follow one
    another share their question, and so its figures; each stored PNG is decoded at most
    once, and only the last MAX_FIGURES good ones of a question are kept.
    """
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    cells = [c for c in cells if isinstance(c, dict)] if isinstance(cells, list) else []
    found: dict[int, list[bytes]] = {}
    decoded: dict[tuple[int, int], bytes | None] = {}
    since: list[int] = []  # code cells since the last heading or answer (only appended to)
    above = (since, 0)  # (since, how many of it): those above the next answer's question
    for index, cell in enumerate(cells):
        if is_answer(cell):
            figures: list[bytes] = []
            # the last good ones, decoding no more than needed
            for j in reversed(above[0][: above[1]]):
                for k, data in reversed(list(enumerate(_stored_pngs(cells[j])))):
                    if (j, k) not in decoded:
                        decoded[j, k] = _png(data)
                    if decoded[j, k]:
                        figures.insert(0, decoded[j, k])
                    if len(figures) == MAX_FIGURES:
                        break
                if len(figures) == MAX_FIGURES:
                    break
            if figures:
                found[index] = figures
            since = []
            continue
        above = (since, len(since))  # this cell may be the next answer's question
        if _is_heading(cell):
            since = []
        elif cell.get("cell_type") == "code":
            since.append(index)
    return found


def add_figures(page: str, figures: dict[int, list[bytes]], folder: Path, student: str) -> str:
    """``page`` (the answers markdown) with each answer's figures written under ``folder``
    and linked right under its ``## Cell N: answer`` heading (or at the end)."""
    lines = page.splitlines()
    for index in sorted(figures, reverse=True):
        names = []
        for k, png in enumerate(figures[index], start=1):
            name = f"{student}-cell{index + 1}-{k}.png"
            (folder / name).write_bytes(png)
            names.append(name)
        block = ["", "*The figure(s) above this question in the notebook:*", ""]
        block += [f"![figure {k} above cell {index + 1}]({n})" for k, n in enumerate(names, 1)]
        block.append("")
        heading = f"## Cell {index + 1}: answer"
        where = next((i for i, ln in enumerate(lines) if ln.strip() == heading), None)
        if where is None:
            lines += ["", heading.replace("answer", "figures"), *block]
        else:
            lines[where + 1 : where + 1] = block
    return "\n".join(lines) + "\n"
