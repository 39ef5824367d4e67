/* lower_net.c - networks and blocks: expressions, scopes, block calls, the
 * heads and the forward graph of one mode (train: batch statistics, dropout; eval: running
 * statistics, no dropout).
 *
 * Blocks are inlined at each call: a block instance gets the calling item's
 * name as its path prefix, so `c1 = cbr(x, 32)` whose body has
 * `y = conv2d(...)` makes "c1.y" and the parameter "c1.y.weight".  A nested
 * anonymous call is named after its parent and its layer ("c1.batchnorm").
 * PARAM/STATE nodes are created in evaluation order, the same in both modes.
 */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_net_int.h"

typedef struct Var {
    const char *name;
    DlSrcLoc loc;
    Value v;
    int used, is_param;
} Var;

typedef struct Scope {
    const AstDecl *decl; /* the block or the network */
    const char *prefix;  /* "" in the network, "c1" in the block instance of item c1 */
    DL_VEC(Var) vars;
    int warn;            /* report unused items (first instance, loud pass) */
    struct Scope *up;    /* the calling scope */
    NameMap index;       /* name -> index in vars (names are unique in a scope) */
    int blocks;          /* block instances this scope is nested in (the network: 0) */
} Scope;

/* How deep eval may recurse: expressions nest at most DL_AST_MAX_DEPTH (the
 * parser), but a block's body nests again inside the call, and a parameter's
 * value inside the name.  A level costs eval, call_layer and call_block about
 * 1.5 KB of stack (-O2), so this is under 1 MiB, far inside 8 MiB even in an
 * ASan build; real networks nest blocks a few levels, expressions 5. */
#define LW_MAX_EVAL_DEPTH 512
/* How deep block calls may nest (a block calling a block ...). */
#define LW_MAX_BLOCK_DEPTH 64

/* ---- small helpers ------------------------------------------------------- */

const char *lw_shape_str(const GNode *n, char *buf, size_t cap)
{
    size_t k = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < n->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? ", " : "", n->shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
    return buf;
}

void lw_output(Graph *g, GOutKind kind, const char *name, uint32_t node, int head, int target)
{
    graph_add_output(g, (GOutput){kind, dl_pool_strdup(g->pool, name), node, head, target});
}

const char *net_join(Net *N, const char *prefix, const char *name)
{
    if (!prefix || !*prefix)
        return dl_pool_strdup(N->L->pool, name);
    char *s = dl_pool_alloc(N->L->pool, strlen(prefix) + strlen(name) + 2);
    sprintf(s, "%s.%s", prefix, name);
    return s;
}

/* Append a node; a name already used gets a suffix _2, _3, ...  A tensor of
 * more than LW_MAX_NUMEL elements is an error (the first one said; the
 * shapes that follow from it are as absurd). */
uint32_t net_add(Net *N, GOp op, const uint32_t *in, int nin, const int64_t *shape, int nd, GAttr a,
                 const char *name, DlSrcLoc loc)
{
    const char *nm = graph_unique_name(N->g, name, "_");
    double numel = 1;
    for (int d = 0; d < nd; d++)
        numel *= (double)shape[d];
    if (numel > (double)LW_MAX_NUMEL && N->too_big++) {
        N->L->nerr++; /* an error all the same, said once */
    } else if (numel > (double)LW_MAX_NUMEL) {
        GNode t = {.ndim = nd};
        memcpy(t.shape, shape, (size_t)nd * sizeof *shape);
        char s[128];
        lw_error(N->L, loc, "'%s' would be %s, %.4g elements: more than the 2^40 a tensor may hold", nm,
                 lw_shape_str(&t, s, sizeof s), numel);
    }
    return graph_add(N->g, op, in, nin, shape, nd, a, nm, loc);
}

const GNode *net_node(Net *N, uint32_t i) { return &N->g->nodes[i]; }

uint32_t net_param(Net *N, const char *name, const int64_t *shape, int nd, GInitKind init, double fan_in,
                   DlSrcLoc loc)
{
    GAttr a = {.init = {init, fan_in > INT32_MAX ? INT32_MAX : (int)fan_in}}; /* past 2^31 only with a too-big weight */
    return net_add(N, OP_PARAM, NULL, 0, shape, nd, a, name, loc);
}

