/* Helpers for seek_probe.py (issue 24): enter a raw deflate stream at a bit offset.
 *
 * Python's zlib cannot start a raw inflate at a bit position or with a preset window of our
 * choosing mid-stream, so this file does it with zlib's inflatePrime + inflateSetDictionary
 * and with ISA-L by loading the leading partial byte into its public bit buffer. It also maps
 * the true block boundaries of a stream (zlib's Z_BLOCK), and searches bit positions for
 * plausible dynamic-Huffman or stored block headers. Measurement code, not wheelscan's path.
 *
 * Built at run time by seek_probe.py: cc -O2 -shared -fPIC seek_probe.c -lz -lisal
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>
#include <isa-l/igzip_lib.h>

#define SCRATCH (256u << 10)
#define WINDOW 32768u

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ---- the true block map ------------------------------------------------------------------- */

/* Inflate the whole raw stream stopping at every block boundary. For each boundary: its bit
 * position in `in` and the uncompressed offset there. Returns the count (capped at `max`), or
 * -1 on a corrupt stream. */
long probe_blocks(const uint8_t *in, uint64_t n, uint64_t *bits, uint64_t *outs, uint64_t max) {
    z_stream s;
    memset(&s, 0, sizeof s);
    if (inflateInit2(&s, -15) != Z_OK)
        return -1;
    uint8_t *scratch = malloc(SCRATCH);
    uint64_t count = 0, total = 0;
    long rc = -1;
    s.next_in = (uint8_t *)in;
    s.avail_in = (uInt)n;
    if (max) {  /* the stream starts with a block header */
        bits[0] = 0;
        outs[0] = 0;
        count = 1;
    }
    for (;;) {
        s.next_out = scratch;
        s.avail_out = SCRATCH;
        int r = inflate(&s, Z_BLOCK);
        total += SCRATCH - s.avail_out;
        if (r == Z_STREAM_END) {
            rc = (long)count;
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR)
            break;
        if (r == Z_BUF_ERROR && s.avail_in == 0)
            break;
        if ((s.data_type & 128) && !(s.data_type & 64)) {
            uint64_t pos = (uint64_t)(s.next_in - in) * 8 - (s.data_type & 7);
            if (count && bits[count - 1] == pos)
                continue;
            if (count < max) {
                bits[count] = pos;
                outs[count] = total;
                count++;
            }
        }
    }
    inflateEnd(&s);
    free(scratch);
    return rc;
}

/* ---- decoding from a bit position ---------------------------------------------------------- */

/* What a decode from a bit position copies out: output [k0, k1) into out1, [k2, k3) into out2
 * (offsets relative to the start), and it stops once `stop` bytes are out (0: at the end). */
struct sink {
    uint8_t *out1;
    uint64_t k0, k1;
    uint8_t *out2;
    uint64_t k2, k3;
    uint64_t stop;
};

struct result {
    uint64_t produced;
    uint64_t end_bit; /* bit position in `in` after the last bit consumed (approximate for isal) */
    int32_t status;   /* 1: final block ended; 0: stopped at `stop`; -1: corrupt; -2: input ran out */
    double seconds;
};

static void copy_out(const struct sink *k, uint64_t at, const uint8_t *buf, uint64_t len) {
    uint64_t lo, hi;
    if (k->out1) {
        lo = at > k->k0 ? at : k->k0;
        hi = at + len < k->k1 ? at + len : k->k1;
        if (lo < hi)
            memcpy(k->out1 + (lo - k->k0), buf + (lo - at), hi - lo);
    }
    if (k->out2) {
        lo = at > k->k2 ? at : k->k2;
        hi = at + len < k->k3 ? at + len : k->k3;
        if (lo < hi)
            memcpy(k->out2 + (lo - k->k2), buf + (lo - at), hi - lo);
    }
}

