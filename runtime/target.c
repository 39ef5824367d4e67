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
    if (t->kind == DL_TGT_GIVEN) return NULL;
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

/* No allocation: called per sample inside training steps (common/util.h). */
void dl_target_build(const DlPlanTarget *t, const float *labels, const float *dist, float *y)
{
    int K = dl_target_bins(t);
    if (t->kind == DL_TGT_GIVEN) {
        if (dist) memcpy(y, dist, (size_t)K * sizeof *y);
        else memset(y, 0, (size_t)K * sizeof *y);
        return;
    }
    if (t->kind == DL_TGT_ONEHOT) {
        onehot(t, labels, y, K);
        return;
    }
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

void dl_target_batch(const DlPlanTarget *t, const DlDataset *d, const int *idx, int B, const float *labels,
                     float *y)
{
    int K = dl_target_bins(t), A = d->nlabels;
    for (int b = 0; b < B; b++) {
        const float *row = t->kind == DL_TGT_GIVEN && t->dist >= 0 && t->dist < d->ndist && d->dist_width[t->dist] == K
                               ? d->dist[t->dist] + (size_t)idx[b] * (size_t)K
                               : NULL;
        dl_target_build(t, labels + (size_t)b * (size_t)A, row, y + (size_t)b * (size_t)K);
    }
}
