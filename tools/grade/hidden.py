"""Hidden tests for the code: inputs made here, outputs from the sandbox, verdicts here.

Instructor-only (tools/ never ships). The flow for one submission:

1. :func:`calls` makes the inputs, seeded and different from the public self-checks in
   ``cs231n/checks.py``: other sizes and seeds, float32 as well as float64, other reg
   values, rows whose scores are 1000s apart, a true class 1000 below the best.
2. :func:`grade_code` writes them to ``grade-request.npz`` in the submission's scratch
   folder and runs ``child.py`` there in the sandbox (the ``run`` it is given). The child
   calls the student's functions and writes their outputs, nothing else.
3. This process reads those files back without trusting them (no symlinks or special
   files, a size cap, ``allow_pickle=False``, expected names, shapes and dtypes, finite
   values) and judges them against references computed here: a long-double oracle for the
   loss and gradient, answers known by construction for ``predict`` and the update step,
   and the instructor's own ``Softmax.train`` (imported from this checkout) for the
   minibatches and the grid search.

Points come from ``rubric.json``: an item earns ``points * passed / cases``.

Isolation of failures: all calls first run in one child, which keeps CPU low (about 0.5
s for a submission); ``vectorized_no_loop``'s big call runs in a child of its own,
measured against a child that only imports (0.4 s each). When the first child dies
(crash, timeout, memory, ``os._exit``), the calls that finished keep their outputs; the
call that was running (named in ``grade-started``) fails with the child's status, and
the rest run again in a new child, the failed function's other calls last. A hang thus
costs the calls it hangs in; a death while importing the submission's cs231n costs every
call. All children of one submission share a wall-clock budget (``BUDGET_WALL``), so a
submission that hangs everywhere cannot hold up a batch.
"""

from __future__ import annotations

import functools
import io
import json
import math
import os
import shutil
import stat
import sys
import time
import types
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import child

RUBRIC = Path(__file__).resolve().with_name("rubric.json")
CHILD_SOURCE = Path(child.__file__).resolve()
CHILD_NAME = "_grade_child.py"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")
NOTEBOOK_ITEM = "notebook"

CALL_WALL = 20.0  # seconds for one child: all calls take well under 1 s of CPU when right
BUDGET_WALL = 120.0  # seconds for all children of one submission; then the rest fail
MAX_OUTPUT_BYTES = 4 << 20  # one call's output file; the real ones are a few kB
MAX_ERROR_CHARS = 60
NOTEBOOK = "notebooks/softmax.ipynb"
MAX_NOTEBOOK_BYTES = 64 << 20  # the sandbox's file-size limit; figures make notebooks big


# --- the rubric -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Item:
    """One rubric item: its name, points and visibility (Gradescope's words).

    ``public_check`` says whether students can test the same thing themselves (a
    self-check, or running the notebook); ``check`` names the self-check in
    cs231n/checks.py, if any; ``description`` says what the hidden cases look at,
    without their inputs.
    """

    name: str
    points: float
    visibility: str
    public_check: bool
    check: str | None = None
    description: str = ""


def load_rubric(path: Path = RUBRIC) -> list[Item]:
    """Every rubric item, in report order; ValueError naming the problem in a bad file."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        entries = raw["items"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ValueError(f"{path}: not a rubric (a JSON object with 'items'): {error}") from None
    items, seen = [], set()
    for number, entry in enumerate(entries, start=1):
        where = f"{path}, item {number}"
        try:
            name, points = str(entry["name"]), float(entry["points"])
            visibility, public = str(entry["visibility"]), entry.get("public_check", False)
            check = entry.get("check")
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"{where}: needs name, points and visibility ({error})") from None
        if not name.isidentifier() or name in seen:
            raise ValueError(f"{where}: name {name!r} is not a fresh identifier")
        if not math.isfinite(points) or points < 0:
            raise ValueError(f"{where}: points must be a number >= 0, got {points}")
        if visibility not in VISIBILITIES:
            raise ValueError(f"{where}: visibility must be one of {VISIBILITIES}")
        if not isinstance(public, bool) or not (check is None or isinstance(check, str)):
            raise ValueError(f"{where}: public_check must be true or false, check a name or null")
        seen.add(name)
        items.append(Item(name, points, visibility, public, check, entry.get("description", "")))
    return items


@dataclass
class TestResult:
    """One rubric item's outcome for one submission.

    ``output`` says which kinds of case failed and why, never the inputs. ``status`` is
    ``ok`` when the student's code ran (even if it lost points), else what stopped it:
    ``timeout``, ``memory`` or ``crashed``. ``hint`` points to the public self-check.
    """

    __test__ = False  # not a pytest class

    name: str
    score: float
    max_score: float
    output: str
    visibility: str
    status: str = "ok"
    hint: str = ""


# --- the calls: inputs, seeded, unlike the public checks' -----------------------------------


@dataclass(frozen=True)
class Call:
    """One call of the student's code in the child: a kind, a function, its inputs."""

    id: str
    kind: str  # a key of child.KINDS
    fn: str  # the loss function's name for kind "loss", else ""
    inputs: dict[str, np.ndarray] = field(hash=False, compare=False)
    known: dict[str, np.ndarray] = field(default_factory=dict, hash=False, compare=False)


