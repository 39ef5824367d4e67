/* matfile.c - numeric MAT-file variables as float32 row-major matrices (see matfile.h).
 *
 * A read is: open (stat, size, libmatio's Mat_Open; v5 and v7.3 only), read the
 * variable's header (Mat_VarReadInfo: class, rank, dims, without the data),
 * check it, and only then read the data (Mat_VarRead) and transpose it into
 * float32.  libmatio reports problems through a global log function, and some
 * of them only as warnings: a truncated compressed variable comes back
 * zero-filled with a "Read beyond EOF" warning.  So the log is captured per
 * thread and any error, critical or warning message during a step fails it.
 */
#include <fcntl.h>
#include <errno.h>
#include <math.h>
#include <matio.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"
#include "matfile.h"

/* ---- libmatio's log, captured --------------------------------------------- */

static _Thread_local int log_count;      /* messages since log_reset */
static _Thread_local char log_last[200]; /* the last of them, on one line */

/* Keep the last message, whitespace runs collapsed; of HDF5's error stack
 * (several lines with file and line numbers) only the "minor:" text. */
static void log_capture(int level, char *msg)
{
    if (!(level & ((MATIO_LOG_LEVEL_ERROR) | (MATIO_LOG_LEVEL_CRITICAL) | (MATIO_LOG_LEVEL_WARNING)))) return;
    log_count++;
    if (!msg) return;
    const char *minor = strstr(msg, "minor: "), *s = msg;
    size_t n = 0;
    if (strncmp(msg, "HDF5 error", 10) == 0 && minor) {
        strcpy(log_last, "HDF5: ");
        n = 6, s = minor + 7;
    }
    for (int space = 0; *s && n + 1 < sizeof log_last; s++) {
        int c = (*s >= 0x20 && *s < 0x7f) ? *s : ' ';
        if (c == ' ' && (space || n == 0)) continue;
        space = c == ' ';
        log_last[n++] = (char)c;
    }
    while (n > 0 && log_last[n - 1] == ' ') n--;
    log_last[n] = 0;
}

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static void log_install(void) { Mat_LogInitFunc("dldl", log_capture); }

static void log_reset(void)
{
    pthread_once(&log_once, log_install);
    log_count = 0;
    log_last[0] = 0;
}

/* The last captured message, or `fallback`. */
static const char *log_text(const char *fallback) { return log_last[0] ? log_last : fallback; }

/* ---- messages -------------------------------------------------------------- */

/* A variable name fit for a one-line message: printable ASCII, at most 64 chars. */
static char *clean(const char *s)
{
    size_t n = strlen(s), m = n > 64 ? 64 : n;
    char *c = dl_xmalloc(m + 4);
    for (size_t i = 0; i < m; i++) c[i] = (s[i] >= 0x20 && s[i] < 0x7f) ? s[i] : '?';
    strcpy(c + m, n > m ? "..." : "");
    return c;
}

/* "2x3x4" (the first 8 dimensions, then "x..."). */
static void dims_text(const matvar_t *v, char *buf, size_t size)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < v->rank && at < size; i++) {
        if (i == 8) {
            snprintf(buf + at, size - at, "x...");
            break;
        }
        at += (size_t)snprintf(buf + at, size - at, "%s%zu", i ? "x" : "", v->dims[i]);
    }
}

static const char *class_name(const matvar_t *v)
{
    if (v->isLogical) return "logical";
    switch (v->class_type) {
    case MAT_C_DOUBLE: return "double";
    case MAT_C_SINGLE: return "single";
    case MAT_C_INT8: return "int8";
    case MAT_C_UINT8: return "uint8";
    case MAT_C_INT16: return "int16";
    case MAT_C_UINT16: return "uint16";
    case MAT_C_INT32: return "int32";
    case MAT_C_UINT32: return "uint32";
    case MAT_C_INT64: return "int64";
    case MAT_C_UINT64: return "uint64";
    default: return NULL; /* not numeric */
    }
}

