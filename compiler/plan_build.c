/* plan_build.c - compiled programs -> DlPlan (plan_build.h). */
#include "plan_build.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "fuse.h"
#include "memplan.h"
#include "names.h"

int pb_compile_program(PbProgram *p, int stage, DlPool *pool, DlDiag *diag)
{
    int errors = 0;
    if (p->done < 1 && stage >= 1) {
        errors = fuse_graph(p->g, pool, &p->sched, diag);
        if (!errors) errors = fuse_verify(p->g, &p->sched, diag);
        if (errors) return errors;
        p->done = 1;
    }
    if (p->done < 2 && stage >= 2) {
        errors = mem_plan(p->g, &p->sched, pool, &p->mem, diag);
        if (!errors) errors = mem_verify(p->g, &p->sched, &p->mem, diag);
        if (errors) return errors;
        p->done = 2;
    }
    if (p->done < 3 && stage >= 3) {
        char *prefix = dl_xasprintf("%s_", p->name);
        for (char *c = prefix; *c; c++) /* "train@2" -> kernels "train_2_k0_...": C identifiers */
            if (*c == '@') *c = '_';
        errors = cg_generate(p->g, &p->sched, &p->mem, prefix, &p->mod, diag);
        free(prefix);
        if (errors) { /* the kernels that did build are dropped with the module */
            cg_module_free(&p->mod);
            return errors;
        }
        p->done = 3;
    }
    return 0;
}

void pb_program_free(PbProgram *p)
{
    if (p->done >= 3) cg_module_free(&p->mod);
    p->done = p->done > 2 ? 2 : p->done;
}

/* ---- the tensor table ---------------------------------------------------- */

typedef struct Builder {
    DlPlan *plan;
    DlDiag *diag;
    DL_VEC(DlPlanTensor) t;
    NameMap saved[DL_ROLE_COUNT]; /* per role: a parameter's, state's or momentum's tensor by name */
    int64_t const_top;  /* next free offset in the plan's const arena */
    int errors;
} Builder;

/* The compiler's enums cross into the plan as numbers: they must agree with
 * common/plan_enums.def. */
_Static_assert((int)AR_ACT == DL_AR_ACT && (int)AR_PARAM == DL_AR_PARAM && (int)AR_GRAD == DL_AR_GRAD &&
                   (int)AR_OPT == DL_AR_OPT && (int)AR_STATE == DL_AR_STATE && (int)AR_INPUT == DL_AR_INPUT &&
                   (int)AR_CONST == DL_AR_CONST && (int)AR_COUNT == DL_AR_COUNT,
               "GArena and the plan's arenas");
_Static_assert((int)INIT_ZEROS == DL_INIT_ZEROS && (int)INIT_ONES == DL_INIT_ONES &&
                   (int)INIT_KAIMING_UNIFORM == DL_INIT_KAIMING_UNIFORM && (int)INIT_BIAS_UNIFORM == DL_INIT_BIAS_UNIFORM,
               "GInitKind and the plan's initialisations");
_Static_assert((int)GOUT_LOSS == DL_OUT_LOSS && (int)GOUT_LOSS_TERM == DL_OUT_LOSS_TERM &&
                   (int)GOUT_PROBS == DL_OUT_PROBS && (int)GOUT_EXPECT == DL_OUT_EXPECT,
               "GOutKind and the plan's output kinds");

static char *xdup(const char *s) { return s ? dl_xstrdup(s) : NULL; }

static int64_t align16(int64_t x) { return (x + 15) / 16 * 16; }

static int tensor_role(const GNode *N)
{
    switch (N->op) {
    case OP_PARAM: return DL_ROLE_PARAM;
    case OP_STATE: return N->param != G_NONE ? DL_ROLE_MOMENTUM : N->attr.state.data_stats ? DL_ROLE_DATA_STATS : DL_ROLE_STATE;
    case OP_SCALARS: return DL_ROLE_SCALARS;
    case OP_CONST: return DL_ROLE_CONST;
    case OP_INPUT:
        switch (N->attr.input.kind) {
        case IN_IMAGE: return DL_ROLE_INPUT;
        case IN_TARGET: return DL_ROLE_TARGET;
        case IN_LABEL: return DL_ROLE_LABEL;
        }
        return DL_ROLE_INPUT;
    default:
        return N->param != G_NONE ? DL_ROLE_GRAD : DL_ROLE_TEMP;
    }
}

