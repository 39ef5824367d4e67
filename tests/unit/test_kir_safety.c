/* test_kir_safety.c - a plan's kernels are data the runtime checks, never code
 * it runs (codegen/kir.h kir_decode, kir_prove; codegen/kir_plan.h).
 *
 * Hand-built kernels the prover must refuse (an index one past the end, a
 * divisor that may be 0, an i64 overflow, an index that cannot be bounded) and
 * accept (the decompositions codegen emits); encodings the decoder must refuse
 * (truncation, forward operands, bad names and labels, wrong types, a block
 * used twice, deep nesting); GPU schedules (tid bounded by the block, shared
 * indices proven, a barrier under a branch refused, GPU pieces in a flat
 * kernel refused, the launch shape); and a real plan of specs/ldl_maxent.dldl tampered
 * the way an attacker would, then re-sealed with a valid checksum: an injected
 * C comment breakout, an out-of-bounds store, a kernel name carrying code.
 * Each is refused by dl_exec_load before anything runs, and the command the
 * injection tried to run never runs.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "codegen/kir.h"
#include "codegen/kir_plan.h"
#include "common/plan.h"
#include "common/util.h"
#include "compiler/compile.h"
#include "runtime/exec.h"

#include "../ref/kir_interp.c"

/* ---- the prover on hand-built kernels ------------------------------------- */

/* y[idx(gid)] = x[gid] over grid n, with idx built by f. */
typedef int (*IdxFn)(KirKernel *k, int gid);

static int prove_store(int64_t n, int64_t numel, IdxFn f, char **why)
{
    KirKernel k;
    kir_init(&k, "k", n);
    int x = kir_buf(&k, "x", n, 0), y = kir_buf(&k, "y", numel, 1);
    int g = kir_gid(&k);
    kir_store(&k, k.body, y, f(&k, g), kir_load(&k, x, g), 0);
    assert_int_equal(kir_verify(&k), 0);
    int rc = kir_prove(&k, why);
    kir_free(&k);
    return rc;
}

static int idx_plus1(KirKernel *k, int g) { return kir_bin(k, KX_ADD, g, kir_i64(k, 1)); }
static int idx_div_gid(KirKernel *k, int g) { return kir_bin(k, KX_DIV, kir_i64(k, 7), g); }
static int idx_overflow(KirKernel *k, int g)
{
    int big = kir_bin(k, KX_MUL, g, kir_i64(k, INT64_C(1) << 62));
    return kir_bin(k, KX_MOD, big, kir_i64(k, 8));
}
/* (gid / 8) * 8 + gid % 8: the decomposition codegen emits, in bounds */
static int idx_decompose(KirKernel *k, int g)
{
    int q = kir_bin(k, KX_DIV, g, kir_i64(k, 8)), r = kir_bin(k, KX_MOD, g, kir_i64(k, 8));
    return kir_madd(k, q, kir_i64(k, 8), r);
}
static int idx_mod_min(KirKernel *k, int g) { return kir_bin(k, KX_MOD, g, kir_i64(k, INT64_MIN)); }
static int idx_float(KirKernel *k, int g)
{
    return kir_un(k, KX_TOI64, kir_bin(k, KX_MUL, kir_f32(k, 0.5f), kir_un(k, KX_TOF32, g)));
}

/* rc is -1 and *why (set by the call that gave rc) contains want. */
static void expect_refused(int rc, char **why, const char *want)
{
    assert_int_equal(rc, -1);
    assert_non_null(*why);
    if (!strstr(*why, want)) fail_msg("'%s' does not contain '%s'", *why, want);
    free(*why);
    *why = NULL;
}

