/* build_window.c - the GG_WINDOW kernels (one pooling op; one work item per
 * (b, c) plane, static loops over the plane inside) and the GG_BATCHRED kernel
 * (MEAN of [B] -> [1], one work item).
 * Conventions are PyTorch's (ceil_mode false, no dilation): max pooling pads
 * with -inf and its backward sends dy to the first arg-max of each window in
 * row-major order (NaN wins, as in ATen's max_pool2d kernel); average pooling
 * counts the padding (count_include_pad), so every window divides by k*k.
 *
 * Shapes are constants, so each axis of the output splits into border outputs
 * (the window is clipped by the plane's edge, with bounds computed per output)
 * and interior outputs (the window lies inside: constant window loops, which
 * the C compiler unrolls, and plain strided loads along the output row that it
 * vectorises).  The backward of non-overlapping windows (stride >= size)
 * scatters: each window writes its dx elements (dy at the first arg-max, 0
 * elsewhere; dy/(k*k) for average pooling) and the elements no window covers
 * are zeroed.  Overlapping windows gather: each dx element sums over the
 * windows holding it (max pooling recomputes each window's first arg-max).
 * Both give the same floats as a per-element sum starting from 0 in
 * row-major window order (the scatter writes 0 + dy, so -0 becomes +0 alike).
 */
#include <math.h>
#include <stdlib.h>

#include "build_internal.h"

/* One axis of the pooling: n inputs, no outputs; the windows of outputs
 * [ilo, ihi) lie inside [0, n). */
typedef struct Axis {
    int64_t n, no, ilo, ihi;
} Axis;

typedef struct Win {
    CgBuild *b;
    KirKernel *k;
    const GNode *node;
    Axis ax[2];            /* rows, columns */
    int64_t ks, s, p;
    int xb, yb, xb2;       /* buffers: the input plane side (x or dx), the output side (y or dy), x of maxpool_bwd */
    int xo, yo;            /* plane offsets of this work item in the input / output tensors */
} Win;

/* The window of output o (an expression) along one axis, start = o*s - p.
 * Interior windows (clip 0): input coordinates start + [klo, khi) with the
 * constant offsets [0, ks).  Border windows (clip 1): the input coordinates
 * themselves, [klo, khi) = [max(start, 0), min(start + ks, n)): so that every
 * index is an interval the kernel prover (kir_prove) bounds without knowing
 * how the offset and the start correlate. */
typedef struct WinAx {
    int start, klo, khi, clip;
} WinAx;

static Axis axis_of(int64_t n, int64_t no, int64_t ks, int64_t s, int64_t p)
{
    Axis a = {n, no, (p + s - 1) / s, n + p - ks < 0 ? 0 : (n + p - ks) / s + 1};
    if (a.ilo > no) a.ilo = no;
    if (a.ihi > no) a.ihi = no;
    if (a.ihi < a.ilo) a.ihi = a.ilo;
    return a;
}

static int loop(KirKernel *k, int blk, const char *role, int lo, int hi, int *var)
{
    int v = kir_var(k, role, KT_I64, 0), body = kir_block(k);
    kir_loop(k, blk, v, lo, hi, body);
    *var = kir_ref(k, v);
    return body;
}

/* The window of output o along axis a; border windows get their clipped
 * bounds as locals of blk (role lo/hi), interior windows constant bounds. */
static WinAx win_ax(const Win *w, int blk, const Axis *a, int interior, int o, const char *rlo, const char *rhi)
{
    KirKernel *k = w->k;
    WinAx r = {kir_bin(k, KX_SUB, kir_bin(k, KX_MUL, o, kir_i64(k, w->s)), kir_i64(k, w->p)), kir_i64(k, 0),
               kir_i64(k, w->ks), 0};
    if (!interior) {
        r.clip = 1;
        r.klo = kir_decl(k, blk, rlo, kir_bin(k, KX_MAX, r.start, kir_i64(k, 0)));
        r.khi = kir_decl(k, blk, rhi, kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, r.start, kir_i64(k, w->ks)), kir_i64(k, a->n)));
    }
    return r;
}

/* What one window does, given its row and column extents (blk: the body of
 * the loop over output columns; oi, oj: the output coordinates). */
typedef void (*WinFn)(Win *w, int blk, int oi, int oj, const WinAx *rh, const WinAx *rw);

/* Loops over the output plane, split into border and interior segments:
 * rows [0, ilo) and [ihi, OH) clip per output; inside rows [ilo, ihi) the
 * columns [ilo, ihi) use constant window bounds. */
