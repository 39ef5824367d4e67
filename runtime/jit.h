/* jit.h - compile a plan's C kernels with the system C compiler and load them.
 *
 * The source is compiled once per machine into a shared object cached under
 * $DLDL_CACHE (a directory), else ~/.cache/dldl/, named by the XXH3-64 of
 * (source, flags, first line of `$CC --version`): `<16 hex digits>.so`, next
 * to the source it came from (`.c`).  A present object is reused; a new one is
 * written under a temporary name and renamed, so concurrent processes never
 * see a partial file.  Flags: -O3 -march=native -fPIC -shared -fno-math-errno
 * (no -ffast-math: the runtime's NaN checks must keep working).
 * DLDL_DEBUG=1 prints the compiler command line on stderr.
 */
#ifndef DL_JIT_H
#define DL_JIT_H

#include <stdint.h>

/* The kernel ABI (codegen/codegen.h): buffer i is dl_b[i]; work items [g0, g1). */
typedef void (*DlKernelFn)(float *const *dl_b, int64_t dl_g0, int64_t dl_g1);

typedef struct DlJit {
    void *handle;      /* dlopen handle */
    DlKernelFn *fn;    /* [n] in the order of the names given */
    int n;
    char *so_path;     /* the cached object */
    int cache_hit;     /* 1 when the object was already there */
    double compile_s;  /* seconds spent compiling (0 on a hit) */
} DlJit;

/* Compile (or find) source and resolve names[0..n).  Returns 0, or -1 with
 * *err: the compiler's output and the path of the saved source on a compile
 * failure, the dlerror() text for a missing symbol. */
int dl_jit_load(const char *source, const char *const *names, int n, DlJit *out, char **err);
void dl_jit_close(DlJit *j);

#endif
