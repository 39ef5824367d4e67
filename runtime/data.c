/* data.c - the data set of a plan: load, shuffle, batch (runtime/data.h).
 *
 * dl_data_load: parse the data binding (DlPlan.data) -> let the source kind
 * list the samples (sources.c) -> assign the split -> decode every image once
 * in parallel (image.c) -> report bad samples, then skip them or fail.
 * Afterwards a batch is a copy out of the uint8 NCHW store with the scaling
 * lo + (hi-lo) v/255, an optional horizontal flip, and the label distribution.
 *
 * Binding keys (label indices N are 0-based, 0 .. label.count-1):
 *   source = csv|utkface|pointing04|mat, source.path, source.images, source.file,
 *            source.features (mat)
 *   split = column|folds|kfold, split.column, split.path, split.k, split.seed, split.fold
 *   label.count, label.N, label.N.from = column:X | name:X | var:X | argmax:X, label.N.unit
 *   dist.count, dist.N, dist.N.from = var:X   (label distributions, GIVEN targets)
 *   input = image|features; image: input.channels, input.height, input.width,
 *   input.lo, input.hi; features: input.dims, input.standardize
 *   crop = none|face_box, crop.scale
 *   augment.hflip = 0|1, augment.hflip.negate = "1" or "0,1" (label indices),
 *   augment.random_crop.pad = pixels (0 = no random crop),
 *   augment.random_scale.min, .max = zoom factors (1, 1 = none)
 *   dist.N.from = mask:png  (voc: the SegmentationClass label map, nearest-
 *            resized to the input size: a field of H*W class indices)
 * Batches and their augmentation: augment.c.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "data_impl.h"

/* Bad samples printed one by one before the rest are only counted. */
#define MAX_BAD_SHOWN 100

/* ---- the binding ---------------------------------------------------------- */

static const char *kv(const DlPlan *p, const char *key)
{
    for (int i = 0; i < p->ndata; i++)
        if (p->data[i].key && strcmp(p->data[i].key, key) == 0) return p->data[i].val;
    return NULL;
}

static int kv_num(const DlPlan *p, const char *key, double def, double lo, double hi, double *v, char **err)
{
    const char *s = kv(p, key);
    if (!s) {
        *v = def;
        return 0;
    }
    char *end;
    errno = 0;
    *v = strtod(s, &end);
    if (end == s || *end || errno || *v < lo || *v > hi) {
        *err = dl_xasprintf("data binding: %s = '%s' is not a number in [%g, %g]", key, s, lo, hi);
        return -1;
    }
    return 0;
}

static char *join(const char *root, const char *rel) { return dl_xasprintf("%s/%s", root, rel); }

/* The data binding's path KEY (dldlc only writes paths beneath the data root;
 * a plan from elsewhere may say anything): NULL when absent, -1 when it leaves
 * the data root. */
static int root_path(const DlPlan *plan, const char *key, const char **out, char **err)
{
    *out = kv(plan, key);
    if (*out && !dl_path_stays_inside(*out)) {
        *err = dl_xasprintf("data binding: %s '%s' leaves the data root (an absolute path or '..'): "
                            "the plan was not written by dldlc; re-run dldlc on its spec", key, *out);
        return -1;
    }
    return 0;
}

/* Where a label or distribution is read: "<prefix>:<field>" (LabelFrom). */
static const char *const from_prefix[] = {[LBL_COLUMN] = "column", [LBL_NAME] = "name", [LBL_VAR] = "var",
                                          [LBL_ARGMAX] = "argmax", [LBL_OBJECTS] = "objects", [LBL_MASK] = "mask"};

/* WHAT.I = name and WHAT.I.from = prefix:field (label.0, dist.1): malloc'd
 * name and field; 0 or -1 with *err. */
