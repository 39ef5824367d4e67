/* build_resample.c - the GG_WINDOW kernels that move values between planes
 * without pooling them: upsample (nearest, bilinear) and its adjoint
 * upsample_bwd, concat along channels and its gradient, slice.  One work
 * item per output (b, c) plane ([B, C] vectors: per element), static loops
 * over the plane inside, as build_window.c's pooling kernels.
 *
 * Upsampling by integer factors f (per axis, n inputs, n*f outputs) follows
 * PyTorch's F.interpolate: nearest reads x[o / f]; bilinear with
 * align_corners=False reads the half-pixel centre s = (o + 0.5)/f - 0.5,
 * clamped at 0, i0 = floor(s), i1 = min(i0 + 1, n - 1), with weights
 * 1 - (s - i0) and s - i0.  In integers: 2f s = max(2o + 1 - f, 0), so
 * i0 = that / 2f and s - i0 = (that % 2f) / 2f, exact; no float is turned into
 * an index (the kernel prover refuses that).  The value is
 * (1-lh) ((1-lw) x00 + lw x01) + lh ((1-lw) x10 + lw x11), PyTorch's order.
 *
 * The adjoint writes each dx element once, from the dy elements that read
 * it (a gather, so no two work items write one element and no atomics are
 * needed, like the overlapping-window pooling backward): nearest sums the
 * f x f block above it; bilinear loops over the outputs whose taps can hit
 * input i, [f(i-1) + f/2, f(i+1) + f/2) clipped to the plane (input i is i0
 * of [f i + f/2, f (i+1) + f/2) and i1 of the f outputs before them; the
 * border clamps only move taps inside that range), recomputes their taps and
 * adds dy times the weights that fall on i.
 *
 * Concat and slice copy planes.  A concat work item picks its input with an
 * `if` per input; the prover trusts no guard, so the source channel is also
 * clamped into the input's range (a no-op where the guard holds).
 */
#include "build_internal.h"

static int loop(KirKernel *k, int blk, const char *role, int lo, int hi, int *var)
{
    int v = kir_var(k, role, KT_I64, 0), body = kir_block(k);
    kir_loop(k, blk, v, lo, hi, body);
    *var = kir_ref(k, v);
    return body;
}

static int i64c(KirKernel *k, int64_t v) { return kir_i64(k, v); }

/* The bilinear taps of output coordinate o along an axis of n inputs, factor
 * f, declared in blk: i0, i1 and the weight l of i1 (f32). */
typedef struct Taps { int i0, i1, l; } Taps;

static Taps taps(KirKernel *k, int blk, int o, int64_t f, int64_t n, const char *const role[4])
{
    int s2 = kir_decl(k, blk, role[0], kir_bin(k, KX_MAX, kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, o, i64c(k, 2)),
                                                                   i64c(k, 1 - f)), i64c(k, 0)));
    Taps t;
    t.i0 = kir_decl(k, blk, role[1], kir_bin(k, KX_DIV, s2, i64c(k, 2 * f)));
    t.i1 = kir_decl(k, blk, role[2], kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, t.i0, i64c(k, 1)), i64c(k, n - 1)));
    t.l = kir_decl(k, blk, role[3], kir_bin(k, KX_DIV, kir_un(k, KX_TOF32, kir_bin(k, KX_MOD, s2, i64c(k, 2 * f))),
                                            kir_f32(k, (float)(2 * f))));
    return t;
}
static const char *const ROW_ROLES[4] = {"sh", "ha", "hb", "lh"};
static const char *const COL_ROLES[4] = {"sw", "wa", "wb", "lw"};

/* (1 - l) a + l b */
static int lerp(KirKernel *k, int l, int a, int b)
{
    return kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, kir_bin(k, KX_SUB, kir_f32(k, 1), l), a), kir_bin(k, KX_MUL, l, b));
}

/* The weight of taps t on input i: (1 - l) where i0 == i, plus l where i1 == i. */
static int weight_on(KirKernel *k, const Taps *t, int i)
{
    int w0 = kir_select(k, kir_bin(k, KX_EQ, t->i0, i), kir_bin(k, KX_SUB, kir_f32(k, 1), t->l), kir_f32(k, 0));
    int w1 = kir_select(k, kir_bin(k, KX_EQ, t->i1, i), t->l, kir_f32(k, 0));
    return kir_bin(k, KX_ADD, w0, w1);
}

