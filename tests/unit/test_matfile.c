/* test_matfile.c - MAT-file variables through libmatio (runtime/matfile.c).
 *
 * Writes small MAT-files with libmatio into a temporary folder: a double matrix
 * with known values (v5 plain, v5 compressed, v7.3; checks the transposition to
 * row-major), single, int16, int32, uint64 and logical ones, a 2x3x1 array
 * (2-D); then what is refused, each with its message: a missing variable (the
 * message lists the others), a 3-D array, complex, char, cell, struct, sparse
 * and empty variables, files that are not MAT-files (random bytes, text, empty,
 * version 4, missing, a folder), truncated files (compressed, plain, v7.3), a
 * damaged deflate stream, and headers claiming more elements than allowed, than
 * the file can hold, or than the variable's data holds.  Then, when the data
 * root is there (skipped with a message otherwise), every .mat file of ldl/:
 * features and labels with equal row counts, finite, each label row summing to
 * about 1 (FG-Net's 0.57..1: its Gaussians are cut to 0..69, not renormalised),
 * FG-Net's age and x, and a truncated copy of SJAFFE.mat.
 * DLDL_TEST_VERBOSE=1 prints every error message checked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <math.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../runtime/matfile.h"

static char tmpdir[] = "/tmp/dldl_test_matfile_XXXXXX";

/* ---- helpers -------------------------------------------------------------- */

static char *tpath(const char *rel) { return dl_xasprintf("%s/%s", tmpdir, rel); }

static matvar_t *var_new(const char *name, enum matio_classes cls, enum matio_types type, int rank, size_t *dims,
                         void *data, int opt)
{
    matvar_t *v = Mat_VarCreate(name, cls, type, rank, dims, data, opt);
    assert_non_null(v);
    return v;
}

/* Write the variables (freeing them) to tmpdir/rel. */
static void write_mat(const char *rel, enum mat_ft ver, enum matio_compression z, matvar_t **vars, int n)
{
    char *p = tpath(rel);
    mat_t *m = Mat_CreateVer(p, NULL, ver);
    assert_non_null(m);
    for (int i = 0; i < n; i++) {
        assert_int_equal(Mat_VarWrite(m, vars[i], z), 0);
        Mat_VarFree(vars[i]);
    }
    Mat_Close(m);
    free(p);
}

static void write_bytes(const char *rel, const void *data, size_t n)
{
    char *p = tpath(rel);
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    fclose(f);
    free(p);
}

static unsigned char *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    assert_int_equal(fseek(f, 0, SEEK_END), 0);
    long size = ftell(f);
    rewind(f);
    unsigned char *b = dl_xmalloc((size_t)size + 1);
    assert_int_equal(fread(b, 1, (size_t)size, f), (size_t)size);
    fclose(f);
    *n = (size_t)size;
    return b;
}

/* Copy the first `keep` bytes of src (a full path) to tmpdir/rel. */
static void truncated_copy(const char *src, const char *rel, size_t keep)
{
    size_t n;
    unsigned char *b = slurp(src, &n);
    assert_true(keep < n);
    write_bytes(rel, b, keep);
    free(b);
}

