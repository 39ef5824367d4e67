/* test_optimizer_fixture.c - the generated optimizer kernel, run for several
 * steps, against numpy.
 *
 * tests/numeric/optimizer_fixture.txt is written by
 * tests/numeric/make_optimizer_fixture.py from PyTorch's documented torch.optim
 * formulas in float64 (SGD with momentum and Nesterov momentum; Adam, Kingma &
 * Ba, ICLR 2015, Alg. 1; AdamW, Loshchilov & Hutter, ICLR 2019, Alg. 2), each
 * with and without weight decay, some with the learning rate and momentum /
 * beta1 changing every step as a schedule changes them, some resumed at a
 * later global step with nonzero state.  Per case: two parameters (15 and 7
 * elements), w0 and the optimizer state, S steps of gradients and scalars
 * [lr, momentum or beta1, t0 + s], and the weights and state after every step.
 *
 * Here each case becomes the graph autodiff would build (the update op of
 * ops.def per parameter, its state tensors in their AR_OPT slots, gradients
 * in AR_GRAD), goes through the real back end (fusion, memory plan, the
 * GG_OPT kernel of codegen/build_opt.c, compiled by cc: tests/ref/kexec.h),
 * and the kernel runs the S steps on its own float arenas, as the runtime
 * would.  After every step, per tensor:
 *   w: max |w - w_numpy| / max |w_numpy - w0|   (error relative to the update so far) <= 2e-5
 *   m, v: max |x - x_numpy| / max |x_numpy|                                            <= 1e-5
 * (float arithmetic against float64 with no rounding between steps; the
 * worst figures are printed.)
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

#include "../ref/interp.c" /* kexec.c is included after the interpreter (kexec.h) */
#include "../ref/kexec.c"
#include "../ref/fixture_text.h"
#include "../ref/gbuild.h"

#define FIXTURE "tests/numeric/optimizer_fixture.txt"
#define TOL_W 2e-5
#define TOL_STATE 1e-5

typedef struct OptCase {
    char name[64], op[32];
    double wd, beta2, eps, t0;
    int steps;
    double *lr, *mom, *w0, *m0, *v0, *grad, *w, *m, *v; /* grad, w, m, v: steps x N */
} OptCase;

static struct {
    int ncases, nsizes, N;
    int64_t sizes[4];
    OptCase *c;
} fx;

/* The fixture text with comments blanked, and a cursor in it. */
static char *text, *cur;

static double *section(const char *name, long want) { return fixture_section(&cur, FIXTURE, name, want, NULL); }

static int scalar(const char *name, double *out)
{
    double *v = section(name, 1);
    if (!v) return 0;
    *out = v[0];
    free(v);
    return 1;
}

static int load_fixture(void **state)
{
    (void)state;
    DlBuf b = {0};
    if (fixture_read_text(FIXTURE, &b)) return -1;
    text = cur = b.s;
    double n, *sz;
    if (!scalar("cases", &n) || !(sz = section("sizes", -1))) return -1;
    fx.ncases = (int)n;
    fx.nsizes = 2;
    fx.N = (int)(sz[0] + sz[1]);
    fx.sizes[0] = (int64_t)sz[0], fx.sizes[1] = (int64_t)sz[1];
    free(sz);
    fx.c = dl_xcalloc((size_t)fx.ncases, sizeof *fx.c);
    long N = fx.N;
    for (int i = 0; i < fx.ncases; i++) {
        OptCase *c = &fx.c[i];
        int used = 0;
        if (sscanf(cur, " case %63s %31s%n", c->name, c->op, &used) != 2) {
            fprintf(stderr, "%s: case %d: expected 'case NAME OP'\n", FIXTURE, i);
            return -1;
        }
        cur += used;
        double st;
        if (!scalar("wd", &c->wd) || !scalar("beta2", &c->beta2) || !scalar("eps", &c->eps) ||
            !scalar("t0", &c->t0) || !scalar("steps", &st))
            return -1;
        c->steps = (int)st;
        long S = c->steps;
        if (!(c->lr = section("lr", S)) || !(c->mom = section("mom", S)) || !(c->w0 = section("w0", N)) ||
            !(c->m0 = section("m0", N)) || !(c->v0 = section("v0", N)) || !(c->grad = section("grad", S * N)) ||
            !(c->w = section("w", S * N)) || !(c->m = section("m", S * N)) || !(c->v = section("v", S * N)))
            return -1;
    }
    return 0;
}

