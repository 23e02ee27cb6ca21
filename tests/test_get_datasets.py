"""End-to-end tests of the CIFAR-10 downloader against a loopback HTTP server.

The downloader is ``python -m cs231n.get_datasets``; ``get_datasets.sh`` finds a Python
and runs it. Each test runs it in these ways (``ENTRIES``):

- ``sh``: ``./get_datasets.sh`` from another working directory, with a PATH that holds
  only ``python3``;
- ``windows``: ``python -m cs231n.get_datasets`` from another folder, in a Python made
  to look like Windows by a ``sitecustomize`` (no ``fcntl``, ``O_NOFOLLOW``,
  ``O_NONBLOCK`` or ``SIGHUP``; an ``msvcrt`` whose ``locking`` is emulated and refuses
  a lock over the file's bytes);

and a few tests also as ``python``: ``python -m cs231n.get_datasets`` from the kit's
folder, as a student on Colab runs it; ``bare``: a Python with neither ``fcntl`` nor
``msvcrt``, so no lock at all.

Each test uses a copy of the kit (the script and the downloader's modules) in a
temporary folder with its own datasets/, so the real datasets/ is never touched. The
interpreter is the one under the test's virtual environment, run without it: the
downloader needs the standard library only. The server (127.0.0.1, port 0) serves
archives in several ways (whole, cut short, slowly, as a trickle, without end, as a
redirect) and records every request. Every failure must leave datasets/ exactly as it
was, and the message must say what really happened.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from cifar_fixtures import write_cifar_folder

from cs231n.data_utils import REPO_ROOT, load_CIFAR10

# Windows' code paths are simulated on POSIX (see the module docstring), with fcntl
fcntl = pytest.importorskip("fcntl", reason="simulates Windows on a POSIX system")

SCRIPT = REPO_ROOT / "get_datasets.sh"
MODULES = ["__init__.py", "get_datasets.py", "_download.py"]  # what the download imports
# The interpreter behind this virtual environment; run by its own path it has no
# site-packages of ours, so the download proves it needs the standard library only.
PYTHON = os.path.realpath(sys.executable)
ENTRIES = ["sh", "windows"]
ROOT = os.geteuid() == 0
NOBODY = 65534
# The real files' sizes (see cs231n/get_datasets.py): a fixture member over them is refused.
LARGEST_BATCH = 31035999

# A sitecustomize that makes the interpreter look like Windows ("windows") or
# like a system with no file locks at all ("bare") to the downloader.
SIMULATED_SITE = """
import errno, os, signal, sys, types
import fcntl as real_fcntl

for name in ("O_NOFOLLOW", "O_NONBLOCK"):
    if hasattr(os, name):
        delattr(os, name)
if hasattr(signal, "SIGHUP"):
    del signal.SIGHUP
sys.modules["fcntl"] = None  # import fcntl now fails, as on Windows

def locking(fd, mode, nbytes):
    # Windows locks byte ranges, and nobody can read a locked range: a lock over the
    # file's bytes would keep other runs from importing the module it locks.
    where = os.lseek(fd, 0, os.SEEK_CUR)
    if where < os.fstat(fd).st_size or nbytes != 1:
        raise AssertionError(f"msvcrt.locking over the file's bytes ({where}, {nbytes})")
    log = os.environ.get("FAKE_MSVCRT_LOG")
    if log:
        with open(log, "a") as out:
            out.write(f"{mode} {where}\\n")
    if mode == LK_NBLCK:
        try:
            real_fcntl.flock(fd, real_fcntl.LOCK_EX | real_fcntl.LOCK_NB)
        except BlockingIOError:
            raise PermissionError(errno.EACCES, "Permission denied") from None
    elif mode == LK_UNLCK:
        real_fcntl.flock(fd, real_fcntl.LOCK_UN)
    else:
        raise AssertionError(f"msvcrt.locking mode {mode}: only LK_NBLCK and LK_UNLCK")

LK_UNLCK, LK_LOCK, LK_NBLCK, LK_RLCK, LK_NBRLCK = 0, 1, 2, 3, 4
if os.environ.get("SIMULATE") == "windows":
    sys.modules["msvcrt"] = types.ModuleType("msvcrt")
    sys.modules["msvcrt"].__dict__.update(
        locking=locking, LK_UNLCK=LK_UNLCK, LK_LOCK=LK_LOCK, LK_NBLCK=LK_NBLCK
    )
