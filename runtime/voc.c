/* voc.c - PASCAL VOC image lists, XML annotations and label maps (see voc.h).
 *
 * Each reader takes the whole file through dl_read_file (bounded size), then
 * hands the bytes to the library: libexpat for the XML, driven by element
 * handlers that keep only the few paths VOC defines; libpng for the label
 * maps, read from memory with its error handler longjmp'ing back here, so
 * every failure frees what was allocated and becomes one message.
 */
#include <errno.h>
#include <expat.h>
#include <png.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "../common/util.h"
#include "voc.h"

const char *const dl_voc_classes[DL_VOC_NCLASSES] = {
    "aeroplane", "bicycle", "bird",  "boat",        "bottle", "bus",         "car",
    "cat",       "chair",   "cow",   "diningtable", "dog",    "horse",       "motorbike",
    "person",    "pottedplant", "sheep", "sofa",    "train",  "tvmonitor",
};

int dl_voc_class_index(const char *name)
{
    for (int i = 0; i < DL_VOC_NCLASSES; i++)
        if (strcmp(name, dl_voc_classes[i]) == 0) return i;
    return -1;
}

/* Text fit for a one-line message: printable ASCII (others '?'), at most
 * 64 characters, then "...". */
static char *clean(const char *s, size_t n)
{
    size_t m = n > 64 ? 64 : n;
    char *c = dl_xmalloc(m + 4);
    for (size_t i = 0; i < m; i++) c[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    strcpy(c + m, n > m ? "..." : "");
    return c;
}

static char *read_error(const char *name, char *why)
{
    char *e = dl_xasprintf("%s: cannot read: %s", name, why);
    free(why);
    return e;
}

/* ---- image lists ------------------------------------------------------------ */

static int is_id_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

void dl_voc_list_free(DlVocList *l)
{
    free(l->ids);
    free(l->store);
    memset(l, 0, sizeof *l);
}

/* The first duplicate id: its index j and the earlier one's *first, or -1. */
static int find_duplicate(const DlVocList *l, int *first)
{
    size_t cap = 16;
    while (cap < 2 * (size_t)l->n) cap *= 2;
    int *slot = dl_xmalloc(cap * sizeof *slot);
    memset(slot, 0xff, cap * sizeof *slot); /* -1: empty */
    int dup = -1;
    for (int j = 0; j < l->n && dup < 0; j++) {
        size_t h = (size_t)dl_hash64(l->ids[j], strlen(l->ids[j])) & (cap - 1);
        for (; slot[h] >= 0; h = (h + 1) & (cap - 1))
            if (strcmp(l->ids[slot[h]], l->ids[j]) == 0) {
                dup = j, *first = slot[h];
                break;
            }
        if (dup < 0) slot[h] = j;
    }
    free(slot);
    return dup;
}

int dl_voc_read_list(const char *path, const char *name, DlVocList *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (!name) name = path;
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, DL_VOC_MAX_LIST_BYTES, &b, &why)) {
        dl_buf_free(&b);
        *err = read_error(name, why);
        return -1;
    }
    DL_VEC(char *) ids = {0};
    DL_VEC(int) lines = {0};
    char *s = b.s, *end = b.s + b.n;
    int line = 0;
    *err = NULL;
    while (s < end && !*err) {
        line++;
        char *eol = memchr(s, '\n', (size_t)(end - s));
        if (!eol) eol = end;
        char *e = eol;
        if (e > s && e[-1] == '\r') e--;
        size_t n = (size_t)(e - s), k = 0;
        while (k < n && is_id_char((unsigned char)s[k])) k++;
        size_t blank = 0;
        while (blank < n && (s[blank] == ' ' || s[blank] == '\t' || s[blank] == '\r')) blank++;
        if (blank == n) {
            /* a blank line */
        } else if (k != n) {
            char *c = clean(s, n);
            *err = dl_xasprintf("%s:%d: expected one image id ([A-Za-z0-9_]+) per line, got '%s'", name, line, c);
            free(c);
        } else if (n > DL_VOC_MAX_ID_LEN) {
            *err = dl_xasprintf("%s:%d: id of %zu characters, more than the %d allowed", name, line, n,
                                DL_VOC_MAX_ID_LEN);
        } else if (ids.n == DL_VOC_MAX_IDS) {
            *err = dl_xasprintf("%s:%d: more than %d ids", name, line, DL_VOC_MAX_IDS);
        } else {
            *e = 0;
            DL_PUSH(ids, s);
            DL_PUSH(lines, line);
        }
        s = eol + 1;
    }
    if (!*err && ids.n == 0) *err = dl_xasprintf("%s: no ids (an empty list)", name);
    out->n = (int)ids.n;
    out->ids = ids.a;
    out->store = b.s;
    int first = 0, dup = *err ? -1 : find_duplicate(out, &first);
    if (dup >= 0)
        *err = dl_xasprintf("%s:%d: id '%s' is listed twice (first at line %d)", name, lines.a[dup], out->ids[dup],
                            lines.a[first]);
    DL_VEC_FREE(lines);
    if (*err) {
        dl_voc_list_free(out);
        return -1;
    }
    return 0;
}