static void test_prove(void **state)
{
    char *why = NULL;
    assert_int_equal(prove_store(64, 64, idx_decompose, &why), 0);
    assert_null(why);
    expect_refused(prove_store(64, 64, idx_plus1, &why), &why, "ranges over [1, 64], outside [0, 64)");
    expect_refused(prove_store(64, 64, idx_div_gid, &why), &why, "division by a value that may be 0");
    expect_refused(prove_store(64, 64, idx_overflow, &why), &why, "multiplication that may overflow");
    expect_refused(prove_store(64, 64, idx_float, &why), &why, "a float converted to i64");
    expect_refused(prove_store(64, 64, idx_mod_min, &why), &why, "modulo that may overflow");
    /* a loop whose bounds make the index leave the buffer */
    KirKernel k;
    kir_init(&k, "k", 4);
    int y = kir_buf(&k, "y", 16, 1);
    int i = kir_var(&k, "i", KT_I64, 0), body = kir_block(&k);
    kir_store(&k, body, y, kir_madd(&k, kir_gid(&k), kir_i64(&k, 4), kir_ref(&k, i)), kir_f32(&k, 1), 0);
    kir_loop(&k, k.body, i, kir_i64(&k, 0), kir_i64(&k, 5), body);
    assert_int_equal(kir_verify(&k), 0);
    expect_refused(kir_prove(&k, &why), &why, "ranges over [0, 16], outside [0, 16)");
    kir_free(&k);
}

/* ---- the decoder on damaged encodings ------------------------------------- */

/* A small valid kernel (a loop, locals, loads and stores), encoded. */
static DlBuf good_kernel(void)
{
    KirKernel k;
    kir_init(&k, "k", 8);
    int x = kir_buf(&k, "%1 x [8,4]", 32, 0), y = kir_buf(&k, "%2 y [8]", 8, 1);
    int i = kir_var(&k, "i", KT_I64, 0), body = kir_block(&k);
    int acc = kir_decl_var(&k, k.body, "acc", KT_F32, kir_f32(&k, 0));
    kir_assign(&k, body, acc, kir_load(&k, x, kir_madd(&k, kir_gid(&k), kir_i64(&k, 4), kir_ref(&k, i))), 1);
    kir_loop(&k, k.body, i, kir_i64(&k, 0), kir_i64(&k, 4), body);
    kir_store(&k, k.body, y, kir_gid(&k), kir_ref(&k, acc), 0);
    assert_int_equal(kir_verify(&k), 0);
    DlBuf b = {0};
    kir_encode(&k, &b);
    kir_free(&k);
    return b;
}

static int decode(const DlBuf *b, char **why)
{
    KirKernel k;
    int rc = kir_decode((const uint8_t *)b->s, b->n, "k", &k, why);
    if (rc == 0) rc = kir_prove(&k, why);
    kir_free(&k);
    return rc;
}

/* Replace the first occurrence of `from` (same length as `to`) in b. */
static void patch(DlBuf *b, const char *from, const char *to)
{
    size_t n = strlen(from);
    assert_int_equal(n, strlen(to));
    for (size_t i = 0; i + n <= b->n; i++)
        if (memcmp(b->s + i, from, n) == 0) {
            memcpy(b->s + i, to, n);
            return;
        }
    fail_msg("'%s' not in the encoding", from);
}

