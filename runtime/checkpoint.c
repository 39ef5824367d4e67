/* checkpoint.c - weights and checkpoints as safetensors (runtime/checkpoint.h).
 *
 * Writing: the list of saved entries is derived from the plan's tensor table
 * (collect), the JSON header is built with jansson in that order with
 * consecutive data_offsets, padded with spaces to a multiple of 8 bytes, and
 * the whole file goes through dl_write_file_atomic.
 * Reading: the whole file is read, its header parsed with jansson (duplicate
 * keys refused) and checked against the safetensors rules (st_open), then the
 * entries the plan needs are checked (presence, dtype, shape) and only then
 * copied into the arenas.  Fine-tuning (dl_init_from_weights) reads the same
 * way but takes only the entries the file holds, by name.
 */
#include "checkpoint.h"
#include "../common/util.h"

#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "checkpoint.c writes arena floats as raw bytes: safetensors is little-endian"
#endif

/* The safetensors reference implementation refuses headers past 100 MB. */
#define ST_MAX_HEADER (100u << 20)

/* One saved tensor: numel floats of plan tensor `tensor` from float `first` on. */
typedef struct Entry {
    char *name;
    int tensor;
    int64_t first, numel;
    int ndim;
    int64_t shape[4];
} Entry;
typedef DL_VEC(Entry) Entries;

static void entries_free(Entries *e)
{
    for (size_t i = 0; i < e->n; i++) free(e->a[i].name);
    DL_VEC_FREE(*e);
}

