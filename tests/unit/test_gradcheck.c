/* test_gradcheck.c - every differentiable op's autodiff rule against central
 * finite differences, in double precision (ggml's grad mode, STYLE.md 7).
 *
 * Each test builds a tiny forward graph ending in a scalar loss (the DLDL tail:
 * log-softmax, KL and, where said, the expectation L1), runs ad_differentiate
 * (compiler/autodiff.c) on it and evaluates everything with the reference
 * interpreter (tests/ref/interp.c).  The network input x is declared a PARAM,
 * so autodiff differentiates with respect to it too: every parameter gradient
 * and the input gradient are compared, entry by entry, with
 *     fd = (L(w + eps) - L(w - eps)) / (2 eps),   eps = 1e-4,
 *     |ad - fd| <= ATOL + RTOL max(|ad|, |fd|),   RTOL = 1e-5.
 * A point is skipped when a kink lies within eps of it: the forward "decision
 * signature" (ReLU signs, max-pool arg-max, |e - t| signs) differs between
 * w + eps and w - eps.  Each test prints the max abs and rel error, the points
 * checked and skipped.  The gradient of a PARAM is the g input of its SGD node.
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
#include "../ref/gbuild.h"
#include "../../compiler/autodiff.h"

#define EPS 1e-4
#define RTOL 1e-5
#define ATOL 1e-8

/* ---- deterministic inputs ------------------------------------------------ */

static uint64_t rng_state;
static double urand(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

typedef struct Net {
    DlPool *pool;
    Graph *g;
    uint32_t x, loss;
    int K, A;
} Net;

static Net net_new(int B, const char *seedname)
{
    Net n = {0};
    n.pool = dl_pool_new();
    n.g = graph_new(n.pool, B);
    rng_state = dl_hash64(seedname, strlen(seedname));
    return n;
}

/* logits [B,K] -> the loss tail, A axes (A = 0: KL only).  Bins: axis 0 the
 * bin index k (like ages), axis 1 a second grid coordinate (like yaw). */
static uint32_t tail(Net *n, uint32_t z, int A, float lambda)
{
    Graph *g = n->g;
    int64_t B = g->nodes[z].shape[0], K = g->nodes[z].shape[1];
    n->K = (int)K, n->A = A;
    uint32_t y = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, K), (GAttr){.input = {IN_TARGET}}, "target");
    if (A == 0) {
        uint32_t logq = gb(g, OP_LOG_SOFTMAX, GB_IN(z), GB_SH(B, K), GB_NOATTR, "loss.logq");
        uint32_t kl = gb(g, OP_KL_ROWS, GB_IN(y, logq), GB_SH(B), GB_NOATTR, "loss.kl.rows");
        n->loss = gb(g, OP_MEAN, GB_IN(kl), GB_SH(1), GB_NOATTR, "loss");
        gb_output(g, GOUT_LOSS, "loss", n->loss);
        return n->loss;
    }
    float *v = dl_pool_alloc(n->pool, (size_t)(A * K) * sizeof *v);
    for (int64_t k = 0; k < K; k++) {
        v[k] = (float)k;
        if (A > 1) v[K + k] = (float)(15 * (k % 3) - 15);
    }
    uint32_t bins = gb(g, OP_CONST, GB_NOIN, GB_SH(A, K), (GAttr){.cst = {v}}, "bins");
    uint32_t lab = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, A), (GAttr){.input = {IN_LABEL}}, "label");
    n->loss = gb_loss_tail(g, z, y, lab, bins, lambda);
    return n->loss;
}

/* x [B,C] -> linear(K) (matmul with W[K,C] transposed, as PyTorch) -> bias -> tail */
static uint32_t linear(Net *n, uint32_t x, int K, const char *name)
{
    Graph *g = n->g;
    int64_t B = g->nodes[x].shape[0], C = g->nodes[x].shape[1];
    char nm[64];
    snprintf(nm, sizeof nm, "%s.w", name);
    uint32_t w = gb_param(g, GB_SH(K, C), dl_pool_strdup(n->pool, nm));
    snprintf(nm, sizeof nm, "%s.b", name);
    uint32_t b = gb_param(g, GB_SH(K), dl_pool_strdup(n->pool, nm));
    snprintf(nm, sizeof nm, "%s.mm", name);
    uint32_t y = gb(g, OP_MATMUL, GB_IN(x, w), GB_SH(B, K), (GAttr){.mm = {0, 1}}, dl_pool_strdup(n->pool, nm));
    return gb(g, OP_BIAS_ADD, GB_IN(y, b), GB_SH(B, K), GB_NOATTR, dl_pool_strdup(n->pool, name));
}

/* y [B,C,H,W] -> global_avgpool -> linear(K) -> loss tail */
static uint32_t head(Net *n, uint32_t y, int K, int A)
{
    const GNode *t = &n->g->nodes[y];
    uint32_t gp = gb(n->g, OP_GAP, GB_IN(y), GB_SH(t->shape[0], t->shape[1]), GB_NOATTR, "gap");
    return tail(n, linear(n, gp, K, "fc"), A, 1.0f);
}

static uint32_t conv(Net *n, uint32_t x, int O, int k, int s, int p, const char *name)
{
    const GNode *t = &n->g->nodes[x];
    int64_t B = t->shape[0], C = t->shape[1], H = t->shape[2], W = t->shape[3];
    char nm[64];
    snprintf(nm, sizeof nm, "%s.w", name);
    uint32_t w = gb_param(n->g, GB_SH(O, C, k, k), dl_pool_strdup(n->pool, nm));
    return gb(n->g, OP_CONV2D, GB_IN(x, w), GB_SH(B, O, (H + 2 * p - k) / s + 1, (W + 2 * p - k) / s + 1),
              (GAttr){.conv = {k, k, s, p}}, dl_pool_strdup(n->pool, name));
}

