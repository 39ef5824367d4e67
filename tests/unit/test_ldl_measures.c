/* test_ldl_measures.c - runtime/ldl_measures.c against numpy, and by hand.
 *
 * tests/numeric/ldl_measures.txt is written by tests/numeric/make_ldl_fixture.py
 * with the measures() of shared/reference/torch_ldl.py (Geng, TKDE 2016; rows
 * clipped at 1e-12): 14 row pairs (K = 1, 2, 5, 8, 70; exact zeros in p, in y
 * and in both, one-hot rows, equal rows, float32 entries below the clip), one
 * batch of 6 x 70 rows (the mean over rows), ChaLearn epsilon-errors and
 * mean / population-std cases.  Every value is checked to 1e-6 relative
 * (plus 1e-14 absolute, for values that are 0), and the largest differences
 * are printed per quantity.  Independent of numpy: a K = 2 case computed by
 * hand, identical rows (0 for the four distances, 1 for cosine) and the
 * measure table itself.
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
#include "../../runtime/ldl_measures.h"

#define FIXTURE "tests/numeric/ldl_measures.txt"
#define RTOL 1e-6
#define ATOL 1e-14
#define MAXCASES 64

typedef struct Case {
    int K;
    float *p, *y;          /* [K] */
    double want[DL_LDL_COUNT];
} Case;

static struct {
    int ncases;
    Case cases[MAXCASES];
    int B, KB;
    float *P, *Y;          /* [B,KB] */
    double batch_want[DL_LDL_COUNT];
    int neps;
    double *eps;           /* [neps,4]: x mu sigma e */
    int nms;
    double *ms_x[MAXCASES]; /* [ms_n[i]] */
    int ms_n[MAXCASES];
    double ms_want[MAXCASES][2];
} fx;

static double *read_section(char **p, const char *name, long want, long *count)
{
    return fixture_section(p, FIXTURE, name, want, count);
}

static int read_int(char **p, const char *name, int *out)
{
    double *v = read_section(p, name, 1, NULL);
    if (!v) return 0;
    *out = (int)v[0];
    free(v);
    return 1;
}

/* A float row: the fixture writes float32 values with 9 digits, so the double
 * read rounds back to the same float. */
static float *read_floats(char **p, const char *name, long n)
{
    double *v = read_section(p, name, n, NULL);
    if (!v) return NULL;
    float *f = dl_xcalloc((size_t)n, sizeof *f);
    for (long i = 0; i < n; i++) f[i] = (float)v[i];
    free(v);
    return f;
}

static int read_doubles(char **p, const char *name, long n, double *out)
{
    double *v = read_section(p, name, n, NULL);
    if (!v) return 0;
    memcpy(out, v, (size_t)n * sizeof *v);
    free(v);
    return 1;
}

static int load_fixture(void **state)
{
    (void)state;
    DlBuf text = {0};
    if (fixture_read_text(FIXTURE, &text)) return -1;
    char *p = text.s;
    int ok = read_int(&p, "ncases", &fx.ncases) && fx.ncases > 0 && fx.ncases <= MAXCASES;
    for (int i = 0; ok && i < fx.ncases; i++) {
        Case *c = &fx.cases[i];
        ok = read_int(&p, "K", &c->K) && c->K > 0 && (c->p = read_floats(&p, "p", c->K))
             && (c->y = read_floats(&p, "y", c->K)) && read_doubles(&p, "measures", DL_LDL_COUNT, c->want);
    }
    ok = ok && read_int(&p, "B", &fx.B) && read_int(&p, "K", &fx.KB) && fx.B > 0 && fx.KB > 0
         && (fx.P = read_floats(&p, "P", (long)fx.B * fx.KB)) && (fx.Y = read_floats(&p, "Y", (long)fx.B * fx.KB))
         && read_doubles(&p, "measures", DL_LDL_COUNT, fx.batch_want);
    long neps = 0;
    ok = ok && (fx.eps = read_section(&p, "eps", -1, &neps)) && neps % 4 == 0;
    fx.neps = (int)(neps / 4);
    ok = ok && read_int(&p, "nmeanstd", &fx.nms) && fx.nms > 0 && fx.nms <= MAXCASES;
    for (int i = 0; ok && i < fx.nms; i++) {
        long n = 0;
        ok = (fx.ms_x[i] = read_section(&p, "x", -1, &n)) && read_doubles(&p, "mean_std", 2, fx.ms_want[i]);
        fx.ms_n[i] = (int)n;
    }
    dl_buf_free(&text);
    return ok ? 0 : -1;
}

