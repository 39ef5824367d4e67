/* kir.c - building, checking and listing the kernel IR (codegen/kir.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kir.h"

static const char *const op_name[KX_COUNT] = {
    [KX_CONST] = "const", [KX_VAR] = "var", [KX_GID] = "gid", [KX_LOAD] = "load",
    [KX_LOADL] = "loadl", [KX_NEG] = "neg", [KX_EXP] = "exp", [KX_LOG] = "log",
    [KX_SQRT] = "sqrt", [KX_RSQRT] = "rsqrt", [KX_ABS] = "abs", [KX_SIGN] = "sign",
    [KX_TOF32] = "f32", [KX_TOF64] = "f64", [KX_TOI64] = "i64", [KX_NOT] = "not",
    [KX_ADD] = "add", [KX_SUB] = "sub", [KX_MUL] = "mul", [KX_DIV] = "div",
    [KX_MOD] = "mod", [KX_MIN] = "min", [KX_MAX] = "max", [KX_LT] = "lt",
    [KX_LE] = "le", [KX_GT] = "gt", [KX_GE] = "ge", [KX_EQ] = "eq", [KX_NE] = "ne",
    [KX_AND] = "and", [KX_OR] = "or", [KX_SELECT] = "select", [KX_KEEP] = "keep",
    [KX_TID] = "tid",
};

const char *kir_type_name(KirType t)
{
    switch (t) {
    case KT_F32: return "f32";
    case KT_F64: return "f64";
    case KT_I64: return "i64";
    case KT_BOOL: return "bool";
    }
    return "?";
}

static int is_float(int t) { return t == KT_F32 || t == KT_F64; }

void kir_init(KirKernel *k, const char *name, int64_t grid)
{
    memset(k, 0, sizeof *k);
    k->name = dl_xstrdup(name);
    k->grid = grid;
    /* expression 0 is a valid dummy (the i64 constant 0): failed builders return it */
    KirExpr z = {.op = KX_CONST, .type = KT_I64, .a = -1, .b = -1, .c = -1, .buf = -1, .var = -1};
    DL_PUSH(k->ex, z);
    k->body = kir_block(k);
}

void kir_free(KirKernel *k)
{
    if (k->gpu) kir_free(k->gpu), free(k->gpu);
    for (int i = 0; i < k->nbufs; i++) free(k->bufs[i].label);
    free(k->bufs);
    for (size_t i = 0; i < k->blocks.n; i++) free(k->blocks.a[i].s);
    DL_VEC_FREE(k->blocks);
    DL_VEC_FREE(k->ex);
    DL_VEC_FREE(k->vars);
    DL_VEC_FREE(k->st);
    free(k->name);
    free(k->err);
    memset(k, 0, sizeof *k);
}

int kir_fail(KirKernel *k, const char *fmt, ...)
{
    if (!k->err) {
        va_list ap;
        va_start(ap, fmt);
        char tmp[512];
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        k->err = dl_xstrdup(tmp);
    }
    return 0;
}

int kir_buf(KirKernel *k, const char *label, int64_t numel, int written)
{
    if (k->nbufs == k->bufcap) {
        k->bufcap = k->bufcap ? 2 * k->bufcap : 8;
        k->bufs = dl_xrealloc(k->bufs, (size_t)k->bufcap * sizeof *k->bufs);
    }
    k->bufs[k->nbufs] = (KirBuf){dl_xstrdup(label), numel, written};
    return k->nbufs++;
}

int kir_block(KirKernel *k)
{
    KirBlock b = {0};
    DL_PUSH(k->blocks, b);
    return (int)k->blocks.n - 1;
}

static int push(KirKernel *k, KirExpr e)
{
    DL_PUSH(k->ex, e);
    return (int)k->ex.n - 1;
}

static KirExpr mk(KirOp op, KirType t)
{
    return (KirExpr){.op = op, .type = t, .a = -1, .b = -1, .c = -1, .buf = -1, .var = -1};
}

