/* emu_module.h - build a kernel module twice, as C with cc and as CUDA with
 * g++ under the emulated device (codegen/cuda_host_emu.h), and load both:
 * what tests/unit/test_cuda_emu.c and test_cuda_blocks.c share.  Header-only,
 * like the other helpers of tests/ref: include it after <cmocka.h>; run the
 * tests from the repository root.
 *
 * Both with -O1 -ffp-contract=off (neither compiler contracts a*b+c into an
 * FMA, so the arithmetic is the same); the emulation header is precompiled
 * once per process; the two compilers run at once.
 */
#ifndef DL_REF_EMU_MODULE_H
#define DL_REF_EMU_MODULE_H

#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../codegen/kir.h"

#define EMU_HEADER "codegen/cuda_host_emu.h"
#define FLAGS "-O1 -ffp-contract=off -shared -fPIC"

typedef void (*KernFn)(float *const *b, int64_t g0, int64_t g1);
typedef int (*LaunchFn)(KernFn k, unsigned blocks, unsigned threads, int order, uint64_t seed,
                        float *const *b, int64_t g0, int64_t g1);

enum { ORDER_FORWARD, ORDER_REVERSE, ORDER_SHUFFLE, NORDERS }; /* DlEmuOrder */
static const char *const order_name[NORDERS] = {"fwd", "rev", "shuf"};

static inline double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

/* ---- compiling a module twice --------------------------------------------- */

typedef int (*NamedLaunchFn)(const char *name, KernFn k, unsigned blocks, unsigned threads, int order,
                             uint64_t seed, float *const *b, int64_t g0, int64_t g1);
typedef const char *(*ReportFn)(void);

typedef struct Mod {
    char *dir;
    void *so_c, *so_cu;          /* so_c NULL for a CUDA-only module */
    LaunchFn launch;             /* dl_emu_launch_abi */
    NamedLaunchFn launch_named;  /* dl_emu_launch_named */
    ReportFn report;             /* dl_emu_report */
} Mod;

/* Write prelude + body to dir/name; 0 when it succeeds. */
static inline int write_src(const char *dir, const char *name, const char *prelude, const char *body)
{
    char *src = dl_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(src, "w");
    int rc = f ? 0 : -1;
    if (f) {
        fputs(prelude, f);
        fputs(body, f);
        rc = fclose(f);
    }
    if (rc) perror(src);
    free(src);
    return rc;
}

/* Run a shell command; on failure show it and the head of its log. */
static inline int run_cmd(const char *cmd, const char *log)
{
    if (system(cmd) == 0) return 0;
    fprintf(stderr, "failed: %s\n", cmd);
    char *show = dl_xasprintf("head -40 %s >&2", log);
    if (system(show) != 0) fprintf(stderr, "(cannot show %s)\n", log);
    free(show);
    return -1;
}

/* g++'s options for the CUDA module; -fno-gnu-unique: the header's inline
 * thread_local built-ins stay local to each dlopen'ed module (no
 * STB_GNU_UNIQUE binding across modules).  Warnings fail the build: the
 * CUDA text must be clean C++ as well. */
#define CXX_FLAGS "g++ -std=c++17 " FLAGS " -fno-gnu-unique -Wall -Wextra -Werror"

/* The emulation header precompiled once per run (g++ uses DIR/h.gch for
 * -include DIR/h when the options match): most of a small module's build. */
static char *pch_dir;
static inline void pch_cleanup(void)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", pch_dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", pch_dir);
    free(cmd);
}
static inline const char *emu_header(void)
{
    static char *path;
    if (path) return path;
    char tmpl[] = "/tmp/dldl_cuemu_pch_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    pch_dir = dl_xstrdup(tmpl);
    atexit(pch_cleanup);
    path = dl_xasprintf("%s/cuda_host_emu.h", pch_dir);
    char *cmd = dl_xasprintf("cp " EMU_HEADER " %s && " CXX_FLAGS " -x c++-header %s -o %s.gch 2> %s/pch.log", path,
                             path, path, pch_dir);
    char *log = dl_xasprintf("%s/pch.log", pch_dir);
    assert_int_equal(run_cmd(cmd, log), 0);
    free(cmd), free(log);
    return path;
}

