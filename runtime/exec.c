/* exec.c - the plan executor (exec.h). */
#include "exec.h"

#include <inttypes.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../codegen/kir_plan.h"
#include "../common/util.h"
#include "comm.h"
#include "cuda_exec.h"
#include "data.h"

/* Purpose code of parameter initialisation for dl_rng_uniform (rng.c lists
 * the data pipeline's 0 and 1). */
#define RNG_PURPOSE_INIT 2
#define PROF_MAX 512 /* timing samples kept per step (the most recent) */

typedef struct XStep {
    int kind;                       /* DlStepKind */
    DlKernelFn fn;                  /* DL_STEP_KERNEL */
    int64_t grid;
    int serial;                     /* too little work to split */
    float *b[DL_STEP_MAX_ARGS];     /* resolved arguments */
    DlConv *conv;                   /* DL_STEP_CONV_* */
    int64_t n;                      /* DL_STEP_ALLREDUCE_START: floats summed */
    const DlPlanStep *src;
} XStep;

typedef struct XProg {
    XStep *steps;
    int n;
    double *prof;                   /* [n][PROF_MAX] seconds, when profiling */
    int64_t runs;
} XProg;

struct DlExec {
    const DlPlan *plan;
    float *arena[DL_AR_COUNT];
    DlJit jit;
    DlLib *lib;
    XProg *prog;
    int nthreads, profile, debug;
    DlComm *comm;                   /* NULL: one process */
    double *scratch;                /* PROF_MAX doubles for the medians */
    DlCudaExec *cuda;               /* --device cuda | cuda-emu: the programs run there */
};

const char *const dl_device_name[DL_DEVICE_COUNT] = {
#define X(e, n) n,
    DL_DEVICES(X)
#undef X
};

static const char *const KIND_NAME[] = {"kernel", "conv forward", "conv backward data",
                                        "conv backward weights", "matmul", "all-reduce start", "all-reduce wait"};
_Static_assert(sizeof KIND_NAME / sizeof *KIND_NAME == DL_STEP_COUNT, "a name per step kind");

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* A zeroed arena of nfloats, or NULL: 64-byte aligned, or (align = a page,
 * for a CUDA device) whole pages, so that pinning one arena never pins a page
 * of another (cuMemHostRegister refuses pages already registered). */
static float *arena_alloc(int64_t nfloats, size_t align)
{
    if (nfloats < 0 || (uint64_t)nfloats > (SIZE_MAX - align) / sizeof(float)) return NULL;
    size_t bytes = ((size_t)(nfloats > 0 ? nfloats : 1) * sizeof(float) + align - 1) & ~(align - 1);
    void *p;
    if (posix_memalign(&p, align, bytes) != 0) return NULL;
    memset(p, 0, bytes);
    return p;
}

/* The memory the arenas may take: $DLDL_MEMORY_LIMIT bytes, else the
 * machine's physical memory. */
static uint64_t memory_limit(void)
{
    const char *s = getenv("DLDL_MEMORY_LIMIT");
    if (s && *s) {
        char *end;
        unsigned long long v = strtoull(s, &end, 10);
        if (*end == 0 && v > 0) return v;
    }
    long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
    return pages > 0 && size > 0 ? (uint64_t)pages * (uint64_t)size : UINT64_MAX;
}

/* "1.5 GiB", "12.0 MiB", "300 bytes" (a static buffer of each caller's). */
static const char *human(uint64_t bytes, char *buf, size_t n)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB"};
    double v = (double)bytes;
    int u = 0;
    while (v >= 1024 && u < 4) v /= 1024, u++;
    if (u == 0) snprintf(buf, n, "%llu bytes", (unsigned long long)bytes);
    else snprintf(buf, n, "%.1f %s", v, unit[u]);
    return buf;
}

