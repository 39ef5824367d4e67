/* build_common.c - cg_generate: one kernel per non-library group, through the
 * kernel IR; the kernel argument table; kernel names; the --emit=kir text.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "build_internal.h"

int cg_fail(CgBuild *b, const char *fmt, ...)
{
    if (!b->err) {
        char tmp[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        b->err = dl_xstrdup(tmp);
    }
    return -1;
}

void cg_shape_str(const GNode *n, char *s, size_t cap)
{
    size_t len = 0;
    len += (size_t)snprintf(s, cap, "[");
    for (int d = 0; d < n->ndim && len < cap; d++)
        len += (size_t)snprintf(s + len, cap - len, "%s%lld", d ? "," : "", (long long)n->shape[d]);
    if (len < cap) snprintf(s + len, cap - len, "]");
}

int64_t cg_bn_count(const CgBuild *b, uint32_t stats)
{
    while (cg_node(b, stats)->op == OP_RESHAPE) stats = cg_node(b, stats)->in[0];
    const GNode *s = cg_node(b, stats);
    if (s->op == OP_BN_FINALIZE) return s->attr.bn.count; /* synchronised: over every rank's values */
    if (s->op != OP_BN_STATS) return -1;
    const GNode *x = cg_node(b, s->in[0]);
    if (x->ndim < 2 || x->shape[1] <= 0) return -1;
    return graph_numel(x) / x->shape[1];
}

static int add_arg(CgBuild *b, CgArg a, int written, const char *label)
{
    for (int i = 0; i < b->nargs; i++) {
        CgArg *o = &b->args[i];
        if (o->arena != a.arena) continue;
        if (o->offset == a.offset && o->numel == a.numel) {
            b->k->bufs[i].written |= written;
            return i;
        }
        if (a.offset < o->offset + o->numel && o->offset < a.offset + a.numel)
            return cg_fail(b, "buffers overlap: %s %s+%lld (%lld floats) and buffer %d at +%lld (%lld floats)",
                           label, graph_arena_name(a.arena), (long long)a.offset, (long long)a.numel, i,
                           (long long)o->offset, (long long)o->numel);
    }
    if (b->nargs == b->argcap) {
        b->argcap = b->argcap ? 2 * b->argcap : 8;
        b->args = dl_xrealloc(b->args, (size_t)b->argcap * sizeof *b->args);
    }
    b->args[b->nargs] = a;
    kir_buf(b->k, label, a.numel, written);
    return b->nargs++;
}

int cg_arg_node(CgBuild *b, uint32_t node, int written)
{
    const GNode *n = cg_node(b, node);
    uint32_t target = n->inplace != G_NONE ? n->inplace : node;
    const GBuffer *gb = &b->mp->buf[target];
    if (gb->offset < 0 || gb->numel < graph_numel(cg_node(b, target)))
        return cg_fail(b, "node %%%u (%s) has no storage of %lld floats in the memory plan", target,
                       cg_node(b, target)->name ? cg_node(b, target)->name : "", (long long)graph_numel(n));
    char sh[64], label[256];
    cg_shape_str(cg_node(b, target), sh, sizeof sh);
    snprintf(label, sizeof label, "%%%u %s %s", target, cg_node(b, target)->name ? cg_node(b, target)->name : "", sh);
    int i = add_arg(b, (CgArg){target, gb->arena, gb->offset, graph_numel(cg_node(b, target))}, written, label);
    if (i >= 0) b->node_buf[node] = b->node_buf[target] = i;
    return i;
}

int cg_arg_region(CgBuild *b, GArena a, int64_t off, int64_t numel, int written, const char *label)
{
    return add_arg(b, (CgArg){G_NONE, a, off, numel}, written, label);
}

int cg_args_from_group(CgBuild *b)
{
    for (int i = 0; i < b->grp->nins; i++)
        if (cg_arg_node(b, b->grp->ins[i], 0) < 0) return -1;
    for (int i = 0; i < b->grp->nouts; i++)
        if (cg_arg_node(b, b->grp->outs[i], 1) < 0) return -1;
    return 0;
}

/* prefix "k<i>_" op names joined by '_', the op part cut near 48 characters */
static char *kernel_name(const Graph *g, const GGroup *gr, int gi, const char *prefix)
{
    DlBuf s = {0};
    dl_buf_printf(&s, "%sk%d", prefix ? prefix : "", gi);
    size_t start = s.n;
    for (int i = 0; i < gr->nnodes; i++) {
        const char *op = graph_op_name[g->nodes[gr->nodes[i]].op];
        if (s.n - start + strlen(op) + 1 > 48) break;
        if (i > 0 && g->nodes[gr->nodes[i]].op == g->nodes[gr->nodes[i - 1]].op) continue;
        dl_buf_printf(&s, "_%s", op);
    }
    return s.s;
}