static int ok_expr(KirKernel *k, int e) { return e >= 0 && (size_t)e < k->ex.n; }
static int ty(KirKernel *k, int e) { return k->ex.a[e].type; }
static int is_iconst(KirKernel *k, int e, int64_t *v)
{
    const KirExpr *x = &k->ex.a[e];
    if (x->op != KX_CONST || is_float(x->type)) return 0;
    if (v) *v = x->i;
    return 1;
}

int kir_f32(KirKernel *k, float f) { KirExpr e = mk(KX_CONST, KT_F32); e.f = f; return push(k, e); }
int kir_f64(KirKernel *k, double f) { KirExpr e = mk(KX_CONST, KT_F64); e.f = f; return push(k, e); }
int kir_i64(KirKernel *k, int64_t i) { KirExpr e = mk(KX_CONST, KT_I64); e.i = i; return push(k, e); }
static int kir_bool(KirKernel *k, int v) { KirExpr e = mk(KX_CONST, KT_BOOL); e.i = v != 0; return push(k, e); }
int kir_gid(KirKernel *k) { return push(k, mk(KX_GID, KT_I64)); }
int kir_tid(KirKernel *k)
{
    if (k->block <= 0) return kir_fail(k, "tid in a kernel without a GPU schedule");
    return push(k, mk(KX_TID, KT_I64));
}

int kir_ref(KirKernel *k, int var)
{
    if (var < 0 || (size_t)var >= k->vars.n) return kir_fail(k, "ref: no variable %d", var);
    KirExpr e = mk(KX_VAR, k->vars.a[var].type);
    e.var = var;
    return push(k, e);
}

int kir_load(KirKernel *k, int buf, int idx)
{
    if (buf < 0 || buf >= k->nbufs) return kir_fail(k, "load: no buffer %d", buf);
    if (!ok_expr(k, idx) || ty(k, idx) != KT_I64) return kir_fail(k, "load: index is not i64");
    KirExpr e = mk(KX_LOAD, KT_F32);
    e.buf = buf, e.a = idx;
    return push(k, e);
}

int kir_loadl(KirKernel *k, int var, int idx)
{
    if (var < 0 || (size_t)var >= k->vars.n || k->vars.a[var].len <= 0)
        return kir_fail(k, "loadl: %d is not a local array", var);
    if (!ok_expr(k, idx) || ty(k, idx) != KT_I64) return kir_fail(k, "loadl: index is not i64");
    KirExpr e = mk(KX_LOADL, (KirType)k->vars.a[var].type);
    e.var = var, e.a = idx;
    return push(k, e);
}

int kir_un(KirKernel *k, KirOp op, int a)
{
    if (!ok_expr(k, a)) return kir_fail(k, "%s: bad operand", op_name[op]);
    int t = ty(k, a), rt = t;
    switch (op) {
    case KX_NEG:
        if (t == KT_BOOL) return kir_fail(k, "neg of bool");
        break;
    case KX_EXP: case KX_LOG: case KX_SQRT: /* f64: per-step values such as Adam's 1 - beta^t */
        if (!is_float(t)) return kir_fail(k, "%s of %s (f32 or f64 only)", op_name[op], kir_type_name(t));
        break;
    case KX_RSQRT: case KX_ABS: case KX_SIGN:
        if (t != KT_F32) return kir_fail(k, "%s of %s (f32 only)", op_name[op], kir_type_name(t));
        break;
    case KX_TOF32: rt = KT_F32; if (t == rt) return a; break;
    case KX_TOF64: rt = KT_F64; if (t == rt) return a; break;
    case KX_TOI64: rt = KT_I64; if (t == rt) return a; break;
    case KX_NOT:
        if (t != KT_BOOL) return kir_fail(k, "not of %s", kir_type_name(t));
        break;
    default:
        return kir_fail(k, "%s is not a unary op", op_name[op]);
    }
    KirExpr e = mk(op, rt);
    e.a = a;
    return push(k, e);
}

