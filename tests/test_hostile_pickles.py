"""Crafted CIFAR-10 batch files: each one is refused cleanly, in its own capped process.

Every file is assembled here opcode by opcode, from the opcodes and the four numpy
names that real batches use (see cifar_fixtures.py), arranged as an attacker would.
A harness process imports numpy once and forks one child per file; the child limits
itself to 1 GB of address space and 20 s of CPU, the harness kills it after 20 s of
wall time, so a segfault or a hang fails one test instead of killing pytest. The child
loads the file with ``load_CIFAR_batch`` and reports how the load ended, its time, its
peak memory, and whether numpy still works as before (pickle round trips at protocols 2
and 5, ``_frombuffer.__defaults__``).

The oracle that the attacks are real: the issue's four are also loaded, the same capped
way, by the previous loader (the stock unpickler with a find_class allow-list of the
same four names), and do the damage an unsafe loader would suffer. A valid control batch built by
the same assembler loads, so each refusal comes from the one thing that was changed.

``python tests/test_hostile_pickles.py`` prints the table of files, times and memory.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import pytest

# fork, RLIMIT_AS and /proc/self (for the peak memory) are Linux's; CI runs Linux
pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="needs Linux (fork, /proc)")
REPO = Path(__file__).resolve().parent.parent
LIMIT_BYTES = 1 << 30  # RLIMIT_AS of each child
LIMIT_SECONDS = 20

# --------------------------------------------------------------------------------------
# A small assembler for Python 2 protocol 2 opcodes (the real files' dialect)
# --------------------------------------------------------------------------------------

NONE, FALSE, TRUE, REDUCE, BUILD = b"N", b"\x89", b"\x88", b"R", b"b"


def text(value: str | bytes) -> bytes:
    """A Python 2 str: SHORT_BINSTRING, or BINSTRING from 256 bytes on."""
    raw = value.encode("latin1") if isinstance(value, str) else value
    if len(raw) < 256:
        return b"U" + bytes([len(raw)]) + raw
    return b"T" + struct.pack("<i", len(raw)) + raw


def num(n: int) -> bytes:
    if 0 <= n < 256:
        return b"K" + bytes([n])
    if 0 <= n < 65536:
        return b"M" + struct.pack("<H", n)
    if -(2**31) <= n < 2**31:
        return b"J" + struct.pack("<i", n)
    raw = n.to_bytes(n.bit_length() // 8 + 1, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw  # LONG1, a Python 2 long


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def glob(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def dct(*pairs: tuple[bytes, bytes]) -> bytes:
    return b"}(" + b"".join(k + v for k, v in pairs) + b"u"


def lst(*items: bytes) -> bytes:
    return b"](" + b"".join(items) + b"e"


def put(index: int) -> bytes:
    return b"q" + bytes([index])


def get(index: int) -> bytes:
    return b"h" + bytes([index])


RECONSTRUCT = glob("numpy.core.multiarray", "_reconstruct")
NDARRAY = glob("numpy", "ndarray")
FROMBUFFER = glob("numpy.core.numeric", "_frombuffer")


def state(order: str = "|", subarray=NONE, names=NONE, fields=NONE, size=-1, align=-1, flags=0):
    """A dtype's BUILD state; the defaults are what numpy writes for a plain number."""
    return tup(num(3), text(order), subarray, names, fields, num(size), num(align), num(flags))


def dtype(code: str, build: bytes | None = None) -> bytes:
    """dtype(code, 0, 1), then BUILD with ``build`` (default: the plain state)."""
    order = "|" if code in ("u1", "i1") else "<"
    return glob("numpy", "dtype") + tup(text(code), num(0), num(1)) + REDUCE + (
        build if build is not None else state(order)
    ) + BUILD  # fmt: skip


def empty_array(shape=(0,), typecode: str = "b") -> bytes:
    """_reconstruct(ndarray, shape, typecode): an array awaiting its BUILD."""
    return RECONSTRUCT + tup(NDARRAY, tup(*map(num, shape)), text(typecode)) + REDUCE