static void add_entry(Entries *e, char *name, int t, int64_t first, int64_t numel, int ndim, const int64_t *shape)
{
    Entry x = {name, t, first, numel, ndim, {0}};
    for (int d = 0; d < ndim; d++) x.shape[d] = shape[d];
    DL_PUSH(*e, x);
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* The parameter whose storage the optimizer tensor m mirrors, or -1: the
 * optimizer arena holds one copy of the parameter layout per state slot
 * (compiler/memplan.h: Adam's exp_avg in the first, exp_avg_sq in the
 * second), so m's offset modulo the parameter arena's size is its
 * parameter's offset. */
static int param_of_momentum(const DlPlan *p, const DlPlanTensor *m)
{
    int64_t size = p->arena_size[DL_AR_PARAM], off = size > 0 ? m->offset % size : m->offset;
    for (int i = 0; i < p->ntensors; i++) {
        const DlPlanTensor *t = &p->tensors[i];
        if (t->role == DL_ROLE_PARAM && t->offset == off && t->numel == m->numel) return i;
    }
    return -1;
}

/* The state's name in "optimizer.<param>.<state>": what follows "<param>." in
 * m's own plan name ("momentum", "exp_avg", "exp_avg_sq", as autodiff names
 * them), else "momentum". */
static const char *state_name(const char *param, const char *m)
{
    size_t n = strlen(param);
    return strncmp(m, param, n) == 0 && m[n] == '.' && m[n + 1] ? m + n + 1 : "momentum";
}

/* The saved entries of p, in plan order: parameters and state, and momentum
 * when with_momentum.  Returns 0, or -1 with *err on a duplicate name. */
static int collect(const DlPlan *p, int with_momentum, Entries *out, const char *path, char **err)
{
    for (int i = 0; i < p->ntensors; i++) {
        const DlPlanTensor *t = &p->tensors[i];
        const char *nm = t->name ? t->name : "";
        if (t->role == DL_ROLE_PARAM) {
            add_entry(out, dl_xstrdup(nm), i, 0, t->numel, t->ndim, t->shape);
        } else if (t->role == DL_ROLE_STATE || t->role == DL_ROLE_DATA_STATS) {
            if (t->ndim == 2 && t->shape[0] == 2 && ends_with(nm, ".running")) {
                int64_t c = t->shape[1];
                add_entry(out, dl_xasprintf("%s_mean", nm), i, 0, c, 1, &c);
                add_entry(out, dl_xasprintf("%s_var", nm), i, c, c, 1, &c);
            } else {
                add_entry(out, dl_xstrdup(nm), i, 0, t->numel, t->ndim, t->shape);
            }
        } else if (t->role == DL_ROLE_MOMENTUM && with_momentum) {
            int pi = param_of_momentum(p, t);
            const char *base = pi >= 0 ? p->tensors[pi].name : nm;
            add_entry(out, dl_xasprintf("optimizer.%s.%s", base, state_name(base, nm)), i, 0, t->numel, t->ndim,
                      t->shape);
        }
    }
    for (size_t i = 0; i < out->n; i++)
        for (size_t j = 0; j < i; j++)
            if (strcmp(out->a[i].name, out->a[j].name) == 0) {
                *err = dl_xasprintf("%s: two saved tensors are both named '%s' (plan error)", path, out->a[i].name);
                return -1;
            }
    return 0;
}

static int check_arenas(const DlPlan *p, const Entries *e, float *const arena[DL_AR_COUNT], const char *path,
                        char **err)
{
    for (size_t i = 0; i < e->n; i++)
        if (!arena[p->tensors[e->a[i].tensor].arena]) {
            *err = dl_xasprintf("%s: tensor '%s': its arena is not allocated", path, e->a[i].name);
            return -1;
        }
    return 0;
}

uint64_t dl_plan_state_hash(const DlPlan *p)
{
    DlBuf b = {0};
    for (int i = 0; i < p->ntensors; i++) {
        const DlPlanTensor *t = &p->tensors[i];
        if (t->role != DL_ROLE_PARAM && t->role != DL_ROLE_STATE && t->role != DL_ROLE_DATA_STATS && t->role != DL_ROLE_MOMENTUM) continue;
        dl_buf_printf(&b, "%s|%d|", t->name ? t->name : "", t->role);
        for (int d = 0; d < t->ndim; d++) dl_buf_printf(&b, "%" PRId64 ",", t->shape[d]);
        dl_buf_put(&b, "\n", 1);
    }
    uint64_t h = dl_hash64(b.s ? b.s : "", b.n);
    dl_buf_free(&b);
    return h;
}

/* ---- writing ------------------------------------------------------------- */

static int meta_set(json_t *meta, const char *key, const char *val)
{
    return json_object_set_new(meta, key, json_string(val)) == 0 ? 0 : -1;
}

/* Write entries of p (and metadata pairs kv[0..nkv)) as a safetensors file. */
static int st_write(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], const Entries *e,
                    const DlKV *kv, int nkv, char **err)
{
    json_t *root = json_object(), *meta = json_object();
    int bad = json_object_set_new(root, "__metadata__", meta) != 0;
    for (int i = 0; i < nkv && !bad; i++) {
        if (!kv[i].key || !kv[i].val || meta_set(meta, kv[i].key, kv[i].val) != 0) {
            *err = dl_xasprintf("%s: metadata '%s' is not valid UTF-8 text", path, kv[i].key ? kv[i].key : "(null)");
            json_decref(root);
            return -1;
        }
    }
    uint64_t at = 0;
    for (size_t i = 0; i < e->n && !bad; i++) {
        const Entry *x = &e->a[i];
        json_t *shape = json_array();
        for (int d = 0; d < x->ndim; d++) json_array_append_new(shape, json_integer(x->shape[d]));
        uint64_t bytes = (uint64_t)x->numel * sizeof(float);
        json_t *t = json_pack("{s:s, s:o, s:[I,I]}", "dtype", "F32", "shape", shape, "data_offsets",
                              (json_int_t)at, (json_int_t)(at + bytes));
        if (!t || json_object_set_new(root, x->name, t) != 0) {
            *err = dl_xasprintf("%s: tensor name '%s' is not valid UTF-8 text", path, x->name);
            json_decref(root);
            return -1;
        }
        at += bytes;
    }
    char *js = bad ? NULL : json_dumps(root, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (!js) {
        *err = dl_xasprintf("%s: cannot build the safetensors header", path);
        return -1;
    }
    size_t jn = strlen(js), hn = (jn + 7) & ~(size_t)7;
    size_t total = 8 + hn + (size_t)at;
    unsigned char *buf = dl_xmalloc(total);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)((uint64_t)hn >> (8 * i));
    memcpy(buf + 8, js, jn);
    memset(buf + 8 + jn, ' ', hn - jn);
    free(js);
    unsigned char *d = buf + 8 + hn;
    for (size_t i = 0; i < e->n; i++) {
        const Entry *x = &e->a[i];
        const DlPlanTensor *t = &p->tensors[x->tensor];
        memcpy(d, arena[t->arena] + t->offset + x->first, (size_t)x->numel * sizeof(float));
        d += (size_t)x->numel * sizeof(float);
    }
    int rc = dl_write_file_atomic(path, buf, total);
    if (rc != 0) *err = dl_xasprintf("%s: cannot write: %s", path, strerror(errno));
    free(buf);
    return rc;
}

