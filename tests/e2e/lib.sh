# tests/e2e/lib.sh - shared helpers for the end-to-end trainings (sourced).
set -eu
cd "$(dirname "$0")/../.."
DLDL_DATA=${DLDL_DATA:-../shared/data}
export DLDL_DATA
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# first_loss LOG: the loss printed with the first batch of the first epoch.
first_loss() { sed -n 's/^epoch 1\/[0-9]*  batch 1\/[0-9]*  loss \([0-9.]*\).*/\1/p' "$1" | head -1; }
# last_loss LOG: the mean training loss of the last epoch.
last_loss() { sed -n 's/^epoch [0-9]*\/[0-9]*  train loss \([0-9.]*\).*/\1/p' "$1" | tail -1; }
# metric LOG WORD AXIS: the last epoch's "WORD ... AXIS V" figure, e.g. metric log mae age.
metric() { grep '^epoch .* train loss' "$1" | tail -1 | sed -n "s/.*test $2\( [a-z]* [0-9.%]* [a-z]*\)*.* $3 \([0-9.]*\).*/\2/p"; }
# lt A B: A < B as decimals.
lt() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a + 0 < b + 0) }'; }
