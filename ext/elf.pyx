# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""ELF parser over a prefix of the file: "parse what you have, or tell me how much you need".

:func:`parse` is stateless. Given the first ``len(data)`` bytes of an ELF file of ``total``
bytes, it either returns the facts or the prefix length it needs next (header, then program
headers, then PT_DYNAMIC/PT_INTERP/notes, then the tables PT_DYNAMIC points to). Tables are
found as the loader finds them: dynamic-tag addresses mapped through PT_LOAD, never through
section names. Every offset, size and count is checked against the bytes present (and the
file size) before use; that is why bounds checking is off in this file.

Symbol count (dynamic symbols including index 0): the hash table's count (DT_HASH nchain, an
8-byte word on 64-bit s390 and 4 bytes elsewhere, else the DT_GNU_HASH chain walk), raised to 1 + the largest symbol index of the dynamic
relocations (DT_RELA/DT_REL/DT_JMPREL), because an executable that exports nothing has an
empty GNU hash table that does not count its imports. This agrees with lief's AUTO count on
every file the differential tests build or find (lief is handed a 4-byte header on s390x). Without a hash table: (DT_STRTAB -
DT_SYMTAB) / DT_SYMENT when DT_STRTAB follows DT_SYMTAB in the same PT_LOAD segment, as GNU ld
lays them out; otherwise the count is unknown (None) and no symbols are read. Section headers
are never used: the facts must not depend on which bytes a reader happened to have (a small
file's first prefix reaches them, a sparse read never does).

Version chains (Verneed/Vernaux/Verdef) are walked as glibc does: a zero next-offset ends the
chain; the walk is bounded by DT_VERNEEDNUM/DT_VERDEFNUM, by 32768 entries (versym indexes are
15 bits) and by offsets that must advance by at least one entry, so it cannot loop.
"""

from libc.stdint cimport uint8_t, uint16_t, uint32_t, uint64_t, int64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memchr, memcmp, memset
from libc.stdio cimport snprintf
from cpython.unicode cimport PyUnicode_DecodeUTF8

from status cimport ST_OK, ST_NEED, ST_ELF, ST_ZIP, ST_INFLATE, ST_LIMIT, ST_NOMEM

from wheelscan.errors import ElfError, InflateError, LimitExceeded, ZipFormatError
from wheelscan.facts import (
    IMPORT_NAME_CAP,
    RUNTIME_EXPORT_CAP,
    RUNTIME_PREFIXES,
    UNVERSIONED_NAME_CAP,
    ElfFacts,
    LibraryNeed,
    SymbolGroup,
    python_api_imports,
    weak_only,
    VersionNeed,
)

__all__ = ["parse", "raise_status", "HEADER_PREFIX"]

#: bytes that always suffice for the ELF header (64-bit)
HEADER_PREFIX = 64

DEF MAX_VERSIONS = 0x8000  # version indexes are 15 bits (versym & 0x7fff)
DEF MAX_MISSING = 32       # missing ranges one sparse parse reports (the rest on the next)
DEF MAX_PRESENT = 4096     # present ranges a sparse parse accepts
# Strings read out of dynstr per ELF: at most twice DT_STRSZ plus this. Names may share bytes
# (ld merges a name into the tail of a longer one), but an object whose symbols point into
# one long string would make every name as long as that string: N symbols times its length.
DEF STRING_SLACK = 1 << 20

cdef enum:
    PT_LOAD = 1
    PT_DYNAMIC = 2
    PT_INTERP = 3
    PT_NOTE = 4
    PT_GNU_STACK = 0x6474E551
    PT_GNU_PROPERTY = 0x6474E553

    DT_NULL = 0
    DT_NEEDED = 1
    DT_PLTRELSZ = 2
    DT_RELA = 7
    DT_RELASZ = 8
    DT_RELAENT = 9
    DT_REL = 17
    DT_RELSZ = 18
    DT_RELENT = 19
    DT_PLTREL = 20
    DT_JMPREL = 23
    DT_HASH = 4
    DT_STRTAB = 5
    DT_SYMTAB = 6
    DT_STRSZ = 10
    DT_SYMENT = 11
    DT_SONAME = 14
    DT_RPATH = 15
    DT_TEXTREL = 22
    DT_RUNPATH = 29
    DT_FLAGS = 30
    DT_GNU_HASH = 0x6FFFFEF5
    DT_VERSYM = 0x6FFFFFF0
    DT_FLAGS_1 = 0x6FFFFFFB
    DT_VERDEF = 0x6FFFFFFC
    DT_VERDEFNUM = 0x6FFFFFFD
    DT_VERNEED = 0x6FFFFFFE
    DT_VERNEEDNUM = 0x6FFFFFFF

    DF_TEXTREL = 4
    VER_FLG_WEAK = 2
    EM_386 = 3
    EM_X86_64 = 62
    EM_S390 = 22
    NT_GNU_PROPERTY_TYPE_0 = 5

cdef uint32_t GNU_PROPERTY_X86_ISA_1_NEEDED = 0xC0008002U


cdef struct Ctx:
    const uint8_t* p
    uint64_t have        # bytes present at p
    uint64_t total       # the file's size (bytes that could ever be present)
    uint64_t need        # largest prefix a check found missing
    # sparse mode (parse(..., present=...)): ranges present beyond the prefix ``have``,
    # sorted and coalesced [start, end) pairs, and the ranges checks found missing
    const uint64_t* extra
    uint64_t nextra
    uint64_t miss[2 * MAX_MISSING]
    int nmiss
    bint is64
    bint be
    char msg[240]
    # header
    uint64_t phoff
    uint64_t phentsize
    uint64_t phnum
    uint16_t machine
    # bytes of dynstr strings read so far (cstr, runtime exports): bounded by string_budget
    uint64_t strbytes


# ---------------------------------------------------------------------------------------------
# byte readers (callers have checked the range)

cdef inline uint16_t r16(const Ctx* c, uint64_t off) noexcept nogil:
    cdef const uint8_t* q = c.p + off
    if c.be:
        return <uint16_t>((q[0] << 8) | q[1])
    return <uint16_t>(q[0] | (q[1] << 8))

cdef inline uint32_t r32(const Ctx* c, uint64_t off) noexcept nogil:
    cdef const uint8_t* q = c.p + off
    if c.be:
        return (<uint32_t>q[0] << 24) | (<uint32_t>q[1] << 16) | (<uint32_t>q[2] << 8) | q[3]
    return (<uint32_t>q[3] << 24) | (<uint32_t>q[2] << 16) | (<uint32_t>q[1] << 8) | q[0]

cdef inline uint64_t r64(const Ctx* c, uint64_t off) noexcept nogil:
    if c.be:
        return (<uint64_t>r32(c, off) << 32) | r32(c, off + 4)
    return (<uint64_t>r32(c, off + 4) << 32) | r32(c, off)

cdef inline uint64_t rword(const Ctx* c, uint64_t off) noexcept nogil:
    return r64(c, off) if c.is64 else r32(c, off)


cdef int fail(Ctx* c, const char* text) noexcept nogil:
    snprintf(c.msg, sizeof(c.msg), "%s", text)
    return ST_ELF


cdef int check(Ctx* c, uint64_t off, uint64_t size, const char* what) noexcept nogil:
    """ST_OK if [off, off+size) is present, ST_NEED (recording it) if inside the file, else error."""
    cdef uint64_t end = off + size
    if end < off or end > c.total:
        snprintf(c.msg, sizeof(c.msg), "%s (0x%llx bytes at offset 0x%llx) past end of file "
                 "(0x%llx bytes)", what, <unsigned long long>size, <unsigned long long>off,
                 <unsigned long long>c.total)
        return ST_ELF
    if size == 0:
        return ST_OK  # nothing to read (an empty note or table at the end of the file)
    if end > c.have:
        if c.nextra and covered(c, off, end):
            return ST_OK
        if end > c.need:
            c.need = end
        if c.nmiss < MAX_MISSING:
            c.miss[2 * c.nmiss] = off
            c.miss[2 * c.nmiss + 1] = end
            c.nmiss += 1
        return ST_NEED
    return ST_OK


cdef inline bint covered(const Ctx* c, uint64_t off, uint64_t end) noexcept nogil:
    """[off, end), which runs past the prefix (check() tested that), lies in one present
    range (ranges are coalesced)."""
    cdef uint64_t lo = 0, hi = c.nextra, mid
    while lo < hi:  # the last range starting at or before off
        mid = (lo + hi) // 2
        if c.extra[2 * mid] <= off:
            lo = mid + 1
        else:
            hi = mid
    return lo > 0 and c.extra[2 * (lo - 1) + 1] >= end


cdef int map_addr(Ctx* c, uint64_t addr, uint64_t* out, uint64_t* seg_end,
                  const char* what) noexcept nogil:
    """File offset of virtual address ``addr`` through the PT_LOAD segments (program headers
    are present when this is called)."""
    cdef uint64_t i, ph, vaddr, filesz, offset
    for i in range(c.phnum):
        ph = c.phoff + i * c.phentsize
        if r32(c, ph) != PT_LOAD:
            continue
        if c.is64:
            offset = r64(c, ph + 8)
            vaddr = r64(c, ph + 16)
            filesz = r64(c, ph + 32)
        else:
            offset = r32(c, ph + 4)
            vaddr = r32(c, ph + 8)
            filesz = r32(c, ph + 16)
        if vaddr <= addr and addr - vaddr < filesz:
            out[0] = offset + (addr - vaddr)
            seg_end[0] = offset + filesz
            if out[0] < offset or seg_end[0] < offset:
                break
            return ST_OK
    snprintf(c.msg, sizeof(c.msg), "%s address 0x%llx not in any PT_LOAD segment", what,
             <unsigned long long>addr)
    return ST_ELF


# ---------------------------------------------------------------------------------------------
# the parse, phase by phase; each phase returns ST_NEED with c.need set when bytes are missing

cdef int parse_header(Ctx* c) noexcept nogil:
    cdef int r = check(c, 0, 16, "ELF identification")
    if r != ST_OK:
        return r
    if memcmp(c.p, b"\x7fELF", 4) != 0:
        return fail(c, "not an ELF file (bad magic)")
    if c.p[4] != 1 and c.p[4] != 2:
        snprintf(c.msg, sizeof(c.msg), "unknown ELF class %d", <int>c.p[4])
        return ST_ELF
    if c.p[5] != 1 and c.p[5] != 2:
        snprintf(c.msg, sizeof(c.msg), "unknown ELF data encoding %d", <int>c.p[5])
        return ST_ELF
    c.is64 = c.p[4] == 2
    c.be = c.p[5] == 2
    r = check(c, 0, 64 if c.is64 else 52, "ELF header")
    if r != ST_OK:
        return r
    c.machine = r16(c, 18)
    if c.is64:
        c.phoff = r64(c, 32)
        c.phentsize = r16(c, 54)
        c.phnum = r16(c, 56)
    else:
        c.phoff = r32(c, 28)
        c.phentsize = r16(c, 42)
        c.phnum = r16(c, 44)
    if c.phnum and c.phentsize < (56 if c.is64 else 32):
        snprintf(c.msg, sizeof(c.msg), "e_phentsize %d too small", <int>c.phentsize)
        return ST_ELF
    return check(c, c.phoff, c.phnum * c.phentsize, "program headers")


cdef struct Seg:
    bint found
    uint64_t offset
    uint64_t filesz
    uint64_t align
    uint32_t flags


cdef struct Layout:
    Seg dynamic
    Seg interp
    Seg stack
    Seg prop        # PT_GNU_PROPERTY
    uint64_t nnotes


cdef void read_phdr(const Ctx* c, uint64_t ph, Seg* s) noexcept nogil:
    s.found = True
    if c.is64:
        s.flags = r32(c, ph + 4)
        s.offset = r64(c, ph + 8)
        s.filesz = r64(c, ph + 32)
        s.align = r64(c, ph + 48)
    else:
        s.offset = r32(c, ph + 4)
        s.filesz = r32(c, ph + 16)
        s.flags = r32(c, ph + 24)
        s.align = r32(c, ph + 28)


cdef bint wants_isa(const Ctx* c) noexcept nogil:
    return c.machine == EM_X86_64 or c.machine == EM_386


cdef int scan_phdrs(Ctx* c, Layout* L) noexcept nogil:
    """Find the segments; check that those we read (dynamic, interp, notes) are present."""
    cdef uint64_t i, ph
    cdef uint32_t t
    cdef Seg s
    cdef int r, worst = ST_OK
    for i in range(c.phnum):
        ph = c.phoff + i * c.phentsize
        t = r32(c, ph)
        if t == PT_DYNAMIC and not L.dynamic.found:
            read_phdr(c, ph, &L.dynamic)
            r = check(c, L.dynamic.offset, L.dynamic.filesz, "PT_DYNAMIC")
        elif t == PT_INTERP and not L.interp.found:
            read_phdr(c, ph, &L.interp)
            r = check(c, L.interp.offset, L.interp.filesz, "PT_INTERP")
        elif t == PT_GNU_STACK and not L.stack.found:
            read_phdr(c, ph, &L.stack)
            r = ST_OK
        elif t == PT_GNU_PROPERTY and not L.prop.found:
            read_phdr(c, ph, &L.prop)
            r = check(c, L.prop.offset, L.prop.filesz, "PT_GNU_PROPERTY") if wants_isa(c) else ST_OK
        elif t == PT_NOTE:
            L.nnotes += 1
            read_phdr(c, ph, &s)
            r = check(c, s.offset, s.filesz, "PT_NOTE") if wants_isa(c) else ST_OK
        else:
            r = ST_OK
        if r == ST_ELF:
            return r
        if r == ST_NEED:
            worst = ST_NEED
    return worst


cdef int64_t isa_from_notes(Ctx* c, const Seg* s) noexcept nogil:
    """OR of GNU_PROPERTY_X86_ISA_1_NEEDED values in one note segment, -1 if none."""
    cdef uint64_t pos = s.offset, end = s.offset + s.filesz
    cdef uint64_t namesz, descsz, ntype, desc, dend, q, pr_type, pr_size, step
    cdef uint64_t align = 8 if s.align == 8 else 4
    cdef uint64_t palign = 8 if c.is64 else 4
    cdef int64_t found = -1
    while pos + 12 <= end:
        namesz = r32(c, pos)
        descsz = r32(c, pos + 4)
        ntype = r32(c, pos + 8)
        desc = pos + ((12 + namesz + align - 1) & ~(align - 1))
        dend = desc + descsz
        if dend > end:
            break
        if (ntype == NT_GNU_PROPERTY_TYPE_0 and namesz == 4
                and memcmp(c.p + pos + 12, b"GNU\0", 4) == 0):
            q = desc
            while q + 8 <= dend:
                pr_type = r32(c, q)
                pr_size = r32(c, q + 4)
                if q + 8 + pr_size > dend:
                    break
                if pr_type == GNU_PROPERTY_X86_ISA_1_NEEDED and pr_size >= 4:
                    found = (0 if found < 0 else found) | r32(c, q + 8)
                step = 8 + ((pr_size + palign - 1) & ~(palign - 1))
                q += step
        pos = desc + ((descsz + align - 1) & ~(align - 1))
    return found


cdef struct Dyn:
    uint64_t strtab, strsz, symtab, syment, hash, gnu_hash, versym
    uint64_t verneed, verneednum, verdef, verdefnum, flags, flags_1
    uint64_t rela, relasz, relaent, rel, relsz, relent, jmprel, pltrelsz, pltrel, soname
    bint has_strtab, has_strsz, has_soname, has_symtab, has_hash, has_gnu_hash, has_versym
    bint has_verneed, has_verneednum, has_verdef, has_verdefnum, textrel
    bint has_rela, has_rel, has_jmprel
    # file offsets (valid after mapping) and the end of the PT_LOAD segment holding each
    uint64_t strtab_off, strtab_end, symtab_off, symtab_seg_end, hash_off, gnu_hash_off
    uint64_t versym_off, verneed_off, verdef_off


cdef object cstr(Ctx* c, const Dyn* d, uint64_t off, const char* what):
    """The NUL-terminated string at DT_STRTAB + off, checked against DT_STRSZ and the buffer."""
    cdef const uint8_t* start
    cdef const void* nul
    if off >= d.strsz:
        snprintf(c.msg, sizeof(c.msg), "%s string offset 0x%llx outside dynstr (DT_STRSZ 0x%llx)",
                 what, <unsigned long long>off, <unsigned long long>d.strsz)
        return None
    start = c.p + d.strtab_off + off
    nul = memchr(start, 0, <size_t>(d.strsz - off))
    if nul == NULL:
        snprintf(c.msg, sizeof(c.msg), "%s string at dynstr offset 0x%llx not terminated", what,
                 <unsigned long long>off)
        return None
    if over_string_budget(c, d, <const uint8_t*>nul - start):
        return None
    return PyUnicode_DecodeUTF8(<const char*>start, <const uint8_t*>nul - start, "replace")


cdef bint over_string_budget(Ctx* c, const Dyn* d, uint64_t length) noexcept nogil:
    """Count a string of ``length`` bytes read from dynstr; True (and the message) once the
    strings read exceed twice DT_STRSZ plus STRING_SLACK: overlapping names would otherwise
    cost memory quadratic in the bytes inflated."""
    c.strbytes += length + 1
    if c.strbytes <= 2 * d.strsz + STRING_SLACK:
        return False
    snprintf(c.msg, sizeof(c.msg), "dynstr names overlap: more than %llu bytes of strings "
             "read from a DT_STRSZ of %llu (names pointing into one another)",
             <unsigned long long>(2 * d.strsz + STRING_SLACK), <unsigned long long>d.strsz)
    return True


cdef object need_or_error(Ctx* c, int r):
    cdef int i
    if r == ST_NEED:
        if c.extra != NULL:
            return [(c.miss[2 * i], c.miss[2 * i + 1]) for i in range(c.nmiss)]
        return c.need
    raise_status(r, c.msg.decode("utf-8", "replace"))


cdef list _prefixes = [p.encode() for p in RUNTIME_PREFIXES]  # keeps the C pointers valid
DEF MAX_PREFIXES = 64
cdef const char* _pfx[MAX_PREFIXES]
cdef size_t _pfx_len[MAX_PREFIXES]
cdef size_t _npfx = 0


cdef void _init_prefixes() except *:
    global _npfx
    cdef bytes p
    for p in _prefixes[:MAX_PREFIXES]:
        _pfx[_npfx] = <const char*>p
        _pfx_len[_npfx] = len(p)
        _npfx += 1


_init_prefixes()


cdef inline bint is_runtime_name(const uint8_t* name, size_t n) noexcept nogil:
    cdef size_t i
    if n == 0 or name[0] != 95:  # '_'
        return False
    for i in range(_npfx):
        if _pfx_len[i] <= n and memcmp(name, _pfx[i], _pfx_len[i]) == 0:
            return True
    return False


def raise_status(int status, str message):
    """The one place where a status code from the C-level parsers becomes an exception."""
    if status == ST_ELF:
        raise ElfError(message)
    if status == ST_ZIP:
        raise ZipFormatError(message)
    if status == ST_INFLATE:
        raise InflateError(message)
    if status == ST_LIMIT:
        raise LimitExceeded(message)
    if status == ST_NOMEM:
        raise MemoryError(message)
    raise ValueError(f"unexpected status {status}: {message}")


def parse(const uint8_t[::1] data not None, uint64_t total, str member="", present=None):
    """Facts of the ELF file whose first ``len(data)`` bytes are ``data`` (``total`` bytes long),
    or the prefix length (an ``int`` > ``len(data)``) needed to go on.

    Sparse mode, for readers that fetch ranges rather than a prefix (a stored member read
    through a file object): ``data`` spans the whole file, ``present`` lists the ``(start,
    end)`` ranges of it that hold the file's bytes, and what is missing comes back as a list of
    ``(start, end)`` ranges (at most 32 per call) instead of a prefix length. The facts are the
    same as from a prefix holding those ranges.

    Raises :class:`~wheelscan.errors.ElfError` naming the problem for malformed input.
    """
    cdef Ctx c
    cdef uint64_t* ext = NULL
    cdef uint64_t k = 0, s, e
    if present is None:
        return parse_prefix(&data[0] if data.shape[0] else NULL, data.shape[0], total, member)
    init_ctx(&c, &data[0] if data.shape[0] else NULL, data.shape[0], total)
    if c.have < total:
        raise ValueError(f"sparse parse: {c.have} bytes of buffer for a {total}-byte file")
    ranges = sorted(present)
    ext = <uint64_t*>malloc((2 * len(ranges) + 2) * sizeof(uint64_t))
    if ext == NULL:
        raise MemoryError()
    try:
        for s, e in ranges:
            if e > total or s >= e:
                continue
            if k and s <= ext[2 * k - 1]:  # overlapping or adjacent: coalesce
                if e > ext[2 * k - 1]:
                    ext[2 * k - 1] = e
                continue
            ext[2 * k] = s
            ext[2 * k + 1] = e
            k += 1
        if k > MAX_PRESENT:
            raise ValueError(f"sparse parse: more than {MAX_PRESENT} present ranges")
        c.have = ext[1] if k and ext[0] == 0 else 0
        c.extra = ext
        c.nextra = k
        return _parse(&c, member)
    finally:
        free(ext)


cdef inline void init_ctx(Ctx* c, const uint8_t* p, uint64_t have, uint64_t total) noexcept:
    c.p = p if p != NULL else <const uint8_t*>b""
    c.have = have if have < total else total
    c.total = total
    c.need = 0
    c.msg[0] = 0
    c.extra = NULL
    c.nextra = 0
    c.nmiss = 0
    c.strbytes = 0


cdef object parse_prefix(const uint8_t* p, uint64_t have, uint64_t total, str member):
    """:func:`parse` of a prefix (``have`` bytes at ``p``): the ZIP reader cimports this and
    calls it on its output buffer, with no buffer object per round."""
    cdef Ctx c
    init_ctx(&c, p, have, total)
    return _parse(&c, member)



cdef object _parse(Ctx* c, str member):
    cdef Layout L
    cdef int r
    r = parse_header(c)
    if r != ST_OK:
        return need_or_error(c, r)
    L.dynamic.found = L.interp.found = L.stack.found = L.prop.found = False
    L.nnotes = 0
    r = scan_phdrs(c, &L)
    if r != ST_OK:
        return need_or_error(c, r)
    return _dynamic_phase(c, &L, member)


cdef object _dynamic_phase(Ctx* c, Layout* L, str member):
    """ElfFacts from the headers and segments, then the dynamic section and its strings;
    the symbol and version tables follow in :func:`_tables_phase`."""
    cdef Dyn d
    cdef int r
    cdef list needed_offs = [], rpath_offs = [], runpath_offs = []
    elf = _header_facts(c, member)
    _segment_facts(c, L, elf)
    if not L.dynamic.found:
        return elf
    elf.has_dynamic = True
    memset_dyn(&d)
    r = read_dynamic(c, L, &d, needed_offs, rpath_offs, runpath_offs)
    if r != ST_OK:
        return need_or_error(c, r)
    elf.dt_flags = d.flags
    elf.dt_flags_1 = d.flags_1
    elf.textrel = d.textrel or (d.flags & DF_TEXTREL) != 0
    r = locate_tables(c, &d, needed_offs or rpath_offs or runpath_offs or d.has_soname)
    if r != ST_OK:
        return need_or_error(c, r)
    if _dynamic_strings(c, &d, elf, needed_offs, rpath_offs, runpath_offs) != ST_OK:
        return need_or_error(c, ST_ELF)
    return _tables_phase(c, &d, elf)


cdef object _header_facts(Ctx* c, str member):
    return ElfFacts(
        member=member,
        elf_class=64 if c.is64 else 32,
        endian="big" if c.be else "little",
        osabi=c.p[7],
        e_type=r16(c, 16),
        machine=c.machine,
        e_flags=r32(c, 48 if c.is64 else 36),
    )


cdef int _segment_facts(Ctx* c, Layout* L, object elf) except -1:
    """What the program headers say beyond PT_DYNAMIC: the interpreter, the stack's
    permission, and the x86 ISA level the GNU property notes need."""
    cdef uint64_t i, ph, n
    cdef int64_t isa = -1, one
    cdef Seg s
    cdef const void* nul
    if L.interp.found:
        nul = memchr(c.p + L.interp.offset, 0, <size_t>L.interp.filesz)
        n = (<const uint8_t*>nul - (c.p + L.interp.offset)) if nul != NULL else L.interp.filesz
        elf.interpreter = PyUnicode_DecodeUTF8(<const char*>c.p + L.interp.offset, n, "replace")
    if L.stack.found:
        elf.stack = "exec" if L.stack.flags & 1 else "noexec"
    if wants_isa(c):
        if L.prop.found:
            isa = isa_from_notes(c, &L.prop)
        else:
            for i in range(c.phnum):
                ph = c.phoff + i * c.phentsize
                if r32(c, ph) == PT_NOTE:
                    read_phdr(c, ph, &s)
                    one = isa_from_notes(c, &s)
                    if one >= 0:
                        isa = (0 if isa < 0 else isa) | one
        if isa >= 0:
            elf.x86_isa_needed = isa
    return 0


cdef int read_dynamic(Ctx* c, Layout* L, Dyn* d, list needed_offs, list rpath_offs,
                      list runpath_offs) except? -100:
    """The dynamic tags, up to DT_NULL, into ``d``; the string tags' offsets into the lists
    (in order: each may repeat), the first DT_SONAME's into ``d``. ST_OK, or ST_ELF."""
    cdef uint64_t i, ent, count, tag, val
    ent = 16 if c.is64 else 8
    count = L.dynamic.filesz // ent
    for i in range(count):
        tag = rword(c, L.dynamic.offset + i * ent)
        val = rword(c, L.dynamic.offset + i * ent + ent // 2)
        if tag == DT_NULL:
            break
        if tag == DT_NEEDED:
            needed_offs.append(val)
        elif tag == DT_SONAME:
            if not d.has_soname:
                d.soname = val; d.has_soname = True
        elif tag == DT_RPATH:
            rpath_offs.append(val)
        elif tag == DT_RUNPATH:
            runpath_offs.append(val)
        elif tag == DT_STRTAB:
            d.strtab = val; d.has_strtab = True
        elif tag == DT_STRSZ:
            d.strsz = val; d.has_strsz = True
        elif tag == DT_SYMTAB:
            d.symtab = val; d.has_symtab = True
        elif tag == DT_SYMENT:
            d.syment = val
        elif tag == DT_HASH:
            d.hash = val; d.has_hash = True
        elif tag == DT_GNU_HASH:
            d.gnu_hash = val; d.has_gnu_hash = True
        elif tag == DT_VERSYM:
            d.versym = val; d.has_versym = True
        elif tag == DT_VERNEED:
            d.verneed = val; d.has_verneed = True
        elif tag == DT_VERNEEDNUM:
            d.verneednum = val; d.has_verneednum = True
        elif tag == DT_VERDEF:
            d.verdef = val; d.has_verdef = True
        elif tag == DT_VERDEFNUM:
            d.verdefnum = val; d.has_verdefnum = True
        elif tag == DT_FLAGS:
            d.flags = val
        elif tag == DT_FLAGS_1:
            d.flags_1 = val
        elif tag == DT_TEXTREL:
            d.textrel = True
        elif tag == DT_RELA:
            d.rela = val; d.has_rela = True
        elif tag == DT_RELASZ:
            d.relasz = val
        elif tag == DT_RELAENT:
            d.relaent = val
        elif tag == DT_REL:
            d.rel = val; d.has_rel = True
        elif tag == DT_RELSZ:
            d.relsz = val
        elif tag == DT_RELENT:
            d.relent = val
        elif tag == DT_JMPREL:
            d.jmprel = val; d.has_jmprel = True
        elif tag == DT_PLTRELSZ:
            d.pltrelsz = val
        elif tag == DT_PLTREL:
            d.pltrel = val
    if d.syment == 0:
        d.syment = 24 if c.is64 else 16
    elif d.syment < (24 if c.is64 else 16):
        snprintf(c.msg, sizeof(c.msg), "DT_SYMENT %llu too small", <unsigned long long>d.syment)
        return ST_ELF
    return ST_OK


cdef int locate_tables(Ctx* c, Dyn* d, bint uses_strings) noexcept nogil:
    """Map the tables' addresses to file offsets (through PT_LOAD, as the loader does), then
    check the fixed-size parts are present: ST_OK, ST_NEED (more bytes) or ST_ELF."""
    cdef uint64_t seg_end
    cdef int r, worst = ST_OK
    if d.has_strtab:
        r = map_addr(c, d.strtab, &d.strtab_off, &d.strtab_end, "DT_STRTAB")
        if r != ST_OK:
            return r
        if not d.has_strsz:
            d.strsz = d.strtab_end - d.strtab_off  # no DT_STRSZ: bounded by its segment
        worst = merge(worst, check(c, d.strtab_off, d.strsz, "dynstr (DT_STRTAB/DT_STRSZ)"))
    elif uses_strings:
        return fail(c, "dynamic strings used but no DT_STRTAB")
    else:
        d.strsz = 0  # a DT_STRSZ without DT_STRTAB bounds nothing: every name is out of range
    if d.has_symtab:
        r = map_addr(c, d.symtab, &d.symtab_off, &d.symtab_seg_end, "DT_SYMTAB")
        if r != ST_OK:
            return r
    if d.has_hash:
        r = map_addr(c, d.hash, &d.hash_off, &seg_end, "DT_HASH")
        if r != ST_OK:
            return r
        worst = merge(worst, check(c, d.hash_off, 2 * hash_word(c), "DT_HASH header"))
    if d.has_gnu_hash:
        r = map_addr(c, d.gnu_hash, &d.gnu_hash_off, &seg_end, "DT_GNU_HASH")
        if r != ST_OK:
            return r
        worst = merge(worst, check(c, d.gnu_hash_off, 16, "DT_GNU_HASH header"))
    if d.has_versym:
        r = map_addr(c, d.versym, &d.versym_off, &seg_end, "DT_VERSYM")
        if r != ST_OK:
            return r
    if d.has_verneed:
        r = map_addr(c, d.verneed, &d.verneed_off, &seg_end, "DT_VERNEED")
        if r != ST_OK:
            return r
    if d.has_verdef:
        r = map_addr(c, d.verdef, &d.verdef_off, &seg_end, "DT_VERDEF")
        if r != ST_OK:
            return r
    return worst


cdef int _dynamic_strings(Ctx* c, Dyn* d, object elf, list needed_offs, list rpath_offs,
                          list runpath_offs) except? -100:
    """DT_NEEDED, DT_SONAME, DT_RPATH and DT_RUNPATH as strings: ST_OK, or ST_ELF."""
    needed = []
    for off in needed_offs:
        sv = cstr(c, d, off, "DT_NEEDED")
        if sv is None:
            return ST_ELF
        needed.append(sv)
    elf.needed = needed
    if d.has_soname:
        sv = cstr(c, d, d.soname, "DT_SONAME")
        if sv is None:
            return ST_ELF
        elf.soname = sv
    for off in rpath_offs:
        sv = cstr(c, d, off, "DT_RPATH")
        if sv is None:
            return ST_ELF
        if sv:
            elf.rpath.extend(sv.split(":"))
    for off in runpath_offs:
        sv = cstr(c, d, off, "DT_RUNPATH")
        if sv is None:
            return ST_ELF
        if sv:
            elf.runpath.extend(sv.split(":"))
    return ST_OK


cdef void memset_dyn(Dyn* d) noexcept nogil:
    memset(d, 0, sizeof(Dyn))


cdef inline int merge(int a, int b) noexcept nogil:
    if a == ST_ELF or b == ST_ELF:
        return ST_ELF
    if a == ST_NEED or b == ST_NEED:
        return ST_NEED
    return ST_OK


cdef inline uint64_t hash_word(const Ctx* c) noexcept nogil:
    # The SysV hash table's words are 4 bytes, except on 64-bit s390 where the ABI (and
    # glibc's loader, and binutils, sh_entsize 8) makes them 8.
    return 8 if (c.is64 and c.machine == EM_S390) else 4


cdef int symbol_count(Ctx* c, Dyn* d, uint64_t* out, bint* known) noexcept nogil:
    cdef uint64_t nbuckets, symoffset, bloom, buckets_off, chain_off, i, maxb, b, idx
    cdef int r
    known[0] = False
    if d.has_hash:
        # nchain, the second word of the SysV hash header
        if hash_word(c) == 8:
            out[0] = r64(c, d.hash_off + 8)
        else:
            out[0] = r32(c, d.hash_off + 4)
        known[0] = True
        return ST_OK
    if d.has_gnu_hash:
        nbuckets = r32(c, d.gnu_hash_off)
        symoffset = r32(c, d.gnu_hash_off + 4)
        bloom = r32(c, d.gnu_hash_off + 8)
        buckets_off = d.gnu_hash_off + 16 + bloom * (8 if c.is64 else 4)
        r = check(c, buckets_off, nbuckets * 4, "DT_GNU_HASH buckets")
        if r != ST_OK:
            return r
        maxb = 0
        for i in range(nbuckets):
            b = r32(c, buckets_off + 4 * i)
            if b > maxb:
                maxb = b
        chain_off = buckets_off + nbuckets * 4
        if maxb == 0:
            out[0] = symoffset
            known[0] = True
            return ST_OK
        if maxb < symoffset:
            snprintf(c.msg, sizeof(c.msg), "DT_GNU_HASH bucket %llu below symoffset %llu",
                     <unsigned long long>maxb, <unsigned long long>symoffset)
            return ST_ELF
        idx = maxb
        # each step advances 4 bytes, so the walk is bounded by the file size
        while True:
            r = check(c, chain_off + 4 * (idx - symoffset), 4, "DT_GNU_HASH chain")
            if r != ST_OK:
                return r
            if r32(c, chain_off + 4 * (idx - symoffset)) & 1:
                break
            idx += 1
        out[0] = idx + 1
        known[0] = True
        return ST_OK
    return ST_OK


cdef int reloc_table_max(Ctx* c, uint64_t addr, uint64_t size, uint64_t ent, bint rela,
                         const char* what, uint64_t* maxsym) noexcept nogil:
    cdef uint64_t off, seg_end, i, n, info, idx
    cdef int r
    if size == 0:
        return ST_OK
    if ent == 0:
        ent = (24 if rela else 16) if c.is64 else (12 if rela else 8)
    elif ent < (8 if c.is64 else 4) * 2:
        snprintf(c.msg, sizeof(c.msg), "%s entry size %llu too small", what,
                 <unsigned long long>ent)
        return ST_ELF
    r = map_addr(c, addr, &off, &seg_end, what)
    if r != ST_OK:
        return r
    r = check(c, off, size, what)
    if r != ST_OK:
        return r
    n = size // ent
    for i in range(n):
        info = rword(c, off + i * ent + (8 if c.is64 else 4))
        idx = (info >> 32) if c.is64 else (info >> 8)
        if idx + 1 > maxsym[0]:
            maxsym[0] = idx + 1
    return ST_OK


cdef int reloc_symbol_count(Ctx* c, Dyn* d, uint64_t* out) noexcept nogil:
    """1 + the largest symbol index the dynamic relocations use (0 without relocations)."""
    cdef int r, worst = ST_OK
    out[0] = 0
    if d.has_rela:
        r = reloc_table_max(c, d.rela, d.relasz, d.relaent, True, "DT_RELA", out)
        worst = merge(worst, r)
    if d.has_rel and worst != ST_ELF:
        r = reloc_table_max(c, d.rel, d.relsz, d.relent, False, "DT_REL", out)
        worst = merge(worst, r)
    if d.has_jmprel and worst != ST_ELF:
        r = reloc_table_max(c, d.jmprel, d.pltrelsz, 0, d.pltrel != DT_REL, "DT_JMPREL", out)
        worst = merge(worst, r)
    return worst


cdef object _tables_phase(Ctx* c, Dyn* d, object elf):
    """The symbol count, the version needs and definitions, then the symbols themselves."""
    cdef uint64_t count = 0
    cdef bint known = False
    cdef int r, worst
    cdef dict vneeds = {}
    r = dynsym_count(c, d, &count, &known)
    if r != ST_OK:
        return need_or_error(c, r)
    worst = check_symbol_tables(c, d, count, known)
    if worst == ST_ELF:
        return need_or_error(c, worst)
    # version needs and definitions (walks that may ask for more bytes)
    r = walk_verneed(c, d, elf, vneeds)
    worst = merge(worst, r)
    if r == ST_ELF:
        return need_or_error(c, r)
    r = walk_verdef(c, d, elf)
    worst = merge(worst, r)
    if worst != ST_OK:
        return need_or_error(c, worst)
    if not known:
        return elf
    elf.symbol_count = count if count else None
    if _symbols(c, d, elf, count, vneeds) != ST_OK:
        return need_or_error(c, ST_ELF)
    return elf


cdef int dynsym_count(Ctx* c, Dyn* d, uint64_t* count, bint* known) noexcept nogil:
    """How many dynamic symbols there are, if that can be known: like lief's AUTO count, the
    larger of the hash table's and the relocations' symbol indexes (an executable exporting
    nothing has an empty GNU hash table that does not count its undefined symbols); else
    the gap between DT_SYMTAB and a DT_STRTAB right after it."""
    cdef uint64_t other_count = 0
    cdef int r
    count[0] = 0
    known[0] = False
    if not d.has_symtab:
        return ST_OK
    r = symbol_count(c, d, count, known)
    if r != ST_OK:
        return r
    if known[0]:
        r = reloc_symbol_count(c, d, &other_count)
        if r != ST_OK:
            return r
        if other_count > count[0]:
            count[0] = other_count
    if (not known[0] and d.has_strtab and d.strtab_off > d.symtab_off
            and d.strtab_off <= d.symtab_seg_end
            and (d.strtab_off - d.symtab_off) % d.syment == 0):
        count[0] = (d.strtab_off - d.symtab_off) // d.syment
        known[0] = True
    return ST_OK


cdef int check_symbol_tables(Ctx* c, Dyn* d, uint64_t count, bint known) noexcept nogil:
    """Whether ``count`` symbols (and their version indexes) fit and are present."""
    cdef int worst = ST_OK
    if not known:
        return ST_OK
    if count > c.total // d.syment:
        snprintf(c.msg, sizeof(c.msg), "%llu dynamic symbols cannot fit in the file",
                 <unsigned long long>count)
        return ST_ELF
    worst = merge(worst, check(c, d.symtab_off, count * d.syment, "dynsym"))
    if d.has_versym:
        worst = merge(worst, check(c, d.versym_off, count * 2, "versym (DT_VERSYM)"))
    return worst


cdef int _symbols(Ctx* c, Dyn* d, object elf, uint64_t count, dict vneeds) except? -100:
    """The imports, grouped by (library, version) through the version needs, and the counts
    of exports and of C/C++ runtime exports: ST_OK, or ST_ELF (a name out of range)."""
    cdef uint64_t i, sym, name_off, vs
    cdef uint8_t info, other, bind
    cdef uint16_t shndx
    cdef const uint8_t* nm
    cdef const void* nul
    cdef uint64_t n_exports = 0, n_runtime = 0
    cdef dict groups = {}
    cdef list runtime = [], g
    for i in range(1, count):
        sym = d.symtab_off + i * d.syment
        name_off = r32(c, sym)
        if c.is64:
            info = c.p[sym + 4]
            other = c.p[sym + 5]
            shndx = r16(c, sym + 6)
        else:
            info = c.p[sym + 12]
            other = c.p[sym + 13]
            shndx = r16(c, sym + 14)
        bind = info >> 4
        if shndx == 0:
            key = None
            if d.has_versym:
                vs = r16(c, d.versym_off + 2 * i) & 0x7FFF
                if vs > 1:
                    key = vneeds.get(vs)
            name = cstr(c, d, name_off, "symbol name")
            if name is None:
                return ST_ELF
            g = <list>groups.get(key)
            if g is None:
                g = groups[key] = [[], 0, None]
            (<list>g[0]).append(name)
            if bind == 2:
                g[1] = g[1] + 1
                if g[2] is None:
                    g[2] = []
                (<list>g[2]).append(name)
            continue
        if bind != 1 and bind != 2 and bind != 10:
            continue
        n_exports += 1
        if bind == 1 and (other & 3) == 0:
            if name_off >= d.strsz:
                cstr(c, d, name_off, "symbol name")
                return ST_ELF
            nm = c.p + d.strtab_off + name_off
            nul = memchr(nm, 0, <size_t>(d.strsz - name_off))
            if nul == NULL:
                cstr(c, d, name_off, "symbol name")
                return ST_ELF
            if is_runtime_name(nm, <const uint8_t*>nul - nm):
                if over_string_budget(c, d, <const uint8_t*>nul - nm):
                    return ST_ELF
                n_runtime += 1
                runtime.append(PyUnicode_DecodeUTF8(<const char*>nm, <const uint8_t*>nul - nm,
                                                    "replace"))
    elf.export_count = n_exports
    runtime.sort()
    elf.runtime_export_count = n_runtime
    elf.runtime_exports = runtime[:RUNTIME_EXPORT_CAP]
    # the C-API imports, uncapped: unversioned as a rule, but a reference versioned through
    # a bundled library's verneed still binds to the interpreter's unversioned definition
    all_names = []
    all_weak = []
    for g in groups.values():
        all_names.extend(<list>g[0])
        if g[2] is not None:
            all_weak.extend(<list>g[2])
    elf.python_imports, elf.python_weak_imports = python_api_imports(all_names, all_weak)
    elf.imports = _import_groups(groups)
    return ST_OK


cdef list _import_groups(dict groups):
    """SymbolGroups sorted by (library, version), unversioned ("", "") first; the insertion
    index breaks ties (an empty library name) so groups are never compared."""
    cdef list keyed = [], imports = [], names, g
    cdef Py_ssize_t j = 0
    for key, g in groups.items():
        lib, ver = key if key is not None else (None, None)
        keyed.append((lib or "", ver or "", j, lib, ver, g))
        j += 1
    keyed.sort()
    for _lk, _vk, _j, lib, ver, g in keyed:
        names = <list>g[0]
        names.sort()
        cap = UNVERSIONED_NAME_CAP if ver is None else IMPORT_NAME_CAP
        imports.append(SymbolGroup(lib, ver, len(names), names[:cap], g[1],
                                   weak_only(names, g[2], cap) if g[2] is not None else []))
    return imports


DEF CHAIN_END = 2  # chain_step: the next-offset is 0


cdef int chain_step(Ctx* c, uint64_t* pos, uint64_t nxt, uint64_t entsize, const char* chain,
                    const char* field) noexcept nogil:
    """Follow a Verneed/Vernaux/Verdef next-offset as glibc does: 0 ends the chain
    (CHAIN_END); an offset that does not move past the entry would loop (ST_ELF); else
    ``pos`` advances (ST_OK). The caller checks the new entry against the bytes present."""
    if nxt == 0:
        return CHAIN_END
    if nxt < entsize:
        snprintf(c.msg, sizeof(c.msg), "%s chain loops at offset 0x%llx (%s %llu)", chain,
                 <unsigned long long>pos[0], field, <unsigned long long>nxt)
        return ST_ELF
    pos[0] += nxt
    return ST_OK


cdef int walk_verneed(Ctx* c, Dyn* d, object elf, dict vneeds) except? -100:
    """Verneed chain: bounded by DT_VERNEEDNUM and by strictly advancing offsets."""
    cdef uint64_t pos, aux, n, k, cnt, total_aux = 0
    cdef uint16_t flags, other
    cdef int r
    if not d.has_verneed:
        return ST_OK
    if not d.has_strtab:
        return fail(c, "DT_VERNEED without DT_STRTAB")
    pos = d.verneed_off
    needs = []
    n = 0
    while n < (d.verneednum if d.has_verneednum else MAX_VERSIONS):
        r = check(c, pos, 16, "verneed entry")
        if r != ST_OK:
            return r
        cnt = r16(c, pos + 2)
        fname = cstr(c, d, r32(c, pos + 4), "verneed file")
        if fname is None:
            return ST_ELF
        versions = []
        aux = pos + r32(c, pos + 8)
        for k in range(cnt):
            total_aux += 1
            if total_aux > MAX_VERSIONS:
                return fail(c, "more than 32768 version needs")
            r = check(c, aux, 16, "vernaux entry")
            if r != ST_OK:
                return r
            flags = r16(c, aux + 4)
            other = r16(c, aux + 6)
            vname = cstr(c, d, r32(c, aux + 8), "vernaux name")
            if vname is None:
                return ST_ELF
            versions.append(VersionNeed(vname, (flags & VER_FLG_WEAK) != 0))
            vneeds[other & 0x7FFF] = (fname, vname)
            r = chain_step(c, &aux, r32(c, aux + 12), 16, "vernaux", "vna_next")
            if r == CHAIN_END:
                break
            if r != ST_OK:
                return r
        needs.append(LibraryNeed(fname, versions))
        n += 1
        r = chain_step(c, &pos, r32(c, pos + 12), 16, "verneed", "vn_next")
        if r == CHAIN_END:
            break
        if r != ST_OK:
            return r
    elf.version_needs = needs
    return ST_OK


cdef int walk_verdef(Ctx* c, Dyn* d, object elf) except? -100:
    """Verdef chain: the first Verdaux of each entry names the version; kept in vd_ndx order."""
    cdef uint64_t pos, n, aux
    cdef int r
    if not d.has_verdef:
        return ST_OK
    if not d.has_strtab:
        return fail(c, "DT_VERDEF without DT_STRTAB")
    pos = d.verdef_off
    defs = []
    n = 0
    while n < (d.verdefnum if d.has_verdefnum else MAX_VERSIONS):
        if n >= MAX_VERSIONS:
            return fail(c, "more than 32768 version definitions")
        r = check(c, pos, 20, "verdef entry")
        if r != ST_OK:
            return r
        if r16(c, pos + 6):  # vd_cnt
            aux = pos + r32(c, pos + 12)
            r = check(c, aux, 8, "verdaux entry")
            if r != ST_OK:
                return r
            name = cstr(c, d, r32(c, aux), "verdef name")
            if name is None:
                return ST_ELF
            defs.append((r16(c, pos + 4), n, name))
        n += 1
        r = chain_step(c, &pos, r32(c, pos + 16), 20, "verdef", "vd_next")
        if r == CHAIN_END:
            break
        if r != ST_OK:
            return r
    defs.sort()
    elf.version_defs = [t[2] for t in defs]
    return ST_OK
