/* zlib-ng's native inflate API (zng_*), bound at import, without its header.
 *
 * zlib-ng 2.x (soname libz-ng.so.2) documents its stream struct as a stable ABI; it is
 * declared here field for field, so no header is needed to build and every build can use
 * the library where one is found: a system libz-ng.so.2, else the zng_* functions the
 * zlib-ng Python package's extension module exports (it links zlib-ng in statically).
 * inflate binds four entry points from one such library (ws_zng_bind) only after it has
 * inflated a known stream through this layout (ws_zng_selftest); unbound, ws_zng_bound() is
 * 0 and nothing here is called.
 *
 * zng_inflate has zlib's semantics (it decodes no further than the output space it is
 * given, and returns zlib's codes), so the archive drives it with the same loop as zlib. */
#ifndef WHEELSCAN_ZNG_SHIM_H
#define WHEELSCAN_ZNG_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct ws_zng_stream {
    const uint8_t *next_in;
    uint32_t avail_in;
    size_t total_in;
    uint8_t *next_out;
    uint32_t avail_out;
    size_t total_out;
    const char *msg;
    void *state;
    void *zalloc;
    void *zfree;
    void *opaque;
    int data_type;
    uint32_t adler;
    unsigned long reserved;
} ws_zng_stream;

#define WS_ZNG_OK 0
#define WS_ZNG_STREAM_END 1

typedef int32_t (*ws_zng_init2_fn)(ws_zng_stream *, int32_t);
typedef int32_t (*ws_zng_inflate_fn)(ws_zng_stream *, int32_t);
typedef int32_t (*ws_zng_stream_fn)(ws_zng_stream *);

static ws_zng_init2_fn ws_zng_init2_p = NULL;
static ws_zng_inflate_fn ws_zng_inflate_p = NULL;
static ws_zng_stream_fn ws_zng_reset_p = NULL;
static ws_zng_stream_fn ws_zng_end_p = NULL;

static int ws_zng_bound(void) { return ws_zng_inflate_p != NULL; }

/* Inflate the raw deflate stream in[0:n_in) with the given entry points, one byte of output
 * space to spare, and compare with expect[0:n_expect): 1 if it ends there and matches. The
 * stream is then reset and inflated again, as the archive reuses a stream across members. */
static int ws_zng_selftest(size_t init2, size_t inflate, size_t reset, size_t end,
                           const uint8_t *in, size_t n_in, const uint8_t *expect,
                           size_t n_expect) {
    ws_zng_stream *s;
    uint8_t *out;
    int ok = 0, round;
    if (init2 == 0 || inflate == 0 || reset == 0 || end == 0 || n_in > UINT32_MAX ||
        n_expect >= UINT32_MAX)
        return 0;
    s = (ws_zng_stream *)calloc(1, sizeof(ws_zng_stream));
    out = (uint8_t *)malloc(n_expect + 1);
    if (s != NULL && out != NULL && ((ws_zng_init2_fn)init2)(s, -15) == WS_ZNG_OK) {
        ok = 1;
        for (round = 0; round < 2 && ok; round++) {
            if (round && ((ws_zng_stream_fn)reset)(s) != WS_ZNG_OK) {
                ok = 0;
                break;
            }
            s->next_in = in;
            s->avail_in = (uint32_t)n_in;
            s->next_out = out;
            s->avail_out = (uint32_t)n_expect + 1;
            ok = ((ws_zng_inflate_fn)inflate)(s, 0) == WS_ZNG_STREAM_END &&
                 s->avail_in == 0 && s->avail_out == 1 && s->total_out == n_expect &&
                 s->total_in == n_in && memcmp(out, expect, n_expect) == 0;
        }
        ((ws_zng_stream_fn)end)(s);
    }
    free(out);
    free(s);
    return ok;
}

/* Bind the entry points, once per process: 1 if they are (now) the bound ones. */
static int ws_zng_bind(size_t init2, size_t inflate, size_t reset, size_t end) {
    if (init2 == 0 || inflate == 0 || reset == 0 || end == 0)
        return 0;
    if (ws_zng_inflate_p != NULL)
        return ws_zng_inflate_p == (ws_zng_inflate_fn)inflate &&
               ws_zng_init2_p == (ws_zng_init2_fn)init2;
    ws_zng_init2_p = (ws_zng_init2_fn)init2;
    ws_zng_inflate_p = (ws_zng_inflate_fn)inflate;
    ws_zng_reset_p = (ws_zng_stream_fn)reset;
    ws_zng_end_p = (ws_zng_stream_fn)end;
    return 1;
}

/* Only called once ws_zng_bound(). A new stream for raw deflate: 0 on success. */
static inline int ws_zng_new(ws_zng_stream *s) {
    memset(s, 0, sizeof(*s));
    return ws_zng_init2_p(s, -15) == WS_ZNG_OK ? 0 : -1;
}
static inline int ws_zng_inflate(ws_zng_stream *s, int flush) { return ws_zng_inflate_p(s, flush); }
static inline int ws_zng_reset(ws_zng_stream *s) { return ws_zng_reset_p(s); }
static inline void ws_zng_end(ws_zng_stream *s) { ws_zng_end_p(s); }

#endif
