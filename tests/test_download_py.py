"""The Python downloader's parts where Windows differs, tested here on Linux.

Windows has no ``fcntl`` (the lock is ``msvcrt.locking``), lets no ``os.kill(pid, 0)``
probe a process, and would check out scripts with CRLF endings unless
``.gitattributes`` says otherwise. These tests take away what Windows lacks
(``monkeypatch``) and check what the downloader does instead; the end-to-end runs in
a Python made to look like Windows are in ``test_get_datasets.py`` (entry
``windows``). Also here: the settings' validation, cleanup of odd trees, archive
headers that would make tarfile read megabytes before the member is seen, and the
download under every Python 3.10+ on this machine.
"""

from __future__ import annotations

import errno
import gzip
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
import time
import tracemalloc
import types
from pathlib import Path

import pytest
from test_get_datasets import (  # the loopback server and the kit
    bin_path,
    command,
    make_kit,
    md5_of,
    script_env,
)
from test_get_datasets import fixture_folder as fixture_folder  # noqa: F401 (fixtures)
from test_get_datasets import good_archive as good_archive  # noqa: F401
from test_get_datasets import good_members as good_members  # noqa: F401
from test_get_datasets import server as server  # noqa: F401

from cs231n import _download, get_datasets
from cs231n.data_utils import REPO_ROOT

# Windows' code paths are simulated on POSIX (see the module docstring), with fcntl
fcntl = pytest.importorskip("fcntl", reason="simulates Windows on a POSIX system")

# --------------------------------------------------------------------------------------
# The lock: flock, msvcrt, or none
# --------------------------------------------------------------------------------------


class FakeMsvcrt(types.ModuleType):
    """msvcrt.locking as Windows behaves: EACCES while another process holds the range."""

    LK_UNLCK, LK_LOCK, LK_NBLCK = 0, 1, 2

    def __init__(self, busy_for: int = 0, error: int = errno.EACCES) -> None:
        super().__init__("msvcrt")
        self.calls: list[tuple[int, int, int]] = []
        self.busy_for, self.error = busy_for, error

    def locking(self, fd: int, mode: int, nbytes: int) -> None:
        self.calls.append((mode, os.lseek(fd, 0, os.SEEK_CUR), nbytes))
        if mode == self.LK_NBLCK and self.busy_for > 0:
            self.busy_for -= 1
            raise OSError(self.error, os.strerror(self.error))


@pytest.fixture
def windows_lock(monkeypatch) -> FakeMsvcrt:
    """No fcntl, and an msvcrt that is busy twice before it grants the lock."""
    fake = FakeMsvcrt(busy_for=2)
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError
    monkeypatch.setitem(sys.modules, "msvcrt", fake)
    return fake


def test_flock_waits_for_the_holder(tmp_path):
    path = tmp_path / "module.py"
    path.write_text("x = 1\n")
    waited = []
    with open(path) as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # as another run holding it
        threading.Timer(0.5, fcntl.flock, (held, fcntl.LOCK_UN)).start()
        start = time.monotonic()
        with _download.run_lock(path, lambda: waited.append(1)) as locked:
            took = time.monotonic() - start
            assert locked is True
            # while we hold it, nobody else gets it
            with open(path) as other:
                with pytest.raises(BlockingIOError):
                    fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
    assert waited == [1] and took >= 0.4
    with open(path) as other:  # released at the end of the block
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_windows_lock_is_one_byte_past_the_end(tmp_path, windows_lock):
    path = tmp_path / "module.py"
    path.write_text("x = 1\n")
    waited = []
    with _download.run_lock(path, lambda: waited.append(1)) as locked:
        assert locked is True
        assert path.read_text() == "x = 1\n"  # the module can still be read (imported)
    offset = _download.WINDOWS_LOCK_OFFSET
    assert offset > path.stat().st_size
    lock, unlock = FakeMsvcrt.LK_NBLCK, FakeMsvcrt.LK_UNLCK
    # busy twice (it waited once, said so once), then locked, then unlocked, all one byte
    assert windows_lock.calls == [(lock, offset, 1)] * 3 + [(unlock, offset, 1)]
    assert waited == [1]


def test_windows_lock_gives_up_after_the_wait(tmp_path, windows_lock):
    windows_lock.busy_for = 10**9
    path = tmp_path / "module.py"
    path.write_text("")
    with pytest.raises(_download.LockTimeout):
        with _download.run_lock(path, lambda: None, wait_seconds=0.5):
            pytest.fail("it ran without the lock")
    assert all(call[0] == FakeMsvcrt.LK_NBLCK for call in windows_lock.calls)


