/* cuda_nccl.c - NCCL opened at run time (cuda_nccl.h). */
#include "cuda_nccl.h"

#include <stdlib.h>

#include "../common/util.h"

/* This process's rank among the ranks of its host, as the launcher says (0
 * without one). */
int dl_cuda_local_rank(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "MPI_LOCALRANKID", "PMIX_LOCAL_RANK",
                                       "SLURM_LOCALID"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *s = getenv(vars[i]);
        if (s && *s) {
            long v = strtol(s, NULL, 10);
            return v >= 0 && v < 1 << 20 ? (int)v : 0;
        }
    }
    return 0;
}

#define NCCL_MISSING "NCCL (Debian/NVIDIA's libnccl2, needed by --device cuda under mpirun)"

#ifdef DL_CUDA_NO_NCCL
#define NO_NCCL "this dldlrun was built without NCCL's header (nccl.h under CUDA_HOME or /usr/include; Debian/" \
                "NVIDIA's libnccl-dev): rebuild with it for --device cuda under mpirun"
int dl_nccl_open(DlNccl **n, DlComm *comm, char **err)
{
    *err = dl_xstrdup(NO_NCCL);
    return -1;
}
int dl_nccl_allreduce(DlNccl *n, uint64_t x, uint64_t y, size_t count, void *stream, char **err)
{
    *err = dl_xstrdup(NO_NCCL);
    return -1;
}
int dl_nccl_wait(DlNccl *n, int (*done)(void *ctx, char **err), void *ctx, char **err)
{
    *err = dl_xstrdup(NO_NCCL);
    return -1;
}
void dl_nccl_abort(DlNccl *n) {}
void dl_nccl_free(DlNccl *n) {}
int dl_nccl_check(int *version, char **why)
{
    *why = dl_xstrdup(NO_NCCL);
    return -1;
}
#else
#include <dlfcn.h>
#include <nccl.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define XSTR(x) STR(x)
#define STR(x) #x

/* One row per entry point; the pointer typed by the header's declaration. */
#define NCCL_SYMS(X)                                                                                                  \
    X(ncclGetVersion) X(ncclGetErrorString) X(ncclGetUniqueId) X(ncclCommInitRank) X(ncclAllReduce)                 \
    X(ncclCommGetAsyncError) X(ncclCommAbort) X(ncclCommDestroy)
#define FIELD(f) __typeof__(&f) p_##f;
typedef struct Api { NCCL_SYMS(FIELD) } Api;
#undef FIELD
#define ROW(f) {XSTR(f), offsetof(Api, p_##f)},
static const struct { const char *name; size_t off; } SYMS[] = {NCCL_SYMS(ROW)};
#undef ROW
static const char *const FILES[] = {"libnccl.so.2", "libnccl.so", "/usr/local/cuda/lib64/libnccl.so.2",
                                    "/usr/local/cuda/lib/libnccl.so.2"};

struct DlNccl {
    ncclComm_t comm;
    int rank, size;
    double timeout;
};

static Api api;         /* resolved from lib, which is never closed */
static void *lib;
static char *lib_file;  /* the file lib was opened from */

#define NCCL(call, what)                                                                                      \
    do {                                                                                                      \
        ncclResult_t rc_ = (call);                                                                            \
        if (rc_ != ncclSuccess) {                                                                             \
            *err = dl_xasprintf("%s (%s:%d): %s", what, __FILE__, __LINE__, api.p_ncclGetErrorString(rc_));   \
            return -1;                                                                                        \
        }                                                                                                     \
    } while (0)

/* Open libnccl ($DLDL_LIBNCCL, else FILES) and resolve SYMS into api, once
 * per process (again only when DLDL_LIBNCCL names another file). */
static int open_nccl(char **why)
{
    const char *over = getenv("DLDL_LIBNCCL"), *f = NULL;
    if (lib && !(over && *over && strcmp(over, lib_file))) return 0;
    DlBuf tried = {0};
    void *h = NULL;
    for (size_t i = 0; !h && i < (over && *over ? 1 : sizeof FILES / sizeof *FILES); i++) {
        f = over && *over ? over : FILES[i];
        if (!(h = dlopen(f, RTLD_NOW | RTLD_LOCAL))) dl_buf_printf(&tried, "%s%s", tried.n ? ", " : "", f);
    }
    if (!h) {
        const char *e = dlerror();
        *why = dl_xasprintf("%s not found (tried %s%s%s): %s", NCCL_MISSING, tried.s ? tried.s : "",
                            over && *over ? ", named by " : "", over && *over ? "DLDL_LIBNCCL" : "", e ? e : "");
        dl_buf_free(&tried);
        return -1;
    }
    dl_buf_free(&tried);
    Api a;
    for (size_t i = 0; i < sizeof SYMS / sizeof *SYMS; i++) {
        void *s = dlsym(h, SYMS[i].name);
        if (!s) {
            *why = dl_xasprintf("%s lacks %s (too old for this dldlrun, built against NCCL %d.%d.%d)", NCCL_MISSING,
                                SYMS[i].name, NCCL_MAJOR, NCCL_MINOR, NCCL_PATCH);
            dlclose(h);
            return -1;
        }
        memcpy((char *)&a + SYMS[i].off, &s, sizeof s);
    }
    api = a, lib = h;
    free(lib_file);
    lib_file = dl_xstrdup(f);
    return 0;
}

