/* cuda_host_emu.h - an emulated CUDA device for testing: compile dldl's CUDA
 * C module with the host C++ compiler and run its kernels on the CPU with
 * CUDA's block semantics (issue 15, "Checked here, without a GPU").  It is a
 * test double, never a GPU result: its maths is glibc's, its warps are
 * fibers taking turns.
 *
 * Use: g++ -std=c++17 -O1 -ffp-contract=off -fno-gnu-unique -shared -fPIC
 *          -x c++ -include codegen/cuda_host_emu.h module.cu -o module.so
 * where module.cu is cg_prelude_cuda() followed by kernel bodies, exactly the
 * text NVRTC compiles.  This header supplies what the prelude and the bodies
 * use from CUDA: the qualifiers, the launch-shape built-ins (blockIdx,
 * blockDim, threadIdx, gridDim: set by the launcher), the device maths
 * (glibc's expf logf sqrtf, the ones the C module calls; rsqrtf as 1/sqrtf,
 * the C prelude's definition), __syncthreads, __syncwarp, the warp shuffles
 * __shfl_sync/__shfl_down_sync/__shfl_xor_sync, atomicAdd, and shared
 * memory: `__shared__` (plain per-block storage) and the prelude's
 * DL_SHARED(T, name, n) (per-block storage whose every access is checked).
 *
 * Execution.  A launch <<<blocks, threads>>> runs the blocks one after
 * another; inside a block each CUDA thread is a fiber (a stack of
 * DL_EMU_STACK bytes over a guard page; see dl_emu_switch).  A fiber runs until it finishes or
 * reaches a scheduling point: __syncthreads (the block barrier), __syncwarp
 * or a shuffle (a barrier of its warp of 32).  When no fiber can run, a warp
 * whose live threads all wait at a warp barrier is released; else, when
 * every live thread waits at __syncthreads, the block's barrier epoch ends
 * and all resume.  A barrier that cannot complete (threads at different
 * barriers, or some exited while others wait: CUDA's undefined behaviour) is
 * reported as divergence and the block abandoned.  The schedule (the order
 * of the blocks, and the order in which the fibers resume in each epoch) is
 * chosen by dl_emu_set_order: forward, reverse, or a seeded shuffle, drawn
 * anew for every epoch.
 *
 * Race detection on DL_SHARED arrays.  Each shared word remembers which
 * thread last wrote it and which read it, in which barrier epoch (and the
 * warp's __syncwarp count).  A read or a write of a word that another thread
 * wrote in the same epoch, a write of a word another thread read in the same
 * epoch (unless both threads are one warp and a __syncwarp came between),
 * a read of a word not written since the block began, and an index outside
 * the array are reported: kernel, block, threads, array and offset.  The
 * launch then completes (its result is what the schedule produced) and
 * returns DL_EMU_RACE.  Global memory is not tracked; its races show as
 * results that differ between schedules.
 *
 * Not emulated: 2-D/3-D launch shapes, partial-warp masks (every warp
 * primitive must name the whole warp), memory fences between blocks (blocks
 * do not overlap), __shfl of types wider than 8 bytes.
 *
 * C callers (a dlopen'ed module, tests/unit/test_cuda_emu.c) use the
 * extern "C" entry points at the end for kernels of the dldl ABI (codegen.h).
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
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include <utility>
#include <vector>

/* ---- qualifiers ----------------------------------------------------------- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline __attribute__((always_inline))
/* unchecked per-block storage: blocks run one at a time on this host thread */
#define __shared__ static thread_local
/* checked per-block storage (the prelude's DL_SHARED; NVRTC: __shared__ T name[n]) */
#define DL_SHARED(T, name, n) static thread_local DlEmuShared<T, (n)> name(#name)

/* ---- launch-shape built-ins (CUDA's uint3 / dim3) --------------------------- */
struct dl_emu_dim3 {
    unsigned int x, y, z;
};
inline thread_local dl_emu_dim3 blockIdx = {0, 0, 0};
inline thread_local dl_emu_dim3 threadIdx = {0, 0, 0};
inline thread_local dl_emu_dim3 blockDim = {1, 1, 1};
inline thread_local dl_emu_dim3 gridDim = {1, 1, 1};
static const int warpSize = 32;

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

