/* test_kernels_ref.c - every generated CPU kernel against the reference
 * interpreter: the check that fusion + memory planning + code generation
 * compute what the graph says.
 *
 * Small graphs that exercise each op kind (elementwise chains, batch norm
 * forward and backward, pooling windows, the loss tail, dropout, the SGD,
 * Nesterov, Adam and AdamW updates), a small differentiated network, and the
 * real specs/age.dldl and specs/pose.dldl (and tests/ops/adam.dldl, fcn.dldl) train and
 * eval programs at batch 2 go through the real back
 * end and the system C compiler (tests/ref/kexec.h); every materialised node
 * is compared, float against double, with normalised max error <= 1e-4.
 * A last test fails when an op of ops.def that generated kernels implement
 * was never run by them (ggml's coverage listing).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../ref/interp.c" /* the reference is not in the linked objects: interp.h */
#include "../ref/kexec.c"
#include "../ref/gbuild.h"
#include "../ref/spec_programs.h"
#include "../../compiler/autodiff.h"
#include "../../compiler/lower.h"
#include "../../compiler/plan_build.h"
#include "../../grammar/ast.h"

#define TOL 1e-4

static int covered[OP_COUNT];
static uint64_t rng_state;

static double urand(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

/* Random sources: data and weights in (-1, 1), gamma in (0.5, 1.5), targets
 * normalised rows, labels in the bin range, variances and running var near 1,
 * scalars [lr 0.05, momentum 0.9, step 5, seed 3]. */
static void fill_sources(const Graph *g, double **vals, const char *seed)
{
    rng_state = dl_hash64(seed, strlen(seed));
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *t = &g->nodes[i];
        double *v = vals[i];
        int64_t N = graph_numel(t);
        if (!v || t->op == OP_CONST) continue;
        if (t->op == OP_SCALARS) {
            v[0] = 0.05, v[1] = 0.9, v[2] = 5, v[3] = 3;
        } else if (t->op == OP_INPUT && t->attr.input.kind == IN_TARGET) {
            int64_t K = t->shape[1];
            for (int64_t b = 0; b < t->shape[0]; b++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += v[b * K + k] = urand(0, 1);
                for (int64_t k = 0; k < K; k++) v[b * K + k] /= s;
            }
        } else if (t->op == OP_INPUT && t->attr.input.kind == IN_LABEL) {
            for (int64_t k = 0; k < N; k++) v[k] = urand(0, 6);
        } else if (t->op == OP_STATE && t->param == G_NONE) {
            for (int64_t k = 0; k < N; k++) v[k] = k < N / 2 ? urand(-0.2, 0.2) : urand(0.8, 1.2);
        } else if (t->op == OP_STATE && t->attr.ostate.slot == 1) { /* Adam's exp_avg_sq >= 0 */
            for (int64_t k = 0; k < N; k++) v[k] = urand(0, 1);
        } else if (t->name && strstr(t->name, "gamma")) {
            for (int64_t k = 0; k < N; k++) v[k] = urand(0.5, 1.5);
        } else {
            for (int64_t k = 0; k < N; k++) v[k] = urand(-1, 1);
        }
    }
}

/* Interpreter and generated kernels on the same float-rounded sources. */
static int check_run(KExec *x, const char *what)
{
    const Graph *g = x->g;
    double **vals = ref_alloc_values(g);
    fill_sources(g, vals, what);
    kx_load_sources(x, vals);
    if (ref_run(g, vals) != 0) {
        ref_free_values(g, vals);
        return 0;
    }
    double worst = 0;
    int bad = kx_run_compare(x, vals, TOL, &worst);
    for (int gi = 0; gi < x->sched.n; gi++)
        if (x->sched.groups[gi].kind != GG_LIB)
            for (int m = 0; m < x->sched.groups[gi].nnodes; m++)
                covered[g->nodes[x->sched.groups[gi].nodes[m]].op] = 1;
    printf("  %-40s %3d groups, %3d kernels: worst normalised error %.2e%s\n", what, x->sched.n,
           x->mod.nkernels, worst, bad ? "  FAIL" : "");
    ref_free_values(g, vals);
    return bad == 0;
}

