/* lower_net.c - networks and blocks: the layer table, shape inference and the
 * forward graph of one mode (train: batch statistics, dropout; eval: running
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

#include "lower_int.h"

typedef enum VKind { V_ERR, V_TENSOR, V_NUM, V_STR, V_BOOL } VKind;
typedef struct Value {
    VKind kind;
    uint32_t node; /* V_TENSOR */
    double num;    /* V_NUM, V_BOOL */
    const char *str;
    double num2;   /* V_NUM of an AT_INT2 argument: the second of [h, w] (num when one number) */
} Value;
static const Value VERR = {V_ERR, G_NONE, 0, NULL, 0};

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

typedef struct Net {
    Lower *L;
    Graph *g;
    int depth;                     /* of eval's recursion */
    int param_chain;               /* params { } names being evaluated inside one another */
    int too_big;                   /* tensors past LW_MAX_NUMEL (the first is reported) */
    NameMap blocks;                /* block name -> index in L->blocks */
    int train;
    uint32_t scalars;
    uint32_t image;
    uint32_t heads[LW_MAX_HEADS];  /* the logits of each head, from the return */
} Net;

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

static const char *join(Net *N, const char *prefix, const char *name)
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
static uint32_t add(Net *N, GOp op, const uint32_t *in, int nin, const int64_t *shape, int nd, GAttr a,
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

static const GNode *node(Net *N, uint32_t i) { return &N->g->nodes[i]; }

static uint32_t param(Net *N, const char *name, const int64_t *shape, int nd, GInitKind init, double fan_in,
                      DlSrcLoc loc)
{
    GAttr a = {.init = {init, fan_in > INT32_MAX ? INT32_MAX : (int)fan_in}}; /* past 2^31 only with a too-big weight */
    return add(N, OP_PARAM, NULL, 0, shape, nd, a, name, loc);
}

/* ---- the layer table ----------------------------------------------------- */

typedef struct LayerCall {
    const AstExpr *call;
    const char *path;     /* the name of the layer's result */
    Value a[LW_MAX_ARGS]; /* evaluated arguments (V_ERR: not given) */
    int given[LW_MAX_ARGS];
} LayerCall;

typedef struct Layer {
    const char *name;
    Value (*fn)(Net *N, const LayerCall *c);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} Layer;

static const Layer *layer_of(const LayerCall *c);

static double num(const LayerCall *c, int k)
{
    return c->given[k] ? c->a[k].num : layer_of(c)->spec[k].def;
}

static Value tensor(uint32_t i) { return (Value){V_TENSOR, i, 0, NULL, 0}; }
/* The second of an AT_INT2 argument's [h, w] (its default: the first's). */
static double num2(const LayerCall *c, int k) { return c->given[k] ? c->a[k].num2 : layer_of(c)->spec[k].def; }

static int want_dims(Net *N, const LayerCall *c, uint32_t x, int nd, const char *hint)
{
    const GNode *n = node(N, x);
    if (n->ndim == nd)
        return 0;
    char s[96];
    lw_error(N->L, c->call->loc, "%s expects a %s input but '%s' is %s%s", c->call->name,
             nd == 4 ? "[B, C, H, W]" : "[B, F]", n->name, lw_shape_str(n, s, sizeof s), hint ? hint : "");
    return -1;
}

static int positive(Net *N, const LayerCall *c, int k, double lo)
{
    if (num(c, k) >= lo)
        return 0;
    lw_error(N->L, c->call->loc, "'%s' of %s must be at least %g, not %g", layer_of(c)->spec[k].name,
             c->call->name, lo, num(c, k));
    return -1;
}

/* The tail shared by conv2d and conv_transpose2d: weight wshape [4] (fan_in
 * for its initialisation), an optional bias (argument 5, default true) of
 * shp[1] channels, the op on (x, weight) named PATH.suffix when a bias follows
 * (PATH itself when not), then the bias_add named PATH. */
static Value conv_layer(Net *N, const LayerCall *c, GOp op, const char *suffix, const int64_t *wshape, double fan_in,
                        const int64_t *shp, GAttr a)
{
    int bias = c->given[5] ? (int)c->a[5].num : 1;
    DlSrcLoc loc = c->call->loc;
    uint32_t w = param(N, join(N, c->path, "weight"), wshape, 4, INIT_KAIMING_UNIFORM, fan_in, loc);
    uint32_t b = bias ? param(N, join(N, c->path, "bias"), (int64_t[]){shp[1]}, 1, INIT_BIAS_UNIFORM, fan_in, loc) : 0;
    uint32_t y = add(N, op, (uint32_t[]){c->a[0].node, w}, 2, shp, 4, a, bias ? join(N, c->path, suffix) : c->path, loc);
    if (bias)
        y = add(N, OP_BIAS_ADD, (uint32_t[]){y, b}, 2, shp, 4, (GAttr){0}, c->path, loc);
    return tensor(y);
}

static DlSrcLoc arg_loc(const LayerCall *c, int k);

/* conv2d(x, channels, kernel = 3 | [kh, kw], stride, pad, bias, dilation):
 * PyTorch's Conv2d; dilation d spaces the taps d pixels apart, so a kernel
 * of k spans (k - 1) d + 1 input pixels (Yu & Koltun, ICLR 2016). */
static Value l_conv2d(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL) || positive(N, c, 1, 1) || positive(N, c, 2, 1) || positive(N, c, 3, 1) ||
        positive(N, c, 4, 0) || positive(N, c, 6, 1))
        return VERR;
    const GNode *xn = node(N, x);
    int O = (int)num(c, 1), kh = (int)num(c, 2), kw = (int)num2(c, 2), s = (int)num(c, 3), p = (int)num(c, 4);
    int d = (int)num(c, 6);
    if (kw < 1 || kh > 1024 || kw > 1024 || d > 1024) {
        lw_error(N->L, arg_loc(c, d > 1024 ? 6 : 2), "conv2d kernel %dx%d, dilation %d: each in 1..1024", kh, kw, d);
        return VERR;
    }
    int64_t C = xn->shape[1], H = xn->shape[2], W = xn->shape[3];
    int64_t eh = (int64_t)(kh - 1) * d + 1, ew = (int64_t)(kw - 1) * d + 1; /* the input span of the taps */
    int64_t OH = (H + 2 * p - eh) / s + 1, OW = (W + 2 * p - ew) / s + 1;
    if (H + 2 * p < eh || W + 2 * p < ew) {
        char b[96];
        lw_error(N->L, c->call->loc, "conv2d kernel %dx%d%s does not fit '%s' %s with pad %d", kh, kw,
                 d > 1 ? " (dilated)" : "", xn->name, lw_shape_str(xn, b, sizeof b), p);
        return VERR;
    }
    return conv_layer(N, c, OP_CONV2D, "conv", (int64_t[]){O, C, kh, kw}, (double)C * kh * kw,
                      (int64_t[]){xn->shape[0], O, OH, OW}, (GAttr){.conv = {kh, kw, s, p, d - 1}});
}

