/* weights_diff.c - compare two safetensors files tensor by tensor (the MPI
 * tests, tests/e2e/mpi*.sh: N ranks against one process).
 *
 *   weights_diff A.safetensors B.safetensors [TOL]
 *
 * For every F32 tensor of A (B must hold it, same shape): e = max |a - b| /
 * max(max |a|, 1e-3), the largest difference relative to the tensor's scale.
 * Prints the worst tensor and e; exit 0 when e <= TOL (default 0: bit-equal),
 * 1 when larger, 2 on a malformed file or a missing or mismatched tensor.
 * WEIGHTS_DIFF_ONLY=a,b,...: only the tensors whose names contain one of
 * these strings; WEIGHTS_DIFF_ALL=1: print every tensor's figure.
 * Reads the files whole (test sizes); the header is JSON (jansson).
 */
#include <jansson.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct St { unsigned char *buf; size_t n; json_t *hdr; const unsigned char *data; } St;

static int load(const char *path, St *s)
{
    FILE *f = fopen(path, "rb");
    if (!f) return fprintf(stderr, "weights_diff: cannot open %s\n", path), -1;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    s->buf = malloc(n > 0 ? (size_t)n : 1);
    s->n = n > 0 && fread(s->buf, 1, (size_t)n, f) == (size_t)n ? (size_t)n : 0;
    fclose(f);
    uint64_t h = 0;
    for (int i = 0; i < 8 && s->n >= 8; i++) h |= (uint64_t)s->buf[i] << (8 * i);
    if (s->n < 8 || h > s->n - 8) return fprintf(stderr, "weights_diff: %s: not a safetensors file\n", path), -1;
    json_error_t je;
    s->hdr = json_loadb((const char *)s->buf + 8, (size_t)h, 0, &je);
    if (!json_is_object(s->hdr)) return fprintf(stderr, "weights_diff: %s: bad header: %s\n", path, je.text), -1;
    s->data = s->buf + 8 + h;
    return 0;
}

/* Tensor name of s: its floats and count, or NULL. */
static const float *tensor(const St *s, const char *name, json_t **shape, size_t *count)
{
    json_t *t = json_object_get(s->hdr, name), *off = json_object_get(t, "data_offsets");
    if (!t || strcmp(json_string_value(json_object_get(t, "dtype")) ?: "", "F32")) return NULL;
    json_int_t b = json_integer_value(json_array_get(off, 0)), e = json_integer_value(json_array_get(off, 1));
    if (b < 0 || e < b || (size_t)e > s->n - (size_t)(s->data - s->buf) || (e - b) % 4) return NULL;
    *shape = json_object_get(t, "shape");
    *count = (size_t)(e - b) / 4;
    return (const float *)(s->data + b);
}

/* 1 when $WEIGHTS_DIFF_ONLY is unset or one of its comma-separated strings is in name. */
static int selected(const char *name)
{
    const char *only = getenv("WEIGHTS_DIFF_ONLY");
    if (!only || !*only) return 1;
    for (const char *q = only; *q;) {
        size_t n = strcspn(q, ",");
        char part[256];
        snprintf(part, sizeof part, "%.*s", (int)(n < 255 ? n : 255), q);
        if (n && strstr(name, part)) return 1;
        q += n + (q[n] == ',');
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4) return fprintf(stderr, "usage: weights_diff A B [TOL]\n"), 2;
    double tol = argc == 4 ? atof(argv[3]) : 0;
    St a = {0}, b = {0};
    if (load(argv[1], &a) || load(argv[2], &b)) return 2;
    const char *key, *worst = "-";
    json_t *v;
    double emax = 0, dmax = 0;
    int n = 0;
    json_object_foreach(a.hdr, key, v) {
        if (!strcmp(key, "__metadata__") || !selected(key)) continue;
        json_t *sa, *sb;
        size_t na, nb;
        const float *x = tensor(&a, key, &sa, &na), *y = tensor(&b, key, &sb, &nb);
        if (!x) continue;
        if (!y || na != nb || !json_equal(sa, sb))
            return fprintf(stderr, "weights_diff: %s: %s missing or of another shape\n", argv[2], key), 2;
        double amax = 0, d = 0;
        for (size_t i = 0; i < na; i++) {
            float xi, yi; /* the data need not be aligned */
            memcpy(&xi, x + i, 4), memcpy(&yi, y + i, 4);
            amax = fmax(amax, fabs(xi));
            d = fmax(d, isnan(xi - yi) ? INFINITY : fabs((double)xi - (double)yi));
        }
        double e = d / fmax(amax, 1e-3);
        if (getenv("WEIGHTS_DIFF_ALL")) printf("  %-40s %.3g (%.3g of %.3g)\n", key, e, d, amax);
        if (e > emax || n == 0) emax = e, dmax = d, worst = key;
        n++;
    }
    printf("%d tensors; largest difference %.3g (%.3g of its tensor's scale) in %s\n", n, dmax, emax, worst);
    return emax <= tol ? 0 : 1;
}