static void check_graph(Graph *g, DlPool *pool, const char *what)
{
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(graph_verify(g, what, &diag), 0);
    KExec x;
    int ok = kx_build(&x, g, pool) == 0 && check_run(&x, what);
    kx_free(&x);
    assert_true(ok);
}

/* ---- hand-built graphs, one per op family -------------------------------- */

/* bias_add, relu, relu_bwd, scale, add, mul, exp, fill, chan_sum, reshape */
static void test_elementwise_chain_matches_reference(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 5, 5), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 5, 5), (GAttr){.input = {IN_IMAGE}}, "dy");
    uint32_t b = gb_param(g, GB_SH(3), "b");
    uint32_t y1 = gb(g, OP_BIAS_ADD, GB_IN(x, b), GB_SH(2, 3, 5, 5), GB_NOATTR, "y1");
    uint32_t y2 = gb(g, OP_RELU, GB_IN(y1), GB_SH(2, 3, 5, 5), GB_NOATTR, "y2");
    uint32_t y3 = gb(g, OP_RELU_BWD, GB_IN(dy, y2), GB_SH(2, 3, 5, 5), GB_NOATTR, "y3");
    uint32_t y4 = gb(g, OP_SCALE, GB_IN(y3), GB_SH(2, 3, 5, 5), (GAttr){.f = 0.5f}, "y4");
    uint32_t y5 = gb(g, OP_ADD, GB_IN(y4, x), GB_SH(2, 3, 5, 5), GB_NOATTR, "y5");
    uint32_t y6 = gb(g, OP_MUL, GB_IN(y5, y1), GB_SH(2, 3, 5, 5), GB_NOATTR, "y6");
    uint32_t y7 = gb(g, OP_EXP, GB_IN(y6), GB_SH(2, 3, 5, 5), GB_NOATTR, "y7");
    uint32_t cs = gb(g, OP_CHAN_SUM, GB_IN(y7), GB_SH(3), GB_NOATTR, "y7.csum");
    uint32_t r = gb(g, OP_RESHAPE, GB_IN(y7), GB_SH(6, 25), GB_NOATTR, "y7.flat");
    uint32_t f = gb(g, OP_FILL, GB_NOIN, GB_SH(6, 25), (GAttr){.f = 0.25f}, "quarter");
    uint32_t y8 = gb(g, OP_MUL, GB_IN(r, f), GB_SH(6, 25), GB_NOATTR, "y8");
    gb_output(g, GOUT_LOSS_TERM, "cs", cs);
    gb_output(g, GOUT_LOSS_TERM, "y8", y8);
    check_graph(g, pool, "elementwise_chain");
    dl_pool_free(pool);
}

/* Train-mode batch norm forward and backward, the running update and
 * inference mode (Ioffe & Szegedy 2015, Alg. 1). */
static void test_batchnorm_kernels_match_reference(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    GAttr bn = {.bn = {1e-5f, 0.1f}};
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 5, 5), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 5, 5), (GAttr){.input = {IN_IMAGE}}, "dy");
    uint32_t gamma = gb_param(g, GB_SH(3), "bn.gamma");
    uint32_t beta = gb_param(g, GB_SH(3), "bn.beta");
    uint32_t run = gb(g, OP_STATE, GB_NOIN, GB_SH(2, 3), GB_NOATTR, "bn.running");
    uint32_t sts = gb(g, OP_BN_STATS, GB_IN(x), GB_SH(2, 3), bn, "bn.stats");
    uint32_t inf = gb(g, OP_BN_INFER, GB_IN(x, run, gamma, beta), GB_SH(2, 3, 5, 5), bn, "bn.infer");
    uint32_t y = gb(g, OP_BN_APPLY, GB_IN(x, sts, gamma, beta), GB_SH(2, 3, 5, 5), bn, "bn.y");
    uint32_t r = gb(g, OP_RELU, GB_IN(y), GB_SH(2, 3, 5, 5), GB_NOATTR, "bn.r");
    uint32_t dr = gb(g, OP_RELU_BWD, GB_IN(dy, r), GB_SH(2, 3, 5, 5), GB_NOATTR, "d.bn.y");
    uint32_t bs = gb(g, OP_BN_BWD_STATS, GB_IN(dr, x, sts), GB_SH(2, 3), bn, "d.bn.bstats");
    uint32_t dx = gb(g, OP_BN_BWD_DATA, GB_IN(dr, x, sts, gamma, bs), GB_SH(2, 3, 5, 5), bn, "d.x");
    uint32_t dbeta = gb(g, OP_SELECT, GB_IN(bs), GB_SH(3), (GAttr){.i = 0}, "d.bn.beta");
    uint32_t dgamma = gb(g, OP_SELECT, GB_IN(bs), GB_SH(3), (GAttr){.i = 1}, "d.bn.gamma");
    uint32_t ru = gb(g, OP_BN_RUNNING, GB_IN(sts, run), GB_SH(2, 3), bn, "bn.run_update");
    g->nodes[ru].inplace = run;
    gb_output(g, GOUT_LOSS_TERM, "inf", inf);
    gb_output(g, GOUT_LOSS_TERM, "dx", dx);
    gb_output(g, GOUT_LOSS_TERM, "dbeta", dbeta);
    gb_output(g, GOUT_LOSS_TERM, "dgamma", dgamma);
    check_graph(g, pool, "batchnorm_fwd_bwd_running");
    dl_pool_free(pool);
}

