/* build_row.c - the GG_ROW kernel: the loss tail, one work item per row b.
 *
 * Members run in order, each materialised for the row: a [B,W] member lives
 * in its output buffer's row when the group writes it, else in a local array
 * float t<n>[W] (W <= 4096); a [B] or [1] member in a scalar local ([1]
 * outputs are stored by row 0 only).  Row ops (ops.def OPK_ROW):
 *   log_softmax with max-subtraction; its backward dz = g - exp(y) sum g;
 *   kl_rows sum_k y (log y - log q) with 0 log 0 = 0 (Gao et al., TIP 2017);
 *   expect e[a] = sum_k p[k] v[a,k] and its backward (DLDL-v2, IJCAI 2018);
 *   absdiff_rows sum_a |e - t|.
 * Elementwise members use cg_eval_op at (b, k), one loop per member.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"

#define ROW_MAX_WIDTH 4096

typedef struct RowSt { int kind, var; int64_t w; } RowSt;
enum { ST_NONE, ST_BUF, ST_ARR, ST_SCAL };

typedef struct Row {
    CgEval x;        /* first: the elementwise context */
    RowSt *st;       /* per graph node (members only) */
    int gid;
    int64_t B;
    int64_t cur_w;   /* width of the member being evaluated */
    int kcol;        /* its column expression (i64), -1 for scalars */
} Row;

/* columns of node n in this row: [B,W] -> W, [B] -> 1 (per row), [1] -> 0 */
static int64_t width(const Row *r, const GNode *n)
{
    if (graph_numel(n) == 1 && !(n->ndim == 1 && r->B == 1)) return 0;
    if (n->ndim == 1 && n->shape[0] == r->B) return 1;
    if (n->ndim == 2 && n->shape[0] == r->B) return n->shape[1];
    return -1;
}

/* element col of node in this row (col -1: the scalar of a [B] or [1] node) */
static int rd(Row *r, uint32_t node, int col)
{
    CgBuild *b = r->x.b;
    KirKernel *k = r->x.k;
    const GNode *n = cg_node(b, node);
    int64_t w = width(r, n);
    if (w < 0) return cg_fail(b, "%%%u is not a [B,W], [B] or [1] tensor", node), 0;
    if (b->role[node] != CR_NONE) {
        const RowSt *s = &r->st[node];
        switch (s->kind) {
        case ST_SCAL: return kir_ref(k, s->var);
        case ST_ARR: return kir_loadl(k, s->var, col);
        case ST_BUF: return kir_load(k, b->node_buf[node], kir_madd(k, kir_gid(k), kir_i64(k, w), col));
        default: return cg_fail(b, "%%%u read before it is computed", node), 0;
        }
    }
    int buf = b->node_buf[node];
    if (buf < 0) return cg_fail(b, "input %%%u has no kernel buffer", node), 0;
    if (w == 0) return kir_load(k, buf, kir_i64(k, 0));
    if (w == 1) return kir_load(k, buf, kir_gid(k));
    if (col < 0) return cg_fail(b, "%%%u read as a scalar", node), 0;
    return kir_load(k, buf, kir_madd(k, kir_gid(k), kir_i64(k, w), col));
}

static CgVal row_get(CgEval *x, uint32_t node, int how)
{
    Row *r = (Row *)x;
    const GNode *n = cg_node(x->b, node);
    if (how <= CG_AT(0)) return cg_load_ext(x, node, how);
    if (how >= 0) return cg_fail(x->b, "row %d of %%%u in a loss-tail kernel", how, node), (CgVal){0, 0};
    if (how == CG_BCAST && x->b->role[node] == CR_NONE && n->ndim == 1 && r->cur_w > 1 && n->shape[0] == r->cur_w) {
        /* a [K] input (the linear layer's bias) along dim 1, as ops.def's [C] */
        int buf = x->b->node_buf[node];
        if (buf < 0) return cg_fail(x->b, "input %%%u has no kernel buffer", node), (CgVal){0, 0};
        return (CgVal){kir_load(x->k, buf, r->kcol), 0};
    }
    int64_t w = width(r, n);
    if (how == CG_BATCH && w != 1) return cg_fail(x->b, "%%%u is not a [B] tensor", node), (CgVal){0, 0};
    if (w > 1 && w != r->cur_w)
        return cg_fail(x->b, "%%%u has %lld columns, the op %lld", node, (long long)w, (long long)r->cur_w),
               (CgVal){0, 0};
    return (CgVal){rd(r, node, w > 1 ? r->kcol : -1), 0};
}

