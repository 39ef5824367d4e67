/* cuda_emu.c - an emulated CUDA device: a test double on the CPU, not a GPU
 * (cuda_dev.h).  It exists so that the CUDA backend's host logic (cuda_exec.c:
 * arenas, argument tables, launches, library calls, staging, graph capture,
 * event timing) runs and is tested on machines without a GPU.  Nothing it
 * computes is a GPU result.
 *
 * Memory: every allocation is host memory, handed out as a tagged address,
 * host ^ DL_EMU_TAG, which no user address is (below): host code
 * that dereferences a device pointer faults at once, and every operation
 * checks that its device pointers lie inside a live allocation and its host
 * pointers are not tagged (and, for copies, inside memory pinned with
 * host_register, as CUDA's asynchronous copies want).
 * Module: the plan's CUDA C, exactly the text NVRTC compiles, prefixed with
 * codegen/cuda_host_emu.h (embedded at build time) and compiled by g++
 * ($CXX) -O2 -ffp-contract=off through the kernel cache (jit.h); a launch
 * translates the kernel's argument table to host pointers and runs every
 * (block, thread) of the KirLaunch shape through dl_emu_launch_abi, in the
 * order DLDL_CUDA_EMU_ORDER=forward|reverse|shuffle (default forward).
 * Streams: work is queued and runs at the next synchronisation, all of it in
 * issue order: the latest schedule CUDA allows, so that a host write to a
 * buffer still to be copied, or a read of an output before the stream is
 * synchronised, gives a wrong result the tests see; an error of queued work
 * is reported by the synchronisation, as CUDA reports asynchronous errors.
 * Events hold the host time they ran at.  Graphs: capture records the
 * operations issued on the stream, a launch queues the recorded list.
 * Libraries: convolutions through oneDNN and matrix products through
 * OpenBLAS (cpu_lib.h).  Collectives (emulated NCCL): an all-reduce is an
 * operation of the queue like the others; when the queue reaches it, the
 * host memory behind the device addresses is summed over the ranks with the
 * CPU path's communicator (comm.h dl_comm_iallreduce and dl_comm_wait, with
 * its timeout), so the backend's collective logic runs under mpirun without a
 * GPU.  NCCL itself is not involved.
 */
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/plan.h"
#include "../common/util.h"
#include "cpu_lib.h"
#include "cuda_dev.h"
#include "jit.h"

/* bits 48..55: no user address has them on x86-64 (with 4-level paging such
   an address is not canonical; with 5-level paging Linux maps nothing above
   47 bits for a process that does not ask) nor on AArch64 (beyond its 48-bit
   range; top-byte-ignore spares only bits 56..63) */
#define DL_EMU_TAG 0x00DE000000000000ULL
#define DL_EMU_MASK 0xFFFF000000000000ULL
#define EMU_NAME "emulated CUDA device (a test double on the CPU, not a GPU)"

/* codegen/cuda_host_emu.h as a string (the Makefile generates the .inc) */
static const char EMU_HEADER[] =
#include "runtime/cuda_host_emu.inc"
    ;

static const char *const EMU_FLAGS[] = {"-std=c++17", "-O2", "-ffp-contract=off", "-fno-gnu-unique",
                                        "-shared", "-fPIC", "-w", "-x", "c++"};
static const DlJitCompiler EMU_CXX = {"the host C++ compiler of the emulated CUDA device", "CXX", "g++", EMU_FLAGS,
                                      (int)(sizeof EMU_FLAGS / sizeof *EMU_FLAGS), ".cu"};

typedef int (*EmuLaunchAbi)(DlKernelFn kernel, unsigned blocks, unsigned threads, int order, uint64_t seed,
                            float *const *b, int64_t g0, int64_t g1);

/* One operation, run now or recorded by a graph capture. */
typedef enum {
    OP_LAUNCH, OP_H2D, OP_D2H, OP_D2D, OP_MEMSET, OP_CONV, OP_GEMM, OP_EVENT, OP_GRAPH, OP_ALLREDUCE
} EmuOpKind;
typedef struct EmuOp {
    EmuOpKind kind;
    DlDevKernel k;
    KirLaunch l;
    int nargs;
    int64_t g0, g1, mi[5];
    DlDevPtr p[4];
    void *host;
    size_t n;
    uint32_t val;
    DlDevConv *conv;
    DlDevEvent *ev;
    DlDevGraph *graph;
} EmuOp;

