/* plan.c - the .plan file: write, read and verify, free (lookups and the dump: plan_dump.c).
 *
 * Layout (docs/plan-format.md): a 32-byte header (magic "DLDLPLAN", u32
 * version, u32 flags = 0, u64 payload length, u64 XXH3-64 of the payload),
 * then the payload: sections of (u32 tag, u64 length, bytes).  Every integer
 * is little-endian whatever the host; floats are their IEEE-754 bit pattern.
 * Strings are a u32 length and the bytes (no NUL inside; length 0xFFFFFFFF
 * stands for a NULL pointer); arrays are a u32 count and the items.
 *
 * The reader trusts nothing: every length is checked against the bytes that
 * remain, every count against what those bytes can hold, and the decoded plan
 * goes through dl_plan_check (plan_check.c: every index in range, every
 * tensor inside its arena), the same check the writer runs before it writes.
 */
#include "plan.h"
#include "util.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "plan_impl.h"

#define HEADER_SIZE 32
#define NULL_STR 0xFFFFFFFFu

/* Section tags: four ASCII letters, so that a hex dump shows them. */
#define TAG(a, b, c, d) ((uint32_t)(a) | (uint32_t)(b) << 8 | (uint32_t)(c) << 16 | (uint32_t)(d) << 24)
enum {
    S_META, S_HYPER, S_DATA, S_TARGET, S_METRICS, S_ARENAS, S_TENSORS,
    S_KERNELS, S_PROGRAMS, S_OUTPUTS, S_HEADS, S_COUNT
};
static const uint32_t sect_tag[S_COUNT] = {
    TAG('M', 'E', 'T', 'A'), TAG('H', 'Y', 'P', 'R'), TAG('D', 'A', 'T', 'A'),
    TAG('T', 'R', 'G', 'T'), TAG('M', 'T', 'R', 'C'), TAG('A', 'R', 'N', 'A'),
    TAG('T', 'N', 'S', 'R'), TAG('K', 'R', 'N', 'L'), TAG('P', 'R', 'O', 'G'), TAG('O', 'U', 'T', 'S'),
    TAG('H', 'E', 'A', 'D'),
};
static const char *const sect_name[S_COUNT] = {
    "meta", "hyperparameters", "data", "targets", "metrics", "arenas", "tensors",
    "kernels", "programs", "outputs", "heads",
};

/* The names of the plan's enumerations (plan_impl.h): checks and dumps. */
const char *const dl_arena_name[DL_AR_COUNT] = {
#define DL_ARENA(e, n) n,
#include "plan_enums.def"
#undef DL_ARENA
};
const char *const dl_role_name[DL_ROLE_COUNT] = {
#define DL_ROLE(e, n) n,
#include "plan_enums.def"
#undef DL_ROLE
};
const char *const dl_target_kind_name[DL_TGT_COUNT] = {
#define DL_TARGET(e, n) n,
#include "plan_enums.def"
#undef DL_TARGET
};
const char *const dl_metric_kind_name[DL_MET_COUNT] = {
#define DL_METRIC(e, n) n,
#include "plan_enums.def"
#undef DL_METRIC
};
const char *const dl_output_kind_name[DL_OUT_COUNT] = {
#define DL_OUTPUT(e, n) n,
#include "plan_enums.def"
#undef DL_OUTPUT
};
const char *const step_name[NSTEPKINDS] = {
#define DL_STEP(e, n) n,
#include "plan_enums.def"
#undef DL_STEP
};
const char *const init_name[NINITS] = {
#define DL_INIT(e, n) n,
#include "plan_enums.def"
#undef DL_INIT
};

int dl_enum_lookup(const char *const *names, int n, const char *s)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(names[i], s) == 0) return i;
    return -1;
}

/* ---- encoding ------------------------------------------------------------ */

