"""The program the sandbox runs: call the student's code on the parent's inputs, save outputs.

The grader copies this file into the submission's scratch folder and runs it there,
inside the sandbox, as ``python -I _grade_child.py calls`` or
``python -I _grade_child.py notebook TIMEOUT``. It imports nothing of the grader's (the
sandbox cannot see tools/) and decides nothing: it hands back arrays, and the parent
validates them and judges them against its own reference. Anything the student's code
does here (patch numpy, replace cs231n.checks, write files, exit) can only change the
arrays this process writes, never a verdict.

``calls`` mode reads ``grade-request.npz`` from the current folder: a JSON plan (the
calls, in order) and each call's input arrays, named ``<call id>.<argument>``. Before a
call it writes the call's id to ``grade-started``; after it, ``grade-out.<call id>.npz``
with the outputs, or with an ``error`` string naming the exception the student's code
raised. Files are written to a temporary name and renamed, so the parent never sees half
a file. Output arrays are saved with ``allow_pickle=False``: no object arrays.

``notebook`` mode executes ``grade-notebook-in.ipynb`` (the parent's copy of the
student's ``notebooks/softmax.ipynb``, outputs cleared) top to bottom in a fresh kernel
started in ``notebooks/`` (nbclient, the bundled Fashion-MNIST) and writes
``grade-notebook-out.ipynb``, noting in its metadata why a run stopped early; the parent
reads the executed cells itself.

The parent imports this module too and runs :func:`perform` with the *reference*
modules to compute the answers that need the reference ``train`` (the same harness on
both sides: only the cs231n under test differs).
"""

from __future__ import annotations

import importlib
import io
import json
import os
import sys
import types
import warnings
import zipfile

import numpy as np

REQUEST = "grade-request.npz"
STARTED = "grade-started"
OUT_PREFIX = "grade-out."
NOTEBOOK_IN = "grade-notebook-in.ipynb"  # the parent's copy of the notebook, outputs cleared
NOTEBOOK_OUT = "grade-notebook-out.ipynb"


# --- the calls: one function per kind, the same in the child and in the parent ----------


def _softmax_call(mods: types.SimpleNamespace, fn: str, a: dict) -> dict:
    loss_fn = getattr(mods.softmax, fn)
    W = a["W"].copy()
    out = loss_fn(W, a["X"].copy(), a["y"].copy(), float(a["reg"]))
    if not isinstance(out, tuple) or len(out) != 2:
        raise TypeError("the loss function did not return a pair (loss, dW)")
    # W_after: the caller's W after the call, which a correct loss leaves alone
    return {"loss": np.asarray(out[0]), "dW": np.array(out[1]), "W_after": W}


def _predict_call(mods: types.SimpleNamespace, fn: str, a: dict) -> dict:
    model = mods.linear.Softmax()
    model.W = a["W"].copy()
    return {"y_pred": np.asarray(model.predict(a["X"].copy()))}


def _recorder(base: type) -> type:
    """A classifier whose loss records each minibatch and returns a zero gradient."""

    class Recorder(base):
        def __init__(self) -> None:
            super().__init__()
            self.X_batches: list[np.ndarray] = []
            self.y_batches: list[np.ndarray] = []

        def loss(self, X_batch, y_batch, reg):
            self.X_batches.append(np.array(X_batch, copy=True))
            self.y_batches.append(np.array(y_batch, copy=True))
            return 0.0, np.zeros_like(self.W)

    return Recorder


def _sample_call(mods: types.SimpleNamespace, fn: str, a: dict) -> dict:
    """Train a recorder twice with ``seed``, once with ``seed + 1`` and once with ``seed``
    from an existing W (``_preset``: nothing is drawn for W first); report the batches.

    The global np.random is seeded with ``np_seed`` before the first run, and three numbers
    drawn from it after: they equal a fresh RandomState(np_seed)'s when train left it alone.
    """
    Recorder = _recorder(mods.linear.LinearClassifier)
    out = {}
    seed = int(a["seed"])
    runs = (("", seed), ("_again", seed), ("_other", seed + 1), ("_preset", seed))
    for tag, run_seed in runs:
        model = Recorder()
        if tag == "_preset":
            model.W = np.zeros((a["X"].shape[1], int(a["y"].max()) + 1), a["X"].dtype)
        if not tag:
            np.random.seed(int(a["np_seed"]))  # noqa: NPY002 - the global state is tested
        X, y = a["X"].copy(), a["y"].copy()
        model.train(
            X,
            y,
            learning_rate=1e-3,
            reg=0.0,
            num_iters=int(a["num_iters"]),
            batch_size=int(a["batch_size"]),
            seed=run_seed,
        )
        if not tag:
            out["np_draws"] = np.random.random_sample(3)  # noqa: NPY002
            out["X_after"], out["y_after"] = X, y  # which train must leave as they were
        out["X_batches" + tag] = np.stack([np.asarray(b) for b in model.X_batches])
        out["y_batches" + tag] = np.stack([np.asarray(b) for b in model.y_batches])
    return out


