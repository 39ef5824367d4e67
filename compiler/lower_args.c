/* lower_args.c - binding call arguments to a table row's spec, and constant
 * evaluation of numbers, for every kind of call the language has (layers,
 * data sources, targets, losses, metrics, optimizer, schedules). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lower_int.h"

const char *lw_type_name(ArgType t)
{
    switch (t) {
    case AT_TENSOR: return "a tensor";
    case AT_INT: return "an integer";
    case AT_INT2: return "an integer or [h, w]";
    case AT_NUM: return "a number";
    case AT_BOOL: return "true or false";
    case AT_STR: return "a string";
    case AT_EXPR: return "a value";
    }
    return "?";
}

const char *lw_expr_desc(const AstExpr *e)
{
    switch (e->kind) {
    case EX_NUM: return "a number";
    case EX_STR: return "a string";
    case EX_IDENT: return "a name";
    case EX_FIELD: return "a field";
    case EX_CALL: return "a call";
    case EX_LIST: return "a list";
    case EX_RANGE: return "a range";
    case EX_NEG:
    case EX_BINOP: return "an expression";
    }
    return "?";
}

int lw_bind(Lower *L, const AstExpr *call, const char *what, const ArgSpec *spec, int nspec,
            const AstExpr **slots)
{
    int nerr = 0;
    for (int i = 0; i < nspec; i++)
        slots[i] = NULL;
    /* positional: only the leading arguments of the spec (those before the
       first optional) or any, in order */
    for (int i = 0; i < call->nargs; i++) {
        if (i >= nspec) {
            lw_error(L, call->args[i]->loc, "too many arguments to %s (it takes %d)", what, nspec);
            nerr++;
            break;
        }
        slots[i] = call->args[i];
    }
    const char *names[LW_MAX_ARGS + 8];
    int nn = 0;
    for (int i = 0; i < nspec && nn < (int)(sizeof names / sizeof *names); i++)
        names[nn++] = spec[i].name;
    for (int k = 0; k < call->nkwargs; k++) {
        const AstKwarg *kw = &call->kwargs[k];
        int i;
        for (i = 0; i < nspec; i++)
            if (!strcmp(spec[i].name, kw->key))
                break;
        if (i == nspec) {
            char ctx[160];
            snprintf(ctx, sizeof ctx, " of %s", what);
            lw_unknown(L, kw->loc, "argument", kw->key, names, nn, ctx);
            nerr++;
            continue;
        }
        if (slots[i]) {
            lw_error(L, kw->loc, "argument '%s' of %s given twice", kw->key, what);
            nerr++;
            continue;
        }
        slots[i] = kw->value;
    }
    for (int i = 0; i < nspec; i++)
        if (spec[i].required && !slots[i]) {
            lw_error(L, call->loc, "%s needs argument '%s' (%s)", what, spec[i].name,
                     lw_type_name(spec[i].type));
            nerr++;
        }
    return nerr;
}

/* *out = e's value; -1 when e is not a constant.  *chain: set to the
 * parameter name whose definition runs through more than LW_MAX_PARAM_CHAIN
 * parameters (a cycle, p = q with q = p).  A chain a + b - c ... of binary
 * operators is folded in a loop along its left operands; recursion follows
 * only the nesting (ast.h, at most DL_AST_MAX_DEPTH). */
static int const_eval(Lower *L, const AstExpr *e, double *out, int depth, const char **chain)
{
    DL_VEC(const AstExpr *) ops = {0};
    for (; e->kind == EX_BINOP; e = e->a)
        DL_PUSH(ops, e);
    double v = 0;
    int bad = 0;
    switch (e->kind) {
    case EX_NUM:
        v = e->num;
        break;
    case EX_NEG:
        bad = const_eval(L, e->a, &v, depth, chain);
        v = -v;
        break;
    case EX_IDENT: { /* a params { } name */
        const AstExpr *p = lw_param(L, e->name);
        if (p && depth >= LW_MAX_PARAM_CHAIN) {
            *chain = e->name;
            bad = -1;
        } else {
            bad = p ? const_eval(L, p, &v, depth + 1, chain) : -1;
        }
        break;
    }
    case EX_BINOP: case EX_STR: case EX_FIELD: case EX_CALL: case EX_LIST: case EX_RANGE:
        bad = -1;
        break;
    }
    while (!bad && ops.n) {
        const AstExpr *op = ops.a[--ops.n];
        double b;
        if (const_eval(L, op->b, &b, depth, chain)) {
            bad = -1;
            break;
        }
        switch (op->op) {
        case '+': v = v + b; break;
        case '-': v = v - b; break;
        case '*': v = v * b; break;
        case '/': if (b == 0) bad = -1; else v = v / b; break;
        default: bad = -1;
        }
    }
    free(ops.a);
    *out = v;
    return bad ? -1 : 0;
}

