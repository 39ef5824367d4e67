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
 * goes through plan_check (every index in range, every tensor inside its
 * arena), the same check the writer runs before it writes.
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

/* ---- consistency: shared by writer and reader ---------------------------- */

static const char *tname(const DlPlan *p, int i)
{
    return p->tensors[i].name ? p->tensors[i].name : "(unnamed)";
}

static int64_t target_bins(const DlPlanTarget *t)
{
    int64_t K = 1;
    for (int a = 0; a < t->naxes; a++) K *= t->axes[a].nbins;
    return K;
}

int64_t dl_plan_target_rows(const DlPlanTarget *t)
{
    return t->kind == DL_TGT_LABEL_MAP ? (int64_t)t->map_h * t->map_w : 1;
}
#define target_rows dl_plan_target_rows

static int col_ok(const DlPlan *p, int c, int optional) { return (optional && c == -1) || (c >= 0 && c < p->nlabels); }

static char *target_check(const DlPlan *p, const DlPlanTarget *t)
{
    if (!t->name) return dl_xasprintf("no name");
    if (t->kind < 0 || t->kind >= DL_TGT_COUNT) return dl_xasprintf("unknown kind %d", t->kind);
    if (t->naxes < 1 || t->naxes > DL_MAX_AXES) return dl_xasprintf("%d axes (1 to %d)", t->naxes, DL_MAX_AXES);
    if ((t->kind == DL_TGT_GAUSSIAN1D || t->kind == DL_TGT_GIVEN || t->kind == DL_TGT_MULTILABEL) && t->naxes != 1)
        return dl_xasprintf("a %s target has one axis", dl_target_kind_name[t->kind]);
    if (t->kind == DL_TGT_GAUSSIAN2D && t->naxes != 2) return dl_xasprintf("a gaussian2d target has two axes");
    int reads_field = t->kind == DL_TGT_GIVEN || t->kind == DL_TGT_MULTILABEL || t->kind == DL_TGT_LABEL_MAP;
    if (t->kind == DL_TGT_LABEL_MAP ? !(t->map_h >= 1 && t->map_h <= DL_PLAN_MAX_MAP && t->map_w >= 1 &&
                                        t->map_w <= DL_PLAN_MAX_MAP && t->naxes == 1 &&
                                        (int64_t)t->map_h * t->map_w <= DL_PLAN_MAX_ROWS)
                                    : t->map_h != 0 || t->map_w != 0)
        return dl_xasprintf("bad label map size %d x %d", t->map_h, t->map_w);
    if (reads_field ? t->dist < 0 : t->dist != -1) return dl_xasprintf("bad distribution field %d", t->dist);
    if (t->kind == DL_TGT_MULTILABEL ? !(t->difficult >= 0 && t->difficult <= 1) : t->difficult != 0)
        return dl_xasprintf("bad difficult weight %g", (double)t->difficult);
    if (!isfinite(t->ignore)) return dl_xasprintf("bad ignore value");
    if (t->clamp != 0 && (t->clamp != 1 || reads_field)) return dl_xasprintf("bad clamp flag %d", t->clamp);
    int64_t K = 1;
    for (int a = 0; a < t->naxes; a++) {
        const DlPlanAxis *ax = &t->axes[a];
        if (!ax->name || !ax->unit) return dl_xasprintf("axis %d has no name", a);
        if (ax->nbins < 1 || !ax->bins) return dl_xasprintf("axis %d has no bins", a);
        for (int k = 0; k < ax->nbins; k++) {
            if (!isfinite(ax->bins[k]) || (k > 0 && !(ax->bins[k] > ax->bins[k - 1])))
                return dl_xasprintf("axis %d: bins are not finite and ascending at bin %d", a, k);
        }
        if (!isfinite(ax->sigma) || ax->sigma < 0) return dl_xasprintf("axis %d: bad sigma", a);
        if (!col_ok(p, ax->label, reads_field) || (reads_field && ax->label != -1))
            return dl_xasprintf("axis %d: label column %d out of range (plan has %d labels)", a, ax->label, p->nlabels);
        if (!col_ok(p, ax->sigma_label, 1)) return dl_xasprintf("axis %d: bad sigma column %d", a, ax->sigma_label);
        K *= ax->nbins;
        if (K > DL_PLAN_MAX_BINS) return dl_xasprintf("more than %d bins", DL_PLAN_MAX_BINS);
    }
    return NULL;
}

