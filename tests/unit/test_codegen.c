/* test_codegen.c - the kernel IR and its builders, run.
 *
 * Each case builds a small graph by hand (tests/ref/gbuild.h), its groups and
 * a trivial memory plan (every stored node its own slot, in-place writers on
 * their target), calls cg_generate, compiles the C module (prelude + body)
 * with `cc -O2 -shared -fPIC` and runs every kernel in two chunks of its grid
 * on random inputs (tests/ref/kexec.c), comparing every group output with the
 * double-precision reference interpreter (tests/ref/interp.c, plain C loops
 * straight from ops.def): normalised max error printed per output, <= 1e-5.
 * The CUDA module of every case must compile with NVRTC for compute_80 and
 * compute_90.  Dropout (which the interpreter does not model) is checked
 * against the prelude's dl_keep directly; hand-built KIR checks the renderer
 * and the verifier.
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

#include "../ref/interp.c" /* the reference, included as source (interp.h) */
#include "../ref/kexec.c"
#include "../ref/gbuild.h"
#include "../../codegen/kir.h"

#define TOL 1e-5
#define MAXG 16

typedef struct Case {
    DlPool *pool;
    Graph *g;
    GGroup grp[MAXG];
    int ngrp;
    GMemPlan mp;
    double **vals;
    int poison;        /* fill group outputs with NaN before the run (every element must be written) */
} Case;

static uint64_t rng = 88172645463325252ULL;
static double urand(double lo, double hi)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

static void case_init(Case *c, int batch)
{
    memset(c, 0, sizeof *c);
    c->pool = dl_pool_new();
    c->g = graph_new(c->pool, batch);
}

static void case_free(Case *c)
{
    if (c->vals) ref_free_values(c->g, c->vals);
    dl_pool_free(c->pool);
}

static int has(const uint32_t *a, int n, uint32_t x)
{
    for (int i = 0; i < n; i++)
        if (a[i] == x) return 1;
    return 0;
}

/* A group of members (topological order) and outs; ins are computed. */
static void group(Case *c, GGroupKind kind, const uint32_t *mem, int nm, const uint32_t *outs, int no)
{
    GGroup *gr = &c->grp[c->ngrp];
    gr->kind = kind;
    gr->nodes = dl_pool_alloc(c->pool, sizeof(uint32_t) * (size_t)nm);
    memcpy(gr->nodes, mem, sizeof(uint32_t) * (size_t)nm);
    gr->nnodes = nm;
    gr->outs = dl_pool_alloc(c->pool, sizeof(uint32_t) * (size_t)no);
    memcpy(gr->outs, outs, sizeof(uint32_t) * (size_t)no);
    gr->nouts = no;
    gr->ins = dl_pool_alloc(c->pool, sizeof(uint32_t) * G_MAX_IN * (size_t)nm + 1);
    for (uint32_t v = 0; v < c->g->n; v++) /* sorted by construction */
        for (int i = 0; i < nm && !has(gr->ins, gr->nins, v); i++) {
            const GNode *n = &c->g->nodes[mem[i]];
            for (int j = 0; j < n->nin; j++)
                if (n->in[j] == v && !has(mem, nm, v)) gr->ins[gr->nins++] = v;
        }
    gr->name = dl_pool_strdup(c->pool, graph_op_name[c->g->nodes[mem[0]].op]);
    c->ngrp++;
}
#define GROUP(c, kind, MEM, OUTS) group(c, kind, (const uint32_t[])MEM, (int)(sizeof((const uint32_t[])MEM) / 4), \
                                        (const uint32_t[])OUTS, (int)(sizeof((const uint32_t[])OUTS) / 4))
#define L(...) {__VA_ARGS__}

static GArena arena_of(const GNode *n)
{
    switch (n->op) {
    case OP_PARAM: return AR_PARAM;
    case OP_STATE: return AR_STATE;
    case OP_INPUT: case OP_SCALARS: return AR_INPUT;
    case OP_CONST: return AR_CONST;
    default: return AR_ACT;
    }
}

