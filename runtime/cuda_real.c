/* cuda_real.c - the CUDA device through the driver API, NVRTC, cuBLAS and
 * cuDNN (cuda_dev.h), all opened at run time with dlopen so that dldlrun
 * runs (on the CPU) where they are absent.
 *
 * Compiled against the toolkit's headers: every entry point is a row of a
 * table below, its pointer typed with __typeof__ of the header's declaration
 * and looked up by the header's own name for it (cuMemAlloc is
 * cuMemAlloc_v2), so a signature that disagrees with the toolkit does not
 * compile.  Every call is checked; a failure names the call, this file's
 * line and the library's own text (cuGetErrorName/cuGetErrorString,
 * nvrtcGetErrorString, cublasGetStatusString, cudnnGetErrorString).
 *
 * The module: NVRTC compiles the plan's CUDA C for the device's architecture
 * (-arch=sm_XY from the compute capability) to a cubin, cached in the kernel
 * cache (jit.h dl_cache_fetch: the same discipline as the C kernels) under
 * the XXH3-64 of source, options, NVRTC version and architecture.
 * Convolutions: cuDNN's legacy API, NCHW float, FMA math only (no TF32, as
 * on the CPU), the fastest deterministic algorithm of cuDNN's heuristics
 * chosen once per step.  Matrix products: cublasSgemm with the row-major
 * transposition of cuda_desc.c, default math (no TF32), a fixed workspace so
 * that graph capture never allocates.
 *
 * Collectives (coll_*, under mpirun only): NCCL through cuda_nccl.c, the
 * all-reduce on the compute stream; while one is in flight a synchronisation
 * polls the stream and NCCL's asynchronous error with DLDL_COMM_TIMEOUT.
 * Each rank takes GPU <local rank mod count> (device 0 for one process).
 *
 * Library overrides (tests, odd installs): DLDL_LIBCUDA, DLDL_LIBNVRTC,
 * DLDL_LIBCUBLAS, DLDL_LIBCUDNN (and DLDL_LIBNCCL) name the file to open
 * instead of the search.
 *
 * Built where the toolkit's headers are missing (the Makefile passes
 * DL_CUDA_NO_HEADERS), the entry points below say so instead.
 */
#ifdef DL_CUDA_NO_HEADERS
#include "../common/util.h"
#include "cuda_dev.h"

#define NO_HEADERS "this dldlrun was built without the CUDA toolkit's headers (cuda.h, nvrtc.h, cublas_v2.h, " \
                   "cudnn.h under CUDA_HOME): rebuild with them for --device cuda"
int dl_cuda_real_built(void) { return 0; }
DlCudaDev *dl_cuda_real_open(char **why)
{
    *why = dl_xstrdup(NO_HEADERS);
    return NULL;
}
int dl_cuda_real_probe(DlCudaInfo *info, char **why)
{
    *why = dl_xstrdup(NO_HEADERS);
    return -1;
}
int dl_cuda_real_selfcheck(const char *source, int arch, size_t *cubin_bytes, int *hit, char **why)
{
    *why = dl_xstrdup(NO_HEADERS);
    return -1;
}
#else
#include <cublas_v2.h>
#include <cuda.h>
#include <cudnn.h>
#include <dlfcn.h>
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <xxhash.h>

#include "../common/plan.h"
#include "../common/util.h"
#include "cuda_dev.h"
#include "cuda_nccl.h"
#include "jit.h"

#define XSTR(x) STR(x)
#define STR(x) #x

/* ---- the libraries and their entry points --------------------------------- */

#define CU_SYMS(X)                                                                                                    \
    X(cuInit) X(cuGetErrorName) X(cuGetErrorString) X(cuDeviceGetCount) X(cuDeviceGet) X(cuDeviceGetName)           \
    X(cuDeviceGetAttribute) X(cuDeviceTotalMem) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)            \
    X(cuCtxSetCurrent) X(cuMemAlloc) X(cuMemFree) X(cuMemsetD32Async) X(cuMemHostRegister) X(cuMemHostUnregister)    \
    X(cuMemcpyHtoDAsync) X(cuMemcpyDtoHAsync) X(cuMemcpyDtoDAsync) X(cuStreamCreate) X(cuStreamDestroy)             \
    X(cuStreamSynchronize) X(cuStreamQuery) X(cuStreamWaitEvent) X(cuEventCreate) X(cuEventDestroy) X(cuEventRecord) \
    X(cuEventElapsedTime) X(cuModuleLoadData) X(cuModuleUnload) X(cuModuleGetFunction) X(cuLaunchKernel)            \
    X(cuFuncSetAttribute) X(cuStreamBeginCapture) X(cuStreamEndCapture) X(cuGraphInstantiate) X(cuGraphLaunch)       \
    X(cuGraphExecDestroy) X(cuGraphDestroy)
#define NVRTC_SYMS(X)                                                                                                 \
    X(nvrtcGetErrorString) X(nvrtcVersion) X(nvrtcCreateProgram) X(nvrtcCompileProgram) X(nvrtcGetCUBINSize)        \
    X(nvrtcGetCUBIN) X(nvrtcGetProgramLogSize) X(nvrtcGetProgramLog) X(nvrtcDestroyProgram)
#define CUBLAS_SYMS(X)                                                                                                \
    X(cublasCreate) X(cublasDestroy) X(cublasSetStream) X(cublasSetWorkspace) X(cublasSetMathMode) X(cublasSgemm)   \
    X(cublasGetStatusString)
