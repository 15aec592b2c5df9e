"""The prefix ELF parser (ext/elf.pyx): crafted and gcc-built binaries, the prefix and sparse
protocols, hostile tables.

Expected values come from the fixture's own construction (ELF bytes packed with struct, symbols
and versions chosen for gcc-built stubs), from pyelftools reading the whole file, or from the
stdlib zipfile, never from the code under test.
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from conftest import require
from helpers.builders import (
    make_wheel,
)

if TYPE_CHECKING:
    from collections.abc import Callable

from helpers.native import (
    DT,
    Built,
    Counting,
    Crafted,
    craft_elf,
    elftools_imports,
    native_modules,
)

pytestmark = pytest.mark.usefixtures("native_ready")

@pytest.mark.parametrize(
    ("is64", "big"),
    [(True, False), (False, False), (True, True), (False, True)],
    ids=["64le", "32le", "64be", "32be"],
)
def test_crafted_elf_facts_from_construction(is64: bool, big: bool) -> None:
    elf, _, _ = native_modules()
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
    elf, _, _ = native_modules()
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
    elf, _, _ = native_modules()
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
    elf, _, _ = native_modules()
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
    elf, _, _ = native_modules()
    for arch, b in built.items():
        full = elf.parse(b.data, len(b.data), "x")
        got, copied = _converge_sparse(elf.parse, b.data)
        assert got == full, arch
        assert _union(copied) <= b.needed_prefix, arch


def test_sparse_protocol_rejects_a_short_buffer() -> None:
    elf, _, _ = native_modules()
    data = bytes(craft_elf().data)
    with pytest.raises(ValueError, match="sparse parse"):
        elf.parse(data[:100], len(data), "x", [(0, 64)])


def test_need_past_end_of_file_is_an_error() -> None:
    elf, _, _ = native_modules()
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
    elf, _, _ = native_modules()
    from wheelscan.errors import ElfError

    mutate, pattern = HOSTILE[case]
    data = _mutated(mutate)
    with pytest.raises(ElfError, match=pattern):
        # every prefix length the parser asks for is served, up to the whole file
        _converge(elf.parse, data)


# ---------------------------------------------------------------------------------------------
# gcc-built binaries, checked against pyelftools reading the whole file


@pytest.mark.parametrize("arch", ["x86_64", "i686", "s390x"])
def test_gcc_elf_against_pyelftools(built: dict[str, Built], arch: str) -> None:
    elf, _, _ = native_modules()
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
    assert got == elftools_imports(b.path)


@pytest.mark.parametrize("arch", ["x86_64", "i686", "s390x"])
def test_parse_succeeds_at_the_independent_needed_prefix(
    built: dict[str, Built], arch: str
) -> None:
    elf, _, _ = native_modules()
    if arch not in built:
        require(f"cross compiler for {arch} not installed")
    b = built[arch]
    full = elf.parse(b.data, len(b.data), "x")
    assert elf.parse(b.data[: b.needed_prefix], len(b.data), "x") == full
    got, asked = _converge(lambda d, t: elf.parse(d, t, "x"), b.data)
    assert got == full
    assert max(asked) <= b.needed_prefix


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
    _, _, scan = native_modules()
    data = _mini_elf([], notes=((0x1000, 0),))
    w = _stored_wheel(tmp_path, data)
    for f in (scan(w), scan(Counting(w.read_bytes()), filename=w.name)):
        assert f.error is None, f
        assert not f.errors, f.errors
        assert len(f.elfs) == 1


def test_section_headers_never_change_the_facts(tmp_path: Path) -> None:
    """A SHT_DYNSYM larger than the hash table's count: a small file's first prefix reaches the
    section headers, a sparse read never does; the facts must not depend on that."""
    _, _, scan = native_modules()
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


