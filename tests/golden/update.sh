#!/bin/sh
# tests/golden/update.sh - regenerate the back end's per-stage goldens:
# tests/golden/<spec>.<stage> = `./dldlc specs/<spec>.dldl --emit=<stage>`
# for the specs age and pose and the stages graph grad fused mem kir c cuda
# (not ptx: its text depends on the NVRTC version).  Run from anywhere after
# `make dldlc`; review the result with git diff.  tests/run.sh checks them.
set -eu
cd "$(dirname "$0")/../.."
[ -x ./dldlc ] || { echo "update.sh: build ./dldlc first (make dldlc)" >&2; exit 2; }
for spec in age pose; do
    for stage in graph grad fused mem kir c cuda; do
        out=tests/golden/$spec.$stage
        if ! ./dldlc "specs/$spec.dldl" --emit="$stage" > "$out.tmp" 2>&1; then
            echo "update.sh: dldlc specs/$spec.dldl --emit=$stage failed:" >&2
            tail -5 "$out.tmp" >&2
            rm -f "$out.tmp"
            exit 1
        fi
        mv "$out.tmp" "$out"
        echo "wrote $out"
    done
done
