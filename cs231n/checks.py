"""Self-checks for the TODOs: run ``check("softmax_loss_naive")`` in a notebook cell, or
``python -m cs231n.checks`` for all of them (``python -m cs231n.checks train`` for one).

Checks, by name:

- ``softmax_loss_naive``: ``softmax_loss_naive`` in classifiers/softmax.py
- ``softmax_loss_vectorized``: ``softmax_loss_vectorized`` in the same file
- ``train``: both TODOs of ``LinearClassifier.train`` in classifiers/linear_classifier.py
- ``predict``: ``LinearClassifier.predict`` in the same file
- ``grid_search``: the optional batched step ``train_together`` in tuning.py (not
  graded). It passes while that block still raises NotImplementedError (grid_search
  then trains the configurations one by one); once written, every configuration must
  end with the weights of ``Softmax().train`` with the same seed

The notebook's own checks (``check("hyperparameter_search", results=..., ...)``) live in
``notebook_checks.py``; ``check`` hands them the values you pass.

Each check prints one line, ``PASS <name>: ...`` or ``FAIL <name>: <problem>: <hint>``,
and returns True or False. The checks do not contain the solution: they compare your
code with facts that hold for any correct one (``_properties.py`` states each once):

- the loss: log C at W = 0; minus the mean log-probability of the true classes on
  scores built to have known softmax probabilities; a gradient equal to the numerical
  one, with and without reg; reg * sum(W**2) added exactly, and 2 * reg * W to dW; the
  same loss when rows' scores all move up or down by 1000s; the closed-form loss when
  the true class scores 1000 below the best; float32 in, float32 dW out; W, X and y
  left unchanged; the vectorized one reads no rows one at a time;
- ``train``: minibatches of whole rows with their own labels, drawn uniformly with
  replacement from ``rng`` (the same seed repeats them, another seed changes them, the
  global ``np.random`` is not touched); every step is exactly ``W - learning_rate * grad``
  (on a stand-in loss whose gradient is known); float32 W stays float32;
- ``predict``: the class with the highest score, as integers, also for scores near
  +-1000 and for near-ties;
- ``grid_search``: the batched step gives the models your own ``Softmax.train`` gives.

All data are seeded, so the output is the same on every run.
"""

from __future__ import annotations

import importlib
import sys
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

from ._deps import require_packages

require_packages(exit=__name__ == "__main__")  # first: one message naming all that is missing

import numpy as np  # noqa: E402

from . import _properties as props  # noqa: E402
from . import tuning as _tuning  # noqa: E402
from ._loss_checks import (  # noqa: E402
    _C,
    _D,
    _N,
    _REG,
    _call,
    _check_float32,
    _check_gradient,
    _check_known_loss,
    _check_loss_at_zero,
    _known_probabilities,  # noqa: F401 - the tests read it here
    _problem,
    _row_reads,
    _unchanged,
)
from .classifiers import linear_classifier as _linear  # noqa: E402
from .classifiers import softmax as _softmax  # noqa: E402

__all__ = ["CHECKS", "check", "main"]

_Fail = props.Failed


def check(name: str, **values: object) -> bool:
    """Run the self-check ``name``, print PASS or FAIL with a hint, return whether it passed.

    Parameters
    ----------
    name : one of ``"softmax_loss_naive"``, ``"softmax_loss_vectorized"``, ``"train"``,
        ``"predict"``, ``"grid_search"`` (the optional exercise in tuning.py), or the name
        of a notebook check in ``cs231n/notebook_checks.py``.
    **values : the notebook's values a notebook check needs (``results=results``, ...);
        the function checks take none.

    Returns
    -------
    passed : True when the code passed every test of the check.

    Raises
    ------
    ValueError
        For a name that is no check, listing the names there are.
    """
    if name not in CHECKS:
        notebook = _notebook_checks()
        if name not in notebook:
            known = ", ".join([*CHECKS, *notebook])
            raise ValueError(f"no check named {name!r}; choose one of {known}")
        return _run_notebook_check(name, notebook[name], values)
    if values:
        raise TypeError(f"check({name!r}) takes no values; it imports the code it checks")
    try:
        # Broken code may overflow on purpose-made inputs; the check reports that itself.
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = CHECKS[name]()
    except _Fail as problem:
        print(f"FAIL {name}: {problem}")
        return False
    except NotImplementedError as stub:
        print(f"FAIL {name}: not implemented yet: {stub}")
        return False
    except Exception as error:  # the student's code crashed: say where, not a traceback
        print(f"FAIL {name}: your code raised {type(error).__name__}: {error}{_where(error)}")
        return False
    print(f"PASS {name}: {summary}")
    return True