/* every source and every group in/out gets its own 16-aligned slot */
static void plan(Case *c)
{
    const Graph *g = c->g;
    c->mp.buf = dl_pool_alloc(c->pool, sizeof(GBuffer) * g->n);
    uint8_t *need = calloc(g->n, 1);
    for (uint32_t i = 0; i < g->n; i++) need[i] = graph_op_kind[g->nodes[i].op] == OPK_SOURCE;
    for (int k = 0; k < c->ngrp; k++) {
        for (int i = 0; i < c->grp[k].nins; i++) need[c->grp[k].ins[i]] = 1;
        for (int i = 0; i < c->grp[k].nouts; i++) need[c->grp[k].outs[i]] = 1;
    }
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *n = &g->nodes[i];
        GBuffer *b = &c->mp.buf[i];
        *b = (GBuffer){AR_ACT, -1, 0};
        if (n->inplace != G_NONE) *b = c->mp.buf[n->inplace];
        else if (need[i]) {
            GArena a = arena_of(n);
            *b = (GBuffer){a, c->mp.arena_size[a], graph_numel(n)};
            c->mp.arena_size[a] += (graph_numel(n) + 15) / 16 * 16;
        }
    }
    free(need);
}

static void fill(Case *c, uint32_t node, double lo, double hi)
{
    for (int64_t k = 0; k < graph_numel(&c->g->nodes[node]); k++) c->vals[node][k] = urand(lo, hi);
}

/* Random sources in [-1, 1]; the caller then adjusts special ones (fill). */
static void sources(Case *c)
{
    c->vals = ref_alloc_values(c->g);
    for (uint32_t i = 0; i < c->g->n; i++)
        if (c->vals[i] && graph_op_kind[c->g->nodes[i].op] == OPK_SOURCE && c->g->nodes[i].op != OP_CONST)
            fill(c, i, -1, 1);
}

static void check_nvrtc(const CgModule *m)
{
    char *src = dl_xasprintf("%s%s", cg_prelude_cuda(), m->body);
    static const char *const arch[] = {"compute_80", "compute_90"};
    for (int a = 0; a < 2; a++) {
        char *ptx = NULL, *log = NULL;
        int r = cg_compile_ptx(src, arch[a], &ptx, &log);
        if (r) printf("NVRTC %s:\n%s\n", arch[a], log);
        else printf("    NVRTC %s: %d kernels, %zu bytes of PTX\n", arch[a], m->nkernels, strlen(ptx));
        assert_int_equal(r, 0);
        assert_non_null(strstr(ptx, m->kernels[0].name));
        free(ptx);
        free(log);
    }
    free(src);
}

/* Generate, compile, run the schedule against the interpreter (after the
 * caller filled sources), compile for CUDA. */
static void run_case(Case *c, const char *what)
{
    printf("  %s\n", what);
    plan(c);
    GSchedule s = {c->grp, c->ngrp};
    CgModule m;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(cg_generate(c->g, &s, &c->mp, "t_", &m, &diag), 0);
    if (getenv("DLDL_TEST_VERBOSE")) printf("%s\n%s", m.kir_text, m.body);
    KExec x;
    assert_int_equal(kx_build_from(&x, c->g, &s, &c->mp, &m), 0);
    x.verbose = 1;
    kx_load_sources(&x, c->vals);
    for (int k = 0; c->poison && k < c->ngrp; k++)
        for (int i = 0; i < c->grp[k].nouts; i++) {
            const GBuffer *gb_ = &c->mp.buf[c->grp[k].outs[i]];
            for (int64_t e = 0; e < gb_->numel; e++) x.arena[gb_->arena][gb_->offset + e] = NAN;
        }
    assert_int_equal(ref_run(c->g, c->vals), 0);
    double worst = 0;
    int bad = kx_run_compare(&x, c->vals, TOL, &worst);
    printf("    %d kernels, worst normalised error %.2e\n", m.nkernels, worst);
    assert_int_equal(bad, 0);
    check_nvrtc(&m);
    kx_free(&x);
    cg_module_free(&m);
}

static const GAttr BN = {.bn = {1e-5f, 0.1f}};

static void test_bn_forward(void **state)
{
    Case c;
    case_init(&c, 2);
    Graph *g = c.g;
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 4, 5), GB_NOATTR, "x");
    uint32_t run = gb(g, OP_STATE, GB_NOIN, GB_SH(2, 3), GB_NOATTR, "bn.running");
    uint32_t gam = gb_param(g, GB_SH(3), "bn.weight"), bet = gb_param(g, GB_SH(3), "bn.bias");
    uint32_t yi = gb(g, OP_BN_INFER, GB_IN(x, run, gam, bet), GB_SH(2, 3, 4, 5), BN, "bn.infer");
    uint32_t st = gb(g, OP_BN_STATS, GB_IN(x), GB_SH(2, 3), BN, "bn.stats");
    uint32_t rr = gb(g, OP_BN_RUNNING, GB_IN(st, run), GB_SH(2, 3), BN, "bn.running.new");
    g->nodes[rr].inplace = run;
    uint32_t ya = gb(g, OP_BN_APPLY, GB_IN(x, st, gam, bet), GB_SH(2, 3, 4, 5), BN, "bn.y");
    uint32_t yr = gb(g, OP_RELU, GB_IN(ya), GB_SH(2, 3, 4, 5), GB_NOATTR, "relu.y");
    GROUP(&c, GG_ELEM, L(yi), L(yi));
    GROUP(&c, GG_CHANRED, L(st, rr), L(st, rr));
    GROUP(&c, GG_ELEM, L(ya, yr), L(yr));
    sources(&c);
    fill(&c, x, -2, 3);
    fill(&c, run, 0.5, 1.5);
    run_case(&c, "bn_stats+bn_running, bn_apply+relu, bn_infer");
    case_free(&c);
}

