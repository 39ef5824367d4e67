/* sources.c - where samples come from: the source kinds, a CSV reader, the split join.
 *
 * A source kind is one row of `kinds` and one scan function that lists the
 * samples (file, labels, face box) of a data set:
 *
 *   csv         a manifest with a header row: the file column, label columns,
 *               optionally a "train"/"test" split column
 *   utkface     a folder of AGE_GENDER_RACE_DATETIME.jpg.chip.jpg files; labels
 *               from the name (name:age, name:gender, name:race)
 *   pointing04  PersonNN/personPPSII<tilt><pan>.jpg with a same-named .txt face
 *               box; labels name:pitch (tilt), name:yaw (pan), name:person,
 *               name:series, name:index
 *
 * Splits other than a csv manifest's own column come from a csv file
 * (split.path) with a `file` column and the split column, joined on the file's
 * path relative to the source folder (UTKFace's labels.csv: bare names) or to
 * its parent (Pointing'04's folds.csv: HeadPoseImageDatabase/Person01/...).
 */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/util.h"
#include "data_impl.h"
#include "kfold.h"

/* ---- sample lists --------------------------------------------------------- */

Sample *sample_push(SampleList *l)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->a = dl_xrealloc(l->a, l->cap * sizeof *l->a);
    }
    Sample *s = &l->a[l->n++];
    memset(s, 0, sizeof *s);
    s->split = -1;
    return s;
}

void sample_list_free(SampleList *l)
{
    for (size_t i = 0; i < l->n; i++) {
        free(l->a[i].path);
        free(l->a[i].rel);
        free(l->a[i].key_dir);
        free(l->a[i].key_parent);
        free(l->a[i].vec);
        free(l->a[i].dist);
        free(l->a[i].bad);
    }
    free(l->a);
    memset(l, 0, sizeof *l);
}

/* ---- CSV (RFC 4180) ------------------------------------------------------- */

/* A text file whole (manifests, folds, face boxes): malloc'd, NUL-terminated;
 * NULL with *why (malloc'd) when it cannot be read or is not a regular file
 * of at most DL_LIMIT_TEXT bytes. */
static char *slurp(const char *path, size_t *size, char **why)
{
    DlBuf b = {0};
    if (dl_read_file(path, DL_LIMIT_TEXT, &b, why) != 0) {
        dl_buf_free(&b);
        return NULL;
    }
    *size = b.n;
    return b.s;
}

