/* dldl generated kernels: C11 prelude (codegen/prelude.c) */
#include <math.h>
#include <stdint.h>
#define DL_KERNEL(name) \
    void name(float *const *dl_b, int64_t dl_g0, int64_t dl_g1); \
    void name(float *const *dl_b, int64_t dl_g0, int64_t dl_g1)
#define DL_FOR_GID(g) for (int64_t g = dl_g0; g < dl_g1; g++)
#define DL_RESTRICT restrict
#define DL_FN static inline
#define DL_EXP expf
#define DL_LOG logf
#define DL_SQRT sqrtf
#define DL_RSQRT(x) (1.0f / sqrtf(x))
#define DL_FABS fabsf
#define DL_INF INFINITY
#define DL_NAN NAN
/* f32 min/max that propagate NaN from either side (as torch.maximum / relu) */
DL_FN float dl_fmax(float a, float b) { return (a > b || a != a) ? a : b; }
DL_FN float dl_fmin(float a, float b) { return (a < b || a != a) ? a : b; }
DL_FN double dl_dmax(double a, double b) { return (a > b || a != a) ? a : b; }
DL_FN double dl_dmin(double a, double b) { return (a < b || a != a) ? a : b; }
DL_FN int64_t dl_imax(int64_t a, int64_t b) { return a > b ? a : b; }
DL_FN int64_t dl_imin(int64_t a, int64_t b) { return a < b ? a : b; }
/* sign(x) in {-1, 0, 1}; NaN stays NaN (torch.sign) */
DL_FN float dl_fsign(float x) { return x > 0.0f ? 1.0f : (x < 0.0f ? -1.0f : x); }
/* SplitMix64's finaliser (Steele, Lea, Flood 2014) */
DL_FN uint64_t dl_mix64(uint64_t z)
{
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
/* Dropout mask: 1 when element i is kept at (seed, step), with probability
 * 1 - p.  Counter-based (no state): any split of the work gives the same
 * mask.  u = the top 24 bits of the hash / 2^24, in [0, 1); keep iff u >= p. */
DL_FN int dl_keep(float seed, float step, int64_t i, float p)
{
    uint64_t h = dl_mix64((uint64_t)(int64_t)seed + 0x9E3779B97F4A7C15ULL);
    h = dl_mix64(h ^ ((uint64_t)(int64_t)step * 0x9E3779B97F4A7C15ULL));
    h = dl_mix64(h ^ ((uint64_t)i * 0xD1B54A32D192ED03ULL));
    float u = (float)(h >> 40) * (1.0f / 16777216.0f);
    return u >= p;
}

DL_KERNEL(train_k1_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %5 c1.y [64,32,64,64] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %8 c1.z.running [2,32] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %9 c1.z.stats [2,32] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 4096; i0++) {
                float ld0 = buf0[(((b0 * 32) + gid) * 4096) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 262144.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 262144.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[32 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[32 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00000381f));
        buf1[gid] = alu0;
        buf1[32 + gid] = alu1;
    }
}

DL_KERNEL(train_k2_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %5 c1.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %6 c1.z.weight [32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %7 c1.z.bias [32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %9 c1.z.stats [2,32] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %12 c1 [64,32,64,64] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 32];
        float ld2 = buf3[32 + (gid % 32)];
        float ld3 = buf1[gid % 32];
        float ld4 = buf2[gid % 32];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 4096; i0++) {
            float ld0 = buf0[(gid * 4096) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 4096) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k4_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %14 c2.y [64,32,64,64] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %17 c2.z.running [2,32] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %18 c2.z.stats [2,32] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 4096; i0++) {
                float ld0 = buf0[(((b0 * 32) + gid) * 4096) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 262144.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 262144.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[32 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[32 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00000381f));
        buf1[gid] = alu0;
        buf1[32 + gid] = alu1;
    }
}

DL_KERNEL(train_k5_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %14 c2.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %15 c2.z.weight [32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %16 c2.z.bias [32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %18 c2.z.stats [2,32] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %21 c2 [64,32,64,64] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 32];
        float ld2 = buf3[32 + (gid % 32)];
        float ld3 = buf1[gid % 32];
        float ld4 = buf2[gid % 32];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 4096; i0++) {
            float ld0 = buf0[(gid * 4096) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 4096) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k6_maxpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %21 c2 [64,32,64,64] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %22 p1 [64,32,32,32] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 4096;
        int64_t yo0 = gid * 1024;
        for (int64_t oi0 = 0; oi0 < 32; oi0++) {
            for (int64_t oj0 = 0; oj0 < 32; oj0++) {
                float acc0 = (-DL_INF);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        acc0 = dl_fmax(buf0[xo0 + ((((oi0 * 2) + kh0) * 64) + ((oj0 * 2) + kw0))], acc0);
                    }
                }
                buf1[yo0 + ((oi0 * 32) + oj0)] = acc0;
            }
        }
    }
}

DL_KERNEL(train_k8_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %24 c3.y [64,64,32,32] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %27 c3.z.running [2,64] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %28 c3.z.stats [2,64] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 1024; i0++) {
                float ld0 = buf0[(((b0 * 64) + gid) * 1024) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 65536.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 65536.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[64 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[64 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00001526f));
        buf1[gid] = alu0;
        buf1[64 + gid] = alu1;
    }
}

