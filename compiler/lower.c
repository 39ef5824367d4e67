/* lower.c - the semantic stage's driver (compiler/lower.h): collect the
 * declarations, check names, lower train and optimizer settings, then hand
 * data, targets, loss, metrics and the network to lower_data.c,
 * lower_loss.c and lower_net.c, and build the two forward graphs.
 *
 * Order: data -> targets -> train -> optimizer -> loss -> metrics -> data
 * binding (labels numbered by the target's axes) -> train graph (with the
 * loss) -> eval graph (same network, quiet) -> unused-item warnings.
 */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "lower_int.h"

/* ---- messages ------------------------------------------------------------ */

void lw_error(Lower *L, DlSrcLoc loc, const char *fmt, ...)
{
    L->nerr++;
    if (L->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    dl_verror(L->diag, loc, fmt, ap);
    va_end(ap);
}

void lw_warn(Lower *L, DlSrcLoc loc, const char *fmt, ...)
{
    if (L->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    dl_vwarning(L->diag, loc, fmt, ap);
    va_end(ap);
}

void lw_note(Lower *L, DlSrcLoc loc, const char *fmt, ...)
{
    if (L->quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    dl_vnote(L->diag, loc, fmt, ap);
    va_end(ap);
}

void lw_unknown(Lower *L, DlSrcLoc loc, const char *what, const char *word,
                const char *const *names, int n, const char *context)
{
    const char *s = dl_suggest(word, names, n);
    if (s)
        lw_error(L, loc, "unknown %s '%s'%s; did you mean '%s'?", what, word, context ? context : "", s);
    else
        lw_error(L, loc, "unknown %s '%s'%s", what, word, context ? context : "");
}

void lw_kv(Lower *L, KVVec *vec, const char *key, const char *fmt, ...)
{
    char *v;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    v = dl_pool_alloc(L->pool, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(v, (size_t)n + 1, fmt, ap);
    va_end(ap);
    DlKV kv = {dl_pool_strdup(L->pool, key), v};
    /* a key set twice keeps the last value (defaults first, then the spec's) */
    for (size_t i = 0; i < vec->n; i++)
        if (!strcmp(vec->a[i].key, key)) {
            vec->a[i] = kv;
            return;
        }
    DL_PUSH(*vec, kv);
}

const AstDecl *lw_find_decl(const Lower *L, const char *name)
{
    int i = names_get(&L->decl_index, name);
    return i < 0 ? NULL : &L->f->decls[i];
}

/* ---- train { ... } ------------------------------------------------------- */

typedef struct TrainVals { int epochs, batch, seed, eval_batch; } TrainVals;
static const struct TrainKey {
    const char *name;
    size_t off;
    int required, def, min;
} train_keys[] = {
    {"epochs", offsetof(TrainVals, epochs), 1, 0, 1},
    {"batch", offsetof(TrainVals, batch), 1, 0, 1},
    {"seed", offsetof(TrainVals, seed), 0, 0, 0},
    {"eval_batch", offsetof(TrainVals, eval_batch), 0, 0, 1}, /* default: batch */
};
#define NTRAIN_KEYS ((int)(sizeof train_keys / sizeof *train_keys))

static void lower_train(Lower *L, const AstDecl *d)
{
    TrainVals tv = {0, 0, 0, 0};
    int seen[NTRAIN_KEYS] = {0};
    const char *names[NTRAIN_KEYS];
    for (int k = 0; k < NTRAIN_KEYS; k++)
        names[k] = train_keys[k].name;
    for (int i = 0; i < d->nitems; i++) {
        const AstItem *it = &d->items[i];
        if (!it->name) {
            lw_error(L, it->loc, "'return' outside a block or network");
            continue;
        }
        int k;
        for (k = 0; k < NTRAIN_KEYS; k++)
            if (!strcmp(train_keys[k].name, it->name))
                break;
        if (k == NTRAIN_KEYS) {
            lw_unknown(L, it->loc, "key", it->name, names, NTRAIN_KEYS, " in train");
            continue;
        }
        if (seen[k]++) {
            lw_error(L, it->loc, "duplicate key '%s' in train", it->name);
            continue;
        }
        int v;
        if (lw_get_int(L, it->value, it->name, "train", 0, &v))
            continue;
        if (v < train_keys[k].min) {
            lw_error(L, it->value->loc, "train %s must be at least %d", it->name, train_keys[k].min);
            continue;
        }
        *(int *)((char *)&tv + train_keys[k].off) = v;
    }
    for (int k = 0; k < NTRAIN_KEYS; k++)
        if (train_keys[k].required && !seen[k])
            lw_error(L, d->loc, "train needs '%s'", train_keys[k].name);
    if (!seen[3])
        tv.eval_batch = tv.batch;
    L->epochs = tv.epochs;
    L->batch = tv.batch;
    L->eval_batch = tv.eval_batch;
    lw_kv(L, &L->hyper, "epochs", "%d", tv.epochs);
    lw_kv(L, &L->hyper, "batch", "%d", tv.batch);
    lw_kv(L, &L->hyper, "eval_batch", "%d", tv.eval_batch);
    lw_kv(L, &L->hyper, "seed", "%d", tv.seed);
}

/* ---- optimizer = sgd(...) | adam(...) | adamw(...), schedules ----------- */

/* A kind named by a call in a hyperparameter item (a schedule, an optimizer):
 * one table row each, dispatched by lower_call_kind. */
typedef struct CallKind {
    const char *name;
    void (*fn)(Lower *L, const AstExpr *call, const AstExpr **a);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} CallKind;

/* Find e's kind in t[0..n), record it as hyperparameter `key`, bind its
 * arguments and run its handler.  what names the item in messages
 * ("schedule"); example is a call shown when e is not a call at all. */
static void lower_call_kind(Lower *L, const AstExpr *e, const CallKind *t, int n, const char *what,
                            const char *key, const char *example)
{
    if (e->kind != EX_CALL) {
        lw_error(L, e->loc, "%s must be a call such as %s, not %s", what, example, lw_expr_desc(e));
        return;
    }
    for (int k = 0; k < n; k++)
        if (!strcmp(e->name, t[k].name)) {
            const AstExpr *a[LW_MAX_ARGS];
            char w[64];
            snprintf(w, sizeof w, "%s '%s'", what, e->name);
            lw_kv(L, &L->hyper, key, "%s", e->name);
            if (!lw_bind(L, e, w, t[k].spec, t[k].nspec, a))
                t[k].fn(L, e, a);
            return;
        }
    const char *names[16];
    for (int k = 0; k < n && k < 16; k++)
        names[k] = t[k].name;
    lw_unknown(L, e->loc, what, e->name, names, n < 16 ? n : 16, NULL);
}

/* A numeric hyperparameter in [lo, hi]: written to meta.hyper, returned (def on error). */
static double hnum(Lower *L, const char *key, const AstExpr *e, const char *what, double def, double lo,
                   double hi)
{
    double v;
    if (lw_get_num(L, e, key, what, def, &v))
        return def;
    if (!(v >= lo && v <= hi)) {
        lw_error(L, e ? e->loc : (DlSrcLoc){0, 0, 0}, "'%s' of %s must be in [%g, %g], not %g", key, what,
                 lo, hi, v);
        return def;
    }
    lw_kv(L, &L->hyper, key, "%.9g", v);
    return v;
}

static void sched_constant(Lower *L, const AstExpr *call, const AstExpr **a) { (void)L, (void)call, (void)a; }
static void sched_onecycle(Lower *L, const AstExpr *call, const AstExpr **a)
{
    /* PyTorch OneCycleLR: anneal_strategy cos, three_phase false */
    hnum(L, "max_lr", a[0], "onecycle", 0, 0, 1e6);
    hnum(L, "pct_start", a[1], "onecycle", 0.3, 0, 1);
    hnum(L, "div_factor", a[2], "onecycle", 25, 1e-12, 1e12);
    hnum(L, "final_div_factor", a[3], "onecycle", 1e4, 1e-12, 1e12);
    int cyc;
    if (!lw_get_bool(L, a[4], "cycle_momentum", "onecycle", 1, &cyc))
        lw_kv(L, &L->hyper, "cycle_momentum", "%d", cyc);
    hnum(L, "base_momentum", a[5], "onecycle", 0.85, 0, 1);
    hnum(L, "max_momentum", a[6], "onecycle", 0.95, 0, 1);
}
static void sched_step(Lower *L, const AstExpr *call, const AstExpr **a)
{
    int every;
    if (!lw_get_int(L, a[0], "every", "step", 1, &every)) {
        if (every < 1)
            lw_error(L, a[0]->loc, "'every' of step must be at least 1 (epochs)");
        else
            lw_kv(L, &L->hyper, "step_every", "%d", every);
    }
    hnum(L, "step_gamma", a[1], "step", 0.1, 0, 1e6);
}
static void sched_cosine(Lower *L, const AstExpr *call, const AstExpr **a) { (void)L, (void)call, (void)a; }

static const CallKind sched_kinds[] = {
    {"constant", sched_constant, {{0}}, 0},
    {"onecycle", sched_onecycle,
     {{"max_lr", AT_NUM, 1, 0}, {"pct_start", AT_NUM, 0, 0.3}, {"div_factor", AT_NUM, 0, 25},
      {"final_div_factor", AT_NUM, 0, 1e4}, {"cycle_momentum", AT_BOOL, 0, 1},
      {"base_momentum", AT_NUM, 0, 0.85}, {"max_momentum", AT_NUM, 0, 0.95}},
     7},
    {"step", sched_step, {{"every", AT_INT, 1, 0}, {"gamma", AT_NUM, 0, 0.1}}, 2},
    {"cosine", sched_cosine, {{0}}, 0},
};
#define NSCHED ((int)(sizeof sched_kinds / sizeof *sched_kinds))

static void lower_schedule(Lower *L, const AstExpr *e)
{
    if (!e) {
        lw_kv(L, &L->hyper, "schedule", "constant");
        return;
    }
    lower_call_kind(L, e, sched_kinds, NSCHED, "schedule", "schedule", "onecycle(max_lr = 0.05)");
}

/* torch.optim.SGD (dampening 0): v = mu v + (g + wd w); w -= lr v, or with
 * nesterov w -= lr (g + wd w + mu v) (Sutskever et al., ICML 2013, as PyTorch
 * writes it). */
static void opt_sgd(Lower *L, const AstExpr *call, const AstExpr **a)
{
    hnum(L, "lr", a[0], "sgd", 0, 0, 1e6);
    double mu = hnum(L, "momentum", a[1], "sgd", 0, 0, 1);
    L->weight_decay = hnum(L, "weight_decay", a[2], "sgd", 0, 0, 1e6);
    int nest;
    L->optimizer = OP_SGD;
    if (!lw_get_bool(L, a[3], "nesterov", "sgd", 0, &nest)) {
        if (nest && !(mu > 0))
            lw_error(L, a[3]->loc, "nesterov = true needs a momentum > 0 (PyTorch SGD)");
        if (nest)
            L->optimizer = OP_SGD_NESTEROV;
        lw_kv(L, &L->hyper, "nesterov", "%d", nest);
    }
    lower_schedule(L, a[4]);
}

/* A number of the hyperparameters already written, or def. */
static double hyper_num(const Lower *L, const char *key, double def)
{
    const char *v = dl_plan_kv(L->hyper.a, (int)L->hyper.n, key);
    return v ? strtod(v, NULL) : def;
}

/* torch.optim.Adam and AdamW (Kingma & Ba, ICLR 2015, Alg. 1; Loshchilov &
 * Hutter, ICLR 2019, Alg. 2); the one difference is where the weight decay
 * goes (codegen/build_opt.c).  beta1 reaches the kernel through the scalars
 * (so onecycle can cycle it, as PyTorch's OneCycleLR cycles betas[0]); beta2
 * and eps are constants of the update op. */
static void opt_adam_kind(Lower *L, const AstExpr *call, const AstExpr **a, GOp op)
{
    const char *what = graph_op_name[op];
    hnum(L, "lr", a[0], what, 0.001, 0, 1e6);
    double b[2] = {0.9, 0.999};
    if (a[1] && !lw_num_list(L, a[1], "betas", what, 2, b) && !(b[0] >= 0 && b[0] < 1 && b[1] >= 0 && b[1] < 1)) {
        lw_error(L, a[1]->loc, "'betas' of %s must be two numbers in [0, 1), not [%g, %g]", what, b[0], b[1]);
        b[0] = 0.9, b[1] = 0.999;
    }
    lw_kv(L, &L->hyper, "beta1", "%.9g", b[0]);
    lw_kv(L, &L->hyper, "beta2", "%.9g", b[1]);
    double eps = hnum(L, "eps", a[2], what, 1e-8, 0, 1);
    if (a[2] && !(eps > 0))
        lw_error(L, a[2]->loc, "'eps' of %s must be > 0 (a parameter whose gradient stays 0 would get 0 / 0)", what);
    L->weight_decay = hnum(L, "weight_decay", a[3], what, op == OP_ADAMW ? 0.01 : 0, 0, 1e6);
    L->optimizer = op;
    L->optimizer_attr = (GAttr){.adam = {(float)L->weight_decay, b[1], eps > 0 ? eps : 1e-8}};
    lower_schedule(L, a[4]);
    /* onecycle replaces beta1 by its cycled momentum: it must stay below 1 */
    const char *sched = dl_plan_kv(L->hyper.a, (int)L->hyper.n, "schedule");
    if (sched && !strcmp(sched, "onecycle") && hyper_num(L, "cycle_momentum", 1) != 0 &&
        !(hyper_num(L, "max_momentum", 0.95) < 1 && hyper_num(L, "base_momentum", 0.85) < 1))
        lw_error(L, a[4]->loc, "onecycle cycles %s's beta1 between base_momentum and max_momentum: both must "
                 "be < 1", what);
}
static void opt_adam(Lower *L, const AstExpr *call, const AstExpr **a) { opt_adam_kind(L, call, a, OP_ADAM); }
static void opt_adamw(Lower *L, const AstExpr *call, const AstExpr **a) { opt_adam_kind(L, call, a, OP_ADAMW); }

static const CallKind opt_kinds[] = {
    {"sgd", opt_sgd,
     {{"lr", AT_NUM, 1, 0}, {"momentum", AT_NUM, 0, 0}, {"weight_decay", AT_NUM, 0, 0},
      {"nesterov", AT_BOOL, 0, 0}, {"schedule", AT_EXPR, 0, 0}},
     5},
    {"adam", opt_adam,
     {{"lr", AT_NUM, 0, 0.001}, {"betas", AT_EXPR, 0, 0}, {"eps", AT_NUM, 0, 1e-8},
      {"weight_decay", AT_NUM, 0, 0}, {"schedule", AT_EXPR, 0, 0}},
     5},
    {"adamw", opt_adamw,
     {{"lr", AT_NUM, 0, 0.001}, {"betas", AT_EXPR, 0, 0}, {"eps", AT_NUM, 0, 1e-8},
      {"weight_decay", AT_NUM, 0, 0.01}, {"schedule", AT_EXPR, 0, 0}},
     5},
};
#define NOPT ((int)(sizeof opt_kinds / sizeof *opt_kinds))

static void lower_optimizer(Lower *L, const AstDecl *d)
{
    const AstExpr *e = d->nitems ? d->items[0].value : NULL;
    if (e)
        lower_call_kind(L, e, opt_kinds, NOPT, "optimizer", "optimizer", "sgd(lr = 0.05)");
}

/* ---- declarations -------------------------------------------------------- */

static void single(Lower *L, const AstDecl **slot, const AstDecl *d, const char *what)
{
    if (*slot) {
        lw_error(L, d->loc, "second '%s' declaration", what);
        lw_note(L, (*slot)->loc, "the first is here");
        return;
    }
    *slot = d;
}

/* params { name = constant }: names that evaluate to constants anywhere a
 * number or string is expected; LowerOverride (dldlc -D) replaces values. */
static void params(Lower *L, const AstDecl *d)
{
    for (int i = 0; i < d->nitems; i++) {
        const AstItem *it = &d->items[i];
        if (!it->name) {
            lw_error(L, it->loc, "'return' outside a block or network");
            continue;
        }
        const AstExpr *v = it->value;
        if (v->kind != EX_NUM && v->kind != EX_STR && v->kind != EX_NEG && v->kind != EX_BINOP &&
            v->kind != EX_IDENT) {
            lw_error(L, v->loc, "a parameter is a number or a string, not %s", lw_expr_desc(v));
            continue;
        }
        int j = names_get(&L->param_index, it->name);
        if (j >= 0) {
            lw_error(L, it->loc, "duplicate parameter '%s'", it->name);
            lw_note(L, L->params.a[j].loc, "the first is here");
        } else {
            SpecParam sp = {it->name, it->loc, v, 0};
            names_put(&L->param_index, it->name, (int)L->params.n);
            DL_PUSH(L->params, sp);
        }
    }
}

const AstExpr *lw_param(Lower *L, const char *name)
{
    int i = names_get(&L->param_index, name);
    if (i < 0)
        return NULL;
    L->params.a[i].used = 1;
    return L->params.a[i].value;
}

/* -D name=value: a number when it reads as one, else a string. */
static int apply_overrides(Lower *L, const LowerOverride *ov, int nov)
{
    int bad = 0;
    for (int i = 0; i < nov; i++) {
        size_t k;
        for (k = 0; k < L->params.n && strcmp(L->params.a[k].name, ov[i].name); k++)
            ;
        if (k == L->params.n) {
            const char *names[64];
            int n = 0;
            for (size_t j = 0; j < L->params.n && n < 64; j++)
                names[n++] = L->params.a[j].name;
            const char *s = dl_suggest(ov[i].name, names, n);
            dl_error(L->diag, (DlSrcLoc){0, 0, 0}, "-D %s: the spec has no parameter '%s'%s%s%s", ov[i].name,
                     ov[i].name, s ? "; did you mean '" : (n ? "" : " (it declares no params { ... })"),
                     s ? s : "", s ? "'?" : "");
            L->nerr++;
            bad = 1;
            continue;
        }
        AstExpr *e = dl_pool_alloc(L->pool, sizeof *e);
        memset(e, 0, sizeof *e);
        e->loc = L->params.a[k].value->loc;
        char *end;
        double v = strtod(ov[i].value, &end);
        if (*ov[i].value && !*end && isfinite(v)) {
            e->kind = EX_NUM;
            e->num = v;
            e->is_int = !strpbrk(ov[i].value, ".eE");
        } else {
            e->kind = EX_STR;
            e->name = dl_pool_strdup(L->pool, ov[i].value);
        }
        L->params.a[k].value = e;
    }
    return bad;
}

static void collect(Lower *L)
{
    const AstFile *f = L->f;
    for (int i = 0; i < f->ndecls; i++) {
        const AstDecl *d = &f->decls[i];
        if (d->name) { /* one namespace for data, targets, blocks and networks */
            int j = names_get(&L->decl_index, d->name);
            if (j >= 0) {
                lw_error(L, d->name_loc, "duplicate name '%s'", d->name);
                lw_note(L, f->decls[j].name_loc, "'%s' was first declared here as a %s", d->name,
                        ast_decl_kind_name(f->decls[j].kind));
                goto next;
            }
            names_put(&L->decl_index, d->name, i);
        }
        switch (d->kind) {
        case AST_DATA:
            if (L->data.decl) {
                lw_error(L, d->loc, "second 'data' declaration ('%s'): a spec reads one data set", d->name);
                lw_note(L, L->data.decl->loc, "the first is here");
            } else
                L->data.decl = d;
            break;
        case AST_TARGET: {
            TargetInfo t = {0};
            t.decl = d;
            t.name = d->name;
            t.loc = d->name_loc;
            t.dist = t.class_head = -1;
            for (int x = 0; x < DL_MAX_AXES; x++)
                t.label[x] = t.sigma_label[x] = -1;
            DL_PUSH(L->targets, t);
            break;
        }
        case AST_BLOCK:
            DL_PUSH(L->blocks, d);
            break;
        case AST_NETWORK:
            if (L->net) {
                lw_error(L, d->loc, "second 'network' declaration ('%s'): a spec trains one network", d->name);
                lw_note(L, L->net->loc, "the first is here");
            } else
                L->net = d;
            break;
        case AST_LOSS: single(L, &L->loss, d, "loss"); break;
        case AST_OPTIMIZER: single(L, &L->opt, d, "optimizer"); break;
        case AST_TRAIN: single(L, &L->train, d, "train"); break;
        case AST_METRICS: single(L, &L->metrics, d, "metrics"); break;
        case AST_PARAMS: params(L, d); break;
        }
    next:;
    }
    L->block_used = dl_pool_alloc(L->pool, (L->blocks.n + 1) * sizeof(int));
    L->block_seen = dl_pool_alloc(L->pool, (L->blocks.n + 1) * sizeof(int));
    static const char *const need[] = {"data", "network", "loss", "optimizer", "train"};
    const void *have[] = {L->data.decl, L->net, L->loss, L->opt, L->train};
    for (int k = 0; k < 5; k++)
        if (!have[k])
            lw_error(L, (DlSrcLoc){0, 0, 0}, "no '%s' declaration", need[k]);
    if (!L->targets.n)
        lw_error(L, (DlSrcLoc){0, 0, 0}, "no 'target' declaration");
}

static void *pool_copy(DlPool *p, const void *a, size_t n)
{
    if (!n)
        return NULL;
    void *d = dl_pool_alloc(p, n);
    memcpy(d, a, n);
    return d;
}

int lower_file(const AstFile *f, DlPool *pool, DlDiag *diag, const LowerOverride *ov, int nov, LowerResult *out)
{
    return lower_file_ranks(f, pool, diag, ov, nov, NULL, 0, out);
}

/* The train graph of one rank of N (docs/parallel.md): the per-rank batch
 * B/N, batch norm synchronised (lw_network reads g->ranks), and the loss
 * scaled by 1/N, so that it is this rank's samples' share of the mean over
 * the global batch and the ranks' gradients sum to the global one.  NULL
 * when the lowering failed (errors were reported for the train graph). */
static Graph *rank_train(Lower *L, int nranks)
{
    NetOut rn;
    Graph *g = lw_network_ranks(L, L->batch / nranks, nranks, &rn);
    if (!g || !rn.ok)
        return NULL;
    g->optimizer = L->optimizer;
    g->optimizer_attr = L->optimizer_attr;
    lw_loss_graph(L, g, &rn);
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].kind == GOUT_LOSS) {
            GNode *t = &g->nodes[g->outs[o].node];
            g->outs[o].node = graph_add(g, OP_SCALE, &g->outs[o].node, 1, t->shape, t->ndim,
                                        (GAttr){.f = (float)(1.0 / nranks)}, "loss.rank_share", t->loc);
        }
    return g;
}

int lower_file_ranks(const AstFile *f, DlPool *pool, DlDiag *diag, const LowerOverride *ov, int nov,
                     const int *ranks, int nranks, LowerResult *out)
{
    Lower L0 = {0}, *L = &L0;
    L->f = f;
    L->pool = pool;
    L->diag = diag;
    L->optimizer = OP_SGD;
    memset(out, 0, sizeof *out);
    out->meta.source_name = dl_pool_strdup(pool, f->src && f->src->name ? f->src->name : "");

    collect(L);
    apply_overrides(L, ov, nov);
    if (L->net)
        lw_net_heads(L);
    int nerr_data = L->nerr;
    if (L->data.decl)
        lw_data(L, L->data.decl);
    for (size_t i = 0; i < L->targets.n; i++)
        lw_target(L, L->targets.a[i].decl);
    L->ref_errors = L->nerr - nerr_data;
    if (L->train)
        lower_train(L, L->train);
    if (L->opt)
        lower_optimizer(L, L->opt);
    int nerr_refs = L->nerr;
    if (L->loss)
        lw_loss(L, L->loss);
    if (L->metrics)
        lw_metrics(L, L->metrics);
    int refs_ok = L->nerr == nerr_refs, net_ok = 0;
    L->ref_errors += L->nerr - nerr_refs;
    lw_data_binding(L, &out->meta);

    if (L->net && L->data.input_ok && L->heads.n && L->batch > 0) {
        int before = L->nerr;
        NetOut tn, en;
        Graph *train = lw_network(L, 1, L->batch, &tn);
        if (train && tn.ok && L->nerr == before) {
            train->optimizer = L->optimizer; /* for autodiff; the weight decay is set by lw_network */
            train->optimizer_attr = L->optimizer_attr;
            lw_loss_graph(L, train, &tn);
            L->quiet = 1; /* the same checks again: say nothing twice */
            Graph *eval = lw_network(L, 0, L->eval_batch, &en);
            L->quiet = 0;
            if (eval && en.ok && L->nerr == before) {
                net_ok = 1;
                out->train = train;
                out->eval = eval;
            }
            for (int r = 0; r < nranks && net_ok; r++) {
                if (ranks[r] < 2 || ranks[r] > DL_MAX_RANKS || L->batch % ranks[r]) {
                    lw_error(L, L->train ? L->train->loc : (DlSrcLoc){0, 0, 0},
                             "--ranks=%d: a train@N program needs N in 2..%d dividing the batch %d (each rank "
                             "takes batch / N samples of every global batch)", ranks[r], DL_MAX_RANKS, L->batch);
                    continue;
                }
                L->quiet = 1;
                out->rank_train[out->nrank_train] = rank_train(L, ranks[r]);
                L->quiet = 0;
                out->rank_n[out->nrank_train++] = ranks[r];
            }
        }
    }
    for (size_t i = 0; i < L->blocks.n && net_ok; i++) /* else: echoes of errors */
        if (!L->block_used[i])
            lw_warn(L, L->blocks.a[i]->name_loc, "block '%s' is never used", L->blocks.a[i]->name);
    for (size_t i = 0; i < L->targets.n && refs_ok; i++)
        if (!L->targets.a[i].used && L->targets.a[i].ok)
            lw_warn(L, L->targets.a[i].decl->name_loc, "target '%s' is never used", L->targets.a[i].name);
    for (size_t i = 0; i < L->params.n; i++)
        if (!L->params.a[i].used)
            lw_warn(L, L->params.a[i].loc, "parameter '%s' is never used", L->params.a[i].name);
    if (net_ok && !L->nerr) /* every target lowered */
        lw_plan_meta(L, &out->meta);

    DlPlan *m = &out->meta;
    m->hyper = pool_copy(pool, L->hyper.a, L->hyper.n * sizeof(DlKV));
    m->nhyper = (int)L->hyper.n;
    if (L->nerr)
        out->train = out->eval = NULL; /* the driver runs graph_verify on the graphs */
    DL_VEC_FREE(L->data.kv);
    DL_VEC_FREE(L->data.labels);
    DL_VEC_FREE(L->data.dists);
    DL_VEC_FREE(L->targets);
    DL_VEC_FREE(L->heads);
    DL_VEC_FREE(L->params);
    names_free(&L->param_index);
    names_free(&L->decl_index);
    DL_VEC_FREE(L->blocks);
    DL_VEC_FREE(L->terms);
    DL_VEC_FREE(L->hyper);
    DL_VEC_FREE(L->metrics_out);
    return L->nerr;
}