/* ---- the schedule ----------------------------------------------------------- */
enum DlEmuOrder { DL_EMU_FORWARD = 0, DL_EMU_REVERSE = 1, DL_EMU_SHUFFLE = 2 };
/* launch results (0: clean) */
enum { DL_EMU_BAD_SHAPE = -1, DL_EMU_RACE = -2, DL_EMU_DIVERGENCE = -3 };
#define DL_EMU_MAX_THREADS 1024            /* CUDA's limit per block */
#define DL_EMU_STACK (64 * 1024)           /* bytes of stack per fiber */

struct dl_emu_config {
    DlEmuOrder order;
    uint64_t seed;      /* for DL_EMU_SHUFFLE */
};
inline thread_local dl_emu_config dl_emu_cfg = {DL_EMU_FORWARD, 1};

/* The schedule of the next launches on this host thread. */
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

/* 0..n-1 in the configured order (a fresh shuffle per call) */
static inline void dl_emu_order(std::vector<unsigned> &v, unsigned n, uint64_t *rng)
{
    v.resize(n);
    for (unsigned i = 0; i < n; i++) v[i] = dl_emu_cfg.order == DL_EMU_REVERSE ? n - 1 - i : i;
    if (dl_emu_cfg.order == DL_EMU_SHUFFLE) /* Fisher-Yates */
        for (unsigned i = n - 1; i > 0 && n > 1; i--) std::swap(v[i], v[dl_emu_next(rng) % (i + 1)]);
}

/* ---- fibers ------------------------------------------------------------------ */
enum { DL_EMU_RUN, DL_EMU_AT_BARRIER, DL_EMU_AT_WARP, DL_EMU_DONE };

/* Switching between fibers.  On x86-64 a hand-written switch saves the
 * callee-saved registers, MXCSR and the x87 control word on the old stack and
 * restores them from the new one (System V ABI: nothing else survives a
 * call); elsewhere ucontext, whose swapcontext also saves the signal mask (a
 * system call per switch, several times slower). */
#if defined(__x86_64__) && !defined(DL_EMU_UCONTEXT)
#define DL_EMU_ASM_SWITCH 1
/* Store the stack pointer in *from, continue on the stack saved in to. */
__attribute__((naked, noinline)) static void dl_emu_switch(void **from __attribute__((unused)), void *to __attribute__((unused)))
{
    __asm__ volatile("pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n\t"
                     "subq $8, %rsp\n\tstmxcsr (%rsp)\n\tfnstcw 4(%rsp)\n\t"
                     "movq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n\t"
                     "ldmxcsr (%rsp)\n\tfldcw 4(%rsp)\n\taddq $8, %rsp\n\t"
                     "popq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret\n\t");
}
#endif

struct DlEmuFiber {
#ifdef DL_EMU_ASM_SWITCH
    void *sp;
#else
    ucontext_t uc;
#endif
    int state;
};

/* The state of the launch in progress on this host thread. */
struct DlEmuRun {
    const char *kernel;
    unsigned nthreads;
    std::vector<DlEmuFiber> f;
#ifdef DL_EMU_ASM_SWITCH
    void *sched;
#else
    ucontext_t sched;
#endif
    unsigned cur;                      /* the running thread */
    uint32_t epoch;                    /* barrier epoch of the block */
    uint64_t serial;                   /* which block (shared words of older blocks are stale) */
    std::vector<uint32_t> warp_epoch;  /* __syncwarp count per warp */
    std::vector<uint64_t> lane;        /* shuffle values, one per thread */
    void (*body)(void *);              /* runs the kernel for the current thread */
    void *body_ctx;
    int rc;                            /* first failure: DL_EMU_* or 0 */
    long nraces;
    char report[1024];
};
inline thread_local DlEmuRun *dl_emu_run = nullptr;
inline thread_local uint64_t dl_emu_serial = 0;
inline thread_local char dl_emu_last_report[1024] = "";

