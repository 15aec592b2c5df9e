"""What the native-scanner unit tests share: the session's gcc-built libraries, a counting file
object, one-member ZIPs with a chosen deflate stream."""

from __future__ import annotations

import io
import os
import shutil
import struct
import subprocess
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from helpers.builders import (
    Import,
    build_elf,
    build_stub,
    have,
)

if TYPE_CHECKING:
    pass

CHUNK = 256 << 10


@pytest.fixture(scope="session")
def native_ready() -> None:
    from conftest import native_engine_error, require  # conftest imports this module

    require(native_engine_error())


def native_modules() -> tuple[Any, Any, Any]:
    from wheelscan._native import elf, zipread
    from wheelscan.read.native import scan_wheel_native

    return elf, zipread, scan_wheel_native


def native_zipread() -> Any:
    """The ZIP reader's module; skips on a dev box (fails in CI) when it cannot be imported."""
    from conftest import native_engine_error, require  # conftest imports this module

    require(native_engine_error())
    from wheelscan._native import zipread

    return zipread


def native_inflate() -> Any:
    """The deflate back-ends' module: which inflaters this build offers, and their libraries."""
    from conftest import native_engine_error, require  # conftest imports this module

    require(native_engine_error())
    from wheelscan._native import inflate

    return inflate


def inflater_env(**extra: str) -> dict[str, str]:
    """This process's environment without the inflater choices, plus ``extra``: for a child
    process that imports the extension afresh."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("WHEELSCAN_INFLATER", "WHEELSCAN_LIBISAL", "WHEELSCAN_LIBZNG")}  # fmt: skip
    env.update(extra)
    return env


def shared_object(tmp_path: Path, name: str, source: str, *flags: str) -> Path:
    """``source`` (C) built by gcc into ``tmp_path/<name>.so``."""
    from conftest import require  # conftest imports this module

    if shutil.which("gcc") is None:
        require("gcc is needed to build the shared objects")
    src = tmp_path / f"{name}.c"
    src.write_text(source)
    out = tmp_path / f"{name}.so"
    subprocess.run(["gcc", "-shared", "-fPIC", *flags, "-o", str(out), str(src)], check=True)
    return out


@dataclass
class Built:
    path: Path
    data: bytes
    needed_prefix: int  # computed from section headers by pyelftools, not by the native code


def needed_prefix_of(path: Path) -> int:
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


def elftools_imports(path: Path) -> dict[tuple[str | None, str | None], list[str]]:
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
    return {k: Built(p, p.read_bytes(), needed_prefix_of(p)) for k, p in res.items()}


def zip_with_stream(path: Path, stream: bytes, size: int) -> Path:
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


class Counting(io.BytesIO):
    """An in-memory file object that counts the bytes read from it."""

    consumed = 0

    def read(self, n: int | None = -1) -> bytes:
        out = super().read(n)
        self.consumed += len(out)
        return out


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