/* ---- expressions --------------------------------------------------------- */

static Value eval(Net *N, Scope *S, const AstExpr *e, const char *path);
static Value call_block(Net *N, Scope *S, const AstExpr *call, int bi, const char *path);

static const char *value_desc(VKind k)
{
    switch (k) {
    case V_TENSOR: return "a tensor";
    case V_NUM: return "a number";
    case V_STR: return "a string";
    case V_BOOL: return "true or false";
    case V_ERR: return "an error";
    }
    return "?";
}

static int type_ok(const Value *v, ArgType t)
{
    switch (t) {
    case AT_TENSOR: return v->kind == V_TENSOR;
    case AT_INT: return v->kind == V_NUM && lw_is_int(v->num);
    case AT_INT2: return v->kind == V_NUM && lw_is_int(v->num) && lw_is_int(v->num2);
    case AT_NUM: return v->kind == V_NUM;
    case AT_BOOL: return v->kind == V_BOOL;
    case AT_STR: return v->kind == V_STR;
    case AT_EXPR: return 1;
    }
    return 0;
}

static Value call_layer(Net *N, Scope *S, const AstExpr *e, const Layer *ly, const char *path)
{
    LayerCall c = {e, path, {{0}}, {0}};
    const AstExpr *slot[LW_MAX_ARGS];
    char what[64];
    snprintf(what, sizeof what, "%s", ly->name);
    if (lw_bind(N->L, e, what, ly->spec, ly->nspec, slot))
        return VERR;
    int bad = 0;
    for (int k = 0; k < ly->nspec; k++) {
        if (!slot[k])
            continue;
        const AstExpr *a = slot[k];
        if (ly->spec[k].type == AT_INT2 && a->kind == EX_LIST && a->nargs == 2) { /* [h, w] */
            Value h = eval(N, S, a->args[0], path), w = eval(N, S, a->args[1], path);
            c.a[k] = h.kind == V_ERR || w.kind == V_ERR ? VERR
                   : h.kind != V_NUM || w.kind != V_NUM ? (Value){V_STR, G_NONE, 0, "", 0}
                                                         : (Value){V_NUM, G_NONE, h.num, NULL, w.num};
        } else {
            c.a[k] = eval(N, S, a, a->kind == EX_CALL ? net_join(N, path, a->name) : path);
            c.a[k].num2 = c.a[k].num;
        }
        c.given[k] = 1;
        if (c.a[k].kind == V_ERR) {
            bad = 1;
        } else if (c.a[k].kind == V_NUM && (ly->spec[k].type == AT_INT || ly->spec[k].type == AT_INT2) &&
                   (!lw_is_int(c.a[k].num) || !lw_is_int(c.a[k].num2))) {
            lw_int_error(N->L, a->loc, ly->spec[k].name, ly->name,
                         lw_is_int(c.a[k].num) ? c.a[k].num2 : c.a[k].num); /* 2.5, 1e20 */
            bad = 1;
        } else if (!type_ok(&c.a[k], ly->spec[k].type)) {
            lw_error(N->L, a->loc, "'%s' of %s must be %s, not %s", ly->spec[k].name, ly->name,
                     lw_type_name(ly->spec[k].type), value_desc(c.a[k].kind));
            bad = 1;
        }
    }
    return bad ? VERR : ly->fn(N, &c);
}

static Var *lookup(Scope *S, const char *name)
{
    int i = names_get(&S->index, name);
    return i < 0 ? NULL : &S->vars.a[i];
}

static void scope_add(Scope *S, Var v)
{
    names_put(&S->index, v.name, (int)S->vars.n);
    DL_PUSH(S->vars, v);
}

static void scope_free(Scope *S)
{
    DL_VEC_FREE(S->vars);
    names_free(&S->index);
}

static void unknown_name(Net *N, Scope *S, const AstExpr *e)
{
    const char *names[128];
    int n = 0;
    for (size_t i = 0; i < S->vars.n && n < 128; i++)
        names[n++] = S->vars.a[i].name;
    char ctx[160];
    snprintf(ctx, sizeof ctx, " in %s '%s'", S->decl->kind == AST_BLOCK ? "block" : "network", S->decl->name);
    lw_unknown(N->L, e->loc, "name", e->name, names, n, ctx);
}

