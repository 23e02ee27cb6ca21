"""`make submission` on hand-made student folders: what it refuses to pack, and why.

Each test builds a small student folder: a cs231n/ package of a few files, and a tiny
notebook released by the real release steps (so its record, stubs and blanks are what
students get). The oracle is the folder itself: the files and cells the test made.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from cs231n import _incomplete, submission
from cs231n._incomplete import failing_cells
from cs231n.submission import NOTEBOOK, RELEASE_RECORD, SubmissionError
from tools.release import build
from tools.release import notebook as nbsteps

REPO = Path(__file__).resolve().parents[1]
TODO = "# TODO: set z to the sum of 1 and 2\n#   (with +)"
ANSWER = "**Your answer:** because 1 + 2 = 3"
TODO_LINE = repr("# TODO: set z to the sum of 1 and 2")  # how messages quote the TODO cell
AFTER_QUESTION = "after 'Why is z 3?'"  # how messages place the answer cell
SOLVED = {2: f"{TODO}\nz = 1 + 2", 4: "**Your answer:** 1 + 2 is 3"}  # cell index: source


def reference_notebook() -> bytes:
    cells = [
        new_markdown_cell("# Tiny"),
        new_code_cell("import math"),
        new_code_cell(f"{TODO}\nz = 1 + 2", metadata={"tags": ["solution"]}),
        new_markdown_cell("Why is z 3?"),
        new_markdown_cell(ANSWER, metadata={"tags": ["answer"]}),
        new_code_cell("assert z == 3"),
    ]
    return nbsteps.write(new_notebook(cells=cells))


@pytest.fixture
def kit(tmp_path) -> Path:
    """A student folder as released: cs231n/ with two modules, the tiny notebook stubbed
    and blanked by the release steps, and its release record."""
    root = tmp_path / "student"
    (root / "cs231n/classifiers/__pycache__").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "cs231n/__init__.py").write_text('"""The package."""\n')
    (root / "cs231n/classifiers/softmax.py").write_text("def f():\n    return 1\n")
    (root / "cs231n/classifiers/__pycache__/softmax.cpython-311.py").write_text("cache")
    (root / "cs231n/notes.txt").write_text("not code: not packed")
    tree = {NOTEBOOK: build.File(reference_notebook())}
    for step in (build.stub_solution_cells, build.blank_answer_cells, build.record_release):
        tree = step(tree)
    for rel, file in tree.items():
        (root / rel).write_bytes(file.data)
    return root


def cells_of(root: Path) -> list[dict]:
    return json.loads((root / NOTEBOOK).read_text())["cells"]


def edit(root: Path, change) -> list[dict]:
    """Apply ``change`` to the notebook's list of cells (as JSON) and save it."""
    nb = json.loads((root / NOTEBOOK).read_text())
    change(nb["cells"])
    (root / NOTEBOOK).write_text(json.dumps(nb))
    return nb["cells"]


def solve(root: Path, **replace: str) -> list[dict]:
    """Fill in the TODO cell and the answer (``replace`` overrides: cell2=..., cell4=...)."""
    sources = {**SOLVED, **{int(k[4:]): v for k, v in replace.items()}}
    return edit(root, lambda cells: [cells[i].update(source=s) for i, s in sources.items()])


def where(cells: list[dict], index: int, text: str) -> str:
    return f"{NOTEBOOK} cell {index + 1} of {len(cells)} (id {cells[index]['id']}, {text})"


# --- completeness, against the release record ---------------------------------------------


def test_the_released_notebook_is_unfinished_and_a_solved_one_is_done(kit):
    cells = cells_of(kit)
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 2, TODO_LINE)}: still raises NotImplementedError",
        f"{where(cells, 4, AFTER_QUESTION)}: the answer still says *fill this in*",
    ]
    solve(kit)
    assert submission.notebook_problems(kit) == []


def test_a_notebook_without_cells_is_missing_every_released_cell(kit):
    record = submission.read_release_record(kit)
    edit(kit, lambda cells: cells.clear())
    problems = submission.notebook_problems(kit)
    assert problems == [
        f"{NOTEBOOK}: released cell {n} of 6 (id {cell['id']}, "
        f"{submission._first_line(cell['source'])!r}) is missing; copy it back from the "
        "notebook of the student edition"
        for n, cell in enumerate(record, start=1)
    ]


