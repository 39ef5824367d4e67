/* test_cuda_backend.c - the CUDA backend's host logic, without a GPU
 * (runtime/cuda_dev.h, cuda_exec.h, cuda_desc.c, cuda_real.c, cuda_emu.c).
 *
 * - cuBLAS arguments: dl_gemm_args applied by a naive column-major SGEMM (the
 *   BLAS definition) gives the row-major product of plan.h's matmul step, for
 *   all four transpositions;
 * - cuDNN descriptors: dl_conv_desc's dimensions and argument positions per
 *   kind, and its refusals (an output size that disagrees, int overflow);
 * - launch shapes: kir_cuda_launch's blocks x threads cover the grid;
 * - the dlopen error paths of cuda_real.c: a missing libcuda names the file
 *   and the variable that chose it, a library without the entry points names
 *   the missing symbol, the toolkit's stub driver fails cuInit with its
 *   reason; every NVRTC, cuBLAS and cuDNN entry point resolves, and the age
 *   module compiles to an sm_80 cubin through the kernel cache;
 * - the emulated device's guards (a test double on the CPU, not a GPU): an
 *   unpinned host range, a host pointer as a device pointer, a range outside
 *   its allocation are refused; dereferencing a device address on the host
 *   faults; a captured graph replays its operations and a sync inside a
 *   capture is refused;
 * - a step kind with no CUDA implementation is refused at load, named;
 * - collective steps in one process (identity; a --ranks plan's train@2 on the
 *   emulated device against the CPU) and NCCL's table: a missing libnccl
 *   names itself, every entry point of this machine's resolves;
 *   DLDL_DEBUG=2's per-step scan names the same step as the CPU's;
 * - every spec in specs/, its batch set to 2: two training steps and an
 *   evaluation through the CUDA backend on the emulated device against the
 *   CPU backend, on the same synthetic inputs and initial weights: every
 *   parameter, optimizer slot and running statistic, the loss and the eval
 *   outputs agree within TOL (relative, with an absolute floor of TOL: the
 *   C kernels may contract a*b+c into an FMA where the emulated CUDA module,
 *   built with -ffp-contract=off, does not).  With DLDL_TEST_DEVICE=cuda
 *   (make test-gpu) the same comparison runs on the GPU, within TOL_GPU.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <glob.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../codegen/kir.h"
#include "../../common/util.h"
#include "../../compiler/compile.h"
#include "../../runtime/cuda_dev.h"
#include "../../runtime/cuda_nccl.h"
#include "../../runtime/exec.h"

#define TOL 1e-5      /* the emulated device against the CPU */
#define TOL_GPU 1e-3  /* a real GPU (make test-gpu): other expf/logf, cuDNN's summation orders */

/* DLDL_TEST_DEVICE=cuda (make test-gpu): the spec comparison on the GPU */
static DlDevice spec_device = DL_DEVICE_CUDA_EMU;
static double tol = TOL;

/* ---- cuBLAS arguments -------------------------------------------------------- */

/* BLAS SGEMM, column-major: C[m,n] = op(A) op(B), op(A) [m,k], op(B) [k,n]. */
static void sgemm_colmajor(int ta, int tb, int m, int n, int k, const float *A, int lda, const float *B, int ldb,
                           float *C, int ldc)
{
    for (int j = 0; j < n; j++)
        for (int i = 0; i < m; i++) {
            double s = 0;
            for (int l = 0; l < k; l++)
                s += (double)(ta ? A[l + i * lda] : A[i + l * lda]) * (double)(tb ? B[j + l * ldb] : B[l + j * ldb]);
            C[i + j * ldc] = (float)s;
        }
}

static void test_gemm_args(void **state)
{
    enum { M = 3, N = 5, K = 4 };
    float a[M * K], b[K * N], y[M * N], want[M * N];
    for (int i = 0; i < M * K; i++) a[i] = (float)(i % 7) - 3.0f;
    for (int i = 0; i < K * N; i++) b[i] = (float)(i % 5) * 0.5f - 1.0f;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            /* row-major reference: a is [M,K] or, transposed, [K,M]; b is [K,N] or [N,K] */
            for (int i = 0; i < M; i++)
                for (int j = 0; j < N; j++) {
                    double s = 0;
                    for (int l = 0; l < K; l++)
                        s += (double)(ta ? a[l * M + i] : a[i * K + l]) * (double)(tb ? b[j * K + l] : b[l * N + j]);
                    want[i * N + j] = (float)s;
                }
            int64_t geo[5] = {M, N, K, ta, tb};
            DlGemmArgs g;
            char *why = NULL;
            assert_int_equal(dl_gemm_args(geo, &g, &why), 0);
            sgemm_colmajor(g.transa, g.transb, g.m, g.n, g.k, b, g.lda, a, g.ldb, y, g.ldc);
            for (int i = 0; i < M * N; i++) assert_float_equal(y[i], want[i], 1e-6);
        }
    int64_t bad[5] = {3, 0, 2, 0, 0}, huge[5] = {1, (int64_t)1 << 31, 1, 0, 0};
    DlGemmArgs g;
    char *why = NULL;
    assert_int_equal(dl_gemm_args(bad, &g, &why), -1);
    assert_non_null(strstr(why, "N=0"));
    free(why);
    assert_int_equal(dl_gemm_args(huge, &g, &why), -1);
    free(why);
}

