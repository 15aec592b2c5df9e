"""The ZIP reader (ext/zipread.pyx): the central directory against zipfile, anomalies, budgets,
wheels that change while they are read, file-object sources.

Expected values come from the fixture's own construction (ELF bytes packed with struct, symbols
and versions chosen for gcc-built stubs), from pyelftools reading the whole file, or from the
stdlib zipfile, never from the code under test.
"""

from __future__ import annotations

import io
import json
import os
import struct
import subprocess
import sys
import time
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from helpers.builders import (
    Import,
    ZipMember,
    build_elf,
    build_stub,
    compress,
    make_wheel,
    write_zip,
)

from wheelscan.limits import Limits

if TYPE_CHECKING:
    pass

from helpers.native import (
    CHUNK,
    Built,
    Counting,
    craft_elf,
    native_inflate,
    native_modules,
    zip_with_stream,
)

pytestmark = pytest.mark.usefixtures("native_ready")

_SHRINK_DURING_SCAN = r"""
import json, os, sys
import wheelscan

path, action, arg = sys.argv[1], sys.argv[2], int(sys.argv[3])

def close_the_wheel():
    # an I/O error in the middle of a scan: the descriptor the reader holds goes bad
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == os.path.realpath(path):
                os.close(int(fd))
        except OSError:
            pass

class ShrinkOnSecondLookup:
    # the scan asks the cache once per candidate member, just before reading it
    lookups = 0

    def get(self, key):
        self.lookups += 1
        if self.lookups == 2:
            if action == "truncate":
                os.truncate(path, arg)
            elif action == "close":
                close_the_wheel()
            else:  # "overwrite[-keep-mtime]": same size, other bytes from offset arg on
                st = os.stat(path)
                with open(path, "r+b") as f:
                    f.seek(arg)
                    f.write(os.urandom(4096))
                if action == "overwrite-keep-mtime":  # as cp -p or rsync -t leave it
                    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        return None

    def put(self, key, facts):
        pass

print(json.dumps(wheelscan.scan_wheel(path, member_cache=ShrinkOnSecondLookup()).to_dict()))
"""


def _wheel_over_1_mib(tmp_path: Path, stem: str, method: str = "deflate") -> Path:
    """``{stem}/a.so``, 1.2 MB of stored random filler, ``{stem}/b.so`` (``method``): a wheel
    over Limits.read_whole_max, so read with pread, with b.so's bytes past the first MiB."""
    import zipfile

    elf = bytes(craft_elf(tail=4096).data)
    w = make_wheel(
        tmp_path,
        f"{stem}-1.0-cp311-cp311-manylinux_2_17_x86_64.whl",
        {f"{stem}/a.so": elf, f"{stem}/filler.txt": os.urandom(1_200_000), f"{stem}/b.so": elf},
        methods={f"{stem}/filler.txt": "stored", f"{stem}/b.so": method},
    )
    assert w.stat().st_size > 1 << 20
    with zipfile.ZipFile(w) as zf:
        names = [i.filename for i in zf.infolist()]
    assert names[:3] == [f"{stem}/a.so", f"{stem}/filler.txt", f"{stem}/b.so"]
    return w


def _scan_while(w: Path, action: str, arg: int) -> dict[str, Any]:
    """Facts (as a dict) of scanning ``w`` in a child that does ``action`` to the file just
    before the second member is read. A child: a reader that mmapped the file could die."""
    r = subprocess.run([sys.executable, "-c", _SHRINK_DURING_SCAN, str(w), action, str(arg)],
                       capture_output=True, text=True, timeout=120)  # fmt: skip
    assert r.returncode == 0, f"child died ({r.returncode}): {r.stderr[-2000:]}"
    facts: dict[str, Any] = json.loads(r.stdout)
    return facts


def _modified_note(before: int, after: object) -> str:
    return (
        f"the file was modified while it was read ({before} bytes when opened, {after} at the "
        "end): its facts may mix old and new bytes"
    )