/* maxpool, avgpool, global_avgpool and their gradients */
static void test_pooling_windows_match_reference(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 7, 7), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t d1 = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 3, 3), (GAttr){.input = {IN_IMAGE}}, "d.mp");
    uint32_t d2 = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 4, 4), (GAttr){.input = {IN_IMAGE}}, "d.ap");
    uint32_t d3 = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3), (GAttr){.input = {IN_IMAGE}}, "d.gap");
    uint32_t mp = gb(g, OP_MAXPOOL, GB_IN(x), GB_SH(2, 3, 3, 3), (GAttr){.pool = {3, 2, 0}}, "mp");
    uint32_t ap = gb(g, OP_AVGPOOL, GB_IN(x), GB_SH(2, 3, 4, 4), (GAttr){.pool = {3, 2, 1}}, "ap");
    uint32_t gp = gb(g, OP_GAP, GB_IN(x), GB_SH(2, 3), GB_NOATTR, "gap");
    uint32_t dmp = gb(g, OP_MAXPOOL_BWD, GB_IN(d1, x), GB_SH(2, 3, 7, 7), (GAttr){.pool = {3, 2, 0}}, "d.x.mp");
    uint32_t dap = gb(g, OP_AVGPOOL_BWD, GB_IN(d2), GB_SH(2, 3, 7, 7), (GAttr){.pool = {3, 2, 1}}, "d.x.ap");
    uint32_t dgp = gb(g, OP_GAP_BWD, GB_IN(d3), GB_SH(2, 3, 7, 7), GB_NOATTR, "d.x.gap");
    uint32_t s1 = gb(g, OP_ADD, GB_IN(dmp, dap), GB_SH(2, 3, 7, 7), GB_NOATTR, "d.x.sum");
    uint32_t s2 = gb(g, OP_ADD, GB_IN(s1, dgp), GB_SH(2, 3, 7, 7), GB_NOATTR, "d.x");
    gb_output(g, GOUT_LOSS_TERM, "mp", mp);
    gb_output(g, GOUT_LOSS_TERM, "ap", ap);
    gb_output(g, GOUT_LOSS_TERM, "gp", gp);
    gb_output(g, GOUT_LOSS_TERM, "dx", s2);
    check_graph(g, pool, "pooling_windows_fwd_bwd");
    dl_pool_free(pool);
}

/* upsample (nearest and bilinear; equal, unequal and unit factors) and its
 * adjoint, concat of planes and of vectors, and the slices of its gradient. */
