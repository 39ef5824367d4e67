/* ast.c - AST constructors for the grammar actions, and the AST dump.
 *
 * Every node is allocated from the DlPool given to dl_parse (ast.h); lists
 * grow in the pool while they are parsed and are copied into the exact-size
 * arrays of ast.h when their node is built.
 */
#include "astbuild.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- lists ---------------------------------------------------------- */

DlPtrList *dl_list_new(DlParseCtx *c) { return dl_pool_alloc(c->pool, sizeof(DlPtrList)); }

void dl_list_push(DlParseCtx *c, DlPtrList *l, void *x)
{
    if (l->n == l->cap) { /* the old array stays in the pool: at most 2x waste */
        int cap = l->cap ? 2 * l->cap : 4;
        void **a = dl_pool_alloc(c->pool, (size_t)cap * sizeof *a);
        if (l->n) memcpy(a, l->a, (size_t)l->n * sizeof *a);
        l->a = a;
        l->cap = cap;
    }
    l->a[l->n++] = x;
}

/* ---- expressions ---------------------------------------------------- */

static AstExpr *new_expr(DlParseCtx *c, AstExprKind kind, DlSrcLoc loc)
{
    AstExpr *e = dl_pool_alloc(c->pool, sizeof *e);
    e->kind = kind;
    e->loc = loc;
    e->depth = 1;
    return e;
}

/* Set e's nesting depth (ast.h); past DL_AST_MAX_DEPTH it is an error, said
 * once per item (the enclosing expressions are deeper still). */
static void set_depth(DlParseCtx *c, AstExpr *e, int depth)
{
    e->depth = depth;
    if (depth > DL_AST_MAX_DEPTH && !c->deep_reported) {
        dl_error(c->diag, e->loc, "expression nested deeper than %d levels", DL_AST_MAX_DEPTH);
        c->deep_reported = 1;
    }
}

static int max_depth(int a, const AstExpr *e) { return e && e->depth > a ? e->depth : a; }

AstExpr *ast_new_num(DlParseCtx *c, DlSrcLoc loc, DlNumLit n)
{
    AstExpr *e = new_expr(c, EX_NUM, loc);
    e->num = n.v;
    e->is_int = n.is_int;
    return e;
}

AstExpr *ast_new_str(DlParseCtx *c, DlSrcLoc loc, const char *s)
{
    AstExpr *e = new_expr(c, EX_STR, loc);
    e->name = s;
    return e;
}

AstExpr *ast_new_ident(DlParseCtx *c, DlSrcLoc loc, const char *name)
{
    AstExpr *e = new_expr(c, EX_IDENT, loc);
    e->name = name;
    return e;
}

AstExpr *ast_new_field(DlParseCtx *c, AstExpr *base, const char *name)
{
    AstExpr *e = new_expr(c, EX_FIELD, base->loc);
    e->a = base;
    e->name = name;
    e->depth = base->depth; /* a chain x.a.b.c is one level: passes walk it in a loop */
    return e;
}

/* Copy a pointer list into a pool array of n pointers. */
static AstExpr **expr_array(DlParseCtx *c, const DlPtrList *l, int *n)
{
    *n = l ? l->n : 0;
    if (!*n) return NULL;
    AstExpr **a = dl_pool_alloc(c->pool, (size_t)*n * sizeof *a);
    memcpy(a, l->a, (size_t)*n * sizeof *a);
    return a;
}

AstExpr *ast_new_call(DlParseCtx *c, DlSrcLoc loc, const char *name, AstArgs *args)
{
    AstExpr *e = new_expr(c, EX_CALL, loc);
    e->name = name;
    if (!args) return e;
    e->args = expr_array(c, &args->pos, &e->nargs);
    e->nkwargs = args->kw.n;
    if (e->nkwargs) {
        e->kwargs = dl_pool_alloc(c->pool, (size_t)e->nkwargs * sizeof *e->kwargs);
        for (int i = 0; i < e->nkwargs; i++) e->kwargs[i] = *(AstKwarg *)args->kw.a[i];
    }
    int d = 0;
    for (int i = 0; i < e->nargs; i++) d = max_depth(d, e->args[i]);
    for (int i = 0; i < e->nkwargs; i++) d = max_depth(d, e->kwargs[i].value);
    set_depth(c, e, d + 1);
    return e;
}

AstExpr *ast_new_list(DlParseCtx *c, DlSrcLoc loc, DlPtrList *elems)
{
    AstExpr *e = new_expr(c, EX_LIST, loc);
    e->args = expr_array(c, elems, &e->nargs);
    int d = 0;
    for (int i = 0; i < e->nargs; i++) d = max_depth(d, e->args[i]);
    set_depth(c, e, d + 1);
    return e;
}

