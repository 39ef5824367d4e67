# Two heads on one trunk (specs/age_gender.dldl) on 1,024 + 256 UTKFace faces at
# 32 x 32 for 3 epochs: both heads train (the loss falls); the gender head's
# top-1 accuracy beats always answering the training split's majority class, and
# the age head's MAE beats always answering the training split's mean age, both
# computed here from the labels.
. "$(dirname "$0")/lib.sh"
mkdir -p "$work/data/utkface"
ln -s "$(cd "$DLDL_DATA" && pwd)/utkface/images" "$work/data/utkface/images"
src=$DLDL_DATA/utkface/labels.csv
{ head -1 "$src"; grep ',train$' "$src" | head -1024; grep ',test$' "$src" | head -256; } > "$work/data/utkface/labels.csv"
./dldlc specs/age_gender.dldl -D size=32 -D width=16 -D epochs=3 -o "$work/p.plan"
./dldlrun "$work/p.plan" --train --data "$work/data" --out "$work/run" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
tail -3 "$work/log"
# col NAME: the column's index in labels.csv
base=$(awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) c[$i] = i; next }
    $c["split"] == "train" { n++; a += $c["age"]; f += $c["gender"] == 1 }
    $c["split"] == "test" { t[++m] = $c["age"]; g[m] = $c["gender"] }
    END { mean = a / n; maj = (f > n - f); for (i = 1; i <= m; i++) { d = t[i] - mean; e += d < 0 ? -d : d; h += g[i] == maj }
          printf "%.4f %.4f", e / m, h / m }' "$work/data/utkface/labels.csv")
tmae=${base% *} tacc=${base#* }
l0=$(first_loss "$work/log"); l1=$(hist "$work/run" train_loss)
mae=$(hist "$work/run" mae_age); acc=$(hist "$work/run" gender)
echo "two heads: loss $l0 -> $l1, test MAE $mae years (mean age: $tmae), gender $acc (majority: $tacc)"
[ -n "$l0" ] && [ -n "$l1" ] && [ -n "$mae" ] && [ -n "$acc" ] || { echo "could not read the figures"; exit 1; }
lt "$l1" "$l0" || { echo "the loss did not fall"; exit 1; }
lt "$mae" "$tmae" || { echo "the age head does not beat the mean age"; exit 1; }
lt "$tacc" "$acc" || { echo "the gender head does not beat the majority class"; exit 1; }
