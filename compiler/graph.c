/* graph.c - the op graph: op tables, construction, the verifier and the
 * --emit=graph text (compiler/graph.h).
 *
 * The verifier is the contract every pass is held to: arity from ops.def,
 * topological order (inputs have smaller indices), and per-op shape rules
 * written from ops.def's one-line maths.  graph_dump is pinned by golden
 * files, so its output depends only on the graph (no pointers, no locale).
 */
#include <inttypes.h>
#include <string.h>

#include "graph.h"

const char *const graph_op_name[OP_COUNT] = {
#define OP(e, name, nin, kind) [OP_##e] = name,
#include "ops.def"
#undef OP
};
const int graph_op_ninputs[OP_COUNT] = {
#define OP(e, name, nin, kind) [OP_##e] = nin,
#include "ops.def"
#undef OP
};
const GOpKind graph_op_kind[OP_COUNT] = {
#define OP(e, name, nin, kind) [OP_##e] = kind,
#include "ops.def"
#undef OP
};

Graph *graph_new(DlPool *pool, int batch)
{
    Graph *g = dl_pool_alloc(pool, sizeof *g);
    g->pool = pool;
    g->names.pool = g->suffix.pool = pool;
    g->batch = batch;
    g->ranks = 1;
    g->optimizer = OP_SGD;
    return g;
}

uint32_t graph_find(const Graph *g, const char *name)
{
    int i = names_get(&g->names, name);
    return i < 0 ? G_NONE : (uint32_t)i;
}

const char *graph_unique_name(Graph *g, const char *base, const char *sep)
{
    if (graph_find(g, base) == G_NONE)
        return dl_pool_strdup(g->pool, base);
    int k = names_get(&g->suffix, base);
    if (k < 2)
        k = 2;
    DlBuf b = {0};
    for (;; k++) {
        b.n = 0;
        dl_buf_printf(&b, "%s%s%d", base, sep, k);
        if (graph_find(g, b.s) == G_NONE)
            break;
    }
    const char *s = dl_pool_strdup(g->pool, b.s);
    dl_buf_free(&b);
    const char *key = names_get(&g->suffix, base) < 0 ? dl_pool_strdup(g->pool, base) : base;
    names_put(&g->suffix, key, k + 1); /* names are never removed: base<sep>2..k stay taken */
    return s;
}

void graph_add_output(Graph *g, GOutput o)
{
    if (g->nouts == g->outcap) {
        int cap = g->outcap ? 2 * g->outcap : 8;
        GOutput *a = dl_pool_alloc(g->pool, (size_t)cap * sizeof *a);
        if (g->nouts)
            memcpy(a, g->outs, (size_t)g->nouts * sizeof *a);
        g->outs = a;
        g->outcap = cap;
    }
    g->outs[g->nouts++] = o;
}

/* The node array lives in the pool: growing copies it into a chunk twice the
 * size (the old chunk dies with the pool; total waste < the final size). */
uint32_t graph_add(Graph *g, GOp op, const uint32_t *in, int nin,
                   const int64_t *shape, int ndim, GAttr attr, const char *name, DlSrcLoc loc)
{
    if (g->n == g->cap) {
        uint32_t cap = g->cap ? 2 * g->cap : 64;
        GNode *a = dl_pool_alloc(g->pool, (size_t)cap * sizeof *a);
        if (g->n)
            memcpy(a, g->nodes, (size_t)g->n * sizeof *a);
        g->nodes = a;
        g->cap = cap;
    }
    GNode *n = &g->nodes[g->n];
    memset(n, 0, sizeof *n);
    n->op = op;
    n->nin = nin < 0 ? 0 : nin > G_MAX_IN ? G_MAX_IN : nin;
    for (int i = 0; i < n->nin; i++)
        n->in[i] = in[i];
    n->ndim = ndim < 0 ? 0 : ndim > G_MAX_DIMS ? G_MAX_DIMS : ndim;
    for (int i = 0; i < n->ndim; i++)
        n->shape[i] = shape[i];
    n->attr = attr;
    n->name = name ? dl_pool_strdup(g->pool, name) : NULL;
    if (n->name)
        names_put(&g->names, n->name, (int)g->n);
    n->loc = loc;
    n->param = G_NONE;
    n->inplace = G_NONE;
    return g->n++;
}

int64_t graph_numel(const GNode *n)
{
    int64_t e = 1;
    for (int i = 0; i < n->ndim; i++)
        e *= n->shape[i];
    return e;
}

/* ---- verifier ------------------------------------------------------------ */

typedef struct Verif {
    const Graph *g;
    const char *pass;
    DlDiag *diag;
    int nerr;
    uint32_t at;
} Verif;

static void shape_str(const GNode *n, char *buf, size_t cap)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, cap - k, "[");
    for (int i = 0; i < n->ndim && k < cap; i++)
        k += (size_t)snprintf(buf + k, cap - k, "%s%" PRId64, i ? "," : "", n->shape[i]);
    if (k < cap)
        snprintf(buf + k, cap - k, "]");
}

