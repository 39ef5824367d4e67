/* kir_prove.c - prove a kernel stays inside its buffers (codegen/kir.h).
 *
 * Interval arithmetic over the i64 expressions of one work item: gid ranges
 * over [0, grid) (in a GPU schedule, the thread index tid over [0, block);
 * shared arrays are checked like local ones), a loop variable over [lo.min, hi.max - 1], a declared i64
 * variable over the interval of its initialiser, an i64 variable that is ever
 * reassigned over every value (it may only be compared, never used in
 * arithmetic or as an index).  With those, every load and store index must lie
 * inside its buffer or local array, every i64 addition, subtraction,
 * multiplication and negation must be free of overflow, and every i64 division
 * or modulo must have a divisor that cannot be 0 (nor -1 under INT64_MIN).
 * Those are the only ways C code built from the IR can touch memory or hit
 * undefined integer behaviour; float arithmetic cannot.  A float converted to
 * i64 is refused (undefined out of range); the generated kernels never do it.
 *
 * The analysis is sound and deliberately simple: no path conditions (an index
 * guarded by an `if` is not trusted because of the guard), which the kernels
 * dldlc generates do not need: each index is an affine form of gid and loop
 * variables that div/mod decompose into ranges inside the tensor.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kir.h"

typedef struct Iv {
    int64_t lo, hi;
    int known;          /* 0: any value of the type */
} Iv;

typedef struct Prover {
    const KirKernel *k;
    Iv *var;            /* per variable, set at its declaration */
    uint8_t *assigned;  /* per variable: an i64 variable reassigned somewhere */
    Iv *memo;
    uint8_t *done;
    int stmt;           /* the statement being checked (messages) */
    double work;        /* statement executions over all work items */
    char **why;
    int failed;
} Prover;

static Iv iv(int64_t lo, int64_t hi) { return (Iv){lo, hi, 1}; }
static const Iv UNKNOWN = {0, 0, 0};

