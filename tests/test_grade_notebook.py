"""The notebook item: the notebook's own work, judged from a real run in the sandbox.

The oracles: the reference notebook earns every part and the untouched stub none; each
hand-made mistake below costs exactly the part it belongs to (points from ``PARTS``);
forged exports are checked against runs the grader makes itself; a reused run is the
same array, bit for bit, as a fresh run of the reference's ``Softmax.train``.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import types
from pathlib import Path

import numpy as np
import pytest

from cs231n.classifiers import Softmax
from cs231n.classifiers import linear_classifier as lc
from tools.grade import driver, feedback, judge, kernel_shim, rubric, sandbox, trainings
from tools.grade import notebook as nbgrade

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = "notebooks/softmax.ipynb"
POINTS = 10.0
SHARE = {name: share * POINTS for name, (share, _) in nbgrade.PARTS.items()}


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    return driver.build_edition(tmp_path_factory.mktemp("edition") / "student")


@pytest.fixture(scope="module")
def kept(tmp_path_factory) -> trainings.Trainings:
    return trainings.Trainings(tmp_path_factory.mktemp("trainings"))


def _reference() -> dict:
    return json.loads((REPO / NOTEBOOK).read_text())


def _cell(nb: dict, cell_id: str) -> dict:
    return next(cell for cell in nb["cells"] if cell.get("id") == cell_id)


def _replace(nb: dict, cell_id: str, old: str, new: str) -> None:
    cell = _cell(nb, cell_id)
    source = "".join(cell["source"])
    assert old in source, (cell_id, old)
    cell["source"] = source.replace(old, new)


def _grade(edition: Path, nb: dict | bytes, kept, max_wall: float | None = None):
    """Grade a notebook the way the driver does: its own folder, the reference's code."""
    scratch = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
    scratch.chmod(0o711)
    try:
        submitted = scratch / "submitted"
        (submitted / "notebooks").mkdir(parents=True)
        data = nb if isinstance(nb, bytes) else json.dumps(nb).encode()
        (submitted / NOTEBOOK).write_bytes(data)
        work = driver.scratch_copy(edition, driver._notebook_files(submitted), scratch / "nb")
        sandbox.prepare_workdir(work)
        options = driver.Options(
            submissions=scratch, out=scratch / "out", progress=False, max_wall=max_wall
        )
        run = driver._bound_run(work, options, {}, "notebook")
        return nbgrade.grade_notebook(work, run, kept)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _line(result, label_key: str) -> str:
    label = nbgrade.PARTS[label_key][1]
    return next(line for line in result.output.splitlines() if f" {label} (" in line)


def test_the_reference_earns_every_part_and_the_stub_none(edition, kept):
    right = _grade(edition, _reference(), kept)
    assert (right.status, right.score, right.max_score) == ("ok", POINTS, POINTS), right.output
    assert all(_line(right, name).startswith("PASS") for name in nbgrade.PARTS)

    stub = _grade(edition, (edition / NOTEBOOK).read_bytes(), kept)
    assert stub.score == 0.0, stub.output
    # the failing TODO cells are named by the heading above them and their cell id
    assert 'under "8. Hyperparameter search", cell id search: raised NotImplementedError' in (
        stub.output
    )
    assert "cell id q2-experiment: raised NotImplementedError" in stub.output
    # and so are they in the student's feedback.md, with each part's reason
    item = [i for i in rubric.load_rubric() if i.name == "notebook"]
    isolation = types.SimpleNamespace(network=True, detail="test")
    result = feedback.results_json(
        item, {"notebook": stub}, {"notebook": 0.0}, "ok", [], isolation
    )
    page = feedback.feedback_markdown("s001", result)
    assert "cell id search: raised NotImplementedError" in page
    assert "results was not set to a dict" in page


def test_each_mistake_costs_its_own_part(edition, kept):
    nb = _reference()
    # the SVM sum over every class, the true one included: one more than right
    _replace(
        nb,
        "q2-experiment",
        "np.maximum(0.0, s[1:] - s[0] + 1.0)",
        "np.maximum(0.0, s - s[0] + 1.0)",
    )
    for answer in ("a1", "a4"):
        _cell(nb, answer)["source"] = judge.ANSWER_BLANK
    # a changed cell the grader would otherwise leave out runs, and the search needs it
    _cell(nb, "first-run")["source"] = "my_iters = 1500\n" + "".join(
        _cell(nb, "first-run")["source"]
    )
    _replace(nb, "search", "num_iters=1500, seed=0)", "num_iters=my_iters, seed=0)")
    result = _grade(edition, nb, kept)
    expected = POINTS - SHARE["q2"] - SHARE["answers"] * 2 / 5
    assert result.score == pytest.approx(expected), result.output
    assert _line(result, "q2").startswith("- ") and "SVM loss 1.0, expected 0.0" in result.output
    assert _line(result, "answers").startswith("- ") and "3 of 5" in _line(result, "answers")
    assert all(_line(result, p).startswith("PASS") for p in notebook_search_parts())


