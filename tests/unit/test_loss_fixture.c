/* test_loss_fixture.c - the DLDL loss tail against numpy.
 *
 * tests/numeric/loss_fixture.txt is written by tests/numeric/make_loss_fixture.py
 * (numpy, closed-form gradient checked there by finite differences): logits z
 * [B,K], Gaussian targets y (sigma 2, ages 0..116), ages a [B], and
 *   KL = 1/B sum_b KL(y_b || softmax z_b)                 Gao et al., TIP 2017
 *   L1 = 1/B sum_b |E_b - a_b|, E_b = sum_k p_bk k        DLDL-v2, IJCAI 2018
 *   loss = KL + lambda L1
 *   dloss/dz = (p - y)/B + lambda/B sign(E - a) p (v - E)
 * Checked here, to 1e-6 relative:
 *   - the reference interpreter's forward values (tests/ref/interp.c);
 *   - the backward ops of ops.def, chained by hand (independent of autodiff);
 *   - the gradient autodiff builds (compiler/autodiff.c), run by the interpreter.
 * The generated (float) loss-tail kernel is checked against the same fixture in
 * test_kernels_ref.c.
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
#include "../ref/fixture_text.h"
#include "../ref/gbuild.h"
#include "../../compiler/autodiff.h"

#define FIXTURE "tests/numeric/loss_fixture.txt"
#define RTOL 1e-6
#define ATOL 1e-12

typedef struct Fixture {
    int B, K;
    double lambda, sigma;
    double *ages, *logits, *target, *probs, *expect, *grad;
    double kl, l1, loss;
} Fixture;

static Fixture fx;

static double *read_section(char **p, const char *name, long want)
{
    return fixture_section(p, FIXTURE, name, want, NULL);
}

static int load_fixture(void **state)
{
    (void)state;
    DlBuf text = {0};
    if (fixture_read_text(FIXTURE, &text)) return -1;
    char *p = text.s;
    double *v;
    int ok = 1;
#define SCALAR(field, nm) \
    ((v = read_section(&p, nm, 1)) ? (fx.field = v[0], free(v), 1) : 0)
    ok = ok && SCALAR(B, "B") && SCALAR(K, "K") && SCALAR(lambda, "lambda") && SCALAR(sigma, "sigma");
    long B = fx.B, K = fx.K;
    ok = ok && (fx.ages = read_section(&p, "ages", B)) && (fx.logits = read_section(&p, "logits", B * K))
         && (fx.target = read_section(&p, "target", B * K)) && (fx.probs = read_section(&p, "probs", B * K))
         && (fx.expect = read_section(&p, "expect", B)) && SCALAR(kl, "kl") && SCALAR(l1, "l1")
         && SCALAR(loss, "loss") && (fx.grad = read_section(&p, "grad", B * K));
#undef SCALAR
    dl_buf_free(&text);
    return ok ? 0 : -1;
}

static int free_fixture(void **state)
{
    (void)state;
    free(fx.ages), free(fx.logits), free(fx.target), free(fx.probs), free(fx.expect), free(fx.grad);
    return 0;
}

/* |got - want| <= ATOL + RTOL max(|got|, |want|) for every entry; prints the max errors. */
static int close_all(const char *what, const double *got, const double *want, long n)
{
    double maxabs = 0, maxrel = 0;
    int bad = 0;
    for (long i = 0; i < n; i++) {
        double d = fabs(got[i] - want[i]), m = fmax(fabs(got[i]), fabs(want[i]));
        maxabs = fmax(maxabs, d);
        if (m > 0) maxrel = fmax(maxrel, d / m);
        if (d > ATOL + RTOL * m) {
            if (bad++ < 5) fprintf(stderr, "  %s[%ld]: got %.17g, numpy %.17g\n", what, i, got[i], want[i]);
        }
    }
    printf("  %-8s %5ld values: max abs err %.3e, max rel err %.3e%s\n", what, n, maxabs, maxrel,
           bad ? "  FAIL" : "");
    return bad == 0;
}

/* The loss-tail graph of the fixture: z is a PARAM so that autodiff gives dz. */
typedef struct Tail {
    DlPool *pool;
    Graph *g;
    uint32_t z, y, label, bins, loss, probs, expect, kl, l1w;
} Tail;

static void tail_build(Tail *t)
{
    int64_t B = fx.B, K = fx.K;
    t->pool = dl_pool_new();
    t->g = graph_new(t->pool, fx.B);
    Graph *g = t->g;
    t->z = gb_param(g, GB_SH(B, K), "z");
    t->y = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, K), (GAttr){.input = {IN_TARGET}}, "target");
    t->label = gb(g, OP_INPUT, GB_NOIN, GB_SH(B, 1), (GAttr){.input = {IN_LABEL}}, "label");
    float *v = dl_pool_alloc(t->pool, (size_t)K * sizeof *v);
    for (int64_t k = 0; k < K; k++) v[k] = (float)k; /* ages 0..K-1 in years */
    t->bins = gb(g, OP_CONST, GB_NOIN, GB_SH(1, K), (GAttr){.cst = {v}}, "bins");
    t->loss = gb_loss_tail(g, t->z, t->y, t->label, t->bins, (float)fx.lambda);
    for (int i = 0; i < g->nouts; i++) {
        if (g->outs[i].kind == GOUT_PROBS) t->probs = g->outs[i].node;
        if (g->outs[i].kind == GOUT_EXPECT) t->expect = g->outs[i].node;
    }
    t->kl = g->nodes[t->loss].in[0];
    t->l1w = g->nodes[t->loss].in[1];
}

