/* lower_loss.c - `loss = ...` and `metrics { ... }`: the tables of loss terms
 * and metrics, their checks against the declarations, and the loss's graph.
 *
 * A network has one or more heads (lower_net.c); every term and metric names
 * the head it reads (`net` for a one-head network, else `net.head`) and the
 * target whose bins it shares.
 *
 * loss = [w *] term + [w *] term ...     (w a number; term a loss call)
 *   kl(target, head)      KL(y || p) per sample, from log-softmax, mean over
 *                         the batch (PyTorch kl_div reduction 'batchmean');
 *                         Gao et al., IEEE TIP 2017, Eq. (7)
 *   l1(expectation(head, target), labels)
 *                         sum over axes of |E_p[l] - label|, mean over the
 *                         batch; DLDL-v2 (Gao et al., IJCAI 2018), Eq. (8)
 *   ce(head, class, ignore = v)
 *                         cross-entropy -log p[class] on a class label (bins
 *                         0..K-1 of the head), mean over the batch; lowered
 *                         as KL to a one-hot target, which equals it exactly
 *                         (the one-hot row has zero entropy) and shares the
 *                         fused softmax tail.  A sample whose class equals
 *                         `ignore` gets an all-zero row: no loss, no gradient
 *                         (it still counts in the batch mean).
 *                         Yang, She, Sun, IJCAI 2017, Eq. (3) with Eq. (5).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_int.h"

/* expectation(head, target): the DLDL-v2 read-out.  *h, *t set; 0 or -1. */
static int expectation_ref(Lower *L, const AstExpr *e, const char *user, int *h, int *t)
{
    static const ArgSpec spec[] = {{"network", AT_EXPR, 1, 0}, {"target", AT_EXPR, 1, 0}};
    const AstExpr *a[2];
    if (e->kind != EX_CALL || strcmp(e->name, "expectation")) {
        lw_error(L, e->loc, "%s compares expectation(network, target) with labels; got %s", user, lw_expr_desc(e));
        return -1;
    }
    if (lw_bind(L, e, "expectation", spec, 2, a))
        return -1;
    *h = lw_head_ref(L, a[0]);
    *t = lw_target_ref(L, a[1]);
    return *h < 0 || *t < 0 ? -1 : 0;
}

/* labels compared with the expectation over target t: one per axis.  When
 * the target's axes read labels, they must be those, in order. */
static int axis_labels(Lower *L, const AstExpr *e, const char *user, int t, int *cols)
{
    int n = lw_label_refs(L, e, cols, DL_MAX_AXES);
    if (n < 0)
        return -1;
    const TargetInfo *ti = &L->targets.a[t];
    int ok = n == ti->naxes;
    for (int a = 0; ok && a < n; a++)
        ok = ti->label[a] < 0 || cols[a] == ti->label[a];
    if (!ok) {
        DlBuf b = {0};
        for (int a = 0; a < ti->naxes; a++)
            if (ti->label[a] >= 0)
                dl_buf_printf(&b, "%s%s.%s", a ? ", " : "", L->data.decl->name, L->data.labels.a[ti->label[a]].name);
        if (ti->label[0] >= 0)
            lw_error(L, e->loc, "%s needs the labels of target '%s' in its axis order: %s%s%s", user, ti->name,
                     ti->naxes > 1 ? "[" : "", b.s, ti->naxes > 1 ? "]" : "");
        else
            lw_error(L, e->loc, "%s needs %d label%s for target '%s', one per axis, not %d", user, ti->naxes,
                     ti->naxes > 1 ? "s" : "", ti->name, n);
        dl_buf_free(&b);
        return -1;
    }
    return n;
}

/* ---- loss terms ---------------------------------------------------------- */

static int loss_kl(Lower *L, const AstExpr *c, const AstExpr **a, LossTerm *t)
{
    if (a[0]->kind == EX_IDENT && L->net && !strcmp(a[0]->name, L->net->name)) {
        lw_error(L, a[0]->loc, "kl takes (target, network): the arguments are swapped");
        return -1;
    }
    t->target = lw_target_ref(L, a[0]);
    t->head = lw_head_ref(L, a[1]);
    return t->target < 0 || t->head < 0 ? -1 : 0;
}

