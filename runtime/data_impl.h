/* data_impl.h - internals shared by the data loader's files (not a stage contract).
 *
 *   data.c     dl_data_load / dl_data_batch / dl_data_shuffle: binding -> samples
 *              -> parallel decode -> DlDataset
 *   sources.c  the source kinds (csv, utkface, pointing04), the CSV reader and the
 *              split join
 *   image.c    one JPEG -> crop -> resize -> uint8 [C,H,W]
 *   target.c, metrics.c, rng.c: the rest of runtime/data.h
 *
 * A load is: parse the binding (DataSpec), let the source list the samples
 * (SampleList: path, labels, optional face box, split), decode them, drop or
 * refuse the bad ones.  A bad sample carries its one-line reason in `bad`.
 */
#ifndef DL_DATA_IMPL_H
#define DL_DATA_IMPL_H

#include <stdint.h>
#include <stdio.h>

#include "data.h"

/* Where a label comes from: a manifest column, a field of the file name, a
 * .mat variable (n x 1), or the arg-max column of a .mat variable's rows. */
typedef enum { LBL_COLUMN, LBL_NAME, LBL_VAR, LBL_ARGMAX, LBL_OBJECTS, LBL_MASK } LabelFrom;

typedef struct LabelSpec {
    char *name;       /* label.N: the axis name, e.g. "age" */
    int from;         /* LabelFrom */
    char *field;      /* column name, or name field ("age", "pitch", "yaw", ...) */
} LabelSpec;

typedef enum { SPLIT_COLUMN, SPLIT_FOLDS, SPLIT_KFOLD } SplitKind;
typedef enum { CROP_NONE, CROP_FACE_BOX } CropKind;

/* The data binding (DlPlan.data) parsed and checked; paths are joined to the root. */
typedef struct DataSpec {
    const char *root;
    const char *source;          /* "csv" | "utkface" | "pointing04" */
    char *path;                  /* root/source.path */
    char *rel_path;              /* source.path as written (relative to the root) */
    char *images;                /* csv: root/source.images, NULL = next to the manifest */
    char *rel_images;
    const char *file_col;        /* csv: the file column (default "file") */
    int split;                   /* SplitKind */
    const char *split_col;       /* "split", "fold1" */
    char *split_path;            /* root/split.path, NULL if none */
    char *rel_split_path;
    int kfold_k, kfold_seed, kfold_fold; /* SPLIT_KFOLD: folds, permutation seed, test fold */
    int nlabels;
    LabelSpec labels[DL_MAX_AXES];
    int ndist;                   /* per-sample fields: dist.N = name, dist.N.from = var:VARIABLE (mat: label
                                    distributions) or objects:xml (voc: class presence of the annotation) */
    char *dist_name[DL_PLAN_MAX_TARGETS], *dist_var[DL_PLAN_MAX_TARGETS];
    int dist_from[DL_PLAN_MAX_TARGETS]; /* LabelFrom: LBL_VAR, LBL_OBJECTS or LBL_MASK */
    char *list, *rel_list;       /* voc: the image list, source.list (relative to source.path) */
    int features;                /* input = features: vectors of `dims` floats (a mat source) */
    int dims, standardize;
    const char *features_var;    /* mat: source.features */
    int quiet;                   /* no warnings about the data itself (--cv: shown for the first fold only) */
    int C, H, W;
    float lo, hi;
    int crop;                    /* CropKind */
    float crop_scale;
    int hflip;
    int crop_pad;      /* augment.random_crop.pad */
    float scale_min, scale_max; /* augment.random_scale: zoom factors (1, 1: none) */
    int negate[DL_MAX_AXES];
} DataSpec;

/* Parse the binding; 0 or -1 with *err.  Paths in spec are malloc'd. */
int data_spec_parse(const DlPlan *plan, const char *root, DataSpec *spec, char **err);
void data_spec_free(DataSpec *spec);

