"""Hostile input: corrupted archives and ELF files, one id per corruption.

Each case takes a real wheel (gcc-built ELF, ZIP written by tests/helpers/builders.py), corrupts
exactly one field located by parsing the fixture independently (tests/helpers/elfpatch.py), and
scans it with every engine in a child process (tests/helpers/isolated.py), so a crash or a hang
fails that case only.

A case passes when ``scan_wheel`` returned WheelFacts (it must never raise) within a few seconds,
with bounded memory, and reported the problem where it belongs:

- ``archive``: ``WheelFacts.error`` names it (the archive cannot be read at all);
- ``member``: a ``MemberError`` for the corrupted member names it, and the healthy ELF member next
  to it still yields its facts (the scan goes on);
- ``either``: archive-level or member-level, both are honest readings;
- ``tolerated``: a reader may follow the loader/zipfile and ignore the lie (a count the chain
  contradicts, a comment length): then every ELF member's facts must still be right (nothing
  silently lost or invented), otherwise an error/anomaly must say what is wrong.

Messages are checked for stable keywords only (any one of a case's list), not full text.
"""

from __future__ import annotations

import os
import struct
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import zstandard
from elftools.elf.elffile import ELFFile
from helpers.builders import Import, ZipMember, build_elf, build_stub, have, make_wheel, write_zip
from helpers.elfpatch import DT, Elf, ZipLayout, deflate_repeat, patch
from helpers.isolated import Case, Outcome, engine_params, private_tmp, run_cases

WHL = "hostile-1.0-cp311-cp311-manylinux_2_17_x86_64.whl"
BAD = "hostile/_bad.so"
GOOD = "hostile/good.so"
CASE_SECONDS = 5.0  # "a few seconds": a small wheel; any scan slower than this is a hang
BOMB_SECONDS = 10.0
RSS_LIMIT_KB = 200 * 1024

# Keyword families (lower case). Each case accepts any one word of its list.
TRUNC = ("truncat", "past the end", "beyond", "exceed", "end of", "outside", "short",
         "out of range", "out of bounds", "too small", "incomplete", "overflow")  # fmt: skip
NOT_ZIP = (
    "end of central directory",
    "eocd",
    "not a zip",
    "zip archive",
    "central directory",
    "truncat",
    "too small",
)
LOCAL = ("local header", "local file header", "file header", "header", "signature", "magic")
COMPRESSED = ("compressed", "csize", "truncat", "crc", "end of stream", "unexpected end",
              "incomplete", "past the end", "beyond", "exceed", "size")  # fmt: skip
INFLATE = ("inflate", "deflate", "invalid", "corrupt", "zlib", "decompress", "block type")
ZSTD = ("zstd", "zstandard", "frame", "corrupt", "decompress", "invalid", "unknown")
UNMAPPED = ("pt_load", "not mapped", "unmapped", "address", "not in any", "outside", "segment")
STRINGS = ("dynstr", "string", "strtab", "strsz", *TRUNC)
LOOP = ("loop", "cycle", "chain", "repeat", "revisit", "backward", "circular", "count", "exceed")


@dataclass
class Expect:
    where: str  # archive | member | either | tolerated
    keywords: tuple[str, ...]
    member: str = BAD
    victim: str = "victim"  # key of the pyelftools facts of the intact BAD member


# ELF variants the ELF cases run on, by case id suffix: ELF64 LE, ELF32 LE, ELF64 BE.
_CROSS = {"-elf32": "i686-linux-gnu-gcc", "-be": "s390x-linux-gnu-gcc"}
VARIANTS = {"": "gcc", **{k: cc for k, cc in _CROSS.items() if have(cc)}}


@dataclass
class Built:
    path: Path
    expect: Expect
    limits: dict[str, int] | None = None


# ---------------------------------------------------------------------------------------------
# Fixtures: real ELF files, built once for the module.


@dataclass
class Fixtures:
    victims: dict[str, bytes]  # by variant id suffix: "" x86_64, "-elf32" i686, "-be" s390x
    victim_sysv: bytes  # x86_64, DT_HASH only
    good: bytes
    expected: dict[str, dict[str, Any]]  # facts read by pyelftools, by fixture name
    dir: Path


def _readelf_facts(path: Path) -> dict[str, Any]:
    """needed + version needs, read by pyelftools (an oracle independent of both engines)."""
    with path.open("rb") as f:
        elf = ELFFile(f)
        dyn = elf.get_section_by_name(".dynamic")
        needed = [t.needed for t in dyn.iter_tags() if t.entry.d_tag == "DT_NEEDED"]
        vr = elf.get_section_by_name(".gnu.version_r")
        needs = sorted(
            (vn.name, tuple(sorted(a.name for a in auxes))) for vn, auxes in vr.iter_versions()
        )
    return {"needed": needed, "needs": needs}


@pytest.fixture(scope="module")
def fx() -> Iterator[Fixtures]:
    with private_tmp("hostile") as d:
        yield _build_fixtures(d)


