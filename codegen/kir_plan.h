/* kir_plan.h - a plan's kernels, from untrusted IR to a module source: what
 * the runtime sees of codegen/ (and dldlc's --emit=c|cuda|ptx, so that the
 * printed module is the one dldlrun compiles).
 *
 * A plan carries each kernel as its kernel IR (common/plan.h DlPlanKernel).
 * Loading decodes and checks every kernel and its GPU schedule if any
 * (kir_decode; the schedule must take the same grid and buffers), proves every access
 * inside its buffers for the kernel's grid (kir_prove), and checks every
 * kernel step of every program against it: the step's grid within the
 * kernel's, its tensors as many as the kernel's buffers and each at least as
 * large as the buffer the proof assumed.  Only then is C or CUDA rendered, by
 * this code, from the IR: a plan never supplies source text.
 */
#ifndef DL_KIR_PLAN_H
#define DL_KIR_PLAN_H

#include "../common/plan.h"
#include "kir.h"

typedef struct KirModule {
    KirKernel *k;     /* one per DlPlan.kernels, same order */
    int n;
} KirModule;

/* Decode, prove and cross-check every kernel of p (p already passed
 * dl_plan_read's checks).  Returns 0, or -1 with *err (malloc'd) naming the
 * kernel or step and why, e.g.
 *   "kernel 'train_k3_bn_apply_relu': statement 12: the index into buffer 4
 *    (%14 c1.z) ranges over [0, 4194304], outside [0, 4194304)". */
int kir_module_load(const DlPlan *p, KirModule *m, char **err);
void kir_module_free(KirModule *m);

/* How the CUDA backend launches a kernel for one step's work items [0, grid):
 * blocks x threads (1-D), and the dynamic shared memory per block in bytes.
 * A kernel without a GPU schedule is "flat": its rendered body is a
 * grid-stride loop over the work items (cg_prelude_cuda's DL_FOR_GID), so it
 * is launched with KIR_CUDA_THREADS threads per block and as many blocks as
 * cover grid, at most KIR_CUDA_MAX_BLOCKS (the loop strides over the rest).
 * A kernel with a GPU schedule (k->gpu, what kir_module_source(m, 1)
 * renders) takes one block of exactly k->gpu->block threads per work item
 * (DL_FOR_BLOCK strides over blocks beyond KIR_CUDA_MAX_BLOCKS); its shared
 * arrays are static, so shared_bytes stays 0.  Pass the module's kernel
 * (m->k[i]), not its gpu variant. */
#define KIR_CUDA_THREADS 256
#define KIR_CUDA_MAX_BLOCKS 65535
typedef struct KirLaunch {
    uint32_t blocks, threads;
    uint32_t shared_bytes;
} KirLaunch;

/* The launch shape of k for a step of grid work items (1 <= grid <= k->grid).
 * Returns 0, or -1 with *why (malloc'd) when grid is out of range. */
int kir_cuda_launch(const KirKernel *k, int64_t grid, KirLaunch *l, char **why);

/* The module's source: the C11 (cuda = 0) or CUDA C (cuda = 1) prelude
 * followed by every kernel rendered from its IR, in the CUDA module from its
 * GPU schedule where it has one (malloc'd). */
char *kir_module_source(const KirModule *m, int cuda);

#endif