/* Stacks, DL_EMU_STACK bytes each above a PROT_NONE guard page, kept for the
 * next launches of this host thread. */
struct DlEmuStacks {
    char *base = nullptr;
    size_t n = 0, each = 0;
    ~DlEmuStacks()
    {
        if (base) munmap(base, n * each);
    }
    char *get(unsigned i, unsigned want)
    {
        if (want > n) {
            if (base) munmap(base, n * each);
            each = (size_t)sysconf(_SC_PAGESIZE) + DL_EMU_STACK;
            void *p = mmap(nullptr, want * each, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
            if (p == MAP_FAILED) return base = nullptr, n = 0, nullptr;
            base = (char *)p, n = want;
            for (unsigned k = 0; k < n; k++) mprotect(base + k * each, (size_t)sysconf(_SC_PAGESIZE), PROT_NONE);
        }
        return base + i * each + (size_t)sysconf(_SC_PAGESIZE);
    }
};
inline thread_local DlEmuStacks dl_emu_stacks;

/* Record a failure of the launch (the first report is kept, the rest counted). */
__attribute__((format(printf, 3, 4))) static inline void dl_emu_fail(DlEmuRun *r, int rc, const char *fmt, ...)
{
    if (rc == DL_EMU_RACE) r->nraces++;
    if (r->rc != 0) return;
    r->rc = rc;
    int n = snprintf(r->report, sizeof r->report, "kernel '%s' block %u: ", r->kernel, blockIdx.x);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof r->report) vsnprintf(r->report + n, sizeof r->report - (size_t)n, fmt, ap);
    va_end(ap);
}

/* The running fiber waits at a scheduling point (state) and resumes when the
 * scheduler releases it.  Outside a launch (a plain call) it returns at once. */
static inline void dl_emu_wait(int state)
{
    DlEmuRun *r = dl_emu_run;
    if (!r) return;
    unsigned t = r->cur;
    r->f[t].state = state;
#ifdef DL_EMU_ASM_SWITCH
    dl_emu_switch(&r->f[t].sp, r->sched);
#else
    swapcontext(&r->f[t].uc, &r->sched);
#endif
    threadIdx = {t, 0, 0};
}

/* A fiber's first frame: the thread's kernel body, then back to the scheduler for good. */
static inline void dl_emu_trampoline()
{
    DlEmuRun *r = dl_emu_run;
    r->body(r->body_ctx);
    r->f[r->cur].state = DL_EMU_DONE;
#ifdef DL_EMU_ASM_SWITCH
    void *unused;
    dl_emu_switch(&unused, r->sched);
    __builtin_trap(); /* a finished fiber is never resumed */
#endif
    /* ucontext: uc_link returns to the scheduler */
}

/* Prepare fiber f to start the kernel body on stack [stack, stack + DL_EMU_STACK). */
static inline void dl_emu_fiber_init(DlEmuRun *r, DlEmuFiber *f, char *stack)
{
#ifdef DL_EMU_ASM_SWITCH
    (void)r;
    /* dl_emu_switch's frame: csr word, r15 r14 r13 r12 rbx rbp, return address
     * (16-byte aligned, so the trampoline starts as if called), a null slot */
    uintptr_t top = ((uintptr_t)stack + DL_EMU_STACK) & ~(uintptr_t)15;
    void **slot = (void **)(top - 16);
    slot[1] = nullptr;
    slot[0] = (void *)dl_emu_trampoline;
    uint64_t *sp = (uint64_t *)slot - 7;
    memset(sp, 0, 7 * sizeof *sp);
    uint32_t csr[2] = {0x1F80u, 0x037Fu}; /* MXCSR and x87 control word at process start */
    memcpy(sp, csr, sizeof csr);
    f->sp = sp;
#else
    getcontext(&f->uc);
    f->uc.uc_stack.ss_sp = stack;
    f->uc.uc_stack.ss_size = DL_EMU_STACK;
    f->uc.uc_link = &r->sched;
    makecontext(&f->uc, dl_emu_trampoline, 0);
#endif
}

