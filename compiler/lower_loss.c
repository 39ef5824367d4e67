/* lower_loss.c - `loss = ...` and `metrics { ... }`: the tables of loss terms
 * and metrics, their checks against the declarations, and the loss's graph.
 *
 * loss = [w *] term + [w *] term ...     (w a number; term a loss call)
 *   kl(target, network)   KL(y || p) per sample, from log-softmax, mean over
 *                         the batch (PyTorch kl_div reduction 'batchmean');
 *                         Gao et al., IEEE TIP 2017, Eq. (7)
 *   l1(expectation(network, target), labels)
 *                         sum over axes of |E_p[l] - label|, mean over the
 *                         batch; DLDL-v2 (Gao et al., IJCAI 2018), Eq. (8)
 */
#include <string.h>

#include "lower_int.h"

/* The one target of loss and metrics. */
static int use_target(Lower *L, TargetInfo *t, DlSrcLoc loc)
{
    if (!t)
        return -1;
    if (L->target && L->target != t) {
        lw_error(L, loc, "the loss and the metrics must use one target: '%s' here, '%s' before", t->name,
                 L->target->name);
        return -1;
    }
    L->target = t;
    return 0;
}

/* expectation(network, target): the DLDL-v2 read-out. */
static int expectation_ref(Lower *L, const AstExpr *e, const char *user)
{
    static const ArgSpec spec[] = {{"network", AT_EXPR, 1, 0}, {"target", AT_EXPR, 1, 0}};
    const AstExpr *a[2];
    if (e->kind != EX_CALL || strcmp(e->name, "expectation")) {
        lw_error(L, e->loc, "%s compares expectation(network, target) with labels; got %s", user, lw_expr_desc(e));
        return -1;
    }
    if (lw_bind(L, e, "expectation", spec, 2, a))
        return -1;
    int bad = lw_net_ref(L, a[0]);
    TargetInfo *t = lw_target_ref(L, a[1]);
    if (bad || !t)
        return -1;
    return use_target(L, t, a[1]->loc);
}

/* labels: the target's axes, in order (they are the [B,A] label input). */
static int axis_labels(Lower *L, const AstExpr *e, const char *user)
{
    int idx[DL_MAX_AXES];
    int n = lw_label_refs(L, e, idx, DL_MAX_AXES);
    if (n < 0 || !L->target)
        return -1;
    const TargetInfo *t = L->target;
    int ok = n == t->naxes;
    for (int a = 0; ok && a < n; a++)
        ok = idx[a] == t->label[a];
    if (!ok) {
        DlBuf b = {0};
        for (int a = 0; a < t->naxes; a++)
            dl_buf_printf(&b, "%s%s.%s", a ? ", " : "", L->data.decl->name, L->data.labels.a[t->label[a]].name);
        lw_error(L, e->loc, "%s needs the labels of target '%s' in its axis order: %s%s%s", user, t->name,
                 t->naxes > 1 ? "[" : "", b.s, t->naxes > 1 ? "]" : "");
        dl_buf_free(&b);
        return -1;
    }
    return 0;
}

/* ---- loss terms ---------------------------------------------------------- */

static int loss_kl(Lower *L, const AstExpr *c, const AstExpr **a)
{
    if (a[0]->kind == EX_IDENT && L->net && !strcmp(a[0]->name, L->net->name)) {
        lw_error(L, a[0]->loc, "kl takes (target, network): the arguments are swapped");
        return -1;
    }
    TargetInfo *t = lw_target_ref(L, a[0]);
    int bad = lw_net_ref(L, a[1]);
    if (!t || bad)
        return -1;
    return use_target(L, t, a[0]->loc);
}

static int loss_l1(Lower *L, const AstExpr *c, const AstExpr **a)
{
    if (expectation_ref(L, a[0], "l1"))
        return -1;
    return axis_labels(L, a[1], "l1");
}

static const struct LossKindRow {
    const char *name;
    LossKind kind;
    int (*fn)(Lower *L, const AstExpr *call, const AstExpr **a);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} loss_kinds[] = {
    {"kl", LOSS_KL, loss_kl, {{"target", AT_EXPR, 1, 0}, {"network", AT_EXPR, 1, 0}}, 2},
    {"l1", LOSS_L1, loss_l1, {{"prediction", AT_EXPR, 1, 0}, {"labels", AT_EXPR, 1, 0}}, 2},
};
#define NLOSS ((int)(sizeof loss_kinds / sizeof *loss_kinds))

static void loss_term(Lower *L, const AstExpr *e)
{
    double w = 1;
    int weighted = 0;
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
            if (lw_bind(L, e, what, loss_kinds[k].spec, loss_kinds[k].nspec, a) || loss_kinds[k].fn(L, e, a))
                return;
            int same = 0;
            for (size_t i = 0; i < L->terms.n; i++)
                same += L->terms.a[i].kind == loss_kinds[k].kind;
            const char *nm = loss_kinds[k].name;
            if (same) {
                char *s = dl_pool_alloc(L->pool, strlen(nm) + 16);
                sprintf(s, "%s_%d", nm, same + 1);
                nm = s;
            }
            LossTerm t = {loss_kinds[k].kind, nm, w, weighted, e->loc};
            DL_PUSH(L->terms, t);
            return;
        }
    lw_unknown(L, e->loc, "loss", e->name, names, NLOSS, NULL);
}

