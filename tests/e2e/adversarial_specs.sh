# Specs written to break the compiler (issue 13), generated here because they are too big
# to commit: sums of 50,000 terms (in `loss`, in `epochs`, of one tensor in a network), a
# network summing 5,000 layer outputs, 20,000 layers in a row, nesting 50,000 deep, chains
# of 20,000 parameters and 10,000 blocks.  With the default 8 MiB stack, dldlc must end
# each one with the exit status and message it should, in less than 20 s (a guard against
# hangs and quadratic blow-ups: each takes a second or less).  Then the memory check: a
# plan larger than DLDL_MEMORY_LIMIT (or than the machine) is warned about, naming its
# largest buffers.  No data and no training.
. "$(dirname "$0")/lib.sh"
ulimit -s 8192
base=specs/ldl_mlp.dldl

# check NAME RC PATTERN ARGS...: `dldlc ARGS` exits RC with PATTERN in its stderr
# (PATTERN '': stderr empty), within 20 s.
check() {
    name=$1 rc=$2 pat=$3; shift 3
    t0=$(date +%s)
    set +e; timeout 120 ./dldlc "$@" > "$work/out" 2> "$work/err"; got=$?; set -e
    t=$(($(date +%s) - t0))
    if [ "$got" -ne "$rc" ]; then
        head -c 2000 "$work/err"; echo "$name: exit $got, expected $rc"; exit 1
    fi
    if [ -n "$pat" ] && ! grep -q -- "$pat" "$work/err"; then
        head -c 2000 "$work/err"; echo "$name: no '$pat' in the messages"; exit 1
    fi
    if [ -z "$pat" ] && [ -s "$work/err" ]; then
        head -c 2000 "$work/err"; echo "$name: unexpected messages"; exit 1
    fi
    [ "$t" -le 20 ] || { echo "$name: took $t s (more than 20)"; exit 1; }
    echo "$name: exit $got in ${t}s${pat:+: $pat}"
}
# edit LINE_REGEX AWK_CODE: $base with the line matching LINE_REGEX replaced by what
# AWK_CODE prints (n = the size), to stdout.
edit() {
    awk -v n="$3" "/$1/ { $2; next } { print }" "$base"
}

edit '^loss = kl\(y, mlp\)$' 'printf "loss = kl(y, mlp)"; for (i = 1; i < n; i++) printf " + kl(y, mlp)"; print ""' 50000 > "$work/loss.dldl"
check "ast of a loss of 50,000 terms" 0 '' "$work/loss.dldl" --emit=ast
check "a loss of 50,000 terms" 1 "error: the loss has more than 1000 terms" "$work/loss.dldl" --emit=graph

edit '^    epochs = epochs$' 'printf "    epochs = 1"; for (i = 1; i < n; i++) printf " + 1"; print ""' 50000 > "$work/epochs.dldl"
check "epochs summing 50,000 ones" 0 "warning: parameter 'epochs' is never used" "$work/epochs.dldl" --emit=plan
grep -q '^  epochs = 50000$' "$work/out" || { grep epochs "$work/out"; echo "epochs is not 50000 in the plan"; exit 1; }

edit '^    h = relu\(linear\(x, hidden\)\)$' 'print "    a = linear(x, hidden)"; printf "    h = relu(a"; for (i = 1; i < n; i++) printf " + a"; print ")"' 20000 > "$work/netsum.dldl"
check "a network adding one tensor 20,000 times" 0 '' "$work/netsum.dldl" -o "$work/netsum.plan"

edit '^    h = relu\(linear\(x, hidden\)\)$' 'for (i = 0; i < n; i++) printf "    l%d = linear(x, hidden)\n", i; printf "    h = relu(l0"; for (i = 1; i < n; i++) printf " + l%d", i; print ")"' 5000 > "$work/layers.dldl"
check "a network summing 5,000 layer outputs" 0 '' "$work/layers.dldl" -o "$work/layers.plan"
check "its graph" 0 '' "$work/layers.dldl" --emit=graph
# derived names stay short (they once grew as h.lhs.lhs.lhs... with the sum's length)
long=$(sed -n 's/.*  ; \([^ ]*\).*/\1/p' "$work/out" | awk '{ if (length($0) > m) { m = length($0); s = $0 } } END { print m, s }')
[ "${long%% *}" -le 40 ] || { echo "longest node name: $long"; exit 1; }

