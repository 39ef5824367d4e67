#!/usr/bin/env python3
"""make_loss_fixture.py - write tests/numeric/loss_fixture.txt, the numpy
reference for the DLDL loss tail (checked by tests/unit/test_loss_fixture.c).

For a few rows of logits z [B,K] over the ages 0..116 (K = 117 bins), Gaussian
label distributions y (sigma 2 years) around real-valued ages a [B]:

  p      = softmax(z)                                    row-wise
  KL     = 1/B sum_b sum_k y (log y - log p)             Gao et al., TIP 2017
  E_b    = sum_k p_bk v_k,  v_k = k                      DLDL-v2 read-out (Gao et al., IJCAI 2018)
  L1     = 1/B sum_b |E_b - a_b|                         DLDL-v2 expectation loss
  loss   = KL + lambda * L1
  dloss/dz_bk = (p - y)/B + lambda/B * sign(E_b - a_b) * p_bk (v_k - E_b)

The gradient is written from the closed form above (not by autodiff), and is
checked here against central finite differences before the file is written.
Usage: python3 tests/numeric/make_loss_fixture.py [OUT]   (numpy only).
"""
import sys
import numpy as np

B, K, SIGMA, LAMBDA = 4, 117, 2.0, 1.0
AGES = np.array([3.0, 25.4, 61.0, 116.0])   # includes the last bin: a truncated Gaussian


def target(a):
    v = np.arange(K, dtype=np.float64)
    y = np.exp(-(v - a) ** 2 / (2 * SIGMA ** 2))
    return y / y.sum()


def loss_of(z, y, ages, lam):
    m = z.max(axis=1, keepdims=True)
    logp = z - m - np.log(np.exp(z - m).sum(axis=1, keepdims=True))
    p = np.exp(logp)
    with np.errstate(divide="ignore", invalid="ignore"):
        ylogy = np.where(y > 0, y * np.log(np.where(y > 0, y, 1.0)), 0.0)
    kl = (ylogy - y * logp).sum(axis=1).mean()
    e = p @ np.arange(K, dtype=np.float64)
    l1 = np.abs(e - ages).mean()
    return p, e, kl, l1, kl + lam * l1


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/loss_fixture.txt"
    rng = np.random.RandomState(2017)
    z = rng.normal(0.0, 2.0, size=(B, K))
    z[1, 20:30] += 4.0          # a row that already points near its age
    y = np.stack([target(a) for a in AGES])
    p, e, kl, l1, loss = loss_of(z, y, AGES, LAMBDA)
    v = np.arange(K, dtype=np.float64)
    grad = (p - y) / B + LAMBDA / B * np.sign(e - AGES)[:, None] * p * (v[None, :] - e[:, None])

    # self-check: the closed form against central differences
    h, worst = 1e-6, 0.0
    for b in range(B):
        for k in range(0, K, 7):
            zp, zm = z.copy(), z.copy()
            zp[b, k] += h
            zm[b, k] -= h
            fd = (loss_of(zp, y, AGES, LAMBDA)[4] - loss_of(zm, y, AGES, LAMBDA)[4]) / (2 * h)
            worst = max(worst, abs(fd - grad[b, k]))
    assert worst < 1e-7, worst

    def row(f, xs):
        f.write(" ".join("%.17g" % x for x in xs) + "\n")

    with open(out, "w") as f:
        f.write("# dldl loss fixture, version 1\n")
        f.write("# written by tests/numeric/make_loss_fixture.py (numpy); do not edit, re-run it\n")
        f.write("# loss = 1/B sum_b KL(y_b || softmax(z_b))  [Gao et al., IEEE TIP 2017]\n")
        f.write("#      + lambda/B sum_b |sum_k softmax(z_b)_k v_k - a_b|  [DLDL-v2, Gao et al., IJCAI 2018]\n")
        f.write("# grad = (p - y)/B + lambda/B sign(E - a) p (v - E); v_k = k years, k = 0..K-1\n")
        f.write("# sections: NAME COUNT, then COUNT numbers (row-major)\n")
        f.write("B 1\n%d\nK 1\n%d\nlambda 1\n%.17g\nsigma 1\n%.17g\n" % (B, K, LAMBDA, SIGMA))
        for name, arr in (("ages", AGES), ("logits", z), ("target", y), ("probs", p),
                          ("expect", e), ("kl", [kl]), ("l1", [l1]), ("loss", [loss]),
                          ("grad", grad)):
            arr = np.asarray(arr, dtype=np.float64)
            f.write("%s %d\n" % (name, arr.size))
            for r in arr.reshape(-1, arr.shape[-1] if arr.ndim > 1 else arr.size):
                row(f, r)
    print("wrote %s: KL %.6f, L1 %.6f, loss %.6f, fd check %.2e" % (out, kl, l1, loss, worst))


if __name__ == "__main__":
    main()
