/* test_voc.c - PASCAL VOC lists, annotations and label maps (runtime/voc.c).
 *
 * Files written into a temporary folder: image lists (blank lines, CRLF; then
 * a per-class "id -1" line, a duplicate id, an empty list, a missing file);
 * annotations read (presence by the VOC convention: a difficult-only class is
 * 0, a body part's name is not a class, a missing `difficult` is 0, white
 * space around values) and refused, each with its exact message: malformed
 * and truncated XML, an empty file, the wrong root, an unknown class, a
 * 300-byte class name, a missing, zero, fractional or huge size, a
 * duplicated width, a bad difficult flag, an object without a name, 10001
 * objects, a file over 1 MiB, an external entity (a file holding "dog" that
 * must not be read)
 * and an entity-expansion bomb; label maps read (palette and greyscale,
 * interlaced, a short palette) and refused: not a PNG, RGB, 16-bit grey,
 * 4-bit palette, index 77, a header claiming 100000x100000, a truncated
 * file, a damaged IDAT checksum, a missing IEND; a mask whose size differs
 * from its image.
 * Then, when the data root is there (skipped with a message otherwise), the
 * real voc2012/: every annotation of ImageSets/Main/subset.txt against
 * labels.csv (size, segmented, object and difficult counts, the 20 presence
 * values), and every mask of ImageSets/Segmentation/subset.txt: indices in
 * {0..20, 255}, its size that of its annotation and of its JPEG; the class
 * and void pixel counts are printed.
 * DLDL_TEST_VERBOSE=1 prints every error message checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../runtime/voc.h"

static char tmpdir[] = "/tmp/dldl_test_voc_XXXXXX";

/* ---- helpers ------------------------------------------------------------------ */

static char *tpath(const char *rel) { return dl_xasprintf("%s/%s", tmpdir, rel); }

static void write_bytes(const char *rel, const void *data, size_t n)
{
    char *p = tpath(rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    free(p);
}

static void write_text(const char *rel, const char *text) { write_bytes(rel, text, strlen(text)); }

static unsigned char *slurp(const char *path, size_t *n)
{
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, (size_t)1 << 30, &b, &why)) fprintf(stderr, "%s: %s\n", path, why);
    assert_null(why);
    *n = b.n;
    return (unsigned char *)b.s;
}

static int verbose(void) { return getenv("DLDL_TEST_VERBOSE") != NULL; }

/* An error message: one line; must equal want, or start with it when prefix. */
static void check_msg(int rc, char *err, const char *want, int prefix)
{
    assert_int_equal(rc, -1);
    assert_non_null(err);
    assert_null(strchr(err, '\n'));
    if (verbose()) printf("  %s\n", err);
    int ok = prefix ? strncmp(err, want, strlen(want)) == 0 : strcmp(err, want) == 0;
    if (!ok) fprintf(stderr, "got:  %s\nwant: %s%s\n", err, want, prefix ? "..." : "");
    assert_true(ok);
    free(err);
}

static void list_err(const char *rel, const char *want, int prefix)
{
    char *p = tpath(rel), *err = NULL;
    DlVocList l;
    int rc = dl_voc_read_list(p, rel, &l, &err);
    assert_int_equal(l.n, 0);
    assert_null(l.ids);
    assert_null(l.store);
    check_msg(rc, err, want, prefix);
    free(p);
}

