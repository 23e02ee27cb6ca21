"""Run an untrusted command in a sandbox with time, memory and network limits.

:func:`run` is the only way grading runs a submission's code. It starts
:mod:`tools.grade.sandbox_init` as the first process of new PID, network, mount, IPC and
UTS namespaces (``unshare``, as root). There the command sees a read-only system, the
interpreter and the virtual environment, its own scratch folder (``workdir``, the only
place it can write and have the parent read), private ``/tmp`` and ``/dev/shm``, and no
network but its own loopback. It runs as a user of its own (no root, no capabilities),
with rlimits on address space, CPU time, file size and processes, and, where cgroup v1
is mounted writable, in a memory and pids cgroup of its own as well. When it exits or
its wall-clock limit passes, every process it started dies with the namespace.

Where namespaces are unavailable (not root, or no ``unshare``), :func:`run` falls back to
rlimits and a subreaper that kills every process the command started, and
:func:`isolation` says that network and file-system isolation are not active, so that
results can say so. ``CS231N_GRADE_SANDBOX=rlimits`` forces the fallback. As root, the
fallback runs the command as a user of its own, and refuses (:class:`SandboxError`, with
what to do) where that user could not reach the interpreter: student code never runs as
root outside a user namespace.

Nothing the command can touch carries its verdict: it holds no descriptor but 0, 1 and 2;
its CPU time comes from ``wait4`` on the sandbox's first process and its wall time from
this process's clock; the status pipe is read without blocking once that process has
exited.

BLAS and OpenMP pools are held to one thread in the child's environment
(``OPENBLAS_NUM_THREADS=1`` and friends), so ``JOBS`` parallel submissions use ``JOBS``
cores.
"""

from __future__ import annotations

import functools
import json
import os
import re
import resource
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

INIT = Path(__file__).resolve().with_name("sandbox_init.py")
NOBODY = 65534
# Each prepared workdir gets a user id of its own from this range (no /etc/passwd entry
# needed), so that RLIMIT_NPROC, which counts per user, is per sandbox, and concurrent
# sandboxes cannot touch each other's files.
SANDBOX_UIDS = (200_000, 1_200_000)
GB = 1 << 30
MB = 1 << 20
OUTPUT_LIMIT = 64 * 1024  # characters of stdout/stderr kept in a RunResult (the tail)
CGROUP_V1 = Path("/sys/fs/cgroup")
CGROUP_TAG = ""  # set per submission process, so the batch can remove what a dead one left

# Messages a process prints when an allocation fails under RLIMIT_AS (Python, numpy, libc,
# C++), or when the cgroup's OOM killer ended it.
_MEMORY = re.compile(
    r"MemoryError|Unable to allocate|Cannot allocate memory|std::bad_alloc|out of memory",
    re.IGNORECASE,
)


@dataclass
class RunResult:
    """What one sandboxed command did.

    ``status`` is ``"ok"`` (exited 0), ``"timeout"`` (wall-clock or CPU limit),
    ``"memory"`` (an allocation failed under the memory limit) or ``"crashed"`` (a signal,
    or a nonzero exit). ``returncode`` is the exit code, negative for a signal, ``None``
    when the sandbox ended the command. ``stdout``/``stderr`` keep the last
    ``OUTPUT_LIMIT`` characters. ``wall`` and ``cpu`` are seconds, ``cpu`` summed over
    every process the command started.
    """

    status: str
    returncode: int | None
    stdout: str
    stderr: str
    wall: float
    cpu: float


@dataclass(frozen=True)
class Limits:
    """Per-command limits; ``memory`` and ``fsize`` in bytes, times in seconds."""

    wall: float = 60.0
    cpu: float = 60.0
    memory: int = 4 * GB
    fsize: int = 64 * MB
    nproc: int = 256
    tmp_size: int = 64 * MB
    disk: int | None = None  # bytes the scratch folder may hold (None: its own tmpfs caps it)


class SandboxError(Exception):
    """The sandbox cannot run student code safely here; the message says what to do."""


@dataclass(frozen=True)
class Isolation:
    """Which protections :func:`run` applies on this machine."""

    namespaces: bool  # PID, mount, network, IPC, UTS namespaces, chroot, own user
    network: bool  # no network but a private loopback
    cgroup: bool  # a memory and pids cgroup per command
    detail: str  # one line for people: what is active, or why not

    def as_dict(self) -> dict:
        return asdict(self)


