/* kir.h - the kernel IR: one generated kernel as loops, loads, stores, ALU ops
 * and constants, small enough to be rendered twice (codegen/render.c: the
 * kernel body shared by C and CUDA; kir.c: the --emit=kir listing).
 *
 * A kernel is a name, its buffer parameters (buffer i is dl_b[i] in the ABI of
 * codegen/codegen.h, read-only or written), a grid (the number of work items)
 * and a body: a block of statements run once per work item (the work-item id
 * is the expression KX_GID).  A kernel with a GPU schedule (block > 0; only
 * ever rendered into the CUDA module) runs its body once per thread of a
 * block of `block` threads per work item: KX_TID is the thread, shared arrays
 * are the block's, KS_BARRIER its __syncthreads (docs/kir.md, "GPU
 * schedules").  Everything lives in arrays inside the kernel and
 * is referred to by index (expressions, variables, statements, blocks), so a
 * kernel is freed with one kir_free.  Variables are named after their role
 * plus a per-role counter (acc0, ld3, alu7, t0), tinygrad style, so that the
 * rendered code reads well; docs/kir.md shows a kernel as KIR, C and CUDA.
 *
 * Types: f32 (all tensor data), f64 (accumulators of sums), i64 (indices),
 * bool (comparisons).  Binary ops take two operands of one class (integer or
 * floating; f32 op f64 is f64); mixing an integer with a float needs an
 * explicit cast.  A builder that breaks a rule records the first error in
 * KirKernel.err (an internal error: codegen reports it with the group) and
 * gets expression 0 back, so building can go on without checks at every call.
 */
#ifndef DL_KIR_H
#define DL_KIR_H

#include <stdint.h>
#include "../common/util.h"

typedef enum KirType { KT_F32, KT_F64, KT_I64, KT_BOOL } KirType;

typedef enum KirOp {
    /* leaves */
    KX_CONST,      /* f (KT_F32/KT_F64) or i (KT_I64/KT_BOOL) */
    KX_VAR,        /* local variable var */
    KX_GID,        /* the work-item id, i64 in [0, grid) */
    KX_LOAD,       /* f32 kernel buffer buf at index a (i64) */
    KX_LOADL,      /* f32 local array var at index a (i64) */
    /* unary (a) */
    KX_NEG, KX_EXP, KX_LOG, KX_SQRT, KX_RSQRT, KX_ABS, KX_SIGN, /* math on f32; EXP LOG SQRT also on f64 */
    KX_TOF32, KX_TOF64, KX_TOI64,                              /* casts */
    KX_NOT,
    /* binary (a, b) */
    KX_ADD, KX_SUB, KX_MUL, KX_DIV, KX_MOD, KX_MIN, KX_MAX,     /* DIV on i64 truncates; MOD i64 only */
    KX_LT, KX_LE, KX_GT, KX_GE, KX_EQ, KX_NE, KX_AND, KX_OR,   /* -> bool */
    /* ternary */
    KX_SELECT,     /* a ? b : c */
    KX_KEEP,       /* dropout keep mask dl_keep(seed a, step b, index c, p f) -> bool */
    /* GPU schedule (KirKernel.block > 0) */
    KX_TID,        /* the thread index in the block, i64 in [0, block) */
    KX_COUNT
} KirOp;

typedef struct KirExpr {
    uint8_t op, type;
    int32_t a, b, c;   /* operand expressions */
    int32_t buf, var;  /* KX_LOAD buffer / KX_VAR, KX_LOADL variable */
    int64_t i;
    double f;
} KirExpr;

/* Where an array lives: each work item's own (local), or the block's shared
 * memory (GPU schedule only: one copy per CUDA block, every thread of the
 * block sees it). */
typedef enum KirVarKind { KV_LOCAL, KV_SHARED } KirVarKind;

typedef struct KirVar {
    char name[24];     /* role + counter, e.g. "acc0" */
    const char *role;
    uint8_t type;
    uint8_t kind;      /* KirVarKind */
    int32_t len;       /* 0: scalar; > 0: array of len elements (local: f32; shared: f32 or f64) */
} KirVar;

