"""Pack your submission: run ``make submission`` (or ``python -m cs231n.submission``).

It refuses, and lists what is left, while

- a self-check fails (see cs231n.checks);
- the notebook is not complete. It is compared with the notebook as it was released
  (``notebooks/.release.json`` records its cells): every released cell must still be
  there, each TODO cell must hold code of yours (not the stub, not only comments), and
  each "**Your answer:**" cell must hold an answer after the label;
- a file to pack is a symbolic link, not a regular file, or too large.

Then it runs the whole notebook headless, top to bottom, in a fresh kernel (naming the
cell that fails, if one does) and writes ``submission.zip``: your ``cs231n/**/*.py`` and
the executed notebook. The zip is written whole or not at all.
"""

from __future__ import annotations

import ast
import contextlib
import io
import json
import os
import re
import stat
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import nbformat

from .checks import CHECKS, check

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


def unfinished(root: Path = ROOT) -> list[str]:
    """What still keeps the work in ``root`` from being complete, one line per item.

    The self-checks run on the imported cs231n, the package this module belongs to:
    the one in ``root`` when run as ``python -m cs231n.submission`` from there.
    """
    problems = []
    for name in CHECKS:
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            passed = check(name)
        if not passed:
            problems.append(output.getvalue().strip())
    return problems + notebook_problems(root)


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
    that are not done (beyond the stub checks in :func:`unfinished`)."""
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
    path = root / name
    try:
        for link in [*reversed(path.relative_to(root).parents[:-1]), Path(name)]:
            if (root / link).is_symlink():
                raise SubmissionError(
                    f"{link.as_posix()} is a symbolic link (to {os.readlink(root / link)}); "
                    "a submission holds regular files only: put the file itself there"
                )
        flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise SubmissionError(f"{name} is missing") from None
    except OSError as error:
        raise SubmissionError(f"{name} cannot be read ({error.strerror})") from None
    with os.fdopen(fd, "rb") as stream:
        info = os.fstat(stream.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise SubmissionError(f"{name} is not a regular file; replace it with one")
        data = stream.read(limit + 1) if info.st_size <= limit else b""
    if info.st_size > limit or len(data) > limit:
        raise SubmissionError(
            f"{name} holds {max(info.st_size, len(data)):,} bytes; the limit is {limit:,}"
        )
    return data


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


def execute_notebook(root: Path = ROOT, timeout: int = 1200) -> nbformat.NotebookNode:
    """Run the notebook top to bottom in a fresh kernel that imports ``root``'s cs231n.

    Raises SubmissionError naming the cell that failed (or timed out, or killed the
    kernel) and the error.
    """
    from nbclient import NotebookClient  # imported here: only packing needs Jupyter
    from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

    data = _read_regular(root, NOTEBOOK, MAX_NOTEBOOK_BYTES)
    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
    except Exception as error:  # any of nbformat's many ways to say "damaged"
        raise SubmissionError(f"{NOTEBOOK} cannot be read as a notebook ({error})") from None
    env = dict(os.environ, MPLBACKEND="Agg")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(root), env.get("PYTHONPATH")]))
    running = [0]  # index of the cell being run, kept up to date by the client

    def note_cell(cell: nbformat.NotebookNode, cell_index: int) -> None:
        running[0] = cell_index

    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str((root / NOTEBOOK).parent)}},
        on_cell_start=note_cell,
    )
    try:
        client.execute(env=env)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        cells = read_cells(root)
        where = _where(cells[running[0]], cells) if running[0] < len(cells) else NOTEBOOK
        if isinstance(error, CellExecutionError):
            what = f"{error.ename}: {error.evalue}" if error.evalue else error.ename
        elif isinstance(error, CellTimeoutError):
            what = f"still running after {timeout} s"
        else:
            what = "the kernel died (out of memory, or a crash in native code?)"
        raise SubmissionError(f"{where} stops with an error: {what}") from None
    return nb


def pack(root: Path, nb: nbformat.NotebookNode) -> Path:
    """Write ``root/submission.zip``: the .py files of cs231n/ and the executed notebook.

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
    """Check, execute, pack; print what is missing and return 1 when not ready."""
    problems = unfinished(root)
    try:
        code_files(root)  # before the long run: a file that cannot be packed
    except SubmissionError as error:
        problems += error.problems
    if not problems:
        print(f"all checks pass; running {NOTEBOOK} from top to bottom ...", flush=True)
        try:
            archive = pack(root, execute_notebook(root))
        except SubmissionError as error:
            problems += error.problems
        except OSError as error:  # a full disk, a folder that is not writable
            problems.append(f"{ARCHIVE} cannot be written in {root}: {error}")
    if problems:
        print(f"Not packed: {len(problems)} thing(s) to finish first:")
        for problem in problems:
            print("  - " + problem.replace("\n", "\n    "))
        print("Fix these, then run `make submission` again.")
        if (root / ARCHIVE).exists():
            print(f"(The {ARCHIVE} that is there is from an earlier run: it lacks this work.)")
        return 1
    with zipfile.ZipFile(archive) as zf:
        names = zf.namelist()
    print(f"wrote {archive} ({len(names)} files: cs231n/*.py and the executed notebook)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
