"""The first process of a sandbox: sets it up, runs the untrusted command, then ends it all.

Run by :mod:`tools.grade.sandbox` as ``python -I sandbox_init.py CONFIG_JSON``, either as
PID 1 of fresh PID, network, mount, IPC and UTS namespaces (``unshare ... --fork``, as
root), or as a plain process when namespaces are unavailable. Standard library only: it
runs before anything of the submission is importable and must not import it.

With namespaces it builds a new root on a tmpfs that holds only what Python needs
(``/usr``, ``/etc``, the interpreter, the virtual environment: all read-only), the
submission's scratch folder (read-write, bound at its own path), fresh ``/tmp`` and
``/dev/shm`` tmpfs, a few device nodes and a new ``/proc``. The command runs there under
``chroot`` as an unprivileged user of its own, with no capabilities, ``no_new_privs``,
rlimits, and only the loopback interface (brought up so a Jupyter kernel can talk to its client).

When the command exits, or the wall-clock limit passes, this process kills everything
the command started, reaps it, reports on file descriptor ``status_fd`` and exits. PID 1
exiting makes the kernel kill every process left in the PID namespace, including those that
called ``setsid``. Without namespaces this process is a child subreaper: every orphan of the
command (a ``setsid`` daemon too) is re-parented to it, and it kills its children until none
is left, so nothing outlives the sandbox and nothing holds a descriptor of the grader's open.

The command never holds a descriptor of this process's but 0, 1 and 2: every other one
(the status pipe among them) is closed before ``execve``. Its CPU time reaches the grader
through ``wait4`` on this process (its rusage counts every process it reaped), never
through anything the command could write. Student code never runs as root outside a user
namespace: without namespaces, root drops to the sandbox's own user or refuses to start.

With ``disk`` set, this process also adds up, a few times a second, what the scratch folder
holds, and ends the command when it passes that budget (for where the folder is not a
size-limited tmpfs of its own).
"""

from __future__ import annotations

import ctypes
import errno
import json
import os
import resource
import signal
import socket
import struct
import sys
import time

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MS_REC = 16384
MS_PRIVATE = 1 << 18
PR_SET_NO_NEW_PRIVS = 38
PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
DISK_POLL = 0.05  # seconds between two counts of the scratch folder's size
DISK_MAX_ENTRIES = 100_000  # more files than this count as over the disk budget
SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1
DEVICES = ("null", "zero", "full", "random", "urandom")

_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong]
_libc.mount.argtypes += [ctypes.c_char_p]


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str = ""):
    def enc(text: str | None) -> bytes | None:
        return None if text is None else text.encode()

    if _libc.mount(enc(source), enc(target), enc(fstype), flags, enc(data) if data else None):
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _bind_readonly(path: str, root: str) -> None:
    """Bind host ``path`` at the same place under ``root``, read-only (symlinks copied)."""
    target = root + path
    if os.path.islink(path) and os.path.dirname(path) == "/":  # merged /usr: /bin -> usr/bin
        os.symlink(os.readlink(path), target)
        return
    if not os.path.exists(path):
        return
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        open(target, "a").close()  # noqa: SIM115 - a mount point, closed at once
    _mount(path, target, None, MS_BIND | MS_REC)
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _loopback_up() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        import fcntl

        request = struct.pack("16sH14x", b"lo", 0)
        flags = struct.unpack("16sH14x", fcntl.ioctl(sock, SIOCGIFFLAGS, request))[1]
        fcntl.ioctl(sock, SIOCSIFFLAGS, struct.pack("16sH14x", b"lo", flags | IFF_UP))


def _join_cgroups(cgroups: list[str]) -> None:
    for folder in cgroups:
        with open(os.path.join(folder, "cgroup.procs"), "w") as procs:
            procs.write(str(os.getpid()))


