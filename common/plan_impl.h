/* plan_impl.h - shared by common/plan.c (encoding, checks, reading) and
 * common/plan_dump.c (lookups, the --emit=plan text): the names of the
 * plan's enumerations.  Not part of the plan API (common/plan.h). */
#ifndef DL_PLAN_IMPL_H
#define DL_PLAN_IMPL_H

#include "plan.h"

#define NROLES 10     /* DlRole */
#define NSTEPKINDS 5  /* DlStepKind */
#define NINITS 4      /* DlPlanTensor.init */
#define NOUTKINDS 4   /* DlPlanOutput.kind */
/* Names indexed by DL_AR_*, DlRole, DlStepKind, init and output kind. */
extern const char *const arena_name[DL_AR_COUNT];
extern const char *const role_name[NROLES];
extern const char *const step_name[NSTEPKINDS];
extern const char *const init_name[NINITS];
extern const char *const out_name[NOUTKINDS];

#endif
