"""``make bench``: the kit's speed against textbook numpy, as ratios, on CIFAR-10-sized data.

Everything runs on synthetic data of CIFAR-10's size after preprocessing: 49,000
training rows (plus 1,000 validation rows) of 3,072 centred pixel values and a bias
column, 10 classes. The textbook versions are written out below, the way the lecture
notes put them; the kit's versions are imported from ``cs231n``. Each measurement runs
the kit and the textbook version in turn, rotating which goes first, several times;
the table shows the median times and ``ratio = textbook time / kit time`` (above 1: the
kit is faster): the median of the repetitions' ratios, and their range. A row whose
range reaches across its target is marked "noise": that run cannot say which side of
the bar it is on. Peak memory is measured in fresh subprocesses that load full-size
CIFAR-format files from a temporary folder.

The busy-machine rows time the kit's SGD and search in fresh subprocesses, first on
their own, then next to two fresh processes that keep a core busy each
(``while True: pass``), and report the slowdown. The same runs with the thread policy
switched off (BLAS at its usual count throughout, with no adaptive policy) show what it
saves.

Run from the repository root: ``.venv/bin/python tools/bench.py [--reps N] [--quick]``.
With ``--docs docs/speed.md`` (what ``make bench`` passes) it also writes its tables into
that page's generated sections, ``bench`` and ``bench-busy``.
The numbers are only as steady as the machine: the report gives the load average and
how much CPU time other processes took while it ran.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from statistics import median
from typing import NamedTuple

import numpy as np

from cs231n.classifiers import Softmax
from cs231n.classifiers.softmax import softmax_loss_vectorized
from cs231n.tuning import grid_search

REPO = Path(__file__).resolve().parent.parent
LEARNING_RATES = [1e-7, 2e-7, 5e-7, 1e-6]  # 4 x 4 = 16 configurations, cs231n's ranges
REGULARIZATION_STRENGTHS = [1e3, 5e3, 2.5e4, 5e4]


# ----------------------------------------------------------------------------------------
# The textbook implementations (lecture-notes numpy, no tricks)
# ----------------------------------------------------------------------------------------


def textbook_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float):
    """Softmax loss and gradient as the lecture notes write them."""
    num_train = X.shape[0]
    scores = X @ W
    scores = scores - scores.max(axis=1, keepdims=True)
    exp_scores = np.exp(scores)
    probs = exp_scores / exp_scores.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(num_train), y]).mean() + reg * np.sum(W * W)
    dscores = probs.copy()
    dscores[np.arange(num_train), y] -= 1
    dscores /= num_train
    dW = X.T @ dscores + 2 * reg * W
    return loss, dW


def textbook_sgd(X, y, learning_rate, reg, num_iters, batch_size, seed):
    """Minibatch SGD as the lecture notes write it (same RNG calls as the kit's train)."""
    rng = np.random.default_rng(seed)
    num_train, dim = X.shape
    W = 0.001 * rng.standard_normal((dim, int(y.max()) + 1))
    for _ in range(num_iters):
        idx = rng.choice(num_train, batch_size, replace=True)
        _, grad = textbook_loss(W, X[idx], y[idx], reg)
        W -= learning_rate * grad
    return W


def kit_sgd(X, y, learning_rate, reg, num_iters, batch_size, seed) -> np.ndarray:
    """The kit's Softmax.train; returns the trained W."""
    model = Softmax()
    model.train(X, y, learning_rate, reg, num_iters, batch_size, seed=seed)
    return model.W


def sequential_search(X_train, y_train, X_val, y_val, num_iters, batch_size, seed):
    """The search loop of the cs231n notebook: one Softmax().train per configuration."""
    results, best, best_val = {}, None, -1.0
    for lr in LEARNING_RATES:
        for reg in REGULARIZATION_STRENGTHS:
            model = Softmax()
            model.train(X_train, y_train, lr, reg, num_iters, batch_size, seed=seed)
            train_acc = np.mean(model.predict(X_train) == y_train)
            val_acc = np.mean(model.predict(X_val) == y_val)
            results[(lr, reg)] = (train_acc, val_acc)
            if val_acc > best_val:
                best, best_val = model, val_acc
    return results, best


# ----------------------------------------------------------------------------------------
# Data and timing
# ----------------------------------------------------------------------------------------


def synthetic_cifar(num_rows: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Preprocessed-CIFAR-like rows: centred uint8 pixels plus a bias column, float64."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, size=num_rows)
    pixels = rng.integers(0, 256, size=(num_rows, 3072), dtype=np.uint8)
    pixels[:, :64] = 25 * y[:, None]  # a learnable corner, so the models differ in accuracy
    X = np.empty((num_rows, 3073))
    X[:, :3072] = pixels
    X[:, :3072] -= X[:, :3072].mean(axis=0)
    X[:, 3072] = 1.0
    return X, y


def race(
    contenders: dict[str, Callable[[], object]], reps: int
) -> tuple[dict[str, list[float]], dict[str, object]]:
    """Run each contender in turn, reps times, rotating which goes first.

    Returns the wall times of each (one per repetition, in order), and what each
    returned (last run).
    """
    names = list(contenders)
    times: dict[str, list[float]] = {name: [] for name in names}
    outputs: dict[str, object] = {}
    for rep in range(reps):
        for name in names[rep % len(names) :] + names[: rep % len(names)]:
            start = time.perf_counter()
            outputs[name] = contenders[name]()
            times[name].append(time.perf_counter() - start)
    return times, outputs


def rel_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


# ----------------------------------------------------------------------------------------
# The machine
# ----------------------------------------------------------------------------------------


def _openblas() -> ctypes.CDLL | None:
    """numpy's OpenBLAS, found among the libraries this process has loaded (Linux)."""
    try:
        with open("/proc/self/maps") as maps:
            paths = {line.split()[-1] for line in maps if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _openblas_call(lib: ctypes.CDLL | None, name: str, restype):
    """Call OpenBLAS's ``name`` under whichever symbol prefix/suffix this build uses."""
    if lib is None:
        return None
    for symbol in (f"openblas_{name}", f"scipy_openblas_{name}64_", f"openblas_{name}64_"):
        if hasattr(lib, symbol):
            func = getattr(lib, symbol)
            func.restype = restype
            return func()
    return None


def machine_report() -> list[str]:
    """Python, numpy, BLAS library, BLAS threads and CPUs, one line each."""
    blas = "unknown"
    try:
        deps = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        blas = f"{deps.get('name', '?')} {deps.get('version', '')}".strip()
    except Exception:  # noqa: BLE001 - numpy < 1.26 has no mode='dicts'
        pass
    lib = _openblas()
    core = _openblas_call(lib, "get_corename", ctypes.c_char_p)
    threads = _openblas_call(lib, "get_num_threads", ctypes.c_int)
    env = {
        k: os.environ[k] for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS") if k in os.environ
    }
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return [
        f"python {platform.python_version()}, numpy {np.__version__}, {platform.machine()}",
        f"BLAS: {blas}" + (f" (kernels for {core.decode()})" if core else ""),
        f"BLAS threads: {threads if threads is not None else 'unknown'}"
        + (f" (set by {env})" if env else "")
        + f"; CPUs available: {cpus}",
    ]


def busy_cpu_seconds() -> float | None:
    """CPU-seconds all processes on the machine have used since boot (Linux /proc/stat)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def own_cpu_seconds() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


# ----------------------------------------------------------------------------------------
# Peak memory of loading and preprocessing, in fresh subprocesses
# ----------------------------------------------------------------------------------------

_LOAD_AND_PREPROCESS = """
import resource, sys
import numpy as np
from cs231n.data_utils import load_dataset, make_splits, preprocess

def peak_mb():
    # VmHWM belongs to this process image; ru_maxrss would include the parent's peak,
    # which Linux carries over through fork and exec.
    try:
        with open("/proc/self/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmHWM:")) / 1024
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2  # macOS: bytes

before = peak_mb()
ds = load_dataset("cifar10", dtype=np.dtype(sys.argv[1]), verbose=False)
data = preprocess(make_splits(ds, verbose=False), verbose=False)
assert data["X_train"].dtype == np.dtype(sys.argv[1]), data["X_train"].dtype
print(before, peak_mb(), data["X_train"].shape)
"""


def write_full_size_cifar(root: Path) -> Path:
    """Five 10,000-image batches and a test batch in the real files' format."""
    sys.path.insert(0, str(REPO / "tests"))
    from cifar_fixtures import write_cifar_batch, write_cifar_meta

    folder = root / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{b}" for b in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(10000, 3072), dtype=np.uint8)
        write_cifar_batch(folder / name, data, rng.integers(0, 10, size=10000).tolist(), name)
    write_cifar_meta(folder / "batches.meta")
    return folder


def peak_memory_mb(folder: Path, dtype: str) -> tuple[float, float, str]:
    """(peak RSS after imports, peak RSS after load + preprocess, X_train shape), in MB."""
    env = dict(os.environ, CIFAR10_DIR=str(folder))
    out = subprocess.run(
        [sys.executable, "-c", _LOAD_AND_PREPROCESS, dtype],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split(maxsplit=2)
    return float(out[0]), float(out[1]), out[2].strip()


# ----------------------------------------------------------------------------------------
# The busy machine, in fresh subprocesses
# ----------------------------------------------------------------------------------------

# The busy-machine runs: float32, CIFAR-10 sized.
BUSY_SGD_ITERS, BUSY_SEARCH_ITERS = 600, 200
BUSY_GRID = ([1e-7, 2e-7, 5e-7, 1e-6], [1e3, 5e4])  # 8 configurations
BUSY_TARGET = 2.5


def child(workload: str, data: str, policy: str, args: argparse.Namespace) -> list[float]:
    """In a fresh process: time ``workload`` (sgd or search) busy_reps times; seconds."""
    from cs231n import _threads

    if policy == "off":  # BLAS stays at its usual count: no adaptive policy
        _threads._Tuner.tick = lambda self: None
    X, y, X_val, y_val = (np.load(Path(data) / f"{n}.npy") for n in ("X", "y", "X_val", "y_val"))
    sgd_iters = 100 if args.quick else BUSY_SGD_ITERS
    search_iters = 50 if args.quick else BUSY_SEARCH_ITERS
    times = []
    for _ in range(args.busy_reps):
        start = time.perf_counter()
        if workload == "sgd":
            Softmax().train(X, y, 1e-7, 2.5e4, sgd_iters, args.batch_size, seed=0)
        else:
            grid_search(X, y, X_val, y_val, *BUSY_GRID, search_iters, args.batch_size, seed=0)
        times.append(time.perf_counter() - start)
    return times


def run_child(workload: str, data: Path, policy: str, busy: int, args) -> list[float]:
    """``child`` in a fresh process, next to ``busy`` fresh processes that spin a core each."""
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(busy)]
    try:
        command = [
            sys.executable,
            __file__,
            "--child",
            workload,
            str(data),
            policy,
            "--busy-reps",
            str(args.busy_reps),
            "--batch-size",
            str(args.batch_size),
        ]
        command += ["--quick"] if args.quick else []
        out = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
        return json.loads(out.stdout)
    finally:
        for spinner in spinners:
            spinner.kill()
            spinner.wait()


def busy_machine(data: Path, args: argparse.Namespace) -> list[tuple[str, ...]]:
    """Table rows: each workload alone and next to two busy processes, policy on and off."""
    rows = []
    sgd_iters = 100 if args.quick else BUSY_SGD_ITERS
    search_iters = 50 if args.quick else BUSY_SEARCH_ITERS
    names = {
        "sgd": f"Softmax.train f32, {sgd_iters} iters",
        "search": f"grid_search f32, 8 configs x {search_iters} iters",
    }
    for policy in ("on", "off"):
        for workload, name in names.items():
            alone = run_child(workload, data, policy, 0, args)
            busy = run_child(workload, data, policy, 2, args)
            slowdown = median(busy) / median(alone)
            low, high = min(busy) / max(alone), max(busy) / min(alone)
            target = BUSY_TARGET if policy == "on" else None
            label = name if policy == "on" else f"{name}, thread policy off (as before)"
            rows.append(
                (
                    label,
                    spread(alone),
                    spread(busy),
                    f"{slowdown:.2f}x",
                    f"{low:.2f}-{high:.2f}x",
                    "-" if target is None else f"<= {target}x",
                    verdict(low, high, target, above=False),
                )
            )
    return rows


def spread(times: list[float]) -> str:
    return f"{median(times):.2f} s ({min(times):.2f}-{max(times):.2f})"


# ----------------------------------------------------------------------------------------
# The report
# ----------------------------------------------------------------------------------------


class Row(NamedTuple):
    name: str
    kit: float  # median seconds
    textbook: float
    ratio: float  # median of the repetitions' ratios
    low: float  # their range
    high: float
    target: float | None
    verdict: str


def verdict(low: float, high: float, target: float | None, above: bool) -> str:
    """pass / FAIL when the whole range is on one side of the target, else noise."""
    if target is None:
        return "info"
    if (low >= target) if above else (high <= target):
        return "pass"
    if (high < target) if above else (low > target):
        return "FAIL"
    return "noise"


def print_table(header: tuple[str, ...], table: list[tuple[str, ...]]) -> None:
    widths = [max(len(str(r[i])) for r in [header, *table]) for i in range(len(header))]
    for r in [header, *table]:
        print("  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)).rstrip())


def markdown_table(header: tuple[str, ...], table: list[tuple[str, ...]]) -> str:
    """The rows as a Markdown table (a | inside a cell is escaped)."""
    lines = [header, tuple("---" for _ in header), *table]
    return "\n".join(
        "| " + " | ".join(str(c).replace("|", "\\|") for c in row) + " |" for row in lines
    )


def write_docs(
    page: Path,
    context: str,
    header: tuple[str, ...],
    table: list[tuple[str, ...]],
    busy: str | None,
) -> None:
    """Write the report's tables into page's generated sections bench and bench-busy."""
    sys.path.insert(0, str(REPO))
    from tools.docs_section import write_section

    write_section(page, "bench", context + "\n\n" + markdown_table(header, table))
    if busy is not None:
        write_section(page, "bench-busy", busy)


# ----------------------------------------------------------------------------------------
# The benchmark
# ----------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reps", type=int, default=5, help="repetitions per timing (median)")
    parser.add_argument("--search-reps", type=int, default=3, help="repetitions of the search")
    parser.add_argument("--sgd-iters", type=int, default=1500)
    parser.add_argument("--search-iters", type=int, default=1500)
    parser.add_argument("--batch-size", type=int, default=200)
    parser.add_argument("--rows", type=int, default=49000, help="training rows (CIFAR: 49000)")
    parser.add_argument("--skip-memory", action="store_true", help="skip the peak-memory part")
    parser.add_argument("--skip-busy", action="store_true", help="skip the busy-machine rows")
    parser.add_argument("--busy-reps", type=int, default=3, help="runs per busy-machine process")
    parser.add_argument(
        "--child", nargs=3, metavar=("WORKLOAD", "DATA", "POLICY"), help=argparse.SUPPRESS
    )  # one busy-machine measurement (internal)
    parser.add_argument(
        "--quick", action="store_true", help="tiny smoke run: 4900 rows, few iterations"
    )
    parser.add_argument(
        "--docs", type=Path, help="also write the tables into this page (docs/speed.md)"
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.rows, args.reps, args.search_reps, args.busy_reps = 4900, 3, 1, 2
        args.sgd_iters, args.search_iters = 100, 50
    if args.child:
        print(json.dumps(child(*args.child, args)))
        return

    started, busy0, own0 = time.perf_counter(), busy_cpu_seconds(), own_cpu_seconds()
    print("make bench: the kit against textbook numpy (ratio = textbook time / kit time)")
    machine = machine_report()
    for line in machine:
        print("  " + line)
    load_before = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"  load average before: {load_before}")

    # 1. Peak memory of loading and preprocessing full-size CIFAR-10 files (first,
    # while this process is small)
    memory = None
    if not args.skip_memory:
        with tempfile.TemporaryDirectory(prefix="cs231n-bench-") as tmp:
            folder = write_full_size_cifar(Path(tmp))
            memory = {dtype: peak_memory_mb(folder, dtype) for dtype in ("float64", "float32")}
        print(f"  [{time.perf_counter() - started:5.0f} s] memory done")

    X64, y = synthetic_cifar(args.rows + 1000)
    X64, X_val64, y, y_val = X64[: args.rows], X64[args.rows :], y[: args.rows], y[args.rows :]
    X32, X_val32 = X64.astype(np.float32), X_val64.astype(np.float32)
    print(f"  data: {X64.shape[0]} x {X64.shape[1]} training rows, 10 classes (synthetic)\n")
    W64 = 0.001 * np.random.default_rng(1).standard_normal((X64.shape[1], 10))
    W32, reg = W64.astype(np.float32), 2.5e4
    rows: list[Row] = []
    checks = []

    def add(measurement: str, kit: list[float], textbook: list[float], target: float | None):
        ratios = [t / k for k, t in zip(kit, textbook, strict=True)]  # paired by repetition
        rows.append(
            Row(
                measurement,
                median(kit),
                median(textbook),
                median(ratios),
                min(ratios),
                max(ratios),
                target,
                verdict(min(ratios), max(ratios), target, above=True),
            )
        )

    # 2. Full-batch loss and gradient
    t, out = race(
        {
            "kit64": lambda: softmax_loss_vectorized(W64, X64, y, reg),
            "kit32": lambda: softmax_loss_vectorized(W32, X32, y, reg),
            "textbook64": lambda: textbook_loss(W64, X64, y, reg),
        },
        max(args.reps, 7),
    )
    add("full-batch loss+grad, f64", t["kit64"], t["textbook64"], 0.95)
    add("full-batch loss+grad, kit f32 vs textbook f64", t["kit32"], t["textbook64"], 1.6)
    (loss_k, grad_k), (loss_32, grad_32), (loss_t, grad_t) = out.values()
    checks.append(
        f"loss+grad f64, kit vs textbook: loss rel diff {abs(loss_k - loss_t) / loss_t:.1e}, "
        f"grad {rel_diff(grad_k, grad_t):.1e}"
    )
    checks.append(
        f"loss+grad, kit f32 vs textbook f64: loss rel diff {abs(loss_32 - loss_t) / loss_t:.1e}"
        f", grad {rel_diff(grad_32, grad_t):.1e} (gradient dtype {grad_32.dtype})"
    )
    print(f"  [{time.perf_counter() - started:5.0f} s] full-batch loss+grad done")

    # 3. SGD, 1500 iterations of batch 200
    n_it, bs, lr = args.sgd_iters, args.batch_size, 1e-7
    t, out = race(
        {
            "kit64": lambda: kit_sgd(X64, y, lr, reg, n_it, bs, seed=0),
            "kit32": lambda: kit_sgd(X32, y, lr, reg, n_it, bs, seed=0),
            "textbook64": lambda: textbook_sgd(X64, y, lr, reg, n_it, bs, seed=0),
        },
        args.reps,
    )
    sgd = f"SGD {n_it} iters x batch {bs}"
    add(f"{sgd}, f64", t["kit64"], t["textbook64"], 0.95)
    add(f"{sgd}, kit f32 vs textbook f64", t["kit32"], t["textbook64"], 1.25)
    diff64, diff32 = (rel_diff(out[k], out["textbook64"]) for k in ("kit64", "kit32"))
    checks.append(
        f"{sgd}: final W rel diff, kit f64 vs textbook {diff64:.1e}, kit f32 vs textbook "
        f"f64 {diff32:.1e} (W dtype {out['kit32'].dtype})"
    )
    print(f"  [{time.perf_counter() - started:5.0f} s] SGD done")

    # 4. A 16-configuration search: grid_search against 16 Softmax().train calls
    n_it = args.search_iters
    grid = (LEARNING_RATES, REGULARIZATION_STRENGTHS, n_it, bs)
    t, out = race(
        {
            "batched64": lambda: grid_search(X64, y, X_val64, y_val, *grid, seed=0),
            "batched32": lambda: grid_search(X32, y, X_val32, y_val, *grid, seed=0),
            "sequential64": lambda: sequential_search(X64, y, X_val64, y_val, n_it, bs, seed=0),
        },
        args.search_reps,
    )
    search = f"16-config search ({n_it} iters, + accuracies)"
    add(f"{search}, f64: batched vs sequential", t["batched64"], t["sequential64"], 2.5)
    add(f"{search}: batched f32 vs sequential f64", t["batched32"], t["sequential64"], None)
    (res_b, best_b), (res_32, best_32), (res_s, best_s) = out.values()
    agree = sum(res_b[k] == res_s[k] for k in res_s)
    checks.append(
        f"search f64: {agree} of {len(res_s)} configurations with identical accuracies, "
        f"best W rel diff batched vs sequential {rel_diff(best_b.W, best_s.W):.1e}"
    )
    best_val = {name: max(v for _, v in res.values()) for name, (res, _) in out.items()}
    checks.append(
        "search: best validation accuracy "
        + ", ".join(f"{name} {acc:.3f}" for name, acc in best_val.items())
        + f" (best W dtype in f32: {best_32.W.dtype})"
    )
    print(f"  [{time.perf_counter() - started:5.0f} s] search done")

    # 5. The busy machine: SGD and the search in fresh processes, alone and next to two
    # busy ones, with the thread policy and without it
    busy_rows = []
    if not args.skip_busy:
        load_before_busy = os.getloadavg()[0]
        with tempfile.TemporaryDirectory(prefix="cs231n-bench-") as tmp:
            for name, array in (("X", X32), ("y", y), ("X_val", X_val32), ("y_val", y_val)):
                np.save(Path(tmp) / f"{name}.npy", array)
            del X64, X_val64
            busy_rows = busy_machine(Path(tmp), args)
        print(f"  [{time.perf_counter() - started:5.0f} s] busy machine done")

    # The report
    print(
        f"\nratio = textbook / kit: the median over {args.reps} repetitions (the search: "
        f'{args.search_reps}) and their range; "noise": the range reaches across the target'
    )
    header = ("measurement", "kit", "textbook", "ratio", "range", "target", "")
    table = [
        (
            r.name,
            f"{r.kit:.3f} s",
            f"{r.textbook:.3f} s",
            f"{r.ratio:.2f}x",
            f"{r.low:.2f}-{r.high:.2f}x",
            "-" if r.target is None else f">= {r.target}x",
            r.verdict,
        )
        for r in rows
    ]
    print_table(header, table)
    if busy_rows:
        print(
            "\nbusy machine: fresh processes, alone and next to two busy processes "
            "(while True: pass);\nslowdown = busy / alone (medians), range = slowest busy / "
            f"fastest alone ... ({args.busy_reps} runs each; load average "
            f"{load_before_busy:.2f} when it began)"
        )
        header = ("measurement", "alone", "2 busy processes", "slowdown", "range", "target", "")
        print_table(header, busy_rows)
    if memory is not None:
        (base64, peak64, shape), (base32, peak32, _) = memory["float64"], memory["float32"]
        ratio = peak32 / peak64
        print(
            f"\npeak memory, load_dataset + make_splits + preprocess of full-size CIFAR-10 "
            f"files (X_train {shape}):\n"
            f"  float64 {peak64:.0f} MB, float32 {peak32:.0f} MB (after imports: {base64:.0f}"
            f" and {base32:.0f} MB); f32 / f64 = {ratio:.0%}, target <= 60%: "
            + ("pass" if ratio <= 0.6 else "FAIL")
        )
    print("\nsanity checks (the timed code computes the same thing):")
    for line in checks:
        print("  " + line)
    elapsed = time.perf_counter() - started
    busy1 = busy_cpu_seconds()
    idle = f"it ran for {elapsed:.0f} s"
    if busy0 is not None and busy1 is not None:
        others = max(0.0, (busy1 - busy0) - (own_cpu_seconds() - own0))
        cpus = os.cpu_count() or 1
        print(
            f"\nother processes used {others:.0f} CPU-seconds of the {elapsed * cpus:.0f} "
            f"available during the {elapsed:.0f} s run ({others / (elapsed * cpus):.0%}); "
            "the ratios are trustworthy only when this is near 0%."
        )
        idle = f"other processes used {others / (elapsed * cpus):.0%} of the CPU during its "
        idle += f"{elapsed:.0f} s"
    else:
        print(f"\nran for {elapsed:.0f} s")
    if args.docs:
        if memory is not None:
            table.append(
                (
                    "peak memory of load_dataset + make_splits + preprocess, full-size "
                    f"CIFAR-10, f32 / f64 ({peak32:.0f} / {peak64:.0f} MB)",
                    "-",
                    "-",
                    f"{ratio:.0%}",
                    "",
                    "<= 60%",
                    "pass" if ratio <= 0.6 else "FAIL",
                )
            )
        context = (
            f"Measured by one `{'tools/bench.py --quick' if args.quick else 'make bench'}` "
            f"run on {time.strftime('%Y-%m-%d')}, {args.rows} training rows "
            f"({'; '.join(machine)}; load average before: {load_before}); {idle}. Medians "
            f"over {args.reps} repetitions (the search: {args.search_reps}) and their range; "
            '"noise": the range reaches across the target.'
        )
        busy = None
        if busy_rows:
            busy = (
                f"Same run: fresh processes, alone and next to two busy processes; slowdown = "
                f"busy / alone (medians of {args.busy_reps} runs each), range = slowest busy / "
                f"fastest alone ... fastest busy / slowest alone; load average "
                f"{load_before_busy:.2f} when it began.\n\n"
                + markdown_table(
                    ("measurement", "alone", "two busy processes", "slowdown", "range")
                    + ("target", ""),
                    busy_rows,
                )
            )
        write_docs(args.docs, context, (*header[:-1], "verdict"), table, busy)
        print(f"\nwrote the tables into {args.docs}")


if __name__ == "__main__":
    main()