#define CUDNN_SYMS(X)                                                                                                 \
    X(cudnnGetErrorString) X(cudnnCreate) X(cudnnDestroy) X(cudnnSetStream) X(cudnnCreateTensorDescriptor)          \
    X(cudnnSetTensor4dDescriptor) X(cudnnDestroyTensorDescriptor) X(cudnnCreateFilterDescriptor)                    \
    X(cudnnSetFilter4dDescriptor) X(cudnnDestroyFilterDescriptor) X(cudnnCreateConvolutionDescriptor)               \
    X(cudnnSetConvolution2dDescriptor) X(cudnnSetConvolutionMathType) X(cudnnDestroyConvolutionDescriptor)          \
    X(cudnnGetConvolutionForwardAlgorithm_v7) X(cudnnGetConvolutionBackwardDataAlgorithm_v7)                        \
    X(cudnnGetConvolutionBackwardFilterAlgorithm_v7) X(cudnnGetConvolutionForwardWorkspaceSize)                     \
    X(cudnnGetConvolutionBackwardDataWorkspaceSize) X(cudnnGetConvolutionBackwardFilterWorkspaceSize)               \
    X(cudnnConvolutionForward) X(cudnnConvolutionBackwardData) X(cudnnConvolutionBackwardFilter)

/* One pointer per entry point, typed by the header's declaration. */
#define FIELD(f) __typeof__(&f) p_##f;
typedef struct Api {
    CU_SYMS(FIELD) NVRTC_SYMS(FIELD) CUBLAS_SYMS(FIELD) CUDNN_SYMS(FIELD)
} Api;
#undef FIELD

/* One row per entry point: the library, the exported name, where its pointer goes. */
typedef struct Sym { int lib; const char *name; size_t off; } Sym;
enum { LIB_CUDA, LIB_NVRTC, LIB_CUBLAS, LIB_CUDNN, NLIBS };
#define SYM_CUDA(f) {LIB_CUDA, XSTR(f), offsetof(Api, p_##f)},
#define SYM_NVRTC(f) {LIB_NVRTC, XSTR(f), offsetof(Api, p_##f)},
#define SYM_CUBLAS(f) {LIB_CUBLAS, XSTR(f), offsetof(Api, p_##f)},
#define SYM_CUDNN(f) {LIB_CUDNN, XSTR(f), offsetof(Api, p_##f)},
static const Sym SYMS[] = {CU_SYMS(SYM_CUDA) NVRTC_SYMS(SYM_NVRTC) CUBLAS_SYMS(SYM_CUBLAS) CUDNN_SYMS(SYM_CUDNN)};

/* One row per library: the override variable, the files tried, what its absence means. */
static const struct {
    const char *env, *what;
    const char *files[5];
} LIBS[NLIBS] = {
    {"DLDL_LIBCUDA", "the NVIDIA driver (no NVIDIA driver on this machine?)", {"libcuda.so.1", "libcuda.so"}},
    {"DLDL_LIBNVRTC", "NVRTC (the CUDA toolkit)",
     {"libnvrtc.so.13", "libnvrtc.so.12", "libnvrtc.so", "/usr/local/cuda/lib64/libnvrtc.so"}},
    {"DLDL_LIBCUBLAS", "cuBLAS (the CUDA toolkit)",
     {"libcublas.so.13", "libcublas.so.12", "libcublas.so", "/usr/local/cuda/lib64/libcublas.so"}},
    {"DLDL_LIBCUDNN", "cuDNN 9", {"libcudnn.so.9", "libcudnn.so", "/usr/local/cuda/lib64/libcudnn.so"}},
};

typedef struct Real {
    Api api;
    void *lib[NLIBS];
    CUdevice dev;
    CUcontext ctx;
    CUstream stream[DL_CUDA_NSTREAMS];
    cublasHandle_t blas;
    cudnnHandle_t dnn;
    CUdeviceptr blas_ws;
    int arch;                 /* 10 * major + minor */
    DlNccl *nccl;             /* coll_init: the ranks' NCCL communicator */
    int coll_issued;          /* collectives issued since the last synchronisation */
} Real;

#define BLAS_WS_BYTES ((size_t)32 << 20) /* cuBLAS's workspace: fixed, so capture never allocates */

static Real *R(DlCudaDev *d) { return d->impl; }

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* ---- checked calls -------------------------------------------------------- */

/* The driver's own words for rc; these rows when it has none (the toolkit's
 * stub libcuda answers every call with CUDA_ERROR_STUB_LIBRARY and names
 * nothing). */
