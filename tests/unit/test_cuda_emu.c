/* test_cuda_emu.c - the CUDA module run on the CPU under host emulation,
 * against the C module of the same kernels (issue 15; docs/cuda.md).
 *
 * For each program (every spec of specs/ and tests/ops/, train and eval, at
 * batch 2, through the real back end; plus small hand-built graphs of every
 * optimizer and of every group kind through the same pb_compile_program) the
 * very text NVRTC compiles, cg_prelude_cuda() + the CUDA bodies (GPU
 * schedules where a kernel has one), is compiled by g++ with
 * codegen/cuda_host_emu.h (precompiled once), and cg_prelude_c() + the C
 * bodies by cc, both with -O1 -ffp-contract=off (so neither compiler
 * contracts a*b+c into an FMA and the arithmetic is the same).  The
 * schedule then runs group by group on arenas laid out by the memory plan,
 * filled with random values (sources by role: normalised targets, positive
 * running variances, ...; library groups, conv and matmul, get random
 * outputs).  Before each kernel the kernel's buffers are saved; the C kernel runs over [0, grid) and gives the
 * expected buffers; the emulated CUDA kernel then runs from the saved state in
 * several launch shapes (flat kernels: 1x1 threads, 3x32, enough 128-thread
 * blocks to cover the grid, and two launches splitting [g0, g1); GPU
 * schedules: 1, 3 and grid blocks of their block size, and split) and three
 * schedules (forward, reverse, a seeded shuffle of the blocks and of the
 * threads' resumption after every barrier).  A flat kernel's buffers must
 * equal the expected ones bit for bit (NaN equal to NaN: the preludes spell
 * NaN with different payloads); a GPU schedule's within GPU_REL, with no race
 * or divergence reported; afterwards the whole arenas must match too (no
 * write outside the buffers).
 *
 * The emulation's own semantics (barriers, shared memory, races) are checked
 * by test_cuda_blocks.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../ref/emu_module.h"
#include "../ref/gbuild.h"
#include "../ref/spec_programs.h"
#include "../../codegen/codegen.h"
#include "../../compiler/autodiff.h"
#include "../../compiler/lower.h"
#include "../../compiler/plan_build.h"
#include "../../grammar/ast.h"

static int kernels_total, kernels_run, kernels_gpu;

/* ---- random arenas ---------------------------------------------------------- */

static float *node_buf(float **arena, const GMemPlan *mp, uint32_t i)
{
    const GBuffer *b = &mp->buf[i];
    return b->offset < 0 || b->numel == 0 ? NULL : arena[b->arena] + b->offset;
}

/* Every float random in (-1, 1), then the sources by role (as
 * test_kernels_ref.c: targets normalised rows, labels in [0, 6), running
 * statistics mean ~0 and variance ~1, gamma in (0.5, 1.5), scalars
 * [lr 0.05, momentum 0.9, step 5, seed 3], CONST data as given). */
static void fill_arenas(const Graph *g, const GMemPlan *mp, float **arena, const char *seed)
{
    rng_state = dl_hash64(seed, strlen(seed));
    for (int a = 0; a < AR_COUNT; a++)
        for (int64_t k = 0; k < mp->arena_size[a]; k++) arena[a][k] = (float)urand(-1, 1);
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *t = &g->nodes[i];
        float *v = node_buf(arena, mp, i);
        int64_t N = graph_numel(t);
        if (!v || graph_op_kind[t->op] != OPK_SOURCE) continue;
        if (t->op == OP_CONST) {
            memcpy(v, t->attr.cst.data, sizeof(float) * (size_t)N);
        } else if (t->op == OP_SCALARS) {
            v[0] = 0.05f, v[1] = 0.9f, v[2] = 5, v[3] = 3;
        } else if (t->op == OP_INPUT && t->attr.input.kind == IN_TARGET) {
            int64_t K = t->shape[1];
            for (int64_t b = 0; b < t->shape[0]; b++) {
                double s = 0, r[K];
                for (int64_t k = 0; k < K; k++) s += r[k] = urand(0, 1);
                for (int64_t k = 0; k < K; k++) v[b * K + k] = (float)(r[k] / s);
            }
        } else if (t->op == OP_INPUT && t->attr.input.kind == IN_LABEL) {
            for (int64_t k = 0; k < N; k++) v[k] = (float)urand(0, 6);
        } else if (t->op == OP_STATE && t->param == G_NONE) {
            for (int64_t k = 0; k < N; k++) v[k] = (float)(k < N / 2 ? urand(-0.2, 0.2) : urand(0.8, 1.2));
        } else if (t->op == OP_STATE && t->attr.ostate.slot == 1) { /* Adam's exp_avg_sq >= 0 */
            for (int64_t k = 0; k < N; k++) v[k] = (float)urand(0, 1);
        } else if (t->name && strstr(t->name, "gamma")) {
            for (int64_t k = 0; k < N; k++) v[k] = (float)urand(0.5, 1.5);
        }
    }
}

