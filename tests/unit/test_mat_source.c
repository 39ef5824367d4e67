/* test_mat_source.c - the `mat` data source (runtime/sources_mat.c) and the
 * kfold split, on small MAT-files written here with libmatio:
 *   - features, a label read from an n x 1 and from a 1 x n variable, a class
 *     label as a row's arg-max, and a distribution field; rows that do not sum
 *     to 1 are renormalised with one warning that counts them;
 *   - a negative entry, a NaN and an all-zero distribution row make their
 *     sample bad, named by file and row; --skip-bad skips them;
 *   - a missing variable, a features width other than the plan's, variables
 *     with different row counts fail the load with the file named;
 *   - kfold(k, seed): fold f's test samples are numpy's array_split of
 *     RandomState(seed).permutation(n) (runtime/kfold.c, checked against numpy
 *     in test_kfold), and --cv's fold override picks the fold;
 *   - feature statistics over the training split.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <matio.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../runtime/data.h"
#include "../../runtime/kfold.h"

static char tmpdir[] = "/tmp/dldl_test_mat_source_XXXXXX";

/* A column-major n x c double matrix variable. */
static void put(mat_t *m, const char *name, size_t rows, size_t cols, const double *rowmajor)
{
    double *cm = dl_xmalloc(rows * cols * sizeof *cm);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) cm[c * rows + r] = rowmajor[r * cols + c];
    size_t dims[2] = {rows, cols};
    matvar_t *v = Mat_VarCreate(name, MAT_C_DOUBLE, MAT_T_DOUBLE, 2, dims, cm, 0);
    assert_non_null(v);
    assert_int_equal(Mat_VarWrite(m, v, MAT_COMPRESSION_NONE), 0);
    Mat_VarFree(v);
    free(cm);
}

/* 6 samples: features 6 x 3, dist 6 x 3 (row 2 sums to 0.5, row 4 has a
 * negative entry when bad), age 1 x 6, sd 6 x 1. */
static void write_set(const char *rel, int bad)
{
    char *p = dl_xasprintf("%s/%s", tmpdir, rel);
    mat_t *m = Mat_CreateVer(p, NULL, MAT_FT_MAT5);
    assert_non_null(m);
    double X[18], D[18] = {0.2, 0.5, 0.3, 1, 0, 0, 0.1, 0.1, 0.3, 0, 0, 1, 0.3, 0.3, 0.4, 0.6, 0.2, 0.2};
    for (int i = 0; i < 18; i++) X[i] = i % 7;
    if (bad) D[12] = -0.1, D[16] = NAN, D[3] = 0; /* row 5 negative, row 6 NaN, row 2 all zero */
    double age[6] = {10, 20, 30, 40, 50, 60}, sd[6] = {1, 2, 3, 4, 5, 6};
    put(m, "features", 6, 3, X);
    put(m, "labels", 6, 3, D);
    put(m, "age", 1, 6, age);
    put(m, "sd", 6, 1, sd);
    Mat_Close(m);
    free(p);
}

static int setup(void **st)
{
    assert_non_null(mkdtemp(tmpdir));
    write_set("good.mat", 0);
    write_set("bad.mat", 1);
    return 0;
}

static int teardown(void **st)
{
    char *cmd = dl_xasprintf("rm -rf '%s'", tmpdir);
    int rc = system(cmd);
    free(cmd);
    return rc;
}

static DlPlan *plan_of(const char *file, const char *dims, const char *agevar)
{
    const char *kv[][2] = {
        {"source", "mat"}, {"source.path", file}, {"source.features", "features"},
        {"split", "kfold"}, {"split.k", "3"}, {"split.seed", "0"}, {"split.fold", "0"},
        {"input", "features"}, {"input.dims", dims}, {"input.standardize", "1"},
        {"label.count", "3"}, {"label.0", "age"}, {"label.0.from", agevar},
        {"label.1", "sd"}, {"label.1.from", "var:sd"}, {"label.2", "dominant"}, {"label.2.from", "argmax:labels"},
        {"dist.count", "1"}, {"dist.0", "dist"}, {"dist.0.from", "var:labels"},
    };
    int n = (int)(sizeof kv / sizeof *kv);
    DlPlan *p = dl_xcalloc(1, sizeof *p);
    p->data = dl_xcalloc((size_t)n, sizeof *p->data);
    for (int i = 0; i < n; i++) p->data[i] = (DlKV){dl_xstrdup(kv[i][0]), dl_xstrdup(kv[i][1])};
    p->ndata = n;
    return p;
}