/* ---- XML annotations ---------------------------------------------------------- */

/* The elements read, by their path; everything else is E_OTHER. */
enum {
    E_OTHER,
    E_ROOT,      /* annotation */
    E_SIZE,      /* annotation/size */
    E_WIDTH,     /* annotation/size/width */
    E_HEIGHT,    /* annotation/size/height */
    E_SEGMENTED, /* annotation/segmented */
    E_OBJECT,    /* annotation/object */
    E_NAME,      /* annotation/object/name */
    E_DIFFICULT, /* annotation/object/difficult */
};
static const char *const elem_path[] = {
    [E_SIZE] = "size", [E_WIDTH] = "size/width", [E_HEIGHT] = "size/height", [E_SEGMENTED] = "segmented",
    [E_NAME] = "object/name", [E_DIFFICULT] = "object/difficult",
};

#define XML_MAX_TEXT 256 /* bytes of a leaf's text kept; longer is an error */
#define XML_STACK 4      /* the element kinds kept: depth 1..3 are all VOC uses */

typedef struct Xml {
    XML_Parser p;
    const char *name;
    char *err;                 /* the first error; the parser is stopped */
    int depth;                 /* current element depth, root = 1 */
    int kind[XML_STACK];       /* kind of the element at depth d (d < XML_STACK) */
    char text[XML_MAX_TEXT + 1];
    size_t ntext;
    int text_long;             /* the leaf's text went past XML_MAX_TEXT */
    int64_t width, height;     /* -1: not seen */
    int seen_size, seen_segmented;
    int obj_class, obj_difficult, obj_seen_difficult; /* the open object; class -1: no name yet */
    int nclear[DL_VOC_NCLASSES], ndiff[DL_VOC_NCLASSES];
    DlVocAnnotation *out;
} Xml;

static void xml_fail(Xml *x, char *msg)
{
    if (!x->err) x->err = msg;
    else free(msg);
    XML_StopParser(x->p, XML_FALSE);
}

#define XML_FAIL(x, fmt, ...)                                                                                   \
    xml_fail(x, dl_xasprintf("%s:%lu: " fmt, (x)->name, (unsigned long)XML_GetCurrentLineNumber((x)->p), \
                             __VA_ARGS__))

static int kind_at(const Xml *x, int depth) { return depth < XML_STACK ? x->kind[depth] : E_OTHER; }

