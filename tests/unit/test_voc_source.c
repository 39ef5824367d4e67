/* test_voc_source.c - the `voc` data source (runtime/sources_voc.c) and the
 * multilabel target on it.
 *
 * The real subset (DLDL_DATA, default ../shared/data): the 527 images of
 * ImageSets/Main/multilabel.txt load, five-fold kfold cuts them 421/106 for
 * fold 1, and every image's objects field equals its row of voc2012/labels.csv
 * (the 20 classes, VOC convention).  A small devkit the test writes: an
 * annotation that does not parse, one with a class that is not VOC's, one with
 * no object and a list naming an image that has no annotation are bad samples
 * named by file, refused without --skip-bad and skipped with it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../runtime/data.h"

static const char *root(void)
{
    const char *r = getenv("DLDL_DATA");
    return r && *r ? r : "../shared/data";
}

static DlPlan *plan_of(const char *devkit, const char *list, const char *fold)
{
    const char *kv[][2] = {
        {"source", "voc"}, {"source.path", devkit}, {"source.list", list},
        {"split", "kfold"}, {"split.k", "5"}, {"split.seed", "0"}, {"split.fold", fold},
        {"input", "image"}, {"input.channels", "3"}, {"input.height", "16"}, {"input.width", "16"},
        {"dist.count", "1"}, {"dist.0", "objects"}, {"dist.0.from", "objects:xml"},
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

static void test_real_subset(void **st)
{
    DlPlan *p = plan_of("voc2012/VOC2012", "ImageSets/Main/multilabel.txt", "0");
    DlDataOpts o = {.root = root(), .nthreads = 2, .quiet = 1};
    DlDataset *d = NULL;
    char *err = NULL;
    if (dl_data_load(p, &o, &d, &err)) fail_msg("%s", err);
    assert_int_equal(d->n, 527);
    assert_int_equal(d->ntrain, 421);
    assert_int_equal(d->ntest, 106);
    assert_int_equal(d->ndist, 1);
    assert_int_equal(d->dist_width[0], 20);
    /* every row against labels.csv: image_id, width, height, segmented, n_objects, n_difficult, in_main, 20 classes */
    char *csv = dl_xasprintf("%s/voc2012/labels.csv", root());
    FILE *f = fopen(csv, "r");
    assert_non_null(f);
    char line[1024];
    int checked = 0;
    assert_non_null(fgets(line, sizeof line, f)); /* header */
    while (fgets(line, sizeof line, f)) {
        char *save = NULL, *id = strtok_r(line, ",\n", &save);
        int v[26], k = 0;
        for (char *t; k < 26 && (t = strtok_r(NULL, ",\n", &save)); k++) v[k] = atoi(t);
        assert_int_equal(k, 26);
        char *want = dl_xasprintf("voc2012/VOC2012/JPEGImages/%s.jpg", id);
        for (int i = 0; i < d->n; i++) {
            if (strcmp(d->files[i], want)) continue;
            for (int c = 0; c < 20; c++) assert_int_equal((int)d->dist[0][(size_t)i * 20 + (size_t)c], v[6 + c]);
            checked++;
        }
        free(want);
    }
    fclose(f);
    free(csv);
    assert_int_equal(checked, 527);
    dl_data_free(d);
    plan_free(p);
}

static char tmpdir[] = "/tmp/dldl_test_voc_source_XXXXXX";

static void put(const char *rel, const char *text)
{
    char *path = dl_xasprintf("%s/%s", tmpdir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    free(path);
}

static void copy_jpeg(const char *id, const char *as)
{
    char *cmd = dl_xasprintf("cp '%s/voc2012/VOC2012/JPEGImages/%s.jpg' '%s/kit/JPEGImages/%s.jpg'", root(), id,
                             tmpdir, as);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

static const char *xml(const char *objects)
{
    static char buf[1024];
    snprintf(buf, sizeof buf,
             "<annotation><size><width>500</width><height>375</height><depth>3</depth></size>%s</annotation>\n",
             objects);
    return buf;
}

static void test_broken_devkit(void **st)
{
    assert_non_null(mkdtemp(tmpdir));
    char *dirs = dl_xasprintf("mkdir -p '%s/kit/JPEGImages' '%s/kit/Annotations' '%s/kit/ImageSets'", tmpdir, tmpdir,
                              tmpdir);
    assert_int_equal(system(dirs), 0);
    free(dirs);
    const char *ids[] = {"good1", "good2", "good3", "good4", "good5", "broken", "dragon", "empty", "noxml"};
    for (int i = 0; i < 9; i++) copy_jpeg("2007_000559", ids[i]);
    const char *person = "<object><name>person</name><difficult>0</difficult></object>";
    const char *chair = "<object><name>chair</name><difficult>1</difficult></object>";
    char both[512];
    snprintf(both, sizeof both, "%s%s", person, chair);
    for (int i = 0; i < 5; i++) {
        char *rel = dl_xasprintf("kit/Annotations/%s.xml", ids[i]);
        put(rel, xml(i == 0 ? both : person));
        free(rel);
    }
    put("kit/Annotations/broken.xml", "<annotation><size><width>500</width>");
    put("kit/Annotations/dragon.xml", xml("<object><name>dragon</name></object>"));
    put("kit/Annotations/empty.xml", xml(""));
    put("kit/ImageSets/list.txt", "good1\ngood2\ngood3\ngood4\ngood5\nbroken\ndragon\nempty\nnoxml\n");
    DlPlan *p = plan_of("kit", "ImageSets/list.txt", "0");
    DlDataOpts o = {.root = tmpdir, .nthreads = 1, .quiet = 1};
    DlDataset *d = NULL;
    char *err = NULL;
    fflush(stderr);
    assert_int_equal(dl_data_load(p, &o, &d, &err), -1);
    assert_non_null(strstr(err, "4 bad samples"));
    free(err), err = NULL;
    o.skip_bad = 1;
    if (dl_data_load(p, &o, &d, &err)) fail_msg("%s", err);
    assert_int_equal(d->n, 5);
    assert_int_equal(d->nskipped, 4);
    /* good1: person present, chair only difficult; the others person only */
    for (int c = 0; c < 20; c++) {
        float want = c == 14 ? 1 : c == 8 ? 0 : -1;
        assert_true(d->dist[0][c] == want);
    }
    dl_data_free(d);
    plan_free(p);
    /* a list outside the devkit is refused before anything is read */
    p = plan_of("kit", "../../etc/passwd", "0");
    assert_int_equal(dl_data_load(p, &o, &d, &err), -1);
    assert_non_null(strstr(err, "source.list '../../etc/passwd' leaves the data root"));
    free(err);
    plan_free(p);
    char *cmd = dl_xasprintf("rm -rf '%s'", tmpdir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_real_subset),
        cmocka_unit_test(test_broken_devkit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
