#!/usr/bin/env python3
"""make_ldl_fixture.py - write tests/numeric/ldl_measures.txt, the numpy reference
for runtime/ldl_measures.c (checked by tests/unit/test_ldl_measures.c to 1e-6).

  measures   the six LDL measures of Geng, "Label Distribution Learning", IEEE
             TKDE 2016 (Chebyshev, Clark, Canberra, KL, Cosine, Intersection),
             by measures() below, copied from shared/reference/torch_ldl.py:
             both rows clipped at EPS = 1e-12, then the per-row formulas, then
             the mean over rows.  Each case row pair is passed as a batch of one;
             one batch of B rows checks the mean (dl_ldl_mean).
  eps        the ChaLearn LAP 2015 epsilon-error 1 - exp(-(x - mu)^2 / (2 sigma^2))
             (Escalera et al., 2015) for (x, mu, sigma) in years, computed as
             -expm1(-(x - mu)^2 / (2 sigma^2)) (no cancellation when x ~ mu).
  mean_std   mean and population std (np.std, ddof=0, as torch_ldl.py's r.std(0)).

The C takes float rows, so every p and y here is rounded to float32 first and
written with 9 significant digits (exact for float32); the expected values are
computed from those values widened to float64, so numpy works in double as the C
does.  (In torch_ldl.py P is float32 softmax output: its |P| is then a float32
norm, a difference below 1e-7 relative.)
Usage: python3 tests/numeric/make_ldl_fixture.py [OUT]   (numpy only).
"""
import sys
import numpy as np

EPS = 1e-12
NAMES = ["chebyshev", "clark", "canberra", "kl", "cosine", "intersection"]


def measures(P, Y):  # torch_ldl.py, verbatim
    P = np.clip(P, EPS, None); Y = np.clip(Y, EPS, None)
    cheb = np.abs(P - Y).max(1).mean()
    clark = np.sqrt((((P - Y) ** 2) / ((P + Y) ** 2)).sum(1)).mean()
    canb = (np.abs(P - Y) / (P + Y)).sum(1).mean()
    kl = (Y * np.log(Y / P)).sum(1).mean()
    cos = ((P * Y).sum(1) / np.linalg.norm(P, axis=1) / np.linalg.norm(Y, axis=1)).mean()
    inter = np.minimum(P, Y).sum(1).mean()
    return np.array([cheb, clark, canb, kl, cos, inter])


def f32(a):
    """Round to float32 (what the C reads), back to float64 for numpy."""
    return np.asarray(a, dtype=np.float32).astype(np.float64)


def softmax(z):
    z = z - z.max()
    e = np.exp(z)
    return e / e.sum()


def gaussian(K, mu, sigma):
    v = np.arange(K, dtype=np.float64)
    y = np.exp(-(v - mu) ** 2 / (2 * sigma ** 2))
    return y / y.sum()


def onehot(K, k):
    y = np.zeros(K)
    y[k] = 1.0
    return y


