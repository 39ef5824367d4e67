/* lower_data.c - `data NAME { ... }` declarations: tables of data keys,
 * sources, splits, label extractors, crops, inputs and augmentations; label
 * references; the data binding written to the plan (docs/plan-format.md,
 * "Data binding").  Targets: lower_target.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_int.h"

/* ---- value kinds of the data keys ---------------------------------------- */

typedef struct DataKind {
    const char *name;
    void (*fn)(Lower *L, DataInfo *D, const AstExpr *call, const AstExpr **a);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
    const char *const *fields; /* source kinds: the name_field()s the file names carry */
    int nfields;
} DataKind;

static void path_arg(Lower *L, DataInfo *D, const char *key, const AstExpr *e, const char *what)
{
    const char *s;
    if (lw_get_str(L, e, key, what, NULL, &s) || !s)
        return;
    if (!*s || s[0] == '/' || strstr(s, "..")) {
        lw_error(L, e->loc, "%s path '%s' must be relative to the data root, without '..'", what, s);
        return;
    }
    char k[64];
    snprintf(k, sizeof k, "%s", key);
    lw_kv(L, &D->kv, k, "%s", s);
}

static void src_csv(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    path_arg(L, D, "source.path", a[0], "csv");
    path_arg(L, D, "source.images", a[1], "csv");
    const char *file;
    if (!lw_get_str(L, a[2], "file", "csv", "file", &file))
        lw_kv(L, &D->kv, "source.file", "%s", file);
}
static void src_folder(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    path_arg(L, D, "source.path", a[0], c->name);
}

/* mat("ldl/SJAFFE.mat", features = "features"): MATLAB variables, one row per sample */
static void src_mat(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    path_arg(L, D, "source.path", a[0], "mat");
    const char *v;
    if (!lw_get_str(L, a[1], "features", "mat", "features", &v))
        lw_kv(L, &D->kv, "source.features", "%s", v);
}

/* voc("voc2012/VOC2012", list = "ImageSets/Main/multilabel.txt"): a VOC
 * devkit folder and an image list inside it; the images' objects are a field
 * (NAME = objects()) */
static void src_voc(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    path_arg(L, D, "source.path", a[0], "voc");
    path_arg(L, D, "source.list", a[1], "voc list");
}

static const char *const utk_fields[] = {"age", "gender", "race"};
static const char *const p04_fields[] = {"pitch", "yaw", "person", "series"};
static const DataKind source_kinds[] = {
    {"csv", src_csv, {{"path", AT_STR, 1, 0}, {"images", AT_STR, 1, 0}, {"file", AT_STR, 0, 0}}, 3, NULL, 0},
    {"utkface", src_folder, {{"path", AT_STR, 1, 0}}, 1, utk_fields, 3},
    {"pointing04", src_folder, {{"path", AT_STR, 1, 0}}, 1, p04_fields, 4},
    {"mat", src_mat, {{"path", AT_STR, 1, 0}, {"features", AT_STR, 0, 0}}, 2, NULL, 0},
    {"voc", src_voc, {{"path", AT_STR, 1, 0}, {"list", AT_STR, 1, 0}}, 2, NULL, 0},
};

static void split_column(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    const char *col;
    if (!lw_get_str(L, a[0], "column", "column", NULL, &col))
        lw_kv(L, &D->kv, "split.column", "%s", col);
}
static void split_folds(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    path_arg(L, D, "split.path", a[0], "folds");
    const char *col;
    if (!lw_get_str(L, a[1], "column", "folds", "fold1", &col))
        lw_kv(L, &D->kv, "split.column", "%s", col);
}
/* kfold(k, seed = 0, fold = 0): the samples permuted as numpy's
 * RandomState(seed).permutation and cut into k folds (np.array_split), as the
 * LDL reference does; `fold` is the test fold of a plain --train run (--cv
 * runs them all). */