static void loss_sum(Lower *L, const AstExpr *e)
{
    if (e->kind == EX_BINOP && e->op == '+') {
        loss_sum(L, e->a);
        loss_sum(L, e->b);
        return;
    }
    if (e->kind == EX_BINOP && e->op != '*') {
        lw_error(L, e->loc, "loss terms combine with '+' and a weight 'w * term', not '%c'", e->op);
        return;
    }
    loss_term(L, e);
}

void lw_loss(Lower *L, const AstDecl *d)
{
    if (d->nitems && d->items[0].value)
        loss_sum(L, d->items[0].value);
}

/* ---- metrics ------------------------------------------------------------- */

static int metric_mae(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    if (expectation_ref(L, a[0], "mae"))
        return -1;
    return axis_labels(L, a[1], "mae");
}

static int metric_accuracy(Lower *L, const AstExpr *c, const AstExpr **a, DlPlanMetric *m)
{
    int bad = lw_net_ref(L, a[0]);
    TargetInfo *t = lw_target_ref(L, a[1]);
    double tol;
    if (bad || !t || use_target(L, t, a[1]->loc) || lw_get_num(L, a[2], "tolerance", "accuracy", 0, &tol))
        return -1;
    if (!(tol >= 0)) {
        lw_error(L, a[2]->loc, "'tolerance' of accuracy must be >= 0 (label units), not %g", tol);
        return -1;
    }
    m->tolerance = (float)tol;
    return 0;
}

static const struct MetricKind {
    const char *name;
    int (*fn)(Lower *L, const AstExpr *call, const AstExpr **a, DlPlanMetric *m);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} metric_kinds[] = {
    {"mae", metric_mae, {{"prediction", AT_EXPR, 1, 0}, {"labels", AT_EXPR, 1, 0}}, 2},
    {"accuracy", metric_accuracy, {{"network", AT_EXPR, 1, 0}, {"target", AT_EXPR, 1, 0}, {"tolerance", AT_NUM, 0, 0}}, 3},
};
#define NMETRIC ((int)(sizeof metric_kinds / sizeof *metric_kinds))

void lw_metrics(Lower *L, const AstDecl *d)
{
    const char *names[NMETRIC];
    for (int k = 0; k < NMETRIC; k++)
        names[k] = metric_kinds[k].name;
    for (int i = 0; i < d->nitems; i++) {
        const AstItem *it = &d->items[i];
        const AstExpr *e = it->value;
        if (!it->name) {
            lw_error(L, it->loc, "'return' outside a block or network");
            continue;
        }
        int dup = 0;
        for (size_t j = 0; j < L->metrics_out.n; j++)
            dup |= !strcmp(L->metrics_out.a[j].name, it->name);
        for (int j = 0; j < i; j++)
            dup |= d->items[j].name && !strcmp(d->items[j].name, it->name);
        if (dup) {
            lw_error(L, it->loc, "duplicate metric '%s'", it->name);
            continue;
        }
        if (e->kind != EX_CALL) {
            lw_error(L, e->loc, "a metric is a call such as mae(...) or accuracy(...), not %s", lw_expr_desc(e));
            continue;
        }
        int k;
        for (k = 0; k < NMETRIC; k++)
            if (!strcmp(e->name, metric_kinds[k].name))
                break;
        if (k == NMETRIC) {
            lw_unknown(L, e->loc, "metric", e->name, names, NMETRIC, NULL);
            continue;
        }
        const AstExpr *a[LW_MAX_ARGS];
        char what[64];
        snprintf(what, sizeof what, "metric '%s'", e->name);
        DlPlanMetric m = {dl_pool_strdup(L->pool, it->name), dl_pool_strdup(L->pool, e->name), 0};
        if (lw_bind(L, e, what, metric_kinds[k].spec, metric_kinds[k].nspec, a) || metric_kinds[k].fn(L, e, a, &m))
            continue;
        DL_PUSH(L->metrics_out, m);
    }
}

/* ---- the loss graph ------------------------------------------------------ */

void lw_loss_graph(Lower *L, Graph *g, const NetOut *no)
{
    int64_t B = g->batch, one = 1;
    uint32_t total = G_NONE;
    uint32_t *term = dl_pool_alloc(L->pool, (L->terms.n + 1) * sizeof *term);
    for (size_t i = 0; i < L->terms.n; i++) {
        const LossTerm *t = &L->terms.a[i];
        char nm[128];
        uint32_t rows;
        if (t->kind == LOSS_KL) {
            snprintf(nm, sizeof nm, "loss.%s.rows", t->name);
            rows = graph_add(g, OP_KL_ROWS, (uint32_t[]){no->target, no->logsm}, 2, &B, 1, (GAttr){0}, nm, t->loc);
        } else {
            snprintf(nm, sizeof nm, "loss.%s.rows", t->name);
            rows = graph_add(g, OP_ABSDIFF_ROWS, (uint32_t[]){no->expect, no->label}, 2, &B, 1, (GAttr){0}, nm, t->loc);
        }
        snprintf(nm, sizeof nm, "loss.%s", t->name);
        uint32_t m = graph_add(g, OP_MEAN, &rows, 1, &one, 1, (GAttr){0}, nm, t->loc);
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
    lw_output(g, GOUT_LOSS, "loss", total);
    for (size_t i = 0; i < L->terms.n; i++)
        lw_output(g, GOUT_LOSS_TERM, L->terms.a[i].name, term[i]);
}