static char *metric_check(const DlPlan *p, const DlPlanMetric *m)
{
    if (!m->name) return dl_xasprintf("no name");
    if (m->kind < 0 || m->kind >= DL_MET_COUNT) return dl_xasprintf("unknown kind %d", m->kind);
    if (m->head < 0 || m->head >= p->nheads) return dl_xasprintf("head %d out of range", m->head);
    int needs_target = m->kind != DL_MET_TOP1;
    if (needs_target ? (m->target < 0 || m->target >= p->ntargets) : m->target != -1)
        return dl_xasprintf("bad target %d", m->target);
    if (needs_target && target_bins(&p->targets[m->target]) != p->heads[m->head].K)
        return dl_xasprintf("target '%s' and head '%s' differ in bins", p->targets[m->target].name, p->heads[m->head].name);
    int per_pixel = m->kind == DL_MET_MIOU || m->kind == DL_MET_PIXEL_ACCURACY;
    if (per_pixel && p->heads[m->head].K > 255) return dl_xasprintf("a per-pixel metric of more than 255 classes");
    if (per_pixel ? p->targets[m->target].kind != DL_TGT_LABEL_MAP : p->heads[m->head].rows != 1)
        return dl_xasprintf(per_pixel ? "a per-pixel metric of a target that is not a label map"
                                      : "a per-sample metric of a per-pixel head");
    if (needs_target && target_rows(&p->targets[m->target]) != p->heads[m->head].rows)
        return dl_xasprintf("target '%s' and head '%s' differ in rows per sample", p->targets[m->target].name,
                            p->heads[m->head].name);
    if (m->ncols < 0 || m->ncols > DL_MAX_AXES) return dl_xasprintf("%d label columns", m->ncols);
    for (int k = 0; k < m->ncols; k++)
        if (!col_ok(p, m->cols[k], 0)) return dl_xasprintf("label column %d out of range", m->cols[k]);
    int want = m->kind == DL_MET_MAE || m->kind == DL_MET_EPS_ERROR ? p->targets[m->target].naxes
             : m->kind == DL_MET_TOP1 ? 1 : 0;
    if (m->ncols != want) return dl_xasprintf("%d label columns, expected %d", m->ncols, want);
    if (m->kind == DL_MET_ACCURACY)
        for (int a = 0; a < p->targets[m->target].naxes; a++)
            if (p->targets[m->target].axes[a].label < 0) return dl_xasprintf("accuracy needs a target with labels");
    if (!isfinite(m->tolerance) || m->tolerance < 0 || !isfinite(m->sigma) || m->sigma < 0 || !col_ok(p, m->sigma_col, 1))
        return dl_xasprintf("bad tolerance or sigma");
    if (m->kind == DL_MET_EPS_ERROR && m->sigma_col < 0 && !(m->sigma > 0))
        return dl_xasprintf("eps_error needs sigma > 0");
    if (m->kind == DL_MET_MEAN_AP && p->targets[m->target].kind != DL_TGT_MULTILABEL)
        return dl_xasprintf("mean_ap needs a multilabel target");
    return NULL;
}

/* The first inconsistency of p as a malloc'd phrase, or NULL. */
/* A kernel's name becomes a C symbol in the rendered module: an identifier
 * that cannot clash with the prelude's dl_ / DL_ names or reserved ones. */
static int kernel_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128 || (s[0] >= '0' && s[0] <= '9') || s[0] == '_' || strncasecmp(s, "dl", 2) == 0) return 0;
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') ||
              s[i] == '_'))
            return 0;
    return 1;
}

/* A collective step (ALLREDUCE_START/WAIT): its request slot in range; a
 * START sums two tensors of one size or one region inside its arena. */
