"""Download CIFAR-10 (python version) into ``datasets/cifar-10-batches-py`` of this kit.

Run it from the kit's folder, on any OS with Python 3.10 or newer (no other tools)::

    python -m cs231n.get_datasets        (./get_datasets.sh runs just this)

It is safe to run again, or twice at once. What it guarantees:

- The archive (170,498,071 bytes) is downloaded into a temporary folder inside
  ``datasets/``, with a size cap, a 30 s connect timeout and a stall limit.
- Its md5 is checked. Its members are checked against the files CIFAR-10 holds, with
  their sizes, before anything is extracted: no absolute paths, no ``..``, no links or
  devices, no unknown or oversized members, no archive that expands to more than
  CIFAR-10 does.
- Only those files are written, with plain permissions, and the folder is moved into
  place in one rename. On any failure, Ctrl-C or kill, the temporary folder is removed,
  so ``datasets/`` is left as it was; a later run removes what a killed run left.
- A second run waits for the first (a lock the OS drops when its holder ends).

Environment:

``CIFAR10_URL``
    where to download from (default: the dataset's home page); an ``http://`` or
    ``https://`` URL, or ``file:///path/to/cifar-10-python.tar.gz`` for a local copy
``CIFAR10_MD5``
    its expected md5 (default: that of the official archive)
``CIFAR10_MAX_BYTES``
    the most the download may be (default: the official archive's size, or
    200,000,000 when ``CIFAR10_MD5`` names another file)
``CIFAR10_STALL_SECONDS``
    give up when under 10 kB/s arrive for this long (default 60)
"""

from __future__ import annotations

import argparse
import errno
import os
import signal
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

if not __package__:  # run as a file (python cs231n/get_datasets.py): find the package
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from cs231n import _download  # noqa: E402

OFFICIAL_URL = "http://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"
OFFICIAL_BYTES = 170_498_071
FOLDER = "cifar-10-batches-py"
FILES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
# The official archive's members and their sizes in bytes, as two independent listings
# of an extracted copy show them (the SDS-2.2 course notes of lamastex/scalable-data-
# science, "ls -l" on DBFS; and an S3CIFAR10 docstring, "s3cmd ls", on GitHub). With the
# official md5 the sizes must match exactly; with another md5 they are caps.
OFFICIAL_SIZES = {
    "data_batch_1": 31_035_704,
    "data_batch_2": 31_035_320,
    "data_batch_3": 31_035_999,
    "data_batch_4": 31_035_696,
    "data_batch_5": 31_035_623,
    "test_batch": 31_035_526,
    "batches.meta": 158,
    "readme.html": 88,
}
LARGEST_BATCH = max(OFFICIAL_SIZES.values())
SMALL_FILE_CAP = 4096  # batches.meta and readme.html, when the md5 is not the official one
# the whole uncompressed tar stream: 6 batches, 2 small files, headers and padding
STREAM_CAP = 6 * LARGEST_BATCH + 2 * SMALL_FILE_CAP + (1 << 20)
MAX_MEMBERS = 20
MIN_RATE = 10240  # bytes per second, over the stall window
LEFTOVER = "cifar-10.tmp."  # + pid + random; matches datasets/*.tmp* in .gitignore

KIT = Path(__file__).resolve().parent.parent
DATASETS = KIT / "datasets"


class Failure(Exception):
    """What went wrong (the message), and what to do about it (``remedies``)."""

    def __init__(self, message: str, *remedies: str) -> None:
        super().__init__(message)
        self.remedies = [line for line in remedies if line]


class Stopped(BaseException):
    """A signal asked the run to stop (raised from the signal handler)."""

    def __init__(self, what: str, status: int) -> None:
        super().__init__(what)
        self.what, self.status = what, status


@dataclass(frozen=True)
class Settings:
    url: str
    md5: str
    max_bytes: int
    stall_seconds: int

    @property
    def official(self) -> bool:
        return self.md5 == OFFICIAL_MD5


