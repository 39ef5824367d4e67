/* run.c - what --train, --eval, --predict and --cv share (train.h): a
 * program's inputs and outputs, feeding a batch, the evaluation pass and its
 * metrics, the data and output folders. */
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/util.h"
#include "data.h"

/* What dl_feed writes must fit what the program reads: the input tensor is
 * [B, C, H, W] of the data binding's sample size, every target and label
 * input has B rows (their widths are checked by dl_plan_read). */
static int prog_io_fits(const DlPlan *p, const char *name, const DlProgIO *io, char **err)
{
    int C, H, W;
    if (dl_data_input_shape(p, &C, &H, &W, err) != 0) return -1;
    const DlPlanTensor *in = &p->tensors[io->input];
    if (in->ndim < 1 || in->shape[0] != io->batch || in->numel != (int64_t)io->batch * C * H * W) {
        *err = dl_xasprintf("the '%s' program's input '%s' has %lld elements, its batch of %d samples of "
                            "%d x %d x %d needs %lld (re-run dldlc)", name, in->name ? in->name : "?",
                            (long long)in->numel, io->batch, C, H, W, (long long)io->batch * C * H * W);
        return -1;
    }
    if (io->data_stats >= 0 && p->tensors[io->data_stats].numel != 2 * (int64_t)C) {
        *err = dl_xasprintf("the '%s' program's feature statistics hold %lld values, not 2 x %d (re-run dldlc)", name,
                            (long long)p->tensors[io->data_stats].numel, C);
        return -1;
    }
    for (int j = 0; j < io->ntarget + io->nlabel; j++) {
        int t = j < io->ntarget ? io->target[j] : io->label[j - io->ntarget];
        const DlPlanTensor *pt = &p->tensors[t];
        int64_t rows = j < io->ntarget && pt->ref >= 0 && pt->ref < p->ntargets
                           ? dl_plan_target_rows(&p->targets[pt->ref]) : 1;
        if (pt->shape[0] != io->batch * rows) {
            *err = dl_xasprintf("the '%s' program's %s input '%s' has %lld rows, not its batch of %d x %lld "
                                "(re-run dldlc)", name, j < io->ntarget ? "target" : "label",
                                pt->name ? pt->name : "?", (long long)pt->shape[0], io->batch, (long long)rows);
            return -1;
        }
    }
    return 0;
}

int dl_prog_io(const DlPlan *p, const char *name, DlProgIO *io, char **err)
{
    memset(io, 0xff, sizeof *io); /* every index -1 */
    io->ntarget = io->nlabel = io->nexpect = 0;
    io->prog = dl_plan_find_program(p, name);
    if (io->prog < 0) {
        *err = dl_xasprintf("the plan has no '%s' program (re-run dldlc)", name);
        return -1;
    }
    const DlPlanProgram *pr = &p->programs[io->prog];
    io->batch = pr->batch;
    for (int si = 0; si < pr->nsteps; si++)
        for (int k = 0; k < pr->steps[si].nargs; k++) {
            int t = pr->steps[si].args[k], seen = 0;
            switch (p->tensors[t].role) {
            case DL_ROLE_INPUT: if (io->input < 0) io->input = t; break;
            case DL_ROLE_SCALARS: if (io->scalars < 0) io->scalars = t; break;
            case DL_ROLE_DATA_STATS: if (io->data_stats < 0) io->data_stats = t; break;
            case DL_ROLE_TARGET:
                for (int j = 0; j < io->ntarget; j++) seen |= io->target[j] == t;
                if (!seen && io->ntarget < DL_IO_MAX) io->target[io->ntarget++] = t;
                break;
            case DL_ROLE_LABEL:
                for (int j = 0; j < io->nlabel; j++) seen |= io->label[j] == t;
                if (!seen && io->nlabel < DL_IO_MAX) io->label[io->nlabel++] = t;
                break;
            default: break;
            }
        }
    for (int i = 0; i < p->noutputs; i++) {
        const DlPlanOutput *out = &p->outputs[i];
        if (out->program != io->prog) continue;
        if (out->kind == DL_OUT_LOSS && io->loss < 0) io->loss = out->tensor;
        if (out->kind == DL_OUT_PROBS && out->head < DL_PLAN_MAX_TARGETS) io->probs[out->head] = out->tensor;
        if (out->kind == DL_OUT_EXPECT && io->nexpect < DL_IO_MAX) {
            io->expect[io->nexpect].head = out->head;
            io->expect[io->nexpect].target = out->target;
            io->expect[io->nexpect++].tensor = out->tensor;
        }
    }
    if (io->batch <= 0 || io->input < 0) {
        *err = dl_xasprintf("the '%s' program has %s (re-run dldlc)", name,
                            io->batch <= 0 ? "no batch size" : "no input");
        return -1;
    }
    return prog_io_fits(p, name, io, err);
}

