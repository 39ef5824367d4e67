/* render.c - the kernel IR as the body text shared by the C and the CUDA
 * module.  Only the prelude's macros and helpers are used (DL_KERNEL,
 * DL_FOR_GID, DL_RESTRICT, DL_EXP, ..., dl_fmax, dl_keep: codegen/prelude.c),
 * so the very same text compiles as C11 and as CUDA C.
 *
 * A kernel with a GPU schedule (KirKernel.block > 0, only ever in the CUDA
 * module) loops over work items with DL_FOR_BLOCK, one CUDA block per work
 * item, and uses DL_SHARED and DL_BARRIER.
 *
 *   DL_KERNEL(train_k3_bn_apply_relu) {
 *       const float *DL_RESTRICT buf0 = dl_b[0]; // %12 c1.y [64,32,64,64]
 *       float *DL_RESTRICT buf4 = dl_b[4];       // %14 c1.z [64,32,64,64]
 *       DL_FOR_GID(gid) {
 *           int64_t c0 = (gid % 32);
 *           ...
 *       }
 *   }
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "kir.h"

static const char *c_type(int t)
{
    switch ((KirType)t) {
    case KT_F32: return "float";
    case KT_F64: return "double";
    case KT_I64: return "int64_t";
    case KT_BOOL: return "int";
    }
    return "?";
}

static void render_fconst(double f, int is_f64, DlBuf *o)
{
    if (isinf(f)) {
        dl_buf_printf(o, f < 0 ? "(-DL_INF)" : "DL_INF");
        return;
    }
    if (isnan(f)) {
        dl_buf_printf(o, "DL_NAN");
        return;
    }
    char s[48];
    snprintf(s, sizeof s, is_f64 ? "%.17g" : "%.9g", f);
    if (!strpbrk(s, ".e")) strcat(s, ".0");
    dl_buf_printf(o, f < 0 ? "(%s%s)" : "%s%s", s, is_f64 ? "" : "f");
}

static void render_expr(const KirKernel *k, int e, int top, DlBuf *o);

static void call1(const KirKernel *k, const char *fn, int a, DlBuf *o)
{
    dl_buf_printf(o, "%s(", fn);
    render_expr(k, a, 1, o);
    dl_buf_printf(o, ")");
}

static void call2(const KirKernel *k, const char *fn, int a, int b, DlBuf *o)
{
    dl_buf_printf(o, "%s(", fn);
    render_expr(k, a, 1, o);
    dl_buf_printf(o, ", ");
    render_expr(k, b, 1, o);
    dl_buf_printf(o, ")");
}

static void render_expr(const KirKernel *k, int e, int top, DlBuf *o)
{
    const KirExpr *x = &k->ex.a[e];
    const char *bop = NULL;
    switch ((KirOp)x->op) {
    case KX_CONST:
        if (x->type == KT_F32 || x->type == KT_F64) render_fconst(x->f, x->type == KT_F64, o);
        else if (x->i < 0) dl_buf_printf(o, "(%lldLL)", (long long)x->i);
        else if (x->i > INT32_MAX) dl_buf_printf(o, "%lldLL", (long long)x->i);
        else dl_buf_printf(o, "%lld", (long long)x->i);
        return;
    case KX_VAR: dl_buf_printf(o, "%s", k->vars.a[x->var].name); return;
    case KX_GID: dl_buf_printf(o, "gid"); return;
    case KX_TID: dl_buf_printf(o, "tid"); return;
    case KX_LOAD:
        dl_buf_printf(o, "buf%d[", x->buf);
        render_expr(k, x->a, 1, o);
        dl_buf_printf(o, "]");
        return;
    case KX_LOADL:
        dl_buf_printf(o, "%s[", k->vars.a[x->var].name);
        render_expr(k, x->a, 1, o);
        dl_buf_printf(o, "]");
        return;
    case KX_NEG: dl_buf_printf(o, "(-"); render_expr(k, x->a, 0, o); dl_buf_printf(o, ")"); return;
    case KX_NOT: dl_buf_printf(o, "(!"); render_expr(k, x->a, 0, o); dl_buf_printf(o, ")"); return;
    /* f64: C's and CUDA's double functions, the same name in both modules */
    case KX_EXP: call1(k, x->type == KT_F64 ? "exp" : "DL_EXP", x->a, o); return;
    case KX_LOG: call1(k, x->type == KT_F64 ? "log" : "DL_LOG", x->a, o); return;
    case KX_SQRT: call1(k, x->type == KT_F64 ? "sqrt" : "DL_SQRT", x->a, o); return;
    case KX_RSQRT: call1(k, "DL_RSQRT", x->a, o); return;
    case KX_ABS: call1(k, "DL_FABS", x->a, o); return;
    case KX_SIGN: call1(k, "dl_fsign", x->a, o); return;
    case KX_TOF32: call1(k, "(float)", x->a, o); return;
    case KX_TOF64: call1(k, "(double)", x->a, o); return;
    case KX_TOI64: call1(k, "(int64_t)", x->a, o); return;
    case KX_MIN:
    case KX_MAX: {
        static const char *const fn[2][3] = {{"dl_fmin", "dl_dmin", "dl_imin"},
                                             {"dl_fmax", "dl_dmax", "dl_imax"}};
        int t = x->type == KT_F32 ? 0 : x->type == KT_F64 ? 1 : 2;
        call2(k, fn[x->op == KX_MAX][t], x->a, x->b, o);
        return;
    }
    case KX_SELECT:
        if (!top) dl_buf_printf(o, "(");
        render_expr(k, x->a, 0, o);
        dl_buf_printf(o, " ? ");
        render_expr(k, x->b, 0, o);
        dl_buf_printf(o, " : ");
        render_expr(k, x->c, 0, o);
        if (!top) dl_buf_printf(o, ")");
        return;
    case KX_KEEP:
        dl_buf_printf(o, "dl_keep(");
        render_expr(k, x->a, 1, o);
        dl_buf_printf(o, ", ");
        render_expr(k, x->b, 1, o);
        dl_buf_printf(o, ", ");
        render_expr(k, x->c, 1, o);
        dl_buf_printf(o, ", ");
        render_fconst(x->f, 0, o);
        dl_buf_printf(o, ")");
        return;
    case KX_ADD: bop = "+"; break;
    case KX_SUB: bop = "-"; break;
    case KX_MUL: bop = "*"; break;
    case KX_DIV: bop = "/"; break;
    case KX_MOD: bop = "%"; break;
    case KX_LT: bop = "<"; break;
    case KX_LE: bop = "<="; break;
    case KX_GT: bop = ">"; break;
    case KX_GE: bop = ">="; break;
    case KX_EQ: bop = "=="; break;
    case KX_NE: bop = "!="; break;
    case KX_AND: bop = "&&"; break;
    case KX_OR: bop = "||"; break;
    case KX_COUNT: break;
    }
    if (!bop) {
        dl_buf_printf(o, "/* bad op %d */0", x->op);
        return;
    }
    if (!top) dl_buf_printf(o, "(");
    render_expr(k, x->a, 0, o);
    dl_buf_printf(o, " %s ", bop);
    render_expr(k, x->b, 0, o);
    if (!top) dl_buf_printf(o, ")");
}

