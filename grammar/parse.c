/* parse.c - dl_parse, and the token stream between scanner and parser.
 *
 * The stream adds three things to the raw flex tokens:
 *  - end of file gets a location just past the last token, so "expected '}'"
 *    points at the end of the text;
 *  - a stack of open brackets ('{' with its declaration keyword), consulted
 *    by the error messages ("to close 'network' at line 3");
 *  - error recovery.  After a syntax error (parser.y calls dl_parse_recover),
 *    tokens are skipped up to a synchronisation point, and the stream then
 *    delivers the token SYNC, on which the grammar's `items: items error SYNC`
 *    or `file: file error SYNC` rule resumes.  Newlines are not tokens, so
 *    the stream decides what "the next line's item" is:
 *      item level (inside a body): an identifier that is first on its line
 *        and not the continuation of an open bracket, 'return', ';' or '}';
 *      declaration level: the next declaration keyword, or a word first on
 *        its line outside brackets (a misspelt keyword, reported in turn).
 *    A declaration keyword or end of file inside a body ends the body: the
 *    stream then delivers SYNC, a '}' of its own, and the keyword.
 *
 * A token is entered into the bracket stack only once the parser asks for
 * the next one (it has then shifted or dropped it), so at a syntax error the
 * stack describes exactly the text the parser has accepted.
 */
#include "astbuild.h"
#include "grammar/parser.h"
#define YYSTYPE DL_YYSTYPE
#define YYLTYPE DL_YYLTYPE
#define YY_DECL int dl_yylex_raw(YYSTYPE *yylval_param, YYLTYPE *yylloc_param, void *yyscanner)
#include "grammar/lexer.h"

#include <limits.h>
#include <string.h>

YY_DECL;

int dl_is_decl_keyword(int kind)
{
    switch (kind) {
    case DATA: case TARGET: case BLOCK: case NETWORK:
    case LOSS: case OPTIMIZER: case TRAIN: case METRICS: case PARAMS:
        return 1;
    }
    return 0;
}

/* Tokens after which a line break continues the expression. */
int dl_token_continues(int kind)
{
    if (kind > 0 && kind < 128) return strchr(",([=+-*/.", kind) != NULL;
    return kind == DOTDOT || kind == STEP;
}

static void track(DlParseCtx *c, DlTok *t)
{
    if (t->tracked) return;
    t->tracked = 1;
    if (dl_is_decl_keyword(t->kind)) {
        c->last_kw = *t;
    } else if (t->kind == '{' || t->kind == '(' || t->kind == '[') {
        DlOpen o = {(char)t->kind, t->loc, {0, 0, 0}, 0};
        if (t->kind == '{' && c->last_kw.loc.len > 0)
            o.owner_loc = c->last_kw.loc, o.owner_off = c->last_kw.off;
        DL_PUSH(c->open, o);
    } else if (t->kind == '}' || t->kind == ')' || t->kind == ']') {
        char want = t->kind == '}' ? '{' : t->kind == ')' ? '(' : '[';
        for (size_t i = c->open.n; i-- > 0;)
            if (c->open.a[i].ch == want) { /* close it and whatever it holds */
                c->open.n = i;
                break;
            }
    }
}

const DlOpen *dl_parse_innermost_open(const DlParseCtx *c)
{
    return c->open.n ? &c->open.a[c->open.n - 1] : NULL;
}

static DlTok read_raw(DlParseCtx *c)
{
    DlTok t = {0};
    DlSpan sp;
    const DlTok *l = &c->raw_last;
    if (!c->eof) t.kind = dl_yylex_raw(&t.val, &sp, c->scanner);
    if (t.kind == DL_YYEOF) {
        c->eof = 1;
        t.loc = l->loc.line ? (DlSrcLoc){l->loc.line, l->loc.col + l->loc.len, 1}
                            : (DlSrcLoc){1, 1, 1};
        t.off = l->loc.line ? l->off + (size_t)l->loc.len : 0;
    } else {
        t.loc = sp.first;
        t.off = c->tok_off;
    }
    t.bol = !l->loc.line || t.loc.line > l->loc.line;
    return t;
}

static void enqueue(DlParseCtx *c, DlTok t)
{
    c->queue[c->nqueue++] = t;
}

static void enqueue_sync(DlParseCtx *c, DlTok t, int close_body)
{
    DlTok sync = {.kind = SYNC, .loc = t.loc, .off = t.off, .tracked = 1};
    enqueue(c, sync);
    if (close_body) {
        DlTok rb = {.kind = '}', .loc = {t.loc.line, t.loc.col, 0}, .off = t.off};
        enqueue(c, rb);
    }
    t.tracked = 0;
    enqueue(c, t);
}

