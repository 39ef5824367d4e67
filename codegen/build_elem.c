/* build_elem.c - the maths of every elementwise op (cg_eval_op, shared by all
 * builders) and the GG_ELEM kernel: one work item per (b,c) plane of a
 * [B,C,H,W] output with an inner loop over H*W, else one per element; and
 * the GPU schedule of the 4-D case (a block per plane).
 */
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"

static int imax(int a, int b) { return a > b ? a : b; }

CgVal cg_decl(CgEval *x, int lvl, const char *role, int e)
{
    return (CgVal){kir_decl(x->k, x->blk[lvl], role, e), lvl};
}

int cg_cache_find(const CgEval *x, uint32_t node, int how, CgVal *v)
{
    for (int i = 0; i < x->ncache; i++)
        if (x->cache[i].node == node && x->cache[i].how == how) {
            *v = x->cache[i].v;
            return 1;
        }
    return 0;
}

void cg_cache_put(CgEval *x, uint32_t node, int how, CgVal v)
{
    if (x->ncache == x->capcache) {
        x->capcache = x->capcache ? 2 * x->capcache : 16;
        x->cache = dl_xrealloc(x->cache, (size_t)x->capcache * sizeof *x->cache);
    }
    x->cache[x->ncache++] = (CgCacheEnt){node, how, v};
}

void cg_eval_free(CgEval *x)
{
    free(x->cache);
    x->cache = NULL;
    x->ncache = x->capcache = 0;
}

static int64_t numel_d(const CgEval *x)
{
    int64_t n = 1;
    for (int d = 0; d < x->nd; d++) n *= x->D[d];
    return n;
}

CgVal cg_load_ext(CgEval *x, uint32_t node, int how)
{
    CgVal v;
    if (cg_cache_find(x, node, how, &v)) return v;
    KirKernel *k = x->k;
    const GNode *n = cg_node(x->b, node);
    int buf = x->b->node_buf[node];
    if (buf < 0) return cg_fail(x->b, "input %%%u has no kernel buffer", node), (CgVal){0, 0};
    int64_t ns = graph_numel(n), nd = numel_d(x), C = x->nd >= 2 ? x->D[1] : x->D[0];
    int idx, lvl;
    if (how <= CG_AT(0)) {
        idx = kir_i64(k, CG_AT(0) - how), lvl = 0;
    } else if (how >= 0) { /* row `how` of [r,C] at this channel */
        if (cg_rows(n) <= how || n->shape[n->ndim - 1] != C)
            return cg_fail(x->b, "row %d of %%%u: not an [r,%lld] tensor", how, node, (long long)C), (CgVal){0, 0};
        idx = kir_bin(k, KX_ADD, kir_i64(k, (int64_t)how * C), x->ci), lvl = x->lvl_c;
    } else if (how == CG_BATCH) {
        if (n->ndim != 1 || n->shape[0] != x->D[0])
            return cg_fail(x->b, "%%%u is not a [B] tensor", node), (CgVal){0, 0};
        idx = x->bi, lvl = x->lvl_b;
    } else if (ns == nd) {
        idx = x->lin, lvl = x->lvl_lin;
    } else if (ns == 1) {
        idx = kir_i64(k, 0), lvl = 0;
    } else if (x->nd >= 2 && n->ndim == 1 && n->shape[0] == C) {
        idx = x->ci, lvl = x->lvl_c;
    } else if (x->nd >= 2 && n->ndim == 1 && n->shape[0] == x->D[0]) {
        idx = x->bi, lvl = x->lvl_b;
    } else if (x->nd >= 3 && n->ndim == 2 && n->shape[0] == x->D[0] && n->shape[1] == C) {
        idx = kir_madd(k, x->bi, kir_i64(k, C), x->ci), lvl = imax(x->lvl_b, x->lvl_c);
    } else {
        char a[64], d[64];
        cg_shape_str(n, a, sizeof a);
        GNode dn = {.ndim = x->nd};
        memcpy(dn.shape, x->D, sizeof dn.shape);
        cg_shape_str(&dn, d, sizeof d);
        return cg_fail(x->b, "input %%%u %s does not broadcast to %s", node, a, d), (CgVal){0, 0};
    }
    v = cg_decl(x, lvl, "ld", kir_load(k, buf, idx));
    cg_cache_put(x, node, how, v);
    return v;
}

