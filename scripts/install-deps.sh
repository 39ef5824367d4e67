#!/usr/bin/env bash
# Install the Debian 12 packages dldl builds with (apt-get; sudo when not root).
# Quick when everything is there already: only missing packages are installed.
# The CUDA toolkit (NVRTC, for --emit=ptx and the tests) comes with the machine image.
# So does NCCL (libnccl.so.2 and nccl.h, in the toolkit; elsewhere NVIDIA's libnccl2 and
# libnccl-dev, not in Debian's archive): --device cuda under mpirun opens it at run time.
set -euo pipefail
# clang, libclang-rt-14-dev (libclang_rt.fuzzer, ASan, UBSan for clang) and llvm
# (llvm-symbolizer, for readable stack traces): the fuzz harnesses (make fuzz,
# make fuzz-ci).  All from Debian 12's main archive.
deps=(build-essential g++ flex bison libopenblas-dev libdnnl-dev libstb-dev
      libturbojpeg0-dev libxxhash-dev libcmocka-dev libjansson-dev libmatio-dev
      libexpat1-dev libpng-dev clang libclang-rt-14-dev llvm
      openmpi-bin libopenmpi-dev)
missing=()
for p in "${deps[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq "${missing[@]}"
