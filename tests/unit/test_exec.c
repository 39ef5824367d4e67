/* test_exec.c - the executor on hand-built plans (runtime/exec.h).
 *
 * A plan with one generated-style C kernel (written here against the kernel
 * ABI of codegen/codegen.h), the three convolution steps and a matmul step,
 * checked against naive loops: convolutions with random data at strides 1
 * and 2, pad 0 and 1.  Also: the JIT cache is hit on the second load,
 * parameter initialisation is deterministic and in bounds, and DLDL_DEBUG=2
 * scanning names the step that produced a NaN.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/util.h"
#include "../ref/naive_conv.h"
#include "codegen/kir.h"
#include "runtime/exec.h"

/* The kernel IR of y = 2 x + z over [0, n), encoded into out (what a plan carries). */
static size_t axpy_kir(int64_t n, uint8_t *out, size_t cap)
{
    KirKernel k;
    kir_init(&k, "k_axpy", n);
    int x = kir_buf(&k, "x", n, 0), z = kir_buf(&k, "z", n, 0), y = kir_buf(&k, "y", n, 1);
    int g = kir_gid(&k);
    int v = kir_bin(&k, KX_ADD, kir_bin(&k, KX_MUL, kir_f32(&k, 2.0f), kir_load(&k, x, g)), kir_load(&k, z, g));
    kir_store(&k, k.body, y, g, v, 0);
    assert_int_equal(kir_verify(&k), 0);
    DlBuf b = {0};
    kir_encode(&k, &b);
    kir_free(&k);
    size_t len = b.n;
    assert_true(len <= cap);
    memcpy(out, b.s, len);
    dl_buf_free(&b);
    return len;
}

/* A plan under construction: every tensor in the activation arena. */
typedef struct TPlan {
    DlPlan p;
    DlPlanStep steps[16];
    DlPlanTensor tensors[32];
    DlPlanKernel kernel;
    DlPlanProgram prog;
    uint8_t kir[4096];
} TPlan;

/* The plan's one kernel: axpy over n elements. */
static void tplan_axpy(TPlan *t, int64_t n)
{
    t->kernel.kir = t->kir;
    t->kernel.kir_len = axpy_kir(n, t->kir, sizeof t->kir);
}

static int add_tensor(TPlan *t, int64_t n, int role, int arena)
{
    int i = t->p.ntensors++;
    DlPlanTensor *x = &t->tensors[i];
    memset(x, 0, sizeof *x);
    x->role = role;
    x->arena = arena;
    x->offset = t->p.arena_size[arena];
    x->numel = n;
    x->ndim = 1;
    x->shape[0] = n;
    t->p.arena_size[arena] += (n + 15) & ~(int64_t)15;
    return i;
}

static DlPlanStep *add_step(TPlan *t, int kind, int a, int b, int y, const char *label)
{
    DlPlanStep *s = &t->steps[t->prog.nsteps++];
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->nargs = 3;
    s->args[0] = a, s->args[1] = b, s->args[2] = y;
    s->label = (char *)label;
    return s;
}

static void tplan_init(TPlan *t)
{
    memset(t, 0, sizeof *t);
    t->p.version = DL_PLAN_VERSION;
    t->p.tensors = t->tensors;
    t->p.kernels = &t->kernel;
    t->p.nkernels = 1;
    t->kernel.name = "k_axpy";
    t->kernel.nargs = 3;
    tplan_axpy(t, 64);
    t->prog.name = "train";
    t->prog.steps = t->steps;
    t->p.programs = &t->prog;
    t->p.nprograms = 1;
}

static void fill(float *x, int64_t n, unsigned *seed)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
}

static double max_err(const float *a, const float *b, int64_t n)
{
    double m = 0;
    for (int64_t i = 0; i < n; i++) m = fmax(m, fabs((double)a[i] - (double)b[i]));
    return m;
}


static char *cache_dir;

static int setup(void **state)
{
    char tmpl[] = "/tmp/dldl_test_exec_XXXXXX";
    cache_dir = dl_xstrdup(mkdtemp(tmpl));
    setenv("DLDL_CACHE", cache_dir, 1);
    return 0;
}

static int teardown(void **state)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", cache_dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", cache_dir);
    free(cmd);
    free(cache_dir);
    return 0;
}

