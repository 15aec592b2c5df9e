"""Archives that a reader walking the local headers sees otherwise than zipfile, and the
archive features PyPI's upload validator refuses, each built byte by byte.

Three things are asserted per case: what zipfile reads (the oracle pip uses), what a streaming
reader reads (a walker over the local headers written here with :mod:`struct`, independent of
wheelscan's), and what wheelscan judges. Where the two readers install different binaries, the
one only the streaming reader installs is judged too (the GLIBC_2.34 binary makes the wheel
``mislabelled``) and the split is a ``zip-confusion`` violation. Features every reader agrees
on but PyPI refuses are ``zip-anomaly`` warnings on an otherwise ``ok`` wheel.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from helpers.builders import Import, build_elf, build_stub, have, wheel_metadata

from wheelscan import judge, scan_wheel

NAME = "demo-1.0-cp311-cp311-manylinux2014_x86_64.whl"
SO = "demo/_x.so"
PY312 = Path.home() / ".pyenv/versions/3.12.1/bin/python"


@pytest.fixture(scope="module")
def sos(tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, bytes]:
    """(honest, evil): the same extension needing GLIBC_2.2.5 only, or GLIBC_2.34 too."""
    if not have("gcc"):
        pytest.skip("no gcc")
    d = tmp_path_factory.mktemp("views")
    libc = build_stub(d, "libc.so.6", {"GLIBC_2.2.5": ["malloc"], "GLIBC_2.34": ["pidfd_getfd"]})
    honest = build_elf(d / "h", "_x.so", "void PyInit__x(void) {}\n",
                       imports=[Import("malloc", libc)])  # fmt: skip
    evil = build_elf(d / "e", "_x.so", "void PyInit__x(void) {}\n",
                     imports=[Import("malloc", libc), Import("pidfd_getfd", libc)])  # fmt: skip
    return honest.read_bytes(), evil.read_bytes()


@dataclass
class Member:
    name: bytes
    data: bytes
    method: int = 8
    flags: int = 0
    lh_name: bytes | None = None  # the local header's, if it differs
    lh_method: int | None = None
    lh_crc: int | None = None
    cd_method: int | None = None
    cd_extra: bytes = b""
    comment: bytes = b""
    descriptor: bool = False
    offset: int = 0
    comp: bytes = field(default=b"", repr=False)


class Zip:
    """Members written one after another; central directories listed by hand."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.members: list[Member] = []

    def add(self, m: Member) -> Member:
        m.comp = zlib.compress(m.data)[2:-4] if m.method == 8 else m.data
        m.offset = len(self.out)
        crc = zlib.crc32(m.data) if m.lh_crc is None else m.lh_crc
        name = m.name if m.lh_name is None else m.lh_name
        method = m.method if m.lh_method is None else m.lh_method
        sizes = (0, 0, 0) if m.descriptor else (crc, len(m.comp), len(m.data))
        self.out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, m.flags, method, 0, 0x21,
                                *sizes, len(name), 0) + name + m.comp  # fmt: skip
        if m.descriptor:
            self.out += struct.pack("<IIII", 0x08074B50, crc, len(m.comp), len(m.data))
        self.members.append(m)
        return m

    def junk(self, data: bytes) -> None:
        self.out += data

    def finish(self, members: list[Member] | None = None) -> bytes:
        """The directory over ``members`` (default: all), after a RECORD naming them."""
        listed = list(self.members if members is None else members)
        rows = [f"{m.name.decode('utf-8', 'replace')},," for m in listed]
        rows.append("demo-1.0.dist-info/RECORD,,")
        listed.append(self.add(Member(b"demo-1.0.dist-info/RECORD",
                                      ("\n".join(rows) + "\n").encode())))
        cd = b""
        for m in listed:
            method = m.method if m.cd_method is None else m.cd_method
            comp = m.comp
            cd += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, m.flags, method, 0,
                              0x21, zlib.crc32(m.data if method == m.method else comp),
                              len(comp), len(m.data if method == m.method else comp),
                              len(m.name), len(m.cd_extra), len(m.comment), 0, 0,
                              0o100644 << 16, m.offset)  # fmt: skip
            cd += m.name + m.cd_extra + m.comment
        off = len(self.out)
        return bytes(self.out + cd + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(listed),
                                                 len(listed), len(cd), off, 0))  # fmt: skip