def notebook_search_parts():
    return ("runs", "best", "inside")


def test_keeping_the_last_model_fails_best_only(edition, kept):
    nb = _reference()
    _cell(nb, "search")["source"] += "\nbest_softmax = candidate  # the last model, not the best"
    result = _grade(edition, nb, kept)
    assert result.score == pytest.approx(POINTS - SHARE["best"]), result.output
    assert "best_softmax has validation accuracy" in _line(result, "best")


def test_a_search_that_cannot_be_repeated_fails_runs(edition, kept):
    nb = _reference()
    _replace(nb, "search", "num_iters=1500, seed=0)", "num_iters=1500)")
    result = _grade(edition, nb, kept)
    # without a seed every run differs, so where the best lands is left to chance
    assert result.score <= POINTS - SHARE["runs"] + 1e-9, result.output
    assert "pass seed=0" in _line(result, "runs")


def test_a_best_on_the_grids_edge_fails_inside_only(edition, kept):
    nb = _reference()
    _replace(
        nb,
        "search",
        "regularization_strengths = [1e1, 3e1, 1e2]",
        "regularization_strengths = [3e1, 1e2]",
    )
    result = _grade(edition, nb, kept)
    assert result.score == pytest.approx(POINTS - SHARE["inside"]), result.output
    assert "fewer than 3" in _line(result, "inside")


def test_a_forged_export_is_checked_against_the_graders_own_runs(edition, kept):
    nb = _reference()
    at = next(i for i, c in enumerate(nb["cells"]) if c.get("id") == "confusion") + 1
    settings = {
        "learning_rate": 1e-5,
        "reg": 30.0,
        "num_iters": 1500,
        "batch_size": 200,
        "seed": 0,
        "num_classes": None,
    }
    forged = {
        "margins": [10.0, 40.0],
        "svm_losses": [0.0, 0.0],
        "log_losses": [9.0e-5, 0.0],
        "log1p_losses": [9.0e-5, 8.5e-18],
        "results": [[1e-5, 30.0, 0.99, 0.99]],
        "results_size": 1,
        "best_val": 0.99,
        "calls": [{"settings": settings, "on_train": True, "reused": True}],
    }
    source = (
        "import json\nimport _grade_shim\n\n"
        f"print(_grade_shim.MARK + json.dumps({forged!r}))  # a forged line in a cell of its own\n"
        "_grade_shim.export = lambda names: print(_grade_shim.MARK + json.dumps("
        f"{forged!r}))\n"
    )
    nb["cells"].insert(
        at,
        {
            "cell_type": "code",
            "metadata": {},
            "source": source,
            "outputs": [],
            "execution_count": None,
            "id": "forger",
        },
    )
    result = _grade(edition, nb, kept)
    # only the written answers are the student's own and real
    assert result.score == pytest.approx(SHARE["answers"]), result.output
    assert "a reference run trains that configuration to" in _line(result, "runs")
    assert _line(result, "q2").startswith("- ")


def test_a_hang_in_a_todo_cell_is_a_timeout_and_keeps_the_answers(edition, kept):
    nb = _reference()
    _cell(nb, "q2-experiment")["source"] = "# TODO: the experiment\nwhile True:\n    pass\n"
    result = _grade(edition, nb, kept, max_wall=25)
    assert result.status == "timeout", result.output
    assert "ran out of time" in result.output
    assert result.score == pytest.approx(SHARE["answers"]), result.output


# --- the pieces, in this process --------------------------------------------------------------


