/* train.c - the training loop of dldlrun (train.h).
 *
 * Per epoch: the epoch's order (dl_data_shuffle), then for each full batch
 * the inputs (dl_data_batch with augmentation), SCALARS = [lr, momentum,
 * step, seed] from the schedule, one run of the "train" program, and a loss
 * check; then the "eval" program over the test split, one result line, and
 * the weights and checkpoint saved atomically.  Nothing is allocated inside
 * the batch loop.
 */
#include "train.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "checkpoint.h"
#include "ldl_measures.h"
#include "schedule.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static void fmt_eta(double s, char *buf, size_t n)
{
    long t = s > 0 && s < 1e8 ? (long)(s + 0.5) : 0;
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

/* Progress on stderr: rewritten in place on a terminal, else a line per ~10 s. */
typedef struct Progress {
    int tty, quiet, shown;
    double last;
} Progress;

static void progress(Progress *pg, int ep, int epochs, int b, int nb, double loss, double lr, double ips,
                     double eta)
{
    if (pg->quiet) return;
    double t = now();
    if (!pg->tty && t - pg->last < 10.0) return;
    if (pg->tty && t - pg->last < 0.2 && b != nb) return;
    pg->last = t;
    char e[32];
    fmt_eta(eta, e, sizeof e);
    fprintf(stderr, "%sepoch %d/%d  batch %d/%d  loss %.3f  lr %.4g  %.0f img/s  ETA %s%s", pg->tty ? "\r" : "",
            ep, epochs, b, nb, loss, lr, ips, e, pg->tty ? "\033[K" : "\n");
    fflush(stderr);
    pg->shown = 1;
}

static void progress_clear(Progress *pg)
{
    if (pg->tty && pg->shown) fprintf(stderr, "\r\033[K");
    pg->shown = 0;
}

static int save_all(const char *out, const DlPlan *p, DlExec *e, const DlTrainPos *pos, const char *metrics,
                    char **err)
{
    char *wpath = dl_xasprintf("%s/weights.safetensors", out);
    char *cpath = dl_xasprintf("%s/checkpoint.safetensors", out);
    DlKV meta[1] = {{"test", (char *)metrics}};
    int rc = dl_save_weights(wpath, p, dl_exec_arenas(e), pos->epoch, meta, 1, err);
    if (rc == 0) rc = dl_save_checkpoint(cpath, p, dl_exec_arenas(e), pos, err);
    free(wpath), free(cpath);
    return rc;
}

typedef struct Loop {
    const DlPlan *p;
    const DlRunOpts *o;
    DlExec *e;
    DlDataset *d;
    DlProgIO tr, ev;
    DlSchedule sched;
    DlTrainPos pos;
    int epochs, nb;
    char *out;
    DlMetricAcc *acc;  /* the last evaluation: one accumulator per plan metric */
    const char *fold;  /* --cv: the fold's name (one result line per fold, not per epoch); else NULL */
} Loop;

/* One epoch (0-based ep) of training; returns 0 or -1 with *err. */
static int train_epoch(Loop *L, int ep, int *order, Progress *pg, double *loss_mean, double *secs, char **err)
{
    const DlPlan *p = L->p;
    DlExec *e = L->e;
    int B = L->tr.batch;
    float *lab = dl_xcalloc((size_t)B * (size_t)(p->nlabels + 1), sizeof *lab);
    float *sc = dl_exec_tensor(e, L->tr.scalars);
    const float *loss = dl_exec_tensor(e, L->tr.loss);
    dl_data_shuffle(L->d, L->pos.seed, ep, order);
    double t0 = now(), sum = 0;
    for (int b = 0; b < L->nb; b++) {
        dl_feed(e, p, &L->tr, L->d, order + (size_t)b * (size_t)B, B, 1, L->pos.seed, ep, lab);
        double lr, mom;
        dl_schedule_at(&L->sched, L->pos.step, &lr, &mom);
        sc[0] = (float)lr, sc[1] = (float)mom, sc[2] = (float)L->pos.step, sc[3] = (float)L->pos.seed;
        if (dl_exec_run(e, L->tr.prog, err) != 0) {
            free(lab);
            return -1;
        }
        if (!isfinite(loss[0])) {
            free(lab);
            *err = dl_xasprintf("the loss is %s at epoch %d batch %d (step %lld, lr %.4g)%s",
                                isnan(loss[0]) ? "NaN" : "infinite", ep + 1, b + 1, (long long)L->pos.step, lr,
                                L->o->debug >= 2 ? "" : "; run with DLDL_DEBUG=2 to find the op that made it");
            return -1;
        }
        sum += loss[0];
        L->pos.step++;
        double el = now() - t0, ips = (double)(b + 1) * B / el;
        double left = (double)(L->nb - b - 1) + (double)(L->epochs - ep - 1) * L->nb;
        progress(pg, ep + 1, L->epochs, b + 1, L->nb, sum / (b + 1), lr, ips, left * el / (b + 1));
    }
    *loss_mean = sum / (L->nb ? L->nb : 1);
    *secs = now() - t0;
    free(lab);
    return 0;
}

/* Append one row to OUT/history.csv (created with its header when training
 * starts from epoch 0): epoch, mean training loss, seconds, images/s, then
 * each metric's values (dl_metric_values: MAE in the label's unit, accuracies
 * as fractions, LDL measures as they are).  For plotting curves. */
static void history_append(const Loop *L, const DlMetricAcc *acc, int epoch, double loss, double secs,
                           double ips)
{
    const DlPlan *p = L->p;
    char *path = dl_xasprintf("%s/history.csv", L->out);
    FILE *f = fopen(path, epoch == 1 ? "w" : "a");
    if (!f) {
        fprintf(stderr, "dldlrun: warning: cannot write '%s': %s\n", path, strerror(errno));
        free(path);
        return;
    }
    DlMetricValue v[DL_MAX_AXES + 1];
    if (epoch == 1) {
        fprintf(f, "epoch,train_loss,seconds,images_per_s");
        for (int m = 0; m < p->nmetrics; m++) {
            int nv = dl_metric_values(&acc[m], p, &p->metrics[m], v, DL_MAX_AXES + 1);
            for (int k = 0; k < nv; k++) fprintf(f, ",%s", v[k].name);
        }
        fputc('\n', f);
    }
    fprintf(f, "%d,%.6g,%.2f,%.1f", epoch, loss, secs, ips);
    for (int m = 0; m < p->nmetrics; m++) {
        int nv = dl_metric_values(&acc[m], p, &p->metrics[m], v, DL_MAX_AXES + 1);
        for (int k = 0; k < nv; k++) fprintf(f, ",%.6g", v[k].value);
    }
    fputc('\n', f);
    if (fclose(f) != 0) fprintf(stderr, "dldlrun: warning: cannot write '%s': %s\n", path, strerror(errno));
    free(path);
}

static int train_loop(Loop *L)
{
    const DlPlan *p = L->p;
    const DlRunOpts *o = L->o;
    char *err = NULL;
    int start = L->pos.epoch, rc = 1;
    int *order = dl_xcalloc((size_t)L->d->ntrain + 1, sizeof *order);
    DlMetricAcc *acc = L->acc;
    Progress pg = {.tty = isatty(2), .quiet = o->quiet, .last = -1e9};
    if (start >= L->epochs) {
        printf("nothing to do: %s holds %d epochs of %d\n", L->out, start, L->epochs);
        rc = 0;
        goto done;
    }
    for (int ep = start; ep < L->epochs; ep++) {
        double t0 = now(), loss, train_s;
        if (train_epoch(L, ep, order, &pg, &loss, &train_s, &err) != 0) {
            progress_clear(&pg);
            fprintf(stderr, "dldlrun: %s\n", err);
            goto done;
        }
        progress_clear(&pg);
        if (dl_eval_pass(L->e, p, &L->ev, L->d, acc, &err) != 0) {
            fprintf(stderr, "dldlrun: %s\n", err);
            goto done;
        }
        char m[512];
        dl_format_metrics(p, acc, "test ", m, sizeof m);
        L->pos.epoch = ep + 1;
        double secs = now() - t0;
        if (!L->fold)
            printf("epoch %d/%d  train loss %.3f  %s  (%.1f s, %.0f img/s)\n", ep + 1, L->epochs, loss, m, secs,
                   (double)L->nb * L->tr.batch / train_s);
        else if (ep + 1 == L->epochs)
            printf("%s: %d epochs, train loss %.3f  %s\n", L->fold, L->epochs, loss, m);
        fflush(stdout);
        history_append(L, acc, ep + 1, loss, secs, (double)L->nb * L->tr.batch / train_s);
        if (save_all(L->out, p, L->e, &L->pos, m, &err) != 0) {
            fprintf(stderr, "dldlrun: %s\n", err);
            goto done;
        }
    }
    if (!o->quiet) fprintf(stderr, "dldlrun: weights saved to %s/weights.safetensors\n", L->out);
    rc = 0;
done:
    if (o->profile) dl_exec_profile(L->e, stderr);
    free(err);
    free(order);
    return rc;
}

/* One training run: fold -1 (the plan's split) or a fold of --cv, into out;
 * acc (p->nmetrics) receives the last evaluation. */
static int train_run(const DlPlan *p, const DlRunOpts *o, int fold, const char *fold_name, const char *out,
                     DlMetricAcc *acc)
{
    Loop L = {.p = p, .o = o, .acc = acc, .fold = fold_name};
    char *err = NULL;
    int rc = 1;
    L.out = dl_xstrdup(out);
    if (dl_prog_io(p, "train", &L.tr, &err) != 0 || dl_prog_io(p, "eval", &L.ev, &err) != 0) goto fail;
    if (L.tr.loss < 0 || L.tr.scalars < 0) {
        err = dl_xasprintf("%s: the train program has no %s (re-run dldlc)", o->plan_path,
                           L.tr.loss < 0 ? "loss output" : "scalars input");
        goto fail;
    }
    L.epochs = o->epochs > 0 ? o->epochs : (int)dl_plan_hyper_num(p, "epochs", 1);
    L.pos.seed = (uint64_t)dl_plan_hyper_num(p, "seed", 0);
    if (dl_load_data(p, o, fold, &L.d, &err) != 0) goto fail;
    L.nb = L.d->ntrain / L.tr.batch;
    if (L.nb == 0) {
        err = dl_xasprintf("the training split has %d samples, fewer than one batch of %d", L.d->ntrain,
                           L.tr.batch);
        goto fail;
    }
    if (dl_schedule_init(&L.sched, p, L.epochs, L.nb, &err) != 0) goto fail;
    DlExecOpts eo = dl_exec_opts(o);
    double tj = now();
    if (!(L.e = dl_exec_load(p, &eo, &err))) goto fail;
    if (!o->quiet) {
        const DlJit *j = dl_exec_jit(L.e);
        fprintf(stderr, "dldlrun: %d train / %d test samples, %d batches of %d per epoch (the last %d dropped), "
                        "%d threads, kernels %s (%.1f s)\n",
                L.d->ntrain, L.d->ntest, L.nb, L.tr.batch, L.d->ntrain - L.nb * L.tr.batch, dl_exec_threads(L.e),
                j->cache_hit ? "from the cache" : "compiled", now() - tj);
    }
    dl_exec_init_params(L.e, L.pos.seed);
    if (L.tr.data_stats >= 0) /* standardised features: the training split's mean and variance */
        dl_data_feature_stats(L.d, dl_exec_tensor(L.e, L.tr.data_stats));
    if (o->weights) { /* fine-tuning: start from a file's weights, matched by name */
        DlInitReport ir;
        if (dl_init_from_weights(o->weights, p, dl_exec_arenas(L.e), &ir, &err) != 0) goto fail;
        char *msg = dl_init_report_str(&ir, o->weights);
        if (!o->quiet) fprintf(stderr, "dldlrun: %s\n", msg);
        free(msg);
        dl_init_report_free(&ir);
    }
    if (dl_mkdir_p(L.out) != 0) {
        err = dl_xasprintf("cannot create the output directory '%s': %s", L.out, strerror(errno));
        goto fail;
    }
    if (o->resume) {
        char *cp = dl_xasprintf("%s/checkpoint.safetensors", L.out);
        if (access(cp, R_OK) != 0) {
            err = dl_xasprintf("no checkpoint '%s' to resume from", cp);
            free(cp);
            goto fail;
        }
        int lrc = dl_load_checkpoint(cp, p, dl_exec_arenas(L.e), &L.pos, &err);
        free(cp);
        if (lrc != 0) goto fail;
        if (!o->quiet)
            fprintf(stderr, "dldlrun: resuming after epoch %d (step %lld)\n", L.pos.epoch, (long long)L.pos.step);
    }
    rc = train_loop(&L);
    goto done;
fail:
    fprintf(stderr, "dldlrun: %s\n", err);
done:
    free(err);
    dl_exec_free(L.e);
    dl_data_free(L.d);
    free(L.out);
    return rc;
}

int dl_train(const DlPlan *p, const DlRunOpts *o)
{
    char *out = dl_out_dir(o);
    DlMetricAcc *acc = dl_xcalloc((size_t)p->nmetrics + 1, sizeof *acc);
    int rc = train_run(p, o, -1, NULL, out, acc);
    free(acc);
    free(out);
    return rc;
}

/* ---- cross-validation ------------------------------------------------------ */

#define CV_MAXV 256

int dl_cv(const DlPlan *p, const DlRunOpts *o)
{
    char *err = NULL, **names = NULL;
    const char *root = o->data_root ? o->data_root : dl_data_root();
    int nf = dl_data_folds(p, root, &names, &err);
    if (nf < 0) {
        fprintf(stderr, "dldlrun: --cv: %s\n", err);
        free(err);
        return 1;
    }
    char *out = dl_out_dir(o);
    DlMetricAcc *acc = dl_xcalloc((size_t)p->nmetrics + 1, sizeof *acc);
    DlMetricValue names_v[CV_MAXV];
    double *vals = dl_xcalloc((size_t)nf * CV_MAXV, sizeof *vals);
    int nv = 0, rc = 0;
    for (int f = 0; f < nf && rc == 0; f++) {
        char *fo = dl_xasprintf("%s/%s", out, names[f]);
        if (!o->quiet) fprintf(stderr, "dldlrun: cross-validation: %s (%d of %d), test on it, train on the rest\n",
                               names[f], f + 1, nf);
        rc = train_run(p, o, f, names[f], fo, acc);
        free(fo);
        int k = 0;
        for (int m = 0; m < p->nmetrics && rc == 0; m++) {
            DlMetricValue v[DL_MAX_AXES + 1];
            int n = dl_metric_values(&acc[m], p, &p->metrics[m], v, DL_MAX_AXES + 1);
            for (int j = 0; j < n && k < CV_MAXV; j++, k++) {
                if (f == 0) names_v[k] = v[j];
                vals[(size_t)f * CV_MAXV + k] = v[j].value;
            }
        }
        nv = k;
    }
    if (rc == 0) {
        char *csv = dl_xasprintf("%s/cv.csv", out), *js = dl_xasprintf("%s/cv.json", out);
        DlBuf c = {0}, j = {0};
        dl_buf_printf(&c, "metric,unit,mean,std");
        for (int f = 0; f < nf; f++) dl_buf_printf(&c, ",%s", names[f]);
        dl_buf_printf(&c, "\n");
        dl_buf_printf(&j, "{\n  \"plan\": \"%s\",\n  \"folds\": %d,\n  \"metrics\": {", o->plan_path, nf);
        printf("cross-validation, %d folds (mean +- std over the folds):\n", nf);
        for (int k = 0; k < nv; k++) {
            double x[1024], mean, sd;
            for (int f = 0; f < nf && f < 1024; f++) x[f] = vals[(size_t)f * CV_MAXV + k];
            dl_mean_std(x, nf, &mean, &sd);
            int pct = !strcmp(names_v[k].unit, "%");
            double sc = pct ? 100 : 1;
            printf("  %-24s %10.4f +- %.4f%s%s\n", names_v[k].name, mean * sc, sd * sc, *names_v[k].unit ? " " : "",
                   names_v[k].unit);
            dl_buf_printf(&c, "%s,%s,%.9g,%.9g", names_v[k].name, pct ? "fraction" : names_v[k].unit, mean, sd);
            dl_buf_printf(&j, "%s\n    \"%s\": {\"unit\": \"%s\", \"mean\": %.9g, \"std\": %.9g, \"folds\": [",
                          k ? "," : "", names_v[k].name, pct ? "fraction" : names_v[k].unit, mean, sd);
            for (int f = 0; f < nf; f++) {
                dl_buf_printf(&c, ",%.9g", x[f]);
                dl_buf_printf(&j, "%s%.9g", f ? ", " : "", x[f]);
            }
            dl_buf_printf(&c, "\n");
            dl_buf_printf(&j, "]}");
        }
        dl_buf_printf(&j, "\n  }\n}\n");
        if (dl_write_file_atomic(csv, c.s, c.n) != 0 || dl_write_file_atomic(js, j.s, j.n) != 0) {
            fprintf(stderr, "dldlrun: cannot write %s: %s\n", csv, strerror(errno));
            rc = 1;
        } else if (!o->quiet)
            fprintf(stderr, "dldlrun: wrote %s and %s\n", csv, js);
        dl_buf_free(&c), dl_buf_free(&j);
        free(csv), free(js);
    }
    for (int f = 0; f < nf; f++) free(names[f]);
    free(names), free(vals), free(acc), free(out);
    return rc;
}