static int add_tensor(Builder *B, DlPlanTensor t)
{
    DL_PUSH(B->t, t);
    return (int)B->t.n - 1;
}

/* The tensor of node i of graph g (storage in mp), created or shared. */
static int node_tensor(Builder *B, const Graph *g, const GMemPlan *mp, uint32_t i, const int *tix)
{
    const GNode *N = &g->nodes[i];
    const GBuffer *b = &mp->buf[i];
    if (N->inplace != G_NONE && tix[N->inplace] >= 0 && mp->buf[N->inplace].offset == b->offset &&
        mp->buf[N->inplace].arena == b->arena && graph_numel(&g->nodes[N->inplace]) == b->numel)
        return tix[N->inplace];
    int role = tensor_role(N);
    char *name = N->name ? dl_xstrdup(N->name) : dl_xasprintf("%%%u", i);
    int64_t offset = b->offset;
    if (role == DL_ROLE_PARAM || role == DL_ROLE_STATE || role == DL_ROLE_MOMENTUM ||
        role == DL_ROLE_DATA_STATS || role == DL_ROLE_CONST) {
        /* constants (few) by name and data; the others by name, in constant time */
        int found = role == DL_ROLE_CONST ? -1 : names_get(&B->saved[role], name);
        for (size_t k = role == DL_ROLE_CONST ? 0 : B->t.n; k < B->t.n; k++) {
            const DlPlanTensor *o = &B->t.a[k];
            if (o->role == role && o->name && !strcmp(o->name, name) && o->numel == b->numel &&
                !memcmp(o->data, N->attr.cst.data, (size_t)b->numel * sizeof(float))) {
                found = (int)k;
                break;
            }
        }
        if (found >= 0) {
            const DlPlanTensor *o = &B->t.a[found];
            if (role != DL_ROLE_CONST && (o->arena != (int)b->arena || o->offset != b->offset || o->numel != b->numel)) {
                dl_error(B->diag, N->loc, "internal: '%s' is at %s+%" PRId64 " (%" PRId64 " floats) in "
                         "one program and at %s+%" PRId64 " (%" PRId64 ") in another", name,
                         graph_arena_name((GArena)o->arena), o->offset, o->numel,
                         graph_arena_name(b->arena), b->offset, b->numel);
                B->errors++;
            }
            free(name);
            return found;
        }
    }
    DlPlanTensor t = {.name = name, .role = role, .arena = (int)b->arena, .offset = offset,
                      .numel = b->numel, .ndim = N->ndim, .ref = -1};
    if (N->op == OP_INPUT && N->attr.input.kind == IN_TARGET) t.ref = N->attr.input.ref;
    if (N->op == OP_INPUT && N->attr.input.kind == IN_LABEL) {
        t.ncols = N->attr.input.ncols;
        for (int k = 0; k < t.ncols && k < DL_MAX_AXES; k++) t.cols[k] = N->attr.input.cols[k];
    }
    for (int d = 0; d < N->ndim; d++) t.shape[d] = N->shape[d];
    if (N->ndim == 0) { t.ndim = 1; t.shape[0] = b->numel; }
    if (role == DL_ROLE_PARAM) {
        t.init = (int)N->attr.init.kind;
        t.fan_in = N->attr.init.fan_in;
    }
    if (role == DL_ROLE_CONST) {
        t.offset = B->const_top;
        B->const_top = align16(B->const_top + b->numel);
        t.data = dl_xmalloc((size_t)b->numel * sizeof(float) + 1);
        if (b->numel) memcpy(t.data, N->attr.cst.data, (size_t)b->numel * sizeof(float));
    }
    int idx = add_tensor(B, t);
    if (role == DL_ROLE_PARAM || role == DL_ROLE_STATE || role == DL_ROLE_MOMENTUM || role == DL_ROLE_DATA_STATS)
        names_put(&B->saved[role], t.name, idx);
    return idx;
}