/* x [.., H, W] -> y [.., H fh, W fw], one plane (offsets xo, yo). */
static void upsample_fwd(KirKernel *k, const GNode *n, int xb, int yb, int xo, int yo, int64_t H, int64_t W)
{
    int64_t fh = n->attr.up.fh, fw = n->attr.up.fw, OH = H * fh, OW = W * fw;
    int oi, oj;
    int lr = loop(k, k->body, "oi", i64c(k, 0), i64c(k, OH), &oi);
    if (!n->attr.up.bilinear) {
        int row = kir_decl(k, lr, "row", kir_bin(k, KX_ADD, xo, kir_bin(k, KX_MUL, kir_bin(k, KX_DIV, oi, i64c(k, fh)),
                                                                       i64c(k, W))));
        int lc = loop(k, lr, "oj", i64c(k, 0), i64c(k, OW), &oj);
        int v = kir_load(k, xb, kir_bin(k, KX_ADD, row, kir_bin(k, KX_DIV, oj, i64c(k, fw))));
        kir_store(k, lc, yb, kir_bin(k, KX_ADD, yo, kir_madd(k, oi, i64c(k, OW), oj)), v, 0);
        return;
    }
    Taps th = taps(k, lr, oi, fh, H, ROW_ROLES);
    int ra = kir_decl(k, lr, "ra", kir_madd(k, th.i0, i64c(k, W), xo));
    int rb = kir_decl(k, lr, "rb", kir_madd(k, th.i1, i64c(k, W), xo));
    int lc = loop(k, lr, "oj", i64c(k, 0), i64c(k, OW), &oj);
    Taps tw = taps(k, lc, oj, fw, W, COL_ROLES);
    int top = lerp(k, tw.l, kir_load(k, xb, kir_bin(k, KX_ADD, ra, tw.i0)), kir_load(k, xb, kir_bin(k, KX_ADD, ra, tw.i1)));
    int bot = lerp(k, tw.l, kir_load(k, xb, kir_bin(k, KX_ADD, rb, tw.i0)), kir_load(k, xb, kir_bin(k, KX_ADD, rb, tw.i1)));
    int v = lerp(k, th.l, kir_decl(k, lc, "top", top), kir_decl(k, lc, "bot", bot));
    kir_store(k, lc, yb, kir_bin(k, KX_ADD, yo, kir_madd(k, oi, i64c(k, OW), oj)), v, 0);
}

/* [lo, hi) of the outputs along an axis (n inputs, factor f) whose bilinear
 * taps may fall on input i, declared in blk. */
static void reach(KirKernel *k, int blk, int i, int64_t f, int64_t n, int *lo, int *hi)
{
    int base = kir_bin(k, KX_MUL, i, i64c(k, f));
    *lo = kir_decl(k, blk, "olo", kir_bin(k, KX_MAX, kir_bin(k, KX_ADD, base, i64c(k, f / 2 - f)), i64c(k, 0)));
    *hi = kir_decl(k, blk, "ohi", kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, base, i64c(k, f + f / 2)), i64c(k, n * f)));
}

/* dy [.., H fh, W fw] -> dx [.., H, W], one plane (offsets dyo, dxo): each dx
 * element gathers the dy elements that read it, times their weights on it. */
