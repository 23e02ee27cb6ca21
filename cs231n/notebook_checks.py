"""Checks for the notebook's steps: the loss before its gradient, and the notebook's own cells.

``check(name, **values)`` runs one of them and prints one line, ``PASS <name>: ...`` or
``FAIL <name>: <problem>: <hint>``, and returns True or False. Names this module does not
know go on to :func:`cs231n.checks.check` (the checks of the functions in ``cs231n/``).

- ``naive_loss_only``: the loss of ``softmax_loss_naive`` (its dW is not looked at yet):
  log C at W = 0, the right value on scores whose probabilities are known, and the
  penalty ``reg * sum(W**2)`` added exactly.
- ``naive_loss_stable``: the same loss for rows lifted by 1000 and rows lowered by 1000,
  a true class that scores 1000 below the best, and float32 scores past float32's
  ``exp`` limit.
- ``inline_question_2``: the numbers of the experiment after inline question 2.
- ``hyperparameter_search``: the tuning loop's ``results``, ``best_val`` and
  ``best_softmax``, measured against ``grid_search``, an accuracy bar and the grid's edges.

``CHECKS`` maps each name to a function that takes the notebook's values as keyword
arguments and returns ``(passed, message)``.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Sequence

import numpy as np

from . import tuning as _tuning
from .classifiers import softmax as _softmax

__all__ = ["BARS", "CHECKS", "CheckFailed", "check", "search_parts"]

# The validation accuracy a tuned model should reach, by dataset, and the training-set
# size it applies from (a smaller CIFAR-10 folder has no bar). Measured from the reference
# solution: 0.833 on the bundled data with a 3 x 3 grid, where the first run's setting
# reaches 0.806; 0.36 on CIFAR-10 is CS231n's bar (2026 edition of assignment 1).
BARS: dict[str, tuple[int, float]] = {"fashion-mnist": (7000, 0.815), "cifar10": (49000, 0.36)}


class CheckFailed(Exception):
    """A check found a problem; the message says what and how to fix it."""


_Fail = CheckFailed


def check(name: str, **values: object) -> bool:
    """Run the check ``name`` on the notebook's ``values``; print PASS or FAIL, return it.

    Parameters
    ----------
    name : a key of ``CHECKS``, or any name :func:`cs231n.checks.check` knows
        (``"softmax_loss_naive"``, ``"train"``, ...).
    **values : what the check needs from the notebook, by name (see each check).

    Returns
    -------
    passed : True when every test of the check passed.
    """
    if name not in CHECKS:
        from . import checks  # imported here: cs231n.checks may import this module

        return checks.check(name, **values) if values else checks.check(name)
    try:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            passed, message = CHECKS[name](**values)
    except NotImplementedError as stub:
        passed, message = False, f"not implemented yet: {stub}"
    except TypeError as error:
        passed, message = False, f"{error}: pass the values the cell names"
    except Exception as error:  # the student's code crashed: say what, not a traceback
        passed, message = False, f"your code raised {type(error).__name__}: {error}"
    print(f"{'PASS' if passed else 'FAIL'} {name}: {message}")
    return passed


def _outcome(test: Callable[..., str], **values: object) -> tuple[bool, str]:
    """(True, summary) when ``test`` returns, (False, its message) when it raises _Fail."""
    try:
        return True, test(**values)
    except _Fail as problem:
        return False, str(problem)


# --- the loss of softmax_loss_naive, before its gradient --------------------------------

_N, _C = 12, 10


def _naive_loss(W: np.ndarray, X: np.ndarray, y: np.ndarray, reg: float) -> float:
    """The loss softmax_loss_naive returns, as a float; its dW is not looked at."""
    copies = (W.copy(), X.copy(), y.copy())
    out = _softmax.softmax_loss_naive(W, X, y, reg)
    if any(not np.array_equal(a, b) for a, b in zip((W, X, y), copies, strict=True)):
        raise _Fail("softmax_loss_naive changed W, X or y in place: work on new arrays")
    if not isinstance(out, tuple) or len(out) != 2:
        raise _Fail(f"returned {type(out).__name__}, expected a pair (loss, dW)")
    if np.ndim(out[0]) != 0:
        raise _Fail(f"loss has shape {np.shape(out[0])}: it should be one number, a mean")
    return float(out[0])


def _scores_problem(shift: float, seed: int = 17) -> tuple[np.ndarray, ...]:
    """W = I and X = scores, so X @ W == scores exactly, with softmax probabilities P:
    scores = log P + a constant per row, drawn from [-shift, shift]."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(_C), size=_N)
    y = rng.permutation(np.arange(_N) % _C)
    scores = np.log(P) + rng.uniform(-shift, shift, (_N, 1))
    return np.eye(_C), scores, y, P


