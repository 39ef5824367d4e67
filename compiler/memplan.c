/* memplan.c - arenas and offsets for every materialised node (memplan.h).
 *
 * Every node's storage has a root: a VIEW's root is its input's root, an
 * in-place writer's root is its target's root, any other node is its own
 * root.  Fixed arenas are laid out in node order; ACT roots are packed by
 * liveness (TFLite's "greedy by size" with best-fit gaps).
 */
#include "memplan.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int64_t align_up(int64_t x) { return (x + MEM_ALIGN - 1) / MEM_ALIGN * MEM_ALIGN; }

static uint32_t storage_root(const Graph *g, uint32_t n)
{
    for (;;) {
        const GNode *N = &g->nodes[n];
        if (graph_op_kind[N->op] == OPK_VIEW) n = N->in[0];
        else if (N->inplace != G_NONE) n = N->inplace;
        else return n;
    }
}


/* Which nodes need storage: sources, group outs, and the roots of views. */
static unsigned char *materialised(const Graph *g, const GSchedule *s)
{
    unsigned char *mat = dl_xcalloc(g->n + 1, 1);
    for (uint32_t i = 0; i < g->n; i++) {
        GOpKind k = graph_op_kind[g->nodes[i].op];
        if (k == OPK_SOURCE || k == OPK_VIEW) mat[i] = 1;
    }
    for (int k = 0; k < s->n; k++)
        for (int j = 0; j < s->groups[k].nouts; j++) mat[s->groups[k].outs[j]] = 1;
    for (int o = 0; o < g->nouts; o++) mat[g->outs[o].node] = 1;
    return mat;
}

/* first[r], last[r]: schedule positions of the first write and the last read
 * of every storage root r (-1 when never written / read); graph outputs are
 * read at position s->n (after the last group). */
static void live_ranges(const Graph *g, const GSchedule *s, int *first, int *last)
{
    for (uint32_t i = 0; i < g->n; i++) first[i] = last[i] = -1;
    for (int k = 0; k < s->n; k++) {
        const GGroup *gr = &s->groups[k];
        for (int j = 0; j < gr->nouts; j++) {
            uint32_t r = storage_root(g, gr->outs[j]);
            if (first[r] < 0 || k < first[r]) first[r] = k;
            if (last[r] < k) last[r] = k;
        }
        for (int j = 0; j < gr->nins; j++) {
            uint32_t r = storage_root(g, gr->ins[j]);
            if (last[r] < k) last[r] = k;
        }
    }
    for (int o = 0; o < g->nouts; o++) last[storage_root(g, g->outs[o].node)] = s->n;
}

int mem_live_range(const Graph *g, const GSchedule *s, uint32_t node, int *first, int *last)
{
    int *f = dl_xmalloc((g->n + 1) * sizeof *f), *l = dl_xmalloc((g->n + 1) * sizeof *l);
    live_ranges(g, s, f, l);
    uint32_t r = storage_root(g, node);
    *first = f[r];
    *last = l[r];
    int ok = graph_op_kind[g->nodes[r].op] != OPK_SOURCE && f[r] >= 0;
    free(f);
    free(l);
    return ok;
}

typedef struct Iv { uint32_t node; int first, last; int64_t size, off; } Iv;

static int cmp_iv_size(const void *a, const void *b)
{
    const Iv *x = a, *y = b;
    if (x->size != y->size) return x->size > y->size ? -1 : 1;
    if (x->first != y->first) return x->first < y->first ? -1 : 1;
    return x->node < y->node ? -1 : x->node > y->node;
}

/* Place ivs (sorted largest first) at offsets; returns the peak.  Each goes
 * in the smallest gap (the lowest of equal ones) left by the placed buffers
 * live at the same time, else above them all.  The placed buffers are kept
 * sorted by offset, so finding the gaps is one pass over them with no sort:
 * O(n) per buffer (the gaps depend only on the set, not on the order among
 * equal offsets). */
