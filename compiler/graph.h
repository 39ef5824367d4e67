/* graph.h - the op graph: the compiler's IR from lowering to memory planning,
 * and what codegen/ sees of the compiler.
 *
 * One node = one op with exactly one output tensor (float32, NCHW, up to 4
 * dims, static shape: the batch size is fixed at compile time).  Nodes live in
 * one array and refer to each other by index (uint32_t), never by pointer.
 * Node order is a topological order: inputs always have smaller indices.
 *
 * Pipeline (compiler/compile.c, one call per pass, verifier between passes):
 *   lower (AST -> forward graph, train and eval modes) -> graph_verify
 *   -> ad_differentiate (adds backward ops and the optimizer update) -> graph_verify
 *   -> fuse (GSchedule: groups in execution order)
 *   -> mem_plan (arena + offset for every node)
 *   -> codegen (one kernel per generated group) -> plan_build (common/plan.h)
 */
#ifndef DL_GRAPH_H
#define DL_GRAPH_H

#include <stdint.h>
#include "../common/diag.h"
#include "../common/util.h"
#include "names.h"

typedef enum GOpKind {
    OPK_SOURCE, OPK_VIEW, OPK_ELEM, OPK_CHANRED, OPK_ROW, OPK_WINDOW,
    OPK_BATCHRED, OPK_LIB, OPK_OPT,
} GOpKind;

typedef enum GOp {
#define OP(e, name, nin, kind) OP_##e,
#include "ops.def"
#undef OP
    OP_COUNT
} GOp;

extern const char *const graph_op_name[OP_COUNT];
extern const int graph_op_ninputs[OP_COUNT];
extern const GOpKind graph_op_kind[OP_COUNT];

#define G_MAX_IN 6
#define G_MAX_DIMS 4
#define G_NONE UINT32_MAX

/* Which storage a node's output lives in (mem_plan assigns offsets in it). */
/* The same order as the plan's arenas (common/plan_enums.def; plan_build.c asserts it). */
typedef enum GArena {
    AR_ACT,      /* activations and backward temporaries, reused by liveness */
    AR_PARAM,    /* trainable parameters, contiguous, in declaration order */
    AR_GRAD,     /* parameter gradients: same layout as AR_PARAM (ROADMAP 2) */
    AR_OPT,      /* optimizer state: one or two copies of AR_PARAM's layout (momentum; exp_avg, exp_avg_sq) */
    AR_STATE,    /* batch norm running statistics */
    AR_INPUT,    /* per-batch inputs written by the runtime (image, target, label, scalars) */
    AR_CONST,    /* constants stored in the plan */
    AR_COUNT
} GArena;

/* INPUT: the network's input (an image [B,C,H,W] or features [B,d]), a
 * target's distribution [B,K] (ref: the plan's target index) or labels
 * [B,ncols] (cols: the plan's label columns). */
typedef enum GInputKind { IN_IMAGE, IN_TARGET, IN_LABEL } GInputKind;
typedef enum GInitKind {
    INIT_ZEROS, INIT_ONES,
    INIT_KAIMING_UNIFORM, /* U(-b, b), b = 1/sqrt(fan_in): PyTorch's default for conv and linear weights (kaiming_uniform_, a=sqrt(5)) */
    INIT_BIAS_UNIFORM,    /* U(-b, b), b = 1/sqrt(fan_in): PyTorch's default for biases */
} GInitKind;

typedef union GAttr {
    struct { int kh, kw, stride, pad, dilate; } conv; /* CONV2D, CONV2D_BWD_*, CONV_TRANSPOSE2D; dilate: the
                                                     dilation minus 1 (oneDNN's convention, 0 = none), so a
                                                     kernel of k spans graph_conv_span(k, dilate) pixels */
    struct { int size, stride, pad; } pool;       /* MAXPOOL, AVGPOOL and their _BWD */
    struct { int ta, tb; } mm;                    /* MATMUL */
    struct { int fh, fw, bilinear; } up;          /* UPSAMPLE, UPSAMPLE_BWD: integer factors per axis, >= 1;
                                                     bilinear 0: nearest */
    struct { float eps, momentum; int64_t count; } bn; /* BN_*; count: 0, or the values the statistics are over in all
                                                     ranks together (synchronised batch norm, train@N programs) */
    struct { float p; uint32_t salt; } dropout;   /* DROPOUT, DROPOUT_BWD; salt: per layer, so two
                                                     layers of one shape draw different masks */
    struct { float wd; } sgd;                     /* SGD, SGD_NESTEROV (lr and momentum come from SCALARS: schedules) */
    struct { float wd; double beta2, eps; } adam; /* ADAM, ADAMW (lr and beta1 come from SCALARS); beta2 and eps
                                                     in double: 1 - beta2 and the bias correction 1 - beta2^t
                                                     are computed in double, as PyTorch does in Python */
    struct { int slot; } ostate;                  /* STATE with GNode.param set: which copy of the parameter
                                                     layout in AR_OPT it occupies (memplan.h); 0 momentum or
                                                     exp_avg, 1 exp_avg_sq */
    struct { int data_stats; } state;             /* STATE without GNode.param: 1 = input feature statistics
                                                     [2,d] (written by the runtime from the training split) */
    struct { GInputKind kind; int ref, ncols, cols[4]; } input; /* INPUT */
    struct { GInitKind kind; int fan_in; } init;  /* PARAM */
    struct { const float *data; } cst;            /* CONST: shape's element count floats (pool-owned) */
    float f;                                      /* SCALE, FILL */
    int i;                                        /* SELECT (row), SLICE (first channel) */
} GAttr;