/* ---- one kernel, every launch shape and order ------------------------------ */

typedef struct Shape {
    unsigned blocks, threads;
    int split;             /* two launches: [0, grid/2) and [grid/2, grid) */
} Shape;

/* Equal bit for bit, or both NaN. */
static int same(float a, float b) { return memcmp(&a, &b, sizeof a) == 0 || (a != a && b != b); }

/* The tolerance of a GPU schedule against the C kernel: its sums are added
 * in another (fixed) order, in double, so the f32 results agree within
 * rounding; relative 1e-5, and 1e-9 absolute for results that cancel to ~0. */
#define GPU_REL 1e-5
#define GPU_ABS 1e-9

/* Compare n floats, bit for bit (rel < 0) or within rel relative error;
 * *maxdiff gets the largest |got - want| (inf when a NaN meets a number).
 * Returns the number that differ. */
static int64_t compare_tol(const float *got, const float *want, int64_t n, double rel, double *maxdiff)
{
    int64_t ndiff = 0;
    for (int64_t k = 0; k < n; k++)
        if (!same(got[k], want[k])) {
            double d = fabs((double)got[k] - (double)want[k]);
            if (!(d <= *maxdiff)) *maxdiff = d;
            if (rel < 0 || !(d <= rel * fabs((double)want[k]) + GPU_ABS)) ndiff++;
        }
    return ndiff;
}
static int64_t compare(const float *got, const float *want, int64_t n, double *maxdiff)
{
    return compare_tol(got, want, n, -1, maxdiff);
}

/* The kernel's buffers: copy them from src to dst (arena-shaped), or compare. */
static void copy_args(float **dst, float **src, const CgKernel *k)
{
    for (int a = 0; a < k->nargs; a++) {
        const CgArg *g = &k->args[a];
        memcpy(dst[g->arena] + g->offset, src[g->arena] + g->offset, sizeof(float) * (size_t)g->numel);
    }
}
static int64_t compare_args_tol(float **got, float **want, const CgKernel *k, double rel, double *maxdiff)
{
    int64_t nd = 0;
    for (int a = 0; a < k->nargs; a++) {
        const CgArg *g = &k->args[a];
        nd += compare_tol(got[g->arena] + g->offset, want[g->arena] + g->offset, g->numel, rel, maxdiff);
    }
    return nd;
}
static int64_t compare_args(float **got, float **want, const CgKernel *k, double *maxdiff)
{
    return compare_args_tol(got, want, k, -1, maxdiff);
}

/* Threads per block of k's GPU schedule, or 0 when it has none (flat). */
static int gpu_block(const CgKernel *k)
{
    if (!k->kir_gpu_len) return 0;
    KirKernel g;
    char *why = NULL;
    if (kir_decode(k->kir_gpu, k->kir_gpu_len, k->name, &g, &why) != 0) fail_msg("%s: GPU schedule: %s", k->name, why);
    int block = g.block;
    kir_free(&g);
    assert_true(block > 0);
    return block;
}