static int64_t pack(Iv *iv, int n)
{
    int64_t peak = 0;
    Iv **byoff = dl_xcalloc((size_t)n + 1, sizeof *byoff);
    int nplaced = 0;
    for (int i = 0; i < n; i++) {
        int64_t cur = 0, best = -1, bestgap = INT64_MAX;
        for (int j = 0; j < nplaced; j++) {
            const Iv *o = byoff[j];
            if (!(o->first <= iv[i].last && iv[i].first <= o->last)) continue;
            int64_t gap = o->off - cur;
            if (gap >= iv[i].size && gap < bestgap) { bestgap = gap; best = cur; }
            if (o->off + o->size > cur) cur = o->off + o->size;
        }
        iv[i].off = best >= 0 ? best : cur;
        if (iv[i].off + iv[i].size > peak) peak = iv[i].off + iv[i].size;
        int lo = 0, hi = nplaced;   /* insert after the placed offsets <= this one */
        while (lo < hi) {
            int mid = (lo + hi) / 2;
            if (byoff[mid]->off <= iv[i].off) lo = mid + 1; else hi = mid;
        }
        memmove(byoff + lo + 1, byoff + lo, (size_t)(nplaced - lo) * sizeof *byoff);
        byoff[lo] = &iv[i];
        nplaced++;
    }
    free(byoff);
    return peak;
}

int mem_plan(const Graph *g, const GSchedule *s, DlPool *pool, GMemPlan *out, DlDiag *diag)
{
    int errors = 0;
    out->buf = dl_pool_alloc(pool, (g->n + 1) * sizeof *out->buf);
    memset(out->arena_size, 0, sizeof out->arena_size);
    for (uint32_t i = 0; i < g->n; i++) out->buf[i] = (GBuffer){AR_ACT, -1, 0};
    unsigned char *mat = materialised(g, s);
    int *first = dl_xmalloc((g->n + 1) * sizeof *first), *last = dl_xmalloc((g->n + 1) * sizeof *last);
    live_ranges(g, s, first, last);
    int64_t *top = out->arena_size;

    /* fixed arenas, node order */
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *N = &g->nodes[i];
        int64_t ne = graph_numel(N);
        GArena a;
        switch (N->op) {
        case OP_PARAM: a = AR_PARAM; break;
        case OP_STATE: if (N->param != G_NONE) continue; a = AR_STATE; break;
        case OP_INPUT: case OP_SCALARS: a = AR_INPUT; break;
        case OP_CONST: a = AR_CONST; break;
        default: continue;
        }
        out->buf[i] = (GBuffer){a, top[a], ne};
        top[a] = align_up(top[a] + ne);
    }
    /* gradients at their parameter's offset, optimizer state in its slot's copy of the layout */
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *N = &g->nodes[i];
        if (N->param == G_NONE || !mat[i]) continue;
        const GBuffer *p = &out->buf[N->param];
        GArena a = N->op == OP_STATE ? AR_OPT : AR_GRAD;
        int slot = N->op == OP_STATE ? N->attr.ostate.slot : 0;
        uint32_t r = storage_root(g, i);
        if (p->arena != AR_PARAM || graph_numel(N) != p->numel || slot < 0 || slot >= MEM_OPT_SLOTS ||
            (r != i && graph_op_kind[g->nodes[r].op] == OPK_SOURCE)) {
            dl_error(diag, N->loc, "internal: gradient/optimizer state node %%%u (%s) does not match "
                     "its parameter %%%u", i, N->name ? N->name : "?", N->param);
            errors++;
            continue;
        }
        int64_t off = slot * top[AR_PARAM] + p->offset;
        out->buf[r] = (GBuffer){a, off, graph_numel(&g->nodes[r])};
        if (off + p->numel > top[a]) top[a] = align_up(off + p->numel);
    }
    /* activations */
    DL_VEC(Iv) iv = {0};
    for (uint32_t i = 0; i < g->n; i++) {
        if (!mat[i] || storage_root(g, i) != i || out->buf[i].offset >= 0) continue;
        if (graph_op_kind[g->nodes[i].op] == OPK_SOURCE) continue;
        if (first[i] < 0) {
            if (last[i] >= 0) {
                dl_error(diag, g->nodes[i].loc, "internal: node %%%u (%s) is read but no group "
                         "writes it", i, graph_op_name[g->nodes[i].op]);
                errors++;
            }
            continue;
        }
        Iv v = {i, first[i], last[i] < first[i] ? first[i] : last[i],
                align_up(graph_numel(&g->nodes[i])), 0};
        DL_PUSH(iv, v);
    }
    int *first_read = dl_xmalloc((g->n + 1) * sizeof *first_read); /* group, per storage root */
    for (uint32_t i = 0; i < g->n; i++) first_read[i] = -1;
    for (int t = s->n; t-- > 0;)
        for (int j = 0; j < s->groups[t].nins; j++) first_read[storage_root(g, s->groups[t].ins[j])] = t;
    for (size_t k = 0; k < iv.n; k++) {   /* reads before the write: a bad schedule */
        uint32_t i = iv.a[k].node;
        int t = first_read[i];
        if (t >= 0 && t < iv.a[k].first) {
            dl_error(diag, g->nodes[i].loc, "internal: group %s reads %%%u before %s "
                     "writes it", s->groups[t].name, i, s->groups[iv.a[k].first].name);
            errors++;
        }
    }
    free(first_read);
    if (iv.n) qsort(iv.a, iv.n, sizeof *iv.a, cmp_iv_size);
    top[AR_ACT] = pack(iv.a, (int)iv.n);
    for (size_t k = 0; k < iv.n; k++)
        out->buf[iv.a[k].node] = (GBuffer){AR_ACT, iv.a[k].off, graph_numel(&g->nodes[iv.a[k].node])};
    /* aliases: views and in-place writers */
    for (uint32_t i = 0; i < g->n; i++) {
        uint32_t r = storage_root(g, i);
        if (r == i || !mat[i] || out->buf[r].offset < 0) continue;
        out->buf[i] = (GBuffer){out->buf[r].arena, out->buf[r].offset, graph_numel(&g->nodes[i])};
    }
    free(iv.a);
    free(mat);
    free(first);
    free(last);
    return errors;
}