/* zlib: raw inflate from bit `bit` of in[0:n), the window preset to 32 KiB of `fill`. */
void probe_zdecode(const uint8_t *in, uint64_t n, uint64_t bit, int fill, const struct sink *k,
                   struct result *res) {
    double t0 = now();
    z_stream s;
    memset(&s, 0, sizeof s);
    memset(res, 0, sizeof *res);
    res->status = -1;
    uint8_t *scratch = malloc(SCRATCH);
    uint8_t dict[WINDOW];
    memset(dict, fill, sizeof dict);
    inflateInit2(&s, -15);
    inflateSetDictionary(&s, dict, WINDOW);
    uint64_t byte = bit >> 3;
    unsigned off = bit & 7;
    if (off) {
        inflatePrime(&s, (int)(8 - off), in[byte] >> off);
        byte++;
    }
    s.next_in = (uint8_t *)in + byte;
    s.avail_in = (uInt)(n - byte);
    uint64_t total = 0;
    for (;;) {
        uint64_t want = SCRATCH;
        if (k->stop && k->stop - total < want)
            want = k->stop - total;
        s.next_out = scratch;
        s.avail_out = (uInt)want;
        int r = inflate(&s, Z_NO_FLUSH);
        uint64_t got = want - s.avail_out;
        copy_out(k, total, scratch, got);
        total += got;
        if (r == Z_STREAM_END) {
            res->status = 1;
            break;
        }
        if (r != Z_OK && r != Z_BUF_ERROR) {
            res->status = -1;
            break;
        }
        if (k->stop && total >= k->stop) {
            res->status = 0;
            break;
        }
        if (s.avail_in == 0 && got == 0) {
            res->status = -2;
            break;
        }
    }
    res->produced = total;
    res->end_bit = (uint64_t)(s.next_in - in) * 8 - (s.data_type & 7);
    inflateEnd(&s);
    free(scratch);
    res->seconds = now() - t0;
}

/* ISA-L: the same, the leading partial byte loaded into the state's bit buffer. */
void probe_idecode(const uint8_t *in, uint64_t n, uint64_t bit, int fill, const struct sink *k,
                   struct result *res) {
    double t0 = now();
    memset(res, 0, sizeof *res);
    res->status = -1;
    struct inflate_state *s = malloc(sizeof *s);
    uint8_t *scratch = malloc(SCRATCH);
    uint8_t dict[WINDOW];
    memset(dict, fill, sizeof dict);
    isal_inflate_init(s);
    s->crc_flag = ISAL_DEFLATE;
    s->hist_bits = 0;
    isal_inflate_set_dict(s, dict, WINDOW);
    uint64_t byte = bit >> 3;
    unsigned off = bit & 7;
    if (off) {
        s->read_in = in[byte] >> off;
        s->read_in_length = (int32_t)(8 - off);
        byte++;
    }
    s->next_in = (uint8_t *)in + byte;
    s->avail_in = (uint32_t)(n - byte);
    uint64_t total = 0;
    for (;;) {
        uint64_t want = SCRATCH;
        if (k->stop && k->stop - total < want)
            want = k->stop - total;
        s->next_out = scratch;
        s->avail_out = (uint32_t)want;
        int r = isal_inflate(s);
        uint64_t got = want - s->avail_out;
        copy_out(k, total, scratch, got);
        total += got;
        if (r < 0) {
            res->status = -1;
            break;
        }
        if (s->block_state == ISAL_BLOCK_FINISH) {
            res->status = 1;
            break;
        }
        if (k->stop && total >= k->stop) {
            res->status = 0;
            break;
        }
        if (s->avail_in == 0 && got == 0) {
            res->status = -2;
            break;
        }
    }
    res->produced = total;
    res->end_bit = (uint64_t)(s->next_in - in) * 8 - (uint64_t)s->read_in_length;
    free(scratch);
    free(s);
    res->seconds = now() - t0;
}

/* ---- searching for block headers ----------------------------------------------------------- */

