/* train.c - the training loop of dldlrun (train.h).
 *
 * Per epoch: the epoch's order (dl_data_shuffle), then for each full batch
 * the inputs (dl_data_batch with augmentation), SCALARS = [lr, momentum,
 * step, seed] from the schedule, one run of the "train" program, and a loss
 * check; then the "eval" program over the test split, one result line, and
 * the weights and checkpoint saved atomically.  Nothing is allocated inside
 * the batch loop.
 *
 * The run folder (OUT; with --cv, OUT and each OUT/foldN) is locked for the
 * whole run by flock on OUT/.dldlrun.lock, which holds the pid for the
 * message a second dldlrun gets; the kernel drops the lock when the process
 * ends, however it ends, so a killed run leaves no stale lock.  A folder
 * holding a run (any of RUN_FILES, or for --cv CV_FILES) is refused unless
 * --resume continues it or --overwrite starts it over.  Those file names
 * are the only ones dldlrun removes: with --overwrite (after --weights is
 * read, which may be one of them), and NAME.tmp.PID left by a dead process
 * (dl_write_file_atomic's temporary, when a kill came between its write and
 * its rename).  Per epoch the history row is written and fsynced before the
 * weights and checkpoint, so after a kill history.csv holds every epoch of
 * the checkpoint and at most one more (or a part of one), which --resume
 * drops (history_trim): the rows stay exactly epochs 1..N, once each.
 */
#include "train.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "checkpoint.h"
#include "comm.h"
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

/* ---- the run folder ------------------------------------------------------ */

#define LOCK_NAME ".dldlrun.lock"
static const char *const RUN_FILES[] = {"checkpoint.safetensors", "weights.safetensors", "history.csv"};
static const char *const CV_FILES[] = {"cv.csv", "cv.json"};
#define NRUN_FILES (int)(sizeof RUN_FILES / sizeof *RUN_FILES)
#define NCV_FILES (int)(sizeof CV_FILES / sizeof *CV_FILES)

/* Create dir if needed and lock it for this process: the descriptor to
 * close at the end of the run, or -1 with *err ("runs/age is in use by
 * another dldlrun (pid 4242)"). */
static int folder_lock(const char *dir, char **err)
{
    struct stat st;
    if (dl_mkdir_p(dir) != 0 || stat(dir, &st) != 0) {
        *err = dl_xasprintf("cannot create the output directory '%s': %s", dir, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) {
        *err = dl_xasprintf("the output directory '%s' is not a directory", dir);
        return -1;
    }
    char *path = dl_xasprintf("%s/%s", dir, LOCK_NAME);
    int fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    if (fd < 0) {
        *err = dl_xasprintf("cannot open the lock file '%s': %s", path, strerror(errno));
    } else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        *err = dl_xasprintf("the lock file '%s' is not a regular file", path);
    } else if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno == EWOULDBLOCK) {
            char b[24] = {0};
            long pid = pread(fd, b, sizeof b - 1, 0) > 0 ? strtol(b, NULL, 10) : 0;
            *err = pid > 0 ? dl_xasprintf("%s is in use by another dldlrun (pid %ld)", dir, pid)
                           : dl_xasprintf("%s is in use by another dldlrun (it holds '%s')", dir, path);
        } else {
            *err = dl_xasprintf("cannot lock '%s': %s", path, strerror(errno));
        }
    } else {
        char b[24];
        int n = snprintf(b, sizeof b, "%ld\n", (long)getpid());
        /* the pid is for the message only: a failure here changes nothing */
        if (ftruncate(fd, 0) != 0 || pwrite(fd, b, (size_t)n, 0) != n) {}
        free(path);
        return fd;
    }
    if (fd >= 0) close(fd);
    free(path);
    return -1;
}

/* The first of names[0..n) present in dir (as anything), or NULL. */
static const char *first_present(const char *dir, const char *const *names, int n)
{
    for (int i = 0; i < n; i++) {
        char *path = dl_xasprintf("%s/%s", dir, names[i]);
        struct stat st;
        int there = lstat(path, &st) == 0;
        free(path);
        if (there) return names[i];
    }
    return NULL;
}

static char *previous_run(const char *dir, const char *file)
{
    return dl_xasprintf("%s already holds a run (%s): --resume continues it, --overwrite starts it over", dir, file);
}

