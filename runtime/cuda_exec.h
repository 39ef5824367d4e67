/* cuda_exec.h - the CUDA backend's executor: a plan's programs on a CUDA
 * device (cuda_dev.h: a GPU, or the emulated device for testing).
 *
 * dl_cuda_exec_load does everything that can be done once: one device arena
 * per plan arena, laid out by the plan's memory plan (the same offsets as the
 * CPU's); the CUDA module compiled for the device and loaded; for every step
 * of every program its launch shape (kir_cuda_launch) and its argument table
 * (the device pointers of its tensors, in one device array uploaded once), or
 * its library call planned (cuDNN algorithm and workspace, cuBLAS arguments);
 * one workspace for the largest.  Running a program allocates nothing.
 *
 * The host arenas of the CPU executor (exec.c) are the staging and the mirror:
 * pinned with host_register; before each run the program's inputs (INPUT
 * arena tensors it reads) are snapshotted into a pinned staging buffer and
 * copied on the copy stream, and the compute stream waits on an event; after
 * it, the program's outputs (plan outputs) come back and the stream is
 * synchronised.  Parameters, gradients, optimizer
 * and running state stay on the device; dl_cuda_exec_host brings one arena
 * back on request (checkpoints, initialisation) and the next run sends it
 * again.  From its second run on, each program is captured once as a graph
 * and replayed (not with --profile, which times every step with events, nor
 * with DLDL_CUDA_GRAPH=0 or DLDL_DEBUG=2, which scans every step's arguments
 * for non-finite values as the CPU executor does).
 *
 * Collective steps (docs/parallel.md): with a communicator (opts.comm, under
 * mpirun) the device's collectives are set up once at load (coll_init: NCCL
 * on a GPU) when some program has collective steps; ALLREDUCE_START enqueues
 * the all-reduce on the compute stream, so it runs after the kernels that
 * wrote the gradients and before those that read the sums, and
 * ALLREDUCE_WAIT is a no-op on the host: the overlap of communication with
 * backward is the stream's (and NCCL's own), not the host's.  Programs with
 * collective steps are not captured as graphs (NCCL supports capture since
 * 2.9, but it is not verified here).  One process: START copies x to y (or
 * nothing, in place), as on the CPU.
 */
#ifndef DL_CUDA_EXEC_H
#define DL_CUDA_EXEC_H

#include <stdio.h>

#include "../common/plan.h"
#include "comm.h"
#include "cuda_dev.h"

typedef struct DlCudaExecOpts {
    int profile;   /* time every step with events (no graph) */
    int graphs;    /* 1: capture each program after its first run and replay it */
    int debug;     /* 2: after every step bring its arguments back and check them for NaN/Inf (no graph) */
    DlComm *comm;  /* mpirun: the ranks' communicator, for the collective steps (NULL: one process) */
} DlCudaExecOpts;

typedef struct DlCudaExec DlCudaExec;

/* Load plan p onto dev (which the executor then owns and closes), with
 * host[a] the host arena a (p->arena_size[a] floats, holding the constants;
 * it must outlive the executor).  Returns NULL with *err naming the step,
 * kernel or call: a step kind with no CUDA implementation, a launch shape
 * out of range, arenas larger than the device's memory, a device error. */
DlCudaExec *dl_cuda_exec_load(const DlPlan *p, DlCudaDev *dev, float *const host[DL_AR_COUNT],
                              const DlCudaExecOpts *o, char **err);
void dl_cuda_exec_free(DlCudaExec *x);

/* Run program prog once: inputs up, steps, outputs back.  0, or -1 with *err. */
int dl_cuda_exec_run(DlCudaExec *x, int prog, char **err);
/* The same in two halves: start snapshots the program's inputs into pinned
 * staging and queues the copies, the steps and the outputs' copies, then
 * returns (waiting first for a run still in flight); wait synchronises.  In
 * between the host may write the input arena (the next batch); the outputs
 * are current after wait.  0, or -1 with *err. */
int dl_cuda_exec_start(DlCudaExec *x, int prog, char **err);
int dl_cuda_exec_wait(DlCudaExec *x, char **err);

/* Make host arena a current (copy it back when the device's copy is newer)
 * and mark it as written by the host, so that the next run sends it.  The
 * activation arena holds only the last run's outputs; input and constant
 * arenas are the host's already.  0, or -1 with *err. */
int dl_cuda_exec_host(DlCudaExec *x, int arena, char **err);

/* The device (its name says when it is the emulated one), whether the
 * module came from the cache and the seconds spent compiling it. */
const DlCudaInfo *dl_cuda_exec_info(const DlCudaExec *x, int *cache_hit, double *compile_s);

/* Per-step timing table of every program run with profiling (event times). */
void dl_cuda_exec_profile(const DlCudaExec *x, FILE *out);

#endif
