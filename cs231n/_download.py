"""Machinery for ``python -m cs231n.get_datasets``: standard library only, any OS.

:func:`fetch` downloads with a size cap, a connect timeout and a stall limit, in a thread
that the main thread watches (so Ctrl-C stops it at once); :func:`run_lock` keeps runs
apart with a lock the OS drops when its holder ends; :func:`checked_members` reads a
.tar.gz one header at a time, so each member is checked before anything is extracted.
"""

from __future__ import annotations

import contextlib
import errno
import gzip
import hashlib
import http.client
import os
import socket
import ssl
import stat
import tarfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

CHUNK = 1 << 16
CONNECT_TIMEOUT = 30  # seconds
# open() flags: binary on Windows (text mode would alter bytes), never through a link
READ_FLAGS = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NOFOLLOW", 0)
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
NEW_FILE_FLAGS |= getattr(os, "O_NOFOLLOW", 0)


class DownloadError(Exception):
    """The download failed: ``why`` says what happened, ``said`` the library's words."""

    def __init__(self, why: str, kind: str = "network", said: str = "") -> None:
        super().__init__(why)
        self.why, self.kind, self.said = why, kind, said


class LockTimeout(TimeoutError):
    """Another process held the lock for longer than the caller would wait."""


class ArchiveError(Exception):
    """The archive is not one this downloader will extract (the message says why)."""


# ---- download -------------------------------------------------------------------------


class _Transfer:
    """What the download thread shares with the thread that watches it."""

    def __init__(self) -> None:
        self.received = 0
        self.md5 = hashlib.md5(usedforsecurity=False)
        self.connected_at: float | None = None
        self.done = threading.Event()
        self.stop = threading.Event()
        self.error: BaseException | None = None
        self.sockets: list[socket.socket] = []

    def connected(self, sock: socket.socket | None) -> None:
        if sock is not None:
            self.sockets.append(sock)
        if self.connected_at is None:
            self.connected_at = time.monotonic()

    def abort(self) -> None:
        """Stop the transfer: a blocked read returns once its socket is shut down."""
        self.stop.set()
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def _opener(transfer: _Transfer, read_timeout: float) -> urllib.request.OpenerDirector:
    """urllib with connections that report to ``transfer`` and redirects to http(s) only.

    The connect timeout is the one urlopen passes; once connected, a read waits at most
    ``read_timeout`` (the watcher's stall limit ends a slow transfer well before that).
    """

    def connected(sock: socket.socket) -> None:
        sock.settimeout(read_timeout)
        transfer.connected(sock)

    class Connection(http.client.HTTPConnection):
        def connect(self) -> None:
            super().connect()
            connected(self.sock)

    class SecureConnection(http.client.HTTPSConnection):
        def connect(self) -> None:
            super().connect()  # TCP, any proxy tunnel and the TLS handshake
            connected(self.sock)

    class Http(urllib.request.HTTPHandler):
        def http_open(self, req):
            return self.do_open(Connection, req)

    context = ssl.create_default_context()  # verifies the certificate and host name

    class Https(urllib.request.HTTPSHandler):
        def https_open(self, req):
            return self.do_open(SecureConnection, req, context=context)

    class Redirect(urllib.request.HTTPRedirectHandler):
        def http_error_302(self, req, fp, code, msg, headers):
            where = headers.get("Location") or headers.get("URI") or ""
            newurl = urllib.parse.urljoin(req.full_url, where)
            if urllib.parse.urlsplit(newurl).scheme not in ("http", "https"):
                raise DownloadError(f"the server redirected to {newurl}, not an http(s) URL")
            return super().http_error_302(req, fp, code, msg, headers)

        http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302

    return urllib.request.build_opener(Http, Https(context=context), Redirect)