static void indent(int d, DlBuf *o) { dl_buf_printf(o, "%*s", 4 * d, ""); }

static void render_block(const KirKernel *k, int blk, int d, DlBuf *o)
{
    const KirBlock *b = &k->blocks.a[blk];
    for (int i = 0; i < b->n; i++) {
        const KirStmt *s = &k->st.a[b->s[i]];
        const KirVar *v = s->var >= 0 ? &k->vars.a[s->var] : NULL;
        const char *op = s->accum ? "+=" : "=";
        indent(d, o);
        switch ((KirStmtOp)s->op) {
        case KS_DECL:
            if (v->kind == KV_SHARED) {
                dl_buf_printf(o, "DL_SHARED(%s, %s, %d);\n", c_type(v->type), v->name, v->len);
                break;
            }
            if (v->len > 0) {
                dl_buf_printf(o, "float %s[%d];\n", v->name, v->len);
                break;
            }
            dl_buf_printf(o, "%s %s = ", c_type(v->type), v->name);
            render_expr(k, s->val, 1, o);
            dl_buf_printf(o, ";\n");
            break;
        case KS_ASSIGN:
            dl_buf_printf(o, "%s %s ", v->name, op);
            render_expr(k, s->val, 1, o);
            dl_buf_printf(o, ";\n");
            break;
        case KS_STORE:
        case KS_STOREL:
            if (s->op == KS_STORE) dl_buf_printf(o, "buf%d[", s->buf);
            else dl_buf_printf(o, "%s[", v->name);
            render_expr(k, s->idx, 1, o);
            dl_buf_printf(o, "] %s ", op);
            render_expr(k, s->val, 1, o);
            dl_buf_printf(o, ";\n");
            break;
        case KS_LOOP:
            dl_buf_printf(o, "for (int64_t %s = ", v->name);
            render_expr(k, s->lo, 1, o);
            dl_buf_printf(o, "; %s < ", v->name);
            render_expr(k, s->hi, 0, o);
            dl_buf_printf(o, "; %s++) {\n", v->name);
            render_block(k, s->body, d + 1, o);
            indent(d, o);
            dl_buf_printf(o, "}\n");
            break;
        case KS_IF:
            dl_buf_printf(o, "if (");
            render_expr(k, s->cond, 1, o);
            dl_buf_printf(o, ") {\n");
            render_block(k, s->body, d + 1, o);
            indent(d, o);
            dl_buf_printf(o, "}\n");
            break;
        case KS_BARRIER: dl_buf_printf(o, "DL_BARRIER();\n"); break;
        }
    }
}

void kir_render(const KirKernel *k, DlBuf *out)
{
    dl_buf_printf(out, "DL_KERNEL(%s) {\n", k->name);
    for (int i = 0; i < k->nbufs; i++) {
        dl_buf_printf(out, "    %sfloat *DL_RESTRICT buf%d = dl_b[%d];", k->bufs[i].written ? "" : "const ", i, i);
        /* labels come from node names (identifiers and dots); keep comments closed anyway */
        dl_buf_printf(out, " /* ");
        for (const char *p = k->bufs[i].label; p && *p; p++) {
            if (p[0] == '*' && p[1] == '/') dl_buf_put(out, "*_", 2), p++;
            else dl_buf_put(out, p, 1);
        }
        dl_buf_printf(out, " */\n");
    }
    /* flat: each thread takes work items; GPU schedule: each block takes work
     * items, its threads (tid) share the work item (CUDA prelude only) */
    if (k->block > 0) dl_buf_printf(out, "    DL_FOR_BLOCK(gid, tid, %d) {\n", k->block);
    else dl_buf_printf(out, "    DL_FOR_GID(gid) {\n");
    render_block(k, k->body, 2, out);
    dl_buf_printf(out, "    }\n}\n\n");
}
