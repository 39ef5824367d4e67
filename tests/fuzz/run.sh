#!/bin/sh
# tests/fuzz/run.sh - replay the regressions, then fuzz every harness for a
# bounded time, one after the other (make fuzz, make fuzz-ci).
#
#   sh tests/fuzz/run.sh FUZZ_DIR CORPUS_DIR SECONDS [HARNESS...]
#
# FUZZ_DIR holds the built harnesses (fuzz_NAME) and age.plan (make fuzz-build);
# HARNESS names are NAME of tests/fuzz/fuzz_NAME.c (default: every fuzz_*
# built in FUZZ_DIR).  For each harness:
#   1. every file of tests/fuzz/regressions/NAME/ runs once (must not crash);
#   2. CORPUS_DIR/NAME is seeded (see seed() below; seeds are added to what
#      the directory already holds, so make fuzz's corpus grows across runs);
#   3. libFuzzer runs for SECONDS (-max_total_time), with
#      -dict=tests/fuzz/fuzz_NAME.dict when that file exists, and $FUZZ_ARGS.
# Output of each run goes to FUZZ_DIR/logs/fuzz_NAME.log (its end is printed).
# A crash, leak, timeout or out-of-memory input is written under
# FUZZ_DIR/artifacts/NAME/ and named, with how to reproduce it and how to turn
# it into a regression input.  Exit status 1 when any harness failed.
set -u
cd "$(dirname "$0")/../.." || exit 2
[ $# -ge 3 ] || { echo "usage: sh tests/fuzz/run.sh FUZZ_DIR CORPUS_DIR SECONDS [HARNESS...]"; exit 2; }
fd=$1 corpus=$2 seconds=$3; shift 3
args=${FUZZ_ARGS:--timeout=2 -rss_limit_mb=2048 -print_final_stats=1}
names=$*
if [ -z "$names" ]; then
    for b in "$fd"/fuzz_*; do
        [ -x "$b" ] && names="$names ${b##*/fuzz_}"
    done
fi
[ -n "$names" ] || { echo "tests/fuzz/run.sh: no harness in $fd (make fuzz-build)"; exit 2; }
failed="" plans_made=""

# seed NAME DIR: the repository's inputs for harness NAME.  A new harness needs
# no case here: tests/fuzz/seeds/NAME/ (if any) is always copied.
seed() {
    mkdir -p "$2"
    if [ -d "tests/fuzz/seeds/$1" ]; then cp tests/fuzz/seeds/"$1"/* "$2"/; fi
    case "$1" in
        spec)
            for f in specs/*.dldl tests/errors/*.dldl tests/lower/errors/*.dldl tests/ops/*.dldl; do
                [ -e "$f" ] && cp "$f" "$2/$(echo "$f" | tr / _)"
            done ;;
        plan|plan_payload|plan_run)
            # a plan of every spec by today's ./dldlc (specs/age.dldl among them);
            # a payload is what follows the plan's 32-byte header
            if [ -z "$plans_made" ]; then
                rm -rf "$fd/seed-plans"; mkdir -p "$fd/seed-plans"
                for s in specs/*.dldl; do
                    ./dldlc "$s" -o "$fd/seed-plans/$(basename "$s" .dldl).plan" || echo "(no seed plan for $s)"
                done
                plans_made=1
            fi
            for p in "$fd"/seed-plans/*.plan; do
                [ -e "$p" ] || continue
                n=$(basename "$p" .plan)
                if [ "$1" = plan ]; then cp "$p" "$2/$n.plan"; else tail -c +33 "$p" > "$2/$n.payload"; fi
            done ;;
    esac
}

# report NAME: name the artifacts libFuzzer left for harness NAME.
report() {
    for a in "$fd/artifacts/$1"/*; do
        [ -e "$a" ] || continue
        echo "fuzz_$1: failing input $a"
        echo "    reproduce: $fd/fuzz_$1 $a"
        echo "    once fixed, keep it as a regression input (make fuzz and make fuzz-ci replay it):"
        echo "    cp $a tests/fuzz/regressions/$1/<what-it-is>"
    done
}

mkdir -p "$fd/logs"
for h in $names; do
    bin=$fd/fuzz_$h
    [ -x "$bin" ] || { echo "fuzz_$h: not built ($bin)"; failed="$failed $h"; continue; }
    reg=$(find "tests/fuzz/regressions/$h" -type f 2>/dev/null | sort)
    if [ -n "$reg" ]; then
        echo "== fuzz_$h: $(echo "$reg" | wc -l) regression inputs"
        # shellcheck disable=SC2086
        if ! "$bin" -timeout=10 $reg > "$fd/logs/fuzz_$h.replay.log" 2>&1; then
            tail -40 "$fd/logs/fuzz_$h.replay.log"
            echo "fuzz_$h: a regression input fails again (log: $fd/logs/fuzz_$h.replay.log)"
            failed="$failed $h"
            continue
        fi
    fi
    seed "$h" "$corpus/$h"
    dict=; [ -e "tests/fuzz/fuzz_$h.dict" ] && dict=-dict=tests/fuzz/fuzz_$h.dict
    rm -rf "$fd/artifacts/$h"; mkdir -p "$fd/artifacts/$h"
    echo "== fuzz_$h: $seconds s on $corpus/$h ($(ls "$corpus/$h" | wc -l) inputs)"
    # shellcheck disable=SC2086
    "$bin" $dict $args -max_total_time="$seconds" -artifact_prefix="$fd/artifacts/$h/" \
        "$corpus/$h" > "$fd/logs/fuzz_$h.log" 2>&1
    rc=$?
    if [ $rc -ne 0 ] || [ -n "$(ls -A "$fd/artifacts/$h")" ]; then
        tail -60 "$fd/logs/fuzz_$h.log"
        echo "fuzz_$h: FAILED (exit $rc; log: $fd/logs/fuzz_$h.log)"
        report "$h"
        failed="$failed $h"
    else
        grep -E '^#[0-9]+.*DONE|^stat::slowest_unit_time_sec' "$fd/logs/fuzz_$h.log" | tr -s '\n\t ' '   '; echo
    fi
done
if [ -n "$failed" ]; then echo "fuzz: failed:$failed"; exit 1; fi
echo "fuzz: every harness ran clean:" $names
