/* cuda_exec.c - the CUDA backend's executor (cuda_exec.h). */
#include "cuda_exec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../codegen/kir_plan.h"
#include "../common/util.h"
#include "exec.h"

#define PROF_MAX 512 /* timing samples kept per step (the most recent) */

typedef struct CStep {
    int kind;                /* DlStepKind */
    DlDevKernel k;           /* DL_STEP_KERNEL */
    KirLaunch l;
    DlDevPtr argtab;         /* its device pointers, in the shared argument table */
    DlDevConv *conv;         /* DL_STEP_CONV_* */
    DlDevPtr a[3];           /* library steps: the three tensors; ALLREDUCE_START: x, y */
    int64_t n;               /* ALLREDUCE_START: floats summed */
    const DlPlanStep *src;
} CStep;

typedef struct Range { int64_t off, n; } Range;  /* floats of one arena */

typedef struct CProg {
    CStep *steps;
    int n;
    Range *in; int nin;      /* INPUT-arena tensors it reads, sent before each run */
    int64_t nin_floats;      /* their floats, packed in the staging buffer in this order */
    Range *out; int nout;    /* activation-arena outputs, brought back after each run */
    DlDevGraph *graph;       /* captured after the first run */
    int ncoll;               /* collective steps: never captured */
    int64_t runs;
    DlDevEvent **ev;         /* [n + 1] with profiling */
    float *prof;             /* [n][PROF_MAX] ms */
} CProg;

enum { SYNCED, HOST_NEWER, DEVICE_NEWER };

struct DlCudaExec {
    const DlPlan *plan;
    DlCudaDev *dev;
    float *const *host;
    DlDevPtr arena[DL_AR_COUNT];
    int state[DL_AR_COUNT];
    int pinned[DL_AR_COUNT];
    DlDevModule *mod;
    DlDevKernel *kernels;
    DlDevPtr argtab, ws;
    size_t ws_bytes;
    DlDevEvent *inputs_ready;
    CProg *prog;
    DlCudaExecOpts o;
    float *stage;            /* pinned: a run's inputs, snapshotted so the host may feed the next batch */
    int64_t stage_n;
    int busy;                /* a run started and not yet waited for */
    int busy_prog;
    float *scan;             /* debug >= 2: pinned host copy of one step argument */
    int64_t scan_n;
    int cache_hit;
    double compile_s;
    int coll;                /* coll_init done: ALLREDUCE_START sums over the ranks */
};

DlCudaDev *dl_cuda_open(DlCudaKind kind, int nthreads, char **why)
{
    return kind == DL_CUDA_EMULATED ? dl_cuda_emu_open(nthreads, why) : dl_cuda_real_open(why);
}

/* Zeroed host memory of whole pages, to be pinned (no page shared with another
 * registration), or the process ends as dl_xcalloc does. */
static void *page_alloc(size_t bytes)
{
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096, n = ((bytes ? bytes : 1) + page - 1) & ~(page - 1);
    void *p;
    if (posix_memalign(&p, page, n) != 0) {
        fprintf(stderr, "dldlrun: out of memory (%zu bytes)\n", n);
        exit(1);
    }
    memset(p, 0, n);
    return p;
}

static DlDevPtr dptr(const DlCudaExec *x, int t)
{
    const DlPlanTensor *v = &x->plan->tensors[t];
    return x->arena[v->arena] + (DlDevPtr)v->offset * sizeof(float);
}

static size_t arena_bytes(const DlPlan *p, int a) { return (size_t)(p->arena_size[a] > 0 ? p->arena_size[a] : 1) * 4; }

/* Add tensor t's floats to the ranges (no duplicates). */
static void add_range(Range **r, int *n, const DlPlanTensor *t)
{
    for (int i = 0; i < *n; i++)
        if ((*r)[i].off == t->offset && (*r)[i].n == t->numel) return;
    *r = dl_xrealloc(*r, (size_t)(*n + 1) * sizeof **r);
    (*r)[(*n)++] = (Range){t->offset, t->numel};
}