static void put_u32(DlBuf *b, uint32_t v) { dl_buf_put_le(b, v, 4); }
static void put_u64(DlBuf *b, uint64_t v) { dl_buf_put_le(b, v, 8); }
static void put_i32(DlBuf *b, int v) { put_u32(b, (uint32_t)(int32_t)v); }
static void put_i64(DlBuf *b, int64_t v) { put_u64(b, (uint64_t)v); }
static void put_f32(DlBuf *b, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    put_u32(b, u);
}
static void put_str(DlBuf *b, const char *s)
{
    if (!s) {
        put_u32(b, NULL_STR);
        return;
    }
    size_t n = strlen(s);
    put_u32(b, (uint32_t)n);
    dl_buf_put(b, s, n);
}
static void patch_u64(DlBuf *b, size_t at, uint64_t v)
{
    for (int i = 0; i < 8; i++) b->s[at + i] = (char)(v >> (8 * i));
}

/* Start a section: tag and a length patched by sect_end. Returns where the body starts. */
static size_t sect_begin(DlBuf *b, int s)
{
    put_u32(b, sect_tag[s]);
    put_u64(b, 0);
    return b->n;
}
static void sect_end(DlBuf *b, size_t body) { patch_u64(b, body - 8, b->n - body); }

static void put_kvs(DlBuf *b, const DlKV *kv, int n)
{
    put_u32(b, (uint32_t)n);
    for (int i = 0; i < n; i++) {
        put_str(b, kv[i].key);
        put_str(b, kv[i].val);
    }
}

static void encode(const DlPlan *p, DlBuf *b)
{
    size_t s;
    s = sect_begin(b, S_META);
    put_str(b, p->source_name);
    put_i32(b, p->nlabels);
    sect_end(b, s);

    s = sect_begin(b, S_HYPER);
    put_kvs(b, p->hyper, p->nhyper);
    sect_end(b, s);
    s = sect_begin(b, S_DATA);
    put_kvs(b, p->data, p->ndata);
    sect_end(b, s);

    s = sect_begin(b, S_TARGET);
    put_u32(b, (uint32_t)p->ntargets);
    for (int i = 0; i < p->ntargets; i++) {
        const DlPlanTarget *t = &p->targets[i];
        put_str(b, t->name);
        put_i32(b, t->kind);
        put_i32(b, t->dist);
        put_i32(b, t->has_ignore);
        put_f32(b, t->ignore);
        put_i32(b, t->clamp);
        put_f32(b, t->difficult);
        put_i32(b, t->map_h);
        put_i32(b, t->map_w);
        put_u32(b, (uint32_t)t->naxes);
        for (int a = 0; a < t->naxes; a++) {
            const DlPlanAxis *ax = &t->axes[a];
            put_str(b, ax->name);
            put_str(b, ax->unit);
            put_u32(b, (uint32_t)ax->nbins);
            for (int k = 0; k < ax->nbins; k++) put_f32(b, ax->bins[k]);
            put_f32(b, ax->sigma);
            put_i32(b, ax->label);
            put_i32(b, ax->sigma_label);
        }
    }
    sect_end(b, s);

    s = sect_begin(b, S_HEADS);
    put_u32(b, (uint32_t)p->nheads);
    for (int i = 0; i < p->nheads; i++) {
        put_str(b, p->heads[i].name);
        put_i64(b, p->heads[i].K);
        put_i64(b, p->heads[i].rows);
    }
    sect_end(b, s);

    s = sect_begin(b, S_METRICS);
    put_u32(b, (uint32_t)p->nmetrics);
    for (int i = 0; i < p->nmetrics; i++) {
        const DlPlanMetric *m = &p->metrics[i];
        put_str(b, m->name);
        put_i32(b, m->kind);
        put_i32(b, m->head);
        put_i32(b, m->target);
        put_u32(b, (uint32_t)m->ncols);
        for (int k = 0; k < m->ncols; k++) put_i32(b, m->cols[k]);
        put_f32(b, m->tolerance);
        put_f32(b, m->sigma);
        put_i32(b, m->sigma_col);
    }
    sect_end(b, s);

    s = sect_begin(b, S_ARENAS);
    put_u32(b, DL_AR_COUNT);
    for (int i = 0; i < DL_AR_COUNT; i++) put_i64(b, p->arena_size[i]);
    sect_end(b, s);

    s = sect_begin(b, S_TENSORS);
    put_u32(b, (uint32_t)p->ntensors);
    for (int i = 0; i < p->ntensors; i++) {
        const DlPlanTensor *t = &p->tensors[i];
        put_str(b, t->name);
        put_i32(b, t->role);
        put_i32(b, t->arena);
        put_i64(b, t->offset);
        put_i64(b, t->numel);
        put_i32(b, t->ndim);
        for (int d = 0; d < 4; d++) put_i64(b, t->shape[d]);
        put_i32(b, t->init);
        put_i32(b, t->fan_in);
        put_i32(b, t->ref);
        put_u32(b, (uint32_t)t->ncols);
        for (int k = 0; k < t->ncols; k++) put_i32(b, t->cols[k]);
        put_u32(b, t->data != NULL);
        if (t->data)
            for (int64_t k = 0; k < t->numel; k++) put_f32(b, t->data[k]);
    }
    sect_end(b, s);

    s = sect_begin(b, S_KERNELS);
    put_u32(b, (uint32_t)p->nkernels);
    for (int i = 0; i < p->nkernels; i++) {
        put_str(b, p->kernels[i].name);
        put_i32(b, p->kernels[i].nargs);
        put_u32(b, (uint32_t)p->kernels[i].kir_len);
        if (p->kernels[i].kir_len) dl_buf_put(b, (const char *)p->kernels[i].kir, p->kernels[i].kir_len);
        put_u32(b, (uint32_t)p->kernels[i].kir_gpu_len);
        if (p->kernels[i].kir_gpu_len) dl_buf_put(b, (const char *)p->kernels[i].kir_gpu, p->kernels[i].kir_gpu_len);
    }
    sect_end(b, s);

    s = sect_begin(b, S_PROGRAMS);
    put_u32(b, (uint32_t)p->nprograms);
    for (int i = 0; i < p->nprograms; i++) {
        const DlPlanProgram *g = &p->programs[i];
        put_str(b, g->name);
        put_i32(b, g->batch);
        put_u32(b, (uint32_t)g->nsteps);
        for (int j = 0; j < g->nsteps; j++) {
            const DlPlanStep *st = &g->steps[j];
            put_i32(b, st->kind);
            put_i32(b, st->kernel);
            put_i64(b, st->grid);
            put_i32(b, st->nargs);
            for (int k = 0; k < st->nargs; k++) put_i32(b, st->args[k]);
            for (int k = 0; k < DL_STEP_MAX_I; k++) put_i64(b, st->i[k]);
            put_str(b, st->label);
        }
    }
    sect_end(b, s);

    s = sect_begin(b, S_OUTPUTS);
    put_u32(b, (uint32_t)p->noutputs);
    for (int i = 0; i < p->noutputs; i++) {
        put_i32(b, p->outputs[i].program);
        put_i32(b, p->outputs[i].kind);
        put_str(b, p->outputs[i].name);
        put_i32(b, p->outputs[i].tensor);
        put_i32(b, p->outputs[i].head);
        put_i32(b, p->outputs[i].target);
    }
    sect_end(b, s);
}