/* PyTorch's ConvTranspose2d (output_padding 0): the weight is [Cin, Cout, k, k]
 * and PyTorch's fan_in for it is weight.size(1) * k * k = Cout * k * k. */
static Value l_conv_transpose2d(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL) || positive(N, c, 1, 1) || positive(N, c, 2, 1) || positive(N, c, 3, 1) ||
        positive(N, c, 4, 0))
        return VERR;
    const GNode *xn = node(N, x);
    int O = (int)num(c, 1), k = (int)num(c, 2), s = (int)num(c, 3), p = (int)num(c, 4);
    int64_t C = xn->shape[1], H = xn->shape[2], W = xn->shape[3];
    int64_t OH = (H - 1) * s - 2 * (int64_t)p + k, OW = (W - 1) * s - 2 * (int64_t)p + k;
    if (OH < 1 || OW < 1) {
        char b[96];
        lw_error(N->L, c->call->loc, "conv_transpose2d of '%s' %s would be empty: (H-1)*stride - 2*pad + kernel = %" PRId64
                 " with kernel %d, stride %d, pad %d", xn->name, lw_shape_str(xn, b, sizeof b), OH < OW ? OH : OW, k, s, p);
        return VERR;
    }
    return conv_layer(N, c, OP_CONV_TRANSPOSE2D, "convt", (int64_t[]){C, O, k, k}, (double)O * k * k,
                      (int64_t[]){xn->shape[0], O, OH, OW}, (GAttr){.conv = {k, k, s, p}});
}

