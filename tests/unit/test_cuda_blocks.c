/* test_cuda_blocks.c - the emulated CUDA device's block semantics
 * (codegen/cuda_host_emu.h; docs/cuda.md): thread orders, barriers, shared
 * memory, warp shuffles, and what it exists to catch.
 *
 * A hand-written racy kernel shows that the schedules expose an
 * order-dependent result; hand-written block reductions (a shared-memory
 * tree, warp shuffles) give the same bits in every schedule with no report,
 * and the tree without its barrier is reported as a race in every schedule,
 * as is a generated reduction (batch-norm statistics) whose IR lost a barrier;
 * a divergent barrier and a read of unwritten shared memory are reported.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "../ref/emu_module.h"
#include "../ref/gbuild.h"
#include "../../codegen/codegen.h"
#include "../../compiler/plan_build.h"

/* ---- the emulation itself ---------------------------------------------------- */

/* A kernel with a race (every work item writes out[0]) must give different
 * results in forward and reverse order; a correct one must not. */
static void test_thread_orders_expose_a_race(void **st)
{
    (void)st;
    Mod m;
    mod_build(&m, "DL_KERNEL(racy) {\n"
                  "    float *DL_RESTRICT out = dl_b[1];\n"
                  "    DL_FOR_GID(gid) { out[0] = dl_b[0][gid]; out[1 + gid] = 2.0f * dl_b[0][gid]; }\n"
                  "}\n");
    KernFn fcu = mod_sym(m.so_cu, "racy");
    enum { N = 100 };
    float in[N], out[NORDERS][N + 1];
    for (int i = 0; i < N; i++) in[i] = (float)i;
    for (int o = 0; o < NORDERS; o++) {
        float *b[2] = {in, out[o]};
        assert_int_equal(m.launch(fcu, 4, 32, o, 7, b, 0, N), 0);
        for (int i = 0; i < N; i++) assert_true(out[o][1 + i] == 2.0f * (float)i); /* race-free part */
        printf("  racy kernel, 4x32 %s: out[0] = %g\n", order_name[o], out[o][0]);
    }
    assert_true(out[ORDER_FORWARD][0] == (float)(N - 1));
    assert_true(out[ORDER_REVERSE][0] == 0.0f);
    assert_true(out[ORDER_FORWARD][0] != out[ORDER_REVERSE][0]);
    float *b[2] = {in, out[0]};
    assert_int_equal(m.launch(fcu, 0, 32, ORDER_FORWARD, 1, b, 0, N), -1); /* empty launch shape */
    mod_free(&m);
}

/* ---- block semantics: barriers, shared memory, shuffles, races -------------------- */

/* Hand-written CUDA kernels (not generated): row sums of a [rows, ROWLEN]
 * matrix, one block of 128 threads per row (grid-stride over rows).  Each
 * thread sums a strided part of the row, then a tree in shared memory halves
 * the partial sums with a barrier per level.  BARRIER is the barrier inside
 * the tree: empty in the broken variant.  The warp variant reduces each warp
 * with __shfl_down_sync, then warp 0 reduces the four warp sums. */
#define ROWLEN 1000
#define BLOCK_SUM(NAME, BARRIER)                                                               \
    "DL_KERNEL(" NAME ") {\n"                                                                  \
    "    DL_SHARED(float, sh, 128);\n"                                                         \
    "    const float *in = dl_b[0]; float *out = dl_b[1];\n"                                   \
    "    unsigned t = threadIdx.x;\n"                                                          \
    "    for (int64_t row = dl_g0 + blockIdx.x; row < dl_g1; row += gridDim.x) {\n"            \
    "        float acc = 0.0f;\n"                                                              \
    "        for (int64_t i = t; i < 1000; i += blockDim.x) acc += in[row * 1000 + i];\n"      \
    "        sh[t] = acc;\n"                                                                   \
    "        __syncthreads();\n"                                                               \
    "        for (unsigned h = 64; h > 0; h >>= 1) {\n"                                        \
    "            if (t < h) sh[t] += sh[t + h];\n"                                             \
    "            " BARRIER "\n"                                                                \
    "        }\n"                                                                              \
    "        if (t == 0) out[row] = sh[0];\n"                                                  \
    "        __syncthreads();\n"                                                               \
    "    }\n"                                                                                  \
    "}\n"