/* Run kernel k on arena (whose state is the input; want equals arena): C for
 * the expectation, then the emulated CUDA kernel in every shape and order
 * from the same input, restoring and comparing the kernel's buffers; at the
 * end the whole arenas, which catches a write outside the buffers by any run.
 * A flat kernel must match bit for bit in any launch shape; a kernel with a
 * GPU schedule is launched as kir_cuda_launch says (its block of threads per
 * work item; 1, 3 and grid blocks, and split), must match within GPU_REL and
 * must run without a race or divergence report.  Leaves the C result in
 * arena and want.  Returns the number of failures. */
static int run_kernel(const Mod *m, const CgKernel *k, const GMemPlan *mp, float **arena, float **save,
                      float **want)
{
    float **bufs = dl_xcalloc((size_t)k->nargs + 1, sizeof *bufs);
    for (int a = 0; a < k->nargs; a++) bufs[a] = arena[k->args[a].arena] + k->args[a].offset;
    KernFn fc = mod_sym(m->so_c, k->name), fcu = mod_sym(m->so_cu, k->name);
    int64_t G = k->grid;
    copy_args(save, arena, k);
    fc(bufs, 0, G);
    copy_args(want, arena, k);
    double unused = 0, maxdiff = 0;
    int64_t written = compare_args(want, save, k, &unused);
    Shape shapes[4] = {{1, 1, 0}, {3, 32, 0}, {(unsigned)((G + 127) / 128), 128, 0}, {2, 64, 1}};
    int block = gpu_block(k);
    double rel = block ? GPU_REL : -1;
    if (block) {
        Shape gs[4] = {{1, (unsigned)block, 0}, {3, (unsigned)block, 0}, {(unsigned)G, (unsigned)block, 0},
                       {2, (unsigned)block, 1}};
        memcpy(shapes, gs, sizeof shapes);
        kernels_gpu++;
    }
    if (shapes[2].blocks == 0) shapes[2].blocks = 1;
    int fails = 0, runs = 0;
    char tried[160];
    int len = 0;
    for (int s = 0; s < 4; s++) {
        len += snprintf(tried + len, sizeof tried - (size_t)len, "%s%ux%u%s", s ? " " : "", shapes[s].blocks,
                        shapes[s].threads, shapes[s].split ? "(split)" : "");
        for (int o = 0; o < NORDERS; o++, runs++) {
            copy_args(arena, save, k);
            uint64_t seed = 1000u * (unsigned)s + (unsigned)o + (uint64_t)G;
            int rc;
            if (shapes[s].split) {
                rc = m->launch_named(k->name, fcu, shapes[s].blocks, shapes[s].threads, o, seed, bufs, 0, G / 2);
                if (rc == 0)
                    rc = m->launch_named(k->name, fcu, shapes[s].blocks, shapes[s].threads, o, seed + 1, bufs, G / 2, G);
            } else
                rc = m->launch_named(k->name, fcu, shapes[s].blocks, shapes[s].threads, o, seed, bufs, 0, G);
            int64_t nd = compare_args_tol(arena, want, k, rel, &maxdiff);
            if ((rc != 0 || nd != 0) && fails++ == 0)
                printf("    %s: first failing launch %ux%u%s %s: rc %d (%s), %lld floats differ\n", k->name,
                       shapes[s].blocks, shapes[s].threads, shapes[s].split ? " split" : "", order_name[o], rc,
                       m->report(), (long long)nd);
        }
    }
    copy_args(arena, want, k);
    int64_t stray = 0;
    for (int a = 0; a < AR_COUNT; a++) stray += compare(arena[a], want[a], mp->arena_size[a], &maxdiff);
    printf("  %-40s grid %6lld  launches %s x fwd/rev/shuf  wrote %lld  max|diff| %.3g%s", k->name,
           (long long)G, tried, (long long)written, maxdiff, block ? "  (GPU schedule)" : "");
    if (fails) printf("  FAIL (%d of %d launches differ)", fails, runs);
    printf("\n");
    if (stray) printf("    %s: %lld floats outside its buffers changed  FAIL\n", k->name, (long long)stray);
    if (written == 0) printf("    %s wrote nothing: the comparison would be vacuous  FAIL\n", k->name);
    free(bufs);
    return fails + (stray != 0) + (written == 0);
}