def _build_fixtures(d: Path) -> Fixtures:
    vmap = d / "victim.map"
    vmap.write_text("VICTIM_1 { global: victim_a; };\nVICTIM_2 { global: victim_b; } VICTIM_1;\n")
    src = "int victim_a(void) { return 1; }\nint victim_b(void) { return 2; }\n"
    victims: dict[str, Path] = {}
    sysv = None
    for suffix, cc in VARIANTS.items():
        vd = d / (suffix or "x86_64")
        libc = build_stub(vd, "libc.so.6", {"GLIBC_2.2.5": ["hs_old"], "GLIBC_2.14": ["hs_new"]},
                          cc=cc)  # fmt: skip
        libm = build_stub(vd, "libm.so.6", {"GLIBC_2.29": ["hs_exp"]}, cc=cc)
        imports = [Import("hs_old", libc), Import("hs_new", libc), Import("hs_exp", libm)]
        # gnu hash, Verneed x2 (libc: 2 versions, libm: 1), Verdef x3, notes (x86: ISA level)
        common = [f"-Wl,--version-script={vmap}"]
        if cc == "gcc":
            common.append("-Wl,-z,x86-64-v2")
        victims[suffix] = build_elf(vd, "victim.so", src, cc=cc, imports=imports,
                                    flags=[*common, "-Wl,--hash-style=gnu"])  # fmt: skip
        if cc == "gcc":
            sysv = build_elf(vd, "victim_sysv.so", src, imports=imports,
                             flags=[*common, "-Wl,--hash-style=sysv"])  # fmt: skip
    assert sysv is not None
    libgood = build_stub(d, "libgood.so.1", {"GOOD_1.0": ["good_fn"]})
    good = build_elf(d, "good.so", imports=[Import("good_fn", libgood)])
    expected = {"victim" + k: _readelf_facts(p) for k, p in victims.items()}
    expected["good"] = _readelf_facts(good)
    assert expected["good"] == {"needed": ["libgood.so.1"],
                                "needs": [("libgood.so.1", ("GOOD_1.0",))]}  # fmt: skip
    for k in victims:
        assert len(expected["victim" + k]["needs"]) == 2
    return Fixtures({k: p.read_bytes() for k, p in victims.items()}, sysv.read_bytes(),
                    good.read_bytes(), expected, d)  # fmt: skip


def _wheel(fx: Fixtures, case_dir: Path, bad: bytes, *, method: str = "deflate",
           zip64: bool = False) -> bytes:  # fmt: skip
    files: dict[str, bytes | Path] = {BAD: bad, GOOD: fx.good, "hostile/__init__.py": b""}
    path = make_wheel(case_dir, WHL, files, method=method, methods={BAD: method}, zip64=zip64)
    return path.read_bytes()


# ---------------------------------------------------------------------------------------------
# ZIP corruptions: the victim ELF is intact, the archive lies.

ZipCase = Callable[[bytes], tuple[bytes, Expect]]


def _eocd(d: bytes) -> int:
    return ZipLayout(d).eocd


def _set_member(d: bytes, name: str, cd_rel: int, local_rel: int | None, fmt: str,
                val: int) -> bytes:  # fmt: skip
    """Patch one field of ``name``'s central directory entry and (optionally) local header."""
    z = ZipLayout(d)
    e = z.entry(name)
    edits = [(e.cd_at + cd_rel, fmt, val)]
    if local_rel is not None:
        edits.append((e.local_at + local_rel, fmt, val))
    return patch(d, *edits)


def _cut(at: Callable[[bytes], int]) -> ZipCase:
    def make(d: bytes) -> tuple[bytes, Expect]:
        return d[: at(d)], Expect("archive", NOT_ZIP)

    return make


ZIP_CASES: dict[str, ZipCase] = {
    "zip-truncated-empty": _cut(lambda d: 0),
    "zip-truncated-10-bytes": _cut(lambda d: 10),
    "zip-truncated-in-member-data": _cut(lambda d: ZipLayout(d).cd_offset // 2),
    "zip-truncated-in-central-directory": _cut(lambda d: ZipLayout(d).cd_offset + 60),
    "zip-truncated-in-eocd": _cut(lambda d: _eocd(d) + 10),
    "zip-truncated-last-byte": _cut(lambda d: len(d) - 1),
    "zip-missing-eocd": lambda d: (patch(d, (_eocd(d), "<I", 0)), Expect("archive", NOT_ZIP)),
    "zip-comment-length-too-long": lambda d: (
        patch(d, (_eocd(d) + 20, "<H", 500)),
        Expect("tolerated", ("comment", *NOT_ZIP)),
    ),
    "zip-comment-length-too-short": lambda d: (
        patch(d, (_eocd(d) + 20, "<H", 10)) + b"C" * 64,
        Expect("tolerated", ("comment", "trailing", "after", *NOT_ZIP)),
    ),
    "zip-cd-offset-past-end": lambda d: (
        patch(d, (_eocd(d) + 16, "<I", len(d) + 100)),
        Expect("either", ("central directory", "offset", *LOCAL, *TRUNC)),
    ),
    "zip-cd-size-past-end": lambda d: (
        patch(d, (_eocd(d) + 12, "<I", 0x7FFFFFFF)),
        Expect("either", ("central directory", "size", *TRUNC)),
    ),
    "zip-entry-count-higher": lambda d: (
        patch(d, (_eocd(d) + 8, "<H", 11), (_eocd(d) + 10, "<H", 11)),
        Expect("tolerated", ("count", "entries", "central directory", *TRUNC)),
    ),
    "zip-entry-count-lower": lambda d: (
        patch(d, (_eocd(d) + 8, "<H", 1), (_eocd(d) + 10, "<H", 1)),
        Expect("tolerated", ("count", "entries", "central directory")),
    ),
    "zip-local-offset-past-end": lambda d: (
        _set_member(d, BAD, 42, None, "<I", len(d) + 1000),
        Expect("member", ("local header", "offset", *LOCAL, *TRUNC)),
    ),
    "zip-local-bad-signature": lambda d: (
        patch(d, (ZipLayout(d).entry(BAD).local_at, "<I", 0x09094B50)),
        Expect("member", LOCAL),
    ),
    "zip-local-name-length-past-end": lambda d: (
        patch(d, (ZipLayout(d).entry(BAD).local_at + 26, "<H", 0xFFFF)),
        Expect("member", ("name", "differ", *LOCAL, *TRUNC)),
    ),
    "zip-local-extra-length-past-end": lambda d: (
        patch(d, (ZipLayout(d).entry(BAD).local_at + 28, "<H", 0xFFFF)),
        Expect("member", ("extra", *LOCAL, *TRUNC, *COMPRESSED, *INFLATE)),
    ),
    "zip-csize-bigger-than-file": lambda d: (
        _set_member(d, BAD, 20, 18, "<I", 0x7FFFFFFF),
        Expect("member", COMPRESSED),
    ),
    "zip-csize-smaller-than-stream": lambda d: (
        _set_member(d, BAD, 20, 18, "<I", 20),
        Expect("member", COMPRESSED),
    ),
    "zip-encrypted-member": lambda d: (
        _set_member(d, BAD, 8, 6, "<H", 1),
        Expect("member", ("encrypt",)),
    ),
    "zip-unknown-method": lambda d: (
        _set_member(d, BAD, 10, 8, "<H", 97),
        Expect("member", ("method", "compression", "unsupported", "not supported")),
    ),
    "zip-local-name-differs": lambda d: (
        patch(d, (ZipLayout(d).entry(BAD).local_at + 30 + len("hostile/_b"), "<B", ord("X"))),
        Expect("tolerated", ("name", "differ", "mismatch", *LOCAL)),
    ),
    "zip-corrupt-deflate-stream": lambda d: (
        patch(d, (ZipLayout(d).data_at(BAD), "<B", 0x07)),  # BFINAL=1, BTYPE=11: reserved
        Expect("member", INFLATE),
    ),
}

OVERLAP_COPIES = 300


def _overlapping(d: bytes, copies: int) -> bytes:
    """The wheel plus ``copies`` central directory entries that all point at the victim's local
    header (an overlapping-entries zip bomb: the same bytes inflated again and again)."""
    z = ZipLayout(d)
    e = z.entry(BAD)
    (nlen,) = struct.unpack_from("<H", d, e.cd_at + 28)
    entry = d[e.cd_at : e.cd_at + 46 + nlen]
    extra = bytearray()
    for i in range(copies):
        name = f"hostile/d{i:03d}.so".encode()
        assert len(name) == nlen
        extra += entry[:46] + name
    cd = d[z.cd_offset : z.cd_offset + z.cd_size] + bytes(extra)
    n = len(z.entries) + copies
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(cd), z.cd_offset, 0)
    return d[: z.cd_offset] + cd + eocd


