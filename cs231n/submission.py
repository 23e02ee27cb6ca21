"""Pack your submission: run ``make submission`` (or ``python -m cs231n.submission``).

It runs the self-checks, compares the notebook with the one released
(``notebooks/.release.json``: every released cell still there, TODO cells hold your code,
answer cells an answer), runs the notebook headless top to bottom in a fresh kernel, and
writes ``submission.zip``: your ``cs231n/**/*.py``, the executed notebook and
``incomplete.json``. Unfinished work is packed too (it can earn partial credit); what is
not done (failing checks, cells that print ``FAIL`` or stop with an error, named by heading
and cell id, open TODOs and answers) is printed and recorded there; the optional steps
only warn. Nothing is packed while a file is a link, not a regular file or too large, or
the notebook cannot be read. The zip is written whole or not at all.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ._deps import NOTEBOOK_PACKAGES, require_packages

require_packages(NOTEBOOK_PACKAGES, exit=__name__ == "__main__")  # first: name all missing

import nbformat  # noqa: E402

from . import _incomplete, _safe_io  # noqa: E402
from ._incomplete import (  # noqa: E402
    RECORD,
    failing_cells,
    make_record,
    print_record,
)
from .checks import CHECKS, check  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/softmax.ipynb"
RELEASE_RECORD = "notebooks/.release.json"  # written by the release builder
ARCHIVE = "submission.zip"
BLANK = "*fill this in*"  # what an unanswered "Your answer" cell still says
SOLUTION_TAG, ANSWER_TAG = "solution", "answer"  # tags of the cells you write

# Limits on what is packed: far above honest work, far below what breaks an upload.
MAX_CODE_BYTES = 1_000_000  # one .py file
MAX_NOTEBOOK_BYTES = 20_000_000  # the executed notebook (its figures are most of it)
MAX_TOTAL_BYTES = 30_000_000  # everything together, before compression
MAX_CODE_FILES = 200
MAX_CELLS = 5_000  # the released notebook has well under a hundred

_LABEL = re.compile(r"[*_\s]*your answer\s*:?[*_\s]*", re.IGNORECASE)


class SubmissionError(Exception):
    """Something keeps the submission from being packed; ``problems`` says what."""

    def __init__(self, *problems: str) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


@dataclass(frozen=True)
class Cell:
    """One cell of a notebook, as far as the completeness check needs it."""

    number: int  # position in the notebook, counting from 1
    id: str  # Jupyter's cell id ("" when the cell has none)
    cell_type: str  # "code", "markdown" or "raw"
    tags: frozenset[str]
    source: str
    damage: str = ""  # what is wrong with a damaged cell


def failing_checks() -> dict[str, str]:
    """The self-checks that fail, by name: what each printed (its ``FAIL`` line).

    The self-checks run on the imported cs231n, the package this module belongs to:
    the one in the kit's folder when run as ``python -m cs231n.submission`` from there.
    """
    failures = {}
    for name in CHECKS:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            passed = check(name)
        if not passed:
            failures[name] = output.getvalue().strip()
    return failures


def notebook_problems(root: Path = ROOT) -> list[str]:
    """What keeps the notebook in ``root`` from being complete, one line per item:
    damaged cells, released cells that are gone, TODO cells and answers not done."""
    try:
        cells = read_cells(root)
    except SubmissionError as error:
        return [str(error)]
    problems = _malformed(cells)
    try:
        problems += _missing(cells, read_release_record(root))
    except SubmissionError as error:
        problems.append(str(error))
    for cell in cells:
        if cell.cell_type == "code" and "raise NotImplementedError" in cell.source:
            problems.append(f"{_where(cell, cells)}: still raises NotImplementedError")
        elif cell.cell_type == "markdown" and BLANK in cell.source:
            problems.append(f"{_where(cell, cells, after=True)}: the answer still says {BLANK}")
    return problems


def read_cells(root: Path = ROOT) -> list[Cell]:
    """The cells of the notebook in ``root``. A damaged cell (no valid type or source)
    comes back with ``damage`` saying what is wrong, so that it can be reported."""
    data = _read_regular(root, NOTEBOOK, MAX_NOTEBOOK_BYTES)
    try:
        notebook = json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # RecursionError: nested too deep
        raise SubmissionError(f"{NOTEBOOK} cannot be read as a notebook ({error})") from None
    if not isinstance(notebook, dict) or not isinstance(notebook.get("cells"), list):
        raise SubmissionError(f'{NOTEBOOK} is not a notebook: it has no list of "cells"')
    if len(notebook["cells"]) > MAX_CELLS:
        count = len(notebook["cells"])
        raise SubmissionError(f"{NOTEBOOK} has {count:,} cells; the limit is {MAX_CELLS:,}")
    cells = []
    for number, cell in enumerate(notebook["cells"], start=1):
        cell = cell if isinstance(cell, dict) else {}
        source = cell.get("source")
        if isinstance(source, list) and all(isinstance(line, str) for line in source):
            source = "".join(source)  # the file may store the source line by line
        metadata = cell.get("metadata")
        tags = metadata.get("tags") if isinstance(metadata, dict) else None
        tags = [t for t in tags if isinstance(t, str)] if isinstance(tags, list) else []
        cell_type = cell.get("cell_type")
        damage = [
            *(["type (cell_type)"] if cell_type not in ("code", "markdown", "raw") else []),
            *(["source"] if not isinstance(source, str) else []),
        ]
        cells.append(
            Cell(
                number=number,
                id=cell["id"] if isinstance(cell.get("id"), str) else "",
                cell_type=cell_type if cell_type in ("code", "markdown", "raw") else "?",
                tags=frozenset(tags),
                source=source if isinstance(source, str) else "",
                damage=" or ".join(damage),
            )
        )
    return cells


def read_release_record(root: Path = ROOT) -> list[dict]:
    """The released notebook's cells, in order: ``id``, ``cell_type``, ``tags`` and
    ``source`` of each (the stub, for the cells you write)."""
    restore = "restore it from the student edition (student.zip) you started from"
    try:
        record = json.loads(_read_regular(root, RELEASE_RECORD, MAX_NOTEBOOK_BYTES))
        cells = record["notebooks"][NOTEBOOK]
        valid = all(
            isinstance(cell["id"], str)
            and isinstance(cell["source"], str)
            and cell["cell_type"] in ("code", "markdown", "raw")
            and isinstance(cell["tags"], list)
            for cell in cells
        )
    except SubmissionError as error:
        message = f"{error}: it records the notebook as released; {restore}"
        raise SubmissionError(message) from None
    except (ValueError, LookupError, TypeError, RecursionError):
        valid = False
    if not valid:
        raise SubmissionError(f"{RELEASE_RECORD} is damaged; {restore}")
    return cells


def _malformed(cells: list[Cell]) -> list[str]:
    return [
        f"{_where(cell, cells)}: is damaged, it has no valid {cell.damage}; delete it "
        "in Jupyter, or copy your work into a fresh copy of the notebook"
        for cell in cells
        if cell.damage
    ]


def _match(cells: list[Cell], released: list[dict]) -> list[Cell | None]:
    """The cell of ``cells`` that each released cell became (None: it is gone).

    A cell is known by its id. A cell pasted back after a deletion gets a new id, so a
    released cell whose id is gone matches the first other cell of its type that has
    its source (untouched) or its solution/answer tag.
    """
    by_id = {cell.id: cell for cell in cells if cell.id}
    matches = [by_id.get(want["id"]) for want in released]
    taken = {id(cell) for cell in matches if cell is not None}
    for index, want in enumerate(released):
        tags = {SOLUTION_TAG, ANSWER_TAG} & set(want["tags"])
        for cell in cells if matches[index] is None else []:
            same = cell.source == want["source"] or bool(tags & cell.tags)
            if id(cell) not in taken and cell.cell_type == want["cell_type"] and same:
                matches[index] = cell
                taken.add(id(cell))
                break
    return matches


def _missing(cells: list[Cell], released: list[dict]) -> list[str]:
    """Released cells that are gone or changed kind, and the TODO and answer cells
    that are not done (beyond the stub checks in :func:`notebook_problems`)."""
    problems = []
    matches = _match(cells, released)
    for number, (want, cell) in enumerate(zip(released, matches, strict=True), start=1):
        tags = {SOLUTION_TAG, ANSWER_TAG} & set(want["tags"])
        if cell is None:
            problems.append(
                f"{NOTEBOOK}: released cell {number} of {len(released)} (id {want['id']}, "
                f"{_first_line(want['source'])!r}) is missing; copy it back from the "
                "notebook of the student edition"
            )
        elif cell.damage:
            continue  # reported as damaged
        elif cell.cell_type != want["cell_type"]:
            problems.append(
                f"{_where(cell, cells)}: was released as a {want['cell_type']} cell and is "
                f"now a {cell.cell_type} cell; change it back"
            )
        elif tags - cell.tags:
            lost = ", ".join(sorted(tags - cell.tags))
            problems.append(
                f"{_where(cell, cells)}: lost its tag {lost!r}; add it back "
                "(Jupyter: the property inspector, or View > Cell toolbar > Tags)"
            )
        elif SOLUTION_TAG in tags and "raise NotImplementedError" not in cell.source:
            problems += _todo_problems(cell, cells, want["source"])
        elif ANSWER_TAG in tags and BLANK not in cell.source:
            if not re.search(r"\w", _LABEL.sub("", cell.source)):
                problems.append(
                    f"{_where(cell, cells, after=True)}: holds no answer after the label; "
                    "write your answer there"
                )
    return problems


def _todo_problems(cell: Cell, cells: list[Cell], stub: str) -> list[str]:
    """A TODO cell must hold code of the student's: not the stub, not just comments."""
    code, released = _syntax_tree(cell.source), _syntax_tree(stub)
    if code is None:
        return []  # a mistake that running the notebook will show, with its line
    if all(_does_nothing(statement) for statement in code.body):
        return [
            f"{_where(cell, cells)}: holds only comments (or pass); "
            "write your code below the TODO comment"
        ]
    if released is not None and _same_code(code, released):
        return [f"{_where(cell, cells)}: is still the released stub; write your code there"]
    return []


