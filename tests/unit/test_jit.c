/* test_jit.c - the kernel cache trusts nothing by its name (runtime/jit.c,
 * issue 13): a shared object planted under the cache's name, a symbolic link
 * or a truncated object is never loaded (a planted one's constructor would
 * leave a marker file) but rebuilt with one warning; a cache directory that
 * others can write, that is a link or is someone else's is refused before
 * anything in it is read; the cache and its new parents are created 0700;
 * stale *.tmp.PID files of dead processes are removed, nothing else; no
 * temporary is left after a compile, failed or not. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xxhash.h>

#include "common/util.h"
#include "runtime/jit.h"

/* y[i] = 2 x[i] + 1 over [g0, g1): buffer 0 is x, 1 is y. */
static const char SRC[] = "#include <stdint.h>\n"
                          "void twice_plus_one(float *const *b, int64_t g0, int64_t g1)\n"
                          "{ for (int64_t i = g0; i < g1; i++) b[1][i] = 2 * b[0][i] + 1; }\n";
static const char *const NAMES[] = {"twice_plus_one"};

/* The same symbol, and a constructor that leaves a marker file: it must never run. */
static const char EVIL[] = "#include <stdint.h>\n"
                           "#include <stdio.h>\n"
                           "__attribute__((constructor)) static void planted(void)\n"
                           "{ FILE *f = fopen(MARKER, \"w\"); if (f) fclose(f); }\n"
                           "void twice_plus_one(float *const *b, int64_t g0, int64_t g1)\n"
                           "{ for (int64_t i = g0; i < g1; i++) b[1][i] = 666; }\n";

static char *work;   /* a private scratch directory */
static char *cache;  /* $DLDL_CACHE: work/c/kernels (created by dl_jit_load) */
static char *marker; /* what the planted constructor would create */
static char *evil;   /* the planted shared object, built once */

static int exists(const char *p)
{
    struct stat st;
    return lstat(p, &st) == 0;
}

static void write_text(const char *path, const char *s)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(s, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void copy_file(const char *from, const char *to)
{
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(from, (size_t)1 << 30, &b, &why) != 0) fail_msg("%s: %s", from, why);
    assert_int_equal(dl_write_file_atomic(to, b.s, b.n), 0);
    dl_buf_free(&b);
}

static int group_setup(void **state)
{
    char tmpl[] = "/tmp/dldl_test_jit_XXXXXX";
    if (!mkdtemp(tmpl)) return -1;
    work = dl_xstrdup(tmpl);
    marker = dl_xasprintf("%s/planted-constructor-ran", work);
    evil = dl_xasprintf("%s/evil.so", work);
    char *src = dl_xasprintf("%s/evil.c", work);
    FILE *f = fopen(src, "w");
    if (!f) return -1;
    fputs(EVIL, f);
    fclose(f);
    const char *cc = getenv("CC");
    char *cmd = dl_xasprintf("%s -shared -fPIC '-DMARKER=\"%s\"' -o '%s' '%s'", cc && *cc ? cc : "cc", marker, evil,
                             src);
    int rc = system(cmd);
    free(cmd), free(src);
    return rc == 0 ? 0 : -1;
}

static int group_teardown(void **state)
{
    char *cmd = dl_xasprintf("chmod -R u+rwx '%s'; rm -rf '%s'", work, work);
    int rc = system(cmd);
    free(cmd), free(work), free(marker), free(evil);
    return rc == 0 ? 0 : -1;
}

/* Each test: an empty cache, two levels below work, not there yet. */
static int setup(void **state)
{
    char *cmd = dl_xasprintf("rm -rf '%s/c' '%s'", work, marker);
    int rc = system(cmd);
    free(cmd);
    cache = dl_xasprintf("%s/c/kernels", work);
    setenv("DLDL_CACHE", cache, 1);
    return rc == 0 ? 0 : -1;
}

static int teardown(void **state)
{
    free(cache);
    cache = NULL;
    return 0;
}

/* stderr into a file while f runs; the text comes back (malloc'd). */
static char *stderr_of(int (*f)(DlJit *, char **), DlJit *j, char **err, int *rc)
{
    char *path = dl_xasprintf("%s/stderr", work);
    fflush(stderr);
    int saved = dup(2), fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    *rc = f(j, err);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(path, 1 << 20, &b, &why) != 0) fail_msg("%s: %s", path, why);
    free(path);
    return b.s;
}

static int load(DlJit *j, char **err) { return dl_jit_load(SRC, NAMES, 1, j, err); }