/* Where argument k of the call was written (the call itself when defaulted). */
static DlSrcLoc arg_loc(const LayerCall *c, int k)
{
    if (k < c->call->nargs)
        return c->call->args[k]->loc;
    for (int i = 0; i < c->call->nkwargs; i++)
        if (!strcmp(c->call->kwargs[i].key, layer_of(c)->spec[k].name))
            return c->call->kwargs[i].value->loc;
    return c->call->loc;
}

/* upsample(x, factor = 2, mode = "nearest" | "bilinear") or upsample(x, like = t):
 * PyTorch's F.interpolate with an integer scale factor (bilinear:
 * align_corners=False); like = t takes t's H and W, integer multiples of x's. */
static Value l_upsample(Net *N, const LayerCall *c)
{
    static const char *const modes[] = {"nearest", "bilinear"};
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL) || positive(N, c, 1, 1))
        return VERR;
    const char *mode = c->given[2] ? c->a[2].str : modes[0];
    int bilinear = !strcmp(mode, modes[1]);
    if (!bilinear && strcmp(mode, modes[0])) {
        lw_unknown(N->L, arg_loc(c, 2), "mode", mode, modes, 2, " of upsample (\"nearest\" or \"bilinear\")");
        return VERR;
    }
    const GNode *xn = node(N, x);
    int fh = (int)num(c, 1), fw = fh;
    if (c->given[3]) {
        const GNode *t = node(N, c->a[3].node);
        char b1[96], b2[96];
        if (c->given[1]) {
            lw_error(N->L, arg_loc(c, 3), "upsample takes 'factor' or 'like', not both");
            return VERR;
        }
        if (t->ndim != 4) {
            lw_error(N->L, arg_loc(c, 3), "upsample like '%s' %s: a [B, C, H, W] tensor is needed", t->name,
                     lw_shape_str(t, b1, sizeof b1));
            return VERR;
        }
        int64_t H = xn->shape[2], W = xn->shape[3], TH = t->shape[2], TW = t->shape[3];
        if (TH % H || TW % W || TH / H > LW_MAX_INT || TW / W > LW_MAX_INT) {
            lw_error(N->L, arg_loc(c, 3), "upsample like '%s' %s: its size %" PRId64 "x%" PRId64
                     " is not an integer multiple of the size %" PRId64 "x%" PRId64 " of '%s' %s",
                     t->name, lw_shape_str(t, b1, sizeof b1), TH, TW, H, W, xn->name, lw_shape_str(xn, b2, sizeof b2));
            return VERR;
        }
        fh = (int)(TH / H), fw = (int)(TW / W);
    }
    int64_t shp[4] = {xn->shape[0], xn->shape[1], xn->shape[2] * fh, xn->shape[3] * fw};
    GAttr a = {.up = {fh, fw, bilinear}};
    if (fh == 1 && fw == 1)
        return c->a[0]; /* the identity */
    return tensor(add(N, OP_UPSAMPLE, &x, 1, shp, 4, a, c->path, c->call->loc));
}

/* concat(a, b, ...): along channels (dim 1); every other dim must agree. */
static Value l_concat(Net *N, const LayerCall *c)
{
    const GNode *first = node(N, c->a[0].node);
    uint32_t in[G_MAX_IN];
    int n = 0;
    int64_t C = 0;
    for (int k = 0; k < layer_of(c)->nspec; k++) {
        if (!c->given[k])
            continue;
        const GNode *t = node(N, c->a[k].node);
        int ok = t->ndim == first->ndim && (t->ndim == 2 || t->ndim == 4) && t->shape[0] == first->shape[0];
        for (int d = 2; ok && d < t->ndim; d++)
            ok = t->shape[d] == first->shape[d];
        if (!ok) {
            char b1[96], b2[96];
            lw_error(N->L, arg_loc(c, k), "concat joins along channels (dim 1), so every other dim must agree, "
                     "but '%s' is %s and '%s' is %s", t->name, lw_shape_str(t, b1, sizeof b1), first->name,
                     lw_shape_str(first, b2, sizeof b2));
            return VERR;
        }
        in[n++] = c->a[k].node;
        C += t->shape[1];
    }
    int64_t shp[4];
    memcpy(shp, first->shape, sizeof shp);
    shp[1] = C;
    return tensor(add(N, OP_CONCAT, in, n, shp, first->ndim, (GAttr){0}, c->path, c->call->loc));
}

