"""Judging: each rubric item's hidden cases, judged in the grader's own process.

The judges are the properties of ``cs231n/_properties.py`` (the reference checkout's
copy, imported here, never the submission's), fed with the outputs the child handed
back and with the answers of :mod:`tools.grade.oracle`. Each item judges one function:
the child runs the student's function with stand-ins for the rest (a recording or a
scripted loss for ``train``), so one bug costs only its own function's items. An item
earns ``points * passed / cases``; its output names each failed case's mistake without
the case's inputs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np

from cs231n import _properties as props

from . import oracle, runner
from .cases import BIG, LOSS_FNS, SHIFTED, calls
from .rubric import Item, TestResult, code_items
from .status import worst


class _Bad(Exception):
    """An output that fails validation or judgement; the message is shown, without inputs."""


def _outputs(outcomes: dict, call_id: str) -> dict[str, np.ndarray]:
    outcome = outcomes.get(call_id)
    if outcome is None:
        raise _Bad("not run")
    if outcome.outputs is None:
        raise _Bad(outcome.problem)
    return outcome.outputs


def _array(outputs: dict, key: str, shape: tuple, kinds: str = "f") -> np.ndarray:
    value = outputs.get(key)
    if value is None:
        raise _Bad(f"{key} is missing")
    if value.dtype.kind not in kinds:
        raise _Bad(f"{key} has dtype {value.dtype}")
    if value.shape != shape:
        raise _Bad(f"{key} has the wrong shape")
    return value


# (loss tolerance relative to max(1, |loss|), dW worst column's relative error)
TOLERANCE = {np.dtype(np.float64): (1e-9, 1e-8), np.dtype(np.float32): (1e-3, 1e-2)}


def _loss_and_dW(outcomes: dict, call_id: str) -> tuple[float, np.ndarray]:
    outputs = _outputs(outcomes, call_id)
    W = calls()[call_id].inputs["W"]
    loss = float(_array(outputs, "loss", (), "fiu"))
    dW = _array(outputs, "dW", W.shape)
    props.judge_unchanged(
        LOSS_FNS[call_id.split("_")[0]], "W", W, _array(outputs, "W_after", W.shape)
    )
    return loss, dW


def _judge_close(outcomes: dict, call_id: str, part: str = "both") -> None:
    """Loss and/or dW against the long-double oracle."""
    loss, dW = _loss_and_dW(outcomes, call_id)
    want, dW_want = oracle.expected_loss(call_id)
    tol = TOLERANCE[calls()[call_id].inputs["W"].dtype]
    if part in ("loss", "both") and not abs(loss - want) <= tol[0] * max(1.0, abs(want)):
        raise _Bad("the loss is wrong" if math.isfinite(loss) else "the loss is inf or nan")
    if part in ("dW", "both"):
        if not np.all(np.isfinite(dW)):
            raise _Bad("dW holds inf or nan")
        if props.column_errors(dW, dW_want).max() > tol[1]:
            raise _Bad("dW is wrong")


def _judge_float32(outcomes: dict, call_id: str) -> None:
    _, dW = _loss_and_dW(outcomes, call_id)
    if dW.dtype != np.float32:
        raise _Bad(f"float32 inputs gave a {dW.dtype} dW")
    if call_id.endswith("_F2"):
        _judge_shifted(outcomes, call_id)
    else:
        _judge_close(outcomes, call_id)


def _judge_shifted(outcomes: dict, call_id: str) -> None:
    rtol = TOLERANCE[calls()[call_id].inputs["W"].dtype][0]
    pattern = calls()[call_id].known["pattern"]
    props.judge_shift_invariant(
        pattern, _loss_and_dW(outcomes, call_id), oracle.expected_loss(call_id), rtol
    )


def _judge_far_below(outcomes: dict, call_id: str) -> None:
    props.judge_far_below(_loss_and_dW(outcomes, call_id), calls()[call_id].known["expected"])


def _judge_reg(outcomes: dict, short: str) -> None:
    inputs = calls()[f"{short}_L1"].inputs
    plain = _loss_and_dW(outcomes, f"{short}_L1z")
    regularized = _loss_and_dW(outcomes, f"{short}_L1")
    props.judge_reg_term(inputs["W"], float(inputs["reg"]), plain, regularized)


def _judge_predict(outcomes: dict, call_id: str) -> None:
    known = calls()[call_id].known
    y_pred = _outputs(outcomes, call_id).get("y_pred")
    props.judge_best_class(y_pred, known["labels"], known["scores"])


def _batches(outcomes: dict, call_id: str, tag: str) -> list[list[int]]:
    """The rows of X each recorded minibatch holds (judged whole rows with own labels)."""
    outputs, a = _outputs(outcomes, call_id), calls()[call_id].inputs
    iters, B, D = int(a["num_iters"]), int(a["batch_size"]), a["X"].shape[1]
    X_batches = _array(outputs, f"X_batches{tag}", (iters, B, D))
    y_batches = _array(outputs, f"y_batches{tag}", (iters, B), "iu")
    pairs = zip(X_batches, y_batches, strict=True)
    return [props.batch_indices(a["X"], a["y"], Xb, yb, B) for Xb, yb in pairs]


def _judge_whole_rows(outcomes: dict, call_id: str) -> None:
    outputs, a = _outputs(outcomes, call_id), calls()[call_id].inputs
    for name in ("X", "y"):
        after = _array(outputs, f"{name}_after", a[name].shape, "fiu")
        props.judge_unchanged("train", name, a[name], after)
    _batches(outcomes, call_id, "")


def _judge_uniform(outcomes: dict, call_id: str) -> None:
    props.judge_uniform(_batches(outcomes, call_id, ""), len(calls()[call_id].inputs["X"]))


def _judge_seeded(outcomes: dict, call_id: str) -> None:
    runs = [_batches(outcomes, call_id, t) for t in ("", "_again", "_other", "_preset")]
    props.judge_seeded(*runs)


def _judge_global_random(outcomes: dict, call_id: str) -> None:
    draws = _array(_outputs(outcomes, call_id), "np_draws", (3,))
    np_seed = int(calls()[call_id].inputs["np_seed"])
    props.judge_global_random_untouched(np.random.RandomState(np_seed).random_sample(3), draws)


def _judge_update(outcomes: dict, call_id: str) -> None:
    a = calls()[call_id].inputs
    W = _array(_outputs(outcomes, call_id), "W", a["W0"].shape)
    props.judge_update(a["W0"], W, a["grads"].astype(np.float64).sum(0), float(a["lr"]))


def _judge_grid(outcomes: dict, call_id: str) -> None:
    """The batched step against solo training: by the reference ``Softmax.train``, or
    by the submission's own (whose draws a correct batched step follows)."""
    a, outputs = calls()[call_id].inputs, _outputs(outcomes, call_id)
    configs = [(float(lr), float(reg)) for lr, reg in a["configs"]]
    reference = oracle.reference_solo(call_id)
    C, K = reference.shape[1] // len(configs), len(configs)
    split = [reference[:, k * C : (k + 1) * C] for k in range(K)]
    W_all = outputs.get("W_all")
    own = outputs.get("W_solo")
    try:
        props.judge_together(W_all, split, configs, a["X"].dtype)
    except props.Failed:
        if own is None or own.shape != reference.shape or own.dtype != a["X"].dtype:
            raise
        props.judge_together(W_all, [own[:, k * C : (k + 1) * C] for k in range(K)],
                             configs, a["X"].dtype)  # fmt: skip
    bar_n = _array(outputs, "bar_n", (), "iuf")
    props.judge_bar(float(bar_n), K, int(a["num_iters"]))


