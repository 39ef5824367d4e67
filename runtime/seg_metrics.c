/* seg_metrics.c - VOC average precision, mAP, and segmentation scores from a
 * confusion matrix (see seg_metrics.h for the definitions and conventions).
 *
 * AP: the samples of the class with g != 0 are sorted by score, highest
 * first (ties by index, only to make the sort deterministic: a tie group is
 * one threshold, so its inner order never shows), then walked one group of
 * equal scores at a time, giving the points (R_k, Prec_k) of the curve.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "seg_metrics.h"

typedef struct Item {
    float s;
    int i;   /* the sample's index */
    int pos; /* 1: g > 0, 0: g < 0 */
} Item;

static int by_score_desc(const void *a, const void *b)
{
    const Item *x = a, *y = b;
    if (x->s != y->s) return x->s > y->s ? -1 : 1;
    return (x->i > y->i) - (x->i < y->i);
}

/* The AP of n samples at score[i * stride], gt[i * stride]. */
static double ap_strided(DlApKind kind, const float *score, const int8_t *gt, int n, int stride)
{
    if (n <= 0 || (kind != DL_AP_VOC && kind != DL_AP_STEP)) return NAN;
    Item *it = dl_xmalloc((size_t)n * sizeof *it);
    int m = 0, npos = 0;
    for (int i = 0; i < n; i++) {
        int8_t g = gt[(size_t)i * stride];
        if (g == 0) continue;
        float s = score[(size_t)i * stride];
        if (isnan(s)) {
            free(it);
            return NAN;
        }
        npos += g > 0;
        it[m++] = (Item){s, i, g > 0};
    }
    if (npos == 0) {
        free(it);
        return NAN;
    }
    qsort(it, (size_t)m, sizeof *it, by_score_desc);
    /* the curve: rec[k], prec[k] at the k-th distinct score */
    double *rec = dl_xmalloc(2 * (size_t)m * sizeof *rec), *prec = rec + m;
    int npts = 0;
    int64_t tp = 0, fp = 0;
    for (int j = 0; j < m;) {
        float s = it[j].s;
        for (; j < m && it[j].s == s; j++) {
            tp += it[j].pos;
            fp += !it[j].pos;
        }
        rec[npts] = (double)tp / npos;
        prec[npts] = (double)tp / (double)(tp + fp);
        npts++;
    }
    double ap = 0;
    if (kind == DL_AP_STEP) {
        for (int k = 0; k < npts; k++) ap += (rec[k] - (k ? rec[k - 1] : 0.0)) * prec[k];
    } else {
        /* VOCap: mpre non-increasing from the right (the end point (1, 0)
         * adds nothing: the last recall is 1), then the area over the
         * recall steps. */
        for (int k = npts - 2; k >= 0; k--) prec[k] = fmax(prec[k], prec[k + 1]);
        for (int k = 0; k < npts; k++) {
            double prev = k ? rec[k - 1] : 0.0;
            if (rec[k] != prev) ap += (rec[k] - prev) * prec[k];
        }
    }
    free(rec);
    free(it);
    return ap;
}

double dl_ap(DlApKind kind, const float *score, const int8_t *gt, int n)
{
    return ap_strided(kind, score, gt, n, 1);
}

double dl_map(DlApKind kind, const float *score, const int8_t *gt, int N, int C, double *ap, int *nused)
{
    double sum = 0;
    int used = 0;
    for (int c = 0; c < C; c++) {
        int pos = 0;
        for (int i = 0; i < N && !pos; i++) pos = gt[(size_t)i * C + c] > 0;
        double a = pos ? ap_strided(kind, score + c, gt + c, N, C) : NAN;
        if (ap) ap[c] = a;
        if (pos) sum += a, used++;
    }
    if (nused) *nused = used;
    return used ? sum / used : NAN;
}

int dl_argmax_rows(const float *prob, int64_t N, int K, uint8_t *out)
{
    if (K < 1 || K > 255) return -1;
    for (int64_t i = 0; i < N; i++) {
        const float *row = prob + i * K;
        int best = 0;
        if (!isnan(row[0]))
            for (int k = 1; k < K; k++) {
                if (isnan(row[k])) {
                    best = k;
                    break;
                }
                if (row[k] > row[best]) best = k;
            }
        out[i] = (uint8_t)best;
    }
    return 0;
}

int64_t dl_confusion_add(int64_t *conf, int K, const uint8_t *gt, const uint8_t *pred, int64_t n, int64_t *bad)
{
    if (bad) *bad = -1;
    if (K < 1 || K > 255) return -1;
    for (int64_t i = 0; i < n; i++)
        if (gt[i] < K && pred[i] >= K) {
            if (bad) *bad = i;
            return -1;
        }
    int64_t counted = 0;
    for (int64_t i = 0; i < n; i++)
        if (gt[i] < K) conf[(size_t)gt[i] * K + pred[i]]++, counted++;
    return counted;
}

void dl_seg_scores(const int64_t *conf, int K, double *iou, DlSegScores *out)
{
    memset(out, 0, sizeof *out);
    int64_t total = 0, correct = 0;
    double sum_iou = 0, sum_acc = 0;
    for (int c = 0; c < K; c++) {
        int64_t tp = conf[(size_t)c * K + c], row = 0, col = 0;
        for (int k = 0; k < K; k++) row += conf[(size_t)c * K + k], col += conf[(size_t)k * K + c];
        int64_t uni = row + col - tp; /* TP + FN + FP */
        double u = uni > 0 ? (double)tp / (double)uni : NAN;
        if (iou) iou[c] = u;
        if (uni > 0) sum_iou += u, out->nclasses_iou++;
        if (row > 0) sum_acc += (double)tp / (double)row, out->nclasses_acc++;
        total += row, correct += tp;
    }
    out->counted = total;
    out->miou = out->nclasses_iou ? sum_iou / out->nclasses_iou : NAN;
    out->mean_class_acc = out->nclasses_acc ? sum_acc / out->nclasses_acc : NAN;
    out->pixel_acc = total ? (double)correct / (double)total : NAN;
}