static void test_decode(void **state)
{
    char *why = NULL;
    DlBuf b = good_kernel();
    assert_int_equal(decode(&b, &why), 0);
    /* every truncation is refused, none crashes */
    for (size_t n = 0; n < b.n; n++) {
        DlBuf t = {b.s, n, n};
        assert_int_equal(decode(&t, &why), -1);
        free(why), why = NULL;
    }
    DlBuf c;
    /* a label that closes the comment it is rendered in */
    c = (DlBuf){dl_xstrndup(b.s, b.n), b.n, b.n};
    patch(&c, "%1 x [8,4]", "*/ x [8,4]");
    expect_refused(decode(&c, &why), &why, "label with characters a comment cannot hold");
    free(c.s);
    /* variable names that are not letters then digits, or shadow a buffer */
    c = (DlBuf){dl_xstrndup(b.s, b.n), b.n, b.n};
    patch(&c, "acc0", "a;b0");
    expect_refused(decode(&c, &why), &why, "is not letters then digits");
    free(c.s);
    c = (DlBuf){dl_xstrndup(b.s, b.n), b.n, b.n};
    patch(&c, "acc0", "buf0");
    expect_refused(decode(&c, &why), &why, "is not letters then digits");
    free(c.s);
    dl_buf_free(&b);

    /* expressions: a forward operand, a type that breaks the rules */
    KirKernel k;
    kir_init(&k, "k", 4);
    int y = kir_buf(&k, "y", 4, 1);
    int g = kir_gid(&k);
    kir_store(&k, k.body, y, g, kir_f32(&k, 1), 0);
    k.ex.a[g].a = g + 1; /* gid takes no operand */
    DlBuf e = {0};
    kir_encode(&k, &e);
    expect_refused(decode(&e, &why), &why, "extra operand");
    k.ex.a[g].a = -1;
    k.ex.a[g].type = KT_F32; /* gid is i64 */
    e.n = 0;
    kir_encode(&k, &e);
    expect_refused(decode(&e, &why), &why, "breaks the rules of its operands");
    k.ex.a[g].type = KT_I64;
    /* the root block used again as a loop body */
    int i = kir_var(&k, "i", KT_I64, 0);
    kir_loop(&k, k.body, i, kir_i64(&k, 0), kir_i64(&k, 2), kir_block(&k));
    k.st.a[k.st.n - 1].body = 0;
    e.n = 0;
    kir_encode(&k, &e);
    expect_refused(decode(&e, &why), &why, "bad operands");
    dl_buf_free(&e);
    kir_free(&k);

    /* loops nested deeper than KIR_MAX_NEST */
    kir_init(&k, "k", 1);
    int blk = k.body;
    for (int d = 0; d < KIR_MAX_NEST + 2; d++) {
        int v = kir_var(&k, "i", KT_I64, 0), inner = kir_block(&k);
        kir_loop(&k, blk, v, kir_i64(&k, 0), kir_i64(&k, 1), inner);
        blk = inner;
    }
    e = (DlBuf){0};
    kir_encode(&k, &e);
    expect_refused(decode(&e, &why), &why, "nested deeper than");
    dl_buf_free(&e);
    kir_free(&k);
}

/* ---- a real plan, tampered and re-sealed ---------------------------------- */

static char *dir, *plan_path;

static int setup(void **state)
{
    char tmpl[] = "/tmp/dldl_test_kir_XXXXXX";
    dir = dl_xstrdup(mkdtemp(tmpl));
    char *cache = dl_xasprintf("%s/cache", dir);
    setenv("DLDL_CACHE", cache, 1);
    free(cache);
    plan_path = dl_xasprintf("%s/ldl.plan", dir);
    CompileOptions o = {.spec = "specs/ldl_maxent.dldl", .output = plan_path};
    FILE *null = fopen("/dev/null", "w");
    int rc = compile_run(&o, null, stderr);
    fclose(null);
    return rc;
}

static int teardown(void **state)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "could not remove %s\n", dir);
    free(cmd);
    free(dir);
    free(plan_path);
    return 0;
}

/* Read the plan, let f tamper with kernel 0's decoded IR, re-encode, write
 * the plan again (a valid checksum), and return dl_exec_load's error. */
typedef void (*Tamper)(KirKernel *k);

static char *load_tampered(Tamper f)
{
    char *err = NULL;
    DlPlan *p = dl_plan_read(plan_path, &err);
    if (!p) fail_msg("%s", err);
    assert_true(p->nkernels > 0);
    KirKernel k;
    char *why = NULL;
    if (kir_decode(p->kernels[0].kir, p->kernels[0].kir_len, p->kernels[0].name, &k, &why)) fail_msg("%s", why);
    f(&k);
    DlBuf b = {0};
    kir_encode(&k, &b);
    kir_free(&k);
    free(p->kernels[0].kir);
    p->kernels[0].kir = (uint8_t *)b.s;
    p->kernels[0].kir_len = b.n;
    char *bad = dl_xasprintf("%s/tampered.plan", dir);
    if (dl_plan_write(p, bad, &err)) fail_msg("%s", err);
    dl_plan_free(p);
    p = dl_plan_read(bad, &err); /* the checksum holds: only the kernel check stands in the way */
    if (!p) fail_msg("%s", err);
    DlExecOpts o = {.nthreads = 1};
    DlExec *e = dl_exec_load(p, &o, &err);
    assert_null(e);
    assert_non_null(err);
    printf("%s\n", err);
    dl_plan_free(p);
    free(bad);
    return err;
}

