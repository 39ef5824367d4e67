/* test_seg_metrics.c - runtime/seg_metrics.c against scikit-learn and numpy, and by hand.
 *
 * tests/numeric/voc_metrics.txt is written by tests/numeric/make_voc_metric_fixture.py:
 * 12 one-class AP problems (ties, difficult samples, all positive, one
 * positive, n up to 1000) with scikit-learn's average_precision_score
 * (DL_AP_STEP) and a numpy transcription of the VOC devkit's VOCap.m
 * (DL_AP_VOC); a 60 x 20 mAP problem with a class that has no sample and one
 * that has only difficult ones (skipped: 18 classes used); three label maps
 * with void pixels and quantised class probabilities (tied rows), with the
 * arg-max, confusion matrix, per-class IoU, mIoU, pixel accuracy and mean
 * class accuracy.  Every value is checked to 1e-9 absolute, integers exactly.
 * By hand: small AP curves, the NaN and degenerate cases, an arg-max with
 * ties and NaN, a 3-class confusion matrix, the refusals of bad K and of a
 * prediction out of range.
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
#include "../ref/fixture_text.h"
#include "../../runtime/seg_metrics.h"

#define FIXTURE "tests/numeric/voc_metrics.txt"
#define TOL 1e-9
#define MAXCASES 64
#define MAXIMG 8

typedef struct ApCase {
    int n;
    float *score;
    int8_t *gt;
    double voc, step;
} ApCase;

static struct {
    int nap;
    ApCase ap[MAXCASES];
    int N, C;
    float *S;
    int8_t *G;
    double *apv, *aps, mapv, maps;
    int nused;
    int K, nimg;
    int64_t npix[MAXIMG];
    uint8_t *gt[MAXIMG], *argmax[MAXIMG];
    float *prob[MAXIMG];
    double *conf, *iou, *scores;
} fx;

static double *section(char **p, const char *name, long want, long *count)
{
    return fixture_section(p, FIXTURE, name, want, count);
}

static int read_int(char **p, const char *name, int *out)
{
    double *v = section(p, name, 1, NULL);
    if (!v) return 0;
    *out = (int)v[0];
    free(v);
    return 1;
}

static float *read_floats(char **p, const char *name, long n)
{
    double *v = section(p, name, n, NULL);
    if (!v) return NULL;
    float *f = dl_xcalloc((size_t)n, sizeof *f);
    for (long i = 0; i < n; i++) f[i] = (float)v[i];
    free(v);
    return f;
}

static int8_t *read_i8(char **p, const char *name, long n)
{
    double *v = section(p, name, n, NULL);
    if (!v) return NULL;
    int8_t *f = dl_xcalloc((size_t)n, 1);
    for (long i = 0; i < n; i++) f[i] = (int8_t)v[i];
    free(v);
    return f;
}

static uint8_t *read_u8(char **p, const char *name, long n)
{
    double *v = section(p, name, n, NULL);
    if (!v) return NULL;
    uint8_t *f = dl_xcalloc((size_t)n, 1);
    for (long i = 0; i < n; i++) f[i] = (uint8_t)v[i];
    free(v);
    return f;
}

static int read_double(char **p, const char *name, double *out)
{
    double *v = section(p, name, 1, NULL);
    if (!v) return 0;
    *out = v[0];
    free(v);
    return 1;
}

static int load_fixture(void **state)
{
    DlBuf text = {0};
    if (fixture_read_text(FIXTURE, &text)) return -1;
    char *p = text.s;
    int ok = read_int(&p, "nap", &fx.nap) && fx.nap > 0 && fx.nap <= MAXCASES;
    for (int i = 0; ok && i < fx.nap; i++) {
        ApCase *c = &fx.ap[i];
        ok = read_int(&p, "n", &c->n) && c->n > 0 && (c->score = read_floats(&p, "score", c->n)) &&
             (c->gt = read_i8(&p, "gt", c->n)) && read_double(&p, "ap_voc", &c->voc) &&
             read_double(&p, "ap_step", &c->step);
    }
    ok = ok && read_int(&p, "N", &fx.N) && read_int(&p, "C", &fx.C) && fx.N > 0 && fx.C > 0 &&
         (fx.S = read_floats(&p, "score", (long)fx.N * fx.C)) && (fx.G = read_i8(&p, "gt", (long)fx.N * fx.C)) &&
         (fx.apv = section(&p, "ap_voc", fx.C, NULL)) && (fx.aps = section(&p, "ap_step", fx.C, NULL)) &&
         read_double(&p, "map_voc", &fx.mapv) && read_double(&p, "map_step", &fx.maps) &&
         read_int(&p, "nused", &fx.nused);
    ok = ok && read_int(&p, "K", &fx.K) && read_int(&p, "nimg", &fx.nimg) && fx.K > 0 && fx.nimg > 0 &&
         fx.nimg <= MAXIMG;
    for (int i = 0; ok && i < fx.nimg; i++) {
        int n = 0;
        ok = read_int(&p, "npix", &n) && n > 0 && (fx.gt[i] = read_u8(&p, "gt", n)) &&
             (fx.prob[i] = read_floats(&p, "prob", (long)n * fx.K)) && (fx.argmax[i] = read_u8(&p, "argmax", n));
        fx.npix[i] = n;
    }
    ok = ok && (fx.conf = section(&p, "conf", (long)fx.K * fx.K, NULL)) && (fx.iou = section(&p, "iou", fx.K, NULL)) &&
         (fx.scores = section(&p, "scores", 6, NULL));
    dl_buf_free(&text);
    return ok ? 0 : -1;
}

static int free_fixture(void **state)
{
    for (int i = 0; i < MAXCASES; i++) free(fx.ap[i].score), free(fx.ap[i].gt);
    for (int i = 0; i < MAXIMG; i++) free(fx.gt[i]), free(fx.prob[i]), free(fx.argmax[i]);
    free(fx.S), free(fx.G), free(fx.apv), free(fx.aps), free(fx.conf), free(fx.iou), free(fx.scores);
    return 0;
}

/* Running max error of one quantity. */
typedef struct Err {
    double maxabs;
    int n, bad;
} Err;