def _notebook_checks() -> dict[str, Callable[..., tuple[bool, str]]]:
    """``cs231n.notebook_checks.CHECKS``, or none when that module is not there."""
    try:
        module = importlib.import_module(f"{__package__}.notebook_checks")
    except ModuleNotFoundError as missing:
        if missing.name != f"{__package__}.notebook_checks":
            raise
        return {}
    return dict(module.CHECKS)


def _run_notebook_check(name: str, function: Callable, values: dict) -> bool:
    try:
        passed, message = function(**values)
    except TypeError as error:  # a value missing or misnamed in the notebook's call
        print(f"FAIL {name}: {error}: pass the values it names, e.g. check({name!r}, x=x)")
        return False
    except Exception as error:
        print(f"FAIL {name}: your code raised {type(error).__name__}: {error}{_where(error)}")
        return False
    print(f"{'PASS' if passed else 'FAIL'} {name}: {message}")
    return bool(passed)


def _where(error: Exception) -> str:
    """Where in cs231n/ (outside the checks) the error was raised: ' (in f, file line n)'."""
    package = Path(__file__).resolve().parent
    ours = {Path(__file__).resolve(), Path(props.__file__).resolve()}
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if Path(f.filename).resolve().is_relative_to(package)
        and Path(f.filename).resolve() not in ours
    ]
    if not frames:
        return ""
    frame = frames[-1]
    return f" (in {frame.name}, {Path(frame.filename).name} line {frame.lineno})"


# --- softmax loss -------------------------------------------------------------------------


def _check_regularization(loss_fn: Callable) -> None:
    W, X, y = _problem()
    props.judge_reg_term(W, _REG, _call(loss_fn, W, X, y, 0.0), _call(loss_fn, W, X, y, _REG))


def _check_large_scores(loss_fn: Callable) -> None:
    """Rows whose scores all move by +-1000s (a bias column) must not change the result;
    nor may a true class that scores 1000 below the best give inf."""
    W, X, y = _problem()
    unshifted = _call(loss_fn, W, X, y, 0.0)
    base = {"W": W, "X": X}
    for pattern in ("up", "down", "apart"):
        big = props.shifted_rows(base, props.offsets(pattern, _N))
        props.judge_shift_invariant(pattern, _call(loss_fn, big["W"], big["X"], y, 0.0), unshifted)
    far, expected = props.far_below_problem(seed=29, N=8, C=5)
    props.judge_far_below(_call(loss_fn, far["W"], far["X"], far["y"], 0.0), expected)


def _check_softmax_loss(loss_fn: Callable) -> None:
    _check_loss_at_zero(loss_fn)
    _check_known_loss(loss_fn)
    _check_gradient(loss_fn, reg=0.0)
    _check_regularization(loss_fn)
    _check_gradient(loss_fn, reg=_REG)
    _check_large_scores(loss_fn)
    _check_float32(loss_fn)


def _check_naive() -> str:
    _check_softmax_loss(_softmax.softmax_loss_naive)
    return (
        f"loss at W=0 is log({_C}), gradient matches the numerical one with and without "
        "reg, stable at huge scores"
    )