/* Allocate every arena, or say which one does not fit. */
static int alloc_arenas(DlExec *e, size_t align, char **err)
{
    const DlPlan *p = e->plan;
    uint64_t total = 0, limit = memory_limit();
    int big = 0;
    for (int a = 0; a < DL_AR_COUNT; a++) {
        total += (uint64_t)p->arena_size[a] * sizeof(float);
        if (p->arena_size[a] > p->arena_size[big]) big = a;
    }
    char t[32], l[32], b[32];
    if (total > limit) {
        *err = dl_xasprintf("the plan's arenas take %s, more than the %s %s (the largest, '%s', takes %s: lower "
                            "the batch size in the spec)",
                            human(total, t, sizeof t), human(limit, l, sizeof l),
                            getenv("DLDL_MEMORY_LIMIT") ? "DLDL_MEMORY_LIMIT allows" : "this machine has",
                            dl_arena_name[big], human((uint64_t)p->arena_size[big] * sizeof(float), b, sizeof b));
        return -1;
    }
    for (int a = 0; a < DL_AR_COUNT; a++) {
        e->arena[a] = arena_alloc(p->arena_size[a], align);
        if (!e->arena[a]) {
            *err = dl_xasprintf("out of memory allocating arena '%s' (%s)", dl_arena_name[a],
                                human((uint64_t)p->arena_size[a] * sizeof(float), b, sizeof b));
            return -1;
        }
    }
    return 0;
}

static const char *tensor_name(const DlPlan *p, int t)
{
    const char *n = p->tensors[t].name;
    return n && *n ? n : "(temporary)";
}

/* A CUDA device's copy of arena a back on the host (cuda_exec.h); a failure
 * is reported here and again by the next run (device errors are sticky). */
static void cuda_host(const DlExec *e, int a)
{
    char *err = NULL;
    if (dl_cuda_exec_host(e->cuda, a, &err) != 0) {
        fprintf(stderr, "dldlrun: reading arena '%s' back from the device: %s\n", dl_arena_name[a], err);
        free(err);
    }
}

float *dl_exec_tensor(const DlExec *e, int t)
{
    const DlPlanTensor *x = &e->plan->tensors[t];
    if (e->cuda) cuda_host(e, x->arena);
    return e->arena[x->arena] + x->offset;
}

float *const *dl_exec_arenas(const DlExec *e)
{
    for (int a = 0; e->cuda && a < DL_AR_COUNT; a++) cuda_host(e, a);
    return e->arena;
}

const char *dl_exec_device(const DlExec *e) { return e->cuda ? dl_cuda_exec_info(e->cuda, NULL, NULL)->name : "cpu"; }
const DlJit *dl_exec_jit(const DlExec *e) { return &e->jit; }
int dl_exec_threads(const DlExec *e) { return e->nthreads; }

int dl_all_finite(const float *x, int64_t n)
{
    int ok = 1;
    for (int64_t i = 0; i < n; i++) ok &= isfinite(x[i]) != 0;
    return ok;
}

char *dl_exec_check_lib_step(const DlPlan *p, const DlPlanStep *s, int si, const char *pname)
{
    const int64_t *g = s->i;
    int64_t want[3];
    if (s->kind == DL_STEP_MATMUL) {
        want[0] = g[0] * g[2], want[1] = g[2] * g[1], want[2] = g[0] * g[1];
        if (g[0] <= 0 || g[1] <= 0 || g[2] <= 0) want[0] = -1;
    } else {
        int64_t x = g[0] * g[1] * g[2] * g[3], w = g[4] * g[1] * g[5] * g[6], y = g[0] * g[4] * g[9] * g[10];
        int64_t byk[3][3] = {{x, w, y}, {y, w, x}, {x, y, w}};
        memcpy(want, byk[s->kind - DL_STEP_CONV_FWD], sizeof want);
        if (g[7] <= 0 || g[8] < 0 || g[11] < 0 || g[11] > 1024) want[0] = -1;
    }
    if (s->nargs != 3)
        return dl_xasprintf("program '%s' step %d '%s': %s takes 3 tensors, the plan gives %d", pname, si,
                            s->label ? s->label : "", KIND_NAME[s->kind], s->nargs);
    for (int k = 0; k < 3; k++)
        if (p->tensors[s->args[k]].numel != want[k])
            return dl_xasprintf("program '%s' step %d '%s': %s argument %d (tensor '%s') has %" PRId64
                                " elements, its geometry needs %" PRId64,
                                pname, si, s->label ? s->label : "", KIND_NAME[s->kind], k,
                                tensor_name(p, s->args[k]), p->tensors[s->args[k]].numel, want[k]);
    return NULL;
}

