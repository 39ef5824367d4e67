/* kir_io.c - the kernel IR as bytes in a plan, and the structural checks that
 * make a decoded kernel safe to render (codegen/kir.h).
 *
 * A plan from someone else is untrusted, so decoding trusts nothing: every
 * count is bounded, every index is checked, operands precede their users (an
 * expression graph without cycles), every type is re-derived from the
 * operands' types by the rules of the builders in kir.c, variable names and
 * buffer labels are restricted to characters that cannot leave a C identifier
 * or comment.  What remains is a kernel the renderer turns into C that means
 * exactly what the IR says; kir_prove then proves it stays inside its buffers.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kir.h"

#define KIR_MAX_BUFS 16
#define KIR_MAX_LABEL 256
#define KIR_MAX_NUMEL (INT64_C(1) << 40)

/* ---- encoding ------------------------------------------------------------ */

static void put_u8(DlBuf *b, unsigned v) { dl_buf_put_le(b, v, 1); }
static void put_u32(DlBuf *b, uint32_t v) { dl_buf_put_le(b, v, 4); }
static void put_u64(DlBuf *b, uint64_t v) { dl_buf_put_le(b, v, 8); }
static void put_i32(DlBuf *b, int32_t v) { put_u32(b, (uint32_t)v); }
static void put_f64(DlBuf *b, double f)
{
    uint64_t u;
    memcpy(&u, &f, 8);
    put_u64(b, u);
}
static void put_bytes(DlBuf *b, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    put_u32(b, (uint32_t)n);
    if (n) dl_buf_put(b, s, n);
}

void kir_encode(const KirKernel *k, DlBuf *b)
{
    put_u8(b, KIR_FORMAT);
    put_u64(b, (uint64_t)k->grid);
    put_i32(b, k->block);
    put_u32(b, (uint32_t)k->nbufs);
    for (int i = 0; i < k->nbufs; i++) {
        put_u64(b, (uint64_t)k->bufs[i].numel);
        put_u8(b, k->bufs[i].written != 0);
        put_bytes(b, k->bufs[i].label);
    }
    put_u32(b, (uint32_t)k->ex.n);
    for (size_t i = 0; i < k->ex.n; i++) {
        const KirExpr *x = &k->ex.a[i];
        put_u8(b, x->op), put_u8(b, x->type);
        put_i32(b, x->a), put_i32(b, x->b), put_i32(b, x->c), put_i32(b, x->buf), put_i32(b, x->var);
        put_u64(b, (uint64_t)x->i);
        put_f64(b, x->f);
    }
    put_u32(b, (uint32_t)k->vars.n);
    for (size_t i = 0; i < k->vars.n; i++) {
        const KirVar *v = &k->vars.a[i];
        put_bytes(b, v->name);
        put_u8(b, v->type);
        put_u8(b, v->kind);
        put_i32(b, v->len);
    }
    put_u32(b, (uint32_t)k->st.n);
    for (size_t i = 0; i < k->st.n; i++) {
        const KirStmt *s = &k->st.a[i];
        put_u8(b, s->op), put_u8(b, s->accum);
        put_i32(b, s->var), put_i32(b, s->buf), put_i32(b, s->idx), put_i32(b, s->val);
        put_i32(b, s->lo), put_i32(b, s->hi), put_i32(b, s->cond), put_i32(b, s->body);
    }
    put_u32(b, (uint32_t)k->blocks.n);
    for (size_t i = 0; i < k->blocks.n; i++) {
        put_u32(b, (uint32_t)k->blocks.a[i].n);
        for (int j = 0; j < k->blocks.a[i].n; j++) put_i32(b, k->blocks.a[i].s[j]);
    }
    put_i32(b, k->body);
}

/* ---- decoding ------------------------------------------------------------ */

typedef struct Rd {
    const uint8_t *p;
    size_t n, at;
    int bad;
} Rd;