struct DlDevGraph { EmuOp *ops; int n, cap; };
struct DlDevEvent { double t; };   /* host time when it ran; < 0 before */
struct DlDevConv { DlConv *c; size_t bytes[3]; };   /* bytes of the step's three arguments */
typedef struct EmuKernel { DlKernelFn fn; DlDevModule *m; } EmuKernel;
struct DlDevModule { DlJit jit; EmuLaunchAbi launch; EmuKernel *k; };

typedef struct Range { uintptr_t base; size_t n; } Range;
typedef struct Emu {
    Range *mem; int nmem, capmem;       /* live allocations (host addresses) */
    Range *pin; int npin, cappin;       /* registered host memory */
    DlLib *lib;
    int order;                          /* DlEmuOrder of codegen/cuda_host_emu.h */
    uint64_t launches;                  /* seeds the shuffle order */
    DlDevGraph *capture[DL_CUDA_NSTREAMS];
    DlDevGraph pending;                 /* issued, not yet run: they run at the next synchronisation */
    DlComm *comm;                       /* coll_init: the ranks' communicator */
} Emu;

static Emu *E(DlCudaDev *d) { return d->impl; }

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void add_range(Range **r, int *n, int *cap, uintptr_t base, size_t bytes)
{
    if (*n == *cap) *r = dl_xrealloc(*r, (size_t)(*cap = *cap ? 2 * *cap : 16) * sizeof **r);
    (*r)[(*n)++] = (Range){base, bytes};
}
static int find_range(const Range *r, int n, uintptr_t p, size_t bytes)
{
    for (int i = 0; i < n; i++)
        if (p >= r[i].base && bytes <= r[i].n && p - r[i].base <= r[i].n - bytes) return i;
    return -1;
}

/* The host address of device range [p, p + bytes), or NULL with *err. */
static void *dev_host(Emu *e, DlDevPtr p, size_t bytes, const char *call, char **err)
{
    if ((p & DL_EMU_MASK) != DL_EMU_TAG) {
        *err = dl_xasprintf("%s (emulated CUDA device): 0x%llx is not a device address (a host pointer passed as "
                            "a device pointer?)", call, (unsigned long long)p);
        return NULL;
    }
    uintptr_t h = (uintptr_t)(p ^ DL_EMU_TAG);
    if (find_range(e->mem, e->nmem, h, bytes) < 0) {
        *err = dl_xasprintf("%s (emulated CUDA device): device range 0x%llx + %zu bytes is not inside a live "
                            "allocation (freed, or out of bounds)", call, (unsigned long long)p, bytes);
        return NULL;
    }
    return (void *)h;
}

/* A host range of an asynchronous copy: untagged and pinned. */
static int host_ok(Emu *e, const void *p, size_t bytes, const char *call, char **err)
{
    uintptr_t h = (uintptr_t)p;
    if ((h & DL_EMU_MASK) == DL_EMU_TAG) {
        *err = dl_xasprintf("%s (emulated CUDA device): %p is a device address passed as a host pointer", call, p);
        return -1;
    }
    if (find_range(e->pin, e->npin, h, bytes) < 0) {
        *err = dl_xasprintf("%s (emulated CUDA device): host range %p + %zu bytes is not pinned (asynchronous "
                            "copies need memory registered with host_register)", call, p, bytes);
        return -1;
    }
    return 0;
}

static int run_op(Emu *e, const EmuOp *o, char **err);

/* Run a graph's operations in their order. */
static int run_graph(Emu *e, const DlDevGraph *g, char **err)
{
    for (int i = 0; i < g->n; i++)
        if (run_op(e, &g->ops[i], err) != 0) return -1;
    return 0;
}

