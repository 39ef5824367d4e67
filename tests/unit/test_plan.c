/* test_plan.c - the .plan file: round trip, dump, lookups, and refusal of
 * damaged or inconsistent files (common/plan.c, docs/plan-format.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/plan.h"
#include "common/util.h"

static char tmpdir[] = "/tmp/dldl_test_plan_XXXXXX";

static char *S(const char *s) { return s ? dl_xstrdup(s) : NULL; }

static DlKV *kvs(int n, const char *const *pairs)
{
    DlKV *kv = dl_xcalloc((size_t)n, sizeof *kv);
    for (int i = 0; i < n; i++) kv[i] = (DlKV){S(pairs[2 * i]), S(pairs[2 * i + 1])};
    return kv;
}

static void tensor(DlPlanTensor *t, const char *name, int role, int arena, int64_t off, int ndim, const int64_t *shape)
{
    memset(t, 0, sizeof *t);
    t->name = S(name);
    t->role = role;
    t->arena = arena;
    t->offset = off;
    t->ndim = ndim;
    t->numel = 1;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d], t->numel *= shape[d];
}

static void step(DlPlanStep *s, int kind, int kernel, int64_t grid, const char *label, int nargs, const int *args,
                 int ni, const int64_t *iv)
{
    memset(s, 0, sizeof *s);
    s->kind = kind;
    s->kernel = kernel;
    s->grid = grid;
    s->label = S(label);
    s->nargs = nargs;
    for (int k = 0; k < nargs; k++) s->args[k] = args[k];
    for (int k = 0; k < ni; k++) s->i[k] = iv[k];
}

/* A small plan that uses every field (all malloc'd: dl_plan_free frees it).
 * bn_arg2 is one tensor index of train step 1, varied by the corruption test. */
