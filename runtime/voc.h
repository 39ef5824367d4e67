/* voc.h - PASCAL VOC files: image lists, XML annotations (libexpat) and
 * SegmentationClass label maps (libpng), read as untrusted input.
 *
 * The VOCdevkit layout (Everingham et al., "The PASCAL Visual Object Classes
 * (VOC) Challenge", IJCV 2010), under a root such as voc2012/VOC2012:
 *   ImageSets/Main/X.txt, ImageSets/Segmentation/X.txt   one image id per line
 *   Annotations/ID.xml         image size, and per object its class and flags
 *   JPEGImages/ID.jpg          the image
 *   SegmentationClass/ID.png   per pixel the class index: 0 background,
 *                              1..20 the classes below (dl_voc_classes[i - 1]),
 *                              255 void (object borders, unlabelled: ignored)
 * Nothing here builds those paths; the caller joins root, folder and id.
 *
 * Errors are one malloc'd line (no newline) starting with the file's name as
 * the caller gives it (`name`, e.g. relative to the data root; NULL: the path),
 * then ":LINE" where a line is known (lists, XML), then ": " and the problem.
 * Every input is bounded before it is read (the DL_VOC_MAX_* below); a
 * truncated or corrupt file is an error, never partly filled output.  The
 * functions keep no state and may run in several threads at once.
 */
#ifndef DL_VOC_H
#define DL_VOC_H

#include <stdint.h>

#define DL_VOC_NCLASSES 20 /* object classes; a label map has these + background */
#define DL_VOC_VOID 255    /* the label-map index of void (ignored) pixels */

/* Bounds on untrusted input, far above the real data: VOC2012's largest list
 * (Main trainval) has 11,540 ids; in the subset of shared/data/voc2012 the
 * largest annotation is 3.8 KB with 14 objects, and images and masks are at
 * most 500 x 500. */
#define DL_VOC_MAX_IDS 1000000                   /* ids in one list */
#define DL_VOC_MAX_ID_LEN 255                    /* bytes in one id */
#define DL_VOC_MAX_LIST_BYTES ((size_t)64 << 20) /* 64 MiB: an image list */
#define DL_VOC_MAX_XML_BYTES ((size_t)1 << 20)   /* 1 MiB: an annotation */
#define DL_VOC_MAX_OBJECTS 10000                 /* objects in one annotation */
#define DL_VOC_MAX_PNG_BYTES ((size_t)64 << 20)  /* 64 MiB: a label-map PNG */
#define DL_VOC_MAX_JPEG_BYTES ((size_t)64 << 20) /* 64 MiB: a JPEG (as runtime/image.c) */
#define DL_VOC_MAX_PIXELS INT64_C(50000000)      /* width x height of an image or mask
                                                    (as runtime/image.c) */

/* The 20 class names in VOC order, index 0..19: aeroplane bicycle bird boat
 * bottle bus car cat chair cow diningtable dog horse motorbike person
 * pottedplant sheep sofa train tvmonitor.  Class i is label-map index i + 1. */
extern const char *const dl_voc_classes[DL_VOC_NCLASSES];

/* The index 0..19 of a class name (exact, case-sensitive), or -1. */
int dl_voc_class_index(const char *name);

/* ---- image lists ---------------------------------------------------------- */

/* The ids of an image list, in file order. */
typedef struct DlVocList {
    int n;       /* number of ids */
    char **ids;  /* [n] NUL-terminated ids, pointing into store */
    char *store; /* the file's text, owned */
} DlVocList;

/* Read an ImageSets list: one id per line, an id being 1..DL_VOC_MAX_ID_LEN
 * characters of [A-Za-z0-9_].  Lines of only spaces, tabs or '\r' are skipped;
 * a '\r' ending a line (CRLF files) is dropped.  *out is zeroed first; free it
 * with dl_voc_list_free.  Returns 0, or -1 with *err:
 *   "NAME: cannot read: REASON"  (missing, a directory, over DL_VOC_MAX_LIST_BYTES)
 *   "NAME:LINE: expected one image id ([A-Za-z0-9_]+) per line, got 'TEXT'"
 *     (also a per-class list's "2008_000002 -1" line, or a NUL byte)
 *   "NAME:LINE: id of N characters, more than the 255 allowed"
 *   "NAME:LINE: id 'ID' is listed twice (first at line L)"
 *   "NAME:LINE: more than 1000000 ids"
 *   "NAME: no ids (an empty list)" */
int dl_voc_read_list(const char *path, const char *name, DlVocList *out, char **err);
void dl_voc_list_free(DlVocList *l);

/* ---- XML annotations ------------------------------------------------------ */

/* What one Annotations/ID.xml says about its image. */
typedef struct DlVocAnnotation {
    int width, height; /* size/width, size/height: pixels, positive */
    int segmented;     /* segmented: 1 if the image has a label map, 0 if not or absent */
    int nobjects;      /* annotation/object elements */
    int ndifficult;    /* of them with difficult = 1 */
    /* Per class (dl_voc_classes order), the VOC convention of the devkit's
     * classification ground truth: 1 if some object of the class is not
     * difficult, 0 if all its objects are difficult, -1 if it has none. */
    int8_t presence[DL_VOC_NCLASSES];
} DlVocAnnotation;