int csv_read(const char *path, const char *name, CsvFile *out, char **err)
{
    memset(out, 0, sizeof *out);
    out->name = name;
    size_t size = 0;
    char *why = NULL, *text = slurp(path, &size, &why);
    if (!text) {
        *err = dl_xasprintf("%s: cannot read: %s", name, why);
        free(why);
        return -1;
    }
    const char *p = text, *end = text + size;
    if (size >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0) p += 3;
    DL_VEC(CsvRow) rows = {0};
    DL_VEC(char *) fields = {0};
    DlBuf field = {0};
    int line = 1, rc = 0;
    while (p < end) {
        int start = line;
        /* one record */
        for (;;) {
            field.n = 0;
            dl_buf_put(&field, "", 0);
            if (p < end && *p == '"') {
                int qline = line;
                p++;
                for (;;) {
                    if (p >= end) {
                        *err = dl_xasprintf("%s:%d: unterminated quoted field", name, qline);
                        rc = -1;
                        goto done;
                    }
                    if (*p == '"') {
                        if (p + 1 < end && p[1] == '"') {
                            dl_buf_put(&field, "\"", 1);
                            p += 2;
                            continue;
                        }
                        p++;
                        break;
                    }
                    if (*p == '\n') line++;
                    dl_buf_put(&field, p, 1);
                    p++;
                }
                if (p < end && *p != ',' && *p != '\n' && *p != '\r') {
                    *err = dl_xasprintf("%s:%d: text after a closing quote", name, line);
                    rc = -1;
                    goto done;
                }
            } else {
                const char *q = p;
                while (q < end && *q != ',' && *q != '\n' && *q != '\r') q++;
                if (memchr(p, '"', (size_t)(q - p))) {
                    *err = dl_xasprintf("%s:%d: a quote inside an unquoted field", name, line);
                    rc = -1;
                    goto done;
                }
                dl_buf_put(&field, p, (size_t)(q - p));
                p = q;
            }
            DL_PUSH(fields, dl_xstrndup(field.s, field.n));
            if (p < end && *p == ',') {
                p++;
                continue;
            }
            if (p < end && *p == '\r') p++;
            if (p < end && *p == '\n') p++, line++;
            break;
        }
        /* a blank line (one empty field) is skipped */
        if (fields.n == 1 && fields.a[0][0] == 0) {
            free(fields.a[0]);
            fields.n = 0;
            continue;
        }
        if (rows.n > 0 && (int)fields.n != rows.a[0].n) {
            *err = dl_xasprintf("%s:%d: %zu fields, the header has %d", name, start, fields.n, rows.a[0].n);
            rc = -1;
            goto done;
        }
        CsvRow r = {fields.a, (int)fields.n, start};
        DL_PUSH(rows, r);
        fields.a = NULL;
        fields.n = fields.cap = 0;
    }
    if (rows.n == 0) {
        *err = dl_xasprintf("%s: empty file (expected a header row)", name);
        rc = -1;
    }
    for (int i = 0; rc == 0 && i < rows.a[0].n; i++) /* a column is found by its name: names are unique */
        for (int j = 0; j < i; j++)
            if (strcmp(rows.a[0].f[i], rows.a[0].f[j]) == 0) {
                *err = dl_xasprintf("%s:%d: column '%s' appears twice in the header (columns %d and %d)", name,
                                    rows.a[0].line, rows.a[0].f[i], j + 1, i + 1);
                rc = -1;
                break;
            }
done:
    for (size_t i = 0; i < fields.n; i++) free(fields.a[i]);
    DL_VEC_FREE(fields);
    dl_buf_free(&field);
    free(text);
    out->rows = rows.a;
    out->nrows = (int)rows.n;
    if (rc) csv_free(out);
    return rc;
}

int csv_column(const CsvFile *c, const char *col)
{
    for (int i = 0; c->nrows > 0 && i < c->rows[0].n; i++)
        if (strcmp(c->rows[0].f[i], col) == 0) return i;
    return -1;
}

void csv_free(CsvFile *c)
{
    for (int r = 0; r < c->nrows; r++) {
        for (int i = 0; i < c->rows[r].n; i++) free(c->rows[r].f[i]);
        free(c->rows[r].f);
    }
    free(c->rows);
    c->rows = NULL;
    c->nrows = 0;
}

/* "no column 'age' in F (columns: file, age, ...)" */
static char *no_column(const CsvFile *c, const char *col)
{
    DlBuf b = {0};
    dl_buf_printf(&b, "%s: no column '%s' (columns:", c->name, col);
    for (int i = 0; i < c->rows[0].n; i++) dl_buf_printf(&b, "%s %s", i ? "," : "", c->rows[0].f[i]);
    dl_buf_printf(&b, ")");
    return b.s;
}

static int parse_split(const char *v, int *split)
{
    if (strcmp(v, "train") == 0) *split = DL_TRAIN;
    else if (strcmp(v, "test") == 0) *split = DL_TEST;
    else return -1;
    return 0;
}

/* A whole field as a finite float ("inf", "nan" and values beyond float's
 * range are not numbers a label can hold). */
static int parse_float(const char *s, float *v)
{
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    while (*end == ' ') end++;
    if (end == s || *end || errno == ERANGE || !isfinite((float)d)) return -1;
    *v = (float)d;
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* The directory part of path ("." if none), malloc'd. */
static char *dir_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? dl_xstrndup(path, (size_t)(s - path)) : dl_xstrdup(".");
}

/* ---- csv source ----------------------------------------------------------- */

