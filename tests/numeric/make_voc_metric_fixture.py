#!/usr/bin/env python3
"""make_voc_metric_fixture.py - write tests/numeric/voc_metrics.txt, the reference
for runtime/seg_metrics.c (checked by tests/unit/test_seg_metrics.c to 1e-9).

  ap    one class: scores (float32, many tied) and VOC ground truth in {1, 0, -1};
        samples with 0 ('difficult only') are left out.  Two values:
        ap_step  scikit-learn's average_precision_score on the samples with
                 g != 0 (g == 1 the positive label): the non-interpolated step
                 sum, a tie group of scores one threshold.
        ap_voc   voc_ap() below, a numpy transcription of the VOC2010..2012
                 devkit's VOCap.m (VOCdevkit/VOCcode/VOCap.m):
                     mrec = [0; rec; 1]; mpre = [0; prec; 0];
                     for i = numel(mpre)-1:-1:1, mpre(i) = max(mpre(i), mpre(i+1)); end
                     i = find(mrec(2:end) ~= mrec(1:end-1)) + 1;
                     ap = sum((mrec(i) - mrec(i-1)) .* mpre(i));
                 on the precision-recall points of each distinct score (ties
                 grouped, as sklearn's precision_recall_curve, whose points
                 are checked equal here).  For scores without ties the script
                 also checks it equals the devkit's own VOCevalcls.m ranking
                 (MATLAB's stable sort of -score, one point per sample, the
                 difficult ones kept in the list but counted in neither tp nor
                 fp; MATLAB's max ignores the NaN precision 0/0 they can give).
  map   a [N, C] problem: per-class ap_voc / ap_step (nan for a class with no
        positive: skipped) and their means over the classes used.
  seg   class probabilities [npix, K] (float32, quantised so that rows tie) and
        ground-truth maps with void (255) pixels, over several images: the
        arg-max (numpy.argmax: ties to the lowest index), the confusion matrix
        (numpy bincount, checked equal to sklearn's confusion_matrix), per-class
        IoU TP/(TP+FP+FN) (nan when 0/0: the class is in neither map), mIoU over
        the others (checked against sklearn's jaccard_score), pixel accuracy
        (sklearn's accuracy_score) and the mean class accuracy over the classes
        in the ground truth (sklearn's balanced_accuracy_score).
Usage: python3 tests/numeric/make_voc_metric_fixture.py [OUT]   (numpy, scikit-learn).
"""
import sys
import warnings

import numpy as np
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score,
                             confusion_matrix, jaccard_score, precision_recall_curve)

warnings.simplefilter("ignore")  # sklearn: "y_pred contains classes not in y_true"


def f32(a):
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def pr_points(s, g):
    """Recall and precision at each distinct score, highest first (g in {1,-1})."""
    order = np.argsort(-s, kind="stable")
    s, pos = s[order], g[order] > 0
    last = np.r_[np.nonzero(np.diff(s))[0], s.size - 1]  # the end of each tie group
    tp = np.cumsum(pos)[last].astype(np.float64)
    fp = np.cumsum(~pos)[last].astype(np.float64)
    return tp / pos.sum(), tp / (tp + fp)


def voc_ap(rec, prec):
    """VOCap.m (VOC2010..2012 devkit), transcribed."""
    mrec = np.r_[0.0, rec, 1.0]
    mpre = np.r_[0.0, prec, 0.0]
    for i in range(mpre.size - 2, -1, -1):
        mpre[i] = np.fmax(mpre[i], mpre[i + 1])  # MATLAB's max ignores NaN
    i = np.nonzero(mrec[1:] != mrec[:-1])[0] + 1
    return float(np.sum((mrec[i] - mrec[i - 1]) * mpre[i]))


def devkit_ap(s, g):
    """VOCevalcls.m's ranking: stable sort of -score, a point per sample, the
    difficult (g == 0) samples kept in the list."""
    si = np.argsort(-s, kind="stable")
    tp = np.cumsum(g[si] > 0).astype(np.float64)
    fp = np.cumsum(g[si] < 0).astype(np.float64)
    with np.errstate(invalid="ignore"):
        prec = tp / (fp + tp)
    return voc_ap(tp / np.sum(g > 0), prec)


def ap_pair(s, g):
    """(ap_voc, ap_step) of one class; nan, nan with no positive."""
    keep = g != 0
    s, g = s[keep], g[keep]
    if not np.any(g > 0):
        return float("nan"), float("nan")
    rec, prec = pr_points(s, g)
    # the same points as sklearn's curve (reversed, without its (0, 1) end)
    sp, sr, _ = precision_recall_curve(g > 0, s)
    assert np.array_equal(sp[:-1][::-1], prec) and np.array_equal(sr[:-1][::-1], rec)
    step = float(average_precision_score(g > 0, s))
    mine = float(np.sum(np.diff(np.r_[0.0, rec]) * prec))
    assert abs(step - mine) < 1e-12, (step, mine)
    v = voc_ap(rec, prec)
    assert v >= step - 1e-12
    return v, step