static DlPlan *make_plan(int bn_arg2)
{
    DlPlan *p = dl_xcalloc(1, sizeof *p);
    p->version = DL_PLAN_VERSION;
    p->source_name = S("specs/test.dldl");
    static const char *const hy[] = {"lr", "0.05", "momentum", "0.9", "epochs", "2", "schedule", "onecycle", "seed", "7"};
    p->hyper = kvs(5, hy), p->nhyper = 5;
    static const char *const da[] = {"source.kind", "csv", "label.0", "pitch", "label.1", "yaw"};
    p->data = kvs(3, da), p->ndata = 3;
    p->nlabels = 2;
    p->targets = dl_xcalloc(1, sizeof *p->targets), p->ntargets = 1;
    DlPlanTarget *tg = &p->targets[0];
    tg->name = S("dist");
    tg->kind = DL_TGT_GAUSSIAN2D;
    tg->naxes = 2;
    tg->dist = -1;
    static const float pitch[] = {-90, -60, -30, -15, 0, 15, 30, 60, 90};
    DlPlanAxis *a0 = &tg->axes[0], *a1 = &tg->axes[1];
    *a0 = (DlPlanAxis){S("pitch"), S("degrees"), 9, dl_xmalloc(9 * sizeof(float)), 15.0f, 0, -1};
    memcpy(a0->bins, pitch, sizeof pitch);
    *a1 = (DlPlanAxis){S("yaw"), S(""), 13, dl_xmalloc(13 * sizeof(float)), 7.5f, 1, -1};
    for (int k = 0; k < 13; k++) a1->bins[k] = -90.0f + 15.0f * (float)k;
    p->heads = dl_xcalloc(1, sizeof *p->heads), p->nheads = 1;
    p->heads[0] = (DlPlanHead){S("posenet"), 117, 1};
    p->metrics = dl_xcalloc(2, sizeof *p->metrics), p->nmetrics = 2;
    p->metrics[0] = (DlPlanMetric){S("mae"), DL_MET_MAE, 0, 0, 2, {0, 1}, 0.0f, 0.0f, -1};
    p->metrics[1] = (DlPlanMetric){S("within15"), DL_MET_ACCURACY, 0, 0, 0, {0}, 15.0f, 0.0f, -1};
    const int64_t sizes[DL_AR_COUNT] = {200, 40, 40, 40, 8, 30, 4};
    memcpy(p->arena_size, sizes, sizeof sizes);

    p->ntensors = 12;
    p->tensors = dl_xcalloc(12, sizeof *p->tensors);
    DlPlanTensor *t = p->tensors;
    tensor(&t[0], "c1.conv.weight", DL_ROLE_PARAM, DL_AR_PARAM, 0, 4, (int64_t[]){2, 1, 3, 3});
    t[0].init = 2, t[0].fan_in = 9;
    tensor(&t[1], "c1.bn.weight", DL_ROLE_PARAM, DL_AR_PARAM, 18, 1, (int64_t[]){2});
    t[1].init = 1, t[1].fan_in = 1;
    tensor(&t[2], "c1.bn.running", DL_ROLE_STATE, DL_AR_STATE, 0, 2, (int64_t[]){2, 2});
    tensor(&t[3], "opt.c1.conv.weight", DL_ROLE_MOMENTUM, DL_AR_OPT, 0, 4, (int64_t[]){2, 1, 3, 3});
    tensor(&t[4], "opt.c1.bn.weight", DL_ROLE_MOMENTUM, DL_AR_OPT, 18, 1, (int64_t[]){2});
    tensor(&t[5], NULL, DL_ROLE_TEMP, DL_AR_ACT, 0, 4, (int64_t[]){2, 2, 3, 3});
    tensor(&t[6], "image", DL_ROLE_INPUT, DL_AR_INPUT, 0, 4, (int64_t[]){2, 1, 3, 3});
    tensor(&t[7], "scalars", DL_ROLE_SCALARS, DL_AR_INPUT, 18, 1, (int64_t[]){4});
    tensor(&t[8], "eps", DL_ROLE_CONST, DL_AR_CONST, 0, 1, (int64_t[]){3});
    t[8].data = dl_xmalloc(3 * sizeof(float));
    t[8].data[0] = 1e-5f, t[8].data[1] = 2.0f, t[8].data[2] = -3.25f;
    tensor(&t[9], "loss", DL_ROLE_TEMP, DL_AR_ACT, 40, 1, (int64_t[]){1});
    tensor(&t[10], "grad.c1.conv.weight", DL_ROLE_GRAD, DL_AR_GRAD, 0, 4, (int64_t[]){2, 1, 3, 3});
    tensor(&t[11], "posenet.probs", DL_ROLE_TEMP, DL_AR_ACT, 60, 2, (int64_t[]){1, 117});
    for (int i = 0; i < 12; i++) t[i].ref = -1;

    p->nkernels = 2;
    p->kernels = dl_xcalloc(2, sizeof *p->kernels);
    p->kernels[0] = (DlPlanKernel){.name = S("k0_bn_relu"), .nargs = 3, .kir = dl_xmalloc(16), .kir_len = 16,
                                   .kir_gpu = dl_xmalloc(5), .kir_gpu_len = 5};
    memcpy(p->kernels[0].kir, "\x01kernel IR byte", 16);
    memcpy(p->kernels[0].kir_gpu, "\x02gpu", 5); /* a GPU schedule's bytes travel beside the flat kernel's */
    p->kernels[1] = (DlPlanKernel){.name = S("k1_loss"), .nargs = 2, .kir = dl_xmalloc(6), .kir_len = 6};
    memcpy(p->kernels[1].kir, "\x01\x00more", 6); /* bytes, not a string: a 0 inside */

    p->nprograms = 2;
    p->programs = dl_xcalloc(2, sizeof *p->programs);
    DlPlanProgram *tr = &p->programs[0], *ev = &p->programs[1];
    tr->name = S("train"), tr->batch = 2, tr->nsteps = 4;
    tr->steps = dl_xcalloc(4, sizeof *tr->steps);
    step(&tr->steps[0], DL_STEP_CONV_FWD, 0, 0, "c1.conv", 3, (int[]){6, 0, 5}, 11,
         (int64_t[]){2, 1, 3, 3, 2, 3, 3, 1, 1, 3, 3});
    step(&tr->steps[1], DL_STEP_KERNEL, 0, 36, "c1.bn", 3, (int[]){5, 1, bn_arg2}, 0, NULL);
    step(&tr->steps[2], DL_STEP_MATMUL, 0, 0, "fc", 3, (int[]){5, 0, 9}, 5, (int64_t[]){2, 1, 18, 0, 1});
    step(&tr->steps[3], DL_STEP_KERNEL, 1, 1, NULL, 2, (int[]){9, 8}, 0, NULL);
    ev->name = S("eval"), ev->batch = 1, ev->nsteps = 1;
    ev->steps = dl_xcalloc(1, sizeof *ev->steps);
    step(&ev->steps[0], DL_STEP_CONV_BWD_FILTER, 0, 0, "c1.conv.bwd", 3, (int[]){6, 5, 10}, 1, (int64_t[]){-1});

    p->noutputs = 2;
    p->outputs = dl_xcalloc(2, sizeof *p->outputs);
    p->outputs[0] = (DlPlanOutput){0, DL_OUT_LOSS, S("loss"), 9, -1, -1};
    p->outputs[1] = (DlPlanOutput){1, DL_OUT_PROBS, S("probs"), 11, 0, -1};
    return p;
}

