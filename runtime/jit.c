/* jit.c - compile generated C kernels with the system compiler (jit.h). */
#include "jit.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

#include "../common/util.h"

/* The largest shared object the cache loads (bytes); the age plan's is about 0.1 MB. */
#define SO_LIMIT ((size_t)256 << 20)
/* A *.tmp.PID file of a dead process is removed once it is this old (seconds):
 * a live compile renames its files within seconds of writing them, so an old
 * file is stale even if PID is alive in another pid namespace or on another
 * host sharing the directory. */
#define STALE_TMP_AGE 60

static const char *const JIT_FLAGS[] = {"-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno"};
const DlJitCompiler dl_jit_cc = {"the C compiler", "CC", "cc", JIT_FLAGS, (int)(sizeof JIT_FLAGS / sizeof *JIT_FLAGS), ".c"};

/* $<c->env> (else c->dflt) split on blanks ("ccache gcc" works); argv is
 * malloc'd, strings in *store. */
static char **cc_argv(const DlJitCompiler *c, int extra, int *argc, char **store)
{
    const char *cc = getenv(c->env);
    *store = dl_xstrdup(cc && *cc ? cc : c->dflt);
    char **argv = dl_xcalloc((size_t)(strlen(*store) + extra + 2), sizeof *argv);
    int n = 0;
    for (char *tok = strtok(*store, " \t"); tok; tok = strtok(NULL, " \t")) argv[n++] = tok;
    *argc = n;
    return argv;
}

/* Run argv, collecting stdout and stderr into *out.  Returns the exit status
 * (0 ok), or -1 when it could not be started or was killed. */
static int run(char **argv, DlBuf *out)
{
    int fd[2];
    if (pipe(fd) != 0) return -1;
    pid_t pid = fork();
    if (pid < 0) {
        close(fd[0]), close(fd[1]);
        return -1;
    }
    if (pid == 0) {
        dup2(fd[1], 1);
        dup2(fd[1], 2);
        close(fd[0]), close(fd[1]);
        execvp(argv[0], argv);
        fprintf(stderr, "cannot run '%s': %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    close(fd[1]);
    char buf[4096];
    for (;;) {
        ssize_t k = read(fd[0], buf, sizeof buf);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) break;
        dl_buf_put(out, buf, (size_t)k);
    }
    close(fd[0]);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        if (errno != EINTR) return -1;
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* First line of `$CC --version` (part of the cache key). */
static char *cc_version(const DlJitCompiler *c)
{
    char *store;
    int argc;
    char **argv = cc_argv(c, 1, &argc, &store);
    argv[argc] = "--version";
    DlBuf out = {0};
    int rc = run(argv, &out);
    char *v = dl_xstrndup(out.s ? out.s : "", out.s ? strcspn(out.s, "\n") : 0);
    if (rc != 0) {
        free(v);
        v = dl_xstrdup("unknown compiler");
    }
    dl_buf_free(&out);
    free(argv), free(store);
    return v;
}

/* Create path and its missing parents, each with mode 0700. */
static int mkdir_p(const char *path)
{
    char *p = dl_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1;; s++) {
        if (*s && *s != '/') continue;
        char c = *s;
        *s = 0;
        if (mkdir(p, 0700) != 0 && errno != EEXIST) rc = -1;
        *s = c;
        if (rc != 0 || !c) break;
    }
    int e = errno;
    free(p);
    errno = e;
    return rc;
}

static char *cache_dir(void)
{
    const char *d = getenv("DLDL_CACHE");
    if (d && *d) return dl_xstrdup(d);
    const char *home = getenv("HOME");
    return dl_xasprintf("%s/.cache/dldl", home && *home ? home : "/tmp");
}

/* Open the cache directory, which must be private: a directory itself (not a
 * symbolic link), owned by the effective uid and not writable by group or
 * others; anyone else who can write there could plant kernels.  Returns an
 * O_DIRECTORY descriptor that every later read goes through, or -1 with *err
 * naming the directory, what is wrong and the fix. */
static int open_cache_dir(const char *dir, char **err)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    char *why = NULL;
    if (fd < 0) {
        int e = errno;
        struct stat lst;
        if (lstat(dir, &lst) == 0 && S_ISLNK(lst.st_mode))
            why = dl_xstrdup("it is a symbolic link; set DLDL_CACHE to a real directory of yours "
                             "(the link's target, if that is private)");
        else if (e == ENOTDIR)
            why = dl_xstrdup("it is not a directory; set DLDL_CACHE to a directory of yours");
        else
            why = dl_xasprintf("%s; set DLDL_CACHE to a directory of yours", strerror(e));
    } else if (fstat(fd, &st) != 0) {
        why = dl_xasprintf("%s; set DLDL_CACHE to a directory of yours", strerror(errno));
    } else if (st.st_uid != geteuid()) {
        why = dl_xasprintf("it is owned by uid %lu, not by you (uid %lu); set DLDL_CACHE to a directory of yours",
                           (unsigned long)st.st_uid, (unsigned long)geteuid());
    } else if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        why = dl_xasprintf("it is writable by group or others (mode %04o), who could plant kernels in it; "
                           "run chmod 700 '%s', or set DLDL_CACHE to a private directory",
                           (unsigned)(st.st_mode & 07777), dir);
    }
    if (!why) return fd;
    *err = dl_xasprintf("refusing the kernel cache '%s': %s", dir, why);
    free(why);
    if (fd >= 0) close(fd);
    return -1;
}

