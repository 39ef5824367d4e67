/* cuda_dev.h - the driver-level operations the CUDA backend uses, as one
 * table of function pointers, with two implementations:
 *
 *   cuda_real.c  libcuda (driver API), libnvrtc, libcublas and libcudnn,
 *                opened at run time with dlopen: a real NVIDIA GPU;
 *   cuda_emu.c   an emulated CUDA device: a test double on the CPU, not a
 *                GPU.  Memory is host memory behind tagged addresses, the
 *                module is the same CUDA C compiled by g++ under
 *                codegen/cuda_host_emu.h, convolutions and matrix products
 *                go through the CPU libraries (cpu_lib.h).
 *
 * The backend executor (cuda_exec.c) sees only this table, so everything it
 * does (arenas, argument tables, launches, library calls, staging, graph
 * capture, event timing) runs here, without a GPU, against the emulation.
 *
 * Device addresses are DlDevPtr (CUdeviceptr's width).  Streams are the two
 * the backend uses, DL_CUDA_COMPUTE and DL_CUDA_COPY; work on one stream runs
 * in issue order; across streams order only through events.  Every operation
 * returns 0, or -1 with *err (malloc'd) naming the call, the source line and
 * the library's own error text ("cuLaunchKernel (runtime/cuda_real.c:412):
 * CUDA_ERROR_LAUNCH_FAILED: unspecified launch failure").
 */
#ifndef DL_CUDA_DEV_H
#define DL_CUDA_DEV_H

#include <stddef.h>
#include <stdint.h>

#include "../codegen/kir_plan.h"
#include "comm.h"

typedef uint64_t DlDevPtr;

enum { DL_CUDA_COMPUTE = 0, DL_CUDA_COPY = 1, DL_CUDA_NSTREAMS = 2 };

/* Which device: --device cuda (a GPU through the driver) or cuda-emu. */
typedef enum DlCudaKind { DL_CUDA_REAL, DL_CUDA_EMULATED } DlCudaKind;

typedef struct DlCudaInfo {
    char name[256];       /* "NVIDIA H100 80GB HBM3", or the emulation's banner */
    int cc_major, cc_minor;
    uint64_t total_mem;   /* bytes */
    int emulated;         /* 1: a test double on the CPU, never a GPU result */
} DlCudaInfo;

/* The oldest GPU the backend runs on: compute capability 7.0 (Volta). */
#define DL_CUDA_MIN_CC 70

/* Opaque handles of the implementation. */
typedef struct DlDevModule DlDevModule;
typedef struct DlDevEvent DlDevEvent;
typedef struct DlDevGraph DlDevGraph;
typedef struct DlDevConv DlDevConv;
typedef void *DlDevKernel;

typedef struct DlCudaDev DlCudaDev;
struct DlCudaDev {
    DlCudaKind kind;
    DlCudaInfo info;
    void *impl;

    /* memory: device allocations (zeroed), freed by mem_free */
    int (*mem_alloc)(DlCudaDev *d, size_t bytes, DlDevPtr *out, char **err);
    void (*mem_free)(DlCudaDev *d, DlDevPtr p);
    /* pin host memory [p, p + bytes) for asynchronous copies (cuMemHostRegister) */
    int (*host_register)(DlCudaDev *d, void *p, size_t bytes, char **err);
    void (*host_unregister)(DlCudaDev *d, void *p);
    /* copies and fill, asynchronous on stream (host memory pinned) */
    int (*copy_h2d)(DlCudaDev *d, DlDevPtr dst, const void *src, size_t bytes, int stream, char **err);
    int (*copy_d2h)(DlCudaDev *d, void *dst, DlDevPtr src, size_t bytes, int stream, char **err);
    int (*memset32)(DlCudaDev *d, DlDevPtr dst, uint32_t value, size_t count, int stream, char **err);
    int (*copy_d2d)(DlCudaDev *d, DlDevPtr dst, DlDevPtr src, size_t bytes, int stream, char **err);