/* Apply binary operator e (its operands' values a and b) as the node named path. */
static Value binop(Net *N, const AstExpr *e, Value a, Value b, const char *path)
{
    Lower *L = N->L;
    if (a.kind == V_ERR || b.kind == V_ERR)
        return VERR;
    if (a.kind == V_NUM && b.kind == V_NUM) {
        double r = e->op == '+' ? a.num + b.num : e->op == '-' ? a.num - b.num
                 : e->op == '*' ? a.num * b.num : b.num != 0 ? a.num / b.num : NAN;
        if (!isfinite(r)) {
            lw_error(L, e->loc, "division by zero");
            return VERR;
        }
        return (Value){V_NUM, G_NONE, r, NULL, r};
    }
    if (a.kind == V_TENSOR && b.kind == V_TENSOR && e->op == '+') {
        const GNode *x = net_node(N, a.node), *y = net_node(N, b.node);
        int same = x->ndim == y->ndim;
        for (int d = 0; same && d < x->ndim; d++)
            same = x->shape[d] == y->shape[d];
        if (!same) {
            char s1[96], s2[96];
            lw_error(L, e->loc, "cannot add '%s' %s and '%s' %s: shapes differ", x->name,
                     lw_shape_str(x, s1, sizeof s1), y->name, lw_shape_str(y, s2, sizeof s2));
            return VERR;
        }
        return net_tensor(net_add(N, OP_ADD, (uint32_t[]){a.node, b.node}, 2, x->shape, x->ndim, (GAttr){0}, path, e->loc));
    }
    lw_error(L, e->loc, "'%c' of %s and %s is not supported in a network (tensors add with '+')", e->op,
             value_desc(a.kind), value_desc(b.kind));
    return VERR;
}

/* path.NAME<i>: "h.t3" */
static const char *numbered(Net *N, const char *path, const char *name, size_t i)
{
    char s[32];
    snprintf(s, sizeof s, "%s%zu", name, i);
    return net_join(N, path, s);
}

static Value eval_at(Net *N, Scope *S, const AstExpr *e, const char *path);

/* eval with the recursion bounded (LW_MAX_EVAL_DEPTH). */
static Value eval(Net *N, Scope *S, const AstExpr *e, const char *path)
{
    if (N->depth >= LW_MAX_EVAL_DEPTH) {
        lw_error(N->L, e->loc, "blocks and expressions nested deeper than %d levels", LW_MAX_EVAL_DEPTH);
        return VERR;
    }
    N->depth++;
    Value v = eval_at(N, S, e, path);
    N->depth--;
    return v;
}