static void read_ok(const char *rel, const char *var, DlMatrix *m)
{
    char *p = tpath(rel), *err = NULL;
    int rc = dl_mat_read(p, rel, var, m, &err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_null(err);
    free(p);
}

/* The error of a read that must fail; the output matrix is left zeroed. */
static char *read_err(const char *rel, const char *var)
{
    char *p = tpath(rel), *err = NULL;
    DlMatrix m = {1, 1, (float *)&m};
    int rc = dl_mat_read(p, rel, var, &m, &err);
    if (rc == 0) fprintf(stderr, "%s: '%s' read as %lldx%lld, expected an error\n", rel, var, (long long)m.rows,
                         (long long)m.cols);
    assert_int_equal(rc, -1);
    assert_non_null(err);
    assert_null(m.data);
    assert_true(m.rows == 0 && m.cols == 0);
    assert_null(strchr(err, '\n'));
    if (getenv("DLDL_TEST_VERBOSE")) printf("  %s\n", err);
    free(p);
    return err;
}

static void expect_err(const char *rel, const char *var, const char *want)
{
    char *err = read_err(rel, var);
    if (strcmp(err, want)) fprintf(stderr, "got:  %s\nwant: %s\n", err, want);
    assert_string_equal(err, want);
    free(err);
}

/* The error must start with `prefix` and contain `part`. */
static void expect_err_like(const char *rel, const char *var, const char *prefix, const char *part)
{
    char *err = read_err(rel, var);
    if (strncmp(err, prefix, strlen(prefix)) || !strstr(err, part))
        fprintf(stderr, "got: %s\nwant: %s...%s...\n", err, prefix, part);
    assert_memory_equal(err, prefix, strlen(prefix));
    assert_non_null(strstr(err, part));
    free(err);
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

/* ---- what is read ------------------------------------------------------------ */

/* MATLAB's [1 2 3; 4 5 6], column-major. */
static double a23[] = {1, 4, 2, 5, 3, 6};

static void check_a23(const DlMatrix *m)
{
    assert_int_equal(m->rows, 2);
    assert_int_equal(m->cols, 3);
    for (int i = 0; i < 6; i++) assert_true(m->data[i] == (float)(i + 1));
    assert_int_equal(dl_mat_first_nonfinite(m), -1);
}

static void test_double(void **state)
{
    static const struct { const char *rel; enum mat_ft ver; enum matio_compression z; } files[] = {
        {"a_plain.mat", MAT_FT_MAT5, MAT_COMPRESSION_NONE},
        {"a_zlib.mat", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB},
        {"a_v73.mat", MAT_FT_MAT73, MAT_COMPRESSION_NONE},
    };
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        size_t d23[] = {2, 3}, d12[] = {1, 2}, d231[] = {2, 3, 1};
        double big[] = {1e300, -1e300};
        matvar_t *v[] = {
            var_new("A", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d23, a23, 0),
            var_new("big", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d12, big, 0),
            var_new("A3", MAT_C_DOUBLE, MAT_T_DOUBLE, 3, d231, a23, 0),
        };
        write_mat(files[f].rel, files[f].ver, files[f].z, v, 3);
        DlMatrix m;
        read_ok(files[f].rel, "A", &m);
        check_a23(&m);
        dl_mat_free(&m);
        assert_null(m.data);
        assert_int_equal(m.rows, 0);
        dl_mat_free(&m); /* twice is harmless */

        /* doubles beyond float32's range become infinities: kept, and found */
        read_ok(files[f].rel, "big", &m);
        assert_int_equal(m.rows, 1);
        assert_int_equal(m.cols, 2);
        assert_true(isinf(m.data[0]) && m.data[0] > 0);
        assert_true(isinf(m.data[1]) && m.data[1] < 0);
        assert_int_equal(dl_mat_first_nonfinite(&m), 0);
        dl_mat_free(&m);

        /* a trailing singleton dimension is still 2-D (matio keeps it in v5) */
        read_ok(files[f].rel, "A3", &m);
        check_a23(&m);
        dl_mat_free(&m);

        char **names;
        int n;
        char *p = tpath(files[f].rel), *err = NULL;
        assert_int_equal(dl_mat_list(p, files[f].rel, &names, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_string_equal(names[0], "A");
        dl_mat_list_free(names, n);
        free(p);
    }
    DlMatrix z = {0};
    assert_int_equal(dl_mat_first_nonfinite(&z), -1);
}

static void test_single_int(void **state)
{
    size_t d32[] = {3, 2}, d22[] = {2, 2}, d13[] = {1, 3};
    float s[] = {0.5f, -1.25f, NAN, 2, 3, 4};  /* [0.5 2; -1.25 3; NaN 4] */
    int32_t i32[] = {-7, INT32_MAX, 3, INT32_MIN}; /* [-7 3; MAX MIN] */
    uint8_t l[] = {1, 0, 1};
    int16_t i16[] = {-300, 5, 7, 9};
    uint64_t u64[] = {0, 1, UINT64_C(1) << 40, 3};
    matvar_t *v[] = {
        var_new("s", MAT_C_SINGLE, MAT_T_SINGLE, 2, d32, s, 0),
        var_new("i", MAT_C_INT32, MAT_T_INT32, 2, d22, i32, 0),
        var_new("mask", MAT_C_UINT8, MAT_T_UINT8, 2, d13, l, MAT_F_LOGICAL),
        var_new("h", MAT_C_INT16, MAT_T_INT16, 2, d22, i16, 0),
        var_new("u", MAT_C_UINT64, MAT_T_UINT64, 2, d22, u64, 0),
    };
    write_mat("num.mat", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB, v, 5);
    DlMatrix m;
    read_ok("num.mat", "s", &m);
    assert_int_equal(m.rows, 3);
    assert_int_equal(m.cols, 2);
    assert_true(m.data[0] == 0.5f && m.data[1] == 2 && m.data[2] == -1.25f && m.data[3] == 3);
    assert_true(isnan(m.data[4]) && m.data[5] == 4);
    assert_int_equal(dl_mat_first_nonfinite(&m), 4); /* row 2, column 0 */
    dl_mat_free(&m);

    read_ok("num.mat", "i", &m);
    assert_int_equal(m.rows, 2);
    assert_int_equal(m.cols, 2);
    assert_true(m.data[0] == -7 && m.data[1] == 3);
    assert_true(m.data[2] == 2147483648.0f && m.data[3] == -2147483648.0f);
    dl_mat_free(&m);

    read_ok("num.mat", "mask", &m);
    assert_int_equal(m.rows, 1);
    assert_int_equal(m.cols, 3);
    assert_true(m.data[0] == 1 && m.data[1] == 0 && m.data[2] == 1);
    dl_mat_free(&m);

    read_ok("num.mat", "h", &m);
    assert_true(m.data[0] == -300 && m.data[1] == 7 && m.data[2] == 5 && m.data[3] == 9);
    dl_mat_free(&m);

    read_ok("num.mat", "u", &m);
    assert_true(m.data[0] == 0 && m.data[1] == 1099511627776.0f && m.data[2] == 1 && m.data[3] == 3);
    dl_mat_free(&m);
}

/* ---- what is refused ---------------------------------------------------------- */

static void test_refused_variables(void **state)
{
    size_t d11[] = {1, 1}, d15[] = {1, 5}, d22[] = {2, 2}, d234[] = {2, 3, 4}, d03[] = {0, 3};
    double one = 1, cube[24] = {0}, re[] = {1, 2, 3, 4}, im[] = {0, 1, 0, 1};
    mat_complex_split_t z = {re, im};
    /* a cell {1}: the pointer array is copied, the element is owned by the cell */
    matvar_t *cells[1] = {var_new(NULL, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0)};
    const char *fields[] = {"a"};
    matvar_t *st = Mat_VarCreateStruct("st", 2, d11, fields, 1);
    assert_non_null(st);
    Mat_VarSetStructFieldByName(st, "a", 0, var_new("a", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0));
    /* sparse [0 5; 0 0] */
    mat_uint32_t ir[] = {0}, jc[] = {0, 0, 1};
    double sd[] = {5};
    mat_sparse_t sp = {.nzmax = 1, .ir = ir, .nir = 1, .jc = jc, .njc = 3, .ndata = 1, .data = sd};
    matvar_t *v[] = {
        var_new("alpha", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0),
        var_new("cube", MAT_C_DOUBLE, MAT_T_DOUBLE, 3, d234, cube, 0),
        var_new("z", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d22, &z, MAT_F_COMPLEX),
        var_new("txt", MAT_C_CHAR, MAT_T_UINT8, 2, d15, "hello", 0),
        var_new("c", MAT_C_CELL, MAT_T_CELL, 2, d11, cells, 0),
        st,
        var_new("sp", MAT_C_SPARSE, MAT_T_DOUBLE, 2, d22, &sp, 0),
        var_new("e", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d03, NULL, 0),
    };
    write_mat("bad.mat", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB, v, 8);

    expect_err("bad.mat", "gamma", "bad.mat: no variable 'gamma' (the file has: alpha, cube, z, txt, c, st, sp, e)");
    expect_err("bad.mat", "cube", "bad.mat: variable 'cube' has 3 dimensions (2x3x4); expected a 2-D matrix");
    expect_err("bad.mat", "z", "bad.mat: variable 'z' is complex (double 2x2); only real matrices are read");
    expect_err("bad.mat", "txt", "bad.mat: variable 'txt' is a char array (text), not a numeric matrix");
    expect_err("bad.mat", "c", "bad.mat: variable 'c' is a cell array, not a numeric matrix");
    expect_err("bad.mat", "st", "bad.mat: variable 'st' is a struct, not a numeric matrix");
    expect_err("bad.mat", "sp", "bad.mat: variable 'sp' is sparse (2x2); only full matrices are read (save full(X))");
    expect_err("bad.mat", "e", "bad.mat: variable 'e' is empty (0x3)");
    /* the one good variable still reads */
    DlMatrix m;
    read_ok("bad.mat", "alpha", &m);
    assert_true(m.rows == 1 && m.cols == 1 && m.data[0] == 1);
    dl_mat_free(&m);

    /* a name fit for one line; a file without variables */
    expect_err_like("bad.mat", "a\nb", "bad.mat: no variable 'a?b' (the file has: alpha", "");
    write_mat("none.mat", MAT_FT_MAT5, MAT_COMPRESSION_NONE, NULL, 0);
    expect_err("none.mat", "features", "none.mat: no variable 'features' (the file has no variables)");

    /* more than 20 variables: the first 20 and the count */
    matvar_t *many[25];
    for (int i = 0; i < 25; i++) {
        char name[16];
        snprintf(name, sizeof name, "v%d", i);
        many[i] = var_new(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0);
    }
    write_mat("many.mat", MAT_FT_MAT5, MAT_COMPRESSION_NONE, many, 25);
    expect_err_like("many.mat", "x", "many.mat: no variable 'x' (the file has: v0, v1, v2,", "v19, ... (25 in all))");
}

static void test_not_mat(void **state)
{
    unsigned char junk[4096];
    uint32_t x = 12345;
    for (size_t i = 0; i < sizeof junk; i++) x = x * 1664525u + 1013904223u, junk[i] = (unsigned char)(x >> 24);
    write_bytes("random.mat", junk, sizeof junk);
    expect_err_like("random.mat", "features", "random.mat: not a MAT-file", "");
    DlBuf text = {0};
    dl_buf_printf(&text, "features,labels\n");
    for (int i = 0; i < 40; i++) dl_buf_printf(&text, "%d,%d\n", i, 2 * i);
    write_bytes("text.mat", text.s, text.n);
    dl_buf_free(&text);
    expect_err_like("text.mat", "features", "text.mat: not a MAT-file", "");
    write_bytes("empty.mat", "", 0);
    expect_err("empty.mat", "features", "empty.mat: not a MAT-file (0 bytes, shorter than the 128-byte header)");
    /* a version 4 file (no header; libmatio's fallback for headerless files) */
    size_t d45[] = {4, 5};
    double a45[20] = {0};
    matvar_t *v4[] = {var_new("features", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d45, a45, 0)};
    write_mat("v4.mat", MAT_FT_MAT4, MAT_COMPRESSION_NONE, v4, 1);
    expect_err("v4.mat", "features", "v4.mat: not a MAT-file of version 5, 7 or 7.3 (a version 4 file, or no "
                                     "MAT-file at all; re-save it with save -v7)");
    expect_err("missing.mat", "features", "missing.mat: cannot open: No such file or directory");
    char *d = tpath("folder.mat");
    assert_int_equal(mkdir(d, 0755), 0);
    free(d);
    expect_err("folder.mat", "features", "folder.mat: not a regular file");
    char **names = (char **)1, *err = NULL;
    int n = 7;
    char *p = tpath("random.mat");
    assert_int_equal(dl_mat_list(p, NULL, &names, &n, &err), -1);
    assert_null(names);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err, "random.mat: not a MAT-file"));
    free(err);
    free(p);
}

static void test_truncated(void **state)
{
    /* 200x60 pseudo-random doubles: about 96 kB, compressing little */
    size_t dims[] = {200, 60}, d11[] = {1, 1};
    double *a = dl_xmalloc(200 * 60 * sizeof *a), one = 1;
    uint32_t x = 7;
    for (int i = 0; i < 200 * 60; i++) x = x * 1664525u + 1013904223u, a[i] = x / 4294967296.0;
    static const struct { const char *rel; enum mat_ft ver; enum matio_compression z; } files[] = {
        {"t_zlib.mat", MAT_FT_MAT5, MAT_COMPRESSION_ZLIB},
        {"t_plain.mat", MAT_FT_MAT5, MAT_COMPRESSION_NONE},
        {"t_v73.mat", MAT_FT_MAT73, MAT_COMPRESSION_NONE},
    };
    for (size_t f = 0; f < sizeof files / sizeof *files; f++) {
        matvar_t *v[] = {var_new("first", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0),
                         var_new("features", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, a, 0)};
        write_mat(files[f].rel, files[f].ver, files[f].z, v, 2);
        char *p = tpath(files[f].rel), cut[64];
        struct stat st;
        assert_int_equal(stat(p, &st), 0);
        DlMatrix m;
        read_ok(files[f].rel, "features", &m);
        assert_true(m.rows == 200 && m.cols == 60 && m.data[1] == (float)a[200] && m.data[60] == (float)a[1]);
        dl_mat_free(&m);
        /* cut in the data of `features`, and just before the end */
        const size_t keeps[] = {(size_t)st.st_size / 2, (size_t)st.st_size - 8};
        for (int k = 0; k < 2; k++) {
            snprintf(cut, sizeof cut, "cut%d_%s", k, files[f].rel);
            truncated_copy(p, cut, keeps[k]);
            char *err = read_err(cut, "features");
            if (files[f].ver == MAT_FT_MAT5) {
                assert_non_null(strstr(err, ": variable 'features': truncated MAT-file ("));
            } else {
                char *want = dl_xasprintf("%s: cannot open: truncated or corrupt MAT-file (libmatio: HDF5: File has "
                                          "been truncated)", cut);
                assert_string_equal(err, want);
                free(want);
            }
            free(err);
        }
        if (files[f].z == MAT_COMPRESSION_ZLIB) {
            /* framing intact, deflate stream damaged: libmatio's inflate reports it */
            size_t n;
            unsigned char *b = slurp(p, &n);
            memset(b + n / 2, 0xff, 64);
            write_bytes("damaged.mat", b, n);
            free(b);
            expect_err_like("damaged.mat", "features", "damaged.mat: variable 'features': ",
                            "truncated or corrupt MAT-file (libmatio: ");
        }
        free(p);
    }
    free(a);
}

/* A v5 header that claims more than its data: dims patched in a plain file. */
static void test_claimed_size(void **state)
{
    size_t d11[] = {1, 1};
    double one = 1;
    matvar_t *v[] = {var_new("big", MAT_C_DOUBLE, MAT_T_DOUBLE, 2, d11, &one, 0)};
    write_mat("claim.mat", MAT_FT_MAT5, MAT_COMPRESSION_NONE, v, 1);
    char *p = tpath("claim.mat");
    size_t n;
    unsigned char *b = slurp(p, &n);
    free(p);
    /* 128-byte header, miMATRIX tag (8), array flags (16), dims tag (8), dims */
    int32_t dims[2];
    memcpy(dims, b + 160, 8);
    assert_true(dims[0] == 1 && dims[1] == 1);
    dims[0] = dims[1] = 50000;
    memcpy(b + 160, dims, 8);
    write_bytes("huge.mat", b, n);
    expect_err("huge.mat", "big",
               "huge.mat: variable 'big' is 50000x50000, more than the 2147483648 elements this reader accepts");
    dims[0] = dims[1] = 1000;
    memcpy(b + 160, dims, 8);
    write_bytes("claim1000.mat", b, n);
    char *want = dl_xasprintf("claim1000.mat: variable 'big' claims 1000x1000 elements, more than a file of %zu "
                              "bytes can hold (corrupt file)", n);
    expect_err("claim1000.mat", "big", want);
    free(want);
    /* within the bounds, the data is missing: libmatio's read fails */
    dims[0] = 30;
    dims[1] = 1;
    memcpy(b + 160, dims, 8);
    write_bytes("claim30.mat", b, n);
    expect_err_like("claim30.mat", "big", "claim30.mat: variable 'big'", "corrupt MAT-file");
    free(b);
}

/* ---- the real data sets ---------------------------------------------------- */

static char *ldl_dir(void)
{
    char *d = dl_xasprintf("%s/ldl", dl_data_root());
    struct stat st;
    if (stat(d, &st) == 0 && S_ISDIR(st.st_mode)) return d;
    printf("SKIPPED: %s not found (set DLDL_DATA)\n", d);
    free(d);
    return NULL;
}

static DlMatrix real_read(const char *dir, const char *file, const char *var)
{
    char *p = dl_xasprintf("%s/%s", dir, file), *rel = dl_xasprintf("ldl/%s", file), *err = NULL;
    DlMatrix m;
    int rc = dl_mat_read(p, rel, var, &m, &err);
    if (rc) fprintf(stderr, "%s\n", err);
    assert_int_equal(rc, 0);
    assert_int_equal(dl_mat_first_nonfinite(&m), -1);
    free(p);
    free(rel);
    return m;
}

static void row_sums(const DlMatrix *m, double *lo, double *hi)
{
    *lo = INFINITY, *hi = -INFINITY;
    for (int64_t i = 0; i < m->rows; i++) {
        double s = 0;
        for (int64_t j = 0; j < m->cols; j++) {
            assert_true(m->data[i * m->cols + j] >= 0);
            s += m->data[i * m->cols + j];
        }
        *lo = fmin(*lo, s), *hi = fmax(*hi, s);
    }
}

static void test_real_sjaffe_fgnet(void **state)
{
    char *dir = ldl_dir();
    if (!dir) return;
    DlMatrix f = real_read(dir, "SJAFFE.mat", "features"), l = real_read(dir, "SJAFFE.mat", "labels");
    assert_int_equal(f.rows, 213);
    assert_int_equal(f.cols, 243);
    assert_int_equal(l.rows, 213);
    assert_int_equal(l.cols, 6);
    double lo, hi;
    row_sums(&l, &lo, &hi);
    assert_true(lo > 1 - 1e-5 && hi < 1 + 1e-5);
    dl_mat_free(&f);
    dl_mat_free(&l);

    /* FG-Net: age and x are row vectors (1x1002, 1x70) in the file */
    DlMatrix age = real_read(dir, "FG-Net.mat", "age"), x = real_read(dir, "FG-Net.mat", "x");
    assert_int_equal(age.rows, 1);
    assert_int_equal(age.cols, 1002);
    float amin = INFINITY, amax = -INFINITY;
    for (int i = 0; i < 1002; i++) {
        assert_true(age.data[i] == floorf(age.data[i]));
        amin = fminf(amin, age.data[i]), amax = fmaxf(amax, age.data[i]);
    }
    assert_int_equal(x.rows, 1);
    assert_int_equal(x.cols, 70);
    for (int i = 0; i < 70; i++) assert_true(x.data[i] == (float)i);
    printf("ldl/FG-Net.mat: age 1x%lld in %g..%g, x 1x%lld = 0..69\n", (long long)age.cols, amin, amax,
           (long long)x.cols);
    dl_mat_free(&age);
    dl_mat_free(&x);

    /* a truncated copy */
    char *src = dl_xasprintf("%s/SJAFFE.mat", dir);
    struct stat st;
    assert_int_equal(stat(src, &st), 0);
    truncated_copy(src, "SJAFFE_cut.mat", (size_t)st.st_size / 2);
    expect_err_like("SJAFFE_cut.mat", "features", "SJAFFE_cut.mat: variable 'features': truncated MAT-file (", "");
    free(src);
    free(dir);
}

static int by_name(const struct dirent **a, const struct dirent **b) { return strcmp((*a)->d_name, (*b)->d_name); }
static int is_mat(const struct dirent *e)
{
    size_t n = strlen(e->d_name);
    return n > 4 && strcmp(e->d_name + n - 4, ".mat") == 0;
}

static void test_real_all(void **state)
{
    char *dir = ldl_dir();
    if (!dir) return;
    struct dirent **e;
    int n = scandir(dir, &e, is_mat, by_name);
    assert_true(n >= 14);
    for (int i = 0; i < n; i++) {
        char *p = dl_xasprintf("%s/%s", dir, e[i]->d_name), *err = NULL, **names;
        int nn;
        assert_int_equal(dl_mat_list(p, e[i]->d_name, &names, &nn, &err), 0);
        DlBuf b = {0};
        for (int k = 0; k < nn; k++) dl_buf_printf(&b, "%s%s", k ? "," : "", names[k]);
        dl_mat_list_free(names, nn);
        DlMatrix f = real_read(dir, e[i]->d_name, "features"), l = real_read(dir, e[i]->d_name, "labels");
        assert_int_equal(f.rows, l.rows);
        assert_true(f.cols > 0 && l.cols > 1);
        double lo, hi;
        row_sums(&l, &lo, &hi);
        printf("ldl/%-16s [%s] features %lldx%lld, labels %lldx%lld, label row sums %.7f..%.7f\n", e[i]->d_name,
               b.s, (long long)f.rows, (long long)f.cols, (long long)l.rows, (long long)l.cols, lo, hi);
        if (strcmp(e[i]->d_name, "FG-Net.mat") == 0) assert_true(lo > 0.5 && hi < 1 + 1e-5);
        else assert_true(lo > 1 - 1e-5 && hi < 1 + 1e-5);
        dl_buf_free(&b);
        dl_mat_free(&f);
        dl_mat_free(&l);
        free(p);
        free(e[i]);
    }
    free(e);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_double),        cmocka_unit_test(test_single_int),
        cmocka_unit_test(test_refused_variables), cmocka_unit_test(test_not_mat),
        cmocka_unit_test(test_truncated),     cmocka_unit_test(test_claimed_size),
        cmocka_unit_test(test_real_sjaffe_fgnet), cmocka_unit_test(test_real_all),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
