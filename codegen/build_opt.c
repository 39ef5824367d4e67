/* build_opt.c - the GG_OPT kernel: one optimizer update over every parameter
 * at once.  The group's nodes are all one op of ops.def's optimizer section
 * (lr = scalars[0], scalars[1] = momentum or beta1 and the step scalars[2]
 * are written by the runtime each step, so schedules need no recompilation):
 *
 *   SGD           g = grad + wd w;  v = mu v + g;  w -= lr v
 *                 (PyTorch torch.optim.SGD, dampening 0)
 *   SGD_NESTEROV  g = grad + wd w;  v = mu v + g;  w -= lr (g + mu v)
 *                 (torch.optim.SGD nesterov=True; Sutskever et al., ICML 2013)
 *   ADAM          t = step + 1;  g = grad + wd w;
 *                 m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g g;
 *                 w -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
 *                 (Kingma & Ba, ICLR 2015, Algorithm 1, written as
 *                 torch.optim.Adam computes it: eps is added after the bias
 *                 correction of sqrt(v), as eps-hat of the paper's Sec. 2 is not)
 *   ADAMW         w *= 1 - lr wd;  then ADAM with g = grad
 *                 (decoupled weight decay: Loshchilov & Hutter, ICLR 2019,
 *                 Algorithm 2, with the schedule multiplier folded into lr, as
 *                 torch.optim.AdamW)
 *
 * Adam's bias corrections 1 - b^t, lr / (1 - b1^t) and sqrt(1 - b2^t) are
 * computed in double from the float scalars, as PyTorch computes them in
 * Python, then rounded to float; everything per element is float.  They are
 * the same for every element: each work item computes them before its
 * element (the C compiler hoists them out of the work-item loop).
 *
 * Layout (compiler/memplan.h): the parameters, their gradients and each
 * optimizer state are contiguous in AR_PARAM, AR_GRAD and AR_OPT with one
 * layout; state slot k sits at k * stride from the parameters' offset in
 * AR_OPT, so the kernel takes one region buffer each for the parameters, the
 * gradients and each state, plus the scalars: one work item per parameter
 * element.  Alignment padding between parameters (less than MEM_ALIGN
 * floats) is updated too: it is zero in every arena and stays zero (Adam:
 * m = v = 0, w -= step * 0 / eps).  A parameter that does not affect the loss
 * has no update node (autodiff warns) but keeps its place in AR_PARAM; the
 * work items over such holes skip the update, as PyTorch skips a parameter
 * without a gradient.
 */
#include <math.h>
#include <stdlib.h>

#include "../compiler/memplan.h"
#include "build_internal.h"

typedef struct Slot { int64_t off, n; } Slot;

static int cmp_slot(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

static int is_adam(GOp op) { return op == OP_ADAM || op == OP_ADAMW; }

/* The same constant hyperparameters (wd; beta2, eps) in two update nodes. */
static int same_attr(GOp op, const GAttr *a, const GAttr *b)
{
    if (is_adam(op))
        return a->adam.wd == b->adam.wd && a->adam.beta2 == b->adam.beta2 && a->adam.eps == b->adam.eps;
    return a->sgd.wd == b->sgd.wd;
}

/* SGD and SGD_NESTEROV over the regions w, g, v (KIR locals lr, mu, w, g, v). */
static void body_sgd(KirKernel *k, int blk, GOp op, float wd, int wb, int gb, int vb, int sb)
{
    int gid = kir_gid(k);
    int lr = kir_decl(k, blk, "lr", kir_load(k, sb, kir_i64(k, 0)));
    int mu = kir_decl(k, blk, "mu", kir_load(k, sb, kir_i64(k, 1)));
    int w = kir_decl(k, blk, "w", kir_load(k, wb, gid));
    int g = kir_decl(k, blk, "g", kir_bin(k, KX_ADD, kir_load(k, gb, gid), kir_bin(k, KX_MUL, kir_f32(k, wd), w)));
    int v = kir_decl(k, blk, "v", kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, mu, kir_load(k, vb, gid)), g));
    kir_store(k, blk, vb, gid, v, 0);
    int d = v;
    if (op == OP_SGD_NESTEROV) /* PyTorch: grad = grad.add(buf, alpha=momentum) */
        d = kir_decl(k, blk, "d", kir_bin(k, KX_ADD, g, kir_bin(k, KX_MUL, mu, v)));
    kir_store(k, blk, wb, gid, kir_bin(k, KX_SUB, w, kir_bin(k, KX_MUL, lr, d)), 0);
}

/* The per-step values of Adam, declared in blk (before the hole test):
 * *step = f32(lr / (1 - b1^t)), *rbc2 = f32(sqrt(1 - b2^t)), *lr and *b1
 * the scalars. */