def array_state(shape, dt: bytes, raw: bytes) -> bytes:
    return tup(num(1), tup(*map(num, shape)), dt, FALSE, text(raw))


def array(shape, raw: bytes, dt: bytes | None = None) -> bytes:
    """An array as Python 2 numpy pickled it: _reconstruct, then BUILD with its state."""
    return empty_array() + array_state(shape, dtype("u1") if dt is None else dt, raw) + BUILD


def batch(data: bytes, labels: bytes, *extra: tuple[bytes, bytes]) -> bytes:
    """A batch dict, keys in the real files' order, with these opcodes as values."""
    return (
        b"\x80\x02"
        + dct((text("batch_label"), text("x")), (text("labels"), labels), (text("data"), data))[
            :-1
        ]
        + b"".join(k + v for k, v in extra)
        + b"u."
    )


ONE_IMAGE = array((1, 3072), bytes(range(256)) * 12)
ONE_LABEL = lst(num(3))


def _call(module: str, name: str, arg: str) -> bytes:
    return glob(module, name) + text(arg) + b"\x85" + REDUCE  # TUPLE1 REDUCE


def crafted(marker: Path) -> dict[str, tuple[bytes, str | None]]:
    """name -> (file bytes, a fragment the refusal must contain, or None: must load).

    ``marker`` is a folder the code-running payloads would create.
    """
    m = str(marker)
    code = f"__import__('os').mkdir({m!r})"
    # __defaults__ = (): every later protocol-5 load of a C-order array lacks axis_order
    defaults_attack = FROMBUFFER + tup(NONE, dct((text("__defaults__"), tup()))) + BUILD
    twice = RECONSTRUCT + tup(NDARRAY, tup(num(0)), text("b")) + REDUCE + put(80)
    twice += array_state((1, 3072), dtype("u1"), bytes(3072)) + BUILD
    object_field = tup(text("f")), dct((text("f"), tup(dtype("O8"), num(0))))
    u1_field = tup(text("f")), dct((text("f"), tup(dtype("u1"), num(0))))
    recursive = b"]" + put(90) + b"(" + get(90) + get(90) + b"e"  # L = [L, L]
    protocol5 = FROMBUFFER + tup(
        b"\x96" + struct.pack("<Q", 3072) + bytes(3072), dtype("u1"),
        tup(num(200000), num(3072)), text("C"),
    ) + REDUCE  # fmt: skip
    nested = b"".join([b"]"] * 100_000) + b"a" * 99_999
    cases: dict[str, tuple[bytes, str | None]] = {
        "control: a valid one-image batch": (batch(ONE_IMAGE, ONE_LABEL), None),
        # a crash
        "V8 dtype given an 'O' field by BUILD, raw bytes as its pointer (segfault)": (
            batch(
                array((1,), b"A" * 8, dtype("V8", state("|", NONE, *object_field, 8, 1))),
                ONE_LABEL,
            ),
            "dtype 'V8'",
        ),  # fmt: skip
        "u1 dtype given fields by BUILD": (
            batch(
                array((1, 3072), bytes(3072), dtype("u1", state("|", NONE, *u1_field))), ONE_LABEL
            ),
            "has fields, a subarray",
        ),  # fmt: skip
        "u1 dtype given a subarray by BUILD": (
            batch(
                ONE_IMAGE,
                ONE_LABEL,
                (text("x"), dtype("u1", state("|", tup(dtype("u1"), tup(num(2)))))),
            ),
            "has fields, a subarray",
        ),  # fmt: skip
        "u1 dtype whose flags claim object items": (
            batch(array((1, 3072), bytes(3072), dtype("u1", state(flags=63))), ONE_LABEL),
            "has fields, a subarray",
        ),
        "u1 dtype whose state says 8-byte items": (
            batch(array((1, 3072), bytes(3072), dtype("u1", state(size=8))), ONE_LABEL),
            "has fields, a subarray",
        ),
        "dtype BUILT twice": (
            batch(ONE_IMAGE, ONE_LABEL, (text("x"), dtype("u1") + state() + BUILD)),
            "BUILD on a dtype already built",
        ),
        "object dtype with a list as its data": (
            batch(
                empty_array() + tup(num(1), tup(num(1)), dtype("O8"), FALSE, lst(NONE)) + BUILD,
                ONE_LABEL,
            ),
            "dtype 'O8'",
        ),  # fmt: skip
        "string dtype S3072": (
            batch(array((1,), bytes(3072), dtype("S3072")), ONE_LABEL),
            "dtype 'S3072'",
        ),
        "float64 pixels": (
            batch(array((1, 3072), bytes(8 * 3072), dtype("f8")), ONE_LABEL),
            "dtype 'f8'; a CIFAR-10 file holds only uint8",
        ),  # fmt: skip
        "int64 pixels (an allowed dtype, but not for data)": (
            batch(array((1, 3072), bytes(8 * 3072), dtype("i8")), ONE_LABEL),
            "'data' should be a uint8 array (N, 3072 columns); it is int64",
        ),
        # a hang
        "recursive labels L = [L, L] (hang)": (
            batch(ONE_IMAGE, recursive),
            "flat list of ints; item 0 is a list",
        ),
        "labels a list of lists [[1], [2]]": (
            batch(array((2, 3072), bytes(6144)), lst(lst(num(1)), lst(num(2)))),
            "flat list of ints; item 0 is a list",
        ),
        "labels [1, [2]]": (
            batch(array((2, 3072), bytes(6144)), lst(num(1), lst(num(2)))),
            "flat list of ints; item 1 is a list",
        ),
        # huge arrays from tiny files
        "_reconstruct with no BUILD claiming 200,000 images": (
            batch(empty_array((200_000, 3072), "B"), empty_array((200_000,), "l")),
            "never given its data (_reconstruct with no BUILD)",
        ),
        "shape claims 10**12 images over one image's bytes": (
            batch(array((10**12, 3072), bytes(3072)), ONE_LABEL),
            "needs 3072000000000000 bytes of data, the file gives 3072",
        ),
        "protocol-5 _frombuffer claiming 200,000 images over 3072 bytes": (
            batch(protocol5, ONE_LABEL),
            "needs 614400000 bytes of data, the file gives 3072",
        ),
        "shape with a negative size": (
            batch(array((-1, 3072), bytes(3072)), ONE_LABEL),
            "has a negative size",
        ),
        "300,000 labels for one image": (
            batch(ONE_IMAGE, b"](" + num(1) * 300_000 + b"e"),
            "1 images but 300000 labels",
        ),
        "600,000 opcodes": (
            batch(ONE_IMAGE, b"](" + num(1) * 600_000 + b"e"),
            "more than 500000 pickle opcodes",
        ),
        "string length claims 2 GB": (
            b"\x80\x02}(U\x04dataT\xff\xff\xff\x7f" + bytes(10),
            "ends in the middle",
        ),
        "BINBYTES8 length claims 2**63 bytes": (
            b"\x80\x04}(U\x04data\x8e" + struct.pack("<Q", 2**63) + bytes(10),
            "ends in the middle",
        ),
        # a changed numpy
        "BUILD on numpy's _frombuffer setting __defaults__": (
            batch(ONE_IMAGE, ONE_LABEL, (text("filenames"), defaults_attack)),
            "BUILD on numpy's _frombuffer",
        ),
        "BUILD on the numpy.ndarray class": (
            batch(ONE_IMAGE, ONE_LABEL, (text("x"), NDARRAY + tup(NONE, dct()) + BUILD)),
            "BUILD on numpy's ndarray",
        ),
        "BUILD on the numpy.dtype class": (
            batch(ONE_IMAGE, ONE_LABEL, (text("x"), glob("numpy", "dtype") + dct() + BUILD)),
            "BUILD on numpy's dtype",
        ),
        "second BUILD on a built array, through the memo": (
            batch(
                twice,
                ONE_LABEL,
                (text("x"), get(80) + array_state((2, 3072), dtype("u1"), bytes(6144)) + BUILD),
            ),
            "BUILD on an array already built",
        ),  # fmt: skip
        "BUILD on the labels list": (
            batch(ONE_IMAGE, ONE_LABEL + tup(NONE, dct()) + BUILD),
            "BUILD on a list",
        ),
        "BUILD on a finished protocol-5 array": (
            batch(
                FROMBUFFER
                + tup(text(bytes(3072)), dtype("u1"), tup(num(1), num(3072)), text("C"))
                + REDUCE
                + array_state((1, 3072), dtype("u1"), bytes(3072))
                + BUILD,
                ONE_LABEL,
            ),
            "BUILD on an array already built",
        ),  # fmt: skip
        # bytes of the wrong length
        "array bytes one short of its shape": (
            batch(array((2, 3072), bytes(6143)), lst(num(1), num(2))),
            "needs 6144 bytes of data, the file gives 6143",
        ),
        "array bytes one more than its shape": (
            batch(array((2, 3072), bytes(6145)), lst(num(1), num(2))),
            "needs 6144 bytes of data, the file gives 6145",
        ),
        "shape claims 3 images, bytes hold 2": (
            batch(array((3, 3072), bytes(6144)), lst(num(1), num(2), num(3))),
            "needs 9216 bytes of data, the file gives 6144",
        ),
        # arrays and labels the format does not have
        "data of shape (1, 32, 96)": (
            batch(array((1, 32, 96), bytes(3072)), ONE_LABEL),
            "'data' should be a uint8 array (N, 3072 columns); it is uint8 of shape (1, 32, 96)",
        ),
        "data with no images": (batch(array((0, 3072), b""), lst()), "holds no images"),
        "label 10": (batch(ONE_IMAGE, lst(num(10))), "labels should be in 0..9; found 10..10"),
        "label -1": (batch(ONE_IMAGE, lst(num(-1))), "labels should be in 0..9; found -1..-1"),
        "label 2**62 (a Python 2 long)": (
            batch(ONE_IMAGE, lst(num(2**62))),
            f"found {2**62}..{2**62}",
        ),
        "label True": (batch(ONE_IMAGE, lst(TRUE)), "item 0 is a bool"),
        "label 1.5": (batch(ONE_IMAGE, lst(b"G" + struct.pack(">d", 1.5))), "item 0 is a float"),
        "labels a 2-D int8 array": (
            batch(ONE_IMAGE, array((1, 1), b"\x01", dtype("i1"))),
            "'labels' should be 1-D",
        ),
        "labels a string": (batch(ONE_IMAGE, text("3")), "it is a bytes"),
        "2 images, 1 label": (
            batch(array((2, 3072), bytes(6144)), ONE_LABEL),
            "2 images but 1 labels",
        ),  # fmt: skip
        "no labels entry": (
            b"\x80\x02" + dct((text("data"), ONE_IMAGE)) + b".",
            "it has no ['labels'] entry",
        ),  # fmt: skip
        # code, and names that are not numpy's array helpers (never run: see marker)
        "os.mkdir inside a batch": (
            batch(ONE_IMAGE, _call("os", "mkdir", m)),
            "asks for 'os'.'mkdir'",
        ),
        "posix.mkdir through STACK_GLOBAL (protocol 5)": (
            b"\x80\x05\x8c\x05posix\x8c\x05mkdir\x93" + text(m) + b"\x85R.",
            "asks for 'posix'.'mkdir'",
        ),
        "builtins.exec": (b"\x80\x02" + _call("__builtin__", "exec", code) + b".", "'exec'"),
        "numpy's own runstring helper": (
            b"\x80\x02"
            + glob("numpy.testing._private.utils", "runstring")
            + tup(text(code), dct())
            + REDUCE
            + b".",
            "asks for 'numpy.testing._private.utils'.'runstring'",
        ),  # fmt: skip
        "protocol 0 INST (text opcodes)": (
            f"(S'{m}'\nios\nmkdir\n.".encode(),
            "opcode STRING, which CIFAR-10 files never use",
        ),
        "numpy.load": (b"\x80\x02" + _call("numpy", "load", m) + b".", "'numpy'.'load'"),
        "_reconstruct of numpy.dtype instead of ndarray": (
            batch(
                RECONSTRUCT + tup(glob("numpy", "dtype"), tup(num(0)), text("b")) + REDUCE,
                ONE_LABEL,
            ),
            "_reconstruct of something other than a plain numpy array",
        ),  # fmt: skip
        "NEWOBJ opcode": (b"\x80\x02" + NDARRAY + b")\x81.", "opcode NEWOBJ"),
        "out-of-band buffer (NEXT_BUFFER)": (b"\x80\x05\x97.", "opcode NEXT_BUFFER"),
        # malformed structure
        "a list as a dict key": (
            b"\x80\x02" + dct((lst(num(1)), num(2))) + b".",
            "a dict key is a list",
        ),
        "not a dict": (b"\x80\x02" + lst(num(1)) + b".", "expected a dict, found a list"),
        "bytes after STOP": (batch(ONE_IMAGE, ONE_LABEL) + b"junk", "4 bytes follow the end"),
        "empty file": (b"", "is empty (0 bytes)"),
        # weird but harmless: these load, in bounded memory
        "memo index 4,000,000,000 (LONG_BINPUT)": (
            batch(ONE_IMAGE, ONE_LABEL + b"r" + struct.pack("<I", 4_000_000_000)),
            None,
        ),
        "100,000-deep nested lists in batch_label": (
            batch(ONE_IMAGE, ONE_LABEL, (text("batch_label"), nested)),
            None,
        ),
        "100,000-deep nested tuples in batch_label": (
            batch(ONE_IMAGE, ONE_LABEL, (text("batch_label"), b"(" * 100_000 + b"t" * 100_000)),
            None,
        ),
    }
    return cases