/* ---- cuDNN descriptors ------------------------------------------------------- */

static void test_conv_desc(void **state)
{
    /* B,C,H,W, O,kh,kw, stride,pad, OH,OW, dilate: 3x3 stride 2 pad 1 of 7x9 -> 4x5 */
    const int64_t geo[12] = {2, 3, 7, 9, 8, 3, 3, 2, 1, 4, 5, 0};
    DlConvDesc d;
    char *why = NULL;
    static const int pos[3][3] = {{0, 1, 2}, {2, 1, 0}, {0, 2, 1}}; /* x, w, y of fwd, bwd data, bwd filter */
    for (int kind = DL_STEP_CONV_FWD; kind <= DL_STEP_CONV_BWD_FILTER; kind++) {
        assert_int_equal(dl_conv_desc(kind, geo, &d, &why), 0);
        const int x[4] = {2, 3, 7, 9}, w[4] = {8, 3, 3, 3}, y[4] = {2, 8, 4, 5};
        assert_memory_equal(d.x, x, sizeof x);
        assert_memory_equal(d.w, w, sizeof w);
        assert_memory_equal(d.y, y, sizeof y);
        assert_int_equal(d.pad, 1);
        assert_int_equal(d.stride, 2);
        assert_int_equal(d.dilation, 1);
        const int *p = pos[kind - DL_STEP_CONV_FWD];
        assert_int_equal(d.arg_x, p[0]);
        assert_int_equal(d.arg_w, p[1]);
        assert_int_equal(d.arg_y, p[2]);
    }
    int64_t wrong[12];
    memcpy(wrong, geo, sizeof wrong);
    wrong[9] = 5;
    assert_int_equal(dl_conv_desc(DL_STEP_CONV_FWD, wrong, &d, &why), -1);
    assert_non_null(strstr(why, "gives 4x5, the plan says 5x5"));
    free(why);
    memcpy(wrong, geo, sizeof wrong);
    wrong[1] = (int64_t)1 << 32;
    assert_int_equal(dl_conv_desc(DL_STEP_CONV_FWD, wrong, &d, &why), -1);
    assert_non_null(strstr(why, "outside cuDNN's range"));
    free(why);
    assert_int_equal(dl_conv_desc(DL_STEP_MATMUL, geo, &d, &why), -1);
    free(why);
    /* dilation 2: the 3x3 taps span 5x5; pad 2 keeps 7x9 */
    const int64_t dil[12] = {2, 3, 7, 9, 8, 3, 3, 1, 2, 7, 9, 1};
    assert_int_equal(dl_conv_desc(DL_STEP_CONV_FWD, dil, &d, &why), 0);
    assert_int_equal(d.dilation, 2);
    assert_int_equal(d.pad, 2);
}

/* ---- launch shapes ------------------------------------------------------------- */

static void test_launch_shape(void **state)
{
    KirKernel k;
    kir_init(&k, "k", (int64_t)1 << 40);
    const int64_t grids[] = {1, 255, 256, 257, 1000000, (int64_t)1 << 40};
    for (size_t i = 0; i < sizeof grids / sizeof *grids; i++) {
        KirLaunch l;
        char *why = NULL;
        assert_int_equal(kir_cuda_launch(&k, grids[i], &l, &why), 0);
        assert_true(l.threads >= 1 && l.threads <= 1024 && l.blocks >= 1 && l.blocks <= KIR_CUDA_MAX_BLOCKS);
        /* a grid-stride loop: one pass when it fits, the rest strided over */
        int64_t cover = (int64_t)l.blocks * l.threads;
        assert_true(cover >= grids[i] || l.blocks == KIR_CUDA_MAX_BLOCKS);
        assert_true(cover < grids[i] + l.threads || l.blocks == 1);
    }
    KirLaunch l;
    char *why = NULL;
    assert_int_equal(kir_cuda_launch(&k, 0, &l, &why), -1);
    free(why);
    kir_free(&k);
}

/* ---- cuda_real.c's dlopen errors ------------------------------------------------ */