/* The whole schedule of a compiled program, kernel by kernel. */
/* Check program p with the modules built from its bodies, or with mod (the
 * modules of several programs, whose kernel names differ) when not NULL. */
static void check_program_in(const PbProgram *p, const char *what, const Mod *mod)
{
    printf("%s: %d groups, %d kernels\n", what, p->sched.n, p->mod.nkernels);
    double t0 = now_s();
    Mod m;
    if (mod) m = *mod;
    else mod_build2(&m, p->mod.body, p->mod.body_cuda);
    double t1 = now_s();
    float *arena[AR_COUNT], *save[AR_COUNT], *want[AR_COUNT];
    for (int a = 0; a < AR_COUNT; a++) {
        size_t n = (size_t)p->mem.arena_size[a] + 1;
        arena[a] = dl_xcalloc(n, sizeof(float));
        save[a] = dl_xcalloc(n, sizeof(float));
        want[a] = dl_xcalloc(n, sizeof(float));
    }
    fill_arenas(p->g, &p->mem, arena, what);
    for (int a = 0; a < AR_COUNT; a++) memcpy(want[a], arena[a], sizeof(float) * (size_t)p->mem.arena_size[a]);
    int fails = 0;
    kernels_total += p->mod.nkernels;
    for (int gi = 0; gi < p->sched.n; gi++) {
        const GGroup *gr = &p->sched.groups[gi];
        if (gr->kind == GG_LIB) { /* conv / matmul: random outputs */
            for (int o = 0; o < gr->nouts; o++) {
                float *v = node_buf(arena, &p->mem, gr->outs[o]);
                const GBuffer *b = &p->mem.buf[gr->outs[o]];
                for (int64_t e = 0; v && e < graph_numel(&p->g->nodes[gr->outs[o]]); e++)
                    v[e] = want[b->arena][b->offset + e] = (float)urand(-1, 1);
            }
            continue;
        }
        int ki = -1;
        for (int k = 0; k < p->mod.nkernels; k++)
            if (p->mod.kernels[k].group == gi) ki = k;
        if (ki < 0) fail_msg("%s: group %d (%s) has no kernel", what, gi, gr->name);
        fails += run_kernel(&m, &p->mod.kernels[ki], &p->mem, arena, save, want);
        kernels_run++;
    }
    for (int a = 0; a < AR_COUNT; a++) free(arena[a]), free(save[a]), free(want[a]);
    if (!mod) mod_free(&m);
    printf("%s: modules built in %.1f s, kernels run in %.1f s\n", what, t1 - t0, now_s() - t1);
    assert_int_equal(fails, 0);
}

static void check_program(const PbProgram *p, const char *what) { check_program_in(p, what, NULL); }

/* Fuse, plan and generate g (verified) as program name, then check it. */
static void check_graph(Graph *g, DlPool *pool, const char *name)
{
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    assert_int_equal(graph_verify(g, name, &diag), 0);
    PbProgram p = {.name = name, .g = g};
    assert_int_equal(pb_compile_program(&p, 3, pool, &diag), 0);
    check_program(&p, name);
    pb_program_free(&p);
}

/* ---- the spec programs -------------------------------------------------------- */

/* specs/NAME.dldl at batch 2 (tests/ref/spec_programs.h): train (after
 * autodiff) and eval, every kernel under emulation. */