def write_cases(folder: Path) -> dict[str, tuple[Path, str | None]]:
    """Write every crafted file into ``folder``; also a /dev/zero link and a huge file."""
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, str | None]] = {}
    for k, (name, (raw, expect)) in enumerate(crafted(folder / "marker").items()):
        path = folder / f"case_{k:02d}"
        path.write_bytes(raw)
        files[name] = (path, expect)
    zero = folder / "dev_zero"
    zero.symlink_to("/dev/zero")
    files["a symlink to /dev/zero"] = (zero, "not a regular file")
    fifo = folder / "fifo"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    files["a FIFO with no writer"] = (fifo, "not a regular file")
    huge = folder / "huge"
    with open(huge, "wb") as f:
        f.truncate(300 * 2**20)  # sparse: no disk used
    files["a 300 MB file"] = (huge, "far more than any CIFAR-10 batch")
    return files


# --------------------------------------------------------------------------------------
# The harness: one forked, capped child per file
# --------------------------------------------------------------------------------------

HARNESS = r"""
import json, os, pickle, resource, signal, sys, time
import numpy as np
try:
    from numpy._core.numeric import _frombuffer
except ImportError:
    from numpy.core.numeric import _frombuffer
from cs231n.data_utils import UnsafePickleError, load_CIFAR_batch

job = json.loads(sys.argv[1])
DEFAULTS = _frombuffer.__defaults__


def numpy_problems():
    problems = []
    if _frombuffer.__defaults__ != DEFAULTS:
        problems.append("_frombuffer.__defaults__ changed")
    for protocol in (2, 5):
        try:
            a = np.arange(3)
            b = pickle.loads(pickle.dumps(a, protocol=protocol))
            if b.dtype != a.dtype or b.tolist() != [0, 1, 2]:
                problems.append(f"protocol {protocol} round trip gives another array")
        except Exception as err:
            problems.append(f"protocol {protocol} round trip: {type(err).__name__}")
    return problems


class OldUnpickler(pickle.Unpickler):  # the stock-unpickler loader, for the oracle
    from numpy._core.multiarray import _reconstruct
    ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
        ("numpy.core.numeric", "_frombuffer"): _frombuffer,
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): np.dtype,
    }

    def find_class(self, module, name):
        return self.ALLOWED[(module, name)]


def rss_kb(field):
    with open("/proc/self/status") as f:
        return int(next(line for line in f if line.startswith(field)).split()[1])


def run(path):
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset the peak (VmHWM) to the current RSS
    report = {"rss_before_kb": rss_kb("VmRSS:")}
    start = time.perf_counter()
    try:
        if job["old"]:
            with open(path, "rb") as f:
                batch = OldUnpickler(f, encoding="latin1").load()
            data, labels = batch["data"], batch["labels"]
            report["data_shape"] = list(data.shape)
            report["labels_contain_themselves"] = isinstance(labels, list) and any(
                x is labels for x in labels)
            report["numpy_problems"] = numpy_problems()
            sys.stdout.flush()
            os.write(job_fd, json.dumps(report).encode() + b"\n")
            repr(data)  # what the old loader's error message did
            report["outcome"] = "loaded"
        else:
            load_CIFAR_batch(path)
            report["outcome"] = "loaded"
    except UnsafePickleError as err:
        report.update(outcome="refused", message=str(err))
    except BaseException as err:
        report.update(outcome="error", message=f"{type(err).__name__}: {str(err)[:300]}")
    report["seconds"] = time.perf_counter() - start
    report["peak_kb"] = rss_kb("VmHWM:")
    report["numpy_problems"] = numpy_problems()
    return report


results = {}
for name, path in job["cases"]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        job_fd = w
        try:
            resource.setrlimit(resource.RLIMIT_AS, (job["bytes"], job["bytes"]))
            resource.setrlimit(resource.RLIMIT_CPU, (job["seconds"], job["seconds"] + 1))
            os.write(w, json.dumps(run(path)).encode() + b"\n")
        finally:
            os._exit(0)
    os.close(w)
    start = time.monotonic()
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            how = ("exit %d" % os.WEXITSTATUS(status) if os.WIFEXITED(status)
                   else "signal %d" % os.WTERMSIG(status))
            break
        if time.monotonic() - start > job["seconds"]:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            how = "killed after %d s" % job["seconds"]
            break
        time.sleep(0.002)
    chunks = []
    while chunk := os.read(r, 1 << 16):
        chunks.append(chunk)
    os.close(r)
    lines = b"".join(chunks).decode().splitlines()
    report = json.loads(lines[-1]) if lines else {}
    if len(lines) > 1:  # the old loader's report from before the final repr
        report = {**json.loads(lines[0]), **report}
    report["process"] = how
    report["wall_seconds"] = time.monotonic() - start
    results[name] = report
print(json.dumps(results))
"""