static int free_fixture(void **state)
{
    (void)state;
    for (int i = 0; i < MAXCASES; i++) free(fx.cases[i].p), free(fx.cases[i].y), free(fx.ms_x[i]);
    free(fx.P), free(fx.Y), free(fx.eps);
    return 0;
}

/* Running max errors of one quantity over its checks. */
typedef struct Err {
    double maxabs, maxrel;
    int n, bad;
} Err;

/* |got - want| <= ATOL + RTOL max(|got|, |want|); reports a failure by case. */
static void check(Err *e, const char *what, int i, double got, double want)
{
    double d = fabs(got - want), m = fmax(fabs(got), fabs(want));
    if (isnan(d)) d = INFINITY;
    e->maxabs = fmax(e->maxabs, d);
    if (m > 0) e->maxrel = fmax(e->maxrel, d / m);
    e->n++;
    if (!(d <= ATOL + RTOL * m) && e->bad++ < 5)
        fprintf(stderr, "  %s, case %d: got %.17g, numpy %.17g\n", what, i, got, want);
}

static int report(const char *what, const Err *e)
{
    printf("  %-20s %3d values: max abs diff %.3e, max rel diff %.3e%s\n", what, e->n, e->maxabs, e->maxrel,
           e->bad ? "  FAIL" : "");
    return e->bad == 0;
}

/* Each row case, each measure, against numpy (torch_ldl.py's measures()). */
static void test_measures_match_numpy(void **state)
{
    (void)state;
    Err err[DL_LDL_COUNT] = {{0}};
    for (int i = 0; i < fx.ncases; i++) {
        const Case *c = &fx.cases[i];
        double got[DL_LDL_COUNT];
        dl_ldl_all(c->p, c->y, c->K, got);
        for (int m = 0; m < DL_LDL_COUNT; m++) {
            check(&err[m], dl_ldl_name((DlLdlMeasure)m), i, got[m], c->want[m]);
            /* dl_ldl_all is dl_ldl_measure, row by row */
            assert_true(got[m] == dl_ldl_measure((DlLdlMeasure)m, c->p, c->y, c->K));
        }
    }
    int ok = 1;
    for (int m = 0; m < DL_LDL_COUNT; m++) ok &= report(dl_ldl_name((DlLdlMeasure)m), &err[m]);
    assert_true(ok);
}

/* The mean over the rows of one batch, as torch_ldl.py's measures(P, Y). */
static void test_batch_mean_matches_numpy(void **state)
{
    (void)state;
    double got[DL_LDL_COUNT];
    dl_ldl_mean(fx.P, fx.Y, fx.B, fx.KB, got);
    Err err = {0};
    for (int m = 0; m < DL_LDL_COUNT; m++) check(&err, dl_ldl_name((DlLdlMeasure)m), m, got[m], fx.batch_want[m]);
    char what[64];
    snprintf(what, sizeof what, "mean of %d x %d", fx.B, fx.KB);
    assert_true(report(what, &err));
}

/* p = (0.25, 0.75), y = (0.5, 0.5), by hand:
 *   chebyshev 0.25; clark sqrt((1/3)^2 + (1/5)^2) = sqrt(34)/15; canberra 1/3 + 1/5 = 8/15;
 *   kl 0.5 log(0.5/0.25) + 0.5 log(0.5/0.75) = 0.5 log(4/3);
 *   cosine 0.5 / (sqrt(0.625) sqrt(0.5)) = 0.5 / sqrt(0.3125); intersection 0.25 + 0.5 = 0.75 */
