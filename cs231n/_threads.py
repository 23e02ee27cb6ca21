"""How many BLAS threads the kit's training loops use: as many as help, one when cores are busy.

SGD multiplies small matrices (a 200-row minibatch by a (D, C) W) thousands of times.
A second BLAS thread makes these products a little faster on an idle machine, but
OpenBLAS threads busy-wait for each other, so when other processes share the cores each
product waits for a thread that is not running: training with two threads became 7x
slower next to two busy processes, against 1.5x with one thread (measured with
``make bench``'s busy-machine rows).

Neither count suits both cases, and which case holds can change during a run, so the
loops time themselves. :func:`adaptive_blas_threads` wraps a loop of similar steps and
:func:`tick` marks the end of each step. Every so often the loop runs a few steps with
one thread and a few with the user's count, then keeps the faster for a while (fewer
threads must win by a margin, so an idle machine keeps its usual count). The probes
fall at fixed step numbers, so on a steady machine two runs make the same choices.
A count other than the usual one can change the last bits of the products' rounding.

On a shared machine the CPUs a process may use are fewer than those it can see: a container's
CPU quota (cgroup v2's ``cpu.max``, v1's ``cpu.cfs_quota_us``) lets thirty students share a
node's cores. :func:`usable_cpus` takes the quota into account, and the usual count is
never more than it, so a quota of one CPU means one BLAS thread.

The limit holds only inside the kit's calls: on leaving, every BLAS library gets back
the thread count it had, also after an exception. BLAS thread counts are per process,
so two threads of one program training at once would share (and fight over) one limit.
"""

from __future__ import annotations

import contextlib
import math
import os
import time
from collections.abc import Generator, Iterator
from contextvars import ContextVar
from pathlib import Path

from threadpoolctl import ThreadpoolController

PROBE = 8  # steps timed with each thread count
FIRST_WINDOW = 32  # steps run with the winner before the next probe ...
GROWTH = 4  # ... times this while the winner holds,
MAX_WINDOW = 2048  # ... up to this
MARGIN = 1.1  # the usual count must be this much faster than one thread to be chosen
SLOWDOWN = 2.0  # steps this much slower than at the probe: the machine changed, probe again

_clock = time.perf_counter  # the tests swap in a simulated clock
_controller: ThreadpoolController | None = None
_current: ContextVar[_Tuner | None] = ContextVar("cs231n_blas_tuner", default=None)