static void upsample_bwd(KirKernel *k, const GNode *n, int dyb, int dxb, int dyo, int dxo, int64_t H, int64_t W)
{
    int64_t fh = n->attr.up.fh, fw = n->attr.up.fw, OW = W * fw;
    int ih, iw, oi, oj;
    int lr = loop(k, k->body, "ih", i64c(k, 0), i64c(k, H), &ih);
    int hlo = -1, hhi = -1;
    if (n->attr.up.bilinear) reach(k, lr, ih, fh, H, &hlo, &hhi);
    int lc = loop(k, lr, "iw", i64c(k, 0), i64c(k, W), &iw);
    int acc = kir_decl_var(k, lc, "acc", KT_F32, kir_f32(k, 0));
    if (!n->attr.up.bilinear) { /* the fh x fw block of outputs above (ih, iw) */
        int a, bq;
        int la = loop(k, lc, "a", i64c(k, 0), i64c(k, fh), &a);
        int row = kir_decl(k, la, "row", kir_bin(k, KX_ADD, dyo, kir_madd(k, kir_madd(k, ih, i64c(k, fh), a), i64c(k, OW),
                                                                          kir_bin(k, KX_MUL, iw, i64c(k, fw)))));
        int lb = loop(k, la, "b", i64c(k, 0), i64c(k, fw), &bq);
        kir_assign(k, lb, acc, kir_load(k, dyb, kir_bin(k, KX_ADD, row, bq)), 1);
    } else {
        int wlo, whi;
        reach(k, lc, iw, fw, W, &wlo, &whi);
        int li = loop(k, lc, "oi", hlo, hhi, &oi);
        Taps th = taps(k, li, oi, fh, H, ROW_ROLES);
        int wh = kir_decl(k, li, "wh", weight_on(k, &th, ih));
        int racc = kir_decl_var(k, li, "racc", KT_F32, kir_f32(k, 0));
        int row = kir_decl(k, li, "row", kir_madd(k, oi, i64c(k, OW), dyo));
        int lj = loop(k, li, "oj", wlo, whi, &oj);
        Taps tw = taps(k, lj, oj, fw, W, COL_ROLES);
        int ww = weight_on(k, &tw, iw);
        kir_assign(k, lj, racc, kir_bin(k, KX_MUL, ww, kir_load(k, dyb, kir_bin(k, KX_ADD, row, oj))), 1);
        kir_assign(k, li, acc, kir_bin(k, KX_MUL, wh, kir_ref(k, racc)), 1);
    }
    kir_store(k, lc, dxb, kir_bin(k, KX_ADD, dxo, kir_madd(k, ih, i64c(k, W), iw)), kir_ref(k, acc), 0);
}

/* dst[yo + i] = src[from + i] for i in [0, inner), in block blk. */
static void copy_plane(KirKernel *k, int blk, int srcb, int from, int dstb, int yo, int64_t inner)
{
    if (inner == 1) {
        kir_store(k, blk, dstb, yo, kir_load(k, srcb, from), 0);
        return;
    }
    int i, l = loop(k, blk, "i", i64c(k, 0), i64c(k, inner), &i);
    kir_store(k, l, dstb, kir_bin(k, KX_ADD, yo, i), kir_load(k, srcb, kir_bin(k, KX_ADD, from, i)), 0);
}