/* |got - want| <= TOL, or both NaN. */
static void check(Err *e, const char *what, int i, double got, double want)
{
    double d = isnan(got) && isnan(want) ? 0 : fabs(got - want);
    if (isnan(d)) d = INFINITY;
    e->maxabs = fmax(e->maxabs, d);
    e->n++;
    if (!(d <= TOL) && e->bad++ < 5) fprintf(stderr, "  %s, case %d: got %.17g, expected %.17g\n", what, i, got, want);
}

static int report(const char *what, const Err *e)
{
    printf("  %-28s %4d values: max abs diff %.3e%s\n", what, e->n, e->maxabs, e->bad ? "  FAIL" : "");
    return e->bad == 0;
}

/* ---- against the fixture --------------------------------------------------------- */

static void test_ap_matches_sklearn_and_vocap(void **state)
{
    Err voc = {0}, step = {0};
    for (int i = 0; i < fx.nap; i++) {
        const ApCase *c = &fx.ap[i];
        check(&voc, "ap voc", i, dl_ap(DL_AP_VOC, c->score, c->gt, c->n), c->voc);
        check(&step, "ap step", i, dl_ap(DL_AP_STEP, c->score, c->gt, c->n), c->step);
    }
    int ok = report("AP VOC (numpy VOCap)", &voc);
    ok &= report("AP step (sklearn)", &step);
    assert_true(ok);
}

static void test_map_matches(void **state)
{
    double *ap = dl_xmalloc((size_t)fx.C * sizeof *ap);
    Err e = {0};
    int nused = -1;
    for (int kind = 0; kind < 2; kind++) {
        double m = dl_map(kind ? DL_AP_STEP : DL_AP_VOC, fx.S, fx.G, fx.N, fx.C, ap, &nused);
        assert_int_equal(nused, fx.nused);
        for (int c = 0; c < fx.C; c++) check(&e, kind ? "class AP step" : "class AP voc", c, ap[c], (kind ? fx.aps : fx.apv)[c]);
        check(&e, kind ? "mAP step" : "mAP voc", 0, m, kind ? fx.maps : fx.mapv);
        /* each class's AP is dl_ap of its column */
        for (int c = 0; c < fx.C; c++) {
            float *s = dl_xmalloc((size_t)fx.N * sizeof *s);
            int8_t *g = dl_xmalloc((size_t)fx.N);
            for (int i = 0; i < fx.N; i++) s[i] = fx.S[i * fx.C + c], g[i] = fx.G[i * fx.C + c];
            double a = dl_ap(kind ? DL_AP_STEP : DL_AP_VOC, s, g, fx.N);
            assert_true(a == ap[c] || (isnan(a) && isnan(ap[c])));
            free(s), free(g);
        }
    }
    char what[64];
    snprintf(what, sizeof what, "mAP %dx%d (%d classes used)", fx.N, fx.C, fx.nused);
    assert_true(report(what, &e));
    /* NULL outputs are allowed */
    assert_true(fabs(dl_map(DL_AP_VOC, fx.S, fx.G, fx.N, fx.C, NULL, NULL) - fx.mapv) <= TOL);
    free(ap);
}