void mem_stats(const Graph *g, const GMemPlan *mp, MemStats *st)
{
    memset(st, 0, sizeof *st);
    st->act_peak = mp->arena_size[AR_ACT];
    for (uint32_t i = 0; i < g->n; i++)
        if (mp->buf[i].offset >= 0 && mp->buf[i].arena == AR_ACT && storage_root(g, i) == i) {
            st->act_total += align_up(mp->buf[i].numel);
            st->nbuffers++;
        }
}

static double mib(int64_t floats) { return (double)floats * 4.0 / (1024.0 * 1024.0); }

void mem_dump(const Graph *g, const GSchedule *s, const GMemPlan *mp, DlBuf *out)
{
    MemStats st;
    mem_stats(g, mp, &st);
    for (int a = 0; a < AR_COUNT; a++)
        dl_buf_printf(out, "arena %-6s %12" PRId64 " floats %9.2f MiB\n", graph_arena_name((GArena)a),
                      mp->arena_size[a], mib(mp->arena_size[a]));
    dl_buf_printf(out, "act: %d buffers, %" PRId64 " floats (%.2f MiB) without reuse, "
                  "peak %.2f MiB, reuse x%.2f\n", st.nbuffers, st.act_total, mib(st.act_total),
                  mib(st.act_peak), st.act_peak ? (double)st.act_total / (double)st.act_peak : 0.0);
    int *first = dl_xmalloc((g->n + 1) * sizeof *first), *last = dl_xmalloc((g->n + 1) * sizeof *last);
    live_ranges(g, s, first, last);
    for (uint32_t i = 0; i < g->n; i++) {
        const GBuffer *b = &mp->buf[i];
        if (b->offset < 0) continue;
        const GNode *N = &g->nodes[i];
        dl_buf_printf(out, "%%%-4u %-5s off %-10" PRId64 " numel %-9" PRId64 " [", i,
                      graph_arena_name(b->arena), b->offset, b->numel);
        for (int d = 0; d < N->ndim; d++)
            dl_buf_printf(out, "%s%" PRId64, d ? "," : "", N->shape[d]);
        dl_buf_printf(out, "] %s", graph_op_name[N->op]);
        uint32_t r = storage_root(g, i);
        if (r != i) dl_buf_printf(out, " alias %%%u", r);
        else if (b->arena == AR_ACT) dl_buf_printf(out, " live %d..%d", first[i], last[i]);
        dl_buf_printf(out, "  ; %s\n", N->name ? N->name : "");
    }
    free(first);
    free(last);
}