static void split_kfold(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    int k, seed, fold;
    if (lw_get_int(L, a[0], "k", "kfold", 10, &k) || lw_get_int(L, a[1], "seed", "kfold", 0, &seed) ||
        lw_get_int(L, a[2], "fold", "kfold", 0, &fold))
        return;
    if (k < 2 || k > 1000) {
        lw_error(L, a[0]->loc, "'k' of kfold must be in 2..1000, not %d", k);
        return;
    }
    if (seed < 0) {
        lw_error(L, a[1]->loc, "'seed' of kfold must be >= 0, not %d", seed);
        return;
    }
    if (fold < 0 || fold >= k) {
        lw_error(L, a[2]->loc, "'fold' of kfold must be in 0..%d, not %d", k - 1, fold);
        return;
    }
    lw_kv(L, &D->kv, "split.k", "%d", k);
    lw_kv(L, &D->kv, "split.seed", "%d", seed);
    lw_kv(L, &D->kv, "split.fold", "%d", fold);
}
static const DataKind split_kinds[] = {
    {"column", split_column, {{"column", AT_STR, 1, 0}}, 1, NULL, 0},
    {"folds", split_folds, {{"path", AT_STR, 1, 0}, {"column", AT_STR, 0, 0}}, 2, NULL, 0},
    {"kfold", split_kfold, {{"k", AT_INT, 1, 0}, {"seed", AT_INT, 0, 0}, {"fold", AT_INT, 0, 0}}, 3, NULL, 0},
};

static void crop_none(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a) { (void)L, (void)D, (void)a; }
static void crop_face_box(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    double s;
    if (lw_get_num(L, a[0], "scale", "face_box", 1.0, &s))
        return;
    if (!(s > 0 && s <= 10))
        lw_error(L, a[0]->loc, "'scale' of face_box must be in (0, 10], not %g", s);
    else
        lw_kv(L, &D->kv, "crop.scale", "%.9g", s);
}
static const DataKind crop_kinds[] = {
    {"none", crop_none, {{0}}, 0, NULL, 0},
    {"face_box", crop_face_box, {{"scale", AT_NUM, 0, 1.0}}, 1, NULL, 0},
};

static void input_image(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    int ch;
    double hw[2], r[2] = {0, 1};
    if (lw_get_int(L, a[0], "channels", "image", 3, &ch) || lw_num_list(L, a[1], "size", "image", 2, hw) ||
        (a[2] && lw_num_list(L, a[2], "range", "image", 2, r)))
        return;
    if (ch != 1 && ch != 3) {
        lw_error(L, a[0]->loc, "'channels' of image must be 1 or 3, not %d", ch);
        return;
    }
    if (hw[0] != floor(hw[0]) || hw[1] != floor(hw[1]) || hw[0] < 1 || hw[1] < 1 || hw[0] > 4096 || hw[1] > 4096) {
        lw_error(L, a[1]->loc, "'size' of image must be two integers in 1..4096 ([height, width])");
        return;
    }
    if (!(r[0] < r[1])) {
        lw_error(L, a[2]->loc, "'range' of image must be [lo, hi] with lo < hi");
        return;
    }
    D->C = ch, D->H = (int)hw[0], D->W = (int)hw[1];
    D->input_ok = 1;
    lw_kv(L, &D->kv, "input.channels", "%d", D->C);
    lw_kv(L, &D->kv, "input.height", "%d", D->H);
    lw_kv(L, &D->kv, "input.width", "%d", D->W);
    lw_kv(L, &D->kv, "input.lo", "%.9g", r[0]);
    lw_kv(L, &D->kv, "input.hi", "%.9g", r[1]);
}
/* features(d, standardize = false): a [B,d] float vector per sample (a mat
 * source's features variable); standardize: (x - mean) / std per feature with
 * the training split's statistics, stored with the weights. */