static void test_bn_backward(void **state)
{
    Case c;
    case_init(&c, 2);
    Graph *g = c.g;
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 4, 5), GB_NOATTR, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 4, 5), GB_NOATTR, "dy");
    uint32_t y = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 4, 5), GB_NOATTR, "relu.y");
    uint32_t gam = gb_param(g, GB_SH(3), "bn.weight");
    uint32_t dl = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 7), GB_NOATTR, "linear.dy");
    uint32_t dgp = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3), GB_NOATTR, "gap.dy");
    uint32_t st = gb(g, OP_BN_STATS, GB_IN(x), GB_SH(2, 3), BN, "bn.stats");
    uint32_t gr = gb(g, OP_RELU_BWD, GB_IN(dy, y), GB_SH(2, 3, 4, 5), GB_NOATTR, "relu.dx");
    uint32_t bs = gb(g, OP_BN_BWD_STATS, GB_IN(gr, x, st), GB_SH(2, 3), BN, "bn.bstats");
    uint32_t db = gb(g, OP_SELECT, GB_IN(bs), GB_SH(3), (GAttr){.i = 0}, "bn.bias.grad");
    uint32_t dg = gb(g, OP_SELECT, GB_IN(bs), GB_SH(3), (GAttr){.i = 1}, "bn.weight.grad");
    uint32_t dx = gb(g, OP_BN_BWD_DATA, GB_IN(gr, x, st, gam, bs), GB_SH(2, 3, 4, 5), BN, "bn.dx");
    uint32_t cs = gb(g, OP_CHAN_SUM, GB_IN(dl), GB_SH(7), GB_NOATTR, "linear.bias.grad");
    uint32_t gpb = gb(g, OP_GAP_BWD, GB_IN(dgp), GB_SH(2, 3, 4, 5), GB_NOATTR, "gap.dx");
    /* an elementwise chain with broadcast [C], an internal value, two outputs */
    uint32_t t = gb(g, OP_BIAS_ADD, GB_IN(x, gam), GB_SH(2, 3, 4, 5), GB_NOATTR, "t");
    uint32_t u = gb(g, OP_SCALE, GB_IN(t), GB_SH(2, 3, 4, 5), (GAttr){.f = 0.5f}, "u");
    uint32_t v = gb(g, OP_EXP, GB_IN(u), GB_SH(2, 3, 4, 5), GB_NOATTR, "v");
    uint32_t w = gb(g, OP_MUL, GB_IN(v, dy), GB_SH(2, 3, 4, 5), GB_NOATTR, "w");
    uint32_t z = gb(g, OP_ADD, GB_IN(w, gpb), GB_SH(2, 3, 4, 5), GB_NOATTR, "z");
    GROUP(&c, GG_CHANRED, L(st), L(st));
    GROUP(&c, GG_CHANRED, L(gr, bs, db, dg), L(bs, db, dg));
    GROUP(&c, GG_ELEM, L(gr, dx), L(dx));
    GROUP(&c, GG_CHANRED, L(cs), L(cs));
    GROUP(&c, GG_ELEM, L(gpb), L(gpb));
    GROUP(&c, GG_ELEM, L(t, u, v, w, z), L(u, z));
    sources(&c);
    run_case(&c, "relu_bwd+bn_bwd_stats+select, relu_bwd+bn_bwd_data, chan_sum [B,C], gap_bwd, elem chain");
    case_free(&c);
}

