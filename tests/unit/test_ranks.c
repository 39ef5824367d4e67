/* test_ranks.c - the maths of data-parallel training (docs/parallel.md), in
 * double precision with the reference interpreter: the train@2 graph run by
 * two "ranks" in lockstep, each on its half of a global batch, with every
 * ALLREDUCE node's value replaced by the sum over the two ranks, computes what
 * the one-process train graph computes on the whole batch:
 *   - the ranks' losses sum to the global loss;
 *   - the ranks' parameter gradients sum to the global gradients (the loss
 *     scaled by 1/N, batch norm's statistics and its backward sums over the
 *     global batch, dgamma and dbeta from each rank's own samples);
 *   - each rank's updated running statistics equal the global ones.
 * Spec: tests/ops/sync_bn.dldl (two conv - batch norm - ReLU blocks, a max
 * pool, KL + expectation L1) at the global batch 4.  The generated kernels of
 * train@N are checked against the same interpreter in test_kernels_ref.
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
#include "../ref/spec_programs.h"

#define NR 2 /* ranks */

static uint64_t rng = 7;
static double urand(double lo, double hi)
{
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(rng >> 11) / 9007199254740992.0;
}

/* The one-process sources: weights in (-1, 1), gamma near 1, running var near 1,
 * images in (-1, 1), targets normalised rows, ages in the bins' range. */
static void fill_global(const Graph *g, double **v)
{
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *t = &g->nodes[i];
        int64_t N = graph_numel(t);
        if (!v[i] || t->op == OP_CONST) continue;
        if (t->op == OP_SCALARS) {
            v[i][0] = 0.05, v[i][1] = 0.9, v[i][2] = 0, v[i][3] = 0;
        } else if (t->op == OP_INPUT && t->attr.input.kind == IN_TARGET) {
            int64_t K = t->shape[1];
            for (int64_t b = 0; b < t->shape[0]; b++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += v[i][b * K + k] = urand(0, 1);
                for (int64_t k = 0; k < K; k++) v[i][b * K + k] /= s;
            }
        } else if (t->op == OP_INPUT && t->attr.input.kind == IN_LABEL) {
            for (int64_t k = 0; k < N; k++) v[i][k] = urand(0, 5);
        } else if (t->op == OP_STATE && t->param == G_NONE) { /* running [2,C]: mean, var */
            for (int64_t k = 0; k < N; k++) v[i][k] = k < N / 2 ? urand(-0.2, 0.2) : urand(0.8, 1.2);
        } else if (t->op == OP_STATE) { /* momentum */
            for (int64_t k = 0; k < N; k++) v[i][k] = 0;
        } else if (t->name && strstr(t->name, "weight") && t->ndim == 1) { /* batch norm gamma */
            for (int64_t k = 0; k < N; k++) v[i][k] = urand(0.5, 1.5);
        } else {
            for (int64_t k = 0; k < N; k++) v[i][k] = urand(-1, 1);
        }
    }
}

/* Rank r's sources: the same weights and states (by name), rows [r b, (r+1) b)
 * of the global batch's inputs. */
static void fill_rank(const Graph *g1, double **v1, const Graph *g, double **v, int r)
{
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *t = &g->nodes[i];
        if (!v[i] || t->op == OP_CONST) continue;
        uint32_t j = graph_find(g1, t->name);
        assert_int_not_equal(j, G_NONE);
        int64_t N = graph_numel(t);
        int64_t off = t->op == OP_INPUT ? r * N : 0;
        assert_true(off + N <= graph_numel(&g1->nodes[j]));
        memcpy(v[i], v1[j] + off, (size_t)N * sizeof(double));
    }
}

/* The gradient node of parameter p (the node whose .param is p, not its optimizer state or update). */
static uint32_t grad_of(const Graph *g, uint32_t p)
{
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].param == p && g->nodes[i].op != OP_STATE && graph_op_kind[g->nodes[i].op] != OPK_OPT) return i;
    return G_NONE;
}

static uint32_t out_node(const Graph *g, GOutKind k)
{
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].kind == k) return g->outs[o].node;
    return G_NONE;
}

