"""The reference engine: stdlib :mod:`zipfile` for the central directory, lief for ELF.

It is the oracle of the differential tests and the ``--engine lief`` cross-check, never the
fast path: every ELF member is inflated whole and handed to lief. It shares no binary parsing
with the native engine, only the name rule (:func:`members.may_be_binary`), the wheel filename
and WHEEL-file helpers (:mod:`wheelinfo`) and the facts contract.

zipfile cannot read Zstandard members (method 93), so member data is located through each
member's own local header here and decompressed with :mod:`zlib` or :mod:`zstandard`.
"""

from __future__ import annotations

import copy
import hashlib
import io
import os
import struct
import warnings
import zipfile
import zlib
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import lief
import zstandard

from ..elfabi import SHN_UNDEF, DynFlags, Machine, SegmentFlags, VersionFlags
from ..errors import ElfError, InflateError, LimitExceeded, WheelscanError, ZipFormatError
from ..facts import (
    IMPORT_NAME_CAP,
    RUNTIME_EXPORT_CAP,
    RUNTIME_PREFIXES,
    UNVERSIONED_NAME_CAP,
    ElfFacts,
    LibraryNeed,
    MemberCache,
    MemberError,
    MemberStats,
    SymbolGroup,
    VersionNeed,
    WheelFacts,
    python_api_imports,
    weak_only,
)
from ..limits import DEFAULT_LIMITS, Limits
from .members import ELF_MAGIC, may_be_binary
from .wheelinfo import (
    as_source,
    fill_filename_facts,
    fill_wheel_file_facts,
    find_wheel_file,
    wheel_display_name,
)
from .zipviews import CONFUSION, Central, audit, decode_name, name_problem

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["LIEF_UNCOMPARABLE", "scan_wheel_lief"]

#: WheelFacts/ElfFacts/MemberStats fields this engine cannot give like the native one, and why.
#: The differential tests leave exactly these out of the comparison.
LIEF_UNCOMPARABLE: dict[str, str] = {
    "MemberStats.inflated": "the lief engine inflates whole members; the early stop is native-only",
    "MemberStats.read": "the lief engine reads whole members; the early stop is native-only",
    "WheelFacts.engine": "names the engine that produced the facts",
    "WheelFacts.anomalies": (
        "free-text ZIP oddities; zipfile hides local-header/CD disagreements, so only their "
        "presence is compared"
    ),
    "WheelFacts.error": "free-text message; only its presence is compared",
    "MemberError.message": "free-text message; only the member it names is compared",
}

lief.logging.disable()  # lief prints warnings for odd input; problems become MemberErrors here

_LOCAL_HEADER = struct.Struct("<IHHHHHIIIHH")
_LOCAL_SIG = 0x04034B50
_PEEK = len(ELF_MAGIC)
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED, 93)

# lief hands ELF constants out as its own enums; facts keep the raw numbers (wheelscan.elfabi).
_TAG = lief.ELF.DynamicEntry.TAG
_BIND = lief.ELF.Symbol.BINDING
_VIS = lief.ELF.Symbol.VISIBILITY
_SEG = lief.ELF.Segment.TYPE
# GNU_PROPERTY_X86_ISA_1_NEEDED bits (x86-64 psABI): baseline, v2, v3, v4.
_ISA_BITS = {
    lief.ELF.X86ISA.ISA.BASELINE: 0x1,
    lief.ELF.X86ISA.ISA.V2: 0x2,
    lief.ELF.X86ISA.ISA.V3: 0x4,
    lief.ELF.X86ISA.ISA.V4: 0x8,
}


def scan_wheel_lief(
    src: str | os.PathLike[str] | BinaryIO,
    *,
    filename: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
    member_cache: MemberCache | None = None,
) -> WheelFacts:
    """Scan one wheel with zipfile + lief. Never raises for bad input (see engine.scan_wheel)."""
    src = as_source(src)
    facts = WheelFacts(filename=wheel_display_name(src, filename), engine="lief")
    fill_filename_facts(facts)
    try:
        if isinstance(src, str):
            with open(src, "rb") as fh:
                _scan(fh, facts, limits, member_cache)
        else:
            _scan(src, facts, limits, member_cache)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, WheelscanError, OSError, EOFError) as e:
        facts.error = f"{type(e).__name__}: {e}"
    return facts