def _download(url: str, path: Path, max_bytes: int, transfer: _Transfer, timeout: float):
    """The download thread: url into the new file path, counting and hashing."""
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "cs231n-get-datasets"})
        with _opener(transfer, timeout).open(request, timeout=CONNECT_TIMEOUT) as response:
            transfer.connected(None)  # a file:// URL has no socket
            status = getattr(response, "status", None)
            if status not in (None, 200):
                raise DownloadError(f"the server answered HTTP {status}, not 200", "http")
            length = response.headers.get("Content-Length", "")
            length = int(length) if length.strip().isdigit() else None
            if length is not None and length > max_bytes:
                raise DownloadError(f"{length} bytes announced", "size")
            with open(os.open(path, NEW_FILE_FLAGS, 0o600), "wb") as out:
                while not transfer.stop.is_set():
                    chunk = response.read(CHUNK)
                    if not chunk:
                        break
                    if transfer.received + len(chunk) > max_bytes:
                        raise DownloadError("more than the cap arrived", "size")
                    out.write(chunk)
                    transfer.md5.update(chunk)
                    transfer.received += len(chunk)
            if length is not None and transfer.received < length and not transfer.stop.is_set():
                raise http.client.IncompleteRead(b"", length - transfer.received)
    except BaseException as error:  # reported by the watching thread
        transfer.error = error
    finally:
        transfer.done.set()


def fetch(
    url: str,
    path: Path,
    max_bytes: int,
    stall_seconds: int,
    min_rate: int,
    progress: Callable[[int], None] | None = None,
) -> tuple[int, str]:
    """Download ``url`` into the new file ``path``; return its size and md5 (hex).

    Raises :class:`DownloadError` with ``kind`` one of ``"size"`` (more than
    ``max_bytes``), ``"stall"`` (under ``min_rate`` bytes/s for ``stall_seconds``,
    counted from the connection), ``"timeout"`` (no connection within 30 s),
    ``"http"``, ``"disk"``, ``"url"``, ``"dns"``, ``"refused"``, ``"broken"`` or
    ``"network"``. On any exception, KeyboardInterrupt included, the transfer is
    stopped before this returns; the caller removes ``path``.
    """
    transfer = _Transfer()
    worker = threading.Thread(
        target=_download,
        args=(url, path, max_bytes, transfer, stall_seconds + 5),
        name="cifar-download",
        daemon=True,  # a thread stuck in a DNS lookup must not keep the process alive
    )
    start = time.monotonic()
    window_start, window_size = None, 0
    worker.start()
    try:
        while not transfer.done.wait(0.1):  # short waits: Ctrl-C is seen at once
            now = time.monotonic()
            if progress is not None:
                progress(transfer.received)
            if transfer.connected_at is None:
                if now - start > CONNECT_TIMEOUT + 5:  # DNS or a proxy hanging, too
                    raise DownloadError(f"no connection within {CONNECT_TIMEOUT} s", "timeout")
                continue
            if window_start is None:
                window_start = transfer.connected_at
            if now - window_start >= stall_seconds:
                if transfer.received - window_size < min_rate * (now - window_start):
                    raise DownloadError(f"after {transfer.received} bytes", "stall")
                window_start, window_size = now, transfer.received
    finally:
        if not transfer.done.is_set():
            transfer.abort()
            worker.join(10)  # so that the file is closed before the caller removes it
    if isinstance(transfer.error, DownloadError):
        raise transfer.error
    if transfer.error is not None:
        raise _explain(transfer.error, transfer) from transfer.error
    return transfer.received, transfer.md5.hexdigest()


def _explain(error: BaseException, transfer: _Transfer) -> DownloadError:
    """The DownloadError that says what ``error``, raised while downloading, means."""
    said = str(error)
    if isinstance(error, urllib.error.HTTPError):
        return DownloadError(f"HTTP {error.code}", "http", said)
    if isinstance(error, urllib.error.URLError):
        reason = error.reason
        said = str(reason)
        if isinstance(reason, socket.gaierror):
            return DownloadError("the host name could not be resolved (DNS)", "dns", said)
        if isinstance(reason, ConnectionRefusedError):
            return DownloadError("the server refused the connection", "refused", said)
        if isinstance(reason, (socket.timeout, TimeoutError)):
            if transfer.connected_at is None:
                return DownloadError(f"no connection within {CONNECT_TIMEOUT} s", "timeout", said)
            return DownloadError(f"after {transfer.received} bytes", "stall", said)
        if isinstance(reason, ssl.SSLError):
            return DownloadError("the secure connection failed (TLS)", "network", said)
        if isinstance(reason, (FileNotFoundError, IsADirectoryError, PermissionError)):
            return DownloadError("the file named by the URL cannot be read", "url", said)
        if isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH):
            return DownloadError("the server cannot be reached", "refused", said)
        if isinstance(reason, str):  # urllib's own words, such as "unknown url type"
            return DownloadError("urllib cannot use this URL", "url", said)
        error = reason if isinstance(reason, BaseException) else error
    if isinstance(error, (socket.timeout, TimeoutError)):
        return DownloadError(f"after {transfer.received} bytes", "stall", said)
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return DownloadError("could not write the download (disk full?)", "disk", said)
    if isinstance(error, (http.client.IncompleteRead, ConnectionError)):
        return DownloadError("the transfer broke off before the end", "broken", said)
    if isinstance(error, http.client.HTTPException):
        return DownloadError("the server's answer is not valid HTTP", "network", said)
    return DownloadError(f"{type(error).__name__}", "network", said)


