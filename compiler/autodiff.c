/* autodiff.c - the backward pass and the optimizer update as graph nodes
 * (compiler/autodiff.h).  One rule per op, from the maths of ops.def; the
 * switch has no default so a new op without a rule warns at compile time. */
#include <stdlib.h>
#include <string.h>

#include "autodiff.h"

typedef struct AD {
    Graph *g;
    DlDiag *diag;
    uint32_t n0;      /* forward nodes: [0, n0) */
    uint8_t *need;    /* forward node leads to the loss and depends on a PARAM */
    uint32_t *grad;   /* accumulated gradient node of forward node i, or G_NONE */
    int nerr;
} AD;

/* Append a backward node named "grad.<of's name>[suffix]" (made unique). */
static uint32_t bwd(AD *a, GOp op, const uint32_t *in, int nin, uint32_t shape_of, GAttr attr, uint32_t of,
                    const char *suffix, DlSrcLoc loc)
{
    const GNode *s = &a->g->nodes[shape_of];
    int64_t shape[G_MAX_DIMS];
    int nd = s->ndim;
    memcpy(shape, s->shape, sizeof shape);
    char *base = dl_xasprintf("grad.%s%s", a->g->nodes[of].name ? a->g->nodes[of].name : "?", suffix ? suffix : "");
    uint32_t i = graph_add(a->g, op, in, nin, shape, nd, attr, graph_unique_name(a->g, base, "."), loc);
    free(base);
    return i;
}

/* Add contribution c to the gradient of forward node j. */
static void contribute(AD *a, uint32_t j, uint32_t c)
{
    if (!a->need[j])
        return;
    if (a->grad[j] == G_NONE) {
        a->grad[j] = c;
        return;
    }
    a->grad[j] = bwd(a, OP_ADD, (uint32_t[]){a->grad[j], c}, 2, j, (GAttr){0}, j, NULL, a->g->nodes[j].loc);
}

static void no_rule(AD *a, uint32_t i)
{
    const GNode *n = &a->g->nodes[i];
    dl_error(a->diag, n->loc, "internal: autodiff: no gradient rule for %s ('%s', %%%u) on the loss path",
             graph_op_name[n->op], n->name ? n->name : "", i);
    a->nerr++;
}