@pytest.mark.parametrize("method", ["deflate", "zstd", "stored"])
@pytest.mark.parametrize("where", ["header", "data"])
def test_a_wheel_truncated_during_the_scan_is_a_member_error(
    tmp_path: Path, method: str, where: str
) -> None:
    """A wheel over 1 MiB truncated while it is scanned: the member read after the cut is an
    error naming it and the short read, whatever its method; what was scanned before stays."""
    import zipfile

    w = _wheel_over_1_mib(tmp_path, "cut", method)
    with zipfile.ZipFile(w) as zf:
        header = zf.getinfo("cut/b.so").header_offset
    if where == "header":
        # the start of the page holding b.so's local header: a mapping of the file would
        # fault on that page (SIGBUS), not read zeros
        cut, what = header // 4096 * 4096, "local header"
    else:
        cut, what = header + 30 + len("cut/b.so") + 8, "member data"
    assert cut > 1 << 20
    size = w.stat().st_size
    facts = _scan_while(w, "truncate", cut)
    assert w.stat().st_size == cut
    assert facts["error"] is None
    assert [e["member"] for e in facts["elfs"]] == ["cut/a.so"]
    [err] = facts["errors"]
    assert err["member"] == "cut/b.so"
    assert err["message"].startswith(f"short read: {what} ("), err["message"]
    assert f"the file is {cut} bytes now" in err["message"]
    assert "truncated during the scan" in err["message"]
    assert facts["anomalies"] == [_modified_note(size, cut)]


def test_a_read_error_during_the_scan_is_a_member_error(tmp_path: Path) -> None:
    """pread failing (here EBADF: the descriptor closed under the reader) is an error for the
    member being read, not for the wheel: the members scanned before it stay."""
    if not os.path.isdir("/proc/self/fd"):
        pytest.skip("needs /proc/self/fd")
    w = _wheel_over_1_mib(tmp_path, "bad")
    facts = _scan_while(w, "close", 0)
    assert facts["error"] is None
    assert [e["member"] for e in facts["elfs"]] == ["bad/a.so"]
    [err] = facts["errors"]
    assert err["member"] == "bad/b.so"
    assert err["message"].startswith("read error: local header ("), err["message"]
    assert err["message"].endswith(os.strerror(9)), err["message"]  # EBADF
    assert facts["anomalies"] == [
        f"could not check whether the file was modified while it was read: {os.strerror(9)}"
    ]


def test_a_wheel_overwritten_during_the_scan_is_an_anomaly(tmp_path: Path) -> None:
    """Rewritten in place at the same size while it is read in chunks: every read succeeds,
    so nothing fails, but the facts may mix old and new bytes and the scan says so."""
    import zipfile

    w = _wheel_over_1_mib(tmp_path, "ow")
    size = w.stat().st_size
    # 10 s in the past, so that the overwrite changes the mtime on any timestamp granularity
    t = w.stat().st_mtime_ns - 10**10
    os.utime(w, ns=(t, t))
    with zipfile.ZipFile(w) as zf:
        at = zf.getinfo("ow/filler.txt").header_offset + 100_000  # inside the filler
    facts = _scan_while(w, "overwrite", at)
    assert w.stat().st_size == size
    assert (facts["error"], facts["errors"]) == (None, [])
    assert [e["member"] for e in facts["elfs"]] == ["ow/a.so", "ow/b.so"]
    assert facts["anomalies"] == [_modified_note(size, size)]


def test_a_wheel_overwritten_with_its_mtime_restored_is_an_anomaly(tmp_path: Path) -> None:
    """The same rewrite, with the mtime then put back as cp -p does: size and mtime agree,
    the inode's change time does not."""
    import zipfile

    w = _wheel_over_1_mib(tmp_path, "ok")
    before = w.stat()
    with zipfile.ZipFile(w) as zf:
        at = zf.getinfo("ok/filler.txt").header_offset + 100_000
    time.sleep(0.05)  # past the file system's timestamp granularity, so ctime moves
    facts = _scan_while(w, "overwrite-keep-mtime", at)
    after = w.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)
    if after.st_ctime_ns == before.st_ctime_ns:
        pytest.skip("this file system's change times are too coarse to move within 50 ms")
    assert (facts["error"], facts["errors"]) == (None, [])
    [note] = facts["anomalies"]
    assert note.startswith("the file's status changed while it was read (its inode change "), note
    # a wheel left alone notes nothing
    _, _, scan = native_modules()
    assert scan(w, limits=Limits(read_whole_max=0)).anomalies == []


