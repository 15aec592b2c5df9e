# cython: language_level=3
# The ELF parser's C entry point, shared with the ZIP reader through a capsule (elf.pyx exports
# _PARSE_PREFIX): a prefix given as a pointer, so a parse round costs no buffer object.
from libc.stdint cimport uint8_t, uint64_t

ctypedef object (*parse_prefix_f)(const uint8_t* p, uint64_t have, uint64_t total, str member)

cdef extern from *:
    """
    #define WS_PARSE_PREFIX_CAPSULE "wheelscan._native.elf.parse_prefix"
    """
    const char* WS_PARSE_PREFIX_CAPSULE
