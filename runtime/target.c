/* target.c - label-distribution targets (runtime/data.h dl_target_build).
 *
 * DLDL (Gao, Xing, Xie, Wu, Geng, IEEE TIP 2017, Sec. III-B) turns a label l
 * into a distribution over discrete bins: for age, a 1-D Gaussian over the age
 * bins; for head pose, a 2-D Gaussian over the pitch x yaw grid.  Here, for any
 * number of axes, with joint bins k = (k_0, .., k_{n-1}) row-major (first axis
 * slowest):
 *
 *   y_k = exp(-e_k) / sum_j exp(-e_j),   e_k = sum_a (v_a(k_a) - l_a)^2 / (2 sigma_a^2)
 *
 * computed in double and stored as float.  The minimum of e is subtracted
 * before exp (the same y, exactly, in real arithmetic), so a label far outside
 * the bins cannot underflow the sum: its mass lands on the nearest bin.  If
 * the sum is still not a positive finite number (a NaN label, sigma <= 0) all
 * mass goes to the nearest bin of each axis, as for "onehot".
 * Nearest bin: smallest |v - l|, ties to the lower index (numpy argmin).
 * A per-sample sigma (labels[sigma_label], e.g. ChaLearn's apparent-age
 * standard deviation) replaces the axis's fixed sigma.  A GIVEN target copies
 * the sample's row of its distribution field (normalised when loaded).
 */
#include <math.h>
#include <string.h>

#include "../common/util.h"
#include "data.h"

int dl_target_bins(const DlPlanTarget *t)
{
    int K = 1;
    for (int a = 0; a < t->naxes; a++) K *= t->axes[a].nbins;
    return K;
}

int dl_target_nearest_bin(const DlPlanAxis *ax, float l)
{
    int best = 0;
    double bd = INFINITY;
    for (int i = 0; i < ax->nbins; i++) {
        double d = fabs((double)ax->bins[i] - (double)l);
        if (d < bd) {
            bd = d;
            best = i;
        }
    }
    return best;
}

char *dl_target_check_labels(const DlPlanTarget *t, float *labels)
{
    if (dl_target_reads_field(t)) return NULL;
    for (int a = 0; a < t->naxes; a++) {
        const DlPlanAxis *ax = &t->axes[a];
        float *l = &labels[ax->label];
        if (t->has_ignore && *l == t->ignore) continue; /* no class: no mass, no loss */
        float lo = ax->bins[0], hi = ax->bins[ax->nbins - 1];
        if (!(*l >= lo && *l <= hi)) {
            if (t->clamp && !isnan(*l)) {
                *l = *l < lo ? lo : hi;
            } else {
                return dl_xasprintf("%s %g is outside target '%s''s bins [%g, %g]%s%s%s", ax->name, (double)*l, t->name,
                                    (double)lo, (double)hi, *ax->unit ? " " : "", ax->unit,
                                    t->clamp ? "" : " (clamp = true in the target clamps it)");
            }
        }
        if (ax->sigma_label >= 0 && !(labels[ax->sigma_label] > 0 && isfinite(labels[ax->sigma_label])))
            return dl_xasprintf("sigma %g of target '%s' is not a positive number", (double)labels[ax->sigma_label],
                                t->name);
    }
    return NULL;
}

static void onehot(const DlPlanTarget *t, const float *labels, float *y, int K)
{
    memset(y, 0, (size_t)K * sizeof *y);
    if (t->has_ignore && t->naxes == 1 && labels[t->axes[0].label] == t->ignore) return; /* no class: no mass */
    int k = 0;
    for (int a = 0; a < t->naxes; a++)
        k = k * t->axes[a].nbins + dl_target_nearest_bin(&t->axes[a], labels[t->axes[a].label]);
    y[k] = 1.0f;
}

static double sigma_of(const DlPlanAxis *ax, const float *labels)
{
    return ax->sigma_label >= 0 ? (double)labels[ax->sigma_label] : (double)ax->sigma;
}

/* e_k for joint bin k (row-major, first axis slowest). */
static double energy(const DlPlanTarget *t, const float *labels, int k)
{
    double e = 0;
    for (int a = t->naxes - 1; a >= 0; a--) {
        const DlPlanAxis *ax = &t->axes[a];
        double d = (double)ax->bins[k % ax->nbins] - (double)labels[ax->label], s = sigma_of(ax, labels);
        e += d * d / (2.0 * s * s);
        k /= ax->nbins;
    }
    return e;
}