static void input_features(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    int d, st;
    if (lw_get_int(L, a[0], "dims", "features", 0, &d) || lw_get_bool(L, a[1], "standardize", "features", 0, &st))
        return;
    if (d < 1 || d > 1000000) {
        lw_error(L, a[0]->loc, "'dims' of features must be in 1..1000000, not %d", d);
        return;
    }
    D->features = 1, D->standardize = st;
    D->C = d, D->H = D->W = 0;
    D->input_ok = 1;
    lw_kv(L, &D->kv, "input.dims", "%d", d);
    lw_kv(L, &D->kv, "input.standardize", "%d", st);
}
static const DataKind input_kinds[] = {
    {"image", input_image, {{"channels", AT_INT, 0, 3}, {"size", AT_EXPR, 1, 0}, {"range", AT_EXPR, 0, 0}}, 3, NULL, 0},
    {"features", input_features, {{"dims", AT_INT, 1, 0}, {"standardize", AT_BOOL, 0, 0}}, 2, NULL, 0},
};

static void aug_hflip(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    D->hflip = 1;
    D->negate = a[0];
}
/* random_crop(pad = 4): an H x W crop of the image padded with black, i.e. a
 * random shift by -pad..pad pixels per axis (as torchvision's RandomCrop with
 * padding); the labels are unchanged. */
static void aug_random_crop(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    double pad = a[0] ? a[0]->num : 4;
    if (!(pad >= 1 && pad <= 64) || (a[0] && !a[0]->is_int)) {
        lw_error(L, a[0] ? a[0]->loc : c->loc, "'pad' of random_crop must be a whole number of pixels in 1..64");
        return;
    }
    D->crop_pad = (int)pad;
}
/* random_scale(min = 0.75, max = 1.25): a zoom about the image's centre by a
 * factor drawn uniformly from [min, max] per sample and epoch, the output
 * keeping the input's size (bilinear for the image, nearest for a label map;
 * outside the source: black, and void for the map). */
static void aug_random_scale(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a)
{
    double lo = a[0] ? a[0]->num : 0.75, hi = a[1] ? a[1]->num : 1.25;
    if (!(lo >= 0.25 && lo <= 4) || !(hi >= 0.25 && hi <= 4) || hi < lo) {
        lw_error(L, c->loc, "random_scale needs 0.25 <= min <= max <= 4, not min %g, max %g", lo, hi);
        return;
    }
    D->scale_min = lo, D->scale_max = hi;
}
static const DataKind augment_kinds[] = {
    {"hflip", aug_hflip, {{"negate", AT_EXPR, 0, 0}}, 1, NULL, 0},
    {"random_crop", aug_random_crop, {{"pad", AT_INT, 0, 4}}, 1, NULL, 0},
    {"random_scale", aug_random_scale, {{"min", AT_NUM, 0, 0}, {"max", AT_NUM, 0, 0}}, 2, NULL, 0},
};

/* Where a label is read (the `from` of label(from, unit)): the binding's
 * label.N.from is "<prefix>:<field>"; fields name the sources it applies to
 * (NULL: any but mat). */
static void from_column(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a) { (void)D; }
static void from_name(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a) { (void)D; }
static void from_var(Lower *L, DataInfo *D, const AstExpr *c, const AstExpr **a) { (void)D; }
static const char *const mat_only[] = {"mat"};
static const DataKind from_kinds[] = {
    {"column", from_column, {{"column", AT_STR, 1, 0}}, 1, NULL, 0},              /* column:NAME */
    {"name_field", from_name, {{"field", AT_STR, 1, 0}}, 1, NULL, 0},             /* name:FIELD */
    {"variable", from_var, {{"name", AT_STR, 1, 0}}, 1, mat_only, 1},             /* var:NAME, an n x 1 variable */
    {"argmax", from_var, {{"variable", AT_STR, 1, 0}}, 1, mat_only, 1},           /* argmax:NAME, a row's arg-max (a class 0..c-1) */
};
static const char *const from_prefix[] = {"column", "name", "var", "argmax"};

#define N(t) ((int)(sizeof t / sizeof *t))

/* Find e's kind in the table, bind its arguments and run its handler.
 * Returns the row, or NULL after an error. */
