/* lower_target.c - `target NAME = kind(...)` declarations (the table of target
 * kinds: gaussian1d, gaussian2d, onehot, given), the one-hot targets that
 * ce() terms imply, target references, and the plan's metadata (targets,
 * heads, metrics) once the network has given every head its width.
 * Label distributions: Gao et al., IEEE TIP 2017, Sec. III; given
 * distributions: Geng, IEEE TKDE 2016. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_int.h"

#define N(t) ((int)(sizeof t / sizeof *t))

int lw_target_ref(Lower *L, const AstExpr *e)
{
    if (e->kind == EX_IDENT)
        for (size_t i = 0; i < L->targets.n; i++)
            if (L->targets.a[i].decl && !strcmp(L->targets.a[i].name, e->name)) {
                L->targets.a[i].used = 1;
                return L->targets.a[i].ok ? (int)i : -1;
            }
    if (e->kind == EX_IDENT) {
        const char *names[64];
        int n = 0;
        for (size_t i = 0; i < L->targets.n && n < 64; i++)
            if (L->targets.a[i].decl)
                names[n++] = L->targets.a[i].name;
        lw_unknown(L, e->loc, "target", e->name, names, n, NULL);
    } else
        lw_error(L, e->loc, "expected a target name, not %s", lw_expr_desc(e));
    return -1;
}

int lw_class_target(Lower *L, int head, int label, int has_ignore, double ignore, DlSrcLoc loc)
{
    for (size_t i = 0; i < L->targets.n; i++) {
        const TargetInfo *t = &L->targets.a[i];
        if (t->class_head == head && t->label[0] == label && t->has_ignore == has_ignore &&
            (!has_ignore || t->ignore == (float)ignore))
            return (int)i;
    }
    TargetInfo t = {0};
    const DataLabel *lab = &L->data.labels.a[label];
    char *nm = dl_pool_alloc(L->pool, strlen(lab->name) + 16);
    sprintf(nm, "%s.onehot", lab->name);
    t.name = nm;
    t.loc = loc;
    t.kind = DL_TGT_ONEHOT;
    t.ok = t.used = 1;
    t.naxes = 1;
    t.label[0] = label;
    t.sigma_label[0] = -1;
    t.dist = -1;
    t.has_ignore = has_ignore;
    t.ignore = (float)ignore;
    t.class_head = head; /* bins: 0..K-1 of the head, once the network is lowered */
    DL_PUSH(L->targets, t);
    return (int)L->targets.n - 1;
}

/* ---- targets ------------------------------------------------------------- */

/* bins = lo..hi [step s] | [v, ...]: ascending label values. */
static int parse_bins(Lower *L, const AstExpr *e, TargetInfo *t, int axis)
{
    double v[3];
    int n = 0;
    float *b = NULL;
    if (e->kind == EX_RANGE) {
        if (lw_const(L, e->a, "bins", "range", &v[0]) || lw_const(L, e->b, "bins", "range", &v[1]))
            return -1;
        v[2] = 1;
        if (e->c && lw_const(L, e->c, "step", "range", &v[2]))
            return -1;
        if (!(v[2] > 0) || v[1] < v[0]) {
            lw_error(L, e->loc, "bins range %g..%g step %g is empty", v[0], v[1], v[2]);
            return -1;
        }
        double cnt = floor((v[1] - v[0]) / v[2] + 1e-9) + 1;
        if (cnt > 1e6) {
            lw_error(L, e->loc, "bins range has %.0f bins (at most 1000000)", cnt);
            return -1;
        }
        n = (int)cnt;
        b = dl_pool_alloc(L->pool, (size_t)n * sizeof *b);
        for (int i = 0; i < n; i++)
            b[i] = (float)(v[0] + i * v[2]);
    } else if (e->kind == EX_LIST && e->nargs > 0) {
        n = e->nargs;
        b = dl_pool_alloc(L->pool, (size_t)n * sizeof *b);
        for (int i = 0; i < n; i++) {
            if (lw_const(L, e->args[i], "bins", dl_target_kind_name[t->kind], &v[0]))
                return -1;
            b[i] = (float)v[0];
            if (i && !(b[i] > b[i - 1])) {
                lw_error(L, e->args[i]->loc, "bins must be ascending: %g follows %g", b[i], b[i - 1]);
                return -1;
            }
        }
    } else {
        lw_error(L, e->loc, "bins must be a range lo..hi [step s] or a list of numbers, not %s",
                 lw_expr_desc(e));
        return -1;
    }
    t->nbins[axis] = n;
    t->bins[axis] = b;
    return 0;
}