def metadata(z: Zip) -> list[Member]:
    files = wheel_metadata("demo", "1.0", ["cp311-cp311-manylinux2014_x86_64"])
    files["demo/__init__.py"] = b"# demo\n"
    return [z.add(Member(k.encode(), v)) for k, v in files.items()]


def stream_read(data: bytes) -> dict[str, bytes]:
    """What a reader walking the local headers from offset 0 installs (the last copy of a
    name wins); it stops at the first record that is not a local header."""
    out: dict[str, bytes] = {}
    pos = 0
    while data[pos:pos + 4] == b"PK\x03\x04":
        (flags, method, _t, _d, _crc, csize, _usize, nlen,
         elen) = struct.unpack_from("<HHHHIIIHH", data, pos + 6)  # fmt: skip
        name = data[pos + 30:pos + 30 + nlen].decode("utf-8" if flags & 0x800 else "cp437")
        start = pos + 30 + nlen + elen
        if flags & 8 and csize == 0:  # deflate finds its own end; the descriptor follows
            d = zlib.decompressobj(-15)
            body = d.decompress(data[start:])
            pos = len(data) - len(d.unused_data) + 16
        else:
            raw = data[start:start + csize]
            body = zlib.decompress(raw, -15) if method == 8 else raw
            pos = start + csize
        out[name] = body
    return out


def zipfile_read(data: bytes) -> dict[str, bytes | None]:
    """What zipfile extracts (None: it refuses that member, so pip fails)."""
    out: dict[str, bytes | None] = {}
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            out[info.filename] = _extract(zf, info)
    return out


