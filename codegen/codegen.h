/* codegen.h - from fused groups to kernel source, through one kernel IR.
 *
 * Every non-library group of a GSchedule becomes one kernel.  codegen builds
 * its kernel IR (codegen/kir.h: loops, loads, stores, ALU ops, constants),
 * then renders the IR once as a kernel body; the body is shared by the C and
 * the CUDA module, which differ only in their preludes (codegen/prelude.c,
 * cg_prelude_c and cg_prelude_cuda):
 *
 *   DL_KERNEL(k3_bn_apply_relu) {             // C:    void k(float *const *dl_b, int64_t dl_g0, int64_t dl_g1)
 *       DL_FOR_GID(g) { ... dl_b[0][...] ... }//      for (g = dl_g0; g < dl_g1; g++)
 *   }                                         // CUDA: extern "C" __global__, grid-stride loop over [g0,g1)
 *
 * The kernel ABI (what runtime/ relies on): buffer i of the kernel is
 * dl_b[i], a float* to the start of that tensor; the work items are
 * [0, grid); the CPU runtime calls k(bufs, g0, g1) on disjoint chunks from
 * several threads, so a work item writes only its own outputs.
 *
 * One IR, two schedules: for the groups that need it (channel reductions),
 * codegen builds a second, GPU-shaped kernel IR beside the CPU one (one CUDA
 * block per work item, its threads sharing the work through shared memory
 * and barriers; KirKernel.block > 0).  The C module never sees it; the CUDA
 * module renders it in place of the flat kernel (docs/kir.md).
 */
#ifndef DL_CODEGEN_H
#define DL_CODEGEN_H

#include "../compiler/graph.h"
#include "kir.h"

/* One buffer a kernel takes: a graph node's storage, or (node == G_NONE) a
 * whole region of an arena (the optimizer kernel takes all parameters). */
typedef struct CgArg {
    uint32_t node;
    GArena arena;
    int64_t offset, numel;   /* floats */
} CgArg;

typedef struct CgKernel {
    const char *name;        /* C identifier, unique in the module */
    int group;               /* index into the GSchedule */
    int64_t grid;            /* work items */
    CgArg *args;
    int nargs;
    uint8_t *kir;            /* the kernel IR, encoded (kir_encode): what the plan carries */
    size_t kir_len;
    uint8_t *kir_gpu;        /* its GPU schedule (KirKernel.block > 0), encoded, or NULL:
                                same name, grid and buffers; the CUDA module renders it */
    size_t kir_gpu_len;
} CgKernel;

typedef struct CgModule {
    CgKernel *kernels;       /* in schedule order (library groups skipped) */
    int nkernels;
    char *body;              /* every kernel as DL_KERNEL(...) { ... }: the C module's bodies
                                (malloc'd) */
    char *body_cuda;         /* the CUDA module's bodies: the same text, except kernels with a
                                GPU schedule, rendered from it (malloc'd) */
    char *kir_text;          /* the --emit=kir dump (malloc'd) */
} CgModule;

/* Generate every kernel of sched; kernel names start with prefix (e.g.
 * "train_", "eval_") so that several programs share one module.  Returns 0, or
 * the number of errors reported to diag (a group codegen cannot handle is an
 * internal error that names the group and its ops). */
int cg_generate(const Graph *g, const GSchedule *sched, const GMemPlan *mp,
                const char *prefix, CgModule *out, DlDiag *diag);
void cg_module_free(CgModule *m);


/* Compile a CUDA module with NVRTC to PTX for arch (e.g. "compute_80").
 * Works without a GPU (libnvrtc is dlopen'ed).  Returns 0 with *ptx set, or
 * -1 with *log holding the NVRTC program log or the reason NVRTC is missing. */
int cg_compile_ptx(const char *cuda_source, const char *arch, char **ptx, char **log);

#endif
