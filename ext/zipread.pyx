# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""ZIP reader: central directory, local headers and bounded incremental member inflate.

An :class:`Archive` reads from a path (a small wheel is read whole and member data is fed to
the inflater straight from that copy; a bigger one is read with pread(2) in chunks, no Python
file object in the loop) or from a binary file object with seek/read (chunks read into the same
loop). Paths are not mmapped: a file truncated while mapped raises SIGBUS on the next touch of
its lost pages, which would kill the process; pread reports a short read, which becomes an
error for the member being read. Member data is produced into one output buffer the archive
reuses across members, in steps of at most ``chunk_size`` bytes, and never beyond the target
the caller asks for: the ELF parser decides how far each member is inflated.

Deflate goes through the back-ends of ``wheelscan._native.inflate`` (cimported): the archive
hands each one input, from its copy of the file or read in chunks, and the output buffer.
"""

import errno as _errno
import hashlib
import os
import stat as _stat

cimport cython
from libc.stdint cimport int64_t, uint8_t, uint16_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc, realloc
cimport posix.mman as mman
from libc.string cimport memchr, memcmp, memcpy, memset
from cpython.bytes cimport PyBytes_AS_STRING, PyBytes_FromStringAndSize, PyBytes_GET_SIZE
from cpython.exc cimport PyErr_SetFromErrnoWithFilenameObject
from libc.errno cimport EINTR, errno
from posix.fcntl cimport O_CLOEXEC, O_NONBLOCK, O_RDONLY, open as c_open
from posix.types cimport off_t
from posix.unistd cimport SEEK_END, close as c_close, lseek, pread as c_pread
from cpython.unicode cimport PyUnicode_DecodeASCII

cdef extern from "Python.h":
    bytes PyUnicode_EncodeFSDefault(object unicode)

cimport zlib as z
from status cimport ST_ELF, ST_INFLATE, ST_LIMIT, ST_NOMEM, ST_ZIP
from wheelscan._native.elf cimport parse_prefix
from wheelscan._native.inflate cimport (
    INF_PY, INF_ZLIB, STEP_END, STEP_ERROR, STEP_STALL, Inflater, InflaterChoice,
)

from wheelscan._native import inflate as _inflate
from wheelscan._native.elf import parse as elf_parse, raise_status
from wheelscan.errors import WheelscanError

__all__ = ["Archive", "Member"]

cdef enum:
    PY_IN_CHUNK = 65536  # compressed input per Python-level call
    # compressed bytes fed beyond the estimate of what the wanted output needs (room for a
    # dynamic block header): ISA-L inflates all it is given, so on a small member a larger
    # slack is inflated for nothing (512: +3 to +10 % instructions per small-wheel scan)
    FEED_SLACK = 256
    MAX_ROUNDS = 64     # parse/inflate rounds per ELF member
    PEEK = 64           # first bytes inflated of every candidate member
    SMALL_FILE = 1 << 20  # default read_whole_max: archives up to this size are read whole
    DIGEST_CHUNK = 1 << 20  # compressed bytes per pread when hashing a member
# one output buffer kept between archives (swapped under the GIL, so threads never share it)
cdef uint8_t* _spare_out = NULL
cdef size_t _spare_cap = 0
DEF SPARE_MAX = 256 << 20


cdef inline uint16_t u16(const uint8_t* p) noexcept nogil:
    return <uint16_t>(p[0] | (p[1] << 8))

cdef inline uint32_t u32(const uint8_t* p) noexcept nogil:
    return (<uint32_t>p[3] << 24) | (<uint32_t>p[2] << 16) | (<uint32_t>p[1] << 8) | p[0]

cdef inline uint64_t u64(const uint8_t* p) noexcept nogil:
    return (<uint64_t>u32(p + 4) << 32) | u32(p)


cdef str decode_name(const uint8_t* p, Py_ssize_t n, uint16_t flags):
    # as zipfile does: UTF-8 with general-purpose bit 11, else CP437 (both ASCII-compatible)
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] & 0x80:
            break
    else:
        return PyUnicode_DecodeASCII(<const char*>p, n, NULL)
    cdef bytes raw = p[:n]
    if flags & 0x800:
        return raw.decode("utf-8", "replace")
    return raw.decode("cp437")


from wheelscan.read.members import _NOT_BINARY_SUFFIXES, may_be_binary
from wheelscan.read import zipviews as _zipviews


cdef inline bint _odd_name(const uint8_t* p, Py_ssize_t n) noexcept:
    """A name byte PyPI's validator may refuse: a control character, DEL, or not ASCII."""
    cdef Py_ssize_t i
    for i in range(n):
        if p[i] < 0x20 or p[i] >= 0x7F:
            if p[i] != 0:
                return True
    return False

cdef Py_ssize_t _MAX_SUFFIX = max(len(x) for x in _NOT_BINARY_SUFFIXES)
if _MAX_SUFFIX > 16:
    raise ImportError("classify() lowers suffixes in a 16-byte buffer")
# the suffixes as C strings, so the walk matches a member's suffix without a str per member
DEF MAX_SUFFIXES = 128
cdef char _sfx[MAX_SUFFIXES][16]
cdef Py_ssize_t _sfx_len[MAX_SUFFIXES]
cdef Py_ssize_t _nsfx = 0


cdef void _load_suffixes() except *:
    global _nsfx
    cdef bytes b
    if len(_NOT_BINARY_SUFFIXES) > MAX_SUFFIXES:
        raise ImportError(f"more than {MAX_SUFFIXES} non-binary suffixes")
    for suffix in sorted(_NOT_BINARY_SUFFIXES):
        if not suffix.isascii() or suffix != suffix.lower() or len(suffix) > 16:
            raise ImportError(f"suffix {suffix!r}: classify() compares lower-case ASCII "
                              f"suffixes of at most 16 bytes")
        b = suffix.encode("ascii")
        memcpy(_sfx[_nsfx], <const char*>b, len(b))
        _sfx_len[_nsfx] = len(b)
        _nsfx += 1


_load_suffixes()

cdef enum:
    K_SKIP = 0
    K_CANDIDATE = 1
    K_WHEEL = 2      # a top-level *.dist-info/WHEEL
    K_RECORD = 3     # a top-level *.dist-info/RECORD


cdef struct Entry:
    # one central directory entry; its name stays in the directory's bytes (cd_base + name_at).
    # The judged name (cut at NUL, or a Unicode path extra's) may differ from the stored one
    # (raw_at, raw_nlen), which a local header must repeat. An entry with ``view`` set is a
    # local header only a streaming reader installs: its names are in lh_base instead.
    uint64_t name_at
    uint64_t raw_at
    uint64_t csize
    uint64_t usize
    uint64_t offset      # of the local header, after any prepended bytes
    uint32_t crc
    uint16_t nlen
    uint16_t raw_nlen
    uint16_t flags
    uint16_t method
    uint8_t view


cdef struct End:
    # what the end records zipfile uses say
    uint64_t eocd           # offset of the end of central directory record
    uint64_t base_end       # where the central directory should end (ZIP64 record or eocd)
    uint64_t n_total, cd_size, cd_off


cdef struct Tally:
    # entries with a comment, a data descriptor, duplicate extras, a refused name
    uint64_t comment, desc, dupx, badname


cdef int classify(const uint8_t* p, Py_ssize_t n, uint64_t usize, uint16_t flags):
    """members.may_be_binary on the raw name, plus the WHEEL/RECORD test of
    wheelinfo.find_wheel_file. Names are UTF-8 or CP437, where every ASCII byte is its own
    character and no other byte decodes to ASCII, so '/', '.' and ASCII words can be matched
    on bytes; only a suffix with other bytes (whose lower() may be ASCII) asks the Python
    rule."""
    cdef Py_ssize_t i, slash = -1, last_slash = -1, dot = -1
    cdef char low[16]
    for i in range(n):
        if p[i] == 47:  # '/'
            if slash < 0:
                slash = i
            last_slash = i
    if slash < 0:  # the whole name is the top level: a file named "*.dist-info" is skipped
        if n >= 10 and memcmp(p + n - 10, b".dist-info", 10) == 0:
            return K_SKIP
    elif slash >= 10 and memcmp(p + slash - 10, b".dist-info", 10) == 0:
        if last_slash == slash:  # directly inside the .dist-info directory
            if n - slash - 1 == 5 and memcmp(p + slash + 1, b"WHEEL", 5) == 0:
                return K_WHEEL
            if n - slash - 1 == 6 and memcmp(p + slash + 1, b"RECORD", 6) == 0:
                return K_RECORD
            return K_SKIP
    if (n and p[n - 1] == 47) or usize < 4:
        return K_SKIP
    for i in range(n - 1, last_slash, -1):
        if p[i] == 46:  # '.'
            dot = i
            break
    if dot <= last_slash + 1:
        return K_CANDIDATE  # no suffix (or a leading dot only): executables, blobs
    for i in range(dot, n):
        if p[i] & 0x80:
            return K_CANDIDATE if may_be_binary(decode_name(p, n, flags), usize) else K_SKIP
    if n - dot > _MAX_SUFFIX:
        return K_CANDIDATE  # longer than any listed suffix
    for i in range(n - dot):
        low[i] = p[dot + i] + 32 if 65 <= p[dot + i] <= 90 else p[dot + i]
    for i in range(_nsfx):
        if _sfx_len[i] == n - dot and memcmp(low, _sfx[i], n - dot) == 0:
            return K_SKIP
    return K_CANDIDATE


