/* build_chanred.c - the GG_CHANRED kernel: one work item per channel c of a
 * [B,C,H,W] (or [B,C]) space.  Loops over b and h*w evaluate the elementwise
 * prologue and accumulate the reductions in double (CHAN_SUM; BN_STATS as
 * sum and sum of squares, Ioffe & Szegedy 2015 Alg. 1, biased variance;
 * BN_PARTIAL: the same two sums, unnormalised, for synchronised batch norm;
 * BN_BWD_STATS as sum dy and sum dy*(x-mean), times rstd at the end); then the
 * epilogue evaluates the members on [r,C]/[C] tensors for this c, row by row
 * (BN_RUNNING in place on running[2,C], SELECT of dbeta/dgamma rows).
 */
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"

#define MAX_RED 8

typedef struct Red {
    uint32_t node;
    int acc[2];      /* f64 accumulator variables */
    CgVal row[2];    /* the result rows (f32) */
    int nrows;
} Red;

typedef struct Chan {
    CgEval epi;      /* the epilogue context: (row, c) points */
    Red red[MAX_RED];
    int nred;
    int cur_row;
} Chan;

static Chan *chan_of(CgEval *x) { return (Chan *)((char *)x - offsetof(Chan, epi)); }

/* the epilogue's get: rows of reductions, of epilogue members, of externals */
static CgVal epi_get(CgEval *x, uint32_t node, int how)
{
    Chan *ch = chan_of(x);
    CgBuild *b = x->b;
    const GNode *n = cg_node(b, node);
    int row = how >= 0 ? how : cg_rows(n) == 1 ? 0 : ch->cur_row;
    if (how == CG_BATCH || (how < 0 && how != CG_BCAST && how > CG_AT(0)))
        return cg_fail(b, "%%%u: per-batch value in a per-channel epilogue", node), (CgVal){0, 0};
    if (how <= CG_AT(0)) return cg_load_ext(x, node, how);
    switch (b->role[node]) {
    case CR_RED:
        for (int i = 0; i < ch->nred; i++)
            if (ch->red[i].node == node) {
                if (row >= ch->red[i].nrows) break;
                return ch->red[i].row[row];
            }
        return cg_fail(b, "row %d of reduction %%%u", row, node), (CgVal){0, 0};
    case CR_EPI: {
        CgVal v;
        if (cg_cache_find(x, node, row, &v)) return v;
        int saved = ch->cur_row, saved_e = x->row_e;
        ch->cur_row = row;
        x->row_e = kir_i64(x->k, row);
        v = cg_eval_op(x, node);
        ch->cur_row = saved, x->row_e = saved_e;
        cg_cache_put(x, node, row, v);
        return v;
    }
    case CR_ELEM:
        return cg_fail(b, "%%%u (%s) is a prologue value read by the epilogue", node, graph_op_name[n->op]),
               (CgVal){0, 0};
    default:
        break;
    }
    if (graph_numel(n) == 1) return cg_load_ext(x, node, CG_AT(0));
    return cg_load_ext(x, node, row);
}

/* ELEM members reading a reduction or an epilogue member are epilogue. */
static void classify(CgBuild *b)
{
    const GGroup *gr = b->grp;
    for (int i = 0; i < gr->nnodes; i++) {
        uint32_t m = gr->nodes[i];
        const GNode *n = cg_node(b, m);
        if (graph_op_kind[n->op] == OPK_CHANRED) {
            b->role[m] = CR_RED;
            continue;
        }
        for (int j = 0; j < n->nin; j++)
            if (b->role[n->in[j]] == CR_RED || b->role[n->in[j]] == CR_EPI) b->role[m] = CR_EPI;
    }
}

/* After the sums (rd->acc: f64 variables holding channel gid's sums over
 * cnt elements): the reduction results, declared in blk and stored, then the
 * epilogue on the [r,C] rows at gid, every store after every load.  Frees x
 * (the prologue context, read by BN_BWD_STATS's results). */