def _loss_at_zero() -> None:
    X = np.random.default_rng(231).standard_normal((_N, 5))
    y = np.arange(_N) % _C
    loss = _naive_loss(np.zeros((5, _C)), X, y, 0.0)
    expected = math.log(_C)
    if np.isclose(loss, expected, rtol=1e-9):
        return
    said = f"loss at W=0 is {loss:.4f}, expected log({_C}) = {expected:.4f}"
    if np.isclose(loss, _N * expected, rtol=1e-9):
        hint = f"it is N = {_N} times too big: average the examples' losses"
    elif np.isclose(loss, expected / _N, rtol=1e-9):
        hint = "only one example counted: add every example's loss (+=), then average"
    elif np.isclose(loss, -expected, rtol=1e-9):
        hint = "the sign is flipped: the loss is minus the log-probability of the true class"
    elif loss == 0:
        hint = "nothing was added to loss: accumulate each example's loss"
    else:
        hint = "check the formula for L_i above the check, term by term"
    raise _Fail(f"{said}: {hint}")


def _loss_on_known_probabilities() -> None:
    W, X, y, P = _scores_problem(shift=3.0)
    loss = _naive_loss(W, X, y, 0.0)
    true = np.array([P[i, label] for i, label in enumerate(y)])
    expected = -np.mean(np.log(true))
    if np.isclose(loss, expected, rtol=1e-9):
        return
    said = (
        f"on scores whose softmax probabilities are known the loss is {loss:.4f}, "
        f"expected {expected:.4f}"
    )
    if np.isclose(loss, -np.mean(np.log(P)), rtol=1e-9):
        hint = "that is the mean over all classes: use only the true class y[i] of each row"
    elif np.isclose(loss, -np.mean(np.log(P.max(axis=1))), rtol=1e-9):
        hint = "that is the loss of each row's best class: use the true class y[i]"
    elif np.isclose(loss, np.mean(1 - true), rtol=1e-6) or np.isclose(
        loss, -np.mean(true), rtol=1e-6
    ):
        hint = "take the log of the true class's probability"
    else:
        hint = "each row's softmax normalises over that row's own C scores"
    raise _Fail(f"{said}: {hint}")


def _penalty() -> None:
    W = np.random.default_rng(5).standard_normal((5, _C))
    X = np.random.default_rng(6).standard_normal((_N, 5))
    y = np.arange(_N) % _C
    reg = 0.3
    added = _naive_loss(W, X, y, reg) - _naive_loss(W, X, y, 0.0)
    expected = reg * np.sum(W * W)
    if np.isclose(added, expected, rtol=1e-9):
        return
    said = f"reg={reg} added {added:.4f} to the loss, expected reg * sum(W**2) = {expected:.4f}"
    if np.isclose(added, 0.0, atol=1e-12):
        hint = "the loss ignores reg: add the penalty"
    elif np.isclose(added, expected / 2, rtol=1e-9):
        hint = "this kit's penalty has no factor 1/2"
    elif np.isclose(added, expected * _N, rtol=1e-9) or np.isclose(added, expected / _N):
        hint = "add the penalty once, after averaging the examples' losses"
    else:
        hint = "the penalty is reg times the sum of the squares of all entries of W"
    raise _Fail(f"{said}: {hint}")


