"""Bounded inflating (ext/zipread.pyx): the early stop, every inflater on good and bad streams,
file-object sources and the member cache.

Expected values come from the fixture's own construction (ELF bytes packed with struct, symbols
and versions chosen for gcc-built stubs), from pyelftools reading the whole file, or from the
stdlib zipfile, never from the code under test.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import require
from helpers.builders import (
    ZipMember,
    deflate_3bit_block,
    make_wheel,
    write_zip,
)

from wheelscan.errors import ZipFormatError
from wheelscan.limits import Limits

if TYPE_CHECKING:
    pass

from helpers.native import (
    BIG_DATA,
    CHUNK,
    Built,
    craft_elf,
    native_inflate,
    native_modules,
    zip_with_stream,
)

pytestmark = pytest.mark.usefixtures("native_ready")

@pytest.mark.parametrize("method", ["deflate", "zstd", "stored"])
def test_early_stop_inflates_needed_prefix_plus_one_chunk(
    built: dict[str, Built], tmp_path: Path, method: str
) -> None:
    _, _, scan = native_modules()
    inflate = native_inflate()
    b = built["x86_64"]
    assert len(b.data) > b.needed_prefix + BIG_DATA // 2  # the fixture has a tail to skip
    w = make_wheel(
        tmp_path,
        "big-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"big/libbig.so": b.path},
        method=method,
    )
    for inflater in inflate.INFLATERS if method == "deflate" else (None,):
        facts = scan(w, inflater=inflater)
        assert facts.error is None, facts
        assert not facts.errors, facts
        [stats] = facts.members
        assert stats.size == len(b.data)
        assert stats.inflated <= b.needed_prefix + CHUNK, (inflater, stats)
        # prefixes grow geometrically from 4 KiB: a small library is not inflated a chunk deep
        assert stats.inflated <= 2 * b.needed_prefix + 4096, (inflater, stats)
        assert stats.inflated >= b.needed_prefix - CHUNK
        assert 0 < stats.read <= stats.compressed_size
        if method == "deflate":
            # the compressed input read stops well before the end of the member
            assert stats.read < stats.compressed_size
        [ef] = facts.elfs
        assert ef.soname == "libbig.so.1"
        assert ef.rpath == ["$ORIGIN/lib"]


def test_inflaters_agree_and_env_selects(built: dict[str, Built], tmp_path: Path) -> None:
    _, _, scan = native_modules()
    inflate = native_inflate()
    assert "zlib" in inflate.INFLATERS
    assert inflate.inflater in inflate.INFLATERS
    w = make_wheel(
        tmp_path,
        "big-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"big/libbig.so": built["x86_64"].path},
    )
    results = [scan(w, inflater=i).elfs for i in inflate.INFLATERS]
    assert all(r == results[0] for r in results)
    for name in inflate.INFLATERS:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from wheelscan._native import inflate; print(inflate.inflater)",
            ],
            env={**os.environ, "WHEELSCAN_INFLATER": name},
            capture_output=True,
            text=True,
            check=True,
        )
        assert out.stdout.strip() == name
    bad = subprocess.run(
        [sys.executable, "-c", "import wheelscan._native.zipread"],
        env={**os.environ, "WHEELSCAN_INFLATER": "nope"},
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode != 0
    assert "WHEELSCAN_INFLATER='nope'" in bad.stderr


def test_file_object_source_matches_path(built: dict[str, Built], tmp_path: Path) -> None:
    _, _, scan = native_modules()
    w = make_wheel(
        tmp_path,
        "big-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"big/libbig.so": built["x86_64"].path, "big/x.py": b"x = 1\n"},
    )
    from_path = scan(w)
    with w.open("rb") as fh:
        from_file = scan(fh)
    from_bytes = scan(io.BytesIO(w.read_bytes()), filename=w.name)
    from_pread = scan(w, limits=Limits(read_whole_max=0))  # as a wheel over 1 MiB is read
    # compressed bytes consumed may differ by zlib's bit-buffer look-ahead, which depends on
    # how much input was available (the whole file vs 4 KiB doubling reads)
    every = (from_path, from_file, from_bytes, from_pread)
    reads = [f.members[0].read for f in every]
    assert max(reads) - min(reads) <= 16, reads
    for f in every:
        f.members[0].read = 0
    assert from_path.to_dict() == from_file.to_dict() == from_bytes.to_dict()
    assert from_pread.to_dict() == from_path.to_dict()
    # the central directory's CRC-32 is the member's identity in reports
    assert from_path.members[0].crc32 == zlib.crc32(built["x86_64"].path.read_bytes())


def test_member_cache_hit_skips_inflate(built: dict[str, Built], tmp_path: Path) -> None:
    _, _, scan = native_modules()

    class Cache:
        def __init__(self) -> None:
            self.d: dict[Any, Any] = {}
            self.gets = 0

        def get(self, key: Any) -> Any:
            self.gets += 1
            return self.d.get(key)

        def put(self, key: Any, facts: Any) -> None:
            self.d[key] = facts

    cache = Cache()
    so = built["x86_64"].path
    w1 = make_wheel(
        tmp_path / "a", "a-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", {"a/liba.so": so}
    )
    w2 = make_wheel(
        tmp_path / "b", "b-1.0-cp311-cp311-manylinux_2_28_x86_64.whl", {"b/other.so": so}
    )
    first = scan(w1, member_cache=cache)
    assert len(cache.d) == 1
    [key] = cache.d
    comp_len = first.members[0].compressed_size
    assert key[:3] == (8, comp_len, len(built["x86_64"].data))
    assert len(key[3]) == 32
    second = scan(w2, member_cache=cache)
    [st] = second.members
    assert (st.inflated, st.read) == (0, comp_len)
    [e1], [e2] = first.elfs, second.elfs
    assert e2.member == "b/other.so"
    assert e1.member == "a/liba.so"
    assert {**e2.__dict__, "member": ""} == {**e1.__dict__, "member": ""}
    # a wheel read with pread (over Limits.read_whole_max) hashes the same compressed bytes
    third = scan(w2, member_cache=cache, limits=Limits(read_whole_max=0))
    assert (third.members[0].inflated, third.elfs[0].member) == (0, "b/other.so")
    with w2.open("rb") as fh:  # file objects never consult the cache
        gets = cache.gets
        assert scan(fh, member_cache=cache).members[0].inflated > 0
        assert cache.gets == gets


@pytest.mark.parametrize("inflater", ["zlib", "zlib-ng", "isal", "libisal", "libz-ng", "auto"])
def test_every_inflater_bounds_and_rejects_bad_streams(tmp_path: Path, inflater: str) -> None:
    """A size that lies (zip bomb), a truncated stream and a corrupt one give the same clear
    errors whichever deflate implementation reads the member (ISA-L's C API included)."""
    _, zipread, _ = native_modules()
    inflate = native_inflate()
    if inflater not in inflate.INFLATERS:  # skips on a dev box, fails under CI=true
        hint = {"libisal": f" ({inflate.LIBISAL_ERROR})", "libz-ng": f" ({inflate.LIBZNG_ERROR})",
                "auto": f" ({inflate.LIBISAL_ERROR or inflate.LIBZNG_ERROR})"}.get(inflater, "")
        require(f"inflater {inflater} not in this build{hint}")
    from wheelscan.errors import InflateError, LimitExceeded

    def member(path: Path, data: bytes, declared: int) -> Any:
        a = zipread.Archive(zip_with_stream(path, data, declared), inflater=inflater)
        a.read_directory()
        return a

    def stream(data: bytes) -> bytes:
        c = zlib.compressobj(6, zlib.DEFLATED, -15)
        return c.compress(data) + c.flush()

    # a real ELF whose PT_DYNAMIC comes after 200 KB of incompressible bytes
    elfish = bytes(craft_elf(gap=os.urandom(200_000)).data)
    # 8 MiB of zeros declared as 20,000 bytes: the byte past the declared size is refused
    a = member(tmp_path / "bomb.zip", stream(bytes(8 << 20)), 20_000)
    with pytest.raises(LimitExceeded, match="beyond its declared size of 20000"):
        a.read_member(0, 1 << 20)
    a.close()
    # half a stream
    full = stream(elfish)
    a = member(tmp_path / "trunc.zip", full[: len(full) // 2], len(elfish))
    with pytest.raises(InflateError, match="truncated"):
        a.read_member(0, 1 << 20)
    a.close()
    # a block header that cannot be (block type 3 is reserved) after the first block
    bad = bytearray(full)
    bad[0] |= 0b110  # BTYPE=11 in the first block header
    a = member(tmp_path / "corrupt.zip", bytes(bad), len(elfish))
    with pytest.raises(InflateError, match="corrupt deflate stream"):
        a.read_member(0, 1 << 20)
    a.close()
    # scan_elf reads the member with the archive's inflater up to PT_DYNAMIC, past the cut
    a = member(tmp_path / "trunc2.zip", full[: len(full) // 2], len(elfish))
    with pytest.raises(InflateError, match="truncated"):
        a.scan_elf(0, "t.bin")
    # an error from ISA-L's bytes is zlib's to confirm (ISA-L accepts some streams zlib refuses)
    assert a.last_inflater == ("zlib" if inflater in ("isal", "libisal", "auto") else inflater)
    a.close()


@pytest.mark.parametrize("content", [b"\x7fELF", b"\x7fELF\x02\x01\x01", b"no elf"])
def test_a_stream_zlib_refuses_is_refused_by_every_inflater(tmp_path: Path, content: bytes) -> None:
    """One block with an incomplete literal/length code: zlib refuses it, ISA-L decodes it.
    Every inflater reports zlib's error, rather than a member that is silently not ELF, or an
    ELF header that ends early (ISA-L's bytes are checked against zlib's when they end a scan:
    a peek that is not ELF, or an error)."""
    _, zipread, scan = native_modules()
    inflate = native_inflate()
    from wheelscan.errors import InflateError

    assert zlib.decompressobj(-15).decompress(deflate_3bit_block(content, complete=True)) == content
    bad = deflate_3bit_block(content, complete=False)
    with pytest.raises(zlib.error, match="invalid literal/lengths set"):
        zlib.decompressobj(-15).decompress(bad)
    # declared 64 bytes: under auto the member goes to ISA-L (it inflates < 4.5x)
    w = zip_with_stream(tmp_path / "w.zip", bad, 64)
    for inflater in inflate.INFLATERS:
        facts = scan(w, inflater=inflater)
        assert facts.elfs == [], inflater
        assert [e.message for e in facts.errors] == [
            "corrupt deflate stream after 0 bytes: invalid literal/lengths set"], inflater
        a = zipread.Archive(w, inflater=inflater)
        a.read_directory()
        with pytest.raises(InflateError, match="invalid literal/lengths set"):
            a.scan_elf(0, "t.bin")
        # ISA-L's C API gave way to zlib; the Python inflaters read a 64-byte member with zlib
        assert a.last_inflater == ("libz-ng" if inflater == "libz-ng" else "zlib")
        a.close()
    # read whole (as the WHEEL file is), with the size ISA-L's bytes have: zlib and zlib-ng
    # refuse the stream, and ISA-L's bytes do not have the central directory's CRC-32 (0 here)
    w = zip_with_stream(tmp_path / "whole.zip", bad, len(content))
    for inflater in inflate.INFLATERS:
        a = zipread.Archive(w, inflater=inflater)
        a.read_directory()
        with pytest.raises(InflateError, match=r"invalid literal/lengths set|CRC-32 of the"):
            a.read_member(0, 1 << 20)
        a.close()


def test_a_member_read_whole_must_match_its_crc(tmp_path: Path) -> None:
    """The WHEEL file is read whole: a CRC-32 that does not match its bytes (a corrupt stream
    an inflater accepted, or bytes changed in a stored member) is an error for that member,
    as zipfile makes it, and the wheel's tags are not taken from it."""
    _, _, scan = native_modules()
    inflate = native_inflate()
    wheel = b"Wheel-Version: 1.0\nTag: cp311-cp311-manylinux_2_17_x86_64\n"
    for method in ("deflate", "stored"):
        w = write_zip(tmp_path / f"c-1.0-cp311-cp311-manylinux_2_17_x86_64.{method}.whl",
                      [ZipMember("c-1.0.dist-info/WHEEL", wheel, method)])  # fmt: skip
        good = scan(w, filename="c-1.0-cp311-cp311-manylinux_2_17_x86_64.whl")
        assert good.wheel_tags == ["cp311-cp311-manylinux_2_17_x86_64"]
        assert good.errors == []
        raw = bytearray(w.read_bytes())
        cd = raw.rindex(b"PK\x01\x02")
        raw[cd + 16] ^= 0x01  # the central directory entry's CRC-32
        w.write_bytes(bytes(raw))
        for inflater in (None, *inflate.INFLATERS):
            bad = scan(w, filename="c-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
                       inflater=inflater)  # fmt: skip
            assert bad.wheel_tags == [], (method, inflater)
            [err] = bad.errors
            assert err.member == "c-1.0.dist-info/WHEEL"
            want = zlib.crc32(wheel) ^ 0x01
            assert err.message == (f"CRC-32 of the member's bytes is {zlib.crc32(wheel):08x}, "
                                   f"its central directory entry says {want:08x}")  # fmt: skip


def test_corruption_past_the_bytes_needed_is_not_an_error(tmp_path: Path) -> None:
    """ISA-L decodes up to 64 KiB ahead of the output asked for. A corrupt stretch there is
    not in the bytes the scan needs, so every inflater gives zlib's answer (which never reads
    that far); it becomes an error only when those bytes are asked for."""
    elf, zipread, _ = native_modules()
    inflate = native_inflate()
    from wheelscan.errors import InflateError

    def archive(name: str, stream: bytes, declared: int, inflater: str) -> Any:
        a = zipread.Archive(zip_with_stream(tmp_path / name, stream, declared),
                            inflater=inflater)  # fmt: skip
        a.read_directory()
        return a

    # a literal, then a distance reaching before the start of the stream, declared 1 byte
    short = bytes.fromhex("cb0121")
    want = archive("w.zip", short, 1, "zlib").read_member(0, 1 << 20)
    # an ELF whose tables need 4 KiB, a flush, then a block of the reserved type and noise
    data = bytes(craft_elf(tail=40_000).data)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    bad_tail = c.compress(data) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + os.urandom(2000)
    expect = elf.parse(data, len(data) + 100_000, "lib.so")
    for inflater in inflate.INFLATERS:
        assert archive("w.zip", short, 1, inflater).read_member(0, 1 << 20) == want, inflater
        a = archive("e.zip", bad_tail, len(data) + 100_000, inflater)
        assert a.scan_elf(0, "lib.so") == expect, inflater
        with pytest.raises(InflateError, match="corrupt deflate stream"):
            a.read_member(0, 1 << 20)  # the whole member: now the bad block is needed
        a.close()


def test_chunks_beyond_32_bits_count_only_what_was_written(tmp_path: Path) -> None:
    """zlib's and ISA-L's output counters are 32-bit: a chunk_size of 4 GiB or more must not
    make the reader count bytes it never wrote (and then parse stale buffer contents)."""
    _, zipread, _ = native_modules()
    inflate = native_inflate()
    from wheelscan.errors import InflateError

    declared = (1 << 32) + (1 << 16)
    phoff = (1 << 32) + 64  # program headers past 4 GiB: the parser asks for that much
    hdr = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8)
    hdr += struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, phoff, 0, 0, 64, 56, 1, 64, 0, 0)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = c.compress(hdr + b"\xab" * 100_000) + c.flush()
    real = len(hdr) + 100_000
    name = b"lib.so"
    z64 = struct.pack("<HHQQ", 1, 16, declared, len(stream))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 8, 0, 0, 0, 0xFFFFFFFF, 0xFFFFFFFF,
                        len(name), len(z64)) + name + z64 + stream  # fmt: skip
    cd = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 8, 0, 0, 0, 0xFFFFFFFF,
                     0xFFFFFFFF, len(name), len(z64), 0, 0, 0, 0, 0) + name + z64  # fmt: skip
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(local), 0)
    path = tmp_path / "big.zip"
    path.write_bytes(local + cd + eocd)
    for inflater in inflate.INFLATERS:
        a = zipread.Archive(path, inflater=inflater, chunk_size=(1 << 32) + (1 << 20),
                            max_wheel_inflate=1 << 40)  # fmt: skip
        a.read_directory()
        with pytest.raises(InflateError, match=f"member data ends after {real} bytes"):
            a.scan_elf(0, "lib.so")
        assert a.last_inflated == real, inflater
        a.close()