static void spec_case(const char *name)
{
    RefSpec r;
    ref_spec_open(&r, name, 2);
    /* one module pair for both programs (train_ and eval_ kernels) */
    double t0 = now_s();
    char *c = dl_xasprintf("%s%s", r.progs[0].mod.body, r.progs[1].mod.body);
    char *cu = dl_xasprintf("%s%s", r.progs[0].mod.body_cuda, r.progs[1].mod.body_cuda);
    Mod m;
    mod_build2(&m, c, cu);
    printf("%s: train and eval modules built in %.1f s\n", name, now_s() - t0);
    for (int p = 0; p < 2; p++) {
        char *what = dl_xasprintf("%s%s %s (batch %d)", name, strchr(name, '/') ? "" : ".dldl", r.progs[p].name,
                                  r.progs[p].g->batch);
        check_program_in(&r.progs[p], what, &m);
        free(what);
    }
    mod_free(&m);
    free(c), free(cu);
    ref_spec_close(&r);
}
static void test_age_programs_under_emulation(void **st) { (void)st; spec_case("age"); }
static void test_pose_programs_under_emulation(void **st) { (void)st; spec_case("pose"); }
static void test_adam_programs_under_emulation(void **st) { (void)st; spec_case("tests/ops/adam.dldl"); }
static void test_fcn_programs_under_emulation(void **st) { (void)st; spec_case("tests/ops/fcn.dldl"); }
/* the other specs of specs/ and tests/ops/: every kernel of every spec */
static void test_other_specs_under_emulation(void **st)
{
    (void)st;
    static const char *const names[] = {"age_gender", "emotion6", "fgnet", "ldl_maxent", "ldl_mlp", "voc_multilabel",
                                        "tests/ops/adamw.dldl", "tests/ops/sgd_nesterov.dldl"};
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) spec_case(names[i]);
}

/* ---- hand-built graphs (the op families of test_codegen.c) -------------------- */

/* Elementwise chain, batch norm forward/backward/running/inference, the loss
 * tail with two axes, dropout: one graph. */