int dl_nccl_check(int *version, char **why)
{
    if (open_nccl(why) != 0) return -1;
    char **err = why;
    NCCL(api.p_ncclGetVersion(version), "ncclGetVersion");
    return 0;
}

int dl_nccl_open(DlNccl **np, DlComm *comm, char **err)
{
    if (open_nccl(err) != 0) return -1;
    ncclUniqueId id;
    memset(&id, 0, sizeof id);
    int rank = dl_comm_rank(comm), size = dl_comm_size(comm);
    if (rank == 0) NCCL(api.p_ncclGetUniqueId(&id), "ncclGetUniqueId");
    if (dl_comm_bcast(comm, &id, sizeof id, 0, "NCCL's unique id", err) != 0) return -1;
    DlNccl *n = dl_xcalloc(1, sizeof *n);
    n->rank = rank, n->size = size;
    const char *t = getenv("DLDL_COMM_TIMEOUT");
    n->timeout = t && *t ? strtod(t, NULL) : 120;
    if (!(n->timeout > 0)) n->timeout = 120;
    ncclResult_t rc = api.p_ncclCommInitRank(&n->comm, size, id, rank);
    if (rc != ncclSuccess) {
        *err = dl_xasprintf("ncclCommInitRank (%s:%d): rank %d of %d: %s", __FILE__, __LINE__, rank, size,
                            api.p_ncclGetErrorString(rc));
        free(n);
        return -1;
    }
    *np = n;
    return 0;
}

int dl_nccl_allreduce(DlNccl *n, uint64_t x, uint64_t y, size_t count, void *stream, char **err)
{
    if (!n->comm) {
        *err = dl_xasprintf("ncclAllReduce: rank %d's NCCL communicator was aborted after an earlier failure", n->rank);
        return -1;
    }
    NCCL(api.p_ncclAllReduce((const void *)(uintptr_t)x, (void *)(uintptr_t)y, count, ncclFloat, ncclSum, n->comm,
                             (cudaStream_t)stream),
         "ncclAllReduce");
    return 0;
}

/* ncclCommGetAsyncError: 0 while nothing failed, else -1 with *err (and the
 * communicator aborted). */
static int poll_error(DlNccl *n, char **err)
{
    if (!n->comm) return 0; /* aborted: the failure was reported then */
    ncclResult_t as = ncclSuccess;
    NCCL(api.p_ncclCommGetAsyncError(n->comm, &as), "ncclCommGetAsyncError");
    if (as == ncclSuccess || as == ncclInProgress) return 0;
    *err = dl_xasprintf("rank %d: NCCL reports an asynchronous error (ncclCommGetAsyncError, %s:%d): %s; a rank "
                        "died or the network failed",
                        n->rank, __FILE__, __LINE__, api.p_ncclGetErrorString(as));
    dl_nccl_abort(n);
    return -1;
}

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

int dl_nccl_wait(DlNccl *n, int (*done)(void *ctx, char **err), void *ctx, char **err)
{
    double t0 = now_s(), pause = 0;
    for (;;) {
        int d = done(ctx, err);
        if (d != 0) return d > 0 ? 0 : -1;
        if (poll_error(n, err) != 0) return -1;
        if (now_s() - t0 > n->timeout) {
            *err = dl_xasprintf("rank %d: the GPU's stream with NCCL all-reduces did not finish within %.0f s "
                                "(DLDL_COMM_TIMEOUT): a rank died or hangs (ncclCommAbort called)",
                                n->rank, n->timeout);
            dl_nccl_abort(n);
            return -1;
        }
        pause = pause < 1e-3 ? pause + 5e-5 : pause; /* up to 1 ms between polls */
        nanosleep(&(struct timespec){0, (long)(pause * 1e9)}, NULL);
    }
}

void dl_nccl_abort(DlNccl *n)
{
    if (n && n->comm) api.p_ncclCommAbort(n->comm);
    if (n) n->comm = NULL;
}

void dl_nccl_free(DlNccl *n)
{
    if (!n) return;
    if (n->comm) api.p_ncclCommDestroy(n->comm);
    free(n);
}
#endif
