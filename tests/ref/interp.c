/* interp.c - the reference interpreter (see interp.h): every op of
 * compiler/ops.def as a direct loop nest in double precision.
 *
 * Each case below quotes the maths of its ops.def line and implements exactly
 * that, with the shapes taken from the nodes.  Letters: B batch, C channels
 * (O output channels of a convolution), H/W spatial, K label bins, A label
 * axes.  Included by the tests that use it (see interp.h for why).
 */
#include "interp.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"

static int ref_fail(const Graph *g, uint32_t i, const char *why)
{
    fprintf(stderr, "ref_run: node %u (%s%s%s): %s\n", i, graph_op_name[g->nodes[i].op],
            g->nodes[i].name ? " " : "", g->nodes[i].name ? g->nodes[i].name : "", why);
    return -1;
}

static int64_t numel_of(const GNode *n)
{
    int64_t k = 1;
    for (int d = 0; d < n->ndim; d++) k *= n->shape[d];
    return k;
}

/* Dims of a node as B, C, H, W, padding missing trailing dims with 1. */
static void dims4(const GNode *n, int64_t d[4])
{
    for (int k = 0; k < 4; k++) d[k] = k < n->ndim ? n->shape[k] : 1;
}

/* Broadcast rule of OPK_ELEM (ops.def header): the element of input `in`
 * read for flat output index i of `out`.  Same element count: same index;
 * [1]: everywhere; [C] (or row 0 of [r,C]): along dim 1 of [B,C,...]; [B]:
 * along dim 0 of [B,...].  Returns -1 when the shapes do not fit and -2 when
 * a 1-D input could be either [B] or [C] (B == C): the reference refuses to
 * guess. */
static int64_t bcast(const GNode *in, const GNode *out, int64_t i)
{
    int64_t nin = numel_of(in), nout = numel_of(out);
    if (nin == nout) return i;
    if (nin == 1) return 0;
    if (out->ndim < 2) return -1;
    int64_t C = out->shape[1], inner = nout / (out->shape[0] * C);
    int64_t last = in->shape[in->ndim - 1];
    int along1 = last == C && (in->ndim == 1 || in->ndim == 2);
    int along0 = in->ndim == 1 && in->shape[0] == out->shape[0];
    if (along1 && along0) return -2;
    if (along1) return (i / inner) % C;
    if (along0) return i / (nout / out->shape[0]);
    return -1;
}

/* SplitMix64's finaliser (Steele, Lea, Flood 2014), as codegen/prelude.c dl_mix64. */
static uint64_t ref_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A line-for-line mirror of codegen/prelude.c dl_keep (seed, step and p are
 * floats there: the same conversions here). */
int ref_dropout_keep(double seed, double step, int64_t i, double p)
{
    float fseed = (float)seed, fstep = (float)step, fp = (float)p;
    uint64_t h = ref_mix64((uint64_t)(int64_t)fseed + 0x9E3779B97F4A7C15ULL);
    h = ref_mix64(h ^ ((uint64_t)(int64_t)fstep * 0x9E3779B97F4A7C15ULL));
    h = ref_mix64(h ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL));
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    return u >= fp;
}

/* n = B*H*W of the tensor a BN_STATS node reduced (for BN_RUNNING's unbiasing). */
static int64_t bn_count(const Graph *g, uint32_t stats)
{
    const GNode *s = &g->nodes[stats];
    if (s->op == OP_BN_FINALIZE) return s->attr.bn.count;
    if (s->op != OP_BN_STATS) return -1;
    const GNode *x = &g->nodes[s->in[0]];
    return numel_of(x) / x->shape[1];
}

int ref_run(const Graph *g, double **vals)
{
    return ref_run_until(g, vals, g->n);
}

int ref_run_until(const Graph *g, double **vals, uint32_t end) { return ref_run_range(g, vals, 0, end); }

