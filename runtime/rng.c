/* rng.c - counter-based random numbers (runtime/data.h).
 *
 * Every random choice of the data pipeline is a pure function of
 * (seed, a, b, c) -- by convention (seed, epoch, sample index, purpose) --
 * so the result does not depend on thread count, batch split or call order
 * (ROADMAP 2).  The hash is a chain of SplitMix64 steps (Steele, Lea, Flood,
 * "Fast splittable pseudorandom number generators", OOPSLA 2014):
 *
 *   mix(x) = finalise(x + 0x9e3779b97f4a7c15)
 *   finalise(z): z ^= z >> 30; z *= 0xbf58476d1ce4e5b9;
 *                z ^= z >> 27; z *= 0x94d049bb133111eb; z ^= z >> 31
 *   dl_rng_u64(seed, a, b, c) = mix(mix(mix(mix(seed) ^ a) ^ b) ^ c)
 *
 * Purposes in use: 0 = shuffle (dl_data_shuffle), 1 = horizontal flip,
 * 3 and 4 = random-crop row and column shifts (dl_data_batch), 2 = parameter
 * initialisation (exec.c: (seed, hash of the tensor name, element, 2)).
 */
#include "data.h"

static uint64_t mix(uint64_t x)
{
    uint64_t z = x + 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t dl_rng_u64(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    return mix(mix(mix(mix(seed) ^ a) ^ b) ^ c);
}

/* The top 24 bits as a float: exactly representable, in [0, 1). */
float dl_rng_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c)
{
    return (float)(dl_rng_u64(seed, a, b, c) >> 40) * (1.0f / 16777216.0f);
}