@pytest.mark.parametrize(
    "answer",
    ["**Your answer:**", "**Your answer:**  \n\n", "Your answer:", "*your Answer*: **", "  "],
)
def test_an_answer_that_is_only_its_label_is_unfinished(kit, answer):
    cells = solve(kit, cell4=answer)
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 4, AFTER_QUESTION)}: holds no answer after the label; "
        "write your answer there"
    ]


@pytest.mark.parametrize(
    "answer", ["**Your answer:** 3", "Because 1 + 2 = 3.", "**Your answer:**\n0"]
)
def test_an_answer_with_text_after_the_label_is_done(kit, answer):
    solve(kit, cell4=answer)
    assert submission.notebook_problems(kit) == []


@pytest.mark.parametrize(
    "source",
    [TODO, f"{TODO}\n\n# z = 1 + 2\n", f"{TODO}\npass", f'{TODO}\n"""later"""\n...', ""],
    ids=["its comments", "commented-out code", "pass", "docstring and ellipsis", "empty"],
)
def test_a_todo_cell_without_code_is_unfinished(kit, source):
    cells = solve(kit, cell2=source)
    first = TODO_LINE if source else "after 'import math'"
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 2, first)}: holds only comments (or pass); "
        "write your code below the TODO comment"
    ]


def test_a_todo_cell_equal_to_a_stub_without_a_raise_is_unfinished(kit, monkeypatch):
    record = json.loads((kit / RELEASE_RECORD).read_text())  # a stub of another kind
    record["notebooks"][NOTEBOOK][2]["source"] = f"{TODO}\nz = None"
    (kit / RELEASE_RECORD).write_text(json.dumps(record))
    cells = solve(kit, cell2=f"{TODO}\n\nz = None  # to do")
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 2, TODO_LINE)}: is still the released stub; write your code there"
    ]


def test_a_deleted_cell_is_missing_until_it_is_pasted_back(kit):
    record = submission.read_release_record(kit)
    solve(kit)
    edit(kit, lambda cells: cells.pop(1))  # "import math"
    assert submission.notebook_problems(kit) == [
        f"{NOTEBOOK}: released cell 2 of 6 (id {record[1]['id']}, 'import math') is missing; "
        "copy it back from the notebook of the student edition"
    ]
    pasted = {**record[1], "id": "new-id", "metadata": {}, "outputs": [], "execution_count": None}
    del pasted["tags"]
    edit(kit, lambda cells: cells.insert(1, pasted))  # a pasted cell gets a new id
    assert submission.notebook_problems(kit) == []


def test_a_recreated_todo_cell_is_matched_by_its_tag(kit):
    solve(kit)
    edit(kit, lambda cells: cells[2].update(id="typed-again"))
    assert submission.notebook_problems(kit) == []
    edit(kit, lambda cells: cells[2]["metadata"].pop("tags"))
    assert submission.notebook_problems(kit) == [
        f"{NOTEBOOK}: released cell 3 of 6 (id {cells_of_record(kit)[2]['id']}, "
        "'# TODO: set z to the sum of 1 and 2') is missing; copy it back from the notebook "
        "of the student edition"
    ]


def cells_of_record(root: Path) -> list[dict]:
    return submission.read_release_record(root)


def test_a_lost_tag_and_a_changed_cell_type_are_named(kit):
    solve(kit)
    cells = edit(kit, lambda cells: cells[2]["metadata"].update(tags=["mine"]))
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 2, TODO_LINE)}: lost its tag "
        "'solution'; add it back (Jupyter: the property inspector, or View > Cell toolbar > "
        "Tags)"
    ]
    solve(kit)
    cells = edit(
        kit,
        lambda cells: (
            cells[2]["metadata"].update(tags=["solution"]),
            cells[4].update(cell_type="raw"),
        ),
    )
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 4, repr('**Your answer:** 1 + 2 is 3'))}: was released as a "
        "markdown cell and is now a raw cell; change it back"
    ]


