/* fuzz_plan_run.c - libFuzzer harness: any bytes as a plan's payload, resealed
 * with a valid header and checksum (as fuzz_plan_payload), then everything
 * dldlrun does with a plan before and while it runs kernels: dl_plan_read's
 * checks, kir_module_load (decode, prove, bind every kernel step), the module
 * rendered as C and CUDA, and then every program run step by step with its
 * kernels executed by the checking interpreter (tests/ref/kir_interp.c) on
 * the plan's own arenas.
 *
 * The oracle: a kernel the prover accepted must never make the interpreter
 * report an access outside the buffer the proof assumed, an i64 overflow or a
 * division by zero; if it does, the harness aborts (a prover bug, or a binding
 * check that let a step through).  Library steps (oneDNN convolutions, BLAS
 * products) are skipped: their geometry is checked by runtime/exec.c against
 * the tensor table, and the libraries are not what this harness tests.
 * Arenas larger than 64 MiB in all and work beyond 2 million interpreted
 * statements per input are skipped, to keep each input fast.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/kir_plan.h"
#include "common/plan.h"
#include "common/util.h"
#include "fuzz_io.h"

#include "../ref/kir_interp.c"

#define MAX_ARENA_FLOATS (16 << 20)
#define MAX_STATEMENTS 2000000

static void run_plan(const DlPlan *p, const KirModule *m)
{
    int64_t total = 0;
    for (int a = 0; a < DL_AR_COUNT; a++) total += p->arena_size[a];
    if (total > MAX_ARENA_FLOATS) return;
    float *arena[DL_AR_COUNT];
    for (int a = 0; a < DL_AR_COUNT; a++) arena[a] = calloc((size_t)p->arena_size[a] + 1, sizeof(float));
    for (int t = 0; t < p->ntensors; t++) {
        const DlPlanTensor *x = &p->tensors[t];
        if (x->data) memcpy(arena[x->arena] + x->offset, x->data, (size_t)x->numel * sizeof(float));
    }
    int64_t budget = MAX_STATEMENTS;
    for (int g = 0; g < p->nprograms && budget > 0; g++)
        for (int si = 0; si < p->programs[g].nsteps && budget > 0; si++) {
            const DlPlanStep *s = &p->programs[g].steps[si];
            if (s->kind != DL_STEP_KERNEL) continue;
            const KirKernel *k = &m->k[s->kernel];
            float *b[DL_STEP_MAX_ARGS];
            int64_t n[DL_STEP_MAX_ARGS];
            for (int i = 0; i < s->nargs; i++) {
                const DlPlanTensor *x = &p->tensors[s->args[i]];
                b[i] = arena[x->arena] + x->offset;
                n[i] = k->bufs[i].numel; /* what the proof assumed: at most the tensor's numel */
            }
            char why[300];
            if (kir_interp(k, s->grid, b, n, &budget, why) < 0) {
                fprintf(stderr, "fuzz_plan_run: program '%s' step %d, kernel '%s' (proven): %s\n",
                        p->programs[g].name, si, k->name, why);
                abort();
            }
            /* its GPU schedule, proven for the same buffers */
            if (k->gpu && kir_interp(k->gpu, s->grid, b, n, &budget, why) < 0) {
                fprintf(stderr, "fuzz_plan_run: program '%s' step %d, kernel '%s' GPU schedule (proven): %s\n",
                        p->programs[g].name, si, k->name, why);
                abort();
            }
        }
    for (int a = 0; a < DL_AR_COUNT; a++) free(arena[a]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_plan_path(data, size);
    char *err = NULL;
    DlPlan *p = dl_plan_read(path, &err);
    free(err), err = NULL;
    if (!p) return 0;
    KirModule m;
    if (kir_module_load(p, &m, &err) == 0) {
        char *c = kir_module_source(&m, 0), *cu = kir_module_source(&m, 1);
        free(c), free(cu);
        run_plan(p, &m);
        kir_module_free(&m);
    }
    free(err);
    dl_plan_free(p);
    return 0;
}
