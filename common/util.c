/* util.c - allocation, pools, buffers, hashing, atomic files (common/util.h). */
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xxhash.h>

static void oom(size_t n)
{
    fprintf(stderr, "dldl: out of memory (%zu bytes)\n", n);
    abort();
}

void *dl_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p) oom(n);
    return p;
}

void *dl_xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) oom(n * size);
    return p;
}

void *dl_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q) oom(n);
    return q;
}

char *dl_xstrdup(const char *s) { return dl_xstrndup(s, strlen(s)); }

char *dl_xstrndup(const char *s, size_t n)
{
    char *d = dl_xmalloc(n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *dl_xasprintf(const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = dl_xmalloc((size_t)n + 1);
    vsnprintf(s, (size_t)n + 1, fmt, aq);
    va_end(aq);
    return s;
}

/* ---- pool: a list of chunks, bump allocation within the newest ---------- */

typedef struct Chunk {
    struct Chunk *next;
    size_t used, size;
    _Alignas(16) unsigned char data[];
} Chunk;

struct DlPool {
    Chunk *head;
};

DlPool *dl_pool_new(void) { return dl_xcalloc(1, sizeof(DlPool)); }

void *dl_pool_alloc(DlPool *p, size_t n)
{
    n = (n + 15) & ~(size_t)15;
    Chunk *c = p->head;
    if (!c || c->size - c->used < n) {
        size_t size = n > 65536 ? n : 65536;
        c = dl_xmalloc(sizeof(Chunk) + size);
        c->size = size;
        c->used = 0;
        c->next = p->head;
        p->head = c;
    }
    void *r = c->data + c->used;
    c->used += n;
    memset(r, 0, n);
    return r;
}

char *dl_pool_strndup(DlPool *p, const char *s, size_t n)
{
    char *d = dl_pool_alloc(p, n + 1);
    memcpy(d, s, n);
    d[n] = 0;
    return d;
}

char *dl_pool_strdup(DlPool *p, const char *s) { return dl_pool_strndup(p, s, strlen(s)); }

void dl_pool_free(DlPool *p)
{
    if (!p) return;
    for (Chunk *c = p->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(p);
}

/* ---- string buffer ------------------------------------------------------ */

static void buf_reserve(DlBuf *b, size_t extra)
{
    if (b->n + extra + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->n + extra + 1) cap *= 2;
    b->s = dl_xrealloc(b->s, cap);
    b->cap = cap;
}

void dl_buf_put(DlBuf *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = 0;
}

void dl_buf_printf(DlBuf *b, const char *fmt, ...)
{
    va_list ap, aq;
    va_start(ap, fmt);
    va_copy(aq, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    buf_reserve(b, (size_t)n);
    vsnprintf(b->s + b->n, (size_t)n + 1, fmt, aq);
    va_end(aq);
    b->n += (size_t)n;
}

void dl_buf_free(DlBuf *b)
{
    free(b->s);
    b->s = NULL;
    b->n = b->cap = 0;
}

uint64_t dl_hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }

/* fsync the folder holding path, so that a rename into it survives a crash
 * (best effort: some file systems refuse to fsync a directory). */
static void fsync_parent(const char *path)
{
    const char *slash = strrchr(path, '/');
    char *dir = slash ? dl_xstrndup(path, slash == path ? 1 : (size_t)(slash - path)) : dl_xstrdup(".");
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int dl_write_file_atomic(const char *path, const void *data, size_t n)
{
    char *tmp = dl_xasprintf("%s.tmp.%ld", path, (long)getpid());
    /* A file of this name is a leftover of a dead process that had our pid
     * (a live one cannot: the pid is ours); O_EXCL and O_NOFOLLOW then make
     * sure we write a file we created, never through a link planted there. */
    (void)unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        int e = errno;
        free(tmp);
        errno = e;
        return -1;
    }
    const char *s = data;
    size_t left = n;
    while (left > 0) {
        ssize_t w = write(fd, s, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            goto fail;
        }
        s += w;
        left -= (size_t)w;
    }
    if (fsync(fd) != 0) goto fail;
    int c = close(fd);
    fd = -1;
    if (c != 0) goto fail;
    if (rename(tmp, path) != 0) goto fail;
    fsync_parent(path);
    free(tmp);
    return 0;
fail: { /* every failure after the open removes the temporary */
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    free(tmp);
    errno = e;
    return -1;
}
}

const char *dl_data_root(void)
{
    const char *r = getenv("DLDL_DATA");
    return r && *r ? r : "../shared/data";
}

/* "2.1 GB", "512.0 KB": a byte count for messages. */
static char *human_bytes(double n)
{
    static const char *const unit[] = {"bytes", "KB", "MB", "GB", "TB"};
    int u = 0;
    while (n >= 1024 && u < 4) n /= 1024, u++;
    return u ? dl_xasprintf("%.1f %s", n, unit[u]) : dl_xasprintf("%.0f bytes", n);
}

int dl_read_file(const char *path, size_t limit, DlBuf *out, char **why)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *why = dl_xstrdup(strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *why = dl_xstrdup(S_ISDIR(st.st_mode) ? "is a directory" : "is not a regular file");
        close(fd);
        return -1;
    }
    if ((unsigned long long)st.st_size > (unsigned long long)limit) {
        char *a = human_bytes((double)st.st_size);
        *why = dl_xasprintf("is %s (%lld bytes), more than the %zu bytes allowed", a, (long long)st.st_size, limit);
        free(a);
        close(fd);
        return -1;
    }
    char chunk[65536];
    for (;;) {
        ssize_t k = read(fd, chunk, sizeof chunk);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *why = dl_xstrdup(strerror(errno));
            close(fd);
            return -1;
        }
        if (k == 0) break;
        if (out->n + (size_t)k > limit) { /* it grew while being read */
            *why = dl_xasprintf("is more than the %zu bytes allowed", limit);
            close(fd);
            return -1;
        }
        dl_buf_put(out, chunk, (size_t)k);
    }
    close(fd);
    if (!out->s) dl_buf_put(out, "", 0); /* an empty file: an empty string */
    return 0;
}

int dl_path_stays_inside(const char *path)
{
    if (!path || !*path || path[0] == '/') return 0;
    for (const char *c = path; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && c[0] == '.' && c[1] == '.') return 0;
        c += n;
        while (*c == '/') c++;
    }
    return 1;
}

void dl_buf_put_le(DlBuf *b, uint64_t v, int n)
{
    char c[8];
    for (int i = 0; i < n && i < 8; i++) c[i] = (char)(v >> (8 * i));
    dl_buf_put(b, c, (size_t)(n < 8 ? n : 8));
}
