/* test_fuse.c - fusion (compiler/fuse.c) of the small network of small_net.h
 * after autodiff: the groups are exactly the expected ones, and the schedule
 * is valid (every input written by an earlier group, in-place writers after
 * the other readers of their target, the optimizer last, outputs stored). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../compiler/fuse.h"
#include "small_net.h"

/* "kind:op,op,..." with the member ops sorted (independent of node order). */
static char *signature(const Graph *g, const GGroup *gr)
{
    const char **ops = calloc((size_t)gr->nnodes + 1, sizeof *ops);
    for (int i = 0; i < gr->nnodes; i++) ops[i] = graph_op_name[g->nodes[gr->nodes[i]].op];
    for (int i = 1; i < gr->nnodes; i++)   /* insertion sort */
        for (int j = i; j > 0 && strcmp(ops[j - 1], ops[j]) > 0; j--) {
            const char *t = ops[j]; ops[j] = ops[j - 1]; ops[j - 1] = t;
        }
    DlBuf b = {0};
    dl_buf_printf(&b, "%s:", graph_group_kind_name(gr->kind));
    for (int i = 0; i < gr->nnodes; i++) dl_buf_printf(&b, "%s%s", i ? "," : "", ops[i]);
    free(ops);
    return b.s;
}

static uint32_t root(const Graph *g, uint32_t n)
{
    while (graph_op_kind[g->nodes[n].op] == OPK_VIEW) n = g->nodes[n].in[0];
    return n;
}

/* Position of the group whose outs hold n, -1 if none. */
static int writer(const GSchedule *s, uint32_t n)
{
    for (int k = 0; k < s->n; k++)
        for (int j = 0; j < s->groups[k].nouts; j++)
            if (s->groups[k].outs[j] == n) return k;
    return -1;
}

static void test_schedule_valid(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = small_net(pool, 1);
    assert_non_null(g);
    GSchedule s;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(fuse_graph(g, pool, &s, &diag), 0);
    assert_true(s.n > 0);
    /* every computing node is in a group; nodes in several groups are cheap
     * elementwise producers and stored nowhere */
    for (uint32_t i = 0; i < g->n; i++) {
        GOpKind k = graph_op_kind[g->nodes[i].op];
        int in = 0;
        for (int j = 0; j < s.n; j++) in += fuse_group_has(&s.groups[j], i);
        if (k == OPK_SOURCE || k == OPK_VIEW) { assert_int_equal(in, 0); continue; }
        assert_true(in >= 1);
        if (in > 1) {
            assert_int_equal(k, OPK_ELEM);
            assert_int_equal(writer(&s, i), -1);
        }
    }
    for (int k = 0; k < s.n; k++) {
        const GGroup *gr = &s.groups[k];
        for (int j = 1; j < gr->nnodes; j++) assert_true(gr->nodes[j - 1] < gr->nodes[j]);
        /* ins: sources, or written by an earlier group */
        for (int j = 0; j < gr->nins; j++) {
            uint32_t r = root(g, gr->ins[j]);
            assert_false(fuse_group_has(gr, gr->ins[j]));
            if (graph_op_kind[g->nodes[r].op] == OPK_SOURCE) continue;
            int w = writer(&s, r);
            if (w < 0 || w >= k) fail_msg("group %s reads %%%u, written by group %d", gr->name, r, w);
        }
        /* every member input is a member or an in */
        for (int j = 0; j < gr->nnodes; j++) {
            const GNode *N = &g->nodes[gr->nodes[j]];
            for (int i = 0; i < N->nin; i++) {
                int found = fuse_group_has(gr, N->in[i]);
                for (int t = 0; t < gr->nins && !found; t++) found = gr->ins[t] == N->in[i];
                assert_true(found);
            }
        }
        /* names unique */
        for (int t = 0; t < k; t++) assert_string_not_equal(s.groups[t].name, gr->name);
    }
    /* in-place writers after every other reader of their target */
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t t = g->nodes[i].inplace;
        if (t == G_NONE) continue;
        int w = writer(&s, i);
        assert_true(w >= 0);
        for (int k = 0; k < s.n; k++)
            for (int j = 0; j < s.groups[k].nins; j++)
                if (root(g, s.groups[k].ins[j]) == t && k != w) assert_true(k < w);
    }
    assert_int_equal(s.groups[s.n - 1].kind, GG_OPT);
    for (int o = 0; o < g->nouts; o++) assert_true(writer(&s, g->outs[o].node) >= 0);
    assert_int_equal(fuse_verify(g, &s, &diag), 0);
    dl_pool_free(pool);
}

