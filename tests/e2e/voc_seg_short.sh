# Per-pixel label distributions on the real VOC2012 subset (specs/voc_seg.dldl)
# at 32 x 32 for 12 epochs on the first of its five folds: the loss falls, and
# the network beats the trivial predictor (every pixel background) on the test
# fold's mIoU, computed from the same label maps by tests/tools/seg_trivial.c.
# --predict then writes its label map.  (Pixel accuracy is printed, not
# checked: background is 77 % of the pixels, and a short run from scratch
# trades some of it for the other classes.)
. "$(dirname "$0")/lib.sh"
./dldlc specs/voc_seg.dldl -D size=32 -D epochs=12 -o "$work/p.plan"
./dldlrun "$work/p.plan" --train --out "$work/run" > "$work/log" 2>&1 || { cat "$work/log"; exit 1; }
tail -2 "$work/log"
base=$(${DLDL_TEST_DIR:-build/tests}/tools/seg_trivial "$work/p.plan")
tmiou=$(echo "$base" | awk '{ print $2 }') tacc=$(echo "$base" | awk '{ print $4 }')
l0=$(first_loss "$work/log"); l1=$(hist "$work/run" train_loss)
miou=$(hist "$work/run" miou); acc=$(hist "$work/run" pixacc)
miou=$(awk -v v="$miou" 'BEGIN { print 100 * v }'); acc=$(awk -v v="$acc" 'BEGIN { print 100 * v }')
echo "voc segmentation: loss $l0 -> $l1, test mIoU $miou% (background everywhere: $tmiou%), pixel accuracy $acc% ($tacc%)"
[ -n "$l0" ] && [ -n "$l1" ] && [ -n "$miou" ] && [ -n "$tmiou" ] || { echo "could not read the figures"; exit 1; }
lt "$l1" "$l0" || { echo "the loss did not fall"; exit 1; }
lt "$tmiou" "$miou" || { echo "the network does not beat background everywhere on mIoU"; exit 1; }
# --predict writes the arg-max label map at the image's size
img=$DLDL_DATA/voc2012/VOC2012/JPEGImages/2007_000559.jpg
./dldlrun "$work/p.plan" --predict --out "$work/run" "$img" > "$work/pred" 2>&1 || { cat "$work/pred"; exit 1; }
cat "$work/pred"
grep -q "mask $work/run/masks/2007_000559.png" "$work/pred" || { echo "--predict did not report its mask"; exit 1; }
[ -s "$work/run/masks/2007_000559.png" ] || { echo "--predict wrote no mask"; exit 1; }