static int loss_l1(Lower *L, const AstExpr *c, const AstExpr **a, LossTerm *t)
{
    if (expectation_ref(L, a[0], "l1", &t->head, &t->target))
        return -1;
    t->ncols = axis_labels(L, a[1], "l1", t->target, t->cols);
    return t->ncols < 0 ? -1 : 0;
}

static int loss_ce(Lower *L, const AstExpr *c, const AstExpr **a, LossTerm *t)
{
    int lab;
    t->head = lw_head_ref(L, a[0]);
    int n = lw_label_refs(L, a[1], &lab, 1);
    double ign = 0;
    if (t->head < 0 || n < 0 || lw_get_num(L, a[2], "ignore", "ce", 0, &ign))
        return -1;
    t->target = lw_class_target(L, t->head, lab, a[2] != NULL, ign, c->loc);
    return 0;
}

static const struct LossKindRow {
    const char *name;
    LossKind kind;
    int (*fn)(Lower *L, const AstExpr *call, const AstExpr **a, LossTerm *t);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} loss_kinds[] = {
    {"kl", LOSS_KL, loss_kl, {{"target", AT_EXPR, 1, 0}, {"network", AT_EXPR, 1, 0}}, 2},
    {"l1", LOSS_L1, loss_l1, {{"prediction", AT_EXPR, 1, 0}, {"labels", AT_EXPR, 1, 0}}, 2},
    {"ce", LOSS_KL, loss_ce, {{"network", AT_EXPR, 1, 0}, {"class", AT_EXPR, 1, 0}, {"ignore", AT_NUM, 0, 0}}, 3},
};
#define NLOSS ((int)(sizeof loss_kinds / sizeof *loss_kinds))
_Static_assert(NLOSS <= (int)(sizeof ((Lower *)0)->loss_kind_count / sizeof(int)), "Lower.loss_kind_count: one per row");

static void loss_term(Lower *L, const AstExpr *e)
{
    double w = 1;
    int weighted = 0;
    if (L->loss_nterms++ == LW_MAX_LOSS_TERMS) /* each term is an output of the plan (its value per batch) */
        lw_error(L, e->loc, "the loss has more than %d terms", LW_MAX_LOSS_TERMS);
    if (L->loss_nterms > LW_MAX_LOSS_TERMS)
        return;
    if (e->kind == EX_BINOP && e->op == '*') {
        const AstExpr *num = e->a->kind == EX_CALL ? e->b : e->a;
        const AstExpr *call = e->a->kind == EX_CALL ? e->a : e->b;
        if (lw_const(L, num, "weight", "a loss term", &w))
            return;
        if (!(w >= 0)) {
            lw_error(L, num->loc, "a loss weight must be >= 0, not %g", w);
            return;
        }
        weighted = 1;
        e = call;
    }
    if (e->kind != EX_CALL) {
        lw_error(L, e->loc, "a loss is a sum of terms such as kl(target, network) or 0.5 * l1(...); got %s",
                 lw_expr_desc(e));
        return;
    }
    const char *names[NLOSS];
    for (int k = 0; k < NLOSS; k++)
        names[k] = loss_kinds[k].name;
    for (int k = 0; k < NLOSS; k++)
        if (!strcmp(e->name, loss_kinds[k].name)) {
            const AstExpr *a[LW_MAX_ARGS];
            char what[64];
            snprintf(what, sizeof what, "loss '%s'", e->name);
            LossTerm t = {loss_kinds[k].kind, loss_kinds[k].name, w, weighted, e->loc, -1, -1, 0, {0}};
            if (lw_bind(L, e, what, loss_kinds[k].spec, loss_kinds[k].nspec, a) || loss_kinds[k].fn(L, e, a, &t))
                return;
            int same = L->loss_kind_count[k]++; /* the earlier terms of this kind: kl, kl_2, kl_3 ... */
            if (same) {
                char *s = dl_pool_alloc(L->pool, strlen(t.name) + 16);
                sprintf(s, "%s_%d", t.name, same + 1);
                t.name = s;
            }
            DL_PUSH(L->terms, t);
            return;
        }
    lw_unknown(L, e->loc, "loss", e->name, names, NLOSS, NULL);
}