static inline void dl_emu_resume(DlEmuRun *r, unsigned t)
{
    r->cur = t;
    threadIdx = {t, 0, 0};
#ifdef DL_EMU_ASM_SWITCH
    dl_emu_switch(&r->sched, r->f[t].sp);
#else
    swapcontext(&r->sched, &r->f[t].uc);
#endif
}

/* Run one block to its end.  Returns 0, or -1 when it had to be abandoned. */
static inline int dl_emu_block(DlEmuRun *r, uint64_t *rng)
{
    unsigned n = r->nthreads, nwarps = (n + 31) / 32;
    r->epoch = 0;
    r->serial = ++dl_emu_serial;
    r->warp_epoch.assign(nwarps, 0);
    r->lane.assign(n, 0);
    for (unsigned t = 0; t < n; t++) {
        DlEmuFiber *f = &r->f[t];
        char *stack = dl_emu_stacks.get(t, n);
        if (!stack) return dl_emu_fail(r, DL_EMU_DIVERGENCE, "cannot map %u fiber stacks", n), -1;
        dl_emu_fiber_init(r, f, stack);
        f->state = DL_EMU_RUN;
    }
    std::vector<unsigned> ord;
    for (;;) {
        dl_emu_order(ord, n, rng);
        for (unsigned t : ord)
            if (r->f[t].state == DL_EMU_RUN) dl_emu_resume(r, t);
        /* nothing runnable: release complete warps, else the block barrier */
        int released = 0;
        for (unsigned w = 0; w < nwarps; w++) {
            unsigned lo = 32 * w, hi = lo + 32 < n ? lo + 32 : n, waiting = 0, live = 0;
            for (unsigned t = lo; t < hi; t++)
                live += r->f[t].state != DL_EMU_DONE, waiting += r->f[t].state == DL_EMU_AT_WARP;
            if (waiting == 0 || waiting != live) continue;
            r->warp_epoch[w]++;
            for (unsigned t = lo; t < hi; t++)
                if (r->f[t].state == DL_EMU_AT_WARP) r->f[t].state = DL_EMU_RUN;
            released = 1;
        }
        if (released) continue;
        unsigned at_bar = 0, at_warp = 0, done = 0;
        for (unsigned t = 0; t < n; t++)
            at_bar += r->f[t].state == DL_EMU_AT_BARRIER, at_warp += r->f[t].state == DL_EMU_AT_WARP,
                done += r->f[t].state == DL_EMU_DONE;
        if (done == n) return 0;
        if (at_bar == n) {
            r->epoch++;
            for (unsigned t = 0; t < n; t++) r->f[t].state = DL_EMU_RUN;
            continue;
        }
        unsigned first_bar = n, first_other = n;
        for (unsigned t = 0; t < n; t++) {
            if (r->f[t].state == DL_EMU_AT_BARRIER && first_bar == n) first_bar = t;
            if (r->f[t].state != DL_EMU_AT_BARRIER && first_other == n) first_other = t;
        }
        dl_emu_fail(r, DL_EMU_DIVERGENCE,
                    "barrier divergence: thread %u waits at __syncthreads while thread %u %s "
                    "(%u at __syncthreads, %u at a warp barrier, %u exited)",
                    first_bar < n ? first_bar : first_other, first_other,
                    r->f[first_other].state == DL_EMU_DONE ? "has exited" : "waits at a warp barrier", at_bar,
                    at_warp, done);
        return -1;
    }
}

/* ---- the launcher --------------------------------------------------------- */

/* Run kernel(args...) as a 1-D launch <<<grid_blocks, block_threads>>> in the
 * configured schedule; reports carry the kernel's name.  Returns 0,
 * DL_EMU_BAD_SHAPE (an empty or too large launch shape: CUDA's invalid
 * configuration), DL_EMU_RACE or DL_EMU_DIVERGENCE, with the first report in
 * dl_emu_last_report. */
