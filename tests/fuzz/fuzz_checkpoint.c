/* fuzz_checkpoint.c - libFuzzer harness: any bytes as a safetensors weights
 * file or checkpoint, loaded by dl_load_weights, dl_load_checkpoint and
 * dl_init_from_weights (runtime/checkpoint.h) against the tensor table of the
 * real age plan.
 *
 * The plan is read once, at start-up, from $DLDL_FUZZ_PLAN (default
 * build/fuzz/age.plan, which `make fuzz` writes with ./dldlc specs/age.dldl).
 * Only the arenas a load may touch (param, opt, state) are allocated; a
 * refused load must leave them untouched, which is checked on canary values. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "common/plan.h"
#include "fuzz_io.h"
#include "runtime/checkpoint.h"

static DlPlan *plan;
static float *arena[DL_AR_COUNT];
#define CANARY 12345.0f

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *path = getenv("DLDL_FUZZ_PLAN");
    if (!path) path = "build/fuzz/age.plan";
    char *err = NULL;
    plan = dl_plan_read(path, &err);
    if (!plan) {
        fprintf(stderr, "fuzz_checkpoint: %s (set DLDL_FUZZ_PLAN or run `make fuzz`)\n", err);
        exit(1);
    }
    const int used[] = {DL_AR_PARAM, DL_AR_OPT, DL_AR_STATE};
    for (int i = 0; i < 3; i++) {
        int64_t n = plan->arena_size[used[i]];
        arena[used[i]] = malloc((size_t)(n ? n : 1) * sizeof(float));
        if (!arena[used[i]]) abort();
        for (int64_t k = 0; k < n; k++) arena[used[i]][k] = CANARY;
    }
    return 0;
}

/* A refused load writes nothing: the canaries are still there (every 61st
 * float and the last of each arena, to keep the harness fast). */
static void check_untouched(void)
{
    const int used[] = {DL_AR_PARAM, DL_AR_OPT, DL_AR_STATE};
    for (int i = 0; i < 3; i++)
        for (int64_t n = plan->arena_size[used[i]], k = n ? (n - 1) % 61 : 0; k < n; k += 61)
            if (arena[used[i]][k] != CANARY) {
                fprintf(stderr, "fuzz_checkpoint: a refused load wrote into arena %d at %lld\n", used[i],
                        (long long)k);
                abort();
            }
}

/* Put the canaries back after a load that succeeded. */
static void reset(void)
{
    const int used[] = {DL_AR_PARAM, DL_AR_OPT, DL_AR_STATE};
    for (int i = 0; i < 3; i++)
        for (int64_t k = 0; k < plan->arena_size[used[i]]; k++) arena[used[i]][k] = CANARY;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_bytes_path(data, size);
    char *err = NULL;
    if (dl_load_weights(path, plan, arena, &err) == 0) reset();
    else check_untouched();
    free(err);
    err = NULL;
    DlTrainPos pos = {0};
    if (dl_load_checkpoint(path, plan, arena, &pos, &err) == 0) reset();
    else check_untouched();
    free(err);
    err = NULL;
    DlInitReport rep;
    if (dl_init_from_weights(path, plan, arena, &rep, &err) == 0) reset();
    else check_untouched();
    dl_init_report_free(&rep);
    free(err);
    return 0;
}