static const DataKind *dispatch(Lower *L, DataInfo *D, const AstExpr *e, const DataKind *t, int n,
                                const char *what, const AstExpr **a)
{
    if (e->kind != EX_CALL) {
        lw_error(L, e->loc, "%s must be a call such as %s(...), not %s", what, t[0].name, lw_expr_desc(e));
        return NULL;
    }
    const char *names[16];
    for (int k = 0; k < n && k < 16; k++)
        names[k] = t[k].name;
    for (int k = 0; k < n; k++)
        if (!strcmp(e->name, t[k].name)) {
            char w[96];
            snprintf(w, sizeof w, "%s '%s'", what, e->name);
            if (lw_bind(L, e, w, t[k].spec, t[k].nspec, a))
                return NULL;
            t[k].fn(L, D, e, a);
            return &t[k];
        }
    lw_unknown(L, e->loc, what, e->name, names, n < 16 ? n : 16, NULL);
    return NULL;
}

/* ---- data keys ----------------------------------------------------------- */

typedef struct DataKey {
    const char *name;
    void (*fn)(Lower *L, DataInfo *D, const AstItem *it);
} DataKey;

static void key_source(Lower *L, DataInfo *D, const AstItem *it)
{
    const AstExpr *a[LW_MAX_ARGS];
    const DataKind *k = dispatch(L, D, it->value, source_kinds, N(source_kinds), "data source", a);
    if (k) {
        lw_kv(L, &D->kv, "source", "%s", k->name);
        D->source_kind = k->name;
    }
}
static void key_split(Lower *L, DataInfo *D, const AstItem *it)
{
    const AstExpr *a[LW_MAX_ARGS];
    const DataKind *k = dispatch(L, D, it->value, split_kinds, N(split_kinds), "split", a);
    if (k)
        lw_kv(L, &D->kv, "split", "%s", k->name);
}
static void key_crop(Lower *L, DataInfo *D, const AstItem *it)
{
    const AstExpr *a[LW_MAX_ARGS];
    const DataKind *k = dispatch(L, D, it->value, crop_kinds, N(crop_kinds), "crop", a);
    if (k)
        lw_kv(L, &D->kv, "crop", "%s", k->name);
}
static void key_input(Lower *L, DataInfo *D, const AstItem *it)
{
    const AstExpr *a[LW_MAX_ARGS];
    const DataKind *k = dispatch(L, D, it->value, input_kinds, N(input_kinds), "input", a);
    if (k)
        lw_kv(L, &D->kv, "input", "%s", k->name);
}
static void key_augment(Lower *L, DataInfo *D, const AstItem *it)
{
    const AstExpr *e = it->value, *a[LW_MAX_ARGS];
    if (e->kind != EX_LIST) {
        lw_error(L, e->loc, "augment must be a list such as [hflip()], not %s", lw_expr_desc(e));
        return;
    }
    for (int i = 0; i < e->nargs; i++)
        dispatch(L, D, e->args[i], augment_kinds, N(augment_kinds), "augmentation", a);
}

static const DataKey data_keys[] = {
    {"source", key_source}, {"split", key_split}, {"crop", key_crop},
    {"input", key_input},   {"augment", key_augment},
};

