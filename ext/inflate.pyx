# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""The deflate back-ends, their libraries and the choice between them.

Each back-end is an :class:`Inflater` with one small interface (``give`` input, ``step`` into an
output buffer, ``pending``, ``release``): zlib's C API, ISA-L's and zlib-ng's C APIs (bound at
import after a self-test: ext/isal_shim.h, ext/zng_shim.h; the GIL is released while they
decode), and python-isal's or zlib-ng's ``decompressobj``. The ZIP reader cimports them and
owns the input and the output buffer. :data:`INFLATERS` lists the inflaters available,
:data:`inflater` is the default: ``WHEELSCAN_INFLATER`` if set, else the fastest, ``auto``
where both C libraries are bound (each member's ratio picks one of them).
"""

from importlib.util import find_spec

cimport cython
from libc.stdint cimport uint8_t, uint32_t, uint64_t
from libc.stdlib cimport free, malloc
from libc.string cimport memcpy
from cpython.bytes cimport PyBytes_AS_STRING

cimport zlib as z

cdef extern from "isal_shim.h":
    """
    """
    int WS_HAVE_LIBISAL
    int ISAL_BLOCK_FINISH
    struct inflate_state:
        uint8_t* next_out
        uint32_t avail_out
        uint32_t total_out
        uint8_t* next_in
        uint32_t avail_in
        int block_state
    const char* WS_LIBISAL_SONAME
    const char* WS_ISAL_HEADER_VERSION
    size_t WS_ISAL_STATE_BYTES
    int ws_isal_bound()
    int ws_isal_bind(size_t init, size_t inflate)
    int ws_isal_selftest(size_t init, size_t inflate, const uint8_t* data, size_t n,
                         const uint8_t* expect, size_t n_expect)
    void ws_isal_start(inflate_state* s) nogil
    int isal_inflate "ws_isal_inflate"(inflate_state* s) nogil

cdef extern from "zng_shim.h":
    ctypedef struct ws_zng_stream:
        unsigned char* next_in
        unsigned int avail_in
        size_t total_in
        unsigned char* next_out
        unsigned int avail_out
        size_t total_out
        const char* msg
    int ws_zng_bound()
    int ws_zng_bind(size_t init2, size_t inflate, size_t reset, size_t end)
    int ws_zng_selftest(size_t init2, size_t inflate, size_t reset, size_t end,
                        const uint8_t* data, size_t n, const uint8_t* expect, size_t n_expect)
    int ws_zng_new(ws_zng_stream* s)
    int ws_zng_inflate(ws_zng_stream* s, int flush) nogil
    int ws_zng_reset(ws_zng_stream* s)
    void ws_zng_end(ws_zng_stream* s)
from status cimport ST_ELF, ST_INFLATE, ST_LIMIT, ST_NOMEM, ST_ZIP
from status cimport ST_NOMEM

from wheelscan._native.elf import raise_status
from wheelscan.environment import environment

__all__ = [
    "AUTO_ZNG_RATIO", "INFLATERS", "LIBISAL", "LIBISAL_BUILT", "LIBISAL_ERROR", "LIBISAL_HEADER",
    "LIBISAL_SONAME", "LIBZNG", "LIBZNG_ERROR", "LIBZNG_SONAME", "LIBZNG_SOURCE",
    "LIBZNG_VERSION", "inflater", "ZLIB_VERSION",
]

ZLIB_VERSION = z.zlibVersion().decode()

# Fastest first, as measured on real .so members (docs/performance.md).
# "libisal" is ISA-L through its C API (built in when setup.py found libisal), "isal" the
# same library through python-isal's decompressobj; "libz-ng" is zlib-ng through its C API,
# "zlib-ng" through its Python package's decompressobj. On the corpus python-isal beats
# zlib-ng's C API (5.00 s against 5.25 s; libisal 4.58 s). "auto" is the first ISA-L of these,
# and libz-ng for the members that inflate at least AUTO_ZNG_RATIO times their compressed size.
_PREFERENCE = ("auto", "libisal", "isal", "libz-ng", "zlib-ng", "zlib")
cdef enum:
    AUTO_ZNG_HALVES = 9  # the ratio in halves, so that the reader compares integers
#: A deflated member whose central directory says it inflates to at least this many times its
#: compressed size goes to libz-ng under "auto". Such members are mostly runs (the zero
#: padding that aligns a segment to a 64 KiB page, as on aarch64), which zlib-ng copies
#: faster than ISA-L: 0.7x ISA-L's time on a 108 KB aarch64 .so whose 65 KB prefix is 60 KB
#: of padding. Across the benchmark corpus's 1,292 ELF members, sending those at or above
#: 4.5x (108 members) costs nothing in total and saves ~12 us on each small one; at 3x,
#: zlib-ng's slower decoding of ordinary code costs 4.5 %.
AUTO_ZNG_RATIO = AUTO_ZNG_HALVES / 2.0
_MODULES = {"isal": "isal", "zlib-ng": "zlib_ng"}
LIBISAL_SONAME = WS_LIBISAL_SONAME.decode()
#: Whether this build was made for ISA-L's C API (its header was found), and which header.
LIBISAL_BUILT = bool(WS_HAVE_LIBISAL)
LIBISAL_HEADER = WS_ISAL_HEADER_VERSION.decode() if LIBISAL_BUILT else None
_libisal_handle = None
_libzng_handle = None


def _selftest_stream():
    """A raw deflate stream with a stored, a fixed-code and a dynamic-code block, and what it
    inflates to: a library whose state does not match the header's layout fails it."""
    import zlib
    parts = [(0, zlib.Z_DEFAULT_STRATEGY, b"stored block "),
             (6, zlib.Z_FIXED, b"fixed codes, fixed codes "),
             (6, zlib.Z_DEFAULT_STRATEGY, b"".join(b"%d:%x;" % (i, i * i) for i in range(600)))]
    stream = b""
    for k, (level, strategy, data) in enumerate(parts):
        c = zlib.compressobj(level, zlib.DEFLATED, -15, 9, strategy)
        # a sync flush ends a segment byte-aligned and not final, so segments concatenate
        stream += c.compress(data) + c.flush(zlib.Z_FINISH if k == 2 else zlib.Z_SYNC_FLUSH)
    return stream, b"".join(data for _, _, data in parts)


def _entry_points(str path, names, str what):
    """``path`` loaded with ctypes and the addresses of ``names`` in it, as (library,
    addresses); or why not, as a str."""
    try:
        import ctypes
        lib = ctypes.CDLL(path)
    except (ImportError, OSError) as e:
        return f"cannot load {path}: {e}"
    try:
        return lib, [ctypes.cast(getattr(lib, n), ctypes.c_void_p).value or 0 for n in names]
    except AttributeError as e:
        return f"{path} lacks {what}'s inflate functions: {e}"


def _bind_libisal(str path):
    """Load ISA-L (``path``: a soname or file), check it against the header this build used,
    and bind its inflate entry points for the life of the process.

    Returns None once bound, else why not. The first binding stays: later calls only say
    whether ``path`` provides the very same functions. The library is loaded at run time,
    not linked, so the extension carries no DT_NEEDED on it.
    """
    global _libisal_handle
    cdef bytes stream, expect
    if not WS_HAVE_LIBISAL:
        return "not built in (install libisal-dev, then pip install again)"
    found = _entry_points(path, ("isal_inflate_init", "isal_inflate"), "ISA-L")
    if isinstance(found, str):
        return found
    lib, (init, inflate) = found
    stream, expect = _selftest_stream()
    if not ws_isal_selftest(init, inflate, stream, len(stream), expect, len(expect)):
        return (f"{path} does not inflate a known stream through the layout of the ISA-L "
                f"{LIBISAL_HEADER} header this build used")
    if not ws_isal_bind(init, inflate):
        return f"another libisal is already bound; {path} is not used"
    if _libisal_handle is None:
        _libisal_handle = lib  # kept: the bound functions live in it
    return None


def _load_libisal():
    want = environment().libisal
    if want == "0":
        return "disabled by WHEELSCAN_LIBISAL=0"
    why = _bind_libisal(LIBISAL_SONAME)
    if why is not None and want == "1":
        raise ImportError(f"WHEELSCAN_LIBISAL=1 but libisal is unusable: {why}")
    return why


#: Why the ``libisal`` inflater is not offered (None: it is). ``WHEELSCAN_LIBISAL=0``
#: disables it; ``=1`` makes its absence an ImportError.
LIBISAL_ERROR = _load_libisal()
LIBISAL = LIBISAL_ERROR is None

#: The soname of zlib-ng 2.x, whose stream layout ext/zng_shim.h declares.
LIBZNG_SONAME = "libz-ng.so.2"


def _bind_libzng(str path):
    """Load ``path`` (a soname, or the file of a module that exports zlib-ng's functions),
    check its version and that it inflates a known stream, and bind its inflate entry points
    for the life of the process. Returns (None, version) once bound, else (why not, None)."""
    global _libzng_handle
    cdef bytes stream, expect
    import ctypes
    found = _entry_points(path, ("zlibng_version", "zng_inflateInit2", "zng_inflate",
                                 "zng_inflateReset", "zng_inflateEnd"), "zlib-ng")
    if isinstance(found, str):
        return found, None
    lib, (_, *fns) = found
    lib.zlibng_version.restype = ctypes.c_char_p
    version = (lib.zlibng_version() or b"").decode("ascii", "replace")
    if not version.startswith("2."):
        return f"{path} is zlib-ng {version}; the stream layout used is zlib-ng 2.x's", None
    stream, expect = _selftest_stream()
    if not ws_zng_selftest(fns[0], fns[1], fns[2], fns[3], stream, len(stream), expect,
                           len(expect)):
        return f"{path} (zlib-ng {version}) does not inflate a known stream", None
    if not ws_zng_bind(fns[0], fns[1], fns[2], fns[3]):
        return f"another zlib-ng is already bound; {path} is not used", None
    if _libzng_handle is None:
        _libzng_handle = lib  # kept: the bound functions live in it
    return None, version


def _load_libzng():
    """zlib-ng's C API: the system library, else the zlib-ng package's extension module."""
    want = environment().libzng
    if want == "0":
        return "disabled by WHEELSCAN_LIBZNG=0", None, None
    why, version = _bind_libzng(LIBZNG_SONAME)
    if why is None:
        return None, LIBZNG_SONAME, version
    whys = [why]
    try:
        from zlib_ng import zlib_ng as module  # loaded as Python loads it, then looked into
    except ImportError as e:
        whys.append(f"zlib-ng package: {e}")
    else:
        why, version = _bind_libzng(module.__file__)
        if why is None:
            return None, module.__file__, version
        whys.append(why)
    if want == "1":
        raise ImportError(f"WHEELSCAN_LIBZNG=1 but zlib-ng is unusable: {'; '.join(whys)}")
    return "; ".join(whys), None, None


#: Why the ``libz-ng`` inflater is not offered (None: it is), where it was loaded from and
#: its version. ``WHEELSCAN_LIBZNG=0`` disables it; ``=1`` makes its absence an ImportError.
LIBZNG_ERROR, LIBZNG_SOURCE, LIBZNG_VERSION = _load_libzng()
LIBZNG = LIBZNG_ERROR is None
INFLATERS = tuple(
    n for n in _PREFERENCE
    if n == "zlib" or (n == "libisal" and LIBISAL) or (n == "libz-ng" and LIBZNG)
    or (n == "auto" and LIBZNG and (LIBISAL or find_spec("isal") is not None))
    or (n in _MODULES and find_spec(_MODULES[n]) is not None)
)


def _default_inflater():
    name = environment().inflater
    if name is None:
        return INFLATERS[0]
    if name not in INFLATERS:
        raise ImportError(f"WHEELSCAN_INFLATER={name!r}: expected one of {', '.join(INFLATERS)}")
    return name


inflater = _default_inflater()

cdef enum:
    # deflated members at least this big get a decompressobj inflater; smaller ones zlib, whose
    # set-up is cheaper (a 64-byte peek: zlib 5 us, isal 14 us). A 53 KB .so whose prefix is
    # 12 KB: 50 us with isal throughout, 60 us with zlib, 84 us starting over after the peek
    PY_FIRST = 16384

cdef object _factories = {}
# one ISA-L inflate state kept between members (it is ~80 KB; swapped under the GIL)
cdef inflate_state* _spare_ist = NULL
# one zlib-ng stream kept between members, reset (its state and window stay allocated)
cdef ws_zng_stream* _spare_zng = NULL


cdef object _decompressobj_factory(str name):
    f = _factories.get(name)
    if f is None:
        if name == "isal":
            from isal import isal_zlib
            f = isal_zlib.decompressobj
        elif name == "zlib-ng":
            from zlib_ng import zlib_ng
            f = zlib_ng.decompressobj
        else:
            raise ValueError(f"unknown inflater {name!r}")
        _factories[name] = f
    return f


cdef class Inflater:
    # the interface; every back-end overrides all four

    cdef int give(self, const uint8_t* p, size_t n, object data) except -1:
        raise NotImplementedError

    cdef Py_ssize_t pending(self) except -1:
        return 0

    cdef int step(self, uint8_t* out, size_t cap, size_t* got) except -1:
        raise NotImplementedError

    cdef void release(self) noexcept:
        pass


ctypedef fused zstream_t:
    z.z_stream
    ws_zng_stream


cdef inline int _zstep(Inflater inf, zstream_t* s, uint8_t* out, size_t cap,
                       size_t* got) except -1:
    """One call of zlib or zlib-ng (the same semantics). ``cap`` is at most 1 GiB."""
    cdef int ret
    cdef size_t before = s.total_out  # the width of zlib's uLong and zlib-ng's size_t
    s.next_out = out
    s.avail_out = <unsigned int>cap
    with nogil:
        if zstream_t is ws_zng_stream:
            ret = ws_zng_inflate(s, z.Z_NO_FLUSH)
        else:
            ret = z.inflate(s, z.Z_NO_FLUSH)
    got[0] = <size_t>(s.total_out - before)  # modulo the counter's width
    inf.full = s.avail_out == 0  # zlib may hold more output for no input
    if ret == z.Z_STREAM_END:
        return STEP_END
    if ret == z.Z_OK or (ret == z.Z_BUF_ERROR and s.avail_in == 0):
        return STEP_OK  # a buffer error with no input left: more input is wanted
    inf.msg = s.msg.decode("utf-8", "replace") if s.msg != NULL else str(ret)
    return STEP_ERROR


@cython.final
cdef class ZlibInflater(Inflater):
    cdef z.z_stream zs
    cdef bint live

    def __cinit__(self):
        self.kind = INF_ZLIB
        self.name = "zlib"
        if z.inflateInit2(&self.zs, -15) != z.Z_OK:  # Cython zeroes the struct first
            raise_status(ST_NOMEM, "inflateInit2 failed")
        self.live = True

    def __dealloc__(self):
        self.release()

    cdef int give(self, const uint8_t* p, size_t n, object data) except -1:
        self.zs.next_in = <unsigned char*>p
        self.zs.avail_in = <unsigned int>n
        return 0

    cdef Py_ssize_t pending(self) except -1:
        return self.zs.avail_in if self.live else 0

    cdef int step(self, uint8_t* out, size_t cap, size_t* got) except -1:
        return _zstep(self, &self.zs, out, cap, got)

    cdef void release(self) noexcept:
        if self.live:
            z.inflateEnd(&self.zs)
            self.live = False


@cython.final
cdef class ZngInflater(Inflater):
    cdef ws_zng_stream* s

    def __cinit__(self):
        global _spare_zng
        self.kind = INF_ZNG
        self.name = "libz-ng"
        if _spare_zng != NULL:
            self.s = _spare_zng
            _spare_zng = NULL
            self.s.next_in = NULL  # a reset keeps the last member's input: none is fed yet
            self.s.avail_in = 0
            return
        self.s = <ws_zng_stream*>malloc(sizeof(ws_zng_stream))
        if self.s == NULL or ws_zng_new(self.s) != 0:
            free(self.s)
            self.s = NULL
            raise_status(ST_NOMEM, "cannot set up a zlib-ng inflate stream")

    def __dealloc__(self):
        self.release()

    cdef int give(self, const uint8_t* p, size_t n, object data) except -1:
        self.s.next_in = <unsigned char*>p
        self.s.avail_in = <unsigned int>n
        return 0

    cdef Py_ssize_t pending(self) except -1:
        return self.s.avail_in if self.s != NULL else 0

    cdef int step(self, uint8_t* out, size_t cap, size_t* got) except -1:
        return _zstep(self, self.s, out, cap, got)

    cdef void release(self) noexcept:
        """Reset the stream and keep it for the next member, or free it."""
        global _spare_zng
        if self.s == NULL:
            return
        if _spare_zng == NULL and ws_zng_reset(self.s) == z.Z_OK:
            _spare_zng = self.s
        else:
            ws_zng_end(self.s)
            free(self.s)
        self.s = NULL


@cython.final
cdef class IsalInflater(Inflater):
    cdef inflate_state* ist

    def __cinit__(self):
        global _spare_ist
        self.kind = INF_ISAL
        self.name = "libisal"
        self.decodes_ahead = self.retry_with_zlib = self.lenient = True
        if _spare_ist != NULL:
            self.ist = _spare_ist
            _spare_ist = NULL
        else:
            # with slack: a newer 2.x library may have a larger state than the header's
            self.ist = <inflate_state*>malloc(WS_ISAL_STATE_BYTES)
            if self.ist == NULL:
                raise_status(ST_NOMEM, "cannot allocate an ISA-L inflate state")
        ws_isal_start(self.ist)  # raw deflate, the full window: as the self-test set it up

    def __dealloc__(self):
        self.release()

    cdef int give(self, const uint8_t* p, size_t n, object data) except -1:
        self.ist.next_in = <uint8_t*>p
        self.ist.avail_in = <uint32_t>n
        return 0

    cdef Py_ssize_t pending(self) except -1:
        return self.ist.avail_in if self.ist != NULL else 0

    cdef int step(self, uint8_t* out, size_t cap, size_t* got) except -1:
        cdef int ret
        cdef uint32_t before_in = self.ist.avail_in
        self.ist.next_out = out
        self.ist.avail_out = <uint32_t>cap
        with nogil:
            ret = isal_inflate(self.ist)
        got[0] = cap - self.ist.avail_out
        self.full = self.ist.avail_out == 0
        if ret < 0:
            self.msg = f"ISA-L error {ret}"
            return STEP_ERROR
        if self.ist.block_state == ISAL_BLOCK_FINISH:
            return STEP_END
        if got[0] == 0 and self.ist.avail_in == before_in and before_in != 0:
            return STEP_STALL
        return STEP_OK

    cdef void release(self) noexcept:
        global _spare_ist
        if self.ist == NULL:
            return
        if _spare_ist == NULL:
            _spare_ist = self.ist
        else:
            free(self.ist)
        self.ist = NULL


@cython.final
cdef class PyInflater(Inflater):
    """A Python ``decompressobj`` (python-isal, zlib-ng): input as objects, output copied."""
    cdef object d
    cdef object data

    def __cinit__(self, str name, object factory):
        self.kind = INF_PY
        self.name = name
        self.decodes_ahead = self.retry_with_zlib = True
        self.lenient = name == "isal"
        self.d = factory(-15)
        self.data = b""

    cdef int give(self, const uint8_t* p, size_t n, object data) except -1:
        self.data = data
        return 0

    cdef Py_ssize_t pending(self) except -1:
        return len(self.data) if self.data is not None else 0

    cdef int step(self, uint8_t* out, size_t cap, size_t* got) except -1:
        cdef Py_ssize_t k
        try:
            outb = self.d.decompress(self.data, cap)
        except Exception as exc:
            self.msg = str(exc)
            got[0] = 0
            return STEP_ERROR
        self.data = self.d.unconsumed_tail
        k = len(outb)
        if k:
            memcpy(out, PyBytes_AS_STRING(outb), k)
        got[0] = k
        self.full = <size_t>k == cap  # it buffers output: call again before feeding
        return STEP_END if self.d.eof else STEP_OK

    cdef void release(self) noexcept:
        self.d = self.data = None


@cython.final
cdef class InflaterChoice:

    def __cinit__(self, str name):
        self.name = name
        self.kind = INF_ZLIB
        if name == "zlib":
            pass
        elif name == "libisal" and ws_isal_bound():
            self.kind = INF_ISAL
        elif name == "libz-ng" and ws_zng_bound():
            self.kind = INF_ZNG
        elif name == "auto" and "auto" in INFLATERS:
            self.kind = INF_AUTO
            if ws_isal_bound():
                self.auto_isal = INF_ISAL
            else:
                self.auto_isal = INF_PY
                self.py_name = "isal"
                self.factory = _decompressobj_factory("isal")
        else:
            if name not in INFLATERS or name == "auto":
                raise ValueError(f"inflater {name!r} not installed: {INFLATERS}")
            self.kind = INF_PY
            self.py_name = name
            self.factory = _decompressobj_factory(name)

    cdef int choose(self, uint64_t csize, uint64_t usize) noexcept:
        """The back-end for a deflated member: the setting's, except small members when that
        is a decompressobj (its set-up costs more than zlib's); under "auto", by the member's
        ratio (AUTO_ZNG_RATIO, from the central directory)."""
        cdef int kind = self.kind
        if kind == INF_AUTO:
            # usize >= AUTO_ZNG_RATIO * csize, in integers: usize >= ceil(halves * csize / 2)
            # (csize is at most the file's size: no overflow, whatever usize claims)
            kind = INF_ZNG if usize >= (csize * AUTO_ZNG_HALVES + 1) // 2 else self.auto_isal
        if kind == INF_ISAL or kind == INF_ZNG or (kind == INF_PY and usize >= <uint64_t>PY_FIRST):
            return kind
        return INF_ZLIB

    cdef Inflater new(self, int kind):
        if kind == INF_ISAL:
            return IsalInflater()
        if kind == INF_ZNG:
            return ZngInflater()
        if kind == INF_PY:
            return PyInflater(self.py_name, self.factory)
        return ZlibInflater()