"""


# --------------------------------------------------------------------------------------
# Fixtures: archives, the server, the kit
# --------------------------------------------------------------------------------------


def make_archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.GNU_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name: str, data: bytes = b"x", mode: int = 0o644) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size, info.mode = len(data), mode
    return info, data


def link_member(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def folder_member(mode: int = 0o755) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo("cifar-10-batches-py")
    info.type, info.mode = tarfile.DIRTYPE, mode
    return info, None


def bomb_archive(name: str, size: int) -> bytes:
    """A .tar.gz whose one member claims `size` zero bytes: tiny, however big it expands.

    gzip allows members back to back, so one compressed MiB of zeros repeated gives a
    stream of any length at about 1 kB per MiB, built in no time.
    """
    info = tarfile.TarInfo(name)
    info.size = size
    header = info.tobuf(format=tarfile.GNU_FORMAT)
    mib = 1 << 20
    zeros = gzip_member(bytes(mib))
    body, rest = divmod(size, mib)
    tail = bytes(rest + (-size % 512) + 1024)  # last bytes, padding, end-of-archive
    return gzip_member(header) + zeros * body + gzip_member(tail)


def gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)  # gzip framing
    return compressor.compress(data) + compressor.flush()


@pytest.fixture(scope="module")
def fixture_folder(tmp_path_factory) -> Path:
    return write_cifar_folder(tmp_path_factory.mktemp("fixture"), n_per_batch=30, n_test=20)


@pytest.fixture(scope="module")
def good_members(fixture_folder) -> list:
    members: list = [folder_member()]
    for path in sorted(fixture_folder.iterdir()):
        members.append(file_member(f"cifar-10-batches-py/{path.name}", path.read_bytes()))
    return members


@pytest.fixture(scope="module")
def good_archive(good_members) -> bytes:
    return make_archive(good_members)


class Server:
    """A loopback HTTP server: /NAME serves files[NAME] in the mode modes[NAME].

    Modes: "full" (default), "half" (promise all, send half, hang up), "slow" (about
    10 kB/s), "trickle" (about 2 kB/s), "endless" (no Content-Length, zeros without end),
    "late" (the whole file after a 0.2 s pause, so that concurrent runs overlap).
    """

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}
        self.redirects: dict[str, str] = {}  # name: where a 302 sends the client
        self.requests: list[str] = []
        self.bytes_sent = 0
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                name = self.path.lstrip("/")
                server.requests.append(name)
                if name in server.redirects:
                    self.send_response(302)
                    self.send_header("Location", server.redirects[name])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if name not in server.files:
                    self.send_error(404)
                    return
                body, mode = server.files[name], server.modes.get(name, "full")
                try:
                    self.send_response(200)
                    self.send_header("Content-Type", "application/gzip")
                    if mode != "endless":
                        self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.close_connection = True
                    if mode == "full":
                        self.wfile.write(body)
                    elif mode == "late":
                        server.stop.wait(0.2)
                        self.wfile.write(body)
                    elif mode == "half":
                        self.wfile.write(body[: len(body) // 2])
                    elif mode == "endless":
                        chunk = bytes(65536)
                        while not server.stop.is_set():
                            self.wfile.write(chunk)
                            server.bytes_sent += len(chunk)
                    else:  # slow or trickle, until the client goes away
                        step, pause = (512, 0.05) if mode == "slow" else (200, 0.1)
                        for start in range(0, len(body), step):
                            if server.stop.wait(pause):
                                break
                            self.wfile.write(body[start : start + step])
                            self.wfile.flush()
                            server.bytes_sent += step
                except OSError:  # the client hung up: what these modes are for
                    pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.scheme = "https" if tls else "http"
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


def make_kit(where: Path) -> Path:
    """A copy of the script and the downloader, with a datasets/ holding one file."""
    kit = where / "kit"
    (kit / "datasets" / "fashion-mnist").mkdir(parents=True)
    (kit / "datasets" / "fashion-mnist" / "README.md").write_text("bundled\n")
    (kit / "cs231n").mkdir()
    for name in MODULES:
        shutil.copy2(REPO_ROOT / "cs231n" / name, kit / "cs231n" / name)
    shutil.copy2(SCRIPT, kit / "get_datasets.sh")
    return kit


@pytest.fixture
def kit(tmp_path) -> Path:
    return make_kit(tmp_path)


@pytest.fixture(params=ENTRIES)
def entry(request) -> str:
    return request.param


@pytest.fixture
def open_place() -> Iterator[Path]:
    """A folder that the user `nobody` can use (pytest's tmp_path is private to root)."""
    where = Path(tempfile.mkdtemp(prefix="get-datasets-"))
    where.chmod(0o755)
    yield where
    shutil.rmtree(where)


def listing(folder: Path) -> list[tuple[str, str, int]]:
    """Every entry under folder, hidden ones included: (path, kind, size)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        size = path.lstat().st_size if kind == "file" else 0
        entries.append((path.relative_to(folder).as_posix(), kind, size))
    return entries


def bin_path(where: Path, pythons: dict[str, str]) -> str:
    """A folder for PATH holding only the given programs, e.g. {"python3": PYTHON}."""
    bin_dir = where / (
        "bin-" + "-".join(f"{k}={Path(v).name}" for k, v in sorted(pythons.items()))
    )
    bin_dir.mkdir(exist_ok=True)
    for name, target in pythons.items():
        try:
            (bin_dir / name).symlink_to(target)
        except FileExistsError:  # made by a concurrent run just now
            pass
    return str(bin_dir)


def site_path(where: Path) -> str:
    folder = where / "simulated-site"
    folder.mkdir(exist_ok=True)
    if not (folder / "sitecustomize.py").exists():
        part = folder / f"sitecustomize.{threading.get_ident()}.tmp"  # runs may race here
        part.write_text(SIMULATED_SITE)
        os.replace(part, folder / "sitecustomize.py")
    return str(folder)


def command(kit: Path, entry: str, python: str = PYTHON) -> tuple[list[str], Path]:
    """The command line of the downloader run as ``entry``, and its working folder."""
    if entry == "sh":
        return [str(kit / "get_datasets.sh")], elsewhere_of(kit)
    where = kit if entry == "python" else elsewhere_of(kit)
    return [python, "-m", "cs231n.get_datasets"], where


def script_env(
    kit: Path, url: str, md5: str | None, entry: str, python: str = PYTHON, **extra: str
) -> dict[str, str]:
    where = kit.parent
    env = {"PATH": bin_path(where, {"python3": python}), "HOME": str(where), "LC_ALL": "C"}
    if entry in ("windows", "bare"):
        env["PYTHONPATH"] = os.pathsep.join([site_path(where), str(kit)])
        env["SIMULATE"] = entry
    env["CIFAR10_URL"] = url
    if md5 is not None:
        env["CIFAR10_MD5"] = md5
    return {**env, **extra}


def elsewhere_of(kit: Path) -> Path:
    elsewhere = kit.parent / "elsewhere"  # the download must not depend on the cwd
    elsewhere.mkdir(exist_ok=True)
    return elsewhere


def run_script(
    kit, url, md5, entry="sh", user=None, python=PYTHON, **extra
) -> subprocess.CompletedProcess:
    args, cwd = command(kit, entry, python)
    return subprocess.run(
        args,
        cwd=cwd,
        env=script_env(kit, url, md5, entry, python, **extra),
        capture_output=True,
        text=True,
        timeout=60,
        **({"user": user, "group": user, "extra_groups": []} if user is not None else {}),
    )


def start_script(kit, url, md5, entry="sh", **extra) -> subprocess.Popen:
    # A job started in the background by a non-interactive shell (as CI may run us)
    # inherits SIGINT ignored, and Python keeps a signal ignored on entry ignored:
    # restore the default disposition before exec'ing the download, as a terminal would.
    restore_sigint = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    args, cwd = command(kit, entry)
    return subprocess.Popen(
        [sys.executable, "-c", restore_sigint, *args],
        cwd=cwd,
        env=script_env(kit, url, md5, entry, **extra),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal job
    )


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_failed_cleanly(result, kit, before, *phrases):
    assert result.returncode != 0, result.stdout + result.stderr
    assert listing(kit / "datasets") == before, result.stderr
    assert listing(elsewhere_of(kit)) == []
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


def wait_for_partial_download(kit: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in (kit / "datasets").glob("cifar-10.tmp.*/*.tar.gz"):
            if path.stat().st_size > 0:
                return
        time.sleep(0.05)
    raise AssertionError("the download never started")


def finish(proc: subprocess.Popen, timeout: float = 20) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()  # reaps it and closes the pipes


# --------------------------------------------------------------------------------------
# What worked already: download, verify, refuse unsafe members, leave nothing behind
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("entry", ["sh", "python", "windows"])
def test_good_archive_lands_in_datasets(kit, server, good_archive, fixture_folder, entry):
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert result.returncode == 0, result.stderr
    assert "ready in datasets/cifar-10-batches-py" in result.stdout
    target = kit / "datasets" / "cifar-10-batches-py"
    added = [e for e in listing(kit / "datasets") if e not in before]
    assert sorted(p for p, _, _ in added) == sorted(
        ["cifar-10-batches-py"]
        + [f"cifar-10-batches-py/{p.name}" for p in fixture_folder.iterdir()]
    )  # the folder, its files, and no temporary leftovers
    for got, want in zip(load_CIFAR10(target), load_CIFAR10(fixture_folder), strict=True):
        np.testing.assert_array_equal(got, want)
    assert server.requests == ["c.tgz"]
    assert result.stderr == ""


def test_second_run_downloads_nothing(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    assert run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry).returncode == 0
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert result.returncode == 0 and "already" in result.stdout
    assert server.requests == ["c.tgz"]  # the second run sent no request
    assert listing(kit / "datasets") == before


def test_default_md5_is_the_official_one(kit, server, good_archive, entry):
    # without CIFAR10_MD5 the fixture archive cannot pass as CIFAR-10
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), None, entry)
    assert_failed_cleanly(result, kit, before, "c58f30108f718f92721af3b95e74349a")
    assert "the official archive is 170498071" in result.stderr


def test_wrong_checksum_extracts_nothing(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), "0" * 32, entry)
    assert_failed_cleanly(result, kit, before, "checksum mismatch", md5_of(good_archive))


def test_refused_connection_is_named(kit, good_archive, entry):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = listing(kit / "datasets")
    url = f"http://127.0.0.1:{port}/c.tgz"
    result = run_script(kit, url, md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "could not download", "refused the connection")
    assert "stalled" not in result.stderr and "DNS" not in result.stderr


def test_unknown_host_is_named(kit, good_archive, entry):
    # .invalid never resolves (RFC 6761), with or without a network
    before = listing(kit / "datasets")
    result = run_script(kit, "http://cifar.invalid/c.tgz", md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "could not be resolved (DNS)")
    assert "refused" not in result.stderr


def test_interrupted_transfer(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "half"
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "could not download")
    assert "stalled" not in result.stderr and "refused" not in result.stderr
    assert server.requests == ["c.tgz"]


def test_missing_file_on_server(kit, server, good_archive, entry):
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("nope.tgz"), md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "answered with an error", "404")


@pytest.mark.parametrize(
    ("extra", "phrase"),
    [
        (file_member("../evil"), "'..'"),
        (file_member("cifar-10-batches-py/../../evil"), "'..'"),
        (file_member("/tmp/evil-absolute"), "outside"),
        (file_member("evil-top-level"), "outside"),
        (file_member("cifar-10-batches-py/sub/evil"), "nested"),
        (link_member("cifar-10-batches-py/evil", "/etc/passwd", tarfile.SYMTYPE), "link"),
        (link_member("cifar-10-batches-py/hard", "/etc/passwd", tarfile.LNKTYPE), "link"),
        (file_member("cifar-10-batches-py/notes.py"), "not a CIFAR-10 file"),
        (file_member("cifar-10-batches-py/data_batch_1", b"again"), "appears twice"),
        (link_member("cifar-10-batches-py/readme.html", "", tarfile.FIFOTYPE), "special"),
    ],
)
def test_unsafe_archives_are_refused(kit, server, good_members, extra, phrase, entry):
    archive = make_archive([*good_members, extra])
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(archive), entry)
    assert_failed_cleanly(result, kit, before, "refusing to extract", phrase)
    assert not (kit.parent / "evil").exists() and not Path("/tmp/evil-absolute").exists()


def test_archive_without_all_batches_is_refused(kit, server, good_members, entry):
    archive = make_archive([m for m in good_members if "test_batch" not in m[0].name])
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(archive), entry)
    assert_failed_cleanly(result, kit, before, "lacks: test_batch")


def test_incomplete_existing_folder_is_reported_not_touched(kit, server, good_archive, entry):
    partial = kit / "datasets" / "cifar-10-batches-py"
    partial.mkdir()
    (partial / "data_batch_1").write_bytes(b"old")
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "lacks: data_batch_2", "rm -r")
    assert server.requests == []


# --------------------------------------------------------------------------------------
# "Already there" means usable
# --------------------------------------------------------------------------------------


def cut_short(data: bytes) -> bytes:
    """data less its last 100 bytes or more, ending in anything but a pickle's STOP."""
    end = len(data) - 100
    while data[end - 1] == ord("."):
        end -= 1
    return data[:end]


@pytest.mark.parametrize(
    ("damage", "phrase"),
    [
        (lambda p: p.write_bytes(b""), "data_batch_3 is empty"),
        (lambda p: p.write_bytes(cut_short(p.read_bytes())), "data_batch_3 is cut short"),
    ],
    ids=["emptied", "truncated"],
)
def test_damaged_batch_is_not_already_there(kit, server, good_archive, damage, phrase, entry):
    server.files["c.tgz"] = good_archive
    assert run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry).returncode == 0
    damage(kit / "datasets" / "cifar-10-batches-py" / "data_batch_3")
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, phrase, "rm -r datasets/cifar-10-batches-py")
    assert "already" not in result.stdout + result.stderr
    assert server.requests == ["c.tgz"]


