/* build_window.c - the GG_WINDOW kernels (one pooling op: one work item per
 * output element, or per input element of dx for the backward ops) and the
 * GG_BATCHRED kernel (MEAN of [B] -> [1], one work item).
 * Conventions are PyTorch's (ceil_mode false, no dilation): max pooling pads
 * with -inf and its backward sends dy to the first arg-max of each window in
 * row-major order (NaN wins, as in ATen's max_pool2d kernel); average pooling
 * counts the padding (count_include_pad), so every window divides by k*k.
 */
#include <math.h>
#include <stdlib.h>

#include "build_internal.h"

typedef struct Win {
    KirKernel *k;
    int64_t H, W;          /* input plane */
    int ks, s, p;
} Win;

/* [lo, hi) of input rows (or columns) of the window starting at o*s - p */
static void win_range(const Win *w, int o, int64_t n, int *lo, int *hi)
{
    KirKernel *k = w->k;
    int start = kir_bin(k, KX_SUB, kir_bin(k, KX_MUL, o, kir_i64(k, w->s)), kir_i64(k, w->p));
    *lo = kir_bin(k, KX_MAX, start, kir_i64(k, 0));
    *hi = kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, start, kir_i64(k, w->ks)), kir_i64(k, n));
}

/* [lo, hi) of the windows (outputs) along one axis that contain input i:
 * o*s - p <= i < o*s - p + k  <=>  ceil((i+p-k+1)/s) <= o <= floor((i+p)/s) */
static void out_range(const Win *w, int i, int64_t nout, int *lo, int *hi)
{
    KirKernel *k = w->k;
    int ip = kir_bin(k, KX_ADD, i, kir_i64(k, w->p));
    /* for a negative numerator C's truncation rounds up, and the clamp gives 0 */
    *lo = kir_bin(k, KX_MAX, kir_bin(k, KX_DIV, kir_bin(k, KX_ADD, ip, kir_i64(k, w->s - w->ks)), kir_i64(k, w->s)),
                  kir_i64(k, 0));
    *hi = kir_bin(k, KX_MIN, kir_bin(k, KX_ADD, kir_bin(k, KX_DIV, ip, kir_i64(k, w->s)), kir_i64(k, 1)),
                  kir_i64(k, nout));
}

static int loop(KirKernel *k, int blk, const char *role, int lo, int hi, int *var)
{
    int v = kir_var(k, role, KT_I64, 0), body = kir_block(k);
    kir_loop(k, blk, v, lo, hi, body);
    *var = kir_ref(k, v);
    return body;
}

