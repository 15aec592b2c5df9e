"""Locate fields in real ELF files and ZIP archives, so tests can corrupt exactly one of them.

Written from the specs (System V gABI, LSB symbol versioning, APPNOTE), independently of the
scanner under test: the corruptions must not inherit its mistakes.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = ["DT", "Elf", "ZipLayout", "deflate_repeat", "patch"]


class DT:
    NULL = 0
    NEEDED = 1
    HASH = 4
    STRTAB = 5
    SYMTAB = 6
    STRSZ = 10
    SONAME = 14
    GNU_HASH = 0x6FFFFEF5
    VERSYM = 0x6FFFFFF0
    VERDEF = 0x6FFFFFFC
    VERDEFNUM = 0x6FFFFFFD
    VERNEED = 0x6FFFFFFE
    VERNEEDNUM = 0x6FFFFFFF


PT_LOAD, PT_DYNAMIC, PT_NOTE = 1, 2, 4


@dataclass
class Phdr:
    at: int  # file offset of this program header
    p_type: int
    offset: int
    vaddr: int
    filesz: int


@dataclass
class Elf:
    """Field positions of one ELF image (either class, either byte order)."""

    data: bytes
    is64: bool = field(init=False)
    end: str = field(init=False)
    phdrs: list[Phdr] = field(init=False)
    dyn: list[tuple[int, int, int]] = field(init=False)  # (tag, value, file offset of entry)

    def __post_init__(self) -> None:
        d = self.data
        assert d[:4] == b"\x7fELF"
        self.is64 = d[4] == 2
        self.end = "<" if d[5] == 1 else ">"
        if self.is64:
            (self.phoff,) = struct.unpack_from(self.end + "Q", d, 0x20)
            self.phoff_at, self.phentsize_at, self.phnum_at = 0x20, 0x36, 0x38
        else:
            (self.phoff,) = struct.unpack_from(self.end + "I", d, 0x1C)
            self.phoff_at, self.phentsize_at, self.phnum_at = 0x1C, 0x2A, 0x2C
        (self.phentsize,) = struct.unpack_from(self.end + "H", d, self.phentsize_at)
        (self.phnum,) = struct.unpack_from(self.end + "H", d, self.phnum_at)
        self.phdrs = []
        for i in range(self.phnum):
            at = self.phoff + i * self.phentsize
            if self.is64:
                p_type, _f, off, vaddr, _pa, filesz = struct.unpack_from(self.end + "IIQQQQ", d, at)
            else:
                p_type, off, vaddr, _pa, filesz = struct.unpack_from(self.end + "IIIII", d, at)
            self.phdrs.append(Phdr(at, p_type, off, vaddr, filesz))
        self.dyn = []
        dynamic = self.phdr(PT_DYNAMIC)
        fmt, size = (self.end + "qQ", 16) if self.is64 else (self.end + "iI", 8)
        for at in range(dynamic.offset, dynamic.offset + dynamic.filesz, size):
            tag, val = struct.unpack_from(fmt, d, at)
            self.dyn.append((tag, val, at))
            if tag == DT.NULL:
                break

    # -- lookups -------------------------------------------------------------------------
    def phdr(self, p_type: int) -> Phdr:
        return next(p for p in self.phdrs if p.p_type == p_type)

    def phdr_field_at(self, ph: Phdr, name: str) -> tuple[int, str]:
        """File offset and struct format of one field of a program header."""
        if self.is64:
            layout = {"offset": (8, "Q"), "vaddr": (16, "Q"), "filesz": (32, "Q")}
        else:
            layout = {"offset": (4, "I"), "vaddr": (8, "I"), "filesz": (16, "I")}
        rel, fmt = layout[name]
        return ph.at + rel, self.end + fmt

    def dyn_entry(self, tag: int) -> tuple[int, int]:
        """(value, file offset of the value field) of the first entry with ``tag``."""
        val, at = next((v, a) for t, v, a in self.dyn if t == tag)
        return val, at + (8 if self.is64 else 4)

    def dyn_value_fmt(self) -> str:
        return self.end + ("Q" if self.is64 else "I")

    def v2o(self, vaddr: int) -> int:
        for p in self.phdrs:
            if p.p_type == PT_LOAD and p.vaddr <= vaddr < p.vaddr + p.filesz:
                return vaddr - p.vaddr + p.offset
        raise KeyError(hex(vaddr))

    def table(self, tag: int) -> int:
        """File offset of the table a dynamic tag points to."""
        return self.v2o(self.dyn_entry(tag)[0])

    def verneed_entries(self) -> list[tuple[int, list[int]]]:
        """File offsets of each Verneed and of its Vernaux entries, following the chains."""
        out = []
        at = self.table(DT.VERNEED)
        count = self.dyn_entry(DT.VERNEEDNUM)[0]
        for _ in range(count):
            _ver, cnt, _file, aux, nxt = struct.unpack_from(self.end + "HHIII", self.data, at)
            auxs, a = [], at + aux
            for _ in range(cnt):
                auxs.append(a)
                (anext,) = struct.unpack_from(self.end + "I", self.data, a + 12)
                a += anext
            out.append((at, auxs))
            at += nxt
        return out

    def verdef_entries(self) -> list[int]:
        out = []
        at = self.table(DT.VERDEF)
        for _ in range(self.dyn_entry(DT.VERDEFNUM)[0]):
            out.append(at)
            (nxt,) = struct.unpack_from(self.end + "I", self.data, at + 16)
            at += nxt
        return out

    def notes(self) -> list[int]:
        """File offsets of the first note header of each PT_NOTE segment."""
        return [p.offset for p in self.phdrs if p.p_type == PT_NOTE]


def patch(data: bytes, *edits: tuple[int, str, int]) -> bytes:
    """``data`` with each (offset, struct format, value) packed in place."""
    out = bytearray(data)
    for at, fmt, val in edits:
        struct.pack_into(fmt, out, at, val)
    return bytes(out)


@dataclass
class ZipEntry:
    name: str
    cd_at: int  # offset of the central directory entry
    local_at: int  # offset of the local header, as the CD says
    method: int
    csize: int
    size: int


@dataclass
class ZipLayout:
    """Where the records of a ZIP written by tests/helpers/builders.write_zip are."""

    data: bytes
    entries: list[ZipEntry] = field(init=False)

    def __post_init__(self) -> None:
        d = self.data
        self.eocd = d.rindex(b"PK\x05\x06")
        _sig, _d, _cd, _n1, n, self.cd_size, self.cd_offset, _c = struct.unpack_from(
            "<IHHHHIIH", d, self.eocd
        )
        z = d.rfind(b"PK\x06\x06", 0, self.eocd)
        self.zip64_eocd = z if z >= 0 else None
        loc = d.rfind(b"PK\x06\x07", 0, self.eocd)
        self.zip64_locator = loc if loc >= 0 else None
        if self.zip64_eocd is not None:
            n, self.cd_size, self.cd_offset = struct.unpack_from("<QQQ", d, self.zip64_eocd + 32)
        self.entries = []
        at = self.cd_offset
        for _ in range(n):
            fields = struct.unpack_from("<IHHHHHHIIIHHHHHII", d, at)
            method, csize, size, nlen, xlen, clen, local = (
                fields[4],
                fields[8],
                fields[9],
                fields[10],
                fields[11],
                fields[12],
                fields[16],
            )
            name = d[at + 46 : at + 46 + nlen].decode()
            if xlen:  # ZIP64 extra as builders.write_zip writes it: size, csize, offset
                size, csize, local = struct.unpack_from("<QQQ", d, at + 46 + nlen + 4)
            self.entries.append(ZipEntry(name, at, local, method, csize, size))
            at += 46 + nlen + xlen + clen

    def entry(self, name: str) -> ZipEntry:
        return next(e for e in self.entries if e.name == name)

    def data_at(self, name: str) -> int:
        """Offset of the member's compressed data (after the local header's name and extra)."""
        e = self.entry(name)
        nlen, xlen = struct.unpack_from("<HH", self.data, e.local_at + 26)
        return e.local_at + 30 + nlen + xlen


def deflate_repeat(head: bytes, total: int, level: int = 9) -> bytes:
    """A raw deflate stream of ``head`` followed by zeros up to ``total`` bytes (a multiple of
    1 MiB), made fast by repeating one fully flushed block of zeros."""
    mib = 1 << 20
    assert len(head) <= mib
    assert total % mib == 0
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    first = c.compress(head + bytes(mib - len(head))) + c.flush(zlib.Z_FULL_FLUSH)
    c = zlib.compressobj(level, zlib.DEFLATED, -15)
    seg = c.compress(bytes(mib)) + c.flush(zlib.Z_FULL_FLUSH)
    return first + seg * (total // mib - 1) + b"\x03\x00"  # empty final fixed-Huffman block
