"""Grader code that reads a submission's content, run in a sandbox of its own.

:mod:`tools.grade.contained` copies this module (and the few modules it imports) into a
fresh scratch folder and runs it there under the submission's limits, as
``python -I _grade_judge.py MODE``. No student code runs in that sandbox; what it reads
is the student's data (the submitted notebook, the executed one, the Python files), which
can be built to make parsing slow or big. So a notebook of two million lines, or twenty
thousand answer cells, costs only this sandbox its time and memory, never a grader worker.
Every step here is linear in its input and every output is capped.

Modes, each reading and writing files in the current folder:

``prepare``  ``submitted.ipynb`` + ``plan.json`` -> ``sent.ipynb``, the notebook the kernel
             runs: outputs and execution counts cleared; cut before the "Optional: going
             further" heading, which nothing graded follows; without the edition's cells
             that only show or re-check the kit's code (``plan.json``'s ``edition``
             sources, less its ``keep`` ids), where the student left them unchanged; and
             with the grader's first cell (:data:`SETUP_SOURCE`) and last cell
             (:data:`EXPORT_SOURCE`) around it. Also ``answers.md`` (the TAs' page) and
             ``summary.json`` (answer cells, blank ones, code cells, cells left out).
``verdict``  ``sent.ipynb`` + ``ran.ipynb`` -> ``verdict.json``: each of the student's TODO
             cells that failed (named by the heading above it and its cell id, and the
             error's name), the first failure, and the export line of the last cell read
             and checked into plain numbers (:func:`read_export`).
``texts``    ``files.json`` (path -> the student's source), ``stubs.json`` (the student
             edition's same files) and, when one was submitted, ``submitted.ipynb`` ->
             ``texts.json``: what similarity compares (:func:`similarity.extract_texts`:
             the written blocks, the solution cells, the written answers), each part
             capped (:data:`MAX_TEXT_CODE`, :data:`MAX_TEXT_ANSWERS` answers of
             :data:`MAX_TEXT_ANSWER` characters).
``figures``  ``submitted.ipynb`` -> ``figures.json``: the PNGs stored above each question
             (:func:`feedback.question_figures`, re-encoded by Pillow), base64, at most
             :data:`MAX_FIGURES_TOTAL` bytes of them in all.
``incomplete`` ``incomplete.json`` (what ``make submission`` recorded) -> ``lines.json``:
             :func:`feedback.incomplete_summary`, the lines a TA is shown.
"""

from __future__ import annotations

import json
import os
import re
import sys

MAX_PAGE = 1 << 20  # characters of the answers page
MAX_QUOTE = 2_000  # characters of the question quoted above an answer
MAX_ANSWER = 20_000  # characters of one answer or one code cell on the page
MAX_NAME = 160  # characters of a heading or cell id in a verdict
MAX_TEXT_CODE = 256 << 10  # characters of one student's compared code
MAX_TEXT_ANSWERS = 40  # written answers compared per student
MAX_TEXT_ANSWER = 8_000  # characters of one compared answer (and of an answer's label: 200)
MAX_FIGURES_TOTAL = 12 << 20  # bytes of base64 PNGs handed back for one answers page
ANSWER_TAG = "answer"
SOLUTION_TAG = "solution"
ANSWER_BLANK = "**Your answer:** *fill this in*"
_YOUR_ANSWER = re.compile(r"^\s*\*\*Your answer:\*\*")
_TODO = re.compile(r"^\s*#\s*TODO:")
_OPTIONAL = re.compile(r"^\s{0,3}#{1,6}\s*Optional\b", re.IGNORECASE | re.MULTILINE)
_HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.+?)\s*#*\s*$", re.MULTILINE)
# The grader's cells around the student's (tools/grade/kernel_shim.py is _grade_shim.py in
# the kernel's folder): the first makes Softmax.train reuse the grader's runs, the last
# prints what the notebook's checks look at.
SETUP_SOURCE = "import _grade_shim\n\n_grade_shim.install()"
EXPORT_SOURCE = "_grade_shim.export(globals())"
EXPORT_MARK = "CS231N-GRADE-EXPORT "
MAX_EXPORT = 16 << 20  # characters of the export line
MAX_CONFIGS = 400  # configurations of a search
MAX_CALLS = 2000  # recorded train calls
MAX_WEIGHTS = 200_000  # entries of best_softmax.W
MAX_FAILED = 20  # failed TODO cells named in a verdict