static int entry(const DlPlan *plan, const char *what, int i, char **name, int *from, char **field, char **err)
{
    char key[48], fkey[64];
    snprintf(key, sizeof key, "%s.%d", what, i);
    snprintf(fkey, sizeof fkey, "%s.from", key);
    const char *nm = kv(plan, key), *fr = kv(plan, fkey), *colon = fr ? strchr(fr, ':') : NULL;
    if (!nm || !fr || !colon)
        return *err = dl_xasprintf("data binding: %s needs '%s' and '%s' (PREFIX:FIELD)", key, key, fkey), -1;
    int k;
    for (k = 0; k < (int)(sizeof from_prefix / sizeof *from_prefix); k++)
        if (strlen(from_prefix[k]) == (size_t)(colon - fr) && !strncmp(fr, from_prefix[k], (size_t)(colon - fr))) break;
    if (k == (int)(sizeof from_prefix / sizeof *from_prefix))
        return *err = dl_xasprintf("data binding: %s = '%s' (expected column:, name:, var:, argmax:, objects: or mask:)", fkey,
                                   fr), -1;
    *from = k;
    *name = dl_xstrdup(nm);
    *field = dl_xstrdup(colon + 1);
    return 0;
}

int data_spec_parse(const DlPlan *plan, const char *root, DataSpec *s, char **err)
{
    memset(s, 0, sizeof *s);
    s->root = root;
    double v;
    s->source = kv(plan, "source");
    if (!s->source) return *err = dl_xasprintf("data binding: no 'source'"), -1;
    if (!source_find(s->source))
        return *err = dl_xasprintf("data binding: unknown source '%s' (known: %s)", s->source,
                                   source_kind_names()), -1;
    const char *path;
    if (root_path(plan, "source.path", &path, err)) return -1;
    if (!path) return *err = dl_xasprintf("data binding: no 'source.path'"), -1;
    s->rel_path = dl_xstrdup(path);
    s->path = join(root, path);
    if (root_path(plan, "source.images", &path, err)) return -1;
    if (path) {
        s->rel_images = dl_xstrdup(path);
        s->images = join(root, path);
    }
    s->file_col = kv(plan, "source.file") ? kv(plan, "source.file") : "file";

    const char *split = kv(plan, "split") ? kv(plan, "split") : "column";
    if (strcmp(split, "column") == 0) s->split = SPLIT_COLUMN;
    else if (strcmp(split, "folds") == 0) s->split = SPLIT_FOLDS;
    else if (strcmp(split, "kfold") == 0) s->split = SPLIT_KFOLD;
    else return *err = dl_xasprintf("data binding: split = '%s' (expected column, folds or kfold)", split), -1;
    if (s->split == SPLIT_KFOLD) {
        if (kv_num(plan, "split.k", 10, 2, 1000, &v, err)) return -1;
        s->kfold_k = (int)v;
        if (kv_num(plan, "split.seed", 0, 0, 4294967295.0, &v, err)) return -1;
        s->kfold_seed = (int)(uint32_t)v;
        if (kv_num(plan, "split.fold", 0, 0, s->kfold_k - 1, &v, err)) return -1;
        s->kfold_fold = (int)v;
    }
    s->split_col = kv(plan, "split.column");
    if (!s->split_col) {
        if (s->split == SPLIT_FOLDS) return *err = dl_xasprintf("data binding: folds split without 'split.column'"), -1;
        s->split_col = "split";
    }
    if (root_path(plan, "source.list", &path, err)) return -1;
    if (path) {
        s->rel_list = dl_xasprintf("%s/%s", s->rel_path, path);
        s->list = join(root, s->rel_list);
    } else if (strcmp(s->source, "voc") == 0) {
        return *err = dl_xasprintf("data binding: a voc source needs 'source.list' (an ImageSets list)"), -1;
    }
    if (root_path(plan, "split.path", &path, err)) return -1;
    if (path) {
        s->rel_split_path = dl_xstrdup(path);
        s->split_path = join(root, path);
    } else if (s->split == SPLIT_FOLDS || (s->split == SPLIT_COLUMN && strcmp(s->source, "csv") != 0)) {
        return *err = dl_xasprintf("data binding: a %s source with a %s split needs 'split.path' "
                                   "(a csv with 'file' and '%s' columns)", s->source, split, s->split_col), -1;
    }

    if (kv_num(plan, "label.count", 0, 0, DL_MAX_AXES, &v, err)) return -1;
    s->nlabels = (int)v;
    for (int a = 0; a < s->nlabels; a++) {
        LabelSpec *l = &s->labels[a];
        if (entry(plan, "label", a, &l->name, &l->from, &l->field, err)) return -1;
    }
    if (kv_num(plan, "dist.count", 0, 0, DL_PLAN_MAX_TARGETS, &v, err)) return -1;
    s->ndist = (int)v;
    for (int f = 0; f < s->ndist; f++) {
        int from;
        if (entry(plan, "dist", f, &s->dist_name[f], &from, &s->dist_var[f], err)) return -1;
        int voc = strcmp(s->source, "voc") == 0;
        if (voc ? from != LBL_OBJECTS && from != LBL_MASK : from != LBL_VAR)
            return *err = dl_xasprintf("data binding: dist.%d.from: a %s source's fields are %s", f, s->source,
                                       voc ? "its objects (objects:xml) or label maps (mask:png)"
                                           : "variables (var:NAME)"), -1;
        s->dist_from[f] = from;
    }
    const char *input = kv(plan, "input") ? kv(plan, "input") : "image";
    if (strcmp(input, "features") == 0) {
        s->features = 1;
        if (kv_num(plan, "input.dims", 0, 1, 1000000, &v, err)) return -1;
        s->dims = (int)v;
        if (kv_num(plan, "input.standardize", 0, 0, 1, &v, err)) return -1;
        s->standardize = (int)v;
        s->features_var = kv(plan, "source.features");
        s->C = s->dims, s->H = s->W = 1;
        if (strcmp(s->source, "mat") != 0)
            return *err = dl_xasprintf("data binding: input = features needs a mat source, not %s", s->source), -1;
        return 0;
    }
    if (strcmp(input, "image") != 0)
        return *err = dl_xasprintf("data binding: input = '%s' (expected image or features)", input), -1;
    if (strcmp(s->source, "mat") == 0)
        return *err = dl_xasprintf("data binding: a mat source gives feature vectors: input = features"), -1;

    if (kv_num(plan, "input.channels", 3, 1, 3, &v, err)) return -1;
    s->C = (int)v;
    if (s->C == 2) return *err = dl_xasprintf("data binding: input.channels = 2 (expected 1 or 3)"), -1;
    if (kv_num(plan, "input.height", 64, 1, 8192, &v, err)) return -1;
    s->H = (int)v;
    if (kv_num(plan, "input.width", 64, 1, 8192, &v, err)) return -1;
    s->W = (int)v;
    if (kv_num(plan, "input.lo", 0, -1e30, 1e30, &v, err)) return -1;
    s->lo = (float)v;
    if (kv_num(plan, "input.hi", 1, -1e30, 1e30, &v, err)) return -1;
    s->hi = (float)v;

    const char *crop = kv(plan, "crop") ? kv(plan, "crop") : "none";
    if (strcmp(crop, "none") == 0) s->crop = CROP_NONE;
    else if (strcmp(crop, "face_box") == 0) s->crop = CROP_FACE_BOX;
    else return *err = dl_xasprintf("data binding: crop = '%s' (expected none or face_box)", crop), -1;
    if (s->crop == CROP_FACE_BOX && strcmp(s->source, "pointing04") != 0)
        return *err = dl_xasprintf("data binding: crop = face_box needs face boxes: a pointing04 source, not %s",
                                   s->source), -1;
    if (kv_num(plan, "crop.scale", 1, 1e-3, 100, &v, err)) return -1;
    s->crop_scale = (float)v;

    if (kv_num(plan, "augment.hflip", 0, 0, 1, &v, err)) return -1;
    s->hflip = (int)v;
    if (kv_num(plan, "augment.random_crop.pad", 0, 0, 1024, &v, err)) return -1;
    s->crop_pad = (int)v;
    if (kv_num(plan, "augment.random_scale.min", 1, 0.1, 10, &v, err)) return -1;
    s->scale_min = (float)v;
    if (kv_num(plan, "augment.random_scale.max", 1, 0.1, 10, &v, err)) return -1;
    s->scale_max = (float)v;
    if (s->scale_max < s->scale_min)
        return *err = dl_xasprintf("data binding: augment.random_scale.max %g is below its min %g",
                                   (double)s->scale_max, (double)s->scale_min), -1;
    const char *neg = kv(plan, "augment.hflip.negate");
    for (const char *p = neg; p && *p;) {
        char *end;
        long i = strtol(p, &end, 10);
        if (end == p || i < 0 || i >= s->nlabels || (*end && *end != ','))
            return *err = dl_xasprintf("data binding: augment.hflip.negate = '%s' (expected label indices 0..%d, "
                                       "comma-separated)", neg, s->nlabels - 1), -1;
        s->negate[i] = 1;
        p = *end ? end + 1 : end;
    }
    return 0;
}