/* split gid into (bc, i, j) of a [B*C, n1, n2] space */
static void split3(KirKernel *k, int gid, int64_t n1, int64_t n2, int *bc, int *i, int *j)
{
    int blk = k->body;
    *j = kir_decl(k, blk, "j", kir_bin(k, KX_MOD, gid, kir_i64(k, n2)));
    *i = kir_decl(k, blk, "i", kir_bin(k, KX_MOD, kir_bin(k, KX_DIV, gid, kir_i64(k, n2)), kir_i64(k, n1)));
    *bc = kir_decl(k, blk, "bc", kir_bin(k, KX_DIV, gid, kir_i64(k, n1 * n2)));
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
    Win w = {k, 0, 0, n->attr.pool.size, n->attr.pool.stride, n->attr.pool.pad};
    int bc, oi, oj, h, x, lo, hi, lo2, hi2;
    switch (n->op) {
    case OP_GAP: { /* y[b,c] = mean_{h,w} x[b,c,h,w] */
        int64_t hw = in->shape[2] * in->shape[3];
        k->grid = graph_numel(n);
        int acc = kir_decl_var(k, blk, "acc", KT_F64, kir_f64(k, 0));
        int l = loop(k, blk, "i", kir_i64(k, 0), kir_i64(k, hw), &x);
        kir_assign(k, l, acc, kir_un(k, KX_TOF64, kir_load(k, xb, kir_madd(k, gid, kir_i64(k, hw), x))), 1);
        kir_store(k, blk, yb, gid, kir_bin(k, KX_DIV, kir_ref(k, acc), kir_f64(k, (double)hw)), 0);
        break;
    }
    case OP_MAXPOOL:
    case OP_AVGPOOL: { /* one output element: the max / mean of its window */
        w.H = in->shape[2], w.W = in->shape[3];
        k->grid = graph_numel(n);
        split3(k, gid, n->shape[2], n->shape[3], &bc, &oi, &oj);
        int mx = n->op == OP_MAXPOOL;
        int acc = kir_decl_var(k, blk, "acc", KT_F32, kir_f32(k, mx ? -INFINITY : 0));
        win_range(&w, oi, w.H, &lo, &hi);
        win_range(&w, oj, w.W, &lo2, &hi2);
        int l1 = loop(k, blk, "h", lo, hi, &h);
        int l2 = loop(k, l1, "w", lo2, hi2, &x);
        int v = kir_load(k, xb, kir_madd(k, kir_madd(k, bc, kir_i64(k, w.H), h), kir_i64(k, w.W), x));
        if (mx) kir_assign(k, l2, acc, kir_bin(k, KX_MAX, v, kir_ref(k, acc)), 0);
        else kir_assign(k, l2, acc, v, 1);
        int r = mx ? kir_ref(k, acc) : kir_bin(k, KX_DIV, kir_ref(k, acc), kir_f32(k, (float)(w.ks * w.ks)));
        kir_store(k, blk, yb, gid, r, 0);
        break;
    }
    case OP_MAXPOOL_BWD:   /* (dy, x): dx gets dy at each window's first arg-max */
    case OP_AVGPOOL_BWD: { /* (dy): dx = sum over windows containing it of dy / (k*k) */
        int64_t OH = in->shape[2], OW = in->shape[3];
        w.H = n->shape[2], w.W = n->shape[3];
        k->grid = graph_numel(n);
        int ih, iw;
        split3(k, gid, w.H, w.W, &bc, &ih, &iw);
        int acc = kir_decl_var(k, blk, "acc", KT_F32, kir_f32(k, 0));
        out_range(&w, ih, OH, &lo, &hi);
        out_range(&w, iw, OW, &lo2, &hi2);
        int l1 = loop(k, blk, "oi", lo, hi, &oi);
        int l2 = loop(k, l1, "oj", lo2, hi2, &oj);
        int dy = kir_load(k, xb, kir_madd(k, kir_madd(k, bc, kir_i64(k, OH), oi), kir_i64(k, OW), oj));
        if (n->op == OP_AVGPOOL_BWD) {
            kir_assign(k, l2, acc, kir_bin(k, KX_DIV, dy, kir_f32(k, (float)(w.ks * w.ks))), 1);
        } else {
            int xb2 = b->node_buf[n->in[1]];
            int wlo, whi, wlo2, whi2, hh, ww;
            win_range(&w, oi, w.H, &wlo, &whi);
            win_range(&w, oj, w.W, &wlo2, &whi2);
            int best = kir_decl_var(k, l2, "best", KT_F32, kir_f32(k, -INFINITY));
            int arg = kir_decl_var(k, l2, "arg", KT_I64, kir_madd(k, wlo, kir_i64(k, w.W), wlo2));
            int l3 = loop(k, l2, "h", wlo, whi, &hh);
            int l4 = loop(k, l3, "w", wlo2, whi2, &ww);
            int pos = kir_madd(k, hh, kir_i64(k, w.W), ww);
            int v = kir_decl(k, l4, "v", kir_load(k, xb2, kir_madd(k, bc, kir_i64(k, w.H * w.W), pos)));
            int cnd = kir_bin(k, KX_OR, kir_bin(k, KX_GT, v, kir_ref(k, best)), kir_bin(k, KX_NE, v, v));
            int upd = kir_if(k, l4, cnd);
            kir_assign(k, upd, best, v, 0);
            kir_assign(k, upd, arg, pos, 0);
            int hit = kir_if(k, l2, kir_bin(k, KX_EQ, kir_ref(k, arg), kir_madd(k, ih, kir_i64(k, w.W), iw)));
            kir_assign(k, hit, acc, dy, 1);
        }
        kir_store(k, blk, yb, gid, kir_ref(k, acc), 0);
        break;
    }
    default:
        return cg_fail(b, "%s is not a window op", graph_op_name[n->op]);
    }
    return b->err ? -1 : 0;
}

int cg_build_batchred(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    if (gr->nnodes != 1 || cg_node(b, gr->nodes[0])->op != OP_MEAN)
        return cg_fail(b, "a batch reduction group is one mean");
    uint32_t m = gr->nodes[0];
    int64_t N = graph_numel(cg_node(b, cg_node(b, m)->in[0]));
    k->grid = 1;
    int acc = kir_decl_var(k, k->body, "acc", KT_F64, kir_f64(k, 0)), x;
    int l = loop(k, k->body, "b", kir_i64(k, 0), kir_i64(k, N), &x);
    kir_assign(k, l, acc, kir_un(k, KX_TOF64, kir_load(k, b->node_buf[cg_node(b, m)->in[0]], x)), 1);
    kir_store(k, k->body, b->node_buf[m], kir_i64(k, 0), kir_bin(k, KX_DIV, kir_ref(k, acc), kir_f64(k, (double)N)), 0);
    return b->err ? -1 : 0;
}
