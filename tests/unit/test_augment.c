/* test_augment.c - random crop (shift with black padding) and horizontal flip
 * in dl_data_batch, on a hand-made one-sample data set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "runtime/data.h"

enum { H = 8, W = 8, P = 2 };

static DlDataset one_image(int hflip, int pad)
{
    static uint8_t px[H * W];
    static float labels[1] = {30};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) px[y * W + x] = (uint8_t)(1 + y * W + x); /* never 0 */
    DlDataset d = {.n = 1, .nlabels = 1, .labels = labels, .C = 1, .H = H, .W = W, .pixels = px,
                   .lo = 0, .hi = 255, .hflip = hflip, .crop_pad = pad};
    return d;
}

/* The (dy, dx) in [-P, P] for which out is src shifted (and flipped first when
 * flip), padding 0; -1 when none fits. */
static int find_shift(const DlDataset *d, const float *out, int flip, int *ody, int *odx)
{
    for (int dy = -P; dy <= P; dy++)
        for (int dx = -P; dx <= P; dx++) {
            int ok = 1;
            for (int y = 0; y < H && ok; y++)
                for (int x = 0; x < W && ok; x++) {
                    int sy = y + dy, sx = (flip ? W - 1 - x : x) + dx;
                    float want = sy < 0 || sy >= H || sx < 0 || sx >= W ? 0.0f : (float)d->pixels[sy * W + sx];
                    ok = out[y * W + x] == want;
                }
            if (ok) {
                *ody = dy, *odx = dx;
                return 0;
            }
        }
    return -1;
}

static void test_random_crop_is_a_padded_shift(void **st)
{
    (void)st;
    DlDataset d = one_image(0, P);
    int idx[1] = {0}, seen[2 * P + 1][2 * P + 1] = {{0}};
    float out[H * W], lab[1];
    for (int epoch = 0; epoch < 400; epoch++) {
        dl_data_batch(&d, idx, 1, 1, 7, epoch, out, lab, NULL);
        int dy, dx;
        assert_int_equal(find_shift(&d, out, 0, &dy, &dx), 0);
        seen[dy + P][dx + P]++;
        assert_true(lab[0] == 30.0f); /* a crop keeps the label */
    }
    for (int i = 0; i <= 2 * P; i++)
        for (int j = 0; j <= 2 * P; j++) assert_true(seen[i][j] > 0); /* every shift occurs */
    /* no augmentation at evaluation: the image as it is */
    dl_data_batch(&d, idx, 1, 0, 7, 3, out, lab, NULL);
    for (int k = 0; k < H * W; k++) assert_true(out[k] == (float)d.pixels[k]);
}

static void test_crop_and_flip_compose(void **st)
{
    (void)st;
    DlDataset d = one_image(1, P);
    int idx[1] = {0}, flips = 0;
    float out[H * W];
    for (int epoch = 0; epoch < 100; epoch++) {
        dl_data_batch(&d, idx, 1, 1, 11, epoch, out, NULL, NULL);
        int flip = dl_rng_uniform(11, (uint64_t)epoch, 0, 1) < 0.5f, dy, dx;
        flips += flip;
        assert_int_equal(find_shift(&d, out, flip, &dy, &dx), 0);
    }
    assert_true(flips > 20 && flips < 80);
}

static void test_same_counter_same_crop(void **st)
{
    (void)st;
    DlDataset d = one_image(1, P);
    int idx[1] = {0};
    float a[H * W], b[H * W];
    dl_data_batch(&d, idx, 1, 1, 5, 9, a, NULL, NULL);
    dl_data_batch(&d, idx, 1, 1, 5, 9, b, NULL, NULL);
    assert_memory_equal(a, b, sizeof a); /* counter-based: (seed, epoch, sample) decides */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_random_crop_is_a_padded_shift),
        cmocka_unit_test(test_crop_and_flip_compose),
        cmocka_unit_test(test_same_counter_same_crop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
