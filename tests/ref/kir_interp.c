/* kir_interp.c - a checking interpreter of the kernel IR (a test double: the
 * runtime never interprets kernels, it compiles the C it renders).
 *
 * It runs one kernel over its work items the way the rendered C would, but
 * checks what the C cannot: every load and store index against its buffer or
 * local array, every i64 addition, subtraction, multiplication and negation
 * for overflow, every i64 division and modulo for a zero divisor.  A kernel
 * kir_prove accepted must never trip a check; the tests and the plan fuzzer
 * (tests/fuzz/fuzz_plan_run.c) use that as the oracle of the prover's
 * soundness.  Numbers follow C: f32 results are rounded to float, f64 stay
 * double, casts truncate.
 *
 * A GPU schedule (KirKernel.block > 0) runs per work item as its block of
 * threads would with barriers: the root block's statements between two
 * barriers run for thread 0, 1, ... in turn, each thread with its own locals,
 * all sharing the shared arrays (kept as floats: the checks are about
 * indices, not precision).
 *
 * Include it once per test binary ("#include "../ref/kir_interp.c""), as
 * tests/ref/interp.c.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../codegen/kir.h"

typedef struct KiVal {
    double f;
    int64_t i;
} KiVal;

typedef struct KiRun {
    const KirKernel *k;
    float *const *b;
    const int64_t *n;
    KiVal *var;
    float **arr;       /* per local array variable */
    int64_t gid, tid;
    int64_t budget;    /* statements left */
    int failed, out_of_budget;
    char why[300];
} KiRun;

