"""Unit tests of the native scanner's internals: the prefix ELF parser (ext/elf.pyx) and the
ZIP reader / bounded inflate (ext/zipread.pyx).

Expected values come from the fixture's own construction (ELF bytes packed with struct here,
symbols and versions chosen for gcc-built stubs), from pyelftools reading the whole file, or
from the stdlib zipfile, never from the code under test.
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
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from builders import (
    Import,
    ZipMember,
    build_elf,
    build_stub,
    compress,
    deflate_3bit_block,
    have,
    make_wheel,
    write_zip,
)
from conftest import native_engine_error, require

from wheelscan.limits import Limits

if TYPE_CHECKING:
    from collections.abc import Callable

pytestmark = pytest.mark.usefixtures("native_ready")

CHUNK = 256 << 10


@pytest.fixture(scope="session")
def native_ready() -> None:
    require(native_engine_error())


def _mods() -> tuple[Any, Any, Any]:
    from wheelscan._native import elf, zipread
    from wheelscan.read.native import scan_wheel_native

    return elf, zipread, scan_wheel_native


# ---------------------------------------------------------------------------------------------
# ELF bytes crafted with struct: every field known from construction, any class/endianness.

VADDR = 0x10000  # tables are found through PT_LOAD: make virtual addresses != file offsets
DT = {"NULL": 0, "NEEDED": 1, "HASH": 4, "STRTAB": 5, "SYMTAB": 6, "STRSZ": 10, "SYMENT": 11,
      "SONAME": 14, "RPATH": 15, "TEXTREL": 22, "RUNPATH": 29, "FLAGS": 30,
      "VERSYM": 0x6FFFFFF0, "FLAGS_1": 0x6FFFFFFB, "VERDEF": 0x6FFFFFFC,
      "VERDEFNUM": 0x6FFFFFFD, "VERNEED": 0x6FFFFFFE, "VERNEEDNUM": 0x6FFFFFFF}  # fmt: skip


@dataclass
class Crafted:
    data: bytearray
    offsets: dict[str, int]  # file offsets of the pieces, for the mutation tests
    is64: bool
    end: str

    def put(self, fmt: str, off: int, *values: int) -> None:
        struct.pack_into(self.end + fmt, self.data, off, *values)


def craft_elf(
    *,
    is64: bool = True,
    big: bool = False,
    machine: int = 62,
    isa: int | None = None,
    tail: int = 0,
    gap: bytes = b"",
) -> Crafted:
    """A shared object: libc.so.6 needed with GLIBC_2.14 (memcpy) and weak GLIBC_2.2 (sigx),
    one unversioned weak import (wfn), exports foo (LIBFOO_1), _ZNSt3fooE and a hidden
    _ZNSt3barE; a Verdef chain (libfoo.so.1 base, LIBFOO_1); DT_HASH; ``tail`` zero bytes after
    the dynamic section (data the early stop must never inflate)."""
    e = ">" if big else "<"
    w = "Q" if is64 else "I"
    strs = [
        b"",
        b"libc.so.6",
        b"GLIBC_2.14",
        b"GLIBC_2.2",
        b"memcpy",
        b"sigx",
        b"wfn",
        b"foo",
        b"_ZNSt3fooE",
        b"_ZNSt3barE",
        b"libfoo.so.1",
        b"LIBFOO_1",
        b"$ORIGIN:/x",
    ]
    dynstr = b"\0".join(strs) + b"\0"
    so = {s: dynstr.index(b"\0" + s + b"\0") + 1 for s in strs if s}
    ehsize, phent = (64, 56) if is64 else (52, 32)
    nph = 4 if isa is not None else 3
    off = ehsize + nph * phent
    offs: dict[str, int] = {}
    body = bytearray()

    def place(name: str, blob: bytes, align: int = 8) -> int:
        nonlocal body
        while (off + len(body)) % align:
            body += b"\0"
        offs[name] = off + len(body)
        body += blob
        return offs[name]

    if isa is not None:
        prop = struct.pack(e + "III", 0xC0008002, 4, isa) + b"\0" * (4 if is64 else 0)
        note = struct.pack(e + "III", 4, len(prop), 5) + b"GNU\0" + prop
        place("note", note)
    place("dynstr", dynstr)
    # symbols: (name, info, other, shndx)
    syms = [(0, 0, 0, 0), (so[b"memcpy"], 0x12, 0, 0), (so[b"sigx"], 0x22, 0, 0),
            (so[b"wfn"], 0x22, 0, 0), (so[b"foo"], 0x12, 0, 7), (so[b"_ZNSt3fooE"], 0x11, 0, 7),
            (so[b"_ZNSt3barE"], 0x11, 2, 7)]  # fmt: skip
    if is64:
        dynsym = b"".join(struct.pack(e + "IBBHQQ", n, i, o, s, 0, 0) for n, i, o, s in syms)
    else:
        dynsym = b"".join(struct.pack(e + "IIIBBH", n, 0, 0, i, o, s) for n, i, o, s in syms)
    place("dynsym", dynsym)
    nsym = len(syms)
    place("hash", struct.pack(e + "II", 1, nsym) + struct.pack(e + "I", 0) * (1 + nsym), 4)
    place("versym", struct.pack(e + "7H", 0, 2, 3, 0, 4, 1, 1), 2)
    aux1 = struct.pack(e + "IHHII", 0, 0, 2, so[b"GLIBC_2.14"], 16)
    aux2 = struct.pack(e + "IHHII", 0, 2, 3, so[b"GLIBC_2.2"], 0)  # VER_FLG_WEAK
    place("verneed", struct.pack(e + "HHIII", 1, 2, so[b"libc.so.6"], 16, 0) + aux1 + aux2, 4)
    vd1 = struct.pack(e + "HHHHIII", 1, 1, 1, 1, 0, 20, 28) + struct.pack(
        e + "II", so[b"libfoo.so.1"], 0
    )
    vd2 = struct.pack(e + "HHHHIII", 1, 0, 4, 1, 0, 20, 0) + struct.pack(
        e + "II", so[b"LIBFOO_1"], 0
    )
    place("verdef", vd1 + vd2, 4)
    if gap:
        place("gap", gap)  # code and data a loader-style reader skips over
    va = {k: v + VADDR for k, v in offs.items()}
    dyn = [("NEEDED", so[b"libc.so.6"]), ("SONAME", so[b"libfoo.so.1"]),
           ("RUNPATH", so[b"$ORIGIN:/x"]), ("STRTAB", va["dynstr"]), ("STRSZ", len(dynstr)),
           ("SYMTAB", va["dynsym"]), ("SYMENT", 24 if is64 else 16), ("HASH", va["hash"]),
           ("VERSYM", va["versym"]), ("VERNEED", va["verneed"]), ("VERNEEDNUM", 1),
           ("VERDEF", va["verdef"]), ("VERDEFNUM", 2), ("FLAGS", 0x4), ("FLAGS_1", 0x8),
           ("NULL", 0)]  # fmt: skip
    place("dynamic", b"".join(struct.pack(e + w + w, DT[t], v) for t, v in dyn))
    body += b"\0" * tail
    total = off + len(body)
    # program headers: PT_LOAD (whole file at VADDR), PT_DYNAMIC, PT_GNU_STACK (RW), PT_NOTE
    dyn_off = offs["dynamic"]
    dyn_size = 2 * (8 if is64 else 4) * len(dyn)
    phs = [(1, 5, 0, VADDR, total, total), (2, 6, dyn_off, VADDR + dyn_off, dyn_size, dyn_size),
           (0x6474E551, 6, 0, 0, 0, 0)]  # fmt: skip
    if isa is not None:
        phs.append((4, 4, offs["note"], VADDR + offs["note"], 16 + len(prop), 16 + len(prop)))
    ph = b""
    for t, fl, o, v, fs, ms in phs:
        if is64:
            ph += struct.pack(e + "IIQQQQQQ", t, fl, o, v, v, fs, ms, 8)
        else:
            ph += struct.pack(e + "IIIIIIII", t, o, v, v, fs, ms, fl, 8)
    ident = b"\x7fELF" + bytes([2 if is64 else 1, 2 if big else 1, 1, 0]) + b"\0" * 8
    # e_type ET_DYN, e_machine, e_version 1, e_entry 0, e_phoff (right after the header),
    # e_shoff 0, e_flags (ARM EABI5 hard-float), e_ehsize, e_phentsize, e_phnum, e_shentsize,
    # e_shnum 0, e_shstrndx 0
    fmt = "HHIQQQIHHHHHH" if is64 else "HHIIIIIHHHHHH"
    hdr = ident + struct.pack(e + fmt, 3, machine, 1, 0, ehsize, 0, 0x5000_0400, ehsize, phent,
                              nph, 64 if is64 else 40, 0, 0)  # fmt: skip
    data = bytearray(hdr + ph + body)
    assert len(data) == total
    offs["phdrs"] = ehsize
    return Crafted(data, offs, is64, e)


@pytest.mark.parametrize(
    ("is64", "big"),
    [(True, False), (False, False), (True, True), (False, True)],
    ids=["64le", "32le", "64be", "32be"],
)
def test_crafted_elf_facts_from_construction(is64: bool, big: bool) -> None:
    elf, _, _ = _mods()
    c = craft_elf(is64=is64, big=big)
    f = elf.parse(bytes(c.data), len(c.data), "m.so")
    assert (f.member, f.elf_class, f.endian) == (
        "m.so",
        64 if is64 else 32,
        "big" if big else "little",
    )
    assert (f.e_type, f.machine, f.e_flags, f.osabi) == (3, 62, 0x5000_0400, 0)
    assert f.has_dynamic
    assert f.interpreter is None
    assert f.needed == ["libc.so.6"]
    assert f.soname == "libfoo.so.1"
    assert f.runpath == ["$ORIGIN", "/x"]
    assert f.rpath == []
    assert (f.dt_flags, f.dt_flags_1, f.textrel) == (4, 8, True)
    assert f.stack == "noexec"
    assert f.symbol_count == 7
    assert [(n.file, [(v.name, v.weak) for v in n.versions]) for n in f.version_needs] == [
        ("libc.so.6", [("GLIBC_2.14", False), ("GLIBC_2.2", True)])
    ]
    assert f.version_defs == ["libfoo.so.1", "LIBFOO_1"]
    groups = [(g.library, g.version, g.count, g.names, g.weak_count) for g in f.imports]
    assert groups == [
        (None, None, 1, ["wfn"], 1),
        ("libc.so.6", "GLIBC_2.14", 1, ["memcpy"], 0),
        ("libc.so.6", "GLIBC_2.2", 1, ["sigx"], 1),
    ]
    assert f.export_count == 3
    # _ZNSt3barE is hidden (STV_HIDDEN): not a runtime export
    assert (f.runtime_exports, f.runtime_export_count) == (["_ZNSt3fooE"], 1)
    assert f.x86_isa_needed is None


@pytest.mark.parametrize(("is64", "machine", "isa", "expect"), [
    (True, 62, 0x5, 0x5), (False, 3, 0x3, 0x3), (True, 183, 0x5, None)],
    ids=["x86_64", "i386", "aarch64-ignored"])  # fmt: skip
def test_x86_isa_note(is64: bool, machine: int, isa: int, expect: int | None) -> None:
    elf, _, _ = _mods()
    c = craft_elf(is64=is64, machine=machine, isa=isa)
    assert elf.parse(bytes(c.data), len(c.data)).x86_isa_needed == expect


def _converge(parse: Callable[..., Any], data: bytes) -> tuple[Any, list[int]]:
    """Run the prefix protocol, inflating exactly what the parser asks for each time."""
    have = 64
    asked = []
    while True:
        r = parse(data[:have], len(data))
        if not isinstance(r, int):
            return r, asked
        assert r > have, f"asked for {r} bytes with {have} present"
        asked.append(r)
        have = r


def test_prefix_protocol_stops_at_the_dynamic_tables() -> None:
    elf, _, _ = _mods()
    c = craft_elf(tail=100_000)
    full = elf.parse(bytes(c.data), len(c.data))
    got, asked = _converge(elf.parse, bytes(c.data))
    assert got == full
    dyn_end = c.offsets["dynamic"] + 16 * 16
    assert max(asked) == dyn_end  # by construction the dynamic section is the last table
    assert len(asked) <= 4


def _converge_sparse(parse: Callable[..., Any], data: bytes) -> tuple[Any, list[tuple[int, int]]]:
    """Run the sparse protocol: a zeroed buffer of the file's size, filled with exactly the
    ranges the parser asks for. Returns the result and every range copied."""
    buf = bytearray(len(data))
    present = [(0, 64)]
    buf[:64] = data[:64]
    copied: list[tuple[int, int]] = []
    for _ in range(64):
        r = parse(buf, len(data), "x", present)
        if not isinstance(r, list):
            return r, copied
        assert r, "asked for nothing"
        for s, e in r:
            assert 0 <= s < e <= len(data), (s, e)
            # every range asked for is missing (not inside one range already present)
            assert not any(ps <= s and e <= pe for ps, pe in present), ((s, e), present)
            buf[s:e] = data[s:e]
            copied.append((s, e))
        present = sorted(present + r)
    raise AssertionError("the sparse protocol did not converge in 64 rounds")


def _union(ranges: list[tuple[int, int]]) -> int:
    covered: set[int] = set()
    for s, e in ranges:
        covered.update(range(s, e))
    return len(covered)


@pytest.mark.parametrize(("is64", "big"), [(a, b) for a in (True, False) for b in (False, True)])
def test_sparse_protocol_reads_only_the_tables(is64: bool, big: bool) -> None:
    """A gap of 600 KiB between the tables and PT_DYNAMIC (as .text sits in a real library):
    the prefix protocol must read across it, the sparse one reads the tables alone, and both
    give the facts of the whole file."""
    elf, _, _ = _mods()
    c = craft_elf(is64=is64, big=big, gap=os.urandom(600 << 10), tail=100_000)
    data = bytes(c.data)
    full = elf.parse(data, len(data), "x")
    got, copied = _converge_sparse(elf.parse, data)
    assert got == full
    _, asked = _converge(lambda d, t: elf.parse(d, t, "x"), data)
    assert max(asked) >= 600 << 10  # the prefix reaches past the gap
    assert _union(copied) < 8192, copied  # header, program headers, tables, dynamic section
    dyn = c.offsets["dynamic"]
    assert any(s <= dyn < e for s, e in copied)


def test_sparse_protocol_on_gcc_built_libraries(built: dict[str, Built]) -> None:
    elf, _, _ = _mods()
    for arch, b in built.items():
        full = elf.parse(b.data, len(b.data), "x")
        got, copied = _converge_sparse(elf.parse, b.data)
        assert got == full, arch
        assert _union(copied) <= b.needed_prefix, arch


def test_sparse_protocol_rejects_a_short_buffer() -> None:
    elf, _, _ = _mods()
    data = bytes(craft_elf().data)
    with pytest.raises(ValueError, match="sparse parse"):
        elf.parse(data[:100], len(data), "x", [(0, 64)])


def test_need_past_end_of_file_is_an_error() -> None:
    elf, _, _ = _mods()
    from wheelscan.errors import ElfError

    c = craft_elf()
    data = bytes(c.data)
    with pytest.raises(ElfError, match=r"PT_DYNAMIC .* past end of file"):
        _converge(elf.parse, data[: c.offsets["dynamic"] + 10])
    with pytest.raises(ElfError, match=r"ELF header .* past end of file"):
        elf.parse(data[:40], 40)
    with pytest.raises(ElfError, match="bad magic"):
        elf.parse(b"\x7fELG" + data[4:], len(data))


def _mutated(mutate: Callable[[Crafted], None], is64: bool = True) -> bytes:
    c = craft_elf(is64=is64)
    mutate(c)
    return bytes(c.data)


def _dyn_entry(c: Crafted, tag: str) -> int:
    """File offset of the d_val of the first dynamic entry with ``tag``."""
    w = 8 if c.is64 else 4
    pos = c.offsets["dynamic"]
    while True:
        t = struct.unpack_from(c.end + ("Q" if c.is64 else "I"), c.data, pos)[0]
        if t == DT[tag]:
            return pos + w
        assert t != 0, tag
        pos += 2 * w


HOSTILE: dict[str, tuple[Callable[[Crafted], None], str]] = {
    "vn-next-loops": (lambda c: c.put("I", c.offsets["verneed"] + 12, 8),
                      r"verneed chain loops at offset 0x[0-9a-f]+"),
    "vna-next-loops": (lambda c: c.put("I", c.offsets["verneed"] + 16 + 12, 4),
                       r"vernaux chain loops"),
    "vd-next-loops": (lambda c: c.put("I", c.offsets["verdef"] + 16, 1),
                      r"verdef chain loops"),
    "needed-outside-dynstr": (lambda c: c.put("Q", _dyn_entry(c, "NEEDED"), 0x7FFF_FFFF),
                              r"DT_NEEDED string offset 0x7fffffff outside dynstr"),
    "strtab-unmapped": (lambda c: c.put("Q", _dyn_entry(c, "STRTAB"), 0x9_0000_0000),
                        r"DT_STRTAB address 0x900000000 not in any PT_LOAD"),
    "strsz-past-end": (lambda c: c.put("Q", _dyn_entry(c, "STRSZ"), 1 << 40),
                       r"dynstr .* past end of file"),
    "nchain-huge": (lambda c: c.put("I", c.offsets["hash"] + 4, 0xFFFF_FFFF),
                    r"dynamic symbols cannot fit|dynsym .* past end"),
    "phnum-past-end": (lambda c: c.put("H", 56, 0xFFFF), r"program headers .* past end"),
    "phentsize-small": (lambda c: c.put("H", 54, 8), r"e_phentsize 8 too small"),
    "syment-small": (lambda c: c.put("Q", _dyn_entry(c, "SYMENT"), 4), r"DT_SYMENT 4 too small"),
    "unterminated-string": (lambda c: c.put("Q", _dyn_entry(c, "STRSZ"), 5),
                            r"not terminated|outside dynstr"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(HOSTILE), ids=list(HOSTILE))
def test_hostile_elf_errors_name_the_problem(case: str) -> None:
    elf, _, _ = _mods()
    from wheelscan.errors import ElfError

    mutate, pattern = HOSTILE[case]
    data = _mutated(mutate)
    with pytest.raises(ElfError, match=pattern):
        # every prefix length the parser asks for is served, up to the whole file
        _converge(elf.parse, data)


# ---------------------------------------------------------------------------------------------
# gcc-built binaries, checked against pyelftools reading the whole file


@dataclass
class Built:
    path: Path
    data: bytes
    needed_prefix: int  # computed from section headers by pyelftools, not by the native code


def _needed_prefix(path: Path) -> int:
    """End of PT_DYNAMIC/PT_INTERP and of every dynamic table (sections give exact extents)."""
    from elftools.elf.elffile import ELFFile

    with path.open("rb") as fh:
        ef = ELFFile(fh)
        end = 0
        for seg in ef.iter_segments():
            if seg["p_type"] in ("PT_DYNAMIC", "PT_INTERP") or (
                seg["p_type"] in ("PT_NOTE", "PT_GNU_PROPERTY")
                and ef["e_machine"] in ("EM_X86_64", "EM_386")
            ):
                end = max(end, seg["p_offset"] + seg["p_filesz"])
        for sec in ef.iter_sections():
            if (
                sec["sh_type"]
                in (
                    "SHT_DYNSYM",
                    "SHT_STRTAB",
                    "SHT_GNU_versym",
                    "SHT_GNU_verneed",
                    "SHT_GNU_verdef",
                    "SHT_GNU_HASH",
                    "SHT_HASH",
                    "SHT_RELA",
                    "SHT_REL",
                )
                and sec["sh_flags"] & 2
            ):
                end = max(end, sec["sh_offset"] + sec["sh_size"])
        return end


def _elftools_imports(path: Path) -> dict[tuple[str | None, str | None], list[str]]:
    from elftools.elf.elffile import ELFFile
    from elftools.elf.gnuversions import GNUVerNeedSection

    with path.open("rb") as fh:
        ef = ELFFile(fh)
        vmap: dict[int, tuple[str, str]] = {}
        for sec in ef.iter_sections():
            if isinstance(sec, GNUVerNeedSection):
                for vn, auxes in sec.iter_versions():
                    for aux in auxes:
                        vmap[aux["vna_other"]] = (vn.name, aux.name)
        dynsym = ef.get_section_by_name(".dynsym")
        versym = ef.get_section_by_name(".gnu.version")
        out: dict[tuple[str | None, str | None], list[str]] = {}
        for i, sym in enumerate(dynsym.iter_symbols()):
            if i == 0 or sym["st_shndx"] != "SHN_UNDEF":
                continue
            key: tuple[str | None, str | None] = (None, None)
            if versym is not None:
                idx = versym.get_symbol(i)["ndx"]
                if isinstance(idx, int):
                    key = vmap.get(idx & 0x7FFF, (None, None))
            out.setdefault(key, []).append(sym.name)
        return {k: sorted(v) for k, v in out.items()}


BIG_DATA = 2 << 20


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    out = tmp_path_factory.mktemp("native_unit")
    libc = build_stub(out, "libc.so.6", {"GLIBC_2.2.5": ["puts"], "GLIBC_2.14": ["memcpy"],
                                         "GLIBC_2.28": ["fcntl64"]})  # fmt: skip
    m = build_stub(out, "libm.so.6", {"GLIBC_2.29": ["exp"]}, unversioned=["lgamma"])
    imports = [Import("puts", libc), Import("memcpy", libc), Import("fcntl64", libc, weak=True),
               Import("exp", m), Import("lgamma", m)]  # fmt: skip
    res = {}
    res["x86_64"] = build_elf(
        out, "libbig.so", imports=imports, soname="libbig.so.1", rpath="$ORIGIN/lib"
    )
    # an incompressible non-alloc section, placed after every table: the early stop must
    # neither inflate it nor read its compressed bytes
    blob = out / "blob.bin"
    blob.write_bytes(os.urandom(BIG_DATA))
    subprocess.run(
        ["objcopy", "--add-section", f".wheelscan_blob={blob}", str(res["x86_64"])], check=True
    )
    for arch, cc in (("i686", "i686-linux-gnu-gcc"), ("s390x", "s390x-linux-gnu-gcc")):
        if have(cc):
            lc = build_stub(
                out / arch, "libc.so.6", {"GLIBC_2.0": ["puts"], "GLIBC_2.14": ["memcpy"]}, cc=cc
            )
            res[arch] = build_elf(
                out / arch,
                "libx.so",
                imports=[Import("puts", lc), Import("memcpy", lc, weak=True)],
                cc=cc,
            )
    return {k: Built(p, p.read_bytes(), _needed_prefix(p)) for k, p in res.items()}


@pytest.mark.parametrize("arch", ["x86_64", "i686", "s390x"])
def test_gcc_elf_against_pyelftools(built: dict[str, Built], arch: str) -> None:
    elf, _, _ = _mods()
    if arch not in built:
        require(f"cross compiler for {arch} not installed")
    b = built[arch]
    f = elf.parse(b.data, len(b.data), "x")
    from elftools.elf.elffile import ELFFile

    with b.path.open("rb") as fh:
        ef = ELFFile(fh)
        dyn = ef.get_section_by_name(".dynamic")
        tags = list(dyn.iter_tags())
        assert f.needed == [t.needed for t in tags if t.entry.d_tag == "DT_NEEDED"]
        assert f.elf_class == ef.elfclass
        assert f.endian == ("little" if ef.little_endian else "big")
        assert f.symbol_count == ef.get_section_by_name(".dynsym").num_symbols()
    got = {(g.library, g.version): g.names for g in f.imports}
    assert got == _elftools_imports(b.path)


@pytest.mark.parametrize("arch", ["x86_64", "i686", "s390x"])
def test_parse_succeeds_at_the_independent_needed_prefix(
    built: dict[str, Built], arch: str
) -> None:
    elf, _, _ = _mods()
    if arch not in built:
        require(f"cross compiler for {arch} not installed")
    b = built[arch]
    full = elf.parse(b.data, len(b.data), "x")
    assert elf.parse(b.data[: b.needed_prefix], len(b.data), "x") == full
    got, asked = _converge(lambda d, t: elf.parse(d, t, "x"), b.data)
    assert got == full
    assert max(asked) <= b.needed_prefix


@pytest.mark.parametrize("method", ["deflate", "zstd", "stored"])
def test_early_stop_inflates_needed_prefix_plus_one_chunk(
    built: dict[str, Built], tmp_path: Path, method: str
) -> None:
    _, zipread, scan = _mods()
    b = built["x86_64"]
    assert len(b.data) > b.needed_prefix + BIG_DATA // 2  # the fixture has a tail to skip
    w = make_wheel(
        tmp_path,
        "big-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"big/libbig.so": b.path},
        method=method,
    )
    for inflater in zipread.INFLATERS if method == "deflate" else (None,):
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
    _, zipread, scan = _mods()
    assert "zlib" in zipread.INFLATERS
    assert zipread.inflater in zipread.INFLATERS
    w = make_wheel(
        tmp_path,
        "big-1.0-cp311-cp311-manylinux_2_28_x86_64.whl",
        {"big/libbig.so": built["x86_64"].path},
    )
    results = [scan(w, inflater=i).elfs for i in zipread.INFLATERS]
    assert all(r == results[0] for r in results)
    for name in zipread.INFLATERS:
        out = subprocess.run(
            [
                sys.executable,
                "-c",
                "from wheelscan._native import zipread; print(zipread.inflater)",
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
    _, _, scan = _mods()
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
    _, _, scan = _mods()

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
    _, _, scan = _mods()
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

    _, zipread, _ = _mods()
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

    _, zipread, _ = _mods()
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
    _, zipread, _ = _mods()
    a = zipread.Archive(path)
    try:
        a.read_directory()
        return [(n, m, cs, s, c) for n, m, _f, cs, s, _o, c in a.entries]
    finally:
        a.close()


@pytest.mark.parametrize("zip64", [False, True], ids=["zip32", "zip64"])
def test_central_directory_matches_zipfile(tmp_path: Path, zip64: bool) -> None:
    import zipfile

    _, zipread, _ = _mods()
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
    _, zipread, _ = _mods()
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
    _, _, scan = _mods()
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
    _, zipread, _ = _mods()
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

    _, zipread, _ = _mods()
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
    _, zipread, _ = _mods()
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
    _, zipread, _ = _mods()
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
    _, zipread, scan = _mods()
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
    _, zipread, _ = _mods()
    p = write_zip(tmp_path / "a.zip", [ZipMember("a.txt", b"x")])
    a = zipread.Archive(p)
    with pytest.raises(RuntimeError, match="initialised once"):
        a.__init__(p)
    assert a.read_directory() == 1
    a.close()


def test_data_descriptor_flag_uses_central_sizes(built: dict[str, Built], tmp_path: Path) -> None:
    _, _, scan = _mods()
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
    _, _, scan = _mods()
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
    _, zipread, scan = _mods()
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
        _with_member_stream(tmp_path / "t3.zip", stream[: len(stream) // 2], 100_000)
    )
    a.read_directory()
    with pytest.raises(InflateError, match="truncated"):
        a.read_member(0, 1 << 20)
    a.close()


def _with_member_stream(path: Path, stream: bytes, size: int) -> Path:
    """A one-member ZIP whose deflate data is ``stream`` (declared uncompressed ``size``), with
    the CRC-32 of the first ``size`` bytes zlib inflates from it (0 if zlib refuses it)."""
    name = b"t.bin"
    try:
        crc = zlib.crc32(zlib.decompressobj(-15).decompress(stream, size))
    except zlib.error:
        crc = 0
    local = (
        struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, 8, 0, 0, crc, len(stream), size,
                    len(name), 0)
        + name
        + stream
    )
    cd = (
        struct.pack(
            "<IHHHHHHIIIHHHHHII",
            0x02014B50,
            20,
            20,
            0,
            8,
            0,
            0,
            crc,
            len(stream),
            size,
            len(name),
            0,
            0,
            0,
            0,
            0,
            0,
        )
        + name
    )
    eocd = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 1, 1, len(cd), len(local), 0)
    path.write_bytes(local + cd + eocd)
    return path


def test_not_a_zip_sets_wheel_error(tmp_path: Path) -> None:
    _, _, scan = _mods()
    for i, blob in enumerate([b"", b"PK", b"x" * 5000, b"PK\x05\x06" + b"\0" * 10]):
        p = tmp_path / f"n{i}-1.0-py3-none-any.whl"
        p.write_bytes(blob)
        f = scan(p)
        assert f.error, blob[:8]
        assert "ZipFormatError" in f.error, (blob[:8], f.error)
        assert f.size == len(blob)


def test_zip64_sizes_near_2_64_are_member_errors(tmp_path: Path) -> None:
    _, _, scan = _mods()
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


class Counting(io.BytesIO):
    """An in-memory file object that counts the bytes read from it."""

    consumed = 0

    def read(self, n: int | None = -1) -> bytes:
        out = super().read(n)
        self.consumed += len(out)
        return out


def test_file_object_peek_reads_a_few_kib(tmp_path: Path) -> None:
    _, _, scan = _mods()

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
    _, _, scan = _mods()
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
    _, _, scan = _mods()

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
    elf, zipread, scan = _mods()
    # 600 KiB of incompressible bytes between the tables and PT_DYNAMIC, 1 MiB after it
    c = craft_elf(gap=os.urandom(600 << 10), tail=1 << 20)
    so = tmp_path / "libgap.so"
    so.write_bytes(bytes(c.data))
    expect = elf.parse(bytes(c.data), len(c.data), "g/libgap.so")
    needed = c.offsets["dynamic"] + 16 * 16
    w = make_wheel(tmp_path, "g-1.0-cp311-cp311-linux_x86_64.whl", {"g/libgap.so": so})
    for name in zipread.INFLATERS:
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
            assert usize < zipread.AUTO_ZNG_RATIO * csize
        assert a.last_inflater == ("libisal" if name == "auto" else name)
        a.close()


# -- regressions from the review of the sparse reader ----------------------------------------


def _mini_elf(
    dyn: list[tuple[int, int]],
    *,
    blobs: tuple[tuple[int, bytes], ...] = (),
    size: int = 0x1000,
    notes: tuple[tuple[int, int], ...] = (),
    shdr: tuple[int, int] = (0, 0),
) -> bytes:
    """An ELF64 LE ET_DYN of ``size`` bytes: one PT_LOAD mapping it at address 0, PT_DYNAMIC
    at 0x100 holding ``dyn`` (tag, value) pairs, PT_NOTEs at (offset, size), ``blobs`` placed
    at their offsets and the section header table at ``shdr`` (offset, count)."""
    buf = bytearray(size)
    dyn_size = 16 * len(dyn) + 16
    phs = [(1, 5, 0, 0, 0, size, size, 0x1000), (2, 6, 0x100, 0x100, 0x100, dyn_size, dyn_size, 8)]
    phs += [(4, 4, off, off, off, n, n, 4) for off, n in notes]
    hdr = struct.pack("<HHIQQQIHHHHHH", 3, 62, 1, 0, 64, shdr[0], 0, 64, 56, len(phs), 64,
                      shdr[1], 0)  # fmt: skip
    buf[:64] = b"\x7fELF" + bytes([2, 1, 1, 0]) + bytes(8) + hdr
    for i, ph in enumerate(phs):
        struct.pack_into("<IIQQQQQQ", buf, 64 + 56 * i, *ph)
    for i, (tag, val) in enumerate(dyn):
        struct.pack_into("<qQ", buf, 0x100 + 16 * i, tag, val)
    for off, blob in blobs:
        buf[off : off + len(blob)] = blob
    return bytes(buf)


def _stored_wheel(tmp_path: Path, data: bytes) -> Path:
    so = tmp_path / "libr.so"
    so.write_bytes(data)
    return make_wheel(tmp_path, "r-1.0-cp311-cp311-linux_x86_64.whl", {"r/libr.so": so},
                      method="stored")  # fmt: skip


def test_strsz_without_strtab_is_an_error_not_a_crash(tmp_path: Path) -> None:
    """DT_STRSZ of 2**62 and no DT_STRTAB: symbol names must not be read through an unchecked
    string table (this crashed the interpreter). In a child process, so a crash is a failure."""
    hash_ = struct.pack("<IIII", 1, 2, 0, 0)  # DT_HASH: 1 bucket, nchain 2
    sym = bytes(24) + struct.pack("<IBBHQQ", 0x7FFFFFF0, 0x12, 0, 0, 0, 0)
    data = _mini_elf([(4, 0x200), (6, 0x240), (11, 24), (10, 1 << 62)],
                     blobs=((0x200, hash_), (0x240, sym)))  # fmt: skip
    p = tmp_path / "libr.so"
    p.write_bytes(data)
    code = (
        "import sys\nfrom wheelscan._native import elf\nfrom wheelscan.errors import ElfError\n"
        f"data = open({str(p)!r}, 'rb').read()\n"
        "try:\n    elf.parse(data, len(data), 'r')\nexcept ElfError as e:\n    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=False)  # fmt: skip
    assert out.returncode == 0, (out.returncode, out.stderr)
    assert "outside dynstr" in out.stdout


def test_empty_range_at_end_of_file_needs_nothing(tmp_path: Path) -> None:
    """A PT_NOTE of 0 bytes at offset == file size: both readers parse it (the sparse one
    used to ask for the empty range until it ran out of rounds)."""
    _, _, scan = _mods()
    data = _mini_elf([], notes=((0x1000, 0),))
    w = _stored_wheel(tmp_path, data)
    for f in (scan(w), scan(Counting(w.read_bytes()), filename=w.name)):
        assert f.error is None, f
        assert not f.errors, f.errors
        assert len(f.elfs) == 1


def test_section_headers_never_change_the_facts(tmp_path: Path) -> None:
    """A SHT_DYNSYM larger than the hash table's count: a small file's first prefix reaches the
    section headers, a sparse read never does; the facts must not depend on that."""
    _, _, scan = _mods()
    strtab = b"\0memcpy\0hidden_import\0"
    syms = bytes(24) + b"".join(struct.pack("<IBBHQQ", n, 0x12, 0, 0, 0, 0) for n in (1, 8))
    sh = bytes(64) + struct.pack("<IIQQQQIIQQ", 0, 11, 2, 0x240, 0x240, 3 * 24, 0, 0, 8, 24)
    data = _mini_elf(
        [(4, 0x200), (6, 0x240), (11, 24), (5, 0x300), (10, len(strtab))],
        blobs=((0x200, struct.pack("<IIII", 1, 2, 0, 0)), (0x240, syms), (0x300, strtab),
               (0xF00, sh)),
        shdr=(0xF00, 2),
    )  # fmt: skip
    w = _stored_wheel(tmp_path, data)
    from_path = scan(w)
    from_file = scan(Counting(w.read_bytes()), filename=w.name)
    assert from_path.elfs == from_file.elfs
    [ef] = from_path.elfs
    assert ef.symbol_count == 2  # the hash table's count
    assert [g.names for g in ef.imports] == [["memcpy"]]


@pytest.mark.parametrize("inflater", ["zlib", "zlib-ng", "isal", "libisal", "libz-ng", "auto"])
def test_every_inflater_bounds_and_rejects_bad_streams(tmp_path: Path, inflater: str) -> None:
    """A size that lies (zip bomb), a truncated stream and a corrupt one give the same clear
    errors whichever deflate implementation reads the member (ISA-L's C API included)."""
    _, zipread, _ = _mods()
    if inflater not in zipread.INFLATERS:  # skips on a dev box, fails under CI=true
        hint = {"libisal": f" ({zipread.LIBISAL_ERROR})", "libz-ng": f" ({zipread.LIBZNG_ERROR})",
                "auto": f" ({zipread.LIBISAL_ERROR or zipread.LIBZNG_ERROR})"}.get(inflater, "")
        require(f"inflater {inflater} not in this build{hint}")
    from wheelscan.errors import InflateError, LimitExceeded

    def member(path: Path, data: bytes, declared: int) -> Any:
        a = zipread.Archive(_with_member_stream(path, data, declared), inflater=inflater)
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
    _, zipread, scan = _mods()
    from wheelscan.errors import InflateError

    assert zlib.decompressobj(-15).decompress(deflate_3bit_block(content, complete=True)) == content
    bad = deflate_3bit_block(content, complete=False)
    with pytest.raises(zlib.error, match="invalid literal/lengths set"):
        zlib.decompressobj(-15).decompress(bad)
    # declared 64 bytes: under auto the member goes to ISA-L (it inflates < 4.5x)
    w = _with_member_stream(tmp_path / "w.zip", bad, 64)
    for inflater in zipread.INFLATERS:
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
    w = _with_member_stream(tmp_path / "whole.zip", bad, len(content))
    for inflater in zipread.INFLATERS:
        a = zipread.Archive(w, inflater=inflater)
        a.read_directory()
        with pytest.raises(InflateError, match=r"invalid literal/lengths set|CRC-32 of the"):
            a.read_member(0, 1 << 20)
        a.close()


def test_a_member_read_whole_must_match_its_crc(tmp_path: Path) -> None:
    """The WHEEL file is read whole: a CRC-32 that does not match its bytes (a corrupt stream
    an inflater accepted, or bytes changed in a stored member) is an error for that member,
    as zipfile makes it, and the wheel's tags are not taken from it."""
    _, zipread, scan = _mods()
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
        for inflater in (None, *zipread.INFLATERS):
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
    elf, zipread, _ = _mods()
    from wheelscan.errors import InflateError

    def archive(name: str, stream: bytes, declared: int, inflater: str) -> Any:
        a = zipread.Archive(_with_member_stream(tmp_path / name, stream, declared),
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
    for inflater in zipread.INFLATERS:
        assert archive("w.zip", short, 1, inflater).read_member(0, 1 << 20) == want, inflater
        a = archive("e.zip", bad_tail, len(data) + 100_000, inflater)
        assert a.scan_elf(0, "lib.so") == expect, inflater
        with pytest.raises(InflateError, match="corrupt deflate stream"):
            a.read_member(0, 1 << 20)  # the whole member: now the bad block is needed
        a.close()


def test_chunks_beyond_32_bits_count_only_what_was_written(tmp_path: Path) -> None:
    """zlib's and ISA-L's output counters are 32-bit: a chunk_size of 4 GiB or more must not
    make the reader count bytes it never wrote (and then parse stale buffer contents)."""
    _, zipread, _ = _mods()
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
    for inflater in zipread.INFLATERS:
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
    _, zipread, _ = _mods()
    from wheelscan.errors import LimitExceeded

    data = os.urandom(30_000)
    c = zlib.compressobj(6, zlib.DEFLATED, -15)
    stream = c.compress(data + bytes(extra)) + c.flush(zlib.Z_FULL_FLUSH) + b"\x07" + bytes(64)
    path = _with_member_stream(tmp_path / "lie.zip", stream, len(data))
    for inflater in zipread.INFLATERS:
        a = zipread.Archive(path, inflater=inflater)
        a.read_directory()
        with pytest.raises(LimitExceeded, match=f"beyond its declared size of {len(data)}"):
            a.read_member(0, 1 << 20)
        a.close()