def _same_code(a: ast.Module, b: ast.Module) -> bool:
    try:
        return ast.dump(a) == ast.dump(b)
    except RecursionError:  # nested deeper than any stub
        return False


def _syntax_tree(source: str) -> ast.Module | None:
    """The cell's code as Python sees it (comments and layout gone), without IPython's
    ``%magic`` and ``!shell`` lines; None when it does not parse."""
    lines = source.splitlines()
    try:
        return ast.parse("\n".join(ln for ln in lines if not ln.lstrip().startswith(("%", "!"))))
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # ValueError: a NUL byte
        return None


def _does_nothing(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Pass) or (
        isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant)
    )


def _where(cell: Cell, cells: list[Cell], after: bool = False) -> str:
    """How messages name a cell: its position, id and first line (or, with ``after``
    or when it is empty, the first line of the cell above it)."""
    name = f"{NOTEBOOK} cell {cell.number} of {len(cells)}"
    first = _first_line(cell.source)
    details = [f"id {cell.id}"] if cell.id else []
    if first and not after:
        details.append(repr(first))
    elif cell.number > 1:
        details.append(f"after {_first_line(cells[cell.number - 2].source)!r}")
    return f"{name} ({', '.join(details)})" if details else name


def _first_line(text: str, width: int = 60) -> str:
    first_line = (text.strip().splitlines() or [""])[0]
    return first_line if len(first_line) <= width else first_line[: width - 3] + "..."


