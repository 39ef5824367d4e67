# One epoch of specs/age.dldl on the real UTKFace split: the loss falls and the test
# MAE beats the trivial predictor (the mean training age), computed here from labels.csv.
. "$(dirname "$0")/lib.sh"
./dldlc specs/age.dldl -o "$work/age.plan"
./dldlrun "$work/age.plan" --train --epochs 1 --out "$work/run" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
cat "$work/log"
trivial=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    $col["split"] == "train" { s += $col["age"]; n++ }
    $col["split"] == "test" { t[++m] = $col["age"] }
    END { mean = s / n; for (i = 1; i <= m; i++) e += (t[i] > mean ? t[i] - mean : mean - t[i]); printf "%.2f", e / m }' \
    "$DLDL_DATA/utkface/labels.csv")
l0=$(first_loss "$work/log"); l1=$(hist "$work/run" train_loss); mae=$(hist "$work/run" mae_age)
echo "age: loss $l0 -> $l1, test MAE $mae years (mean-age predictor: $trivial years)"
[ -n "$l0" ] && [ -n "$l1" ] && [ -n "$mae" ] || { echo "could not read the figures from the log"; exit 1; }
lt "$l1" "$l0" || { echo "the loss did not fall"; exit 1; }
lt "$mae" "$trivial" || { echo "the test MAE does not beat the mean-age predictor"; exit 1; }
./dldlrun "$work/age.plan" --predict --weights "$work/run/weights.safetensors" \
    "$DLDL_DATA/utkface/images/$(sed -n '2s/,.*//p' "$DLDL_DATA/utkface/labels.csv")"
