/* schedule.c - learning-rate schedules (schedule.h). */
#include "schedule.h"

#include <math.h>
#include <string.h>

#include "../common/util.h"

int dl_schedule_init(DlSchedule *s, const DlPlan *p, int epochs, int64_t steps_per_epoch, char **err)
{
    memset(s, 0, sizeof *s);
    const char *name = dl_plan_kv(p->hyper, p->nhyper, "schedule");
    s->lr = dl_plan_hyper_num(p, "lr", 0.01);
    const char *opt = dl_plan_kv(p->hyper, p->nhyper, "optimizer");
    int adam = opt && (!strcmp(opt, "adam") || !strcmp(opt, "adamw"));
    s->momentum = adam ? dl_plan_hyper_num(p, "beta1", 0.9) : dl_plan_hyper_num(p, "momentum", 0.0);
    s->steps_per_epoch = steps_per_epoch > 0 ? steps_per_epoch : 1;
    s->total_steps = (int64_t)(epochs > 0 ? epochs : 1) * s->steps_per_epoch;
    s->step_every = dl_plan_hyper_num(p, "step_every", 30);
    s->step_gamma = dl_plan_hyper_num(p, "step_gamma", 0.1);
    s->max_lr = dl_plan_hyper_num(p, "max_lr", s->lr);
    s->pct_start = dl_plan_hyper_num(p, "pct_start", 0.3);
    s->div_factor = dl_plan_hyper_num(p, "div_factor", 25.0);
    s->final_div_factor = dl_plan_hyper_num(p, "final_div_factor", 1e4);
    s->cycle_momentum = dl_plan_hyper_num(p, "cycle_momentum", 1.0) != 0;
    s->base_momentum = dl_plan_hyper_num(p, "base_momentum", 0.85);
    s->max_momentum = dl_plan_hyper_num(p, "max_momentum", 0.95);
    if (!name || !*name || !strcmp(name, "constant") || !strcmp(name, "none"))
        s->kind = DL_SCHED_CONSTANT;
    else if (!strcmp(name, "step"))
        s->kind = DL_SCHED_STEP;
    else if (!strcmp(name, "cosine"))
        s->kind = DL_SCHED_COSINE;
    else if (!strcmp(name, "onecycle"))
        s->kind = DL_SCHED_ONECYCLE;
    else {
        *err = dl_xasprintf("schedule '%s' is not known (constant, step, cosine, onecycle)", name);
        return -1;
    }
    if (s->kind == DL_SCHED_STEP && !(s->step_every >= 1)) {
        *err = dl_xasprintf("schedule step: step_every must be at least 1 epoch (got %g)", s->step_every);
        return -1;
    }
    if (s->kind == DL_SCHED_ONECYCLE &&
        (!(s->pct_start > 0 && s->pct_start < 1) || !(s->div_factor > 0) || !(s->final_div_factor > 0))) {
        *err = dl_xasprintf("schedule onecycle: need 0 < pct_start < 1 and positive div factors");
        return -1;
    }
    return 0;
}

/* PyTorch's _annealing_cos: from start (pct 0) to end (pct 1) along half a cosine. */
static double anneal_cos(double start, double end, double pct)
{
    return end + (start - end) / 2.0 * (cos(M_PI * pct) + 1.0);
}

void dl_schedule_at(const DlSchedule *s, int64_t step, double *lr, double *momentum)
{
    if (step < 0) step = 0;
    if (step >= s->total_steps) step = s->total_steps - 1;
    *lr = s->lr;
    *momentum = s->momentum;
    switch (s->kind) {
    case DL_SCHED_CONSTANT: break;
    case DL_SCHED_STEP: {
        int64_t epoch = step / s->steps_per_epoch;
        *lr = s->lr * pow(s->step_gamma, floor((double)epoch / s->step_every));
        break;
    }
    case DL_SCHED_COSINE:
        *lr = s->lr * (1.0 + cos(M_PI * (double)step / (double)s->total_steps)) / 2.0;
        break;
    case DL_SCHED_ONECYCLE: {
        /* torch.optim.lr_scheduler.OneCycleLR.get_lr, two phases:
         *   end_step 0: pct_start * total - 1   lr initial -> max, momentum max -> base
         *   end_step 1: total - 1               lr max -> min,     momentum base -> max */
        double initial = s->max_lr / s->div_factor, min_lr = initial / s->final_div_factor;
        double end0 = s->pct_start * (double)s->total_steps - 1.0, end1 = (double)s->total_steps - 1.0;
        double x = (double)step;
        if (x <= end0) {
            double pct = end0 > 0 ? x / end0 : 1.0; /* PyTorch divides by zero here */
            *lr = anneal_cos(initial, s->max_lr, pct);
            if (s->cycle_momentum) *momentum = anneal_cos(s->max_momentum, s->base_momentum, pct);
        } else {
            double pct = (x - end0) / (end1 - end0);
            *lr = anneal_cos(s->max_lr, min_lr, pct);
            if (s->cycle_momentum) *momentum = anneal_cos(s->base_momentum, s->max_momentum, pct);
        }
        break;
    }
    }
}
