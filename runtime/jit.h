/* jit.h - compile a plan's C kernels with the system C compiler and load them.
 *
 * The source is compiled once per machine into a shared object cached under
 * $DLDL_CACHE (a directory), else ~/.cache/dldl/, named by the XXH3-64 of
 * (source, flags, first line of `$CC --version`): `<16 hex digits>.so`, next
 * to the source it came from (`.c`) and its checksum record (`.so.xxh128`:
 * the XXH3-128 of the object's bytes in 32 hex digits, a blank, its size in
 * bytes).  A new object is written by the compiler under a temporary name
 * (`.so.tmp.PID`), its record written, then renamed, so concurrent processes
 * never see a partial file; the temporary is removed on every failure, and
 * such files of dead processes (older than a minute) are removed when the
 * cache is opened.  Flags: -O3 -march=native -fPIC -shared -fno-math-errno
 * (no -ffast-math: the runtime's NaN checks must keep working).
 * DLDL_DEBUG=1 prints the compiler command line on stderr.
 */
#ifndef DL_JIT_H
#define DL_JIT_H

#include <stddef.h>
#include <stdint.h>

/* The kernel ABI (codegen/codegen.h): buffer i is dl_b[i]; work items [g0, g1). */
typedef void (*DlKernelFn)(float *const *dl_b, int64_t dl_g0, int64_t dl_g1);

typedef struct DlJit {
    void *handle;      /* dlopen handle */
    DlKernelFn *fn;    /* [n] in the order of the names given */
    int n;
    char *so_path;     /* the cached object */
    int cache_hit;     /* 1 when the object was already there and verified */
    double compile_s;  /* seconds spent compiling (0 on a hit) */
    int memfd;         /* the sealed memfd the object was loaded from, or -1 */
} DlJit;

/* Compile (or find) source and resolve names[0..n).
 *
 * What is trusted: the cache directory is created with mode 0700 (and so are
 * the parents it creates), and is refused unless it is a directory itself
 * (not a symbolic link), owned by the effective uid and not writable by group
 * or others; then nothing is read from it and *err names the directory, what
 * is wrong and the fix (chmod 700 DIR, or DLDL_CACHE).  A cached object is
 * loaded only when it is a regular file (opened without following a link)
 * owned by the effective uid, of at most 256 MiB, read whole, whose size and
 * XXH3-128 match its record; otherwise (a planted, truncated or replaced
 * object, a missing or wrong record) it is never loaded: one line "dldlrun:
 * kernel cache entry PATH is damaged (why); rebuilding" goes to stderr, the
 * entry is removed and compiled again.  The bytes verified (or just compiled)
 * are what is loaded: copied into a memfd sealed against any change and
 * dlopen'd as /proc/self/fd/N, so replacing the file after the check changes
 * nothing.  Where memfd_create or /proc is unavailable the verified file is
 * dlopen'd by its path instead, which leaves the moment between the check
 * and the load to the directory's privacy.
 *
 * Returns 0, or -1 with *err: the refusal above, the compiler's output and
 * the path of the saved source on a compile failure, the dlerror() text for
 * an object that does not load or a missing symbol. */
int dl_jit_load(const char *source, const char *const *names, int n, DlJit *out, char **err);
void dl_jit_close(DlJit *j);

/* A compiler the cache can run: $env (else dflt, split on blanks) with
 * flags[0..nflags) -o OBJECT SOURCE; the source is saved as <hash><ext>.
 * dl_jit_cc is the C one above; the emulated CUDA device (cuda_emu.c)
 * has g++ under codegen/cuda_host_emu.h. */
typedef struct DlJitCompiler {
    const char *what;          /* "the C compiler", in messages */
    const char *env, *dflt;
    const char *const *flags;
    int nflags;
    const char *ext;
} DlJitCompiler;
extern const DlJitCompiler dl_jit_cc;
/* dl_jit_load with compiler c (its flags and `--version` in the key). */
int dl_jit_load_with(const DlJitCompiler *c, const char *source, const char *const *names, int n, DlJit *out,
                     char **err);

/* Build an artefact into the path given (a temporary in the cache
 * directory); 0, or -1 with *err. */
typedef int (*DlCacheBuild)(void *ctx, const char *tmp_path, char **err);
/* The cache's discipline for any artefact (the NVRTC cubins of cuda_real.c
 * too): the entry `name` of the cache directory, checked exactly as above
 * (private directory, regular file of ours, size and XXH3-128 against its
 * record; a damaged entry is reported on stderr, removed and rebuilt), or
 * built by build(ctx, tmp) when absent, recorded and renamed into place.
 * Returns 0 with the verified bytes in *data (malloc'd, *size bytes) and
 * *hit = 1 when they came from the cache, or -1 with *err. */
int dl_cache_fetch(const char *name, DlCacheBuild build, void *ctx, unsigned char **data, size_t *size, int *hit,
                   char **err);

#endif