    /* the plan's CUDA module (kir_module_source(m, 1)): compile for this
     * device, load, and resolve names[0..n) into kernels[] (the module lives
     * until module_unload).  *cache_hit: the compiled module came from the
     * kernel cache; *compile_s: seconds spent compiling. */
    int (*module_load)(DlCudaDev *d, const char *source, const char *const *names, int n, DlDevModule **m,
                       DlDevKernel *kernels, int *cache_hit, double *compile_s, char **err);
    void (*module_unload)(DlCudaDev *d, DlDevModule *m);
    /* launch a kernel of the dldl ABI, kernel(dl_b, g0, g1), in shape l:
     * dl_b = argtab, a device array of nargs device pointers */
    int (*launch)(DlCudaDev *d, DlDevKernel k, const KirLaunch *l, DlDevPtr argtab, int nargs, int64_t g0,
                  int64_t g1, int stream, char **err);

    /* events: record on a stream, make a stream wait for one, time two */
    int (*event_new)(DlCudaDev *d, DlDevEvent **e, char **err);
    void (*event_free)(DlCudaDev *d, DlDevEvent *e);
    int (*event_record)(DlCudaDev *d, DlDevEvent *e, int stream, char **err);
    int (*stream_wait)(DlCudaDev *d, int stream, DlDevEvent *e, char **err);
    int (*event_ms)(DlCudaDev *d, DlDevEvent *from, DlDevEvent *to, float *ms, char **err);
    int (*stream_sync)(DlCudaDev *d, int stream, char **err);

    /* graphs: capture the work issued on stream between begin and end, then
     * replay it; the emulation records its operation list and replays it */
    int (*graph_begin)(DlCudaDev *d, int stream, char **err);
    int (*graph_end)(DlCudaDev *d, int stream, DlDevGraph **g, char **err);
    int (*graph_launch)(DlCudaDev *d, DlDevGraph *g, int stream, char **err);
    void (*graph_free)(DlCudaDev *d, DlDevGraph *g);

    /* library calls.  conv_new: a convolution step (kind DL_STEP_CONV_*,
     * geometry plan.h DlPlanStep.i) with its algorithm chosen once and the
     * workspace it needs in *ws_bytes; conv_run on the plan's three
     * arguments in their order (fwd x,w,y; bwd data dy,w,dx; bwd filter
     * x,dy,dw), overwriting the output.  gemm: plan.h DL_STEP_MATMUL, row-
     * major y[M,N] = op(a) op(b) (i = M, N, K, ta, tb). */
    int (*conv_new)(DlCudaDev *d, int kind, const int64_t geom[12], DlDevConv **c, size_t *ws_bytes, char **err);
    void (*conv_free)(DlCudaDev *d, DlDevConv *c);
    int (*conv_run)(DlCudaDev *d, DlDevConv *c, DlDevPtr a, DlDevPtr b, DlDevPtr y, DlDevPtr ws, size_t ws_bytes,
                    int stream, char **err);
    int (*gemm)(DlCudaDev *d, const int64_t i[5], DlDevPtr a, DlDevPtr b, DlDevPtr y, int stream, char **err);
    /* after the last conv_new, before the first conv_run (the emulation's
     * CPU library sizes its shared buffers here) */
    int (*lib_ready)(DlCudaDev *d, char **err);

    /* collectives over the ranks of a data-parallel run (docs/parallel.md).
     * coll_init: once, after the device is open, with the process's
     * communicator (comm.h, size > 1): rank 0 makes the NCCL unique id,
     * dl_comm_bcast sends it, every rank calls ncclCommInitRank with its MPI
     * rank and size (the emulation keeps comm).  coll_allreduce: y[0..n) =
     * sum over the ranks of x[0..n) (floats; x == y: in place), ordered on
     * stream with the kernels (NCCL's ncclAllReduce on the stream; the
     * emulation sums through comm when the queue reaches it).  Once
     * collectives are in flight, stream_sync polls with the timeout
     * DLDL_COMM_TIMEOUT and the collective engine's asynchronous error, so a
     * dead rank ends the wait with a message, never a hang.  coll_free:
     * destroy the collective communicator (not comm; NULL-safe to call
     * without coll_init). */
    int (*coll_init)(DlCudaDev *d, DlComm *comm, char **err);
    int (*coll_allreduce)(DlCudaDev *d, DlDevPtr x, DlDevPtr y, int64_t n, int stream, char **err);
    void (*coll_free)(DlCudaDev *d);

