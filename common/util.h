/* util.h - allocation, growable arrays and small helpers used by every stage.
 *
 * Memory policy (recorded here as chibicc does in its README):
 *  - the compiler (dldlc) allocates a compilation's objects from one DlPool and
 *    frees them all at the end with dl_pool_free (QBE's freeall); no pass frees.
 *  - the runtime allocates its arenas once at plan load; nothing is allocated
 *    inside a training step.
 * All allocation goes through dl_xmalloc/dl_pool_alloc so that tests can make
 * the Nth allocation fail (DLDL_FAIL_ALLOC=N in debug builds).
 */
#ifndef DL_UTIL_H
#define DL_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* malloc/calloc/realloc that report "dldl: out of memory (N bytes)" and
 * abort: out-of-memory is the one condition that is not passed up. */
void *dl_xmalloc(size_t n);
void *dl_xcalloc(size_t n, size_t size);
void *dl_xrealloc(void *p, size_t n);
char *dl_xstrdup(const char *s);
char *dl_xstrndup(const char *s, size_t n);
/* printf into a fresh malloc'd string. */
char *dl_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 1 when path is relative and stays beneath its base: not empty, not
 * starting with '/', no component "..". */
int dl_path_stays_inside(const char *path);

/* A bump allocator: many small objects, freed together. */
typedef struct DlPool DlPool;
DlPool *dl_pool_new(void);
void *dl_pool_alloc(DlPool *p, size_t n);        /* zeroed, 16-byte aligned */
char *dl_pool_strdup(DlPool *p, const char *s);
char *dl_pool_strndup(DlPool *p, const char *s, size_t n);
void dl_pool_free(DlPool *p);

/* A growable array of T: DL_VEC(int) v = {0}; DL_PUSH(v, 3); v.n, v.a[i]. */
#define DL_VEC(T) struct { T *a; size_t n, cap; }
#define DL_PUSH(v, x)                                                         \
    do {                                                                      \
        if ((v).n == (v).cap) {                                               \
            (v).cap = (v).cap ? 2 * (v).cap : 8;                              \
            (v).a = dl_xrealloc((v).a, (v).cap * sizeof *(v).a);              \
        }                                                                     \
        (v).a[(v).n++] = (x);                                                 \
    } while (0)
#define DL_VEC_FREE(v) (free((v).a), (v).a = NULL, (v).n = (v).cap = 0)

/* A growable string buffer, for emitters (--emit output, generated C). */
typedef struct DlBuf {
    char *s;
    size_t n, cap;
} DlBuf;
void dl_buf_printf(DlBuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void dl_buf_put(DlBuf *b, const char *s, size_t n);
/* Append the low n bytes (1..8) of v, little-endian whatever the host (the
 * byte order of plans and their kernel IR). */
void dl_buf_put_le(DlBuf *b, uint64_t v, int n);
void dl_buf_free(DlBuf *b);

/* 64-bit xxHash (XXH3_64bits) of a byte range: plan checksums, JIT cache keys. */
uint64_t dl_hash64(const void *p, size_t n);

/* Upper bounds on the files dldl reads whole (bytes).  Each is far above the
 * real extremes (specs of about 2 KB, the age plan 166 KB, its checkpoint
 * 4.8 MB, UTKFace's manifest 440 KB) and keeps a hostile or mistaken input
 * (a spec of /dev/zero, a 10 GB file given as a plan) from exhausting memory. */
#define DL_LIMIT_SPEC ((size_t)1 << 20)      /* 1 MiB: a .dldl spec */
#define DL_LIMIT_PLAN ((size_t)1 << 30)      /* 1 GiB: a .plan */
#define DL_LIMIT_WEIGHTS ((size_t)4 << 30)   /* 4 GiB: weights and checkpoints (VGG-16's are 0.5 GB) */
#define DL_LIMIT_TEXT ((size_t)256 << 20)    /* 256 MiB: a csv manifest or folds file, a face-box file */

/* Read the regular file at path whole into out (NUL-terminated; out->n is
 * the size without the NUL).  Refuses a directory, anything that is not a
 * regular file (a device such as /dev/zero, a pipe) and a file larger than
 * limit bytes, before reading it.  Returns 0, or -1 with *why (malloc'd) a
 * phrase without the path: "is a directory", "is not a regular file",
 * "is 2.1 GB (2254857830 bytes), more than the 1048576 bytes allowed", or
 * strerror's text. */
int dl_read_file(const char *path, size_t limit, DlBuf *out, char **why);

/* Write a file atomically: write PATH.tmp.PID, fsync, rename over PATH.
 * Either the whole new file is there afterwards or the old one is untouched.
 * Returns 0, or -1 with errno set (the temporary is removed). */
int dl_write_file_atomic(const char *path, const void *data, size_t n);

/* The data root: $DLDL_DATA, else "../shared/data". Never NULL. */
const char *dl_data_root(void);

#endif