static void test_resample_concat_slice_match_reference(void **st)
{
    (void)st;
    static const int cfg[7][3] = {{2, 2, 0}, {3, 2, 0}, {2, 2, 1}, {3, 4, 1}, {1, 2, 1}, {5, 7, 1}, {8, 8, 1}};
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 3, 4), (GAttr){.input = {IN_IMAGE}}, "x");
    for (int c = 0; c < 7; c++) {
        int fh = cfg[c][0], fw = cfg[c][1];
        GAttr a = {.up = {fh, fw, cfg[c][2]}};
        char nm[3][32];
        snprintf(nm[0], sizeof nm[0], "up%d", c);
        snprintf(nm[1], sizeof nm[1], "dy%d", c);
        snprintf(nm[2], sizeof nm[2], "up%d.dx", c);
        uint32_t u = gb(g, OP_UPSAMPLE, GB_IN(x), GB_SH(2, 3, 3 * fh, 4 * fw), a, dl_pool_strdup(pool, nm[0]));
        uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 3 * fh, 4 * fw), (GAttr){.input = {IN_IMAGE}},
                         dl_pool_strdup(pool, nm[1]));
        uint32_t dx = gb(g, OP_UPSAMPLE_BWD, GB_IN(dy), GB_SH(2, 3, 3, 4), a, dl_pool_strdup(pool, nm[2]));
        gb_output(g, GOUT_LOSS_TERM, dl_pool_strdup(pool, nm[0]), u);
        gb_output(g, GOUT_LOSS_TERM, dl_pool_strdup(pool, nm[2]), dx);
    }
    uint32_t y = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 1, 3, 4), (GAttr){.input = {IN_IMAGE}}, "y");
    uint32_t z = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 2, 3, 4), (GAttr){.input = {IN_IMAGE}}, "z");
    uint32_t cat = gb(g, OP_CONCAT, GB_IN(x, y, z, y), GB_SH(2, 7, 3, 4), GB_NOATTR, "cat");
    uint32_t s1 = gb(g, OP_SLICE, GB_IN(cat), GB_SH(2, 2, 3, 4), (GAttr){.i = 2}, "cat.s2");
    uint32_t s2 = gb(g, OP_SLICE, GB_IN(cat), GB_SH(2, 1, 3, 4), (GAttr){.i = 6}, "cat.s6");
    uint32_t v = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 5), (GAttr){.input = {IN_IMAGE}}, "v");
    uint32_t w = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3), (GAttr){.input = {IN_IMAGE}}, "w");
    uint32_t vcat = gb(g, OP_CONCAT, GB_IN(w, v), GB_SH(2, 8), GB_NOATTR, "vcat");
    uint32_t vs = gb(g, OP_SLICE, GB_IN(vcat), GB_SH(2, 4), (GAttr){.i = 3}, "vcat.s3");
    gb_output(g, GOUT_LOSS_TERM, "s1", s1);
    gb_output(g, GOUT_LOSS_TERM, "s2", s2);
    gb_output(g, GOUT_LOSS_TERM, "vs", vs);
    check_graph(g, pool, "resample_concat_slice");
    dl_pool_free(pool);
}

/* PyTorch's values: F.interpolate([[1, 2], [3, 4]], scale_factor=2, mode="bilinear",
 * align_corners=False) and a 1x2 row [1, 2] by 3 (mode "nearest" repeats); the
 * reference's loop and then the generated kernel give them. */
static void test_upsample_gives_pytorch_values(void **st)
{
    (void)st;
    static const double want2[16] = {1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5,
                                     2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0};
    static const double want3[6] = {1.0, 1.0, 4.0 / 3, 5.0 / 3, 2.0, 2.0};
    static const double wantn[16] = {1, 1, 2, 2, 1, 1, 2, 2, 3, 3, 4, 4, 3, 3, 4, 4};
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 1);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(1, 1, 2, 2), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t r = gb(g, OP_INPUT, GB_NOIN, GB_SH(1, 1, 1, 2), (GAttr){.input = {IN_IMAGE}}, "r");
    uint32_t u2 = gb(g, OP_UPSAMPLE, GB_IN(x), GB_SH(1, 1, 4, 4), (GAttr){.up = {2, 2, 1}}, "bilinear2");
    uint32_t u3 = gb(g, OP_UPSAMPLE, GB_IN(r), GB_SH(1, 1, 1, 6), (GAttr){.up = {1, 3, 1}}, "bilinear3");
    uint32_t un = gb(g, OP_UPSAMPLE, GB_IN(x), GB_SH(1, 1, 4, 4), (GAttr){.up = {2, 2, 0}}, "nearest2");
    gb_output(g, GOUT_LOSS_TERM, "u2", u2);
    gb_output(g, GOUT_LOSS_TERM, "u3", u3);
    gb_output(g, GOUT_LOSS_TERM, "un", un);
    KExec kx;
    assert_int_equal(kx_build(&kx, g, pool), 0);
    double **vals = ref_alloc_values(g);
    for (int k = 0; k < 4; k++) vals[x][k] = k + 1;
    vals[r][0] = 1, vals[r][1] = 2;
    kx_load_sources(&kx, vals);
    assert_int_equal(ref_run(g, vals), 0);
    double maxerr = 0;
    for (int k = 0; k < 16; k++) maxerr = fmax(maxerr, fmax(fabs(vals[u2][k] - want2[k]), fabs(vals[un][k] - wantn[k])));
    for (int k = 0; k < 6; k++) maxerr = fmax(maxerr, fabs(vals[u3][k] - want3[k]));
    double worst = 0;
    int bad = kx_run_compare(&kx, vals, 1e-6, &worst);
    printf("  %-40s reference vs PyTorch's values %.2e, kernels vs reference %.2e\n", "upsample_pytorch_values", maxerr,
           worst);
    ref_free_values(g, vals);
    kx_free(&kx);
    dl_pool_free(pool);
    assert_true(maxerr < 1e-12);
    assert_int_equal(bad, 0);
}