class _FailingReads(io.BytesIO):
    """A file object whose reads fail from offset ``fail_at`` on (an I/O or remote error)."""

    fail_at: int | None = None

    def read(self, n: int | None = -1) -> bytes:
        if self.fail_at is not None and self.tell() + (n if n and n > 0 else 1) > self.fail_at:
            raise OSError(5, "simulated read failure")
        return super().read(n)


@pytest.mark.parametrize("source", ["pread", "fileobj"])
@pytest.mark.parametrize("where", ["middle", "checksum"])
def test_read_errors_in_a_zstd_member_are_not_called_corruption(
    tmp_path: Path, source: str, where: str
) -> None:
    """Reading a Zstandard member's compressed bytes fails: the error is the read's, whether it
    happens mid-stream or only in the check for output past the declared size. That check reads
    the frame's last bytes when everything before them was read in the reader's doubling steps
    (4 KiB ... 64 KiB: 131,072 bytes), so the frame here is 131,072 bytes plus its checksum."""
    import zipfile

    from wheelscan.errors import ZipFormatError

    _, zipread, _ = native_modules()
    n = 131_000
    for _ in range(4):  # random bytes go into raw blocks: the frame is n + a fixed overhead
        blob = os.urandom(n)
        size = len(compress(blob, "zstd-checksum"))
        if size == 131_076:
            break
        n += 131_076 - size
    assert len(compress(blob, "zstd-checksum")) == 131_076
    filler = os.urandom(1_100_000)
    w = write_zip(tmp_path / "z.zip", [ZipMember("filler.txt", filler, "stored"),
                                       ZipMember("z/blob.bin", blob, "zstd-checksum")])  # fmt: skip
    with zipfile.ZipFile(w) as zf:
        info = zf.getinfo("z/blob.bin")
    data_off = info.header_offset + 30 + len("z/blob.bin")
    cut = data_off + (131_072 if where == "checksum" else 4096)
    fobj = _FailingReads(w.read_bytes())
    a = zipread.Archive(w if source == "pread" else fobj, read_whole_max=0)
    try:
        a.read_directory()
        index = a.names.index("z/blob.bin")
        if source == "pread":
            os.truncate(w, cut)
            with pytest.raises(ZipFormatError, match=r"^short read: member data \("):
                a.read_member(index, 1 << 20)
        else:
            fobj.fail_at = cut
            with pytest.raises(OSError, match="simulated read failure"):
                a.read_member(index, 1 << 20)
    finally:
        a.close()


def test_digest_through_pread_hashes_every_chunk(tmp_path: Path) -> None:
    """The member-cache key of a member bigger than one pread chunk (1 MiB) is the hash of all
    its compressed bytes, as when the wheel is read whole."""
    import hashlib
    import zipfile

    _, zipread, _ = native_modules()
    blob = os.urandom(2_600_000)  # incompressible: ~2.5 MiB of compressed bytes, 3 chunks
    w = make_wheel(tmp_path, "big-1.0-py3-none-any.whl", {"big/blob.bin": blob})
    with zipfile.ZipFile(w) as zf:
        info = zf.getinfo("big/blob.bin")
    raw = w.read_bytes()
    nlen, elen = struct.unpack_from("<HH", raw, info.header_offset + 26)
    start = info.header_offset + 30 + nlen + elen
    expect = hashlib.blake2b(raw[start : start + info.compress_size], digest_size=16).hexdigest()
    assert info.compress_size > 2 << 20
    for whole_max in (0, 1 << 30):
        a = zipread.Archive(w, read_whole_max=whole_max)
        try:
            a.read_directory()
            names = a.names
            assert a.digest(names.index("big/blob.bin")) == expect
        finally:
            a.close()


# ---------------------------------------------------------------------------------------------
# ZIP reader


def _entries(path: Path) -> list[tuple[str, int, int, int, int]]:
    _, zipread, _ = native_modules()
    a = zipread.Archive(path)
    try:
        a.read_directory()
        return [(n, m, cs, s, c) for n, m, _f, cs, s, _o, c in a.entries]
    finally:
        a.close()


