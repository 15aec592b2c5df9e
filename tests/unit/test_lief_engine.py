"""The lief reference engine on its own: wheel-level facts, member selection, byte stats,
errors that name the member, limits, and the member cache. Expected values come from how each
wheel was built (tests/helpers/builders.py, tests/helpers/corpus.py), never from the engine.
"""

from __future__ import annotations

import hashlib
import re
import struct
import zlib
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from helpers.builders import ZipMember, make_wheel, write_zip
from helpers.corpus import DECOYS, NON_ELF_PEEKED, WHEEL_IDS, corpus_wheel

from wheelscan.facts import ElfFacts, WheelFacts
from wheelscan.limits import Limits
from wheelscan.read.lief import LIEF_UNCOMPARABLE, scan_wheel_lief

if TYPE_CHECKING:
    from helpers.corpus import Corpus

METHOD_NUMBERS = {"stored": 0, "deflate": 8, "zstd": 93}


@pytest.fixture(scope="module")
def elf_bytes(corpus: Corpus) -> bytes:
    """A small real x86-64 shared object from the corpus."""
    w = corpus_wheel(corpus, "x86_64-deflate")
    return next(e.source for e in w.elfs.values() if e.source.name == "execstack.so").read_bytes()


@pytest.mark.parametrize("wheel_id", list(WHEEL_IDS))
def test_wheel_level_facts(corpus: Corpus, wheel_id: str) -> None:
    w = corpus_wheel(corpus, wheel_id)
    facts = scan_wheel_lief(w.path)
    assert facts.engine == "lief"
    assert facts.error is None
    assert facts.errors == []
    assert facts.filename == w.path.name
    assert facts.size == w.path.stat().st_size
    dist, version, py, abi, plat = w.path.name[: -len(".whl")].split("-")
    # PEP 503 normalised name, as packaging.utils.parse_wheel_filename returns it
    assert (facts.name, facts.version) == (re.sub(r"[-_.]+", "-", dist).lower(), version)
    assert facts.python_tags == py.split(".")
    assert facts.platform_tags == plat.split(".")
    assert facts.wheel_tags == [f"{py}-{abi}-{p}" for p in plat.split(".")]
    assert facts.has_wheel_file
    assert facts.has_record is (wheel_id != "x86_64-mixed-norecord")
    assert facts.root_is_purelib is (wheel_id == "pure-any")
    dist_info = 2 + facts.has_record  # METADATA, WHEEL, RECORD
    if wheel_id == "pure-any":
        assert facts.member_count == 2 + dist_info
        assert facts.elfs == []
        return
    assert facts.member_count == len(DECOYS) + len(w.elfs) + dist_info
    # every member that may be a binary is peeked and accounted; ELF ones are parsed
    assert {m.member for m in facts.members} == set(w.elfs) | set(NON_ELF_PEEKED)
    assert {e.member for e in facts.elfs} == set(w.elfs)
    for m in facts.members:
        if w.method != "mixed":
            assert m.method == METHOD_NUMBERS[w.method], m
        assert m.inflated == 0  # byte counts of the early stop are native-only
        assert m.read == 0
        if m.member in w.elfs:
            assert m.size == w.elfs[m.member].source.stat().st_size
            if m.method == 0:
                assert m.compressed_size == m.size


def test_mixed_methods_recorded_per_member(corpus: Corpus) -> None:
    w = corpus_wheel(corpus, "x86_64-mixed-norecord")
    facts = scan_wheel_lief(w.path)
    assert {m.method for m in facts.members} == {0, 8, 93}
    assert len(facts.elfs) == len(w.elfs)


def test_uncomparable_list_is_short_and_explained() -> None:
    assert len(LIEF_UNCOMPARABLE) <= 6
    for key, why in LIEF_UNCOMPARABLE.items():
        cls, _, field = key.partition(".")
        assert cls in {"WheelFacts", "ElfFacts", "MemberStats", "MemberError"}, key
        assert field, key
        assert len(why) > 20, key


# ---------------------------------------------------------------------------------------------
# Broken members: one error naming the member, the rest of the wheel still scanned.


def _patch_cd(path: Path, member: str, fmt: str, offset: int, value: int) -> None:
    """Overwrite a field of ``member``'s central-directory entry (offsets per APPNOTE 4.3.12)."""
    data = bytearray(path.read_bytes())
    name = member.encode()
    pos = data.find(b"PK\x01\x02" + b"")
    while pos != -1:
        (nlen,) = struct.unpack_from("<H", data, pos + 28)
        if data[pos + 46 : pos + 46 + nlen] == name:
            struct.pack_into(fmt, data, pos + offset, value)
            path.write_bytes(bytes(data))
            return
        pos = data.find(b"PK\x01\x02", pos + 4)
    raise AssertionError(f"{member} not in central directory")


