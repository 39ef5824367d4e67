/* fuse.c - fusion: nodes -> groups in execution order (fuse.h).
 *
 * Four steps:
 *  1. row set: the ROW ops and the ELEM ops on [B,...] rank <= 2 shapes
 *     connected to them through such ELEM ops (the loss tail);
 *  2. inlined set: cheap ELEM producers whose every consumer can recompute them
 *     (decided in reverse node order, so consumers are known first);
 *  3. clustering in node order: each remaining node starts a group or joins a
 *     producer's group; a join that would let the group depend on itself
 *     through an outside node is refused (creates_cycle), and so is one that
 *     would give the group more than FUSE_MAX_MEMBERS members, its kernel
 *     more than FUSE_MAX_BUFFERS buffers or FUSE_MAX_REDUCTIONS reductions
 *     (too_big);
 *  4. ordering: groups sorted topologically (ties: first node first, the
 *     optimizer last), in-place writers after the other readers of their
 *     target; then members, ins, outs and names.
 * Every step is near-linear in the graph (a network summing 20,000 layer
 * outputs, a loss of 50,000 terms): consumer lists, per-node stamps instead
 * of cleared sets, groups of bounded size, a heap for the ordering.
 */
#include "fuse.h"

#include "../common/plan.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A generated kernel takes at most this many buffers (the plan's
 * DL_STEP_MAX_ARGS: codegen refuses more). */
#define FUSE_MAX_BUFFERS DL_STEP_MAX_ARGS
/* Members of one group, not counting inlined producers: bounds the kernels'
 * size and the work of each join (the specs' largest group has 16). */
#define FUSE_MAX_MEMBERS 64
/* Reductions in one GG_CHANRED group (codegen/build_chanred.c's MAX_RED). */
#define FUSE_MAX_REDUCTIONS 8
/* An inlined producer and the producers it inlines in turn read at most
 * this many buffers and are at most this many nodes (find_inlined). */
#define INLINE_MAX_READS 3
#define INLINE_MAX_NODES 8

typedef struct FGroup {
    GGroupKind kind;
    DL_VEC(uint32_t) m;  /* members (not the inlined ones) */
    int alive;
    uint32_t first;      /* ELEM: the node whose shape is the iteration space */
    uint32_t red_in;     /* CHANRED: the reductions' input space (in[0]) */
    int64_t chan;        /* CHANRED: C of that input */
    int chan_next;       /* CHANRED: the next group of the same red_in, or -1 */
    int nred;            /* CHANRED members */
} FGroup;

typedef struct Fuser {
    const Graph *g;
    uint32_t *cstart, *cons;   /* consumers of node i: cons[cstart[i] .. cstart[i+1]) */
    int *gid;                  /* group of each clustered node, -1 otherwise */
    unsigned char *inl, *row, *isout;
    int64_t *rows;             /* per row-set member: its rows (the batch, or batch x pixels) */
    DL_VEC(FGroup) gr;
    unsigned *mark, *seen, stamp;
    DL_VEC(uint32_t) stack;
    int *chan_first, *chan_last; /* per node: the CHANRED groups reducing over it (FGroup.chan_next) */
} Fuser;

static GOpKind kind_of(const Graph *g, uint32_t n) { return graph_op_kind[g->nodes[n].op]; }