@pytest.mark.parametrize("zip64", [False, True], ids=["zip32", "zip64"])
def test_central_directory_matches_zipfile(tmp_path: Path, zip64: bool) -> None:
    import zipfile

    _, zipread, _ = native_modules()
    members = [ZipMember("a/x.so", os.urandom(5000), "deflate"), ZipMember("b.txt", b"hi" * 99,
               "stored"), ZipMember("c/d.bin", b"z" * 70000, "deflate")]  # fmt: skip
    p = write_zip(tmp_path / "t.zip", members, zip64=zip64, comment=b"a comment")
    with zipfile.ZipFile(p) as zf:
        expect = [
            (i.filename, i.compress_type, i.compress_size, i.file_size, i.CRC)
            for i in zf.infolist()
        ]
    assert [e[4] for e in expect] == [zlib.crc32(m.data) for m in members]
    assert _entries(p) == expect
    a = zipread.Archive(p)
    a.read_directory()
    assert [a.read_member(i, 1 << 20) for i in range(3)] == [m.data for m in members]
    assert a.anomalies == []
    a.close()


@pytest.mark.parametrize("zip64", [False, True], ids=["zip32", "zip64"])
def test_zstd_and_a_comment_holding_an_eocd_signature(tmp_path: Path, zip64: bool) -> None:
    _, zipread, _ = native_modules()
    data = os.urandom(3000) * 40
    # a comment holding an end record signature: zipfile takes that last signature (and finds
    # no members); the native reader reads the same, and flags the record a reader trusting
    # comment lengths would take instead
    comment = b"PK\x05\x06" + b"\0" * 30 + b"tail"
    p = write_zip(
        tmp_path / "z.zip", [ZipMember("c/d.bin", data, "zstd")], zip64=zip64, comment=comment
    )
    import zipfile

    try:
        with zipfile.ZipFile(p) as zf:
            oracle: list[str] | None = zf.namelist()
    except zipfile.BadZipFile:
        oracle = None
    a = zipread.Archive(p)
    try:
        n = a.read_directory()
    except Exception:
        assert oracle is None
    else:
        assert [e[0] for e in a.entries] == oracle
        assert n == len(oracle or [])
        assert any(x.startswith("confusion: two end of central directory records")
                   for x in a.anomalies)
    a.close()


def test_anomalies_are_recorded_not_fatal(tmp_path: Path) -> None:
    _, _, scan = native_modules()
    w = make_wheel(tmp_path, "p-1.0-py3-none-any.whl", {"p/x.py": b"1"})
    raw = w.read_bytes()
    # prepended bytes (offsets shifted, as zipfile accepts) and trailing bytes
    odd = tmp_path / "odd" / w.name
    odd.parent.mkdir()
    odd.write_bytes(b"#!junk\n" + raw + b"TRAILER")
    f = scan(odd)
    assert f.error is None
    assert f.has_wheel_file
    assert f.wheel_tags == ["py3-none-any"]
    text = " | ".join(f.anomalies)
    assert "7 bytes prepended" in text
    assert "7 bytes after the end of central directory" in text
    dup = write_zip(tmp_path / "dup.whl", [ZipMember("a.so", b"x" * 10), ZipMember("a.so",
                                           b"y" * 10)])  # fmt: skip
    assert "duplicate member names" in scan(dup).anomalies


@pytest.mark.parametrize(
    ("names", "dup"),
    [
        ([(b"a/x.so", 0), (b"a/y.so", 0)], False),
        ([(b"a/x.so", 0), (b"b/c.txt", 0), (b"a/x.so", 0x800)], True),  # ASCII: flags differ
        ([(b"x", 0), (b"X", 0)], False),
        ([(b"a\xff", 0x800), (b"a\xfe", 0x800)], True),  # both decode to "a\ufffd"
        ([(b"\xc3\x87", 0x800), (b"\x80", 0)], True),  # "\u00c7" in UTF-8 and in CP437
        ([(b"\xc3\x87", 0), (b"\x80", 0)], False),  # CP437 both: two characters vs one
        ([(b"\xc3\x87", 0x800), (b"\xc3\x87", 0x800)], True),
    ],
)
def test_duplicate_names_are_compared_as_decoded(
    tmp_path: Path, names: list[tuple[bytes, int]], dup: bool
) -> None:
    """The walk finds duplicates on bytes for ASCII names and on decoded names otherwise;
    the reference is the list of decoded names the archive gives."""
    _, zipread, _ = native_modules()
    p = write_zip(tmp_path / "d.zip", [ZipMember(n, b"data", "stored", f) for n, f in names])
    a = zipread.Archive(p)
    assert a.read_directory() == len(names)
    decoded = a.names
    assert (len(set(decoded)) != len(decoded)) == dup
    assert ("duplicate member names" in a.anomalies) == dup
    a.close()