static int scan_csv(const DataSpec *spec, SampleList *out, char **err)
{
    CsvFile c;
    if (csv_read(spec->path, spec->rel_path, &c, err)) return -1;
    int fcol = csv_column(&c, spec->file_col), scol = -1, lcol[DL_MAX_AXES];
    if (fcol < 0) {
        *err = no_column(&c, spec->file_col);
        csv_free(&c);
        return -1;
    }
    for (int a = 0; a < spec->nlabels; a++) {
        if (spec->labels[a].from != LBL_COLUMN) {
            *err = dl_xasprintf("label '%s': a csv source reads labels from columns (column:NAME), not '%s'",
                                spec->labels[a].name, spec->labels[a].field);
            csv_free(&c);
            return -1;
        }
        if ((lcol[a] = csv_column(&c, spec->labels[a].field)) < 0) {
            *err = no_column(&c, spec->labels[a].field);
            csv_free(&c);
            return -1;
        }
    }
    if (spec->split == SPLIT_COLUMN && !spec->split_path && (scol = csv_column(&c, spec->split_col)) < 0) {
        *err = no_column(&c, spec->split_col);
        csv_free(&c);
        return -1;
    }
    char *images = spec->images ? dl_xstrdup(spec->images) : dir_name(spec->path);
    char *rel_images = spec->rel_images ? dl_xstrdup(spec->rel_images) : dir_name(spec->rel_path);
    const char *folder = base_name(images);
    int rc = 0;
    for (int r = 1; r < c.nrows && rc == 0; r++) {
        const CsvRow *row = &c.rows[r];
        const char *file = row->f[fcol];
        Sample *s = sample_push(out);
        s->path = dl_xasprintf("%s/%s", images, file);
        s->rel = dl_xasprintf("%s/%s", rel_images, file);
        s->key_dir = dl_xstrdup(file);
        s->key_parent = dl_xasprintf("%s/%s", folder, file);
        if (!*file) s->bad = dl_xasprintf("%s:%d: empty file name", c.name, row->line);
        else if (!dl_path_stays_inside(file))
            s->bad = dl_xasprintf("%s:%d: file '%s' leaves the image folder (an absolute path or '..')", c.name,
                                  row->line, file);
        for (int a = 0; a < spec->nlabels && !s->bad; a++)
            if (parse_float(row->f[lcol[a]], &s->labels[a]))
                s->bad = dl_xasprintf("%s:%d: %s '%s' is not a number", c.name, row->line,
                                      spec->labels[a].field, row->f[lcol[a]]);
        if (scol >= 0 && parse_split(row->f[scol], &s->split)) {
            *err = dl_xasprintf("%s:%d: split '%s' is neither 'train' nor 'test'", c.name, row->line,
                                row->f[scol]);
            rc = -1;
        }
    }
    free(images);
    free(rel_images);
    csv_free(&c);
    return rc;
}

/* ---- folder scanning ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t n = strlen(s), m = strlen(suf);
    return n >= m && strcmp(s + n - m, suf) == 0;
}

/* Sorted names in dir: regular files ending in suffix, or (want_dirs) folders. */
static char **list_dir(const char *dir, const char *rel, const char *suffix, int want_dirs, int *n,
                       char **err)
{
    DIR *d = opendir(dir);
    if (!d) {
        *err = dl_xasprintf("%s: cannot open folder: %s", rel, strerror(errno));
        return NULL;
    }
    DL_VEC(char *) names = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        char *full = dl_xasprintf("%s/%s", dir, e->d_name);
        struct stat st;
        int ok = stat(full, &st) == 0 &&
                 (want_dirs ? S_ISDIR(st.st_mode) : S_ISREG(st.st_mode) && has_suffix(e->d_name, suffix));
        free(full);
        if (ok) DL_PUSH(names, dl_xstrdup(e->d_name));
    }
    closedir(d);
    if (names.n) qsort(names.a, names.n, sizeof *names.a, cmp_str);
    *n = (int)names.n;
    if (!names.a) names.a = dl_xmalloc(sizeof(char *));
    return names.a;
}