static void adam_step_values(KirKernel *k, int blk, double beta2, int sb, int *lr, int *b1, int *step, int *rbc2)
{
    *lr = kir_decl(k, blk, "lr", kir_load(k, sb, kir_i64(k, 0)));
    *b1 = kir_decl(k, blk, "b1", kir_load(k, sb, kir_i64(k, 1)));
    int t = kir_decl(k, blk, "t", kir_bin(k, KX_ADD, kir_un(k, KX_TOF64, kir_load(k, sb, kir_i64(k, 2))), kir_f64(k, 1.0)));
    int bc1 = kir_decl(k, blk, "bc1", kir_bin(k, KX_SUB, kir_f64(k, 1.0),
                                               kir_un(k, KX_EXP, kir_bin(k, KX_MUL, t, kir_un(k, KX_LOG, kir_un(k, KX_TOF64, *b1))))));
    /* log(beta2) folded here: beta2 is a constant of the plan */
    int bc2 = kir_decl(k, blk, "bc2", kir_bin(k, KX_SUB, kir_f64(k, 1.0),
                                               kir_un(k, KX_EXP, kir_bin(k, KX_MUL, t, kir_f64(k, log(beta2))))));
    *step = kir_decl(k, blk, "step", kir_un(k, KX_TOF32, kir_bin(k, KX_DIV, kir_un(k, KX_TOF64, *lr), bc1)));
    *rbc2 = kir_decl(k, blk, "rbc2", kir_un(k, KX_TOF32, kir_un(k, KX_SQRT, bc2)));
}

/* ADAM and ADAMW's element update in blk. */
static void body_adam(KirKernel *k, int blk, GOp op, const GAttr *at, int lr, int b1, int step, int rbc2, int wb,
                      int gb, int mb, int vb)
{
    int gid = kir_gid(k);
    double wd = at->adam.wd, b2 = at->adam.beta2;
    int w = kir_decl(k, blk, "w", kir_load(k, wb, gid));
    int g;
    if (op == OP_ADAMW) { /* PyTorch: param.mul_(1 - lr * weight_decay), the factor in double */
        int f = kir_un(k, KX_TOF32, kir_bin(k, KX_SUB, kir_f64(k, 1.0), kir_bin(k, KX_MUL, kir_un(k, KX_TOF64, lr),
                                                                              kir_f64(k, wd))));
        w = kir_decl(k, blk, "w", kir_bin(k, KX_MUL, w, f));
        g = kir_decl(k, blk, "g", kir_load(k, gb, gid));
    } else { /* PyTorch: grad = grad.add(param, alpha=weight_decay) */
        g = kir_decl(k, blk, "g", kir_bin(k, KX_ADD, kir_load(k, gb, gid), kir_bin(k, KX_MUL, kir_f32(k, (float)wd), w)));
    }
    /* 1 - b1 is exact in float for b1 in [0.5, 1] (Sterbenz) and close otherwise */
    int m = kir_decl(k, blk, "m", kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, b1, kir_load(k, mb, gid)),
                                         kir_bin(k, KX_MUL, kir_bin(k, KX_SUB, kir_f32(k, 1.0f), b1), g)));
    int v = kir_decl(k, blk, "v", kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, kir_f32(k, (float)b2), kir_load(k, vb, gid)),
                                         kir_bin(k, KX_MUL, kir_bin(k, KX_MUL, kir_f32(k, (float)(1.0 - b2)), g), g)));
    kir_store(k, blk, mb, gid, m, 0);
    kir_store(k, blk, vb, gid, v, 0);
    int den = kir_decl(k, blk, "den", kir_bin(k, KX_ADD, kir_bin(k, KX_DIV, kir_un(k, KX_SQRT, v), rbc2),
                                             kir_f32(k, (float)at->adam.eps)));
    kir_store(k, blk, wb, gid, kir_bin(k, KX_SUB, w, kir_bin(k, KX_DIV, kir_bin(k, KX_MUL, step, m), den)), 0);
}