typedef enum KirStmtOp {
    KS_DECL,    /* type var = val;  (arrays: type var[len]; no val) */
    KS_ASSIGN,  /* var = val / var += val */
    KS_STORE,   /* buf[idx] = val / += val */
    KS_STOREL,  /* var[idx] = val / += val  (local array) */
    KS_LOOP,    /* for (var = lo; var < hi; var++) body */
    KS_IF,      /* if (cond) body */
    KS_BARRIER, /* every thread of the block waits here (__syncthreads); GPU schedule, root block only */
} KirStmtOp;

typedef struct KirStmt {
    uint8_t op, accum;
    int32_t var, buf;
    int32_t idx, val;  /* expressions (val -1: DECL without initialiser) */
    int32_t lo, hi;    /* LOOP bounds (i64 expressions) */
    int32_t cond;      /* IF */
    int32_t body;      /* LOOP / IF block */
} KirStmt;

typedef struct KirBlock {
    int32_t *s;        /* statement indices, in order */
    int n, cap;
} KirBlock;

/* A buffer parameter: dl_b[index]. */
typedef struct KirBuf {
    char *label;       /* for comments: "%12 c1.y [64,32,64,64]" (malloc'd) */
    int64_t numel;
    int written;       /* 0: const float *, 1: float * */
} KirBuf;

typedef struct KirKernel {
    char *name;        /* C identifier (malloc'd) */
    int64_t grid;
    int32_t block;     /* GPU schedule: threads per work item (one CUDA block each); 0: flat */
    KirBuf *bufs; int nbufs, bufcap;
    DL_VEC(KirExpr) ex;
    DL_VEC(KirVar) vars;
    DL_VEC(KirStmt) st;
    DL_VEC(KirBlock) blocks;
    int body;          /* the root block: one work item */
    char *err;         /* first builder error (malloc'd) or NULL */
    struct KirKernel *gpu; /* the GPU-shaped variant of this (flat, CPU-shaped) kernel, or NULL:
                              same name, grid and buffers; owned, freed by kir_free */
} KirKernel;

/* ---- building (kir.c) ---------------------------------------------------- */

