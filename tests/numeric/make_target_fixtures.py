#!/usr/bin/env python3
"""make_target_fixtures.py - write tests/numeric/targets.txt, the numpy reference
for the label-distribution targets of runtime/target.c (checked by
tests/unit/test_target.c to 1e-6).

DLDL (Gao, Xing, Xie, Wu, Geng, IEEE TIP 2017, Sec. III-B): for a label l and
discrete bins, over the joint bins k (row-major, first axis slowest)

  y_k = exp(-sum_a (v_a(k_a) - l_a)^2 / (2 sigma_a^2)) / Z,   Z = sum_k (numerator)

computed here directly in float64, as written; if Z underflows to 0 (a label far
outside the bins) all mass goes to the nearest bin of each axis.  "onehot": all
mass on the nearest bin of each axis.  Nearest bin: numpy argmin of |v - l|
(ties to the lower index).

File format (whitespace-separated tokens, '#' comment lines):
  case NAME KIND NAXES
  axis NAME SIGMA NBINS v_0 .. v_{NBINS-1}      (NAXES lines)
  label l_0 .. l_{NAXES-1}
  y K y_0 .. y_{K-1}
Usage: python3 tests/numeric/make_target_fixtures.py [OUT]   (numpy only).
"""
import sys
import numpy as np

AGES = np.arange(0, 117, dtype=np.float64)                      # specs/age.dldl: bins 0..116
PITCH = np.array([-90, -60, -30, -15, 0, 15, 30, 60, 90], np.float64)  # specs/pose.dldl
YAW = np.arange(-90, 91, 15, dtype=np.float64)


def nearest(bins, l):
    return int(np.argmin(np.abs(bins - l)))


def onehot(axes, label):
    shape = [len(b) for _, _, b in axes]
    y = np.zeros(shape)
    y[tuple(nearest(b, l) for (_, _, b), l in zip(axes, label))] = 1.0
    return y.ravel()


def gaussian(axes, label):
    e = 0.0
    grids = np.meshgrid(*[b for _, _, b in axes], indexing="ij")   # first axis slowest
    for (_, s, _), g, l in zip(axes, grids, label):
        e = e + (g - l) ** 2 / (2.0 * s * s)
    y = np.exp(-e).ravel()
    z = y.sum()
    if z == 0.0:
        return onehot(axes, label)
    return y / z


def cases():
    age = [("age", 2.0, AGES)]
    pose = [("pitch", 15.0, PITCH), ("yaw", 15.0, YAW)]
    for l in [0.0, 116.0, 25.5, 1.0, 61.3, 110.0, -3.0, 200.0]:
        yield f"age_{l:g}", "gaussian1d", age, [l]
    yield "age_sigma0.5_far", "gaussian1d", [("age", 0.5, AGES)], [140.0]   # Z underflows
    yield "age_sigma8_40", "gaussian1d", [("age", 8.0, AGES)], [40.0]
    for p, w in [(-90, -90), (90, 90), (-90, 90), (90, -90), (0, 0), (15, -75), (30.5, 7.2), (-45, 45)]:
        yield f"pose_{p:g}_{w:g}", "gaussian2d", pose, [float(p), float(w)]
    yield "pose_aniso", "gaussian2d", [("pitch", 7.5, PITCH), ("yaw", 30.0, YAW)], [-20.0, 50.0]
    yield "onehot_age_25.5", "onehot", age, [25.5]                      # tie: the lower bin, 25
    yield "onehot_pose_tie", "onehot", pose, [22.5, -7.5]               # ties: pitch 15, yaw -15
    yield "onehot_pose_out", "onehot", pose, [-120.0, 100.0]


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else "tests/numeric/targets.txt"
    lines = ["# written by tests/numeric/make_target_fixtures.py (numpy); do not edit"]
    for name, kind, axes, label in cases():
        y = onehot(axes, label) if kind == "onehot" else gaussian(axes, label)
        assert abs(y.sum() - 1.0) < 1e-12
        lines.append(f"case {name} {kind} {len(axes)}")
        for an, s, b in axes:
            lines.append(f"axis {an} {s!r} {len(b)} " + " ".join(f"{v:g}" for v in b))
        lines.append("label " + " ".join(repr(float(l)) for l in label))
        lines.append(f"y {len(y)} " + " ".join(f"{v:.17g}" for v in y))
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{out}: {sum(1 for _ in cases())} cases")


if __name__ == "__main__":
    main()
