/* test_cpu_lib.c - oneDNN convolutions and OpenBLAS matmuls (runtime/cpu_lib.h).
 *
 * Each convolution pass, in both layout modes (plain nchw primitives, and
 * format_tag any with reorders, which on AVX2 picks blocked nChw8c), against
 * naive loops on shapes where oneDNN really chooses blocked layouts; every
 * transpose combination of the matmul against a naive product.
 */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/util.h"
#include "../ref/naive_conv.h"
#include "runtime/cpu_lib.h"

static void fill(float *x, int64_t n, unsigned *seed)
{
    for (int64_t i = 0; i < n; i++) x[i] = (float)rand_r(seed) / (float)RAND_MAX - 0.5f;
}


static void conv_case(int64_t B, int64_t C, int64_t H, int64_t O, int s, int p)
{
    int64_t OH = (H + 2 * p - 3) / s + 1;
    int64_t g[12] = {B, C, H, H, O, 3, 3, s, p, OH, OH, 0};
    int64_t nx = B * C * H * H, nw = O * C * 9, ny = B * O * OH * OH;
    float *x = dl_xmalloc(sizeof(float) * (size_t)nx), *w = dl_xmalloc(sizeof(float) * (size_t)nw);
    float *dy = dl_xmalloc(sizeof(float) * (size_t)ny), *out = dl_xmalloc(sizeof(float) * (size_t)(nx + nw + ny));
    float *ry = dl_xmalloc(sizeof(float) * (size_t)ny), *rdx = dl_xmalloc(sizeof(float) * (size_t)nx);
    float *rdw = dl_xmalloc(sizeof(float) * (size_t)nw);
    unsigned seed = 5;
    fill(x, nx, &seed), fill(w, nw, &seed), fill(dy, ny, &seed);
    ref_conv(g, x, w, dy, ry, rdx, rdw);
    for (int layout = 0; layout < 2; layout++) {
        char *err = NULL;
        DlLib *lib = dl_lib_new(2, &err);
        assert_non_null(lib);
        DlConv *c[3];
        for (int k = 0; k < 3; k++) {
            c[k] = dl_conv_create(lib, k + 1, g, (DlConvLayout)layout, &err);
            if (!c[k]) fail_msg("%s", err);
        }
        dl_lib_finalize(lib);
        const float *want[3] = {ry, rdx, rdw};
        int64_t n[3] = {ny, nx, nw};
        double e[3];
        for (int k = 0; k < 3; k++) {
            memset(out, 0x7f, sizeof(float) * (size_t)n[k]); /* garbage: outputs are overwritten */
            int st;
            int rc = k == 0 ? dl_conv_run(c[0], x, w, out, &st)
                   : k == 1 ? dl_conv_run(c[1], dy, w, out, &st) : dl_conv_run(c[2], x, dy, out, &st);
            assert_int_equal(rc, 0);
            e[k] = 0;
            for (int64_t i = 0; i < n[k]; i++) e[k] = fmax(e[k], fabs((double)out[i] - want[k][i]));
        }
        printf("[%d,%d,%d,%d]->%d s%d p%d %-7s fwd %.2e bwd-data %.2e bwd-weights %.2e  (%s)\n", (int)B, (int)C,
               (int)H, (int)H, (int)O, s, p, layout ? "blocked" : "plain", e[0], e[1], e[2],
               dl_conv_describe(c[0]));
        assert_true(e[0] < 1e-4 && e[1] < 1e-4 && e[2] < 1e-3);
        dl_lib_free(lib);
    }
    free(x), free(w), free(dy), free(out), free(ry), free(rdx), free(rdw);
}

static void test_conv_layouts(void **state)
{
    conv_case(4, 3, 16, 32, 1, 1);   /* the first layer's shape: C = 3 */
    conv_case(4, 32, 12, 64, 1, 1);
    conv_case(3, 16, 11, 24, 2, 1);
    conv_case(2, 16, 10, 16, 2, 0);
}

static void test_matmul(void **state)
{
    int64_t M = 13, N = 17, K = 29;
    float a[29 * 13], b[29 * 17], y[13 * 17];
    unsigned seed = 3;
    fill(a, K * M, &seed), fill(b, K * N, &seed);
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int64_t i[5] = {M, N, K, ta, tb};
            dl_matmul(i, a, b, y);
            double e = 0;
            for (int64_t r = 0; r < M; r++)
                for (int64_t c = 0; c < N; c++) {
                    double acc = 0;
                    for (int64_t k = 0; k < K; k++)
                        acc += (double)(ta ? a[k * M + r] : a[r * K + k]) * (tb ? b[c * K + k] : b[k * N + c]);
                    e = fmax(e, fabs(acc - y[r * N + c]));
                }
            printf("matmul ta %d tb %d: max abs error %.2e\n", ta, tb, e);
            assert_true(e < 1e-5);
        }
}

static void test_conv_error(void **state)
{
    char *err = NULL;
    DlLib *lib = dl_lib_new(1, &err);
    int64_t g[12] = {1, 4, 8, 8, 4, 3, 3, 0, 1, 8, 8, 0}; /* stride 0 */
    assert_null(dl_conv_create(lib, 1, g, DL_CONV_PLAIN, &err));
    printf("%s\n", err);
    assert_non_null(strstr(err, "oneDNN"));
    free(err);
    dl_lib_free(lib);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_layouts),
        cmocka_unit_test(test_matmul),
        cmocka_unit_test(test_conv_error),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
