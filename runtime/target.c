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
#include <stdlib.h>
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

/* LABEL_MAP, one 1-D pass of the separable Gaussian g over a plane of H x W
 * doubles, along rows (dir 0) or columns (dir 1), clipped at the border. */
static void blur_pass(const double *in, double *out, int H, int W, const double *g, int r, int dir)
{
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            double s = 0;
            int c = dir ? y : x, n = dir ? H : W;
            int lo = c - r < 0 ? -c : -r, hi = c + r >= n ? n - 1 - c : r;
            for (int j = lo; j <= hi; j++)
                s += g[j + r] * (dir ? in[(size_t)(y + j) * W + x] : in[(size_t)y * W + x + j]);
            out[(size_t)y * W + x] = s;
        }
}

void dl_target_label_map(const uint8_t *m, int H, int W, int K, float sigma, float *y)
{
    size_t hw = (size_t)H * W;
    memset(y, 0, hw * (size_t)K * sizeof *y);
    if (!(sigma > 0)) { /* one-hot */
        for (size_t p = 0; p < hw; p++)
            if (m[p] < K) y[p * (size_t)K + m[p]] = 1.0f;
        return;
    }
    int r = (int)ceil(3.0 * sigma);
    if (r > (H > W ? H : W)) r = H > W ? H : W;
    double *g = dl_xmalloc((size_t)(2 * r + 1) * sizeof *g);
    for (int j = -r; j <= r; j++) g[j + r] = exp(-(double)j * j / (2.0 * (double)sigma * sigma));
    double *a = dl_xmalloc(hw * sizeof *a), *b = dl_xmalloc(hw * sizeof *b), *den = dl_xmalloc(hw * sizeof *den);
    /* the denominator: the Gaussian sum of the pixels that are not void */
    for (size_t p = 0; p < hw; p++) a[p] = m[p] < K;
    blur_pass(a, b, H, W, g, r, 0);
    blur_pass(b, den, H, W, g, r, 1);
    uint8_t present[256] = {0};
    for (size_t p = 0; p < hw; p++) present[m[p]] = 1;
    for (int k = 0; k < K; k++) { /* each class present: its smoothed indicator over the denominator */
        if (!present[k]) continue;
        for (size_t p = 0; p < hw; p++) a[p] = m[p] == k;
        blur_pass(a, b, H, W, g, r, 0);
        blur_pass(b, a, H, W, g, r, 1);
        for (size_t p = 0; p < hw; p++)
            if (m[p] < K) y[p * (size_t)K + (size_t)k] = (float)(a[p] / den[p]);
    }
    free(g), free(a), free(b), free(den);
}

/* LABEL_MAP has no per-row builder: dl_target_batch builds a sample's rows at once. */
static void build_map_row(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K)
{
    memset(y, 0, (size_t)K * sizeof *y);
}

/* One row per DlTargetKind: how a sample's row is built, and which data
 * field it reads (GIVEN, MULTILABEL: a row of K; LABEL_MAP: a label map)
 * rather than labels. */
enum { FIELD_NONE, FIELD_ROW, FIELD_MAP };
static const struct TargetRow {
    int kind;
    void (*build)(const DlPlanTarget *t, const float *labels, const float *field, float *y, int K);
    int field;
} target_rows[] = {
    {DL_TGT_GAUSSIAN1D, build_gaussian, FIELD_NONE},
    {DL_TGT_GAUSSIAN2D, build_gaussian, FIELD_NONE},
    {DL_TGT_ONEHOT, build_onehot, FIELD_NONE},
    {DL_TGT_GIVEN, build_given, FIELD_ROW},
    {DL_TGT_MULTILABEL, build_multilabel, FIELD_ROW},
    {DL_TGT_LABEL_MAP, build_map_row, FIELD_MAP},
};
_Static_assert(sizeof target_rows / sizeof *target_rows == DL_TGT_COUNT, "one row per target kind");

static const struct TargetRow *target_row(int kind)
{
    for (size_t i = 0; i < sizeof target_rows / sizeof *target_rows; i++)
        if (target_rows[i].kind == kind) return &target_rows[i];
    return &target_rows[0]; /* unreachable: the plan verifier admits only listed kinds */
}

int dl_target_reads_field(const DlPlanTarget *t) { return target_row(t->kind)->field != FIELD_NONE; }

int64_t dl_target_field_width(const DlPlanTarget *t)
{
    int f = target_row(t->kind)->field;
    return f == FIELD_ROW ? dl_target_bins(t) : f == FIELD_MAP ? (int64_t)t->map_h * t->map_w : 0;
}

/* No allocation: called per sample inside training steps (common/util.h). */
void dl_target_build(const DlPlanTarget *t, const float *labels, const float *dist, float *y)
{
    target_row(t->kind)->build(t, labels, dist, y, dl_target_bins(t));
}

void dl_target_batch(const DlPlanTarget *t, const DlDataset *d, const int *idx, int B, const float *labels,
                     const uint8_t *masks, float *y)
{
    int K = dl_target_bins(t), A = d->nlabels;
    if (target_row(t->kind)->field == FIELD_MAP) {
        size_t hw = (size_t)t->map_h * t->map_w;
        for (int b = 0; b < B; b++) {
            float *yb = y + (size_t)b * hw * (size_t)K;
            if (masks && t->map_h == d->H && t->map_w == d->W)
                dl_target_label_map(masks + (size_t)b * hw, t->map_h, t->map_w, K, t->axes[0].sigma, yb);
            else
                memset(yb, 0, hw * (size_t)K * sizeof *yb);
        }
        return;
    }
    for (int b = 0; b < B; b++) {
        const float *row = dl_target_reads_field(t) && t->dist >= 0 && t->dist < d->ndist && d->dist_width[t->dist] == K
                               ? d->dist[t->dist] + (size_t)idx[b] * (size_t)K
                               : NULL;
        dl_target_build(t, labels + (size_t)b * (size_t)A, row, y + (size_t)b * (size_t)K);
    }
}