def _loss_problem(seed, N, D, C, reg, scale=0.5, x_scale=1.0, classes=None, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((D, C))
    X = x_scale * rng.standard_normal((N, D))
    labels = np.arange(C) if classes is None else np.asarray(classes)
    y = rng.choice(labels, N)
    return {"W": W.astype(dtype), "X": X.astype(dtype), "y": y, "reg": np.array(float(reg))}


def _rows_apart(seed: int, dtype: type = np.float64) -> dict[str, np.ndarray]:
    """Each row's scores shifted together by its own offset, the offsets 1000s apart.

    The last column of X holds the offset and the last row of W is all ones, so row i's
    scores are its ordinary ones plus offset i: the softmax of each row is unchanged,
    but one maximum over all rows leaves exp() of the others at 0.
    """
    rng = np.random.default_rng(seed)
    N, D, C = 6, 5, 4
    W = np.vstack([0.7 * rng.standard_normal((D, C)), np.ones((1, C))])
    offsets = np.array([0.0, 1000.0, -1000.0, 2500.0, -3000.0, 500.0])
    X = np.hstack([rng.standard_normal((N, D)), offsets[:, None]])
    y = rng.integers(0, C, N)
    return {"W": W.astype(dtype), "X": X.astype(dtype), "y": y, "reg": np.array(0.0)}


def _true_class_far_below(seed: int) -> dict[str, np.ndarray]:
    """Scores 1000s apart within a row, the true class the lowest: exp(s_y - max) is 0."""
    rng = np.random.default_rng(seed)
    N, D, C = 5, 4, 3
    W = 800.0 * rng.standard_normal((D, C))
    X = rng.standard_normal((N, D))
    y = np.argmin(X @ W, axis=1)
    return {"W": W, "X": X, "y": y, "reg": np.array(0.0)}


def _predict_problem(seed, N, D, C, dtype, scale=1.0) -> tuple[dict, np.ndarray]:
    """X and W whose scores X @ W have a known best class per row, ``scale`` ahead of the rest.

    Returns the inputs and the labels (the best class of each row).
    """
    rng = np.random.default_rng(seed)
    W = rng.standard_normal((D, C))
    W[:C] += 3 * np.eye(C)  # full column rank
    labels = rng.integers(0, C, N)
    scores = rng.uniform(0, 1, (N, C))
    scores[np.arange(N), labels] = 2.0
    X = scale * scores @ np.linalg.pinv(W)  # X @ W == scale * scores up to rounding
    return {"W": W.astype(dtype), "X": X.astype(dtype)}, labels


def _sample_problem(seed, N, D, C, B, iters, train_seed, np_seed, dtype):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, D)).astype(dtype)
    y = rng.permutation(np.arange(N) % C)
    return {
        "X": X,
        "y": y,
        "batch_size": np.array(B),
        "num_iters": np.array(iters),
        "seed": np.array(train_seed),
        "np_seed": np.array(np_seed),
    }


def _update_problem(seed, N, D, C, B, steps, lr, reg, dtype):
    """Dyadic W0, integer gradients and a power-of-two rate: every correct step is exact."""
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((N, D)).astype(dtype),
        "y": rng.permutation(np.arange(N) % C),
        "W0": (rng.integers(-16, 17, (D, C)) / 8).astype(dtype),
        "grads": rng.integers(-3, 4, (steps, D, C)).astype(dtype),
        "lr": np.array(lr),
        "reg": np.array(reg),
        "batch_size": np.array(B),
        "seed": np.array(seed),
    }


def _grid_problem(seed, N, D, C, configs, iters, B, dtype, scale=1.0):
    rng = np.random.default_rng(seed)
    return {
        "X": (scale * rng.standard_normal((N, D))).astype(dtype),
        "y": rng.permutation(np.arange(N) % C),
        "configs": np.array(configs, dtype=np.float64),
        "num_iters": np.array(iters),
        "batch_size": np.array(B),
        "seed": np.array(seed),
    }


LOSS_FNS = {"naive": "softmax_loss_naive", "vectorized": "softmax_loss_vectorized"}
BIG = "vectorized_BIG"