__attribute__((format(printf, 2, 3)))
static void vfail(Verif *v, const char *fmt, ...)
{
    const GNode *n = &v->g->nodes[v->at];
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dl_error(v->diag, (DlSrcLoc){0, 0, 0}, "internal: graph invalid after %s: %%%u %s '%s': %s",
             v->pass ? v->pass : "?", v->at, graph_op_name[n->op], n->name ? n->name : "", msg);
    v->nerr++;
}

static const GNode *IN(const Verif *v, int i) { return &v->g->nodes[v->g->nodes[v->at].in[i]]; }

static int same_shape(const GNode *a, const GNode *b)
{
    if (a->ndim != b->ndim)
        return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i])
            return 0;
    return 1;
}

/* y has x's shape */
static void want_same(Verif *v, const GNode *y, const GNode *x, const char *what)
{
    if (!same_shape(y, x)) {
        char a[96], b[96];
        shape_str(y, a, sizeof a);
        shape_str(x, b, sizeof b);
        vfail(v, "output %s differs from %s %s", a, what, b);
    }
}

static void want_dims(Verif *v, const GNode *x, int lo, int hi, const char *what)
{
    if (x->ndim < lo || x->ndim > hi)
        vfail(v, "%s has %d dims, expected %d..%d", what, x->ndim, lo, hi);
}

static void want_shape(Verif *v, const GNode *x, const char *what, int nd, const int64_t *s)
{
    int ok = x->ndim == nd;
    for (int i = 0; ok && i < nd; i++)
        ok = x->shape[i] == s[i];
    if (!ok) {
        char a[96];
        GNode t = {.ndim = nd};
        for (int i = 0; i < nd; i++)
            t.shape[i] = s[i];
        char b[96];
        shape_str(x, a, sizeof a);
        shape_str(&t, b, sizeof b);
        vfail(v, "%s is %s, expected %s", what, a, b);
    }
}

/* Broadcast rule of OPK_ELEM (ops.def): an input of y's shape, [C] or [2,C]
 * along dim 1, [1] everywhere, [B] along dim 0. */
static void want_bcast(Verif *v, const GNode *y, const GNode *x, const char *what)
{
    if (same_shape(x, y))
        return;
    if (x->ndim == 1 && x->shape[0] == 1)
        return;
    if (y->ndim >= 2 && x->ndim == 1 && (x->shape[0] == y->shape[1] || x->shape[0] == y->shape[0]))
        return;
    if (y->ndim >= 2 && x->ndim == 2 && x->shape[0] == 2 && x->shape[1] == y->shape[1])
        return;
    char a[96], b[96];
    shape_str(x, a, sizeof a);
    shape_str(y, b, sizeof b);
    vfail(v, "%s %s does not broadcast to %s", what, a, b);
}

static int64_t pool_out(int64_t n, int64_t k, int s, int p) { return s > 0 ? (n + 2 * p - k) / s + 1 : -1; }
#define SPAN_H(y) graph_conv_span((y)->attr.conv.kh, (y)->attr.conv.dilate)
#define SPAN_W(y) graph_conv_span((y)->attr.conv.kw, (y)->attr.conv.dilate)