static void test_k2_by_hand(void **state)
{
    (void)state;
    const float p[2] = {0.25f, 0.75f}, y[2] = {0.5f, 0.5f};
    assert_float_equal(dl_ldl_measure(DL_LDL_CHEBYSHEV, p, y, 2), 0.25, 1e-15);
    assert_float_equal(dl_ldl_measure(DL_LDL_CLARK, p, y, 2), sqrt(34.0) / 15, 1e-15);
    assert_float_equal(dl_ldl_measure(DL_LDL_CANBERRA, p, y, 2), 8.0 / 15, 1e-15);
    assert_float_equal(dl_ldl_measure(DL_LDL_KL, p, y, 2), 0.5 * log(4.0 / 3), 1e-15);
    assert_float_equal(dl_ldl_measure(DL_LDL_COSINE, p, y, 2), 0.5 / sqrt(0.3125), 1e-15);
    assert_float_equal(dl_ldl_measure(DL_LDL_INTERSECTION, p, y, 2), 0.75, 1e-15);
}

/* Identical rows: the four distances are 0 and cosine is 1 (to rounding);
 * intersection is the clipped row sum, within 1e-6 of 1 for these rows. */
static void test_identical_rows_give_0_or_1(void **state)
{
    (void)state;
    enum { K = 70 };
    float rows[6][K];
    int Ks[6] = {1, 2, 5, 8, 70, 70};
    memset(rows, 0, sizeof rows);
    rows[0][0] = 1;                                       /* K=1 */
    rows[1][0] = 0.3f, rows[1][1] = 0.7f;                 /* K=2 */
    rows[2][1] = 0.5f, rows[2][3] = 0.5f;                 /* K=5, zeros */
    rows[3][6] = 1;                                       /* K=8, one-hot */
    double s = 0;
    for (int k = 0; k < K; k++) s += rows[4][k] = (float)exp(-(k - 20.5) * (k - 20.5) / 8.0);
    for (int k = 0; k < K; k++) rows[4][k] = (float)(rows[4][k] / s); /* K=70 Gaussian, sigma 2 */
    for (int k = 0; k < K; k++) rows[5][k] = 1.0f / K;    /* K=70 uniform */
    for (int r = 0; r < 6; r++) {
        const float *p = rows[r];
        int n = Ks[r];
        double clipped = 0, sum = 0;
        for (int k = 0; k < n; k++) clipped += fmax(p[k], DL_LDL_EPS), sum += p[k];
        for (int m = 0; m < DL_LDL_COUNT; m++) {
            double v = dl_ldl_measure((DlLdlMeasure)m, p, p, n);
            double want = m == DL_LDL_COSINE ? 1 : m == DL_LDL_INTERSECTION ? clipped : 0;
            if (fabs(v - want) > 1e-12)
                fail_msg("row %d (K=%d): %s = %.17g, expected %.17g", r, n, dl_ldl_name((DlLdlMeasure)m), v, want);
        }
        assert_float_equal(dl_ldl_measure(DL_LDL_INTERSECTION, p, p, n), 1.0, 1e-6);
        assert_float_equal(sum, 1.0, 1e-6);
    }
}