/* Run one operation now. */
static int run_op(Emu *e, const EmuOp *o, char **err)
{
    switch (o->kind) {
    case OP_EVENT:
        o->ev->t = now();
        return 0;
    case OP_GRAPH:
        return run_graph(e, o->graph, err);
    case OP_LAUNCH: {
        const EmuKernel *k = o->k;
        if (o->l.shared_bytes) {
            *err = dl_xasprintf("cuLaunchKernel (emulated CUDA device): the kernel asks for %u bytes of dynamic "
                                "shared memory, which codegen/cuda_host_emu.h does not emulate yet", o->l.shared_bytes);
            return -1;
        }
        const DlDevPtr *tab = dev_host(e, o->p[0], (size_t)o->nargs * sizeof(DlDevPtr), "cuLaunchKernel", err);
        if (!tab) return -1;
        float *b[DL_STEP_MAX_ARGS];
        for (int i = 0; i < o->nargs; i++) /* a device pointer per argument: checked, then the host view */
            if (!(b[i] = dev_host(e, tab[i], sizeof(float), "cuLaunchKernel argument", err))) return -1;
        uint64_t seed = ++e->launches;
        if (k->m->launch(k->fn, o->l.blocks, o->l.threads, e->order, seed, b, o->g0, o->g1) != 0) {
            *err = dl_xasprintf("cuLaunchKernel (emulated CUDA device): invalid launch shape %u x %u", o->l.blocks,
                                o->l.threads);
            return -1;
        }
        return 0;
    }
    case OP_H2D: {
        void *dst = dev_host(e, o->p[0], o->n, "cuMemcpyHtoDAsync", err);
        if (!dst || host_ok(e, o->host, o->n, "cuMemcpyHtoDAsync", err)) return -1;
        memcpy(dst, o->host, o->n);
        return 0;
    }
    case OP_D2H: {
        void *src = dev_host(e, o->p[0], o->n, "cuMemcpyDtoHAsync", err);
        if (!src || host_ok(e, o->host, o->n, "cuMemcpyDtoHAsync", err)) return -1;
        memcpy(o->host, src, o->n);
        return 0;
    }
    case OP_D2D: {
        void *src = dev_host(e, o->p[1], o->n, "cuMemcpyDtoDAsync", err);
        void *dst = src ? dev_host(e, o->p[0], o->n, "cuMemcpyDtoDAsync", err) : NULL;
        if (!dst) return -1;
        memmove(dst, src, o->n);
        return 0;
    }
    case OP_ALLREDUCE: {
        float *x = dev_host(e, o->p[0], o->n * sizeof(float), "ncclAllReduce (emulated)", err);
        float *y = x ? dev_host(e, o->p[1], o->n * sizeof(float), "ncclAllReduce (emulated)", err) : NULL;
        if (!y) return -1;
        /* one blocking request at a time: slot 0 is never otherwise in flight on this path */
        if (dl_comm_iallreduce(e->comm, x, y, (int64_t)o->n, 0, "all-reduce (emulated NCCL)", err) != 0) return -1;
        return dl_comm_wait(e->comm, 0, err);
    }
    case OP_MEMSET: {
        uint32_t *dst = dev_host(e, o->p[0], o->n * 4, "cuMemsetD32Async", err);
        if (!dst) return -1;
        for (size_t i = 0; i < o->n; i++) dst[i] = o->val;
        return 0;
    }
    case OP_CONV: {
        const size_t *n = o->conv->bytes;
        float *a = dev_host(e, o->p[0], n[0], "cudnnConvolution (emulated)", err);
        float *b = a ? dev_host(e, o->p[1], n[1], "cudnnConvolution (emulated)", err) : NULL;
        float *y = b ? dev_host(e, o->p[2], n[2], "cudnnConvolution (emulated)", err) : NULL;
        if (!y) return -1;
        int st = 0;
        if (dl_conv_run(o->conv->c, a, b, y, &st) != 0) {
            *err = dl_xasprintf("convolution (emulated CUDA device, oneDNN): status %d", st);
            return -1;
        }
        return 0;
    }
    case OP_GEMM: {
        const int64_t *i = o->mi;
        float *a = dev_host(e, o->p[0], (size_t)(i[0] * i[2]) * 4, "cublasSgemm (emulated)", err);
        float *b = a ? dev_host(e, o->p[1], (size_t)(i[2] * i[1]) * 4, "cublasSgemm (emulated)", err) : NULL;
        float *y = b ? dev_host(e, o->p[2], (size_t)(i[0] * i[1]) * 4, "cublasSgemm (emulated)", err) : NULL;
        if (!y) return -1;
        dl_matmul(i, a, b, y);
        return 0;
    }
    }
    return 0;
}