void kir_init(KirKernel *k, const char *name, int64_t grid);
void kir_free(KirKernel *k);
/* Record a builder error (the first one is kept); returns 0 (a valid expression). */
int kir_fail(KirKernel *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Append buffer parameter dl_b[nbufs]; returns its index. */
int kir_buf(KirKernel *k, const char *label, int64_t numel, int written);
/* A new, empty block (to become a LOOP or IF body). */
int kir_block(KirKernel *k);

/* Expressions; each returns an expression index.  Integer constant operands
 * are folded (2*3 -> 6, x*1 -> x, x+0 -> x), as are SELECTs on constants. */
int kir_f32(KirKernel *k, float f);
int kir_f64(KirKernel *k, double f);
int kir_i64(KirKernel *k, int64_t i);
int kir_gid(KirKernel *k);
/* The thread index in the block (GPU schedule: fails unless k->block > 0). */
int kir_tid(KirKernel *k);
int kir_ref(KirKernel *k, int var);
int kir_load(KirKernel *k, int buf, int idx);
int kir_loadl(KirKernel *k, int var, int idx);
int kir_un(KirKernel *k, KirOp op, int a);
int kir_bin(KirKernel *k, KirOp op, int a, int b);
int kir_select(KirKernel *k, int c, int a, int b);
int kir_keep(KirKernel *k, int seed, int step, int idx, float p);
/* Shorthands for index arithmetic: a*b + c on i64. */
int kir_madd(KirKernel *k, int a, int b, int c);

/* Variables and statements (appended to block blk). */
int kir_var(KirKernel *k, const char *role, KirType t, int len);
/* Declare a new scalar local initialised to val; returns a KX_VAR expression. */
int kir_decl(KirKernel *k, int blk, const char *role, int val);
/* Declare a new scalar local of type t, returns its variable index. */
int kir_decl_var(KirKernel *k, int blk, const char *role, KirType t, int val);
/* Declare a local f32 array of len elements; returns its variable index. */
int kir_decl_arr(KirKernel *k, int blk, const char *role, int len);
/* Declare a shared array of len elements of type t (f32 or f64) in the root
 * block (GPU schedule only); returns its variable index.  Read it with
 * kir_loadl (typed t), write it with kir_storel. */
int kir_decl_shared(KirKernel *k, const char *role, KirType t, int len);
/* Append a block barrier (__syncthreads) to the root block (GPU schedule:
 * the only place where every thread surely arrives). */
void kir_barrier(KirKernel *k);
void kir_assign(KirKernel *k, int blk, int var, int val, int accum);
void kir_store(KirKernel *k, int blk, int buf, int idx, int val, int accum);
void kir_storel(KirKernel *k, int blk, int var, int idx, int val, int accum);
/* Append "for (var = lo; var < hi; var++) body" to blk.  var from kir_var
 * (KT_I64), body from kir_block: the body may be filled before or after. */
void kir_loop(KirKernel *k, int blk, int var, int lo, int hi, int body);
/* Append "if (cond) body"; returns the body block. */
int kir_if(KirKernel *k, int blk, int cond);

/* Check the whole kernel: every variable declared before use and in scope,
 * stores only to written buffers, every index in range; a GPU-schedule piece
 * (tid, shared array, barrier) only in a kernel with k->block > 0, block in
 * [1, KIR_MAX_BLOCK], shared arrays and barriers only in the root block.
 * Returns 0 or -1 with k->err set. */
int kir_verify(KirKernel *k);

/* The --emit=kir listing of the body (one statement a line, indented). */
void kir_dump(const KirKernel *k, DlBuf *out);

/* ---- rendering (render.c) ------------------------------------------------- */

/* Append "DL_KERNEL(name) { ... }" to out: the text shared by the C and the
 * CUDA module (macros of codegen/prelude.c only). */
void kir_render(const KirKernel *k, DlBuf *out);

const char *kir_type_name(KirType t);

/* The preludes (prelude.c): the macros and helpers that make rendered bodies a
 * C11 or a CUDA C module.  A module is a prelude followed by bodies. */
const char *cg_prelude_c(void);
const char *cg_prelude_cuda(void);

/* ---- the kernel IR as plan data (kir_io.c, kir_prove.c) ---------------------
 *
 * A plan carries each kernel as its IR, never as C: the runtime decodes it,
 * checks it and renders the C or CUDA itself (docs/plan-format.md, "What a
 * plan may do").  The encoding is little-endian and fixed-width: version byte
 * KIR_FORMAT, grid, block (threads per work item, 0: flat), buffers (numel,
 * written, label), expressions, variables (name, type, kind, len),
 * statements, blocks, the root block.  A GPU variant (KirKernel.gpu) is
 * encoded on its own (the plan carries it beside the flat kernel). */
#define KIR_FORMAT 2
/* Bounds on a decoded kernel (every generated kernel is far below them). */
#define KIR_MAX_EXPRS   (1 << 20)
#define KIR_MAX_STMTS   (1 << 20)
#define KIR_MAX_VARS    (1 << 16)
#define KIR_MAX_BLOCKS  (1 << 16)
#define KIR_MAX_DEPTH   200          /* expression nesting */
#define KIR_MAX_NEST    32           /* loop / if nesting */
#define KIR_MAX_TREE    (1 << 22)    /* expression nodes once rendered (sharing unfolded) */
#define KIR_MAX_LOCAL   (1 << 16)    /* floats of local arrays per work item */
#define KIR_MAX_BLOCK   1024         /* threads per block (CUDA's limit) */
#define KIR_MAX_SHARED  (48 << 10)   /* bytes of shared arrays per block (CUDA's static limit) */
#define KIR_MAX_WORK    (INT64_C(1) << 42)  /* statement executions per launch, bounded */

/* Append k's encoding to out. */
void kir_encode(const KirKernel *k, DlBuf *out);
/* Decode n bytes into k (named name) and check everything that makes it
 * renderable: counts within the KIR_MAX_* bounds, every index in range,
 * operands before their users, each block and variable used once, exact
 * types, variable names of the form letters+digits, labels printable; then
 * kir_verify (scopes).  Returns 0, or -1 with *why (malloc'd). */
int kir_decode(const uint8_t *p, size_t n, const char *name, KirKernel *k, char **why);

/* Prove k memory-safe for every work item gid in [0, k->grid) (and, in a GPU
 * schedule, every thread tid in [0, k->block)) by interval
 * arithmetic over the i64 expressions: every load and store index inside its
 * buffer (buf.numel) or local or shared array, no i64 overflow, no division or modulo
 * by a value that may be 0, loop and expression nesting, local memory and the
 * total work bounded.  A kernel dldlc generates always passes; anything the
 * analysis cannot prove is refused.  Returns 0, or -1 with *why naming the
 * statement (malloc'd). */
int kir_prove(const KirKernel *k, char **why);

#endif