static void test_real_open_errors(void **state)
{
    char *why = NULL;
    if (!dl_cuda_real_built()) { /* then every entry point says why */
        assert_null(dl_cuda_real_open(&why));
        assert_non_null(strstr(why, "built without the CUDA toolkit's headers"));
        free(why);
        printf("SKIPPED: cuda_real.c's library checks (built without the CUDA headers)\n");
        return;
    }
    setenv("DLDL_LIBCUDA", "/nonexistent/libcuda.so.1", 1);
    assert_null(dl_cuda_real_open(&why));
    assert_non_null(strstr(why, "NVIDIA driver"));
    assert_non_null(strstr(why, "/nonexistent/libcuda.so.1"));
    assert_non_null(strstr(why, "DLDL_LIBCUDA"));
    free(why);
    setenv("DLDL_LIBCUDA", "libm.so.6", 1); /* a library, but not the driver */
    assert_null(dl_cuda_real_open(&why));
    assert_non_null(strstr(why, "lacks cuInit"));
    free(why);
    /* the toolkit's stub driver: every entry point resolves, cuInit fails and says why */
    const char *stub = "/usr/local/cuda/lib64/stubs/libcuda.so";
    if (access(stub, R_OK) == 0) {
        setenv("DLDL_LIBCUDA", stub, 1);
        assert_null(dl_cuda_real_open(&why));
        assert_non_null(strstr(why, "cuInit (runtime/cuda_real.c:"));
        assert_non_null(strstr(why, "CUDA_ERROR_STUB_LIBRARY"));
        free(why);
        assert_int_equal(dl_cuda_real_probe(NULL, &why), -1); /* dldlrun's early question: the same answer */
        assert_non_null(strstr(why, "CUDA_ERROR_STUB_LIBRARY"));
        free(why);
    } else {
        printf("SKIPPED: the stub driver check (no %s)\n", stub);
    }
    unsetenv("DLDL_LIBCUDA");
    setenv("DLDL_LIBCUDNN", "/nonexistent/libcudnn.so.9", 1);
    assert_int_equal(dl_cuda_real_selfcheck(NULL, 80, NULL, NULL, &why), -1);
    assert_non_null(strstr(why, "cuDNN 9 not found (tried /nonexistent/libcudnn.so.9, named by DLDL_LIBCUDNN)"));
    free(why);
    unsetenv("DLDL_LIBCUDNN");
    /* this machine: no GPU is expected; whatever the reason, it is one line naming a library or a call */
    DlCudaDev *d = dl_cuda_real_open(&why);
    if (d) d->close(d);
    else {
        assert_null(strchr(why, '\n'));
        free(why);
    }
}

/* ---- NVRTC, cuBLAS and cuDNN without a GPU --------------------------------------- */

/* Every entry point of the toolkit libraries resolves, and the age spec's CUDA
 * module compiles to a cubin for sm_80 through the kernel cache
 * (a second compile is a cache hit). */
