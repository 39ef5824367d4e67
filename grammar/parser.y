/* parser.y - the .dldl grammar (docs/language.md, "Grammar").
 *
 * Pure, with locations; actions only call the ast_new_* constructors of
 * ast.c (everything lives in the DlPool, so no %destructor is needed).
 * Newlines are not tokens: items need no separator because an expression is
 * never followed by an identifier, and %expect 0 keeps it that way.
 *
 * Syntax errors are worded here (yyreport_syntax_error, from Bison's list of
 * expected tokens, with Lua-style "to close" hints); recovery is set up by
 * dl_parse_recover (parse.c), which makes the token stream deliver SYNC at
 * the next item or declaration, where the two `error SYNC` rules resume.
 * parse.error is `custom` rather than `detailed` only to get that token list.
 */
%code requires {
#include "grammar/astbuild.h"
}

%code {
#include <stdio.h>
#include <string.h>
static void dl_yyerror(DlSpan *loc, void *scanner, DlParseCtx *ctx, const char *msg);
#define TOO_MANY(c) (dl_diag_errors((c)->diag) > DL_DIAG_MAX_ERRORS)
/* Bison's stack (malloc'd, grown by doubling) holds about one entry per
 * token still open: left-recursive lists (items, arguments, a + b + ...)
 * keep it short, nesting ((((..., f(f(..., - - ... grows it.  A spec is at
 * most DL_LIMIT_SPEC bytes, so this never runs out for one; the depth of
 * the tree is bounded separately (DL_AST_MAX_DEPTH, ast.c). */
#define YYMAXDEPTH (DL_LIMIT_SPEC + 64)
/* A rule's location spans its first and last symbols; an empty rule sits
 * just after the previous symbol. */
#define YYLLOC_DEFAULT(Cur, Rhs, N)                                          \
    do {                                                                     \
        if (N) { (Cur).first = YYRHSLOC(Rhs, 1).first;                       \
                 (Cur).last = YYRHSLOC(Rhs, N).last; }                       \
        else   { (Cur).first = (Cur).last = YYRHSLOC(Rhs, 0).last; }         \
    } while (0)
}

%define api.pure full
%define api.prefix {dl_yy}
%define api.value.type {DlVal}
%define api.location.type {DlSpan}
%define parse.error custom
%locations
%expect 0
%param {void *scanner} {DlParseCtx *ctx}

%token <str> IDENT "identifier"
%token <str> STRING "string"
%token <num> NUMBER "number"
%token DATA "data" TARGET "target" BLOCK "block" NETWORK "network"
%token LOSS "loss" OPTIMIZER "optimizer" TRAIN "train" METRICS "metrics" PARAMS "params"
%token RETURN "return" STEP "step" DOTDOT ".."
%token LEXERR "invalid token" SYNC "resync point"

%type <expr> expr sum term unary postfix primary
%type <args> args
%type <list> items names names1 nparams elems body
%type <item> item
%type <param> nparam

%%

file:
    %empty
  | file decl
  | file ';'
  | file error SYNC             { yyerrok; if (TOO_MANY(ctx)) YYABORT; }
  ;

decl:
    DATA IDENT body             { ast_add_decl(ctx, AST_DATA, @1.first, $2, @2.first, NULL, $3, ctx->body_end); }
  | TARGET IDENT '=' expr       { DlPtrList *l = dl_list_new(ctx);
                                  dl_list_push(ctx, l, ast_new_item(ctx, $2, @2.first, $4));
                                  ast_add_decl(ctx, AST_TARGET, @1.first, $2, @2.first, NULL, l, @4.last); }
  | BLOCK IDENT '(' names ')' body
                                { ast_add_decl(ctx, AST_BLOCK, @1.first, $2, @2.first, $4, $6, ctx->body_end); }
  | NETWORK IDENT '(' nparams ')' body
                                { ast_add_decl(ctx, AST_NETWORK, @1.first, $2, @2.first, $4, $6, ctx->body_end); }
  | LOSS '=' expr               { DlPtrList *l = dl_list_new(ctx);
                                  dl_list_push(ctx, l, ast_new_item(ctx, "loss", @1.first, $3));
                                  ast_add_decl(ctx, AST_LOSS, @1.first, NULL, @1.first, NULL, l, @3.last); }
  | OPTIMIZER '=' expr          { DlPtrList *l = dl_list_new(ctx);
                                  dl_list_push(ctx, l, ast_new_item(ctx, "optimizer", @1.first, $3));
                                  ast_add_decl(ctx, AST_OPTIMIZER, @1.first, NULL, @1.first, NULL, l, @3.last); }
  | TRAIN body                  { ast_add_decl(ctx, AST_TRAIN, @1.first, NULL, @1.first, NULL, $2, ctx->body_end); }
  | METRICS body                { ast_add_decl(ctx, AST_METRICS, @1.first, NULL, @1.first, NULL, $2, ctx->body_end); }
  | PARAMS body                 { ast_add_decl(ctx, AST_PARAMS, @1.first, NULL, @1.first, NULL, $2, ctx->body_end); }
  ;