static int cmp_node_off(const void *a, const void *b, void *plan)
{
    const GMemPlan *mp = plan;
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    int64_t p = mp->buf[x].offset, q = mp->buf[y].offset;
    return p != q ? (p < q ? -1 : 1) : (x > y) - (x < y);
}

int mem_verify(const Graph *g, const GSchedule *s, const GMemPlan *mp, DlDiag *diag)
{
    int errors = 0;
#define BAD(...) do { if (errors++ < 10) dl_error(diag, (DlSrcLoc){0}, "internal: memory plan invalid: " __VA_ARGS__); } while (0)
    for (int k = 0; k < s->n; k++) {
        const GGroup *gr = &s->groups[k];
        for (int j = 0; j < gr->nins; j++)
            if (mp->buf[gr->ins[j]].offset < 0) BAD("group %s reads %%%u, which has no storage", gr->name, gr->ins[j]);
        for (int j = 0; j < gr->nouts; j++)
            if (mp->buf[gr->outs[j]].offset < 0) BAD("group %s writes %%%u, which has no storage", gr->name, gr->outs[j]);
    }
    DL_VEC(uint32_t) act = {0};
    for (uint32_t i = 0; i < g->n; i++) {
        const GBuffer *b = &mp->buf[i];
        const GNode *N = &g->nodes[i];
        if (b->offset < 0) continue;
        if (b->arena >= AR_COUNT || b->offset + b->numel > mp->arena_size[b->arena] || b->numel != graph_numel(N))
            BAD("%%%u at %s+%" PRId64 " (%" PRId64 " floats) is outside its arena", i, graph_arena_name(b->arena),
                b->offset, b->numel);
        if (N->param != G_NONE) {
            const GBuffer *p = &mp->buf[N->param];
            GArena want = N->op == OP_STATE ? AR_OPT : AR_GRAD;
            int64_t off = (N->op == OP_STATE ? N->attr.ostate.slot : 0) * mp->arena_size[AR_PARAM] + p->offset;
            if (b->arena != want || b->offset != off || b->numel != p->numel)
                BAD("%%%u is not at its parameter's place in the %s arena", i, graph_arena_name(want));
        }
        if (b->arena == AR_ACT && storage_root(g, i) == i) DL_PUSH(act, i);
    }
    int *first = dl_xmalloc((g->n + 1) * sizeof *first), *last = dl_xmalloc((g->n + 1) * sizeof *last);
    live_ranges(g, s, first, last);
    /* by offset: each buffer against those starting inside it (any two that
       overlap in memory are such a pair, one way round) */
    if (act.n) qsort_r(act.a, act.n, sizeof *act.a, cmp_node_off, (void *)mp);
    for (size_t a = 0; a < act.n; a++)
        for (size_t c = a + 1; c < act.n; c++) {
            uint32_t x = act.a[a], y = act.a[c];
            const GBuffer *p = &mp->buf[x], *q = &mp->buf[y];
            if (q->offset >= p->offset + p->numel) break;
            if (first[x] <= last[y] && first[y] <= last[x])
                BAD("%%%u and %%%u are live together (groups %d..%d, %d..%d) and overlap", x < y ? x : y,
                    x < y ? y : x, first[x < y ? x : y], last[x < y ? x : y], first[x < y ? y : x],
                    last[x < y ? y : x]);
        }
#undef BAD
    free(act.a);
    free(first);
    free(last);
    return errors;
}

/* ---- the total against the machine ------------------------------------- */

int64_t mem_total_bytes(const GMemPlan *const *mp, int n)
{
    int64_t floats = 0;
    for (int a = 0; a < AR_COUNT; a++) {
        int64_t m = 0;
        for (int p = 0; p < n; p++)
            if (mp[p]->arena_size[a] > m) m = mp[p]->arena_size[a];
        floats += m;
    }
    return floats * (int64_t)sizeof(float);
}

