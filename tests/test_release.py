"""The release builder, step by step and end to end, and the student edition it writes.

Round trip, as tested here: filling the reference solutions back into the student
edition gives back every shipped reference file byte for byte, except
- the notebook, which comes back as the reference with outputs, execution counts and
  execution timings cleared (``clear_outputs``) and written by nbformat's writer;
- README.md and Makefile, which are the student variants in tools/release/student/.
The edition also holds notebooks/.release.json, the record of the released notebook.

The builder runs on a fresh git repository holding this checkout's tracked files (the
``source`` fixture), or a clone of it that a test changes: untracked files, links and
uncommitted changes are made there, never in the checkout.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from cs231n import submission
from tools.release import build, leaks, pysource, stubs
from tools.release import notebook as nbsteps
from tools.release.pysource import END, START, ReleaseError

REPO = Path(__file__).resolve().parents[1]
GIT_IDENTITY = ("-c", "user.name=Test", "-c", "user.email=test@example.com")
GIT_IDENTITY += ("-c", "commit.gpgsign=false", "-c", "core.hooksPath=/dev/null")


def git(root: Path, *args: str) -> str:
    """Run git in ``root`` (as a throwaway identity) and return its output."""
    result = subprocess.run(
        ["git", *GIT_IDENTITY, "-C", str(root), *args], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


NOTEBOOK = REPO / "notebooks" / "softmax.ipynb"
needs_notebook = pytest.mark.skipif(
    not NOTEBOOK.exists(),
    reason="notebooks/softmax.ipynb does not exist yet (the notebook issue writes it)",
)

MODULE = f"""\
def f(x):
    y = 0
    # TODO: add one.
    {START}
    y = int(x) + 1  # the solution
    {END}
    return y


class A:
    def g(self, n):
        for i in range(n):
            {START}
            a = i * 2
            {END}
            {START}
            b = a + int(i)
            {END}
        return b
"""
MODULE_TASKS = {
    ("pkg/mod.py", "f", 0): "add one",
    ("pkg/mod.py", "A.g", 0): "double i",
    ("pkg/mod.py", "A.g", 1): 'add "i"',
}
MODULE_STUBBED = f"""\
def f(x):
    y = 0
    # TODO: add one.
    {START}
    raise NotImplementedError("f: add one (pkg/mod.py)")
    {END}
    return y


class A:
    def g(self, n):
        for i in range(n):
            {START}
            raise NotImplementedError("A.g: double i (pkg/mod.py)")
            {END}
            {START}
            raise NotImplementedError("A.g: add \\"i\\" (pkg/mod.py)")
            {END}
        return b