def _read_regular(root: Path, name: str, limit: int) -> bytes:
    """The bytes of the regular file ``root/name``, at most ``limit`` of them.

    A symbolic link (the file, or a folder on the way to it) is refused rather than
    followed: it could lead to any file on the machine. So is anything that is not a
    regular file: a device or a pipe could be read forever.
    """
    for link in [*reversed(Path(name).parents[:-1]), Path(name)]:
        if (root / link).is_symlink():
            raise SubmissionError(
                f"{link.as_posix()} is a symbolic link (to {os.readlink(root / link)}); "
                "a submission holds regular files only: put the file itself there"
            )
    try:
        return _safe_io.read_file(root / name, limit, "a submission")
    except _safe_io.FileRefused as refused:
        if refused.reason == "too big":
            message = f"{name} holds {refused.size:,} bytes; the limit is {limit:,}"
        elif refused.reason == "grew":
            message = f"{name} changed while being read; save it, then run this again"
        else:  # not regular (a link is refused above, or here if it just became one)
            message = f"{name} is not a regular file; replace it with one"
        raise SubmissionError(message) from None
    except FileNotFoundError:
        raise SubmissionError(f"{name} is missing") from None
    except OSError as error:
        raise SubmissionError(f"{name} cannot be read ({error.strerror})") from None


