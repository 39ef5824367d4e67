/* test_checkpoint.c - weights and checkpoints as safetensors
 * (runtime/checkpoint.c): bit-exact round trip, the file checked against the
 * safetensors rules independently of the reader, refusal of another plan's
 * checkpoint and of damaged files; fine-tuning's initialisation by name
 * (dl_init_from_weights): copied, left at init, ignored, refused.
 *
 * DLDL_ST_KEEP=DIR keeps the files written here (DIR/weights.safetensors,
 * DIR/checkpoint.safetensors) with DIR/NAME.expect.json beside each (tensor
 * shapes and values taken from the arenas), for the offline check
 *   python3 tests/tools/safetensors_check.py DIR/weights.safetensors --expect DIR/weights.expect.json
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/plan.h"
#include "common/util.h"
#include "runtime/checkpoint.h"

static char tmpdir[] = "/tmp/dldl_test_ckpt_XXXXXX";

/* A plan with what a checkpoint holds: conv weight, batch norm weight and
 * bias, batch norm state, a linear layer, the momentum of each parameter
 * (optimizer arena mirroring the parameter arena), and tensors that are not
 * saved.  conv_out: the conv's output channels (varied for mismatches);
 * with_fc: whether the linear layer exists. */
typedef struct TPlan {
    DlPlan p;
    DlPlanTensor t[24];
} TPlan;

static void add(TPlan *tp, const char *name, int role, int arena, int64_t off, int ndim, const int64_t *shape)
{
    assert_true(tp->p.ntensors < 24);
    DlPlanTensor *t = &tp->t[tp->p.ntensors++];
    memset(t, 0, sizeof *t);
    t->name = (char *)name;
    t->role = role, t->arena = arena, t->offset = off, t->ndim = ndim, t->numel = 1;
    for (int d = 0; d < ndim; d++) t->shape[d] = shape[d], t->numel *= shape[d];
}

static void make_plan(TPlan *tp, int conv_out, int with_fc)
{
    memset(tp, 0, sizeof *tp);
    DlPlan *p = &tp->p;
    p->version = DL_PLAN_VERSION;
    p->source_name = with_fc ? "specs/age.dldl" : "specs/small.dldl";
    p->tensors = tp->t;
    int64_t c = conv_out, w = conv_out * 3 * 3 * 3, at = 0;
    int64_t cw[] = {c, 3, 3, 3}, cc[] = {c}, run[] = {2, c}, fw[] = {5, c}, fb[] = {5};
    add(tp, "c1.conv.weight", DL_ROLE_PARAM, DL_AR_PARAM, at, 4, cw), at += w;
    add(tp, "c1.bn.weight", DL_ROLE_PARAM, DL_AR_PARAM, at, 1, cc), at += c;
    add(tp, "c1.bn.bias", DL_ROLE_PARAM, DL_AR_PARAM, at, 1, cc), at += c;
    if (with_fc) {
        add(tp, "fc.weight", DL_ROLE_PARAM, DL_AR_PARAM, at, 2, fw), at += 5 * c;
        add(tp, "fc.bias", DL_ROLE_PARAM, DL_AR_PARAM, at, 1, fb), at += 5;
    }
    int nparam = p->ntensors;
    for (int i = 0; i < nparam; i++) { /* momentum: same offsets in the optimizer arena */
        static const char *const mom[] = {"m0", "m1", "m2", "m3", "m4"};
        add(tp, mom[i], DL_ROLE_MOMENTUM, DL_AR_OPT, tp->t[i].offset, tp->t[i].ndim, tp->t[i].shape);
        add(tp, NULL, DL_ROLE_GRAD, DL_AR_GRAD, tp->t[i].offset, tp->t[i].ndim, tp->t[i].shape);
    }
    add(tp, "c1.bn.running", DL_ROLE_STATE, DL_AR_STATE, 0, 2, run);
    add(tp, NULL, DL_ROLE_TEMP, DL_AR_ACT, 0, 1, (int64_t[]){7});
    p->arena_size[DL_AR_PARAM] = p->arena_size[DL_AR_GRAD] = p->arena_size[DL_AR_OPT] = at;
    p->arena_size[DL_AR_STATE] = 2 * c;
    p->arena_size[DL_AR_ACT] = 7;
}

static float *arenas_new(const DlPlan *p, float *a[DL_AR_COUNT], float fill)
{
    for (int i = 0; i < DL_AR_COUNT; i++) {
        a[i] = dl_xmalloc((size_t)(p->arena_size[i] + 1) * sizeof(float));
        for (int64_t k = 0; k <= p->arena_size[i]; k++) a[i][k] = fill;
    }
    return a[0];
}

static void arenas_free(float *a[DL_AR_COUNT])
{
    for (int i = 0; i < DL_AR_COUNT; i++) free(a[i]);
}

/* Values that catch byte-order and conversion slips: -0, a denormal, huge. */
static void arenas_pattern(const DlPlan *p, float *a[DL_AR_COUNT])
{
    for (int i = 0; i < DL_AR_COUNT; i++)
        for (int64_t k = 0; k < p->arena_size[i]; k++) {
            float v = (float)(i + 1) * 1000.0f + (float)k * 0.37f - 3.0f;
            if (k % 7 == 3) v = -0.0f;
            if (k % 11 == 5) v = 1.4e-45f;
            if (k % 13 == 6) v = -3.0e38f;
            a[i][k] = v;
        }
}

