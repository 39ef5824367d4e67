#!/usr/bin/env python3
"""make_optimizer_fixture.py - write tests/numeric/optimizer_fixture.txt, the
numpy reference for the optimizer updates (checked by
tests/unit/test_optimizer_fixture.c, which runs dldl's generated GG_OPT kernel
for the same steps).

Each case runs S steps of one optimizer over two parameters (the kernel sees
them as one region), from given w0 and state, with per-step gradients and
per-step scalars lr_s and mom_s (SGD's momentum or Adam's beta1: what a
schedule writes into scalars[1]), at global steps t0 + s (scalars[2]; PyTorch's
step count is t = t0 + s + 1).  The formulas are those printed in the PyTorch
documentation of torch.optim (2.x), written out here in float64, independently
of dldl's code:

  SGD (dampening 0)       g = grad + wd w;  b = mu b + g;
                          nesterov: w -= lr (g + mu b)   else: w -= lr b
                          (Nesterov form: Sutskever et al., ICML 2013, as PyTorch writes it)
  Adam                    g = grad + wd w;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;
                          mhat = m / (1 - b1^t);  vhat = v / (1 - b2^t);
                          w -= lr mhat / (sqrt(vhat) + eps)
                          (Kingma & Ba, ICLR 2015, Algorithm 1)
  AdamW                   w -= lr wd w;  then Adam with g = grad
                          (Loshchilov & Hutter, ICLR 2019, Algorithm 2, with the schedule
                          multiplier eta_t folded into lr, as torch.optim.AdamW)

With a cycled beta1 (onecycle), b1 is the current step's value, in the moment
update and in the bias correction, as PyTorch uses group['betas'] at each step.
The inputs are rounded to float32 first (the kernel reads floats: weights,
gradients, states, lr, momentum/beta1 and the weight decay, which the graph
stores as a float); the arithmetic is float64 throughout, with no rounding
between steps, so the C test measures the kernel's float error.
Usage: python3 tests/numeric/make_optimizer_fixture.py [OUT]   (numpy only).
"""
import sys
import numpy as np

SIZES = (15, 7)          # two parameters: 15 and 7 elements
N = sum(SIZES)


def f32(x):
    return np.asarray(x, dtype=np.float32).astype(np.float64)


def run(op, wd, beta2, eps, t0, lr, mom, w, m, v, grads):
    """S steps of op from (w, m, v); returns the (w, m, v) after each step."""
    w, m, v = w.copy(), m.copy(), v.copy()
    out = []
    for s, g0 in enumerate(grads):
        t = t0 + s + 1
        a, mu = lr[s], mom[s]
        if op in ("sgd", "sgd_nesterov"):
            g = g0 + wd * w
            m = mu * m + g
            w = w - a * (g + mu * m if op == "sgd_nesterov" else m)
        else:
            if op == "adamw":
                w = w - a * wd * w
                g = g0
            else:
                g = g0 + wd * w
            b1 = mu
            m = b1 * m + (1 - b1) * g
            v = beta2 * v + (1 - beta2) * g * g
            mhat = m / (1 - b1 ** t)
            vhat = v / (1 - beta2 ** t)
            w = w - a * mhat / (np.sqrt(vhat) + eps)
        out.append((w.copy(), m.copy(), v.copy()))
    return out


