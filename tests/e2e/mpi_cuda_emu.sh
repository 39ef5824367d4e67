# Data-parallel training on the CUDA backend's emulated device (a test double
# on the CPU, not a GPU; docs/parallel.md, docs/cuda.md): under mpirun with
# --device cuda-emu the train@2 program's collective steps go through the
# device's collective entries (coll_init, coll_allreduce: on a GPU NCCL, here
# the emulation summing through the MPI communicator when its queue reaches
# the all-reduce), so this checks the backend's collective host logic:
#  - specs/ldl_mlp.dldl on SBU_3DFE, one epoch, 2 ranks on the emulated device
#    against one CPU process: weights within 1e-5 of each tensor's largest
#    value (mpi_train.sh's tolerance; gradient buckets summed in place);
#  - specs/age.dldl (8 synchronised batch norms, their sums all-reduced out of
#    place), one step of the global batch 64 with the learning rate 0, 2 ranks
#    against one process on the same emulated device: the checkpoint within
#    1e-2 and the running statistics within 1e-5 (mpi_train.sh's tolerances).
# NCCL itself is not exercised here (no GPU).  Skipped, saying so, when
# mpirun or the MPI plugin is missing.
. "$(dirname "$0")/lib.sh"
if ! command -v mpirun > /dev/null || [ ! -e build/dldl_mpi.so ]; then
    echo "SKIPPED: mpirun or build/dldl_mpi.so missing (install openmpi-bin libopenmpi-dev, then make)"
    exit 0
fi
make -s build/tools/weights_diff
emu2() { mpirun --allow-run-as-root --oversubscribe -np 2 ./dldlrun "$@" --device cuda-emu --threads 1 --quiet; }
must() { "$@" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }; }

./dldlc specs/ldl_mlp.dldl -D file=ldl/SBU_3DFE.mat --ranks=2 -o "$work/mlp.plan"
must ./dldlrun "$work/mlp.plan" --train --epochs 1 --threads 1 --quiet --out "$work/m1"
must emu2 "$work/mlp.plan" --train --epochs 1 --profile --out "$work/m2"
# --profile's table: the train@2 program's all-reduce steps ran on the emulated device
grep -A 40 "program 'train@2' on emulated CUDA device" "$work/log" | grep -q "all-reduce start" ||
    { echo "no all-reduce step of train@2 ran on the emulated CUDA device:"; cat "$work/log"; exit 1; }
printf "ldl_mlp, 2 ranks on the emulated CUDA device vs 1 CPU process: "
build/tools/weights_diff "$work/m1/weights.safetensors" "$work/m2/weights.safetensors" 1e-5

mkdir -p "$work/data/utkface"
ln -s "$(cd "$DLDL_DATA" && pwd)/utkface/images" "$work/data/utkface/images"
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; print; next }
    $c["split"] == "train" && tr < 64 { print; tr++ } $c["split"] == "test" && te < 8 { print; te++ }' \
    "$DLDL_DATA/utkface/labels.csv" > "$work/data/utkface/labels.csv"
awk '/^optimizer = sgd/ { print "optimizer = sgd(lr = 0, momentum = 0.9, weight_decay = 5e-4)"; skip = 1; next }
     skip && /schedule =/ { skip = 0; next } { print }' specs/age.dldl > "$work/age.dldl"
./dldlc "$work/age.dldl" --ranks=2 -o "$work/age.plan"
must ./dldlrun "$work/age.plan" --train --epochs 1 --data "$work/data" --device cuda-emu --threads 1 --quiet --out "$work/a1"
must emu2 "$work/age.plan" --train --epochs 1 --data "$work/data" --out "$work/a2"
printf "age (synchronised batch norm), one step, 2 ranks vs 1 on the emulated CUDA device: "
build/tools/weights_diff "$work/a1/checkpoint.safetensors" "$work/a2/checkpoint.safetensors" 1e-2
printf "  running statistics: "
WEIGHTS_DIFF_ONLY=running build/tools/weights_diff "$work/a1/checkpoint.safetensors" "$work/a2/checkpoint.safetensors" 1e-5