static void append(DlDevGraph *g, const EmuOp *o)
{
    if (g->n == g->cap) g->ops = dl_xrealloc(g->ops, (size_t)(g->cap = g->cap ? 2 * g->cap : 64) * sizeof *g->ops);
    g->ops[g->n++] = *o;
}

/* Queue o (it runs at the next synchronisation), or append it to the graph
 * being captured on stream. */
static int submit(Emu *e, int stream, const EmuOp *o, char **err)
{
    if (stream < 0 || stream >= DL_CUDA_NSTREAMS) {
        *err = dl_xasprintf("emulated CUDA device: no stream %d", stream);
        return -1;
    }
    append(e->capture[stream] ? e->capture[stream] : &e->pending, o);
    return 0;
}

/* Run everything issued so far, in issue order (a valid schedule of every
 * stream and event order); the first failure is reported, as CUDA reports an
 * asynchronous error at the next synchronisation, and the rest is dropped. */
static int flush(Emu *e, char **err)
{
    int rc = 0;
    for (int i = 0; i < e->pending.n && rc == 0; i++) rc = run_op(e, &e->pending.ops[i], err);
    e->pending.n = 0;
    return rc;
}

/* Before memory, a module or a graph goes away: what is queued runs first
 * (as cuMemFree and the like synchronise); a failure there is the caller's
 * to see at its next synchronisation, which finds the queue empty: print it. */
static void drain(Emu *e)
{
    char *err = NULL;
    if (flush(e, &err) != 0) {
        fprintf(stderr, "dldlrun: emulated CUDA device: %s\n", err);
        free(err);
    }
}

static int not_capturing(Emu *e, int stream, const char *call, char **err)
{
    if (stream >= 0 && stream < DL_CUDA_NSTREAMS && e->capture[stream]) {
        *err = dl_xasprintf("%s (emulated CUDA device): not permitted while stream %d is being captured "
                            "(CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED)", call, stream);
        return -1;
    }
    return 0;
}

/* ---- the table ------------------------------------------------------------ */

static int emu_alloc(DlCudaDev *d, size_t bytes, DlDevPtr *out, char **err)
{
    void *p;
    size_t n = (bytes + 255) & ~(size_t)255;
    if (posix_memalign(&p, 256, n ? n : 256) != 0) {
        *err = dl_xasprintf("cuMemAlloc (emulated CUDA device): out of memory for %zu bytes", bytes);
        return -1;
    }
    memset(p, 0, n ? n : 256);
    Emu *e = E(d);
    add_range(&e->mem, &e->nmem, &e->capmem, (uintptr_t)p, n ? n : 256);
    *out = (DlDevPtr)(uintptr_t)p ^ DL_EMU_TAG;
    return 0;
}

static void emu_free(DlCudaDev *d, DlDevPtr p)
{
    Emu *e = E(d);
    drain(e);
    uintptr_t h = (uintptr_t)(p ^ DL_EMU_TAG);
    for (int i = 0; i < e->nmem; i++)
        if (e->mem[i].base == h) {
            free((void *)h);
            e->mem[i] = e->mem[--e->nmem];
            return;
        }
}

/* As cuMemHostRegister: pages already registered (by an overlapping range)
 * are refused with CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED. */
static int emu_host_register(DlCudaDev *d, void *p, size_t bytes, char **err)
{
    Emu *e = E(d);
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t page = pg > 0 ? (uintptr_t)pg : 4096, lo = (uintptr_t)p & ~(page - 1);
    uintptr_t hi = ((uintptr_t)p + (bytes ? bytes : 1) + page - 1) & ~(page - 1);
    for (int i = 0; i < e->npin; i++) {
        uintptr_t l = e->pin[i].base & ~(page - 1), h = (e->pin[i].base + e->pin[i].n + page - 1) & ~(page - 1);
        if (lo < h && l < hi) {
            *err = dl_xasprintf("cuMemHostRegister (emulated CUDA device): CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED: "
                                "%p + %zu bytes shares a page with %p + %zu bytes, already registered", p, bytes,
                                (void *)e->pin[i].base, e->pin[i].n);
            return -1;
        }
    }
    add_range(&e->pin, &e->npin, &e->cappin, (uintptr_t)p, bytes);
    return 0;
}

