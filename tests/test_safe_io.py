"""cs231n._safe_io against hand-made hostile files, archives and .npy headers."""

from __future__ import annotations

import io
import os
import stat
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from cs231n import _safe_io
from cs231n._safe_io import FileRefused, load_npy, load_npz, read_file


def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def npy_header(shape: tuple, descr: str = "<f8") -> bytes:
    """The header np.save would write for an array of this shape, with no data after it."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer, {"descr": descr, "fortran_order": False, "shape": shape}
    )
    return buffer.getvalue()


def npz(members: dict[str, bytes], compression: int = zipfile.ZIP_STORED) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------------------
# read_file
# --------------------------------------------------------------------------------------


def test_read_file_reads_a_regular_file(tmp_path):
    path = tmp_path / "f.bin"
    data = bytes(range(256)) * 5 + b"\r\n\x1a"  # bytes text mode would change
    path.write_bytes(data)
    assert read_file(path, len(data), "a test file") == data


def test_read_file_refuses_a_symlink_unless_told_to_follow(tmp_path):
    target = tmp_path / "target"
    target.write_bytes(b"secret")
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(FileRefused, match=r"link is a symbolic link \(to .*target\)") as refused:
        read_file(link, 100, "a test file")
    assert refused.value.reason == "link" and isinstance(refused.value, ValueError)
    assert read_file(link, 100, "a test file", follow_links=True) == b"secret"


def test_read_file_refuses_a_link_to_a_device_even_when_following(tmp_path):
    link = tmp_path / "zero"
    link.symlink_to("/dev/zero")
    with pytest.raises(FileRefused, match="zero: not a regular file") as refused:
        read_file(link, 100, "a test file", follow_links=True)
    assert refused.value.reason == "not regular"


def test_read_file_does_not_wait_on_a_fifo(tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)  # a blocking open would wait for a writer forever
    with pytest.raises(
        FileRefused, match=r"fifo: not a regular file \(a folder, device or pipe\)"
    ):
        read_file(fifo, 100, "a test file")


def test_read_file_refuses_a_directory(tmp_path):
    with pytest.raises(FileRefused, match="not a regular file") as refused:
        read_file(tmp_path, 100, "a test file")
    assert str(tmp_path) in str(refused.value)


def test_read_file_refuses_an_oversized_file_without_reading_it(tmp_path):
    huge = tmp_path / "huge"
    with open(huge, "wb") as f:
        f.truncate(200 * 2**20)  # sparse: no disk used
    tracemalloc.start()
    try:
        with pytest.raises(FileRefused, match=r"209,715,200 bytes, more than a test file"):
            read_file(huge, 2**20, "a test file")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1e6, peak
    exact = tmp_path / "exact"
    exact.write_bytes(b"x" * 1000)
    assert len(read_file(exact, 1000, "a test file")) == 1000
    with pytest.raises(FileRefused, match="1,000 bytes, more than"):
        read_file(exact, 999, "a test file")


def test_read_file_refuses_a_file_that_grows_while_read(tmp_path, monkeypatch):
    path = tmp_path / "growing"
    path.write_bytes(b"x" * 100)
    real_fstat = os.fstat

    def fstat_before_the_writer(fd):  # as if 40 more bytes were written after the fstat
        info = list(real_fstat(fd))
        info[stat.ST_SIZE] = 60
        return os.stat_result(info)

    monkeypatch.setattr(os, "fstat", fstat_before_the_writer)
    with pytest.raises(FileRefused, match=r"growing: it grew while being read \(from 60 bytes"):
        read_file(path, 1000, "a test file")


def test_read_file_missing_is_an_oserror(tmp_path):
    with pytest.raises(FileNotFoundError):
        read_file(tmp_path / "nope", 10, "a test file")


def test_open_flags_use_only_what_os_has(monkeypatch):
    flags = _safe_io.open_flags()
    assert flags & os.O_NOFOLLOW and flags & os.O_NONBLOCK
    assert not _safe_io.open_flags(follow_links=True) & os.O_NOFOLLOW
    # Windows' os: no O_NONBLOCK, no O_NOFOLLOW, and an O_BINARY that must be used
    monkeypatch.delattr(os, "O_NONBLOCK")
    monkeypatch.delattr(os, "O_NOFOLLOW")
    monkeypatch.setattr(os, "O_BINARY", 0x8000, raising=False)
    assert _safe_io.open_flags() == os.O_RDONLY | 0x8000


# --------------------------------------------------------------------------------------
# load_npy
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", ["<f8", ">f8", "<i4", ">u2", "|u1", "<U5", "?"])
@pytest.mark.parametrize("order", ["C", "F"])
def test_load_npy_round_trips_plain_arrays(dtype, order):
    oracle = np.arange(24).reshape(2, 3, 4) % 7  # known values
    stored = np.array(oracle.astype(dtype), order=order)
    loaded = load_npy(npy(stored), 10_000, "x")
    assert loaded.dtype == np.dtype(dtype).newbyteorder("=") and loaded.flags.writeable
    assert loaded.flags.c_contiguous
    np.testing.assert_array_equal(loaded, oracle.astype(dtype))


def test_load_npy_refuses_a_header_claiming_a_huge_shape_before_allocating():
    data = npy_header((2**45,)) + bytes(80)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"forged claims shape \(35184372088832,\)"):
            load_npy(data, 2**20, "forged")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1e6, peak


def test_load_npy_refuses_data_of_the_wrong_length():
    with pytest.raises(ValueError, match=r"claims shape \(10,\) \(80 bytes of data\), but .* 40$"):
        load_npy(npy_header((10,)) + bytes(40), 10_000, "short")
    with pytest.raises(ValueError, match="but the file holds 88"):
        load_npy(npy(np.zeros(10)) + bytes(8), 10_000, "long")


def test_load_npy_refuses_object_dtypes_without_unpickling(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    buffer = io.BytesIO()
    np.save(buffer, np.array([Payload()], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="dtype object"):
        load_npy(buffer.getvalue(), 10_000, "evil")
    assert not marker.exists()
    # an object hidden in a structured dtype's field
    header = npy_header((1,), descr=[("a", "<f8"), ("b", "|O")])
    with pytest.raises(ValueError, match="dtype object"):
        load_npy(header + bytes(16), 10_000, "evil")
    assert not marker.exists()


def test_load_npy_checks_dtypes_and_versions():
    with pytest.raises(ValueError, match="dtype float16; expected float32 or float64"):
        load_npy(npy(np.ones(2, np.float16)), 100, "W", dtypes=(np.float32, np.float64))
    ok = load_npy(npy(np.ones(2, ">f4")), 100, "W", dtypes=(np.float32, np.float64))
    assert ok.dtype == np.float32
    with pytest.raises(ValueError, match="structured|plain number"):
        load_npy(npy(np.zeros(2, dtype=[("a", "<f8")])), 100, "x")
    with pytest.raises(ValueError, match="version 3.0"):
        load_npy(b"\x93NUMPY\x03\x00" + bytes(20), 100, "x")
    with pytest.raises(ValueError, match="not a valid .npy"):
        load_npy(b"PK\x03\x04 not an npy", 100, "x")


# --------------------------------------------------------------------------------------
# load_npz
# --------------------------------------------------------------------------------------


def test_load_npz_reads_np_savez_files_and_checks_names():
    buffer = io.BytesIO()
    a, b = np.arange(6.0).reshape(2, 3), np.array("tag")
    np.savez(buffer, a=a, b=b)
    arrays = load_npz(buffer.getvalue(), {"a", "b", "c"}, 10_000, "m.npz")
    assert list(arrays) == ["a", "b"]
    np.testing.assert_array_equal(arrays["a"], a)
    assert str(arrays["b"]) == "tag"
    with pytest.raises(ValueError, match="m.npz holds 'b', which it should not"):
        load_npz(buffer.getvalue(), {"a"}, 10_000, "m.npz")
    assert set(load_npz(buffer.getvalue(), None, 10_000, "m.npz")) == {"a", "b"}


def test_load_npz_refuses_what_is_not_an_npz():
    with pytest.raises(ValueError, match="x is not an .npz"):
        load_npz(npy(np.zeros(3)), None, 10_000, "x")
    with pytest.raises(ValueError, match="not one .npy array per name"):
        load_npz(npz({"notes.txt": b"hello"}), None, 10_000, "x")


def test_load_npz_refuses_a_compressed_bomb_before_inflating_it():
    # 80 MB of zeros behind a valid header, deflated to well under 1 MB
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("W.npy", "w", force_zip64=True) as f:
            f.write(npy_header((10_000_000,)))
            for _ in range(80):
                f.write(bytes(1_000_000))
    data = buffer.getvalue()
    assert len(data) < 1e6
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"would decompress to 80,000,128 bytes"):
            load_npz(data, {"W"}, 2**20, "bomb.npz")
        # even under a generous cap the inflation ratio alone refuses it
        with pytest.raises(ValueError, match=r"would inflate from \d+ to 80000128 bytes"):
            load_npz(data, {"W"}, 2**30, "bomb.npz")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 5e6, peak


def _set_stated_size(data: bytes, size: int) -> bytes:
    """The archive with its single member's uncompressed size rewritten in both headers."""
    raw = bytearray(data)
    local = raw.index(b"PK\x03\x04")
    raw[local + 22 : local + 26] = struct.pack("<I", size)
    central = raw.index(b"PK\x01\x02")
    raw[central + 24 : central + 28] = struct.pack("<I", size)
    return bytes(raw)


