/* test_target.c - label-distribution targets (runtime/target.c) against numpy.
 *
 * tests/numeric/targets.txt is written by tests/numeric/make_target_fixtures.py:
 * Gaussian targets over UTKFace's age bins 0..116 (sigma 2; labels 0, 116,
 * 25.5, far outside the bins ...) and over Pointing'04's 9 x 13 pitch x yaw
 * grid (sigma 15; the corners ...), and one-hot targets with ties.  Each y is
 * compared to 1e-6.  By hand: the label column an axis reads (axes[].label),
 * dl_target_bins, and the NaN-label fallback.
 * tests/numeric/label_map.txt is written by
 * tests/numeric/make_label_map_fixture.py: the per-pixel label_map target
 * (a Gaussian-weighted vote of the neighbouring pixels' classes, void 255)
 * computed there by a direct 2-D window sum, here by separable passes.
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

#include "../../common/util.h"
#include "../../runtime/data.h"

#define FIXTURE "tests/numeric/targets.txt"
#define TOL 1e-6

typedef struct Case {
    char name[64], kind[16];
    DlPlanTarget t;
    char axis_names[DL_MAX_AXES][16];
    float label[DL_MAX_AXES];
    int K;
    double *y;
} Case;

static Case *cases;
static int ncases;

static char *next_tok(char **save)
{
    char *t;
    /* skip comment lines */
    while ((t = strtok_r(NULL, " \t\r\n", save)) && t[0] == '#')
        strtok_r(NULL, "\n", save);
    return t;
}

static int expect(char **save, const char *word)
{
    char *t = next_tok(save);
    if (!t || strcmp(t, word) != 0) {
        fprintf(stderr, "%s: expected '%s', found '%s'\n", FIXTURE, word, t ? t : "end of file");
        return -1;
    }
    return 0;
}

static double num(char **save)
{
    char *t = next_tok(save);
    return t ? strtod(t, NULL) : NAN;
}

static int load_fixture(void **state)
{
    FILE *f = fopen(FIXTURE, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open (run from the repository root)\n", FIXTURE);
        return -1;
    }
    DlBuf b = {0};
    char chunk[8192];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) dl_buf_put(&b, chunk, n);
    fclose(f);
    /* a leading comment line: strtok_r needs a first call */
    char *save = NULL, *t = strtok_r(b.s, "\n", &save);
    if (!t || t[0] != '#') return -1;
    DL_VEC(Case) v = {0};
    while ((t = next_tok(&save))) {
        if (strcmp(t, "case") != 0) return -1;
        Case c;
        memset(&c, 0, sizeof c);
        snprintf(c.name, sizeof c.name, "%s", next_tok(&save));
        snprintf(c.kind, sizeof c.kind, "%s", next_tok(&save));
        c.t.kind = dl_enum_lookup(dl_target_kind_name, DL_TGT_COUNT, c.kind);
        c.t.dist = -1;
        c.t.naxes = (int)num(&save);
        for (int a = 0; a < c.t.naxes; a++) {
            if (expect(&save, "axis")) return -1;
            DlPlanAxis *ax = &c.t.axes[a];
            snprintf(c.axis_names[a], sizeof c.axis_names[a], "%s", next_tok(&save));
            ax->sigma = (float)num(&save);
            ax->nbins = (int)num(&save);
            ax->bins = dl_xmalloc((size_t)ax->nbins * sizeof(float));
            for (int i = 0; i < ax->nbins; i++) ax->bins[i] = (float)num(&save);
            ax->label = a;
            ax->sigma_label = -1;
        }
        if (expect(&save, "label")) return -1;
        for (int a = 0; a < c.t.naxes; a++) c.label[a] = (float)num(&save);
        if (expect(&save, "y")) return -1;
        c.K = (int)num(&save);
        c.y = dl_xmalloc((size_t)c.K * sizeof(double));
        for (int k = 0; k < c.K; k++) c.y[k] = num(&save);
        if (isnan(c.y[c.K - 1])) return -1;
        DL_PUSH(v, c);
    }
    dl_buf_free(&b);
    cases = v.a;
    ncases = (int)v.n;
    return ncases >= 12 ? 0 : -1;
}