static const struct { CUresult rc; const char *name, *text; } CU_FALLBACK[] = {
    {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY", "the CUDA toolkit's stub libcuda was loaded, not a driver"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH", "the driver and its kernel module differ"},
};

static int cu_fail(const Real *r, CUresult rc, const char *call, int line, char **err)
{
    const char *name = NULL, *text = NULL;
    if (r->api.p_cuGetErrorName && r->api.p_cuGetErrorName(rc, &name) != CUDA_SUCCESS) name = NULL;
    if (r->api.p_cuGetErrorString && r->api.p_cuGetErrorString(rc, &text) != CUDA_SUCCESS) text = NULL;
    for (size_t i = 0; i < sizeof CU_FALLBACK / sizeof *CU_FALLBACK && !name; i++)
        if (CU_FALLBACK[i].rc == rc) name = CU_FALLBACK[i].name, text = CU_FALLBACK[i].text;
    if (name)
        *err = dl_xasprintf("%s (%s:%d): %s: %s", call, __FILE__, line, name, text ? text : "");
    else
        *err = dl_xasprintf("%s (%s:%d): CUDA error %d", call, __FILE__, line, (int)rc);
    return -1;
}
#define CU(call, what) \
    do { CUresult rc_ = (call); if (rc_ != CUDA_SUCCESS) return cu_fail(r, rc_, what, __LINE__, err); } while (0)
#define BLAS(call, what)                                                                                   \
    do {                                                                                                   \
        cublasStatus_t st_ = (call);                                                                       \
        if (st_ != CUBLAS_STATUS_SUCCESS) {                                                                \
            *err = dl_xasprintf("%s (%s:%d): %s", what, __FILE__, __LINE__, r->api.p_cublasGetStatusString(st_)); \
            return -1;                                                                                     \
        }                                                                                                  \
    } while (0)
#define DNN(call, what)                                                                                    \
    do {                                                                                                   \
        cudnnStatus_t st_ = (call);                                                                        \
        if (st_ != CUDNN_STATUS_SUCCESS) {                                                                 \
            *err = dl_xasprintf("%s (%s:%d): %s", what, __FILE__, __LINE__, r->api.p_cudnnGetErrorString(st_)); \
            return -1;                                                                                     \
        }                                                                                                  \
    } while (0)

/* ---- opening ---------------------------------------------------------------- */

/* dlopen(file), once per process: the libraries are never closed (cuDNN,
 * cuBLAS and NVRTC carry their own static C++ runtimes, whose allocations an
 * unload would strand), so a second device or self-check reuses them. */
static void *open_once(const char *file)
{
    static struct { char *file; void *h; } seen[16];
    static int n;
    for (int i = 0; i < n; i++)
        if (!strcmp(seen[i].file, file)) return seen[i].h;
    void *h = dlopen(file, RTLD_NOW | RTLD_LOCAL);
    if (h && n < 16) seen[n].file = dl_xstrdup(file), seen[n++].h = h;
    return h;
}

/* Open library l and resolve its rows.  0, or -1 with *why. */
static int open_lib(Real *r, int l, char **why)
{
    const char *over = getenv(LIBS[l].env);
    DlBuf tried = {0};
    for (int i = 0; i < 5 && !r->lib[l]; i++) {
        const char *f = over && *over ? (i ? NULL : over) : LIBS[l].files[i];
        if (!f) break;
        r->lib[l] = open_once(f);
        if (!r->lib[l]) dl_buf_printf(&tried, "%s%s", tried.n ? ", " : "", f);
    }
    if (!r->lib[l]) {
        const char *e = dlerror();
        *why = dl_xasprintf("%s not found (tried %s%s%s): %s", LIBS[l].what, tried.s ? tried.s : "",
                            over && *over ? ", named by " : "", over && *over ? LIBS[l].env : "", e ? e : "");
        dl_buf_free(&tried);
        return -1;
    }
    dl_buf_free(&tried);
    for (size_t i = 0; i < sizeof SYMS / sizeof *SYMS; i++) {
        if (SYMS[i].lib != l) continue;
        void *s = dlsym(r->lib[l], SYMS[i].name);
        if (!s) {
            *why = dl_xasprintf("%s lacks %s (too old for this dldlrun, built against CUDA %d.%d)", LIBS[l].what,
                                SYMS[i].name, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
            return -1;
        }
        memcpy((char *)&r->api + SYMS[i].off, &s, sizeof s);
    }
    return 0;
}

/* Device <local rank mod count> (device 0 for one process) and what it is;
 * refused under compute capability DL_CUDA_MIN_CC. */
static int query_device(Real *r, DlCudaInfo *info, char **err)
{
    int n = 0, major = 0, minor = 0;
    size_t mem = 0;
    CU(r->api.p_cuInit(0), "cuInit");
    CU(r->api.p_cuDeviceGetCount(&n), "cuDeviceGetCount");
    if (n == 0) {
        *err = dl_xstrdup("cuDeviceGetCount: no CUDA device");
        return -1;
    }
    int ord = dl_cuda_local_rank() % n; /* one GPU per rank of a host (NCCL refuses two ranks on one GPU) */
    CU(r->api.p_cuDeviceGet(&r->dev, ord), "cuDeviceGet");
    CU(r->api.p_cuDeviceGetName(info->name, (int)sizeof info->name, r->dev), "cuDeviceGetName");
    CU(r->api.p_cuDeviceGetAttribute(&major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, r->dev),
       "cuDeviceGetAttribute");
    CU(r->api.p_cuDeviceGetAttribute(&minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, r->dev),
       "cuDeviceGetAttribute");
    CU(r->api.p_cuDeviceTotalMem(&mem, r->dev), "cuDeviceTotalMem");
    info->cc_major = major, info->cc_minor = minor, info->total_mem = mem;
    r->arch = 10 * major + minor;
    if (r->arch < DL_CUDA_MIN_CC) {
        *err = dl_xasprintf("GPU %d (%s) has compute capability %d.%d; dldl needs %d.%d or newer", ord, info->name,
                            major, minor, DL_CUDA_MIN_CC / 10, DL_CUDA_MIN_CC % 10);
        return -1;
    }
    return 0;
}

/* Its primary context, current on this thread, and the two streams. */
static int open_context(Real *r, char **err)
{
    CU(r->api.p_cuDevicePrimaryCtxRetain(&r->ctx, r->dev), "cuDevicePrimaryCtxRetain");
    CU(r->api.p_cuCtxSetCurrent(r->ctx), "cuCtxSetCurrent");
    for (int s = 0; s < DL_CUDA_NSTREAMS; s++)
        CU(r->api.p_cuStreamCreate(&r->stream[s], CU_STREAM_NON_BLOCKING), "cuStreamCreate");
    return 0;
}

static int open_libs(Real *r, char **err)
{
    BLAS(r->api.p_cublasCreate(&r->blas), "cublasCreate");
    BLAS(r->api.p_cublasSetStream(r->blas, (cudaStream_t)r->stream[DL_CUDA_COMPUTE]), "cublasSetStream");
    BLAS(r->api.p_cublasSetMathMode(r->blas, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");
    CU(r->api.p_cuMemAlloc(&r->blas_ws, BLAS_WS_BYTES), "cuMemAlloc");
    BLAS(r->api.p_cublasSetWorkspace(r->blas, (void *)(uintptr_t)r->blas_ws, BLAS_WS_BYTES), "cublasSetWorkspace");
    DNN(r->api.p_cudnnCreate(&r->dnn), "cudnnCreate");
    DNN(r->api.p_cudnnSetStream(r->dnn, (cudaStream_t)r->stream[DL_CUDA_COMPUTE]), "cudnnSetStream");
    return 0;
}

/* ---- memory, copies, events, graphs ------------------------------------------ */

static int re_alloc(DlCudaDev *d, size_t bytes, DlDevPtr *out, char **err)
{
    Real *r = R(d);
    CUdeviceptr p;
    CU(r->api.p_cuMemAlloc(&p, bytes ? bytes : 4), "cuMemAlloc");
    *out = p;
    CU(r->api.p_cuMemsetD32Async(p, 0, (bytes + 3) / 4, r->stream[DL_CUDA_COMPUTE]), "cuMemsetD32Async");
    CU(r->api.p_cuStreamSynchronize(r->stream[DL_CUDA_COMPUTE]), "cuStreamSynchronize");
    return 0;
}
static void re_free(DlCudaDev *d, DlDevPtr p) { R(d)->api.p_cuMemFree(p); }
static int re_host_register(DlCudaDev *d, void *p, size_t bytes, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuMemHostRegister(p, bytes, 0), "cuMemHostRegister");
    return 0;
}
static void re_host_unregister(DlCudaDev *d, void *p) { R(d)->api.p_cuMemHostUnregister(p); }
static int re_h2d(DlCudaDev *d, DlDevPtr dst, const void *src, size_t n, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuMemcpyHtoDAsync(dst, src, n, r->stream[s]), "cuMemcpyHtoDAsync");
    return 0;
}
static int re_d2h(DlCudaDev *d, void *dst, DlDevPtr src, size_t n, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuMemcpyDtoHAsync(dst, src, n, r->stream[s]), "cuMemcpyDtoHAsync");
    return 0;
}
static int re_d2d(DlCudaDev *d, DlDevPtr dst, DlDevPtr src, size_t n, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuMemcpyDtoDAsync(dst, src, n, r->stream[s]), "cuMemcpyDtoDAsync");
    return 0;
}
static int re_memset32(DlCudaDev *d, DlDevPtr dst, uint32_t v, size_t count, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuMemsetD32Async(dst, v, count, r->stream[s]), "cuMemsetD32Async");
    return 0;
}
static int re_event_new(DlCudaDev *d, DlDevEvent **e, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuEventCreate((CUevent *)e, CU_EVENT_DEFAULT), "cuEventCreate");
    return 0;
}
static void re_event_free(DlCudaDev *d, DlDevEvent *e) { R(d)->api.p_cuEventDestroy((CUevent)e); }
static int re_event_record(DlCudaDev *d, DlDevEvent *e, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuEventRecord((CUevent)e, r->stream[s]), "cuEventRecord");
    return 0;
}
static int re_stream_wait(DlCudaDev *d, int s, DlDevEvent *e, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuStreamWaitEvent(r->stream[s], (CUevent)e, 0), "cuStreamWaitEvent");
    return 0;
}
static int re_event_ms(DlCudaDev *d, DlDevEvent *a, DlDevEvent *b, float *ms, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuEventElapsedTime(ms, (CUevent)a, (CUevent)b), "cuEventElapsedTime");
    return 0;
}
/* dl_nccl_wait's question: whether stream *ctx has finished (1), not yet (0). */
typedef struct StreamDone { Real *r; int s; } StreamDone;
static int stream_done(void *ctx, char **err)
{
    StreamDone *q = ctx;
    Real *r = q->r;
    CUresult rc = r->api.p_cuStreamQuery(r->stream[q->s]);
    if (rc == CUDA_ERROR_NOT_READY) return 0;
    CU(rc, "cuStreamQuery");
    return 1;
}
static int re_stream_sync(DlCudaDev *d, int s, char **err)
{
    Real *r = R(d);
    if (r->nccl && r->coll_issued) { /* a dead rank must not block this forever */
        StreamDone q = {r, s};
        if (dl_nccl_wait(r->nccl, stream_done, &q, err) != 0) return -1;
        r->coll_issued = 0;
        return 0;
    }
    CU(r->api.p_cuStreamSynchronize(r->stream[s]), "cuStreamSynchronize");
    return 0;
}
static int re_graph_begin(DlCudaDev *d, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuStreamBeginCapture(r->stream[s], CU_STREAM_CAPTURE_MODE_THREAD_LOCAL), "cuStreamBeginCapture");
    return 0;
}
static int re_graph_end(DlCudaDev *d, int s, DlDevGraph **g, char **err)
{
    Real *r = R(d);
    CUgraph graph = NULL;
    CUgraphExec exec = NULL;
    CU(r->api.p_cuStreamEndCapture(r->stream[s], &graph), "cuStreamEndCapture");
    CUresult rc = r->api.p_cuGraphInstantiate(&exec, graph, 0);
    r->api.p_cuGraphDestroy(graph); /* the executable graph is independent of it */
    if (rc != CUDA_SUCCESS) return cu_fail(r, rc, "cuGraphInstantiate", __LINE__, err);
    *g = (DlDevGraph *)exec;
    return 0;
}
static int re_graph_launch(DlCudaDev *d, DlDevGraph *g, int s, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuGraphLaunch((CUgraphExec)g, r->stream[s]), "cuGraphLaunch");
    return 0;
}
static void re_graph_free(DlCudaDev *d, DlDevGraph *g)
{
    if (g) R(d)->api.p_cuGraphExecDestroy((CUgraphExec)g);
}

