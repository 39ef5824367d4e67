/* test_graph.c - graph_verify catches what it must, graph_dump's text is
 * exact, and lowering + autodiff of specs/age.dldl give the graph the brief
 * asks for (parameter count, shared parameter order, one gradient, momentum
 * and SGD node per parameter), and the small specs of tests/ops/ the
 * Nesterov, Adam and AdamW updates with their state tensors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../compiler/autodiff.h"
#include "../../compiler/lower.h"

static int verify_quiet(const Graph *g)
{
    DlDiag d;
    FILE *null = fopen("/dev/null", "w");
    dl_diag_init(&d, NULL, null);
    int n = graph_verify(g, "test", &d);
    fclose(null);
    return n;
}

#define SH(...) ((int64_t[]){__VA_ARGS__}), (int)(sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
static const DlSrcLoc NOLOC = {0, 0, 0};

/* x[2,3,4,4] -> conv w[5,3,3,3] p1 -> relu -> gap -> [2,5] */
static Graph *tiny(DlPool *pool)
{
    Graph *g = graph_new(pool, 2);
    uint32_t x = graph_add(g, OP_INPUT, NULL, 0, SH(2, 3, 4, 4), (GAttr){.input = {IN_IMAGE}}, "x", NOLOC);
    uint32_t w = graph_add(g, OP_PARAM, NULL, 0, SH(5, 3, 3, 3), (GAttr){.init = {INIT_KAIMING_UNIFORM, 27}}, "w",
                           (DlSrcLoc){3, 7, 6});
    uint32_t y = graph_add(g, OP_CONV2D, (uint32_t[]){x, w}, 2, SH(2, 5, 4, 4), (GAttr){.conv = {3, 3, 1, 1}}, "y",
                           (DlSrcLoc){3, 7, 6});
    uint32_t r = graph_add(g, OP_RELU, &y, 1, SH(2, 5, 4, 4), (GAttr){0}, "r", NOLOC);
    graph_add(g, OP_GAP, &r, 1, SH(2, 5), (GAttr){0}, "g", NOLOC);
    return g;
}

static void test_verify_ok_and_dump_exact(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = tiny(pool);
    assert_int_equal(verify_quiet(g), 0);
    DlBuf b = {0};
    graph_dump(g, &b);
    const char *want =
        "# batch 2, 5 nodes, 1 parameters (135 floats)\n"
        "%0 = input [2,3,4,4] image  ; x\n"
        "%1 = param [5,3,3,3] init=kaiming_uniform fan_in=27  ; w @3:7\n"
        "%2 = conv2d(%0, %1) [2,5,4,4] k3 s1 p1  ; y @3:7\n"
        "%3 = relu(%2) [2,5,4,4]  ; r\n"
        "%4 = global_avgpool(%3) [2,5]  ; g\n"
        "outputs:\n";
    assert_string_equal(b.s, want);
    dl_buf_free(&b);
    dl_pool_free(pool);
}

static void test_verify_catches(void **state)
{
    DlPool *pool = dl_pool_new();
    Graph *g = tiny(pool);
    g->nodes[3].shape[1] = 6; /* relu output differs from its input */
    assert_true(verify_quiet(g) >= 1);
    g = tiny(pool);
    g->nodes[2].shape[2] = 3; /* conv output size wrong for k3 p1 */
    assert_true(verify_quiet(g) >= 1);
    g = tiny(pool);
    g->nodes[2].in[0] = 3; /* not topological */
    assert_true(verify_quiet(g) >= 1);
    g = tiny(pool);
    g->nodes[3].nin = 2; /* arity */
    assert_true(verify_quiet(g) >= 1);
    g = tiny(pool);
    g->nodes[4].name = "r"; /* duplicate name */
    assert_true(verify_quiet(g) >= 1);
    g = tiny(pool);
    g->nodes[4].param = 0; /* param field pointing at a non-parameter */
    assert_true(verify_quiet(g) >= 1);
    dl_pool_free(pool);
}