def _wheel(tmp_path: Path, files: dict[str, bytes], **kw: object) -> Path:
    return make_wheel(tmp_path, "broken-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", files, **kw)  # type: ignore[arg-type]


def _messages(facts: WheelFacts) -> dict[str, str]:
    return {e.member: e.message.lower() for e in facts.errors}


def test_corrupt_deflate_member(tmp_path: Path, elf_bytes: bytes) -> None:
    path = _wheel(tmp_path, {"broken/_good.so": elf_bytes, "broken/_bad.so": elf_bytes})
    data = bytearray(path.read_bytes())
    # the bad member's compressed data starts right after its local header and name
    start = data.find(b"broken/_bad.so") + len("broken/_bad.so")
    data[start + 10 : start + 200] = b"\xff" * 190
    path.write_bytes(bytes(data))
    facts = scan_wheel_lief(path)
    assert facts.error is None
    assert "deflate" in _messages(facts)["broken/_bad.so"]
    assert [e.member for e in facts.elfs] == ["broken/_good.so"]


def test_corrupt_zstd_member(tmp_path: Path, elf_bytes: bytes) -> None:
    path = _wheel(
        tmp_path, {"broken/_good.so": elf_bytes, "broken/_bad.so": elf_bytes}, method="zstd"
    )
    data = bytearray(path.read_bytes())
    start = data.find(b"broken/_bad.so") + len("broken/_bad.so")
    data[start + 4 : start + 40] = b"\x00" * 36  # just past the zstd frame magic
    path.write_bytes(bytes(data))
    facts = scan_wheel_lief(path)
    assert "zstandard" in _messages(facts)["broken/_bad.so"]
    assert [e.member for e in facts.elfs] == ["broken/_good.so"]


def test_encrypted_and_unknown_method(tmp_path: Path, elf_bytes: bytes) -> None:
    path = write_zip(
        tmp_path / "enc-1.0-cp311-cp311-linux_x86_64.whl",
        [
            ZipMember("enc/_locked.so", elf_bytes, "stored", flags=0x1),
            ZipMember("enc/_bzip.so", elf_bytes, "stored"),
            ZipMember("enc/_ok.so", elf_bytes, "deflate"),
        ],
    )
    _patch_cd(path, "enc/_bzip.so", "<H", 10, 12)  # compression method 12: bzip2
    facts = scan_wheel_lief(path)
    msgs = _messages(facts)
    assert "encrypted" in msgs["enc/_locked.so"]
    assert "method 12" in msgs["enc/_bzip.so"]
    # its local header says stored: the copy a streaming reader extracts is judged too
    assert [e.member for e in facts.elfs] == ["enc/_ok.so", "enc/_bzip.so"]
    assert any(a.startswith("confusion: 'enc/_bzip.so'") for a in facts.anomalies)


def test_member_inflating_beyond_declared_size(tmp_path: Path, elf_bytes: bytes) -> None:
    path = _wheel(tmp_path, {"broken/_bomb.so": elf_bytes})
    _patch_cd(path, "broken/_bomb.so", "<I", 24, 4096)  # uncompressed size: a lie
    facts = scan_wheel_lief(path)
    assert "beyond its declared size" in _messages(facts)["broken/_bomb.so"]
    assert facts.elfs == []


def _raw_zip(path: Path, name: str, method: int, stream: bytes, usize: int) -> Path:
    """A one-member ZIP whose sizes are exactly what the caller says (APPNOTE 4.3.7/4.3.12)."""
    n = name.encode()
    crc = 0
    local = (
        struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(stream), usize, len(n), 0
        )
        + n
    )
    central = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            0x031E,
            20,
            0,
            method,
            0,
            0x21,
            crc,
            len(stream),
            usize,
            len(n),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + n
    )
    cd_off = len(local) + len(stream)
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(central), cd_off, 0)
    path.write_bytes(local + stream + central + eocd)
    return path