@functools.cache
def calls() -> dict[str, Call]:
    """Every call the hidden tests make, by id (seeded: the same on every run)."""
    shared = {
        "L0": _loss_problem(8101, N=17, D=9, C=6, reg=0.0, scale=0.3),
        "L1": _loss_problem(8102, N=23, D=4, C=11, reg=0.37),
        "L2": _loss_problem(8103, N=1, D=3, C=2, reg=2.5, scale=1.0),
        "L3": _loss_problem(8104, N=40, D=12, C=3, reg=1e-3, x_scale=3.0, classes=[0, 2]),
        "S1": _rows_apart(8105),
        "S2": _true_class_far_below(8106),
    }
    shared["L1z"] = {**shared["L1"], "reg": np.array(0.0)}
    made: dict[str, Call] = {}
    for short, fn in LOSS_FNS.items():
        for key, inputs in shared.items():
            made[f"{short}_{key}"] = Call(f"{short}_{key}", "loss", fn, inputs)
    float32 = _loss_problem(8107, N=31, D=7, C=5, reg=0.2, dtype=np.float32)
    for short, fn in LOSS_FNS.items():
        made[f"{short}_F1"] = Call(f"{short}_F1", "loss", fn, float32)
    # Many examples, few features: a Python loop over the rows costs seconds, numpy's
    # whole-matrix work a few hundredths (vectorized_no_loop measures the child's CPU).
    made[BIG] = Call(BIG, "loss", LOSS_FNS["vectorized"], _loss_problem(8109, 100_000, 3, 3, 0.15))
    made["vectorized_F2"] = Call(
        "vectorized_F2", "loss", LOSS_FNS["vectorized"], _rows_apart(8108, np.float32)
    )
    predict = {
        "P0": _predict_problem(8111, N=25, D=8, C=7, dtype=np.float64),
        "P1": _predict_problem(8112, N=13, D=9, C=2, dtype=np.float32),
        "P2": _predict_problem(8113, N=1, D=12, C=9, dtype=np.float64),
        "P3": _predict_problem(8114, N=9, D=5, C=4, dtype=np.float64, scale=1000.0),
    }
    for key, (inputs, labels) in predict.items():
        made[f"predict_{key}"] = Call(f"predict_{key}", "predict", "", inputs, {"labels": labels})
    made["sample_Q0"] = Call(
        "sample_Q0", "sample", "", _sample_problem(8121, 14, 3, 4, 6, 5, 8, 101, np.float64)
    )
    made["sample_Q1"] = Call(  # batch_size above N: only sampling with replacement works
        "sample_Q1", "sample", "", _sample_problem(8122, 5, 4, 3, 9, 4, 1234, 77, np.float32)
    )
    made["update_U0"] = Call(
        "update_U0", "update", "", _update_problem(8131, 6, 3, 4, 4, 5, 0.25, 0.5, np.float64)
    )
    made["update_U1"] = Call(
        "update_U1", "update", "", _update_problem(8132, 4, 5, 2, 3, 3, 0.125, 0.0, np.float32)
    )
    made["grid_G0"] = Call(
        "grid_G0",
        "grid",
        "",
        _grid_problem(8141, 16, 4, 3, [(0.05, 0.0), (0.2, 0.1), (0.5, 0.3)], 6, 5, np.float64),
    )
    made["grid_G1"] = Call(
        "grid_G1",
        "grid",
        "",
        _grid_problem(8142, 10, 3, 2, [(0.1, 0.0), (0.3, 0.2)], 5, 7, np.float32),
    )
    made["grid_G2"] = Call(  # initial scores in the thousands: one step, exp() must not overflow
        "grid_G2",
        "grid",
        "",
        _grid_problem(8143, 12, 4, 3, [(0.05, 0.0), (0.2, 0.1)], 1, 6, np.float64, scale=1e6),
    )
    return made


# --- references, computed in this process ----------------------------------------------------


@functools.cache
def _oracle(call_id: str) -> tuple[float, np.ndarray]:
    return oracle_loss(calls()[call_id].inputs)


def oracle_loss(inputs: dict[str, np.ndarray]) -> tuple[float, np.ndarray]:
    """Softmax loss and gradient in long double, row by row stable: the judge's answer.

    Independent of the reference solution: ``L_i = logsumexp(s_i) - s_{i, y_i}`` with each
    row shifted by its own maximum, ``dW = X.T @ (P - Y) / N + 2 reg W``.
    """
    W = inputs["W"].astype(np.longdouble)
    X = inputs["X"].astype(np.longdouble)
    y, reg = inputs["y"], np.longdouble(float(inputs["reg"]))
    N = X.shape[0]
    scores = X @ W
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_sum = np.log(np.exp(shifted).sum(axis=1))
    loss = np.mean(log_sum - shifted[np.arange(N), y]) + reg * np.sum(W * W)
    P = np.exp(shifted - log_sum[:, None])
    P[np.arange(N), y] -= 1
    dW = X.T @ P / N + 2 * reg * W
    return float(loss), dW.astype(np.float64)


def _reference_modules() -> types.SimpleNamespace:
    """The instructor's cs231n, the one in this checkout (never the submission's)."""
    from cs231n import tuning
    from cs231n.classifiers import linear_classifier, softmax

    return types.SimpleNamespace(softmax=softmax, linear=linear_classifier, tuning=tuning)