def _scan(
    fh: BinaryIO, facts: WheelFacts, limits: Limits, member_cache: MemberCache | None
) -> None:
    fh.seek(0, io.SEEK_END)
    facts.size = file_size = fh.tell()
    fh.seek(0)
    try:
        zf = zipfile.ZipFile(fh)
    except (ValueError, struct.error, NotImplementedError, OSError) as e:
        # zipfile seeks to wherever the end records point; a negative or huge offset is OSError
        raise ZipFormatError(
            f"central directory unreadable (offset or size past the end?): {e}"
        ) from e
    _check_cd_offset(fh, zf, file_size, facts, limits)
    infos = zf.infolist()
    facts.member_count = len(infos)
    if len(infos) > limits.max_members:
        raise LimitExceeded(f"{len(infos)} members exceed the limit of {limits.max_members}")
    _check_end_records(fh, file_size, zf, facts)
    for info in infos:
        _check_entry(info, facts)
    _count_entry_oddities(infos, facts)
    names = [i.filename for i in infos]
    if len(set(names)) != len(names):
        facts.anomalies.append("duplicate member names")
    wheel_name, facts.has_record = find_wheel_file(names)
    budget = [limits.max_wheel_inflate]
    infos = infos + _local_only(fh, file_size, zf, infos, facts)
    if wheel_name is not None:
        info = zf.getinfo(wheel_name)  # the last copy of the name, as pip reads it
        try:
            if info.file_size > limits.max_metadata:
                raise LimitExceeded(
                    f"{info.file_size} bytes exceed the metadata limit of {limits.max_metadata}"
                )
            fill_wheel_file_facts(facts, _member_bytes(fh, file_size, info, None, budget)[1])
        except WheelscanError as e:
            facts.errors.append(MemberError(wheel_name, str(e)))
    for info in infos:
        if not (may_be_binary(info.filename, info.file_size) or may_be_binary(
                info.orig_filename.split("\0", 1)[0], info.file_size)):
            continue  # a Unicode path renames it: judged if either name may be a binary
        facts.members.append(
            MemberStats(info.filename, info.compress_type, info.file_size, info.compress_size,
                        crc32=info.CRC)
        )
        try:
            elf = _scan_member(fh, file_size, info, budget, member_cache)
        except WheelscanError as e:
            facts.errors.append(MemberError(info.filename, str(e)))
            continue
        if elf is not None:
            facts.elfs.append(elf)


def _stored_name(info: zipfile.ZipInfo) -> bytes:
    """The name's bytes as the central directory holds them (zipfile decoded them strictly,
    as UTF-8 or CP437, so encoding again gives them back)."""
    return info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437")


def _check_end_records(
    fh: BinaryIO, file_size: int, zf: zipfile.ZipFile, facts: WheelFacts
) -> None:
    """The end records zipfile chose against the ones another reader would: the record whose
    comment ends exactly at the end of the file, the ZIP64 record its locator points at."""
    window = min(file_size, 0xFFFF + 22 + 20)
    fh.seek(file_size - window)
    tail = fh.read(window)
    chosen = tail.rfind(b"PK\x05\x06")
    if not (len(tail) >= 22 and tail[-22:-18] == b"PK\x05\x06" and tail[-2:] == b"\0\0"):
        exact = next((i for i in range(len(tail) - 22, -1, -1)
                      if tail[i:i + 4] == b"PK\x05\x06"
                      and i + 22 + int.from_bytes(tail[i + 20:i + 22], "little") == len(tail)),
                     -1)  # fmt: skip
        if exact >= 0 and exact != chosen:
            base = file_size - len(tail)
            facts.anomalies.append(
                f"{CONFUSION}two end of central directory records: zipfile reads the one at "
                f"offset {base + chosen}, a reader trusting comment lengths the one at offset "
                f"{base + exact}")
    else:
        chosen = len(tail) - 22
    eocd = file_size - len(tail) + chosen
    if eocd < 20:
        return
    fh.seek(eocd - 20)
    loc = fh.read(20)
    if loc[:4] != b"PK\x06\x07":
        return
    (target,) = struct.unpack_from("<Q", loc, 8)
    read_at = eocd - 20 - 56
    if read_at >= 0:
        fh.seek(read_at)
        rec = fh.read(56)
        if rec[:4] == b"PK\x06\x06":
            if struct.unpack_from("<Q", rec, 4)[0] != 44:
                facts.anomalies.append("the ZIP64 end record carries extensible data")
        else:
            read_at = -1
    if target != eocd - 76:
        facts.anomalies.append(
            f"{CONFUSION}the ZIP64 end locator points at offset {target}, zipfile "
            + (f"reads the ZIP64 record at offset {read_at}" if read_at >= 0 else
               "finds no ZIP64 record before it and reads the end record"))