/* ---- writing ------------------------------------------------------------- */

int dl_plan_write(const DlPlan *plan, const char *path, char **err)
{
    char *why = dl_plan_check(plan);
    if (why) {
        *err = dl_xasprintf("%s: internal error: refusing to write an inconsistent plan: %s", path, why);
        free(why);
        return -1;
    }
    DlBuf b = {0};
    dl_buf_put(&b, DL_PLAN_MAGIC, 8);
    put_u32(&b, DL_PLAN_VERSION);
    put_u32(&b, 0);
    put_u64(&b, 0); /* payload length, patched below */
    put_u64(&b, 0); /* checksum */
    encode(plan, &b);
    size_t n = b.n - HEADER_SIZE;
    patch_u64(&b, 16, n);
    patch_u64(&b, 24, dl_hash64(b.s + HEADER_SIZE, n));
    int rc = dl_write_file_atomic(path, b.s, b.n);
    if (rc != 0) *err = dl_xasprintf("%s: cannot write: %s", path, strerror(errno));
    dl_buf_free(&b);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

/* A cursor over one section; the first error sticks. */
typedef struct Rd {
    const unsigned char *p;
    size_t n, at;
    const char *path, *sect;
    char *err;
} Rd;

static int rd_need(Rd *r, size_t k)
{
    if (r->err) return 0;
    if (r->n - r->at < k) {
        r->err = dl_xasprintf("%s: truncated in section '%s'", r->path, r->sect);
        return 0;
    }
    return 1;
}
static uint64_t get_le(Rd *r, int k)
{
    if (!rd_need(r, (size_t)k)) return 0;
    uint64_t v = 0;
    for (int i = 0; i < k; i++) v |= (uint64_t)r->p[r->at + i] << (8 * i);
    r->at += (size_t)k;
    return v;
}
static uint32_t get_u32(Rd *r) { return (uint32_t)get_le(r, 4); }
static int get_i32(Rd *r) { return (int)(int32_t)get_u32(r); }
static int64_t get_i64(Rd *r) { return (int64_t)get_le(r, 8); }
static float get_f32(Rd *r)
{
    uint32_t u = get_u32(r);
    float f;
    memcpy(&f, &u, 4);
    return f;
}
/* A string, or NULL for the null marker (refused unless nullable). */
static char *get_str(Rd *r, int nullable)
{
    uint32_t n = get_u32(r);
    if (r->err) return NULL;
    if (n == NULL_STR) {
        if (!nullable) r->err = dl_xasprintf("%s: section '%s': missing string (file damaged?)", r->path, r->sect);
        return NULL;
    }
    if (!rd_need(r, n)) return NULL;
    const char *s = (const char *)r->p + r->at;
    if (memchr(s, 0, n)) {
        r->err = dl_xasprintf("%s: section '%s': string with a NUL byte inside (file damaged?)", r->path, r->sect);
        return NULL;
    }
    r->at += n;
    return dl_xstrndup(s, n);
}
/* A count of items of at least min_size bytes each, bounded by what remains. */
static int get_count(Rd *r, size_t min_size, int limit)
{
    uint32_t n = get_u32(r);
    if (r->err) return 0;
    if (n > (uint32_t)INT32_MAX || (limit >= 0 && n > (uint32_t)limit) || (uint64_t)n * min_size > r->n - r->at) {
        r->err = dl_xasprintf("%s: truncated in section '%s'", r->path, r->sect);
        return 0;
    }
    return (int)n;
}

static void get_kvs(Rd *r, DlKV **kv, int *n)
{
    int c = get_count(r, 8, -1);
    *kv = dl_xcalloc((size_t)c, sizeof **kv);
    *n = c;
    for (int i = 0; i < c && !r->err; i++) {
        (*kv)[i].key = get_str(r, 0);
        (*kv)[i].val = get_str(r, 0);
    }
}

static void decode_section(Rd *r, int s, DlPlan *p)
{
    switch (s) {
    case S_META:
        p->source_name = get_str(r, 1);
        p->nlabels = get_i32(r);
        break;
    case S_HYPER: get_kvs(r, &p->hyper, &p->nhyper); break;
    case S_DATA: get_kvs(r, &p->data, &p->ndata); break;
    case S_TARGET: {
        int c = get_count(r, 24, DL_PLAN_MAX_TARGETS);
        p->targets = dl_xcalloc((size_t)c, sizeof *p->targets);
        p->ntargets = c;
        for (int i = 0; i < c && !r->err; i++) {
            DlPlanTarget *t = &p->targets[i];
            t->name = get_str(r, 0);
            t->kind = get_i32(r);
            t->dist = get_i32(r);
            t->has_ignore = get_i32(r);
            t->ignore = get_f32(r);
            t->clamp = get_i32(r);
            t->difficult = get_f32(r);
            t->map_h = get_i32(r);
            t->map_w = get_i32(r);
            int na = get_count(r, 24, DL_MAX_AXES);
            t->naxes = na;
            for (int a = 0; a < na && !r->err; a++) {
                DlPlanAxis *ax = &t->axes[a];
                ax->name = get_str(r, 0);
                ax->unit = get_str(r, 0);
                ax->nbins = get_count(r, 4, DL_PLAN_MAX_BINS);
                ax->bins = dl_xcalloc((size_t)ax->nbins, sizeof(float));
                for (int k = 0; k < ax->nbins && !r->err; k++) ax->bins[k] = get_f32(r);
                ax->sigma = get_f32(r);
                ax->label = get_i32(r);
                ax->sigma_label = get_i32(r);
            }
        }
        break;
    }
    case S_HEADS: {
        int c = get_count(r, 12, DL_PLAN_MAX_TARGETS);
        p->heads = dl_xcalloc((size_t)c, sizeof *p->heads);
        p->nheads = c;
        for (int i = 0; i < c && !r->err; i++) {
            p->heads[i].name = get_str(r, 0);
            p->heads[i].K = get_i64(r);
            p->heads[i].rows = get_i64(r);
        }
        break;
    }
    case S_METRICS: {
        int c = get_count(r, 32, -1);
        p->metrics = dl_xcalloc((size_t)c, sizeof *p->metrics);
        p->nmetrics = c;
        for (int i = 0; i < c && !r->err; i++) {
            DlPlanMetric *m = &p->metrics[i];
            m->name = get_str(r, 0);
            m->kind = get_i32(r);
            m->head = get_i32(r);
            m->target = get_i32(r);
            m->ncols = get_count(r, 4, DL_MAX_AXES);
            for (int k = 0; k < m->ncols; k++) m->cols[k] = get_i32(r);
            m->tolerance = get_f32(r);
            m->sigma = get_f32(r);
            m->sigma_col = get_i32(r);
        }
        break;
    }
    case S_ARENAS: {
        uint32_t c = get_u32(r);
        if (!r->err && c != DL_AR_COUNT)
            r->err = dl_xasprintf("%s: section 'arenas': %u arenas, expected %d (file damaged?)", r->path, c, DL_AR_COUNT);
        for (int i = 0; i < DL_AR_COUNT && !r->err; i++) p->arena_size[i] = get_i64(r);
        break;
    }
    case S_TENSORS: {
        int c = get_count(r, 84, -1);
        p->tensors = dl_xcalloc((size_t)c, sizeof *p->tensors);
        p->ntensors = c;
        for (int i = 0; i < c && !r->err; i++) {
            DlPlanTensor *t = &p->tensors[i];
            t->name = get_str(r, 1);
            t->role = get_i32(r);
            t->arena = get_i32(r);
            t->offset = get_i64(r);
            t->numel = get_i64(r);
            t->ndim = get_i32(r);
            for (int d = 0; d < 4; d++) t->shape[d] = get_i64(r);
            t->init = get_i32(r);
            t->fan_in = get_i32(r);
            t->ref = get_i32(r);
            t->ncols = get_count(r, 4, DL_MAX_AXES);
            for (int k = 0; k < t->ncols; k++) t->cols[k] = get_i32(r);
            uint32_t has = get_u32(r);
            if (r->err || !has) continue;
            if (has != 1 || t->numel < 0 || (uint64_t)t->numel > (r->n - r->at) / 4) {
                r->err = dl_xasprintf("%s: truncated in section '%s'", r->path, r->sect);
                break;
            }
            t->data = dl_xmalloc((size_t)t->numel * sizeof(float));
            for (int64_t k = 0; k < t->numel; k++) t->data[k] = get_f32(r);
        }
        break;
    }
    case S_KERNELS: {
        int c = get_count(r, 16, -1);
        p->kernels = dl_xcalloc((size_t)c, sizeof *p->kernels);
        p->nkernels = c;
        for (int i = 0; i < c && !r->err; i++) {
            DlPlanKernel *k = &p->kernels[i];
            k->name = get_str(r, 0);
            k->nargs = get_i32(r);
            uint32_t n = get_u32(r);
            if (r->err) break;
            if (n > DL_PLAN_MAX_KIR || n > r->n - r->at) {
                r->err = dl_xasprintf("%s: kernel %d: %u bytes of kernel IR, more than %s (at most %u)", r->path, i,
                                      n, n > DL_PLAN_MAX_KIR ? "allowed" : "the section holds", DL_PLAN_MAX_KIR);
                break;
            }
            k->kir = dl_xmalloc(n ? n : 1);
            memcpy(k->kir, r->p + r->at, n);
            k->kir_len = n;
            r->at += n;
            n = get_u32(r); /* the GPU schedule's IR, 0 bytes when there is none */
            if (r->err) break;
            if (n > DL_PLAN_MAX_KIR || n > r->n - r->at) {
                r->err = dl_xasprintf("%s: kernel %d: %u bytes of GPU kernel IR, more than %s (at most %u)", r->path,
                                      i, n, n > DL_PLAN_MAX_KIR ? "allowed" : "the section holds", DL_PLAN_MAX_KIR);
                break;
            }
            if (n) {
                k->kir_gpu = dl_xmalloc(n);
                memcpy(k->kir_gpu, r->p + r->at, n);
                k->kir_gpu_len = n;
                r->at += n;
            }
        }
        break;
    }
    case S_PROGRAMS: {
        int c = get_count(r, 12, -1);
        p->programs = dl_xcalloc((size_t)c, sizeof *p->programs);
        p->nprograms = c;
        for (int i = 0; i < c && !r->err; i++) {
            DlPlanProgram *g = &p->programs[i];
            g->name = get_str(r, 0);
            g->batch = get_i32(r);
            int ns = get_count(r, 120, -1);
            g->steps = dl_xcalloc((size_t)ns, sizeof *g->steps);
            g->nsteps = ns;
            for (int j = 0; j < ns && !r->err; j++) {
                DlPlanStep *st = &g->steps[j];
                st->kind = get_i32(r);
                st->kernel = get_i32(r);
                st->grid = get_i64(r);
                st->nargs = get_count(r, 4, DL_STEP_MAX_ARGS);
                for (int k = 0; k < st->nargs; k++) st->args[k] = get_i32(r);
                for (int k = 0; k < DL_STEP_MAX_I; k++) st->i[k] = get_i64(r);
                st->label = get_str(r, 1);
            }
        }
        break;
    }
    case S_OUTPUTS: {
        int c = get_count(r, 24, -1);
        p->outputs = dl_xcalloc((size_t)c, sizeof *p->outputs);
        p->noutputs = c;
        for (int i = 0; i < c && !r->err; i++) {
            p->outputs[i].program = get_i32(r);
            p->outputs[i].kind = get_i32(r);
            p->outputs[i].name = get_str(r, 0);
            p->outputs[i].tensor = get_i32(r);
            p->outputs[i].head = get_i32(r);
            p->outputs[i].target = get_i32(r);
        }
        break;
    }
    }
}

static uint64_t le64(const unsigned char *b)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}
static uint32_t le32(const unsigned char *b)
{
    return (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
}

/* Decode and verify a payload already checked against its checksum. */
static DlPlan *decode(const unsigned char *buf, size_t n, const char *path, char **err)
{
    DlPlan *p = dl_xcalloc(1, sizeof *p);
    p->version = DL_PLAN_VERSION;
    int seen[S_COUNT] = {0};
    size_t at = 0;
    char *e = NULL;
    while (at < n && !e) {
        if (n - at < 12) {
            e = dl_xasprintf("%s: truncated section header at payload byte %zu", path, at);
            break;
        }
        uint32_t tag = le32(buf + at);
        uint64_t len = le64(buf + at + 4);
        at += 12;
        int s = 0;
        while (s < S_COUNT && sect_tag[s] != tag) s++;
        const char *sn = s < S_COUNT ? sect_name[s] : "unknown";
        if (len > n - at) {
            e = dl_xasprintf("%s: truncated in section '%s'", path, sn);
            break;
        }
        if (s == S_COUNT) { /* a section a later writer added within this version: skip */
            at += (size_t)len;
            continue;
        }
        if (seen[s]++) {
            e = dl_xasprintf("%s: section '%s' appears twice (file damaged?)", path, sn);
            break;
        }
        Rd r = {buf + at, (size_t)len, 0, path, sn, NULL};
        decode_section(&r, s, p);
        if (!r.err && r.at != r.n)
            r.err = dl_xasprintf("%s: section '%s' has %zu bytes past its end (file damaged?)", path, sn, r.n - r.at);
        e = r.err;
        at += (size_t)len;
    }
    for (int s = 0; s < S_COUNT && !e; s++)
        if (!seen[s]) e = dl_xasprintf("%s: section '%s' is missing; re-run dldlc to regenerate it", path, sect_name[s]);
    if (!e) {
        char *why = dl_plan_check(p);
        if (why) {
            e = dl_xasprintf("%s: inconsistent plan: %s; re-run dldlc to regenerate it", path, why);
            free(why);
        }
    }
    if (e) {
        *err = e;
        dl_plan_free(p);
        return NULL;
    }
    return p;
}

DlPlan *dl_plan_read(const char *path, char **err)
{
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, DL_LIMIT_PLAN, &b, &why) != 0) {
        *err = dl_xasprintf("%s: cannot read the plan: %s", path, why);
        free(why);
        dl_buf_free(&b);
        return NULL;
    }
    const unsigned char *u = (const unsigned char *)b.s;
    DlPlan *p = NULL;
    if (b.n < 8 || memcmp(u, DL_PLAN_MAGIC, 8) != 0)
        *err = dl_xasprintf("%s: not a dldl plan (bad magic)", path);
    else if (b.n < HEADER_SIZE)
        *err = dl_xasprintf("%s: truncated header (%zu bytes); re-run dldlc to regenerate it", path, b.n);
    else if (le32(u + 8) != DL_PLAN_VERSION)
        *err = dl_xasprintf("%s: plan format version %u, this dldlrun reads version %d; re-run dldlc to regenerate it",
                            path, le32(u + 8), DL_PLAN_VERSION);
    else if (le32(u + 12) != 0)
        *err = dl_xasprintf("%s: unknown plan flags 0x%x; re-run dldlc to regenerate it", path, le32(u + 12));
    else if (le64(u + 16) != b.n - HEADER_SIZE)
        *err = dl_xasprintf("%s: %s (payload of %llu bytes, file holds %zu); re-run dldlc to regenerate it", path,
                            le64(u + 16) > b.n - HEADER_SIZE ? "truncated" : "bytes past the end",
                            (unsigned long long)le64(u + 16), b.n - HEADER_SIZE);
    else if (le64(u + 24) != dl_hash64(u + HEADER_SIZE, b.n - HEADER_SIZE))
        *err = dl_xasprintf("%s: checksum mismatch (file damaged?); re-run dldlc to regenerate it", path);
    else
        p = decode(u + HEADER_SIZE, b.n - HEADER_SIZE, path, err);
    dl_buf_free(&b);
    return p;
}