AstExpr *ast_new_range(DlParseCtx *c, AstExpr *lo, AstExpr *hi, AstExpr *step)
{
    AstExpr *e = new_expr(c, EX_RANGE, lo->loc);
    e->a = lo, e->b = hi, e->c = step;
    set_depth(c, e, max_depth(max_depth(max_depth(0, lo), hi), step) + 1);
    return e;
}

AstExpr *ast_new_neg(DlParseCtx *c, DlSrcLoc loc, AstExpr *a)
{
    AstExpr *e = new_expr(c, EX_NEG, loc);
    e->a = a;
    set_depth(c, e, a->depth + 1);
    return e;
}

AstExpr *ast_new_binop(DlParseCtx *c, char op, AstExpr *a, AstExpr *b)
{
    AstExpr *e = new_expr(c, EX_BINOP, a->loc);
    e->op = op;
    e->a = a, e->b = b;
    set_depth(c, e, max_depth(b->depth + 1, a)); /* the left operand on this level: a + b + c ... */
    return e;
}

AstArgs *ast_args_add(DlParseCtx *c, AstArgs *args, const char *key, DlSrcLoc key_loc,
                      AstExpr *value)
{
    if (!args) args = dl_pool_alloc(c->pool, sizeof *args);
    if (key) {
        for (int i = 0; i < args->kw.n; i++) {
            AstKwarg *k = args->kw.a[i];
            if (strcmp(k->key, key) == 0) {
                dl_error(c->diag, key_loc, "keyword argument '%s' given twice", key);
                dl_note(c->diag, k->loc, "first given here");
                return args;
            }
        }
        AstKwarg *k = dl_pool_alloc(c->pool, sizeof *k);
        k->key = key, k->loc = key_loc, k->value = value;
        dl_list_push(c, &args->kw, k);
    } else if (args->kw.n) {
        dl_error(c->diag, key_loc, "positional argument after keyword argument");
        dl_note(c->diag, ((AstKwarg *)args->kw.a[0])->loc,
                "keyword arguments start here; positional ones must come first");
    } else {
        dl_list_push(c, &args->pos, value);
    }
    return args;
}

/* ---- items and declarations ----------------------------------------- */

AstItem *ast_new_item(DlParseCtx *c, const char *name, DlSrcLoc loc, AstExpr *value)
{
    AstItem *it = dl_pool_alloc(c->pool, sizeof *it);
    it->name = name, it->loc = loc, it->value = value;
    c->deep_reported = 0;
    return it;
}

AstParam *ast_new_param(DlParseCtx *c, const char *name, DlSrcLoc loc, AstExpr *value)
{
    AstParam *p = dl_pool_alloc(c->pool, sizeof *p);
    p->name = name, p->loc = loc, p->value = value;
    if (value) c->deep_reported = 0;
    return p;
}

const char *ast_decl_kind_name(AstDeclKind k)
{
    switch (k) {
    case AST_DATA: return "data";
    case AST_TARGET: return "target";
    case AST_BLOCK: return "block";
    case AST_NETWORK: return "network";
    case AST_LOSS: return "loss";
    case AST_OPTIMIZER: return "optimizer";
    case AST_TRAIN: return "train";
    case AST_METRICS: return "metrics";
    case AST_PARAMS: return "params";
    }
    return "?";
}

/* 'return' belongs in blocks and networks, once, as the last item.  A body
 * that had a syntax error is not checked (its return may be what broke). */
static void check_returns(DlParseCtx *c, const AstDecl *d)
{
    int wants = d->kind == AST_BLOCK || d->kind == AST_NETWORK;
    const char *kw = ast_decl_kind_name(d->kind);
    for (int i = 0; i < d->nitems; i++) {
        const AstItem *it = &d->items[i];
        if (it->name) continue;
        if (!wants) {
            dl_error(c->diag, it->loc, "'return' is only allowed in 'block' and 'network' bodies");
        } else if (i + 1 < d->nitems) {
            dl_error(c->diag, d->items[i + 1].loc, "nothing may follow 'return' in '%s %s'",
                     kw, d->name);
            return;
        }
    }
    if (wants && c->body_errors == dl_diag_errors(c->diag)
        && (d->nitems == 0 || d->items[d->nitems - 1].name))
        dl_error(c->diag, d->end_loc, "'%s %s' must end with 'return EXPR' (its output)", kw,
                 d->name);
}

typedef struct NameAt { const char *name; int i; } NameAt;

