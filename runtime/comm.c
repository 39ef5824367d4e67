/* comm.c - opening the MPI plugin at run time, and the waits with timeouts
 * (comm.h).  Nothing here links MPI. */
#include "comm.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/plan.h"
#include "../common/util.h"

#define OWN_SLOT DL_COMM_SLOTS /* the slot of dl_comm_sum and dl_comm_bcast */

struct DlComm {
    const DlCommPlugin *ops;
    void *lib, *h;
    int rank, size;
    double timeout;                   /* seconds */
    int inflight;                     /* requests started and not waited for */
    uint8_t busy[DL_COMM_NSLOTS];
    const char *what[DL_COMM_NSLOTS]; /* the operation of each slot, for messages */
    char desc[PATH_MAX + 600];
};

_Static_assert(DL_COMM_NSLOTS > DL_COMM_SLOTS, "dl_comm's own slot after the plan's");

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* The process count mpirun (or another PMI launcher) gave this process, or 0
 * when it was not started by one. */
static int launcher_size(void)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE"};
    for (size_t i = 0; i < sizeof vars / sizeof *vars; i++) {
        const char *s = getenv(vars[i]);
        if (s && *s) {
            long n = strtol(s, NULL, 10);
            return n > 0 && n < INT_MAX ? (int)n : 0;
        }
    }
    return 0;
}