typedef struct Sample {
    char *path;        /* for opening: root/... */
    char *rel;         /* relative to the data root, for messages and DlDataset.files */
    char *key_dir;     /* path relative to the source folder (join key for splits) */
    char *key_parent;  /* path relative to the source folder's parent (join key) */
    float labels[DL_MAX_AXES];
    int split;         /* DlSplit, or -1 = not assigned yet */
    int has_box;
    float box[4];      /* face box: centre x, centre y, width, height (pixels) */
    float *vec;        /* features: [dims] (malloc'd), else NULL */
    float *dist;       /* distribution fields' rows, concatenated (malloc'd), else NULL */
    char *bad;         /* NULL, or why this sample cannot be used (malloc'd) */
} Sample;

typedef struct SampleList {
    Sample *a;
    size_t n, cap;
    int dist_width[DL_PLAN_MAX_TARGETS]; /* per distribution field, set by the source */
} SampleList;

Sample *sample_push(SampleList *l);
void sample_list_free(SampleList *l);

/* One row per source kind: list the samples (labels, boxes; split when the
 * source carries it), reporting per-sample problems in Sample.bad.  Returns 0
 * or -1 with *err for what fails the whole load (missing folder, bad header). */
typedef int (*SourceScan)(const DataSpec *spec, SampleList *out, char **err);
typedef struct SourceKind {
    const char *name;
    SourceScan scan;
} SourceKind;
const SourceKind *source_find(const char *name);
/* The mat source (sources_mat.c): rows of MATLAB variables through libmatio. */
int scan_mat(const DataSpec *spec, SampleList *out, char **err);
/* The voc source (sources_voc.c): a VOCdevkit folder and an image list. */
int scan_voc(const DataSpec *spec, SampleList *out, char **err);
const char *source_kind_names(void); /* "csv, utkface, pointing04" */

/* Assign Sample.split from spec->split_path (folds, or a split column joined
 * by file); samples already assigned by their source are kept.  Samples left
 * without a split get Sample.bad.  0 or -1 with *err (missing file, a value
 * other than train/test: "FILE:LINE: ..."). */
int split_assign(const DataSpec *spec, SampleList *l, char **err);

/* Read a Pointing'04 face-box file: the image name, a blank line, "Face", then
 * centre x, centre y, width, height, one per line.  0, or -1 with *err. */
int read_face_box(const char *path, float box[4], char **err);

/* ---- a small RFC 4180 CSV reader (sources.c) ----------------------------- */
typedef struct CsvRow {
    char **f;          /* fields (malloc'd, unquoted) */
    int n;
    int line;          /* 1-based line where the record starts */
} CsvRow;
typedef struct CsvFile {
    const char *name;  /* for messages */
    CsvRow *rows;      /* rows[0] is the header */
    int nrows;
} CsvFile;
/* Parse a whole file: quoted fields with "" escapes and embedded newlines,
 * CRLF or LF, a UTF-8 BOM; every record must have the header's field count.
 * 0 or -1 with *err naming "file:line". */
int csv_read(const char *path, const char *name, CsvFile *out, char **err);
int csv_column(const CsvFile *c, const char *col); /* -1 if absent */
void csv_free(CsvFile *c);

/* ---- images (image.c) ----------------------------------------------------- */
typedef struct ImageDecoder ImageDecoder;  /* one per thread (a tjhandle) */
ImageDecoder *image_decoder_new(void);
void image_decoder_free(ImageDecoder *dec);
/* Decode the JPEG at path, crop to the face box if box != NULL (a square of
 * side max(w,h)*crop_scale centred on it, edge pixels repeated past the
 * border), resize to HxW (triangle filter, linear colour space, as PIL's
 * BILINEAR) and store uint8 [C,H,W] in out.  C = 3 (RGB) or 1 (luminance).
 * Returns 0, or -1 with a malloc'd reason in *why (e.g. "not a JPEG: ..."). */
int image_load(ImageDecoder *dec, const char *path, const float *box, float crop_scale,
               int C, int H, int W, uint8_t *out, char **why);

#endif