static int cmp_name_at(const void *a, const void *b)
{
    const NameAt *x = a, *y = b;
    int r = strcmp(x->name, y->name);
    return r ? r : (x->i > y->i) - (x->i < y->i);
}

static int cmp_pair(const void *a, const void *b)
{
    const int *x = a, *y = b;
    return (x[0] > y[0]) - (x[0] < y[0]);
}

/* A parameter named twice: "duplicate parameter 'x' in block 'f'" at the
 * second, with a note at the first, in source order.  Sorted by name, so a
 * declaration with thousands of parameters costs n log n. */
static void check_params(DlParseCtx *c, const AstDecl *d)
{
    int n = d->nparams, nd = 0;
    if (n < 2) return;
    NameAt *v = dl_xmalloc((size_t)n * sizeof *v);
    int (*dup)[2] = dl_xmalloc((size_t)n * sizeof *dup);
    for (int i = 0; i < n; i++) v[i] = (NameAt){d->params[i].name, i};
    qsort(v, (size_t)n, sizeof *v, cmp_name_at);
    for (int i = 1, first = 0; i < n; i++) {
        if (strcmp(v[i].name, v[first].name)) { first = i; continue; }
        dup[nd][0] = v[i].i, dup[nd][1] = v[first].i, nd++;
    }
    qsort(dup, (size_t)nd, sizeof *dup, cmp_pair);
    for (int k = 0; k < nd; k++) {
        const AstParam *p = &d->params[dup[k][0]], *f = &d->params[dup[k][1]];
        dl_error(c->diag, p->loc, "duplicate parameter '%s' in %s '%s'", p->name, ast_decl_kind_name(d->kind),
                 d->name);
        dl_note(c->diag, f->loc, "'%s' was first declared here", f->name);
    }
    free(v);
    free(dup);
}

void ast_add_decl(DlParseCtx *c, AstDeclKind kind, DlSrcLoc kw_loc, const char *name,
                  DlSrcLoc name_loc, DlPtrList *params, DlPtrList *items, DlSrcLoc end_loc)
{
    AstDecl *d = dl_pool_alloc(c->pool, sizeof *d);
    d->kind = kind, d->name = name, d->loc = kw_loc, d->name_loc = name_loc;
    d->end_loc = end_loc;
    d->nparams = params ? params->n : 0;
    if (d->nparams) d->params = dl_pool_alloc(c->pool, (size_t)d->nparams * sizeof *d->params);
    for (int i = 0; i < d->nparams; i++) d->params[i] = *(AstParam *)params->a[i];
    d->nitems = items ? items->n : 0;
    if (d->nitems) d->items = dl_pool_alloc(c->pool, (size_t)d->nitems * sizeof *d->items);
    for (int i = 0; i < d->nitems; i++) d->items[i] = *(AstItem *)items->a[i];
    check_params(c, d);
    check_returns(c, d);
    dl_list_push(c, &c->decls, d);
}

/* ---- dump ----------------------------------------------------------- */

/* Integers as written; other numbers as the shortest %g that reads back as
 * the same double, with ".0" on whole values (2.0 stays apart from 2). */
static void put_num(DlBuf *b, double v, int is_int)
{
    char s[40];
    if (is_int) {
        snprintf(s, sizeof s, "%.0f", v);
    } else if (v > -1e15 && v < 1e15 && v == (double)(long long)v) {
        snprintf(s, sizeof s, "%.1f", v); /* 1e3 -> 1000.0 */
    } else {
        for (int p = 1; p <= 17; p++) {
            snprintf(s, sizeof s, "%.*g", p, v);
            if (strtod(s, NULL) == v) break;
        }
        if (!strpbrk(s, ".eni")) strcat(s, ".0"); /* keep 2.0 apart from 2 */
    }
    dl_buf_printf(b, "%s", s);
}

static void put_str(DlBuf *b, const char *s)
{
    dl_buf_put(b, "\"", 1);
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (ch == '"' || ch == '\\') dl_buf_printf(b, "\\%c", ch);
        else if (ch == '\n') dl_buf_put(b, "\\n", 2);
        else if (ch == '\t') dl_buf_put(b, "\\t", 2);
        else if (ch < ' ' || ch == 0x7f) dl_buf_printf(b, "\\x%02x", ch);
        else dl_buf_put(b, s, 1);
    }
    dl_buf_put(b, "\"", 1);
}

static void put_loc(DlBuf *b, DlSrcLoc l) { dl_buf_printf(b, "@%d:%d", l.line, l.col); }

