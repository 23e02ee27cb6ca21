"""The class report, ``OUT/report.html``: one page a TA opens in a browser.

Self-contained: the figures (drawn with matplotlib) are inline PNG data URIs, the style
is inline, nothing is fetched. It shows

- the score histogram;
- each rubric item's pass rate (full points) and mean share of its points;
- the most common failing cases, grouped by item and reason, with how many students hit
  each (the reasons are those feedback.md shows: kinds of case, never hidden inputs);
- the statuses, with the students whose grading did not end ``ok``;
- the ranked similarity pairs (from similarity.csv, linked to their side-by-side pages);
- the students with blank written answers, and what their submission said was
  incomplete when ``make submission`` recorded it.

Everything is read from what the batch wrote under ``OUT``, so the page can be rebuilt
at any time (a MANUAL merge rebuilds it) without grading anything.
"""

from __future__ import annotations

import base64
import csv
import html
import io
import json
from collections import Counter, defaultdict
from pathlib import Path

from . import similarity
from .feedback import failed_cases
from .grades import TA_SUFFIX, Manual, fmt, student_dir, write_atomic

TOP_FAILURES = 25
TOP_PAIRS = 20
INCOMPLETE = "incomplete.json"  # per student: the summary of what make submission recorded
STATUS_COLOURS = {
    "ok": "#4caf50",
    "crashed": "#ff9800",
    "memory": "#9c27b0",
    "timeout": "#f44336",
    "invalid": "#607d8b",
}


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def histogram(totals: list[float], maximum: float) -> str:
    """The score histogram as a data URI."""
    fig = _figure(7, 3.2)
    ax = fig.subplots()
    top = maximum if maximum > 0 else max(totals, default=1.0) or 1.0
    ax.hist(totals, bins=20, range=(0, top), color="#1976d2", edgecolor="white")
    ax.set_xlabel(f"total points (of {fmt(top)})")
    ax.set_ylabel("students")
    ax.set_title(f"Scores of {len(totals)} submissions")
    ax.set_xlim(0, top)
    return _png(fig)


def pass_rates(names: list[str], full: list[float], mean: list[float]) -> str:
    """Each item's share of students with full points (bars) and mean share (dots)."""
    fig = _figure(7, 0.35 * len(names) + 1.2)
    ax = fig.subplots()
    y = list(range(len(names)))
    ax.barh(y, [100 * f for f in full], color="#43a047", label="full points")
    ax.plot([100 * m for m in mean], y, "o", color="#212121", label="mean share of points")
    ax.set_yticks(y, names)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of students")
    ax.set_title("Pass rate per rubric item")
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=2, fontsize=8, frameon=False)
    return _png(fig)


def status_chart(counts: dict[str, int]) -> str:
    fig = _figure(5, 2.4)
    ax = fig.subplots()
    names = list(counts)
    ax.bar(names, [counts[n] for n in names], color=[STATUS_COLOURS.get(n, "#999") for n in names])
    for i, n in enumerate(names):
        ax.annotate(str(counts[n]), (i, counts[n]), ha="center", va="bottom")
    ax.set_ylabel("students")
    ax.set_title("Statuses")
    ax.margins(y=0.2)
    return _png(fig)


def pair_scores(scores: list[float]) -> str:
    fig = _figure(5, 2.4)
    ax = fig.subplots()
    ax.hist(scores, bins=20, range=(0, 1), color="#8e24aa", edgecolor="white")
    ax.set_yscale("log")
    ax.set_xlabel("similarity score of a pair")
    ax.set_ylabel("pairs (log scale)")
    ax.set_title("Similarity of all pairs: copies stand out on the right")
    return _png(fig)


# --- reading what the batch wrote ----------------------------------------------------------