/* Emit the contributions of node i's gradient to its inputs. */
static void rule(AD *a, uint32_t i)
{
    const GNode n = a->g->nodes[i]; /* a copy: graph_add may move the array */
    const uint32_t dy = a->grad[i], *in = n.in;
    const GAttr no = {0};
    DlSrcLoc loc = n.loc;
#define NEED(k) (a->need[in[k]])
    switch (n.op) {
    case OP_INPUT: case OP_SCALARS: case OP_PARAM: case OP_STATE: case OP_CONST:
        break; /* sources: the gradient stops here (PARAMs keep it) */
    case OP_CONV2D:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_CONV2D_BWD_DATA, (uint32_t[]){dy, in[1]}, 2, in[0], n.attr, in[0], NULL, loc));
        if (NEED(1))
            contribute(a, in[1], bwd(a, OP_CONV2D_BWD_FILTER, (uint32_t[]){in[0], dy}, 2, in[1], n.attr, in[1], NULL, loc));
        break;
    case OP_CONV_TRANSPOSE2D:
        /* y = conv2d^T(x, w) with w as a convolution's [O=Cin, C=Cout] weight: dx is that
           convolution's forward of dy, dw its backward filter with dy in x's role */
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_CONV2D, (uint32_t[]){dy, in[1]}, 2, in[0], n.attr, in[0], NULL, loc));
        if (NEED(1))
            contribute(a, in[1], bwd(a, OP_CONV2D_BWD_FILTER, (uint32_t[]){dy, in[0]}, 2, in[1], n.attr, in[1], NULL, loc));
        break;
    case OP_MATMUL: {
        /* y = op(A) op(B):  dA = dy op(B)^T (transposed back if ta),  dB = op(A)^T dy (likewise) */
        int ta = n.attr.mm.ta, tb = n.attr.mm.tb;
        if (NEED(0)) {
            uint32_t x[2];
            GAttr m;
            if (!ta) x[0] = dy, x[1] = in[1], m.mm.ta = 0, m.mm.tb = !tb; /* dA = dy op(B)^T */
            else x[0] = in[1], x[1] = dy, m.mm.ta = tb, m.mm.tb = 1;      /* dA = op(B) dy^T */
            contribute(a, in[0], bwd(a, OP_MATMUL, x, 2, in[0], m, in[0], NULL, loc));
        }
        if (NEED(1)) {
            uint32_t x[2];
            GAttr m;
            if (!tb) x[0] = in[0], x[1] = dy, m.mm.ta = !ta, m.mm.tb = 0; /* dB = op(A)^T dy */
            else x[0] = dy, x[1] = in[0], m.mm.ta = 1, m.mm.tb = ta;      /* dB = dy^T op(A) */
            contribute(a, in[1], bwd(a, OP_MATMUL, x, 2, in[1], m, in[1], NULL, loc));
        }
        break;
    }
    case OP_BIAS_ADD:
        if (NEED(0))
            contribute(a, in[0], dy);
        if (NEED(1))
            contribute(a, in[1], bwd(a, OP_CHAN_SUM, &dy, 1, in[1], no, in[1], NULL, loc));
        break;
    case OP_ADD:
        for (int k = 0; k < 2; k++)
            if (NEED(k)) {
                const GNode *x = &a->g->nodes[in[k]];
                int same = x->ndim == n.ndim && !memcmp(x->shape, n.shape, sizeof n.shape[0] * (size_t)n.ndim);
                if (same)
                    contribute(a, in[k], dy);
                else
                    no_rule(a, i); /* broadcasting add: no reduction rule (lowering never makes one) */
            }
        break;
    case OP_MUL:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_MUL, (uint32_t[]){dy, in[1]}, 2, in[0], no, in[0], NULL, loc));
        if (NEED(1))
            contribute(a, in[1], bwd(a, OP_MUL, (uint32_t[]){dy, in[0]}, 2, in[1], no, in[1], NULL, loc));
        break;
    case OP_SCALE:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_SCALE, &dy, 1, in[0], n.attr, in[0], NULL, loc));
        break;
    case OP_EXP: /* d exp(x) = exp(x) dx = y dx */
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_MUL, (uint32_t[]){dy, i}, 2, in[0], no, in[0], NULL, loc));
        break;
    case OP_RELU:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_RELU_BWD, (uint32_t[]){dy, i}, 2, in[0], no, in[0], NULL, loc));
        break;
    case OP_DROPOUT:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_DROPOUT_BWD, (uint32_t[]){dy, in[1]}, 2, in[0], n.attr, in[0], NULL, loc));
        break;
    case OP_BN_APPLY: {
        /* (x, stats, gamma, beta): bstats = [sum dy, sum dy*xhat]; the stats input
           gets nothing: BN_BWD_DATA already differentiates through mean and var. */
        if (!NEED(0) && !NEED(2) && !NEED(3))
            break;
        uint32_t bs = bwd(a, OP_BN_BWD_STATS, (uint32_t[]){dy, in[0], in[1]}, 3, in[1], n.attr, i, ".bstats", loc);
        if (NEED(2))
            contribute(a, in[2], bwd(a, OP_SELECT, &bs, 1, in[2], (GAttr){.i = 1}, in[2], NULL, loc));
        if (NEED(3))
            contribute(a, in[3], bwd(a, OP_SELECT, &bs, 1, in[3], (GAttr){.i = 0}, in[3], NULL, loc));
        if (NEED(0)) {
            /* synchronised (attr.bn.count: a train@N graph): BN_BWD_DATA's sums are over every rank's samples;
               dgamma and dbeta above stay this rank's, summed with the other gradients */
            uint32_t sums = n.attr.bn.count ? bwd(a, OP_ALLREDUCE, &bs, 1, bs, n.attr, i, ".bsums", loc) : bs;
            contribute(a, in[0], bwd(a, OP_BN_BWD_DATA, (uint32_t[]){dy, in[0], in[1], in[2], sums}, 5, in[0],
                                     n.attr, in[0], NULL, loc));
        }
        break;
    }
    case OP_BN_STATS:
    case OP_BN_PARTIAL:
    case OP_BN_FINALIZE:
    case OP_ALLREDUCE:
        break; /* never receive a gradient: see OP_BN_APPLY */
    case OP_MAXPOOL:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_MAXPOOL_BWD, (uint32_t[]){dy, in[0]}, 2, in[0], n.attr, in[0], NULL, loc));
        break;
    case OP_AVGPOOL:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_AVGPOOL_BWD, &dy, 1, in[0], n.attr, in[0], NULL, loc));
        break;
    case OP_GAP:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_GAP_BWD, &dy, 1, in[0], no, in[0], NULL, loc));
        break;
    case OP_UPSAMPLE:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_UPSAMPLE_BWD, &dy, 1, in[0], n.attr, in[0], NULL, loc));
        break;
    case OP_NCHW_ROWS: /* a permutation: its adjoint is the inverse */
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_ROWS_NCHW, &dy, 1, in[0], no, in[0], NULL, loc));
        break;
    case OP_ROWS_NCHW:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_NCHW_ROWS, &dy, 1, in[0], no, in[0], NULL, loc));
        break;
    case OP_MEAN_OVER: /* (x, n): n counts the target's rows, data */
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_MEAN_OVER_BWD, (uint32_t[]){dy, in[1]}, 2, in[0], no, in[0], NULL, loc));
        if (NEED(1))
            no_rule(a, i);
        break;
    case OP_VALID_COUNT:
        if (NEED(0))
            no_rule(a, i);
        break;
    case OP_CONCAT: { /* each input gets its channels of dy */
        int off = 0;
        for (int k = 0; k < n.nin; k++) {
            if (NEED(k))
                contribute(a, in[k], bwd(a, OP_SLICE, &dy, 1, in[k], (GAttr){.i = off}, in[k], NULL, loc));
            off += (int)a->g->nodes[in[k]].shape[1];
        }
        break;
    }
    case OP_RESHAPE:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_RESHAPE, &dy, 1, in[0], no, in[0], NULL, loc));
        break;
    case OP_MEAN:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_MEAN_BWD, &dy, 1, in[0], no, in[0], NULL, loc));
        break;
    case OP_KL_ROWS: /* (y, logq): the target y is data */
        if (NEED(1))
            contribute(a, in[1], bwd(a, OP_KL_BWD, (uint32_t[]){dy, in[0]}, 2, in[1], no, in[1], NULL, loc));
        if (NEED(0))
            no_rule(a, i);
        break;
    case OP_LOG_SOFTMAX:
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_LOG_SOFTMAX_BWD, (uint32_t[]){dy, i}, 2, in[0], no, in[0], NULL, loc));
        break;
    case OP_EXPECT: /* (p, v): v is the constant bin values */
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_EXPECT_BWD, (uint32_t[]){dy, in[1]}, 2, in[0], no, in[0], NULL, loc));
        if (NEED(1))
            no_rule(a, i);
        break;
    case OP_ABSDIFF_ROWS: /* (e, t): t is the label input */
        if (NEED(0))
            contribute(a, in[0], bwd(a, OP_ABSDIFF_BWD, (uint32_t[]){dy, in[0], in[1]}, 3, in[0], no, in[0], NULL, loc));
        if (NEED(1))
            no_rule(a, i);
        break;
    /* no rule: inference-only, backward, in-place and optimizer ops */
    case OP_BN_INFER: case OP_BN_RUNNING: case OP_CONV2D_BWD_DATA: case OP_CONV2D_BWD_FILTER:
    case OP_FILL: case OP_RELU_BWD: case OP_DROPOUT_BWD: case OP_BN_BWD_DATA: case OP_SELECT:
    case OP_GAP_BWD: case OP_MEAN_BWD: case OP_MEAN_OVER_BWD: case OP_ABSDIFF_BWD: case OP_KL_BWD: case OP_CHAN_SUM:
    case OP_BN_BWD_STATS: case OP_LOG_SOFTMAX_BWD: case OP_EXPECT_BWD: case OP_MAXPOOL_BWD:
    case OP_AVGPOOL_BWD: case OP_UPSAMPLE_BWD: case OP_SLICE: case OP_SGD: case OP_SGD_NESTEROV: case OP_ADAM:
    case OP_ADAMW: case OP_COUNT:
        no_rule(a, i);
        break;
    }