/* The verifier catches a bad order: the first group (the conv) moved last. */
static void test_verify_catches(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = small_net(pool, 1);
    assert_non_null(g);
    GSchedule s;
    DlDiag diag;
    FILE *devnull = fopen("/dev/null", "w");
    dl_diag_init(&diag, NULL, devnull);
    assert_int_equal(fuse_graph(g, pool, &s, &diag), 0);
    GGroup first = s.groups[0];
    memmove(&s.groups[0], &s.groups[1], (size_t)(s.n - 1) * sizeof *s.groups);
    s.groups[s.n - 1] = first;
    assert_true(fuse_verify(g, &s, &diag) > 0);
    assert_true(diag.nerrors > 0);
    fclose(devnull);
    dl_pool_free(pool);
}

/* The groups, as signatures; the loss tail (GG_ROW) is checked apart, since
 * which elementwise helpers autodiff puts in it is autodiff's choice. */
static const char *const expected[] = {
    "lib:conv2d",
    "chanred:bn_running,bn_stats",
    "elem:bn_apply,relu",
    "window:maxpool",
    "window:global_avgpool",
    "lib:matmul",
    "batchred:mean",
    "batchred:mean",
    "elem:add,scale",
    "chanred:chan_sum",
    "lib:matmul",
    "lib:matmul",
    "elem:gap_bwd",
    "window:maxpool_bwd",
    "chanred:bn_bwd_stats,relu_bwd,select,select",
    "elem:bn_bwd_data,relu_bwd",
    "lib:conv2d_bwd_filter",
    "opt:sgd,sgd,sgd,sgd,sgd",
};

static void test_expected_groups(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = small_net(pool, 1);
    assert_non_null(g);
    GSchedule s;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(fuse_graph(g, pool, &s, &diag), 0);
    int nexp = (int)(sizeof expected / sizeof *expected);
    int *used = calloc((size_t)nexp, sizeof *used);
    int nrow = 0, bad = 0;
    for (int k = 0; k < s.n; k++) {
        const GGroup *gr = &s.groups[k];
        char *sig = signature(g, gr);
        if (gr->kind == GG_ROW) {
            nrow++;
            for (int j = 0; j < gr->nnodes; j++) {
                GOpKind ok = graph_op_kind[g->nodes[gr->nodes[j]].op];
                if (ok != OPK_ROW && ok != OPK_ELEM) { printf("row group holds %s\n", sig); bad++; }
            }
        } else {
            int hit = 0;
            for (int e = 0; e < nexp && !hit; e++)
                if (!used[e] && !strcmp(expected[e], sig)) used[e] = hit = 1;
            if (!hit) { printf("unexpected group %s: %s\n", gr->name, sig); bad++; }
        }
        free(sig);
    }
    for (int e = 0; e < nexp; e++)
        if (!used[e]) { printf("missing group %s\n", expected[e]); bad++; }
    /* one row group: the whole loss tail, forward and backward */
    assert_int_equal(nrow, 1);
    for (uint32_t i = 0; i < g->n; i++) {
        if (graph_op_kind[g->nodes[i].op] != OPK_ROW) continue;
        int in = 0;
        for (int k = 0; k < s.n; k++) in |= s.groups[k].kind == GG_ROW && fuse_group_has(&s.groups[k], i);
        if (!in) { printf("row op %%%u %s outside the row group\n", i, graph_op_name[g->nodes[i].op]); bad++; }
    }
    if (bad) {
        DlBuf b = {0};
        fuse_dump(g, &s, &b);
        printf("%s", b.s);
        dl_buf_free(&b);
    }
    assert_int_equal(bad, 0);
    free(used);
    dl_pool_free(pool);
}

/* Without autodiff (the eval-like forward graph) there is no optimizer group,
 * and the relu output, read only by the pool, is the elementwise group's only out. */
static void test_forward_only(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = small_net(pool, 0);
    assert_non_null(g);
    GSchedule s;
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(fuse_graph(g, pool, &s, &diag), 0);
    int nelem = 0;
    for (int k = 0; k < s.n; k++) {
        const GGroup *gr = &s.groups[k];
        assert_int_not_equal(gr->kind, GG_OPT);
        if (gr->kind == GG_ELEM && g->nodes[gr->nodes[0]].op == OP_BN_APPLY) {
            nelem++;
            assert_int_equal(gr->nnodes, 2);
            assert_int_equal(gr->nouts, 1);
            assert_int_equal(g->nodes[gr->outs[0]].op, OP_RELU);
            assert_true(fuse_is_internal(gr, gr->nodes[0]));
        }
    }
    assert_int_equal(nelem, 1);
    dl_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_schedule_valid),
        cmocka_unit_test(test_expected_groups),
        cmocka_unit_test(test_forward_only),
        cmocka_unit_test(test_verify_catches),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