def _unshare_argv() -> list[str]:
    unshare = shutil.which("unshare") or "/usr/bin/unshare"
    return [unshare, "--pid", "--fork", "--net", "--mount", "--ipc", "--uts", "--kill-child"]


@functools.cache
def isolation() -> Isolation:
    """Probe once what this machine allows (namespaces need root and util-linux unshare)."""
    if os.environ.get("CS231N_GRADE_SANDBOX", "") == "rlimits":
        return _fallback("CS231N_GRADE_SANDBOX=rlimits")
    if os.geteuid() != 0:
        return _fallback("namespaces need root: run make grade as root")
    try:
        probe = subprocess.run(
            [*_unshare_argv(), "true"], capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return _fallback(f"unshare is unavailable ({error})")
    if probe.returncode != 0:
        return _fallback(f"unshare failed ({probe.stderr.strip() or probe.returncode})")
    cgroup = _cgroup_probe()
    detail = "PID, mount, network, IPC and UTS namespaces; chroot as an unprivileged user; rlimits"
    return Isolation(True, True, cgroup, detail + ("; memory and pids cgroup" if cgroup else ""))


def _fallback(why: str) -> Isolation:
    return Isolation(False, False, False, f"rlimits only: no namespaces, {why}")


def user_line() -> str:
    """Who student code runs as here, in one line for ``make grade`` to print."""
    iso = isolation()
    if iso.namespaces:
        return "a user of its own per submission (uid >= 200000), inside namespaces"
    if os.geteuid() == 0:
        problem = _unreachable_problem()
        if problem:
            return f"nobody: grading is refused ({problem})"
        return "a user of its own per submission (uid >= 200000), no namespaces"
    return (
        f"your own user (uid {os.getuid()}): it can read and write whatever you can; "
        "grade as root for a user of its own and namespaces"
    )


def _unreachable_problem(program: str | None = None) -> str:
    """Why a user of its own could not run ``program`` here ('' when it could)."""
    program = program or sys.executable
    for what, path in (
        ("the interpreter", Path(os.path.realpath(program))),
        ("the temporary folder", Path(tempfile.gettempdir())),
    ):
        if not _reachable(path):
            return f"{what} {path} sits in a folder other users cannot enter"
    return ""


def check_ready(program: str | None = None) -> None:
    """Raise SandboxError when student code would run as root outside a user namespace.

    That is the case as root without namespaces when the interpreter (a pyenv Python
    under a closed /root, a checkout in a 0700 folder) is out of other users' reach.
    """
    if isolation().namespaces or os.geteuid() != 0:
        return
    problem = _unreachable_problem(program)
    if problem:
        raise SandboxError(
            f"student code would run as root: {problem}, so a user of its own cannot run "
            "it. Grade where namespaces work (root with util-linux unshare, without "
            "CS231N_GRADE_SANDBOX=rlimits), or build the virtual environment from a "
            "Python every user can reach (make clean; make grade PYTHON=/usr/bin/python3), "
            "or open the folders above it (chmod o+x)"
        )


def _cgroup_probe() -> bool:
    name = f"cs231n-grade-probe-{uuid.uuid4().hex}"
    try:
        for controller in ("memory", "pids"):
            folder = CGROUP_V1 / controller / name
            folder.mkdir()
            folder.rmdir()
    except OSError:
        return False
    return True


def _make_cgroups(limits: Limits) -> list[Path]:
    name = f"cs231n-grade-{CGROUP_TAG}{uuid.uuid4().hex}"
    memory, pids = CGROUP_V1 / "memory" / name, CGROUP_V1 / "pids" / name
    try:
        memory.mkdir()
        (memory / "memory.limit_in_bytes").write_text(str(limits.memory))
        pids.mkdir()
        (pids / "pids.max").write_text(str(limits.nproc))
    except OSError:
        _remove_cgroups([memory, pids])
        return []
    return [memory, pids]


def _remove_cgroups(folders: list[Path]) -> bool:
    """Remove the cgroups; True when the memory one recorded hitting its limit."""
    hit = False
    for folder in folders:
        if not folder.exists():
            continue
        failcnt = folder / "memory.failcnt"
        if failcnt.exists():
            hit = int(failcnt.read_text() or 0) > 0
        for _ in range(100):  # the last processes may take a moment to leave
            try:
                folder.rmdir()
                break
            except OSError:
                time.sleep(0.05)
    return hit


def _readonly_paths() -> list[str]:
    """Host paths the sandbox sees read-only: the system and this interpreter's install."""
    paths = ["/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc"]
    prefixes = {sys.prefix, sys.base_prefix, os.path.realpath(sys.base_prefix)}
    executable = os.path.realpath(sys.executable)
    prefixes.add(str(Path(executable).parents[1]))
    for prefix in sorted(prefixes):
        if not any(prefix == p or prefix.startswith(p + "/") for p in paths):
            paths.append(prefix)
    return paths


def sandbox_env(workdir: Path, extra: dict | None = None, *, isolated: bool = True) -> dict:
    """The command's whole environment: nothing of the grader's leaks in."""
    venv_bin = str(Path(sys.executable).parent)
    env = {
        "PATH": os.pathsep.join([venv_bin, "/usr/local/bin", "/usr/bin", "/bin"]),
        "HOME": str(workdir / ".home"),
        "TMPDIR": "/tmp" if isolated else str(workdir / ".tmp"),
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": "0",
        "MPLBACKEND": "Agg",
        "MPLCONFIGDIR": str(workdir / ".home" / "matplotlib"),
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "NUMEXPR_NUM_THREADS": "1",
        "VECLIB_MAXIMUM_THREADS": "1",
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "USER": "student",  # the sandbox user has no /etc/passwd entry
        "LOGNAME": "student",
    }
    env.update(extra or {})
    return env


def prepare_workdir(workdir: Path) -> None:
    """Give ``workdir`` and its home to a fresh sandbox user; seed matplotlib's font cache.

    Call once after filling ``workdir``: the command can then write anywhere in it,
    except files with more than one hard link (data shared between scratch folders),
    which stay the grader's and read-only.
    """
    home = workdir / ".home"
    (home / "matplotlib").mkdir(parents=True, exist_ok=True)
    (workdir / ".tmp").mkdir(exist_ok=True)
    cache = _matplotlib_cache()
    if cache is not None:
        for font_list in cache.glob("fontlist-*.json"):
            shutil.copy2(font_list, home / "matplotlib" / font_list.name)
    if os.geteuid() == 0:
        uid = secrets.randbelow(SANDBOX_UIDS[1] - SANDBOX_UIDS[0]) + SANDBOX_UIDS[0]
        for path in [workdir, *workdir.rglob("*")]:
            info = path.lstat()
            if stat.S_ISDIR(info.st_mode) or (stat.S_ISREG(info.st_mode) and info.st_nlink == 1):
                os.chown(path, uid, uid, follow_symlinks=False)


def _reachable(path: Path) -> bool:
    """Whether any user may pass through every folder above ``path`` and open it."""
    real = Path(os.path.realpath(path))
    return all(p.stat().st_mode & stat.S_IXOTH for p in [real, *real.parents])


def _sandbox_uid(workdir: Path, program: str, namespaces: bool) -> int | None:
    """The user a command in ``workdir`` runs as: its owner if prepared, else nobody.

    ``None`` (stay who we are) when not root. Without namespaces, when another user could
    not reach ``workdir`` or the program (a folder above it is closed to others), raises
    SandboxError rather than run the command as root.
    """
    if os.geteuid() != 0:
        return None
    if not namespaces and not (_reachable(workdir) and _reachable(Path(program))):
        check_ready(program)  # raises for an unreachable interpreter; else the folder
        raise SandboxError(
            f"student code would run as root: {workdir} or {program} sits in a folder "
            "other users cannot enter; give the scratch folder's parents o+x"
        )
    owner = workdir.stat().st_uid
    return owner if SANDBOX_UIDS[0] <= owner < SANDBOX_UIDS[1] else NOBODY


@functools.cache
def _matplotlib_cache() -> Path | None:
    try:
        import matplotlib

        return Path(matplotlib.get_cachedir())
    except Exception:  # noqa: BLE001 - a missing font cache only costs time
        return None


def run(
    argv: list[str],
    workdir: Path,
    *,
    wall: float,
    cpu: float,
    memory: int,
    env: dict | None = None,
) -> RunResult:
    """Run ``argv`` with cwd ``workdir`` in the sandbox and say what happened.

    ``argv[0]`` must be an absolute path (``sys.executable`` for Python: the sandbox sees
    the interpreter and its virtual environment, not the grader's checkout, so copy any
    script the command needs into ``workdir``). ``wall`` and ``cpu`` are seconds,
    ``memory`` the address-space cap in bytes. ``env`` is added to :func:`sandbox_env`.
    The command's outputs come back as files it writes into ``workdir``.
    """
    limits = Limits(wall=wall, cpu=cpu, memory=memory)
    return run_limited(argv, Path(workdir), limits, env=env)


CLIENT_UID_OFFSET = 1_000_000  # the client of a kernel run: the student's uid plus this


def run_limited(
    argv: list[str],
    workdir: Path,
    limits: Limits,
    *,
    env: dict | None = None,
    kernel: list[str] | None = None,
    kernel_cwd: Path | None = None,
    trusted: Path | None = None,
) -> RunResult:
    """:func:`run` with a full :class:`Limits`.

    With ``kernel`` (a Jupyter kernel's argv, less ``-f FILE``): the sandbox first starts
    that kernel as the student's user in ``kernel_cwd``, then runs ``argv``, the kernel's
    client, as a user of its own (where root) with its home in ``trusted``, a folder of
    the caller's that the kernel's user cannot reach. The client finds the connection in
    ``trusted/kernel.json`` (with the kernel's ``pid``) and writes what it hands back into
    ``trusted``: code in the kernel cannot touch it. Both die when the client exits.
    """
    workdir = workdir.resolve()
    if not Path(argv[0]).is_absolute():
        raise ValueError(f"sandbox: argv[0] must be an absolute path, got {argv[0]!r}")
    iso = isolation()
    uid = _sandbox_uid(workdir, argv[0], iso.namespaces)  # raises rather than run as root
    private = Path(tempfile.mkdtemp(prefix="cs231n-sandbox-"))
    cgroups = _make_cgroups(limits) if iso.cgroup else []
    status_read, status_write = os.pipe()
    os.set_blocking(status_read, False)
    usage = None
    try:
        (private / "root").mkdir()
        config = {
            "isolated": iso.namespaces,
            "root": str(private / "root"),
            "readonly": _readonly_paths(),
            "workdir": str(workdir),
            "argv": [str(a) for a in argv],
            "env": sandbox_env(workdir, env, isolated=iso.namespaces),
            "wall": float(limits.wall),
            "cpu": max(1, int(limits.cpu + 0.999)),
            "memory": int(limits.memory),
            "fsize": int(limits.fsize),
            "nproc": int(limits.nproc),
            "tmp_size": int(limits.tmp_size),
            "disk": None if limits.disk is None else int(limits.disk),
            "status_fd": status_write,
            "cgroups": [str(c) for c in cgroups],
            "uid": uid,
        }
        if kernel is not None:
            if trusted is None:
                raise ValueError("sandbox: a kernel run needs a trusted folder for its client")
            config["kernel"] = _kernel_config(kernel, kernel_cwd or workdir, trusted, uid)
        prefix = _unshare_argv() if iso.namespaces else []
        setpriv = shutil.which("setpriv")
        if setpriv:  # the sandbox dies with the grader (unshare ignores SIGTERM and SIGINT)
            prefix = [setpriv, "--pdeathsig", "KILL", *prefix]
        command = [*prefix, sys.executable, "-I", str(INIT), json.dumps(config)]
        with open(private / "stdout", "w+b") as out, open(private / "stderr", "w+b") as err:
            started = time.monotonic()
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                pass_fds=(status_write,),
                cwd="/",
                start_new_session=True,
            )
            os.close(status_write)
            status_write = -1
            usage = _wait(process, started + limits.wall + 30)  # past it, the init's clock failed
            wall = time.monotonic() - started
            report = _read_report(status_read)
            stdout, stderr = _tail(out), _tail(err)
    finally:
        os.close(status_read)
        if status_write >= 0:
            os.close(status_write)
        memory_hit = _remove_cgroups(cgroups)
        shutil.rmtree(private, ignore_errors=True)
    report["wall"] = wall
    report["cpu"] = usage.ru_utime + usage.ru_stime
    return _classify(report, stdout, stderr, limits, memory_hit)