def _check_vectorized() -> str:
    loss_fn = _softmax.softmax_loss_vectorized
    _check_softmax_loss(loss_fn)
    if _row_reads(loss_fn, 2 * _N) > _row_reads(loss_fn, _N):
        raise _Fail(
            "reads rows one at a time, more for more examples: a Python loop over the "
            "examples? Work on the whole (N, C) score matrix at once"
        )
    W, X, y = _problem()
    loss64, _ = _call(loss_fn, W, X, y, _REG)
    try:
        naive = _call(_softmax.softmax_loss_naive, W, X, y, _REG)
    except Exception:
        naive = None  # the naive version is checked on its own; compare only if it runs
    if naive is not None and not np.isclose(naive[0], loss64, rtol=1e-9):
        raise _Fail(
            f"loss {loss64:.6f} differs from softmax_loss_naive's {naive[0]:.6f}: "
            'see which of check("softmax_loss_naive") and this check fails first'
        )
    return (
        f"loss at W=0 is log({_C}), gradient matches the numerical one with and without "
        "reg, stable at huge scores, no loop over examples, float32 stays float32"
    )


# --- LinearClassifier.train ---------------------------------------------------------------


class _Bowl(_linear.LinearClassifier):
    """A stand-in loss ``0.5 * ||W - W_star||**2`` that records every call.

    Its gradient is ``W - W_star``. It ignores reg (the real loss adds it to the
    gradient itself), so every update must be exactly ``W - learning_rate * grad``.
    W starts as None, so train() draws the starting W from rng, as for a new Softmax.
    """

    def __init__(self, W_star: np.ndarray) -> None:
        super().__init__()
        self.W_star = W_star
        self.batches: list[tuple[object, object]] = []
        self.steps: list[tuple[np.ndarray, np.ndarray]] = []  # (W, grad) at each call

    def loss(self, X_batch: object, y_batch: object, reg: float) -> tuple[float, np.ndarray]:
        self.batches.append((X_batch, y_batch))
        diff = self.W - self.W_star
        self.steps.append((self.W.copy(), diff.copy()))
        return 0.5 * float(np.sum(diff * diff)), diff.copy()


_LR, _BOWL_REG = 0.1, 0.5