def naive_loss_only() -> tuple[bool, str]:
    """The loss of ``softmax_loss_naive`` (not its dW, which comes later)."""

    def run() -> str:
        _loss_at_zero()
        _loss_on_known_probabilities()
        _penalty()
        return (
            f"loss at W=0 is log({_C}), right on scores with known probabilities, penalty "
            "reg * sum(W**2) added exactly (dW is checked later)"
        )

    return _outcome(run)


def naive_loss_stable() -> tuple[bool, str]:
    """The loss of ``softmax_loss_naive`` stays finite and right for extreme scores."""

    def run() -> str:
        W, X, y, P = _scores_problem(shift=3.0)
        expected = -np.mean([np.log(P[i, label]) for i, label in enumerate(y)])
        lift = np.where(np.arange(_N) % 2 == 0, 1000.0, -1000.0)[:, None]
        loss = _naive_loss(W, X + lift, y, 0.0)
        said = "rows of scores lifted by +1000 and lowered by -1000"
        if not np.isfinite(loss):
            raise _Fail(
                f"the loss is {loss} for {said}: exp overflowed or every term underflowed; "
                "shift each row by that row's own maximum before exponentiating (section 4)"
            )
        if not np.isclose(loss, expected, rtol=1e-9):
            raise _Fail(
                f"the loss is {loss:.4f} for {said}, expected {expected:.4f} as without the "
                "shift: the shift of each row must be that row's own, and it must leave the "
                "probabilities unchanged"
            )
        gap = _naive_loss(np.eye(2), np.array([[1000.0, 0.0]]), np.array([1]), 0.0)
        if not np.isclose(gap, 1000.0, rtol=1e-12):
            raise _Fail(
                f"the loss is {gap} when the true class scores 1000 below the best, expected "
                "1000: p_y underflows to 0 there, so never take the log of p_y itself "
                "(section 4 shows what to compute instead)"
            )
        W32, X32 = np.eye(_C, dtype=np.float32), (X + 100.0).astype(np.float32)
        loss32 = _naive_loss(W32, X32, y, 0.0)
        if not np.isclose(loss32, expected, rtol=1e-4):
            raise _Fail(
                f"the loss is {loss32} on float32 scores near 100, expected {expected:.4f}: "
                "float32's exp overflows above 88.7, so shift the scores in float32 too"
            )
        return (
            f"the loss stays finite and right for {said}, a true class 1000 below the best "
            "and float32 scores near 100"
        )

    return _outcome(run)


# --- inline question 2 -----------------------------------------------------------------


def _numbers(name: str, values: object, n: int) -> list[float]:
    if isinstance(values, np.ndarray):
        values = values.tolist()
    if not isinstance(values, Sequence) or isinstance(values, str) or len(values) != n:
        raise _Fail(f"{name} should be a list of {n} numbers, one per margin; got {values!r}")
    if not all(isinstance(v, numbers.Real) for v in values):
        raise _Fail(f"{name} should hold numbers; got {values!r}")
    return [float(v) for v in values]