int dl_data_input_shape(const DlPlan *plan, int *C, int *H, int *W, char **err)
{
    DataSpec s;
    int rc = data_spec_parse(plan, ".", &s, err);
    if (rc == 0) *C = s.C, *H = s.H, *W = s.W;
    data_spec_free(&s);
    return rc;
}

void data_spec_free(DataSpec *s)
{
    free(s->path);
    free(s->rel_path);
    free(s->images);
    free(s->rel_images);
    free(s->split_path);
    free(s->rel_split_path);
    for (int a = 0; a < DL_MAX_AXES; a++) {
        free(s->labels[a].name);
        free(s->labels[a].field);
    }
    for (int f = 0; f < DL_PLAN_MAX_TARGETS; f++) free(s->dist_name[f]), free(s->dist_var[f]);
    free(s->list), free(s->rel_list);
    memset(s, 0, sizeof *s);
}

/* ---- parallel decoding ---------------------------------------------------- */

typedef struct DecodeJob {
    const DataSpec *spec;
    SampleList *samples;
    uint8_t *pixels;      /* [n, C, H, W], sample i at i*CHW */
    atomic_size_t next;
    int failed_init;
} DecodeJob;

/* Each thread takes the next undecoded sample; results land at the sample's
 * own slot, so the outcome does not depend on the thread count. */