static int free_fixture(void **state)
{
    for (int i = 0; i < ncases; i++) {
        for (int a = 0; a < cases[i].t.naxes; a++) free(cases[i].t.axes[a].bins);
        free(cases[i].y);
    }
    free(cases);
    return 0;
}

static void test_fixture(void **state)
{
    int checked = 0;
    for (int i = 0; i < ncases; i++) {
        Case *c = &cases[i];
        assert_int_equal(dl_target_bins(&c->t), c->K);
        float *y = dl_xmalloc((size_t)c->K * sizeof *y);
        dl_target_build(&c->t, c->label, NULL, y);
        double sum = 0, worst = 0;
        for (int k = 0; k < c->K; k++) {
            sum += y[k];
            double d = fabs((double)y[k] - c->y[k]);
            if (d > worst) worst = d;
        }
        if (worst > TOL) fprintf(stderr, "case %s: max |y - numpy| = %g\n", c->name, worst);
        assert_true(worst <= TOL);
        assert_float_equal(sum, 1.0, 1e-5);
        free(y);
        checked++;
    }
    printf("%d target cases match numpy to %g\n", checked, TOL);
    assert_true(checked >= 12);
}

static Case *find(const char *name)
{
    for (int i = 0; i < ncases; i++)
        if (strcmp(cases[i].name, name) == 0) return &cases[i];
    fail_msg("no case %s in %s", name, FIXTURE);
    return NULL;
}

/* An axis reads its own label column: labels [gender, yaw, pitch] with the
 * axes reading columns 2 and 1 give the same target as [pitch, yaw]. */
static void test_label_columns(void **state)
{
    Case *c = find("pose_30.5_7.2");
    DlPlanTarget t = c->t;
    t.axes[0].label = 2;
    t.axes[1].label = 1;
    float labels[3] = {1.0f, c->label[1], c->label[0]};
    float *y = dl_xmalloc((size_t)c->K * sizeof *y);
    dl_target_build(&t, labels, NULL, y);
    for (int k = 0; k < c->K; k++) assert_float_equal(y[k], c->y[k], TOL);
    free(y);
}

/* Hand-checked: one-hot positions, and a NaN label falls back to one bin. */
static void test_by_hand(void **state)
{
    Case *c = find("onehot_pose_tie");
    assert_int_equal(c->K, 9 * 13);
    float *y = dl_xmalloc((size_t)c->K * sizeof *y);
    dl_target_build(&c->t, c->label, NULL, y);
    /* pitch 22.5 -> 15 (index 5), yaw -7.5 -> -15 (index 5): k = 5*13 + 5 */
    for (int k = 0; k < c->K; k++) assert_true(y[k] == (k == 70 ? 1.0f : 0.0f));

    Case *g = find("age_25.5");
    float nan_label[1] = {NAN};
    DlPlanTarget t = g->t;
    dl_target_build(&t, nan_label, NULL, y);
    double sum = 0;
    for (int k = 0; k < g->K; k++) {
        assert_true(y[k] == 0.0f || y[k] == 1.0f);
        sum += y[k];
    }
    assert_true(sum == 1.0);
    /* the age 25.5 target is symmetric about 25.5 */
    dl_target_build(&g->t, g->label, NULL, y);
    for (int d = 0; d < 20; d++) assert_float_equal(y[25 - d], y[26 + d], 1e-7);
    free(y);
}

/* A per-sample sigma (labels[sigma_label]) gives the same row as that sigma
 * fixed; a given target copies its row; a one-hot target with an ignore value
 * gives an all-zero row for that label. */