@pytest.mark.parametrize(
    ("change", "damage"),
    [
        (lambda cell: cell.pop("source"), "source"),
        (lambda cell: cell.update(source=None), "source"),
        (lambda cell: cell.update(source=["a", 3]), "source"),
        (lambda cell: cell.pop("cell_type"), "type (cell_type)"),
        (lambda cell: cell.update(cell_type="heading"), "type (cell_type)"),
    ],
    ids=["no source", "null source", "source with a number", "no cell_type", "old cell_type"],
)
def test_a_damaged_cell_is_named_instead_of_a_traceback(kit, change, damage):
    solve(kit)
    cells = edit(kit, lambda cells: change(cells[1]))
    first = "'import math'" if damage != "source" else "after '# Tiny'"
    assert submission.notebook_problems(kit) == [
        f"{where(cells, 1, first)}: is damaged, it has no valid {damage}; delete it in "
        "Jupyter, or copy your work into a fresh copy of the notebook"
    ]


def test_no_malformed_cell_makes_the_check_raise(kit):
    """Every key of every cell replaced by every kind of JSON value: always a list of
    messages, never an exception."""
    solve(kit)
    original = json.loads((kit / NOTEBOOK).read_text())
    values = [None, 5, "x", [], {}, [1, "a"], {"tags": "solution"}]
    for index in range(len(original["cells"])):
        for key in ("cell_type", "source", "metadata", "id"):
            for value in values:
                nb = json.loads(json.dumps(original))
                nb["cells"][index][key] = value
                (kit / NOTEBOOK).write_text(json.dumps(nb))
                problems = submission.notebook_problems(kit)
                assert all(isinstance(p, str) and p for p in problems), (index, key, value)
        for cell in values:
            nb = json.loads(json.dumps(original))
            nb["cells"][index] = cell
            (kit / NOTEBOOK).write_text(json.dumps(nb))
            assert submission.notebook_problems(kit), (index, cell)  # a cell is gone


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"{", f"{NOTEBOOK} cannot be read as a notebook (Expecting property name"),
        (b"\xff", f"{NOTEBOOK} cannot be read as a notebook ("),
        (b"[]", f'{NOTEBOOK} is not a notebook: it has no list of "cells"'),
        (b'{"cells": {}}', f'{NOTEBOOK} is not a notebook: it has no list of "cells"'),
    ],
)
def test_a_notebook_that_is_not_one_is_named(kit, content, message):
    (kit / NOTEBOOK).write_bytes(content)
    (problem,) = submission.notebook_problems(kit)
    assert problem.startswith(message)


def test_a_missing_or_damaged_release_record_says_where_to_get_it(kit):
    solve(kit)
    restore = "restore it from the student edition (student.zip) you started from"
    (kit / RELEASE_RECORD).write_text('{"notebooks": {"notebooks/softmax.ipynb": [{"id": 1}]}}')
    assert submission.notebook_problems(kit) == [f"{RELEASE_RECORD} is damaged; {restore}"]
    (kit / RELEASE_RECORD).unlink()
    assert submission.notebook_problems(kit) == [
        f"{RELEASE_RECORD} is missing: it records the notebook as released; {restore}"
    ]