static Value eval_at(Net *N, Scope *S, const AstExpr *e, const char *path)
{
    Lower *L = N->L;
    switch (e->kind) {
    case EX_NUM:
        return (Value){V_NUM, G_NONE, e->num, NULL, e->num};
    case EX_STR:
        return (Value){V_STR, G_NONE, 0, e->name, 0};
    case EX_IDENT: {
        Var *v = lookup(S, e->name);
        if (v) {
            v->used = 1;
            return v->v;
        }
        if (!strcmp(e->name, "true") || !strcmp(e->name, "false"))
            return (Value){V_BOOL, G_NONE, !strcmp(e->name, "true"), NULL, 0};
        const AstExpr *pv = lw_param(L, e->name);
        if (pv) {
            if (N->param_chain >= LW_MAX_PARAM_CHAIN) {
                lw_error(L, e->loc, "parameter '%s' is defined in terms of itself (or through more than %d "
                         "parameters)", e->name, LW_MAX_PARAM_CHAIN);
                return VERR;
            }
            N->param_chain++;
            Value r = eval(N, S, pv, path);
            N->param_chain--;
            return r;
        }
        unknown_name(N, S, e);
        return VERR;
    }
    case EX_FIELD:
        if (e->a->kind == EX_IDENT && L->data.decl && !strcmp(e->a->name, L->data.decl->name) &&
            !strcmp(e->name, "input")) {
            L->data.used = 1;
            return net_tensor(N->image);
        }
        lw_error(L, e->loc, "only the data input (e.g. %s.input) can be used inside a network",
                 L->data.decl ? L->data.decl->name : "faces");
        return VERR;
    case EX_CALL: {
        for (int k = 0; k < lw_nlayers; k++)
            if (!strcmp(lw_layers[k].name, e->name))
                return call_layer(N, S, e, &lw_layers[k], path);
        int b = names_get(&N->blocks, e->name);
        if (b >= 0)
            return call_block(N, S, e, b, path);
        const char *names[lw_nlayers + 64];
        int n = 0;
        for (int k = 0; k < lw_nlayers; k++)
            names[n++] = lw_layers[k].name;
        for (size_t k = 0; k < L->blocks.n && n < lw_nlayers + 64; k++)
            names[n++] = L->blocks.a[k]->name;
        lw_unknown(L, e->loc, "layer", e->name, names, n, NULL);
        return VERR;
    }
    case EX_NEG: {
        Value a = eval(N, S, e->a, path);
        if (a.kind == V_NUM)
            return (Value){V_NUM, G_NONE, -a.num, NULL, -a.num};
        if (a.kind != V_ERR)
            lw_error(L, e->loc, "'-' applies to numbers only, not %s", value_desc(a.kind));
        return VERR;
    }
    case EX_BINOP: {
        /* t0 op t1 op t2 ... op tn, left-associative: the chain of left
         * operands is walked in a loop (a sum of 20,000 layer outputs is one
         * chain).  Term i is evaluated as path.t<i> (its layers' names and
         * parameters: "h.t3.weight"), the partial result of terms 0..i is the
         * node path.sum<i>, the whole `path`: names stay short however long
         * the chain. */
        DL_VEC(const AstExpr *) ops = {0};
        const AstExpr *x = e;
        for (; x->kind == EX_BINOP; x = x->a)
            DL_PUSH(ops, x);
        size_t n = ops.n;
        Value acc = eval(N, S, x, numbered(N, path, "t", 0));
        for (size_t i = 1; i <= n; i++) {
            const AstExpr *op = ops.a[n - i];
            Value b = eval(N, S, op->b, numbered(N, path, "t", i));
            acc = binop(N, op, acc, b, i == n ? path : numbered(N, path, "sum", i));
        }
        free(ops.a);
        return acc;
    }
    case EX_LIST:
    case EX_RANGE:
        lw_error(L, e->loc, "%s is not a value in a network", lw_expr_desc(e));
        return VERR;
    }
    return VERR;
}

/* The network's return: softmax(logits) (one head) or heads(name =
 * softmax(logits), ...); each head's logits into N->heads (in L->heads
 * order).  V_TENSOR of the first head, or V_ERR. */
static Value net_return(Net *N, Scope *S, const AstExpr *e)
{
    Lower *L = N->L;
    const AstExpr *one[1] = {e};
    const AstExpr *const *v = one;
    int n = 1;
    if (e->kind == EX_CALL && !strcmp(e->name, "heads")) {
        if ((size_t)e->nkwargs != L->heads.n)
            return VERR; /* lw_net_heads reported it */
        n = e->nkwargs;
        const AstExpr **vals = dl_pool_alloc(L->pool, (size_t)n * sizeof *vals);
        for (int k = 0; k < n; k++)
            vals[k] = e->kwargs[k].value;
        v = vals;
    }
    int bad = 0;
    for (int k = 0; k < n; k++) {
        const AstExpr *s = v[k];
        if (s->kind != EX_CALL || strcmp(s->name, "softmax") || s->nargs != 1 || s->nkwargs) {
            lw_error(L, s->loc, "a head of network '%s' must be softmax(logits), the predicted label distribution",
                     S->decl->name);
            bad = 1;
            continue;
        }
        const AstExpr *z = s->args[0];
        Value r = eval(N, S, z, n == 1 ? (z->kind == EX_CALL ? z->name : "out") : L->heads.a[k].name);
        if (r.kind == V_ERR) {
            bad = 1;
            continue;
        }
        if (r.kind != V_TENSOR || (net_node(N, r.node)->ndim != 2 && net_node(N, r.node)->ndim != 4)) {
            char sh[96];
            if (r.kind == V_TENSOR)
                lw_error(L, z->loc, "softmax needs [B, K] logits (or [B, K, H, W] for one distribution per pixel) but "
                         "'%s' is %s", net_node(N, r.node)->name, lw_shape_str(net_node(N, r.node), sh, sizeof sh));
            else
                lw_error(L, z->loc, "softmax needs [B, K] logits, not %s", value_desc(r.kind));
            bad = 1;
            continue;
        }
        const GNode *zn = net_node(N, r.node);
        L->heads.a[k].rows = 1;
        if (zn->ndim == 4) { /* a softmax over the class axis per pixel: [B,K,H,W] as [B*H*W, K] rows */
            int64_t rs[2] = {zn->shape[0] * zn->shape[2] * zn->shape[3], zn->shape[1]};
            L->heads.a[k].rows = zn->shape[2] * zn->shape[3];
            r.node = net_add(N, OP_NCHW_ROWS, &r.node, 1, rs, 2, (GAttr){0}, net_join(N, zn->name, "rows"), z->loc);
        }
        N->heads[k] = r.node;
    }
    return bad ? VERR : net_tensor(N->heads[0]);
}