def run_harness(cases: dict[str, Path], old: bool = False) -> dict:
    """Load each file in its own forked child with the caps; return the children's reports."""
    job = {
        "cases": [[name, str(path)] for name, path in cases.items()],
        "old": old,
        "bytes": LIMIT_BYTES,
        "seconds": LIMIT_SECONDS,
    }
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", HARNESS, json.dumps(job)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60 + LIMIT_SECONDS * len(cases),
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.fixture(scope="module")
def crafted_files(tmp_path_factory) -> dict[str, tuple[Path, str | None]]:
    return write_cases(tmp_path_factory.mktemp("crafted"))


@pytest.fixture(scope="module")
def reports(crafted_files) -> dict:
    return run_harness({name: path for name, (path, _) in crafted_files.items()})


# --------------------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------------------


def test_the_control_batch_is_a_valid_cifar_batch(crafted_files):
    # the assembler writes what the loader and stock pickle both read the same way
    import pickle

    import numpy as np

    from cs231n.data_utils import load_CIFAR_batch

    path = crafted_files["control: a valid one-image batch"][0]
    stock = pickle.loads(path.read_bytes(), encoding="latin1")
    X, y = load_CIFAR_batch(path)
    assert stock["labels"] == y.tolist() == [3]
    row = np.concatenate([X[0, :, :, ch].ravel() for ch in range(3)])
    np.testing.assert_array_equal(row, stock["data"][0])
    assert row.tolist() == list(range(256)) * 12