static void XMLCALL xml_start(void *ud, const XML_Char *el, const XML_Char **attr)
{
    Xml *x = ud;
    if (x->err) return;
    int d = ++x->depth, parent = kind_at(x, d - 1), k = E_OTHER;
    if (d == 1) {
        if (strcmp(el, "annotation")) {
            char *c = clean(el, strlen(el));
            XML_FAIL(x, "the root element is '%s', not 'annotation'", c);
            free(c);
            return;
        }
        k = E_ROOT;
    } else if (parent == E_ROOT) {
        if (!strcmp(el, "size")) k = E_SIZE;
        else if (!strcmp(el, "segmented")) k = E_SEGMENTED;
        else if (!strcmp(el, "object")) k = E_OBJECT;
    } else if (parent == E_SIZE) {
        if (!strcmp(el, "width")) k = E_WIDTH;
        else if (!strcmp(el, "height")) k = E_HEIGHT;
    } else if (parent == E_OBJECT) {
        if (!strcmp(el, "name")) k = E_NAME;
        else if (!strcmp(el, "difficult")) k = E_DIFFICULT;
    }
    if (d < XML_STACK) x->kind[d] = k;
    int twice = (k == E_SIZE && x->seen_size) || (k == E_SEGMENTED && x->seen_segmented) ||
                (k == E_WIDTH && x->width >= 0) || (k == E_HEIGHT && x->height >= 0) ||
                (k == E_NAME && x->obj_class >= 0) || (k == E_DIFFICULT && x->obj_seen_difficult);
    if (twice) {
        XML_FAIL(x, "more than one %s", elem_path[k]);
        return;
    }
    if (k == E_SIZE) x->seen_size = 1;
    if (k == E_OBJECT) {
        if (x->out->nobjects == DL_VOC_MAX_OBJECTS) {
            XML_FAIL(x, "more than %d objects", DL_VOC_MAX_OBJECTS);
            return;
        }
        x->out->nobjects++;
        x->obj_class = -1, x->obj_difficult = 0, x->obj_seen_difficult = 0;
    }
    x->ntext = 0, x->text_long = 0;
}

