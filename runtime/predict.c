/* predict.c - evaluation and prediction with saved weights (--eval, --predict). */
#include "train.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "checkpoint.h"
#include "voc.h"

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
    if (dl_prog_io(p, "eval", &io, &err) != 0 || dl_load_data(p, o, -1, &d, &err) != 0 ||
        !(e = load_with_weights(p, o, &err))) {
        fprintf(stderr, "dldlrun: %s\n", err);
        goto done;
    }
    DlMetricAcc *acc = dl_xcalloc((size_t)(p->nmetrics ? p->nmetrics : 1), sizeof *acc);
    if (dl_eval_pass(e, p, &io, d, acc, &err) == 0) {
        char m[512];
        dl_format_metrics(p, acc, "test ", m, sizeof m);
        printf("%s  (%d %s)\n", m, d->ntest, d->features ? "samples" : "images");
        rc = 0;
    } else {
        fprintf(stderr, "dldlrun: %s\n", err);
    }
    if (o->profile) dl_exec_profile(e, stderr);
    dl_metric_reset(acc, p->nmetrics);
    free(acc);
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

/* A target whose bins a head's distribution is over (the first of the plan's
 * with the head's width), or NULL: the read-out's axes and units. */
static const DlPlanTarget *head_target(const DlPlan *p, const DlProgIO *io, int h, int *expect)
{
    *expect = -1;
    const DlPlanTarget *best = NULL;
    for (int t = 0; t < p->ntargets; t++) {
        if (dl_target_bins(&p->targets[t]) != p->heads[h].K) continue;
        int x = dl_prog_expect(io, h, t);
        if (!best || (*expect < 0 && x >= 0)) best = &p->targets[t], *expect = x;
    }
    return best;
}

/* Where a per-pixel head's label map of image `file` goes:
 * OUT/masks/STEM.png (head HEAD of several: OUT/masks/STEM.HEAD.png). */
static char *mask_path(const DlPlan *p, const DlRunOpts *o, const char *file, int h)
{
    char *out = dl_out_dir(o);
    const char *base = strrchr(file, '/');
    base = base ? base + 1 : file;
    const char *dot = strrchr(base, '.');
    int stem = dot ? (int)(dot - base) : (int)strlen(base);
    char *path = p->nheads > 1 ? dl_xasprintf("%s/masks/%.*s.%s.png", out, stem, base, p->heads[h].name)
                               : dl_xasprintf("%s/masks/%.*s.png", out, stem, base);
    free(out);
    return path;
}

/* A per-pixel head: " 4096 pixels, arg-max classes: 0 71.2%, 15 20.1%, ...,
 * mask OUT/masks/STEM.png" (the share of the pixels predicted as each class,
 * largest first; the arg-max label map written as a VOC palette PNG at the
 * image's own size, by nearest neighbour from the network's H x W). */
static void print_map(const DlPlan *p, const DlRunOpts *o, const DlProgIO *io, DlExec *e, const char *file, int h,
                      int b)
{
    int64_t K = p->heads[h].K, R = p->heads[h].rows;
    const float *probs = dl_exec_tensor(e, io->probs[h]) + (size_t)b * (size_t)(R * K);
    int64_t *count = dl_xcalloc((size_t)K, sizeof *count);
    uint8_t *map = dl_xmalloc((size_t)R);
    for (int64_t r = 0; r < R; r++) {
        int64_t best = 0;
        for (int64_t k = 1; k < K; k++)
            if (probs[r * K + k] > probs[r * K + best]) best = k;
        count[best]++;
        map[r] = (uint8_t)(best < 255 ? best : 254);
    }
    printf(" %lld pixels, arg-max classes:", (long long)R);
    for (int shown = 0; shown < 5; shown++) {
        int64_t best = -1;
        for (int64_t k = 0; k < K; k++)
            if (count[k] > 0 && (best < 0 || count[k] > count[best])) best = k;
        if (best < 0) break;
        printf("%s %lld %.1f%%", shown ? "," : "", (long long)best, 100.0 * (double)count[best] / (double)R);
        count[best] = 0;
    }
    free(count);
    const DlPlanTensor *in = &p->tensors[io->input];
    int H = (int)in->shape[2], W = (int)in->shape[3], w = 0, ht = 0;
    char *why = NULL, *path = mask_path(p, o, file, h);
    if (K <= 255 && (int64_t)H * W == R && dl_voc_jpeg_size(file, NULL, &w, &ht, &why) == 0) {
        uint8_t *full = dl_xmalloc((size_t)w * (size_t)ht);
        dl_voc_resize_map(map, W, H, full, w, ht); /* back to the image's size: pixel centres, nearest */
        char *dir = dl_xstrdup(path);
        *strrchr(dir, '/') = 0;
        if (dl_mkdir_p(dir) != 0 || dl_voc_write_mask(path, full, w, ht, &why) != 0) {
            if (!why) why = dl_xasprintf("%s: cannot create the folder: %s", dir, strerror(errno));
            printf(", no mask (%s)", why);
        } else {
            printf(", mask %s", path);
        }
        free(dir), free(full);
    } else if (why) {
        printf(", no mask (%s)", why);
    }
    free(why), free(path), free(map);
}