static void verify_node(Verif *v)
{
    const Graph *g = v->g;
    const GNode *y = &g->nodes[v->at];
    int64_t s[4];
    switch (y->op) {
    case OP_INPUT:
        want_dims(v, y, 2, 4, "input");
        break;
    case OP_SCALARS:
        want_shape(v, y, "scalars", 1, (int64_t[]){4});
        break;
    case OP_PARAM:
    case OP_STATE:
    case OP_CONST:
        want_dims(v, y, 1, 4, "tensor");
        if (y->op == OP_CONST && !y->attr.cst.data)
            vfail(v, "const without data");
        break;
    case OP_CONV2D: {
        const GNode *x = IN(v, 0), *w = IN(v, 1);
        want_dims(v, x, 4, 4, "x");
        want_dims(v, w, 4, 4, "w");
        if (x->ndim != 4 || w->ndim != 4)
            break;
        if (w->shape[1] != x->shape[1] || w->shape[2] != y->attr.conv.kh || w->shape[3] != y->attr.conv.kw)
            vfail(v, "weight does not match input channels / kernel");
        s[0] = x->shape[0], s[1] = w->shape[0];
        s[2] = pool_out(x->shape[2], SPAN_H(y), y->attr.conv.stride, y->attr.conv.pad);
        s[3] = pool_out(x->shape[3], SPAN_W(y), y->attr.conv.stride, y->attr.conv.pad);
        want_shape(v, y, "output", 4, s);
        break;
    }
    case OP_CONV2D_BWD_DATA: {
        const GNode *dy = IN(v, 0), *w = IN(v, 1);
        want_dims(v, y, 4, 4, "dx");
        if (dy->ndim != 4 || w->ndim != 4 || y->ndim != 4)
            break;
        if (dy->shape[1] != w->shape[0] || y->shape[1] != w->shape[1] || dy->shape[0] != y->shape[0])
            vfail(v, "dy, w and dx channels disagree");
        if (pool_out(y->shape[2], SPAN_H(y), y->attr.conv.stride, y->attr.conv.pad) != dy->shape[2] ||
            pool_out(y->shape[3], SPAN_W(y), y->attr.conv.stride, y->attr.conv.pad) != dy->shape[3])
            vfail(v, "dx spatial size does not give dy's");
        break;
    }
    case OP_CONV2D_BWD_FILTER: {
        const GNode *x = IN(v, 0), *dy = IN(v, 1);
        want_dims(v, x, 4, 4, "x");
        want_dims(v, dy, 4, 4, "dy");
        if (x->ndim != 4 || dy->ndim != 4)
            break;
        s[0] = dy->shape[1], s[1] = x->shape[1], s[2] = y->attr.conv.kh, s[3] = y->attr.conv.kw;
        want_shape(v, y, "dw", 4, s);
        if (pool_out(x->shape[2], SPAN_H(y), y->attr.conv.stride, y->attr.conv.pad) != dy->shape[2] ||
            pool_out(x->shape[3], SPAN_W(y), y->attr.conv.stride, y->attr.conv.pad) != dy->shape[3])
            vfail(v, "x and dy spatial sizes disagree");
        break;
    }
    case OP_CONV_TRANSPOSE2D: {
        const GNode *x = IN(v, 0), *w = IN(v, 1);
        want_dims(v, x, 4, 4, "x");
        want_dims(v, w, 4, 4, "w");
        if (x->ndim != 4 || w->ndim != 4)
            break;
        if (w->shape[0] != x->shape[1] || w->shape[2] != y->attr.conv.kh || w->shape[3] != y->attr.conv.kw)
            vfail(v, "weight [Cin,Cout,kh,kw] does not match input channels / kernel");
        s[0] = x->shape[0], s[1] = w->shape[1];
        s[2] = (x->shape[2] - 1) * y->attr.conv.stride - 2 * y->attr.conv.pad + y->attr.conv.kh;
        s[3] = (x->shape[3] - 1) * y->attr.conv.stride - 2 * y->attr.conv.pad + y->attr.conv.kw;
        want_shape(v, y, "output", 4, s);
        /* its library step is a convolution's backward data: y must give x back */
        if (y->ndim == 4 && (pool_out(y->shape[2], y->attr.conv.kh, y->attr.conv.stride, y->attr.conv.pad) != x->shape[2] ||
                             pool_out(y->shape[3], y->attr.conv.kw, y->attr.conv.stride, y->attr.conv.pad) != x->shape[3]))
            vfail(v, "output spatial size does not give x's by convolution");
        break;
    }
    case OP_MATMUL: {
        const GNode *a = IN(v, 0), *b = IN(v, 1);
        want_dims(v, a, 2, 2, "a");
        want_dims(v, b, 2, 2, "b");
        if (a->ndim != 2 || b->ndim != 2)
            break;
        int64_t m = y->attr.mm.ta ? a->shape[1] : a->shape[0];
        int64_t ka = y->attr.mm.ta ? a->shape[0] : a->shape[1];
        int64_t kb = y->attr.mm.tb ? b->shape[1] : b->shape[0];
        int64_t nn = y->attr.mm.tb ? b->shape[0] : b->shape[1];
        if (ka != kb)
            vfail(v, "inner dimensions %" PRId64 " and %" PRId64 " differ", ka, kb);
        want_shape(v, y, "output", 2, (int64_t[]){m, nn});
        break;
    }
    case OP_BIAS_ADD:
        want_same(v, y, IN(v, 0), "x");
        if (y->ndim < 2)
            vfail(v, "bias_add needs [B,C,...]");
        else
            want_shape(v, IN(v, 1), "bias", 1, &y->shape[1]);
        break;
    case OP_ADD:
    case OP_MUL:
        want_bcast(v, y, IN(v, 0), "a");
        want_bcast(v, y, IN(v, 1), "b");
        break;
    case OP_SCALE:
    case OP_EXP:
    case OP_RELU:
    case OP_DROPOUT:
    case OP_DROPOUT_BWD:
        want_same(v, y, IN(v, 0), "input");
        if (y->op == OP_DROPOUT || y->op == OP_DROPOUT_BWD) {
            if (IN(v, 1)->op != OP_SCALARS)
                vfail(v, "second input is not the scalars");
            if (!(y->attr.dropout.p >= 0 && y->attr.dropout.p < 1))
                vfail(v, "dropout p %g outside [0,1)", y->attr.dropout.p);
        }
        break;
    case OP_FILL:
        want_dims(v, y, 1, 4, "fill");
        break;
    case OP_RELU_BWD:
        want_same(v, y, IN(v, 0), "dy");
        want_same(v, y, IN(v, 1), "y");
        break;
    case OP_BN_APPLY:
    case OP_BN_INFER:
    case OP_BN_BWD_DATA:
        want_same(v, y, IN(v, 0), y->op == OP_BN_BWD_DATA ? "dy" : "x");
        want_dims(v, y, 2, 4, "x");
        if (y->ndim < 2)
            break;
        if (y->op == OP_BN_BWD_DATA) {
            want_same(v, y, IN(v, 1), "x");
            want_shape(v, IN(v, 2), "stats", 2, (int64_t[]){2, y->shape[1]});
            want_shape(v, IN(v, 3), "gamma", 1, &y->shape[1]);
            want_shape(v, IN(v, 4), "bstats", 2, (int64_t[]){2, y->shape[1]});
        } else {
            want_shape(v, IN(v, 1), "stats", 2, (int64_t[]){2, y->shape[1]});
            want_shape(v, IN(v, 2), "gamma", 1, &y->shape[1]);
            want_shape(v, IN(v, 3), "beta", 1, &y->shape[1]);
        }
        if (!(y->attr.bn.eps > 0))
            vfail(v, "eps must be > 0");
        break;
    case OP_BN_RUNNING:
        want_same(v, y, IN(v, 1), "running");
        want_same(v, IN(v, 0), IN(v, 1), "running");
        if (y->inplace != y->in[1])
            vfail(v, "bn_running must be in place on its running input");
        if (IN(v, 1)->op != OP_STATE)
            vfail(v, "running statistics are not a state node");
        break;
    case OP_SELECT: {
        const GNode *x = IN(v, 0);
        want_dims(v, x, 2, 2, "x");
        if (x->ndim == 2) {
            want_shape(v, y, "output", 1, &x->shape[1]);
            if (y->attr.i < 0 || y->attr.i >= x->shape[0])
                vfail(v, "row %d out of range", y->attr.i);
        }
        break;
    }
    case OP_GAP_BWD: {
        const GNode *dy = IN(v, 0);
        want_dims(v, y, 4, 4, "dx");
        if (y->ndim == 4)
            want_shape(v, dy, "dy", 2, y->shape);
        break;
    }
    case OP_MEAN_BWD:
        want_shape(v, IN(v, 0), "dy", 1, (int64_t[]){1});
        want_dims(v, y, 1, 1, "dx");
        break;
    case OP_ABSDIFF_BWD:
        want_dims(v, y, 2, 2, "de");
        want_same(v, y, IN(v, 1), "e");
        want_same(v, y, IN(v, 2), "labels");
        if (y->ndim == 2)
            want_shape(v, IN(v, 0), "dy", 1, y->shape);
        break;
    case OP_KL_BWD:
        want_dims(v, y, 2, 2, "dlogq");
        want_same(v, y, IN(v, 1), "y");
        if (y->ndim == 2)
            want_shape(v, IN(v, 0), "dy", 1, y->shape);
        break;
    case OP_CHAN_SUM: {
        const GNode *x = IN(v, 0);
        want_dims(v, x, 2, 4, "x");
        if (x->ndim >= 2)
            want_shape(v, y, "output", 1, &x->shape[1]);
        break;
    }
    case OP_BN_STATS:
    case OP_BN_BWD_STATS: {
        const GNode *x = IN(v, y->op == OP_BN_STATS ? 0 : 1);
        want_dims(v, x, 2, 4, "x");
        if (x->ndim >= 2)
            want_shape(v, y, "output", 2, (int64_t[]){2, x->shape[1]});
        if (y->op == OP_BN_BWD_STATS) {
            want_same(v, IN(v, 0), x, "x");
            if (x->ndim >= 2)
                want_shape(v, IN(v, 2), "stats", 2, (int64_t[]){2, x->shape[1]});
        }
        break;
    }
    case OP_LOG_SOFTMAX:
        want_dims(v, y, 2, 2, "output");
        want_same(v, y, IN(v, 0), "z");
        break;
    case OP_LOG_SOFTMAX_BWD:
        want_dims(v, y, 2, 2, "output");
        want_same(v, y, IN(v, 0), "g");
        want_same(v, y, IN(v, 1), "y");
        break;
    case OP_KL_ROWS:
    case OP_ABSDIFF_ROWS:
        want_same(v, IN(v, 0), IN(v, 1), "second input");
        want_dims(v, IN(v, 0), 2, 2, "first input");
        if (IN(v, 0)->ndim == 2)
            want_shape(v, y, "output", 1, IN(v, 0)->shape);
        break;
    case OP_EXPECT:
    case OP_EXPECT_BWD: {
        const GNode *a = IN(v, 0), *bv = IN(v, 1);
        want_dims(v, a, 2, 2, "first input");
        want_dims(v, bv, 2, 2, "bin values");
        if (a->ndim != 2 || bv->ndim != 2)
            break;
        if (y->op == OP_EXPECT) {
            if (a->shape[1] != bv->shape[1])
                vfail(v, "p has %" PRId64 " bins, v has %" PRId64, a->shape[1], bv->shape[1]);
            want_shape(v, y, "output", 2, (int64_t[]){a->shape[0], bv->shape[0]});
        } else {
            if (a->shape[1] != bv->shape[0])
                vfail(v, "g has %" PRId64 " axes, v has %" PRId64, a->shape[1], bv->shape[0]);
            want_shape(v, y, "output", 2, (int64_t[]){a->shape[0], bv->shape[1]});
        }
        break;
    }
    case OP_MAXPOOL:
    case OP_AVGPOOL: {
        const GNode *x = IN(v, 0);
        want_dims(v, x, 4, 4, "x");
        if (x->ndim != 4)
            break;
        s[0] = x->shape[0], s[1] = x->shape[1];
        s[2] = pool_out(x->shape[2], y->attr.pool.size, y->attr.pool.stride, y->attr.pool.pad);
        s[3] = pool_out(x->shape[3], y->attr.pool.size, y->attr.pool.stride, y->attr.pool.pad);
        want_shape(v, y, "output", 4, s);
        break;
    }
    case OP_MAXPOOL_BWD:
    case OP_AVGPOOL_BWD: {
        const GNode *dy = IN(v, 0);
        want_dims(v, y, 4, 4, "dx");
        if (y->op == OP_MAXPOOL_BWD)
            want_same(v, y, IN(v, 1), "x");
        if (y->ndim != 4 || dy->ndim != 4)
            break;
        s[0] = y->shape[0], s[1] = y->shape[1];
        s[2] = pool_out(y->shape[2], y->attr.pool.size, y->attr.pool.stride, y->attr.pool.pad);
        s[3] = pool_out(y->shape[3], y->attr.pool.size, y->attr.pool.stride, y->attr.pool.pad);
        want_shape(v, dy, "dy", 4, s);
        break;
    }
    case OP_GAP: {
        const GNode *x = IN(v, 0);
        want_dims(v, x, 4, 4, "x");
        if (x->ndim == 4)
            want_shape(v, y, "output", 2, x->shape);
        break;
    }
    case OP_UPSAMPLE:
    case OP_UPSAMPLE_BWD: {
        const GNode *x = IN(v, 0), *big = y->op == OP_UPSAMPLE ? y : x, *small = y->op == OP_UPSAMPLE ? x : y;
        want_dims(v, x, 4, 4, y->op == OP_UPSAMPLE ? "x" : "dy");
        want_dims(v, y, 4, 4, "output");
        if (y->attr.up.fh < 1 || y->attr.up.fw < 1)
            vfail(v, "factors %dx%d (at least 1)", y->attr.up.fh, y->attr.up.fw);
        if (x->ndim != 4 || y->ndim != 4 || y->attr.up.fh < 1 || y->attr.up.fw < 1)
            break;
        s[0] = small->shape[0], s[1] = small->shape[1];
        s[2] = small->shape[2] * y->attr.up.fh, s[3] = small->shape[3] * y->attr.up.fw;
        want_shape(v, big, y->op == OP_UPSAMPLE ? "output" : "dy", 4, s);
        break;
    }
    case OP_CONCAT: {
        want_dims(v, y, 2, 4, "output");
        int64_t c = 0;
        for (int k = 0; k < y->nin; k++) {
            const GNode *x = IN(v, k);
            int ok = x->ndim == y->ndim && x->shape[0] == y->shape[0];
            for (int d = 2; ok && d < y->ndim; d++)
                ok = x->shape[d] == y->shape[d];
            if (!ok) {
                char a[96], b[96];
                shape_str(x, a, sizeof a);
                shape_str(y, b, sizeof b);
                vfail(v, "input %d %s differs from the output %s outside dim 1", k, a, b);
            }
            c += x->ndim >= 2 ? x->shape[1] : 0;
        }
        if (y->ndim >= 2 && c != y->shape[1])
            vfail(v, "the inputs have %" PRId64 " channels, the output %" PRId64, c, y->shape[1]);
        break;
    }
    case OP_SLICE: {
        const GNode *x = IN(v, 0);
        want_dims(v, y, 2, 4, "output");
        int ok = x->ndim == y->ndim && x->shape[0] == y->shape[0];
        for (int d = 2; ok && d < y->ndim; d++)
            ok = x->shape[d] == y->shape[d];
        if (!ok || y->ndim < 2 || y->attr.i < 0 || y->attr.i + y->shape[1] > x->shape[1]) {
            char a[96], b[96];
            shape_str(x, a, sizeof a);
            shape_str(y, b, sizeof b);
            vfail(v, "channels [%d, %d) of %s are not an output %s", y->attr.i,
                  y->ndim >= 2 ? y->attr.i + (int)y->shape[1] : y->attr.i, a, b);
        }
        break;
    }
    case OP_MEAN:
        want_dims(v, IN(v, 0), 1, 1, "x");
        want_shape(v, y, "output", 1, (int64_t[]){1});
        break;
    case OP_VALID_COUNT:
        want_shape(v, y, "output", 1, (int64_t[]){1});
        break;
    case OP_MEAN_OVER:
        want_dims(v, IN(v, 0), 1, 1, "x");
        want_shape(v, IN(v, 1), "n", 1, (int64_t[]){1});
        want_shape(v, y, "output", 1, (int64_t[]){1});
        break;
    case OP_MEAN_OVER_BWD:
        want_shape(v, IN(v, 0), "dy", 1, (int64_t[]){1});
        want_shape(v, IN(v, 1), "n", 1, (int64_t[]){1});
        want_dims(v, y, 1, 1, "output");
        break;
    case OP_NCHW_ROWS:
    case OP_ROWS_NCHW: { /* rows [B*H*W, C] <-> planes [B,C,H,W] */
        const GNode *x = IN(v, 0), *pl = y->op == OP_NCHW_ROWS ? x : y, *rw = y->op == OP_NCHW_ROWS ? y : x;
        want_dims(v, pl, 4, 4, y->op == OP_NCHW_ROWS ? "x" : "output");
        if (pl->ndim != 4)
            break;
        s[0] = pl->shape[0] * pl->shape[2] * pl->shape[3], s[1] = pl->shape[1];
        want_shape(v, rw, y->op == OP_NCHW_ROWS ? "output" : "dy", 2, s);
        break;
    }
    case OP_RESHAPE:
        if (graph_numel(y) != graph_numel(IN(v, 0)))
            vfail(v, "reshape changes the element count");
        break;
    case OP_ALLREDUCE:
        want_same(v, y, IN(v, 0), "x");
        break;
    case OP_BN_PARTIAL: {
        const GNode *x = IN(v, 0);
        want_dims(v, x, 2, 4, "x");
        if (x->ndim >= 2)
            want_shape(v, y, "output", 2, (int64_t[]){2, x->shape[1]});
        break;
    }
    case OP_BN_FINALIZE:
        want_dims(v, y, 2, 2, "output");
        want_same(v, y, IN(v, 0), "sums");
        if (y->ndim == 2 && y->shape[0] != 2)
            vfail(v, "statistics are [2,C], not [%lld,C]", (long long)y->shape[0]);
        if (y->attr.bn.count < 1)
            vfail(v, "bn_finalize over %lld values", (long long)y->attr.bn.count);
        break;
    case OP_SGD:
    case OP_SGD_NESTEROV:
    case OP_ADAM:
    case OP_ADAMW: {
        /* (w, g, state..., scalars): the states are the parameter's, slot k at input 2+k */
        int ns = y->nin - 3;
        static const char *const in_name[] = {"w", "g", "state 0", "state 1"};
        for (int k = 0; k < 2 + ns; k++)
            want_same(v, y, IN(v, k), in_name[k]);
        if (IN(v, 0)->op != OP_PARAM)
            vfail(v, "updates a non-parameter");
        if (IN(v, 1)->param != y->in[0])
            vfail(v, "input g is not the gradient of %%%u", y->in[0]);
        for (int k = 0; k < ns; k++) {
            const GNode *st = IN(v, 2 + k);
            if (st->op != OP_STATE || st->param != y->in[0] || st->attr.ostate.slot != k)
                vfail(v, "input %d is not slot %d of %%%u's optimizer state", 2 + k, k, y->in[0]);
        }
        if (IN(v, 2 + ns)->op != OP_SCALARS)
            vfail(v, "last input is not the scalars");
        if (y->inplace != y->in[0])
            vfail(v, "%s must be in place on its parameter", graph_op_name[y->op]);
        if ((y->op == OP_ADAM || y->op == OP_ADAMW) &&
            !(y->attr.adam.beta2 >= 0 && y->attr.adam.beta2 < 1 && y->attr.adam.eps >= 0))
            vfail(v, "beta2 %g or eps %g out of range", y->attr.adam.beta2, y->attr.adam.eps);
        break;
    }
    case OP_COUNT:
        vfail(v, "bad op");
        break;
    }
}

