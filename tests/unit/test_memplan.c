/* test_memplan.c - the memory plan (compiler/memplan.c): no two activation
 * buffers live at the same time overlap (all pairs checked), parameters,
 * gradients and optimizer states share one layout (Adam: two copies of it
 * in the opt arena), kernel-internal and inlined
 * nodes get no storage, views and in-place writers alias.  Checked on the
 * small network of small_net.h and on specs/age.dldl (the full pipeline up to
 * the memory plan, run from the repository root as tests/run.sh does). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../compiler/fuse.h"
#include "../../compiler/lower.h"
#include "../../compiler/memplan.h"
#include "small_net.h"

/* All pairs of ACT buffers: live at the same time => disjoint.  Returns the
 * number of pairs checked that were live together. */
static int check_no_overlap(const Graph *g, const GSchedule *s, const GMemPlan *mp)
{
    int together = 0;
    DL_VEC(uint32_t) act = {0};
    int *first = calloc(g->n + 1, sizeof *first), *last = calloc(g->n + 1, sizeof *last);
    for (uint32_t i = 0; i < g->n; i++) {
        const GBuffer *b = &mp->buf[i];
        if (b->offset < 0 || b->arena != AR_ACT) continue;
        assert_int_equal(b->offset % MEM_ALIGN, 0);
        assert_true(b->offset + b->numel <= mp->arena_size[AR_ACT]);
        if (!mem_live_range(g, s, i, &first[i], &last[i])) fail_msg("ACT node %%%u has no live range", i);
        assert_true(first[i] <= last[i]);
        /* only storage roots: views and in-place writers share on purpose */
        if (graph_op_kind[g->nodes[i].op] == OPK_VIEW || g->nodes[i].inplace != G_NONE) continue;
        DL_PUSH(act, i);
    }
    for (size_t a = 0; a < act.n; a++)
        for (size_t b = a + 1; b < act.n; b++) {
            uint32_t x = act.a[a], y = act.a[b];
            if (first[x] > last[y] || first[y] > last[x]) continue;
            together++;
            const GBuffer *p = &mp->buf[x], *q = &mp->buf[y];
            if (p->offset < q->offset + q->numel && q->offset < p->offset + p->numel)
                fail_msg("%%%u [%lld,+%lld) live %d..%d overlaps %%%u [%lld,+%lld) live %d..%d", x,
                         (long long)p->offset, (long long)p->numel, first[x], last[x], y,
                         (long long)q->offset, (long long)q->numel, first[y], last[y]);
        }
    free(act.a);
    free(first);
    free(last);
    return together;
}

/* Parameters tile the param arena in node order; each gradient sits at its
 * parameter's offset in the grad arena, each optimizer state (nslots per
 * parameter: SGD's momentum; Adam's exp_avg, exp_avg_sq) at slot * P + that
 * offset in the opt arena, P the param arena's size. */
static void check_param_layout_slots(const Graph *g, const GMemPlan *mp, int expect_grads, int nslots)
{
    int64_t prev_end = 0;
    int ngrad = 0, nmom = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *N = &g->nodes[i];
        const GBuffer *b = &mp->buf[i];
        if (N->op == OP_PARAM) {
            assert_int_equal(b->arena, AR_PARAM);
            assert_int_equal(b->offset % MEM_ALIGN, 0);
            assert_true(b->offset >= prev_end);
            assert_int_equal(b->numel, graph_numel(N));
            prev_end = b->offset + b->numel;
        }
        if (N->param == G_NONE || b->offset < 0) continue;
        const GBuffer *p = &mp->buf[N->param];
        int slot = N->op == OP_STATE ? N->attr.ostate.slot : 0;
        assert_true(slot >= 0 && slot < nslots);
        assert_int_equal(b->offset, slot * mp->arena_size[AR_PARAM] + p->offset);
        assert_int_equal(b->numel, p->numel);
        if (N->op == OP_STATE) { assert_int_equal(b->arena, AR_OPT); nmom++; }
        else { assert_int_equal(b->arena, AR_GRAD); ngrad++; }
    }
    assert_true(prev_end <= mp->arena_size[AR_PARAM]);
    assert_true(mp->arena_size[AR_GRAD] <= mp->arena_size[AR_PARAM]);
    assert_true(mp->arena_size[AR_OPT] <= nslots * mp->arena_size[AR_PARAM]);
    if (expect_grads) { assert_true(ngrad > 0); assert_int_equal(nslots * ngrad, nmom); }
}
static void check_param_layout(const Graph *g, const GMemPlan *mp, int expect_grads)
{
    check_param_layout_slots(g, mp, expect_grads, 1);
}