static inline uint32_t bits_at(const uint8_t *in, uint64_t n, uint64_t pos, unsigned nb) {
    uint64_t byte = pos >> 3, w = 0;
    if (byte + 8 <= n) {
        memcpy(&w, in + byte, 8); /* little-endian host */
    } else {
        for (unsigned i = 0; i < 8 && byte + i < n; i++)
            w |= (uint64_t)in[byte + i] << (8 * i);
    }
    return (uint32_t)((w >> (pos & 7)) & ((1u << nb) - 1));
}

static inline uint32_t reverse(uint32_t v, unsigned len) {
    uint32_t r = 0;
    for (unsigned i = 0; i < len; i++, v >>= 1)
        r = (r << 1) | (v & 1);
    return r;
}

/* Kraft sum of code lengths in units of 2^-15: 32768 is complete; > 32768 over-subscribed. */
static uint32_t kraft(const uint8_t *len, unsigned count, unsigned *max_len) {
    uint32_t sum = 0;
    unsigned mx = 0;
    for (unsigned i = 0; i < count; i++)
        if (len[i]) {
            sum += 32768u >> len[i];
            if (len[i] > mx)
                mx = len[i];
        }
    *max_len = mx;
    return sum;
}

static const uint8_t CL_ORDER[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};

/* A dynamic block header at `pos` that zlib would accept (bfinal any, btype 2). */
static int dynamic_header_ok(const uint8_t *in, uint64_t n, uint64_t pos) {
    uint32_t h = bits_at(in, n, pos, 17);
    if (((h >> 1) & 3) != 2)
        return 0;
    unsigned hlit = 257 + ((h >> 3) & 31), hdist = 1 + ((h >> 8) & 31), hclen = 4 + ((h >> 13) & 15);
    if (hlit > 286 || hdist > 30)
        return 0;
    pos += 17;
    uint8_t cl[19] = {0};
    for (unsigned i = 0; i < hclen; i++)
        cl[CL_ORDER[i]] = (uint8_t)bits_at(in, n, pos + 3 * i, 3);
    pos += 3 * hclen;
    unsigned mx;
    if (kraft(cl, 19, &mx) != 32768u) /* zlib wants the code-length code complete */
        return 0;
    /* canonical decoding table for the code-length code, indexed by mx bits reversed */
    uint8_t sym_of[128], len_of[128];
    {
        unsigned bl_count[8] = {0}, next[8] = {0}, code = 0;
        for (unsigned i = 0; i < 19; i++)
            bl_count[cl[i]]++;
        bl_count[0] = 0;
        for (unsigned b = 1; b <= 7; b++) {
            code = (code + bl_count[b - 1]) << 1;
            next[b] = code;
        }
        for (unsigned i = 0; i < 19; i++) {
            if (!cl[i])
                continue;
            uint32_t c = reverse(next[cl[i]]++, cl[i]);
            for (uint32_t fill = c; fill < (1u << mx); fill += 1u << cl[i]) {
                sym_of[fill] = (uint8_t)i;
                len_of[fill] = cl[i];
            }
        }
    }
    uint8_t lens[316];
    unsigned total = hlit + hdist, i = 0;
    while (i < total) {
        uint32_t look = bits_at(in, n, pos, mx);
        unsigned sym = sym_of[look];
        pos += len_of[look];
        if (sym < 16) {
            lens[i++] = (uint8_t)sym;
        } else {
            unsigned rep, val = 0;
            if (sym == 16) {
                if (i == 0)
                    return 0;
                val = lens[i - 1];
                rep = 3 + bits_at(in, n, pos, 2);
                pos += 2;
            } else if (sym == 17) {
                rep = 3 + bits_at(in, n, pos, 3);
                pos += 3;
            } else {
                rep = 11 + bits_at(in, n, pos, 7);
                pos += 7;
            }
            if (i + rep > total)
                return 0;
            while (rep--)
                lens[i++] = (uint8_t)val;
        }
        if ((pos >> 3) >= n)
            return 0;
    }
    if (lens[256] == 0) /* no end-of-block code */
        return 0;
    uint32_t k = kraft(lens, hlit, &mx);
    if (k > 32768u || (k < 32768u && mx != 1))
        return 0;
    k = kraft(lens + hlit, hdist, &mx);
    if (k > 32768u || (k < 32768u && mx > 1))
        return 0;
    return 1;
}