static char *marker;

static void inject_label(KirKernel *k)
{
    free(k->bufs[0].label);
    k->bufs[0].label = dl_xasprintf("*/ __attribute__((constructor)) static void pwn(void) "
                                    "{ system(\"touch %s\"); } /*", marker);
}

static void store_out_of_bounds(KirKernel *k)
{
    /* the first store's index + the buffer's size: one buffer further on */
    for (size_t i = 0; i < k->st.n; i++) {
        KirStmt *s = &k->st.a[i];
        if (s->op != KS_STORE) continue;
        KirExpr off = {.op = KX_CONST, .type = KT_I64, .a = -1, .b = -1, .c = -1, .buf = -1, .var = -1,
                       .i = k->bufs[s->buf].numel};
        DL_PUSH(k->ex, off);
        KirExpr add = {.op = KX_ADD, .type = KT_I64, .a = s->idx, .b = (int32_t)k->ex.n - 1, .c = -1, .buf = -1,
                       .var = -1};
        DL_PUSH(k->ex, add);
        s->idx = (int32_t)k->ex.n - 1;
        return;
    }
    fail_msg("no store in kernel 0");
}

/* ---- GPU schedules --------------------------------------------------------- */

/* A block sum of x[gid, 0..31] into y[gid]: 32 threads, a shared array, a
 * barrier; off shifts the shared index read (0: in range). */
static void gpu_kernel(KirKernel *k, int64_t off)
{
    kir_init(k, "g", 4);
    k->block = 32;
    int x = kir_buf(k, "x", 4 * 32, 0), y = kir_buf(k, "y", 4, 1);
    int gid = kir_gid(k), tid = kir_tid(k);
    int s = kir_decl_shared(k, "s", KT_F32, 32);
    kir_storel(k, k->body, s, tid, kir_load(k, x, kir_madd(k, gid, kir_i64(k, 32), tid)), 0);
    kir_barrier(k);
    int t0 = kir_if(k, k->body, kir_bin(k, KX_EQ, tid, kir_i64(k, 0)));
    int acc = kir_decl_var(k, t0, "acc", KT_F32, kir_f32(k, 0));
    int i = kir_var(k, "i", KT_I64, 0), body = kir_block(k);
    kir_assign(k, body, acc, kir_loadl(k, s, kir_bin(k, KX_ADD, kir_ref(k, i), kir_i64(k, off))), 1);
    kir_loop(k, t0, i, kir_i64(k, 0), kir_i64(k, 32), body);
    kir_store(k, t0, y, gid, kir_ref(k, acc), 0);
}

static int encode_decode(const KirKernel *k, char **why)
{
    DlBuf b = {0};
    kir_encode(k, &b);
    int rc = decode(&b, why);
    dl_buf_free(&b);
    return rc;
}

/* The GPU pieces are checked like the rest: tid bounded by the block, shared
 * indices proven, barriers only where every thread arrives, no GPU piece in a
 * flat kernel; and the launch shape follows the schedule. */