/* The PID of a name "X.tmp.PID" (X not empty, PID decimal without a leading
 * zero), else 0. */
static long tmp_pid(const char *name)
{
    const char *dot = strrchr(name, '.');
    if (!dot || dot - name < 5 || memcmp(dot - 4, ".tmp", 4) != 0) return 0;
    const char *d = dot + 1;
    if (*d < '1' || *d > '9') return 0;
    long pid = 0;
    for (; *d; d++) {
        if (*d < '0' || *d > '9') return 0;
        pid = 10 * pid + (*d - '0');
        if (pid > INT_MAX) return 0;
    }
    return pid;
}

/* Remove the regular files "X.tmp.PID" left in the cache by processes that
 * died while writing them (PID gone, file older than STALE_TMP_AGE). */
static void remove_stale_tmp(int dfd)
{
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0) close(fd);
        return;
    }
    time_t now = time(NULL);
    for (struct dirent *e; (e = readdir(d));) {
        long pid = tmp_pid(e->d_name);
        if (pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to signal */
        struct stat st;
        if (fstatat(dfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode)) continue;
        if (now - st.st_mtime < STALE_TMP_AGE) continue;
        unlinkat(dfd, e->d_name, 0);
    }
    closedir(d);
}

/* Read name (in the directory dfd) whole into *data: opened without following
 * a symbolic link, a regular file owned by the effective uid, at most limit
 * bytes, read to its end.  Returns 0, 1 when there is no such file, or -1
 * with *why (malloc'd). */
static int read_private(int dfd, const char *name, size_t limit, unsigned char **data, size_t *n, char **why)
{
    *data = NULL, *n = 0, *why = NULL;
    /* O_NONBLOCK: a fifo under that name must not hang the open */
    int fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENOENT) return 1;
        *why = errno == ELOOP ? dl_xstrdup("it is a symbolic link") : dl_xasprintf("cannot open it: %s", strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0)
        *why = dl_xasprintf("cannot stat it: %s", strerror(errno));
    else if (!S_ISREG(st.st_mode))
        *why = dl_xstrdup("it is not a regular file");
    else if (st.st_uid != geteuid())
        *why = dl_xasprintf("it is owned by uid %lu, not by you", (unsigned long)st.st_uid);
    else if ((unsigned long long)st.st_size > (unsigned long long)limit)
        *why = dl_xasprintf("it is %lld bytes, more than the %zu allowed", (long long)st.st_size, limit);
    if (*why) {
        close(fd);
        return -1;
    }
    size_t want = (size_t)st.st_size, got = 0;
    unsigned char *buf = dl_xmalloc(want + 1); /* one byte more: a file that grew is seen */
    while (got < want + 1) {
        ssize_t k = read(fd, buf + got, want + 1 - got);
        if (k < 0 && errno == EINTR) continue;
        if (k < 0) {
            *why = dl_xasprintf("cannot read it: %s", strerror(errno));
            break;
        }
        if (k == 0) break;
        got += (size_t)k;
    }
    close(fd);
    if (!*why && got != want)
        *why = got < want ? dl_xasprintf("short read: %zu of its %zu bytes", got, want)
                          : dl_xstrdup("it grew while being read");
    if (*why) {
        free(buf);
        return -1;
    }
    *data = buf, *n = want;
    return 0;
}