@pytest.mark.parametrize("seed", range(4))
def test_duplicate_names_in_big_directories(tmp_path: Path, seed: int) -> None:
    """Thousands of names (the C hash table probes and wraps), ASCII and not, under both
    flags, with and without one duplicate: the anomaly agrees with the decoded names."""
    import random

    _, zipread, _ = native_modules()
    rnd = random.Random(seed)
    alphabet = [b"a", b"b", b"/", b".", b"\x80", b"\xc3\x87", b"\xff"]
    names: dict[bytes, int] = {}
    while len(names) < 2000:
        raw = b"".join(rnd.choice(alphabet[:4] if rnd.random() < 0.8 else alphabet)
                       for _ in range(rnd.randint(1, 12)))  # fmt: skip
        names.setdefault(raw, rnd.choice([0, 0x800]))
    members = [ZipMember(n, b"", "stored", f) for n, f in names.items()]
    if seed % 2:
        members.append(members[rnd.randrange(len(members))])
    a = zipread.Archive(write_zip(tmp_path / "big.zip", members))
    assert a.read_directory() == len(members)
    decoded = a.names
    expect = len(set(decoded)) != len(decoded)
    if seed % 2:
        assert expect  # (without the copy, two distinct byte strings may still decode alike)
    assert ("duplicate member names" in a.anomalies) == expect
    a.close()


def test_directory_entries_are_built_on_demand(tmp_path: Path) -> None:
    _, zipread, _ = native_modules()
    members = [ZipMember("a/b.py", b"x = 1"), ZipMember("a/lib.so", b"\x7fELF" + b"\0" * 60),
               ZipMember("a-1.dist-info/WHEEL", b"Tag: py3-none-any\n", "stored")]  # fmt: skip
    p = write_zip(tmp_path / "e.zip", members)
    with zipfile.ZipFile(p) as zf:
        infos = zf.infolist()
    for source in ("path", "pread", "fileobj"):
        arg = io.BytesIO(p.read_bytes()) if source == "fileobj" else p
        a = zipread.Archive(arg, read_whole_max=0 if source == "pread" else 1 << 20)
        assert a.read_directory() == 3
        assert a.read_directory() == 3  # a second walk adds nothing
        assert a.count == 3
        assert a.candidates == [1]
        assert a.wheel_index == 2
        expect = [(i.filename, i.compress_type, i.flag_bits, i.compress_size, i.file_size,
                   i.header_offset, i.CRC) for i in infos]  # fmt: skip
        a.read_member(2, 1 << 20)  # later reads replace the reader's scratch bytes
        assert [a.entry(i) for i in range(3)] == expect
        assert a.entry(-1) == expect[-1]
        assert a.name(1) == "a/lib.so"
        for bad in (3, -4):
            with pytest.raises(IndexError):
                a.entry(bad)
        a.close()
        assert a.entries == expect  # names stay readable after close()
        assert a.names == [e[0] for e in expect]


def test_directory_before_and_after_a_failed_walk(tmp_path: Path) -> None:
    _, zipread, _ = native_modules()
    from wheelscan.errors import LimitExceeded

    p = write_zip(tmp_path / "f.zip", [ZipMember("a.so", b"\x7fELF" * 4), ZipMember("b.so", b"x")])
    raw = bytearray(p.read_bytes())
    eocd = raw.rindex(b"PK\x05\x06")
    struct.pack_into("<HH", raw, eocd + 8, 1, 1)  # the end record claims one member
    p.write_bytes(bytes(raw) + b"JUNK")  # and an anomaly the walk finds before it fails
    a = zipread.Archive(p, max_members=1)
    assert (a.entries, a.names, a.count) == ([], [], 0)  # nothing walked yet
    for _ in range(2):  # a failed walk leaves only its anomalies behind, and fails again
        with pytest.raises(LimitExceeded, match="more than 1 members"):
            a.read_directory()
        assert (a.count, a.candidates, a.entries, a.wheel_index) == (0, [], [], -1)
        assert a.anomalies == ["4 bytes after the end of central directory record"]
        with pytest.raises(IndexError):
            a.entry(0)
    a.close()
    b = zipread.Archive(p)
    assert b.entries == []  # asked for before the walk: must not stick
    assert b.read_directory() == 2
    assert b.names == ["a.so", "b.so"]
    b.close()