/* conv_transpose2d (PyTorch's ConvTranspose2d, weight [Cin,Cout,k,k]) through
 * the library step (oneDNN's backward data) against the reference's own loop,
 * and its gradients (a conv2d forward, a conv2d backward filter with dy in
 * x's role), for strides below, at and above the kernel and pad up to k. */
static void test_conv_transpose2d_library_matches_reference(void **st)
{
    (void)st;
    static const int cfg[5][4] = {{3, 3, 1, 0}, {3, 4, 2, 1}, {4, 3, 2, 1}, {4, 2, 3, 2}, {2, 4, 4, 0}}; /* H, k, s, p */
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    for (int c = 0; c < 5; c++) {
        int H = cfg[c][0], k = cfg[c][1], s = cfg[c][2], p = cfg[c][3], OH = (H - 1) * s - 2 * p + k;
        GAttr a = {.conv = {k, k, s, p}};
        const char *nm[5] = {"x", "w", "y", "dy", "dx"};
        const char *name[6];
        for (int i = 0; i < 5; i++) {
            char *t = dl_xasprintf("ct%d.%s", c, nm[i]);
            name[i] = dl_pool_strdup(pool, t);
            free(t);
        }
        char *t = dl_xasprintf("ct%d.dw", c);
        name[5] = dl_pool_strdup(pool, t);
        free(t);
        uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, H, H + 1), (GAttr){.input = {IN_IMAGE}}, name[0]);
        uint32_t w = gb_param(g, GB_SH(3, 2, k, k), name[1]);
        uint32_t y = gb(g, OP_CONV_TRANSPOSE2D, GB_IN(x, w), GB_SH(2, 2, OH, OH + s), a, name[2]);
        uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 2, OH, OH + s), (GAttr){.input = {IN_IMAGE}}, name[3]);
        uint32_t dx = gb(g, OP_CONV2D, GB_IN(dy, w), GB_SH(2, 3, H, H + 1), a, name[4]);
        uint32_t dw = gb(g, OP_CONV2D_BWD_FILTER, GB_IN(dy, x), GB_SH(3, 2, k, k), a, name[5]);
        gb_output(g, GOUT_LOSS_TERM, name[2], y);
        gb_output(g, GOUT_LOSS_TERM, name[4], dx);
        gb_output(g, GOUT_LOSS_TERM, name[5], dw);
    }
    check_graph(g, pool, "conv_transpose2d_fwd_bwd");
    dl_pool_free(pool);
}

/* The loss tail forward and backward (log_softmax, kl_rows, exp, expect,
 * absdiff_rows, mean and their gradients), 2 axes: one GG_ROW kernel. */