/* --overwrite: remove names[0..n) from dir.  Returns 0, or -1 with *err. */
static int remove_files(const char *dir, const char *const *names, int n, char **err)
{
    for (int i = 0; i < n; i++) {
        char *path = dl_xasprintf("%s/%s", dir, names[i]);
        int bad = unlink(path) != 0 && errno != ENOENT;
        if (bad) *err = dl_xasprintf("--overwrite: cannot remove '%s': %s", path, strerror(errno));
        free(path);
        if (bad) return -1;
    }
    return 0;
}

/* Remove NAME.tmp.PID from dir for each NAME of names[0..n) whose process PID
 * is gone: dl_write_file_atomic's temporary, left by a kill between its write
 * and its rename.  Only that exact pattern; a live PID's file is left alone. */
static void remove_stale_tmp(const char *dir, const char *const *names, int n, int quiet)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        for (int i = 0; i < n; i++) {
            size_t k = strlen(names[i]);
            if (strncmp(de->d_name, names[i], k) != 0 || strncmp(de->d_name + k, ".tmp.", 5) != 0) continue;
            const char *q = de->d_name + k + 5;
            if (!*q || strlen(q) > 10 || strspn(q, "0123456789") != strlen(q)) continue;
            long pid = strtol(q, NULL, 10);
            if (pid <= 0 || pid > INT_MAX || kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;
            if (unlinkat(dirfd(d), de->d_name, 0) == 0 && !quiet)
                fprintf(stderr, "dldlrun: removed %s/%s, left by a run stopped while saving\n", dir, de->d_name);
            break;
        }
    }
    closedir(d);
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
    DlComm *comm;      /* mpirun: this process is rank `rank` of `nranks` (docs/parallel.md); else NULL, 0, 1 */
    int rank, nranks;
    int gbatch;        /* the global batch: nranks x the train program's */
} Loop;

/* One epoch (0-based ep) of training; returns 0 or -1 with *err. */
static int train_epoch(Loop *L, int ep, int *order, Progress *pg, double *loss_mean, double *secs, char **err)
{
    const DlPlan *p = L->p;
    DlExec *e = L->e;
    int B = L->tr.batch;
    float *lab = dl_xcalloc((size_t)B * (size_t)(p->nlabels + 1), sizeof *lab);
    uint8_t *masks = dl_feed_masks(L->d, B) ? dl_xmalloc(dl_feed_masks(L->d, B)) : NULL;
    float *sc = dl_exec_tensor(e, L->tr.scalars);
    const float *loss = dl_exec_tensor(e, L->tr.loss);
    dl_data_shuffle(L->d, L->pos.seed, ep, order);
    double t0 = now(), sum = 0;
    if (L->nb > 0)
        dl_feed(e, p, &L->tr, L->d, order + (size_t)L->rank * (size_t)B, B, 1, L->pos.seed, ep, lab, masks);
    for (int b = 0; b < L->nb; b++) {
        if (L->pos.step >= DL_MAX_STEP) { /* unreachable from a checked checkpoint: the counter cannot overflow */
            free(lab), free(masks);
            *err = dl_xasprintf("the step counter reached its bound %lld at epoch %d", (long long)DL_MAX_STEP, ep + 1);
            return -1;
        }
        double lr, mom;
        dl_schedule_at(&L->sched, L->pos.step, &lr, &mom);
        /* dropout's masks are keyed by (seed, step, element of this rank's tensor): rank r > 0 offsets the
           seed by r 2^24 so that the ranks draw different masks (docs/parallel.md: not one process's masks) */
        sc[0] = (float)lr, sc[1] = (float)mom, sc[2] = (float)L->pos.step;
        sc[3] = (float)((double)L->pos.seed + 16777216.0 * L->rank);
        /* batch b runs while batch b + 1 is fed (on a CUDA device; in turn on the CPU); rank r takes
           samples [r B, (r+1) B) of each global batch (docs/parallel.md) */
        int rc = dl_exec_start(e, L->tr.prog, err);
        if (rc == 0 && b + 1 < L->nb)
            dl_feed(e, p, &L->tr, L->d, order + (size_t)(b + 1) * (size_t)L->gbatch + (size_t)L->rank * (size_t)B, B,
                    1, L->pos.seed, ep, lab, masks);
        if (rc != 0 || dl_exec_wait(e, err) != 0) {
            free(lab), free(masks);
            return -1;
        }
        double lv = loss[0]; /* under mpirun: this rank's share of the global batch's mean, summed over the ranks */
        if (L->comm && dl_comm_sum(L->comm, &lv, 1, "the loss of a step", err) != 0) {
            free(lab), free(masks);
            return -1;
        }
        if (!isfinite(lv)) {
            free(lab), free(masks);
            *err = dl_xasprintf("the loss is %s at epoch %d batch %d (step %lld, lr %.4g)%s",
                                isnan(lv) ? "NaN" : "infinite", ep + 1, b + 1, (long long)L->pos.step, lr,
                                L->o->debug >= 2 ? "" : "; run with DLDL_DEBUG=2 to find the op that made it");
            return -1;
        }
        sum += lv;
        L->pos.step++;
        double el = now() - t0, ips = (double)(b + 1) * L->gbatch / el;
        double left = (double)(L->nb - b - 1) + (double)(L->epochs - ep - 1) * L->nb;
        progress(pg, ep + 1, L->epochs, b + 1, L->nb, sum / (b + 1), lr, ips, left * el / (b + 1));
    }
    *loss_mean = sum / (L->nb ? L->nb : 1);
    *secs = now() - t0;
    free(lab), free(masks);
    return 0;
}