static void test_sigma_given_ignore(void **state)
{
    Case *g = find("age_25.5");
    float *y = dl_xmalloc((size_t)g->K * sizeof *y), *z = dl_xmalloc((size_t)g->K * sizeof *z);
    DlPlanTarget t = g->t;
    dl_target_build(&t, g->label, NULL, y);
    t.axes[0].sigma_label = 1;
    float lab2[2] = {g->label[0], t.axes[0].sigma};
    t.axes[0].sigma = 99.0f; /* ignored: the sample's sigma wins */
    dl_target_build(&t, lab2, NULL, z);
    for (int k = 0; k < g->K; k++) assert_float_equal(y[k], z[k], 1e-7);
    lab2[1] = 2 * lab2[1]; /* a wider sigma spreads the mass */
    dl_target_build(&t, lab2, NULL, z);
    assert_true(z[25] < y[25]);

    DlPlanTarget gv = {.kind = DL_TGT_GIVEN, .naxes = 1, .dist = 0};
    float bins[3] = {0, 1, 2}, row[3] = {0.2f, 0.5f, 0.3f}, out[3];
    gv.axes[0] = (DlPlanAxis){.nbins = 3, .bins = bins, .label = -1, .sigma_label = -1};
    dl_target_build(&gv, NULL, row, out);
    assert_memory_equal(out, row, sizeof row);

    DlPlanTarget oh = {.kind = DL_TGT_ONEHOT, .naxes = 1, .dist = -1, .has_ignore = 1, .ignore = -1};
    oh.axes[0] = (DlPlanAxis){.nbins = 3, .bins = bins, .label = 0, .sigma_label = -1};
    float cls = 2;
    dl_target_build(&oh, &cls, NULL, out);
    assert_true(out[0] == 0 && out[1] == 0 && out[2] == 1);
    cls = -1;
    dl_target_build(&oh, &cls, NULL, out);
    assert_true(out[0] == 0 && out[1] == 0 && out[2] == 0);
    free(y), free(z);
}

/* Labels outside their target's bins make a bad sample, unless the target
 * clamps them; an ignore value and a given target pass; a per-sample sigma
 * must be positive and finite. */
static void test_label_range(void **state)
{
    float bins[3] = {0, 50, 116};
    DlPlanTarget t = {.name = "dist", .kind = DL_TGT_GAUSSIAN1D, .naxes = 1, .dist = -1};
    t.axes[0] = (DlPlanAxis){.name = "age", .unit = "years", .nbins = 3, .bins = bins, .sigma = 2, .label = 0,
                             .sigma_label = -1};
    float lab[2] = {116, 1};
    assert_null(dl_target_check_labels(&t, lab));
    float bad[] = {1e9f, -5, NAN, INFINITY};
    for (int i = 0; i < 4; i++) {
        lab[0] = bad[i];
        char *why = dl_target_check_labels(&t, lab);
        assert_non_null(why);
        printf("%s\n", why);
        assert_non_null(strstr(why, "is outside target 'dist''s bins [0, 116] years (clamp = true"));
        free(why);
    }
    t.clamp = 1;
    lab[0] = 1e9f;
    assert_null(dl_target_check_labels(&t, lab));
    assert_true(lab[0] == 116);
    lab[0] = -5;
    assert_null(dl_target_check_labels(&t, lab));
    assert_true(lab[0] == 0);
    lab[0] = NAN; /* never clamped: a NaN has no nearest end */
    char *why = dl_target_check_labels(&t, lab);
    assert_non_null(why);
    free(why);
    lab[0] = 30, lab[1] = 0;
    t.axes[0].sigma_label = 1;
    why = dl_target_check_labels(&t, lab);
    assert_non_null(strstr(why, "sigma 0 of target 'dist' is not a positive number"));
    free(why);

    DlPlanTarget oh = {.name = "cls", .kind = DL_TGT_ONEHOT, .naxes = 1, .dist = -1, .has_ignore = 1, .ignore = 255};
    oh.axes[0] = (DlPlanAxis){.name = "class", .unit = "", .nbins = 3, .bins = bins, .label = 0, .sigma_label = -1};
    float cls = 255;
    assert_null(dl_target_check_labels(&oh, &cls));
    DlPlanTarget gv = {.name = "y", .kind = DL_TGT_GIVEN, .naxes = 1, .dist = 0};
    gv.axes[0] = (DlPlanAxis){.nbins = 3, .bins = bins, .label = -1, .sigma_label = -1};
    assert_null(dl_target_check_labels(&gv, NULL));
}

