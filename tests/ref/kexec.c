/* kexec.c - generated CPU kernels against the reference interpreter (kexec.h). */
#include "kexec.h"

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../compiler/fuse.h"
#include "../../compiler/memplan.h"
#include "../../runtime/cpu_lib.h"

/* The CPU library (runtime/cpu_lib.c) runs the library groups when it is
 * linked in; weak references let this file link without it, in which case
 * library outputs are stand-ins (kexec.h). */
#pragma weak dl_lib_new
#pragma weak dl_lib_finalize
#pragma weak dl_lib_free
#pragma weak dl_conv_create
#pragma weak dl_conv_run
#pragma weak dl_matmul

#define KX_GUARD 16            /* floats after each arena, checked after every group */
#define KX_GUARD_VAL -1.2345e30f

static int kx_load_module(KExec *x)
{
    char tmpl[] = "/tmp/dldl_kref_XXXXXX";
    if (!mkdtemp(tmpl)) {
        perror("kexec: mkdtemp");
        return -1;
    }
    x->dir = dl_xstrdup(tmpl);
    char *src = dl_xasprintf("%s/k.c", x->dir), *so = dl_xasprintf("%s/k.so", x->dir);
    FILE *f = fopen(src, "w");
    if (!f) {
        perror(src);
        free(src), free(so);
        return -1;
    }
    fputs(cg_prelude_c(), f);
    fputs(x->mod.body ? x->mod.body : "", f);
    fclose(f);
    const char *cc = getenv("CC") ? getenv("CC") : "cc";
    char *cmd = dl_xasprintf("%s -O2 -shared -fPIC -o %s %s -lm 2> %s/cc.log", cc, so, src, x->dir);
    int rc = system(cmd);
    free(cmd);
    if (rc != 0) {
        fprintf(stderr, "kexec: the C compiler failed on %s (log: %s/cc.log):\n", src, x->dir);
        char *show = dl_xasprintf("head -30 %s/cc.log >&2", x->dir);
        if (system(show) != 0) fprintf(stderr, "(cannot show the log)\n");
        free(show), free(src), free(so);
        return -1;
    }
    x->so = dlopen(so, RTLD_NOW | RTLD_LOCAL);
    if (!x->so) {
        fprintf(stderr, "kexec: dlopen %s: %s\n", so, dlerror());
        free(src), free(so);
        return -1;
    }
    x->fn = dl_xcalloc((size_t)x->mod.nkernels + 1, sizeof *x->fn);
    for (int k = 0; k < x->mod.nkernels; k++) {
        x->fn[k] = (KxKernelFn)dlsym(x->so, x->mod.kernels[k].name);
        if (!x->fn[k]) {
            fprintf(stderr, "kexec: kernel %s not in %s\n", x->mod.kernels[k].name, so);
            free(src), free(so);
            return -1;
        }
    }
    free(src), free(so);
    for (int a = 0; a < AR_COUNT; a++) {
        int64_t n = x->mem.arena_size[a];
        x->arena[a] = dl_xcalloc((size_t)(n + KX_GUARD), sizeof(float));
        for (int k = 0; k < KX_GUARD; k++) x->arena[a][n + k] = KX_GUARD_VAL;
    }
    return 0;
}

int kx_build_from(KExec *x, const Graph *g, const GSchedule *s, const GMemPlan *mp, const CgModule *m)
{
    memset(x, 0, sizeof *x);
    x->g = g, x->sched = *s, x->mem = *mp, x->mod = *m;
    return kx_load_module(x);
}

int kx_build(KExec *x, const Graph *g, DlPool *pool)
{
    memset(x, 0, sizeof *x);
    x->g = g;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    if (fuse_graph(g, pool, &x->sched, &diag) || mem_plan(g, &x->sched, pool, &x->mem, &diag)
        || cg_generate(g, &x->sched, &x->mem, "t_", &x->mod, &diag)) {
        fprintf(stderr, "kexec: the back end reported %d errors\n", dl_diag_errors(&diag));
        return -1;
    }
    x->own_mod = 1;
    return kx_load_module(x);
}

static float *kx_buf(const KExec *x, uint32_t i)
{
    const GBuffer *b = &x->mem.buf[i];
    if (b->offset < 0 || b->numel == 0) return NULL;
    return x->arena[b->arena] + b->offset;
}

const float *kx_value(const KExec *x, uint32_t i) { return kx_buf(x, i); }