def test_windows_lock_error_that_is_not_busy_runs_unlocked(tmp_path, windows_lock):
    windows_lock.busy_for, windows_lock.error = 1, errno.EINVAL  # e.g. a network drive
    path = tmp_path / "module.py"
    path.write_text("")
    with _download.run_lock(path, lambda: pytest.fail("it waited")) as locked:
        assert locked is False
    assert [call[0] for call in windows_lock.calls] == [FakeMsvcrt.LK_NBLCK]  # no unlock


def test_no_lock_module_at_all_runs_unlocked(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "fcntl", None)
    monkeypatch.setitem(sys.modules, "msvcrt", None)
    path = tmp_path / "module.py"
    path.write_text("")
    with _download.run_lock(path, lambda: pytest.fail("it waited")) as locked:
        assert locked is False


# --------------------------------------------------------------------------------------
# Leftovers of killed runs: which processes are gone
# --------------------------------------------------------------------------------------


def test_pid_alive_tells_running_from_gone():
    assert _download.pid_alive(os.getpid()) is True
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: the pid is free
    assert _download.pid_alive(child.pid) is False


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_a_zombie_is_gone():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    deadline = time.monotonic() + 20
    while Path(f"/proc/{child.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.02)
    try:
        assert _download.pid_alive(child.pid) is False  # exited, not yet reaped
    finally:
        child.wait()


def test_windows_pids_are_not_probed(monkeypatch):
    # os.kill(pid, 0) on Windows would end the process (signal 0 is CTRL_C_EVENT)
    probes = []
    monkeypatch.setattr(os, "kill", lambda *args: probes.append(args))
    monkeypatch.setattr(os, "name", "nt")
    alive = _download.pid_alive(os.getpid())
    monkeypatch.undo()
    assert alive is None and probes == []


@pytest.mark.parametrize(("alive", "locked", "removed"), [
    (False, False, True), (True, True, False), (None, True, True), (None, False, False),
])  # fmt: skip
def test_leftovers_removed_only_when_surely_abandoned(
    tmp_path, monkeypatch, capsys, alive, locked, removed
):
    (tmp_path / "cifar-10.tmp.12345.abc" / "x").mkdir(parents=True)
    (tmp_path / "cifar-10.tmp.notapid.abc").mkdir()  # not one of ours: never touched
    monkeypatch.setattr(_download, "pid_alive", lambda pid: alive)
    run = get_datasets.Run(get_datasets.read_settings({}), "cmd", datasets=tmp_path)
    run.locked = locked
    run.remove_leftovers()
    assert (tmp_path / "cifar-10.tmp.12345.abc").exists() is not removed
    assert (tmp_path / "cifar-10.tmp.notapid.abc").exists()
    assert ("Removed datasets/cifar-10.tmp.12345.abc" in capsys.readouterr().out) is removed


def test_remove_tree_copes_with_odd_trees(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    tree = tmp_path / "tree"
    (tree / "a" / "b").mkdir(parents=True)
    (tree / "a" / "b" / "file").write_text("x")
    (tree / "readonly").write_text("x")
    (tree / "readonly").chmod(0o444)
    (tree / "link").symlink_to(outside, target_is_directory=True)
    (tree / "a" / "locked").mkdir()
    (tree / "a" / "locked" / "inside").write_text("x")
    (tree / "a" / "locked").chmod(0)
    _download.remove_tree(tree)
    assert not tree.exists() and not tree.is_symlink()
    assert (outside / "keep.txt").read_text() == "keep"  # the link was not followed
    _download.remove_tree(tree)  # gone already: nothing to do


# --------------------------------------------------------------------------------------
# Settings
# --------------------------------------------------------------------------------------


def test_settings_defaults_and_case():
    s = get_datasets.read_settings({"CIFAR10_URL": "", "CIFAR10_MD5": ""})
    assert (s.url, s.md5, s.max_bytes, s.stall_seconds) == (
        get_datasets.OFFICIAL_URL, get_datasets.OFFICIAL_MD5, 170_498_071, 60,
    )  # fmt: skip
    s = get_datasets.read_settings({"CIFAR10_MD5": "AB" * 16, "CIFAR10_URL": "file:///x"})
    assert s.md5 == "ab" * 16 and s.max_bytes == 200_000_000 and not s.official


@pytest.mark.parametrize("value", ["0", "-1", "1e6", "10MB", " 5", "\u0663", "99999999999"])
@pytest.mark.parametrize("name", ["CIFAR10_MAX_BYTES", "CIFAR10_STALL_SECONDS"])
def test_settings_refuse_what_is_not_a_whole_number(name, value):
    with pytest.raises(get_datasets.Failure, match=f"{name}=.* is not a whole number"):
        get_datasets.read_settings({name: value})


# --------------------------------------------------------------------------------------
# Archive headers read before the member: refused from the header
# --------------------------------------------------------------------------------------


def header_bomb(kind: bytes, size: int) -> bytes:
    """A .tar.gz whose first header is a pax or long-name record claiming ``size`` bytes
    (tarfile reads such a record whole before it returns the member it describes)."""
    info = tarfile.TarInfo("././@LongLink" if kind == tarfile.GNUTYPE_LONGNAME else "pax")
    info.type, info.size = kind, size
    header = info.tobuf(
        format=tarfile.USTAR_FORMAT if kind == tarfile.XHDTYPE else tarfile.GNU_FORMAT
    )
    zeros = gzip.compress(bytes(1 << 20))
    return gzip.compress(header) + zeros * (size >> 20) + gzip.compress(bytes(1024))


@pytest.mark.parametrize("kind", [tarfile.XHDTYPE, tarfile.GNUTYPE_LONGNAME], ids=["pax", "gnu"])
def test_huge_extended_header_is_refused_unread(tmp_path, kind):
    archive = tmp_path / "bomb.tar.gz"
    archive.write_bytes(header_bomb(kind, 150 << 20))
    assert archive.stat().st_size < 300_000
    tracemalloc.start()
    try:
        with pytest.raises(_download.ArchiveError, match="extended header"):
            list(get_datasets.checked_members(archive, official=False))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5_000_000  # not the 150 MB the header claims


def test_expanded_size_stops_at_the_cap(tmp_path):
    archive = tmp_path / "zeros.gz"
    archive.write_bytes(gzip.compress(bytes(1 << 20)) * 50)  # 50 MiB of zeros
    start = time.process_time()
    assert _download.expanded_size(archive, 1 << 20) <= (1 << 20) + _download.CHUNK
    assert time.process_time() - start < 2
    assert _download.expanded_size(archive, 100 << 20) == 50 << 20


def test_not_a_gzip_is_named(tmp_path):
    archive = tmp_path / "plain.tar"
    with tarfile.open(archive, "w") as tar:
        tar.addfile(tarfile.TarInfo("cifar-10-batches-py"), io.BytesIO())
    with pytest.raises(_download.ArchiveError, match="cannot be read as a .tar.gz"):
        _download.expanded_size(archive, 1 << 20)


# --------------------------------------------------------------------------------------
# Every Python the kit supports, standard library only
# --------------------------------------------------------------------------------------


def pythons() -> dict[str, str]:
    """Python 3.10+ interpreters on this machine, by version: on PATH, in /usr/bin, or
    next to this one (pyenv keeps versions side by side). Run by their own path, they
    have none of this environment's packages."""
    names = [f"python3.{minor}" for minor in range(10, 20)]
    found = [shutil.which(n) for n in names] + [f"/usr/bin/{n}" for n in names]
    found += [str(p) for p in Path(sys.base_prefix).parent.glob("3.*/bin/python3.*")]
    versions: dict[str, str] = {}
    for python in filter(None, found):
        if not re.fullmatch(r"python3\.\d+", Path(python).name):
            continue
        try:
            probe = subprocess.run(
                [python, "-c", "import sys; print(*sys.version_info[:2], sys.executable)"],
                capture_output=True,
                text=True,
                timeout=60,
            )
        except OSError:  # not there, or not executable
            continue
        if probe.returncode == 0:
            major, minor, executable = probe.stdout.split(maxsplit=2)
            if (int(major), int(minor)) >= (3, 10):
                versions.setdefault(f"{major}.{minor}", os.path.realpath(executable.strip()))
    return versions


def test_every_python_downloads(tmp_path, server, good_archive):  # noqa: F811
    found = pythons()
    assert found, "no Python 3.10+ found, not even this one"
    server.files["c.tgz"] = good_archive
    for version, python in sorted(found.items()):
        kit = make_kit(tmp_path / version)
        args, cwd = command(kit, "windows", python)
        env = script_env(kit, server.url("c.tgz"), md5_of(good_archive), "windows", python)
        result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"Python {version}: {result.stderr}"
        assert (kit / "datasets" / "cifar-10-batches-py" / "test_batch").is_file(), version
    print("downloaded with Python", ", ".join(sorted(found)))


# --------------------------------------------------------------------------------------
# Line endings: scripts stay LF on a CRLF checkout
# --------------------------------------------------------------------------------------

needs_git = pytest.mark.skipif(
    shutil.which("git") is None or not (REPO_ROOT / ".git").exists(), reason="needs git"
)


def git(*args: str, cwd: Path = REPO_ROOT) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=120
    ).stdout


def scripts() -> list[str]:
    """Tracked files a shell or make reads: a #! line, *.sh, or a Makefile."""
    found = []
    for rel in git("ls-files", "-z").split("\0"):
        path = REPO_ROOT / rel
        if not rel or not path.is_file():
            continue
        with open(path, "rb") as f:
            shebang = f.read(2) == b"#!"
        if shebang or rel.endswith(".sh") or Path(rel).name == "Makefile":
            found.append(rel)
    return found


def test_gitattributes_keeps_shell_scripts_lf():
    lines = (REPO_ROOT / ".gitattributes").read_text().splitlines()
    assert "*.sh text eol=lf" in lines
    assert "Makefile text eol=lf" in lines


@needs_git
def test_git_says_every_script_is_lf():
    listed = scripts()
    assert "get_datasets.sh" in listed and "Makefile" in listed
    report = git("check-attr", "eol", "--", *listed)
    assert report.count(": eol: lf\n") == len(listed), report


@needs_git
def test_crlf_checkout_keeps_scripts_lf(tmp_path):
    """A clone with core.autocrlf=true (Git for Windows' default) gets LF scripts."""
    clone = tmp_path / "clone"
    git("clone", "--quiet", "-c", "core.autocrlf=true", str(REPO_ROOT), str(clone))
    # the setting took effect: a text file without an attribute got CRLF endings
    assert b"\r\n" in (clone / "README.md").read_bytes()
    committed = set(git("ls-files", cwd=clone).splitlines())
    for rel in scripts():
        if rel in committed:  # (a script added since the last commit is not in the clone)
            assert b"\r" not in (clone / rel).read_bytes(), rel
    env = {"PATH": bin_path(tmp_path, {"python3": os.path.realpath(sys.executable)})}
    result = subprocess.run(
        ["sh", str(clone / "get_datasets.sh"), "--help"], env={**env, "PATH": env["PATH"] +
        ":/bin:/usr/bin"}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr  # the script runs as checked out
    assert "CIFAR10_URL" in result.stdout


# --------------------------------------------------------------------------------------
# main() in a process that keeps running (a notebook's kernel)
# --------------------------------------------------------------------------------------


def test_main_leaves_the_signal_handlers_as_they_were(monkeypatch, capsys):
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    monkeypatch.setenv("CIFAR10_MAX_BYTES", "lots")  # fails before it touches datasets/
    assert get_datasets.main([]) == 1
    assert "CIFAR10_MAX_BYTES=lots is not a whole number" in capsys.readouterr().err
    assert {s: signal.getsignal(s) for s in handlers} == handlers


def archive_of(*members: tarfile.TarInfo) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info in members:
            tar.addfile(info, io.BytesIO(bytes(info.size)) if info.isreg() else None)
    return buffer.getvalue()


def member(name: str, kind: bytes = tarfile.REGTYPE, size: int = 0, link: str = ""):
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    info.size = size if kind in (tarfile.REGTYPE, tarfile.AREGTYPE) else 0
    return info


@pytest.mark.parametrize(
    ("hostile", "phrase"),
    [
        (member("cifar-10-batches-py/test_batch", tarfile.CHRTYPE), "special file"),
        (member("cifar-10-batches-py/test_batch", tarfile.BLKTYPE), "special file"),
        (member("cifar-10-batches-py/test_batch", tarfile.FIFOTYPE), "special file"),
        (member("cifar-10-batches-py/test_batch", tarfile.SYMTYPE, link="/etc"), "a link"),
        (member("cifar-10-batches-py/test_batch", tarfile.LNKTYPE, link="/etc"), "a link"),
        (member("cifar-10-batches-py/..\\..\\evil"), "'..'"),
        (member("/cifar-10-batches-py/test_batch"), "outside"),
        (member("./cifar-10-batches-py/test_batch"), "'.'"),
        (member("cifar-10-batches-py//test_batch"), "nested"),
        (member("cifar-10-batches-py/test_batch", size=31_036_000), "31036000 bytes"),
        (member("cifar-10-batches-py/batches.meta", size=5000), "5000 bytes"),
        (member("cifar-10-batches-py", tarfile.REGTYPE), "appears twice"),  # a file, now
    ],
    ids=lambda v: v.name if isinstance(v, tarfile.TarInfo) else None,
)
def test_hostile_members_are_refused_before_any_data(tmp_path, hostile, phrase):
    # the hostile member comes after a good one: nothing may have been yielded for writing
    good = member("cifar-10-batches-py/data_batch_1", size=10)
    archive = tmp_path / "a.tar.gz"
    archive.write_bytes(archive_of(member("cifar-10-batches-py", tarfile.DIRTYPE), good, hostile))
    seen = []
    with pytest.raises(_download.ArchiveError, match=phrase.replace(".", r"\.")):
        for base, _, _ in get_datasets.checked_members(archive, official=False):
            seen.append(base)
    assert seen == ["data_batch_1"]  # checked one by one; the caller lists all first