static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Digits only, at least one; the value in *v. */
static int parse_uint(const char *s, size_t n, float *v)
{
    if (n == 0 || n > 9) return -1;
    long x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        x = x * 10 + (s[i] - '0');
    }
    *v = (float)x;
    return 0;
}

/* Which label each axis takes from a name: index into the source's fields. */
static int name_fields(const DataSpec *spec, const char *const *fields, int nfields, const char *source,
                       int idx[DL_MAX_AXES], char **err)
{
    for (int a = 0; a < spec->nlabels; a++) {
        const LabelSpec *l = &spec->labels[a];
        idx[a] = -1;
        for (int f = 0; f < nfields && l->from == LBL_NAME; f++)
            if (strcmp(l->field, fields[f]) == 0) idx[a] = f;
        if (idx[a] < 0) {
            DlBuf b = {0};
            for (int f = 0; f < nfields; f++) dl_buf_printf(&b, "%sname:%s", f ? ", " : "", fields[f]);
            *err = dl_xasprintf("label '%s': a %s source has the labels %s, not '%s%s'", l->name, source,
                                b.s, l->from == LBL_NAME ? "name:" : "column:", l->field);
            dl_buf_free(&b);
            return -1;
        }
    }
    return 0;
}

/* ---- utkface source ------------------------------------------------------- */

static const char *const utk_fields[] = {"age", "gender", "race"};

/* AGE_GENDER_RACE_DATETIME.jpg.chip.jpg: four non-empty digit fields. */
static int parse_utk_name(const char *name, float v[3])
{
    const char *suffix = ".jpg.chip.jpg";
    if (!has_suffix(name, suffix)) return -1;
    size_t len = strlen(name) - strlen(suffix);
    const char *p = name;
    for (int f = 0; f < 4; f++) {
        const char *q = p;
        while (q < name + len && *q != '_') q++;
        if (f < 3 && parse_uint(p, (size_t)(q - p), &v[f])) return -1;
        if (f == 3 && (q == p || strspn(p, "0123456789") < (size_t)(q - p))) return -1; /* the date */
        if (f < 3 && q >= name + len) return -1; /* a field missing */
        if (f == 3 && q != name + len) return -1; /* one too many */
        p = q + 1;
    }
    return 0;
}

static int scan_utkface(const DataSpec *spec, SampleList *out, char **err)
{
    int idx[DL_MAX_AXES];
    if (name_fields(spec, utk_fields, 3, "utkface", idx, err)) return -1;
    int n = 0;
    char **names = list_dir(spec->path, spec->rel_path, ".jpg", 0, &n, err);
    if (!names) return -1;
    const char *folder = base_name(spec->path);
    for (int i = 0; i < n; i++) {
        Sample *s = sample_push(out);
        s->path = dl_xasprintf("%s/%s", spec->path, names[i]);
        s->rel = dl_xasprintf("%s/%s", spec->rel_path, names[i]);
        s->key_dir = dl_xstrdup(names[i]);
        s->key_parent = dl_xasprintf("%s/%s", folder, names[i]);
        float v[3];
        if (parse_utk_name(names[i], v)) {
            s->bad = dl_xasprintf("%s: malformed UTKFace name (expected AGE_GENDER_RACE_DATE.jpg.chip.jpg)",
                                  s->rel);
            continue;
        }
        for (int a = 0; a < spec->nlabels; a++) s->labels[a] = v[idx[a]];
    }
    free_names(names, n);
    return 0;
}

/* ---- pointing04 source ---------------------------------------------------- */

static const char *const p04_fields[] = {"pitch", "yaw", "person", "series", "index"};

/* A signed integer: a mandatory sign, then digits. */
static const char *parse_signed(const char *p, float *v)
{
    if (*p != '+' && *p != '-') return NULL;
    const char *q = p + 1;
    while (*q >= '0' && *q <= '9') q++;
    float x;
    if (parse_uint(p + 1, (size_t)(q - p - 1), &x)) return NULL;
    *v = *p == '-' ? -x : x;
    return q;
}