void dl_plan_free(DlPlan *p)
{
    if (!p) return;
    free(p->source_name);
    for (int i = 0; i < p->nhyper; i++) free(p->hyper[i].key), free(p->hyper[i].val);
    free(p->hyper);
    for (int i = 0; i < p->ndata; i++) free(p->data[i].key), free(p->data[i].val);
    free(p->data);
    for (int i = 0; i < p->ntargets; i++) {
        free(p->targets[i].name);
        for (int a = 0; a < p->targets[i].naxes; a++) {
            free(p->targets[i].axes[a].name);
            free(p->targets[i].axes[a].unit);
            free(p->targets[i].axes[a].bins);
        }
    }
    free(p->targets);
    for (int i = 0; i < p->nheads; i++) free(p->heads[i].name);
    free(p->heads);
    for (int i = 0; i < p->nmetrics; i++) free(p->metrics[i].name);
    free(p->metrics);
    for (int i = 0; i < p->ntensors; i++) free(p->tensors[i].name), free(p->tensors[i].data);
    free(p->tensors);
    for (int i = 0; i < p->nkernels; i++)
        free(p->kernels[i].name), free(p->kernels[i].kir), free(p->kernels[i].kir_gpu);
    free(p->kernels);
    for (int i = 0; i < p->nprograms; i++) {
        for (int j = 0; j < p->programs[i].nsteps; j++) free(p->programs[i].steps[j].label);
        free(p->programs[i].steps);
        free(p->programs[i].name);
    }
    free(p->programs);
    for (int i = 0; i < p->noutputs; i++) free(p->outputs[i].name);
    free(p->outputs);
    free(p);
}