def code_files(root: Path = ROOT) -> dict[str, bytes]:
    """The ``.py`` files under ``root/cs231n``, by path relative to ``root``.

    Raises SubmissionError naming every file that cannot be packed: a symbolic link
    (to a file or a folder), a ``.py`` that is not a regular file, one over
    ``MAX_CODE_BYTES``, more than ``MAX_CODE_FILES`` files or ``MAX_TOTAL_BYTES`` in all.
    """
    if (root / "cs231n").is_symlink():
        raise SubmissionError(
            f"cs231n is a symbolic link (to {os.readlink(root / 'cs231n')}); a submission "
            "holds regular files only: put the folder itself there"
        )
    files: dict[str, bytes] = {}
    problems: list[str] = []
    for folder, subfolders, names in _walk(root / "cs231n"):  # never enters a linked folder
        subfolders[:] = sorted(d for d in subfolders if d != "__pycache__")
        for name in sorted(subfolders + names):
            path = Path(folder, name)
            rel = path.relative_to(root).as_posix()
            if not (path.is_symlink() or name.endswith(".py") and name in names):
                continue
            if len(files) == MAX_CODE_FILES:
                raise SubmissionError(f"cs231n/ holds more than {MAX_CODE_FILES} .py files")
            try:
                rel.encode("utf-8")
            except UnicodeEncodeError:  # a zip stores names as UTF-8
                problems.append(f"{ascii(rel)}: the file name is not UTF-8 text; rename it")
                continue
            try:
                files[rel] = _read_regular(root, rel, MAX_CODE_BYTES)
            except SubmissionError as error:
                problems.append(str(error))
    total = sum(map(len, files.values()))
    if total > MAX_TOTAL_BYTES:
        problems.append(f"cs231n/ holds {total:,} bytes of code; the limit is {MAX_TOTAL_BYTES:,}")
    if problems:
        raise SubmissionError(*problems)
    return files


def _walk(top: Path) -> Iterator[tuple[str, list[str], list[str]]]:
    """``os.walk(top)``, with a folder nested too deep to walk reported by name."""
    try:
        yield from os.walk(top)
    except RecursionError:
        raise SubmissionError(f"{top.name}/ holds folders nested too deep to pack") from None


def read_notebook(root: Path = ROOT) -> nbformat.NotebookNode:
    """The notebook in ``root`` as nbformat reads it; SubmissionError if it cannot."""
    data = _read_regular(root, NOTEBOOK, MAX_NOTEBOOK_BYTES)
    try:
        return nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # any of nbformat's many ways to say "damaged"
        raise SubmissionError(f"{NOTEBOOK} cannot be read as a notebook ({error})") from None


def execute_notebook(root: Path = ROOT, timeout: int = 1200) -> tuple[nbformat.NotebookNode, str]:
    """Run the notebook top to bottom in a fresh kernel that imports ``root``'s cs231n.

    Returns the notebook as run and "" or, when a cell ran past ``timeout`` seconds or
    killed the kernel, the notebook as run until then (later cells without outputs) and
    a message naming that cell. A cell that raises keeps its error in its outputs, and
    the run goes on (see :func:`cs231n._incomplete.failing_cells`).
    """
    nb = read_notebook(root)
    stopped_at, what = _incomplete.run_notebook(nb, root, (root / NOTEBOOK).parent, timeout)
    if stopped_at is None:
        return nb, ""
    cells = read_cells(root)
    where = _where(cells[stopped_at], cells) if stopped_at < len(cells) else NOTEBOOK
    return nb, f"{where} stops with an error: {what}; the cells after it did not run"


