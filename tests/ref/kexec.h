/* kexec.h - run a graph's generated CPU kernels and compare each materialised
 * node with the reference interpreter (tests/ref/interp.h).  Used by
 * test_kernels_ref.c and test_loss_fixture.c; included as source like the
 * interpreter (see interp.h), after it.
 *
 * A graph goes through the real back end, fuse_graph -> mem_plan ->
 * cg_generate (or a PbProgram that already went through pb_compile_program);
 * the C module (cg_prelude_c() + body) is compiled with `cc -O2 -shared -fPIC`
 * into a temporary .so and dlopen'ed.  The schedule then runs group by group
 * over float arenas laid out as the memory plan says.  Library groups (conv,
 * matmul) run through runtime/cpu_lib.h (oneDNN, OpenBLAS) when it is linked
 * in, and are then compared like kernels; without it their outputs are the
 * interpreter's double results rounded to float ("library stand-ins", printed
 * as such), so each generated kernel is still checked on right inputs.
 * Generated kernels run in two chunks of their grid, [0, grid/2) and
 * [grid/2, grid), as two runtime threads would call them.
 *
 * After each group, every node in the group's outs is compared with the
 * interpreter: normalised error = max |float - double| / max |double| (or
 * max |float| when the reference is all zero), which must be <= tol.
 */
#ifndef DL_REF_KEXEC_H
#define DL_REF_KEXEC_H

#include "../../codegen/codegen.h"
#include "../../compiler/graph.h"

typedef void (*KxKernelFn)(float *const *b, int64_t g0, int64_t g1);

typedef struct KExec {
    const Graph *g;
    GSchedule sched;
    GMemPlan mem;
    CgModule mod;
    int own_mod;             /* mod generated here (freed by kx_free) */
    float *arena[AR_COUNT];
    void *so;
    KxKernelFn *fn;          /* per CgKernel */
    char *dir;               /* temp directory holding k.c and k.so */
    int verbose;             /* print one line per compared node */
} KExec;

/* Fuse, plan and generate g (allocations from pool), compile and load the
 * module.  Returns 0, or -1 with a message on stderr (diagnostics of the
 * back end, or the C compiler's output and the path of the source). */
int kx_build(KExec *x, const Graph *g, DlPool *pool);
/* The same from already compiled parts (e.g. plan_build.h's PbProgram). */
int kx_build_from(KExec *x, const Graph *g, const GSchedule *s, const GMemPlan *mp, const CgModule *m);

/* Round every source value in vals (INPUT, PARAM, STATE, SCALARS) to float in
 * place and copy it into its arena; CONST data goes into the const arena.
 * Call before ref_run so both sides see the same inputs. */
void kx_load_sources(KExec *x, double **vals);

/* Run the schedule, comparing after every group with vals (a completed
 * ref_run).  Returns the number of nodes whose normalised error exceeds tol;
 * *worst gets the largest normalised error seen (may be NULL). */
int kx_run_compare(KExec *x, double **vals, double tol, double *worst);

/* The float value of node i after kx_run_compare (NULL when it has no storage;
 * activation storage may have been reused by later nodes). */
const float *kx_value(const KExec *x, uint32_t i);

void kx_free(KExec *x);

#endif