/* The table: names in order, the better direction, out-of-range and empty inputs. */
static void test_measure_table(void **state)
{
    (void)state;
    static const char *names[DL_LDL_COUNT] = {"chebyshev", "clark", "canberra", "kl", "cosine", "intersection"};
    static const int lower[DL_LDL_COUNT] = {1, 1, 1, 1, 0, 0};
    assert_int_equal(DL_LDL_COUNT, 6);
    for (int m = 0; m < DL_LDL_COUNT; m++) {
        assert_string_equal(dl_ldl_name((DlLdlMeasure)m), names[m]);
        assert_int_equal(dl_ldl_lower_is_better((DlLdlMeasure)m), lower[m]);
    }
    assert_int_equal(DL_LDL_KL, 3);
    assert_null(dl_ldl_name(DL_LDL_COUNT));
    assert_null(dl_ldl_name((DlLdlMeasure)-1));
    assert_int_equal(dl_ldl_lower_is_better(DL_LDL_COUNT), -1);
    const float p[2] = {0.5f, 0.5f};
    assert_true(isnan(dl_ldl_measure(DL_LDL_COUNT, p, p, 2)));
    assert_true(isnan(dl_ldl_measure(DL_LDL_KL, p, p, 0)));
    double out[DL_LDL_COUNT];
    dl_ldl_mean(p, p, 0, 2, out);
    for (int m = 0; m < DL_LDL_COUNT; m++) assert_true(isnan(out[m]));
    dl_ldl_mean(p, p, 1, 2, out); /* one row: the row's measures */
    assert_float_equal(out[DL_LDL_KL], 0, 0);
    assert_float_equal(out[DL_LDL_COSINE], 1, 1e-15);
}

/* ChaLearn LAP 2015 epsilon-error against numpy; 0 at x = mu, symmetric in
 * x - mu, NaN for sigma <= 0. */
static void test_eps_error(void **state)
{
    (void)state;
    Err err = {0};
    for (int i = 0; i < fx.neps; i++) {
        const double *r = fx.eps + 4 * i;
        check(&err, "eps-error", i, dl_eps_error(r[0], r[1], r[2]), r[3]);
    }
    assert_true(report("eps-error", &err));
    assert_true(dl_eps_error(31.5, 31.5, 4.0) == 0.0);
    assert_true(dl_eps_error(20.0, 25.0, 3.0) == dl_eps_error(30.0, 25.0, 3.0));
    assert_float_equal(dl_eps_error(27.0, 25.0, 2.0), 1 - exp(-0.5), 1e-15); /* one sigma */
    assert_true(isnan(dl_eps_error(1.0, 2.0, 0.0)));
    assert_true(isnan(dl_eps_error(1.0, 2.0, -1.0)));
    assert_true(isnan(dl_eps_error(1.0, 2.0, NAN)));
}

/* Mean and population std (ddof 0) against numpy; n = 1, n = 0 and NULL outputs. */
static void test_mean_std(void **state)
{
    (void)state;
    Err em = {0}, es = {0};
    for (int i = 0; i < fx.nms; i++) {
        double mean, std;
        dl_mean_std(fx.ms_x[i], fx.ms_n[i], &mean, &std);
        check(&em, "mean", i, mean, fx.ms_want[i][0]);
        check(&es, "std", i, std, fx.ms_want[i][1]);
    }
    int ok = report("mean", &em) & report("std (ddof 0)", &es);
    assert_true(ok);
    const double x[2] = {1.0, 3.0}; /* population std 1, sample std sqrt(2) */
    double mean = 0, std = 0;
    dl_mean_std(x, 2, &mean, &std);
    assert_true(mean == 2.0 && std == 1.0);
    dl_mean_std(x, 1, &mean, &std);
    assert_true(mean == 1.0 && std == 0.0);
    dl_mean_std(x, 0, &mean, &std);
    assert_true(isnan(mean) && isnan(std));
    dl_mean_std(x, 2, NULL, &std);
    assert_true(std == 1.0);
    dl_mean_std(x, 2, &mean, NULL);
    assert_true(mean == 2.0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_measures_match_numpy),
        cmocka_unit_test(test_batch_mean_matches_numpy),
        cmocka_unit_test(test_k2_by_hand),
        cmocka_unit_test(test_identical_rows_give_0_or_1),
        cmocka_unit_test(test_measure_table),
        cmocka_unit_test(test_eps_error),
        cmocka_unit_test(test_mean_std),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
