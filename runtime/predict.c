/* predict.c - evaluation and prediction with saved weights, and the pieces
 * of a run that train.c shares (train.h). */
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "checkpoint.h"

int dl_prog_io(const DlPlan *p, const char *name, DlProgIO *io, char **err)
{
    memset(io, 0xff, sizeof *io); /* every index -1 */
    io->prog = dl_plan_find_program(p, name);
    if (io->prog < 0) {
        *err = dl_xasprintf("the plan has no '%s' program (re-run dldlc)", name);
        return -1;
    }
    const DlPlanProgram *pr = &p->programs[io->prog];
    io->batch = pr->batch;
    for (int si = 0; si < pr->nsteps; si++)
        for (int k = 0; k < pr->steps[si].nargs; k++) {
            int t = pr->steps[si].args[k];
            int *slot = NULL;
            switch (p->tensors[t].role) {
            case DL_ROLE_IMAGE: slot = &io->image; break;
            case DL_ROLE_TARGET: slot = &io->target; break;
            case DL_ROLE_LABEL: slot = &io->label; break;
            case DL_ROLE_SCALARS: slot = &io->scalars; break;
            default: break;
            }
            if (slot && *slot < 0) *slot = t;
        }
    for (int i = 0; i < p->noutputs; i++) {
        const DlPlanOutput *out = &p->outputs[i];
        if (out->program != io->prog) continue;
        if (out->kind == 0 && io->loss < 0) io->loss = out->tensor;
        if (out->kind == 2 && io->probs < 0) io->probs = out->tensor;
        if (out->kind == 3 && io->expect < 0) io->expect = out->tensor;
    }
    if (io->batch <= 0 || io->image < 0) {
        *err = dl_xasprintf("the '%s' program has %s (re-run dldlc)", name,
                            io->batch <= 0 ? "no batch size" : "no image input");
        return -1;
    }
    return 0;
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

DlExecOpts dl_exec_opts(const DlRunOpts *o)
{
    DlExecOpts eo = {.nthreads = o->threads, .profile = o->profile, .debug = o->debug,
                     .layout = dl_conv_default_layout()};
    return eo;
}

int dl_load_data(const DlPlan *p, const DlRunOpts *o, DlDataset **d, char **err)
{
    const char *root = o->data_root ? o->data_root : dl_data_root();
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *err = dl_xasprintf("data root '%s' not found (set DLDL_DATA or --data)", root);
        return -1;
    }
    DlDataOpts dopt = {.root = root, .skip_bad = o->skip_bad, .nthreads = o->threads > 0 ? o->threads : 2,
                       .quiet = o->quiet};
    if (dl_data_load(p, &dopt, d, err) != 0) return -1;
    if ((*d)->ntest == 0 && !o->quiet) fprintf(stderr, "dldlrun: warning: the test split is empty\n");
    return 0;
}

int dl_eval_pass(DlExec *e, const DlPlan *p, const DlProgIO *io, const DlDataset *d, DlMetricAcc *acc,
                 int *idx, float *labels, char **err)
{
    int B = io->batch, A = p->nlabels;
    float *img = dl_exec_tensor(e, io->image);
    const float *probs = io->probs >= 0 ? dl_exec_tensor(e, io->probs) : NULL;
    const float *expect = io->expect >= 0 ? dl_exec_tensor(e, io->expect) : NULL;
    int K = dl_target_bins(&p->target);
    memset(acc, 0, sizeof *acc * (size_t)(p->nmetrics ? p->nmetrics : 1));
    for (int i = 0; i < d->ntest; i += B) {
        int n = d->ntest - i < B ? d->ntest - i : B;
        for (int b = 0; b < B; b++) idx[b] = d->test_idx[i + (b < n ? b : n - 1)];
        dl_data_batch(d, &p->target, idx, B, 0, 0, 0, img, NULL, labels);
        if (dl_exec_run(e, io->prog, err) != 0) return -1;
        if (probs && !dl_all_finite(probs, (int64_t)n * K)) {
            *err = dl_xasprintf("the eval program predicts non-finite probabilities for '%s'",
                                d->files[idx[0]]);
            return -1;
        }
        for (int m = 0; m < p->nmetrics; m++)
            dl_metric_add(&acc[m], &p->target, &p->metrics[m], probs, expect, labels, n);
    }
    (void)A;
    return 0;
}

void dl_format_metrics(const DlPlan *p, const DlMetricAcc *acc, const char *prefix, char *buf, size_t n)
{
    size_t used = 0;
    buf[0] = 0;
    for (int m = 0; m < p->nmetrics && used + 1 < n; m++) {
        char one[256];
        dl_metric_format(&acc[m], &p->target, &p->metrics[m], one, sizeof one);
        int k = snprintf(buf + used, n - used, "%s%s%s", m ? "  " : "", prefix, one);
        if (k < 0) break;
        used += (size_t)k;
    }
}

static DlExec *load_with_weights(const DlPlan *p, const DlRunOpts *o, char **err)
{
    DlExecOpts eo = dl_exec_opts(o);
    DlExec *e = dl_exec_load(p, &eo, err);
    if (!e) return NULL;
    char *out = dl_out_dir(o);
    char *w = o->weights ? dl_xstrdup(o->weights) : dl_xasprintf("%s/weights.safetensors", out);
    free(out);
    dl_exec_init_params(e, 0);
    int rc = -1;
    if (access(w, R_OK) != 0)
        *err = dl_xasprintf("no weights at '%s': %s (train first, or give --weights FILE)", w, strerror(errno));
    else
        rc = dl_load_weights(w, p, dl_exec_arenas(e), err);
    free(w);
    if (rc != 0) {
        dl_exec_free(e);
        return NULL;
    }
    return e;
}

