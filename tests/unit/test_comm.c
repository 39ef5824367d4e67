/* test_comm.c - opening the communicator (runtime/comm.c) without mpirun:
 * one process gets no communicator and no MPI; a launcher's size of 1 too;
 * a size of 2 without a usable plugin is an error that says how to build it,
 * never N independent trainings.  The MPI plugin itself runs in
 * tests/e2e/mpi*.sh (real OpenMPI). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "runtime/comm.h"

static void clear_launcher(void)
{
    unsetenv("OMPI_COMM_WORLD_SIZE");
    unsetenv("PMI_SIZE");
    unsetenv("PMIX_SIZE");
}

static void test_one_process_has_no_communicator(void **state)
{
    (void)state;
    clear_launcher();
    DlComm *c = (DlComm *)1;
    char *err = NULL;
    assert_int_equal(dl_comm_open(&c, &err), 0);
    assert_null(c);
    assert_int_equal(dl_comm_rank(c), 0);
    assert_int_equal(dl_comm_size(c), 1);
    setenv("OMPI_COMM_WORLD_SIZE", "1", 1); /* mpirun -np 1: still one process */
    assert_int_equal(dl_comm_open(&c, &err), 0);
    assert_null(c);
    dl_comm_poll(NULL);
    dl_comm_close(NULL);
    clear_launcher();
}

static void test_missing_plugin_is_an_error(void **state)
{
    (void)state;
    clear_launcher();
    setenv("PMI_SIZE", "2", 1);
    setenv("DLDL_MPI_PLUGIN", "/nonexistent/dldl_mpi.so", 1);
    DlComm *c = NULL;
    char *err = NULL;
    assert_int_equal(dl_comm_open(&c, &err), -1);
    assert_null(c);
    assert_non_null(strstr(err, "started by mpirun with 2 processes, but the MPI plugin cannot be used: "
                                "/nonexistent/dldl_mpi.so"));
    assert_non_null(strstr(err, "openmpi-bin and libopenmpi-dev"));
    free(err);
    /* a library that is not the plugin */
    setenv("DLDL_MPI_PLUGIN", "libm.so.6", 1);
    assert_int_equal(dl_comm_open(&c, &err), -1);
    assert_non_null(strstr(err, "it has no dl_comm_plugin table"));
    free(err);
    unsetenv("DLDL_MPI_PLUGIN");
    clear_launcher();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_one_process_has_no_communicator),
        cmocka_unit_test(test_missing_plugin_is_an_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