static void build_onehot(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K)
{
    onehot(t, labels, y, K);
}

static void build_gaussian(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K)
{
    /* e_k is a sum of per-axis terms, so min_k e_k = sum_a min_i e_a(i). */
    double emin = 0;
    int ok = 1;
    for (int a = 0; a < t->naxes; a++) {
        const DlPlanAxis *ax = &t->axes[a];
        double s = sigma_of(ax, labels), m = INFINITY;
        for (int i = 0; i < ax->nbins; i++) {
            double d = (double)ax->bins[i] - (double)labels[ax->label];
            double e = d * d / (2 * s * s);
            if (e < m) m = e;
        }
        if (!(s > 0) || !isfinite(m)) ok = 0;
        emin += m;
    }
    double sum = 0;
    if (ok)
        for (int k = 0; k < K; k++) sum += exp(-(energy(t, labels, k) - emin));
    if (!ok || !(sum > 0) || !isfinite(sum)) {
        onehot(t, labels, y, K);
        return;
    }
    for (int k = 0; k < K; k++) y[k] = (float)(exp(-(energy(t, labels, k) - emin)) / sum);
}


/* GIVEN: the field's row as it is (renormalised when loaded). */
static void build_given(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K)
{
    if (field) memcpy(y, field, (size_t)K * sizeof *y);
    else memset(y, 0, (size_t)K * sizeof *y);
}

/* MULTILABEL: weight 1 for a class present (field 1), `difficult` for one
 * present only as difficult objects (field 0), none when absent (-1);
 * normalised.  No class at all: an all-zero row (no loss). */
static void build_multilabel(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K)
{
    double sum = 0;
    for (int k = 0; k < K; k++) {
        float v = field ? field[k] : -1;
        y[k] = v > 0 ? 1.0f : v == 0 ? t->difficult : 0.0f;
        sum += y[k];
    }
    for (int k = 0; k < K; k++) y[k] = sum > 0 ? (float)(y[k] / sum) : 0.0f;
}

/* One row per DlTargetKind: how a sample's row is built, and whether it reads
 * a data field (GIVEN, MULTILABEL) rather than labels. */
static const struct TargetRow {
    int kind;
    void (*build)(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K);
    int field;
} target_rows[] = {
    {DL_TGT_GAUSSIAN1D, build_gaussian, 0},
    {DL_TGT_GAUSSIAN2D, build_gaussian, 0},
    {DL_TGT_ONEHOT, build_onehot, 0},
    {DL_TGT_GIVEN, build_given, 1},
    {DL_TGT_MULTILABEL, build_multilabel, 1},
};
_Static_assert(sizeof target_rows / sizeof *target_rows == DL_TGT_COUNT, "one row per target kind");

static const struct TargetRow *target_row(int kind)
{
    for (size_t i = 0; i < sizeof target_rows / sizeof *target_rows; i++)
        if (target_rows[i].kind == kind) return &target_rows[i];
    return &target_rows[0]; /* unreachable: the plan verifier admits only listed kinds */
}

int dl_target_reads_field(const DlPlanTarget *t) { return target_row(t->kind)->field; }

/* No allocation: called per sample inside training steps (common/util.h). */
void dl_target_build(const DlPlanTarget *t, const float *labels, const float *dist, float *y)
{
    target_row(t->kind)->build(t, labels, dist, y, dl_target_bins(t));
}

void dl_target_batch(const DlPlanTarget *t, const DlDataset *d, const int *idx, int B, const float *labels,
                     float *y)
{
    int K = dl_target_bins(t), A = d->nlabels;
    for (int b = 0; b < B; b++) {
        const float *row = dl_target_reads_field(t) && t->dist >= 0 && t->dist < d->ndist && d->dist_width[t->dist] == K
                               ? d->dist[t->dist] + (size_t)idx[b] * (size_t)K
                               : NULL;
        dl_target_build(t, labels + (size_t)b * (size_t)A, row, y + (size_t)b * (size_t)K);
    }
}