# A sound wheel scanned under tight Limits: the archive-level caps must hold.
LIMIT_CASES: dict[str, tuple[dict[str, int], tuple[str, ...]]] = {
    "limit-max-members": ({"max_members": 3}, ("member", "entries", "limit", "exceed")),
    "limit-max-central-directory": (
        {"max_central_directory": 100},
        ("central directory", "limit", "exceed"),
    ),
}

ZSTD_CASES: dict[str, ZipCase] = {
    "zstd-corrupt-magic": lambda d: (
        patch(d, (ZipLayout(d).data_at(BAD), "<I", 0)),
        Expect("member", ZSTD),
    ),
    "zstd-corrupt-block": lambda d: (
        d[: ZipLayout(d).data_at(BAD) + 6] + b"\xff" * 32 + d[ZipLayout(d).data_at(BAD) + 38 :],
        Expect("member", ZSTD),
    ),
}

STORED_CASES: dict[str, ZipCase] = {
    "stored-csize-past-end": lambda d: (
        _set_member(d, BAD, 20, 18, "<I", 0x7FFFFFFF),
        Expect("member", COMPRESSED),
    ),
}


def _z64_extra(d: bytes, name: str, rel: int, fmt: str, val: int) -> bytes:
    z = ZipLayout(d)
    e = z.entry(name)
    (nlen,) = struct.unpack_from("<H", d, e.cd_at + 28)
    return patch(d, (e.cd_at + 46 + nlen + rel, fmt, val))


ZIP64_CASES: dict[str, ZipCase] = {
    "zip64-locator-offset-past-end": lambda d: (
        patch(d, (ZipLayout(d).zip64_locator + 8, "<Q", 1 << 40)),  # type: ignore[operator]
        Expect("tolerated", ("zip64", "locator", *NOT_ZIP, *TRUNC)),
    ),
    "zip64-eocd-cd-offset-past-end": lambda d: (
        patch(d, (ZipLayout(d).zip64_eocd + 48, "<Q", 1 << 40)),  # type: ignore[operator]
        Expect("either", ("zip64", "central directory", "offset", *LOCAL, *TRUNC)),
    ),
    "zip64-eocd-count-huge": lambda d: (
        patch(
            d,
            (ZipLayout(d).zip64_eocd + 24, "<Q", 1 << 40),  # type: ignore[operator]
            (ZipLayout(d).zip64_eocd + 32, "<Q", 1 << 40),
        ),  # type: ignore[operator]
        Expect("tolerated", ("count", "entries", "members", "limit", *NOT_ZIP, *TRUNC)),
    ),
    "zip64-extra-local-offset-past-end": lambda d: (
        _z64_extra(d, BAD, 4 + 16, "<Q", 1 << 40),
        Expect("either", ("local header", "offset", *LOCAL, *TRUNC)),
    ),
    "zip64-extra-too-short": lambda d: (
        _z64_extra(d, BAD, 2, "<H", 8),
        Expect("either", ("zip64", "extra", *LOCAL, *TRUNC)),
    ),
}

# ---------------------------------------------------------------------------------------------
# ELF corruptions: the archive is intact, the victim ELF lies.

ElfCase = Callable[[Elf], tuple[bytes, Expect]]


def far(e: Elf) -> int:
    """An address no PT_LOAD of a small .so covers."""
    return 0x7FFF_0000_0000 if e.is64 else 0xFFFF_0000


def big(e: Elf) -> int:
    """An offset or size far past the end of any fixture (and of any 32-bit file)."""
    return 0x10_0000_0000 if e.is64 else 0xFFFF_FF00


def _dyn_set(e: Elf, tag: int, val: int) -> bytes:
    return patch(e.data, (e.dyn_entry(tag)[1], e.dyn_value_fmt(), val))