template <typename... P, typename... A>
static int dl_emu_launch_as(const char *name, void (*kernel)(P...), unsigned grid_blocks, unsigned block_threads,
                            A &&...args)
{
    dl_emu_last_report[0] = 0;
    if (grid_blocks == 0 || block_threads == 0 || block_threads > DL_EMU_MAX_THREADS || dl_emu_run) {
        snprintf(dl_emu_last_report, sizeof dl_emu_last_report, "kernel '%s': invalid launch <<<%u, %u>>>%s",
                 name, grid_blocks, block_threads, dl_emu_run ? " inside a launch" : "");
        return DL_EMU_BAD_SHAPE;
    }
    DlEmuRun r;
    r.kernel = name;
    r.nthreads = block_threads;
    r.f.resize(block_threads);
    r.rc = 0;
    r.nraces = 0;
    r.report[0] = 0;
    auto call = [&]() { kernel(args...); };
    r.body = [](void *c) { (*(decltype(call) *)c)(); };
    r.body_ctx = &call;
    gridDim = {grid_blocks, 1, 1};
    blockDim = {block_threads, 1, 1};
    uint64_t rng = dl_emu_cfg.seed;
    std::vector<unsigned> blocks;
    dl_emu_order(blocks, grid_blocks, &rng);
    dl_emu_run = &r;
    for (unsigned bi : blocks) {
        blockIdx = {bi, 0, 0};
        if (dl_emu_block(&r, &rng) != 0) break;
    }
    dl_emu_run = nullptr;
    blockIdx = threadIdx = {0, 0, 0};
    gridDim = blockDim = {1, 1, 1};
    if (r.rc) {
        int n = snprintf(dl_emu_last_report, sizeof dl_emu_last_report, "%s", r.report);
        if (r.nraces > 1 && n > 0 && (size_t)n < sizeof dl_emu_last_report)
            snprintf(dl_emu_last_report + n, sizeof dl_emu_last_report - (size_t)n, " (%ld races in all)",
                     r.nraces);
    }
    return r.rc;
}

template <typename... P, typename... A>
static int dl_emu_launch(void (*kernel)(P...), unsigned grid_blocks, unsigned block_threads, A &&...args)
{
    return dl_emu_launch_as("?", kernel, grid_blocks, block_threads, std::forward<A>(args)...);
}

/* ---- barriers, warp primitives, atomics ---------------------------------------- */

static inline void __syncthreads() { dl_emu_wait(DL_EMU_AT_BARRIER); }

static inline void dl_emu_check_mask(unsigned mask, const char *what)
{
    DlEmuRun *r = dl_emu_run;
    if (!r) return;
    unsigned w = r->cur / 32, live = r->nthreads - 32 * w < 32 ? r->nthreads - 32 * w : 32;
    unsigned full = live == 32 ? 0xffffffffu : (1u << live) - 1;
    if ((mask & full) != full)
        dl_emu_fail(r, DL_EMU_DIVERGENCE, "%s with mask %#x by thread %u: only whole-warp masks are emulated", what,
                    mask, r->cur);
}

static inline void __syncwarp(unsigned mask = 0xffffffffu)
{
    dl_emu_check_mask(mask, "__syncwarp");
    dl_emu_wait(DL_EMU_AT_WARP);
}

/* The value of var at lane src of this warp (width-lane segments, as CUDA):
 * publish, warp barrier, read, warp barrier (so no lane overwrites its value
 * before every lane has read it). */
