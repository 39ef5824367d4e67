/* fuse.c - fusion: nodes -> groups in execution order (fuse.h).
 *
 * Four steps:
 *  1. row set: the ROW ops and the ELEM ops on [B,...] rank <= 2 shapes
 *     connected to them through such ELEM ops (the loss tail);
 *  2. inlined set: cheap ELEM producers whose every consumer can recompute them
 *     (decided in reverse node order, so consumers are known first);
 *  3. clustering in node order: each remaining node starts a group or joins a
 *     producer's group; a join that would let the group depend on itself
 *     through an outside node is refused (creates_cycle);
 *  4. ordering: groups sorted topologically (ties: first node first, the
 *     optimizer last), in-place writers after the other readers of their
 *     target; then members, ins, outs and names.
 */
#include "fuse.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct FGroup {
    GGroupKind kind;
    DL_VEC(uint32_t) m;  /* members (not the inlined ones) */
    int alive;
    uint32_t first;      /* ELEM: the node whose shape is the iteration space */
    uint32_t red_in;     /* CHANRED: the reductions' input space (in[0]) */
    int64_t chan;        /* CHANRED: C of that input */
} FGroup;

typedef struct Fuser {
    const Graph *g;
    uint32_t *cstart, *cons;   /* consumers of node i: cons[cstart[i] .. cstart[i+1]) */
    int *gid;                  /* group of each clustered node, -1 otherwise */
    unsigned char *inl, *row, *isout;
    DL_VEC(FGroup) gr;
    unsigned *mark, *seen, stamp;
    DL_VEC(uint32_t) stack;
} Fuser;

static GOpKind kind_of(const Graph *g, uint32_t n) { return graph_op_kind[g->nodes[n].op]; }

static int same_shape(const GNode *a, const GNode *b)
{
    if (a->ndim != b->ndim) return 0;
    for (int i = 0; i < a->ndim; i++)
        if (a->shape[i] != b->shape[i]) return 0;
    return 1;
}