static int resolve(DlExec *e, const DlExecOpts *o, char **err)
{
    const DlPlan *p = e->plan;
    e->prog = dl_xcalloc((size_t)(p->nprograms ? p->nprograms : 1), sizeof *e->prog);
    for (int pi = 0; pi < p->nprograms; pi++) {
        const DlPlanProgram *pr = &p->programs[pi];
        XProg *xp = &e->prog[pi];
        xp->n = pr->nsteps;
        xp->steps = dl_xcalloc((size_t)(pr->nsteps ? pr->nsteps : 1), sizeof *xp->steps);
        if (o->profile) xp->prof = dl_xcalloc((size_t)(pr->nsteps ? pr->nsteps : 1) * PROF_MAX, sizeof(double));
        for (int si = 0; si < pr->nsteps; si++) {
            const DlPlanStep *s = &pr->steps[si];
            XStep *x = &xp->steps[si];
            x->kind = s->kind;
            x->src = s;
            x->grid = s->grid;
            int64_t touched = 0;
            for (int k = 0; k < s->nargs; k++) {
                x->b[k] = dl_exec_tensor(e, s->args[k]);
                touched += p->tensors[s->args[k]].numel;
            }
            if (s->kind == DL_STEP_KERNEL) {
                const DlPlanKernel *k = &p->kernels[s->kernel];
                if (k->nargs != s->nargs) {
                    *err = dl_xasprintf("program '%s' step %d: kernel '%s' takes %d buffers, the step gives %d",
                                        pr->name, si, k->name, k->nargs, s->nargs);
                    return -1;
                }
                x->fn = e->jit.fn[s->kernel];
                x->serial = s->grid < 2 * e->nthreads || touched < DL_EXEC_SERIAL_FLOATS;
            } else if (s->kind == DL_STEP_MATMUL || (s->kind >= DL_STEP_CONV_FWD && s->kind <= DL_STEP_CONV_BWD_FILTER)) {
                if ((*err = dl_exec_check_lib_step(p, s, si, pr->name))) return -1;
                if (s->kind != DL_STEP_MATMUL) {
                    char *cerr = NULL;
                    x->conv = dl_conv_create(e->lib, s->kind, s->i, o->layout, &cerr);
                    if (!x->conv) {
                        *err = dl_xasprintf("program '%s' step %d '%s': %s", pr->name, si,
                                            s->label ? s->label : "", cerr);
                        free(cerr);
                        return -1;
                    }
                }
            } else if (s->kind == DL_STEP_ALLREDUCE_START) { /* the plan verifier checked tensors and region */
                if (s->nargs == 0) {
                    x->b[0] = x->b[1] = e->arena[s->i[0]] + s->i[1];
                    x->n = s->i[2];
                } else {
                    x->n = p->tensors[s->args[0]].numel;
                }
            } else if (s->kind == DL_STEP_ALLREDUCE_WAIT) {
            } else {
                *err = dl_xasprintf("program '%s' step %d: unknown step kind %d (plan from a newer dldlc?)",
                                    pr->name, si, s->kind);
                return -1;
            }
        }
    }
    dl_lib_finalize(e->lib);
    return 0;
}