template <typename T>
static inline T dl_emu_shfl(unsigned mask, T var, int src_in_seg, int width, int keep_own, const char *what)
{
    static_assert(sizeof(T) <= sizeof(uint64_t), "shuffles of at most 8 bytes");
    DlEmuRun *r = dl_emu_run;
    if (!r) return var;
    dl_emu_check_mask(mask, what);
    unsigned t = r->cur, lane = t % 32, seg = lane / (unsigned)width * (unsigned)width;
    uint64_t bits = 0;
    memcpy(&bits, &var, sizeof var);
    r->lane[t] = bits;
    __syncwarp(mask);
    unsigned src = t - lane + seg + (unsigned)src_in_seg;
    T out = var;
    if (!keep_own) {
        if (src >= r->nthreads || r->f[src].state == DL_EMU_DONE)
            dl_emu_fail(r, DL_EMU_DIVERGENCE, "%s by thread %u reads lane %u, which has exited or does not exist",
                        what, t, src);
        else memcpy(&out, &r->lane[src], sizeof out);
    }
    __syncwarp(mask);
    return out;
}
template <typename T> static inline T __shfl_sync(unsigned mask, T var, int src, int width = 32)
{
    return dl_emu_shfl(mask, var, ((src % width) + width) % width, width, 0, "__shfl_sync");
}
template <typename T> static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32)
{
    unsigned l = (dl_emu_run ? dl_emu_run->cur : 0) % (unsigned)width;
    return dl_emu_shfl(mask, var, (int)(l + delta), width, l + delta >= (unsigned)width, "__shfl_down_sync");
}
template <typename T> static inline T __shfl_xor_sync(unsigned mask, T var, int lane_mask, int width = 32)
{
    unsigned l = (dl_emu_run ? dl_emu_run->cur : 0) % (unsigned)width, s = l ^ (unsigned)lane_mask;
    return dl_emu_shfl(mask, var, (int)s, width, s >= (unsigned)width, "__shfl_xor_sync");
}

/* Fibers take turns, so a read-modify-write is atomic as written. */
template <typename T> static inline T atomicAdd(T *p, T v)
{
    T old = *p;
    *p = old + v;
    return old;
}
template <typename T> static inline T atomicExch(T *p, T v)
{
    T old = *p;
    *p = v;
    return old;
}
template <typename T> static inline T atomicCAS(T *p, T cmp, T v)
{
    T old = *p;
    if (old == cmp) *p = v;
    return old;
}

/* ---- checked shared memory ------------------------------------------------------- */

struct DlEmuShadow {
    uint64_t serial;          /* block of the last access (another block's: never written here) */
    int32_t writer, reader;   /* threads; reader -1: none this epoch, -2: several */
    uint32_t wepoch, repoch;  /* barrier epochs of the last write and read */
    uint32_t wwarp, rwarp;    /* their warp's __syncwarp count then */
};

/* n words of type T in a block's shared memory; every access through [] is
 * checked against the race rules above. */