def test_zip_bomb_is_bounded(tmp_path: Path) -> None:
    """64 MiB of zeros behind a 64 KiB declared size: refused without inflating it all."""
    import resource

    comp = zlib.compressobj(9, zlib.DEFLATED, -15)
    zeros = b"\x00" * (1 << 20)
    parts = [comp.compress(b"\x7fELF" + zeros[4:])]
    parts += [comp.compress(zeros) for _ in range(63)]
    stream = b"".join(parts) + comp.flush()
    path = _raw_zip(
        tmp_path / "bomb-1.0-cp311-cp311-linux_x86_64.whl", "bomb/_x.so", 8, stream, 65536
    )
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    facts = scan_wheel_lief(path)
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert facts.error is None, facts.error
    assert "beyond its declared size" in _messages(facts)["bomb/_x.so"]
    assert grown_kib < 32 << 10  # far less than the 64 MiB the stream would inflate to


def test_wheel_inflate_limit(tmp_path: Path, elf_bytes: bytes) -> None:
    path = _wheel(tmp_path, {"lim/_a.so": elf_bytes, "lim/_b.so": elf_bytes})
    limits = Limits(max_wheel_inflate=len(elf_bytes) + 1000)
    facts = scan_wheel_lief(path, limits=limits)
    assert [e.member for e in facts.elfs] == ["lim/_a.so"]
    assert "limit" in _messages(facts)["lim/_b.so"]


def test_member_count_limit(tmp_path: Path, elf_bytes: bytes) -> None:
    path = _wheel(tmp_path, {"lim/_a.so": elf_bytes})
    facts = scan_wheel_lief(path, limits=Limits(max_members=2))
    assert facts.error is not None
    assert "members" in facts.error


def test_central_directory_limit(tmp_path: Path, elf_bytes: bytes) -> None:
    path = _wheel(tmp_path, {"lim/_a.so": elf_bytes})
    facts = scan_wheel_lief(path, limits=Limits(max_central_directory=100))
    assert facts.error is not None
    assert "central directory" in facts.error


@pytest.mark.parametrize(
    ("label", "cut"),
    [("empty", 0), ("inside-first-header", 20), ("inside-eocd", -10), ("half", None)],
)
def test_truncated_archive(tmp_path: Path, elf_bytes: bytes, label: str, cut: int | None) -> None:
    path = _wheel(tmp_path, {"t/_a.so": elf_bytes})
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2 if cut is None else cut])
    facts = scan_wheel_lief(path)
    assert facts.error, label
    assert facts.elfs == []


def test_not_an_elf_after_the_magic(tmp_path: Path) -> None:
    path = _wheel(tmp_path, {"x/_fake.so": b"\x7fELF" + b"\x09\x09" + b"\x00" * 60})
    facts = scan_wheel_lief(path)
    assert "identity" in _messages(facts)["x/_fake.so"]


# ---------------------------------------------------------------------------------------------
# Sources and the member cache


def test_file_objects_and_names(corpus: Corpus) -> None:
    w = corpus_wheel(corpus, "x86_64-zstd")
    by_path = scan_wheel_lief(w.path)
    with w.path.open("rb") as fh:
        by_file = scan_wheel_lief(fh)
    assert by_file == by_path
    import io

    by_bytes = scan_wheel_lief(io.BytesIO(w.path.read_bytes()), filename=w.path.name)
    assert by_bytes == by_path
    anonymous = scan_wheel_lief(io.BytesIO(w.path.read_bytes()))
    assert anonymous.filename == "<stream>.whl"
    assert anonymous.filename_error


class DictCache:
    def __init__(self) -> None:
        self.store: dict[tuple[int, int, int, str], ElfFacts] = {}
        self.gets = 0
        self.puts = 0

    def get(self, key: tuple[int, int, int, str]) -> ElfFacts | None:
        self.gets += 1
        return self.store.get(key)

    def put(self, key: tuple[int, int, int, str], facts: ElfFacts) -> None:
        self.puts += 1
        self.store[key] = facts


def test_member_cache(tmp_path: Path, elf_bytes: bytes) -> None:
    files = {"c/_a.so": elf_bytes, "c/_b.so": elf_bytes}
    path = _wheel(tmp_path, files, method="stored")
    cache = DictCache()
    first = scan_wheel_lief(path, member_cache=cache)
    # stored: the compressed bytes are the file itself, so the key is known independently
    key = (
        0,
        len(elf_bytes),
        len(elf_bytes),
        hashlib.blake2b(elf_bytes, digest_size=16).hexdigest(),
    )
    assert set(cache.store) == {key}
    assert cache.puts == 1  # _b.so hit the entry _a.so put
    again = scan_wheel_lief(path, member_cache=cache)
    assert cache.puts == 1
    assert again == first
    assert [e.member for e in again.elfs] == ["c/_a.so", "c/_b.so"]
    assert scan_wheel_lief(path) == first
