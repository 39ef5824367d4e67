/* astbuild.h - private to grammar/: the parse context shared by the scanner
 * (lexer.l), the grammar (parser.y), the token stream with error recovery
 * (parse.c) and the AST constructors called by grammar actions (ast.c).
 * Nothing outside grammar/ includes this; the public interface is ast.h.
 */
#ifndef DL_ASTBUILD_H
#define DL_ASTBUILD_H

#include "ast.h"

/* A growable array of pointers in the pool (grammar lists before flattening). */
typedef struct DlPtrList {
    void **a;
    int n, cap;
} DlPtrList;

/* Call arguments while they are parsed: positional, then keyword. */
typedef struct AstArgs {
    DlPtrList pos;  /* AstExpr* */
    DlPtrList kw;   /* AstKwarg* */
} AstArgs;

typedef struct DlNumLit {
    double v;
    int is_int;
} DlNumLit;

/* Bison's semantic value (api.value.type) and location (api.location.type):
 * the first and last token of a rule; AST nodes keep `first`. */
typedef union DlVal {
    const char *str;  /* IDENT, STRING (escapes resolved, pool-allocated) */
    DlNumLit num;     /* NUMBER */
    AstExpr *expr;
    AstArgs *args;
    DlPtrList *list;  /* list elements, items, params */
    AstItem *item;
    AstParam *param;
} DlVal;

typedef struct DlSpan {
    DlSrcLoc first, last;
} DlSpan;

/* One token as delivered to the parser (parse.c keeps a few of these). */
typedef struct DlTok {
    int kind;        /* a yytokentype value */
    DlVal val;
    DlSrcLoc loc;
    size_t off;      /* byte offset of the token in the source */
    int bol;         /* first token on its line */
    int tracked;     /* already seen by the bracket tracking */
} DlTok;

/* An open bracket, for "expected ')' (to close '(' at line 3)". */
typedef struct DlOpen {
    char ch;         /* '{', '(' or '[' */
    DlSrcLoc loc;
    DlSrcLoc owner_loc; /* for '{': its declaration keyword (len 0: none) */
    size_t owner_off;
} DlOpen;

enum { DL_RECOVER_NONE, DL_RECOVER_ITEM, DL_RECOVER_DECL };

typedef struct DlParseCtx {
    DlPool *pool;
    DlDiag *diag;
    const DlSource *src;
    void *scanner;          /* the flex scanner (yyscan_t) */
    DlPtrList decls;        /* AstDecl*, appended as declarations reduce */

    /* Scanner position (lexer.l, YY_USER_ACTION): of the next byte. */
    int line, col;
    size_t off, tok_off;

    /* Parser state used by error reporting and recovery. */
    int in_body;            /* between a body's '{' and '}' (items level) */
    int body_errors;        /* the error count when the body opened */
    DlSrcLoc body_end;      /* the '}' of the body that just closed */
    DlTok last, prev, prev2;/* the last tokens delivered (last = lookahead) */
    DlTok raw_last;         /* the last token read from the scanner */
    DlTok last_kw;          /* the latest declaration keyword */
    int eof;                /* the scanner has returned end of file */
    DL_VEC(DlOpen) open;    /* open brackets, innermost last */
    int recover;            /* DL_RECOVER_*: skipping to a sync point */
    DlTok queue[3];         /* tokens to deliver before reading on */
    int nqueue;
    int deep_reported;      /* "nested deeper than" said for the item being parsed */
} DlParseCtx;

/* parse.c: the token stream between the scanner and the parser. */
int dl_yylex(DlVal *lval, DlSpan *lloc, void *scanner, DlParseCtx *ctx);
/* Arrange error recovery after a syntax error on ctx->last (see parse.c). */
void dl_parse_recover(DlParseCtx *ctx);
int dl_is_decl_keyword(int kind);
/* Does a line break after this token continue the expression (',' '+' ...)? */
int dl_token_continues(int kind);
const DlOpen *dl_parse_innermost_open(const DlParseCtx *ctx);

/* ast.c: constructors called by the grammar actions. */
void dl_list_push(DlParseCtx *c, DlPtrList *l, void *x);
DlPtrList *dl_list_new(DlParseCtx *c);
AstExpr *ast_new_num(DlParseCtx *c, DlSrcLoc loc, DlNumLit n);
AstExpr *ast_new_str(DlParseCtx *c, DlSrcLoc loc, const char *s);
AstExpr *ast_new_ident(DlParseCtx *c, DlSrcLoc loc, const char *name);
AstExpr *ast_new_field(DlParseCtx *c, AstExpr *base, const char *name);
AstExpr *ast_new_call(DlParseCtx *c, DlSrcLoc loc, const char *name, AstArgs *args);
AstExpr *ast_new_list(DlParseCtx *c, DlSrcLoc loc, DlPtrList *elems);
AstExpr *ast_new_range(DlParseCtx *c, AstExpr *lo, AstExpr *hi, AstExpr *step);
AstExpr *ast_new_neg(DlParseCtx *c, DlSrcLoc loc, AstExpr *a);
AstExpr *ast_new_binop(DlParseCtx *c, char op, AstExpr *a, AstExpr *b);
/* Append a positional (key NULL) or keyword argument; args NULL = new list.
 * A positional argument after a keyword one is reported and dropped. */
AstArgs *ast_args_add(DlParseCtx *c, AstArgs *args, const char *key, DlSrcLoc key_loc,
                      AstExpr *value);
AstItem *ast_new_item(DlParseCtx *c, const char *name, DlSrcLoc loc, AstExpr *value);
AstParam *ast_new_param(DlParseCtx *c, const char *name, DlSrcLoc loc, AstExpr *value);
/* Append a declaration to the file.  items: AstItem* (NULL = none);
 * params: AstParam* (NULL = none).  Checks where 'return' may appear. */
void ast_add_decl(DlParseCtx *c, AstDeclKind kind, DlSrcLoc kw_loc, const char *name,
                  DlSrcLoc name_loc, DlPtrList *params, DlPtrList *items, DlSrcLoc end_loc);

#endif