int kir_bin(KirKernel *k, KirOp op, int a, int b)
{
    if (!ok_expr(k, a) || !ok_expr(k, b)) return kir_fail(k, "%s: bad operand", op_name[op]);
    int ta = ty(k, a), tb = ty(k, b), rt;
    int num = (is_float(ta) && is_float(tb)) || (ta == KT_I64 && tb == KT_I64);
    switch (op) {
    case KX_ADD: case KX_SUB: case KX_MUL: case KX_DIV: case KX_MIN: case KX_MAX: case KX_MOD:
        if (!num) return kir_fail(k, "%s of %s and %s", op_name[op], kir_type_name(ta), kir_type_name(tb));
        if (op == KX_MOD && ta != KT_I64) return kir_fail(k, "mod of floats");
        rt = ta == KT_I64 ? KT_I64 : (ta == KT_F64 || tb == KT_F64) ? KT_F64 : KT_F32;
        break;
    case KX_LT: case KX_LE: case KX_GT: case KX_GE: case KX_EQ: case KX_NE:
        if (!num) return kir_fail(k, "%s of %s and %s", op_name[op], kir_type_name(ta), kir_type_name(tb));
        rt = KT_BOOL;
        break;
    case KX_AND: case KX_OR:
        if (ta != KT_BOOL || tb != KT_BOOL) return kir_fail(k, "%s of non-bool", op_name[op]);
        rt = KT_BOOL;
        break;
    default:
        return kir_fail(k, "%s is not a binary op", op_name[op]);
    }
    /* fold integer constants and the identities of index arithmetic */
    int64_t x = 0, y = 0;
    int ca = is_iconst(k, a, &x), cb = is_iconst(k, b, &y);
    if (rt == KT_I64) {
        if (ca && cb) {
            switch (op) {
            case KX_ADD: return kir_i64(k, x + y);
            case KX_SUB: return kir_i64(k, x - y);
            case KX_MUL: return kir_i64(k, x * y);
            case KX_DIV: if (y) return kir_i64(k, x / y); break;
            case KX_MOD: if (y) return kir_i64(k, x % y); break;
            case KX_MIN: return kir_i64(k, x < y ? x : y);
            case KX_MAX: return kir_i64(k, x > y ? x : y);
            default: break;
            }
        }
        if (op == KX_ADD && ca && x == 0) return b;
        if ((op == KX_ADD || op == KX_SUB) && cb && y == 0) return a;
        if (op == KX_MUL && ca && x == 1) return b;
        if ((op == KX_MUL || op == KX_DIV) && cb && y == 1) return a;
        if (op == KX_MUL && ((ca && x == 0) || (cb && y == 0))) return kir_i64(k, 0);
        if (op == KX_MOD && cb && y == 1) return kir_i64(k, 0);
    } else if (rt == KT_BOOL && ca && cb && ta == KT_I64) {
        switch (op) {
        case KX_LT: return kir_bool(k, x < y);
        case KX_LE: return kir_bool(k, x <= y);
        case KX_GT: return kir_bool(k, x > y);
        case KX_GE: return kir_bool(k, x >= y);
        case KX_EQ: return kir_bool(k, x == y);
        case KX_NE: return kir_bool(k, x != y);
        default: break;
        }
    }
    KirExpr e = mk(op, rt);
    e.a = a, e.b = b;
    return push(k, e);
}

int kir_madd(KirKernel *k, int a, int b, int c)
{
    return kir_bin(k, KX_ADD, kir_bin(k, KX_MUL, a, b), c);
}

int kir_select(KirKernel *k, int c, int a, int b)
{
    if (!ok_expr(k, c) || !ok_expr(k, a) || !ok_expr(k, b)) return kir_fail(k, "select: bad operand");
    if (ty(k, c) != KT_BOOL) return kir_fail(k, "select: condition is %s", kir_type_name(ty(k, c)));
    int ta = ty(k, a), tb = ty(k, b);
    if (ta != tb) return kir_fail(k, "select of %s and %s", kir_type_name(ta), kir_type_name(tb));
    int64_t v;
    if (is_iconst(k, c, &v)) return v ? a : b;
    KirExpr e = mk(KX_SELECT, ta);
    e.a = c, e.b = a, e.c = b;
    return push(k, e);
}

