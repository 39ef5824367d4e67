/* lower_heads.c - the heads of a network (`return softmax(z)`, named after
 * the network, or `return heads(name = softmax(z), ...)`), found from the
 * return statement before the network is lowered so that the loss and the
 * metrics can name them (`net`, `net.age`); and the train graph's label
 * inputs, one [B, ncols] node per distinct list of label columns. */
#include <string.h>

#include "lower_int.h"

void lw_net_heads(Lower *L)
{
    const AstDecl *nd = L->net;
    const AstExpr *r = NULL;
    for (int i = 0; i < nd->nitems; i++)
        if (!nd->items[i].name) {
            r = nd->items[i].value;
            break;
        }
    if (!r)
        return; /* "has no return": reported when the network is lowered */
    if (r->kind == EX_CALL && !strcmp(r->name, "heads")) {
        if (r->nargs || !r->nkwargs || r->nkwargs > LW_MAX_HEADS) {
            lw_error(L, r->loc, "heads(...) names each head: heads(age = softmax(a), gender = softmax(g)), "
                     "1 to %d of them", LW_MAX_HEADS);
            return;
        }
        for (int k = 0; k < r->nkwargs; k++) {
            for (int j = 0; j < k; j++)
                if (!strcmp(r->kwargs[j].key, r->kwargs[k].key)) {
                    lw_error(L, r->kwargs[k].loc, "duplicate head '%s'", r->kwargs[k].key);
                    return;
                }
            HeadInfo h = {r->kwargs[k].key, r->kwargs[k].loc, 0, 1};
            DL_PUSH(L->heads, h);
        }
        return;
    }
    HeadInfo h = {nd->name, r->loc, 0, 1};
    DL_PUSH(L->heads, h);
}

int lw_head_ref(Lower *L, const AstExpr *e)
{
    if (!L->net || !L->heads.n)
        return -1; /* reported already */
    const char *nn = L->net->name;
    if (e->kind == EX_IDENT && !strcmp(e->name, nn)) {
        if (L->heads.n == 1)
            return 0;
        DlBuf b = {0};
        for (size_t k = 0; k < L->heads.n; k++)
            dl_buf_printf(&b, "%s%s", k ? ", " : "", L->heads.a[k].name);
        lw_error(L, e->loc, "network '%s' has %zu heads (%s): name one, e.g. %s.%s", nn, L->heads.n, b.s, nn,
                 L->heads.a[0].name);
        dl_buf_free(&b);
        return -1;
    }
    if (e->kind == EX_FIELD && e->a->kind == EX_IDENT && !strcmp(e->a->name, nn)) {
        const char *names[LW_MAX_HEADS];
        for (size_t k = 0; k < L->heads.n; k++) {
            if (!strcmp(L->heads.a[k].name, e->name) && L->heads.n > 1)
                return (int)k;
            names[k] = L->heads.a[k].name;
        }
        if (L->heads.n == 1) {
            lw_error(L, e->loc, "network '%s' has one head: write '%s', not '%s.%s'", nn, nn, nn, e->name);
            return -1;
        }
        char ctx[160];
        snprintf(ctx, sizeof ctx, " of network '%s'", nn);
        lw_unknown(L, e->loc, "head", e->name, names, (int)L->heads.n, ctx);
        return -1;
    }
    if (e->kind == EX_IDENT || (e->kind == EX_FIELD && e->a->kind == EX_IDENT)) {
        const char *names[1] = {nn};
        lw_unknown(L, e->loc, "network", e->kind == EX_IDENT ? e->name : e->a->name, names, 1, NULL);
    } else
        lw_error(L, e->loc, "expected the network's name, not %s", lw_expr_desc(e));
    return -1;
}

uint32_t lw_label_input(Lower *L, Graph *g, const int *labels, int n)
{
    const DataInfo *D = &L->data;
    for (uint32_t i = 0; i < g->n; i++) {
        const GNode *x = &g->nodes[i];
        if (x->op != OP_INPUT || x->attr.input.kind != IN_LABEL || x->attr.input.ncols != n)
            continue;
        int same = 1;
        for (int k = 0; k < n; k++)
            same &= x->attr.input.cols[k] == D->labels.a[labels[k]].col;
        if (same)
            return i;
    }
    GAttr a = {.input = {IN_LABEL, -1, n, {0}}};
    DlBuf nm = {0};
    dl_buf_printf(&nm, "%s.labels", D->decl->name);
    for (uint32_t i = 0; i < g->n; i++)
        if (g->nodes[i].op == OP_INPUT && g->nodes[i].attr.input.kind == IN_LABEL) { /* a second list: name it */
            for (int k = 0; k < n; k++)
                dl_buf_printf(&nm, "%c%s", k ? '_' : '.', D->labels.a[labels[k]].name);
            break;
        }
    for (int k = 0; k < n; k++)
        a.input.cols[k] = D->labels.a[labels[k]].col; /* numbered by lw_data_binding */
    uint32_t i = graph_add(g, OP_INPUT, NULL, 0, (int64_t[]){g->batch, n}, 2, a, dl_pool_strdup(L->pool, nm.s),
                           D->decl->name_loc);
    dl_buf_free(&nm);
    return i;
}