static int chan_finish(CgBuild *b, const Chan *chp, CgEval *pro, int blk, int gid, int64_t C, double cnt)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    Chan ch = *chp; /* epi_get finds its Chan from ch.epi */
    for (int r = 0; r < ch.nred && !b->err; r++) {
        Red *rd = &ch.red[r];
        const GNode *n = cg_node(b, rd->node);
        int a0 = kir_ref(k, rd->acc[0]), a1 = rd->nrows > 1 ? kir_ref(k, rd->acc[1]) : -1;
        switch (n->op) {
        case OP_CHAN_SUM:
            rd->row[0] = (CgVal){kir_decl(k, blk, "red", kir_un(k, KX_TOF32, a0)), 0};
            break;
        case OP_BN_STATS: {
            int mean = kir_decl(k, blk, "mean", kir_bin(k, KX_DIV, a0, kir_f64(k, cnt)));
            int ex2 = kir_bin(k, KX_DIV, a1, kir_f64(k, cnt));
            int var = kir_bin(k, KX_MAX, kir_bin(k, KX_SUB, ex2, kir_bin(k, KX_MUL, mean, mean)), kir_f64(k, 0));
            rd->row[0] = (CgVal){kir_decl(k, blk, "red", kir_un(k, KX_TOF32, mean)), 0};
            rd->row[1] = (CgVal){kir_decl(k, blk, "red", kir_un(k, KX_TOF32, var)), 0};
            break;
        }
        case OP_BN_PARTIAL: /* this rank's sums, all-reduced then finalised (BN_FINALIZE) */
            rd->row[0] = (CgVal){kir_decl(k, blk, "red", kir_un(k, KX_TOF32, a0)), 0};
            rd->row[1] = (CgVal){kir_decl(k, blk, "red", kir_un(k, KX_TOF32, a1)), 0};
            break;
        case OP_BN_BWD_STATS: {
            CgVal var = cg_elem_get(pro, n->in[2], 1);
            int rstd = kir_un(k, KX_RSQRT, kir_bin(k, KX_ADD, var.e, kir_f32(k, n->attr.bn.eps)));
            rd->row[0] = (CgVal){kir_decl(k, blk, "red", kir_un(k, KX_TOF32, a0)), 0};
            rd->row[1] = (CgVal){kir_decl(k, blk, "red", kir_bin(k, KX_MUL, kir_un(k, KX_TOF32, a1), rstd)), 0};
            break;
        }
        default:
            cg_fail(b, "%s is not a channel reduction", graph_op_name[n->op]);
        }
        if (b->is_out[rd->node])
            for (int j = 0; j < rd->nrows; j++)
                kir_store(k, blk, b->node_buf[rd->node], kir_bin(k, KX_ADD, kir_i64(k, j * C), gid), rd->row[j].e, 0);
    }
    cg_eval_free(pro);
    /* the epilogue, row by row at this channel; stores after every load */
    ch.epi = (CgEval){.b = b, .k = k, .nd = 2, .D = {2, C}, .ci = gid, .bi = -1, .lin = -1, .row_e = -1,
                      .blk = {blk, blk, blk}, .get = epi_get};
    int nst = 0;
    struct { int buf, idx, val; } *st = dl_xcalloc((size_t)gr->nnodes * 4 + 1, sizeof *st);
    for (int i = 0; i < gr->nnodes && !b->err; i++) {
        uint32_t m = gr->nodes[i];
        const GNode *n = cg_node(b, m);
        if (b->role[m] != CR_EPI) continue;
        if (n->shape[n->ndim - 1] != C || cg_rows(n) > 4)
            return free(st), cg_eval_free(&ch.epi), cg_fail(b, "epilogue member %%%u is not [r,C]", m);
        for (int r = 0; r < cg_rows(n) && !b->err; r++) {
            CgVal v = epi_get(&ch.epi, m, r);
            if (b->is_out[m]) st[nst].buf = b->node_buf[m], st[nst].idx = kir_bin(k, KX_ADD, kir_i64(k, r * C), gid),
                              st[nst++].val = v.e;
        }
    }
    for (int i = 0; i < nst; i++) kir_store(k, blk, st[i].buf, st[i].idx, st[i].val, 0);
    free(st);
    cg_eval_free(&ch.epi);
    return b->err ? -1 : 0;
}

/* The group's buffers, roles and reductions; returns the reduced space
 * ([B,C,...], the same for every reduction), or NULL (error recorded). */
static const GNode *chan_setup(CgBuild *b, Chan *ch)
{
    const GGroup *gr = b->grp;
    if (cg_args_from_group(b)) return NULL;
    classify(b);
    const GNode *space = NULL;
    for (int i = 0; i < gr->nnodes; i++) {
        uint32_t m = gr->nodes[i];
        if (b->role[m] != CR_RED) continue;
        if (ch->nred == MAX_RED) return cg_fail(b, "more than %d reductions", MAX_RED), NULL;
        const GNode *in = cg_node(b, cg_node(b, m)->in[0]);
        if (!space) space = in;
        if (in->ndim < 2 || in->ndim != space->ndim || memcmp(in->shape, space->shape, sizeof in->shape))
            return cg_fail(b, "reductions over different spaces in one group"), NULL;
        ch->red[ch->nred++] = (Red){.node = m, .nrows = cg_node(b, m)->op == OP_CHAN_SUM ? 1 : 2};
    }
    if (!space) cg_fail(b, "no reduction");
    return space;
}

