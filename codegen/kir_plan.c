/* kir_plan.c - a plan's kernels from IR to module source (kir_plan.h). */
#include "kir_plan.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

static const char *tname(const DlPlan *p, int t)
{
    const char *n = p->tensors[t].name;
    return n && *n ? n : "(temporary)";
}

/* Each kernel step of each program against the kernel it runs. */
static char *check_steps(const DlPlan *p, const KirModule *m)
{
    for (int pi = 0; pi < p->nprograms; pi++) {
        const DlPlanProgram *pr = &p->programs[pi];
        for (int si = 0; si < pr->nsteps; si++) {
            const DlPlanStep *s = &pr->steps[si];
            if (s->kind != DL_STEP_KERNEL) continue;
            const KirKernel *k = &m->k[s->kernel];
            const char *lb = s->label ? s->label : "-";
            if (s->grid > k->grid)
                return dl_xasprintf("program '%s' step %d (%s): grid %" PRId64 " exceeds kernel '%s''s %" PRId64,
                                    pr->name, si, lb, s->grid, k->name, k->grid);
            if (s->nargs != k->nbufs)
                return dl_xasprintf("program '%s' step %d (%s): %d tensors for kernel '%s''s %d buffers", pr->name,
                                    si, lb, s->nargs, k->name, k->nbufs);
            for (int a = 0; a < s->nargs; a++) {
                const DlPlanTensor *t = &p->tensors[s->args[a]];
                if (t->numel < k->bufs[a].numel)
                    return dl_xasprintf("program '%s' step %d (%s): tensor '%s' has %" PRId64
                                        " elements, kernel '%s' buffer %d needs %" PRId64,
                                        pr->name, si, lb, tname(p, s->args[a]), t->numel, k->name, a,
                                        k->bufs[a].numel);
            }
        }
    }
    return NULL;
}

/* The GPU schedule of kernel k: decoded, checked and proven like k, a block
 * of threads, and the same grid and buffers as k (which the steps were
 * checked against). */
static int load_gpu(const DlPlanKernel *pk, KirKernel *k, char **why)
{
    KirKernel *g = dl_xcalloc(1, sizeof *g);
    char *w = NULL;
    int rc = kir_decode(pk->kir_gpu, pk->kir_gpu_len, pk->name, g, &w);
    if (rc == 0 && g->block < 1) w = dl_xasprintf("no threads per block"), rc = -1;
    if (rc == 0 && (g->grid != k->grid || g->nbufs != k->nbufs))
        w = dl_xasprintf("grid %lld and %d buffers, the flat kernel's are %lld and %d", (long long)g->grid, g->nbufs,
                         (long long)k->grid, k->nbufs),
        rc = -1;
    for (int a = 0; rc == 0 && a < g->nbufs; a++)
        if (g->bufs[a].numel != k->bufs[a].numel || g->bufs[a].written != k->bufs[a].written)
            w = dl_xasprintf("buffer %d differs from the flat kernel's", a), rc = -1;
    if (rc == 0) rc = kir_prove(g, &w);
    if (rc != 0) {
        *why = dl_xasprintf("GPU schedule: %s", w ? w : "invalid");
        free(w);
        kir_free(g);
        free(g);
        return -1;
    }
    k->gpu = g;
    return 0;
}

int kir_module_load(const DlPlan *p, KirModule *m, char **err)
{
    m->n = p->nkernels;
    m->k = dl_xcalloc((size_t)m->n + 1, sizeof *m->k);
    for (int i = 0; i < p->nkernels; i++) {
        const DlPlanKernel *pk = &p->kernels[i];
        char *why = NULL;
        int rc = kir_decode(pk->kir, pk->kir_len, pk->name, &m->k[i], &why);
        if (rc == 0 && m->k[i].nbufs != pk->nargs) {
            why = dl_xasprintf("%d buffers, the plan says %d", m->k[i].nbufs, pk->nargs);
            rc = -1;
        }
        if (rc == 0) rc = kir_prove(&m->k[i], &why);
        if (rc == 0 && pk->kir_gpu_len) rc = load_gpu(pk, &m->k[i], &why);
        if (rc != 0) {
            *err = dl_xasprintf("kernel '%s': %s", pk->name, why ? why : "invalid");
            free(why);
            kir_module_free(m);
            return -1;
        }
    }
    char *why = check_steps(p, m);
    if (why) {
        *err = why;
        kir_module_free(m);
        return -1;
    }
    return 0;
}

void kir_module_free(KirModule *m)
{
    for (int i = 0; i < m->n; i++) kir_free(&m->k[i]);
    free(m->k);
    memset(m, 0, sizeof *m);
}

char *kir_module_source(const KirModule *m, int cuda)
{
    DlBuf b = {0};
    const char *pre = cuda ? cg_prelude_cuda() : cg_prelude_c();
    dl_buf_put(&b, pre, strlen(pre));
    for (int i = 0; i < m->n; i++) kir_render(cuda && m->k[i].gpu ? m->k[i].gpu : &m->k[i], &b);
    return b.s ? b.s : dl_xstrdup("");
}

int kir_cuda_launch(const KirKernel *k, int64_t grid, KirLaunch *l, char **why)
{
    if (grid < 1 || grid > k->grid) {
        *why = dl_xasprintf("kernel '%s': %lld work items, outside [1, %lld]", k->name, (long long)grid,
                            (long long)k->grid);
        return -1;
    }
    if (k->gpu) { /* one block per work item, its block of threads (shared arrays are static) */
        l->blocks = (uint32_t)(grid < KIR_CUDA_MAX_BLOCKS ? grid : KIR_CUDA_MAX_BLOCKS);
        l->threads = (uint32_t)k->gpu->block;
        l->shared_bytes = 0;
        return 0;
    }
    int64_t blocks = (grid + KIR_CUDA_THREADS - 1) / KIR_CUDA_THREADS;
    l->blocks = (uint32_t)(blocks < KIR_CUDA_MAX_BLOCKS ? blocks : KIR_CUDA_MAX_BLOCKS);
    l->threads = KIR_CUDA_THREADS;
    l->shared_bytes = 0;
    return 0;
}