/* An expression, on one line: (kind [name] @line:col children...).  The
 * chains that do not nest (ast.h: a binary operator's left operand, a
 * field's base) are walked in a loop: their heads are printed on the way
 * down, their tails (right operands, closing parentheses) on the way back
 * up; recursion follows only the nesting, at most DL_AST_MAX_DEPTH deep. */
static void dump_expr(DlBuf *b, const AstExpr *e)
{
    DL_VEC(const AstExpr *) chain = {0};
    for (; e->kind == EX_BINOP || e->kind == EX_FIELD; e = e->a) {
        DL_PUSH(chain, e);
        if (e->kind == EX_BINOP)
            dl_buf_printf(b, "(binop %c ", e->op);
        else
            dl_buf_printf(b, "(field %s ", e->name);
        put_loc(b, e->loc);
        dl_buf_put(b, " ", 1);
    }
    switch (e->kind) {
    case EX_NUM:
        dl_buf_put(b, "(num ", 5);
        put_num(b, e->num, e->is_int);
        dl_buf_put(b, " ", 1);
        put_loc(b, e->loc);
        break;
    case EX_STR:
        dl_buf_put(b, "(str ", 5);
        put_str(b, e->name);
        dl_buf_put(b, " ", 1);
        put_loc(b, e->loc);
        break;
    case EX_IDENT:
        dl_buf_printf(b, "(ident %s ", e->name);
        put_loc(b, e->loc);
        break;
    case EX_CALL:
        dl_buf_printf(b, "(call %s ", e->name);
        put_loc(b, e->loc);
        for (int i = 0; i < e->nargs; i++) {
            dl_buf_put(b, " ", 1);
            dump_expr(b, e->args[i]);
        }
        for (int i = 0; i < e->nkwargs; i++) {
            dl_buf_printf(b, " (kw %s ", e->kwargs[i].key);
            put_loc(b, e->kwargs[i].loc);
            dl_buf_put(b, " ", 1);
            dump_expr(b, e->kwargs[i].value);
            dl_buf_put(b, ")", 1);
        }
        break;
    case EX_LIST:
        dl_buf_put(b, "(list ", 6);
        put_loc(b, e->loc);
        for (int i = 0; i < e->nargs; i++) {
            dl_buf_put(b, " ", 1);
            dump_expr(b, e->args[i]);
        }
        break;
    case EX_RANGE:
        dl_buf_put(b, "(range ", 7);
        put_loc(b, e->loc);
        for (int i = 0; i < 3; i++) {
            const AstExpr *x = i == 0 ? e->a : i == 1 ? e->b : e->c;
            if (!x) break;
            dl_buf_put(b, " ", 1);
            dump_expr(b, x);
        }
        break;
    case EX_NEG:
        dl_buf_put(b, "(neg ", 5);
        put_loc(b, e->loc);
        dl_buf_put(b, " ", 1);
        dump_expr(b, e->a);
        break;
    case EX_BINOP: case EX_FIELD:
        break; /* walked above */
    }
    dl_buf_put(b, ")", 1);
    while (chain.n) { /* back up the chain */
        const AstExpr *up = chain.a[--chain.n];
        if (up->kind == EX_BINOP) {
            dl_buf_put(b, " ", 1);
            dump_expr(b, up->b);
        }
        dl_buf_put(b, ")", 1);
    }
    free(chain.a);
}

/* One declaration: its header line, then one line per parameter and item,
 * indented two spaces; the closing parenthesis ends the last line. */
void ast_dump(const AstFile *f, DlBuf *b)
{
    for (int i = 0; i < f->ndecls; i++) {
        const AstDecl *d = &f->decls[i];
        dl_buf_printf(b, "(%s ", ast_decl_kind_name(d->kind));
        if (d->name) dl_buf_printf(b, "%s ", d->name);
        put_loc(b, d->loc);
        for (int j = 0; j < d->nparams; j++) {
            const AstParam *p = &d->params[j];
            dl_buf_printf(b, "\n  (param %s ", p->name);
            put_loc(b, p->loc);
            if (p->value) {
                dl_buf_put(b, " ", 1);
                dump_expr(b, p->value);
            }
            dl_buf_put(b, ")", 1);
        }
        for (int j = 0; j < d->nitems; j++) {
            const AstItem *it = &d->items[j];
            if (it->name)
                dl_buf_printf(b, "\n  (item %s ", it->name);
            else
                dl_buf_printf(b, "\n  (return ");
            put_loc(b, it->loc);
            dl_buf_put(b, " ", 1);
            dump_expr(b, it->value);
            dl_buf_put(b, ")", 1);
        }
        dl_buf_put(b, ")\n", 2);
    }
}
