/* comm.h - the communicator of data-parallel training (docs/parallel.md).
 *
 * A narrow interface over an existing engine, never a transport of our own:
 * OpenMPI through the plugin build/dldl_mpi.so (runtime/comm_mpi.c, built
 * with mpicc and linked with -lmpi only when mpicc is there).  dldlrun itself
 * never links MPI: dl_comm_open dlopens the plugin only when the process was
 * started by mpirun (OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_SIZE set) with
 * more than one process, so dldlrun builds and runs on machines without MPI.
 *
 * Every wait polls with a timeout ($DLDL_COMM_TIMEOUT seconds, default 120)
 * and MPI's error handler is MPI_ERRORS_RETURN, so a rank that dies or hangs
 * makes the others stop with a message naming the operation and the ranks,
 * never hang.  All calls are made from the thread that opened the
 * communicator (MPI_THREAD_FUNNELED); OpenMP's workers never call it.
 */
#ifndef DL_COMM_H
#define DL_COMM_H

#include <stddef.h>
#include <stdint.h>

#define DL_COMM_ABI 1
#define DL_COMM_NSLOTS 68 /* plan slots [0, DL_COMM_SLOTS) and 4 of dl_comm's own blocking calls */

/* What the plugin exports as `dl_comm_plugin` (DL_COMM_ABI): non-blocking
 * primitives over slots; comm.c builds the waits and the timeouts on them.
 * Each returns 0, or -1 with a message in why[0..nwhy). */
typedef struct DlCommPlugin {
    int abi;
    const char *(*library)(void);  /* "Open MPI v4.1.4, ..." */
    void *(*init)(int *rank, int *size, char *why, size_t nwhy);
    /* y = sum over ranks of x (n floats or doubles; x == y: in place) */
    int (*iallreduce)(void *h, const void *x, void *y, int64_t n, int f64, int slot, char *why, size_t nwhy);
    int (*ibcast)(void *h, void *buf, int64_t bytes, int root, int slot, char *why, size_t nwhy);
    int (*test)(void *h, int slot, int *done, char *why, size_t nwhy);
    void (*abort)(void *h, int code);
    void (*finalize)(void *h);
} DlCommPlugin;

typedef struct DlComm DlComm;

/* Open the communicator of this process: *c = NULL (one process, no MPI) when
 * not started by mpirun or started as a single process; else the plugin's,
 * initialised.  Returns 0, or -1 with *err, e.g. "started by mpirun with 2
 * processes, but the MPI plugin cannot be opened: build/dldl_mpi.so: cannot
 * open shared object file (make builds it where mpicc is installed: Debian's
 * openmpi-bin and libopenmpi-dev)". */
int dl_comm_open(DlComm **c, char **err);
int dl_comm_rank(const DlComm *c);   /* 0 for NULL */
int dl_comm_size(const DlComm *c);   /* 1 for NULL */
/* "Open MPI v4.1.4 ..., plugin PATH" (static text of c). */
const char *dl_comm_describe(const DlComm *c);

/* Start y = sum over the ranks of x[0..n) in request slot (0 <= slot <
 * DL_COMM_SLOTS, not in flight); x == y sums in place.  what names the
 * operation in messages (a plan step's label).  0 or -1 with *err. */
int dl_comm_iallreduce(DlComm *c, const float *x, float *y, int64_t n, int slot, const char *what, char **err);
/* Wait for slot's request: 0, or -1 with *err when MPI fails or nothing
 * comes within the timeout: "rank 1: all-reduce 'grad.bucket3' had no answer
 * from the other ranks within 120 s (DLDL_COMM_TIMEOUT): a rank died or
 * hangs". */
int dl_comm_wait(DlComm *c, int slot, char **err);
/* Let MPI progress the requests in flight (called between plan steps, so
 * that gradient buckets move while backward computes).  Errors show at wait. */
void dl_comm_poll(DlComm *c);
/* Blocking, with the timeout: sum doubles v[0..n) over the ranks in place;
 * broadcast bytes of buf from rank root. */
int dl_comm_sum(DlComm *c, double *v, int n, const char *what, char **err);
int dl_comm_bcast(DlComm *c, void *buf, int64_t bytes, int root, const char *what, char **err);
/* Stop every rank (MPI_Abort) after a message; does not return. */
void dl_comm_abort(DlComm *c, int code);
/* Finalise and free (NULL is fine). */
void dl_comm_close(DlComm *c);

#endif