static void plan_free(DlPlan *p)
{
    for (int i = 0; i < p->ndata; i++) free(p->data[i].key), free(p->data[i].val);
    free(p->data);
    free(p);
}

/* dl_data_load with stderr captured into *log (malloc'd). */
static int load(const DlPlan *p, int skip_bad, int fold, DlDataset **d, char **err, char **log)
{
    fflush(stderr);
    char *lp = dl_xasprintf("%s/stderr.log", tmpdir);
    int saved = dup(2);
    FILE *f = freopen(lp, "w", stderr);
    assert_non_null(f);
    DlDataOpts o = {.root = tmpdir, .skip_bad = skip_bad, .nthreads = 1, .quiet = 1, .fold = fold};
    int rc = dl_data_load(p, &o, d, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    stderr = fdopen(2, "w");
    FILE *r = fopen(lp, "r");
    DlBuf b = {0};
    char chunk[4096];
    size_t k;
    while (r && (k = fread(chunk, 1, sizeof chunk, r)) > 0) dl_buf_put(&b, chunk, k);
    if (r) fclose(r);
    dl_buf_put(&b, "", 1);
    *log = b.s;
    free(lp);
    return rc;
}

static void test_good_set(void **st)
{
    DlPlan *p = plan_of("good.mat", "3", "var:age");
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;
    assert_int_equal(load(p, 0, 0, &d, &err, &log), 0);
    assert_non_null(strstr(log, "good.mat: warning: 1 row of the label distributions do not sum to 1 (off by up to 0.5); renormalised"));
    assert_int_equal(d->n, 6);
    assert_true(d->features && d->C == 3);
    assert_int_equal(d->nlabels, 3);
    /* age 1 x 6 read as one value per sample; sd 6 x 1; dominant: arg-max of labels' rows (ties: first) */
    float age[6] = {10, 20, 30, 40, 50, 60}, dom[6] = {1, 0, 2, 2, 2, 0};
    for (int i = 0; i < 6; i++) {
        assert_true(d->labels[i * 3] == age[i]);
        assert_true(d->labels[i * 3 + 1] == (float)(i + 1));
        assert_true(d->labels[i * 3 + 2] == dom[i]);
        assert_true(d->vectors[i * 3 + 1] == (float)((i * 3 + 1) % 7));
    }
    /* row 3 (0.1, 0.1, 0.3) renormalised to (0.2, 0.2, 0.6) */
    assert_int_equal(d->ndist, 1);
    assert_int_equal(d->dist_width[0], 3);
    assert_float_equal(d->dist[0][2 * 3 + 2], 0.6f, 1e-6);
    /* kfold(3, seed 0), fold 0: numpy's permutation cut in three */
    uint8_t test[6];
    dl_kfold_assign(0, 6, 3, 0, test);
    for (int i = 0; i < 6; i++) assert_int_equal(d->split[i], test[i] ? DL_TEST : DL_TRAIN);
    assert_int_equal(d->ntest, 2);
    /* the training split's mean and biased variance per feature */
    float stats[6];
    dl_data_feature_stats(d, stats);
    double m = 0, v = 0;
    for (int j = 0; j < d->ntrain; j++) m += d->vectors[d->train_idx[j] * 3];
    m /= d->ntrain;
    for (int j = 0; j < d->ntrain; j++) v += pow(d->vectors[d->train_idx[j] * 3] - m, 2);
    assert_float_equal(stats[0], m, 1e-6);
    assert_float_equal(stats[3], v / d->ntrain, 1e-6);
    dl_data_free(d);
    free(log);

    /* --cv fold 2 of 3 (1-based): the second cut */
    assert_int_equal(load(p, 0, 2, &d, &err, &log), 0);
    dl_kfold_assign(0, 6, 3, 1, test);
    for (int i = 0; i < 6; i++) assert_int_equal(d->split[i], test[i] ? DL_TEST : DL_TRAIN);
    char **names = NULL;
    assert_int_equal(dl_data_folds(p, tmpdir, &names, &err), 3);
    assert_string_equal(names[2], "fold3");
    for (int i = 0; i < 3; i++) free(names[i]);
    free(names);
    dl_data_free(d);
    free(log);
    plan_free(p);
}

static void test_bad_rows(void **st)
{
    DlPlan *p = plan_of("bad.mat", "3", "var:age");
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;
    assert_int_equal(load(p, 0, 0, &d, &err, &log), -1);
    assert_non_null(strstr(log, "bad.mat row 2: labels sums to 0 (no label distribution)"));
    assert_non_null(strstr(log, "bad.mat row 5: labels has a negative entry -0.1 at column 1"));
    assert_non_null(strstr(log, "bad.mat row 6: labels has the value nan at column 2"));
    assert_string_equal(err, "3 bad samples (see above); --skip-bad skips them");
    free(err), free(log);
    assert_int_equal(load(p, 1, 0, &d, &err, &log), 0);
    assert_int_equal(d->n, 3);
    assert_int_equal(d->nskipped, 3);
    dl_data_free(d);
    free(log);
    plan_free(p);
}

static void test_load_errors(void **st)
{
    DlDataset *d = NULL;
    char *err = NULL, *log = NULL;
    DlPlan *p = plan_of("good.mat", "4", "var:age"); /* the file has 3 features */
    assert_int_equal(load(p, 0, 0, &d, &err, &log), -1);
    assert_non_null(strstr(err, "good.mat: 'features' has 3 columns but the plan expects 4 features"));
    free(err), free(log);
    plan_free(p);
    p = plan_of("good.mat", "3", "var:agee"); /* a missing variable: the file's are listed */
    assert_int_equal(load(p, 0, 0, &d, &err, &log), -1);
    assert_non_null(strstr(err, "good.mat: no variable 'agee' (the file has: features, labels, age, sd)"));
    free(err), free(log);
    plan_free(p);
    p = plan_of("missing.mat", "3", "var:age");
    assert_int_equal(load(p, 0, 0, &d, &err, &log), -1);
    assert_non_null(strstr(err, "missing.mat"));
    free(err), free(log);
    plan_free(p);
    p = plan_of("good.mat", "3", "var:age"); /* a given target of 4 bins over 3 columns */
    float bins[4] = {0, 1, 2, 3};
    DlPlanTarget t = {.name = "y", .kind = DL_TGT_GIVEN, .naxes = 1, .dist = 0};
    t.axes[0] = (DlPlanAxis){.name = "y", .unit = "", .nbins = 4, .bins = bins, .label = -1, .sigma_label = -1};
    p->targets = &t, p->ntargets = 1;
    assert_int_equal(load(p, 0, 0, &d, &err, &log), -1);
    assert_non_null(strstr(err, "good.mat: 'labels' has 3 columns but target 'y' has 4 bins"));
    free(err), free(log);
    p->targets = NULL, p->ntargets = 0;
    plan_free(p);
    p = plan_of("good.mat", "3", "var:labels"); /* 6 x 3 is not one value per sample */
    assert_int_equal(load(p, 0, 0, &d, &err, &log), -1);
    assert_non_null(strstr(err, "label 'age' reads 'labels', which is 6 x 3, not one column"));
    free(err), free(log);
    plan_free(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_good_set),
        cmocka_unit_test(test_bad_rows),
        cmocka_unit_test(test_load_errors),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