static void emu_host_unregister(DlCudaDev *d, void *p)
{
    Emu *e = E(d);
    drain(e);
    for (int i = 0; i < e->npin; i++)
        if (e->pin[i].base == (uintptr_t)p) {
            e->pin[i] = e->pin[--e->npin];
            return;
        }
}

static int emu_h2d(DlCudaDev *d, DlDevPtr dst, const void *src, size_t bytes, int stream, char **err)
{
    EmuOp o = {.kind = OP_H2D, .p = {dst}, .host = (void *)src, .n = bytes};
    return submit(E(d), stream, &o, err);
}

static int emu_d2h(DlCudaDev *d, void *dst, DlDevPtr src, size_t bytes, int stream, char **err)
{
    EmuOp o = {.kind = OP_D2H, .p = {src}, .host = dst, .n = bytes};
    return submit(E(d), stream, &o, err);
}

static int emu_d2d(DlCudaDev *d, DlDevPtr dst, DlDevPtr src, size_t bytes, int stream, char **err)
{
    EmuOp o = {.kind = OP_D2D, .p = {dst, src}, .n = bytes};
    return submit(E(d), stream, &o, err);
}
static int emu_memset32(DlCudaDev *d, DlDevPtr dst, uint32_t value, size_t count, int stream, char **err)
{
    EmuOp o = {.kind = OP_MEMSET, .p = {dst}, .val = value, .n = count};
    return submit(E(d), stream, &o, err);
}

static int emu_module_load(DlCudaDev *d, const char *source, const char *const *names, int n, DlDevModule **mp,
                           DlDevKernel *kernels, int *cache_hit, double *compile_s, char **err)
{
    DlBuf src = {0};
    dl_buf_printf(&src, "%s\n/* ---- the plan's CUDA module ---- */\n%s", EMU_HEADER, source);
    const char **all = dl_xcalloc((size_t)n + 1, sizeof *all);
    for (int i = 0; i < n; i++) all[i] = names[i];
    all[n] = "dl_emu_launch_abi";
    DlDevModule *m = dl_xcalloc(1, sizeof *m);
    int rc = dl_jit_load_with(&EMU_CXX, src.s, all, n + 1, &m->jit, err);
    dl_buf_free(&src);
    free(all);
    if (rc != 0) {
        free(m);
        return -1;
    }
    memcpy(&m->launch, &m->jit.fn[n], sizeof m->launch); /* object -> function pointer */
    m->k = dl_xcalloc((size_t)(n ? n : 1), sizeof *m->k);
    for (int i = 0; i < n; i++) {
        m->k[i] = (EmuKernel){m->jit.fn[i], m};
        kernels[i] = &m->k[i];
    }
    *cache_hit = m->jit.cache_hit;
    *compile_s = m->jit.compile_s;
    *mp = m;
    return 0;
}

static void emu_module_unload(DlCudaDev *d, DlDevModule *m)
{
    if (!m) return;
    drain(E(d));
    dl_jit_close(&m->jit);
    free(m->k);
    free(m);
}

static int emu_launch(DlCudaDev *d, DlDevKernel k, const KirLaunch *l, DlDevPtr argtab, int nargs, int64_t g0,
                      int64_t g1, int stream, char **err)
{
    if (nargs < 0 || nargs > DL_STEP_MAX_ARGS) {
        *err = dl_xasprintf("cuLaunchKernel (emulated CUDA device): %d arguments", nargs);
        return -1;
    }
    EmuOp o = {.kind = OP_LAUNCH, .k = k, .l = *l, .p = {argtab}, .nargs = nargs, .g0 = g0, .g1 = g1};
    return submit(E(d), stream, &o, err);
}