def _whole_number(name: str, value: str, most: int) -> int:
    if not (value.isascii() and value.isdigit() and len(value) <= 10) or not (
        1 <= int(value) <= most
    ):
        raise Failure(
            f"{name}={value} is not a whole number from 1 to {most}", "Unset it for the default."
        )
    return int(value)


def read_settings(environ: dict[str, str]) -> Settings:
    """The settings from ``CIFAR10_*`` variables (an empty one means its default)."""
    url = environ.get("CIFAR10_URL") or OFFICIAL_URL
    md5 = (environ.get("CIFAR10_MD5") or OFFICIAL_MD5).lower()
    default_max = OFFICIAL_BYTES if md5 == OFFICIAL_MD5 else 200_000_000
    max_bytes = environ.get("CIFAR10_MAX_BYTES") or str(default_max)
    stall = environ.get("CIFAR10_STALL_SECONDS") or "60"
    max_bytes_n = _whole_number("CIFAR10_MAX_BYTES", max_bytes, 1_000_000_000)
    stall_n = _whole_number("CIFAR10_STALL_SECONDS", stall, 3600)
    if len(md5) != 32 or not all(c in "0123456789abcdef" for c in md5):
        raise Failure(
            f"CIFAR10_MD5={md5} is not an md5 (32 hex digits)",
            "Unset it for the official archive's md5.",
        )
    if urllib.parse.urlsplit(url).scheme.lower() not in ("http", "https", "file"):
        raise Failure(
            f"CIFAR10_URL={url} is not an http://, https:// or file:// URL",
            "Unset it for the default.",
        )
    return Settings(url, md5, max_bytes_n, stall_n)


def folder_problem(folder: Path, official: bool) -> str | None:
    """What keeps ``folder`` from being a usable CIFAR-10 folder, or None."""
    missing = [f for f in FILES if not _is_plain_file(folder / f)]
    if missing:
        return "lacks: " + " ".join(missing)
    for name in FILES:
        try:
            fd = os.open(folder / name, _download.READ_FLAGS | getattr(os, "O_NONBLOCK", 0))
        except OSError:
            return f"{name} cannot be read"
        try:
            size = os.fstat(fd).st_size
            if size == 0:
                return f"{name} is empty"
            if official and size != OFFICIAL_SIZES[name]:
                return (
                    f"{name} is {size} bytes where CIFAR-10's is {OFFICIAL_SIZES[name]} "
                    "(damaged, or not CIFAR-10)"
                )
            os.lseek(fd, size - 1, os.SEEK_SET)
            if os.read(fd, 1) != b".":  # every pickle ends with the STOP opcode '.'
                return f"{name} is cut short (it does not end as a pickle does)"
        except OSError:
            return f"{name} cannot be read"
        finally:
            os.close(fd)
    return None


def _is_plain_file(path: Path) -> bool:
    try:
        return path.lstat().st_mode & 0o170000 == 0o100000  # a regular file, not a link
    except OSError:
        return False


def checked_members(archive: Path, official: bool):
    """Yield ``(file name, member, tar)`` for each file in the archive, each once its
    name, type and size are those of a CIFAR-10 file (see ``_download.checked_members``)."""
    caps = dict(OFFICIAL_SIZES)
    if not official:
        caps = {name: LARGEST_BATCH for name in OFFICIAL_SIZES}
        caps.update({"batches.meta": SMALL_FILE_CAP, "readme.html": SMALL_FILE_CAP})
    return _download.checked_members(
        archive, FOLDER, caps, OFFICIAL_SIZES, exact=official, max_members=MAX_MEMBERS
    )