/* `NAME = label(from, unit = "...")`: a label entry. */
static void label_entry(Lower *L, DataInfo *D, const AstItem *it, const AstExpr *call)
{
    static const ArgSpec spec[] = {{"from", AT_EXPR, 1, 0}, {"unit", AT_STR, 0, 0}};
    const AstExpr *a[2], *fa[LW_MAX_ARGS];
    char w[96];
    snprintf(w, sizeof w, "label '%s'", it->name);
    if (lw_bind(L, call, w, spec, 2, a))
        return;
    DataLabel lab = {it->name, it->loc, NULL, "", 0, -1};
    if (lw_get_str(L, a[1], "unit", w, "", &lab.unit))
        return;
    const DataKind *k = dispatch(L, D, a[0], from_kinds, N(from_kinds), "label source", fa);
    if (!k)
        return;
    const char *field;
    if (lw_get_str(L, fa[0], k->spec[0].name, w, NULL, &field))
        return;
    int is_mat = D->source_kind && !strcmp(D->source_kind, "mat");
    if (D->source_kind && (k->fields != NULL) != is_mat) {
        lw_error(L, a[0]->loc, "%s() does not apply to a %s source%s", k->name, D->source_kind,
                 is_mat ? "; read a .mat variable with variable(\"name\") or argmax(\"name\")" : "");
        return;
    }
    if (k->fields) {
        const char *pre = from_prefix[k - from_kinds];
        char *s = dl_pool_alloc(L->pool, strlen(field) + strlen(pre) + 2);
        sprintf(s, "%s:%s", pre, field);
        lab.from = s;
    } else if (k->fn == from_name) {
        const DataKind *src = NULL;
        for (int s = 0; s < N(source_kinds); s++)
            if (D->source_kind && !strcmp(D->source_kind, source_kinds[s].name))
                src = &source_kinds[s];
        if (src && !src->nfields) {
            lw_error(L, a[0]->loc, "name_field() needs a source whose file names carry labels (utkface, pointing04), not %s", src->name);
            return;
        }
        int exact = !src;
        for (int f = 0; src && f < src->nfields; f++)
            exact |= !strcmp(src->fields[f], field);
        if (!exact) {
            lw_unknown(L, fa[0]->loc, "name field", field, src->fields, src->nfields, NULL);
            return;
        }
        char *s = dl_pool_alloc(L->pool, strlen(field) + 6);
        sprintf(s, "name:%s", field);
        lab.from = s;
    } else {
        char *s = dl_pool_alloc(L->pool, strlen(field) + 8);
        sprintf(s, "column:%s", field);
        lab.from = s;
    }
    DL_PUSH(D->labels, lab);
}

/* `NAME = distribution(variable("labels"))`: a label distribution per sample
 * (rows of a mat source's variable), for given(...) targets. */
static void dist_entry(Lower *L, DataInfo *D, const AstItem *it, const AstExpr *call)
{
    static const ArgSpec spec[] = {{"from", AT_EXPR, 1, 0}};
    const AstExpr *a[1], *fa[LW_MAX_ARGS];
    char w[96];
    snprintf(w, sizeof w, "distribution '%s'", it->name);
    if (lw_bind(L, call, w, spec, 1, a))
        return;
    if (D->source_kind && strcmp(D->source_kind, "mat")) {
        lw_error(L, call->loc, "distribution() reads rows of a .mat variable; data '%s' has a %s source",
                 D->decl->name, D->source_kind);
        return;
    }
    const DataKind *k = dispatch(L, D, a[0], from_kinds + 2, 1, "distribution source", fa);
    const char *field;
    if (!k || lw_get_str(L, fa[0], "name", w, NULL, &field))
        return;
    char *s = dl_pool_alloc(L->pool, strlen(field) + 5);
    sprintf(s, "var:%s", field);
    DataDist dd = {it->name, it->loc, s, 0, -1, 0, 0};
    DL_PUSH(D->dists, dd);
}

/* `NAME = objects()`: a voc source's image classes from the XML annotations,
 * 20 values in VOC order (1 present, 0 only difficult, -1 absent), for
 * multilabel(...) targets. */
static void objects_entry(Lower *L, DataInfo *D, const AstItem *it, const AstExpr *call)
{
    const AstExpr *a[1];
    char w[96];
    snprintf(w, sizeof w, "objects '%s'", it->name);
    if (lw_bind(L, call, w, NULL, 0, a))
        return;
    if (!D->source_kind || strcmp(D->source_kind, "voc")) {
        lw_error(L, call->loc, "objects() reads VOC annotations; data '%s' has a %s source", D->decl->name,
                 D->source_kind ? D->source_kind : "missing");
        return;
    }
    DataDist dd = {it->name, it->loc, "objects:xml", 0, -1, 20, 0};
    DL_PUSH(D->dists, dd);
}

/* `NAME = mask()`: a voc source's SegmentationClass label maps (class index
 * per pixel, 255 void), resized to the input's size by nearest neighbour and
 * augmented with the image, for label_map(...) targets. */