/* ---- the module -------------------------------------------------------------- */

typedef struct NvrtcJob { Real *r; const char *source; const char *const *opts; int nopts; } NvrtcJob;

static int nvrtc_fail(Real *r, nvrtcResult rc, const char *call, int line, nvrtcProgram prog, char **err)
{
    size_t n = 0;
    char *log = NULL;
    if (prog && r->api.p_nvrtcGetProgramLogSize(prog, &n) == NVRTC_SUCCESS && n > 1) {
        log = dl_xmalloc(n + 1);
        if (r->api.p_nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = 0;
        log[n] = 0;
    }
    *err = dl_xasprintf("%s (%s:%d): %s%s%s", call, __FILE__, line, r->api.p_nvrtcGetErrorString(rc), log ? "\n" : "",
                        log ? log : "");
    free(log);
    if (prog) r->api.p_nvrtcDestroyProgram(&prog);
    return -1;
}

/* DlCacheBuild: compile the module to a cubin at tmp. */
static int nvrtc_build(void *ctx, const char *tmp, char **err)
{
    NvrtcJob *j = ctx;
    Real *r = j->r;
    nvrtcProgram prog = NULL;
    nvrtcResult rc = r->api.p_nvrtcCreateProgram(&prog, j->source, "dldl_kernels.cu", 0, NULL, NULL);
    if (rc != NVRTC_SUCCESS) return nvrtc_fail(r, rc, "nvrtcCreateProgram", __LINE__, NULL, err);
    if ((rc = r->api.p_nvrtcCompileProgram(prog, j->nopts, j->opts)) != NVRTC_SUCCESS)
        return nvrtc_fail(r, rc, "nvrtcCompileProgram", __LINE__, prog, err);
    size_t n = 0;
    if ((rc = r->api.p_nvrtcGetCUBINSize(prog, &n)) != NVRTC_SUCCESS)
        return nvrtc_fail(r, rc, "nvrtcGetCUBINSize", __LINE__, prog, err);
    char *cubin = dl_xmalloc(n ? n : 1);
    if ((rc = r->api.p_nvrtcGetCUBIN(prog, cubin)) != NVRTC_SUCCESS) {
        free(cubin);
        return nvrtc_fail(r, rc, "nvrtcGetCUBIN", __LINE__, prog, err);
    }
    r->api.p_nvrtcDestroyProgram(&prog);
    int wr = dl_write_file_atomic(tmp, cubin, n);
    free(cubin);
    if (wr != 0) {
        *err = dl_xasprintf("cannot write '%s'", tmp);
        return -1;
    }
    return 0;
}

struct DlDevModule { CUmodule mod; };

/* The plan's CUDA module as a cubin for sm_<arch>, from the kernel cache or
 * compiled by NVRTC into it (key: source, options, NVRTC version, arch). */
static int nvrtc_cubin(Real *r, const char *source, int arch_num, unsigned char **cubin, size_t *size, int *hit,
                       double *secs, char **err)
{
    int major = 0, minor = 0;
    nvrtcResult vr = r->api.p_nvrtcVersion(&major, &minor);
    if (vr != NVRTC_SUCCESS) return nvrtc_fail(r, vr, "nvrtcVersion", __LINE__, NULL, err);
    char arch[32];
    snprintf(arch, sizeof arch, "-arch=sm_%d", arch_num);
    const char *opts[] = {arch, "-default-device", "--std=c++17"};
    DlBuf key = {0};
    dl_buf_put(&key, source, strlen(source));
    for (size_t i = 0; i < sizeof opts / sizeof *opts; i++) dl_buf_printf(&key, "\n%s", opts[i]);
    dl_buf_printf(&key, "\nnvrtc %d.%d\n", major, minor);
    char *name = dl_xasprintf("%016llx.sm_%d.cubin", (unsigned long long)XXH3_64bits(key.s, key.n), arch_num);
    dl_buf_free(&key);
    NvrtcJob job = {r, source, opts, (int)(sizeof opts / sizeof *opts)};
    double t0 = now_s();
    int rc = dl_cache_fetch(name, nvrtc_build, &job, cubin, size, hit, err);
    free(name);
    *secs = rc == 0 && !*hit ? now_s() - t0 : 0;
    return rc;
}

static int re_module_load(DlCudaDev *d, const char *source, const char *const *names, int n, DlDevModule **mp,
                          DlDevKernel *kernels, int *cache_hit, double *compile_s, char **err)
{
    Real *r = R(d);
    unsigned char *cubin = NULL;
    size_t size = 0;
    if (nvrtc_cubin(r, source, r->arch, &cubin, &size, cache_hit, compile_s, err) != 0) return -1;
    DlDevModule *m = dl_xcalloc(1, sizeof *m);
    CUresult cr = r->api.p_cuModuleLoadData(&m->mod, cubin);
    free(cubin);
    if (cr != CUDA_SUCCESS) {
        free(m);
        return cu_fail(r, cr, "cuModuleLoadData", __LINE__, err);
    }
    *mp = m;
    for (int i = 0; i < n; i++) {
        CUfunction f;
        cr = r->api.p_cuModuleGetFunction(&f, m->mod, names[i]);
        if (cr != CUDA_SUCCESS) {
            cu_fail(r, cr, "cuModuleGetFunction", __LINE__, err);
            char *w = dl_xasprintf("kernel '%s': %s", names[i], *err);
            free(*err);
            *err = w;
            return -1;
        }
        kernels[i] = f;
    }
    return 0;
}

static void re_module_unload(DlCudaDev *d, DlDevModule *m)
{
    if (!m) return;
    R(d)->api.p_cuModuleUnload(m->mod);
    free(m);
}

static int re_launch(DlCudaDev *d, DlDevKernel k, const KirLaunch *l, DlDevPtr argtab, int nargs, int64_t g0,
                     int64_t g1, int s, char **err)
{
    Real *r = R(d);
    long long a = (long long)g0, b = (long long)g1;
    void *params[] = {&argtab, &a, &b};
    if (l->shared_bytes > 48 * 1024) /* more than the default needs the kernel's consent */
        CU(r->api.p_cuFuncSetAttribute((CUfunction)k, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES,
                                       (int)l->shared_bytes),
           "cuFuncSetAttribute");
    CU(r->api.p_cuLaunchKernel((CUfunction)k, l->blocks, 1, 1, l->threads, 1, 1, l->shared_bytes, r->stream[s], params,
                               NULL),
       "cuLaunchKernel");
    return 0;
}

/* ---- cuDNN and cuBLAS ---------------------------------------------------------- */

struct DlDevConv {
    int kind;
    DlConvDesc d;
    cudnnTensorDescriptor_t x, y;
    cudnnFilterDescriptor_t w;
    cudnnConvolutionDescriptor_t conv;
    int algo;
};

static void conv_destroy(Real *r, DlDevConv *c)
{
    if (c->x) r->api.p_cudnnDestroyTensorDescriptor(c->x);
    if (c->y) r->api.p_cudnnDestroyTensorDescriptor(c->y);
    if (c->w) r->api.p_cudnnDestroyFilterDescriptor(c->w);
    if (c->conv) r->api.p_cudnnDestroyConvolutionDescriptor(c->conv);
    free(c);
}

/* The first deterministic algorithm of cuDNN's ranked heuristics (perf is an
 * array of one of the three perf struct types, all with algo, status and
 * determinism first). */
#define PICK(perf, n, out)                                                                                \
    do {                                                                                                  \
        (out) = -1;                                                                                       \
        for (int i_ = 0; i_ < (n) && (out) < 0; i_++)                                                     \
            if ((perf)[i_].status == CUDNN_STATUS_SUCCESS && (perf)[i_].determinism == CUDNN_DETERMINISTIC) \
                (out) = (int)(perf)[i_].algo;                                                             \
    } while (0)

static int conv_setup(Real *r, DlDevConv *c, size_t *ws, char **err)
{
    const DlConvDesc *d = &c->d;
    DNN(r->api.p_cudnnCreateTensorDescriptor(&c->x), "cudnnCreateTensorDescriptor");
    DNN(r->api.p_cudnnCreateTensorDescriptor(&c->y), "cudnnCreateTensorDescriptor");
    DNN(r->api.p_cudnnCreateFilterDescriptor(&c->w), "cudnnCreateFilterDescriptor");
    DNN(r->api.p_cudnnCreateConvolutionDescriptor(&c->conv), "cudnnCreateConvolutionDescriptor");
    DNN(r->api.p_cudnnSetTensor4dDescriptor(c->x, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->x[0], d->x[1], d->x[2], d->x[3]),
        "cudnnSetTensor4dDescriptor");
    DNN(r->api.p_cudnnSetTensor4dDescriptor(c->y, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, d->y[0], d->y[1], d->y[2], d->y[3]),
        "cudnnSetTensor4dDescriptor");
    DNN(r->api.p_cudnnSetFilter4dDescriptor(c->w, CUDNN_DATA_FLOAT, CUDNN_TENSOR_NCHW, d->w[0], d->w[1], d->w[2], d->w[3]),
        "cudnnSetFilter4dDescriptor");
    DNN(r->api.p_cudnnSetConvolution2dDescriptor(c->conv, d->pad, d->pad, d->stride, d->stride, d->dilation, d->dilation,
                                                 CUDNN_CROSS_CORRELATION, CUDNN_DATA_FLOAT),
        "cudnnSetConvolution2dDescriptor");
    DNN(r->api.p_cudnnSetConvolutionMathType(c->conv, CUDNN_FMA_MATH), "cudnnSetConvolutionMathType");
    int n = 0;
    switch (c->kind) {
    case DL_STEP_CONV_FWD: {
        cudnnConvolutionFwdAlgoPerf_t perf[CUDNN_CONVOLUTION_FWD_ALGO_COUNT];
        DNN(r->api.p_cudnnGetConvolutionForwardAlgorithm_v7(r->dnn, c->x, c->w, c->conv, c->y,
                                                            CUDNN_CONVOLUTION_FWD_ALGO_COUNT, &n, perf),
            "cudnnGetConvolutionForwardAlgorithm_v7");
        PICK(perf, n, c->algo);
        if (c->algo >= 0)
            DNN(r->api.p_cudnnGetConvolutionForwardWorkspaceSize(r->dnn, c->x, c->w, c->conv, c->y,
                                                                 (cudnnConvolutionFwdAlgo_t)c->algo, ws),
                "cudnnGetConvolutionForwardWorkspaceSize");
        break;
    }
    case DL_STEP_CONV_BWD_DATA: {
        cudnnConvolutionBwdDataAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT];
        DNN(r->api.p_cudnnGetConvolutionBackwardDataAlgorithm_v7(r->dnn, c->w, c->y, c->conv, c->x,
                                                                 CUDNN_CONVOLUTION_BWD_DATA_ALGO_COUNT, &n, perf),
            "cudnnGetConvolutionBackwardDataAlgorithm_v7");
        PICK(perf, n, c->algo);
        if (c->algo >= 0)
            DNN(r->api.p_cudnnGetConvolutionBackwardDataWorkspaceSize(r->dnn, c->w, c->y, c->conv, c->x,
                                                                      (cudnnConvolutionBwdDataAlgo_t)c->algo, ws),
                "cudnnGetConvolutionBackwardDataWorkspaceSize");
        break;
    }
    default: {
        cudnnConvolutionBwdFilterAlgoPerf_t perf[CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT];
        DNN(r->api.p_cudnnGetConvolutionBackwardFilterAlgorithm_v7(r->dnn, c->x, c->y, c->conv, c->w,
                                                                   CUDNN_CONVOLUTION_BWD_FILTER_ALGO_COUNT, &n, perf),
            "cudnnGetConvolutionBackwardFilterAlgorithm_v7");
        PICK(perf, n, c->algo);
        if (c->algo >= 0)
            DNN(r->api.p_cudnnGetConvolutionBackwardFilterWorkspaceSize(r->dnn, c->x, c->y, c->conv, c->w,
                                                                        (cudnnConvolutionBwdFilterAlgo_t)c->algo, ws),
                "cudnnGetConvolutionBackwardFilterWorkspaceSize");
    }
    }
    if (c->algo < 0) {
        *err = dl_xasprintf("cuDNN offers no deterministic algorithm for this convolution (%d candidates)", n);
        return -1;
    }
    return 0;
}