static void xml_ok(const char *rel, DlVocAnnotation *a)
{
    char *p = tpath(rel), *err = NULL;
    int rc = dl_voc_read_annotation(p, rel, a, &err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_null(err);
    free(p);
}

static void xml_err(const char *rel, const char *want, int prefix)
{
    char *p = tpath(rel), *err = NULL;
    DlVocAnnotation a;
    int rc = dl_voc_read_annotation(p, rel, &a, &err);
    assert_int_equal(a.width, 0);
    assert_int_equal(a.nobjects, 0);
    check_msg(rc, err, want, prefix);
    free(p);
}

static void mask_ok(const char *rel, DlVocMask *m)
{
    char *p = tpath(rel), *err = NULL;
    int rc = dl_voc_read_mask(p, rel, m, &err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_null(err);
    assert_non_null(m->data);
    free(p);
}

static void mask_err(const char *rel, const char *want, int prefix)
{
    char *p = tpath(rel), *err = NULL;
    DlVocMask m;
    int rc = dl_voc_read_mask(p, rel, &m, &err);
    assert_null(m.data);
    assert_int_equal(m.width, 0);
    check_msg(rc, err, want, prefix);
    free(p);
}

/* Write a PNG with libpng: rows of `depth`-bit samples, `channels` per pixel
 * given as one byte (or two, for 16 bits) each; a palette of npal grey
 * entries for palette images. */
static void write_png(const char *rel, int w, int h, int type, int depth, const uint8_t *data, int npal, int interlace)
{
    char *p = tpath(rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    assert_non_null(info);
    if (setjmp(png_jmpbuf(png))) fail_msg("libpng could not write %s", rel);
    png_init_io(png, f);
    png_set_IHDR(png, info, (png_uint_32)w, (png_uint_32)h, depth, type,
                 interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    if (type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[256];
        for (int i = 0; i < npal; i++) pal[i].red = pal[i].green = pal[i].blue = (png_byte)i;
        png_set_PLTE(png, info, pal, npal);
        png_set_check_for_invalid_index(png, 0); /* indices past a short palette */
    }
    png_write_info(png, info);
    int channels = type == PNG_COLOR_TYPE_RGB ? 3 : type == PNG_COLOR_TYPE_RGB_ALPHA ? 4 : 1;
    if (depth < 8) png_set_packing(png);
    size_t rowbytes = (size_t)w * channels * (depth == 16 ? 2 : 1);
    png_bytep *rows = dl_xmalloc((size_t)h * sizeof *rows);
    for (int y = 0; y < h; y++) rows[y] = (png_bytep)data + (size_t)y * rowbytes;
    png_write_image(png, rows);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    fclose(f);
    free(rows);
    free(p);
}

static uint32_t crc32_png(const unsigned char *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return c ^ 0xffffffffu;
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24), p[1] = (unsigned char)(v >> 16), p[2] = (unsigned char)(v >> 8),
    p[3] = (unsigned char)v;
}

/* The byte offset of the first chunk of this type in a PNG file. */
static size_t find_chunk(const unsigned char *b, size_t n, const char *type)
{
    for (size_t at = 8; at + 12 <= n;) {
        size_t len = (size_t)b[at] << 24 | (size_t)b[at + 1] << 16 | (size_t)b[at + 2] << 8 | b[at + 3];
        if (memcmp(b + at + 4, type, 4) == 0) return at;
        at += 12 + len;
    }
    fail_msg("no %s chunk", type);
    return 0;
}

static int setup(void **state)
{
    assert_non_null(mkdtemp(tmpdir));
    return 0;
}

static int teardown(void **state)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc == 0 ? 0 : -1;
}

/* ---- classes and lists ------------------------------------------------------- */

static void test_classes(void **state)
{
    static const char *const want[DL_VOC_NCLASSES] = {
        "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow", "diningtable",
        "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor"};
    for (int i = 0; i < DL_VOC_NCLASSES; i++) {
        assert_string_equal(dl_voc_classes[i], want[i]);
        assert_int_equal(dl_voc_class_index(want[i]), i);
    }
    assert_int_equal(dl_voc_class_index("Dog"), -1);
    assert_int_equal(dl_voc_class_index("background"), -1);
    assert_int_equal(dl_voc_class_index(""), -1);
}

static void test_list(void **state)
{
    write_text("ok.txt", "2007_000559\n\n  \t\n2007_000629\r\nA_b9\n2011_003238"); /* no final newline */
    char *p = tpath("ok.txt"), *err = NULL;
    DlVocList l;
    assert_int_equal(dl_voc_read_list(p, "ok.txt", &l, &err), 0);
    assert_int_equal(l.n, 4);
    assert_string_equal(l.ids[0], "2007_000559");
    assert_string_equal(l.ids[1], "2007_000629");
    assert_string_equal(l.ids[2], "A_b9");
    assert_string_equal(l.ids[3], "2011_003238");
    dl_voc_list_free(&l);
    assert_null(l.ids);
    dl_voc_list_free(&l); /* twice is harmless */
    free(p);

    write_text("percls.txt", "2008_000002\n2008_000003\n2008_000007 -1\n");
    list_err("percls.txt", "percls.txt:3: expected one image id ([A-Za-z0-9_]+) per line, got '2008_000007 -1'", 0);
    write_text("path.txt", "a\n../etc/passwd\n");
    list_err("path.txt", "path.txt:2: expected one image id ([A-Za-z0-9_]+) per line, got '../etc/passwd'", 0);
    write_bytes("nul.txt", "ab\n\0cd\n", 7);
    list_err("nul.txt", "nul.txt:2: expected one image id ([A-Za-z0-9_]+) per line, got '?cd'", 0);
    write_text("dup.txt", "a\nb\n\nc\nb\n");
    list_err("dup.txt", "dup.txt:5: id 'b' is listed twice (first at line 2)", 0);
    char longid[300];
    memset(longid, 'x', 256);
    strcpy(longid + 256, "\n");
    write_text("long.txt", longid);
    list_err("long.txt", "long.txt:1: id of 256 characters, more than the 255 allowed", 0);
    write_text("empty.txt", "\n\n");
    list_err("empty.txt", "empty.txt: no ids (an empty list)", 0);
    list_err("missing.txt", "missing.txt: cannot read: No such file or directory", 0);
    list_err(".", ".: cannot read: is a directory", 0);
}

/* ---- annotations ---------------------------------------------------------------- */

#define HEAD "<annotation>\n<size><width>500</width><height>375</height><depth>3</depth></size>\n"
#define OBJ(name, diff) "<object><name>" name "</name><difficult>" diff "</difficult></object>\n"

static void test_annotation(void **state)
{
    /* dog twice (one difficult), person difficult only, chair with no
     * difficult element, a person part named "hand", values in white space */
    write_text("a.xml", "<?xml version=\"1.0\"?>\n<annotation>\n  <folder>VOC2012</folder>\n"
                        "  <size>\n    <width>\n 500 </width>\n    <height>375</height>\n  </size>\n"
                        "  <segmented>1</segmented>\n" OBJ("dog", "1") OBJ("dog", "0") OBJ("person", "1")
                        "  <object><name>\n\tchair\n</name><pose>Left</pose><bndbox><xmin>1</xmin></bndbox></object>\n"
                        "  <object><name>person</name><difficult>1</difficult>\n"
                        "    <part><name>hand</name><bndbox><xmin>3</xmin></bndbox></part></object>\n"
                        "</annotation>\n");
    DlVocAnnotation a;
    xml_ok("a.xml", &a);
    assert_int_equal(a.width, 500);
    assert_int_equal(a.height, 375);
    assert_int_equal(a.segmented, 1);
    assert_int_equal(a.nobjects, 5);
    assert_int_equal(a.ndifficult, 3);
    for (int c = 0; c < DL_VOC_NCLASSES; c++) {
        int want = c == dl_voc_class_index("dog") || c == dl_voc_class_index("chair") ? 1
                 : c == dl_voc_class_index("person")                                  ? 0
                                                                                      : -1;
        assert_int_equal(a.presence[c], want);
    }
    /* no objects, no segmented: all absent */
    write_text("none.xml", HEAD "</annotation>");
    xml_ok("none.xml", &a);
    assert_int_equal(a.segmented, 0);
    assert_int_equal(a.nobjects, 0);
    for (int c = 0; c < DL_VOC_NCLASSES; c++) assert_int_equal(a.presence[c], -1);
    /* a DOCTYPE without declarations is harmless */
    write_text("doctype.xml", "<!DOCTYPE annotation SYSTEM \"http://example.invalid/voc.dtd\">\n" HEAD OBJ("cat", "0")
                              "</annotation>");
    xml_ok("doctype.xml", &a);
    assert_int_equal(a.presence[dl_voc_class_index("cat")], 1);
}

static void test_annotation_refused(void **state)
{
    write_text("mismatch.xml", "<annotation>\n<size><width>5</width></height>\n</annotation>\n");
    xml_err("mismatch.xml", "mismatch.xml:2: malformed XML: mismatched tag", 0);
    write_text("cut.xml", HEAD "<object><name>dog</name>");
    xml_err("cut.xml", "cut.xml:3: malformed XML: ", 1);
    write_text("empty.xml", "");
    xml_err("empty.xml", "empty.xml:1: malformed XML: no element found", 0);
    write_text("undef.xml", HEAD "<object><name>&dog;</name></object></annotation>");
    xml_err("undef.xml", "undef.xml:3: malformed XML: undefined entity", 0);
    write_text("root.xml", "<annotations>\n" HEAD "</annotation></annotations>");
    xml_err("root.xml", "root.xml:1: the root element is 'annotations', not 'annotation'", 0);
    write_text("dragon.xml", HEAD OBJ("dog", "0") OBJ("dragon", "0") "</annotation>");
    xml_err("dragon.xml", "dragon.xml:4: class 'dragon' is not one of the 20 VOC classes", 0);
    write_text("Dog.xml", HEAD OBJ("Dog", "0") "</annotation>");
    xml_err("Dog.xml", "Dog.xml:3: class 'Dog' is not one of the 20 VOC classes", 0);
    write_text("noname.xml", HEAD "<object><difficult>0</difficult></object>\n</annotation>");
    xml_err("noname.xml", "noname.xml:3: object without a name (object 1)", 0);
    write_text("twonames.xml", HEAD "<object><name>dog</name>\n<name>cat</name></object>\n</annotation>");
    xml_err("twonames.xml", "twonames.xml:4: more than one object/name", 0);
    char *longname = dl_xasprintf(HEAD "<object><name>%0300d</name></object></annotation>", 7);
    write_text("longname.xml", longname);
    free(longname);
    xml_err("longname.xml", "longname.xml:3: object/name is longer than 256 bytes", 0);
    write_text("diff2.xml", HEAD OBJ("dog", "2") "</annotation>");
    xml_err("diff2.xml", "diff2.xml:3: object/difficult is '2', expected 0 or 1", 0);
    write_text("seg.xml", HEAD "<segmented>yes</segmented></annotation>");
    xml_err("seg.xml", "seg.xml:3: segmented is 'yes', expected 0 or 1", 0);

    write_text("nosize.xml", "<annotation>\n" OBJ("dog", "0") "</annotation>\n");
    xml_err("nosize.xml", "nosize.xml: no size/width", 0);
    write_text("noheight.xml", "<annotation><size><width>5</width></size></annotation>");
    xml_err("noheight.xml", "noheight.xml: no size/height", 0);
    write_text("zero.xml", "<annotation>\n<size><width>0</width><height>3</height></size></annotation>");
    xml_err("zero.xml", "zero.xml:2: size/width is 0, not positive", 0);
    write_text("neg.xml", "<annotation>\n<size><width>4</width>\n<height>-3</height></size></annotation>");
    xml_err("neg.xml", "neg.xml:3: size/height is -3, not positive", 0);
    write_text("frac.xml", "<annotation>\n<size><width>500.5</width><height>3</height></size></annotation>");
    xml_err("frac.xml", "frac.xml:2: size/width is '500.5', expected a whole number of pixels", 0);
    write_text("bigint.xml", "<annotation>\n<size><width>99999999999999999999</width></size></annotation>");
    xml_err("bigint.xml", "bigint.xml:2: size/width is '99999999999999999999', expected a whole number of pixels", 0);
    write_text("huge.xml", "<annotation>\n<size><width>100000</width><height>100000</height></size></annotation>");
    xml_err("huge.xml", "huge.xml: size 100000x100000 is more than the 50000000 pixels an image may have", 0);
    write_text("tall.xml", "<annotation>\n<size><width>1</width><height>9000000000000</height></size></annotation>");
    xml_err("tall.xml", "tall.xml: size 1x9000000000000 is more than the 50000000 pixels an image may have", 0);
    write_text("twowidth.xml", "<annotation>\n<size><width>1</width>\n<width>2</width></size></annotation>");
    xml_err("twowidth.xml", "twowidth.xml:3: more than one size/width", 0);
    write_text("twosize.xml", HEAD "<size><width>1</width><height>1</height></size></annotation>");
    xml_err("twosize.xml", "twosize.xml:3: more than one size", 0);
    write_text("xmlroot.xml", HEAD "<!-- ok --></annotation><extra/>");
    xml_err("xmlroot.xml", "xmlroot.xml:3: malformed XML: junk after document element", 0);

    /* 10001 objects (about 480 KB, under the 1 MiB bound) */
    DlBuf b = {0};
    dl_buf_printf(&b, "%s", HEAD);
    for (int i = 0; i < 10001; i++) dl_buf_printf(&b, "%s", OBJ("dog", "0"));
    dl_buf_printf(&b, "</annotation>\n");
    write_bytes("many.xml", b.s, b.n);
    xml_err("many.xml", "many.xml:10003: more than 10000 objects", 0);
    /* over 1 MiB */
    while (b.n <= DL_VOC_MAX_XML_BYTES) dl_buf_printf(&b, "<!-- padding padding padding padding -->\n");
    write_bytes("big.xml", b.s, b.n);
    char *want = dl_xasprintf("big.xml: cannot read: is %s", "");
    xml_err("big.xml", want, 1);
    free(want);
    dl_buf_free(&b);
}

/* XML's two classic attacks: an external entity (a local file whose text is
 * a class name, so that reading it would succeed) and entity expansion. */
static void test_annotation_entities(void **state)
{
    write_text("secret.txt", "dog");
    char *secret = tpath("secret.txt");
    char *xxe = dl_xasprintf("<?xml version=\"1.0\"?>\n<!DOCTYPE annotation [\n<!ENTITY xxe SYSTEM \"file://%s\">\n]>\n"
                             HEAD "<object><name>&xxe;</name></object></annotation>\n", secret);
    write_text("xxe.xml", xxe);
    xml_err("xxe.xml", "xxe.xml:3: entity declarations are not allowed in an annotation (entity 'xxe', external)", 0);
    /* a parameter entity loading an external DTD */
    char *pe = dl_xasprintf("<!DOCTYPE annotation [\n<!ENTITY %% ext SYSTEM \"file://%s\">\n%%ext;\n]>\n" HEAD
                            "</annotation>\n", secret);
    write_text("pe.xml", pe);
    xml_err("pe.xml", "pe.xml:2: entity declarations are not allowed in an annotation (parameter entity 'ext', external)",
            0);
    write_text("lol.xml", "<!DOCTYPE annotation [\n<!ENTITY a \"dogdogdogdogdogdogdogdogdogdog\">\n"
                          "<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;\">\n<!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;\">\n"
                          "]>\n" HEAD "<object><name>&c;</name></object></annotation>\n");
    xml_err("lol.xml", "lol.xml:2: entity declarations are not allowed in an annotation (entity 'a')", 0);
    free(secret);
    free(xxe);
    free(pe);
}

/* ---- label maps ---------------------------------------------------------------------- */

static void test_mask(void **state)
{
    enum { W = 37, H = 23 };
    uint8_t d[W * H];
    for (int i = 0; i < W * H; i++) d[i] = (uint8_t)(i % 7 == 0 ? 255 : i % 21);
    DlVocMask m;
    for (int interlace = 0; interlace < 2; interlace++) {
        const char *rel = interlace ? "pal_adam7.png" : "pal.png";
        write_png(rel, W, H, PNG_COLOR_TYPE_PALETTE, 8, d, 256, interlace);
        mask_ok(rel, &m);
        assert_int_equal(m.width, W);
        assert_int_equal(m.height, H);
        assert_memory_equal(m.data, d, sizeof d);
        dl_voc_mask_free(&m);
        assert_null(m.data);
        dl_voc_mask_free(&m);
    }
    /* greyscale values are the indices; a 22-entry palette with 255 used */
    write_png("grey.png", W, H, PNG_COLOR_TYPE_GRAY, 8, d, 0, 0);
    mask_ok("grey.png", &m);
    assert_memory_equal(m.data, d, sizeof d);
    dl_voc_mask_free(&m);
    write_png("shortpal.png", W, H, PNG_COLOR_TYPE_PALETTE, 8, d, 22, 0);
    mask_ok("shortpal.png", &m);
    assert_memory_equal(m.data, d, sizeof d);
    dl_voc_mask_free(&m);

    /* the size check */
    char *err = NULL;
    m.width = W, m.height = H;
    assert_int_equal(dl_voc_check_mask_size("m.png", &m, "m.xml", W, H, &err), 0);
    assert_null(err);
}

static void test_mask_refused(void **state)
{
    enum { W = 37, H = 23 };
    uint8_t d[W * H * 4];
    for (int i = 0; i < W * H * 4; i++) d[i] = (uint8_t)(i % 21);

    write_png("rgb.png", W, H, PNG_COLOR_TYPE_RGB, 8, d, 0, 0);
    mask_err("rgb.png", "rgb.png: the PNG is RGB (8-bit), not a palette-index label map (palette or greyscale, 8-bit)",
             0);
    write_png("rgba.png", W, H, PNG_COLOR_TYPE_RGB_ALPHA, 8, d, 0, 0);
    mask_err("rgba.png", "rgba.png: the PNG is RGBA (8-bit), not a palette-index label map", 1);
    write_png("grey16.png", W, H, PNG_COLOR_TYPE_GRAY, 16, d, 0, 0);
    mask_err("grey16.png", "grey16.png: the PNG is greyscale (16-bit), not a palette-index label map", 1);
    uint8_t small[W * H];
    for (int i = 0; i < W * H; i++) small[i] = (uint8_t)(i % 16);
    write_png("pal4.png", W, H, PNG_COLOR_TYPE_PALETTE, 4, small, 16, 0);
    mask_err("pal4.png", "pal4.png: the PNG is palette (4-bit), not a palette-index label map", 1);

    d[1 * W + 2] = 77;
    d[5 * W + 1] = 78;
    write_png("idx77.png", W, H, PNG_COLOR_TYPE_PALETTE, 8, d, 256, 0);
    mask_err("idx77.png", "idx77.png: pixel (x=2, y=1) has index 77, not a class (0..20) or void (255)", 0);
    d[1 * W + 2] = 21;
    write_png("idx21.png", W, H, PNG_COLOR_TYPE_PALETTE, 8, d, 256, 0);
    mask_err("idx21.png", "idx21.png: pixel (x=2, y=1) has index 21, not a class (0..20) or void (255)", 0);

    write_text("text.png", "this is not a PNG\n");
    mask_err("text.png", "text.png: not a PNG file (no PNG signature)", 0);
    write_text("tiny.png", "\x89PNG");
    mask_err("tiny.png", "tiny.png: not a PNG file (no PNG signature)", 0);
    mask_err("missing.png", "missing.png: cannot read: No such file or directory", 0);

    /* a good map of noise (so that its IDAT is long), then damaged copies */
    enum { BW = 200, BH = 150 };
    uint8_t *big = dl_xmalloc(BW * BH);
    uint32_t r = 12345;
    for (int i = 0; i < BW * BH; i++) r = r * 1103515245u + 12345u, big[i] = (uint8_t)((r >> 16) % 21);
    write_png("noise.png", BW, BH, PNG_COLOR_TYPE_PALETTE, 8, big, 256, 0);
    DlVocMask m;
    mask_ok("noise.png", &m);
    assert_memory_equal(m.data, big, BW * BH);
    dl_voc_mask_free(&m);
    free(big);
    char *p = tpath("noise.png");
    size_t n;
    unsigned char *b = slurp(p, &n);
    free(p);
    size_t idat = find_chunk(b, n, "IDAT"), iend = find_chunk(b, n, "IEND");
    assert_true(n > 4000);

    write_bytes("cut.png", b, n / 2);
    char *want = dl_xasprintf("cut.png: truncated PNG (the file ends at byte %zu)", n / 2);
    mask_err("cut.png", want, 0);
    free(want);
    write_bytes("noiend.png", b, iend); /* all the pixels, no IEND */
    want = dl_xasprintf("noiend.png: truncated PNG (the file ends at byte %zu)", iend);
    mask_err("noiend.png", want, 0);
    free(want);
    write_bytes("header.png", b, 20); /* inside IHDR */
    mask_err("header.png", "header.png: truncated PNG (the file ends at byte 20)", 0);

    unsigned char *c = dl_xmalloc(n);
    memcpy(c, b, n);
    c[idat + 8 + 100] ^= 0x55; /* a data byte: the chunk's CRC no longer matches */
    write_bytes("crc.png", c, n);
    mask_err("crc.png", "crc.png: corrupt PNG: IDAT: CRC error", 0);
    /* the same damage with its CRC fixed: zlib finds it (or the adler32) */
    uint32_t len = (uint32_t)c[idat] << 24 | (uint32_t)c[idat + 1] << 16 | (uint32_t)c[idat + 2] << 8 | c[idat + 3];
    put_be32(c + idat + 8 + len, crc32_png(c + idat + 4, 4 + len));
    write_bytes("zlib.png", c, n);
    mask_err("zlib.png", "zlib.png: corrupt PNG: ", 1);

    /* a header claiming 100000 x 100000 (CRC fixed), before any allocation */
    memcpy(c, b, n);
    put_be32(c + 16, 100000);
    put_be32(c + 20, 100000);
    put_be32(c + 29, crc32_png(c + 12, 17));
    write_bytes("claim.png", c, n);
    mask_err("claim.png", "claim.png: the PNG claims 100000x100000 pixels, more than the 50000000 a mask may have", 0);
    /* within the bounds, the data is too short for the size claimed */
    put_be32(c + 16, 2000);
    put_be32(c + 20, 2000);
    put_be32(c + 29, crc32_png(c + 12, 17));
    write_bytes("claim2000.png", c, n);
    mask_err("claim2000.png", "claim2000.png: corrupt PNG: ", 1);
    free(c);
    free(b);

    /* a mask whose size is not its image's */
    write_png("m.png", W, H, PNG_COLOR_TYPE_PALETTE, 8, small, 256, 0);
    write_text("m.xml", "<annotation><size><width>38</width><height>23</height></size></annotation>");
    mask_ok("m.png", &m);
    DlVocAnnotation a;
    xml_ok("m.xml", &a);
    char *err = NULL;
    int rc = dl_voc_check_mask_size("m.png", &m, "m.xml", a.width, a.height, &err);
    check_msg(rc, err, "m.png is 37x23 but its image is 38x23 (m.xml)", 0);
    dl_voc_mask_free(&m);
}

static void test_jpeg_size_refused(void **state)
{
    int w = -1, h = -1;
    char *p = tpath("text.png"), *err = NULL; /* written by test_mask_refused */
    write_text("text.png", "this is not a PNG\n");
    int rc = dl_voc_jpeg_size(p, "x.jpg", &w, &h, &err);
    assert_int_equal(w, 0);
    check_msg(rc, err, "x.jpg: not a readable JPEG: ", 1);
    free(p);
}

/* ---- the real data --------------------------------------------------------------------- */

static char *voc_root(void)
{
    char *d = dl_xasprintf("%s/voc2012", dl_data_root());
    struct stat st;
    if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return d;
    printf("SKIPPED: %s not found (set DLDL_DATA)\n", d);
    free(d);
    return NULL;
}

static DlVocList real_list(const char *dir, const char *rel)
{
    char *p = dl_xasprintf("%s/VOC2012/%s", dir, rel), *err = NULL;
    DlVocList l;
    int rc = dl_voc_read_list(p, rel, &l, &err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    free(p);
    return l;
}

/* labels.csv: image_id,width,height,segmented,n_objects,n_difficult,
 * in_voc2012_main_trainval, then the 20 classes in VOC order. */
typedef struct Row {
    char id[32];
    int v[6 + DL_VOC_NCLASSES];
} Row;

static Row *read_labels(const char *dir, int *n)
{
    char *p = dl_xasprintf("%s/labels.csv", dir);
    size_t size;
    char *text = (char *)slurp(p, &size), *save = NULL;
    free(p);
    DL_VEC(Row) rows = {0};
    char *line = strtok_r(text, "\n", &save);
    assert_non_null(line);
    assert_non_null(strstr(line, "image_id,width,height,segmented,n_objects,n_difficult,in_voc2012_main_trainval,"
                                 "aeroplane,bicycle,bird,boat,bottle,bus,car,cat,chair,cow,diningtable,dog,horse,"
                                 "motorbike,person,pottedplant,sheep,sofa,train,tvmonitor"));
    while ((line = strtok_r(NULL, "\n", &save))) {
        Row r;
        memset(&r, 0, sizeof r);
        char *f = strchr(line, ',');
        assert_non_null(f);
        assert_true(f - line < (ptrdiff_t)sizeof r.id);
        memcpy(r.id, line, (size_t)(f - line));
        for (int k = 0; k < 6 + DL_VOC_NCLASSES; k++) {
            assert_true(*f == ',');
            char *end;
            r.v[k] = (int)strtol(f + 1, &end, 10);
            assert_true(end > f + 1);
            f = end;
        }
        assert_true(*f == 0 || *f == '\r');
        DL_PUSH(rows, r);
    }
    free(text);
    *n = (int)rows.n;
    return rows.a;
}

static const Row *find_row(const Row *rows, int n, const char *id)
{
    for (int i = 0; i < n; i++)
        if (strcmp(rows[i].id, id) == 0) return &rows[i];
    return NULL;
}

static void test_real_annotations(void **state)
{
    char *dir = voc_root();
    if (!dir) return;
    int nrows = 0;
    Row *rows = read_labels(dir, &nrows);
    DlVocList all = real_list(dir, "ImageSets/Main/subset.txt"), ml = real_list(dir, "ImageSets/Main/multilabel.txt");
    assert_int_equal(all.n, 592);
    assert_int_equal(nrows, 592);
    assert_int_equal(ml.n, 527);
    int npresent[DL_VOC_NCLASSES] = {0}, ndiffonly[DL_VOC_NCLASSES] = {0}, nobj = 0, ndiff = 0, maxobj = 0, nseg = 0;
    for (int i = 0; i < all.n; i++) {
        const Row *r = find_row(rows, nrows, all.ids[i]);
        if (!r) fail_msg("%s: not in labels.csv", all.ids[i]);
        char *p = dl_xasprintf("%s/VOC2012/Annotations/%s.xml", dir, all.ids[i]);
        char *rel = dl_xasprintf("Annotations/%s.xml", all.ids[i]), *err = NULL;
        DlVocAnnotation a;
        int rc = dl_voc_read_annotation(p, rel, &a, &err);
        if (rc) fail_msg("%s", err);
        int got[6] = {a.width, a.height, a.segmented, a.nobjects, a.ndifficult};
        for (int k = 0; k < 5; k++)
            if (got[k] != r->v[k]) fail_msg("%s: field %d is %d, labels.csv has %d", rel, k, got[k], r->v[k]);
        for (int c = 0; c < DL_VOC_NCLASSES; c++) {
            if (a.presence[c] != r->v[6 + c])
                fail_msg("%s: %s is %d, labels.csv has %d", rel, dl_voc_classes[c], a.presence[c], r->v[6 + c]);
            npresent[c] += a.presence[c] == 1;
            ndiffonly[c] += a.presence[c] == 0;
        }
        nobj += a.nobjects, ndiff += a.ndifficult, nseg += a.segmented;
        if (a.nobjects > maxobj) maxobj = a.nobjects;
        free(p);
        free(rel);
    }
    /* the multilabel list: all in Main trainval */
    for (int i = 0; i < ml.n; i++) {
        const Row *r = find_row(rows, nrows, ml.ids[i]);
        if (!r || r->v[5] != 1) fail_msg("%s: multilabel.txt id not in VOC2012 Main trainval per labels.csv", ml.ids[i]);
    }
    printf("voc2012: %d annotations agree with labels.csv; %d objects (%d difficult, at most %d in one image), "
           "%d segmented\n  images with the class (1) / difficult only (0):", all.n, nobj, ndiff, maxobj, nseg);
    for (int c = 0; c < DL_VOC_NCLASSES; c++) printf("%s %s %d/%d", c % 5 ? "," : "\n   ", dl_voc_classes[c], npresent[c], ndiffonly[c]);
    printf("\n");
    dl_voc_list_free(&all);
    dl_voc_list_free(&ml);
    free(rows);
    free(dir);
}

static void test_real_masks(void **state)
{
    char *dir = voc_root();
    if (!dir) return;
    DlVocList seg = real_list(dir, "ImageSets/Segmentation/subset.txt");
    assert_int_equal(seg.n, 289);
    int64_t count[256] = {0}, total = 0;
    int images_with[256] = {0};
    for (int i = 0; i < seg.n; i++) {
        const char *id = seg.ids[i];
        char *pm = dl_xasprintf("%s/VOC2012/SegmentationClass/%s.png", dir, id);
        char *px = dl_xasprintf("%s/VOC2012/Annotations/%s.xml", dir, id);
        char *pj = dl_xasprintf("%s/VOC2012/JPEGImages/%s.jpg", dir, id);
        char *rm = dl_xasprintf("SegmentationClass/%s.png", id), *rx = dl_xasprintf("Annotations/%s.xml", id);
        char *rj = dl_xasprintf("JPEGImages/%s.jpg", id), *err = NULL;
        DlVocMask m;
        DlVocAnnotation a;
        int w = 0, h = 0;
        if (dl_voc_read_mask(pm, rm, &m, &err) || dl_voc_read_annotation(px, rx, &a, &err) ||
            dl_voc_jpeg_size(pj, rj, &w, &h, &err) || dl_voc_check_mask_size(rm, &m, rx, a.width, a.height, &err) ||
            dl_voc_check_mask_size(rm, &m, rj, w, h, &err))
            fail_msg("%s", err);
        assert_int_equal(a.segmented, 1);
        int seen[256] = {0};
        for (int64_t k = 0; k < (int64_t)m.width * m.height; k++) {
            uint8_t v = m.data[k];
            assert_true(v <= DL_VOC_NCLASSES || v == DL_VOC_VOID);
            count[v]++, seen[v] = 1;
        }
        /* every class in the map is one the annotation has (the converse
         * need not hold: a tiny or occluded object may have no pixels) */
        for (int c = 1; c <= DL_VOC_NCLASSES; c++) {
            if (seen[c] && a.presence[c - 1] < 0)
                fail_msg("%s has pixels of %s, which %s does not list", rm, dl_voc_classes[c - 1], rx);
            images_with[c] += seen[c];
        }
        images_with[0] += seen[0], images_with[255] += seen[255];
        total += (int64_t)m.width * m.height;
        dl_voc_mask_free(&m);
        free(pm), free(px), free(pj), free(rm), free(rx), free(rj);
    }
    printf("voc2012: %d masks, %lld pixels: background %.1f%%, void %.1f%% (in %d masks); images per class:",
           seg.n, (long long)total, 100.0 * count[0] / total, 100.0 * count[255] / total, images_with[255]);
    for (int c = 1; c <= DL_VOC_NCLASSES; c++)
        printf("%s %s %d", (c - 1) % 5 ? "," : "\n   ", dl_voc_classes[c - 1], images_with[c]);
    printf("\n");
    dl_voc_list_free(&seg);
    free(dir);
}

/* A real mask cut short, and a real annotation cut short. */
static void test_real_truncated(void **state)
{
    char *dir = voc_root();
    if (!dir) return;
    char *p = dl_xasprintf("%s/VOC2012/SegmentationClass/2007_000559.png", dir);
    size_t n;
    unsigned char *b = slurp(p, &n);
    write_bytes("real_cut.png", b, n - 20);
    char *want = dl_xasprintf("real_cut.png: truncated PNG (the file ends at byte %zu)", n - 20);
    mask_err("real_cut.png", want, 0);
    free(want), free(b), free(p);
    p = dl_xasprintf("%s/VOC2012/Annotations/2007_000559.xml", dir);
    b = slurp(p, &n);
    write_bytes("real_cut.xml", b, n / 2);
    xml_err("real_cut.xml", "real_cut.xml:", 1);
    free(b), free(p), free(dir);
}

/* dl_voc_write_mask writes a palette PNG that dl_voc_read_mask reads back
 * index for index (0..20 and 255), with VOC's colour for class 15 (person:
 * 192, 128, 128); an unwritable path is an error naming it, and nothing is
 * left behind. */
static void test_write_mask_round_trip(void **state)
{
    (void)state;
    int w = 7, h = 5;
    uint8_t map[35];
    for (int i = 0; i < w * h; i++) map[i] = (uint8_t)(i % 22 == 21 ? 255 : i % 22);
    char *path = tpath("written.png"), *err = NULL;
    assert_int_equal(dl_voc_write_mask(path, map, w, h, &err), 0);
    DlVocMask m;
    assert_int_equal(dl_voc_read_mask(path, "written.png", &m, &err), 0);
    assert_int_equal(m.width, w);
    assert_int_equal(m.height, h);
    assert_memory_equal(m.data, map, sizeof map);
    dl_voc_mask_free(&m);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    uint8_t buf[2048];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    const uint8_t person[3] = {192, 128, 128};
    int found = 0;
    for (size_t i = 0; i + 4 + 3 * 16 <= n; i++)
        if (!memcmp(buf + i, "PLTE", 4)) found = !memcmp(buf + i + 4 + 3 * 15, person, 3);
    assert_true(found);
    char *bad = tpath("no/such/dir/x.png");
    assert_int_equal(dl_voc_write_mask(bad, map, w, h, &err), -1);
    assert_non_null(strstr(err, "no/such/dir/x.png: cannot write"));
    free(err), free(bad), free(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_classes),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_annotation),
        cmocka_unit_test(test_annotation_refused),
        cmocka_unit_test(test_annotation_entities),
        cmocka_unit_test(test_mask),
        cmocka_unit_test(test_mask_refused),
        cmocka_unit_test(test_jpeg_size_refused),
        cmocka_unit_test(test_real_annotations),
        cmocka_unit_test(test_real_masks),
        cmocka_unit_test(test_real_truncated),
        cmocka_unit_test(test_write_mask_round_trip),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
