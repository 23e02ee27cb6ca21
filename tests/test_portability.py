"""The reference notebook's stored outputs hold under every OpenBLAS kernel, not only this CPU's.

OpenBLAS picks its compute kernels for the CPU it runs on, and ``OPENBLAS_CORETYPE``
overrides the pick. Kernels sum in different orders and with or without fused
multiply-adds, so their results differ in the last bits; SGD, large steps and argmax near
a boundary can carry such differences into printed digits. nbval strict compares every
printed digit, so a stored output that depends on the kernel fails on another machine.

These tests re-run nbval strict on the reference with ``OPENBLAS_CORETYPE`` set, for the
run only; the kit itself never sets it. Each kernel is confirmed with threadpoolctl, which
reports the kernel OpenBLAS actually loaded: a kernel this CPU cannot run (OpenBLAS then
falls back to its own pick) or a BLAS that is not OpenBLAS is skipped with the reason.

- ``make test``: nbval strict under one kernel other than the native one (the native run
  is ``make test``'s own, unpinned).
- ``make portable`` (``CS231N_PORTABLE=1``): nbval strict under each of the four kernels,
  ``CS231N_PORTABLE_REPEATS`` times (default 5); the unit tests under each kernel; and the
  round trip: a reference re-executed under one kernel passes nbval strict under another.

Run this file directly to print what each kernel setting gives here:
``python tests/test_portability.py``.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOK = REPO / "notebooks" / "softmax.ipynb"
SANITIZE = REPO / "tests" / "nbval_sanitize.cfg"
REFRESH = REPO / "tools" / "refresh_reference.py"
# From the oldest instruction set to the newest: SSE4.2, AVX, AVX2 + FMA, AVX-512.
KERNELS = ("Nehalem", "Sandybridge", "Haswell", "SkylakeX")
PORTABLE = os.environ.get("CS231N_PORTABLE") == "1"
REPEATS = int(os.environ.get("CS231N_PORTABLE_REPEATS", "5")) if PORTABLE else 1
# (kernel that executes the reference, kernel that then checks it)
ROUND_TRIPS = (("SkylakeX", "Haswell"), ("Haswell", "SkylakeX"))

_REPORT_KERNEL = """
import numpy  # loads the BLAS that numpy links
from threadpoolctl import threadpool_info
blas = [i for i in threadpool_info() if i["user_api"] == "blas"]
print(blas[0].get("architecture") if blas and blas[0]["internal_api"] == "openblas" else
      "not OpenBLAS: " + (blas[0]["internal_api"] if blas else "no BLAS found"))
"""


def kernel_env(kernel: str | None) -> dict[str, str]:
    """This process's environment with OPENBLAS_CORETYPE set to kernel (None: unset)."""
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_CORETYPE"}
    if kernel is not None:
        env["OPENBLAS_CORETYPE"] = kernel
    env["CS231N_DATASET"] = "fashion-mnist"  # the data the stored outputs came from
    return env