def _ph_set(e: Elf, p_type: int, name: str, val: int) -> bytes:
    at, fmt = e.phdr_field_at(e.phdr(p_type), name)
    return patch(e.data, (at, fmt, val))


def _vn_loop(e: Elf) -> bytes:
    (first, _), (last, _) = e.verneed_entries()[0], e.verneed_entries()[-1]
    d = patch(e.data, (last + 12, e.end + "I", (first - last) & 0xFFFFFFFF))
    return patch(d, (e.dyn_entry(DT.VERNEEDNUM)[1], e.dyn_value_fmt(), 0x7FFFFFFF))


def _vna_loop(e: Elf) -> bytes:
    vn, auxes = next((vn, a) for vn, a in e.verneed_entries() if len(a) >= 2)
    d = patch(e.data, (auxes[-1] + 12, e.end + "I", (auxes[0] - auxes[-1]) & 0xFFFFFFFF))
    return patch(d, (vn + 2, e.end + "H", 0xFFFF))  # vn_cnt


def _vd_loop(e: Elf) -> bytes:
    defs = e.verdef_entries()
    d = patch(e.data, (defs[-1] + 16, e.end + "I", (defs[0] - defs[-1]) & 0xFFFFFFFF))
    return patch(d, (e.dyn_entry(DT.VERDEFNUM)[1], e.dyn_value_fmt(), 0x7FFFFFFF))


def _vn_cnt_high(e: Elf) -> bytes:
    vn, auxes = e.verneed_entries()[0]
    return patch(e.data, (vn + 2, e.end + "H", len(auxes) + 5))


def _gnu_hash(e: Elf, rel: int, val: int) -> bytes:
    return patch(e.data, (e.table(DT.GNU_HASH) + rel, e.end + "I", val))


def _note(e: Elf, which: int, rel: int) -> bytes:
    return patch(e.data, (e.notes()[which] + rel, e.end + "I", 0xFFFFFFF0))


def _dynstr_byte(e: Elf, string: bytes, index: int, value: int) -> bytes:
    """Overwrite byte ``index`` of ``string`` where it sits in the dynamic string table."""
    start = e.table(DT.STRTAB)
    at = e.data.index(string, start, start + e.dyn_entry(DT.STRSZ)[0])
    return patch(e.data, (at + index, "<B", value))


HASH = ("hash", "bucket", "bloom", "chain", "symbol", *TRUNC)
PH = ("program header", "phdr", "phoff", "phnum", "phentsize", *TRUNC)
DYN = ("dynamic", *TRUNC)
VERS = ("verneed", "vernaux", "verdef", "version", "vn_cnt", "vna_next", "vn_next", *LOOP)

ELF_CASES: dict[str, tuple[str, ElfCase]] = {
    "elf-truncated-in-header": ("victim", lambda e: (e.data[:40], Expect("member", TRUNC))),
    "elf-truncated-in-phdrs": ("victim", lambda e: (
        e.data[: e.phoff + 2 * e.phentsize + 10], Expect("member", PH))),
    "elf-truncated-in-dynamic": ("victim", lambda e: (
        e.data[: e.phdr(2).offset + 40], Expect("member", DYN))),
    "elf-phoff-past-end": ("victim", lambda e: (
        patch(e.data, (e.phoff_at, e.dyn_value_fmt(), big(e))), Expect("member", PH))),
    "elf-phnum-huge": ("victim", lambda e: (
        patch(e.data, (e.phnum_at, e.end + "H", 0xFFFE)), Expect("member", PH))),
    "elf-phentsize-too-small": ("victim", lambda e: (
        patch(e.data, (e.phentsize_at, e.end + "H", 8)), Expect("member", PH))),
    "elf-dynamic-offset-past-end": ("victim", lambda e: (
        _ph_set(e, 2, "offset", 0x4000_0000), Expect("member", DYN))),
    "elf-dynamic-size-huge": ("victim", lambda e: (
        _ph_set(e, 2, "filesz", big(e)), Expect("member", DYN))),
    "elf-strtab-not-in-load": ("victim", lambda e: (
        _dyn_set(e, DT.STRTAB, far(e)), Expect("member", ("strtab", *UNMAPPED)))),
    "elf-symtab-not-in-load": ("victim", lambda e: (
        _dyn_set(e, DT.SYMTAB, far(e)), Expect("member", ("symtab", *UNMAPPED)))),
    "elf-verneed-not-in-load": ("victim", lambda e: (
        _dyn_set(e, DT.VERNEED, far(e)), Expect("member", ("verneed", *UNMAPPED)))),
    "elf-strsz-past-end": ("victim", lambda e: (
        _dyn_set(e, DT.STRSZ, big(e)), Expect("member", STRINGS))),
    "elf-needed-offset-outside-dynstr": ("victim", lambda e: (
        _dyn_set(e, DT.NEEDED, e.dyn_entry(DT.STRSZ)[0] + 0x1000), Expect("member", STRINGS))),
    "elf-vn-file-outside-dynstr": ("victim", lambda e: (
        patch(e.data, (e.verneed_entries()[0][0] + 4, e.end + "I", 0xFFFFFF00)),
        Expect("member", STRINGS))),
    "elf-vna-name-outside-dynstr": ("victim", lambda e: (
        patch(e.data, (e.verneed_entries()[0][1][0] + 8, e.end + "I", 0xFFFFFF00)),
        Expect("member", STRINGS))),
    "elf-hash-nchain-2-31": ("victim_sysv", lambda e: (
        patch(e.data, (e.table(DT.HASH) + 4, e.end + "I", 1 << 31)), Expect("member", HASH))),
    "elf-gnu-hash-nbuckets-huge": ("victim", lambda e: (
        _gnu_hash(e, 0, 0xFFFFFFFF), Expect("member", HASH))),
    "elf-gnu-hash-bloom-huge": ("victim", lambda e: (
        _gnu_hash(e, 8, 0x7FFFFFFF), Expect("member", HASH))),
    "elf-vn-next-loops-back": ("victim", lambda e: (_vn_loop(e), Expect("member", VERS))),
    "elf-vna-next-loops-back": ("victim", lambda e: (_vna_loop(e), Expect("member", VERS))),
    "elf-vd-next-loops-back": ("victim", lambda e: (_vd_loop(e), Expect("member", VERS))),
    # glibc's loader follows vn_next/vna_next until 0 and ignores the counts: a reader may too.
    "elf-verneednum-huge-chain-ends": ("victim", lambda e: (
        _dyn_set(e, DT.VERNEEDNUM, 0x7FFFFFFF), Expect("tolerated", VERS))),
    "elf-vn-cnt-higher-than-chain": ("victim", lambda e: (
        _vn_cnt_high(e), Expect("tolerated", VERS))),
    # Notes are optional to the loader: a bad size may be an error or skip the note.
    "elf-note-descsz-huge": ("victim", lambda e: (
        _note(e, 0, 4), Expect("tolerated", ("note", *TRUNC)))),
    "elf-note-namesz-huge": ("victim", lambda e: (
        _note(e, -1, 0), Expect("tolerated", ("note", *TRUNC)))),
    # Bytes are not text: a name that is not UTF-8 must still reach the facts as str (or be an
    # error), never as bytes.
    "elf-version-name-not-utf8": ("victim", lambda e: (
        _dynstr_byte(e, b"GLIBC_2.29\x00", 8, 0x80), Expect("strings", ("utf", *STRINGS)))),
    "elf-needed-name-not-utf8": ("victim", lambda e: (
        _dynstr_byte(e, b"libm.so.6\x00", 3, 0xFF), Expect("strings", ("utf", *STRINGS)))),
}  # fmt: skip