static char *path_of(const char *name)
{
    const char *keep = getenv("DLDL_ST_KEEP");
    return dl_xasprintf("%s/%s", keep && *keep ? keep : tmpdir, name);
}

/* ---- an independent reading of the file's header ------------------------- */

typedef struct Hdr {
    json_t *root;
    unsigned char *file;
    size_t n, data;
} Hdr;

/* Read path and check the safetensors rules: header size a multiple of 8,
 * JSON object, every entry F32 with numel*4 bytes, offsets tiling the data. */
static void hdr_read(const char *path, Hdr *h)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    h->n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    h->file = dl_xmalloc(h->n);
    assert_int_equal(fread(h->file, 1, h->n, f), h->n);
    fclose(f);
    uint64_t hn = 0;
    for (int i = 0; i < 8; i++) hn |= (uint64_t)h->file[i] << (8 * i);
    assert_int_equal(hn % 8, 0);
    assert_true(8 + hn <= h->n);
    assert_int_equal(h->file[8], '{');
    h->data = 8 + hn;
    json_error_t je;
    h->root = json_loadb((char *)h->file + 8, hn, JSON_REJECT_DUPLICATES, &je);
    if (!h->root) fail_msg("header JSON: %s", je.text);
    const char *key;
    json_t *v;
    uint64_t covered = 0;
    int64_t prev_end = 0;
    json_object_foreach(h->root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            json_object_foreach(v, mk, mv) assert_true(json_is_string(mv));
            continue;
        }
        assert_string_equal(json_string_value(json_object_get(v, "dtype")), "F32");
        json_t *sh = json_object_get(v, "shape"), *of = json_object_get(v, "data_offsets");
        int64_t numel = 1;
        for (size_t d = 0; d < json_array_size(sh); d++) numel *= json_integer_value(json_array_get(sh, d));
        int64_t b = json_integer_value(json_array_get(of, 0)), e = json_integer_value(json_array_get(of, 1));
        assert_int_equal(b, prev_end); /* written in order, contiguous */
        assert_int_equal(e - b, numel * 4);
        prev_end = e;
        covered += (uint64_t)(e - b);
    }
    assert_int_equal(covered, h->n - h->data);
}

static void hdr_free(Hdr *h)
{
    json_decref(h->root);
    free(h->file);
}

/* Tensor `name` of the file: its shape and that its values are src[0..numel). */
static void hdr_tensor(const Hdr *h, const char *name, int ndim, const int64_t *shape, const float *src)
{
    json_t *v = json_object_get(h->root, name);
    if (!v) fail_msg("tensor '%s' not in the file", name);
    json_t *sh = json_object_get(v, "shape");
    assert_int_equal(json_array_size(sh), ndim);
    int64_t numel = 1;
    for (int d = 0; d < ndim; d++) {
        assert_int_equal(json_integer_value(json_array_get(sh, (size_t)d)), shape[d]);
        numel *= shape[d];
    }
    int64_t b = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
    assert_memory_equal(h->file + h->data + b, src, (size_t)numel * 4);
}

static const char *hdr_meta(const Hdr *h, const char *key)
{
    return json_string_value(json_object_get(json_object_get(h->root, "__metadata__"), key));
}

/* With DLDL_ST_KEEP: NAME.expect.json with every tensor's shape and values. */
static void keep_expect(const char *file, const Hdr *h)
{
    if (!getenv("DLDL_ST_KEEP")) return;
    json_t *out = json_object(), *ts = json_object();
    const char *key;
    json_t *v;
    json_object_foreach(h->root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        json_t *vals = json_array();
        int64_t b = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 0));
        int64_t e = json_integer_value(json_array_get(json_object_get(v, "data_offsets"), 1));
        for (int64_t k = b; k < e; k += 4) {
            float f;
            memcpy(&f, h->file + h->data + k, 4);
            json_array_append_new(vals, json_real(f));
        }
        json_object_set_new(ts, key, json_pack("{s:O, s:o}", "shape", json_object_get(v, "shape"), "values", vals));
    }
    json_object_set_new(out, "tensors", ts);
    json_object_set(out, "metadata", json_object_get(h->root, "__metadata__"));
    char *path = dl_xasprintf("%.*s.expect.json", (int)(strlen(file) - strlen(".safetensors")), file);
    assert_int_equal(json_dump_file(out, path, JSON_INDENT(1) | JSON_REAL_PRECISION(9)), 0);
    free(path);
    json_decref(out);
}

/* ---- tests --------------------------------------------------------------- */

