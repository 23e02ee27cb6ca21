"""The hidden cases: the calls of the student's code that the hidden tests make.

Each case is an input of one of the properties in ``cs231n/_properties.py`` (made by its
input maker), with other seeds, sizes, dtypes, reg values and offsets than the public
self-checks use: rows lifted up and pushed down by 1000s, a true class 1000 below the
best, near-ties for predict, batch sizes above and below N. The self-checks run each of
these properties too, on their own inputs, so no mistake is found here alone.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import numpy as np

from cs231n import _properties as props


@dataclass(frozen=True)
class Call:
    """One call of the student's code in the child: a kind, a function, its inputs.

    ``known`` holds what the case knows by construction (labels, expected values),
    which stays in the grader.
    """

    id: str
    kind: str  # a key of child.KINDS
    fn: str  # the loss function's name for kind "loss", else ""
    inputs: dict[str, np.ndarray] = field(hash=False, compare=False)
    known: dict = field(default_factory=dict, hash=False, compare=False)


LOSS_FNS = {"naive": "softmax_loss_naive", "vectorized": "softmax_loss_vectorized"}
BIG = "vectorized_BIG"
# Offset patterns (and seeds) of the stability cases: each row's scores move together.
SHIFTED = {"S1": ("apart", 8105), "S3": ("down", 8116), "S4": ("up", 8117)}


def loss_problem(seed, N, D, C, reg, scale=0.5, x_scale=1.0, classes=None, dtype=np.float64):
    rng = np.random.default_rng(seed)
    W = scale * rng.standard_normal((D, C))
    X = x_scale * rng.standard_normal((N, D))
    labels = np.arange(C) if classes is None else np.asarray(classes)
    y = rng.choice(labels, N)
    return {"W": W.astype(dtype), "X": X.astype(dtype), "y": y, "reg": np.array(float(reg))}


def sample_problem(seed, N, D, C, B, iters, train_seed, np_seed, dtype):
    rng = np.random.default_rng(seed)
    return {
        "X": rng.standard_normal((N, D)).astype(dtype),
        "y": rng.permutation(np.arange(N) % C),
        "batch_size": np.array(B),
        "num_iters": np.array(iters),
        "seed": np.array(train_seed),
        "np_seed": np.array(np_seed),
    }


def update_problem(seed, N, D, C, B, steps, lr, reg, dtype):
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


def grid_problem(seed, N, D, C, configs, iters, B, dtype, scale=1.0):
    X, y = props.grid_problem(seed, N, D, C, scale=scale, dtype=dtype)
    return {
        "X": X,
        "y": y,
        "configs": np.array(configs, dtype=np.float64),
        "num_iters": np.array(iters),
        "batch_size": np.array(B),
        "seed": np.array(seed),
    }


def _shifted(seed: int, pattern: str, dtype=np.float64) -> tuple[dict, dict]:
    """A base problem and the same with each row's scores moved by the pattern's offsets."""
    base = loss_problem(seed, N=9, D=5, C=4, reg=0.0, scale=0.7, dtype=dtype)
    lift = props.offsets(pattern, 9) * (1.0 if pattern == "apart" else 1.5)
    return props.shifted_rows(base, lift), {"base": base, "pattern": pattern}


@functools.cache
def calls() -> dict[str, Call]:
    """Every call the hidden tests make, by id (seeded: the same on every run)."""
    shared = {
        "L0": (loss_problem(8101, N=17, D=9, C=6, reg=0.0, scale=0.3), {}),
        "L1": (loss_problem(8102, N=23, D=4, C=11, reg=0.37), {}),
        "L2": (loss_problem(8103, N=1, D=3, C=2, reg=2.5, scale=1.0), {}),
        "L3": (loss_problem(8104, N=40, D=12, C=3, reg=1e-3, x_scale=3.0, classes=[0, 2]), {}),
        "S2": props.far_below_problem(8106, N=7, C=4, gap=1500.0),
    }
    shared["S2"] = (shared["S2"][0], {"expected": shared["S2"][1]})
    for key, (pattern, seed) in SHIFTED.items():
        shared[key] = _shifted(seed, pattern)
    shared["L1z"] = ({**shared["L1"][0], "reg": np.array(0.0)}, {})
    made: dict[str, Call] = {}
    for short, fn in LOSS_FNS.items():
        for key, (inputs, known) in shared.items():
            made[f"{short}_{key}"] = Call(f"{short}_{key}", "loss", fn, inputs, known)
    float32 = loss_problem(8107, N=31, D=7, C=5, reg=0.2, dtype=np.float32)
    for short, fn in LOSS_FNS.items():
        made[f"{short}_F1"] = Call(f"{short}_F1", "loss", fn, float32)
    # Many examples, few features: a Python loop over the rows costs seconds, numpy's
    # whole-matrix work a few hundredths (vectorized_no_loop measures the child's CPU).
    made[BIG] = Call(BIG, "loss", LOSS_FNS["vectorized"], loss_problem(8109, 100_000, 3, 3, 0.15))
    inputs, known = _shifted(8108, "apart", np.float32)
    made["vectorized_F2"] = Call("vectorized_F2", "loss", LOSS_FNS["vectorized"], inputs, known)
    predict = {
        "P0": props.best_class_problem(8111, N=25, D=8, C=7),
        "P1": props.best_class_problem(8112, N=13, D=9, C=2, margin=0.01, dtype=np.float32),
        "P2": props.best_class_problem(8113, N=1, D=12, C=9),
        "P3": props.best_class_problem(8114, N=9, D=5, C=4, lift=1000.0),
        "P4": props.best_class_problem(8115, N=11, D=6, C=5, lift=-1000.0),
    }
    for key, (inputs, labels, scores) in predict.items():
        known = {"labels": labels, "scores": scores}
        made[f"predict_{key}"] = Call(f"predict_{key}", "predict", "", inputs, known)
    made["sample_Q0"] = Call(  # batch_size above N: only sampling with replacement works
        "sample_Q0", "sample", "", sample_problem(8121, 10, 3, 4, 30, 80, 8, 101, np.float64)
    )
    made["sample_Q1"] = Call(  # batch_size below N, float32: no repeats would be a tell
        "sample_Q1", "sample", "", sample_problem(8122, 25, 4, 3, 15, 120, 1234, 77, np.float32)
    )
    made["update_U0"] = Call(
        "update_U0", "update", "", update_problem(8131, 6, 3, 4, 4, 5, 0.25, 0.5, np.float64)
    )
    made["update_U1"] = Call(
        "update_U1", "update", "", update_problem(8132, 4, 5, 2, 3, 3, 0.125, 0.0, np.float32)
    )
    grids = {
        "G0": grid_problem(
            8141, 16, 4, 3, [(0.05, 0.0), (0.2, 0.1), (0.5, 0.3)], 6, 5, np.float64
        ),
        "G1": grid_problem(8142, 10, 3, 2, [(0.1, 0.0), (0.3, 0.2)], 5, 7, np.float32),
        # initial scores in the thousands: one step, exp() must not overflow
        "G2": grid_problem(8143, 12, 4, 3, [(0.05, 0.0), (0.2, 0.1)], 1, 6, np.float64, scale=1e6),
    }
    for key, inputs in grids.items():
        made[f"grid_{key}"] = Call(f"grid_{key}", "grid", "", inputs)
    return made