/* personPPSII<tilt><pan>.jpg -> pitch, yaw, person, series, index. */
static int parse_p04_name(const char *name, float v[5])
{
    if (strncmp(name, "person", 6) != 0) return -1;
    const char *p = name + 6;
    if (parse_uint(p, 2, &v[2]) || parse_uint(p + 2, 1, &v[3]) || parse_uint(p + 3, 2, &v[4])) return -1;
    p += 5;
    if (!(p = parse_signed(p, &v[0])) || !(p = parse_signed(p, &v[1]))) return -1;
    return strcmp(p, ".jpg") == 0 ? 0 : -1;
}

int read_face_box(const char *path, float box[4], char **err)
{
    size_t size = 0;
    char *why = NULL, *text = slurp(path, &size, &why);
    if (!text) {
        *err = dl_xasprintf("cannot read face box: %s", why);
        free(why);
        return -1;
    }
    /* Find the line "Face"; the next four non-blank lines are the numbers. */
    int rc = -1, got = 0, seen_face = 0;
    char *save = NULL;
    for (char *ln = strtok_r(text, "\n", &save); ln; ln = strtok_r(NULL, "\n", &save)) {
        size_t n = strlen(ln);
        while (n && (ln[n - 1] == '\r' || ln[n - 1] == ' ' || ln[n - 1] == '\t')) ln[--n] = 0;
        if (!n) continue;
        if (!seen_face) {
            seen_face = strcmp(ln, "Face") == 0;
            continue;
        }
        if (parse_float(ln, &box[got])) {
            *err = dl_xasprintf("face box: '%s' is not a number", ln);
            goto out;
        }
        if (++got == 4) break;
    }
    if (got == 4) rc = 0;
    else if (!seen_face) *err = dl_xasprintf("face box: no line 'Face'");
    else *err = dl_xasprintf("face box: %d numbers after 'Face', expected 4 (centre x, centre y, width, height)",
                             got);
out:
    free(text);
    return rc;
}

static int scan_pointing04(const DataSpec *spec, SampleList *out, char **err)
{
    int idx[DL_MAX_AXES];
    if (name_fields(spec, p04_fields, 5, "pointing04", idx, err)) return -1;
    int nd = 0;
    char **dirs = list_dir(spec->path, spec->rel_path, NULL, 1, &nd, err);
    if (!dirs) return -1;
    const char *folder = base_name(spec->path);
    int rc = 0;
    for (int d = 0; d < nd && rc == 0; d++) {
        char *dir = dl_xasprintf("%s/%s", spec->path, dirs[d]);
        char *rel = dl_xasprintf("%s/%s", spec->rel_path, dirs[d]);
        int n = 0;
        char **names = list_dir(dir, rel, ".jpg", 0, &n, err);
        if (!names) rc = -1;
        for (int i = 0; i < n; i++) {
            Sample *s = sample_push(out);
            s->path = dl_xasprintf("%s/%s", dir, names[i]);
            s->rel = dl_xasprintf("%s/%s", rel, names[i]);
            s->key_dir = dl_xasprintf("%s/%s", dirs[d], names[i]);
            s->key_parent = dl_xasprintf("%s/%s/%s", folder, dirs[d], names[i]);
            float v[5];
            if (parse_p04_name(names[i], v)) {
                s->bad = dl_xasprintf("%s: malformed Pointing'04 name (expected personPPSII<tilt><pan>.jpg, "
                                      "e.g. person01100-90+0.jpg)", s->rel);
                continue;
            }
            for (int a = 0; a < spec->nlabels; a++) s->labels[a] = v[idx[a]];
            if (spec->crop == CROP_FACE_BOX) {
                size_t stem = strlen(s->path) - 4;
                char *txt = dl_xasprintf("%.*s.txt", (int)stem, s->path), *why = NULL;
                if (read_face_box(txt, s->box, &why) == 0) {
                    s->has_box = 1;
                } else {
                    s->bad = dl_xasprintf("%s: %.*s.txt: %s", s->rel, (int)strlen(names[i]) - 4, names[i], why);
                    free(why);
                }
                free(txt);
            }
        }
        if (names) free_names(names, n);
        free(dir);
        free(rel);
    }
    free_names(dirs, nd);
    return rc;
}

