"""tools.grade.sandbox: limits, statuses, and what a sandboxed command cannot reach.

Tests of the namespaces (network, file system, process lifetime, user) are skipped with
the reason when this machine cannot make them (not root, or no unshare); the limits and
statuses are also tested in the rlimits-only fallback.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
from pathlib import Path

import pytest

from tools.grade import sandbox

REPO = Path(__file__).resolve().parents[1]
GB = sandbox.GB
# Any interpreter that every user can reach (the venv's may sit under a closed /root).
OPEN_PYTHON = next(
    (
        p
        for p in (sys.executable, "/usr/bin/python3")
        if Path(p).exists() and sandbox._reachable(Path(p))
    ),
    None,
)
namespaces = pytest.mark.skipif(
    not sandbox.isolation().namespaces,
    reason=f"needs the namespace sandbox: {sandbox.isolation().detail}",
)


@pytest.fixture
def workdir() -> Path:
    # Not under pytest's tmp_path (0700): without namespaces, the sandbox's own user must
    # be able to enter the scratch folder, or the sandbox refuses to run at all.
    scratch = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
    scratch.chmod(0o711)
    work = scratch / "work"
    work.mkdir()
    sandbox.prepare_workdir(work)
    yield work
    shutil.rmtree(scratch, ignore_errors=True)


def python() -> str:
    """An interpreter the sandbox's user can run: the venv's, else a system one as root."""
    if (
        sandbox.isolation().namespaces
        or os.geteuid() != 0
        or sandbox._reachable(Path(sys.executable))
    ):
        return sys.executable
    if OPEN_PYTHON is None:
        pytest.skip("no Python that other users can run, and no namespaces")
    return OPEN_PYTHON


def py(workdir: Path, code: str, *, wall: float = 20, cpu: float = 20, memory: int = GB):
    """Run Python ``code`` in the sandbox."""
    return sandbox.run(
        [python(), "-c", textwrap.dedent(code)], workdir, wall=wall, cpu=cpu, memory=memory
    )


@pytest.fixture(params=["namespaces", "rlimits"])
def mode(request, monkeypatch):
    """Each limit test runs in both modes (namespaces only where the machine has them)."""
    if request.param == "namespaces" and not sandbox.isolation().namespaces:
        pytest.skip(f"needs the namespace sandbox: {sandbox.isolation().detail}")
    if request.param == "rlimits":
        monkeypatch.setenv("CS231N_GRADE_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    yield request.param
    monkeypatch.delenv("CS231N_GRADE_SANDBOX", raising=False)
    sandbox.isolation.cache_clear()


def test_ok_hands_back_stdout_and_files(mode, workdir):
    result = py(workdir, "print('hello'); open('out.txt', 'w').write('42')")
    assert (result.status, result.returncode, result.stdout) == ("ok", 0, "hello\n")
    assert (workdir / "out.txt").read_text() == "42"
    assert sandbox.isolation().namespaces == (mode == "namespaces")


def test_wall_clock_limit_is_a_timeout(mode, workdir):
    start = time.monotonic()
    result = py(workdir, "while True:\n    pass", wall=1.0)
    assert (result.status, result.returncode) == ("timeout", None)
    assert time.monotonic() - start < 10
    assert "wall-clock limit of 1 s" in result.stderr


def test_cpu_limit_is_a_timeout(workdir):
    result = py(workdir, "while True:\n    pass", cpu=1, wall=30)
    assert result.status == "timeout"
    assert result.cpu >= 0.5  # rusage lags the rlimit by a tick or so
    assert "CPU-time limit" in result.stderr


def test_memory_cap_is_memory(mode, workdir):
    result = py(workdir, "blob = bytearray(8 << 30)", memory=GB)
    assert result.status == "memory"
    assert "MemoryError" in result.stderr


def test_exit_codes_and_signals_are_crashes(workdir):
    result = py(workdir, "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    assert (result.status, result.returncode) == ("crashed", -11)
    result = py(workdir, "raise SystemExit(3)")
    assert (result.status, result.returncode) == ("crashed", 3)


def test_output_is_kept_to_its_tail(workdir):
    result = py(workdir, "import sys; sys.stdout.write('x' * 1_000_000 + 'END')")
    assert result.status == "ok"
    assert len(result.stdout) == sandbox.OUTPUT_LIMIT and result.stdout.endswith("END")


def test_file_size_limit(workdir):
    result = sandbox.run_limited(
        [python(), "-c", "open('big', 'wb').write(b'0' * (4 << 20))"],
        workdir,
        sandbox.Limits(wall=20, cpu=20, memory=GB, fsize=1 << 20),
    )
    assert result.status == "crashed"
    assert (workdir / "big").stat().st_size <= 1 << 20


def test_argv0_must_be_absolute(workdir):
    with pytest.raises(ValueError, match="absolute path"):
        sandbox.run(["python3", "-c", "pass"], workdir, wall=5, cpu=5, memory=GB)


@namespaces
def test_runs_as_its_own_user_in_its_own_namespaces(workdir, tmp_path):
    code = """
        import os
        print(os.getuid(), os.getgid(), os.getpid(), os.getcwd())
        try:
            os.setuid(0)
        except PermissionError:
            print("no root")
        """
    result = py(workdir, code)
    uid, gid, pid, cwd, *rest = result.stdout.split()
    assert int(uid) == int(gid) == workdir.stat().st_uid
    assert sandbox.SANDBOX_UIDS[0] <= int(uid) < sandbox.SANDBOX_UIDS[1]
    assert cwd == str(workdir)
    assert int(pid) < 10  # a fresh PID namespace
    assert rest == ["no", "root"]
    other = tmp_path / "other"
    other.mkdir()
    sandbox.prepare_workdir(other)
    assert other.stat().st_uid != workdir.stat().st_uid  # one user per scratch folder


def test_shared_hard_links_stay_read_only(tmp_path):
    shared = tmp_path / "shared.bin"
    shared.write_bytes(b"data")
    work = tmp_path / "w"
    work.mkdir()
    os.link(shared, work / "data.bin")
    sandbox.prepare_workdir(work)
    result = py(work, "open('data.bin', 'ab').write(b'changed')")
    assert shared.read_bytes() == b"data"
    if sandbox.isolation().namespaces:
        assert result.status == "crashed" and "PermissionError" in result.stderr


@namespaces
def test_writes_outside_the_scratch_folder_land_nowhere(workdir):
    tag = uuid.uuid4().hex
    targets = [
        Path("/root") / f"cs231n-{tag}",
        REPO / f"cs231n-{tag}",
        Path("/tmp") / f"cs231n-{tag}",
        Path("/var/tmp") / f"cs231n-{tag}",
        Path("/dev/shm") / f"cs231n-{tag}",
        workdir.parent / f"cs231n-{tag}",
    ]
    result = py(
        workdir,
        f"""
        for path in {[str(t) for t in targets]!r}:
            try:
                open(path, "w").write("x")
                print("wrote", path)
            except OSError as error:
                print("refused", path, type(error).__name__)
        """,
    )
    assert result.status == "ok"
    try:
        assert [t for t in targets if t.exists()] == []
    finally:
        for target in targets:
            target.unlink(missing_ok=True)


@namespaces
def test_the_reference_checkout_and_home_are_invisible(workdir):
    solution = REPO / "cs231n" / "classifiers" / "softmax.py"
    assert solution.exists()
    result = py(
        workdir,
        f"""
        import os
        print(os.path.exists({str(solution)!r}), os.listdir({str(REPO)!r}))
        print(os.listdir("/root"))
        """,
    )
    lines = result.stdout.splitlines()
    assert lines[0] == "False ['.venv']"
    assert ".bashrc" not in lines[1] and ".cache" not in lines[1]


@namespaces
def test_a_setsid_daemon_dies_with_the_command(workdir):
    tag = f"cs231n-daemon-{uuid.uuid4().hex}"
    result = py(
        workdir,
        f"""
        import os, subprocess, sys
        if os.fork() == 0:          # double fork + setsid: a classic daemon
            os.setsid()
            if os.fork() == 0:
                os.execv(sys.executable, [sys.executable, "-c",
                         "import time; time.sleep(600)", {tag!r}])
            os._exit(0)
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {tag!r}],
                         start_new_session=True)
        print("started")
        """,
    )
    assert result.stdout.strip() == "started"
    time.sleep(0.2)
    survivors = []
    for proc in Path("/proc").iterdir():
        try:
            if tag.encode() in (proc / "cmdline").read_bytes():
                survivors.append(proc.name)
        except OSError:
            continue
    assert survivors == []


@namespaces
def test_no_network_reaches_the_host(workdir):
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    port = server.getsockname()[1]
    accepted = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                accepted.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        result = py(
            workdir,
            f"""
            import socket
            for host in ("127.0.0.1", {socket.gethostname()!r}, "1.1.1.1"):
                try:
                    socket.create_connection((host, {port}), timeout=1).close()
                    print("connected", host)
                except OSError as error:
                    print("refused", host, error.errno)
            """,
        )
    finally:
        stop.set()
        thread.join()
        server.close()
    assert accepted == []
    assert "connected" not in result.stdout
    assert result.stdout.count("refused") == 3


@namespaces
def test_loopback_inside_works(workdir):
    # A Jupyter kernel talks to its client over loopback: the sandbox must have one.
    result = py(
        workdir,
        """
        import socket
        server = socket.create_server(("127.0.0.1", 0))
        client = socket.create_connection(server.getsockname())
        conn, _ = server.accept()
        client.sendall(b"ping")
        print(conn.recv(4).decode())
        """,
    )
    assert result.stdout.strip() == "ping"


def test_isolation_reports_the_fallback(monkeypatch):
    monkeypatch.setenv("CS231N_GRADE_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    try:
        iso = sandbox.isolation()
        assert (iso.namespaces, iso.network) == (False, False)
        assert "rlimits only" in iso.detail
    finally:
        monkeypatch.delenv("CS231N_GRADE_SANDBOX")
        sandbox.isolation.cache_clear()
    assert os.environ.get("CS231N_GRADE_SANDBOX") is None


def test_the_sandbox_dies_with_the_grader(mode, workdir, tmp_path):
    # A grader killed mid-run (Ctrl-C, SIGKILL) must not leave the submission running.
    tag = f"cs231n-grader-{uuid.uuid4().hex}"
    grader = tmp_path / "grader.py"
    work = workdir.parent / "w"
    grader.write_text(
        textwrap.dedent(
            f"""
            import sys
            from pathlib import Path
            from tools.grade import sandbox
            work = Path({str(work)!r})
            work.mkdir()
            sandbox.prepare_workdir(work)
            sandbox.run([{python()!r}, "-c", "import time; time.sleep(600)", {tag!r}],
                        work, wall=600, cpu=600, memory=sandbox.GB)
            """
        )
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    process = subprocess.Popen([sys.executable, str(grader)], env=env)
    try:
        deadline = time.monotonic() + 60
        while not _running(tag) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _running(tag), "the sandboxed command never started"
    finally:  # killed either way, so a failure here leaves no grader behind
        process.kill()
        process.wait()
    deadline = time.monotonic() + 10
    while _running(tag) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(tag)


def _running(tag: str) -> bool:
    """Whether a process with ``tag`` in its command line runs (the sandbox's own not counted)."""
    for proc in Path("/proc").iterdir():
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if tag.encode() in cmdline and b"sandbox_init.py" not in cmdline:
                return True
        except OSError:
            continue
    return False


@pytest.mark.skipif(os.geteuid() != 0, reason="dropping to a user of its own needs root")
@pytest.mark.skipif(OPEN_PYTHON is None, reason="no Python that other users can run")
def test_fallback_as_root_still_drops_root_and_kills_daemons(monkeypatch):
    # Where namespaces are refused (a container, as on Gradescope) but we are root, the
    # command still runs as a user of its own, so it cannot write the grader's files, and
    # every process of that user is killed at the end, setsid daemons included.
    monkeypatch.setenv("CS231N_GRADE_SANDBOX", "rlimits")
    sandbox.isolation.cache_clear()
    scratch = Path(tempfile.mkdtemp(prefix="cs231n-test-"))
    try:
        scratch.chmod(0o711)
        work = scratch / "work"
        work.mkdir()
        sandbox.prepare_workdir(work)
        tag = f"cs231n-fallback-{uuid.uuid4().hex}"
        marker = REPO / tag
        code = textwrap.dedent(
            f"""
            import os, subprocess, sys
            print(os.getuid())
            subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)", {tag!r}],
                             start_new_session=True)
            try:
                open({str(marker)!r}, "w")
            except PermissionError:
                print("refused")
            """
        )
        result = sandbox.run([OPEN_PYTHON, "-c", code], work, wall=20, cpu=20, memory=GB)
        assert result.stdout.split() == [str(work.stat().st_uid), "refused"]
        assert work.stat().st_uid >= sandbox.SANDBOX_UIDS[0]
        assert not marker.exists()
        time.sleep(0.2)
        assert not _running(tag)
    finally:
        shutil.rmtree(scratch)
        monkeypatch.delenv("CS231N_GRADE_SANDBOX")
        sandbox.isolation.cache_clear()