/* The constants into their arena. */
static void load_consts(DlExec *e)
{
    const DlPlan *p = e->plan;
    for (int t = 0; t < p->ntensors; t++) {
        const DlPlanTensor *x = &p->tensors[t];
        if (x->role == DL_ROLE_CONST && x->data)
            memcpy(e->arena[x->arena] + x->offset, x->data, (size_t)x->numel * sizeof(float));
    }
}

/* --device cuda | cuda-emu: host arenas as staging, the programs on the device. */
static DlExec *load_cuda(DlExec *e, const DlExecOpts *o, char **err)
{
    long page = sysconf(_SC_PAGESIZE);
    if (alloc_arenas(e, page > 64 ? (size_t)page : 64, err) != 0) {
        dl_exec_free(e);
        return NULL;
    }
    load_consts(e);
    DlCudaDev *dev = dl_cuda_open(o->device == DL_DEVICE_CUDA_EMU ? DL_CUDA_EMULATED : DL_CUDA_REAL, e->nthreads, err);
    if (!dev) {
        dl_exec_free(e);
        return NULL;
    }
    const char *g = getenv("DLDL_CUDA_GRAPH");
    DlCudaExecOpts co = {.profile = o->profile, .graphs = !(g && !strcmp(g, "0")), .debug = o->debug,
                         .comm = o->comm};
    if (!(e->cuda = dl_cuda_exec_load(e->plan, dev, e->arena, &co, err))) {
        dl_exec_free(e);
        return NULL;
    }
    dl_cuda_exec_info(e->cuda, &e->jit.cache_hit, &e->jit.compile_s);
    return e;
}

DlExec *dl_exec_load(const DlPlan *p, const DlExecOpts *o, char **err)
{
    DlExec *e = dl_xcalloc(1, sizeof *e);
    e->plan = p;
    e->nthreads = o->nthreads > 0 ? o->nthreads : omp_get_max_threads();
    e->profile = o->profile;
    e->debug = o->debug;
    e->comm = o->comm;
    omp_set_num_threads(e->nthreads); /* our kernels and oneDNN share the team */
    if (o->device != DL_DEVICE_CPU) return load_cuda(e, o, err);
    /* every kernel decoded, proven inside its buffers and checked against its
       steps before anything is allocated; the C is rendered here, from the IR */
    KirModule km;
    if (kir_module_load(p, &km, err) != 0) {
        char *why = *err;
        *err = dl_xasprintf("plan refused: %s; re-run dldlc on the spec to regenerate it", why);
        free(why);
        free(e);
        return NULL;
    }
    char *source = kir_module_source(&km, 0);
    kir_module_free(&km);
    if (alloc_arenas(e, 64, err) != 0) {
        free(source);
        dl_exec_free(e);
        return NULL;
    }
    load_consts(e);
    const char **names = dl_xcalloc((size_t)(p->nkernels ? p->nkernels : 1), sizeof *names);
    for (int k = 0; k < p->nkernels; k++) names[k] = p->kernels[k].name;
    char *jerr = NULL;
    int rc = dl_jit_load(source, names, p->nkernels, &e->jit, &jerr);
    free(names);
    free(source);
    if (rc != 0) {
        *err = jerr;
        dl_exec_free(e);
        return NULL;
    }
    e->lib = dl_lib_new(e->nthreads, err);
    if (!e->lib || resolve(e, o, err) != 0) {
        dl_exec_free(e);
        return NULL;
    }
    e->scratch = dl_xcalloc(PROF_MAX, sizeof(double));
    return e;
}

void dl_exec_free(DlExec *e)
{
    if (!e) return;
    if (e->prog)
        for (int pi = 0; pi < e->plan->nprograms; pi++) {
            free(e->prog[pi].steps);
            free(e->prog[pi].prof);
        }
    free(e->prog);
    dl_cuda_exec_free(e->cuda); /* before the host arenas it pinned */
    dl_lib_free(e->lib);
    dl_jit_close(&e->jit);
    for (int a = 0; a < DL_AR_COUNT; a++) free(e->arena[a]);
    free(e->scratch);
    free(e);
}

