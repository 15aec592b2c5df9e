"""The inflate floor, computed independently of wheelscan (stdlib zipfile + pyelftools).

For every ELF member of a wheel, its *needed prefix* is the end of the last byte a loader-style
reader must see: ELF header, program headers, PT_INTERP, notes, PT_DYNAMIC and every table the
dynamic section points to (dynstr, dynsym, versym, verneed, verdef, DT_HASH, DT_GNU_HASH).
The floor is the time an inflater alone needs to inflate each member's compressed bytes up to
that prefix. Nothing here imports wheelscan: this is the yardstick the scanner is measured by.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Any

from elftools.elf.elffile import ELFFile

ELF_MAGIC = b"\x7fELF"
_LOCAL_HEADER = struct.Struct("<4sHHHHHIIIHH")
# Compressed input handed to an inflater: what zlib consumed to reach the prefix, plus a few
# bytes for bit-buffer look-ahead. Tight on purpose: isal's decompressobj inflates ALL the
# input it is given and buffers what max_length holds back, so looser input would bill isal
# for bytes past the prefix. (zlib, zlib-ng and isal all reach every prefix with 0 slack.)
INPUT_SLACK = 64
# versioned runtimes whose newest required version tells which manylinux policy a binary needs
_RUNTIME_PREFIXES = ("GLIBC_", "GLIBCXX_", "CXXABI_", "GCC_")


def _version_key(name: str) -> tuple[int, ...]:
    tail = name.split("_", 1)[1]
    parts = []
    for p in tail.split("."):
        if not p.isdigit():
            break
        parts.append(int(p))
    return tuple(parts)


class _Elf:
    """Just enough of pyelftools' view of one ELF file to locate its dynamic tables."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.elf = ELFFile(io.BytesIO(data))
        self.end = "<" if self.elf.little_endian else ">"
        self.is64 = self.elf.elfclass == 64
        self.loads: list[tuple[int, int, int]] = []

    def u32(self, off: int) -> int:
        v: int = struct.unpack_from(self.end + "I", self.data, off)[0]
        return v

    def to_offset(self, vaddr: int) -> int | None:
        for seg_vaddr, seg_off, filesz in self.loads:
            if seg_vaddr <= vaddr < seg_vaddr + filesz:
                return vaddr - seg_vaddr + seg_off
        return None

    def cstr(self, off: int) -> str:
        stop = self.data.find(b"\0", off)
        return self.data[off:stop].decode("utf-8", "replace")


def needed_prefix(data: bytes) -> dict[str, Any]:
    """Needed prefix of one ELF file: ``prefix``, the table that sets it, and version evidence."""
    e = _Elf(data)
    hdr = e.elf.header
    ends: dict[str, int] = {
        "ehdr": hdr["e_ehsize"],
        "phdrs": hdr["e_phoff"] + hdr["e_phnum"] * hdr["e_phentsize"],
    }
    dyn_off = dyn_size = None
    for seg in e.elf.iter_segments():
        ptype, off, filesz = seg["p_type"], seg["p_offset"], seg["p_filesz"]
        if ptype == "PT_LOAD":
            e.loads.append((seg["p_vaddr"], off, filesz))
        elif ptype == "PT_INTERP":
            ends["interp"] = off + filesz
        elif ptype in ("PT_NOTE", "PT_GNU_PROPERTY"):
            ends["notes"] = max(ends.get("notes", 0), off + filesz)
        elif ptype == "PT_DYNAMIC":
            dyn_off, dyn_size = off, filesz
            ends["dynamic"] = off + filesz
    versions: dict[str, str] = {}
    if dyn_off is not None and dyn_size is not None:
        _dynamic_tables(e, dyn_off, dyn_size, ends, versions)
    limiter = max(ends, key=lambda k: ends[k])
    return {
        "prefix": min(ends[limiter], len(data)),
        "limiter": limiter,
        "ends": ends,
        "max_versions": versions,
    }