static Value l_batchnorm(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    const GNode *xn = node(N, x);
    if (xn->ndim != 4 && xn->ndim != 2) {
        char b[96];
        lw_error(N->L, c->call->loc, "batchnorm expects a [B, C, H, W] or [B, C] input but '%s' is %s", xn->name,
                 lw_shape_str(xn, b, sizeof b));
        return VERR;
    }
    double eps = num(c, 1), mom = num(c, 2);
    if (!(eps > 0) || !(mom >= 0 && mom <= 1)) {
        lw_error(N->L, c->call->loc, "batchnorm needs eps > 0 and momentum in [0, 1]");
        return VERR;
    }
    int64_t C = xn->shape[1];
    DlSrcLoc loc = c->call->loc;
    uint32_t gam = param(N, join(N, c->path, "weight"), &C, 1, INIT_ONES, 0, loc);
    uint32_t bet = param(N, join(N, c->path, "bias"), &C, 1, INIT_ZEROS, 0, loc);
    uint32_t run = add(N, OP_STATE, NULL, 0, (int64_t[]){2, C}, 2, (GAttr){0}, join(N, c->path, "running"), loc);
    GAttr a = {.bn = {(float)eps, (float)mom}};
    int64_t shp[4];
    memcpy(shp, xn->shape, sizeof shp);
    int nd = xn->ndim;
    if (!N->train)
        return tensor(add(N, OP_BN_INFER, (uint32_t[]){x, run, gam, bet}, 4, shp, nd, a, c->path, loc));
    uint32_t st;
    if (N->g->ranks > 1) {
        /* synchronised over the ranks of a train@N program (docs/parallel.md): this rank's sums, summed over
           the ranks, then mean and biased variance over the global count */
        a.bn.count = graph_numel(xn) / C * N->g->ranks;
        uint32_t part = add(N, OP_BN_PARTIAL, &x, 1, (int64_t[]){2, C}, 2, a, join(N, c->path, "partial"), loc);
        uint32_t sum = add(N, OP_ALLREDUCE, &part, 1, (int64_t[]){2, C}, 2, a, join(N, c->path, "sums"), loc);
        st = add(N, OP_BN_FINALIZE, &sum, 1, (int64_t[]){2, C}, 2, a, join(N, c->path, "stats"), loc);
    } else {
        st = add(N, OP_BN_STATS, &x, 1, (int64_t[]){2, C}, 2, a, join(N, c->path, "stats"), loc);
    }
    uint32_t y = add(N, OP_BN_APPLY, (uint32_t[]){x, st, gam, bet}, 4, shp, nd, a, c->path, loc);
    uint32_t r = add(N, OP_BN_RUNNING, (uint32_t[]){st, run}, 2, (int64_t[]){2, C}, 2, a,
                     join(N, c->path, "running_update"), loc);
    N->g->nodes[r].inplace = run;
    return tensor(y);
}

static Value unary(Net *N, const LayerCall *c, GOp op)
{
    const GNode *xn = node(N, c->a[0].node);
    return tensor(add(N, op, &c->a[0].node, 1, xn->shape, xn->ndim, (GAttr){0}, c->path, c->call->loc));
}

static Value l_relu(Net *N, const LayerCall *c) { return unary(N, c, OP_RELU); }

static Value pool2d(Net *N, const LayerCall *c, GOp op)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL) || positive(N, c, 1, 1) || positive(N, c, 2, 0) || positive(N, c, 3, 0))
        return VERR;
    const GNode *xn = node(N, x);
    int k = (int)num(c, 1), s = c->given[2] && num(c, 2) > 0 ? (int)num(c, 2) : k, p = (int)num(c, 3);
    if (2 * p > k) {
        lw_error(N->L, c->call->loc, "%s pad %d must be at most half the window size %d", c->call->name, p, k);
        return VERR;
    }
    if (xn->shape[2] + 2 * p < k || xn->shape[3] + 2 * p < k) {
        char b[96];
        lw_error(N->L, c->call->loc, "%s window %d does not fit '%s' %s", c->call->name, k, xn->name,
                 lw_shape_str(xn, b, sizeof b));
        return VERR;
    }
    int64_t shp[4] = {xn->shape[0], xn->shape[1], (xn->shape[2] + 2 * p - k) / s + 1,
                      (xn->shape[3] + 2 * p - k) / s + 1};
    GAttr a = {.pool = {k, s, p}};
    return tensor(add(N, op, &x, 1, shp, 4, a, c->path, c->call->loc));
}
static Value l_maxpool(Net *N, const LayerCall *c) { return pool2d(N, c, OP_MAXPOOL); }
static Value l_avgpool(Net *N, const LayerCall *c) { return pool2d(N, c, OP_AVGPOOL); }