def _kernel_config(kernel: list[str], cwd: Path, trusted: Path, uid: int | None) -> dict:
    trusted = trusted.resolve()
    client = None if uid is None else uid + CLIENT_UID_OFFSET
    if client is not None:
        for path in [trusted, *trusted.rglob("*")]:
            os.chown(path, client, client, follow_symlinks=False)
        trusted.chmod(0o700)
    home = str(trusted)
    return {
        "argv": [str(a) for a in kernel],
        "cwd": str(Path(cwd).resolve()),
        "outdir": home,
        "client_uid": client,
        "client_env": {
            "HOME": home,
            "JUPYTER_RUNTIME_DIR": home + "/runtime",
            "JUPYTER_DATA_DIR": home + "/data",
            "JUPYTER_CONFIG_DIR": home + "/config",
            "IPYTHONDIR": home + "/ipython",
            "MPLCONFIGDIR": home + "/matplotlib",
        },
    }


def _wait(process: subprocess.Popen, deadline: float) -> resource.struct_rusage:
    """Reap ``process`` by ``wait4``; SIGKILL its group at ``deadline``. Its rusage.

    The rusage counts the process and every descendant it (or the sandbox's init under it)
    reaped: the CPU time of everything the command started, measured by the kernel.
    """
    while True:
        pid, wait_status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid == process.pid:
            process.returncode = os.waitstatus_to_exitcode(wait_status)
            return usage
        if time.monotonic() > deadline:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            _, wait_status, usage = os.wait4(process.pid, 0)
            process.returncode = os.waitstatus_to_exitcode(wait_status)
            return usage
        time.sleep(0.01)