/* sigma = s (label units) or a data label holding each sample's sigma
 * (ChaLearn's apparent-age standard deviation). */
static int parse_sigma(Lower *L, const AstExpr *e, TargetInfo *t, int axis, const char *what)
{
    double s;
    if (e->kind == EX_FIELD) {
        int lab;
        if (lw_label_refs(L, e, &lab, 1) != 1)
            return -1;
        t->sigma_label[axis] = lab;
        t->sigma[axis] = 0;
        return 0;
    }
    if (lw_const(L, e, "sigma", what, &s))
        return -1;
    if (!(s > 0)) {
        lw_error(L, e->loc, "'sigma' of %s must be > 0, not %g", what, s);
        return -1;
    }
    t->sigma[axis] = (float)s;
    return 0;
}

/* clamp = true: a label outside the bins' range is moved to the nearest end
 * instead of making its sample bad (runtime/target.c). */
static int parse_clamp(Lower *L, const AstExpr *e, TargetInfo *t)
{
    return lw_get_bool(L, e, "clamp", dl_target_kind_name[t->kind], 0, &t->clamp);
}

static int tgt_gaussian1d(Lower *L, TargetInfo *t, const AstExpr *c, const AstExpr **a)
{
    t->naxes = 1;
    if (parse_clamp(L, a[3], t))
        return -1;
    if (lw_label_refs(L, a[0], t->label, 1) != 1)
        return -1;
    return parse_bins(L, a[1], t, 0) | parse_sigma(L, a[2], t, 0, dl_target_kind_name[t->kind]);
}
static int tgt_gaussian2d(Lower *L, TargetInfo *t, const AstExpr *c, const AstExpr **a)
{
    t->naxes = 2;
    if (parse_clamp(L, a[4], t))
        return -1;
    if (lw_label_refs(L, a[0], &t->label[0], 1) != 1 || lw_label_refs(L, a[1], &t->label[1], 1) != 1)
        return -1;
    if (t->label[0] == t->label[1]) {
        lw_error(L, a[1]->loc, "gaussian2d needs two different labels");
        return -1;
    }
    if (a[2]->kind != EX_LIST || a[2]->nargs != 2) {
        lw_error(L, a[2]->loc, "'bins' of gaussian2d must be [first axis bins, second axis bins]");
        return -1;
    }
    if (parse_bins(L, a[2]->args[0], t, 0) || parse_bins(L, a[2]->args[1], t, 1))
        return -1;
    if (a[3]->kind == EX_LIST) {
        if (a[3]->nargs != 2) {
            lw_error(L, a[3]->loc, "'sigma' of gaussian2d must be a number or [s1, s2]");
            return -1;
        }
        return parse_sigma(L, a[3]->args[0], t, 0, dl_target_kind_name[t->kind]) | parse_sigma(L, a[3]->args[1], t, 1, dl_target_kind_name[t->kind]);
    }
    if (parse_sigma(L, a[3], t, 0, dl_target_kind_name[t->kind]))
        return -1;
    t->sigma[1] = t->sigma[0];
    return 0;
}
/* t->dist from e, a field of the data (DATA.NAME of a distribution() or
 * objects() entry).  what: "a distribution" / "the objects"; example: the
 * call's usage with %s for the data's name; declare: how to declare one. */