def cases(rng):
    """(description, p, y) row pairs."""
    out = []
    out.append(("K=2 random: softmax p, Dirichlet y", softmax(rng.normal(0, 1, 2)), rng.dirichlet([1, 1])))
    out.append(("K=2 by hand: p (0.25, 0.75), y (0.5, 0.5)", np.array([0.25, 0.75]), np.array([0.5, 0.5])))
    p = softmax(rng.normal(0, 1, 5)); p[[1, 3]] = 0; p /= p.sum()
    out.append(("K=5 exact zeros in p", p, rng.dirichlet(np.ones(5))))
    y = rng.dirichlet(np.ones(5)); y[[0, 4]] = 0; y /= y.sum()
    out.append(("K=5 exact zeros in y", softmax(rng.normal(0, 1, 5)), y))
    p = np.array([0.0, 0.5, 0.0, 0.3, 0.2]); y = np.array([0.0, 0.0, 0.6, 0.4, 0.0])
    out.append(("K=5 zeros in both, shared (bin 0) and not", p, y))
    out.append(("K=8 one-hot y, peaked softmax p", softmax(3 * rng.normal(0, 1, 8)), onehot(8, 5)))
    out.append(("K=8 one-hot p and y on different bins", onehot(8, 2), onehot(8, 6)))
    g = gaussian(8, 3.3, 1.5)
    out.append(("K=8 equal rows (Gaussian)", g, g.copy()))
    out.append(("K=8 equal one-hot rows", onehot(8, 0), onehot(8, 0)))
    out.append(("K=70 softmax p, Gaussian y (sigma 2 around 31.4)",
                softmax(rng.normal(0, 2, 70)), gaussian(70, 31.4, 2.0)))
    # logits spread so that p has float32 entries below EPS (clipped) but not 0
    z = np.linspace(-40, 0, 70) + rng.normal(0, 0.5, 70)
    out.append(("K=70 p with nonzero entries below 1e-12", softmax(z), gaussian(70, 60.0, 3.0)))
    y = gaussian(70, 12.0, 4.0)
    out.append(("K=70 near-equal rows", y * (1 + 1e-3 * rng.normal(0, 1, 70)), y))
    out.append(("K=70 uniform p, Dirichlet y", np.full(70, 1 / 70), rng.dirichlet(np.ones(70))))
    out.append(("K=1", np.array([1.0]), np.array([1.0])))
    return out


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/ldl_measures.txt"
    rng = np.random.RandomState(2016)

    def row(f, xs, fmt="%.17g"):
        f.write(" ".join(fmt % x for x in xs) + "\n")

    def section(f, name, xs, fmt="%.17g", per_line=None):
        xs = np.asarray(xs, dtype=np.float64).ravel()
        f.write("%s %d\n" % (name, xs.size))
        step = per_line or max(xs.size, 1)
        for i in range(0, xs.size, step):
            row(f, xs[i:i + step], fmt)

    cs = [(d, f32(p), f32(y)) for d, p, y in cases(rng)]
    B, KB = 6, 70
    PB = f32(np.stack([softmax(rng.normal(0, 2, KB)) for _ in range(B)]))
    YB = f32(np.stack([gaussian(KB, mu, 2.0) for mu in rng.uniform(5, 65, B)]))
    PB[2, :10] = 0.0   # exact zeros in one row of the batch
    eps_cases = [(25.0, 25.0, 3.0), (30.0, 25.0, 5.0), (20.0, 25.5, 4.2), (80.0, 20.0, 2.0),
                 (10.3, 40.7, 8.9), (0.0, 1e-3, 1e-4), (25.0, 25.001, 3.0)]
    for _ in range(6):
        eps_cases.append((rng.uniform(0, 100), rng.uniform(0, 100), rng.uniform(0.5, 10)))
    ms_cases = [np.array([0.5]), np.array([1.0, 3.0]), np.array([-2.0, 0.0, 7.5, 1.25]),
                rng.uniform(0.0, 1.0, 10), 0.06 + 0.003 * rng.normal(0, 1, 10)]

    with open(out, "w") as f:
        f.write("# dldl LDL measures fixture, version 1\n")
        f.write("# written by tests/numeric/make_ldl_fixture.py (numpy); do not edit, re-run it\n")
        f.write("# measures (Geng, TKDE 2016) as torch_ldl.py: clip p, y at 1e-12, then per row\n")
        f.write("#   %s\n" % " ".join(NAMES))
        f.write("# eps-error (ChaLearn LAP 2015) = 1 - exp(-(x - mu)^2 / (2 sigma^2)); rows x mu sigma e\n")
        f.write("# mean_std: mean and population std (ddof 0) of the x before it\n")
        f.write("# sections: NAME COUNT, then COUNT numbers; p, y float32 values\n")
        section(f, "ncases", [len(cs)])
        for i, (d, p, y) in enumerate(cs):
            f.write("# case %d: %s\n" % (i, d))
            section(f, "K", [p.size])
            section(f, "p", p, "%.9g", 10)
            section(f, "y", y, "%.9g", 10)
            section(f, "measures", measures(p[None], y[None]))
        f.write("# batch: B rows, mean over rows (torch_ldl.py measures(P, Y) of a fold)\n")
        section(f, "B", [B])
        section(f, "K", [KB])
        section(f, "P", PB, "%.9g", 10)
        section(f, "Y", YB, "%.9g", 10)
        section(f, "measures", measures(PB, YB))
        ev = [(x, mu, s, -np.expm1(-(x - mu) ** 2 / (2 * s ** 2))) for x, mu, s in eps_cases]
        section(f, "eps", ev, per_line=4)
        section(f, "nmeanstd", [len(ms_cases)])
        for x in ms_cases:
            section(f, "x", x)
            section(f, "mean_std", [x.mean(), x.std()])
    print("wrote %s: %d row cases, a batch of %d x %d, %d eps-error cases, %d mean/std cases"
          % (out, len(cs), B, KB, len(eps_cases), len(ms_cases)))


if __name__ == "__main__":
    main()