/* $DLDL_MPI_PLUGIN, else dldl_mpi.so beside the executable, else build/dldl_mpi.so beside it. */
static void *open_plugin(char *path, size_t n, char **why)
{
    const char *env = getenv("DLDL_MPI_PLUGIN");
    char exe[PATH_MAX];
    ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[k > 0 ? k : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    const char *cand[2] = {"dldl_mpi.so", "build/dldl_mpi.so"};
    *why = NULL;
    for (int i = 0; i < (env && *env ? 1 : 2); i++) {
        if (env && *env) snprintf(path, n, "%s", env);
        else snprintf(path, n, "%s/%s", slash ? exe : ".", cand[i]);
        if (!env && access(path, F_OK) != 0 && i == 0) continue;
        /* RTLD_GLOBAL: Open MPI's own components resolve symbols of libmpi */
        void *lib = dlopen(path, RTLD_NOW | RTLD_GLOBAL);
        if (lib) return lib;
        free(*why);
        *why = dl_xstrdup(dlerror());
    }
    return NULL;
}

int dl_comm_open(DlComm **c, char **err)
{
    *c = NULL;
    int n = launcher_size();
    if (n <= 1) return 0;
    char path[PATH_MAX + 32], *why = NULL;
    void *lib = open_plugin(path, sizeof path, &why);
    const DlCommPlugin *ops = lib ? dlsym(lib, "dl_comm_plugin") : NULL;
    if (!ops || ops->abi != DL_COMM_ABI) {
        *err = dl_xasprintf("started by mpirun with %d processes, but the MPI plugin cannot be used: %s (make builds "
                            "build/dldl_mpi.so where mpicc is installed: Debian's openmpi-bin and libopenmpi-dev; "
                            "DLDL_MPI_PLUGIN names another)",
                            n, !lib ? why : !ops ? "it has no dl_comm_plugin table" : "it was built for another dldlrun");
        free(why);
        if (lib) dlclose(lib);
        return -1;
    }
    DlComm *x = dl_xcalloc(1, sizeof *x);
    x->ops = ops, x->lib = lib;
    char msg[512] = "";
    x->h = ops->init(&x->rank, &x->size, msg, sizeof msg);
    if (!x->h) {
        *err = dl_xasprintf("MPI could not start: %s", msg);
        free(x); /* the library stays loaded: MPI cannot be unloaded once touched */
        return -1;
    }
    const char *t = getenv("DLDL_COMM_TIMEOUT");
    x->timeout = t && *t ? strtod(t, NULL) : 120;
    if (!(x->timeout > 0)) x->timeout = 120;
    snprintf(x->desc, sizeof x->desc, "%s, plugin %s", ops->library(), path);
    *c = x;
    return 0;
}

int dl_comm_rank(const DlComm *c) { return c ? c->rank : 0; }
int dl_comm_size(const DlComm *c) { return c ? c->size : 1; }
const char *dl_comm_describe(const DlComm *c) { return c ? c->desc : "one process"; }

static int fail(DlComm *c, const char *what, const char *msg, char **err)
{
    *err = dl_xasprintf("rank %d of %d: %s: %s", c->rank, c->size, what, msg);
    return -1;
}

static int start(DlComm *c, int slot, const char *what, char **err)
{
    if (slot < 0 || slot >= DL_COMM_NSLOTS || c->busy[slot])
        return fail(c, what, "request slot in use or out of range (plan from a foreign dldlc?)", err);
    c->busy[slot] = 1, c->what[slot] = what, c->inflight++;
    return 0;
}

int dl_comm_iallreduce(DlComm *c, const float *x, float *y, int64_t n, int slot, const char *what, char **err)
{
    char msg[512] = "";
    if (start(c, slot, what, err) != 0) return -1;
    if (c->ops->iallreduce(c->h, x, y, n, 0, slot, msg, sizeof msg) != 0) {
        c->busy[slot] = 0, c->inflight--;
        return fail(c, what, msg, err);
    }
    return 0;
}

int dl_comm_wait(DlComm *c, int slot, char **err)
{
    if (slot < 0 || slot >= DL_COMM_NSLOTS || !c->busy[slot])
        return fail(c, "wait", "no request in flight in this slot (plan from a foreign dldlc?)", err);
    const char *what = c->what[slot];
    double t0 = now(), pause = 0;
    for (;;) {
        int done = 0;
        char msg[512] = "";
        if (c->ops->test(c->h, slot, &done, msg, sizeof msg) != 0) {
            c->busy[slot] = 0, c->inflight--;
            return fail(c, what, msg, err);
        }
        if (done) break;
        double el = now() - t0;
        if (el > c->timeout) {
            char m[256];
            snprintf(m, sizeof m, "no answer from the other ranks within %.0f s (DLDL_COMM_TIMEOUT): a rank died or "
                                  "hangs", c->timeout);
            return fail(c, what, m, err);
        }
        if (el > 0.01) { /* spin first (a bucket is usually there), then sleep up to 1 ms */
            pause = pause < 1e-3 ? pause + 5e-5 : pause;
            nanosleep(&(struct timespec){0, (long)(pause * 1e9)}, NULL);
        }
    }
    c->busy[slot] = 0, c->inflight--;
    return 0;
}

void dl_comm_poll(DlComm *c)
{
    if (!c || !c->inflight) return;
    for (int s = 0; s < DL_COMM_NSLOTS; s++)
        if (c->busy[s]) {
            int done = 0;
            char msg[8];
            c->ops->test(c->h, s, &done, msg, sizeof msg); /* a request that completes stays done for the wait */
            (void)done;
            return; /* one call is enough to make the progress engine run */
        }
}

int dl_comm_sum(DlComm *c, double *v, int n, const char *what, char **err)
{
    char msg[512] = "";
    if (start(c, OWN_SLOT, what, err) != 0) return -1;
    if (c->ops->iallreduce(c->h, v, v, n, 1, OWN_SLOT, msg, sizeof msg) != 0) {
        c->busy[OWN_SLOT] = 0, c->inflight--;
        return fail(c, what, msg, err);
    }
    return dl_comm_wait(c, OWN_SLOT, err);
}

int dl_comm_bcast(DlComm *c, void *buf, int64_t bytes, int root, const char *what, char **err)
{
    char msg[512] = "";
    if (start(c, OWN_SLOT, what, err) != 0) return -1;
    if (c->ops->ibcast(c->h, buf, bytes, root, OWN_SLOT, msg, sizeof msg) != 0) {
        c->busy[OWN_SLOT] = 0, c->inflight--;
        return fail(c, what, msg, err);
    }
    return dl_comm_wait(c, OWN_SLOT, err);
}

void dl_comm_abort(DlComm *c, int code)
{
    fflush(stdout), fflush(stderr);
    if (c) c->ops->abort(c->h, code);
    exit(code);
}

void dl_comm_close(DlComm *c)
{
    if (!c) return;
    c->ops->finalize(c->h);
    free(c);
}