/* multilabel: 1 for a class present, `difficult` for one present only as
 * difficult objects, 0 absent, normalised; no class at all: a zero row. */
static void test_multilabel(void **state)
{
    float bins[4] = {0, 1, 2, 3};
    DlPlanTarget t = {.name = "y", .kind = DL_TGT_MULTILABEL, .naxes = 1, .dist = 0, .difficult = 0.5f};
    t.axes[0] = (DlPlanAxis){.name = "y", .unit = "", .nbins = 4, .bins = bins, .label = -1, .sigma_label = -1};
    assert_true(dl_target_reads_field(&t));
    float field[4] = {1, -1, 0, 1}, y[4];
    dl_target_build(&t, NULL, field, y);
    assert_float_equal(y[0], 0.4, 1e-7), assert_float_equal(y[1], 0, 0);
    assert_float_equal(y[2], 0.2, 1e-7), assert_float_equal(y[3], 0.4, 1e-7);
    t.difficult = 0; /* difficult-only classes get nothing */
    dl_target_build(&t, NULL, field, y);
    assert_float_equal(y[0], 0.5, 1e-7), assert_float_equal(y[2], 0, 0);
    float none[4] = {-1, -1, -1, -1};
    dl_target_build(&t, NULL, none, y);
    for (int k = 0; k < 4; k++) assert_true(y[k] == 0);
    assert_null(dl_target_check_labels(&t, NULL));
}

/* Every case of tests/numeric/label_map.txt to 1e-6; void rows exactly 0. */
static void test_label_map_fixture(void **state)
{
    (void)state;
    FILE *f = fopen("tests/numeric/label_map.txt", "r");
    assert_non_null(f);
    char tok[64];
    int nmaps = 0;
    while (fscanf(f, "%63s", tok) == 1) {
        if (tok[0] == '#') {
            int c;
            while ((c = fgetc(f)) != '\n' && c != EOF) {}
            continue;
        }
        assert_string_equal(tok, "case");
        char name[64];
        int H, W, K;
        double sigma;
        assert_int_equal(fscanf(f, "%63s %d %d %d %lf", name, &H, &W, &K, &sigma), 5);
        uint8_t *m = dl_xmalloc((size_t)H * W);
        float *y = dl_xmalloc((size_t)H * W * K * sizeof *y);
        assert_int_equal(fscanf(f, "%63s", tok), 1);
        assert_string_equal(tok, "mask");
        for (int p = 0; p < H * W; p++) {
            int v;
            assert_int_equal(fscanf(f, "%d", &v), 1);
            m[p] = (uint8_t)v;
        }
        dl_target_label_map(m, H, W, K, (float)sigma, y);
        assert_int_equal(fscanf(f, "%63s", tok), 1);
        assert_string_equal(tok, "y");
        double worst = 0;
        for (int i = 0; i < H * W * K; i++) {
            double want;
            assert_int_equal(fscanf(f, "%lf", &want), 1);
            worst = fmax(worst, fabs(want - (double)y[i]));
            if (m[i / K] == 255) assert_true(y[i] == 0);
        }
        printf("  label_map %-12s %dx%d K=%d sigma=%g: max abs err %.2e\n", name, H, W, K, sigma, worst);
        assert_true(worst < TOL);
        free(m), free(y);
        nmaps++;
    }
    fclose(f);
    assert_true(nmaps >= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigma_given_ignore),
        cmocka_unit_test(test_fixture),
        cmocka_unit_test(test_label_columns),
        cmocka_unit_test(test_by_hand),
        cmocka_unit_test(test_label_range),
        cmocka_unit_test(test_multilabel),
        cmocka_unit_test(test_label_map_fixture),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