static void *decode_worker(void *arg)
{
    DecodeJob *job = arg;
    const DataSpec *sp = job->spec;
    size_t chw = (size_t)sp->C * sp->H * sp->W;
    ImageDecoder *dec = image_decoder_new();
    if (!dec) {
        job->failed_init = 1;
        return NULL;
    }
    for (;;) {
        size_t i = atomic_fetch_add(&job->next, 1);
        if (i >= job->samples->n) break;
        Sample *s = &job->samples->a[i];
        if (s->bad) continue;
        char *why = NULL;
        if (image_load(dec, s->path, s->has_box ? s->box : NULL, sp->crop_scale, sp->C, sp->H, sp->W,
                       job->pixels + i * chw, &why)) {
            s->bad = dl_xasprintf("%s: %s", s->rel, why);
            free(why);
        }
    }
    image_decoder_free(dec);
    return NULL;
}

static int decode_all(const DataSpec *spec, SampleList *l, uint8_t *pixels, int nthreads, char **err)
{
    DecodeJob job = {.spec = spec, .samples = l, .pixels = pixels};
    atomic_init(&job.next, 0);
    if (nthreads <= 0) nthreads = (int)sysconf(_SC_NPROCESSORS_ONLN);
    if (nthreads < 1) nthreads = 1;
    if ((size_t)nthreads > l->n) nthreads = l->n ? (int)l->n : 1;
    pthread_t *th = dl_xmalloc((size_t)nthreads * sizeof *th);
    int started = 0;
    for (int t = 1; t < nthreads; t++)
        if (pthread_create(&th[started], NULL, decode_worker, &job) == 0) started++;
    decode_worker(&job); /* this thread works too; a thread that failed to start costs only speed */
    for (int t = 0; t < started; t++) pthread_join(th[t], NULL);
    free(th);
    if (job.failed_init) {
        *err = dl_xasprintf("cannot initialise the JPEG decoder (libturbojpeg)");
        return -1;
    }
    return 0;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- load ----------------------------------------------------------------- */

int dl_data_load(const DlPlan *plan, const DlDataOpts *opts, DlDataset **out, char **err)
{
    *out = NULL;
    const char *root = opts && opts->root ? opts->root : dl_data_root();
    struct stat st;
    if (stat(root, &st) != 0 || !S_ISDIR(st.st_mode)) {
        *err = dl_xasprintf("data root '%s' not found (set DLDL_DATA or pass --data DIR)", root);
        return -1;
    }
    DataSpec spec;
    SampleList l = {0};
    uint8_t *pixels = NULL;
    char **fold_names = NULL;
    int nfolds = 0;
    if (data_spec_parse(plan, root, &spec, err)) goto fail;
    spec.quiet = opts && opts->fold > 1; /* later folds of --cv read the same data: say it once */
    if (opts && opts->fold > 0) { /* --cv: test on fold opts->fold (1-based) */
        if ((nfolds = dl_data_folds(plan, root, &fold_names, err)) < 0) goto fail;
        if (opts->fold > nfolds) {
            *err = dl_xasprintf("fold %d of %d", opts->fold, nfolds);
            goto fail;
        }
        if (spec.split == SPLIT_KFOLD) spec.kfold_fold = opts->fold - 1;
        else spec.split_col = fold_names[opts->fold - 1];
    }
    if (source_find(spec.source)->scan(&spec, &l, err)) goto fail;
    for (int t = 0; t < plan->ntargets; t++) { /* a given target's rows must be as wide as its bins */
        const DlPlanTarget *tg = &plan->targets[t];
        if (!dl_target_reads_field(tg)) continue;
        if (tg->dist >= spec.ndist) {
            *err = dl_xasprintf("data binding: target '%s' reads distribution field %d of %d", tg->name, tg->dist,
                                spec.ndist);
            goto fail;
        }
        if (tg->kind == DL_TGT_LABEL_MAP && (tg->map_h != spec.H || tg->map_w != spec.W)) {
            *err = dl_xasprintf("data binding: target '%s' is %d x %d pixels, the input %d x %d (re-run dldlc)",
                                tg->name, tg->map_h, tg->map_w, spec.H, spec.W);
            goto fail;
        }
        if (l.dist_width[tg->dist] != dl_target_field_width(tg)) {
            *err = dl_xasprintf("%s: '%s' has %d columns but target '%s' has %d bins (recompile the spec for this "
                                "file, e.g. dldlc -D with its params)", spec.rel_path, spec.dist_var[tg->dist],
                                l.dist_width[tg->dist], tg->name, dl_target_bins(tg));
            goto fail;
        }
    }
    for (size_t i = 0; i < l.n; i++) /* labels within their targets' bins (or clamped) */
        for (int t = 0; t < plan->ntargets && !l.a[i].bad; t++) {
            char *why = dl_target_check_labels(&plan->targets[t], l.a[i].labels);
            if (why) l.a[i].bad = dl_xasprintf("%s: %s", l.a[i].rel ? l.a[i].rel : "?", why);
            free(why);
        }
    if (split_assign(&spec, &l, err)) goto fail;
    if (l.n == 0) {
        *err = dl_xasprintf("%s: no samples", spec.rel_path);
        goto fail;
    }

    size_t chw = spec.features ? 0 : (size_t)spec.C * spec.H * spec.W;
    pixels = dl_xmalloc(l.n * chw + 1);
    double t0 = now_s();
    if (!spec.features && decode_all(&spec, &l, pixels, opts ? opts->nthreads : 0, err)) goto fail;
    double dt = now_s() - t0;

    int nbad = 0;
    for (size_t i = 0; i < l.n; i++) {
        if (!l.a[i].bad) continue;
        if (nbad < MAX_BAD_SHOWN) fprintf(stderr, "%s\n", l.a[i].bad);
        nbad++;
    }
    if (nbad > MAX_BAD_SHOWN) fprintf(stderr, "... and %d more bad samples\n", nbad - MAX_BAD_SHOWN);
    if (nbad && !(opts && opts->skip_bad)) {
        *err = dl_xasprintf("%d bad sample%s (see above); --skip-bad skips %s", nbad, nbad == 1 ? "" : "s",
                            nbad == 1 ? "it" : "them");
        goto fail;
    }
    if ((size_t)nbad == l.n) {
        *err = dl_xasprintf("%s: every sample is bad", spec.rel_path);
        goto fail;
    }

    DlDataset *d = dl_xcalloc(1, sizeof *d);
    d->nlabels = spec.nlabels;
    d->features = spec.features;
    d->ndist = spec.ndist;
    d->C = spec.C, d->H = spec.H, d->W = spec.W;
    d->lo = spec.lo, d->hi = spec.hi;
    d->hflip = spec.hflip;
    d->crop_pad = spec.crop_pad;
    d->scale_min = spec.scale_min, d->scale_max = spec.scale_max;
    d->mask_field = -1;
    for (int f = 0; f < spec.ndist; f++)
        if (spec.dist_from[f] == LBL_MASK) d->mask_field = f;
    memcpy(d->negate, spec.negate, sizeof d->negate);
    d->nskipped = nbad;
    int n = (int)l.n - nbad;
    d->files = dl_xmalloc((size_t)n * sizeof *d->files);
    d->labels = dl_xmalloc((size_t)n * spec.nlabels * sizeof *d->labels + 1);
    if (spec.features) d->vectors = dl_xmalloc((size_t)n * (size_t)spec.dims * sizeof *d->vectors);
    for (int f = 0; f < spec.ndist; f++) {
        d->dist_width[f] = l.dist_width[f];
        d->dist[f] = dl_xmalloc((size_t)n * (size_t)l.dist_width[f] * sizeof(float) + 1);
    }
    d->split = dl_xmalloc((size_t)n);
    d->train_idx = dl_xmalloc((size_t)n * sizeof(int));
    d->test_idx = dl_xmalloc((size_t)n * sizeof(int));
    for (size_t i = 0; i < l.n; i++) {
        Sample *s = &l.a[i];
        if (s->bad) continue;
        int j = d->n++;
        d->files[j] = s->rel;
        s->rel = NULL;
        memcpy(d->labels + (size_t)j * spec.nlabels, s->labels, (size_t)spec.nlabels * sizeof(float));
        if (spec.features) memcpy(d->vectors + (size_t)j * spec.dims, s->vec, (size_t)spec.dims * sizeof(float));
        for (int f = 0, off = 0; f < spec.ndist; off += d->dist_width[f], f++)
            memcpy(d->dist[f] + (size_t)j * d->dist_width[f], s->dist + off, (size_t)d->dist_width[f] * sizeof(float));
        d->split[j] = (uint8_t)s->split;
        if (s->split == DL_TRAIN) d->train_idx[d->ntrain++] = j;
        else d->test_idx[d->ntest++] = j;
        if ((size_t)j != i) memmove(pixels + (size_t)j * chw, pixels + i * chw, chw);
    }
    d->pixels = dl_xrealloc(pixels, (size_t)n * chw + 1);
    pixels = NULL;
    if (!(opts && opts->quiet)) {
        fprintf(stderr, "data: %s: %d samples (%d train, %d test) %s in %.2f s", spec.rel_path, d->n,
                d->ntrain, d->ntest, spec.features ? "read" : "decoded", dt);
        if (nbad) fprintf(stderr, "; skipped %d bad", nbad);
        fprintf(stderr, "\n");
    }
    data_spec_free(&spec);
    sample_list_free(&l);
    for (int f = 0; f < nfolds; f++) free(fold_names[f]);
    free(fold_names);
    *out = d;
    return 0;
fail:
    free(pixels);
    data_spec_free(&spec);
    sample_list_free(&l);
    for (int f = 0; f < nfolds; f++) free(fold_names[f]);
    free(fold_names);
    return -1;
}

int dl_data_folds(const DlPlan *plan, const char *root, char ***names, char **err)
{
    DataSpec spec;
    int n = -1;
    *names = NULL;
    if (data_spec_parse(plan, root, &spec, err)) goto out;
    if (spec.split == SPLIT_KFOLD) {
        n = spec.kfold_k;
        *names = dl_xcalloc((size_t)n, sizeof **names);
        for (int f = 0; f < n; f++) (*names)[f] = dl_xasprintf("fold%d", f + 1);
    } else if (spec.split == SPLIT_FOLDS) {
        CsvFile c;
        if (csv_read(spec.split_path, spec.rel_split_path, &c, err)) goto out;
        *names = dl_xcalloc((size_t)c.rows[0].n + 1, sizeof **names);
        n = 0;
        for (int k = 0; k < c.rows[0].n; k++) { /* a fold: a column of train / test only */
            int fold = c.nrows > 1;
            for (int r = 1; r < c.nrows && fold; r++)
                fold = !strcmp(c.rows[r].f[k], "train") || !strcmp(c.rows[r].f[k], "test");
            if (fold) (*names)[n++] = dl_xstrdup(c.rows[0].f[k]);
        }
        csv_free(&c);
        if (n == 0) *err = dl_xasprintf("%s: no fold column (one of only 'train' and 'test')", spec.rel_split_path), n = -1;
    } else {
        *err = dl_xasprintf("cross-validation needs a kfold(k) or folds(path) split, not a split column");
    }
out:
    data_spec_free(&spec);
    return n;
}

void dl_data_free(DlDataset *d)
{
    if (!d) return;
    for (int i = 0; i < d->n; i++) free(d->files[i]);
    free(d->files);
    free(d->labels);
    free(d->split);
    free(d->pixels);
    free(d->vectors);
    for (int f = 0; f < d->ndist; f++) free(d->dist[f]);
    free(d->train_idx);
    free(d->test_idx);
    free(d);
}

/* ---- one file (--predict) ------------------------------------------------- */

int dl_data_load_image(const DlPlan *plan, const char *path, float *pixels, char **err)
{
    DataSpec spec;
    if (data_spec_parse(plan, dl_data_root(), &spec, err)) {
        data_spec_free(&spec);
        return -1;
    }
    float box[4];
    int has_box = 0, rc = -1;
    if (spec.crop == CROP_FACE_BOX) {
        /* PATH.jpg -> PATH.txt, when there is one. */
        const char *slash = strrchr(path, '/'), *dot = strrchr(path, '.');
        size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - path) : strlen(path);
        char *txt = dl_xasprintf("%.*s.txt", (int)stem, path), *why = NULL;
        if (access(txt, F_OK) == 0) {
            if (read_face_box(txt, box, &why)) {
                *err = dl_xasprintf("%s: %s", txt, why);
                free(why);
                free(txt);
                goto out;
            }
            has_box = 1;
        }
        free(txt);
    }
    ImageDecoder *dec = image_decoder_new();
    if (!dec) {
        *err = dl_xasprintf("cannot initialise the JPEG decoder (libturbojpeg)");
        goto out;
    }
    size_t chw = (size_t)spec.C * spec.H * spec.W;
    uint8_t *u8 = dl_xmalloc(chw);
    char *why = NULL;
    if (image_load(dec, path, has_box ? box : NULL, spec.crop_scale, spec.C, spec.H, spec.W, u8, &why)) {
        *err = dl_xasprintf("%s: %s", path, why);
        free(why);
    } else {
        for (size_t i = 0; i < chw; i++) pixels[i] = spec.lo + (spec.hi - spec.lo) * (float)u8[i] / 255.0f;
        rc = 0;
    }
    free(u8);
    image_decoder_free(dec);
out:
    data_spec_free(&spec);
    return rc;
}

