# tests/e2e/lib.sh - shared helpers for the end-to-end trainings (sourced).
set -eu
cd "$(dirname "$0")/../.."
DLDL_DATA=${DLDL_DATA:-../shared/data}
export DLDL_DATA
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# first_loss LOG: the loss printed with the first batch of the first epoch.
first_loss() { sed -n 's/^epoch 1\/[0-9]*  batch 1\/[0-9]*  loss \([0-9.]*\).*/\1/p' "$1" | head -1; }
# hist RUNDIR COLUMN: the last epoch's value of COLUMN in RUNDIR/history.csv,
# e.g. hist "$work/run" mae_age (MAE in years) or train_loss.
hist() { awk -F, -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next } k { v = $k } END { print v }' "$1/history.csv"; }
# lt A B: A < B as decimals.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