@pytest.mark.parametrize(
    "name", [*crafted(Path("m")), "a symlink to /dev/zero", "a FIFO with no writer"]
)
def test_crafted_file_is_refused_cleanly_in_bounded_time_and_memory(crafted_files, reports, name):
    path, expect = crafted_files[name]
    report = reports[name]
    assert report["process"] == "exit 0", report  # no crash, no hang, no memory blow-up
    assert report["numpy_problems"] == [], report  # numpy works as before
    assert not (path.parent / "marker").exists()  # no payload ran
    if expect is None:
        assert report["outcome"] == "loaded", report
    else:
        assert report["outcome"] == "refused", report
        message = report["message"]
        assert message.startswith(str(path)), message  # names the file
        assert expect in message, message  # says what is wrong
        assert "./get_datasets.sh" in message, message  # says what to do
        # never a repr of what the file built, and never an unbounded message
        assert "array(" not in message and "AAAAAAAA" not in message, message
        assert len(message) < len(str(path)) + 500, message
    # memory: the load's peak is at most 50 MB above what the process held before it
    assert report["peak_kb"] - report["rss_before_kb"] < 50_000, report


def test_huge_file_is_refused_without_reading_it(crafted_files, reports):
    report = reports["a 300 MB file"]
    assert report["process"] == "exit 0" and report["outcome"] == "refused", report
    assert "far more than any CIFAR-10 batch" in report["message"]
    assert report["peak_kb"] - report["rss_before_kb"] < 10_000, report


