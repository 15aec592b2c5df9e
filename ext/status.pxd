# cython: language_level=3
# Status codes the C-level parsers return; raise_status() in elf.pyx maps them to exceptions.

cdef enum Status:
    ST_OK = 0
    ST_NEED = 1          # more bytes of the member are needed (see the parser's ``need``)
    ST_ELF = -2          # ElfError: malformed ELF
    ST_ZIP = -3          # ZipFormatError
    ST_INFLATE = -4      # InflateError
    ST_LIMIT = -5        # LimitExceeded
    ST_NOMEM = -6        # MemoryError