/* Plan the steps of program pi: launch shapes, argument tables (filled into
 * tab at *ntab), library calls. */
static int plan_program(DlCudaExec *x, const KirModule *km, int pi, DlDevPtr *tab, int *ntab, char **err)
{
    const DlPlan *p = x->plan;
    const DlPlanProgram *pr = &p->programs[pi];
    CProg *cp = &x->prog[pi];
    cp->n = pr->nsteps;
    cp->steps = dl_xcalloc((size_t)(pr->nsteps ? pr->nsteps : 1), sizeof *cp->steps);
    for (int si = 0; si < pr->nsteps; si++) {
        const DlPlanStep *s = &pr->steps[si];
        CStep *c = &cp->steps[si];
        c->kind = s->kind;
        c->src = s;
        const char *label = s->label ? s->label : "";
        for (int k = 0; k < s->nargs; k++)
            if (p->tensors[s->args[k]].arena == DL_AR_INPUT) add_range(&cp->in, &cp->nin, &p->tensors[s->args[k]]);
        switch (s->kind) {
        case DL_STEP_KERNEL: {
            const DlPlanKernel *k = &p->kernels[s->kernel];
            char *why = NULL;
            if (k->nargs != s->nargs) {
                *err = dl_xasprintf("program '%s' step %d: kernel '%s' takes %d buffers, the step gives %d", pr->name,
                                    si, k->name, k->nargs, s->nargs);
                return -1;
            }
            if (kir_cuda_launch(&km->k[s->kernel], s->grid, &c->l, &why) != 0) {
                *err = dl_xasprintf("program '%s' step %d '%s': %s", pr->name, si, label, why);
                free(why);
                return -1;
            }
            c->k = x->kernels[s->kernel];
            c->argtab = x->argtab + (DlDevPtr)*ntab * sizeof(DlDevPtr);
            for (int a = 0; a < s->nargs; a++) tab[(*ntab)++] = dptr(x, s->args[a]);
            break;
        }
        case DL_STEP_CONV_FWD:
        case DL_STEP_CONV_BWD_DATA:
        case DL_STEP_CONV_BWD_FILTER:
        case DL_STEP_MATMUL: {
            if ((*err = dl_exec_check_lib_step(p, s, si, pr->name))) return -1;
            for (int a = 0; a < 3; a++) c->a[a] = dptr(x, s->args[a]);
            if (s->kind == DL_STEP_MATMUL) break;
            size_t ws = 0;
            char *why = NULL;
            if (x->dev->conv_new(x->dev, s->kind, s->i, &c->conv, &ws, &why) != 0) {
                *err = dl_xasprintf("program '%s' step %d '%s': %s", pr->name, si, label, why);
                free(why);
                return -1;
            }
            if (ws > x->ws_bytes) x->ws_bytes = ws;
            break;
        }
        case DL_STEP_ALLREDUCE_START: /* the plan verifier checked tensors and region */
            if (s->nargs == 0) {
                c->a[0] = c->a[1] = x->arena[s->i[0]] + (DlDevPtr)s->i[1] * sizeof(float);
                c->n = s->i[2];
            } else {
                c->a[0] = dptr(x, s->args[0]), c->a[1] = dptr(x, s->args[1]);
                c->n = p->tensors[s->args[0]].numel;
            }
            cp->ncoll++;
            break;
        case DL_STEP_ALLREDUCE_WAIT: /* stream-ordered: nothing for the host to do */
            cp->ncoll++;
            break;
        default:
            *err = dl_xasprintf("program '%s' step %d '%s': step kind %d has no CUDA implementation (the CUDA "
                                "backend runs kernel, convolution, matmul and all-reduce steps; run it with "
                                "--device cpu)",
                                pr->name, si, label, s->kind);
            return -1;
        }
    }
    for (int i = 0; i < cp->nin; i++) cp->nin_floats += cp->in[i].n;
    if (cp->nin_floats > x->stage_n) x->stage_n = cp->nin_floats;
    for (int i = 0; i < p->noutputs; i++) {
        const DlPlanOutput *o = &p->outputs[i];
        if (o->program == pi && o->tensor >= 0 && o->tensor < p->ntensors && p->tensors[o->tensor].arena == DL_AR_ACT)
            add_range(&cp->out, &cp->nout, &p->tensors[o->tensor]);
    }
    if (x->o.profile) {
        cp->ev = dl_xcalloc((size_t)cp->n + 1, sizeof *cp->ev);
        for (int i = 0; i <= cp->n; i++)
            if (x->dev->event_new(x->dev, &cp->ev[i], err) != 0) return -1;
        cp->prof = dl_xcalloc((size_t)(cp->n ? cp->n : 1) * PROF_MAX, sizeof *cp->prof);
    }
    return 0;
}

