# cython: language_level=3
# The deflate back-ends behind one small interface, shared with the ZIP reader by cimport.
# (It sits at the module's package path under ext/, so that Cython resolves
# ``from wheelscan._native.inflate cimport ...`` to it, and the cimporting module imports the
# package's module at run time; ext/inflate.pyx implements it.)
from libc.stdint cimport uint8_t, uint64_t

cdef enum:
    INF_ZLIB = 0
    INF_PY = 1          # a Python decompressobj (isal, zlib-ng)
    INF_ISAL = 2        # ISA-L's C API, straight into the output buffer
    INF_ZNG = 3         # zlib-ng's C API, likewise
    INF_AUTO = 4        # a choice, not a back-end: INF_ISAL, or INF_ZNG by a member's ratio

cdef enum:
    STEP_OK = 0         # progress, or input wanted: call again (feed first if nothing is pending)
    STEP_END = 1        # the stream's final block is done
    STEP_ERROR = 2      # the stream is corrupt; ``msg`` says how
    STEP_STALL = 3      # input pending, yet no progress


cdef class Inflater:
    """One raw deflate stream: ``give`` it input, ``step`` it into an output buffer."""
    cdef readonly int kind
    cdef readonly str name
    # the last step filled its output: step again before giving more input (the back-end
    # may hold decoded bytes back)
    cdef bint full
    # ISA-L decodes ahead of the output asked for: it is fed by an estimate of what the
    # output still wanted needs, not in big chunks
    cdef bint decodes_ahead
    # on an error, the member starts over with zlib (ISA-L and decompressobj back-ends),
    # so a corrupt stream gives zlib's bytes and zlib's error whatever the inflater
    cdef bint retry_with_zlib
    # may decode bytes from a stream zlib rejects (ISA-L builds its tables unchecked)
    cdef bint lenient
    cdef str msg
    cdef int give(self, const uint8_t* p, size_t n, object data) except -1
    cdef Py_ssize_t pending(self) except -1
    cdef int step(self, uint8_t* out, size_t cap, size_t* got) except -1
    cdef void release(self) noexcept


cdef class InflaterChoice:
    """An archive's inflater setting: which back-end each deflated member gets."""
    cdef readonly str name
    cdef int kind
    cdef int auto_isal          # under INF_AUTO: INF_ISAL, or INF_PY (python-isal)
    cdef str py_name            # the decompressobj's package (isal, zlib-ng), if any
    cdef object factory
    cdef int choose(self, uint64_t csize, uint64_t usize) noexcept
    cdef Inflater new(self, int kind)