static void mask_entry(Lower *L, DataInfo *D, const AstItem *it, const AstExpr *call)
{
    const AstExpr *a[1];
    char w[96];
    snprintf(w, sizeof w, "mask '%s'", it->name);
    if (lw_bind(L, call, w, NULL, 0, a))
        return;
    if (!D->source_kind || strcmp(D->source_kind, "voc")) {
        lw_error(L, call->loc, "mask() reads VOC label maps; data '%s' has a %s source", D->decl->name,
                 D->source_kind ? D->source_kind : "missing");
        return;
    }
    DataDist dd = {it->name, it->loc, "mask:png", 0, -1, 0, 1};
    DL_PUSH(D->dists, dd);
}

void lw_data(Lower *L, const AstDecl *d)
{
    DataInfo *D = &L->data;
    const char *names[N(data_keys) + 1];
    int seen[N(data_keys)] = {0};
    for (int k = 0; k < N(data_keys); k++)
        names[k] = data_keys[k].name;
    names[N(data_keys)] = "label";
    /* the source first: label extractors are checked against it */
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < d->nitems; i++) {
            const AstItem *it = &d->items[i];
            int is_source = it->name && !strcmp(it->name, "source");
            if (is_source != (pass == 0))
                continue;
            if (!it->name) {
                lw_error(L, it->loc, "'return' outside a block or network");
                continue;
            }
            int k;
            for (k = 0; k < N(data_keys); k++)
                if (!strcmp(data_keys[k].name, it->name))
                    break;
            if (k < N(data_keys)) {
                if (seen[k]++) {
                    lw_error(L, it->loc, "duplicate key '%s' in data '%s'", it->name, d->name);
                    continue;
                }
                data_keys[k].fn(L, D, it);
                continue;
            }
            int is_label = it->value->kind == EX_CALL && !strcmp(it->value->name, "label");
            int is_objects = it->value->kind == EX_CALL && !strcmp(it->value->name, "objects");
            int is_mask = it->value->kind == EX_CALL && !strcmp(it->value->name, "mask");
            int is_dist = is_objects || is_mask ||
                          (it->value->kind == EX_CALL && !strcmp(it->value->name, "distribution"));
            if (is_label || is_dist) {
                int dup = 0;
                for (size_t j = 0; j < D->labels.n; j++)
                    dup |= !strcmp(D->labels.a[j].name, it->name);
                for (size_t j = 0; j < D->dists.n; j++)
                    dup |= !strcmp(D->dists.a[j].name, it->name);
                if (dup)
                    lw_error(L, it->loc, "duplicate label '%s' in data '%s'", it->name, d->name);
                else if (is_label)
                    label_entry(L, D, it, it->value);
                else if (is_objects)
                    objects_entry(L, D, it, it->value);
                else if (is_mask)
                    mask_entry(L, D, it, it->value);
                else
                    dist_entry(L, D, it, it->value);
                continue;
            }
            char ctx[160];
            snprintf(ctx, sizeof ctx, " in data '%s'", d->name);
            lw_unknown(L, it->loc, "key", it->name, names, N(data_keys), ctx);
        }
    D->have_source = seen[0], D->have_split = seen[1], D->have_crop = seen[2];
    D->have_input = seen[3], D->have_augment = seen[4];
    static const char *const need[] = {"source", "split", NULL, "input"};
    for (int k = 0; k < 4; k++)
        if (need[k] && !seen[k])
            lw_error(L, d->name_loc, "data '%s' needs '%s'", d->name, need[k]);
    if (!D->labels.n && !D->dists.n)
        lw_error(L, d->name_loc, "data '%s' declares no label (e.g. age = label(column(\"age\")))", d->name);
}

/* ---- references ---------------------------------------------------------- */