int cg_build_opt(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (gr->nnodes == 0) return cg_fail(b, "empty optimizer group");
    Slot *sl = dl_xcalloc((size_t)gr->nnodes, sizeof *sl);
    const GNode *n0 = cg_node(b, gr->nodes[0]);
    GOp op = n0->op;
    int nstate = n0->nin - 3;
    uint32_t scalars = G_NONE;
    int64_t stride = 0; /* AR_OPT offset of state slot 1 minus that of slot 0 */
    int r = 0;
    for (int i = 0; i < gr->nnodes && !r; i++) {
        uint32_t m = gr->nodes[i];
        const GNode *n = cg_node(b, m);
        if (graph_op_kind[n->op] != OPK_OPT || n->nin != graph_op_ninputs[n->op] || n->nin < 4 || n->nin > 5) {
            r = cg_fail(b, "%%%u (%s) in the optimizer group", m, graph_op_name[n->op]);
            break;
        }
        if (n->op != op) {
            r = cg_fail(b, "%%%u is %s, %%%u is %s: one optimizer per group", gr->nodes[0], graph_op_name[op], m,
                        graph_op_name[n->op]);
            break;
        }
        const GBuffer *w = &b->mp->buf[n->in[0]], *g = &b->mp->buf[n->in[1]];
        int64_t numel = graph_numel(cg_node(b, n->in[0]));
        int bad = w->arena != AR_PARAM || g->arena != AR_GRAD || w->offset != g->offset || w->offset < 0 ||
                  graph_numel(cg_node(b, n->in[1])) != numel;
        for (int s = 0; s < nstate; s++) {
            const GBuffer *v = &b->mp->buf[n->in[2 + s]];
            if (i == 0 && s == 1) stride = v->offset - w->offset;
            bad |= v->arena != AR_OPT || v->offset != w->offset + s * stride ||
                   graph_numel(cg_node(b, n->in[2 + s])) != numel;
        }
        if (bad)
            r = cg_fail(b, "%s %%%u: weight %%%u, gradient %%%u and its %d state tensor(s) do not share one layout "
                        "in the param/grad/opt arenas (offsets %lld, %lld, %lld)", graph_op_name[op], m, n->in[0],
                        n->in[1], nstate, (long long)w->offset, (long long)g->offset,
                        (long long)b->mp->buf[n->in[2]].offset);
        if (i == 0) scalars = n->in[nstate + 2];
        else if (n->in[nstate + 2] != scalars) r = cg_fail(b, "%s nodes read different scalars", graph_op_name[op]);
        else if (!same_attr(op, &n->attr, &n0->attr)) {
            if (is_adam(op))
                r = cg_fail(b, "%s nodes differ in weight decay, beta2 or eps (%g, %g, %g and %g, %g, %g)",
                            graph_op_name[op], (double)n0->attr.adam.wd, n0->attr.adam.beta2, n0->attr.adam.eps,
                            (double)n->attr.adam.wd, n->attr.adam.beta2, n->attr.adam.eps);
            else
                r = cg_fail(b, "%s nodes differ in weight decay (%g and %g)", graph_op_name[op],
                            (double)n0->attr.sgd.wd, (double)n->attr.sgd.wd);
        }
        sl[i] = (Slot){w->offset, numel};
    }
    if (r) return free(sl), -1;
    qsort(sl, (size_t)gr->nnodes, sizeof *sl, cmp_slot);
    int64_t base = sl[0].off, total = sl[gr->nnodes - 1].off + sl[gr->nnodes - 1].n - base;
    Slot *hole = dl_xcalloc((size_t)gr->nnodes, sizeof *hole); /* untrained parameters, relative to base */
    int nholes = 0;
    for (int i = 1; i < gr->nnodes; i++) {
        int64_t end = sl[i - 1].off + sl[i - 1].n;
        if (sl[i].off < end) {
            r = cg_fail(b, "parameters overlap: [%lld, %lld) then %lld", (long long)sl[i - 1].off,
                        (long long)end, (long long)sl[i].off);
            break;
        }
        if (sl[i].off - end >= MEM_ALIGN) hole[nholes++] = (Slot){end - base, sl[i].off - end};
    }
    free(sl);
    if (nstate == 2 && stride < total)
        r = cg_fail(b, "%s: the two state slots overlap (stride %lld, %lld floats of parameters)", graph_op_name[op],
                    (long long)stride, (long long)total);
    if (r) return free(hole), -1;
    int wb = cg_arg_region(b, AR_PARAM, base, total, 1, "parameters");
    int gb = cg_arg_region(b, AR_GRAD, base, total, 0, "gradients");
    int vb[2] = {-1, -1};
    if (is_adam(op)) {
        vb[0] = cg_arg_region(b, AR_OPT, base, total, 1, "exp_avg");
        vb[1] = cg_arg_region(b, AR_OPT, base + stride, total, 1, "exp_avg_sq");
    } else
        vb[0] = cg_arg_region(b, AR_OPT, base, total, 1, "momentum");
    int sb = cg_arg_node(b, scalars, 0);
    if (wb < 0 || gb < 0 || vb[0] < 0 || (nstate == 2 && vb[1] < 0) || sb < 0) return free(hole), -1;
    k->grid = total;
    int blk = k->body, gid = kir_gid(k);
    int lr = -1, b1 = -1, step = -1, rbc2 = -1;
    if (is_adam(op)) /* per-step values first, outside the hole test */
        adam_step_values(k, blk, n0->attr.adam.beta2, sb, &lr, &b1, &step, &rbc2);
    if (nholes) { /* if (!(in hole 0 || in hole 1 ...)) update */
        int skip = -1;
        for (int h = 0; h < nholes; h++) {
            int in = kir_bin(k, KX_AND, kir_bin(k, KX_GE, gid, kir_i64(k, hole[h].off)),
                             kir_bin(k, KX_LT, gid, kir_i64(k, hole[h].off + hole[h].n)));
            skip = skip < 0 ? in : kir_bin(k, KX_OR, skip, in);
        }
        blk = kir_if(k, blk, kir_un(k, KX_NOT, skip));
    }
    free(hole);
    if (is_adam(op))
        body_adam(k, blk, op, &n0->attr, lr, b1, step, rbc2, wb, gb, vb[0], vb[1]);
    else
        body_sgd(k, blk, op, n0->attr.sgd.wd, wb, gb, vb[0], sb);
    return b->err ? -1 : 0;
}