typedef struct GNode {
    GOp op;
    int nin;
    uint32_t in[G_MAX_IN];
    int ndim;
    int64_t shape[G_MAX_DIMS];
    GAttr attr;
    const char *name;  /* e.g. "c1.y", "grad.c1.y.w": unique; for PARAM/STATE the saved tensor name */
    DlSrcLoc loc;      /* .dldl location this node came from (len 0 if none) */
    uint32_t param;    /* for nodes that are a parameter's gradient: the PARAM node; else G_NONE */
    uint32_t inplace;  /* optimizer updates, BN_RUNNING: the node whose storage this op overwrites; else G_NONE */
} GNode;

/* A named output that the runtime reads after a step. */
typedef enum GOutKind {
    GOUT_LOSS,         /* [1] total loss */
    GOUT_LOSS_TERM,    /* [1] one weighted term of the loss (name says which) */
    GOUT_PROBS,        /* [B,K] predicted distribution */
    GOUT_EXPECT,       /* [B,A] expectation per axis (years, degrees) */
} GOutKind;
typedef struct GOutput {
    GOutKind kind;
    const char *name;
    uint32_t node;
    int head, target;  /* PROBS: head; EXPECT: head and target (indices of the plan's); else -1 */
} GOutput;

typedef struct Graph {
    DlPool *pool;      /* owns everything below */
    GNode *nodes;
    uint32_t n, cap;
    NameMap names;     /* node name -> index (the last node of that name) */
    NameMap suffix;    /* base -> the next k graph_unique_name tries for it */
    GOutput *outs;
    int nouts, outcap;
    int batch;         /* B */
    int ranks;         /* train@N graphs: N, the processes sharing each global batch (batch = B/N); else 1
                          (graph_new); lowering then synchronises batch norm and scales the loss by 1/N */
    float weight_decay;/* train graph: the optimizer's weight decay (set by lowering, read by autodiff) */
    GOp optimizer;     /* train graph: the update autodiff appends per parameter, an OPK_OPT op
                          (graph_new: OP_SGD; lowering sets it from `optimizer = ...`) */
    GAttr optimizer_attr; /* its constant hyperparameters (attr.adam's beta2, eps; autodiff sets the
                          weight decay from weight_decay) */
} Graph;

Graph *graph_new(DlPool *pool, int batch);
/* Append a node; shape given by the caller (lowering infers it).  Returns its index. */
uint32_t graph_add(Graph *g, GOp op, const uint32_t *in, int nin,
                   const int64_t *shape, int ndim, GAttr attr, const char *name, DlSrcLoc loc);
int64_t graph_numel(const GNode *n);
/* The input pixels a kernel of k taps spans with dilation dilate + 1. */
static inline int64_t graph_conv_span(int k, int dilate) { return (int64_t)(k - 1) * (dilate + 1) + 1; }
/* A node name not yet used in g: base itself, else base<sep>2, base<sep>3, ...
 * (the first free one; pool-allocated).  Constant time per call on average,
 * however many nodes share the base. */
const char *graph_unique_name(Graph *g, const char *base, const char *sep);
/* The node named name, or G_NONE. */
uint32_t graph_find(const Graph *g, const char *name);
/* Append an output (the array grows in g's pool). */
void graph_add_output(Graph *g, GOutput o);
/* "act", "param", ...: arena names for dumps and messages. */
const char *graph_arena_name(GArena a);
/* Check the invariants (arity, topological order, shapes of each op's inputs).
 * Reports to diag as internal errors; returns the number of problems. */
int graph_verify(const Graph *g, const char *after_pass, DlDiag *diag);
/* The --emit=graph text: one line per node, e.g.
 *   %12 = conv2d(%3, %11) [64,32,64,64] k3 s1 p1  ; c1.y @12:9   */
void graph_dump(const Graph *g, DlBuf *out);

/* ---- fusion: compiler/fuse.c -------------------------------------------- */

typedef enum GGroupKind {
    GG_LIB,      /* one OPK_LIB node: a library call */
    GG_ELEM,     /* elementwise nodes of one output shape (plus broadcasts) */
    GG_CHANRED,  /* per-channel: elementwise prologue on [B,C,H,W] inputs, the
                    reductions, then an epilogue of ops on [r,C]/[C] tensors */
    GG_ROW,      /* row-wise: ops on [B,K], [B,A], [B] tensors, one row per b
                    (the loss tail: log-softmax, KL, expectation, L1, and their gradients) */
    GG_WINDOW,   /* one window op: pooling, resampling, concat or slice */
    GG_BATCHRED, /* one MEAN */
    GG_OPT,      /* the optimizer update over all parameters as one kernel */
} GGroupKind;

typedef struct GGroup {
    GGroupKind kind;
    uint32_t *nodes;   /* members, topological order */
    int nnodes;
    uint32_t *ins;     /* nodes read from outside the group, sorted */
    int nins;
    uint32_t *outs;    /* members read after the group (or graph outputs, or in-place) */
    int nouts;
    const char *name;  /* kernel name, e.g. "k7_bn_apply_relu" */
} GGroup;

typedef struct GSchedule {
    GGroup *groups;    /* execution order */
    int n;
} GSchedule;

/* "lib", "elem", ...: group kind names for dumps and messages. */
const char *graph_group_kind_name(GGroupKind k);

/* ---- memory plan: compiler/memplan.c ------------------------------------ */

typedef struct GBuffer {
    GArena arena;
    int64_t offset;    /* in floats from the arena's start */
    int64_t numel;
} GBuffer;

typedef struct GMemPlan {
    GBuffer *buf;               /* per node (VIEW nodes alias their input) */
    int64_t arena_size[AR_COUNT];/* in floats */
} GMemPlan;

#endif
