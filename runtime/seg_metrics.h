/* seg_metrics.h - PASCAL VOC metrics: average precision and mAP of
 * multi-label classification, and the confusion matrix, mIoU and accuracies
 * of semantic segmentation.  Computed in double; no state, no I/O; the AP
 * functions allocate scratch (O(n)) and free it before returning.
 *
 * Legend: N = samples (images, or pixels), C = classes scored (VOC: 20),
 * K = classes of a label map (VOC: 21, background 0 and the 20 classes).
 *
 * ---- average precision ----
 * One class: score s[i] (higher = more confident the class is present) and
 * ground truth g[i] by the VOC convention: 1 present, -1 absent, 0 present only
 * as 'difficult' objects.  Samples with g = 0 are left out of this class's
 * computation entirely (neither true nor false positives: the devkit's
 * VOCevalcls counts them in neither tp nor fp).  Any g > 0 counts as 1, < 0 as -1.
 *
 * Ranking and ties: samples are ranked by score, highest first, and all the
 * samples of one score value form one threshold (one point of the
 * precision-recall curve), as scikit-learn's precision_recall_curve does; so
 * the result does not depend on the order of tied samples.  At the k-th
 * distinct score, from the highest, with TP_k and FP_k the positives and
 * negatives scoring at least that, and P the number of positives:
 *   R_k = TP_k / P,  Prec_k = TP_k / (TP_k + FP_k),  R_0 = 0.
 *
 *   DL_AP_VOC  the AP of the VOC2010..2012 devkits (VOCcode/VOCevalcls.m and
 *              VOCap.m; VOC2007 sampled 11 recall points instead, Everingham
 *              et al., IJCV 2010): the precision made non-increasing from the right,
 *              Pi_k = max_{j >= k} Prec_j, then AP = sum_k (R_k - R_{k-1}) Pi_k,
 *              the area under that monotone curve.  Without ties this is the
 *              devkit's value; with ties the devkit's (MATLAB's stable sort,
 *              each sample its own point) depends on the order of the tied
 *              samples, this does not.
 *   DL_AP_STEP the non-interpolated AP, AP = sum_k (R_k - R_{k-1}) Prec_k:
 *              scikit-learn's average_precision_score (on the samples with
 *              g != 0, g = 1 positive), ties included.  Never above DL_AP_VOC.
 *
 * No positive sample: the AP is undefined: NaN.  All positives: 1.  A NaN
 * score among the samples used: NaN.
 *
 * ---- segmentation ----
 * Label maps hold class indices 0..K-1; a ground-truth pixel of K or more
 * (VOC's 255, void) is not counted.  conf[g * K + p] counts the counted pixels
 * of ground truth g predicted as p.  Per class c: TP = conf[c,c], FN = row c's
 * other entries, FP = column c's other entries.
 */
#ifndef DL_SEG_METRICS_H
#define DL_SEG_METRICS_H

#include <stdint.h>

typedef enum DlApKind {
    DL_AP_VOC,  /* interpolated: the VOC2010+ devkit's VOCap */
    DL_AP_STEP, /* not interpolated: scikit-learn's average_precision_score */
} DlApKind;

/* The AP of one class: score [n], gt [n] (1, 0, -1 as above).  NaN when no
 * sample has gt > 0, a used score is NaN, n <= 0 or kind is unknown. */
double dl_ap(DlApKind kind, const float *score, const int8_t *gt, int n);

/* mAP over C classes: score [N,C] and gt [N,C] row-major (row = sample, as
 * DlVocAnnotation.presence; column c = class c).  ap [C] (may be NULL) gets
 * each class's dl_ap, NaN for a class with no positive sample.  The mean is
 * over the classes that have at least one positive (gt > 0); the others are
 * skipped, and *nused (may be NULL) is the number of classes averaged.
 * Returns the mean, NaN when no class has a positive or a used class's AP is
 * NaN (a NaN score). */
double dl_map(DlApKind kind, const float *score, const int8_t *gt, int N, int C, double *ap, int *nused);

/* The predicted class of each of N rows of prob [N,K] (row-major: a row per
 * pixel; probabilities, or any scores): out[i] = argmax_k prob[i,k], ties to
 * the lowest index, a NaN counting as the largest value (both as
 * numpy.argmax).  K in 1..255 (so that 255 stays void).  0, or -1 when K is
 * out of range (out untouched). */
int dl_argmax_rows(const float *prob, int64_t N, int K, uint8_t *out);

/* Accumulate (+=) the confusion matrix conf [K,K] (caller-zeroed) with n
 * pixels: gt [n], pred [n] class maps.  A pixel with gt[i] >= K is skipped;
 * a counted pixel must have pred[i] < K.  K in 1..255.  Returns the number
 * of pixels counted, or -1 (conf untouched) when K is out of range or some
 * counted pixel's pred is K or more; *bad (may be NULL) is then that pixel's
 * index (-1 for a bad K). */
int64_t dl_confusion_add(int64_t *conf, int K, const uint8_t *gt, const uint8_t *pred, int64_t n, int64_t *bad);

/* The scores of a confusion matrix. */
typedef struct DlSegScores {
    double miou;           /* mean over classes with TP + FP + FN > 0 of TP / (TP + FP + FN) */
    double pixel_acc;      /* sum_c TP / counted */
    double mean_class_acc; /* mean over classes with TP + FN > 0 (in the ground truth) of TP / (TP + FN) */
    int nclasses_iou;      /* classes averaged in miou: present in the ground truth or predicted */
    int nclasses_acc;      /* classes averaged in mean_class_acc: present in the ground truth */
    int64_t counted;       /* pixels in conf */
} DlSegScores;

/* Scores of conf [K,K] (K >= 1).  A class with TP + FP + FN = 0 (absent from
 * both maps) is excluded from miou, the usual convention (its IoU is 0/0), so
 * that a data set lacking a class is not scored on it; a class predicted but
 * absent from the ground truth has IoU 0 and counts.  iou [K] (may be NULL)
 * gets each class's IoU, NaN for the excluded.  With no pixel counted every
 * mean is NaN and the counts 0. */
void dl_seg_scores(const int64_t *conf, int K, double *iou, DlSegScores *out);

#endif