static int free_fixture(void **state)
{
    (void)state;
    for (int i = 0; i < fx.ncases; i++) {
        OptCase *c = &fx.c[i];
        free(c->lr), free(c->mom), free(c->w0), free(c->m0), free(c->v0), free(c->grad);
        free(c->w), free(c->m), free(c->v);
    }
    free(fx.c);
    free(text);
    return 0;
}

static GOp op_of(const char *name)
{
    for (int op = 0; op < OP_COUNT; op++)
        if (graph_op_kind[op] == OPK_OPT && !strcmp(graph_op_name[op], name)) return (GOp)op;
    fail_msg("%s: unknown optimizer '%s'", FIXTURE, name);
    return OP_COUNT;
}

/* The nodes of one case's graph. */
typedef struct OptGraph {
    Graph *g;
    uint32_t sc, w[2], gin[2], st[2][2];
    int nstate;
} OptGraph;

/* Per parameter k: w = PARAM, grad = SCALE(INPUT, 1) with param = w (the
 * gradient in AR_GRAD), the states in slots 0..nstate-1, and the update. */
static void build(OptGraph *o, DlPool *pool, GOp op, const OptCase *c)
{
    static const char *const wn[2] = {"p0", "p1"}, *const gn[2] = {"grad.p0", "grad.p1"},
                      *const in[2] = {"g0.in", "g1.in"}, *const un[2] = {"p0.update", "p1.update"},
                      *const sn[2][2] = {{"p0.state0", "p0.state1"}, {"p1.state0", "p1.state1"}};
    Graph *g = o->g = graph_new(pool, 1);
    int adam = op == OP_ADAM || op == OP_ADAMW;
    o->nstate = adam ? 2 : 1;
    GAttr at = adam ? (GAttr){.adam = {(float)c->wd, c->beta2, c->eps}} : (GAttr){.sgd = {(float)c->wd}};
    o->sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    for (int k = 0; k < 2; k++) {
        int64_t n[2] = {1, fx.sizes[k]}; /* [1, n]: graph inputs have 2 to 4 dims */
        o->w[k] = gb_param(g, n, 2, wn[k]);
        o->gin[k] = gb(g, OP_INPUT, GB_NOIN, n, 2, (GAttr){.input = {IN_IMAGE}}, in[k]);
        uint32_t gr = gb(g, OP_SCALE, GB_IN(o->gin[k]), n, 2, (GAttr){.f = 1.0f}, gn[k]);
        g->nodes[gr].param = o->w[k];
        uint32_t ins[5] = {o->w[k], gr};
        for (int s = 0; s < o->nstate; s++) {
            ins[2 + s] = o->st[k][s] = gb(g, OP_STATE, GB_NOIN, n, 2, (GAttr){.ostate = {s}}, sn[k][s]);
            g->nodes[ins[2 + s]].param = o->w[k];
        }
        ins[2 + o->nstate] = o->sc;
        uint32_t u = gb(g, op, ins, 3 + o->nstate, n, 2, at, un[k]);
        g->nodes[u].inplace = o->w[k];
    }
}

/* Node i's floats in the kernel arenas. */
static float *at_node(const KExec *x, uint32_t i) { return x->arena[x->mem.buf[i].arena] + x->mem.buf[i].offset; }

/* Every group's kernel, in schedule order, over its grid in two chunks (as two threads). */
static void run_step(KExec *x)
{
    for (int gi = 0; gi < x->sched.n; gi++)
        for (int k = 0; k < x->mod.nkernels; k++) {
            const CgKernel *kn = &x->mod.kernels[k];
            if (kn->group != gi) continue;
            float *bufs[32];
            assert_true(kn->nargs <= 32);
            for (int a = 0; a < kn->nargs; a++) bufs[a] = x->arena[kn->args[a].arena] + kn->args[a].offset;
            x->fn[k](bufs, 0, kn->grid / 2);
            x->fn[k](bufs, kn->grid / 2, kn->grid);
        }
}

/* Gather parameter-major values of node pair (a, b) into out[N]. */
static void gather(const KExec *x, const uint32_t ab[2], double *out)
{
    const float *a = at_node(x, ab[0]), *b = at_node(x, ab[1]);
    for (int64_t i = 0; i < fx.sizes[0]; i++) out[i] = a[i];
    for (int64_t i = 0; i < fx.sizes[1]; i++) out[fx.sizes[0] + i] = b[i];
}