/* A whole-region kernel argument (node == G_NONE). */
static int region_tensor(Builder *B, const CgArg *a)
{
    for (size_t k = 0; k < B->t.n; k++) {
        DlPlanTensor *o = &B->t.a[k];
        if (o->role == DL_ROLE_TEMP && o->arena == (int)a->arena && o->offset == a->offset &&
            o->numel == a->numel && o->ndim == 1 && o->name && strchr(o->name, '['))
            return (int)k;
    }
    DlPlanTensor t = {.name = dl_xasprintf("%s[%" PRId64 ":%" PRId64 "]", graph_arena_name(a->arena),
                                           a->offset, a->offset + a->numel),
                      .role = DL_ROLE_TEMP, .arena = (int)a->arena, .offset = a->offset,
                      .numel = a->numel, .ndim = 1, .shape = {a->numel}, .ref = -1};
    return add_tensor(B, t);
}

/* ---- steps --------------------------------------------------------------- */

static void rows_cols(const GNode *N, int64_t *rows, int64_t *cols)
{
    *rows = N->ndim ? N->shape[0] : 1;
    *cols = *rows ? graph_numel(N) / *rows : 0;
}

/* A library group's step: args and geometry per plan.h. */
static int lib_step(Builder *B, const Graph *g, uint32_t n, const int *tix, DlPlanStep *st)
{
    const GNode *N = &g->nodes[n];
    const GNode *A = &g->nodes[N->in[0]], *W = &g->nodes[N->in[N->nin > 1]];
    st->nargs = 3;
    st->args[0] = tix[N->in[0]];
    st->args[1] = tix[N->in[N->nin > 1]];
    st->args[2] = tix[n];
    const GNode *X = NULL, *Y = NULL;  /* conv: input-side and output-side activations */
    int64_t O = 0, kh = N->attr.conv.kh, kw = N->attr.conv.kw;
    switch (N->op) {
    case OP_CONV2D:
        st->kind = DL_STEP_CONV_FWD; X = A; Y = N; O = W->shape[0];
        break;
    case OP_CONV2D_BWD_DATA:
    case OP_CONV_TRANSPOSE2D: /* (x, w[Cin,Cout,k,k]): a convolution Cout -> Cin's backward data, y in its dx role */
        st->kind = DL_STEP_CONV_BWD_DATA; X = N; Y = A; O = W->shape[0];
        break;
    case OP_CONV2D_BWD_FILTER:
        st->kind = DL_STEP_CONV_BWD_FILTER; X = A; Y = W; O = W->shape[1];
        break;
    case OP_ALLREDUCE: /* synchronised batch norm's sums: started and waited for at once, slot 0 */
        st->kind = DL_STEP_ALLREDUCE_START;
        st->nargs = 2;
        st->args[1] = tix[n];
        st->i[3] = 0;
        return st->args[0] < 0 || st->args[1] < 0;
    case OP_MATMUL: {
        st->kind = DL_STEP_MATMUL;
        int64_t yr, yc, ar, ac;
        rows_cols(N, &yr, &yc);
        rows_cols(A, &ar, &ac);
        int64_t i5[5] = {yr, yc, N->attr.mm.ta ? ar : ac, N->attr.mm.ta, N->attr.mm.tb};
        memcpy(st->i, i5, sizeof i5);
        break;
    }
    default:
        dl_error(B->diag, N->loc, "internal: no library call for op %s", graph_op_name[N->op]);
        return 1;
    }
    if (X) {
        if (X->ndim != 4 || Y->ndim != 4) {
            dl_error(B->diag, N->loc, "internal: %s on non-4-d tensors", graph_op_name[N->op]);
            return 1;
        }
        int64_t geo[12] = {X->shape[0], X->shape[1], X->shape[2], X->shape[3], O, kh, kw,
                           N->attr.conv.stride, N->attr.conv.pad, Y->shape[2], Y->shape[3], N->attr.conv.dilate};
        memcpy(st->i, geo, sizeof geo);
    }
    for (int k = 0; k < 3; k++)
        if (st->args[k] < 0) {
            dl_error(B->diag, N->loc, "internal: %s reads or writes a node without storage",
                     graph_op_name[N->op]);
            return 1;
        }
    return 0;
}

