#!/bin/sh
# scripts/ptxas_report.sh SPEC ARCH... - per kernel of SPEC's CUDA module: registers,
# shared memory, stack frame (local memory) and spills, as ptxas -v reports them for the
# PTX that NVRTC makes (dldlc --emit=ptx --arch=compute_NN, then ptxas -arch=sm_NN).
#
#   sh scripts/ptxas_report.sh specs/age.dldl sm_80 sm_90
#
# Prints one line per kernel and architecture; exits 1 when any kernel spills registers,
# 2 when dldlc (NVRTC) or ptxas fails.  Works without a GPU.
#   DLDLC=PATH  dldlc to use (default ./dldlc)    PTXAS=PATH  (default: ptxas on PATH, else
#   /usr/local/cuda/bin/ptxas)    PTXAS_FLAGS=...  more ptxas options (tests/run.sh forces
#   spills with --maxrregcount to check that this script does report them)
set -u
[ $# -ge 2 ] || { echo "usage: $0 SPEC ARCH..." >&2; exit 2; }
spec=$1; shift
dldlc=${DLDLC:-./dldlc}
ptxas=${PTXAS:-$(command -v ptxas || echo /usr/local/cuda/bin/ptxas)}
[ -x "$ptxas" ] || { echo "$0: no ptxas (set PTXAS or install the CUDA toolkit)" >&2; exit 2; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
spills=0
for arch in "$@"; do
    num=${arch#sm_}
    if ! "$dldlc" "$spec" --emit=ptx --arch="compute_$num" > "$tmp/m.ptx" 2> "$tmp/err"; then
        tail -5 "$tmp/err" >&2; echo "$0: NVRTC failed for $spec compute_$num" >&2; exit 2
    fi
    # shellcheck disable=SC2086 # PTXAS_FLAGS is a list of options
    if ! "$ptxas" -v -arch="$arch" ${PTXAS_FLAGS:-} "$tmp/m.ptx" -o "$tmp/m.cubin" 2> "$tmp/v"; then
        tail -5 "$tmp/v" >&2; echo "$0: ptxas failed for $spec $arch" >&2; exit 2
    fi
    # ptxas -v: "Compiling entry function 'K' for 'sm_80'", then "N bytes stack frame,
    # N bytes spill stores, N bytes spill loads", then "Used N registers, ... N bytes smem"
    awk -v spec="$spec" -v arch="$arch" '
        /Compiling entry function/ { split($0, q, "\047"); k = q[2] }
        /bytes stack frame/ { st = $1; ss = $5; sl = $9 }
        /Used [0-9]+ registers/ {
            regs = $0; sub(/.*Used /, "", regs); sub(/ registers.*/, "", regs)
            smem = 0; if (match($0, /[0-9]+ bytes smem/)) { smem = substr($0, RSTART, RLENGTH); sub(/ .*/, "", smem) }
            printf "%-6s %-56s regs %3d  smem %6d  stack %5d  spill st %4d ld %4d%s\n", arch, k, regs, smem, st, ss, sl,
                   (ss + sl > 0) ? "  SPILL" : ""
            if (ss + sl > 0) bad = 1
        }
        END { exit bad }' "$tmp/v" || spills=1
done
[ $spills -eq 0 ] || { echo "$0: $spec: register spills (lines marked SPILL)" >&2; exit 1; }