@functools.cache
def _reference(call_id: str) -> dict[str, np.ndarray]:
    """The reference outputs of a sampling or grid call, from the instructor's train."""
    call = calls()[call_id]
    mods = _reference_modules()
    if call.kind == "grid":
        a = call.inputs
        weights = []
        for lr, reg in a["configs"]:
            model = mods.linear.Softmax()
            model.train(
                a["X"], a["y"], float(lr), float(reg), int(a["num_iters"]),
                int(a["batch_size"]), seed=int(a["seed"]),
            )  # fmt: skip
            weights.append(model.W)
        return {"W_all": np.hstack(weights)}
    state = np.random.get_state()  # noqa: NPY002 - perform seeds the global state
    try:
        return child.perform(call.kind, call.fn, call.inputs, mods)
    finally:
        np.random.set_state(state)  # noqa: NPY002


# --- reading the child's outputs without trusting them --------------------------------------


class _Bad(Exception):
    """An output that fails validation or judgement; the message is shown, without inputs."""


class _Folder:
    """The scratch folder, used through a directory descriptor: no symlink is followed."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)

    def close(self) -> None:
        os.close(self.fd)

    def remove(self, name: str) -> None:
        try:
            os.unlink(name, dir_fd=self.fd)
        except FileNotFoundError:
            pass
        except IsADirectoryError:
            shutil.rmtree(self.path / name, ignore_errors=True)

    def write(self, name: str, data: bytes) -> None:
        """Create ``name`` afresh (whatever stood there is removed first), mode 0644."""
        self.remove(name)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
        fd = os.open(name, flags, 0o644, dir_fd=self.fd)
        with os.fdopen(fd, "wb") as f:
            f.write(data)

    def read(self, name: str, limit: int) -> bytes | None:
        """The bytes of regular file ``name`` (at most ``limit``), or None if absent or odd."""
        return self.read_at(self.fd, name, limit)

    @staticmethod
    def read_at(dir_fd: int, name: str, limit: int) -> bytes | None:
        try:
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
        except OSError:
            return None
        with os.fdopen(fd, "rb") as f:
            info = os.fstat(f.fileno())
            if not stat.S_ISREG(info.st_mode) or info.st_size > limit:
                return None
            return f.read(limit + 1)[:limit]


def _parse_npz(data: bytes, allowed: set[str]) -> dict[str, np.ndarray]:
    """Arrays from an .npz the child wrote: known names only, no pickles, sizes capped."""
    arrays = {}
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            for info in archive.infolist():
                key = info.filename.removesuffix(".npy")
                if key not in allowed or key in arrays or info.file_size > MAX_OUTPUT_BYTES:
                    raise _Bad("the output file holds something unexpected")
                with archive.open(info) as member:
                    array = np.lib.format.read_array(member, allow_pickle=False)
                if array.dtype.kind not in "biufU" or array.dtype.hasobject:
                    raise _Bad(f"an output has dtype {array.dtype}")
                arrays[key] = array
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise _Bad(f"the output file cannot be read ({type(error).__name__})") from None
    return arrays


OUTPUT_NAMES = {
    "loss": {"loss", "dW", "W_after"},
    "predict": {"y_pred"},
    "sample": {"np_draws"} | {f"{p}_batches{t}" for p in "Xy" for t in ("", "_again", "_other")},
    "update": {"W"},
    "grid": {"W_all", "bar_n"},
}


@dataclass
class Outcome:
    """What one call gave: its outputs, or why there are none, and the process status."""

    outputs: dict[str, np.ndarray] | None
    problem: str = ""
    status: str = "ok"
    cpu: float | None = None  # CPU seconds the call took, for the calls that are timed


def _read_outcome(folder: _Folder, call: Call) -> Outcome | None:
    data = folder.read(f"{child.OUT_PREFIX}{call.id}.npz", MAX_OUTPUT_BYTES)
    if data is None:
        return None
    try:
        arrays = _parse_npz(data, OUTPUT_NAMES[call.kind] | {"error"})
    except _Bad as bad:
        return Outcome(None, str(bad))
    if "error" in arrays:
        name = str(arrays["error"])[:MAX_ERROR_CHARS]
        name = name if name.isidentifier() else "an exception"
        # A MemoryError is the address-space cap at work: the item's status says so.
        status = "memory" if name == "MemoryError" else "ok"
        return Outcome(None, f"your code raised {name}", status)
    return Outcome(arrays)


def _request(batch: list[Call]) -> bytes:
    arrays = {
        "plan": np.array(json.dumps([{"id": c.id, "kind": c.kind, "fn": c.fn} for c in batch]))
    }
    for call in batch:
        for name, value in call.inputs.items():
            arrays[f"{call.id}.{name}"] = value
    return child._npz_bytes(arrays)


def run_calls(
    workdir: Path, run: Callable, batch: Iterable[Call]
) -> tuple[dict[str, Outcome], float, int]:
    """Run the calls in the sandbox (see the module docstring).

    Returns an Outcome for each call, the CPU seconds the children took (as the sandbox
    measured them) and how many children ran. An empty batch runs one child that only
    imports the submission's cs231n.
    """
    queue = list(batch)
    outcomes: dict[str, Outcome] = {}
    folder = _Folder(Path(workdir))
    spent, cpu, runs = 0.0, 0.0, 0
    suspects: set[tuple[str, str]] = set()  # (kind, fn) of calls whose process died
    try:
        while queue or not runs:
            if spent >= BUDGET_WALL:
                for call in queue:
                    outcomes[call.id] = Outcome(
                        None, "not run: the time budget was used up", "timeout"
                    )
                break
            folder.write(CHILD_NAME, CHILD_SOURCE.read_bytes())
            folder.write(child.REQUEST, _request(queue))
            folder.remove(child.STARTED)
            for call in queue:
                folder.remove(f"{child.OUT_PREFIX}{call.id}.npz")
            started_at = time.monotonic()
            result = run(
                [sys.executable, "-I", str(Path(workdir) / CHILD_NAME), "calls"], CALL_WALL
            )
            spent += time.monotonic() - started_at
            cpu += float(result.cpu or 0.0)
            runs += 1
            for call in queue:
                outcome = _read_outcome(folder, call)
                if outcome is not None:
                    outcomes[call.id] = outcome
            missing = [c for c in queue if c.id not in outcomes]
            if not missing:
                break
            status = result.status if result.status != "ok" else "crashed"
            started = folder.read(child.STARTED, 100)
            if started is None:  # it died before the first call: importing cs231n
                for call in missing:
                    why = f"the process ended while importing your cs231n ({status})"
                    outcomes[call.id] = Outcome(None, why, status)
                break
            started_id = started.decode("ascii", "replace")
            blamed = next((c for c in missing if c.id == started_id), missing[0])
            why = f"the process ended during this call ({status})"
            outcomes[blamed.id] = Outcome(None, why, status)
            # The function that failed is likely to fail again: run the other functions'
            # calls first, so a function that hangs on every input cannot use up the
            # budget that the rest of the submission's calls need.
            suspects.add((blamed.kind, blamed.fn))
            queue = [c for c in missing if c is not blamed]
            queue.sort(key=lambda c: (c.kind, c.fn) in suspects)  # stable: order kept
    finally:
        folder.close()
    return outcomes, cpu, runs


# --- the submitted notebook, read before any student code runs ------------------------------

_SUBMITTED: dict[str, bytes | ValueError] = {}  # scratch folder -> notebook bytes, or why not


def read_notebook_bytes(workdir: Path) -> bytes:
    """``notebooks/softmax.ipynb`` in ``workdir``, read without following any symlink.

    Raises ValueError when it is missing, not a regular file, or too large.
    """
    top = os.open(workdir, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        folder = os.open("notebooks", os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=top)
    except OSError:
        raise ValueError(f"{NOTEBOOK} is missing") from None
    finally:
        os.close(top)
    try:
        data = _Folder.read_at(folder, "softmax.ipynb", MAX_NOTEBOOK_BYTES)
    finally:
        os.close(folder)
    if data is None:
        raise ValueError(
            f"{NOTEBOOK} is missing, or not a regular file under {MAX_NOTEBOOK_BYTES >> 20} MB"
        )
    return data


def snapshot_notebook(workdir: Path) -> None:
    """Keep the submitted notebook (or why it cannot be read) for :func:`submitted_notebook`.

    :func:`grade_code` calls this before it runs anything: the student's code could
    otherwise replace the notebook before the notebook is graded.
    """
    try:
        _SUBMITTED[str(Path(workdir).resolve())] = read_notebook_bytes(Path(workdir))
    except ValueError as error:
        _SUBMITTED[str(Path(workdir).resolve())] = error


def submitted_notebook(workdir: Path) -> bytes:
    """The notebook as submitted: the snapshot if one was taken (used once), else read now."""
    kept = _SUBMITTED.pop(str(Path(workdir).resolve()), None)
    if isinstance(kept, ValueError):
        raise kept
    return kept if kept is not None else read_notebook_bytes(Path(workdir))


# --- judging ---------------------------------------------------------------------------------


def _array(outputs: dict, key: str, shape: tuple, kinds: str = "f") -> np.ndarray:
    value = outputs.get(key)
    if value is None:
        raise _Bad(f"{key} is missing")
    if value.dtype.kind not in kinds:
        raise _Bad(f"{key} has dtype {value.dtype}")
    if value.shape != shape:
        raise _Bad(f"{key} has the wrong shape")
    if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
        raise _Bad(f"{key} holds inf or nan")
    return value


def _column_error(got: np.ndarray, want: np.ndarray) -> float:
    got, want = got.astype(np.float64), want.astype(np.float64)
    floor = 1e-12 * max(np.linalg.norm(want), 1e-300)
    scale = np.maximum(np.linalg.norm(got, axis=0) + np.linalg.norm(want, axis=0), floor)
    return float(np.max(np.linalg.norm(got - want, axis=0) / scale))


# (loss tolerance relative to max(1, |loss|), dW worst column's relative error)
TOLERANCE = {np.dtype(np.float64): (1e-9, 1e-8), np.dtype(np.float32): (1e-3, 1e-2)}


def _loss_and_dW(outcomes: dict[str, Outcome], call_id: str) -> tuple[float, np.ndarray]:
    outputs = _outputs(outcomes, call_id)
    W = calls()[call_id].inputs["W"]
    loss = float(_array(outputs, "loss", (), "fiu"))
    if not math.isfinite(loss):
        raise _Bad("loss is inf or nan")
    return loss, _array(outputs, "dW", W.shape)


def _outputs(outcomes: dict[str, Outcome], call_id: str) -> dict[str, np.ndarray]:
    outcome = outcomes.get(call_id)
    if outcome is None:
        raise _Bad("not run")
    if outcome.outputs is None:
        raise _Bad(outcome.problem)
    return outcome.outputs


def _judge_loss(outcomes, call_id: str) -> None:
    loss, _ = _loss_and_dW(outcomes, call_id)
    want, _ = _oracle(call_id)
    tol = TOLERANCE[calls()[call_id].inputs["W"].dtype][0]
    if abs(loss - want) > tol * max(1.0, abs(want)):
        raise _Bad("the loss is wrong")


def _judge_gradient(outcomes, call_id: str) -> None:
    _, dW = _loss_and_dW(outcomes, call_id)
    W = calls()[call_id].inputs["W"]
    _, want = _oracle(call_id)
    if _column_error(dW, want) > TOLERANCE[W.dtype][1]:
        raise _Bad("dW is wrong")
    W_after = _array(_outputs(outcomes, call_id), "W_after", W.shape)
    if not np.array_equal(W_after, W):
        raise _Bad("the call changed the caller's W (does dW alias W?)")


def _judge_both(outcomes, call_id: str) -> None:
    _judge_loss(outcomes, call_id)
    _judge_gradient(outcomes, call_id)


def _judge_float32(outcomes, call_id: str) -> None:
    _, dW = _loss_and_dW(outcomes, call_id)
    if dW.dtype != np.float32:
        raise _Bad(f"float32 inputs gave a {dW.dtype} dW")
    _judge_both(outcomes, call_id)


def _judge_reg(outcomes, short: str) -> None:
    with_reg, without = f"{short}_L1", f"{short}_L1z"
    loss, dW = _loss_and_dW(outcomes, with_reg)
    loss0, dW0 = _loss_and_dW(outcomes, without)
    inputs = calls()[with_reg].inputs
    W, reg = inputs["W"], float(inputs["reg"])
    want = reg * float(np.sum(W * W))
    if abs((loss - loss0) - want) > 1e-9 * max(1.0, abs(loss)):
        raise _Bad("reg > 0 does not add reg * sum(W**2) to the loss")
    if _column_error(dW - dW0, 2 * reg * W) > 1e-8:
        raise _Bad("reg > 0 does not add 2 * reg * W to dW")


def _judge_predict(outcomes, call_id: str) -> None:
    outputs = _outputs(outcomes, call_id)
    labels = calls()[call_id].known["labels"]
    y_pred = _array(outputs, "y_pred", labels.shape, "iu")
    if not np.array_equal(y_pred, labels):
        raise _Bad("some labels are not the highest-scoring class")


def _batch_rows(outcomes, call_id: str, tag: str = "") -> tuple[np.ndarray, np.ndarray]:
    outputs = _outputs(outcomes, call_id)
    a = calls()[call_id].inputs
    iters, B, D = int(a["num_iters"]), int(a["batch_size"]), a["X"].shape[1]
    X_batches = _array(outputs, f"X_batches{tag}", (iters, B, D))
    y_batches = _array(outputs, f"y_batches{tag}", (iters, B), "iu")
    return X_batches, y_batches


def _judge_whole_rows(outcomes, call_id: str) -> None:
    X_batches, y_batches = _batch_rows(outcomes, call_id)
    a = calls()[call_id].inputs
    X, y = a["X"], a["y"]
    if X_batches.dtype != X.dtype:
        raise _Bad(f"{X.dtype} data gave {X_batches.dtype} minibatches")
    row_of = {row.tobytes(): i for i, row in enumerate(X)}
    for X_batch, y_batch in zip(X_batches, y_batches, strict=True):
        for row, label in zip(X_batch, y_batch, strict=True):
            i = row_of.get(np.ascontiguousarray(row).tobytes())
            if i is None:
                raise _Bad("a minibatch row is not a row of X")
            if label != y[i]:
                raise _Bad("a minibatch label does not belong to its row")


def _judge_seeded(outcomes, call_id: str) -> None:
    X_batches, y_batches = _batch_rows(outcomes, call_id)
    again, _ = _batch_rows(outcomes, call_id, "_again")
    other, _ = _batch_rows(outcomes, call_id, "_other")
    if not np.array_equal(X_batches, again):
        raise _Bad("the same seed gave different minibatches")
    if np.array_equal(X_batches, other):
        raise _Bad("another seed gave the same minibatches: the seed is not used")
    if all(np.array_equal(X_batches[0], b) for b in X_batches[1:]):
        raise _Bad("every iteration used the same minibatch")


def _judge_global_random(outcomes, call_id: str) -> None:
    draws = _array(_outputs(outcomes, call_id), "np_draws", (3,))
    np_seed = int(calls()[call_id].inputs["np_seed"])
    if not np.array_equal(draws, np.random.RandomState(np_seed).random_sample(3)):
        raise _Bad("train changed the global np.random state: draw with rng")


def _judge_reference_batches(outcomes, call_id: str) -> None:
    X_batches, y_batches = _batch_rows(outcomes, call_id)
    want = _reference(call_id)
    if not (
        np.array_equal(X_batches, want["X_batches"])
        and np.array_equal(y_batches, want["y_batches"])
    ):
        raise _Bad(
            "the minibatches differ from the reference's with the same seed: draw "
            "rng.choice(num_train, batch_size, replace=True) each iteration"
        )


def _judge_update(outcomes, call_id: str) -> None:
    a = calls()[call_id].inputs
    W = _array(_outputs(outcomes, call_id), "W", a["W0"].shape)
    if W.dtype != a["W0"].dtype:
        raise _Bad(f"a {a['W0'].dtype} W became {W.dtype}")
    exact = a["W0"].astype(np.float64) - float(a["lr"]) * a["grads"].astype(np.float64).sum(0)
    if not np.array_equal(W, exact.astype(W.dtype)):
        raise _Bad("self.W is not W0 - learning_rate * (the sum of the gradients)")


def _judge_grid(outcomes, call_id: str) -> None:
    a = calls()[call_id].inputs
    want = _reference(call_id)["W_all"]
    W_all = _array(_outputs(outcomes, call_id), "W_all", want.shape)
    if W_all.dtype != a["X"].dtype:
        raise _Bad(f"{a['X'].dtype} data gave a {W_all.dtype} W_all")
    tol = 1e-9 if W_all.dtype == np.float64 else 1e-4
    K = len(a["configs"])
    bar_n = _array(_outputs(outcomes, call_id), "bar_n", (), "iuf")
    if bar_n != K * int(a["num_iters"]):
        raise _Bad("the progress bar did not advance by K per step")
    C = want.shape[1] // K
    for k in range(K):
        got, ref = W_all[:, k * C : (k + 1) * C], want[:, k * C : (k + 1) * C]
        if np.linalg.norm(got - ref) > tol * np.linalg.norm(ref):
            raise _Bad(
                "a configuration's weights differ from Softmax().train's with the same seed"
            )


Judge = Callable[[dict[str, Outcome]], None]
BASE = [("L0", "reg 0"), ("L1", "many classes"), ("L2", "one example"), ("L3", "absent classes")]
EXTREME = [("S1", "rows' scores 1000s apart"), ("S2", "true class 1000 below the best")]


def _cases() -> dict[str, list[tuple[str, list[str], Judge]]]:
    """For each code item: its cases as (label, the calls it reads, judge)."""

    def on(judge: Callable, *args: str) -> Judge:
        return lambda outcomes: judge(outcomes, *args)

    cases: dict[str, list] = {}
    for short in LOSS_FNS:
        cases[f"{short}_loss"] = [
            (label, [f"{short}_{k}"], on(_judge_loss, f"{short}_{k}")) for k, label in BASE
        ]
        cases[f"{short}_gradient"] = [
            (label, [f"{short}_{k}"], on(_judge_gradient, f"{short}_{k}")) for k, label in BASE
        ]
        cases[f"{short}_stability"] = [
            (label, [f"{short}_{k}"], on(_judge_both, f"{short}_{k}")) for k, label in EXTREME
        ]
    cases["vectorized_no_loop"] = [("100,000 examples", [BIG], on(_judge_no_loop, BIG))]
    cases["naive_gradient"].append(("float32", ["naive_F1"], on(_judge_float32, "naive_F1")))
    cases["vectorized_float32"] = [
        ("float32", ["vectorized_F1"], on(_judge_float32, "vectorized_F1")),
        ("float32, rows 1000s apart", ["vectorized_F2"], on(_judge_float32, "vectorized_F2")),
    ]
    cases["reg_term"] = [
        (f"{short} loss", [f"{short}_L1", f"{short}_L1z"], on(_judge_reg, short))
        for short in LOSS_FNS
    ]
    cases["train_sampling"] = [
        ("whole rows with their labels", ["sample_Q0"], on(_judge_whole_rows, "sample_Q0")),
        ("batch_size above N, float32", ["sample_Q1"], on(_judge_whole_rows, "sample_Q1")),
        ("seeded and reproducible", ["sample_Q0"], on(_judge_seeded, "sample_Q0")),
        (
            "global np.random untouched",
            ["sample_Q0", "sample_Q1"],
            lambda o: [_judge_global_random(o, c) for c in ("sample_Q0", "sample_Q1")],
        ),
        (
            "the reference's minibatches for the same seed",
            ["sample_Q0", "sample_Q1"],
            lambda o: [_judge_reference_batches(o, c) for c in ("sample_Q0", "sample_Q1")],
        ),
    ]
    cases["train_update"] = [
        ("float64", ["update_U0"], on(_judge_update, "update_U0")),
        ("float32", ["update_U1"], on(_judge_update, "update_U1")),
    ]
    cases["predict"] = [
        ("float64, 7 classes", ["predict_P0"], on(_judge_predict, "predict_P0")),
        ("float32, 2 classes", ["predict_P1"], on(_judge_predict, "predict_P1")),
        ("one row", ["predict_P2"], on(_judge_predict, "predict_P2")),
        ("scores in the thousands", ["predict_P3"], on(_judge_predict, "predict_P3")),
    ]
    cases["grid_search"] = [
        ("float64", ["grid_G0"], on(_judge_grid, "grid_G0")),
        ("float32", ["grid_G1"], on(_judge_grid, "grid_G1")),
        ("scores in the thousands", ["grid_G2"], on(_judge_grid, "grid_G2")),
    ]
    return cases


def code_items() -> list[Item]:
    """The rubric items :func:`grade_code` grades (all but the notebook)."""
    return [item for item in load_rubric() if item.name != NOTEBOOK_ITEM]


def grade_code(
    workdir: Path, run: Callable, items: Iterable[str] | None = None
) -> list[TestResult]:
    """Grade the code in ``workdir`` (the scratch folder) with the hidden tests.

    Parameters
    ----------
    workdir : the submission's scratch folder: the clean student edition with the
        student's files over it. The child script and its files are written here.
    run : ``run(argv, wall_seconds) -> RunResult``, running argv in the sandbox with cwd
        ``workdir`` (tools.grade.sandbox, bound by the driver).
    items : names of the items to grade (default: every code item of the rubric).

    Returns
    -------
    One TestResult per code item, in rubric order.
    """
    snapshot_notebook(workdir)
    cases = _cases()
    rubric = [i for i in code_items() if items is None or i.name in set(items)]
    unknown = [i.name for i in rubric if i.name not in cases]
    if unknown:
        raise ValueError(f"rubric items without hidden cases: {unknown}; add them to hidden.py")
    wanted = sorted({c for item in rubric for _, ids, _ in cases[item.name] for c in ids})
    outcomes, _, _ = run_calls(workdir, run, [calls()[c] for c in wanted if c != BIG])
    if BIG in wanted:
        _time_big(workdir, run, outcomes)
    return [_grade_item(item, cases[item.name], outcomes) for item in rubric]


# CPU seconds that the calls may take beyond importing: the small ones take about 0.05 s,
# a Python loop over vectorized_BIG's 100,000 rows 1 s and more.
LOOP_CPU = 0.4


def _time_big(workdir: Path, run: Callable, outcomes: dict) -> None:
    """Run vectorized_BIG in a child of its own and set the CPU it took beyond a child
    that only imports cs231n.

    Alone, so that the other calls' CPU (a slow naive loss, the training calls) is never
    counted against it. The sandbox measures the CPU, not the student's process, so no
    patch can fake it.
    """
    _, baseline, _ = run_calls(workdir, run, [])
    alone, cpu, _ = run_calls(workdir, run, [calls()[BIG]])
    outcomes[BIG] = alone[BIG]
    outcomes[BIG].cpu = max(0.0, cpu - baseline)


def _judge_no_loop(outcomes, call_id: str) -> None:
    _judge_both(outcomes, call_id)
    if outcomes[call_id].cpu is not None and outcomes[call_id].cpu > LOOP_CPU:
        raise _Bad("many examples take as long as a Python loop over them would")


STATUS_ORDER = ("ok", "crashed", "memory", "timeout")


def _grade_item(item: Item, item_cases: list, outcomes: dict[str, Outcome]) -> TestResult:
    failures = []
    for label, _, judge in item_cases:
        try:
            judge(outcomes)
        except _Bad as bad:
            failures.append(f"- {label}: {bad}")
    passed = len(item_cases) - len(failures)
    statuses = [outcomes[c].status for _, ids, _ in item_cases for c in ids if c in outcomes]
    status = max(statuses, key=STATUS_ORDER.index, default="ok")
    output = f"{passed} of {len(item_cases)} hidden cases passed."
    if failures:
        output += "\n" + "\n".join(failures)
    hint = f'Run check("{item.check}") in the notebook.' if item.check and failures else ""
    return TestResult(
        item.name,
        item.points * passed / len(item_cases),
        item.points,
        output,
        item.visibility,
        status,
        hint,
    )