void dl_exec_init_params(DlExec *e, uint64_t seed)
{
    const DlPlan *p = e->plan;
    for (int t = 0; t < p->ntensors; t++) {
        const DlPlanTensor *x = &p->tensors[t];
        float *v = dl_exec_tensor(e, t);
        switch (x->role) {
        case DL_ROLE_PARAM: {
            uint64_t key = dl_hash64(x->name ? x->name : "", x->name ? strlen(x->name) : 0);
            if (x->init == DL_INIT_ZEROS || x->init == DL_INIT_ONES) {
                for (int64_t i = 0; i < x->numel; i++) v[i] = x->init == DL_INIT_ONES ? 1.0f : 0.0f;
            } else {
                float bound = x->fan_in > 0 ? 1.0f / sqrtf((float)x->fan_in) : 0.0f;
                for (int64_t i = 0; i < x->numel; i++)
                    v[i] = bound * (2.0f * dl_rng_uniform(seed, key, (uint64_t)i, RNG_PURPOSE_INIT) - 1.0f);
            }
            break;
        }
        case DL_ROLE_STATE:
        case DL_ROLE_DATA_STATS:
            /* batch norm running statistics and input feature statistics [2,C]: mean 0, var 1
               (the runtime writes the features' own before training: dl_data_feature_stats) */
            memset(v, 0, (size_t)x->numel * sizeof *v);
            if (x->ndim == 2 && x->shape[0] == 2)
                for (int64_t c = 0; c < x->shape[1]; c++) v[x->shape[1] + c] = 1.0f;
            break;
        case DL_ROLE_GRAD:
        case DL_ROLE_MOMENTUM:
            memset(v, 0, (size_t)x->numel * sizeof *v);
            break;
        default: break;
        }
    }
}

static void run_kernel(const XStep *s, int nthreads)
{
    if (s->serial) {
        s->fn(s->b, 0, s->grid);
        return;
    }
    int64_t grid = s->grid;
#pragma omp parallel for schedule(static) num_threads(nthreads)
    for (int c = 0; c < nthreads; c++) s->fn(s->b, grid * c / nthreads, grid * (c + 1) / nthreads);
}

/* DLDL_DEBUG=2: which arguments of a step are all finite (bit k = argument k). */
static unsigned finite_mask(const DlExec *e, const XStep *x)
{
    unsigned m = 0;
    for (int k = 0; k < x->src->nargs; k++)
        if (dl_all_finite(x->b[k], e->plan->tensors[x->src->args[k]].numel)) m |= 1u << k;
    return m;
}

/* Name the step that produced a non-finite value (an argument finite before
 * the step and not after), or the non-finite value it was given. */
static char *scan_step(const DlExec *e, const XStep *x, int si, unsigned before)
{
    const DlPlanStep *s = x->src;
    unsigned after = finite_mask(e, x), all = (1u << s->nargs) - 1;
    if (after == all) return NULL;
    int k = 0, produced = (before & ~after) != 0;
    while (!((produced ? before & ~after : ~after & all) >> k & 1)) k++;
    return dl_xasprintf("step %d '%s' (%s%s%s) %s a non-finite value %s its argument %d (tensor '%s')%s", si,
                        s->label ? s->label : "", KIND_NAME[s->kind], s->kind == DL_STEP_KERNEL ? " " : "",
                        s->kind == DL_STEP_KERNEL ? e->plan->kernels[s->kernel].name : "",
                        produced ? "wrote" : "was given", produced ? "to" : "in", k,
                        tensor_name(e->plan, s->args[k]),
                        produced ? "" : ", which no earlier step of this run produced (an input, parameter or state)");
}

int dl_exec_start(DlExec *e, int prog, char **err)
{
    return e->cuda ? dl_cuda_exec_start(e->cuda, prog, err) : dl_exec_run(e, prog, err);
}

