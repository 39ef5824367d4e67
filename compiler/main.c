/* main.c - dldlc, the dldl compiler driver.
 *
 *   dldlc SPEC.dldl [-o OUT.plan] [--emit=STAGE] [--arch=compute_80] [-D NAME=VALUE]... [--ranks=N,...]
 *
 * -D sets a value of the spec's params { } block (a number when it reads as
 * one, else a string), so one spec serves several data files.
 *
 * --ranks=2,4 adds, per N, a program "train@N" for N data-parallel processes
 * (mpirun -np N dldlrun PLAN --train; docs/parallel.md); N must divide the
 * spec's batch.
 *
 * STAGE: ast graph grad fused mem kir c cuda ptx plan (compile.h).  At least
 * one of -o and --emit is required.  Exit status: 0 success, 1 errors in the
 * spec (diagnostics printed) or I/O errors, 2 usage errors.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compile.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: dldlc SPEC.dldl [-o OUT.plan] [--emit=%s] [--arch=compute_80]\n"
               "             [-D NAME=VALUE]...   (set a value of the spec's params { } block)\n"
               "             [--ranks=N,...]      (train@N programs for N MPI processes, docs/parallel.md)\n",
            compile_emit_names);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "dldlc: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, " (usage: dldlc SPEC.dldl [-o OUT.plan] [--emit=STAGE] [--arch=ARCH])\n");
    return 2;
}

/* The driver; defs has room for argc -D values. */
#define MAX_RANK_LIST 17 /* one more than compile_run takes, so that it says how many it takes */

static int dldlc(int argc, char **argv, const char **defs)
{
    CompileOptions o = {0};
    int ranks[MAX_RANK_LIST];
    o.defines = defs;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "-o")) {
            if (i + 1 >= argc) return usage_error("option '%s' needs a file name", a);
            o.output = argv[++i];
        } else if (!strncmp(a, "--emit=", 7)) {
            int e = compile_emit_parse(a + 7);
            if (e < 0) {
                fprintf(stderr, "dldlc: unknown stage '%s' in --emit (one of %s)\n", a + 7,
                        compile_emit_names);
                return 2;
            }
            o.emit = (CompileEmit)e;
        } else if (!strncmp(a, "--ranks=", 8)) {
            const char *q = a + 8;
            while (o.nranks < MAX_RANK_LIST) {
                char *end;
                long n = strtol(q, &end, 10);
                if (end == q || n < 2 || n > 1 << 20 || (*end && *end != ','))
                    return usage_error("--ranks wants process counts >= 2 separated by commas, e.g. --ranks=2,4; "
                                       "got '%s'", a + 8);
                ranks[o.nranks++] = (int)n;
                if (!*end) break;
                q = end + 1;
            }
            o.ranks = ranks;
        } else if (!strncmp(a, "--arch=", 7) && a[7]) {
            o.arch = a + 7;
        } else if (!strncmp(a, "-D", 2)) {
            const char *d = a[2] ? a + 2 : i + 1 < argc ? argv[++i] : NULL;
            const char *eq = d ? strchr(d, '=') : NULL;
            if (!d || !eq || eq == d) return usage_error("-D wants NAME=VALUE, got '%s'", d ? d : "");
            defs[o.ndefines++] = d;
        } else if (a[0] == '-' && a[1]) {
            return usage_error("unknown option '%s'", a);
        } else if (o.spec) {
            return usage_error("more than one spec ('%s')", a);
        } else {
            o.spec = a;
        }
    }
    if (!o.spec) return usage_error("no spec given%s", "");
    if (!o.output && o.emit == EMIT_NONE) return usage_error("nothing to do: give -o OUT.plan or --emit=STAGE%s", "");
    return compile_run(&o, stdout, stderr);
}

int main(int argc, char **argv)
{
    const char **defs = calloc((size_t)argc, sizeof *defs);
    if (!defs) { fprintf(stderr, "dldlc: out of memory\n"); return 1; }
    int rc = dldlc(argc, argv, defs);
    free(defs); /* freed on every path, usage errors too, so LeakSanitizer stays quiet */
    return rc;
}
