/* The zlib-ng inflate floor through its C API, with the same three calls as
 * libisal_floor.c. zlib-ng's header is not needed: its 2.x stream layout is declared here and
 * its functions are looked up in the library floor_bind() is given (libz-ng.so.2, or the zlib-ng
 * package's extension module, which exports them). Shares nothing with wheelscan's reader. */
#include <dlfcn.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    const uint8_t *next_in;
    uint32_t avail_in;
    size_t total_in;
    uint8_t *next_out;
    uint32_t avail_out;
    size_t total_out;
    const char *msg;
    void *state, *zalloc, *zfree, *opaque;
    int data_type;
    uint32_t adler;
    unsigned long reserved;
} stream_t;

static int32_t (*init2)(stream_t *, int32_t);
static int32_t (*inflate_fn)(stream_t *, int32_t);
static int32_t (*end_fn)(stream_t *);

/* 0 once the library at `path` is loaded and its functions found. */
int floor_bind(const char *path) {
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL)
        return -1;
    init2 = (int32_t (*)(stream_t *, int32_t))dlsym(h, "zng_inflateInit2");
    inflate_fn = (int32_t (*)(stream_t *, int32_t))dlsym(h, "zng_inflate");
    end_fn = (int32_t (*)(stream_t *))dlsym(h, "zng_inflateEnd");
    return init2 && inflate_fn && end_fn ? 0 : -1;
}

void *floor_new(void) {
    stream_t *s = calloc(1, sizeof *s);
    if (s && init2(s, -15) != 0) {
        free(s);
        s = NULL;
    }
    return s;
}

void floor_free(void *s) {
    end_fn(s);
    free(s);
}

/* As in libisal_floor.c: produced bytes, or -1 on a corrupt stream. */
long floor_inflate(void *p, const uint8_t *in, uint32_t n_in, uint8_t *out, uint32_t max_out,
                   uint32_t *consumed) {
    stream_t *s = p;
    int32_t ret;
    s->next_in = in;
    s->avail_in = n_in;
    s->next_out = out;
    s->avail_out = max_out;
    ret = inflate_fn(s, 0);
    if (ret < 0 && ret != -5) /* Z_BUF_ERROR: no progress possible, not an error */
        return -1;
    *consumed = n_in - s->avail_in;
    return (long)(max_out - s->avail_out);
}