@pytest.mark.parametrize("whole_max", [0, 1 << 20])
def test_a_directory_is_not_a_wheel(tmp_path: Path, whole_max: int) -> None:
    """Sizing by lseek must not mistake a directory (ext4 seeks it to LLONG_MAX) for a wheel
    to read in chunks, nor may a directory bigger than read_whole_max be kept open as one."""
    _, zipread, scan = native_modules()
    d = tmp_path / "fake-1.0-py3-none-any.whl"
    d.mkdir()
    with pytest.raises(IsADirectoryError):
        zipread.Archive(d, read_whole_max=whole_max)
    assert scan(d, limits=Limits(read_whole_max=whole_max)).error.startswith("IsADirectoryError")


def test_a_fifo_is_refused_without_waiting_for_a_writer(tmp_path: Path) -> None:
    """open(2) of a FIFO blocks until a writer comes: the scan must not hang on one (a child
    process, so that a regression times out instead of hanging the suite)."""
    fifo = tmp_path / "pipe-1.0-py3-none-any.whl"
    os.mkfifo(fifo)
    code = (
        "import sys; from wheelscan.read.native import scan_wheel_native as s; "
        "print(s(sys.argv[1]).error)"
    )
    r = subprocess.run([sys.executable, "-c", code, str(fifo)], capture_output=True, text=True,
                       timeout=60)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"OSError: [Errno 22] not a regular file: '{fifo}'"


def test_an_archive_is_initialised_once(tmp_path: Path) -> None:
    """Members point into the first file's bytes: a second __init__ is refused."""
    _, zipread, _ = native_modules()
    p = write_zip(tmp_path / "a.zip", [ZipMember("a.txt", b"x")])
    a = zipread.Archive(p)
    with pytest.raises(RuntimeError, match="initialised once"):
        a.__init__(p)
    assert a.read_directory() == 1
    a.close()


def test_data_descriptor_flag_uses_central_sizes(built: dict[str, Built], tmp_path: Path) -> None:
    _, _, scan = native_modules()
    so = built["i686"].data if "i686" in built else built["x86_64"].data
    p = write_zip(
        tmp_path / "dd-1.0-py3-none-any.whl", [ZipMember("dd/x.so", so, "deflate", flags=0x8)]
    )
    # zero the local header's sizes and CRC, as a streaming writer does
    raw = bytearray(p.read_bytes())
    struct.pack_into("<III", raw, 14, 0, 0, 0)
    p.write_bytes(bytes(raw))
    f = scan(p)
    assert f.error is None
    assert not f.errors
    assert len(f.elfs) == 1


def test_member_errors_do_not_stop_the_scan(built: dict[str, Built], tmp_path: Path) -> None:
    _, _, scan = native_modules()
    so = built["x86_64"].data
    p = write_zip(tmp_path / "e-1.0-cp311-cp311-linux_x86_64.whl", [
        ZipMember("enc.so", so, "stored", flags=0x1), ZipMember("ok.so", so, "deflate"),
        ZipMember("bz.so", so, "stored")])  # fmt: skip
    raw = bytearray(p.read_bytes())
    # turn the third member's method into 12 (bzip2) in its central directory entry
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<H", raw, cd + 10, 12)
    p.write_bytes(bytes(raw))
    f = scan(p)
    assert f.error is None
    errs = {e.member: e.message for e in f.errors}
    assert "encrypted" in errs["enc.so"]
    assert "unsupported compression method 12" in errs["bz.so"]
    # its local header still says stored: a reader walking the local headers installs the
    # binary zipfile cannot extract, so that copy is judged and the readers' split flagged
    assert [e.member for e in f.elfs] == ["ok.so", "bz.so"]
    assert any(a.startswith("confusion: 'bz.so': its local header says method 0")
               for a in f.anomalies), f.anomalies