/* batch norm, train mode: stats over b,h,w; running stats updated in place. */
static uint32_t batchnorm(Net *n, uint32_t x, const char *name)
{
    Graph *g = n->g;
    const GNode *t = &g->nodes[x];
    int64_t C = t->shape[1];
    GAttr bn = {.bn = {1e-5f, 0.1f}};
    char nm[64];
    snprintf(nm, sizeof nm, "%s.gamma", name);
    uint32_t gamma = gb_param(g, GB_SH(C), dl_pool_strdup(n->pool, nm));
    snprintf(nm, sizeof nm, "%s.beta", name);
    uint32_t beta = gb_param(g, GB_SH(C), dl_pool_strdup(n->pool, nm));
    snprintf(nm, sizeof nm, "%s.running", name);
    uint32_t run = gb(g, OP_STATE, GB_NOIN, GB_SH(2, C), GB_NOATTR, dl_pool_strdup(n->pool, nm));
    snprintf(nm, sizeof nm, "%s.stats", name);
    uint32_t st = gb(g, OP_BN_STATS, GB_IN(x), GB_SH(2, C), bn, dl_pool_strdup(n->pool, nm));
    snprintf(nm, sizeof nm, "%s.run_update", name);
    uint32_t ru = gb(g, OP_BN_RUNNING, GB_IN(st, run), GB_SH(2, C), bn, dl_pool_strdup(n->pool, nm));
    g->nodes[ru].inplace = run;
    int64_t sh[4];
    memcpy(sh, g->nodes[x].shape, sizeof sh);
    return gb(g, OP_BN_APPLY, GB_IN(x, st, gamma, beta), sh, g->nodes[x].ndim, bn, dl_pool_strdup(n->pool, name));
}

static uint32_t relu(Net *n, uint32_t x, const char *name)
{
    const GNode *t = &n->g->nodes[x];
    return gb(n->g, OP_RELU, GB_IN(x), t->shape, t->ndim, GB_NOATTR, name);
}

static uint32_t pool(Net *n, GOp op, uint32_t x, int k, int s, int p, const char *name)
{
    const GNode *t = &n->g->nodes[x];
    int64_t OH = (t->shape[2] + 2 * p - k) / s + 1, OW = (t->shape[3] + 2 * p - k) / s + 1;
    return gb(n->g, op, GB_IN(x), GB_SH(t->shape[0], t->shape[1], OH, OW), (GAttr){.pool = {k, s, p}}, name);
}

static uint32_t input_x(Net *n, const int64_t *sh, int nd)
{
    return n->x = gb_param(n->g, sh, nd, "x");
}

/* ---- the check ----------------------------------------------------------- */

/* Fill every source: params and x uniform(-1, 1) (gamma around 1), targets
 * random distributions, labels inside the bins' range, scalars
 * [lr 0.1, momentum 0.9, step 3, seed 7], running stats (0, 1). */
static void fill_sources(const Net *n, double **vals)
{
    const Graph *g = n->g;
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *t = &g->nodes[i];
        int64_t N = graph_numel(t);
        double *v = vals[i];
        if (!v || t->op == OP_CONST) continue;
        switch (t->op) {
        case OP_PARAM: {
            int gamma = t->name && strstr(t->name, ".gamma");
            for (int64_t k = 0; k < N; k++) v[k] = gamma ? urand(0.5, 1.5) : urand(-1, 1);
            break;
        }
        case OP_INPUT:
            if (t->attr.input.kind == IN_TARGET) {
                int64_t K = t->shape[1];
                int with_void = t->name && strstr(t->name, "void"); /* every third row void: all zero */
                for (int64_t b = 0; b < t->shape[0]; b++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++) s += v[b * K + k] = (k == 1) ? 0 : urand(0.01, 1);
                    for (int64_t k = 0; k < K; k++) v[b * K + k] = with_void && b % 3 == 2 ? 0 : v[b * K + k] / s;
                }
            } else if (t->attr.input.kind == IN_LABEL) {
                for (int64_t k = 0; k < N; k++)
                    v[k] = (k % t->shape[1]) == 0 ? urand(0, n->K - 1) : urand(-15, 15);
            } else {
                for (int64_t k = 0; k < N; k++) v[k] = urand(-1, 1);
            }
            break;
        case OP_SCALARS:
            v[0] = 0.1, v[1] = 0.9, v[2] = 3, v[3] = 7;
            break;
        case OP_STATE:
            for (int64_t k = 0; k < N; k++) v[k] = (t->param == G_NONE && k >= N / 2) ? 1 : 0;
            break;
        default:
            break;
        }
    }
}

/* FNV-1a over the forward decisions that make the loss non-smooth. */
static uint64_t kink_signature(const Graph *g, double **vals, uint32_t end)
{
    uint64_t h = 1469598103934665603ULL;
#define MIX(x) (h = (h ^ (uint64_t)(x)) * 1099511628211ULL)
    for (uint32_t i = 0; i < end; i++) {
        const GNode *t = &g->nodes[i];
        const double *a = t->nin ? vals[t->in[0]] : NULL;
        int64_t N = graph_numel(t);
        if (t->op == OP_RELU) {
            for (int64_t k = 0; k < N; k++) MIX(a[k] > 0);
        } else if (t->op == OP_ABSDIFF_ROWS) {
            const double *b = vals[t->in[1]];
            for (int64_t k = 0; k < graph_numel(&g->nodes[t->in[0]]); k++) MIX(a[k] > b[k]);
        } else if (t->op == OP_MAXPOOL) {
            /* arg-max of each window: compare each output with its window entries */
            const GNode *x = &g->nodes[t->in[0]];
            int ks = t->attr.pool.size, s = t->attr.pool.stride, p = t->attr.pool.pad;
            int64_t H = x->shape[2], W = x->shape[3], OH = t->shape[2], OW = t->shape[3];
            for (int64_t bc = 0; bc < t->shape[0] * t->shape[1]; bc++)
                for (int64_t oi = 0; oi < OH; oi++)
                    for (int64_t oj = 0; oj < OW; oj++) {
                        int64_t arg = -1;
                        double best = -INFINITY;
                        for (int u = 0; u < ks; u++)
                            for (int v = 0; v < ks; v++) {
                                int64_t hh = oi * s - p + u, ww = oj * s - p + v;
                                if (hh < 0 || hh >= H || ww < 0 || ww >= W) continue;
                                double q = a[(bc * H + hh) * W + ww];
                                if (q > best) best = q, arg = u * ks + v;
                            }
                        MIX(arg);
                    }
        }
    }
#undef MIX
    return h;
}

/* The gradient node autodiff made for PARAM p: the g input of p's SGD node. */
static uint32_t grad_of(const Graph *g, uint32_t p)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_SGD && g->nodes[i].in[0] == p) return g->nodes[i].in[1];
    return G_NONE;
}

/* Differentiate n's graph and compare every PARAM's gradient with finite
 * differences.  Returns 1 when all points agree; prints a summary line. */