def test_official_folder_must_have_the_official_sizes(kit, server, fixture_folder, entry):
    # A fixture folder is not CIFAR-10: without CIFAR10_MD5 the real sizes are expected.
    shutil.copytree(fixture_folder, kit / "datasets" / "cifar-10-batches-py")
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), None, entry)
    size = (fixture_folder / "data_batch_1").stat().st_size
    assert_failed_cleanly(result, kit, before, f"data_batch_1 is {size} bytes", "31035704")
    assert server.requests == []


# --------------------------------------------------------------------------------------
# Limits on the download: size, stalls
# --------------------------------------------------------------------------------------


def test_endless_response_stops_at_the_size_cap(kit, server, good_archive, entry):
    server.files["c.tgz"] = b""
    server.modes["c.tgz"] = "endless"
    before = listing(kit / "datasets")
    result = run_script(
        kit, server.url("c.tgz"), md5_of(good_archive), entry, CIFAR10_MAX_BYTES="1000000"
    )
    assert_failed_cleanly(result, kit, before, "more than 1000000 bytes")
    assert "stalled" not in result.stderr and "refused" not in result.stderr
    assert server.bytes_sent < 32_000_000  # not a disk's worth: socket buffers at most


def test_oversized_archive_is_refused(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    limit = str(len(good_archive) - 1)
    result = run_script(
        kit, server.url("c.tgz"), md5_of(good_archive), entry, CIFAR10_MAX_BYTES=limit
    )
    assert_failed_cleanly(result, kit, before, f"more than {limit} bytes")
    # the exact size passes: the cap is not off by one
    result = run_script(
        kit,
        server.url("c.tgz"),
        md5_of(good_archive),
        entry,
        CIFAR10_MAX_BYTES=str(len(good_archive)),
    )
    assert result.returncode == 0, result.stderr


def test_trickle_is_reported_as_a_stall(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "trickle"  # about 2 kB/s, under the 10 kB/s floor
    before = listing(kit / "datasets")
    start = time.monotonic()
    result = run_script(
        kit, server.url("c.tgz"), md5_of(good_archive), entry, CIFAR10_STALL_SECONDS="2"
    )
    assert_failed_cleanly(result, kit, before, "stalled", "for 2 s")
    assert "no connection" not in result.stderr and "refused" not in result.stderr
    assert time.monotonic() - start < 20  # it gave up instead of waiting for the end
    assert server.bytes_sent < len(good_archive)


def test_silent_server_is_a_stall_not_no_connection(kit, good_archive, entry):
    # the kernel completes the handshake for a listener that never accepts or answers
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(4)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}/c.tgz"
        before = listing(kit / "datasets")
        result = run_script(kit, url, md5_of(good_archive), entry, CIFAR10_STALL_SECONDS="2")
    assert_failed_cleanly(result, kit, before, "stalled", "after 0 bytes")
    assert "no connection" not in result.stderr and "refused" not in result.stderr


@pytest.mark.parametrize("variable", ["CIFAR10_MAX_BYTES", "CIFAR10_STALL_SECONDS"])
def test_bad_limits_are_named(kit, server, good_archive, variable, entry):
    before = listing(kit / "datasets")
    result = run_script(
        kit, server.url("c.tgz"), md5_of(good_archive), entry, **{variable: "10MB"}
    )
    assert_failed_cleanly(result, kit, before, f"{variable}=10MB is not a whole number")
    assert server.requests == []


# --------------------------------------------------------------------------------------
# Limits on extraction: sizes checked before anything is written, plain permissions
# --------------------------------------------------------------------------------------


def test_member_larger_than_a_batch_is_refused_before_extraction(kit, server, entry):
    # 40 MB of zeros in a 40 kB archive: more than any real batch (31,035,999 bytes)
    archive = bomb_archive("cifar-10-batches-py/data_batch_1", 40_000_000)
    assert len(archive) < 100_000
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(archive), entry)
    assert_failed_cleanly(
        result, kit, before, "refusing to extract", "data_batch_1' is 40000000 bytes"
    )