/* ---- gradient buckets (train@N programs, docs/parallel.md) ---------------- */

/* Floats per gradient bucket: the parameter-gradient region is cut into
 * contiguous runs of whole gradients of about this size (2 MiB). */
#define PB_BUCKET_FLOATS (512 * 1024)

typedef struct Bucket { int64_t lo, hi; int after; } Bucket; /* [lo, hi) of AR_GRAD; its START follows group `after` */
typedef struct GradRun { int64_t off, n; int group; } GradRun;

static int cmp_run(const void *a, const void *b)
{
    const GradRun *x = a, *y = b;
    return (x->off > y->off) - (x->off < y->off);
}

/* The buckets of a train@N program: each gradient's writer group, then runs
 * of adjacent gradients (ascending offsets, at most DL_COMM_SLOTS - 1 buckets,
 * slot 0 being batch norm's), each started after the last group writing into
 * it.  Returns the count; *out is malloc'd. */
static int grad_buckets(const PbProgram *p, Bucket **out)
{
    const Graph *g = p->g;
    DL_VEC(GradRun) runs = {0};
    for (int k = 0; k < p->sched.n; k++) {
        const GGroup *gr = &p->sched.groups[k];
        int n = gr->kind == GG_LIB ? 1 : gr->nouts;
        for (int j = 0; j < n; j++) {
            uint32_t m = gr->kind == GG_LIB ? gr->nodes[0] : gr->outs[j];
            const GBuffer *b = &p->mem.buf[m];
            if (g->nodes[m].param != G_NONE && b->arena == AR_GRAD && b->offset >= 0)
                DL_PUSH(runs, ((GradRun){b->offset, b->numel, k}));
        }
    }
    if (runs.n) qsort(runs.a, runs.n, sizeof *runs.a, cmp_run);
    int64_t total = 0;
    for (size_t r = 0; r < runs.n; r++) total += runs.a[r].n;
    int64_t per = total / (DL_COMM_SLOTS - 1) + 1 > PB_BUCKET_FLOATS ? total / (DL_COMM_SLOTS - 1) + 1 : PB_BUCKET_FLOATS;
    Bucket *bk = dl_xcalloc(DL_COMM_SLOTS, sizeof *bk);
    int nb = 0;
    for (size_t r = 0; r < runs.n; r++) {
        const GradRun *x = &runs.a[r];
        if (nb && x->off + x->n - bk[nb - 1].lo <= per) {
            bk[nb - 1].hi = x->off + x->n;
            if (x->group > bk[nb - 1].after) bk[nb - 1].after = x->group;
        } else {
            bk[nb++] = (Bucket){x->off, x->off + x->n, x->group};
        }
    }
    DL_VEC_FREE(runs);
    *out = bk;
    return nb;
}

/* A bucket's START (in place over its region) or, with bucket -1 and slot s,
 * the WAIT for slot s. */
static void comm_step(DlPlanStep *st, const Bucket *b, int slot, const char *label)
{
    st->kind = b ? DL_STEP_ALLREDUCE_START : DL_STEP_ALLREDUCE_WAIT;
    if (b) st->i[0] = DL_AR_GRAD, st->i[1] = b->lo, st->i[2] = b->hi - b->lo;
    st->i[3] = slot;
    st->label = dl_xasprintf("%s%d", label, slot);
}

/* A generated group's step: its kernel (the next of the module with this
 * group, *kn advancing), grid and buffers.  Returns the errors. */