static int re_conv_new(DlCudaDev *d, int kind, const int64_t geom[12], DlDevConv **cp, size_t *ws, char **err)
{
    Real *r = R(d);
    DlDevConv *c = dl_xcalloc(1, sizeof *c);
    c->kind = kind;
    *ws = 0;
    if (dl_conv_desc(kind, geom, &c->d, err) != 0 || conv_setup(r, c, ws, err) != 0) {
        conv_destroy(r, c);
        return -1;
    }
    *cp = c;
    return 0;
}
static void re_conv_free(DlCudaDev *d, DlDevConv *c)
{
    if (c) conv_destroy(R(d), c);
}

static int re_conv_run(DlCudaDev *d, DlDevConv *c, DlDevPtr a, DlDevPtr b, DlDevPtr y, DlDevPtr ws, size_t wsn,
                       int s, char **err)
{
    Real *r = R(d);
    const float one = 1.0f, zero = 0.0f;
    DlDevPtr arg[3] = {a, b, y};
    void *px = (void *)(uintptr_t)arg[c->d.arg_x], *pw = (void *)(uintptr_t)arg[c->d.arg_w];
    void *py = (void *)(uintptr_t)arg[c->d.arg_y], *pws = (void *)(uintptr_t)ws;
    switch (c->kind) {
    case DL_STEP_CONV_FWD:
        DNN(r->api.p_cudnnConvolutionForward(r->dnn, &one, c->x, px, c->w, pw, c->conv, (cudnnConvolutionFwdAlgo_t)c->algo,
                                             pws, wsn, &zero, c->y, py),
            "cudnnConvolutionForward");
        break;
    case DL_STEP_CONV_BWD_DATA:
        DNN(r->api.p_cudnnConvolutionBackwardData(r->dnn, &one, c->w, pw, c->y, py, c->conv,
                                                  (cudnnConvolutionBwdDataAlgo_t)c->algo, pws, wsn, &zero, c->x, px),
            "cudnnConvolutionBackwardData");
        break;
    default:
        DNN(r->api.p_cudnnConvolutionBackwardFilter(r->dnn, &one, c->x, px, c->y, py, c->conv,
                                                    (cudnnConvolutionBwdFilterAlgo_t)c->algo, pws, wsn, &zero, c->w, pw),
            "cudnnConvolutionBackwardFilter");
    }
    return 0;
}

