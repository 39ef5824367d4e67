/* test_metrics.c - the metric table (runtime/metrics.c), hand-computed cases.
 *
 * The pose cases use a 3 x 3 grid: pitch bins {-15, 0, 15}, yaw bins
 * {-30, 0, 30}; joint bin k = 3 * pitch index + yaw index.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include <math.h>

#include "../../runtime/data.h"
#include "../../runtime/ldl_measures.h"

static float age_bins[5] = {0, 1, 2, 3, 4};
static float pitch_bins[3] = {-15, 0, 15};
static float yaw_bins[3] = {-30, 0, 30};

/* A plan with what metrics read: label columns (names and units in the data
 * binding), one target, one head. */
typedef struct MiniPlan {
    DlPlan p;
    DlPlanTarget t;
    DlPlanHead h;
    DlKV kv[8];
} MiniPlan;

static void age_plan(MiniPlan *m)
{
    memset(m, 0, sizeof *m);
    m->t = (DlPlanTarget){.name = "dist", .kind = DL_TGT_GAUSSIAN1D, .naxes = 1, .dist = -1};
    m->t.axes[0] = (DlPlanAxis){.name = "age", .unit = "years", .nbins = 5, .bins = age_bins, .sigma = 1, .label = 0,
                                .sigma_label = -1};
    m->h = (DlPlanHead){"net", 5, 1};
    m->kv[0] = (DlKV){"label.0", "age"}, m->kv[1] = (DlKV){"label.0.unit", "years"};
    m->p = (DlPlan){.nlabels = 1, .targets = &m->t, .ntargets = 1, .heads = &m->h, .nheads = 1, .data = m->kv, .ndata = 2};
}

/* Axes read label columns 1 and 2 of [B,3] rows (column 0: something else). */
static void pose_plan(MiniPlan *m)
{
    memset(m, 0, sizeof *m);
    m->t = (DlPlanTarget){.name = "dist", .kind = DL_TGT_GAUSSIAN2D, .naxes = 2, .dist = -1};
    m->t.axes[0] = (DlPlanAxis){.name = "pitch", .unit = "degrees", .nbins = 3, .bins = pitch_bins, .sigma = 15,
                                .label = 1, .sigma_label = -1};
    m->t.axes[1] = (DlPlanAxis){.name = "yaw", .unit = "degrees", .nbins = 3, .bins = yaw_bins, .sigma = 15,
                                .label = 2, .sigma_label = -1};
    m->h = (DlPlanHead){"net", 9, 1};
    m->kv[0] = (DlKV){"label.0", "other"}, m->kv[1] = (DlKV){"label.0.unit", ""};
    m->kv[2] = (DlKV){"label.1", "pitch"}, m->kv[3] = (DlKV){"label.1.unit", "degrees"};
    m->kv[4] = (DlKV){"label.2", "yaw"}, m->kv[5] = (DlKV){"label.2.unit", "degrees"};
    m->p = (DlPlan){.nlabels = 3, .targets = &m->t, .ntargets = 1, .heads = &m->h, .nheads = 1, .data = m->kv, .ndata = 6};
}

static void add(DlMetricAcc *m, const MiniPlan *mp, const DlPlanMetric *s, const float *probs, const float *expect,
                const float *labels, const float *target, int B)
{
    DlMetricRows r = {probs, expect, labels, target, NULL, NULL};
    dl_metric_add(m, &mp->p, s, &r, B);
}