static double **tail_values(const Tail *t)
{
    double **vals = ref_alloc_values(t->g);
    memcpy(vals[t->z], fx.logits, (size_t)fx.B * fx.K * sizeof(double));
    memcpy(vals[t->y], fx.target, (size_t)fx.B * fx.K * sizeof(double));
    memcpy(vals[t->label], fx.ages, (size_t)fx.B * sizeof(double));
    for (uint32_t i = 0; i < t->g->n; i++)
        if (t->g->nodes[i].op == OP_SCALARS) vals[i][0] = 0.1, vals[i][1] = 0.9;
    return vals;
}

/* Forward: softmax, expectation, KL, L1 and the total (Gao et al. 2017; DLDL-v2). */
static void test_forward_kl_expectation_l1_match_numpy(void **state)
{
    (void)state;
    Tail t;
    tail_build(&t);
    double **vals = tail_values(&t);
    assert_int_equal(ref_run(t.g, vals), 0);
    double l1 = vals[t.l1w][0] / fx.lambda;
    int ok = close_all("probs", vals[t.probs], fx.probs, (long)fx.B * fx.K)
             & close_all("expect", vals[t.expect], fx.expect, fx.B)
             & close_all("kl", vals[t.kl], &fx.kl, 1) & close_all("l1", &l1, &fx.l1, 1)
             & close_all("loss", vals[t.loss], &fx.loss, 1);
    ref_free_values(t.g, vals);
    dl_pool_free(t.pool);
    assert_true(ok);
}

/* The backward ops chained by hand, as the chain rule reads:
 *   dkl[b] = 1/B; dlogq = -dkl y (kl_bwd); dl1[b] = lambda/B (mean_bwd of scale);
 *   de = dl1 sign(e - a) (absdiff_bwd); dp = de v (expect_bwd); dlogq += dp * p;
 *   dz = dlogq - p sum_k dlogq (log_softmax_bwd)
 * must give (p - y)/B + lambda/B sign(E - a) p (v - E). */
static void test_backward_ops_give_p_minus_y_over_B_plus_l1_term(void **state)
{
    (void)state;
    Tail t;
    tail_build(&t);
    Graph *g = t.g;
    int64_t B = fx.B, K = fx.K;
    uint32_t logq = g->nodes[t.probs].in[0];
    uint32_t seed = gb(g, OP_FILL, GB_NOIN, GB_SH(1), (GAttr){.f = 1.0f}, "d.loss");
    uint32_t dkl = gb(g, OP_MEAN_BWD, GB_IN(seed), GB_SH(B), GB_NOATTR, "d.kl.rows");
    uint32_t dlq1 = gb(g, OP_KL_BWD, GB_IN(dkl, t.y), GB_SH(B, K), GB_NOATTR, "d.logq.kl");
    uint32_t dl1m = gb(g, OP_SCALE, GB_IN(seed), GB_SH(1), (GAttr){.f = (float)fx.lambda}, "d.l1");
    uint32_t dl1 = gb(g, OP_MEAN_BWD, GB_IN(dl1m), GB_SH(B), GB_NOATTR, "d.l1.rows");
    uint32_t de = gb(g, OP_ABSDIFF_BWD, GB_IN(dl1, t.expect, t.label), GB_SH(B, 1), GB_NOATTR, "d.e");
    uint32_t dp = gb(g, OP_EXPECT_BWD, GB_IN(de, t.bins), GB_SH(B, K), GB_NOATTR, "d.p");
    uint32_t dlq2 = gb(g, OP_MUL, GB_IN(dp, t.probs), GB_SH(B, K), GB_NOATTR, "d.logq.exp");
    uint32_t dlq = gb(g, OP_ADD, GB_IN(dlq1, dlq2), GB_SH(B, K), GB_NOATTR, "d.logq");
    uint32_t dz = gb(g, OP_LOG_SOFTMAX_BWD, GB_IN(dlq, logq), GB_SH(B, K), GB_NOATTR, "d.z");
    double **vals = tail_values(&t);
    assert_int_equal(ref_run(g, vals), 0);
    int ok = close_all("dz", vals[dz], fx.grad, (long)B * K);
    ref_free_values(g, vals);
    dl_pool_free(t.pool);
    assert_true(ok);
}

/* The gradient ad_differentiate builds for the same graph: the SGD node of z
 * reads it (inputs w, g, v, scalars). */
static void test_autodiff_grad_matches_closed_form(void **state)
{
    (void)state;
    Tail t;
    tail_build(&t);
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(ad_differentiate(t.g, &diag), 0);
    uint32_t dz = G_NONE;
    for (uint32_t i = 0; i < t.g->n; i++)
        if (t.g->nodes[i].op == OP_SGD && t.g->nodes[i].in[0] == t.z) dz = t.g->nodes[i].in[1];
    assert_true(dz != G_NONE);
    double **vals = tail_values(&t);
    assert_int_equal(ref_run(t.g, vals), 0);
    int ok = close_all("ad dz", vals[dz], fx.grad, (long)fx.B * fx.K)
             & close_all("ad loss", vals[t.loss], &fx.loss, 1);
    ref_free_values(t.g, vals);
    dl_pool_free(t.pool);
    assert_true(ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_forward_kl_expectation_l1_match_numpy),
        cmocka_unit_test(test_backward_ops_give_p_minus_y_over_B_plus_l1_term),
        cmocka_unit_test(test_autodiff_grad_matches_closed_form),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
