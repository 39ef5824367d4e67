# MPI runs that stop and go on (docs/parallel.md):
#  - --resume with another process count: 1 epoch of specs/ldl_mlp.dldl (with
#    a step schedule, which does not depend on --epochs) on 2 ranks, then
#    --resume to 2 epochs on 4 ranks, matches 2 epochs of one process within
#    1e-5 (checkpoints hold no per-rank state; rank 0 alone wrote them);
#  - a rank killed (SIGKILL) during training stops the whole job, and
#    mpirun's message names it; --resume as one process (no mpirun) then
#    finishes the run;
#  - a rank that hangs (SIGSTOP) makes the others stop after
#    DLDL_COMM_TIMEOUT seconds with a message, never a hang.
# Skipped, saying so, when mpirun or the MPI plugin is missing.
. "$(dirname "$0")/lib.sh"
if ! command -v mpirun > /dev/null || [ ! -e build/dldl_mpi.so ]; then
    echo "SKIPPED: mpirun or build/dldl_mpi.so missing (install openmpi-bin libopenmpi-dev, then make)"
    exit 0
fi
make -s build/tools/weights_diff
export DLDL_COMM_TIMEOUT=60
mpi() { n=$1; shift; mpirun --allow-run-as-root --oversubscribe -x DLDL_COMM_TIMEOUT -np "$n" ./dldlrun "$@" --threads 1 --quiet; }

sed 's/schedule = cosine()/schedule = step(every = 1, gamma = 0.5)/' specs/ldl_mlp.dldl > "$work/mlp.dldl"
./dldlc "$work/mlp.dldl" -D file=ldl/SBU_3DFE.mat --ranks=2,4 -o "$work/mlp.plan"
./dldlrun "$work/mlp.plan" --train --epochs 2 --threads 1 --quiet --out "$work/m1" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
mpi 2 "$work/mlp.plan" --train --epochs 1 --out "$work/m" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
mpi 4 "$work/mlp.plan" --train --epochs 2 --out "$work/m" --resume > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
[ "$(cut -d, -f1 "$work/m/history.csv" | tr '\n' ' ')" = "epoch 1 2 " ] || { echo "history.csv rows are not epochs 1, 2"; exit 1; }
printf "ldl_mlp, 1 epoch on 2 ranks + --resume on 4 vs 2 epochs of 1 process: "
build/tools/weights_diff "$work/m1/checkpoint.safetensors" "$work/m/checkpoint.safetensors" 1e-5

# the age network on 128 faces (2 steps an epoch), 2 ranks; one is killed after the first epoch
mkdir -p "$work/data/utkface"
ln -s "$(cd "$DLDL_DATA" && pwd)/utkface/images" "$work/data/utkface/images"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; print; next }
    $c["split"] == "train" && tr < 128 { print; tr++ } $c["split"] == "test" && te < 32 { print; te++ }' \
    "$DLDL_DATA/utkface/labels.csv" > "$work/data/utkface/labels.csv"
./dldlc specs/age.dldl --ranks=2,4 -o "$work/age.plan"
# signal_rank1 SIGNAL: start 2 ranks for 3 epochs, send SIGNAL to rank 1 once epoch 1 is saved; $rc, $work/klog
signal_rank1() {
    rm -rf "$work/k"
    mpi 2 "$work/age.plan" --train --epochs 3 --data "$work/data" --out "$work/k" > "$work/klog" 2>&1 &
    job=$!
    i=0
    while [ ! -s "$work/k/history.csv" ] || [ "$(wc -l < "$work/k/history.csv")" -lt 2 ]; do
        i=$((i + 1)); [ $i -lt 600 ] || { echo "no epoch after 60 s"; kill "$job"; exit 1; }
        sleep 0.1
    done
    kids=$(ps -o pid= --ppid "$job") # the subshell's mpirun (or mpirun itself), then its children: the ranks
    for p in $kids $(for k in $kids; do ps -o pid= --ppid "$k"; done); do
        if tr '\0' '\n' < "/proc/$p/environ" 2>/dev/null | grep -qx OMPI_COMM_WORLD_RANK=1; then kill "-$1" "$p"; fi
    done
    rc=0; wait "$job" || rc=$?
}
signal_rank1 KILL
cat "$work/klog"
[ $rc -ne 0 ] || { echo "the job went on after rank 1 was killed"; exit 1; }
grep -q "rank 1" "$work/klog" || { echo "the message does not name rank 1"; exit 1; }
./dldlrun "$work/age.plan" --train --epochs 3 --data "$work/data" --out "$work/k" --resume --quiet > "$work/log" 2>&1 ||
    { cat "$work/log"; exit 1; }
[ "$(cut -d, -f1 "$work/k/history.csv" | tr '\n' ' ')" = "epoch 1 2 3 " ] || { cat "$work/k/history.csv"; exit 1; }
echo "age: rank 1 killed after epoch 1 stopped the job; --resume as one process trained epochs 2..3"

DLDL_COMM_TIMEOUT=2
t0=$(date +%s)
signal_rank1 STOP
cat "$work/klog"
[ $rc -ne 0 ] && grep -q "no answer from the other ranks within 2 s" "$work/klog" ||
    { echo "a hung rank did not stop the job with its message"; exit 1; }
echo "age: rank 1 stopped (SIGSTOP): the job ended after $(( $(date +%s) - t0 )) s with the timeout's message"