int graph_verify(const Graph *g, const char *after_pass, DlDiag *diag)
{
    Verif v = {g, after_pass, diag, 0, 0};
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *n = &g->nodes[i];
        v.at = i;
        if ((unsigned)n->op >= OP_COUNT) {
            vfail(&v, "op %d out of range", (int)n->op);
            continue;
        }
        if (graph_op_ninputs[n->op] < 0 ? n->nin < 2 : n->nin != graph_op_ninputs[n->op]) {
            if (graph_op_ninputs[n->op] < 0)
                vfail(&v, "%d inputs, the op takes 2..%d", n->nin, G_MAX_IN);
            else
                vfail(&v, "%d inputs, the op takes %d", n->nin, graph_op_ninputs[n->op]);
            continue;
        }
        int bad = 0;
        for (int k = 0; k < n->nin; k++)
            if (n->in[k] >= i) {
                vfail(&v, "input %d is %%%u, not an earlier node", k, n->in[k]);
                bad = 1;
            }
        for (int d = 0; d < n->ndim; d++)
            if (n->shape[d] <= 0) {
                vfail(&v, "dimension %d is %" PRId64, d, n->shape[d]);
                bad = 1;
            }
        if (n->ndim < 1) {
            vfail(&v, "no shape");
            bad = 1;
        }
        if (!n->name) {
            vfail(&v, "no name");
            bad = 1;
        }
        if (n->inplace != G_NONE && n->inplace >= i) {
            vfail(&v, "in-place target %%%u is not an earlier node", n->inplace);
            bad = 1;
        }
        if (n->param != G_NONE && (n->param >= g->n || g->nodes[n->param].op != OP_PARAM)) {
            vfail(&v, "param field %%%u is not a parameter", n->param);
            bad = 1;
        }
        if (!bad)
            verify_node(&v);
    }
    /* names are unique (PARAM/STATE names are checkpoint keys) */
    NameMap seen = {0};
    for (uint32_t j = 0; j < g->n; j++) {
        if (!g->nodes[j].name)
            continue;
        int i = names_get(&seen, g->nodes[j].name);
        if (i >= 0) {
            v.at = j;
            vfail(&v, "name also used by %%%d", i);
        } else {
            names_put(&seen, g->nodes[j].name, (int)j);
        }
    }
    names_free(&seen);
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].node >= g->n) {
            dl_error(diag, (DlSrcLoc){0, 0, 0}, "internal: graph invalid after %s: output '%s' is %%%u, past the end",
                     after_pass ? after_pass : "?", g->outs[o].name, g->outs[o].node);
            v.nerr++;
        }
    return v.nerr;
}