static void test_real_libs_and_cubin(void **state)
{
    char *why = NULL;
    if (!dl_cuda_real_built()) {
        printf("SKIPPED: NVRTC, cuBLAS, cuDNN (built without the CUDA headers)\n");
        return;
    }
    if (dl_cuda_real_selfcheck(NULL, 0, NULL, NULL, &why) != 0) fail_msg("%s", why);
    char dir[] = "/tmp/dldl_test_cubin_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *old = getenv("DLDL_CACHE");
    char *keep = old ? dl_xstrdup(old) : NULL;
    setenv("DLDL_CACHE", dir, 1); /* a cold cache: NVRTC compiles */
    char *cuda = NULL;
    size_t len = 0;
    FILE *mem = open_memstream(&cuda, &len);
    CompileOptions o = {.spec = "specs/age.dldl", .emit = EMIT_CUDA};
    assert_int_equal(compile_run(&o, mem, stderr), 0);
    fclose(mem);
    struct { char *s; } text = {cuda};
    /* sm_80 (tests/run.sh's ptx section compiles every spec for compute_80 and compute_90) */
    size_t n = 0;
    int hit = -1;
    if (dl_cuda_real_selfcheck(text.s, 80, &n, &hit, &why) != 0) fail_msg("sm_80: %s", why);
    assert_int_equal(hit, 0);
    assert_true(n > 1000);
    assert_int_equal(dl_cuda_real_selfcheck(text.s, 80, &n, &hit, &why), 0);
    assert_int_equal(hit, 1);
    free(cuda);
    if (keep) setenv("DLDL_CACHE", keep, 1);
    else unsetenv("DLDL_CACHE");
    free(keep);
    char *rm = dl_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

/* ---- the emulated device's guards and graphs --------------------------------------- */

static void test_emu_guards(void **state)
{
    char *why = NULL;
    DlCudaDev *d = dl_cuda_emu_open(1, &why);
    assert_non_null(d);
    assert_true(d->info.emulated);
    assert_non_null(strstr(d->info.name, "a test double on the CPU, not a GPU"));
    DlDevPtr p;
    assert_int_equal(d->mem_alloc(d, 64, &p, &why), 0);
    float *host, *back; /* a page each: pinning is page-granular */
    assert_int_equal(posix_memalign((void **)&host, 4096, 4096), 0);
    assert_int_equal(posix_memalign((void **)&back, 4096, 4096), 0);
    memset(host, 0, 4096), memset(back, 0, 4096);
    /* unpinned (copies are queued: the error comes with the synchronisation) */
    assert_int_equal(d->copy_h2d(d, p, host, 16 * sizeof(float), DL_CUDA_COPY, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COPY, &why), -1);
    assert_non_null(strstr(why, "not pinned"));
    free(why);
    assert_int_equal(d->host_register(d, host, 16 * sizeof(float), &why), 0);
    assert_int_equal(d->host_register(d, back, 16 * sizeof(float), &why), 0);
    assert_int_equal(d->host_register(d, back + 100, 4, &why), -1); /* the same page again */
    assert_non_null(strstr(why, "CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED"));
    free(why);
    /* a host pointer as a device pointer; a range past the allocation */
    assert_int_equal(d->copy_h2d(d, (DlDevPtr)(uintptr_t)back, host, 16 * sizeof(float), DL_CUDA_COPY, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COPY, &why), -1);
    assert_non_null(strstr(why, "not a device address"));
    free(why);
    assert_int_equal(d->copy_h2d(d, p + 32, host, 16 * sizeof(float), DL_CUDA_COPY, &why), 0); /* 256-byte granules */
    assert_int_equal(d->stream_sync(d, DL_CUDA_COPY, &why), 0);
    assert_int_equal(d->copy_h2d(d, p + 250, host, 16 * sizeof(float), DL_CUDA_COPY, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COPY, &why), -1);
    assert_non_null(strstr(why, "not inside a live allocation"));
    free(why);
    /* a device pointer as a host pointer */
    assert_int_equal(d->copy_d2h(d, (void *)(uintptr_t)p, p, 4, DL_CUDA_COMPUTE, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COMPUTE, &why), -1);
    assert_non_null(strstr(why, "device address passed as a host pointer"));
    free(why);
    /* the host cannot read a device address: it faults (not under ASan, whose
       SEGV handler would report the fault instead of dying of it) */
#ifndef __SANITIZE_ADDRESS__
    pid_t pid = fork();
    if (pid == 0) { /* cmocka catches SIGSEGV: the default action for this child */
        signal(SIGSEGV, SIG_DFL);
        signal(SIGBUS, SIG_DFL);
        volatile float *f = (volatile float *)(uintptr_t)p;
        _exit((int)f[0] == 12345 ? 0 : 1);
    }
    int st = 0;
    waitpid(pid, &st, 0);
    assert_true(WIFSIGNALED(st) && (WTERMSIG(st) == SIGSEGV || WTERMSIG(st) == SIGBUS));
#endif
    /* a graph: captured operations run only when it is launched, each time */
    for (int i = 0; i < 16; i++) host[i] = (float)i;
    assert_int_equal(d->graph_begin(d, DL_CUDA_COMPUTE, &why), 0);
    assert_int_equal(d->memset32(d, p, 0x3f800000u, 16, DL_CUDA_COMPUTE, &why), 0); /* 1.0f */
    assert_int_equal(d->copy_d2h(d, back, p, 16 * sizeof(float), DL_CUDA_COMPUTE, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COMPUTE, &why), -1);
    assert_non_null(strstr(why, "captured"));
    free(why);
    DlDevGraph *g;
    assert_int_equal(d->graph_end(d, DL_CUDA_COMPUTE, &g, &why), 0);
    assert_float_equal(back[3], 0.0f, 0);
    assert_int_equal(d->graph_launch(d, g, DL_CUDA_COMPUTE, &why), 0);
    assert_float_equal(back[3], 0.0f, 0); /* queued: it runs at the synchronisation */
    assert_int_equal(d->stream_sync(d, DL_CUDA_COMPUTE, &why), 0);
    assert_float_equal(back[3], 1.0f, 0);
    back[3] = 7;
    assert_int_equal(d->graph_launch(d, g, DL_CUDA_COMPUTE, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COMPUTE, &why), 0);
    assert_float_equal(back[3], 1.0f, 0);
    /* an asynchronous error is reported by the next synchronisation */
    assert_int_equal(d->copy_h2d(d, p + 250, host, 16 * sizeof(float), DL_CUDA_COPY, &why), 0);
    assert_int_equal(d->stream_sync(d, DL_CUDA_COMPUTE, &why), -1);
    assert_non_null(strstr(why, "not inside a live allocation"));
    free(why);
    d->graph_free(d, g);
    d->host_unregister(d, host);
    d->host_unregister(d, back);
    free(host), free(back);
    d->mem_free(d, p);
    d->close(d);
}

/* ---- every spec: the emulated CUDA backend against the CPU backend ----------------- */

/* specs/NAME.dldl with every `batch = N` and `eval_batch = N` set to 2, compiled to dir/NAME.plan. */
/* spec with its batch sizes set to 2, compiled into dir (with train@N
 * programs for the nranks counts in ranks). */
static DlPlan *small_plan_ranks(const char *spec, const char *dir, const int *ranks, int nranks)
{
    FILE *f = fopen(spec, "rb");
    assert_non_null(f);
    DlBuf b = {0};
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *s = line + strspn(line, " \t");
        if ((!strncmp(s, "batch", 5) && strspn(s + 5, " \t=") > 0) || !strncmp(s, "eval_batch", 10)) {
            char *eq = strchr(s, '=');
            if (eq && strspn(eq + 1 + strspn(eq + 1, " \t"), "0123456789") > 0) {
                dl_buf_printf(&b, "%.*s= 2\n", (int)(eq - line), line);
                continue;
            }
        }
        dl_buf_put(&b, line, strlen(line));
    }
    fclose(f);
    const char *base = strrchr(spec, '/') ? strrchr(spec, '/') + 1 : spec;
    char *src = dl_xasprintf("%s/%s", dir, base), *out = dl_xasprintf("%s/%s.plan", dir, base);
    assert_int_equal(dl_write_file_atomic(src, b.s, b.n), 0);
    dl_buf_free(&b);
    CompileOptions o = {.spec = src, .output = out, .ranks = ranks, .nranks = nranks};
    if (compile_run(&o, stdout, stderr) != 0) fail_msg("%s: dldlc failed", src);
    char *err = NULL;
    DlPlan *p = dl_plan_read(out, &err);
    if (!p) fail_msg("%s: %s", out, err);
    free(src), free(out);
    return p;
}
static DlPlan *small_plan(const char *spec, const char *dir) { return small_plan_ranks(spec, dir, NULL, 0); }