static const char block_kernels[] =
    BLOCK_SUM("tree_sum", "__syncthreads();")
    BLOCK_SUM("tree_sum_no_barrier", "")
    "DL_KERNEL(warp_sum) {\n"
    "    DL_SHARED(float, wsum, 4);\n"
    "    const float *in = dl_b[0]; float *out = dl_b[1];\n"
    "    unsigned t = threadIdx.x, lane = t % 32, w = t / 32;\n"
    "    for (int64_t row = dl_g0 + blockIdx.x; row < dl_g1; row += gridDim.x) {\n"
    "        float acc = 0.0f;\n"
    "        for (int64_t i = t; i < 1000; i += blockDim.x) acc += in[row * 1000 + i];\n"
    "        for (int off = 16; off > 0; off >>= 1) acc += __shfl_down_sync(0xffffffffu, acc, off);\n"
    "        if (lane == 0) wsum[w] = acc;\n"
    "        __syncthreads();\n"
    "        if (w == 0) {\n"
    "            float v = lane < 4 ? (float)wsum[lane] : 0.0f;\n"
    "            for (int off = 2; off > 0; off >>= 1) v += __shfl_down_sync(0xffffffffu, v, off);\n"
    "            if (lane == 0) out[row] = v;\n"
    "        }\n"
    "        __syncthreads();\n"
    "    }\n"
    "}\n"
    "DL_KERNEL(divergent_barrier) {\n"
    "    (void)dl_g0, (void)dl_g1;\n"
    "    if (threadIdx.x < 5) __syncthreads();\n"
    "    dl_b[1][threadIdx.x] = 1.0f;\n"
    "}\n"
    "DL_KERNEL(read_unwritten) {\n"
    "    (void)dl_g0, (void)dl_g1;\n"
    "    DL_SHARED(float, sh, 128);\n"
    "    if (threadIdx.x > 0) sh[threadIdx.x] = 1.0f;\n"
    "    __syncthreads();\n"
    "    dl_b[1][threadIdx.x] = sh[(threadIdx.x + 1) % 128];\n"
    "}\n";

enum { NROWS = 6 };

/* What tree_sum computes for one row (the same float additions in the same order). */
static float tree_ref(const float *row)
{
    float part[128];
    for (int t = 0; t < 128; t++) {
        float acc = 0.0f;
        for (int i = t; i < ROWLEN; i += 128) acc += row[i];
        part[t] = acc;
    }
    for (int h = 64; h > 0; h >>= 1)
        for (int t = 0; t < h; t++) part[t] += part[t + h];
    return part[0];
}
/* What warp_sum computes: shuffle-down trees per warp, then over the warps. */
static float warp_ref(const float *row)
{
    float part[128], w4[4];
    for (int t = 0; t < 128; t++) {
        float acc = 0.0f;
        for (int i = t; i < ROWLEN; i += 128) acc += row[i];
        part[t] = acc;
    }
    for (int w = 0; w < 4; w++) {
        float *p = part + 32 * w;
        for (int off = 16; off > 0; off >>= 1)
            for (int l = 0; l + off < 32; l++) p[l] += p[l + off];
        w4[w] = p[0];
    }
    for (int off = 2; off > 0; off >>= 1)
        for (int l = 0; l + off < 4; l++) w4[l] += w4[l + off];
    return w4[0];
}

/* Launch name on in -> out in every order and two grid shapes; returns the
 * number of launches with rc, and counts those whose result differs from want. */