static void test_gpu_schedule(void **state)
{
    (void)state;
    char *why = NULL;
    KirKernel k;
    gpu_kernel(&k, 0);
    assert_int_equal(kir_verify(&k), 0);
    assert_int_equal(kir_prove(&k, &why), 0);
    assert_int_equal(encode_decode(&k, &why), 0);
    /* the launch: one block of 32 threads per work item, through the flat kernel's gpu */
    KirKernel flat;
    kir_init(&flat, "g", 4);
    flat.gpu = &k;
    KirLaunch l;
    assert_int_equal(kir_cuda_launch(&flat, 3, &l, &why), 0);
    assert_int_equal(l.blocks, 3), assert_int_equal(l.threads, 32), assert_int_equal(l.shared_bytes, 0);
    flat.gpu = NULL;
    assert_int_equal(kir_cuda_launch(&flat, 4, &l, &why), 0);
    assert_int_equal(l.threads, KIR_CUDA_THREADS);
    kir_free(&flat);
    /* a flat kernel carrying GPU pieces, too many threads */
    k.block = 0;
    expect_refused(encode_decode(&k, &why), &why, "a shared array must be f32 or f64, in a GPU kernel");
    k.block = 2048;
    expect_refused(encode_decode(&k, &why), &why, "2048 threads per block");
    k.block = 32;
    /* a barrier under `if (tid == 0)`: threads 1..31 would never arrive */
    KirBlock *root = &k.blocks.a[k.body];
    int t0_body = -1;
    for (int i = 0; i < root->n; i++)
        if (k.st.a[root->s[i]].op == KS_IF) t0_body = k.st.a[root->s[i]].body;
    assert_true(t0_body > 0);
    for (int i = 0; i < root->n; i++)
        if (k.st.a[root->s[i]].op == KS_BARRIER) {
            int32_t bar = root->s[i];
            memmove(&root->s[i], &root->s[i + 1], sizeof *root->s * (size_t)(root->n - i - 1));
            root->n--;
            k.blocks.a[t0_body].s[0] = bar; /* in place of the if's first statement: acc's declaration */
            break;
        }
    expect_refused(kir_verify(&k) ? (why = dl_xstrdup(k.err), -1) : 0, &why, "a barrier outside the root block");
    kir_free(&k);
    /* a shared index one past the end */
    gpu_kernel(&k, 1);
    assert_int_equal(kir_verify(&k), 0);
    expect_refused(kir_prove(&k, &why), &why, "the index into shared array s0 ranges over [1, 32], outside [0, 32)");
    kir_free(&k);
    /* the checking interpreter runs GPU schedules thread by thread between barriers */
    for (int off = 0; off < 2; off++) {
        gpu_kernel(&k, off);
        float xs[128], ys[4];
        for (int i = 0; i < 128; i++) xs[i] = (float)i;
        float *bufs[2] = {xs, ys};
        int64_t n[2] = {128, 4}, budget = 100000;
        char msg[300];
        int rc = kir_interp(&k, 4, bufs, n, &budget, msg);
        if (off) {
            assert_int_equal(rc, -1);
            assert_non_null(strstr(msg, "local load index 32 outside array of 32"));
        } else {
            assert_int_equal(rc, 0);
            for (int g = 0; g < 4; g++) assert_true(ys[g] == (float)(32 * 32 * g + 31 * 32 / 2));
        }
        kir_free(&k);
    }
    /* the builders refuse GPU pieces in a flat kernel */
    kir_init(&k, "f", 4);
    kir_tid(&k);
    assert_non_null(strstr(k.err, "tid in a kernel without a GPU schedule"));
    kir_free(&k);
}

static void test_tampered_plan(void **state)
{
    /* the untouched plan loads */
    char *err = NULL;
    DlPlan *p = dl_plan_read(plan_path, &err);
    assert_non_null(p);
    DlExecOpts o = {.nthreads = 1};
    DlExec *e = dl_exec_load(p, &o, &err);
    if (!e) fail_msg("%s", err);
    dl_exec_free(e);
    dl_plan_free(p);

    marker = dl_xasprintf("%s/PWNED", dir);
    err = load_tampered(inject_label);
    assert_non_null(strstr(err, "plan refused: kernel '"));
    assert_non_null(strstr(err, "label with characters a comment cannot hold"));
    free(err);
    assert_int_equal(access(marker, F_OK), -1); /* the command never ran */
    free(marker);

    err = load_tampered(store_out_of_bounds);
    assert_non_null(strstr(err, "plan refused: kernel '"));
    assert_non_null(strstr(err, "outside [0, "));
    free(err);
}

/* A kernel name is a C symbol: one carrying code is refused by the plan
 * reader itself (dl_plan_write refuses to write it too). */