DL_KERNEL(train_k9_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %24 c3.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %25 c3.z.weight [64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %26 c3.z.bias [64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %28 c3.z.stats [2,64] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %31 c3 [64,64,32,32] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 64];
        float ld2 = buf3[64 + (gid % 64)];
        float ld3 = buf1[gid % 64];
        float ld4 = buf2[gid % 64];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 1024; i0++) {
            float ld0 = buf0[(gid * 1024) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 1024) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k11_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %33 c4.y [64,64,32,32] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %36 c4.z.running [2,64] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %37 c4.z.stats [2,64] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 1024; i0++) {
                float ld0 = buf0[(((b0 * 64) + gid) * 1024) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 65536.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 65536.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[64 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[64 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00001526f));
        buf1[gid] = alu0;
        buf1[64 + gid] = alu1;
    }
}

DL_KERNEL(train_k12_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %33 c4.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %34 c4.z.weight [64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %35 c4.z.bias [64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %37 c4.z.stats [2,64] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %40 c4 [64,64,32,32] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 64];
        float ld2 = buf3[64 + (gid % 64)];
        float ld3 = buf1[gid % 64];
        float ld4 = buf2[gid % 64];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 1024; i0++) {
            float ld0 = buf0[(gid * 1024) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 1024) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k13_maxpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %40 c4 [64,64,32,32] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %41 p2 [64,64,16,16] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 1024;
        int64_t yo0 = gid * 256;
        for (int64_t oi0 = 0; oi0 < 16; oi0++) {
            for (int64_t oj0 = 0; oj0 < 16; oj0++) {
                float acc0 = (-DL_INF);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        acc0 = dl_fmax(buf0[xo0 + ((((oi0 * 2) + kh0) * 32) + ((oj0 * 2) + kw0))], acc0);
                    }
                }
                buf1[yo0 + ((oi0 * 16) + oj0)] = acc0;
            }
        }
    }
}

DL_KERNEL(train_k15_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %43 c5.y [64,128,16,16] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %46 c5.z.running [2,128] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %47 c5.z.stats [2,128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 256; i0++) {
                float ld0 = buf0[(((b0 * 128) + gid) * 256) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 16384.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 16384.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[128 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[128 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00006104f));
        buf1[gid] = alu0;
        buf1[128 + gid] = alu1;
    }
}

DL_KERNEL(train_k16_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %43 c5.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %44 c5.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %45 c5.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %47 c5.z.stats [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %50 c5 [64,128,16,16] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 256; i0++) {
            float ld0 = buf0[(gid * 256) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 256) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k18_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %52 c6.y [64,128,16,16] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %55 c6.z.running [2,128] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %56 c6.z.stats [2,128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 256; i0++) {
                float ld0 = buf0[(((b0 * 128) + gid) * 256) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 16384.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 16384.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[128 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[128 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00006104f));
        buf1[gid] = alu0;
        buf1[128 + gid] = alu1;
    }
}

DL_KERNEL(train_k19_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %52 c6.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %53 c6.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %54 c6.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %56 c6.z.stats [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %59 c6 [64,128,16,16] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 256; i0++) {
            float ld0 = buf0[(gid * 256) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 256) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k20_maxpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %59 c6 [64,128,16,16] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %60 p3 [64,128,8,8] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 256;
        int64_t yo0 = gid * 64;
        for (int64_t oi0 = 0; oi0 < 8; oi0++) {
            for (int64_t oj0 = 0; oj0 < 8; oj0++) {
                float acc0 = (-DL_INF);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        acc0 = dl_fmax(buf0[xo0 + ((((oi0 * 2) + kh0) * 16) + ((oj0 * 2) + kw0))], acc0);
                    }
                }
                buf1[yo0 + ((oi0 * 8) + oj0)] = acc0;
            }
        }
    }
}

DL_KERNEL(train_k22_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %62 c7.y [64,128,8,8] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %65 c7.z.running [2,128] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %66 c7.z.stats [2,128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 64; i0++) {
                float ld0 = buf0[(((b0 * 128) + gid) * 64) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 4096.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 4096.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[128 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[128 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00024426f));
        buf1[gid] = alu0;
        buf1[128 + gid] = alu1;
    }
}

DL_KERNEL(train_k23_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %62 c7.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %63 c7.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %64 c7.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %66 c7.z.stats [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %69 c7 [64,128,8,8] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 64; i0++) {
            float ld0 = buf0[(gid * 64) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 64) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k25_bn_stats_bn_running) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %71 c8.y [64,128,8,8] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %74 c8.z.running [2,128] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %75 c8.z.stats [2,128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 64; i0++) {
                float ld0 = buf0[(((b0 * 128) + gid) * 64) + i0];
                acc0 += (double)(ld0);
                acc1 += (double)(ld0) * (double)(ld0);
            }
        }
        double mean0 = acc0 / 4096.0;
        float red0 = (float)(mean0);
        float red1 = (float)(dl_dmax((acc1 / 4096.0) - (mean0 * mean0), 0.0));
        buf2[gid] = red0;
        buf2[128 + gid] = red1;
        float ld1 = buf1[gid];
        float alu0 = (0.899999976f * ld1) + (0.100000001f * red0);
        float ld2 = buf1[128 + gid];
        float alu1 = (0.899999976f * ld2) + (0.100000001f * (red1 * 1.00024426f));
        buf1[gid] = alu0;
        buf1[128 + gid] = alu1;
    }
}

