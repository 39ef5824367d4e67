/* augment.c - a batch out of the data set: scaling of the uint8 store to
 * floats, and the random geometric augmentation shared by an image and its
 * label map (runtime/data.h dl_data_batch).
 *
 * Every random choice is a pure function of (seed, epoch, sample, purpose)
 * (rng.c): purpose 1 the flip, 3 and 4 the crop's row and column shifts, 5
 * the zoom factor.  The view of a sample is one map from output pixel (y, x)
 * to source coordinates, applied alike to the image and to its label map:
 *   flip: x -> W-1-x; shift (random_crop with pad P): + (dy, dx) in [-P, P];
 *   zoom by s about the centre: c + (o + 0.5 - c') / s - 0.5 per axis.
 * Without a zoom the map is integral and the image is copied (bit-exact with
 * earlier releases); with one the image is sampled bilinearly and the label
 * map by its nearest pixel, never interpolated (a class index has no
 * in-between).  Outside the source: black for the image, 255 (void) for the
 * label map, so padding carries no loss.
 */
#include <math.h>
#include <string.h>

#include "data.h"

/* One sample's view: flip, integral shift, zoom. */
typedef struct View {
    int flip, dy, dx;
    float s;   /* 1: no zoom */
} View;

static View view_of(const DlDataset *d, int i, int augment, uint64_t seed, int epoch)
{
    View v = {0, 0, 0, 1.0f};
    if (!augment) return v;
    v.flip = d->hflip && dl_rng_uniform(seed, (uint64_t)epoch, (uint64_t)i, 1) < 0.5f;
    int P = d->crop_pad;
    if (P > 0) { /* the H x W window of the image padded by P pixels, at offset (dy, dx) in [-P, P] */
        v.dy = (int)(dl_rng_uniform(seed, (uint64_t)epoch, (uint64_t)i, 3) * (float)(2 * P + 1)) - P;
        v.dx = (int)(dl_rng_uniform(seed, (uint64_t)epoch, (uint64_t)i, 4) * (float)(2 * P + 1)) - P;
        if (v.dy > P) v.dy = P; /* u < 1, but keep the bound obvious */
        if (v.dx > P) v.dx = P;
    }
    if (d->scale_min > 0 && (d->scale_min != 1.0f || d->scale_max != 1.0f))
        v.s = d->scale_min + (d->scale_max - d->scale_min) * dl_rng_uniform(seed, (uint64_t)epoch, (uint64_t)i, 5);
    return v;
}

/* The source coordinate of output o along an axis of n pixels (zoomed). */
static float src_coord(float o, int n, float s) { return ((o + 0.5f) - 0.5f * (float)n) / s + 0.5f * (float)n - 0.5f; }

/* Image, integral view: a copy with shift and flip. */
static void image_copy(const DlDataset *d, const uint8_t *src, float *dst, const View *v, const float *lut)
{
    int H = d->H, W = d->W;
    size_t hw = (size_t)H * W;
    for (int c = 0; c < d->C; c++)
        for (int y = 0; y < H; y++) {
            float *o = dst + c * hw + (size_t)y * W;
            int sy = y + v->dy;
            if (sy < 0 || sy >= H) { /* a padding row */
                for (int x = 0; x < W; x++) o[x] = lut[0];
                continue;
            }
            const uint8_t *row = src + c * hw + (size_t)sy * W;
            if (v->dx == 0) {
                if (v->flip)
                    for (int x = 0; x < W; x++) o[x] = lut[row[W - 1 - x]];
                else
                    for (int x = 0; x < W; x++) o[x] = lut[row[x]];
                continue;
            }
            for (int x = 0; x < W; x++) { /* shifted, then flipped */
                int sx = (v->flip ? W - 1 - x : x) + v->dx;
                o[x] = sx < 0 || sx >= W ? lut[0] : lut[row[sx]];
            }
        }
}

/* Image, zoomed view: bilinear, black outside. */
static void image_zoom(const DlDataset *d, const uint8_t *src, float *dst, const View *v, const float *lut)
{
    int H = d->H, W = d->W;
    size_t hw = (size_t)H * W;
    for (int y = 0; y < H; y++) {
        float fy = src_coord((float)y, H, v->s) + (float)v->dy;
        int y0 = (int)floorf(fy);
        float ly = fy - (float)y0;
        for (int x = 0; x < W; x++) {
            float fx = src_coord((float)(v->flip ? W - 1 - x : x), W, v->s) + (float)v->dx;
            int x0 = (int)floorf(fx);
            float lx = fx - (float)x0;
            for (int c = 0; c < d->C; c++) {
                const uint8_t *p = src + c * hw;
                float t[2][2];
                for (int a = 0; a < 2; a++)
                    for (int b = 0; b < 2; b++) {
                        int yy = y0 + a, xx = x0 + b;
                        t[a][b] = yy < 0 || yy >= H || xx < 0 || xx >= W ? lut[0] : lut[p[(size_t)yy * W + xx]];
                    }
                dst[c * hw + (size_t)y * W + x] =
                    (1 - ly) * ((1 - lx) * t[0][0] + lx * t[0][1]) + ly * ((1 - lx) * t[1][0] + lx * t[1][1]);
            }
        }
    }
}

/* Label map: the nearest source pixel of the same view, 255 outside. */
static void mask_view(const DlDataset *d, const float *src, uint8_t *dst, const View *v)
{
    int H = d->H, W = d->W;
    for (int y = 0; y < H; y++) {
        int sy = v->s == 1.0f ? y + v->dy : (int)floorf(src_coord((float)y, H, v->s) + 0.5f) + v->dy;
        for (int x = 0; x < W; x++) {
            int ox = v->flip ? W - 1 - x : x;
            int sx = v->s == 1.0f ? ox + v->dx : (int)floorf(src_coord((float)ox, W, v->s) + 0.5f) + v->dx;
            float c = sy < 0 || sy >= H || sx < 0 || sx >= W ? 255.0f : src[(size_t)sy * W + sx];
            dst[(size_t)y * W + x] = c >= 0 && c < 255 ? (uint8_t)c : 255;
        }
    }
}

void dl_data_batch(const DlDataset *d, const int *idx, int B, int augment, uint64_t seed, int epoch,
                   float *image, float *label, uint8_t *masks)
{
    int A = d->nlabels;
    size_t hw = (size_t)d->H * d->W, chw = (size_t)d->C * hw;
    float lut[256]; /* x = lo + (hi-lo) v/255 */
    for (int v = 0; v < 256; v++) lut[v] = d->lo + (d->hi - d->lo) * (float)v / 255.0f;
    for (int b = 0; b < B; b++) {
        int i = idx[b];
        View v = view_of(d, i, augment, seed, epoch);
        for (int a = 0; label && a < A; a++) {
            float l = d->labels[(size_t)i * A + a];
            label[(size_t)b * A + a] = v.flip && d->negate[a] ? -l : l;
        }
        if (masks && d->mask_field >= 0 && d->mask_field < d->ndist && d->dist_width[d->mask_field] == (int)hw)
            mask_view(d, d->dist[d->mask_field] + (size_t)i * hw, masks + (size_t)b * hw, &v);
        if (!image) continue;
        if (d->features) {
            memcpy(image + (size_t)b * d->C, d->vectors + (size_t)i * d->C, (size_t)d->C * sizeof *image);
            continue;
        }
        const uint8_t *src = d->pixels + (size_t)i * chw;
        if (v.s == 1.0f) image_copy(d, src, image + (size_t)b * chw, &v, lut);
        else image_zoom(d, src, image + (size_t)b * chw, &v, lut);
    }
}