int dl_save_weights(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], int epoch,
                    const DlKV *meta, int nmeta, char **err)
{
    Entries e = {0};
    if (collect(p, 0, &e, path, err) != 0 || check_arenas(p, &e, arena, path, err) != 0) {
        entries_free(&e);
        return -1;
    }
    char ep[32];
    snprintf(ep, sizeof ep, "%d", epoch);
    DL_VEC(DlKV) kv = {0};
    DL_PUSH(kv, ((DlKV){"format", "pt"}));
    DL_PUSH(kv, ((DlKV){"producer", "dldl"}));
    DL_PUSH(kv, ((DlKV){"kind", "weights"}));
    DL_PUSH(kv, ((DlKV){"source", p->source_name ? p->source_name : ""}));
    DL_PUSH(kv, ((DlKV){"epoch", ep}));
    for (int i = 0; i < nmeta; i++) DL_PUSH(kv, meta[i]);
    int rc = st_write(path, p, arena, &e, kv.a, (int)kv.n, err);
    DL_VEC_FREE(kv);
    entries_free(&e);
    return rc;
}

int dl_save_checkpoint(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT],
                       const DlTrainPos *pos, char **err)
{
    Entries e = {0};
    if (collect(p, 1, &e, path, err) != 0 || check_arenas(p, &e, arena, path, err) != 0) {
        entries_free(&e);
        return -1;
    }
    char ep[32], st[32], sd[32], ck[32];
    snprintf(ep, sizeof ep, "%d", pos->epoch);
    snprintf(st, sizeof st, "%" PRId64, pos->step);
    snprintf(sd, sizeof sd, "%" PRIu64, pos->seed);
    snprintf(ck, sizeof ck, "%016" PRIx64, dl_plan_state_hash(p));
    DlKV kv[] = {
        {"format", "pt"}, {"producer", "dldl"}, {"kind", "checkpoint"},
        {"source", p->source_name ? p->source_name : ""},
        {"epoch", ep}, {"step", st}, {"seed", sd}, {"plan_checksum", ck},
    };
    int rc = st_write(path, p, arena, &e, kv, (int)(sizeof kv / sizeof *kv), err);
    entries_free(&e);
    return rc;
}

/* ---- reading ------------------------------------------------------------- */

typedef struct StFile {
    DlBuf bytes;               /* the whole file */
    json_t *root;              /* the header */
    const unsigned char *data; /* the data section */
    uint64_t ndata;
} StFile;

static void st_close(StFile *f)
{
    json_decref(f->root);
    dl_buf_free(&f->bytes);
}