static int emu_event_new(DlCudaDev *d, DlDevEvent **ev, char **err)
{
    *ev = dl_xcalloc(1, sizeof **ev);
    (*ev)->t = -1;
    return 0;
}
static void emu_event_free(DlCudaDev *d, DlDevEvent *ev) { free(ev); }
static int emu_event_record(DlCudaDev *d, DlDevEvent *ev, int stream, char **err)
{
    if (not_capturing(E(d), stream, "cuEventRecord", err)) return -1;
    EmuOp o = {.kind = OP_EVENT, .ev = ev};
    return submit(E(d), stream, &o, err);
}
static int emu_stream_wait(DlCudaDev *d, int stream, DlDevEvent *ev, char **err) { return 0; }
static int emu_event_ms(DlCudaDev *d, DlDevEvent *from, DlDevEvent *to, float *ms, char **err)
{
    if (from->t < 0 || to->t < 0) {
        *err = dl_xstrdup("cuEventElapsedTime (emulated CUDA device): CUDA_ERROR_NOT_READY: an event has not run "
                          "yet (synchronise first)");
        return -1;
    }
    *ms = (float)(1e3 * (to->t - from->t));
    return 0;
}
static int emu_stream_sync(DlCudaDev *d, int stream, char **err)
{
    if (not_capturing(E(d), stream, "cuStreamSynchronize", err)) return -1;
    return flush(E(d), err);
}

static int emu_graph_begin(DlCudaDev *d, int stream, char **err)
{
    Emu *e = E(d);
    if (not_capturing(e, stream, "cuStreamBeginCapture", err)) return -1;
    e->capture[stream] = dl_xcalloc(1, sizeof(DlDevGraph));
    return 0;
}
static int emu_graph_end(DlCudaDev *d, int stream, DlDevGraph **g, char **err)
{
    Emu *e = E(d);
    if (!e->capture[stream]) {
        *err = dl_xasprintf("cuStreamEndCapture (emulated CUDA device): stream %d is not being captured", stream);
        return -1;
    }
    *g = e->capture[stream];
    e->capture[stream] = NULL;
    return 0;
}
static int emu_graph_launch(DlCudaDev *d, DlDevGraph *g, int stream, char **err)
{
    Emu *e = E(d);
    if (not_capturing(e, stream, "cuGraphLaunch", err)) return -1;
    EmuOp o = {.kind = OP_GRAPH, .graph = g};
    return submit(e, stream, &o, err);
}
static void emu_graph_free(DlCudaDev *d, DlDevGraph *g)
{
    if (!g) return;
    drain(E(d));
    free(g->ops);
    free(g);
}

static int emu_conv_new(DlCudaDev *d, int kind, const int64_t geom[12], DlDevConv **c, size_t *ws, char **err)
{
    DlConvDesc desc;
    if (dl_conv_desc(kind, geom, &desc, err) != 0) return -1; /* what the real path would refuse */
    DlConv *cv = dl_conv_create(E(d)->lib, kind, geom, DL_CONV_PLAIN, err);
    if (!cv) return -1;
    *c = dl_xcalloc(1, sizeof **c);
    (*c)->c = cv;
    size_t x = 4 * (size_t)desc.x[0] * (size_t)desc.x[1] * (size_t)desc.x[2] * (size_t)desc.x[3];
    size_t w = 4 * (size_t)desc.w[0] * (size_t)desc.w[1] * (size_t)desc.w[2] * (size_t)desc.w[3];
    size_t y = 4 * (size_t)desc.y[0] * (size_t)desc.y[1] * (size_t)desc.y[2] * (size_t)desc.y[3];
    (*c)->bytes[desc.arg_x] = x, (*c)->bytes[desc.arg_w] = w, (*c)->bytes[desc.arg_y] = y;
    *ws = 0;
    return 0;
}
static void emu_conv_free(DlCudaDev *d, DlDevConv *c) { free(c); } /* the DlConv belongs to the DlLib */
static int emu_conv_run(DlCudaDev *d, DlDevConv *c, DlDevPtr a, DlDevPtr b, DlDevPtr y, DlDevPtr ws, size_t wsn,
                        int stream, char **err)
{
    EmuOp o = {.kind = OP_CONV, .conv = c, .p = {a, b, y}};
    return submit(E(d), stream, &o, err);
}
static int emu_gemm(DlCudaDev *d, const int64_t i[5], DlDevPtr a, DlDevPtr b, DlDevPtr y, int stream, char **err)
{
    DlGemmArgs g;
    if (dl_gemm_args(i, &g, err) != 0) return -1;
    EmuOp o = {.kind = OP_GEMM, .p = {a, b, y}};
    memcpy(o.mi, i, sizeof o.mi);
    return submit(E(d), stream, &o, err);
}
static int emu_lib_ready(DlCudaDev *d, char **err)
{
    dl_lib_finalize(E(d)->lib);
    return 0;
}