static int re_gemm(DlCudaDev *d, const int64_t i[5], DlDevPtr a, DlDevPtr b, DlDevPtr y, int s, char **err)
{
    Real *r = R(d);
    DlGemmArgs g;
    if (dl_gemm_args(i, &g, err) != 0) return -1;
    const float one = 1.0f, zero = 0.0f;
    BLAS(r->api.p_cublasSgemm(r->blas, g.transa ? CUBLAS_OP_T : CUBLAS_OP_N, g.transb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m,
                              g.n, g.k, &one, (const float *)(uintptr_t)b, g.lda, (const float *)(uintptr_t)a, g.ldb,
                              &zero, (float *)(uintptr_t)y, g.ldc),
         "cublasSgemm");
    return 0;
}

static int re_lib_ready(DlCudaDev *d, char **err) { return 0; }

/* ---- NCCL (cuda_nccl.c) ---------------------------------------------------------- */

static int re_coll_init(DlCudaDev *d, DlComm *comm, char **err)
{
    Real *r = R(d);
    CU(r->api.p_cuCtxSetCurrent(r->ctx), "cuCtxSetCurrent"); /* NCCL takes the thread's current device */
    return r->nccl ? 0 : dl_nccl_open(&r->nccl, comm, err);
}
static int re_coll_allreduce(DlCudaDev *d, DlDevPtr x, DlDevPtr y, int64_t n, int s, char **err)
{
    Real *r = R(d);
    if (!r->nccl) {
        *err = dl_xstrdup("ncclAllReduce: no NCCL communicator (coll_init was not called)");
        return -1;
    }
    r->coll_issued++;
    return dl_nccl_allreduce(r->nccl, x, y, (size_t)n, r->stream[s], err);
}
static void re_coll_free(DlCudaDev *d)
{
    Real *r = R(d);
    dl_nccl_free(r->nccl);
    r->nccl = NULL;
}

