# The CUDA backend through dldlrun on its emulated device (a test double on
# the CPU, not a GPU): specs/ldl_mlp.dldl on ldl/SJAFFE.mat trained for 3
# epochs with --device cuda-emu gives the CPU's history (loss and the six
# measures per epoch) within 1e-4 relative; a CPU run's checkpoint after 2
# epochs resumed to 3 on the emulated device gives the CPU's resumed history
# (the checkpoint sent to the device), and --eval of the emulated run's saved
# weights (read back from the device) prints the CPU's metrics; --profile
# times the steps there.
# --device cuda without a usable GPU is an error naming why; --device auto
# falls back to the CPU saying why; an unknown device is a usage error.
. "$(dirname "$0")/lib.sh"
./dldlc specs/ldl_mlp.dldl -o "$work/sj.plan"
run() { ./dldlrun "$work/sj.plan" --train --quiet --threads 1 "$@" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }; }
run --epochs 3 --device cpu --out "$work/cpu"
run --epochs 3 --device cuda-emu --out "$work/emu"
# same_history A B: every number of every row of A/history.csv and B's but the
# seconds and images/s (columns 3, 4) within 1e-4 relative
same_history() {
    paste -d, "$1/history.csv" "$2/history.csv" | awk -F, 'NR > 1 {
        n = NF / 2
        for (i = 1; i <= n; i++) {
            if (i == 3 || i == 4) continue
            a = $i; b = $(i + n); d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b; if (m < 1) m = 1
            if (d / m > 1e-4) { printf "epoch %d column %d: %s, %s\n", NR - 1, i, a, b; bad = 1 }
        }
    } END { exit bad }'
}
same_history "$work/cpu" "$work/emu" || exit 1
echo "3 epochs: the emulated CUDA device's history matches the CPU's within 1e-4"
run --epochs 2 --device cpu --out "$work/res_cpu"
cp -r "$work/res_cpu" "$work/res_emu"
run --device cpu --out "$work/res_cpu" --resume --epochs 3
run --device cuda-emu --out "$work/res_emu" --resume --epochs 3
same_history "$work/res_cpu" "$work/res_emu" || exit 1
echo "a CPU checkpoint resumed on the emulated device: the CPU's resumed history"
./dldlrun "$work/sj.plan" --eval --device cuda-emu --out "$work/emu" --profile > "$work/eval" 2> "$work/prof" ||
    { cat "$work/eval" "$work/prof"; exit 1; }
grep -q "profile of program 'eval' on emulated CUDA device" "$work/prof" || { cat "$work/prof"; exit 1; }
./dldlrun "$work/sj.plan" --eval --device cpu --out "$work/emu" > "$work/eval_cpu" 2> /dev/null
cmp "$work/eval" "$work/eval_cpu" || { echo "--eval of the same weights differs between the devices"; exit 1; }
echo "--eval on the emulated device: $(head -1 "$work/eval")"
set +e
./dldlrun "$work/sj.plan" --train --device cuda --out "$work/gpu" > "$work/log" 2>&1; rc=$?
set -e
if [ $rc -ne 0 ]; then
    grep -E "NVIDIA driver|cuInit|cuDeviceGetCount|compute capability|not found" "$work/log" ||
        { cat "$work/log"; echo "--device cuda failed without naming why"; exit 1; }
    ./dldlrun "$work/sj.plan" --train --epochs 1 --device auto --out "$work/auto" > "$work/log" 2>&1 ||
        { cat "$work/log"; exit 1; }
    grep "running on the CPU" "$work/log" || { echo "--device auto did not say why it fell back"; exit 1; }
fi
set +e
./dldlrun "$work/sj.plan" --train --device tpu > /dev/null 2> "$work/log"; rc=$?
set -e
[ $rc -eq 2 ] && grep -q "unknown device 'tpu' (cpu, cuda, cuda-emu or auto)" "$work/log" || { cat "$work/log"; exit 1; }