static void XMLCALL xml_text(void *ud, const XML_Char *s, int len)
{
    Xml *x = ud;
    if (x->err || len <= 0) return;
    int k = kind_at(x, x->depth);
    if (k != E_WIDTH && k != E_HEIGHT && k != E_SEGMENTED && k != E_NAME && k != E_DIFFICULT) return;
    size_t n = (size_t)len;
    if (n > XML_MAX_TEXT - x->ntext) {
        x->text_long = 1;
        n = XML_MAX_TEXT - x->ntext;
    }
    memcpy(x->text + x->ntext, s, n);
    x->ntext += n;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

/* The leaf's text, trimmed, NUL-terminated in place. */
static char *leaf_text(Xml *x)
{
    char *s = x->text, *e = x->text + x->ntext;
    while (s < e && is_space(*s)) s++;
    while (e > s && is_space(e[-1])) e--;
    *e = 0;
    return s;
}

/* A decimal integer with an optional sign: 0 with *v, or -1 (also when it
 * overflows int64). */
static int parse_int(const char *s, int64_t *v)
{
    const char *t = s + (*s == '-' || *s == '+');
    if (!*t) return -1;
    for (const char *c = t; *c; c++)
        if (*c < '0' || *c > '9') return -1;
    errno = 0;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (errno || *end) return -1;
    *v = n;
    return 0;
}

static void XMLCALL xml_end(void *ud, const XML_Char *el)
{
    Xml *x = ud;
    if (x->err) return;
    int k = kind_at(x, x->depth);
    x->depth--;
    if (k == E_WIDTH || k == E_HEIGHT || k == E_SEGMENTED || k == E_NAME || k == E_DIFFICULT) {
        if (x->text_long) {
            XML_FAIL(x, "%s is longer than %d bytes", elem_path[k], XML_MAX_TEXT);
            return;
        }
        char *t = leaf_text(x), *c = clean(t, strlen(t));
        int64_t v = 0;
        if (k == E_NAME) {
            x->obj_class = dl_voc_class_index(t);
            if (x->obj_class < 0) XML_FAIL(x, "class '%s' is not one of the %d VOC classes", c, DL_VOC_NCLASSES);
        } else if (k == E_DIFFICULT || k == E_SEGMENTED) {
            if (strcmp(t, "0") && strcmp(t, "1")) XML_FAIL(x, "%s is '%s', expected 0 or 1", elem_path[k], c);
            else if (k == E_DIFFICULT) x->obj_difficult = t[0] == '1', x->obj_seen_difficult = 1;
            else x->out->segmented = t[0] == '1', x->seen_segmented = 1;
        } else if (parse_int(t, &v)) {
            XML_FAIL(x, "%s is '%s', expected a whole number of pixels", elem_path[k], c);
        } else if (v <= 0) {
            XML_FAIL(x, "%s is %lld, not positive", elem_path[k], (long long)v);
        } else if (k == E_WIDTH) {
            x->width = v;
        } else {
            x->height = v;
        }
        free(c);
    } else if (k == E_OBJECT) {
        if (x->obj_class < 0) {
            XML_FAIL(x, "object without a name (object %d)", x->out->nobjects);
            return;
        }
        if (x->obj_difficult) x->ndiff[x->obj_class]++, x->out->ndifficult++;
        else x->nclear[x->obj_class]++;
    }
}

/* Any entity declaration stops the parse: VOC annotations have none, and
 * refusing them refuses external entities and expansion bombs alike. */
static void XMLCALL xml_entity_decl(void *ud, const XML_Char *entity, int is_param, const XML_Char *value,
                                    int value_length, const XML_Char *base, const XML_Char *system_id,
                                    const XML_Char *public_id, const XML_Char *notation)
{
    Xml *x = ud;
    char *c = clean(entity, strlen(entity));
    XML_FAIL(x, "entity declarations are not allowed in an annotation (%sentity '%s'%s)", is_param ? "parameter " : "",
             c, system_id || public_id ? ", external" : "");
    free(c);
}

/* Never called while declarations are refused; if it were, the reference
 * fails instead of anything being opened. */
static int XMLCALL xml_external_ref(XML_Parser p, const XML_Char *context, const XML_Char *base,
                                    const XML_Char *system_id, const XML_Char *public_id)
{
    return XML_STATUS_ERROR;
}

int dl_voc_read_annotation(const char *path, const char *name, DlVocAnnotation *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (!name) name = path;
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, DL_VOC_MAX_XML_BYTES, &b, &why)) {
        dl_buf_free(&b);
        *err = read_error(name, why);
        return -1;
    }
    Xml x = {.name = name, .width = -1, .height = -1, .obj_class = -1, .out = out};
    x.p = XML_ParserCreate(NULL);
    if (!x.p) {
        fprintf(stderr, "dldl: out of memory (expat parser)\n");
        abort();
    }
    XML_SetUserData(x.p, &x);
    XML_SetParamEntityParsing(x.p, XML_PARAM_ENTITY_PARSING_NEVER);
    XML_SetEntityDeclHandler(x.p, xml_entity_decl);
    XML_SetExternalEntityRefHandler(x.p, xml_external_ref);
    XML_SetElementHandler(x.p, xml_start, xml_end);
    XML_SetCharacterDataHandler(x.p, xml_text);
    if (XML_Parse(x.p, b.s, (int)b.n, XML_TRUE) != XML_STATUS_OK && !x.err)
        x.err = dl_xasprintf("%s:%lu: malformed XML: %s", name, (unsigned long)XML_GetCurrentLineNumber(x.p),
                             XML_ErrorString(XML_GetErrorCode(x.p)));
    XML_ParserFree(x.p);
    dl_buf_free(&b);
    if (!x.err) {
        if (x.width < 0 || x.height < 0)
            x.err = dl_xasprintf("%s: no size/%s", name, x.width < 0 ? "width" : "height");
        else if (x.width > DL_VOC_MAX_PIXELS || x.height > DL_VOC_MAX_PIXELS ||
                 x.width * x.height > DL_VOC_MAX_PIXELS)
            x.err = dl_xasprintf("%s: size %lldx%lld is more than the %lld pixels an image may have", name,
                                 (long long)x.width, (long long)x.height, (long long)DL_VOC_MAX_PIXELS);
    }
    if (x.err) {
        memset(out, 0, sizeof *out);
        *err = x.err;
        return -1;
    }
    out->width = (int)x.width;
    out->height = (int)x.height;
    for (int c = 0; c < DL_VOC_NCLASSES; c++) out->presence[c] = x.nclear[c] ? 1 : x.ndiff[c] ? 0 : -1;
    return 0;
}