static int label_ref(Lower *L, const AstExpr *e)
{
    if (e->kind != EX_FIELD || e->a->kind != EX_IDENT) {
        lw_error(L, e->loc, "expected a data label such as faces.age, not %s", lw_expr_desc(e));
        return -1;
    }
    const char *base = e->a->name;
    const AstDecl *d = lw_find_decl(L, base);
    if (!d) {
        const char *names[64];
        int n = 0;
        for (int i = 0; i < L->f->ndecls && n < 64; i++)
            if (L->f->decls[i].name)
                names[n++] = L->f->decls[i].name;
        lw_unknown(L, e->a->loc, "name", base, names, n, NULL);
        return -1;
    }
    if (d->kind != AST_DATA) {
        lw_error(L, e->a->loc, "'%s' is a %s, not a data set", base, ast_decl_kind_name(d->kind));
        return -1;
    }
    if (d != L->data.decl)
        return -1; /* a second data declaration: already reported */
    L->data.used = 1;
    if (!strcmp(e->name, "input")) {
        lw_error(L, e->loc, "'%s.input' is the network's input, not a label", base);
        return -1;
    }
    const char *names[64];
    int n = 0;
    for (size_t i = 0; i < L->data.labels.n; i++) {
        if (!strcmp(L->data.labels.a[i].name, e->name)) {
            L->data.labels.a[i].used = 1;
            return (int)i;
        }
        if (n < 64)
            names[n++] = L->data.labels.a[i].name;
    }
    for (size_t i = 0; i < L->data.dists.n; i++)
        if (!strcmp(L->data.dists.a[i].name, e->name)) {
            lw_error(L, e->loc, "'%s.%s' is a distribution, not a label: use it as given(%s.%s, ...)", base, e->name,
                     base, e->name);
            return -1;
        }
    char ctx[160];
    snprintf(ctx, sizeof ctx, " in data '%s'", base);
    lw_unknown(L, e->loc, "label", e->name, names, n, ctx);
    return -1;
}

int lw_label_refs(Lower *L, const AstExpr *e, int *idx, int max)
{
    if (e->kind != EX_LIST) {
        int i = label_ref(L, e);
        if (i < 0)
            return -1;
        idx[0] = i;
        return 1;
    }
    if (e->nargs > max || e->nargs < 1) {
        lw_error(L, e->loc, "expected 1 to %d labels, not %d", max, e->nargs);
        return -1;
    }
    int bad = 0;
    for (int k = 0; k < e->nargs; k++)
        if ((idx[k] = label_ref(L, e->args[k])) < 0)
            bad = 1;
    return bad ? -1 : e->nargs;
}

/* ---- the binding --------------------------------------------------------- */