/* Read an annotation with libexpat.  The root element must be `annotation`;
 * read are annotation/size/width and /height (decimal integers, required),
 * annotation/segmented (0 or 1, optional), and of each annotation/object its
 * `name` (required, one of dl_voc_classes) and `difficult` (0 or 1; absent:
 * 0).  Text is trimmed of surrounding white space.  Other elements, such as
 * bndbox, pose, truncated and the objects' `part`s (whose names, e.g. "hand",
 * are body parts, not classes), are skipped.  An element read twice where
 * one is expected is an error.
 * Entity declarations (so any external entity, and entity-expansion bombs)
 * are refused, and expat never opens another file or URL: no external-entity
 * loader, parameter entities never parsed.
 * *out is zeroed first.  Returns 0, or -1 with *err:
 *   "NAME: cannot read: REASON"                 (missing, over DL_VOC_MAX_XML_BYTES)
 *   "NAME:LINE: malformed XML: EXPAT'S MESSAGE"  (also an empty or truncated file)
 *   "NAME:LINE: entity declarations are not allowed in an annotation (entity 'E')"
 *   "NAME:LINE: the root element is 'X', not 'annotation'"
 *   "NAME:LINE: class 'dragon' is not one of the 20 VOC classes"
 *   "NAME:LINE: object without a name (object N)"  (N counts from 1)
 *   "NAME:LINE: more than 10000 objects"
 *   "NAME:LINE: ELEM is 'TEXT', expected ..." (difficult, segmented not 0/1;
 *     width, height not a decimal integer)
 *   "NAME:LINE: ELEM is longer than 256 bytes"
 *   "NAME:LINE: more than one ELEM"  (size, width, height, segmented, an object's
 *     name or difficult)
 *   "NAME: no size/width" (or size/height)
 *   "NAME:LINE: size/width is 0, not positive" (or height; also negative values)
 *   "NAME: size 100000x100000 is more than the 50000000 pixels an image may have" */
int dl_voc_read_annotation(const char *path, const char *name, DlVocAnnotation *out, char **err);

/* ---- label maps ----------------------------------------------------------- */

/* A label map: data[y * width + x] is the class index of pixel (x, y),
 * 0..DL_VOC_NCLASSES or DL_VOC_VOID. */
typedef struct DlVocMask {
    int width, height;
    uint8_t *data; /* [height, width] row-major, malloc'd */
} DlVocMask;

/* Read a SegmentationClass PNG with libpng as palette indices: the palette's
 * colours are ignored, never expanded.  Accepted: colour type palette, bit
 * depth 8 (the VOC files), and 8-bit greyscale, whose grey values are taken
 * as the indices (as SegmentationClassAug-style maps are stored); interlaced
 * or not; any palette length (an index beyond it is still read as an index).
 * Every index must be 0..20 or 255.  The whole file is checked: a missing
 * IEND or a bad checksum is an error.  *out is zeroed first; free it with
 * dl_voc_mask_free.  Returns 0, or -1 with *err:
 *   "NAME: cannot read: REASON"     (missing, over DL_VOC_MAX_PNG_BYTES)
 *   "NAME: not a PNG file (no PNG signature)"
 *   "NAME: corrupt PNG: LIBPNG'S MESSAGE"  (bad chunk, CRC, zlib data)
 *   "NAME: truncated PNG (the file ends at byte N)"
 *   "NAME: the PNG is RGB (8-bit), not a palette-index label map"  (or
 *     RGBA, grey+alpha, greyscale of another depth, palette of depth < 8)
 *   "NAME: the PNG claims WxH pixels, more than the 50000000 a mask may have"
 *   "NAME: pixel (x=X, y=Y) has index V, not a class (0..20) or void (255)" */
int dl_voc_read_mask(const char *path, const char *name, DlVocMask *out, char **err);
void dl_voc_mask_free(DlVocMask *m);

/* Resize a label map src [sh, sw] to dst [dh, dw] by nearest neighbour at
 * pixel centres: dst(y, x) = src(floor((y + 0.5) sh / dh), floor((x + 0.5)
 * sw / dw)), in integers; class indices are copied, never interpolated. */
void dl_voc_resize_map(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* Write a label map as a palette PNG (libpng), the way VOC stores
 * SegmentationClass: 8-bit indices (0..20, 255 void) with the devkit's colour
 * map (VOClabelcolormap.m), so that image viewers show the classes in VOC's
 * colours and dl_voc_read_mask reads the indices back.  map: [height, width]
 * row-major.  The file is replaced whole or not at all (a temporary, then a
 * rename).  Returns 0, or -1 with *err: "PATH: cannot write: REASON". */
int dl_voc_write_mask(const char *path, const uint8_t *map, int width, int height, char **err);

/* The size of a JPEG image from its header (libjpeg-turbo), without decoding
 * it.  Returns 0 with *width, *height set, or -1 with *err:
 *   "NAME: cannot read: REASON", "NAME: not a readable JPEG: TURBOJPEG'S MESSAGE",
 *   "NAME: the JPEG claims WxH pixels, more than the 50000000 an image may have" */
int dl_voc_jpeg_size(const char *path, const char *name, int *width, int *height, char **err);

/* Check that a label map has its image's size (from the annotation or the
 * JPEG).  Returns 0, or -1 with *err:
 *   "MASK is WxH but its image is W2xH2 (IMAGE)"
 * MASK and IMAGE being the names given (NULL: "mask", "image"). */
int dl_voc_check_mask_size(const char *mask_name, const DlVocMask *m, const char *image_name, int width, int height,
                           char **err);

#endif
