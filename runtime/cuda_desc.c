/* cuda_desc.c - the pure argument building of the CUDA backend's library
 * calls (cuda_dev.h): cuBLAS transposition arguments of a row-major matrix
 * product and the cuDNN descriptors of a convolution step.  No library is
 * called here, so tests/unit/test_cuda_backend.c checks them without a GPU. */
#include <limits.h>

#include "../common/plan.h"
#include "../common/util.h"
#include "cuda_dev.h"

static int fits_int(int64_t v) { return v > 0 && v <= INT_MAX; }

int dl_gemm_args(const int64_t i[5], DlGemmArgs *g, char **why)
{
    int64_t M = i[0], N = i[1], K = i[2];
    if (!fits_int(M) || !fits_int(N) || !fits_int(K) || (i[3] != 0 && i[3] != 1) || (i[4] != 0 && i[4] != 1)) {
        *why = dl_xasprintf("matmul M=%lld N=%lld K=%lld ta=%lld tb=%lld: cuBLAS needs dimensions in 1..%d and "
                            "flags 0 or 1", (long long)M, (long long)N, (long long)K, (long long)i[3],
                            (long long)i[4], INT_MAX);
        return -1;
    }
    int ta = (int)i[3], tb = (int)i[4];
    /* row-major a is [M,K] (or [K,M] when ta), b is [K,N] (or [N,K] when tb): a
       row-major matrix is its column-major transpose with ld = its row length */
    g->transa = tb;
    g->transb = ta;
    g->m = (int)N;
    g->n = (int)M;
    g->k = (int)K;
    g->lda = (int)(tb ? K : N);   /* b */
    g->ldb = (int)(ta ? M : K);   /* a */
    g->ldc = (int)N;
    return 0;
}

int dl_conv_desc(int kind, const int64_t geom[12], DlConvDesc *d, char **why)
{
    const int64_t *g = geom;
    for (int k = 0; k < 12; k++)
        if (!(k == 8 || k == 11 ? g[k] >= 0 && g[k] < INT_MAX : fits_int(g[k]))) {
            *why = dl_xasprintf("conv geometry value %d is %lld, outside cuDNN's range", k, (long long)g[k]);
            return -1;
        }
    int64_t eh = (g[5] - 1) * (g[11] + 1) + 1, ew = (g[6] - 1) * (g[11] + 1) + 1; /* the taps' span */
    int64_t oh = (g[2] + 2 * g[8] - eh) / g[7] + 1, ow = (g[3] + 2 * g[8] - ew) / g[7] + 1;
    if (g[2] + 2 * g[8] < eh || g[3] + 2 * g[8] < ew || oh != g[9] || ow != g[10]) {
        *why = dl_xasprintf("conv %lldx%lld stride %lld pad %lld dilation %lld of %lldx%lld gives %lldx%lld, the plan "
                            "says %lldx%lld", (long long)g[5], (long long)g[6], (long long)g[7], (long long)g[8],
                            (long long)g[11] + 1, (long long)g[2], (long long)g[3], (long long)oh, (long long)ow,
                            (long long)g[9], (long long)g[10]);
        return -1;
    }
    if (kind < DL_STEP_CONV_FWD || kind > DL_STEP_CONV_BWD_FILTER) {
        *why = dl_xasprintf("step kind %d is not a convolution", kind);
        return -1;
    }
    int64_t x[4] = {g[0], g[1], g[2], g[3]}, w[4] = {g[4], g[1], g[5], g[6]}, y[4] = {g[0], g[4], g[9], g[10]};
    for (int k = 0; k < 4; k++) d->x[k] = (int)x[k], d->w[k] = (int)w[k], d->y[k] = (int)y[k];
    d->pad = (int)g[8];
    d->stride = (int)g[7];
    d->dilation = (int)g[11] + 1;
    /* plan.h: fwd (x, w, y), bwd data (dy, w, dx), bwd filter (x, dy, dw) */
    static const int pos[3][3] = {{0, 1, 2}, {2, 1, 0}, {0, 2, 1}};
    const int *p = pos[kind - DL_STEP_CONV_FWD];
    d->arg_x = p[0], d->arg_w = p[1], d->arg_y = p[2];
    return 0;
}