static void test_loss_tail_rows_match_reference(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 3);
    int64_t B = 3, K = 7;
    uint32_t z = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, K), (GAttr){.input = {IN_IMAGE}}, "z");
    uint32_t y = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, K), (GAttr){.input = {IN_TARGET}}, "target");
    uint32_t lab = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, 2), (GAttr){.input = {IN_LABEL}}, "label");
    float *v = dl_pool_alloc(pool, 2 * K * sizeof *v);
    for (int k = 0; k < K; k++) v[k] = (float)k, v[K + k] = (float)(6 - k) * 0.5f;
    uint32_t bins = gb(g, OP_CONST, GB_NOIN, GB_SH(2, K), (GAttr){.cst = {v}}, "bins");
    uint32_t loss = gb_loss_tail(g, z, y, lab, bins, 0.1f);
    uint32_t logq = g->nodes[g->nodes[g->nodes[loss].in[0]].in[0]].in[1];
    uint32_t p = g->outs[3].node, e = g->outs[4].node;
    uint32_t seed = gb(g, OP_FILL, GB_NOIN, GB_SH(1), (GAttr){.f = 1.0f}, "d.loss");
    uint32_t dkl = gb(g, OP_MEAN_BWD, GB_IN(seed), GB_SH(B), GB_NOATTR, "d.kl.rows");
    uint32_t dlq1 = gb(g, OP_KL_BWD, GB_IN(dkl, y), GB_SH(B, K), GB_NOATTR, "d.logq.kl");
    uint32_t dl1m = gb(g, OP_SCALE, GB_IN(seed), GB_SH(1), (GAttr){.f = 0.1f}, "d.l1");
    uint32_t dl1 = gb(g, OP_MEAN_BWD, GB_IN(dl1m), GB_SH(B), GB_NOATTR, "d.l1.rows");
    uint32_t de = gb(g, OP_ABSDIFF_BWD, GB_IN(dl1, e, lab), GB_SH(B, 2), GB_NOATTR, "d.e");
    uint32_t dp = gb(g, OP_EXPECT_BWD, GB_IN(de, bins), GB_SH(B, K), GB_NOATTR, "d.p");
    uint32_t dlq2 = gb(g, OP_MUL, GB_IN(dp, p), GB_SH(B, K), GB_NOATTR, "d.logq.exp");
    uint32_t dlq = gb(g, OP_ADD, GB_IN(dlq1, dlq2), GB_SH(B, K), GB_NOATTR, "d.logq");
    uint32_t dz = gb(g, OP_LOG_SOFTMAX_BWD, GB_IN(dlq, logq), GB_SH(B, K), GB_NOATTR, "d.z");
    gb_output(g, GOUT_LOSS_TERM, "dz", dz);
    check_graph(g, pool, "loss_tail_fwd_bwd");
    dl_pool_free(pool);
}

/* Dropout and its gradient with the counter-based mask (seed, step, i). */
static void test_dropout_mask_matches_reference(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 64), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 64), (GAttr){.input = {IN_IMAGE}}, "dy");
    uint32_t sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    uint32_t d = gb(g, OP_DROPOUT, GB_IN(x, sc), GB_SH(2, 64), (GAttr){.dropout = {0.2f, 77}}, "drop");
    uint32_t dd = gb(g, OP_DROPOUT_BWD, GB_IN(dy, sc), GB_SH(2, 64), (GAttr){.dropout = {0.2f, 77}}, "d.x");
    gb_output(g, GOUT_LOSS_TERM, "d", d);
    gb_output(g, GOUT_LOSS_TERM, "dd", dd);
    check_graph(g, pool, "dropout_fwd_bwd");
    dl_pool_free(pool);
}

/* "<a>.<b>" in the pool (graph node names outlive the caller's buffers). */
static const char *pjoin(DlPool *pool, const char *a, const char *b)
{
    char *t = dl_xasprintf("%s.%s", a, b);
    const char *r = dl_pool_strdup(pool, t);
    free(t);
    return r;
}

/* An optimizer update `op` (attr at) over two parameters, in place, with an
 * untrained parameter between them (a hole the kernel skips). */