static void test_checkpoint_round_trip(void **state)
{
    TPlan tp;
    make_plan(&tp, 4, 1);
    const DlPlan *p = &tp.p;
    float *a[DL_AR_COUNT], *b[DL_AR_COUNT];
    arenas_new(p, a, 0);
    arenas_pattern(p, a);
    arenas_new(p, b, 7.0f);
    char *path = path_of("checkpoint.safetensors"), *err = NULL;
    DlTrainPos pos = {3, 1234, 18446744073709551615ull}, got = {0};
    if (dl_save_checkpoint(path, p, a, &pos, &err) != 0) fail_msg("%s", err);
    if (dl_load_checkpoint(path, p, b, &got, &err) != 0) fail_msg("%s", err);
    assert_int_equal(got.epoch, 3);
    assert_int_equal(got.step, 1234);
    assert_true(got.seed == pos.seed);
    for (int i = DL_AR_PARAM; i <= DL_AR_STATE; i++) {
        if (i == DL_AR_GRAD) continue;
        assert_memory_equal(a[i], b[i], (size_t)p->arena_size[i] * sizeof(float)); /* bit-exact */
        assert_true(b[i][p->arena_size[i]] == 7.0f);                              /* nothing past the end */
    }
    assert_true(b[DL_AR_GRAD][0] == 7.0f && b[DL_AR_ACT][0] == 7.0f); /* not saved, not touched */

    Hdr h;
    hdr_read(path, &h);
    hdr_tensor(&h, "c1.conv.weight", 4, (int64_t[]){4, 3, 3, 3}, a[DL_AR_PARAM]);
    hdr_tensor(&h, "fc.bias", 1, (int64_t[]){5}, a[DL_AR_PARAM] + tp.t[4].offset);
    hdr_tensor(&h, "c1.bn.running_mean", 1, (int64_t[]){4}, a[DL_AR_STATE]);
    hdr_tensor(&h, "c1.bn.running_var", 1, (int64_t[]){4}, a[DL_AR_STATE] + 4);
    hdr_tensor(&h, "optimizer.fc.weight.momentum", 2, (int64_t[]){5, 4}, a[DL_AR_OPT] + tp.t[3].offset);
    assert_null(json_object_get(h.root, "c1.bn.running"));
    assert_int_equal(json_object_size(h.root), 1 + 5 + 2 + 5);
    assert_string_equal(hdr_meta(&h, "epoch"), "3");
    assert_string_equal(hdr_meta(&h, "step"), "1234");
    assert_string_equal(hdr_meta(&h, "seed"), "18446744073709551615");
    assert_string_equal(hdr_meta(&h, "source"), "specs/age.dldl");
    assert_string_equal(hdr_meta(&h, "format"), "pt");
    char want[32];
    snprintf(want, sizeof want, "%016llx", (unsigned long long)dl_plan_state_hash(p));
    assert_string_equal(hdr_meta(&h, "plan_checksum"), want);
    keep_expect(path, &h);
    hdr_free(&h);

    /* no temporary left beside it */
    DIR *d = opendir(tmpdir);
    struct dirent *de;
    while ((de = readdir(d)))
        if (strstr(de->d_name, ".tmp.")) fail_msg("left over: %s", de->d_name);
    closedir(d);
    free(path);
    arenas_free(a), arenas_free(b);
}

static void test_weights(void **state)
{
    TPlan tp;
    make_plan(&tp, 4, 1);
    const DlPlan *p = &tp.p;
    float *a[DL_AR_COUNT], *b[DL_AR_COUNT];
    arenas_new(p, a, 0);
    arenas_pattern(p, a);
    arenas_new(p, b, 7.0f);
    char *path = path_of("weights.safetensors"), *err = NULL;
    DlKV meta[] = {{"test.mae", "6.21"}, {"note", "caf\xc3\xa9 \"quoted\"\n"}};
    if (dl_save_weights(path, p, a, 8, meta, 2, &err) != 0) fail_msg("%s", err);
    Hdr h;
    hdr_read(path, &h);
    assert_int_equal(json_object_size(h.root), 1 + 5 + 2); /* no momentum */
    assert_string_equal(hdr_meta(&h, "epoch"), "8");
    assert_string_equal(hdr_meta(&h, "test.mae"), "6.21");
    assert_string_equal(hdr_meta(&h, "note"), "caf\xc3\xa9 \"quoted\"\n");
    assert_null(hdr_meta(&h, "plan_checksum"));
    keep_expect(path, &h);
    hdr_free(&h);

    if (dl_load_weights(path, p, b, &err) != 0) fail_msg("%s", err);
    assert_memory_equal(a[DL_AR_PARAM], b[DL_AR_PARAM], (size_t)p->arena_size[DL_AR_PARAM] * 4);
    assert_memory_equal(a[DL_AR_STATE], b[DL_AR_STATE], (size_t)p->arena_size[DL_AR_STATE] * 4);
    assert_true(b[DL_AR_OPT][0] == 7.0f);

    /* a weights file is no checkpoint; a checkpoint does as weights */
    DlTrainPos pos;
    assert_int_equal(dl_load_checkpoint(path, p, b, &pos, &err), -1);
    assert_non_null(strstr(err, "not a dldl checkpoint"));
    free(err);
    char *ck = path_of("ck2.safetensors");
    DlTrainPos at = {1, 2, 3};
    assert_int_equal(dl_save_checkpoint(ck, p, a, &at, &err), 0);
    arenas_free(b);
    arenas_new(p, b, 7.0f);
    if (dl_load_weights(ck, p, b, &err) != 0) fail_msg("%s", err);
    assert_memory_equal(a[DL_AR_PARAM], b[DL_AR_PARAM], (size_t)p->arena_size[DL_AR_PARAM] * 4);
    assert_true(b[DL_AR_OPT][0] == 7.0f);
    free(path), free(ck);
    arenas_free(a), arenas_free(b);
}

