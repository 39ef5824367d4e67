# The run folder is written safely (issue 13), on SJAFFE's small MLP (0.02 s an
# epoch; about 10 s in all): a second dldlrun on a folder in use is refused at
# once naming the first one's pid (--train, and --cv's folder held by flock(1));
# a folder holding a run is refused without --resume or --overwrite;
# --overwrite removes only dldlrun's files (after reading --weights from the
# folder); --resume drops the history rows a kill left past the checkpoint
# (a fake row and a row cut short, then a real kill -9), so the rows are epochs
# 1..N once each; stale NAME.tmp.PID of a dead pid are removed, a live one's
# kept, none of ours left; a checkpoint whose step is near INT64_MAX is refused.
. "$(dirname "$0")/lib.sh"
fail() { echo "run_folder: $*"; exit 1; }
expect() { # expect RC PATTERN CMD...: exit status RC and PATTERN in its stderr
    rc=$1 pat=$2; shift 2
    set +e; "$@" > "$work/out" 2> "$work/err"; got=$?; set -e
    [ "$got" -eq "$rc" ] && grep -qF -- "$pat" "$work/err" || {
        echo "'$*': exit $got, expected $rc with '$pat'; stderr:"; cat "$work/err"; exit 1; }
    grep -F -- "$pat" "$work/err"
}
# rows DIR N: DIR/history.csv holds the header and the rows of epochs 1..N, once each, in order
rows() {
    awk -F, -v n="$2" 'NR == 1 { if ($1 != "epoch") bad = 1; next } $1 != NR - 1 { bad = 1 }
        END { exit bad || NR - 1 != n }' "$1/history.csv" || { cat "$1/history.csv"; fail "$1: history rows are not epochs 1..$2"; }
}
# ckpt_meta FILE KEY: a __metadata__ value of a safetensors file
ckpt_meta() { n=$(od -An -tu8 -N8 "$1" | tr -d ' '); head -c $((8 + n)) "$1" | tail -c "$n" | sed -n "s/.*\"$2\":\"\([^\"]*\)\".*/\1/p"; }
# set_meta FILE KEY VALUE: rewrite FILE with __metadata__ KEY = VALUE (the header re-padded, its size rewritten)
set_meta() {
    n=$(od -An -tu8 -N8 "$1" | tr -d ' ')
    head -c $((8 + n)) "$1" | tail -c "$n" | sed -e "s/\"$2\":\"[^\"]*\"/\"$2\":\"$3\"/" -e 's/ *$//' > "$work/hdr"
    while [ $(($(wc -c < "$work/hdr") % 8)) -ne 0 ]; do printf ' ' >> "$work/hdr"; done
    m=$(wc -c < "$work/hdr") i=0
    : > "$work/new"
    while [ $i -lt 8 ]; do printf "\\$(printf %03o $(((m >> (8 * i)) & 255)))" >> "$work/new"; i=$((i + 1)); done
    cat "$work/hdr" >> "$work/new"
    tail -c +$((9 + n)) "$1" >> "$work/new"
    mv "$work/new" "$1"
}

./dldlc specs/ldl_mlp.dldl -o "$work/sj.plan"
./dldlc specs/ldl_mlp.dldl -D folds=2 -o "$work/cv.plan"
P=$work/sj.plan R=$work/r
run() { ./dldlrun "$P" --quiet "$@" > "$work/log" 2>&1 || { cat "$work/log"; fail "'dldlrun $*' failed"; }; }

# a second run on a folder in use: refused at once, naming the first's pid
./dldlrun "$P" --train --quiet --epochs 100000 --out "$work/busy" > "$work/busy.log" 2>&1 &
bg=$!
i=0; until [ -s "$work/busy/checkpoint.safetensors" ] || [ $i -ge 200 ]; do sleep 0.1; i=$((i + 1)); done
expect 1 "$work/busy is in use by another dldlrun (pid $bg)" ./dldlrun "$P" --train --epochs 1 --out "$work/busy"
expect 1 "$work/busy is in use by another dldlrun (pid $bg)" ./dldlrun "$P" --train --resume --out "$work/busy"
# ... then a kill -9 between any two instructions: --resume continues with epochs 1..N once each
sleep 0.3
kill -9 $bg; wait $bg 2>/dev/null || true
k=$(ckpt_meta "$work/busy/checkpoint.safetensors" epoch)
[ -n "$k" ] && [ "$k" -ge 1 ] || fail "no epoch in the killed run's checkpoint"
run --train --epochs $((k + 2)) --out "$work/busy" --resume
rows "$work/busy" $((k + 2))
echo "killed after epoch $k: --resume to $((k + 2)) epochs gives rows 1..$((k + 2)) once each"

# a finished run: refused without --resume or --overwrite
run --train --epochs 2 --out "$R"
rows "$R" 2
expect 1 "$R already holds a run (checkpoint.safetensors): --resume continues it, --overwrite starts it over" \
    ./dldlrun "$P" --train --epochs 2 --out "$R"
expect 2 "--resume and --overwrite cannot be combined" ./dldlrun "$P" --train --resume --overwrite --out "$R"
run --train --epochs 2 --out "$R" --resume
grep -q "nothing to do: $R holds 2 epochs of 2" "$work/log" || { cat "$work/log"; fail "--resume of a finished run"; }

