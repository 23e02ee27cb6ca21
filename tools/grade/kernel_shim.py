"""Runs inside the notebook's kernel when a submission is graded: reused trainings, the export.

The grader copies this file into the kernel's folder as ``_grade_shim.py``, with the
reference's ``cs231n/`` standing in for the student's (the notebook item judges the
notebook's own cells, the code items judge the code). Two cells are added around the
student's cells (``tools/grade/judge.py``, prepare mode):

- first, :func:`install`: ``Softmax.train`` looks a run up in the folder of runs the grader
  made before (``TRAININGS``, copies of its own files) and, when that exact run is there,
  sets the weights and returns the losses it recorded instead of training again. Every
  call is recorded (its settings, whether it trained on the notebook's training split).
- last, :func:`export`: prints one line, :data:`MARK` and JSON, with the values the
  notebook's checks look at and the recorded calls.

Nothing here is trusted: this is the student's interpreter. What it prints is data that
the judge reads in a sandbox and the grader checks against runs of its own
(``tools/grade/trainings.py``); a kernel that changes this module or its copies only
changes what its own export claims. Imports numpy and the standard library only, and the
reference's ``cs231n``.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import os

import numpy as np

MARK = "CS231N-GRADE-EXPORT "
TRAININGS = ".grade-trainings"  # beside this file: index.json and one <key>.npz per run
MAX_CALLS = 2000
MAX_CONFIGS = 400
MAX_WEIGHTS = 200_000

CALLS: list[dict] = []
_state: dict = {"index": None}


def data_hash(X: np.ndarray, y: np.ndarray) -> str:
    """SHA-256 of two arrays: dtype, shape and bytes of each."""
    digest = hashlib.sha256()
    for array in (X, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(memoryview(array).cast("B"))
    return digest.hexdigest()


def training_key(code: str, data: str, settings: dict) -> str:
    """The name of one run: the reference's code, the data and the settings of train."""
    keyed = {"code": code, "data": data, **{k: settings[k] for k in sorted(settings)}}
    return hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:40]


def settings_of(learning_rate, reg, num_iters, batch_size, seed, num_classes) -> dict | None:
    """The settings that fix a run from a new W, as JSON numbers; None when the run cannot
    be repeated (no integer seed) or a setting is not a plain number."""
    try:
        lr, strength = float(learning_rate), float(reg)
        iters, batch = int(num_iters), int(batch_size)
    except (TypeError, ValueError, OverflowError):
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        return None
    if not (math.isfinite(lr) and math.isfinite(strength)):
        return None
    classes = None if num_classes is None else int(num_classes)
    return {
        "learning_rate": lr,
        "reg": strength,
        "num_iters": iters,
        "batch_size": batch,
        "seed": int(seed),
        "num_classes": classes,
    }


def _index() -> dict:
    if _state["index"] is None:
        here = os.path.dirname(os.path.abspath(__file__))
        try:
            with open(os.path.join(here, TRAININGS, "index.json")) as f:
                index = json.load(f)
            index["folder"] = os.path.join(here, TRAININGS)
        except (OSError, ValueError):
            index = {}
        _state["index"] = index
    return _state["index"]


def install() -> None:
    """Wrap the reference's ``LinearClassifier.train`` to reuse the grader's runs."""
    from cs231n.classifiers import Softmax
    from cs231n.classifiers import linear_classifier as lc

    original = lc.LinearClassifier.train
    signature = inspect.signature(original)

    def train(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        a = bound.arguments
        X, y = a["X"], a["y"]
        settings = settings_of(
            a["learning_rate"],
            a["reg"],
            a["num_iters"],
            a["batch_size"],
            a["seed"],
            a["num_classes"],
        )
        index = _index()
        on_train = False
        if isinstance(X, np.ndarray) and isinstance(y, np.ndarray) and index.get("data"):
            on_train = data_hash(X, y) == index["data"]
        call = {"settings": settings, "on_train": on_train, "reused": False}
        if len(CALLS) < MAX_CALLS:
            CALLS.append(call)
        self._grade_call = len(CALLS) - 1
        reusable = settings is not None and on_train and type(self) is Softmax and self.W is None
        if reusable:
            key = training_key(index.get("code", ""), index["data"], settings)
            try:
                with np.load(os.path.join(index["folder"], key + ".npz")) as run:
                    W, history = np.array(run["W"]), run["history"].tolist()
            except (OSError, KeyError, ValueError):
                W = None
            if W is not None and W.dtype == X.dtype:
                self.W = W
                call["reused"] = True
                if a["verbose"]:
                    for it in range(0, len(history), 100):
                        print(f"iteration {it} / {settings['num_iters']}: loss {history[it]:f}")
                return history
        return original(*bound.args, **bound.kwargs)

    train.__doc__ = original.__doc__
    train.__wrapped__ = original
    lc.LinearClassifier.train = train


def _numbers(value: object, limit: int = 100) -> list[float] | None:
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        return None
    if array.ndim != 1 or array.size > limit:
        return None
    return [float(v) for v in array]


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        return float(value) if isinstance(value, int | float | np.number) else None
    except (TypeError, ValueError, OverflowError):
        return None


def export(names: dict) -> None:
    """Print the notebook's checked values and the recorded calls as one line of JSON."""
    out: dict = {"calls": CALLS[:MAX_CALLS]}
    for name in ("margins", "svm_losses", "log_losses", "log1p_losses"):
        if name in names:
            out[name] = _numbers(names[name])
    results = names.get("results")
    if isinstance(results, dict):
        rows = []
        for key, value in list(results.items())[:MAX_CONFIGS]:
            pair = _numbers(key, 2) if isinstance(key, tuple) else None
            accs = _numbers(value, 2) if isinstance(value, tuple | list) else None
            rows.append(pair + accs if pair and accs and len(pair) == len(accs) == 2 else None)
        out["results"] = rows
        out["results_size"] = len(results)
    if "best_val" in names:
        out["best_val"] = _number(names["best_val"])
    model = names.get("best_softmax")
    W = getattr(model, "W", None)
    if isinstance(W, np.ndarray) and W.ndim == 2 and W.size <= MAX_WEIGHTS:
        out["best_W"] = np.asarray(W, dtype=np.float64).tolist()
        call = getattr(model, "_grade_call", None)
        out["best_call"] = call if isinstance(call, int) else None
    print(MARK + json.dumps(out, allow_nan=True))