def test_archive_expanding_to_gigabytes_is_refused_unread(kit, server, entry):
    # 1.2 MB that expands to 1.2 GB: the downloader reads no more than
    # CIFAR-10's size of it (about 187 MB) before refusing
    archive = bomb_archive("cifar-10-batches-py/data_batch_1", 1_200_000_000)
    assert len(archive) < 1_500_000
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(archive), entry)
    assert_failed_cleanly(result, kit, before, "refusing to extract", "expands to more than")


def test_setuid_and_odd_modes_are_not_kept(kit, server, good_members, entry):
    modes = {"data_batch_1": 0o4755, "data_batch_2": 0o2777, "test_batch": 0o000}
    members = [folder_member(0o1777)]
    for info, data in good_members[1:]:
        name = info.name.rsplit("/", 1)[1]
        members.append(file_member(info.name, data, modes.get(name, 0o600)))
    archive = make_archive(members)
    server.files["c.tgz"] = archive
    result = run_script(kit, server.url("c.tgz"), md5_of(archive), entry)
    assert result.returncode == 0, result.stderr
    target = kit / "datasets" / "cifar-10-batches-py"
    assert stat.S_IMODE(target.stat().st_mode) == 0o755
    for path in target.iterdir():
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path.name
        assert path.stat().st_uid == os.geteuid()