def _unicode_path(info: zipfile.ZipInfo, facts: WheelFacts) -> str | None:
    """The name an Info-ZIP Unicode path extra field gives (taken by zipfile of Python >=
    3.12 and by unzip when its CRC matches the stored name), else None."""
    raw = _stored_name(info)
    extra = info.extra
    found = None
    while len(extra) >= 4:
        hid, hsz = struct.unpack_from("<HH", extra)
        data = extra[4:4 + hsz]
        if hid == 0x7075:
            if len(data) < 5:
                facts.anomalies.append(f"member {info.orig_filename!r}: corrupt Unicode path "
                                       f"extra field")
            elif data[0] == 1 and int.from_bytes(data[1:5], "little") == zlib.crc32(raw):
                try:
                    uni = data[5:].decode("utf-8")
                except UnicodeDecodeError:
                    facts.anomalies.append(f"member {info.orig_filename!r}: its Unicode path "
                                           f"extra field is not UTF-8")
                else:
                    if uni:
                        bad = name_problem(data[5:], 0x800)
                        if bad:
                            facts.anomalies.append(
                                f"member {info.orig_filename!r}: its Unicode path {bad}")
                        found = uni.split("\0", 1)[0]
        extra = extra[4 + hsz:]
    return found


def _check_entry(info: zipfile.ZipInfo, facts: WheelFacts) -> None:
    """One entry's names as every reader sees them; the Unicode path's name is judged."""
    stored = info.orig_filename
    cut = stored.split("\0", 1)[0]
    if "\0" in stored:
        facts.anomalies.append(f"{CONFUSION}member name {stored!r} holds a NUL byte; zipfile "
                               f"installs it as {cut!r}")
    uni = _unicode_path(info, facts)
    if uni is not None:
        if uni != cut:
            facts.anomalies.append(
                f"{CONFUSION}member {stored!r} is named {uni!r} by its Unicode path extra "
                f"field: zipfile of Python 3.12 and later (and unzip) install {uni!r}, older "
                f"ones {cut!r}")
        info.filename = uni


def _count_entry_oddities(infos: list[zipfile.ZipInfo], facts: WheelFacts) -> None:
    """What PyPI's validator refuses in entries whose every reader agrees on them."""
    bad = [(i, p) for i in infos if (p := name_problem(_stored_name(i), i.flag_bits))]
    if bad:
        facts.anomalies.append(f"member name {bad[0][0].orig_filename!r} {bad[0][1]}")
        if len(bad) > 1:
            facts.anomalies.append(f"{len(bad) - 1} more member name(s) with unprintable or "
                                   f"non-UTF-8 bytes")
    commented = sum(1 for i in infos if i.comment)
    if commented:
        facts.anomalies.append(f"{commented} central directory entr"
                               f"{'y carries' if commented == 1 else 'ies carry'} a comment")
    described = sum(1 for i in infos if i.flag_bits & 8)
    if described:
        facts.anomalies.append(f"{described} member(s) with a data descriptor")
    dup = 0
    for i in infos:
        ids = []
        extra = i.extra
        while len(extra) >= 4:
            hid, hsz = struct.unpack_from("<HH", extra)
            ids.append(hid)
            extra = extra[4 + hsz:]
        if ids.count(1) > 1 or ids.count(0x7075) > 1:
            dup += 1
    if dup:
        facts.anomalies.append(f"{dup} central directory entr"
                               f"{'y has' if dup == 1 else 'ies have'} a duplicate ZIP64 or "
                               f"Unicode path extra field")


def _local_only(
    fh: BinaryIO, file_size: int, zf: zipfile.ZipFile, infos: list[zipfile.ZipInfo],
    facts: WheelFacts,
) -> list[zipfile.ZipInfo]:
    """The local headers walked as a streaming reader walks them, against zipfile's view;
    the copies only that reader installs, as ZipInfos to judge."""
    def read(off: int, n: int) -> bytes:
        if off < 0 or off >= file_size:
            return b""
        fh.seek(off)
        return fh.read(n)

    central = [Central(i.header_offset, _stored_name(i), i.flag_bits, i.compress_type,
                       i.compress_size, i.file_size, i.CRC) for i in infos]  # fmt: skip
    cd_start = zf.start_dir
    if read(0, 4) == b"PK\x03\x04":
        start = 0
    else:
        offsets = [i.header_offset for i in infos if 0 <= i.header_offset < cd_start]
        start = min(offsets) if offsets else cd_start
    found, extra = audit(read, file_size, start, central, cd_start)
    facts.anomalies.extend(found)
    out = []
    for h in extra:
        info = zipfile.ZipInfo(decode_name(h.raw, h.flags))
        info.flag_bits, info.compress_type = h.flags, h.method
        info.compress_size, info.file_size = h.csize, h.size
        info.header_offset, info.CRC = h.offset, h.crc
        out.append(info)
    return out


