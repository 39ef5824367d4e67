/* lower_layers.c - the layer table: each layer a network may call (conv2d,
 * conv_transpose2d, upsample, concat, batchnorm, relu, pooling, linear,
 * dropout, softmax, flatten), its arguments, shape inference and the nodes it
 * adds (lower_net.c evaluates the calls). */
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_net_int.h"



static const Layer *layer_of(const LayerCall *c);

static double num(const LayerCall *c, int k)
{
    return c->given[k] ? c->a[k].num : layer_of(c)->spec[k].def;
}

/* The second of an AT_INT2 argument's [h, w] (its default: the first's). */
static double num2(const LayerCall *c, int k) { return c->given[k] ? c->a[k].num2 : layer_of(c)->spec[k].def; }

static int want_dims(Net *N, const LayerCall *c, uint32_t x, int nd, const char *hint)
{
    const GNode *n = net_node(N, x);
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
    uint32_t w = net_param(N, net_join(N, c->path, "weight"), wshape, 4, INIT_KAIMING_UNIFORM, fan_in, loc);
    uint32_t b = bias ? net_param(N, net_join(N, c->path, "bias"), (int64_t[]){shp[1]}, 1, INIT_BIAS_UNIFORM, fan_in, loc) : 0;
    uint32_t y = net_add(N, op, (uint32_t[]){c->a[0].node, w}, 2, shp, 4, a, bias ? net_join(N, c->path, suffix) : c->path, loc);
    if (bias)
        y = net_add(N, OP_BIAS_ADD, (uint32_t[]){y, b}, 2, shp, 4, (GAttr){0}, c->path, loc);
    return net_tensor(y);
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
    const GNode *xn = net_node(N, x);
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
        if (d > 1)
            lw_error(N->L, c->call->loc, "conv2d kernel %dx%d dilated by %d spans %lldx%lld pixels, more than '%s' %s "
                     "with pad %d", kh, kw, d, (long long)eh, (long long)ew, xn->name, lw_shape_str(xn, b, sizeof b), p);
        else
            lw_error(N->L, c->call->loc, "conv2d kernel %dx%d does not fit '%s' %s with pad %d", kh, kw, xn->name,
                     lw_shape_str(xn, b, sizeof b), p);
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
    const GNode *xn = net_node(N, x);
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
                      (int64_t[]){xn->shape[0], O, OH, OW}, (GAttr){.conv = {k, k, s, p, 0}});
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
    const GNode *xn = net_node(N, x);
    int fh = (int)num(c, 1), fw = fh;
    if (c->given[3]) {
        const GNode *t = net_node(N, c->a[3].node);
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
    return net_tensor(net_add(N, OP_UPSAMPLE, &x, 1, shp, 4, a, c->path, c->call->loc));
}

/* concat(a, b, ...): along channels (dim 1); every other dim must agree. */
static Value l_concat(Net *N, const LayerCall *c)
{
    const GNode *first = net_node(N, c->a[0].node);
    uint32_t in[G_MAX_IN];
    int n = 0;
    int64_t C = 0;
    for (int k = 0; k < layer_of(c)->nspec; k++) {
        if (!c->given[k])
            continue;
        const GNode *t = net_node(N, c->a[k].node);
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
    return net_tensor(net_add(N, OP_CONCAT, in, n, shp, first->ndim, (GAttr){0}, c->path, c->call->loc));
}

static Value l_batchnorm(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    const GNode *xn = net_node(N, x);
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
    uint32_t gam = net_param(N, net_join(N, c->path, "weight"), &C, 1, INIT_ONES, 0, loc);
    uint32_t bet = net_param(N, net_join(N, c->path, "bias"), &C, 1, INIT_ZEROS, 0, loc);
    uint32_t run = net_add(N, OP_STATE, NULL, 0, (int64_t[]){2, C}, 2, (GAttr){0}, net_join(N, c->path, "running"), loc);
    GAttr a = {.bn = {(float)eps, (float)mom, 0}};
    int64_t shp[4];
    memcpy(shp, xn->shape, sizeof shp);
    int nd = xn->ndim;
    if (!N->train)
        return net_tensor(net_add(N, OP_BN_INFER, (uint32_t[]){x, run, gam, bet}, 4, shp, nd, a, c->path, loc));
    uint32_t st;
    if (N->g->ranks > 1) {
        /* synchronised over the ranks of a train@N program (docs/parallel.md): this rank's sums, summed over
           the ranks, then mean and biased variance over the global count */
        a.bn.count = graph_numel(xn) / C * N->g->ranks;
        uint32_t part = net_add(N, OP_BN_PARTIAL, &x, 1, (int64_t[]){2, C}, 2, a, net_join(N, c->path, "partial"), loc);
        uint32_t sum = net_add(N, OP_ALLREDUCE, &part, 1, (int64_t[]){2, C}, 2, a, net_join(N, c->path, "sums"), loc);
        st = net_add(N, OP_BN_FINALIZE, &sum, 1, (int64_t[]){2, C}, 2, a, net_join(N, c->path, "stats"), loc);
    } else {
        st = net_add(N, OP_BN_STATS, &x, 1, (int64_t[]){2, C}, 2, a, net_join(N, c->path, "stats"), loc);
    }
    uint32_t y = net_add(N, OP_BN_APPLY, (uint32_t[]){x, st, gam, bet}, 4, shp, nd, a, c->path, loc);
    uint32_t r = net_add(N, OP_BN_RUNNING, (uint32_t[]){st, run}, 2, (int64_t[]){2, C}, 2, a,
                     net_join(N, c->path, "running_update"), loc);
    N->g->nodes[r].inplace = run;
    return net_tensor(y);
}

static Value unary(Net *N, const LayerCall *c, GOp op)
{
    const GNode *xn = net_node(N, c->a[0].node);
    return net_tensor(net_add(N, op, &c->a[0].node, 1, xn->shape, xn->ndim, (GAttr){0}, c->path, c->call->loc));
}

static Value l_relu(Net *N, const LayerCall *c) { return unary(N, c, OP_RELU); }

static Value pool2d(Net *N, const LayerCall *c, GOp op)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL) || positive(N, c, 1, 1) || positive(N, c, 2, 0) || positive(N, c, 3, 0))
        return VERR;
    const GNode *xn = net_node(N, x);
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
    return net_tensor(net_add(N, op, &x, 1, shp, 4, a, c->path, c->call->loc));
}
static Value l_maxpool(Net *N, const LayerCall *c) { return pool2d(N, c, OP_MAXPOOL); }
static Value l_avgpool(Net *N, const LayerCall *c) { return pool2d(N, c, OP_AVGPOOL); }

