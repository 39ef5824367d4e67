/* plan.h - the .plan file: everything dldlc decided, everything dldlrun needs.
 *
 * The compiler fills a DlPlan and writes it with dl_plan_write; the runtime
 * reads it with dl_plan_read and never sees the front end or the compiler.
 * On disk (docs/plan-format.md): the magic "DLDLPLAN", a format version, the
 * payload length and its XXH3-64 checksum, then the payload.  A plan whose
 * magic, version or checksum is wrong is refused with a one-line reason and a
 * hint to re-run dldlc.
 *
 * Storage model: every tensor lives at a fixed (arena, offset) decided at
 * compile time; the runtime allocates each arena once.  A program is a flat
 * list of steps (a generated kernel or a library call) over tensor indices.
 */
#ifndef DL_PLAN_H
#define DL_PLAN_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define DL_PLAN_MAGIC "DLDLPLAN"
#define DL_PLAN_VERSION 4

/* Arenas (common/plan_enums.def; compiler/graph.h's GArena has the same order). */
enum {
#define DL_ARENA(e, n) DL_AR_##e,
#include "plan_enums.def"
#undef DL_ARENA
    DL_AR_COUNT
};

/* The enumerations of the plan (common/plan_enums.def): DL_ROLE_*, DL_TGT_*,
 * DL_MET_*, DL_OUT_*, each with a _COUNT and a name table (dl_*_name). */
typedef enum DlRole {
#define DL_ROLE(e, n) DL_ROLE_##e,
#include "plan_enums.def"
#undef DL_ROLE
    DL_ROLE_COUNT
} DlRole;
typedef enum DlTargetKind {
#define DL_TARGET(e, n) DL_TGT_##e,
#include "plan_enums.def"
#undef DL_TARGET
    DL_TGT_COUNT
} DlTargetKind;
typedef enum DlMetricKind {
#define DL_METRIC(e, n) DL_MET_##e,
#include "plan_enums.def"
#undef DL_METRIC
    DL_MET_COUNT
} DlMetricKind;
typedef enum DlOutputKind {
#define DL_OUTPUT(e, n) DL_OUT_##e,
#include "plan_enums.def"
#undef DL_OUTPUT
    DL_OUT_COUNT
} DlOutputKind;
extern const char *const dl_arena_name[DL_AR_COUNT];
extern const char *const dl_role_name[DL_ROLE_COUNT];
extern const char *const dl_target_kind_name[DL_TGT_COUNT];
extern const char *const dl_metric_kind_name[DL_MET_COUNT];
extern const char *const dl_output_kind_name[DL_OUT_COUNT];
/* The kind whose name is s, or -1. */
int dl_enum_lookup(const char *const *names, int n, const char *s);

#define DL_MAX_AXES 4
#define DL_PLAN_MAX_BINS 1000000  /* bins of one target or head */
#define DL_PLAN_MAX_TARGETS 64    /* targets, heads */
#define DL_PLAN_MAX_MAP 4096      /* side of a label map (LABEL_MAP target) */
#define DL_PLAN_MAX_ROWS (1 << 24) /* rows per sample of a head or target (pixels) */
typedef struct DlPlanTensor {
    char *name;       /* PARAM/STATE: the saved name, e.g. "c1.conv.weight" */
    int role;         /* DlRole */
    int arena;        /* DL_AR_* */
    int64_t offset;   /* floats from the arena start */
    int64_t numel;
    int ndim;
    int64_t shape[4];
    int init;         /* PARAM: DlInitKind */
    int fan_in;       /* PARAM */
    int ref;          /* TARGET: index into DlPlan.targets; else -1 */
    int ncols;        /* LABEL: the label columns gathered into [B,ncols] */
    int cols[DL_MAX_AXES];
    float *data;      /* CONST: numel floats; else NULL */
} DlPlanTensor;

/* Program steps and parameter initialisations (common/plan_enums.def). */
typedef enum DlStepKind {
#define DL_STEP(e, n) DL_STEP_##e,
#include "plan_enums.def"
#undef DL_STEP
    DL_STEP_COUNT
} DlStepKind;
typedef enum DlInitKind {
#define DL_INIT(e, n) DL_INIT_##e,
#include "plan_enums.def"
#undef DL_INIT
    DL_INIT_COUNT
} DlInitKind;