def _check_cd_offset(
    fh: BinaryIO, zf: zipfile.ZipFile, file_size: int, facts: WheelFacts, limits: Limits
) -> None:
    """zipfile silently shifts every offset when the EOCD's CD offset is wrong; we do not."""
    zf_private: Any = zipfile  # _EndRecData & co: private to the stdlib, but stable for decades
    endrec = zf_private._EndRecData(fh)
    if not endrec:
        return
    recorded = endrec[zf_private._ECD_OFFSET]
    cd_size = endrec[zf_private._ECD_SIZE]
    actual = zf.start_dir
    if cd_size > limits.max_central_directory:
        raise LimitExceeded(
            f"central directory of {cd_size} bytes exceeds the limit of "
            f"{limits.max_central_directory}"
        )
    if recorded == actual:
        return
    if recorded + cd_size > file_size:
        raise ZipFormatError(
            f"central directory offset {recorded} (size {cd_size}) past the end of the "
            f"archive ({file_size} bytes)"
        )
    facts.anomalies.append(f"{actual - recorded} bytes before the first local header")


def _scan_member(
    fh: BinaryIO,
    file_size: int,
    info: zipfile.ZipInfo,
    budget: list[int],
    member_cache: MemberCache | None,
) -> ElfFacts | None:
    comp = _compressed_bytes(fh, file_size, info)
    key = None
    if member_cache is not None:
        digest = hashlib.blake2b(comp, digest_size=16).hexdigest()
        key = (info.compress_type, info.compress_size, info.file_size, digest)
        hit = member_cache.get(key)
        if hit is not None:
            return _renamed(hit, info.filename)
    if _decompress(comp, info, _PEEK, exact=False) != ELF_MAGIC:
        return None
    data = _member_bytes(fh, file_size, info, comp, budget)[1]
    try:
        with warnings.catch_warnings():
            # lief warns (RuntimeWarning) for every enum value it does not know, e.g. an
            # unknown dynamic tag: normal in hostile input, and an error under -W error
            warnings.simplefilter("ignore")
            elf = elf_facts(info.filename, data)
    except WheelscanError:
        raise
    except Exception as e:  # lief is third-party C++: whatever it raises is about this member
        kind = "non-UTF-8 string" if isinstance(e, UnicodeDecodeError) else type(e).__name__
        raise ElfError(f"lief could not read the ELF file ({kind}): {e}") from e
    if key is not None and member_cache is not None:
        member_cache.put(key, elf)
    return elf


def _renamed(elf: ElfFacts, member: str) -> ElfFacts:
    copied = copy.deepcopy(elf)
    copied.member = member
    return copied


def _compressed_bytes(fh: BinaryIO, file_size: int, info: zipfile.ZipInfo) -> bytes:
    """The member's compressed data, found through its own local header."""
    if info.flag_bits & 0x1:
        raise ZipFormatError("member is encrypted")
    if info.compress_type not in _METHODS:
        raise ZipFormatError(f"unsupported compression method {info.compress_type}")
    off = info.header_offset
    if off < 0 or off + _LOCAL_HEADER.size > file_size:
        raise ZipFormatError(f"local header offset {off} past the end of the archive")
    fh.seek(off)
    header = fh.read(_LOCAL_HEADER.size)
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_SIG:
        raise ZipFormatError(f"no local header signature at offset {off}")
    start = off + _LOCAL_HEADER.size + fields[9] + fields[10]
    end = start + info.compress_size
    if end > file_size:
        raise ZipFormatError(
            f"member data ({info.compress_size} bytes at offset {start}) runs past the end "
            f"of the archive ({file_size} bytes)"
        )
    fh.seek(start)
    comp = fh.read(info.compress_size)
    if len(comp) != info.compress_size:
        raise ZipFormatError("archive truncated inside member data")
    return comp