@pytest.mark.parametrize("extra", [1, 1000])
def test_a_size_that_lies_before_a_corrupt_stretch_is_still_caught(
    tmp_path: Path, extra: int
) -> None:
    """The byte past the declared size exists, and corruption follows right after: an
    inflater that raises on the corruption before handing out that byte (python zlib-ng
    does) must not hide it from the zip-bomb check."""
    _, zipread, _ = native_modules()
    inflate = native_inflate()
    from wheelscan.errors import LimitExceeded

    data = os.urandom(30_000)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = c.compress(data + bytes(extra)) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(64)
    path = zip_with_stream(tmp_path / "lie.zip", stream, len(data))
    for inflater in inflate.INFLATERS:
        a = zipread.Archive(path, inflater=inflater)
        a.read_directory()
        with pytest.raises(LimitExceeded, match=f"beyond its declared size of {len(data)}"):
            a.read_member(0, 1 << 20)
        a.close()



@pytest.mark.parametrize("inflater", ["zlib", "libisal", "isal", "libz-ng", "zlib-ng"])
def test_a_failed_read_counts_only_the_bytes_that_arrived(inflater: str) -> None:
    """A member whose compressed bytes stop arriving (a short read) is an error, and the bytes
    it reports as read are at most those the file object delivered of it."""
    inflate = native_inflate()
    if inflater not in inflate.INFLATERS:
        pytest.skip(f"{inflater} is not offered here")
    _, zipread, _ = native_modules()
    blob = b"".join(b"%08d:%x\n" % (i, i * 7919) for i in range(60_000))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("m.bin", blob)
    raw = buf.getvalue()
    data_off = 30 + len("m.bin")
    cut = data_off + 6000  # the file object gives 6000 bytes of member data, then short reads

    class Cut(io.BytesIO):
        delivered = 0

        def read(self, n: int | None = -1) -> bytes:
            pos = self.tell()
            if pos >= data_off and pos < len(raw) - 4096:  # the tail (directory) reads fine
                n = min(n if n is not None and n >= 0 else len(raw), max(0, cut - pos))
                got = super().read(n)
                Cut.delivered += len(got)
                return got
            return super().read(n)

    arc = zipread.Archive(Cut(raw), inflater=inflater)
    arc.read_directory()
    with pytest.raises(ZipFormatError, match="short read"):
        arc.read_member(0, len(blob))
    assert 0 < Cut.delivered <= 6000
    assert arc.last_read <= Cut.delivered
