"""Archives that mean two things: what CPython's zipfile (pip) installs is what gets judged.

Each archive is built byte by byte. The test's oracle is zipfile itself (what it lists and the
bytes it extracts), then pip installing the wheel; wheelscan must judge that view (the
GLIBC_2.34 binary under a manylinux2014 claim is mislabelled) and flag the disagreement as a
``zip-confusion`` violation, so such a wheel is never ``ok`` or ``no-binaries``.
"""

from __future__ import annotations

import base64
import hashlib
import struct
import subprocess
import sys
import zipfile
import zlib
from pathlib import Path

import pytest
from helpers.builders import Import, build_elf, build_stub, have, wheel_metadata

from wheelscan import judge, scan_wheel

NAME = "demo-1.0-cp311-cp311-manylinux2014_x86_64.whl"
SO = "demo/_x.so"


@pytest.fixture(scope="module")
def evil_so(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    if not have("gcc"):
        pytest.skip("no gcc")
    d = tmp_path_factory.mktemp("confusion")
    libc = build_stub(d, "libc.so.6", {"GLIBC_2.2.5": ["malloc"], "GLIBC_2.34": ["pidfd_getfd"]})
    so = build_elf(d, "_x.so", "void PyInit__x(void) {}\n",
                   imports=[Import("malloc", libc), Import("pidfd_getfd", libc)])
    return so.read_bytes()


def _meta() -> dict[str, bytes]:
    files = wheel_metadata("demo", "1.0", ["cp311-cp311-manylinux2014_x86_64"])
    files["demo/__init__.py"] = b""
    return files


def _record(files: dict[str, bytes]) -> bytes:
    lines = []
    for k, v in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(v).digest()).rstrip(b"=").decode()
        lines.append(f"{k},sha256={digest},{len(v)}")
    lines.append("demo-1.0.dist-info/RECORD,,")
    return ("\n".join(lines) + "\n").encode()


class Builder:
    """Local headers first, then any number of central directories over them."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.entries: dict[bytes, bytes] = {}  # name -> central directory entry

    def add(self, name: bytes, data: bytes) -> None:
        comp = zlib.compress(data)[2:-4]
        crc = zlib.crc32(data)
        off = len(self.out)
        self.out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0x21, crc, len(comp),
                                len(data), len(name), 0) + name + comp
        self.entries[name] = struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, 8, 0, 0x21, crc, len(comp),
            len(data), len(name), 0, 0, 0, 0, 0o100644 << 16, off) + name

    def directory(self, names: list[bytes]) -> tuple[int, bytes]:
        cd = b"".join(self.entries[n] for n in names)
        return len(cd), cd


def _eocd(n: int, size: int, off: int, comment_len: int) -> bytes:
    return struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, size, off, comment_len)


def _views(evil_so: bytes) -> tuple[Builder, list[bytes], list[bytes]]:
    """A clean view (metadata only) and an evil one (plus the binary), over one set of
    local headers; RECORD lists what the evil view installs."""
    files = _meta()
    b = Builder()
    evil_files = {**files, SO: evil_so}
    record = _record(evil_files)
    for k, v in {**evil_files, "demo-1.0.dist-info/RECORD": record}.items():
        b.add(k.encode(), v)
    clean = [k.encode() for k in files] + [b"demo-1.0.dist-info/RECORD"]
    evil = [*clean, SO.encode()]
    return b, clean, evil


def two_end_records(evil_so: bytes, path: Path) -> Path:
    """The first end record's comment holds the evil directory, a second end record and one
    more byte: zipfile takes the last signature, a reader trusting comment lengths the first."""
    b, clean, evil = _views(evil_so)
    size_a, cd_a = b.directory(clean)
    off_a = len(b.out)
    size_b, cd_b = b.directory(evil)
    off_b = off_a + size_a + 22
    hidden = cd_b + _eocd(len(evil), size_b, off_b, 0) + b"X"
    data = bytes(b.out) + cd_a + _eocd(len(clean), size_a, off_a, len(hidden)) + hidden
    path.write_bytes(data)
    return path


def zip64_locator_elsewhere(evil_so: bytes, path: Path) -> Path:
    """Two ZIP64 end records; the locator points at the clean one, zipfile reads the one
    right before the locator (the evil one)."""
    b, clean, evil = _views(evil_so)
    out = bytearray(b.out)
    records = []
    for names in (clean, evil):
        size, cd = b.directory(names)
        off = len(out)
        out += cd
        records.append(len(out))
        out += struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, len(names), len(names),
                           size, off)
    out += struct.pack("<IIQI", 0x07064B50, 0, records[0], 1)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    path.write_bytes(bytes(out))
    return path


def nul_in_name(evil_so: bytes, path: Path) -> Path:
    """``demo/_x.so\\0.txt``: a text file to a reader that keeps the whole name, the binary
    ``demo/_x.so`` to zipfile, which cuts names at NUL."""
    files = _meta()
    b = Builder()
    record = _record({**files, SO: evil_so})
    for k, v in {**files, "demo-1.0.dist-info/RECORD": record}.items():
        b.add(k.encode(), v)
    b.add(SO.encode() + b"\x00.txt", evil_so)
    names = list(b.entries)
    size, cd = b.directory(names)
    off = len(b.out)
    path.write_bytes(bytes(b.out) + cd + _eocd(len(names), size, off, 0))
    return path


CASES = {
    "two-end-records": (two_end_records, "two end of central directory records"),
    "zip64-locator-elsewhere": (zip64_locator_elsewhere, "ZIP64 end locator points at"),
    "nul-in-name": (nul_in_name, "holds a NUL byte"),
}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("engine", ["native", "lief"])
def test_what_zipfile_installs_is_judged(
    case: str, engine: str, evil_so: bytes, tmp_path: Path
) -> None:
    build, words = CASES[case]
    w = build(evil_so, tmp_path / NAME)
    # the oracle: zipfile lists the binary and extracts its bytes
    with zipfile.ZipFile(w) as zf:
        assert SO in zf.namelist()
        assert zf.read(SO) == evil_so
    v = judge(scan_wheel(w, engine=engine))
    assert v.status == "mislabelled", (case, engine, v.status, v.findings)
    sv = [f for f in v.violations if f.kind == "symbol-version"]
    assert sv, v.findings
    assert sv[0].member == SO
    assert "GLIBC_2.34" in sv[0].detail
    conf = [f for f in v.violations if f.kind == "zip-confusion"]
    assert conf, v.findings
    assert words in conf[0].detail


@pytest.mark.parametrize("case", list(CASES))
def test_pip_installs_that_binary(case: str, evil_so: bytes, tmp_path: Path) -> None:
    build, _ = CASES[case]
    w = build(evil_so, tmp_path / NAME)
    target = tmp_path / "target"
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--no-index",
                        "--no-compile", "--target", str(target), str(w)],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert (target / SO).read_bytes() == evil_so


def test_check_exit_status_is_not_zero(evil_so: bytes, tmp_path: Path) -> None:
    for case, (build, _) in CASES.items():
        d = tmp_path / case
        d.mkdir()
        w = build(evil_so, d / NAME)
        r = subprocess.run([sys.executable, "-m", "wheelscan", "check", str(w)],
                           capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert r.returncode == 1, (case, r.stdout, r.stderr)
        assert r.stdout.startswith("MISLABELLED"), (case, r.stdout)