def _grade_rows(out: Path) -> list[dict[str, str]]:
    path = out / "grades.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def _results(out: Path, student: str) -> dict:
    try:
        path = student_dir(out, student) / "results.json"
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _incomplete(out: Path, student: str) -> list[str]:
    """What the student's own ``make submission`` recorded as unfinished (the worker's
    summary of the zip's incomplete.json), if anything."""
    path = student_dir(out, student) / INCOMPLETE
    try:
        lines = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    return [str(x) for x in lines] if isinstance(lines, list) else []


def _esc(text: object) -> str:
    return html.escape(str(text))


def _table(head: list[str], rows: list[list[str]]) -> str:
    """An HTML table; cells are already escaped."""
    if not rows:
        return "<p class='none'>None.</p>"
    out = ["<table><thead><tr>", *(f"<th>{_esc(h)}</th>" for h in head), "</tr></thead><tbody>"]
    for row in rows:
        out += ["<tr>", *(f"<td>{c}</td>" for c in row), "</tr>"]
    out.append("</tbody></table>")
    return "".join(out)


def _names(students: list[str], limit: int = 8) -> str:
    shown = ", ".join(_esc(s) for s in students[:limit])
    return shown + (f" and {len(students) - limit} more" if len(students) > limit else "")


def build(out: Path, rubric: list, manual: Manual | None = None) -> str:
    """The report's HTML, from the files under ``out``."""
    out = Path(out)
    rows = _grade_rows(out)
    students = [r["student"] for r in rows]
    maximum = float(rows[0]["max"]) if rows else sum(float(i.points) for i in rubric)
    totals = [float(r["total"] or 0) for r in rows]
    items = [i.name for i in rubric]
    full, mean = [], []
    for item in rubric:
        got = [float(r.get(item.name) or 0) for r in rows]
        most = float(item.points) or 1.0
        full.append(sum(g >= float(item.points) for g in got) / max(1, len(got)))
        mean.append(sum(got) / most / max(1, len(got)))
    statuses = Counter(r["status"] for r in rows)
    order = [s for s in STATUS_COLOURS if statuses.get(s)] + sorted(
        s for s in statuses if s not in STATUS_COLOURS
    )

    # failing cases, grouped by item and reason (a reason's case labels listed with it)
    hits: dict[tuple[str, str], dict[str, set]] = defaultdict(lambda: defaultdict(set))
    for student in students:
        for test in _results(out, student).get("tests", []):
            name = str(test.get("name", ""))
            extra = test.get("extra_data", {})
            if name.endswith(TA_SUFFIX) or not extra.get("run", True):
                continue  # TA items are not autograded; an invalid zip shows in the statuses
            if test.get("score", 0) >= test.get("max_score", 0):
                continue
            cases = failed_cases(str(test.get("output", ""))) or [
                f"status {extra.get('item_status', 'failed')}: no case finished"
            ]
            for case in cases:
                label, _, reason = case.partition(": ")
                if not reason:
                    label, reason = "", case
                hits[(name, reason[:200])][student].add(label)
    failures = sorted(hits.items(), key=lambda kv: (-len(kv[1]), kv[0]))[:TOP_FAILURES]

    # similarity and blank answers
    pairs = similarity.read_csv(out)
    docs = similarity.load(out, students)
    blank = [(s, docs[s].get("blank_answers", [])) for s in students if s in docs]
    blank = [(s, b) for s, b in blank if b]
    no_notebook = [s for s in students if s in docs and docs[s] and not docs[s].get("notebook")]
    incomplete = [(s, _incomplete(out, s)) for s in students]
    incomplete = [(s, i) for s, i in incomplete if i]

    parts = [
        "<h1>Class report</h1>",
        f"<p>{len(rows)} submissions; mean {fmt(sum(totals) / max(1, len(totals)))}, "
        f"median {fmt(sorted(totals)[len(totals) // 2] if totals else 0)} of {fmt(maximum)} "
        "points; "
        + (f"TA items: {_esc(', '.join(manual.items))}" if manual else "no TA points merged yet")
        + ".</p>",
        "<h2>Scores</h2>",
        f"<img alt='score histogram' src='{histogram(totals, maximum)}'>",
        "<h2>Rubric items</h2>",
        f"<img alt='pass rate per item' src='{pass_rates(items, full, mean)}'>",
        _table(
            ["item", "points", "full points", "mean share"],
            [
                [_esc(i.name), fmt(i.points), f"{100 * f:.0f}%", f"{100 * m:.0f}%"]
                for i, f, m in zip(rubric, full, mean, strict=True)
            ],
        ),
        "<h2>Most common failing cases</h2>",
        "<p>Grouped by item and reason, as the students' feedback names them.</p>",
        _table(
            ["item", "reason", "students", "in the cases", "who"],
            [
                [
                    _esc(item),
                    _esc(reason),
                    str(len(who)),
                    _esc(", ".join(sorted({c for labels in who.values() for c in labels if c}))),
                    _names(sorted(who)),
                ]
                for (item, reason), who in failures
            ],
        ),
        "<h2>Statuses</h2>",
        f"<img alt='statuses' src='{status_chart({s: statuses[s] for s in order})}'>"
        if rows
        else "",
        _table(
            ["status", "students", "who"],
            [
                [
                    _esc(s),
                    str(statuses[s]),
                    ""
                    if s == "ok"
                    else _names([r["student"] for r in rows if r["status"] == s], 30),
                ]
                for s in order
            ],
        ),
        "<h2>Similarity: ranked pairs</h2>",
        "<p>Score: the mean share of each student's own written code and answers found in "
        "the other's, after names are replaced and comments dropped (copydetect); starter "
        "code, stubs and one-line blocks are left out. A high score is a reason to look, "
        "not a verdict.</p>",
    ]
    if pairs:
        parts.append(
            f"<img alt='pair scores' src='{pair_scores([float(p['score']) for p in pairs])}'>"
        )
    parts.append(
        _table(
            ["rank", "students", "score", "code", "answers", "side by side"],
            [
                [
                    _esc(p["rank"]),
                    f"{_esc(p['student_a'])} &amp; {_esc(p['student_b'])}",
                    _esc(p["score"]),
                    _esc(p["code"]),
                    _esc(p["answers"]),
                    f"<a href='{_esc(p['view'])}'>view</a>" if p.get("view") else "",
                ]
                for p in pairs[:TOP_PAIRS]
            ],
        )
    )
    parts += [
        "<h2>Blank written answers</h2>",
        _table(["student", "left blank"], [[_esc(s), _esc(", ".join(b))] for s, b in blank]),
    ]
    if no_notebook:
        parts.append(f"<p>No readable notebook: {_names(no_notebook, 50)}.</p>")
    parts += [
        "<h2>Incomplete when submitted</h2>",
        "<p>What <code>make submission</code> recorded as unfinished in the zip.</p>",
        _table(
            ["student", "incomplete"],
            [[_esc(s), "<br>".join(_esc(x) for x in i)] for s, i in incomplete],
        ),
    ]
    style = (
        "body{font-family:system-ui,sans-serif;margin:1.5em auto;max-width:60em;color:#222}"
        "table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left;vertical-align:top}"
        "th{background:#eee}img{max-width:100%;display:block;margin:.5em 0}"
        ".none{color:#777}h2{border-bottom:2px solid #1976d2;padding-bottom:.1em}"
    )
    return (
        "<!doctype html>\n<html lang='en'><head><meta charset='utf-8'>"
        "<title>Class report</title><style>"
        + style
        + "</style></head><body>\n"
        + "\n".join(parts)
        + "\n</body></html>\n"
    )


def write(out: Path, rubric: list, manual: Manual | None = None) -> Path:
    """Write ``out/report.html`` and return its path."""
    path = Path(out) / "report.html"
    write_atomic(path, build(out, rubric, manual))
    return path