void lw_data_binding(Lower *L, DlPlan *meta)
{
    DataInfo *D = &L->data;
    if (!D->decl)
        return;
    KVVec out = {0};
    static const char *const order[] = {"source", "split", "input", "crop"};
    if (!D->have_crop)
        lw_kv(L, &D->kv, "crop", "none");
    for (int o = 0; o < 4; o++) { /* "source", then "source.*" in the order they were set */
        size_t n = strlen(order[o]);
        for (size_t i = 0; i < D->kv.n; i++)
            if (!strcmp(D->kv.a[i].key, order[o]))
                DL_PUSH(out, D->kv.a[i]);
        for (size_t i = 0; i < D->kv.n; i++)
            if (!strncmp(D->kv.a[i].key, order[o], n) && D->kv.a[i].key[n] == '.')
                DL_PUSH(out, D->kv.a[i]);
    }
    /* every label a target, loss or metric reads becomes a column, in declaration order */
    for (size_t t = 0; t < L->targets.n; t++)
        for (int a = 0; a < L->targets.a[t].naxes && L->targets.a[t].ok; a++) {
            if (L->targets.a[t].label[a] >= 0)
                D->labels.a[L->targets.a[t].label[a]].used = 1;
            if (L->targets.a[t].sigma_label[a] >= 0)
                D->labels.a[L->targets.a[t].sigma_label[a]].used = 1;
        }
    int ncol = 0;
    for (size_t i = 0; i < D->labels.n; i++)
        D->labels.a[i].col = D->labels.a[i].used ? ncol++ : -1;
    lw_kv(L, &out, "label.count", "%d", ncol);
    for (size_t i = 0; i < D->labels.n; i++) {
        const DataLabel *lab = &D->labels.a[i];
        if (lab->col < 0) {
            if (!L->ref_errors) /* after a bad reference, usually its echo */
                lw_warn(L, lab->loc, "label '%s' of data '%s' is never used; it is left out", lab->name, D->decl->name);
            continue;
        }
        char k[48];
        snprintf(k, sizeof k, "label.%d", lab->col);
        lw_kv(L, &out, k, "%s", lab->name);
        snprintf(k, sizeof k, "label.%d.from", lab->col);
        lw_kv(L, &out, k, "%s", lab->from);
        snprintf(k, sizeof k, "label.%d.unit", lab->col);
        lw_kv(L, &out, k, "%s", lab->unit);
    }
    meta->nlabels = ncol;
    int ndist = 0;
    for (size_t i = 0; i < D->dists.n; i++)
        D->dists.a[i].index = D->dists.a[i].used ? ndist++ : -1;
    if (D->dists.n)
        lw_kv(L, &out, "dist.count", "%d", ndist);
    for (size_t i = 0; i < D->dists.n; i++) {
        const DataDist *dd = &D->dists.a[i];
        if (dd->index < 0) {
            if (!L->ref_errors)
                lw_warn(L, dd->loc, "distribution '%s' of data '%s' is never used; it is left out", dd->name, D->decl->name);
            continue;
        }
        char k[48];
        snprintf(k, sizeof k, "dist.%d", dd->index);
        lw_kv(L, &out, k, "%s", dd->name);
        snprintf(k, sizeof k, "dist.%d.from", dd->index);
        lw_kv(L, &out, k, "%s", dd->from);
    }
    lw_kv(L, &out, "augment.hflip", "%d", D->hflip);
    if (D->crop_pad)
        lw_kv(L, &out, "augment.random_crop.pad", "%d", D->crop_pad);
    if (D->scale_min > 0) {
        lw_kv(L, &out, "augment.random_scale.min", "%.9g", D->scale_min);
        lw_kv(L, &out, "augment.random_scale.max", "%.9g", D->scale_max);
    }
    if (D->hflip && D->negate) {
        /* negate = [yaw] (a label of this data) or [heads.yaw]: label columns */
        const AstExpr *one[1] = {D->negate}, *const *el = D->negate->kind == EX_LIST ? (const AstExpr *const *)D->negate->args : one;
        int n = D->negate->kind == EX_LIST ? D->negate->nargs : 1;
        DlBuf b = {0};
        for (int i = 0; i < n; i++) {
            int li = -1;
            if (el[i]->kind == EX_IDENT) {
                const char *names[64];
                int nn = 0;
                for (size_t j = 0; j < D->labels.n; j++) {
                    if (!strcmp(D->labels.a[j].name, el[i]->name))
                        li = (int)j;
                    if (nn < 64)
                        names[nn++] = D->labels.a[j].name;
                }
                if (li < 0) {
                    char ctx[160];
                    snprintf(ctx, sizeof ctx, " in data '%s'", D->decl->name);
                    lw_unknown(L, el[i]->loc, "label", el[i]->name, names, nn, ctx);
                }
            } else
                li = label_ref(L, el[i]);
            if (li < 0)
                continue;
            int col = D->labels.a[li].col;
            if (col < 0 && !L->ref_errors)
                lw_warn(L, el[i]->loc, "label '%s' is never used: negating it has no effect", D->labels.a[li].name);
            else
                dl_buf_printf(&b, "%s%d", b.n ? "," : "", col);
        }
        if (b.n)
            lw_kv(L, &out, "augment.hflip.negate", "%s", b.s);
        dl_buf_free(&b);
    }
    meta->data = out.n ? dl_pool_alloc(L->pool, out.n * sizeof(DlKV)) : NULL;
    if (out.n)
        memcpy(meta->data, out.a, out.n * sizeof(DlKV));
    meta->ndata = (int)out.n;
    DL_VEC_FREE(out);
}