/* write v to element col of member m (col -1: its scalar) */
static void wr(Row *r, int blk, uint32_t m, int col, int v)
{
    CgBuild *b = r->x.b;
    KirKernel *k = r->x.k;
    RowSt *s = &r->st[m];
    if (s->kind == ST_SCAL) {
        kir_assign(k, blk, s->var, v, 0);
        return;
    }
    if (s->kind == ST_ARR) kir_storel(k, blk, s->var, col, v, 0);
    else kir_store(k, blk, b->node_buf[m], kir_madd(k, kir_gid(k), kir_i64(k, s->w), col), v, 0);
}

/* loop var in [0, n) with a fresh body; returns the body, *col the var */
static int loop(KirKernel *k, int blk, const char *role, int64_t n, int *col)
{
    int v = kir_var(k, role, KT_I64, 0), body = kir_block(k);
    kir_loop(k, blk, v, kir_i64(k, 0), kir_i64(k, n), body);
    *col = kir_ref(k, v);
    return body;
}

static int row_op(Row *r, uint32_t m)
{
    CgBuild *b = r->x.b;
    KirKernel *k = r->x.k;
    const GNode *n = cg_node(b, m);
    int blk = k->body, col, col2;
    int64_t W = r->st[m].w;
    switch (n->op) {
    case OP_LOG_SOFTMAX: { /* y = z - max - log sum exp(z - max) */
        int mx = kir_decl_var(k, blk, "mx", KT_F32, kir_f32(k, -INFINITY));
        int l1 = loop(k, blk, "k", W, &col);
        kir_assign(k, l1, mx, kir_bin(k, KX_MAX, rd(r, n->in[0], col), kir_ref(k, mx)), 0);
        int s = kir_decl_var(k, blk, "acc", KT_F64, kir_f64(k, 0));
        int l2 = loop(k, blk, "k", W, &col);
        kir_assign(k, l2, s, kir_un(k, KX_TOF64, kir_un(k, KX_EXP, kir_bin(k, KX_SUB, rd(r, n->in[0], col), kir_ref(k, mx)))), 1);
        int lse = kir_decl(k, blk, "lse", kir_bin(k, KX_ADD, kir_ref(k, mx), kir_un(k, KX_LOG, kir_un(k, KX_TOF32, kir_ref(k, s)))));
        int l3 = loop(k, blk, "k", W, &col);
        wr(r, l3, m, col, kir_bin(k, KX_SUB, rd(r, n->in[0], col), lse));
        return 0;
    }
    case OP_LOG_SOFTMAX_BWD: { /* dz = g - exp(y) * sum g  (g, y) */
        int s = kir_decl_var(k, blk, "acc", KT_F64, kir_f64(k, 0));
        int l1 = loop(k, blk, "k", W, &col);
        kir_assign(k, l1, s, kir_un(k, KX_TOF64, rd(r, n->in[0], col)), 1);
        int sf = kir_decl(k, blk, "sum", kir_un(k, KX_TOF32, kir_ref(k, s)));
        int l2 = loop(k, blk, "k", W, &col);
        wr(r, l2, m, col, kir_bin(k, KX_SUB, rd(r, n->in[0], col), kir_bin(k, KX_MUL, kir_un(k, KX_EXP, rd(r, n->in[1], col)), sf)));
        return 0;
    }
    case OP_KL_ROWS: { /* l = sum_k y (log y - logq), 0 log 0 = 0  (y, logq) */
        int64_t K = width(r, cg_node(b, n->in[0]));
        int s = kir_decl_var(k, blk, "acc", KT_F64, kir_f64(k, 0));
        int l1 = loop(k, blk, "k", K, &col);
        int y = kir_decl(k, l1, "y", rd(r, n->in[0], col));
        int t = kir_bin(k, KX_MUL, y, kir_bin(k, KX_SUB, kir_un(k, KX_LOG, y), rd(r, n->in[1], col)));
        kir_assign(k, l1, s, kir_un(k, KX_TOF64, kir_select(k, kir_bin(k, KX_GT, y, kir_f32(k, 0)), t, kir_f32(k, 0))), 1);
        wr(r, blk, m, -1, kir_ref(k, s));
        return 0;
    }
    case OP_ABSDIFF_ROWS: { /* l = sum_a |e - t| */
        int64_t A = width(r, cg_node(b, n->in[0]));
        int s = kir_decl_var(k, blk, "acc", KT_F64, kir_f64(k, 0));
        int l1 = loop(k, blk, "a", A, &col);
        kir_assign(k, l1, s, kir_un(k, KX_TOF64, kir_un(k, KX_ABS, kir_bin(k, KX_SUB, rd(r, n->in[0], col), rd(r, n->in[1], col)))), 1);
        wr(r, blk, m, -1, kir_ref(k, s));
        return 0;
    }
    case OP_EXPECT:       /* e[a] = sum_k p[k] v[a,k]  (p[B,K], v[A,K]) */
    case OP_EXPECT_BWD: { /* dp[k] = sum_a g[a] v[a,k]  (g[B,A], v[A,K]) */
        const GNode *v = cg_node(b, n->in[1]);
        int vb = b->node_buf[n->in[1]];
        if (v->ndim != 2 || vb < 0 || b->role[n->in[1]] != CR_NONE)
            return cg_fail(b, "%s: the bin table %%%u is not an [A,K] input", graph_op_name[n->op], n->in[1]);
        int64_t A = v->shape[0], K = v->shape[1];
        int ex = n->op == OP_EXPECT;
        int outer = loop(k, blk, ex ? "a" : "k", ex ? A : K, &col);
        int s = kir_decl_var(k, outer, "acc", ex ? KT_F64 : KT_F32, ex ? kir_f64(k, 0) : kir_f32(k, 0));
        int in = loop(k, outer, ex ? "k" : "a", ex ? K : A, &col2);
        int vi = ex ? kir_madd(k, col, kir_i64(k, K), col2) : kir_madd(k, col2, kir_i64(k, K), col);
        int t = kir_bin(k, KX_MUL, rd(r, n->in[0], col2), kir_load(k, vb, vi));
        kir_assign(k, in, s, ex ? kir_un(k, KX_TOF64, t) : t, 1);
        wr(r, outer, m, col, kir_ref(k, s));
        return 0;
    }
    default:
        break;
    }
    return cg_fail(b, "%s in a loss-tail kernel", graph_op_name[n->op]);
}