#undef NEED
}

/* The optimizers: the update op and its state tensors (one per slot of
 * AR_OPT, named "<param>.<state>"), in the update's input order after w, g. */
typedef struct OptRow {
    GOp op;
    int nstate;
    const char *state[2];
} OptRow;
static const OptRow opt_rows[] = {
    {OP_SGD, 1, {"momentum"}},
    {OP_SGD_NESTEROV, 1, {"momentum"}},
    {OP_ADAM, 2, {"exp_avg", "exp_avg_sq"}},
    {OP_ADAMW, 2, {"exp_avg", "exp_avg_sq"}},
};

static const OptRow *opt_row(GOp op)
{
    for (size_t k = 0; k < sizeof opt_rows / sizeof *opt_rows; k++)
        if (opt_rows[k].op == op)
            return &opt_rows[k];
    return NULL;
}

/* The update node's attr: the graph's optimizer_attr with its weight decay. */
static GAttr opt_attr(const Graph *g)
{
    GAttr at = g->optimizer_attr;
    if (g->optimizer == OP_ADAM || g->optimizer == OP_ADAMW)
        at.adam.wd = g->weight_decay;
    else
        at = (GAttr){.sgd = {g->weight_decay}};
    return at;
}

int ad_differentiate(Graph *g, DlDiag *diag)
{
    uint32_t loss = G_NONE;
    for (int o = 0; o < g->nouts; o++)
        if (g->outs[o].kind == GOUT_LOSS)
            loss = g->outs[o].node;
    if (loss == G_NONE || loss >= g->n) {
        dl_error(diag, (DlSrcLoc){0, 0, 0}, "internal: autodiff: the graph has no loss output");
        return 1;
    }
    AD a0 = {g, diag, g->n, dl_xcalloc(g->n, 1), dl_xmalloc(g->n * sizeof(uint32_t)), 0}, *a = &a0;
    uint8_t *dep = dl_xcalloc(g->n, 1), *reach = dl_xcalloc(g->n, 1);
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *n = &g->nodes[i];
        dep[i] = n->op == OP_PARAM;
        for (int k = 0; k < n->nin; k++)
            dep[i] |= dep[n->in[k]];
        a->grad[i] = G_NONE;
    }
    reach[loss] = 1;
    for (uint32_t i = loss + 1; i-- > 0;)
        if (reach[i])
            for (int k = 0; k < g->nodes[i].nin; k++)
                reach[g->nodes[i].in[k]] = 1;
    for (uint32_t i = 0; i < g->n; i++)
        a->need[i] = dep[i] && reach[i];

    int64_t one = 1;
    char *seed_name = dl_xasprintf("grad.%s", g->nodes[loss].name ? g->nodes[loss].name : "loss");
    a->grad[loss] = graph_add(g, OP_FILL, NULL, 0, &one, 1, (GAttr){.f = 1.0f}, seed_name, g->nodes[loss].loc);
    free(seed_name);
    for (uint32_t i = loss + 1; i-- > 0;)
        if (a->grad[i] != G_NONE)
            rule(a, i);

    /* the update, in parameter order */
    const OptRow *opt = opt_row(g->optimizer);
    if (!opt) {
        dl_error(diag, (DlSrcLoc){0, 0, 0}, "internal: autodiff: the graph's optimizer '%s' is not an optimizer op",
                 (unsigned)g->optimizer < OP_COUNT ? graph_op_name[g->optimizer] : "?");
        a->nerr++;
    }
    uint32_t scalars = G_NONE;
    for (uint32_t i = 0; i < a->n0; i++)
        if (g->nodes[i].op == OP_SCALARS)
            scalars = i;
    if (scalars == G_NONE)
        scalars = graph_add(g, OP_SCALARS, NULL, 0, (int64_t[]){4}, 1, (GAttr){0}, "scalars", (DlSrcLoc){0, 0, 0});
    uint32_t *grad_users = dl_xcalloc(g->n + 1, sizeof *grad_users); /* forward nodes whose gradient it is */
    for (uint32_t j = 0; j < a->n0; j++)
        if (a->grad[j] != G_NONE)
            grad_users[a->grad[j]]++;
    for (uint32_t p = 0; p < a->n0 && opt; p++) {
        if (g->nodes[p].op != OP_PARAM)
            continue;
        uint32_t gp = a->grad[p];
        if (gp == G_NONE) {
            dl_warning(diag, g->nodes[p].loc, "parameter '%s' does not affect the loss; it is not trained",
                       g->nodes[p].name);
            continue;
        }
        /* the gradient node must be this parameter's own (memory planner: AR_GRAD) */
        int shared = gp < a->n0 || g->nodes[gp].param != G_NONE || grad_users[gp] > 1;
        if (shared)
            gp = bwd(a, OP_SCALE, &gp, 1, p, (GAttr){.f = 1.0f}, p, NULL, g->nodes[p].loc);
        g->nodes[gp].param = p;
        uint32_t in[G_MAX_IN] = {p, gp};
        for (int k = 0; k < opt->nstate; k++) {
            char *nm = dl_xasprintf("%s.%s", g->nodes[p].name, opt->state[k]);
            const GNode *pn = &g->nodes[p];
            in[2 + k] = graph_add(g, OP_STATE, NULL, 0, pn->shape, pn->ndim, (GAttr){.ostate = {k}}, nm, pn->loc);
            free(nm);
            g->nodes[in[2 + k]].param = p;
        }
        in[2 + opt->nstate] = scalars;
        char *nm = dl_xasprintf("%s.%s", g->nodes[p].name, graph_op_name[opt->op]);
        const GNode *pn = &g->nodes[p];
        uint32_t s = graph_add(g, opt->op, in, 3 + opt->nstate, pn->shape, pn->ndim, opt_attr(g), nm, pn->loc);
        free(nm);
        g->nodes[s].inplace = p;
    }
    free(grad_users);
    free(dep);
    free(reach);
    free(a->need);
    free(a->grad);
    return a->nerr;
}
