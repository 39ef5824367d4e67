/* metrics.c - evaluation metrics (runtime/data.h dl_metric_add / dl_metric_format).
 *
 *   mae       per axis: mean |E_a - l_a|, E_a the expectation of the predicted
 *             distribution's marginal on axis a (DLDL-v2, Gao et al., IJCAI 2018:
 *             the read-out), l_a the raw label (years, degrees).
 *   accuracy  per axis: the arg-max bin of axis a's marginal of probs is correct
 *             when |v_a(bin) - l_a| <= tolerance; tolerance 0 means the exact
 *             bin: the arg-max is the bin nearest to the label (ties to the
 *             lower bin, as target.c).  joint: every axis correct.  As reported
 *             for Pointing'04 by DLDL (Gao et al., IEEE TIP 2017, Table VI).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "data.h"

/* A label exactly on a tolerance edge must count despite float rounding. */
#define TOL_SLACK 1e-4

static int label_stride(const DlMetricAcc *m, const DlPlanTarget *t)
{
    if (m->label_stride > 0) return m->label_stride;
    int s = 0;
    for (int a = 0; a < t->naxes; a++)
        if (t->axes[a].label + 1 > s) s = t->axes[a].label + 1;
    return s;
}

void dl_metric_add(DlMetricAcc *m, const DlPlanTarget *t, const DlPlanMetric *spec,
                   const float *probs, const float *expect, const float *labels, int B)
{
    int A = t->naxes, L = label_stride(m, t), K = dl_target_bins(t);
    int accuracy = strcmp(spec->kind, "accuracy") == 0;
    int maxbins = 0;
    for (int a = 0; a < A; a++)
        if (t->axes[a].nbins > maxbins) maxbins = t->axes[a].nbins;
    double *marg = accuracy ? dl_xmalloc((size_t)maxbins * sizeof *marg) : NULL;

    for (int b = 0; b < B; b++) {
        const float *lab = labels + (size_t)b * L;
        if (!accuracy) {
            for (int a = 0; a < A; a++)
                m->abs_err[a] += fabs((double)expect[(size_t)b * A + a] - (double)lab[t->axes[a].label]);
            continue;
        }
        const float *p = probs + (size_t)b * K;
        int all = 1, stride = K;
        for (int a = 0; a < A; a++) {
            const DlPlanAxis *ax = &t->axes[a];
            stride /= ax->nbins; /* joint bins of the axes after a */
            memset(marg, 0, (size_t)ax->nbins * sizeof *marg);
            for (int k = 0; k < K; k++) marg[(k / stride) % ax->nbins] += p[k];
            int best = 0;
            for (int i = 1; i < ax->nbins; i++)
                if (marg[i] > marg[best]) best = i;
            float l = lab[ax->label];
            int hit = spec->tolerance > 0
                          ? fabs((double)ax->bins[best] - (double)l) <= spec->tolerance + TOL_SLACK
                          : best == dl_target_nearest_bin(ax, l);
            m->hit[a] += hit;
            all &= hit;
        }
        m->hit_joint += all;
    }
    m->n += B;
    free(marg);
}

void dl_metric_format(const DlMetricAcc *m, const DlPlanTarget *t, const DlPlanMetric *spec,
                      char *buf, size_t n)
{
    DlBuf s = {0};
    int accuracy = strcmp(spec->kind, "accuracy") == 0;
    dl_buf_printf(&s, "%s", spec->name);
    for (int a = 0; a < t->naxes; a++) {
        const DlPlanAxis *ax = &t->axes[a];
        if (m->n == 0)
            dl_buf_printf(&s, " %s n/a", ax->name);
        else if (accuracy)
            dl_buf_printf(&s, " %s %.1f%%", ax->name, 100.0 * (double)m->hit[a] / m->n);
        else
            dl_buf_printf(&s, " %s %.2f%s%s", ax->name, m->abs_err[a] / m->n,
                          ax->unit && *ax->unit ? " " : "", ax->unit ? ax->unit : "");
    }
    if (accuracy && t->naxes > 1) {
        if (m->n == 0)
            dl_buf_printf(&s, " joint n/a");
        else
            dl_buf_printf(&s, " joint %.1f%%", 100.0 * (double)m->hit_joint / m->n);
    }
    if (n > 0) snprintf(buf, n, "%s", s.s);
    dl_buf_free(&s);
}