static void ki_fail(KiRun *R, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void ki_fail(KiRun *R, const char *fmt, ...)
{
    if (R->failed) return;
    R->failed = 1;
    char m[200];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(m, sizeof m, fmt, ap);
    va_end(ap);
    snprintf(R->why, sizeof R->why, "work item %lld: %s", (long long)R->gid, m);
}

static int ki_float(int t) { return t == KT_F32 || t == KT_F64; }

static KiVal ki_expr(KiRun *R, int e)
{
    const KirExpr *x = &R->k->ex.a[e];
    KiVal r = {0, 0}, a = {0, 0}, b = {0, 0};
    if (R->failed) return r;
    if (x->op != KX_SELECT) { /* select evaluates one side only, as C's ?: */
        if (x->a >= 0) a = ki_expr(R, x->a);
        if (x->b >= 0) b = ki_expr(R, x->b);
        if (x->c >= 0) (void)ki_expr(R, x->c); /* evaluated for its checks */
    }
    int t = x->type, ta = x->a >= 0 ? R->k->ex.a[x->a].type : -1;
    int fl = ki_float(ta);
    switch ((KirOp)x->op) {
    case KX_CONST: r.f = x->f, r.i = x->i; break;
    case KX_VAR: r = R->var[x->var]; break;
    case KX_GID: r.i = R->gid; break;
    case KX_TID: r.i = R->tid; break;
    case KX_LOAD:
        if (a.i < 0 || a.i >= R->n[x->buf]) ki_fail(R, "load index %lld outside buffer of %lld", (long long)a.i, (long long)R->n[x->buf]);
        else r.f = R->b[x->buf][a.i];
        break;
    case KX_LOADL:
        if (a.i < 0 || a.i >= R->k->vars.a[x->var].len)
            ki_fail(R, "local load index %lld outside array of %d", (long long)a.i, R->k->vars.a[x->var].len);
        else r.f = R->arr[x->var][a.i];
        break;
    case KX_NEG:
        if (t == KT_I64 && __builtin_sub_overflow((int64_t)0, a.i, &r.i)) ki_fail(R, "negation of %lld overflows", (long long)a.i);
        r.f = -a.f;
        break;
    case KX_EXP: r.f = exp(a.f); break;
    case KX_LOG: r.f = log(a.f); break;
    case KX_SQRT: r.f = sqrt(a.f); break;
    case KX_RSQRT: r.f = 1.0 / sqrt(a.f); break;
    case KX_ABS: r.f = fabs(a.f); break;
    case KX_SIGN: r.f = a.f > 0 ? 1.0 : a.f < 0 ? -1.0 : a.f; break;
    case KX_TOF32: case KX_TOF64: r.f = fl ? a.f : (double)a.i; break;
    case KX_TOI64:
        if (fl) {
            if (!(a.f > -9.2e18 && a.f < 9.2e18)) ki_fail(R, "float %g to i64 out of range", a.f);
            else r.i = (int64_t)a.f;
        } else {
            r.i = a.i;
        }
        break;
    case KX_NOT: r.i = !a.i; break;
    case KX_ADD: case KX_SUB: case KX_MUL:
        if (t == KT_I64) {
            int o = x->op == KX_ADD ? __builtin_add_overflow(a.i, b.i, &r.i)
                  : x->op == KX_SUB ? __builtin_sub_overflow(a.i, b.i, &r.i)
                                    : __builtin_mul_overflow(a.i, b.i, &r.i);
            if (o) ki_fail(R, "i64 arithmetic on %lld and %lld overflows", (long long)a.i, (long long)b.i);
        } else {
            r.f = x->op == KX_ADD ? a.f + b.f : x->op == KX_SUB ? a.f - b.f : a.f * b.f;
        }
        break;
    case KX_DIV: case KX_MOD:
        if (t == KT_I64) {
            if (b.i == 0 || (a.i == INT64_MIN && b.i == -1)) ki_fail(R, "i64 division of %lld by %lld", (long long)a.i, (long long)b.i);
            else r.i = x->op == KX_DIV ? a.i / b.i : a.i % b.i;
        } else {
            r.f = a.f / b.f;
        }
        break;
    case KX_MIN: case KX_MAX:
        if (t == KT_I64) r.i = x->op == KX_MIN ? (a.i < b.i ? a.i : b.i) : (a.i > b.i ? a.i : b.i);
        else if (x->op == KX_MIN) r.f = (a.f < b.f || a.f != a.f) ? a.f : b.f;
        else r.f = (a.f > b.f || a.f != a.f) ? a.f : b.f;
        break;
    case KX_LT: r.i = fl ? a.f < b.f : a.i < b.i; break;
    case KX_LE: r.i = fl ? a.f <= b.f : a.i <= b.i; break;
    case KX_GT: r.i = fl ? a.f > b.f : a.i > b.i; break;
    case KX_GE: r.i = fl ? a.f >= b.f : a.i >= b.i; break;
    case KX_EQ: r.i = fl ? a.f == b.f : a.i == b.i; break;
    case KX_NE: r.i = fl ? a.f != b.f : a.i != b.i; break;
    case KX_AND: r.i = a.i && b.i; break;
    case KX_OR: r.i = a.i || b.i; break;
    case KX_SELECT: {
        KiVal cnd = ki_expr(R, x->a);
        r = ki_expr(R, cnd.i ? x->b : x->c);
        break;
    }
    case KX_KEEP: r.i = 1; break; /* the mask's value does not matter to the checks */
    case KX_COUNT: break;
    }
    if (t == KT_F32) r.f = (double)(float)r.f;
    return r;
}

static void ki_stmts(KiRun *R, int blk, const KirBlock *B);
static void ki_block(KiRun *R, int blk) { ki_stmts(R, blk, &R->k->blocks.a[blk]); }
/* Statements of the root block between two barriers (a GPU schedule's segment). */
static void ki_segment(KiRun *R, const KirBlock *seg) { ki_stmts(R, R->k->body, seg); }

static void ki_stmts(KiRun *R, int blk, const KirBlock *B)
{
    const KirKernel *k = R->k;
    for (int i = 0; i < B->n && !R->failed && !R->out_of_budget; i++) {
        const KirStmt *s = &k->st.a[B->s[i]];
        if (--R->budget < 0) {
            R->out_of_budget = 1;
            return;
        }
        switch ((KirStmtOp)s->op) {
        case KS_DECL:
            if (k->vars.a[s->var].kind == KV_SHARED) { /* one array per work item, every thread's */
                if (R->tid == 0) {
                    free(R->arr[s->var]);
                    R->arr[s->var] = calloc((size_t)k->vars.a[s->var].len, sizeof(float));
                }
            } else if (k->vars.a[s->var].len > 0) {
                free(R->arr[s->var]);
                R->arr[s->var] = calloc((size_t)k->vars.a[s->var].len, sizeof(float));
            } else {
                R->var[s->var] = ki_expr(R, s->val);
            }
            break;
        case KS_ASSIGN: {
            KiVal v = ki_expr(R, s->val);
            KiVal *d = &R->var[s->var];
            if (!s->accum) *d = v;
            else if (k->vars.a[s->var].type == KT_I64) {
                if (__builtin_add_overflow(d->i, v.i, &d->i)) ki_fail(R, "i64 accumulation overflows");
            } else {
                d->f += v.f;
                if (k->vars.a[s->var].type == KT_F32) d->f = (double)(float)d->f;
            }
            break;
        }
        case KS_STORE: {
            KiVal v = ki_expr(R, s->val), ix = ki_expr(R, s->idx);
            if (R->failed) break;
            if (ix.i < 0 || ix.i >= R->n[s->buf]) {
                ki_fail(R, "store index %lld outside buffer of %lld", (long long)ix.i, (long long)R->n[s->buf]);
                break;
            }
            float *p = &R->b[s->buf][ix.i];
            *p = s->accum ? *p + (float)v.f : (float)v.f;
            break;
        }
        case KS_STOREL: {
            KiVal v = ki_expr(R, s->val), ix = ki_expr(R, s->idx);
            if (R->failed) break;
            if (ix.i < 0 || ix.i >= k->vars.a[s->var].len) {
                ki_fail(R, "local store index %lld outside array of %d", (long long)ix.i, k->vars.a[s->var].len);
                break;
            }
            float *p = &R->arr[s->var][ix.i];
            *p = s->accum ? *p + (float)v.f : (float)v.f;
            break;
        }
        case KS_BARRIER: /* the segments between barriers are run by kir_interp */
            if (blk != k->body) ki_fail(R, "a barrier outside the root block");
            return;
        case KS_LOOP: {
            int64_t lo = ki_expr(R, s->lo).i, hi = ki_expr(R, s->hi).i;
            for (int64_t v = lo; v < hi && !R->failed && !R->out_of_budget; v++) {
                R->var[s->var].i = v;
                ki_block(R, s->body);
            }
            break;
        }
        case KS_IF:
            if (ki_expr(R, s->cond).i) ki_block(R, s->body);
            break;
        }
    }
}

/* Run k over work items [0, grid) on buffers b[i] of n[i] floats, with at
 * most *budget statement executions (decremented).  Returns 0 when every work
 * item ran, 1 when the budget ran out first, -1 with why (at least 300 bytes)
 * on a check that failed. */
static int kir_interp(const KirKernel *k, int64_t grid, float *const *b, const int64_t *n, int64_t *budget,
                      char *why)
{
    KiRun R = {.k = k, .b = b, .n = n, .budget = *budget};
    size_t nv = k->vars.n + 1;
    int64_t T = k->block > 0 ? k->block : 1;
    /* per thread: its locals and its local arrays; shared arrays: thread 0's slots */
    KiVal *vars = calloc((size_t)T * nv, sizeof *vars);
    float **arrs = calloc((size_t)T * nv, sizeof *arrs);
    const KirBlock *root = &k->blocks.a[k->body];
    for (R.gid = 0; R.gid < grid && !R.failed && !R.out_of_budget; R.gid++) {
        int from = 0;
        while (from <= root->n && !R.failed && !R.out_of_budget) {
            int to = from;
            while (to < root->n && k->st.a[root->s[to]].op != KS_BARRIER) to++;
            for (R.tid = 0; R.tid < T && !R.failed && !R.out_of_budget; R.tid++) {
                R.var = vars + (size_t)R.tid * nv, R.arr = arrs + (size_t)R.tid * nv;
                for (size_t v = 0; R.tid > 0 && v < k->vars.n; v++)
                    if (k->vars.a[v].kind == KV_SHARED) R.arr[v] = arrs[v];
                KirBlock seg = {root->s + from, to - from, to - from};
                ki_segment(&R, &seg);
            }
            from = to + 1;
        }
    }
    for (int64_t t = 0; t < T; t++)
        for (size_t v = 0; v < k->vars.n; v++)
            if (t == 0 || k->vars.a[v].kind != KV_SHARED) free(arrs[(size_t)t * nv + v]);
    free(arrs);
    free(vars);
    *budget = R.budget;
    if (R.failed) {
        snprintf(why, 300, "%s", R.why);
        return -1;
    }
    return R.out_of_budget ? 1 : 0;
}
