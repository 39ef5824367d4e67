/* image.c - one image file -> uint8 [C,H,W] (runtime/data_impl.h image_load).
 *
 * Decode (libjpeg-turbo, accurate integer DCT, fancy upsampling), optionally
 * crop a square around a face box, resize with stb_image_resize and store
 * planar (NCHW without the N).  The resize uses a triangle filter in the
 * linear colour space (no sRGB decode): for downscaling the triangle is
 * widened by the scale factor, which is what PIL's Image.resize(BILINEAR)
 * does, so the pixels match the PyTorch reference (tests/reference/torch_age.py)
 * up to rounding at the image border.
 *
 * Speed: when the region used is at least 4x the target size on both sides,
 * the JPEG is decoded at the smallest DCT scaling factor (1/8 .. 1) that still
 * leaves it at least 2x the target, and the resize does the rest.  Below 4x
 * (UTKFace's 200 -> 64, Pointing'04's face crops) the full image is decoded,
 * so the result does not depend on the decoder's scaling.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <turbojpeg.h>

#define STB_IMAGE_RESIZE_IMPLEMENTATION
/* stb_image_resize 0.97 asserts `total < 1.1f` on the summed filter weights of
 * many downscales with a ratio in (0.5, 1), e.g. 85 -> 64 (nothings/stb#1449,
 * open): a sanity check only, since the weights are renormalised to sum 1 on
 * the next line.  Release builds (NDEBUG) skip it; so do we.  Checked against a
 * transcription of PIL's Resample.c: interior pixels within 1 of PIL for
 * 200, 150, 126, 100, 85, 78 -> 64. */
#define STBIR_ASSERT(x) ((void)0)
#include <stb/stb_image_resize.h>

#include "../common/util.h"
#include "data_impl.h"

/* Scratch buffers grow as needed and are kept for the next image. */
typedef struct Scratch {
    unsigned char *p;
    size_t cap;
} Scratch;

struct ImageDecoder {
    tjhandle tj;
    Scratch file, full, crop, small;
};

static unsigned char *scratch(Scratch *s, size_t n)
{
    if (n > s->cap) {
        free(s->p);
        s->p = dl_xmalloc(n);
        s->cap = n;
    }
    return s->p;
}

ImageDecoder *image_decoder_new(void)
{
    ImageDecoder *d = dl_xcalloc(1, sizeof *d);
    d->tj = tjInitDecompress();
    if (!d->tj) {
        free(d);
        return NULL;
    }
    return d;
}

void image_decoder_free(ImageDecoder *d)
{
    if (!d) return;
    tjDestroy(d->tj);
    free(d->file.p);
    free(d->full.p);
    free(d->crop.p);
    free(d->small.p);
    free(d);
}

/* Bounds on an image, checked before decoding: the file's size and the pixel
 * count its header claims (the data sets' largest are VOC's 500 x 500 and
 * Pointing'04's 384 x 288; a camera photo is under 50 megapixels).  A small
 * JPEG claiming 20000 x 20000 would otherwise take 1.2 GB to decode. */
#define IMAGE_MAX_BYTES ((size_t)64 << 20)
#define IMAGE_MAX_PIXELS ((int64_t)50000000)

/* Read a whole file into d->file; returns its size or -1 (errno set: EFBIG
 * past IMAGE_MAX_BYTES, EISDIR for a directory). */
static long read_all(ImageDecoder *d, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode) || (size_t)st.st_size > IMAGE_MAX_BYTES) {
        errno = S_ISDIR(st.st_mode) ? EISDIR : S_ISREG(st.st_mode) ? EFBIG : EINVAL;
        fclose(f);
        return -1;
    }
    size_t n = 0;
    if (d->file.cap == 0) scratch(&d->file, 1 << 16);
    for (;;) {
        if (n == d->file.cap) {
            d->file.cap *= 2;
            d->file.p = dl_xrealloc(d->file.p, d->file.cap);
        }
        size_t r = fread(d->file.p + n, 1, d->file.cap - n, f);
        n += r;
        if (r == 0) break;
        if (n > IMAGE_MAX_BYTES) { /* it grew while being read */
            fclose(f);
            errno = EFBIG;
            return -1;
        }
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        errno = EIO;
        return -1;
    }
    return (long)n;
}

/* The decode scale: 1/1 unless the region used (rw x rh source pixels) is at
 * least 4x the target on both sides; then the smallest factor leaving >= 2x. */