# ---- one run at a time ----------------------------------------------------------------

# Windows locks byte ranges, and a locked range cannot be read: the lock is on one byte
# far past the end of the file, so importing the locked module still works.
WINDOWS_LOCK_OFFSET = 1 << 30


def _try_lock(fd: int) -> bool | None:
    """Lock fd without waiting: True (locked), False (another holds it), None (no lock)."""
    try:
        import fcntl
    except ImportError:
        fcntl = None
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
        except OSError:  # a file system without locks (some network drives)
            return None
    try:
        import msvcrt
    except ImportError:
        return None
    os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
    try:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return True
    except OSError as error:
        if error.errno in (errno.EACCES, errno.EDEADLK):  # held by another process
            return False
        return None


def _unlock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:
        import msvcrt  # only reached when _try_lock locked with it

        os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)


@contextlib.contextmanager
def run_lock(path: Path, on_wait: Callable[[], None], wait_seconds: float = 900) -> Iterator[bool]:
    """Hold an exclusive lock on the existing file ``path`` for the ``with`` block.

    Waits (calling ``on_wait`` once) while another process holds it, and raises
    :class:`LockTimeout` after ``wait_seconds``. The OS drops the lock when its holder
    ends, however it ends, and nothing is left on disk. Yields whether a lock is held:
    False where the OS or the file system has none (then the caller relies on its one
    rename to keep concurrent runs apart).
    """
    try:
        fd = os.open(path, READ_FLAGS)
    except OSError:  # a module that cannot be opened (a zip import): no lock
        yield False
        return
    try:
        locked = _try_lock(fd)
        if locked is False:
            on_wait()
            deadline = time.monotonic() + wait_seconds
            while locked is False:
                if time.monotonic() > deadline:
                    raise LockTimeout(f"{path} is still locked after {wait_seconds:.0f} s")
                time.sleep(0.2)
                locked = _try_lock(fd)
        try:
            yield bool(locked)
        finally:
            if locked:
                _unlock(fd)
    finally:
        os.close(fd)