"""


# --- Python source steps ------------------------------------------------------------------


def test_blocks_are_found_with_their_function_and_index():
    blocks = pysource.find_blocks(MODULE, "pkg/mod.py")
    assert [(b.function, b.index, b.indent) for b in blocks] == [
        ("f", 0, "    "),
        ("A.g", 0, " " * 12),
        ("A.g", 1, " " * 12),
    ]
    assert [MODULE.splitlines()[b.start].strip() for b in blocks] == [START] * 3


def test_stubs_replace_only_the_inside_at_the_markers_indentation():
    stubbed = pysource.stub_source(MODULE, "pkg/mod.py", MODULE_TASKS)
    assert stubbed == MODULE_STUBBED
    namespace: dict = {}
    exec(stubbed, namespace)
    with pytest.raises(NotImplementedError, match=r"^f: add one \(pkg/mod.py\)$"):
        namespace["f"](1)
    with pytest.raises(NotImplementedError, match=r"^A.g: double i \(pkg/mod.py\)$"):
        namespace["A"]().g(1)


def test_filling_the_bodies_back_gives_the_source_byte_for_byte():
    for newline in ("\n", "\r\n"):
        text = MODULE.replace("\n", newline)
        stubbed = pysource.stub_source(text, "pkg/mod.py", MODULE_TASKS)
        assert stubbed == MODULE_STUBBED.replace("\n", newline)
        bodies = pysource.block_bodies(text, "pkg/mod.py")
        assert pysource.replace_bodies(stubbed, "pkg/mod.py", bodies) == text


def test_a_long_stub_message_is_split_over_lines_that_fit():
    message = "f: " + "word " * 40 + "(pkg/mod.py)"
    body = pysource.stub_body(" " * 8, message)
    lines = body.splitlines()
    assert lines[0] == " " * 8 + "raise NotImplementedError(" and lines[-1] == " " * 8 + ")"
    assert len(lines) > 3 and max(map(len, lines)) <= 99
    with pytest.raises(NotImplementedError) as error:
        exec(textwrap.dedent(body))
    assert str(error.value) == message


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (f"{START}\nx = 1\n{START}\ny = 2\n{END}\n{END}\n", "mod.py:3: nested START marker"),
        (f"x = 1\n{END}\n", "mod.py:2: END marker without a START"),
        (f"{START}\nx = 1\n", "mod.py:1: START marker is never closed"),
        (f"{START}\n# only a comment\n\n{END}\n", "mod.py:1: marked block has no code"),
        (
            "# ****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****\nx = 1\n",
            "mod.py:1: malformed marker",
        ),
        (f"{START}\nx = 1\n# *****END OF YOUR CODE*****\n", "mod.py:3: malformed marker"),
    ],
    ids=["nested", "end without start", "unclosed", "empty", "typo in start", "short end"],
)
def test_malformed_markers_fail_loudly(source, message):
    with pytest.raises(ReleaseError, match=message):
        pysource.find_blocks(source, "mod.py")


def test_a_block_without_a_description_fails_naming_the_key():
    tasks = {k: v for k, v in MODULE_TASKS.items() if k[1] != "f"}
    with pytest.raises(ReleaseError, match=r"pkg/mod.py:4: .* no task description; add \('pkg"):
        pysource.stub_source(MODULE, "pkg/mod.py", tasks)


def test_a_description_without_a_block_fails():
    tree = {"pkg/mod.py": build.File(MODULE.encode())}
    tasks = {**MODULE_TASKS, ("pkg/mod.py", "gone", 0): "was removed"}
    with pytest.raises(ReleaseError, match=r"does not have: \[\('pkg/mod.py', 'gone', 0\)\]"):
        build.stub_python(tree, tasks)
    stubbed = build.stub_python(tree, MODULE_TASKS)
    assert stubbed["pkg/mod.py"].data.decode() == MODULE_STUBBED


# --- notebook steps -----------------------------------------------------------------------


def reference_notebook() -> nbformat.NotebookNode:
    return new_notebook(
        cells=[
            new_markdown_cell("# Title"),
            new_code_cell(
                "# TODO: compute z, the sum\nz = x + y\nprint(z)",
                metadata={"tags": ["solution"], "execution": {"iopub.status.busy": "t"}},
                outputs=[new_output("stream", name="stdout", text="3\n")],
                execution_count=4,
            ),
            new_markdown_cell("The answer is *42*, because ...", metadata={"tags": ["answer"]}),
            new_code_cell("print(1)", execution_count=5, outputs=[new_output("stream", text="1")]),
        ]
    )


def tiny_notebook(*sources: str) -> bytes:
    cells = [new_markdown_cell(s) if s.startswith("**") else new_code_cell(s) for s in sources]
    return nbsteps.write(new_notebook(cells=cells))


def test_solution_cells_keep_their_todo_line_and_raise():
    nb = nbsteps.stub_solution_cells(reference_notebook(), "nb/x.ipynb")
    assert nb.cells[1].source == (
        '# TODO: compute z, the sum\nraise NotImplementedError("compute z, the sum (nb/x.ipynb)")'
    )
    assert nb.cells[1].metadata.tags == ["solution"]
    assert [c.source for i, c in enumerate(nb.cells) if i != 1] == [
        c.source for i, c in enumerate(reference_notebook().cells) if i != 1
    ]


def test_a_todo_comment_may_go_on_over_several_lines():
    cell = new_code_cell(
        "# TODO: pick the rates,\n#   then train.\n\nbest = max(rates)  # solution\nbest",
        metadata={"tags": ["solution"]},
    )
    nb = nbsteps.stub_solution_cells(new_notebook(cells=[cell]), "x.ipynb")
    assert nb.cells[0].source == (
        "# TODO: pick the rates,\n#   then train.\n"
        'raise NotImplementedError("pick the rates, then train. (x.ipynb)")'
    )


def test_answer_cells_become_blanks():
    nb = nbsteps.blank_answer_cells(reference_notebook(), "x.ipynb")
    assert nb.cells[2].source == "**Your answer:** *fill this in*"
    assert nb.cells[1].source == reference_notebook().cells[1].source
    assert submission.BLANK in nbsteps.ANSWER_BLANK  # what `make submission` looks for


def test_outputs_counts_and_timings_are_cleared():
    nb = nbsteps.clear_outputs(reference_notebook())
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [(c.outputs, c.execution_count) for c in code] == [([], None), ([], None)]
    assert "execution" not in nb.cells[1].metadata
    assert nb.cells[1].metadata.tags == ["solution"]


def test_notebook_round_trip():
    reference = reference_notebook()
    student = nbsteps.clear_outputs(
        nbsteps.blank_answer_cells(nbsteps.stub_solution_cells(reference, "x"), "x")
    )
    restored = nbsteps.restore_sources(student, nbsteps.tagged_sources(reference))
    assert nbsteps.write(restored) == nbsteps.write(nbsteps.clear_outputs(reference))


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        (new_code_cell("z = 1", metadata={"tags": ["solution"]}), "must start with a line"),
        (
            new_code_cell("# TODO: write z\n\n", metadata={"tags": ["solution"]}),
            "nothing to replace below its TODO comment",
        ),
        (new_markdown_cell("text", metadata={"tags": ["solution"]}), "is for code cells"),
        (new_code_cell("z = 1", metadata={"tags": ["answer"]}), "is for markdown cells"),
        (
            new_code_cell("# TODO: z\nz=1", metadata={"tags": ["answer", "solution"]}),
            "tagged both",
        ),
        (new_markdown_cell("  ", metadata={"tags": ["answer"]}), "no worked answer to replace"),
    ],
    ids=["no todo line", "only a todo", "solution on markdown", "answer on code", "both", "empty"],
)
def test_malformed_tagged_cells_fail_loudly(cell, message):
    nb = new_notebook(cells=[new_markdown_cell("intro"), cell])
    with pytest.raises(ReleaseError, match=f"x.ipynb, cell 1: .*{message}"):
        nbsteps.blank_answer_cells(nbsteps.stub_solution_cells(nb, "x.ipynb"), "x.ipynb")


# --- tree steps ---------------------------------------------------------------------------


def test_only_tracked_allow_listed_files_are_selected(tmp_path):
    shipped = [
        "cs231n/__init__.py",
        "cs231n/classifiers/softmax.py",
        "notebooks/softmax.ipynb",
        "datasets/fashion-mnist/LICENSE",
        "datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz",
        "get_datasets.sh",
        "requirements.txt",
        "pyproject.toml",
    ]
    left_out = [
        "README.md",  # the student variant replaces it
        "Makefile",
        "tests/test_softmax.py",
        "tools/release/build.py",
        ".ci/run",
        ".venv/bin/python",
        "dist/student/cs231n/__init__.py",
        "out/softmax.html",
        "cs231n/__pycache__/checks.cpython-311.pyc",
        "cs231n/classifiers/__pycache__/softmax.cpython-311.py",
        "datasets/cifar-10-batches-py/data_batch_1",
        "datasets/cifar-10-python.tar.gz",
        "notebooks/.ipynb_checkpoints/softmax-checkpoint.ipynb",
        "notes.txt",
    ]
    untracked = ["cs231n/scratch_notes.py", "notebooks/draft.ipynb", "datasets/LICENSE.extra"]
    for rel in shipped + left_out + untracked:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "get_datasets.sh").chmod(0o755)
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "-f", *shipped, *left_out)
    tree = build.select_files(tmp_path)
    assert sorted(tree) == sorted(shipped)
    assert {rel: f.data.decode() for rel, f in tree.items()} == {rel: rel for rel in shipped}
    assert tree["get_datasets.sh"].executable and not tree["requirements.txt"].executable


def test_the_student_readme_and_makefile_come_from_the_overlay(tmp_path):
    for rel in ("tools/release/student/README.md", "tools/release/student/Makefile", "README.md"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(rel)
    (tmp_path / "tools/release/student/untracked.txt").write_text("not shipped")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", ".")
    git(tmp_path, "rm", "-q", "--cached", "tools/release/student/untracked.txt")
    tree = build.add_overlay({"README.md": build.File(b"reference")}, tmp_path)
    assert {rel: f.data for rel, f in tree.items()} == {
        "README.md": b"tools/release/student/README.md",
        "Makefile": b"tools/release/student/Makefile",
    }


def test_an_oversized_edition_is_refused():
    tree = {"a.bin": build.File(b"x" * 11), "b.txt": build.File(b"y")}
    assert build.check_size(tree, limit=12) is tree
    with pytest.raises(ReleaseError, match=r"12 bytes \(limit 11\); largest files: \['a.bin'"):
        build.check_size(tree, limit=11)


def test_a_leaking_edition_is_refused():
    reference = {"pkg/mod.py": build.File(MODULE.encode())}
    edition = build.stub_python(reference, MODULE_TASKS)
    build.check_no_leaks(reference, edition)
    edition["pkg/other.py"] = build.File(b"def h(a, i):\n    b = a + int(i)\n    return b\n")
    edition["nb.ipynb"] = build.File(
        nbsteps.write(new_notebook(cells=[new_code_cell('print("y = int(x) + 1")')]))
    )
    with pytest.raises(
        ReleaseError, match=r"nb.ipynb: 'y = int\(x\) \+ 1'\npkg/other.py: 'b = a \+ int\(i\)'"
    ):
        build.check_no_leaks(reference, edition)


def test_solution_cells_and_answers_are_leak_snippets_but_todo_lines_are_not():
    data = nbsteps.write(reference_notebook())
    snippets = leaks.solution_snippets({"x.ipynb": data})
    assert snippets == {"The answer is *42*, because ..."}  # 'z = x + y' is too short
    assert not any("TODO" in s for s in snippets)


@pytest.mark.parametrize(
    ("line", "counts"),
    [
        ("dW += 2 * reg * W", True),
        ("y_pred = np.argmax(scores, axis=1)", True),
        ("loss /= N", False),  # too short to be specific
        ("learning_rates,", False),  # one argument of an exploded call
        ("num_iters=1500,", False),
        ("scores = X @ W", False),  # listed in PUBLIC
    ],
)
def test_which_solution_lines_count_as_leaks(line, counts):
    assert leaks.is_snippet(leaks.code_part(f"    {line}  # comment")) is counts


def test_zip_is_reproducible_and_keeps_the_executable_bit(tmp_path):
    tree = {"run.sh": build.File(b"#!/bin/sh\n", True), "a/b.txt": build.File(b"b")}
    build.write_zip(tree, tmp_path / "1.zip", root="student")
    build.write_zip(dict(reversed(tree.items())), tmp_path / "2.zip", root="student")
    assert (tmp_path / "1.zip").read_bytes() == (tmp_path / "2.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "1.zip") as zf:
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
    assert modes == {"student/a/b.txt": 0o100644, "student/run.sh": 0o100755}


def test_write_tree_replaces_a_previous_build(tmp_path):
    dest = tmp_path / "student"
    build.write_tree({"old.txt": build.File(b"old")}, dest)
    build.write_tree({"new/x.sh": build.File(b"x", True)}, dest)
    assert [p.relative_to(dest).as_posix() for p in sorted(dest.rglob("*"))] == ["new", "new/x.sh"]
    assert os.access(dest / "new/x.sh", os.X_OK)
    assert [p.name for p in tmp_path.iterdir()] == ["student"]  # no staging folder left


# --- building from git -------------------------------------------------------------------

FAKE_KEY = "sk-fake-0123456789abcdef"  # stands for a secret that must never ship


def release(src: Path, tmp_path: Path, capsys) -> tuple[int, str, str]:
    """Run the release builder on ``src`` into ``tmp_path/dist``: exit code, out, err."""
    code = build.main(["--src", str(src), "--dist", str(tmp_path / "dist")])
    out, err = capsys.readouterr()
    return code, out, err


def shipped_text(dist: Path) -> str:
    """Everything in the written edition and its zip, as one text to search."""
    parts = [p.read_bytes().decode(errors="replace") for p in dist.rglob("*") if p.is_file()]
    with zipfile.ZipFile(dist / "student.zip") as zf:
        parts += [zf.read(name).decode(errors="replace") for name in zf.namelist()]
    return "\n".join(parts)


def test_untracked_files_never_ship(clone, tmp_path, capsys):
    for rel in ("cs231n/scratch_notes.py", "cs231n/classifiers/mine.py", "notebooks/draft.ipynb"):
        (clone / rel).write_text(f"API_KEY = {FAKE_KEY!r}\n")
    code, out, err = release(clone, tmp_path, capsys)
    assert code == 0, err
    files = student_files(tmp_path / "dist")
    assert "cs231n/checks.py" in files  # the edition is there...
    assert not {"cs231n/scratch_notes.py", "cs231n/classifiers/mine.py"} & set(files)
    assert FAKE_KEY not in shipped_text(tmp_path / "dist")  # ...without the untracked files
    commit = git(clone, "rev-parse", "--short", "HEAD").strip()
    assert out.startswith(f"student edition of {clone} at {commit}\n")  # untracked: not dirty
    assert "dirty" not in out


@pytest.mark.parametrize("how", ["committed link", "file replaced by a link", "linked folder"])
def test_a_symbolic_link_among_shipped_files_is_refused(clone, tmp_path, capsys, how):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "key.py").write_text(f"API_KEY = {FAKE_KEY!r}\n")
    if how == "committed link":
        (clone / "cs231n/api_key.py").symlink_to(outside / "key.py")
        git(clone, "add", "cs231n/api_key.py")
        git(clone, "commit", "-q", "-m", "a link to a key")
        named = "cs231n/api_key.py: a symbolic link in git"
    elif how == "file replaced by a link":  # git's index still says a regular file
        (clone / "cs231n/tuning.py").unlink()
        (clone / "cs231n/tuning.py").symlink_to(outside / "key.py")
        named = f"cs231n/tuning.py is a symbolic link (to {outside / 'key.py'})"
    else:
        shutil.move(clone / "cs231n/classifiers", outside / "classifiers")
        (clone / "cs231n/classifiers").symlink_to(outside / "classifiers")
        named = f"cs231n/classifiers/ is a symbolic link (to {outside / 'classifiers'})"
    code, out, err = release(clone, tmp_path, capsys)
    assert code == 1
    assert err.startswith("release: ") and named in err, err
    assert "Traceback" not in err and out == ""
    assert not (tmp_path / "dist").exists()  # nothing written, so no key either


def test_a_huge_or_special_shipped_file_is_refused_without_being_read(clone, tmp_path, capsys):
    with open(clone / "requirements.txt", "r+b") as huge:
        huge.truncate(200_000_000)  # sparse: 200 MB long, nothing on disk
    code, _, err = release(clone, tmp_path, capsys)
    assert code == 1 and err == (
        "release: requirements.txt holds 200,000,000 bytes, more than the whole edition may "
        "(20,000,000); is a download tracked by mistake?\n"
    )
    (clone / "requirements.txt").unlink()
    os.mkfifo(clone / "requirements.txt")  # reading it would wait for a writer forever
    code, _, err = release(clone, tmp_path, capsys)
    assert code == 1
    assert err == "release: requirements.txt is not a regular file; only regular files ship\n"
    assert not (tmp_path / "dist").exists()


def test_a_shipped_file_name_that_is_not_utf8_is_refused(clone, tmp_path, capsys):
    with open(os.fsencode(clone) + b"/cs231n/caf\xe9.py", "w") as file:
        file.write("x = 1\n")
    git(clone, "add", "cs231n")
    git(clone, "commit", "-q", "-m", "a Latin-1 file name")
    code, _, err = release(clone, tmp_path, capsys)
    assert code == 1
    assert (
        err
        == r"release: 'cs231n/caf\udce9.py': the file name is not printable UTF-8; rename it"
        + "\n"
    )


def test_the_banner_marks_a_dirty_tree_and_names_the_changed_files(clone, tmp_path, capsys):
    commit = git(clone, "rev-parse", "--short", "HEAD").strip()
    with (clone / "tests/test_softmax.py").open("a") as test:  # not shipped: stays clean
        test.write("# a note\n")
    (clone / "notes.txt").write_text("untracked")
    assert build.describe(clone) == (commit, [])
    with (clone / "cs231n/gradient_check.py").open("a") as module:
        module.write("# uncommitted change\n")
    (clone / "cs231n/__init__.py").write_text('"""Staged change."""\n')
    git(clone, "add", "cs231n/__init__.py")
    code, out, _ = release(clone, tmp_path, capsys)
    assert code == 0
    assert out.startswith(
        f"student edition of {clone} at {commit}-dirty\n"
        "  dirty: built from the working tree, which differs from that commit in:\n"
        "    cs231n/__init__.py\n"
        "    cs231n/gradient_check.py\n"
        "  "
    ), out
    edition = student_files(tmp_path / "dist")
    assert edition["cs231n/gradient_check.py"].endswith(b"# uncommitted change\n")
    assert edition["cs231n/__init__.py"] == b'"""Staged change."""\n'


def test_outside_a_git_checkout_the_release_refuses(clone, tmp_path, capsys):
    unpacked = tmp_path / "unpacked"  # as from a tarball: the files without .git
    shutil.copytree(clone, unpacked, ignore=shutil.ignore_patterns(".git"))
    code, out, err = release(unpacked, tmp_path, capsys)
    assert code == 1 and out == ""
    assert err.startswith(f"release: {unpacked} is not a git checkout. ") and "clone" in err
    code, _, err = release(clone / "cs231n", tmp_path, capsys)
    assert code == 1
    assert err == (
        f"release: {clone / 'cs231n'} is not the root of its git checkout (that is {clone}); "
        "pass the repository root as --src\n"
    )
    assert not (tmp_path / "dist").exists()


def test_without_git_the_release_takes_files_on_disk_only_when_asked(clone, tmp_path, capsys):
    unpacked = tmp_path / "unpacked"  # an archive unpacked, trusted as a whole
    shutil.copytree(clone, unpacked, ignore=shutil.ignore_patterns(".git"))
    (unpacked / "cs231n/extra.py").write_text("EXTRA = 1\n")
    code, out, err = release(unpacked, tmp_path, capsys)
    assert code == 1 and "is not a git checkout" in err
    code = build.main(["--src", str(unpacked), "--dist", str(tmp_path / "dist"), "--no-git"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert out.startswith(f"student edition of {unpacked} (every matching file, not from git)\n")
    from_git = build.build_edition(clone)
    assert student_files(tmp_path / "dist") == {
        **{rel: f.data for rel, f in from_git.items()},
        "cs231n/extra.py": b"EXTRA = 1\n",
    }
    (unpacked / "cs231n/key.py").symlink_to(tmp_path / "unpacked/requirements.txt")
    with pytest.raises(ReleaseError, match=r"^cs231n/key.py is a symbolic link \(to "):
        build.build_edition(unpacked, git=False)


def notebook_json(**changes) -> dict:
    """A small valid notebook (a code cell with id "a", a markdown cell with id "b") as
    JSON, with ``changes`` applied to cell 1 (a value of None removes the key)."""
    nb = json.loads(tiny_notebook("x = 1", "**text**"))
    nb["cells"][0]["id"], nb["cells"][1]["id"] = "a", "b"
    for key, value in changes.items():
        if value is None:
            nb["cells"][1].pop(key)
        else:
            nb["cells"][1][key] = value
    return nb


def as_bytes(nb: object) -> bytes:
    return json.dumps(nb).encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"cells": [', r"nb/x.ipynb: not a notebook: not UTF-8 JSON \(Expecting value"),
        (b"\xff\xfe", "nb/x.ipynb: not a notebook: not UTF-8 JSON"),
        (b"[" * 100_000 + b"]" * 100_000, "nb/x.ipynb: not a notebook: its JSON is nested too"),
        (as_bytes([1, 2]), 'nb/x.ipynb: not a notebook in format 4 \\(no "nbformat": 4'),
        (as_bytes({**notebook_json(), "nbformat": 3}), "not a notebook in format 4"),
        (as_bytes({**notebook_json(), "cells": None}), 'nb/x.ipynb: has no "cells" list'),
        (as_bytes({**notebook_json(), "cells": [5]}), "nb/x.ipynb, cell 0: is int, not a cell"),
        (
            as_bytes(notebook_json(cell_type=None)),
            "nb/x.ipynb, cell 1 \\(id b\\): \"cell_type\" is None; expected",
        ),
        (as_bytes(notebook_json(cell_type="python")), "cell 1 \\(id b\\): \"cell_type\" is 'py"),
        (as_bytes(notebook_json(source=None)), 'cell 1 \\(id b\\): "source" is None, not text'),
        (as_bytes(notebook_json(source=["a", 1])), r"cell 1 \(id b\): \"source\" is \['a', 1"),
        (as_bytes(notebook_json(metadata=[])), 'cell 1 \\(id b\\): "metadata" is \\[\\], not a'),
        (
            as_bytes(notebook_json(metadata={"tags": "answer"})),
            "cell 1 \\(id b\\): tags must be a list of strings, not 'answer'",
        ),
        (as_bytes(notebook_json(metadata={"tags": [["solution"]]})), "tags must be a list of"),
        (as_bytes(notebook_json(id=None)), "nb/x.ipynb, cell 1: has no cell id; open and save"),
        (as_bytes(notebook_json(id="a")), "cell 1 \\(id a\\): cell 0 has this id too"),
        (
            as_bytes(notebook_json(cell_type="code", source="y = 2")),  # no outputs
            "nb/x.ipynb: not a valid notebook: cells/1: .*'outputs' is a required property",
        ),
    ],
    ids=[
        "bad json", "not utf-8", "too deep", "not an object", "format 3", "no cells",
        "cell not an object", "no cell_type", "unknown cell_type", "no source",
        "source not text", "bad metadata", "tags a string", "tags nested", "no id",
        "duplicate id", "schema",
    ],
)  # fmt: skip
def test_a_malformed_notebook_gets_a_message_naming_it_and_the_cell(data, message):
    assert json.loads(tiny_notebook("x = 1"))  # the fixture helper itself is sound
    with pytest.raises(ReleaseError, match=message):
        build.stub_solution_cells({"nb/x.ipynb": build.File(data)})
    with pytest.raises(ReleaseError, match=message):
        build.record_release({"nb/x.ipynb": build.File(data)})


def test_the_release_of_a_malformed_notebook_fails_without_a_traceback(clone, tmp_path, capsys):
    path = clone / "notebooks/softmax.ipynb"
    nb = json.loads(path.read_text())
    del nb["cells"][3]["source"]
    path.write_text(json.dumps(nb))
    code, out, err = release(clone, tmp_path, capsys)
    assert code == 1 and out == "" and "Traceback" not in err
    assert err == (
        f"release: notebooks/softmax.ipynb, cell 3 (id {nb['cells'][3]['id']}): "
        '"source" is None, not text\n'
    )


def test_the_release_record_holds_the_student_notebooks_cells(dist, reference):
    record = json.loads((dist / "student" / submission.RELEASE_RECORD).read_text())
    student = nbformat.read(dist / "student" / submission.NOTEBOOK, as_version=4)
    assert list(record["notebooks"]) == [submission.NOTEBOOK]
    cells = record["notebooks"][submission.NOTEBOOK]
    assert cells == [
        {"id": c.id, "cell_type": c.cell_type, "tags": sorted(nbsteps.tags(c)), "source": c.source}
        for c in student.cells
    ]
    original = nbsteps.read(reference[submission.NOTEBOOK].data).cells
    assert [c["id"] for c in cells] == [c.id for c in original]  # the reference's own ids
    tagged = [c for c in cells if {"solution", "answer"} & set(c["tags"])]
    assert len(tagged) >= 3
    for cell in tagged:
        stub = "raise NotImplementedError(" in cell["source"]
        assert stub if "solution" in cell["tags"] else cell["source"] == nbsteps.ANSWER_BLANK
    assert submission.read_release_record(dist / "student") == cells


# --- the real student edition -------------------------------------------------------------


def student_env(root: Path) -> dict[str, str]:
    """Environment in which ``import cs231n`` finds the copy in ``root`` (and leaves no
    __pycache__ in it, so the built edition stays as the builder wrote it). The notebook
    runs on the bundled data even where the shell points CIFAR10_DIR at CIFAR-10."""
    env = {k: v for k, v in os.environ.items() if k != "CIFAR10_DIR"}
    return {
        **env,
        "CS231N_DATASET": "fashion-mnist",
        "PYTHONPATH": str(root),
        "MPLBACKEND": "Agg",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A fresh git repository holding this checkout's tracked files as they are now,
    committed. The release is built from it, so the tests see the current files whether
    or not they are committed here, and none of the untracked ones."""
    root = tmp_path_factory.mktemp("source")
    for rel in filter(None, git(REPO, "ls-files", "-z").split("\0")):
        if (REPO / rel).is_file():  # a tracked file deleted here is left out
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / rel, root / rel)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the checkout under test")
    return root


