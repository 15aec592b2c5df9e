/* ISA-L's inflate through its C API when the package was built against libisal
 * (setup.py defines WHEELSCAN_HAVE_LIBISAL), else stubs that are never called: the
 * "libisal" inflater is then simply not offered (zipread.INFLATERS). */
#ifndef WHEELSCAN_ISAL_SHIM_H
#define WHEELSCAN_ISAL_SHIM_H
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
static void isal_inflate_init(struct inflate_state *s) { (void)s; }
static int isal_inflate(struct inflate_state *s) { (void)s; return ISAL_INVALID_STATE; }
#endif

#endif