def inline_question_2(
    margins: object, svm: object, softmax_log: object, softmax_log1p: object
) -> tuple[bool, str]:
    """The experiment of inline question 2: for scores ``[m, 0, 0]`` with true class 0 and
    each margin ``m``, the SVM loss (Delta = 1) and the softmax loss computed as
    ``log(1 + u)`` and as ``log1p(u)``, with ``u`` the sum of ``exp(s_j - s_y)`` over the
    other classes."""

    def run() -> str:
        if isinstance(margins, np.ndarray):
            given = margins.tolist()
        else:
            given = margins
        if not isinstance(given, Sequence) or not given:
            raise _Fail(f"margins should be a list of numbers, such as [10.0, 40.0]: {margins!r}")
        ms = _numbers("margins", given, len(given))
        svms = _numbers("svm", svm, len(ms))
        logs = _numbers("softmax_log", softmax_log, len(ms))
        log1ps = _numbers("softmax_log1p", softmax_log1p, len(ms))
        for m, got_svm, got_log, got_log1p in zip(ms, svms, logs, log1ps, strict=True):
            u = 2 * math.exp(-m)  # two other classes, each scoring m below the true one
            want_svm = 2 * max(0.0, 1.0 - m)
            if not math.isclose(got_svm, want_svm, abs_tol=1e-12):
                hint = (
                    "the SVM sum runs over the other classes j != y_i only"
                    if math.isclose(got_svm, want_svm + 1.0, abs_tol=1e-12)
                    else "each other class adds max(0, s_j - s_y + 1)"
                )
                raise _Fail(f"margin {m:g}: SVM loss {got_svm!r}, expected {want_svm!r}: {hint}")
            want_log = math.log(1.0 + u)  # as float64 rounds it: exactly 0.0 once 1 + u == 1
            if not math.isclose(got_log, want_log, rel_tol=1e-6, abs_tol=1e-300):
                raise _Fail(
                    f"margin {m:g}: softmax loss through log is {got_log!r}, expected "
                    f"{want_log!r}: compute log(1 + u) in float64, u the sum of "
                    "exp(s_j - s_y) over the other classes"
                )
            if not math.isclose(got_log1p, math.log1p(u), rel_tol=1e-9):
                raise _Fail(
                    f"margin {m:g}: softmax loss through log1p is {got_log1p!r}, expected "
                    f"{math.log1p(u)!r}: compute np.log1p(u)"
                )
        if not any(lg == 0.0 and lp > 0.0 for lg, lp in zip(logs, log1ps, strict=True)):
            raise _Fail(
                "the numbers are right, but no margin shows where the two ways part: "
                "the cell asks for margins 10 and 40"
            )
        return "the SVM and softmax losses of the new example are right at every margin"

    return _outcome(run)


# --- the hyperparameter search -----------------------------------------------------------


def _accuracy(model: object, X: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.asarray(model.predict(X)) == y))


def _grid(results: object) -> tuple[list[float], list[float]]:
    """The grid's learning rates and strengths, sorted; _Fail when results is not one."""
    if not isinstance(results, dict) or not results:
        raise _Fail(
            f"results is {type(results).__name__}, expected a dict with one entry per "
            "configuration, results[(lr, reg)] = (train_acc, val_acc)"
        )
    for key, value in results.items():
        if not (isinstance(key, tuple) and len(key) == 2):
            raise _Fail(f"results has the key {key!r}: keys are pairs (lr, reg)")
        if not (isinstance(value, tuple | list) and len(value) == 2):
            raise _Fail(f"results[{key!r}] is {value!r}: store a pair (train_acc, val_acc)")
        if not all(isinstance(a, numbers.Real) and 0 <= a <= 1 for a in value):
            raise _Fail(f"results[{key!r}] = {value!r}: accuracies are fractions in [0, 1]")
    lrs = sorted({float(lr) for lr, _ in results})
    regs = sorted({float(reg) for _, reg in results})
    missing = [(lr, reg) for lr in lrs for reg in regs if (lr, reg) not in results]
    if missing:
        raise _Fail(
            f"results misses {missing[:3]}: train every pair of the two lists (a full grid)"
        )
    return lrs, regs


def _edge(best: list[tuple[float, float]], lrs: list[float], regs: list[float]) -> str:
    """What is at the grid's edge among the best configurations, or '' when nothing is."""
    for axis, name, values in ((0, "learning rate", lrs), (1, "regularisation strength", regs)):
        if len(values) < 3:
            return (
                f"your grid has {len(values)} {name} value(s); with fewer than 3 the best is "
                "always on an edge: use at least 3 of each, spaced evenly in log"
            )
        for config in best:
            if config[axis] in (values[0], values[-1]):
                side = "smallest" if config[axis] == values[0] else "largest"
                others = len(best) - 1
                tie = f" (tied with {others} other configuration(s))" if others else ""
                return (
                    f"the best validation accuracy is reached at {name} {config[axis]:g}, the "
                    f"{side} of your grid{tie}: the best may lie beyond it; extend the grid "
                    "past it until the best is inside"
                )
    return ""


