# cython: language_level=3
# The part of zlib's C API the incremental raw inflate needs (zlib.h, zlib >= 1.2).

cdef extern from "zlib.h" nogil:
    ctypedef struct z_stream:
        unsigned char* next_in
        unsigned int avail_in
        unsigned long total_in
        unsigned char* next_out
        unsigned int avail_out
        unsigned long total_out
        const char* msg

    enum:
        Z_OK
        Z_STREAM_END
        Z_NEED_DICT
        Z_STREAM_ERROR
        Z_DATA_ERROR
        Z_MEM_ERROR
        Z_BUF_ERROR
        Z_NO_FLUSH

    int inflateInit2(z_stream* strm, int windowBits)
    int inflate(z_stream* strm, int flush)
    int inflateEnd(z_stream* strm)
    unsigned long crc32(unsigned long crc, const unsigned char* buf, unsigned int len)
    const char* zlibVersion()