def _build_cases(fx: Fixtures) -> dict[str, Built]:
    out: dict[str, Built] = {}
    root = fx.dir / "cases"

    def add(cid: str, data: bytes, expect: Expect, limits: dict[str, int] | None = None) -> None:
        d = root / cid
        d.mkdir(parents=True)
        p = d / WHL
        p.write_bytes(data)
        out[cid] = Built(p, expect, limits)

    healthy = _wheel(fx, root / "_base", fx.victims[""])
    add("healthy", healthy, Expect("none", ()))
    for cid, (limits, words) in LIMIT_CASES.items():
        add(cid, healthy, Expect("archive", words), limits)
    add("zip-overlapping-entries-over-wheel-limit", _overlapping(healthy, OVERLAP_COPIES),
        Expect("member", LIMIT_WORDS, f"hostile/d{OVERLAP_COPIES - 1:03d}.so"),
        {"max_wheel_inflate": 1 << 20})  # fmt: skip
    groups = [(ZIP_CASES, "deflate", False), (ZSTD_CASES, "zstd", False),
              (STORED_CASES, "stored", False), (ZIP64_CASES, "deflate", True)]  # fmt: skip
    for cases, method, zip64 in groups:
        victim = fx.victims[""]
        base = _wheel(fx, root / f"_base-{method}-{zip64}", victim, method=method, zip64=zip64)
        for cid, make in cases.items():
            add(cid, *make(base))
    for cid, (which, make_elf) in ELF_CASES.items():
        for suffix in VARIANTS if which == "victim" else [""]:
            src = fx.victims[suffix] if which == "victim" else fx.victim_sysv
            bad, expect = make_elf(Elf(src))
            expect.victim = "victim" + suffix
            add(cid + suffix, _wheel(fx, root / f"_elf-{cid}{suffix}", bad), expect)
            stored = _wheel(fx, root / f"_elf-{cid}{suffix}-stored", bad, method="stored")
            add(f"{cid}{suffix}-stored", stored, expect)
    return out


@pytest.fixture(scope="module")
def cases(fx: Fixtures) -> dict[str, Built]:
    return _build_cases(fx)


ELF_IDS = [
    cid + suffix
    for cid, (which, _) in ELF_CASES.items()
    for suffix in (VARIANTS if which == "victim" else [""])
]
ALL_IDS = [
    "healthy",
    *LIMIT_CASES,
    "zip-overlapping-entries-over-wheel-limit",
    *ZIP_CASES,
    *ZSTD_CASES,
    *STORED_CASES,
    *ZIP64_CASES,
    *ELF_IDS,
]
FILEOBJ_IDS = ["healthy", *LIMIT_CASES, *ZIP_CASES, *ZSTD_CASES, *STORED_CASES, *ZIP64_CASES]
#: the ELF cases as stored members, read by the native engine through a file object: it then
#: reads only the ranges the parser asks for into a sparse buffer instead of a prefix
ELF_STORED_IDS = [f"{cid}-stored" for cid in ELF_IDS]


@pytest.fixture(scope="module")
def outcomes(cases: dict[str, Built], request: pytest.FixtureRequest) -> dict[str, Outcome]:
    engines = [p.values[0] for p in engine_params() if not p.marks]
    todo = [Case(f"{cid}[{eng}]", b.path, eng, b.limits) for eng in engines
            for cid, b in cases.items() if cid in ALL_IDS]  # fmt: skip
    todo += [Case(f"{cid}[native-fileobj]", cases[cid].path, "native", cases[cid].limits,
                  fileobj=True) for cid in ELF_STORED_IDS]  # fmt: skip
    # The archive cases again from a file object: the native engine reads those through a
    # different source (chunks from read(), not one read of the whole file).
    todo += [Case(f"{cid}[{eng}-fileobj]", b.path, eng, b.limits, fileobj=True)
             for eng in engines for cid, b in cases.items() if cid in FILEOBJ_IDS]  # fmt: skip
    # Every case again from its path, read with pread in chunks as a wheel over
    # Limits.read_whole_max is (the fixtures are small enough to be read whole otherwise).
    if "native" in engines:
        todo += [Case(f"{cid}[native-pread]", cases[cid].path, "native", _pread(cases[cid]))
                 for cid in [*ALL_IDS, *ELF_STORED_IDS]]  # fmt: skip
    return run_cases(todo, timeout=CASE_SECONDS * 4)