void kx_load_sources(KExec *x, double **vals)
{
    const Graph *g = x->g;
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *n = &g->nodes[i];
        if (graph_op_kind[n->op] != OPK_SOURCE) continue;
        float *dst = kx_buf(x, i);
        int64_t N = graph_numel(n);
        for (int64_t k = 0; k < N; k++) {
            float v = n->op == OP_CONST ? n->attr.cst.data[k] : (float)vals[i][k];
            if (n->op != OP_CONST) vals[i][k] = v;
            if (dst) dst[k] = v;
        }
    }
}

static void shape_str(const GNode *n, char *s, size_t cap)
{
    int len = snprintf(s, cap, "[");
    for (int d = 0; d < n->ndim && len < (int)cap; d++)
        len += snprintf(s + len, cap - (size_t)len, "%s%lld", d ? "," : "", (long long)n->shape[d]);
    if (len < (int)cap) snprintf(s + len, cap - (size_t)len, "]");
}

/* Compare node i's float storage with want (N doubles); print a line. */
static int kx_check(KExec *x, uint32_t i, const double *want, const char *group, double tol, double *worst)
{
    const GNode *n = &x->g->nodes[i];
    const float *got = kx_buf(x, i);
    if (!got || !want) return 0;
    int64_t N = graph_numel(n);
    double maxref = 0, maxgot = 0, maxdiff = 0;
    int64_t at = 0;
    for (int64_t k = 0; k < N; k++) {
        double d = fabs((double)got[k] - want[k]);
        if (!(d <= maxdiff)) maxdiff = d, at = k; /* NaN counts as worst */
        maxref = fmax(maxref, fabs(want[k]));
        maxgot = fmax(maxgot, fabs((double)got[k]));
    }
    double err = maxref > 0 ? maxdiff / maxref : maxgot;
    if (isnan(err)) err = INFINITY;
    if (worst && err > *worst) *worst = err;
    int bad = !(err <= tol);
    if (x->verbose || bad) {
        char sh[64];
        shape_str(n, sh, sizeof sh);
        printf("    %%%-4u %-16s %-16s %-26s nerr %.2e%s", i, graph_op_name[n->op], sh,
               n->name ? n->name : "", err, bad ? "  FAIL" : "");
        if (bad) printf(" (%s; at %lld: got %.9g, want %.9g)", group, (long long)at, got[at], want[at]);
        printf("\n");
    }
    return bad;
}

/* Run library node i through runtime/cpu_lib.h.  Returns 1 when it ran, 0
 * when the library is not linked in, -1 on a library error. */
static int kx_run_lib(KExec *x, uint32_t i)
{
    if (!dl_lib_new || !dl_conv_create || !dl_matmul) return 0;
    const GNode *n = &x->g->nodes[i];
    if (n->op == OP_ALLREDUCE) { /* one process: the sum over one rank (runtime/exec.c without a communicator) */
        memcpy(kx_buf(x, i), kx_buf(x, n->in[0]), (size_t)graph_numel(n) * sizeof(float));
        return 1;
    }
    float *a = kx_buf(x, n->in[0]), *b = kx_buf(x, n->in[1]), *y = kx_buf(x, i);
    if (n->op == OP_MATMUL) {
        const GNode *A = &x->g->nodes[n->in[0]];
        int64_t M = n->shape[0], N = graph_numel(n) / M;
        int64_t K = n->attr.mm.ta ? A->shape[0] : graph_numel(A) / A->shape[0];
        int64_t geom[5] = {M, N, K, n->attr.mm.ta, n->attr.mm.tb};
        dl_matmul(geom, a, b, y);
        return 1;
    }
    /* conv_transpose2d is a convolution's backward data (plan_build.c lib_step) */
    int kind = n->op == OP_CONV2D ? 1 : n->op == OP_CONV2D_BWD_DATA || n->op == OP_CONV_TRANSPOSE2D ? 2 : 3;
    const GNode *xs = kind == 2 ? n : &x->g->nodes[n->in[0]];           /* [B,C,H,W] */
    const GNode *ys = kind == 1 ? n : &x->g->nodes[n->in[kind == 2 ? 0 : 1]]; /* [B,O,OH,OW] */
    int64_t geom[12] = {xs->shape[0], xs->shape[1], xs->shape[2], xs->shape[3], ys->shape[1],
                        n->attr.conv.kh, n->attr.conv.kw, n->attr.conv.stride, n->attr.conv.pad,
                        ys->shape[2], ys->shape[3], n->attr.conv.dilate};
    /* one library instance per call: create, finalize, run (cpu_lib.h order) */
    char *err = NULL;
    DlLib *lib = dl_lib_new(1, &err);
    DlConv *c = lib ? dl_conv_create(lib, kind, geom, DL_CONV_PLAIN, &err) : NULL;
    if (!c) {
        fprintf(stderr, "kexec: %%%u %s: %s\n", i, graph_op_name[n->op], err ? err : "?");
        free(err);
        if (lib) dl_lib_free(lib);
        return -1;
    }
    dl_lib_finalize(lib);
    int status = 0, rc = dl_conv_run(c, a, b, y, &status);
    dl_lib_free(lib);
    if (rc != 0) {
        fprintf(stderr, "kexec: %%%u %s: oneDNN status %d\n", i, graph_op_name[n->op], status);
        return -1;
    }
    return 1;
}

