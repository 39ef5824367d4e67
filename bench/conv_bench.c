/* conv_bench.c - oneDNN convolution layouts on the age network (cpu_lib.h).
 *
 * The eight 3x3 pad-1 convolutions of specs/age.dldl at batch 64, forward,
 * backward data and backward weights, each (a) on primitives created with our
 * plain nchw / oihw descriptors and (b) with format_tag any plus reorders from
 * and to our NCHW buffers inside the step (what dl_conv_run does).  Prints ms
 * (median of REPS runs after one warm-up) and GFLOP/s per layer and pass, and
 * the totals that decide cpu_lib.c's DL_CONV_DEFAULT.
 *
 *   cc -O2 -fopenmp -D_GNU_SOURCE -I. bench/conv_bench.c runtime/cpu_lib.c \
 *      common/util.c -o build/conv_bench -ldnnl -lopenblas -lxxhash
 *   build/conv_bench [reps] [threads]
 *
 * Result on the 2-core AMD EPYC (AVX2) of this project, 2 threads, reps 7
 * (shared machine: single rows are noisy, totals agree across runs):
 *
 *   layer            pass       plain ms  GFLOP/s   blocked ms  GFLOP/s
 *     3->32  64x64  fwd           10.04     45.1         7.76     58.4
 *     3->32  64x64  bwd-data      15.81     28.7        16.58     27.3
 *     3->32  64x64  bwd-wei       13.94     32.5         9.50     47.7
 *    32->32  64x64  fwd           86.58     55.8        44.23    109.2
 *    32->32  64x64  bwd-data      75.49     64.0        35.50    136.1
 *    32->32  64x64  bwd-wei       83.25     58.0        54.67     88.4
 *    32->64  32x32  fwd           35.25     68.5        25.09     96.3
 *    32->64  32x32  bwd-data      38.80     62.3        21.37    113.1
 *    32->64  32x32  bwd-wei       36.19     66.8        30.63     78.9
 *    64->64  32x32  fwd           54.54     88.6        39.06    123.7
 *    64->64  32x32  bwd-data      57.20     84.5        54.59     88.5
 *    64->64  32x32  bwd-wei      152.43     31.7        41.93    115.2
 *    64->128 16x16  fwd           18.57    130.1        17.06    141.7
 *    64->128 16x16  bwd-data      22.37    108.0        15.97    151.3
 *    64->128 16x16  bwd-wei       18.50    130.6        20.55    117.6
 *   128->128 16x16  fwd           41.97    115.1        33.16    145.7
 *   128->128 16x16  bwd-data      56.97     84.8        37.41    129.1
 *   128->128 16x16  bwd-wei       80.24     60.2       104.00     46.5
 *   128->128  8x8   fwd            9.64    125.3         8.05    150.1
 *   128->128  8x8   bwd-data      10.27    117.6         7.25    166.6
 *   128->128  8x8   bwd-wei        9.86    122.5        10.22    118.2
 *   128->128  8x8   fwd           15.04     80.3         8.12    148.8
 *   128->128  8x8   bwd-data      10.09    119.8         7.13    169.5
 *   128->128  8x8   bwd-wei       10.03    120.5         9.65    125.2
 *   total all                    963.06                659.45
 *
 * Blocked (format_tag any + reorders) wins: cpu_lib.c's default.
 */
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/util.h"
#include "runtime/cpu_lib.h"

static const int LAYERS[8][3] = {/* C, O, H(=W) */
    {3, 32, 64}, {32, 32, 64}, {32, 64, 32}, {64, 64, 32},
    {64, 128, 16}, {128, 128, 16}, {128, 128, 8}, {128, 128, 8}};

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static float *randbuf(size_t n)
{
    float *p = dl_xmalloc(n * sizeof *p);
    for (size_t i = 0; i < n; i++) p[i] = (float)rand() / RAND_MAX - 0.5f;
    return p;
}

int main(int argc, char **argv)
{
    int reps = argc > 1 ? atoi(argv[1]) : 5, threads = argc > 2 ? atoi(argv[2]) : 2;
    if (reps < 1) reps = 1;
    omp_set_num_threads(threads);
    static const char *const pass[3] = {"fwd", "bwd-data", "bwd-wei"};
    double total[2][3] = {{0}};
    double *t = dl_xmalloc((size_t)reps * sizeof *t);
    printf("layer            pass       plain ms  GFLOP/s   blocked ms  GFLOP/s\n");
    for (int l = 0; l < 8; l++) {
        int64_t B = 64, C = LAYERS[l][0], O = LAYERS[l][1], H = LAYERS[l][2];
        int64_t g[11] = {B, C, H, H, O, 3, 3, 1, 1, H, H};
        float *x = randbuf((size_t)(B * C * H * H)), *w = randbuf((size_t)(O * C * 9));
        float *y = randbuf((size_t)(B * O * H * H));
        for (int k = 0; k < 3; k++) {
            double ms[2], gf[2];
            for (int lay = 0; lay < 2; lay++) {
                char *err = NULL;
                DlLib *lib = dl_lib_new(threads, &err);
                DlConv *c = lib ? dl_conv_create(lib, k + 1, g, lay ? DL_CONV_BLOCKED : DL_CONV_PLAIN, &err) : NULL;
                if (!c) {
                    fprintf(stderr, "conv_bench: %s\n", err);
                    return 1;
                }
                dl_lib_finalize(lib);
                float *a = k == 1 ? y : x, *b = k == 2 ? y : w, *o = k == 0 ? y : k == 1 ? x : w;
                dl_conv_run(c, a, b, o, NULL);
                for (int r = 0; r < reps; r++) {
                    double t0 = now();
                    dl_conv_run(c, a, b, o, NULL);
                    t[r] = now() - t0;
                }
                qsort(t, (size_t)reps, sizeof *t, cmp);
                ms[lay] = 1e3 * t[reps / 2];
                gf[lay] = dl_conv_flops(c) / t[reps / 2] / 1e9;
                total[lay][k] += ms[lay];
                if (getenv("VERBOSE")) printf("   %s\n", dl_conv_describe(c));
                dl_lib_free(lib);
            }
            printf("%3d->%-3d %2dx%-2d  %-9s %9.2f %8.1f %12.2f %8.1f\n", (int)C, (int)O, (int)H,
                   (int)H, pass[k], ms[0], gf[0], ms[1], gf[1]);
        }
        free(x), free(w), free(y);
    }
    for (int k = 0; k < 3; k++)
        printf("total %-10s        %9.2f %21.2f\n", pass[k], total[0][k], total[1][k]);
    printf("total all                %9.2f %21.2f\n", total[0][0] + total[0][1] + total[0][2],
           total[1][0] + total[1][1] + total[1][2]);
    free(t);
    return 0;
}
