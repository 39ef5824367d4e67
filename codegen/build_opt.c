/* build_opt.c - the GG_OPT kernel: SGD with momentum and weight decay over
 * every parameter at once (PyTorch torch.optim.SGD, dampening 0, not
 * Nesterov):
 *     g = grad + wd * w;   v = mu * v + g;   w -= lr * v
 * lr = scalars[0], mu = scalars[1] (written by the runtime each step, so
 * schedules need no recompilation).  The parameters, their gradients and
 * momentum buffers are contiguous in AR_PARAM, AR_GRAD and AR_OPT with one
 * layout (compiler/memplan.h), so the kernel takes three region buffers and
 * the scalars, one work item per parameter element.  Alignment padding between
 * parameters (less than MEM_ALIGN floats) is updated too: it is zero in all
 * three arenas and stays zero.  A parameter that does not affect the loss has
 * no sgd node (autodiff warns) but keeps its place in AR_PARAM; the work items
 * over such holes skip the update, as PyTorch skips a parameter without a
 * gradient.
 */
#include <stdlib.h>

#include "../compiler/memplan.h"
#include "build_internal.h"

typedef struct Slot { int64_t off, n; } Slot;

static int cmp_slot(const void *a, const void *b)
{
    const Slot *x = a, *y = b;
    return x->off < y->off ? -1 : x->off > y->off;
}

int cg_build_opt(CgBuild *b)
{
    KirKernel *k = b->k;
    const GGroup *gr = b->grp;
    if (gr->nnodes == 0) return cg_fail(b, "empty optimizer group");
    Slot *sl = dl_xcalloc((size_t)gr->nnodes, sizeof *sl);
    uint32_t scalars = G_NONE;
    float wd = 0;
    int r = 0;
    for (int i = 0; i < gr->nnodes && !r; i++) {
        uint32_t m = gr->nodes[i];
        const GNode *n = cg_node(b, m);
        if (n->op != OP_SGD || n->nin != 4) {
            r = cg_fail(b, "%%%u (%s) in the optimizer group", m, graph_op_name[n->op]);
            break;
        }
        const GBuffer *w = &b->mp->buf[n->in[0]], *g = &b->mp->buf[n->in[1]], *v = &b->mp->buf[n->in[2]];
        int64_t numel = graph_numel(cg_node(b, n->in[0]));
        if (w->arena != AR_PARAM || g->arena != AR_GRAD || v->arena != AR_OPT || w->offset != g->offset ||
            w->offset != v->offset || w->offset < 0 || graph_numel(cg_node(b, n->in[1])) != numel ||
            graph_numel(cg_node(b, n->in[2])) != numel)
            r = cg_fail(b, "sgd %%%u: weight %%%u, gradient %%%u and momentum %%%u do not share one layout "
                        "in the param/grad/opt arenas (offsets %lld, %lld, %lld)", m, n->in[0], n->in[1], n->in[2],
                        (long long)w->offset, (long long)g->offset, (long long)v->offset);
        if (i == 0) scalars = n->in[3], wd = n->attr.sgd.wd;
        else if (n->in[3] != scalars) r = cg_fail(b, "sgd nodes read different scalars");
        else if (n->attr.sgd.wd != wd)
            r = cg_fail(b, "sgd nodes differ in weight decay (%g and %g)", (double)wd, (double)n->attr.sgd.wd);
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
    if (r) return free(hole), -1;
    int wb = cg_arg_region(b, AR_PARAM, base, total, 1, "parameters");
    int gb = cg_arg_region(b, AR_GRAD, base, total, 0, "gradients");
    int vb = cg_arg_region(b, AR_OPT, base, total, 1, "momentum");
    int sb = cg_arg_node(b, scalars, 0);
    if (wb < 0 || gb < 0 || vb < 0 || sb < 0) return free(hole), -1;
    k->grid = total;
    int blk = k->body, gid = kir_gid(k);
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
    int lr = kir_decl(k, blk, "lr", kir_load(k, sb, kir_i64(k, 0)));
    int mu = kir_decl(k, blk, "mu", kir_load(k, sb, kir_i64(k, 1)));
    int w = kir_decl(k, blk, "w", kir_load(k, wb, gid));
    int g = kir_decl(k, blk, "g", kir_bin(k, KX_ADD, kir_load(k, gb, gid), kir_bin(k, KX_MUL, kir_f32(k, wd), w)));
    int v = kir_decl(k, blk, "v", kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, mu, kir_load(k, vb, gid)), g));
    kir_store(k, blk, vb, gid, v, 0);
    kir_store(k, blk, wb, gid, kir_bin(k, KX_SUB, w, kir_bin(k, KX_MUL, lr, v)), 0);
    return b->err ? -1 : 0;
}
