#!/bin/sh
# bench/gpu.sh - `make bench-gpu`: dldl's CUDA backend against PyTorch (eager
# and torch.compile) on the same network and GPU: training images/s, inference
# images/s at batch 64, latency at batch 1, and their ratios, into
# bench/results/gpu.md with the date and the GPU.  Needs an NVIDIA GPU,
# ./dldlc and ./dldlrun (make), the UTKFace data ($DLDL_DATA) and python3 with
# a CUDA build of torch.  Written without a GPU at hand: it has not been run.
#
# dldl's figures:
#   training   images/s of one epoch of specs/age.dldl with --device cuda
#              (history.csv: the whole loop, batches fed from decoded images);
#   inference  64 / the eval program's time at batch 64 (--eval --profile:
#              the sum of the per-step medians, CUDA event times, no copies);
#   latency    the same at batch 1 (the spec with eval_batch = 1), ms.
# PyTorch's (bench/gpu_peer.py): the network alone on synthetic inputs already
# on the GPU, so the comparison favours PyTorch on training.
set -eu
cd "$(dirname "$0")/.."
export DLDL_DATA="${DLDL_DATA:-$(pwd)/../shared/data}"
out=bench/results/gpu.md
mkdir -p bench/results
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
gpu=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1) || true
[ -n "$gpu" ] || { echo "bench-gpu: no NVIDIA GPU (nvidia-smi found none)"; exit 1; }

# the age spec at eval batch 64 and 1 (its train block gains an eval_batch row)
for b in 64 1; do
    sed "s/^\(    batch  *= *64\)$/\1\n    eval_batch = $b/" specs/age.dldl > "$work/age$b.dldl"
    grep -q "eval_batch = $b" "$work/age$b.dldl" || { echo "bench-gpu: cannot set eval_batch in specs/age.dldl"; exit 1; }
    ./dldlc "$work/age$b.dldl" -o "$work/age$b.plan"
done
./dldlrun "$work/age64.plan" --train --epochs 1 --device cuda --quiet --out "$work/run" > "$work/train.log" 2>&1 ||
    { cat "$work/train.log"; exit 1; }
train=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "images_per_s") k = i; next } { v = $k } END { print v }' \
        "$work/run/history.csv")
# eval_ms PLAN: the eval program's total median ms from the --profile table
eval_ms() {
    ./dldlrun "$1" --eval --device cuda --weights "$work/run/weights.safetensors" --profile > /dev/null 2> "$work/prof" ||
        { cat "$work/prof"; exit 1; }
    awk '/^profile of program .eval./ { on = 1 } on && $1 == "total" { print $2; exit }' "$work/prof"
}
ms64=$(eval_ms "$work/age64.plan") ms1=$(eval_ms "$work/age1.plan")
infer=$(awk -v m="$ms64" 'BEGIN { printf "%.1f", 64000 / m }')
python3 bench/gpu_peer.py > "$work/peer" || { cat "$work/peer"; exit 1; }
peer() { awk -v m="$1" -v f="$2" '$1 == m && $2 == f { print $3 }' "$work/peer"; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
{
    echo "# dldl on the GPU against PyTorch ($(date -u +%Y-%m-%d), $gpu)"
    echo
    echo "specs/age.dldl (64x64 faces, batch 64); \`make bench-gpu\` (bench/gpu.sh, bench/gpu_peer.py)."
    echo
    echo "| figure | dldl | PyTorch eager | torch.compile | dldl / eager | dldl / compile |"
    echo "|---|---|---|---|---|---|"
    for f in train_img_s infer_img_s latency_ms; do
        case $f in train_img_s) d=$train;; infer_img_s) d=$infer;; latency_ms) d=$ms1;; esac
        e=$(peer eager $f) c=$(peer compile $f)
        if [ $f = latency_ms ]; then re=$(ratio "$e" "$d") rc=$(ratio "$c" "$d"); else re=$(ratio "$d" "$e") rc=$(ratio "$d" "$c"); fi
        echo "| $f | $d | $e | $c | $re | $rc |"
    done
    echo
    echo "Ratios above 1 favour dldl (for latency: PyTorch's time / dldl's)."
} > "$out"
cat "$out"
