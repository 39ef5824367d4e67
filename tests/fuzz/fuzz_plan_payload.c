/* fuzz_plan_payload.c - libFuzzer harness: any bytes as the payload of a
 * .plan file.  The harness prepends a valid 32-byte header (docs/plan-format.md:
 * magic "DLDLPLAN", version, flags 0, payload length, XXH3-64 of the payload),
 * so every input reaches the section parser and the index checks of
 * dl_plan_read.  A plan that reads is also dumped (--emit=plan's text) to
 * /dev/null, which walks every field the reader accepted.
 *
 * The checksum is recomputed for every input: a mutated plan gets past it to
 * the decoder and the verifier, as a plan edited and re-hashed on purpose
 * would (issue 13, plans as untrusted input).  Seeds: the payloads of a plan
 * of every spec (tests/fuzz/run.sh).
 * fuzz_plan_run.c goes further with the same resealed payloads: kernel
 * checks, rendering, and every program run by the checking interpreter. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/plan.h"
#include "common/util.h"
#include "fuzz_io.h"

static FILE *devnull;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    devnull = fopen("/dev/null", "w");
    if (!devnull) { perror("fuzz_plan_payload: /dev/null"); abort(); }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_plan_path(data, size);
    char *err = NULL;
    DlPlan *p = dl_plan_read(path, &err);
    if (p) dl_plan_dump(p, devnull);
    dl_plan_free(p);
    free(err);
    return 0;
}