def _pread(b: Built) -> dict[str, int]:
    return {**(b.limits or {}), "read_whole_max": 0}


# ---------------------------------------------------------------------------------------------
# Checks


def _matches(message: object, keywords: tuple[str, ...]) -> bool:
    return (
        isinstance(message, str) and bool(message) and any(k in message.lower() for k in keywords)
    )


def _elf(facts: dict[str, Any], member: str) -> dict[str, Any] | None:
    return next((e for e in facts["elfs"] if e["member"] == member), None)


def _check_elf(facts: dict[str, Any], member: str, exp: dict[str, Any]) -> None:
    e = _elf(facts, member)
    assert e is not None, f"{member}: no facts (errors: {facts['errors']}, error: {facts['error']})"
    assert e["needed"] == exp["needed"], member
    needs = sorted((n["file"], tuple(sorted(v["name"] for v in n["versions"])))
                   for n in e["version_needs"])  # fmt: skip
    assert needs == exp["needs"], member


def _describe(o: Outcome) -> str:
    f = o.facts
    return (f"status={o.status} error={f.get('error')!r} errors={f.get('errors')!r} "
            f"anomalies={f.get('anomalies')!r} detail={o.detail[-1500:]}")  # fmt: skip


def check_outcome(o: Outcome, b: Built, fx: Fixtures, seconds: float = CASE_SECONDS) -> None:
    assert o.status == "ok", f"scan_wheel did not return: {_describe(o)}\n{o.stderr}"
    assert o.result_type == "WheelFacts"
    assert not o.json_error, f"facts are not JSON-serialisable: {o.json_error}"
    assert "Exception ignored" not in o.stderr, o.stderr
    assert o.seconds < seconds, f"took {o.seconds:.1f} s"
    assert o.rss_growth_kb < RSS_LIMIT_KB, f"peak RSS grew by {o.rss_growth_kb} KiB"
    f = o.facts
    for err in f["errors"]:
        assert isinstance(err["member"], str), err
        assert err["member"], err
        assert isinstance(err["message"], str), err
        assert err["message"].strip(), err
    assert f["error"] is None or (isinstance(f["error"], str) and bool(f["error"].strip()))
    ex = b.expect
    member_errs = [e["message"] for e in f["errors"] if e["member"] == ex.member]
    archive_hit = f["error"] is not None and _matches(f["error"], ex.keywords)
    member_hit = f["error"] is None and any(_matches(m, ex.keywords) for m in member_errs)
    where = _describe(o)
    if ex.where == "none":
        assert f["error"] is None, where
        assert not f["errors"], where
        _check_elf(f, BAD, fx.expected[ex.victim])
        _check_elf(f, GOOD, fx.expected["good"])
    elif ex.where == "archive":
        assert archive_hit, f"expected an archive error with one of {ex.keywords}: {where}"
    elif ex.where == "member":
        assert member_hit, f"expected a {ex.member} error with one of {ex.keywords}: {where}"
        _check_elf(f, GOOD, fx.expected["good"])
    elif ex.where == "either":
        assert archive_hit or member_hit, f"expected an error with one of {ex.keywords}: {where}"
        if member_hit:
            _check_elf(f, GOOD, fx.expected["good"])
    elif ex.where == "strings":
        assert f["error"] is None, where
        assert member_hit or _elf(f, BAD) is not None, where
        _check_elf(f, GOOD, fx.expected["good"])
    elif ex.where == "tolerated":
        if archive_hit or member_hit or (f["error"] is None and f["anomalies"]):
            if not archive_hit:
                _check_elf(f, GOOD, fx.expected["good"])
            return
        assert f["error"] is None, f"unexplained error: {where}"
        assert not f["errors"], f"unexplained error: {where}"
        _check_elf(f, BAD, fx.expected[ex.victim])
        _check_elf(f, GOOD, fx.expected["good"])
    else:
        raise AssertionError(ex.where)


# Failures found by this suite that the engine's owner has not fixed yet: (case id, engine).
_LOOP_BUG = (
    "bug: lief engine reports no error when a {} chain points outside the file (a wrapped "
    "'backward' offset); it returns the intact section-header view instead"
)
KNOWN_BUGS: dict[tuple[str, str], str] = {
    (f"elf-{chain.replace('_', '-')}-loops-back{suffix}", "lief"): _LOOP_BUG.format(chain)
    for chain in ("vn_next", "vna_next", "vd_next")
    for suffix in VARIANTS
}


def _params(ids: list[str], source: str = "") -> list[Any]:
    out = []
    for cid in ids:
        for ep in engine_params():
            engine = ep.values[0]
            marks = list(ep.marks)
            if (cid, engine) in KNOWN_BUGS:
                marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[cid, engine]))
            out.append(pytest.param(cid, engine + source, marks=marks,
                                    id=f"{cid}-{engine}{source}"))  # fmt: skip
    return out


@pytest.mark.parametrize(("cid", "engine"), _params(ALL_IDS) + _params(FILEOBJ_IDS, "-fileobj"))
def test_hostile(cid: str, engine: str, cases: dict[str, Built], outcomes: dict[str, Outcome],
                 fx: Fixtures) -> None:  # fmt: skip
    check_outcome(outcomes[f"{cid}[{engine}]"], cases[cid], fx)