def _dynamic_tables(
    e: _Elf, dyn_off: int, dyn_size: int, ends: dict[str, int], versions: dict[str, str]
) -> None:
    dyn_struct = e.elf.structs.Elf_Dyn
    entsize = dyn_struct.sizeof()
    tags: dict[str, int] = {}
    for i in range(dyn_size // entsize):
        d = dyn_struct.parse(e.data[dyn_off + i * entsize : dyn_off + (i + 1) * entsize])
        tag = d["d_tag"]
        if tag == "DT_NULL":
            break
        if isinstance(tag, str):
            tags.setdefault(tag, d["d_val"])

    def where(tag: str) -> int | None:
        return e.to_offset(tags[tag]) if tag in tags else None

    strtab = where("DT_STRTAB")
    if strtab is not None and "DT_STRSZ" in tags:
        ends["dynstr"] = strtab + tags["DT_STRSZ"]
    nsyms: int | None = None
    h = where("DT_HASH")
    if h is not None:
        nbucket, nchain = e.u32(h), e.u32(h + 4)
        ends["hash"] = h + 8 + 4 * (nbucket + nchain)
        nsyms = nchain
    g = where("DT_GNU_HASH")
    if g is not None:
        nbuckets, symoffset, bloom_size = e.u32(g), e.u32(g + 4), e.u32(g + 8)
        buckets = g + 16 + bloom_size * (8 if e.is64 else 4)
        chains = buckets + 4 * nbuckets
        top = max((e.u32(buckets + 4 * i) for i in range(nbuckets)), default=0)
        if top < symoffset:
            gnu_nsyms, gnu_end = symoffset, chains
        else:
            idx = top
            limit = symoffset + (len(e.data) - chains) // 4
            while idx < limit and not e.u32(chains + 4 * (idx - symoffset)) & 1:
                idx += 1
            gnu_nsyms, gnu_end = idx + 1, chains + 4 * (idx + 1 - symoffset)
        ends["gnu_hash"] = gnu_end
        nsyms = max(nsyms or 0, gnu_nsyms)
    symtab = where("DT_SYMTAB")
    if symtab is not None:
        if nsyms is None:  # no hash table: the section header is the only count there is
            sec = e.elf.get_section_by_name(".dynsym")
            nsyms = sec["sh_size"] // sec["sh_entsize"] if sec is not None else 0
        ends["dynsym"] = symtab + nsyms * tags.get("DT_SYMENT", 24 if e.is64 else 16)
        versym = where("DT_VERSYM")
        if versym is not None:
            ends["versym"] = versym + 2 * nsyms
    vn = where("DT_VERNEED")
    for _ in range(tags.get("DT_VERNEEDNUM", 0)):
        if vn is None:
            break
        cnt, aux, nxt = struct.unpack_from(e.end + "2xHxxxxII", e.data, vn)
        ends["verneed"] = max(ends.get("verneed", 0), vn + 16)
        a = vn + aux
        for _ in range(cnt):
            name, anext = struct.unpack_from(e.end + "8xII", e.data, a)
            ends["verneed"] = max(ends["verneed"], a + 16)
            if strtab is not None:
                v = e.cstr(strtab + name)
                if v.startswith(_RUNTIME_PREFIXES):
                    kind = v.split("_", 1)[0]
                    if kind not in versions or _version_key(v) > _version_key(versions[kind]):
                        versions[kind] = v
            a += anext
        if not nxt:
            break
        vn += nxt
    vd = where("DT_VERDEF")
    for _ in range(tags.get("DT_VERDEFNUM", 0)):
        if vd is None:
            break
        cnt, aux, nxt = struct.unpack_from(e.end + "6xH4xII", e.data, vd)
        ends["verdef"] = max(ends.get("verdef", 0), vd + 20)
        a = vd + aux
        for _ in range(cnt):
            ends["verdef"] = max(ends["verdef"], a + 8)
            a += struct.unpack_from(e.end + "4xI", e.data, a)[0]
        if not nxt:
            break
        vd += nxt


def _data_offset(raw: bytes, info: zipfile.ZipInfo) -> int:
    sig, *_rest, nlen, xlen = _LOCAL_HEADER.unpack_from(raw, info.header_offset)
    if sig != b"PK\x03\x04":
        msg = f"{info.filename}: no local header at {info.header_offset}"
        raise ValueError(msg)
    return int(info.header_offset + _LOCAL_HEADER.size + nlen + xlen)


def analyse_wheel(path: Path) -> dict[str, Any]:
    """Every ELF member of one wheel: where its compressed bytes are and its needed prefix."""
    raw = path.read_bytes()
    members: list[dict[str, Any]] = []
    versions: dict[str, str] = {}
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            if info.is_dir() or info.file_size < 4:
                continue
            with zf.open(info) as f:
                if f.read(4) != ELF_MAGIC:
                    continue
            data = zf.read(info)
            try:
                np = needed_prefix(data)
            except Exception as exc:  # a broken ELF is reported, not fatal
                members.append({"name": info.filename, "error": repr(exc)})
                continue
            start = _data_offset(raw, info)
            m: dict[str, Any] = {
                "name": info.filename,
                "method": info.compress_type,
                "data_offset": start,
                "compressed_size": info.compress_size,
                "size": info.file_size,
                "prefix": np["prefix"],
                "limiter": np["limiter"],
                "ends": np["ends"],
                "max_versions": np["max_versions"],
            }
            if info.compress_type == zipfile.ZIP_DEFLATED:
                comp = raw[start : start + info.compress_size]
                d = zlib.decompressobj(-15)
                out = d.decompress(comp, np["prefix"])
                if len(out) != np["prefix"] or out != data[: np["prefix"]]:
                    msg = f"{info.filename}: zlib prefix does not match the member"
                    raise ValueError(msg)
                m["input_needed"] = len(comp) - len(d.unconsumed_tail)
            members.append(m)
            for kind, v in np["max_versions"].items():
                if kind not in versions or _version_key(v) > _version_key(versions[kind]):
                    versions[kind] = v
    return {"members": members, "max_versions": versions}
