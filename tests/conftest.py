"""Shared pytest hooks: under CI, a skip of a test that CI must run fails the run.

The sandbox tests skip where namespaces are missing, the download tests where no
downloader is found, and the portability tests where OpenBLAS offers no second kernel.
On a laptop that is right; on CI (``CI=true``, which ``.ci/run`` sets) such a skip would
report green for tests that never ran, so it is turned into a failure naming the reason.

``make test`` runs the unit tests in parallel (pytest-xdist, one worker per usable CPU,
each test file on one worker). A worker collects and runs the tests, and the controller
that prints the summary and sets the exit status sees only the reports the workers send,
so each hook below works from the reports alone, in a worker or in a serial run.
"""

from __future__ import annotations

import os

import pytest

# The files whose tests CI must run, never skip.
MUST_RUN_IN_CI = frozenset(
    {
        "test_grade_sandbox.py",
        "test_grade_batch.py",
        "test_get_datasets.py",
        "test_download_py.py",
        "test_portability.py",
    }
)
# Tests in those files that skip by design outside their own make target.
OPT_IN = ("make portable runs",)


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in {"true", "1", "yes"}


def _must_run(path: str) -> bool:
    return os.path.basename(path.split("::")[0]) in MUST_RUN_IN_CI


def _reason(report) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, (tuple, list)) and len(longrepr) == 3:  # (file, line, "Skipped: why")
        return str(longrepr[2])
    return str(longrepr)


def _fail_skip(report) -> None:
    why = _reason(report)
    if hasattr(report, "wasxfail") or any(marker in why for marker in OPT_IN):
        return
    report.outcome = "failed"
    report.longrepr = (
        f"skipped under CI=true, where this test must run: {why}\n"
        "CI runs as root on a machine with network namespaces, curl or wget, and OpenBLAS: "
        "fix the machine, or unset CI to allow the skip."
    )


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if in_ci() and report.skipped and _must_run(item.nodeid):
        _fail_skip(report)


# Modules that skipped themselves at import (pytest.skip(allow_module_level=True)) under
# CI: their reasons, reported at the end, and the run's exit status made a failure. (A
# collection error instead would stop the other tests from running.) pytest_collectreport
# sees every collection report in a serial run; under xdist the controller, which reports
# and sets the exit status, gets the skipped ones from the workers, each once however many
# workers collected it. A worker records none. Whether it is one is asked of its config:
# a pytest that a test starts inherits the PYTEST_XDIST_WORKER variable.
_SKIPPED_MODULES: list[str] = []
_IN_XDIST_WORKER = False


def pytest_configure(config):
    global _IN_XDIST_WORKER
    _IN_XDIST_WORKER = hasattr(config, "workerinput")


def pytest_collectreport(report):
    if in_ci() and report.skipped and _must_run(report.nodeid) and not _IN_XDIST_WORKER:
        _SKIPPED_MODULES.append(f"{report.nodeid}: {_reason(report)}")


def pytest_terminal_summary(terminalreporter):
    for line in _SKIPPED_MODULES:
        terminalreporter.write_line(f"FAILED (skipped under CI=true, must run) {line}", red=True)


def pytest_sessionfinish(session):
    if _SKIPPED_MODULES and session.exitstatus == pytest.ExitCode.OK:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# `pytest -n auto` (make test): one worker per CPU this process may run on. Without this,
# xdist counts the machine's physical cores (through psutil): fewer than the CPUs where a
# core runs two threads, more where an affinity mask leaves the tests fewer.
# PYTEST_XDIST_AUTO_NUM_WORKERS, as in xdist itself, chooses another number.
@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config):
    chosen = os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS", "").strip()
    if chosen.isdigit():
        return int(chosen)
    if hasattr(os, "process_cpu_count"):  # Python >= 3.13
        return os.process_cpu_count() or 1
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1