/* Accumulate the reductions at the current point of pro (an element of
 * channel gid), in block blk; store the prologue members read after the
 * group there too. */
static int chan_accumulate(CgBuild *b, Chan *ch, CgEval *pro, const GNode *space, int blk)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    for (int r = 0; r < ch->nred && !b->err; r++) {
        Red *rd = &ch->red[r];
        const GNode *n = cg_node(b, rd->node);
        CgVal v = cg_elem_get(pro, n->in[0], CG_BCAST);
        int dv = kir_un(k, KX_TOF64, v.e);
        kir_assign(k, blk, rd->acc[0], dv, 1);
        if (n->op == OP_BN_STATS || n->op == OP_BN_PARTIAL) kir_assign(k, blk, rd->acc[1], kir_bin(k, KX_MUL, dv, dv), 1);
        if (n->op == OP_BN_BWD_STATS) { /* (dy, x, stats) */
            CgVal xv = cg_elem_get(pro, n->in[1], CG_BCAST), mean = cg_elem_get(pro, n->in[2], 0);
            int d = kir_bin(k, KX_SUB, kir_un(k, KX_TOF64, xv.e), kir_un(k, KX_TOF64, mean.e));
            kir_assign(k, blk, rd->acc[1], kir_bin(k, KX_MUL, dv, d), 1);
        }
    }
    /* prologue members read after the group are stored at every element */
    for (int i = 0; i < gr->nnodes && !b->err; i++) {
        uint32_t m = gr->nodes[i];
        if (b->role[m] == CR_ELEM && b->is_out[m]) {
            if (graph_numel(cg_node(b, m)) != graph_numel(space))
                return cg_fail(b, "prologue output %%%u is not of the reduced shape", m);
            kir_store(k, blk, b->node_buf[m], pro->lin, cg_elem_get(pro, m, CG_BCAST).e, 0);
        }
    }
    return b->err ? -1 : 0;
}

int cg_build_chanred(CgBuild *b)
{
    KirKernel *k = b->k;
    Chan ch = {.nred = 0};
    const GNode *space = chan_setup(b, &ch);
    if (!space) return -1;
    int64_t B = space->shape[0], C = space->shape[1], inner = graph_numel(space) / (B * C);
    k->grid = C;
    /* prologue context: level 0 = this channel, 1 = plane b, 2 = element */
    CgEval x = {.b = b, .k = k, .nd = space->ndim, .row_e = -1, .get = cg_elem_get};
    memcpy(x.D, space->shape, sizeof x.D);
    int gid = kir_gid(k), bvar = kir_var(k, "b", KT_I64, 0), ivar = -1;
    int bbody = kir_block(k), ibody = bbody;
    x.ci = gid, x.lvl_c = 0;
    x.bi = kir_ref(k, bvar), x.lvl_b = 1;
    x.lin = kir_madd(k, x.bi, kir_i64(k, C), gid);
    if (space->ndim >= 3) {
        ivar = kir_var(k, "i", KT_I64, 0);
        ibody = kir_block(k);
        x.lin = kir_madd(k, x.lin, kir_i64(k, inner), kir_ref(k, ivar));
    }
    x.lvl_lin = 2;
    x.blk[0] = k->body, x.blk[1] = bbody, x.blk[2] = ibody;
    for (int r = 0; r < ch.nred; r++)
        for (int j = 0; j < ch.red[r].nrows; j++)
            ch.red[r].acc[j] = kir_decl_var(k, k->body, "acc", KT_F64, kir_f64(k, 0));
    if (chan_accumulate(b, &ch, &x, space, ibody)) return cg_eval_free(&x), -1;
    if (ivar >= 0) kir_loop(k, bbody, ivar, kir_i64(k, 0), kir_i64(k, inner), ibody);
    kir_loop(k, k->body, bvar, kir_i64(k, 0), kir_i64(k, B), bbody);
    return chan_finish(b, &ch, &x, k->body, gid, C, (double)(B * inner));
}

/* The GPU schedule (issue 15, one IR, two schedules): one CUDA block of
 * CHAN_THREADS threads per channel c.  Thread t takes elements j = t, t+T,
 * t+2T, ... of channel c's B*inner elements (consecutive threads read
 * consecutive addresses of a plane: coalesced) and accumulates the same
 * prologue and sums in double as the CPU kernel.  The partial sums meet in a
 * shared f64 array and are halved by a fixed tree (T/2, T/4, ..., 1 partners,
 * one barrier a level), so the order of the additions is fixed for a given T:
 * results are deterministic run to run, and agree with the CPU kernel's
 * sequential sums within double rounding before the cast to f32.  Thread 0
 * then computes the results and the epilogue (the [r,C] rows at c). */