# Searches are judged in three parts, which the grader scores apart (tools/grade/notebook.py):
# "runs", the accuracies in results are what training each configuration gives; "best",
# best_val and best_softmax are the best of results; "inside", the best lies inside the grid
# and reaches the bar. A retrain function gives, for a configuration (lr, reg), the
# accuracies (train_acc, val_acc) and the weights that training it gives.
Retrain = Callable[[tuple[float, float]], tuple[tuple[float, float], np.ndarray]]
SEARCH_PARTS = ("runs", "best", "inside")


def _best(
    results: dict,
    best_val: object,
    model_val: float | None,
    tolerance: float = 1e-12,
) -> tuple[float, list]:
    """The top validation accuracy and the configurations reaching it; _Fail when
    best_val or the model's validation accuracy ``model_val`` (None: no model) is not it."""
    top = max(val for _, val in results.values())
    best = [config for config, (_, val) in results.items() if val == top]
    if not isinstance(best_val, numbers.Real) or not math.isclose(best_val, top):
        raise _Fail(
            f"best_val is {best_val!r}, but the highest validation accuracy in results "
            f"is {top:.3f}: keep the largest val_acc in best_val"
        )
    if model_val is None:
        raise _Fail("best_softmax is not a trained model: keep the trained model itself")
    if not math.isclose(model_val, top, abs_tol=tolerance):
        raise _Fail(
            f"best_softmax has validation accuracy {model_val:.3f}, but the best in results is "
            f"{top:.3f}: keep the model of the configuration with the highest val_acc "
            "(a new Softmax() for every configuration, so an old model is not changed)"
        )
    return top, best


def _same_weights(W_theirs: object, W_ours: np.ndarray) -> bool:
    """The same run up to rounding: float32 SGD keeps the weights within ~1e-5 of it."""
    theirs = np.asarray(W_theirs, dtype=np.float64)
    ours = np.asarray(W_ours, dtype=np.float64)
    return theirs.shape == ours.shape and bool(
        np.linalg.norm(theirs - ours) <= 1e-2 * np.linalg.norm(ours)
    )


def _runs(
    results: dict,
    configs: list[tuple[float, float]],
    retrain: Retrain,
    n_val: int,
    by: str,
    how: str,
) -> None:
    """results[c] for each of ``configs`` against ``retrain(c)``; _Fail names the first
    configuration whose accuracies differ."""
    tolerance = 2 / n_val + 1e-12  # rounding may move an image or two
    for config in configs:
        theirs, (ours, _) = results[config], retrain(config)
        if any(abs(a - b) > tolerance for a, b in zip(theirs, ours, strict=True)):
            lr, reg = config
            raise _Fail(
                f"for lr {lr:g}, reg {reg:g} your results hold {tuple(theirs)}, but {by} "
                f"trains that configuration to {tuple(ours)}: {how}"
            )


def _model_is_best(best: list, retrain: Retrain, best_W: object, by: str) -> None:
    """best_softmax's weights against a new run of the best configuration."""
    lr, reg = best[0]
    if not _same_weights(best_W, retrain(best[0])[1]):
        raise _Fail(
            f"best_softmax's weights are not those {by} gets for the best configuration, "
            f"lr {lr:g} and reg {reg:g}: keep the model trained for it (a new Softmax() "
            "for every configuration, so an old model is not changed)"
        )


def _inside(
    best: list, lrs: list[float], regs: list[float], top: float, dataset: str, n_train: int
) -> str:
    """Where the best lies, for the PASS line; _Fail when on an edge or below the bar."""
    edge = _edge(best, lrs, regs)
    if edge:
        raise _Fail(edge)
    full, bar = BARS.get(dataset, (0, None))
    if bar is not None and n_train >= full:
        if top < bar:
            raise _Fail(
                f"the best validation accuracy is {top:.3f}, below the bar of {bar} on "
                f"{dataset}: widen the grid or move it towards the best values so far"
            )
        return f", above the bar of {bar}"
    return ""