static void plan_small(DlPool *pool, Graph **g, GSchedule *s, GMemPlan *mp, int with_grad)
{
    *g = small_net(pool, with_grad);
    assert_non_null(*g);
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(fuse_graph(*g, pool, s, &diag), 0);
    assert_int_equal(mem_plan(*g, s, pool, mp, &diag), 0);
}

static void test_small_no_overlap(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g;
    GSchedule s;
    GMemPlan mp;
    plan_small(pool, &g, &s, &mp, 1);
    assert_true(check_no_overlap(g, &s, &mp) > 0);
    check_param_layout(g, &mp, 1);
    MemStats st;
    mem_stats(g, &mp, &st);
    assert_true(st.act_peak <= st.act_total);
    assert_true(st.act_peak < st.act_total);  /* something is reused */
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(mem_verify(g, &s, &mp, &diag), 0);
    dl_pool_free(pool);
}

/* mem_verify catches two live buffers moved onto each other. */
static void test_verify_catches(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g;
    GSchedule s;
    GMemPlan mp;
    plan_small(pool, &g, &s, &mp, 1);
    uint32_t conv = G_NONE, relu = G_NONE;   /* both live from the forward pass to the backward */
    for (uint32_t i = 0; i < g->n; i++) {
        if (g->nodes[i].op == OP_CONV2D) conv = i;
        if (g->nodes[i].op == OP_RELU) relu = i;
    }
    assert_true(conv != G_NONE && relu != G_NONE);
    mp.buf[relu].offset = mp.buf[conv].offset;
    FILE *devnull = fopen("/dev/null", "w");
    DlDiag diag;
    dl_diag_init(&diag, NULL, devnull);
    assert_true(mem_verify(g, &s, &mp, &diag) > 0);
    fclose(devnull);
    dl_pool_free(pool);
}

static void test_small_storage_kinds(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g;
    GSchedule s;
    GMemPlan mp;
    plan_small(pool, &g, &s, &mp, 1);
    int seen_apply = 0, seen_relu_bwd = 0, seen_inplace = 0;
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *N = &g->nodes[i];
        const GBuffer *b = &mp.buf[i];
        switch (N->op) {
        case OP_BN_APPLY:     /* fused with the relu: never stored */
            assert_int_equal(b->offset, -1);
            seen_apply++;
            break;
        case OP_RELU_BWD:     /* recomputed in both consumers */
            assert_int_equal(b->offset, -1);
            seen_relu_bwd++;
            break;
        case OP_INPUT: case OP_SCALARS:
            assert_int_equal(b->arena, AR_INPUT);
            break;
        case OP_CONST:
            assert_int_equal(b->arena, AR_CONST);
            break;
        case OP_STATE:
            assert_int_equal(b->arena, N->param != G_NONE ? AR_OPT : AR_STATE);
            break;
        default:
            break;
        }
        if (N->inplace != G_NONE) {
            assert_int_equal(b->arena, mp.buf[N->inplace].arena);
            assert_int_equal(b->offset, mp.buf[N->inplace].offset);
            seen_inplace++;
        }
        if (graph_op_kind[N->op] == OPK_VIEW) {
            assert_int_equal(b->offset, mp.buf[N->in[0]].offset);
            assert_int_equal(b->arena, mp.buf[N->in[0]].arena);
        }
    }
    for (int o = 0; o < g->nouts; o++) assert_true(mp.buf[g->outs[o].node].offset >= 0);
    assert_int_equal(seen_apply, 1);
    assert_true(seen_relu_bwd >= 1);
    assert_true(seen_inplace >= 2);   /* bn_running and the sgd updates */
    dl_pool_free(pool);
}