int kir_keep(KirKernel *k, int seed, int step, int idx, float p)
{
    if (!ok_expr(k, seed) || !ok_expr(k, step) || !ok_expr(k, idx) || ty(k, seed) != KT_F32 ||
        ty(k, step) != KT_F32 || ty(k, idx) != KT_I64)
        return kir_fail(k, "keep: operands must be f32 seed, f32 step, i64 index");
    KirExpr e = mk(KX_KEEP, KT_BOOL);
    e.a = seed, e.b = step, e.c = idx, e.f = p;
    return push(k, e);
}

int kir_var(KirKernel *k, const char *role, KirType t, int len)
{
    int count = 0;
    for (size_t i = 0; i < k->vars.n; i++)
        if (strcmp(k->vars.a[i].role, role) == 0) count++;
    KirVar v = {.role = role, .type = (uint8_t)t, .len = len};
    snprintf(v.name, sizeof v.name, "%.12s%d", role, count % 1000000);
    DL_PUSH(k->vars, v);
    return (int)k->vars.n - 1;
}

static void append(KirKernel *k, int blk, KirStmt s)
{
    if (blk < 0 || (size_t)blk >= k->blocks.n) {
        kir_fail(k, "no block %d", blk);
        return;
    }
    DL_PUSH(k->st, s);
    KirBlock *b = &k->blocks.a[blk];
    if (b->n == b->cap) {
        b->cap = b->cap ? 2 * b->cap : 8;
        b->s = dl_xrealloc(b->s, (size_t)b->cap * sizeof *b->s);
    }
    b->s[b->n++] = (int32_t)k->st.n - 1;
}

static KirStmt stmt(KirStmtOp op)
{
    return (KirStmt){.op = op, .var = -1, .buf = -1, .idx = -1, .val = -1, .lo = -1, .hi = -1,
                     .cond = -1, .body = -1};
}

int kir_decl_var(KirKernel *k, int blk, const char *role, KirType t, int val)
{
    if (!ok_expr(k, val)) return kir_fail(k, "decl %s: bad initialiser", role);
    int vt = ty(k, val);
    if (vt != (int)t && !(is_float(vt) && is_float(t)))
        return kir_fail(k, "decl %s: %s initialised with %s", role, kir_type_name(t), kir_type_name(vt));
    if (vt != (int)t) val = kir_un(k, t == KT_F32 ? KX_TOF32 : KX_TOF64, val);
    int v = kir_var(k, role, t, 0);
    KirStmt s = stmt(KS_DECL);
    s.var = v, s.val = val;
    append(k, blk, s);
    return v;
}

int kir_decl(KirKernel *k, int blk, const char *role, int val)
{
    if (!ok_expr(k, val)) return kir_fail(k, "decl %s: bad initialiser", role);
    return kir_ref(k, kir_decl_var(k, blk, role, (KirType)ty(k, val), val));
}

int kir_decl_arr(KirKernel *k, int blk, const char *role, int len)
{
    if (len <= 0) return kir_fail(k, "array %s of length %d", role, len);
    int v = kir_var(k, role, KT_F32, len);
    KirStmt s = stmt(KS_DECL);
    s.var = v;
    append(k, blk, s);
    return v;
}

int kir_decl_shared(KirKernel *k, const char *role, KirType t, int len)
{
    if (k->block <= 0) return kir_fail(k, "shared array %s in a kernel without a GPU schedule", role);
    if (len <= 0 || !is_float(t) || (int64_t)len * (t == KT_F64 ? 8 : 4) > KIR_MAX_SHARED)
        return kir_fail(k, "shared array %s of %d %s", role, len, kir_type_name(t));
    int v = kir_var(k, role, t, len);
    k->vars.a[v].kind = KV_SHARED;
    KirStmt s = stmt(KS_DECL);
    s.var = v;
    append(k, k->body, s);
    return v;
}

void kir_barrier(KirKernel *k)
{
    if (k->block <= 0) {
        kir_fail(k, "barrier in a kernel without a GPU schedule");
        return;
    }
    append(k, k->body, stmt(KS_BARRIER));
}

