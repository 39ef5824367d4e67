/* kfold.c - numpy's legacy RandomState(seed).permutation(n) and the
 * np.array_split folds of the LDL reference (runtime/kfold.h).
 *
 * Generator: MT19937 (Matsumoto and Nishimura, ACM TOMACS 1998).  numpy's
 * legacy seeding of RandomState(int) is the reference init_genrand(seed)
 * (mt19937_seed: mt[0] = seed, mt[i] = 1812433253 * (mt[i-1] ^ mt[i-1] >> 30)
 * + i), not init_by_array; the first draw regenerates the whole state.  So
 * RandomState(0).get_state()[1][:3] == [0, 1, 1812433255].
 *
 * permutation(n) is shuffle(arange(n)), whose 1-D path (_shuffle_raw) is
 * Fisher-Yates from the end:
 *
 *   for i = n-1 down to 1:  j = random_interval(i); swap(x[i], x[j])
 *
 * random_interval(max) draws uniformly from 0..max by masked rejection:
 * mask = the smallest 2^b - 1 >= max; draw (32-bit output if max <= 2^32 - 1,
 * else a 64-bit one: first output << 32 | second) & mask until <= max.
 * max = 0 draws nothing.  With an int n only the 32-bit branch runs; the
 * other is kept so the function is numpy's whole.
 */
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "kfold.h"

enum { MT_N = 624, MT_M = 397 };

typedef struct Mt {
    uint32_t s[MT_N];
    int pos;
} Mt;

static void mt_seed(Mt *mt, uint32_t seed)
{
    mt->s[0] = seed;
    for (int i = 1; i < MT_N; i++)
        mt->s[i] = 1812433253u * (mt->s[i - 1] ^ (mt->s[i - 1] >> 30)) + (uint32_t)i;
    mt->pos = MT_N;
}

static void mt_regen(Mt *mt)
{
    uint32_t *s = mt->s;
    for (int i = 0; i < MT_N; i++) {
        uint32_t y = (s[i] & 0x80000000u) | (s[(i + 1) % MT_N] & 0x7fffffffu);
        s[i] = s[(i + MT_M) % MT_N] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
    }
    mt->pos = 0;
}

static uint32_t mt_u32(Mt *mt)
{
    if (mt->pos >= MT_N) mt_regen(mt);
    uint32_t y = mt->s[mt->pos++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    y ^= y >> 18;
    return y;
}

static uint64_t mt_u64(Mt *mt)
{
    uint64_t hi = mt_u32(mt);
    return hi << 32 | mt_u32(mt);
}

/* numpy random_interval: uniform on 0..max by masked rejection. */
static uint64_t random_interval(Mt *mt, uint64_t max)
{
    if (max == 0) return 0;
    uint64_t mask = max, v;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    if (max <= 0xffffffffu) {
        while ((v = (mt_u32(mt) & mask)) > max) {}
    } else {
        while ((v = (mt_u64(mt) & mask)) > max) {}
    }
    return v;
}

void dl_np_permutation(uint32_t seed, int n, int *out)
{
    if (n <= 0) return;
    for (int i = 0; i < n; i++) out[i] = i;
    Mt *mt = dl_xmalloc(sizeof *mt);
    mt_seed(mt, seed);
    for (int i = n - 1; i >= 1; i--) {
        int j = (int)random_interval(mt, (uint64_t)i);
        int t = out[i];
        out[i] = out[j];
        out[j] = t;
    }
    free(mt);
}

void dl_kfold_assign(uint32_t seed, int n, int k, int fold, uint8_t *is_test)
{
    if (n <= 0) return;
    memset(is_test, 0, (size_t)n);
    if (k < 1 || fold < 0 || fold >= k) return;
    int *idx = dl_xmalloc((size_t)n * sizeof *idx);
    dl_np_permutation(seed, n, idx);
    int q = n / k, r = n % k;
    int start = fold * q + (fold < r ? fold : r);
    int size = q + (fold < r);
    for (int i = start; i < start + size; i++) is_test[idx[i]] = 1;
    free(idx);
}
