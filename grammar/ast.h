/* ast.h - the abstract syntax tree of a .dldl file: the front end's only output.
 *
 * The language is small and uniform (docs/language.md): a file is a list of
 * declarations; each holds items `name = expr` (and, in blocks and networks,
 * `return expr`).  What an item means (which keys a `data` block takes, which
 * calls are layers) is decided by the compiler from tables, not by the grammar,
 * so a new data source, target, loss or metric kind needs no grammar change.
 *
 *   data NAME { item* }                          AST_DATA
 *   target NAME = expr                           AST_TARGET   (one item: NAME = expr)
 *   block NAME(p1, p2, ...) { item* return e }   AST_BLOCK    (params: names only)
 *   network NAME(p = expr, ...) { item* return e }  AST_NETWORK (params bind inputs)
 *   loss = expr | optimizer = expr               AST_LOSS, AST_OPTIMIZER (one item)
 *   train { item* }  metrics { item* }           AST_TRAIN, AST_METRICS
 *   params { name = constant ... }               AST_PARAMS (values dldlc -D name=value overrides)
 *
 * All nodes live in the DlPool passed to dl_parse and die with it.
 */
#ifndef DL_AST_H
#define DL_AST_H

#include "../common/diag.h"
#include "../common/util.h"

typedef enum AstExprKind {
    EX_NUM,    /* num: a number literal (integers too; is_int says which) */
    EX_STR,    /* str: a string literal, escapes resolved */
    EX_IDENT,  /* name: a bare identifier */
    EX_FIELD,  /* base.name: field access, e.g. faces.age (base in a) */
    EX_CALL,   /* name(args, key = value, ...): args in args[], kwargs in kwargs[] */
    EX_LIST,   /* [e, ...]: elements in args[] */
    EX_RANGE,  /* lo..hi [step s]: a, b, and c (NULL when no step); inclusive */
    EX_NEG,    /* -a */
    EX_BINOP,  /* a op b, op one of '+', '-', '*', '/' */
} AstExprKind;

typedef struct AstExpr AstExpr;
typedef struct AstKwarg {
    const char *key;
    DlSrcLoc loc; /* of the key */
    AstExpr *value;
} AstKwarg;

/* How deep expressions may nest (AstExpr.depth): far above any real spec
 * (the specs in specs/ nest 5 levels at most) and low enough that every pass that
 * recurses on the nesting stays well inside an 8 MiB stack, in an ASan
 * build too.  Deeper is a syntax error, "expression nested deeper than 256
 * levels". */
#define DL_AST_MAX_DEPTH 256

struct AstExpr {
    AstExprKind kind;
    DlSrcLoc loc;      /* the whole expression's first token (len: that token) */
    int depth;         /* nesting: 1 for a leaf; a call, a list, a range and a '-' are one
                          level above their deepest part, and so is a binary operator above
                          its right operand; a binary operator's left operand and a field's
                          base are on its own level, because every pass walks those chains
                          in a loop (a + b + c + ... of 50,000 terms has depth 2).  At most
                          DL_AST_MAX_DEPTH after a parse without errors; passes may recurse
                          on a, b, c, args and kwargs except EX_BINOP's a and EX_FIELD's a. */
    double num;        /* EX_NUM */
    int is_int;        /* EX_NUM: written without '.', 'e' */
    const char *name;  /* EX_STR text, EX_IDENT/EX_CALL name, EX_FIELD field name */
    char op;           /* EX_BINOP */
    AstExpr *a, *b, *c;/* EX_FIELD base (a); EX_RANGE lo, hi, step; EX_NEG a; EX_BINOP a, b */
    AstExpr **args;    /* EX_CALL positional args, EX_LIST elements */
    int nargs;
    AstKwarg *kwargs;  /* EX_CALL keyword args, in source order */
    int nkwargs;
};

typedef struct AstItem {
    const char *name;  /* NULL for `return expr` */
    DlSrcLoc loc;      /* of the name (or of 'return') */
    AstExpr *value;
} AstItem;

typedef enum AstDeclKind {
    AST_DATA, AST_TARGET, AST_BLOCK, AST_NETWORK, AST_LOSS,
    AST_OPTIMIZER, AST_TRAIN, AST_METRICS, AST_PARAMS,
} AstDeclKind;

typedef struct AstParam {
    const char *name;
    DlSrcLoc loc;
    AstExpr *value;    /* AST_NETWORK: the bound input (x = faces.input); else NULL */
} AstParam;

typedef struct AstDecl {
    AstDeclKind kind;
    const char *name;  /* NULL for loss, optimizer, train, metrics */
    DlSrcLoc loc;      /* of the keyword */
    DlSrcLoc name_loc;
    AstParam *params;  /* AST_BLOCK, AST_NETWORK */
    int nparams;
    AstItem *items;    /* body; AST_TARGET/LOSS/OPTIMIZER: exactly one item */
    int nitems;
    DlSrcLoc end_loc;  /* of the closing '}' (or of the last token) */
} AstDecl;

typedef struct AstFile {
    const DlSource *src;
    AstDecl *decls;
    int ndecls;
} AstFile;

/* Parse src into *out.  Syntax errors go to diag (several per run: the parser
 * recovers at the next item or declaration).  Returns the number of errors;
 * *out is set even when errors occurred (with the declarations that parsed). */
int dl_parse(const DlSource *src, DlPool *pool, DlDiag *diag, AstFile **out);

/* Print the AST as indented S-expressions, one node per line, with line:col
 * (the --emit=ast text, pinned by tests/parse/ *.ast goldens). */
void ast_dump(const AstFile *f, DlBuf *out);

const char *ast_decl_kind_name(AstDeclKind k);

#endif