static void test_loss_tail(void **state)
{
    enum { B = 3, K = 7, A = 2 };
    Case c;
    case_init(&c, B);
    Graph *g = c.g;
    float *bins = dl_pool_alloc(c.pool, sizeof(float) * A * K);
    for (int k = 0; k < A * K; k++) bins[k] = (float)(k % K) * 10.0f - 20.0f + (float)(k / K);
    uint32_t z = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, K), GB_NOATTR, "logits");
    uint32_t tg = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, K), GB_NOATTR, "target");
    uint32_t lb = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, A), GB_NOATTR, "label");
    uint32_t v = gb(g, OP_CONST, GB_NOIN, GB_SH(A, K), (GAttr){.cst = {bins}}, "bins");
    uint32_t lq = gb(g, OP_LOG_SOFTMAX, GB_IN(z), GB_SH(B, K), GB_NOATTR, "logq");
    uint32_t kl = gb(g, OP_KL_ROWS, GB_IN(tg, lq), GB_SH(B), GB_NOATTR, "kl.rows");
    uint32_t p = gb(g, OP_EXP, GB_IN(lq), GB_SH(B, K), GB_NOATTR, "probs");
    uint32_t e = gb(g, OP_EXPECT, GB_IN(p, v), GB_SH(B, A), GB_NOATTR, "expect");
    uint32_t l1 = gb(g, OP_ABSDIFF_ROWS, GB_IN(e, lb), GB_SH(B), GB_NOATTR, "l1.rows");
    uint32_t klm = gb(g, OP_MEAN, GB_IN(kl), GB_SH(1), GB_NOATTR, "kl");
    uint32_t l1m = gb(g, OP_MEAN, GB_IN(l1), GB_SH(1), GB_NOATTR, "l1");
    uint32_t l1w = gb(g, OP_SCALE, GB_IN(l1m), GB_SH(1), (GAttr){.f = 0.1f}, "l1.w");
    uint32_t loss = gb(g, OP_ADD, GB_IN(klm, l1w), GB_SH(1), GB_NOATTR, "loss");
    uint32_t one = gb(g, OP_FILL, GB_NOIN, GB_SH(1), (GAttr){.f = 1.0f}, "dloss");
    uint32_t dl1m = gb(g, OP_SCALE, GB_IN(one), GB_SH(1), (GAttr){.f = 0.1f}, "dl1");
    uint32_t dkl = gb(g, OP_MEAN_BWD, GB_IN(one), GB_SH(B), GB_NOATTR, "dkl.rows");
    uint32_t dl1 = gb(g, OP_MEAN_BWD, GB_IN(dl1m), GB_SH(B), GB_NOATTR, "dl1.rows");
    uint32_t dq1 = gb(g, OP_KL_BWD, GB_IN(dkl, tg), GB_SH(B, K), GB_NOATTR, "dlogq.kl");
    uint32_t de = gb(g, OP_ABSDIFF_BWD, GB_IN(dl1, e, lb), GB_SH(B, A), GB_NOATTR, "dexpect");
    uint32_t dp = gb(g, OP_EXPECT_BWD, GB_IN(de, v), GB_SH(B, K), GB_NOATTR, "dprobs");
    uint32_t dq2 = gb(g, OP_MUL, GB_IN(dp, p), GB_SH(B, K), GB_NOATTR, "dlogq.l1");
    uint32_t dq = gb(g, OP_ADD, GB_IN(dq1, dq2), GB_SH(B, K), GB_NOATTR, "dlogq");
    uint32_t dz = gb(g, OP_LOG_SOFTMAX_BWD, GB_IN(dq, lq), GB_SH(B, K), GB_NOATTR, "dlogits");
    GROUP(&c, GG_ROW, L(lq, kl, p, e, l1, one, dl1m, dkl, dl1, dq1, de, dp, dq2, dq, dz), L(kl, p, e, l1, one, dz));
    GROUP(&c, GG_BATCHRED, L(klm), L(klm));
    GROUP(&c, GG_BATCHRED, L(l1m), L(l1m));
    GROUP(&c, GG_ELEM, L(l1w, loss), L(loss));
    sources(&c);
    fill(&c, z, -3, 3);
    fill(&c, lb, -20, 40);
    for (int b = 0; b < B; b++) { /* a distribution with a zero bin: 0 log 0 = 0 */
        double s = 0;
        for (int k = 0; k < K; k++) s += (c.vals[tg][b * K + k] = k == 2 ? 0 : urand(0.01, 1));
        for (int k = 0; k < K; k++) c.vals[tg][b * K + k] /= s;
    }
    run_case(&c, "loss tail (one row kernel, forward and backward), mean, [1] elementwise");
    case_free(&c);
}