/* Kernel + conv fwd / bwd-data / bwd-weights + matmul in one program. */
static void run_case(int stride, int pad, int first)
{
    int64_t B = 2, C = 3, H = 9, W = 7, O = 4, K = 3;
    int64_t OH = (H + 2 * pad - K) / stride + 1, OW = (W + 2 * pad - K) / stride + 1;
    int64_t g[12] = {B, C, H, W, O, K, K, stride, pad, OH, OW, 0};
    int64_t M = 5, N = 6, KK = 7, NK = 40000;
    TPlan t;
    tplan_init(&t);
    tplan_axpy(&t, NK);
    int x = add_tensor(&t, B * C * H * W, DL_ROLE_TEMP, DL_AR_ACT);
    int w = add_tensor(&t, O * C * K * K, DL_ROLE_TEMP, DL_AR_ACT);
    int y = add_tensor(&t, B * O * OH * OW, DL_ROLE_TEMP, DL_AR_ACT);
    int dy = add_tensor(&t, B * O * OH * OW, DL_ROLE_TEMP, DL_AR_ACT);
    int dx = add_tensor(&t, B * C * H * W, DL_ROLE_TEMP, DL_AR_ACT);
    int dw = add_tensor(&t, O * C * K * K, DL_ROLE_TEMP, DL_AR_ACT);
    int ma = add_tensor(&t, KK * M, DL_ROLE_TEMP, DL_AR_ACT); /* stored transposed: [K,M] */
    int mb = add_tensor(&t, KK * N, DL_ROLE_TEMP, DL_AR_ACT);
    int my = add_tensor(&t, M * N, DL_ROLE_TEMP, DL_AR_ACT);
    int ka = add_tensor(&t, NK, DL_ROLE_TEMP, DL_AR_ACT), kb = add_tensor(&t, NK, DL_ROLE_TEMP, DL_AR_ACT);
    int ky = add_tensor(&t, NK, DL_ROLE_TEMP, DL_AR_ACT);
    DlPlanStep *s = add_step(&t, DL_STEP_KERNEL, ka, kb, ky, "axpy");
    s->kernel = 0;
    s->grid = NK;
    memcpy(add_step(&t, DL_STEP_CONV_FWD, x, w, y, "conv")->i, g, sizeof g);
    memcpy(add_step(&t, DL_STEP_CONV_BWD_DATA, dy, w, dx, "conv.bwd_data")->i, g, sizeof g);
    memcpy(add_step(&t, DL_STEP_CONV_BWD_FILTER, x, dy, dw, "conv.bwd_filter")->i, g, sizeof g);
    int64_t mi[5] = {M, N, KK, 1, 0};
    memcpy(add_step(&t, DL_STEP_MATMUL, ma, mb, my, "matmul")->i, mi, sizeof mi);

    char *err = NULL;
    DlExecOpts o = {.nthreads = 2, .profile = 1, .layout = dl_conv_default_layout()};
    DlExec *e = dl_exec_load(&t.p, &o, &err);
    if (!e) fail_msg("load: %s", err);
    assert_int_equal(dl_exec_jit(e)->cache_hit, !first);
    unsigned seed = 17u + (unsigned)(stride * 2 + pad);
    fill(dl_exec_tensor(e, x), t.tensors[x].numel, &seed);
    fill(dl_exec_tensor(e, w), t.tensors[w].numel, &seed);
    fill(dl_exec_tensor(e, dy), t.tensors[dy].numel, &seed);
    fill(dl_exec_tensor(e, ma), t.tensors[ma].numel, &seed);
    fill(dl_exec_tensor(e, mb), t.tensors[mb].numel, &seed);
    fill(dl_exec_tensor(e, ka), NK, &seed);
    fill(dl_exec_tensor(e, kb), NK, &seed);
    for (int rep = 0; rep < 2; rep++) /* outputs are overwritten, not accumulated */
        if (dl_exec_run(e, 0, &err) != 0) fail_msg("run: %s", err);

    float *ry = dl_xmalloc(sizeof(float) * (size_t)t.tensors[y].numel);
    float *rdx = dl_xmalloc(sizeof(float) * (size_t)t.tensors[dx].numel);
    float *rdw = dl_xmalloc(sizeof(float) * (size_t)t.tensors[dw].numel);
    ref_conv(g, dl_exec_tensor(e, x), dl_exec_tensor(e, w), dl_exec_tensor(e, dy), ry, rdx, rdw);
    double ey = max_err(ry, dl_exec_tensor(e, y), t.tensors[y].numel);
    double edx = max_err(rdx, dl_exec_tensor(e, dx), t.tensors[dx].numel);
    double edw = max_err(rdw, dl_exec_tensor(e, dw), t.tensors[dw].numel);
    float *a = dl_exec_tensor(e, ma), *b = dl_exec_tensor(e, mb), *py = dl_exec_tensor(e, my);
    double em = 0, ek = 0;
    for (int64_t i = 0; i < M; i++)
        for (int64_t j = 0; j < N; j++) {
            double acc = 0;
            for (int64_t k = 0; k < KK; k++) acc += (double)a[k * M + i] * b[k * N + j];
            em = fmax(em, fabs(acc - py[i * N + j]));
        }
    float *pa = dl_exec_tensor(e, ka), *pb = dl_exec_tensor(e, kb), *pk = dl_exec_tensor(e, ky);
    for (int64_t i = 0; i < NK; i++) ek = fmax(ek, fabs(2.0 * pa[i] + pb[i] - pk[i]));
    printf("stride %d pad %d: max abs error conv fwd %.2e bwd-data %.2e bwd-weights %.2e matmul %.2e kernel %.2e\n",
           stride, pad, ey, edx, edw, em, ek);
    assert_true(ey < 1e-4 && edx < 1e-4 && edw < 1e-4 && em < 1e-5 && ek < 1e-6);
    free(ry), free(rdx), free(rdw);
    dl_exec_free(e);
}

