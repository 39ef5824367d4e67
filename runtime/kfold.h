/* kfold.h - the ten-fold split of the LDL reference, bit-exact with numpy.
 *
 * The LDL reference (shared/reference/torch_ldl.py) splits n samples into k
 * folds with
 *
 *   rng = np.random.RandomState(seed); idx = rng.permutation(n)
 *   folds = np.array_split(idx, k)
 *
 * These functions give exactly the same folds, so dldl's cross-validation
 * figures are computed on the same samples as the reference's.  Source:
 * numpy's legacy RandomState (numpy/random/mtrand.pyx, _legacy_seeding,
 * shuffle; src/distributions random_interval) on MT19937 (Matsumoto and
 * Nishimura, "Mersenne Twister: a 623-dimensionally equidistributed uniform
 * pseudo-random number generator", ACM TOMACS 8(1), 1998).  Checked against
 * numpy 1.24 by tests/unit/test_kfold.c.
 */
#ifndef DL_KFOLD_H
#define DL_KFOLD_H

#include <stdint.h>

/* out[0..n-1] = np.random.RandomState(seed).permutation(n): a permutation of
 * 0..n-1 (out has n ints).  n <= 0 writes nothing. */
void dl_np_permutation(uint32_t seed, int n, int *out);

/* is_test[0..n-1] (n bytes): 1 for the samples of fold `fold` (0-based) of
 * np.array_split(RandomState(seed).permutation(n), k), 0 for the rest.  Fold f
 * holds idx[start_f .. start_f + size_f - 1] with size_f = n / k + (f < n % k)
 * (the first n % k folds get one extra sample); over f = 0..k-1 each sample is
 * test exactly once.  k < 1 or fold outside 0..k-1 marks every sample train. */
void dl_kfold_assign(uint32_t seed, int n, int k, int fold, uint8_t *is_test);

#endif