static void test_pool(void **state)
{
    Case c;
    case_init(&c, 2);
    Graph *g = c.g;
    GAttr k2 = {.pool = {2, 2, 0}}, k3 = {.pool = {3, 2, 1}};
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 6, 6), GB_NOATTR, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 3, 3), GB_NOATTR, "dy");
    uint32_t m2 = gb(g, OP_MAXPOOL, GB_IN(x), GB_SH(2, 3, 3, 3), k2, "max2");
    uint32_t m2b = gb(g, OP_MAXPOOL_BWD, GB_IN(dy, x), GB_SH(2, 3, 6, 6), k2, "max2.dx");
    uint32_t m3 = gb(g, OP_MAXPOOL, GB_IN(x), GB_SH(2, 3, 3, 3), k3, "max3");
    uint32_t m3b = gb(g, OP_MAXPOOL_BWD, GB_IN(dy, x), GB_SH(2, 3, 6, 6), k3, "max3.dx");
    uint32_t a3 = gb(g, OP_AVGPOOL, GB_IN(x), GB_SH(2, 3, 3, 3), k3, "avg3");
    uint32_t a3b = gb(g, OP_AVGPOOL_BWD, GB_IN(dy), GB_SH(2, 3, 6, 6), k3, "avg3.dx");
    uint32_t gp = gb(g, OP_GAP, GB_IN(x), GB_SH(2, 3), GB_NOATTR, "gap");
    uint32_t all[] = {m2, m2b, m3, m3b, a3, a3b, gp};
    for (int i = 0; i < 7; i++) group(&c, GG_WINDOW, &all[i], 1, &all[i], 1);
    sources(&c);
    for (int k = 0; k < 2 * 3 * 36; k++) c.vals[x][k] = floor(urand(0, 4)) / 4; /* ties */
    c.poison = 1;
    run_case(&c, "maxpool k2s2 / k3s2p1 and backward (ties: first arg-max), avgpool k3s2p1 and backward, gap");
    case_free(&c);
}

/* Max and average pooling, forward and backward, of one size/stride/pad on a
 * [2,3,n,n] x with ties (values in {0, .25, .5, .75}): four window groups. */
static void pool_config(Case *c, uint32_t x, int64_t n, int ks, int s, int p)
{
    Graph *g = c->g;
    GAttr a = {.pool = {ks, s, p}};
    int64_t o = (n + 2 * p - ks) / s + 1;
    char nm[4][32];
    snprintf(nm[0], sizeof nm[0], "max%d%d%d", ks, s, p);
    snprintf(nm[1], sizeof nm[1], "max%d%d%d.dx", ks, s, p);
    snprintf(nm[2], sizeof nm[2], "avg%d%d%d", ks, s, p);
    snprintf(nm[3], sizeof nm[3], "avg%d%d%d.dx", ks, s, p);
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, o, o), GB_NOATTR, "dy");
    uint32_t m[4];
    m[0] = gb(g, OP_MAXPOOL, GB_IN(x), GB_SH(2, 3, o, o), a, dl_pool_strdup(c->pool, nm[0]));
    m[1] = gb(g, OP_MAXPOOL_BWD, GB_IN(dy, x), GB_SH(2, 3, n, n), a, dl_pool_strdup(c->pool, nm[1]));
    m[2] = gb(g, OP_AVGPOOL, GB_IN(x), GB_SH(2, 3, o, o), a, dl_pool_strdup(c->pool, nm[2]));
    m[3] = gb(g, OP_AVGPOOL_BWD, GB_IN(dy), GB_SH(2, 3, n, n), a, dl_pool_strdup(c->pool, nm[3]));
    for (int i = 0; i < 4; i++) group(c, GG_WINDOW, &m[i], 1, &m[i], 1);
}

/* The window kernels split each axis into border and interior outputs and
 * scatter the backward of non-overlapping windows: odd planes (a last row
 * and column no window covers), padding on one or both sides, stride >
 * size (uncovered rows between windows), and overlapping windows (gather). */