static char *path_of(const char *name) { return dl_xasprintf("%s/%s", tmpdir, name); }

static char *dump_str(const DlPlan *p)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    dl_plan_dump(p, f);
    fclose(f);
    return s;
}

static void str_eq(const char *a, const char *b)
{
    if (!a || !b) assert_ptr_equal(a, b);
    else assert_string_equal(a, b);
}

static void plans_equal(const DlPlan *a, const DlPlan *b)
{
    assert_int_equal(a->version, b->version);
    str_eq(a->source_name, b->source_name);
    assert_int_equal(a->nhyper, b->nhyper);
    for (int i = 0; i < a->nhyper; i++) str_eq(a->hyper[i].key, b->hyper[i].key), str_eq(a->hyper[i].val, b->hyper[i].val);
    assert_int_equal(a->ndata, b->ndata);
    for (int i = 0; i < a->ndata; i++) str_eq(a->data[i].key, b->data[i].key), str_eq(a->data[i].val, b->data[i].val);
    assert_int_equal(a->nlabels, b->nlabels);
    assert_int_equal(a->ntargets, b->ntargets);
    str_eq(a->targets[0].name, b->targets[0].name);
    assert_int_equal(a->targets[0].kind, b->targets[0].kind);
    assert_int_equal(a->targets[0].naxes, b->targets[0].naxes);
    assert_int_equal(a->nheads, b->nheads);
    str_eq(a->heads[0].name, b->heads[0].name);
    assert_int_equal(a->heads[0].K, b->heads[0].K);
    for (int x = 0; x < a->targets[0].naxes; x++) {
        const DlPlanAxis *u = &a->targets[0].axes[x], *v = &b->targets[0].axes[x];
        str_eq(u->name, v->name), str_eq(u->unit, v->unit);
        assert_int_equal(u->nbins, v->nbins);
        assert_memory_equal(u->bins, v->bins, (size_t)u->nbins * sizeof(float));
        assert_memory_equal(&u->sigma, &v->sigma, sizeof(float));
        assert_int_equal(u->label, v->label);
    }
    assert_int_equal(a->nmetrics, b->nmetrics);
    for (int i = 0; i < a->nmetrics; i++) {
        str_eq(a->metrics[i].name, b->metrics[i].name), assert_int_equal(a->metrics[i].kind, b->metrics[i].kind);
        assert_int_equal(a->metrics[i].ncols, b->metrics[i].ncols);
        assert_memory_equal(&a->metrics[i].tolerance, &b->metrics[i].tolerance, sizeof(float));
    }
    assert_memory_equal(a->arena_size, b->arena_size, sizeof a->arena_size);
    assert_int_equal(a->ntensors, b->ntensors);
    for (int i = 0; i < a->ntensors; i++) {
        const DlPlanTensor *u = &a->tensors[i], *v = &b->tensors[i];
        str_eq(u->name, v->name);
        assert_int_equal(u->role, v->role), assert_int_equal(u->arena, v->arena);
        assert_int_equal(u->offset, v->offset), assert_int_equal(u->numel, v->numel);
        assert_int_equal(u->ndim, v->ndim);
        assert_memory_equal(u->shape, v->shape, sizeof u->shape);
        assert_int_equal(u->init, v->init), assert_int_equal(u->fan_in, v->fan_in);
        assert_int_equal(u->data != NULL, v->data != NULL);
        if (u->data) assert_memory_equal(u->data, v->data, (size_t)u->numel * sizeof(float));
    }
    assert_int_equal(a->nkernels, b->nkernels);
    for (int i = 0; i < a->nkernels; i++) {
        str_eq(a->kernels[i].name, b->kernels[i].name), assert_int_equal(a->kernels[i].nargs, b->kernels[i].nargs);
        assert_int_equal(a->kernels[i].kir_len, b->kernels[i].kir_len);
        assert_memory_equal(a->kernels[i].kir, b->kernels[i].kir, a->kernels[i].kir_len);
        assert_int_equal(a->kernels[i].kir_gpu_len, b->kernels[i].kir_gpu_len);
        if (a->kernels[i].kir_gpu_len)
            assert_memory_equal(a->kernels[i].kir_gpu, b->kernels[i].kir_gpu, a->kernels[i].kir_gpu_len);
    }
    assert_int_equal(a->nprograms, b->nprograms);
    for (int g = 0; g < a->nprograms; g++) {
        const DlPlanProgram *u = &a->programs[g], *v = &b->programs[g];
        str_eq(u->name, v->name);
        assert_int_equal(u->batch, v->batch), assert_int_equal(u->nsteps, v->nsteps);
        for (int j = 0; j < u->nsteps; j++) {
            const DlPlanStep *s = &u->steps[j], *t = &v->steps[j];
            assert_int_equal(s->kind, t->kind), assert_int_equal(s->kernel, t->kernel);
            assert_int_equal(s->grid, t->grid), assert_int_equal(s->nargs, t->nargs);
            assert_memory_equal(s->args, t->args, (size_t)s->nargs * sizeof s->args[0]);
            assert_memory_equal(s->i, t->i, sizeof s->i);
            str_eq(s->label, t->label);
        }
    }
    assert_int_equal(a->noutputs, b->noutputs);
    for (int i = 0; i < a->noutputs; i++) {
        assert_int_equal(a->outputs[i].program, b->outputs[i].program);
        assert_int_equal(a->outputs[i].kind, b->outputs[i].kind);
        str_eq(a->outputs[i].name, b->outputs[i].name);
        assert_int_equal(a->outputs[i].tensor, b->outputs[i].tensor);
        assert_int_equal(a->outputs[i].head, b->outputs[i].head);
    }
}

