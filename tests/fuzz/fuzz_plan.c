/* fuzz_plan.c - libFuzzer harness: any bytes as a .plan file, read by
 * dl_plan_read (common/plan.h) and freed.  Most mutations stop at the
 * checksum; fuzz_plan_payload.c gets past it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/plan.h"
#include "fuzz_io.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *err = NULL;
    DlPlan *p = dl_plan_read(fuzz_bytes_path(data, size), &err);
    dl_plan_free(p);
    free(err);
    return 0;
}