/* The checksum record of an object: "<XXH3-128, 32 hex digits> <size in bytes>\n". */
static char *record_of(const unsigned char *data, size_t n)
{
    XXH128_hash_t h = XXH3_128bits(data, n);
    return dl_xasprintf("%016llx%016llx %zu\n", (unsigned long long)h.high64, (unsigned long long)h.low64, n);
}

/* Whether data (n bytes) matches the record recname in dfd; -1 with *why if not. */
static int verify(int dfd, const char *recname, const unsigned char *data, size_t n, char **why)
{
    unsigned char *rec;
    size_t rn;
    char *rwhy = NULL;
    int r = read_private(dfd, recname, 256, &rec, &rn, &rwhy);
    if (r != 0) {
        *why = r > 0 ? dl_xasprintf("no checksum record %s", recname)
                     : dl_xasprintf("its checksum record %s: %s", recname, rwhy);
        free(rwhy);
        return -1;
    }
    char *want = record_of(data, n);
    char hex[33];
    unsigned long long size;
    int rc = 0;
    rec[rn] = 0; /* read_private leaves a spare byte */
    if (rn == strlen(want) && memcmp(rec, want, rn) == 0) {
        rc = 0;
    } else if (strlen((char *)rec) != rn || sscanf((char *)rec, "%32[0-9a-f] %llu", hex, &size) != 2 || strlen(hex) != 32) {
        *why = dl_xasprintf("its checksum record %s is malformed", recname);
        rc = -1;
    } else if (size != (unsigned long long)n) {
        *why = dl_xasprintf("it is %zu bytes, its record says %llu", n, size);
        rc = -1;
    } else {
        *why = dl_xstrdup("its XXH3-128 differs from its record");
        rc = -1;
    }
    free(want), free(rec);
    return rc;
}

static int debug_level(void)
{
    const char *dbg = getenv("DLDL_DEBUG");
    return dbg ? atoi(dbg) : 0;
}

/* A compiler run as a DlCacheBuild (ctx: a CompileJob): the source written
 * to src_path (kept next to the object, for reading), then c->flags -o tmp
 * src_path. */