static int kernel_step(Builder *B, const PbProgram *p, int k, int *kn, int kernel_base, const int *tix, DlPlanStep *st)
{
    const GGroup *gr = &p->sched.groups[k];
    while (*kn < p->mod.nkernels && p->mod.kernels[*kn].group < k) (*kn)++;
    if (*kn >= p->mod.nkernels || p->mod.kernels[*kn].group != k) {
        dl_error(B->diag, (DlSrcLoc){0}, "internal: no kernel for group %s of program %s", gr->name, p->name);
        return 1;
    }
    const CgKernel *K = &p->mod.kernels[*kn];
    st->kind = DL_STEP_KERNEL;
    st->kernel = kernel_base + *kn;
    st->grid = K->grid;
    if (K->nargs > DL_STEP_MAX_ARGS) {
        dl_error(B->diag, (DlSrcLoc){0}, "internal: kernel %s takes %d buffers (at most %d)", K->name, K->nargs,
                 DL_STEP_MAX_ARGS);
        return 1;
    }
    st->nargs = K->nargs;
    int errors = 0;
    for (int a = 0; a < K->nargs; a++) {
        const CgArg *arg = &K->args[a];
        int t = arg->node == G_NONE ? region_tensor(B, arg) : arg->node < p->g->n ? tix[arg->node] : -1;
        if (t < 0) {
            dl_error(B->diag, (DlSrcLoc){0}, "internal: kernel %s buffer %d (node %%%u) has no storage", K->name, a,
                     arg->node);
            errors++;
            t = 0;
        }
        st->args[a] = t;
    }
    return errors;
}

static void build_program(Builder *B, const PbProgram *p, int pi, int kernel_base, const int *tix)
{
    DlPlanProgram *pr = &B->plan->programs[pi];
    pr->name = dl_xstrdup(p->name);
    pr->batch = p->g->batch;
    Bucket *bk = NULL;
    int nb = p->g->ranks > 1 ? grad_buckets(p, &bk) : 0;
    /* a step per group, a WAIT after each batch-norm all-reduce, a START and a WAIT per bucket */
    pr->steps = dl_xcalloc((size_t)p->sched.n * 2 + 2 * (size_t)nb + 1, sizeof *pr->steps);
    int kn = 0;
    for (int k = 0; k < p->sched.n; k++) {
        const GGroup *gr = &p->sched.groups[k];
        if (gr->kind == GG_OPT) /* every bucket summed before the update */
            for (int b = 0; b < nb; b++) comm_step(&pr->steps[pr->nsteps++], NULL, b + 1, "grad.wait");
        DlPlanStep *st = &pr->steps[pr->nsteps++];
        st->label = dl_xstrdup(gr->name);
        if (gr->kind != GG_LIB) {
            B->errors += kernel_step(B, p, k, &kn, kernel_base, tix, st);
        } else {
            B->errors += lib_step(B, p->g, gr->nodes[0], tix, st);
            if (st->kind == DL_STEP_ALLREDUCE_START) { /* batch norm's sums: needed at once */
                const char *nn = p->g->nodes[gr->nodes[0]].name; /* "c1.z.sums": what a timeout message names */
                free(st->label);
                st->label = dl_xasprintf("%s %s", gr->name, nn ? nn : "");
                DlPlanStep *w = &pr->steps[pr->nsteps++];
                w->kind = DL_STEP_ALLREDUCE_WAIT;
                w->i[3] = st->i[3];
                w->label = dl_xasprintf("%s.wait", gr->name);
            }
        }
        for (int b = 0; b < nb; b++) /* the buckets this group completes start now, while backward goes on */
            if (bk[b].after == k) comm_step(&pr->steps[pr->nsteps++], &bk[b], b + 1, "grad.bucket");
    }
    free(bk);
}

/* ---- metadata ------------------------------------------------------------ */

static DlKV *copy_kvs(const DlKV *kv, int n)
{
    DlKV *o = dl_xcalloc((size_t)n + 1, sizeof *o);
    for (int i = 0; i < n; i++) o[i] = (DlKV){xdup(kv[i].key), xdup(kv[i].val)};
    return o;
}