template <typename T, int N> struct DlEmuShared {
    const char *name;
    T v[N];
    DlEmuShadow sh[N];
    T spare;                  /* target of an out-of-range access, after reporting it */
    explicit DlEmuShared(const char *nm) : name(nm), v(), sh(), spare() {}

    /* another thread's access (thread u, warp count then) not ordered before thread t's */
    static int unordered(const DlEmuRun *r, int32_t u, uint32_t warp_then, unsigned t)
    {
        return u >= 0 && (unsigned)u != t && !((unsigned)u / 32 == t / 32 && r->warp_epoch[t / 32] > warp_then);
    }
    void on_read(int64_t i)
    {
        DlEmuRun *r = dl_emu_run;
        if (!r) return;
        DlEmuShadow *s = &sh[i];
        unsigned t = r->cur;
        if (s->serial != r->serial || s->writer < 0) {
            dl_emu_fail(r, DL_EMU_RACE, "thread %u reads %s[%lld], not written in this block", t, name, (long long)i);
            return;
        }
        if (s->wepoch == r->epoch && unordered(r, s->writer, s->wwarp, t))
            dl_emu_fail(r, DL_EMU_RACE, "race: thread %u reads %s[%lld], written by thread %d in the same barrier epoch %u",
                        t, name, (long long)i, s->writer, r->epoch);
        if (s->repoch != r->epoch || s->reader == -1) s->reader = (int32_t)t, s->repoch = r->epoch;
        else if (s->reader != (int32_t)t) s->reader = -2;
        s->rwarp = r->warp_epoch[t / 32];
    }
    void on_write(int64_t i)
    {
        DlEmuRun *r = dl_emu_run;
        if (!r) return;
        DlEmuShadow *s = &sh[i];
        unsigned t = r->cur;
        if (s->serial == r->serial) {
            if (s->wepoch == r->epoch && unordered(r, s->writer, s->wwarp, t))
                dl_emu_fail(r, DL_EMU_RACE, "race: thread %u writes %s[%lld], written by thread %d in the same barrier epoch %u",
                            t, name, (long long)i, s->writer, r->epoch);
            else if (s->repoch == r->epoch && (s->reader == -2 || unordered(r, s->reader, s->rwarp, t)))
                dl_emu_fail(r, DL_EMU_RACE, "race: thread %u writes %s[%lld], read by %s in the same barrier epoch %u",
                            t, name, (long long)i, s->reader == -2 ? "other threads" : "another thread", r->epoch);
        } else {
            s->serial = r->serial, s->repoch = UINT32_MAX, s->reader = -1;
        }
        s->writer = (int32_t)t, s->wepoch = r->epoch, s->wwarp = r->warp_epoch[t / 32];
        if (s->repoch == r->epoch) s->reader = -1, s->repoch = UINT32_MAX;
    }

    struct Ref {
        DlEmuShared *a;
        int64_t i;
        T *p() const { return i < 0 ? &a->spare : &a->v[i]; }
        operator T() const
        {
            if (i >= 0) a->on_read(i);
            return *p();
        }
        Ref &operator=(T x)
        {
            if (i >= 0) a->on_write(i);
            *p() = x;
            return *this;
        }
        Ref &operator=(const Ref &o) { return *this = (T)o; }
        Ref &operator+=(T x) { return *this = (T)*this + x; }
        Ref &operator-=(T x) { return *this = (T)*this - x; }
        Ref &operator*=(T x) { return *this = (T)*this * x; }
    };
    Ref operator[](int64_t i)
    {
        if (i < 0 || i >= N) {
            if (dl_emu_run)
                dl_emu_fail(dl_emu_run, DL_EMU_RACE, "thread %u: index %lld outside %s[%d]", dl_emu_run->cur,
                            (long long)i, name, N);
            return Ref{this, -1};
        }
        return Ref{this, i};
    }
};

/* ---- C entry points: the dldl kernel ABI (codegen.h) ---------------------------- */
/* Weak, so that several translation units of one program may include this header. */
typedef void (*dl_emu_kernel_fn)(float *const *, int64_t, int64_t);

/* Launch kernel(b, g0, g1) as <<<grid_blocks, block_threads>>> in schedule
 * order (a DlEmuOrder) with seed; name is used in reports.  Returns 0 or a
 * DL_EMU_* failure; dl_emu_report() then says what happened. */
extern "C" __attribute__((weak, visibility("default"))) int
dl_emu_launch_named(const char *name, dl_emu_kernel_fn kernel, unsigned grid_blocks, unsigned block_threads,
                    int order, uint64_t seed, float *const *b, int64_t g0, int64_t g1)
{
    dl_emu_config saved = dl_emu_cfg;
    dl_emu_set_order((DlEmuOrder)order, seed);
    int rc = dl_emu_launch_as(name ? name : "?", kernel, grid_blocks, block_threads, b, g0, g1);
    dl_emu_cfg = saved;
    return rc;
}

/* The first version's entry point (the emulated device of runtime/ calls it). */
extern "C" __attribute__((weak, visibility("default"))) int
dl_emu_launch_abi(dl_emu_kernel_fn kernel, unsigned grid_blocks, unsigned block_threads, int order,
                  uint64_t seed, float *const *b, int64_t g0, int64_t g1)
{
    return dl_emu_launch_named("?", kernel, grid_blocks, block_threads, order, seed, b, g0, g1);
}

/* The report of this host thread's last launch ("" when it was clean). */
extern "C" __attribute__((weak, visibility("default"))) const char *dl_emu_report(void)
{
    return dl_emu_last_report;
}

#endif
