# Data-parallel training over MPI (docs/parallel.md): the same spec, seed and
# global batch trained by 1, 2 and 4 processes under mpirun give the same
# weights within the tolerance the docs state.
#  - specs/ldl_mlp.dldl on SBU_3DFE (no batch norm), 2 epochs of 70 steps:
#    weights within 1e-5 of each tensor's largest value (gradient buckets
#    all-reduced while backward runs);
#  - specs/age.dldl (8 synchronised batch norms) on 64 UTKFace faces, one
#    step of the global batch 64 with the learning rate 0: the checkpoint
#    (the momentum is the gradient) within 1e-2, and the running statistics
#    (the synchronised forward pass, continuous in its inputs) within 1e-5.
#    The gradients' 1e-2: ReLU's mask, max pool's arg-max and the L1's sign
#    can send a gradient elsewhere after a rounding difference
#    (docs/parallel.md); the exact maths is test_ranks'.
# Skipped, saying so, when mpirun or the MPI plugin is missing.
. "$(dirname "$0")/lib.sh"
if ! command -v mpirun > /dev/null || [ ! -e build/dldl_mpi.so ]; then
    echo "SKIPPED: mpirun or build/dldl_mpi.so missing (install openmpi-bin libopenmpi-dev, then make)"
    exit 0
fi
make -s build/tools/weights_diff
mpi() { n=$1; shift; mpirun --allow-run-as-root --oversubscribe -np "$n" ./dldlrun "$@" --threads 1 --quiet; }

./dldlc specs/ldl_mlp.dldl -D file=ldl/SBU_3DFE.mat --ranks=2,4 -o "$work/mlp.plan"
./dldlrun "$work/mlp.plan" --train --epochs 2 --threads 1 --quiet --out "$work/m1" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
for n in 2 4; do
    mpi $n "$work/mlp.plan" --train --epochs 2 --out "$work/m$n" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
    [ -e "$work/m$n/history.csv" ] && [ "$(wc -l < "$work/m$n/history.csv")" -eq 3 ] || { echo "rank 0 wrote no history"; exit 1; }
    printf "ldl_mlp, %d ranks vs 1: " $n
    build/tools/weights_diff "$work/m1/weights.safetensors" "$work/m$n/weights.safetensors" 1e-5
done

# 64 training faces: one step of the global batch
mkdir -p "$work/data/utkface"
ln -s "$(cd "$DLDL_DATA" && pwd)/utkface/images" "$work/data/utkface/images"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; print; next }
    $c["split"] == "train" && tr < 64 { print; tr++ } $c["split"] == "test" && te < 32 { print; te++ }' \
    "$DLDL_DATA/utkface/labels.csv" > "$work/data/utkface/labels.csv"
awk '/^optimizer = sgd/ { print "optimizer = sgd(lr = 0, momentum = 0.9, weight_decay = 5e-4)"; skip = 1; next }
     skip && /schedule =/ { skip = 0; next } { print }' specs/age.dldl > "$work/age.dldl"
./dldlc "$work/age.dldl" --ranks=2,4 -o "$work/age.plan"
./dldlrun "$work/age.plan" --train --epochs 1 --data "$work/data" --threads 1 --quiet --out "$work/a1" > "$work/log" 2>&1 ||
    { cat "$work/log"; exit 1; }
for n in 2 4; do
    mpi $n "$work/age.plan" --train --epochs 1 --data "$work/data" --out "$work/a$n" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
    printf "age (synchronised batch norm), one step, %d ranks vs 1: " $n
    build/tools/weights_diff "$work/a1/checkpoint.safetensors" "$work/a$n/checkpoint.safetensors" 1e-2
    printf "  running statistics: "
    WEIGHTS_DIFF_ONLY=running build/tools/weights_diff "$work/a1/checkpoint.safetensors" "$work/a$n/checkpoint.safetensors" 1e-5
done
