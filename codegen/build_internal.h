/* build_internal.h - what the KIR builders (codegen/build_*.c) share: the
 * per-group build state, the kernel argument table and the evaluation of
 * elementwise ops at a point of an iteration space.  Private to codegen/.
 *
 * Evaluation: an elementwise member is computed "at the current point" of
 * the kernel (an element of a [B,C,H,W] / [B,C] / [N] domain, a (row, channel)
 * of a [r,C] epilogue, or an element of one loss-tail row).  cg_eval_op holds
 * the maths of every OPK_ELEM op once (ops.def, PyTorch conventions) and asks
 * the context for its inputs through CgEval.get, so the same op code serves
 * GG_ELEM, the prologue and epilogue of GG_CHANRED and the ELEM members of
 * GG_ROW.  Values carry a level (0: once per work item, 1: once per plane b,
 * 2: once per element), and are declared in the block of their level, so that
 * per-channel values (rsqrt(var+eps), gamma, ...) are hoisted out of the inner
 * loop.
 */
#ifndef DL_CG_BUILD_INTERNAL_H
#define DL_CG_BUILD_INTERNAL_H

#include "codegen.h"
#include "kir.h"

/* Role of a node in the group being built (CgBuild.role). */
enum { CR_NONE, CR_ELEM, CR_RED, CR_EPI };

typedef struct CgBuild {
    const Graph *g;
    const GMemPlan *mp;
    const GGroup *grp;
    int gi;                  /* group index in the schedule */
    KirKernel *k;
    CgArg *args;
    int nargs, argcap;
    int32_t *node_buf;       /* per graph node: kernel buffer, or -1 */
    uint8_t *role;           /* per graph node: CR_* (CR_NONE: not a member) */
    uint8_t *is_out;         /* per graph node: member in grp->outs */
    char *err;               /* first error (malloc'd) */
} CgBuild;

int cg_fail(CgBuild *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline const GNode *cg_node(const CgBuild *b, uint32_t n) { return &b->g->nodes[n]; }
/* The kernel buffer of node (its storage; in-place writers map to their
 * target).  Identical storage shares one buffer; partly overlapping storage is
 * an error.  Returns the buffer index or -1 (error recorded). */
int cg_arg_node(CgBuild *b, uint32_t node, int written);
/* A whole arena region as one buffer (the optimizer kernel). */
int cg_arg_region(CgBuild *b, GArena a, int64_t off, int64_t numel, int written, const char *label);
/* Register the group's ins (read) and outs (written) as buffers, in order. */
int cg_args_from_group(CgBuild *b);
/* Rows of an [r,C] tensor (1 for [C]). */
static inline int64_t cg_rows(const GNode *n) { return n->ndim == 2 ? n->shape[0] : 1; }
/* n = B*H*W of the tensor that the BN_STATS node `stats` reduced, or -1. */
int64_t cg_bn_count(const CgBuild *b, uint32_t stats);
/* A short text of a shape: "[64,32,8,8]". */
void cg_shape_str(const GNode *n, char *s, size_t cap);

/* ---- evaluation of elementwise ops --------------------------------------- */

typedef struct CgVal { int e, lvl; } CgVal;   /* expression and level (0..2) */

/* how an input is read (CgEval.get): */
#define CG_BCAST (-1)        /* broadcast to the current point (ops.def OPK_ELEM rules) */
#define CG_BATCH (-2)        /* a [B] input, along dim 0 */
#define CG_AT(i) (-100 - (i))/* element i of an external input (scalars[i]) */
/* how >= 0: row `how` of an [r,C] input at the current channel */

typedef struct CgCacheEnt { uint32_t node; int how; CgVal v; } CgCacheEnt;

typedef struct CgEval CgEval;
struct CgEval {
    CgBuild *b;
    KirKernel *k;
    int nd;
    int64_t D[G_MAX_DIMS];   /* the domain: shape of the elementwise iteration */
    int lin, bi, ci;         /* expressions: linear index in D, coordinate 0, channel */
    int lvl_lin, lvl_b, lvl_c;
    int row_e;               /* row of an [r,C] point (epilogue), or -1: use bi */
    int blk[3];              /* block of each level */
    CgVal (*get)(CgEval *x, uint32_t node, int how);
    CgCacheEnt *cache;
    int ncache, capcache;
};

/* Value of member m at the current point (declares it in its level's block). */
CgVal cg_eval_op(CgEval *x, uint32_t m);
/* Declare e as a new local of role in the block of level lvl. */
CgVal cg_decl(CgEval *x, int lvl, const char *role, int e);
int cg_cache_find(const CgEval *x, uint32_t node, int how, CgVal *v);
void cg_cache_put(CgEval *x, uint32_t node, int how, CgVal v);
/* Load external node as `how` says, relative to the domain (ELEM/CHANRED
 * prologue); cached, declared as "ld<n>" at its level. */
CgVal cg_load_ext(CgEval *x, uint32_t node, int how);
/* The get of GG_ELEM and of the GG_CHANRED prologue: members of role CR_ELEM
 * are evaluated (cached), externals loaded. */
CgVal cg_elem_get(CgEval *x, uint32_t node, int how);
void cg_eval_free(CgEval *x);

/* ---- builders: fill b->k (grid, buffers, body); 0 or -1 (cg_fail) -------- */
int cg_build_elem(CgBuild *b);
int cg_build_chanred(CgBuild *b);
/* GPU schedules of the same groups (CUDA module only; KirKernel.block > 0);
 * 0, -1 (cg_fail), or 1 when the group keeps its flat kernel */
int cg_build_elem_gpu(CgBuild *b);    /* 1: not 4-D (the flat kernel stays) */
int cg_build_chanred_gpu(CgBuild *b);
int cg_build_row_gpu(CgBuild *b);     /* 1: declined (the flat kernel stays) */
int cg_build_row(CgBuild *b);
int cg_build_window(CgBuild *b);      /* pooling (build_window.c) */
int cg_build_resample(CgBuild *b);    /* upsample, concat, slice (build_resample.c) */
int cg_build_batchred(CgBuild *b);
int cg_build_opt(CgBuild *b);

#endif