# CPU seconds the big call may take beyond a bare interpreter with numpy: importing the
# submission's cs231n and the call take about 0.15 s when vectorized, a Python loop over
# vectorized_BIG's 100,000 rows 1 s and more.
LOOP_CPU = 0.5


def _judge_no_loop(outcomes: dict, call_id: str) -> None:
    """Loops alone: the call must finish (with any outputs) within LOOP_CPU."""
    _outputs(outcomes, call_id)
    if outcomes[call_id].cpu is not None and outcomes[call_id].cpu > LOOP_CPU:
        raise _Bad("many examples take as long as a Python loop over them would")


Judge = Callable[[dict], None]
BASE = [("L0", "reg 0"), ("L1", "many classes"), ("L2", "one example"), ("L3", "absent classes")]
SHIFT_LABELS = {"apart": "rows' scores 1000s apart", "down": "every row's scores near -1500",
                "up": "every row's scores near +1500"}  # fmt: skip


def item_cases() -> dict[str, list[tuple[str, list[str], Judge]]]:
    """For each code item: its cases as (label, the calls it reads, judge)."""

    def on(judge: Callable, *args: str) -> Judge:
        return lambda outcomes: judge(outcomes, *args)

    cases: dict[str, list] = {}
    for short in LOSS_FNS:
        base = [(label, f"{short}_{k}") for k, label in BASE]
        cases[f"{short}_loss"] = [(lb, [c], on(_judge_close, c, "loss")) for lb, c in base]
        cases[f"{short}_gradient"] = [(lb, [c], on(_judge_close, c, "dW")) for lb, c in base]
        cases[f"{short}_stability"] = [
            (SHIFT_LABELS[pattern], [f"{short}_{k}"], on(_judge_shifted, f"{short}_{k}"))
            for k, (pattern, _) in SHIFTED.items()
        ] + [
            (
                "true class 1000 below the best",
                [f"{short}_S2"],
                on(_judge_far_below, f"{short}_S2"),
            )
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
    both = ["sample_Q0", "sample_Q1"]

    def each(judge: Callable) -> Judge:
        return lambda outcomes: [judge(outcomes, c) for c in both]

    cases["train_sampling"] = [
        ("whole rows with their labels, batch_size above N", ["sample_Q0"],
         on(_judge_whole_rows, "sample_Q0")),
        ("whole rows with their labels, float32", ["sample_Q1"],
         on(_judge_whole_rows, "sample_Q1")),
        ("uniformly, with replacement", both, each(_judge_uniform)),
        ("seeded and drawn from train's rng", both, each(_judge_seeded)),
        ("global np.random untouched", both, each(_judge_global_random)),
    ]  # fmt: skip
    cases["train_update"] = [
        ("float64", ["update_U0"], on(_judge_update, "update_U0")),
        ("float32", ["update_U1"], on(_judge_update, "update_U1")),
    ]
    cases["predict"] = [
        ("float64, 7 classes, near-ties", ["predict_P0"], on(_judge_predict, "predict_P0")),
        ("float32, 2 classes", ["predict_P1"], on(_judge_predict, "predict_P1")),
        ("one row", ["predict_P2"], on(_judge_predict, "predict_P2")),
        ("scores near 1000", ["predict_P3"], on(_judge_predict, "predict_P3")),
        ("scores near -1000", ["predict_P4"], on(_judge_predict, "predict_P4")),
    ]
    cases["grid_search"] = [
        ("float64", ["grid_G0"], on(_judge_grid, "grid_G0")),
        ("float32", ["grid_G1"], on(_judge_grid, "grid_G1")),
        ("scores in the thousands", ["grid_G2"], on(_judge_grid, "grid_G2")),
    ]
    return cases


def grade_item(item: Item, cases: list, outcomes: dict) -> TestResult:
    """Judge one item's cases: points in proportion to the cases passed."""
    failures = []
    for label, _, judge in cases:
        try:
            judge(outcomes)
        except _Bad as bad:
            failures.append(f"- {label}: {bad}")
        except props.Failed as failed:  # its summary: the mistake, not the inputs
            failures.append(f"- {label}: {failed.summary}")
    passed = len(cases) - len(failures)
    status = worst(outcomes[c].status for _, ids, _ in cases for c in ids if c in outcomes)
    output = f"{passed} of {len(cases)} hidden cases passed."
    if not item.graded:
        output += " This optional step is not graded."
    if failures:
        output += "\n" + "\n".join(failures)
    hint = f'Run check("{item.check}") in the notebook.' if item.check and failures else ""
    score = item.points * passed / len(cases)
    return TestResult(item.name, score, item.points, output, item.visibility, status, hint)


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
    cases = item_cases()
    rubric = [i for i in code_items() if items is None or i.name in set(items)]
    unknown = [i.name for i in rubric if i.name not in cases]
    if unknown:
        raise ValueError(f"rubric items without hidden cases: {unknown}; add them to judging.py")
    wanted = sorted({c for item in rubric for _, ids, _ in cases[item.name] for c in ids})
    outcomes, _, _ = runner.run_calls(workdir, run, [calls()[c] for c in wanted if c != BIG])
    if BIG in wanted:
        runner.time_big(workdir, run, outcomes)
    return [grade_item(item, cases[item.name], outcomes) for item in rubric]