/* Load, run the kernel on 5 values and check y = 2x + 1 (the real kernel). */
static void load_and_check(DlJit *j, int hit)
{
    char *err = NULL;
    if (load(j, &err) != 0) fail_msg("dl_jit_load: %s", err);
    assert_int_equal(j->cache_hit, hit);
    if (hit) assert_true(j->compile_s == 0);
    else assert_true(j->compile_s > 0);
    float x[5] = {0, 1, 2, -3, 0.5f}, y[5] = {0};
    float *b[2] = {x, y};
    j->fn[0](b, 0, 5);
    for (int i = 0; i < 5; i++) assert_true(y[i] == 2 * x[i] + 1);
}

/* Paths of the entry in the cache. */
static char *so_path(void)
{
    DlJit j;
    load_and_check(&j, 0);
    char *so = dl_xstrdup(j.so_path);
    dl_jit_close(&j);
    return so;
}

/* Names in dir containing ".tmp." */
static int count_tmp(const char *dir)
{
    DIR *d = opendir(dir);
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        if (strstr(e->d_name, ".tmp.")) n++;
    closedir(d);
    return n;
}

static int count_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));) n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

static void assert_mode(const char *path, unsigned mode)
{
    struct stat st;
    assert_int_equal(lstat(path, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(st.st_mode & 0777, mode);
}

/* A miss compiles and records the checksum, a hit loads without compiling;
 * the cache and its parent are created 0700; no temporary is left. */
static void test_miss_then_hit(void **state)
{
    char *parent = dl_xasprintf("%s/c", work);
    assert_false(exists(parent));
    int fds = count_fds();
    char *so = so_path();
    assert_mode(parent, 0700);
    assert_mode(cache, 0700);
    char *rec = dl_xasprintf("%s.xxh128", so);
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(rec, 1024, &b, &why) != 0) fail_msg("%s: %s", rec, why);
    struct stat st;
    assert_int_equal(stat(so, &st), 0);
    char hex[33];
    unsigned long long size = 0;
    assert_int_equal(sscanf(b.s, "%32[0-9a-f] %llu", hex, &size), 2);
    assert_int_equal(strlen(hex), 32);
    assert_int_equal(size, (unsigned long long)st.st_size);
    dl_buf_free(&b);
    DlJit j;
    load_and_check(&j, 1);
    assert_string_equal(j.so_path, so);
    /* loaded from the verified bytes in a sealed memfd, not from the file */
    assert_true(j.memfd >= 0);
    assert_int_equal(fcntl(j.memfd, F_GET_SEALS),
                     F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL);
    DlBuf maps = {0};
    why = NULL;
    if (dl_read_file("/proc/self/maps", 1 << 24, &maps, &why) != 0) fail_msg("/proc/self/maps: %s", why);
    char *mapped = dl_xasprintf("/memfd:%s", strrchr(so, '/') + 1);
    if (!strstr(maps.s, mapped)) fail_msg("%s is not mapped:\n%s", mapped, maps.s);
    assert_null(strstr(maps.s, so)); /* nor the cached file itself */
    free(mapped);
    dl_buf_free(&maps);
    DlJit k; /* two at once: each its own object */
    load_and_check(&k, 1);
    dl_jit_close(&j);
    dl_jit_close(&k);
    load_and_check(&j, 1);
    dl_jit_close(&j);
    assert_int_equal(count_tmp(cache), 0);
    assert_int_equal(count_fds(), fds); /* the memfds went with their objects */
    free(rec), free(so), free(parent);
}

static int load_quiet_check(const char *want_in_stderr)
{
    DlJit j;
    char *err = NULL;
    int rc;
    char *text = stderr_of(load, &j, &err, &rc);
    if (rc != 0) fail_msg("dl_jit_load: %s", err);
    if (!strstr(text, want_in_stderr)) fail_msg("stderr lacks '%s': %s", want_in_stderr, text);
    int hit = j.cache_hit;
    float x[2] = {1, 2}, y[2] = {0};
    float *b[2] = {x, y};
    j.fn[0](b, 0, 2);
    assert_true(y[0] == 3 && y[1] == 5); /* the real kernel, not the planted one (666) */
    dl_jit_close(&j);
    free(text);
    return hit;
}

/* A different object planted under the cache's name (with the old record,
 * without one, as a symbolic link) is never run: it is rebuilt. */
static void test_planted_object(void **state)
{
    char *so = so_path();
    char *rec = dl_xasprintf("%s.xxh128", so);
    char *msg = dl_xasprintf("dldlrun: kernel cache entry %s is damaged (", so);

    copy_file(evil, so); /* the record is the real object's */
    assert_int_equal(load_quiet_check(msg), 0);
    assert_false(exists(marker));

    copy_file(evil, so);
    assert_int_equal(unlink(rec), 0); /* no record at all */
    assert_int_equal(load_quiet_check("no checksum record"), 0);
    assert_false(exists(marker));

    assert_int_equal(unlink(so), 0);
    assert_int_equal(symlink(evil, so), 0);
    assert_int_equal(load_quiet_check("is a symbolic link"), 0);
    assert_false(exists(marker));
    struct stat st;
    assert_int_equal(lstat(so, &st), 0);
    assert_true(S_ISREG(st.st_mode)); /* the link was replaced by a real object */

    /* rebuilt and recorded: a plain hit now, no warning */
    DlJit j;
    char *err = NULL;
    int rc;
    char *text = stderr_of(load, &j, &err, &rc);
    assert_int_equal(rc, 0);
    assert_int_equal(j.cache_hit, 1);
    assert_string_equal(text, "");
    dl_jit_close(&j);
    assert_false(exists(marker));
    /* the planted object does run when loaded, so the marker would show it */
    void *h = dlopen(evil, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(h);
    assert_true(exists(marker));
    dlclose(h);
    unlink(marker);
    free(text), free(msg), free(rec), free(so);
}

/* A truncated object (the old code died of SIGBUS) or one cut to nothing is rebuilt. */
static void test_truncated_object(void **state)
{
    char *so = so_path();
    struct stat st;
    assert_int_equal(stat(so, &st), 0);
    assert_int_equal(truncate(so, st.st_size / 2), 0);
    assert_int_equal(load_quiet_check("bytes, its record says"), 0); /* the size, before the hash */
    assert_int_equal(truncate(so, 0), 0);
    assert_int_equal(load_quiet_check("is 0 bytes, its record says"), 0);
    char *rec = dl_xasprintf("%s.xxh128", so);
    write_text(rec, "not a record\n");
    assert_int_equal(load_quiet_check("is malformed"), 0);
    /* same size, one byte changed */
    int fd = open(so, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, "\x01", 1, st.st_size / 2 + 7), 1);
    close(fd);
    assert_int_equal(load_quiet_check("XXH3-128 differs"), 0);
    free(rec), free(so);
}

/* A cache directory others can write, a link, a file or another user's is
 * refused, naming it and the fix, and nothing in it is loaded. */
static void test_refused_directory(void **state)
{
    char *so = so_path();
    /* a planted object with a forged record: loaded if the directory were trusted */
    copy_file(evil, so);
    DlBuf b = {0};
    char *why = NULL;
    if (dl_read_file(so, (size_t)1 << 30, &b, &why) != 0) fail_msg("%s: %s", so, why);
    XXH128_hash_t h = XXH3_128bits(b.s, b.n);
    char *rec = dl_xasprintf("%s.xxh128", so), *forged = dl_xasprintf("%016llx%016llx %zu\n",
        (unsigned long long)h.high64, (unsigned long long)h.low64, b.n);
    write_text(rec, forged);
    dl_buf_free(&b);
    free(rec), free(forged);
    const unsigned modes[] = {0777, 0770, 0702};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(chmod(cache, modes[i]), 0);
        DlJit j;
        char *err = NULL;
        assert_int_equal(load(&j, &err), -1);
        assert_null(j.handle);
        char *want = dl_xasprintf("refusing the kernel cache '%s': it is writable by group or others (mode %04o)",
                                  cache, modes[i]);
        if (!strstr(err, want)) fail_msg("error: %s\nwanted: %s", err, want);
        char *fix = dl_xasprintf("chmod 700 '%s'", cache);
        assert_non_null(strstr(err, fix));
        assert_non_null(strstr(err, "DLDL_CACHE"));
        free(want), free(fix), free(err);
        assert_false(exists(marker));
    }
    /* a symbolic link to a good directory */
    assert_int_equal(chmod(cache, 0700), 0);
    char *link = dl_xasprintf("%s/c/link", work);
    assert_int_equal(symlink(cache, link), 0);
    setenv("DLDL_CACHE", link, 1);
    DlJit j;
    char *err = NULL;
    assert_int_equal(load(&j, &err), -1);
    char *want = dl_xasprintf("refusing the kernel cache '%s': it is a symbolic link", link);
    if (!strstr(err, want)) fail_msg("error: %s", err);
    free(want), free(err);
    /* a file */
    char *file = dl_xasprintf("%s/c/file", work);
    write_text(file, "x");
    setenv("DLDL_CACHE", file, 1);
    assert_int_equal(load(&j, &err), -1);
    want = dl_xasprintf("refusing the kernel cache '%s': it is not a directory", file);
    if (!strstr(err, want)) fail_msg("error: %s", err);
    free(want), free(err);
    /* someone else's (root can make one) */
    setenv("DLDL_CACHE", cache, 1);
    if (geteuid() == 0) {
        assert_int_equal(chown(cache, 12345, (gid_t)-1), 0);
        assert_int_equal(load(&j, &err), -1);
        want = dl_xasprintf("refusing the kernel cache '%s': it is owned by uid 12345, not by you", cache);
        if (!strstr(err, want)) fail_msg("error: %s", err);
        free(want), free(err);
        assert_int_equal(chown(cache, 0, (gid_t)-1), 0);
    }
    assert_false(exists(marker));
    /* a forged record is what the directory's privacy guards against: with
     * it gone, the planted object is found damaged and rebuilt, not run */
    rec = dl_xasprintf("%s.xxh128", so);
    assert_int_equal(unlink(rec), 0);
    assert_int_equal(chmod(cache, 0700), 0);
    assert_int_equal(load_quiet_check("is damaged"), 0);
    assert_false(exists(marker));
    free(rec), free(file), free(link), free(so);
}