static int emu_coll_init(DlCudaDev *d, DlComm *comm, char **err)
{
    E(d)->comm = comm;
    return 0;
}
/* Queued as an operation: it runs, in issue order, at the next synchronisation. */
static int emu_coll_allreduce(DlCudaDev *d, DlDevPtr x, DlDevPtr y, int64_t n, int stream, char **err)
{
    Emu *e = E(d);
    if (!e->comm) {
        *err = dl_xstrdup("ncclAllReduce (emulated CUDA device): no communicator (coll_init was not called)");
        return -1;
    }
    EmuOp o = {.kind = OP_ALLREDUCE, .p = {x, y}, .n = (size_t)n};
    return submit(e, stream, &o, err);
}
static void emu_coll_free(DlCudaDev *d) { E(d)->comm = NULL; }

static void emu_close(DlCudaDev *d)
{
    if (!d) return;
    Emu *e = E(d);
    drain(e);
    free(e->pending.ops);
    for (int i = 0; i < e->nmem; i++) free((void *)e->mem[i].base);
    for (int s = 0; s < DL_CUDA_NSTREAMS; s++) emu_graph_free(d, e->capture[s]);
    free(e->mem), free(e->pin);
    dl_lib_free(e->lib);
    free(e);
    free(d);
}

DlCudaDev *dl_cuda_emu_open(int nthreads, char **why)
{
    static const char *const orders[] = {"forward", "reverse", "shuffle"};
    const char *o = getenv("DLDL_CUDA_EMU_ORDER");
    int order = o && *o ? dl_enum_lookup(orders, 3, o) : 0;
    if (order < 0) {
        *why = dl_xasprintf("DLDL_CUDA_EMU_ORDER is '%s'; it takes forward, reverse or shuffle", o);
        return NULL;
    }
    Emu *e = dl_xcalloc(1, sizeof *e);
    e->order = order;
    if (!(e->lib = dl_lib_new(nthreads > 0 ? nthreads : omp_get_max_threads(), why))) {
        free(e);
        return NULL;
    }
    DlCudaDev *d = dl_xcalloc(1, sizeof *d);
    *d = (DlCudaDev){
        .kind = DL_CUDA_EMULATED, .impl = e,
        .mem_alloc = emu_alloc, .mem_free = emu_free, .host_register = emu_host_register,
        .host_unregister = emu_host_unregister, .copy_h2d = emu_h2d, .copy_d2h = emu_d2h, .copy_d2d = emu_d2d,
        .memset32 = emu_memset32,
        .module_load = emu_module_load, .module_unload = emu_module_unload, .launch = emu_launch,
        .event_new = emu_event_new, .event_free = emu_event_free, .event_record = emu_event_record,
        .stream_wait = emu_stream_wait, .event_ms = emu_event_ms, .stream_sync = emu_stream_sync,
        .graph_begin = emu_graph_begin, .graph_end = emu_graph_end, .graph_launch = emu_graph_launch,
        .graph_free = emu_graph_free, .conv_new = emu_conv_new, .conv_free = emu_conv_free, .conv_run = emu_conv_run,
        .gemm = emu_gemm, .lib_ready = emu_lib_ready, .coll_init = emu_coll_init,
        .coll_allreduce = emu_coll_allreduce, .coll_free = emu_coll_free, .close = emu_close,
    };
    snprintf(d->info.name, sizeof d->info.name, "%s, thread order %s", EMU_NAME, orders[order]);
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    d->info.total_mem = pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
    d->info.emulated = 1;
    return d;
}