/* Adam's two states per parameter: AR_OPT holds two copies of the parameter
 * layout, exp_avg in the first and exp_avg_sq in the second, and mem_verify
 * catches a state moved to the other copy. */
static void test_small_adam_slots(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = small_net(pool, 0);
    assert_non_null(g);
    g->optimizer = OP_ADAM;
    g->optimizer_attr = (GAttr){.adam = {0, 0.999, 1e-8}};
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(ad_differentiate(g, &diag), 0);
    assert_int_equal(graph_verify(g, "autodiff", &diag), 0);
    GSchedule s;
    GMemPlan mp;
    assert_int_equal(fuse_graph(g, pool, &s, &diag), 0);
    assert_int_equal(mem_plan(g, &s, pool, &mp, &diag), 0);
    check_param_layout_slots(g, &mp, 1, 2);
    assert_int_equal(mp.arena_size[AR_OPT], 2 * mp.arena_size[AR_PARAM]);
    assert_int_equal(mem_verify(g, &s, &mp, &diag), 0);
    uint32_t sq = G_NONE;
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_STATE && g->nodes[i].attr.ostate.slot == 1) sq = i;
    assert_true(sq != G_NONE);
    printf("%s at opt+%lld of %lld floats (param arena %lld)\n", g->nodes[sq].name, (long long)mp.buf[sq].offset,
           (long long)mp.arena_size[AR_OPT], (long long)mp.arena_size[AR_PARAM]);
    mp.buf[sq].offset -= mp.arena_size[AR_PARAM]; /* onto exp_avg's place */
    FILE *devnull = fopen("/dev/null", "w");
    dl_diag_init(&diag, NULL, devnull);
    assert_true(mem_verify(g, &s, &mp, &diag) > 0);
    fclose(devnull);
    dl_pool_free(pool);
}

/* The age network: 8 conv blocks, the whole pipeline up to the memory plan. */
static void test_age_spec(void **state)
{
    DlSource src;
    if (dl_source_read(&src, "specs/age.dldl", NULL) != 0) {
        printf("specs/age.dldl not readable from here (run from the repository root)\n");
        skip();
    }
    DlPool *pool = dl_pool_new();
    DlDiag diag;
    dl_diag_init(&diag, &src, stderr);
    AstFile *ast = NULL;
    assert_int_equal(dl_parse(&src, pool, &diag, &ast), 0);
    LowerResult lr;
    assert_int_equal(lower_file(ast, pool, &diag, NULL, 0, &lr), 0);
    assert_int_equal(ad_differentiate(lr.train, &diag), 0);
    Graph *gs[2] = {lr.train, lr.eval};
    for (int p = 0; p < 2; p++) {
        GSchedule s;
        GMemPlan mp;
        assert_int_equal(fuse_graph(gs[p], pool, &s, &diag), 0);
        assert_int_equal(mem_plan(gs[p], &s, pool, &mp, &diag), 0);
        int together = check_no_overlap(gs[p], &s, &mp);
        check_param_layout(gs[p], &mp, p == 0);
        MemStats st;
        mem_stats(gs[p], &mp, &st);
        printf("age %s: %d groups, %d act buffers, %d pairs live together, peak %.2f MiB of %.2f MiB\n",
               p ? "eval" : "train", s.n, st.nbuffers, together, st.act_peak * 4.0 / 1048576,
               st.act_total * 4.0 / 1048576);
        assert_true(st.act_peak < st.act_total);
    }
    dl_pool_free(pool);
    dl_source_free(&src);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_no_overlap),
        cmocka_unit_test(test_small_storage_kinds),
        cmocka_unit_test(test_verify_catches),
        cmocka_unit_test(test_small_adam_slots),
        cmocka_unit_test(test_age_spec),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
