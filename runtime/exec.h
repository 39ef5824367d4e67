/* exec.h - the plan executor: arenas, resolved steps, one call per program run.
 *
 * dl_exec_load does all the work that can be done once: it allocates each
 * arena (one 64-byte aligned, zeroed allocation per arena), JIT-compiles the
 * kernels (jit.h), creates every oneDNN primitive (cpu_lib.h) and resolves
 * every step's arguments to float pointers, so that running a program is a
 * loop over a flat array of steps with no lookup and no allocation.
 *
 * Kernel steps split [0, grid) into one contiguous chunk per thread with an
 * OpenMP static loop (serially when grid < 2 * threads or the step touches
 * fewer than DL_EXEC_SERIAL_FLOATS floats); library steps call oneDNN or
 * OpenBLAS; collective steps (ALLREDUCE_START/WAIT) go through the
 * communicator (comm.h), which is polled between steps while requests are
 * in flight.  With profiling on, every step is timed and dl_exec_profile
 * prints the median per step over the runs so far.
 */
#ifndef DL_EXEC_H
#define DL_EXEC_H

#include <stdint.h>
#include <stdio.h>

#include "../common/plan.h"
#include "cpu_lib.h"
#include "jit.h"

#define DL_EXEC_SERIAL_FLOATS 32768

/* Where the programs run (dldlrun --device): the CPU, a GPU through the
 * CUDA backend, or the CUDA backend on its emulated device (a test double on
 * the CPU, not a GPU).  Rows: enum, --device name. */
#define DL_DEVICES(X) X(CPU, "cpu") X(CUDA, "cuda") X(CUDA_EMU, "cuda-emu")
typedef enum DlDevice {
#define X(e, n) DL_DEVICE_##e,
    DL_DEVICES(X)
#undef X
    DL_DEVICE_COUNT
} DlDevice;
extern const char *const dl_device_name[DL_DEVICE_COUNT];

typedef struct DlExecOpts {
    int nthreads;         /* <= 0: all the OpenMP threads there are */
    int profile;          /* time every step */
    int debug;            /* 2: after every step scan its arguments for NaN/Inf */
    DlConvLayout layout;  /* oneDNN layout mode (dl_conv_default_layout()) */
    DlDevice device;      /* DL_DEVICE_CPU (0) unless --device says otherwise */
    struct DlComm *comm;  /* ALLREDUCE_* steps (comm.h); NULL: one process, a sum over one rank (a copy) */
} DlExecOpts;

typedef struct DlExec DlExec;

/* Load plan p (which must outlive the executor).  Returns NULL with *err:
 * a JIT failure, a kernel/step mismatch, a oneDNN failure (naming the step).
 * With o->device a CUDA device, the programs run there (cuda_exec.h) and the
 * arenas below are the host's staging and mirror: dl_exec_tensor and
 * dl_exec_arenas bring the parameter, gradient, optimizer and state arenas
 * back from the device and have the next run send them again; after a run
 * the activation arena holds the program's outputs only. */
DlExec *dl_exec_load(const DlPlan *p, const DlExecOpts *o, char **err);
void dl_exec_free(DlExec *e);

/* Initialise every parameter from its DlPlanTensor.init / fan_in with a
 * counter-based generator keyed by (seed, tensor name, element):
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)) for kaiming and bias uniform (PyTorch's
 * defaults for conv / linear), ones, zeros; batch norm state rows mean 0,
 * var 1; gradients and momentum 0.  The same seed gives the same weights. */
void dl_exec_init_params(DlExec *e, uint64_t seed);

/* Run program prog (index into p->programs) once.  Returns 0, or -1 with *err
 * when a library call fails or (debug 2) a step produced a non-finite value:
 * "step 41 'c3.conv.bwd_data' (conv backward data) wrote a non-finite value
 * to argument 2 (tensor 'grad.c3.y')". */
int dl_exec_run(DlExec *e, int prog, char **err);
/* dl_exec_run in two halves, so that the next batch is fed while a step runs:
 * on a CUDA device start queues the run (its inputs snapshotted) and returns,
 * wait synchronises; between them the caller may write the program's inputs
 * (dl_feed) but must not read its outputs (wait makes them current).  On the
 * CPU start runs the program and wait does nothing.  0, or -1 with *err. */
int dl_exec_start(DlExec *e, int prog, char **err);
int dl_exec_wait(DlExec *e, char **err);

/* The device the programs run on: "cpu", or the CUDA device's name (the
 * emulated device's says so), for banners. */
const char *dl_exec_device(const DlExec *e);

/* Check a library step's tensors against its geometry: NULL, or the reason
 * naming program pname, step si and the argument (malloc'd). */
char *dl_exec_check_lib_step(const DlPlan *p, const DlPlanStep *s, int si, const char *pname);

/* Storage of tensor t (plan.h storage model) and the arenas. */
float *dl_exec_tensor(const DlExec *e, int t);
float *const *dl_exec_arenas(const DlExec *e);
const DlJit *dl_exec_jit(const DlExec *e);
int dl_exec_threads(const DlExec *e);

/* Print the per-step timing table of every program run with profiling on:
 * label, kind, median ms, % of the program's total. */
void dl_exec_profile(const DlExec *e, FILE *out);

/* 1 when every value of x[0..n) is finite. */
int dl_all_finite(const float *x, int64_t n);

#endif