def build_root(config: dict) -> str:
    """Mount the sandbox's file system view under ``config['root']``; return that path."""
    root = config["root"].rstrip("/")
    _mount(None, "/", None, MS_REC | MS_PRIVATE)  # nothing below propagates to the host
    _mount("tmpfs", root, "tmpfs", MS_NOSUID, "size=1m,mode=755")
    # The private /tmp first, the read-only binds over it: a checkout (so .venv) that lives
    # under /tmp must stay visible, not be hidden below the new tmpfs.
    for path, size in (("/tmp", config["tmp_size"]), ("/dev/shm", config["tmp_size"])):
        os.makedirs(root + path, exist_ok=True)
        _mount("tmpfs", root + path, "tmpfs", MS_NOSUID | MS_NODEV, f"size={size},mode=1777")
    for path in config["readonly"]:
        _bind_readonly(path, root)
    for name in DEVICES:
        target = f"{root}/dev/{name}"
        open(target, "a").close()  # noqa: SIM115 - a mount point, closed at once
        _mount(f"/dev/{name}", target, None, MS_BIND)
    os.makedirs(root + "/proc", exist_ok=True)
    _mount("proc", root + "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC)
    for writable in [
        config["workdir"],
        *([config["kernel"]["outdir"]] if config.get("kernel") else []),
    ]:
        os.makedirs(root + writable, exist_ok=True)
        _mount(writable, root + writable, None, MS_BIND)
        _mount(None, root + writable, None, MS_REMOUNT | MS_BIND | MS_NOSUID | MS_NODEV)
    _mount(None, root, None, MS_REMOUNT | MS_RDONLY | MS_NOSUID)
    return root


def _limit(config: dict) -> None:
    limits = {
        resource.RLIMIT_AS: config["memory"],
        resource.RLIMIT_CPU: config["cpu"],
        resource.RLIMIT_FSIZE: config["fsize"],
        resource.RLIMIT_CORE: 0,
    }
    if config["uid"] is not None:  # counted per user: only for the sandbox's own user
        limits[resource.RLIMIT_NPROC] = config["nproc"]
    for which, value in limits.items():
        hard = value + 5 if which == resource.RLIMIT_CPU else value  # SIGXCPU, then SIGKILL
        resource.setrlimit(which, (value, hard))


def _exec_command(
    config: dict,
    root: str | None,
    argv: list[str] | None = None,
    uid: int | None = -1,
    cwd: str | None = None,
    env: dict | None = None,
) -> None:
    """In the forked child: enter the sandbox, drop privileges, exec the command.

    ``argv``, ``uid``, ``cwd`` and ``env`` default to the config's command.
    """
    argv = argv or config["argv"]
    uid = config["uid"] if uid == -1 else uid
    try:
        os.setpgid(0, 0)
        if root is not None:
            os.chroot(root)
        os.chdir(cwd or config["workdir"])
        _limit(config)
        if uid is not None:
            os.setgroups([])
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)  # drops every capability too
        if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0):
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # dies with this process
        if os.getppid() != config["init_pid"]:  # it died before the line above
            os._exit(137)
        if os.geteuid() == 0 and root is None:
            # Outside a user namespace root is the machine's root: never the student's.
            raise PermissionError("refusing to run student code as root without namespaces")
        signal.signal(signal.SIGPIPE, signal.SIG_DFL)
        # Only stdin, stdout and stderr cross into the command: the status pipe and any
        # other descriptor stay this process's.
        os.closerange(3, max(3, resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 16))
        os.execve(argv[0], argv, env or config["env"])
    except BaseException as error:  # noqa: BLE001 - report anything, then die
        os.write(2, f"sandbox: cannot start {argv[0]}: {error}\n".encode())
        os._exit(127)


def _free_ports(count: int) -> list[int]:
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _write_private(path: str, data: bytes, uid: int | None) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        if uid is not None:
            os.fchown(f.fileno(), uid, uid)


def _start_kernel(config: dict, root: str | None) -> int:
    """Start the Jupyter kernel as the student's user; give its client the connection.

    The kernel runs the student's cells; the command (the client) runs as a user of its
    own and writes the executed notebook into ``outdir``, which the kernel's user cannot
    reach. Both learn the connection from files this process writes.
    """
    kernel = config["kernel"]
    names = ("shell_port", "iopub_port", "stdin_port", "control_port", "hb_port")
    info = dict(zip(names, _free_ports(len(names)), strict=True))
    info.update(
        ip="127.0.0.1",
        key=os.urandom(16).hex(),
        transport="tcp",
        signature_scheme="hmac-sha256",
        kernel_name="python3",
    )
    student = config["uid"]
    connection = os.path.join(config["workdir"], ".grade-kernel.json")
    try:
        os.unlink(connection)
    except FileNotFoundError:
        pass
    _write_private(connection, json.dumps(info).encode(), student)
    pid = os.fork()
    if pid == 0:
        argv = [*kernel["argv"], "-f", connection]
        _exec_command(config, root, argv=argv, uid=student, cwd=kernel["cwd"])
    info["pid"] = pid
    client = os.path.join(kernel["outdir"], "kernel.json")
    _write_private(client, json.dumps(info).encode(), kernel["client_uid"])
    return pid