/* Block parameters are names; network parameters bind inputs. */
names:
    %empty                      { $$ = dl_list_new(ctx); }
  | names1
  ;

names1:
    IDENT                       { $$ = dl_list_new(ctx); dl_list_push(ctx, $$, ast_new_param(ctx, $1, @1.first, NULL)); }
  | names1 ',' IDENT            { $$ = $1; dl_list_push(ctx, $$, ast_new_param(ctx, $3, @3.first, NULL)); }
  ;

nparams:
    nparam                      { $$ = dl_list_new(ctx); dl_list_push(ctx, $$, $1); }
  | nparams ',' nparam          { $$ = $1; dl_list_push(ctx, $$, $3); }
  ;

nparam:
    IDENT '=' expr              { $$ = ast_new_param(ctx, $1, @1.first, $3); }
  ;

body:
    lbrace items '}'            { $$ = $2; ctx->in_body = 0; ctx->body_end = @3.first; }
  ;

lbrace:
    '{'                         { ctx->in_body = 1; ctx->body_errors = dl_diag_errors(ctx->diag); }
  ;

items:
    %empty                      { $$ = dl_list_new(ctx); }
  | items item                  { $$ = $1; dl_list_push(ctx, $$, $2); }
  | items ';'                   { $$ = $1; }
  | items error SYNC            { $$ = $1; yyerrok; if (TOO_MANY(ctx)) YYABORT; }
  ;

item:
    IDENT '=' expr              { $$ = ast_new_item(ctx, $1, @1.first, $3); }
  | RETURN expr                 { $$ = ast_new_item(ctx, NULL, @1.first, $2); }
  ;

/* Precedence, loosest first: range, + -, * /, unary -, postfix . and (). */
expr:
    sum
  | sum DOTDOT sum              { $$ = ast_new_range(ctx, $1, $3, NULL); }
  | sum DOTDOT sum STEP sum     { $$ = ast_new_range(ctx, $1, $3, $5); }
  ;

sum:
    term
  | sum '+' term                { $$ = ast_new_binop(ctx, '+', $1, $3); }
  | sum '-' term                { $$ = ast_new_binop(ctx, '-', $1, $3); }
  ;

term:
    unary
  | term '*' unary              { $$ = ast_new_binop(ctx, '*', $1, $3); }
  | term '/' unary              { $$ = ast_new_binop(ctx, '/', $1, $3); }
  ;

unary:
    postfix
  | '-' unary                   { $$ = ast_new_neg(ctx, @1.first, $2); }
  ;

postfix:
    primary
  | postfix '.' IDENT           { $$ = ast_new_field(ctx, $1, $3); }
  ;

primary:
    NUMBER                      { $$ = ast_new_num(ctx, @1.first, $1); }
  | STRING                      { $$ = ast_new_str(ctx, @1.first, $1); }
  | IDENT                       { $$ = ast_new_ident(ctx, @1.first, $1); }
  | IDENT '(' ')'               { $$ = ast_new_call(ctx, @1.first, $1, NULL); }
  | IDENT '(' args ')'          { $$ = ast_new_call(ctx, @1.first, $1, $3); }
  | IDENT '(' args ',' ')'      { $$ = ast_new_call(ctx, @1.first, $1, $3); }
  /* `step` is the keyword of ranges and also the step schedule: `step(...)`
     is a call.  No conflict: a range's `step` follows `lo .. hi`, after
     which no expression can start. */
  | STEP '(' ')'                { $$ = ast_new_call(ctx, @1.first, "step", NULL); }
  | STEP '(' args ')'           { $$ = ast_new_call(ctx, @1.first, "step", $3); }
  | STEP '(' args ',' ')'       { $$ = ast_new_call(ctx, @1.first, "step", $3); }
  | '[' ']'                     { $$ = ast_new_list(ctx, @1.first, NULL); }
  | '[' elems ']'               { $$ = ast_new_list(ctx, @1.first, $2); }
  | '[' elems ',' ']'           { $$ = ast_new_list(ctx, @1.first, $2); }
  | '(' expr ')'                { $$ = $2; }
  ;