static int field_ref(Lower *L, TargetInfo *t, const AstExpr *e, const char *what, const char *example,
                     const char *noun, const char *declare)
{
    const DataInfo *D = &L->data;
    t->naxes = 1;
    t->label[0] = -1;
    if (e->kind != EX_FIELD || e->a->kind != EX_IDENT || !D->decl || strcmp(e->a->name, D->decl->name)) {
        char ex[160];
        snprintf(ex, sizeof ex, example, D->decl ? D->decl->name : "data");
        lw_error(L, e->loc, "%s() takes %s of the data, e.g. %s", dl_target_kind_name[t->kind], what, ex);
        return -1;
    }
    for (size_t i = 0; i < D->dists.n; i++)
        if (!strcmp(D->dists.a[i].name, e->name)) {
            t->dist = (int)i;
            L->data.dists.a[i].used = 1;
        }
    if (t->dist < 0) {
        const char *names[64];
        int n = 0;
        for (size_t i = 0; i < D->dists.n && n < 64; i++)
            names[n++] = D->dists.a[i].name;
        char ctx[200];
        snprintf(ctx, sizeof ctx, " in data '%s' (declare one with %s)", D->decl->name, declare);
        lw_unknown(L, e->loc, noun, e->name, names, n, ctx);
        return -1;
    }
    return 0;
}

/* given(data.dist, bins = lo..hi | [..] | K): the data's own distribution
 * per sample; bins are the label values of its columns (default 0..K-1). */
static int tgt_given(Lower *L, TargetInfo *t, const AstExpr *c, const AstExpr **a)
{
    if (field_ref(L, t, a[0], "a distribution", "given(%s.dist, bins = 6)", "distribution",
                  "NAME = distribution(variable(\"labels\"))"))
        return -1;
    if (L->data.dists.a[t->dist].width || L->data.dists.a[t->dist].map) {
        lw_error(L, a[0]->loc, "given() reads a distribution; '%s' holds %s: use %s(%s.%s)", a[0]->name,
                 L->data.dists.a[t->dist].map ? "label maps" : "objects",
                 L->data.dists.a[t->dist].map ? "label_map" : "multilabel", L->data.decl->name, a[0]->name);
        return -1;
    }
    if (a[1]->kind == EX_RANGE || a[1]->kind == EX_LIST)
        return parse_bins(L, a[1], t, 0);
    int K;
    if (lw_get_int(L, a[1], "bins", "given", 0, &K))
        return -1;
    if (K < 1 || K > 1000000) {
        lw_error(L, a[1]->loc, "'bins' of given must be a count in 1..1000000, a range or a list, not %d", K);
        return -1;
    }
    t->nbins[0] = K;
    t->bins[0] = dl_pool_alloc(L->pool, (size_t)K * sizeof(float));
    for (int k = 0; k < K; k++)
        t->bins[0][k] = (float)k;
    return 0;
}

static int tgt_onehot(Lower *L, TargetInfo *t, const AstExpr *c, const AstExpr **a)
{
    t->naxes = 1;
    if (parse_clamp(L, a[2], t))
        return -1;
    if (lw_label_refs(L, a[0], t->label, 1) != 1)
        return -1;
    t->sigma[0] = 0;
    return parse_bins(L, a[1], t, 0);
}

/* multilabel(data.objects, difficult = 0.5): DLDL's multi-label target (Gao
 * et al., TIP 2017, Sec. IV-C): mass 1 on each class present in the image, a
 * smaller weight on one present only as 'difficult' objects, normalised. */
static int tgt_multilabel(Lower *L, TargetInfo *t, const AstExpr *c, const AstExpr **a)
{
    if (field_ref(L, t, a[0], "the objects", "multilabel(%s.objects, difficult = 0.5)", "field",
                  "NAME = objects() in a voc data block"))
        return -1;
    int K = L->data.dists.a[t->dist].width;
    if (L->data.dists.a[t->dist].map) {
        lw_error(L, a[0]->loc, "multilabel() reads an image's objects; '%s' holds label maps: use label_map(%s.%s, "
                 "classes = 21, sigma = ...)", a[0]->name, L->data.decl->name, a[0]->name);
        return -1;
    }
    if (!K) {
        lw_error(L, a[0]->loc, "multilabel() reads an image's objects (NAME = objects() of a voc source); '%s' is a "
                 "distribution: use given(%s.%s, bins = ...)", a[0]->name, L->data.decl->name, a[0]->name);
        return -1;
    }
    double w;
    if (lw_get_num(L, a[1], "difficult", "multilabel", 0.5, &w))
        return -1;
    if (!(w >= 0 && w <= 1)) {
        lw_error(L, a[1]->loc, "'difficult' of multilabel is a weight in [0, 1], not %g", w);
        return -1;
    }
    t->difficult = (float)w;
    t->nbins[0] = K;
    t->bins[0] = dl_pool_alloc(L->pool, (size_t)K * sizeof(float));
    for (int k = 0; k < K; k++)
        t->bins[0][k] = (float)k;
    return 0;
}

