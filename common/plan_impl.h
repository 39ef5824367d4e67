/* plan_impl.h - shared by common/plan.c (encoding, reading), plan_check.c
 * (consistency) and common/plan_dump.c (lookups, the --emit=plan text): the names of the
 * plan's enumerations.  Not part of the plan API (common/plan.h). */
#ifndef DL_PLAN_IMPL_H
#define DL_PLAN_IMPL_H

#include "plan.h"

#define NROLES DL_ROLE_COUNT
#define NSTEPKINDS DL_STEP_COUNT
#define NINITS DL_INIT_COUNT
#define NOUTKINDS DL_OUT_COUNT
/* Names indexed by DL_AR_*, DlStepKind and init (roles, targets, metrics and
 * outputs: dl_*_name in plan.h). */
#define role_name dl_role_name
extern const char *const step_name[NSTEPKINDS];
extern const char *const init_name[NINITS];
#define out_name dl_output_kind_name

/* Whether p is consistent (plan_check.c): NULL, or what is wrong, e.g.
 * "tensor 1 ('c1.bn.weight'): offset 39 + numel 2 exceeds arena 'param' (40
 * floats)" (malloc'd). */
char *dl_plan_check(const DlPlan *p);

#endif