@pytest.mark.parametrize("compression", [zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED])
def test_load_npz_refuses_a_member_whose_header_lies_about_its_size(compression):
    honest = npz({"W.npy": npy(np.arange(1000.0))}, compression)
    np.testing.assert_array_equal(load_npz(honest, {"W"}, 10**6, "m")["W"], np.arange(1000.0))
    # states 200 bytes: the 128-byte header then claims 8000 bytes the member does not
    # have (or the cut-short member fails its CRC as it is read)
    lie = r"^m: W claims shape \(1000,\) \(8000 bytes of data\)|^m is a damaged .*CRC"
    with pytest.raises(ValueError, match=lie):
        load_npz(_set_stated_size(honest, 200), {"W"}, 10**6, "m")
    # states more than there is, within the cap: never read past the real data
    with pytest.raises(
        ValueError, match=r"^m: W claims shape \(1000,\) \(8000 bytes of data\), but"
    ):
        load_npz(_set_stated_size(honest, 8128 + 4096), {"W"}, 10**6, "m")
    # states far more than the cap: refused before a byte is inflated
    with pytest.raises(ValueError, match=r"^m would decompress to 4,000,000,000 bytes"):
        load_npz(_set_stated_size(honest, 4_000_000_000), {"W"}, 10**6, "m")