/* ---- label maps ------------------------------------------------------------------ */

typedef struct Png {
    const unsigned char *p;
    size_t n, at;
    int truncated;     /* the read callback ran past the end */
    char msg[200];     /* libpng's error message */
    uint8_t *data;     /* the map being read, freed on error */
    png_bytep *rows;
} Png;

static void png_read_mem(png_structp png, png_bytep dst, size_t len)
{
    Png *in = png_get_io_ptr(png);
    if (len > in->n - in->at) {
        in->truncated = 1;
        png_error(png, "unexpected end of file");
    }
    memcpy(dst, in->p + in->at, len);
    in->at += len;
}

static void png_on_error(png_structp png, png_const_charp msg)
{
    Png *in = png_get_error_ptr(png);
    snprintf(in->msg, sizeof in->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

/* Warnings concern ancillary chunks (a colour profile, a text chunk): they
 * cannot change the indices, so they are not reported. */
static void png_on_warning(png_structp png, png_const_charp msg) {}

static const char *color_name(int type)
{
    switch (type) {
    case PNG_COLOR_TYPE_GRAY: return "greyscale";
    case PNG_COLOR_TYPE_GRAY_ALPHA: return "greyscale+alpha";
    case PNG_COLOR_TYPE_PALETTE: return "palette";
    case PNG_COLOR_TYPE_RGB: return "RGB";
    case PNG_COLOR_TYPE_RGB_ALPHA: return "RGBA";
    default: return "of an unknown colour type";
    }
}

void dl_voc_mask_free(DlVocMask *m)
{
    free(m->data);
    memset(m, 0, sizeof *m);
}

/* Decode into in->data; 0, or -1 with *err.  The libpng structs are created
 * and destroyed by the caller, around the one setjmp. */
static int png_decode(png_structp png, png_infop info, Png *in, const char *name, DlVocMask *out, char **err)
{
    png_uint_32 w = 0, h = 0;
    int depth = 0, type = 0, interlace = 0;
    png_read_info(png, info);
    png_get_IHDR(png, info, &w, &h, &depth, &type, &interlace, NULL, NULL);
    if (!((type == PNG_COLOR_TYPE_PALETTE || type == PNG_COLOR_TYPE_GRAY) && depth == 8)) {
        *err = dl_xasprintf("%s: the PNG is %s (%d-bit), not a palette-index label map (palette or greyscale, 8-bit)",
                            name, color_name(type), depth);
        return -1;
    }
    if ((int64_t)w * h > DL_VOC_MAX_PIXELS) {
        *err = dl_xasprintf("%s: the PNG claims %ux%u pixels, more than the %lld a mask may have", name, (unsigned)w,
                            (unsigned)h, (long long)DL_VOC_MAX_PIXELS);
        return -1;
    }
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    if (png_get_rowbytes(png, info) != w) {
        *err = dl_xasprintf("%s: corrupt PNG: %zu bytes per row for %u pixels", name, (size_t)png_get_rowbytes(png, info),
                            (unsigned)w);
        return -1;
    }
    in->data = dl_xmalloc((size_t)w * h);
    in->rows = dl_xmalloc((size_t)h * sizeof *in->rows);
    for (png_uint_32 y = 0; y < h; y++) in->rows[y] = in->data + (size_t)y * w;
    png_read_image(png, in->rows);
    png_read_end(png, NULL);
    out->width = (int)w, out->height = (int)h;
    return 0;
}

/* Create the libpng structs, decode with png_decode under the one setjmp,
 * destroy them.  0, or -1 with *err (in->data may be set either way). */
static int png_run(Png *in, const char *name, DlVocMask *out, char **err)
{
    png_structp png = png_create_read_struct(PNG_LIBPNG_VER_STRING, in, png_on_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    if (!info) {
        fprintf(stderr, "dldl: out of memory (libpng)\n");
        abort();
    }
    volatile int rc = -1; /* set between setjmp and a possible longjmp */
    if (setjmp(png_jmpbuf(png)) == 0) {
        png_set_read_fn(png, in, png_read_mem);
        /* Sizes reach the check in png_decode, not libpng's 1,000,000 limit. */
        png_set_user_limits(png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
        /* Benign errors (a bad zlib checksum, extra data) are errors here. */
        png_set_benign_errors(png, 0);
        /* Indices are read whatever the palette's length. */
        png_set_check_for_invalid_index(png, 0);
        rc = png_decode(png, info, in, name, out, err);
    } else if (in->truncated) {
        *err = dl_xasprintf("%s: truncated PNG (the file ends at byte %zu)", name, in->n);
    } else {
        *err = dl_xasprintf("%s: corrupt PNG: %s", name, in->msg);
    }
    png_destroy_read_struct(&png, &info, NULL);
    return rc;
}

int dl_voc_read_mask(const char *path, const char *name, DlVocMask *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (!name) name = path;
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, DL_VOC_MAX_PNG_BYTES, &b, &why)) {
        dl_buf_free(&b);
        *err = read_error(name, why);
        return -1;
    }
    if (b.n < 8 || png_sig_cmp((png_const_bytep)b.s, 0, 8)) {
        dl_buf_free(&b);
        *err = dl_xasprintf("%s: not a PNG file (no PNG signature)", name);
        return -1;
    }
    Png in = {.p = (const unsigned char *)b.s, .n = b.n};
    int rc = png_run(&in, name, out, err);
    dl_buf_free(&b);
    free(in.rows);
    if (rc == 0) {
        size_t n = (size_t)out->width * (size_t)out->height;
        for (size_t i = 0; i < n; i++) {
            uint8_t v = in.data[i];
            if (v > DL_VOC_NCLASSES && v != DL_VOC_VOID) {
                *err = dl_xasprintf("%s: pixel (x=%zu, y=%zu) has index %u, not a class (0..%d) or void (%d)", name,
                                    i % (size_t)out->width, i / (size_t)out->width, (unsigned)v, DL_VOC_NCLASSES,
                                    DL_VOC_VOID);
                rc = -1;
                break;
            }
        }
    }
    if (rc) {
        free(in.data);
        memset(out, 0, sizeof *out);
        return -1;
    }
    out->data = in.data;
    return 0;
}

/* ---- sizes --------------------------------------------------------------------- */

int dl_voc_jpeg_size(const char *path, const char *name, int *width, int *height, char **err)
{
    *width = *height = 0;
    if (!name) name = path;
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, DL_VOC_MAX_JPEG_BYTES, &b, &why)) {
        dl_buf_free(&b);
        *err = read_error(name, why);
        return -1;
    }
    tjhandle tj = tjInitDecompress();
    if (!tj) {
        fprintf(stderr, "dldl: cannot start libjpeg-turbo: %s\n", tjGetErrorStr2(NULL));
        abort();
    }
    int w = 0, h = 0, subsamp = 0, cs = 0, rc = -1;
    if (tjDecompressHeader3(tj, (const unsigned char *)b.s, (unsigned long)b.n, &w, &h, &subsamp, &cs) != 0)
        *err = dl_xasprintf("%s: not a readable JPEG: %s", name, tjGetErrorStr2(tj));
    else if (w <= 0 || h <= 0 || (int64_t)w * h > DL_VOC_MAX_PIXELS)
        *err = dl_xasprintf("%s: the JPEG claims %dx%d pixels, more than the %lld an image may have", name, w, h,
                            (long long)DL_VOC_MAX_PIXELS);
    else
        *width = w, *height = h, rc = 0;
    tjDestroy(tj);
    dl_buf_free(&b);
    return rc;
}