def _member_bytes(
    fh: BinaryIO,
    file_size: int,
    info: zipfile.ZipInfo,
    comp: bytes | None,
    budget: list[int],
) -> tuple[bytes, bytes]:
    """(compressed, uncompressed) bytes of a whole member, charged to the wheel's budget."""
    if comp is None:
        comp = _compressed_bytes(fh, file_size, info)
    if info.file_size > budget[0]:
        raise LimitExceeded(
            f"inflating {info.file_size} bytes would exceed the wheel's inflate limit"
        )
    data = _decompress(comp, info, info.file_size, exact=True)
    budget[0] -= len(data)
    return comp, data


def _decompress(comp: bytes, info: zipfile.ZipInfo, want: int, *, exact: bool) -> bytes:
    """Up to ``want`` bytes of output; with ``exact``, the stream must hold exactly ``want``."""
    method = info.compress_type
    limit = want + 1 if exact else want
    if method == zipfile.ZIP_STORED:
        if exact and len(comp) != want:
            raise ZipFormatError(
                f"stored member: compressed size {len(comp)} != uncompressed size {want}"
            )
        out = comp[:want]
        if len(out) < min(want, info.file_size):
            raise ZipFormatError(f"stored member shorter ({len(comp)} bytes) than declared")
        return out
    try:
        if method == zipfile.ZIP_DEFLATED:
            d = zlib.decompressobj(-15)
            out = d.decompress(comp, limit)
            if exact and len(out) == want and not d.eof:
                raise InflateError(
                    "deflate stream truncated: no end of stream within the compressed size"
                )
        else:
            reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(comp))
            out = _read_upto(reader, limit)
    except (zlib.error, zstandard.ZstdError) as e:
        kind = "deflate" if method == zipfile.ZIP_DEFLATED else "Zstandard"
        raise InflateError(f"corrupt {kind} stream: {e}") from e
    if exact and len(out) > want:
        raise LimitExceeded(f"member inflates beyond its declared size of {want} bytes")
    if len(out) < min(want, info.file_size):
        raise InflateError(
            f"member inflates to {len(out)} bytes, {info.file_size} declared (truncated, or "
            "compressed size too small)"
        )
    return out


def _read_upto(reader: Any, limit: int) -> bytes:
    parts = []
    got = 0
    while got < limit:
        chunk = reader.read(min(limit - got, 1 << 20))
        if not chunk:
            break
        parts.append(chunk)
        got += len(chunk)
    return b"".join(parts)


# ---------------------------------------------------------------------------------------------
# ELF: everything below comes from lief's view of the binary.


def _parse(data: bytes, count_mtd: Any) -> Any:
    config = lief.ELF.ParserConfig()
    config.count_mtd = count_mtd
    config.parse_relocations = False
    config.parse_symtab_symbols = False
    config.parse_overlay = False
    return lief.ELF.parse(io.BytesIO(data), config)


def _wide_sysv_hash(binary: Any, data: bytes) -> bytes | None:
    """A copy lief counts right, for a 64-bit s390 file with a SysV hash table; else None.

    There the table's words are 8 bytes (the ABI's ``Elf_Symndx``; glibc's loader and binutils
    agree), but lief reads 4-byte words, so it takes the low half of nbucket for nchain and
    counts the wrong number of dynamic symbols. The copy holds (nbucket, nchain) in the first
    two 4-byte words, which is all lief uses the header for.
    """
    if binary.header.identity_class != lief.ELF.Header.CLASS.ELF64:
        return None
    if int(binary.header.machine_type) != Machine.S390:
        return None
    entry = binary.get(lief.ELF.DynamicEntry.TAG.HASH)
    if entry is None:
        return None
    off = binary.virtual_address_to_offset(int(entry.value))
    if not isinstance(off, int) or off + 16 > len(data):
        raise ElfError("DT_HASH header outside the file")
    order: Literal["little", "big"] = "little" if data[5] == 1 else "big"
    nbucket = int.from_bytes(data[off : off + 8], order)
    nchain = int.from_bytes(data[off + 8 : off + 16], order)
    if nbucket >= 1 << 32 or nchain >= 1 << 32:
        raise ElfError(f"DT_HASH nbucket {nbucket} / nchain {nchain}: table exceeds the file")
    head = nbucket.to_bytes(4, order) + nchain.to_bytes(4, order)
    return data[:off] + head + data[off + 8 :]