/* The rows of a row group: R = B, or B*H*W for a per-pixel head (every ROW
 * op's output is [R, ...]). */
static int64_t group_rows(const CgBuild *b)
{
    for (int i = 0; i < b->grp->nnodes; i++)
        if (graph_op_kind[cg_node(b, b->grp->nodes[i])->op] == OPK_ROW) return cg_node(b, b->grp->nodes[i])->shape[0];
    return b->g->batch;
}

int cg_build_row(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    Row r = {.x = {.b = b, .k = k, .row_e = -1, .get = row_get}, .B = group_rows(b)};
    r.st = dl_xcalloc(b->g->n + 1, sizeof *r.st);
    r.gid = kir_gid(k);
    k->grid = r.B;
    for (int i = 0; i < gr->nnodes && !b->err; i++) {
        uint32_t m = gr->nodes[i];
        const GNode *n = cg_node(b, m);
        int64_t w = width(&r, n);
        RowSt *s = &r.st[m];
        s->w = w;
        if (w < 0 || w > ROW_MAX_WIDTH) {
            char sh[64];
            cg_shape_str(n, sh, sizeof sh);
            cg_fail(b, "%%%u %s: not a row of at most %d values of a batch of %lld", m, sh, ROW_MAX_WIDTH, (long long)r.B);
            break;
        }
        if (w <= 1) s->kind = ST_SCAL, s->var = kir_decl_var(k, k->body, w ? "r" : "s", KT_F32, kir_f32(k, 0));
        else if (b->is_out[m]) s->kind = ST_BUF;
        else s->kind = ST_ARR, s->var = kir_decl_arr(k, k->body, "t", (int)w);
        if (graph_op_kind[n->op] == OPK_ROW) {
            row_op(&r, m);
        } else {
            /* an elementwise member at (b, k), one loop over its columns */
            int blk = k->body, col = -1;
            if (w > 1) blk = loop(k, k->body, "k", w, &col);
            r.cur_w = w, r.kcol = col;
            r.x.nd = w ? 2 : 1;
            r.x.D[0] = w ? r.B : 1, r.x.D[1] = w ? w : 1;
            r.x.lin = w > 1 ? kir_madd(k, r.gid, kir_i64(k, w), col) : w ? r.gid : kir_i64(k, 0);
            r.x.bi = w ? r.gid : kir_i64(k, 0);
            r.x.ci = w > 1 ? col : kir_i64(k, 0);
            r.x.blk[0] = r.x.blk[1] = r.x.blk[2] = blk;
            r.x.ncache = 0; /* loads are per loop */
            wr(&r, blk, m, col, cg_eval_op(&r.x, m).e);
        }
        if (w <= 1 && b->is_out[m]) { /* [B] at b; [1] by row 0 only */
            int blk = w ? k->body : kir_if(k, k->body, kir_bin(k, KX_EQ, r.gid, kir_i64(k, 0)));
            kir_store(k, blk, b->node_buf[m], w ? r.gid : kir_i64(k, 0), kir_ref(k, s->var), 0);
        }
    }
    free(r.st);
    cg_eval_free(&r.x);
    return b->err ? -1 : 0;
}