int lw_const(Lower *L, const AstExpr *e, const char *arg, const char *what, double *out)
{
    const char *chain = NULL;
    if (const_eval(L, e, out, 0, &chain) || !isfinite(*out)) {
        if (chain)
            lw_error(L, e->loc, "'%s' of %s: parameter '%s' is defined in terms of itself (or through more "
                     "than %d parameters)", arg, what, chain, LW_MAX_PARAM_CHAIN);
        else
            lw_error(L, e->loc, "'%s' of %s must be a number, not %s", arg, what, lw_expr_desc(e));
        return -1;
    }
    return 0;
}

void lw_int_error(Lower *L, DlSrcLoc loc, const char *arg, const char *what, double v)
{
    if (v != floor(v))
        lw_error(L, loc, "'%s' of %s must be an integer, not %g", arg, what, v);
    else if (v > 0)
        lw_error(L, loc, "'%s' of %s is too large: %.17g (at most %d)", arg, what, v, LW_MAX_INT);
    else
        lw_error(L, loc, "'%s' of %s is too large a negative number: %.17g (at least -%d)", arg, what, v,
                 LW_MAX_INT);
}

int lw_get_num(Lower *L, const AstExpr *e, const char *arg, const char *what, double def, double *out)
{
    *out = def;
    if (!e)
        return 0;
    return lw_const(L, e, arg, what, out);
}

int lw_get_int(Lower *L, const AstExpr *e, const char *arg, const char *what, int def, int *out)
{
    double v;
    *out = def;
    if (!e)
        return 0;
    if (lw_const(L, e, arg, what, &v))
        return -1;
    if (!lw_is_int(v)) {
        lw_int_error(L, e->loc, arg, what, v);
        return -1;
    }
    *out = (int)v;
    return 0;
}

int lw_get_bool(Lower *L, const AstExpr *e, const char *arg, const char *what, int def, int *out)
{
    *out = def;
    if (!e)
        return 0;
    if (e->kind == EX_IDENT && (!strcmp(e->name, "true") || !strcmp(e->name, "false"))) {
        *out = !strcmp(e->name, "true");
        return 0;
    }
    lw_error(L, e->loc, "'%s' of %s must be true or false, not %s", arg, what, lw_expr_desc(e));
    return -1;
}

int lw_get_str(Lower *L, const AstExpr *e, const char *arg, const char *what, const char *def,
               const char **out)
{
    *out = def;
    if (!e)
        return 0;
    for (int depth = 0; e->kind == EX_IDENT && lw_param(L, e->name); depth++) { /* a params { } name */
        if (depth == LW_MAX_PARAM_CHAIN) {
            lw_error(L, e->loc, "'%s' of %s: parameter '%s' is defined in terms of itself (or through more "
                     "than %d parameters)", arg, what, e->name, LW_MAX_PARAM_CHAIN);
            return -1;
        }
        e = lw_param(L, e->name);
    }
    if (e->kind != EX_STR) {
        lw_error(L, e->loc, "'%s' of %s must be a string, not %s", arg, what, lw_expr_desc(e));
        return -1;
    }
    *out = e->name;
    return 0;
}

int lw_num_list(Lower *L, const AstExpr *e, const char *arg, const char *what, int n, double *out)
{
    if (e->kind != EX_LIST || e->nargs != n) {
        lw_error(L, e->loc, "'%s' of %s must be a list of %d numbers", arg, what, n);
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (lw_const(L, e->args[i], arg, what, &out[i]))
            return -1;
    return 0;
}