/* A stored block header at `pos`: btype 0, zero padding to the byte, LEN == ~NLEN. */
static int stored_header_ok(const uint8_t *in, uint64_t n, uint64_t pos) {
    if (((bits_at(in, n, pos, 3) >> 1) & 3) != 0)
        return 0;
    uint64_t p = pos + 3;
    unsigned pad = (unsigned)((8 - (p & 7)) & 7);
    if (pad && bits_at(in, n, p, pad) != 0)
        return 0;
    uint64_t byte = (p + pad) >> 3;
    if (byte + 4 > n)
        return 0;
    unsigned len = in[byte] | (in[byte + 1] << 8), nlen = in[byte + 2] | (in[byte + 3] << 8);
    return (len ^ nlen) == 0xFFFF && byte + 4 + len <= n;
}

/* Bit positions in [lo, hi) holding a non-final block header zlib would accept (dynamic or
 * stored), scanning downwards from hi; at most `max` of them. *tested gets the positions tried
 * and *seconds the time spent. Returns the count. */
long probe_find(const uint8_t *in, uint64_t n, uint64_t lo, uint64_t hi, uint64_t *cands,
                uint64_t max, uint64_t *tested, double *seconds) {
    double t0 = now();
    uint64_t count = 0, tried = 0;
    for (uint64_t p = hi; p > lo && count < max;) {
        p--;
        tried++;
        if (bits_at(in, n, p, 1))  /* bfinal set: the last block, not what we look for */
            continue;
        if (dynamic_header_ok(in, n, p) || stored_header_ok(in, n, p))
            cands[count++] = p;
    }
    *tested = tried;
    *seconds = now() - t0;
    return (long)count;
}

/* Candidate positions where a dynamic PT_DYNAMIC array of `size` bytes could start in buf
 * (any byte offset): every entry's tag is a known one, the first DT_NULL is followed only by
 * DT_NULLs to the end, and DT_STRTAB/DT_SYMTAB are present. Counts them; *first gets the first. */
long probe_anchor(const uint8_t *buf, uint64_t n, uint64_t size, int is64, uint64_t *first) {
    unsigned ent = is64 ? 16 : 8, tagsz = is64 ? 8 : 4;
    long count = 0;
    *first = (uint64_t)-1;
    if (size < 2 * ent || n < size)
        return 0;
    for (uint64_t p = 0; p + size <= n; p++) {
        int null_seen = 0, strtab = 0, symtab = 0, ok = 1;
        for (uint64_t e = p; e + ent <= p + size; e += ent) {
            uint64_t tag = 0;
            memcpy(&tag, buf + e, tagsz); /* little-endian members only */
            if (tag == 0) {
                null_seen = 1;
                continue;
            }
            if (null_seen) {
                ok = 0;
                break;
            }
            if (tag == 5)
                strtab = 1;
            else if (tag == 6)
                symtab = 1;
            if (!(tag <= 36 || (tag >= 0x6ffffd00 && tag <= 0x6fffffff) ||
                  (tag >= 0x70000000 && tag <= 0x7fffffff))) {
                ok = 0;
                break;
            }
        }
        if (ok && null_seen && strtab && symtab) {
            if (!count)
                *first = p;
            count++;
        }
    }
    return count;
}

/* Over n bytes decoded under two windows (a, b) and the true bytes (truth, may be NULL):
 * out[0] = bytes where a and b differ (window-dependent), out[1] = bytes where a == b but a
 * differs from truth (would be a wrong fact), out[2] = offset of the first dependent byte. */