/* A pid that was alive a moment ago and is not now. */
static pid_t dead_pid(void)
{
    pid_t p = fork();
    assert_true(p >= 0);
    if (p == 0) _exit(0);
    int st;
    assert_int_equal(waitpid(p, &st, 0), p);
    return p;
}

static void make_file(const char *dir, const char *name, int age_s)
{
    char *p = dl_xasprintf("%s/%s", dir, name);
    write_text(p, "stale");
    if (age_s) {
        struct timeval tv[2];
        gettimeofday(&tv[0], NULL);
        tv[0].tv_sec -= age_s;
        tv[1] = tv[0];
        assert_int_equal(utimes(p, tv), 0);
    }
    free(p);
}

static int present(const char *dir, const char *name)
{
    char *p = dl_xasprintf("%s/%s", dir, name);
    int r = exists(p);
    free(p);
    return r;
}

/* Opening the cache removes *.tmp.PID files of dead processes, older than a
 * minute, and nothing else. */
static void test_stale_tmp(void **state)
{
    char *so = so_path();
    pid_t dead = dead_pid();
    char *n_so = dl_xasprintf("0123456789abcdef.so.tmp.%ld", (long)dead);
    char *n_c = dl_xasprintf("0123456789abcdef.c.tmp.%ld", (long)dead);
    char *n_fresh = dl_xasprintf("fedcba9876543210.so.tmp.%ld", (long)dead);
    char *n_live = dl_xasprintf("aaaaaaaaaaaaaaaa.so.tmp.%ld", (long)getppid());
    char *n_zero = dl_xasprintf("x.tmp.0%ld", (long)dead);
    char *n_suffix = dl_xasprintf("x.tmp.%ldx", (long)dead);
    char *n_bare = dl_xasprintf(".tmp.%ld", (long)dead);
    const char *n_other = "notes.txt";
    make_file(cache, n_so, 3600);
    make_file(cache, n_c, 3600);
    make_file(cache, n_fresh, 0);  /* could be a compile on another host: kept for now */
    make_file(cache, n_live, 3600); /* the test runner is alive */
    make_file(cache, n_zero, 3600);
    make_file(cache, n_suffix, 3600);
    make_file(cache, n_bare, 3600);
    make_file(cache, n_other, 3600);
    DlJit j;
    load_and_check(&j, 1);
    dl_jit_close(&j);
    assert_false(present(cache, n_so));
    assert_false(present(cache, n_c));
    assert_true(present(cache, n_fresh));
    assert_true(present(cache, n_live));
    assert_true(present(cache, n_zero));
    assert_true(present(cache, n_suffix));
    assert_true(present(cache, n_bare));
    assert_true(present(cache, n_other));
    free(n_so), free(n_c), free(n_fresh), free(n_live), free(n_zero), free(n_suffix), free(n_bare), free(so);
}