def test_crafted_cells_give_messages_or_nothing_never_an_exception(kit):
    released = (kit / NOTEBOOK).read_bytes()
    (kit / NOTEBOOK).write_bytes(b'{"cells": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    (problem,) = submission.notebook_problems(kit)
    assert problem.startswith(f"{NOTEBOOK} cannot be read as a notebook (maximum recursion")
    (kit / NOTEBOOK).write_bytes(released)
    # Code that Python cannot parse is left to the run of the notebook to report.
    for code in ("z = 3\x00", "z = " + "-" * 100_000 + "1", "z = " + "(" * 300 + ")" * 300):
        solve(kit, cell2=f"{TODO}\n{code}")
        assert submission.notebook_problems(kit) == []


# --- what gets packed ---------------------------------------------------------------------


def test_pack_writes_the_regular_code_files_and_the_notebook(kit):
    solve(kit)
    nb = nbformat.read(kit / NOTEBOOK, as_version=4)
    archive = submission.pack(kit, nb)
    assert archive == kit / "submission.zip"
    with zipfile.ZipFile(archive) as zf:
        packed = {name: zf.read(name) for name in zf.namelist()}
    assert packed == {
        "cs231n/__init__.py": b'"""The package."""\n',
        "cs231n/classifiers/softmax.py": b"def f():\n    return 1\n",
        NOTEBOOK: (nbformat.writes(nb) + "\n").encode(),
    }
    assert sorted(p.name for p in kit.iterdir()) == ["cs231n", "notebooks", "submission.zip"]


def make_links(root: Path, outside: Path) -> dict[str, str]:
    """Links and special files in cs231n/; returns path -> what the message must say."""
    outside.mkdir()
    (outside / "lib.py").write_text("SECRET = 1\n")
    (root / "cs231n/passwd_link.py").symlink_to("/etc/passwd")
    (root / "cs231n/zero.py").symlink_to("/dev/zero")
    (root / "cs231n/classifiers/linked").symlink_to(outside)  # a linked folder
    os.mkfifo(root / "cs231n/pipe.py")  # reading it would wait for a writer forever
    return {
        "cs231n/passwd_link.py": "is a symbolic link (to /etc/passwd)",
        "cs231n/zero.py": "is a symbolic link (to /dev/zero)",
        "cs231n/classifiers/linked": f"is a symbolic link (to {outside})",
        "cs231n/pipe.py": "is not a regular file; replace it with one",
    }


def test_links_and_special_files_are_refused_by_name(kit, tmp_path):
    expected = make_links(kit, tmp_path / "outside")
    with pytest.raises(SubmissionError) as error:
        submission.code_files(kit)
    lines = error.value.problems
    assert sorted(lines) == sorted(f"{rel} {says}" + (
        "; a submission holds regular files only: put the file itself there"
        if "link" in says else "") for rel, says in expected.items())  # fmt: skip
    solve(kit)
    with pytest.raises(SubmissionError):
        submission.pack(kit, nbformat.read(kit / NOTEBOOK, as_version=4))
    assert sorted(p.name for p in kit.iterdir()) == ["cs231n", "notebooks"]  # no zip


def test_make_submission_on_links_ends_quickly_and_packs_nothing(kit, tmp_path):
    """The whole command, in its own process with a time limit: /dev/zero and the pipe
    would make a reader that follows them run or wait forever."""
    expected = make_links(kit, tmp_path / "outside")
    solve(kit)
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from pathlib import Path; "
         "from cs231n.submission import main; sys.exit(main(Path(sys.argv[1])))", str(kit)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True,
        text=True, timeout=120,
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("Not packed: 4 thing(s) to fix first:\n")
    for rel, says in expected.items():
        assert f"  - {rel} {says}" in result.stdout
    assert "running" not in result.stdout  # refused before the notebook runs
    assert sorted(p.name for p in kit.iterdir()) == ["cs231n", "notebooks"]


def test_a_notebook_that_is_a_link_is_refused(kit):
    (kit / NOTEBOOK).unlink()
    (kit / NOTEBOOK).symlink_to("/dev/zero")
    assert submission.notebook_problems(kit) == [
        f"{NOTEBOOK} is a symbolic link (to /dev/zero); a submission holds regular files "
        "only: put the file itself there"
    ]
    (kit / NOTEBOOK).unlink()
    assert submission.notebook_problems(kit) == [f"{NOTEBOOK} is missing"]


def test_linked_folders_are_refused(kit, tmp_path):
    (tmp_path / "elsewhere").mkdir()
    for folder in ("notebooks", "cs231n"):
        (kit / folder).rename(tmp_path / "elsewhere" / folder)
        (kit / folder).symlink_to(tmp_path / "elsewhere" / folder)
    link = "is a symbolic link (to {}); a submission holds regular files only: put the {} itself"
    assert submission.notebook_problems(kit) == [
        f"notebooks {link.format(tmp_path / 'elsewhere/notebooks', 'file')} there"
    ]
    with pytest.raises(SubmissionError) as error:
        submission.code_files(kit)
    elsewhere = tmp_path / "elsewhere/cs231n"
    assert str(error.value) == f"cs231n {link.format(elsewhere, 'folder')} there"


def test_odd_names_and_shapes_of_the_tree_are_named(kit, monkeypatch):
    odd = os.fsencode(kit) + b"/cs231n/caf\xe9.py"  # Latin-1, not UTF-8: a zip cannot say it
    with open(odd, "w") as file:
        file.write("x = 1\n")
    with pytest.raises(SubmissionError) as error:
        submission.code_files(kit)
    expected = r"'cs231n/caf\udce9.py': the file name is not UTF-8 text; rename it"
    assert error.value.problems == [expected]
    os.unlink(odd)
    monkeypatch.setattr(submission, "MAX_CELLS", 5)
    assert submission.notebook_problems(kit) == [f"{NOTEBOOK} has 6 cells; the limit is 5"]


def test_a_file_over_the_size_limit_is_refused_without_being_read(kit):
    with open(kit / "cs231n/big.py", "wb") as big:
        big.truncate(200_000_000)  # sparse: 200 MB long, nothing on disk
    with pytest.raises(SubmissionError) as error:
        submission.code_files(kit)
    assert str(error.value) == "cs231n/big.py holds 200,000,000 bytes; the limit is 1,000,000"
    (kit / "cs231n/big.py").write_bytes(b"#" * submission.MAX_CODE_BYTES)  # at the limit
    assert len(submission.code_files(kit)["cs231n/big.py"]) == submission.MAX_CODE_BYTES


def test_the_total_and_the_number_of_files_are_capped(kit, monkeypatch):
    for i in range(3):
        (kit / f"cs231n/part{i}.py").write_text("x = 1\n" * 100)  # 600 bytes each
    assert len(submission.code_files(kit)) == 5
    monkeypatch.setattr(submission, "MAX_TOTAL_BYTES", 1000)
    with pytest.raises(SubmissionError, match=r"^cs231n/ holds 1,8\d\d bytes of code; the lim"):
        submission.code_files(kit)
    monkeypatch.setattr(submission, "MAX_CODE_FILES", 4)
    with pytest.raises(SubmissionError, match=r"^cs231n/ holds more than 4 .py files$"):
        submission.code_files(kit)


def test_an_oversized_executed_notebook_is_refused_and_nothing_written(kit, monkeypatch):
    solve(kit)
    nb = nbformat.read(kit / NOTEBOOK, as_version=4)
    size = len(nbformat.writes(nb)) + 1
    monkeypatch.setattr(submission, "MAX_NOTEBOOK_BYTES", size - 1)
    with pytest.raises(SubmissionError, match=f"holds {size:,} bytes; the limit is {size - 1:,}"):
        submission.pack(kit, nb)
    assert not (kit / "submission.zip").exists()


@pytest.mark.parametrize("failure", [OSError(28, "No space left on device"), KeyboardInterrupt()])
def test_a_failure_while_packing_leaves_the_previous_zip_and_no_partial_file(
    kit, monkeypatch, failure
):
    solve(kit)
    (kit / "submission.zip").write_bytes(b"the previous submission")
    calls = []

    def writestr(self, name, data, *args, **kwargs):
        calls.append(name)
        if len(calls) == 2:
            raise failure
        return original(self, name, data, *args, **kwargs)

    original = zipfile.ZipFile.writestr
    monkeypatch.setattr(zipfile.ZipFile, "writestr", writestr)
    with pytest.raises(type(failure)):
        submission.pack(kit, nbformat.read(kit / NOTEBOOK, as_version=4))
    assert len(calls) == 2
    assert (kit / "submission.zip").read_bytes() == b"the previous submission"
    assert sorted(p.name for p in kit.iterdir()) == ["cs231n", "notebooks", "submission.zip"]


# --- running the notebook -----------------------------------------------------------------


def test_a_cell_that_runs_too_long_is_named_and_later_cells_are_cleared(kit):
    cells = solve(kit, cell2=f"{TODO}\nimport time\ntime.sleep(60)")
    edit(kit, lambda cells: cells[5].update(outputs=[{"output_type": "stream", "name": "stdout",
                                                       "text": "stale\n"}]))  # fmt: skip
    nb, stopped = submission.execute_notebook(kit, timeout=3)
    assert stopped == (
        f"{where(cells, 2, TODO_LINE)} stops with an error: still running after 3 s; "
        "the cells after it did not run"
    )
    assert nb.cells[1].outputs == [] and nb.cells[1].execution_count == 1  # it ran
    assert nb.cells[5].outputs == [] and nb.cells[5].execution_count is None


def test_a_cell_that_kills_the_kernel_is_named(kit):
    cells = solve(kit, cell2=f"{TODO}\nimport os\nos._exit(1)")
    _, stopped = submission.execute_notebook(kit, timeout=60)
    assert stopped == (
        f"{where(cells, 2, TODO_LINE)} stops with an error: the kernel died (out of memory, "
        "or a crash in native code?); the cells after it did not run"
    )


# --- packing unfinished work, with its record ---------------------------------------------


def fake_checks(monkeypatch, failing: dict[str, str]) -> None:
    """Stand-in self-checks: ``failing`` maps a check's name to its FAIL line; the other
    names of the real CHECKS pass."""
    names = [*submission.CHECKS, *failing]

    def check(name: str) -> bool:
        print(failing.get(name, f"PASS {name}: fine"))
        return name not in failing

    monkeypatch.setattr(submission, "CHECKS", dict.fromkeys(names))
    monkeypatch.setattr(submission, "check", check)


def packed(root: Path) -> tuple[dict[str, bytes], dict]:
    with zipfile.ZipFile(root / "submission.zip") as zf:
        files = {name: zf.read(name) for name in zf.namelist()}
    return files, json.loads(files["incomplete.json"])


def test_unfinished_work_is_packed_with_the_list_of_what_is_not_done(kit, monkeypatch, capsys):
    """The notebook as released (a TODO stub that raises, a blank answer, a check cell that
    prints FAIL) and a failing self-check: packed all the same, each item named."""
    fake_checks(monkeypatch, {"train": "FAIL train: the step is wrong: use W - lr * grad"})
    cells = edit(kit, lambda cells: cells.insert(5, new_code_cell("print('FAIL z: not 3')")))
    cells = cells_of(kit)
    assert submission.main(kit) == 0
    files, record = packed(kit)
    assert set(files) == {"cs231n/__init__.py", "cs231n/classifiers/softmax.py", NOTEBOOK,
                          "incomplete.json"}  # fmt: skip
    assert record["complete"] is False
    assert record["failing_checks"] == [
        {"name": "train", "message": "FAIL train: the step is wrong: use W - lr * grad"}
    ]
    assert record["unfinished"] == submission.notebook_problems(kit)
    assert len(record["unfinished"]) == 2  # the stub and the blank answer
    by_cell = {entry["cell_id"]: entry for entry in record["failing_cells"]}
    stub, check_cell, assert_cell = cells[2], cells[5], cells[6]
    assert by_cell[stub["id"]]["heading"] == "Tiny"
    assert by_cell[stub["id"]]["problem"].startswith("stops with NotImplementedError")
    assert by_cell[check_cell["id"]] == {
        "heading": "Tiny", "cell_id": check_cell["id"], "cell": 6, "problem": "FAIL z: not 3"
    }  # fmt: skip
    assert by_cell[assert_cell["id"]]["problem"] == "stops with NameError: name 'z' is not defined"
    assert set(by_cell) == {stub["id"], check_cell["id"], assert_cell["id"]}
    assert record["notebook_stopped"] == [] and record["optional"] == []
    out = capsys.readouterr().out
    assert out.index("Not done yet (6):") < out.index("wrote ")
    for line in [*record["unfinished"], "FAIL train: the step is wrong", "FAIL z: not 3"]:
        assert line in out
    assert f"cell 6 (id {check_cell['id']}) under 'Tiny': FAIL z: not 3" in out
    assert "INCOMPLETE" in out
    # the executed notebook is what was packed: its outputs hold the errors
    nb = nbformat.reads(files[NOTEBOOK].decode(), as_version=4)
    assert nb.cells[2].outputs[0]["ename"] == "NotImplementedError"


def test_a_wrong_optional_step_warns_and_the_rest_is_complete(kit, monkeypatch, capsys):
    """The batched grid_search check and a cell under the "Optional" heading fail: the
    submission is complete all the same, with two warnings."""
    fake_checks(monkeypatch, {"grid_search": "FAIL grid_search: the batched step differs"})
    solve(kit)
    edit(kit, lambda cells: cells.extend([
        new_markdown_cell("## Optional: going further\n\nMore."),
        new_code_cell("raise ValueError('optional, and wrong')"),
    ]))  # fmt: skip
    assert submission.main(kit) == 0
    _, record = packed(kit)
    assert record["complete"] is True
    assert record["failing_checks"] == record["failing_cells"] == record["unfinished"] == []
    assert [item.get("check") or item["problem"] for item in record["optional"]] == [
        "grid_search",
        "stops with ValueError: optional, and wrong",
    ]
    assert record["optional"][1]["heading"] == "Optional: going further"
    out = capsys.readouterr().out
    assert out.count("warning (optional step, packed all the same)") == 2
    assert "Not done yet" not in out and ": complete" in out


def test_a_complete_submission_records_nothing_open(kit, monkeypatch, capsys):
    fake_checks(monkeypatch, {})
    solve(kit)
    assert submission.main(kit) == 0
    files, record = packed(kit)
    assert record == {"complete": True, "failing_checks": [], "failing_cells": [],
                      "unfinished": [], "notebook_stopped": [], "optional": []}  # fmt: skip
    nb = nbformat.reads(files[NOTEBOOK].decode(), as_version=4)
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2, 3]