/* ---- the table ------------------------------------------------------------ */

static const SourceKind kinds[] = {
    {"csv", scan_csv},
    {"utkface", scan_utkface},
    {"pointing04", scan_pointing04},
    {"mat", scan_mat},
    {"voc", scan_voc},
};

const SourceKind *source_find(const char *name)
{
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        if (strcmp(kinds[i].name, name) == 0) return &kinds[i];
    return NULL;
}

const char *source_kind_names(void) { return "csv, utkface, pointing04, mat, voc"; }

/* ---- split join ----------------------------------------------------------- */

typedef struct SplitEntry {
    const char *key;
    int split, line;
} SplitEntry;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const SplitEntry *)a)->key, ((const SplitEntry *)b)->key);
}

static const SplitEntry *find_entry(const SplitEntry *e, int n, const char *key)
{
    SplitEntry k = {key, 0, 0};
    return n ? bsearch(&k, e, (size_t)n, sizeof *e, cmp_entry) : NULL;
}

int split_assign(const DataSpec *spec, SampleList *l, char **err)
{
    if (spec->split == SPLIT_KFOLD) { /* numpy's permutation of the rows, as the LDL reference */
        uint8_t *test = dl_xmalloc(l->n + 1);
        dl_kfold_assign((uint32_t)spec->kfold_seed, (int)l->n, spec->kfold_k, spec->kfold_fold, test);
        for (size_t i = 0; i < l->n; i++) l->a[i].split = test[i] ? DL_TEST : DL_TRAIN;
        free(test);
        return 0;
    }
    if (!spec->split_path) {
        for (size_t i = 0; i < l->n; i++)
            if (!l->a[i].bad && l->a[i].split < 0)
                l->a[i].bad = dl_xasprintf("%s: no split", l->a[i].rel);
        return 0;
    }
    CsvFile c;
    if (csv_read(spec->split_path, spec->rel_split_path, &c, err)) return -1;
    int fcol = csv_column(&c, "file"), scol = csv_column(&c, spec->split_col);
    if (fcol < 0 || scol < 0) {
        *err = no_column(&c, fcol < 0 ? "file" : spec->split_col);
        csv_free(&c);
        return -1;
    }
    int n = c.nrows - 1, rc = 0;
    SplitEntry *e = dl_xmalloc((size_t)(n > 0 ? n : 1) * sizeof *e);
    for (int r = 1; r < c.nrows; r++) {
        SplitEntry *x = &e[r - 1];
        x->key = c.rows[r].f[fcol];
        x->line = c.rows[r].line;
        if (parse_split(c.rows[r].f[scol], &x->split)) {
            *err = dl_xasprintf("%s:%d: %s '%s' is neither 'train' nor 'test'", c.name, x->line, spec->split_col,
                                c.rows[r].f[scol]);
            rc = -1;
            goto out;
        }
    }
    qsort(e, (size_t)n, sizeof *e, cmp_entry);
    for (int i = 1; i < n; i++)
        if (strcmp(e[i].key, e[i - 1].key) == 0) {
            int a = e[i].line < e[i - 1].line ? e[i].line : e[i - 1].line;
            int b = e[i].line < e[i - 1].line ? e[i - 1].line : e[i].line;
            *err = dl_xasprintf("%s:%d: '%s' listed again (first at line %d)", c.name, b, e[i].key, a);
            rc = -1;
            goto out;
        }
    for (size_t i = 0; i < l->n; i++) {
        Sample *s = &l->a[i];
        if (s->bad) continue;
        const SplitEntry *x = find_entry(e, n, s->key_dir);
        if (!x) x = find_entry(e, n, s->key_parent);
        if (x) s->split = x->split;
        else s->bad = dl_xasprintf("%s: not in %s (looked for '%s' and '%s')", s->rel, c.name, s->key_dir,
                                   s->key_parent);
    }
out:
    free(e);
    csv_free(&c);
    return rc;
}
