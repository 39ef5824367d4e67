/* plan_build.h - from compiled programs to the .plan (common/plan.h).
 *
 * A program is one graph taken through the back end:
 *   fuse_graph -> fuse_verify -> mem_plan -> mem_verify -> cg_generate(prefix "<name>_")
 * (pb_compile_program); plan_build then turns the programs and the lowering's
 * metadata into one DlPlan:
 *  - tensors: one per node with storage in each program; PARAM, STATE and
 *    momentum tensors are shared between programs by name (their offsets must
 *    agree); in-place writers (optimizer updates, BN_RUNNING) are their target's tensor;
 *    CONST tensors with equal data are shared, others get their own place in
 *    the const arena; a kernel argument that is a whole arena region (the
 *    optimizer's) becomes a TEMP tensor named "<arena>[lo:hi]";
 *  - arena sizes: the maximum over programs (programs never run at once);
 *  - kernels and sources: every program's kernels in one C and one CUDA module
 *    (prelude + the bodies of the programs, in order);
 *  - programs: one step per group in schedule order; library groups become
 *    DL_STEP_CONV_* / DL_STEP_MATMUL with the geometry plan.h documents, the
 *    others DL_STEP_KERNEL with the kernel's grid and buffers; label = group name;
 *  - outputs: each graph's GOutputs.
 */
#ifndef DL_PLAN_BUILD_H
#define DL_PLAN_BUILD_H

#include "../codegen/codegen.h"
#include "../common/plan.h"
#include "graph.h"
#include "lower.h"

typedef struct PbProgram {
    const char *name;   /* "train" or "eval" */
    Graph *g;           /* the program's graph (train: after autodiff) */
    GSchedule sched;
    GMemPlan mem;
    CgModule mod;       /* malloc'd parts: free with pb_program_free */
    int done;           /* which stages ran: 1 fused, 2 planned, 3 generated */
} PbProgram;

/* Run the back end on p->g (verified by the caller) up to and including stage
 * (1 fuse + fuse_verify, 2 memory plan + mem_verify, 3 code generation).  Returns the number of
 * errors reported to diag (internal errors: a malformed graph or a group the
 * code generator cannot handle). */
int pb_compile_program(PbProgram *p, int stage, DlPool *pool, DlDiag *diag);
void pb_program_free(PbProgram *p);

/* Fill *out (zeroed first; every part malloc'd: pass a dl_xcalloc'd DlPlan and
 * release it with dl_plan_free, also after an error) from the lowering's
 * metadata and programs that went through stage 3.
 * Returns 0, or the number of internal errors reported to diag (a kernel
 * argument without storage, shared tensors whose layouts disagree). */
int plan_build(const LowerResult *lr, const PbProgram *progs, int nprogs, DlPlan *out, DlDiag *diag);

#endif