void kir_assign(KirKernel *k, int blk, int var, int val, int accum)
{
    if (var < 0 || (size_t)var >= k->vars.n || !ok_expr(k, val)) {
        kir_fail(k, "assign: bad operands");
        return;
    }
    int vt = k->vars.a[var].type, t = ty(k, val);
    if (vt != t) {
        if (!(is_float(vt) && is_float(t))) {
            kir_fail(k, "assign %s of %s", kir_type_name(vt), kir_type_name(t));
            return;
        }
        val = kir_un(k, vt == KT_F32 ? KX_TOF32 : KX_TOF64, val);
    }
    KirStmt s = stmt(KS_ASSIGN);
    s.var = var, s.val = val, s.accum = (uint8_t)(accum != 0);
    append(k, blk, s);
}

void kir_store(KirKernel *k, int blk, int buf, int idx, int val, int accum)
{
    if (buf < 0 || buf >= k->nbufs || !ok_expr(k, idx) || !ok_expr(k, val) || ty(k, idx) != KT_I64 ||
        !is_float(ty(k, val))) {
        kir_fail(k, "store: bad operands");
        return;
    }
    KirStmt s = stmt(KS_STORE);
    s.buf = buf, s.idx = idx, s.val = kir_un(k, KX_TOF32, val), s.accum = (uint8_t)(accum != 0);
    append(k, blk, s);
}

void kir_storel(KirKernel *k, int blk, int var, int idx, int val, int accum)
{
    if (var < 0 || (size_t)var >= k->vars.n || k->vars.a[var].len <= 0 || !ok_expr(k, idx) ||
        !ok_expr(k, val) || ty(k, idx) != KT_I64 || !is_float(ty(k, val))) {
        kir_fail(k, "storel: bad operands");
        return;
    }
    KirStmt s = stmt(KS_STOREL);
    int vt = k->vars.a[var].type;
    s.var = var, s.idx = idx, s.val = kir_un(k, vt == KT_F64 ? KX_TOF64 : KX_TOF32, val), s.accum = (uint8_t)(accum != 0);
    append(k, blk, s);
}

void kir_loop(KirKernel *k, int blk, int var, int lo, int hi, int body)
{
    if (var < 0 || (size_t)var >= k->vars.n || k->vars.a[var].type != KT_I64 || !ok_expr(k, lo) ||
        !ok_expr(k, hi) || ty(k, lo) != KT_I64 || ty(k, hi) != KT_I64 || body < 0 ||
        (size_t)body >= k->blocks.n) {
        kir_fail(k, "loop: bad operands");
        return;
    }
    KirStmt s = stmt(KS_LOOP);
    s.var = var, s.lo = lo, s.hi = hi, s.body = body;
    append(k, blk, s);
}

int kir_if(KirKernel *k, int blk, int cond)
{
    if (!ok_expr(k, cond) || ty(k, cond) != KT_BOOL) return kir_fail(k, "if: condition is not bool");
    int body = kir_block(k);
    KirStmt s = stmt(KS_IF);
    s.cond = cond, s.body = body;
    append(k, blk, s);
    return body;
}

/* ---- verification --------------------------------------------------------- */

typedef struct Scope {
    uint8_t *live;     /* per variable: declared and in scope */
    int *stack, n;     /* variables declared, innermost last */
    uint8_t *seen;     /* per block: already visited (a block has one parent) */
} Scope;

static int check_expr(KirKernel *k, Scope *sc, int e)
{
    if (!ok_expr(k, e)) return kir_fail(k, "verify: expression %d out of range", e), -1;
    const KirExpr *x = &k->ex.a[e];
    if ((x->op == KX_VAR || x->op == KX_LOADL) && !sc->live[x->var])
        return kir_fail(k, "verify: %s used outside its scope", k->vars.a[x->var].name), -1;
    if (x->op == KX_LOAD && (x->buf < 0 || x->buf >= k->nbufs))
        return kir_fail(k, "verify: load from buffer %d", x->buf), -1;
    if (x->op == KX_TID && k->block <= 0) return kir_fail(k, "verify: tid in a kernel without a GPU schedule"), -1;
    if (x->op == KX_CONST || x->op == KX_VAR || x->op == KX_GID || x->op == KX_TID) return 0;
    if (x->a >= 0 && check_expr(k, sc, x->a)) return -1;
    if (x->b >= 0 && check_expr(k, sc, x->b)) return -1;
    if (x->c >= 0 && check_expr(k, sc, x->c)) return -1;
    return 0;
}