/* Bytes per element of a numeric class. */
static int class_size(int cls)
{
    switch (cls) {
    case MAT_C_DOUBLE: case MAT_C_INT64: case MAT_C_UINT64: return 8;
    case MAT_C_SINGLE: case MAT_C_INT32: case MAT_C_UINT32: return 4;
    case MAT_C_INT16: case MAT_C_UINT16: return 2;
    case MAT_C_INT8: case MAT_C_UINT8: return 1;
    default: return 0;
    }
}

static const char *non_numeric(int cls)
{
    switch (cls) {
    case MAT_C_CELL: return "a cell array";
    case MAT_C_STRUCT: return "a struct";
    case MAT_C_OBJECT: return "an object";
    case MAT_C_CHAR: return "a char array (text)";
    case MAT_C_FUNCTION: return "a function handle";
    case MAT_C_OPAQUE: return "an opaque object (e.g. a string, table or categorical)";
    default: return "of an unknown class";
    }
}

/* ---- opening and listing --------------------------------------------------- */

static mat_t *mat_open(const char *path, const char *name, int64_t *size, char **err)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        *err = dl_xasprintf("%s: cannot open: %s", name, strerror(errno));
        return NULL;
    }
    struct stat st;
    int bad = fstat(fd, &st) ? errno : 0;
    close(fd);
    if (bad) {
        *err = dl_xasprintf("%s: cannot read: %s", name, strerror(bad));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        *err = dl_xasprintf("%s: not a regular file", name);
        return NULL;
    }
    if (st.st_size < 128) {
        *err = dl_xasprintf("%s: not a MAT-file (%lld bytes, shorter than the 128-byte header)", name,
                            (long long)st.st_size);
        return NULL;
    }
    *size = (int64_t)st.st_size;
    log_reset();
    mat_t *mat = Mat_Open(path, MAT_ACC_RDONLY);
    if (!mat) {
        *err = dl_xasprintf("%s: not a MAT-file (no MATLAB v5/v7/v7.3 header)", name);
        return NULL;
    }
    /* A v7.3 file that HDF5 cannot open still yields a mat_t, with messages. */
    if (log_count) {
        *err = dl_xasprintf("%s: cannot open: truncated or corrupt MAT-file (libmatio: %s)", name, log_text("?"));
        Mat_Close(mat);
        return NULL;
    }
    /* Without a v5 header libmatio tries version 4, which has no header at all
     * and so accepts much that is not a MAT-file: refused. */
    int ver = Mat_GetVersion(mat);
    if (ver != MAT_FT_MAT5 && ver != MAT_FT_MAT73) {
        Mat_Close(mat);
        *err = dl_xasprintf("%s: not a MAT-file of version 5, 7 or 7.3 (a version 4 file, or no MAT-file "
                            "at all; re-save it with save -v7)", name);
        return NULL;
    }
    return mat;
}

/* The variable names (copies), or -1 with *err when listing hits damage. */
static int list_names(mat_t *mat, const char *name, char ***names, int *n, char **err)
{
    *names = NULL;
    *n = 0;
    log_reset();
    size_t k = 0;
    char **dir = Mat_GetDir(mat, &k);
    if (log_count) {
        *err = dl_xasprintf("%s: truncated or corrupt MAT-file (libmatio: %s)", name, log_text("?"));
        return -1;
    }
    if (!dir || k == 0) return 0;
    if (k > INT32_MAX) k = INT32_MAX;
    *names = dl_xcalloc(k, sizeof **names);
    for (size_t i = 0; i < k; i++) (*names)[i] = dl_xstrdup(dir[i] ? dir[i] : "");
    *n = (int)k;
    return 0;
}

