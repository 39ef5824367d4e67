/* plan_dump.c - plan lookups and the human-readable dump (--emit=plan) of
 * common/plan.h; the format itself is in plan.c. */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan_impl.h"
#include "util.h"

/* ---- lookups ------------------------------------------------------------- */

const char *dl_plan_kv(const DlKV *kv, int n, const char *key)
{
    for (int i = 0; i < n; i++)
        if (kv[i].key && strcmp(kv[i].key, key) == 0) return kv[i].val;
    return NULL;
}

double dl_plan_hyper_num(const DlPlan *p, const char *key, double def)
{
    const char *v = dl_plan_kv(p->hyper, p->nhyper, key);
    if (!v || !*v) return def;
    char *end;
    errno = 0;
    double d = strtod(v, &end);
    return (*end || errno == ERANGE) ? def : d;
}

int dl_plan_find_program(const DlPlan *p, const char *name)
{
    for (int i = 0; i < p->nprograms; i++)
        if (p->programs[i].name && strcmp(p->programs[i].name, name) == 0) return i;
    return -1;
}

/* ---- dump ---------------------------------------------------------------- */

static void dump_kvs(FILE *o, const char *title, const DlKV *kv, int n)
{
    fprintf(o, "%s (%d)\n", title, n);
    for (int i = 0; i < n; i++) fprintf(o, "  %s = %s\n", kv[i].key, kv[i].val);
}

static void dump_shape(FILE *o, const int64_t *shape, int ndim)
{
    fputc('[', o);
    for (int d = 0; d < ndim; d++) fprintf(o, "%s%lld", d ? "," : "", (long long)shape[d]);
    fputc(']', o);
}

static void dump_bins(FILE *o, const DlPlanAxis *ax)
{
    int even = ax->nbins >= 3;
    double step = even ? (double)ax->bins[1] - ax->bins[0] : 0;
    for (int k = 0; even && k < ax->nbins; k++)
        if (ax->bins[k] != (float)(ax->bins[0] + k * step)) even = 0;
    fprintf(o, "%d bins ", ax->nbins);
    if (even) {
        fprintf(o, "%g..%g step %g", ax->bins[0], ax->bins[ax->nbins - 1], step);
        return;
    }
    fputc('[', o);
    for (int k = 0; k < ax->nbins; k++) fprintf(o, "%s%g", k ? " " : "", ax->bins[k]);
    fputc(']', o);
}

