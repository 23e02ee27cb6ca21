"""The reference notebook: runs on a small CIFAR-10 folder, and its stored outputs are sound.

nbval (``make test``) checks that the stored outputs are reproduced on the bundled data.
These tests cover what nbval does not: the CIFAR-10 code path, on a fixture folder with far
fewer images than the real set (every split shrinks), and the shape of the committed file
(one clean top-to-bottom run, tags for the student edition, nothing machine-specific).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat
import pytest
from cifar_fixtures import write_cifar_folder
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "softmax.ipynb"


def _stdout(nb: nbformat.NotebookNode) -> str:
    return "".join(
        out.text
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stdout"
    )


def _kernel_in_this_interpreter(root: Path) -> Path:
    """A "python3" kernelspec that runs this interpreter, for JUPYTER_PATH.

    JUPYTER_PATH comes first in Jupyter's search, so a user-level "python3" kernel from
    another installation cannot take the test over.
    """
    spec = root / "kernels" / "python3"
    spec.mkdir(parents=True)
    argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": "kit", "language": "python"})
    )
    return root


def test_runs_to_the_end_on_a_small_cifar10_folder(tmp_path, monkeypatch):
    folder = write_cifar_folder(tmp_path / "data", n_per_batch=20, n_test=20, seed=0)
    monkeypatch.setenv("CS231N_DATASET", "cifar10")
    monkeypatch.setenv("CIFAR10_DIR", str(folder))
    monkeypatch.setenv("JUPYTER_PATH", str(_kernel_in_this_interpreter(tmp_path / "jupyter")))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    workdir = tmp_path / "run"
    workdir.mkdir()

    # Raises CellExecutionError, with the failing cell and its traceback, on any error.
    NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(workdir)}}
    ).execute()

    out = _stdout(nb)
    assert "dataset in use: cifar10" in out
    assert "image shape (height, width, channels): (32, 32, 3)" in out
    # 100 training images instead of 50,000: the splits shrank (98 train + 2 validation).
    assert re.search(r"X_train: \(98, 3073\)", out), out
    stderr = [
        out.text
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.outputs
        if out.output_type == "stream" and out.name == "stderr"
    ]
    assert stderr == [], f"warnings on the CIFAR-10 path: {stderr}"
    assert not list(workdir.iterdir()), "the notebook should not write files"


@pytest.fixture(scope="module")
def reference() -> nbformat.NotebookNode:
    return nbformat.read(NOTEBOOK, as_version=4)


def test_reference_is_one_clean_run_with_outputs(reference):
    code = [c for c in reference.cells if c.cell_type == "code"]
    # executed top to bottom in one kernel, every cell once
    assert [c.execution_count for c in code] == list(range(1, len(code) + 1))
    outputs = [out for c in code for out in c.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    # make reference leaves out progress-bar widgets: their ids change on every run
    assert "widgets" not in reference.metadata
    assert not [
        o for o in outputs if "application/vnd.jupyter.widget-view+json" in o.get("data", {})
    ]
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) >= 6, "figures are stored inline in the reference"
    # a figure only as display_data from plt.show(), never as a cell's value
    assert not [
        o
        for o in outputs
        if o.output_type == "execute_result" and "<Figure" in o.data.get("text/plain", "")
    ]


def test_reference_outputs_hold_nothing_machine_specific(reference):
    text = json.dumps([c.get("outputs", []) for c in reference.cells])
    for marker in {str(REPO), str(Path.home()), "/tmp/", " at 0x"}:
        assert marker not in text, f"stored outputs mention {marker!r}"
    timing = [c for c in reference.cells if c.cell_type == "code" and "perf_counter" in c.source]
    # skipped by nbval through the cell's tag, which the student edition does not show
    assert timing and all("nbval-ignore-output" in c.metadata.get("tags", []) for c in timing)
    assert not [c for c in reference.cells if "NBVAL" in c.source]


def test_reference_is_tagged_for_the_student_edition(reference):
    tagged = {
        tag: [c for c in reference.cells if tag in c.metadata.get("tags", [])]
        for tag in ("solution", "answer")
    }
    # the students write the tuning loop and the experiment of inline question 2
    assert [c.id for c in tagged["solution"]] == ["q2-experiment", "search"]
    for cell in tagged["solution"]:
        assert cell.cell_type == "code"
        assert cell.source.startswith("# TODO: ")
    assert len(tagged["answer"]) == 5, "one worked answer per inline question"
    for cell in tagged["answer"]:
        assert cell.cell_type == "markdown"
        assert cell.source.startswith("**Your answer:**")
    # a self-check cell for each TODO in cs231n/
    sources = [c.source for c in reference.cells if c.cell_type == "code"]
    for name in ("softmax_loss_naive", "softmax_loss_vectorized", "train", "predict"):
        assert f'passed = check("{name}")' in sources


def _code_index(nb: nbformat.NotebookNode, needle: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if c.cell_type == "code" and needle in c.source)


def test_each_self_check_comes_before_the_first_use_of_its_function(reference):
    # the naive loss is checked in two steps: its loss before the loss is used, its
    # gradient before the gradient is
    first_use = {
        "naive_loss_only": "softmax_loss_naive(",
        "softmax_loss_naive": "grad_check_sparse(",
        "softmax_loss_vectorized": "softmax_loss_vectorized(",
        "train": ".train(",
        "predict": ".predict(",
    }
    for name, call in first_use.items():
        check_cell = _code_index(reference, f'check("{name}")')
        use = next(
            i
            for i, c in enumerate(reference.cells)
            if c.cell_type == "code" and call in c.source and "check(" not in c.source
        )
        assert check_cell < use, f'check("{name}") in cell {check_cell}, first use in {use}'
    # a check cell prints its PASS/FAIL line and shows no value (no trailing True)
    for cell in reference.cells:
        if cell.cell_type == "code" and "check(" in cell.source:
            assert not [o for o in cell.outputs if o.output_type == "execute_result"]


def test_the_data_is_loaded_once(reference):
    loads = [c for c in reference.cells if c.cell_type == "code" and "load_dataset(" in c.source]
    assert len(loads) == 1


def test_every_figure_has_a_text_alternative(reference):
    figures = [
        out
        for c in reference.cells
        if c.cell_type == "code"
        for out in c.outputs
        if "image/png" in out.get("data", {})
    ]
    assert len(figures) >= 9
    for out in figures:
        alt = out.data["text/plain"]
        assert len(alt) > 40 and not alt.startswith("<Figure"), alt
        assert out.metadata["image/png"]["alt"] == alt
        # what an HTML export (make run) and JupyterLab show: an <img> with the alt text
        assert re.fullmatch(
            r'<img alt="[^"]+" src="data:image/png;base64,[^"]+"/>', out.data["text/html"]
        )
    sources = "\n".join(c.source for c in reference.cells if c.cell_type == "code")
    assert "plt.show()" not in sources, "show figures with cs231n.vis_utils.show(fig, alt)"


def test_questions_come_right_before_their_answers_and_define_what_they_ask(reference):
    cells = reference.cells
    questions = [i for i, c in enumerate(cells) if "**Inline question" in c.source]
    assert len(questions) == 5
    for i in questions:
        assert "answer" in cells[i + 1].metadata.get("tags", []), f"cell {i + 1}"
    # inline question 2 is about the SVM loss: the question itself defines it
    assert "SVM" in cells[questions[1]].source and r"\max" in cells[questions[1]].source


def test_the_first_run_does_not_use_the_tuned_hyperparameters(reference):
    # The student edition shows the first run's values before the search; they must not be
    # the search's winner, or the notebook hands out the result of the tuning.
    out = _stdout(reference)
    first = re.search(r"^learning rate (\S+), reg (\S+), \d+ iterations$", out, re.MULTILINE)
    best = re.search(r"^best: lr (\S+), reg (\S+), validation accuracy", out, re.MULTILINE)
    assert first and best, out[:2000]
    assert first.groups() != best.groups()
    prose = "\n".join(c.source for c in reference.cells if c.cell_type == "markdown")
    best_lr, best_reg = best.groups()
    for giveaway in ("see the outputs", "reaches 0.8", f"lr {best_lr}, reg {best_reg}"):
        assert giveaway not in prose


def test_make_reference_refuses_a_run_that_wrote_to_stderr():
    from nbformat.v4 import new_code_cell, new_notebook, new_output

    from tools.refresh_reference import stderr_cells

    nb = new_notebook(
        cells=[
            new_code_cell("print(1)", outputs=[new_output("stream", name="stdout", text="1\n")]),
            new_code_cell(
                "warn()",
                outputs=[new_output("stream", name="stderr", text="UserWarning: careful\nmore\n")],
            ),
        ]
    )
    assert stderr_cells(nb) == ["cell 1: UserWarning: careful"]
    nb.cells[1].outputs = []
    assert stderr_cells(nb) == []
