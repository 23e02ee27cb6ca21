"""End-to-end tests of get_datasets.sh against a loopback HTTP server.

Each test runs a copy of the script placed in a temporary "kit" folder with its own
datasets/, so the real datasets/ is never touched, and runs it from another working
directory. The server (127.0.0.1, port 0) serves a tar.gz of CIFAR-format fixtures and
records every request. Every failure must leave datasets/ exactly as it was.
"""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from cifar_fixtures import write_cifar_folder

from cs231n.data_utils import REPO_ROOT, load_CIFAR10

SCRIPT = REPO_ROOT / "get_datasets.sh"
# what the script runs, besides the downloader (tar runs gzip for -z)
TOOLS = ["bash", "dirname", "mkdir", "rmdir", "rm", "mktemp", "md5sum", "cut", "tr", "tar"]
TOOLS += ["gzip", "mv"]
DOWNLOADERS = [d for d in ("curl", "wget") if shutil.which(d)]
if not DOWNLOADERS or not all(shutil.which(t) for t in TOOLS):
    pytest.skip(
        "get_datasets.sh needs bash, coreutils, tar and curl or wget", allow_module_level=True
    )


# --------------------------------------------------------------------------------------
# Fixtures: archives, the server, the kit
# --------------------------------------------------------------------------------------


def make_archive(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def link_member(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


@pytest.fixture(scope="module")
def fixture_folder(tmp_path_factory) -> Path:
    return write_cifar_folder(tmp_path_factory.mktemp("fixture"), n_per_batch=30, n_test=20)


@pytest.fixture(scope="module")
def good_members(fixture_folder) -> list:
    folder = tarfile.TarInfo("cifar-10-batches-py")
    folder.type, folder.mode = tarfile.DIRTYPE, 0o755
    members: list = [(folder, None)]
    for path in sorted(fixture_folder.iterdir()):
        members.append(file_member(f"cifar-10-batches-py/{path.name}", path.read_bytes()))
    return members


@pytest.fixture(scope="module")
def good_archive(good_members) -> bytes:
    return make_archive(good_members)


class Server:
    """A loopback HTTP server: /NAME serves files[NAME] in the mode modes[NAME]."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.modes: dict[str, str] = {}  # "full" (default), "half" or "slow"
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
                if name not in server.files:
                    self.send_error(404)
                    return
                body, mode = server.files[name], server.modes.get(name, "full")
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    if mode == "full":
                        self.wfile.write(body)
                    elif mode == "half":  # promise everything, send half, hang up
                        self.wfile.write(body[: len(body) // 2])
                    else:  # slow: a trickle, until the client goes away
                        for start in range(0, len(body), 512):
                            if server.stop.wait(0.05):
                                break
                            self.wfile.write(body[start : start + 512])
                            self.wfile.flush()
                            server.bytes_sent += 512
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.block_on_close = False
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/{name}"

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def server():
    s = Server()
    yield s
    s.close()


@pytest.fixture
def kit(tmp_path) -> Path:
    """A copy of the script in a folder of its own, with a datasets/ holding one file."""
    kit = tmp_path / "kit"
    (kit / "datasets" / "fashion-mnist").mkdir(parents=True)
    (kit / "datasets" / "fashion-mnist" / "README.md").write_text("bundled\n")
    shutil.copy2(SCRIPT, kit / "get_datasets.sh")
    return kit


def listing(folder: Path) -> list[tuple[str, str, int]]:
    """Every entry under folder, hidden ones included: (path, kind, size)."""
    entries = []
    for path in sorted(folder.rglob("*")):
        kind = "link" if path.is_symlink() else "dir" if path.is_dir() else "file"
        size = path.lstat().st_size if kind == "file" else 0
        entries.append((path.relative_to(folder).as_posix(), kind, size))
    return entries


def tool_path(tmp_path: Path, downloader: str) -> str:
    """A PATH holding the script's tools and only one downloader."""
    bin_dir = tmp_path / f"bin-{downloader}"
    bin_dir.mkdir(exist_ok=True)
    for tool in [*TOOLS, downloader]:
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(shutil.which(tool))
    return str(bin_dir)


def script_env(tmp_path: Path, url: str, md5: str | None, downloader: str) -> dict[str, str]:
    env = {"PATH": tool_path(tmp_path, downloader), "HOME": str(tmp_path), "LC_ALL": "C"}
    env["CIFAR10_URL"] = url
    if md5 is not None:
        env["CIFAR10_MD5"] = md5
    return env


def run_script(kit, tmp_path, url, md5, downloader=DOWNLOADERS[0]) -> subprocess.CompletedProcess:
    elsewhere = tmp_path / "elsewhere"  # the script must not depend on the cwd
    elsewhere.mkdir(exist_ok=True)
    return subprocess.run(
        [str(kit / "get_datasets.sh")],
        cwd=elsewhere,
        env=script_env(tmp_path, url, md5, downloader),
        capture_output=True,
        text=True,
        timeout=60,
    )


def md5_of(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_failed_cleanly(result, kit, before, *phrases):
    assert result.returncode != 0, result.stdout + result.stderr
    assert listing(kit / "datasets") == before, result.stderr
    assert listing(kit.parent / "elsewhere") == []
    for phrase in phrases:
        assert phrase in result.stderr, result.stderr


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("downloader", DOWNLOADERS)
def test_good_archive_lands_in_datasets(
    kit, tmp_path, server, good_archive, fixture_folder, downloader
):
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), md5_of(good_archive), downloader)
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


def test_second_run_downloads_nothing(kit, tmp_path, server, good_archive):
    server.files["c.tgz"] = good_archive
    assert run_script(kit, tmp_path, server.url("c.tgz"), md5_of(good_archive)).returncode == 0
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), md5_of(good_archive))
    assert result.returncode == 0 and "already" in result.stdout
    assert server.requests == ["c.tgz"]  # the second run sent no request
    assert listing(kit / "datasets") == before