static Value l_gap(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL))
        return VERR;
    const GNode *xn = node(N, x);
    return tensor(add(N, OP_GAP, &x, 1, xn->shape, 2, (GAttr){0}, c->path, c->call->loc));
}

static Value l_flatten(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    const GNode *xn = node(N, x);
    if (xn->ndim == 2)
        return c->a[0];
    int64_t shp[2] = {xn->shape[0], graph_numel(xn) / xn->shape[0]};
    return tensor(add(N, OP_RESHAPE, &x, 1, shp, 2, (GAttr){0}, c->path, c->call->loc));
}

static Value l_linear(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 2, "; add global_avgpool or flatten before it") || positive(N, c, 1, 1))
        return VERR;
    const GNode *xn = node(N, x);
    int64_t B = xn->shape[0], F = xn->shape[1], O = (int64_t)num(c, 1);
    int bias = c->given[2] ? (int)c->a[2].num : 1;
    DlSrcLoc loc = c->call->loc;
    uint32_t w = param(N, join(N, c->path, "weight"), (int64_t[]){O, F}, 2, INIT_KAIMING_UNIFORM, (double)F, loc);
    uint32_t b = bias ? param(N, join(N, c->path, "bias"), &O, 1, INIT_BIAS_UNIFORM, (double)F, loc) : 0;
    GAttr a = {.mm = {0, 1}};
    int64_t shp[2] = {B, O};
    uint32_t y = add(N, OP_MATMUL, (uint32_t[]){x, w}, 2, shp, 2, a, bias ? join(N, c->path, "matmul") : c->path, loc);
    if (bias)
        y = add(N, OP_BIAS_ADD, (uint32_t[]){y, b}, 2, shp, 2, (GAttr){0}, c->path, loc);
    return tensor(y);
}

static Value l_dropout(Net *N, const LayerCall *c)
{
    double p = num(c, 1);
    if (!(p >= 0 && p < 1)) {
        lw_error(N->L, c->call->loc, "'p' of dropout must be in [0, 1), not %g", p);
        return VERR;
    }
    if (!N->train || p == 0)
        return c->a[0]; /* inference: the identity */
    const GNode *xn = node(N, c->a[0].node);
    /* The salt separates the masks of dropout layers of the same shape: a hash
     * of the layer's path, so it is stable across compilations. */
    GAttr a = {.dropout = {(float)p, (uint32_t)(dl_hash64(c->path, strlen(c->path)) & 0xFFFFFu)}};
    return tensor(add(N, OP_DROPOUT, (uint32_t[]){c->a[0].node, N->scalars}, 2, xn->shape, xn->ndim, a, c->path,
                      c->call->loc));
}

/* softmax inside a network: exp(log_softmax(x)) over the last dim of [B, K].
 * (As a network's return it is the read-out instead: see lw_network.) */
static Value l_softmax(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 2, NULL))
        return VERR;
    const GNode *xn = node(N, x);
    uint32_t l = add(N, OP_LOG_SOFTMAX, &x, 1, xn->shape, 2, (GAttr){0}, join(N, c->path, "log"), c->call->loc);
    return tensor(add(N, OP_EXP, &l, 1, xn->shape, 2, (GAttr){0}, c->path, c->call->loc));
}

