"""Which students wrote the same thing: ranked pairs in ``similarity.csv``.

The fingerprinting is copydetect's (PyPI, MIT licence; the winnowing of Schleimer, Wilkerson
and Aiken's "Winnowing: local algorithms for document fingerprinting", as MOSS does it).
Its Python filter, through Pygments, replaces every name with ``V`` and every function
name with ``F`` and drops comments and whitespace, so a copy with renamed variables or
new comments fingerprints as the original, and k-gram fingerprints survive independent
statements swapped around. This module only decides *what* is compared:

- **code**: every marked block the student filled in (all blocks of all files together),
  less the blocks still equal to the stub and the blocks of one line (``self.W -= ...``
  is written alike by everyone), plus the notebook's ``solution`` cells;
- **answers**: the notebook's written answers, compared as text (lower case, spaces
  collapsed), less the blank ones.

The stub and the starter code (the student edition's blocks and notebook cells) are
copydetect boilerplate: their fingerprints are struck from every document. A pair's score
is the mean of the two students' shares of their own fingerprinted text found in the
other's (copydetect's two similarities), code and answers weighed by their size.

Where it runs: :func:`extract_texts` reads a submission's data (its Python files and its
notebook's JSON), so the grader runs it only in ``tools/grade/judge.py``'s ``texts`` mode,
in a sandbox of its own, and saves the capped texts that come back. copydetect hashes
k-grams with Python's ``hash``, which differs between processes, so all fingerprints are
taken in one process, the grader's, from those saved, capped texts alone (:func:`load`).
"""

from __future__ import annotations

import csv
import html
import io
import itertools
import json
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tools.release import pysource

K = 25  # copydetect's noise threshold: characters of filtered text per fingerprint
TOP_VIEWS = 20  # side-by-side pages for the best-ranked pairs
SAVED = "similarity.json"  # per student, written by the worker
COLUMNS = ("rank", "student_a", "student_b", "score", "code", "answers", "view")
VIEW_DIR = "similarity"
_ANSWER_LEAD = re.compile(r"^\s*\*\*Your answer:\*\*\s*", re.IGNORECASE)


def _dedent(body: str) -> str:
    return textwrap.dedent(body).strip("\n") + "\n"


def _lines_of_code(body: str) -> int:
    return sum(1 for ln in body.splitlines() if ln.strip() and not ln.strip().startswith("#"))


def written_code(files: dict[str, str], stubs: dict[str, str]) -> str:
    """The student's marked blocks of more than one line that differ from the stub.

    ``files`` and ``stubs`` map a path to its text: the student's file and the student
    edition's. A file whose markers were damaged gives nothing.
    """
    parts = []
    for path in sorted(files):
        try:
            bodies = pysource.block_bodies(files[path], path)
            blocks = pysource.find_blocks(files[path], path)
            stub = stubs.get(path, "")
            stub_bodies = pysource.block_bodies(stub, path) if stub else []
            stub_blocks = pysource.find_blocks(stub, path) if stub else []
        except (pysource.ReleaseError, ValueError):
            continue
        stub_of = {
            (b.function, b.index): s.strip() for b, s in zip(stub_blocks, stub_bodies, strict=True)
        }
        for block, body in zip(blocks, bodies, strict=True):
            if body.strip() == stub_of.get((block.function, block.index)):
                continue
            if _lines_of_code(body) <= 1:
                continue
            parts.append(_dedent(body))
    return "\n".join(parts)


# The notebook's cell tags and blank answer, as tools/release/notebook.py writes them (the
# test suite holds the two to each other). This module imports nothing that parses a
# notebook, so that it can run where the submission's data is read, in a sandbox.
SOLUTION_TAG = "solution"
ANSWER_TAG = "answer"
ANSWER_BLANK = "**Your answer:** *fill this in*"


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    return "".join(map(str, source)) if isinstance(source, list) else str(source)