/* Evaluate a body's items; the return expression's value (V_ERR if none).
 * is_net: the return is the network's heads (net_return). */
static Value body(Net *N, Scope *S, int is_net, DlSrcLoc *ret_loc)
{
    Lower *L = N->L;
    const AstDecl *d = S->decl;
    Value ret = VERR;
    int have_ret = 0, nerr0 = L->nerr;
    for (int i = 0; i < d->nitems; i++) {
        const AstItem *it = &d->items[i];
        if (have_ret) {
            lw_error(L, it->loc, "'%s' follows the return of %s '%s' and is never computed",
                     it->name ? it->name : "return", is_net ? "network" : "block", d->name);
            break;
        }
        if (!it->name) {
            have_ret = 1;
            *ret_loc = it->value->loc;
            const AstExpr *e = it->value;
            ret = is_net ? net_return(N, S, e) : eval(N, S, e, S->prefix);
            continue;
        }
        Var *prev = lookup(S, it->name);
        if (prev) {
            lw_error(L, it->loc, "duplicate name '%s' in %s '%s'", it->name, is_net ? "network" : "block", d->name);
            lw_note(L, prev->loc, "'%s' was first defined here", it->name);
            continue;
        }
        Var v = {it->name, it->loc, eval(N, S, it->value, net_join(N, S->prefix, it->name)), 0, 0};
        scope_add(S, v);
    }
    if (!have_ret)
        lw_error(L, d->end_loc.len ? d->end_loc : d->loc, "%s '%s' has no return", is_net ? "network" : "block", d->name);
    if (S->warn && L->nerr == nerr0) /* after an error here, 'unused' is usually its echo */
        for (size_t i = 0; i < S->vars.n; i++)
            if (!S->vars.a[i].used) {
                if (S->vars.a[i].is_param)
                    lw_warn(L, S->vars.a[i].loc, "parameter '%s' of %s '%s' is never used", S->vars.a[i].name,
                            is_net ? "network" : "block", d->name);
                else
                    lw_warn(L, S->vars.a[i].loc, "'%s' is computed but never used", S->vars.a[i].name);
            }
    return ret;
}