/* Deterministic synthetic inputs of program pi (the same on both backends). */
static void feed(DlExec *e, const DlPlan *p, int pi, int step)
{
    const DlPlanProgram *pr = &p->programs[pi];
    for (int si = 0; si < pr->nsteps; si++)
        for (int k = 0; k < pr->steps[si].nargs; k++) {
            int t = pr->steps[si].args[k];
            const DlPlanTensor *x = &p->tensors[t];
            if (x->arena != DL_AR_INPUT) continue;
            float *v = dl_exec_tensor(e, t);
            uint64_t s = 0x9E3779B97F4A7C15ULL * (uint64_t)(t + 1) + (uint64_t)step;
            for (int64_t i = 0; i < x->numel; i++) {
                s = s * 6364136223846793005ULL + 1442695040888963407ULL;
                v[i] = (float)((s >> 40) & 0xFFFF) / 65536.0f; /* [0, 1) */
            }
            if (x->role == DL_ROLE_INPUT)
                for (int64_t i = 0; i < x->numel; i++) v[i] = 2 * v[i] - 1;
            if (x->role == DL_ROLE_TARGET && x->ndim == 2) { /* rows of a distribution */
                int64_t K = x->shape[1];
                for (int64_t r = 0; r < x->shape[0]; r++) {
                    double sum = 0;
                    for (int64_t c = 0; c < K; c++) sum += v[r * K + c] += 0.01f;
                    for (int64_t c = 0; c < K; c++) v[r * K + c] = (float)(v[r * K + c] / sum);
                }
            }
            if (x->role == DL_ROLE_LABEL)
                for (int64_t i = 0; i < x->numel; i++) v[i] = floorf(5 * v[i]); /* small whole labels */
            if (x->role == DL_ROLE_SCALARS && x->numel >= 4) v[0] = 0.01f, v[1] = 0.9f, v[2] = (float)step, v[3] = 3;
        }
}

static double compare(const char *what, const float *got, const float *want, int64_t n)
{
    double worst = 0;
    int64_t at = -1;
    for (int64_t i = 0; i < n; i++) {
        double d = fabs((double)got[i] - (double)want[i]) / fmax(1.0, fabs((double)want[i]));
        if (!(d <= worst)) worst = d, at = i; /* NaN counts as worst */
    }
    if (!(worst <= tol))
        fail_msg("%s: element %lld is %.9g on %s, %.9g on the CPU (%.3g)", what, (long long)at, got[at],
                 spec_device == DL_DEVICE_CUDA ? "the GPU" : "the emulated CUDA device", want[at], worst);
    return worst;
}