def _tags(cell: dict) -> set[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def notebook_parts(nb: dict | None) -> tuple[str, dict[str, str], list[str]]:
    """(the code of the ``solution`` cells, the written answers by label, blank answers).

    ``nb`` is the notebook's JSON. An answer's label is its question's lead ("Inline
    question 2") or its cell number.
    """
    cells = nb.get("cells", []) if isinstance(nb, dict) else []
    if not isinstance(cells, list):
        return "", {}, []
    code, answers, blank = [], {}, []
    for index, cell in enumerate(cells):
        if not isinstance(cell, dict):
            continue
        source, tags = _source(cell), _tags(cell)
        if cell.get("cell_type") == "code" and (
            SOLUTION_TAG in tags or source.lstrip().startswith("# TODO:")
        ):
            code.append(_dedent(source))
        elif cell.get("cell_type") == "markdown" and (
            ANSWER_TAG in tags or _ANSWER_LEAD.match(source)
        ):
            label = _label(cells, index)
            text = _ANSWER_LEAD.sub("", source.strip())
            if source.strip() == ANSWER_BLANK or not text.strip():
                blank.append(label)
            else:
                answers[label] = text
    return "\n".join(code), answers, blank


def _label(cells: list, index: int) -> str:
    for cell in reversed(cells[:index]):
        if isinstance(cell, dict) and cell.get("cell_type") == "markdown":
            match = re.search(r"\*\*(Inline question \d+)\.?\*\*", _source(cell))
            if match:
                return match.group(1)
            break
    return f"cell {index + 1}"


def extract_texts(files: dict[str, str], stubs: dict[str, str], nb: dict | None) -> dict:
    """What :func:`compare` needs from one submission, from its data alone.

    ``files``: the student's Python files (path -> text); ``stubs``: the student
    edition's same files; ``nb``: the submitted notebook's JSON, or None.
    """
    nb_code, answers, blank = notebook_parts(nb)
    code = written_code(files, stubs)
    return {
        "code": code + ("\n" + nb_code if nb_code else ""),
        "answers": answers,
        "blank_answers": blank,
        "notebook": isinstance(nb, dict),
    }


def extract(files: dict[str, str], notebook: bytes | None, edition: Path) -> dict:
    """:func:`extract_texts` for the notebook's bytes and the student edition's folder.

    It parses in the calling process: for data one trusts (the tests, the bench). The
    driver extracts a submission's texts in the judge's sandbox instead.
    """
    stubs = {p: (edition / p).read_text("utf-8") for p in files if (edition / p).is_file()}
    nb = None
    if notebook is not None:
        try:
            nb = json.loads(notebook.decode("utf-8"))
        except (ValueError, RecursionError):
            nb = None
    return extract_texts(files, stubs, nb)


def baseline(edition: Path, notebook: Path) -> str:
    """The starter code: the student edition's blocks and notebook cells (boilerplate)."""
    from tools.grade.driver import STUDENT_FILES

    parts = []
    for path in STUDENT_FILES:
        text = (edition / path).read_text(encoding="utf-8")
        parts.append(text)
    if notebook.is_file():
        code, answers, _ = notebook_parts(json.loads(notebook.read_text(encoding="utf-8")))
        parts += [code, *answers.values()]
    return "\n".join(parts)


def _answers_text(answers: dict[str, str]) -> str:
    return "\n".join(" ".join(a.lower().split()) for _, a in sorted(answers.items()))


@dataclass
class Pair:
    """Two students' similarity: ``score`` in [0, 1], and its code and answer parts."""

    a: str
    b: str
    score: float
    code: float
    answers: float
    slices: dict  # kind -> (slices in a's text, slices in b's text), for the top pairs


def _fingerprint(text: str, language: str | None, boilerplate: np.ndarray):
    from copydetect import CodeFingerprint

    return CodeFingerprint(
        "doc.py" if language else "doc.txt",
        K,
        1,
        boilerplate=boilerplate,
        filter=language is not None,
        language=language,
        fp=io.StringIO(text),
    )


def _boilerplate(text: str, language: str | None) -> np.ndarray:
    if not text.strip():
        return np.array([], dtype=np.int64)
    return np.unique(np.array(sorted(_fingerprint(text, language, None).hashes)))


KINDS = {"code": "python", "answers": None}  # what is compared, and copydetect's language


def _texts(doc: dict) -> dict[str, str]:
    return {"code": doc.get("code", ""), "answers": _answers_text(doc.get("answers", {}))}


def fingerprints(docs: dict[str, dict], starter: str = "") -> dict[str, dict[str, object]]:
    """copydetect's CodeFingerprint of each student's code and answers, the starter
    code's fingerprints struck out (``{kind: {student: fingerprint}}``)."""
    prints: dict[str, dict[str, object]] = {kind: {} for kind in KINDS}
    for kind, language in KINDS.items():
        starter_text = starter if language else _answers_text({"s": starter})
        skip = _boilerplate(starter_text, language)
        for student, doc in docs.items():
            text = _texts(doc)[kind]
            if text.strip():
                fp = _fingerprint(text, language, skip)
                if fp.hashes:
                    prints[kind][student] = fp
    return prints


def compare(docs: dict[str, dict], starter: str = "") -> list[Pair]:
    """Every pair of ``docs`` (student -> what :func:`extract` returned), best first.

    A student's share is the fraction of their fingerprints (code and answers together)
    that the other's text has too; a pair's score is the mean of the two shares. Pairs
    are scored on fingerprint sets (fast for a class of hundreds); copydetect's
    character-level matches (:func:`matches`) are computed for the pages of the top pairs.
    """
    prints = fingerprints(docs, starter)
    sets = {kind: {s: set(fp.hashes) for s, fp in fps.items()} for kind, fps in prints.items()}
    pairs = []
    for a, b in itertools.combinations(sorted(docs), 2):
        shared_a = shared_b = size_a = size_b = 0
        shares = {}
        for kind in KINDS:
            ha, hb = sets[kind].get(a), sets[kind].get(b)
            if not ha or not hb:
                shares[kind] = 0.0
                continue
            common = len(ha & hb) if len(ha) < len(hb) else len(hb & ha)
            shares[kind] = (common / len(ha) + common / len(hb)) / 2
            shared_a, shared_b = shared_a + common, shared_b + common
            size_a, size_b = size_a + len(ha), size_b + len(hb)
        score = (shared_a / size_a + shared_b / size_b) / 2 if size_a and size_b else 0.0
        pairs.append(Pair(a, b, score, shares["code"], shares["answers"], {}))
    pairs.sort(key=lambda p: (-p.score, p.a, p.b))
    return pairs


def matches(pair: Pair, prints: dict[str, dict[str, object]]) -> dict:
    """copydetect's shared stretches of ``pair``: ``{kind: (slices in a, slices in b)}``."""
    from copydetect import compare_files

    found = {}
    for kind in KINDS:
        fa, fb = prints[kind].get(pair.a), prints[kind].get(pair.b)
        if fa is not None and fb is not None:
            overlap, _, cut = compare_files(fa, fb)
            if overlap:
                found[kind] = cut
    return found


# --- files -------------------------------------------------------------------------------


def load(out: Path, students: list[str]) -> dict[str, dict]:
    """The saved :func:`extract` results of ``students`` under ``out``."""
    docs = {}
    for student in students:
        from .grades import student_dir

        path = student_dir(out, student) / SAVED
        if path.is_file():
            try:
                docs[student] = json.loads(path.read_text(encoding="utf-8"))
            except ValueError:
                continue
    return docs


def write(out: Path, docs: dict[str, dict], starter: str, top: int = TOP_VIEWS) -> list[Pair]:
    """Write ``out/similarity.csv`` (ranked pairs) and a side-by-side page for the top ones."""
    from .grades import write_atomic

    pairs = compare(docs, starter)
    prints = fingerprints({p: docs[p] for pair in pairs[:top] for p in (pair.a, pair.b)}, starter)
    views = Path(out) / VIEW_DIR
    views.mkdir(parents=True, exist_ok=True)
    for old in views.glob("*.html"):
        old.unlink()
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for rank, pair in enumerate(pairs, start=1):
        view = ""
        if rank <= top and pair.score > 0:
            view = f"{VIEW_DIR}/{rank:03d}-{pair.a}-{pair.b}.html"
            pair.slices = matches(pair, prints)
            write_atomic(Path(out) / view, side_by_side(pair, docs[pair.a], docs[pair.b], rank))
        writer.writerow(
            {
                "rank": rank,
                "student_a": pair.a,
                "student_b": pair.b,
                "score": f"{pair.score:.3f}",
                "code": f"{pair.code:.3f}",
                "answers": f"{pair.answers:.3f}",
                "view": view,
            }
        )
    write_atomic(Path(out) / "similarity.csv", buffer.getvalue())
    return pairs


def read_csv(out: Path) -> list[dict[str, str]]:
    """The rows of ``out/similarity.csv`` (empty when there is none)."""
    path = Path(out) / "similarity.csv"
    if not path.is_file():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


_MARK_OPEN, _MARK_CLOSE = "\x00", "\x01"


def _highlighted(text: str, cut) -> str:
    from copydetect.utils import highlight_overlap

    if cut is None or len(cut) == 0 or cut.shape[-1] == 0:
        return html.escape(text)
    marked, _ = highlight_overlap(text, cut, _MARK_OPEN, _MARK_CLOSE)
    return html.escape(marked).replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>")


def side_by_side(pair: Pair, doc_a: dict, doc_b: dict, rank: int) -> str:
    """One HTML page: both students' code and answers, the shared stretches marked."""
    sections = []
    texts = {
        "code": (doc_a.get("code", ""), doc_b.get("code", "")),
        "answers": (
            _answers_text(doc_a.get("answers", {})),
            _answers_text(doc_b.get("answers", {})),
        ),
    }
    for kind, (ta, tb) in texts.items():
        cut_a, cut_b = pair.slices.get(kind, (None, None))
        share = pair.code if kind == "code" else pair.answers
        sections.append(
            f"<h2>{kind} (similarity {share:.2f})</h2><div class='row'>"
            f"<div><h3>{html.escape(pair.a)}</h3><pre>{_highlighted(ta, cut_a)}</pre></div>"
            f"<div><h3>{html.escape(pair.b)}</h3><pre>{_highlighted(tb, cut_b)}</pre></div>"
            "</div>"
        )
    title = f"#{rank}: {html.escape(pair.a)} and {html.escape(pair.b)}, score {pair.score:.2f}"
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>"
        + title
        + "</title><style>body{font-family:sans-serif;margin:1em}"
        ".row{display:flex;gap:1em}.row>div{flex:1;min-width:0}"
        "pre{background:#f6f6f6;padding:.5em;overflow-x:auto;font-size:12px}"
        "mark{background:#ffd54f}</style></head><body><h1>"
        + title
        + "</h1><p>Marked: stretches whose fingerprints (after names are replaced and "
        "comments dropped) both students share; starter code is not counted.</p>"
        + "".join(sections)
        + "</body></html>\n"
    )