/* "the plan's arenas take 3.1 GiB, more than the 2.0 GiB of GPU 0 (NAME)" */
static int fits(const DlCudaExec *x, char **err)
{
    uint64_t total = 0;
    for (int a = 0; a < DL_AR_COUNT; a++) total += arena_bytes(x->plan, a);
    if (total <= x->dev->info.total_mem) return 0;
    *err = dl_xasprintf("the plan's arenas take %.1f MiB, more than the %.1f MiB of %s (lower the batch size in the "
                        "spec)", (double)total / 1048576.0, (double)x->dev->info.total_mem / 1048576.0,
                        x->dev->info.name);
    return -1;
}

DlCudaExec *dl_cuda_exec_load(const DlPlan *p, DlCudaDev *dev, float *const host[DL_AR_COUNT],
                              const DlCudaExecOpts *o, char **err)
{
    DlCudaExec *x = dl_xcalloc(1, sizeof *x);
    x->plan = p, x->dev = dev, x->host = host, x->o = *o;
    x->prog = dl_xcalloc((size_t)(p->nprograms ? p->nprograms : 1), sizeof *x->prog);
    KirModule km = {0};
    DlDevPtr *tab = NULL;
    int ntab = 0, loaded = 0;
    if (kir_module_load(p, &km, err) != 0) {
        char *why = *err;
        *err = dl_xasprintf("plan refused: %s; re-run dldlc on the spec to regenerate it", why);
        free(why);
        goto fail;
    }
    loaded = 1;
    if (fits(x, err) != 0) goto fail;
    for (int a = 0; a < DL_AR_COUNT; a++) {
        size_t n = arena_bytes(p, a);
        if (dev->mem_alloc(dev, n, &x->arena[a], err) != 0) goto fail;
        if (dev->host_register(dev, host[a], n, err) != 0) goto fail;
        x->pinned[a] = 1;
        if (dev->copy_h2d(dev, x->arena[a], host[a], n, DL_CUDA_COMPUTE, err) != 0) goto fail;
    }
    /* the module, compiled for this device */
    char *source = kir_module_source(&km, 1);
    const char **names = dl_xcalloc((size_t)(p->nkernels ? p->nkernels : 1), sizeof *names);
    for (int k = 0; k < p->nkernels; k++) names[k] = p->kernels[k].name;
    x->kernels = dl_xcalloc((size_t)(p->nkernels ? p->nkernels : 1), sizeof *x->kernels);
    int rc = dev->module_load(dev, source, names, p->nkernels, &x->mod, x->kernels, &x->cache_hit, &x->compile_s, err);
    free(names);
    free(source);
    if (rc != 0) goto fail;
    /* one argument table for every kernel step of every program */
    int64_t nargs = 0;
    for (int pi = 0; pi < p->nprograms; pi++)
        for (int si = 0; si < p->programs[pi].nsteps; si++)
            if (p->programs[pi].steps[si].kind == DL_STEP_KERNEL) nargs += p->programs[pi].steps[si].nargs;
    tab = page_alloc((size_t)(nargs ? nargs : 1) * sizeof *tab);
    if (dev->mem_alloc(dev, (size_t)(nargs ? nargs : 1) * sizeof *tab, &x->argtab, err) != 0) goto fail;
    for (int pi = 0; pi < p->nprograms; pi++)
        if (plan_program(x, &km, pi, tab, &ntab, err) != 0) goto fail;
    if (dev->host_register(dev, tab, (size_t)(nargs ? nargs : 1) * sizeof *tab, err) != 0 ||
        dev->copy_h2d(dev, x->argtab, tab, (size_t)(nargs ? nargs : 1) * sizeof *tab, DL_CUDA_COMPUTE, err) != 0 ||
        dev->stream_sync(dev, DL_CUDA_COMPUTE, err) != 0)
        goto fail;
    dev->host_unregister(dev, tab);
    if (dev->lib_ready(dev, err) != 0) goto fail;
    int ncoll = 0;
    for (int pi = 0; pi < p->nprograms; pi++) ncoll += x->prog[pi].ncoll;
    if (ncoll && o->comm) { /* NCCL's communicator over the MPI ranks */
        if (dev->coll_init(dev, o->comm, err) != 0) goto fail;
        x->coll = 1;
    }
    if (x->ws_bytes && dev->mem_alloc(dev, x->ws_bytes, &x->ws, err) != 0) goto fail;
    if (dev->event_new(dev, &x->inputs_ready, err) != 0) goto fail;
    x->stage = page_alloc((size_t)(x->stage_n ? x->stage_n : 1) * sizeof *x->stage);
    if (dev->host_register(dev, x->stage, (size_t)(x->stage_n ? x->stage_n : 1) * sizeof *x->stage, err) != 0) {
        free(x->stage);
        x->stage = NULL;
        goto fail;
    }
    if (o->debug >= 2) { /* the largest tensor, for the per-step scan */
        for (int t = 0; t < p->ntensors; t++)
            if (p->tensors[t].numel > x->scan_n) x->scan_n = p->tensors[t].numel;
        x->scan = page_alloc((size_t)(x->scan_n ? x->scan_n : 1) * sizeof *x->scan);
        if (dev->host_register(dev, x->scan, (size_t)(x->scan_n ? x->scan_n : 1) * sizeof *x->scan, err) != 0) {
            free(x->scan);
            x->scan = NULL;
            goto fail;
        }
    }
    free(tab);
    kir_module_free(&km);
    return x;
fail:
    if (tab) dev->host_unregister(dev, tab);
    free(tab);
    if (loaded) kir_module_free(&km);
    dl_cuda_exec_free(x);
    return NULL;
}