def pid_alive(pid: int) -> bool | None:
    """Whether process ``pid`` runs (a zombie does not); None where that is unknown.

    On Windows ``os.kill(pid, 0)`` would stop the process instead of probing it, so
    there the answer is None.
    """
    if os.name != "posix":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    try:  # Linux: "pid (name) STATE ...", Z for a zombie
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def remove_tree(path: Path) -> None:
    """Remove ``path`` and all it holds: links are removed, never followed, and
    folders without permissions (mode 000) or read-only files do not stop it."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        with contextlib.suppress(OSError):
            os.chmod(path, 0o700)
        with os.scandir(path) as entries:
            children = [entry.path for entry in entries]
        for child in children:
            remove_tree(Path(child))
        os.rmdir(path)
        return
    try:
        os.unlink(path)
    except PermissionError:  # Windows: a read-only file
        os.chmod(path, stat.S_IWRITE)
        os.unlink(path)


# ---- archives -------------------------------------------------------------------------

# Headers that tarfile reads whole before it returns the member they describe: long
# names and pax records. A few kB at most in any honest archive.
_META_TYPES = (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK, tarfile.XHDTYPE)
_META_TYPES += (tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE)
META_CAP = 1 << 16
_READ_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)  # a damaged .tar.gz


class _CheckedInfo(tarfile.TarInfo):
    """A TarInfo that refuses an oversized long-name or pax header before it is read."""

    @classmethod
    def frombuf(cls, buf, encoding, errors):
        info = super().frombuf(buf, encoding, errors)
        if info.type in _META_TYPES and info.size > META_CAP:
            raise ArchiveError(f"it has a {info.size}-byte extended header (pax or long name)")
        return info


def expanded_size(archive: Path, cap: int) -> int:
    """Bytes the gzip file ``archive`` expands to, counting no further than ``cap + 1``."""
    total = 0
    try:
        with gzip.open(archive, "rb") as stream:
            while total <= cap:
                chunk = stream.read(CHUNK)
                if not chunk:
                    break
                total += len(chunk)
    except _READ_ERRORS as error:
        raise ArchiveError(f"it cannot be read as a .tar.gz ({error})") from error
    return total


@contextlib.contextmanager
def tar_members(archive: Path) -> Iterator[Iterator[tuple[tarfile.TarInfo, tarfile.TarFile]]]:
    """The members of the .tar.gz ``archive``, one at a time, in the order stored.

    Nothing of a member's data is read before the caller moves on to the next one, so a
    member whose header is refused costs nothing. Read errors become ArchiveError.
    """

    def members(tar: tarfile.TarFile):
        try:
            for info in tar:
                yield info, tar
        except _READ_ERRORS as error:
            raise ArchiveError(f"it cannot be read as a .tar.gz ({error})") from error

    try:
        stream = gzip.open(archive, "rb")
        tar = tarfile.open(fileobj=stream, mode="r|", tarinfo=_CheckedInfo)
    except _READ_ERRORS as error:
        raise ArchiveError(f"it cannot be read as a .tar.gz ({error})") from error
    try:
        yield members(tar)
    finally:
        tar.close()
        stream.close()


def checked_members(
    archive: Path,
    folder: str,
    caps: dict[str, int],
    expected: dict[str, int],
    exact: bool,
    max_members: int,
) -> Iterator[tuple[str, tarfile.TarInfo, tarfile.TarFile]]:
    """Yield ``(file name, member, tar)`` for each file member of ``archive``.

    Every member must be the folder ``folder`` itself or a regular file directly in it,
    named in ``caps`` and at most that many bytes (exactly ``expected`` bytes when
    ``exact``), each once, ``max_members`` at most. The first member that is not raises
    ArchiveError naming it; its data has not been read then, nor any later member's.
    """
    seen: set[str] = set()
    with tar_members(archive) as members:
        for count, (info, tar) in enumerate(members, start=1):
            name = info.name
            if count > max_members:
                raise ArchiveError(f"it has more than {max_members} members; CIFAR-10 has 9")
            if {"..", "."} & set(name.replace("\\", "/").split("/")):
                raise ArchiveError(f"member '{name}' has a '..' or '.' component")
            if name != folder and not name.startswith(folder + "/"):
                raise ArchiveError(f"member '{name}' is outside {folder}/")
            base = name[len(folder) + 1 :]
            if "/" in base:
                raise ArchiveError(f"member '{name}' is nested deeper than {folder}/")
            if not (info.isreg() or info.isdir()) or info.type == tarfile.GNUTYPE_SPARSE:
                kind = "a link" if info.issym() or info.islnk() else "a device, fifo or other"
                raise ArchiveError(f"it holds a link or special file ('{name}', {kind})")
            if name in seen:
                raise ArchiveError(f"member '{name}' appears twice")
            seen.add(name)
            if not base:
                if not info.isdir():
                    raise ArchiveError(f"member '{name}' is not a folder")
                continue
            if base not in caps:
                raise ArchiveError(f"member '{name}' is not a CIFAR-10 file")
            if not info.isreg():
                raise ArchiveError(f"member '{name}' is not a regular file")
            if info.size > caps[base] or (exact and info.size != expected[base]):
                raise ArchiveError(
                    f"member '{name}' is {info.size} bytes; CIFAR-10's is {expected[base]}"
                )
            yield base, info, tar


def write_member(tar: tarfile.TarFile, info: tarfile.TarInfo, path: Path) -> int:
    """Write the regular member ``info`` into the new file ``path`` (mode 644)."""
    source = tar.extractfile(info)
    written = 0
    try:
        with source, open(os.open(path, NEW_FILE_FLAGS, 0o600), "wb") as out:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if written > info.size:
                    raise ArchiveError(f"member '{info.name}' holds more than its size")
                out.write(chunk)
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:  # not disk full
        raise ArchiveError(f"member '{info.name}' cannot be read ({error})") from error
    os.chmod(path, 0o644)  # whatever the archive or the umask says
    return written
