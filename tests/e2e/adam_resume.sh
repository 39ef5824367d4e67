# Adam on Pointing'04 fold 1 with a small network (two conv blocks), the step
# schedule halving the lr every epoch: one epoch, then --resume to the second,
# must give the same weights and checkpoint, bit for bit, as two epochs straight
# (Adam's exp_avg and exp_avg_sq, the step count and the schedule all restored),
# the checkpoint names the states as PyTorch does, and the loss falls.
. "$(dirname "$0")/lib.sh"
awk '/^network posenet/ { print "network posenet(x = heads.input) {\n    c1 = cbr(x, 8)\n    p1 = maxpool(c1, size = 4)\n    c2 = cbr(p1, 16)\n    g  = global_avgpool(c2)\n    logits = linear(g, 117)\n    return softmax(logits)\n}"; skip = 1; next }
     skip && /^}/ { skip = 0; next }
     skip { next }
     /^optimizer = / { print "optimizer = adam(lr = 0.003, weight_decay = 1e-4, schedule = step(every = 1, gamma = 0.5))"; drop = 1; next }
     drop && /schedule = / { drop = 0; next }
     { print }' specs/pose.dldl > "$work/adam.dldl"
grep -q '^optimizer = adam' "$work/adam.dldl" || { echo "could not write the Adam spec"; exit 1; }
./dldlc "$work/adam.dldl" -o "$work/adam.plan"
run() { ./dldlrun "$work/adam.plan" --train --quiet "$@" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }; }
run --epochs 1 --out "$work/a"
cp -r "$work/a" "$work/b"
run --epochs 2 --out "$work/b" --resume
run --epochs 2 --out "$work/c"
cmp "$work/b/weights.safetensors" "$work/c/weights.safetensors" || { echo "resumed weights differ"; exit 1; }
cmp "$work/b/checkpoint.safetensors" "$work/c/checkpoint.safetensors" || { echo "resumed checkpoint differs"; exit 1; }
grep -q 'optimizer.logits.weight.exp_avg_sq' "$work/c/checkpoint.safetensors" || { echo "no exp_avg_sq in the checkpoint"; exit 1; }
l1=$(awk -F, 'NR == 2 { print $2 }' "$work/c/history.csv"); l2=$(hist "$work/c" train_loss)
echo "adam: train loss $l1 -> $l2 over 2 epochs; 1 epoch + --resume = 2 epochs, bit for bit"
lt "$l2" "$l1" || { echo "the loss did not fall"; exit 1; }
