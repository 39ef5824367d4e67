#!/bin/sh
# bench/voc_seg.sh - `make bench-voc-seg`: five-fold cross-validation of
# specs/voc_seg.dldl on the 289 segmented VOC images, beside the one-hot
# ablation (-D sigma=0: plain per-pixel cross-entropy), its PyTorch peer
# (bench/voc_seg_peer.py: the same network, targets, augmentation, optimizer
# and folds) and the trivial predictor (every pixel background).  Writes
# bench/results/voc_seg.md.  Needs ./dldlc, ./dldlrun, python3 with torch,
# numpy and PIL for the peer, and the data root ($DLDL_DATA, default
# ../shared/data).  RESULTS=DIR keeps the runs' folders there; DLDLC and
# DLDLRUN name other binaries than ./dldlc and ./dldlrun.
set -eu
cd "$(dirname "$0")/.."
export DLDL_DATA="${DLDL_DATA:-$(pwd)/../shared/data}"
PY=${PYTHON:-python3}
DLDLC=${DLDLC:-./dldlc}
DLDLRUN=${DLDLRUN:-./dldlrun}
out=bench/results
mkdir -p "$out"
work=${RESULTS:-$(mktemp -d)}
mkdir -p "$work"
epochs=$(sed -n 's/^ *epochs *= *\([0-9]*\).*/\1/p' specs/voc_seg.dldl | head -1)

# cv NAME [-D ...]: dldl's five folds; prints "miou_mean miou_std pixacc_mean pixacc_std secs"
cv() {
    name=$1; shift
    "$DLDLC" specs/voc_seg.dldl -o "$work/$name.plan" "$@"
    t0=$(date +%s)
    "$DLDLRUN" "$work/$name.plan" --cv --quiet --overwrite --out "$work/$name" > "$work/$name.log" 2>&1 ||
        { cat "$work/$name.log"; exit 1; }
    secs=$(( $(date +%s) - t0 ))
    awk -F, -v s="$secs" '$1 == "miou" { m = 100 * $3; sd = 100 * $4 } $1 == "pixacc" { a = 100 * $3; asd = 100 * $4 }
                          END { printf "%.1f %.1f %.1f %.1f %s\n", m, sd, a, asd, s }' "$work/$name/cv.csv"
}
dl=$(cv dldl -D sigma=1); echo "dldl: $dl" >&2
onehot=$(cv onehot -D sigma=0); echo "one-hot: $onehot" >&2
t0=$(date +%s)
$PY bench/voc_seg_peer.py "$DLDL_DATA" "$epochs" 1 > "$work/peer.log"
psecs=$(( $(date +%s) - t0 ))
cat "$work/peer.log" >&2
stat() { awk -v k="$1" '{ for (i = 1; i < NF; i++) if ($i == k) { v[NR] = $(i + 1); s += v[NR] } }
                       END { m = s / NR; for (j in v) d += (v[j] - m) ^ 2; printf "%.1f ± %.1f", m, sqrt(d / NR) }' "$work/peer.log"; }
pm() { echo "$1" | awk -v c="$2" '{ printf "%s ± %s", $c, $(c + 1) }'; }
{
    echo "# VOC2012 segmentation (289 images): five-fold cross-validation, mIoU and pixel accuracy % (mean ± std over the folds)"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \`make bench-voc-seg\`, $epochs epochs, 64 x 64 inputs and label maps."
    echo
    echo "| predictor | mIoU % | pixel accuracy % | time (5 folds) |"
    echo "|---|---|---|---|"
    echo "| dldl, DLDL per-pixel target (label_map, sigma = 1 pixel) | $(pm "$dl" 1) | $(pm "$dl" 3) | $(echo "$dl" | cut -d' ' -f5) s |"
    echo "| dldl, one-hot targets (sigma = 0: per-pixel cross-entropy) | $(pm "$onehot" 1) | $(pm "$onehot" 3) | $(echo "$onehot" | cut -d' ' -f5) s |"
    echo "| PyTorch $($PY -c 'import torch; print(torch.__version__.split("+")[0])'), the same network and recipe (sigma = 1) | $(stat miou) | $(stat pixacc) | $psecs s |"
    echo "| trivial: every pixel background | $(stat trivial_miou) | $(stat trivial_pixacc) | - |"
    echo
    echo "mIoU: one confusion matrix over the test fold's pixels, void (255) excluded, averaged over the classes"
    echo "present in the truth or the prediction.  The published DLDL figure (mIoU 64.5 on VOC with an"
    echo "ImageNet-pretrained VGG) is context only: this is a small FCN from scratch on 231 training images."
    echo
    echo "Times: wall clock of each run; on a machine other jobs share they say what the five folds cost,"
    echo "not which is faster."
} > "$out/voc_seg.md"
cat "$out/voc_seg.md"