/* max |a - b| / max(max |a|, 1e-12) over n values */
static double rel_err(const double *a, const double *b, int64_t n)
{
    double d = 0, m = 0;
    for (int64_t k = 0; k < n; k++) d = fmax(d, fabs(a[k] - b[k])), m = fmax(m, fabs(a[k]));
    return d / fmax(m, 1e-12);
}

static void test_two_ranks_compute_the_global_step(void **state)
{
    (void)state;
    RefSpec r;
    ref_spec_open_ranks(&r, "tests/ops/sync_bn.dldl", 4, NR);
    const Graph *g1 = r.progs[0].g, *g = r.progs[2].g;
    assert_int_equal(g->batch * NR, g1->batch);
    double **v1 = ref_alloc_values(g1), **v[NR];
    fill_global(g1, v1);
    assert_int_equal(ref_run(g1, v1), 0);
    for (int k = 0; k < NR; k++) {
        v[k] = ref_alloc_values(g);
        fill_rank(g1, v1, g, v[k], k);
    }
    /* the ranks in lockstep: up to each ALLREDUCE, then its value summed over the ranks */
    int nred = 0;
    uint32_t from = 0;
    for (uint32_t i = 0; i <= g->n; i++) {
        if (i < g->n && g->nodes[i].op != OP_ALLREDUCE) continue;
        for (int k = 0; k < NR; k++) assert_int_equal(ref_run_range(g, v[k], from, i < g->n ? i + 1 : i), 0);
        if (i == g->n) break;
        int64_t N = graph_numel(&g->nodes[i]);
        for (int64_t e = 0; e < N; e++) {
            double s = 0;
            for (int k = 0; k < NR; k++) s += v[k][i][e];
            for (int k = 0; k < NR; k++) v[k][i][e] = s;
        }
        from = i + 1, nred++;
    }
    printf("  %d all-reduces of batch norm sums (forward and backward) per step\n", nred);
    assert_int_equal(nred, 4); /* two batch norms, forward and backward */

    double worst = 0;
    uint32_t l1 = out_node(g1, GOUT_LOSS), l = out_node(g, GOUT_LOSS);
    double lsum = 0;
    for (int k = 0; k < NR; k++) lsum += v[k][l][0];
    worst = fmax(worst, fabs(lsum - v1[l1][0]) / fabs(v1[l1][0]));
    printf("  loss: one process %.12g, ranks summed %.12g\n", v1[l1][0], lsum);
    int ngrad = 0, nrun = 0;
    for (uint32_t p = 0; p < g1->n; p++) {
        const GNode *P = &g1->nodes[p];
        if (P->op == OP_PARAM) {
            uint32_t q = graph_find(g, P->name), gp1 = grad_of(g1, p), gp = q == G_NONE ? G_NONE : grad_of(g, q);
            assert_int_not_equal(gp1, G_NONE);
            assert_int_not_equal(gp, G_NONE);
            int64_t N = graph_numel(P);
            double *sum = dl_xcalloc((size_t)N, sizeof *sum);
            for (int k = 0; k < NR; k++)
                for (int64_t e = 0; e < N; e++) sum[e] += v[k][gp][e];
            double err = rel_err(v1[gp1], sum, N);
            printf("  gradient of %-22s summed over the ranks: relative error %.2e\n", P->name, err);
            worst = fmax(worst, err);
            free(sum);
            ngrad++;
        }
        if (P->op == OP_BN_RUNNING) { /* the updated running statistics */
            uint32_t q = graph_find(g, P->name);
            assert_int_not_equal(q, G_NONE);
            for (int k = 0; k < NR; k++) worst = fmax(worst, rel_err(v1[p], v[k][q], graph_numel(P)));
            nrun++;
        }
    }
    printf("  %d gradients, %d running statistics: worst relative error %.2e\n", ngrad, nrun, worst);
    assert_int_equal(nrun, 2);
    assert_true(worst < 1e-10);
    for (int k = 0; k < NR; k++) ref_free_values(g, v[k]);
    ref_free_values(g1, v1);
    ref_spec_close(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_two_ranks_compute_the_global_step),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