def test_default_md5_is_the_official_one(kit, tmp_path, server, good_archive):
    # without CIFAR10_MD5 the fixture archive cannot pass as CIFAR-10
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), None)
    assert_failed_cleanly(result, kit, before, "c58f30108f718f92721af3b95e74349a")


def test_wrong_checksum_extracts_nothing(kit, tmp_path, server, good_archive):
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), "0" * 32)
    assert_failed_cleanly(result, kit, before, "checksum mismatch", md5_of(good_archive))


@pytest.mark.parametrize("downloader", DOWNLOADERS)
def test_dead_server(kit, tmp_path, good_archive, downloader):
    with socket.socket() as s:  # a port that was free a moment ago and has no listener
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    before = listing(kit / "datasets")
    url = f"http://127.0.0.1:{port}/c.tgz"
    result = run_script(kit, tmp_path, url, md5_of(good_archive), downloader)
    assert_failed_cleanly(result, kit, before, "could not download", "no connection", "offline")


@pytest.mark.parametrize("downloader", DOWNLOADERS)
def test_interrupted_transfer(kit, tmp_path, server, good_archive, downloader):
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "half"
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), md5_of(good_archive), downloader)
    assert_failed_cleanly(result, kit, before, "could not download")
    assert server.requests == ["c.tgz"]


def test_missing_file_on_server(kit, tmp_path, server, good_archive):
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("nope.tgz"), md5_of(good_archive))
    assert_failed_cleanly(result, kit, before, "answered with an error")


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
    ],
)
def test_unsafe_archives_are_refused(kit, tmp_path, server, good_members, extra, phrase):
    archive = make_archive([*good_members, extra])
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), md5_of(archive))
    assert_failed_cleanly(result, kit, before, "refusing to extract", phrase)
    assert not (tmp_path / "evil").exists() and not Path("/tmp/evil-absolute").exists()


def test_archive_without_all_batches_is_refused(kit, tmp_path, server, good_members):
    archive = make_archive([m for m in good_members if "test_batch" not in m[0].name])
    server.files["c.tgz"] = archive
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), md5_of(archive))
    assert_failed_cleanly(result, kit, before, "lacks: test_batch")


def test_incomplete_existing_folder_is_reported_not_touched(kit, tmp_path, server, good_archive):
    partial = kit / "datasets" / "cifar-10-batches-py"
    partial.mkdir()
    (partial / "data_batch_1").write_bytes(b"old")
    server.files["c.tgz"] = good_archive
    before = listing(kit / "datasets")
    result = run_script(kit, tmp_path, server.url("c.tgz"), md5_of(good_archive))
    assert_failed_cleanly(result, kit, before, "lacks: data_batch_2", "rm -r")
    assert server.requests == []


@pytest.mark.parametrize("downloader", DOWNLOADERS)
def test_ctrl_c_during_download_leaves_nothing(kit, tmp_path, server, good_archive, downloader):
    server.files["c.tgz"] = good_archive
    server.modes["c.tgz"] = "slow"  # about 10 kB/s: minutes for the whole archive
    before = listing(kit / "datasets")
    (tmp_path / "elsewhere").mkdir()
    env = script_env(tmp_path, server.url("c.tgz"), md5_of(good_archive), downloader)
    # A job started in the background by a non-interactive shell (as CI may run us)
    # inherits SIGINT ignored, and bash cannot trap a signal ignored on entry: restore
    # the default disposition before exec'ing the script, as a terminal would have it.
    restore_sigint = (
        "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
        "os.execv(sys.argv[1], sys.argv[1:])"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", restore_sigint, str(kit / "get_datasets.sh")],
        cwd=tmp_path / "elsewhere",
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its own process group, like a terminal job
    )
    try:
        deadline = time.monotonic() + 20
        partial = []
        while time.monotonic() < deadline and not partial:  # wait for a partial download
            partial = [p for p in (kit / "datasets").glob("cifar-10.tmp.*/*.tar.gz")]
            partial = [p for p in partial if p.stat().st_size > 0]
            time.sleep(0.05)
        assert partial, "the download never started"
        os.killpg(proc.pid, signal.SIGINT)  # what Ctrl-C does: signal the whole job
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()  # reaps it and closes the pipes
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr
    assert listing(kit / "datasets") == before
    assert server.bytes_sent < len(good_archive)  # it really was cut short
