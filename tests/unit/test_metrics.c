/* test_metrics.c - MAE and accuracy (runtime/metrics.c), hand-computed cases.
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

#include "../../runtime/data.h"

static float age_bins[5] = {0, 1, 2, 3, 4};
static float pitch_bins[3] = {-15, 0, 15};
static float yaw_bins[3] = {-30, 0, 30};

static DlPlanTarget age_target(void)
{
    DlPlanTarget t = {.kind = "gaussian1d", .naxes = 1};
    t.axes[0] = (DlPlanAxis){.name = "age", .unit = "years", .nbins = 5, .bins = age_bins, .sigma = 1, .label = 0};
    return t;
}

/* Axes read label columns 1 and 2 of [B,3] rows (column 0: something else). */
static DlPlanTarget pose_target(void)
{
    DlPlanTarget t = {.kind = "gaussian2d", .naxes = 2};
    t.axes[0] = (DlPlanAxis){.name = "pitch", .unit = "degrees", .nbins = 3, .bins = pitch_bins, .sigma = 15, .label = 1};
    t.axes[1] = (DlPlanAxis){.name = "yaw", .unit = "degrees", .nbins = 3, .bins = yaw_bins, .sigma = 15, .label = 2};
    return t;
}

static void test_mae_age(void **state)
{
    DlPlanTarget t = age_target();
    DlPlanMetric mae = {.name = "mae", .kind = "mae"};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    char buf[128];
    dl_metric_format(&m, &t, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae age n/a");
    /* |2.5 - 3| + |1 - 3| = 2.5 over two samples, then |4 - 0| = 4: 6.5 / 3 */
    float expect[3] = {2.5f, 1.0f, 4.0f}, labels[3] = {3, 3, 0};
    dl_metric_add(&m, &t, &mae, NULL, expect, labels, 2);
    dl_metric_add(&m, &t, &mae, NULL, expect + 2, labels + 2, 1);
    assert_int_equal(m.n, 3);
    assert_float_equal(m.abs_err[0], 6.5, 1e-9);
    dl_metric_format(&m, &t, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae age 2.17 years");
    /* a unit-less axis; a short buffer is cut, not overrun */
    t.axes[0].unit = "";
    dl_metric_format(&m, &t, &mae, buf, sizeof buf);
    assert_string_equal(buf, "mae age 2.17");
    dl_metric_format(&m, &t, &mae, buf, 8);
    assert_string_equal(buf, "mae age");
}

static void test_mae_pose(void **state)
{
    DlPlanTarget t = pose_target();
    DlPlanMetric mae = {.name = "mae", .kind = "mae"};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    m.label_stride = 3;
    /* expect [B,2] (pitch, yaw); labels [B,3] (other, pitch, yaw) */
    float expect[4] = {1.5f, -20.0f, -14.0f, 33.0f};
    float labels[6] = {99, 0, -30, 99, -15, 30};
    dl_metric_add(&m, &t, &mae, NULL, expect, labels, 2);
    /* pitch: 1.5 + 1 = 2.5 -> 1.25; yaw: 10 + 3 = 13 -> 6.5 */
    char buf[128];
    dl_metric_format(&m, &t, &mae, buf, sizeof buf);
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
    DlPlanTarget t = pose_target();
    float probs[4 * 9] = {0};
    probs[0] = 0.4f, probs[4] = 0.3f, probs[5] = 0.3f;  /* A */
    probs[9 + 8] = 1.0f;                                /* B */
    for (int k = 0; k < 9; k++) probs[18 + k] = 1.0f / 9; /* C */
    probs[27 + 4] = 1.0f;                               /* D */
    float labels[12] = {0, 0, -30, 0, 14, 10, 0, -8, -16, 0, 9, 14};
    char buf[128];

    DlPlanMetric acc = {.name = "accuracy", .kind = "accuracy", .tolerance = 0};
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    m.label_stride = 3;
    dl_metric_add(&m, &t, &acc, probs, NULL, labels, 4);
    assert_int_equal(m.n, 4);
    assert_int_equal(m.hit[0], 3);
    assert_int_equal(m.hit[1], 3);
    assert_int_equal(m.hit_joint, 2);
    dl_metric_format(&m, &t, &acc, buf, sizeof buf);
    assert_string_equal(buf, "accuracy pitch 75.0% yaw 75.0% joint 50.0%");

    DlPlanMetric within = {.name = "within15", .kind = "accuracy", .tolerance = 15};
    memset(&m, 0, sizeof m);
    m.label_stride = 3;
    dl_metric_add(&m, &t, &within, probs, NULL, labels, 2);      /* in two batches */
    dl_metric_add(&m, &t, &within, probs + 18, NULL, labels + 6, 2);
    dl_metric_format(&m, &t, &within, buf, sizeof buf);
    assert_string_equal(buf, "within15 pitch 100.0% yaw 75.0% joint 75.0%");

    /* label_stride 0: derived as max axes[].label + 1 = 3, the same */
    memset(&m, 0, sizeof m);
    dl_metric_add(&m, &t, &acc, probs, NULL, labels, 4);
    assert_int_equal(m.hit_joint, 2);
}

/* One axis: no "joint"; a label between bins counts for its nearest bin only. */
static void test_accuracy_1d(void **state)
{
    DlPlanTarget t = age_target();
    DlPlanMetric acc = {.name = "accuracy", .kind = "accuracy"};
    float probs[2 * 5] = {0, 0.2f, 0.5f, 0.3f, 0, /* arg-max 2 */ 0, 0, 0.1f, 0.6f, 0.3f /* arg-max 3 */};
    float labels[2] = {2.4f, 2.4f}; /* nearest bin 2: first right, second wrong */
    DlMetricAcc m;
    memset(&m, 0, sizeof m);
    dl_metric_add(&m, &t, &acc, probs, NULL, labels, 2);
    char buf[128];
    dl_metric_format(&m, &t, &acc, buf, sizeof buf);
    assert_string_equal(buf, "accuracy age 50.0%");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mae_age),
        cmocka_unit_test(test_mae_pose),
        cmocka_unit_test(test_accuracy),
        cmocka_unit_test(test_accuracy_1d),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
