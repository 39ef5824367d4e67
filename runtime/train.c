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
#include "schedule.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int mkdir_p(const char *path)
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
} Loop;

/* One epoch (0-based ep) of training; returns 0 or -1 with *err. */
static int train_epoch(Loop *L, int ep, int *order, Progress *pg, double *loss_mean, double *secs, char **err)
{
    const DlPlan *p = L->p;
    DlExec *e = L->e;
    int B = L->tr.batch;
    float *img = L->tr.image >= 0 ? dl_exec_tensor(e, L->tr.image) : NULL;
    float *tgt = L->tr.target >= 0 ? dl_exec_tensor(e, L->tr.target) : NULL;
    float *lab = L->tr.label >= 0 ? dl_exec_tensor(e, L->tr.label) : NULL;
    float *sc = dl_exec_tensor(e, L->tr.scalars);
    const float *loss = dl_exec_tensor(e, L->tr.loss);
    dl_data_shuffle(L->d, L->pos.seed, ep, order);
    double t0 = now(), sum = 0;
    for (int b = 0; b < L->nb; b++) {
        dl_data_batch(L->d, &p->target, order + (size_t)b * (size_t)B, B, 1, L->pos.seed, ep, img, tgt, lab);
        double lr, mom;
        dl_schedule_at(&L->sched, L->pos.step, &lr, &mom);
        sc[0] = (float)lr, sc[1] = (float)mom, sc[2] = (float)L->pos.step, sc[3] = (float)L->pos.seed;
        if (dl_exec_run(e, L->tr.prog, err) != 0) return -1;
        if (!isfinite(loss[0])) {
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
    return 0;
}

/* Append one row to OUT/history.csv (created with its header when training
 * starts from epoch 0): epoch, mean training loss, seconds, images/s, then
 * each metric per axis (MAE in the label's unit; accuracy as a fraction)
 * and, for accuracy over several axes, joint.  For plotting curves. */
static void history_append(const Loop *L, const DlMetricAcc *acc, int epoch, double loss, double secs,
                           double ips)
{
    const DlPlan *p = L->p;
    const DlPlanTarget *t = &p->target;
    char *path = dl_xasprintf("%s/history.csv", L->out);
    FILE *f = fopen(path, epoch == 1 ? "w" : "a");
    if (!f) {
        fprintf(stderr, "dldlrun: warning: cannot write '%s': %s\n", path, strerror(errno));
        free(path);
        return;
    }
    if (epoch == 1) {
        fprintf(f, "epoch,train_loss,seconds,images_per_s");
        for (int m = 0; m < p->nmetrics; m++) {
            for (int a = 0; a < t->naxes; a++) fprintf(f, ",%s_%s", p->metrics[m].name, t->axes[a].name);
            if (strcmp(p->metrics[m].kind, "accuracy") == 0 && t->naxes > 1)
                fprintf(f, ",%s_joint", p->metrics[m].name);
        }
        fputc('\n', f);
    }
    fprintf(f, "%d,%.6g,%.2f,%.1f", epoch, loss, secs, ips);
    for (int m = 0; m < p->nmetrics; m++) {
        double n = acc[m].n > 0 ? acc[m].n : 1;
        int is_acc = strcmp(p->metrics[m].kind, "accuracy") == 0;
        for (int a = 0; a < t->naxes; a++)
            fprintf(f, ",%.6g", is_acc ? (double)acc[m].hit[a] / n : acc[m].abs_err[a] / n);
        if (is_acc && t->naxes > 1) fprintf(f, ",%.6g", (double)acc[m].hit_joint / n);
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
    int *idx = dl_xcalloc((size_t)L->ev.batch, sizeof *idx);
    float *labels = dl_xcalloc((size_t)L->ev.batch * (size_t)(p->nlabels > 0 ? p->nlabels : 1), sizeof *labels);
    DlMetricAcc *acc = dl_xcalloc((size_t)(p->nmetrics ? p->nmetrics : 1), sizeof *acc);
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
        if (dl_eval_pass(L->e, p, &L->ev, L->d, acc, idx, labels, &err) != 0) {
            fprintf(stderr, "dldlrun: %s\n", err);
            goto done;
        }
        char m[512];
        dl_format_metrics(p, acc, "test ", m, sizeof m);
        L->pos.epoch = ep + 1;
        double secs = now() - t0;
        printf("epoch %d/%d  train loss %.3f  %s  (%.1f s, %.0f img/s)\n", ep + 1, L->epochs, loss, m, secs,
               (double)L->nb * L->tr.batch / train_s);
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
    free(order), free(idx), free(labels), free(acc);
    return rc;
}

int dl_train(const DlPlan *p, const DlRunOpts *o)
{
    Loop L = {.p = p, .o = o};
    char *err = NULL;
    int rc = 1;
    L.out = dl_out_dir(o);
    if (dl_prog_io(p, "train", &L.tr, &err) != 0 || dl_prog_io(p, "eval", &L.ev, &err) != 0) goto fail;
    if (L.tr.loss < 0 || L.tr.scalars < 0) {
        err = dl_xasprintf("%s: the train program has no %s (re-run dldlc)", o->plan_path,
                           L.tr.loss < 0 ? "loss output" : "scalars input");
        goto fail;
    }
    L.epochs = o->epochs > 0 ? o->epochs : (int)dl_plan_hyper_num(p, "epochs", 1);
    L.pos.seed = (uint64_t)dl_plan_hyper_num(p, "seed", 0);
    if (dl_load_data(p, o, &L.d, &err) != 0) goto fail;
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
    if (o->weights) { /* fine-tuning: start from a file's weights, matched by name */
        DlInitReport ir;
        if (dl_init_from_weights(o->weights, p, dl_exec_arenas(L.e), &ir, &err) != 0) goto fail;
        char *msg = dl_init_report_str(&ir, o->weights);
        if (!o->quiet) fprintf(stderr, "dldlrun: %s\n", msg);
        free(msg);
        dl_init_report_free(&ir);
    }
    if (mkdir_p(L.out) != 0) {
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