/* label_map(data.mask, classes = 21, sigma = 1): per pixel of the sample's
 * (augmented) label map, a Gaussian-weighted vote of the neighbouring pixels'
 * classes, one-hot inside regions and soft near their boundaries (Gao et al.,
 * TIP 2017, Sec. IV-D); void pixels (255) get no row mass and so no loss.
 * sigma in pixels; 0 gives the one-hot (cross-entropy) target. */
static int tgt_label_map(Lower *L, TargetInfo *t, const AstExpr *c, const AstExpr **a)
{
    if (field_ref(L, t, a[0], "a label map", "label_map(%s.mask, classes = 21, sigma = 1)", "field",
                  "NAME = mask() in a voc data block"))
        return -1;
    if (!L->data.dists.a[t->dist].map) {
        lw_error(L, a[0]->loc, "label_map() reads per-pixel class maps (NAME = mask() of a voc source); '%s' is not "
                 "one", a[0]->name);
        return -1;
    }
    const DataInfo *D = &L->data;
    if (D->features || !D->input_ok || D->H < 1 || D->W < 1) {
        lw_error(L, c->loc, "label_map() needs an image input (input = image(...)) to give the map its size");
        return -1;
    }
    int K;
    double sigma;
    if (lw_get_int(L, a[1], "classes", "label_map", 0, &K) || lw_get_num(L, a[2], "sigma", "label_map", 1, &sigma))
        return -1;
    if (K < 2 || K > 255) {
        lw_error(L, a[1]->loc, "'classes' of label_map must be 2..255 (255 marks void pixels), not %d", K);
        return -1;
    }
    if (!(sigma >= 0 && sigma <= 64)) {
        lw_error(L, a[2]->loc, "'sigma' of label_map must be 0..64 pixels, not %g", sigma);
        return -1;
    }
    t->sigma[0] = (float)sigma;
    t->nbins[0] = K;
    t->bins[0] = dl_pool_alloc(L->pool, (size_t)K * sizeof(float));
    for (int k = 0; k < K; k++)
        t->bins[0][k] = (float)k;
    t->map_h = D->H, t->map_w = D->W;
    return 0;
}

static const struct TargetKind {
    const char *name;
    int (*fn)(Lower *L, TargetInfo *t, const AstExpr *call, const AstExpr **a);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} target_kinds[] = {
    {"gaussian1d", tgt_gaussian1d,
     {{"label", AT_EXPR, 1, 0}, {"bins", AT_EXPR, 1, 0}, {"sigma", AT_EXPR, 1, 0}, {"clamp", AT_BOOL, 0, 0}}, 4},
    {"gaussian2d", tgt_gaussian2d,
     {{"label1", AT_EXPR, 1, 0}, {"label2", AT_EXPR, 1, 0}, {"bins", AT_EXPR, 1, 0}, {"sigma", AT_EXPR, 1, 0},
      {"clamp", AT_BOOL, 0, 0}}, 5},
    {"onehot", tgt_onehot, {{"label", AT_EXPR, 1, 0}, {"bins", AT_EXPR, 1, 0}, {"clamp", AT_BOOL, 0, 0}}, 3},
    {"given", tgt_given, {{"distribution", AT_EXPR, 1, 0}, {"bins", AT_EXPR, 1, 0}}, 2},
    {"multilabel", tgt_multilabel, {{"objects", AT_EXPR, 1, 0}, {"difficult", AT_NUM, 0, 0.5}}, 2},
    {"label_map", tgt_label_map, {{"mask", AT_EXPR, 1, 0}, {"classes", AT_INT, 1, 0}, {"sigma", AT_NUM, 0, 1}}, 3},
};