class Run:
    """One run: the steps, in the order :meth:`install` takes them."""

    def __init__(self, settings: Settings, command: str, datasets: Path = DATASETS) -> None:
        self.settings, self.command = settings, command
        self.datasets, self.target = datasets, datasets / FOLDER
        self.tmp: Path | None = None
        self.placed = False
        self.made_datasets = False
        self.locked = False  # whether this run holds the lock (see main)

    def again(self) -> str:
        return f"run {self.command} again"

    def install(self) -> str:
        """Make sure CIFAR-10 is in datasets/; return what was done."""
        target, shown = self.target, f"datasets/{FOLDER}"
        if target.is_symlink():
            raise Failure(
                f"{shown} is a symbolic link",
                "Point CIFAR10_DIR at the real folder instead, remove the link, and "
                f"{self.again()}.",
            )
        if target.is_dir():
            problem = folder_problem(target, self.settings.official)
            if problem is None:
                return f"CIFAR-10 is already in {shown}: nothing to download."
            raise Failure(
                f"{shown} exists, but {problem}",
                f"Remove it (rm -r {shown}, or delete the folder) and {self.again()}.",
            )
        if target.exists():
            raise Failure(f"{shown} exists and is not a folder", f"Remove it and {self.again()}.")
        try:
            self.datasets.mkdir()
            self.made_datasets = True
        except FileExistsError:
            pass
        except OSError as error:
            raise Failure(
                f"cannot create {self.datasets} ({error.strerror})",
                f"Check that you may write in {self.datasets.parent}, and {self.again()}.",
            ) from None
        self.remove_leftovers()
        self.tmp = Path(tempfile.mkdtemp(prefix=f"{LEFTOVER}{os.getpid()}.", dir=self.datasets))
        archive = self.tmp / "cifar-10-python.tar.gz"
        self.download(archive)
        folder = self.extract(archive)
        self.place(folder)
        return f"CIFAR-10 is ready in {shown}."

    def remove_leftovers(self) -> None:
        """Remove temporary folders of runs that were killed (their name holds the pid)."""
        for old in sorted(self.datasets.glob(LEFTOVER + "*")):
            pid = old.name[len(LEFTOVER) :].split(".")[0]
            if not pid.isdigit() or old.is_symlink() or not old.is_dir():
                continue  # not one of ours
            alive = _download.pid_alive(int(pid))
            # Under the lock no other run can be extracting; without it, only a folder
            # whose process has gone is surely abandoned.
            if alive is False or (alive is None and self.locked):
                try:
                    _download.remove_tree(old)
                    print(f"Removed datasets/{old.name}, left by an earlier run that was killed.")
                except OSError:
                    pass

    def download(self, archive: Path) -> None:
        s = self.settings
        print(f"Downloading {s.url} ...", flush=True)
        total = OFFICIAL_BYTES if s.official else None
        progress = (lambda n: _progress(n, total)) if sys.stderr.isatty() else None
        try:
            size, md5 = _download.fetch(
                s.url, archive, s.max_bytes, s.stall_seconds, MIN_RATE, progress
            )
        except _download.DownloadError as error:
            raise self.download_failure(error) from None
        finally:
            if progress is not None:
                print(file=sys.stderr)
        if md5 != s.md5:
            sizes = f"{size} bytes" + (
                f"; the official archive is {OFFICIAL_BYTES}" if s.official else ""
            )
            raise Failure(
                f"checksum mismatch: the file from {s.url} has md5 {md5}, "
                f"expected {s.md5} ({sizes}).",
                "The download is damaged, or the URL serves a different file. "
                "Nothing was extracted.",
                f"{self.again().capitalize()}; if it keeps failing, check CIFAR10_URL "
                "and CIFAR10_MD5.",
            )
        print(f"md5 OK ({md5}).", flush=True)

    def download_failure(self, error: _download.DownloadError) -> Failure:
        s = self.settings
        advice = (
            f"Check your connection (offline, or behind a proxy?) and {self.again()}: it "
            "starts from scratch and leaves nothing behind when it fails."
        )
        why = error.why
        if error.kind == "size":
            why = f"the file is more than {s.max_bytes} bytes, larger than the archive can be"
            advice = "Check CIFAR10_URL (unset it for the default)."
            if not s.official:
                advice += " For a bigger file, set CIFAR10_MAX_BYTES."
        elif error.kind == "stall":
            rate = f"under {MIN_RATE // 1024} kB/s for {s.stall_seconds} s"
            why = f"the download stalled ({rate}, {why})"
            advice = "The server or the connection is too slow now. Try again later, "
            advice += "or from another network."
        elif error.kind == "timeout":
            why += " (timeout)"
        elif error.kind == "refused":
            why = "the server refused the connection, or cannot be reached"
        elif error.kind == "http":
            why = f"the server answered with an error ({why})"
            advice = "Check CIFAR10_URL (unset it for the default), or try again later."
        elif error.kind == "disk":
            why = "could not write the download into datasets/ (disk full?)"
            advice = f"Free some space (about 360 MB are needed) and {self.again()}."
        elif error.kind == "url":
            advice = "Check CIFAR10_URL (unset it for the default)."
        return Failure(
            f"could not download {s.url}: {why}.",
            f"urllib said: {error.said}" if error.said else "",
            advice,
            "Or set CIFAR10_URL to a mirror, or to file:///path/to/cifar-10-python.tar.gz.",
            "Without CIFAR-10 the kit uses its bundled Fashion-MNIST (CS231N_DATASET=auto).",
        )

    def extract(self, archive: Path) -> Path:
        """Check the archive, then write its files into a new folder; return that."""
        official = self.settings.official
        try:
            if _download.expanded_size(archive, STREAM_CAP) > STREAM_CAP:
                raise _download.ArchiveError(
                    f"it expands to more than {STREAM_CAP} bytes (CIFAR-10 is about 186 MB)"
                )
            listed = {base: info.size for base, info, _ in checked_members(archive, official)}
            missing = [f for f in FILES if f not in listed]
            if missing:
                raise _download.ArchiveError(f"{FOLDER}/ lacks: {' '.join(missing)}")
            folder = self.tmp / "x" / FOLDER
            folder.mkdir(parents=True)
            written = 0
            for base, info, tar in checked_members(archive, official):
                written += _download.write_member(tar, info, folder / base)
            os.chmod(folder, 0o755)
            problem = folder_problem(folder, official)
            if problem is not None:
                raise _download.ArchiveError(f"{FOLDER}/ {problem}")
            if written != sum(listed.values()):
                raise _download.ArchiveError(
                    f"it extracted to {written} bytes, but its listing said {sum(listed.values())}"
                )
        except _download.ArchiveError as error:
            raise Failure(
                f"refusing to extract the archive: {error}",
                "It is not the CIFAR-10 archive this downloader expects. "
                "Check CIFAR10_URL and CIFAR10_MD5.",
            ) from None
        except OSError as error:
            if error.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
                raise Failure(
                    "no space left to extract CIFAR-10 into datasets/ (it needs about 186 MB)",
                    f"Free some space and {self.again()}.",
                ) from None
            raise
        return folder

    def place(self, folder: Path) -> None:
        """Move the checked folder into place in one rename, never into or over another."""
        appeared = Failure(
            f"datasets/{FOLDER} appeared while downloading (another run?)", "Nothing was changed."
        )
        for attempt in range(10):
            if os.path.lexists(self.target):
                raise appeared
            try:
                os.rename(folder, self.target)  # a non-empty folder there makes it fail
                break
            except (FileExistsError, IsADirectoryError, NotADirectoryError):
                raise appeared from None
            except PermissionError:  # Windows: a virus scanner may hold a new file
                if attempt == 9 or os.name != "nt":
                    raise
                time.sleep(0.3)
            except OSError as error:
                if error.errno in (errno.ENOTEMPTY, errno.EEXIST):
                    raise appeared from None
                raise
        self.placed = True

    def cleanup(self, failed: bool) -> None:
        if self.tmp is not None:
            try:
                _download.remove_tree(self.tmp)
            except OSError as error:
                print(
                    f"note: could not remove {self.tmp} ({error}); the next run removes it.",
                    file=sys.stderr,
                )
        if failed and self.made_datasets:
            try:
                self.datasets.rmdir()
            except OSError:
                pass