#define DL_STEP_MAX_ARGS 16
#define DL_STEP_MAX_I 12
#define DL_COMM_SLOTS 64   /* ALLREDUCE_START/WAIT request slots of a program (gradient buckets, BN sums) */
#define DL_MAX_RANKS 1024  /* dldlc --ranks: the most processes a train@N program is compiled for */
typedef struct DlPlanStep {
    int kind;                     /* DlStepKind */
    int kernel;                   /* DL_STEP_KERNEL: index into DlPlan.kernels */
    int64_t grid;                 /* DL_STEP_KERNEL: work items, split across threads / CUDA blocks */
    int nargs;
    int32_t args[DL_STEP_MAX_ARGS];   /* tensor indices, in the kernel's buffer order */
    int64_t i[DL_STEP_MAX_I];         /* library call geometry */
    char *label;                  /* e.g. "c1.conv" (for --profile and error messages) */
} DlPlanStep;

typedef struct DlPlanProgram {
    char *name;                   /* "train" (forward, backward, update) or "eval" (inference) */
    DlPlanStep *steps;
    int nsteps;
    int batch;                    /* B of this program's inputs */
} DlPlanProgram;

/* A generated kernel, carried as its kernel IR (codegen/kir.h), never as C:
 * the runtime decodes it, proves every access inside its buffers and renders
 * the C or CUDA itself (codegen/kir_plan.h; docs/plan-format.md). */
#define DL_PLAN_MAX_KIR (64u << 20)  /* bytes of one kernel's IR */
typedef struct DlPlanKernel {
    char *name;                   /* a C identifier: the symbol in the rendered module */
    int nargs;                    /* buffers it takes: dl_b[0..nargs) */
    uint8_t *kir;                 /* kir_encode bytes */
    size_t kir_len;
    uint8_t *kir_gpu;             /* kir_encode bytes of its GPU schedule (the CUDA module
                                     renders it instead), or NULL with kir_gpu_len 0 */
    size_t kir_gpu_len;
} DlPlanKernel;

/* A network head: one softmax over K bins, named in the spec (`return
 * heads(age = softmax(a), ...)`; a single `return softmax(z)` is the head
 * named after the network). */
typedef struct DlPlanHead {
    char *name;
    int64_t K;
    int64_t rows;     /* rows of K per sample: 1, or H*W for a per-pixel head (a softmax over the
                         class axis of [B,K,H,W], laid out as [B*H*W, K] rows, pixel-major) */
} DlPlanHead;

/* An output the runtime reads after running `program`.  PROBS: [B,K] of
 * `head`; EXPECT: [B,A] of `head` over the bin values of `target`; LOSS and
 * LOSS_TERM: [1] (head and target -1). */
typedef struct DlPlanOutput { int program; int kind; char *name; int tensor; int head; int target; } DlPlanOutput;

typedef struct DlKV { char *key, *val; } DlKV;

/* A label-distribution target, built per sample by the runtime
 * (runtime/target.c).  Labels are the plan's label columns (nlabels of them,
 * named by the data binding's label.N keys); each sample has one float each.
 *   GAUSSIAN1D/2D  Gao et al., TIP 2017, Sec. III: the Gaussian of each axis
 *                  evaluated at the bins, normalised to sum 1 over the grid;
 *   ONEHOT         all mass on the bin nearest the label (ignore: a label
 *                  equal to it gives an all-zero row, no loss);
 *   GIVEN          the row of distribution field `dist` (data binding
 *                  dist.N), renormalised when loaded;
 *   MULTILABEL     from field `dist`'s row of class presence (VOC: 1 present,
 *                  0 only 'difficult' objects, -1 absent): y_c proportional
 *                  to 1, `difficult` and 0, normalised (Gao et al., TIP
 *                  2017, Sec. IV-C: a distribution over the image's classes).
 *   LABEL_MAP      per pixel of the sample's (augmented) label map `dist`
 *                  (class indices 0..K-1, 255 void): the classes of the
 *                  pixels within a Gaussian window of sigma pixels
 *                  (axis 0's sigma) voting with weight exp(-d^2/(2 sigma^2)),
 *                  normalised; void pixels vote for nothing and get an
 *                  all-zero row (no loss, no metric); sigma 0 is one-hot.
 * Bins are row-major over the axes, first axis slowest; K = prod nbins. */