/* t0 + t1 + ... + tn: the chain of left operands in a loop (a loss of
 * 50,000 terms is one chain), a parenthesised sum as a term by recursion
 * (at most DL_AST_MAX_DEPTH deep). */
static void loss_sum(Lower *L, const AstExpr *e)
{
    DL_VEC(const AstExpr *) plus = {0};
    for (; e->kind == EX_BINOP && e->op == '+'; e = e->a)
        DL_PUSH(plus, e);
    for (size_t i = plus.n + 1; i-- > 0;) {
        const AstExpr *t = i == plus.n ? e : plus.a[i]->b;
        if (t->kind == EX_BINOP && t->op == '+')
            loss_sum(L, t);
        else if (t->kind == EX_BINOP && t->op != '*')
            lw_error(L, t->loc, "loss terms combine with '+' and a weight 'w * term', not '%c'", t->op);
        else
            loss_term(L, t);
    }
    free(plus.a);
}

void lw_loss(Lower *L, const AstDecl *d)
{
    if (d->nitems && d->items[0].value)
        loss_sum(L, d->items[0].value);
}

/* ---- metrics ------------------------------------------------------------- */

/* mae(expectation(head, target), labels) and eps_error(..., sigma = s | data.sd) */
static int metric_expect(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    if (expectation_ref(L, a[0], m->name, &m->head, &m->target))
        return -1;
    m->ncols = axis_labels(L, a[1], dl_metric_kind_name[m->kind], m->target, m->cols);
    return m->ncols < 0 ? -1 : 0;
}

static int metric_mae(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    return metric_expect(L, c, a, m);
}

static int metric_eps_error(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    if (metric_expect(L, c, a, m))
        return -1;
    if (m->ncols != 1) {
        lw_error(L, a[1]->loc, "eps_error compares one label (a 1-D target), not %d", m->ncols);
        return -1;
    }
    const AstExpr *s = a[2];
    if (s->kind == EX_FIELD) {
        int col;
        if (lw_label_refs(L, s, &col, 1) < 0)
            return -1;
        m->sigma_col = col;
        return 0;
    }
    double sig;
    if (lw_const(L, s, "sigma", "eps_error", &sig))
        return -1;
    if (!(sig > 0)) {
        lw_error(L, s->loc, "'sigma' of eps_error must be > 0 (label units), not %g", sig);
        return -1;
    }
    m->sigma = (float)sig;
    return 0;
}

static int metric_accuracy(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    m->head = lw_head_ref(L, a[0]);
    m->target = lw_target_ref(L, a[1]);
    double tol;
    if (m->head < 0 || m->target < 0 || lw_get_num(L, a[2], "tolerance", "accuracy", 0, &tol))
        return -1;
    if (L->targets.a[m->target].label[0] < 0) {
        lw_error(L, a[1]->loc, "accuracy compares arg-max bins with the labels of its target, and target '%s' "
                 "reads none; use top1(network, class) for a class label", L->targets.a[m->target].name);
        return -1;
    }
    if (!(tol >= 0)) {
        lw_error(L, a[2]->loc, "'tolerance' of accuracy must be >= 0 (label units), not %g", tol);
        return -1;
    }
    m->tolerance = (float)tol;
    return 0;
}

static int metric_top1(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    m->head = lw_head_ref(L, a[0]);
    int n = lw_label_refs(L, a[1], m->cols, 1);
    if (m->head < 0 || n < 0)
        return -1;
    m->ncols = 1;
    return 0;
}

/* chebyshev(head, target) ... intersection(head, target): Geng, TKDE 2016 */
static int metric_ldl(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    m->head = lw_head_ref(L, a[0]);
    m->target = lw_target_ref(L, a[1]);
    return m->head < 0 || m->target < 0 ? -1 : 0;
}

/* mean_ap(network, target): VOC average precision of the head's class
 * probabilities against a multilabel target's objects */