static void test_hand_graph_under_emulation(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 3);
    GAttr bn = {.bn = {1e-5f, 0.1f}};
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 4, 5, 5), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 4, 5, 5), (GAttr){.input = {IN_IMAGE}}, "dy");
    uint32_t b = gb_param(g, GB_SH(4), "b");
    uint32_t y1 = gb(g, OP_BIAS_ADD, GB_IN(x, b), GB_SH(3, 4, 5, 5), GB_NOATTR, "y1");
    uint32_t y2 = gb(g, OP_RELU, GB_IN(y1), GB_SH(3, 4, 5, 5), GB_NOATTR, "y2");
    uint32_t y3 = gb(g, OP_RELU_BWD, GB_IN(dy, y2), GB_SH(3, 4, 5, 5), GB_NOATTR, "y3");
    uint32_t y4 = gb(g, OP_SCALE, GB_IN(y3), GB_SH(3, 4, 5, 5), (GAttr){.f = 0.5f}, "y4");
    uint32_t y5 = gb(g, OP_MUL, GB_IN(y4, y1), GB_SH(3, 4, 5, 5), GB_NOATTR, "y5");
    uint32_t y6 = gb(g, OP_EXP, GB_IN(y5), GB_SH(3, 4, 5, 5), GB_NOATTR, "y6");
    uint32_t cs = gb(g, OP_CHAN_SUM, GB_IN(y6), GB_SH(4), GB_NOATTR, "y6.csum");
    gb_output(g, GOUT_LOSS_TERM, "cs", cs);
    uint32_t gamma = gb_param(g, GB_SH(4), "bn.gamma"), beta = gb_param(g, GB_SH(4), "bn.beta");
    uint32_t run = gb(g, OP_STATE, GB_NOIN, GB_SH(2, 4), GB_NOATTR, "bn.running");
    uint32_t sts = gb(g, OP_BN_STATS, GB_IN(x), GB_SH(2, 4), bn, "bn.stats");
    uint32_t inf = gb(g, OP_BN_INFER, GB_IN(x, run, gamma, beta), GB_SH(3, 4, 5, 5), bn, "bn.infer");
    uint32_t y = gb(g, OP_BN_APPLY, GB_IN(x, sts, gamma, beta), GB_SH(3, 4, 5, 5), bn, "bn.y");
    uint32_t r = gb(g, OP_RELU, GB_IN(y), GB_SH(3, 4, 5, 5), GB_NOATTR, "bn.r");
    uint32_t dr = gb(g, OP_RELU_BWD, GB_IN(dy, r), GB_SH(3, 4, 5, 5), GB_NOATTR, "d.bn.y");
    uint32_t bs = gb(g, OP_BN_BWD_STATS, GB_IN(dr, x, sts), GB_SH(2, 4), bn, "d.bn.bstats");
    uint32_t dx = gb(g, OP_BN_BWD_DATA, GB_IN(dr, x, sts, gamma, bs), GB_SH(3, 4, 5, 5), bn, "d.x");
    uint32_t dbeta = gb(g, OP_SELECT, GB_IN(bs), GB_SH(4), (GAttr){.i = 0}, "d.bn.beta");
    uint32_t ru = gb(g, OP_BN_RUNNING, GB_IN(sts, run), GB_SH(2, 4), bn, "bn.run_update");
    g->nodes[ru].inplace = run;
    gb_output(g, GOUT_LOSS_TERM, "inf", inf);
    gb_output(g, GOUT_LOSS_TERM, "dx", dx);
    gb_output(g, GOUT_LOSS_TERM, "dbeta", dbeta);
    uint32_t z = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 7), (GAttr){.input = {IN_IMAGE}}, "z");
    uint32_t t = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 7), (GAttr){.input = {IN_TARGET}}, "target");
    uint32_t lab = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 2), (GAttr){.input = {IN_LABEL}}, "label");
    float *v = dl_pool_alloc(pool, 14 * sizeof *v);
    for (int k = 0; k < 7; k++) v[k] = (float)k, v[7 + k] = (float)(6 - k) * 0.5f;
    uint32_t bins = gb(g, OP_CONST, GB_NOIN, GB_SH(2, 7), (GAttr){.cst = {v}}, "bins");
    gb_loss_tail(g, z, t, lab, bins, 0.1f);
    uint32_t sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    uint32_t dx2 = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 64), (GAttr){.input = {IN_IMAGE}}, "dropin");
    uint32_t d = gb(g, OP_DROPOUT, GB_IN(dx2, sc), GB_SH(3, 64), (GAttr){.dropout = {0.2f, 77}}, "drop");
    uint32_t dd = gb(g, OP_DROPOUT_BWD, GB_IN(dx2, sc), GB_SH(3, 64), (GAttr){.dropout = {0.2f, 77}}, "d.drop");
    gb_output(g, GOUT_LOSS_TERM, "d", d);
    gb_output(g, GOUT_LOSS_TERM, "dd", dd);
    check_graph(g, pool, "hand");
    dl_pool_free(pool);
}

/* Max/avg pooling and their gradients in the configurations of
 * test_codegen.c's test_pool_shapes (scatter, stride > size, gather, padding)
 * plus global average pooling, on 7x7 planes with ties. */