def _progress(received: int, total: int | None) -> None:
    of = f" of {total // 1_000_000}" if total else ""
    print(f"\r  {received // 1_000_000}{of} MB ", end="", file=sys.stderr, flush=True)


# what a signal that stops the run is called, and the exit status it gives (128 + number)
_SIGNALS = {"SIGTERM": ("stopped (SIGTERM)", 143), "SIGHUP": ("stopped (SIGHUP)", 129)}
_SIGNALS["SIGBREAK"] = ("stopped (Ctrl-Break)", 149)  # Windows only


def _on_signal(signum: int, frame: object) -> None:
    raise Stopped(*_SIGNALS[signal.Signals(signum).name])


def _set_handlers(handlers: dict[str, object]) -> dict[str, object]:
    """Install signal handlers by name (those this OS has); return the ones replaced."""
    replaced = {}
    for name, handler in handlers.items():
        if hasattr(signal, name) and handler is not None:
            try:
                replaced[name] = signal.signal(getattr(signal, name), handler)
            except ValueError:  # not the main thread: leave the handlers alone
                pass
    return replaced


def main(argv: list[str] | None = None) -> int:
    """Download CIFAR-10 into datasets/ (see the module docstring); return the exit status."""
    parser = argparse.ArgumentParser(
        prog="python -m cs231n.get_datasets",
        description="Download CIFAR-10 into datasets/cifar-10-batches-py, verified.",
        epilog="Environment:" + (__doc__ or "").partition("Environment:")[2].replace("``", ""),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--prog", default="", help=argparse.SUPPRESS)  # get_datasets.sh's name
    args = parser.parse_args(argv)
    command = args.prog or "python -m cs231n.get_datasets"
    name = Path(args.prog).name if args.prog else "cs231n.get_datasets"
    previous = _set_handlers(dict.fromkeys(_SIGNALS, _on_signal))
    run = None
    try:
        try:
            run = Run(read_settings(dict(os.environ)), command)
            with _download.run_lock(Path(__file__).resolve(), _say_waiting) as run.locked:
                print(run.install(), flush=True)
            return 0
        finally:  # no second Ctrl-C in the middle of cleaning up
            ignored = _set_handlers(dict.fromkeys([*_SIGNALS, "SIGINT"], signal.SIG_IGN))
            previous.setdefault("SIGINT", ignored.get("SIGINT"))
            if run is not None:
                run.cleanup(failed=not run.placed)
    except (KeyboardInterrupt, Stopped) as stop:
        what, status = (
            (stop.what, stop.status) if isinstance(stop, Stopped) else ("interrupted", 130)
        )
        done = f", after CIFAR-10 was put in datasets/{FOLDER}" if run and run.placed else ""
        print(f"\n{name}: {what}{done or '; nothing was changed in datasets/'}", file=sys.stderr)
        return status
    except (Failure, _download.LockTimeout, OSError) as error:
        if isinstance(error, _download.LockTimeout):
            error = Failure(
                f"another download of CIFAR-10 in {KIT} is still running after 15 minutes",
                f"Let it finish (or stop it), then run {command} again.",
            )
        elif not isinstance(error, Failure):
            error = Failure(
                str(error), f"Check that you may write in {DATASETS}, and run {command} again."
            )
        print(f"{name}: error: {error}", file=sys.stderr)
        for line in error.remedies:
            print(f"  {line}", file=sys.stderr)
        return 1
    finally:
        _set_handlers(previous)  # as they were (this may run inside a notebook's kernel)


def _say_waiting() -> None:
    print(
        f"Another download of CIFAR-10 is running in {KIT}; waiting for it to finish "
        "(at most 15 minutes; Ctrl-C to stop waiting) ...",
        flush=True,
    )


if __name__ == "__main__":
    sys.exit(main())