static int launch_all(const Mod *m, const char *name, float *in, int want_rc, const float *want, int *wrong)
{
    KernFn f = mod_sym(m->so_cu, name);
    int nrc = 0;
    *wrong = 0;
    for (int o = 0; o < NORDERS; o++)
        for (unsigned blocks = 2; blocks <= NROWS; blocks += NROWS - 2) {
            float out[NROWS] = {0};
            float *b[2] = {in, out};
            int rc = m->launch_named(name, f, blocks, 128, o, 17 + blocks, b, 0, NROWS);
            if (rc == want_rc) nrc++;
            if (rc != 0) printf("  %s %u x 128 %s: rc %d: %s\n", name, blocks, order_name[o], rc, m->report());
            int differs = 0;
            for (int r = 0; want && r < NROWS; r++) differs |= memcmp(&out[r], &want[r], sizeof(float)) != 0;
            *wrong += differs;
        }
    return nrc;
}

/* A correct block reduction gives the same bits in every schedule, with no
 * report; without its barrier the emulation reports the shared-memory race. */
static void test_block_reduction_and_race(void **st)
{
    (void)st;
    Mod m;
    mod_build_as(&m, block_kernels, block_kernels, 0);
    float *in = dl_xcalloc(NROWS * ROWLEN, sizeof *in), tree[NROWS], warp[NROWS];
    rng_state = 42;
    for (int i = 0; i < NROWS * ROWLEN; i++) in[i] = (float)urand(-1, 1);
    for (int r = 0; r < NROWS; r++) tree[r] = tree_ref(in + r * ROWLEN), warp[r] = warp_ref(in + r * ROWLEN);
    int wrong, nlaunch = 2 * NORDERS;
    assert_int_equal(launch_all(&m, "tree_sum", in, 0, tree, &wrong), nlaunch);
    assert_int_equal(wrong, 0);
    assert_int_equal(launch_all(&m, "warp_sum", in, 0, warp, &wrong), nlaunch);
    assert_int_equal(wrong, 0);
    /* the broken kernel: every schedule reports the race, naming it */
    assert_int_equal(launch_all(&m, "tree_sum_no_barrier", in, -2, NULL, &wrong), nlaunch);
    assert_non_null(strstr(m.report(), "race: thread"));
    assert_non_null(strstr(m.report(), "kernel 'tree_sum_no_barrier' block"));
    assert_non_null(strstr(m.report(), "sh["));
    mod_free(&m);
    free(in);
}

/* A barrier reached by some threads only is divergence; a read of shared
 * memory nobody wrote in this block is reported. */
static void test_divergence_and_unwritten_reads(void **st)
{
    (void)st;
    Mod m;
    mod_build_as(&m, block_kernels, block_kernels, 0);
    float out[128], *b[2] = {out, out};
    for (int o = 0; o < NORDERS; o++) {
        int rc = m.launch_named("divergent_barrier", mod_sym(m.so_cu, "divergent_barrier"), 2, 32, o, 5, b, 0, 64);
        printf("  divergent_barrier %s: rc %d: %s\n", order_name[o], rc, m.report());
        assert_int_equal(rc, -3);
        assert_non_null(strstr(m.report(), "barrier divergence"));
        rc = m.launch_named("read_unwritten", mod_sym(m.so_cu, "read_unwritten"), 1, 128, o, 5, b, 0, 128);
        printf("  read_unwritten %s: rc %d: %s\n", order_name[o], rc, m.report());
        assert_int_equal(rc, -2);
        assert_non_null(strstr(m.report(), "thread 127 reads sh[0], not written in this block"));
    }
    assert_int_equal(m.launch_named("x", mod_sym(m.so_cu, "tree_sum"), 1, 2048, 0, 1, b, 0, 1), -1);
    mod_free(&m);
}

/* A generated GPU reduction (batch-norm statistics of x [3,4,5,5]) with one
 * of its barriers removed from the IR: the emulation reports the race in
 * every schedule, while the intact kernel runs clean (and, launched with
 * twice its block size, does nothing rather than index past its arrays). */