/* ---- the GPU schedule: one block per row ------------------------------------
 *
 * One CUDA block of ROW_THREADS threads per row b (issue 15: the loss tail
 * one block per row, the row in shared memory).  The members run in the same
 * order as above; a [B,W] member that is not an output lives in a shared
 * array t<n>[W] instead of a local one.  Column loops are strided: thread t
 * takes columns t, t+T, ... (coalesced).  A row reduction (max, sums) is a
 * per-thread partial over its columns, then a fixed tree over the block in
 * shared memory (one barrier a level; deterministic, in another order than
 * the CPU's sequential sum, so equal within rounding), whose result every
 * thread reads; a barrier follows every member written per column, so the
 * next member may read any column.  [B] and [1] members are scalars every
 * thread computes alike; stores of them are thread 0's.  A tail whose shared
 * arrays would not fit (KIR_MAX_SHARED) or with more than ROW_GPU_MAX_A
 * expectation axes keeps the flat kernel. */
#define ROW_THREADS 128
#define ROW_GPU_MAX_A 8

typedef struct RowGpu {
    Row r;           /* first: row_get finds its Row from the CgEval */
    int tid;
    int redd, redf;  /* shared f64 / f32 [T]: the trees */
} RowGpu;

/* A strided loop over columns [0, w) at the root: returns the block of one
 * column, *col its index (the thread's column, min(...) lets kir_prove bound it). */
