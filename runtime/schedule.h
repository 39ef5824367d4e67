/* schedule.h - learning-rate (and momentum) schedules, stepped per batch.
 *
 * The value used at optimizer step s (0-based, counted over the whole run)
 * is a pure function of s, so a resumed run continues the same curve.
 * "momentum" is what the update kernel reads from scalars[1]: SGD's momentum
 * (hyper momentum), or Adam's and AdamW's beta1 (hyper beta1, when hyper
 * optimizer is adam or adamw), which onecycle cycles as PyTorch's OneCycleLR
 * cycles betas[0].
 * Kinds (hyperparameter "schedule"):
 *   constant  lr = hyper lr, momentum = hyper momentum (or beta1)
 *   step      lr = lr * step_gamma ^ floor(epoch / step_every), epoch = s / steps_per_epoch
 *             (PyTorch StepLR(step_size = every, gamma) stepped once per epoch, so
 *             epoch e of the run, from 0, uses lr * gamma^floor(e / every));
 *             defaults every 30, gamma 0.1
 *   cosine    lr = lr * (1 + cos(pi s / total)) / 2 (CosineAnnealingLR, eta_min 0,
 *             T_max = total steps)
 *   onecycle  PyTorch's OneCycleLR (Smith & Topin 2017) with its defaults:
 *             anneal_strategy 'cos', pct_start 0.3, div_factor 25,
 *             final_div_factor 1e4, three_phase False, cycle_momentum True,
 *             base_momentum 0.85, max_momentum 0.95; max_lr defaults to lr.
 *             The momentum cycles inversely to the lr and replaces the
 *             optimizer's momentum.  total = epochs * steps_per_epoch.
 */
#ifndef DL_SCHEDULE_H
#define DL_SCHEDULE_H

#include <stdint.h>
#include "../common/plan.h"

typedef enum DlSchedKind { DL_SCHED_CONSTANT, DL_SCHED_STEP, DL_SCHED_COSINE, DL_SCHED_ONECYCLE } DlSchedKind;

typedef struct DlSchedule {
    DlSchedKind kind;
    double lr, momentum;               /* the optimizer's (momentum: SGD's momentum or Adam's beta1) */
    int64_t total_steps, steps_per_epoch;
    double step_every, step_gamma;     /* step */
    double max_lr, pct_start, div_factor, final_div_factor; /* onecycle */
    int cycle_momentum;
    double base_momentum, max_momentum;
} DlSchedule;

/* Fill s from the plan's hyperparameters (schedule, lr, momentum, max_lr, ...).
 * Returns 0, or -1 with *err for an unknown schedule name or a bad value
 * ("schedule 'onecycel' is not known (constant, step, cosine, onecycle)"). */
int dl_schedule_init(DlSchedule *s, const DlPlan *p, int epochs, int64_t steps_per_epoch, char **err);

/* The learning rate and momentum used by optimizer step `step` (0-based).
 * Steps past the end hold the last value. */
void dl_schedule_at(const DlSchedule *s, int64_t step, double *lr, double *momentum);

#endif
