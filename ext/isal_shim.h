/* ISA-L's inflate through its C API.
 *
 * When setup.py found libisal's header (WHEELSCAN_HAVE_LIBISAL), the struct layout and
 * constants come from it, but the two functions are called through pointers that zipread
 * binds at import from the library loaded by its soname (ws_isal_bind). The extension
 * therefore has no DT_NEEDED on libisal: built with it, it still imports where libisal is
 * absent, and only the "libisal" inflater is then not offered (zipread.INFLATERS).
 * Without the header, stubs stand in that are never called. */
#ifndef WHEELSCAN_ISAL_SHIM_H
#define WHEELSCAN_ISAL_SHIM_H
#include <stddef.h>
#include <stdint.h>

#ifdef WHEELSCAN_HAVE_LIBISAL
#include <isa-l/igzip_lib.h>
#define WS_HAVE_LIBISAL 1
#else
#define WS_HAVE_LIBISAL 0
#define ISAL_DEFLATE 0
#define ISAL_BLOCK_FINISH 5
#define ISAL_INVALID_STATE -3
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

/* The soname whose ABI the header above describes (ISA-L 2.x). */
#define WS_LIBISAL_SONAME "libisal.so.2"

typedef void (*ws_isal_init_fn)(struct inflate_state *);
typedef int (*ws_isal_inflate_fn)(struct inflate_state *);
static ws_isal_init_fn ws_isal_init_p = NULL;
static ws_isal_inflate_fn ws_isal_inflate_p = NULL;

/* Bind the two entry points (addresses from the loaded library); 0 if either is missing. */
static int ws_isal_bind(size_t init, size_t inflate) {
    if (!WS_HAVE_LIBISAL || init == 0 || inflate == 0)
        return 0;
    ws_isal_init_p = (ws_isal_init_fn)init;
    ws_isal_inflate_p = (ws_isal_inflate_fn)inflate;
    return 1;
}

/* Only called once ws_isal_bind succeeded (zipread.LIBISAL). */
static inline void ws_isal_inflate_init(struct inflate_state *s) { ws_isal_init_p(s); }
static inline int ws_isal_inflate(struct inflate_state *s) { return ws_isal_inflate_p(s); }

#endif