void lw_target(Lower *L, const AstDecl *d)
{
    TargetInfo *t = NULL;
    for (size_t i = 0; i < L->targets.n; i++)
        if (L->targets.a[i].decl == d)
            t = &L->targets.a[i];
    const AstExpr *e = d->nitems ? d->items[0].value : NULL;
    if (!t || !e)
        return;
    if (e->kind != EX_CALL) {
        lw_error(L, e->loc, "a target must be a call such as gaussian1d(...), not %s", lw_expr_desc(e));
        return;
    }
    const char *names[N(target_kinds)];
    for (int k = 0; k < N(target_kinds); k++)
        names[k] = target_kinds[k].name;
    for (int k = 0; k < N(target_kinds); k++)
        if (!strcmp(target_kinds[k].name, e->name)) {
            const AstExpr *a[LW_MAX_ARGS];
            char w[96];
            snprintf(w, sizeof w, "target '%s'", e->name);
            t->kind = dl_enum_lookup(dl_target_kind_name, DL_TGT_COUNT, target_kinds[k].name);
            t->loc = d->name_loc;
            t->dist = -1;
            t->class_head = -1;
            for (int x = 0; x < DL_MAX_AXES; x++)
                t->label[x] = t->sigma_label[x] = -1;
            if (lw_bind(L, e, w, target_kinds[k].spec, target_kinds[k].nspec, a) ||
                target_kinds[k].fn(L, t, e, a))
                return;
            t->K = 1;
            for (int x = 0; x < t->naxes; x++)
                t->K *= t->nbins[x];
            if (t->K > 1000000) {
                lw_error(L, e->loc, "target '%s' has %lld bins (at most 1000000)", d->name, (long long)t->K);
                return;
            }
            t->ok = 1;
            return;
        }
    lw_unknown(L, e->loc, "target kind", e->name, names, N(target_kinds), NULL);
}

/* ---- the plan's metadata ------------------------------------------------- */

static int col_of(const Lower *L, int label) { return label < 0 ? -1 : L->data.labels.a[label].col; }

void lw_plan_meta(Lower *L, DlPlan *meta)
{
    const DataInfo *D = &L->data;
    meta->ntargets = (int)L->targets.n;
    meta->targets = dl_pool_alloc(L->pool, (L->targets.n + 1) * sizeof *meta->targets);
    for (size_t i = 0; i < L->targets.n; i++) {
        const TargetInfo *t = &L->targets.a[i];
        DlPlanTarget *pt = &meta->targets[i];
        memset(pt, 0, sizeof *pt);
        pt->name = dl_pool_strdup(L->pool, t->name);
        pt->kind = t->kind;
        pt->naxes = t->naxes;
        pt->dist = t->dist >= 0 ? D->dists.a[t->dist].index : -1;
        pt->has_ignore = t->has_ignore;
        pt->ignore = t->ignore;
        pt->clamp = t->clamp;
        pt->difficult = t->difficult;
        pt->map_h = t->map_h, pt->map_w = t->map_w;
        for (int a = 0; a < t->naxes; a++) {
            const DataLabel *lab = t->label[a] >= 0 ? &D->labels.a[t->label[a]] : NULL;
            pt->axes[a].name = dl_pool_strdup(L->pool, lab ? lab->name : t->name);
            pt->axes[a].unit = dl_pool_strdup(L->pool, lab ? lab->unit : "");
            pt->axes[a].nbins = t->nbins[a];
            pt->axes[a].bins = t->bins[a];
            pt->axes[a].sigma = t->sigma[a];
            pt->axes[a].label = col_of(L, t->label[a]);
            pt->axes[a].sigma_label = col_of(L, t->sigma_label[a]);
        }
    }
    meta->nheads = (int)L->heads.n;
    meta->heads = dl_pool_alloc(L->pool, (L->heads.n + 1) * sizeof *meta->heads);
    for (size_t i = 0; i < L->heads.n; i++)
        meta->heads[i] = (DlPlanHead){dl_pool_strdup(L->pool, L->heads.a[i].name), L->heads.a[i].K,
                                      L->heads.a[i].rows > 0 ? L->heads.a[i].rows : 1};
    meta->nmetrics = (int)L->metrics_out.n;
    meta->metrics = dl_pool_alloc(L->pool, (L->metrics_out.n + 1) * sizeof *meta->metrics);
    for (size_t i = 0; i < L->metrics_out.n; i++) {
        DlPlanMetric m = L->metrics_out.a[i].m;
        for (int k = 0; k < m.ncols; k++)
            m.cols[k] = col_of(L, m.cols[k]);
        m.sigma_col = col_of(L, m.sigma_col);
        meta->metrics[i] = m;
    }
}