static int metric_map(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    if (metric_ldl(L, c, a, m))
        return -1;
    const TargetInfo *t = &L->targets.a[m->target];
    if (t->kind != DL_TGT_MULTILABEL) {
        lw_error(L, a[1]->loc, "mean_ap scores an image's classes: '%s' is a %s target, not multilabel(...)", t->name,
                 dl_target_kind_name[t->kind]);
        return -1;
    }
    return 0;
}

/* miou(network, target), pixel_accuracy(network, target): a per-pixel head
 * against a label_map target's label maps */
static int metric_seg(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    if (metric_ldl(L, c, a, m))
        return -1;
    const TargetInfo *t = &L->targets.a[m->target];
    if (t->kind != DL_TGT_LABEL_MAP) {
        lw_error(L, a[1]->loc, "%s scores per-pixel classes: '%s' is a %s target, not label_map(...)",
                 dl_metric_kind_name[m->kind], t->name, dl_target_kind_name[t->kind]);
        return -1;
    }
    return 0;
}

#define ARGS_HT {{"network", AT_EXPR, 1, 0}, {"target", AT_EXPR, 1, 0}}, 2
static const struct MetricKindRow {
    int kind; /* DlMetricKind; the name is dl_metric_kind_name[kind] */
    int (*fn)(Lower *L, const AstExpr *call, const AstExpr **a, DlPlanMetric *m);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} metric_kinds[] = {
    {DL_MET_MAE, metric_mae, {{"prediction", AT_EXPR, 1, 0}, {"labels", AT_EXPR, 1, 0}}, 2},
    {DL_MET_ACCURACY, metric_accuracy,
     {{"network", AT_EXPR, 1, 0}, {"target", AT_EXPR, 1, 0}, {"tolerance", AT_NUM, 0, 0}}, 3},
    {DL_MET_TOP1, metric_top1, {{"network", AT_EXPR, 1, 0}, {"class", AT_EXPR, 1, 0}}, 2},
    {DL_MET_EPS_ERROR, metric_eps_error,
     {{"prediction", AT_EXPR, 1, 0}, {"labels", AT_EXPR, 1, 0}, {"sigma", AT_EXPR, 1, 0}}, 3},
    {DL_MET_CHEBYSHEV, metric_ldl, ARGS_HT},
    {DL_MET_CLARK, metric_ldl, ARGS_HT},
    {DL_MET_CANBERRA, metric_ldl, ARGS_HT},
    {DL_MET_KL, metric_ldl, ARGS_HT},
    {DL_MET_COSINE, metric_ldl, ARGS_HT},
    {DL_MET_INTERSECTION, metric_ldl, ARGS_HT},
    {DL_MET_MEAN_AP, metric_map, ARGS_HT},
    {DL_MET_MIOU, metric_seg, ARGS_HT},
    {DL_MET_PIXEL_ACCURACY, metric_seg, ARGS_HT},
};
#undef ARGS_HT
#define NMETRIC ((int)(sizeof metric_kinds / sizeof *metric_kinds))

void lw_metrics(Lower *L, const AstDecl *d)
{
    const char *names[NMETRIC];
    for (int k = 0; k < NMETRIC; k++)
        names[k] = dl_metric_kind_name[metric_kinds[k].kind];
    NameMap seen = {0}; /* metric names */
    for (int i = 0; i < d->nitems; i++) {
        const AstItem *it = &d->items[i];
        const AstExpr *e = it->value;
        if (!it->name) {
            lw_error(L, it->loc, "'return' outside a block or network");
            continue;
        }
        if (names_get(&seen, it->name) >= 0) {
            lw_error(L, it->loc, "duplicate metric '%s'", it->name);
            continue;
        }
        names_put(&seen, it->name, i);
        if (e->kind != EX_CALL) {
            lw_error(L, e->loc, "a metric is a call such as mae(...) or accuracy(...), not %s", lw_expr_desc(e));
            continue;
        }
        int k;
        for (k = 0; k < NMETRIC; k++)
            if (!strcmp(e->name, names[k]))
                break;
        if (k == NMETRIC) {
            lw_unknown(L, e->loc, "metric", e->name, names, NMETRIC, NULL);
            continue;
        }
        const AstExpr *a[LW_MAX_ARGS];
        char what[64];
        snprintf(what, sizeof what, "metric '%s'", e->name);
        MetricInfo mi = {{dl_pool_strdup(L->pool, it->name), metric_kinds[k].kind, -1, -1, 0, {0}, 0, 0, -1}, e->loc};
        if (lw_bind(L, e, what, metric_kinds[k].spec, metric_kinds[k].nspec, a) ||
            metric_kinds[k].fn(L, e, a, &mi.m))
            continue;
        DL_PUSH(L->metrics_out, mi);
    }
    names_free(&seen);
}