static void test_generated_reduction_without_barrier(void **st)
{
    (void)st;
    DlPool *pool = dl_pool_new();
    Graph *g = graph_new(pool, 3);
    uint32_t x = gb(g, OP_INPUT, GB_NOIN, GB_SH(3, 4, 5, 5), (GAttr){.input = {IN_IMAGE}}, "x");
    uint32_t sts = gb(g, OP_BN_STATS, GB_IN(x), GB_SH(2, 4), (GAttr){.bn = {1e-5f, 0.1f}}, "bn.stats");
    gb_output(g, GOUT_LOSS_TERM, "stats", sts);
    DlDiag diag;
    dl_diag_init(&diag, NULL, stderr);
    PbProgram p = {.name = "nobar", .g = g};
    assert_int_equal(pb_compile_program(&p, 3, pool, &diag), 0);
    const CgKernel *ck = NULL;
    for (int i = 0; i < p.mod.nkernels; i++)
        if (p.mod.kernels[i].kir_gpu_len) ck = &p.mod.kernels[i];
    assert_non_null(ck);
    KirKernel k[2];
    char *why = NULL;
    DlBuf body = {0};
    for (int v = 0; v < 2; v++) { /* v = 0 intact, v = 1 without its second barrier */
        assert_int_equal(kir_decode(ck->kir_gpu, ck->kir_gpu_len, v ? "nobar_broken" : "nobar_intact", &k[v], &why), 0);
        KirBlock *root = &k[v].blocks.a[k[v].body];
        int seen = 0;
        for (int i = 0; v && i < root->n; i++)
            if (k[v].st.a[root->s[i]].op == KS_BARRIER && ++seen == 2) {
                memmove(&root->s[i], &root->s[i + 1], sizeof *root->s * (size_t)(root->n - i - 1));
                root->n--;
                break;
            }
        assert_int_equal(seen, v ? 2 : 0);
        kir_render(&k[v], &body);
    }
    Mod m;
    mod_build_as(&m, body.s, body.s, 0);
    float **bufs = dl_xcalloc((size_t)k[0].nbufs, sizeof *bufs);
    rng_state = 7;
    for (int a = 0; a < k[0].nbufs; a++) {
        bufs[a] = dl_xcalloc((size_t)k[0].bufs[a].numel, sizeof(float));
        for (int64_t e = 0; e < k[0].bufs[a].numel; e++) bufs[a][e] = (float)urand(-1, 1);
    }
    unsigned G = (unsigned)k[0].grid, T = (unsigned)k[0].block;
    /* launched with another block size than its proof assumed, it does nothing */
    float **before = dl_xcalloc((size_t)k[0].nbufs, sizeof *before);
    for (int a = 0; a < k[0].nbufs; a++)
        before[a] = dl_xmalloc(sizeof(float) * (size_t)k[0].bufs[a].numel),
        memcpy(before[a], bufs[a], sizeof(float) * (size_t)k[0].bufs[a].numel);
    assert_int_equal(m.launch_named("nobar_intact", mod_sym(m.so_cu, "nobar_intact"), G, 2 * T, 0, 3, bufs, 0, G), 0);
    for (int a = 0; a < k[0].nbufs; a++) {
        assert_memory_equal(before[a], bufs[a], sizeof(float) * (size_t)k[0].bufs[a].numel);
        free(before[a]);
    }
    free(before);
    for (int o = 0; o < NORDERS; o++) {
        int rc = m.launch_named("nobar_intact", mod_sym(m.so_cu, "nobar_intact"), G, T, o, 3, bufs, 0, G);
        assert_int_equal(rc, 0);
        rc = m.launch_named("nobar_broken", mod_sym(m.so_cu, "nobar_broken"), G, T, o, 3, bufs, 0, G);
        printf("  bn_stats without its second barrier, %ux%u %s: rc %d: %s\n", G, T, order_name[o], rc, m.report());
        assert_int_equal(rc, -2);
        assert_non_null(strstr(m.report(), "race: thread"));
    }
    for (int a = 0; a < k[0].nbufs; a++) free(bufs[a]);
    free(bufs);
    mod_free(&m);
    dl_buf_free(&body);
    kir_free(&k[0]), kir_free(&k[1]);
    pb_program_free(&p);
    dl_pool_free(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_thread_orders_expose_a_race),
        cmocka_unit_test(test_block_reduction_and_race),
        cmocka_unit_test(test_divergence_and_unwritten_reads),
        cmocka_unit_test(test_generated_reduction_without_barrier),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
