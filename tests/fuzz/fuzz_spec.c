/* fuzz_spec.c - libFuzzer harness: any bytes as a .dldl spec, through the
 * whole compiler pipeline that dldlc runs (compiler/compile.h): dl_parse,
 * lowering, autodiff, fusion, memory plan, code generation and plan_build,
 * stopping short of writing a file (--emit=plan, printed to /dev/null).
 * The spec must never crash the compiler, hang it or leak; errors are fine,
 * but an "internal" error (a compiler bug reached from user input) aborts the
 * run like a crash, with the diagnostics printed, unless
 * DLDL_FUZZ_ALLOW_INTERNAL is set.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compiler/compile.h"
#include "fuzz_io.h"

static FILE *devnull;
static int allow_internal;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    devnull = fopen("/dev/null", "w");
    if (!devnull) { perror("fuzz_spec: /dev/null"); abort(); }
    allow_internal = getenv("DLDL_FUZZ_ALLOW_INTERNAL") != NULL;
    return 0;
}

/* Whether diags holds a message "PATH[:L:C]: error: internal..." (a message
 * line, not the source line echoed under it, which the fuzzer may fill with
 * the same words). */
static int has_internal_error(const char *diags, const char *path)
{
    size_t pn = strlen(path);
    for (const char *l = diags; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, path, pn) != 0) continue;
        const char *q = l + pn;
        for (int f = 0; f < 2 && *q == ':' && q[1] >= '0' && q[1] <= '9'; f++)
            for (q++; *q >= '0' && *q <= '9'; q++) {}
        if (strncmp(q, ": error: internal", 17) == 0) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    CompileOptions o = {.spec = fuzz_bytes_path(data, size), .output = NULL, .emit = EMIT_PLAN};
    char *diags = NULL;
    size_t n = 0;
    FILE *err = open_memstream(&diags, &n);
    if (!err) abort();
    compile_run(&o, devnull, err);
    fclose(err);
    if (!allow_internal && has_internal_error(diags, o.spec)) {
        fprintf(stderr, "fuzz_spec: the compiler reported an internal error:\n%s", diags);
        abort();
    }
    free(diags);
    return 0;
}