/* Append one row to OUT/history.csv (with its header first when the file is
 * new or empty): epoch, mean training loss, seconds, images/s, then each
 * metric's values (dl_metric_values: MAE in the label's unit, accuracies as
 * fractions, LDL measures as they are).  For plotting curves.  The row goes
 * out in one write and is fsynced before the epoch's checkpoint is saved. */
static void history_append(const Loop *L, const DlMetricAcc *acc, int epoch, double loss, double secs,
                           double ips)
{
    const DlPlan *p = L->p;
    char *path = dl_xasprintf("%s/history.csv", L->out);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0644);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) {
        fprintf(stderr, "dldlrun: warning: cannot write '%s': %s\n", path, strerror(errno));
        if (fd >= 0) close(fd);
        free(path);
        return;
    }
    DlBuf b = {0};
    DlMetricValue v[DL_MAX_AXES + 1];
    if (st.st_size == 0) {
        dl_buf_printf(&b, "epoch,train_loss,seconds,images_per_s");
        for (int m = 0; m < p->nmetrics; m++) {
            int nv = dl_metric_values(&acc[m], p, &p->metrics[m], v, DL_MAX_AXES + 1);
            for (int k = 0; k < nv; k++) dl_buf_printf(&b, ",%s", v[k].name);
        }
        dl_buf_printf(&b, "\n");
    }
    dl_buf_printf(&b, "%d,%.6g,%.2f,%.1f", epoch, loss, secs, ips);
    for (int m = 0; m < p->nmetrics; m++) {
        int nv = dl_metric_values(&acc[m], p, &p->metrics[m], v, DL_MAX_AXES + 1);
        for (int k = 0; k < nv; k++) dl_buf_printf(&b, ",%.6g", v[k].value);
    }
    dl_buf_printf(&b, "\n");
    const char *s = b.s;
    size_t left = b.n;
    int bad = 0;
    while (left > 0 && !bad) {
        ssize_t w = write(fd, s, left);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) bad = 1;
        else s += w, left -= (size_t)w;
    }
    if (bad || fsync(fd) != 0) bad = 1;
    if (close(fd) != 0) bad = 1;
    if (bad) fprintf(stderr, "dldlrun: warning: cannot write '%s': %s\n", path, strerror(errno));
    dl_buf_free(&b);
    free(path);
}

/* --resume after L->pos.epoch epochs: keep the header of OUT/history.csv and,
 * in order, the first complete row of each epoch 1..L->pos.epoch; drop the
 * rest (the row of an epoch whose checkpoint a kill prevented, a row cut
 * short, a repeat), rewriting the file atomically when anything is dropped.
 * Returns 0, or -1 with *err when the file is not a history. */