void dl_cuda_exec_free(DlCudaExec *x)
{
    if (!x) return;
    DlCudaDev *d = x->dev;
    for (int pi = 0; pi < x->plan->nprograms; pi++) {
        CProg *cp = &x->prog[pi];
        for (int si = 0; si < cp->n; si++)
            if (cp->steps[si].conv) d->conv_free(d, cp->steps[si].conv);
        if (cp->ev)
            for (int i = 0; i <= cp->n; i++)
                if (cp->ev[i]) d->event_free(d, cp->ev[i]);
        d->graph_free(d, cp->graph);
        free(cp->steps), free(cp->in), free(cp->out), free(cp->ev), free(cp->prof);
    }
    free(x->prog);
    if (x->inputs_ready) d->event_free(d, x->inputs_ready);
    if (x->scan) d->host_unregister(d, x->scan);
    free(x->scan);
    if (x->stage) d->host_unregister(d, x->stage);
    free(x->stage);
    d->module_unload(d, x->mod);
    free(x->kernels);
    for (int a = 0; a < DL_AR_COUNT; a++) {
        if (x->pinned[a]) d->host_unregister(d, x->host[a]);
        if (x->arena[a]) d->mem_free(d, x->arena[a]);
    }
    if (x->argtab) d->mem_free(d, x->argtab);
    if (x->ws) d->mem_free(d, x->ws);
    if (x->coll) d->coll_free(d);
    d->close(d);
    free(x);
}