def _write(name: str, data: bytes) -> None:
    tmp = f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, name)


def _source(cell: dict) -> str:
    source = cell.get("source", "")
    if isinstance(source, list):
        return "".join(str(line) for line in source)
    return str(source)


def _tags(cell: dict) -> set[str]:
    metadata = cell.get("metadata")
    tags = metadata.get("tags") if isinstance(metadata, dict) else None
    return {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()


def _cells(raw: object, what: str) -> list[dict]:
    if not isinstance(raw, dict) or not isinstance(raw.get("cells"), list):
        raise ValueError(f"{what} has no list of cells")
    if not all(isinstance(cell, dict) for cell in raw["cells"]):
        raise ValueError(f"{what} has a cell that is not a JSON object")
    return raw["cells"]


def _load(name: str, what: str) -> list[dict]:
    try:
        with open(name, "rb") as f:
            raw = json.loads(f.read().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ValueError(f"{what} cannot be read as a notebook (not UTF-8 JSON)") from None
    return _cells(raw, what)


def _read_json(name: str, what: str) -> object:
    try:
        with open(name, "rb") as f:
            return json.loads(f.read().decode("utf-8"))
    except (ValueError, RecursionError):
        raise ValueError(f"{what} cannot be read (not UTF-8 JSON)") from None


def _strings(raw: object) -> dict[str, str]:
    return {str(k): str(v) for k, v in raw.items()} if isinstance(raw, dict) else {}


def capped_texts(texts: dict) -> dict:
    """:func:`similarity.extract_texts`'s result with every part cut to its cap."""
    answers = texts.get("answers", {})
    return {
        "code": str(texts.get("code", ""))[:MAX_TEXT_CODE],
        "answers": {
            str(label)[:200]: str(text)[:MAX_TEXT_ANSWER]
            for label, text in list(answers.items())[:MAX_TEXT_ANSWERS]
        },
        "blank_answers": [str(b)[:200] for b in texts.get("blank_answers", [])][:MAX_TEXT_ANSWERS],
        "notebook": bool(texts.get("notebook", False)),
    }


def _is_answer(cell: dict) -> bool:
    return cell.get("cell_type") == "markdown" and (
        ANSWER_TAG in _tags(cell) or bool(_YOUR_ANSWER.match(_source(cell)))
    )


def _is_code_answer(cell: dict) -> bool:
    return cell.get("cell_type") == "code" and (
        SOLUTION_TAG in _tags(cell) or bool(_TODO.match(_source(cell)))
    )


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit] + "\n\n*[cut: too long]*"


def answers_page(cells: list[dict]) -> tuple[str, dict]:
    """The TAs' page (markdown) and a summary: answers, blank answers, code cells.

    One pass: the question above an answer is the last markdown cell seen that is not
    itself an answer, quoted up to MAX_QUOTE characters; the page stops at MAX_PAGE.
    """
    parts = ["# Written answers and notebook code", ""]
    size, question, answers, blank, code = 0, "", 0, 0, 0
    for index, cell in enumerate(cells):
        source = _source(cell)
        if _is_answer(cell):
            answers += 1
            text = source.strip()
            empty = not text or text == ANSWER_BLANK
            blank += empty
            piece = [f"## Cell {index + 1}: answer", ""]
            if question:
                quote = _cut(question, MAX_QUOTE)
                piece += ["> " + line for line in quote.splitlines()] + [""]
            piece += ["*Not answered.*" if empty else _cut(text, MAX_ANSWER), ""]
        elif _is_code_answer(cell):
            code += 1
            body = _cut(source.rstrip(), MAX_ANSWER)
            fence = "`" * max(3, max((len(m) for m in re.findall(r"`+", body)), default=0) + 1)
            piece = [f"## Cell {index + 1}: code", "", f"{fence}python", body, fence, ""]
        else:
            if cell.get("cell_type") == "markdown":
                question = source.strip()
            continue
        text = "\n".join(piece)
        if size + len(text) > MAX_PAGE:
            parts.append("*[The page stops here: the answers are longer than the page holds.]*")
            break
        parts.append(text)
        size += len(text)
    if not answers and not code:
        parts += ["*No answer or solution cells were found in this notebook.*", ""]
    summary = {"answers": answers, "blank_answers": blank, "code_answers": code}
    parts.insert(2, f"Blank written answers: {blank} of {answers}.\n")
    return "\n".join(parts), summary


BLANK_LINE = re.compile(r"^Blank written answers: (\d+) of (\d+)\.$", re.MULTILINE)


def blank_answers(page: str) -> tuple[int, int] | None:
    """(blank, answers) from a page :func:`answers_page` wrote (its first such line)."""
    found = BLANK_LINE.search(page[:4096])
    return (int(found[1]), int(found[2])) if found else None


def _errors(cell: dict) -> list[dict]:
    """The error outputs a code cell holds."""
    outputs = cell.get("outputs") if isinstance(cell.get("outputs"), list) else []
    return [o for o in outputs if isinstance(o, dict) and o.get("output_type") == "error"]


def _counted(cell: dict) -> bool:
    """Code cells that a run executes (nbclient skips empty ones)."""
    return cell.get("cell_type") == "code" and bool(_source(cell).strip())


def _where(cells: list[dict], index: int) -> str:
    """A cell as a student finds it: the heading above it and its id."""
    heading = ""
    for cell in reversed(cells[:index]):  # linear: called once per verdict
        if cell.get("cell_type") == "markdown":
            found = _HEADING.findall(_source(cell))
            if found:
                heading = found[-1]
                break
    cell_id = cell_id_of(cells[index])
    place = [f'under "{heading[:MAX_NAME]}"'] if heading else []
    place += [f"cell id {cell_id}"] if cell_id else []
    return ", ".join(place) or "no heading above it"


def cell_id_of(cell: dict) -> str:
    cell_id = cell.get("id")
    return str(cell_id)[:MAX_NAME] if isinstance(cell_id, str) else ""


def _left_out(cell: dict, plan: object) -> bool:
    """A code cell of the edition, unchanged and not kept by the plan: it only shows or
    re-checks the kit's code, which the grader judges apart."""
    if not isinstance(plan, dict) or cell.get("cell_type") != "code" or _is_code_answer(cell):
        return False
    edition = plan.get("edition") if isinstance(plan.get("edition"), dict) else {}
    keep = plan.get("keep") if isinstance(plan.get("keep"), list) else []
    cell_id = cell.get("id")
    return (
        isinstance(cell_id, str)
        and cell_id not in keep
        and isinstance(edition.get(cell_id), str)
        and edition[cell_id] == _source(cell)
    )


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if value == value and abs(value) != float("inf") else None


def _floats(raw: object, limit: int) -> list[float] | None:
    if not isinstance(raw, list) or len(raw) > limit:
        return None
    values = [_finite(v) for v in raw]
    return None if any(v is None for v in values) else values  # type: ignore[return-value]


def _settings(raw: object) -> dict | None:
    if not isinstance(raw, dict):
        return None
    out = {}
    for name in ("learning_rate", "reg"):
        out[name] = _finite(raw.get(name))
    for name in ("num_iters", "batch_size", "seed"):
        value = raw.get(name)
        out[name] = value if isinstance(value, int) and not isinstance(value, bool) else None
        if out[name] is not None and not -(2**63) <= out[name] < 2**64:
            out[name] = None
    classes = raw.get("num_classes")
    out["num_classes"] = classes if isinstance(classes, int) and 0 < classes < 10_000 else None
    if any(out[k] is None for k in ("learning_rate", "reg", "num_iters", "batch_size", "seed")):
        return None
    return out


def read_export(text: str) -> dict:
    """The export line's values, each checked: lists of finite floats, the search's rows
    ``[lr, reg, train_acc, val_acc]`` (None for a row that is not one), best_W as rows of
    floats, and the recorded train calls. ValueError when the line is not the export."""
    if not text.startswith(EXPORT_MARK) or len(text) > MAX_EXPORT:
        raise ValueError("the export line is missing or too long")
    try:
        raw = json.loads(text[len(EXPORT_MARK) :])
    except (ValueError, RecursionError):
        raise ValueError("the export line is not JSON") from None
    if not isinstance(raw, dict):
        raise ValueError("the export line is not a JSON object")
    out: dict = {}
    for name in ("margins", "svm_losses", "log_losses", "log1p_losses"):
        if name in raw:
            out[name] = _floats(raw[name], 100)
    if isinstance(raw.get("results"), list):
        rows = []
        for row in raw["results"][:MAX_CONFIGS]:
            values = _floats(row, 4)
            rows.append(values if values is not None and len(values) == 4 else None)
        out["results"] = rows
        size = raw.get("results_size")
        out["results_size"] = size if isinstance(size, int) and size >= 0 else len(rows)
    if "best_val" in raw:
        out["best_val"] = _finite(raw["best_val"])
    W = raw.get("best_W")
    if isinstance(W, list) and W and all(isinstance(row, list) for row in W):
        width = len(W[0])
        if len(W) * width <= MAX_WEIGHTS and all(len(row) == width for row in W):
            rows = [_floats(row, width) for row in W]
            out["best_W"] = None if any(r is None for r in rows) else rows
    calls = raw.get("calls") if isinstance(raw.get("calls"), list) else []
    out["calls"] = [
        {
            "settings": _settings(call.get("settings")),
            "on_train": call.get("on_train") is True,
            "reused": call.get("reused") is True,
        }
        for call in calls[:MAX_CALLS]
        if isinstance(call, dict)
    ]
    return out


def _export_line(cell: dict) -> str:
    for output in cell.get("outputs") if isinstance(cell.get("outputs"), list) else []:
        if isinstance(output, dict) and output.get("output_type") == "stream":
            text = output.get("text", "")
            text = "".join(str(t) for t in text) if isinstance(text, list) else str(text)
            at = text.find(EXPORT_MARK)
            if at >= 0:
                return text[at:].split("\n", 1)[0]
    return ""


def graded_verdict(sent: list[dict], ran: list[dict], stop: str) -> dict:
    """The graded run: the first failure (for the status), the student's TODO cells that
    failed, and the export of the grader's last cell (None when it did not run)."""
    base = verdict(sent[1:-1], ran[1:-1], stop) if len(sent) >= 2 else verdict(sent, ran, stop)
    failed = []
    for index, cell in enumerate(ran[1:-1], start=1):
        if not _is_code_answer(cell) or len(failed) >= MAX_FAILED:
            continue
        errors = _errors(cell)
        if errors:
            failed.append({"where": _where(ran, index), "error": str(errors[0].get("ename"))[:60]})
        elif not isinstance(cell.get("execution_count"), int):
            failed.append({"where": _where(ran, index), "error": ""})
    export = None
    if len(ran) >= 2 and _source(ran[-1]) == EXPORT_SOURCE:
        try:
            export = read_export(_export_line(ran[-1]))
        except ValueError:
            export = None
    setup_failed = bool(ran) and bool(_errors(ran[0]))
    return {**base, "failed": failed, "export": export, "setup_failed": setup_failed}


def verdict(sent: list[dict], ran: list[dict], stop: str) -> dict:
    """How far the run got: clean code cells before the first failure, and that failure."""
    if len(ran) != len(sent) or any(
        a.get("cell_type") != b.get("cell_type") or _source(a) != _source(b)
        for a, b in zip(sent, ran, strict=True)
    ):
        raise ValueError("the executed notebook is not the notebook that was sent")
    total = sum(1 for cell in ran if _counted(cell))
    clean, previous = 0, 0
    for index, cell in enumerate(ran):
        if not _counted(cell):
            continue
        count = cell.get("execution_count")
        errors = _errors(cell)
        if errors or not isinstance(count, int) or count <= previous:
            name = str(errors[0].get("ename", "an error"))[:60] if errors else ""
            what = f"code cell {clean + 1} of {total}"
            where = f" ({_where(ran, index)})"
            if stop == "timeout" or (name == "KeyboardInterrupt" and stop != "error"):
                return _stopped(clean, total, index, f"{what} ran out of time{where}", "timeout")
            if errors:
                status = "memory" if name == "MemoryError" else "ok"
                return _stopped(clean, total, index, f"{what} raised {name}{where}", status)
            if stop == "dead kernel":
                return _stopped(
                    clean, total, index, f"the kernel died in {what}{where}", "crashed"
                )
            return _stopped(clean, total, index, f"{what} did not run{where}", "ok")
        clean, previous = clean + 1, count
    return {"clean": clean, "total": total, "stopped": "", "cell": -1, "status": "ok"}


def _stopped(clean: int, total: int, index: int, why: str, status: str) -> dict:
    return {"clean": clean, "total": total, "stopped": why, "cell": index, "status": status}


def main(argv: list[str]) -> int:
    mode = argv[0] if argv else ""
    # jsonschema (under nbformat) would import rfc3987_syntax, which builds a grammar at
    # import (about 1.5 s) for an "iri" format that no notebook schema uses
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]
    try:
        if mode == "prepare":
            import nbformat

            with open("submitted.ipynb", "rb") as f:
                data = f.read()
            try:
                nb = nbformat.reads(data.decode("utf-8"), as_version=4)
            except Exception as error:  # noqa: BLE001 - JSON, encoding or schema: the student's
                raise ValueError(
                    f"the notebook cannot be read as a notebook ({type(error).__name__})"
                ) from None
            cells = _cells(nb, "the notebook")
            page, summary = answers_page(cells)
            optional = next(
                (
                    index
                    for index, cell in enumerate(cells)
                    if cell.get("cell_type") == "markdown" and _OPTIONAL.search(_source(cell))
                ),
                None,
            )
            if optional is not None:  # the required path only: nothing graded follows
                summary["optional_cells_skipped"] = len(cells) - optional
                del nb.cells[optional:]
            plan = _read_json("plan.json", "the plan") if os.path.exists("plan.json") else {}
            kept = [cell for cell in nb.cells if not _left_out(cell, plan)]
            summary["unchanged_cells_skipped"] = len(nb.cells) - len(kept)
            nb.cells = [nbformat.v4.new_code_cell(SETUP_SOURCE), *kept]
            nb.cells.append(nbformat.v4.new_code_cell(EXPORT_SOURCE))
            for cell in nb.cells:
                if cell.get("cell_type") == "code":
                    cell.outputs = []
                    cell.execution_count = None
                cell.get("metadata", {}).pop("execution", None)
            nb.metadata.pop("grade", None)
            summary["code_cells"] = sum(1 for cell in cells if _counted(cell))
            _write("sent.ipynb", (nbformat.writes(nb) + "\n").encode("utf-8"))
            _write("answers.md", page.encode("utf-8"))
            _write("summary.json", json.dumps(summary).encode())
        elif mode == "verdict":
            sent = _load("sent.ipynb", "the notebook sent")
            with open("ran.ipynb", "rb") as f:
                try:
                    raw = json.loads(f.read().decode("utf-8"))
                except (ValueError, RecursionError):
                    raise ValueError("the executed notebook is not UTF-8 JSON") from None
            ran = _cells(raw, "the executed notebook")
            grade = raw.get("metadata", {}).get("grade") if isinstance(raw, dict) else None
            stop = str(grade.get("stopped", ""))[:20] if isinstance(grade, dict) else ""
            _write("verdict.json", json.dumps(graded_verdict(sent, ran, stop)).encode())
        elif mode == "texts":
            from tools.grade import similarity

            files = _strings(_read_json("files.json", "the submitted files"))
            stubs = _strings(_read_json("stubs.json", "the stubs"))
            nb = None
            if os.path.exists("submitted.ipynb"):
                try:  # an unreadable notebook has no answers to compare; the code still is
                    nb = _read_json("submitted.ipynb", "the notebook")
                except ValueError:
                    nb = None
            texts = capped_texts(similarity.extract_texts(files, stubs, nb))
            _write("texts.json", json.dumps(texts).encode())
        elif mode == "figures":
            import base64

            from tools.grade import feedback

            nb = _read_json("submitted.ipynb", "the notebook")
            found, size = {}, 0
            for index, pngs in sorted(feedback.question_figures(nb, _is_answer).items()):
                coded = [base64.b64encode(png).decode("ascii") for png in pngs]
                size += sum(len(c) for c in coded)
                if size > MAX_FIGURES_TOTAL:
                    break
                found[str(index)] = coded
            _write("figures.json", json.dumps(found).encode())
        elif mode == "incomplete":
            from tools.grade import feedback

            with open("incomplete.json", "rb") as f:
                lines = feedback.incomplete_summary(f.read(feedback.MAX_RECORD_BYTES + 1))
            _write("lines.json", json.dumps(lines).encode())
        else:
            modes = "prepare | verdict | texts | figures | incomplete"
            print(f"usage: _grade_judge.py {modes} (not {mode!r})")
            return 2
    except ValueError as error:
        _write("problem.txt", str(error)[:500].encode("utf-8", "replace"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