/* ---- dump ---------------------------------------------------------------- */

static const char *const init_name[] = {
    [INIT_ZEROS] = "zeros", [INIT_ONES] = "ones",
    [INIT_KAIMING_UNIFORM] = "kaiming_uniform", [INIT_BIAS_UNIFORM] = "bias_uniform",
};
static const char *const input_name[] = {[IN_IMAGE] = "image", [IN_TARGET] = "target", [IN_LABEL] = "label"};
static const char *const out_name[] = {
    [GOUT_LOSS] = "loss", [GOUT_LOSS_TERM] = "loss_term", [GOUT_PROBS] = "probs", [GOUT_EXPECT] = "expect",
};

/* Attributes that matter for the op, in a fixed order. */
static void dump_attrs(const Graph *g, const GNode *n, DlBuf *out)
{
    switch (n->op) {
    case OP_CONV2D:
    case OP_CONV2D_BWD_DATA:
    case OP_CONV2D_BWD_FILTER:
    case OP_CONV_TRANSPOSE2D:
        if (n->attr.conv.kh == n->attr.conv.kw)
            dl_buf_printf(out, " k%d", n->attr.conv.kh);
        else
            dl_buf_printf(out, " k%dx%d", n->attr.conv.kh, n->attr.conv.kw);
        dl_buf_printf(out, " s%d p%d", n->attr.conv.stride, n->attr.conv.pad);
        if (n->attr.conv.dilate)
            dl_buf_printf(out, " d%d", n->attr.conv.dilate + 1);
        break;
    case OP_MAXPOOL:
    case OP_AVGPOOL:
    case OP_MAXPOOL_BWD:
    case OP_AVGPOOL_BWD:
        dl_buf_printf(out, " k%d s%d p%d", n->attr.pool.size, n->attr.pool.stride, n->attr.pool.pad);
        break;
    case OP_MATMUL:
        dl_buf_printf(out, " ta=%d tb=%d", n->attr.mm.ta, n->attr.mm.tb);
        break;
    case OP_UPSAMPLE:
    case OP_UPSAMPLE_BWD:
        dl_buf_printf(out, " %s x%d", n->attr.up.bilinear ? "bilinear" : "nearest", n->attr.up.fh);
        if (n->attr.up.fw != n->attr.up.fh)
            dl_buf_printf(out, "x%d", n->attr.up.fw);
        break;
    case OP_SLICE:
        dl_buf_printf(out, " from=%d", n->attr.i);
        break;
    case OP_BN_APPLY:
    case OP_BN_INFER:
    case OP_BN_BWD_DATA:
    case OP_BN_RUNNING:
    case OP_BN_STATS:
    case OP_BN_BWD_STATS:
    case OP_BN_PARTIAL:
    case OP_BN_FINALIZE:
        dl_buf_printf(out, " eps=%g momentum=%g", n->attr.bn.eps, n->attr.bn.momentum);
        if (n->attr.bn.count)
            dl_buf_printf(out, " count=%lld", (long long)n->attr.bn.count);
        break;
    case OP_DROPOUT:
    case OP_DROPOUT_BWD:
        dl_buf_printf(out, " p=%g salt=%u", n->attr.dropout.p, (unsigned)n->attr.dropout.salt);
        break;
    case OP_SGD:
    case OP_SGD_NESTEROV:
        dl_buf_printf(out, " wd=%g", n->attr.sgd.wd);
        break;
    case OP_ADAM:
    case OP_ADAMW:
        dl_buf_printf(out, " wd=%g beta2=%.9g eps=%g", n->attr.adam.wd, n->attr.adam.beta2, n->attr.adam.eps);
        break;
    case OP_INPUT:
        dl_buf_printf(out, " %s", n->attr.input.kind == IN_IMAGE && n->ndim == 2 ? "features"
                                                                                : input_name[n->attr.input.kind]);
        if (n->attr.input.kind == IN_TARGET)
            dl_buf_printf(out, " of=%d", n->attr.input.ref);
        for (int k = 0; n->attr.input.kind == IN_LABEL && k < n->attr.input.ncols; k++)
            dl_buf_printf(out, "%s%d", k ? "," : " cols=", n->attr.input.cols[k]);
        break;
    case OP_STATE:
        if (n->param == G_NONE && n->attr.state.data_stats)
            dl_buf_printf(out, " data_stats");
        break;
    case OP_PARAM:
        dl_buf_printf(out, " init=%s fan_in=%d", init_name[n->attr.init.kind], n->attr.init.fan_in);
        break;
    case OP_CONST: {
        int64_t e = graph_numel(n);
        dl_buf_printf(out, " {");
        for (int64_t i = 0; i < e && i < 4; i++)
            dl_buf_printf(out, "%s%g", i ? ", " : "", n->attr.cst.data[i]);
        if (e > 4)
            dl_buf_printf(out, ", ... %g", n->attr.cst.data[e - 1]);
        dl_buf_printf(out, "}");
        break;
    }
    case OP_SCALE:
    case OP_FILL:
        dl_buf_printf(out, " f=%g", n->attr.f);
        break;
    case OP_SELECT:
        dl_buf_printf(out, " row=%d", n->attr.i);
        break;
    case OP_SCALARS: case OP_BIAS_ADD: case OP_ADD: case OP_MUL:
    case OP_EXP: case OP_RELU: case OP_RELU_BWD: case OP_GAP_BWD: case OP_MEAN_BWD:
    case OP_ABSDIFF_BWD: case OP_KL_BWD: case OP_CHAN_SUM: case OP_LOG_SOFTMAX:
    case OP_LOG_SOFTMAX_BWD: case OP_KL_ROWS: case OP_EXPECT: case OP_EXPECT_BWD:
    case OP_ABSDIFF_ROWS: case OP_GAP: case OP_MEAN: case OP_RESHAPE: case OP_CONCAT: case OP_ALLREDUCE: case OP_COUNT:
    case OP_MEAN_OVER_BWD: case OP_NCHW_ROWS: case OP_ROWS_NCHW: case OP_VALID_COUNT: case OP_MEAN_OVER:
        break;
    }
    (void)g;
}

