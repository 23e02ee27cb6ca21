"""make bench writes its tables into docs/speed.md: the section writer and the two benches'
table writers, on fake rows (the benches themselves take minutes)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from tools.docs_section import markers, replace_section, write_section

REPO = Path(__file__).resolve().parents[1]
SPEED = REPO / "docs" / "speed.md"


def page_with(name: str, inside: str) -> str:
    begin, end = markers(name)
    return f"# Title\n\nprose before\n\n{begin}\n{inside}\n{end}\n\nprose after\n"


def test_replace_section_changes_only_the_marked_text():
    page = page_with("bench", "old table\nold line")
    new = replace_section(page, "bench", "| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert new == page_with("bench", "| a | b |\n|---|---|\n| 1 | 2 |")
    assert new.replace("| a | b |\n|---|---|\n| 1 | 2 |", "old table\nold line") == page


def test_replace_section_leaves_other_sections_alone():
    page = page_with("bench", "one") + page_with("bench-busy", "two")
    new = replace_section(page, "bench", "ONE")
    assert "ONE" in new and "two" in new and "one" not in new


@pytest.mark.parametrize(
    "page",
    [
        "no markers at all\n",
        page_with("bench", "x") + page_with("bench", "y"),  # the section twice
        markers("bench")[1] + "\nx\n" + markers("bench")[0] + "\n",  # end before begin
    ],
    ids=["missing", "twice", "swapped"],
)
def test_replace_section_refuses_a_page_without_one_clean_section(page):
    with pytest.raises(ValueError, match="bench"):
        replace_section(page, "bench", "new", where="docs/speed.md")


def test_write_section_keeps_the_old_page_when_it_refuses(tmp_path):
    page = tmp_path / "speed.md"
    page.write_text("no markers\n")
    with pytest.raises(ValueError, match="speed.md"):
        write_section(page, "bench", "new")
    assert page.read_text() == "no markers\n"
    assert [p.name for p in tmp_path.iterdir()] == ["speed.md"]  # no temporary file left


def test_write_section_names_a_missing_page(tmp_path):
    with pytest.raises(ValueError, match="no such page"):
        write_section(tmp_path / "absent.md", "bench", "new")


def test_the_committed_speed_page_has_each_generated_section_once():
    text = SPEED.read_text()
    for name in ("bench", "bench-busy", "grade-bench"):
        begin, end = markers(name)
        assert text.count(begin) == 1 and text.count(end) == 1, name


def _bench_module():
    sys.path.insert(0, str(REPO / "tools"))
    try:
        import bench
    finally:
        sys.path.remove(str(REPO / "tools"))
    return bench


def test_make_bench_writes_its_tables_into_a_copy_of_the_speed_page(tmp_path):
    bench = _bench_module()
    from tools.grade import bench as grade_bench

    page = tmp_path / "speed.md"
    shutil.copy(SPEED, page)
    before = page.read_text()
    header = ("measurement", "kit", "textbook", "ratio", "range", "target", "")
    rows = [
        (
            "full-batch loss+grad, f64",
            "1.000 s",
            "1.100 s",
            "1.10x",
            "1.0-1.2x",
            ">= 0.95x",
            "pass",
        )
    ]
    rows.append(("a | in a name", "-", "-", "51%", "", "<= 60%", "pass"))
    bench.write_docs(page, "Fake run.", header, rows, "Fake busy run.\n\n| x |\n|---|")
    grade_bench.write_docs(page, "Fake grading run.", [("CPU", "1.00 s", "<= 5 s")], "")
    after = page.read_text()
    assert "| full-batch loss+grad, f64 | 1.000 s | 1.100 s | 1.10x | 1.0-1.2x |" in after
    assert "| a \\| in a name |" in after  # a | in a cell would split the column
    assert "Fake busy run." in after and "| CPU | 1.00 s | <= 5 s |" in after
    # The figures that were there are gone; the prose around them is untouched.
    assert "407 s" in before and "407 s" not in after
    begin, end = markers("grade-bench")
    old_grading = before.split(begin)[1].split(end)[0]
    old_row = next(r for r in old_grading.splitlines() if r.startswith("| CPU per submission"))
    assert old_row not in after
    outside = [line for line in before.splitlines() if line.startswith("The f64 rows compare")]
    assert outside and outside[0] in after
    for name in ("bench", "bench-busy", "grade-bench"):
        begin, end = markers(name)
        assert after.count(begin) == 1 and after.count(end) == 1