def test_a_reused_run_is_the_fresh_run_bit_for_bit(tmp_path, monkeypatch):
    rng = np.random.default_rng(3)
    X = rng.standard_normal((300, 21)).astype(np.float32)
    y = rng.integers(0, 10, 300)
    settings = {
        "learning_rate": 1e-3,
        "reg": 0.5,
        "num_iters": 40,
        "batch_size": 50,
        "seed": 7,
        "num_classes": None,
    }
    fresh = Softmax()
    history = fresh.train(X, y, **settings)
    code = trainings.code_hash()
    key = kernel_shim.training_key(code, kernel_shim.data_hash(X, y), settings)
    np.savez(tmp_path / f"{key}.npz", W=fresh.W, history=np.asarray(history))
    monkeypatch.setattr(lc.LinearClassifier, "train", lc.LinearClassifier.train)
    index = {"code": code, "data": kernel_shim.data_hash(X, y), "folder": str(tmp_path)}
    monkeypatch.setitem(kernel_shim._state, "index", index)
    monkeypatch.setattr(kernel_shim, "CALLS", [])
    kernel_shim.install()

    def no_training(*args, **kwargs):
        raise AssertionError("a kept run was trained again")

    with monkeypatch.context() as m:
        m.setattr(Softmax, "loss", no_training)
        reused = Softmax()
        again = reused.train(X, y, **settings)
    assert np.array_equal(reused.W, fresh.W) and reused.W.dtype == np.float32
    assert again == history
    other = Softmax()
    other.train(X, y, **{**settings, "seed": 8})  # not kept: trained
    Softmax().train(X[:-1], y[:-1], **settings)  # other data: trained
    Softmax().train(X, y, **{**settings, "seed": None})  # cannot be repeated: trained
    calls = kernel_shim.CALLS
    assert [c["reused"] for c in calls] == [True, False, False, False]
    assert [c["on_train"] for c in calls] == [True, True, False, True]
    assert calls[3]["settings"] is None
    assert not np.array_equal(other.W, fresh.W)


def test_the_export_is_read_into_plain_checked_numbers():
    line = judge.EXPORT_MARK + json.dumps(
        {
            "margins": [10.0, True],
            "svm_losses": [0.0, 1.0],
            "results": [[1e-5, 30.0, 0.5, 0.4], [1, 2, 3], "x", [1.0, 2.0, float("nan"), 0.1]],
            "best_val": True,
            "best_W": [[1.0, 2.0], [3.0]],
            "calls": [
                {
                    "settings": {
                        "learning_rate": 1e-5,
                        "reg": 1.0,
                        "num_iters": 5,
                        "batch_size": True,
                        "seed": 0,
                    }
                },
                "junk",
            ],
        }
    )
    out = judge.read_export(line)
    assert out["margins"] is None and out["svm_losses"] == [0.0, 1.0]
    assert out["results"] == [[1e-5, 30.0, 0.5, 0.4], None, None, None]
    assert out["best_val"] is None and "best_W" not in out
    assert out["calls"] == [{"settings": None, "on_train": False, "reused": False}]
    assert judge.EXPORT_MARK == kernel_shim.MARK
    with pytest.raises(ValueError):
        judge.read_export("not the export")


def test_a_search_of_too_many_new_runs_stops_at_the_cap(kept, monkeypatch):
    made = []

    def run(settings):
        made.append(settings)
        return {"W": np.zeros((785, 10)), "train_acc": 0.5, "val_acc": 0.5}

    monkeypatch.setattr(kept, "run", run)
    monkeypatch.setattr(kept, "has", lambda settings: False)
    lrs = [1e-6 * (i + 1) for i in range(20)]
    calls, rows = [], []
    for lr in lrs:
        for reg in (1.0, 10.0, 100.0):
            settings = {
                "learning_rate": lr,
                "reg": reg,
                "num_iters": 20_000,
                "batch_size": 200,
                "seed": 0,
                "num_classes": None,
            }
            calls.append({"settings": settings, "on_train": True, "reused": False})
            rows.append([lr, reg, 0.5, 0.5])
    parts = nbgrade._search_parts({"results": rows, "calls": calls}, kept)
    assert not parts["runs"][0] and "more than the grader repeats" in parts["runs"][1]
    assert len(made) * 20_000 * 200 <= nbgrade.MAX_NEW_WORK


def test_the_notebook_runs_on_the_reference_code_and_the_plan_names_real_cells(tmp_path):
    submitted = tmp_path / "submitted"
    (submitted / "cs231n" / "classifiers").mkdir(parents=True)
    (submitted / "notebooks").mkdir()
    (submitted / "cs231n" / "classifiers" / "softmax.py").write_text("raise SystemExit\n")
    (submitted / NOTEBOOK).write_text("{}")
    files = driver._notebook_files(submitted)
    for rel in driver.STUDENT_FILES:
        assert files[rel] == (REPO / rel).read_bytes()
    assert files[NOTEBOOK] == b"{}"
    ids = {cell.get("id") for cell in _reference()["cells"]}
    assert set(nbgrade.KEEP) <= ids
    plan = json.loads(nbgrade._plan())
    solution = [
        c["id"] for c in _reference()["cells"] if "solution" in c["metadata"].get("tags", [])
    ]
    assert solution and all(judge._is_code_answer(_cell(_reference(), i)) for i in solution)
    assert set(plan["keep"]) == set(nbgrade.KEEP)
    options = driver.Options(submissions=tmp_path, out=tmp_path / "out")
    assert options.notebook_cpu == nbgrade.NOTEBOOK_CPU
