/* ISA-L's inflate through its C API.
 *
 * When setup.py found libisal's header (WHEELSCAN_HAVE_LIBISAL), the struct layout and
 * constants come from it, but the two functions are called through pointers that inflate
 * binds once, at import, from the library loaded by its soname (ws_isal_bind). The extension
 * therefore has no DT_NEEDED on libisal: built with it, it still imports where libisal is
 * absent, and only the "libisal" inflater is then not offered (inflate.INFLATERS). Without
 * the header a stand-in struct is declared and nothing is ever bound, so ws_isal_bound() is 0
 * and the wrappers below are never called.
 *
 * The header's layout is trusted for any library with the same soname only after that
 * library has inflated a known stream correctly through it (ws_isal_selftest), and every
 * state is allocated WS_ISAL_STATE_SLACK bytes larger than the header says, so that a newer
 * 2.x library whose state grew at its end still stays inside the allocation. */
#ifndef WHEELSCAN_ISAL_SHIM_H
#define WHEELSCAN_ISAL_SHIM_H
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#ifdef WHEELSCAN_HAVE_LIBISAL
#include <isa-l/igzip_lib.h>
#if __has_include(<isa-l.h>)
#include <isa-l.h>
#endif
#if defined(ISAL_MAJOR_VERSION) && ISAL_MAJOR_VERSION != 2
#error "wheelscan loads libisal.so.2: build against ISA-L 2.x headers"
#endif
#define WS_HAVE_LIBISAL 1
#else
#define WS_HAVE_LIBISAL 0
#define ISAL_DEFLATE 0
#define ISAL_BLOCK_FINISH 5
#define ISAL_DECOMP_OK 0
struct inflate_state {
    uint8_t *next_out;
    uint32_t avail_out;
    uint32_t total_out;
    uint8_t *next_in;
    uint32_t avail_in;
    int block_state;
    uint32_t crc_flag;
    uint32_t hist_bits;
};
#endif

#ifdef ISAL_MAJOR_VERSION
#define WS_STR2(x) #x
#define WS_STR(x) WS_STR2(x)
#define WS_ISAL_HEADER_VERSION \
    WS_STR(ISAL_MAJOR_VERSION) "." WS_STR(ISAL_MINOR_VERSION) "." WS_STR(ISAL_PATCH_VERSION)
#else
#define WS_ISAL_HEADER_VERSION "unknown"
#endif

/* The soname whose ABI the header above describes (ISA-L 2.x). */
#define WS_LIBISAL_SONAME "libisal.so.2"
#define WS_ISAL_STATE_SLACK 65536
#define WS_ISAL_STATE_BYTES (sizeof(struct inflate_state) + WS_ISAL_STATE_SLACK)

typedef void (*ws_isal_init_fn)(struct inflate_state *);
typedef int (*ws_isal_inflate_fn)(struct inflate_state *);
static ws_isal_init_fn ws_isal_init_p = NULL;
static ws_isal_inflate_fn ws_isal_inflate_p = NULL;

static int ws_isal_bound(void) { return ws_isal_inflate_p != NULL; }

/* A state set up as a ZIP member needs it (raw deflate, the full 32 KiB window, no input
 * yet) with the given init function: the self-test sets up a candidate library's state
 * exactly as the archive then sets up the bound one's. */
static void ws_isal_start_with(ws_isal_init_fn init, struct inflate_state *s) {
    init(s);
    s->crc_flag = ISAL_DEFLATE;
    s->hist_bits = 0;
    s->avail_in = 0;
}

/* Inflate the raw deflate stream in[0:n_in) with the given entry points through this
 * header's layout and compare the output with expect[0:n_expect): 1 if it matches exactly. */
static int ws_isal_selftest(size_t init, size_t inflate, const uint8_t *in, size_t n_in,
                            const uint8_t *expect, size_t n_expect) {
    struct inflate_state *s;
    uint8_t *out;
    int ok = 0;
    if (!WS_HAVE_LIBISAL || init == 0 || inflate == 0 || n_in > UINT32_MAX ||
        n_expect >= UINT32_MAX)
        return 0;
    s = (struct inflate_state *)calloc(1, WS_ISAL_STATE_BYTES);
    out = (uint8_t *)malloc(n_expect + 1);
    if (s != NULL && out != NULL) {
        ws_isal_start_with((ws_isal_init_fn)init, s);
        s->next_in = (uint8_t *)in;
        s->avail_in = (uint32_t)n_in;
        s->next_out = out;
        s->avail_out = (uint32_t)n_expect + 1;
        ok = ((ws_isal_inflate_fn)inflate)(s) == ISAL_DECOMP_OK &&
             s->block_state == ISAL_BLOCK_FINISH && s->avail_in == 0 &&
             s->avail_out == 1 && memcmp(out, expect, n_expect) == 0;
    }
    free(out);
    free(s);
    return ok;
}

/* Bind the two entry points, once per process: 1 if they are (now) the bound ones. */
static int ws_isal_bind(size_t init, size_t inflate) {
    if (!WS_HAVE_LIBISAL || init == 0 || inflate == 0)
        return 0;
    if (ws_isal_inflate_p != NULL)
        return ws_isal_init_p == (ws_isal_init_fn)init &&
               ws_isal_inflate_p == (ws_isal_inflate_fn)inflate;
    ws_isal_init_p = (ws_isal_init_fn)init;
    ws_isal_inflate_p = (ws_isal_inflate_fn)inflate;
    return 1;
}

/* Only called once ws_isal_bound() (the archive checks it before choosing this inflater). */
static inline void ws_isal_start(struct inflate_state *s) { ws_isal_start_with(ws_isal_init_p, s); }
static inline int ws_isal_inflate(struct inflate_state *s) { return ws_isal_inflate_p(s); }

#endif