static void kir_header(const CgBuild *b, const CgKernel *kn, DlBuf *o)
{
    dl_buf_printf(o, "kernel %s  group %d (%s)  grid %lld\n", kn->name, b->gi, graph_group_kind_name(b->grp->kind),
                  (long long)kn->grid);
    for (int i = 0; i < kn->nargs; i++) {
        const CgArg *a = &kn->args[i];
        char sh[64];
        const char *name = "";
        if (a->node != G_NONE) {
            cg_shape_str(cg_node(b, a->node), sh, sizeof sh);
            name = cg_node(b, a->node)->name ? cg_node(b, a->node)->name : "";
        } else
            snprintf(sh, sizeof sh, "[%lld]", (long long)a->numel);
        char id[16] = "region";
        if (a->node != G_NONE) snprintf(id, sizeof id, "%%%u", a->node);
        dl_buf_printf(o, "  buf%d %-3s %-7s %-24s %s+%lld numel %lld %s\n", i, b->k->bufs[i].written ? "out" : "in",
                      id, name, graph_arena_name(a->arena), (long long)a->offset, (long long)a->numel, sh);
    }
    dl_buf_printf(o, "  for gid in [0, %lld):\n", (long long)kn->grid);
}

static int build_one(CgBuild *b)
{
    switch (b->grp->kind) {
    case GG_ELEM: return cg_build_elem(b);
    case GG_CHANRED: return cg_build_chanred(b);
    case GG_ROW: return cg_build_row(b);
    case GG_WINDOW: { /* one op: pooling windows, or planes moved whole */
        GOp op = b->grp->nnodes ? cg_node(b, b->grp->nodes[0])->op : OP_COUNT;
        int moves = op == OP_UPSAMPLE || op == OP_UPSAMPLE_BWD || op == OP_CONCAT || op == OP_SLICE ||
                    op == OP_NCHW_ROWS || op == OP_ROWS_NCHW;
        return moves ? cg_build_resample(b) : cg_build_window(b);
    }
    case GG_BATCHRED: return cg_build_batchred(b);
    case GG_OPT: return cg_build_opt(b);
    case GG_LIB: break;
    }
    return cg_fail(b, "library groups have no kernel");
}

/* The builder of a group kind's GPU schedule, or NULL: the CUDA module then
 * runs the flat kernel (each thread its own work items, grid-stride). */
typedef int (*CgBuilder)(CgBuild *b);
static CgBuilder gpu_builder(GGroupKind kind)
{
    switch (kind) {
    case GG_CHANRED: return cg_build_chanred_gpu;
    case GG_ROW: return cg_build_row_gpu;
    case GG_ELEM: return cg_build_elem_gpu;
    case GG_WINDOW: case GG_BATCHRED: case GG_OPT: case GG_LIB: break;
    }
    return NULL;
}

/* Build the GPU variant of the kernel cpu (built by b) with fn into gk:
 * verified, proven, and taking the very same buffers and grid.  Returns 0,
 * 1 when the builder declined (gk freed: the flat kernel serves the CUDA
 * module), or -1 (error recorded in b). */
static int build_gpu(CgBuild *b, const KirKernel *cpu, CgBuilder fn, KirKernel *gk)
{
    const GGroup *gr = b->grp;
    for (uint32_t i = 0; i < b->g->n; i++) b->node_buf[i] = -1;
    for (int i = 0; i < gr->nnodes; i++) b->role[gr->nodes[i]] = CR_ELEM;
    kir_init(gk, cpu->name, 0);
    CgBuild gb = *b;
    gb.k = gk, gb.args = NULL, gb.nargs = gb.argcap = 0, gb.err = NULL;
    int r = fn(&gb);
    if (r > 0) {
        free(gb.args);
        free(gb.err);
        kir_free(gk);
        return 1;
    }
    if (r == 0 && kir_verify(gk)) r = cg_fail(&gb, "kernel IR: %s", gk->err);
    if (r == 0 && gk->err) r = cg_fail(&gb, "kernel IR: %s", gk->err);
    char *why = NULL;
    if (r == 0 && kir_prove(gk, &why)) r = cg_fail(&gb, "kernel IR not proven in bounds: %s", why);
    free(why);
    if (r == 0 && (gb.nargs != b->nargs || gk->grid != cpu->grid ||
                   memcmp(gb.args, b->args, sizeof *gb.args * (size_t)b->nargs) != 0))
        r = cg_fail(&gb, "the GPU schedule takes other buffers or another grid than the CPU kernel");
    if (r) cg_fail(b, "GPU schedule: %s", gb.err ? gb.err : "failed");
    free(gb.args);
    free(gb.err);
    return r;
}