/* ---- after the network: widths, expectations ----------------------------- */

static int width_ok(Lower *L, int h, int t, DlSrcLoc loc)
{
    const HeadInfo *hi = &L->heads.a[h];
    const TargetInfo *ti = &L->targets.a[t];
    int64_t trows = lw_target_rows(ti);
    if (hi->K == ti->K && hi->rows == trows)
        return 1;
    if (hi->K == ti->K) {
        if (trows == 1)
            lw_error(L, loc, "target '%s' is one distribution per sample but head '%s' is one per pixel (%lld per "
                     "sample): a per-pixel head needs a label_map(...) target", ti->name, hi->name, (long long)hi->rows);
        else if (hi->rows == 1)
            lw_error(L, loc, "target '%s' is one distribution per pixel but head '%s' is one per sample: return "
                     "softmax of [B, K, H, W] logits", ti->name, hi->name);
        else
            lw_error(L, loc, "target '%s' has %d x %d pixels per sample but head '%s' outputs %lld: upsample the "
                     "logits to the input's size", ti->name, ti->map_h, ti->map_w, hi->name, (long long)hi->rows);
        lw_note(L, hi->loc, "head '%s' is returned here", hi->name);
        return 0;
    }
    if (L->heads.n == 1)
        lw_error(L, loc, "target '%s' has %lld bins but network '%s' outputs %lld", ti->name, (long long)ti->K,
                 L->net->name, (long long)hi->K);
    else
        lw_error(L, loc, "target '%s' has %lld bins but head '%s' of network '%s' outputs %lld", ti->name,
                 (long long)ti->K, hi->name, L->net->name, (long long)hi->K);
    if (ti->decl)
        lw_note(L, ti->decl->name_loc, "target '%s' is declared here", ti->name);
    lw_note(L, hi->loc, "head '%s' is returned here", hi->name);
    return 0;
}

/* Each (head, target) pair is checked once, at its first use. */
int lw_check_widths(Lower *L)
{
    int bad = 0;
    size_t T = L->targets.n, n = L->heads.n * T;
    uint8_t *seen = dl_pool_alloc(L->pool, n + 1);
    memset(seen, 0, n + 1);
    for (size_t i = 0; i < L->terms.n + L->metrics_out.n; i++) {
        int h, t, per_pixel_ok;
        DlSrcLoc loc;
        const char *what;
        if (i < L->terms.n) {
            h = L->terms.a[i].head, t = L->terms.a[i].target, loc = L->terms.a[i].loc;
            per_pixel_ok = L->terms.a[i].kind == LOSS_KL, what = L->terms.a[i].name;
        } else {
            const MetricInfo *mi = &L->metrics_out.a[i - L->terms.n];
            h = mi->m.head, t = mi->m.target, loc = mi->loc;
            per_pixel_ok = mi->m.kind == DL_MET_MIOU || mi->m.kind == DL_MET_PIXEL_ACCURACY, what = mi->m.name;
            if (per_pixel_ok && L->heads.a[h].rows == 1) {
                lw_error(L, loc, "'%s' scores per-pixel classes but head '%s' is one distribution per sample: return "
                         "softmax of [B, K, H, W] logits", what, L->heads.a[h].name);
                bad++;
                continue;
            }
        }
        if (!per_pixel_ok && L->heads.a[h].rows > 1) {
            lw_error(L, loc, "'%s' reads one distribution per sample but head '%s' is one per pixel; per pixel there "
                     "are kl(label_map target, head) losses (sigma = 0: cross-entropy) and the miou and pixel_accuracy "
                     "metrics", what, L->heads.a[h].name);
            bad++;
            continue;
        }
        if (t < 0 || seen[(size_t)h * T + (size_t)t]++)
            continue;
        bad += !width_ok(L, h, t, loc);
    }
    return bad;
}

