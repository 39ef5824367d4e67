/* metrics.c - evaluation metrics (runtime/data.h dl_metric_add / dl_metric_values).
 *
 * One row per DlMetricKind (common/plan_enums.def): an accumulator over the
 * rows of an evaluation pass and the values it reports.
 *
 *   mae        per axis: mean |E_a - l_a|, E_a the expectation of the head's
 *              distribution over the target's bins on axis a (DLDL-v2, Gao et
 *              al., IJCAI 2018: the read-out), l_a the raw label.
 *   accuracy   per axis: the arg-max bin of axis a's marginal is correct when
 *              |v_a(bin) - l_a| <= tolerance; tolerance 0 means the exact bin
 *              (the bin nearest the label, ties to the lower, as target.c).
 *              joint: every axis correct.  As reported for Pointing'04 by DLDL
 *              (Gao et al., IEEE TIP 2017, Table VI).
 *   top1       the head's arg-max bin index equals the class label.
 *   eps_error  mean of 1 - exp(-(E - mu)^2 / (2 sigma^2)) (ChaLearn LAP 2015),
 *              sigma fixed or per sample.
 *   chebyshev, clark, canberra, kl, cosine, intersection
 *              the six LDL measures of Geng (TKDE 2016) between the head's
 *              distribution and the target's, per sample, averaged
 *              (runtime/ldl_measures.c, as the PyTorch reference computes them).
 *   mean_ap    over the whole pass: per class c, the VOC2010+ average
 *              precision (the devkit's VOCap: area under the interpolated
 *              precision-recall curve) of the head's probability of c as the
 *              score against the image's class presence (1 positive, -1
 *              negative, 0 only 'difficult': not counted for c); the mean over
 *              the classes with a positive (runtime/seg_metrics.c).
 *   miou, pixel_accuracy
 *              over the whole pass, per pixel of a per-pixel head: the
 *              arg-max class against the sample's label map (void pixels,
 *              255, not counted) into one confusion matrix; mIoU the mean
 *              over the classes present in the truth or the prediction of
 *              TP / (TP + FP + FN), pixel accuracy TP / counted (the VOC
 *              segmentation measures, Everingham et al., IJCV 2010).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "data.h"
#include "ldl_measures.h"
#include "seg_metrics.h"

/* A label exactly on a tolerance edge must count despite float rounding. */
#define TOL_SLACK 1e-4

typedef struct MetricRow {
    int kind;
    void (*add)(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B);
    int (*values)(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, DlMetricValue *out, int max);
                         /* NULL: one value, the mean of sum[0], in `unit` */
    const char *unit;    /* "%": a fraction shown as a percentage */
    int ldl;             /* DlLdlMeasure + 1 for the six measures, else 0 */
} MetricRow;

static int64_t head_K(const DlPlan *p, const DlPlanMetric *s) { return p->heads[s->head].K; }

/* ---- mae, eps_error: the expectation against labels ---------------------- */

static void add_mae(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    int A = s->ncols, L = p->nlabels;
    for (int b = 0; b < B; b++)
        for (int a = 0; a < A; a++)
            m->sum[a] += fabs((double)r->expect[(size_t)b * A + a] - (double)r->labels[(size_t)b * L + s->cols[a]]);
}

static void add_eps(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    int L = p->nlabels;
    for (int b = 0; b < B; b++) {
        const float *lab = r->labels + (size_t)b * L;
        double sigma = s->sigma_col >= 0 ? lab[s->sigma_col] : s->sigma;
        m->sum[0] += dl_eps_error(r->expect[b], lab[s->cols[0]], sigma);
    }
}

static int values_mae(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, DlMetricValue *out, int max)
{
    const DlPlanTarget *t = &p->targets[s->target];
    int k = 0;
    for (int a = 0; a < s->ncols && k < max; a++, k++) {
        char key[32];
        snprintf(key, sizeof key, "label.%d", s->cols[a]);
        const char *lab = dl_plan_kv(p->data, p->ndata, key);
        snprintf(out[k].name, sizeof out[k].name, "%s_%s", s->name, lab ? lab : t->axes[a].name);
        snprintf(key, sizeof key, "label.%d.unit", s->cols[a]);
        out[k].unit = dl_plan_kv(p->data, p->ndata, key);
        if (!out[k].unit) out[k].unit = "";
        out[k].value = m->n ? m->sum[a] / m->n : NAN;
    }
    return k;
}

static int values_one(const DlMetricAcc *m, const DlPlanMetric *s, const char *unit, DlMetricValue *out, int max)
{
    if (max < 1) return 0;
    snprintf(out[0].name, sizeof out[0].name, "%s", s->name);
    out[0].value = m->n ? m->sum[0] / m->n : NAN;
    out[0].unit = unit;
    return 1;
}