/* Issue step si of cp on the compute stream. */
static int issue(DlCudaExec *x, const CStep *c, int si, char **err)
{
    DlCudaDev *d = x->dev;
    char *why = NULL;
    int rc;
    switch (c->kind) {
    case DL_STEP_KERNEL:
        rc = d->launch(d, c->k, &c->l, c->argtab, c->src->nargs, 0, c->src->grid, DL_CUDA_COMPUTE, &why);
        break;
    case DL_STEP_MATMUL: rc = d->gemm(d, c->src->i, c->a[0], c->a[1], c->a[2], DL_CUDA_COMPUTE, &why); break;
    case DL_STEP_ALLREDUCE_START:
        if (x->coll) rc = d->coll_allreduce(d, c->a[0], c->a[1], c->n, DL_CUDA_COMPUTE, &why);
        else rc = c->a[0] == c->a[1] ? 0 : d->copy_d2d(d, c->a[1], c->a[0], (size_t)c->n * 4, DL_CUDA_COMPUTE, &why);
        break;
    case DL_STEP_ALLREDUCE_WAIT: rc = 0; break;
    default: rc = d->conv_run(d, c->conv, c->a[0], c->a[1], c->a[2], x->ws, x->ws_bytes, DL_CUDA_COMPUTE, &why);
    }
    if (rc == 0) return 0;
    const DlPlanStep *s = c->src;
    *err = dl_xasprintf("step %d '%s'%s%s: %s", si, s->label ? s->label : "", s->kind == DL_STEP_KERNEL ? " kernel " : "",
                        s->kind == DL_STEP_KERNEL ? x->plan->kernels[s->kernel].name : "", why);
    free(why);
    return -1;
}

/* DLDL_DEBUG=2: which arguments of step c are all finite (bit k = argument
 * k), each brought back whole; -1 (all bits) with *err on a device error. */
static unsigned finite_mask(DlCudaExec *x, const CStep *c, char **err)
{
    DlCudaDev *d = x->dev;
    const DlPlanStep *s = c->src;
    unsigned m = 0;
    for (int k = 0; k < s->nargs; k++) {
        int64_t n = x->plan->tensors[s->args[k]].numel;
        if (d->copy_d2h(d, x->scan, dptr(x, s->args[k]), (size_t)n * 4, DL_CUDA_COMPUTE, err) != 0 ||
            d->stream_sync(d, DL_CUDA_COMPUTE, err) != 0)
            return ~0u;
        if (dl_all_finite(x->scan, n)) m |= 1u << k;
    }
    return m;
}

/* The exec.c message for the step that produced (or was given) a non-finite value. */
static char *scan_step(const DlCudaExec *x, const CStep *c, int si, unsigned before, unsigned after)
{
    const DlPlanStep *s = c->src;
    unsigned all = (1u << s->nargs) - 1;
    if (after == all) return NULL;
    int k = 0, produced = (before & ~after) != 0;
    while (!((produced ? before & ~after : ~after & all) >> k & 1)) k++;
    const char *name = x->plan->tensors[s->args[k]].name;
    return dl_xasprintf("step %d '%s'%s%s %s a non-finite value %s its argument %d (tensor '%s') on %s%s", si,
                        s->label ? s->label : "", s->kind == DL_STEP_KERNEL ? " kernel " : "",
                        s->kind == DL_STEP_KERNEL ? x->plan->kernels[s->kernel].name : "",
                        produced ? "wrote" : "was given", produced ? "to" : "in", k, name && *name ? name : "(temporary)",
                        x->dev->info.name,
                        produced ? "" : ", which no earlier step of this run produced (an input, parameter or state)");
}

