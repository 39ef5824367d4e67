"""The trivial label-distribution predictor on the LDL sets: every test sample
gets the mean label distribution of its training folds.  Its KL (Geng's
measure, as ../shared/reference/torch_ldl.py computes it) is the bar the
end-to-end test tests/e2e/ldl_sets.sh must beat.  Folds as the reference:
np.random.RandomState(0).permutation(n), np.array_split into k.

Usage: /usr/bin/python3 tests/numeric/make_ldl_trivial.py DATA_ROOT > tests/numeric/ldl_trivial.txt
Needs numpy and scipy (offline only; the tests read the text file)."""
import sys
import numpy as np
import scipy.io as sio

EPS = 1e-12
root = sys.argv[1] if len(sys.argv) > 1 else '../shared/data'
print('# set folds fold(1-based, 0 = mean over all) trivial_kl   (tests/numeric/make_ldl_trivial.py)')
for name in ('SJAFFE', 'emotion6'):
    Y = sio.loadmat(f'{root}/ldl/{name}.mat')['labels'].astype(np.float64)
    Y = Y / Y.sum(1, keepdims=True)
    for k in (10, 2):
        idx = np.random.RandomState(0).permutation(len(Y))
        folds = np.array_split(idx, k)
        kls = []
        for f in range(k):
            te = folds[f]
            tr = np.concatenate([folds[j] for j in range(k) if j != f])
            P = np.clip(np.tile(Y[tr].mean(0), (len(te), 1)), EPS, None)
            T = np.clip(Y[te], EPS, None)
            kls.append((T * np.log(T / P)).sum(1).mean())
            if f == 0:
                print(f'{name} {k} 1 {kls[-1]:.6f}')
        print(f'{name} {k} 0 {np.mean(kls):.6f}')