static int history_trim(const Loop *L, char **err)
{
    char *path = dl_xasprintf("%s/history.csv", L->out), *why = NULL;
    DlBuf in = {0}, keep = {0};
    int rc = -1, kept = 0, dropped = 0, last = 0;
    struct stat st;
    if (lstat(path, &st) != 0 && errno == ENOENT) {
        rc = 0;
        goto out;
    }
    if (dl_read_file(path, DL_LIMIT_TEXT, &in, &why) != 0) {
        *err = dl_xasprintf("cannot read '%s': %s", path, why);
        goto out;
    }
    const char *s = in.s, *end = in.s + in.n, *nl = memchr(s, '\n', in.n);
    if (in.n == 0) {
        rc = 0;
        goto out;
    }
    if (!nl && strncmp(s, "epoch,", in.n < 6 ? in.n : 6) == 0) { /* the header itself cut short */
        dropped = 1;
    } else if (!nl || strncmp(s, "epoch,", 6) != 0) {
        *err = dl_xasprintf("'%s' is not a dldlrun history (its first line is not 'epoch,...'); move it away to "
                            "resume", path);
        goto out;
    }
    size_t ncomma = 0;
    for (const char *c = s; nl && c < nl; c++) ncomma += *c == ',';
    if (nl) dl_buf_put(&keep, s, (size_t)(nl + 1 - s));
    for (const char *q = nl ? nl + 1 : end; q < end;) {
        const char *e = memchr(q, '\n', (size_t)(end - q));
        size_t len = e ? (size_t)(e - q) : (size_t)(end - q), commas = 0, digits = strspn(q, "0123456789");
        for (size_t i = 0; i < len; i++) commas += q[i] == ',';
        long ep = digits > 0 && digits <= 9 && digits < len && q[digits] == ',' ? strtol(q, NULL, 10) : 0;
        if (e && commas == ncomma && ep > last && ep <= L->pos.epoch) {
            dl_buf_put(&keep, q, len + 1);
            last = (int)ep, kept++;
        } else {
            dropped++;
        }
        q += len + (e != NULL);
    }
    if (dropped) {
        if (dl_write_file_atomic(path, keep.s ? keep.s : "", keep.n) != 0) {
            *err = dl_xasprintf("cannot rewrite '%s': %s", path, strerror(errno));
            goto out;
        }
        if (!L->o->quiet)
            fprintf(stderr, "dldlrun: %s: dropped %d row%s not covered by the checkpoint (after epoch %d)\n", path,
                    dropped, dropped == 1 ? "" : "s", L->pos.epoch);
    }
    rc = 0;
out:
    if (rc == 0 && kept < L->pos.epoch)
        fprintf(stderr, "dldlrun: warning: %s holds %d of the checkpoint's %d epochs; the missing rows cannot be "
                        "rebuilt\n", path, kept, L->pos.epoch);
    dl_buf_free(&in), dl_buf_free(&keep);
    free(path), free(why);
    return rc;
}

static int train_loop(Loop *L)
{
    const DlPlan *p = L->p;
    const DlRunOpts *o = L->o;
    char *err = NULL;
    int start = L->pos.epoch, rc = 1;
    int *order = dl_xcalloc((size_t)L->d->ntrain + 1, sizeof *order);
    DlMetricAcc *acc = L->acc;
    Progress pg = {.tty = isatty(2), .quiet = o->quiet || L->rank != 0, .last = -1e9};
    if (start >= L->epochs) {
        if (!L->fold) {
            if (L->rank == 0) printf("nothing to do: %s holds %d epochs of %d\n", L->out, start, L->epochs);
        } else { /* --cv --resume: a finished fold still counts, with its evaluation */
            if (dl_eval_pass(L->e, p, &L->ev, L->d, acc, &err) != 0) {
                fprintf(stderr, "dldlrun: %s\n", err);
                goto done;
            }
            char m[512];
            dl_format_metrics(p, acc, "test ", m, sizeof m);
            printf("%s: %d epochs (trained before)  %s\n", L->fold, start, m);
        }
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
        if (L->rank != 0) /* rank 0 alone prints and writes; the others evaluated the same weights */
            continue;
        if (!L->fold)
            printf("epoch %d/%d  train loss %.3f  %s  (%.1f s, %.0f img/s)\n", ep + 1, L->epochs, loss, m, secs,
                   (double)L->nb * L->gbatch / train_s);
        else if (ep + 1 == L->epochs)
            printf("%s: %d epochs, train loss %.3f  %s\n", L->fold, L->epochs, loss, m);
        fflush(stdout);
        history_append(L, acc, ep + 1, loss, secs, (double)L->nb * L->gbatch / train_s);
        if (save_all(L->out, p, L->e, &L->pos, m, &err) != 0) {
            fprintf(stderr, "dldlrun: %s\n", err);
            goto done;
        }
    }
    if (!o->quiet && L->rank == 0) fprintf(stderr, "dldlrun: weights saved to %s/weights.safetensors\n", L->out);
    rc = 0;
done:
    if (o->profile && L->rank == 0) dl_exec_profile(L->e, stderr);
    free(err);
    free(order);
    return rc;
}