static int gradcheck(Net *n, const char *what)
{
    Graph *g = n->g;
    uint32_t nfwd = g->n, loss = n->loss;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    if (graph_verify(g, "test forward graph", &diag) != 0) return 0;
    if (ad_differentiate(g, &diag) != 0) {
        fprintf(stderr, "%s: ad_differentiate failed\n", what);
        return 0;
    }
    if (graph_verify(g, "autodiff", &diag) != 0) return 0;
    double **vals = ref_alloc_values(g);
    fill_sources(n, vals);
    if (ref_run(g, vals) != 0) return 0;
    double maxabs = 0, maxrel = 0;
    long checked = 0, skipped = 0, bad = 0;
    for (uint32_t p = 0; p < nfwd; p++) {
        if (g->nodes[p].op != OP_PARAM) continue;
        uint32_t gi = grad_of(g, p);
        if (gi == G_NONE) {
            fprintf(stderr, "%s: no gradient (sgd node) for parameter %s\n", what, g->nodes[p].name);
            bad++;
            continue;
        }
        int64_t N = graph_numel(&g->nodes[p]);
        double *ad = dl_xmalloc((size_t)N * sizeof *ad);
        memcpy(ad, vals[gi], (size_t)N * sizeof *ad);
        double *w = vals[p];
        for (int64_t k = 0; k < N; k++) {
            double w0 = w[k];
            w[k] = w0 + EPS;
            ref_run_until(g, vals, nfwd);
            double lp = vals[loss][0];
            uint64_t sp = kink_signature(g, vals, nfwd);
            w[k] = w0 - EPS;
            ref_run_until(g, vals, nfwd);
            double lm = vals[loss][0];
            uint64_t sm = kink_signature(g, vals, nfwd);
            w[k] = w0;
            if (sp != sm) {
                skipped++;
                continue;
            }
            double fd = (lp - lm) / (2 * EPS), d = fabs(fd - ad[k]), m = fmax(fabs(fd), fabs(ad[k]));
            checked++;
            maxabs = fmax(maxabs, d);
            if (m > 1e-6) maxrel = fmax(maxrel, d / m);
            if (d > ATOL + RTOL * m && bad++ < 8)
                fprintf(stderr, "  %s: d loss / d %s[%ld]: autodiff %.10g, finite difference %.10g\n",
                        what, g->nodes[p].name, (long)k, ad[k], fd);
        }
        free(ad);
    }
    printf("  %-44s %5ld points (%ld skipped at kinks): max abs err %.2e, max rel err %.2e%s\n", what,
           checked, skipped, maxabs, maxrel, bad ? "  FAIL" : "");
    ref_free_values(g, vals);
    return bad == 0 && checked > 0;
}

static void run_and_free(Net *n, const char *what)
{
    int ok = gradcheck(n, what);
    dl_pool_free(n->pool);
    assert_true(ok);
}

/* ---- the tests ----------------------------------------------------------- */

static void conv_case(int s, int p, const char *what)
{
    Net n = net_new(2, what);
    uint32_t x = input_x(&n, GB_SH(2, 3, 5, 5));
    head(&n, conv(&n, x, 4, 3, s, p, "conv"), 7, 1);
    run_and_free(&n, what);
}
/* dw[o,c,u,v] = sum dy x and dx = conv^T(dy, w), for each stride and padding. */
static void test_conv2d_grad_s1_p0(void **st) { (void)st; conv_case(1, 0, "conv2d_grad_s1_p0"); }
static void test_conv2d_grad_s1_p1(void **st) { (void)st; conv_case(1, 1, "conv2d_grad_s1_p1"); }
static void test_conv2d_grad_s2_p0(void **st) { (void)st; conv_case(2, 0, "conv2d_grad_s2_p0"); }
static void test_conv2d_grad_s2_p1(void **st) { (void)st; conv_case(2, 1, "conv2d_grad_s2_p1"); }

/* A kh x kw kernel with dilation d (taps d pixels apart): the rules of
 * conv2d_bwd_data and conv2d_bwd_filter carry the attribute through. */
static void dilated_case(int kh, int kw, int s, int p, int d, const char *what)
{
    Net n = net_new(2, what);
    uint32_t x = input_x(&n, GB_SH(2, 3, 7, 6));
    int64_t eh = (int64_t)(kh - 1) * d + 1, ew = (int64_t)(kw - 1) * d + 1;
    uint32_t w = gb_param(n.g, GB_SH(4, 3, kh, kw), "dconv.w");
    uint32_t y = gb(n.g, OP_CONV2D, GB_IN(x, w), GB_SH(2, 4, (7 + 2 * p - eh) / s + 1, (6 + 2 * p - ew) / s + 1),
                    (GAttr){.conv = {kh, kw, s, p, d - 1}}, "dconv");
    head(&n, y, 7, 1);
    run_and_free(&n, what);
}
static void test_conv2d_grad_dilated_k3_d2_p2(void **st) { (void)st; dilated_case(3, 3, 1, 2, 2, "conv2d_grad_dilated_k3_d2_p2"); }
static void test_conv2d_grad_k2x3_s2_p1(void **st) { (void)st; dilated_case(2, 3, 2, 1, 1, "conv2d_grad_k2x3_s2_p1"); }
static void test_conv2d_grad_k3x2_d3_s2(void **st) { (void)st; dilated_case(3, 2, 2, 1, 3, "conv2d_grad_k3x2_d3_s2"); }

/* y = x W^T + b: dW = dy^T x, dx = dy W, db = sum_b dy. */
static void test_linear_matmul_bias_grad(void **st)
{
    (void)st;
    Net n = net_new(3, "linear");
    uint32_t x = input_x(&n, GB_SH(3, 5));
    tail(&n, linear(&n, x, 7, "fc"), 2, 0.5f);
    run_and_free(&n, "linear_matmul_bias_grad");
}

/* bias_add on a 4-D tensor: db[c] = sum_{b,h,w} dy (chan_sum). */
static void test_bias_add_nchw_grad_is_chan_sum(void **st)
{
    (void)st;
    Net n = net_new(2, "bias4d");
    uint32_t x = input_x(&n, GB_SH(2, 3, 4, 4));
    uint32_t b = gb_param(n.g, GB_SH(3), "bias");
    uint32_t y = gb(n.g, OP_BIAS_ADD, GB_IN(x, b), GB_SH(2, 3, 4, 4), GB_NOATTR, "biased");
    head(&n, y, 7, 1);
    run_and_free(&n, "bias_add_nchw_grad_is_chan_sum");
}

/* Train-mode batch norm: the gradient flows through the batch mean and
 * variance (Ioffe & Szegedy 2015, Sec. 3). */
static void test_batchnorm_train_grad_through_batch_stats(void **st)
{
    (void)st;
    Net n = net_new(2, "bn");
    uint32_t x = input_x(&n, GB_SH(2, 3, 5, 5));
    head(&n, batchnorm(&n, x, "bn"), 7, 1);
    run_and_free(&n, "batchnorm_train_grad_through_batch_stats");
}

static void test_relu_grad_masks_negatives(void **st)
{
    (void)st;
    Net n = net_new(2, "relu");
    uint32_t x = input_x(&n, GB_SH(2, 3, 5, 5));
    head(&n, relu(&n, x, "relu"), 7, 1);
    run_and_free(&n, "relu_grad_masks_negatives");
}