static int issue_all(DlCudaExec *x, CProg *cp, int timed, char **err)
{
    DlCudaDev *d = x->dev;
    if (timed && d->event_record(d, cp->ev[0], DL_CUDA_COMPUTE, err) != 0) return -1;
    for (int si = 0; si < cp->n; si++) {
        unsigned before = 0;
        if (x->scan && (before = finite_mask(x, &cp->steps[si], err)) == ~0u) return -1;
        if (issue(x, &cp->steps[si], si, err) != 0) return -1;
        if (x->scan) {
            unsigned after = finite_mask(x, &cp->steps[si], err);
            if (after == ~0u || (*err = scan_step(x, &cp->steps[si], si, before, after))) return -1;
        }
        if (timed && d->event_record(d, cp->ev[si + 1], DL_CUDA_COMPUTE, err) != 0) return -1;
    }
    return 0;
}

int dl_cuda_exec_start(DlCudaExec *x, int prog, char **err)
{
    const DlPlan *p = x->plan;
    DlCudaDev *d = x->dev;
    CProg *cp = &x->prog[prog];
    if (dl_cuda_exec_wait(x, err) != 0) return -1;
    /* what the host wrote since the last run (initialisation, loaded weights) */
    for (int a = 0; a < DL_AR_COUNT; a++)
        if (x->state[a] == HOST_NEWER) {
            if (d->copy_h2d(d, x->arena[a], x->host[a], arena_bytes(p, a), DL_CUDA_COMPUTE, err) != 0) return -1;
            x->state[a] = SYNCED;
        }
    /* this batch's inputs: snapshotted into the pinned staging buffer (the host
       may feed the next batch at once), sent on the copy stream; the compute
       stream waits for them */
    int64_t at = 0;
    for (int i = 0; i < cp->nin; i++) {
        memcpy(x->stage + at, x->host[DL_AR_INPUT] + cp->in[i].off, (size_t)cp->in[i].n * 4);
        if (d->copy_h2d(d, x->arena[DL_AR_INPUT] + (DlDevPtr)cp->in[i].off * 4, x->stage + at, (size_t)cp->in[i].n * 4,
                        DL_CUDA_COPY, err) != 0)
            return -1;
        at += cp->in[i].n;
    }
    if (d->event_record(d, x->inputs_ready, DL_CUDA_COPY, err) != 0 ||
        d->stream_wait(d, DL_CUDA_COMPUTE, x->inputs_ready, err) != 0)
        return -1;
    if (cp->graph) {
        if (d->graph_launch(d, cp->graph, DL_CUDA_COMPUTE, err) != 0) return -1;
    } else if (x->o.graphs && !x->o.profile && !x->scan && !cp->ncoll && cp->runs >= 1) {
        /* the first run warmed the libraries up */
        if (d->graph_begin(d, DL_CUDA_COMPUTE, err) != 0) return -1;
        int rc = issue_all(x, cp, 0, err);
        char *why = NULL;
        if (d->graph_end(d, DL_CUDA_COMPUTE, &cp->graph, rc == 0 ? err : &why) != 0) rc = -1;
        free(why);
        if (rc != 0 || d->graph_launch(d, cp->graph, DL_CUDA_COMPUTE, err) != 0) return -1;
    } else if (issue_all(x, cp, x->o.profile, err) != 0) {
        return -1;
    }
    for (int i = 0; i < cp->nout; i++)
        if (d->copy_d2h(d, x->host[DL_AR_ACT] + cp->out[i].off, x->arena[DL_AR_ACT] + (DlDevPtr)cp->out[i].off * 4,
                        (size_t)cp->out[i].n * 4, DL_CUDA_COMPUTE, err) != 0)
            return -1;
    x->busy = 1, x->busy_prog = prog;
    return 0;
}