def elf_facts(member: str, data: bytes) -> ElfFacts:
    """ElfFacts of one whole ELF file, as lief reads it."""
    if len(data) < 16 or data[:4] != ELF_MAGIC:
        raise ElfError("not an ELF file")
    if data[4] not in (1, 2) or data[5] not in (1, 2):
        raise ElfError(f"bad ELF identity: class {data[4]}, data encoding {data[5]}")
    if len(data) < _EHDR_SIZE[data[4]]:
        raise ElfError(f"ELF header truncated: {len(data)} bytes")
    # AUTO: the largest count of hash tables, SHT_DYNSYM and relocations. HASH alone misses
    # the undefined symbols of an executable whose GNU hash table is empty (symoffset 1).
    binary = _parse(data, lief.ELF.ParserConfig.DYNSYM_COUNT.AUTO)
    if binary is None:
        raise ElfError("lief could not parse the ELF file")
    wide = _wide_sysv_hash(binary, data)
    if wide is not None:
        binary = _parse(wide, lief.ELF.ParserConfig.DYNSYM_COUNT.AUTO)
        if binary is None:
            raise ElfError("lief could not parse the ELF file")
    header = binary.header
    ident = list(header.identity)
    if bytes(ident[:8]) != data[:8]:  # lief leaves the header unset when it gives up early
        raise ElfError("ELF header truncated or unreadable")
    _check_layout(binary, len(data), ident[4])
    _check_tables(binary, len(data), ident[4])
    elf = ElfFacts(
        member=member,
        elf_class=32 if ident[4] == 1 else 64,
        endian="little" if ident[5] == 1 else "big",
        osabi=ident[7],
        e_type=int(header.file_type),
        machine=int(header.machine_type),
        e_flags=int(header.processor_flag),
    )
    if binary.has_interpreter:
        elf.interpreter = _text(binary.interpreter)
    for seg in binary.segments:
        if seg.type == _SEG.DYNAMIC:
            elf.has_dynamic = True
        elif seg.type == _SEG.GNU_STACK:
            elf.stack = "exec" if int(seg.flags) & SegmentFlags.X else "noexec"
    _dynamic(binary, elf)
    syms = list(binary.dynamic_symbols)
    elf.symbol_count = len(syms) if syms else None
    _versions(binary, elf)
    _symbols(binary, syms, elf)
    if elf.machine in (Machine.X86_64, Machine.I386):
        elf.x86_isa_needed = _isa_needed(binary)
    return elf


_EHDR_SIZE = {1: 52, 2: 64}
_PHENT_SIZE = {1: 32, 2: 56}
_SYM_SIZE = {1: 16, 2: 24}
_STRING_TAGS = (_TAG.NEEDED, _TAG.SONAME, _TAG.RPATH, _TAG.RUNPATH)
_ADDRESS_TAGS = ("STRTAB", "SYMTAB", "HASH", "GNU_HASH", "VERSYM", "VERNEED", "VERDEF")


def _check_layout(binary: Any, size: int, cls: int) -> None:
    """Reject what lief tolerates silently: tables outside the file or outside every PT_LOAD."""
    h = binary.header
    if h.numberof_segments and h.program_header_size != _PHENT_SIZE[cls]:
        raise ElfError(
            f"e_phentsize {h.program_header_size} is not the program header size {_PHENT_SIZE[cls]}"
        )
    ph_end = h.program_header_offset + h.numberof_segments * h.program_header_size
    if h.numberof_segments and ph_end > size:
        raise ElfError(
            f"program headers (e_phoff {h.program_header_offset:#x}, e_phnum "
            f"{h.numberof_segments}) run past the end of the file ({size} bytes)"
        )
    loads = [s for s in binary.segments if s.type == _SEG.LOAD]
    for seg in binary.segments:
        if seg.type == _SEG.DYNAMIC and seg.file_offset + seg.physical_size > size:
            raise ElfError(
                f"PT_DYNAMIC ({seg.physical_size} bytes at {seg.file_offset:#x}) runs past "
                f"the end of the file ({size} bytes)"
            )
    values = {str(e.tag).rsplit(".", 1)[-1]: int(e.value) for e in binary.dynamic_entries}
    for name in _ADDRESS_TAGS:
        if name not in values:
            continue
        addr = values[name]
        seg = next(
            (s for s in loads if s.virtual_address <= addr < s.virtual_address + s.virtual_size),
            None,
        )
        if seg is None:
            raise ElfError(f"DT_{name} address {addr:#x} not in any PT_LOAD segment")
        offset = addr - seg.virtual_address + seg.file_offset
        if offset >= size:
            raise ElfError(f"DT_{name} address {addr:#x} maps past the end of the file")
        if name == "STRTAB" and offset + values.get("STRSZ", 0) > size:
            raise ElfError(
                f"dynstr (DT_STRSZ {values.get('STRSZ', 0)} at {offset:#x}) runs past the end "
                f"of the file ({size} bytes)"
            )