def test_load_npz_refuses_a_member_whose_npy_header_lies():
    # a zip member of 128 + 800 bytes whose .npy header claims shape (2**45,)
    data = npz({"W.npy": npy_header((2**45,)) + bytes(800)})
    with pytest.raises(ValueError, match=r"m: W claims shape \(35184372088832,\)"):
        load_npz(data, {"W"}, 10**6, "m")


def test_load_npz_refuses_a_damaged_archive():
    good = bytearray(npz({"W.npy": npy(np.eye(30))}, zipfile.ZIP_DEFLATED))
    at = good.index(b"PK\x01\x02")  # corrupt the compressed data before the directory
    good[at - 40 : at - 30] = bytes(10)
    with pytest.raises(ValueError, match="damaged or unsupported"):
        load_npz(bytes(good), None, 10**6, "m")


def test_open_npz_reads_members_one_at_a_time_with_their_own_caps():
    data = npz({"tag.npy": npy(np.array("S" * 5000)), "W.npy": npy(np.eye(2))})
    with _safe_io.open_npz(data, "m") as archive:
        assert archive.names == {"tag", "W"}
        with pytest.raises(ValueError, match=r"m: tag is 20,128 bytes, too big \(at most 4,096\)"):
            archive.array("tag", 4096)
        np.testing.assert_array_equal(archive.array("W", 4096), np.eye(2))