def test_zip_bomb_and_wheel_budget(tmp_path: Path) -> None:
    _, zipread, scan = native_modules()
    from wheelscan.errors import InflateError, LimitExceeded

    big = b"\0" * (8 << 20)
    p = write_zip(tmp_path / "bomb.zip", [ZipMember("m.bin", big, "deflate")])
    raw = bytearray(p.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    struct.pack_into("<I", raw, cd + 24, 1000)  # central directory: size 1000
    p.write_bytes(bytes(raw))
    a = zipread.Archive(p)
    a.read_directory()
    with pytest.raises(LimitExceeded, match="beyond its declared size of 1000"):
        a.read_member(0, 1 << 20)
    a.close()
    # the wheel's inflate budget
    elfish = b"\x7fELF" + b"\0" * (2 << 20)
    p2 = write_zip(
        tmp_path / "b2-1.0-cp311-cp311-linux_x86_64.whl",
        [ZipMember("a.so", elfish), ZipMember("b.so", elfish)],
    )
    f = scan(p2, limits=Limits(max_wheel_inflate=100))
    assert f.errors
    assert any("inflate limit" in e.message for e in f.errors)
    # a truncated deflate stream
    comp = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = comp.compress(os.urandom(100_000)) + comp.flush()
    a = zipread.Archive(
        zip_with_stream(tmp_path / "t3.zip", stream[: len(stream) // 2], 100_000)
    )
    a.read_directory()
    with pytest.raises(InflateError, match="truncated"):
        a.read_member(0, 1 << 20)
    a.close()


def test_not_a_zip_sets_wheel_error(tmp_path: Path) -> None:
    _, _, scan = native_modules()
    for i, blob in enumerate([b"", b"PK", b"x" * 5000, b"PK\x05\x06" + b"\0" * 10]):
        p = tmp_path / f"n{i}-1.0-py3-none-any.whl"
        p.write_bytes(blob)
        f = scan(p)
        assert f.error, blob[:8]
        assert "ZipFormatError" in f.error, (blob[:8], f.error)
        assert f.size == len(blob)


def test_zip64_sizes_near_2_64_are_member_errors(tmp_path: Path) -> None:
    _, _, scan = native_modules()
    elfish = b"\x7fELF" + bytes(range(256)) * 40
    p = write_zip(tmp_path / "z-1.0-cp311-cp311-linux_x86_64.whl", [ZipMember("a.so", elfish)],
                  zip64=True)  # fmt: skip
    raw = bytearray(p.read_bytes())
    cd = raw.rfind(b"PK\x01\x02")
    extra = cd + 46 + len(b"a.so")
    assert struct.unpack_from("<HH", raw, extra) == (1, 24)
    struct.pack_into("<Q", raw, extra + 12, 2**64 - 10)  # compressed size: wraps offset + size
    p.write_bytes(bytes(raw))
    f = scan(p)
    assert f.error is None
    # zipfile's copy (the directory's sizes) fails; the local header's, which a streaming
    # reader extracts, is judged too: not an ELF file either, and the split is a confusion
    assert [e.member for e in f.errors] == ["a.so", "a.so"]
    assert "runs past the end of the archive" in f.errors[0].message
    assert any(a.startswith("confusion: 'a.so': its local header says") for a in f.anomalies)


def test_file_object_peek_reads_a_few_kib(tmp_path: Path) -> None:
    _, _, scan = native_modules()

    blob = os.urandom(1 << 20)  # incompressible, not ELF: only its first bytes are peeked
    w = make_wheel(tmp_path, "p-1.0-cp311-cp311-linux_x86_64.whl", {"p/blob.bin": blob})
    fh = Counting(w.read_bytes())
    f = scan(fh, filename=w.name)
    assert f.error is None
    assert not f.elfs
    [st] = f.members
    assert st.inflated == 64
    # the end record, the central directory, a few KiB of the member: not the member, and
    # not the 64 KiB search window an archive comment would need
    assert fh.consumed < 2 * 4096 + 1024


def test_stored_member_with_long_version_chains_through_a_file_object(tmp_path: Path) -> None:
    """120 version needs from 30 libraries, 80 version definitions: the sparse reader must not
    take one round per chain entry (64 rounds at most) and must give the mapped path's facts."""
    _, _, scan = native_modules()
    imports = []
    for k in range(30):
        stub = build_stub(tmp_path / "stubs", f"libv{k}.so.1",
                          {f"V{k}_{i}": [f"v{k}_{i}"] for i in range(4)})  # fmt: skip
        imports += [Import(f"v{k}_{i}", stub) for i in range(4)]
    vmap = tmp_path / "defs.map"
    nodes = [f"D_{i} {{ global: d_{i}; }}{f' D_{i - 1}' if i else ''};" for i in range(80)]
    vmap.write_text("\n".join(nodes) + "\n")
    src = "".join(f"int d_{i}(void) {{ return {i}; }}\n" for i in range(80))
    so = build_elf(tmp_path, "libchains.so", src, imports=imports,
                   flags=[f"-Wl,--version-script={vmap}"])  # fmt: skip
    w = make_wheel(tmp_path, "c-1.0-cp311-cp311-linux_x86_64.whl", {"c/libchains.so": so},
                   method="stored")  # fmt: skip
    from_path = scan(w)
    from_file = scan(Counting(w.read_bytes()), filename=w.name)
    assert from_path.error is None, from_path
    assert not from_path.errors, from_path.errors
    assert from_file.error is None, from_file
    assert not from_file.errors, from_file.errors
    assert from_file.elfs == from_path.elfs
    [ef] = from_file.elfs
    assert sum(len(n.versions) for n in ef.version_needs) >= 120
    assert len(ef.version_defs) >= 80


def test_stored_member_through_a_file_object_reads_only_the_tables(tmp_path: Path) -> None:
    """A stored ELF read through a file object (a remote wheel): the ranges the parser asks
    for, not the prefix up to PT_DYNAMIC; the same facts as the mapped path."""
    _, _, scan = native_modules()

    c = craft_elf(gap=os.urandom(600 << 10), tail=100_000)
    so = tmp_path / "libgap.so"
    so.write_bytes(bytes(c.data))
    w = make_wheel(tmp_path, "g-1.0-cp311-cp311-linux_x86_64.whl", {"g/libgap.so": so},
                   method="stored")  # fmt: skip
    from_path = scan(w)
    fh = Counting(w.read_bytes())
    from_file = scan(fh, filename=w.name)
    assert from_file.error is None, from_file
    assert not from_file.errors, from_file
    assert from_file.elfs == from_path.elfs
    [st] = from_file.members
    assert st.inflated == st.read < 8192, st  # the bytes copied into the sparse buffer
    assert fh.consumed < 16384, fh.consumed
    [mapped] = from_path.members
    assert mapped.inflated > 600 << 10  # the mapped path maps a prefix (no copy)
    # read with pread (a wheel over read_whole_max): the same ranges, read into the buffer
    from_pread = scan(w, limits=Limits(read_whole_max=0))
    assert (from_pread.error, from_pread.errors) == (None, [])
    assert from_pread.elfs == from_path.elfs
    [pr] = from_pread.members
    assert pr.inflated == pr.read == st.read


def test_long_prefixes_switch_to_the_chosen_inflater(tmp_path: Path) -> None:
    elf, zipread, scan = native_modules()
    inflate = native_inflate()
    # 600 KiB of incompressible bytes between the tables and PT_DYNAMIC, 1 MiB after it
    c = craft_elf(gap=os.urandom(600 << 10), tail=1 << 20)
    so = tmp_path / "libgap.so"
    so.write_bytes(bytes(c.data))
    expect = elf.parse(bytes(c.data), len(c.data), "g/libgap.so")
    needed = c.offsets["dynamic"] + 16 * 16
    w = make_wheel(tmp_path, "g-1.0-cp311-cp311-linux_x86_64.whl", {"g/libgap.so": so})
    for name in inflate.INFLATERS:
        facts = scan(w, inflater=name)
        assert facts.errors == []
        assert facts.elfs == [expect]
        [st] = facts.members
        assert needed <= st.inflated <= needed + CHUNK
        a = zipread.Archive(w, inflater=name)
        a.read_directory()
        index = a.names.index("g/libgap.so")
        assert a.scan_elf(index, "g/libgap.so") == expect
        _, _, _, csize, usize, _, _ = a.entry(index)
        if name == "auto":  # 600 KiB of noise: it inflates less than 4.5 times its input
            assert usize < inflate.AUTO_ZNG_RATIO * csize
        assert a.last_inflater == ("libisal" if name == "auto" else name)
        a.close()