static void re_close(DlCudaDev *d)
{
    if (!d) return;
    Real *r = R(d);
    re_coll_free(d);
    if (r->api.p_cublasDestroy && r->blas) r->api.p_cublasDestroy(r->blas);
    if (r->api.p_cudnnDestroy && r->dnn) r->api.p_cudnnDestroy(r->dnn);
    if (r->blas_ws) r->api.p_cuMemFree(r->blas_ws);
    for (int s = 0; s < DL_CUDA_NSTREAMS; s++)
        if (r->stream[s]) r->api.p_cuStreamDestroy(r->stream[s]);
    if (r->ctx) r->api.p_cuDevicePrimaryCtxRelease(r->dev);
    free(r); /* the libraries stay loaded (open_once) */
    free(d);
}

/* The driver, device 0 and the toolkit libraries (every entry point), without
 * a context: what dl_cuda_real_probe and dl_cuda_real_open both check. */
static int probe(Real *r, DlCudaInfo *info, char **why)
{
    if (open_lib(r, LIB_CUDA, why) != 0 || query_device(r, info, why) != 0) return -1;
    for (int l = LIB_NVRTC; l < NLIBS; l++)
        if (open_lib(r, l, why) != 0) return -1;
    return 0;
}

int dl_cuda_real_probe(DlCudaInfo *info, char **why)
{
    Real *r = dl_xcalloc(1, sizeof *r);
    DlCudaInfo scratch;
    int rc = probe(r, info ? info : &scratch, why);
    free(r); /* the libraries stay loaded (open_once): opening the device after this is cheap */
    return rc;
}