def _extract(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bytes | None:
    try:
        return zf.read(info)
    except (zipfile.BadZipFile, zlib.error):
        return None


# -- cases where the readers install different binaries ----------------------------------------


def local_only(honest: bytes, evil: bytes) -> bytes:
    """The binary has a local header only: the central directory leaves it out."""
    z = Zip()
    meta = metadata(z)
    z.add(Member(SO.encode(), evil))
    return z.finish(meta)


def other_name(honest: bytes, evil: bytes) -> bytes:
    """The directory calls the binary ``demo/x.dat``; its local header ``demo/_x.so``."""
    z = Zip()
    metadata(z)
    z.add(Member(b"demo/x.dat", evil, lh_name=SO.encode()))
    return z.finish()


def other_method(honest: bytes, evil: bytes) -> bytes:
    """The directory says stored (zipfile extracts the deflate stream itself as the file);
    the local header says deflated (a streaming reader inflates the binary)."""
    z = Zip()
    metadata(z)
    z.add(Member(SO.encode(), evil, cd_method=0))
    return z.finish()


def copies_out_of_order(honest: bytes, evil: bytes) -> bytes:
    """Two copies of the binary; the directory lists the later (evil) one first, so zipfile
    installs the honest copy last and a streaming reader the evil one."""
    z = Zip()
    meta = metadata(z)
    a = z.add(Member(SO.encode(), honest))
    b = z.add(Member(SO.encode(), evil))
    return z.finish([*meta, b, a])


def unicode_path(honest: bytes, evil: bytes) -> bytes:
    """``demo/x.dat`` with an Info-ZIP Unicode path extra field naming it ``demo/_x.so``:
    Python 3.12's zipfile (and unzip) install the binary, 3.11's a data file."""
    z = Zip()
    metadata(z)
    stored = b"demo/x.dat"
    extra = struct.pack("<HHBI", 0x7075, 5 + len(SO), 1, zlib.crc32(stored)) + SO.encode()
    z.add(Member(stored, evil, cd_extra=extra))
    return z.finish()


def junk_between(honest: bytes, evil: bytes) -> bytes:
    """Bytes with no record signature before the binary: zipfile installs it, a streaming
    reader stops at them."""
    z = Zip()
    metadata(z)
    z.junk(b"\x00" * 64)
    z.add(Member(SO.encode(), evil))
    return z.finish()


STREAM_CASES = {
    "local-only": (local_only, "is only in a local header"),
    "other-name": (other_name, "is only in a local header"),
    "other-method": (other_method, "its local header says method 8"),
    "copies-out-of-order": (copies_out_of_order, "zipfile installs the copy at offset"),
    "unicode-path": (unicode_path, "by its Unicode path extra field"),
    "junk-between": (junk_between, "never sees it"),
}


@pytest.mark.parametrize("case", list(STREAM_CASES))
@pytest.mark.parametrize("engine", ["native", "lief"])
def test_every_readers_binary_is_judged(
    case: str, engine: str, sos: tuple[bytes, bytes], tmp_path: Path
) -> None:
    honest, evil = sos
    build, words = STREAM_CASES[case]
    data = build(honest, evil)
    # the oracles: zipfile and a streaming reader install different things
    zf, st = zipfile_read(data), stream_read(data)
    if case != "unicode-path":  # there CPython's versions disagree (the test below)
        assert zf != st
    assert evil in st.values() or evil in zf.values(), case
    w = tmp_path / NAME
    w.write_bytes(data)
    for source in (w, io.BytesIO(data)) if case == "other-method" else (w,):
        v = judge(scan_wheel(source, engine=engine, filename=NAME))
        assert v.status == "mislabelled", (case, engine, v.findings)
        sv = [f for f in v.violations if f.kind == "symbol-version"]
        assert sv, v.findings
        assert "GLIBC_2.34" in sv[0].detail, v.findings
        assert sv[0].member == SO, sv[0]
        conf = [f for f in v.violations if f.kind == "zip-confusion"]
        assert any(words in f.detail for f in conf), (words, v.findings)


def test_unicode_path_is_what_newer_zipfile_installs(sos: tuple[bytes, bytes]) -> None:
    """The oracle for the Unicode path case: each CPython's zipfile, asked directly."""
    data = unicode_path(*sos)
    assert list(zipfile_read(data))[-2] == (SO if sys.version_info >= (3, 12) else "demo/x.dat")
    if not PY312.exists():
        pytest.skip("no CPython 3.12 to ask")
    code = ("import io, sys, zipfile; z = zipfile.ZipFile(io.BytesIO(sys.stdin.buffer.read()));"
            "print(z.namelist()[-2])")
    r = subprocess.run([str(PY312), "-c", code], input=data, capture_output=True, timeout=60,
                       check=True)  # fmt: skip
    assert r.stdout.decode().strip() == SO


@pytest.mark.parametrize("case", ["copies-out-of-order", "other-method"])
def test_pip_installs_another_file_than_a_streaming_reader(
    case: str, sos: tuple[bytes, bytes], tmp_path: Path
) -> None:
    data = STREAM_CASES[case][0](*sos)
    w = tmp_path / NAME
    w.write_bytes(data)
    target = tmp_path / "target"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "--no-compile", "--target", str(target), str(w)],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (target / SO).read_bytes() == zipfile_read(data)[SO]
    assert (target / SO).read_bytes() != stream_read(data)[SO]


# -- what every reader agrees on but PyPI refuses ----------------------------------------------


def _anomalous(honest: bytes, **kw: object) -> tuple[Zip, list[Member]]:
    z = Zip()
    meta = metadata(z)
    meta.append(z.add(Member(SO.encode(), honest, **kw)))  # type: ignore[arg-type]
    return z, meta


def entry_comment(honest: bytes) -> bytes:
    z, _ = _anomalous(honest, comment=b"hello")
    return z.finish()


def unprintable_name(honest: bytes) -> bytes:
    z, _ = _anomalous(honest)
    z.add(Member(b"demo/a\x01b.py", b"x = 1\n"))
    return z.finish()


def not_utf8_name(honest: bytes) -> bytes:
    z, _ = _anomalous(honest)
    z.add(Member(b"demo/\xff.py", b"x = 1\n"))
    return z.finish()


def data_descriptor(honest: bytes) -> bytes:
    z, _ = _anomalous(honest, flags=8, descriptor=True)
    return z.finish()


def duplicate_zip64_extra(honest: bytes) -> bytes:
    z, _ = _anomalous(honest, cd_extra=struct.pack("<HHHH", 1, 0, 1, 0))
    return z.finish()


def local_crc_differs(honest: bytes) -> bytes:
    z, _ = _anomalous(honest, lh_crc=0x12345678)
    return z.finish()