static int check_block(KirKernel *k, Scope *sc, int blk)
{
    if (sc->seen[blk]) return kir_fail(k, "verify: block %d used twice", blk), -1;
    sc->seen[blk] = 1;
    int mark = sc->n;
    const KirBlock *b = &k->blocks.a[blk];
    for (int i = 0; i < b->n; i++) {
        const KirStmt *s = &k->st.a[b->s[i]];
        if (s->val >= 0 && check_expr(k, sc, s->val)) return -1;
        if (s->idx >= 0 && check_expr(k, sc, s->idx)) return -1;
        switch ((KirStmtOp)s->op) {
        case KS_DECL:
            if (sc->live[s->var]) return kir_fail(k, "verify: %s declared twice", k->vars.a[s->var].name), -1;
            if (k->vars.a[s->var].kind == KV_SHARED && (blk != k->body || k->block <= 0))
                return kir_fail(k, "verify: shared array %s outside the root block of a GPU kernel",
                                k->vars.a[s->var].name), -1;
            sc->live[s->var] = 1;
            sc->stack[sc->n++] = s->var;
            break;
        case KS_ASSIGN: case KS_STOREL:
            if (!sc->live[s->var]) return kir_fail(k, "verify: %s assigned out of scope", k->vars.a[s->var].name), -1;
            break;
        case KS_STORE:
            if (!k->bufs[s->buf].written)
                return kir_fail(k, "verify: store to read-only buffer %d", s->buf), -1;
            break;
        case KS_LOOP:
            if (check_expr(k, sc, s->lo) || check_expr(k, sc, s->hi)) return -1;
            if (sc->live[s->var]) return kir_fail(k, "verify: loop variable %s reused", k->vars.a[s->var].name), -1;
            sc->live[s->var] = 1;
            if (check_block(k, sc, s->body)) return -1;
            sc->live[s->var] = 0;
            break;
        case KS_IF:
            if (check_expr(k, sc, s->cond) || check_block(k, sc, s->body)) return -1;
            break;
        case KS_BARRIER: /* in the root block every thread arrives: no branch, no loop around it */
            if (blk != k->body || k->block <= 0)
                return kir_fail(k, "verify: a barrier outside the root block of a GPU kernel"), -1;
            break;
        }
    }
    while (sc->n > mark) sc->live[sc->stack[--sc->n]] = 0;
    return 0;
}

int kir_verify(KirKernel *k)
{
    if (k->err) return -1;
    if (k->block < 0 || k->block > KIR_MAX_BLOCK)
        return kir_fail(k, "verify: %d threads per block (at most %d)", k->block, KIR_MAX_BLOCK), -1;
    int64_t shared = 0;
    for (size_t v = 0; v < k->vars.n; v++)
        if (k->vars.a[v].kind == KV_SHARED) shared += (int64_t)k->vars.a[v].len * (k->vars.a[v].type == KT_F64 ? 8 : 4);
    if (shared > KIR_MAX_SHARED)
        return kir_fail(k, "verify: %lld bytes of shared arrays (at most %d)", (long long)shared, KIR_MAX_SHARED), -1;
    Scope sc = {dl_xcalloc(k->vars.n + 1, 1), dl_xcalloc(k->vars.n + 1, sizeof(int)), 0,
                dl_xcalloc(k->blocks.n + 1, 1)};
    int r = check_block(k, &sc, k->body);
    free(sc.live);
    free(sc.stack);
    free(sc.seen);
    return r ? -1 : (k->err ? -1 : 0);
}

/* ---- the --emit=kir listing ----------------------------------------------- */

