/* plan_check.c - a plan's consistency, checked by the writer before it writes
 * and by the reader after it decodes (plan.c): every kind a known row of
 * plan_enums.def, every index in range, targets, heads and metrics agreeing
 * with each other, every tensor inside its arena, every step's arguments,
 * kernels and collectives well formed (docs/plan-format.md, "What the
 * reader checks"). */
#include "plan.h"
#include "util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "plan_impl.h"

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

char *dl_plan_check(const DlPlan *p)
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