void dl_plan_dump(const DlPlan *p, FILE *o)
{
    fprintf(o, "plan version %d\n", p->version);
    fprintf(o, "source %s\n", p->source_name ? p->source_name : "-");
    dump_kvs(o, "hyperparameters", p->hyper, p->nhyper);
    dump_kvs(o, "data", p->data, p->ndata);
    fprintf(o, "labels %d\n", p->nlabels);
    fprintf(o, "targets (%d)\n", p->ntargets);
    for (int i = 0; i < p->ntargets; i++) {
        const DlPlanTarget *tg = &p->targets[i];
        fprintf(o, "  %s: %s (%d axes)", tg->name, dl_target_kind_name[tg->kind], tg->naxes);
        if (tg->dist >= 0) fprintf(o, ", distribution field %d", tg->dist);
        if (tg->has_ignore) fprintf(o, ", ignore %g", tg->ignore);
        if (tg->clamp) fprintf(o, ", labels clamped to the bins");
        if (tg->map_h) fprintf(o, ", per pixel of a %d x %d label map", tg->map_h, tg->map_w);
        fputc('\n', o);
        for (int a = 0; a < tg->naxes; a++) {
            const DlPlanAxis *ax = &tg->axes[a];
            fprintf(o, "    axis %d %s (%s): label %d, sigma ", a, ax->name, ax->unit, ax->label);
            if (ax->sigma_label >= 0) fprintf(o, "label %d, ", ax->sigma_label);
            else fprintf(o, "%g, ", ax->sigma);
            dump_bins(o, ax);
            fputc('\n', o);
        }
    }
    fprintf(o, "heads (%d)\n", p->nheads);
    for (int i = 0; i < p->nheads; i++) {
        fprintf(o, "  %s: %lld bins", p->heads[i].name, (long long)p->heads[i].K);
        if (p->heads[i].rows > 1) fprintf(o, ", %lld rows (pixels) per sample", (long long)p->heads[i].rows);
        fputc('\n', o);
    }
    fprintf(o, "metrics (%d)\n", p->nmetrics);
    for (int i = 0; i < p->nmetrics; i++) {
        const DlPlanMetric *m = &p->metrics[i];
        fprintf(o, "  %s: %s, head %s", m->name, dl_metric_kind_name[m->kind], p->heads[m->head].name);
        if (m->target >= 0) fprintf(o, ", target %s", p->targets[m->target].name);
        if (m->ncols) {
            fprintf(o, ", labels");
            for (int k = 0; k < m->ncols; k++) fprintf(o, " %d", m->cols[k]);
        }
        if (m->kind == DL_MET_ACCURACY) fprintf(o, ", tolerance %g", m->tolerance);
        if (m->kind == DL_MET_EPS_ERROR) {
            if (m->sigma_col >= 0) fprintf(o, ", sigma label %d", m->sigma_col);
            else fprintf(o, ", sigma %g", m->sigma);
        }
        fputc('\n', o);
    }
    fprintf(o, "arenas (floats)\n");
    for (int i = 0; i < DL_AR_COUNT; i++) fprintf(o, "  %-5s %lld\n", dl_arena_name[i], (long long)p->arena_size[i]);
    fprintf(o, "tensors (%d)\n", p->ntensors);
    for (int i = 0; i < p->ntensors; i++) {
        const DlPlanTensor *t = &p->tensors[i];
        int role = t->role >= 0 && t->role < NROLES ? t->role : 0;
        int ar = t->arena >= 0 && t->arena < DL_AR_COUNT ? t->arena : 0;
        fprintf(o, "  %%%d %s %s %s+%lld ", i, t->name ? t->name : "-", role_name[role], dl_arena_name[ar],
                (long long)t->offset);
        dump_shape(o, t->shape, t->ndim);
        if (t->role == DL_ROLE_PARAM)
            fprintf(o, " init %s fan_in %d", t->init >= 0 && t->init < NINITS ? init_name[t->init] : "?", t->fan_in);
        if (t->role == DL_ROLE_TARGET) fprintf(o, " of %s", p->targets[t->ref].name);
        if (t->ncols) {
            fprintf(o, " labels");
            for (int k = 0; k < t->ncols; k++) fprintf(o, " %d", t->cols[k]);
        }
        if (t->data) {
            fprintf(o, " data");
            for (int64_t k = 0; k < t->numel && k < 4; k++) fprintf(o, " %g", t->data[k]);
            if (t->numel > 4) fprintf(o, " ... xxh3 %016llx",
                                      (unsigned long long)dl_hash64(t->data, (size_t)t->numel * sizeof(float)));
        }
        fputc('\n', o);
    }
    fprintf(o, "kernels (%d)\n", p->nkernels);
    for (int i = 0; i < p->nkernels; i++)
        fprintf(o, "  k%d %s (%d buffers, %zu bytes of kernel IR%s)\n", i, p->kernels[i].name, p->kernels[i].nargs,
                p->kernels[i].kir_len, p->kernels[i].kir_gpu_len ? ", and a GPU schedule" : "");
    fprintf(o, "programs (%d)\n", p->nprograms);
    for (int g = 0; g < p->nprograms; g++) {
        const DlPlanProgram *pr = &p->programs[g];
        fprintf(o, "  %s: batch %d, %d steps\n", pr->name, pr->batch, pr->nsteps);
        for (int j = 0; j < pr->nsteps; j++) {
            const DlPlanStep *st = &pr->steps[j];
            fprintf(o, "    %d %s", j, st->kind >= 0 && st->kind < NSTEPKINDS ? step_name[st->kind] : "?");
            if (st->kind == DL_STEP_KERNEL) {
                int ok = st->kernel >= 0 && st->kernel < p->nkernels;
                fprintf(o, " %s grid %lld", ok ? p->kernels[st->kernel].name : "?", (long long)st->grid);
            }
            fprintf(o, " (");
            for (int k = 0; k < st->nargs; k++) fprintf(o, "%s%%%d", k ? " " : "", (int)st->args[k]);
            fputc(')', o);
            int last = DL_STEP_MAX_I;
            while (last > 0 && st->i[last - 1] == 0) last--;
            if (last) {
                fprintf(o, " i=[");
                for (int k = 0; k < last; k++) fprintf(o, "%s%lld", k ? "," : "", (long long)st->i[k]);
                fputc(']', o);
            }
            fprintf(o, "  ; %s\n", st->label ? st->label : "-");
        }
    }
    fprintf(o, "outputs (%d)\n", p->noutputs);
    for (int i = 0; i < p->noutputs; i++) {
        const DlPlanOutput *op = &p->outputs[i];
        int okp = op->program >= 0 && op->program < p->nprograms;
        fprintf(o, "  %s %s '%s' %%%d", okp ? p->programs[op->program].name : "?",
                op->kind >= 0 && op->kind < NOUTKINDS ? out_name[op->kind] : "?", op->name, op->tensor);
        if (op->head >= 0 && op->head < p->nheads) fprintf(o, " head %s", p->heads[op->head].name);
        if (op->target >= 0 && op->target < p->ntargets) fprintf(o, " target %s", p->targets[op->target].name);
        fputc('\n', o);
    }
}