static void copy_meta(const DlPlan *m, DlPlan *p)
{
    p->version = DL_PLAN_VERSION;
    p->source_name = xdup(m->source_name);
    p->hyper = copy_kvs(m->hyper, m->nhyper);
    p->nhyper = m->nhyper;
    p->data = copy_kvs(m->data, m->ndata);
    p->ndata = m->ndata;
    p->nlabels = m->nlabels;
    p->targets = dl_xcalloc((size_t)m->ntargets + 1, sizeof *p->targets);
    p->ntargets = m->ntargets;
    for (int i = 0; i < m->ntargets; i++) {
        const DlPlanTarget *st = &m->targets[i];
        DlPlanTarget *dt = &p->targets[i];
        *dt = *st;
        dt->name = xdup(st->name);
        for (int a = 0; a < st->naxes && a < DL_MAX_AXES; a++) {
            const DlPlanAxis *s = &st->axes[a];
            DlPlanAxis *d = &dt->axes[a];
            *d = *s;
            d->name = xdup(s->name);
            d->unit = xdup(s->unit);
            d->bins = dl_xmalloc((size_t)s->nbins * sizeof(float) + 1);
            if (s->nbins > 0) memcpy(d->bins, s->bins, (size_t)s->nbins * sizeof(float));
        }
    }
    p->heads = dl_xcalloc((size_t)m->nheads + 1, sizeof *p->heads);
    p->nheads = m->nheads;
    for (int i = 0; i < m->nheads; i++) p->heads[i] = (DlPlanHead){xdup(m->heads[i].name), m->heads[i].K, m->heads[i].rows};
    p->metrics = dl_xcalloc((size_t)m->nmetrics + 1, sizeof *p->metrics);
    p->nmetrics = m->nmetrics;
    for (int i = 0; i < m->nmetrics; i++) {
        p->metrics[i] = m->metrics[i];
        p->metrics[i].name = xdup(m->metrics[i].name);
    }
}

int plan_build(const LowerResult *lr, const PbProgram *progs, int nprogs, DlPlan *out, DlDiag *diag)
{
    memset(out, 0, sizeof *out);
    Builder B = {.plan = out, .diag = diag};
    copy_meta(&lr->meta, out);
    out->programs = dl_xcalloc((size_t)nprogs + 1, sizeof *out->programs);
    DL_VEC(DlPlanKernel) kernels = {0};
    DL_VEC(DlPlanOutput) outs = {0};
    for (int pi = 0; pi < nprogs; pi++) {
        const PbProgram *p = &progs[pi];
        const Graph *g = p->g;
        int *tix = dl_xmalloc(((size_t)g->n + 1) * sizeof *tix);
        for (uint32_t i = 0; i < g->n; i++)
            tix[i] = p->mem.buf[i].offset >= 0 ? node_tensor(&B, g, &p->mem, i, tix) : -1;
        for (int a = 0; a < DL_AR_COUNT; a++)
            if (p->mem.arena_size[a] > out->arena_size[a]) out->arena_size[a] = p->mem.arena_size[a];
        int kernel_base = (int)kernels.n;
        for (int k = 0; k < p->mod.nkernels; k++) {
            const CgKernel *ck = &p->mod.kernels[k];
            DlPlanKernel K = {.name = dl_xstrdup(ck->name), .nargs = ck->nargs,
                              .kir = dl_xmalloc(ck->kir_len ? ck->kir_len : 1), .kir_len = ck->kir_len};
            memcpy(K.kir, ck->kir, ck->kir_len);
            if (ck->kir_gpu_len) {
                K.kir_gpu = dl_xmalloc(ck->kir_gpu_len);
                memcpy(K.kir_gpu, ck->kir_gpu, ck->kir_gpu_len);
                K.kir_gpu_len = ck->kir_gpu_len;
            }
            DL_PUSH(kernels, K);
        }
        build_program(&B, p, pi, kernel_base, tix);
        out->nprograms++;
        for (int o = 0; o < g->nouts; o++) {
            int t = tix[g->outs[o].node];
            if (t < 0) {
                dl_error(diag, (DlSrcLoc){0}, "internal: output '%s' of %s has no storage",
                         g->outs[o].name, p->name);
                B.errors++;
                continue;
            }
            DlPlanOutput po = {pi, (int)g->outs[o].kind, dl_xstrdup(g->outs[o].name), t, g->outs[o].head,
                               g->outs[o].target};
            DL_PUSH(outs, po);
        }
        free(tix);
    }
    out->arena_size[DL_AR_CONST] = B.const_top;
    out->tensors = B.t.a;
    out->ntensors = (int)B.t.n;
    out->kernels = kernels.a;
    out->nkernels = (int)kernels.n;
    out->outputs = outs.a;
    out->noutputs = (int)outs.n;
    for (int r = 0; r < DL_ROLE_COUNT; r++) names_free(&B.saved[r]);
    return B.errors;
}