/* Under mpirun, before the first step: every rank set up (ok), and every
 * rank holds rank 0's weights, state and optimizer state (an XXH3 of the
 * arenas, broadcast from rank 0).  Returns 0 when all agree; else -1 after a
 * message from each rank that knows why. */
static int ranks_agree(Loop *L, int ok)
{
    char *err = NULL;
    double bad = !ok;
    uint64_t h[2] = {0, (uint64_t)ok}; /* XXH3 of the arenas, and whether the rank set up */
    if (ok) {
        float *const *ar = dl_exec_arenas(L->e);
        static const int saved[] = {DL_AR_PARAM, DL_AR_OPT, DL_AR_STATE};
        for (int k = 0; k < 3; k++)
            h[0] = h[0] * 0x9E3779B97F4A7C15ull ^
                   dl_hash64(ar[saved[k]], (size_t)L->p->arena_size[saved[k]] * sizeof(float));
    }
    uint64_t h0[2] = {h[0], h[1]};
    if (dl_comm_bcast(L->comm, h0, sizeof h0, 0, "the weights' checksum", &err) == 0 && ok && h0[1] && h0[0] != h[0]) {
        fprintf(stderr, "dldlrun: rank %d: its weights differ from rank 0's (checksum %016llx, rank 0 %016llx): "
                        "every rank must start from the same plan, seed and files\n", L->rank,
                (unsigned long long)h[0], (unsigned long long)h0[0]);
        bad = 1, ok = 0;
    }
    if (!err && dl_comm_sum(L->comm, &bad, 1, "the ranks' setup", &err) == 0 && bad > 0 && ok)
        fprintf(stderr, "dldlrun: rank %d: stopping: %.0f rank%s could not start (see %s message)\n", L->rank, bad,
                bad == 1 ? "" : "s", bad == 1 ? "its" : "their");
    if (err) {
        fprintf(stderr, "dldlrun: %s\n", err);
        free(err);
        return -1;
    }
    return bad > 0 ? -1 : 0;
}

/* One training run: fold -1 (the plan's split) or a fold of --cv, into out;
 * acc (p->nmetrics) receives the last evaluation. */