static void test_age_graph(void **state)
{
    DlSource src;
    if (dl_source_read(&src, "specs/age.dldl", NULL) != 0)
        skip();
    DlPool *pool = dl_pool_new();
    DlDiag d;
    dl_diag_init(&d, &src, stderr);
    AstFile *f = NULL;
    assert_int_equal(dl_parse(&src, pool, &d, &f), 0);
    LowerResult lr;
    assert_int_equal(lower_file(f, pool, &d, NULL, 0, &lr), 0);
    assert_int_equal(d.nwarnings, 0);
    assert_int_equal(verify_quiet(lr.train) + verify_quiet(lr.eval), 0);
    assert_int_equal(lr.train->batch, 64);
    assert_int_equal(lr.meta.nlabels, 1);
    assert_int_equal(lr.meta.targets[0].axes[0].nbins, 117);
    assert_int_equal(lr.meta.nheads, 1);
    assert_int_equal(lr.meta.heads[0].K, 117);

    /* PARAM and STATE nodes: same names, same order, same shapes in both graphs */
    uint32_t ti = 0, ei = 0;
    int64_t pfloats = 0;
    int nparams = 0;
    for (;;) {
        while (ti < lr.train->n && lr.train->nodes[ti].op != OP_PARAM && lr.train->nodes[ti].op != OP_STATE) ti++;
        while (ei < lr.eval->n && lr.eval->nodes[ei].op != OP_PARAM && lr.eval->nodes[ei].op != OP_STATE) ei++;
        if (ti == lr.train->n || ei == lr.eval->n)
            break;
        const GNode *a = &lr.train->nodes[ti], *b = &lr.eval->nodes[ei];
        assert_int_equal(a->op, b->op);
        assert_string_equal(a->name, b->name);
        assert_int_equal(graph_numel(a), graph_numel(b));
        if (a->op == OP_PARAM)
            pfloats += graph_numel(a), nparams++;
        ti++, ei++;
    }
    assert_int_equal(ti, lr.train->n);
    assert_int_equal(ei, lr.eval->n);
    int64_t want = 3 * 32 * 9 + 32 * 32 * 9 + 32 * 64 * 9 + 64 * 64 * 9 + 64 * 128 * 9 + 3 * 128 * 128 * 9 +
                   2 * (32 * 2 + 64 * 2 + 128 * 4) + 128 * 117 + 117;
    assert_int_equal(pfloats, want);

    uint32_t nfwd = lr.train->n;
    assert_int_equal(ad_differentiate(lr.train, &d), 0);
    assert_int_equal(verify_quiet(lr.train), 0);
    Graph *g = lr.train;
    int nsgd = 0;
    for (uint32_t p = 0; p < nfwd; p++) {
        if (g->nodes[p].op != OP_PARAM)
            continue;
        int grads = 0, moms = 0, sgds = 0;
        for (uint32_t i = nfwd; i < g->n; i++) {
            const GNode *n = &g->nodes[i];
            if (n->param == p && n->op != OP_STATE)
                grads++, assert_int_equal(graph_numel(n), graph_numel(&g->nodes[p]));
            if (n->param == p && n->op == OP_STATE) {
                moms++;
                assert_non_null(strstr(n->name, ".momentum"));
            }
            if (n->op == OP_SGD && n->inplace == p)
                sgds++, assert_float_equal(n->attr.sgd.wd, 5e-4f, 1e-9f);
        }
        assert_int_equal(grads, 1);
        assert_int_equal(moms, 1);
        assert_int_equal(sgds, 1);
        nsgd++;
    }
    assert_int_equal(nsgd, nparams);
    /* batch norm running statistics stay plain state */
    for (uint32_t i = 0; i < nfwd; i++)
        if (g->nodes[i].op == OP_STATE)
            assert_int_equal(g->nodes[i].param, G_NONE);
    dl_pool_free(pool);
    dl_source_free(&src);
}

/* tests/ops/NAME.dldl lowered and differentiated: per parameter one update
 * node of op `want` (in place, wd as written) and its states in slot order,
 * named "<param>.<state>"; the verifier refuses the states swapped. */
static void optimizer_case(const char *name, GOp want, float wd, int nstate, const char *const *state)
{
    char path[64];
    snprintf(path, sizeof path, "tests/ops/%s.dldl", name);
    DlSource src;
    if (dl_source_read(&src, path, NULL) != 0) fail_msg("%s: cannot read (run from the repository root)", path);
    DlPool *pool = dl_pool_new();
    DlDiag d;
    dl_diag_init(&d, &src, stderr);
    AstFile *f = NULL;
    assert_int_equal(dl_parse(&src, pool, &d, &f), 0);
    LowerResult lr;
    assert_int_equal(lower_file(f, pool, &d, NULL, 0, &lr), 0);
    assert_int_equal(lr.train->optimizer, want);
    uint32_t nfwd = lr.train->n;
    assert_int_equal(ad_differentiate(lr.train, &d), 0);
    assert_int_equal(verify_quiet(lr.train), 0);
    Graph *g = lr.train;
    int nupd = 0;
    uint32_t some = G_NONE;
    for (uint32_t p = 0; p < nfwd; p++) {
        if (g->nodes[p].op != OP_PARAM)
            continue;
        int upd = 0;
        for (uint32_t i = nfwd; i < g->n; i++) {
            const GNode *n = &g->nodes[i];
            if (graph_op_kind[n->op] != OPK_OPT || n->in[0] != p)
                continue;
            upd++, some = i;
            assert_int_equal(n->op, want);
            assert_int_equal(n->inplace, p);
            assert_int_equal(n->nin, 3 + nstate);
            assert_float_equal(want == OP_ADAM || want == OP_ADAMW ? n->attr.adam.wd : n->attr.sgd.wd, wd, 1e-9);
            for (int k = 0; k < nstate; k++) {
                const GNode *st = &g->nodes[n->in[2 + k]];
                char nm[128];
                snprintf(nm, sizeof nm, "%s.%s", g->nodes[p].name, state[k]);
                assert_int_equal(st->op, OP_STATE);
                assert_int_equal(st->param, p);
                assert_int_equal(st->attr.ostate.slot, k);
                assert_string_equal(st->name, nm);
            }
        }
        assert_int_equal(upd, 1);
        nupd++;
    }
    printf("%s: %d parameters, one %s each with %d state(s)\n", name, nupd, graph_op_name[want], nstate);
    assert_true(nupd == 2 && some != G_NONE);
    if (nstate == 2) {
        uint32_t t = g->nodes[some].in[2];
        g->nodes[some].in[2] = g->nodes[some].in[3], g->nodes[some].in[3] = t;
        assert_true(verify_quiet(g) >= 1);
    }
    dl_pool_free(pool);
    dl_source_free(&src);
}

static void test_optimizer_graphs(void **state)
{
    static const char *const mom[] = {"momentum"}, *const adam[] = {"exp_avg", "exp_avg_sq"};
    optimizer_case("sgd_nesterov", OP_SGD_NESTEROV, 5e-4f, 1, mom);
    optimizer_case("adam", OP_ADAM, 1e-4f, 2, adam);
    optimizer_case("adamw", OP_ADAMW, 0.01f, 2, adam); /* PyTorch AdamW's default weight decay */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_ok_and_dump_exact),
        cmocka_unit_test(test_verify_catches),
        cmocka_unit_test(test_age_graph),
        cmocka_unit_test(test_optimizer_graphs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
