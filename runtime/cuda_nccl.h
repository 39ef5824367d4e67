/* cuda_nccl.h - NCCL for the CUDA backend's collectives (cuda_real.c's
 * coll_* entries; docs/parallel.md, docs/cuda.md).
 *
 * libnccl.so.2 is opened at run time with dlopen ($DLDL_LIBNCCL names the
 * file instead of the search), only by a process that has a communicator
 * (mpirun, more than one rank) and runs --device cuda; without mpirun nothing
 * loads it.  Compiled against nccl.h so that every entry point's type is the
 * header's; built without nccl.h (the Makefile passes DL_CUDA_NO_NCCL) every
 * call answers that it was.  Every failure names the call, this file's line
 * and ncclGetErrorString's text.
 */
#ifndef DL_CUDA_NCCL_H
#define DL_CUDA_NCCL_H

#include <stddef.h>
#include <stdint.h>

#include "comm.h"

typedef struct DlNccl DlNccl;

/* This process's rank among the ranks of its host, as the launcher says
 * (OMPI_COMM_WORLD_LOCAL_RANK, MPI_LOCALRANKID, PMIX_LOCAL_RANK,
 * SLURM_LOCALID; 0 without one): cuda_real.c takes GPU <this mod count>, as
 * NCCL allows one rank per GPU. */
int dl_cuda_local_rank(void);

/* Open NCCL and make this rank's communicator over comm's ranks: rank 0 calls
 * ncclGetUniqueId, dl_comm_bcast sends the id, every rank calls
 * ncclCommInitRank(size, id, rank) on the CUDA device current on this thread
 * (cuda_real.c's context).  0 with *n, or -1 with *err, e.g. "NCCL
 * (Debian/NVIDIA's libnccl2, needed by --device cuda under mpirun) not found
 * (tried libnccl.so.2, ...): ...". */
int dl_nccl_open(DlNccl **n, DlComm *comm, char **err);
/* Enqueue y[0..count) = sum over the ranks of x (floats, ncclSum; x == y in
 * place) on stream (a CUstream).  0, or -1 with *err. */
int dl_nccl_allreduce(DlNccl *n, uint64_t x, uint64_t y, size_t count, void *stream, char **err);
/* Wait, polling, until done(ctx) says the work is finished (1; 0: not yet,
 * -1: failed with *err): between polls ncclCommGetAsyncError, and at most
 * $DLDL_COMM_TIMEOUT seconds (default 120, as comm.h's waits).  An NCCL error
 * or the timeout aborts the communicator (ncclCommAbort) and returns -1 with
 * *err: "rank 1: the GPU's stream with NCCL all-reduces did not finish within
 * 120 s (DLDL_COMM_TIMEOUT): a rank died or hangs (ncclCommAbort called)". */
int dl_nccl_wait(DlNccl *n, int (*done)(void *ctx, char **err), void *ctx, char **err);
/* ncclCommAbort (a rank died or hangs: the kernels in flight are stopped). */
void dl_nccl_abort(DlNccl *n);
/* ncclCommDestroy and free (NULL is fine). */
void dl_nccl_free(DlNccl *n);
/* Open the library and resolve every entry point, without a GPU:
 * *version = ncclGetVersion's code.  0, or -1 with *why. */
int dl_nccl_check(int *version, char **why);

#endif