@pytest.mark.parametrize(
    "cid", [pytest.param(c, marks=engine_params()[0].marks) for c in [*ALL_IDS, *ELF_STORED_IDS]]
)
def test_hostile_pread(cid: str, cases: dict[str, Built], outcomes: dict[str, Outcome],
                       fx: Fixtures) -> None:  # fmt: skip
    check_outcome(outcomes[f"{cid}[native-pread]"], cases[cid], fx)


@pytest.mark.parametrize("cid", ELF_STORED_IDS)
def test_hostile_elf_stored_fileobj(
    cid: str, cases: dict[str, Built], outcomes: dict[str, Outcome], fx: Fixtures
) -> None:
    check_outcome(outcomes[f"{cid}[native-fileobj]"], cases[cid], fx)


def test_cross_variants_built() -> None:
    """CI must not silently drop the ELF32 and big-endian variants of the ELF cases."""
    missing = sorted(cc for k, cc in _CROSS.items() if k not in VARIANTS)
    if missing and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(f"cross compilers missing: {missing} (fails under CI=true)")
    assert not missing


def test_tolerated_note_cases_keep_the_isa_level_honest(
    outcomes: dict[str, Outcome], cases: dict[str, Built]
) -> None:
    """A reader that skips a broken note must not report an ISA level it did not read: the
    victim needs x86-64-v2 (bit 1 of GNU_PROPERTY_X86_ISA_1_NEEDED, from -z x86-64-v2)."""
    for key, o in outcomes.items():
        if not key.startswith("elf-note-") or o.status != "ok":
            continue
        e = _elf(o.facts, BAD)
        if e is not None:
            assert e["x86_isa_needed"] in (None, 0x2), (key, e["x86_isa_needed"])


# ---------------------------------------------------------------------------------------------
# Zip bombs: must finish fast with bounded memory, each in a fresh process (peak RSS is per
# process).

MIB = 1 << 20


def _elf_head(dyn_offset: int) -> bytes:
    """An ELF64 header + one PT_DYNAMIC program header at ``dyn_offset`` (4 KiB, zeros)."""
    ident = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    hdr = ident + struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, 0, 0, 64, 56, 1, 64, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 2, 6, dyn_offset, dyn_offset, dyn_offset, 4096, 4096, 8)
    return hdr + ph


def _crc_zero_padded(head: bytes, total: int) -> int:
    """crc32 of ``head`` followed by zeros up to ``total`` bytes (a multiple of 1 MiB)."""
    crc = zlib.crc32(head + bytes(MIB - len(head)))
    zeros = bytes(MIB)
    for _ in range(total // MIB - 1):
        crc = zlib.crc32(zeros, crc)
    return crc


def _bomb_wheel(path: Path, fx: Fixtures, bombs: list[tuple[str, bytes, int, int]],
                method: int = 8) -> Path:  # fmt: skip
    """A ZIP whose first members are raw deflate streams given as (name, stream, declared
    size, crc), followed by good.so and an __init__.py as builders.write_zip writes them."""
    path.parent.mkdir(parents=True, exist_ok=True)
    members = [ZipMember(GOOD, fx.good, "deflate"), ZipMember("hostile/__init__.py", b"")]
    z = ZipLayout(write_zip(path, members).read_bytes())
    out = bytearray()
    central = bytearray()
    for name, stream, declared, crc in bombs:
        nb = name.encode()
        off = len(out)
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0x21, crc, len(stream),
                           declared, len(nb), 0) + nb + stream  # fmt: skip
        central += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 0x031E, 20, 0, method, 0,
                               0x21, crc, len(stream), declared, len(nb), 0, 0, 0, 0,
                               0o100755 << 16, off) + nb  # fmt: skip
    shift = len(out)
    for e in z.entries:
        entry = bytearray(z.data[e.cd_at : e.cd_at + 46 + len(e.name.encode())])
        struct.pack_into("<I", entry, 42, e.local_at + shift)
        central += entry
    out += z.data[: z.cd_offset]
    cd_off = len(out)
    out += central
    n = len(bombs) + len(z.entries)
    out += struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, n, n, len(central), cd_off, 0)
    path.write_bytes(bytes(out))
    return path


BOMB_WORDS = ("exceed", "declared", "larger", "bomb", "limit", "size", "crc", *TRUNC)
LIMIT_WORDS = ("limit", "exceed", "too large", "max_wheel_inflate")


@pytest.fixture(scope="module")
def bombs(fx: Fixtures) -> dict[str, Built]:
    d = fx.dir / "bombs"
    out: dict[str, Built] = {}
    # 1 GiB (ELF header, then zeros) deflated to ~1 MiB but declared as 10 KiB. The CRC is that
    # of the declared 10 KiB, so a reader that stops at the declared size sees a consistent lie;
    # the ELF header wants PT_DYNAMIC at 8 KiB + 4 KiB, past the declared size.
    head = _elf_head(8192)
    declared = 10 * 1024
    lie = ("hostile/bomb.so", deflate_repeat(head, 1 << 30), declared,
           zlib.crc32(head + bytes(declared - len(head))))  # fmt: skip
    out["bomb-declared-10k-inflates-1g"] = Built(
        _bomb_wheel(d / "a" / WHL, fx, [lie]), Expect("member", BOMB_WORDS, "hostile/bomb.so")
    )
    # Honest sizes, but PT_DYNAMIC at the end of 1 GiB: more than Limits(max_wheel_inflate).
    far = _elf_head((1 << 30) - 4096)
    honest = ("hostile/huge.so", deflate_repeat(far, 1 << 30), 1 << 30,
              _crc_zero_padded(far, 1 << 30))  # fmt: skip
    out["bomb-honest-1g-over-wheel-limit"] = Built(
        _bomb_wheel(d / "b" / WHL, fx, [honest]),
        Expect("member", LIMIT_WORDS, "hostile/huge.so"),
        limits={"max_wheel_inflate": 64 * MIB},
    )
    # Three members of 24 MiB with PT_DYNAMIC at their end: together past a 64 MiB cap.
    h = _elf_head(24 * MIB - 4096)
    stream, crc = deflate_repeat(h, 24 * MIB), _crc_zero_padded(h, 24 * MIB)
    parts = [(f"hostile/part{i}.so", stream, 24 * MIB, crc) for i in range(3)]
    out["bomb-members-together-over-wheel-limit"] = Built(
        _bomb_wheel(d / "c" / WHL, fx, parts),
        Expect("member", LIMIT_WORDS, "hostile/part2.so"),
        limits={"max_wheel_inflate": 64 * MIB},
    )
    # Zstandard (method 93): 256 MiB in a frame that does not record its content size,
    # declared as 10 KiB.
    zc = zstandard.ZstdCompressor(level=3, write_content_size=False).compressobj()
    parts_z = [zc.compress(head + bytes(MIB - len(head)))]
    zeros = bytes(MIB)
    parts_z += [zc.compress(zeros) for _ in range(255)]
    zbomb = b"".join([*parts_z, zc.flush()])
    zlie = ("hostile/zbomb.so", zbomb, declared, zlib.crc32(head + bytes(declared - len(head))))
    out["bomb-zstd-declared-10k-inflates-256m"] = Built(
        _bomb_wheel(d / "z" / WHL, fx, [zlie], method=93),
        Expect("member", BOMB_WORDS, "hostile/zbomb.so"),
    )
    return out