static void scatter(const KExec *x, const uint32_t ab[2], const double *in)
{
    float *a = at_node(x, ab[0]), *b = at_node(x, ab[1]);
    for (int64_t i = 0; i < fx.sizes[0]; i++) a[i] = (float)in[i];
    for (int64_t i = 0; i < fx.sizes[1]; i++) b[i] = (float)in[fx.sizes[0] + i];
}

static double max_abs_diff(const double *a, const double *b, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs(a[i] - b[i]));
    return isnan(d) ? INFINITY : d;
}

static double max_abs(const double *a, int n)
{
    double d = 0;
    for (int i = 0; i < n; i++) d = fmax(d, fabs(a[i]));
    return d;
}

static void test_cases(const char *family)
{
    int ncase = 0;
    for (int ci = 0; ci < fx.ncases; ci++) {
        const OptCase *c = &fx.c[ci];
        if (strncmp(c->op, family, strlen(family)) != 0) continue;
        GOp op = op_of(c->op);
        DlPool *pool = dl_pool_new();
        OptGraph o;
        build(&o, pool, op, c);
        DlDiag diag;
        dl_diag_init(&diag, NULL, stderr);
        assert_int_equal(graph_verify(o.g, c->name, &diag), 0);
        KExec x;
        assert_int_equal(kx_build(&x, o.g, pool), 0);
        int N = fx.N, bad = 0;
        uint32_t st0[2] = {o.st[0][0], o.st[1][0]}, st1[2] = {o.st[0][1], o.st[1][1]};
        scatter(&x, o.w, c->w0);
        scatter(&x, st0, c->m0);
        if (o.nstate == 2) scatter(&x, st1, c->v0);
        double *w = dl_xcalloc((size_t)N, sizeof *w), *m = dl_xcalloc((size_t)N, sizeof *m);
        double *v = dl_xcalloc((size_t)N, sizeof *v), *dw = dl_xcalloc((size_t)N, sizeof *dw);
        double worst[3] = {0, 0, 0};
        for (int s = 0; s < c->steps; s++) {
            scatter(&x, o.gin, c->grad + (size_t)s * N);
            float *sc = at_node(&x, o.sc);
            sc[0] = (float)c->lr[s], sc[1] = (float)c->mom[s], sc[2] = (float)(c->t0 + s), sc[3] = 0;
            run_step(&x);
            gather(&x, o.w, w);
            gather(&x, st0, m);
            const double *W = c->w + (size_t)s * N, *M = c->m + (size_t)s * N, *V = c->v + (size_t)s * N;
            for (int i = 0; i < N; i++) dw[i] = W[i] - c->w0[i];
            double e[3] = {max_abs_diff(w, W, N) / max_abs(dw, N), max_abs_diff(m, M, N) / max_abs(M, N), 0};
            if (o.nstate == 2) {
                gather(&x, st1, v);
                e[2] = max_abs_diff(v, V, N) / max_abs(V, N);
            }
            for (int k = 0; k < 3; k++) worst[k] = fmax(worst[k], e[k]);
            if (!(e[0] <= TOL_W) || !(e[1] <= TOL_STATE) || !(e[2] <= TOL_STATE)) {
                if (bad++ < 3)
                    printf("    %s step %d (t = %g): w err %.2e, %s err %.2e, v err %.2e  FAIL\n", c->name, s,
                           c->t0 + s + 1, e[0], o.nstate == 2 ? "m" : "momentum", e[1], e[2]);
            }
        }
        printf("  %-26s %-12s %d steps from t = %-4g worst: w %.2e (of the update), %s %.2e%s",
               c->name, c->op, c->steps, c->t0 + 1, worst[0], o.nstate == 2 ? "m" : "momentum", worst[1],
               o.nstate == 2 ? "" : "\n");
        if (o.nstate == 2) printf(", v %.2e\n", worst[2]);
        free(w), free(m), free(v), free(dw);
        kx_free(&x);
        dl_pool_free(pool);
        assert_int_equal(bad, 0);
        ncase++;
    }
    assert_true(ncase >= 2); /* with and without weight decay at least */
}

static void test_sgd_and_nesterov_match_numpy(void **state) { (void)state; test_cases("sgd"); }
static void test_adam_and_adamw_match_numpy(void **state) { (void)state; test_cases("adam"); }

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sgd_and_nesterov_match_numpy),
        cmocka_unit_test(test_adam_and_adamw_match_numpy),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