static const Layer layers[] = {
    {"conv2d", l_conv2d,
     {{"x", AT_TENSOR, 1, 0}, {"channels", AT_INT, 1, 0}, {"kernel", AT_INT2, 0, 3}, {"stride", AT_INT, 0, 1},
      {"pad", AT_INT, 0, 0}, {"bias", AT_BOOL, 0, 1}, {"dilation", AT_INT, 0, 1}},
     7},
    {"conv_transpose2d", l_conv_transpose2d,
     {{"x", AT_TENSOR, 1, 0}, {"channels", AT_INT, 1, 0}, {"kernel", AT_INT, 1, 0}, {"stride", AT_INT, 0, 1},
      {"pad", AT_INT, 0, 0}, {"bias", AT_BOOL, 0, 1}},
     6},
    {"upsample", l_upsample,
     {{"x", AT_TENSOR, 1, 0}, {"factor", AT_INT, 0, 2}, {"mode", AT_STR, 0, 0 /* "nearest" */},
      {"like", AT_TENSOR, 0, 0}},
     4},
    {"concat", l_concat, /* G_MAX_IN tensors at most */
     {{"a", AT_TENSOR, 1, 0}, {"b", AT_TENSOR, 1, 0}, {"c", AT_TENSOR, 0, 0}, {"d", AT_TENSOR, 0, 0},
      {"e", AT_TENSOR, 0, 0}, {"f", AT_TENSOR, 0, 0}},
     6},
    {"batchnorm", l_batchnorm, {{"x", AT_TENSOR, 1, 0}, {"eps", AT_NUM, 0, 1e-5}, {"momentum", AT_NUM, 0, 0.1}}, 3},
    {"relu", l_relu, {{"x", AT_TENSOR, 1, 0}}, 1},
    {"maxpool", l_maxpool,
     {{"x", AT_TENSOR, 1, 0}, {"size", AT_INT, 0, 2}, {"stride", AT_INT, 0, 0 /* = size */}, {"pad", AT_INT, 0, 0}},
     4},
    {"avgpool", l_avgpool,
     {{"x", AT_TENSOR, 1, 0}, {"size", AT_INT, 0, 2}, {"stride", AT_INT, 0, 0 /* = size */}, {"pad", AT_INT, 0, 0}},
     4},
    {"global_avgpool", l_gap, {{"x", AT_TENSOR, 1, 0}}, 1},
    {"linear", l_linear, {{"x", AT_TENSOR, 1, 0}, {"out", AT_INT, 1, 0}, {"bias", AT_BOOL, 0, 1}}, 3},
    {"dropout", l_dropout, {{"x", AT_TENSOR, 1, 0}, {"p", AT_NUM, 0, 0.5}}, 2},
    {"softmax", l_softmax, {{"x", AT_TENSOR, 1, 0}}, 1},
    {"flatten", l_flatten, {{"x", AT_TENSOR, 1, 0}}, 1},
};
#define NLAYERS ((int)(sizeof layers / sizeof *layers))