static void test_seg_matches(void **state)
{
    int K = fx.K;
    int64_t *conf = dl_xcalloc((size_t)K * K, sizeof *conf), total = 0;
    for (int i = 0; i < fx.nimg; i++) {
        uint8_t *pred = dl_xmalloc((size_t)fx.npix[i]);
        assert_int_equal(dl_argmax_rows(fx.prob[i], fx.npix[i], K, pred), 0);
        assert_memory_equal(pred, fx.argmax[i], (size_t)fx.npix[i]);
        int64_t bad = 0, n = dl_confusion_add(conf, K, fx.gt[i], pred, fx.npix[i], &bad);
        assert_true(n > 0);
        assert_int_equal(bad, -1);
        total += n;
        free(pred);
    }
    for (int k = 0; k < K * K; k++) assert_true((double)conf[k] == fx.conf[k]);
    double *iou = dl_xmalloc((size_t)K * sizeof *iou);
    DlSegScores s;
    dl_seg_scores(conf, K, iou, &s);
    Err e = {0};
    for (int c = 0; c < K; c++) check(&e, "iou", c, iou[c], fx.iou[c]);
    check(&e, "miou", 0, s.miou, fx.scores[0]);
    check(&e, "pixel accuracy", 0, s.pixel_acc, fx.scores[1]);
    check(&e, "mean class accuracy", 0, s.mean_class_acc, fx.scores[2]);
    assert_int_equal(s.nclasses_iou, (int)fx.scores[3]);
    assert_int_equal(s.nclasses_acc, (int)fx.scores[4]);
    assert_int_equal(s.counted, (int64_t)fx.scores[5]);
    assert_int_equal(s.counted, total);
    char what[80];
    snprintf(what, sizeof what, "segmentation (%lld px, %d IoU classes)", (long long)s.counted, s.nclasses_iou);
    assert_true(report(what, &e));
    dl_seg_scores(conf, K, NULL, &s); /* iou may be NULL */
    assert_true(fabs(s.miou - fx.scores[0]) <= TOL);
    free(iou);
    free(conf);
}

/* ---- by hand ------------------------------------------------------------------------ */