cdef class Member


@cython.final
cdef class Archive:
    """One ZIP archive. ``read_directory()`` walks the central directory into a compact C
    array (names stay in the directory's bytes); ``entry(i)`` is one entry as a tuple of
    (name, method, flags, compressed_size, size, local_header_offset, crc32), ``entries`` and
    ``names`` all of them, built on first use. A scan needs the tuples of its candidates
    only, so a wheel of 5,000 ``.py`` files costs no 5,000 Python objects."""

    cdef object _mm             # a small wheel's bytes (read whole)
    cdef const uint8_t[::1] _mv
    cdef int fd                 # a bigger wheel's file, read with pread; else -1
    cdef object opened_mtime    # its st_mtime_ns when opened (its size then is self.size)
    cdef object opened_ctime    # and its st_ctime_ns
    cdef const uint8_t* base
    cdef object fileobj
    cdef object _expect             # fileobj.planning_hint (a remote file's), or None
    cdef bytes _tmp
    cdef readonly uint64_t size
    cdef Entry* ents
    cdef readonly Py_ssize_t count  # central directory entries read
    cdef readonly Py_ssize_t n_local  # entries after them: local headers only (Entry.view)
    cdef list _lh_names             # their names' bytes
    cdef bint audited               # every local header was compared with its entry
    cdef uint16_t _uni_len          # set by _unicode_path
    cdef uint64_t _uni_at           # set by _extra_fields: where that Unicode path starts
    cdef bint _dup_extras           # and whether a ZIP64 or Unicode path field came twice
    cdef bint dir_read
    cdef object _cd_owner           # the bytes holding the central directory (entry names)
    cdef const uint8_t* cd_base
    cdef list _entries, _names      # entries / names, built on first use
    cdef Py_ssize_t walk_mark       # anomalies before a walk that raised (-1: none did)
    cdef bint inited
    cdef readonly list anomalies
    cdef readonly list candidates   # indexes of entries that may be binaries (name rule)
    cdef readonly Py_ssize_t wheel_index  # the first top-level *.dist-info/WHEEL, or -1
    cdef readonly bint has_record   # a top-level *.dist-info/RECORD exists
    cdef readonly str inflater
    cdef readonly uint64_t inflated_total
    cdef readonly uint64_t last_inflated
    cdef readonly uint64_t last_read
    cdef readonly str last_inflater   # the deflate implementation scan_elf used last
    cdef uint64_t max_inflate, max_members, max_cd
    cdef size_t chunk
    cdef InflaterChoice inf
    cdef uint8_t* out
    cdef size_t out_cap

    def __cinit__(self):
        global _spare_out, _spare_cap
        # adopt the output buffer a previous archive left behind: its pages are already
        # mapped, a fresh buffer would page-fault its way up to the largest prefix again
        self.out = _spare_out
        self.out_cap = _spare_cap
        _spare_out = NULL
        _spare_cap = 0
        self.base = NULL
        self.fd = -1
        self.ents = NULL
        self.walk_mark = -1

    def __dealloc__(self):
        self._release_out()
        free(self.ents)
        if self.fd >= 0:
            c_close(self.fd)

    cdef void _release_out(self) noexcept:
        global _spare_out, _spare_cap
        if self.out != NULL and self.out_cap <= SPARE_MAX and self.out_cap > _spare_cap:
            free(_spare_out)
            _spare_out = self.out
            _spare_cap = self.out_cap
        else:
            free(self.out)
        self.out = NULL
        self.out_cap = 0

    def __init__(self, src, *, uint64_t max_wheel_inflate=4 << 30,
                 uint64_t max_members=200_000, uint64_t max_central_directory=256 << 20,
                 size_t chunk_size=256 << 10, str inflater=None,
                 uint64_t read_whole_max=SMALL_FILE):
        cdef int fd
        cdef off_t end
        cdef Py_ssize_t got, n
        if self.inited:
            # Members point into the first file's bytes: starting over under them is unsafe
            raise RuntimeError("an Archive is initialised once; open another Archive")
        self.inited = True
        self.candidates = []
        self.wheel_index = -1
        self.anomalies = []
        self.max_inflate = max_wheel_inflate
        self.max_members = max_members
        self.max_cd = max_central_directory
        self.chunk = chunk_size if chunk_size >= 4096 else 4096
        # the module's default is read when the archive is made: it may be set after import
        self.inf = InflaterChoice(inflater or _inflate.inflater)
        self.inflater = self.inf.name
        if isinstance(src, (str, bytes, os.PathLike)):
            # os.fsencode, without a Python call for the common case of a str
            path = PyUnicode_EncodeFSDefault(src) if type(src) is str else os.fsencode(src)
            if b"\0" in path:  # open(2) would see a shorter path: another file
                raise ValueError(f"embedded null byte in path {src!r}")
            # O_NONBLOCK: a FIFO named like a wheel must not block the scan until a writer
            # comes (it is refused below); reads of a regular file do not block anyway
            fd = c_open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
            if fd < 0:
                PyErr_SetFromErrnoWithFilenameObject(OSError, src)
            try:
                # a small regular file's size from lseek (a C call; a stat_result costs a
                # microsecond); os.fstat decides for anything bigger, and for what cannot
                # seek or seeks past its st_size (a directory on ext4 seeks to LLONG_MAX),
                # and gives the mtime of a file read in chunks. Not fstat(2): built against
                # glibc >= 2.33 it would make this module need GLIBC_2.33 (fstat64), more
                # than the manylinux tags it ships under allow (the demo checks it)
                end = lseek(fd, 0, SEEK_END)
                if end >= 0 and <uint64_t>end <= read_whole_max:
                    self.size = <uint64_t>end
                else:
                    st = os.fstat(fd)
                    if _stat.S_ISDIR(st.st_mode):
                        raise IsADirectoryError(_errno.EISDIR, os.strerror(_errno.EISDIR), src)
                    if not _stat.S_ISREG(st.st_mode):
                        raise OSError(_errno.EINVAL, "not a regular file", src)
                    self.size = st.st_size
                    if self.size > read_whole_max:
                        self.fd = fd  # read in chunks (see the module docstring: no mmap)
                        self.opened_mtime = st.st_mtime_ns
                        self.opened_ctime = st.st_ctime_ns
                        fd = -1
                if fd >= 0 and self.size:
                    # one pread() of a small wheel (at offset 0: lseek moved the position)
                    data = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>self.size)
                    got = 0
                    while got < <Py_ssize_t>self.size:
                        n = c_pread(fd, PyBytes_AS_STRING(data) + got, self.size - got, got)
                        if n < 0:
                            if errno == EINTR:
                                continue
                            PyErr_SetFromErrnoWithFilenameObject(OSError, src)
                        if n == 0:
                            break  # the file shrank since it was sized
                        got += n
                    self._mm = data if got == <Py_ssize_t>self.size else data[:got]
                    self.size = got
            finally:
                if fd >= 0:
                    c_close(fd)
            if self._mm is not None and self.size:
                self._mv = self._mm
                self.base = &self._mv[0]
        else:
            self.fileobj = src
            self._expect = getattr(src, "planning_hint", None)
            src.seek(0, 2)
            self.size = src.tell()

    def close(self):
        """Release the archive. A file read in chunks that was modified since it was opened
        (the scan may have mixed old and new bytes) adds an anomaly saying so."""
        if self.fd >= 0:
            try:
                st = os.fstat(self.fd)
            except OSError as e:
                self.anomalies.append(f"could not check whether the file was modified while "
                                      f"it was read: {e.strerror}")
            else:
                if st.st_size != self.size or st.st_mtime_ns != self.opened_mtime:
                    self.anomalies.append(
                        f"the file was modified while it was read ({self.size} bytes when "
                        f"opened, {st.st_size} at the end): its facts may mix old and new "
                        f"bytes")
                elif st.st_ctime_ns != self.opened_ctime:
                    # a rewrite at the same size whose mtime was put back (cp -p), or only a
                    # rename, link, chmod or chown: the inode's change time cannot tell which
                    self.anomalies.append(
                        "the file's status changed while it was read (its inode change time "
                        "moved, size and mtime did not: rewritten with its mtime restored, or "
                        "only renamed, linked, chmod or chown): its facts may mix old and new "
                        "bytes")
        self._release_out()
        self.base = NULL
        self._mv = None
        self._mm = None
        self.fileobj = None
        self._expect = None
        if self.fd >= 0:
            c_close(self.fd)
            self.fd = -1

    @property
    def local(self):
        """The archive is a file on disk (read whole or with pread), not a file object."""
        return self.base != NULL or self.fd >= 0

    cdef int _pread(self, char* buf, uint64_t n, uint64_t off, str what) except -1:
        """Exactly ``n`` bytes at ``off`` of a file read in chunks, else an error: fewer
        bytes than fstat promised means the file shrank since the archive was opened."""
        cdef uint64_t got = 0, k
        cdef Py_ssize_t r
        while got < n:
            k = n - got
            if k > 0x40000000:
                k = 0x40000000
            with nogil:
                r = c_pread(self.fd, buf + got, <size_t>k, <off_t>(off + got))
            if r < 0:
                err = errno
                if err == EINTR:
                    continue
                raise_status(ST_ZIP, f"read error: {what} ({n} bytes at offset {off}): "
                                     f"{os.strerror(err)}")
            if r == 0:
                now = os.fstat(self.fd).st_size
                raise_status(ST_ZIP, f"short read: {what} ({n} bytes at offset {off}): the file "
                                     f"is {now} bytes now, {self.size} when opened (truncated "
                                     f"during the scan?)")
            got += <uint64_t>r
        return 0

    cdef int _read_into(self, uint8_t* buf, uint64_t off, uint64_t n, str what) except -1:
        """Archive bytes [off, off+n) copied to ``buf``: with pread straight into it (one copy,
        not two), else through :meth:`_at`."""
        cdef const uint8_t* p
        if self.fd >= 0:
            self._check_range(off, n, what)
            return self._pread(<char*>buf, n, off, what)
        p = self._at(off, n, what)
        memcpy(buf, p, n)
        return 0

    cdef int _check_range(self, uint64_t off, uint64_t n, str what) except -1:
        """Archive bytes [off, off+n) must lie within the archive."""
        if off + n < off or off + n > self.size:
            raise_status(ST_ZIP, f"{what} ({n} bytes at offset {off}) past the end of the "
                                 f"archive ({self.size} bytes)")
        return 0

    cdef const uint8_t* _at(self, uint64_t off, uint64_t n, str what) except NULL:
        """Pointer to archive bytes [off, off+n), checked against the archive size. Read with
        pread or from a file object, it points into ``self._tmp``: valid until the next call."""
        self._check_range(off, n, what)
        if self.base != NULL:
            return self.base + off
        if self.fd >= 0:
            data = PyBytes_FromStringAndSize(NULL, <Py_ssize_t>n)
            self._pread(PyBytes_AS_STRING(data), n, off, what)
            self._tmp = data
            return <const uint8_t*>PyBytes_AS_STRING(self._tmp) if n else <const uint8_t*>b""
        if self.fileobj is None:
            raise_status(ST_ZIP, "archive is closed")
        self.fileobj.seek(off)
        data = self.fileobj.read(n)
        if not isinstance(data, bytes) or PyBytes_GET_SIZE(data) != <Py_ssize_t>n:
            raise_status(ST_ZIP, f"short read: {what} ({n} bytes at offset {off})")
        self._tmp = data
        return <const uint8_t*>PyBytes_AS_STRING(self._tmp) if n else <const uint8_t*>b""

    def read_directory(self):
        """Find the end of central directory (and ZIP64 records), then walk the entries;
        returns their number. A walk that raised leaves no entries behind, only the anomalies
        it found (calling again walks again, replaces them and raises again); a walk that
        succeeded is not repeated."""
        if self.dir_read:
            return self.count
        if self.walk_mark >= 0:  # a walk raised before: its anomalies come again
            del self.anomalies[self.walk_mark:]
        self.walk_mark = len(self.anomalies)
        try:
            self._walk()
        except BaseException:
            self._forget_directory()
            raise
        self.walk_mark = -1
        self.dir_read = True
        return self.count

    cdef int _forget_directory(self) except -1:
        free(self.ents)
        self.ents = NULL
        self.count = 0
        self.n_local = 0
        self._lh_names = None
        self.audited = False
        self.dir_read = False
        self.candidates = []
        self.wheel_index = -1
        self.has_record = False
        self._cd_owner = None
        self.cd_base = NULL
        self._entries = self._names = None
        return 0

    cdef int _walk(self) except -1:
        """The end records, then every central directory entry into ``ents``, then what
        the directory as a whole shows, then the local headers as a streaming reader sees
        them."""
        cdef End end
        cdef Tally t
        cdef uint64_t concat, pos, parsed, min_off, cap, n
        cdef const uint8_t* p
        self._find_end(&end)
        if end.cd_off + end.cd_size < end.cd_off or end.cd_off + end.cd_size > end.base_end:
            raise_status(ST_ZIP, f"central directory ({end.cd_size} bytes at offset "
                                 f"{end.cd_off}) overlaps its end record at offset "
                                 f"{end.base_end}")
        concat = end.base_end - end.cd_size - end.cd_off
        if end.cd_size > self.max_cd:
            raise_status(ST_LIMIT, f"central directory of {end.cd_size} bytes exceeds the "
                                   f"limit of {self.max_cd}")
        if end.n_total > self.max_members:
            raise_status(ST_LIMIT, f"{end.n_total} members exceed the limit of "
                                   f"{self.max_members}")
        p = self._at(end.cd_off + concat, end.cd_size, "central directory")
        # entry names point into these bytes: keep them as long as the archive object lives
        self._cd_owner = self._mm if self.base != NULL else self._tmp
        self.cd_base = p
        cap = end.cd_size // 46
        if cap > self.max_members:
            cap = self.max_members
        self.ents = <Entry*>malloc((cap if cap else 1) * sizeof(Entry))
        if self.ents == NULL:
            raise_status(ST_NOMEM, f"cannot allocate {cap} central directory entries")
        memset(&t, 0, sizeof(t))
        pos = 0
        parsed = 0
        min_off = self.size
        while pos + 46 <= end.cd_size:
            if memcmp(p + pos, b"PK\x01\x02", 4) != 0:
                break
            if parsed >= self.max_members:
                raise_status(ST_LIMIT, f"more than {self.max_members} members")
            if parsed >= cap:  # cannot happen: every entry takes at least 46 bytes
                break
            n = self._entry(p, pos, end.cd_size, parsed, concat, &t, &min_off)
            if n == 0:
                break  # truncated (an anomaly says so)
            parsed += 1
            pos += n
        self._directory_anomalies(&end, &t, parsed, pos, concat, min_off)
        if self.base != NULL or self.fd >= 0:
            # the local headers, walked as a streaming reader walks them (a file object,
            # perhaps over HTTP, has only the headers of the members it opens compared)
            self._compare_local_headers(end.cd_off + concat, parsed, min_off)
        return 0

    cdef int _find_end(self, End* end) except -1:
        """The end of central directory record zipfile (pip) uses, and the ZIP64 record it
        reads, into ``end``; anomalies where another reader would take other records."""
        cdef uint64_t tail_len, tail_off, pos, clen, z64
        cdef int64_t fallback, exact
        cdef const uint8_t* p
        cdef const uint8_t* e
        if self.size < 22:
            raise_status(ST_ZIP, f"not a ZIP archive: {self.size} bytes, too small for an end of central directory record")
        # the last 22 bytes first (and 20 before them, where a ZIP64 locator would be): an
        # archive without a comment ends with its record, and a file object (perhaps over
        # HTTP) is then asked for 42 bytes, not 64 KiB; the full search window otherwise
        tail_len = min(self.size, 22 + 20)
        tail_off = self.size - tail_len
        p = self._at(tail_off, tail_len, "archive tail")
        if memcmp(p + tail_len - 22, b"PK\x05\x06", 4) != 0 or u16(p + tail_len - 2) != 0:
            tail_len = min(self.size, 22 + 0xFFFF + 20)
            tail_off = self.size - tail_len
            p = self._at(tail_off, tail_len, "archive tail")
        # The record CPython's zipfile (pip) uses: the last 22 bytes if they are a record
        # without a comment, else the LAST signature in the window, whatever its comment
        # length says. Another reader may take the record whose comment ends exactly at the
        # end of the file (one record's comment can hold another): where that differs, the
        # archive means two things and is flagged (a zip-confusion violation).
        pos = tail_len - 22
        fallback = -1      # the last signature (zipfile's choice)
        exact = -1         # the last record whose comment ends at the end of the file
        while True:
            if memcmp(p + pos, b"PK\x05\x06", 4) == 0:
                clen = u16(p + pos + 20)
                if fallback < 0:
                    fallback = pos
                if pos + 22 + clen == tail_len and exact < 0:
                    exact = pos
                if exact >= 0:
                    break
            if pos == 0:
                break
            pos -= 1
        if fallback < 0:
            raise_status(ST_ZIP, "no end of central directory record (not a ZIP archive)")
        pos = <uint64_t>fallback
        clen = u16(p + pos + 20)
        if exact != fallback and exact >= 0:
            self.anomalies.append(
                f"confusion: two end of central directory records: zipfile reads the one at "
                f"offset {tail_off + pos}, a reader trusting comment lengths the one at "
                f"offset {tail_off + <uint64_t>exact}")
        end.eocd = tail_off + pos
        if pos + 22 + clen < tail_len:
            self.anomalies.append(
                f"{tail_len - pos - 22 - clen} bytes after the end of central directory record")
        elif pos + 22 + clen > tail_len:
            self.anomalies.append("end of central directory comment runs past the end of the "
                                  "file")
        e = p + pos
        end.n_total = u16(e + 10)
        if u16(e + 8) != end.n_total or u16(e + 4) != 0 or u16(e + 6) != 0:
            self.anomalies.append("multi-disk fields in the end of central directory record")
        end.cd_size = u32(e + 12)
        end.cd_off = u32(e + 16)
        end.base_end = end.eocd
        if end.eocd >= 20:
            p = self._at(end.eocd - 20, 20, "ZIP64 locator")
            if memcmp(p, b"PK\x06\x07", 4) == 0:
                z64 = u64(p + 8)
                self._zip64_end(end, z64)
        return 0

    cdef int _zip64_end(self, End* end, uint64_t z64) except -1:
        """zipfile reads the ZIP64 record right before the locator (it assumes no extensible
        data), not where the locator points; without one there it keeps the end record's
        values."""
        cdef const uint8_t* p
        cdef uint64_t eocd = end.eocd
        if eocd >= 20 + 56:
            p = self._at(eocd - 20 - 56, 56, "ZIP64 end of central directory record")
            if memcmp(p, b"PK\x06\x06", 4) == 0:
                if u64(p + 4) != 44:
                    self.anomalies.append(
                        f"the ZIP64 end record carries extensible data ({u64(p + 4)} "
                        f"bytes, not 44)")
                if u64(p + 24) != u64(p + 32) or u32(p + 16) or u32(p + 20):
                    self.anomalies.append(
                        "multi-disk fields in the ZIP64 end of central directory record")
                end.n_total = u64(p + 32)
                end.cd_size = u64(p + 40)
                end.cd_off = u64(p + 48)
                end.base_end = eocd - 20 - 56
        if z64 != eocd - 20 - 56:
            self.anomalies.append(
                f"confusion: the ZIP64 end locator points at offset {z64}, zipfile "
                f"reads the ZIP64 record at offset {eocd - 20 - 56}"
                if end.base_end != eocd else
                f"confusion: the ZIP64 end locator points at offset {z64}, zipfile "
                f"finds no ZIP64 record before it and reads the end record")
        return 0

    cdef uint64_t _entry(self, const uint8_t* p, uint64_t pos, uint64_t cd_size,
                         uint64_t index, uint64_t concat, Tally* t,
                         uint64_t* min_off) except? 0:
        """The central directory entry at ``pos`` into ``ents[index]``, with its name rules
        applied; its length, or 0 if it runs past the directory (an anomaly says so)."""
        cdef const uint8_t* e = p + pos
        cdef uint16_t flags = u16(e + 8), method = u16(e + 10), eflags
        cdef uint32_t crc = u32(e + 16)
        cdef uint64_t csize = u32(e + 20), usize = u32(e + 24), offset = u32(e + 42)
        cdef uint64_t nlen = u16(e + 28), elen = u16(e + 30), cmlen = u16(e + 32)
        cdef uint64_t name_at, keep
        cdef const void* nul
        cdef int kind
        if pos + 46 + nlen + elen + cmlen > cd_size:
            self.anomalies.append(f"central directory entry {index} truncated")
            return 0
        name_at = pos + 46
        eflags = flags
        if self._extra_fields(e, nlen, elen, flags, &usize, &csize, &offset):
            # the Info-ZIP Unicode path names the member (its bytes: _unicode_path cut them)
            name_at = pos + self._uni_at + 5
            eflags = flags | 0x800
        if cmlen:
            t.comment += 1
        if flags & 8:
            t.desc += 1
        if self._dup_extras:
            t.dupx += 1
        nul = memchr(e + 46, 0, nlen)
        self._name_anomalies(e, nlen, flags, nul, t)
        if name_at == pos + 46:
            keep = <const uint8_t*>nul - (e + 46) if nul != NULL else nlen
        else:
            keep = self._uni_len
        offset += concat
        if offset < min_off[0]:
            min_off[0] = offset
        self.ents[index] = Entry(name_at=name_at, raw_at=pos + 46, csize=csize, usize=usize,
                                 offset=offset, crc=crc, nlen=<uint16_t>keep,
                                 raw_nlen=<uint16_t>nlen, flags=eflags, method=method,
                                 view=0)
        self.count = index + 1
        kind = classify(p + name_at, keep, usize, eflags)
        if kind != K_CANDIDATE and name_at != pos + 46 and classify(
                e + 46, <const uint8_t*>nul - (e + 46) if nul != NULL else nlen, usize,
                flags) == K_CANDIDATE:
            kind = K_CANDIDATE  # a Unicode path renames it: judged if either name may be
        if kind == K_CANDIDATE:
            self.candidates.append(index)
        elif kind == K_WHEEL:
            # zipfile reads the last copy of a name (pip installs it last, over the others)
            if self.wheel_index < 0 or (
                    self.ents[self.wheel_index].nlen == keep and memcmp(
                        self.cd_base + self.ents[self.wheel_index].name_at, p + name_at,
                        keep) == 0):
                self.wheel_index = index
        elif kind == K_RECORD:
            self.has_record = True
        return 46 + nlen + elen + cmlen

    cdef bint _extra_fields(self, const uint8_t* e, uint64_t nlen, uint64_t elen,
                            uint16_t flags, uint64_t* usize, uint64_t* csize,
                            uint64_t* offset) except -1:
        """Every extra field of the entry at ``e``, as zipfile reads them: ZIP64 sizes where
        the entry says 0xFFFFFFFF, the Info-ZIP Unicode path (zipfile of Python >= 3.12, and
        unzip, take the name from it when its CRC matches the stored name's). Whether a
        Unicode path names the member (at ``_uni_at``, ``_uni_len`` bytes); ``_dup_extras``
        says whether either field came twice."""
        cdef uint64_t q = 46 + nlen, qend = 46 + nlen + elen, hid, hsz, d, dend
        cdef int n1 = 0, n7 = 0
        cdef bint unicode = False
        while q + 4 <= qend:
            hid = u16(e + q)
            hsz = u16(e + q + 2)
            d = q + 4
            dend = d + hsz
            if dend > qend:
                raise_status(ST_ZIP, f"member {decode_name(e + 46, nlen, flags)!r}: corrupt "
                                     f"extra field 0x{hid:04x} in the central directory "
                                     f"(zipfile refuses the archive)")
            if hid == 1:
                n1 += 1
                if usize[0] == 0xFFFFFFFF or usize[0] == 0xFFFFFFFFFFFFFFFFULL:
                    if d + 8 > dend:
                        self._zip64_short(e, nlen, flags, "size")
                    usize[0] = u64(e + d)
                    d += 8
                if csize[0] == 0xFFFFFFFF:
                    if d + 8 > dend:
                        self._zip64_short(e, nlen, flags, "compressed size")
                    csize[0] = u64(e + d)
                    d += 8
                if offset[0] == 0xFFFFFFFF:
                    if d + 8 > dend:
                        self._zip64_short(e, nlen, flags, "local header offset")
                    offset[0] = u64(e + d)
            elif hid == 0x7075:
                n7 += 1
                if self._unicode_path(e, nlen, flags, d, hsz):
                    self._uni_at = d
                    unicode = True
            q = dend
        self._dup_extras = n1 > 1 or n7 > 1
        return unicode

    cdef int _name_anomalies(self, const uint8_t* e, uint64_t nlen, uint16_t flags,
                             const void* nul, Tally* t) except -1:
        """A stored name cut at a NUL (zipfile installs what comes before it), and names
        PyPI's validator refuses (the first one named, the rest counted)."""
        if nul != NULL:  # zipfile cuts a name at its first NUL (so pip installs that)
            self.anomalies.append(
                f"confusion: member name {decode_name(e + 46, nlen, flags)!r} holds a NUL "
                f"byte; zipfile installs it as "
                f"{decode_name(e + 46, <const uint8_t*>nul - (e + 46), flags)!r}")
        if _odd_name(e + 46, nlen):
            bad = _zipviews.name_problem(e[46:46 + nlen], flags)
            if bad is not None:
                t.badname += 1
                if t.badname == 1:
                    self.anomalies.append(
                        f"member name {decode_name(e + 46, nlen, flags)!r} {bad}")
        return 0

    cdef int _directory_anomalies(self, End* end, Tally* t, uint64_t parsed, uint64_t pos,
                                  uint64_t concat, uint64_t min_off) except -1:
        """What the directory as a whole shows: counts that disagree with the end record,
        the per-entry tallies, bytes before the archive or its first member, duplicates."""
        if parsed != end.n_total:
            self.anomalies.append(f"central directory holds {parsed} entries, its end record "
                                  f"says {end.n_total}")
        elif pos != end.cd_size:
            self.anomalies.append(f"central directory entries take {pos} bytes, its end "
                                  f"record says {end.cd_size}")
        if t.comment:
            self.anomalies.append(f"{t.comment} central directory entr"
                                  f"{'y carries' if t.comment == 1 else 'ies carry'} a comment")
        if t.desc:
            self.anomalies.append(f"{t.desc} member(s) with a data descriptor")
        if t.dupx:
            self.anomalies.append(f"{t.dupx} central directory entr"
                                  f"{'y has' if t.dupx == 1 else 'ies have'} a duplicate ZIP64 "
                                  f"or Unicode path extra field")
        if t.badname > 1:
            self.anomalies.append(f"{t.badname - 1} more member name(s) with unprintable or "
                                  f"non-UTF-8 bytes")
        if concat:
            self.anomalies.append(f"{concat} bytes prepended to the archive")
        if parsed and min_off > 0 and min_off != self.size:
            self.anomalies.append(f"{min_off} bytes before the first local header")
        if self._has_duplicates():
            self.anomalies.append("duplicate member names")
        return 0

    cdef int _compare_local_headers(self, uint64_t cd_start, uint64_t parsed,
                                    uint64_t min_off) except -1:
        cdef uint64_t start
        if self.size >= 4 and memcmp(self._at(0, 4, "first record"), b"PK\x03\x04", 4) == 0:
            start = 0
        else:
            start = min_off if parsed and min_off < cd_start else cd_start
        if not self._views_agree(start, cd_start):
            self._audit_views(start, cd_start)
        self.audited = True
        return 0

    cdef int _zip64_short(self, const uint8_t* e, uint64_t nlen, uint16_t flags,
                          str field) except -1:
        raise_status(ST_ZIP, f"member {decode_name(e + 46, nlen, flags)!r}: its ZIP64 extra "
                             f"field lacks the {field} (zipfile refuses the archive)")

    cdef bint _unicode_path(self, const uint8_t* e, uint64_t nlen, uint16_t flags, uint64_t d,
                            uint64_t hsz) except -1:
        """An Info-ZIP Unicode path extra field (at ``e + d``, ``hsz`` bytes) of the entry at
        ``e``: True (its name's length cut at NUL in ``_uni_len``) when zipfile of Python >=
        3.12 takes the name from it, as unzip does. Where that name differs from the stored
        one, readers install the member under two names: a confusion."""
        stored = decode_name(e + 46, nlen, flags)
        if hsz < 5:
            self.anomalies.append(f"member {stored!r}: corrupt Unicode path extra field "
                                  f"(zipfile of Python 3.12 and later refuses the archive)")
            return False
        if e[d] != 1 or u32(e + d + 1) != <uint32_t>z.crc32(0, e + 46, <unsigned int>nlen):
            return False  # not for this name: every reader keeps the stored one
        raw = e[d + 5:d + hsz]
        try:
            uni = raw.decode("utf-8")
        except UnicodeDecodeError:
            self.anomalies.append(f"member {stored!r}: its Unicode path extra field is not "
                                  f"UTF-8 (zipfile of Python 3.12 and later refuses the "
                                  f"archive)")
            return False
        if not uni:
            return False  # zipfile warns and keeps the stored name
        bad = _zipviews.name_problem(raw, 0x800)
        if bad is not None:
            self.anomalies.append(f"member {stored!r}: its Unicode path {uni!r} {bad}")
        cut = memchr(e + d + 5, 0, hsz - 5)
        self._uni_len = <uint16_t>((<const uint8_t*>cut - (e + d + 5)) if cut != NULL
                                   else hsz - 5)
        uni = uni.split("\0", 1)[0]
        if uni != stored.split("\0", 1)[0]:
            self.anomalies.append(
                f"confusion: member {stored!r} is named {uni!r} by its Unicode path extra "
                f"field: zipfile of Python 3.12 and later (and unzip) install {uni!r}, older "
                f"ones {stored.split(chr(0), 1)[0]!r}")
        return True

    cdef bint _views_agree(self, uint64_t start, uint64_t cd_start) except -1:
        """The common case in C: the local headers follow one another from ``start`` in
        directory order, each repeating its entry (name, flags, method, sizes, CRC-32, no
        ZIP64 or Unicode path extra), the last member ending where the directory begins.
        False sends the archive to the full comparison (:func:`zipviews.audit`)."""
        cdef uint64_t pos = start, nlen, elen, q, hid, hsz
        cdef Py_ssize_t i
        cdef const Entry* ent
        cdef const uint8_t* h
        cdef uint16_t lflags, lmethod
        cdef uint32_t lcrc, lcsize, lusize
        for i in range(self.count):
            ent = &self.ents[i]
            if ent.offset != pos or ent.flags & 8 or pos + 30 > self.size:
                return False
            h = self._at(pos, 30, "local header")
            if memcmp(h, b"PK\x03\x04", 4) != 0:
                return False
            lflags = u16(h + 6)
            lmethod = u16(h + 8)
            lcrc = u32(h + 14)
            lcsize = u32(h + 18)
            lusize = u32(h + 22)
            nlen = u16(h + 26)
            elen = u16(h + 28)
            if (lflags != ent.flags or lmethod != ent.method or lcrc != ent.crc
                    or lcsize != ent.csize or lusize != ent.usize or nlen != ent.raw_nlen
                    or pos + 30 + nlen + elen > self.size):
                return False
            h = self._at(pos + 30, nlen + elen, "local header name")
            if memcmp(h, self.cd_base + ent.raw_at, nlen) != 0:
                return False
            q = nlen
            while q + 4 <= nlen + elen:
                hid = u16(h + q)
                hsz = u16(h + q + 2)
                if hid == 1 or hid == 0x7075 or q + 4 + hsz > nlen + elen:
                    return False
                q += 4 + hsz
            pos += 30 + nlen + elen + ent.csize
        return pos == cd_start

    def _peek(self, uint64_t off, uint64_t n):
        """At most ``n`` archive bytes at ``off`` (fewer at the end of the file)."""
        if off >= self.size:
            return b""
        if n > self.size - off:
            n = self.size - off
        return bytes(<const char[:n]><const char*>self._at(off, n, "local headers")) if n else b""

    cdef int _audit_views(self, uint64_t start, uint64_t cd_start) except -1:
        """Compare zipfile's view with a streaming reader's (:func:`zipviews.audit`); the
        local headers only that reader installs become entries after the directory's
        (``view`` set), judged like any other."""
        cdef Py_ssize_t i, n = self.count
        cdef Entry* ent
        central = []
        for i in range(n):
            ent = &self.ents[i]
            central.append(_zipviews.Central(
                ent.offset, self.cd_base[ent.raw_at:ent.raw_at + ent.raw_nlen], ent.flags,
                ent.method, ent.csize, ent.usize, ent.crc))
        found, extra = _zipviews.audit(self._peek, self.size, start, central, cd_start)
        self.anomalies.extend(found)
        for h in extra:
            self._add_local(h.offset, h.raw, h.flags, h.method, h.csize, h.size, h.crc)
        return 0

    cdef int _add_local(self, uint64_t offset, bytes raw, uint16_t flags, uint16_t method,
                        uint64_t csize, uint64_t usize, uint32_t crc) except -1:
        """One more entry: a local header whose bytes only a streaming reader installs. It
        is judged like the directory's (a candidate under the name rule); ``count`` and
        ``names`` stay zipfile's."""
        cdef Py_ssize_t i = self.count + self.n_local
        cdef Entry* grown = <Entry*>realloc(self.ents, (i + 1) * sizeof(Entry))
        cdef uint16_t nlen
        if grown == NULL:
            raise_status(ST_NOMEM, "cannot allocate a local-header entry")
        self.ents = grown
        if self._lh_names is None:
            self._lh_names = []
        self._lh_names.append(raw)
        cut = raw.find(b"\0")
        nlen = <uint16_t>(cut if cut >= 0 else len(raw))
        self.ents[i] = Entry(name_at=0, raw_at=0, csize=csize, usize=usize, offset=offset,
                             crc=crc, nlen=nlen, raw_nlen=<uint16_t>len(raw), flags=flags,
                             method=method, view=1)
        self.n_local += 1
        if classify(<const uint8_t*>PyBytes_AS_STRING(raw), nlen, usize, flags) == K_CANDIDATE:
            self.candidates.append(i)
        return 0

    cdef bint _has_duplicates(self) except -1:
        """Whether two entries have the same decoded name. ASCII names (the rule) go through a
        C hash set on their bytes: an ASCII name decodes to itself whatever the flags, and a
        name with any other byte never decodes to pure ASCII, so only the rest are decoded
        and compared as strings."""
        cdef Py_ssize_t i, j, size = 1
        cdef uint64_t h
        cdef const uint8_t* q
        cdef const Entry* a
        cdef const Entry* b
        cdef Py_ssize_t* slots
        cdef uint16_t k
        cdef bint ascii, dup = False
        others = None
        while size < 2 * self.count:
            size <<= 1
        slots = <Py_ssize_t*>malloc(size * sizeof(Py_ssize_t))
        if slots == NULL:
            raise_status(ST_NOMEM, "cannot allocate the duplicate-name table")
        try:
            memset(slots, 0xFF, size * sizeof(Py_ssize_t))  # -1: empty
            for i in range(self.count):
                a = &self.ents[i]
                q = self.cd_base + a.name_at
                h = 1469598103934665603ULL  # FNV-1a
                ascii = True
                for k in range(a.nlen):
                    if q[k] & 0x80:
                        ascii = False
                        break
                    h = (h ^ q[k]) * 1099511628211ULL
                if not ascii:
                    if others is None:
                        others = set()
                    name = decode_name(q, a.nlen, a.flags)
                    if name in others:
                        dup = True
                        break
                    others.add(name)
                    continue
                j = <Py_ssize_t>(h & <uint64_t>(size - 1))
                while slots[j] >= 0:
                    b = &self.ents[slots[j]]
                    if b.nlen == a.nlen and memcmp(self.cd_base + b.name_at, q, a.nlen) == 0:
                        dup = True
                        break
                    j = (j + 1) & (size - 1)
                if dup:
                    break
                slots[j] = i
        finally:
            free(slots)
        return dup

    cdef inline const Entry* _ent(self, Py_ssize_t index) except NULL:
        cdef Py_ssize_t n = self.count + self.n_local
        cdef Py_ssize_t i = index + n if index < 0 else index
        if i < 0 or i >= n or not self.dir_read:
            raise IndexError(f"entry {index} of {n if self.dir_read else 0}")
        return &self.ents[i]

    cdef str _name(self, const Entry* ent):
        cdef bytes raw
        if ent.view:
            raw = self._lh_names[(ent - self.ents) - self.count]
            return decode_name(<const uint8_t*>PyBytes_AS_STRING(raw), ent.nlen, ent.flags)
        return decode_name(self.cd_base + ent.name_at, ent.nlen, ent.flags)

    def entry(self, Py_ssize_t index):
        """Entry ``index``: (name, method, flags, compressed_size, size, local_header_offset,
        crc32)."""
        cdef const Entry* ent = self._ent(index)
        return (self._name(ent), ent.method, ent.flags, ent.csize, ent.usize, ent.offset,
                ent.crc)

    def name(self, Py_ssize_t index):
        """The name of entry ``index``."""
        return self._name(self._ent(index))

    @property
    def entries(self):
        """Every entry, as :meth:`entry` gives them (built on first use)."""
        if not self.dir_read:
            return []
        if self._entries is None:
            self._entries = [self.entry(i) for i in range(self.count)]
        return self._entries

    @property
    def names(self):
        """Every entry's name (built on first use)."""
        if not self.dir_read:
            return []
        if self._names is None:
            self._names = [self._name(&self.ents[i]) for i in range(self.count)]
        return self._names

    cpdef Member open(self, Py_ssize_t index):
        """A :class:`Member` reader for entry ``index`` (its local header checked)."""
        cdef uint64_t off, nlen, elen, data_off, csize, usize
        cdef const uint8_t* p
        cdef const Entry* ent = self._ent(index)
        cdef uint16_t flags = ent.flags, method = ent.method, lmethod, lflags
        cdef uint32_t lcsize, lusize, lcrc
        csize = ent.csize
        usize = ent.usize
        off = ent.offset
        if flags & 1:
            raise_status(ST_ZIP, "member is encrypted")
        if method != 0 and method != 8 and method != 93:
            raise_status(ST_ZIP, f"unsupported compression method {method}")
        p = self._at(off, 30, "local header")
        if memcmp(p, b"PK\x03\x04", 4) != 0:
            raise_status(ST_ZIP, f"no local header signature at offset {off}")
        nlen = u16(p + 26)
        elen = u16(p + 28)
        lmethod = u16(p + 8)
        lcsize = u32(p + 18)
        lusize = u32(p + 22)
        lcrc = u32(p + 14)
        lflags = u16(p + 6)
        p = self._at(off + 30, nlen, "local header name")
        if not self.audited and not ent.view:
            # a file object's archive: the headers of the members it opens are compared here
            other = False
            if nlen != ent.raw_nlen or memcmp(p, self.cd_base + ent.raw_at, nlen) != 0:
                stored = decode_name(self.cd_base + ent.raw_at, ent.raw_nlen, flags)
                self.anomalies.append(
                    f"confusion: member {stored!r}: its local header names it "
                    f"{decode_name(p, nlen, lflags)!r}, which a reader walking the local "
                    f"headers installs")
                other = True
            elif lmethod != method or (lcsize != csize and lcsize != 0xFFFFFFFF
                                       and not (lflags & 8 and lcsize == 0)):
                self.anomalies.append(
                    f"confusion: {self._name(ent)!r}: its local header says method {lmethod} "
                    f"and {lcsize} compressed bytes, the central directory method {method} "
                    f"and {csize}: the readers extract different bytes")
                other = True
            if other and lcsize != 0xFFFFFFFF and not (lflags & 8 and lcsize == 0):
                # the bytes that reader installs are judged too (the engine's candidate loop
                # reaches the new entry); ``ent`` may move: nothing reads it after this
                self._add_local(off, p[:nlen], lflags, lmethod, lcsize, lusize, lcrc)
                ent = self._ent(index)
        data_off = off + 30 + nlen + elen
        if data_off > self.size or csize > self.size - data_off:
            raise_status(ST_ZIP, f"member data ({csize} bytes at offset {data_off}) runs past "
                                 f"the end of the archive ({self.size} bytes)")
        return Member(self, method, data_off, csize, usize)

    def digest(self, Py_ssize_t index):
        """blake2b-128 hex digest of the member's compressed bytes (local archives only)."""
        cdef uint64_t pos, end, k
        m = self.open(index)
        if self.base != NULL:
            return hashlib.blake2b(self._mv[m.data_off:m.data_off + m.csize],
                                   digest_size=16).hexdigest()
        if self.fd < 0:
            raise ValueError("digest needs a local archive")
        h = hashlib.blake2b(digest_size=16)
        pos = m.data_off
        end = pos + m.csize
        while pos < end:
            k = end - pos if end - pos < DIGEST_CHUNK else DIGEST_CHUNK
            self._at(pos, k, "member data")
            h.update(self._tmp)
            pos += k
        self._tmp = None
        return h.hexdigest()

    def read_member(self, Py_ssize_t index, uint64_t limit):
        """The whole member (at most ``limit`` bytes, else LimitExceeded) as bytes."""
        cdef const Entry* ent = self._ent(index)
        cdef uint64_t csize = ent.csize, usize = ent.usize
        cdef int method = ent.method
        if usize > limit:
            raise_status(ST_LIMIT, f"{usize} bytes exceed the limit of {limit}")
        cdef Member m = self.open(index)
        self._choose(m)
        try:
            if method == 0 and csize != usize:
                raise_status(ST_ZIP, f"stored member: compressed size {csize} != size {usize}")
            m.fill(usize)
            if m.produced < usize:
                raise_status(ST_INFLATE, f"member inflates to {m.produced} bytes, {usize} "
                                         f"declared (truncated)")
            _check_crc(m.ptr(), usize, ent.crc)
            return bytes(m.view())
        finally:
            m.close()

    def scan_elf(self, Py_ssize_t index, str member):
        """Peek entry ``index``; if it is ELF, parse it, inflating only the needed prefix.

        Returns ElfFacts, or None for a non-ELF member. ``last_inflated``/``last_read`` hold
        the member's byte counts afterwards, whether it succeeded or raised.
        """
        cdef Member m
        cdef uint64_t need, target, usize, step
        cdef int rounds = 0
        self.last_inflated = self.last_read = 0
        m = self.open(index)
        usize = m.usize
        try:
            if m.method == 0 and self.base == NULL:
                res = self._scan_stored_ranges(m, member)
                if res is not False:
                    return res
                m.produced = m.fed = 0  # no memory for a sparse buffer: read a prefix
            self._choose(m)
            m.fill(min(<uint64_t>PEEK, usize))
            if not m._is_elf():
                if not m._lenient():
                    return None
                # ISA-L builds Huffman tables without zlib's checks: a corrupt first block
                # may decode to bytes where zlib gives an error. Is that zlib's answer too?
                m._restart_with_zlib(min(<uint64_t>PEEK, usize))
                if not m._is_elf():
                    return None
            if m.method == 0 and m.csize != usize:
                raise_status(ST_ZIP, f"stored member: compressed size {m.csize} != size {usize}")
            while True:
                try:
                    res = parse_prefix(m.ptr(), m.produced, usize, member)
                    if type(res) is not int:
                        return res
                    need = res
                    rounds += 1
                    if rounds > MAX_ROUNDS:
                        raise_status(ST_ELF, f"ELF tables still incomplete after {MAX_ROUNDS} "
                                             f"rounds ({m.produced} bytes inflated)")
                    # grow geometrically from a few KiB (a small .so needs a fraction of
                    # itself), by at most one chunk per round, and at least to what the parser
                    # asked for
                    step = m.produced if m.produced > 4096 else 4096
                    if step > self.chunk:
                        step = self.chunk
                    target = m.produced + step
                    if target < need:
                        target = need
                    if target > usize:
                        target = usize
                    if self._expect is not None and m.method == 8 and target > m.produced:
                        # tell a remote file where this member's input will likely end: the
                        # output still wanted at the member's average ratio, plus a quarter
                        # and 64 KiB (Python integers: sizes are the archive's claims)
                        est = (int(m.fed) + int(target - m.produced) * int(m.csize) * 5
                               // (4 * int(usize)) + 65536)
                        try:  # a hint: whatever it does, the read goes on
                            self._expect(int(m.data_off), int(m.data_off) + min(est, int(m.csize)))
                        except Exception:
                            self._expect = None
                    m.fill(target)
                    if m.produced < need:
                        raise_status(ST_INFLATE, f"member data ends after {m.produced} bytes, "
                                                 f"ELF tables need {need} ({usize} declared)")
                except WheelscanError:
                    if not m._lenient():
                        raise
                    # bytes ISA-L decoded from a stream zlib rejects? zlib says so (its error
                    # here), or gives the same bytes and then the same error on the next turn
                    m._restart_with_zlib(m.produced)
        finally:
            # the back-end that produced the bytes (zlib's name where none was needed)
            self.last_inflater = m.inf.name if m.inf is not None else "zlib"
            m.close()

    cdef object _scan_stored_ranges(self, Member m, str member):
        """A stored member read with pread or through a file object: read only the ranges the
        parser asks for (header, program headers, each table) into a sparse buffer, not the
        prefix up to the last table. ElfFacts, None for a non-ELF member, or False if no buffer could be had."""
        cdef uint64_t usize = m.usize, n, s, e, got, grow
        cdef int tiny = 0
        cdef uint8_t* buf
        cdef void* mem
        cdef const uint8_t* p
        cdef int rounds = 0
        n = usize if usize < <uint64_t>PEEK else <uint64_t>PEEK
        p = self._at(m.data_off, n, "member data")
        m.produced = m.fed = n
        if n < 4 or memcmp(p, b"\x7fELF", 4) != 0:
            return None
        if m.csize != usize:
            raise_status(ST_ZIP, f"stored member: compressed size {m.csize} != size {usize}")
        # an anonymous mapping: zero pages the kernel provides on first touch, so a sparse
        # read costs memory for the pages it fills only (calloc would memset heap blocks)
        mem = mman.mmap(NULL, usize, mman.PROT_READ | mman.PROT_WRITE,
                        mman.MAP_PRIVATE | mman.MAP_ANONYMOUS, -1, 0)
        if mem == mman.MAP_FAILED:
            return False
        buf = <uint8_t*>mem
        try:
            memcpy(buf, p, n)
            present = [(0, n)]
            got = n
            while True:
                res = elf_parse(<uint8_t[:usize]> buf, usize, member, present)
                if type(res) is not list:
                    return res
                rounds += 1
                if rounds > MAX_ROUNDS:
                    raise_status(ST_ELF, f"ELF tables still incomplete after {MAX_ROUNDS} "
                                         f"rounds ({got} bytes read)")
                # tiny ranges are version-chain entries (16 or 20 bytes, one per round as
                # the walk finds their offsets): read ahead of them, from 512 bytes and
                # doubling with each one asked for, so a long chain takes a few rounds, not
                # one per entry; the tables themselves come with their sizes, read exactly
                wanted = []
                for s, e in res:
                    if e - s < 64:
                        tiny += 1
                        grow = <uint64_t>256 << (tiny if tiny < 12 else 12)
                        if e < s + grow:
                            e = s + grow if s + grow < usize else usize
                    wanted.append((s, e))
                gaps = _gaps(wanted, present)
                if not gaps:  # the parser asked only for bytes it has: it cannot progress
                    raise_status(ST_ELF, f"ELF parse made no progress after {rounds} rounds "
                                         f"({got} bytes read)")
                for s, e in gaps:
                    if self.inflated_total + got + (e - s) > self.max_inflate:
                        raise_status(ST_LIMIT, f"the wheel's inflate limit of "
                                               f"{self.max_inflate} bytes would be exceeded")
                    self._read_into(buf + s, m.data_off + s, e - s, "member data")
                    got += e - s
                    m.produced = m.fed = got
                    present.append((s, e))
                present = _gaps(present, [])  # sorted and coalesced: stays short
        finally:
            mman.munmap(mem, usize)

    cdef int _choose(self, Member m) except -1:
        """Before anything is read: a deflated member's back-end (the archive's setting,
        by the member's sizes)."""
        if m.method == 8:
            m.kind = self.inf.choose(m.csize, m.usize)
            m.inf = self.inf.new(m.kind)
        return 0

    cdef int _reserve(self, size_t n) except -1:
        cdef size_t cap
        cdef uint8_t* q
        if n <= self.out_cap:
            return 0
        cap = self.out_cap * 2
        if cap < n:
            cap = n
        if cap < 65536:
            cap = 65536
        q = <uint8_t*>realloc(self.out, cap)
        if q == NULL:
            raise_status(ST_NOMEM, f"cannot allocate {cap} bytes of output buffer")
        self.out = q
        self.out_cap = cap
        return 0


cdef list _gaps(list wanted, list present):
    """The parts of the ``wanted`` ranges not in the sorted ``present`` ones, merged, in order."""
    cdef list raw = [], out = []
    cdef uint64_t s, e, ps, pe, cur
    for s, e in wanted:
        cur = s
        for ps, pe in present:
            if pe <= cur:
                continue
            if ps >= e:
                break
            if ps > cur:
                raw.append((cur, ps))
            cur = pe
            if cur >= e:
                break
        if cur < e:
            raw.append((cur, e))
    raw.sort()
    cdef Py_ssize_t last
    for s, e in raw:
        last = len(out) - 1
        if last >= 0 and s <= out[last][1]:
            if e > out[last][1]:
                out[last] = (out[last][0], e)
        else:
            out.append((s, e))
    return out


cdef int _check_crc(const uint8_t* p, uint64_t n, uint32_t want) except -1:
    """A member read whole must have the CRC-32 its central directory entry records: bytes
    an inflater decoded from a corrupt stream (ISA-L accepts some that zlib refuses), or a
    stored member whose bytes changed, are an error, as zipfile makes them."""
    cdef unsigned long crc = 0
    cdef uint64_t k
    while n:
        k = n if n < 0x40000000 else 0x40000000
        crc = z.crc32(crc, p, <unsigned int>k)
        p += k
        n -= k
    if <uint32_t>crc != want:
        raise_status(ST_INFLATE, f"CRC-32 of the member's bytes is {<uint32_t>crc:08x}, its "
                                 f"central directory entry says {want:08x}")
    return 0


cdef class _Source:
    """File-like view of a member's compressed bytes for zstandard's stream_reader."""
    cdef Member m

    def __cinit__(self, Member m):
        self.m = m

    def read(self, Py_ssize_t n=-1):
        return self.m._next_input(n if n >= 0 else PY_IN_CHUNK)


@cython.final
cdef class Member:
    """Incremental reader of one member's data into the archive's output buffer."""

    cdef Archive arc
    cdef readonly int method
    cdef readonly uint64_t data_off, csize, usize
    cdef readonly uint64_t produced
    cdef uint64_t fed
    cdef readonly bint eof
    cdef const uint8_t* direct
    cdef int kind               # a deflated member's back-end (INF_ZLIB until chosen)
    cdef Inflater inf           # its stream, made when chosen or on the first fill
    cdef object zreader
    cdef bytes _inbuf           # the input a C back-end is reading, when it was read

    def __cinit__(self, Archive arc, int method, uint64_t data_off, uint64_t csize,
                  uint64_t usize):
        self.arc = arc
        self.method = method
        self.data_off = data_off
        self.csize = csize
        self.usize = usize
        self.direct = NULL
        self.kind = INF_ZLIB

    @property
    def read(self):
        """Compressed bytes consumed so far."""
        if self.inf is not None:
            return self.fed - <uint64_t>self.inf.pending()
        return self.fed

    def close(self):
        self.arc.last_inflated = self.produced
        self.arc.last_read = self.read
        self.arc.inflated_total += self.produced
        if self.inf is not None:
            self.inf.release()
            self.inf = None
        self.zreader = None

    cdef const uint8_t* ptr(self):
        return self.direct if self.direct != NULL else self.arc.out

    cdef bint _is_elf(self):
        return self.produced >= 4 and memcmp(self.ptr(), b"\x7fELF", 4) == 0

    cdef bint _lenient(self):
        """Whether this member's bytes come from a back-end (ISA-L's) that may decode a
        stream zlib rejects (zlib and zlib-ng check every code they build)."""
        return self.inf is not None and self.inf.lenient

    def view(self):
        """The bytes produced so far (valid until the next fill)."""
        if self.produced == 0:
            return memoryview(b"")
        if self.direct != NULL:
            return self.arc._mv[self.data_off:self.data_off + self.produced]
        return <uint8_t[:self.produced]> self.arc.out

    cdef object _next_input(self, Py_ssize_t n):
        """Up to ``n`` more compressed bytes (a view into a wheel read whole, or bytes read)."""
        cdef uint64_t k = self.csize - self.fed
        if self.arc.base == NULL and <uint64_t>n > self.fed and n > 4096:
            # a file object (perhaps over HTTP) or pread: start small and double, so that a
            # peek at a member that is not ELF reads a few KiB, not a whole chunk
            n = self.fed if self.fed > 4096 else 4096
        if <uint64_t>n < k:
            k = n
        if k == 0:
            return b""
        off = self.data_off + self.fed
        if self.arc.base == NULL:
            self.arc._at(off, k, "member data")  # may fail: only bytes that arrived count
        self.fed += k
        if self.arc.base != NULL:
            return self.arc._mv[off:off + k]
        return self.arc._tmp

    cpdef int64_t fill(self, uint64_t target) except -1:
        """Produce output until ``target`` bytes (capped at the declared size) or the end."""
        if target > self.usize:
            target = self.usize
        if target <= self.produced:
            return <int64_t>self.produced
        if self.arc.inflated_total + target > self.arc.max_inflate:
            raise_status(ST_LIMIT, f"the wheel's inflate limit of {self.arc.max_inflate} bytes "
                                   f"would be exceeded")
        if self.method == 0:
            self._fill_stored(target)
        elif self.method == 8:
            self._fill_deflate(target)
        else:
            self._fill_zstd(target)
        if self.produced == self.usize and not self.eof and self.method != 0:
            self._check_end()
        return <int64_t>self.produced

    cdef int _input_left(self) except -1:
        """Before feeding more input: none left means the stream ended before the output."""
        if self.fed >= self.csize:
            raise_status(ST_INFLATE, f"deflate stream truncated: {self.produced} bytes "
                                     f"inflated, {self.usize} declared")
        return 0

    cdef uint64_t _out_step(self, uint64_t target) except 0:
        """Output for one C inflate call, with room for it reserved: what the target still
        needs, at most one chunk and 1 GiB (zlib and ISA-L count it in 32 bits)."""
        cdef uint64_t step = target - self.produced
        if step > self.arc.chunk:
            step = self.arc.chunk
        if step > 0x40000000:
            step = 0x40000000
        self.arc._reserve(self.produced + step)
        return step

    cdef int _fill_stored(self, uint64_t target) except -1:
        cdef const uint8_t* p
        if target > self.csize:
            target = self.csize
        if self.arc.base != NULL:
            self.direct = self.arc.base + self.data_off
            self.produced = self.fed = target
            return 0
        self.arc._reserve(target)
        p = self.arc._at(self.data_off + self.produced, target - self.produced, "member data")
        memcpy(self.arc.out + self.produced, p, target - self.produced)
        self.produced = self.fed = target
        return 0

    cdef const uint8_t* _take_input(self, uint64_t want, uint64_t* k) except NULL:
        """Up to ``want`` more compressed bytes for a C inflater, ``k[0]`` of them: a pointer
        into a wheel read whole (no copy), else into bytes read (kept in ``_inbuf``)."""
        cdef const uint8_t* p
        if self.arc.base != NULL:
            k[0] = self.csize - self.fed
            if k[0] > want:
                k[0] = want
            p = self.arc.base + self.data_off + self.fed
            self.fed += k[0]
            return p
        self._inbuf = self._next_input(want)
        k[0] = PyBytes_GET_SIZE(self._inbuf)
        return <const uint8_t*>PyBytes_AS_STRING(self._inbuf)

    cdef uint64_t _chunk_in(self):
        """Input per feed for a back-end that decodes no further than asked (zlib, zlib-ng):
        all that is left of a wheel read whole, else a chunk; at most 1 GiB (their avail_in
        is 32-bit). From a file object (a remote file), steps start at 4 KiB and double with
        what was fed, so a peek reads a peek's worth and a long prefix takes a few steps."""
        cdef uint64_t want = 0x40000000 if self.arc.base != NULL else self.arc.chunk
        if self.arc.fileobj is not None and want > 4096 and want > self.fed:
            want = self.fed if self.fed > 4096 else 4096
        if want > 0x40000000:
            want = 0x40000000
        return want

    cdef uint64_t _want(self, uint64_t target):
        """Compressed input to hand ISA-L for output up to ``target``. ISA-L decodes ahead of
        the output asked for (python-isal buffers it, the C API fills a 64 KiB side buffer),
        so input beyond what the target needs is inflated for nothing: hand it what the
        remaining output needs at the ratio seen so far (exact once a call returned short,
        i.e. nothing is held back), else the member's average ratio, plus room for a block
        header, and never more than was consumed so far (where the ratio changes, e.g. at a
        run of zero padding, over-feeding stays within a factor of two). Too little costs
        one more call."""
        cdef uint64_t want, consumed = self.read
        if self.produced >= 4096 and not self.inf.full:
            want = (target - self.produced) * consumed // self.produced
        else:
            want = (target - self.produced) * self.csize // (self.usize or 1)
        want += FEED_SLACK
        if want > consumed and consumed >= 2048:
            want = consumed
        if want > PY_IN_CHUNK:
            want = PY_IN_CHUNK
        return want

    cdef int _feed(self, uint64_t want) except -1:
        """Hand the back-end up to ``want`` more compressed bytes."""
        cdef uint64_t k
        cdef const uint8_t* p
        if self.inf.kind == INF_PY:
            data = self._next_input(want)
            return self.inf.give(NULL, len(data), data)
        p = self._take_input(want, &k)
        return self.inf.give(p, k, None)

    cdef int _fill_deflate(self, uint64_t target) except -1:
        """Any back-end, straight into the output buffer, up to ``target`` bytes."""
        cdef size_t got
        cdef int r
        if self.inf is None:
            self.inf = self.arc.inf.new(self.kind)
        while self.produced < target and not self.eof:
            if self.inf.pending() == 0 and not self.inf.full:
                self._input_left()
                self._feed(self._want(target) if self.inf.decodes_ahead else self._chunk_in())
            r = self.inf.step(self.arc.out + self.produced, self._out_step(target), &got)
            self.produced += got
            if r == STEP_END:
                self.eof = True
            elif r == STEP_ERROR:
                if self.inf.retry_with_zlib:
                    return self._restart_with_zlib(target)
                raise_status(ST_INFLATE, f"corrupt deflate stream after {self.produced} "
                                         f"bytes: {self.inf.msg}")
            elif r == STEP_STALL:
                raise_status(ST_INFLATE, f"deflate stream stalls after {self.produced} bytes")
        return 0

    cdef int _restart_with_zlib(self, uint64_t target) except -1:
        """ISA-L (C API or python-isal) decodes up to 64 KiB ahead of the output asked for, so
        it may fail on a corrupt stretch the scan never needs, and its state is gone once it
        has. Corruption is rare: start the member over with zlib, which decodes no further
        than asked, so a corrupt member gives the same bytes or the same error whichever
        inflater the archive uses."""
        zlib = self.arc.inf.new(INF_ZLIB)  # first: should it fail, the member keeps its stream
        if self.inf is not None:
            self.inf.release()
        self.kind = INF_ZLIB
        self.inf = zlib
        self.produced = self.fed = 0
        self.eof = False
        self._inbuf = None
        return self._fill_deflate(target)

    cdef int _fill_zstd(self, uint64_t target) except -1:
        cdef uint64_t step, k
        if self.zreader is None:
            import zstandard
            self.zreader = zstandard.ZstdDecompressor().stream_reader(
                _Source(self), read_size=PY_IN_CHUNK)
        while self.produced < target and not self.eof:
            step = target - self.produced
            if step > self.arc.chunk:
                step = self.arc.chunk
            try:
                outb = self.zreader.read(step)
            except (WheelscanError, OSError):
                raise  # reading the compressed bytes failed (a short read, I/O): not the stream
            except Exception as exc:
                raise_status(ST_INFLATE, f"corrupt Zstandard stream after {self.produced} "
                                         f"bytes: {exc}")
            k = len(outb)
            if k == 0:
                self.eof = True
                break
            self.arc._reserve(self.produced + k)
            memcpy(self.arc.out + self.produced, PyBytes_AS_STRING(outb), k)
            self.produced += k
        return 0

    cdef int _recheck_with_zlib(self) except -1:
        """ISA-L failed in what it decoded ahead, past the declared size: whether one more byte
        of output exists there is zlib's call (it decodes no further than that byte)."""
        self._restart_with_zlib(self.usize)
        if not self.eof:
            return self._check_end()
        return 0

    cdef bint _more_deflate(self) except -1:
        """At the declared size: whether the stream gives one more byte of output."""
        cdef uint8_t extra[1]
        cdef size_t got
        cdef int r
        while not self.eof:
            if self.inf.pending() == 0 and not self.inf.full:
                if self.fed >= self.csize:
                    return False
                self._feed(PY_IN_CHUNK if self.inf.decodes_ahead else self._chunk_in())
            self.inf.full = False
            r = self.inf.step(extra, 1, &got)
            if got:
                return True
            if r == STEP_END:
                self.eof = True
            elif r == STEP_ERROR:
                if self.inf.retry_with_zlib:
                    self._recheck_with_zlib()  # raises if zlib finds one more byte
                return False
            elif r == STEP_STALL:
                return False
        return False

    cdef int _check_end(self) except -1:
        """At the declared size: one more byte of output means the size lied (a zip bomb)."""
        cdef bint more
        if self.method == 8:
            more = self._more_deflate()
        else:
            try:
                more = len(self.zreader.read(1)) > 0
            except (WheelscanError, OSError):
                raise
            except Exception:
                more = False
        if more:
            raise_status(ST_LIMIT, f"member inflates beyond its declared size of "
                                   f"{self.usize} bytes")
        return 0