static int dtype_size(const char *dt)
{
    static const struct { const char *name; int size; } tab[] = {
        {"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4}, {"I16", 2}, {"I8", 1},
        {"U64", 8}, {"U32", 4}, {"U16", 2}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
    };
    for (size_t i = 0; i < sizeof tab / sizeof *tab; i++)
        if (strcmp(dt, tab[i].name) == 0) return tab[i].size;
    return 0;
}

static void shape_str(DlBuf *b, const int64_t *shape, int ndim)
{
    dl_buf_put(b, "[", 1);
    for (int d = 0; d < ndim; d++) dl_buf_printf(b, "%s%" PRId64, d ? "," : "", shape[d]);
    dl_buf_put(b, "]", 1);
}

/* Read a JSON shape array into shape (at most max dims); -1 if malformed. */
static int json_shape(const json_t *a, int64_t *shape, int max)
{
    if (!json_is_array(a) || json_array_size(a) > (size_t)max) return -1;
    for (size_t d = 0; d < json_array_size(a); d++) {
        const json_t *v = json_array_get(a, d);
        if (!json_is_integer(v) || json_integer_value(v) < 0) return -1;
        shape[d] = json_integer_value(v);
    }
    return (int)json_array_size(a);
}

typedef struct Span { uint64_t b, e; const char *name; } Span;
static int span_cmp(const void *x, const void *y)
{
    const Span *a = x, *b = y;
    if (a->b != b->b) return a->b < b->b ? -1 : 1;
    return a->e < b->e ? -1 : a->e > b->e;
}

/* Check one tensor entry of the header; its span goes to *sp. */
static char *st_check_entry(const char *path, const char *key, json_t *v, uint64_t ndata, Span *sp)
{
    json_t *dt = json_object_get(v, "dtype"), *sh = json_object_get(v, "shape"), *of = json_object_get(v, "data_offsets");
    int64_t shape[16];
    int nd = json_is_object(v) ? json_shape(sh, shape, 16) : -1;
    if (!json_is_string(dt) || nd < 0 || !json_is_array(of) || json_array_size(of) != 2 ||
        !json_is_integer(json_array_get(of, 0)) || !json_is_integer(json_array_get(of, 1)) ||
        json_object_size(v) != 3)
        return dl_xasprintf("%s: tensor '%s': malformed header entry (want dtype, shape, data_offsets)", path, key);
    int es = dtype_size(json_string_value(dt));
    if (!es) return dl_xasprintf("%s: tensor '%s': unknown dtype '%s'", path, key, json_string_value(dt));
    json_int_t b = json_integer_value(json_array_get(of, 0)), e = json_integer_value(json_array_get(of, 1));
    if (b < 0 || e < b || (uint64_t)e > ndata)
        return dl_xasprintf("%s: tensor '%s': data_offsets [%lld,%lld] outside the %" PRIu64 " data bytes", path, key,
                            (long long)b, (long long)e, ndata);
    uint64_t need = (uint64_t)es;
    for (int d = 0; d < nd; d++) {
        if (shape[d] && need > UINT64_MAX / (uint64_t)shape[d])
            return dl_xasprintf("%s: tensor '%s': shape too large for the file", path, key);
        need *= (uint64_t)shape[d];
    }
    if (need != (uint64_t)(e - b))
        return dl_xasprintf("%s: tensor '%s': data_offsets hold %lld bytes, its shape and dtype need %" PRIu64, path,
                            key, (long long)(e - b), need);
    *sp = (Span){(uint64_t)b, (uint64_t)e, key};
    return NULL;
}

/* Read path and check it is a well-formed safetensors file. */
static int st_open(const char *path, StFile *f, char **err)
{
    memset(f, 0, sizeof *f);
    char *why = NULL;
    if (dl_read_file(path, DL_LIMIT_WEIGHTS, &f->bytes, &why) != 0) {
        *err = dl_xasprintf("%s: cannot read: %s", path, why);
        free(why);
        st_close(f);
        return -1;
    }
    const unsigned char *u = (const unsigned char *)f->bytes.s;
    size_t n = f->bytes.n;
    uint64_t hn = 0;
    for (int i = 0; i < 8 && n >= 8; i++) hn |= (uint64_t)u[i] << (8 * i);
    if (n < 8 || hn > ST_MAX_HEADER || hn > n - 8 || hn < 2 || u[8] != '{') {
        *err = dl_xasprintf("%s: not a safetensors file (header size %" PRIu64 ", file of %zu bytes)", path, hn, n);
        st_close(f);
        return -1;
    }
    json_error_t je;
    f->root = json_loadb((const char *)u + 8, (size_t)hn, JSON_REJECT_DUPLICATES, &je);
    if (!f->root || !json_is_object(f->root)) {
        *err = dl_xasprintf("%s: bad safetensors header: %s", path, f->root ? "not a JSON object" : je.text);
        st_close(f);
        return -1;
    }
    f->data = u + 8 + hn;
    f->ndata = n - 8 - hn;
    size_t nt = json_object_size(f->root), ns = 0;
    Span *spans = dl_xcalloc(nt ? nt : 1, sizeof *spans);
    const char *key;
    json_t *v;
    char *e = NULL;
    json_object_foreach(f->root, key, v) {
        if (strcmp(key, "__metadata__") == 0) {
            const char *mk;
            json_t *mv;
            if (!json_is_object(v)) e = dl_xasprintf("%s: __metadata__ is not an object", path);
            else json_object_foreach(v, mk, mv) if (!e && !json_is_string(mv))
                e = dl_xasprintf("%s: __metadata__ '%s' is not a string", path, mk);
        } else {
            e = st_check_entry(path, key, v, f->ndata, &spans[ns++]);
        }
        if (e) break;
    }
    if (!e) { /* the spans must tile [0, ndata) exactly */
        qsort(spans, ns, sizeof *spans, span_cmp);
        uint64_t at = 0;
        for (size_t i = 0; i < ns && !e; i++) {
            if (spans[i].b != at)
                e = dl_xasprintf("%s: tensor '%s' starts at data byte %" PRIu64 ", expected %" PRIu64
                                 " (overlap or hole)", path, spans[i].name, spans[i].b, at);
            at = spans[i].e;
        }
        if (!e && at != f->ndata)
            e = dl_xasprintf("%s: %" PRIu64 " data bytes, the tensors cover %" PRIu64 " (truncated or padded?)", path,
                             f->ndata, at);
    }
    free(spans);
    if (e) {
        *err = e;
        st_close(f);
        return -1;
    }
    return 0;
}

static const char *st_meta(const StFile *f, const char *key)
{
    return json_string_value(json_object_get(json_object_get(f->root, "__metadata__"), key));
}

/* " (written from 'a.dldl', this plan is from 'b.dldl')" when the sources differ. */
static char *source_hint(const StFile *f, const DlPlan *p)
{
    const char *src = st_meta(f, "source");
    if (!src || !p->source_name || strcmp(src, p->source_name) == 0) return dl_xstrdup("");
    return dl_xasprintf(" (the file was written from '%s', this plan is from '%s')", src, p->source_name);
}

/* Check every entry against the file (presence, dtype, shape): the first
 * mismatch goes to *err. */
static int st_verify(const char *path, StFile *f, const DlPlan *p, const Entries *e,
                     float *const arena[DL_AR_COUNT], char **err)
{
    for (size_t i = 0; i < e->n; i++) {
        const Entry *x = &e->a[i];
        json_t *v = json_object_get(f->root, x->name);
        char *why = NULL;
        if (!v) {
            why = dl_xasprintf("tensor '%s' is missing", x->name);
        } else if (strcmp(json_string_value(json_object_get(v, "dtype")), "F32") != 0) {
            why = dl_xasprintf("tensor '%s' has dtype %s, expected F32", x->name,
                               json_string_value(json_object_get(v, "dtype")));
        } else {
            int64_t shape[16];
            int nd = json_shape(json_object_get(v, "shape"), shape, 16);
            int same = nd == x->ndim;
            for (int d = 0; same && d < nd; d++) same = shape[d] == x->shape[d];
            if (!same) {
                DlBuf b = {0};
                dl_buf_printf(&b, "tensor '%s' has shape ", x->name);
                shape_str(&b, shape, nd);
                dl_buf_printf(&b, " in the file, ");
                shape_str(&b, x->shape, x->ndim);
                dl_buf_printf(&b, " in the plan");
                why = b.s;
            }
        }
        if (why) {
            char *hint = source_hint(f, p);
            *err = dl_xasprintf("%s: %s%s", path, why, hint);
            free(why);
            free(hint);
            return -1;
        }
    }
    return check_arenas(p, e, arena, path, err);
}

/* Copy one (verified) entry from the file into the arenas. */
static void st_copy_one(const StFile *f, const DlPlan *p, const Entry *x, float *const arena[DL_AR_COUNT])
{
    const DlPlanTensor *t = &p->tensors[x->tensor];
    json_t *of = json_object_get(json_object_get(f->root, x->name), "data_offsets");
    uint64_t b = (uint64_t)json_integer_value(json_array_get(of, 0));
    memcpy(arena[t->arena] + t->offset + x->first, f->data + b, (size_t)x->numel * sizeof(float));
}

/* Copy every (verified) entry from the file into the arenas. */
static void st_copy(const StFile *f, const DlPlan *p, const Entries *e, float *const arena[DL_AR_COUNT])
{
    for (size_t i = 0; i < e->n; i++) st_copy_one(f, p, &e->a[i], arena);
}

int dl_load_weights(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], char **err)
{
    Entries e = {0};
    StFile f;
    int rc = -1;
    if (collect(p, 0, &e, path, err) == 0 && st_open(path, &f, err) == 0) {
        rc = st_verify(path, &f, p, &e, arena, err);
        if (rc == 0) st_copy(&f, p, &e, arena);
        st_close(&f);
    }
    entries_free(&e);
    return rc;
}