static void test_steps_against_loops(void **state)
{
    int first = 1;
    for (int stride = 1; stride <= 2; stride++)
        for (int pad = 0; pad <= 1; pad++) {
            run_case(stride, pad, first);
            first = 0; /* same kernel source: the JIT cache is hit from now on */
        }
}

static void test_init_params(void **state)
{
    TPlan t;
    tplan_init(&t);
    int w = add_tensor(&t, 1000, DL_ROLE_PARAM, DL_AR_PARAM);
    t.tensors[w].name = "c1.y.weight";
    t.tensors[w].init = 2;
    t.tensors[w].fan_in = 27;
    int one = add_tensor(&t, 8, DL_ROLE_PARAM, DL_AR_PARAM);
    t.tensors[one].name = "c1.z.weight";
    t.tensors[one].init = 1;
    int st = add_tensor(&t, 16, DL_ROLE_STATE, DL_AR_STATE);
    t.tensors[st].name = "c1.z.running";
    t.tensors[st].ndim = 2, t.tensors[st].shape[0] = 2, t.tensors[st].shape[1] = 8;
    float cdata[3] = {1, 2, 3};
    int cs = add_tensor(&t, 3, DL_ROLE_CONST, DL_AR_CONST);
    t.tensors[cs].data = cdata;
    t.prog.nsteps = 0;
    char *err = NULL;
    DlExecOpts o = {.nthreads = 1};
    DlExec *e = dl_exec_load(&t.p, &o, &err);
    if (!e) fail_msg("load: %s", err);
    dl_exec_init_params(e, 7);
    float *v = dl_exec_tensor(e, w), first = v[0], bound = 1.0f / sqrtf(27.0f);
    double mean = 0;
    for (int i = 0; i < 1000; i++) {
        assert_true(fabsf(v[i]) <= bound);
        mean += v[i] / 1000.0;
    }
    assert_true(fabs(mean) < 0.1 * bound);
    assert_true(dl_exec_tensor(e, one)[5] == 1.0f);
    assert_true(dl_exec_tensor(e, st)[3] == 0.0f && dl_exec_tensor(e, st)[11] == 1.0f);
    assert_true(dl_exec_tensor(e, cs)[2] == 3.0f);
    dl_exec_init_params(e, 7);
    assert_true(v[0] == first);
    dl_exec_init_params(e, 8);
    assert_true(v[0] != first);
    dl_exec_free(e);
}

static void test_nan_located(void **state)
{
    TPlan t;
    tplan_init(&t);
    int a = add_tensor(&t, 64, DL_ROLE_TEMP, DL_AR_ACT), b = add_tensor(&t, 64, DL_ROLE_TEMP, DL_AR_ACT);
    int y = add_tensor(&t, 64, DL_ROLE_TEMP, DL_AR_ACT);
    t.tensors[y].name = "grad.c3.y";
    DlPlanStep *s = add_step(&t, DL_STEP_KERNEL, a, b, y, "c3.bn");
    s->grid = 64;
    char *err = NULL;
    DlExecOpts o = {.nthreads = 2, .debug = 2};
    DlExec *e = dl_exec_load(&t.p, &o, &err);
    if (!e) fail_msg("load: %s", err);
    assert_int_equal(dl_exec_run(e, 0, &err), 0);
    dl_exec_tensor(e, a)[10] = 3e38f; /* 2 * 3e38 overflows: the kernel makes the inf */
    assert_int_equal(dl_exec_run(e, 0, &err), -1);
    printf("%s\n", err);
    assert_non_null(strstr(err, "step 0 'c3.bn' (kernel k_axpy) wrote a non-finite value to its argument 2 (tensor 'grad.c3.y')"));
    free(err);
    dl_exec_tensor(e, a)[10] = NAN; /* a bad input is told apart */
    assert_int_equal(dl_exec_run(e, 0, &err), -1);
    printf("%s\n", err);
    assert_non_null(strstr(err, "was given a non-finite value in its argument 0"));
    free(err);
    dl_exec_free(e);
}