static void for_windows(Win *w, WinFn fn)
{
    KirKernel *k = w->k;
    const Axis *A = &w->ax[0], *B = &w->ax[1];
    int64_t rseg[3][2] = {{0, A->ilo}, {A->ilo, A->ihi}, {A->ihi, A->no}};
    int64_t cseg[3][2] = {{0, B->ilo}, {B->ilo, B->ihi}, {B->ihi, B->no}};
    for (int r = 0; r < 3; r++) {
        if (rseg[r][0] >= rseg[r][1]) continue;
        int oi, oj, lr = loop(k, k->body, "oi", kir_i64(k, rseg[r][0]), kir_i64(k, rseg[r][1]), &oi);
        WinAx rh = win_ax(w, lr, A, r == 1, oi, "hlo", "hhi");
        for (int c = 0; c < 3; c++) {
            /* a border row clips its columns in one loop over the whole row */
            int64_t lo = r == 1 ? cseg[c][0] : 0, hi = r == 1 ? cseg[c][1] : B->no;
            if (r != 1 && c > 0) break;
            if (lo >= hi) continue;
            int lc = loop(k, lr, "oj", kir_i64(k, lo), kir_i64(k, hi), &oj);
            WinAx rw = win_ax(w, lc, B, r == 1 && c == 1, oj, "wlo", "whi");
            fn(w, lc, oi, oj, &rh, &rw);
        }
    }
}

/* Loops kh, kw over a window; returns the inner body, *pos = the input plane
 * position (h*W + w) of the element. */
static int win_loops(Win *w, int blk, const WinAx *rh, const WinAx *rw, int *pos)
{
    KirKernel *k = w->k;
    int kh, kw;
    int l1 = loop(k, blk, rh->clip ? "ih" : "kh", rh->klo, rh->khi, &kh);
    int l2 = loop(k, l1, rw->clip ? "iw" : "kw", rw->klo, rw->khi, &kw);
    int h = rh->clip ? kh : kir_bin(k, KX_ADD, rh->start, kh), x = rw->clip ? kw : kir_bin(k, KX_ADD, rw->start, kw);
    *pos = kir_madd(k, h, kir_i64(k, w->ax[1].n), x);
    return l2;
}

static int out_at(Win *w, int oi, int oj)
{
    KirKernel *k = w->k;
    return kir_bin(k, KX_ADD, w->yo, kir_madd(k, oi, kir_i64(k, w->ax[1].no), oj));
}

static int in_at(Win *w, int pos) { return kir_bin(w->k, KX_ADD, w->xo, pos); }

/* forward: y = max / mean of the window, in row-major order */
static void fwd_window(Win *w, int blk, int oi, int oj, const WinAx *rh, const WinAx *rw)
{
    KirKernel *k = w->k;
    int mx = w->node->op == OP_MAXPOOL, pos;
    int acc = kir_decl_var(k, blk, "acc", KT_F32, kir_f32(k, mx ? -INFINITY : 0));
    int l = win_loops(w, blk, rh, rw, &pos);
    int v = kir_load(k, w->xb, in_at(w, pos));
    if (mx) kir_assign(k, l, acc, kir_bin(k, KX_MAX, v, kir_ref(k, acc)), 0);
    else kir_assign(k, l, acc, v, 1);
    int r = mx ? kir_ref(k, acc) : kir_bin(k, KX_DIV, kir_ref(k, acc), kir_f32(k, (float)(w->ks * w->ks)));
    kir_store(k, blk, w->yb, out_at(w, oi, oj), r, 0);
}