static Value call_block(Net *N, Scope *S, const AstExpr *call, int bi, const char *path)
{
    Lower *L = N->L;
    const AstDecl *b = L->blocks.a[bi];
    L->block_used[bi] = 1;
    if (S->blocks >= LW_MAX_BLOCK_DEPTH) {
        lw_error(L, call->loc, "blocks nested deeper than %d calls (block '%s' calls '%s')", LW_MAX_BLOCK_DEPTH,
                 S->decl->name, b->name);
        return VERR;
    }
    for (Scope *s = S; s; s = s->up)
        if (s->decl == b) {
            DlBuf chain = {0};
            dl_buf_printf(&chain, "%s", b->name);
            for (Scope *t = S; t && t != s->up; t = t->up)
                if (t->decl->kind == AST_BLOCK)
                    dl_buf_printf(&chain, " <- %s", t->decl->name);
            lw_error(L, call->loc, "recursion: block '%s' calls itself (%s)", b->name, chain.s);
            dl_buf_free(&chain);
            return VERR;
        }
    int given = call->nargs + call->nkwargs;
    if (given != b->nparams) {
        DlBuf ps = {0};
        for (int p = 0; p < b->nparams; p++)
            dl_buf_printf(&ps, "%s%s", p ? ", " : "", b->params[p].name);
        lw_error(L, call->loc, "block '%s' takes %d argument%s (%s) but %d %s given", b->name, b->nparams,
                 b->nparams == 1 ? "" : "s", ps.s ? ps.s : "", given, given == 1 ? "was" : "were");
        lw_note(L, b->name_loc, "'%s' is declared here", b->name);
        dl_buf_free(&ps);
        return VERR;
    }
    Scope in = {b, path, {0}, !L->quiet && !L->block_seen[bi], S, {0}, S->blocks + 1};
    int bad = 0, np = b->nparams;
    const AstExpr **arg = dl_xcalloc((size_t)np + 1, sizeof *arg);
    for (int p = 0; p < np; p++)
        arg[p] = p < call->nargs ? call->args[p] : NULL;
    NameMap pidx = {0}; /* parameter name -> position, for the keyword arguments */
    for (int p = 0; p < np && call->nkwargs; p++)
        names_put(&pidx, b->params[p].name, p);
    for (int k = 0; k < call->nkwargs; k++) {
        int p = names_get(&pidx, call->kwargs[k].key);
        if (p < 0 || arg[p]) {
            lw_error(L, call->kwargs[k].loc, p < 0 ? "block '%s' has no parameter '%s'" : "block '%s' gets '%s' twice",
                     b->name, call->kwargs[k].key);
            bad = 1;
            continue;
        }
        arg[p] = call->kwargs[k].value;
    }
    names_free(&pidx);
    for (int p = 0; p < np && !bad; p++) {
        Value v = arg[p] ? eval(N, S, arg[p], arg[p]->kind == EX_CALL ? net_join(N, path, arg[p]->name) : path) : VERR;
        if (v.kind == V_ERR)
            bad = 1;
        Var var = {b->params[p].name, b->params[p].loc, v, 0, 1};
        scope_add(&in, var);
    }
    free(arg);
    Value r = VERR;
    if (!bad) {
        DlSrcLoc rl;
        L->block_seen[bi] = 1;
        r = body(N, &in, 0, &rl);
    }
    scope_free(&in);
    return r;
}

/* ---- the network --------------------------------------------------------- */

/* The bin values of target t as a [A,K] constant of g (row-major bins, first axis slowest). */
static uint32_t bin_values(Net *N, const TargetInfo *t)
{
    int64_t K = t->K, A = t->naxes;
    float *v = dl_pool_alloc(N->L->pool, (size_t)(A * K) * sizeof *v);
    for (int a = 0; a < A; a++) {
        int64_t stride = 1;
        for (int b = a + 1; b < A; b++)
            stride *= t->nbins[b];
        for (int64_t k = 0; k < K; k++)
            v[a * K + k] = t->bins[a][(k / stride) % t->nbins[a]];
    }
    return net_add(N, OP_CONST, NULL, 0, (int64_t[]){A, K}, 2, (GAttr){.cst = {v}}, net_join(N, t->name, "bin_values"), t->loc);
}

/* Standardisation of feature inputs: (x - mean) / sqrt(var + eps) per
 * feature, with mean and variance over the training split written by the
 * runtime into a DATA_STATS state [2,d] (as batch norm's inference). */
static uint32_t standardize(Net *N, uint32_t x)
{
    const DataInfo *D = &N->L->data;
    int64_t d = D->C;
    DlSrcLoc loc = D->decl->name_loc;
    float *ones = dl_pool_alloc(N->L->pool, (size_t)d * sizeof *ones), *zeros = dl_pool_alloc(N->L->pool, (size_t)d * sizeof *zeros);
    for (int64_t k = 0; k < d; k++)
        ones[k] = 1, zeros[k] = 0;
    uint32_t st = net_add(N, OP_STATE, NULL, 0, (int64_t[]){2, d}, 2, (GAttr){.state = {1}}, net_join(N, D->decl->name, "input.stats"), loc);
    uint32_t g1 = net_add(N, OP_CONST, NULL, 0, &d, 1, (GAttr){.cst = {ones}}, net_join(N, D->decl->name, "input.one"), loc);
    uint32_t b0 = net_add(N, OP_CONST, NULL, 0, &d, 1, (GAttr){.cst = {zeros}}, net_join(N, D->decl->name, "input.zero"), loc);
    GAttr a = {.bn = {1e-12f, 0, 0}};
    return net_add(N, OP_BN_INFER, (uint32_t[]){x, st, g1, b0}, 4, net_node(N, x)->shape, 2, a,
               net_join(N, D->decl->name, "input.standardized"), loc);
}