typedef struct CompileJob { const DlJitCompiler *c; const char *source; const char *src_path; } CompileJob;
static int compile_to(void *ctx, const char *tmp, char **err)
{
    const CompileJob *j = ctx;
    if (dl_write_file_atomic(j->src_path, j->source, strlen(j->source)) != 0) {
        *err = dl_xasprintf("cannot write '%s': %s", j->src_path, strerror(errno));
        return -1;
    }
    char *store;
    int argc;
    char **argv = cc_argv(j->c, j->c->nflags + 4, &argc, &store);
    for (int i = 0; i < j->c->nflags; i++) argv[argc++] = (char *)j->c->flags[i];
    argv[argc++] = "-o";
    argv[argc++] = (char *)tmp;
    argv[argc++] = (char *)j->src_path;
    if (debug_level() >= 1) {
        fprintf(stderr, "dldlrun: jit:");
        for (int i = 0; i < argc; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    DlBuf out = {0};
    int rc = run(argv, &out);
    if (rc != 0)
        *err = dl_xasprintf("%s failed on the generated kernels (%s %d):\n%s"
                            "the source is saved at %s", j->c->what,
                            rc < 0 ? "could not run it, status" : "exit status", rc, out.s ? out.s : "", j->src_path);
    dl_buf_free(&out);
    free(argv), free(store);
    return rc == 0 ? 0 : -1;
}

/* Build dir/soname through dir/soname.tmp.PID (build writes it), and read the
 * result into *data (via dfd) before it is renamed into place, writing its
 * checksum record recname first.  The temporary is removed on every failure.
 * Returns 0 or -1 with *err. */
static int build_entry(const char *dir, int dfd, const char *soname, const char *recname, DlCacheBuild build,
                       void *ctx, unsigned char **data, size_t *size, char **err)
{
    char *tmpname = dl_xasprintf("%s.tmp.%ld", soname, (long)getpid());
    char *tmp = dl_xasprintf("%s/%s", dir, tmpname);
    char *why = NULL, *rec = NULL, *rec_path = NULL;
    int rc = build(ctx, tmp, err), r;
    if (rc != 0) {
        rc = -1;
    } else if ((r = read_private(dfd, tmpname, SO_LIMIT, data, size, &why)) != 0) {
        *err = dl_xasprintf("the compiler's output '%s' cannot be used: %s", tmp,
                            r > 0 ? "the compiler did not write it" : why);
        rc = -1;
    } else { /* the record first: whoever sees the new object sees its record */
        rec = record_of(*data, *size);
        rec_path = dl_xasprintf("%s/%s", dir, recname);
        if (dl_write_file_atomic(rec_path, rec, strlen(rec)) != 0) {
            *err = dl_xasprintf("cannot write '%s': %s", rec_path, strerror(errno));
            rc = -1;
        } else if (renameat(dfd, tmpname, dfd, soname) != 0) {
            *err = dl_xasprintf("cannot rename '%s' to '%s/%s': %s", tmp, dir, soname, strerror(errno));
            rc = -1;
        }
    }
    if (rc != 0) {
        unlinkat(dfd, tmpname, 0);
        free(*data);
        *data = NULL, *size = 0;
    }
    free(why), free(rec), free(rec_path);
    free(tmpname), free(tmp);
    return rc == 0 ? 0 : -1;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return -1;
        p += w, n -= (size_t)w;
    }
    return 0;
}

/* dlopen the verified bytes (data, n) from a sealed memfd named name, so that
 * what runs is what was checked, whatever happens to the file meanwhile; the
 * memfd is returned in *memfd (-1 if none) and must stay open while the
 * object is loaded: glibc knows an object by its name, /proc/self/fd/N, and
 * would hand back the old object for a new memfd that got the same number.
 * Without memfd_create or /proc, dlopen(path) of the verified file instead. */
static void *load_verified(const unsigned char *data, size_t n, const char *name, const char *path, int *memfd,
                           char **err)
{
    *memfd = -1;
#if defined(MFD_ALLOW_SEALING) && defined(F_ADD_SEALS)
    int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd >= 0 && write_all(fd, data, n) == 0 &&
        fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) == 0) {
        int held[8], nheld = 0, clash = 0; /* numbers whose name a loaded object still answers to */
        char proc[64];
        for (;;) {
            snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
            void *old = access(proc, F_OK) == 0 ? dlopen(proc, RTLD_LAZY | RTLD_NOLOAD) : NULL;
            if (!old) break;
            dlclose(old);
            int fd2 = nheld < 8 ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1;
            if (fd2 < 0) {
                clash = 1;
                break;
            }
            held[nheld++] = fd, fd = fd2;
        }
        for (int i = 0; i < nheld; i++) close(held[i]);
        if (!clash && access(proc, F_OK) == 0) {
            void *h = dlopen(proc, RTLD_NOW | RTLD_LOCAL);
            if (!h) {
                *err = dl_xasprintf("cannot load the kernels '%s': %s", path, dlerror());
                close(fd);
                return NULL;
            }
            *memfd = fd;
            return h;
        }
    }
    if (fd >= 0) close(fd);
#endif
    if (debug_level() >= 1) fprintf(stderr, "dldlrun: jit: no sealed memfd, loading %s by its path\n", path);
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) *err = dl_xasprintf("cannot load the kernels '%s': %s (delete it to recompile)", path, dlerror());
    return h;
}