/* backward, non-overlapping windows: this window writes all its dx elements */
static void bwd_scatter(Win *w, int blk, int oi, int oj, const WinAx *rh, const WinAx *rw)
{
    KirKernel *k = w->k;
    int dy = kir_load(k, w->yb, out_at(w, oi, oj)), pos;
    if (w->node->op == OP_AVGPOOL_BWD) {
        int g = kir_decl(k, blk, "g", kir_bin(k, KX_ADD, kir_f32(k, 0),
                                              kir_bin(k, KX_DIV, dy, kir_f32(k, (float)(w->ks * w->ks)))));
        int l = win_loops(w, blk, rh, rw, &pos);
        kir_store(k, l, w->xb, in_at(w, pos), g, 0);
        return;
    }
    int g = kir_decl(k, blk, "g", kir_bin(k, KX_ADD, kir_f32(k, 0), dy));
    int h0 = rh->clip ? rh->klo : kir_bin(k, KX_ADD, rh->start, rh->klo);
    int x0 = rw->clip ? rw->klo : kir_bin(k, KX_ADD, rw->start, rw->klo);
    int best = kir_decl_var(k, blk, "best", KT_F32, kir_f32(k, -INFINITY));
    int arg = kir_decl_var(k, blk, "arg", KT_I64, kir_madd(k, h0, kir_i64(k, w->ax[1].n), x0));
    int l = win_loops(w, blk, rh, rw, &pos);
    int v = kir_decl(k, l, "v", kir_load(k, w->xb2, in_at(w, pos)));
    int cnd = kir_bin(k, KX_OR, kir_bin(k, KX_GT, v, kir_ref(k, best)), kir_bin(k, KX_NE, v, v));
    int upd = kir_if(k, l, cnd);
    kir_assign(k, upd, best, v, 0);
    kir_assign(k, upd, arg, pos, 0);
    l = win_loops(w, blk, rh, rw, &pos);
    kir_store(k, l, w->xb, in_at(w, pos), kir_select(k, kir_bin(k, KX_EQ, pos, kir_ref(k, arg)), g, kir_f32(k, 0)), 0);
}

/* Zero the dx elements that no window covers (before the scatter): exact
 * loops when the uncovered rows and the uncovered columns are one run each
 * (size 2 stride 2 on an odd plane: the last row and column), else the whole
 * plane first. */
static void zero_uncovered(Win *w)
{
    KirKernel *k = w->k;
    int64_t run[2][2], nrun[2] = {0, 0};
    for (int d = 0; d < 2; d++) {
        const Axis *a = &w->ax[d];
        uint8_t *cov = calloc((size_t)a->n, 1);
        for (int64_t o = 0; o < a->no; o++)
            for (int64_t i = o * w->s - w->p; i < o * w->s - w->p + w->ks; i++)
                if (i >= 0 && i < a->n) cov[i] = 1;
        for (int64_t i = 0; i < a->n; i++)
            if (!cov[i] && (i == 0 || cov[i - 1])) {
                if (nrun[d]++ == 0) run[d][0] = i;
                int64_t j = i;
                while (j < a->n && !cov[j]) j++;
                run[d][1] = j;
            }
        free(cov);
    }
    int64_t H = w->ax[0].n, W = w->ax[1].n;
    int i, j;
    if (nrun[0] > 1 || nrun[1] > 1) { /* the whole plane */
        int l = loop(k, k->body, "i", kir_i64(k, 0), kir_i64(k, H * W), &i);
        kir_store(k, l, w->xb, in_at(w, i), kir_f32(k, 0), 0);
        return;
    }
    if (nrun[0]) { /* uncovered rows, all columns */
        int l = loop(k, k->body, "i", kir_i64(k, run[0][0] * W), kir_i64(k, run[0][1] * W), &i);
        kir_store(k, l, w->xb, in_at(w, i), kir_f32(k, 0), 0);
    }
    if (nrun[1]) { /* uncovered columns of the other rows */
        int64_t rs[2][2] = {{0, nrun[0] ? run[0][0] : H}, {nrun[0] ? run[0][1] : H, H}};
        for (int r = 0; r < 2; r++) {
            if (rs[r][0] >= rs[r][1]) continue;
            int l1 = loop(k, k->body, "h", kir_i64(k, rs[r][0]), kir_i64(k, rs[r][1]), &i);
            int l2 = loop(k, l1, "w", kir_i64(k, run[1][0]), kir_i64(k, run[1][1]), &j);
            kir_store(k, l2, w->xb, in_at(w, kir_madd(k, i, kir_i64(k, W), j)), kir_f32(k, 0), 0);
        }
    }
}

/* [lo, hi) of input rows (or columns) of the window starting at o*s - p */
static void win_range(const Win *w, int o, int64_t n, int *lo, int *hi)
{
    KirKernel *k = w->k;
    int start = kir_bin(k, KX_SUB, kir_bin(k, KX_MUL, o, kir_i64(k, w->s)), kir_i64(k, w->p));
    *lo = kir_bin(k, KX_MAX, start, kir_i64(k, 0));
    *hi = kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, start, kir_i64(k, w->ks)), kir_i64(k, n));
}

/* [lo, hi) of the windows (outputs) along one axis that contain input i:
 * o*s - p <= i < o*s - p + k  <=>  ceil((i+p-k+1)/s) <= o <= floor((i+p)/s);
 * declared as locals of blk */