void graph_dump(const Graph *g, DlBuf *out)
{
    uint32_t nparam = 0;
    int64_t pfloats = 0;
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_PARAM) {
            nparam++;
            pfloats += graph_numel(&g->nodes[i]);
        }
    dl_buf_printf(out, "# batch %d, %u nodes, %u parameters (%" PRId64 " floats)\n",
                  g->batch, g->n, nparam, pfloats);
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *n = &g->nodes[i];
        dl_buf_printf(out, "%%%u = %s", i, graph_op_name[n->op]);
        if (n->nin) {
            dl_buf_printf(out, "(");
            for (int k = 0; k < n->nin; k++)
                dl_buf_printf(out, "%s%%%u", k ? ", " : "", n->in[k]);
            dl_buf_printf(out, ")");
        }
        dl_buf_printf(out, " [");
        for (int d = 0; d < n->ndim; d++)
            dl_buf_printf(out, "%s%" PRId64, d ? "," : "", n->shape[d]);
        dl_buf_printf(out, "]");
        dump_attrs(g, n, out);
        if (n->param != G_NONE)
            dl_buf_printf(out, n->op == OP_STATE ? " momentum(%%%u)" : " grad(%%%u)", n->param);
        if (n->param != G_NONE && n->op == OP_STATE && n->attr.ostate.slot)
            dl_buf_printf(out, " slot=%d", n->attr.ostate.slot);
        if (n->inplace != G_NONE)
            dl_buf_printf(out, " inplace(%%%u)", n->inplace);
        dl_buf_printf(out, "  ; %s", n->name ? n->name : "?");
        if (n->loc.len > 0)
            dl_buf_printf(out, " @%d:%d", n->loc.line, n->loc.col);
        dl_buf_printf(out, "\n");
    }
    dl_buf_printf(out, "outputs:\n");
    for (int o = 0; o < g->nouts; o++)
        dl_buf_printf(out, "  %s \"%s\" = %%%u\n", out_name[g->outs[o].kind], g->outs[o].name, g->outs[o].node);
}

const char *graph_arena_name(GArena a)
{
    switch (a) {
    case AR_ACT: return "act";
    case AR_PARAM: return "param";
    case AR_GRAD: return "grad";
    case AR_OPT: return "opt";
    case AR_STATE: return "state";
    case AR_INPUT: return "input";
    case AR_CONST: return "const";
    case AR_COUNT: break;
    }
    return "?";
}

const char *graph_group_kind_name(GGroupKind k)
{
    switch (k) {
    case GG_LIB: return "lib";
    case GG_ELEM: return "elem";
    case GG_CHANRED: return "chanred";
    case GG_ROW: return "row";
    case GG_WINDOW: return "window";
    case GG_BATCHRED: return "batchred";
    case GG_OPT: return "opt";
    }
    return "?";
}