/* [B], [B,K], [B,A]: one row per sample. */
static int row_shape(const Graph *g, const GNode *n)
{
    return n->ndim >= 1 && n->ndim <= 2 && n->shape[0] == g->batch;
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
    F->stack.n = 0;
    for (uint32_t i = 0; i < g->n; i++)
        if (kind_of(g, i) == OPK_ROW) { F->row[i] = 1; DL_PUSH(F->stack, i); }
    while (F->stack.n) {
        uint32_t v = F->stack.a[--F->stack.n];
        uint32_t nb[G_MAX_IN];
        int nnb = 0;
        for (int k = 0; k < g->nodes[v].nin; k++) nb[nnb++] = g->nodes[v].in[k];
        for (int k = 0; k < nnb; k++) {
            uint32_t u = nb[k];
            if (!F->row[u] && kind_of(g, u) == OPK_ELEM && row_shape(g, &g->nodes[u])) {
                F->row[u] = 1; DL_PUSH(F->stack, u);
            }
        }
        FOR_CONS(F, v, u) {
            if (!F->row[u] && kind_of(g, u) == OPK_ELEM && row_shape(g, &g->nodes[u])) {
                F->row[u] = 1; DL_PUSH(F->stack, u);
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
    if (F->inl[c]) return same_shape(p, C) || (F->row[c] && row_shape(g, p));
    switch (kind_of(g, c)) {
    case OPK_ELEM:
        return same_shape(p, C) || (F->row[c] && row_shape(g, p));
    case OPK_ROW:
        return row_shape(g, p);
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

static int new_group(Fuser *F, GGroupKind kind, uint32_t n)
{
    FGroup G = {.kind = kind, .alive = 1, .first = n, .red_in = G_NONE};
    DL_PUSH(G.m, n);
    DL_PUSH(F->gr, G);
    F->gid[n] = (int)F->gr.n - 1;
    return (int)F->gr.n - 1;
}

static void join(Fuser *F, int gi, uint32_t n)
{
    DL_PUSH(F->gr.a[gi].m, n);
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
            for (size_t gi = 0; gi < F->gr.n && !done; gi++) {
                FGroup *G = &F->gr.a[gi];
                int one = (int)gi;
                if (G->alive && G->kind == GG_CHANRED && G->red_in == N->in[0] &&
                    !creates_cycle(F, &one, 1, n)) {
                    join(F, one, n); done = 1;
                }
            }
            if (!done) {
                int gi = new_group(F, GG_CHANRED, n);
                const GNode *X = &g->nodes[N->in[0]];
                F->gr.a[gi].red_in = N->in[0];
                F->gr.a[gi].chan = X->ndim >= 2 ? X->shape[1] : X->shape[0];
            }
            break;
        case OPK_ROW: case OPK_ELEM:
            if (k == OPK_ROW || F->row[n]) {
                for (int i = 0; i < N->nin; i++) {
                    int gi = F->gid[N->in[i]];
                    if (gi < 0 || F->gr.a[gi].kind != GG_ROW) continue;
                    int dup = 0;
                    for (int j = 0; j < nc; j++) dup |= cand[j] == gi;
                    if (!dup) cand[nc++] = gi;
                }
                if (nc && !creates_cycle(F, cand, nc, n)) {
                    for (int j = 1; j < nc; j++) {   /* merge the others into cand[0] */
                        FGroup *G = &F->gr.a[cand[j]];
                        for (size_t t = 0; t < G->m.n; t++) join(F, cand[0], G->m.a[t]);
                        G->alive = 0;
                    }
                    join(F, cand[0], n);
                    break;
                }
                for (int j = 0; j < nc && !done; j++)
                    if (!creates_cycle(F, &cand[j], 1, n)) { join(F, cand[j], n); done = 1; }
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
                if (fits && !creates_cycle(F, &gi, 1, n)) { join(F, gi, n); done = 1; }
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

int fuse_group_has(const GGroup *gr, uint32_t node)
{
    int lo = 0, hi = gr->nnodes - 1;
    while (lo <= hi) {
        int mid = (lo + hi) / 2;
        if (gr->nodes[mid] == node) return 1;
        if (gr->nodes[mid] < node) lo = mid + 1; else hi = mid - 1;
    }
    return 0;
}

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
    /* group dependency edges (k depends on j: dep[k*ng+j]) */
    int *gpos = dl_xcalloc(F->gr.n + 1, sizeof *gpos);
    for (int k = 0; k < ng; k++) gpos[live[k]] = k;
    unsigned char *dep = dl_xcalloc((size_t)ng * ng + 1, 1);
    for (int k = 0; k < ng; k++)
        for (int j = 0; j < tmp[k].nnodes; j++) {
            const GNode *N = &g->nodes[tmp[k].nodes[j]];
            for (int i = 0; i < N->nin; i++) {
                if (fuse_group_has(&tmp[k], N->in[i])) continue;
                int p = producer_group(F, N->in[i]);
                if (p >= 0 && gpos[p] != k) dep[(size_t)k * ng + gpos[p]] = 1;
            }
        }
    /* in-place writers after every other reader of their target */
    for (uint32_t w = 0; w < g->n; w++) {
        uint32_t t = g->nodes[w].inplace;
        if (t == G_NONE || F->gid[w] < 0) continue;
        int wk = gpos[F->gid[w]];
        for (int k = 0; k < ng; k++) {
            if (k == wk) continue;
            for (int j = 0; j < tmp[k].nnodes; j++) {
                const GNode *N = &g->nodes[tmp[k].nodes[j]];
                for (int i = 0; i < N->nin; i++) {
                    uint32_t r = N->in[i];
                    while (kind_of(g, r) == OPK_VIEW && r != t) r = g->nodes[r].in[0];
                    if (r == t) dep[(size_t)wk * ng + k] = 1;
                }
            }
        }
    }
    /* Kahn, ready group with the smallest first node first; the optimizer last */
    int *order = dl_xcalloc((size_t)ng + 1, sizeof *order);
    unsigned char *placed = dl_xcalloc((size_t)ng + 1, 1);
    int errors = 0;
    for (int step = 0; step < ng; step++) {
        int best = -1;
        uint64_t bestkey = UINT64_MAX;
        for (int k = 0; k < ng; k++) {
            if (placed[k]) continue;
            int ready = 1;
            for (int j = 0; j < ng && ready; j++)
                if (dep[(size_t)k * ng + j] && !placed[j]) ready = 0;
            if (!ready) continue;
            uint64_t key = tmp[k].kind == GG_OPT ? UINT64_MAX - 1 : F->gr.a[live[k]].m.a[0];
            for (int j = 0; j < tmp[k].nnodes; j++)
                if (!F->inl[tmp[k].nodes[j]] && tmp[k].kind != GG_OPT && tmp[k].nodes[j] < key)
                    key = tmp[k].nodes[j];
            if (key < bestkey || best < 0) { bestkey = key; best = k; }
        }
        if (best < 0) {
            dl_error(diag, (DlSrcLoc){0}, "internal: fusion produced a cycle among %d groups "
                     "(in-place writer before a reader?)", ng - step);
            errors++;
            break;
        }
        placed[best] = 1;
        order[step] = best;
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
                if (F->inl[c]) {
                    for (int t = 0; t < ng && !o; t++)
                        if (live[t] != self && fuse_group_has(&tmp[t], c)) o = 1;
                } else if (F->gid[c] != self) {
                    o = 1;
                }
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
    free(live); free(tmp); free(gpos); free(dep); free(order); free(placed);
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
    find_rows(&F);
    find_inlined(&F);
    cluster(&F);
    int errors = order_groups(&F, pool, out, diag);
    for (size_t i = 0; i < F.gr.n; i++) free(F.gr.a[i].m.a);
    free(F.gr.a); free(F.stack.a);
    free(F.cstart); free(F.cons); free(F.gid); free(F.inl); free(F.row); free(F.isout);
    free(F.mark); free(F.seen);
    return errors;
}

void fuse_dump(const Graph *g, const GSchedule *s, DlBuf *out)
{
    int count[GG_OPT + 1] = {0};
    for (int k = 0; k < s->n; k++) {
        const GGroup *gr = &s->groups[k];
        count[gr->kind]++;
        dl_buf_printf(out, "%-28s %-8s ", gr->name, graph_group_kind_name(gr->kind));
        for (int j = 0; j < gr->nnodes; j++) {
            uint32_t m = gr->nodes[j];
            /* '*' marks members recomputed here (also present in other groups) */
            int dup = 0;
            for (int t = 0; t < s->n && !dup; t++)
                if (t != k && fuse_group_has(&s->groups[t], m)) dup = 1;
            dl_buf_printf(out, "%s%%%u %s%s", j ? ", " : "", m, graph_op_name[g->nodes[m].op],
                          dup ? "*" : "");
        }
        dl_buf_printf(out, " | in");
        for (int j = 0; j < gr->nins; j++) dl_buf_printf(out, " %%%u", gr->ins[j]);
        dl_buf_printf(out, " | out");
        for (int j = 0; j < gr->nouts; j++) dl_buf_printf(out, " %%%u", gr->outs[j]);
        dl_buf_printf(out, "\n");
    }
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
                int ok = fuse_group_has(gr, N->in[i]);
                for (int t = 0; t < gr->nins && !ok; t++) ok = gr->ins[t] == N->in[i];
                if (!ok) BAD("group %s: %%%u reads %%%u, neither member nor in", gr->name, gr->nodes[j], N->in[i]);
            }
        }
    }
    for (uint32_t w = 0; w < g->n; w++) {   /* in-place writers after the other readers */
        uint32_t t = g->nodes[w].inplace;
        if (t == G_NONE) continue;
        if (writer[w] < 0) { BAD("in-place %%%u is not written by any group", w); continue; }
        for (int k = writer[w] + 1; k < s->n; k++)
            for (int j = 0; j < s->groups[k].nins; j++)
                if (view_root(g, s->groups[k].ins[j]) == t)
                    BAD("group %s reads %%%u after %%%u overwrote it", s->groups[k].name, t, w);
    }
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