static void out_range(const Win *w, int blk, int i, const Axis *a, int *lo, int *hi)
{
    KirKernel *k = w->k;
    int ip = kir_bin(k, KX_ADD, i, kir_i64(k, w->p));
    /* for a negative numerator C's truncation rounds up, and the clamp gives 0 */
    *lo = kir_decl(k, blk, "olo", kir_bin(k, KX_MAX, kir_bin(k, KX_DIV, kir_bin(k, KX_ADD, ip, kir_i64(k, w->s - w->ks)),
                                                              kir_i64(k, w->s)), kir_i64(k, 0)));
    *hi = kir_decl(k, blk, "ohi", kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, kir_bin(k, KX_DIV, ip, kir_i64(k, w->s)),
                                                             kir_i64(k, 1)), kir_i64(k, a->no)));
}

/* backward, overlapping windows: each dx element gathers from the windows
 * that hold it */
static void bwd_gather(Win *w)
{
    KirKernel *k = w->k;
    const Axis *A = &w->ax[0], *B = &w->ax[1];
    int ih, iw, oi, oj, lo, hi, lo2, hi2;
    int l0 = loop(k, k->body, "ih", kir_i64(k, 0), kir_i64(k, A->n), &ih);
    out_range(w, l0, ih, A, &lo, &hi);
    int blk = loop(k, l0, "iw", kir_i64(k, 0), kir_i64(k, B->n), &iw);
    out_range(w, blk, iw, B, &lo2, &hi2);
    int acc = kir_decl_var(k, blk, "acc", KT_F32, kir_f32(k, 0));
    int l1 = loop(k, blk, "oi", lo, hi, &oi);
    int l2 = loop(k, l1, "oj", lo2, hi2, &oj);
    int dy = kir_load(k, w->yb, out_at(w, oi, oj));
    int me = kir_madd(k, ih, kir_i64(k, B->n), iw);
    if (w->node->op == OP_AVGPOOL_BWD) {
        kir_assign(k, l2, acc, kir_bin(k, KX_DIV, dy, kir_f32(k, (float)(w->ks * w->ks))), 1);
    } else {
        int wlo, whi, wlo2, whi2, hh, ww;
        win_range(w, oi, A->n, &wlo, &whi);
        win_range(w, oj, B->n, &wlo2, &whi2);
        int best = kir_decl_var(k, l2, "best", KT_F32, kir_f32(k, -INFINITY));
        int arg = kir_decl_var(k, l2, "arg", KT_I64, kir_madd(k, wlo, kir_i64(k, B->n), wlo2));
        int l3 = loop(k, l2, "h", wlo, whi, &hh);
        int l4 = loop(k, l3, "w", wlo2, whi2, &ww);
        int pos = kir_madd(k, hh, kir_i64(k, B->n), ww);
        int v = kir_decl(k, l4, "v", kir_load(k, w->xb2, in_at(w, pos)));
        int cnd = kir_bin(k, KX_OR, kir_bin(k, KX_GT, v, kir_ref(k, best)), kir_bin(k, KX_NE, v, v));
        int upd = kir_if(k, l4, cnd);
        kir_assign(k, upd, best, v, 0);
        kir_assign(k, upd, arg, pos, 0);
        int hit = kir_if(k, l2, kir_bin(k, KX_EQ, kir_ref(k, arg), me));
        kir_assign(k, hit, acc, dy, 1);
    }
    kir_store(k, blk, w->xb, in_at(w, me), kir_ref(k, acc), 0);
}