def ap_cases(rng):
    out = []
    out.append(("by hand: + - + - -", np.array([0.9, 0.8, 0.7, 0.6, 0.5]), np.array([1, -1, 1, -1, -1])))
    out.append(("all positive", np.array([0.3, 0.1, 0.2]), np.array([1, 1, 1])))
    out.append(("one positive, ranked last", np.array([0.9, 0.8, 0.7, 0.1]), np.array([-1, -1, -1, 1])))
    out.append(("positive tied with negatives at the top", np.array([0.9, 0.9, 0.9, 0.5, 0.4]),
                np.array([-1, 1, -1, 1, -1])))
    out.append(("all scores equal", np.full(6, 0.25), np.array([1, -1, -1, 1, -1, -1])))
    out.append(("difficult samples at the top", np.array([0.99, 0.98, 0.7, 0.6, 0.5, 0.4]),
                np.array([0, 0, -1, 1, 1, -1])))
    out.append(("negative and large scores", np.array([-3.0, 1e30, -1e30, 0.0, -0.5, 7.25]),
                np.array([1, -1, 1, 0, 1, -1])))
    for n, levels, p_pos, p_diff in [(50, 10, 0.3, 0.1), (200, 7, 0.2, 0.1), (333, 40, 0.5, 0.05)]:
        s = rng.randint(0, levels, n) / levels + 0.05  # few distinct values: many ties
        g = np.where(rng.uniform(size=n) < p_pos, 1, -1)
        g[rng.uniform(size=n) < p_diff] = 0
        s = s + 0.3 * (g > 0) * (rng.uniform(size=n) < 0.5)  # positives a little higher
        out.append(("n=%d, %d score levels (ties), some difficult" % (n, levels), s, g))
    for n in (20, 1000):
        s = rng.normal(size=n) + 0.8 * (rng.uniform(size=n) < 0.3)
        g = np.where(s + rng.normal(0, 1, n) > 0.5, 1, -1)
        g[rng.uniform(size=n) < 0.08] = 0
        out.append(("n=%d continuous scores (no ties), some difficult" % n, s, g))
    return out


def seg_case(rng, K, shapes):
    """Label maps with void borders, and probabilities that are mostly right."""
    gts, probs = [], []
    for h, w in shapes:
        gt = np.zeros((h, w), dtype=np.int64)
        for _ in range(3):  # a few rectangles of random classes among 1..12
            c = rng.randint(1, 13)
            y0, x0 = rng.randint(0, h - 2), rng.randint(0, w - 2)
            y1, x1 = rng.randint(y0 + 1, h), rng.randint(x0 + 1, w)
            gt[y0:y1, x0:x1] = c
            gt[y0, x0:x1] = 255  # a void border line
        gt[rng.uniform(size=(h, w)) < 0.03] = 255
        gt = gt.ravel()
        logits = rng.normal(0, 1, (gt.size, K))
        right = (gt < K) & (rng.uniform(size=gt.size) < 0.7)
        logits[right, np.where(right, gt, 0)[right]] += 3.0
        logits[rng.uniform(size=gt.size) < 0.05, 19] += 6.0  # class 19: predicted, never in gt
        logits[:, 13:19] -= 20.0  # classes 13..18 and 20: in neither map (excluded from mIoU)
        logits[:, 20] -= 20.0
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        p = np.round(p * 8) / 8  # quantised: many rows tie between classes
        tie = rng.uniform(size=gt.size) < 0.05
        p[tie] = 0.0
        p[tie, 4] = p[tie, 2] = 0.5  # exact ties between 2 and 4: argmax 2
        gts.append(gt)
        probs.append(f32(p))
    return gts, probs


