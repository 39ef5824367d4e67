/* naive_conv.h - a plain convolution and its two gradients (ops.def CONV2D,
 * CONV2D_BWD_DATA, CONV2D_BWD_FILTER), for the library tests (test_exec.c,
 * test_cpu_lib.c).  Header-only, like the other helpers in tests/ref.
 * g: the step geometry as plan.h's DL_STEP_CONV_*: B,C,H,W, O,kh,kw,
 * stride,pad, OH,OW.  x [B,C,H,W], w [O,C,kh,kw], dy [B,O,OH,OW] in; y, dx,
 * dw out (overwritten), accumulated in double for y. */
#ifndef DL_REF_NAIVE_CONV_H
#define DL_REF_NAIVE_CONV_H

#include <stdint.h>
#include <string.h>

static void ref_conv(const int64_t *g, const float *x, const float *w, const float *dy, float *y, float *dx,
                     float *dw)
{
    int64_t B = g[0], C = g[1], H = g[2], W = g[3], O = g[4], KH = g[5], KW = g[6], s = g[7], p = g[8],
            OH = g[9], OW = g[10];
    memset(y, 0, sizeof(float) * (size_t)(B * O * OH * OW));
    memset(dx, 0, sizeof(float) * (size_t)(B * C * H * W));
    memset(dw, 0, sizeof(float) * (size_t)(O * C * KH * KW));
    for (int64_t b = 0; b < B; b++)
        for (int64_t o = 0; o < O; o++)
            for (int64_t i = 0; i < OH; i++)
                for (int64_t j = 0; j < OW; j++) {
                    int64_t yi = ((b * O + o) * OH + i) * OW + j;
                    double acc = 0;
                    for (int64_t c = 0; c < C; c++)
                        for (int64_t u = 0; u < KH; u++)
                            for (int64_t v = 0; v < KW; v++) {
                                int64_t h = i * s + u - p, ww = j * s + v - p;
                                if (h < 0 || h >= H || ww < 0 || ww >= W) continue;
                                int64_t xi = ((b * C + c) * H + h) * W + ww, wi = ((o * C + c) * KH + u) * KW + v;
                                acc += (double)x[xi] * w[wi];
                                dx[xi] += dy[yi] * w[wi];
                                dw[wi] += dy[yi] * x[xi];
                            }
                    y[yi] = (float)acc;
                }
}

#endif