ISSUE_ATTACKS = [
    "V8 dtype given an 'O' field by BUILD, raw bytes as its pointer (segfault)",
    "recursive labels L = [L, L] (hang)",
    "_reconstruct with no BUILD claiming 200,000 images",
    "BUILD on numpy's _frombuffer setting __defaults__",
]


def test_the_issue_attacks_are_live_under_the_old_loader(crafted_files):
    # Oracle: the stock unpickler, allowed the same four numpy names, is hurt by each
    old = run_harness({name: crafted_files[name][0] for name in ISSUE_ATTACKS}, old=True)
    crash, recursive, uninitialised, defaults = (old[name] for name in ISSUE_ATTACKS)
    assert crash["process"] == "signal 11", crash  # the segfault of item 1
    assert recursive["labels_contain_themselves"] is True, recursive
    assert uninitialised["data_shape"] == [200_000, 3072], uninitialised
    assert "_frombuffer.__defaults__ changed" in defaults["numpy_problems"], defaults
    assert any("protocol 5 round trip" in p for p in defaults["numpy_problems"]), defaults


def main() -> None:
    """Print every crafted file with its size, outcome, time and peak memory."""
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        files = write_cases(Path(tmp))
        reports = run_harness({name: path for name, (path, _) in files.items()})
        print("ms: time of the load; MB: peak RSS of the child during the load, and its rise")
        print(f"{'file':<66} {'bytes':>9} {'outcome':>8} {'ms':>7} {'MB':>5} {'+MB':>5}")
        for name, (path, _) in files.items():
            r = reports[name]
            size = path.lstat().st_size if path.is_symlink() else path.stat().st_size
            print(
                f"{name[:66]:<66} {size:>9} {r.get('outcome', r['process']):>8} "
                f"{1000 * r['seconds']:>7.1f} {r['peak_kb'] / 1024:>5.1f} "
                f"{(r['peak_kb'] - r['rss_before_kb']) / 1024:>5.1f}"
            )


if __name__ == "__main__":
    main()