def nobody_kit(where: Path) -> Path:
    kit = make_kit(where)
    elsewhere_of(kit)
    for path in [kit, *kit.rglob("*"), kit.parent / "elsewhere"]:
        os.chown(path, NOBODY, NOBODY, follow_symlinks=False)
    return kit


def python_for(user: int) -> str | None:
    """A Python 3.10+ that ``user`` may run (this one may live in root's home)."""
    for python in (PYTHON, "/usr/bin/python3", "/usr/local/bin/python3"):
        try:
            ok = subprocess.run(
                [python, "-c", "import sys; sys.exit(sys.version_info < (3, 10))"],
                user=user,
                capture_output=True,
                timeout=30,
            )
        except OSError:
            continue
        if ok.returncode == 0:
            return python
    return None


@pytest.mark.skipif(not ROOT, reason="runs the script as the user nobody")
@pytest.mark.parametrize("complete", [True, False], ids=["complete", "lacks-test_batch"])
def test_mode_000_folder_as_a_user(open_place, server, good_members, complete, entry):
    # Root ignores modes, so a user runs it: a folder member of mode 000 must neither
    # stop the extraction nor the cleanup after a refusal.
    python = python_for(NOBODY)
    if python is None:
        pytest.skip("no Python 3.10+ that the user nobody may run")
    kit = nobody_kit(open_place)
    members = [folder_member(0o000)] + [
        m for m in good_members[1:] if complete or "test_batch" not in m[0].name
    ]
    archive = make_archive(members)
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(archive), entry, NOBODY, python)
    if complete:
        assert result.returncode == 0, result.stderr
        target = kit / "datasets" / "cifar-10-batches-py"
        assert stat.S_IMODE(target.stat().st_mode) == 0o755
        assert target.stat().st_uid == NOBODY
    else:
        assert_failed_cleanly(result, kit, before, "lacks: test_batch")