def search_parts(
    results: object,
    best_val: object,
    model_val: float | None,
    best_W: np.ndarray | None,
    retrain: Retrain,
    n_train: int,
    n_val: int,
    dataset: str,
    every: bool = False,
    by: str = "grid_search",
    how: str = "",
) -> dict[str, tuple[bool, str]]:
    """The search's three parts (``SEARCH_PARTS``), each ``(passed, message)``.

    ``model_val`` is best_softmax's validation accuracy and ``best_W`` its weights (None
    when there is no trained model); ``retrain`` trains one configuration again. ``every``
    checks every configuration's accuracies, not only the best's. A part that needs one
    before it (a valid grid) fails with that one's message.
    """
    try:
        lrs, regs = _grid(results)
    except _Fail as problem:
        return {part: (False, str(problem)) for part in SEARCH_PARTS}
    assert isinstance(results, dict)
    top = max(val for _, val in results.values())
    best = [config for config, (_, val) in results.items() if val == top]
    configs = [best[0], *(c for c in results if c != best[0])] if every else [best[0]]
    parts: dict[str, tuple[bool, str]] = {}
    try:
        _runs(results, configs, retrain, n_val, by, how)
        parts["runs"] = (True, f"{len(configs)} configuration(s) trained again agree")
    except _Fail as problem:
        parts["runs"] = (False, str(problem))
    try:
        _best(results, best_val, model_val, tolerance=2 / n_val + 1e-12)
        _model_is_best(best, retrain, best_W, by)
        parts["best"] = (True, "best_val and best_softmax are the best configuration's")
    except _Fail as problem:
        parts["best"] = (False, str(problem))
    try:
        where = _inside(best, lrs, regs, top, dataset, n_train)
        lr, reg = best[0]
        parts["inside"] = (
            True,
            f"{len(results)} configurations; the best, lr {lr:g} and reg {reg:g}, lies inside "
            f"the grid with validation accuracy {top:.3f}{where}",
        )
    except _Fail as problem:
        parts["inside"] = (False, str(problem))
    return parts


def hyperparameter_search(
    results: object,
    best_val: object,
    best_softmax: object,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    dataset: str = "",
    num_iters: int = 1500,
    seed: int = 0,
) -> tuple[bool, str]:
    """The tuning loop: ``results[(lr, reg)] = (train_acc, val_acc)`` for a full grid,
    ``best_val`` its highest validation accuracy and ``best_softmax`` that model. The best
    configuration is trained again with ``grid_search`` (same ``num_iters`` and ``seed``),
    which must give the same accuracies; the best must lie inside the grid (no tied best on
    an edge) and reach the dataset's bar in ``BARS``."""

    def run() -> str:
        lrs, regs = _grid(results)
        trained = hasattr(best_softmax, "predict") and getattr(best_softmax, "W", None) is not None
        if not trained:
            raise _Fail(f"best_softmax is {best_softmax!r}: keep the trained model itself")
        top, best = _best(results, best_val, _accuracy(best_softmax, X_val, y_val))

        trained_again: dict = {}  # the best configuration's run, made once

        def retrain(config: tuple[float, float]) -> tuple[tuple[float, float], np.ndarray]:
            if config in trained_again:
                return trained_again[config]
            again, model = _tuning.grid_search(
                X_train,
                y_train,
                X_val,
                y_val,
                [config[0]],
                [config[1]],
                num_iters=num_iters,
                seed=seed,
            )
            trained_again[config] = again[config], model.W
            return trained_again[config]

        how = (
            f"train each configuration with a new Softmax() and seed={seed}, "
            f"num_iters={num_iters}, and measure the accuracies with predict on the whole "
            "training and validation splits"
        )
        _runs(results, [best[0]], retrain, len(y_val), "grid_search", how)
        _model_is_best(best, retrain, best_softmax.W, "grid_search")
        where = _inside(best, lrs, regs, top, dataset, len(y_train))
        lr, reg = best[0]
        return (
            f"{len(results)} configurations; the best, lr {lr:g} and reg {reg:g}, lies inside "
            f"the grid with validation accuracy {top:.3f}{where}; grid_search agrees"
        )

    return _outcome(run)


CHECKS: dict[str, Callable[..., tuple[bool, str]]] = {
    "naive_loss_only": naive_loss_only,
    "naive_loss_stable": naive_loss_stable,
    "inline_question_2": inline_question_2,
    "hyperparameter_search": hyperparameter_search,
}