void lw_expectations_used(const Lower *L, uint8_t *mark)
{
    size_t T = L->targets.n;
    for (size_t i = 0; i < L->terms.n; i++)
        if (L->terms.a[i].kind == LOSS_L1)
            mark[(size_t)L->terms.a[i].head * T + (size_t)L->terms.a[i].target] = 1;
    for (size_t i = 0; i < L->metrics_out.n; i++) {
        const DlPlanMetric *m = &L->metrics_out.a[i].m;
        if (m->kind == DL_MET_MAE || m->kind == DL_MET_EPS_ERROR)
            mark[(size_t)m->head * T + (size_t)m->target] = 1;
    }
}

/* ---- the loss graph ------------------------------------------------------ */

void lw_loss_graph(Lower *L, Graph *g, const NetOut *no)
{
    int64_t one = 1;
    size_t T = L->targets.n;
    uint32_t total = G_NONE;
    uint32_t *term = dl_pool_alloc(L->pool, (L->terms.n + 1) * sizeof *term);
    for (size_t i = 0; i < L->terms.n; i++) {
        const LossTerm *t = &L->terms.a[i];
        char nm[128];
        uint32_t rows;
        snprintf(nm, sizeof nm, "loss.%s.rows", t->name);
        int64_t R = g->batch * L->heads.a[t->head].rows;
        if (t->kind == LOSS_KL) {
            rows = graph_add(g, OP_KL_ROWS, (uint32_t[]){no->target_in[t->target], no->logsm[t->head]}, 2, &R, 1,
                             (GAttr){0}, nm, t->loc);
        } else {
            uint32_t lab = lw_label_input(L, g, t->cols, t->ncols);
            uint32_t e = no->expect[(size_t)t->head * T + (size_t)t->target];
            rows = graph_add(g, OP_ABSDIFF_ROWS, (uint32_t[]){e, lab}, 2, &R, 1, (GAttr){0}, nm, t->loc);
        }
        snprintf(nm, sizeof nm, "loss.%s", t->name);
        uint32_t m;
        if (L->heads.a[t->head].rows > 1) { /* per pixel: the mean over the target's rows that are not void */
            char cn[128];
            snprintf(cn, sizeof cn, "loss.%s.pixels", t->name);
            uint32_t cnt = graph_add(g, OP_VALID_COUNT, &no->target_in[t->target], 1, &one, 1, (GAttr){0}, cn, t->loc);
            m = graph_add(g, OP_MEAN_OVER, (uint32_t[]){rows, cnt}, 2, &one, 1, (GAttr){0}, nm, t->loc);
        } else {
            m = graph_add(g, OP_MEAN, &rows, 1, &one, 1, (GAttr){0}, nm, t->loc);
        }
        if (t->weighted && t->weight != 1) {
            snprintf(nm, sizeof nm, "loss.%s.weighted", t->name);
            m = graph_add(g, OP_SCALE, &m, 1, &one, 1, (GAttr){.f = (float)t->weight}, nm, t->loc);
        }
        term[i] = m;
        if (total == G_NONE) {
            total = m;
        } else {
            snprintf(nm, sizeof nm, "loss.sum%zu", i);
            total = graph_add(g, OP_ADD, (uint32_t[]){total, m}, 2, &one, 1, (GAttr){0}, nm, t->loc);
        }
    }
    if (total == G_NONE)
        return;
    lw_output(g, GOUT_LOSS, "loss", total, -1, -1);
    for (size_t i = 0; i < L->terms.n; i++)
        lw_output(g, GOUT_LOSS_TERM, L->terms.a[i].name, term[i], -1, -1);
}
