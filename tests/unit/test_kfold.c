/* test_kfold.c - the reference's ten-fold split (runtime/kfold.c) against numpy.
 *
 * tests/numeric/kfold.txt is written by tests/numeric/make_kfold_fixture.py from
 * numpy's legacy np.random.RandomState(seed).permutation(n) and np.array_split:
 * whole permutations (n = 1, 2, 3, 10, the LDL sets' 213 .. 2500, 4097; seeds 0,
 * 1, 7, 12345, 2^32 - 1), digests of long ones (n = 100000, which draws with
 * every bound 1..99999) and of every n in 1..1030 for seed 0, the array_split
 * fold sizes of some (n, k), and the folds of three splits in full.  All are
 * compared exactly.  dl_kfold_assign is checked fold by fold against the
 * permutation cut at numpy's sizes, and each sample must be test exactly once
 * over the k folds.  By hand: bad k or fold (all train), n = 0.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../runtime/kfold.h"

#define FIXTURE "tests/numeric/kfold.txt"

/* One fixture line: its first word and the numbers after it. */
typedef struct Rec {
    char kind[16];
    unsigned long long *v;
    int nv;
} Rec;

static Rec *recs;
static int nrecs;

static int load_fixture(void **state)
{
    FILE *f = fopen(FIXTURE, "r");
    if (!f) {
        fprintf(stderr, "%s: cannot open (run from the repository root)\n", FIXTURE);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    int rcap = 0;
    while (getline(&line, &cap, f) > 0) {
        char *save = NULL, *t = strtok_r(line, " \t\r\n", &save);
        if (!t || t[0] == '#') continue;
        if (nrecs == rcap) {
            rcap = rcap ? 2 * rcap : 256;
            recs = dl_xrealloc(recs, (size_t)rcap * sizeof *recs);
        }
        Rec *r = &recs[nrecs++];
        memset(r, 0, sizeof *r);
        snprintf(r->kind, sizeof r->kind, "%s", t);
        int vcap = 0;
        while ((t = strtok_r(NULL, " \t\r\n", &save))) {
            if (r->nv == vcap) {
                vcap = vcap ? 2 * vcap : 16;
                r->v = dl_xrealloc(r->v, (size_t)vcap * sizeof *r->v);
            }
            r->v[r->nv++] = strtoull(t, NULL, 10);
        }
    }
    free(line);
    fclose(f);
    return nrecs > 0 ? 0 : -1;
}

static int free_fixture(void **state)
{
    for (int i = 0; i < nrecs; i++) free(recs[i].v);
    free(recs);
    return 0;
}

static uint64_t digest(const int *p, int n)
{
    uint64_t d = 0;
    for (int i = 0; i < n; i++)
        d += (uint64_t)p[i] * ((2 * (uint64_t)i + 1) * 0x9E3779B97F4A7C15ULL);
    return d;
}

static void test_permutation(void **state)
{
    int seen = 0;
    for (int r = 0; r < nrecs; r++) {
        if (strcmp(recs[r].kind, "perm") != 0) continue;
        const unsigned long long *v = recs[r].v;
        uint32_t seed = (uint32_t)v[0];
        int n = (int)v[1];
        assert_int_equal(recs[r].nv, 2 + n);
        int *p = dl_xmalloc((size_t)n * sizeof *p);
        dl_np_permutation(seed, n, p);
        for (int i = 0; i < n; i++) {
            if ((unsigned long long)p[i] != v[2 + i])
                fail_msg("seed %u n %d: out[%d] = %d, numpy %llu", seed, n, i, p[i], v[2 + i]);
        }
        free(p);
        seen++;
    }
    assert_true(seen >= 9);
}

static void test_digests(void **state)
{
    int seen = 0, *p = dl_xmalloc(100000 * sizeof *p);
    for (int r = 0; r < nrecs; r++) {
        if (strcmp(recs[r].kind, "digest") != 0) continue;
        const unsigned long long *v = recs[r].v;
        uint32_t seed = (uint32_t)v[0];
        int n = (int)v[1];
        assert_true(n >= 1 && n <= 100000);
        dl_np_permutation(seed, n, p);
        if (digest(p, n) != (uint64_t)v[2])
            fail_msg("seed %u n %d: digest %llu, numpy %llu", seed, n,
                     (unsigned long long)digest(p, n), v[2]);
        seen++;
    }
    free(p);
    assert_true(seen >= 1000);
}

/* The folds of (seed, n, k) from dl_kfold_assign against perm cut at sizes[]. */
static void check_split(uint32_t seed, int n, int k, const unsigned long long *sizes)
{
    int *p = dl_xmalloc((size_t)n * sizeof *p);
    int *times = dl_xcalloc((size_t)n, sizeof *times);
    uint8_t *is_test = dl_xmalloc((size_t)n);
    uint8_t *want = dl_xmalloc((size_t)n);
    dl_np_permutation(seed, n, p);
    int start = 0;
    for (int f = 0; f < k; f++) {
        memset(want, 0, (size_t)n);
        for (int i = start; i < start + (int)sizes[f]; i++) want[p[i]] = 1;
        start += (int)sizes[f];
        dl_kfold_assign(seed, n, k, f, is_test);
        for (int i = 0; i < n; i++) {
            if (is_test[i] != want[i])
                fail_msg("seed %u n %d k %d fold %d: sample %d is_test %d, numpy %d",
                         seed, n, k, f, i, is_test[i], want[i]);
            times[i] += is_test[i];
        }
    }
    assert_int_equal(start, n);
    for (int i = 0; i < n; i++) assert_int_equal(times[i], 1);
    free(p);
    free(times);
    free(is_test);
    free(want);
}

static void test_sizes(void **state)
{
    int seen = 0;
    for (int r = 0; r < nrecs; r++) {
        if (strcmp(recs[r].kind, "sizes") != 0) continue;
        const unsigned long long *v = recs[r].v;
        int n = (int)v[0], k = (int)v[1];
        assert_int_equal(recs[r].nv, 2 + k);
        check_split(0, n, k, v + 2);
        check_split(12345, n, k, v + 2);
        seen++;
    }
    assert_true(seen >= 5);
}

static void test_folds(void **state)
{
    int seen = 0;
    for (int r = 0; r < nrecs; r++) {
        if (strcmp(recs[r].kind, "fold") != 0) continue;
        const unsigned long long *v = recs[r].v;
        uint32_t seed = (uint32_t)v[0];
        int n = (int)v[1], k = (int)v[2], f = (int)v[3], m = (int)v[4];
        assert_int_equal(recs[r].nv, 5 + m);
        uint8_t *is_test = dl_xmalloc((size_t)n);
        dl_kfold_assign(seed, n, k, f, is_test);
        int count = 0;
        for (int i = 0; i < n; i++) count += is_test[i];
        assert_int_equal(count, m);
        for (int j = 0; j < m; j++) assert_int_equal(is_test[v[5 + j]], 1);
        free(is_test);
        seen++;
    }
    assert_true(seen >= 10);
}

static void test_by_hand(void **state)
{
    uint8_t t[8];
    int p[1] = {-1};
    /* bad k or fold: every sample train */
    memset(t, 7, sizeof t);
    dl_kfold_assign(0, 8, 0, 0, t);
    for (int i = 0; i < 8; i++) assert_int_equal(t[i], 0);
    memset(t, 7, sizeof t);
    dl_kfold_assign(0, 8, 3, 3, t);
    for (int i = 0; i < 8; i++) assert_int_equal(t[i], 0);
    memset(t, 7, sizeof t);
    dl_kfold_assign(0, 8, 3, -1, t);
    for (int i = 0; i < 8; i++) assert_int_equal(t[i], 0);
    /* n = 0 writes nothing */
    memset(t, 7, sizeof t);
    dl_kfold_assign(0, 0, 10, 0, t);
    assert_int_equal(t[0], 7);
    dl_np_permutation(0, 0, p);
    assert_int_equal(p[0], -1);
    /* k = n: one sample a fold; k > n: the last folds are empty */
    memset(t, 7, sizeof t);
    dl_kfold_assign(1, 5, 9, 7, t);
    for (int i = 0; i < 5; i++) assert_int_equal(t[i], 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_digests),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_folds),
        cmocka_unit_test(test_by_hand),
    };
    return cmocka_run_group_tests(tests, load_fixture, free_fixture);
}