static char *comm_step_check(const DlPlan *p, const DlPlanStep *st)
{
    if (st->kind != DL_STEP_ALLREDUCE_START && st->kind != DL_STEP_ALLREDUCE_WAIT) return NULL;
    const int64_t *g = st->i;
    if (g[3] < 0 || g[3] >= DL_COMM_SLOTS)
        return dl_xasprintf("request slot %lld out of range [0, %d)", (long long)g[3], DL_COMM_SLOTS);
    if (st->kind == DL_STEP_ALLREDUCE_WAIT) return st->nargs == 0 ? NULL : dl_xstrdup("a wait takes no tensors");
    if (st->nargs == 2) {
        const DlPlanTensor *x = &p->tensors[st->args[0]], *y = &p->tensors[st->args[1]];
        return x->numel == y->numel && x->numel > 0 ? NULL
               : dl_xasprintf("all-reduce of tensors of %lld and %lld floats", (long long)x->numel,
                              (long long)y->numel);
    }
    if (st->nargs != 0) return dl_xasprintf("an all-reduce takes 2 tensors or a region, not %d tensors", st->nargs);
    if (g[0] < 0 || g[0] >= DL_AR_COUNT) return dl_xasprintf("all-reduce region in arena %lld", (long long)g[0]);
    int64_t size = p->arena_size[g[0]];
    if (g[1] < 0 || g[2] <= 0 || g[1] > size || g[2] > size - g[1])
        return dl_xasprintf("all-reduce region [%lld, %lld + %lld) outside arena '%s' (%lld floats)", (long long)g[1],
                            (long long)g[1], (long long)g[2], dl_arena_name[g[0]], (long long)size);
    return NULL;
}