static void pool_case(GOp op, int H, int k, int s, int p, const char *what)
{
    Net n = net_new(2, what);
    uint32_t x = input_x(&n, GB_SH(2, 3, H, H));
    head(&n, pool(&n, op, x, k, s, p, "pool"), 7, 1);
    run_and_free(&n, what);
}
static void test_maxpool_grad_k2_s2(void **st) { (void)st; pool_case(OP_MAXPOOL, 6, 2, 2, 0, "maxpool_grad_k2_s2"); }
static void test_maxpool_grad_k3_s2_overlapping(void **st)
{
    (void)st;
    pool_case(OP_MAXPOOL, 7, 3, 2, 0, "maxpool_grad_k3_s2_overlapping");
}
static void test_maxpool_grad_k3_s2_p1(void **st) { (void)st; pool_case(OP_MAXPOOL, 6, 3, 2, 1, "maxpool_grad_k3_s2_p1"); }
static void test_avgpool_grad_k2_s2(void **st) { (void)st; pool_case(OP_AVGPOOL, 6, 2, 2, 0, "avgpool_grad_k2_s2"); }
static void test_avgpool_grad_k3_s2_p1_counts_padding(void **st)
{
    (void)st;
    pool_case(OP_AVGPOOL, 6, 3, 2, 1, "avgpool_grad_k3_s2_p1_counts_padding");
}

/* global_avgpool alone between the input and the linear layer: dx = dy / (H W). */
static void test_global_avgpool_grad_is_dy_over_hw(void **st)
{
    (void)st;
    Net n = net_new(2, "gap");
    uint32_t x = input_x(&n, GB_SH(2, 3, 4, 3));
    head(&n, x, 7, 1);
    run_and_free(&n, "global_avgpool_grad_is_dy_over_hw");
}

/* Dropout with a fixed (seed, step): the mask is a constant of the loss. */
static void test_dropout_grad_uses_the_forward_mask(void **st)
{
    (void)st;
    Net n = net_new(2, "dropout");
    uint32_t x = input_x(&n, GB_SH(2, 16));
    uint32_t sc = gb(n.g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    uint32_t d = gb(n.g, OP_DROPOUT, GB_IN(x, sc), GB_SH(2, 16), (GAttr){.dropout = {0.5f}}, "drop");
    tail(&n, linear(&n, d, 7, "fc"), 1, 1.0f);
    run_and_free(&n, "dropout_grad_uses_the_forward_mask");
}

/* For log-softmax + KL the gradient wrt logits is (p - y)/B (Gao et al.,
 * TIP 2017): checked against finite differences and against the closed form. */
static void test_kl_grad_is_p_minus_y(void **st)
{
    (void)st;
    Net n = net_new(3, "kl");
    int64_t B = 3, K = 7;
    uint32_t z = input_x(&n, GB_SH(B, K));
    tail(&n, z, 0, 0);
    Graph *g = n.g;
    uint32_t y = G_NONE;
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_INPUT) y = i;
    assert_true(gradcheck(&n, "kl_grad_is_p_minus_y (finite differences)"));
    double **vals = ref_alloc_values(g);
    rng_state = dl_hash64("kl", 2);
    fill_sources(&n, vals);
    assert_int_equal(ref_run(g, vals), 0);
    uint32_t lq = G_NONE;
    for (uint32_t i = 0; i < g->n && lq == G_NONE; i++)
        if (g->nodes[i].op == OP_LOG_SOFTMAX && g->nodes[i].in[0] == z) lq = i;
    const double *dz = vals[grad_of(g, z)], *logq = vals[lq];
    double maxabs = 0;
    for (int64_t k = 0; k < B * K; k++) {
        double want = (exp(logq[k]) - vals[y][k]) / (double)B;
        maxabs = fmax(maxabs, fabs(dz[k] - want));
    }
    printf("  %-44s max abs err vs (p - y)/B: %.2e\n", "kl_grad_is_p_minus_y (closed form)", maxabs);
    ref_free_values(g, vals);
    dl_pool_free(n.pool);
    assert_true(maxabs < 1e-12);
}

/* DLDL-v2 (Gao et al., IJCAI 2018): L1 of the expectation, through
 * log_softmax, exp, expect, absdiff_rows, mean; two axes. */
static void test_expectation_l1_grad_two_axes(void **st)
{
    (void)st;
    Net n = net_new(3, "l1");
    uint32_t z = input_x(&n, GB_SH(3, 7));
    tail(&n, z, 2, 1.0f);
    run_and_free(&n, "expectation_l1_grad_two_axes");
}

/* The weighted loss sum kl + 0.1 l1 (scale, add), one axis. */
static void test_weighted_loss_sum_grad(void **st)
{
    (void)st;
    Net n = net_new(2, "weighted");
    uint32_t z = input_x(&n, GB_SH(2, 7));
    tail(&n, z, 1, 0.1f);
    run_and_free(&n, "weighted_loss_sum_grad (kl + 0.1 l1)");
}

/* A whole age-like net: 2 conv-bn-relu blocks, max-pool, global average
 * pool, linear, KL + L1 over 2 axes; every parameter and the input. */
static void test_age_like_net_grad(void **st)
{
    (void)st;
    Net n = net_new(2, "agenet");
    uint32_t x = input_x(&n, GB_SH(2, 3, 6, 6));
    uint32_t c1 = relu(&n, batchnorm(&n, conv(&n, x, 4, 3, 1, 1, "c1.conv"), "c1.bn"), "c1");
    uint32_t c2 = relu(&n, batchnorm(&n, conv(&n, c1, 4, 3, 1, 1, "c2.conv"), "c2.bn"), "c2");
    uint32_t p1 = pool(&n, OP_MAXPOOL, c2, 2, 2, 0, "p1");
    head(&n, p1, 7, 2);
    run_and_free(&n, "age_like_net_grad");
}

/* ---- the layers of a fully convolutional network -------------------------- */

/* y * r for a fixed random r of y's shape: after it the head's gradient is
 * no longer uniform over the plane (global_avgpool's alone is), so a rule
 * that misplaces a weight inside the plane shows. */
static uint32_t mix(Net *n, uint32_t y, const char *name)
{
    const GNode *t = &n->g->nodes[y];
    char nm[64];
    snprintf(nm, sizeof nm, "%s.r", name);
    uint32_t r = gb(n->g, OP_INPUT, GB_NOIN, t->shape, t->ndim, (GAttr){.input = {IN_IMAGE}}, dl_pool_strdup(n->pool, nm));
    t = &n->g->nodes[y];
    return gb(n->g, OP_MUL, GB_IN(y, r), t->shape, t->ndim, GB_NOATTR, name);
}

