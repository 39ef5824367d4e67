#!/bin/sh
# bench/ldl.sh - `make bench-ldl`: ten-fold cross-validation of every LDL spec
# on the real files, one table (data set x measure, mean +- std over the
# folds) in bench/results/ldl.md, beside the references of issue 11.
#
#   sh bench/ldl.sh [SET...]     sets: SJAFFE SBU_3DFE Yeast_alpha ... FG-Net emotion6 (default: all)
#
# The maximum-entropy model and the MLP (specs/ldl_maxent.dldl, specs/ldl_mlp.dldl)
# run on SJAFFE, SBU_3DFE and the ten Yeast sets, one spec instantiated per
# file with dldlc -D; FG-Net and Emotion6 have specs of their own.  Needs
# ./dldlc and ./dldlrun (make) and the data root ($DLDL_DATA, default ../shared/data).
set -eu
cd "$(dirname "$0")/.."
export DLDL_DATA="${DLDL_DATA:-$(pwd)/../shared/data}"
out=bench/results
mkdir -p "$out"
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
sets=${*:-"SJAFFE SBU_3DFE Yeast_alpha Yeast_cdc Yeast_cold Yeast_diau Yeast_dtt Yeast_elu Yeast_heat Yeast_spo Yeast_spo5 Yeast_spoem FG-Net emotion6"}

# The PyTorch reference (../shared/reference/torch_ldl.py, L-BFGS, weight decay 1e-4): KL mean, maxent / MLP-64.
ref() {
    case "$1/$2" in
        SJAFFE/maxent) echo .1286;; SJAFFE/mlp) echo .0404;;
        SBU_3DFE/maxent) echo .0567;; SBU_3DFE/mlp) echo .0607;;
        Yeast_alpha/maxent) echo .0055;; Yeast_cdc/maxent) echo .0070;; Yeast_spoem/maxent) echo .0245;;
        emotion6/maxent) echo .585;; emotion6/mlp) echo 1.73;;
        *) echo -;;
    esac
}
# dims and classes of each file (../shared/data/README.md)
shape() {
    case "$1" in
        SJAFFE|SBU_3DFE) echo "243 6";;
        Yeast_alpha) echo "24 18";; Yeast_cdc) echo "24 15";; Yeast_cold) echo "24 4";; Yeast_diau) echo "24 7";;
        Yeast_dtt) echo "24 4";; Yeast_elu) echo "24 14";; Yeast_heat) echo "24 6";; Yeast_spo) echo "24 6";;
        Yeast_spo5) echo "24 3";; Yeast_spoem) echo "24 2";;
        *) echo "";;
    esac
}

# run NAME MODEL SPEC [-D ...]: cross-validate, append a table row
row() {
    name=$1 model=$2 spec=$3; shift 3
    plan="$work/$name.$model.plan"
    ./dldlc "$spec" -o "$plan" "$@"
    t0=$(date +%s)
    ./dldlrun "$plan" --cv --quiet --out "$work/$name.$model" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
    secs=$(( $(date +%s) - t0 ))
    csv="$work/$name.$model/cv.csv"
    cell() { awk -F, -v m="$1" '$1 == m { printf "%.4f ± %.4f", $3, $4 }' "$csv"; }
    mae=$(awk -F, '$1 ~ /^mae_/ { printf "%.2f ± %.2f", $3, $4 }' "$csv")
    top1=$(awk -F, '$1 == "top1" { printf "%.1f ± %.1f %%", 100 * $3, 100 * $4 }' "$csv")
    extra=""; [ -n "$mae" ] && extra="MAE $mae years"; [ -n "$top1" ] && extra="top-1 $top1"
    printf '| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s s |\n' "$name" "$model" \
        "$(cell chebyshev)" "$(cell clark)" "$(cell canberra)" "$(cell kl)" "$(cell cosine)" \
        "$(cell intersection)" "$(ref "$name" "$model")" "${extra:--}" "$secs" >> "$out/ldl.md.new"
    echo "$name $model: kl $(cell kl) (${secs} s)" >&2
}

{
    echo "# LDL benchmark sets: ten-fold cross-validation (mean ± std over the folds)"
    echo
    echo "$(date -u +%Y-%m-%d), $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')), \`make bench-ldl\`."
    echo "Chebyshev, Clark, Canberra, KL: lower is better; cosine, intersection: higher is better."
    echo "'PyTorch KL' is ../shared/reference/torch_ldl.py on the same folds (L-BFGS, weight decay 1e-4)."
    echo
    echo "| data set | model | Chebyshev | Clark | Canberra | KL | cosine | intersection | PyTorch KL | other | time |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|"
} > "$out/ldl.md.new"
for s in $sets; do
    case "$s" in
        FG-Net) row FG-Net mlp specs/fgnet.dldl;;
        emotion6) row emotion6 mlp specs/emotion6.dldl;;
        *)
            set -- $(shape "$s")
            [ $# -eq 2 ] || { echo "bench/ldl.sh: unknown set '$s'" >&2; exit 2; }
            row "$s" maxent specs/ldl_maxent.dldl -D "file=ldl/$s.mat" -D "dims=$1" -D "classes=$2"
            row "$s" mlp specs/ldl_mlp.dldl -D "file=ldl/$s.mat" -D "dims=$1" -D "classes=$2"
            ;;
    esac
done
mv "$out/ldl.md.new" "$out/ldl.md"
cat "$out/ldl.md"
