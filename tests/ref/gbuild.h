/* gbuild.h - shortcuts for building small op graphs by hand in the numeric
 * tests (test_gradcheck, test_loss_fixture, test_kernels_ref).  Header-only
 * (static functions), so each test binary gets its own copy.
 *
 *   uint32_t x = gb(g, OP_PARAM, GB_NOIN, GB_SH(2, 3, 5, 5), GB_NOATTR, "x");
 *   uint32_t y = gb(g, OP_CONV2D, GB_IN(x, w), GB_SH(2, 4, 5, 5),
 *                   (GAttr){.conv = {3, 3, 1, 1}}, "conv");
 *
 * Every node is added with graph_add (compiler/graph.c); names must be unique
 * (graph.h), so the caller passes them.
 */
#ifndef DL_REF_GBUILD_H
#define DL_REF_GBUILD_H

#include "../../compiler/graph.h"

#define GB_IN(...) (const uint32_t[]){__VA_ARGS__}, \
    (int)(sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t))
#define GB_NOIN NULL, 0
#define GB_SH(...) (const int64_t[]){__VA_ARGS__}, \
    (int)(sizeof((const int64_t[]){__VA_ARGS__}) / sizeof(int64_t))
#define GB_NOATTR ((GAttr){.i = 0})

static inline uint32_t gb(Graph *g, GOp op, const uint32_t *in, int nin, const int64_t *shape,
                          int ndim, GAttr attr, const char *name)
{
    DlSrcLoc none = {0, 0, 0};
    return graph_add(g, op, in, nin, shape, ndim, attr, name, none);
}

/* A PARAM with an init kind (the interpreter ignores it; the runtime uses it). */
static inline uint32_t gb_param(Graph *g, const int64_t *shape, int ndim, const char *name)
{
    GAttr at = {.init = {INIT_ZEROS, 1}};
    return gb(g, OP_PARAM, GB_NOIN, shape, ndim, at, name);
}

static inline void gb_output(Graph *g, GOutKind kind, const char *name, uint32_t node)
{
    GOutput *o = dl_pool_alloc(g->pool, (size_t)(g->nouts + 1) * sizeof *o);
    for (int i = 0; i < g->nouts; i++) o[i] = g->outs[i];
    o[g->nouts++] = (GOutput){kind, name, node, kind == GOUT_PROBS || kind == GOUT_EXPECT ? 0 : -1, kind == GOUT_EXPECT ? 0 : -1};
    g->outs = o;
}

/* The DLDL / DLDL-v2 loss tail on logits [B,K], as lowering builds it:
 *   logq = log_softmax(z); kl = mean_b kl_rows(y, logq)      Gao et al., TIP 2017
 *   p = exp(logq); e = expect(p, v[A,K]); l1 = mean_b absdiff_rows(e, label)
 *   loss = kl + lambda * l1                                  Gao et al., IJCAI 2018
 * target: [B,K] node; label: [B,A] node; bins: [A,K] node.  Registers the
 * outputs loss, probs and expectation; returns the loss node. */
static inline uint32_t gb_loss_tail(Graph *g, uint32_t z, uint32_t target, uint32_t label,
                                    uint32_t bins, float lambda)
{
    int64_t B = g->nodes[z].shape[0], K = g->nodes[z].shape[1], A = g->nodes[bins].shape[0];
    uint32_t logq = gb(g, OP_LOG_SOFTMAX, GB_IN(z), GB_SH(B, K), GB_NOATTR, "loss.logq");
    uint32_t kl = gb(g, OP_KL_ROWS, GB_IN(target, logq), GB_SH(B), GB_NOATTR, "loss.kl.rows");
    uint32_t klm = gb(g, OP_MEAN, GB_IN(kl), GB_SH(1), GB_NOATTR, "loss.kl");
    uint32_t p = gb(g, OP_EXP, GB_IN(logq), GB_SH(B, K), GB_NOATTR, "loss.p");
    uint32_t e = gb(g, OP_EXPECT, GB_IN(p, bins), GB_SH(B, A), GB_NOATTR, "loss.e");
    uint32_t l1 = gb(g, OP_ABSDIFF_ROWS, GB_IN(e, label), GB_SH(B), GB_NOATTR, "loss.l1.rows");
    uint32_t l1m = gb(g, OP_MEAN, GB_IN(l1), GB_SH(1), GB_NOATTR, "loss.l1");
    uint32_t w = gb(g, OP_SCALE, GB_IN(l1m), GB_SH(1), (GAttr){.f = lambda}, "loss.l1.w");
    uint32_t loss = gb(g, OP_ADD, GB_IN(klm, w), GB_SH(1), GB_NOATTR, "loss");
    gb_output(g, GOUT_LOSS, "loss", loss);
    gb_output(g, GOUT_LOSS_TERM, "kl", klm);
    gb_output(g, GOUT_LOSS_TERM, "l1", w);
    gb_output(g, GOUT_PROBS, "probs", p);
    gb_output(g, GOUT_EXPECT, "expect", e);
    return loss;
}

#endif