/* Collective steps without a communicator (one process, docs/parallel.md):
 * a sum over one rank, so START of two tensors copies x into y, START in
 * place over a region and WAIT leave everything as it is. */
static void test_allreduce_one_process(void **state)
{
    TPlan t;
    tplan_init(&t);
    int x = add_tensor(&t, 40, DL_ROLE_TEMP, DL_AR_ACT), y = add_tensor(&t, 40, DL_ROLE_TEMP, DL_AR_ACT);
    int g = add_tensor(&t, 40, DL_ROLE_GRAD, DL_AR_GRAD);
    DlPlanStep *s = add_step(&t, DL_STEP_ALLREDUCE_START, x, y, -1, "c1.sums");
    s->nargs = 2;
    s = add_step(&t, DL_STEP_ALLREDUCE_WAIT, -1, -1, -1, "c1.sums.wait");
    s->nargs = 0;
    s = add_step(&t, DL_STEP_ALLREDUCE_START, -1, -1, -1, "grad.bucket1");
    s->nargs = 0, s->i[0] = DL_AR_GRAD, s->i[1] = 0, s->i[2] = 40, s->i[3] = 1;
    s = add_step(&t, DL_STEP_ALLREDUCE_WAIT, -1, -1, -1, "grad.wait1");
    s->nargs = 0, s->i[3] = 1;
    char *err = NULL;
    DlExecOpts o = {.nthreads = 2};
    DlExec *e = dl_exec_load(&t.p, &o, &err);
    if (!e) fail_msg("load: %s", err);
    unsigned seed = 3;
    fill(dl_exec_tensor(e, x), 40, &seed);
    fill(dl_exec_tensor(e, g), 40, &seed);
    float gb[40];
    memcpy(gb, dl_exec_tensor(e, g), sizeof gb);
    assert_int_equal(dl_exec_run(e, 0, &err), 0);
    assert_memory_equal(dl_exec_tensor(e, y), dl_exec_tensor(e, x), 40 * sizeof(float));
    assert_memory_equal(dl_exec_tensor(e, g), gb, sizeof gb);
    dl_exec_free(e);
}

static void test_bad_geometry(void **state)
{
    TPlan t;
    tplan_init(&t);
    int x = add_tensor(&t, 10, DL_ROLE_TEMP, DL_AR_ACT), w = add_tensor(&t, 10, DL_ROLE_TEMP, DL_AR_ACT);
    int y = add_tensor(&t, 10, DL_ROLE_TEMP, DL_AR_ACT);
    int64_t g[12] = {1, 1, 4, 4, 1, 3, 3, 1, 1, 4, 4, 0};
    memcpy(add_step(&t, DL_STEP_CONV_FWD, x, w, y, "c1.conv")->i, g, sizeof g);
    char *err = NULL;
    DlExecOpts o = {.nthreads = 1};
    assert_null(dl_exec_load(&t.p, &o, &err));
    printf("%s\n", err);
    assert_non_null(strstr(err, "'c1.conv'"));
    free(err);
}

/* A kernel step is checked against the kernel's proof before anything runs:
 * tensors smaller than the buffers the proof assumed, or a grid wider than the
 * kernel's, are refused with the step named. */
static void test_kernel_step_refused(void **state)
{
    for (int c = 0; c < 2; c++) {
        TPlan t;
        tplan_init(&t); /* axpy proven for 64 elements */
        int64_t n = c == 0 ? 32 : 64;
        int a = add_tensor(&t, n, DL_ROLE_TEMP, DL_AR_ACT), b = add_tensor(&t, n, DL_ROLE_TEMP, DL_AR_ACT);
        int y = add_tensor(&t, n, DL_ROLE_TEMP, DL_AR_ACT);
        DlPlanStep *s = add_step(&t, DL_STEP_KERNEL, a, b, y, "c3.bn");
        s->grid = c == 0 ? 32 : 128;
        char *err = NULL;
        DlExecOpts o = {.nthreads = 1};
        assert_null(dl_exec_load(&t.p, &o, &err));
        printf("%s\n", err);
        assert_non_null(strstr(err, "step 0 (c3.bn)"));
        assert_non_null(strstr(err, c == 0 ? "has 32 elements, kernel 'k_axpy' buffer 0 needs 64"
                                           : "grid 128 exceeds kernel 'k_axpy''s 64"));
        free(err);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_steps_against_loops),
        cmocka_unit_test(test_init_params),
        cmocka_unit_test(test_nan_located),
        cmocka_unit_test(test_bad_geometry),
        cmocka_unit_test(test_allreduce_one_process),
        cmocka_unit_test(test_kernel_step_refused),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