int dl_exec_wait(DlExec *e, char **err) { return e->cuda ? dl_cuda_exec_wait(e->cuda, err) : 0; }

int dl_exec_run(DlExec *e, int prog, char **err)
{
    if (e->cuda) return dl_cuda_exec_run(e->cuda, prog, err);
    XProg *xp = &e->prog[prog];
    int64_t slot = xp->runs % PROF_MAX;
    for (int si = 0; si < xp->n; si++) {
        const XStep *s = &xp->steps[si];
        unsigned before = e->debug >= 2 ? finite_mask(e, s) : 0;
        double t0 = xp->prof ? now() : 0;
        switch (s->kind) {
        case DL_STEP_KERNEL: run_kernel(s, e->nthreads); break;
        case DL_STEP_MATMUL: dl_matmul(s->src->i, s->b[0], s->b[1], s->b[2]); break;
        case DL_STEP_ALLREDUCE_START:
            if (!e->comm) { /* one process: the sum over one rank */
                if (s->b[1] != s->b[0]) memcpy(s->b[1], s->b[0], (size_t)s->n * sizeof(float));
            } else if (dl_comm_iallreduce(e->comm, s->b[0], s->b[1], s->n, (int)s->src->i[3],
                                          s->src->label ? s->src->label : "all-reduce", err) != 0) {
                return -1;
            }
            break;
        case DL_STEP_ALLREDUCE_WAIT:
            if (e->comm && dl_comm_wait(e->comm, (int)s->src->i[3], err) != 0) return -1;
            break;
        default: {
            int st = 0;
            if (dl_conv_run(s->conv, s->b[0], s->b[1], s->b[2], &st) != 0) {
                *err = dl_xasprintf("step %d '%s' (%s): oneDNN failed with status %d", si,
                                    s->src->label ? s->src->label : "", KIND_NAME[s->kind], st);
                return -1;
            }
        }
        }
        dl_comm_poll(e->comm);
        if (xp->prof) xp->prof[(size_t)si * PROF_MAX + (size_t)slot] = now() - t0;
        if (e->debug >= 2 && (*err = scan_step(e, s, si, before))) return -1;
    }
    xp->runs++;
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

void dl_exec_profile(const DlExec *e, FILE *out)
{
    if (e->cuda) {
        dl_cuda_exec_profile(e->cuda, out);
        return;
    }
    const DlPlan *p = e->plan;
    for (int pi = 0; pi < p->nprograms; pi++) {
        const XProg *xp = &e->prog[pi];
        if (!xp->prof || xp->runs == 0) continue;
        int ns = (int)(xp->runs < PROF_MAX ? xp->runs : PROF_MAX);
        double *med = dl_xcalloc((size_t)(xp->n ? xp->n : 1), sizeof *med), total = 0;
        for (int si = 0; si < xp->n; si++) {
            memcpy(e->scratch, xp->prof + (size_t)si * PROF_MAX, (size_t)ns * sizeof(double));
            qsort(e->scratch, (size_t)ns, sizeof(double), cmp_double);
            med[si] = e->scratch[ns / 2];
            total += med[si];
        }
        fprintf(out, "profile of program '%s': median over %d runs, %d threads\n", p->programs[pi].name, ns,
                e->nthreads);
        fprintf(out, "  %-4s %-28s %-34s %9s %6s\n", "step", "label", "kind", "ms", "%");
        for (int si = 0; si < xp->n; si++) {
            const DlPlanStep *s = xp->steps[si].src;
            const char *kind = s->kind == DL_STEP_KERNEL ? p->kernels[s->kernel].name : KIND_NAME[s->kind];
            fprintf(out, "  %-4d %-28.28s %-34.34s %9.3f %6.1f\n", si, s->label ? s->label : "", kind,
                    1e3 * med[si], total > 0 ? 100.0 * med[si] / total : 0.0);
        }
        fprintf(out, "  %-68s %9.3f %6.1f\n", "total", 1e3 * total, 100.0);
        free(med);
    }
}