static uint64_t get_n(Rd *r, int bytes)
{
    if (r->bad || r->n - r->at < (size_t)bytes) {
        r->bad = 1;
        return 0;
    }
    uint64_t v = 0;
    for (int i = 0; i < bytes; i++) v |= (uint64_t)r->p[r->at + i] << (8 * i);
    r->at += (size_t)bytes;
    return v;
}
static unsigned get_u8(Rd *r) { return (unsigned)get_n(r, 1); }
static uint32_t get_u32(Rd *r) { return (uint32_t)get_n(r, 4); }
static int32_t get_i32(Rd *r) { return (int32_t)get_u32(r); }
static int64_t get_i64(Rd *r) { return (int64_t)get_n(r, 8); }
static double get_f64(Rd *r)
{
    uint64_t u = get_n(r, 8);
    double f;
    memcpy(&f, &u, 8);
    return f;
}
/* A count of items of at least min bytes each, at most max. */
static int get_count(Rd *r, size_t min, int max)
{
    uint32_t c = get_u32(r);
    if (r->bad || c > (uint32_t)max || (uint64_t)c * min > r->n - r->at) {
        r->bad = 1;
        return 0;
    }
    return (int)c;
}
/* Bytes of a string of at most max characters, as a malloc'd C string. */
static char *get_str(Rd *r, uint32_t max)
{
    uint32_t c = get_u32(r);
    if (r->bad || c > max || c > r->n - r->at) {
        r->bad = 1;
        return dl_xstrdup("");
    }
    char *s = dl_xstrndup((const char *)r->p + r->at, c);
    r->at += c;
    return s;
}

static int is_float(int t) { return t == KT_F32 || t == KT_F64; }

/* The type op gives to operands of types ta, tb, tc (-1: absent), by the rules
 * of kir.c's builders, or -1 when they break them. */
static int result_type(int op, int ta, int tb, int tc, int stored)
{
    int num = (is_float(ta) && is_float(tb)) || (ta == KT_I64 && tb == KT_I64);
    switch ((KirOp)op) {
    case KX_NEG: return ta >= 0 && ta != KT_BOOL ? ta : -1;
    case KX_EXP: case KX_LOG: case KX_SQRT: return is_float(ta) ? ta : -1;
    case KX_RSQRT: case KX_ABS: case KX_SIGN: return ta == KT_F32 ? KT_F32 : -1;
    case KX_TOF32: return ta >= 0 && ta != KT_F32 ? KT_F32 : -1;
    case KX_TOF64: return ta >= 0 && ta != KT_F64 ? KT_F64 : -1;
    case KX_TOI64: return ta >= 0 && ta != KT_I64 ? KT_I64 : -1;
    case KX_NOT: return ta == KT_BOOL ? KT_BOOL : -1;
    case KX_ADD: case KX_SUB: case KX_MUL: case KX_DIV: case KX_MIN: case KX_MAX:
        if (!num) return -1;
        return ta == KT_I64 ? KT_I64 : (ta == KT_F64 || tb == KT_F64) ? KT_F64 : KT_F32;
    case KX_MOD: return ta == KT_I64 && tb == KT_I64 ? KT_I64 : -1;
    case KX_LT: case KX_LE: case KX_GT: case KX_GE: case KX_EQ: case KX_NE: return num ? KT_BOOL : -1;
    case KX_AND: case KX_OR: return ta == KT_BOOL && tb == KT_BOOL ? KT_BOOL : -1;
    case KX_SELECT: return ta == KT_BOOL && tb >= 0 && tb == tc ? tb : -1;
    case KX_KEEP: return ta == KT_F32 && tb == KT_F32 && tc == KT_I64 ? KT_BOOL : -1;
    case KX_CONST: return stored;
    default: return -1;
    }
}

/* Operands each op reads (a, b, c), or -1 for the leaves handled apart. */
static int arity(int op)
{
    switch ((KirOp)op) {
    case KX_CONST: case KX_VAR: case KX_GID: case KX_TID: return 0;
    case KX_LOAD: case KX_LOADL: return 1;
    case KX_NEG: case KX_EXP: case KX_LOG: case KX_SQRT: case KX_RSQRT: case KX_ABS: case KX_SIGN:
    case KX_TOF32: case KX_TOF64: case KX_TOI64: case KX_NOT: return 1;
    case KX_SELECT: case KX_KEEP: return 3;
    case KX_COUNT: return -1;
    default: return 2;
    }
}

