/* jit.c - compile generated C kernels with the system compiler (jit.h). */
#include "jit.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"

static const char *const JIT_FLAGS[] = {"-O3", "-march=native", "-fPIC", "-shared", "-fno-math-errno"};
#define NFLAGS (int)(sizeof JIT_FLAGS / sizeof *JIT_FLAGS)

/* $CC split on blanks ("ccache gcc" works); argv is malloc'd, strings in *store. */
static char **cc_argv(int extra, int *argc, char **store)
{
    const char *cc = getenv("CC");
    *store = dl_xstrdup(cc && *cc ? cc : "cc");
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
static char *cc_version(void)
{
    char *store;
    int argc;
    char **argv = cc_argv(1, &argc, &store);
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

static int mkdir_p(const char *path)
{
    char *p = dl_xstrdup(path);
    for (char *s = p + 1; *s; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) {
            free(p);
            return -1;
        }
        *s = '/';
    }
    int rc = mkdir(p, 0755) != 0 && errno != EEXIST ? -1 : 0;
    free(p);
    return rc;
}

static char *cache_dir(void)
{
    const char *d = getenv("DLDL_CACHE");
    if (d && *d) return dl_xstrdup(d);
    const char *home = getenv("HOME");
    return dl_xasprintf("%s/.cache/dldl", home && *home ? home : "/tmp");
}

static int compile(const char *src_path, const char *so_path, char **err)
{
    char *store;
    int argc;
    char **argv = cc_argv(NFLAGS + 4, &argc, &store);
    for (int i = 0; i < NFLAGS; i++) argv[argc++] = (char *)JIT_FLAGS[i];
    char *tmp = dl_xasprintf("%s.tmp.%ld", so_path, (long)getpid());
    argv[argc++] = "-o";
    argv[argc++] = tmp;
    argv[argc++] = (char *)src_path;
    const char *dbg = getenv("DLDL_DEBUG");
    if (dbg && atoi(dbg) >= 1) {
        fprintf(stderr, "dldlrun: jit:");
        for (int i = 0; i < argc; i++) fprintf(stderr, " %s", argv[i]);
        fprintf(stderr, "\n");
    }
    DlBuf out = {0};
    int rc = run(argv, &out);
    if (rc == 0 && rename(tmp, so_path) != 0) {
        *err = dl_xasprintf("cannot rename '%s' to '%s': %s", tmp, so_path, strerror(errno));
        rc = -2;
    } else if (rc != 0) {
        *err = dl_xasprintf("the C compiler failed on the generated kernels (%s %d):\n%s"
                            "the source is saved at %s",
                            rc < 0 ? "could not run it, status" : "exit status", rc,
                            out.s ? out.s : "", src_path);
    }
    if (rc != 0) unlink(tmp);
    dl_buf_free(&out);
    free(tmp), free(argv), free(store);
    return rc == 0 ? 0 : -1;
}

int dl_jit_load(const char *source, const char *const *names, int n, DlJit *out, char **err)
{
    memset(out, 0, sizeof *out);
    static char *version; /* one `cc --version` per process */
    if (!version) version = cc_version();
    DlBuf key = {0};
    dl_buf_put(&key, source, strlen(source));
    for (int i = 0; i < NFLAGS; i++) dl_buf_printf(&key, "\n%s", JIT_FLAGS[i]);
    dl_buf_printf(&key, "\n%s\n", version);
    uint64_t h = dl_hash64(key.s, key.n);
    dl_buf_free(&key);

    char *dir = cache_dir();
    char *so = dl_xasprintf("%s/%016llx.so", dir, (unsigned long long)h);
    char *src = dl_xasprintf("%s/%016llx.c", dir, (unsigned long long)h);
    int rc = -1;
    out->cache_hit = access(so, R_OK) == 0;
    if (!out->cache_hit) {
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        if (mkdir_p(dir) != 0) {
            *err = dl_xasprintf("cannot create the kernel cache '%s': %s (set DLDL_CACHE)", dir, strerror(errno));
            goto done;
        }
        if (dl_write_file_atomic(src, source, strlen(source)) != 0) {
            *err = dl_xasprintf("cannot write '%s': %s", src, strerror(errno));
            goto done;
        }
        if (compile(src, so, err) != 0) goto done;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        out->compile_s = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
    }
    out->handle = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!out->handle) {
        *err = dl_xasprintf("cannot load the kernels '%s': %s (delete it to recompile)", so, dlerror());
        goto done;
    }
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
    free(so), free(src), free(dir);
    return rc;
}

void dl_jit_close(DlJit *j)
{
    if (j->handle) dlclose(j->handle);
    free(j->fn);
    free(j->so_path);
    memset(j, 0, sizeof *j);
}
