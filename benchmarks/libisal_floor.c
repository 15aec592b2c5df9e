/* The ISA-L inflate floor through the C API: a raw-deflate stream state, and one call that
 * inflates up to `max_out` bytes into the caller's buffer. Compiled and loaded with ctypes by
 * libisal_floor.py; shares nothing with wheelscan's own reader. */
#include <stdint.h>
#include <stdlib.h>
#include <isa-l/igzip_lib.h>

void *floor_new(void) {
    struct inflate_state *s = malloc(sizeof *s);
    if (s) {
        isal_inflate_init(s);
        s->crc_flag = ISAL_DEFLATE;
        s->hist_bits = 0;
    }
    return s;
}

void floor_free(void *s) { free(s); }

/* Inflate from in[0:n_in) (appended to what the state holds) into out[0:max_out).
 * Returns the bytes produced, or -1 on a corrupt stream; *consumed gets the input used. */
long floor_inflate(void *p, const uint8_t *in, uint32_t n_in, uint8_t *out, uint32_t max_out,
                   uint32_t *consumed) {
    struct inflate_state *s = p;
    s->next_in = (uint8_t *)in;
    s->avail_in = n_in;
    s->next_out = out;
    s->avail_out = max_out;
    if (isal_inflate(s) < 0)
        return -1;
    *consumed = n_in - s->avail_in;
    return (long)(max_out - s->avail_out);
}
