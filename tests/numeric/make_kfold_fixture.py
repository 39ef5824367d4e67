#!/usr/bin/env python3
"""make_kfold_fixture.py - write tests/numeric/kfold.txt, the numpy reference for
runtime/kfold.c (checked by tests/unit/test_kfold.c, exactly).

The LDL reference (shared/reference/torch_ldl.py) splits n samples into folds with
  rng = np.random.RandomState(seed); idx = rng.permutation(n); folds = np.array_split(idx, k)
This records, from numpy's legacy RandomState (MT19937, init_genrand seeding):
  - whole permutations for small and LDL-sized n (the ten-fold sets' sizes),
  - for long ones and for every n in 1..NSWEEP (seed 0), a digest
      D = sum_i p[i] * ((2i+1) * 0x9E3779B97F4A7C15)  mod 2^64
    (any change of value or order changes D); n = 100000 draws with every bound
    1..99999, so it exercises every mask of the rejection sampler up to 2^17 - 1,
  - the np.array_split fold sizes for some (n, k), and the folds of one split in full.

File format (whitespace-separated tokens, '#' comment lines):
  perm SEED N p_0 .. p_{N-1}
  digest SEED N D
  sizes N K s_0 .. s_{K-1}
  fold SEED N K F M t_0 .. t_{M-1}        (t: np.array_split(perm, K)[F], in order)
Usage: python3 tests/numeric/make_kfold_fixture.py [OUT]   (numpy only; run with a
python3 that has numpy, e.g. /usr/bin/python3 with Debian's python3-numpy).
"""
import sys
import numpy as np

OUT = sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/kfold.txt"
PERMS = [(0, 1), (0, 2), (0, 3), (1, 10), (0, 213), (0, 1002), (0, 1980),
         (0, 2465), (0, 2500), (12345, 1000), (4294967295, 100), (7, 4097)]
DIGESTS = [(0, 100000), (1, 100000), (12345, 100000), (4294967295, 100000),
           (0, 65536), (0, 65537), (3, 99999)]
NSWEEP = 1030
SIZES = [(213, 10), (2500, 10), (1002, 10), (1980, 10), (2465, 10), (10, 10),
         (1, 1), (7, 3), (9, 10), (100, 7)]
FOLDS = [(0, 213, 10), (1, 10, 3), (0, 9, 10)]

GOLD = np.uint64(0x9E3779B97F4A7C15)


def digest(p):
    i = np.arange(len(p), dtype=np.uint64)
    w = (np.uint64(2) * i + np.uint64(1)) * GOLD
    return int(np.sum(p.astype(np.uint64) * w, dtype=np.uint64))


def perm(seed, n):
    return np.random.RandomState(seed).permutation(n)


def main():
    lines = ["# numpy %s legacy RandomState(seed).permutation(n) and np.array_split;"
             % np.__version__,
             "# written by tests/numeric/make_kfold_fixture.py - do not edit"]
    for s, n in PERMS:
        lines.append("perm %d %d %s" % (s, n, " ".join(map(str, perm(s, n)))))
    for s, n in DIGESTS:
        lines.append("digest %d %d %d" % (s, n, digest(perm(s, n))))
    for n in range(1, NSWEEP + 1):
        lines.append("digest 0 %d %d" % (n, digest(perm(0, n))))
    for n, k in SIZES:
        sz = [len(f) for f in np.array_split(np.arange(n), k)]
        lines.append("sizes %d %d %s" % (n, k, " ".join(map(str, sz))))
    for s, n, k in FOLDS:
        for f, t in enumerate(np.array_split(perm(s, n), k)):
            lines.append("fold %d %d %d %d %d %s" % (s, n, k, f, len(t), " ".join(map(str, t))))
    with open(OUT, "w") as fp:
        fp.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