DL_KERNEL(train_k26_bn_apply_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %71 c8.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %72 c8.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %73 c8.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %75 c8.z.stats [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %78 c8 [64,128,8,8] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 64; i0++) {
            float ld0 = buf0[(gid * 64) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 64) + i0] = alu3;
        }
    }
}

DL_KERNEL(train_k27_global_avgpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %78 c8 [64,128,8,8] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %79 g [64,128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        for (int64_t i0 = 0; i0 < 64; i0++) {
            acc0 += (double)(buf0[(gid * 64) + i0]);
        }
        buf1[gid] = (float)(acc0 / 64.0);
    }
}

DL_KERNEL(train_k29_bias_add_log_softmax_exp_expect_kl_rows) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %1 dist [64,117] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %2 faces.labels [64,1] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %81 logits.bias [117] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %82 logits.matmul [64,117] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %86 dist.bin_values [1,117] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %85 agenet.probs [64,117] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %87 agenet.expect [64,1] */
    float *DL_RESTRICT buf7 = dl_b[7]; /* %88 loss.kl.rows [64] */
    float *DL_RESTRICT buf8 = dl_b[8]; /* %90 loss.l1.rows [64] */
    float *DL_RESTRICT buf9 = dl_b[9]; /* %101 grad.logits [64,117] */
    DL_FOR_GID(gid) {
        float t0[117];
        for (int64_t k0 = 0; k0 < 117; k0++) {
            float alu0 = buf3[(gid * 117) + k0] + buf2[k0];
            t0[k0] = alu0;
        }
        float t1[117];
        float mx0 = (-DL_INF);
        for (int64_t k1 = 0; k1 < 117; k1++) {
            mx0 = dl_fmax(t0[k1], mx0);
        }
        double acc0 = 0.0;
        for (int64_t k2 = 0; k2 < 117; k2++) {
            acc0 += (double)(DL_EXP(t0[k2] - mx0));
        }
        float lse0 = mx0 + DL_LOG((float)(acc0));
        for (int64_t k3 = 0; k3 < 117; k3++) {
            t1[k3] = t0[k3] - lse0;
        }
        for (int64_t k4 = 0; k4 < 117; k4++) {
            float alu1 = DL_EXP(t1[k4]);
            buf5[(gid * 117) + k4] = alu1;
        }
        float r0 = 0.0f;
        for (int64_t a0 = 0; a0 < 1; a0++) {
            double acc1 = 0.0;
            for (int64_t k5 = 0; k5 < 117; k5++) {
                acc1 += (double)(buf5[(gid * 117) + k5] * buf4[(a0 * 117) + k5]);
            }
            r0 = (float)(acc1);
        }
        buf6[gid] = r0;
        float r1 = 0.0f;
        double acc2 = 0.0;
        for (int64_t k6 = 0; k6 < 117; k6++) {
            float y0 = buf0[(gid * 117) + k6];
            acc2 += (double)((y0 > 0.0f) ? (y0 * (DL_LOG(y0) - t1[k6])) : 0.0f);
        }
        r1 = (float)(acc2);
        buf7[gid] = r1;
        float r2 = 0.0f;
        double acc3 = 0.0;
        for (int64_t a1 = 0; a1 < 1; a1++) {
            acc3 += (double)(DL_FABS(r0 - buf1[gid]));
        }
        r2 = (float)(acc3);
        buf8[gid] = r2;
        float s0 = 0.0f;
        s0 = 1.0f;
        float r3 = 0.0f;
        float alu2 = s0 / 64.0f;
        r3 = alu2;
        float r4 = 0.0f;
        float alu3 = r3 * dl_fsign(r0 - buf1[gid]);
        r4 = alu3;
        float r5 = 0.0f;
        float alu4 = s0 / 64.0f;
        r5 = alu4;
        float t2[117];
        for (int64_t k7 = 0; k7 < 117; k7++) {
            float alu5 = (-(r5 * buf0[(gid * 117) + k7]));
            t2[k7] = alu5;
        }
        float t3[117];
        for (int64_t k8 = 0; k8 < 117; k8++) {
            float acc4 = 0.0f;
            for (int64_t a2 = 0; a2 < 1; a2++) {
                acc4 += r4 * buf4[(a2 * 117) + k8];
            }
            t3[k8] = acc4;
        }
        float t4[117];
        for (int64_t k9 = 0; k9 < 117; k9++) {
            float alu6 = t3[k9] * buf5[(gid * 117) + k9];
            t4[k9] = alu6;
        }
        float t5[117];
        for (int64_t k10 = 0; k10 < 117; k10++) {
            float alu7 = t2[k10] + t4[k10];
            t5[k10] = alu7;
        }
        double acc5 = 0.0;
        for (int64_t k11 = 0; k11 < 117; k11++) {
            acc5 += (double)(t5[k11]);
        }
        float sum0 = (float)(acc5);
        for (int64_t k12 = 0; k12 < 117; k12++) {
            buf9[(gid * 117) + k12] = t5[k12] - (DL_EXP(t1[k12]) * sum0);
        }
    }
}

DL_KERNEL(train_k30_mean) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %88 loss.kl.rows [64] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %89 loss.kl [1] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            acc0 += (double)(buf0[b0]);
        }
        buf1[0] = (float)(acc0 / 64.0);
    }
}

DL_KERNEL(train_k31_mean) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %90 loss.l1.rows [64] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %91 loss.l1 [1] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            acc0 += (double)(buf0[b0]);
        }
        buf1[0] = (float)(acc0 / 64.0);
    }
}