static void opt_case(GOp op, GAttr at, const char *what)
{
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    const char *names[2] = {"w1", "w2"};
    int64_t rows[2] = {3, 5}, cols[2] = {4, 2};
    int adam = op == OP_ADAM || op == OP_ADAMW;
    for (int k = 0; k < 2; k++) {
        uint32_t w = gb_param(g, GB_SH(rows[k], cols[k]), names[k]);
        if (k == 0) gb_param(g, GB_SH(20), "untrained");
        uint32_t gi = gb(g, OP_INPUT, GB_NOIN, GB_SH(rows[k], cols[k]), (GAttr){.input = {IN_IMAGE}},
                         dl_pool_strdup(pool, k ? "g2.in" : "g1.in"));
        uint32_t gr = gb(g, OP_SCALE, GB_IN(gi), GB_SH(rows[k], cols[k]), (GAttr){.f = 2.0f},
                         dl_pool_strdup(pool, k ? "grad.w2" : "grad.w1"));
        g->nodes[gr].param = w;
        uint32_t st[2];
        for (int s = 0; s < 1 + adam; s++) {
            st[s] = gb(g, OP_STATE, GB_NOIN, GB_SH(rows[k], cols[k]), (GAttr){.ostate = {s}},
                       pjoin(pool, names[k], s ? "state1" : "state0"));
            g->nodes[st[s]].param = w;
        }
        uint32_t u = adam ? gb(g, op, GB_IN(w, gr, st[0], st[1], sc), GB_SH(rows[k], cols[k]), at,
                               pjoin(pool, names[k], graph_op_name[op]))
                          : gb(g, op, GB_IN(w, gr, st[0], sc), GB_SH(rows[k], cols[k]), at,
                               pjoin(pool, names[k], graph_op_name[op]));
        g->nodes[u].inplace = w;
    }
    check_graph(g, pool, what);
    dl_pool_free(pool);
}

/* PyTorch SGD with momentum and weight decay, plain and Nesterov. */
static void test_sgd_update_matches_reference(void **st)
{
    (void)st;
    opt_case(OP_SGD, (GAttr){.sgd = {5e-4f}}, "sgd_momentum_weight_decay");
    opt_case(OP_SGD_NESTEROV, (GAttr){.sgd = {5e-4f}}, "sgd_nesterov_weight_decay");
}

/* Adam (L2 weight decay) and AdamW (decoupled), scalars at step 5: the bias
 * corrections in double, the element update in float. */
static void test_adam_update_matches_reference(void **st)
{
    (void)st;
    opt_case(OP_ADAM, (GAttr){.adam = {0, 0.999, 1e-8}}, "adam");
    opt_case(OP_ADAM, (GAttr){.adam = {1e-2f, 0.99, 1e-6}}, "adam_weight_decay");
    opt_case(OP_ADAMW, (GAttr){.adam = {1e-2f, 0.999, 1e-8}}, "adamw_weight_decay");
}

/* ---- differentiated graphs ------------------------------------------------ */

/* A small age-like net built by hand, differentiated by autodiff. */
static void test_small_differentiated_net_matches_reference(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    GAttr bn = {.bn = {1e-5f, 0.1f}};
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 8, 8), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t w = gb_param(g, GB_SH(4, 3, 3, 3), "c1.w");
    uint32_t c = gb(g, OP_CONV2D, GB_IN(x, w), GB_SH(2, 4, 8, 8), (GAttr){.conv = {3, 3, 1, 1}}, "c1.conv");
    uint32_t gamma = gb_param(g, GB_SH(4), "c1.gamma"), beta = gb_param(g, GB_SH(4), "c1.beta");
    uint32_t run = gb(g, OP_STATE, GB_NOIN, GB_SH(2, 4), GB_NOATTR, "c1.running");
    uint32_t sts = gb(g, OP_BN_STATS, GB_IN(c), GB_SH(2, 4), bn, "c1.stats");
    uint32_t ru = gb(g, OP_BN_RUNNING, GB_IN(sts, run), GB_SH(2, 4), bn, "c1.run_update");
    g->nodes[ru].inplace = run;
    uint32_t y = gb(g, OP_BN_APPLY, GB_IN(c, sts, gamma, beta), GB_SH(2, 4, 8, 8), bn, "c1.bn");
    uint32_t r = gb(g, OP_RELU, GB_IN(y), GB_SH(2, 4, 8, 8), GB_NOATTR, "c1");
    uint32_t mp = gb(g, OP_MAXPOOL, GB_IN(r), GB_SH(2, 4, 4, 4), (GAttr){.pool = {2, 2, 0}}, "p1");
    uint32_t gp = gb(g, OP_GAP, GB_IN(mp), GB_SH(2, 4), GB_NOATTR, "gap");
    uint32_t fw = gb_param(g, GB_SH(7, 4), "fc.w"), fb = gb_param(g, GB_SH(7), "fc.b");
    uint32_t mm = gb(g, OP_MATMUL, GB_IN(gp, fw), GB_SH(2, 7), (GAttr){.mm = {0, 1}}, "fc.mm");
    uint32_t z = gb(g, OP_BIAS_ADD, GB_IN(mm, fb), GB_SH(2, 7), GB_NOATTR, "fc");
    uint32_t t = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 7), (GAttr){.input = {IN_TARGET}}, "target");
    uint32_t lab = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 1), (GAttr){.input = {IN_LABEL}}, "label");
    float *v = dl_pool_alloc(pool, 7 * sizeof *v);
    for (int k = 0; k < 7; k++) v[k] = (float)k;
    uint32_t bins = gb(g, OP_CONST, GB_NOIN, GB_SH(1, 7), (GAttr){.cst = {v}}, "bins");
    gb_loss_tail(g, z, t, lab, bins, 1.0f);
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(ad_differentiate(g, &diag), 0);
    check_graph(g, pool, "small_net_train_step");
    dl_pool_free(pool);
}