/* Load a checkpoint of `from` into `into`: must fail with `want` in the
 * message and leave every arena as it was. */
static void expect_refused(const char *path, const DlPlan *into, const char *want)
{
    float *b[DL_AR_COUNT];
    arenas_new(into, b, 7.0f);
    char *err = NULL;
    DlTrainPos pos = {-1, -1, 0};
    assert_int_equal(dl_load_checkpoint(path, into, b, &pos, &err), -1);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    assert_null(strchr(err, '\n'));
    for (int i = 0; i < DL_AR_COUNT; i++)
        for (int64_t k = 0; k <= into->arena_size[i]; k++) assert_true(b[i][k] == 7.0f);
    assert_int_equal(pos.epoch, -1);
    free(err);
    arenas_free(b);
}

static void test_mismatched_plan(void **state)
{
    TPlan tp, other;
    make_plan(&tp, 4, 1);
    float *a[DL_AR_COUNT];
    arenas_new(&tp.p, a, 0);
    arenas_pattern(&tp.p, a);
    char *path = path_of("mm.safetensors"), *err = NULL;
    DlTrainPos pos = {1, 10, 0};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &pos, &err), 0);

    make_plan(&other, 6, 1); /* wider conv */
    expect_refused(path, &other.p, "tensor 'c1.conv.weight' has shape [4,3,3,3] in the file, [6,3,3,3] in the plan");
    make_plan(&other, 4, 0); /* a subset of the tensors: every one present, but another model */
    expect_refused(path, &other.p, "checkpoint of another model (plan_checksum ");
    expect_refused(path, &other.p, "(the file was written from 'specs/age.dldl', this plan is from 'specs/small.dldl')");
    make_plan(&other, 4, 1);
    other.t[1].name = "c1.norm.weight"; /* renamed */
    expect_refused(path, &other.p, "tensor 'c1.norm.weight' is missing");
    free(path);
    arenas_free(a);
}

/* Adam's plan as dldlc writes it: per parameter "<param>.exp_avg" at its
 * offset and "<param>.exp_avg_sq" at P + its offset in the optimizer arena
 * (two copies of the parameter layout, P = the param arena's size, a
 * multiple of 16 as the memory planner aligns it). */
static void make_adam_plan(TPlan *tp)
{
    memset(tp, 0, sizeof *tp);
    DlPlan *p = &tp->p;
    p->version = DL_PLAN_VERSION;
    p->source_name = "tests/ops/adam.dldl";
    p->tensors = tp->t;
    static const char *const pn[3] = {"c1.conv.weight", "fc.weight", "fc.bias"};
    static const char *const m1[3] = {"c1.conv.weight.exp_avg", "fc.weight.exp_avg", "fc.bias.exp_avg"};
    static const char *const m2[3] = {"c1.conv.weight.exp_avg_sq", "fc.weight.exp_avg_sq", "fc.bias.exp_avg_sq"};
    int64_t sh[3][4] = {{4, 3, 3, 3}, {5, 4}, {5}}, nd[3] = {4, 2, 1}, off[3] = {0, 112, 128}, P = 144;
    for (int i = 0; i < 3; i++) add(tp, pn[i], DL_ROLE_PARAM, DL_AR_PARAM, off[i], (int)nd[i], sh[i]);
    for (int i = 0; i < 3; i++) {
        add(tp, m1[i], DL_ROLE_MOMENTUM, DL_AR_OPT, off[i], (int)nd[i], sh[i]);
        add(tp, m2[i], DL_ROLE_MOMENTUM, DL_AR_OPT, P + off[i], (int)nd[i], sh[i]);
    }
    p->arena_size[DL_AR_PARAM] = p->arena_size[DL_AR_GRAD] = P;
    p->arena_size[DL_AR_OPT] = 2 * P;
}

/* Both of Adam's states round-trip bit for bit under PyTorch's state names,
 * and an SGD checkpoint (momentum) is refused by an Adam plan. */