static char *plan_check(const DlPlan *p)
{
    if (p->nlabels < 0 || p->nhyper < 0 || p->ndata < 0 || p->nmetrics < 0 || p->ntensors < 0 ||
        p->nkernels < 0 || p->nprograms < 0 || p->noutputs < 0)
        return dl_xasprintf("negative count");
    for (int i = 0; i < p->nhyper; i++)
        if (!p->hyper[i].key || !p->hyper[i].val) return dl_xasprintf("hyperparameter %d has no key or value", i);
    for (int i = 0; i < p->ndata; i++)
        if (!p->data[i].key || !p->data[i].val) return dl_xasprintf("data binding %d has no key or value", i);
    if (p->ntargets < 0 || p->nheads < 0) return dl_xasprintf("negative count");
    for (int i = 0; i < p->ntargets; i++) {
        char *why = target_check(p, &p->targets[i]);
        if (why) {
            char *e = dl_xasprintf("target %d ('%s'): %s", i, p->targets[i].name ? p->targets[i].name : "?", why);
            free(why);
            return e;
        }
    }
    for (int i = 0; i < p->nheads; i++)
        if (!p->heads[i].name || p->heads[i].K < 1 || p->heads[i].K > DL_PLAN_MAX_BINS || p->heads[i].rows < 1 ||
            p->heads[i].rows > DL_PLAN_MAX_ROWS)
            return dl_xasprintf("head %d: no name or bad width", i);
    for (int i = 0; i < p->nmetrics; i++) {
        char *why = metric_check(p, &p->metrics[i]);
        if (why) {
            char *e = dl_xasprintf("metric %d ('%s'): %s", i, p->metrics[i].name ? p->metrics[i].name : "?", why);
            free(why);
            return e;
        }
    }
    for (int i = 0; i < DL_AR_COUNT; i++)
        if (p->arena_size[i] < 0) return dl_xasprintf("arena '%s' has negative size", dl_arena_name[i]);
    for (int i = 0; i < p->ntensors; i++) {
        const DlPlanTensor *t = &p->tensors[i];
        if (t->role < 0 || t->role >= NROLES) return dl_xasprintf("tensor %d ('%s'): bad role %d", i, tname(p, i), t->role);
        if (t->arena < 0 || t->arena >= DL_AR_COUNT)
            return dl_xasprintf("tensor %d ('%s'): bad arena %d", i, tname(p, i), t->arena);
        if (t->ndim < 0 || t->ndim > 4) return dl_xasprintf("tensor %d ('%s'): %d dimensions", i, tname(p, i), t->ndim);
        int64_t prod = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0 || (t->shape[d] > 0 && prod > INT64_MAX / t->shape[d]))
                return dl_xasprintf("tensor %d ('%s'): bad shape", i, tname(p, i));
            prod *= t->shape[d];
        }
        if (t->numel != prod)
            return dl_xasprintf("tensor %d ('%s'): numel %lld is not the product of its shape", i, tname(p, i),
                                (long long)t->numel);
        int64_t size = p->arena_size[t->arena];
        if (t->offset < 0 || t->offset > size || t->numel > size - t->offset)
            return dl_xasprintf("tensor %d ('%s'): offset %lld + numel %lld exceeds arena '%s' (%lld floats)", i,
                                tname(p, i), (long long)t->offset, (long long)t->numel, dl_arena_name[t->arena],
                                (long long)size);
        if ((t->role == DL_ROLE_PARAM || t->role == DL_ROLE_STATE || t->role == DL_ROLE_MOMENTUM) && !t->name)
            return dl_xasprintf("tensor %d: a %s tensor has no name", i, role_name[t->role]);
        if (t->role == DL_ROLE_CONST && !t->data) return dl_xasprintf("tensor %d ('%s'): constant without data", i, tname(p, i));
        if (t->role == DL_ROLE_PARAM && (t->init < 0 || t->init >= DL_INIT_COUNT || t->fan_in < 0))
            return dl_xasprintf("tensor %d ('%s'): unknown initialisation %d", i, tname(p, i), t->init);
        if (t->role == DL_ROLE_TARGET &&
            (t->ref < 0 || t->ref >= p->ntargets || t->ndim != 2 || t->shape[1] != target_bins(&p->targets[t->ref])))
            return dl_xasprintf("tensor %d ('%s'): a target input must be [B,K] of a target of the plan", i, tname(p, i));
        if (t->ncols < 0 || t->ncols > DL_MAX_AXES)
            return dl_xasprintf("tensor %d ('%s'): %d label columns", i, tname(p, i), t->ncols);
        for (int k = 0; k < t->ncols; k++)
            if (t->cols[k] < 0 || t->cols[k] >= p->nlabels)
                return dl_xasprintf("tensor %d ('%s'): label column %d out of range", i, tname(p, i), t->cols[k]);
        if (t->role == DL_ROLE_SCALARS && t->numel != 4)
            return dl_xasprintf("tensor %d ('%s'): the scalars input holds 4 values (lr, momentum, step, seed)", i,
                                tname(p, i));
        if (t->role == DL_ROLE_LABEL && (t->ncols < 1 || t->ndim != 2 || t->shape[1] != t->ncols))
            return dl_xasprintf("tensor %d ('%s'): a label input must be [B,ncols]", i, tname(p, i));
    }
    for (int i = 0; i < p->nkernels; i++) {
        if (!p->kernels[i].name) return dl_xasprintf("kernel %d has no name", i);
        if (!kernel_name_ok(p->kernels[i].name))
            return dl_xasprintf("kernel %d: name '%.40s' is not a C identifier of at most 128 characters "
                                "(letters, digits, '_', not starting with a digit, 'dl' or '_')", i, p->kernels[i].name);
        for (int j = 0; j < i; j++)
            if (strcmp(p->kernels[j].name, p->kernels[i].name) == 0)
                return dl_xasprintf("kernel %d: name '%s' used twice", i, p->kernels[i].name);
        if (p->kernels[i].nargs < 0 || p->kernels[i].nargs > DL_STEP_MAX_ARGS)
            return dl_xasprintf("kernel %d ('%s'): %d buffers (at most %d)", i, p->kernels[i].name,
                                p->kernels[i].nargs, DL_STEP_MAX_ARGS);
    }
    for (int g = 0; g < p->nprograms; g++) {
        const DlPlanProgram *pr = &p->programs[g];
        const char *pn = pr->name ? pr->name : "?";
        if (!pr->name) return dl_xasprintf("program %d has no name", g);
        if (pr->nsteps < 0 || pr->batch < 1) return dl_xasprintf("program '%s': bad step count or batch", pn);
        for (int j = 0; j < pr->nsteps; j++) {
            const DlPlanStep *st = &pr->steps[j];
            const char *lb = st->label ? st->label : "-";
            if (st->kind < 0 || st->kind >= NSTEPKINDS)
                return dl_xasprintf("program '%s' step %d (%s): bad step kind %d", pn, j, lb, st->kind);
            if (st->nargs < 0 || st->nargs > DL_STEP_MAX_ARGS)
                return dl_xasprintf("program '%s' step %d (%s): %d arguments (at most %d)", pn, j, lb, st->nargs,
                                    DL_STEP_MAX_ARGS);
            if (st->kind == DL_STEP_KERNEL) {
                if (st->kernel < 0 || st->kernel >= p->nkernels)
                    return dl_xasprintf("program '%s' step %d (%s): kernel index %d out of range (plan has %d kernels)",
                                        pn, j, lb, st->kernel, p->nkernels);
                if (st->nargs != p->kernels[st->kernel].nargs)
                    return dl_xasprintf("program '%s' step %d (%s): %d arguments, kernel '%s' takes %d", pn, j, lb,
                                        st->nargs, p->kernels[st->kernel].name, p->kernels[st->kernel].nargs);
                if (st->grid < 0) return dl_xasprintf("program '%s' step %d (%s): negative grid", pn, j, lb);
            }
            for (int k = 0; k < st->nargs; k++)
                if (st->args[k] < 0 || st->args[k] >= p->ntensors)
                    return dl_xasprintf("program '%s' step %d (%s): tensor index %d out of range (plan has %d tensors)",
                                        pn, j, lb, (int)st->args[k], p->ntensors);
            char *why = comm_step_check(p, st);
            if (why) {
                char *e = dl_xasprintf("program '%s' step %d (%s): %s", pn, j, lb, why);
                free(why);
                return e;
            }
        }
    }
    for (int i = 0; i < p->noutputs; i++) {
        const DlPlanOutput *o = &p->outputs[i];
        const char *on = o->name ? o->name : "?";
        if (!o->name) return dl_xasprintf("output %d has no name", i);
        if (o->program < 0 || o->program >= p->nprograms)
            return dl_xasprintf("output '%s': program index %d out of range (plan has %d programs)", on, o->program,
                                p->nprograms);
        if (o->kind < 0 || o->kind >= NOUTKINDS) return dl_xasprintf("output '%s': bad kind %d", on, o->kind);
        if (o->tensor < 0 || o->tensor >= p->ntensors)
            return dl_xasprintf("output '%s': tensor index %d out of range (plan has %d tensors)", on, o->tensor,
                                p->ntensors);
        int needs_head = o->kind == DL_OUT_PROBS || o->kind == DL_OUT_EXPECT;
        if (needs_head ? (o->head < 0 || o->head >= p->nheads) : o->head != -1)
            return dl_xasprintf("output '%s': bad head %d", on, o->head);
        if (o->kind == DL_OUT_EXPECT ? (o->target < 0 || o->target >= p->ntargets) : o->target != -1)
            return dl_xasprintf("output '%s': bad target %d", on, o->target);
        const DlPlanTensor *t = &p->tensors[o->tensor];
        int64_t B = p->programs[o->program].batch;
        int64_t want = o->kind == DL_OUT_PROBS ? p->heads[o->head].K
                     : o->kind == DL_OUT_EXPECT ? p->targets[o->target].naxes : 1;
        int64_t rows = o->kind == DL_OUT_PROBS || o->kind == DL_OUT_EXPECT ? B * p->heads[o->head].rows : 0;
        int ok = o->kind == DL_OUT_PROBS || o->kind == DL_OUT_EXPECT
                     ? t->ndim == 2 && t->shape[0] == rows && t->shape[1] == want
                     : t->numel == 1;
        if (!ok) return dl_xasprintf("output '%s': tensor '%s' has the wrong shape", on, tname(p, o->tensor));
    }
    return NULL;
}

/* ---- writing ------------------------------------------------------------- */

int dl_plan_write(const DlPlan *plan, const char *path, char **err)
{
    char *why = plan_check(plan);
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
        char *why = plan_check(p);
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