def _blas() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (found once; numpy's is loaded by now)."""
    global _controller
    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.select(user_api="blas")


class _Tuner:
    """Times the steps of one loop and sets the BLAS thread count the faster way."""

    def __init__(self) -> None:
        blas = _blas()
        most = max((lib["num_threads"] for lib in blas.info()), default=1)
        self.most = max(1, min(most, usable_cpus()))
        self.threads = self.most
        self._restore = blas.limit(limits=self.most)  # remembers every library's own count
        self._plan: Generator[None, float, None] | None = None
        if self.most > 1:
            self._plan = self._schedule()
            next(self._plan)

    def tick(self) -> None:
        if self._plan is not None:
            self._plan.send(_clock())

    def close(self) -> None:
        self._plan = None
        self._restore.restore_original_limits()

    def _use(self, threads: int) -> None:
        if threads != self.threads:
            _blas().limit(limits=threads)
            self.threads = threads

    def _timed(
        self, threads: int, steps: int, give_up: float = math.inf
    ) -> Generator[None, float, tuple[float, int]]:
        """Run up to ``steps`` steps with ``threads`` threads, fewer once they have taken
        ``give_up`` seconds; return (wall time, steps run)."""
        self._use(threads)
        start = now = _clock()  # a step boundary: called from tick()
        done = 0
        while done < steps and now - start <= give_up:
            now = yield
            done += 1
        return now - start, done

    def _schedule(self) -> Generator[None, float, None]:
        """The plan, one ``yield`` per step: probe both counts, keep the faster, repeat.

        The costs are lopsided: one thread on an idle machine is at most a few tens of
        percent slower, the usual count on a busy one several times. So the usual count
        must win clearly, and its probe stops as soon as it has lost.
        """
        yield  # the first step runs with the usual count (and warms the caches)
        window, choice = FIRST_WINDOW // GROWTH, self.most
        while True:
            one, _ = yield from self._timed(1, PROBE)
            most, done = yield from self._timed(self.most, PROBE, give_up=one / MARGIN)
            wins = done == PROBE and most * MARGIN < one
            previous, choice = choice, self.most if wins else 1
            window = min(GROWTH * window, MAX_WINDOW) if choice == previous else FIRST_WINDOW
            for _ in range(window // PROBE):
                elapsed, _ = yield from self._timed(choice, PROBE)
                if choice > 1 and elapsed > SLOWDOWN * most:  # the cores got busy
                    window = FIRST_WINDOW // GROWTH
                    break


@contextlib.contextmanager
def adaptive_blas_threads() -> Iterator[_Tuner]:
    """Tune the BLAS thread count for a loop of similar steps; restore it on leaving.

    Use as ``with adaptive_blas_threads():`` or as a decorator, and call :func:`tick`
    after every step of the loop. Nested uses tune the innermost loop.
    """
    tuner = _Tuner()
    token = _current.set(tuner)
    try:
        yield tuner
    finally:
        _current.reset(token)
        tuner.close()


def tick() -> None:
    """Mark the end of one step of the innermost :func:`adaptive_blas_threads` loop."""
    tuner = _current.get()
    if tuner is not None:
        tuner.tick()


def limit_blas_threads_for_workers(jobs: int) -> int:
    """For a process that runs as one of ``jobs`` parallel workers: share the CPUs.

    Sets this process's BLAS libraries to ``max(1, usable_cpus() // jobs)`` threads, so that the
    workers' threads together do not outnumber the cores (where threads busy-wait, that
    costs several times the run time), and returns that count. Call it once, first thing
    in the worker; the kit's own loops still drop to one thread when the cores are busy.
    """
    if jobs < 1:
        raise ValueError(f"jobs must be >= 1; got {jobs}")
    threads = max(1, usable_cpus() // jobs)
    _blas().limit(limits=threads)
    return threads


CGROUP_ROOT = Path("/sys/fs/cgroup")  # where Linux mounts the cgroup file systems
SELF_CGROUP = Path("/proc/self/cgroup")  # which cgroup this process is in


def usable_cpus(cgroup_root: Path | None = None, self_cgroup: Path | None = None) -> int:
    """How many CPUs this process may keep busy: the ones it may run on, capped by its
    cgroup's CPU quota rounded down (at least 1), as Go's automaxprocs does."""
    if hasattr(os, "sched_getaffinity"):
        cpus = len(os.sched_getaffinity(0))
    else:  # macOS, Windows
        cpus = os.cpu_count() or 1
    quota = cpu_quota(cgroup_root, self_cgroup)
    if quota is not None:
        cpus = min(cpus, max(1, math.floor(quota)))
    return max(1, cpus)


def cpu_quota(cgroup_root: Path | None = None, self_cgroup: Path | None = None) -> float | None:
    """The CPU time this process's cgroup may use, in CPUs (1.5: one and a half), or None
    where no quota is set or none can be read (not Linux, no cgroup file system).

    Reads cgroup v2's ``cpu.max`` ("max 100000", or "<quota> <period>" in microseconds)
    and v1's ``cpu.cfs_quota_us`` / ``cpu.cfs_period_us`` (-1: none), in the process's
    own cgroup and each one above it, and returns the smallest: a parent's quota binds
    its children too. The paths default to :data:`CGROUP_ROOT` and :data:`SELF_CGROUP`.
    """
    cgroup_root = CGROUP_ROOT if cgroup_root is None else cgroup_root
    self_cgroup = SELF_CGROUP if self_cgroup is None else self_cgroup
    try:
        lines = self_cgroup.read_text().splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    quotas = []
    for line in lines:
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":  # cgroup v2: one hierarchy, mounted at the root
            folders = _up_from(cgroup_root, path)
            quotas += [q for q in map(_v2_quota, folders) if q is not None]
        elif "cpu" in controllers.split(","):  # cgroup v1: the cpu controller's own mount
            for mount in {cgroup_root / controllers, cgroup_root / "cpu"}:
                quotas += [q for q in map(_v1_quota, _up_from(mount, path)) if q is not None]
    return min(quotas, default=None)


def _up_from(mount: Path, path: str) -> list[Path]:
    """The folder of cgroup ``path`` under ``mount``, then each one above it up to the
    mount. Inside a container the path may name the host's view; then the mount itself
    is the container's cgroup."""
    parts = [p for p in path.strip().split("/") if p and p not in (".", "..")]
    folders = [mount.joinpath(*parts[:n]) for n in range(len(parts), -1, -1)]
    return [folder for folder in folders if folder.is_dir()]


def _v2_quota(folder: Path) -> float | None:
    fields = _read_small(folder / "cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    return _ratio(fields[0], fields[1])


def _v1_quota(folder: Path) -> float | None:
    return _ratio(
        _read_small(folder / "cpu.cfs_quota_us"), _read_small(folder / "cpu.cfs_period_us")
    )


def _ratio(quota: str, period: str) -> float | None:
    try:
        quota_us, period_us = int(quota), int(period)
    except ValueError:
        return None
    return quota_us / period_us if quota_us > 0 and period_us > 0 else None


def _read_small(path: Path) -> str:
    try:
        with open(path, "rb") as stream:
            return stream.read(100).decode("ascii", "replace").strip()
    except OSError:
        return ""