static void test_pool_shapes(void **state)
{
    static const int cfg[2][3][3] = {
        {{2, 2, 0}, {3, 3, 0}, {3, 3, 1}}, /* scatter: 7x7 -> 3x3 (row/col 6 bare), 2x2 (row/col 6 bare), 3x3 */
        {{2, 2, 1}, {2, 3, 0}, {3, 2, 1}}, /* scatter 4x4 padded left; stride > size (bare rows 2, 5, 6); gather */
    };
    for (int t = 0; t < 2; t++) {
        Case c;
        case_init(&c, 2);
        c.poison = 1;
        uint32_t x = gb(c.g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 7, 7), GB_NOATTR, "x");
        for (int i = 0; i < 3; i++) pool_config(&c, x, 7, cfg[t][i][0], cfg[t][i][1], cfg[t][i][2]);
        sources(&c);
        for (int k = 0; k < 2 * 3 * 49; k++) c.vals[x][k] = floor(urand(0, 4)) / 4; /* ties */
        run_case(&c, t ? "7x7: max/avg pool and backward k2s2p1, k2s3p0, k3s2p1 (ties)"
                       : "7x7: max/avg pool and backward k2s2p0, k3s3p0, k3s3p1 (ties)");
        case_free(&c);
    }
}

static void test_sgd(void **state)
{
    Case c;
    case_init(&c, 2);
    Graph *g = c.g;
    int64_t sh[3][2] = {{9, 4}, {5, 1}, {7, 3}};
    uint32_t sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars"), s[3], w[3], gr[3], v[3];
    for (int i = 0; i < 3; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "p%d", i);
        w[i] = gb_param(g, sh[i], 2, dl_pool_strdup(c.pool, nm));
        snprintf(nm, sizeof nm, "p%d.grad", i);
        gr[i] = gb(g, OP_INPUT, GB_NOIN, sh[i], 2, GB_NOATTR, dl_pool_strdup(c.pool, nm));
        snprintf(nm, sizeof nm, "p%d.momentum", i);
        v[i] = gb(g, OP_STATE, GB_NOIN, sh[i], 2, GB_NOATTR, dl_pool_strdup(c.pool, nm));
    }
    for (int i = 0; i < 3; i++) {
        s[i] = gb(g, OP_SGD, GB_IN(w[i], gr[i], v[i], sc), GB_SH(sh[i][0], sh[i][1]), (GAttr){.sgd = {5e-4f}}, "sgd");
        g->nodes[s[i]].inplace = w[i];
    }
    GROUP(&c, GG_OPT, L(s[0], s[1], s[2]), L(s[0], s[1], s[2]));
    plan(&c); /* gradients and momentum at their parameter's offsets */
    for (int i = 0; i < 3; i++) {
        c.mp.buf[gr[i]] = c.mp.buf[v[i]] = c.mp.buf[w[i]];
        c.mp.buf[gr[i]].arena = AR_GRAD, c.mp.buf[v[i]].arena = AR_OPT;
    }
    c.mp.arena_size[AR_GRAD] = c.mp.arena_size[AR_OPT] = c.mp.arena_size[AR_PARAM];
    sources(&c);
    double sv[4] = {0.05, 0.9, 3, 7};
    memcpy(c.vals[sc], sv, sizeof sv);
    GSchedule sched = {c.grp, c.ngrp};
    CgModule m;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(cg_generate(g, &sched, &c.mp, "t_", &m, &diag), 0);
    assert_int_equal(m.nkernels, 1);
    assert_int_equal(m.kernels[0].nargs, 4);
    assert_int_equal(m.kernels[0].grid, 48 + 16 + 21); /* 36 and 5 padded to 16 */
    KExec x;
    assert_int_equal(kx_build_from(&x, g, &sched, &c.mp, &m), 0);
    x.verbose = 1;
    kx_load_sources(&x, c.vals);
    assert_int_equal(ref_run(g, c.vals), 0);
    double worst = 0;
    printf("  sgd over 3 parameters\n");
    assert_int_equal(kx_run_compare(&x, c.vals, TOL, &worst), 0);
    check_nvrtc(&m);
    kx_free(&x);
    cg_module_free(&m);
    /* a weight decay that differs is an internal error naming the group */
    g->nodes[s[2]].attr.sgd.wd = 1e-3f;
    FILE *err = tmpfile();
    dl_diag_init(&diag, NULL, err);
    assert_int_equal(cg_generate(g, &sched, &c.mp, "t_", &m, &diag), 1);
    char msg[512] = "";
    rewind(err);
    size_t n = fread(msg, 1, sizeof msg - 1, err);
    msg[n] = 0;
    fclose(err);
    printf("    expected error: %s", msg);
    assert_non_null(strstr(msg, "weight decay"));
    cg_module_free(&m);
    case_free(&c);
}