static void test_mae_age(void **state)
{
    MiniPlan mp;
    age_plan(&mp);
    DlPlanMetric mae = {.name = "mae", .kind = DL_MET_MAE, .head = 0, .target = 0, .ncols = 1, .cols = {0}, .sigma_col = -1};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    char buf[128];
    dl_metric_format(&m, &mp.p, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae age n/a");
    /* |2.5 - 3| + |1 - 3| = 2.5 over two samples, then |4 - 0| = 4: 6.5 / 3 */
    float expect[3] = {2.5f, 1.0f, 4.0f}, labels[3] = {3, 3, 0};
    add(&m, &mp, &mae, NULL, expect, labels, NULL, 2);
    add(&m, &mp, &mae, NULL, expect + 2, labels + 2, NULL, 1);
    assert_int_equal(m.n, 3);
    assert_float_equal(m.sum[0], 6.5, 1e-9);
    dl_metric_format(&m, &mp.p, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae age 2.17 years");
    DlMetricValue v[4];
    assert_int_equal(dl_metric_values(&m, &mp.p, &mae, v, 4), 1);
    assert_string_equal(v[0].name, "mae_age");
    assert_string_equal(v[0].unit, "years");
    /* a unit-less label; a short buffer is cut, not overrun */
    mp.kv[1].val = "";
    dl_metric_format(&m, &mp.p, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae age 2.1667");
    dl_metric_format(&m, &mp.p, &mae, buf, 8);
    assert_string_equal(buf, "mae age");
}

static void test_mae_pose(void **state)
{
    MiniPlan mp;
    pose_plan(&mp);
    DlPlanMetric mae = {.name = "mae", .kind = DL_MET_MAE, .head = 0, .target = 0, .ncols = 2, .cols = {1, 2}, .sigma_col = -1};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    /* expect [B,2] (pitch, yaw); labels [B,3] (other, pitch, yaw) */
    float expect[4] = {1.5f, -20.0f, -14.0f, 33.0f};
    float labels[6] = {99, 0, -30, 99, -15, 30};
    add(&m, &mp, &mae, NULL, expect, labels, NULL, 2);
    /* pitch: 1.5 + 1 = 2.5 -> 1.25; yaw: 10 + 3 = 13 -> 6.5 */
    char buf[128];
    dl_metric_format(&m, &mp.p, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae pitch 1.25 degrees yaw 6.50 degrees");
}

/* Four samples (probs over the 9 joint bins; labels pitch, yaw):
 *  A  0.4 at (-15,-30), 0.3 at (0,0), 0.3 at (0,30); label (0,-30)
 *     marginals: pitch {0.4, 0.6, 0} -> 0; yaw {0.4, 0.3, 0.3} -> -30
 *     (the joint arg-max (-15,-30) would be wrong on pitch: marginals matter)
 *  B  1 at (15,30); label (14,10): pitch nearest 15, yaw nearest 0
 *  C  uniform 1/9: marginals tie, arg-max the first bin (-15,-30); label (-8,-16)
 *  D  1 at (0,0); label (9,14): pitch nearest 15, yaw nearest 0
 *            tolerance 0 (exact bin)       tolerance 15
 *       pitch  yaw   joint          pitch        yaw          joint
 *  A    hit    hit   hit            |0-0| hit    |-30+30| hit hit
 *  B    hit    miss  miss           |15-14| hit  |30-10| miss miss
 *  C    hit    hit   hit            |-15+8| hit  |-30+16| hit hit
 *  D    miss   hit   miss           |0-9| hit    |0-14| hit   hit
 *  =>   75%    75%   50%            100%         75%          75%        */
static void test_accuracy(void **state)
{
    MiniPlan mp;
    pose_plan(&mp);
    float probs[4 * 9] = {0};
    probs[0] = 0.4f, probs[4] = 0.3f, probs[5] = 0.3f;  /* A */
    probs[9 + 8] = 1.0f;                                /* B */
    for (int k = 0; k < 9; k++) probs[18 + k] = 1.0f / 9; /* C */
    probs[27 + 4] = 1.0f;                               /* D */
    float labels[12] = {0, 0, -30, 0, 14, 10, 0, -8, -16, 0, 9, 14};
    char buf[128];

    DlPlanMetric acc = {.name = "accuracy", .kind = DL_MET_ACCURACY, .head = 0, .target = 0, .sigma_col = -1};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    add(&m, &mp, &acc, probs, NULL, labels, NULL, 4);
    assert_int_equal(m.n, 4);
    assert_true(m.sum[0] == 3 && m.sum[1] == 3 && m.sum[2] == 2);
    dl_metric_format(&m, &mp.p, &acc, buf, sizeof buf);
    assert_string_equal(buf, "accuracy pitch 75.0% yaw 75.0% joint 50.0%");

    DlPlanMetric within = {.name = "within15", .kind = DL_MET_ACCURACY, .head = 0, .target = 0, .tolerance = 15,
                           .sigma_col = -1};
    memset(&m, 0, sizeof m);
    add(&m, &mp, &within, probs, NULL, labels, NULL, 2); /* in two batches */
    add(&m, &mp, &within, probs + 18, NULL, labels + 6, NULL, 2);
    dl_metric_format(&m, &mp.p, &within, buf, sizeof buf);
    assert_string_equal(buf, "within15 pitch 100.0% yaw 75.0% joint 75.0%");
}

/* One axis: no "joint"; a label between bins counts for its nearest bin only. */
static void test_accuracy_1d(void **state)
{
    MiniPlan mp;
    age_plan(&mp);
    DlPlanMetric acc = {.name = "accuracy", .kind = DL_MET_ACCURACY, .head = 0, .target = 0, .sigma_col = -1};
    float probs[2 * 5] = {0, 0.2f, 0.5f, 0.3f, 0, /* arg-max 2 */ 0, 0, 0.1f, 0.6f, 0.3f /* arg-max 3 */};
    float labels[2] = {2.4f, 2.4f}; /* nearest bin 2: first right, second wrong */
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    add(&m, &mp, &acc, probs, NULL, labels, NULL, 2);
    char buf[128];
    dl_metric_format(&m, &mp.p, &acc, buf, sizeof buf);
    assert_string_equal(buf, "accuracy age 50.0%");
}

/* top1: arg-max bin index against a class label; eps_error with a fixed and a
 * per-sample sigma; kl and intersection through the metric table equal the
 * measures module's (checked against numpy in test_ldl_measures). */
static void test_top1_eps_ldl(void **state)
{
    MiniPlan mp;
    age_plan(&mp);
    mp.p.nlabels = 2; /* columns: age, sigma */
    float probs[2 * 5] = {0, 0.2f, 0.5f, 0.3f, 0, 0.1f, 0.1f, 0.1f, 0.6f, 0.1f};
    float labels[4] = {2, 1.5f, 2, 3};
    DlPlanMetric top1 = {.name = "top1", .kind = DL_MET_TOP1, .head = 0, .target = -1, .ncols = 1, .cols = {0}, .sigma_col = -1};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    add(&m, &mp, &top1, probs, NULL, labels, NULL, 2);
    assert_true(m.sum[0] == 1); /* arg-max 2 == 2; arg-max 3 != 2 */
    char buf[128];
    dl_metric_format(&m, &mp.p, &top1, buf, sizeof buf);
    assert_string_equal(buf, "top1 50.0%");

    float expect[2] = {3.0f, 2.0f};
    DlPlanMetric eps = {.name = "eps", .kind = DL_MET_EPS_ERROR, .head = 0, .target = 0, .ncols = 1, .cols = {0},
                        .sigma = 2, .sigma_col = -1};
    memset(&m, 0, sizeof m);
    add(&m, &mp, &eps, probs, expect, labels, NULL, 2);
    /* (1 - exp(-1/8) + 0) / 2 */
    assert_float_equal(m.sum[0] / m.n, (1 - exp(-1.0 / 8)) / 2, 1e-12);
    eps.sigma_col = 1; /* sigma 1.5 and 3 per sample */
    labels[2] = 1; /* second sample: |2 - 1| with sigma 3 */
    memset(&m, 0, sizeof m);
    add(&m, &mp, &eps, probs, expect, labels, NULL, 2);
    assert_float_equal(m.sum[0], (1 - exp(-1.0 / (2 * 1.5 * 1.5))) + (1 - exp(-1.0 / 18)), 1e-12);

    float target[2 * 5] = {0, 0.1f, 0.6f, 0.3f, 0, 0.2f, 0.2f, 0.2f, 0.2f, 0.2f};
    DlPlanMetric kl = {.name = "kl", .kind = DL_MET_KL, .head = 0, .target = 0, .sigma_col = -1};
    DlPlanMetric in = {.name = "int", .kind = DL_MET_INTERSECTION, .head = 0, .target = 0, .sigma_col = -1};
    assert_true(dl_metric_needs_target(&kl) && !dl_metric_needs_target(&top1));
    DlMetricAcc mk, mi;
    memset(&mk, 0, sizeof mk), memset(&mi, 0, sizeof mi);
    add(&mk, &mp, &kl, probs, NULL, labels, target, 2);
    add(&mi, &mp, &in, probs, NULL, labels, target, 2);
    double want_kl = (dl_ldl_measure(DL_LDL_KL, probs, target, 5) + dl_ldl_measure(DL_LDL_KL, probs + 5, target + 5, 5)) / 2;
    double want_in = (dl_ldl_measure(DL_LDL_INTERSECTION, probs, target, 5) +
                      dl_ldl_measure(DL_LDL_INTERSECTION, probs + 5, target + 5, 5)) / 2;
    assert_float_equal(mk.sum[0] / mk.n, want_kl, 1e-12);
    assert_float_equal(mi.sum[0] / mi.n, want_in, 1e-12);
    assert_true(want_kl > 0.05 && want_in > 0.5 && want_in < 1);
}

/* mean_ap over a pass fed in two batches: per class, AP of the probabilities
 * against the field's presence (1, 0 not counted, -1), averaged over the
 * classes with a positive.  By hand, 3 classes, 4 images:
 *   class 0: scores .9 .1 .8 .2, truth 1 -1 1 -1: both positives first, AP 1
 *   class 1: scores .05 .6 .1 .7, truth -1 1 -1 0: ranked .7 (not counted),
 *            .6 (a positive): AP 1
 *   class 2: scores .05 .3 .1 .1, truth -1 -1 -1 1: a negative at .3, then
 *            the positive tied with a negative at .1 (one threshold:
 *            precision 1/3 at recall 1; the interpolated curve is 1/3
 *            everywhere): AP 1/3
 *   mean (1 + 1 + 1/3) / 3. */
static void test_mean_ap(void **state)
{
    MiniPlan mp;
    memset(&mp, 0, sizeof mp);
    float bins[3] = {0, 1, 2};
    mp.t = (DlPlanTarget){.name = "y", .kind = DL_TGT_MULTILABEL, .naxes = 1, .dist = 0, .difficult = 0.5f};
    mp.t.axes[0] = (DlPlanAxis){.name = "y", .unit = "", .nbins = 3, .bins = bins, .label = -1, .sigma_label = -1};
    mp.h = (DlPlanHead){"net", 3, 1};
    mp.p = (DlPlan){.targets = &mp.t, .ntargets = 1, .heads = &mp.h, .nheads = 1};
    DlPlanMetric map = {.name = "map", .kind = DL_MET_MEAN_AP, .head = 0, .target = 0, .sigma_col = -1};
    assert_true(dl_metric_needs_field(&map) && !dl_metric_needs_target(&map));
    float probs[12] = {.9f, .05f, .05f, .1f, .6f, .3f, .8f, .1f, .1f, .2f, .7f, .1f};
    float field[12] = {1, -1, -1, -1, 1, -1, 1, -1, -1, -1, 0, 1};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    DlMetricRows r = {probs, NULL, NULL, NULL, field, NULL};
    dl_metric_add(&m, &mp.p, &map, &r, 3);
    DlMetricRows r2 = {probs + 9, NULL, NULL, NULL, field + 9, NULL};
    dl_metric_add(&m, &mp.p, &map, &r2, 1);
    DlMetricValue v[2];
    assert_int_equal(dl_metric_values(&m, &mp.p, &map, v, 2), 1);
    assert_string_equal(v[0].name, "map");
    assert_string_equal(v[0].unit, "%");
    assert_float_equal(v[0].value, (2.0 + 1.0 / 3) / 3, 1e-12);
    char buf[64];
    dl_metric_format(&m, &mp.p, &map, buf, sizeof buf);
    assert_string_equal(buf, "map 77.8%");
    dl_metric_reset(&m, 1);
    assert_null(m.scores);
    assert_int_equal(m.n, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mae_age),
        cmocka_unit_test(test_mae_pose),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_accuracy_1d),
        cmocka_unit_test(test_top1_eps_ldl),
        cmocka_unit_test(test_mean_ap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
