# cython: language_level=3
# The ELF parser's C entry point, cimported by the ZIP reader: a prefix given as a pointer, so
# a parse round costs no buffer object. (It sits at the module's package path under ext/, so
# that Cython resolves ``from wheelscan._native.elf cimport ...`` to it, and the cimporting
# module imports the package's module at run time; ext/elf.pyx implements it.)
from libc.stdint cimport uint8_t, uint64_t

cdef object parse_prefix(const uint8_t* p, uint64_t have, uint64_t total, str member)