static void test_adam_state_round_trip(void **state)
{
    TPlan tp;
    make_adam_plan(&tp);
    const DlPlan *p = &tp.p;
    float *a[DL_AR_COUNT], *b[DL_AR_COUNT];
    arenas_new(p, a, 0);
    arenas_pattern(p, a);
    arenas_new(p, b, 7.0f);
    char *path = path_of("adam.safetensors"), *err = NULL;
    DlTrainPos pos = {2, 77, 5}, got = {0};
    if (dl_save_checkpoint(path, p, a, &pos, &err) != 0) fail_msg("%s", err);
    if (dl_load_checkpoint(path, p, b, &got, &err) != 0) fail_msg("%s", err);
    assert_int_equal(got.step, 77);
    for (int i = 0; i < p->ntensors; i++) { /* every saved tensor, bit for bit (not the padding) */
        const DlPlanTensor *t = &p->tensors[i];
        assert_memory_equal(a[t->arena] + t->offset, b[t->arena] + t->offset, (size_t)t->numel * sizeof(float));
    }
    Hdr h;
    hdr_read(path, &h);
    hdr_tensor(&h, "optimizer.c1.conv.weight.exp_avg", 4, (int64_t[]){4, 3, 3, 3}, a[DL_AR_OPT]);
    hdr_tensor(&h, "optimizer.c1.conv.weight.exp_avg_sq", 4, (int64_t[]){4, 3, 3, 3}, a[DL_AR_OPT] + 144);
    hdr_tensor(&h, "optimizer.fc.bias.exp_avg", 1, (int64_t[]){5}, a[DL_AR_OPT] + 128);
    hdr_tensor(&h, "optimizer.fc.bias.exp_avg_sq", 1, (int64_t[]){5}, a[DL_AR_OPT] + 144 + 128);
    assert_int_equal(json_object_size(h.root), 1 + 3 + 6);
    keep_expect(path, &h);
    hdr_free(&h);

    TPlan sgd;
    make_plan(&sgd, 4, 1);
    float *c[DL_AR_COUNT];
    arenas_new(&sgd.p, c, 0);
    char *spath = path_of("sgd_for_adam.safetensors");
    if (dl_save_checkpoint(spath, &sgd.p, c, &pos, &err) != 0) fail_msg("%s", err);
    expect_refused(spath, p, "is missing");
    free(spath), free(path);
    arenas_free(a), arenas_free(b), arenas_free(c);
}

static void test_damaged(void **state)
{
    TPlan tp;
    make_plan(&tp, 4, 1);
    float *a[DL_AR_COUNT];
    arenas_new(&tp.p, a, 0);
    arenas_pattern(&tp.p, a);
    char *path = path_of("dmg.safetensors"), *bad = path_of("bad.safetensors"), *err = NULL;
    DlTrainPos pos = {1, 10, 0};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &pos, &err), 0);
    Hdr h;
    hdr_read(path, &h);
    FILE *f;

    f = fopen(bad, "wb"); /* the data cut short */
    fwrite(h.file, 1, h.n - 4, f);
    fclose(f);
    expect_refused(bad, &tp.p, "tensor 'c1.bn.running_var': data_offsets [1144,1160] outside the 1156 data bytes");

    f = fopen(bad, "wb"); /* bytes past the last tensor */
    fwrite(h.file, 1, h.n, f);
    fwrite("junk", 1, 4, f);
    fclose(f);
    expect_refused(bad, &tp.p, "1164 data bytes, the tensors cover 1160");

    f = fopen(bad, "wb"); /* the header cut short */
    fwrite(h.file, 1, 20, f);
    fclose(f);
    expect_refused(bad, &tp.p, "not a safetensors file");

    unsigned char *c = dl_xmalloc(h.n); /* a data_offsets digit changed: tensors overlap */
    memcpy(c, h.file, h.n);
    char *hit = strstr((char *)c + 8, "\"data_offsets\":[0,432]");
    assert_non_null(hit);
    memcpy(hit, "\"data_offsets\":[4,436]", 22);
    f = fopen(bad, "wb");
    fwrite(c, 1, h.n, f);
    fclose(f);
    expect_refused(bad, &tp.p, "(overlap or hole)");

    memcpy(c, h.file, h.n); /* a dtype changed */
    hit = strstr((char *)c + 8, "\"F32\"");
    memcpy(hit, "\"I32\"", 5);
    f = fopen(bad, "wb");
    fwrite(c, 1, h.n, f);
    fclose(f);
    expect_refused(bad, &tp.p, "has dtype I32, expected F32");

    /* saving where the file cannot go fails cleanly */
    char *nowhere = dl_xasprintf("%s/no/such/dir/x.safetensors", tmpdir);
    assert_int_equal(dl_save_checkpoint(nowhere, &tp.p, a, &pos, &err), -1);
    assert_non_null(strstr(err, "cannot write"));
    free(err);
    free(nowhere), free(c), free(path), free(bad);
    hdr_free(&h);
    arenas_free(a);
}

/* The training position of a checkpoint from someone else: counters beyond
 * DL_MAX_EPOCHS / DL_MAX_STEP (a step near INT64_MAX would overflow when
 * incremented), a step fewer than the epochs, or not decimal, are refused
 * naming the file and the key; the bounds themselves load. */