typedef struct DlPlanAxis {
    char *name;       /* the label it reads ("age", "pitch"), or the target's name (GIVEN) */
    char *unit;       /* "years", "degrees", "" */
    int nbins;
    float *bins;      /* nbins label values, ascending */
    float sigma;      /* same unit as the label; used when sigma_label < 0 */
    int label;        /* label column of the value; -1 for GIVEN */
    int sigma_label;  /* label column holding a per-sample sigma, or -1 */
} DlPlanAxis;
typedef struct DlPlanTarget {
    char *name;       /* as in the spec: "dist" */
    int kind;         /* DlTargetKind */
    int naxes;
    DlPlanAxis axes[DL_MAX_AXES];
    int dist;         /* GIVEN: distribution field index; else -1 */
    int has_ignore;   /* ONEHOT: a label equal to `ignore` carries no mass */
    float ignore;
    int clamp;        /* GAUSSIAN*, ONEHOT: a label outside [bins[0], bins[nbins-1]] is clamped
                         to it; else its sample is bad (runtime/target.c dl_target_check) */
    float difficult;  /* MULTILABEL: the weight of a class present only as difficult objects, in [0, 1] */
    int map_h, map_w; /* LABEL_MAP: the label map's size (the input's H x W); the target is
                         [B*map_h*map_w, K] rows, pixel-major; 0 x 0 for the other kinds */
} DlPlanTarget;

/* A metric, computed by the runtime from the eval program's outputs.
 *   MAE, EPS_ERROR  the EXPECT output of (head, target) against label cols[]
 *   ACCURACY        the arg-max bin of each axis's marginal of head against the
 *                   target's axis labels (within tolerance; 0 = exact bin)
 *   TOP1            arg-max bin index of head == label cols[0] (a class)
 *   the LDL six     PROBS of head against target's distribution per sample
 *   MEAN_AP         PROBS of head as scores against the MULTILABEL target's
 *                   class presence, over the whole pass (runtime/seg_metrics.c) */
typedef struct DlPlanMetric {
    char *name;       /* as in the spec: "mae", "cheb" */
    int kind;         /* DlMetricKind */
    int head, target; /* indices; target -1 when unused (TOP1) */
    int ncols;        /* label columns it reads */
    int cols[DL_MAX_AXES];
    float tolerance;  /* ACCURACY */
    float sigma;      /* EPS_ERROR: fixed sigma when sigma_col < 0 */
    int sigma_col;    /* EPS_ERROR: label column of a per-sample sigma, or -1 */
} DlPlanMetric;

typedef struct DlPlan {
    int version;
    char *source_name;            /* the .dldl it came from */
    DlKV *hyper;  int nhyper;     /* lr, momentum, weight_decay, schedule, max_lr, epochs, batch, seed, ... */
    DlKV *data;   int ndata;      /* the data binding (docs/plan-format.md lists the keys) */
    int nlabels;                  /* raw label columns, names in data "label.N" */
    DlPlanTarget *targets; int ntargets;
    DlPlanHead *heads; int nheads;
    DlPlanMetric *metrics; int nmetrics;
    int64_t arena_size[DL_AR_COUNT];  /* floats */
    DlPlanTensor *tensors; int ntensors;
    DlPlanKernel *kernels; int nkernels;
    DlPlanProgram *programs; int nprograms;
    DlPlanOutput *outputs; int noutputs;
} DlPlan;

/* Serialise plan to path atomically (common/util.h dl_write_file_atomic).
 * Returns 0, or -1 with a message in *err (malloc'd). */
int dl_plan_write(const DlPlan *plan, const char *path, char **err);
/* Read and verify (magic, version, checksum, every index in range).
 * Returns a malloc'd plan or NULL with *err, e.g.
 *   "age.plan: checksum mismatch (file damaged?); re-run dldlc to regenerate it" */
DlPlan *dl_plan_read(const char *path, char **err);
void dl_plan_free(DlPlan *plan);
/* Lookups; NULL / def when absent. */
const char *dl_plan_kv(const DlKV *kv, int n, const char *key);
double dl_plan_hyper_num(const DlPlan *p, const char *key, double def);
int dl_plan_find_program(const DlPlan *p, const char *name);  /* -1 if none */
/* Rows of K per sample of target t: map_h * map_w for a LABEL_MAP, else 1. */
int64_t dl_plan_target_rows(const DlPlanTarget *t);
/* Human-readable dump of everything but the kernel sources (--emit=plan). */
void dl_plan_dump(const DlPlan *p, FILE *out);

#endif