def _scripted(base: type, grads: np.ndarray) -> type:
    """A classifier whose loss returns the given gradients, one per step, in order."""

    class Scripted(base):
        step = 0

        def loss(self, X_batch, y_batch, reg):
            grad = grads[self.step].copy()
            self.step += 1
            return float(self.step), grad

    return Scripted


def _update_call(mods: types.SimpleNamespace, fn: str, a: dict) -> dict:
    model = _scripted(mods.linear.LinearClassifier, a["grads"])()
    model.W = a["W0"].copy()
    model.train(
        a["X"].copy(),
        a["y"].copy(),
        learning_rate=float(a["lr"]),
        reg=float(a["reg"]),
        num_iters=len(a["grads"]),
        batch_size=int(a["batch_size"]),
        seed=int(a["seed"]),
    )
    return {"W": np.asarray(model.W)}


class _Bar:
    """Stands in for grid_search's tqdm bar: counts what ``bar.update(n)`` adds up to."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def _grid_call(mods: types.SimpleNamespace, fn: str, a: dict) -> dict:
    """grid_search's training: the batched step, or its one-by-one fallback when unwritten."""
    tuning = mods.tuning
    X, y = a["X"].copy(), a["y"].copy()
    configs = [(float(lr), float(reg)) for lr, reg in a["configs"]]
    num_classes = int(y.max()) + 1
    bar = _Bar()
    args = (int(a["num_iters"]), int(a["batch_size"]), int(a["seed"]), bar)
    try:
        W_all = tuning.train_together(X, y, configs, num_classes, *args)
    except NotImplementedError:
        W_all = None
    if W_all is None:
        bar.n = 0  # the fallback counts from the start again
        W_all = tuning._train_one_by_one(X, y, configs, *args)
    out = {"W_all": np.asarray(W_all), "bar_n": np.array(bar.n)}
    # The same models trained alone by this cs231n's own Softmax.train, to compare with
    # (the parent also compares with its reference train's).
    try:
        out["W_solo"] = tuning._train_one_by_one(X, y, configs, *args[:3], _Bar())
    except Exception:  # noqa: BLE001 - a broken train: only the reference's is compared
        pass
    return out


KINDS = {
    "loss": _softmax_call,
    "predict": _predict_call,
    "sample": _sample_call,
    "update": _update_call,
    "grid": _grid_call,
}


def perform(kind: str, fn: str, inputs: dict, mods: types.SimpleNamespace) -> dict:
    """Run one call of ``kind`` with the given cs231n modules; return its output arrays."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return KINDS[kind](mods, fn, inputs)


# --- the child's side: files in, files out -------------------------------------------------


def _student_modules() -> types.SimpleNamespace:
    """The cs231n in the current folder (the submission), never one installed elsewhere."""
    here = os.getcwd()
    sys.path.insert(0, here)
    mods = types.SimpleNamespace()
    for attr, name in (
        ("softmax", "cs231n.classifiers.softmax"),
        ("linear", "cs231n.classifiers.linear_classifier"),
        ("tuning", "cs231n.tuning"),
    ):
        try:
            module = importlib.import_module(name)
        except BaseException as error:  # a syntax error in the student's file, say
            module = _Broken(name, error)
        setattr(mods, attr, module)
    return mods


class _Broken:
    """Stands in for a module that failed to import; every use raises the import's error."""

    def __init__(self, name: str, error: BaseException) -> None:
        self._error = ImportError(f"importing {name} raised {type(error).__name__}")

    def __getattr__(self, attr: str) -> object:
        raise self._error


def _write_atomic(name: str, data: bytes) -> None:
    tmp = f".{name}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, name)


def _npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for key, value in arrays.items():
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(value), allow_pickle=False)
            archive.writestr(f"{key}.npy", member.getvalue())
    return buffer.getvalue()


def _error_name(error: BaseException) -> str:
    return type(error).__name__[:60]