int dl_eval(const DlPlan *p, const DlRunOpts *o)
{
    DlProgIO io;
    DlDataset *d = NULL;
    DlExec *e = NULL;
    char *err = NULL;
    int rc = 1;
    if (dl_prog_io(p, "eval", &io, &err) != 0 || dl_load_data(p, o, &d, &err) != 0 ||
        !(e = load_with_weights(p, o, &err))) {
        fprintf(stderr, "dldlrun: %s\n", err);
        goto done;
    }
    int *idx = dl_xcalloc((size_t)io.batch, sizeof *idx);
    float *labels = dl_xcalloc((size_t)io.batch * (size_t)(p->nlabels > 0 ? p->nlabels : 1), sizeof *labels);
    DlMetricAcc *acc = dl_xcalloc((size_t)(p->nmetrics ? p->nmetrics : 1), sizeof *acc);
    if (dl_eval_pass(e, p, &io, d, acc, idx, labels, &err) == 0) {
        char m[512];
        dl_format_metrics(p, acc, "test ", m, sizeof m);
        printf("%s  (%d images)\n", m, d->ntest);
        rc = 0;
    } else {
        fprintf(stderr, "dldlrun: %s\n", err);
    }
    if (o->profile) dl_exec_profile(e, stderr);
    free(idx), free(labels), free(acc);
done:
    free(err);
    dl_exec_free(e);
    dl_data_free(d);
    return rc;
}

/* The label value of bin k on axis a (bins row-major, first axis slowest). */
static float bin_value(const DlPlanTarget *t, int k, int a)
{
    int stride = 1;
    for (int j = t->naxes - 1; j > a; j--) stride *= t->axes[j].nbins;
    return t->axes[a].bins[(k / stride) % t->axes[a].nbins];
}

static void print_prediction(const DlPlan *p, const char *file, const float *probs, const float *expect)
{
    const DlPlanTarget *t = &p->target;
    int K = dl_target_bins(t);
    printf("%s:", file);
    for (int a = 0; a < t->naxes && expect; a++)
        printf("%s %s %.1f%s%s", a ? "," : "", t->axes[a].name, expect[a], *t->axes[a].unit ? " " : "",
               t->axes[a].unit);
    printf("  top:");
    int top[3] = {-1, -1, -1};
    for (int r = 0; r < 3 && r < K; r++) {
        for (int k = 0; k < K; k++) {
            if (k == top[0] || k == top[1]) continue;
            if (top[r] < 0 || probs[k] > probs[top[r]]) top[r] = k;
        }
        printf("%s ", r ? "," : "");
        if (t->naxes > 1) printf("(");
        for (int a = 0; a < t->naxes; a++) printf("%s%g", a ? ", " : "", bin_value(t, top[r], a));
        if (t->naxes > 1) printf(")");
        if (t->naxes == 1 && *t->axes[0].unit) printf(" %s", t->axes[0].unit);
        printf(" %.1f%%", 100.0 * probs[top[r]]);
    }
    printf("\n");
}

int dl_predict(const DlPlan *p, const DlRunOpts *o)
{
    DlProgIO io;
    DlExec *e = NULL;
    const char **names = NULL;
    char *err = NULL;
    int rc = 1, bad = 0;
    if (dl_prog_io(p, "eval", &io, &err) != 0 || !(e = load_with_weights(p, o, &err))) {
        fprintf(stderr, "dldlrun: %s\n", err);
        goto done;
    }
    if (io.probs < 0) {
        fprintf(stderr, "dldlrun: the eval program has no probabilities output (re-run dldlc)\n");
        goto done;
    }
    int B = io.batch, K = dl_target_bins(&p->target), A = p->target.naxes;
    const DlPlanTensor *it = &p->tensors[io.image];
    int64_t per = it->numel / B;
    float *img = dl_exec_tensor(e, io.image);
    const float *probs = dl_exec_tensor(e, io.probs);
    const float *expect = io.expect >= 0 ? dl_exec_tensor(e, io.expect) : NULL;
    names = dl_xcalloc((size_t)B, sizeof *names);
    int i = 0;
    while (i < o->nimages) {
        int n = 0;
        for (; i < o->nimages && n < B; i++) {
            if (dl_data_load_image(p, o->images[i], img + n * per, &err) != 0) {
                fprintf(stderr, "dldlrun: %s\n", err);
                free(err);
                err = NULL;
                bad++;
                continue;
            }
            names[n++] = o->images[i];
        }
        if (n == 0) continue;
        for (int b = n; b < B; b++) memcpy(img + b * per, img + (n - 1) * per, (size_t)per * sizeof *img);
        if (dl_exec_run(e, io.prog, &err) != 0) {
            fprintf(stderr, "dldlrun: %s\n", err);
            goto done;
        }
        for (int b = 0; b < n; b++)
            print_prediction(p, names[b], probs + (size_t)b * K, expect ? expect + (size_t)b * A : NULL);
    }
    rc = bad ? 1 : 0;
done:
    free(names);
    free(err);
    dl_exec_free(e);
    return rc;
}