def _bowl_run(seed: int, num_iters: int, batch_size: int, dtype: type = np.float64,
              preset: bool = False):  # fmt: skip
    """Train a _Bowl on a small seeded problem (``preset``: from an existing W, so that
    train draws nothing for W first); the global np.random state is kept."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((_N, _D)).astype(dtype)
    y = rng.permutation(np.arange(_N) % 3)
    model = _Bowl(W_star=rng.standard_normal((_D, 3)).astype(dtype))
    if preset:
        model.W = np.zeros((_D, 3), dtype)
    verify = _unchanged("train", X=X, y=y)
    # The legacy global state is what a stray np.random call would use, so watch it.
    global_state = np.random.get_state()  # noqa: NPY002
    try:
        history = model.train(
            X, y, _LR, _BOWL_REG, num_iters=num_iters, batch_size=batch_size, seed=seed
        )
        after = np.random.get_state()  # noqa: NPY002
    finally:
        np.random.set_state(global_state)  # noqa: NPY002  (leave the caller's state as it was)
    verify()
    props.judge_global_random_untouched(
        np.append(global_state[1], global_state[2]), np.append(after[1], after[2])
    )
    return X, y, model, history


def _indices(seed: int, num_iters: int, batch_size: int, preset: bool = False) -> list:
    X, y, model, _ = _bowl_run(seed, num_iters, batch_size, preset=preset)
    return [props.batch_indices(X, y, *batch, batch_size) for batch in model.batches]


def _check_sampling(batch_size: int, num_iters: int) -> _Bowl:
    try:
        X, y, model, history = _bowl_run(0, num_iters, batch_size)
    except ValueError as error:
        if "replace" in str(error):
            raise _Fail(
                f"batch_size={batch_size} with N={_N} examples raised ({error}): sample "
                "with replacement"
            ) from error
        raise
    if len(model.batches) != num_iters or len(history) != num_iters:
        raise _Fail(f"num_iters={num_iters} gave {len(history)} losses: one per iteration")
    drawn = [props.batch_indices(X, y, *batch, batch_size) for batch in model.batches]
    props.judge_uniform(drawn, _N)
    props.judge_seeded(
        drawn,
        _indices(0, num_iters, batch_size),
        _indices(1, num_iters, batch_size),
        _indices(0, num_iters, batch_size, preset=True),
    )
    # Fewer rows than N per batch: a sample without replacement shows as no repeats.
    props.judge_uniform(_indices(2, 4 * num_iters, _N // 2), _N)
    return model


def _check_update(model: _Bowl) -> None:
    after = [W for W, _ in model.steps[1:]] + [model.W]
    for (W, grad), new in zip(model.steps, after, strict=True):
        props.judge_update(W, new, grad, _LR)


def _check_train() -> str:
    batch_size, num_iters = 2 * _N, 100  # batch_size > N: only sampling with replacement works
    _check_update(_check_sampling(batch_size, num_iters))
    X32, y32, model32, _ = _bowl_run(0, 3, batch_size, dtype=np.float32)
    for X_batch, y_batch in model32.batches:
        props.batch_indices(X32, y32, X_batch, y_batch, batch_size)
    _check_update(model32)
    return (  # the notebook's stored output shows this line: keep it as it is
        "minibatches of batch_size rows with their labels, drawn with the seeded rng; "
        "the update steps down the gradient by learning_rate"
    )


# --- LinearClassifier.predict -------------------------------------------------------------

_LIFTS = (0.0, 1000.0, -1000.0)  # then scores near +-1000, where np.exp over- or underflows


def _predict_problem(lift: float) -> tuple[np.ndarray, ...]:
    """W (6, 4), X (N, 6) and labels with ``X @ W == scores``, each row's best class known
    (every second one only 0.001 ahead of the next), the scores near ``lift``."""
    inputs, labels, scores = props.best_class_problem(5, _N, 6, 4, lift=lift)
    return inputs["W"], inputs["X"], labels, scores


def _check_predict() -> str:
    for lift in _LIFTS:
        W, X, labels, scores = _predict_problem(lift)
        model = _linear.Softmax()
        model.W = W
        verify = _unchanged("predict", X=X, W=W)
        y_pred = model.predict(X)
        verify()
        props.judge_best_class(y_pred, labels, scores)
    return "one integer label per row, the class with the highest score"


# --- grid_search's batched step (optional) ------------------------------------------------

_GRID = [(0.05, 0.0), (0.05, 0.3), (0.2, 0.0), (0.2, 0.3)]  # (lr, reg) of the K models
_GRID_ITERS, _GRID_BATCH, _GRID_SEED = 10, 8, 3
_NOT_WRITTEN = (
    "optional batched step not written; grid_search trains the configurations one by one"
)


class _Bar:
    """Stands in for the tqdm bar: counts what ``bar.update(n)`` adds up to."""

    def __init__(self) -> None:
        self.n = 0

    def update(self, n: int = 1) -> None:
        self.n += n


def _together(X: np.ndarray, y: np.ndarray, num_iters: int) -> tuple[np.ndarray, _Bar]:
    bar = _Bar()
    C = int(y.max()) + 1
    W_all = _tuning.train_together(X, y, _GRID, C, num_iters, _GRID_BATCH, _GRID_SEED, bar)
    return W_all, bar


def _solo(X: np.ndarray, y: np.ndarray, lr: float, reg: float, num_iters: int) -> np.ndarray:
    model = _linear.Softmax()
    model.train(X, y, lr, reg, num_iters, _GRID_BATCH, seed=_GRID_SEED)
    return model.W


def _misconfigurations(configs: list[tuple[float, float]], lr: float, reg: float, B: int):
    """(lr, reg) that Softmax.train would need to give a model trained with a typical
    mistake, and the hint that names it."""
    found = []
    for lr_j in sorted({c[0] for c in configs} - {lr}):
        found.append((lr_j, reg, f"it trained with learning rate {lr_j:g}, another model's: "
                      "each model's C columns step with its own learning rate"))  # fmt: skip
    if reg:
        hint = "it trained as if reg were 0: add each model's own 2 * reg * W to its gradient"
        found.append((lr, 0.0, hint))
    for reg_j in sorted({c[1] for c in configs} - {reg, 0.0}):
        hint = f"it trained with reg {reg_j:g}, another model's: each model has its own reg"
        found.append((lr, reg_j, hint))
    if reg:
        rule = "the gradient of reg * sum(W**2) is 2 * reg * W"
        found.append((lr, reg / 2, f"the reg term of the gradient is half: {rule}"))
        found.append((lr, 2 * reg, f"the reg term of the gradient is doubled: {rule}"))
    # Scaling the data term by B is the same step as lr * B with reg / B.
    hint = f"the gradient is batch_size = {B} times too big: average it over the minibatch"
    found.append((lr * B, reg / B, hint))
    hint = f"the gradient is batch_size = {B} times too small: divide by batch_size only once"
    found.append((lr / B, reg * B, hint))
    return found


def _judge_against_solo(X: np.ndarray, y: np.ndarray, W_all: object, num_iters: int) -> None:
    def diagnose(W: np.ndarray, lr: float, reg: float) -> str | None:
        """Name the mistake when W is what Softmax.train gives with other hyperparameters."""
        for lr_j, reg_j, hint in _misconfigurations(_GRID, lr, reg, _GRID_BATCH):
            W_j = _solo(X, y, lr_j, reg_j, num_iters)
            if np.linalg.norm(W - W_j) <= 1e-6 * np.linalg.norm(W_j):
                return hint
        return None

    solos = [_solo(X, y, lr, reg, num_iters) for lr, reg in _GRID]
    props.judge_together(W_all, solos, _GRID, X.dtype, diagnose)


def _check_grid_search() -> str:
    X, y = props.grid_problem(11, _N, _D, 3)
    K = len(_GRID)
    try:
        W_all, bar = _together(X, y, _GRID_ITERS)
    except NotImplementedError:  # grid_search falls back to Softmax.train; nothing to check
        return _NOT_WRITTEN
    props.judge_together_shape(W_all, _D, 3, K)
    if not np.array_equal(_together(X, y, _GRID_ITERS)[0], W_all):
        raise _Fail(
            "two runs with the same seed gave different weights: draw each minibatch with "
            "rng, the generator seeded with seed, not with np.random"
        )
    # The oracle is your Softmax.train: it has to be right before it can judge.
    for name, prerequisite in (
        ("softmax_loss_vectorized", _check_vectorized),
        ("train", _check_train),
    ):
        try:
            prerequisite()
        except Exception as error:
            raise _Fail(
                f'this check compares with your Softmax.train, but check("{name}") does not '
                "pass yet: make it pass first"
            ) from error
    if np.array_equal(W_all, np.tile(_solo(X, y, 1.0, 0.0, 0), (1, K))):
        raise _Fail(
            "W_all never changed: step W_all itself, every model's columns, each iteration"
        )
    _judge_against_solo(X, y, W_all, _GRID_ITERS)
    X_big, _ = props.grid_problem(11, _N, _D, 3, scale=1e6)  # initial scores in the thousands
    _judge_against_solo(X_big, y, _together(X_big, y, 1)[0], 1)
    X32, _ = props.grid_problem(11, _N, _D, 3, dtype=np.float32)
    _judge_against_solo(X32, y, _together(X32, y, _GRID_ITERS)[0], _GRID_ITERS)
    props.judge_bar(bar.n, K, _GRID_ITERS)
    return (
        f"each of {K} configurations ends with the weights of Softmax().train with the "
        "same seed, in float64 and float32; stable at huge scores; the bar advances K per step"
    )


CHECKS: dict[str, Callable[[], str]] = {
    "softmax_loss_naive": _check_naive,
    "softmax_loss_vectorized": _check_vectorized,
    "train": _check_train,
    "predict": _check_predict,
    "grid_search": _check_grid_search,  # last: optional, and its oracle is Softmax.train
}


def main(argv: list[str] | None = None) -> int:
    """Run the named checks (all by default); exit status 1 if any fails."""
    names = sys.argv[1:] if argv is None else argv
    unknown = [n for n in names if n not in CHECKS]
    if unknown:
        print(f"unknown check {unknown[0]!r}; choose from {', '.join(CHECKS)}", file=sys.stderr)
        return 2
    results = [check(name) for name in names or CHECKS]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