static uint32_t upsample(Net *n, uint32_t x, int fh, int fw, int bilinear, const char *name)
{
    const GNode *t = &n->g->nodes[x];
    return gb(n->g, OP_UPSAMPLE, GB_IN(x), GB_SH(t->shape[0], t->shape[1], t->shape[2] * fh, t->shape[3] * fw),
              (GAttr){.up = {fh, fw, bilinear}}, name);
}

static uint32_t conv_transpose(Net *n, uint32_t x, int O, int k, int s, int p, const char *name)
{
    const GNode *t = &n->g->nodes[x];
    int64_t B = t->shape[0], C = t->shape[1], H = t->shape[2], W = t->shape[3];
    char nm[64];
    snprintf(nm, sizeof nm, "%s.w", name);
    uint32_t w = gb_param(n->g, GB_SH(C, O, k, k), dl_pool_strdup(n->pool, nm));
    return gb(n->g, OP_CONV_TRANSPOSE2D, GB_IN(x, w), GB_SH(B, O, (H - 1) * s - 2 * p + k, (W - 1) * s - 2 * p + k),
              (GAttr){.conv = {k, k, s, p}}, dl_pool_strdup(n->pool, name));
}

/* upsample by (fh, fw), nearest or bilinear (PyTorch, align_corners=False):
 * dx is the adjoint, upsample_bwd. */
static void upsample_case(int H, int W, int fh, int fw, int bilinear, const char *what)
{
    Net n = net_new(2, what);
    uint32_t x = input_x(&n, GB_SH(2, 3, H, W));
    head(&n, mix(&n, upsample(&n, x, fh, fw, bilinear, "up"), "up.mix"), 7, 1);
    run_and_free(&n, what);
}
static void test_upsample_nearest_grad_x2(void **st) { (void)st; upsample_case(3, 4, 2, 2, 0, "upsample_nearest_grad_x2"); }
static void test_upsample_nearest_grad_x3x2(void **st) { (void)st; upsample_case(3, 2, 3, 2, 0, "upsample_nearest_grad_x3x2"); }
static void test_upsample_bilinear_grad_x2(void **st) { (void)st; upsample_case(3, 4, 2, 2, 1, "upsample_bilinear_grad_x2"); }
static void test_upsample_bilinear_grad_x3x4(void **st) { (void)st; upsample_case(3, 2, 3, 4, 1, "upsample_bilinear_grad_x3x4"); }
static void test_upsample_bilinear_grad_x1x2(void **st) { (void)st; upsample_case(1, 3, 1, 2, 1, "upsample_bilinear_grad_x1x2"); }

/* conv_transpose2d (x, w[Cin,Cout,k,k]): dx = conv2d(dy, w), dw = conv2d_bwd_filter(dy, x). */
static void conv_transpose_case(int H, int k, int s, int p, const char *what)
{
    Net n = net_new(2, what);
    uint32_t x = input_x(&n, GB_SH(2, 3, H, H));
    head(&n, mix(&n, conv_transpose(&n, x, 2, k, s, p, "convt"), "convt.mix"), 7, 1);
    run_and_free(&n, what);
}
static void test_conv_transpose2d_grad_k3_s1_p0(void **st) { (void)st; conv_transpose_case(3, 3, 1, 0, "conv_transpose2d_grad_k3_s1_p0"); }
static void test_conv_transpose2d_grad_k4_s2_p1(void **st) { (void)st; conv_transpose_case(3, 4, 2, 1, "conv_transpose2d_grad_k4_s2_p1"); }
static void test_conv_transpose2d_grad_k3_s2_p1(void **st) { (void)st; conv_transpose_case(3, 3, 2, 1, "conv_transpose2d_grad_k3_s2_p1"); }
static void test_conv_transpose2d_grad_k2_s3_p2(void **st) { (void)st; conv_transpose_case(4, 2, 3, 2, "conv_transpose2d_grad_k2_s3_p2"); }

/* concat along channels: each input's gradient is its slice of dy; one input
 * (x) appears twice, so its two slices add. */
static void test_concat_nchw_grad_is_slices(void **st)
{
    (void)st;
    Net n = net_new(2, "concat4d");
    uint32_t x = input_x(&n, GB_SH(2, 3, 4, 4));
    uint32_t a = conv(&n, x, 2, 3, 1, 1, "ca"), b = conv(&n, x, 1, 1, 1, 0, "cb");
    uint32_t m = gb(n.g, OP_CONCAT, GB_IN(a, x, b, x), GB_SH(2, 9, 4, 4), GB_NOATTR, "cat");
    head(&n, mix(&n, m, "cat.mix"), 7, 1);
    run_and_free(&n, "concat_nchw_grad_is_slices");
}

/* A per-pixel head, a softmax over the class axis of [B,K,H,W] logits
 * (lower_net.c): conv -> nchw_rows -> log_softmax -> kl_rows against a
 * target with void (all-zero) rows -> mean_over the rows that are not void
 * (valid_count).  Checks nchw_rows's adjoint (rows_nchw) and mean_over's
 * rule; a void pixel's logits get no gradient (closed form below). */
static void test_per_pixel_kl_grad_with_void_pixels(void **st)
{
    (void)st;
    Net n = net_new(2, "per_pixel");
    Graph *g = n.g;
    uint32_t x = input_x(&n, GB_SH(2, 3, 3, 4));
    uint32_t z = conv(&n, x, 5, 3, 1, 1, "c");
    uint32_t rows = gb(g, OP_NCHW_ROWS, GB_IN(z), GB_SH(24, 5), GB_NOATTR, "rows");
    uint32_t y = gb(g, OP_INPUT, GB_NOIN, GB_SH(24, 5), (GAttr){.input = {IN_TARGET}}, "target.void");
    uint32_t logq = gb(g, OP_LOG_SOFTMAX, GB_IN(rows), GB_SH(24, 5), GB_NOATTR, "loss.logq");
    uint32_t kl = gb(g, OP_KL_ROWS, GB_IN(y, logq), GB_SH(24), GB_NOATTR, "loss.kl.rows");
    uint32_t cnt = gb(g, OP_VALID_COUNT, GB_IN(y), GB_SH(1), GB_NOATTR, "loss.pixels");
    n.loss = gb(g, OP_MEAN_OVER, GB_IN(kl, cnt), GB_SH(1), GB_NOATTR, "loss");
    gb_output(g, GOUT_LOSS, "loss", n.loss);
    n.K = 5;
    assert_true(gradcheck(&n, "per_pixel_kl_grad_with_void_pixels"));
    /* closed form: d loss / d rows = (p - y) / (rows not void), 0 on void rows */
    double **vals = ref_alloc_values(g);
    rng_state = dl_hash64("per_pixel", 9);
    fill_sources(&n, vals);
    assert_int_equal(ref_run(g, vals), 0);
    uint32_t dz = G_NONE; /* the gradient of rows: log_softmax_bwd(g, logq) */
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_LOG_SOFTMAX_BWD && g->nodes[i].in[1] == logq) dz = i;
    assert_true(dz != G_NONE && g->nodes[logq].in[0] == rows);
    const double *dr = vals[dz], *lq = vals[logq], *t = vals[y];
    double maxabs = 0;
    for (int64_t r = 0; r < 24; r++)
        for (int64_t k = 0; k < 5; k++) {
            double want = r % 3 == 2 ? 0 : (exp(lq[r * 5 + k]) - t[r * 5 + k]) / 16.0;
            maxabs = fmax(maxabs, fabs(dr[r * 5 + k] - want));
        }
    printf("  %-44s max abs err vs (p - y)/16 and 0 on void rows: %.2e\n", "per_pixel_kl (closed form)", maxabs);
    ref_free_values(g, vals);
    dl_pool_free(n.pool);
    assert_true(maxabs < 1e-12);
}