int cg_generate(const Graph *g, const GSchedule *sched, const GMemPlan *mp, const char *prefix,
                CgModule *out, DlDiag *diag)
{
    memset(out, 0, sizeof *out);
    DlBuf body = {0}, body_cuda = {0}, kir = {0};
    DL_VEC(CgKernel) ks = {0};
    int errors = 0;
    int32_t *node_buf = dl_xmalloc((size_t)(g->n + 1) * sizeof *node_buf);
    uint8_t *role = dl_xcalloc(g->n + 1, 1), *is_out = dl_xcalloc(g->n + 1, 1);
    for (uint32_t i = 0; i < g->n; i++) node_buf[i] = -1;
    for (int gi = 0; gi < sched->n; gi++) {
        const GGroup *gr = &sched->groups[gi];
        if (gr->kind == GG_LIB) continue;
        char *name = kernel_name(g, gr, gi, prefix);
        KirKernel k;
        kir_init(&k, name, 0);
        CgBuild b = {.g = g, .mp = mp, .grp = gr, .gi = gi, .k = &k, .node_buf = node_buf,
                     .role = role, .is_out = is_out};
        for (int i = 0; i < gr->nnodes; i++) role[gr->nodes[i]] = CR_ELEM;
        for (int i = 0; i < gr->nouts; i++) is_out[gr->outs[i]] = 1;
        int r = build_one(&b);
        if (r == 0 && kir_verify(&k)) r = cg_fail(&b, "kernel IR: %s", k.err);
        if (r == 0 && k.err) r = cg_fail(&b, "kernel IR: %s", k.err);
        char *why = NULL;
        if (r == 0 && kir_prove(&k, &why)) r = cg_fail(&b, "kernel IR not proven in bounds: %s", why);
        free(why);
        if (r == 0 && b.nargs > 16) r = cg_fail(&b, "%d buffers (the plan allows 16)", b.nargs);
        KirKernel *gk = NULL;
        if (r == 0 && gpu_builder(gr->kind)) {
            gk = dl_xcalloc(1, sizeof *gk);
            r = build_gpu(&b, &k, gpu_builder(gr->kind), gk);
            if (r > 0) free(gk), gk = NULL, r = 0;
        }
        if (r) {
            DlBuf ops = {0};
            for (int i = 0; i < gr->nnodes; i++)
                dl_buf_printf(&ops, "%s%%%u %s", i ? ", " : "", gr->nodes[i], graph_op_name[g->nodes[gr->nodes[i]].op]);
            DlSrcLoc loc = gr->nnodes ? g->nodes[gr->nodes[0]].loc : (DlSrcLoc){0, 0, 0};
            dl_error(diag, loc, "internal error: codegen: group %d (%s: %s): %s", gi, graph_group_kind_name(gr->kind),
                     ops.s ? ops.s : "", b.err ? b.err : "failed");
            dl_buf_free(&ops);
            errors++;
            free(b.args);
        } else {
            CgKernel kn = {.name = name, .group = gi, .grid = k.grid, .args = b.args, .nargs = b.nargs};
            name = NULL;
            DlBuf enc = {0};
            kir_encode(&k, &enc);
            kn.kir = (uint8_t *)enc.s;
            kn.kir_len = enc.n;
            kir_render(&k, &body);
            kir_render(gk ? gk : &k, &body_cuda);
            kir_header(&b, &kn, &kir);
            kir_dump(&k, &kir);
            if (gk) {
                DlBuf genc = {0};
                kir_encode(gk, &genc);
                kn.kir_gpu = (uint8_t *)genc.s;
                kn.kir_gpu_len = genc.n;
                dl_buf_printf(&kir, "  GPU schedule: one block of %d threads per work item\n", gk->block);
                kir_dump(gk, &kir);
            }
            dl_buf_printf(&kir, "\n");
            DL_PUSH(ks, kn);
        }
        if (gk) kir_free(gk), free(gk);
        free(name);
        free(b.err);
        for (int i = 0; i < gr->nnodes; i++) role[gr->nodes[i]] = CR_NONE;
        for (int i = 0; i < gr->nouts; i++) is_out[gr->outs[i]] = 0;
        for (uint32_t i = 0; i < g->n; i++) node_buf[i] = -1;
        kir_free(&k);
    }
    free(node_buf);
    free(role);
    free(is_out);
    out->kernels = ks.a;
    out->nkernels = (int)ks.n;
    out->body = body.s ? body.s : dl_xstrdup("");
    out->body_cuda = body_cuda.s ? body_cuda.s : dl_xstrdup("");
    out->kir_text = kir.s ? kir.s : dl_xstrdup("");
    return errors;
}

void cg_module_free(CgModule *m)
{
    for (int i = 0; i < m->nkernels; i++) {
        free((char *)m->kernels[i].name);
        free(m->kernels[i].args);
        free(m->kernels[i].kir);
        free(m->kernels[i].kir_gpu);
    }
    free(m->kernels);
    free(m->body);
    free(m->body_cuda);
    free(m->kir_text);
    memset(m, 0, sizeof *m);
}