def pack(root: Path, nb: nbformat.NotebookNode, record: dict | None = None) -> Path:
    """Write ``root/submission.zip``: the .py files of cs231n/, the executed notebook and,
    when given, ``record`` as ``incomplete.json`` (see :func:`make_record`).

    The zip is written to a temporary file and renamed into place, so an error (or
    Ctrl-C) leaves no half-written archive. Raises SubmissionError for files that
    cannot be packed (see :func:`code_files`) or a notebook over the size limit.
    """
    files = code_files(root)
    notebook = (nbformat.writes(nb) + "\n").encode("utf-8")
    if len(notebook) > MAX_NOTEBOOK_BYTES:
        raise SubmissionError(
            f"the executed {NOTEBOOK} holds {len(notebook):,} bytes; the limit is "
            f"{MAX_NOTEBOOK_BYTES:,}: print less, or show fewer or smaller figures"
        )
    files[NOTEBOOK] = notebook
    if record is not None:
        files[RECORD] = (json.dumps(record, indent=1, ensure_ascii=False) + "\n").encode()
    if sum(map(len, files.values())) > MAX_TOTAL_BYTES:
        raise SubmissionError(f"the submission would hold more than {MAX_TOTAL_BYTES:,} bytes")
    fd, temporary = tempfile.mkstemp(prefix=".submission-", suffix=".zip.part", dir=root)
    try:
        with os.fdopen(fd, "wb") as stream:
            with zipfile.ZipFile(stream, "w", zipfile.ZIP_DEFLATED) as zf:
                for rel, data in files.items():
                    zf.writestr(rel, data)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, root / ARCHIVE)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    return root / ARCHIVE


def main(root: Path = ROOT) -> int:
    """Check, execute, pack even unfinished work; print what is not done yet.

    Returns 0 when ``submission.zip`` was written (complete or not), 1 when nothing
    could be packed (a file or the notebook that cannot be, or a disk that refuses).
    """
    try:  # before the long run: what cannot be packed at all
        code_files(root)
        damaged = _malformed(read_cells(root))
        if damaged:
            raise SubmissionError(*damaged)
        nb = read_notebook(root)
    except SubmissionError as error:
        return _not_packed(root, error.problems)
    checks = failing_checks()
    open_work = notebook_problems(root)
    print(f"running {NOTEBOOK} from top to bottom ...", flush=True)
    try:
        nb, stopped = execute_notebook(root)
    except Exception as error:  # a notebook Jupyter cannot run: pack it as it was saved
        stopped = f"{NOTEBOOK} could not be run ({type(error).__name__}: {error})"
    try:
        record = make_record(checks, open_work, failing_cells(nb), [stopped] if stopped else [])
        archive = pack(root, nb, record)
    except SubmissionError as error:
        return _not_packed(root, error.problems)
    except OSError as error:  # a full disk, a folder that is not writable
        return _not_packed(root, [f"{ARCHIVE} cannot be written in {root}: {error}"])
    with zipfile.ZipFile(archive) as zf:
        count = len(zf.namelist())
    print_record(record)
    done = "complete" if record["complete"] else "INCOMPLETE: the work above is not done yet"
    print(f"wrote {archive} ({count} files: cs231n/*.py, the executed notebook, {RECORD}): {done}")
    if not record["complete"]:
        print("You may upload it as it is, or fix the above and run `make submission` again.")
    return 0


def _not_packed(root: Path, problems: list[str]) -> int:
    print(f"Not packed: {len(problems)} thing(s) to fix first:")
    for problem in problems:
        print("  - " + problem.replace("\n", "\n    "))
    print("Fix these, then run `make submission` again.")
    if (root / ARCHIVE).exists():
        print(f"(The {ARCHIVE} that is there is from an earlier run: it lacks this work.)")
    return 1


if __name__ == "__main__":
    sys.exit(main())