static int gloop(RowGpu *G, int64_t w, int *col)
{
    KirKernel *k = G->r.x.k;
    if (w == 1) { /* one column: thread 0's */
        *col = kir_i64(k, 0);
        return kir_if(k, k->body, kir_bin(k, KX_EQ, G->tid, kir_i64(k, 0)));
    }
    int q = kir_var(k, "q", KT_I64, 0), body = kir_block(k);
    int jr = kir_madd(k, kir_ref(k, q), kir_i64(k, ROW_THREADS), G->tid);
    int in = kir_if(k, body, kir_bin(k, KX_LT, jr, kir_i64(k, w)));
    *col = kir_decl(k, in, "k", kir_bin(k, KX_MIN, jr, kir_i64(k, w - 1)));
    kir_loop(k, k->body, q, kir_i64(k, 0), kir_i64(k, (w + ROW_THREADS - 1) / ROW_THREADS), body);
    return in;
}

/* The block's reduction of each thread's partial var (f64 sum, or f32 max
 * when is_max): a tree in shared memory; returns a root-level local holding
 * the result in every thread.  Barriers before and after the tree's reads. */
static int block_reduce(RowGpu *G, int var, int is_max)
{
    KirKernel *k = G->r.x.k;
    int sh = is_max ? G->redf : G->redd, tid = G->tid;
    kir_storel(k, k->body, sh, tid, kir_ref(k, var), 0);
    kir_barrier(k);
    for (int64_t h = ROW_THREADS / 2; h >= 1; h /= 2) {
        int lvl = kir_if(k, k->body, kir_bin(k, KX_LT, tid, kir_i64(k, h)));
        int t = kir_bin(k, KX_MIN, tid, kir_i64(k, h - 1)); /* tid inside the if */
        int other = kir_loadl(k, sh, kir_bin(k, KX_ADD, t, kir_i64(k, h)));
        if (is_max) kir_storel(k, lvl, sh, t, kir_bin(k, KX_MAX, kir_loadl(k, sh, t), other), 0);
        else kir_storel(k, lvl, sh, t, other, 1);
        kir_barrier(k);
    }
    int v = kir_decl(k, k->body, is_max ? "mx" : "sum", kir_loadl(k, sh, kir_i64(k, 0)));
    kir_barrier(k); /* every thread has read the result before the array is reused */
    return v;
}

/* A per-thread partial: a root-level local of type t initialised to init. */
static int partial(KirKernel *k, const char *role, KirType t, int init)
{
    return kir_decl_var(k, k->body, role, t, init);
}

/* Member m written by thread 0 only (a column every thread computed alike). */
static void wr0(RowGpu *G, uint32_t m, int col, int v)
{
    KirKernel *k = G->r.x.k;
    if (G->r.st[m].kind == ST_SCAL) {
        wr(&G->r, k->body, m, -1, v);
        return;
    }
    int t0 = kir_if(k, k->body, kir_bin(k, KX_EQ, G->tid, kir_i64(k, 0)));
    wr(&G->r, t0, m, col, v);
}