/* Compile prelude + body (+ extra) as a shared object; returns the handle. */
static void *compile_c(const char *body, const char *extra)
{
    char dir[] = "/tmp/dldl_cgtest_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *src = dl_xasprintf("%s/k.c", dir), *so = dl_xasprintf("%s/k.so", dir);
    FILE *f = fopen(src, "w");
    assert_non_null(f);
    fprintf(f, "%s%s%s", cg_prelude_c(), body, extra ? extra : "");
    fclose(f);
    char *cmd = dl_xasprintf("cc -std=c11 -O2 -shared -fPIC -o %s %s && rm -f %s", so, src, src);
    assert_int_equal(system(cmd), 0);
    void *h = dlopen(so, RTLD_NOW);
    assert_non_null(h);
    free(cmd);
    cmd = dl_xasprintf("rm -rf %s", dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", dir);
    free(cmd), free(src), free(so);
    return h;
}

static void test_dropout(void **state)
{
    enum { N = 8 * 250 };
    Case c;
    case_init(&c, 8);
    Graph *g = c.g;
    GAttr p3 = {.dropout = {0.3f}};
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(8, 250), GB_NOATTR, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(8, 250), GB_NOATTR, "dy");
    uint32_t sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    uint32_t y = gb(g, OP_DROPOUT, GB_IN(x, sc), GB_SH(8, 250), p3, "drop.y");
    uint32_t dx = gb(g, OP_DROPOUT_BWD, GB_IN(dy, sc), GB_SH(8, 250), p3, "drop.dx");
    GROUP(&c, GG_ELEM, L(y), L(y));
    GROUP(&c, GG_ELEM, L(dx), L(dx));
    plan(&c);
    GSchedule sched = {c.grp, c.ngrp};
    CgModule m;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(cg_generate(g, &sched, &c.mp, "t_", &m, &diag), 0);
    void *h = compile_c(m.body, "int t_keep(float s, float t, int64_t i, float p);\n"
                                "int t_keep(float s, float t, int64_t i, float p) { return dl_keep(s, t, i, p); }\n");
    KxKernelFn fy = (KxKernelFn)dlsym(h, m.kernels[0].name), fdx = (KxKernelFn)dlsym(h, m.kernels[1].name);
    int (*keep)(float, float, int64_t, float) = (int (*)(float, float, int64_t, float))dlsym(h, "t_keep");
    assert_true(fy && fdx && keep);
    float *in = calloc((size_t)c.mp.arena_size[AR_INPUT], sizeof(float));
    float *act = calloc((size_t)c.mp.arena_size[AR_ACT], sizeof(float));
    float *px = in + c.mp.buf[x].offset, *pdy = in + c.mp.buf[dy].offset, *ps = in + c.mp.buf[sc].offset;
    for (int k = 0; k < N; k++) px[k] = (float)urand(0.5, 1.5), pdy[k] = (float)urand(0.5, 1.5);
    ps[2] = 12, ps[3] = 5; /* step, seed */
    float *py = act + c.mp.buf[y].offset, *pdx = act + c.mp.buf[dx].offset;
    float *by[3] = {px, ps, py}, *bdx[3] = {pdy, ps, pdx};
    assert_int_equal(m.kernels[0].nargs, 3);
    fy(by, 0, 700), fy(by, 700, m.kernels[0].grid);
    fdx(bdx, 0, m.kernels[1].grid);
    int kept = 0, same_next = 0;
    for (int k = 0; k < N; k++) {
        int kp = keep(5, 12, k, 0.3f);
        kept += kp;
        same_next += kp == keep(5, 13, k, 0.3f);
        assert_true(py[k] == (kp ? px[k] * (float)(1.0 / 0.7) : 0.0f));
        assert_true(pdx[k] == (kp ? pdy[k] * (float)(1.0 / 0.7) : 0.0f));
    }
    printf("  dropout p=0.3: kept %d of %d; masks of steps 12 and 13 agree on %d\n", kept, N, same_next);
    assert_true(fabs(kept / (double)N - 0.7) < 0.04);
    assert_true(fabs(same_next / (double)N - 0.58) < 0.05); /* independent: 0.7^2 + 0.3^2 */
    check_nvrtc(&m);
    free(in), free(act);
    dlclose(h);
    cg_module_free(&m);
    case_free(&c);
}

