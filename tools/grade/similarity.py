"""Which students wrote the same code: the rows of ``similarity.csv``.

Each student-written block (keyed ``(path, function, block)`` as in
``tools/release/stubs.py``) is normalised: comments, blank lines and whitespace go, so
reformatting or recommenting a copy does not hide it. Students whose normalised block is
the same share a group for that block; a block equal to the reference solution is flagged
in group ``reference``. A block still equal to the stub matches nothing.
"""

from __future__ import annotations

import hashlib
import io
import re
import tokenize
from collections import defaultdict
from pathlib import Path

from tools.release import pysource
from tools.release.stubs import TASKS

Key = tuple[str, str, int]
COLUMNS = ("group", "student", "block", "lines")


def normalise(body: str) -> str:
    """``body`` without comments, blank lines or whitespace differences.

    Tokens are joined by single spaces, one logical line per line, so ``x=1 # a`` and
    ``x = 1`` agree. Text that does not tokenize is compared with comments and spaces cut.
    """
    try:
        lines, current = [], []
        for token in tokenize.generate_tokens(io.StringIO(_dedent(body)).readline):
            if token.type in (tokenize.COMMENT, tokenize.NL, tokenize.INDENT):
                continue
            if token.type in (tokenize.NEWLINE, tokenize.ENDMARKER, tokenize.DEDENT):
                if current:
                    lines.append(" ".join(current))
                    current = []
                continue
            current.append(token.string)
        if current:
            lines.append(" ".join(current))
        return "\n".join(lines)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        kept = (re.sub(r"#.*", "", line) for line in body.splitlines())
        return "\n".join(re.sub(r"\s+", " ", ln).strip() for ln in kept if ln.strip())


def _dedent(body: str) -> str:
    lines = body.splitlines()
    widths = [len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()]
    cut = min(widths, default=0)
    return "\n".join(ln[cut:] for ln in lines) + "\n"


def blocks_of(files: dict[str, str]) -> dict[Key, str]:
    """The marked blocks of ``files`` (path -> source), normalised, keyed as in TASKS.

    A file whose markers were damaged gives no blocks (nothing to compare).
    """
    out: dict[Key, str] = {}
    for path, text in files.items():
        try:
            blocks = pysource.find_blocks(text, path)
        except (pysource.ReleaseError, ValueError):
            continue
        lines = text.splitlines(keepends=True)
        for block in blocks:
            key = (path, block.function, block.index)
            if key in TASKS:
                out[key] = normalise("".join(lines[block.start + 1 : block.end]))
    return out


def block_name(key: Key) -> str:
    """``softmax_loss_naive`` or ``LinearClassifier.train#1`` for a TASKS key."""
    _, function, index = key
    others = sum(1 for k in TASKS if k[:2] == key[:2])
    return function if others == 1 else f"{function}#{index}"


def rows(
    students: dict[str, dict[Key, str]], reference: dict[Key, str], stub: dict[Key, str]
) -> list[dict[str, str]]:
    """The rows of similarity.csv (see :data:`COLUMNS`), sorted by group then student."""
    by_body: dict[tuple[Key, str], list[str]] = defaultdict(list)
    out: list[dict[str, str]] = []
    for student, blocks in sorted(students.items()):
        for key, body in sorted(blocks.items()):
            if not body or body == stub.get(key):
                continue
            lines = str(body.count("\n") + 1)
            if body == reference.get(key):
                out.append(
                    {
                        "group": "reference",
                        "student": student,
                        "block": block_name(key),
                        "lines": lines,
                    }
                )
            else:
                by_body[(key, body)].append(student)
    for (key, body), members in sorted(by_body.items()):
        if len(members) < 2:
            continue
        digest = hashlib.sha256(body.encode()).hexdigest()[:8]
        group = f"{block_name(key)}:{digest}"
        lines = str(body.count("\n") + 1)
        out += [
            {"group": group, "student": s, "block": block_name(key), "lines": lines}
            for s in members
        ]
    return sorted(out, key=lambda r: (r["group"] != "reference", r["group"], r["student"]))


def read_tree_blocks(root: Path) -> dict[Key, str]:
    """The normalised blocks of the files under ``root`` that TASKS names."""
    files = {}
    for path in {k[0] for k in TASKS}:
        if (root / path).is_file():
            files[path] = (root / path).read_text(encoding="utf-8", errors="replace")
    return blocks_of(files)