args:
    expr                        { $$ = ast_args_add(ctx, NULL, NULL, @1.first, $1); }
  | IDENT '=' expr              { $$ = ast_args_add(ctx, NULL, $1, @1.first, $3); }
  | args ',' expr               { $$ = ast_args_add(ctx, $1, NULL, @3.first, $3); }
  | args ',' IDENT '=' expr     { $$ = ast_args_add(ctx, $1, $3, @3.first, $5); }
  ;

elems:
    expr                        { $$ = dl_list_new(ctx); dl_list_push(ctx, $$, $1); }
  | elems ',' expr              { $$ = $1; dl_list_push(ctx, $$, $3); }
  ;

%%

static void dl_yyerror(DlSpan *loc, void *scanner, DlParseCtx *ctx, const char *msg)
{
    /* only "memory exhausted": the stack is past YYMAXDEPTH, which takes
       nesting far deeper than DL_AST_MAX_DEPTH */
    dl_error(ctx->diag, loc->first, "expression nested deeper than %d levels (the parser gave up: %s)",
             DL_AST_MAX_DEPTH, msg);
}

/* How a token reads in a message: "identifier 'x'", "'}'", "end of file". */
static void describe(DlParseCtx *c, const DlTok *t, char *buf, size_t n)
{
    const char *text = c->src->text + t->off;
    int len = t->loc.len > 40 ? 40 : t->loc.len;
    switch (t->kind) {
    case DL_YYEOF: snprintf(buf, n, "end of file"); break;
    case IDENT: snprintf(buf, n, "identifier '%.*s'", len, text); break;
    case NUMBER: snprintf(buf, n, "number '%.*s'", len, text); break;
    case STRING: snprintf(buf, n, "string %.*s%s", len, text, len < t->loc.len ? "..." : ""); break;
    default:
        if (dl_is_decl_keyword(t->kind) || t->kind == RETURN || t->kind == STEP)
            snprintf(buf, n, "keyword '%.*s'", len, text);
        else
            snprintf(buf, n, "'%.*s'", len, text);
    }
}

/* A symbol's name as Bison knows it, quoted the way messages quote tokens. */
static void symbol_text(yysymbol_kind_t k, char *buf, size_t n)
{
    const char *s = yysymbol_name(k);
    if (s[0] == '"') /* "data" -> 'data' */
        snprintf(buf, n, "'%.*s'", (int)strlen(s) - 2, s + 1);
    else
        snprintf(buf, n, "%s", s);
}

static int expects(const yysymbol_kind_t *exp, int n, yysymbol_kind_t k)
{
    for (int i = 0; i < n; i++)
        if (exp[i] == k) return 1;
    return 0;
}

static char closer_of(char open) { return open == '{' ? '}' : open == '(' ? ')' : ']'; }

/* "(to close 'network' at line 3)", empty when the opener is on the line of
 * the error (Lua's check_match). */
static void close_hint(const DlParseCtx *c, const DlOpen *o, char *buf, size_t n)
{
    buf[0] = 0;
    if (o->loc.line == c->last.loc.line) return;
    if (o->ch == '{' && o->owner_loc.len > 0)
        snprintf(buf, n, " (to close '%.*s' at line %d)", o->owner_loc.len,
                 c->src->text + o->owner_off, o->owner_loc.line);
    else
        snprintf(buf, n, " (to close '%c' at line %d)", o->ch, o->loc.line);
}

