#!/bin/sh
# bench/mpi.sh - `make bench-mpi`: data-parallel training of specs/age.dldl on
# this machine (docs/parallel.md), 1 rank x 2 threads against 2 ranks x 1
# thread, on the first 1,024 UTKFace training faces (16 steps of the global
# batch 64, one epoch; images/s count the training steps only), and the share of a train step
# that rank 0 spends waiting in all-reduces (communication not hidden behind
# computation, from --profile's per-step medians).  Writes
# bench/results/mpi.md.
set -eu
cd "$(dirname "$0")/.."
DLDL_DATA=${DLDL_DATA:-../shared/data}
export DLDL_DATA
command -v mpirun > /dev/null && [ -e build/dldl_mpi.so ] || { echo "bench-mpi needs mpirun and build/dldl_mpi.so"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir -p "$work/data/utkface"
ln -s "$(cd "$DLDL_DATA" && pwd)/utkface/images" "$work/data/utkface/images"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; print; next }
    $c["split"] == "train" && tr < 1024 { print; tr++ } $c["split"] == "test" && te < 64 { print; te++ }' \
    "$DLDL_DATA/utkface/labels.csv" > "$work/data/utkface/labels.csv"
./dldlc specs/age.dldl --ranks=2 -o "$work/age.plan"

# run NAME CMD...: images/s of the epoch (the result line) and the profile's wait share
run() {
    name=$1; shift
    "$@" --train --epochs 1 --data "$work/data" --out "$work/$name" --profile > "$work/$name.out" 2> "$work/$name.err" ||
        { cat "$work/$name.err"; exit 1; }
    ips=$(sed -n 's/.*(\([0-9.]*\) s, \([0-9]*\) img\/s)$/\2/p' "$work/$name.out")
    share=$(awk '/^profile of program .train/ { on = 1; next } /^profile of program/ { on = 0 }
        on && /all-reduce wait|allreduce.wait|grad.wait/ { w += $(NF - 1) } on && $1 == "total" { t = $(NF - 1) }
        END { printf "%.1f", (t > 0 ? 100 * w / t : 0) }' "$work/$name.err")
    step=$(awk '/^profile of program .train/ { on = 1; next } /^profile of program/ { on = 0 }
        on && $1 == "total" { printf "%.0f", $(NF - 1) }' "$work/$name.err")
    echo "| $name | $ips | $step | $share % |" >> "$work/table"
}
: > "$work/table"
run "1 rank x 2 threads" ./dldlrun "$work/age.plan" --threads 2
run "2 ranks x 1 thread" mpirun --allow-run-as-root --oversubscribe -np 2 ./dldlrun "$work/age.plan" --threads 1
nproc=$(nproc)
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
mpi=$(mpirun --version | head -1)
grads=$(./dldlc specs/age.dldl --ranks=2 --emit=plan | awk '/^  train@2/ { on = 1 } on && /allreduce_start \(\) i=/ { n++;
    split($0, a, /[][]/); split(a[2], f, ","); s += f[3] } END { printf "%d buckets, %d floats", n, s }')
bn=$(./dldlc specs/age.dldl --ranks=2 --emit=plan | awk '/^  train@2/ { on = 1 } on && /allreduce_start \(%/ { n++ } END { print n }')
{
    echo "# bench-mpi: data-parallel training of specs/age.dldl"
    echo
    echo "Measured $(date -u +%Y-%m-%d) on $nproc cores ($cpu), $mpi, by \`make bench-mpi\`:"
    echo "one epoch of the first 1,024 UTKFace training faces (16 steps of the global batch 64),"
    echo "images/s over the training steps only.  A step's median is rank 0's train program under --profile; the"
    echo "wait share is the part of it spent in ALLREDUCE_WAIT steps (communication not hidden"
    echo "behind computation; it includes waiting for a slower rank).  Load average at the end:"
    echo "$(cut -d' ' -f1-3 /proc/loadavg) (other work shares these cores: compare the two rows, not other tables)."
    echo
    echo "| run | images/s | step (ms) | waiting in all-reduces |"
    echo "|---|---|---|---|"
    cat "$work/table"
    echo
    echo "Per step and rank the plan all-reduces the gradients ($grads, in place in the"
    echo "gradient arena, started while backward runs) and $bn small batch-norm sums ([2,C]"
    echo "forward and backward, waited for at once), plus the loss (one double)."
} > bench/results/mpi.md
cat bench/results/mpi.md
