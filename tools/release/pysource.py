"""Solution blocks in Python source: find them, stub them, fill them back in.

A solution block is the lines between cs231n's two marker lines::

    # *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****
    ...reference solution...
    # *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****

The markers and everything outside them are kept byte for byte; only the lines in
between change. Line endings are preserved, so filling the solutions back into a stubbed
file gives back the reference exactly.
"""

from __future__ import annotations

import ast
import re
import textwrap
from dataclasses import dataclass

START = "# *****START OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****"
END = "# *****END OF YOUR CODE (DO NOT DELETE/MODIFY THIS LINE)*****"

# Anything that mentions a marker's words is held to the exact marker text, so a typo
# ("START OF YOUR CODE" with one star missing) fails the build instead of shipping.
_MARKERISH = re.compile(r"(START|END) OF YOUR CODE", re.IGNORECASE)


class ReleaseError(Exception):
    """The reference source cannot be turned into a student edition; says where and why."""


@dataclass(frozen=True)
class Block:
    """One marked block: 0-based line indices of its markers, and where it sits."""

    start: int  # index of the START line
    end: int  # index of the END line
    indent: str  # the START marker's indentation, which the stub reuses
    function: str  # qualified name of the enclosing def ("" at module level)
    index: int  # position among the blocks of the same function


def find_blocks(text: str, path: str) -> list[Block]:
    """All marked blocks of ``text``, in order.

    Raises ReleaseError on a malformed marker, an END without a START, a START inside
    an open block (nesting), a START never closed, or a block with no code in it.
    """
    lines = text.splitlines()
    functions = _enclosing_functions(text, path)
    blocks: list[Block] = []
    open_at: int | None = None
    per_function: dict[str, int] = {}
    for i, line in enumerate(lines):
        stripped = line.strip()
        if not _MARKERISH.search(line):
            continue
        where = f"{path}:{i + 1}"
        if stripped == START:
            if open_at is not None:
                raise ReleaseError(
                    f"{where}: nested START marker: the block opened on line {open_at + 1} "
                    "is not closed yet; close it with an END marker first"
                )
            open_at = i
        elif stripped == END:
            if open_at is None:
                raise ReleaseError(f"{where}: END marker without a START marker above it")
            body = lines[open_at + 1 : i]
            if not any(ln.strip() and not ln.strip().startswith("#") for ln in body):
                raise ReleaseError(
                    f"{path}:{open_at + 1}: marked block has no code to replace; "
                    "put the reference solution between the markers or remove them"
                )
            function = functions.get(open_at, "")
            index = per_function.get(function, 0)
            per_function[function] = index + 1
            indent = lines[open_at][: len(lines[open_at]) - len(lines[open_at].lstrip())]
            blocks.append(Block(open_at, i, indent, function, index))
            open_at = None
        else:
            raise ReleaseError(
                f"{where}: malformed marker {stripped!r}; the marker lines must read "
                f"exactly {START!r} and {END!r}"
            )
    if open_at is not None:
        raise ReleaseError(f"{path}:{open_at + 1}: START marker is never closed by an END")
    return blocks


def block_bodies(text: str, path: str) -> list[str]:
    """The text between the markers of each block (the reference solutions)."""
    lines = text.splitlines(keepends=True)
    return ["".join(lines[b.start + 1 : b.end]) for b in find_blocks(text, path)]


def replace_bodies(text: str, path: str, bodies: list[str]) -> str:
    """``text`` with the inside of each marked block replaced by ``bodies`` (in order)."""
    blocks = find_blocks(text, path)
    if len(bodies) != len(blocks):
        raise ReleaseError(f"{path}: {len(blocks)} marked blocks but {len(bodies)} replacements")
    lines = text.splitlines(keepends=True)
    pieces: list[str] = []
    previous = 0
    for block, body in zip(blocks, bodies, strict=True):
        pieces.extend(lines[previous : block.start + 1])
        pieces.append(body)
        previous = block.end
    pieces.extend(lines[previous:])
    return "".join(pieces)


def stub_message(path: str, block: Block, tasks: dict[tuple[str, str, int], str]) -> str:
    """The NotImplementedError message for ``block``, from the stub table."""
    key = (path, block.function, block.index)
    if key not in tasks:
        raise ReleaseError(
            f"{path}:{block.start + 1}: marked block {block.index} of "
            f"{block.function or 'the module'} has no task description; add {key!r} "
            "to TASKS in tools/release/stubs.py"
        )
    name = block.function or path
    return f"{name}: {tasks[key]} ({path})"


def stub_body(indent: str, message: str, newline: str = "\n", width: int = 99) -> str:
    """Code that raises NotImplementedError(message), at the marker's indentation.

    One line when it fits in ``width`` columns; otherwise the message is split over
    adjacent string literals, one per line, which Python joins back into one string.
    """
    one_line = f"{indent}raise NotImplementedError({string_literal(message)})"
    if len(one_line) <= width:
        return one_line + newline
    words = textwrap.wrap(
        message, width - len(indent) - 7, break_long_words=False, break_on_hyphens=False
    )
    pieces = [w + " " for w in words[:-1]] + words[-1:]
    if "".join(pieces) != message:  # runs of spaces would not survive the wrapping
        return one_line + newline
    lines = [f"{indent}raise NotImplementedError("]
    lines += [f"{indent}    {string_literal(piece)}" for piece in pieces]
    lines += [f"{indent})"]
    return newline.join(lines) + newline


def string_literal(text: str) -> str:
    """``text`` as a double-quoted Python string literal."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def stub_source(text: str, path: str, tasks: dict[tuple[str, str, int], str]) -> str:
    """``text`` with every marked block replaced by its NotImplementedError stub.

    The result is parsed again, so a stub that breaks the syntax fails the build.
    """
    newline = "\r\n" if "\r\n" in text else "\n"
    blocks = find_blocks(text, path)
    bodies = [stub_body(b.indent, stub_message(path, b, tasks), newline) for b in blocks]
    stubbed = replace_bodies(text, path, bodies)
    try:
        ast.parse(stubbed, filename=path)
    except SyntaxError as error:
        raise ReleaseError(f"{path}: the stubbed file does not parse: {error}") from error
    return stubbed


def used_task_keys(text: str, path: str) -> set[tuple[str, str, int]]:
    """The stub-table keys that the blocks of ``text`` need."""
    return {(path, b.function, b.index) for b in find_blocks(text, path)}


def _enclosing_functions(text: str, path: str) -> dict[int, str]:
    """Map each 0-based line index to the qualified name of its innermost def."""
    try:
        tree = ast.parse(text, filename=path)
    except SyntaxError as error:
        raise ReleaseError(f"{path}: does not parse: {error}") from error
    owner: dict[int, str] = {}

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                name = f"{prefix}{child.name}"
                if not isinstance(child, ast.ClassDef):
                    for line in range(child.lineno - 1, child.end_lineno or child.lineno):
                        owner[line] = name  # inner defs visit later and overwrite
                visit(child, name + ".")
            else:
                visit(child, prefix)

    visit(tree, "")
    return owner