@pytest.fixture
def clone(source, tmp_path) -> Path:
    """A clone of ``source`` for a test to change."""
    subprocess.run(["git", "clone", "-q", str(source), str(tmp_path / "clone")], check=True)
    return tmp_path / "clone"


@pytest.fixture(scope="module")
def dist(source, tmp_path_factory) -> Path:
    """`python -m tools.release` (what `make release` runs) into a temporary dist/."""
    out = tmp_path_factory.mktemp("dist")
    result = subprocess.run(
        [sys.executable, "-m", "tools.release", "--src", str(source), "--dist", str(out)],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    commit = git(source, "rev-parse", "--short", "HEAD").strip()
    assert result.stdout.startswith(f"student edition of {source} at {commit}\n")
    assert "dirty" not in result.stdout and result.stderr == ""
    return out


@pytest.fixture(scope="module")
def reference(source) -> build.Tree:
    return build.select_files(source)


def student_files(dist: Path) -> dict[str, bytes]:
    root = dist / "student"
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def fill_in(student: Path, reference: build.Tree) -> None:
    """Put the reference solutions back into the stubs of the edition in ``student``."""
    for rel, file in reference.items():
        target = student / rel
        if rel.endswith(".py"):
            bodies = pysource.block_bodies(file.data.decode(), rel)
            filled = pysource.replace_bodies(target.read_bytes().decode(), rel, bodies)
            target.write_bytes(filled.encode())
        elif rel.endswith(".ipynb"):
            sources = nbsteps.tagged_sources(nbsteps.read(file.data))
            restored = nbsteps.restore_sources(nbsteps.read(target.read_bytes()), sources)
            target.write_bytes(nbsteps.write(restored))


def test_release_writes_the_edition_and_an_identical_zip(dist):
    files = student_files(dist)
    with zipfile.ZipFile(dist / "student.zip") as zf:
        zipped = {n.removeprefix("cs231n-softmax/"): zf.read(n) for n in zf.namelist()}
    assert zipped == files
    assert {rel.split("/")[0] for rel in files} == {
        "cs231n", "notebooks", "datasets", "get_datasets.sh", "README.md", "Makefile",
        "requirements.txt", "requirements-student.txt", "pyproject.toml",
    }  # fmt: skip
    assert "cs231n/checks.py" in files and "cs231n/submission.py" in files
    assert not any("__pycache__" in rel or rel.startswith("tests/") for rel in files)
    assert os.access(dist / "student" / "get_datasets.sh", os.X_OK)


def test_no_solution_line_appears_in_the_edition_or_its_zip(dist, reference):
    snippets = leaks.solution_snippets({p: f.data for p, f in reference.items()})
    assert len(snippets) >= 20  # the test can fail: it has real solution lines to look for
    assert "dW += 2 * reg * W" in snippets and "self.W -= learning_rate * grad" in snippets
    assert leaks.find_leaks(snippets, student_files(dist)) == []
    with zipfile.ZipFile(dist / "student.zip") as zf:
        assert leaks.find_leaks(snippets, {n: zf.read(n) for n in zf.namelist()}) == []


def test_filling_the_solutions_back_gives_the_reference(dist, reference, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(dist / "student", student)
    fill_in(student, reference)
    for rel, file in reference.items():
        restored = (student / rel).read_bytes()
        if rel.endswith(".ipynb"):
            expected = nbsteps.write(nbsteps.clear_outputs(nbsteps.read(file.data)))
            assert restored == expected, rel
        else:
            assert restored == file.data, rel
    # + README.md, Makefile and the release record
    assert len(student_files(dist)) == len(reference) + 3


def test_every_stub_names_its_task(dist, reference):
    files = student_files(dist)
    seen = set()
    for rel, data in files.items():
        if not rel.endswith(".py"):
            continue
        text = data.decode()
        for block in pysource.find_blocks(text, rel):
            seen.add((rel, block.function, block.index))
            lines = text.splitlines(keepends=True)[block.start + 1 : block.end]
            assert lines[0].startswith(f"{block.indent}raise NotImplementedError(")
            (statement,) = ast.parse(textwrap.dedent("".join(lines))).body
            assert isinstance(statement, ast.Raise)
            assert statement.exc.func.id == "NotImplementedError"
            task = stubs.TASKS[(rel, block.function, block.index)]
            message = ast.literal_eval(statement.exc.args[0])
            assert message == f"{block.function}: {task} ({rel})"
            assert max(len(line.rstrip("\n")) for line in lines) <= 99
            # the TODO banner above the block stays
            assert "TODO" in "".join(text.splitlines()[max(0, block.start - 8) : block.start])
    assert seen == set(stubs.TASKS)
    assert {name for (_, name, _) in seen} >= {
        "softmax_loss_naive", "softmax_loss_vectorized", "LinearClassifier.train",
        "LinearClassifier.predict",
    }  # fmt: skip
    for rel, data in files.items():
        if rel.endswith(".ipynb"):
            for cell in nbsteps.read(data).cells:
                if nbsteps.SOLUTION_TAG in nbsteps.tags(cell):
                    *todo, stub = cell.source.splitlines()
                    assert todo and all(line.startswith("#") for line in todo)
                    task = " ".join(line.lstrip("#").strip() for line in todo)
                    task = task.removeprefix("TODO:").strip()
                    assert stub == f'raise NotImplementedError("{task} ({rel})")'


STUB_OF_CHECK = {
    "softmax_loss_naive": ("cs231n/classifiers/softmax.py", "softmax_loss_naive", 0),
    "softmax_loss_vectorized": ("cs231n/classifiers/softmax.py", "softmax_loss_vectorized", 0),
    "train": ("cs231n/classifiers/linear_classifier.py", "LinearClassifier.train", 0),
    "predict": ("cs231n/classifiers/linear_classifier.py", "LinearClassifier.predict", 0),
}
# The optional exercise's check passes while its block is still the stub.
OPTIONAL_CHECKS = {
    "grid_search": "PASS grid_search: optional batched step not written; grid_search trains "
    "the configurations one by one",
}


def test_student_self_checks_fail_with_the_stub_messages(dist):
    student = dist / "student"
    result = subprocess.run(
        [sys.executable, "-m", "cs231n.checks"],
        cwd=student,
        env=student_env(student),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 1
    expected = [
        f"FAIL {name}: not implemented yet: {key[1]}: {stubs.TASKS[key]} ({key[0]})"
        for name, key in STUB_OF_CHECK.items()
    ] + list(OPTIONAL_CHECKS.values())
    assert result.stdout.splitlines() == expected
    assert result.stderr == ""


def test_student_makefile_sets_up_like_the_reference(dist):
    def setup_part(makefile: str) -> list[str]:
        lines = makefile.splitlines()
        variables = [ln for ln in lines if ":=" in ln or "?=" in ln]
        start = lines.index("$(STAMP): requirements.txt pyproject.toml")
        return variables + lines[start : lines.index("", start)]

    student = (dist / "student" / "Makefile").read_text()
    assert setup_part(student) == setup_part((REPO / "Makefile").read_text())
    if shutil.which("make"):
        result = subprocess.run(
            ["make", "-s", "-C", str(dist / "student"), "help"], capture_output=True, text=True
        )
        assert result.returncode == 0, result.stderr
        for target in ("notebook", "run", "check", "test", "submission"):
            assert f"make {target} " in result.stdout


def test_student_submission_packs_the_edition_and_lists_what_is_missing(dist, tmp_path):
    student = tmp_path / "student"
    shutil.copytree(dist / "student", student)
    result = subprocess.run(
        [sys.executable, "-m", "cs231n.submission"],
        cwd=student,
        env=student_env(student),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout  # unfinished work is packed, with its list
    lines = result.stdout.splitlines()
    assert lines[1].startswith("Not done yet (")
    for name in STUB_OF_CHECK:
        assert f"  - FAIL {name}: not implemented yet: " in "\n".join(lines)
    for name in OPTIONAL_CHECKS:
        assert f"FAIL {name}" not in result.stdout  # optional: passes while unwritten
    with zipfile.ZipFile(student / "submission.zip") as zf:
        record = json.loads(zf.read("incomplete.json"))
    assert record["complete"] is False
    assert sorted(c["name"] for c in record["failing_checks"]) == sorted(STUB_OF_CHECK)
    if NOTEBOOK.exists():
        todo_cells = [
            c for c in nbformat.read(NOTEBOOK, as_version=4).cells if "solution" in nbsteps.tags(c)
        ]
        stubs = [p for p in record["unfinished"] if p.endswith("still raises NotImplementedError")]
        assert len(stubs) == len(todo_cells)


def release_tiny(root: Path, *sources: str) -> list[str]:
    """Put a tiny notebook into the edition at ``root`` with a release record saying it
    was released as it is; return its cell ids."""
    data = tiny_notebook(*sources)
    record = build.record_release({submission.NOTEBOOK: build.File(data)})
    (root / submission.NOTEBOOK).write_bytes(data)
    (root / submission.RELEASE_RECORD).write_bytes(record[submission.RELEASE_RECORD].data)
    return [cell.id for cell in nbsteps.read(data).cells]


@pytest.fixture
def finished(dist, reference, tmp_path) -> Path:
    """A student edition with every solution filled in, and a tiny notebook."""
    student = tmp_path / "student"
    shutil.copytree(dist / "student", student)
    fill_in(student, reference)
    (student / "notebooks").mkdir(exist_ok=True)
    return student


def test_the_completeness_check_on_the_real_notebook(dist, finished):
    """As released, each TODO cell and each answer is named once; with the reference
    solutions and answers filled back in, nothing is missing."""
    released = nbformat.read(dist / "student" / submission.NOTEBOOK, as_version=4).cells
    problems = submission.notebook_problems(dist / "student")
    tagged = [
        (number, cell.id)
        for number, cell in enumerate(released, start=1)
        if {"solution", "answer"} & nbsteps.tags(cell)
    ]
    assert len(problems) == len(tagged) >= 3
    for (number, cell_id), problem in zip(tagged, problems, strict=True):
        assert problem.startswith(f"{submission.NOTEBOOK} cell {number} of {len(released)} ")
        assert f"(id {cell_id}, " in problem
    assert submission.notebook_problems(finished) == []


def run_submission(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "cs231n.submission"],
        cwd=root,
        env=student_env(root),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_submission_packs_code_and_the_executed_notebook(finished, dist):
    # The optional batched step stays unwritten, as most students will leave it.
    shutil.copy(dist / "student/cs231n/tuning.py", finished / "cs231n/tuning.py")
    release_tiny(
        finished, "**Your answer:** 42", "from cs231n.checks import check", "check('predict')"
    )
    result = run_submission(finished)
    assert result.returncode == 0, result.stdout + result.stderr
    with zipfile.ZipFile(finished / "submission.zip") as zf:
        names = set(zf.namelist())
        nb = nbformat.reads(zf.read("notebooks/softmax.ipynb").decode(), as_version=4)
    code = {p.relative_to(finished).as_posix() for p in (finished / "cs231n").rglob("*.py")}
    assert names == code | {"notebooks/softmax.ipynb", "incomplete.json"}
    with zipfile.ZipFile(finished / "submission.zip") as zf:
        assert b"raise NotImplementedError(" in zf.read("cs231n/tuning.py")
    assert [c.execution_count for c in nb.cells if c.cell_type == "code"] == [1, 2]
    assert nb.cells[2].outputs[0].text == "PASS predict: " + (
        "one integer label per row, the class with the highest score\n"
    )


def test_submission_packs_a_blank_answer_and_a_failing_notebook_with_the_list(finished):
    ids = release_tiny(finished, "x = 1", "**Your answer:** *fill this in*")
    result = run_submission(finished)
    assert result.returncode == 0
    assert (
        f"  - notebooks/softmax.ipynb cell 2 of 2 (id {ids[1]}, after 'x = 1'): the answer "
        "still says *fill this in*\n" in result.stdout
    )
    # An assert without a message: the cell is named by heading (none here) and id; the
    # cells after it still run, and each error is listed.
    ids = release_tiny(finished, "x = 1", "# check x\nassert x == 2", "1 / 0")
    result = run_submission(finished)
    assert result.returncode == 0
    assert (
        f"  - notebooks/softmax.ipynb cell 2 (id {ids[1]}): stops with AssertionError\n"
        in result.stdout
    ), result.stdout
    assert f"cell 3 (id {ids[2]}): stops with ZeroDivisionError: division by zero" in result.stdout
    with zipfile.ZipFile(finished / "submission.zip") as zf:
        record = json.loads(zf.read("incomplete.json"))
    assert record["complete"] is False
    assert [(c["cell_id"], c["problem"]) for c in record["failing_cells"]] == [
        (ids[1], "stops with AssertionError"),
        (ids[2], "stops with ZeroDivisionError: division by zero"),
    ]


# --- the real notebook in both editions (slow: each executes the notebook) ----------------


@needs_notebook
def test_student_notebook_runs_up_to_the_first_stub_and_stops_there(dist):
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError

    student = dist / "student"
    nb = nbformat.read(student / "notebooks/softmax.ipynb", as_version=4)
    client = NotebookClient(
        nb,
        timeout=600,
        kernel_name="python3",
        resources={"metadata": {"path": str(student / "notebooks")}},
    )
    with pytest.raises(CellExecutionError) as error:
        client.execute(env=student_env(student))
    # The first code the notebook needs from the student is softmax_loss_naive.
    key = STUB_OF_CHECK["softmax_loss_naive"]
    assert (error.value.ename, error.value.evalue) == (
        "NotImplementedError",
        f"{key[1]}: {stubs.TASKS[key]} ({key[0]})",
    ), str(error.value)[-2000:]


@needs_notebook
def test_student_edition_with_solutions_filled_in_passes_nbval_lax(finished, reference):
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "notebooks/softmax.ipynb"],
        cwd=finished,
        env=student_env(finished),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
