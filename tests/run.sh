#!/bin/sh
# tests/run.sh - the whole test suite (`make test`); `make golden` rewrites goldens.
#
#   sh tests/run.sh [SECTION...]     sections: golden unit ptx e2e (default: all)
#   UPDATE=1 sh tests/run.sh golden  rewrite every golden file from the current build
#
# Golden files pin each stage's text; the expected file's extension names the stage
# (cproc's runtests): tests/parse/X.ast pins `dldlc --emit=ast` of specs/X.dldl,
# tests/errors/X.err and tests/lower/errors/X.err pin the diagnostics of X.dldl,
# tests/golden/X.STAGE pins `dldlc specs/X.dldl --emit=STAGE`, tests/ops/X.STAGE pins
# `dldlc tests/ops/X.dldl --emit=STAGE` (small specs, one op family each).
# Ends with the line "N passed, N failed".
#
#   DLDL_BIN_DIR=DIR   where dldlc is (default: the repository root)
#   DLDL_TEST_DIR=DIR  where the unit-test binaries are (default: build/tests)
# `make test-asan` points both at build-asan/ (the sanitizer build).
set -u
cd "$(dirname "$0")/.." || exit 2
dldlc=${DLDL_BIN_DIR:-.}/dldlc
test_dir=${DLDL_TEST_DIR:-build/tests}
pass=0 fail=0 failed=""
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); failed="$failed
  $1"; echo "FAIL: $1"; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
sections=${*:-golden unit ptx e2e}

# check NAME EXPECTED_FILE ACTUAL_FILE
check() {
    if [ "${UPDATE:-0}" = 1 ]; then
        cp "$3" "$2"; ok; return
    fi
    if diff -u "$2" "$3" > "$tmp/diff"; then ok; else
        head -40 "$tmp/diff"; bad "$1"
    fi
}

run_golden() {
    [ -x "$dldlc" ] || { bad "golden: no $dldlc (make first)"; return; }
    for exp in tests/parse/*.ast; do
        [ -e "$exp" ] || continue
        name=$(basename "$exp" .ast)
        spec=specs/$name.dldl; [ -e "$spec" ] || spec=tests/parse/$name.dldl
        "$dldlc" "$spec" --emit=ast > "$tmp/out" 2>&1
        check "ast $name" "$exp" "$tmp/out"
    done
    for exp in tests/errors/*.err tests/lower/errors/*.err; do
        [ -e "$exp" ] || continue
        spec=${exp%.err}.dldl
        "$dldlc" "$spec" --emit=graph > /dev/null 2> "$tmp/out"
        rc=$?
        if [ $rc -ne 1 ] && [ "${UPDATE:-0}" != 1 ]; then bad "errors $spec: exit $rc, expected 1"; continue; fi
        check "errors $spec" "$exp" "$tmp/out"
    done
    for exp in tests/golden/*.*; do
        [ -e "$exp" ] || continue
        case "$exp" in *.sh|*README*) continue;; esac
        base=$(basename "$exp"); name=${base%%.*}; stage=${base#*.}
        "$dldlc" "specs/$name.dldl" --emit="$stage" > "$tmp/out" 2>&1
        check "golden $base" "$exp" "$tmp/out"
    done
    # small per-op specs: tests/ops/NAME.STAGE pins `dldlc tests/ops/NAME.dldl --emit=STAGE`
    for exp in tests/ops/*.*; do
        [ -e "$exp" ] || continue
        case "$exp" in *.dldl|*README*) continue;; esac
        base=$(basename "$exp"); name=${base%%.*}; stage=${base#*.}; stage=${stage%.txt} # NAME.plan.txt: *.plan is ignored by git
        if ! "$dldlc" "tests/ops/$name.dldl" --emit="$stage" > "$tmp/out" 2>&1; then
            tail -5 "$tmp/out"; bad "ops $base: dldlc failed (nothing pinned)"; continue
        fi
        check "ops $base" "$exp" "$tmp/out"
    done
}

# Inputs the fuzzers once crashed on (tests/fuzz/regressions/spec): dldlc must
# now end with a diagnosis (exit 0 or 1), never a crash or an internal error.
run_regressions() {
    for f in tests/fuzz/regressions/spec/*; do
        [ -e "$f" ] || continue
        "$dldlc" "$f" --emit=plan > /dev/null 2> "$tmp/reg.err"
        rc=$?
        if [ $rc -le 1 ] && ! grep -q 'error: internal' "$tmp/reg.err"; then ok; else
            tail -5 "$tmp/reg.err"; bad "regression $f: exit $rc"
        fi
    done
}

run_unit() {
    n=0
    for t in "$test_dir"/test_*; do
        [ -x "$t" ] || continue
        n=$((n + 1))
        if "$t" > "$tmp/unit.log" 2>&1; then ok; else
            tail -30 "$tmp/unit.log"; bad "unit $(basename "$t")"
        fi
    done
    [ $n -gt 0 ] || bad "unit: no test binaries in $test_dir (make test-bins first)"
}

# Every CUDA kernel of every spec compiles with NVRTC to PTX and with ptxas for sm_80
# and sm_90 (no GPU needed), without a register spill (scripts/ptxas_report.sh).
run_ptx() {
    for spec in specs/*.dldl tests/ops/*.dldl; do
        [ -e "$spec" ] || continue
        DLDLC="$dldlc" sh scripts/ptxas_report.sh "$spec" sm_80 sm_90 > "$tmp/ptx" 2> "$tmp/ptx.err"
        rc=$?
        if [ $rc -eq 0 ] && grep -q 'regs' "$tmp/ptx"; then ok; else
            grep SPILL "$tmp/ptx"; tail -20 "$tmp/ptx.err"; bad "nvrtc/ptxas $spec (exit $rc)"
        fi
    done
    # the spill check itself: 24 registers force the Adam kernel to spill, which must fail
    PTXAS_FLAGS=--maxrregcount=24 DLDLC="$dldlc" sh scripts/ptxas_report.sh tests/ops/adam.dldl sm_80 \
        > "$tmp/ptx" 2> "$tmp/ptx.err"
    if [ $? -eq 1 ] && grep -q SPILL "$tmp/ptx"; then ok; else bad "ptxas_report.sh did not report forced spills"; fi
}

run_e2e() {
    for t in tests/e2e/*.sh; do
        [ -e "$t" ] || continue
        [ "$(basename "$t")" = lib.sh ] && continue
        if sh "$t" > "$tmp/e2e.log" 2>&1; then ok; tail -3 "$tmp/e2e.log"; else
            tail -30 "$tmp/e2e.log"; bad "e2e $(basename "$t")"
        fi
    done
}

for s in $sections; do
    echo "== $s"
    case "$s" in
        golden) run_golden; run_regressions ;;
        unit)   run_unit ;;
        ptx)    run_ptx ;;
        e2e)    run_e2e ;;
        *) echo "unknown section $s"; exit 2 ;;
    esac
done
[ -z "$failed" ] || printf 'failed:%s\n' "$failed"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