static int fail(char **why, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(char **why, const char *fmt, ...)
{
    if (!*why) {
        char tmp[512];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(tmp, sizeof tmp, fmt, ap);
        va_end(ap);
        *why = dl_xstrdup(tmp);
    }
    return -1;
}

/* Variable names render as C identifiers next to buf<i>, gid and the
 * prelude's dl_ names: 1 to 12 lowercase letters then 1 to 7 digits, not
 * starting with "buf" or "dl", unique. */
static int name_ok(const char *s)
{
    int l = 0, d = 0;
    while (s[l] >= 'a' && s[l] <= 'z') l++;
    while (s[l + d] >= '0' && s[l + d] <= '9') d++;
    if (l < 1 || l > 12 || d < 1 || d > 7 || s[l + d]) return 0;
    return strncmp(s, "buf", 3) != 0 && strncmp(s, "dl", 2) != 0;
}
static int cmp_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int label_ok(const char *s)
{
    for (; *s; s++)
        if (*s < 0x20 || *s > 0x7e || (s[0] == '*' && s[1] == '/') || (s[0] == '/' && s[1] == '*')) return 0;
    return 1;
}

/* Walk the blocks from the root: each reachable once, nesting bounded. */
static int walk_blocks(const KirKernel *k, int blk, int depth, uint8_t *seen, char **why)
{
    if (depth > KIR_MAX_NEST) return fail(why, "loops and ifs nested deeper than %d", KIR_MAX_NEST);
    if (seen[blk]) return fail(why, "block %d is used twice", blk);
    seen[blk] = 1;
    const KirBlock *b = &k->blocks.a[blk];
    for (int i = 0; i < b->n; i++) {
        const KirStmt *s = &k->st.a[b->s[i]];
        if ((s->op == KS_LOOP || s->op == KS_IF) && walk_blocks(k, s->body, depth + 1, seen, why)) return -1;
    }
    return 0;
}

static int check_struct(KirKernel *k, char **why)
{
    if (k->grid < 1 || k->grid > KIR_MAX_NUMEL) return fail(why, "grid %lld out of range", (long long)k->grid);
    if (k->block < 0 || k->block > KIR_MAX_BLOCK)
        return fail(why, "%d threads per block, outside [0, %d]", (int)k->block, KIR_MAX_BLOCK);
    for (int i = 0; i < k->nbufs; i++) {
        const KirBuf *b = &k->bufs[i];
        if (b->numel < 1 || b->numel > KIR_MAX_NUMEL) return fail(why, "buffer %d: %lld elements", i, (long long)b->numel);
        if (!label_ok(b->label)) return fail(why, "buffer %d: label with characters a comment cannot hold", i);
    }
    int nex = (int)k->ex.n, nvars = (int)k->vars.n, nst = (int)k->st.n, nblk = (int)k->blocks.n;
    int64_t local = 0;
    for (int v = 0; v < nvars; v++) {
        const KirVar *x = &k->vars.a[v];
        if (!name_ok(x->name)) return fail(why, "variable %d: name '%.24s' is not letters then digits", v, x->name);
        if (x->type > KT_BOOL) return fail(why, "variable %s: bad type %d", x->name, x->type);
        if (x->kind == KV_SHARED) { /* sizes checked by kir_verify */
            if (k->block == 0 || x->len < 1 || !is_float(x->type))
                return fail(why, "variable %s: a shared array must be f32 or f64, in a GPU kernel", x->name);
            continue;
        }
        if (x->kind != KV_LOCAL) return fail(why, "variable %s: bad kind %d", x->name, x->kind);
        if (x->len < 0 || x->len > KIR_MAX_LOCAL || (x->len > 0 && x->type != KT_F32))
            return fail(why, "variable %s: bad array length %d", x->name, x->len);
        local += x->len;
    }
    if (local > KIR_MAX_LOCAL)
        return fail(why, "local arrays of %lld floats per work item (at most %d)", (long long)local, KIR_MAX_LOCAL);
    if (nvars > 1) {
        char **names = dl_xmalloc((size_t)nvars * sizeof *names);
        for (int v = 0; v < nvars; v++) names[v] = k->vars.a[v].name;
        qsort(names, (size_t)nvars, sizeof *names, cmp_name);
        int dup = -1;
        for (int v = 1; v < nvars && dup < 0; v++)
            if (strcmp(names[v - 1], names[v]) == 0) dup = v;
        if (dup >= 0) fail(why, "variable name '%s' used twice", names[dup]);
        free(names);
        if (dup >= 0) return -1;
    }
    /* expressions: operands first, types re-derived, depth bounded */
    uint16_t *depth = dl_xcalloc((size_t)nex, sizeof *depth);
    int rc = 0;
    for (int e = 0; e < nex && rc == 0; e++) {
        KirExpr *x = &k->ex.a[e];
        int n = arity(x->op);
        if (n < 0 || x->type > KT_BOOL) {
            rc = fail(why, "expression %d: bad op %d or type %d", e, x->op, x->type);
            break;
        }
        int32_t ops[3] = {x->a, x->b, x->c};
        int t[3] = {-1, -1, -1}, d = 0;
        for (int j = 0; j < 3; j++) {
            if (j >= n) {
                if (ops[j] != -1) rc = fail(why, "expression %d: extra operand", e);
                continue;
            }
            if (ops[j] < 0 || ops[j] >= e) {
                rc = fail(why, "expression %d: operand %d is not an earlier expression", e, (int)ops[j]);
                continue;
            }
            t[j] = k->ex.a[ops[j]].type;
            if (depth[ops[j]] > d) d = depth[ops[j]];
        }
        if (rc) break;
        depth[e] = (uint16_t)(d + 1);
        if (d + 1 > KIR_MAX_DEPTH) {
            rc = fail(why, "expression %d nested deeper than %d", e, KIR_MAX_DEPTH);
            break;
        }
        int want_buf = x->op == KX_LOAD, want_var = x->op == KX_VAR || x->op == KX_LOADL;
        if (want_buf ? x->buf < 0 || x->buf >= k->nbufs : x->buf != -1)
            rc = fail(why, "expression %d: bad buffer %d", e, (int)x->buf);
        else if (want_var ? x->var < 0 || x->var >= nvars : x->var != -1)
            rc = fail(why, "expression %d: bad variable %d", e, (int)x->var);
        if (rc) break;
        int rt;
        switch ((KirOp)x->op) {
        case KX_CONST:
            rt = x->type;
            if ((rt == KT_BOOL && x->i != 0 && x->i != 1) || (rt != KT_I64 && rt != KT_BOOL && x->i != 0) ||
                (!is_float(rt) && x->f != 0))
                rt = -1;
            break;
        case KX_VAR: rt = k->vars.a[x->var].len == 0 ? k->vars.a[x->var].type : -1; break;
        case KX_GID: rt = KT_I64; break;
        case KX_TID: rt = k->block > 0 ? KT_I64 : -1; break;
        case KX_LOAD: rt = t[0] == KT_I64 ? KT_F32 : -1; break;
        case KX_LOADL: rt = t[0] == KT_I64 && k->vars.a[x->var].len > 0 ? k->vars.a[x->var].type : -1; break;
        default: rt = result_type(x->op, t[0], t[1], t[2], x->type); break;
        }
        if (x->op == KX_KEEP && !(x->f >= 0 && x->f <= 1)) rt = -1;
        if (x->op != KX_CONST && x->op != KX_KEEP && (x->i != 0 || x->f != 0)) rt = -1;
        if (rt != x->type) rc = fail(why, "expression %d: type %s breaks the rules of its operands", e,
                                     kir_type_name((KirType)x->type));
    }
    free(depth);
    if (rc) return rc;
    /* statements: the fields each kind uses are checked, the others reset to -1 */
    uint8_t *decl = dl_xcalloc((size_t)nvars + 1, 1);
    for (int i = 0; i < nst && rc == 0; i++) {
        KirStmt *s = &k->st.a[i];
        const KirVar *v = s->var >= 0 && s->var < nvars ? &k->vars.a[s->var] : NULL;
#define EXPR_T(f) ((f) >= 0 && (f) < nex ? k->ex.a[(f)].type : -1)
        int ok = s->accum <= 1;
        KirStmt u = {.op = s->op, .accum = s->accum, .var = -1, .buf = -1, .idx = -1, .val = -1, .lo = -1,
                     .hi = -1, .cond = -1, .body = -1};
        switch ((KirStmtOp)s->op) {
        case KS_DECL:
            ok = ok && v && !s->accum && (v->len > 0 ? s->val == -1 : EXPR_T(s->val) == v->type);
            u.var = s->var, u.val = s->val;
            break;
        case KS_ASSIGN:
            ok = ok && v && v->len == 0 && EXPR_T(s->val) == v->type && (!s->accum || v->type != KT_BOOL);
            u.var = s->var, u.val = s->val;
            break;
        case KS_STORE:
            ok = ok && s->buf >= 0 && s->buf < k->nbufs && EXPR_T(s->idx) == KT_I64 && EXPR_T(s->val) == KT_F32;
            u.buf = s->buf, u.idx = s->idx, u.val = s->val;
            break;
        case KS_STOREL:
            ok = ok && v && v->len > 0 && EXPR_T(s->idx) == KT_I64 && EXPR_T(s->val) == v->type;
            u.var = s->var, u.idx = s->idx, u.val = s->val;
            break;
        case KS_LOOP:
            ok = ok && !s->accum && v && v->len == 0 && v->type == KT_I64 && EXPR_T(s->lo) == KT_I64 &&
                 EXPR_T(s->hi) == KT_I64 && s->body > 0 && s->body < nblk;
            u.var = s->var, u.lo = s->lo, u.hi = s->hi, u.body = s->body;
            break;
        case KS_IF:
            ok = ok && !s->accum && EXPR_T(s->cond) == KT_BOOL && s->body > 0 && s->body < nblk;
            u.cond = s->cond, u.body = s->body;
            break;
        case KS_BARRIER: /* placement (the root block) checked by kir_verify */
            ok = ok && !s->accum && k->block > 0;
            break;
        default: ok = 0; break;
        }
#undef EXPR_T
        if (!ok) {
            rc = fail(why, "statement %d: bad operands for its kind %d", i, s->op);
            break;
        }
        *s = u;
        if (s->op == KS_DECL || s->op == KS_LOOP) {
            if (decl[s->var]) {
                rc = fail(why, "statement %d: variable %s declared twice", i, v->name);
                break;
            }
            decl[s->var] = 1;
        }
    }
    free(decl);
    if (rc) return rc;
    /* blocks: statements in range and each in one place; the root is no body */
    uint8_t *used = dl_xcalloc((size_t)nst + 1, 1);
    for (int b = 0; b < nblk && rc == 0; b++)
        for (int j = 0; j < k->blocks.a[b].n; j++) {
            int32_t s = k->blocks.a[b].s[j];
            if (s < 0 || s >= nst || used[s]) {
                rc = fail(why, "block %d: statement %d out of range or used twice", b, (int)s);
                break;
            }
            used[s] = 1;
        }
    free(used);
    if (rc) return rc;
    if (k->body != 0) return fail(why, "the root block is %d, not 0", k->body);
    uint8_t *seen = dl_xcalloc((size_t)nblk + 1, 1);
    rc = walk_blocks(k, 0, 0, seen, why);
    free(seen);
    if (rc) return rc;
    if (kir_verify(k)) return fail(why, "%s", k->err ? k->err : "scopes");
    return 0;
}

int kir_decode(const uint8_t *p, size_t n, const char *name, KirKernel *k, char **why)
{
    *why = NULL;
    memset(k, 0, sizeof *k);
    k->name = dl_xstrdup(name);
    Rd r = {p, n, 0, 0};
    unsigned fmt = get_u8(&r);
    if (!r.bad && fmt != KIR_FORMAT) return fail(why, "kernel IR format %u (this dldlrun reads %d)", fmt, KIR_FORMAT);
    k->grid = get_i64(&r);
    k->block = get_i32(&r);
    k->nbufs = get_count(&r, 13, KIR_MAX_BUFS);
    k->bufs = dl_xcalloc((size_t)k->nbufs + 1, sizeof *k->bufs);
    k->bufcap = k->nbufs + 1;
    for (int i = 0; i < k->nbufs; i++) {
        k->bufs[i].numel = get_i64(&r);
        k->bufs[i].written = (int)get_u8(&r);
        k->bufs[i].label = get_str(&r, KIR_MAX_LABEL);
        if (k->bufs[i].written > 1) r.bad = 1;
    }
    int nex = get_count(&r, 38, KIR_MAX_EXPRS);
    k->ex.a = dl_xcalloc((size_t)nex + 1, sizeof *k->ex.a);
    k->ex.n = k->ex.cap = (size_t)nex;
    for (int i = 0; i < nex; i++) {
        KirExpr *x = &k->ex.a[i];
        x->op = (uint8_t)get_u8(&r), x->type = (uint8_t)get_u8(&r);
        x->a = get_i32(&r), x->b = get_i32(&r), x->c = get_i32(&r), x->buf = get_i32(&r), x->var = get_i32(&r);
        x->i = get_i64(&r);
        x->f = get_f64(&r);
    }
    int nvars = get_count(&r, 10, KIR_MAX_VARS);
    k->vars.a = dl_xcalloc((size_t)nvars + 1, sizeof *k->vars.a);
    k->vars.n = k->vars.cap = (size_t)nvars;
    for (int i = 0; i < nvars; i++) {
        KirVar *v = &k->vars.a[i];
        char *nm = get_str(&r, sizeof v->name - 1);
        memcpy(v->name, nm, strlen(nm) + 1);
        free(nm);
        v->role = "";
        v->type = (uint8_t)get_u8(&r);
        v->kind = (uint8_t)get_u8(&r);
        v->len = get_i32(&r);
    }
    int nst = get_count(&r, 34, KIR_MAX_STMTS);
    k->st.a = dl_xcalloc((size_t)nst + 1, sizeof *k->st.a);
    k->st.n = k->st.cap = (size_t)nst;
    for (int i = 0; i < nst; i++) {
        KirStmt *s = &k->st.a[i];
        s->op = (uint8_t)get_u8(&r), s->accum = (uint8_t)get_u8(&r);
        s->var = get_i32(&r), s->buf = get_i32(&r), s->idx = get_i32(&r), s->val = get_i32(&r);
        s->lo = get_i32(&r), s->hi = get_i32(&r), s->cond = get_i32(&r), s->body = get_i32(&r);
    }
    int nblk = get_count(&r, 4, KIR_MAX_BLOCKS);
    k->blocks.a = dl_xcalloc((size_t)nblk + 1, sizeof *k->blocks.a);
    k->blocks.n = k->blocks.cap = (size_t)nblk;
    for (int i = 0; i < nblk && !r.bad; i++) {
        KirBlock *b = &k->blocks.a[i];
        b->n = b->cap = get_count(&r, 4, KIR_MAX_STMTS);
        b->s = dl_xcalloc((size_t)b->n + 1, sizeof *b->s);
        for (int j = 0; j < b->n; j++) b->s[j] = get_i32(&r);
    }
    k->body = get_i32(&r);
    if (r.bad) return fail(why, "kernel IR truncated or with a count out of bounds");
    if (r.at != r.n) return fail(why, "%zu bytes after the kernel IR", r.n - r.at);
    if (nblk < 1) return fail(why, "no blocks");
    return check_struct(k, why);
}