int dl_voc_check_mask_size(const char *mask_name, const DlVocMask *m, const char *image_name, int width, int height,
                           char **err)
{
    if (m->width == width && m->height == height) return 0;
    *err = dl_xasprintf("%s is %dx%d but its image is %dx%d (%s)", mask_name ? mask_name : "mask", m->width, m->height,
                        width, height, image_name ? image_name : "image");
    return -1;
}

/* ---- writing label maps ---------------------------------------------------- */

typedef struct PngOut {
    DlBuf b;
    char msg[200];
} PngOut;

static void png_write_mem(png_structp png, png_bytep src, size_t len)
{
    PngOut *o = png_get_io_ptr(png);
    dl_buf_put(&o->b, (const char *)src, len);
}
static void png_flush_mem(png_structp png) {}
static void png_on_write_error(png_structp png, png_const_charp msg)
{
    PngOut *o = png_get_error_ptr(png);
    snprintf(o->msg, sizeof o->msg, "%s", msg ? msg : "unknown error");
    png_longjmp(png, 1);
}

int dl_voc_write_mask(const char *path, const uint8_t *map, int width, int height, char **err)
{
    PngOut o = {{0}, ""};
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, &o, png_on_write_error, png_on_warning);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    int rc = -1;
    if (!info) {
        *err = dl_xasprintf("%s: cannot write: out of memory", path);
        goto done;
    }
    if (setjmp(png_jmpbuf(png))) {
        *err = dl_xasprintf("%s: cannot write: libpng: %s", path, o.msg);
        goto done;
    }
    png_set_write_fn(png, &o, png_write_mem, png_flush_mem);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8, PNG_COLOR_TYPE_PALETTE, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_color pal[256]; /* VOClabelcolormap.m: the bits of the index spread over r, g, b from the top bit down */
    for (int i = 0; i < 256; i++) {
        int r = 0, g = 0, b = 0, c = i;
        for (int j = 0; j < 8; j++, c >>= 3) {
            r |= ((c >> 0) & 1) << (7 - j);
            g |= ((c >> 1) & 1) << (7 - j);
            b |= ((c >> 2) & 1) << (7 - j);
        }
        pal[i] = (png_color){(png_byte)r, (png_byte)g, (png_byte)b};
    }
    png_set_PLTE(png, info, pal, 256);
    png_write_info(png, info);
    for (int y = 0; y < height; y++) png_write_row(png, (png_const_bytep)(map + (size_t)y * width));
    png_write_end(png, info);
    if (dl_write_file_atomic(path, o.b.s, o.b.n) != 0)
        *err = dl_xasprintf("%s: cannot write: %s", path, strerror(errno));
    else
        rc = 0;
done:
    png_destroy_write_struct(&png, &info);
    dl_buf_free(&o.b);
    return rc;
}

void dl_voc_resize_map(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    for (int y = 0; y < dh; y++) {
        const uint8_t *row = src + (size_t)(((int64_t)2 * y + 1) * sh / (2 * (int64_t)dh)) * sw;
        for (int x = 0; x < dw; x++) dst[(size_t)y * dw + x] = row[((int64_t)2 * x + 1) * sw / (2 * (int64_t)dw)];
    }
}