static int row_op_gpu(RowGpu *G, uint32_t m)
{
    Row *r = &G->r;
    CgBuild *b = r->x.b;
    KirKernel *k = r->x.k;
    const GNode *n = cg_node(b, m);
    int col;
    int64_t W = r->st[m].w;
    switch (n->op) {
    case OP_LOG_SOFTMAX: { /* y = z - max - log sum exp(z - max) */
        int mx = partial(k, "mx", KT_F32, kir_f32(k, -INFINITY));
        int l1 = gloop(G, W, &col);
        kir_assign(k, l1, mx, kir_bin(k, KX_MAX, rd(r, n->in[0], col), kir_ref(k, mx)), 0);
        int mxs = block_reduce(G, mx, 1);
        int s = partial(k, "acc", KT_F64, kir_f64(k, 0));
        int l2 = gloop(G, W, &col);
        kir_assign(k, l2, s, kir_un(k, KX_TOF64, kir_un(k, KX_EXP, kir_bin(k, KX_SUB, rd(r, n->in[0], col), mxs))), 1);
        int tot = block_reduce(G, s, 0);
        int lse = kir_decl(k, k->body, "lse", kir_bin(k, KX_ADD, mxs, kir_un(k, KX_LOG, kir_un(k, KX_TOF32, tot))));
        int l3 = gloop(G, W, &col);
        wr(r, l3, m, col, kir_bin(k, KX_SUB, rd(r, n->in[0], col), lse));
        return 0;
    }
    case OP_LOG_SOFTMAX_BWD: { /* dz = g - exp(y) * sum g  (g, y) */
        int s = partial(k, "acc", KT_F64, kir_f64(k, 0));
        int l1 = gloop(G, W, &col);
        kir_assign(k, l1, s, kir_un(k, KX_TOF64, rd(r, n->in[0], col)), 1);
        int sf = kir_decl(k, k->body, "sum", kir_un(k, KX_TOF32, block_reduce(G, s, 0)));
        int l2 = gloop(G, W, &col);
        wr(r, l2, m, col, kir_bin(k, KX_SUB, rd(r, n->in[0], col), kir_bin(k, KX_MUL, kir_un(k, KX_EXP, rd(r, n->in[1], col)), sf)));
        return 0;
    }
    case OP_KL_ROWS: { /* l = sum_k y (log y - logq), 0 log 0 = 0  (y, logq) */
        int64_t K = width(r, cg_node(b, n->in[0]));
        int s = partial(k, "acc", KT_F64, kir_f64(k, 0));
        int l1 = gloop(G, K, &col);
        int y = kir_decl(k, l1, "y", rd(r, n->in[0], col));
        int t = kir_bin(k, KX_MUL, y, kir_bin(k, KX_SUB, kir_un(k, KX_LOG, y), rd(r, n->in[1], col)));
        kir_assign(k, l1, s, kir_un(k, KX_TOF64, kir_select(k, kir_bin(k, KX_GT, y, kir_f32(k, 0)), t, kir_f32(k, 0))), 1);
        wr(r, k->body, m, -1, block_reduce(G, s, 0));
        return 0;
    }
    case OP_ABSDIFF_ROWS: { /* l = sum_a |e - t| */
        int64_t A = width(r, cg_node(b, n->in[0]));
        int s = partial(k, "acc", KT_F64, kir_f64(k, 0));
        int l1 = gloop(G, A, &col);
        kir_assign(k, l1, s, kir_un(k, KX_TOF64, kir_un(k, KX_ABS, kir_bin(k, KX_SUB, rd(r, n->in[0], col), rd(r, n->in[1], col)))), 1);
        wr(r, k->body, m, -1, block_reduce(G, s, 0));
        return 0;
    }
    case OP_EXPECT:       /* e[a] = sum_k p[k] v[a,k]: a block reduction per a */
    case OP_EXPECT_BWD: { /* dp[k] = sum_a g[a] v[a,k]: per column */
        const GNode *v = cg_node(b, n->in[1]);
        int vb = b->node_buf[n->in[1]];
        if (v->ndim != 2 || vb < 0 || b->role[n->in[1]] != CR_NONE)
            return cg_fail(b, "%s: the bin table %%%u is not an [A,K] input", graph_op_name[n->op], n->in[1]);
        int64_t A = v->shape[0], K = v->shape[1];
        if (n->op == OP_EXPECT_BWD) { /* as the flat kernel, this thread's columns k */
            int l1 = gloop(G, K, &col), ca;
            int s = kir_decl_var(k, l1, "acc", KT_F32, kir_f32(k, 0));
            int in = loop(k, l1, "a", A, &ca);
            kir_assign(k, in, s, kir_bin(k, KX_MUL, rd(r, n->in[0], ca), kir_load(k, vb, kir_madd(k, ca, kir_i64(k, K), col))), 1);
            wr(r, l1, m, col, kir_ref(k, s));
            return 0;
        }
        for (int64_t a = 0; a < A; a++) {
            int s = partial(k, "acc", KT_F64, kir_f64(k, 0));
            int l1 = gloop(G, K, &col);
            kir_assign(k, l1, s, kir_un(k, KX_TOF64, kir_bin(k, KX_MUL, rd(r, n->in[0], col),
                                                             kir_load(k, vb, kir_madd(k, kir_i64(k, a), kir_i64(k, K), col)))), 1);
            wr0(G, m, kir_i64(k, a), block_reduce(G, s, 0));
        }
        return 0;
    }
    default:
        break;
    }
    return cg_fail(b, "%s in a loss-tail kernel", graph_op_name[n->op]);
}