def run_calls() -> int:
    """Run every call in the request, in order; write one output file per call."""
    with np.load(REQUEST, allow_pickle=False) as request:
        arrays = {key: request[key] for key in request.files}
    plan = json.loads(str(arrays.pop("plan")))
    mods = _student_modules()
    for call in plan:
        _write_atomic(STARTED, call["id"].encode())
        prefix = call["id"] + "."
        inputs = {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}
        try:
            outputs = perform(call["kind"], call["fn"], inputs, mods)
            data = _npz_bytes(outputs)
        except BaseException as error:  # noqa: BLE001 - SystemExit too: it is the student's
            data = _npz_bytes({"error": np.array(_error_name(error))})
        _write_atomic(OUT_PREFIX + call["id"] + ".npz", data)
    return 0


def _without_iri_checker() -> None:
    """Keep jsonschema from importing ``rfc3987_syntax`` (installed with Jupyter's extras):
    it builds a grammar at import, about 1.5 s of CPU per process, for an "iri" format
    that no notebook's schema uses. Validation of notebooks is unchanged without it."""
    sys.modules.setdefault("rfc3987_syntax", None)  # type: ignore[arg-type]


def run_notebook(timeout: int) -> int:
    """Execute the notebook in a fresh kernel; write it, executed, to NOTEBOOK_OUT."""
    _without_iri_checker()
    import nbformat
    from nbclient import NotebookClient

    os.environ["CS231N_DATASET"] = "fashion-mnist"
    os.environ["MPLBACKEND"] = "Agg"
    os.environ["PYTHONPATH"] = os.getcwd()
    nb = nbformat.read(NOTEBOOK_IN, as_version=4)
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        allow_errors=True,
        resources={"metadata": {"path": os.path.abspath("notebooks")}},
    )
    _execute(client, nb)
    _write_atomic(NOTEBOOK_OUT, nbformat.writes(nb).encode("utf-8"))
    return 0


def _execute(client, nb) -> None:
    """Run every cell, on past cells that raise (each TODO cell is judged on its own);
    where the run stopped early, say why in ``nb.metadata["grade"]``."""
    from nbclient.exceptions import CellTimeoutError, DeadKernelError

    nb.metadata.pop("grade", None)
    try:
        client.execute()
    except CellTimeoutError:
        nb.metadata["grade"] = {"stopped": "timeout"}
    except DeadKernelError:
        nb.metadata["grade"] = {"stopped": "dead kernel"}
    except Exception:  # noqa: BLE001 - a cell's error: it is in that cell's outputs
        nb.metadata["grade"] = {"stopped": "error"}


def run_attached(outdir: str, timeout: int) -> int:
    """Execute ``outdir/in.ipynb`` on the kernel the sandbox started; write
    ``outdir/out.ipynb``.

    This process is the kernel's client, a user of its own: ``outdir`` is its folder, which
    the kernel (the student's code) cannot reach, so nothing the cells do can replace the
    executed notebook. The connection, and the kernel's pid, are in ``outdir/kernel.json``.
    """
    _without_iri_checker()
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient import NotebookClient

    with open(os.path.join(outdir, "kernel.json")) as f:
        info = json.load(f)
    kernel_pid = int(info.pop("pid"))

    class Attached(AsyncKernelManager):
        """A kernel manager for a kernel started by someone else: it only watches it."""

        @property
        def has_kernel(self) -> bool:
            return True

        async def is_alive(self) -> bool:  # a kernel of another user: EPERM means alive
            try:
                os.kill(kernel_pid, 0)
            except PermissionError:
                return True
            except OSError:
                return False
            return True

        async def interrupt_kernel(self) -> None:
            return None

        async def shutdown_kernel(self, now: bool = False, restart: bool = False) -> None:
            return None

        async def cleanup_resources(self, restart: bool = False) -> None:
            return None

    km = Attached()
    km.load_connection_info(info)
    nb = nbformat.read(os.path.join(outdir, "in.ipynb"), as_version=4)
    client = NotebookClient(nb, km=km, timeout=timeout, kernel_name="python3", allow_errors=True)
    _execute(client, nb)
    os.chdir(outdir)
    _write_atomic("out.ipynb", nbformat.writes(nb).encode("utf-8"))
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["calls"]:
        sys.exit(run_calls())
    if sys.argv[1:2] == ["attach"] and len(sys.argv) == 4:
        sys.exit(run_attached(sys.argv[2], int(sys.argv[3])))
    if sys.argv[1:2] == ["notebook"] and len(sys.argv) == 3:
        sys.exit(run_notebook(int(sys.argv[2])))
    sys.exit("usage: _grade_child.py calls | notebook TIMEOUT")
