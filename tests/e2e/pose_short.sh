# Three epochs of specs/pose.dldl on Pointing'04 fold 1: the loss falls and the test
# MAE per axis beats the trivial predictor (always the most frequent bin, pitch 0 and
# yaw 0: MAE 31.29 and 47.42 degrees on fold 1's test split, computed here).
. "$(dirname "$0")/lib.sh"
./dldlc specs/pose.dldl -o "$work/pose.plan"
./dldlrun "$work/pose.plan" --train --epochs 3 --out "$work/run" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
cat "$work/log"
trivial() { # column of labels.csv -> MAE of predicting 0 on fold1's test split
    awk -F, -v c="$1" 'FNR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
        FILENAME ~ /folds/ { split_of[$col["file"]] = $col["fold1"]; next }
        split_of[$col["file"]] == "test" { v = $col[c]; e += (v < 0 ? -v : v); n++ }
        END { printf "%.2f", e / n }' "$DLDL_DATA/pointing04/folds.csv" "$DLDL_DATA/pointing04/labels.csv"; }
tp=$(trivial tilt_pitch_deg); ty=$(trivial pan_yaw_deg)
l0=$(first_loss "$work/log"); l1=$(hist "$work/run" train_loss)
mp=$(hist "$work/run" mae_pitch); my=$(hist "$work/run" mae_yaw)
echo "pose: loss $l0 -> $l1, test MAE pitch $mp yaw $my degrees (trivial: $tp, $ty)"
[ -n "$l0" ] && [ -n "$l1" ] && [ -n "$mp" ] && [ -n "$my" ] || { echo "could not read the figures from the log"; exit 1; }
lt "$l1" "$l0" || { echo "the loss did not fall"; exit 1; }
lt "$mp" "$tp" || { echo "pitch MAE does not beat the trivial predictor"; exit 1; }
lt "$my" "$ty" || { echo "yaw MAE does not beat the trivial predictor"; exit 1; }