# --------------------------------------------------------------------------------------
# Signals, killed runs, concurrent runs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("how", "status", "phrase"),
    [("INT", 130, "interrupted"), ("TERM", 143, "stopped (SIGTERM)")],
)
def test_signal_stops_the_download(kit, server, good_archive, entry, how, status, phrase):
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "slow"  # about 10 kB/s: minutes for the whole archive
    before = listing(kit / "datasets")
    proc = start_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    try:
        wait_for_partial_download(kit)
        if how == "INT":
            os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: signal the whole job
        else:
            os.kill(proc.pid, signal.SIGTERM)  # what kill PID does: the process alone
        start = time.monotonic()
        _, stderr = finish(proc)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            finish(proc)
    assert proc.returncode == status, stderr
    assert phrase in stderr and "nothing was changed" in stderr
    assert listing(kit / "datasets") == before
    assert server.bytes_sent < len(good_archive)  # it really was cut short
    assert took < 5, f"it took {took:.1f} s to stop"  # at once, not at the next timeout
    # The server's first write after the client is gone can still succeed (TCP learns of
    # the close from the reset that write provokes), so let that one chunk land first.
    time.sleep(0.3)
    sent = server.bytes_sent
    time.sleep(0.3)
    assert server.bytes_sent == sent  # the transfer stopped with it


