#!/bin/sh
# bench/voc_multilabel.sh - `make bench-voc`: five-fold cross-validation of
# specs/voc_multilabel.dldl on the 527 VOC images, beside its PyTorch peer
# (bench/voc_multilabel_peer.py: the same network, targets, augmentation,
# optimizer and folds), the trivial predictor (classes scored by their
# training frequency) and the hard-target ablation (difficult objects weighted
# like the others, -D difficult=1).  Writes bench/results/voc_multilabel.md.
# Needs ./dldlc, ./dldlrun, python3 with torch, numpy and PIL for the peer, and
# the data root ($DLDL_DATA, default ../shared/data).
set -eu
cd "$(dirname "$0")/.."
export DLDL_DATA="${DLDL_DATA:-$(pwd)/../shared/data}"
PY=${PYTHON:-python3}
out=bench/results
mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
epochs=$(sed -n 's/^ *epochs *= *\([0-9]*\).*/\1/p' specs/voc_multilabel.dldl | head -1)

# cv NAME [-D ...]: dldl's five folds; prints "mean std secs"
cv() {
    name=$1; shift
    ./dldlc specs/voc_multilabel.dldl -o "$work/$name.plan" "$@"
    t0=$(date +%s)
    ./dldlrun "$work/$name.plan" --cv --quiet --out "$work/$name" > "$work/$name.log" 2>&1 || { cat "$work/$name.log"; exit 1; }
    secs=$(( $(date +%s) - t0 ))
    awk -F, -v s="$secs" '$1 == "map" { printf "%.1f %.1f %s\n", 100 * $3, 100 * $4, s }' "$work/$name/cv.csv"
}
dl=$(cv dldl -D difficult=0.5); echo "dldl: $dl" >&2
hard=$(cv hard -D difficult=1); echo "hard: $hard" >&2
t0=$(date +%s)
$PY bench/voc_multilabel_peer.py "$DLDL_DATA" "$epochs" 0.5 > "$work/peer.log"
psecs=$(( $(date +%s) - t0 ))
cat "$work/peer.log" >&2
stat() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { v[NR] = $(i + 1); s += v[NR] } }
                       END { m = s / NR; for (j in v) d += (v[j] - m) ^ 2; printf "%.1f ± %.1f", m, sqrt(d / NR) }' "$work/peer.log"; }
pm() { echo "$1" | awk '{ printf "%s ± %s", $1, $2 }'; }
{
    echo "# VOC2012 multi-label (527 images): five-fold cross-validation, mAP % (mean ± std over the folds)"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \`make bench-voc\`, $epochs epochs, 96 x 96 inputs."
    echo
    echo "| predictor | mAP % | time (5 folds) |"
    echo "|---|---|---|"
    echo "| dldl, DLDL target (difficult = 0.5) | $(pm "$dl") | $(echo "$dl" | cut -d' ' -f3) s |"
    echo "| dldl, hard target (difficult = 1) | $(pm "$hard") | $(echo "$hard" | cut -d' ' -f3) s |"
    echo "| PyTorch $($PY -c 'import torch; print(torch.__version__.split("+")[0])'), the same network and recipe | $(stat map) | $psecs s |"
    echo "| trivial: classes scored by their training frequency | $(stat trivial) | - |"
    echo
    echo "VOC2010+ average precision per class (the devkit's VOCap, tied scores one threshold), averaged over"
    echo "the classes with a positive in the test fold; a class present only as 'difficult' objects in an image"
    echo "does not count for that image.  The published DLDL figures (mAP 89.9-92.4 on the full VOC with an"
    echo "ImageNet-pretrained VGG) are context only: this is a small network from scratch on 527 images."
    echo
    echo "Times: wall clock of each run; on a machine other jobs share they say what the five folds cost,"
    echo "not which is faster (bench/conv_bench.c and the age benchmark compare speed)."
} > "$out/voc_multilabel.md"
cat "$out/voc_multilabel.md"
