#!/usr/bin/env python3
"""make_label_map_fixture.py - write tests/numeric/label_map.txt, the numpy
reference for the per-pixel label_map target of runtime/target.c
(dl_target_label_map; checked by tests/unit/test_target.c to 1e-6).

DLDL's segmentation target (Gao et al., IEEE TIP 2017, Sec. IV-D): per pixel p
of a label map m (class indices 0..K-1, 255 void), a Gaussian-weighted vote of
the neighbouring pixels' classes,

  y_k(p) = sum_{q in N(p), m(q) = k} g(q - p) / sum_{q in N(p), m(q) != 255} g(q - p),
  g(d) = exp(-|d|^2 / (2 sigma^2)),  N(p) the (2r+1) x (2r+1) window, r = ceil(3 sigma),

clipped to the map; a void pixel's row is all zero; sigma 0 is one-hot.  Here
the window sum is computed directly in two dimensions (the C code uses two
separable 1-D passes), in float64.

File format (whitespace-separated tokens, '#' comment lines):
  case NAME H W K SIGMA
  mask m_0 .. m_{H*W-1}
  y y_0 .. y_{H*W*K-1}        (row-major [H*W, K])
Usage: python3 tests/numeric/make_label_map_fixture.py [OUT]   (numpy only).
"""
import math
import sys

import numpy as np


def label_map(m, K, sigma):
    H, W = m.shape
    y = np.zeros((H, W, K))
    if sigma <= 0:
        for i in range(H):
            for j in range(W):
                if m[i, j] < K:
                    y[i, j, m[i, j]] = 1.0
        return y.reshape(H * W, K)
    r = min(int(math.ceil(3 * sigma)), max(H, W))
    for i in range(H):
        for j in range(W):
            if m[i, j] >= K:
                continue
            num = np.zeros(K)
            den = 0.0
            for di in range(-r, r + 1):
                for dj in range(-r, r + 1):
                    a, b = i + di, j + dj
                    if 0 <= a < H and 0 <= b < W and m[a, b] < K:
                        g = math.exp(-(di * di + dj * dj) / (2 * sigma * sigma))
                        num[m[a, b]] += g
                        den += g
            y[i, j] = num / den
    return y.reshape(H * W, K)


def cases():
    rng = np.random.default_rng(20261130)
    two = np.zeros((6, 7), np.int64)
    two[:, 4:] = 1                                   # a vertical boundary
    yield "boundary", two, 2, 1.0
    blob = np.zeros((8, 8), np.int64)
    blob[2:6, 3:7] = 15                              # a person on background, a void border
    blob[1, 2:8] = 255
    yield "blob_void", blob, 21, 1.5
    yield "onehot", blob, 21, 0.0
    rnd = rng.integers(0, 4, size=(5, 9))
    rnd[rng.random((5, 9)) < 0.2] = 255
    yield "random", rnd, 4, 0.7
    yield "wide_sigma", rnd, 4, 4.0                  # the window clipped by the map on every side
    yield "all_void", np.full((3, 3), 255), 3, 1.0


def main():
    out = open(sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/label_map.txt", "w")
    out.write("# written by tests/numeric/make_label_map_fixture.py (numpy); do not edit\n")
    for name, m, K, sigma in cases():
        H, W = m.shape
        y = label_map(m, K, sigma)
        out.write(f"case {name} {H} {W} {K} {sigma!r}\n")
        out.write("mask " + " ".join(str(int(v)) for v in m.ravel()) + "\n")
        out.write("y " + " ".join(repr(float(v)) for v in y.ravel()) + "\n")


if __name__ == "__main__":
    main()