static int train_run(const DlPlan *p, const DlRunOpts *o, int fold, const char *fold_name, const char *out,
                     DlMetricAcc *acc)
{
    Loop L = {.p = p, .o = o, .acc = acc, .fold = fold_name, .comm = o->comm, .rank = dl_comm_rank(o->comm),
              .nranks = dl_comm_size(o->comm)};
    char *err = NULL;
    int rc = 1, lock = -1, resume = o->resume, r0 = L.rank == 0, quiet = o->quiet || !r0;
    L.out = dl_xstrdup(out);
    char *cp = dl_xasprintf("%s/checkpoint.safetensors", L.out);
    char tname[32] = "train";
    if (L.nranks > 1) snprintf(tname, sizeof tname, "train@%d", L.nranks);
    /* The run folder first, so that a second run or a folder holding a run is refused at once (rank 0's). */
    if (r0 && (lock = folder_lock(L.out, &err)) < 0) goto fail;
    const char *prev = r0 ? first_present(L.out, RUN_FILES, NRUN_FILES) : NULL;
    if (resume && access(cp, F_OK) != 0) {
        if (!fold_name) {
            err = prev ? dl_xasprintf("no checkpoint '%s' to resume from (the run stopped before its first epoch "
                                      "ended?); --overwrite starts %s over", cp, L.out)
                       : dl_xasprintf("no checkpoint '%s' to resume from; train without --resume", cp);
            goto fail;
        }
        resume = 0; /* --cv --resume: this fold had not finished an epoch, it starts over */
    } else if (prev && !resume && !o->overwrite) {
        err = previous_run(L.out, prev);
        goto fail;
    }
    if (r0) remove_stale_tmp(L.out, RUN_FILES, NRUN_FILES, o->quiet);
    if (dl_plan_find_program(p, tname) < 0) {
        err = dl_xasprintf("%s has no program for %d processes: compile it with dldlc --ranks=%d", o->plan_path,
                           L.nranks, L.nranks);
        goto fail;
    }
    if (dl_prog_io(p, tname, &L.tr, &err) != 0 || dl_prog_io(p, "eval", &L.ev, &err) != 0) goto fail;
    if (L.tr.loss < 0 || L.tr.scalars < 0) {
        err = dl_xasprintf("%s: the train program has no %s (re-run dldlc)", o->plan_path,
                           L.tr.loss < 0 ? "loss output" : "scalars input");
        goto fail;
    }
    double epochs = o->epochs > 0 ? o->epochs : dl_plan_hyper_num(p, "epochs", 1);
    if (!(epochs >= 1 && epochs <= DL_MAX_EPOCHS) || epochs != floor(epochs)) {
        err = dl_xasprintf("%s: the plan's epochs %g is not a whole number in 1..%d (or give --epochs)", o->plan_path,
                           epochs, DL_MAX_EPOCHS);
        goto fail;
    }
    L.epochs = (int)epochs;
    double seed = dl_plan_hyper_num(p, "seed", 0);
    if (!(seed >= 0 && seed <= 9007199254740992.0) || seed != floor(seed)) {
        err = dl_xasprintf("%s: the plan's seed %g is not a whole number in 0..2^53 (re-run dldlc)", o->plan_path, seed);
        goto fail;
    }
    L.pos.seed = (uint64_t)seed;
    DlRunOpts lo = *o;
    lo.quiet = quiet; /* one data report, rank 0's */
    if (dl_load_data(p, &lo, fold, &L.d, &err) != 0) goto fail;
    L.gbatch = L.tr.batch * L.nranks;
    L.nb = L.d->ntrain / L.gbatch;
    if (L.nb == 0) {
        err = dl_xasprintf("the training split has %d samples, fewer than one batch of %d", L.d->ntrain, L.gbatch);
        goto fail;
    }
    if (dl_schedule_init(&L.sched, p, L.epochs, L.nb, &err) != 0) goto fail;
    DlExecOpts eo = dl_exec_opts(o);
    double tj = now();
    if (!(L.e = dl_exec_load(p, &eo, &err))) goto fail;
    if (!quiet) {
        const DlJit *j = dl_exec_jit(L.e);
        fprintf(stderr, "dldlrun: %d train / %d test samples, %d batches of %d per epoch (the last %d dropped), "
                        "%d threads, kernels %s (%.1f s)\n",
                L.d->ntrain, L.d->ntest, L.nb, L.gbatch, L.d->ntrain - L.nb * L.gbatch, dl_exec_threads(L.e),
                j->cache_hit ? "from the cache" : "compiled", now() - tj);
        if (o->device != DL_DEVICE_CPU) fprintf(stderr, "dldlrun: device: %s\n", dl_exec_device(L.e));
        if (L.comm)
            fprintf(stderr, "dldlrun: %d ranks (%s), %d samples of each batch per rank, program '%s'\n", L.nranks,
                    dl_comm_describe(L.comm), L.tr.batch, tname);
    }
    dl_exec_init_params(L.e, L.pos.seed);
    if (L.tr.data_stats >= 0) /* standardised features: the training split's mean and variance */
        dl_data_feature_stats(L.d, dl_exec_tensor(L.e, L.tr.data_stats));
    if (o->weights) { /* fine-tuning: start from a file's weights, matched by name */
        DlInitReport ir;
        if (dl_init_from_weights(o->weights, p, dl_exec_arenas(L.e), &ir, &err) != 0) goto fail;
        char *msg = dl_init_report_str(&ir, o->weights);
        if (!quiet) fprintf(stderr, "dldlrun: %s\n", msg);
        free(msg);
        dl_init_report_free(&ir);
    }
    /* Starting over (--overwrite, or a --cv fold without a checkpoint): the
     * previous run's files go only now, after --weights (which may be one of
     * them) is read and everything that could fail has been checked. */
    if (!resume && prev) {
        if (remove_files(L.out, RUN_FILES, NRUN_FILES, &err) != 0) goto fail;
        if (!quiet) fprintf(stderr, "dldlrun: starting %s over: removed the previous run's files\n", L.out);
    }
    if (resume) {
        if (dl_load_checkpoint(cp, p, dl_exec_arenas(L.e), &L.pos, &err) != 0) goto fail;
        if (L.pos.step != (int64_t)L.pos.epoch * L.nb) {
            err = dl_xasprintf("%s: the checkpoint is at step %lld after %d epochs, but an epoch of this data is %d "
                               "batches (%lld steps): has the training split changed? --resume needs the data the "
                               "run started with", cp, (long long)L.pos.step, L.pos.epoch, L.nb,
                               (long long)L.pos.epoch * L.nb);
            goto fail;
        }
        if (r0 && history_trim(&L, &err) != 0) goto fail;
        if (!quiet)
            fprintf(stderr, "dldlrun: resuming after epoch %d (step %lld)\n", L.pos.epoch, (long long)L.pos.step);
    }
    if (L.comm && ranks_agree(&L, 1) != 0) goto done;
    rc = train_loop(&L);
    goto done;
fail:
    if (L.comm) fprintf(stderr, "dldlrun: rank %d: %s\n", L.rank, err);
    else fprintf(stderr, "dldlrun: %s\n", err);
    if (L.comm) ranks_agree(&L, 0);
done:
    free(err);
    free(cp);
    dl_exec_free(L.e);
    dl_data_free(L.d);
    free(L.out);
    if (lock >= 0) close(lock); /* releases the folder */
    return rc;
}