int dl_cuda_exec_wait(DlCudaExec *x, char **err)
{
    if (!x->busy) return 0;
    DlCudaDev *d = x->dev;
    CProg *cp = &x->prog[x->busy_prog];
    x->busy = 0;
    if (d->stream_sync(d, DL_CUDA_COMPUTE, err) != 0) return -1;
    static const int kept[] = {DL_AR_PARAM, DL_AR_GRAD, DL_AR_OPT, DL_AR_STATE};
    for (size_t i = 0; i < sizeof kept / sizeof *kept; i++) x->state[kept[i]] = DEVICE_NEWER;
    if (x->o.profile) {
        int64_t slot = cp->runs % PROF_MAX;
        for (int si = 0; si < cp->n; si++)
            if (d->event_ms(d, cp->ev[si], cp->ev[si + 1], &cp->prof[(size_t)si * PROF_MAX + (size_t)slot], err) != 0)
                return -1;
    }
    cp->runs++;
    return 0;
}

int dl_cuda_exec_run(DlCudaExec *x, int prog, char **err)
{
    return dl_cuda_exec_start(x, prog, err) != 0 ? -1 : dl_cuda_exec_wait(x, err);
}

int dl_cuda_exec_host(DlCudaExec *x, int a, char **err)
{
    if (a == DL_AR_INPUT || a == DL_AR_CONST) return 0; /* the host's: fed while a run is in flight */
    if (dl_cuda_exec_wait(x, err) != 0) return -1;
    if (a == DL_AR_ACT) return 0;
    if (x->state[a] == DEVICE_NEWER) {
        DlCudaDev *d = x->dev;
        if (d->copy_d2h(d, x->host[a], x->arena[a], arena_bytes(x->plan, a), DL_CUDA_COMPUTE, err) != 0 ||
            d->stream_sync(d, DL_CUDA_COMPUTE, err) != 0)
            return -1;
    }
    x->state[a] = HOST_NEWER;
    return 0;
}

const DlCudaInfo *dl_cuda_exec_info(const DlCudaExec *x, int *cache_hit, double *compile_s)
{
    if (cache_hit) *cache_hit = x->cache_hit;
    if (compile_s) *compile_s = x->compile_s;
    return &x->dev->info;
}

static int cmp_float(const void *a, const void *b)
{
    float u = *(const float *)a, v = *(const float *)b;
    return (u > v) - (u < v);
}

void dl_cuda_exec_profile(const DlCudaExec *x, FILE *out)
{
    const DlPlan *p = x->plan;
    static const char *const kind[] = {"kernel", "conv forward", "conv backward data", "conv backward weights",
                                       "matmul", "all-reduce start", "all-reduce wait"};
    _Static_assert(sizeof kind / sizeof *kind == DL_STEP_COUNT, "a name per step kind");
    float *tmp = dl_xcalloc(PROF_MAX, sizeof *tmp);
    for (int pi = 0; pi < p->nprograms; pi++) {
        const CProg *cp = &x->prog[pi];
        if (!cp->prof || cp->runs == 0) continue;
        int ns = (int)(cp->runs < PROF_MAX ? cp->runs : PROF_MAX);
        double *med = dl_xcalloc((size_t)(cp->n ? cp->n : 1), sizeof *med), total = 0;
        for (int si = 0; si < cp->n; si++) {
            memcpy(tmp, cp->prof + (size_t)si * PROF_MAX, (size_t)ns * sizeof *tmp);
            qsort(tmp, (size_t)ns, sizeof *tmp, cmp_float);
            total += med[si] = tmp[ns / 2];
        }
        fprintf(out, "profile of program '%s' on %s: median over %d runs, event times\n", p->programs[pi].name,
                x->dev->info.name, ns);
        fprintf(out, "  %-4s %-28s %-34s %9s %6s\n", "step", "label", "kind", "ms", "%");
        for (int si = 0; si < cp->n; si++) {
            const DlPlanStep *s = cp->steps[si].src;
            const char *k = s->kind == DL_STEP_KERNEL ? p->kernels[s->kernel].name : kind[s->kind];
            fprintf(out, "  %-4d %-28.28s %-34.34s %9.3f %6.1f\n", si, s->label ? s->label : "", k, med[si],
                    total > 0 ? 100.0 * med[si] / total : 0.0);
        }
        fprintf(out, "  %-68s %9.3f %6.1f\n", "total", total, 100.0);
        free(med);
    }
    free(tmp);
}