static void test_pool_graph_under_emulation(void **st)
{
    (void)st;
    static const int cfg[6][3] = {{2, 2, 0}, {3, 3, 0}, {3, 3, 1}, {2, 2, 1}, {2, 3, 0}, {3, 2, 1}};
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 7, 7), (GAttr){.input = {IN_IMAGE}}, "x");
    for (int c = 0; c < 6; c++) {
        int ks = cfg[c][0], s = cfg[c][1], p = cfg[c][2];
        int64_t o = (7 + 2 * p - ks) / s + 1;
        GAttr a = {.pool = {ks, s, p}};
        char *nm[5];
        static const char *const fmt[5] = {"dy%d", "max%d", "max%d.dx", "avg%d", "avg%d.dx"};
        for (int i = 0; i < 5; i++) {
            char tmp[32];
            snprintf(tmp, sizeof tmp, fmt[i], c);
            nm[i] = dl_pool_strdup(pool, tmp);
        }
        uint32_t dyn = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, o, o), (GAttr){.input = {IN_IMAGE}}, nm[0]);
        uint32_t m0 = gb(g, OP_MAXPOOL, GB_IN(x), GB_SH(2, 3, o, o), a, nm[1]);
        uint32_t m1 = gb(g, OP_MAXPOOL_BWD, GB_IN(dyn, x), GB_SH(2, 3, 7, 7), a, nm[2]);
        uint32_t m2 = gb(g, OP_AVGPOOL, GB_IN(x), GB_SH(2, 3, o, o), a, nm[3]);
        uint32_t m3 = gb(g, OP_AVGPOOL_BWD, GB_IN(dyn), GB_SH(2, 3, 7, 7), a, nm[4]);
        gb_output(g, GOUT_LOSS_TERM, nm[1], m0);
        gb_output(g, GOUT_LOSS_TERM, nm[2], m1);
        gb_output(g, GOUT_LOSS_TERM, nm[3], m2);
        gb_output(g, GOUT_LOSS_TERM, nm[4], m3);
    }
    uint32_t gp = gb(g, OP_GAP, GB_IN(x), GB_SH(2, 3), GB_NOATTR, "gap");
    uint32_t dgp = gb(g, OP_GAP_BWD, GB_IN(gp), GB_SH(2, 3, 7, 7), GB_NOATTR, "gap.dx");
    gb_output(g, GOUT_LOSS_TERM, "gap.dx", dgp);
    check_graph(g, pool, "pool");
    dl_pool_free(pool);
}

/* upsample and its adjoint (nearest, bilinear; factors 2x2, 3x2, 3x4), concat
 * of planes and of vectors, slices. */
static void test_resample_graph_under_emulation(void **st)
{
    (void)st;
    static const int cfg[4][3] = {{2, 2, 0}, {3, 2, 0}, {2, 2, 1}, {3, 4, 1}};
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 3, 5), (GAttr){.input = {IN_IMAGE}}, "x");
    for (int c = 0; c < 4; c++) {
        int fh = cfg[c][0], fw = cfg[c][1];
        GAttr a = {.up = {fh, fw, cfg[c][2]}};
        char *nm[3] = {dl_xasprintf("up%d", c), dl_xasprintf("dy%d", c), dl_xasprintf("up%d.dx", c)};
        const char *pn[3];
        for (int i = 0; i < 3; i++) pn[i] = dl_pool_strdup(pool, nm[i]), free(nm[i]);
        uint32_t u = gb(g, OP_UPSAMPLE, GB_IN(x), GB_SH(2, 3, 3 * fh, 5 * fw), a, pn[0]);
        uint32_t dy = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 3, 3 * fh, 5 * fw), (GAttr){.input = {IN_IMAGE}}, pn[1]);
        uint32_t dx = gb(g, OP_UPSAMPLE_BWD, GB_IN(dy), GB_SH(2, 3, 3, 5), a, pn[2]);
        gb_output(g, GOUT_LOSS_TERM, pn[0], u);
        gb_output(g, GOUT_LOSS_TERM, pn[2], dx);
    }
    uint32_t y = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 2, 3, 5), (GAttr){.input = {IN_IMAGE}}, "y");
    uint32_t cat = gb(g, OP_CONCAT, GB_IN(y, x, y), GB_SH(2, 7, 3, 5), GB_NOATTR, "cat");
    uint32_t s1 = gb(g, OP_SLICE, GB_IN(cat), GB_SH(2, 3, 3, 5), (GAttr){.i = 2}, "cat.s2");
    uint32_t v = gb(g, OP_INPUT, GB_NOIN, GB_SH(2, 4), (GAttr){.input = {IN_IMAGE}}, "v");
    uint32_t vcat = gb(g, OP_CONCAT, GB_IN(v, v), GB_SH(2, 8), GB_NOATTR, "vcat");
    uint32_t vs = gb(g, OP_SLICE, GB_IN(vcat), GB_SH(2, 3), (GAttr){.i = 4}, "vcat.s4");
    gb_output(g, GOUT_LOSS_TERM, "s1", s1);
    gb_output(g, GOUT_LOSS_TERM, "vs", vs);
    check_graph(g, pool, "resample");
    dl_pool_free(pool);
}