static int same_shape(const GNode *a, const GNode *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* [R], [R,K], [R,A]: R rows, one per sample (R = B) or per pixel (R = B*H*W,
 * a per-pixel head: ops.def NCHW_ROWS). */
static int row_shape(const GNode *n, int64_t R)
{
    return n->ndim >= 1 && n->ndim <= 2 && n->shape[0] == R;
}

static int is_cheap(GOp op)
{
    return op == OP_RELU_BWD || op == OP_SCALE || op == OP_MEAN_BWD || op == OP_GAP_BWD ||
           op == OP_FILL;
}

static void build_consumers(Fuser *F)
{
    const Graph *g = F->g;
    F->cstart = dl_xcalloc(g->n + 1, sizeof *F->cstart);
    for (uint32_t i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) F->cstart[g->nodes[i].in[k] + 1]++;
    for (uint32_t i = 0; i < g->n; i++) F->cstart[i + 1] += F->cstart[i];
    F->cons = dl_xcalloc(F->cstart[g->n] + 1, sizeof *F->cons);
    uint32_t *fill = dl_xcalloc(g->n + 1, sizeof *fill);
    for (uint32_t i = 0; i < g->n; i++)
        for (int k = 0; k < g->nodes[i].nin; k++) {
            uint32_t p = g->nodes[i].in[k];
            F->cons[F->cstart[p] + fill[p]++] = i;
        }
    free(fill);
}

#define FOR_CONS(F, n, c) \
    for (uint32_t ci_ = (F)->cstart[n], c; ci_ < (F)->cstart[(n) + 1] && ((c = (F)->cons[ci_]), 1); ci_++)

/* Step 1: the row set, grown from the ROW ops through row-shaped ELEM ops. */
static void find_rows(Fuser *F)
{
    const Graph *g = F->g;
    F->row = dl_xcalloc(g->n, 1);
    F->rows = dl_xcalloc(g->n + 1, sizeof *F->rows);
    F->stack.n = 0;
    for (uint32_t i = 0; i < g->n; i++)
        if (kind_of(g, i) == OPK_ROW) { F->row[i] = 1; F->rows[i] = g->nodes[i].shape[0]; DL_PUSH(F->stack, i); }
    while (F->stack.n) {
        uint32_t v = F->stack.a[--F->stack.n];
        uint32_t nb[G_MAX_IN];
        int nnb = 0;
        for (int k = 0; k < g->nodes[v].nin; k++) nb[nnb++] = g->nodes[v].in[k];
        for (int k = 0; k < nnb; k++) {
            uint32_t u = nb[k];
            if (!F->row[u] && kind_of(g, u) == OPK_ELEM && row_shape(&g->nodes[u], F->rows[v])) {
                F->row[u] = 1; F->rows[u] = F->rows[v]; DL_PUSH(F->stack, u);
            }
        }
        FOR_CONS(F, v, u) {
            if (!F->row[u] && kind_of(g, u) == OPK_ELEM && row_shape(&g->nodes[u], F->rows[v])) {
                F->row[u] = 1; F->rows[u] = F->rows[v]; DL_PUSH(F->stack, u);
            }
        }
    }
}

/* Step 2: can consumer c recompute producer p per work item? */
static int prologue_ok(Fuser *F, const GNode *p, uint32_t c)
{
    const Graph *g = F->g;
    const GNode *C = &g->nodes[c];
    if (graph_numel(p) == 1) return 1;
    if (F->inl[c]) return same_shape(p, C) || (F->row[c] && row_shape(p, F->rows[c]));
    switch (kind_of(g, c)) {
    case OPK_ELEM:
        return same_shape(p, C) || (F->row[c] && row_shape(p, F->rows[c]));
    case OPK_ROW:
        return row_shape(p, F->rows[c]);
    case OPK_CHANRED:
        return same_shape(p, &g->nodes[C->in[0]]);
    case OPK_SOURCE: case OPK_VIEW: case OPK_WINDOW: case OPK_BATCHRED: case OPK_LIB: case OPK_OPT:
        return 0;
    }
    return 0;
}

static void find_inlined(Fuser *F)
{
    const Graph *g = F->g;
    F->inl = dl_xcalloc(g->n, 1);
    for (uint32_t n = g->n; n-- > 0;) {
        const GNode *N = &g->nodes[n];
        if (kind_of(g, n) != OPK_ELEM || !is_cheap(N->op) || F->isout[n] ||
            N->param != G_NONE || N->inplace != G_NONE || F->cstart[n] == F->cstart[n + 1])
            continue;
        int ok = 1;
        FOR_CONS(F, n, c) ok = ok && prologue_ok(F, N, c);
        F->inl[n] = (unsigned char)ok;
    }
    /* An inlined node is recomputed with the producers it inlines in turn
     * (its cone): a chain of 20,000 relu_bwd would be one kernel reading
     * 20,000 buffers.  Cones stay within INLINE_MAX_READS buffers and
     * INLINE_MAX_NODES nodes, so that a node of up to 5 inputs plus their
     * cones fits FUSE_MAX_BUFFERS; a node past that is stored instead (its
     * consumers read it: the choice does not change theirs). */
    int *reads = dl_xcalloc(g->n + 1, sizeof *reads), *nodes = dl_xcalloc(g->n + 1, sizeof *nodes);
    for (uint32_t n = 0; n < g->n; n++) {
        if (!F->inl[n]) continue;
        const GNode *N = &g->nodes[n];
        reads[n] = 0, nodes[n] = 1;
        for (int k = 0; k < N->nin; k++) {
            uint32_t i = N->in[k];
            reads[n] += F->inl[i] ? reads[i] : 1;
            nodes[n] += F->inl[i] ? nodes[i] : 0;
        }
        if (reads[n] > INLINE_MAX_READS || nodes[n] > INLINE_MAX_NODES) F->inl[n] = 0;
    }
    free(reads);
    free(nodes);
}

/* Would the union of groups gids[0..ng) and node n (G_NONE: none) depend on
 * itself through a node or group outside it? */
static int creates_cycle(Fuser *F, const int *gids, int ng, uint32_t n)
{
    const Graph *g = F->g;
    unsigned s = ++F->stamp;
    uint32_t maxidx = 0;
    DL_VEC(uint32_t) set = {0};
    for (int k = 0; k < ng; k++) {
        FGroup *G = &F->gr.a[gids[k]];
        for (size_t j = 0; j < G->m.n; j++) DL_PUSH(set, G->m.a[j]);
    }
    if (n != G_NONE) DL_PUSH(set, n);
    for (size_t j = 0; j < set.n; j++) {
        F->mark[set.a[j]] = s;
        if (set.a[j] > maxidx) maxidx = set.a[j];
    }
    F->stack.n = 0;
    int cycle = 0;
#define VISIT(v)                                                         \
    do {                                                                 \
        uint32_t v_ = (v);                                               \
        if (F->mark[v_] == s) { cycle = 1; goto done; }                  \
        if (F->seen[v_] != s && v_ <= maxidx) { F->seen[v_] = s; DL_PUSH(F->stack, v_); } \
    } while (0)
    for (size_t j = 0; j < set.n; j++)
        FOR_CONS(F, set.a[j], c) if (F->mark[c] != s) VISIT(c);
    while (F->stack.n) {
        uint32_t v = F->stack.a[--F->stack.n];
        FOR_CONS(F, v, c) VISIT(c);
        if (F->gid[v] >= 0) {
            FGroup *G = &F->gr.a[F->gid[v]];
            for (size_t j = 0; j < G->m.n; j++) {
                uint32_t u = G->m.a[j];
                if (F->seen[u] != s) { F->seen[u] = s; DL_PUSH(F->stack, u); }
            }
        }
    }
#undef VISIT
done:
    free(set.a);
    (void)g;
    return cycle;
}

/* Would the union of groups gids[0..ng) and node n be too big: more than
 * FUSE_MAX_MEMBERS members or FUSE_MAX_REDUCTIONS reductions, or more than
 * FUSE_MAX_BUFFERS buffers for its kernel?  The buffers counted are those order_groups gives it: the inputs
 * from outside (through inlined producers, which it recomputes), and the
 * members read outside it; a consumer not clustered yet counts as outside,
 * so the count can only fall as later nodes join, and the count at a group's
 * last join is exact. */
static int inlined_elsewhere(Fuser *F, uint32_t c, unsigned s)
{
    FOR_CONS(F, c, d)
        if (F->mark[d] != s || F->inl[d]) return 1;   /* (through another inlined node: perhaps) */
    return 0;
}

static int too_big(Fuser *F, const int *gids, int ng, uint32_t n)
{
    const Graph *g = F->g;
    size_t members = 1;
    int nred = kind_of(g, n) == OPK_CHANRED;
    for (int k = 0; k < ng; k++) members += F->gr.a[gids[k]].m.n, nred += F->gr.a[gids[k]].nred;
    if (members > FUSE_MAX_MEMBERS || nred > FUSE_MAX_REDUCTIONS) return 1;
    unsigned s = ++F->stamp;
    uint32_t set[FUSE_MAX_MEMBERS];
    size_t ns = 0;
    for (int k = 0; k < ng; k++)
        for (size_t j = 0; j < F->gr.a[gids[k]].m.n; j++) set[ns++] = F->gr.a[gids[k]].m.a[j];
    set[ns++] = n;
    for (size_t j = 0; j < ns; j++) F->mark[set[j]] = s;
    int bufs = 0;
    F->stack.n = 0;
    for (size_t j = 0; j < ns && bufs <= FUSE_MAX_BUFFERS; j++) {
        const GNode *M = &g->nodes[set[j]];
        for (int i = 0; i < M->nin; i++) DL_PUSH(F->stack, M->in[i]);
        while (F->stack.n) {   /* inputs, through inlined producers */
            uint32_t v = F->stack.a[--F->stack.n];
            if (F->mark[v] == s || F->seen[v] == s) continue;
            F->seen[v] = s;
            if (F->inl[v]) {
                for (int i = 0; i < g->nodes[v].nin; i++) DL_PUSH(F->stack, g->nodes[v].in[i]);
            } else {
                bufs++;
            }
        }
        int out = F->isout[set[j]] || M->inplace != G_NONE || F->cstart[set[j]] == F->cstart[set[j] + 1];
        FOR_CONS(F, set[j], c) {
            if (out) break;
            out = F->mark[c] != s || (F->inl[c] && inlined_elsewhere(F, c, s));
        }
        bufs += out;
    }
    return bufs > FUSE_MAX_BUFFERS;
}

/* Can n join the union of groups gids[0..ng)? */
static int can_join(Fuser *F, const int *gids, int ng, uint32_t n)
{
    return !too_big(F, gids, ng, n) && !creates_cycle(F, gids, ng, n);
}

static int new_group(Fuser *F, GGroupKind kind, uint32_t n)
{
    FGroup G = {.kind = kind, .alive = 1, .first = n, .red_in = G_NONE, .chan_next = -1,
                .nred = kind_of(F->g, n) == OPK_CHANRED};
    DL_PUSH(G.m, n);
    DL_PUSH(F->gr, G);
    F->gid[n] = (int)F->gr.n - 1;
    return (int)F->gr.n - 1;
}

static void join(Fuser *F, int gi, uint32_t n)
{
    DL_PUSH(F->gr.a[gi].m, n);
    F->gr.a[gi].nred += kind_of(F->g, n) == OPK_CHANRED;
    F->gid[n] = gi;
}

/* Step 3. */
static void cluster(Fuser *F)
{
    const Graph *g = F->g;
    int opt = -1;
    int cand[G_MAX_IN];
    for (uint32_t n = 0; n < g->n; n++) {
        const GNode *N = &g->nodes[n];
        GOpKind k = kind_of(g, n);
        if (F->inl[n] || k == OPK_SOURCE || k == OPK_VIEW) continue;
        int nc = 0, done = 0;
        switch (k) {
        case OPK_SOURCE: case OPK_VIEW: break;
        case OPK_LIB: new_group(F, GG_LIB, n); break;
        case OPK_WINDOW: new_group(F, GG_WINDOW, n); break;
        case OPK_BATCHRED: new_group(F, GG_BATCHRED, n); break;
        case OPK_OPT:
            if (opt < 0) opt = new_group(F, GG_OPT, n); else join(F, opt, n);
            break;
        case OPK_CHANRED:
            for (int gi = F->chan_first[N->in[0]], prev = -1; gi >= 0 && !done; gi = F->gr.a[gi].chan_next) {
                FGroup *G = &F->gr.a[gi];
                if (G->nred >= FUSE_MAX_REDUCTIONS) { /* full for good: out of the list */
                    if (prev >= 0) F->gr.a[prev].chan_next = G->chan_next;
                    else F->chan_first[N->in[0]] = G->chan_next;
                    if (F->chan_last[N->in[0]] == gi) F->chan_last[N->in[0]] = prev;
                    continue;
                }
                if (G->alive && can_join(F, &gi, 1, n)) {
                    join(F, gi, n); done = 1;
                }
                prev = gi;
            }
            if (!done) {
                int gi = new_group(F, GG_CHANRED, n);
                uint32_t x = N->in[0];
                const GNode *X = &g->nodes[x];
                F->gr.a[gi].red_in = x;
                F->gr.a[gi].chan = X->ndim >= 2 ? X->shape[1] : X->shape[0];
                if (F->chan_last[x] >= 0) F->gr.a[F->chan_last[x]].chan_next = gi;
                else F->chan_first[x] = gi;
                F->chan_last[x] = gi;
            }
            break;
        case OPK_ROW: case OPK_ELEM:
            if (k == OPK_ROW || F->row[n]) {
                for (int i = 0; i < N->nin; i++) {
                    int gi = F->gid[N->in[i]];
                    if (gi < 0 || F->gr.a[gi].kind != GG_ROW || F->rows[F->gr.a[gi].first] != F->rows[n]) continue;
                    int dup = 0;
                    for (int j = 0; j < nc; j++) dup |= cand[j] == gi;
                    if (!dup) cand[nc++] = gi;
                }
                if (nc && can_join(F, cand, nc, n)) {
                    for (int j = 1; j < nc; j++) {   /* merge the others into cand[0] */
                        FGroup *G = &F->gr.a[cand[j]];
                        for (size_t t = 0; t < G->m.n; t++) join(F, cand[0], G->m.a[t]);
                        G->alive = 0;
                    }
                    join(F, cand[0], n);
                    break;
                }
                for (int j = 0; j < nc && !done; j++)
                    if (can_join(F, &cand[j], 1, n)) { join(F, cand[j], n); done = 1; }
                if (!done) new_group(F, GG_ROW, n);
                break;
            }
            for (int i = 0; i < N->nin && !done; i++) {
                int gi = F->gid[N->in[i]];
                if (gi < 0) continue;
                FGroup *G = &F->gr.a[gi];
                int fits = (G->kind == GG_ELEM && same_shape(&g->nodes[G->first], N)) ||
                           (G->kind == GG_CHANRED && N->shape[N->ndim - 1] == G->chan &&
                            (N->ndim == 1 || (N->ndim == 2 && N->shape[0] <= 2)));
                if (fits && can_join(F, &gi, 1, n)) { join(F, gi, n); done = 1; }
            }
            if (!done) new_group(F, GG_ELEM, n);
            break;
        }
    }
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

/* Sort and deduplicate v in place; returns the new length. */
static size_t sort_unique(uint32_t *v, size_t n)
{
    if (!n) return 0;
    qsort(v, n, sizeof *v, cmp_u32);
    size_t o = 1;
    for (size_t i = 1; i < n; i++)
        if (v[i] != v[o - 1]) v[o++] = v[i];
    return o;
}

static int sorted_has(const uint32_t *a, int n, uint32_t x)
{
    int lo = 0, hi = n - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (a[mid] == x) return 1;
        if (a[mid] < x) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
}

int fuse_group_has(const GGroup *gr, uint32_t node) { return sorted_has(gr->nodes, gr->nnodes, node); }

int fuse_is_internal(const GGroup *gr, uint32_t node)
{
    if (!fuse_group_has(gr, node)) return 0;
    for (int i = 0; i < gr->nouts; i++)
        if (gr->outs[i] == node) return 0;
    return 1;
}


/* The producing group of what input i reads (views resolved), -1 for sources. */
static int producer_group(Fuser *F, uint32_t i)
{
    while (kind_of(F->g, i) == OPK_VIEW) i = F->g->nodes[i].in[0];
    return F->gid[i];
}

static const char *group_name(const Graph *g, DlPool *pool, const GGroup *gr, int idx)
{
    DlBuf b = {0};
    dl_buf_printf(&b, "k%d", idx);
    int has_loss = 0;
    for (int i = 0; i < gr->nnodes; i++) {
        GOp op = g->nodes[gr->nodes[i]].op;
        has_loss |= op == OP_KL_ROWS || op == OP_ABSDIFF_ROWS || op == OP_LOG_SOFTMAX_BWD;
    }
    if (gr->kind == GG_ROW && has_loss) {
        dl_buf_printf(&b, "_loss_tail");
    } else {
        GOp seen[5];
        int nseen = 0, more = 0;
        for (int i = 0; i < gr->nnodes; i++) {
            GOp op = g->nodes[gr->nodes[i]].op;
            int dup = 0;
            for (int j = 0; j < nseen; j++) dup |= seen[j] == op;
            if (dup) continue;
            if (nseen == 4) { more = 1; continue; }
            seen[nseen++] = op;
        }
        if (more) nseen = 3;
        for (int j = 0; j < nseen; j++) {
            const char *nm = graph_op_name[seen[j]];
            dl_buf_printf(&b, "_%s", strcmp(nm, "global_avgpool") ? nm : "gap");
        }
        if (more) dl_buf_printf(&b, "_etc");
    }
    const char *s = dl_pool_strdup(pool, b.s);
    dl_buf_free(&b);
    return s;
}

/* A binary min-heap of group indices by key (keys are distinct: a group's
 * first node, UINT64_MAX - 1 for the optimizer's). */
static void heap_push(int *h, int *n, const uint64_t *key, int k)
{
    int i = (*n)++;
    for (; i > 0 && key[h[(i - 1) / 2]] > key[k]; i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = k;
}

static int heap_pop(int *h, int *n, const uint64_t *key)
{
    int top = h[0], x = h[--*n], i = 0;
    for (;;) {
        int c = 2 * i + 1;
        if (c >= *n) break;
        if (c + 1 < *n && key[h[c + 1]] < key[h[c]]) c++;
        if (key[h[c]] >= key[x]) break;
        h[i] = h[c];
        i = c;
    }
    if (*n) h[i] = x;
    return top;
}

/* Step 4: order the groups, then fill members (with the inlined producers),
 * ins, outs and names. */
static int order_groups(Fuser *F, DlPool *pool, GSchedule *out, DlDiag *diag)
{
    const Graph *g = F->g;
    int ng = 0;
    int *live = dl_xcalloc(F->gr.n + 1, sizeof *live);
    for (size_t i = 0; i < F->gr.n; i++)
        if (F->gr.a[i].alive) live[ng++] = (int)i;
    /* members with inlined producers, sorted */
    GGroup *tmp = dl_xcalloc((size_t)ng + 1, sizeof *tmp);
    for (int k = 0; k < ng; k++) {
        FGroup *G = &F->gr.a[live[k]];
        DL_VEC(uint32_t) m = {0};
        for (size_t j = 0; j < G->m.n; j++) DL_PUSH(m, G->m.a[j]);
        for (size_t j = 0; j < m.n; j++) {
            const GNode *N = &g->nodes[m.a[j]];
            for (int i = 0; i < N->nin; i++)
                if (F->inl[N->in[i]]) DL_PUSH(m, N->in[i]);
        }
        m.n = sort_unique(m.a, m.n);
        tmp[k].kind = G->kind;
        tmp[k].nodes = dl_pool_alloc(pool, (m.n + 1) * sizeof(uint32_t));
        memcpy(tmp[k].nodes, m.a, m.n * sizeof(uint32_t));
        tmp[k].nnodes = (int)m.n;
        free(m.a);
    }
    /* dependency edges j -> k (j runs before k), deduplicated per k */
    int *gpos = dl_xcalloc(F->gr.n + 1, sizeof *gpos);
    for (int k = 0; k < ng; k++) gpos[live[k]] = k;
    DL_VEC(int) ej = {0}, ek = {0};     /* edge list */
    int *last = dl_xmalloc(((size_t)ng + 1) * sizeof *last);
    for (int k = 0; k < ng; k++) last[k] = -1;
    for (int k = 0; k < ng; k++)
        for (int j = 0; j < tmp[k].nnodes; j++) {
            const GNode *N = &g->nodes[tmp[k].nodes[j]];
            for (int i = 0; i < N->nin; i++) {
                if (fuse_group_has(&tmp[k], N->in[i])) continue;
                int p = producer_group(F, N->in[i]);
                if (p < 0 || gpos[p] == k || last[gpos[p]] == k) continue;
                last[gpos[p]] = k;       /* one edge per (p, k) while k's members are scanned */
                DL_PUSH(ej, gpos[p]); DL_PUSH(ek, k);
            }
        }
    /* in-place writers after every other reader of their target: the
     * writers' groups of each target, then each group's reads of it */
    int *wfirst = dl_xmalloc((g->n + 1) * sizeof *wfirst), *wnext = dl_xmalloc((g->n + 1) * sizeof *wnext);
    for (uint32_t i = 0; i < g->n; i++) wfirst[i] = wnext[i] = -1;
    for (uint32_t w = g->n; w-- > 0;) {
        uint32_t t = g->nodes[w].inplace;
        if (t == G_NONE || F->gid[w] < 0) continue;
        wnext[w] = wfirst[t];
        wfirst[t] = (int)w;
    }
    for (int k = 0; k < ng; k++)
        for (int j = 0; j < tmp[k].nnodes; j++) {
            const GNode *N = &g->nodes[tmp[k].nodes[j]];
            for (int i = 0; i < N->nin; i++)
                for (uint32_t r = N->in[i];; r = g->nodes[r].in[0]) {   /* r and the views it reads */
                    for (int w = wfirst[r]; w >= 0; w = wnext[w]) {
                        int wk = gpos[F->gid[w]];
                        if (wk != k) { DL_PUSH(ej, k); DL_PUSH(ek, wk); }
                    }
                    if (kind_of(g, r) != OPK_VIEW) break;
                }
        }
    free(wfirst); free(wnext); free(last);
    /* adjacency (CSR) and in-degrees; parallel edges count twice on both sides */
    int *estart = dl_xcalloc((size_t)ng + 2, sizeof *estart), *eadj = dl_xmalloc((ej.n + 1) * sizeof *eadj);
    int *indeg = dl_xcalloc((size_t)ng + 1, sizeof *indeg);
    for (size_t e = 0; e < ej.n; e++) { estart[ej.a[e] + 1]++; indeg[ek.a[e]]++; }
    for (int k = 0; k < ng; k++) estart[k + 1] += estart[k];
    int *fill = dl_xcalloc((size_t)ng + 1, sizeof *fill);
    for (size_t e = 0; e < ej.n; e++) eadj[estart[ej.a[e]] + fill[ej.a[e]]++] = ek.a[e];
    free(fill); free(ej.a); free(ek.a);
    /* Kahn, the ready group with the smallest first node first, the optimizer last */
    uint64_t *key = dl_xmalloc(((size_t)ng + 1) * sizeof *key);
    for (int k = 0; k < ng; k++) {
        key[k] = tmp[k].kind == GG_OPT ? UINT64_MAX - 1 : F->gr.a[live[k]].m.a[0];
        for (int j = 0; j < tmp[k].nnodes; j++)
            if (!F->inl[tmp[k].nodes[j]] && tmp[k].kind != GG_OPT && tmp[k].nodes[j] < key[k])
                key[k] = tmp[k].nodes[j];
    }
    int *heap = dl_xmalloc(((size_t)ng + 1) * sizeof *heap), nh = 0;
    for (int k = 0; k < ng; k++)
        if (!indeg[k]) heap_push(heap, &nh, key, k);
    int *order = dl_xcalloc((size_t)ng + 1, sizeof *order);
    int errors = 0;
    for (int step = 0; step < ng; step++) {
        if (!nh) {
            dl_error(diag, (DlSrcLoc){0}, "internal: fusion produced a cycle among %d groups "
                     "(in-place writer before a reader?)", ng - step);
            errors++;
            break;
        }
        int best = heap_pop(heap, &nh, key);
        order[step] = best;
        for (int e = estart[best]; e < estart[best + 1]; e++)
            if (--indeg[eadj[e]] == 0) heap_push(heap, &nh, key, eadj[e]);
    }
    free(heap); free(key); free(indeg); free(estart); free(eadj);
    /* inlined nodes: in how many groups, and the first (for the outs below) */
    int *icount = dl_xcalloc(g->n + 1, sizeof *icount), *igroup = dl_xmalloc((g->n + 1) * sizeof *igroup);
    for (int k = 0; k < ng; k++)
        for (int j = 0; j < tmp[k].nnodes; j++) {
            uint32_t m = tmp[k].nodes[j];
            if (F->inl[m] && icount[m]++ == 0) igroup[m] = k;
        }
    out->n = errors ? 0 : ng;
    out->groups = dl_pool_alloc(pool, ((size_t)ng + 1) * sizeof(GGroup));
    for (int s = 0; s < out->n; s++) {
        GGroup *gr = &out->groups[s];
        *gr = tmp[order[s]];
        int self = live[order[s]];
        DL_VEC(uint32_t) ins = {0}, outs = {0};
        for (int j = 0; j < gr->nnodes; j++) {
            uint32_t m = gr->nodes[j];
            const GNode *N = &g->nodes[m];
            for (int i = 0; i < N->nin; i++)
                if (!fuse_group_has(gr, N->in[i])) DL_PUSH(ins, N->in[i]);
            if (F->inl[m]) continue;
            int o = F->isout[m] || N->inplace != G_NONE || F->cstart[m] == F->cstart[m + 1];
            FOR_CONS(F, m, c) {
                if (o) break;
                if (F->inl[c]) /* recomputed in another group */
                    o = icount[c] > 1 || (icount[c] == 1 && igroup[c] != order[s]);
                else if (F->gid[c] != self)
                    o = 1;
            }
            if (o) DL_PUSH(outs, m);
        }
        ins.n = sort_unique(ins.a, ins.n);
        gr->ins = dl_pool_alloc(pool, (ins.n + 1) * sizeof(uint32_t));
        memcpy(gr->ins, ins.a, ins.n * sizeof(uint32_t));
        gr->nins = (int)ins.n;
        gr->outs = dl_pool_alloc(pool, (outs.n + 1) * sizeof(uint32_t));
        memcpy(gr->outs, outs.a, outs.n * sizeof(uint32_t));
        gr->nouts = (int)outs.n;
        free(ins.a);
        free(outs.a);
        gr->name = group_name(g, pool, gr, s);
    }
    free(live); free(tmp); free(gpos); free(order); free(icount); free(igroup);
    return errors;
}

int fuse_graph(const Graph *g, DlPool *pool, GSchedule *out, DlDiag *diag)
{
    Fuser F = {.g = g};
    out->groups = NULL;
    out->n = 0;
    build_consumers(&F);
    F.gid = dl_xmalloc((g->n + 1) * sizeof *F.gid);
    for (uint32_t i = 0; i < g->n; i++) F.gid[i] = -1;
    F.isout = dl_xcalloc(g->n + 1, 1);
    for (int i = 0; i < g->nouts; i++) F.isout[g->outs[i].node] = 1;
    F.mark = dl_xcalloc(g->n + 1, sizeof *F.mark);
    F.seen = dl_xcalloc(g->n + 1, sizeof *F.seen);
    F.chan_first = dl_xmalloc((g->n + 1) * sizeof *F.chan_first);
    F.chan_last = dl_xmalloc((g->n + 1) * sizeof *F.chan_last);
    for (uint32_t i = 0; i < g->n; i++) F.chan_first[i] = F.chan_last[i] = -1;
    find_rows(&F);
    find_inlined(&F);
    cluster(&F);
    int errors = order_groups(&F, pool, out, diag);
    for (size_t i = 0; i < F.gr.n; i++) free(F.gr.a[i].m.a);
    free(F.gr.a); free(F.stack.a);
    free(F.cstart); free(F.cons); free(F.gid); free(F.inl); free(F.row); free(F.rows); free(F.isout);
    free(F.mark); free(F.seen); free(F.chan_first); free(F.chan_last);
    return errors;
}

void fuse_dump(const Graph *g, const GSchedule *s, DlBuf *out)
{
    int count[GG_OPT + 1] = {0};
    int *ngroups = dl_xcalloc(g->n + 1, sizeof *ngroups); /* groups holding each node */
    for (int k = 0; k < s->n; k++)
        for (int j = 0; j < s->groups[k].nnodes; j++) ngroups[s->groups[k].nodes[j]]++;
    for (int k = 0; k < s->n; k++) {
        const GGroup *gr = &s->groups[k];
        count[gr->kind]++;
        dl_buf_printf(out, "%-28s %-8s ", gr->name, graph_group_kind_name(gr->kind));
        for (int j = 0; j < gr->nnodes; j++) {
            uint32_t m = gr->nodes[j];
            int dup = ngroups[m] > 1; /* '*' marks members recomputed here (also present in other groups) */
            dl_buf_printf(out, "%s%%%u %s%s", j ? ", " : "", m, graph_op_name[g->nodes[m].op],
                          dup ? "*" : "");
        }
        dl_buf_printf(out, " | in");
        for (int j = 0; j < gr->nins; j++) dl_buf_printf(out, " %%%u", gr->ins[j]);
        dl_buf_printf(out, " | out");
        for (int j = 0; j < gr->nouts; j++) dl_buf_printf(out, " %%%u", gr->outs[j]);
        dl_buf_printf(out, "\n");
    }
    free(ngroups);
    dl_buf_printf(out, "# %d groups:", s->n);
    for (int k = 0; k <= GG_OPT; k++)
        if (count[k]) dl_buf_printf(out, " %d %s", count[k], graph_group_kind_name((GGroupKind)k));
    dl_buf_printf(out, "\n");
}

/* ---- verifier ------------------------------------------------------------ */

static uint32_t view_root(const Graph *g, uint32_t n)
{
    while (graph_op_kind[g->nodes[n].op] == OPK_VIEW) n = g->nodes[n].in[0];
    return n;
}

int fuse_verify(const Graph *g, const GSchedule *s, DlDiag *diag)
{
    int errors = 0;
    int *writer = dl_xmalloc((g->n + 1) * sizeof *writer);
    int *count = dl_xcalloc(g->n + 1, sizeof *count);
    for (uint32_t i = 0; i < g->n; i++) writer[i] = -1;
#define BAD(...) do { if (errors++ < 10) dl_error(diag, (DlSrcLoc){0}, "internal: schedule invalid: " __VA_ARGS__); } while (0)
    for (int k = 0; k < s->n; k++) {
        const GGroup *gr = &s->groups[k];
        for (int j = 0; j < gr->nnodes; j++) {
            count[gr->nodes[j]]++;
            if (j && gr->nodes[j - 1] >= gr->nodes[j]) BAD("group %s: members not sorted", gr->name);
        }
        for (int j = 0; j < gr->nouts; j++) {
            if (!fuse_group_has(gr, gr->outs[j])) BAD("group %s: out %%%u is no member", gr->name, gr->outs[j]);
            if (writer[gr->outs[j]] >= 0) BAD("%%%u written by two groups", gr->outs[j]);
            writer[gr->outs[j]] = k;
        }
        if (gr->kind == GG_OPT && k != s->n - 1) BAD("optimizer group %s is not last", gr->name);
    }
    for (uint32_t i = 0; i < g->n; i++) {
        GOpKind kd = graph_op_kind[g->nodes[i].op];
        int comp = kd != OPK_SOURCE && kd != OPK_VIEW;
        if (comp && count[i] == 0) BAD("%%%u (%s) is in no group", i, graph_op_name[g->nodes[i].op]);
        if (!comp && count[i]) BAD("%%%u (%s) cannot be in a group", i, graph_op_name[g->nodes[i].op]);
        if (count[i] > 1 && (kd != OPK_ELEM || writer[i] >= 0))
            BAD("%%%u (%s) is in %d groups but is not a recomputed elementwise node", i,
                graph_op_name[g->nodes[i].op], count[i]);
    }
    for (int k = 0; k < s->n; k++) {
        const GGroup *gr = &s->groups[k];
        for (int j = 0; j < gr->nins; j++) {
            uint32_t r = view_root(g, gr->ins[j]);
            if (fuse_group_has(gr, gr->ins[j])) BAD("group %s: in %%%u is a member", gr->name, gr->ins[j]);
            if (graph_op_kind[g->nodes[r].op] != OPK_SOURCE && (writer[r] < 0 || writer[r] >= k))
                BAD("group %s reads %%%u before it is written", gr->name, r);
        }
        for (int j = 0; j < gr->nnodes; j++) {
            const GNode *N = &g->nodes[gr->nodes[j]];
            for (int i = 0; i < N->nin; i++) {
                int ok = fuse_group_has(gr, N->in[i]) || sorted_has(gr->ins, gr->nins, N->in[i]);
                if (!ok) BAD("group %s: %%%u reads %%%u, neither member nor in", gr->name, gr->nodes[j], N->in[i]);
            }
        }
    }
    /* in-place writers after the other readers: per target, its first writer */
    uint32_t *first_w = dl_xmalloc((g->n + 1) * sizeof *first_w);
    for (uint32_t i = 0; i < g->n; i++) first_w[i] = G_NONE;
    for (uint32_t w = 0; w < g->n; w++) {
        uint32_t t = g->nodes[w].inplace;
        if (t == G_NONE) continue;
        if (writer[w] < 0) { BAD("in-place %%%u is not written by any group", w); continue; }
        if (first_w[t] == G_NONE || writer[w] < writer[first_w[t]]) first_w[t] = w;
    }
    for (int k = 0; k < s->n; k++)
        for (int j = 0; j < s->groups[k].nins; j++) {
            uint32_t t = view_root(g, s->groups[k].ins[j]), w = first_w[t];
            if (w != G_NONE && k > writer[w])
                BAD("group %s reads %%%u after %%%u overwrote it", s->groups[k].name, t, w);
        }
    free(first_w);
    for (int o = 0; o < g->nouts; o++) {
        uint32_t r = view_root(g, g->outs[o].node);
        if (graph_op_kind[g->nodes[r].op] != OPK_SOURCE && writer[r] < 0)
            BAD("output '%s' (%%%u) is not stored", g->outs[o].name, r);
    }
#undef BAD
    free(writer);
    free(count);
    return errors;
}