static void test_counters(void **state)
{
    TPlan tp;
    make_plan(&tp, 4, 1);
    float *a[DL_AR_COUNT];
    arenas_new(&tp.p, a, 0);
    char *path = path_of("counters.safetensors"), *err = NULL;
    DlTrainPos got = {0};
    DlTrainPos ok = {DL_MAX_EPOCHS, DL_MAX_STEP, 1};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &ok, &err), 0);
    if (dl_load_checkpoint(path, &tp.p, a, &got, &err) != 0) fail_msg("%s", err);
    assert_true(got.epoch == DL_MAX_EPOCHS && got.step == DL_MAX_STEP);
    DlTrainPos huge = {3, INT64_MAX, 1};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &huge, &err), 0);
    expect_refused(path, &tp.p, "checkpoint metadata 'step' is '9223372036854775807', not a step count in "
                                "0..9007199254740992");
    DlTrainPos over = {3, DL_MAX_STEP + 1, 1};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &over, &err), 0);
    expect_refused(path, &tp.p, "'step' is '9007199254740993', not a step count");
    DlTrainPos neg = {3, -1, 1};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &neg, &err), 0);
    expect_refused(path, &tp.p, "'step' is '-1', not a step count");
    DlTrainPos ep = {DL_MAX_EPOCHS + 1, DL_MAX_STEP, 1};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &ep, &err), 0);
    expect_refused(path, &tp.p, "'epoch' is '1000001', not a count of epochs in 0..1000000");
    DlTrainPos few = {5, 4, 1};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &few, &err), 0);
    expect_refused(path, &tp.p, "checkpoint metadata 'step' is 4, fewer than its 5 epochs");
    free(path);
    arenas_free(a);
}

/* Every byte of the size field and the JSON header replaced (by '9', '"',
 * ']' and 0xFF): each load succeeds or fails with one line, and never reads
 * out of bounds (run under ASan by `make asan`). */
static void test_every_header_byte(void **state)
{
    TPlan tp;
    make_plan(&tp, 2, 0);
    float *a[DL_AR_COUNT];
    arenas_new(&tp.p, a, 0);
    arenas_pattern(&tp.p, a);
    char *path = path_of("hb.safetensors"), *bad = path_of("hb_bad.safetensors"), *err = NULL;
    DlTrainPos pos = {1, 10, 0};
    assert_int_equal(dl_save_checkpoint(path, &tp.p, a, &pos, &err), 0);
    Hdr h;
    hdr_read(path, &h);
    static const unsigned char subst[] = {'9', '"', ']', 0xFF};
    int refused = 0;
    for (size_t at = 0; at < h.data; at++)
        for (int s = 0; s < 4; s++) {
            if (h.file[at] == subst[s]) continue;
            unsigned char keep = h.file[at];
            h.file[at] = subst[s];
            FILE *f = fopen(bad, "wb");
            fwrite(h.file, 1, h.n, f);
            fclose(f);
            h.file[at] = keep;
            if (dl_load_checkpoint(bad, &tp.p, a, &pos, &err) != 0) {
                refused++;
                assert_null(strchr(err, '\n'));
                free(err);
            }
        }
    assert_true(refused > 0);
    hdr_free(&h);
    free(path), free(bad);
    arenas_free(a);
}

static void test_state_hash(void **state)
{
    TPlan x, y;
    make_plan(&x, 4, 1);
    make_plan(&y, 4, 1);
    y.p.arena_size[DL_AR_ACT] = 1000; /* another memory plan, same model */
    y.t[y.p.ntensors - 1].offset = 500;
    assert_true(dl_plan_state_hash(&x.p) == dl_plan_state_hash(&y.p));
    y.t[0].shape[0] = 5;
    assert_true(dl_plan_state_hash(&x.p) != dl_plan_state_hash(&y.p));
}

/* ---- fine-tuning: dl_init_from_weights ----------------------------------- */

/* Every float of every arena of `into` is still `fill` (nothing written). */
static void assert_filled(const DlPlan *into, float *b[DL_AR_COUNT], float fill)
{
    for (int i = 0; i < DL_AR_COUNT; i++)
        for (int64_t k = 0; k <= into->arena_size[i]; k++)
            if (b[i][k] != fill) fail_msg("arena %d float %lld was written", i, (long long)k);
}

static void assert_names(char *const *got, int n, const char *const *want, int nwant)
{
    assert_int_equal(n, nwant);
    for (int i = 0; i < n; i++) assert_string_equal(got[i], want[i]);
}

/* Init `into` from path: must fail with `want` in the one-line message,
 * leave every arena as it was and the report empty. */
static void ft_refused(const char *path, const DlPlan *into, const char *want)
{
    float *b[DL_AR_COUNT];
    arenas_new(into, b, 7.0f);
    char *err = NULL;
    DlInitReport r;
    memset(&r, 0xab, sizeof r);
    assert_int_equal(dl_init_from_weights(path, into, b, &r, &err), -1);
    if (!strstr(err, want)) fail_msg("error '%s' does not contain '%s'", err, want);
    assert_null(strchr(err, '\n'));
    assert_filled(into, b, 7.0f);
    assert_int_equal(r.nloaded + r.nkept + r.nignored + r.noptimizer, 0);
    assert_null(r.loaded);
    dl_init_report_free(&r);
    free(err);
    arenas_free(b);
}

/* Same names and shapes: copied; renamed head: left at init; the old head:
 * ignored; the report says so. */