int dl_cache_fetch(const char *name, DlCacheBuild build, void *ctx, unsigned char **data, size_t *size, int *hit,
                   char **err)
{
    *data = NULL, *size = 0, *hit = 0;
    char *dir = cache_dir();
    char *recname = dl_xasprintf("%s.xxh128", name);
    char *path = dl_xasprintf("%s/%s", dir, name);
    char *why = NULL;
    int rc = -1, dfd = -1;
    if (mkdir_p(dir) != 0) {
        *err = dl_xasprintf("cannot create the kernel cache '%s': %s (set DLDL_CACHE)", dir, strerror(errno));
        goto done;
    }
    if ((dfd = open_cache_dir(dir, err)) < 0) goto done;
    remove_stale_tmp(dfd);
    int r = read_private(dfd, name, SO_LIMIT, data, size, &why);
    if (r == 0 && verify(dfd, recname, *data, *size, &why) != 0) r = -1;
    if (r < 0) { /* never used: removed and built again */
        fprintf(stderr, "dldlrun: kernel cache entry %s is damaged (%s); rebuilding\n", path, why);
        free(*data);
        *data = NULL, *size = 0;
        unlinkat(dfd, name, 0);
        unlinkat(dfd, recname, 0);
    }
    *hit = r == 0;
    if (!*hit && build_entry(dir, dfd, name, recname, build, ctx, data, size, err) != 0) goto done;
    rc = 0;
done:
    if (dfd >= 0) close(dfd);
    free(why), free(recname), free(path), free(dir);
    return rc;
}

int dl_jit_load_with(const DlJitCompiler *c, const char *source, const char *const *names, int n, DlJit *out,
                     char **err)
{
    memset(out, 0, sizeof *out);
    out->memfd = -1;
    static struct { const DlJitCompiler *c; char *version; } seen[4]; /* one `cc --version` per compiler */
    char *version = NULL;
    for (int i = 0; i < 4 && !version; i++) {
        if (!seen[i].c) seen[i].c = c, seen[i].version = cc_version(c);
        if (seen[i].c == c) version = seen[i].version;
    }
    if (!version) version = "unknown compiler";
    DlBuf key = {0};
    dl_buf_put(&key, source, strlen(source));
    for (int i = 0; i < c->nflags; i++) dl_buf_printf(&key, "\n%s", c->flags[i]);
    dl_buf_printf(&key, "\n%s\n", version);
    uint64_t h = dl_hash64(key.s, key.n);
    dl_buf_free(&key);

    char *dir = cache_dir();
    char *soname = dl_xasprintf("%016llx.so", (unsigned long long)h);
    char *so = dl_xasprintf("%s/%s", dir, soname);
    unsigned char *data = NULL;
    size_t size = 0;
    int rc = -1;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char *src = dl_xasprintf("%s/%016llx%s", dir, (unsigned long long)h, c->ext);
    CompileJob job = {c, source, src};
    if (dl_cache_fetch(soname, compile_to, &job, &data, &size, &out->cache_hit, err) != 0) goto done;
    if (!out->cache_hit) {
        clock_gettime(CLOCK_MONOTONIC, &t1);
        out->compile_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    out->handle = load_verified(data, size, soname, so, &out->memfd, err);
    if (!out->handle) goto done;
    out->n = n;
    out->fn = dl_xcalloc((size_t)(n ? n : 1), sizeof *out->fn);
    for (int i = 0; i < n; i++) {
        void *sym = dlsym(out->handle, names[i]);
        if (!sym) {
            *err = dl_xasprintf("kernel '%s' is missing from '%s' (the plan and its source disagree)",
                                names[i], so);
            goto done;
        }
        memcpy(&out->fn[i], &sym, sizeof sym); /* object -> function pointer */
    }
    out->so_path = so;
    so = NULL;
    rc = 0;
done:
    if (rc != 0) dl_jit_close(out);
    free(data);
    free(so), free(src), free(soname), free(dir);
    return rc;
}

int dl_jit_load(const char *source, const char *const *names, int n, DlJit *out, char **err)
{
    return dl_jit_load_with(&dl_jit_cc, source, names, n, out, err);
}

void dl_jit_close(DlJit *j)
{
    if (j->handle) dlclose(j->handle);
    if (j->handle && j->memfd >= 0) close(j->memfd);
    free(j->fn);
    free(j->so_path);
    memset(j, 0, sizeof *j);
    j->memfd = -1;
}