REPORT_LIMIT = 4096  # bytes: the init's report is one short JSON object


def _read_report(fd: int) -> dict:
    """The init's report, read without blocking (whoever else holds the pipe open)."""
    chunks, size = [], 0
    while size <= REPORT_LIMIT:
        try:
            chunk = os.read(fd, REPORT_LIMIT + 1)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    try:
        report = json.loads(b"".join(chunks)[: REPORT_LIMIT + 1] or b"{}")
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return report if isinstance(report, dict) else {}


def _tail(file) -> str:
    file.seek(0, os.SEEK_END)
    size = file.tell()
    file.seek(max(0, size - 4 * OUTPUT_LIMIT))
    return file.read().decode("utf-8", "replace")[-OUTPUT_LIMIT:]


def _classify(report: dict, stdout: str, stderr: str, limits: Limits, memory_hit: bool):
    wall = float(report.get("wall", 0.0))
    cpu = float(report.get("cpu", 0.0))
    if "returncode" not in report:
        why = report.get("setup_error", "the sandbox ended without a report")
        return RunResult("crashed", None, stdout, f"sandbox: {why}\n{stderr}", wall, cpu)
    code = report["returncode"]
    if code is not None and type(code) is not int:
        return RunResult("crashed", None, stdout, f"sandbox: a bad report\n{stderr}", wall, cpu)
    if report.get("timed_out"):
        note = f"\nsandbox: stopped after the wall-clock limit of {limits.wall:g} s"
        return RunResult("timeout", None, stdout, stderr + note, wall, cpu)
    if report.get("disk_full"):
        note = f"\nsandbox: stopped after filling its disk budget of {limits.disk / MB:g} MB"
        return RunResult("crashed", None, stdout, stderr + note, wall, cpu)
    if code == 0:
        return RunResult("ok", 0, stdout, stderr, wall, cpu)
    # SIGXCPU comes only from RLIMIT_CPU's soft limit; SIGKILL from its hard limit, from
    # the cgroup's OOM killer, or from the command itself.
    cpu_note = f"\nsandbox: stopped after the CPU-time limit of {limits.cpu:g} s"
    if code == -signal.SIGXCPU:
        return RunResult("timeout", code, stdout, stderr + cpu_note, wall, cpu)
    if memory_hit or _MEMORY.search(stderr[-4000:]):
        note = f"\nsandbox: ran out of memory under the limit of {limits.memory / GB:g} GB"
        return RunResult("memory", code, stdout, stderr + note, wall, cpu)
    if code == -signal.SIGKILL and cpu >= 0.8 * limits.cpu:
        return RunResult("timeout", code, stdout, stderr + cpu_note, wall, cpu)
    return RunResult("crashed", code, stdout, stderr, wall, cpu)