static void test_finetune_by_name(void **state)
{
    TPlan src, dst;
    make_plan(&src, 4, 1);
    float *a[DL_AR_COUNT], *b[DL_AR_COUNT];
    arenas_new(&src.p, a, 0);
    arenas_pattern(&src.p, a);
    char *path = path_of("ft.safetensors"), *err = NULL;
    if (dl_save_weights(path, &src.p, a, 8, NULL, 0, &err) != 0) fail_msg("%s", err);

    make_plan(&dst, 4, 1);
    dst.t[3].name = "head.weight", dst.t[4].name = "head.bias"; /* a new head, same shapes */
    arenas_new(&dst.p, b, 7.0f);
    DlInitReport r;
    if (dl_init_from_weights(path, &dst.p, b, &r, &err) != 0) fail_msg("%s", err);
    assert_names(r.loaded, r.nloaded,
                 (const char *const[]){"c1.conv.weight", "c1.bn.weight", "c1.bn.bias", "c1.bn.running_mean",
                                       "c1.bn.running_var"}, 5);
    assert_names(r.kept, r.nkept, (const char *const[]){"head.weight", "head.bias"}, 2);
    assert_names(r.ignored, r.nignored, (const char *const[]){"fc.weight", "fc.bias"}, 2);
    assert_int_equal(r.noptimizer, 0);
    char *msg = dl_init_report_str(&r, "w.safetensors");
    assert_string_equal(msg, "loaded 5 tensors from w.safetensors; left at initialisation: head.weight, head.bias; "
                             "ignored from the file: fc.weight, fc.bias");
    free(msg);
    dl_init_report_free(&r);
    assert_null(r.loaded);

    int64_t head = dst.t[3].offset; /* conv and bn before the head: copied bit-exact */
    assert_memory_equal(b[DL_AR_PARAM], a[DL_AR_PARAM], (size_t)head * sizeof(float));
    for (int64_t k = head; k <= dst.p.arena_size[DL_AR_PARAM]; k++) assert_true(b[DL_AR_PARAM][k] == 7.0f);
    assert_memory_equal(b[DL_AR_STATE], a[DL_AR_STATE], (size_t)dst.p.arena_size[DL_AR_STATE] * sizeof(float));
    assert_true(b[DL_AR_STATE][dst.p.arena_size[DL_AR_STATE]] == 7.0f);
    for (int i = 0; i < DL_AR_COUNT; i++) /* momentum, gradients, activations: untouched */
        if (i != DL_AR_PARAM && i != DL_AR_STATE)
            for (int64_t k = 0; k <= dst.p.arena_size[i]; k++) assert_true(b[i][k] == 7.0f);
    arenas_free(b);

    /* a plan without the head: everything it has is loaded, nothing left at init */
    make_plan(&dst, 4, 0);
    arenas_new(&dst.p, b, 7.0f);
    if (dl_init_from_weights(path, &dst.p, b, &r, &err) != 0) fail_msg("%s", err);
    assert_int_equal(r.nloaded, 5);
    assert_int_equal(r.nkept, 0);
    msg = dl_init_report_str(&r, "w.safetensors");
    assert_string_equal(msg, "loaded 5 tensors from w.safetensors; ignored from the file: fc.weight, fc.bias");
    free(msg);
    dl_init_report_free(&r);
    assert_memory_equal(b[DL_AR_PARAM], a[DL_AR_PARAM], (size_t)dst.p.arena_size[DL_AR_PARAM] * sizeof(float));
    arenas_free(b);

    /* the same plan: all loaded, nothing to report but the count */
    arenas_new(&src.p, b, 7.0f);
    if (dl_init_from_weights(path, &src.p, b, &r, &err) != 0) fail_msg("%s", err);
    msg = dl_init_report_str(&r, "w.safetensors");
    assert_string_equal(msg, "loaded 7 tensors from w.safetensors");
    free(msg);
    dl_init_report_free(&r);
    assert_memory_equal(b[DL_AR_PARAM], a[DL_AR_PARAM], (size_t)src.p.arena_size[DL_AR_PARAM] * sizeof(float));
    arenas_free(b);

    /* a checkpoint does as well: its optimizer state is ignored, counted */
    char *ck = path_of("ft_ck.safetensors");
    DlTrainPos pos = {3, 30, 1};
    assert_int_equal(dl_save_checkpoint(ck, &src.p, a, &pos, &err), 0);
    arenas_new(&src.p, b, 7.0f);
    if (dl_init_from_weights(ck, &src.p, b, &r, &err) != 0) fail_msg("%s", err);
    assert_int_equal(r.nloaded, 7);
    assert_int_equal(r.nignored, 0);
    assert_int_equal(r.noptimizer, 5);
    msg = dl_init_report_str(&r, "c.safetensors");
    assert_string_equal(msg, "loaded 7 tensors from c.safetensors; ignored from the file: 5 optimizer tensors "
                             "(momentum starts at 0)");
    free(msg);
    dl_init_report_free(&r);
    for (int64_t k = 0; k <= src.p.arena_size[DL_AR_OPT]; k++) assert_true(b[DL_AR_OPT][k] == 7.0f);
    arenas_free(b);
    free(path), free(ck);
    arenas_free(a);
}