/* A [B,K] input for each target a KL term reads, once each; a target whose
 * width is not known yet (a ce target before its head is lowered) waits. */
static void target_inputs(Net *N, NetOut *out)
{
    Lower *L = N->L;
    for (size_t i = 0; i < L->terms.n; i++) {
        int t = L->terms.a[i].target;
        const TargetInfo *ti = &L->targets.a[t];
        if (L->terms.a[i].kind == LOSS_KL && out->target_in[t] == G_NONE && ti->K > 0)
            out->target_in[t] = net_add(N, OP_INPUT, NULL, 0,
                                    (int64_t[]){N->g->batch * lw_target_rows(ti), ti->K}, 2,
                                    (GAttr){.input = {IN_TARGET, t, 0, {0}}}, ti->name, ti->loc);
    }
}

static Graph *net_graph(Lower *L, int train, int batch, int ranks, NetOut *out);
Graph *lw_network(Lower *L, int train, int batch, NetOut *out) { return net_graph(L, train, batch, 1, out); }
Graph *lw_network_ranks(Lower *L, int batch, int ranks, NetOut *out) { return net_graph(L, 1, batch, ranks, out); }

static Graph *net_graph(Lower *L, int train, int batch, int ranks, NetOut *out)
{
    const AstDecl *nd = L->net;
    const DataInfo *D = &L->data;
    Graph *g = graph_new(L->pool, batch);
    g->ranks = ranks;
    Net N0 = {.L = L, .g = g, .train = train, .scalars = G_NONE, .image = G_NONE}, *N = &N0;
    size_t T = L->targets.n, H = L->heads.n;
    memset(out, 0, sizeof *out);
    out->target_in = dl_pool_alloc(L->pool, (T + 1) * sizeof *out->target_in);
    out->expect = dl_pool_alloc(L->pool, (H * T + 1) * sizeof *out->expect);
    for (size_t i = 0; i < T; i++)
        out->target_in[i] = G_NONE;
    for (size_t i = 0; i < H * T; i++)
        out->expect[i] = G_NONE;
    g->weight_decay = (float)L->weight_decay;
    int64_t B = batch;
    DlSrcLoc dloc = D->decl->name_loc;

    if (D->features)
        out->image = net_add(N, OP_INPUT, NULL, 0, (int64_t[]){B, D->C}, 2, (GAttr){.input = {IN_IMAGE, -1, 0, {0}}},
                         net_join(N, D->decl->name, "input"), dloc);
    else
        out->image = net_add(N, OP_INPUT, NULL, 0, (int64_t[]){B, D->C, D->H, D->W}, 4,
                         (GAttr){.input = {IN_IMAGE, -1, 0, {0}}}, net_join(N, D->decl->name, "input"), dloc);
    out->scalars = G_NONE;
    if (train) { /* the loss's inputs: each target it reads, then each list of labels */
        target_inputs(N, out);
        for (size_t i = 0; i < L->terms.n; i++)
            if (L->terms.a[i].kind == LOSS_L1)
                lw_label_input(L, g, L->terms.a[i].cols, L->terms.a[i].ncols);
        out->scalars = N->scalars = net_add(N, OP_SCALARS, NULL, 0, (int64_t[]){4}, 1, (GAttr){0}, "scalars",
                                        (DlSrcLoc){0, 0, 0});
    }
    N->image = D->features && D->standardize ? standardize(N, out->image) : out->image;

    Scope S = {nd, "", {0}, !L->quiet, NULL, {0}, 0};
    for (size_t b = L->blocks.n; b-- > 0;) /* the first of two same-named blocks (an error) wins, as before */
        names_put(&N->blocks, L->blocks.a[b]->name, (int)b);
    int bad = 0;
    for (int p = 0; p < nd->nparams; p++) {
        const AstParam *pa = &nd->params[p];
        const AstExpr *v = pa->value;
        if (!v || v->kind != EX_FIELD || v->a->kind != EX_IDENT || strcmp(v->a->name, D->decl->name) ||
            strcmp(v->name, "input")) {
            lw_error(L, v ? v->loc : pa->loc, "network parameter '%s' must be bound to the data input, e.g. %s = %s.input",
                     pa->name, pa->name, D->decl->name);
            bad = 1;
            continue;
        }
        L->data.used = 1;
        Var var = {pa->name, pa->loc, net_tensor(N->image), 0, 1};
        scope_add(&S, var);
    }
    DlSrcLoc rl = nd->loc;
    Value r = bad || !H ? VERR : body(N, &S, 1, &rl);
    scope_free(&S);
    names_free(&N->blocks);
    if (r.kind == V_ERR)
        return NULL;
    /* read-out per head: p = softmax(z) = exp(log_softmax(z)) */
    out->nheads = (int)H;
    for (size_t h = 0; h < H; h++) {
        const char *hn = H == 1 ? nd->name : net_join(N, nd->name, L->heads.a[h].name);
        int64_t K = net_node(N, N->heads[h])->shape[1];
        L->heads.a[h].K = K;
        int64_t BK[2] = {B * L->heads.a[h].rows, K};
        out->logits[h] = N->heads[h];
        out->logsm[h] = net_add(N, OP_LOG_SOFTMAX, &out->logits[h], 1, BK, 2, (GAttr){0}, net_join(N, hn, "log_probs"),
                            L->heads.a[h].loc);
        out->probs[h] = net_add(N, OP_EXP, &out->logsm[h], 1, BK, 2, (GAttr){0}, net_join(N, hn, "probs"), L->heads.a[h].loc);
    }
    for (size_t t = 0; t < T; t++) { /* a ce target spans its head's classes 0..K-1 */
        TargetInfo *ti = &L->targets.a[t];
        if (ti->class_head < 0 || ti->K > 0)
            continue;
        ti->nbins[0] = (int)L->heads.a[ti->class_head].K;
        ti->bins[0] = dl_pool_alloc(L->pool, (size_t)ti->nbins[0] * sizeof(float));
        for (int k = 0; k < ti->nbins[0]; k++)
            ti->bins[0][k] = (float)k;
        ti->K = ti->nbins[0];
    }
    if (train && lw_check_widths(L))
        return NULL;
    if (train) /* the ce targets, now that their heads have widths */
        target_inputs(N, out);
    /* DLDL-v2 read-out: e[b,a] = sum_k p[b,k] v[a,k], for each (head, target) the loss or metrics read */
    uint8_t *used = dl_pool_alloc(L->pool, H * T + 1);
    memset(used, 0, H * T + 1);
    lw_expectations_used(L, used);
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < T; t++) {
            if (!used[h * T + t])
                continue;
            const TargetInfo *ti = &L->targets.a[t];
            uint32_t cv = bin_values(N, ti);
            const char *en = H == 1 && T == 1 ? net_join(N, nd->name, "expect")
                           : net_join(N, net_join(N, nd->name, L->heads.a[h].name), net_join(N, "expect", ti->name));
            out->expect[h * T + t] = net_add(N, OP_EXPECT, (uint32_t[]){out->probs[h], cv}, 2,
                                         (int64_t[]){B * L->heads.a[h].rows, ti->naxes}, 2, (GAttr){0}, en,
                                         L->heads.a[h].loc);
        }
    for (size_t h = 0; h < H; h++) {
        char nm[160];
        snprintf(nm, sizeof nm, H == 1 ? "probs" : "probs.%s", L->heads.a[h].name);
        lw_output(g, GOUT_PROBS, nm, out->probs[h], (int)h, -1);
    }
    for (size_t h = 0; h < H; h++)
        for (size_t t = 0; t < T; t++) {
            if (out->expect[h * T + t] == G_NONE)
                continue;
            char nm[160];
            if (H == 1 && T == 1)
                snprintf(nm, sizeof nm, "expect");
            else
                snprintf(nm, sizeof nm, "expect.%s.%s", L->heads.a[h].name, L->targets.a[t].name);
            lw_output(g, GOUT_EXPECT, nm, out->expect[h * T + t], (int)h, (int)t);
        }
    out->ok = 1;
    return g;
}