/* ---- epochs and batches --------------------------------------------------- */

/* Fisher-Yates from the back; the swap partner of position i is
 * floor(u * (i+1) / 2^64), u = dl_rng_u64(seed, epoch, i, 0) (no modulo bias). */
void dl_data_shuffle(const DlDataset *d, uint64_t seed, int epoch, int *order)
{
    memcpy(order, d->train_idx, (size_t)d->ntrain * sizeof *order);
    for (int i = d->ntrain - 1; i > 0; i--) {
        uint64_t u = dl_rng_u64(seed, (uint64_t)epoch, (uint64_t)i, 0);
        int j = (int)(((unsigned __int128)u * (unsigned)(i + 1)) >> 64);
        int t = order[i];
        order[i] = order[j];
        order[j] = t;
    }
}

void dl_data_feature_stats(const DlDataset *d, float *stats)
{
    if (!d->features) return;
    int D = d->C;
    for (int k = 0; k < D; k++) {
        double m = 0, v = 0;
        for (int j = 0; j < d->ntrain; j++) m += d->vectors[(size_t)d->train_idx[j] * D + k];
        m = d->ntrain ? m / d->ntrain : 0;
        for (int j = 0; j < d->ntrain; j++) {
            double x = d->vectors[(size_t)d->train_idx[j] * D + k] - m;
            v += x * x;
        }
        stats[k] = (float)m;
        stats[D + k] = (float)(d->ntrain ? v / d->ntrain : 1);
    }
}