def onecycle_like(steps, lo, hi):
    """A cosine from lo to hi and back over the steps (values of a cycled schedule)."""
    x = np.linspace(0.0, 2.0 * np.pi, steps)
    return lo + (hi - lo) * (1 - np.cos(x)) / 2


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/optimizer_fixture.txt"
    rng = np.random.RandomState(2015)
    S = 8
    # name, op, wd, beta2, eps, t0, lr per step, mom/beta1 per step, resumed (nonzero state)
    const = lambda x: np.full(S, x)
    cases = [
        ("sgd_wd", "sgd", 5e-4, 0.0, 0.0, 0, const(0.05), const(0.9), False),
        ("sgd_nesterov", "sgd_nesterov", 0.0, 0.0, 0.0, 0, const(0.05), const(0.9), False),
        ("sgd_nesterov_wd_cycled", "sgd_nesterov", 5e-4, 0.0, 0.0, 40, onecycle_like(S, 0.05, 0.002),
         onecycle_like(S, 0.85, 0.95), True),
        ("adam", "adam", 0.0, 0.999, 1e-8, 0, const(0.01), const(0.9), False),
        ("adam_wd_cycled_resumed", "adam", 1e-2, 0.99, 1e-6, 1000, onecycle_like(S, 0.02, 0.001),
         onecycle_like(S, 0.95, 0.85), True),
        ("adamw_nodecay", "adamw", 0.0, 0.999, 1e-8, 0, const(0.01), const(0.9), False),
        ("adamw", "adamw", 0.01, 0.999, 1e-8, 0, const(0.01), const(0.9), False),
        ("adamw_wd_cycled_resumed", "adamw", 0.1, 0.98, 1e-7, 3, onecycle_like(S, 0.03, 0.003),
         onecycle_like(S, 0.95, 0.85), True),
    ]

    def section(f, name, arr, width=None, fmt="%.17g"):
        """NAME COUNT, then the numbers, width a line; inputs are float32 values,
        which %.9g writes exactly."""
        arr = np.asarray(arr, dtype=np.float64).reshape(-1)
        f.write("%s %d\n" % (name, arr.size))
        w = width or arr.size or 1
        for i in range(0, arr.size, w):
            f.write(" ".join(fmt % x for x in arr[i:i + w]) + "\n")

    with open(out, "w") as f:
        f.write("# dldl optimizer fixture, version 1\n")
        f.write("# written by tests/numeric/make_optimizer_fixture.py (numpy); do not edit, re-run it\n")
        f.write("# PyTorch torch.optim formulas in float64 from float32 inputs: SGD (dampening 0, Nesterov),\n")
        f.write("# Adam [Kingma & Ba, ICLR 2015, Alg. 1], AdamW [Loshchilov & Hutter, ICLR 2019, Alg. 2]\n")
        f.write("# scalars per step s: [lr_s, mom_s (momentum or beta1), t0 + s, seed]\n")
        f.write("# per case: 'case NAME OP', then sections NAME COUNT + COUNT numbers; steps x N row-major\n")
        section(f, "cases", [len(cases)])
        section(f, "sizes", SIZES)
        worst_step = 0.0
        for name, op, wd, beta2, eps, t0, lr, mom, resumed in cases:
            wd, lr, mom = f32(wd), f32(lr), f32(mom)
            w0 = f32(rng.uniform(-1, 1, N))
            m0 = f32(rng.normal(0, 0.05, N) if resumed else np.zeros(N))
            v0 = f32(rng.uniform(0, 0.01, N) if resumed and op.startswith("adam") else np.zeros(N))
            scale = np.exp(rng.uniform(np.log(1e-3), 0, N))     # gradients over three decades
            grads = f32(rng.normal(0, 1, (S, N)) * scale)
            grads[:, 3] = 0.0                                     # one element never gets a gradient
            res = run(op, wd, beta2, eps, t0, lr, mom, w0, m0, v0, grads)
            worst_step = max(worst_step, float(np.abs(res[-1][0] - w0).max()))
            f.write("case %s %s\n" % (name, op))
            section(f, "wd", [wd], fmt="%.9g")
            section(f, "beta2", [beta2])
            section(f, "eps", [eps])
            section(f, "t0", [t0])
            section(f, "steps", [S])
            section(f, "lr", lr, fmt="%.9g")
            section(f, "mom", mom, fmt="%.9g")
            section(f, "w0", w0, fmt="%.9g")
            section(f, "m0", m0, fmt="%.9g")
            section(f, "v0", v0, fmt="%.9g")
            section(f, "grad", grads, N, fmt="%.9g")
            section(f, "w", [r[0] for r in res], N)
            section(f, "m", [r[1] for r in res], N)
            section(f, "v", [r[2] for r in res], N)
    print("wrote %s: %d cases of %d steps over %d elements; largest total update %.3g"
          % (out, len(cases), S, N, worst_step))


if __name__ == "__main__":
    main()