CgVal cg_elem_get(CgEval *x, uint32_t node, int how)
{
    uint8_t role = x->b->role[node];
    if (role == CR_NONE) return cg_load_ext(x, node, how);
    if (role != CR_ELEM || (how != CG_BCAST && how != CG_BATCH))
        return cg_fail(x->b, "%%%u (%s) cannot be read here", node, graph_op_name[cg_node(x->b, node)->op]),
               (CgVal){0, 0};
    CgVal v;
    if (cg_cache_find(x, node, CG_BCAST, &v)) return v;
    v = cg_eval_op(x, node);
    cg_cache_put(x, node, CG_BCAST, v);
    return v;
}

/* a op b, declared as "alu<n>" at the deeper level of the two */
static CgVal bin(CgEval *x, KirOp op, CgVal a, CgVal b)
{
    return cg_decl(x, imax(a.lvl, b.lvl), "alu", kir_bin(x->k, op, a.e, b.e));
}

static CgVal fconst(CgEval *x, double f) { return (CgVal){kir_f32(x->k, (float)f), 0}; }

CgVal cg_eval_op(CgEval *x, uint32_t m)
{
    const GNode *n = cg_node(x->b, m);
    KirKernel *k = x->k;
#define IN(j, how) x->get(x, n->in[j], how)
    switch (n->op) {
    case OP_BIAS_ADD: /* y = x + bias[c] */
    case OP_ADD: { CgVal a = IN(0, CG_BCAST), c = IN(1, CG_BCAST); return bin(x, KX_ADD, a, c); }
    case OP_MUL: { CgVal a = IN(0, CG_BCAST), c = IN(1, CG_BCAST); return bin(x, KX_MUL, a, c); }
    case OP_SCALE: return bin(x, KX_MUL, fconst(x, n->attr.f), IN(0, CG_BCAST));
    case OP_EXP: { CgVal a = IN(0, CG_BCAST); return cg_decl(x, a.lvl, "alu", kir_un(k, KX_EXP, a.e)); }
    case OP_FILL: return fconst(x, n->attr.f);
    case OP_RELU: return bin(x, KX_MAX, IN(0, CG_BCAST), fconst(x, 0));
    case OP_RELU_BWD: { /* dx = y > 0 ? dy : 0 */
        CgVal dy = IN(0, CG_BCAST), y = IN(1, CG_BCAST);
        int e = kir_select(k, kir_bin(k, KX_GT, y.e, kir_f32(k, 0)), dy.e, kir_f32(k, 0));
        return cg_decl(x, imax(dy.lvl, y.lvl), "alu", e);
    }
    case OP_DROPOUT:
    case OP_DROPOUT_BWD: { /* keep(i) ? x / (1-p) : 0, keep = dl_keep(seed, step, i, p) */
        double p = n->attr.dropout.p;
        CgVal a = IN(0, CG_BCAST);
        if (graph_numel(n) != numel_d(x))
            return cg_fail(x->b, "%s of %lld elements in a domain of %lld", graph_op_name[n->op],
                           (long long)graph_numel(n), (long long)numel_d(x)), (CgVal){0, 0};
        if (p >= 1) return fconst(x, 0);
        CgVal seed = IN(1, CG_AT(3)), step = IN(1, CG_AT(2));
        /* element index with the layer's salt above bit 40 (numel < 2^40) */
        int idx = kir_bin(k, KX_ADD, x->lin, kir_i64(k, (int64_t)n->attr.dropout.salt << 40));
        int keep = kir_keep(k, seed.e, step.e, idx, (float)p);
        int e = kir_select(k, keep, kir_bin(k, KX_MUL, a.e, kir_f32(k, (float)(1.0 / (1.0 - p)))), kir_f32(k, 0));
        return cg_decl(x, imax(a.lvl, x->lvl_lin), "alu", e);
    }
    case OP_BN_APPLY:
    case OP_BN_INFER: { /* y = (x - mean) * rsqrt(var + eps) * gamma + beta = x * scale + shift */
        CgVal xv = IN(0, CG_BCAST), mean = IN(1, 0), var = IN(1, 1), gamma = IN(2, CG_BCAST), beta = IN(3, CG_BCAST);
        int lc = imax(imax(mean.lvl, var.lvl), imax(gamma.lvl, beta.lvl));
        CgVal rstd = cg_decl(x, var.lvl, "rstd", kir_un(k, KX_RSQRT, kir_bin(k, KX_ADD, var.e, kir_f32(k, n->attr.bn.eps))));
        CgVal scale = cg_decl(x, lc, "alu", kir_bin(k, KX_MUL, rstd.e, gamma.e));
        CgVal shift = cg_decl(x, lc, "alu", kir_bin(k, KX_SUB, beta.e, kir_bin(k, KX_MUL, mean.e, scale.e)));
        return cg_decl(x, imax(lc, xv.lvl), "alu", kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, xv.e, scale.e), shift.e));
    }
    case OP_BN_BWD_DATA: { /* dx = gamma*rstd*(dy - s0/n - (x-mean)*rstd*s1/n)  (dy, x, stats, gamma, bstats) */
        const GNode *xn = cg_node(x->b, n->in[1]);
        if (xn->ndim < 2) return cg_fail(x->b, "bn_bwd_data of a %d-d tensor", xn->ndim), (CgVal){0, 0};
        int64_t cnt = n->attr.bn.count ? n->attr.bn.count : graph_numel(xn) / xn->shape[1]; /* synchronised: global */
        float rn = (float)(1.0 / (double)cnt);
        CgVal dy = IN(0, CG_BCAST), xv = IN(1, CG_BCAST), mean = IN(2, 0), var = IN(2, 1), gamma = IN(3, CG_BCAST);
        CgVal s0 = IN(4, 0), s1 = IN(4, 1);
        int lc = imax(imax(mean.lvl, var.lvl), imax(gamma.lvl, imax(s0.lvl, s1.lvl)));
        CgVal rstd = cg_decl(x, var.lvl, "rstd", kir_un(k, KX_RSQRT, kir_bin(k, KX_ADD, var.e, kir_f32(k, n->attr.bn.eps))));
        CgVal k1 = cg_decl(x, lc, "alu", kir_bin(k, KX_MUL, gamma.e, rstd.e));
        CgVal m0 = cg_decl(x, lc, "alu", kir_bin(k, KX_MUL, s0.e, kir_f32(k, rn)));
        CgVal r1 = cg_decl(x, lc, "alu", kir_bin(k, KX_MUL, kir_bin(k, KX_MUL, rstd.e, s1.e), kir_f32(k, rn)));
        int xhat = kir_bin(k, KX_MUL, kir_bin(k, KX_SUB, xv.e, mean.e), r1.e);
        int e = kir_bin(k, KX_MUL, k1.e, kir_bin(k, KX_SUB, kir_bin(k, KX_SUB, dy.e, m0.e), xhat));
        return cg_decl(x, imax(lc, imax(dy.lvl, xv.lvl)), "alu", e);
    }
    case OP_BN_RUNNING: { /* r = (1-m) r + m [mean, var*n/(n-1)]  (stats, running) */
        int64_t cnt = cg_bn_count(x->b, n->in[0]);
        if (cnt < 2) return cg_fail(x->b, "bn_running: input 0 is not a bn_stats over more than one value"), (CgVal){0, 0};
        double mo = n->attr.bn.momentum;
        CgVal s = IN(0, CG_BCAST), r = IN(1, CG_BCAST);
        int row = x->row_e >= 0 ? x->row_e : x->bi;
        int unb = kir_select(k, kir_bin(k, KX_EQ, row, kir_i64(k, 0)), s.e,
                             kir_bin(k, KX_MUL, s.e, kir_f32(k, (float)((double)cnt / (double)(cnt - 1)))));
        int e = kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, kir_f32(k, (float)(1 - mo)), r.e),
                        kir_bin(k, KX_MUL, kir_f32(k, (float)mo), unb));
        return cg_decl(x, imax(imax(s.lvl, r.lvl), x->row_e >= 0 ? 0 : x->lvl_b), "alu", e);
    }
    case OP_BN_FINALIZE: { /* [2,C] sums -> [mean, max(E[x^2] - mean^2, 0)] over attr.bn.count values */
        if (n->attr.bn.count < 1) return cg_fail(x->b, "bn_finalize over %lld values", (long long)n->attr.bn.count),
                                         (CgVal){0, 0};
        CgVal s0 = IN(0, 0), s1 = IN(0, 1);
        int rn = kir_f64(k, 1.0 / (double)n->attr.bn.count);
        int mean = kir_bin(k, KX_MUL, kir_un(k, KX_TOF64, s0.e), rn);
        int var = kir_bin(k, KX_MAX, kir_bin(k, KX_SUB, kir_bin(k, KX_MUL, kir_un(k, KX_TOF64, s1.e), rn),
                                            kir_bin(k, KX_MUL, mean, mean)), kir_f64(k, 0));
        int row = x->row_e >= 0 ? x->row_e : x->bi;
        int e = kir_un(k, KX_TOF32, kir_select(k, kir_bin(k, KX_EQ, row, kir_i64(k, 0)), mean, var));
        return cg_decl(x, imax(imax(s0.lvl, s1.lvl), x->row_e >= 0 ? 0 : x->lvl_b), "alu", e);
    }
    case OP_SELECT: return IN(0, n->attr.i); /* y[c] = x[attr.i, c] */
    case OP_GAP_BWD: { /* dx[b,c,h,w] = dy[b,c] / (H*W) */
        int64_t hw = n->ndim == 4 ? n->shape[2] * n->shape[3] : 1;
        return bin(x, KX_DIV, IN(0, CG_BCAST), fconst(x, (double)hw));
    }
    case OP_MEAN_BWD: /* dx[b] = dy[0] / B */
        return bin(x, KX_DIV, IN(0, CG_BCAST), fconst(x, (double)graph_numel(n)));
    case OP_MEAN_OVER_BWD: /* dx[r] = dy[0] / n[0] */
        return bin(x, KX_DIV, IN(0, CG_BCAST), IN(1, CG_BCAST));
    case OP_ABSDIFF_BWD: { /* de[b,a] = dy[b] * sign(e[b,a] - l[b,a]) */
        CgVal dy = IN(0, CG_BATCH), e = IN(1, CG_BCAST), l = IN(2, CG_BCAST);
        int v = kir_bin(k, KX_MUL, dy.e, kir_un(k, KX_SIGN, kir_bin(k, KX_SUB, e.e, l.e)));
        return cg_decl(x, imax(dy.lvl, imax(e.lvl, l.lvl)), "alu", v);
    }
    case OP_KL_BWD: { /* dlogq[b,k] = -dy[b] * y[b,k] */
        CgVal dy = IN(0, CG_BATCH), y = IN(1, CG_BCAST);
        return cg_decl(x, imax(dy.lvl, y.lvl), "alu", kir_un(k, KX_NEG, kir_bin(k, KX_MUL, dy.e, y.e)));
    }
    case OP_RESHAPE: return IN(0, CG_BCAST);
    case OP_INPUT: case OP_SCALARS: case OP_PARAM: case OP_STATE: case OP_CONST:
    case OP_CONV2D: case OP_CONV2D_BWD_DATA: case OP_CONV2D_BWD_FILTER: case OP_CONV_TRANSPOSE2D: case OP_MATMUL:
    case OP_CHAN_SUM: case OP_BN_STATS: case OP_BN_BWD_STATS: case OP_BN_PARTIAL: case OP_ALLREDUCE:
    case OP_LOG_SOFTMAX: case OP_LOG_SOFTMAX_BWD: case OP_KL_ROWS: case OP_EXPECT: case OP_EXPECT_BWD:
    case OP_ABSDIFF_ROWS: case OP_MAXPOOL: case OP_MAXPOOL_BWD: case OP_AVGPOOL: case OP_AVGPOOL_BWD:
    case OP_GAP: case OP_UPSAMPLE: case OP_UPSAMPLE_BWD: case OP_CONCAT: case OP_SLICE:
    case OP_NCHW_ROWS: case OP_ROWS_NCHW: case OP_VALID_COUNT: case OP_MEAN_OVER:
    case OP_MEAN: case OP_SGD: case OP_SGD_NESTEROV: case OP_ADAM: case OP_ADAMW: case OP_COUNT:
        break;
    }