/* Drop open '(' and '[' above the innermost '{' (a broken item's). */
static void abandon_parens(DlParseCtx *c)
{
    while (c->open.n && c->open.a[c->open.n - 1].ch != '{') c->open.n--;
}

/* Is t, preceded by `before`, where skipping stops?  If so, queue the
 * tokens that resume the parse.  t is the erroneous token itself when
 * `itself` is set. */
static int try_sync(DlParseCtx *c, DlTok t, const DlTok *before, int itself)
{
    int end = t.kind == DL_YYEOF || dl_is_decl_keyword(t.kind);
    if (c->recover == DL_RECOVER_DECL) {
        /* A word first on its line outside brackets is likely a misspelt
         * keyword: resume there so that it is reported too. */
        int word = t.kind == IDENT && t.bol && !itself && c->open.n == 0
                   && !dl_token_continues(before->kind);
        if (!end && !word) return 0;
        c->open.n = 0; /* declarations start outside every bracket */
        enqueue_sync(c, t, 0);
        return 1;
    }
    if (end) {
        enqueue_sync(c, t, 1);
    } else if (t.kind == '}' || t.kind == RETURN || t.kind == ';') {
        abandon_parens(c);
        enqueue_sync(c, t, 0);
    } else if (t.kind == IDENT && t.bol) {
        const DlOpen *o = dl_parse_innermost_open(c);
        if (o && o->ch != '{' && dl_token_continues(before->kind)) return 0;
        abandon_parens(c);
        enqueue_sync(c, t, 0);
    } else {
        return 0;
    }
    return 1;
}

void dl_parse_recover(DlParseCtx *c)
{
    c->deep_reported = 0; /* the next item may be too deep in its own right */
    c->recover = c->in_body ? DL_RECOVER_ITEM : DL_RECOVER_DECL;
    c->nqueue = 0;
    if (try_sync(c, c->last, &c->prev, 1)) {
        c->last.tracked = 1; /* it comes back from the queue */
        c->recover = DL_RECOVER_NONE;
    }
}

int dl_yylex(DlVal *lval, DlSpan *lloc, void *scanner, DlParseCtx *c)
{
    track(c, &c->last); /* the parser is done with it */
    DlTok t;
    if (dl_diag_errors(c->diag) > DL_DIAG_MAX_ERRORS) {
        t = (DlTok){.kind = DL_YYEOF, .loc = c->last.loc};
    } else if (c->nqueue) {
        t = c->queue[0];
        memmove(c->queue, c->queue + 1, (size_t)--c->nqueue * sizeof *c->queue);
    } else {
        for (;;) {
            DlTok before = c->raw_last;
            t = read_raw(c);
            if (t.kind != DL_YYEOF) c->raw_last = t;
            if (!c->recover) break;
            if (try_sync(c, t, &before, 0)) {
                c->recover = DL_RECOVER_NONE;
                t = c->queue[0];
                memmove(c->queue, c->queue + 1, (size_t)--c->nqueue * sizeof *c->queue);
                break;
            }
            track(c, &t); /* skipped */
        }
    }
    c->prev2 = c->prev;
    c->prev = c->last;
    c->last = t;
    *lval = t.val;
    lloc->first = lloc->last = t.loc;
    return t.kind;
}

int dl_parse(const DlSource *src, DlPool *pool, DlDiag *diag, AstFile **out)
{
    int before = dl_diag_errors(diag);
    DlParseCtx c = {.pool = pool, .diag = diag, .src = src, .line = 1, .col = 1};
    c.last.tracked = 1;
    AstFile *f = dl_pool_alloc(pool, sizeof *f);
    f->src = src;
    *out = f;
    if (src->size > INT_MAX) {
        dl_error(diag, (DlSrcLoc){0, 0, 0}, "file too large (%zu bytes)", src->size);
        return dl_diag_errors(diag) - before;
    }
    void *scanner;
    if (dl_yylex_init_extra(&c, &scanner)) {
        dl_error(diag, (DlSrcLoc){0, 0, 0}, "cannot create the scanner");
        return dl_diag_errors(diag) - before;
    }
    c.scanner = scanner;
    YY_BUFFER_STATE buf = dl_yy_scan_bytes(src->text, (int)src->size, scanner);
    dl_yyparse(scanner, &c);
    dl_yy_delete_buffer(buf, scanner);
    dl_yylex_destroy(scanner);
    DL_VEC_FREE(c.open);

    f->ndecls = c.decls.n;
    f->decls = dl_pool_alloc(pool, (size_t)c.decls.n * sizeof *f->decls + 1);
    for (int i = 0; i < c.decls.n; i++) f->decls[i] = *(AstDecl *)c.decls.a[i];
    return dl_diag_errors(diag) - before;
}
