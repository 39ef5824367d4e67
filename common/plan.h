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
#define DL_PLAN_VERSION 1

/* Arenas, as compiler/graph.h's GArena (same numbering). */
enum { DL_AR_ACT, DL_AR_PARAM, DL_AR_GRAD, DL_AR_OPT, DL_AR_STATE, DL_AR_INPUT, DL_AR_CONST, DL_AR_COUNT };

/* What a tensor is, for the runtime (saving, initialising, feeding). */
typedef enum DlRole {
    DL_ROLE_TEMP,    /* activation / temporary */
    DL_ROLE_PARAM,   /* trainable: saved; initialised by init/fan_in */
    DL_ROLE_GRAD,
    DL_ROLE_MOMENTUM,/* optimizer state: saved in the checkpoint */
    DL_ROLE_STATE,   /* batch norm running stats [2,C]: saved; initialised mean 0, var 1 */
    DL_ROLE_IMAGE,   /* input [B,C,H,W] */
    DL_ROLE_TARGET,  /* input [B,K] label distribution */
    DL_ROLE_LABEL,   /* input [B,A] raw labels (years, degrees) */
    DL_ROLE_SCALARS, /* input [4]: lr, momentum, step, seed (written before every step) */
    DL_ROLE_CONST,   /* data in DlPlan.consts */
} DlRole;

typedef struct DlPlanTensor {
    char *name;       /* PARAM/STATE: the saved name, e.g. "c1.conv.weight" */
    int role;         /* DlRole */
    int arena;        /* DL_AR_* */
    int64_t offset;   /* floats from the arena start */
    int64_t numel;
    int ndim;
    int64_t shape[4];
    int init;         /* PARAM: GInitKind numbering (0 zeros, 1 ones, 2 kaiming uniform, 3 bias uniform) */
    int fan_in;       /* PARAM */
    float *data;      /* CONST: numel floats; else NULL */
} DlPlanTensor;

typedef enum DlStepKind {
    DL_STEP_KERNEL,      /* generated kernel: kernel index, grid = work items */
    DL_STEP_CONV_FWD,    /* args: x, w, y; i: B,C,H,W, O,kh,kw, stride,pad, OH,OW */
    DL_STEP_CONV_BWD_DATA,   /* args: dy, w, dx; i: as CONV_FWD */
    DL_STEP_CONV_BWD_FILTER, /* args: x, dy, dw; i: as CONV_FWD */
    DL_STEP_MATMUL,      /* args: a, b, y; i: M, N, K, ta, tb  (row-major, y = op(a) op(b)) */
} DlStepKind;

#define DL_STEP_MAX_ARGS 16
#define DL_STEP_MAX_I 12
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

typedef struct DlPlanKernel {
    char *name;                   /* the symbol in both sources */
    int nargs;                    /* buffers it takes: dl_b[0..nargs) */
} DlPlanKernel;

/* An output the runtime reads: kind as compiler GOutKind (0 loss, 1 loss term,
 * 2 probs [B,K], 3 expectation [B,A]). */
typedef struct DlPlanOutput { int program; int kind; char *name; int tensor; } DlPlanOutput;

typedef struct DlKV { char *key, *val; } DlKV;

/* The label-distribution target, built per sample by the runtime
 * (runtime/target.c). Gao et al. TIP 2017, Sec. III: evaluate the Gaussian at
 * the bins, normalise to sum 1. */
#define DL_MAX_AXES 4
typedef struct DlPlanAxis {
    char *name;       /* the label it reads, e.g. "age", "pitch" */
    char *unit;       /* "years", "degrees", "" */
    int nbins;
    float *bins;      /* nbins label values, ascending */
    float sigma;      /* same unit as the label */
    int label;        /* index of the label column in the [B,A] label input */
} DlPlanAxis;
typedef struct DlPlanTarget {
    char *kind;       /* "gaussian1d" | "gaussian2d" | "onehot" */
    int naxes;        /* K = product of nbins; bins are row-major, first axis slowest */
    DlPlanAxis axes[DL_MAX_AXES];
} DlPlanTarget;

/* A metric, computed by the runtime from the eval program's outputs. */
typedef struct DlPlanMetric {
    char *name;       /* as in the spec: "mae", "accuracy", "within15" */
    char *kind;       /* "mae" (of the expectation, per axis) | "accuracy" (arg-max bin of each axis's marginal, per axis and joint) */
    float tolerance;  /* accuracy: |predicted bin value - true label| <= tolerance counts; 0 = exact bin */
} DlPlanMetric;

typedef struct DlPlan {
    int version;
    char *source_name;            /* the .dldl it came from */
    DlKV *hyper;  int nhyper;     /* lr, momentum, weight_decay, schedule, max_lr, epochs, batch, seed, ... */
    DlKV *data;   int ndata;      /* the data binding (docs/plan-format.md lists the keys) */
    int nlabels;                  /* A: raw label columns, names in data "label.N" */
    DlPlanTarget target;
    DlPlanMetric *metrics; int nmetrics;
    int64_t arena_size[DL_AR_COUNT];  /* floats */
    DlPlanTensor *tensors; int ntensors;
    DlPlanKernel *kernels; int nkernels;
    char *c_source;               /* all generated kernels as one C translation unit */
    char *cuda_source;            /* the same kernels as CUDA C (extern "C" __global__) */
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
/* Human-readable dump of everything but the kernel sources (--emit=plan). */
void dl_plan_dump(const DlPlan *p, FILE *out);

#endif