/* ---- accuracy (marginal arg-max per axis), top1 --------------------------- */

static void add_accuracy(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    const DlPlanTarget *t = &p->targets[s->target];
    int A = t->naxes, L = p->nlabels, K = dl_target_bins(t), maxbins = 1;
    for (int a = 0; a < A; a++)
        if (t->axes[a].nbins > maxbins) maxbins = t->axes[a].nbins;
    double *marg = dl_xmalloc((size_t)maxbins * sizeof *marg);
    for (int b = 0; b < B; b++) {
        const float *lab = r->labels + (size_t)b * L, *pr = r->probs + (size_t)b * K;
        int all = 1, stride = K;
        for (int a = 0; a < A; a++) {
            const DlPlanAxis *ax = &t->axes[a];
            stride /= ax->nbins; /* joint bins of the axes after a */
            int best = 0;
            memset(marg, 0, (size_t)ax->nbins * sizeof *marg);
            for (int k = 0; k < K; k++) marg[(k / stride) % ax->nbins] += pr[k];
            for (int i = 1; i < ax->nbins; i++)
                if (marg[i] > marg[best]) best = i;
            float l = lab[ax->label];
            int hit = s->tolerance > 0 ? fabs((double)ax->bins[best] - (double)l) <= s->tolerance + TOL_SLACK
                                       : best == dl_target_nearest_bin(ax, l);
            m->sum[a] += hit;
            all &= hit;
        }
        m->sum[A] += all;
    }
    free(marg);
}

static int values_accuracy(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, DlMetricValue *out, int max)
{
    const DlPlanTarget *t = &p->targets[s->target];
    int k = 0;
    for (int a = 0; a <= t->naxes && k < max; a++) {
        if (a == t->naxes && t->naxes == 1) break;
        snprintf(out[k].name, sizeof out[k].name, "%s_%s", s->name, a < t->naxes ? t->axes[a].name : "joint");
        out[k].value = m->n ? m->sum[a] / m->n : NAN;
        out[k++].unit = "%";
    }
    return k;
}

static void add_top1(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    int64_t K = head_K(p, s);
    for (int b = 0; b < B; b++) {
        const float *pr = r->probs + (size_t)b * (size_t)K;
        int64_t best = 0;
        for (int64_t k = 1; k < K; k++)
            if (pr[k] > pr[best]) best = k;
        m->sum[0] += (double)best == (double)r->labels[(size_t)b * p->nlabels + s->cols[0]];
    }
}

/* ---- the six LDL measures ------------------------------------------------- */

static const MetricRow *row_of(int kind);

static void add_ldl(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    int64_t K = head_K(p, s);
    DlLdlMeasure which = (DlLdlMeasure)(row_of(s->kind)->ldl - 1);
    for (int b = 0; b < B; b++)
        m->sum[0] += dl_ldl_measure(which, r->probs + (size_t)b * (size_t)K, r->target + (size_t)b * (size_t)K, (int)K);
}

/* ---- mean_ap: every row of the pass kept, scored at the end --------------- */

static void add_map(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    int64_t K = head_K(p, s);
    size_t need = (size_t)m->n + (size_t)B;
    if (need > m->cap) {
        m->cap = need > 2 * m->cap ? need : 2 * m->cap;
        m->scores = dl_xrealloc(m->scores, m->cap * (size_t)K * sizeof *m->scores);
        m->truth = dl_xrealloc(m->truth, m->cap * (size_t)K * sizeof *m->truth);
    }
    memcpy(m->scores + (size_t)m->n * (size_t)K, r->probs, (size_t)B * (size_t)K * sizeof *m->scores);
    for (int64_t i = 0; i < (int64_t)B * K; i++) {
        float v = r->field[i];
        m->truth[(size_t)m->n * (size_t)K + (size_t)i] = (int8_t)(v > 0 ? 1 : v < 0 ? -1 : 0);
    }
}

static int values_map(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, DlMetricValue *out, int max)
{
    if (max < 1) return 0;
    snprintf(out[0].name, sizeof out[0].name, "%s", s->name);
    out[0].unit = "%";
    out[0].value = m->n ? dl_map(DL_AP_VOC, m->scores, m->truth, m->n, (int)head_K(p, s), NULL, NULL) : NAN;
    return 1;
}

/* ---- miou, pixel_accuracy: one confusion matrix over the pass ------------- */

