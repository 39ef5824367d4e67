/* cuda_host_emu.h - compile dldl's CUDA C module with the host C++ compiler
 * and run its kernels on the CPU (ROADMAP 1: the CUDA side checked without a
 * GPU).
 *
 * Use: g++ -std=c++17 -O1 -ffp-contract=off -fno-gnu-unique -shared -fPIC
 *          -x c++ -include codegen/cuda_host_emu.h module.cu -o module.so
 * where module.cu is cg_prelude_cuda() followed by kernel bodies, exactly the
 * text NVRTC compiles.  This header supplies what the prelude and the bodies
 * use from CUDA: the qualifiers (__global__, __device__, __forceinline__;
 * __restrict__ is native to g++), the launch-shape built-ins (blockIdx,
 * blockDim, threadIdx, gridDim: thread-local, set by the launcher), and the
 * device math the prelude names (expf logf sqrtf fabsf: glibc's, the ones the
 * C module calls; rsqrtf as 1/sqrtf, the C prelude's definition;
 * __int_as_float).  With -ffp-contract=off on both sides the emulated CUDA
 * kernel and the C kernel of the same body compute bit-identical results.
 * (A real GPU differs in the last bits: its expf/logf/rsqrtf are not glibc's.)
 *
 * Launch: dl_emu_launch(kernel, grid_blocks, block_threads, args...) runs
 * kernel(args...) once for every (block, thread) pair, one after another on
 * the calling thread, in the order chosen by dl_emu_set_order: forward
 * (blocks and threads ascending), reverse (both descending) or a seeded
 * shuffle of all pairs.  Each emulated thread runs to completion before the
 * next starts, so a kernel whose result depends on the order (two threads
 * writing the same output, a read of another thread's output) shows as a
 * difference between orders.
 *
 * Not emulated (yet): __syncthreads, __shared__, warp shuffles and
 * __syncwarp.  No kernel uses them today; one that does fails to compile
 * here rather than run wrongly.  The next step is one fiber per CUDA thread
 * (ucontext or a small stack switcher) with barriers and shuffles as
 * scheduling points, and __shared__ storage per block.
 *
 * C callers (a dlopen'ed module, tests/unit/test_cuda_emu.c) use the
 * extern "C" dl_emu_launch_abi for kernels of the dldl ABI (codegen.h).
 * The built-ins are C++17 inline thread_local variables (one per program
 * however many translation units include this); -fno-gnu-unique keeps them
 * private to each dlopen'ed module instead of process-wide STB_GNU_UNIQUE.
 */
#ifndef DL_CUDA_HOST_EMU_H
#define DL_CUDA_HOST_EMU_H

#ifdef __CUDACC_RTC__
#error "cuda_host_emu.h is for the host compiler, not NVRTC"
#endif

#include <math.h>
#include <stdint.h>
#include <string.h>

#include <utility>
#include <vector>

/* ---- qualifiers ----------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))

/* ---- launch-shape built-ins (CUDA's uint3 / dim3) --------------------------- */
struct dl_emu_dim3 {
    unsigned int x, y, z;
};
inline thread_local dl_emu_dim3 blockIdx = {0, 0, 0};
inline thread_local dl_emu_dim3 threadIdx = {0, 0, 0};
inline thread_local dl_emu_dim3 blockDim = {1, 1, 1};
inline thread_local dl_emu_dim3 gridDim = {1, 1, 1};

/* ---- device math: what cg_prelude_cuda() names ------------------------------ */
/* CUDA's rsqrtf; the C prelude's DL_RSQRT(x) is (1.0f / sqrtf(x)), the same */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline float __int_as_float(int i)
{
    float f;
    memcpy(&f, &i, sizeof f);
    return f;
}
static inline int __float_as_int(float f)
{
    int i;
    memcpy(&i, &f, sizeof i);
    return i;
}

/* ---- the launcher --------------------------------------------------------- */
enum DlEmuOrder { DL_EMU_FORWARD = 0, DL_EMU_REVERSE = 1, DL_EMU_SHUFFLE = 2 };

struct dl_emu_config {
    DlEmuOrder order;
    uint64_t seed;      /* for DL_EMU_SHUFFLE */
};
inline thread_local dl_emu_config dl_emu_cfg = {DL_EMU_FORWARD, 1};

/* The order of the emulated threads of the next launches on this host thread. */
static inline void dl_emu_set_order(DlEmuOrder order, uint64_t seed)
{
    dl_emu_cfg.order = order;
    dl_emu_cfg.seed = seed;
}

/* SplitMix64 (Steele, Lea, Flood 2014): the shuffle's generator */
static inline uint64_t dl_emu_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* Run kernel(args...) as a 1-D launch <<<grid_blocks, block_threads>>>: every
 * (block, thread) pair once, in the configured order.  Returns 0, or -1 for
 * an empty launch shape (CUDA's invalid configuration). */
template <typename... P, typename... A>
static int dl_emu_launch(void (*kernel)(P...), unsigned grid_blocks, unsigned block_threads, A &&...args)
{
    if (grid_blocks == 0 || block_threads == 0) return -1;
    const uint64_t n = (uint64_t)grid_blocks * block_threads;
    gridDim = {grid_blocks, 1, 1};
    blockDim = {block_threads, 1, 1};
    std::vector<uint64_t> perm;
    if (dl_emu_cfg.order == DL_EMU_SHUFFLE) { /* Fisher-Yates over all pairs */
        perm.resize(n);
        for (uint64_t i = 0; i < n; i++) perm[i] = i;
        uint64_t s = dl_emu_cfg.seed;
        for (uint64_t i = n - 1; i > 0; i--) std::swap(perm[i], perm[dl_emu_next(&s) % (i + 1)]);
    }
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t = dl_emu_cfg.order == DL_EMU_FORWARD ? i : dl_emu_cfg.order == DL_EMU_REVERSE ? n - 1 - i : perm[i];
        blockIdx = {(unsigned)(t / block_threads), 0, 0};
        threadIdx = {(unsigned)(t % block_threads), 0, 0};
        kernel(args...);
    }
    blockIdx = threadIdx = {0, 0, 0};
    gridDim = blockDim = {1, 1, 1};
    return 0;
}

/* The dldl kernel ABI (codegen.h) for C callers: launch kernel(b, g0, g1) with
 * the given shape and order (a DlEmuOrder value).  Weak, so that several
 * translation units of one program may include this header. */
typedef void (*dl_emu_kernel_fn)(float *const *, int64_t, int64_t);
extern "C" __attribute__((weak, visibility("default"))) int
dl_emu_launch_abi(dl_emu_kernel_fn kernel, unsigned grid_blocks, unsigned block_threads, int order,
                  uint64_t seed, float *const *b, int64_t g0, int64_t g1)
{
    dl_emu_config saved = dl_emu_cfg;
    dl_emu_set_order((DlEmuOrder)order, seed);
    int rc = dl_emu_launch(kernel, grid_blocks, block_threads, b, g0, g1);
    dl_emu_cfg = saved;
    return rc;
}

#endif