int cg_build_window(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    if (gr->nnodes != 1) return cg_fail(b, "a window group has one op, not %d", gr->nnodes);
    uint32_t m = gr->nodes[0];
    const GNode *n = cg_node(b, m), *in = cg_node(b, n->in[0]);
    int yb = b->node_buf[m], xb = b->node_buf[n->in[0]], gid = kir_gid(k), blk = k->body;
    if (n->ndim != 4 && n->op != OP_GAP) return cg_fail(b, "%s of a %d-d tensor", graph_op_name[n->op], n->ndim);
    if (in->ndim != 4) return cg_fail(b, "%s reads a %d-d tensor", graph_op_name[n->op], in->ndim);
    Win w = {b, k, n, {{0}}, n->attr.pool.size, n->attr.pool.stride, n->attr.pool.pad, -1, -1, -1, 0, 0};
    if (n->op != OP_GAP && (w.ks < 1 || w.s < 1 || w.p < 0))
        return cg_fail(b, "%s with size %d, stride %d, pad %d", graph_op_name[n->op], (int)w.ks, (int)w.s, (int)w.p);
    int64_t bc = n->shape[0] * n->shape[1];
    switch (n->op) {
    case OP_GAP: { /* one (b,c): y[b,c] = mean_{h,w} x[b,c,h,w] */
        int64_t hw = in->shape[2] * in->shape[3];
        int x;
        k->grid = graph_numel(n);
        int acc = kir_decl_var(k, blk, "acc", KT_F64, kir_f64(k, 0));
        int l = loop(k, blk, "i", kir_i64(k, 0), kir_i64(k, hw), &x);
        kir_assign(k, l, acc, kir_un(k, KX_TOF64, kir_load(k, xb, kir_madd(k, gid, kir_i64(k, hw), x))), 1);
        kir_store(k, blk, yb, gid, kir_bin(k, KX_DIV, kir_ref(k, acc), kir_f64(k, (double)hw)), 0);
        break;
    }
    case OP_MAXPOOL:
    case OP_AVGPOOL: /* one (b,c) plane: each output the max / mean of its window */
        w.ax[0] = axis_of(in->shape[2], n->shape[2], w.ks, w.s, w.p);
        w.ax[1] = axis_of(in->shape[3], n->shape[3], w.ks, w.s, w.p);
        w.xb = xb, w.yb = yb;
        k->grid = bc;
        w.xo = kir_decl(k, blk, "xo", kir_bin(k, KX_MUL, gid, kir_i64(k, in->shape[2] * in->shape[3])));
        w.yo = kir_decl(k, blk, "yo", kir_bin(k, KX_MUL, gid, kir_i64(k, n->shape[2] * n->shape[3])));
        for_windows(&w, fwd_window);
        break;
    case OP_MAXPOOL_BWD:   /* (dy, x) -> dx; one (b,c) plane: dy to each window's first arg-max */
    case OP_AVGPOOL_BWD:   /* (dy) -> dx; one (b,c) plane: dx = sum over windows holding it of dy / (k*k) */
        w.ax[0] = axis_of(n->shape[2], in->shape[2], w.ks, w.s, w.p);
        w.ax[1] = axis_of(n->shape[3], in->shape[3], w.ks, w.s, w.p);
        w.xb = yb, w.yb = xb, w.xb2 = n->op == OP_MAXPOOL_BWD ? b->node_buf[n->in[1]] : -1;
        k->grid = bc;
        w.xo = kir_decl(k, blk, "xo", kir_bin(k, KX_MUL, gid, kir_i64(k, n->shape[2] * n->shape[3])));
        w.yo = kir_decl(k, blk, "yo", kir_bin(k, KX_MUL, gid, kir_i64(k, in->shape[2] * in->shape[3])));
        if (w.s >= w.ks) {
            zero_uncovered(&w);
            for_windows(&w, bwd_scatter);
        } else {
            bwd_gather(&w);
        }
        break;
    default:
        return cg_fail(b, "%s is not a window op", graph_op_name[n->op]);
    }
    return b->err ? -1 : 0;
}
/* One work item sums all of input 0 in double, in index order (a fixed
 * order: the result does not depend on threads), then:
 *   MEAN         y = sum / N
 *   VALID_COUNT  y = max(1, sum)
 *   MEAN_OVER    y = sum / n[0]  (n: input 1) */
int cg_build_batchred(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    GOp op = gr->nnodes == 1 ? cg_node(b, gr->nodes[0])->op : OP_COUNT;
    if (op != OP_MEAN && op != OP_VALID_COUNT && op != OP_MEAN_OVER)
        return cg_fail(b, "a batch reduction group is one mean, valid_count or mean_over");
    uint32_t m = gr->nodes[0];
    const GNode *n = cg_node(b, m);
    int64_t N = graph_numel(cg_node(b, n->in[0]));
    k->grid = 1;
    int acc = kir_decl_var(k, k->body, "acc", KT_F64, kir_f64(k, 0)), x;
    int l = loop(k, k->body, "b", kir_i64(k, 0), kir_i64(k, N), &x);
    kir_assign(k, l, acc, kir_un(k, KX_TOF64, kir_load(k, b->node_buf[n->in[0]], x)), 1);
    int s = kir_ref(k, acc), y;
    if (op == OP_MEAN) y = kir_bin(k, KX_DIV, s, kir_f64(k, (double)N));
    else if (op == OP_VALID_COUNT) y = kir_bin(k, KX_MAX, s, kir_f64(k, 1));
    else y = kir_bin(k, KX_DIV, s, kir_un(k, KX_TOF64, kir_load(k, b->node_buf[n->in[1]], kir_i64(k, 0))));
    kir_store(k, k->body, b->node_buf[m], kir_i64(k, 0), y, 0);
    return b->err ? -1 : 0;
}