static int yyreport_syntax_error(const yypcontext_t *yyctx, void *scanner, DlParseCtx *ctx)
{
    enum { MAXEXP = 64 };
    yysymbol_kind_t exp[MAXEXP];
    int nexp = yypcontext_expected_tokens(yyctx, exp, MAXEXP);
    if (nexp < 0) nexp = 0;
    const DlTok *t = &ctx->last;
    DlDiag *d = ctx->diag;
    char found[96], want[160], hint[96];
    describe(ctx, t, found, sizeof found);
    const DlOpen *o = dl_parse_innermost_open(ctx);
    int at_end = t->kind == DL_YYEOF || dl_is_decl_keyword(t->kind);
    int note_open = 0;

    if (t->kind == LEXERR) {
        /* already reported by the scanner */
    } else if (o && expects(exp, nexp, YYTRANSLATE((int)closer_of(o->ch)))
               && (at_end || (o->ch != '{' && t->kind == '}'))) {
        close_hint(ctx, o, hint, sizeof hint);
        dl_error(d, t->loc, "expected '%c'%s, found %s", closer_of(o->ch), hint, found);
        note_open = hint[0] != 0;
    } else if (t->kind == '=' && ctx->prev.kind == IDENT && ctx->prev.bol
               && ctx->prev2.kind != ',' && ctx->prev2.kind != '(' && ctx->prev2.kind != '['
               && dl_token_continues(ctx->prev2.kind)) {
        /* `a = b +` then `c = d`: c was read as the operand of '+' */
        int plen = ctx->prev2.loc.len > 40 ? 40 : ctx->prev2.loc.len;
        dl_error(d, ctx->prev2.loc, "expected an expression after '%.*s' at the end of the line",
                 plen, ctx->src->text + ctx->prev2.off);
    } else if (ctx->prev.kind == STEP && nexp == 1 && exp[0] == YYTRANSLATE('(')) {
        /* `x = step` or `step = 1`: the keyword where a name was meant */
        dl_error(d, ctx->prev.loc, "expected '(' after 'step', found %s: 'step' is a keyword (ranges: "
                 "lo..hi step s) and names only the step schedule, a call: step(every = N)", found);
    } else if (nexp == 1 && exp[0] == YYTRANSLATE('=')) {
        int plen = ctx->prev.loc.len > 40 ? 40 : ctx->prev.loc.len;
        dl_error(d, t->loc, "expected '=' after '%.*s', found %s", plen,
                 ctx->src->text + ctx->prev.off, found);
    } else if (expects(exp, nexp, YYSYMBOL_NUMBER)) {
        dl_error(d, t->loc, "expected an expression, found %s", found);
    } else if (expects(exp, nexp, YYSYMBOL_DATA)) {
        dl_error(d, t->loc, "expected a declaration (data, target, block, network, loss, "
                 "optimizer, train, metrics or params), found %s", found);
    } else if (o && o->ch != '{' && expects(exp, nexp, YYTRANSLATE(','))
               && expects(exp, nexp, YYTRANSLATE((int)closer_of(o->ch)))) {
        close_hint(ctx, o, hint, sizeof hint);
        dl_error(d, t->loc, "expected ',' or '%c'%s, found %s", closer_of(o->ch), hint, found);
        note_open = hint[0] != 0;
    } else if (ctx->in_body && expects(exp, nexp, YYSYMBOL_IDENT)
               && expects(exp, nexp, YYTRANSLATE('}'))) {
        dl_error(d, t->loc, "expected an item 'name = value'%s or '}', found %s",
                 ctx->last_kw.kind == BLOCK || ctx->last_kw.kind == NETWORK ? ", 'return'" : "",
                 found);
    } else if (nexp > 0 && nexp <= 4) {
        size_t w = 0;
        for (int i = 0; i < nexp; i++) {
            char s[48];
            symbol_text(exp[i], s, sizeof s);
            w += (size_t)snprintf(want + w, sizeof want - w, "%s%s",
                                  i == 0 ? "" : i == nexp - 1 ? " or " : ", ", s);
            if (w >= sizeof want) break;
        }
        dl_error(d, t->loc, "expected %s, found %s", want, found);
    } else {
        dl_error(d, t->loc, "unexpected %s", found);
    }
    if (note_open) dl_note(d, o->loc, "to match this '%c'", o->ch);
    dl_parse_recover(ctx);
    return 0;
}