def _kill_user(uid: int) -> None:
    """Kill every process of ``uid``: kill(-1) as that user reaches exactly those."""
    killer = os.fork()
    if killer == 0:
        try:
            os.setresgid(uid, uid, uid)
            os.setresuid(uid, uid, uid)
            os.kill(-1, signal.SIGKILL)  # all of this user's processes but this one
        finally:
            os._exit(0)
    os.waitpid(killer, 0)


def _children() -> list[int]:
    """The processes whose parent is this one (orphans re-parented to it included)."""
    me, kids = os.getpid(), []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as stat:
                fields = stat.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == me:
            kids.append(int(entry))
    return kids


def _kill_descendants(limit: float = 30.0) -> None:
    """SIGKILL every child and reap it, until none is left (orphans keep arriving here)."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        for kid in _children():
            try:
                os.kill(kid, signal.SIGKILL)
            except OSError:
                pass
        try:
            os.waitpid(-1, 0)
        except ChildProcessError:
            return


def _disk_usage(path: str, budget: int) -> int:
    """Bytes the files under ``path`` take (each inode once); past the budget it stops."""
    total, seen, entries = 0, set(), 0
    stack = [path]
    while stack:
        try:
            with os.scandir(stack.pop()) as it:
                for entry in it:
                    entries += 1
                    if entries > DISK_MAX_ENTRIES:
                        return budget + 1
                    info = entry.stat(follow_symlinks=False)
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    if (info.st_dev, info.st_ino) not in seen:
                        seen.add((info.st_dev, info.st_ino))
                        total += info.st_blocks * 512
                    if total > budget:
                        return total
        except OSError:
            continue
    return total


def main(config: dict) -> int:
    status_fd = config["status_fd"]
    start = time.monotonic()
    root = None
    if config["isolated"]:
        try:
            _join_cgroups(config["cgroups"])
            root = build_root(config)
            _loopback_up()
        except OSError as error:
            os.write(status_fd, json.dumps({"setup_error": str(error)}).encode())
            return 1
    else:  # orphans of the command come to this process, which kills them at the end
        _libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    config["init_pid"] = os.getpid()
    kernel = config.get("kernel")
    if kernel:
        _start_kernel(config, root)
    pid = os.fork()
    if pid == 0:
        if kernel:  # the client: a user of its own, its own home, in the folder it writes
            env = {**config["env"], **kernel["client_env"]}
            _exec_command(config, root, uid=kernel["client_uid"], cwd=kernel["outdir"], env=env)
        _exec_command(config, root)
    deadline = start + config["wall"]
    returncode = None
    timed_out = disk_full = False
    disk, next_count = config.get("disk"), start
    while returncode is None:
        try:
            # Reap anything: orphans are re-parented to us when we are PID 1.
            child, wait_status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            break
        if child == pid:
            returncode = os.waitstatus_to_exitcode(wait_status)
        elif child == 0:
            now = time.monotonic()
            if now > deadline:
                timed_out = True
                break
            if disk is not None and now >= next_count:
                if _disk_usage(config["workdir"], disk) > disk:
                    disk_full = True
                    break
                next_count = now + DISK_POLL
            time.sleep(0.01)
    # Kill what is left: the whole namespace when we are its PID 1; else the group, and
    # every process of the sandbox's own user (setsid daemons included).
    try:
        if config["isolated"]:
            os.kill(-1, signal.SIGKILL)
        else:
            os.killpg(pid, signal.SIGKILL)
    except OSError as error:
        if error.errno != errno.ESRCH:
            raise
    if not config["isolated"] and config["uid"] is not None:
        _kill_user(config["uid"])
    if returncode is None and not (timed_out or disk_full):
        try:  # the command itself ended between the last poll and the kill
            child, wait_status = os.waitpid(pid, 0)
            returncode = os.waitstatus_to_exitcode(wait_status)
        except ChildProcessError:
            pass
    _kill_descendants()
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    report = {
        "returncode": returncode,
        "timed_out": timed_out,
        "disk_full": disk_full,
        "wall": time.monotonic() - start,
        "cpu": usage.ru_utime + usage.ru_stime,
    }
    os.write(status_fd, json.dumps(report).encode())
    return 0


if __name__ == "__main__":
    sys.exit(main(json.loads(sys.argv[1])))