/* A step kind the backend cannot run (here: the first kind past the plan's
 * table) is refused at load, named. */
static void test_unknown_step_refused(void **state)
{
    char dir[] = "/tmp/dldl_test_cuda_XXXXXX";
    assert_non_null(mkdtemp(dir));
    DlPlan *p = small_plan("specs/ldl_maxent.dldl", dir);
    int tr = dl_plan_find_program(p, "train");
    DlPlanStep *s = &p->programs[tr].steps[p->programs[tr].nsteps - 1];
    s->kind = DL_STEP_COUNT;
    DlExecOpts o = {.nthreads = 1, .device = DL_DEVICE_CUDA_EMU};
    char *err = NULL;
    assert_null(dl_exec_load(p, &o, &err));
    char *want = dl_xasprintf("program 'train' step %d '%s': step kind %d has no CUDA implementation",
                              p->programs[tr].nsteps - 1, s->label ? s->label : "", DL_STEP_COUNT);
    if (!strstr(err, want)) fail_msg("got: %s\nwanted: %s", err, want);
    free(want), free(err);
    dl_plan_free(p);
    char *rm = dl_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

/* DLDL_DEBUG=2 on the CUDA backend names the same step as the CPU's scan when
 * inputs near FLT_MAX overflow (every step's arguments brought back). */
static void test_debug_scan(void **state)
{
    char dir[] = "/tmp/dldl_test_cuda_XXXXXX";
    assert_non_null(mkdtemp(dir));
    DlPlan *p = small_plan("specs/ldl_mlp.dldl", dir);
    int tr = dl_plan_find_program(p, "train");
    char *msg[2] = {NULL, NULL};
    for (int g = 0; g < 2; g++) {
        DlExecOpts o = {.nthreads = 1, .debug = 2, .layout = DL_CONV_PLAIN,
                        .device = g ? DL_DEVICE_CUDA_EMU : DL_DEVICE_CPU};
        char *err = NULL;
        DlExec *e = dl_exec_load(p, &o, &err);
        if (!e) fail_msg("%s", err);
        dl_exec_init_params(e, 1);
        feed(e, p, tr, 0);
        for (int t = 0; t < p->ntensors; t++)
            if (p->tensors[t].role == DL_ROLE_INPUT) {
                float *v = dl_exec_tensor(e, t);
                for (int64_t i = 0; i < p->tensors[t].numel; i++) v[i] = 3e38f;
            }
        assert_int_equal(dl_exec_run(e, tr, &msg[g]), -1);
        dl_exec_free(e);
    }
    const char *q = strchr(msg[0], '\''); /* "step N 'label'" */
    q = q ? strchr(q + 1, '\'') : NULL;
    assert_non_null(q);
    if (strncmp(msg[0], msg[1], (size_t)(q - msg[0] + 1)) != 0 || !strstr(msg[1], "non-finite"))
        fail_msg("CPU: %s\nemulated CUDA: %s", msg[0], msg[1]);
    printf("DLDL_DEBUG=2 on the emulated device: %s\n", msg[1]);
    free(msg[0]), free(msg[1]);
    dl_plan_free(p);
    char *rm = dl_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

/* The collective steps in one process (no communicator): the train@2
 * program of specs/age.dldl (gradient buckets all-reduced in place, the
 * synchronised batch norms' sums out of place) run on the emulated device
 * gives the CPU's parameters, optimizer slots and running statistics after
 * two steps (an all-reduce over one rank is the identity, a copy when out of
 * place); the device's all-reduce without coll_init is refused, named. */
static void test_collectives_one_process(void **state)
{
    char dir[] = "/tmp/dldl_test_cuda_XXXXXX";
    assert_non_null(mkdtemp(dir));
    const int ranks[] = {2};
    DlPlan *p = small_plan_ranks("specs/age.dldl", dir, ranks, 1);
    int tr = dl_plan_find_program(p, "train@2"), inplace = 0, outofplace = 0;
    assert_true(tr >= 0);
    for (int si = 0; si < p->programs[tr].nsteps; si++)
        if (p->programs[tr].steps[si].kind == DL_STEP_ALLREDUCE_START)
            p->programs[tr].steps[si].nargs ? outofplace++ : inplace++;
    assert_true(inplace > 0 && outofplace > 0);
    DlExecOpts co = {.nthreads = 1, .layout = DL_CONV_PLAIN, .device = DL_DEVICE_CPU}, go = co;
    go.device = DL_DEVICE_CUDA_EMU;
    char *err = NULL;
    DlExec *cpu = dl_exec_load(p, &co, &err), *gpu = cpu ? dl_exec_load(p, &go, &err) : NULL;
    if (!gpu) fail_msg("train@2 on the emulated device: %s", err);
    dl_exec_init_params(cpu, 11);
    dl_exec_init_params(gpu, 11);
    for (int step = 0; step < 2; step++) {
        feed(cpu, p, tr, step);
        feed(gpu, p, tr, step);
        if (dl_exec_run(cpu, tr, &err) != 0 || dl_exec_run(gpu, tr, &err) != 0) fail_msg("train@2: %s", err);
    }
    float *const *ga = dl_exec_arenas(gpu), *const *ca = dl_exec_arenas(cpu);
    static const int kept[] = {DL_AR_PARAM, DL_AR_OPT, DL_AR_STATE};
    double worst = 0;
    for (int k = 0; k < 3; k++) {
        char *what = dl_xasprintf("train@2, one process: arena '%s' after two steps", dl_arena_name[kept[k]]);
        worst = fmax(worst, compare(what, ga[kept[k]], ca[kept[k]], p->arena_size[kept[k]]));
        free(what);
    }
    printf("train@2 of specs/age.dldl in one process, emulated device vs CPU: largest difference %.2e\n", worst);
    dl_exec_free(cpu);
    dl_exec_free(gpu);
    dl_plan_free(p);
    char *rm = dl_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
    /* the device entry itself, without a communicator */
    DlCudaDev *d = dl_cuda_emu_open(1, &err);
    if (!d) fail_msg("%s", err);
    DlDevPtr x;
    assert_int_equal(d->mem_alloc(d, 64, &x, &err), 0);
    assert_int_equal(d->coll_allreduce(d, x, x, 16, DL_CUDA_COMPUTE, &err), -1);
    assert_non_null(strstr(err, "ncclAllReduce (emulated CUDA device): no communicator"));
    free(err);
    d->mem_free(d, x);
    d->close(d);
}

/* NCCL's table (cuda_nccl.c, typed from nccl.h at compile time): a missing
 * library names the file, the variable that chose it and the package; a
 * library without the entry points names the first missing one; this
 * machine's libnccl resolves every entry point and is 2.9 or newer (graph
 * capture of collectives; the backend does not capture them yet).  The local
 * rank that picks each rank's GPU. */
static void test_nccl_table(void **state)
{
    char *why = NULL;
    int version = 0;
    /* the GPU of each rank of a host: its local rank as the launcher says (Open MPI's, else Slurm's) */
    assert_int_equal(dl_cuda_local_rank(), 0);
    setenv("SLURM_LOCALID", "5", 1);
    assert_int_equal(dl_cuda_local_rank(), 5);
    setenv("OMPI_COMM_WORLD_LOCAL_RANK", "3", 1);
    assert_int_equal(dl_cuda_local_rank(), 3);
    unsetenv("OMPI_COMM_WORLD_LOCAL_RANK"), unsetenv("SLURM_LOCALID");
    const char *old = getenv("DLDL_LIBNCCL");
    char *keep = old ? dl_xstrdup(old) : NULL;
    setenv("DLDL_LIBNCCL", "/nonexistent/libnccl.so.2", 1);
    assert_int_equal(dl_nccl_check(&version, &why), -1);
    if (strstr(why, "built without NCCL's header")) {
        printf("SKIPPED: NCCL's table (built without nccl.h)\n");
        free(why);
        goto out;
    }
    if (!strstr(why, "NCCL (Debian/NVIDIA's libnccl2, needed by --device cuda under mpirun) not found (tried "
                     "/nonexistent/libnccl.so.2, named by DLDL_LIBNCCL)"))
        fail_msg("got: %s", why);
    free(why);
    setenv("DLDL_LIBNCCL", "libm.so.6", 1); /* a library, but not NCCL */
    assert_int_equal(dl_nccl_check(&version, &why), -1);
    assert_non_null(strstr(why, "lacks ncclGetVersion"));
    free(why);
    unsetenv("DLDL_LIBNCCL");
    if (dl_nccl_check(&version, &why) != 0) {
        printf("SKIPPED: this machine's NCCL (%s)\n", why);
        free(why);
        goto out;
    }
    printf("NCCL %d.%d.%d: every entry point resolves\n", version / 10000, version / 100 % 100, version % 100);
    assert_true(version >= 20900);
    setenv("DLDL_LIBNCCL", "/nonexistent/libnccl.so.2", 1); /* another file named: opened again, and refused */
    assert_int_equal(dl_nccl_check(&version, &why), -1);
    assert_non_null(strstr(why, "named by DLDL_LIBNCCL"));
    free(why);
out:
    if (keep) setenv("DLDL_LIBNCCL", keep, 1);
    else unsetenv("DLDL_LIBNCCL");
    free(keep);
}

static void test_specs_match_cpu(void **state)
{
    char dir[] = "/tmp/dldl_test_cuda_XXXXXX";
    assert_non_null(mkdtemp(dir));
    glob_t gl;
    assert_int_equal(glob("specs/*.dldl", 0, NULL, &gl), 0);
    assert_true(gl.gl_pathc >= 8);
    for (size_t si = 0; si < gl.gl_pathc; si++) {
        const char *spec = gl.gl_pathv[si];
        DlPlan *p = small_plan(spec, dir);
        DlExecOpts co = {.nthreads = 1, .layout = DL_CONV_PLAIN, .device = DL_DEVICE_CPU}, go = co;
        go.device = spec_device;
        char *err = NULL;
        DlExec *cpu = dl_exec_load(p, &co, &err), *gpu = cpu ? dl_exec_load(p, &go, &err) : NULL;
        if (!gpu) fail_msg("%s: %s", spec, err);
        if (spec_device == DL_DEVICE_CUDA_EMU) assert_non_null(strstr(dl_exec_device(gpu), "emulated"));
        dl_exec_init_params(cpu, 11);
        dl_exec_init_params(gpu, 11);
        int tr = dl_plan_find_program(p, "train"), ev = dl_plan_find_program(p, "eval");
        assert_true(tr >= 0 && ev >= 0);
        for (int step = 0; step < 2; step++) {
            feed(cpu, p, tr, step);
            feed(gpu, p, tr, step);
            if (dl_exec_run(cpu, tr, &err) != 0 || dl_exec_run(gpu, tr, &err) != 0) fail_msg("%s: %s", spec, err);
        }
        double worst = 0;
        for (int o = 0; o < p->noutputs; o++) /* the last step's loss */
            if (p->outputs[o].program == tr) {
                int t = p->outputs[o].tensor;
                char *what = dl_xasprintf("%s: train output '%s'", spec, p->outputs[o].name);
                worst = fmax(worst, compare(what, dl_exec_tensor(gpu, t), dl_exec_tensor(cpu, t), p->tensors[t].numel));
                free(what);
            }
        float *const *ga = dl_exec_arenas(gpu), *const *ca = dl_exec_arenas(cpu);
        static const int kept[] = {DL_AR_PARAM, DL_AR_OPT, DL_AR_STATE};
        for (int k = 0; k < 3; k++) {
            char *what = dl_xasprintf("%s: arena '%s' after two steps", spec, dl_arena_name[kept[k]]);
            worst = fmax(worst, compare(what, ga[kept[k]], ca[kept[k]], p->arena_size[kept[k]]));
            free(what);
        }
        feed(cpu, p, ev, 5);
        feed(gpu, p, ev, 5);
        if (dl_exec_run(cpu, ev, &err) != 0 || dl_exec_run(gpu, ev, &err) != 0) fail_msg("%s: %s", spec, err);
        for (int o = 0; o < p->noutputs; o++)
            if (p->outputs[o].program == ev) {
                int t = p->outputs[o].tensor;
                char *what = dl_xasprintf("%s: eval output '%s'", spec, p->outputs[o].name);
                worst = fmax(worst, compare(what, dl_exec_tensor(gpu, t), dl_exec_tensor(cpu, t), p->tensors[t].numel));
                free(what);
            }
        printf("%-28s %s vs CPU: largest difference %.2e (of %.0e allowed)\n", spec, dl_exec_device(gpu), worst, tol);
        dl_exec_free(cpu);
        dl_exec_free(gpu);
        dl_plan_free(p);
    }
    globfree(&gl);
    char *rm = dl_xasprintf("rm -rf '%s'", dir);
    assert_int_equal(system(rm), 0);
    free(rm);
}

int main(void)
{
    if (!getenv("DLDL_CACHE")) setenv("DLDL_CACHE", "build/jit-cache", 1);
    const char *dev = getenv("DLDL_TEST_DEVICE");
    if (dev && !strcmp(dev, "cuda")) spec_device = DL_DEVICE_CUDA, tol = TOL_GPU;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_gemm_args),       cmocka_unit_test(test_conv_desc),
        cmocka_unit_test(test_launch_shape),    cmocka_unit_test(test_real_open_errors),
        cmocka_unit_test(test_real_libs_and_cubin),
        cmocka_unit_test(test_emu_guards),      cmocka_unit_test(test_unknown_step_refused),
        cmocka_unit_test(test_debug_scan),      cmocka_unit_test(test_collectives_one_process),
        cmocka_unit_test(test_nccl_table),      cmocka_unit_test(test_specs_match_cpu),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