int dl_prog_expect(const DlProgIO *io, int head, int target)
{
    for (int i = 0; i < io->nexpect; i++)
        if (io->expect[i].head == head && io->expect[i].target == target) return io->expect[i].tensor;
    return -1;
}

size_t dl_feed_masks(const DlDataset *d, int B) { return d->mask_field >= 0 ? (size_t)B * d->H * d->W : 0; }

void dl_feed(DlExec *e, const DlPlan *p, const DlProgIO *io, const DlDataset *d, const int *idx, int B,
             int augment, uint64_t seed, int epoch, float *labels, uint8_t *masks)
{
    dl_data_batch(d, idx, B, augment, seed, epoch, dl_exec_tensor(e, io->input), labels, masks);
    for (int j = 0; j < io->ntarget; j++) {
        const DlPlanTensor *t = &p->tensors[io->target[j]];
        dl_target_batch(&p->targets[t->ref], d, idx, B, labels, masks, dl_exec_tensor(e, io->target[j]));
    }
    int A = p->nlabels;
    for (int j = 0; j < io->nlabel; j++) {
        const DlPlanTensor *t = &p->tensors[io->label[j]];
        float *dst = dl_exec_tensor(e, io->label[j]);
        for (int b = 0; b < B; b++)
            for (int k = 0; k < t->ncols; k++) dst[(size_t)b * t->ncols + k] = labels[(size_t)b * A + t->cols[k]];
    }
}

char *dl_out_dir(const DlRunOpts *o)
{
    if (o->out_dir) return dl_xstrdup(o->out_dir);
    const char *base = strrchr(o->plan_path, '/');
    base = base ? base + 1 : o->plan_path;
    size_t n = strlen(base);
    if (n > 5 && !strcmp(base + n - 5, ".plan")) n -= 5;
    char *b = dl_xstrndup(base, n);
    char *out = dl_xasprintf("runs/%s", b);
    free(b);
    return out;
}

int dl_mkdir_p(const char *path)
{
    char *p = dl_xstrdup(path);
    int rc = 0;
    for (char *s = p + 1; *s && rc == 0; s++) {
        if (*s != '/') continue;
        *s = 0;
        if (mkdir(p, 0755) != 0 && errno != EEXIST) rc = -1;
        *s = '/';
    }
    if (rc == 0 && mkdir(p, 0755) != 0 && errno != EEXIST) rc = -1;
    free(p);
    return rc;
}

DlExecOpts dl_exec_opts(const DlRunOpts *o)
{
    DlExecOpts eo = {.nthreads = o->threads, .profile = o->profile, .debug = o->debug,
                     .layout = dl_conv_default_layout(), .device = o->device, .comm = o->comm};
    return eo;
}

int dl_load_data(const DlPlan *p, const DlRunOpts *o, int fold, DlDataset **d, char **err)
{
    const char *root = o->data_root ? o->data_root : dl_data_root();
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *err = dl_xasprintf("data root '%s' not found (set DLDL_DATA or --data)", root);
        return -1;
    }
    DlDataOpts dopt = {.root = root, .skip_bad = o->skip_bad, .nthreads = o->threads > 0 ? o->threads : 2,
                       .quiet = o->quiet, .fold = fold + 1};
    if (dl_data_load(p, &dopt, d, err) != 0) return -1;
    if ((*d)->ntest == 0 && !o->quiet) fprintf(stderr, "dldlrun: warning: the test split is empty\n");
    return 0;
}