static void fail(Prover *P, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void fail(Prover *P, const char *fmt, ...)
{
    if (P->failed) return;
    P->failed = 1;
    char tmp[400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    *P->why = dl_xasprintf("statement %d: %s", P->stmt, tmp);
}

static const char *opname(int op)
{
    switch ((KirOp)op) {
    case KX_ADD: return "addition";
    case KX_SUB: return "subtraction";
    case KX_MUL: return "multiplication";
    case KX_NEG: return "negation";
    case KX_DIV: return "division";
    case KX_MOD: return "modulo";
    default: return "operation";
    }
}

/* a op b over the four corners; 0 when some corner overflows. */
static int corners(int op, Iv a, Iv b, Iv *out)
{
    int64_t xs[2] = {a.lo, a.hi}, ys[2] = {b.lo, b.hi}, lo = 0, hi = 0;
    for (int i = 0; i < 4; i++) {
        int64_t x = xs[i >> 1], y = ys[i & 1], r;
        int ovf;
        switch (op) {
        case KX_ADD: ovf = __builtin_add_overflow(x, y, &r); break;
        case KX_SUB: ovf = __builtin_sub_overflow(x, y, &r); break;
        case KX_MUL: ovf = __builtin_mul_overflow(x, y, &r); break;
        default: /* KX_DIV: the caller excluded 0 and INT64_MIN / -1 */
            r = x / y, ovf = 0;
            break;
        }
        if (ovf) return 0;
        if (i == 0 || r < lo) lo = r;
        if (i == 0 || r > hi) hi = r;
    }
    *out = iv(lo, hi);
    return 1;
}

static int contains(Iv a, int64_t v) { return a.lo <= v && v <= a.hi; }

static void check_index(Prover *P, Iv x, int64_t n, const char *what)
{
    if (P->failed) return;
    if (!x.known)
        fail(P, "the index into %s cannot be bounded", what);
    else if (x.lo < 0 || x.hi >= n)
        fail(P, "the index into %s ranges over [%lld, %lld], outside [0, %lld)", what, (long long)x.lo,
             (long long)x.hi, (long long)n);
}

static Iv eval(Prover *P, int e)
{
    if (P->done[e]) return P->memo[e];
    const KirKernel *k = P->k;
    const KirExpr *x = &k->ex.a[e];
    Iv a = UNKNOWN, b = UNKNOWN, c = UNKNOWN, r = UNKNOWN;
    if (x->a >= 0) a = eval(P, x->a);
    if (x->b >= 0) b = eval(P, x->b);
    if (x->c >= 0) c = eval(P, x->c);
    if (P->failed) return UNKNOWN;
    int i64 = x->type == KT_I64;
    char what[300];
    switch ((KirOp)x->op) {
    case KX_CONST:
        if (x->type == KT_I64 || x->type == KT_BOOL) r = iv(x->i, x->i);
        break;
    case KX_VAR:
        r = x->type == KT_BOOL ? iv(0, 1) : P->var[x->var];
        break;
    case KX_GID: r = iv(0, k->grid - 1); break;
    case KX_TID: r = iv(0, k->block - 1); break;
    case KX_LOAD:
        snprintf(what, sizeof what, "buffer %d (%s)", x->buf, k->bufs[x->buf].label ? k->bufs[x->buf].label : "");
        check_index(P, a, k->bufs[x->buf].numel, what);
        break;
    case KX_LOADL:
        snprintf(what, sizeof what, "%s array %s", k->vars.a[x->var].kind == KV_SHARED ? "shared" : "local",
                 k->vars.a[x->var].name);
        check_index(P, a, k->vars.a[x->var].len, what);
        break;
    case KX_TOI64:
        if (k->ex.a[x->a].type == KT_BOOL) r = iv(0, 1);
        else fail(P, "a float converted to i64 (undefined out of range)");
        break;
    case KX_NEG:
        if (!i64) break;
        if (!a.known || a.lo == INT64_MIN) fail(P, "an i64 negation that may overflow");
        else r = iv(-a.hi, -a.lo);
        break;
    case KX_ADD: case KX_SUB: case KX_MUL:
        if (!i64) break;
        if (!a.known || !b.known) fail(P, "an i64 %s of a value that cannot be bounded", opname(x->op));
        else if (!corners(x->op, a, b, &r)) fail(P, "an i64 %s that may overflow", opname(x->op));
        break;
    case KX_DIV: case KX_MOD:
        if (!i64) break;
        if (!a.known || !b.known) {
            fail(P, "an i64 %s of a value that cannot be bounded", opname(x->op));
            break;
        }
        if (contains(b, 0)) {
            fail(P, "an i64 %s by a value that may be 0", opname(x->op));
            break;
        }
        if ((a.lo == INT64_MIN && contains(b, -1)) || b.lo == INT64_MIN) {
            fail(P, "an i64 %s that may overflow", opname(x->op));
            break;
        }
        if (x->op == KX_DIV) {
            corners(KX_DIV, a, b, &r);
        } else {
            /* |a % b| < |b| and a % b has the sign of a (C99 truncation) */
            int64_t m = (b.hi > -b.lo ? b.hi : -b.lo) - 1; /* b excludes 0 and INT64_MIN: no overflow */
            if (a.lo >= 0) r = iv(0, a.hi < m ? a.hi : m);
            else if (a.hi <= 0) r = iv(a.lo > -m ? a.lo : -m, 0);
            else r = iv(-m, m);
            if (a.lo >= 0 && b.lo > 0 && a.hi < b.lo) r = a; /* a % b == a */
        }
        break;
    case KX_MIN: case KX_MAX:
        if (!i64 || !a.known || !b.known) break;
        if (x->op == KX_MIN) r = iv(a.lo < b.lo ? a.lo : b.lo, a.hi < b.hi ? a.hi : b.hi);
        else r = iv(a.lo > b.lo ? a.lo : b.lo, a.hi > b.hi ? a.hi : b.hi);
        break;
    case KX_SELECT:
        if (x->type == KT_BOOL) r = iv(0, 1);
        else if (i64 && b.known && c.known) r = iv(b.lo < c.lo ? b.lo : c.lo, b.hi > c.hi ? b.hi : c.hi);
        break;
    case KX_LT: case KX_LE: case KX_GT: case KX_GE: case KX_EQ: case KX_NE:
    case KX_AND: case KX_OR: case KX_NOT: case KX_KEEP:
        r = iv(0, 1);
        break;
    default: break; /* float math: no interval */
    }
    P->memo[e] = r;
    P->done[e] = 1;
    return r;
}

static void add_work(Prover *P, double mult)
{
    P->work += mult;
    if (P->work > (double)KIR_MAX_WORK)
        fail(P, "more than %.3g statement executions per launch", (double)KIR_MAX_WORK);
}

static void prove_block(Prover *P, int blk, double mult)
{
    const KirKernel *k = P->k;
    const KirBlock *b = &k->blocks.a[blk];
    for (int i = 0; i < b->n && !P->failed; i++) {
        int si = b->s[i];
        const KirStmt *s = &k->st.a[si];
        P->stmt = si;
        add_work(P, mult);
        char what[300];
        switch ((KirStmtOp)s->op) {
        case KS_DECL:
            if (k->vars.a[s->var].len > 0) break;
            {
                Iv v = eval(P, s->val);
                int t = k->vars.a[s->var].type;
                P->var[s->var] = t == KT_BOOL ? iv(0, 1) : t == KT_I64 && !P->assigned[s->var] ? v : UNKNOWN;
            }
            break;
        case KS_ASSIGN:
            eval(P, s->val);
            if (s->accum && k->vars.a[s->var].type == KT_I64)
                fail(P, "an i64 accumulation (%s +=) cannot be bounded", k->vars.a[s->var].name);
            break;
        case KS_STORE:
            eval(P, s->val);
            snprintf(what, sizeof what, "buffer %d (%s)", s->buf, k->bufs[s->buf].label ? k->bufs[s->buf].label : "");
            check_index(P, eval(P, s->idx), k->bufs[s->buf].numel, what);
            break;
        case KS_STOREL:
            eval(P, s->val);
            snprintf(what, sizeof what, "%s array %s", k->vars.a[s->var].kind == KV_SHARED ? "shared" : "local",
                     k->vars.a[s->var].name);
            check_index(P, eval(P, s->idx), k->vars.a[s->var].len, what);
            break;
        case KS_LOOP: {
            Iv lo = eval(P, s->lo), hi = eval(P, s->hi);
            if (P->failed) break;
            if (!lo.known || !hi.known) {
                fail(P, "the bounds of loop %s cannot be bounded", k->vars.a[s->var].name);
                break;
            }
            if (hi.hi <= lo.lo) break; /* never runs */
            P->var[s->var] = iv(lo.lo, hi.hi - 1);
            prove_block(P, s->body, mult * ((double)hi.hi - (double)lo.lo));
            break;
        }
        case KS_IF:
            eval(P, s->cond);
            prove_block(P, s->body, mult);
            break;
        case KS_BARRIER: break; /* placement: kir_verify */
        }
    }
}

int kir_prove(const KirKernel *k, char **why)
{
    *why = NULL;
    if (k->grid < 1) {
        *why = dl_xasprintf("grid %lld (at least 1)", (long long)k->grid);
        return -1;
    }
    Prover P = {.k = k, .why = why};
    P.var = dl_xcalloc(k->vars.n + 1, sizeof *P.var);
    P.assigned = dl_xcalloc(k->vars.n + 1, 1);
    P.memo = dl_xcalloc(k->ex.n + 1, sizeof *P.memo);
    P.done = dl_xcalloc(k->ex.n + 1, 1);
    for (size_t i = 0; i < k->st.n; i++)
        if (k->st.a[i].op == KS_ASSIGN && k->st.a[i].var >= 0) P.assigned[k->st.a[i].var] = 1;
    /* statements run once per work item, or per thread of its block */
    prove_block(&P, k->body, (double)k->grid * (k->block > 0 ? k->block : 1));
    free(P.var);
    free(P.assigned);
    free(P.memo);
    free(P.done);
    return P.failed ? -1 : 0;
}