int cg_build_row_gpu(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    k->block = ROW_THREADS;
    RowGpu G = {.r = {.x = {.b = b, .k = k, .row_e = -1, .get = row_get}, .B = group_rows(b)}};
    Row *r = &G.r;
    r->gid = kir_gid(k);
    G.tid = kir_tid(k);
    k->grid = r->B;
    /* what the schedule needs, before building anything */
    int64_t shared = ROW_THREADS * (8 + 4);
    for (int i = 0; i < gr->nnodes; i++) {
        const GNode *n = cg_node(b, gr->nodes[i]);
        int64_t w = width(r, n);
        if (w < 0 || w > ROW_MAX_WIDTH) return cg_fail(b, "%%%u: not a row", gr->nodes[i]);
        if (w > 1 && !b->is_out[gr->nodes[i]]) shared += 4 * w;
        if (n->op == OP_EXPECT && cg_node(b, n->in[1])->ndim == 2 && cg_node(b, n->in[1])->shape[0] > ROW_GPU_MAX_A)
            return 1; /* declined: the flat kernel */
    }
    if (shared > KIR_MAX_SHARED) return 1;
    G.redd = kir_decl_shared(k, "red", KT_F64, ROW_THREADS);
    G.redf = kir_decl_shared(k, "redf", KT_F32, ROW_THREADS);
    r->st = dl_xcalloc(b->g->n + 1, sizeof *r->st);
    for (int i = 0; i < gr->nnodes && !b->err; i++) {
        uint32_t m = gr->nodes[i];
        const GNode *n = cg_node(b, m);
        int64_t w = width(r, n);
        RowSt *s = &r->st[m];
        s->w = w;
        if (w <= 1) s->kind = ST_SCAL, s->var = kir_decl_var(k, k->body, w ? "r" : "s", KT_F32, kir_f32(k, 0));
        else if (b->is_out[m]) s->kind = ST_BUF;
        else s->kind = ST_ARR, s->var = kir_decl_shared(k, "t", KT_F32, (int)w);
        if (graph_op_kind[n->op] == OPK_ROW) {
            row_op_gpu(&G, m);
        } else {
            /* an elementwise member at (b, k): this thread's columns, or a scalar every thread computes */
            int blk = k->body, col = -1;
            if (w > 1) blk = gloop(&G, w, &col);
            r->cur_w = w, r->kcol = col;
            r->x.nd = w ? 2 : 1;
            r->x.D[0] = w ? r->B : 1, r->x.D[1] = w ? w : 1;
            r->x.lin = w > 1 ? kir_madd(k, r->gid, kir_i64(k, w), col) : w ? r->gid : kir_i64(k, 0);
            r->x.bi = w ? r->gid : kir_i64(k, 0);
            r->x.ci = w > 1 ? col : kir_i64(k, 0);
            r->x.blk[0] = r->x.blk[1] = r->x.blk[2] = blk;
            r->x.ncache = 0; /* loads are per loop */
            wr(r, blk, m, col, cg_eval_op(&r->x, m).e);
        }
        if (w > 1) kir_barrier(k); /* the member's columns, written by their threads, visible to all */
        if (w <= 1 && b->is_out[m]) { /* [B] at b; [1] by row 0 only; thread 0 */
            int first = kir_bin(k, KX_EQ, G.tid, kir_i64(k, 0));
            if (!w) first = kir_bin(k, KX_AND, first, kir_bin(k, KX_EQ, r->gid, kir_i64(k, 0)));
            int blk = kir_if(k, k->body, first);
            kir_store(k, blk, b->node_buf[m], w ? r->gid : kir_i64(k, 0), kir_ref(k, s->var), 0);
        }
    }
    free(r->st);
    cg_eval_free(&r->x);
    return b->err ? -1 : 0;
}