/* A tensor of the same name and another shape refuses the whole file. */
static void test_finetune_mismatch(void **state)
{
    TPlan src, dst;
    make_plan(&src, 4, 1);
    float *a[DL_AR_COUNT];
    arenas_new(&src.p, a, 0);
    arenas_pattern(&src.p, a);
    char *path = path_of("ftm.safetensors"), *err = NULL;
    assert_int_equal(dl_save_weights(path, &src.p, a, 1, NULL, 0, &err), 0);

    make_plan(&dst, 4, 1); /* one tensor reshaped (same size), after tensors that match */
    dst.t[4].ndim = 2, dst.t[4].shape[1] = 1;
    ft_refused(path, &dst.p,
               "ftm.safetensors: fc.bias: the file has [5], the plan [5, 1] (a layer that should start from its "
               "initialisation needs a name the file does not have)");
    make_plan(&dst, 6, 1); /* a wider conv: six tensors differ, four named */
    ft_refused(path, &dst.p,
               "ftm.safetensors: c1.conv.weight: the file has [4, 3, 3, 3], the plan [6, 3, 3, 3]; c1.bn.weight: "
               "the file has [4], the plan [6]; c1.bn.bias: the file has [4], the plan [6]; fc.weight: the file has "
               "[5, 4], the plan [5, 6]; 2 more differ (");
    make_plan(&dst, 4, 1); /* nothing in common */
    for (int i = 0; i < dst.p.ntensors; i++)
        if (dst.t[i].role == DL_ROLE_PARAM || dst.t[i].role == DL_ROLE_STATE) dst.t[i].name = "other";
    dst.t[0].name = "x.weight", dst.t[1].name = "y.weight", dst.t[2].name = "y.bias", dst.t[3].name = "z.weight";
    dst.t[4].name = "z.bias", dst.t[dst.p.ntensors - 2].name = "y.running";
    ft_refused(path, &dst.p,
               "ftm.safetensors: no tensor of the file has a name of this plan (the file has 7: 'c1.conv.weight', "
               "'c1.bn.weight', 'c1.bn.bias', ...; the plan wants e.g. 'x.weight')");
    free(path);
    arenas_free(a);
}

/* The file is untrusted: damaged files are refused by the strict reader. */
static void test_finetune_damaged(void **state)
{
    TPlan tp;
    make_plan(&tp, 4, 1);
    float *a[DL_AR_COUNT];
    arenas_new(&tp.p, a, 0);
    arenas_pattern(&tp.p, a);
    char *path = path_of("ftd.safetensors"), *bad = path_of("ftd_bad.safetensors"), *err = NULL;
    assert_int_equal(dl_save_weights(path, &tp.p, a, 1, NULL, 0, &err), 0);
    Hdr h;
    hdr_read(path, &h);
    FILE *f;

    f = fopen(bad, "wb"); /* the data cut short */
    fwrite(h.file, 1, h.n - 4, f);
    fclose(f);
    ft_refused(bad, &tp.p, "outside the");
    f = fopen(bad, "wb"); /* bytes past the last tensor */
    fwrite(h.file, 1, h.n, f);
    fwrite("junk", 1, 4, f);
    fclose(f);
    ft_refused(bad, &tp.p, "(truncated or padded?)");
    f = fopen(bad, "wb"); /* the header cut short */
    fwrite(h.file, 1, 20, f);
    fclose(f);
    ft_refused(bad, &tp.p, "not a safetensors file");
    ft_refused(tmpdir, &tp.p, ": cannot read: is a directory");
    char *none = path_of("no_such.safetensors");
    ft_refused(none, &tp.p, "no_such.safetensors: cannot read: No such file or directory");
    free(none);

    unsigned char *c = dl_xmalloc(h.n); /* the first tensor (c1.conv.weight) as I32 */
    memcpy(c, h.file, h.n);
    char *hit = strstr((char *)c + 8, "\"F32\"");
    memcpy(hit, "\"I32\"", 5);
    f = fopen(bad, "wb");
    fwrite(c, 1, h.n, f);
    fclose(f);
    ft_refused(bad, &tp.p, "ftd_bad.safetensors: c1.conv.weight: the file has dtype I32, the plan needs F32");

    memcpy(c, h.file, h.n); /* a data_offsets changed: tensors overlap */
    hit = strstr((char *)c + 8, "\"data_offsets\":[0,432]");
    assert_non_null(hit);
    memcpy(hit, "\"data_offsets\":[4,436]", 22);
    f = fopen(bad, "wb");
    fwrite(c, 1, h.n, f);
    fclose(f);
    ft_refused(bad, &tp.p, "(overlap or hole)");
    free(c), free(path), free(bad);
    hdr_free(&h);
    arenas_free(a);
}

static int setup(void **state) { return mkdtemp(tmpdir) ? 0 : -1; }

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
        cmocka_unit_test(test_checkpoint_round_trip),
        cmocka_unit_test(test_weights),
        cmocka_unit_test(test_mismatched_plan),
        cmocka_unit_test(test_adam_state_round_trip),
        cmocka_unit_test(test_damaged),
        cmocka_unit_test(test_counters),
        cmocka_unit_test(test_every_header_byte),
        cmocka_unit_test(test_state_hash),
        cmocka_unit_test(test_finetune_by_name),
        cmocka_unit_test(test_finetune_mismatch),
        cmocka_unit_test(test_finetune_damaged),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