void dl_mat_list_free(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

int dl_mat_list(const char *path, const char *name, char ***names, int *n, char **err)
{
    *names = NULL;
    *n = 0;
    if (!name) name = path;
    int64_t size;
    mat_t *mat = mat_open(path, name, &size, err);
    if (!mat) return -1;
    int rc = list_names(mat, name, names, n, err);
    Mat_Close(mat);
    return rc;
}

/* "no variable 'x' (the file has: a, b, c)", at most 20 names. */
static char *missing_message(mat_t *mat, const char *name, const char *var)
{
    char **names, *err = NULL;
    int n;
    if (list_names(mat, name, &names, &n, &err)) return err;
    DlBuf b = {0};
    dl_buf_printf(&b, "%s: no variable '%s' (the file has", name, var);
    if (n == 0) dl_buf_printf(&b, " no variables)");
    for (int i = 0; i < n && i < 20; i++) {
        char *c = clean(names[i]);
        dl_buf_printf(&b, "%s%s", i ? ", " : ": ", c);
        free(c);
    }
    if (n > 20) dl_buf_printf(&b, ", ... (%d in all))", n);
    else if (n) dl_buf_printf(&b, ")");
    dl_mat_list_free(names, n);
    return b.s;
}

/* ---- reading ---------------------------------------------------------------- */

/* Check the header of a variable: a real full numeric matrix, 2-D up to trailing
 * singleton dimensions, non-empty, within the size bounds.  Sets rows, cols. */
static int check_header(const matvar_t *v, const char *name, const char *var, int64_t fsize, int64_t *rows,
                        int64_t *cols, char **err)
{
    char dims[128];
    dims_text(v, dims, sizeof dims);
    const char *cls = class_name(v);
    if (v->class_type == MAT_C_SPARSE) {
        *err = dl_xasprintf("%s: variable '%s' is sparse (%s); only full matrices are read (save full(X))", name, var,
                            dims);
        return -1;
    }
    if (!cls && v->class_type != MAT_C_EMPTY) {
        *err = dl_xasprintf("%s: variable '%s' is %s, not a numeric matrix", name, var, non_numeric(v->class_type));
        return -1;
    }
    if (v->isComplex) {
        *err = dl_xasprintf("%s: variable '%s' is complex (%s %s); only real matrices are read", name, var,
                            cls ? cls : "empty", dims);
        return -1;
    }
    if (v->rank < 1 || !v->dims) {
        *err = dl_xasprintf("%s: variable '%s' has no dimensions", name, var);
        return -1;
    }
    uint64_t n = 1;
    for (int i = 0; i < v->rank; i++) {
        uint64_t d = v->dims[i];
        n = (d && n > UINT64_MAX / d) ? UINT64_MAX : n * d;
    }
    if (n == 0 || v->class_type == MAT_C_EMPTY) {
        *err = dl_xasprintf("%s: variable '%s' is empty (%s)", name, var, dims);
        return -1;
    }
    for (int i = 2; i < v->rank; i++)
        if (v->dims[i] != 1) {
            *err = dl_xasprintf("%s: variable '%s' has %d dimensions (%s); expected a 2-D matrix", name, var, v->rank,
                                dims);
            return -1;
        }
    if (n > (uint64_t)DL_MAT_MAX_ELEMS) {
        *err = dl_xasprintf("%s: variable '%s' is %s, more than the %lld elements this reader accepts", name, var, dims,
                            (long long)DL_MAT_MAX_ELEMS);
        return -1;
    }
    if (n / DL_MAT_MAX_RATIO > (uint64_t)fsize) {
        *err = dl_xasprintf("%s: variable '%s' claims %s elements, more than a file of %lld bytes can hold "
                            "(corrupt file)", name, var, dims, (long long)fsize);
        return -1;
    }
    *rows = (int64_t)v->dims[0];
    *cols = v->rank > 1 ? (int64_t)v->dims[1] : 1;
    return 0;
}

/* ---- v5 framing -------------------------------------------------------------- */

/* libmatio reads an uncompressed (v6-style, e.g. scipy's default) variable
 * without checking that the file holds its data: a truncated file, or a header
 * claiming more elements than its data has, comes back with whatever was in
 * the buffer.  So the top-level elements of a v5 file are walked here (the
 * format's 8-byte tags: type, byte count), each must end within the file, and
 * the variable's own element, when stored uncompressed, must hold the bytes its
 * dimensions need.  Compressed elements are checked by libmatio's inflate. */

typedef struct V5 {
    int fd, le;      /* le: the file is little-endian ("IM" at byte 126) */
    int64_t size;
} V5;

static uint32_t rd32(const V5 *f, const unsigned char *p)
{
    return f->le ? (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24
                 : (uint32_t)p[3] | (uint32_t)p[2] << 8 | (uint32_t)p[1] << 16 | (uint32_t)p[0] << 24;
}

/* One sub-element of [*at, end): its type, byte count and data offset; *at
 * moves past it (8-byte aligned).  0, or -1 if it does not fit. */
static int v5_sub(const V5 *f, int64_t *at, int64_t end, uint32_t *type, uint32_t *n, int64_t *data)
{
    unsigned char t[8];
    if (end - *at < 8 || pread(f->fd, t, 8, *at) != 8) return -1;
    uint32_t w = rd32(f, t);
    if (w >> 16) { /* small data element: count and type in one word, data in the tag */
        *type = w & 0xffff, *n = w >> 16, *data = *at + 4;
        if (*n > 4) return -1;
        *at += 8;
        return 0;
    }
    *type = w, *n = rd32(f, t + 4), *data = *at + 8;
    int64_t padded = ((int64_t)*n + 7) / 8 * 8;
    if (padded > end - *at - 8) return -1;
    *at += 8 + padded;
    return 0;
}

static int v5_type_size(uint32_t type)
{
    switch (type) {
    case 1: case 2: return 1;           /* miINT8, miUINT8 */
    case 3: case 4: return 2;           /* miINT16, miUINT16 */
    case 5: case 6: case 7: return 4;   /* miINT32, miUINT32, miSINGLE */
    case 9: case 12: case 13: return 8; /* miDOUBLE, miINT64, miUINT64 */
    default: return 0;
    }
}

/* The uncompressed miMATRIX element [at, end): if it is `var`, its real part
 * must hold nelems elements.  0 (not var, or fine), or -1 with *err. */
static int v5_matrix(const V5 *f, int64_t at, int64_t end, const char *name, const char *var, const char *v,
                     uint64_t nelems, char **err)
{
    uint32_t type, n;
    int64_t data;
    char nm[64];
    size_t len = strlen(var);
    /* flags, dims, name: an element whose name cannot be found is not known to
     * be var's (libmatio found var's header), so it is left to libmatio */
    if (v5_sub(f, &at, end, &type, &n, &data) || v5_sub(f, &at, end, &type, &n, &data) ||
        v5_sub(f, &at, end, &type, &n, &data))
        return 0;
    if (n != len || len >= sizeof nm || pread(f->fd, nm, len, data) != (ssize_t)len || memcmp(nm, var, len))
        return 0;
    if (v5_sub(f, &at, end, &type, &n, &data) || !v5_type_size(type)) {
        *err = dl_xasprintf("%s: variable '%s': no numeric data after its name (corrupt MAT-file)", name, v);
        return -1;
    }
    if ((uint64_t)n / (uint64_t)v5_type_size(type) < nelems) {
        *err = dl_xasprintf("%s: variable '%s' holds %u bytes of data, fewer than its dimensions need (corrupt "
                            "MAT-file)", name, v, n);
        return -1;
    }
    return 0;
}

static int v5_check(const char *path, const char *name, const char *var, const char *v, uint64_t nelems, char **err)
{
    V5 f = {.fd = open(path, O_RDONLY)};
    struct stat st;
    unsigned char t[128];
    if (f.fd < 0 || fstat(f.fd, &st) || pread(f.fd, t, 128, 0) != 128) {
        *err = dl_xasprintf("%s: cannot read: %s", name, strerror(errno));
        if (f.fd >= 0) close(f.fd);
        return -1;
    }
    f.size = (int64_t)st.st_size;
    f.le = t[126] == 'I';
    int rc = 0;
    for (int64_t at = 128; rc == 0 && f.size - at >= 8; ) {
        if (pread(f.fd, t, 8, at) != 8) break;
        uint32_t type = rd32(&f, t), n = rd32(&f, t + 4);
        if ((int64_t)n > f.size - at - 8) {
            *err = dl_xasprintf("%s: variable '%s': truncated MAT-file (the element at byte %lld needs %lld bytes, the "
                                "file ends %lld bytes later)", name, v, (long long)at, (long long)n + 8,
                                (long long)(f.size - at));
            rc = -1;
        } else if (type == 14) { /* miMATRIX, uncompressed */
            rc = v5_matrix(&f, at + 8, at + 8 + n, name, var, v, nelems, err);
        }
        at += 8 + (int64_t)n;
    }
    close(f.fd);
    return rc;
}

#define TRANSPOSE(T)                                                                  \
    do {                                                                              \
        const T *s = src;                                                             \
        for (int64_t j = 0; j < cols; j++)                                            \
            for (int64_t i = 0; i < rows; i++) dst[i * cols + j] = (float)s[j * rows + i]; \
    } while (0)

static void transpose(const matvar_t *v, int64_t rows, int64_t cols, float *dst)
{
    const void *src = v->data;
    switch (v->class_type) {
    case MAT_C_DOUBLE: TRANSPOSE(double); break;
    case MAT_C_SINGLE: TRANSPOSE(float); break;
    case MAT_C_INT8: TRANSPOSE(int8_t); break;
    case MAT_C_UINT8: TRANSPOSE(uint8_t); break;
    case MAT_C_INT16: TRANSPOSE(int16_t); break;
    case MAT_C_UINT16: TRANSPOSE(uint16_t); break;
    case MAT_C_INT32: TRANSPOSE(int32_t); break;
    case MAT_C_UINT32: TRANSPOSE(uint32_t); break;
    case MAT_C_INT64: TRANSPOSE(int64_t); break;
    case MAT_C_UINT64: TRANSPOSE(uint64_t); break;
    default: break; /* excluded by check_header */
    }
}

int dl_mat_read(const char *path, const char *name, const char *var, DlMatrix *out, char **err)
{
    memset(out, 0, sizeof *out);
    if (!name) name = path;
    int64_t fsize = 0;
    mat_t *mat = mat_open(path, name, &fsize, err);
    if (!mat) return -1;
    char *v = clean(var);
    int rc = -1;
    int64_t rows = 0, cols = 0;
    matvar_t *full = NULL;
    log_reset();
    matvar_t *info = Mat_VarReadInfo(mat, var);
    if (!info || log_count) {
        if (log_count)
            *err = dl_xasprintf("%s: variable '%s': truncated or corrupt MAT-file (libmatio: %s)", name, v,
                                log_text("?"));
        else *err = missing_message(mat, name, v);
        goto done;
    }
    if (check_header(info, name, v, fsize, &rows, &cols, err)) goto done;
    if (Mat_GetVersion(mat) == MAT_FT_MAT5 && v5_check(path, name, var, v, (uint64_t)(rows * cols), err)) goto done;
    log_reset();
    full = Mat_VarRead(mat, var);
    if (!full || log_count) {
        *err = dl_xasprintf("%s: variable '%s': cannot read the data: truncated or corrupt MAT-file (libmatio: %s)",
                            name, v, log_text("no message"));
        goto done;
    }
    /* The data read must be what the header promised. */
    int same = full->class_type == info->class_type && !full->isComplex && full->rank == info->rank &&
               full->data && full->data_size == class_size(full->class_type);
    for (int i = 0; same && i < full->rank; i++) same = full->dims[i] == info->dims[i];
    if (!same || full->nbytes < (size_t)(rows * cols) * (size_t)full->data_size) {
        *err = dl_xasprintf("%s: variable '%s': the data does not match its header (corrupt MAT-file)", name, v);
        goto done;
    }
    out->data = dl_xmalloc((size_t)(rows * cols) * sizeof(float));
    out->rows = rows;
    out->cols = cols;
    transpose(full, rows, cols, out->data);
    rc = 0;
done:
    Mat_VarFree(info);
    Mat_VarFree(full);
    Mat_Close(mat);
    free(v);
    return rc;
}

void dl_mat_free(DlMatrix *m)
{
    free(m->data);
    memset(m, 0, sizeof *m);
}

int64_t dl_mat_first_nonfinite(const DlMatrix *m)
{
    int64_t n = m->data ? m->rows * m->cols : 0;
    for (int64_t i = 0; i < n; i++)
        if (!isfinite(m->data[i])) return i;
    return -1;
}