/* "FILE: age 31.2 years  top: 29 years 8.1%, ..." for each head. */
static void print_prediction(const DlPlan *p, const DlRunOpts *o, const DlProgIO *io, DlExec *e, const char *file,
                             int b)
{
    printf("%s:", file);
    for (int h = 0; h < p->nheads; h++) {
        if (p->heads[h].rows > 1) {
            if (p->nheads > 1) printf("%s %s:", h ? " " : "", p->heads[h].name);
            print_map(p, o, io, e, file, h, b);
            continue;
        }
        int K = (int)p->heads[h].K, x;
        const float *probs = dl_exec_tensor(e, io->probs[h]) + (size_t)b * (size_t)K;
        const DlPlanTarget *t = head_target(p, io, h, &x);
        if (p->nheads > 1) printf("%s %s:", h ? " " : "", p->heads[h].name);
        for (int a = 0; t && x >= 0 && a < t->naxes; a++) {
            const float *ex = dl_exec_tensor(e, x) + (size_t)b * (size_t)t->naxes;
            int named = p->nheads > 1 && t->naxes == 1 && !strcmp(t->axes[a].name, p->heads[h].name);
            printf("%s%s%s %.1f%s%s", a ? "," : "", named ? "" : " ", named ? "" : t->axes[a].name, ex[a],
                   *t->axes[a].unit ? " " : "", t->axes[a].unit);
        }
        printf("  top:");
        int top[3] = {-1, -1, -1};
        for (int r = 0; r < 3 && r < K; r++) {
            for (int k = 0; k < K; k++) {
                if (k == top[0] || k == top[1]) continue;
                if (top[r] < 0 || probs[k] > probs[top[r]]) top[r] = k;
            }
            printf("%s ", r ? "," : "");
            if (!t) printf("%d", top[r]);
            if (t && t->naxes > 1) printf("(");
            for (int a = 0; t && a < t->naxes; a++) printf("%s%g", a ? ", " : "", bin_value(t, top[r], a));
            if (t && t->naxes > 1) printf(")");
            if (t && t->naxes == 1 && *t->axes[0].unit) printf(" %s", t->axes[0].unit);
            printf(" %.1f%%", 100.0 * probs[top[r]]);
        }
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
    if (p->tensors[io.input].ndim != 4) {
        fprintf(stderr, "dldlrun: --predict reads image files; this plan's input is feature vectors "
                        "(use --eval on its data)\n");
        goto done;
    }
    for (int h = 0; h < p->nheads; h++)
        if (io.probs[h] < 0) {
            fprintf(stderr, "dldlrun: the eval program has no probabilities output (re-run dldlc)\n");
            goto done;
        }
    int B = io.batch;
    const DlPlanTensor *it = &p->tensors[io.input];
    int64_t per = it->numel / B;
    float *img = dl_exec_tensor(e, io.input);
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
        for (int b = 0; b < n; b++) print_prediction(p, o, &io, e, names[b], b);
    }
    rc = bad ? 1 : 0;
done:
    free(names);
    free(err);
    dl_exec_free(e);
    return rc;
}
