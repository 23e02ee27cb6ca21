"""The class report, similarity, the TA workflow, feedback and the LMS export.

A small class is graded once (module fixture) with the real hidden tests on a subset of
the rubric's items (so it stays fast) and a stand-in for the notebook's re-execution: the
reference, two students who wrote their own right answers (tests/answers.py), an exact,
a renamed and a reordered copy of one of them, wrong answers, the untouched stubs, a hang
and a file that is not a zip. The tests read what that run wrote, merge TA points into it
and render its report in headless Chromium.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import nbformat
import pytest
from answers import ANSWERS, LINEAR, NAIVE, SOFTMAX, TUNING, VECTORIZED, apply

from tools.grade import (
    contained,
    driver,
    feedback,
    grades,
    judge,
    judging,
    lms,
    report,
    rubric,
    sandbox,
    similarity,
)
from tools.grade import notebook as nbgrade
from tools.release import notebook as nbsteps

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/softmax.ipynb"
BY_ID = {a.id: a for a in ANSWERS}
ITEMS = ("naive_loss", "naive_gradient", "vectorized_loss", "vectorized_gradient", "notebook")


# --- the stand-in test modules: real hidden tests on a few items, no notebook run -----------


def load_rubric() -> list[rubric.Item]:
    return [i for i in rubric.load_rubric() if i.name in ITEMS]


def grade_code(workdir: Path, run) -> list[rubric.TestResult]:
    return judging.grade_code(workdir, run, items=[i for i in ITEMS if i != "notebook"])


def grade_notebook(workdir: Path, run) -> rubric.TestResult:
    item = next(i for i in load_rubric() if i.name == "notebook")
    try:
        nbformat.reads((workdir / NOTEBOOK).read_text(encoding="utf-8"), as_version=4)
    except Exception as error:  # noqa: BLE001
        return rubric.TestResult(item.name, 0.0, item.points, str(error), item.visibility)
    return rubric.TestResult(item.name, item.points, item.points, "read", item.visibility)


def answers_markdown(nb_path: Path) -> str:
    return nbgrade.answers_markdown(nb_path)


# --- submissions -------------------------------------------------------------------------

ALICE = ["naive_by_class", "vec_log_softmax", "sample_integers", "together_views"]
BOB = ["naive_outer", "vec_one_hot_einsum", "sample_take"]
# Alice's naive loss with every name renamed and new comments: the renamed copy.
RENAMES = {
    "log_probs": "log_p",
    "probs": "P",
    "num_train": "n_examples",
    "num_classes": "n_cls",
    "scores": "logits",
    "sum_exp": "partition",
    "p": "prob",
}
# Independent statements of Alice's answers, swapped: the reordered copy.
SWAPS = [
    (
        NAIVE,
        "    loss /= num_train\n    dW /= num_train\n",
        "    dW /= num_train\n    loss /= num_train\n",
    ),
    (
        NAIVE,
        "    num_train = X.shape[0]\n    num_classes = W.shape[1]\n",
        "    num_classes = W.shape[1]\n    num_train = X.shape[0]\n",
    ),
    (
        VECTORIZED,
        "    loss = -np.sum(log_probs[np.arange(N), y]) / N\n    loss += reg * np.sum(W**2)\n"
        "    probs = np.exp(log_probs)\n",
        "    probs = np.exp(log_probs)\n"
        "    loss = -np.sum(log_probs[np.arange(N), y]) / N\n    loss += reg * np.sum(W**2)\n",
    ),
]


def _tree(dest: Path, answer_ids: list[str], edit=None, base: Path = REPO) -> dict[str, str]:
    """The three student files: ``base``'s (the reference) with ``answer_ids`` written in."""
    for path in (SOFTMAX, LINEAR, TUNING):
        (dest / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(base / path, dest / path)
    for answer_id in answer_ids:
        answer = BY_ID[answer_id]
        body = edit(answer) if edit else answer.body
        apply(dest, type(answer)(answer.id, answer.key, body, answer.correct))
    return {p: (dest / p).read_text() for p in (SOFTMAX, LINEAR, TUNING)}


def _renamed(answer) -> str:
    body = answer.body
    if answer.key not in (NAIVE, VECTORIZED):
        return body
    for old, new in RENAMES.items():
        body = re.sub(rf"\b{old}\b", new, body)
    return body.replace("\n", "  # this student's comment\n", 2)


def _reordered(answer) -> str:
    body = answer.body
    for key, old, new in SWAPS:
        if key == answer.key:
            assert body.count(old) == 1, old
            body = body.replace(old, new)
    return body


# What make submission packs when work is unfinished (cs231n/_incomplete.py's layout).
BOB_RECORD = {
    "complete": False,
    "failing_checks": [{"name": "grid_search", "message": "FAIL grid_search: not written"}],
    "failing_cells": [
        {"heading": "Tuning", "cell_id": "c0ffee", "cell": 40, "problem": "raised KeyError"}
    ],
    "unfinished": ["Inline question 3 is not answered"],
    "notebook_stopped": [],
    "optional": [],
}


def _zip(path: Path, files: dict[str, str], notebook: bytes, extra=None) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for rel, text in files.items():
            zf.writestr(rel, text)
        zf.writestr(NOTEBOOK, notebook)
        for rel, data in (extra or {}).items():
            zf.writestr(rel, data)
    return path


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    return driver.build_edition(tmp_path_factory.mktemp("edition") / "student")


def _class(tmp: Path, edition: Path) -> dict[str, tuple[dict[str, str], bytes]]:
    """Each student's files and notebook."""
    reference_nb = (REPO / NOTEBOOK).read_bytes()  # answers written, figures stored
    blank_nb = (edition / NOTEBOOK).read_bytes()  # the student edition: answers blank
    stubs = {p: (edition / p).read_text() for p in (SOFTMAX, LINEAR, TUNING)}
    trees = {}
    for name, ids, edit in [
        ("reference", [], None),
        ("alice", ALICE, None),
        ("bob", BOB, None),
        ("carol_exact", ALICE, None),
        ("dave_renamed", ALICE, _renamed),
        ("erin_reordered", ALICE, _reordered),
        ("frank_wrong", ["vec_loss_summed", "naive_grad_sign"], None),
        ("gina_wrong", ["vec_no_minus_one", "naive_grad_not_averaged"], None),
    ]:
        (tmp / name).mkdir()
        trees[name] = _tree(tmp / name, ids, edit)
    trees["bob"][TUNING] = stubs[TUNING]  # no answer of his own for the optional step
    copies_nb = {"alice", "carol_exact", "dave_renamed", "erin_reordered"}
    out = {n: (t, reference_nb if n in copies_nb else blank_nb) for n, t in trees.items()}
    hang = dict(trees["reference"])
    body = "    while True:\n        pass\n"
    hang[SOFTMAX] = _replace_block(hang[SOFTMAX], 0, body)
    out["henry_hang"] = (hang, blank_nb)
    out["ivy_stubs"] = (stubs, blank_nb)
    return out


def _replace_block(text: str, index: int, body: str) -> str:
    from tools.release import pysource

    bodies = pysource.block_bodies(text, SOFTMAX)
    bodies[index] = body
    return pysource.replace_bodies(text, SOFTMAX, bodies)


@pytest.fixture(scope="module")
def graded(tmp_path_factory, edition):
    tmp = tmp_path_factory.mktemp("class")
    subs, out = tmp / "submissions", tmp / "grading"
    subs.mkdir()
    students = _class(tmp, edition)
    for name, (files, nb) in students.items():
        extra = {"incomplete.json": json.dumps(BOB_RECORD)} if name == "bob" else None
        _zip(subs / f"{name}.zip", files, nb, extra)
    (subs / "jack_notzip.zip").write_text("not a zip\n")
    options = driver.Options(
        submissions=subs,
        out=out,
        jobs=2,
        cpu=10.0,
        memory=2 * sandbox.GB,
        max_wall=8.0,
        grade_code=grade_code,
        load_rubric=load_rubric,
        notebook_tests=__name__,
        progress=False,
    )
    started = time.perf_counter()
    assert driver.grade_batch(options, edition=edition) == 0
    return {
        "out": out,
        "subs": subs,
        "options": options,
        "edition": edition,
        "students": students,
        "seconds": time.perf_counter() - started,
    }


def _rows(out: Path) -> dict[str, dict[str, str]]:
    with (out / "grades.csv").open(newline="") as handle:
        return {r["student"]: r for r in csv.DictReader(handle)}


def _pairs(out: Path) -> dict[frozenset, float]:
    return {
        frozenset((r["student_a"], r["student_b"])): float(r["score"])
        for r in similarity.read_csv(out)
    }


# --- similarity on its own -------------------------------------------------------------------


def _doc(files: dict[str, str], edition: Path, notebook: bytes | None = None) -> dict:
    return similarity.extract(files, notebook, edition)


def test_three_kinds_of_copy_rank_above_every_independent_pair(tmp_path, edition):
    trees = {
        "alice": _tree(tmp_path / "a", ALICE),
        "bob": {**_tree(tmp_path / "b", BOB), TUNING: (edition / TUNING).read_text()},
        "reference": _tree(tmp_path / "r", []),
        "exact": _tree(tmp_path / "e", ALICE),
        "renamed": _tree(tmp_path / "n", ALICE, _renamed),
        "reordered": _tree(tmp_path / "o", ALICE, _reordered),
    }
    assert trees["renamed"] != trees["alice"] != trees["reordered"]
    docs = {name: _doc(files, edition) for name, files in trees.items()}
    starter = similarity.baseline(edition, edition / NOTEBOOK)
    scores = {frozenset((p.a, p.b)): p.score for p in similarity.compare(docs, starter)}
    copies = [scores[frozenset(("alice", c))] for c in ("exact", "renamed", "reordered")]
    independent = [
        scores[frozenset(pair)]
        for pair in (("alice", "bob"), ("alice", "reference"), ("bob", "reference"))
    ]
    assert min(copies) > max(independent), (copies, independent)
    assert copies[0] == pytest.approx(1.0) and copies[1] == pytest.approx(1.0)


def test_stub_starter_code_and_one_line_blocks_are_not_compared(tmp_path, edition):
    stubs = {p: (edition / p).read_text() for p in (SOFTMAX, LINEAR, TUNING)}
    assert _doc(stubs, edition)["code"] == ""
    # Two students who wrote only the one-line blocks (update, predict), alike.
    only = _tree(tmp_path / "x", ["update_add_negative", "predict_via_scores"], base=edition)
    assert only[SOFTMAX] == stubs[SOFTMAX]
    linear = only[LINEAR]
    for answer in ("update_add_negative", "predict_via_scores"):
        assert BY_ID[answer].body.strip() in linear
    doc = _doc(only, edition)
    assert "self.W += -learning_rate" not in doc["code"]  # one line: left out
    pairs = similarity.compare({"a": doc, "b": dict(doc)})
    assert pairs[0].score == 0.0


def test_written_answers_are_compared_and_blank_ones_listed(edition):
    nb = json.loads((REPO / NOTEBOOK).read_text())
    numbers = [
        m[1]
        for c in nb["cells"]
        for m in re.finditer(r"\*\*Inline question (\d+)\.\*\*", "".join(c["source"]))
    ]
    assert numbers  # the reference asks its questions in this form
    code, answers, blank = similarity.notebook_parts(nb)
    assert sorted(answers) == sorted(f"Inline question {n}" for n in numbers)
    assert blank == []
    edition_nb = json.loads((edition / NOTEBOOK).read_text())
    _, answers, blank = similarity.notebook_parts(edition_nb)
    assert answers == {} and len(blank) == len(numbers)


# --- the batch and its report ----------------------------------------------------------------


def test_every_submission_gets_a_row_with_its_status(graded):
    rows = _rows(graded["out"])
    assert sorted(rows) == sorted([*graded["students"], "jack_notzip"])
    assert rows["reference"]["total"] == rows["reference"]["max"]
    assert rows["alice"]["total"] == rows["alice"]["max"]
    assert float(rows["frank_wrong"]["total"]) < float(rows["frank_wrong"]["max"])
    assert rows["henry_hang"]["status"] == "timeout"
    assert rows["jack_notzip"]["status"] == "invalid"


def test_copies_rank_above_every_independent_pair_in_the_batch(graded):
    scores = _pairs(graded["out"])
    copies = [
        scores[frozenset(("alice", c))] for c in ("carol_exact", "dave_renamed", "erin_reordered")
    ]
    independent = [
        scores[frozenset(p)]
        for p in (("alice", "bob"), ("alice", "reference"), ("bob", "reference"))
    ]
    assert min(copies) > max(independent), (copies, independent)
    top = similarity.read_csv(graded["out"])[0]
    assert {top["student_a"], top["student_b"]} <= {
        "alice",
        "carol_exact",
        "dave_renamed",
        "erin_reordered",
    }
    page = (graded["out"] / top["view"]).read_text()
    assert "<mark>" in page and "alice" in page


def test_report_is_one_self_contained_page_with_every_section(graded):
    page = (graded["out"] / "report.html").read_text()
    for heading in (
        "Scores",
        "Rubric items",
        "Most common failing cases",
        "Statuses",
        "Similarity: ranked pairs",
        "Blank written answers",
    ):
        assert f"<h2>{heading}</h2>" in page, heading
    sources = re.findall(r"src='([^']*)'", page)
    assert len(sources) >= 4 and all(s.startswith("data:image/png;base64,") for s in sources)
    links = re.findall(r"href='([^']*)'", page)
    assert links and all(link.startswith("similarity/") for link in links)
    assert "http://" not in page and "https://" not in page
    # the wrong answers' reasons, grouped with a count; the blank answers listed
    assert "the loss is wrong" in page and "dW is wrong" in page
    blank = page[page.index("<h2>Blank written answers</h2>") :]
    assert "bob" in blank and "alice" not in blank.split("<h2>")[1]
    assert "henry_hang" in page[page.index("<h2>Statuses</h2>") :]


def test_report_lists_what_the_submission_recorded_as_incomplete(graded):
    page = (graded["out"] / "report.html").read_text()
    section = page[page.index("<h2>Incomplete when submitted</h2>") :]
    assert "bob" in section and "alice" not in section
    assert "grid_search" in section and "c0ffee" in section and "Inline question 3" in section
    feedback = (grades.student_dir(graded["out"], "bob") / "feedback.md").read_text()
    assert "incomplete.json" not in feedback  # read, not graded and not "missing"


def test_similarity_reads_the_notebook_as_the_release_writes_it():
    assert similarity.SOLUTION_TAG == nbsteps.SOLUTION_TAG
    assert similarity.ANSWER_TAG == nbsteps.ANSWER_TAG
    assert similarity.ANSWER_BLANK == nbsteps.ANSWER_BLANK


def test_failing_cases_are_grouped_and_counted_per_student(graded):
    page = (graded["out"] / "report.html").read_text()
    table = page[page.index("Most common failing cases") : page.index("<h2>Statuses</h2>")]
    cell = "<td>([^<]*)</td>"
    rows = re.findall(f"<tr>{cell * 5}</tr>", table)
    assert rows, table[:500]
    counts = {(item, reason): (int(n), cases, who) for item, reason, n, cases, who in rows}
    # frank's and gina's naive dW are wrong in every case: one row, two students
    n, cases, who = counts[("naive_gradient", "dW is wrong")]
    assert n == 2 and who == "frank_wrong, gina_wrong"
    assert {"reg 0", "one example", "float32"} <= set(cases.split(", "))
    assert counts[("vectorized_loss", "the loss is wrong")][2] == "frank_wrong"
    assert not any("jack_notzip" in w for _, _, w in counts.values())  # invalid: a status
    assert [n for n, _, _ in counts.values()] == sorted(
        (n for n, _, _ in counts.values()), reverse=True
    )


def test_feedback_lists_failed_cases_without_inputs(graded):
    text = (grades.student_dir(graded["out"], "frank_wrong") / "feedback.md").read_text()
    assert "## What failed, case by case" in text
    labels = {label for cases in judging.item_cases().values() for label, _, _ in cases}
    listed = re.findall(r"^- ([^:]+): (.*)$", text, flags=re.M)
    assert listed and all(label in labels for label, _ in listed), listed
    assert any("the loss is wrong" in why for _, why in listed)
    assert "Run check(" in text
    assert not re.search(r"\d\.\d{4,}", text)  # no arrays or hidden numbers


def test_answers_page_shows_the_figures_the_questions_refer_to(graded):
    page = grades.answers_page(graded["out"], "alice").read_text()
    nb = json.loads((REPO / NOTEBOOK).read_text())
    cells = [("".join(c["source"]), c.get("metadata", {}).get("tags", [])) for c in nb["cells"]]
    # The question about the learned templates refers to the figure drawn above it.
    question = next(
        i
        for i, (source, _) in enumerate(cells)
        if re.search(r"\*\*Inline question \d+\.\*\*", source) and "template" in source
    )
    answer = next(i for i in range(question + 1, len(cells)) if "answer" in cells[i][1])
    heading = f"## Cell {answer + 1}: answer"
    section = page[page.index(heading) :].split("\n## ")[0]
    images = re.findall(r"!\[[^]]*\]\(([^)]+)\)", section)
    assert images, section[:400]
    from PIL import Image

    for name in images:
        with Image.open(grades.answers_page(graded["out"], "alice").parent / name) as image:
            assert image.format == "PNG" and image.width > 100
    assert not re.findall(r"!\[", grades.answers_page(graded["out"], "bob").read_text())


# --- the TA workflow -------------------------------------------------------------------------


def _manual(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "manual.csv"
    path.write_text(text)
    return path


def test_manual_merge_rewrites_everything_without_a_regrade(graded, tmp_path, monkeypatch):
    out = graded["out"]
    before = _rows(out)
    manual = _manual(tmp_path, "student,inline answers,style\nmax,6,4\nalice,5,3\nbob,,4\n")

    def no_grading(*args, **kwargs):
        raise AssertionError("a MANUAL merge must not grade anything")

    monkeypatch.setattr(driver, "_grade_all", no_grading)
    options = driver.Options(**{**graded["options"].__dict__, "manual": manual})
    started = time.perf_counter()
    assert driver.grade_batch(options) == 0
    seconds = time.perf_counter() - started
    assert seconds < 15, seconds  # no grading: files rewritten only
    rows = _rows(out)
    assert (rows["alice"]["inline answers"], rows["alice"]["style"]) == ("5", "3")
    assert (rows["bob"]["inline answers"], rows["bob"]["style"]) == ("", "4")  # blank, not 0
    assert (rows["reference"]["inline answers"], rows["reference"]["style"]) == ("", "")
    assert float(rows["alice"]["total"]) == float(before["alice"]["total"]) + 8
    assert float(rows["alice"]["max"]) == float(before["alice"]["max"]) + 10
    for student, row in rows.items():
        result = json.loads((grades.student_dir(out, student) / "results.json").read_text())
        assert result["score"] == pytest.approx(float(row["total"])), student
    feedback = (grades.student_dir(out, "alice") / "feedback.md").read_text()
    assert "| inline answers | 5 / 6 |" in feedback and "| style | 3 / 4 |" in feedback
    bob = (grades.student_dir(out, "bob") / "feedback.md").read_text()
    assert "| inline answers | not marked yet |" in bob
    assert "TA items: inline answers, style" in (out / "report.html").read_text()


def test_unknown_id_in_the_manual_file_is_an_error_naming_it(graded, tmp_path):
    manual = _manual(tmp_path, "student,answers\nmax,3\nalice,2\nalcie,1\n")
    options = driver.Options(**{**graded["options"].__dict__, "manual": manual})
    with pytest.raises(grades.GradingError, match="'alcie'"):
        driver.grade_batch(options)


def test_a_student_regrade_keeps_the_ta_columns(graded, tmp_path):
    out = graded["out"]
    manual = _manual(tmp_path, "student,inline answers\nmax,6\nalice,4\n")
    merge = driver.Options(**{**graded["options"].__dict__, "manual": manual})
    driver.grade_batch(merge)
    options = driver.Options(**{**graded["options"].__dict__, "student": "alice"})
    assert driver.grade_batch(options, edition=graded["edition"]) == 0
    rows = _rows(out)
    assert rows["alice"]["inline answers"] == "4"
    assert rows["bob"]["inline answers"] == ""
    result = json.loads((grades.student_dir(out, "alice") / "results.json").read_text())
    assert result["tests"][-1]["name"] == "inline answers (TA)"
    assert result["score"] == pytest.approx(float(rows["alice"]["total"]))


def test_manual_values_are_checked_cell_by_cell(tmp_path):
    with pytest.raises(grades.GradingError, match="line 3, column 'a'"):
        grades.read_manual(_manual(tmp_path, "student,a\nmax,3\nann,lots\n"))
    with pytest.raises(grades.GradingError, match="outside 0..3"):
        grades.read_manual(_manual(tmp_path, "student,a\nmax,3\nann,4\n"))
    with pytest.raises(grades.GradingError, match="second row"):
        grades.read_manual(_manual(tmp_path, "student,a\nmax,3\nann,1\nann,2\n"))
    with pytest.raises(grades.GradingError, match="row `max"):
        grades.read_manual(_manual(tmp_path, "student,a\nann,1\n"))
    clash = grades.read_manual(_manual(tmp_path, "student,total\nmax,3\nann,1\n"))
    with pytest.raises(grades.GradingError, match="rename them"):
        grades.check_items(clash, load_rubric(), "m.csv")


# --- the LMS export ------------------------------------------------------------------------


def test_lms_export_for_canvas_and_moodle(graded, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text(
        "id,name,email,sis_id\n"
        'alice,"Liddell, Alice",alice@uni.example,1001\n'
        "bob,Bob Jones,bob@uni.example,1002\n"
        "zoe,Zoe Absent,zoe@uni.example,1003\n"
    )
    written = lms.write(graded["out"], roster)
    rows = _rows(graded["out"])
    with written["canvas"].open(newline="", encoding="utf-8") as handle:
        canvas = list(csv.reader(handle))
    assert canvas[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
    assert canvas[1][0].strip() == "Points Possible"
    assert float(canvas[1][5]) == float(rows["alice"]["max"])
    by_sis = {r[2]: r for r in canvas[2:]}
    assert by_sis["1001"][0] == "Liddell, Alice"
    assert float(by_sis["1001"][5]) == float(rows["alice"]["total"])
    assert by_sis["1003"][5] == ""  # no submission: left blank, not 0
    with written["moodle"].open(newline="", encoding="utf-8") as handle:
        moodle = list(csv.DictReader(handle))
    by_mail = {r["Email address"]: r for r in moodle}
    assert by_mail["bob@uni.example"]["ID number"] == "1002"
    grade_column = [c for c in moodle[0] if c not in lms.MOODLE_USER_COLUMNS]
    assert len(grade_column) == 1
    assert float(by_mail["bob@uni.example"][grade_column[0]]) == float(rows["bob"]["total"])


def test_lms_roster_problems_are_named(graded, tmp_path):
    roster = tmp_path / "roster.csv"
    roster.write_text("id,name\nalice,Alice\n")
    with pytest.raises(grades.GradingError, match="email.*sis_id"):
        lms.write(graded["out"], roster)
    roster.write_text("id,name,email\nalice,Alice,a@x\nalice,Alice 2,b@x\n")
    with pytest.raises(grades.GradingError, match="'alice' twice"):
        lms.write(graded["out"], roster)


# --- the report in a real browser ----------------------------------------------------------

BROWSERS = ("chromium", "chromium-browser", "google-chrome")


def _browser() -> tuple[str | None, str]:
    """A headless Chromium, installed from Debian's packages where root and apt allow it."""
    for name in BROWSERS:
        if shutil.which(name):
            return shutil.which(name), ""
    if os.name != "posix" or os.geteuid() != 0 or not shutil.which("apt-get"):
        return None, "no Chromium, and not root with apt-get to install Debian's chromium"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    for argv in (["apt-get", "update"], ["apt-get", "install", "-y", "chromium"]):
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=1500)
        if done.returncode != 0:
            return None, f"{' '.join(argv)} failed: {done.stderr.strip()[-300:]}"
    return shutil.which("chromium"), ""


def test_report_renders_in_headless_chromium(graded, tmp_path):
    browser, why = _browser()
    if browser is None:
        pytest.skip(why)
    shot = tmp_path / "report.png"
    argv = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1200,2400",
        f"--screenshot={shot}",
        (graded["out"] / "report.html").as_uri(),
    ]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert shot.is_file(), done.stderr[-2000:]
    from PIL import Image

    with Image.open(shot) as image:
        rgb = image.convert("RGB")
        colours = rgb.getcolors(maxcolors=1 << 20) or []
        pixels = rgb.width * rgb.height
    background = max(colours)[0] if colours else pixels
    assert len(colours) > 50, "the screenshot is (nearly) one colour"
    assert background < 0.97 * pixels, "the screenshot is almost all background"
    # the histogram's bars (#1976d2) were drawn: the inline images decoded
    assert any(c == (25, 118, 210) for _, c in colours)
    shutil.copyfile(shot, graded["out"] / "report-screenshot.png")
    if os.environ.get("CS231N_KEEP_SCREENSHOT"):
        shutil.copyfile(shot, os.environ["CS231N_KEEP_SCREENSHOT"])


def test_report_rebuilds_from_the_files_alone(graded):
    rubric = load_rubric()
    html = report.build(graded["out"], rubric)
    assert html.startswith("<!doctype html>") and html.rstrip().endswith("</html>")
    assert io.StringIO(html).read().count("<table>") >= 4
    assert sys.getsizeof(html) < 5_000_000


# --- the grading bench's generated class ------------------------------------------------------


def test_the_bench_class_has_hangs_and_slow_answers_in_proportion(tmp_path, edition):
    from tools.grade import bench

    kinds = bench.class_kinds(300)
    assert (kinds.count("hang"), kinds.count("slow"), kinds.count("nb_hang")) == (3, 3, 3)
    assert kinds.count("right") > 150 and kinds.count("stubs") > 0
    zips = bench.make_submissions(tmp_path, edition, 3, ["right", "hang", "slow"])
    with zipfile.ZipFile(zips[2]) as zf:
        slow = zf.read(SOFTMAX).decode()
        assert NOTEBOOK in zf.namelist()
    assert "sum(X[i, d] * W[d, k] for d in range(dim))" in slow
    # the slow answer is right: the hidden naive items, in the sandbox, give it full points
    work = shutil.copytree(edition, tmp_path / "work")
    (work / SOFTMAX).write_text(slow)
    sandbox.prepare_workdir(work)

    def run(argv, wall):
        return sandbox.run(argv, work, wall=min(wall, 30.0), cpu=30.0, memory=2 * sandbox.GB)

    results = judging.grade_code(work, run, items=["naive_loss", "naive_gradient"])
    assert [r.score for r in results] == [r.max_score for r in results], results


def test_a_full_regrade_starts_afresh_whatever_grades_csv_holds(graded, tmp_path):
    subs, out = tmp_path / "subs", tmp_path / "out"
    subs.mkdir()
    shutil.copyfile(graded["subs"] / "alice.zip", subs / "alice.zip")
    out.mkdir()
    (out / "grades.csv").write_text("student,an_old_item,total,max,status\nzed,1,1,1,ok\n")
    options = driver.Options(**{**graded["options"].__dict__, "submissions": subs, "out": out})
    assert driver.grade_batch(options, edition=graded["edition"]) == 0
    rows = _rows(out)
    assert sorted(rows) == ["alice"] and rows["alice"]["total"] == rows["alice"]["max"]


# --- a submission's data is read in a sandbox of its own, never in the grader's process ---


def test_texts_figures_and_the_record_are_read_in_the_judges_sandbox(edition, monkeypatch):
    nb = (REPO / NOTEBOOK).read_bytes()
    files = {p: (REPO / p).read_text() for p in (SOFTMAX, LINEAR, TUNING)}
    record = json.dumps(BOB_RECORD).encode()
    # the oracle: the same functions run here, on data we trust, before they are barred
    want_texts = similarity.extract(files, nb, edition)
    want_figures = feedback.question_figures(json.loads(nb), judge._is_answer)
    want_lines = feedback.incomplete_summary(record)
    assert want_texts["answers"] and want_figures and want_lines

    def here(*args, **kwargs):
        raise AssertionError("a submission's data was parsed in the grader's process")

    for module, name in (
        (similarity, "extract_texts"),
        (similarity, "notebook_parts"),
        (feedback, "question_figures"),
        (feedback, "incomplete_summary"),
    ):
        monkeypatch.setattr(module, name, here)
    notes: list[str] = []
    assert driver._similarity_texts(files, nb, edition, notes) == want_texts
    assert notes == []
    assert driver._figures(nb) == want_figures
    assert driver._incomplete(record) == want_lines


def test_the_texts_that_come_back_are_capped(edition, tmp_path):
    answer = {"cell_type": "markdown", "metadata": {"tags": ["answer"]}, "source": ""}
    cells = [dict(answer, id=f"a{i}", source=f"{i} " + "why " * 5_000) for i in range(200)]
    nb = {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    files = {p: (edition / p).read_text() for p in (SOFTMAX, LINEAR, TUNING)}
    body = "".join(f"    x{i} = {i}\n" for i in range(40_000))  # a block of 600 kB
    files[SOFTMAX] = _replace_block(files[SOFTMAX], 0, body)
    texts = driver._similarity_texts(files, json.dumps(nb).encode(), edition, [])
    assert len(texts["code"]) == judge.MAX_TEXT_CODE
    assert len(texts["answers"]) == judge.MAX_TEXT_ANSWERS
    assert all(len(a) == judge.MAX_TEXT_ANSWER for a in texts["answers"].values())


def test_a_malformed_reply_from_the_judge_is_checked(edition, monkeypatch):
    reply = {"code": 5, "answers": ["x"], "blank_answers": "no", "notebook": "yes"}

    def fake(mode, inputs, outputs, limits=None):
        name = next(iter(outputs))
        data = {"figures.json": {"1": ["bm90IGEgcG5n", 7], "x": []}}.get(name, reply)
        return {name: json.dumps(data).encode()}

    monkeypatch.setattr(contained, "run_judge", fake)
    texts = driver._similarity_texts({SOFTMAX: ""}, b"{}", edition, [])
    assert texts == {"code": "5", "answers": {}, "blank_answers": [], "notebook": False}
    assert driver._figures(b"{}") == {}  # "not a png", a number and a bad index: none kept
