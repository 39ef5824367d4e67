# Inputs and outputs that dldlc and dldlrun refuse at once, each with one line naming
# the file and why (no training; a second): -o onto a device, a directory or the spec
# itself (nothing is replaced); a spec or plan that is a device or a directory (never
# read); --threads beyond 1..1024 (libgomp once crashed on 100000).
. "$(dirname "$0")/lib.sh"
expect() { # expect RC PATTERN CMD...: exit status RC and PATTERN in its stderr
    rc=$1 pat=$2; shift 2
    set +e; "$@" > /dev/null 2> "$work/err"; got=$?; set -e
    [ "$got" -eq "$rc" ] && grep -q -- "$pat" "$work/err" || {
        echo "'$*': exit $got, expected $rc with '$pat'; stderr:"; cat "$work/err"; exit 1; }
    cat "$work/err"
}
cp specs/age.dldl "$work/a.dldl"
expect 1 "refusing to write '/dev/null': it is not a regular file" ./dldlc specs/age.dldl -o /dev/null
[ -c /dev/null ] || { echo "/dev/null is no longer a device"; exit 1; }
expect 1 "refusing to write '$work/a.dldl': it is the spec being compiled" ./dldlc "$work/a.dldl" -o "$work/a.dldl"
cmp -s specs/age.dldl "$work/a.dldl" || { echo "the spec was changed"; exit 1; }
expect 1 "refusing to write '$work': it is a directory" ./dldlc specs/age.dldl -o "$work"
expect 1 "cannot read '/dev/zero': is not a regular file" ./dldlc /dev/zero --emit=ast
expect 1 "cannot read '$work': is a directory" ./dldlc "$work" --emit=ast
expect 1 "/dev/zero: cannot read the plan: is not a regular file" ./dldlrun /dev/zero --eval
expect 1 "$work: cannot read the plan: is a directory" ./dldlrun "$work" --eval
expect 2 "--threads wants an integer in 1..1024, got '100000'" ./dldlrun "$work/x.plan" --train --threads 100000