int dl_train(const DlPlan *p, const DlRunOpts *o)
{
    char *out = dl_out_dir(o);
    DlMetricAcc *acc = dl_xcalloc((size_t)p->nmetrics + 1, sizeof *acc);
    int rc = train_run(p, o, -1, NULL, out, acc);
    dl_metric_reset(acc, p->nmetrics);
    free(acc);
    free(out);
    return rc;
}

/* ---- cross-validation ------------------------------------------------------ */

#define CV_MAXV 256

/* --cv's folder OUT, locked (the descriptor, or -1 with *err): refused when
 * it holds a run (cv.csv, cv.json, or a run in one of the folds) without
 * --resume or --overwrite; with --overwrite, cv.csv and cv.json go now, each
 * fold's files when its run starts (train_run). */
static int cv_folder(const DlRunOpts *o, const char *out, char **names, int nf, char **err)
{
    int lock = folder_lock(out, err);
    if (lock < 0) return -1;
    const char *prev = first_present(out, CV_FILES, NCV_FILES);
    char *what = prev ? dl_xstrdup(prev) : NULL;
    for (int f = 0; f < nf && !what; f++) {
        char *fo = dl_xasprintf("%s/%s", out, names[f]);
        const char *x = first_present(fo, RUN_FILES, NRUN_FILES);
        if (x) what = dl_xasprintf("%s/%s", names[f], x);
        free(fo);
    }
    int bad = 0;
    if (what && !o->resume && !o->overwrite) {
        *err = previous_run(out, what);
        bad = 1;
    } else {
        remove_stale_tmp(out, CV_FILES, NCV_FILES, o->quiet);
        bad = o->overwrite && remove_files(out, CV_FILES, NCV_FILES, err) != 0;
    }
    free(what);
    if (bad) {
        close(lock);
        return -1;
    }
    return lock;
}

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
    int lock = cv_folder(o, out, names, nf, &err);
    if (lock < 0) {
        fprintf(stderr, "dldlrun: %s\n", err);
        free(err);
        for (int f = 0; f < nf; f++) free(names[f]);
        free(names), free(out);
        return 1;
    }
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
    dl_metric_reset(acc, p->nmetrics);
    free(names), free(vals), free(acc), free(out);
    close(lock);
    return rc;
}