def seg_reference(gts, probs, K):
    conf = np.zeros((K, K), dtype=np.int64)
    preds = []
    for gt, p in zip(gts, probs):
        pred = np.argmax(p, axis=1)
        preds.append(pred)
        m = gt < K
        conf += np.bincount(gt[m] * K + pred[m], minlength=K * K).reshape(K, K)
    g_all = np.concatenate([g[g < K] for g in gts])
    p_all = np.concatenate([p[g < K] for g, p in zip(gts, preds)])
    assert np.array_equal(conf, confusion_matrix(g_all, p_all, labels=np.arange(K)))
    tp = np.diag(conf).astype(np.float64)
    fn = conf.sum(1) - tp
    fp = conf.sum(0) - tp
    union = tp + fp + fn
    with np.errstate(invalid="ignore"):
        iou = tp / union
    used = union > 0
    miou = float(iou[used].mean())
    present = np.nonzero(used)[0]
    assert abs(miou - jaccard_score(g_all, p_all, labels=present, average="macro")) < 1e-12
    pix = float(tp.sum() / conf.sum())
    assert abs(pix - accuracy_score(g_all, p_all)) < 1e-12
    ingt = conf.sum(1) > 0
    mca = float((tp[ingt] / conf.sum(1)[ingt]).mean())
    assert abs(mca - balanced_accuracy_score(g_all, p_all)) < 1e-12
    return preds, conf, iou, [miou, pix, mca, int(used.sum()), int(ingt.sum()), int(conf.sum())]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/voc_metrics.txt"
    rng = np.random.RandomState(2012)

    def section(f, name, xs, fmt="%.17g", per_line=10):
        xs = np.asarray(xs, dtype=np.float64).ravel()
        f.write("%s %d\n" % (name, xs.size))
        for i in range(0, xs.size, per_line):
            f.write(" ".join(fmt % x for x in xs[i:i + per_line]) + "\n")

    aps = [(d, f32(s), np.asarray(g, dtype=np.int64)) for d, s, g in ap_cases(rng)]
    same, differ = 0, 0
    for d, s, g in aps:
        v, _ = ap_pair(s, g)
        k = g != 0
        if np.unique(s[k]).size == k.sum():
            assert abs(devkit_ap(s, g) - v) < 1e-12, d
            same += 1
        elif abs(devkit_ap(s, g) - v) > 1e-12:
            differ += 1

    # mAP: VOC-like ground truth; class 3 has no sample, class 7 only difficult ones
    N, C = 60, 20
    G = np.where(rng.uniform(size=(N, C)) < 0.15, 1, -1)
    G[rng.uniform(size=(N, C)) < 0.04] = 0
    G[:, 3] = -1
    G[:, 7] = np.where(rng.uniform(size=N) < 0.2, 0, -1)
    S = f32(np.round((0.5 * (G > 0) + rng.uniform(size=(N, C))) * 16) / 16)  # ties again
    per = [ap_pair(S[:, c], G[:, c]) for c in range(C)]
    apv = np.array([p[0] for p in per])
    aps_ = np.array([p[1] for p in per])
    used = ~np.isnan(apv)

    K = 21
    gts, probs = seg_case(rng, K, [(15, 20), (9, 31), (24, 11)])
    preds, conf, iou, scores = seg_reference(gts, probs, K)

    with open(out, "w") as f:
        f.write("# dldl VOC metrics fixture, version 1\n")
        f.write("# written by tests/numeric/make_voc_metric_fixture.py (numpy, scikit-learn); do not edit, re-run it\n")
        f.write("# sections: NAME COUNT, then COUNT numbers; scores and probabilities are float32 values\n")
        f.write("# ap: ap_voc = VOCap.m of the tie-grouped curve, ap_step = sklearn average_precision_score\n")
        section(f, "nap", [len(aps)])
        for i, (d, s, g) in enumerate(aps):
            f.write("# ap case %d: %s\n" % (i, d))
            section(f, "n", [s.size])
            section(f, "score", s, "%.9g")
            section(f, "gt", g, "%d", 30)
            v, st = ap_pair(s, g)
            section(f, "ap_voc", [v])
            section(f, "ap_step", [st])
        f.write("# map: score, gt [N, C] row-major; per-class AP (nan: no positive, skipped); means; classes used\n")
        section(f, "N", [N])
        section(f, "C", [C])
        section(f, "score", S, "%.9g", C)
        section(f, "gt", G, "%d", C)
        section(f, "ap_voc", apv)
        section(f, "ap_step", aps_)
        section(f, "map_voc", [apv[used].mean()])
        section(f, "map_step", [aps_[used].mean()])
        section(f, "nused", [int(used.sum())])
        f.write("# seg: K, images (npix, gt [npix], prob [npix, K], argmax [npix]), then over all images:\n")
        f.write("#   conf [K, K] (row gt, column prediction), iou [K] (nan: in neither map),\n")
        f.write("#   scores: miou pixel_acc mean_class_acc nclasses_iou nclasses_acc counted\n")
        section(f, "K", [K])
        section(f, "nimg", [len(gts)])
        for gt, p, pr in zip(gts, probs, preds):
            section(f, "npix", [gt.size])
            section(f, "gt", gt, "%d", 30)
            section(f, "prob", p, "%.9g", K)
            section(f, "argmax", pr, "%d", 30)
        section(f, "conf", conf, "%d", K)
        section(f, "iou", iou)
        section(f, "scores", scores)
    print("wrote %s: %d AP cases (%d without ties equal to the devkit's ranking; with ties, %d differ from it), "
          "mAP of %d x %d (%d classes used), segmentation of %d images, K = %d, %d pixels counted, mIoU %.4f over %d classes"
          % (out, len(aps), same, differ, N, C, int(used.sum()), len(gts), K, scores[5], scores[0], scores[3]))


if __name__ == "__main__":
    main()