int dl_cuda_real_selfcheck(const char *source, int arch, size_t *cubin_bytes, int *hit, char **why)
{
    Real *r = dl_xcalloc(1, sizeof *r);
    int rc = 0;
    for (int l = LIB_NVRTC; l < NLIBS && rc == 0; l++) rc = open_lib(r, l, why);
    if (rc == 0 && source) {
        unsigned char *cubin = NULL;
        double secs;
        rc = nvrtc_cubin(r, source, arch, &cubin, cubin_bytes, hit, &secs, why);
        if (rc == 0 && (*cubin_bytes < 4 || memcmp(cubin, "\177ELF", 4) != 0)) {
            *why = dl_xasprintf("NVRTC's cubin for sm_%d is not an ELF object", arch);
            rc = -1;
        }
        free(cubin);
    }
    free(r);
    return rc;
}

DlCudaDev *dl_cuda_real_open(char **why)
{
    DlCudaDev *d = dl_xcalloc(1, sizeof *d);
    Real *r = dl_xcalloc(1, sizeof *r);
    *d = (DlCudaDev){
        .kind = DL_CUDA_REAL, .impl = r,
        .mem_alloc = re_alloc, .mem_free = re_free, .host_register = re_host_register,
        .host_unregister = re_host_unregister, .copy_h2d = re_h2d, .copy_d2h = re_d2h, .copy_d2d = re_d2d,
        .memset32 = re_memset32,
        .module_load = re_module_load, .module_unload = re_module_unload, .launch = re_launch,
        .event_new = re_event_new, .event_free = re_event_free, .event_record = re_event_record,
        .stream_wait = re_stream_wait, .event_ms = re_event_ms, .stream_sync = re_stream_sync,
        .graph_begin = re_graph_begin, .graph_end = re_graph_end, .graph_launch = re_graph_launch,
        .graph_free = re_graph_free, .conv_new = re_conv_new, .conv_free = re_conv_free, .conv_run = re_conv_run,
        .gemm = re_gemm, .lib_ready = re_lib_ready, .coll_init = re_coll_init,
        .coll_allreduce = re_coll_allreduce, .coll_free = re_coll_free, .close = re_close,
    };
    /* the driver and the device first: "no GPU" is the common reason */
    if (probe(r, &d->info, why) != 0 || open_context(r, why) != 0 || open_libs(r, why) != 0) goto fail;
    return d;
fail:
    re_close(d);
    return NULL;
}

int dl_cuda_real_built(void) { return 1; }
#endif