int cg_build_resample(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    if (gr->nnodes != 1) return cg_fail(b, "a window group has one op, not %d", gr->nnodes);
    uint32_t m = gr->nodes[0];
    const GNode *n = cg_node(b, m), *in = cg_node(b, n->in[0]);
    int yb = b->node_buf[m], gid = kir_gid(k), blk = k->body;
    if (n->ndim < 2) return cg_fail(b, "%s of a %d-d tensor", graph_op_name[n->op], n->ndim);
    int64_t C = n->shape[1], inner = graph_numel(n) / (n->shape[0] * C);
    k->grid = n->shape[0] * C;
    switch (n->op) {
    case OP_UPSAMPLE:     /* (x) -> y: one (b,c) plane */
    case OP_UPSAMPLE_BWD: { /* (dy) -> dx: one (b,c) plane */
        int up = n->op == OP_UPSAMPLE;
        const GNode *small = up ? in : n;
        if (n->ndim != 4 || in->ndim != 4 || n->attr.up.fh < 1 || n->attr.up.fw < 1)
            return cg_fail(b, "%s of %d-d tensors by %dx%d", graph_op_name[n->op], n->ndim, n->attr.up.fh,
                           n->attr.up.fw);
        int64_t H = small->shape[2], W = small->shape[3], hw = H * W, ohw = hw * n->attr.up.fh * n->attr.up.fw;
        int small_o = kir_decl(k, blk, up ? "xo" : "dxo", kir_bin(k, KX_MUL, gid, i64c(k, hw)));
        int big_o = kir_decl(k, blk, up ? "yo" : "dyo", kir_bin(k, KX_MUL, gid, i64c(k, ohw)));
        int xb = b->node_buf[n->in[0]];
        if (up) upsample_fwd(k, n, xb, yb, small_o, big_o, H, W);
        else upsample_bwd(k, n, xb, yb, big_o, small_o, H, W);
        break;
    }
    case OP_CONCAT: { /* (x_0, ..., x_k) -> y: the plane (b, c) of the input holding channel c */
        int bi = kir_decl(k, blk, "b", kir_bin(k, KX_DIV, gid, i64c(k, C)));
        int ci = kir_decl(k, blk, "c", kir_bin(k, KX_MOD, gid, i64c(k, C)));
        int yo = kir_decl(k, blk, "yo", kir_bin(k, KX_MUL, gid, i64c(k, inner)));
        int64_t off = 0;
        for (int j = 0; j < n->nin; j++) {
            const GNode *x = cg_node(b, n->in[j]);
            int64_t Cj = x->shape[1];
            int hit = kir_bin(k, KX_AND, kir_bin(k, KX_GE, ci, i64c(k, off)), kir_bin(k, KX_LT, ci, i64c(k, off + Cj)));
            int body = kir_if(k, blk, hit);
            int cj = kir_bin(k, KX_MIN, kir_bin(k, KX_MAX, kir_bin(k, KX_SUB, ci, i64c(k, off)), i64c(k, 0)), i64c(k, Cj - 1));
            int from = kir_decl(k, body, "src", kir_bin(k, KX_MUL, kir_madd(k, bi, i64c(k, Cj), cj), i64c(k, inner)));
            copy_plane(k, body, b->node_buf[n->in[j]], from, yb, yo, inner);
            off += Cj;
        }
        if (off != C) return cg_fail(b, "concat of %lld channels into %lld", (long long)off, (long long)C);
        break;
    }
    case OP_SLICE: { /* (x) -> y: channels [i, i+C) of x */
        int64_t Cx = in->shape[1];
        if (n->attr.i < 0 || n->attr.i + C > Cx) return cg_fail(b, "slice [%d, %lld) of %lld channels", n->attr.i,
                                                                 (long long)(n->attr.i + C), (long long)Cx);
        int bi = kir_bin(k, KX_DIV, gid, i64c(k, C)), ci = kir_bin(k, KX_MOD, gid, i64c(k, C));
        int from = kir_decl(k, blk, "src", kir_bin(k, KX_MUL, kir_madd(k, bi, i64c(k, Cx), kir_bin(k, KX_ADD, ci,
                                                                                                   i64c(k, n->attr.i))),
                                                   i64c(k, inner)));
        int yo = kir_decl(k, blk, "yo", kir_bin(k, KX_MUL, gid, i64c(k, inner)));
        copy_plane(k, blk, b->node_buf[n->in[0]], from, yb, yo, inner);
        break;
    }
    case OP_NCHW_ROWS:   /* (x [B,C,H,W]) -> y [B*H*W, C]: one (b,c) plane of x to column c of its rows */
    case OP_ROWS_NCHW: { /* (x [B*H*W, C]) -> y [B,C,H,W]: column c of the rows to one (b,c) plane of y */
        int fwd = n->op == OP_NCHW_ROWS;
        const GNode *pl = fwd ? in : n;
        if (pl->ndim != 4) return cg_fail(b, "%s of a %d-d tensor", graph_op_name[n->op], pl->ndim);
        int64_t Cp = pl->shape[1], hw = pl->shape[2] * pl->shape[3];
        k->grid = pl->shape[0] * Cp;
        int bi = kir_decl(k, blk, "b", kir_bin(k, KX_DIV, gid, i64c(k, Cp)));
        int ci = kir_decl(k, blk, "c", kir_bin(k, KX_MOD, gid, i64c(k, Cp)));
        int po = kir_decl(k, blk, "po", kir_bin(k, KX_MUL, gid, i64c(k, hw)));      /* the plane */
        int ro = kir_decl(k, blk, "ro", kir_bin(k, KX_MUL, bi, i64c(k, hw)));       /* its first row */
        int xb = b->node_buf[n->in[0]], i, l = loop(k, blk, "p", i64c(k, 0), i64c(k, hw), &i);
        int rix = kir_madd(k, kir_bin(k, KX_ADD, ro, i), i64c(k, Cp), ci), pix = kir_bin(k, KX_ADD, po, i);
        if (fwd) kir_store(k, l, yb, rix, kir_load(k, xb, pix), 0);
        else kir_store(k, l, yb, pix, kir_load(k, xb, rix), 0);
        break;
    }
    default:
        return cg_fail(b, "%s is not a resampling op", graph_op_name[n->op]);
    }
    return b->err ? -1 : 0;
}