edit '^    h = relu\(linear\(x, hidden\)\)$' 'print "    l0 = linear(x, hidden)"; for (i = 1; i < n; i++) printf "    l%d = relu(l%d)\n", i, i - 1; printf "    h = l%d\n", n - 1' 20000 > "$work/deep.dldl"
check "a network of 20,000 layers in a row" 0 '' "$work/deep.dldl" -o "$work/deep.plan"

edit '^    h = relu\(linear\(x, hidden\)\)$' 'printf "    h = "; for (i = 0; i < n; i++) printf "relu("; printf "linear(x, hidden)"; for (i = 0; i < n; i++) printf ")"; print ""' 50000 > "$work/calls.dldl"
check "calls nested 50,000 deep" 1 "error: expression nested deeper than 256 levels" "$work/calls.dldl" --emit=graph
edit '^    epochs = epochs$' 'printf "    epochs = "; for (i = 0; i < n; i++) printf "-"; print "1"' 50000 > "$work/minus.dldl"
check "50,000 minus signs" 1 "error: expression nested deeper than 256 levels" "$work/minus.dldl" --emit=graph
edit '^    epochs = epochs$' 'printf "    epochs = "; for (i = 0; i < n; i++) printf "("; printf "8"; for (i = 0; i < n; i++) printf ")"; print ""' 50000 > "$work/parens.dldl"
check "parentheses 50,000 deep (no nesting in the tree)" 0 "warning: parameter 'epochs' is never used" "$work/parens.dldl" --emit=graph
edit '^    split   = kfold' 'print; printf "    q = ldl"; for (i = 0; i < n; i++) printf ".a"; print ""' 50000 > "$work/fields.dldl"
check "ast of a field chain 50,000 long" 0 '' "$work/fields.dldl" --emit=ast
check "a field chain 50,000 long" 1 "error: unknown key 'q' in data 'ldl'" "$work/fields.dldl" --emit=graph

edit '^    epochs  = 100 *$' 'print "    epochs  = p0"; for (i = 0; i < n; i++) printf "    p%d = p%d\n", i, i + 1; printf "    p%d = 100\n", n' 20000 > "$work/params.dldl"
grep -q '^    epochs  = p0$' "$work/params.dldl" || { echo "could not rewrite the params"; exit 1; }
check "a chain of 20,000 parameters" 1 "error: 'epochs' of train: parameter 'p15' is defined in terms of itself (or through more than 16 parameters)" "$work/params.dldl" --emit=graph

edit '^network mlp' 'print "block b0(x) {\n    return relu(x)\n}"; for (i = 1; i < n; i++) printf "block b%d(x) {\n    return b%d(x)\n}\n", i, i - 1; print' 10000 |
    sed 's/^    h = relu(linear(x, hidden))$/    h = b9999(linear(x, hidden))/' > "$work/blocks.dldl"
check "a chain of 10,000 blocks" 1 "error: blocks nested deeper than 64 calls (block 'b9936' calls 'b9935')" "$work/blocks.dldl" --emit=graph

# The memory plan against the machine.
export DLDL_MEMORY_LIMIT=1000
check "a plan over DLDL_MEMORY_LIMIT" 0 "warning: the memory plan takes .* more than DLDL_MEMORY_LIMIT (1000 bytes); the largest buffers:" "$base" -o "$work/mlp.plan"
grep -q "note: 'h.linear.weight' \[64, 243\] (train, param arena): 60.8 KiB" "$work/err" || { cat "$work/err"; echo "the largest buffer is not named"; exit 1; }
[ "$(grep -c ': note: ' "$work/err")" -eq 3 ] || { cat "$work/err"; echo "expected 3 buffers named"; exit 1; }
DLDL_MEMORY_LIMIT=1000000000000
check "a plan under DLDL_MEMORY_LIMIT" 0 '' "$base" -o "$work/mlp.plan"
DLDL_MEMORY_LIMIT=lots
check "a DLDL_MEMORY_LIMIT that is no number" 0 "warning: DLDL_MEMORY_LIMIT='lots' is not a number of bytes" "$base" -o "$work/mlp.plan"
unset DLDL_MEMORY_LIMIT
sed 's/^    batch  = 32$/    batch  = 1000000000/' "$base" > "$work/huge.dldl"
(check "a plan of 2.5 TiB" 0 "warning: the memory plan takes 2.5 TiB (2760000196352 bytes), more than this machine's" "$work/huge.dldl" --emit=mem)
echo "adversarial specs: every case ended as it should"