    void (*close)(DlCudaDev *d);
};

/* Open the device of kind: the first GPU through the driver, or the emulated
 * device (nthreads: OpenMP threads of its CPU libraries; <= 0 all).  Returns
 * NULL with *why: for DL_CUDA_REAL "libcuda.so.1 not found (no NVIDIA driver
 * on this machine): ...", "cuInit: CUDA_ERROR_NO_DEVICE: no CUDA-capable
 * device is detected", "libcudnn.so.9 not found ...", "GPU 0 (Tesla K80) has
 * compute capability 3.7; dldl needs 7.0 or newer". */
DlCudaDev *dl_cuda_open(DlCudaKind kind, int nthreads, char **why);
DlCudaDev *dl_cuda_emu_open(int nthreads, char **why);
DlCudaDev *dl_cuda_real_open(char **why);
/* Whether dl_cuda_real_open would find a usable GPU: the driver, device 0 and
 * its compute capability, every library entry point; no context is created
 * (dldlrun's --device cuda and auto ask before loading any data).  0 with
 * *info filled (info may be NULL), or -1 with *why as dl_cuda_open's. */
int dl_cuda_real_probe(DlCudaInfo *info, char **why);

/* 1 when cuda_real.c was compiled against the toolkit's headers (else every
 * dl_cuda_real_* call answers that it was not). */
int dl_cuda_real_built(void);

/* Without a GPU (tests, CI): open NVRTC, cuBLAS and cuDNN and resolve every
 * entry point cuda_real.c uses; with source, compile it for sm_<arch> (e.g.
 * 80) to a cubin through the kernel cache exactly as loading a module does
 * (*cubin_bytes, *hit: from the cache).  0, or -1 with *why. */
int dl_cuda_real_selfcheck(const char *source, int arch, size_t *cubin_bytes, int *hit, char **why);

/* ---- pure argument building (cuda_desc.c; unit-tested without a GPU) ---- */

/* cuBLAS is column-major: a row-major y[M,N] = op(a) op(b) is computed as
 * the column-major y^T = op(b)^T op(a)^T, i.e. cublasSgemm(transa, transb,
 * m, n, k, b, ldb, a, lda, y, ldc) with the operands swapped. */
typedef struct DlGemmArgs {
    int transa, transb;   /* 1: CUBLAS_OP_T, for the first (b) and second (a) operand */
    int m, n, k;          /* column-major: m = N, n = M, k = K */
    int lda, ldb, ldc;    /* leading dimensions of the first (b), second (a) operands and of y */
} DlGemmArgs;
/* Returns 0, or -1 with *why when a dimension is <= 0 or over INT_MAX. */
int dl_gemm_args(const int64_t i[5], DlGemmArgs *g, char **why);

/* The cuDNN descriptors of a convolution step: NCHW float tensors x [B,C,H,W],
 * y [B,O,OH,OW], filter w [O,C,kh,kw], 2-D cross-correlation with pad,
 * stride and dilation the same on both axes (dilation = geom[11] + 1); which
 * of the plan's three arguments (a, b, y) is x, w and y for each kind. */
typedef struct DlConvDesc {
    int x[4], w[4], y[4];
    int pad, stride, dilation;
    int arg_x, arg_w, arg_y;   /* 0, 1, 2: the position of x, w, y among the step's arguments */
} DlConvDesc;
/* Returns 0, or -1 with *why when the geometry is inconsistent (OH, OW not
 * the output size of H, W) or a dimension exceeds cuDNN's int. */
int dl_conv_desc(int kind, const int64_t geom[12], DlConvDesc *d, char **why);

#endif