/* The C module with cc and the CUDA module with g++ under the emulation
 * header (both at once), from the C and the CUDA bodies; both loaded. */
static inline void mod_build_as(Mod *m, const char *body, const char *body_cuda, int with_c)
{
    memset(m, 0, sizeof *m);
    assert_int_equal(access(EMU_HEADER, R_OK), 0); /* run from the repository root */
    char tmpl[] = "/tmp/dldl_cuemu_XXXXXX";
    assert_non_null(mkdtemp(tmpl));
    m->dir = dl_xstrdup(tmpl);
    const char *d = m->dir, *cc = getenv("CC") ? getenv("CC") : "cc";
    char *so_c = dl_xasprintf("%s/c.so", d), *so_cu = dl_xasprintf("%s/cu.so", d);
    assert_int_equal(write_src(d, "k.cu", cg_prelude_cuda(), body_cuda), 0);
    char *cu_cmd = dl_xasprintf(CXX_FLAGS " -x c++ -include %s -o %s %s/k.cu 2> %s/cc.log", emu_header(), so_cu, d, d);
    char *cmd;
    if (with_c) {
        assert_int_equal(write_src(d, "k.c", cg_prelude_c(), body), 0);
        cmd = dl_xasprintf("%s -std=c11 " FLAGS " -o %s %s/k.c -lm 2> %s/c.log & %s; r=$?; wait $! || "
                           "{ cat %s/c.log >> %s/cc.log; exit 1; }; exit $r",
                           cc, so_c, d, d, cu_cmd, d, d);
    } else {
        cmd = dl_xstrdup(cu_cmd);
    }
    char *log = dl_xasprintf("%s/cc.log", d);
    assert_int_equal(run_cmd(cmd, log), 0);
    free(cmd), free(cu_cmd), free(log);
    m->so_c = with_c ? dlopen(so_c, RTLD_NOW | RTLD_LOCAL) : NULL;
    m->so_cu = dlopen(so_cu, RTLD_NOW | RTLD_LOCAL);
    if ((with_c && !m->so_c) || !m->so_cu) fail_msg("dlopen: %s", dlerror());
    m->launch = (LaunchFn)dlsym(m->so_cu, "dl_emu_launch_abi");
    m->launch_named = (NamedLaunchFn)dlsym(m->so_cu, "dl_emu_launch_named");
    m->report = (ReportFn)dlsym(m->so_cu, "dl_emu_report");
    assert_non_null(m->launch);
    assert_non_null(m->launch_named);
    assert_non_null(m->report);
    free(so_c), free(so_cu);
}
/* Both modules from one body; from the C and the CUDA module's bodies. */
static inline void mod_build(Mod *m, const char *body) { mod_build_as(m, body, body, 1); }
static inline void mod_build2(Mod *m, const char *body, const char *body_cuda) { mod_build_as(m, body, body_cuda, 1); }

static inline KernFn mod_sym(void *so, const char *name)
{
    KernFn f = (KernFn)dlsym(so, name);
    if (!f) fail_msg("kernel %s not in the module", name);
    return f;
}

static inline void mod_free(Mod *m)
{
    if (m->so_c) dlclose(m->so_c);
    dlclose(m->so_cu);
    char *cmd = dl_xasprintf("rm -rf '%s'", m->dir);
    if (system(cmd) != 0) fprintf(stderr, "cannot remove %s\n", m->dir);
    free(cmd);
    free(m->dir);
}

/* A 64-bit LCG: the tests' random inputs, reproducible from rng_state. */
static uint64_t rng_state;
static inline double urand(double lo, double hi)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return lo + (hi - lo) * (double)(rng_state >> 11) / 9007199254740992.0;
}

#endif