/* An optimizer update `op` (attr at) over two parameters, in place. */
static void opt_graph(GOp op, GAttr at, const char *what)
{
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 2);
    uint32_t sc = gb(g, OP_SCALARS, GB_NOIN, GB_SH(4), GB_NOATTR, "scalars");
    int64_t rows[2] = {3, 5}, cols[2] = {4, 2};
    int adam = op == OP_ADAM || op == OP_ADAMW;
    static const char *const state[2][2] = {{"w1.state0", "w1.state1"}, {"w2.state0", "w2.state1"}};
    for (int k = 0; k < 2; k++) {
        uint32_t w = gb_param(g, GB_SH(rows[k], cols[k]), k ? "w2" : "w1");
        uint32_t gi = gb(g, OP_INPUT, GB_NOIN, GB_SH(rows[k], cols[k]), (GAttr){.input = {IN_IMAGE}},
                         k ? "g2.in" : "g1.in");
        uint32_t gr = gb(g, OP_SCALE, GB_IN(gi), GB_SH(rows[k], cols[k]), (GAttr){.f = 2.0f}, k ? "grad.w2" : "grad.w1");
        g->nodes[gr].param = w;
        uint32_t st[2];
        for (int s = 0; s < 1 + adam; s++) {
            st[s] = gb(g, OP_STATE, GB_NOIN, GB_SH(rows[k], cols[k]), (GAttr){.ostate = {s}}, state[k][s]);
            g->nodes[st[s]].param = w;
        }
        uint32_t u = adam ? gb(g, op, GB_IN(w, gr, st[0], st[1], sc), GB_SH(rows[k], cols[k]), at, k ? "w2.upd" : "w1.upd")
                          : gb(g, op, GB_IN(w, gr, st[0], sc), GB_SH(rows[k], cols[k]), at, k ? "w2.upd" : "w1.upd");
        g->nodes[u].inplace = w;
    }
    check_graph(g, pool, what);
    dl_pool_free(pool);
}

/* PyTorch SGD (momentum, weight decay; plain and Nesterov), Adam and AdamW
 * over two parameters, in place: the Adam kernels' double exp/log/sqrt are
 * glibc's on both sides. */
static void test_optimizer_graphs_under_emulation(void **st)
{
    (void)st;
    opt_graph(OP_SGD, (GAttr){.sgd = {5e-4f}}, "sgd");
    opt_graph(OP_SGD_NESTEROV, (GAttr){.sgd = {5e-4f}}, "sgd_nesterov");
    opt_graph(OP_ADAM, (GAttr){.adam = {1e-2f, 0.999, 1e-8}}, "adam");
    opt_graph(OP_ADAMW, (GAttr){.adam = {1e-2f, 0.999, 1e-8}}, "adamw");
}


static void test_coverage(void **st)
{
    (void)st;
    printf("kernels run under CUDA emulation and compared with C: %d of %d (%d with a GPU schedule)\n", kernels_run,
           kernels_total, kernels_gpu);
    assert_true(kernels_gpu > 0);
    assert_true(kernels_total > 0);
    assert_int_equal(kernels_run, kernels_total);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_graph_under_emulation),
        cmocka_unit_test(test_pool_graph_under_emulation),
        cmocka_unit_test(test_resample_graph_under_emulation),
        cmocka_unit_test(test_optimizer_graphs_under_emulation),
        cmocka_unit_test(test_age_programs_under_emulation),
        cmocka_unit_test(test_pose_programs_under_emulation),
        cmocka_unit_test(test_adam_programs_under_emulation),
        cmocka_unit_test(test_fcn_programs_under_emulation),
        cmocka_unit_test(test_other_specs_under_emulation),
        cmocka_unit_test(test_coverage),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
