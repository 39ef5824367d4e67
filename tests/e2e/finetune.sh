# Fine-tuning (dldlrun --train --weights FILE) on a tiny network and 96 UTKFace faces
# (a few seconds): tensors are matched by name, a renamed head is left at its
# initialisation and the old one ignored, a checkpoint's optimizer state is ignored,
# a tensor whose shape changed refuses the file, --weights with --resume is a usage
# error, and the loaded values are the file's (with lr 0 and batch norm momentum 0
# nothing moves, so the first test MAE is the source run's last).
. "$(dirname "$0")/lib.sh"
mkdir -p "$work/data/utkface"
ln -s "$(cd "$DLDL_DATA" && pwd)/utkface/images" "$work/data/utkface/images"
src=$DLDL_DATA/utkface/labels.csv
{ head -1 "$src"; grep ',train$' "$src" | head -64; grep ',test$' "$src" | head -32; } > "$work/data/utkface/labels.csv"
cat > "$work/a.dldl" <<'SPEC'
data faces {
    source  = csv("utkface/labels.csv", images = "utkface/images", file = "file")
    split   = column("split")
    age     = label(column("age"), unit = "years")
    input   = image(channels = 3, size = [16, 16], range = [-1, 1])
}
target dist = gaussian1d(faces.age, bins = 0..116, sigma = 2.0)
block cbr(x, c) {
    y = conv2d(x, c, kernel = 3, pad = 1, bias = false)
    z = batchnorm(y)
    return relu(z)
}
network net(x = faces.input) {
    c1 = cbr(x, 8)
    g  = global_avgpool(c1)
    logits = linear(g, 117)
    return softmax(logits)
}
loss = kl(dist, net) + 1.0 * l1(expectation(net, dist), faces.age)
optimizer = sgd(lr = 0.01, momentum = 0.9)
train { epochs = 1  batch = 16  seed = 0 }
metrics { mae = mae(expectation(net, dist), faces.age) }
SPEC
sed 's/logits = linear(g, 117)/head = linear(g, 117)/; s/return softmax(logits)/return softmax(head)/' \
    "$work/a.dldl" > "$work/head.dldl"                              # a new head
sed 's/c1 = cbr(x, 8)/c1 = cbr(x, 16)/' "$work/a.dldl" > "$work/wide.dldl"   # c1 wider
sed 's/lr = 0.01/lr = 0/; s/z = batchnorm(y)/z = batchnorm(y, momentum = 0)/' \
    "$work/a.dldl" > "$work/still.dldl"                             # nothing moves
for s in a head wide still; do ./dldlc "$work/$s.dldl" -o "$work/$s.plan"; done
run() { ./dldlrun "$@" --data "$work/data" --threads 1; }
mae() { sed -n 's/^epoch 1\/1 .* test mae age \([0-9.]*\) years.*/\1/p' "$1"; }
fail() { echo "$*"; exit 1; }

run "$work/a.plan" --train --out "$work/a" > "$work/a.log" 2>&1 || { cat "$work/a.log"; fail "training a failed"; }
w=$work/a/weights.safetensors

run "$work/head.plan" --train --out "$work/h" --weights "$w" > "$work/h.log" 2>&1 || { cat "$work/h.log"; fail "fine-tuning failed"; }
want="dldlrun: loaded 5 tensors from $w; left at initialisation: head.weight, head.bias; ignored from the file: logits.weight, logits.bias"
grep -qxF "$want" "$work/h.log" || { cat "$work/h.log"; fail "expected: $want"; }
[ -s "$work/h/weights.safetensors" ] || fail "no weights after fine-tuning"

run "$work/a.plan" --train --out "$work/c" --weights "$work/a/checkpoint.safetensors" > "$work/c.log" 2>&1 || { cat "$work/c.log"; fail "fine-tuning from a checkpoint failed"; }
grep -qF "loaded 7 tensors from $work/a/checkpoint.safetensors; ignored from the file: 5 optimizer tensors" "$work/c.log" \
    || { cat "$work/c.log"; fail "the checkpoint's report is wrong"; }

if run "$work/wide.plan" --train --out "$work/w" --weights "$w" > "$work/w.log" 2>&1; then cat "$work/w.log"; fail "a wider c1 was accepted"; fi
grep -qF "$w: c1.y.weight: the file has [8, 3, 3, 3], the plan [16, 3, 3, 3];" "$work/w.log" || { cat "$work/w.log"; fail "no shape error"; }
[ ! -e "$work/w/weights.safetensors" ] || fail "weights written after a refused file"

rc=0; run "$work/a.plan" --train --out "$work/a" --resume --weights "$w" > "$work/r.log" 2>&1 || rc=$?
[ $rc -eq 2 ] && grep -q 'cannot be combined' "$work/r.log" || { cat "$work/r.log"; fail "--resume --weights: exit $rc"; }

run "$work/still.plan" --train --out "$work/s" --weights "$w" > "$work/s.log" 2>&1 || { cat "$work/s.log"; fail "lr 0 run failed"; }
run "$work/still.plan" --train --out "$work/s0" > "$work/s0.log" 2>&1 || { cat "$work/s0.log"; fail "lr 0 run failed"; }
m=$(mae "$work/a.log"); ms=$(mae "$work/s.log"); m0=$(mae "$work/s0.log")
[ -n "$m" ] && [ "$m" = "$ms" ] || fail "lr 0 from a's weights: test MAE $ms, a ended at $m"
[ "$m0" != "$m" ] || fail "lr 0 from scratch gives a's MAE $m too: the check proves nothing"
echo "finetune: head renamed (5 loaded, 2 at init, 2 ignored), checkpoint, shape error, lr 0 keeps MAE $m (scratch $m0)"