#define CHAN_THREADS 256

int cg_build_chanred_gpu(CgBuild *b)
{
    KirKernel *k = b->k;
    Chan ch = {.nred = 0};
    const GNode *space = chan_setup(b, &ch);
    if (!space) return -1;
    const int64_t T = CHAN_THREADS;
    int64_t B = space->shape[0], C = space->shape[1], inner = graph_numel(space) / (B * C), n = B * inner;
    k->grid = C;
    k->block = (int32_t)T;
    int gid = kir_gid(k), tid = kir_tid(k), root = k->body;
    int nacc = 0;
    for (int r = 0; r < ch.nred; r++)
        for (int j = 0; j < ch.red[r].nrows; j++, nacc++)
            ch.red[r].acc[j] = kir_decl_var(k, root, "acc", KT_F64, kir_f64(k, 0));
    /* for q in [0, ceil(n/T)): element jr = q*T + tid of this channel, if any;
     * min(jr, n-1) is jr inside the if, and lets kir_prove bound the index */
    int qvar = kir_var(k, "q", KT_I64, 0), qbody = kir_block(k);
    int jr = kir_madd(k, kir_ref(k, qvar), kir_i64(k, T), tid);
    int inb = kir_if(k, qbody, kir_bin(k, KX_LT, jr, kir_i64(k, n)));
    int j = kir_decl(k, inb, "j", kir_bin(k, KX_MIN, jr, kir_i64(k, n - 1)));
    int bi = inner == 1 ? j : kir_decl(k, inb, "b", kir_bin(k, KX_DIV, j, kir_i64(k, inner)));
    int ii = kir_bin(k, KX_MOD, j, kir_i64(k, inner));
    /* prologue context: level 0 = this channel (root), 1 and 2 = this element */
    CgEval x = {.b = b, .k = k, .nd = space->ndim, .row_e = -1, .get = cg_elem_get};
    memcpy(x.D, space->shape, sizeof x.D);
    x.ci = gid, x.lvl_c = 0;
    x.bi = bi, x.lvl_b = 1;
    x.lin = kir_madd(k, kir_madd(k, bi, kir_i64(k, C), gid), kir_i64(k, inner), ii);
    x.lvl_lin = 2;
    x.blk[0] = root, x.blk[1] = inb, x.blk[2] = inb;
    if (chan_accumulate(b, &ch, &x, space, inb)) return cg_eval_free(&x), -1;
    kir_loop(k, root, qvar, kir_i64(k, 0), kir_i64(k, (n + T - 1) / T), qbody);
    /* the tree: red[a*T + t] holds thread t's sum a */
    int red = kir_decl_shared(k, "red", KT_F64, (int)(nacc * T));
    for (int r = 0, a = 0; r < ch.nred; r++)
        for (int i = 0; i < ch.red[r].nrows; i++, a++)
            kir_storel(k, root, red, kir_bin(k, KX_ADD, kir_i64(k, a * T), tid), kir_ref(k, ch.red[r].acc[i]), 0);
    kir_barrier(k);
    for (int64_t h = T / 2; h >= 1; h /= 2) {
        int lvl = kir_if(k, root, kir_bin(k, KX_LT, tid, kir_i64(k, h)));
        int t = kir_bin(k, KX_MIN, tid, kir_i64(k, h - 1)); /* tid inside the if */
        for (int a = 0; a < nacc; a++)
            kir_storel(k, lvl, red, kir_bin(k, KX_ADD, kir_i64(k, a * T), t),
                       kir_loadl(k, red, kir_bin(k, KX_ADD, kir_i64(k, a * T + h), t)), 1);
        kir_barrier(k);
    }
    /* thread 0: the sums, the results and the epilogue */
    int t0 = kir_if(k, root, kir_bin(k, KX_EQ, tid, kir_i64(k, 0)));
    for (int r = 0, a = 0; r < ch.nred; r++)
        for (int i = 0; i < ch.red[r].nrows; i++, a++)
            ch.red[r].acc[i] = kir_decl_var(k, t0, "sum", KT_F64, kir_loadl(k, red, kir_i64(k, a * T)));
    x.blk[0] = x.blk[1] = x.blk[2] = t0; /* per-channel values loaded from here on */
    return chan_finish(b, &ch, &x, t0, gid, C, (double)n);
}
