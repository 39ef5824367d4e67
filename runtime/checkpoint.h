/* checkpoint.h - the runtime's saved state, as safetensors files.
 *
 * Two kinds of file, both safetensors (an 8-byte little-endian header size N,
 * N bytes of JSON padded with spaces to a multiple of 8, then the raw
 * little-endian tensor data, contiguous, in header order), so that PyTorch
 * users can open them with `safetensors.torch.load_file`:
 *
 *  - weights (dl_save_weights, read by --eval, --predict and, matched by
 *    name, --train --weights for fine-tuning): every DL_ROLE_PARAM tensor
 *    under its plan name ("c1.conv.weight") as F32 with its plan shape, and
 *    every batch norm state tensor "X.running" [2,C] split into
 *    "X.running_mean" [C] and "X.running_var" [C] (PyTorch's names).  Other
 *    state tensors are saved whole under their own name.
 *    __metadata__: "format" = "pt", "producer" = "dldl", "source" (the .dldl),
 *    "epoch", plus the caller's pairs (e.g. "test.mae" = "6.21").
 *  - checkpoints (--save-checkpoint / --resume): the weights, plus each
 *    DL_ROLE_MOMENTUM tensor (optimizer state) as "optimizer.<param>.<state>":
 *    the parameter at the same offset modulo the parameter arena's size (the
 *    optimizer arena holds one copy of the parameter layout per state), the
 *    state from the tensor's name "<param>.<state>" ("momentum" for SGD,
 *    "exp_avg" and "exp_avg_sq" for Adam, PyTorch's names; "momentum" when
 *    the name is not of that form), plus
 *    the training position in __metadata__: "epoch", "step", "seed" and
 *    "plan_checksum" (dl_plan_state_hash, 16 hex digits).  All randomness is a
 *    pure function of (seed, epoch, sample, purpose) (runtime/data.h), so
 *    epoch, step and seed are the whole random-number state.
 *
 * Every save is atomic (dl_write_file_atomic): a crash leaves either the old
 * file or the new one, never a partial file over a good one.  Every load
 * checks the whole file (header size, JSON, dtypes, shapes, that data_offsets
 * tile the data exactly) and every tensor it needs (presence, dtype F32,
 * shape) before it writes anything into the arenas: a refused load leaves the
 * arenas untouched.  Errors are one line in *err (malloc'd), naming the file
 * and, for a mismatch, the first tensor by name.
 *
 * arena[DL_AR_*] are the runtime's arenas (floats, plan.h storage model); only
 * the arenas holding saved tensors are touched (PARAM, STATE, OPT).
 */
#ifndef DL_CHECKPOINT_H
#define DL_CHECKPOINT_H

#include <stdint.h>
#include "../common/plan.h"

/* Bounds on the training position.  --epochs and the plan's epochs are at
 * most DL_MAX_EPOCHS; a step count stays below DL_MAX_STEP = 2^53, where a
 * double (the schedules compute with doubles) still holds every integer, and
 * DL_MAX_EPOCHS epochs of 2^31 batches stay below it.  dl_load_checkpoint
 * refuses a checkpoint whose "epoch" or "step" lies beyond them, so that the
 * counters of a checkpoint from someone else can never overflow. */
#define DL_MAX_EPOCHS 1000000
#define DL_MAX_STEP ((int64_t)1 << 53)

/* Where training stands. */
typedef struct DlTrainPos {
    int epoch;        /* epochs completed */
    int64_t step;     /* optimizer steps taken since training began */
    uint64_t seed;    /* the run's seed (hyperparameter "seed" unless overridden) */
} DlTrainPos;

/* Save parameters and batch norm running statistics to a safetensors file.
 * epoch: epochs completed (stored as metadata "epoch"); meta[0..nmeta):
 * extra string pairs for __metadata__, e.g. the test metrics.
 * Returns 0, or -1 with *err. */
int dl_save_weights(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], int epoch,
                    const DlKV *meta, int nmeta, char **err);

/* Load parameters and batch norm state (for --predict) from a weights file
 * or a checkpoint; tensors the plan does not need are ignored.
 * Returns 0, or -1 with *err ("w.safetensors: tensor 'fc.weight' has shape
 * [10,128] in the file, [117,128] in the plan"). */
int dl_load_weights(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], char **err);

/* What dl_init_from_weights did, by safetensors name (the file's names:
 * "c1.z.running_mean", not the plan's "c1.z.running").  Every array is
 * malloc'd, in plan order (loaded, kept) or file order (ignored); free with
 * dl_init_report_free. */
typedef struct DlInitReport {
    int nloaded, nkept, nignored;
    char **loaded;   /* copied from the file */
    char **kept;     /* absent from the file: left at their initialisation */
    char **ignored;  /* in the file, not in the plan (optimizer state excepted) */
    int noptimizer;  /* "optimizer.*" tensors of a checkpoint, ignored (momentum starts at 0) */
} DlInitReport;

/* Fine-tuning (dldlrun --train --weights FILE): initialise the plan's
 * parameters and batch norm state from a weights file or checkpoint, after
 * dl_exec_init_params.  Each saved tensor of the plan (the names and shapes
 * dl_save_weights writes) that the file holds under the same name is copied;
 * one the file lacks keeps its initialisation; file tensors the plan lacks
 * are ignored.  All are listed in *rep.  The file is read and checked as by
 * dl_load_weights.  Refused, with nothing written and *rep empty: a damaged
 * file, a tensor of the same name with another shape ("w.safetensors:
 * c1.y.weight: the file has [32, 3, 3, 3], the plan [64, 3, 3, 3]", naming
 * every such tensor) or dtype than F32, and a file sharing no tensor with the
 * plan.  Returns 0, or -1 with *err. */
int dl_init_from_weights(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT], DlInitReport *rep,
                         char **err);
/* "loaded 24 tensors from FILE; left at initialisation: fc.weight, fc.bias;
 * ignored from the file: old.head.weight" (malloc'd, no newline). */
char *dl_init_report_str(const DlInitReport *rep, const char *path);
void dl_init_report_free(DlInitReport *rep);

/* Save weights, batch norm state, momentum and the training position. */
int dl_save_checkpoint(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT],
                       const DlTrainPos *pos, char **err);

/* Restore what dl_save_checkpoint saved into the arenas and *pos.  A
 * checkpoint of another model (another set of saved tensors, see
 * dl_plan_state_hash) is refused with the first differing tensor or the two
 * checksums; so is one whose "epoch" is not a decimal in 0..DL_MAX_EPOCHS,
 * whose "step" is not one in 0..DL_MAX_STEP or is fewer than its epochs
 * (every epoch takes a step at least), or whose "seed" is not a decimal
 * uint64 ("c.safetensors: checkpoint metadata 'step' is
 * '9223372036854775807', not a step count in 0..9007199254740992").  The
 * caller checks the position against its run (train.c: step = epoch *
 * batches per epoch).  Returns 0, or -1 with *err and the arenas untouched. */
int dl_load_checkpoint(const char *path, const DlPlan *p, float *const arena[DL_AR_COUNT],
                       DlTrainPos *pos, char **err);

/* XXH3-64 of the plan's saved-tensor table (name, role, shape of every
 * PARAM, STATE and MOMENTUM tensor, in plan order): equal for two
 * compilations of the same model, whatever the kernels and memory plan. */
uint64_t dl_plan_state_hash(const DlPlan *p);

#endif