#undef IN
    return cg_fail(x->b, "%%%u: %s is not an elementwise op", m, graph_op_name[n->op]), (CgVal){0, 0};
}

/* The GG_ELEM kernel; gpu: its GPU schedule, for 4-D domains only (returns 1
 * otherwise: the flat kernel is already one thread per element there).  The
 * flat kernel gives each (b,c) plane to one thread, whose neighbours are H*W
 * floats away: uncoalesced on a GPU.  The GPU schedule gives each plane to a
 * block of T threads (H*W rounded up to a warp, at most 256), thread t taking
 * elements t, t+T, ... of the plane (coalesced); per-channel values are
 * computed by every thread alike. */
static int build_elem(CgBuild *b, int gpu)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return -1;
    if (gr->nouts == 0) return cg_fail(b, "group has no outputs");
    /* the domain: the largest output; every output must have its size */
    const GNode *dom = cg_node(b, gr->outs[0]);
    for (int i = 1; i < gr->nouts; i++)
        if (graph_numel(cg_node(b, gr->outs[i])) > graph_numel(dom)) dom = cg_node(b, gr->outs[i]);
    for (int i = 0; i < gr->nouts; i++)
        if (graph_numel(cg_node(b, gr->outs[i])) != graph_numel(dom))
            return cg_fail(b, "outputs %%%u and %%%u differ in size", gr->outs[i], (uint32_t)(dom - b->g->nodes));
    CgEval x = {.b = b, .k = k, .nd = dom->ndim, .row_e = -1, .get = cg_elem_get};
    memcpy(x.D, dom->shape, sizeof x.D);
    if (x.nd == 0) x.nd = 1, x.D[0] = 1;
    if (gpu && x.nd < 3) return 1;
    int gid = kir_gid(k), loop_var = -1, body = -1;
    int64_t inner = 1, T = 1;
    x.blk[0] = x.blk[1] = x.blk[2] = k->body;
    if (x.nd >= 3) { /* one work item per (b,c) plane, inner loop over the rest */
        int64_t C = x.D[1];
        inner = graph_numel(dom) / (x.D[0] * C);
        k->grid = x.D[0] * C;
        x.bi = kir_bin(k, KX_DIV, gid, kir_i64(k, C));
        x.ci = kir_bin(k, KX_MOD, gid, kir_i64(k, C));
        loop_var = kir_var(k, gpu ? "q" : "i", KT_I64, 0);
        body = kir_block(k);
        x.blk[2] = body;
        x.lin = kir_madd(k, gid, kir_i64(k, inner), kir_ref(k, loop_var));
        x.lvl_lin = 2;
        if (gpu) { /* element jr = q*T + tid of the plane, if any; min() lets kir_prove bound it */
            T = (inner + 31) / 32 * 32;
            if (T > 256) T = 256;
            k->block = (int32_t)T;
            int jr = kir_madd(k, kir_ref(k, loop_var), kir_i64(k, T), kir_tid(k));
            x.blk[2] = kir_if(k, body, kir_bin(k, KX_LT, jr, kir_i64(k, inner)));
            int i = kir_decl(k, x.blk[2], "i", kir_bin(k, KX_MIN, jr, kir_i64(k, inner - 1)));
            x.lin = kir_madd(k, gid, kir_i64(k, inner), i);
        }
    } else if (x.nd == 2) {
        k->grid = x.D[0] * x.D[1];
        x.bi = kir_bin(k, KX_DIV, gid, kir_i64(k, x.D[1]));
        x.ci = kir_bin(k, KX_MOD, gid, kir_i64(k, x.D[1]));
        x.lin = gid;
    } else {
        k->grid = x.D[0];
        x.bi = x.ci = x.lin = gid;
    }
    CgVal *vals = dl_xcalloc((size_t)gr->nnodes, sizeof *vals);
    for (int i = 0; i < gr->nnodes && !b->err; i++) vals[i] = cg_elem_get(&x, gr->nodes[i], CG_BCAST);
    for (int i = 0; i < gr->nnodes && !b->err; i++) {
        uint32_t m = gr->nodes[i];
        if (b->is_out[m]) kir_store(k, x.blk[2], b->node_buf[m], x.lin, vals[i].e, 0);
    }
    if (loop_var >= 0) kir_loop(k, k->body, loop_var, kir_i64(k, 0), kir_i64(k, (inner + T - 1) / T), body);
    free(vals);
    cg_eval_free(&x);
    return b->err ? -1 : 0;
}

int cg_build_elem(CgBuild *b) { return build_elem(b, 0); }
int cg_build_elem_gpu(CgBuild *b) { return build_elem(b, 1); }