DL_KERNEL(train_k32_add) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %89 loss.kl [1] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %91 loss.l1 [1] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %92 loss.sum1 [1] */
    DL_FOR_GID(gid) {
        float ld0 = buf0[gid];
        float ld1 = buf1[gid];
        float alu0 = ld0 + ld1;
        buf2[gid] = alu0;
    }
}

DL_KERNEL(train_k33_chan_sum) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %101 grad.logits [64,117] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %102 grad.logits.bias [117] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        for (int64_t b0 = 0; b0 < 64; b0++) {
            float ld0 = buf0[(b0 * 117) + gid];
            acc0 += (double)(ld0);
        }
        float red0 = (float)(acc0);
        buf1[gid] = red0;
    }
}

DL_KERNEL(train_k36_gap_bwd_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %71 c8.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %75 c8.z.stats [2,128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %78 c8 [64,128,8,8] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %103 grad.g [64,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %107 grad.c8.z.bstats [2,128] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %108 grad.c8.z.weight [128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %109 grad.c8.z.bias [128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            float ld0 = buf3[(b0 * 128) + gid];
            float alu0 = ld0 / 64.0f;
            for (int64_t i0 = 0; i0 < 64; i0++) {
                float ld1 = buf2[(((b0 * 128) + gid) * 64) + i0];
                float alu1 = (ld1 > 0.0f) ? alu0 : 0.0f;
                acc0 += (double)(alu1);
                float ld2 = buf0[(((b0 * 128) + gid) * 64) + i0];
                acc1 += (double)(alu1) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[128 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[128 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k37_gap_bwd_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %71 c8.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %72 c8.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %75 c8.z.stats [2,128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %78 c8 [64,128,8,8] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %103 grad.g [64,128] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %107 grad.c8.z.bstats [2,128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %110 grad.c8.y [64,128,8,8] */
    DL_FOR_GID(gid) {
        float ld0 = buf4[((gid / 128) * 128) + (gid % 128)];
        float alu0 = ld0 / 64.0f;
        float ld3 = buf2[gid % 128];
        float ld4 = buf2[128 + (gid % 128)];
        float ld5 = buf1[gid % 128];
        float ld6 = buf5[gid % 128];
        float ld7 = buf5[128 + (gid % 128)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu2 = ld5 * rstd0;
        float alu3 = ld6 * 0.000244140625f;
        float alu4 = (rstd0 * ld7) * 0.000244140625f;
        for (int64_t i0 = 0; i0 < 64; i0++) {
            float ld1 = buf3[(gid * 64) + i0];
            float alu1 = (ld1 > 0.0f) ? alu0 : 0.0f;
            float ld2 = buf0[(gid * 64) + i0];
            float alu5 = alu2 * ((alu1 - alu3) - ((ld2 - ld3) * alu4));
            buf6[(gid * 64) + i0] = alu5;
        }
    }
}

DL_KERNEL(train_k40_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %62 c7.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %66 c7.z.stats [2,128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %69 c7 [64,128,8,8] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %111 grad.c7 [64,128,8,8] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %114 grad.c7.z.bstats [2,128] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %115 grad.c7.z.weight [128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %116 grad.c7.z.bias [128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 64; i0++) {
                float ld0 = buf3[(((b0 * 128) + gid) * 64) + i0];
                float ld1 = buf2[(((b0 * 128) + gid) * 64) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 128) + gid) * 64) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[128 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[128 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k41_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %62 c7.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %63 c7.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %66 c7.z.stats [2,128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %69 c7 [64,128,8,8] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %111 grad.c7 [64,128,8,8] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %114 grad.c7.z.bstats [2,128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %117 grad.c7.y [64,128,8,8] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 128];
        float ld4 = buf2[128 + (gid % 128)];
        float ld5 = buf1[gid % 128];
        float ld6 = buf5[gid % 128];
        float ld7 = buf5[128 + (gid % 128)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 0.000244140625f;
        float alu3 = (rstd0 * ld7) * 0.000244140625f;
        for (int64_t i0 = 0; i0 < 64; i0++) {
            float ld0 = buf4[(gid * 64) + i0];
            float ld1 = buf3[(gid * 64) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 64) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 64) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k44_maxpool_bwd) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %59 c6 [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %118 grad.p3 [64,128,8,8] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %120 grad.c6 [64,128,16,16] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 256;
        int64_t yo0 = gid * 64;
        for (int64_t oi0 = 0; oi0 < 8; oi0++) {
            for (int64_t oj0 = 0; oj0 < 8; oj0++) {
                float g0 = 0.0f + buf1[yo0 + ((oi0 * 8) + oj0)];
                float best0 = (-DL_INF);
                int64_t arg0 = ((oi0 * 2) * 16) + (oj0 * 2);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        float v0 = buf0[xo0 + ((((oi0 * 2) + kh0) * 16) + ((oj0 * 2) + kw0))];
                        if ((v0 > best0) || (v0 != v0)) {
                            best0 = v0;
                            arg0 = (((oi0 * 2) + kh0) * 16) + ((oj0 * 2) + kw0);
                        }
                    }
                }
                for (int64_t kh1 = 0; kh1 < 2; kh1++) {
                    for (int64_t kw1 = 0; kw1 < 2; kw1++) {
                        buf2[xo0 + ((((oi0 * 2) + kh1) * 16) + ((oj0 * 2) + kw1))] = (((((oi0 * 2) + kh1) * 16) + ((oj0 * 2) + kw1)) == arg0) ? g0 : 0.0f;
                    }
                }
            }
        }
    }
}

DL_KERNEL(train_k45_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %52 c6.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %56 c6.z.stats [2,128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %59 c6 [64,128,16,16] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %120 grad.c6 [64,128,16,16] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %122 grad.c6.z.bstats [2,128] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %123 grad.c6.z.weight [128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %124 grad.c6.z.bias [128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 256; i0++) {
                float ld0 = buf3[(((b0 * 128) + gid) * 256) + i0];
                float ld1 = buf2[(((b0 * 128) + gid) * 256) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 128) + gid) * 256) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[128 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[128 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k46_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %52 c6.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %53 c6.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %56 c6.z.stats [2,128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %59 c6 [64,128,16,16] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %120 grad.c6 [64,128,16,16] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %122 grad.c6.z.bstats [2,128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %125 grad.c6.y [64,128,16,16] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 128];
        float ld4 = buf2[128 + (gid % 128)];
        float ld5 = buf1[gid % 128];
        float ld6 = buf5[gid % 128];
        float ld7 = buf5[128 + (gid % 128)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 6.10351562e-05f;
        float alu3 = (rstd0 * ld7) * 6.10351562e-05f;
        for (int64_t i0 = 0; i0 < 256; i0++) {
            float ld0 = buf4[(gid * 256) + i0];
            float ld1 = buf3[(gid * 256) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 256) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 256) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k49_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %43 c5.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %47 c5.z.stats [2,128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %50 c5 [64,128,16,16] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %126 grad.c5 [64,128,16,16] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %129 grad.c5.z.bstats [2,128] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %130 grad.c5.z.weight [128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %131 grad.c5.z.bias [128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 256; i0++) {
                float ld0 = buf3[(((b0 * 128) + gid) * 256) + i0];
                float ld1 = buf2[(((b0 * 128) + gid) * 256) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 128) + gid) * 256) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[128 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[128 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k50_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %43 c5.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %44 c5.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %47 c5.z.stats [2,128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %50 c5 [64,128,16,16] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %126 grad.c5 [64,128,16,16] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %129 grad.c5.z.bstats [2,128] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %132 grad.c5.y [64,128,16,16] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 128];
        float ld4 = buf2[128 + (gid % 128)];
        float ld5 = buf1[gid % 128];
        float ld6 = buf5[gid % 128];
        float ld7 = buf5[128 + (gid % 128)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 6.10351562e-05f;
        float alu3 = (rstd0 * ld7) * 6.10351562e-05f;
        for (int64_t i0 = 0; i0 < 256; i0++) {
            float ld0 = buf4[(gid * 256) + i0];
            float ld1 = buf3[(gid * 256) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 256) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 256) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k53_maxpool_bwd) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %40 c4 [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %133 grad.p2 [64,64,16,16] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %135 grad.c4 [64,64,32,32] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 1024;
        int64_t yo0 = gid * 256;
        for (int64_t oi0 = 0; oi0 < 16; oi0++) {
            for (int64_t oj0 = 0; oj0 < 16; oj0++) {
                float g0 = 0.0f + buf1[yo0 + ((oi0 * 16) + oj0)];
                float best0 = (-DL_INF);
                int64_t arg0 = ((oi0 * 2) * 32) + (oj0 * 2);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        float v0 = buf0[xo0 + ((((oi0 * 2) + kh0) * 32) + ((oj0 * 2) + kw0))];
                        if ((v0 > best0) || (v0 != v0)) {
                            best0 = v0;
                            arg0 = (((oi0 * 2) + kh0) * 32) + ((oj0 * 2) + kw0);
                        }
                    }
                }
                for (int64_t kh1 = 0; kh1 < 2; kh1++) {
                    for (int64_t kw1 = 0; kw1 < 2; kw1++) {
                        buf2[xo0 + ((((oi0 * 2) + kh1) * 32) + ((oj0 * 2) + kw1))] = (((((oi0 * 2) + kh1) * 32) + ((oj0 * 2) + kw1)) == arg0) ? g0 : 0.0f;
                    }
                }
            }
        }
    }
}

DL_KERNEL(train_k54_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %33 c4.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %37 c4.z.stats [2,64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %40 c4 [64,64,32,32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %135 grad.c4 [64,64,32,32] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %137 grad.c4.z.bstats [2,64] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %138 grad.c4.z.weight [64] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %139 grad.c4.z.bias [64] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 1024; i0++) {
                float ld0 = buf3[(((b0 * 64) + gid) * 1024) + i0];
                float ld1 = buf2[(((b0 * 64) + gid) * 1024) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 64) + gid) * 1024) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[64 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[64 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k55_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %33 c4.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %34 c4.z.weight [64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %37 c4.z.stats [2,64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %40 c4 [64,64,32,32] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %135 grad.c4 [64,64,32,32] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %137 grad.c4.z.bstats [2,64] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %140 grad.c4.y [64,64,32,32] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 64];
        float ld4 = buf2[64 + (gid % 64)];
        float ld5 = buf1[gid % 64];
        float ld6 = buf5[gid % 64];
        float ld7 = buf5[64 + (gid % 64)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 1.52587891e-05f;
        float alu3 = (rstd0 * ld7) * 1.52587891e-05f;
        for (int64_t i0 = 0; i0 < 1024; i0++) {
            float ld0 = buf4[(gid * 1024) + i0];
            float ld1 = buf3[(gid * 1024) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 1024) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 1024) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k58_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %24 c3.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %28 c3.z.stats [2,64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %31 c3 [64,64,32,32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %141 grad.c3 [64,64,32,32] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %144 grad.c3.z.bstats [2,64] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %145 grad.c3.z.weight [64] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %146 grad.c3.z.bias [64] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 1024; i0++) {
                float ld0 = buf3[(((b0 * 64) + gid) * 1024) + i0];
                float ld1 = buf2[(((b0 * 64) + gid) * 1024) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 64) + gid) * 1024) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[64 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[64 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k59_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %24 c3.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %25 c3.z.weight [64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %28 c3.z.stats [2,64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %31 c3 [64,64,32,32] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %141 grad.c3 [64,64,32,32] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %144 grad.c3.z.bstats [2,64] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %147 grad.c3.y [64,64,32,32] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 64];
        float ld4 = buf2[64 + (gid % 64)];
        float ld5 = buf1[gid % 64];
        float ld6 = buf5[gid % 64];
        float ld7 = buf5[64 + (gid % 64)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 1.52587891e-05f;
        float alu3 = (rstd0 * ld7) * 1.52587891e-05f;
        for (int64_t i0 = 0; i0 < 1024; i0++) {
            float ld0 = buf4[(gid * 1024) + i0];
            float ld1 = buf3[(gid * 1024) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 1024) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 1024) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k62_maxpool_bwd) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %21 c2 [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %148 grad.p1 [64,32,32,32] */
    float *DL_RESTRICT buf2 = dl_b[2]; /* %150 grad.c2 [64,32,64,64] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 4096;
        int64_t yo0 = gid * 1024;
        for (int64_t oi0 = 0; oi0 < 32; oi0++) {
            for (int64_t oj0 = 0; oj0 < 32; oj0++) {
                float g0 = 0.0f + buf1[yo0 + ((oi0 * 32) + oj0)];
                float best0 = (-DL_INF);
                int64_t arg0 = ((oi0 * 2) * 64) + (oj0 * 2);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        float v0 = buf0[xo0 + ((((oi0 * 2) + kh0) * 64) + ((oj0 * 2) + kw0))];
                        if ((v0 > best0) || (v0 != v0)) {
                            best0 = v0;
                            arg0 = (((oi0 * 2) + kh0) * 64) + ((oj0 * 2) + kw0);
                        }
                    }
                }
                for (int64_t kh1 = 0; kh1 < 2; kh1++) {
                    for (int64_t kw1 = 0; kw1 < 2; kw1++) {
                        buf2[xo0 + ((((oi0 * 2) + kh1) * 64) + ((oj0 * 2) + kw1))] = (((((oi0 * 2) + kh1) * 64) + ((oj0 * 2) + kw1)) == arg0) ? g0 : 0.0f;
                    }
                }
            }
        }
    }
}

DL_KERNEL(train_k63_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %14 c2.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %18 c2.z.stats [2,32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %21 c2 [64,32,64,64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %150 grad.c2 [64,32,64,64] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %152 grad.c2.z.bstats [2,32] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %153 grad.c2.z.weight [32] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %154 grad.c2.z.bias [32] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 4096; i0++) {
                float ld0 = buf3[(((b0 * 32) + gid) * 4096) + i0];
                float ld1 = buf2[(((b0 * 32) + gid) * 4096) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 32) + gid) * 4096) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[32 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[32 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k64_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %14 c2.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %15 c2.z.weight [32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %18 c2.z.stats [2,32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %21 c2 [64,32,64,64] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %150 grad.c2 [64,32,64,64] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %152 grad.c2.z.bstats [2,32] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %155 grad.c2.y [64,32,64,64] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 32];
        float ld4 = buf2[32 + (gid % 32)];
        float ld5 = buf1[gid % 32];
        float ld6 = buf5[gid % 32];
        float ld7 = buf5[32 + (gid % 32)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 3.81469727e-06f;
        float alu3 = (rstd0 * ld7) * 3.81469727e-06f;
        for (int64_t i0 = 0; i0 < 4096; i0++) {
            float ld0 = buf4[(gid * 4096) + i0];
            float ld1 = buf3[(gid * 4096) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 4096) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 4096) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k67_relu_bwd_bn_bwd_stats_select) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %5 c1.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %9 c1.z.stats [2,32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %12 c1 [64,32,64,64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %156 grad.c1 [64,32,64,64] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %159 grad.c1.z.bstats [2,32] */
    float *DL_RESTRICT buf5 = dl_b[5]; /* %160 grad.c1.z.weight [32] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %161 grad.c1.z.bias [32] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        double acc1 = 0.0;
        float ld3 = buf1[gid];
        for (int64_t b0 = 0; b0 < 64; b0++) {
            for (int64_t i0 = 0; i0 < 4096; i0++) {
                float ld0 = buf3[(((b0 * 32) + gid) * 4096) + i0];
                float ld1 = buf2[(((b0 * 32) + gid) * 4096) + i0];
                float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
                acc0 += (double)(alu0);
                float ld2 = buf0[(((b0 * 32) + gid) * 4096) + i0];
                acc1 += (double)(alu0) * ((double)(ld2) - (double)(ld3));
            }
        }
        float ld4 = buf1[32 + gid];
        float red0 = (float)(acc0);
        float red1 = (float)(acc1) * DL_RSQRT(ld4 + 9.99999975e-06f);
        buf4[gid] = red0;
        buf4[32 + gid] = red1;
        buf5[gid] = red1;
        buf6[gid] = red0;
    }
}

DL_KERNEL(train_k68_relu_bwd_bn_bwd_data) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %5 c1.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %6 c1.z.weight [32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %9 c1.z.stats [2,32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %12 c1 [64,32,64,64] */
    const float *DL_RESTRICT buf4 = dl_b[4]; /* %156 grad.c1 [64,32,64,64] */
    const float *DL_RESTRICT buf5 = dl_b[5]; /* %159 grad.c1.z.bstats [2,32] */
    float *DL_RESTRICT buf6 = dl_b[6]; /* %162 grad.c1.y [64,32,64,64] */
    DL_FOR_GID(gid) {
        float ld3 = buf2[gid % 32];
        float ld4 = buf2[32 + (gid % 32)];
        float ld5 = buf1[gid % 32];
        float ld6 = buf5[gid % 32];
        float ld7 = buf5[32 + (gid % 32)];
        float rstd0 = DL_RSQRT(ld4 + 9.99999975e-06f);
        float alu1 = ld5 * rstd0;
        float alu2 = ld6 * 3.81469727e-06f;
        float alu3 = (rstd0 * ld7) * 3.81469727e-06f;
        for (int64_t i0 = 0; i0 < 4096; i0++) {
            float ld0 = buf4[(gid * 4096) + i0];
            float ld1 = buf3[(gid * 4096) + i0];
            float alu0 = (ld1 > 0.0f) ? ld0 : 0.0f;
            float ld2 = buf0[(gid * 4096) + i0];
            float alu4 = alu1 * ((alu0 - alu2) - ((ld2 - ld3) * alu3));
            buf6[(gid * 4096) + i0] = alu4;
        }
    }
}

DL_KERNEL(train_k70_sgd) {
    float *DL_RESTRICT buf0 = dl_b[0]; /* parameters */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* gradients */
    float *DL_RESTRICT buf2 = dl_b[2]; /* momentum */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %3 scalars [4] */
    DL_FOR_GID(gid) {
        float lr0 = buf3[0];
        float mu0 = buf3[1];
        float w0 = buf0[gid];
        float g0 = buf1[gid] + (0.000500000024f * w0);
        float v0 = (mu0 * buf2[gid]) + g0;
        buf2[gid] = v0;
        buf0[gid] = w0 - (lr0 * v0);
    }
}

DL_KERNEL(eval_k1_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %2 c1.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %3 c1.z.weight [32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %4 c1.z.bias [32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %5 c1.z.running [2,32] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %7 c1 [64,32,64,64] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 32];
        float ld2 = buf3[32 + (gid % 32)];
        float ld3 = buf1[gid % 32];
        float ld4 = buf2[gid % 32];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 4096; i0++) {
            float ld0 = buf0[(gid * 4096) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 4096) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k3_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %9 c2.y [64,32,64,64] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %10 c2.z.weight [32] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %11 c2.z.bias [32] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %12 c2.z.running [2,32] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %14 c2 [64,32,64,64] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 32];
        float ld2 = buf3[32 + (gid % 32)];
        float ld3 = buf1[gid % 32];
        float ld4 = buf2[gid % 32];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 4096; i0++) {
            float ld0 = buf0[(gid * 4096) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 4096) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k4_maxpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %14 c2 [64,32,64,64] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %15 p1 [64,32,32,32] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 4096;
        int64_t yo0 = gid * 1024;
        for (int64_t oi0 = 0; oi0 < 32; oi0++) {
            for (int64_t oj0 = 0; oj0 < 32; oj0++) {
                float acc0 = (-DL_INF);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        acc0 = dl_fmax(buf0[xo0 + ((((oi0 * 2) + kh0) * 64) + ((oj0 * 2) + kw0))], acc0);
                    }
                }
                buf1[yo0 + ((oi0 * 32) + oj0)] = acc0;
            }
        }
    }
}

DL_KERNEL(eval_k6_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %17 c3.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %18 c3.z.weight [64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %19 c3.z.bias [64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %20 c3.z.running [2,64] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %22 c3 [64,64,32,32] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 64];
        float ld2 = buf3[64 + (gid % 64)];
        float ld3 = buf1[gid % 64];
        float ld4 = buf2[gid % 64];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 1024; i0++) {
            float ld0 = buf0[(gid * 1024) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 1024) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k8_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %24 c4.y [64,64,32,32] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %25 c4.z.weight [64] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %26 c4.z.bias [64] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %27 c4.z.running [2,64] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %29 c4 [64,64,32,32] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 64];
        float ld2 = buf3[64 + (gid % 64)];
        float ld3 = buf1[gid % 64];
        float ld4 = buf2[gid % 64];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 1024; i0++) {
            float ld0 = buf0[(gid * 1024) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 1024) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k9_maxpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %29 c4 [64,64,32,32] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %30 p2 [64,64,16,16] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 1024;
        int64_t yo0 = gid * 256;
        for (int64_t oi0 = 0; oi0 < 16; oi0++) {
            for (int64_t oj0 = 0; oj0 < 16; oj0++) {
                float acc0 = (-DL_INF);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        acc0 = dl_fmax(buf0[xo0 + ((((oi0 * 2) + kh0) * 32) + ((oj0 * 2) + kw0))], acc0);
                    }
                }
                buf1[yo0 + ((oi0 * 16) + oj0)] = acc0;
            }
        }
    }
}

DL_KERNEL(eval_k11_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %32 c5.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %33 c5.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %34 c5.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %35 c5.z.running [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %37 c5 [64,128,16,16] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 256; i0++) {
            float ld0 = buf0[(gid * 256) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 256) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k13_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %39 c6.y [64,128,16,16] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %40 c6.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %41 c6.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %42 c6.z.running [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %44 c6 [64,128,16,16] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 256; i0++) {
            float ld0 = buf0[(gid * 256) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 256) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k14_maxpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %44 c6 [64,128,16,16] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %45 p3 [64,128,8,8] */
    DL_FOR_GID(gid) {
        int64_t xo0 = gid * 256;
        int64_t yo0 = gid * 64;
        for (int64_t oi0 = 0; oi0 < 8; oi0++) {
            for (int64_t oj0 = 0; oj0 < 8; oj0++) {
                float acc0 = (-DL_INF);
                for (int64_t kh0 = 0; kh0 < 2; kh0++) {
                    for (int64_t kw0 = 0; kw0 < 2; kw0++) {
                        acc0 = dl_fmax(buf0[xo0 + ((((oi0 * 2) + kh0) * 16) + ((oj0 * 2) + kw0))], acc0);
                    }
                }
                buf1[yo0 + ((oi0 * 8) + oj0)] = acc0;
            }
        }
    }
}

DL_KERNEL(eval_k16_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %47 c7.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %48 c7.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %49 c7.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %50 c7.z.running [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %52 c7 [64,128,8,8] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 64; i0++) {
            float ld0 = buf0[(gid * 64) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 64) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k18_bn_infer_relu) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %54 c8.y [64,128,8,8] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %55 c8.z.weight [128] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %56 c8.z.bias [128] */
    const float *DL_RESTRICT buf3 = dl_b[3]; /* %57 c8.z.running [2,128] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %59 c8 [64,128,8,8] */
    DL_FOR_GID(gid) {
        float ld1 = buf3[gid % 128];
        float ld2 = buf3[128 + (gid % 128)];
        float ld3 = buf1[gid % 128];
        float ld4 = buf2[gid % 128];
        float rstd0 = DL_RSQRT(ld2 + 9.99999975e-06f);
        float alu0 = rstd0 * ld3;
        float alu1 = ld4 - (ld1 * alu0);
        for (int64_t i0 = 0; i0 < 64; i0++) {
            float ld0 = buf0[(gid * 64) + i0];
            float alu2 = (ld0 * alu0) + alu1;
            float alu3 = dl_fmax(alu2, 0.0f);
            buf4[(gid * 64) + i0] = alu3;
        }
    }
}

DL_KERNEL(eval_k19_global_avgpool) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %59 c8 [64,128,8,8] */
    float *DL_RESTRICT buf1 = dl_b[1]; /* %60 g [64,128] */
    DL_FOR_GID(gid) {
        double acc0 = 0.0;
        for (int64_t i0 = 0; i0 < 64; i0++) {
            acc0 += (double)(buf0[(gid * 64) + i0]);
        }
        buf1[gid] = (float)(acc0 / 64.0);
    }
}

DL_KERNEL(eval_k21_bias_add_log_softmax_exp_expect) {
    const float *DL_RESTRICT buf0 = dl_b[0]; /* %62 logits.bias [117] */
    const float *DL_RESTRICT buf1 = dl_b[1]; /* %63 logits.matmul [64,117] */
    const float *DL_RESTRICT buf2 = dl_b[2]; /* %67 dist.bin_values [1,117] */
    float *DL_RESTRICT buf3 = dl_b[3]; /* %66 agenet.probs [64,117] */
    float *DL_RESTRICT buf4 = dl_b[4]; /* %68 agenet.expect [64,1] */
    DL_FOR_GID(gid) {
        float t0[117];
        for (int64_t k0 = 0; k0 < 117; k0++) {
            float alu0 = buf1[(gid * 117) + k0] + buf0[k0];
            t0[k0] = alu0;
        }
        float t1[117];
        float mx0 = (-DL_INF);
        for (int64_t k1 = 0; k1 < 117; k1++) {
            mx0 = dl_fmax(t0[k1], mx0);
        }
        double acc0 = 0.0;
        for (int64_t k2 = 0; k2 < 117; k2++) {
            acc0 += (double)(DL_EXP(t0[k2] - mx0));
        }
        float lse0 = mx0 + DL_LOG((float)(acc0));
        for (int64_t k3 = 0; k3 < 117; k3++) {
            t1[k3] = t0[k3] - lse0;
        }
        for (int64_t k4 = 0; k4 < 117; k4++) {
            float alu1 = DL_EXP(t1[k4]);
            buf3[(gid * 117) + k4] = alu1;
        }
        float r0 = 0.0f;
        for (int64_t a0 = 0; a0 < 1; a0++) {
            double acc1 = 0.0;
            for (int64_t k5 = 0; k5 < 117; k5++) {
                acc1 += (double)(buf3[(gid * 117) + k5] * buf2[(a0 * 117) + k5]);
            }
            r0 = (float)(acc1);
        }
        buf4[gid] = r0;
    }
}