static void test_concat_vectors_grad_is_slices(void **st)
{
    (void)st;
    Net n = net_new(3, "concat2d");
    uint32_t x = input_x(&n, GB_SH(3, 5));
    uint32_t a = linear(&n, x, 4, "fa");
    uint32_t m = gb(n.g, OP_CONCAT, GB_IN(a, x), GB_SH(3, 9), GB_NOATTR, "cat");
    tail(&n, linear(&n, m, 7, "fc"), 1, 1.0f);
    run_and_free(&n, "concat_vectors_grad_is_slices");
}

/* ---- the reference's own backward ops ------------------------------------
 * Independent of autodiff: each backward op of ops.def, evaluated by the
 * interpreter, must be the adjoint of its forward op: with L = sum dy * f(x),
 * bwd(dy)[k] = dL/dx[k] by finite differences.  When a gradient check above
 * fails, this tells a wrong autodiff rule from a wrong reference. */

/* f: forward node of x; dy: a source of f's shape; bwd: the claimed dL/dx. */
static int adjoint_check(Net *n, uint32_t x, uint32_t f, uint32_t dy, uint32_t bwd, const char *what)
{
    Graph *g = n->g;
    double **vals = ref_alloc_values(g);
    fill_sources(n, vals);
    if (ref_run(g, vals) != 0) return 0;
    int64_t N = graph_numel(&g->nodes[x]), M = graph_numel(&g->nodes[f]);
    double maxabs = 0, maxrel = 0, *w = vals[x];
    long checked = 0, skipped = 0, bad = 0;
    for (int64_t k = 0; k < N; k++) {
        double w0 = w[k], l[2];
        uint64_t sig[2];
        for (int side = 0; side < 2; side++) {
            w[k] = w0 + (side ? -EPS : EPS);
            ref_run_until(g, vals, f + 1);
            l[side] = 0;
            for (int64_t j = 0; j < M; j++) l[side] += vals[dy][j] * vals[f][j];
            sig[side] = kink_signature(g, vals, f + 1);
        }
        w[k] = w0;
        if (sig[0] != sig[1]) {
            skipped++;
            continue;
        }
        double fd = (l[0] - l[1]) / (2 * EPS), an = vals[bwd][k];
        double d = fabs(fd - an), m = fmax(fabs(fd), fabs(an));
        checked++;
        maxabs = fmax(maxabs, d);
        if (m > 1e-6) maxrel = fmax(maxrel, d / m);
        if (d > ATOL + RTOL * m && bad++ < 5)
            fprintf(stderr, "  %s[%ld]: reference backward op %.10g, finite difference %.10g\n", what, (long)k, an, fd);
    }
    printf("  %-44s %5ld points (%ld skipped at kinks): max abs err %.2e, max rel err %.2e%s\n", what,
           checked, skipped, maxabs, maxrel, bad ? "  FAIL" : "");
    ref_free_values(g, vals);
    return bad == 0 && checked > 0;
}

static uint32_t src_like(Net *n, uint32_t f, const char *name)
{
    const GNode *t = &n->g->nodes[f];
    return gb(n->g, OP_INPUT, GB_NOIN, t->shape, t->ndim, (GAttr){.input = {IN_IMAGE}}, name);
}