static void test_ap_by_hand(void **state)
{
    /* + - + - -: points (1/2, 1), (1/2, 1/2), (1, 2/3), (1, 1/2), (1, 2/5):
     * step 1/2 * 1 + 1/2 * 2/3 = 5/6; precision already falls: VOC the same */
    const float s1[] = {0.9f, 0.8f, 0.7f, 0.6f, 0.5f};
    const int8_t g1[] = {1, -1, 1, -1, -1};
    assert_float_equal(dl_ap(DL_AP_STEP, s1, g1, 5), 5.0 / 6, 1e-15);
    assert_float_equal(dl_ap(DL_AP_VOC, s1, g1, 5), 5.0 / 6, 1e-15);
    /* - + +: step 1/2 * 1/2 + 1/2 * 2/3 = 7/12; VOC raises the first to 2/3: 2/3 */
    const float s2[] = {3, 2, 1};
    const int8_t g2[] = {-1, 1, 1};
    assert_float_equal(dl_ap(DL_AP_STEP, s2, g2, 3), 7.0 / 12, 1e-15);
    assert_float_equal(dl_ap(DL_AP_VOC, s2, g2, 3), 2.0 / 3, 1e-15);
    /* the order of the samples does not matter, ties included: the tie at 2
     * (one +, one -) is one point (1/2, 1/2), then (1, 2/3) */
    const float s3[] = {2, 1, 2}, s3b[] = {2, 2, 1};
    const int8_t g3[] = {-1, 1, 1}, g3b[] = {1, -1, 1};
    assert_float_equal(dl_ap(DL_AP_STEP, s3, g3, 3), 0.5 * 0.5 + 0.5 * 2.0 / 3, 1e-15);
    assert_true(dl_ap(DL_AP_STEP, s3, g3, 3) == dl_ap(DL_AP_STEP, s3b, g3b, 3));
    assert_float_equal(dl_ap(DL_AP_VOC, s3, g3, 3), 2.0 / 3, 1e-15);
    assert_true(dl_ap(DL_AP_VOC, s3, g3, 3) == dl_ap(DL_AP_VOC, s3b, g3b, 3));
    /* difficult samples are left out, wherever they rank */
    const float s4[] = {9, 0.9f, 8, 0.8f, 0.7f};
    const int8_t g4[] = {0, 1, 0, -1, 1};
    assert_float_equal(dl_ap(DL_AP_STEP, s4, g4, 5), 0.5 + 0.5 * 2.0 / 3, 1e-15);
    /* all positive: 1; no positive, no sample, NaN score, bad kind: NaN */
    const int8_t pos[] = {1, 1, 1}, neg[] = {-1, 0, -1};
    assert_float_equal(dl_ap(DL_AP_VOC, s2, pos, 3), 1.0, 0);
    assert_float_equal(dl_ap(DL_AP_STEP, s2, pos, 3), 1.0, 0);
    assert_true(isnan(dl_ap(DL_AP_VOC, s2, neg, 3)));
    assert_true(isnan(dl_ap(DL_AP_STEP, s2, neg, 3)));
    assert_true(isnan(dl_ap(DL_AP_VOC, s2, g2, 0)));
    assert_true(isnan(dl_ap((DlApKind)7, s2, g2, 3)));
    const float snan[] = {1, NAN, 0};
    assert_true(isnan(dl_ap(DL_AP_VOC, snan, g2, 3)));
    const int8_t gskip[] = {1, 0, -1}; /* the NaN sample is difficult: left out */
    assert_float_equal(dl_ap(DL_AP_VOC, snan, gskip, 3), 1.0, 0);
}

static void test_map_by_hand(void **state)
{
    /* 3 samples x 3 classes: class 0 perfect (1), class 1 no positive
     * (skipped), class 2 "- + +" (VOC 2/3) */
    const float s[] = {0.9f, 0.1f, 3, 0.2f, 0.5f, 2, 0.1f, 0.7f, 1};
    const int8_t g[] = {1, -1, -1, -1, 0, 1, -1, -1, 1};
    double ap[3];
    int used = 0;
    assert_float_equal(dl_map(DL_AP_VOC, s, g, 3, 3, ap, &used), (1 + 2.0 / 3) / 2, 1e-15);
    assert_int_equal(used, 2);
    assert_float_equal(ap[0], 1, 0);
    assert_true(isnan(ap[1]));
    assert_float_equal(ap[2], 2.0 / 3, 1e-15);
    /* no class with a positive: NaN, 0 used */
    const int8_t none[] = {-1, -1, 0, 0, -1, -1, -1, 0, -1};
    assert_true(isnan(dl_map(DL_AP_STEP, s, none, 3, 3, ap, &used)));
    assert_int_equal(used, 0);
}

static void test_argmax_by_hand(void **state)
{
    const float p[] = {
        0.2f, 0.5f, 0.3f,  /* 1 */
        0.4f, 0.2f, 0.4f,  /* tie 0 and 2: 0 */
        0.1f, 0.45f, 0.45f, /* tie 1 and 2: 1 */
        0, 0, 0,           /* all equal: 0 */
        0.1f, NAN, 0.9f,   /* NaN is the largest (numpy): 1 */
        -INFINITY, -1, -2, /* 1 */
    };
    uint8_t out[6] = {99, 99, 99, 99, 99, 99};
    assert_int_equal(dl_argmax_rows(p, 6, 3, out), 0);
    const uint8_t want[] = {1, 0, 1, 0, 1, 1};
    assert_memory_equal(out, want, 6);
    assert_int_equal(dl_argmax_rows(p, 6, 0, out), -1);
    assert_int_equal(dl_argmax_rows(p, 1, 256, out), -1);
    assert_memory_equal(out, want, 6); /* untouched */
}