BOMB_IDS = [
    "bomb-declared-10k-inflates-1g",
    "bomb-honest-1g-over-wheel-limit",
    "bomb-members-together-over-wheel-limit",
    "bomb-zstd-declared-10k-inflates-256m",
]


def _bomb_params() -> list[Any]:
    """Every bomb per engine from a path; for native also from a file object (a different
    reader). The lief engine reads both through the same zipfile code."""
    return [
        pytest.param(cid, ep.values[0], source, marks=ep.marks,
                     id=f"{cid}-{ep.values[0]}-{source}")
        for cid in BOMB_IDS
        for ep in engine_params()
        for source in (("path", "pread", "fileobj") if ep.values[0] == "native" else ("path",))
    ]  # fmt: skip


@pytest.mark.parametrize(("cid", "engine", "source"), _bomb_params())
def test_zip_bomb(cid: str, engine: str, source: str, bombs: dict[str, Built],
                  fx: Fixtures) -> None:  # fmt: skip
    b = bombs[cid]
    limits = _pread(b) if source == "pread" else b.limits
    case = Case(cid, b.path, engine, limits, fileobj=source == "fileobj")
    o = run_cases([case], timeout=BOMB_SECONDS * 3)[cid]
    print(f"{cid} {engine} {source}: {o.seconds:.2f} s, peak RSS +{o.rss_growth_kb} KiB")
    check_outcome(o, b, fx, seconds=BOMB_SECONDS)
    if b.limits:
        inflated = sum(m["inflated"] for m in o.facts["members"])
        cap = b.limits["max_wheel_inflate"] + len(o.facts["members"]) * (256 << 10)
        assert inflated <= cap, f"inflated {inflated} bytes past the {cap} cap"


# ---------------------------------------------------------------------------------------------
# Names that point into one another: every dynamic symbol's st_name lands inside one long
# string, so each name is nearly that long. Legal ELF (the gABI lets strings share bytes), and
# a few KB of deflate: without a bound on the strings read, memory grows as symbols x length.

OVERLAP_SYMBOLS = 3000
OVERLAP_LENGTH = 100_000  # 3000 names of ~100 KB each: 300 MB unbounded


def _overlapping_names(d: Path) -> bytes:
    long = "Py" + "A" * OVERLAP_LENGTH
    calls = [f"f{i:05d}" for i in range(OVERLAP_SYMBOLS)]
    src = "\n".join([f"extern void *{n}(void *);" for n in [long, *calls]]
                    + [f"void *sink[{len(calls) + 1}];", "void go(void *o) {"]
                    + [f"  sink[{i}] = {n}(o);" for i, n in enumerate([long, *calls])]
                    + ["}", ""])
    data = bytearray(build_elf(d, "overlap.so", src, nostdlib=True).read_bytes())
    e = Elf(bytes(data))
    strtab, symtab = e.table(DT.STRTAB), e.table(DT.SYMTAB)
    at_long = bytes(data).index(long.encode(), strtab) - strtab
    moved = 0
    for i in range(1, (strtab - symtab) // 24):  # gcc puts .dynstr right after .dynsym
        (name,) = struct.unpack_from("<I", data, symtab + 24 * i)
        if data[strtab + name: strtab + name + 2] == b"f0":
            struct.pack_into("<I", data, symtab + 24 * i, at_long + 1 + moved)
            moved += 1
    assert moved == OVERLAP_SYMBOLS
    return bytes(data)


@pytest.mark.parametrize("engine", engine_params())
def test_names_pointing_into_one_another_are_bounded(fx: Fixtures, engine: str) -> None:
    d = fx.dir / f"overlap-{engine}"
    bad = _overlapping_names(d)
    path = d / WHL
    path.write_bytes(_wheel(fx, d, bad))
    assert path.stat().st_size < 100_000
    (o,) = run_cases([Case(f"overlap[{engine}]", path, engine)]).values()
    built = Built(path, Expect("member", ("overlap",)))
    if engine == "native":
        check_outcome(o, built, fx)  # within the RSS bound: no name is built past the budget
    else:  # lief has built every name before the engine sees one: only the verdict is ours
        assert o.status == "ok", _describe(o)
        (err,) = [e for e in o.facts["errors"] if e["member"] == BAD]
        assert "overlap" in err["message"], err
        _check_elf(o.facts, GOOD, fx.expected["good"])
