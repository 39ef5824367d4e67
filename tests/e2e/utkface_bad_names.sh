# specs/age.dldl with the UTKFace file-name convention instead of the manifest:
# scanning the real folder finds its two malformed names; the run must report each
# by file and refuse to train on part of the data (no --skip-bad).
. "$(dirname "$0")/lib.sh"
sed -e 's|^    source  = csv(.*|    source  = utkface("utkface/images")|' \
    -e 's|^    split   = column("split").*|    split   = folds("utkface/labels.csv", column = "split")|' \
    -e 's|^    age     = label(column("age"), unit = "years")|    age     = label(name_field("age"), unit = "years")|' \
    specs/age.dldl > "$work/names.dldl"
grep -q 'utkface("utkface/images")' "$work/names.dldl" || { echo "could not rewrite the spec"; exit 1; }
./dldlc "$work/names.dldl" -o "$work/names.plan"
if ./dldlrun "$work/names.plan" --train --epochs 1 --out "$work/run" > "$work/log" 2>&1; then
    cat "$work/log"; echo "training ran although two samples are bad"; exit 1
fi
cat "$work/log"
n=$(grep -c 'malformed UTKFace name' "$work/log")
[ "$n" -eq 2 ] || { echo "expected 2 malformed names reported, got $n"; exit 1; }
grep -q -- '--skip-bad' "$work/log" || { echo "the error does not mention --skip-bad"; exit 1; }
[ ! -e "$work/run/weights.safetensors" ] || { echo "weights were written"; exit 1; }
echo "utkface names: 2 malformed names reported, training refused"
