/* comm_mpi.c - the MPI plugin of dldlrun (comm.h): build/dldl_mpi.so,
 * compiled with mpicc and linked with -lmpi, dlopened by runtime/comm.c only
 * under mpirun.  Non-blocking collectives on MPI_COMM_WORLD (a duplicate),
 * one request per slot; MPI_ERRORS_RETURN so that a failure comes back as a
 * message instead of killing the process inside MPI.  Only the thread that
 * called init calls in here (MPI_THREAD_FUNNELED).
 */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm.h"

typedef struct Mpi {
    MPI_Comm comm;
    MPI_Request req[DL_COMM_NSLOTS];
    int rank;
} Mpi;

static int mpi_fail(int rc, const char *op, char *why, size_t n)
{
    char s[MPI_MAX_ERROR_STRING];
    int len = 0;
    if (MPI_Error_string(rc, s, &len) != MPI_SUCCESS) snprintf(s, sizeof s, "MPI error %d", rc);
    snprintf(why, n, "%s failed: %s", op, s);
    return -1;
}

static const char *library(void)
{
    static char v[MPI_MAX_LIBRARY_VERSION_STRING];
    int len = 0;
    MPI_Get_library_version(v, &len);
    char *nl = strchr(v, '\n');
    if (nl) *nl = 0;
    char *comma = strchr(v, ',');
    if (comma) *comma = 0;
    return v;
}

static void *init(int *rank, int *size, char *why, size_t n)
{
    int provided = 0, rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return mpi_fail(rc, "MPI_Init_thread", why, n), NULL;
    Mpi *m = calloc(1, sizeof *m);
    if (!m) return snprintf(why, n, "out of memory"), NULL;
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    if ((rc = MPI_Comm_dup(MPI_COMM_WORLD, &m->comm)) != MPI_SUCCESS) {
        free(m);
        return mpi_fail(rc, "MPI_Comm_dup", why, n), NULL;
    }
    MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
    MPI_Comm_rank(m->comm, rank);
    MPI_Comm_size(m->comm, size);
    m->rank = *rank;
    for (int i = 0; i < DL_COMM_NSLOTS; i++) m->req[i] = MPI_REQUEST_NULL;
    return m;
}

/* MPI counts are int: a region of more than INT_MAX values is refused
 * (8 GiB of floats: the plans' buckets are 2 MiB). */
static int iallreduce(void *h, const void *x, void *y, int64_t n, int f64, int slot, char *why, size_t nwhy)
{
    Mpi *m = h;
    if (n < 0 || n > 0x7fffffff) return snprintf(why, nwhy, "all-reduce of %lld values", (long long)n), -1;
    int rc = MPI_Iallreduce(x == y ? MPI_IN_PLACE : x, y, (int)n, f64 ? MPI_DOUBLE : MPI_FLOAT, MPI_SUM, m->comm,
                            &m->req[slot]);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Iallreduce", why, nwhy);
}

static int ibcast(void *h, void *buf, int64_t bytes, int root, int slot, char *why, size_t nwhy)
{
    Mpi *m = h;
    if (bytes < 0 || bytes > 0x7fffffff) return snprintf(why, nwhy, "broadcast of %lld bytes", (long long)bytes), -1;
    int rc = MPI_Ibcast(buf, (int)bytes, MPI_BYTE, root, m->comm, &m->req[slot]);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Ibcast", why, nwhy);
}

static int test(void *h, int slot, int *done, char *why, size_t nwhy)
{
    Mpi *m = h;
    int rc = MPI_Test(&m->req[slot], done, MPI_STATUS_IGNORE);
    return rc == MPI_SUCCESS ? 0 : mpi_fail(rc, "MPI_Test", why, nwhy);
}

static void mpi_abort(void *h, int code) { MPI_Abort(h ? ((Mpi *)h)->comm : MPI_COMM_WORLD, code); }

static void finalize(void *h)
{
    Mpi *m = h;
    MPI_Comm_free(&m->comm);
    MPI_Finalize();
    free(m);
}

const DlCommPlugin dl_comm_plugin = {DL_COMM_ABI, library, init, iallreduce, ibcast, test, mpi_abort, finalize};