int ref_run_range(const Graph *g, double **vals, uint32_t from, uint32_t end)
{
    if (end > g->n) end = g->n;
    for (uint32_t i = from; i < end; i++) {
        const GNode *n = &g->nodes[i];
        const int64_t N = numel_of(n);
        const GNode *in0 = n->nin > 0 ? &g->nodes[n->in[0]] : NULL;
        const GNode *in1 = n->nin > 1 ? &g->nodes[n->in[1]] : NULL;
        const double *a = n->nin > 0 ? vals[n->in[0]] : NULL;
        const double *b = n->nin > 1 ? vals[n->in[1]] : NULL;
        const double *c = n->nin > 2 ? vals[n->in[2]] : NULL;
        const double *d = n->nin > 3 ? vals[n->in[3]] : NULL;
        const double *e = n->nin > 4 ? vals[n->in[4]] : NULL;
        for (int k = 0; k < n->nin; k++)
            if (!vals[n->in[k]]) return ref_fail(g, i, "an input has no value");
        int is_source = graph_op_kind[n->op] == OPK_SOURCE;
        if (is_source && n->op != OP_CONST) {
            if (!vals[i]) return ref_fail(g, i, "source node without a value from the caller");
            continue;
        }
        if (!vals[i]) vals[i] = dl_xcalloc((size_t)N, sizeof(double));
        double *y = vals[i];
        int64_t D[4], X[4];
        dims4(n, D);
        if (in0) dims4(in0, X);

        switch (n->op) {
        case OP_INPUT: case OP_SCALARS: case OP_PARAM: case OP_STATE:
            break; /* handled above */
        case OP_CONST: /* constant data baked into the plan */
            for (int64_t k = 0; k < N; k++) y[k] = n->attr.cst.data[k];
            break;

        /* y[b,o,i,j] = sum_{c,u,v} x[b,c,i*s+u-p,j*s+v-p] * w[o,c,u,v] */
        case OP_CONV2D: {
            int s = n->attr.conv.stride, p = n->attr.conv.pad, dl = n->attr.conv.dilate + 1;
            int64_t kh = n->attr.conv.kh, kw = n->attr.conv.kw;
            int64_t Bn = D[0], O = D[1], OH = D[2], OW = D[3], C = X[1], H = X[2], W = X[3];
            for (int64_t bb = 0; bb < Bn; bb++)
            for (int64_t o = 0; o < O; o++)
            for (int64_t oi = 0; oi < OH; oi++)
            for (int64_t oj = 0; oj < OW; oj++) {
                double acc = 0;
                for (int64_t cc = 0; cc < C; cc++)
                for (int64_t u = 0; u < kh; u++)
                for (int64_t v = 0; v < kw; v++) {
                    int64_t h = oi * s + u * dl - p, w = oj * s + v * dl - p;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    acc += a[((bb * C + cc) * H + h) * W + w] * b[((o * C + cc) * kh + u) * kw + v];
                }
                y[((bb * O + o) * OH + oi) * OW + oj] = acc;
            }
            break;
        }
        /* dx = conv2d^T(dy, w): dx[b,c,h,w] = sum over (o,i,j,u,v) with
         * i*s+u-p = h, j*s+v-p = w of dy[b,o,i,j] w[o,c,u,v]  (dy, w) */
        case OP_CONV2D_BWD_DATA: {
            int s = n->attr.conv.stride, p = n->attr.conv.pad, dl = n->attr.conv.dilate + 1;
            int64_t kh = n->attr.conv.kh, kw = n->attr.conv.kw;
            int64_t Bn = D[0], C = D[1], H = D[2], W = D[3], O = X[1], OH = X[2], OW = X[3];
            memset(y, 0, (size_t)N * sizeof *y);
            for (int64_t bb = 0; bb < Bn; bb++)
            for (int64_t o = 0; o < O; o++)
            for (int64_t oi = 0; oi < OH; oi++)
            for (int64_t oj = 0; oj < OW; oj++)
            for (int64_t cc = 0; cc < C; cc++)
            for (int64_t u = 0; u < kh; u++)
            for (int64_t v = 0; v < kw; v++) {
                int64_t h = oi * s + u * dl - p, w = oj * s + v * dl - p;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                y[((bb * C + cc) * H + h) * W + w] +=
                    a[((bb * O + o) * OH + oi) * OW + oj] * b[((o * C + cc) * kh + u) * kw + v];
            }
            break;
        }
        /* dw[o,c,u,v] = sum_{b,i,j} dy[b,o,i,j] x[b,c,i*s+u-p,j*s+v-p]  (x, dy) */
        case OP_CONV2D_BWD_FILTER: {
            int s = n->attr.conv.stride, p = n->attr.conv.pad, dl = n->attr.conv.dilate + 1;
            int64_t O = D[0], C = D[1], kh = D[2], kw = D[3];
            int64_t Bn = X[0], H = X[2], W = X[3];
            int64_t OH = in1->shape[2], OW = in1->shape[3];
            for (int64_t o = 0; o < O; o++)
            for (int64_t cc = 0; cc < C; cc++)
            for (int64_t u = 0; u < kh; u++)
            for (int64_t v = 0; v < kw; v++) {
                double acc = 0;
                for (int64_t bb = 0; bb < Bn; bb++)
                for (int64_t oi = 0; oi < OH; oi++)
                for (int64_t oj = 0; oj < OW; oj++) {
                    int64_t h = oi * s + u * dl - p, w = oj * s + v * dl - p;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    acc += b[((bb * O + o) * OH + oi) * OW + oj] * a[((bb * C + cc) * H + h) * W + w];
                }
                y[((o * C + cc) * kh + u) * kw + v] = acc;
            }
            break;
        }
        /* y[b,o,i*s+u-p,j*s+v-p] += x[b,c,i,j] * w[c,o,u,v]  (x, w[Cin,Cout,kh,kw]),
         * PyTorch's ConvTranspose2d: each input pixel spreads its kernel */
        case OP_CONV_TRANSPOSE2D: {
            int s = n->attr.conv.stride, p = n->attr.conv.pad;
            int64_t kh = n->attr.conv.kh, kw = n->attr.conv.kw;
            int64_t Bn = D[0], O = D[1], OH = D[2], OW = D[3], C = X[1], H = X[2], W = X[3];
            memset(y, 0, (size_t)N * sizeof *y);
            for (int64_t bb = 0; bb < Bn; bb++)
            for (int64_t cc = 0; cc < C; cc++)
            for (int64_t ii = 0; ii < H; ii++)
            for (int64_t jj = 0; jj < W; jj++)
            for (int64_t o = 0; o < O; o++)
            for (int64_t u = 0; u < kh; u++)
            for (int64_t v = 0; v < kw; v++) {
                int64_t h = ii * s + u - p, w = jj * s + v - p;
                if (h < 0 || h >= OH || w < 0 || w >= OW) continue;
                y[((bb * O + o) * OH + h) * OW + w] +=
                    a[((bb * C + cc) * H + ii) * W + jj] * b[((cc * O + o) * kh + u) * kw + v];
            }
            break;
        }
        /* y = op(a) op(b), op = transpose when ta / tb; [M,K] x [K,N] -> [M,N] */
        case OP_MATMUL: {
            int ta = n->attr.mm.ta, tb = n->attr.mm.tb;
            int64_t M = n->shape[0], Nn = N / M;
            int64_t ar = in0->shape[0], ac = numel_of(in0) / ar;
            int64_t br = in1->shape[0], bc = numel_of(in1) / br;
            int64_t K = ta ? ar : ac;
            if ((ta ? ac : ar) != M || (tb ? br : bc) != Nn || (tb ? bc : br) != K)
                return ref_fail(g, i, "matmul shapes do not agree");
            for (int64_t r = 0; r < M; r++)
            for (int64_t cc = 0; cc < Nn; cc++) {
                double acc = 0;
                for (int64_t k = 0; k < K; k++)
                    acc += (ta ? a[k * ac + r] : a[r * ac + k]) * (tb ? b[cc * bc + k] : b[k * bc + cc]);
                y[r * Nn + cc] = acc;
            }
            break;
        }

        /* y[b,c,...] = x[b,c,...] + bias[c] */
        case OP_BIAS_ADD: {
            int64_t inner = N / (D[0] * D[1]);
            for (int64_t k = 0; k < N; k++) y[k] = a[k] + b[(k / inner) % D[1]];
            break;
        }
        case OP_ADD: /* y = a + b */
        case OP_MUL: /* y = a * b */
            for (int64_t k = 0; k < N; k++) {
                int64_t ia = bcast(in0, n, k), ib = bcast(in1, n, k);
                if (ia == -2 || ib == -2)
                    return ref_fail(g, i, "a 1-D input matches both B and C: ambiguous broadcast");
                if (ia < 0 || ib < 0) return ref_fail(g, i, "inputs do not broadcast to the output");
                y[k] = n->op == OP_ADD ? a[ia] + b[ib] : a[ia] * b[ib];
            }
            break;
        case OP_SCALE: /* y = attr.f * x */
            for (int64_t k = 0; k < N; k++) y[k] = (double)n->attr.f * a[k];
            break;
        case OP_EXP: /* y = exp(x) */
            for (int64_t k = 0; k < N; k++) y[k] = exp(a[k]);
            break;
        case OP_FILL: /* y = attr.f */
            for (int64_t k = 0; k < N; k++) y[k] = n->attr.f;
            break;
        case OP_RELU: /* y = max(x, 0) */
            for (int64_t k = 0; k < N; k++) y[k] = a[k] > 0 ? a[k] : 0;
            break;
        case OP_RELU_BWD: /* dx = y > 0 ? dy : 0  (dy, y) */
            for (int64_t k = 0; k < N; k++) y[k] = b[k] > 0 ? a[k] : 0;
            break;
        /* y = keep(i) ? x / (1-p) : 0  (x, scalars); DROPOUT_BWD the same on dy */
        case OP_DROPOUT:
        case OP_DROPOUT_BWD: {
            double p = n->attr.dropout.p;
            for (int64_t k = 0; k < N; k++)
                y[k] = ref_dropout_keep(b[3], b[2], k + ((int64_t)n->attr.dropout.salt << 40), p) ? a[k] / (1 - p) : 0;
            break;
        }
        /* y = (x - mean[c]) * rsqrt(var[c] + eps) * gamma[c] + beta[c]
         * (x, stats[2,C], gamma, beta); BN_INFER the same with running stats */
        case OP_BN_APPLY:
        case OP_BN_INFER: {
            int64_t C = D[1], inner = N / (D[0] * C);
            double eps = n->attr.bn.eps;
            for (int64_t k = 0; k < N; k++) {
                int64_t ch = (k / inner) % C;
                y[k] = (a[k] - b[ch]) / sqrt(b[C + ch] + eps) * c[ch] + d[ch];
            }
            break;
        }
        /* dx = gamma*rstd*(dy - s0[c]/n - xhat*s1[c]/n), xhat = (x-mean)*rstd,
         * n = B*H*W  (dy, x, stats, gamma, bstats) */
        case OP_BN_BWD_DATA: {
            int64_t C = D[1], inner = N / (D[0] * C), cnt = n->attr.bn.count ? n->attr.bn.count : N / C;
            double eps = n->attr.bn.eps;
            for (int64_t k = 0; k < N; k++) {
                int64_t ch = (k / inner) % C;
                double rstd = 1 / sqrt(c[C + ch] + eps), xhat = (b[k] - c[ch]) * rstd;
                y[k] = d[ch] * rstd * (a[k] - e[ch] / cnt - xhat * e[C + ch] / cnt);
            }
            break;
        }
        /* in place on running[2,C]: r = (1-m) r + m [mean, var*n/(n-1)]  (stats, running) */
        case OP_BN_RUNNING: {
            int64_t C = n->shape[n->ndim - 1], cnt = bn_count(g, n->in[0]);
            double m = n->attr.bn.momentum;
            if (cnt < 2) return ref_fail(g, i, "input 0 is not a bn_stats of more than one value");
            for (int64_t ch = 0; ch < C; ch++) {
                y[ch] = (1 - m) * b[ch] + m * a[ch];
                y[C + ch] = (1 - m) * b[C + ch] + m * a[C + ch] * (double)cnt / (double)(cnt - 1);
            }
            break;
        }
        /* one process: the sum over one rank is the value itself */
        case OP_ALLREDUCE:
            memcpy(y, a, (size_t)N * sizeof *y);
            break;
        /* y[0,c] = sum x, y[1,c] = sum x^2 over b,h,w */
        case OP_BN_PARTIAL: {
            int64_t C = X[1], inner = X[2] * X[3];
            for (int64_t ch = 0; ch < C; ch++) {
                double s0 = 0, s1 = 0;
                for (int64_t bb = 0; bb < X[0]; bb++)
                    for (int64_t q = 0; q < inner; q++) {
                        double v = a[(bb * C + ch) * inner + q];
                        s0 += v, s1 += v * v;
                    }
                y[ch] = s0, y[C + ch] = s1;
            }
            break;
        }
        /* [2,C] sums -> mean, biased variance over attr.bn.count values */
        case OP_BN_FINALIZE: {
            int64_t C = N / 2;
            double cnt = (double)n->attr.bn.count;
            for (int64_t ch = 0; ch < C; ch++) {
                double mean = a[ch] / cnt, var = a[C + ch] / cnt - mean * mean;
                y[ch] = mean, y[C + ch] = var > 0 ? var : 0;
            }
            break;
        }
        case OP_SELECT: { /* y[c] = x[attr.i, c] */
            int64_t C = N;
            for (int64_t ch = 0; ch < C; ch++) y[ch] = a[(int64_t)n->attr.i * C + ch];
            break;
        }
        case OP_GAP_BWD: { /* dx[b,c,h,w] = dy[b,c] / (H*W) */
            int64_t hw = D[2] * D[3];
            for (int64_t k = 0; k < N; k++) y[k] = a[k / hw] / (double)hw;
            break;
        }
        case OP_MEAN_BWD: /* dx[b] = dy[0] / B */
            for (int64_t k = 0; k < N; k++) y[k] = a[0] / (double)N;
            break;
        case OP_MEAN_OVER_BWD: /* dx[r] = dy[0] / n[0] */
            for (int64_t k = 0; k < N; k++) y[k] = a[0] / b[0];
            break;
        case OP_ABSDIFF_BWD: { /* de[b,a] = dy[b] * sign(e[b,a] - l[b,a])  (dy[B], e[B,A], l[B,A]) */
            int64_t A = N / D[0];
            for (int64_t k = 0; k < N; k++) {
                double df = b[k] - c[k];
                y[k] = a[k / A] * (df > 0 ? 1.0 : df < 0 ? -1.0 : 0.0);
            }
            break;
        }
        case OP_KL_BWD: { /* dlogq[b,k] = -dy[b] * y[b,k]  (dy[B], y[B,K]) */
            int64_t K = N / D[0];
            for (int64_t k = 0; k < N; k++) y[k] = -a[k / K] * b[k];
            break;
        }

        case OP_CHAN_SUM: { /* y[c] = sum_{b,h,w} x[b,c,h,w] */
            int64_t C = X[1], inner = X[2] * X[3];
            for (int64_t ch = 0; ch < C; ch++) {
                double acc = 0;
                for (int64_t bb = 0; bb < X[0]; bb++)
                    for (int64_t q = 0; q < inner; q++) acc += a[(bb * C + ch) * inner + q];
                y[ch] = acc;
            }
            break;
        }
        /* y[0,c] = mean, y[1,c] = biased variance over b,h,w (Ioffe & Szegedy 2015, Alg. 1) */
        case OP_BN_STATS: {
            int64_t C = X[1], inner = X[2] * X[3], cnt = X[0] * inner;
            for (int64_t ch = 0; ch < C; ch++) {
                double mean = 0, var = 0;
                for (int64_t bb = 0; bb < X[0]; bb++)
                    for (int64_t q = 0; q < inner; q++) mean += a[(bb * C + ch) * inner + q];
                mean /= (double)cnt;
                for (int64_t bb = 0; bb < X[0]; bb++)
                    for (int64_t q = 0; q < inner; q++) {
                        double t = a[(bb * C + ch) * inner + q] - mean;
                        var += t * t;
                    }
                y[ch] = mean;
                y[C + ch] = var / (double)cnt;
            }
            break;
        }
        /* y[0,c] = sum dy (dbeta), y[1,c] = sum dy * xhat (dgamma)  (dy, x, stats) */
        case OP_BN_BWD_STATS: {
            int64_t C = X[1], inner = X[2] * X[3];
            double eps = n->attr.bn.eps;
            for (int64_t ch = 0; ch < C; ch++) {
                double s0 = 0, s1 = 0, rstd = 1 / sqrt(c[C + ch] + eps);
                for (int64_t bb = 0; bb < X[0]; bb++)
                    for (int64_t q = 0; q < inner; q++) {
                        int64_t k = (bb * C + ch) * inner + q;
                        s0 += a[k];
                        s1 += a[k] * (b[k] - c[ch]) * rstd;
                    }
                y[ch] = s0;
                y[C + ch] = s1;
            }
            break;
        }

        /* y[b,k] = z[b,k] - max_j z[b,j] - log sum_j exp(z[b,j] - max) */
        case OP_LOG_SOFTMAX: {
            int64_t K = N / D[0];
            for (int64_t bb = 0; bb < D[0]; bb++) {
                const double *z = a + bb * K;
                double mx = z[0], s = 0;
                for (int64_t k = 1; k < K; k++) mx = z[k] > mx ? z[k] : mx;
                for (int64_t k = 0; k < K; k++) s += exp(z[k] - mx);
                for (int64_t k = 0; k < K; k++) y[bb * K + k] = z[k] - mx - log(s);
            }
            break;
        }
        /* dz[b,k] = g[b,k] - exp(y[b,k]) * sum_j g[b,j]  (g, y) */
        case OP_LOG_SOFTMAX_BWD: {
            int64_t K = N / D[0];
            for (int64_t bb = 0; bb < D[0]; bb++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) s += a[bb * K + k];
                for (int64_t k = 0; k < K; k++) y[bb * K + k] = a[bb * K + k] - exp(b[bb * K + k]) * s;
            }
            break;
        }
        /* l[b] = sum_k y[b,k] (log y[b,k] - logq[b,k]), 0 log 0 = 0  (y, logq) */
        case OP_KL_ROWS: {
            int64_t K = numel_of(in0) / N;
            for (int64_t bb = 0; bb < N; bb++) {
                double s = 0;
                for (int64_t k = 0; k < K; k++) {
                    double t = a[bb * K + k];
                    if (t > 0) s += t * (log(t) - b[bb * K + k]);
                }
                y[bb] = s;
            }
            break;
        }
        /* e[b,a] = sum_k p[b,k] v[a,k]  (p[B,K], v[A,K]) */
        case OP_EXPECT: {
            int64_t Bn = D[0], A = N / Bn, K = numel_of(in0) / Bn;
            for (int64_t bb = 0; bb < Bn; bb++)
                for (int64_t ax = 0; ax < A; ax++) {
                    double s = 0;
                    for (int64_t k = 0; k < K; k++) s += a[bb * K + k] * b[ax * K + k];
                    y[bb * A + ax] = s;
                }
            break;
        }
        /* dp[b,k] = sum_a g[b,a] v[a,k]  (g[B,A], v[A,K]) */
        case OP_EXPECT_BWD: {
            int64_t Bn = D[0], K = N / Bn, A = numel_of(in0) / Bn;
            for (int64_t bb = 0; bb < Bn; bb++)
                for (int64_t k = 0; k < K; k++) {
                    double s = 0;
                    for (int64_t ax = 0; ax < A; ax++) s += a[bb * A + ax] * b[ax * K + k];
                    y[bb * K + k] = s;
                }
            break;
        }
        /* l[b] = sum_a |e[b,a] - t[b,a]|  (e, t) */
        case OP_ABSDIFF_ROWS: {
            int64_t A = numel_of(in0) / N;
            for (int64_t bb = 0; bb < N; bb++) {
                double s = 0;
                for (int64_t ax = 0; ax < A; ax++) s += fabs(a[bb * A + ax] - b[bb * A + ax]);
                y[bb] = s;
            }
            break;
        }

        /* y[b,c,i,j] = max over the k x k window at (i*s-p, j*s-p) */
        case OP_MAXPOOL:
        /* y = mean over the window (padding counted, as PyTorch's default) */
        case OP_AVGPOOL: {
            int ks = n->attr.pool.size, s = n->attr.pool.stride, p = n->attr.pool.pad;
            int64_t H = X[2], W = X[3];
            for (int64_t bc = 0; bc < D[0] * D[1]; bc++)
            for (int64_t oi = 0; oi < D[2]; oi++)
            for (int64_t oj = 0; oj < D[3]; oj++) {
                double acc = n->op == OP_MAXPOOL ? -INFINITY : 0;
                for (int u = 0; u < ks; u++)
                for (int v = 0; v < ks; v++) {
                    int64_t h = oi * s - p + u, w = oj * s - p + v;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    double t = a[(bc * H + h) * W + w];
                    if (n->op == OP_MAXPOOL) acc = t > acc ? t : acc;
                    else acc += t;
                }
                y[(bc * D[2] + oi) * D[3] + oj] = n->op == OP_MAXPOOL ? acc : acc / (ks * ks);
            }
            break;
        }
        /* dx gets dy at each window's first arg-max  (dy, x);
         * dx[...] = sum over windows containing it of dy / (k*k)  (dy) */
        case OP_MAXPOOL_BWD:
        case OP_AVGPOOL_BWD: {
            int ks = n->attr.pool.size, s = n->attr.pool.stride, p = n->attr.pool.pad;
            int64_t H = D[2], W = D[3], OH = X[2], OW = X[3];
            const double *x = b;
            memset(y, 0, (size_t)N * sizeof *y);
            for (int64_t bc = 0; bc < D[0] * D[1]; bc++)
            for (int64_t oi = 0; oi < OH; oi++)
            for (int64_t oj = 0; oj < OW; oj++) {
                double dy = a[(bc * OH + oi) * OW + oj], best = -INFINITY;
                int64_t arg = -1;
                for (int u = 0; u < ks; u++)
                for (int v = 0; v < ks; v++) {
                    int64_t h = oi * s - p + u, w = oj * s - p + v;
                    if (h < 0 || h >= H || w < 0 || w >= W) continue;
                    int64_t k = (bc * H + h) * W + w;
                    if (n->op == OP_AVGPOOL_BWD) y[k] += dy / (ks * ks);
                    else if (x[k] > best) best = x[k], arg = k;
                }
                if (n->op == OP_MAXPOOL_BWD && arg >= 0) y[arg] += dy;
            }
            break;
        }
        case OP_GAP: { /* y[b,c] = mean_{h,w} x[b,c,h,w] */
            int64_t hw = X[2] * X[3];
            for (int64_t k = 0; k < N; k++) {
                double s = 0;
                for (int64_t q = 0; q < hw; q++) s += a[k * hw + q];
                y[k] = s / (double)hw;
            }
            break;
        }
        /* nearest: y[o] = x[o/f]; bilinear (align_corners=False): s = max((o+0.5)/f - 0.5, 0),
         * i0 = floor(s), i1 = min(i0+1, n-1), y[o] = (1-(s-i0)) x[i0] + (s-i0) x[i1], per axis.
         * UPSAMPLE_BWD: the adjoint, dy[o] times each weight scattered onto its taps. */
        case OP_UPSAMPLE:
        case OP_UPSAMPLE_BWD: {
            int up = n->op == OP_UPSAMPLE;
            const int64_t *sm = up ? X : D, *bg = up ? D : X; /* [B,C,H,W] and [B,C,H fh,W fw] */
            int64_t H = sm[2], W = sm[3], OH = bg[2], OW = bg[3];
            int f[2] = {n->attr.up.fh, n->attr.up.fw};
            if (OH != H * f[0] || OW != W * f[1]) return ref_fail(g, i, "upsample sizes and factors disagree");
            if (!up) memset(y, 0, (size_t)N * sizeof *y);
            for (int64_t bc = 0; bc < D[0] * D[1]; bc++)
            for (int64_t oi = 0; oi < OH; oi++)
            for (int64_t oj = 0; oj < OW; oj++) {
                int64_t tap[2][2];
                double wt[2][2];
                int64_t o2[2] = {oi, oj}, n2[2] = {H, W};
                for (int ax = 0; ax < 2; ax++) {
                    if (!n->attr.up.bilinear) {
                        tap[ax][0] = tap[ax][1] = o2[ax] / f[ax];
                        wt[ax][0] = 1, wt[ax][1] = 0;
                        continue;
                    }
                    double src = ((double)o2[ax] + 0.5) / f[ax] - 0.5;
                    if (src < 0) src = 0;
                    int64_t i0 = (int64_t)floor(src);
                    tap[ax][0] = i0;
                    tap[ax][1] = i0 + 1 < n2[ax] ? i0 + 1 : n2[ax] - 1;
                    wt[ax][1] = src - (double)i0;
                    wt[ax][0] = 1 - wt[ax][1];
                }
                int64_t ok = (bc * OH + oi) * OW + oj;
                double acc = 0;
                for (int u = 0; u < 2; u++)
                for (int v = 0; v < 2; v++) {
                    int64_t ik = (bc * H + tap[0][u]) * W + tap[1][v];
                    if (up) acc += wt[0][u] * wt[1][v] * a[ik];
                    else y[ik] += wt[0][u] * wt[1][v] * a[ok];
                }
                if (up) y[ok] = acc;
            }
            break;
        }
        /* y[b, off_k + c, ...] = x_k[b, c, ...]: channels (dim 1) */
        case OP_CONCAT: {
            int64_t inner = N / (D[0] * D[1]), off = 0;
            for (int k = 0; k < n->nin; k++) {
                const GNode *xk = &g->nodes[n->in[k]];
                int64_t Ck = xk->shape[1];
                for (int64_t bb = 0; bb < D[0]; bb++)
                for (int64_t cc = 0; cc < Ck; cc++)
                for (int64_t q = 0; q < inner; q++)
                    y[((bb * D[1]) + off + cc) * inner + q] = vals[n->in[k]][(bb * Ck + cc) * inner + q];
                off += Ck;
            }
            if (off != D[1]) return ref_fail(g, i, "concat channels do not add up");
            break;
        }
        /* y[b,c,...] = x[b, attr.i + c, ...] */
        case OP_SLICE: {
            int64_t inner = N / (D[0] * D[1]), Cx = X[1];
            if (n->attr.i < 0 || n->attr.i + D[1] > Cx) return ref_fail(g, i, "slice out of range");
            for (int64_t bb = 0; bb < D[0]; bb++)
            for (int64_t cc = 0; cc < D[1]; cc++)
            for (int64_t q = 0; q < inner; q++)
                y[(bb * D[1] + cc) * inner + q] = a[((bb * Cx) + n->attr.i + cc) * inner + q];
            break;
        }
        /* rows [B*H*W, C] (pixel-major) <-> planes [B,C,H,W] */
        case OP_NCHW_ROWS:
        case OP_ROWS_NCHW: {
            const int64_t *P = n->op == OP_NCHW_ROWS ? X : D;
            int64_t C = P[1], hw = P[2] * P[3];
            for (int64_t bb = 0; bb < P[0]; bb++)
            for (int64_t cc = 0; cc < C; cc++)
            for (int64_t q = 0; q < hw; q++) {
                int64_t pl = (bb * C + cc) * hw + q, rw = (bb * hw + q) * C + cc;
                if (n->op == OP_NCHW_ROWS) y[rw] = a[pl];
                else y[pl] = a[rw];
            }
            break;
        }
        case OP_VALID_COUNT: { /* y[0] = max(1, sum t) */
            int64_t M = numel_of(in0);
            double s = 0;
            for (int64_t k = 0; k < M; k++) s += a[k];
            y[0] = s > 1 ? s : 1;
            break;
        }
        case OP_MEAN_OVER: { /* y[0] = sum_r x[r] / n[0] */
            int64_t M = numel_of(in0);
            double s = 0;
            for (int64_t k = 0; k < M; k++) s += a[k];
            y[0] = s / b[0];
            break;
        }
        case OP_MEAN: { /* y[0] = mean_b x[b] */
            int64_t M = numel_of(in0);
            double s = 0;
            for (int64_t k = 0; k < M; k++) s += a[k];
            y[0] = s / (double)M;
            break;
        }
        case OP_RESHAPE: /* same data, shape from the node */
            memcpy(y, a, (size_t)N * sizeof *y);
            break;
        /* in place: v = mu v + (g + wd w); w -= lr v, lr = scalars[0],
         * mu = scalars[1]  (w, g, v, scalars); PyTorch SGD, dampening 0 */
        case OP_SGD: {
            double lr = d[0], mu = d[1], wd = n->attr.sgd.wd;
            double *v = vals[n->in[2]];
            for (int64_t k = 0; k < N; k++) {
                v[k] = mu * v[k] + (b[k] + wd * a[k]);
                y[k] = a[k] - lr * v[k];
            }
            break;
        }
        /* in place: d = g + wd w; v = mu v + d; w -= lr (d + mu v)  (w, g, v, scalars);
         * PyTorch SGD, nesterov=True, dampening 0 */
        case OP_SGD_NESTEROV: {
            double lr = d[0], mu = d[1], wd = n->attr.sgd.wd;
            double *v = vals[n->in[2]];
            for (int64_t k = 0; k < N; k++) {
                double dk = b[k] + wd * a[k];
                v[k] = mu * v[k] + dk;
                y[k] = a[k] - lr * (dk + mu * v[k]);
            }
            break;
        }
        /* in place (w, g, m, v, scalars), Kingma & Ba, ICLR 2015, Algorithm 1 as
         * printed, at step t = scalars[2] + 1, alpha = lr = scalars[0],
         * beta1 = scalars[1]:  m = b1 m + (1-b1) g;  v = b2 v + (1-b2) g^2;
         * mhat = m / (1-b1^t);  vhat = v / (1-b2^t);  w -= lr mhat / (sqrt(vhat) + eps),
         * with g = grad + wd w (ADAM, PyTorch's L2 term) or, for ADAMW
         * (Loshchilov & Hutter, ICLR 2019, Algorithm 2, schedule multiplier
         * folded into lr as PyTorch does), g = grad and w = (1 - lr wd) w first. */
        case OP_ADAM:
        case OP_ADAMW: {
            double lr = e[0], b1 = e[1], t = e[2] + 1, b2 = n->attr.adam.beta2, eps = n->attr.adam.eps;
            double wd = n->attr.adam.wd;
            double *m = vals[n->in[2]], *v = vals[n->in[3]];
            for (int64_t k = 0; k < N; k++) {
                double w = a[k], gk = b[k];
                if (n->op == OP_ADAMW) w *= 1 - lr * wd;
                else gk += wd * w;
                m[k] = b1 * m[k] + (1 - b1) * gk;
                v[k] = b2 * v[k] + (1 - b2) * gk * gk;
                double mhat = m[k] / (1 - pow(b1, t)), vhat = v[k] / (1 - pow(b2, t));
                y[k] = w - lr * mhat / (sqrt(vhat) + eps);
            }
            break;
        }
        case OP_COUNT:
            return ref_fail(g, i, "OP_COUNT is not an op");
        }
    }
    return 0;
}

double **ref_alloc_values(const Graph *g)
{
    double **vals = dl_xcalloc(g->n, sizeof *vals);
    for (uint32_t i = 0; i < g->n; i++)
        if (graph_op_kind[g->nodes[i].op] == OPK_SOURCE && g->nodes[i].op != OP_CONST)
            vals[i] = dl_xcalloc((size_t)numel_of(&g->nodes[i]), sizeof(double));
    return vals;
}

void ref_free_values(const Graph *g, double **vals)
{
    if (!vals) return;
    for (uint32_t i = 0; i < g->n; i++) free(vals[i]);
    free(vals);
}