/* A metadata count: decimal digits only, at most max.  Returns 0, or -1
 * with *err naming the file, the key and its text. */
static int meta_count(const StFile *f, const char *path, const char *key, const char *what, uint64_t max,
                      uint64_t *out, char **err)
{
    const char *s = st_meta(f, key);
    int ok = s && *s && strspn(s, "0123456789") == strlen(s);
    if (ok) {
        errno = 0;
        unsigned long long v = strtoull(s, NULL, 10);
        ok = errno != ERANGE && v <= max;
        *out = v;
    }
    if (ok) return 0;
    if (!s)
        *err = dl_xasprintf("%s: checkpoint metadata '%s' is missing", path, key);
    else
        *err = dl_xasprintf("%s: checkpoint metadata '%s' is '%.40s%s', not %s in 0..%" PRIu64, path, key, s,
                            strlen(s) > 40 ? "..." : "", what, max);
    return -1;
}

int dl_load_checkpoint(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT],
                       DlTrainPos *pos, char **err)
{
    Entries e = {0};
    StFile f;
    if (collect(p, 1, &e, path, err) != 0 || st_open(path, &f, err) != 0) {
        entries_free(&e);
        return -1;
    }
    int rc = -1;
    const char *ck = st_meta(&f, "plan_checksum");
    uint64_t epoch = 0, step = 0, seed = 0;
    char want[32];
    snprintf(want, sizeof want, "%016" PRIx64, dl_plan_state_hash(p));
    if (!ck) {
        *err = dl_xasprintf("%s: not a dldl checkpoint (no 'plan_checksum' in its metadata; a weights file is for "
                            "--predict)", path);
    } else if (meta_count(&f, path, "epoch", "a count of epochs", DL_MAX_EPOCHS, &epoch, err) != 0 ||
               meta_count(&f, path, "step", "a step count", (uint64_t)DL_MAX_STEP, &step, err) != 0 ||
               meta_count(&f, path, "seed", "a seed", UINT64_MAX, &seed, err) != 0) {
        /* *err names the key */
    } else if (step < epoch) {
        *err = dl_xasprintf("%s: checkpoint metadata 'step' is %" PRIu64 ", fewer than its %" PRIu64
                            " epochs (each epoch takes a step at least)", path, step, epoch);
    } else if (st_verify(path, &f, p, &e, arena, err) != 0) {
        /* *err names the first differing tensor */
    } else if (strcmp(ck, want) != 0) {
        char *hint = source_hint(&f, p);
        *err = dl_xasprintf("%s: checkpoint of another model (plan_checksum %s, this plan's is %s)%s; start without "
                            "--resume or use a checkpoint of this plan", path, ck, want, hint);
        free(hint);
    } else {
        pos->epoch = (int)epoch;
        pos->step = (int64_t)step;
        pos->seed = seed;
        st_copy(&f, p, &e, arena);
        rc = 0;
    }
    st_close(&f);
    entries_free(&e);
    return rc;
}