def test_a_notebook_that_stops_early_is_packed_as_far_as_it_ran(kit, monkeypatch):
    fake_checks(monkeypatch, {})
    cells = solve(kit, cell2=f"{TODO}\nz = 1 + 2\nimport os\nos._exit(1)")
    assert submission.main(kit) == 0
    files, record = packed(kit)
    assert record["complete"] is False
    assert record["notebook_stopped"] == [
        f"{where(cells, 2, TODO_LINE)} stops with an error: the kernel died (out of memory, "
        "or a crash in native code?); the cells after it did not run"
    ]


def test_failing_cells_names_fail_lines_and_errors_by_heading_and_id():
    """On a hand-made notebook: FAIL only at the start of a stdout line, errors, and the
    headings above, the Optional section's cells apart; odd outputs are skipped."""
    stdout = {"output_type": "stream", "name": "stdout"}
    nb = {"cells": [
        {"cell_type": "code", "id": "a", "outputs": [{**stdout, "text": "FAIL x: before\n"}]},
        {"cell_type": "markdown", "source": "# 1. Loss\n\n## 1.1 The naive loss"},
        {"cell_type": "code", "id": "b", "outputs": [
            {**stdout, "text": ["PASS y: ok\n", "FAIL y: wrong: hint\n", " FAIL not at start\n"]},
            {"output_type": "stream", "name": "stderr", "text": "FAIL on stderr\n"},
            {"output_type": "error", "ename": "KeyError", "evalue": "'k'", "traceback": []},
            "not an output", {"output_type": "display_data", "data": {"text/plain": "FAIL"}},
        ]},
        {"cell_type": "markdown", "source": "## 10. Optional: going further"},
        {"cell_type": "code", "outputs": [{"output_type": "error", "ename": "E", "evalue": ""}]},
        {"cell_type": "markdown", "source": "### A part of it"},
        {"cell_type": "code", "id": "d", "outputs": [{**stdout, "text": "FAIL z: late\n"}]},
    ]}  # fmt: skip
    assert [(str(f), f.optional) for f in failing_cells(nb)] == [
        (f"{NOTEBOOK} cell 1 (id a): FAIL x: before", False),
        (f"{NOTEBOOK} cell 3 (id b) under '1.1 The naive loss': FAIL y: wrong: hint", False),
        (f"{NOTEBOOK} cell 3 (id b) under '1.1 The naive loss': stops with KeyError: 'k'", False),
        (f"{NOTEBOOK} cell 5 under '10. Optional: going further': stops with E", True),
        (f"{NOTEBOOK} cell 7 (id d) under 'A part of it': FAIL z: late", True),
    ]


def test_the_record_module_names_the_same_notebook():
    assert _incomplete.NOTEBOOK == NOTEBOOK


def test_a_cell_that_prints_fail_in_a_loop_gives_a_bounded_record():
    many = [failing_cell(i, optional=False) for i in range(500)] + [failing_cell(0, True)]
    record = _incomplete.make_record({}, [], many, [])
    assert len(record["failing_cells"]) == _incomplete.MAX_CELL_ENTRIES
    assert record["unfinished"] == ["more failing notebook cells than the 200 listed"]
    assert len(record["optional"]) == 1 and record["complete"] is False


def failing_cell(number: int, optional: bool) -> _incomplete.CellFailure:
    return _incomplete.CellFailure(number, f"id{number}", "Heading", "FAIL x: no", optional)