/* KIR built by hand: y[g] = sum_{j<4} max(x[4g+j], 0) * t[j] through a local array */
static void test_kir_hand(void **state)
{
    KirKernel k;
    kir_init(&k, "t_hand", 5);
    int xb = kir_buf(&k, "x [20]", 20, 0), yb = kir_buf(&k, "y [5]", 5, 1);
    int gid = kir_gid(&k);
    assert_int_equal(k.ex.a[kir_bin(&k, KX_MUL, kir_i64(&k, 6), kir_i64(&k, 7))].i, 42); /* folded */
    assert_int_equal(kir_bin(&k, KX_ADD, gid, kir_i64(&k, 0)), gid);
    int t = kir_decl_arr(&k, k.body, "t", 4);
    int j = kir_var(&k, "j", KT_I64, 0), l1 = kir_block(&k), l2 = kir_block(&k);
    kir_loop(&k, k.body, j, kir_i64(&k, 0), kir_i64(&k, 4), l1);
    kir_storel(&k, l1, t, kir_ref(&k, j), kir_un(&k, KX_TOF32, kir_bin(&k, KX_ADD, kir_ref(&k, j), kir_i64(&k, 1))), 0);
    int acc = kir_decl_var(&k, k.body, "acc", KT_F64, kir_f64(&k, 0));
    int j2 = kir_var(&k, "j", KT_I64, 0);
    kir_loop(&k, k.body, j2, kir_i64(&k, 0), kir_i64(&k, 4), l2);
    int ld = kir_decl(&k, l2, "ld", kir_load(&k, xb, kir_madd(&k, gid, kir_i64(&k, 4), kir_ref(&k, j2))));
    int pos = kir_if(&k, l2, kir_bin(&k, KX_GT, ld, kir_f32(&k, 0)));
    kir_assign(&k, pos, acc, kir_bin(&k, KX_MUL, ld, kir_loadl(&k, t, kir_ref(&k, j2))), 1);
    kir_store(&k, k.body, yb, gid, kir_ref(&k, acc), 0);
    assert_int_equal(kir_verify(&k), 0);
    DlBuf body = {0}, dump = {0};
    kir_render(&k, &body);
    kir_dump(&k, &dump);
    printf("%s%s", dump.s, body.s);
    void *h = compile_c(body.s, NULL);
    KxKernelFn f = (KxKernelFn)dlsym(h, "t_hand");
    assert_non_null(f);
    float x[20], y[5];
    for (int i = 0; i < 20; i++) x[i] = (float)urand(-1, 1);
    float *bufs[2] = {x, y};
    f(bufs, 0, 5);
    for (int g = 0; g < 5; g++) {
        double want = 0;
        for (int q = 0; q < 4; q++) want += x[4 * g + q] > 0 ? x[4 * g + q] * (q + 1) : 0;
        assert_true(fabs(y[g] - want) < 1e-6);
    }
    dlclose(h);
    /* the verifier: a variable used outside its loop, a store to an input */
    kir_store(&k, k.body, yb, gid, ld, 0);
    assert_int_equal(kir_verify(&k), -1);
    printf("  verifier: %s\n", k.err);
    assert_non_null(strstr(k.err, "scope"));
    kir_free(&k);
    kir_init(&k, "t_bad", 1);
    xb = kir_buf(&k, "x", 1, 0);
    kir_store(&k, k.body, xb, kir_i64(&k, 0), kir_f32(&k, 1), 0);
    assert_int_equal(kir_verify(&k), -1);
    assert_null(kir_un(&k, KX_EXP, kir_i64(&k, 1))); /* type error: dummy expression 0 */
    kir_free(&k);
    /* f64 exp, log, sqrt (the optimizer's bias corrections) render as C's double
     * functions, the same text in both modules; rsqrt stays f32 only */
    kir_init(&k, "t_f64", 1);
    yb = kir_buf(&k, "y [1]", 1, 1);
    int e = kir_un(&k, KX_SQRT, kir_un(&k, KX_LOG, kir_un(&k, KX_EXP, kir_f64(&k, 2.0))));
    assert_int_equal(k.ex.a[e].type, KT_F64);
    kir_store(&k, k.body, yb, kir_i64(&k, 0), e, 0);
    assert_int_equal(kir_verify(&k), 0);
    DlBuf f64 = {0};
    kir_render(&k, &f64);
    printf("%s", f64.s);
    assert_non_null(strstr(f64.s, "(float)(sqrt(log(exp(2.0))))"));
    assert_null(kir_un(&k, KX_RSQRT, kir_f64(&k, 2.0)));
    assert_non_null(strstr(k.err, "f32 only"));
    kir_free(&k);
    dl_buf_free(&f64);
    dl_buf_free(&body), dl_buf_free(&dump);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kir_hand),  cmocka_unit_test(test_bn_forward), cmocka_unit_test(test_bn_backward),
        cmocka_unit_test(test_loss_tail), cmocka_unit_test(test_pool), cmocka_unit_test(test_pool_shapes),       cmocka_unit_test(test_sgd),
        cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