/* A compile that fails, or a compiler that writes nothing, leaves no temporary. */
static void test_failures_leave_no_tmp(void **state)
{
    DlJit j;
    char *err = NULL;
    const char *bad = "void twice_plus_one(void) { this is not C }\n";
    assert_int_equal(dl_jit_load(bad, NAMES, 1, &j, &err), -1);
    assert_non_null(strstr(err, "the C compiler failed on the generated kernels"));
    assert_non_null(strstr(err, "the source is saved at"));
    free(err);
    assert_int_equal(count_tmp(cache), 0);
    /* a "compiler" that exits 0 without writing the object */
    char *cc = getenv("CC") ? dl_xstrdup(getenv("CC")) : NULL;
    setenv("CC", "true", 1);
    assert_int_equal(dl_jit_load("/* another source */\n", NAMES, 1, &j, &err), -1);
    assert_non_null(strstr(err, "the compiler did not write it"));
    free(err);
    if (cc) setenv("CC", cc, 1);
    else unsetenv("CC");
    free(cc);
    assert_int_equal(count_tmp(cache), 0);
    /* a missing kernel is still reported */
    const char *const other[] = {"no_such_kernel"};
    assert_int_equal(dl_jit_load(SRC, other, 1, &j, &err), -1);
    assert_non_null(strstr(err, "kernel 'no_such_kernel' is missing"));
    free(err);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_miss_then_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_planted_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_truncated_object, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_directory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_leave_no_tmp, setup, teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