/* specs/NAME.dldl at batch 2 (tests/ref/spec_programs.h): the kernel check
 * on its train (after autodiff) and eval programs. */
static void spec_case_ranks(const char *name, int batch, int ranks)
{
    RefSpec r;
    ref_spec_open_ranks(&r, name, batch, ranks);
    int ok = 1;
    for (int p = 0; p < r.nprogs; p++) {
        PbProgram *pr = &r.progs[p];
        KExec x;
        char *what = dl_xasprintf("%s%s %s (batch %d)", name, strchr(name, '/') ? "" : ".dldl", pr->name, pr->g->batch);
        ok &= kx_build_from(&x, pr->g, &pr->sched, &pr->mem, &pr->mod) == 0 && check_run(&x, what);
        kx_free(&x);
        free(what);
    }
    ref_spec_close(&r);
    assert_true(ok);
}
static void spec_case(const char *name) { spec_case_ranks(name, 2, 0); }
static void test_age_spec_programs_match_reference(void **st) { (void)st; spec_case("age"); }
/* train@2 at batch 4 (2 samples a rank): synchronised batch norm's partial sums, all-reduce (one process:
   the identity) and finalize over the global count 4 */
static void test_age_rank_program_matches_reference(void **st) { (void)st; spec_case_ranks("age", 4, 2); }
static void test_pose_spec_programs_match_reference(void **st) { (void)st; spec_case("pose"); }
static void test_adam_spec_programs_match_reference(void **st) { (void)st; spec_case("tests/ops/adam.dldl"); }
static void test_fcn_spec_programs_match_reference(void **st) { (void)st; spec_case("tests/ops/fcn.dldl"); }
static void test_seg_spec_programs_match_reference(void **st) { (void)st; spec_case("tests/ops/seg.dldl"); }

/* Every op that generated kernels implement ran in some kernel above. */
static void test_every_kernel_op_is_covered(void **st)
{
    (void)st;
    int missing = 0;
    for (int op = 0; op < OP_COUNT; op++) {
        GOpKind k = graph_op_kind[op];
        if (k == OPK_SOURCE || k == OPK_VIEW || k == OPK_LIB || covered[op]) continue;
        printf("  not covered by any generated kernel: %s\n", graph_op_name[op]);
        missing++;
    }
    assert_int_equal(missing, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_elementwise_chain_matches_reference),
        cmocka_unit_test(test_batchnorm_kernels_match_reference),
        cmocka_unit_test(test_pooling_windows_match_reference),
        cmocka_unit_test(test_resample_concat_slice_match_reference),
        cmocka_unit_test(test_upsample_gives_pytorch_values),
        cmocka_unit_test(test_conv_transpose2d_library_matches_reference),
        cmocka_unit_test(test_loss_tail_rows_match_reference),
        cmocka_unit_test(test_dropout_mask_matches_reference),
        cmocka_unit_test(test_sgd_update_matches_reference),
        cmocka_unit_test(test_adam_update_matches_reference),
        cmocka_unit_test(test_small_differentiated_net_matches_reference),
        cmocka_unit_test(test_age_spec_programs_match_reference),
        cmocka_unit_test(test_age_rank_program_matches_reference),
        cmocka_unit_test(test_pose_spec_programs_match_reference),
        cmocka_unit_test(test_adam_spec_programs_match_reference),
        cmocka_unit_test(test_fcn_spec_programs_match_reference),
        cmocka_unit_test(test_seg_spec_programs_match_reference),
        cmocka_unit_test(test_every_kernel_op_is_covered),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