@functools.cache
def kernel_in_use(kernel: str | None) -> str:
    """The kernel OpenBLAS loads in a fresh interpreter with OPENBLAS_CORETYPE=kernel."""
    out = subprocess.run(
        [sys.executable, "-c", _REPORT_KERNEL],
        env=kernel_env(kernel),
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def unsupported(kernel: str) -> str | None:
    """Why kernel cannot be tested here, or None when OpenBLAS runs it."""
    got = kernel_in_use(kernel)
    if got.startswith("not OpenBLAS"):
        return f"numpy's BLAS is {got}, so OPENBLAS_CORETYPE selects nothing"
    if got.lower() != kernel.lower():
        return f"this CPU cannot run OpenBLAS's {kernel} kernels (asked for it, got {got})"
    return None


def another_kernel() -> str:
    """The first kernel in KERNELS that this CPU runs and that make test's own nbval run
    does not use (the CPU's pick, or the user's OPENBLAS_CORETYPE)."""
    native = kernel_in_use(os.environ.get("OPENBLAS_CORETYPE"))
    reasons = [f"in use: {native}"]
    for kernel in KERNELS:
        why = unsupported(kernel)
        if why is None and kernel.lower() != native.lower():
            return kernel
        reasons.append(why or f"{kernel} is the kernel in use")
    pytest.skip("no second OpenBLAS kernel to test: " + "; ".join(reasons))


def require(kernel: str) -> None:
    why = unsupported(kernel)
    if why is not None:
        pytest.skip(why)


def run(command: list[str], kernel: str, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(
        command,
        cwd=REPO,
        env=kernel_env(kernel),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def nbval_strict(notebook: Path, kernel: str) -> None:
    """Run nbval strict on notebook with OpenBLAS's kernel set, as make test runs it."""
    # Building matplotlib's font cache writes to stderr, which nbval would count against
    # the first plotting cell: build it first (make test does the same).
    run([sys.executable, "-c", "import matplotlib.font_manager"], kernel, 300)
    command = [sys.executable, "-m", "pytest", "--nbval", str(notebook)]
    command += ["--nbval-sanitize-with", str(SANITIZE), "-p", "no:cacheprovider", "-q"]
    result = run(command, kernel, 900)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-80:])
    assert result.returncode == 0, (
        f"nbval strict fails on {notebook.name} with OPENBLAS_CORETYPE={kernel}: a stored "
        f"output depends on the BLAS kernel (print only digits that hold on every kernel, "
        f"or assert the property in a # NBVAL_IGNORE_OUTPUT cell).\n{tail}"
    )


if PORTABLE:
    NBVAL_CASES = [
        pytest.param(kernel, repeat, id=f"{kernel}-{repeat + 1}")
        for kernel in KERNELS
        for repeat in range(REPEATS)
    ]
else:
    NBVAL_CASES = [pytest.param(None, 0, id="another-kernel")]


@pytest.mark.parametrize(("kernel", "repeat"), NBVAL_CASES)
def test_reference_passes_nbval_strict_under_another_kernel(kernel: str | None, repeat: int):
    if kernel is None:
        kernel = another_kernel()
    else:
        require(kernel)
    nbval_strict(NOTEBOOK, kernel)


@pytest.mark.skipif(not PORTABLE, reason="make portable runs the round trip")
@pytest.mark.parametrize(("maker", "checker"), ROUND_TRIPS, ids=lambda k: k)
def test_reference_made_under_one_kernel_passes_under_another(tmp_path, maker, checker):
    require(maker)
    require(checker)
    remade = tmp_path / NOTEBOOK.name
    made = run([sys.executable, str(REFRESH), "--output", str(remade)], maker, 900)
    assert made.returncode == 0, made.stdout + made.stderr
    nbval_strict(remade, checker)


@pytest.mark.skipif(not PORTABLE, reason="make portable runs the unit tests under each kernel")
@pytest.mark.parametrize("kernel", KERNELS)
def test_unit_tests_pass_under_each_kernel(kernel: str):
    require(kernel)
    command = [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider"]
    command += ["--ignore", str(Path(__file__).relative_to(REPO))]
    result = run(command, kernel, 3600)
    tail = "\n".join((result.stdout + result.stderr).splitlines()[-60:])
    assert result.returncode == 0, f"unit tests fail with OPENBLAS_CORETYPE={kernel}:\n{tail}"


def test_kernel_report_sees_the_setting():
    # The detection the skips rest on: an unknown name must not count as a kernel this
    # CPU runs (OpenBLAS ignores it and keeps its own pick).
    native = kernel_in_use(None)
    if native.startswith("not OpenBLAS"):
        pytest.skip(native)
    assert unsupported("NoSuchKernel") is not None
    assert unsupported(native) is None, f"the native kernel {native} must count as supported"


if __name__ == "__main__":
    print(f"native: {kernel_in_use(None)}")
    for name in KERNELS:
        print(f"OPENBLAS_CORETYPE={name}: {unsupported(name) or 'runs'}")