/* ---- file surgery -------------------------------------------------------- */

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = dl_xmalloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void put_le(unsigned char *b, uint64_t v, int k)
{
    for (int i = 0; i < k; i++) b[i] = (unsigned char)(v >> (8 * i));
}
static uint64_t get_le(const unsigned char *b, int k)
{
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* Make the header agree with the payload again (length and checksum). */
static void reseal(unsigned char *b, size_t n)
{
    put_le(b + 16, n - 32, 8);
    put_le(b + 24, dl_hash64(b + 32, n - 32), 8);
}

/* Read path, expecting failure with exactly `want` (or containing it when !exact). */
static void expect_error(const char *path, const char *want, int exact)
{
    char *err = NULL;
    DlPlan *p = dl_plan_read(path, &err);
    assert_null(p);
    assert_non_null(err);
    if (exact) assert_string_equal(err, want);
    else if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    assert_null(strchr(err, '\n'));
    free(err);
}

/* ---- tests --------------------------------------------------------------- */

static void test_round_trip(void **state)
{
    DlPlan *p = make_plan(9);
    char *path = path_of("rt.plan"), *err = NULL;
    assert_int_equal(dl_plan_write(p, path, &err), 0);
    DlPlan *q = dl_plan_read(path, &err);
    if (!q) fail_msg("%s", err);
    plans_equal(p, q);
    char *d1 = dump_str(p), *d2 = dump_str(q);
    assert_string_equal(d1, d2);
    /* a few lines the goldens rely on */
    assert_non_null(strstr(d1, "  axis 1 yaw (): label 1, sigma 7.5, 13 bins -90..90 step 15\n"));
    assert_non_null(strstr(d1, "  axis 0 pitch (degrees): label 0, sigma 15, 9 bins [-90 -60 -30 -15 0 15 30 60 90]\n"));
    assert_non_null(strstr(d1, "  %0 c1.conv.weight param param+0 [2,1,3,3] init kaiming_uniform fan_in 9\n"));
    assert_non_null(strstr(d1, "  %5 - temp act+0 [2,2,3,3]\n"));
    assert_non_null(strstr(d1, "    1 kernel k0_bn_relu grid 36 (%5 %1 %9)  ; c1.bn\n"));
    assert_non_null(strstr(d1, "    0 conv_fwd (%6 %0 %5) i=[2,1,3,3,2,3,3,1,1,3,3]  ; c1.conv\n"));
    assert_null(strstr(d1, "__global__")); /* no kernel sources */
    /* writing the read plan gives the same bytes */
    char *path2 = path_of("rt2.plan");
    assert_int_equal(dl_plan_write(q, path2, &err), 0);
    size_t n1, n2;
    unsigned char *b1 = slurp(path, &n1), *b2 = slurp(path2, &n2);
    assert_int_equal(n1, n2);
    assert_memory_equal(b1, b2, n1);
    free(b1), free(b2), free(d1), free(d2), free(path), free(path2);
    dl_plan_free(p);
    dl_plan_free(q);
}

static void test_lookups(void **state)
{
    DlPlan *p = make_plan(9);
    assert_string_equal(dl_plan_kv(p->data, p->ndata, "label.1"), "yaw");
    assert_null(dl_plan_kv(p->data, p->ndata, "label.2"));
    assert_true(dl_plan_hyper_num(p, "lr", -1) == 0.05);
    assert_true(dl_plan_hyper_num(p, "weight_decay", 5e-4) == 5e-4);
    assert_true(dl_plan_hyper_num(p, "schedule", -1) == -1); /* not a number */
    assert_int_equal(dl_plan_find_program(p, "eval"), 1);
    assert_int_equal(dl_plan_find_program(p, "predict"), -1);
    dl_plan_free(p);
}

static void test_corruption(void **state)
{
    DlPlan *p = make_plan(9);
    char *path = path_of("c.plan"), *bad = path_of("bad.plan"), *err = NULL;
    assert_int_equal(dl_plan_write(p, path, &err), 0);
    size_t n;
    unsigned char *b = slurp(path, &n);
    char *want;

    b[n / 2] ^= 0x10; /* one payload bit */
    spit(bad, b, n);
    want = dl_xasprintf("%s: checksum mismatch (file damaged?); re-run dldlc to regenerate it", bad);
    expect_error(bad, want, 1);
    free(want);
    b[n / 2] ^= 0x10;

    spit(bad, b, n - 7); /* truncated */
    expect_error(bad, "truncated", 0);
    spit(bad, b, 5);
    want = dl_xasprintf("%s: not a dldl plan (bad magic)", bad);
    expect_error(bad, want, 1);
    free(want);

    b[0] = 'X';
    spit(bad, b, n);
    want = dl_xasprintf("%s: not a dldl plan (bad magic)", bad);
    expect_error(bad, want, 1);
    free(want);
    b[0] = 'D';

    put_le(b + 8, DL_PLAN_VERSION + 1, 4);
    spit(bad, b, n);
    want = dl_xasprintf("%s: plan format version %d, this dldlrun reads version %d; re-run dldlc to regenerate it", bad,
                        DL_PLAN_VERSION + 1, DL_PLAN_VERSION);
    expect_error(bad, want, 1);
    free(want);
    put_le(b + 8, DL_PLAN_VERSION, 4);

    char *missing = path_of("none.plan");
    expect_error(missing, "cannot read the plan: No such file or directory", 0);
    expect_error("/dev/zero", "/dev/zero: cannot read the plan: is not a regular file", 0); /* never read */
    expect_error(tmpdir, "cannot read the plan: is a directory", 0);
    char *big = path_of("big.plan"); /* a sparse file one byte over the limit: refused before reading */
    FILE *bf = fopen(big, "wb");
    assert_non_null(bf);
    assert_int_equal(ftruncate(fileno(bf), (off_t)DL_LIMIT_PLAN + 1), 0);
    fclose(bf);
    expect_error(big, "cannot read the plan: is 1.0 GB (1073741825 bytes), more than the 1073741824 bytes allowed", 0);
    unlink(big);
    free(big);
    free(missing);
    free(b), free(bad), free(path);
    dl_plan_free(p);
}

/* An index out of range under a valid checksum: the byte that differs between
 * two plans whose only difference is one step argument is set to 99. */
static void test_bad_index(void **state)
{
    DlPlan *p = make_plan(9), *q = make_plan(8);
    char *pa = path_of("a.plan"), *pb = path_of("b.plan"), *err = NULL;
    assert_int_equal(dl_plan_write(p, pa, &err), 0);
    assert_int_equal(dl_plan_write(q, pb, &err), 0);
    size_t na, nb, at = 0;
    unsigned char *a = slurp(pa, &na), *b = slurp(pb, &nb);
    assert_int_equal(na, nb);
    int ndiff = 0;
    for (size_t i = 32; i < na; i++)
        if (a[i] != b[i]) ndiff++, at = i;
    assert_int_equal(ndiff, 1);
    a[at] = 99;
    reseal(a, na);
    spit(pa, a, na);
    expect_error(pa, "program 'train' step 1 (c1.bn): tensor index 99 out of range (plan has 12 tensors)", 0);
    free(a), free(b), free(pa), free(pb);
    dl_plan_free(p);
    dl_plan_free(q);
}

/* Find section `tag` in the payload of b: returns the offset of its header. */
static size_t find_section(const unsigned char *b, size_t n, const char *tag)
{
    for (size_t at = 32; at + 12 <= n; at += 12 + (size_t)get_le(b + at + 4, 8))
        if (memcmp(b + at, tag, 4) == 0) return at;
    fail_msg("no section %s", tag);
    return 0;
}

static void test_sections(void **state)
{
    DlPlan *p = make_plan(9);
    char *path = path_of("s.plan"), *err = NULL;
    assert_int_equal(dl_plan_write(p, path, &err), 0);
    size_t n;
    unsigned char *b = slurp(path, &n);

    /* a tensors section that claims 4 bytes less than it holds */
    size_t at = find_section(b, n, "TNSR");
    uint64_t len = get_le(b + at + 4, 8);
    put_le(b + at + 4, len - 4, 8);
    reseal(b, n);
    spit(path, b, n);
    char *want = dl_xasprintf("%s: truncated in section 'tensors'", path);
    expect_error(path, want, 1);
    free(want);
    put_le(b + at + 4, len, 8);

    /* a count larger than the section could hold */
    at = find_section(b, n, "KRNL");
    put_le(b + at + 12, 1000000, 4);
    reseal(b, n);
    spit(path, b, n);
    want = dl_xasprintf("%s: truncated in section 'kernels'", path);
    expect_error(path, want, 1);
    free(want);
    put_le(b + at + 12, 2, 4);

    /* an unknown section is skipped; a missing one is refused */
    unsigned char *c = dl_xmalloc(n + 15);
    memcpy(c, b, n);
    memcpy(c + n, "ZZZZ\3\0\0\0\0\0\0\0abc", 15);
    reseal(c, n + 15);
    spit(path, c, n + 15);
    DlPlan *q = dl_plan_read(path, &err);
    if (!q) fail_msg("%s", err);
    plans_equal(p, q);
    dl_plan_free(q);
    at = find_section(b, n, "OUTS"); /* the last section */
    reseal(b, at);
    spit(path, b, at);
    expect_error(path, "section 'outputs' is missing", 0);
    free(c), free(b), free(path);
    dl_plan_free(p);
}

static void test_write_refuses_inconsistent(void **state)
{
    DlPlan *p = make_plan(9);
    char *path = path_of("w.plan"), *err = NULL;
    p->tensors[1].offset = 39; /* c1.bn.weight [2] at param+39: past the 40 floats */
    assert_int_equal(dl_plan_write(p, path, &err), -1);
    assert_non_null(strstr(err, "tensor 1 ('c1.bn.weight'): offset 39 + numel 2 exceeds arena 'param' (40 floats)"));
    free(err);
    p->tensors[1].offset = 18;
    p->programs[0].steps[3].kernel = 2;
    assert_int_equal(dl_plan_write(p, path, &err), -1);
    assert_non_null(strstr(err, "kernel index 2 out of range (plan has 2 kernels)"));
    free(err);
    assert_int_equal(access(path, F_OK), -1); /* nothing written */
    free(path);
    dl_plan_free(p);
}

/* Collective steps (docs/parallel.md): a region all-reduce inside its arena
 * and a wait on a slot in range are written and read back; a region past
 * its arena, a slot out of range or tensors of two sizes are refused. */
static void test_collective_steps_checked(void **state)
{
    DlPlan *p = make_plan(9);
    char *path = path_of("c.plan"), *err = NULL;
    DlPlanStep *st = &p->programs[0].steps[2], *w = &p->programs[0].steps[3];
    *st = (DlPlanStep){.kind = DL_STEP_ALLREDUCE_START, .i = {DL_AR_PARAM, 8, 32, 5}, .label = st->label};
    *w = (DlPlanStep){.kind = DL_STEP_ALLREDUCE_WAIT, .i = {0, 0, 0, 5}, .label = w->label};
    assert_int_equal(dl_plan_write(p, path, &err), 0);
    DlPlan *q = dl_plan_read(path, &err);
    if (!q) fail_msg("%s", err);
    plans_equal(p, q);
    dl_plan_free(q);
    st->i[1] = 9; /* [9, 41) of the 40 floats */
    assert_int_equal(dl_plan_write(p, path, &err), -1);
    assert_non_null(strstr(err, "all-reduce region [9, 9 + 32) outside arena 'param' (40 floats)"));
    free(err);
    st->i[1] = 8, st->i[3] = DL_COMM_SLOTS;
    assert_int_equal(dl_plan_write(p, path, &err), -1);
    assert_non_null(strstr(err, "request slot 64 out of range [0, 64)"));
    free(err);
    st->i[3] = 0, st->nargs = 2, st->args[0] = 0, st->args[1] = 1; /* tensors of different sizes */
    assert_int_equal(dl_plan_write(p, path, &err), -1);
    assert_non_null(strstr(err, "all-reduce of tensors of"));
    free(err);
    free(path);
    dl_plan_free(p);
}

/* Every payload byte replaced (by 0x00, 0xFF and 0x80) under a valid
 * checksum: the reader returns a plan or a one-line error, never reads out
 * of bounds (run under ASan by `make asan`). */
static void test_every_byte(void **state)
{
    DlPlan *p = make_plan(9);
    char *path = path_of("e.plan"), *err = NULL;
    assert_int_equal(dl_plan_write(p, path, &err), 0);
    size_t n;
    unsigned char *b = slurp(path, &n), *c = dl_xmalloc(n);
    static const unsigned char subst[] = {0x00, 0xFF, 0x80};
    int refused = 0, accepted = 0;
    for (size_t at = 32; at < n; at++)
        for (int s = 0; s < 3; s++) {
            if (b[at] == subst[s]) continue;
            memcpy(c, b, n);
            c[at] = subst[s];
            reseal(c, n);
            spit(path, c, n);
            DlPlan *q = dl_plan_read(path, &err);
            if (q) {
                accepted++; /* e.g. a float or a character of a name changed */
                dl_plan_free(q);
            } else {
                refused++;
                assert_non_null(err);
                assert_null(strchr(err, '\n'));
                free(err);
            }
        }
    assert_true(refused > 0 && accepted > 0);
    free(b), free(c), free(path);
    dl_plan_free(p);
}

static int setup(void **state)
{
    return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_corruption),
        cmocka_unit_test(test_bad_index),
        cmocka_unit_test(test_sections),
        cmocka_unit_test(test_write_refuses_inconsistent),
        cmocka_unit_test(test_collective_steps_checked),
        cmocka_unit_test(test_every_byte),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