def test_next_run_removes_what_a_killed_run_left(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "slow"
    before = listing(kit / "datasets")
    # a temporary folder whose owner still runs (this test) is not touched
    alive = kit / "datasets" / f"cifar-10.tmp.{os.getpid()}.keepme"
    alive.mkdir()
    proc = start_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    try:
        wait_for_partial_download(kit)
        os.kill(proc.pid, signal.SIGKILL)  # no cleanup runs
        proc.wait(timeout=20)
    finally:
        finish(proc)
    left = [p.name for p in (kit / "datasets").glob("cifar-10.tmp.*") if p != alive]
    assert len(left) == 1 and left[0].startswith(f"cifar-10.tmp.{proc.pid}.")
    (kit / "datasets" / left[0] / "locked").mkdir(mode=0)  # cleanup must cope with this
    server.modes["c.tgz"] = "full"
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert result.returncode == 0, result.stderr
    assert f"Removed datasets/{left[0]}" in result.stdout
    now = listing(kit / "datasets")
    assert [e for e in now if e[0].startswith("cifar-10.tmp.")] == [(alive.name, "dir", 0)]
    assert [e for e in now if not e[0].startswith("cifar-10")] == before


@pytest.mark.parametrize("entry", ["sh", "python", "windows"])
def test_second_run_waits_for_the_first(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    out = kit.parent / "out.txt"
    calls = kit.parent / "msvcrt.log"
    env = script_env(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    env["FAKE_MSVCRT_LOG"] = str(calls)
    args, cwd = command(kit, entry)
    # What a running first run holds: a lock on the downloader's own module (on
    # Windows msvcrt's, which the stand-in emulates with the same flock).
    with open(kit / "cs231n" / "get_datasets.py") as held, open(out, "w") as sink:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen(args, cwd=cwd, env=env, stdout=sink, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 20
            while "Another" not in out.read_text() and time.monotonic() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            assert proc.poll() is None and server.requests == []  # it waits, asks nothing
            fcntl.flock(held, fcntl.LOCK_UN)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    text = out.read_text()
    assert proc.returncode == 0, text
    assert "Another download of CIFAR-10 is running" in text and "ready" in text
    if entry == "windows":  # it tried LK_NBLCK (2) until it got the lock, then LK_UNLCK (0)
        modes = [line.split()[0] for line in calls.read_text().splitlines()]
        assert len(modes) >= 3 and set(modes[:-1]) == {"2"} and modes[-1] == "0", modes
    else:
        assert not calls.exists()


PAIRS = 10


@pytest.mark.parametrize("entry", ["sh", "windows", "bare"], ids=["flock", "msvcrt", "no-lock"])
def test_concurrent_runs_never_nest(tmp_path, server, good_archive, fixture_folder, entry):
    """PAIRS pairs of runs started together (an unlocked mv once nested 2 folders in 80).

    With a lock the second run waits and finds the data there; without one (a system
    with neither fcntl nor msvcrt) one run may fail, but with a clear message, and never
    leaving a nested or partial folder.
    """
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "late"  # both runs are downloading at the same time
    want = sorted(["cifar-10-batches-py"] + [f"cifar-10-batches-py/{p.name}" for p in
                                             fixture_folder.iterdir()])  # fmt: skip
    lock = entry != "bare"

    def one(kit: Path) -> subprocess.CompletedProcess:
        return run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)

    pairs = PAIRS if entry == "sh" else PAIRS // 2  # the same code, another lock
    kits = [make_kit(tmp_path / f"pair{i}") for i in range(pairs)]
    with ThreadPoolExecutor(max_workers=4) as pool:  # two pairs at a time
        results = list(pool.map(one, [k for k in kits for _ in range(2)]))
    for i, kit in enumerate(kits):
        pair = results[2 * i : 2 * i + 2]
        text = "".join(r.stdout + r.stderr for r in pair)
        got = [p for p, _, _ in listing(kit / "datasets") if p.startswith("cifar-10")]
        assert got == want, text  # no nesting, no leftovers
        assert "Traceback" not in text
        assert any("ready in" in r.stdout for r in pair), text
        for r in pair:
            assert r.returncode == 0 or "appeared while downloading" in r.stderr, text
        if lock:
            assert all(r.returncode == 0 for r in pair), text
    if lock:
        assert len(server.requests) == pairs  # the waiting run found the data there


# --------------------------------------------------------------------------------------
# URLs: file://, redirects, schemes
# --------------------------------------------------------------------------------------


def test_file_url_uses_a_local_copy(kit, good_archive, fixture_folder, entry):
    copy = kit.parent / "cifar-10-python.tar.gz"
    copy.write_bytes(good_archive)
    result = run_script(kit, copy.as_uri(), md5_of(good_archive), entry)
    assert result.returncode == 0, result.stderr
    target = kit / "datasets" / "cifar-10-batches-py"
    for got, want in zip(load_CIFAR10(target), load_CIFAR10(fixture_folder), strict=True):
        np.testing.assert_array_equal(got, want)
    assert copy.read_bytes() == good_archive  # the local copy is left as it was


def test_missing_local_file_is_named(kit, good_archive, entry):
    before = listing(kit / "datasets")
    url = (kit.parent / "nowhere.tar.gz").as_uri()
    result = run_script(kit, url, md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "the file named by the URL cannot be read")


def test_redirect_to_http_is_followed(kit, server, good_archive, entry):
    server.files["c.tgz"] = good_archive
    server.redirects["old.tgz"] = server.url("c.tgz")
    result = run_script(kit, server.url("old.tgz"), md5_of(good_archive), entry)
    assert result.returncode == 0, result.stderr
    assert server.requests == ["old.tgz", "c.tgz"]


def test_redirect_to_a_local_file_is_refused(kit, server, good_archive, entry):
    # a server must not be able to make the downloader read a file of this machine
    copy = kit.parent / "secret.tar.gz"
    copy.write_bytes(good_archive)
    server.redirects["c.tgz"] = copy.as_uri()
    before = listing(kit / "datasets")
    result = run_script(kit, server.url("c.tgz"), md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "redirected to file://", "not an http(s) URL")


@pytest.mark.parametrize("url", ["ftp://127.0.0.1/c.tgz", "c.tgz", "javascript:1"])
def test_other_url_schemes_are_refused(kit, server, good_archive, url, entry):
    before = listing(kit / "datasets")
    result = run_script(kit, url, md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, f"CIFAR10_URL={url} is not an http://")
    assert server.requests == []


# --------------------------------------------------------------------------------------
# get_datasets.sh: which Python it runs
# --------------------------------------------------------------------------------------

PYTHON2 = shutil.which("python2.7") or shutil.which("python2")


def wrapper_env(kit: Path, url: str, md5: str, programs: dict[str, str], **extra: str):
    env = script_env(kit, url, md5, "sh", **extra)
    env["PATH"] = bin_path(kit.parent, programs)
    return env


@pytest.mark.parametrize(
    "programs",
    [
        {"python": PYTHON},  # no python3 (Windows' Git Bash, some conda setups)
        {"python3": PYTHON, "python": "/bin/false"},
        pytest.param(
            {"python3": PYTHON2 or "", "python": PYTHON},  # a Python 2 called python3
            marks=pytest.mark.skipif(PYTHON2 is None, reason="needs a Python 2"),
        ),
        {"python3": "/bin/false", "python": PYTHON},  # one that fails to start
    ],
    ids=["python-only", "python3-first", "python2-skipped", "broken-python3-skipped"],
)
def test_wrapper_finds_a_python(kit, server, good_archive, programs):
    server.files["c.tgz"] = good_archive
    env = wrapper_env(kit, server.url("c.tgz"), md5_of(good_archive), programs)
    result = subprocess.run(
        [str(kit / "get_datasets.sh")], cwd=elsewhere_of(kit), env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "ready in datasets/cifar-10-batches-py" in result.stdout


def test_wrapper_honours_PYTHON(kit, server, good_archive):
    server.files["c.tgz"] = good_archive
    env = wrapper_env(kit, server.url("c.tgz"), md5_of(good_archive), {"python3": "/bin/false"})
    env["PYTHON"] = PYTHON
    result = subprocess.run(
        [str(kit / "get_datasets.sh")], cwd=elsewhere_of(kit), env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_wrapper_without_a_python_says_so(kit, server, good_archive):
    programs = {"python3": PYTHON2} if PYTHON2 else {}
    env = wrapper_env(kit, server.url("c.tgz"), md5_of(good_archive), programs)
    before = listing(kit / "datasets")
    result = subprocess.run(
        [str(kit / "get_datasets.sh")], cwd=elsewhere_of(kit), env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert_failed_cleanly(result, kit, before, "no Python 3.10 or newer found", "python3")
    assert server.requests == []


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_wrapper_run_by_a_shell_from_the_kit(kit, server, good_archive, shell):
    # as a Colab cell runs it: !bash get_datasets.sh, from the kit's folder
    server.files["c.tgz"] = good_archive
    env = script_env(kit, server.url("c.tgz"), md5_of(good_archive), "sh")
    result = subprocess.run(
        [shutil.which(shell), "get_datasets.sh"], cwd=kit, env=env, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (kit / "datasets" / "cifar-10-batches-py" / "test_batch").is_file()


def test_wrapper_messages_name_the_wrapper(kit, server, fixture_folder):
    shutil.copytree(fixture_folder, kit / "datasets" / "cifar-10-batches-py")
    (kit / "datasets" / "cifar-10-batches-py" / "test_batch").unlink()
    result = run_script(kit, server.url("c.tgz"), md5_of(b""), "sh")
    assert result.stderr.startswith("get_datasets.sh: error: ")
    assert "run ./get_datasets.sh again" in result.stderr
    result = run_script(kit, server.url("c.tgz"), md5_of(b""), "windows")
    assert result.stderr.startswith("cs231n.get_datasets: error: ")
    assert "run python -m cs231n.get_datasets again" in result.stderr


# --------------------------------------------------------------------------------------
# HTTPS: the certificate is verified
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def certificate(tmp_path_factory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, and its key."""
    if shutil.which("openssl") is None:
        pytest.skip("needs openssl to make a certificate")
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "cert.pem", where / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    return cert, key


@pytest.fixture
def tls_server(certificate):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    s = Server(context)
    yield s
    s.close()


def test_https_with_a_trusted_certificate(kit, tls_server, good_archive, certificate, entry):
    tls_server.files["c.tgz"] = good_archive
    url = tls_server.url("c.tgz")
    assert url.startswith("https://")
    result = run_script(kit, url, md5_of(good_archive), entry, SSL_CERT_FILE=str(certificate[0]))
    assert result.returncode == 0, result.stderr
    assert tls_server.requests == ["c.tgz"]


def test_https_with_an_unknown_certificate_is_refused(kit, tls_server, good_archive, entry):
    # the same server, but nothing vouches for its self-signed certificate
    tls_server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, tls_server.url("c.tgz"), md5_of(good_archive), entry)
    assert_failed_cleanly(result, kit, before, "secure connection failed (TLS)", "CERTIFICATE")
    assert tls_server.requests == []  # no request was sent over an unverified connection


def test_run_as_a_file(kit, server, good_archive):
    # python cs231n/get_datasets.py, a slip a student makes for python -m cs231n.get_datasets
    server.files["c.tgz"] = good_archive
    env = script_env(kit, server.url("c.tgz"), md5_of(good_archive), "windows")
    result = subprocess.run(
        [PYTHON, str(kit / "cs231n" / "get_datasets.py")], cwd=elsewhere_of(kit),
        env={**env, "PYTHONPATH": site_path(kit.parent)}, capture_output=True, text=True,
        timeout=60,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert (kit / "datasets" / "cifar-10-batches-py" / "test_batch").is_file()