static void test_reference_backward_ops_are_adjoints(void **st)
{
    (void)st;
    int ok = 1;
    for (int c = 0; c < 4; c++) { /* conv2d: bwd_data wrt x, bwd_filter wrt w; s in {1,2}, p in {0,1} */
        int s = 1 + c / 2, p = c % 2;
        Net n = net_new(2, "adj.conv");
        uint32_t x = input_x(&n, GB_SH(2, 3, 5, 5));
        uint32_t f = conv(&n, x, 4, 3, s, p, "conv");
        uint32_t w = n.g->nodes[f].in[1], dy = src_like(&n, f, "dy");
        GAttr at = n.g->nodes[f].attr;
        uint32_t dx = gb(n.g, OP_CONV2D_BWD_DATA, GB_IN(dy, w), GB_SH(2, 3, 5, 5), at, "dx");
        uint32_t dw = gb(n.g, OP_CONV2D_BWD_FILTER, GB_IN(x, dy), GB_SH(4, 3, 3, 3), at, "dw");
        char nm[64];
        snprintf(nm, sizeof nm, "adjoint conv2d_bwd_data s%d p%d", s, p);
        ok &= adjoint_check(&n, x, f, dy, dx, nm);
        snprintf(nm, sizeof nm, "adjoint conv2d_bwd_filter s%d p%d", s, p);
        ok &= adjoint_check(&n, w, f, dy, dw, nm);
        dl_pool_free(n.pool);
    }
    { /* relu, maxpool (k3 s2 p1), avgpool (k3 s2 p1), gap, bias_add/chan_sum */
        Net n = net_new(2, "adj.window");
        uint32_t x = input_x(&n, GB_SH(2, 3, 6, 6));
        uint32_t r = relu(&n, x, "relu"), dr = src_like(&n, r, "dr");
        uint32_t rb = gb(n.g, OP_RELU_BWD, GB_IN(dr, r), GB_SH(2, 3, 6, 6), GB_NOATTR, "relu_bwd");
        ok &= adjoint_check(&n, x, r, dr, rb, "adjoint relu_bwd");
        uint32_t mp = pool(&n, OP_MAXPOOL, x, 3, 2, 1, "mp"), dm = src_like(&n, mp, "dm");
        uint32_t mb = gb(n.g, OP_MAXPOOL_BWD, GB_IN(dm, x), GB_SH(2, 3, 6, 6), (GAttr){.pool = {3, 2, 1}}, "mpb");
        ok &= adjoint_check(&n, x, mp, dm, mb, "adjoint maxpool_bwd k3 s2 p1");
        uint32_t ap = pool(&n, OP_AVGPOOL, x, 3, 2, 1, "ap"), da = src_like(&n, ap, "da");
        uint32_t ab = gb(n.g, OP_AVGPOOL_BWD, GB_IN(da), GB_SH(2, 3, 6, 6), (GAttr){.pool = {3, 2, 1}}, "apb");
        ok &= adjoint_check(&n, x, ap, da, ab, "adjoint avgpool_bwd k3 s2 p1");
        uint32_t gp = gb(n.g, OP_GAP, GB_IN(x), GB_SH(2, 3), GB_NOATTR, "gap"), dg = src_like(&n, gp, "dg");
        uint32_t gpb = gb(n.g, OP_GAP_BWD, GB_IN(dg), GB_SH(2, 3, 6, 6), GB_NOATTR, "gapb");
        ok &= adjoint_check(&n, x, gp, dg, gpb, "adjoint gap_bwd");
        uint32_t b = gb_param(n.g, GB_SH(3), "bias");
        uint32_t ba = gb(n.g, OP_BIAS_ADD, GB_IN(x, b), GB_SH(2, 3, 6, 6), GB_NOATTR, "ba"), db = src_like(&n, ba, "db");
        uint32_t cs = gb(n.g, OP_CHAN_SUM, GB_IN(db), GB_SH(3), GB_NOATTR, "chan_sum");
        ok &= adjoint_check(&n, b, ba, db, cs, "adjoint chan_sum (bias_add wrt bias)");
        dl_pool_free(n.pool);
    }
    { /* upsample_bwd: nearest and bilinear, equal and unequal factors */
        static const int cfg[4][3] = {{2, 3, 0}, {2, 2, 1}, {3, 4, 1}, {1, 2, 1}};
        for (int c = 0; c < 4; c++) {
            Net n = net_new(2, "adj.upsample");
            uint32_t x = input_x(&n, GB_SH(2, 2, 3, 2));
            uint32_t f = upsample(&n, x, cfg[c][0], cfg[c][1], cfg[c][2], "up"), dy = src_like(&n, f, "dy");
            uint32_t dx = gb(n.g, OP_UPSAMPLE_BWD, GB_IN(dy), GB_SH(2, 2, 3, 2), n.g->nodes[f].attr, "dx");
            char nm[64];
            snprintf(nm, sizeof nm, "adjoint upsample_bwd %s x%dx%d", cfg[c][2] ? "bilinear" : "nearest", cfg[c][0],
                     cfg[c][1]);
            ok &= adjoint_check(&n, x, f, dy, dx, nm);
            dl_pool_free(n.pool);
        }
    }
    { /* concat: slice of dy wrt each input; conv_transpose2d: conv2d wrt x, conv2d_bwd_filter wrt w */
        Net n = net_new(2, "adj.concat");
        uint32_t x = input_x(&n, GB_SH(2, 3, 3, 3));
        uint32_t z = gb_param(n.g, GB_SH(2, 2, 3, 3), "z");
        uint32_t f = gb(n.g, OP_CONCAT, GB_IN(z, x), GB_SH(2, 5, 3, 3), GB_NOATTR, "cat"), dy = src_like(&n, f, "dy");
        uint32_t dz = gb(n.g, OP_SLICE, GB_IN(dy), GB_SH(2, 2, 3, 3), (GAttr){.i = 0}, "dz");
        uint32_t dx = gb(n.g, OP_SLICE, GB_IN(dy), GB_SH(2, 3, 3, 3), (GAttr){.i = 2}, "dx");
        ok &= adjoint_check(&n, z, f, dy, dz, "adjoint slice (concat wrt input 0)");
        ok &= adjoint_check(&n, x, f, dy, dx, "adjoint slice (concat wrt input 1)");
        uint32_t t = conv_transpose(&n, x, 2, 4, 2, 1, "convt"), dt = src_like(&n, t, "dt");
        uint32_t w = n.g->nodes[t].in[1];
        GAttr at = n.g->nodes[t].attr;
        uint32_t tdx = gb(n.g, OP_CONV2D, GB_IN(dt, w), GB_SH(2, 3, 3, 3), at, "convt.dx");
        uint32_t tdw = gb(n.g, OP_CONV2D_BWD_FILTER, GB_IN(dt, x), GB_SH(3, 2, 4, 4), at, "convt.dw");
        ok &= adjoint_check(&n, x, t, dt, tdx, "adjoint conv_transpose2d wrt x (conv2d)");
        ok &= adjoint_check(&n, w, t, dt, tdw, "adjoint conv_transpose2d wrt w (bwd_filter)");
        dl_pool_free(n.pool);
    }
    { /* batch norm: bn_bwd_data wrt x (through the batch stats), select of bn_bwd_stats */
        Net n = net_new(2, "adj.bn");
        uint32_t x = input_x(&n, GB_SH(2, 3, 4, 4));
        uint32_t y = batchnorm(&n, x, "bn"), dy = src_like(&n, y, "dy");
        const GNode *t = &n.g->nodes[y];
        uint32_t sts = t->in[1], gamma = t->in[2], beta = t->in[3];
        GAttr bn = t->attr;
        uint32_t bs = gb(n.g, OP_BN_BWD_STATS, GB_IN(dy, x, sts), GB_SH(2, 3), bn, "bstats");
        uint32_t dx = gb(n.g, OP_BN_BWD_DATA, GB_IN(dy, x, sts, gamma, bs), GB_SH(2, 3, 4, 4), bn, "dx");
        uint32_t db = gb(n.g, OP_SELECT, GB_IN(bs), GB_SH(3), (GAttr){.i = 0}, "dbeta");
        uint32_t dgm = gb(n.g, OP_SELECT, GB_IN(bs), GB_SH(3), (GAttr){.i = 1}, "dgamma");
        ok &= adjoint_check(&n, x, y, dy, dx, "adjoint bn_bwd_data");
        ok &= adjoint_check(&n, beta, y, dy, db, "adjoint bn_bwd_stats[0] (dbeta)");
        ok &= adjoint_check(&n, gamma, y, dy, dgm, "adjoint bn_bwd_stats[1] (dgamma)");
        dl_pool_free(n.pool);
    }
    { /* rows: log_softmax, kl_rows (wrt logq), expect (wrt p), absdiff_rows (wrt e), mean */
        Net n = net_new(3, "adj.rows");
        uint32_t z = input_x(&n, GB_SH(3, 7));
        n.K = 7;
        uint32_t lq = gb(n.g, OP_LOG_SOFTMAX, GB_IN(z), GB_SH(3, 7), GB_NOATTR, "logq"), d1 = src_like(&n, lq, "d1");
        uint32_t lb = gb(n.g, OP_LOG_SOFTMAX_BWD, GB_IN(d1, lq), GB_SH(3, 7), GB_NOATTR, "lsb");
        ok &= adjoint_check(&n, z, lq, d1, lb, "adjoint log_softmax_bwd");
        uint32_t y = gb(n.g, OP_INPUT, GB_NOIN, GB_SH(3, 7), (GAttr){.input = {IN_TARGET}}, "y");
        uint32_t kl = gb(n.g, OP_KL_ROWS, GB_IN(y, z), GB_SH(3), GB_NOATTR, "kl"), d2 = src_like(&n, kl, "d2");
        uint32_t kb = gb(n.g, OP_KL_BWD, GB_IN(d2, y), GB_SH(3, 7), GB_NOATTR, "klb");
        ok &= adjoint_check(&n, z, kl, d2, kb, "adjoint kl_bwd");
        float *v = dl_pool_alloc(n.pool, 14 * sizeof *v);
        for (int k = 0; k < 7; k++) v[k] = (float)k, v[7 + k] = (float)(k * k) * 0.25f;
        uint32_t bins = gb(n.g, OP_CONST, GB_NOIN, GB_SH(2, 7), (GAttr){.cst = {v}}, "bins");
        uint32_t e = gb(n.g, OP_EXPECT, GB_IN(z, bins), GB_SH(3, 2), GB_NOATTR, "e"), d3 = src_like(&n, e, "d3");
        uint32_t eb = gb(n.g, OP_EXPECT_BWD, GB_IN(d3, bins), GB_SH(3, 7), GB_NOATTR, "eb");
        ok &= adjoint_check(&n, z, e, d3, eb, "adjoint expect_bwd");
        uint32_t e2 = input_x(&n, GB_SH(3, 2));
        uint32_t lab = gb(n.g, OP_INPUT, GB_NOIN, GB_SH(3, 2), (GAttr){.input = {IN_LABEL}}, "label");
        uint32_t ad = gb(n.g, OP_ABSDIFF_ROWS, GB_IN(e2, lab), GB_SH(3), GB_NOATTR, "ad"), d4 = src_like(&n, ad, "d4");
        uint32_t ab = gb(n.g, OP_ABSDIFF_BWD, GB_IN(d4, e2, lab), GB_SH(3, 2), GB_NOATTR, "adb");
        ok &= adjoint_check(&n, e2, ad, d4, ab, "adjoint absdiff_bwd");
        uint32_t r = gb(n.g, OP_RESHAPE, GB_IN(z), GB_SH(21), GB_NOATTR, "flat");
        uint32_t mn = gb(n.g, OP_MEAN, GB_IN(r), GB_SH(1), GB_NOATTR, "mean"), d5 = src_like(&n, mn, "d5");
        uint32_t mb = gb(n.g, OP_MEAN_BWD, GB_IN(d5), GB_SH(21), GB_NOATTR, "meanb");
        ok &= adjoint_check(&n, z, mn, d5, mb, "adjoint mean_bwd");
        uint32_t sc = gb(n.g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
        uint32_t dr = gb(n.g, OP_DROPOUT, GB_IN(z, sc), GB_SH(3, 7), (GAttr){.dropout = {0.3f}}, "drop");
        uint32_t d6 = src_like(&n, dr, "d6");
        uint32_t drb = gb(n.g, OP_DROPOUT_BWD, GB_IN(d6, sc), GB_SH(3, 7), (GAttr){.dropout = {0.3f}}, "dropb");
        ok &= adjoint_check(&n, z, dr, d6, drb, "adjoint dropout_bwd");
        dl_pool_free(n.pool);
    }
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_backward_ops_are_adjoints),
        cmocka_unit_test(test_conv2d_grad_s1_p0),
        cmocka_unit_test(test_conv2d_grad_s1_p1),
        cmocka_unit_test(test_conv2d_grad_s2_p0),
        cmocka_unit_test(test_conv2d_grad_s2_p1),
        cmocka_unit_test(test_linear_matmul_bias_grad),
        cmocka_unit_test(test_bias_add_nchw_grad_is_chan_sum),
        cmocka_unit_test(test_batchnorm_train_grad_through_batch_stats),
        cmocka_unit_test(test_relu_grad_masks_negatives),
        cmocka_unit_test(test_maxpool_grad_k2_s2),
        cmocka_unit_test(test_maxpool_grad_k3_s2_overlapping),
        cmocka_unit_test(test_maxpool_grad_k3_s2_p1),
        cmocka_unit_test(test_avgpool_grad_k2_s2),
        cmocka_unit_test(test_avgpool_grad_k3_s2_p1_counts_padding),
        cmocka_unit_test(test_global_avgpool_grad_is_dy_over_hw),
        cmocka_unit_test(test_dropout_grad_uses_the_forward_mask),
        cmocka_unit_test(test_kl_grad_is_p_minus_y),
        cmocka_unit_test(test_expectation_l1_grad_two_axes),
        cmocka_unit_test(test_weighted_loss_sum_grad),
        cmocka_unit_test(test_age_like_net_grad),
        cmocka_unit_test(test_upsample_nearest_grad_x2),
        cmocka_unit_test(test_upsample_nearest_grad_x3x2),
        cmocka_unit_test(test_upsample_bilinear_grad_x2),
        cmocka_unit_test(test_upsample_bilinear_grad_x3x4),
        cmocka_unit_test(test_upsample_bilinear_grad_x1x2),
        cmocka_unit_test(test_conv_transpose2d_grad_k3_s1_p0),
        cmocka_unit_test(test_conv_transpose2d_grad_k4_s2_p1),
        cmocka_unit_test(test_conv_transpose2d_grad_k3_s2_p1),
        cmocka_unit_test(test_conv_transpose2d_grad_k2_s3_p2),
        cmocka_unit_test(test_concat_nchw_grad_is_slices),
        cmocka_unit_test(test_concat_vectors_grad_is_slices),
        cmocka_unit_test(test_per_pixel_kl_grad_with_void_pixels),
        cmocka_unit_test(test_conv2d_grad_dilated_k3_d2_p2),
        cmocka_unit_test(test_conv2d_grad_k2x3_s2_p1),
        cmocka_unit_test(test_conv2d_grad_k3x2_d3_s2),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