int kx_run_compare(KExec *x, double **vals, double tol, double *worst)
{
    const Graph *g = x->g;
    int nbad = 0, nstandin = 0, nlib = 0;
    for (int gi = 0; gi < x->sched.n; gi++) {
        const GGroup *gr = &x->sched.groups[gi];
        if (gr->kind == GG_LIB) {
            uint32_t node = gr->nodes[0];
            int r = kx_run_lib(x, node);
            if (r < 0) {
                nbad++;
                continue;
            }
            if (r == 0) {
                float *dst = kx_buf(x, node);
                if (dst)
                    for (int64_t k = 0; k < graph_numel(&g->nodes[node]); k++) dst[k] = (float)vals[node][k];
                nstandin++;
                continue;
            }
            nlib++;
            nbad += kx_check(x, node, vals[node], gr->name, tol, worst);
            continue;
        }
        int ki = -1;
        for (int k = 0; k < x->mod.nkernels; k++)
            if (x->mod.kernels[k].group == gi) ki = k;
        if (ki < 0) {
            printf("    group %d (%s): no kernel generated  FAIL\n", gi, gr->name);
            nbad++;
            continue;
        }
        const CgKernel *kn = &x->mod.kernels[ki];
        float **bufs = dl_xcalloc((size_t)kn->nargs + 1, sizeof *bufs);
        for (int a = 0; a < kn->nargs; a++) {
            const CgArg *arg = &kn->args[a];
            bufs[a] = x->arena[arg->arena] + arg->offset;
        }
        int64_t half = kn->grid / 2;
        x->fn[ki](bufs, 0, half);
        x->fn[ki](bufs, half, kn->grid);
        free(bufs);
        for (int a = 0; a < AR_COUNT; a++)
            for (int k = 0; k < KX_GUARD; k++)
                if (x->arena[a][x->mem.arena_size[a] + k] != KX_GUARD_VAL) {
                    printf("    kernel %s wrote past the end of arena %d  FAIL\n", kn->name, a);
                    nbad++;
                    x->arena[a][x->mem.arena_size[a] + k] = KX_GUARD_VAL;
                }
        for (int o = 0; o < gr->nouts; o++) nbad += kx_check(x, gr->outs[o], vals[gr->outs[o]], gr->name, tol, worst);
        if (gr->kind == GG_OPT) /* the optimizer states, updated in place (interp.h) */
            for (int m = 0; m < gr->nnodes; m++) {
                const GNode *s = &g->nodes[gr->nodes[m]];
                for (int k = 0; k < s->nin; k++) {
                    const GNode *in = &g->nodes[s->in[k]];
                    if (in->op == OP_STATE && in->param != G_NONE)
                        nbad += kx_check(x, s->in[k], vals[s->in[k]], gr->name, tol, worst);
                }
            }
    }
    if (nstandin)
        printf("    (%d library groups: outputs are library stand-ins, the interpreter's values as float)\n",
               nstandin);
    if (nlib) printf("    (%d library groups run by runtime/cpu_lib.c: oneDNN, OpenBLAS)\n", nlib);
    return nbad;
}

void kx_free(KExec *x)
{
    if (x->so) dlclose(x->so);
    if (x->dir) {
        char *cmd = dl_xasprintf("rm -rf '%s'", x->dir);
        if (system(cmd) != 0) fprintf(stderr, "kexec: cannot remove %s\n", x->dir);
        free(cmd);
    }
    for (int a = 0; a < AR_COUNT; a++) free(x->arena[a]);
    free(x->fn);
    free(x->dir);
    if (x->own_mod) cg_module_free(&x->mod);
    memset(x, 0, sizeof *x);
}
