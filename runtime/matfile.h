/* matfile.h - numeric variables of MATLAB .mat files as float32 matrices (libmatio).
 *
 * Reads MAT-files of versions 5/6/7 (compressed or not) and 7.3 (HDF5); version 4
 * files are refused.  A variable must be a real, full, numeric matrix of at most
 * 2 dimensions (trailing singleton dimensions, e.g. 5x3x1, count as 2-D): class
 * double, single, int8..uint64, or logical (read as 0/1).  Its values become
 * float32 (doubles beyond float32's range become +-inf) and are stored row-major,
 * i.e. transposed from MATLAB's column-major order: element (i, j), 0-based, is
 * data[i * cols + j].  Non-finite values are kept: see dl_mat_first_nonfinite.
 *
 * Errors are one malloc'd line naming the file (as `name` gives it, e.g. relative
 * to the data root) and the variable.  Input is not trusted: a variable may claim
 * at most DL_MAT_MAX_ELEMS elements, and no more than DL_MAT_MAX_RATIO per byte of
 * the file (deflate expands at most about 1032x), so a small hostile file cannot
 * make the reader allocate much; a truncated or corrupt file is an error, never
 * zero-filled data.  libmatio's own messages are captured into those errors, not
 * printed.  Calls on v5 files may run in several threads at once; calls on v7.3
 * files must not (Debian's HDF5 is not thread-safe).
 */
#ifndef DL_MATFILE_H
#define DL_MATFILE_H

#include <stdint.h>

#define DL_MAT_MAX_ELEMS (INT64_C(1) << 31)
#define DL_MAT_MAX_RATIO 1100

/* A dense float32 matrix: element (i, j) is data[i * cols + j]. */
typedef struct DlMatrix {
    int64_t rows, cols;
    float *data; /* row-major [rows, cols], malloc'd; NULL when empty */
} DlMatrix;

/* Read variable `var` of the MAT-file at `path` into *out (zeroed first; free it
 * with dl_mat_free).  `name` is the file's name for messages (NULL: path).
 * Returns 0, or -1 with *err set: the file missing or unreadable or not a v5/v7.3
 * MAT-file or truncated; the variable missing (the message lists the variables
 * the file has), not numeric (char, cell, struct, object, function), complex,
 * sparse, empty, of more than 2 dimensions, or too large. */
int dl_mat_read(const char *path, const char *name, const char *var, DlMatrix *out, char **err);

/* Free m->data and zero *m; safe on a zeroed matrix. */
void dl_mat_free(DlMatrix *m);

/* The flat index (i * cols + j) of the first NaN or infinity, or -1 if none. */
int64_t dl_mat_first_nonfinite(const DlMatrix *m);

/* The names of the file's variables, in file order: *names malloc'd (NULL when
 * the file has none), each name malloc'd; free with dl_mat_list_free.  Returns 0,
 * or -1 with *err (as dl_mat_read; a file whose variables cannot all be listed,
 * e.g. a truncated one, is an error). */
int dl_mat_list(const char *path, const char *name, char ***names, int *n, char **err);
void dl_mat_list_free(char **names, int n);

#endif
