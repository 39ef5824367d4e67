/* sources_mat.c - the `mat` source: samples are the rows of MATLAB variables
 * (runtime/matfile.h, libmatio), as in the LDL benchmark sets (Geng, TKDE
 * 2016): `features` (n x d), `labels` (n x c label distributions), FG-Net's
 * `age` (n x 1).
 *
 *   input        the features variable (source.features), d = input.dims
 *   label.N      var:NAME (an n x 1 variable) or argmax:NAME (the column of
 *                each row's maximum, 0-based; ties to the first)
 *   dist.N       var:NAME rows: label distributions.  A row with a negative
 *                or non-finite entry, or summing to 0, makes its sample bad
 *                ("ldl/X.mat row 17: labels has a negative entry -0.1 at
 *                column 3"); every row is renormalised to sum 1, with one
 *                warning counting the rows that were off by more than 1e-3
 *                (FG-Net's Gaussians are cut at ages 0 and 69).
 *
 * Every variable must have the same number of rows; a sample is named
 * "FILE row R" (1-based) in messages.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "data_impl.h"
#include "matfile.h"

#define SUM_TOL 1e-3

/* Read var; the row count must be n (or sets it when *n < 0). */
static int read_var(const DataSpec *spec, const char *var, int64_t *n, DlMatrix *m, char **err)
{
    if (dl_mat_read(spec->path, spec->rel_path, var, m, err)) return -1;
    if (m->rows == 1 && *n > 1 && m->cols == *n) { /* a row vector (FG-Net's age is 1 x n): one value per sample */
        m->rows = m->cols;
        m->cols = 1;
    }
    if (*n >= 0 && m->rows != *n) {
        *err = dl_xasprintf("%s: '%s' has %lld rows, the features %lld", spec->rel_path, var, (long long)m->rows,
                            (long long)*n);
        dl_mat_free(m);
        return -1;
    }
    *n = m->rows;
    return 0;
}

int scan_mat(const DataSpec *spec, SampleList *out, char **err)
{
    if (!spec->features) {
        *err = dl_xasprintf("%s: a mat source feeds feature vectors: declare input = features(d)", spec->rel_path);
        return -1;
    }
    const char *fv = spec->features_var ? spec->features_var : "features";
    DlMatrix X = {0}, lab[DL_MAX_AXES] = {{0}}, dist[DL_PLAN_MAX_TARGETS] = {{0}};
    int64_t n = -1;
    int rc = -1;
    if (read_var(spec, fv, &n, &X, err)) return -1;
    if (X.cols != spec->dims) {
        *err = dl_xasprintf("%s: '%s' has %lld columns but the plan expects %d features (recompile the spec "
                            "for this file, e.g. dldlc -D with its params)", spec->rel_path, fv, (long long)X.cols,
                            spec->dims);
        goto out;
    }
    for (int a = 0; a < spec->nlabels; a++) {
        const LabelSpec *ls = &spec->labels[a];
        if (ls->from != LBL_VAR && ls->from != LBL_ARGMAX) {
            *err = dl_xasprintf("%s: label '%s' must come from variable() or argmax() in a mat source",
                                spec->rel_path, ls->name);
            goto out;
        }
        if (read_var(spec, ls->field, &n, &lab[a], err)) goto out;
        if (ls->from == LBL_VAR && lab[a].cols != 1) {
            *err = dl_xasprintf("%s: label '%s' reads '%s', which is %lld x %lld, not one column", spec->rel_path,
                                ls->name, ls->field, (long long)lab[a].rows, (long long)lab[a].cols);
            goto out;
        }
    }
    int64_t total = 0;
    for (int f = 0; f < spec->ndist; f++) {
        if (read_var(spec, spec->dist_var[f], &n, &dist[f], err)) goto out;
        if (dist[f].cols < 1 || dist[f].cols > DL_PLAN_MAX_BINS) {
            *err = dl_xasprintf("%s: '%s' has %lld columns", spec->rel_path, spec->dist_var[f], (long long)dist[f].cols);
            goto out;
        }
        out->dist_width[f] = (int)dist[f].cols;
        total += dist[f].cols;
    }
    int off_rows = 0;
    double off_max = 0;
    for (int64_t r = 0; r < n; r++) {
        Sample *s = sample_push(out);
        s->rel = dl_xasprintf("%s row %lld", spec->rel_path, (long long)r + 1);
        s->path = dl_xstrdup(s->rel);
        s->vec = dl_xmalloc((size_t)X.cols * sizeof *s->vec);
        memcpy(s->vec, X.data + r * X.cols, (size_t)X.cols * sizeof *s->vec);
        for (int64_t j = 0; j < X.cols && !s->bad; j++)
            if (!isfinite(s->vec[j]))
                s->bad = dl_xasprintf("%s: %s has a non-finite value at column %lld", s->rel, fv, (long long)j + 1);
        for (int a = 0; a < spec->nlabels && !s->bad; a++) {
            const DlMatrix *m = &lab[a];
            const float *row = m->data + r * m->cols;
            float v = row[0];
            if (spec->labels[a].from == LBL_ARGMAX) {
                int64_t best = 0;
                for (int64_t j = 1; j < m->cols; j++)
                    if (row[j] > row[best]) best = j;
                v = (float)best;
            }
            if (!isfinite(v))
                s->bad = dl_xasprintf("%s: label '%s' is not a finite number", s->rel, spec->labels[a].name);
            s->labels[a] = v;
        }
        if (total) s->dist = dl_xmalloc((size_t)total * sizeof *s->dist);
        float *y = s->dist;
        for (int f = 0; f < spec->ndist && !s->bad; f++) {
            const DlMatrix *m = &dist[f];
            const float *row = m->data + r * m->cols;
            double sum = 0;
            for (int64_t j = 0; j < m->cols && !s->bad; j++) {
                if (!isfinite(row[j]) || row[j] < 0)
                    s->bad = dl_xasprintf("%s: %s has %s %g at column %lld (a label distribution has entries >= 0)",
                                          s->rel, spec->dist_var[f], isfinite(row[j]) ? "a negative entry" : "the value",
                                          (double)row[j], (long long)j + 1);
                sum += row[j];
            }
            if (!s->bad && !(sum > 0))
                s->bad = dl_xasprintf("%s: %s sums to 0 (no label distribution)", s->rel, spec->dist_var[f]);
            if (s->bad) break;
            if (fabs(sum - 1) > SUM_TOL) {
                off_rows++;
                if (fabs(sum - 1) > off_max) off_max = fabs(sum - 1);
            }
            for (int64_t j = 0; j < m->cols; j++) y[j] = (float)(row[j] / sum);
            y += m->cols;
        }
    }
    if (off_rows && !spec->quiet)
        fprintf(stderr, "%s: warning: %d row%s of the label distributions do not sum to 1 (off by up to %.3g); "
                        "renormalised\n", spec->rel_path, off_rows, off_rows == 1 ? "" : "s", off_max);
    rc = 0;
out:
    dl_mat_free(&X);
    for (int a = 0; a < DL_MAX_AXES; a++) dl_mat_free(&lab[a]);
    for (int f = 0; f < DL_PLAN_MAX_TARGETS; f++) dl_mat_free(&dist[f]);
    return rc;
}