static void test_kernel_name(void **state)
{
    char *err = NULL;
    DlPlan *p = dl_plan_read(plan_path, &err);
    assert_non_null(p);
    free(p->kernels[0].name);
    p->kernels[0].name = dl_xstrdup("k(void){} __attribute__((constructor)) void x");
    char *bad = dl_xasprintf("%s/named.plan", dir);
    assert_int_equal(dl_plan_write(p, bad, &err), -1);
    printf("%s\n", err);
    assert_non_null(strstr(err, "is not a C identifier"));
    free(err);
    free(bad);
    dl_plan_free(p);
}

/* The checking interpreter (tests/ref/kir_interp.c) is the oracle of the
 * prover's soundness: it catches the out-of-bounds store the prover refuses,
 * and every kernel of every spec, which the prover accepted, runs under it on
 * buffers of exactly the proven sizes without one failed check (the first
 * 300000 statements of each kernel, on random data). */
static void test_interpreter_oracle(void **state)
{
    KirKernel k;
    kir_init(&k, "k", 64);
    int x = kir_buf(&k, "x", 64, 0), y = kir_buf(&k, "y", 64, 1);
    int g = kir_gid(&k);
    kir_store(&k, k.body, y, idx_plus1(&k, g), kir_load(&k, x, g), 0);
    float xs[64] = {0}, ys[64] = {0};
    float *bufs[2] = {xs, ys};
    int64_t n[2] = {64, 64}, budget = 1000;
    char why[300];
    assert_int_equal(kir_interp(&k, 64, bufs, n, &budget, why), -1);
    assert_non_null(strstr(why, "work item 63: store index 64 outside buffer of 64"));
    kir_free(&k);

    static const char *const specs[] = {"specs/age.dldl", "specs/pose.dldl", "specs/ldl_mlp.dldl",
                                        "specs/ldl_maxent.dldl", "specs/emotion6.dldl", "specs/age_gender.dldl",
                                        "tests/ops/adam.dldl", "tests/ops/adamw.dldl", "tests/ops/sgd_nesterov.dldl"};
    unsigned seed = 7;
    int nkernels = 0, ngpu = 0;
    for (size_t si = 0; si < sizeof specs / sizeof *specs; si++) {
        char *path = dl_xasprintf("%s/spec.plan", dir);
        CompileOptions o = {.spec = specs[si], .output = path};
        FILE *null = fopen("/dev/null", "w");
        assert_int_equal(compile_run(&o, null, stderr), 0);
        fclose(null);
        char *err = NULL;
        DlPlan *p = dl_plan_read(path, &err);
        if (!p) fail_msg("%s", err);
        KirModule m;
        if (kir_module_load(p, &m, &err)) fail_msg("%s: %s", specs[si], err);
        for (int ki = 0; ki < m.n; ki++, nkernels++) {
            const KirKernel *kk = &m.k[ki];
            float *b[16];
            int64_t nb[16];
            for (int i = 0; i < kk->nbufs; i++) {
                nb[i] = kk->bufs[i].numel;
                b[i] = dl_xmalloc((size_t)nb[i] * sizeof(float));
                for (int64_t j = 0; j < nb[i]; j++) b[i][j] = (float)rand_r(&seed) / (float)RAND_MAX + 0.5f;
            }
            int64_t left = 300000;
            if (kir_interp(kk, kk->grid, b, nb, &left, why) < 0) fail_msg("%s kernel %s: %s", specs[si], kk->name, why);
            left = 600000; /* its GPU schedule too: every thread of the block (the small specs' to the end) */
            if (kk->gpu && kir_interp(kk->gpu, kk->grid, b, nb, &left, why) < 0)
                fail_msg("%s kernel %s (GPU schedule): %s", specs[si], kk->name, why);
            ngpu += kk->gpu != NULL;
            for (int i = 0; i < kk->nbufs; i++) free(b[i]);
        }
        kir_module_free(&m);
        dl_plan_free(p);
        free(path);
    }
    printf("%d kernels (and %d GPU schedules) ran under the checking interpreter\n", nkernels, ngpu);
    assert_true(nkernels > 100);
    assert_true(ngpu > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prove),
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_gpu_schedule),
        cmocka_unit_test(test_tampered_plan),
        cmocka_unit_test(test_kernel_name),
        cmocka_unit_test(test_interpreter_oracle),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