/* ---- fine-tuning --------------------------------------------------------- */

void dl_init_report_free(DlInitReport *r)
{
    for (int i = 0; i < r->nloaded; i++) free(r->loaded[i]);
    for (int i = 0; i < r->nkept; i++) free(r->kept[i]);
    for (int i = 0; i < r->nignored; i++) free(r->ignored[i]);
    free(r->loaded), free(r->kept), free(r->ignored);
    memset(r, 0, sizeof *r);
}

/* "[32, 3, 3, 3]" */
static void shape_str_sp(DlBuf *b, const int64_t *shape, int ndim)
{
    dl_buf_put(b, "[", 1);
    for (int d = 0; d < ndim; d++) dl_buf_printf(b, "%s%" PRId64, d ? ", " : "", shape[d]);
    dl_buf_put(b, "]", 1);
}

/* At most this many mismatches are spelt out in the error. */
#define FT_MAX_NAMED 4

int dl_init_from_weights(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], DlInitReport *rep,
                         char **err)
{
    memset(rep, 0, sizeof *rep);
    Entries e = {0};
    StFile f;
    if (collect(p, 0, &e, path, err) != 0 || st_open(path, &f, err) != 0) {
        entries_free(&e);
        return -1;
    }
    /* Which entries the file holds (take[i]), and every mismatch, before any write. */
    char *take = dl_xcalloc(e.n ? e.n : 1, 1);
    DlBuf why = {0};
    int nbad = 0, ntake = 0;
    for (size_t i = 0; i < e.n; i++) {
        const Entry *x = &e.a[i];
        json_t *v = json_object_get(f.root, x->name);
        if (!v) continue;
        const char *dt = json_string_value(json_object_get(v, "dtype"));
        int64_t shape[16];
        int nd = json_shape(json_object_get(v, "shape"), shape, 16);
        int same = nd == x->ndim;
        for (int d = 0; same && d < nd; d++) same = shape[d] == x->shape[d];
        if (strcmp(dt, "F32") == 0 && same) {
            take[i] = 1, ntake++;
            continue;
        }
        if (nbad++ >= FT_MAX_NAMED) continue;
        dl_buf_printf(&why, "%s%s: the file has ", nbad > 1 ? "; " : "", x->name);
        if (!same) {
            shape_str_sp(&why, shape, nd);
            dl_buf_printf(&why, ", the plan ");
            shape_str_sp(&why, x->shape, x->ndim);
        } else {
            dl_buf_printf(&why, "dtype %s, the plan needs F32", dt);
        }
    }
    if (nbad) {
        if (nbad > FT_MAX_NAMED) dl_buf_printf(&why, "; %d more differ", nbad - FT_MAX_NAMED);
        *err = dl_xasprintf("%s: %s (a layer that should start from its initialisation needs a name the file does "
                            "not have)", path, why.s);
    } else if (ntake == 0) {
        DlBuf b = {0};
        const char *key;
        json_t *v;
        int k = 0;
        json_object_foreach(f.root, key, v) {
            if (strcmp(key, "__metadata__") == 0) continue;
            if (k++ < 3) dl_buf_printf(&b, "%s'%s'", k > 1 ? ", " : "", key);
        }
        *err = dl_xasprintf("%s: no tensor of the file has a name of this plan (the file has %d: %s%s; the plan "
                            "wants e.g. '%s')", path, k, k ? b.s : "none", k > 3 ? ", ..." : "",
                            e.n ? e.a[0].name : "");
        dl_buf_free(&b);
    } else {
        Entries t = {0}; /* the entries taken, for check_arenas */
        for (size_t i = 0; i < e.n; i++)
            if (take[i]) DL_PUSH(t, e.a[i]);
        int arc = check_arenas(p, &t, arena, path, err);
        DL_VEC_FREE(t);
        if (arc != 0) nbad = 1;
    }
    dl_buf_free(&why);
    if (nbad || ntake == 0) {
        free(take);
        st_close(&f);
        entries_free(&e);
        return -1;
    }
    rep->loaded = dl_xcalloc((size_t)ntake, sizeof *rep->loaded);
    rep->kept = dl_xcalloc(e.n - (size_t)ntake + 1, sizeof *rep->kept);
    rep->ignored = dl_xcalloc(json_object_size(f.root) + 1, sizeof *rep->ignored);
    for (size_t i = 0; i < e.n; i++) {
        if (take[i]) {
            st_copy_one(&f, p, &e.a[i], arena);
            rep->loaded[rep->nloaded++] = dl_xstrdup(e.a[i].name);
        } else {
            rep->kept[rep->nkept++] = dl_xstrdup(e.a[i].name);
        }
    }
    const char *key;
    json_t *v;
    json_object_foreach(f.root, key, v) {
        if (strcmp(key, "__metadata__") == 0) continue;
        size_t i = 0;
        while (i < e.n && strcmp(e.a[i].name, key) != 0) i++;
        if (i < e.n) continue;
        if (strncmp(key, "optimizer.", 10) == 0)
            rep->noptimizer++;
        else
            rep->ignored[rep->nignored++] = dl_xstrdup(key);
    }
    free(take);
    st_close(&f);
    entries_free(&e);
    return 0;
}

static void names_list(DlBuf *b, char *const *names, int n)
{
    for (int i = 0; i < n; i++) dl_buf_printf(b, "%s%s", i ? ", " : "", names[i]);
}

char *dl_init_report_str(const DlInitReport *r, const char *path)
{
    DlBuf b = {0};
    dl_buf_printf(&b, "loaded %d tensor%s from %s", r->nloaded, r->nloaded == 1 ? "" : "s", path);
    if (r->nkept) {
        dl_buf_printf(&b, "; left at initialisation: ");
        names_list(&b, r->kept, r->nkept);
    }
    if (r->nignored || r->noptimizer) {
        dl_buf_printf(&b, "; ignored from the file: ");
        names_list(&b, r->ignored, r->nignored);
        if (r->noptimizer)
            dl_buf_printf(&b, "%s%d optimizer tensor%s (momentum starts at 0)", r->nignored ? ", " : "",
                          r->noptimizer, r->noptimizer == 1 ? "" : "s");
    }
    return b.s;
}
