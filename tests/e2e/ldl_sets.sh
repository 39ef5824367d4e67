# The LDL sets on their real .mat files (ldl/SJAFFE.mat, ldl/emotion6.mat):
# a --train run of specs/ldl_mlp.dldl on SJAFFE and of specs/emotion6.dldl on
# Emotion6 (test fold 1 of 10) beats the trivial predictor, the mean training
# distribution (its KL from tests/numeric/ldl_trivial.txt, computed offline by
# numpy on the same folds); a two-fold --cv run prints each measure as
# mean +- std and writes cv.csv and cv.json, and beats the trivial predictor too.
. "$(dirname "$0")/lib.sh"
trivial() { awk -v s="$1" -v k="$2" -v f="$3" '$1 == s && $2 == k && $3 == f { print $4 }' tests/numeric/ldl_trivial.txt; }

./dldlc specs/ldl_mlp.dldl -o "$work/sj.plan"
./dldlrun "$work/sj.plan" --train --out "$work/sj" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
kl=$(hist "$work/sj" kl) t=$(trivial SJAFFE 10 1)
echo "SJAFFE fold 1: KL $kl (trivial $t)"
[ -n "$kl" ] && [ -n "$t" ] && lt "$kl" "$t" || { tail -3 "$work/log"; echo "SJAFFE: KL does not beat the mean training distribution"; exit 1; }

./dldlc specs/emotion6.dldl -o "$work/e6.plan"
./dldlrun "$work/e6.plan" --train --out "$work/e6" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
kl=$(hist "$work/e6" kl) t=$(trivial emotion6 10 1) top1=$(hist "$work/e6" top1)
echo "Emotion6 fold 1: KL $kl (trivial $t), top-1 $top1"
[ -n "$kl" ] && [ -n "$t" ] && lt "$kl" "$t" || { echo "Emotion6: KL does not beat the mean training distribution"; exit 1; }
lt 0.25 "$top1" || { echo "Emotion6: top-1 accuracy $top1 is not above 25%"; exit 1; }

./dldlc specs/ldl_mlp.dldl -D folds=2 -o "$work/sj2.plan"
./dldlrun "$work/sj2.plan" --cv --quiet --out "$work/cv" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
grep -A6 '^cross-validation, 2 folds' "$work/log"
grep -q '^  kl  *[0-9.]* +- [0-9.]*$' "$work/log" || { echo "no 'kl mean +- std' line"; exit 1; }
[ -d "$work/cv/fold1" ] && [ -d "$work/cv/fold2" ] || { echo "no run folder per fold"; exit 1; }
kl=$(awk -F, '$1 == "kl" { print $3 }' "$work/cv/cv.csv") t=$(trivial SJAFFE 2 0)
echo "SJAFFE two-fold CV: KL $kl (trivial $t)"
lt "$kl" "$t" || { echo "two-fold CV: KL does not beat the mean training distribution"; exit 1; }
grep -q '"kl": {"unit": "", "mean": ' "$work/cv/cv.json" || { echo "cv.json lacks the kl entry"; exit 1; }