static tjscalingfactor pick_scale(double rw, double rh, int H, int W)
{
    tjscalingfactor one = {1, 1}, best = one;
    if (rw < 4.0 * W || rh < 4.0 * H) return one;
    int nf = 0;
    tjscalingfactor *f = tjGetScalingFactors(&nf);
    for (int i = 0; f && i < nf; i++) {
        double s = (double)f[i].num / f[i].denom;
        if (s > 1 || rw * s < 2.0 * W || rh * s < 2.0 * H) continue;
        if (s < (double)best.num / best.denom) best = f[i];
    }
    return best;
}

int image_load(ImageDecoder *d, const char *path, const float *box, float crop_scale,
               int C, int H, int W, uint8_t *out, char **why)
{
    long size = read_all(d, path);
    if (size < 0) {
        *why = errno == EFBIG ? dl_xasprintf("cannot read: larger than the %zu bytes an image may have", IMAGE_MAX_BYTES)
             : errno == EINVAL ? dl_xstrdup("cannot read: not a regular file")
                               : dl_xasprintf("cannot read: %s", strerror(errno));
        return -1;
    }
    int w = 0, h = 0, subsamp = 0, cs = 0;
    if (tjDecompressHeader3(d->tj, d->file.p, (unsigned long)size, &w, &h, &subsamp, &cs) != 0) {
        *why = dl_xasprintf("not a readable JPEG: %s", tjGetErrorStr2(d->tj));
        return -1;
    }
    if ((int64_t)w * h > IMAGE_MAX_PIXELS) {
        *why = dl_xasprintf("the JPEG claims %d x %d pixels, more than the %lld an image may have", w, h,
                            (long long)IMAGE_MAX_PIXELS);
        return -1;
    }
    double side = 0;
    if (box) {
        if (!(box[2] > 0 && box[3] > 0) || !isfinite(box[0]) || !isfinite(box[1])) {
            *why = dl_xasprintf("face box %gx%g at (%g, %g) is empty", box[2], box[3], box[0], box[1]);
            return -1;
        }
        side = fmax(box[2], box[3]) * (crop_scale > 0 ? crop_scale : 1.0);
    }
    tjscalingfactor sf = box ? pick_scale(side, side, H, W) : pick_scale(w, h, H, W);
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    int pf = C == 1 ? TJPF_GRAY : TJPF_RGB;
    unsigned char *full = scratch(&d->full, (size_t)sw * sh * C);
    /* A warning (truncated or corrupt data) still yields an image, partly grey:
     * refused like an error, as PIL refuses a truncated file. */
    if (tjDecompress2(d->tj, d->file.p, (unsigned long)size, full, sw, 0, sh, pf, 0) != 0) {
        *why = dl_xasprintf("%s JPEG: %s", tjGetErrorCode(d->tj) == TJERR_WARNING ? "damaged" : "cannot decode",
                            tjGetErrorStr2(d->tj));
        return -1;
    }

    const unsigned char *src = full;
    int srcw = sw, srch = sh;
    if (box) {
        /* The square in decoded pixels; outside the image the edge pixels repeat. */
        double f = (double)sf.num / sf.denom;
        int s = (int)lround(side * f);
        if (s < 1) s = 1;
        long x0 = lround(box[0] * f - s / 2.0), y0 = lround(box[1] * f - s / 2.0);
        unsigned char *crop = scratch(&d->crop, (size_t)s * s * C);
        for (int y = 0; y < s; y++) {
            long yy = y0 + y;
            yy = yy < 0 ? 0 : yy >= sh ? sh - 1 : yy;
            for (int x = 0; x < s; x++) {
                long xx = x0 + x;
                xx = xx < 0 ? 0 : xx >= sw ? sw - 1 : xx;
                memcpy(crop + ((size_t)y * s + x) * C, full + ((size_t)yy * sw + xx) * C, (size_t)C);
            }
        }
        src = crop;
        srcw = srch = s;
    }

    unsigned char *small = scratch(&d->small, (size_t)W * H * C);
    if (!stbir_resize_uint8_generic(src, srcw, srch, 0, small, W, H, 0, C, STBIR_ALPHA_CHANNEL_NONE, 0,
                                    STBIR_EDGE_CLAMP, STBIR_FILTER_TRIANGLE, STBIR_COLORSPACE_LINEAR,
                                    NULL)) {
        *why = dl_xasprintf("cannot resize %dx%d to %dx%d", srcw, srch, W, H);
        return -1;
    }
    /* HWC -> CHW */
    for (int c = 0; c < C; c++)
        for (int i = 0; i < H * W; i++) out[(size_t)c * H * W + i] = small[(size_t)i * C + c];
    return 0;
}