static int64_t max_bins(const DlPlan *p)
{
    int64_t K = 1;
    for (int h = 0; h < p->nheads; h++)
        if (p->heads[h].K > K) K = p->heads[h].K;
    return K;
}

int dl_eval_pass(DlExec *e, const DlPlan *p, const DlProgIO *io, const DlDataset *d, DlMetricAcc *acc, char **err)
{
    int B = io->batch, rc = -1;
    int64_t K = max_bins(p);
    int *idx = dl_xcalloc((size_t)B, sizeof *idx);
    float *labels = dl_xcalloc((size_t)B * (size_t)(p->nlabels + 1), sizeof *labels);
    float *y = dl_xcalloc((size_t)B * (size_t)K, sizeof *y);
    float *field = dl_xcalloc((size_t)B * (size_t)K, sizeof *field);
    uint8_t *masks = dl_feed_masks(d, B) ? dl_xmalloc(dl_feed_masks(d, B)) : NULL;
    dl_metric_reset(acc, p->nmetrics);
    for (int i = 0; i < d->ntest; i += B) {
        int n = d->ntest - i < B ? d->ntest - i : B;
        for (int b = 0; b < B; b++) idx[b] = d->test_idx[i + (b < n ? b : n - 1)];
        dl_feed(e, p, io, d, idx, B, 0, 0, 0, labels, masks);
        if (dl_exec_run(e, io->prog, err) != 0) goto out;
        for (int h = 0; h < p->nheads; h++) {
            const float *probs = io->probs[h] >= 0 ? dl_exec_tensor(e, io->probs[h]) : NULL;
            if (probs && !dl_all_finite(probs, (int64_t)n * p->heads[h].rows * p->heads[h].K)) {
                *err = dl_xasprintf("the eval program predicts non-finite probabilities for '%s'", d->files[idx[0]]);
                goto out;
            }
        }
        for (int m = 0; m < p->nmetrics; m++) {
            const DlPlanMetric *s = &p->metrics[m];
            int et = s->target >= 0 ? dl_prog_expect(io, s->head, s->target) : -1;
            DlMetricRows r = {io->probs[s->head] >= 0 ? dl_exec_tensor(e, io->probs[s->head]) : NULL,
                              et >= 0 ? dl_exec_tensor(e, et) : NULL, labels, NULL, NULL, masks};
            if (dl_metric_needs_target(s)) {
                dl_target_batch(&p->targets[s->target], d, idx, n, labels, masks, y);
                r.target = y;
            }
            if (dl_metric_needs_field(s)) {
                const DlPlanTarget *t = &p->targets[s->target];
                int w = d->dist_width[t->dist];
                for (int b = 0; b < n; b++)
                    memcpy(field + (size_t)b * (size_t)w, d->dist[t->dist] + (size_t)idx[b] * (size_t)w,
                           (size_t)w * sizeof *field);
                r.field = field;
            }
            if (!r.probs || ((s->kind == DL_MET_MAE || s->kind == DL_MET_EPS_ERROR) && !r.expect)) {
                *err = dl_xasprintf("metric '%s': the eval program lacks its output (re-run dldlc)", s->name);
                goto out;
            }
            dl_metric_add(&acc[m], p, s, &r, n);
        }
    }
    rc = 0;
out:
    free(idx), free(labels), free(y), free(field), free(masks);
    return rc;
}

void dl_format_metrics(const DlPlan *p, const DlMetricAcc *acc, const char *prefix, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int m = 0; m < p->nmetrics && used + 1 < n; m++) {
        char one[256];
        dl_metric_format(&acc[m], p, &p->metrics[m], one, sizeof one);
        int k = snprintf(buf + used, n - used, "%s%s%s", m ? "  " : "", prefix, one);
        if (k < 0) break;
        used += (size_t)k;
    }
}