# --resume after a kill between the history row and the checkpoint (a fake row 3), and within a row (row 4 cut short)
awk -F, 'NR == 3 { $1 = 3; print }' OFS=, "$R/history.csv" >> "$R/history.csv"
printf '4,0.07' >> "$R/history.csv"
./dldlrun "$P" --train --epochs 4 --out "$R" --resume > "$work/log" 2>&1 || { cat "$work/log"; fail "resume failed"; }
grep -F "history.csv: dropped 2 rows not covered by the checkpoint (after epoch 2)" "$work/log" || fail "no note of the dropped rows"
rows "$R" 4

# --overwrite: only dldlrun's files go, after --weights (one of them) is read
echo keep > "$R/notes.txt"
cp "$R/weights.safetensors" "$work/w4.safetensors"
run --train --epochs 1 --out "$R" --overwrite --weights "$R/weights.safetensors"
rows "$R" 1
[ "$(cat "$R/notes.txt")" = keep ] || fail "--overwrite touched notes.txt"
[ "$(ckpt_meta "$R/checkpoint.safetensors" epoch)" = 1 ] || fail "--overwrite kept the old checkpoint"

# stale NAME.tmp.PID: a dead pid's removed at the start of a run, a live pid's and other names kept
sleep 30 & live=$!
sh -c 'exit 0' & dead=$!; wait $dead
touch "$R/checkpoint.safetensors.tmp.$dead" "$R/history.csv.tmp.$dead" "$R/weights.safetensors.tmp.$live" \
      "$R/notes.txt.tmp.$dead"
run --train --epochs 2 --out "$R" --resume
kill $live; wait $live 2>/dev/null || true
[ ! -e "$R/checkpoint.safetensors.tmp.$dead" ] && [ ! -e "$R/history.csv.tmp.$dead" ] || fail "a dead pid's temporary was kept"
[ -e "$R/weights.safetensors.tmp.$live" ] && [ -e "$R/notes.txt.tmp.$dead" ] || fail "a file that is not stale was removed"
rm "$R/weights.safetensors.tmp.$live" "$R/notes.txt.tmp.$dead"
rows "$R" 2

# a checkpoint from someone else with a step near INT64_MAX (or inconsistent with its epochs) is refused
cp -r "$R" "$work/huge"
set_meta "$work/huge/checkpoint.safetensors" step 9223372036854775807
[ "$(ckpt_meta "$work/huge/checkpoint.safetensors" step)" = 9223372036854775807 ] || fail "set_meta failed"
expect 1 "$work/huge/checkpoint.safetensors: checkpoint metadata 'step' is '9223372036854775807', not a step count in 0..9007199254740992" \
    ./dldlrun "$P" --train --epochs 3 --out "$work/huge" --resume
set_meta "$work/huge/checkpoint.safetensors" step 11
expect 1 "$work/huge/checkpoint.safetensors: the checkpoint is at step 11 after 2 epochs, but an epoch of this data is 5 batches (10 steps)" \
    ./dldlrun "$P" --train --epochs 3 --out "$work/huge" --resume
set_meta "$work/huge/checkpoint.safetensors" step 10
run --train --epochs 3 --out "$work/huge" --resume   # the rewrite itself was sound
rows "$work/huge" 3

# --cv: its folder is locked too (held here by flock(1)), and a finished cross-validation is refused
P=$work/cv.plan
mkdir -p "$work/cv"
flock -n "$work/cv/.dldlrun.lock" sh -c 'touch "$1"; while [ ! -e "$2" ]; do sleep 0.1; done' sh "$work/held" "$work/release" &
fl=$!
i=0; until [ -e "$work/held" ] || [ $i -ge 100 ]; do sleep 0.1; i=$((i + 1)); done
expect 1 "$work/cv is in use by another dldlrun" ./dldlrun "$work/cv.plan" --cv --epochs 1 --out "$work/cv"
touch "$work/release"; wait $fl
run --cv --epochs 1 --out "$work/cv"
expect 1 "$work/cv already holds a run (cv.csv): --resume continues it, --overwrite starts it over" \
    ./dldlrun "$work/cv.plan" --cv --epochs 1 --out "$work/cv"
rm "$work/cv/cv.csv" "$work/cv/cv.json" "$work/cv/fold2/checkpoint.safetensors"
expect 1 "$work/cv already holds a run (fold1/checkpoint.safetensors)" ./dldlrun "$work/cv.plan" --cv --epochs 1 --out "$work/cv"
run --cv --epochs 1 --out "$work/cv" --resume   # fold1 done before, fold2 starts over
grep -q "^fold1: 1 epochs (trained before)" "$work/log" && [ -s "$work/cv/cv.csv" ] || { cat "$work/log"; fail "--cv --resume"; }
rows "$work/cv/fold2" 1
run --cv --epochs 1 --out "$work/cv" --overwrite
rows "$work/cv/fold1" 1

left=$(find "$work" -name '*.tmp.*')
[ -z "$left" ] || fail "temporaries left: $left"
echo "run folder: busy folder refused, finished run refused, --overwrite, --resume after kills, stale tmp, huge step"