def _check_tables(binary: Any, size: int, cls: int) -> None:
    """Hash-table sizes, string offsets and version chains, as far as lief lets us see them."""
    values = {str(e.tag).rsplit(".", 1)[-1]: int(e.value) for e in binary.dynamic_entries}
    strsz = values.get("STRSZ")
    for entry in binary.dynamic_entries:
        if entry.tag in _STRING_TAGS and strsz is not None and int(entry.value) >= strsz:
            name = str(entry.tag).rsplit(".", 1)[-1]
            raise ElfError(
                f"DT_{name} string offset {int(entry.value):#x} outside dynstr (DT_STRSZ {strsz})"
            )
    if "HASH" in values and binary.use_sysv_hash:
        nchain = int(binary.sysv_hash.nchain)
        if nchain * _SYM_SIZE[cls] > size:
            raise ElfError(f"DT_HASH nchain {nchain}: symbol table would exceed the file")
    if "GNU_HASH" in values and binary.use_gnu_hash:
        gnu = binary.gnu_hash
        word = 4 if cls == 1 else 8
        # lief zeroes a table it finds corrupt; ld never writes 0 buckets or 0 bloom words
        buckets, bloom = int(gnu.nb_buckets), len(gnu.bloom_filters)
        if not buckets or not bloom or buckets * 4 > size or bloom * word > size:
            raise ElfError(
                f"DT_GNU_HASH: {gnu.nb_buckets} buckets / {len(gnu.bloom_filters)} bloom "
                "words exceed the file"
            )
    files = []
    for req in binary.symbols_version_requirement:
        names = [aux.name for aux in req.get_auxiliary_symbols()]
        if not req.name or not all(names):
            raise ElfError("verneed: empty name (string offset outside dynstr)")
        if len(set(names)) != len(names):
            raise ElfError(f"vernaux chain of {req.name} loops (a version listed twice)")
        files.append(req.name)
    if len(set(files)) != len(files):
        raise ElfError("verneed chain loops (a library listed twice)")
    ndx = [int(d.ndx) for d in binary.symbols_version_definition]
    if len(set(ndx)) != len(ndx):
        raise ElfError("verdef chain loops (a version index defined twice)")
    _check_string_budget(binary, strsz)


#: The native scanner's bound on dynstr strings read per ELF: twice DT_STRSZ plus this.
STRING_SLACK = 1 << 20


def _string_bytes(value: str | bytes) -> int:
    return len(value if isinstance(value, bytes) else value.encode("utf-8", "surrogatepass")) + 1


def _check_string_budget(binary: Any, strsz: int | None) -> None:
    """Refuse, as the native scanner does, an object whose dynstr strings (the ones facts
    read: dynamic-entry strings, imported names, runtime exports, version names) total more
    than twice DT_STRSZ plus :data:`STRING_SLACK`: names pointing into one another."""
    if strsz is None:
        return
    budget = 2 * strsz + STRING_SLACK
    total = 0
    for e in binary.dynamic_entries:
        if e.tag == _TAG.NEEDED or e.tag == _TAG.SONAME:
            total += _string_bytes(e.name)
        elif e.tag == _TAG.RPATH:
            total += _string_bytes(e.rpath)
        elif e.tag == _TAG.RUNPATH:
            total += _string_bytes(e.runpath)
    for req in binary.symbols_version_requirement:
        total += _string_bytes(req.name)
        total += sum(_string_bytes(aux.name) for aux in req.get_auxiliary_symbols())
    for d in binary.symbols_version_definition:
        if len(d.auxiliary_symbols):
            total += _string_bytes(d.auxiliary_symbols[0].name)
    for sym in list(binary.dynamic_symbols)[1:]:  # symbol 0 is the null symbol
        if total > budget:
            break
        runtime = (sym.binding == _BIND.GLOBAL and sym.visibility == _VIS.DEFAULT
                   and _text(sym.name).startswith(RUNTIME_PREFIXES))
        if sym.shndx == SHN_UNDEF or runtime:  # the names the facts read
            total += _string_bytes(sym.name)
    if total > budget:
        raise ElfError(f"dynstr names overlap: more than {budget} bytes of strings read from "
                       f"a DT_STRSZ of {strsz} (names pointing into one another)")