def stale_local_copy(honest: bytes) -> bytes:
    z = Zip()
    z.add(Member(b"demo/__init__.py", b"# stale\n"))
    meta = metadata(z)
    meta.append(z.add(Member(SO.encode(), honest)))
    return z.finish(meta)


ANOMALY_CASES = {
    "entry-comment": (entry_comment, "carries a comment"),
    "unprintable-name": (unprintable_name, "unprintable byte 0x01"),
    "not-utf8-name": (not_utf8_name, "is not valid UTF-8"),
    "data-descriptor": (data_descriptor, "with a data descriptor"),
    "duplicate-zip64-extra": (duplicate_zip64_extra, "duplicate ZIP64 or Unicode path extra"),
    "local-crc-differs": (local_crc_differs, "another size or CRC-32"),
    "stale-local-copy": (stale_local_copy, "an earlier copy every reader overwrites"),
}


@pytest.mark.parametrize("case", list(ANOMALY_CASES))
@pytest.mark.parametrize("engine", ["native", "lief"])
def test_what_pypi_refuses_is_an_anomaly(
    case: str, engine: str, sos: tuple[bytes, bytes], tmp_path: Path
) -> None:
    honest, _ = sos
    build, words = ANOMALY_CASES[case]
    data = build(honest)
    zf = zipfile_read(data)
    assert zf[SO] == honest  # zipfile installs the honest binary
    if case != "local-crc-differs":
        assert stream_read(data) == zf, case  # and so does a streaming reader
    w = tmp_path / NAME
    w.write_bytes(data)
    v = judge(scan_wheel(w, engine=engine))
    assert v.status == "ok", (case, engine, v.findings)
    kinds = {f.kind for f in v.findings if f.severity != "info"}
    assert kinds == {"zip-anomaly"}, v.findings
    assert any(words in f.detail for f in v.findings), (words, v.findings)
    assert judge(scan_wheel(w, engine=engine), strict=True).status == "mislabelled"


def test_a_clean_archive_has_no_anomaly(sos: tuple[bytes, bytes], tmp_path: Path) -> None:
    z, _ = _anomalous(sos[0])
    w = tmp_path / NAME
    w.write_bytes(z.finish())
    for engine in ("native", "lief"):
        f = scan_wheel(w, engine=engine)
        assert f.anomalies == [], (engine, f.anomalies)
        assert judge(f).status == "ok"


def test_the_last_wheel_file_is_read(sos: tuple[bytes, bytes], tmp_path: Path) -> None:
    """Two copies of WHEEL: zipfile (pip) reads the last, and so does wheelscan."""
    z = Zip()
    metadata(z)
    late = z.add(Member(b"demo-1.0.dist-info/WHEEL", b"Wheel-Version: 1.0\nRoot-Is-Purelib: "
                        b"true\nTag: cp311-cp311-manylinux2014_x86_64\n"))  # fmt: skip
    z.add(Member(SO.encode(), sos[0]))
    data = z.finish()
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        assert zf.read("demo-1.0.dist-info/WHEEL") == late.data
    w = tmp_path / NAME
    w.write_bytes(data)
    for engine in ("native", "lief"):
        f = scan_wheel(w, engine=engine)
        assert f.root_is_purelib is True, engine
        assert "duplicate member names" in f.anomalies


@pytest.mark.parametrize("case", ["other-method", "other-name"])
def test_remote_judges_the_local_headers_it_fetches(
    case: str, sos: tuple[bytes, bytes], tmp_path: Path
) -> None:
    """Over range requests only the opened members' local headers are read: those are
    compared, and the copy a streaming reader would install is judged."""
    from helpers.httpserver import IndexServer

    from wheelscan.mirror.remote import scan_remote

    w = tmp_path / NAME
    w.write_bytes(STREAM_CASES[case][0](*sos))
    with IndexServer([w]) as srv:
        f = scan_remote(srv.file_url(NAME), NAME)
    assert f.error is None, f.error
    v = judge(f)
    assert v.status == "mislabelled", v.findings
    # the directory's name may be a binary (x.dat, _x.so), so its local header is read
    sv = [x for x in v.violations if x.kind == "symbol-version"]
    assert SO in [x.member for x in sv], v.findings
    assert any(x.kind == "zip-confusion" for x in v.violations), v.findings