/* "1.5 GiB" */
static const char *human(char *buf, size_t cap, double bytes)
{
    static const char *const unit[] = {"bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    int u = 0;
    while (bytes >= 1024 && u < 6) bytes /= 1024, u++;
    if (u == 0) snprintf(buf, cap, "%.0f bytes", bytes);
    else snprintf(buf, cap, "%.1f %s", bytes, unit[u]);
    return buf;
}

typedef struct Big { int prog; uint32_t node; int64_t numel; } Big;

int mem_check_total(const Graph *const *g, const GMemPlan *const *mp, const char *const *names, int n,
                    DlDiag *diag)
{
    int64_t total = mem_total_bytes(mp, n), limit = 0;
    const char *env = getenv("DLDL_MEMORY_LIMIT");
    int from_env = 0;
    if (env && *env) {
        char *end;
        errno = 0;
        long long v = strtoll(env, &end, 10);
        if (!*end && !errno && v > 0 && env[0] != '+')
            limit = v, from_env = 1;
        else
            dl_warning(diag, (DlSrcLoc){0, 0, 0}, "DLDL_MEMORY_LIMIT='%s' is not a number of bytes; "
                       "checking the plan against this machine's memory instead", env);
    }
    if (!from_env) {
        long pages = sysconf(_SC_PHYS_PAGES), size = sysconf(_SC_PAGE_SIZE);
        if (pages <= 0 || size <= 0) return 0;   /* unknown: nothing to compare with */
        limit = (int64_t)pages * size;
    }
    if (total <= limit) return 0;
    char t[32], l[32];
    if (from_env)
        dl_warning(diag, (DlSrcLoc){0, 0, 0}, "the memory plan takes %s (%" PRId64 " bytes), more than "
                   "DLDL_MEMORY_LIMIT (%s); the largest buffers:", human(t, sizeof t, (double)total), total,
                   human(l, sizeof l, (double)limit));
    else
        dl_warning(diag, (DlSrcLoc){0, 0, 0}, "the memory plan takes %s (%" PRId64 " bytes), more than this "
                   "machine's %s of memory; the largest buffers:", human(t, sizeof t, (double)total), total,
                   human(l, sizeof l, (double)limit));
    /* The three largest buffers: the first program's, then the ACT and INPUT
     * buffers of the others that it has no buffer of that name for (the
     * arenas are shared: parameters, gradients, ... are the same). */
    Big top[3] = {{0, G_NONE, 0}, {0, G_NONE, 0}, {0, G_NONE, 0}};
    for (int p = 0; p < n; p++)
        for (uint32_t i = 0; i < g[p]->n; i++) {
            const GBuffer *b = &mp[p]->buf[i];
            if (b->offset < 0 || storage_root(g[p], i) != i) continue;
            if (b->numel <= top[2].numel) continue;
            if (p > 0 && (b->arena != AR_ACT && b->arena != AR_INPUT)) continue;
            uint32_t same = p > 0 && g[p]->nodes[i].name ? graph_find(g[0], g[p]->nodes[i].name) : G_NONE;
            if (same != G_NONE && mp[0]->buf[same].offset >= 0 && mp[0]->buf[same].arena == b->arena) continue;
            int k = 2;
            for (; k > 0 && b->numel > top[k - 1].numel; k--) top[k] = top[k - 1];
            top[k] = (Big){p, i, b->numel};
        }
    for (int k = 0; k < 3 && top[k].node != G_NONE; k++) {
        const GNode *N = &g[top[k].prog]->nodes[top[k].node];
        char sh[128], sz[32];
        size_t w = (size_t)snprintf(sh, sizeof sh, "[");
        for (int d = 0; d < N->ndim && w < sizeof sh; d++)
            w += (size_t)snprintf(sh + w, sizeof sh - w, "%s%" PRId64, d ? ", " : "", N->shape[d]);
        if (w < sizeof sh) snprintf(sh + w, sizeof sh - w, "]");
        dl_note(diag, N->loc, "'%s' %s (%s, %s arena): %s", N->name ? N->name : "?", sh, names[top[k].prog],
                graph_arena_name(mp[top[k].prog]->buf[top[k].node].arena),
                human(sz, sizeof sz, (double)top[k].numel * (double)sizeof(float)));
    }
    return 1;
}