void probe_compare(const uint8_t *a, const uint8_t *b, const uint8_t *truth, uint64_t n,
                   uint64_t *out) {
    uint64_t dep = 0, wrong = 0, first = (uint64_t)-1;
    for (uint64_t i = 0; i < n; i++) {
        if (a[i] != b[i]) {
            if (first == (uint64_t)-1)
                first = i;
            dep++;
        } else if (truth && a[i] != truth[i]) {
            wrong++;
        }
    }
    out[0] = dep;
    out[1] = wrong;
    out[2] = first;
}

/* The same search with a 13-bit lookup table in front: bfinal 0 and btype 2 with HLIT and
 * HDIST in range (about 11 % of random positions), or btype 0, before any full check. */
static uint8_t LUT13[1 << 13];
static uint8_t KRAFT12[1 << 12]; /* Kraft sum, in 1/128ths, of four 3-bit precode lengths */
static int lut_ready;

static void lut_init(void) {
    for (unsigned v = 0; v < (1u << 12); v++) {
        unsigned sum = 0;
        for (unsigned i = 0; i < 4; i++) {
            unsigned len = (v >> (3 * i)) & 7;
            sum += len ? 128u >> len : 0;
        }
        KRAFT12[v] = (uint8_t)sum; /* at most 4 * 64 = 256: kept saturated below */
        if (sum > 255)
            KRAFT12[v] = 255;
    }
    for (unsigned v = 0; v < (1u << 13); v++) {
        unsigned bfinal = v & 1, btype = (v >> 1) & 3, hlit = (v >> 3) & 31, hdist = (v >> 8) & 31;
        LUT13[v] = !bfinal && ((btype == 2 && hlit <= 29 && hdist <= 29) || btype == 0);
    }
    lut_ready = 1;
}

long probe_find_fast(const uint8_t *in, uint64_t n, uint64_t lo, uint64_t hi, uint64_t *cands,
                     uint64_t max, uint64_t *tested, double *seconds) {
    double t0 = now();
    if (!lut_ready)
        lut_init();
    uint64_t count = 0, tried = 0;
    if (hi > n * 8)
        hi = n * 8;
    uint64_t w = 0, wbyte = (uint64_t)-1;
    for (uint64_t p = hi; p > lo && count < max;) {
        p--;
        tried++;
        uint64_t byte = p >> 3;
        if (byte != wbyte) { /* one load per byte: eight positions share it */
            wbyte = byte;
            w = 0;
            if (byte + 8 <= n)
                memcpy(&w, in + byte, 8);
            else
                for (unsigned i = 0; i < 8 && byte + i < n; i++)
                    w |= (uint64_t)in[byte + i] << (8 * i);
        }
        uint32_t h13 = (w >> (p & 7)) & 0x1FFF;
        if (!LUT13[h13])
            continue;
        if (((h13 >> 1) & 3) == 2) {
            /* the precode must be complete: its Kraft sum exactly 1 (128/128) */
            uint64_t q = p + 13, qb = q >> 3;
            unsigned __int128 x = 0;
            if (qb + 16 <= n)
                memcpy(&x, in + qb, 16);
            else
                for (unsigned i = 0; i < 16 && qb + i < n; i++)
                    x |= (unsigned __int128)in[qb + i] << (8 * i);
            x >>= (q & 7);
            unsigned hclen = 4 + (unsigned)(x & 15);
            uint64_t pre = (uint64_t)(x >> 4) & ((1ull << (3 * hclen)) - 1);
            unsigned sum = KRAFT12[pre & 0xFFF] + KRAFT12[(pre >> 12) & 0xFFF] +
                           KRAFT12[(pre >> 24) & 0xFFF] + KRAFT12[(pre >> 36) & 0xFFF] +
                           KRAFT12[(pre >> 48) & 0xFFF];
            if (sum != 128)
                continue;
        }
        if (dynamic_header_ok(in, n, p) || stored_header_ok(in, n, p))
            cands[count++] = p;
    }
    *tested = tried;
    *seconds = now() - t0;
    return (long)count;
}
