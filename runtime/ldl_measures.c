/* ldl_measures.c - the six LDL measures (Geng, TKDE 2016), the ChaLearn LAP 2015
 * epsilon-error and mean +- std; see ldl_measures.h.  Checked against numpy
 * (tests/numeric/make_ldl_fixture.py) by tests/unit/test_ldl_measures.c.
 *
 * Each measure is written in the same form as torch_ldl.py's numpy expression
 * (e.g. d*d / (s*s), log(y/p), the dot product divided by |p| then by |y|),
 * so that the two round alike; sums run over k in order, in double.
 */
#include <math.h>
#include <stddef.h>

#include "ldl_measures.h"

/* The clipped value of entry k of a row. */
static double clip(float v)
{
    return (double)v > DL_LDL_EPS ? (double)v : DL_LDL_EPS;
}

static double ldl_chebyshev(const float *p, const float *y, int K)
{
    double m = 0;
    for (int k = 0; k < K; k++) {
        double d = fabs(clip(p[k]) - clip(y[k]));
        if (d > m) m = d;
    }
    return m;
}

static double ldl_clark(const float *p, const float *y, int K)
{
    double s = 0;
    for (int k = 0; k < K; k++) {
        double pk = clip(p[k]), yk = clip(y[k]), d = pk - yk, t = pk + yk;
        s += d * d / (t * t);
    }
    return sqrt(s);
}

static double ldl_canberra(const float *p, const float *y, int K)
{
    double s = 0;
    for (int k = 0; k < K; k++) {
        double pk = clip(p[k]), yk = clip(y[k]);
        s += fabs(pk - yk) / (pk + yk);
    }
    return s;
}

static double ldl_kl(const float *p, const float *y, int K)
{
    double s = 0;
    for (int k = 0; k < K; k++) {
        double pk = clip(p[k]), yk = clip(y[k]);
        s += yk * log(yk / pk);
    }
    return s;
}

static double ldl_cosine(const float *p, const float *y, int K)
{
    double py = 0, pp = 0, yy = 0;
    for (int k = 0; k < K; k++) {
        double pk = clip(p[k]), yk = clip(y[k]);
        py += pk * yk;
        pp += pk * pk;
        yy += yk * yk;
    }
    return py / sqrt(pp) / sqrt(yy);
}

static double ldl_intersection(const float *p, const float *y, int K)
{
    double s = 0;
    for (int k = 0; k < K; k++) s += fmin(clip(p[k]), clip(y[k]));
    return s;
}

typedef struct LdlRow {
    const char *name;
    int lower_is_better;
    double (*fn)(const float *p, const float *y, int K);
} LdlRow;

static const LdlRow ldl_rows[DL_LDL_COUNT] = {
#define DL_LDL_ROW_(id, name, lower) [DL_LDL_##id] = {#name, lower, ldl_##name},
    DL_LDL_MEASURES(DL_LDL_ROW_)
#undef DL_LDL_ROW_
};

static int valid(DlLdlMeasure m)
{
    return (int)m >= 0 && (int)m < DL_LDL_COUNT;
}

const char *dl_ldl_name(DlLdlMeasure m)
{
    return valid(m) ? ldl_rows[m].name : NULL;
}

int dl_ldl_lower_is_better(DlLdlMeasure m)
{
    return valid(m) ? ldl_rows[m].lower_is_better : -1;
}

double dl_ldl_measure(DlLdlMeasure m, const float *p, const float *y, int K)
{
    if (!valid(m) || K <= 0) return NAN;
    return ldl_rows[m].fn(p, y, K);
}

void dl_ldl_all(const float *p, const float *y, int K, double out[DL_LDL_COUNT])
{
    for (int m = 0; m < DL_LDL_COUNT; m++) out[m] = dl_ldl_measure((DlLdlMeasure)m, p, y, K);
}

void dl_ldl_mean(const float *P, const float *Y, int B, int K, double out[DL_LDL_COUNT])
{
    for (int m = 0; m < DL_LDL_COUNT; m++) {
        if (B <= 0) {
            out[m] = NAN;
            continue;
        }
        double s = 0;
        for (int b = 0; b < B; b++)
            s += dl_ldl_measure((DlLdlMeasure)m, P + (size_t)b * K, Y + (size_t)b * K, K);
        out[m] = s / B;
    }
}

double dl_eps_error(double x, double mu, double sigma)
{
    if (!(sigma > 0)) return NAN; /* also NaN sigma */
    double d = x - mu;
    return -expm1(-d * d / (2.0 * sigma * sigma)); /* = 1 - exp(.), exact near x = mu */
}

void dl_mean_std(const double *x, int n, double *mean, double *std)
{
    double m = NAN, s = NAN;
    if (n > 0) {
        double sum = 0;
        for (int i = 0; i < n; i++) sum += x[i];
        m = sum / n;
        double ss = 0;
        for (int i = 0; i < n; i++) ss += (x[i] - m) * (x[i] - m);
        s = sqrt(ss / n);
    }
    if (mean) *mean = m;
    if (std) *std = s;
}