static void test_confusion_by_hand(void **state)
{
    /* K = 3; pixels (gt, pred): (0,0) (0,1) (1,1) (1,1) (2,1) (255,2) (7,0) */
    const uint8_t gt[] = {0, 0, 1, 1, 2, 255, 7}, pred[] = {0, 1, 1, 1, 1, 2, 0};
    int64_t conf[9] = {0};
    assert_int_equal(dl_confusion_add(conf, 3, gt, pred, 7, NULL), 5);
    const int64_t want[9] = {1, 1, 0, 0, 2, 0, 0, 1, 0};
    assert_memory_equal(conf, want, sizeof want);
    double iou[3];
    DlSegScores s;
    dl_seg_scores(conf, 3, iou, &s);
    /* class 0: TP 1, FN 1, FP 0 -> 1/2; class 1: TP 2, FP 2 -> 1/2; class 2: TP 0, FN 1 -> 0 */
    assert_float_equal(iou[0], 0.5, 1e-15);
    assert_float_equal(iou[1], 0.5, 1e-15);
    assert_float_equal(iou[2], 0.0, 0);
    assert_float_equal(s.miou, 1.0 / 3, 1e-15);
    assert_float_equal(s.pixel_acc, 3.0 / 5, 1e-15);
    assert_float_equal(s.mean_class_acc, (0.5 + 1 + 0) / 3, 1e-15);
    assert_int_equal(s.nclasses_iou, 3);
    assert_int_equal(s.counted, 5);
    /* accumulating: a second map; class 2 now absent from nothing new */
    const uint8_t gt2[] = {1, 1}, pred2[] = {1, 0};
    assert_int_equal(dl_confusion_add(conf, 3, gt2, pred2, 2, NULL), 2);
    assert_int_equal(conf[1 * 3 + 1], 3);
    assert_int_equal(conf[1 * 3 + 0], 1);

    /* a class in neither map is excluded: K = 4, class 3 never seen */
    int64_t c4[16] = {0};
    const uint8_t g4[] = {0, 1, 2}, p4[] = {0, 1, 1};
    assert_int_equal(dl_confusion_add(c4, 4, g4, p4, 3, NULL), 3);
    double iou4[4];
    dl_seg_scores(c4, 4, iou4, &s);
    assert_true(isnan(iou4[3]));
    assert_int_equal(s.nclasses_iou, 3);
    assert_float_equal(s.miou, (1 + 0.5 + 0) / 3, 1e-15);
    assert_int_equal(s.nclasses_acc, 3);

    /* a prediction out of range on a counted pixel: refused, nothing added;
     * on a void pixel it does not matter */
    int64_t c[9] = {0}, bad = 0;
    const uint8_t gb[] = {0, 255, 1}, pb[] = {0, 200, 3};
    assert_int_equal(dl_confusion_add(c, 3, gb, pb, 3, &bad), -1);
    assert_int_equal(bad, 2);
    for (int k = 0; k < 9; k++) assert_int_equal(c[k], 0);
    assert_int_equal(dl_confusion_add(c, 3, gb, pb, 2, &bad), 1);
    assert_int_equal(bad, -1);
    assert_int_equal(dl_confusion_add(c, 0, gb, pb, 2, &bad), -1);
    assert_int_equal(dl_confusion_add(c, 256, gb, pb, 2, &bad), -1);

    /* nothing counted: NaN means, zero counts */
    int64_t z[9] = {0};
    const uint8_t allvoid[] = {255, 255};
    assert_int_equal(dl_confusion_add(z, 3, allvoid, pred, 2, NULL), 0);
    dl_seg_scores(z, 3, NULL, &s);
    assert_true(isnan(s.miou) && isnan(s.pixel_acc) && isnan(s.mean_class_acc));
    assert_int_equal(s.nclasses_iou, 0);
    assert_int_equal(s.counted, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ap_matches_sklearn_and_vocap),
        cmocka_unit_test(test_map_matches),
        cmocka_unit_test(test_seg_matches),
        cmocka_unit_test(test_ap_by_hand),
        cmocka_unit_test(test_map_by_hand),
        cmocka_unit_test(test_argmax_by_hand),
        cmocka_unit_test(test_confusion_by_hand),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