static void dump_expr(const KirKernel *k, int e, DlBuf *o)
{
    const KirExpr *x = &k->ex.a[e];
    switch ((KirOp)x->op) {
    case KX_CONST:
        if (x->type == KT_F32) dl_buf_printf(o, "%.9g", x->f);
        else if (x->type == KT_F64) dl_buf_printf(o, "%.17gd", x->f);
        else if (x->type == KT_BOOL) dl_buf_printf(o, "%s", x->i ? "true" : "false");
        else dl_buf_printf(o, "%lld", (long long)x->i);
        return;
    case KX_VAR: dl_buf_printf(o, "%s", k->vars.a[x->var].name); return;
    case KX_GID: dl_buf_printf(o, "gid"); return;
    case KX_TID: dl_buf_printf(o, "tid"); return;
    case KX_LOAD: dl_buf_printf(o, "buf%d[", x->buf); dump_expr(k, x->a, o); dl_buf_printf(o, "]"); return;
    case KX_LOADL:
        dl_buf_printf(o, "%s[", k->vars.a[x->var].name); dump_expr(k, x->a, o); dl_buf_printf(o, "]");
        return;
    default: break;
    }
    dl_buf_printf(o, "%s(", op_name[x->op]);
    dump_expr(k, x->a, o);
    if (x->b >= 0) dl_buf_printf(o, ", "), dump_expr(k, x->b, o);
    if (x->c >= 0) dl_buf_printf(o, ", "), dump_expr(k, x->c, o);
    if (x->op == KX_KEEP) dl_buf_printf(o, ", p=%.9g", x->f);
    dl_buf_printf(o, ")");
}

static void dump_block(const KirKernel *k, int blk, int depth, DlBuf *o)
{
    const KirBlock *b = &k->blocks.a[blk];
    for (int i = 0; i < b->n; i++) {
        const KirStmt *s = &k->st.a[b->s[i]];
        dl_buf_printf(o, "%*s", 2 * depth, "");
        const char *vn = s->var >= 0 ? k->vars.a[s->var].name : "";
        const char *op = s->accum ? "+=" : "=";
        switch ((KirStmtOp)s->op) {
        case KS_DECL:
            if (k->vars.a[s->var].len > 0)
                dl_buf_printf(o, "%s%s %s[%d]\n", k->vars.a[s->var].kind == KV_SHARED ? "shared " : "",
                              kir_type_name((KirType)k->vars.a[s->var].type), vn, k->vars.a[s->var].len);
            else {
                dl_buf_printf(o, "%s %s = ", kir_type_name((KirType)k->vars.a[s->var].type), vn);
                dump_expr(k, s->val, o);
                dl_buf_printf(o, "\n");
            }
            break;
        case KS_ASSIGN:
            dl_buf_printf(o, "%s %s ", vn, op); dump_expr(k, s->val, o); dl_buf_printf(o, "\n");
            break;
        case KS_STORE: case KS_STOREL:
            if (s->op == KS_STORE) dl_buf_printf(o, "store buf%d[", s->buf);
            else dl_buf_printf(o, "store %s[", vn);
            dump_expr(k, s->idx, o);
            dl_buf_printf(o, "] %s ", op);
            dump_expr(k, s->val, o);
            dl_buf_printf(o, "\n");
            break;
        case KS_LOOP:
            dl_buf_printf(o, "loop %s in [", vn);
            dump_expr(k, s->lo, o); dl_buf_printf(o, ", "); dump_expr(k, s->hi, o);
            dl_buf_printf(o, "):\n");
            dump_block(k, s->body, depth + 1, o);
            break;
        case KS_IF:
            dl_buf_printf(o, "if "); dump_expr(k, s->cond, o); dl_buf_printf(o, ":\n");
            dump_block(k, s->body, depth + 1, o);
            break;
        case KS_BARRIER: dl_buf_printf(o, "barrier\n"); break;
        }
    }
}

void kir_dump(const KirKernel *k, DlBuf *out)
{
    dump_block(k, k->body, 2, out);
}