static const Layer *layer_of(const LayerCall *c)
{
    for (int k = 0; k < NLAYERS; k++)
        if (!strcmp(layers[k].name, c->call->name))
            return &layers[k];
    return &layers[0];
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
            c.a[k] = eval(N, S, a, a->kind == EX_CALL ? join(N, path, a->name) : path);
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
        const GNode *x = node(N, a.node), *y = node(N, b.node);
        int same = x->ndim == y->ndim;
        for (int d = 0; same && d < x->ndim; d++)
            same = x->shape[d] == y->shape[d];
        if (!same) {
            char s1[96], s2[96];
            lw_error(L, e->loc, "cannot add '%s' %s and '%s' %s: shapes differ", x->name,
                     lw_shape_str(x, s1, sizeof s1), y->name, lw_shape_str(y, s2, sizeof s2));
            return VERR;
        }
        return tensor(add(N, OP_ADD, (uint32_t[]){a.node, b.node}, 2, x->shape, x->ndim, (GAttr){0}, path, e->loc));
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
    return join(N, path, s);
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
            return tensor(N->image);
        }
        lw_error(L, e->loc, "only the data input (e.g. %s.input) can be used inside a network",
                 L->data.decl ? L->data.decl->name : "faces");
        return VERR;
    case EX_CALL: {
        for (int k = 0; k < NLAYERS; k++)
            if (!strcmp(layers[k].name, e->name))
                return call_layer(N, S, e, &layers[k], path);
        int b = names_get(&N->blocks, e->name);
        if (b >= 0)
            return call_block(N, S, e, b, path);
        const char *names[NLAYERS + 64];
        int n = 0;
        for (int k = 0; k < NLAYERS; k++)
            names[n++] = layers[k].name;
        for (size_t k = 0; k < L->blocks.n && n < NLAYERS + 64; k++)
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
        if (r.kind != V_TENSOR || (node(N, r.node)->ndim != 2 && node(N, r.node)->ndim != 4)) {
            char sh[96];
            if (r.kind == V_TENSOR)
                lw_error(L, z->loc, "softmax needs [B, K] logits (or [B, K, H, W] for one distribution per pixel) but "
                         "'%s' is %s", node(N, r.node)->name, lw_shape_str(node(N, r.node), sh, sizeof sh));
            else
                lw_error(L, z->loc, "softmax needs [B, K] logits, not %s", value_desc(r.kind));
            bad = 1;
            continue;
        }
        const GNode *zn = node(N, r.node);
        L->heads.a[k].rows = 1;
        if (zn->ndim == 4) { /* a softmax over the class axis per pixel: [B,K,H,W] as [B*H*W, K] rows */
            int64_t rs[2] = {zn->shape[0] * zn->shape[2] * zn->shape[3], zn->shape[1]};
            L->heads.a[k].rows = zn->shape[2] * zn->shape[3];
            r.node = add(N, OP_NCHW_ROWS, &r.node, 1, rs, 2, (GAttr){0}, join(N, zn->name, "rows"), z->loc);
        }
        N->heads[k] = r.node;
    }
    return bad ? VERR : tensor(N->heads[0]);
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
        Var v = {it->name, it->loc, eval(N, S, it->value, join(N, S->prefix, it->name)), 0, 0};
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
        Value v = arg[p] ? eval(N, S, arg[p], arg[p]->kind == EX_CALL ? join(N, path, arg[p]->name) : path) : VERR;
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
    return add(N, OP_CONST, NULL, 0, (int64_t[]){A, K}, 2, (GAttr){.cst = {v}}, join(N, t->name, "bin_values"), t->loc);
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
    uint32_t st = add(N, OP_STATE, NULL, 0, (int64_t[]){2, d}, 2, (GAttr){.state = {1}}, join(N, D->decl->name, "input.stats"), loc);
    uint32_t g1 = add(N, OP_CONST, NULL, 0, &d, 1, (GAttr){.cst = {ones}}, join(N, D->decl->name, "input.one"), loc);
    uint32_t b0 = add(N, OP_CONST, NULL, 0, &d, 1, (GAttr){.cst = {zeros}}, join(N, D->decl->name, "input.zero"), loc);
    GAttr a = {.bn = {1e-12f, 0}};
    return add(N, OP_BN_INFER, (uint32_t[]){x, st, g1, b0}, 4, node(N, x)->shape, 2, a,
               join(N, D->decl->name, "input.standardized"), loc);
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
            out->target_in[t] = add(N, OP_INPUT, NULL, 0,
                                    (int64_t[]){N->g->batch * (ti->map_h ? (int64_t)ti->map_h * ti->map_w : 1), ti->K}, 2,
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
        out->image = add(N, OP_INPUT, NULL, 0, (int64_t[]){B, D->C}, 2, (GAttr){.input = {IN_IMAGE, -1, 0, {0}}},
                         join(N, D->decl->name, "input"), dloc);
    else
        out->image = add(N, OP_INPUT, NULL, 0, (int64_t[]){B, D->C, D->H, D->W}, 4,
                         (GAttr){.input = {IN_IMAGE, -1, 0, {0}}}, join(N, D->decl->name, "input"), dloc);
    out->scalars = G_NONE;
    if (train) { /* the loss's inputs: each target it reads, then each list of labels */
        target_inputs(N, out);
        for (size_t i = 0; i < L->terms.n; i++)
            if (L->terms.a[i].kind == LOSS_L1)
                lw_label_input(L, g, L->terms.a[i].cols, L->terms.a[i].ncols);
        out->scalars = N->scalars = add(N, OP_SCALARS, NULL, 0, (int64_t[]){4}, 1, (GAttr){0}, "scalars",
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
        Var var = {pa->name, pa->loc, tensor(N->image), 0, 1};
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
        const char *hn = H == 1 ? nd->name : join(N, nd->name, L->heads.a[h].name);
        int64_t K = node(N, N->heads[h])->shape[1];
        L->heads.a[h].K = K;
        int64_t BK[2] = {B * L->heads.a[h].rows, K};
        out->logits[h] = N->heads[h];
        out->logsm[h] = add(N, OP_LOG_SOFTMAX, &out->logits[h], 1, BK, 2, (GAttr){0}, join(N, hn, "log_probs"),
                            L->heads.a[h].loc);
        out->probs[h] = add(N, OP_EXP, &out->logsm[h], 1, BK, 2, (GAttr){0}, join(N, hn, "probs"), L->heads.a[h].loc);
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
            const char *en = H == 1 && T == 1 ? join(N, nd->name, "expect")
                           : join(N, join(N, nd->name, L->heads.a[h].name), join(N, "expect", ti->name));
            out->expect[h * T + t] = add(N, OP_EXPECT, (uint32_t[]){out->probs[h], cv}, 2,
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