static void add_seg(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, const DlMetricRows *r, int B)
{
    int K = (int)head_K(p, s);
    int64_t n = (int64_t)B * p->heads[s->head].rows;
    if (!r->masks || K > 255) return;
    if (!m->conf) m->conf = dl_xcalloc((size_t)K * (size_t)K, sizeof *m->conf);
    if ((size_t)n > m->pred_cap) {
        m->pred = dl_xrealloc(m->pred, (size_t)n);
        m->pred_cap = (size_t)n;
    }
    dl_argmax_rows(r->probs, n, K, m->pred);
    dl_confusion_add(m->conf, K, r->masks, m->pred, n, NULL);
}

static int values_seg(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *s, DlMetricValue *out, int max)
{
    if (max < 1) return 0;
    DlSegScores sc = {NAN, NAN, NAN, 0, 0, 0};
    if (m->conf) dl_seg_scores(m->conf, (int)head_K(p, s), NULL, &sc);
    snprintf(out[0].name, sizeof out[0].name, "%s", s->name);
    out[0].unit = "%";
    out[0].value = s->kind == DL_MET_MIOU ? sc.miou : sc.pixel_acc;
    return 1;
}

/* ---- the table ------------------------------------------------------------ */

static const MetricRow rows[] = {
    {DL_MET_MAE, add_mae, values_mae, NULL, 0},
    {DL_MET_ACCURACY, add_accuracy, values_accuracy, NULL, 0},
    {DL_MET_TOP1, add_top1, NULL, "%", 0},
    {DL_MET_EPS_ERROR, add_eps, NULL, "", 0},
    {DL_MET_CHEBYSHEV, add_ldl, NULL, "", DL_LDL_CHEBYSHEV + 1},
    {DL_MET_CLARK, add_ldl, NULL, "", DL_LDL_CLARK + 1},
    {DL_MET_CANBERRA, add_ldl, NULL, "", DL_LDL_CANBERRA + 1},
    {DL_MET_KL, add_ldl, NULL, "", DL_LDL_KL + 1},
    {DL_MET_COSINE, add_ldl, NULL, "", DL_LDL_COSINE + 1},
    {DL_MET_INTERSECTION, add_ldl, NULL, "", DL_LDL_INTERSECTION + 1},
    {DL_MET_MEAN_AP, add_map, values_map, "%", 0},
    {DL_MET_MIOU, add_seg, values_seg, "%", 0},
    {DL_MET_PIXEL_ACCURACY, add_seg, values_seg, "%", 0},
};
_Static_assert(sizeof rows / sizeof *rows == DL_MET_COUNT, "one row per metric kind");

static const MetricRow *row_of(int kind)
{
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++)
        if (rows[i].kind == kind) return &rows[i];
    return &rows[0]; /* unreachable: the plan verifier admits only listed kinds */
}

int dl_metric_needs_target(const DlPlanMetric *spec) { return row_of(spec->kind)->ldl > 0; }
int dl_metric_needs_field(const DlPlanMetric *spec) { return spec->kind == DL_MET_MEAN_AP; }

void dl_metric_reset(DlMetricAcc *acc, int n)
{
    for (int i = 0; i < n; i++) {
        free(acc[i].scores);
        free(acc[i].truth);
        free(acc[i].conf);
        free(acc[i].pred);
        memset(&acc[i], 0, sizeof acc[i]);
    }
}

void dl_metric_add(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *spec, const DlMetricRows *r, int B)
{
    row_of(spec->kind)->add(m, p, spec, r, B);
    m->n += B;
}

int dl_metric_values(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *spec, DlMetricValue *out, int max)
{
    const MetricRow *r = row_of(spec->kind);
    return r->values ? r->values(m, p, spec, out, max) : values_one(m, spec, r->unit, out, max);
}

void dl_metric_format(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *spec, char *buf, size_t n)
{
    DlMetricValue v[DL_MAX_AXES + 1];
    int nv = dl_metric_values(m, p, spec, v, DL_MAX_AXES + 1);
    DlBuf s = {0};
    dl_buf_printf(&s, "%s", spec->name);
    size_t pre = strlen(spec->name);
    for (int i = 0; i < nv; i++) {
        const char *sub = v[i].name[pre] == '_' ? v[i].name + pre + 1 : "";
        if (*sub) dl_buf_printf(&s, " %s", sub);
        if (m->n == 0) dl_buf_printf(&s, " n/a");
        else if (!strcmp(v[i].unit, "%")) dl_buf_printf(&s, " %.1f%%", 100.0 * v[i].value);
        else if (*v[i].unit) dl_buf_printf(&s, " %.2f %s", v[i].value, v[i].unit);
        else dl_buf_printf(&s, " %.4f", v[i].value);
    }
    if (n > 0) snprintf(buf, n, "%s", s.s);
    dl_buf_free(&s);
}