def _dynamic(binary: Any, elf: ElfFacts) -> None:
    for entry in binary.dynamic_entries:
        tag = entry.tag
        if tag == _TAG.NEEDED:
            elf.needed.append(_text(entry.name))
        elif tag == _TAG.SONAME:
            if elf.soname is None:
                elf.soname = _text(entry.name)
        elif tag == _TAG.RPATH:
            elf.rpath.extend(_split_path(_text(entry.rpath)))
        elif tag == _TAG.RUNPATH:
            elf.runpath.extend(_split_path(_text(entry.runpath)))
        elif tag == _TAG.FLAGS:
            elf.dt_flags = int(entry.value)
        elif tag == _TAG.FLAGS_1:
            elf.dt_flags_1 = int(entry.value)
        elif tag == _TAG.TEXTREL:
            elf.textrel = True
    if elf.dt_flags & DynFlags.TEXTREL:
        elf.textrel = True


def _text(value: str | bytes) -> str:
    """lief hands back bytes for a string that is not UTF-8; decode it as the native engine
    does (UTF-8 with replacement), so facts hold only str and stay JSON-serialisable."""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else value


def _split_path(value: str) -> list[str]:
    return value.split(":") if value else []


def _versions(binary: Any, elf: ElfFacts) -> None:
    for req in binary.symbols_version_requirement:
        elf.version_needs.append(
            LibraryNeed(
                _text(req.name),
                [
                    VersionNeed(_text(aux.name), bool(aux.flags & VersionFlags.WEAK))
                    for aux in req.get_auxiliary_symbols()
                ],
            )
        )
    defs = sorted(binary.symbols_version_definition, key=lambda d: d.ndx)
    elf.version_defs = [
        _text(d.auxiliary_symbols[0].name) for d in defs if len(d.auxiliary_symbols)
    ]


def _symbols(binary: Any, syms: list[Any], elf: ElfFacts) -> None:
    # versym index -> (library, version), from the Vernaux entries' vna_other
    needs: dict[int, tuple[str, str]] = {}
    for req in binary.symbols_version_requirement:
        for aux in req.get_auxiliary_symbols():
            needs[int(aux.other)] = (_text(req.name), _text(aux.name))
    groups: dict[tuple[str | None, str | None], list[Any]] = {}
    runtime: list[str] = []
    for sym in syms[1:]:
        if sym.shndx == SHN_UNDEF:
            key: tuple[str | None, str | None] = (None, None)
            if sym.has_version:
                key = needs.get(sym.symbol_version.value & 0x7FFF, (None, None))
            groups.setdefault(key, []).append(sym)
            continue
        if sym.binding not in (_BIND.GLOBAL, _BIND.WEAK, _BIND.GNU_UNIQUE):
            continue
        elf.export_count += 1
        if (
            sym.binding == _BIND.GLOBAL
            and sym.visibility == _VIS.DEFAULT
            and _text(sym.name).startswith(RUNTIME_PREFIXES)
        ):
            runtime.append(_text(sym.name))
    runtime.sort()
    elf.runtime_export_count = len(runtime)
    elf.runtime_exports = runtime[:RUNTIME_EXPORT_CAP]
    undefined = [s for members in groups.values() for s in members]  # versioned ones too
    elf.python_imports, elf.python_weak_imports = python_api_imports(
        [_text(s.name) for s in undefined],
        [_text(s.name) for s in undefined if s.binding == _BIND.WEAK],
    )
    elf.imports = [_group(lib, ver, members) for (lib, ver), members in groups.items()]
    elf.imports.sort(key=lambda g: (g.library or "", g.version or ""))


def _group(library: str | None, version: str | None, syms: Iterable[Any]) -> SymbolGroup:
    syms = list(syms)
    names = sorted(_text(s.name) for s in syms)
    cap = UNVERSIONED_NAME_CAP if version is None else IMPORT_NAME_CAP
    weak = [_text(s.name) for s in syms if s.binding == _BIND.WEAK]
    return SymbolGroup(
        library=library,
        version=version,
        count=len(names),
        names=names[:cap],
        weak_count=len(weak),
        weak_names=weak_only(names, weak, cap),
    )


def _isa_needed(binary: Any) -> int | None:
    found = None
    for note in binary.notes:
        if not isinstance(note, lief.ELF.NoteGnuProperty):
            continue
        for prop in note.properties:
            if not isinstance(prop, lief.ELF.X86ISA):
                continue
            for flag, isa in prop.values:
                if flag == lief.ELF.X86ISA.FLAG.NEEDED and isa in _ISA_BITS:
                    found = (found or 0) | _ISA_BITS[isa]
    return found
