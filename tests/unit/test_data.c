/* test_data.c - the data loader (runtime/data.c, sources.c, image.c, rng.c).
 *
 * Builds tiny data sets in a temporary folder (JPEGs written with
 * libturbojpeg's compressor): a csv manifest with a quoted field, a UTKFace
 * folder with one malformed name, a Pointing'04-like folder with face boxes and
 * a folds file.  Checks labels, splits, bad-sample handling, pixel values of
 * constant-colour images, the face-box crop, the flip with yaw negation,
 * shuffling, and that the thread count does not change the result.
 * Then, when the data root is there (skipped with a message otherwise), the
 * real UTKFace manifest (7,010 / 1,769) and Pointing'04 fold1 (2,232 / 558),
 * printing the decode times.  DLDL_TEST_FULL=1 also scans the real UTKFace
 * folder (8,781 files, two malformed names).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <turbojpeg.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../runtime/data.h"

static char tmpdir[] = "/tmp/dldl_test_data_XXXXXX";

/* ---- helpers -------------------------------------------------------------- */

typedef void (*PixelFn)(int x, int y, int w, int h, unsigned char rgb[3]);

static void write_jpeg(const char *rel, int w, int h, PixelFn fn)
{
    unsigned char *rgb = dl_xmalloc((size_t)w * h * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) fn(x, y, w, h, rgb + ((size_t)y * w + x) * 3);
    tjhandle tj = tjInitCompress();
    unsigned char *jpg = NULL;
    unsigned long size = 0;
    assert_int_equal(tjCompress2(tj, rgb, w, 0, h, TJPF_RGB, &jpg, &size, TJSAMP_444, 100, 0), 0);
    char *path = dl_xasprintf("%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(jpg, 1, size, f), size);
    fclose(f);
    free(path);
    tjFree(jpg);
    tjDestroy(tj);
    free(rgb);
}

static void write_text(const char *rel, const char *text)
{
    char *path = dl_xasprintf("%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static void make_dir(const char *rel)
{
    char *path = dl_xasprintf("%s/%s", tmpdir, rel);
    mkdir(path, 0755);
    free(path);
}

static void px_orange(int x, int y, int w, int h, unsigned char c[3]) { c[0] = 200, c[1] = 100, c[2] = 50; }
/* noise: a JPEG whose entropy-coded data dominates the file */
static void px_noise(int x, int y, int w, int h, unsigned char c[3])
{
    unsigned v = ((unsigned)x * 73856093u) ^ ((unsigned)y * 19349663u);
    c[0] = (unsigned char)v, c[1] = (unsigned char)(v >> 8), c[2] = (unsigned char)(v >> 16);
}
/* left half red, right half blue */
static void px_halves(int x, int y, int w, int h, unsigned char c[3])
{
    c[0] = x < w / 2 ? 255 : 0, c[1] = 0, c[2] = x < w / 2 ? 0 : 255;
}
/* a green 32x32 square at (32..63, 16..47) on black; 96x72 */
static void px_square(int x, int y, int w, int h, unsigned char c[3])
{
    int in = x >= 32 && x < 64 && y >= 16 && y < 48;
    c[0] = 0, c[1] = in ? 255 : 0, c[2] = 0;
}

/* A plan holding only a data binding: "key=value" strings, NULL-terminated. */
static DlPlan *plan_of(const char *const *kvs)
{
    DlPlan *p = dl_xcalloc(1, sizeof *p);
    int n = 0;
    while (kvs[n]) n++;
    p->data = dl_xcalloc((size_t)n, sizeof *p->data);
    for (int i = 0; i < n; i++) {
        const char *eq = strchr(kvs[i], '=');
        p->data[i].key = dl_xstrndup(kvs[i], (size_t)(eq - kvs[i]));
        p->data[i].val = dl_xstrdup(eq + 1);
    }
    p->ndata = n;
    return p;
}

static void plan_free(DlPlan *p)
{
    for (int i = 0; i < p->ndata; i++) {
        free(p->data[i].key);
        free(p->data[i].val);
    }
    free(p->data);
    free(p);
}

/* Run dl_data_load with stderr captured into *log (malloc'd). */
static int load_capture(const DlPlan *p, const char *root, int skip_bad, int nthreads, DlDataset **d, char **err,
                        char **log)
{
    fflush(stderr);
    char *logpath = dl_xasprintf("%s/stderr.log", tmpdir);
    int saved = dup(2);
    FILE *f = freopen(logpath, "w", stderr);
    assert_non_null(f);
    DlDataOpts o = {.root = root, .skip_bad = skip_bad, .nthreads = nthreads, .quiet = 1};
    int rc = dl_data_load(p, &o, d, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    FILE *r = fopen(logpath, "r");
    DlBuf b = {0};
    char chunk[4096];
    size_t n;
    dl_buf_put(&b, "", 0);
    while ((n = fread(chunk, 1, sizeof chunk, r)) > 0) dl_buf_put(&b, chunk, n);
    fclose(r);
    *log = b.s;
    free(logpath);
    return rc;
}

static int setup(void **state)
{
    assert_non_null(mkdtemp(tmpdir));
    make_dir("faces");
    make_dir("utk");
    make_dir("p04");
    make_dir("p04/HPD");
    make_dir("p04/HPD/Person01");
    make_dir("p04/HPD/Person02");
    return 0;
}

static int teardown(void **state)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* ---- csv ------------------------------------------------------------------ */

static const char *const csv_plan[] = {
    "source=csv", "source.path=faces/labels.csv", "source.images=faces", "source.file=file",
    "split=column", "split.column=split", "label.count=1", "label.0=age", "label.0.from=column:age",
    "label.0.unit=years", "input.channels=3", "input.height=8", "input.width=8", "input.lo=-1",
    "input.hi=1", "crop=none", "augment.hflip=1", NULL};

static void test_csv_source(void **state)
{
    write_jpeg("faces/a.jpg", 40, 40, px_orange);
    write_jpeg("faces/b,c.jpg", 24, 30, px_orange);
    write_jpeg("faces/d.jpg", 64, 48, px_halves);
    write_text("faces/labels.csv", "file,age,split\r\n"
                                   "a.jpg,25,train\r\n"
                                   "\"b,c.jpg\",\"3.5\",test\r\n"
                                   "d.jpg,80,train\r\n");
    DlPlan *p = plan_of(csv_plan);
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;
    int rc = load_capture(p, tmpdir, 0, 2, &d, &err, &log);
    if (rc) fprintf(stderr, "%s\n%s\n", err, log);
    assert_int_equal(rc, 0);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->ntrain, 2);
    assert_int_equal(d->ntest, 1);
    assert_string_equal(d->files[1], "faces/b,c.jpg");
    assert_true(d->labels[0] == 25.0f && d->labels[1] == 3.5f && d->labels[2] == 80.0f);
    assert_int_equal(d->split[1], DL_TEST);
    assert_int_equal(d->train_idx[1], 2);
    assert_int_equal(d->test_idx[0], 1);
    assert_int_equal(d->C * d->H * d->W, 3 * 8 * 8);
    /* a constant colour stays that colour, through JPEG and resize (+-2) */
    for (int s = 0; s < 2; s++)
        for (int i = 0; i < 64; i++) {
            const uint8_t *px = d->pixels + (size_t)s * 192;
            assert_in_range(px[i], 198, 202);
            assert_in_range(px[64 + i], 98, 102);
            assert_in_range(px[128 + i], 48, 52);
        }
    /* floats: lo + (hi-lo) v/255 */
    int idx[1] = {0};
    float img[192], lab[1];
    dl_data_batch(d, idx, 1, 0, 0, 0, img, lab, NULL);
    assert_float_equal(img[0], -1.0f + 2.0f * d->pixels[0] / 255.0f, 1e-6);
    assert_float_equal(img[191], -1.0f + 2.0f * d->pixels[191] / 255.0f, 1e-6);
    assert_true(lab[0] == 25.0f);
    dl_data_free(d);
    free(log);
    plan_free(p);
}

static void test_csv_errors(void **state)
{
    DlPlan *p = plan_of(csv_plan);
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;

    write_text("faces/labels.csv", "file,age,split\na.jpg,25,train\nd.jpg,80,validation\n");
    assert_int_equal(load_capture(p, tmpdir, 1, 1, &d, &err, &log), -1);
    assert_non_null(strstr(err, "faces/labels.csv:3: split 'validation' is neither 'train' nor 'test'"));
    free(err), free(log);

    write_text("faces/labels.csv", "file,years,split\na.jpg,25,train\n");
    assert_int_equal(load_capture(p, tmpdir, 1, 1, &d, &err, &log), -1);
    assert_non_null(strstr(err, "faces/labels.csv: no column 'age' (columns: file, years, split)"));
    free(err), free(log);

    write_text("faces/labels.csv", "file,age,split,age\na.jpg,25,train,26\n"); /* which age? */
    assert_int_equal(load_capture(p, tmpdir, 1, 1, &d, &err, &log), -1);
    assert_non_null(strstr(err, "faces/labels.csv:1: column 'age' appears twice in the header (columns 2 and 4)"));
    free(err), free(log);

    write_text("faces/labels.csv", "file,age,split\n\"a.jpg,25,train\n");
    assert_int_equal(load_capture(p, tmpdir, 1, 1, &d, &err, &log), -1);
    assert_non_null(strstr(err, "faces/labels.csv:2: unterminated quoted field"));
    free(err), free(log);

    /* an unlabelable row, a missing image, a text file and a truncated JPEG
     * are bad samples, skipped with skip_bad */
    write_text("faces/text.jpg", "hello\n");
    write_jpeg("faces/cut.jpg", 128, 128, px_noise);
    char *cut = dl_xasprintf("%s/faces/cut.jpg", tmpdir);
    struct stat st;
    assert_int_equal(stat(cut, &st), 0);
    assert_int_equal(truncate(cut, st.st_size / 2), 0);
    free(cut);
    /* a small JPEG whose header claims 20000 x 20000 pixels (1.2 GB decoded): refused before decoding */
    write_jpeg("faces/huge.jpg", 16, 16, px_noise);
    char *hp = dl_xasprintf("%s/faces/huge.jpg", tmpdir);
    FILE *hf = fopen(hp, "r+b");
    assert_non_null(hf);
    unsigned char buf[4096];
    size_t hn = fread(buf, 1, sizeof buf, hf);
    size_t sof = 0;
    for (size_t i = 2; i + 8 < hn && !sof; i++)
        if (buf[i] == 0xFF && (buf[i + 1] == 0xC0 || buf[i + 1] == 0xC2)) sof = i;
    assert_true(sof > 0);
    buf[sof + 5] = 0x4E, buf[sof + 6] = 0x20, buf[sof + 7] = 0x4E, buf[sof + 8] = 0x20; /* height, width */
    fseek(hf, 0, SEEK_SET);
    assert_int_equal(fwrite(buf, 1, hn, hf), hn);
    fclose(hf);
    free(hp);
    char *dir = dl_xasprintf("%s/faces/dir.jpg", tmpdir);
    assert_int_equal(mkdir(dir, 0755), 0);
    free(dir);
    write_text("faces/labels.csv", "file,age,split\na.jpg,old,train\nnope.jpg,3,test\nd.jpg,80,train\n"
                                   "text.jpg,1,train\ncut.jpg,2,test\na.jpg,inf,train\na.jpg,1e39,test\n"
                                   "huge.jpg,4,train\ndir.jpg,5,train\n");
    assert_int_equal(load_capture(p, tmpdir, 0, 1, &d, &err, &log), -1);
    assert_string_equal(err, "8 bad samples (see above); --skip-bad skips them");
    assert_non_null(strstr(log, "faces/huge.jpg: the JPEG claims 20000 x 20000 pixels, more than the 50000000 an "
                                "image may have\n"));
    assert_non_null(strstr(log, "faces/dir.jpg: cannot read: Is a directory\n"));
    assert_non_null(strstr(log, "faces/labels.csv:2: age 'old' is not a number\n"));
    assert_non_null(strstr(log, "faces/labels.csv:7: age 'inf' is not a number\n")); /* skipped, not a crash later */
    assert_non_null(strstr(log, "faces/labels.csv:8: age '1e39' is not a number\n"));
    assert_non_null(strstr(log, "faces/nope.jpg: cannot read: No such file or directory\n"));
    assert_non_null(strstr(log, "faces/text.jpg: not a readable JPEG: "));
    assert_non_null(strstr(log, "faces/cut.jpg: damaged JPEG: "));
    free(err), free(log);
    assert_int_equal(load_capture(p, tmpdir, 1, 1, &d, &err, &log), 0);
    assert_int_equal(d->n, 1);
    assert_int_equal(d->nskipped, 8);
    dl_data_free(d);
    free(log);

    DlDataOpts o = {.root = "/nonexistent/dldl-data", .quiet = 1};
    assert_int_equal(dl_data_load(p, &o, &d, &err), -1);
    assert_non_null(strstr(err, "data root '/nonexistent/dldl-data' not found"));
    free(err);
    plan_free(p);
}

/* ---- utkface ------------------------------------------------------------- */

static void test_utkface_source(void **state)
{
    write_jpeg("utk/1_0_0_20170109150557335.jpg.chip.jpg", 20, 20, px_orange);
    write_jpeg("utk/25_1_2_20170116174525125.jpg.chip.jpg", 20, 20, px_orange);
    write_jpeg("utk/61_1_20170109142408075.jpg.chip.jpg", 20, 20, px_orange); /* race missing */
    write_jpeg("utk/9_0_1_20161219204347420.jpg.chip.jpg", 20, 20, px_orange);
    write_text("utk/README.txt", "not an image\n");
    write_text("utk_split.csv", "file,age,split\n"
                                "1_0_0_20170109150557335.jpg.chip.jpg,1,test\n"
                                "25_1_2_20170116174525125.jpg.chip.jpg,25,train\n"
                                "9_0_1_20161219204347420.jpg.chip.jpg,9,train\n");
    static const char *const kvs[] = {
        "source=utkface", "source.path=utk", "split=column", "split.column=split",
        "split.path=utk_split.csv", "label.count=2", "label.0=age", "label.0.from=name:age",
        "label.1=race", "label.1.from=name:race", "input.channels=1", "input.height=4",
        "input.width=4", NULL};
    DlPlan *p = plan_of(kvs);
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;
    assert_int_equal(load_capture(p, tmpdir, 0, 2, &d, &err, &log), -1);
    if (strcmp(err, "1 bad sample (see above); --skip-bad skips it")) fprintf(stderr, "%s", log);
    assert_string_equal(err, "1 bad sample (see above); --skip-bad skips it");
    assert_non_null(strstr(log, "utk/61_1_20170109142408075.jpg.chip.jpg: malformed UTKFace name "
                                "(expected AGE_GENDER_RACE_DATE.jpg.chip.jpg)"));
    free(err), free(log);

    assert_int_equal(load_capture(p, tmpdir, 1, 2, &d, &err, &log), 0);
    assert_int_equal(d->nskipped, 1);
    assert_int_equal(d->n, 3);
    /* sorted by name: 1_, 25_, 9_ */
    assert_string_equal(d->files[2], "utk/9_0_1_20161219204347420.jpg.chip.jpg");
    assert_true(d->labels[0] == 1 && d->labels[1] == 0);
    assert_true(d->labels[2] == 25 && d->labels[3] == 2);
    assert_true(d->labels[4] == 9 && d->labels[5] == 1);
    assert_int_equal(d->ntrain, 2);
    assert_int_equal(d->test_idx[0], 0);
    /* grayscale: the luminance of (200,100,50) = 124.2 */
    assert_int_equal(d->C, 1);
    for (int i = 0; i < d->n * 16; i++) assert_in_range(d->pixels[i], 122, 126);
    dl_data_free(d);
    free(log);

    /* a file missing from the split file is a bad sample */
    write_text("utk_split.csv", "file,age,split\n"
                                "25_1_2_20170116174525125.jpg.chip.jpg,25,train\n"
                                "9_0_1_20161219204347420.jpg.chip.jpg,9,train\n");
    assert_int_equal(load_capture(p, tmpdir, 1, 2, &d, &err, &log), 0);
    assert_int_equal(d->nskipped, 2);
    assert_non_null(strstr(log, "utk/1_0_0_20170109150557335.jpg.chip.jpg: not in utk_split.csv"));
    dl_data_free(d);
    free(log);
    plan_free(p);
}

/* ---- pointing04 ----------------------------------------------------------- */

static const char *const p04_plan[] = {
    "source=pointing04", "source.path=p04/HPD", "split=folds", "split.column=fold1",
    "split.path=p04/folds.csv", "label.count=2", "label.0=pitch", "label.0.from=name:pitch",
    "label.1=yaw", "label.1.from=name:yaw", "input.channels=3", "input.height=8", "input.width=8",
    "input.lo=0", "input.hi=1", "crop=face_box", "crop.scale=1.0", "augment.hflip=1",
    "augment.hflip.negate=1", NULL};

static void write_box(const char *rel, const char *name, int cx, int cy, int w, int h)
{
    char *t = dl_xasprintf("%s\n\nFace\n%d\n%d\n%d\n%d\n", name, cx, cy, w, h);
    write_text(rel, t);
    free(t);
}

static void make_p04(void)
{
    write_jpeg("p04/HPD/Person01/person01100-90+0.jpg", 96, 72, px_square);
    write_box("p04/HPD/Person01/person01100-90+0.txt", "person01100-90+0.jpg", 48, 32, 32, 32);
    write_jpeg("p04/HPD/Person01/person01146+0+0.jpg", 96, 72, px_halves);
    write_box("p04/HPD/Person01/person01146+0+0.txt", "person01146+0+0.jpg", 48, 36, 40, 30);
    write_jpeg("p04/HPD/Person02/person02252+30-75.jpg", 96, 72, px_halves);
    write_box("p04/HPD/Person02/person02252+30-75.txt", "person02252+30-75.jpg", 4, 4, 20, 20);
    write_text("p04/folds.csv", "file,fold1,fold2\n"
                                "HPD/Person01/person01100-90+0.jpg,train,test\n"
                                "HPD/Person01/person01146+0+0.jpg,train,train\n"
                                "HPD/Person02/person02252+30-75.jpg,test,train\n");
}

static void test_pointing04_source(void **state)
{
    make_p04();
    DlPlan *p = plan_of(p04_plan);
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;
    int rc = load_capture(p, tmpdir, 0, 2, &d, &err, &log);
    if (rc) fprintf(stderr, "%s\n%s\n", err, log);
    assert_int_equal(rc, 0);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->ntrain, 2);
    assert_int_equal(d->ntest, 1);
    float want[] = {-90, 0, 0, 0, 30, -75};
    for (int i = 0; i < 6; i++) assert_true(d->labels[i] == want[i]);
    assert_string_equal(d->files[2], "p04/HPD/Person02/person02252+30-75.jpg");
    /* the crop is exactly the green square: every pixel green */
    for (int i = 0; i < 64; i++) {
        assert_in_range(d->pixels[i], 0, 12);
        assert_in_range(d->pixels[64 + i], 243, 255);
        assert_in_range(d->pixels[128 + i], 0, 12);
    }
    /* person01146+0+0: red left, blue right, around the middle column */
    const uint8_t *h = d->pixels + 192;
    assert_true(h[0] > 240 && h[128] < 15 && h[7] < 15 && h[128 + 7] > 240);

    /* the flip: find a seed that flips sample 1 at epoch 3 */
    uint64_t seed = 0;
    while (dl_rng_uniform(seed, 3, 1, 1) >= 0.5f) seed++;
    int idx[1] = {1};
    float plain[192], flipped[192], lab[2], labf[2];
    dl_data_batch(d, idx, 1, 0, seed, 3, plain, lab, NULL);
    dl_data_batch(d, idx, 1, 1, seed, 3, flipped, labf, NULL);
    assert_true(lab[0] == 0 && lab[1] == 0);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < 8; y++)
            for (int x = 0; x < 8; x++)
                assert_true(flipped[c * 64 + y * 8 + x] == plain[c * 64 + y * 8 + 7 - x]);
    int idx2[1] = {2};
    while (dl_rng_uniform(seed, 3, 2, 1) >= 0.5f) seed++;
    dl_data_batch(d, idx2, 1, 1, seed, 3, NULL, labf, NULL);
    assert_true(labf[0] == 30 && labf[1] == 75); /* yaw negated, pitch kept */
    while (dl_rng_uniform(seed, 3, 2, 1) < 0.5f) seed++;
    dl_data_batch(d, idx2, 1, 1, seed, 3, NULL, labf, NULL);
    assert_true(labf[0] == 30 && labf[1] == -75);

    /* the same file through the one-image path (its .txt gives the box) */
    float one[192];
    char *path = dl_xasprintf("%s/p04/HPD/Person01/person01100-90+0.jpg", tmpdir);
    assert_int_equal(dl_data_load_image(p, path, one, &err), 0);
    for (int i = 0; i < 192; i++) assert_float_equal(one[i], d->pixels[i] / 255.0f, 1e-6);
    free(path);

    /* one thread or two: the same bytes */
    DlDataset *d1 = NULL;
    free(log);
    assert_int_equal(load_capture(p, tmpdir, 0, 1, &d1, &err, &log), 0);
    assert_memory_equal(d1->pixels, d->pixels, (size_t)d->n * 192);
    dl_data_free(d1);
    dl_data_free(d);
    free(log);

    /* a missing box file and a malformed name are reported by file */
    write_jpeg("p04/HPD/Person02/person02253+30.jpg", 16, 16, px_orange);
    write_jpeg("p04/HPD/Person02/person02254+30-60.jpg", 16, 16, px_orange);
    assert_int_equal(load_capture(p, tmpdir, 0, 1, &d, &err, &log), -1);
    assert_non_null(strstr(log, "p04/HPD/Person02/person02253+30.jpg: malformed Pointing'04 name"));
    assert_non_null(strstr(log, "p04/HPD/Person02/person02254+30-60.jpg: person02254+30-60.txt: cannot read"));
    assert_string_equal(err, "2 bad samples (see above); --skip-bad skips them");
    free(err), free(log);
    char *rm = dl_xasprintf("%s/p04/HPD/Person02/person02253+30.jpg", tmpdir);
    unlink(rm);
    free(rm);
    rm = dl_xasprintf("%s/p04/HPD/Person02/person02254+30-60.jpg", tmpdir);
    unlink(rm);
    free(rm);
    plan_free(p);
}

static void test_shuffle(void **state)
{
    DlDataset d = {0};
    int n = 100;
    d.ntrain = n;
    d.train_idx = dl_xmalloc((size_t)n * sizeof(int));
    for (int i = 0; i < n; i++) d.train_idx[i] = 2 * i + 1;
    int a[100], b[100], c[100], seen[201] = {0};
    dl_data_shuffle(&d, 7, 0, a);
    dl_data_shuffle(&d, 7, 0, b);
    dl_data_shuffle(&d, 7, 1, c);
    assert_memory_equal(a, b, sizeof a);
    assert_memory_not_equal(a, c, sizeof a);
    for (int i = 0; i < n; i++) seen[a[i]]++;
    for (int i = 0; i < n; i++) assert_int_equal(seen[2 * i + 1], 1);
    free(d.train_idx);
    /* the rng: pure, [0,1), roughly half below 0.5 */
    assert_true(dl_rng_u64(1, 2, 3, 4) == dl_rng_u64(1, 2, 3, 4));
    assert_true(dl_rng_u64(1, 2, 3, 4) != dl_rng_u64(1, 2, 4, 3));
    int below = 0;
    for (int i = 0; i < 10000; i++) {
        float u = dl_rng_uniform(0, 0, (uint64_t)i, 1);
        assert_true(u >= 0 && u < 1);
        below += u < 0.5f;
    }
    assert_in_range(below, 4800, 5200);
}

/* ---- the real data sets --------------------------------------------------- */

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int have(const char *rel)
{
    char *p = dl_xasprintf("%s/%s", dl_data_root(), rel);
    int ok = access(p, R_OK) == 0;
    free(p);
    if (!ok) printf("SKIPPED: %s/%s not found (set DLDL_DATA)\n", dl_data_root(), rel);
    return ok;
}

static void test_real_utkface(void **state)
{
    if (!have("utkface/labels.csv")) return;
    static const char *const kvs[] = {
        "source=csv", "source.path=utkface/labels.csv", "source.images=utkface/images", "source.file=file",
        "split=column", "split.column=split", "label.count=1", "label.0=age", "label.0.from=column:age",
        "input.channels=3", "input.height=64", "input.width=64", "input.lo=-1", "input.hi=1", NULL};
    DlPlan *p = plan_of(kvs);
    DlDataset *d = NULL;
    char *err = NULL;
    DlDataOpts o = {.root = dl_data_root(), .nthreads = 2, .quiet = 1};
    double t0 = now_s();
    int rc = dl_data_load(p, &o, &d, &err);
    double dt = now_s() - t0;
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    printf("utkface/labels.csv: %d samples decoded to 3x64x64 in %.2f s (2 threads)\n", d->n, dt);
    assert_int_equal(d->ntrain, 7010);
    assert_int_equal(d->ntest, 1769);
    assert_int_equal(d->nskipped, 0);
    assert_string_equal(d->files[0], "utkface/images/100_1_0_20170110183726390.jpg.chip.jpg");
    assert_true(d->labels[0] == 100.0f);
    dl_data_free(d);
    plan_free(p);

    if (!getenv("DLDL_TEST_FULL")) return;
    static const char *const scan[] = {
        "source=utkface", "source.path=utkface/images", "split=column", "split.column=split",
        "split.path=utkface/labels.csv", "label.count=1", "label.0=age", "label.0.from=name:age",
        "input.channels=3", "input.height=64", "input.width=64", NULL};
    p = plan_of(scan);
    o.skip_bad = 1;
    o.quiet = 0;
    t0 = now_s();
    rc = dl_data_load(p, &o, &d, &err);
    dt = now_s() - t0;
    assert_int_equal(rc, 0);
    printf("utkface/images scan: %d samples + %d skipped in %.2f s\n", d->n, d->nskipped, dt);
    assert_int_equal(d->nskipped, 2);
    assert_int_equal(d->ntrain, 7010);
    dl_data_free(d);
    plan_free(p);
}

static void test_real_pointing04(void **state)
{
    if (!have("pointing04/folds.csv")) return;
    static const char *const kvs[] = {
        "source=pointing04", "source.path=pointing04/HeadPoseImageDatabase", "split=folds",
        "split.column=fold1", "split.path=pointing04/folds.csv", "label.count=2", "label.0=pitch",
        "label.0.from=name:pitch", "label.1=yaw", "label.1.from=name:yaw", "input.channels=3",
        "input.height=64", "input.width=64", "input.lo=-1", "input.hi=1", "crop=face_box", "crop.scale=1.0",
        "augment.hflip=1", "augment.hflip.negate=1", NULL};
    DlPlan *p = plan_of(kvs);
    DlDataset *d = NULL;
    char *err = NULL;
    DlDataOpts o = {.root = dl_data_root(), .nthreads = 2, .quiet = 1};
    double t0 = now_s();
    int rc = dl_data_load(p, &o, &d, &err);
    double dt = now_s() - t0;
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    printf("pointing04 fold1: %d samples cropped to 3x64x64 in %.2f s (2 threads)\n", d->n, dt);
    assert_int_equal(d->ntrain, 2232);
    assert_int_equal(d->ntest, 558);
    assert_string_equal(d->files[0], "pointing04/HeadPoseImageDatabase/Person01/person01100-90+0.jpg");
    assert_true(d->labels[0] == -90 && d->labels[1] == 0);
    assert_string_equal(d->files[1], "pointing04/HeadPoseImageDatabase/Person01/person01101-60-90.jpg");
    assert_true(d->labels[2] == -60 && d->labels[3] == -90);
    dl_data_free(d);
    plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_source),      cmocka_unit_test(test_csv_errors),
        cmocka_unit_test(test_utkface_source),  cmocka_unit_test(test_pointing04_source),
        cmocka_unit_test(test_shuffle),         cmocka_unit_test(test_real_utkface),
        cmocka_unit_test(test_real_pointing04),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