static Value l_gap(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 4, NULL))
        return VERR;
    const GNode *xn = net_node(N, x);
    return net_tensor(net_add(N, OP_GAP, &x, 1, xn->shape, 2, (GAttr){0}, c->path, c->call->loc));
}

static Value l_flatten(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    const GNode *xn = net_node(N, x);
    if (xn->ndim == 2)
        return c->a[0];
    int64_t shp[2] = {xn->shape[0], graph_numel(xn) / xn->shape[0]};
    return net_tensor(net_add(N, OP_RESHAPE, &x, 1, shp, 2, (GAttr){0}, c->path, c->call->loc));
}

static Value l_linear(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 2, "; add global_avgpool or flatten before it") || positive(N, c, 1, 1))
        return VERR;
    const GNode *xn = net_node(N, x);
    int64_t B = xn->shape[0], F = xn->shape[1], O = (int64_t)num(c, 1);
    int bias = c->given[2] ? (int)c->a[2].num : 1;
    DlSrcLoc loc = c->call->loc;
    uint32_t w = net_param(N, net_join(N, c->path, "weight"), (int64_t[]){O, F}, 2, INIT_KAIMING_UNIFORM, (double)F, loc);
    uint32_t b = bias ? net_param(N, net_join(N, c->path, "bias"), &O, 1, INIT_BIAS_UNIFORM, (double)F, loc) : 0;
    GAttr a = {.mm = {0, 1}};
    int64_t shp[2] = {B, O};
    uint32_t y = net_add(N, OP_MATMUL, (uint32_t[]){x, w}, 2, shp, 2, a, bias ? net_join(N, c->path, "matmul") : c->path, loc);
    if (bias)
        y = net_add(N, OP_BIAS_ADD, (uint32_t[]){y, b}, 2, shp, 2, (GAttr){0}, c->path, loc);
    return net_tensor(y);
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
    const GNode *xn = net_node(N, c->a[0].node);
    /* The salt separates the masks of dropout layers of the same shape: a hash
     * of the layer's path, so it is stable across compilations. */
    GAttr a = {.dropout = {(float)p, (uint32_t)(dl_hash64(c->path, strlen(c->path)) & 0xFFFFFu)}};
    return net_tensor(net_add(N, OP_DROPOUT, (uint32_t[]){c->a[0].node, N->scalars}, 2, xn->shape, xn->ndim, a, c->path,
                      c->call->loc));
}

/* softmax inside a network: exp(log_softmax(x)) over the last dim of [B, K].
 * (As a network's return it is the read-out instead: see lw_network.) */
static Value l_softmax(Net *N, const LayerCall *c)
{
    uint32_t x = c->a[0].node;
    if (want_dims(N, c, x, 2, NULL))
        return VERR;
    const GNode *xn = net_node(N, x);
    uint32_t l = net_add(N, OP_LOG_SOFTMAX, &x, 1, xn->shape, 2, (GAttr){0}, net_join(N, c->path, "log"), c->call->loc);
    return net_tensor(net_add(N, OP_EXP, &l, 1, xn->shape, 2, (GAttr){0}, c->path, c->call->loc));
}

const Layer lw_layers[] = {
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
const int lw_nlayers = (int)(sizeof lw_layers / sizeof *lw_layers);

static const Layer *layer_of(const LayerCall *c)
{
    for (int k = 0; k < lw_nlayers; k++)
        if (!strcmp(lw_layers[k].name, c->call->name))
            return &lw_layers[k];
    return &lw_layers[0];
}
