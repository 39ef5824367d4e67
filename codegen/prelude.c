/* prelude.c - the two preludes: the macros and helpers that make a rendered
 * kernel body (codegen/render.c) a C11 or a CUDA C module.  A module is a
 * prelude followed by one or more bodies.
 *
 * The body uses only:
 *   DL_KERNEL(name)   the kernel's signature (codegen.h ABI: dl_b, dl_g0, dl_g1)
 *   DL_FOR_GID(g)     loop g over the work items [dl_g0, dl_g1) of this call
 *   DL_RESTRICT       restrict / __restrict__
 *   DL_EXP DL_LOG DL_SQRT DL_RSQRT DL_FABS  f32 math
 *   exp log sqrt      f64 math (<math.h>; CUDA's double device functions):
 *                     only per-step values (the optimizer's bias corrections)
 *   DL_INF DL_NAN     float constants
 *   dl_fmin dl_fmax dl_dmin dl_dmax dl_imin dl_imax dl_fsign dl_keep  (helpers)
 * Helpers are plain integer/float code, identical in C and CUDA, declared
 * with DL_FN (static inline, or __device__ __forceinline__).  The host
 * emulation of CUDA (codegen/cuda_host_emu.h) compiles the CUDA prelude on
 * the host after defining __global__, __device__, blockIdx, ... itself; the
 * prelude therefore includes <stdint.h> unless compiled by NVRTC.
 * Kernels with a GPU schedule (CUDA module only) also use
 *   DL_FOR_BLOCK(g, tid, n)  loop g over work items, one block each; tid = threadIdx.x
 *   DL_SHARED(T, name, n)    a shared array (the emulation's is race-checked)
 *   DL_BARRIER()             __syncthreads()
 */
#include "kir.h"

#define DL_PRELUDE_COMMON                                                                  \
    "/* f32 min/max that propagate NaN from either side (as torch.maximum / relu) */\n"    \
    "DL_FN float dl_fmax(float a, float b) { return (a > b || a != a) ? a : b; }\n"        \
    "DL_FN float dl_fmin(float a, float b) { return (a < b || a != a) ? a : b; }\n"        \
    "DL_FN double dl_dmax(double a, double b) { return (a > b || a != a) ? a : b; }\n"     \
    "DL_FN double dl_dmin(double a, double b) { return (a < b || a != a) ? a : b; }\n"     \
    "DL_FN int64_t dl_imax(int64_t a, int64_t b) { return a > b ? a : b; }\n"              \
    "DL_FN int64_t dl_imin(int64_t a, int64_t b) { return a < b ? a : b; }\n"              \
    "/* sign(x) in {-1, 0, 1}; NaN stays NaN (torch.sign) */\n"                            \
    "DL_FN float dl_fsign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }\n" \
    "/* SplitMix64's finaliser (Steele, Lea, Flood 2014) */\n"                             \
    "DL_FN uint64_t dl_mix64(uint64_t z)\n"                                                \
    "{\n"                                                                                  \
    "    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;\n"                                   \
    "    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;\n"                                   \
    "    return z ^ (z >> 31);\n"                                                          \
    "}\n"                                                                                  \
    "/* Dropout mask: 1 when element i is kept at (seed, step), with probability\n"        \
    " * 1 - p.  Counter-based (no state): any split of the work gives the same\n"         \
    " * mask.  u = the top 24 bits of the hash / 2^24, in [0, 1); keep iff u >= p. */\n"  \
    "DL_FN int dl_keep(float seed, float step, int64_t i, float p)\n"                      \
    "{\n"                                                                                  \
    "    uint64_t h = dl_mix64((uint64_t)(int64_t)seed + 0x9E3779B97F4A7C15ULL);\n"        \
    "    h = dl_mix64(h ^ ((uint64_t)(int64_t)step * 0x9E3779B97F4A7C15ULL));\n"           \
    "    h = dl_mix64(h ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL));\n"                       \
    "    float u = (float)(h >> 40) * (1.0f / 16777216.0f);\n"                             \
    "    return u >= p;\n"                                                                 \
    "}\n\n"

static const char prelude_c[] =
    "/* dldl generated kernels: C11 prelude (codegen/prelude.c) */\n"
    "#include <math.h>\n"
    "#include <stdint.h>\n"
    "#define DL_KERNEL(name) \\\n"
    "    void name(float *const *dl_b, int64_t dl_g0, int64_t dl_g1); \\\n"
    "    void name(float *const *dl_b, int64_t dl_g0, int64_t dl_g1)\n"
    "#define DL_FOR_GID(g) for (int64_t g = dl_g0; g < dl_g1; g++)\n"
    "#define DL_RESTRICT restrict\n"
    "#define DL_FN static inline\n"
    "#define DL_EXP expf\n"
    "#define DL_LOG logf\n"
    "#define DL_SQRT sqrtf\n"
    "#define DL_RSQRT(x) (1.0f / sqrtf(x))\n"
    "#define DL_FABS fabsf\n"
    "#define DL_INF INFINITY\n"
    "#define DL_NAN NAN\n"
    DL_PRELUDE_COMMON;

static const char prelude_cuda[] =
    "/* dldl generated kernels: CUDA C prelude (codegen/prelude.c) */\n"
    "#ifdef __CUDACC_RTC__\n"
    "typedef long long int64_t;\n"
    "typedef unsigned long long uint64_t;\n"
    "#else\n"
    "#include <stdint.h>\n"
    "#endif\n"
    "#define DL_KERNEL(name) \\\n"
    "    extern \"C\" __global__ void name(float *const *dl_b, int64_t dl_g0, int64_t dl_g1)\n"
    "#define DL_FOR_GID(g) \\\n"
    "    for (int64_t g = dl_g0 + (int64_t)blockIdx.x * blockDim.x + threadIdx.x; g < dl_g1; \\\n"
    "         g += (int64_t)gridDim.x * blockDim.x)\n"
    "#define DL_RESTRICT __restrict__\n"
    "#define DL_FN static __device__ __forceinline__\n"
    "/* GPU schedule: one block per work item g, tid its thread; launched with\n"
    " * exactly n threads per block (kir_cuda_launch), as the kernel's proof of\n"
    " * memory safety assumed (tid < n): another shape does nothing */\n"
    "#define DL_FOR_BLOCK(g, tid, n) \\\n"
    "    const int64_t tid = threadIdx.x; \\\n"
    "    if (blockDim.x != (n)) return; \\\n"
    "    for (int64_t g = dl_g0 + (int64_t)blockIdx.x; g < dl_g1; g += (int64_t)gridDim.x)\n"
    "#define DL_BARRIER() __syncthreads()\n"
    "#ifndef DL_SHARED /* the host emulation defines a checked one */\n"
    "#define DL_SHARED(T, name, n) __shared__ T name[n]\n"
    "#endif\n"
    "#define DL_EXP expf\n"
    "#define DL_LOG logf\n"
    "#define DL_SQRT sqrtf\n"
    "#define DL_RSQRT rsqrtf\n"
    "#define DL_FABS fabsf\n"
    "#define DL_INF __int_as_float(0x7f800000)\n"
    "#define DL_NAN __int_as_float(0x7fc00000) /* the same quiet NaN as C NAN */\n"
    DL_PRELUDE_COMMON;

const char *cg_prelude_c(void) { return prelude_c; }
const char *cg_prelude_cuda(void) { return prelude_cuda; }
