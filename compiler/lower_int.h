/* lower_int.h - what the lowering files share (not a public interface):
 *   lower.c       driver: declarations, names, train, optimizer, metrics, data binding
 *   lower_args.c  the argument binder and constant evaluation used by every table
 *   lower_data.c  data blocks and targets
 *   lower_net.c   networks and blocks: layers, shapes, the forward graph
 *   lower_loss.c  the loss: terms, weights, and their graph
 * Each kind (data key, source, target, layer, loss, metric, schedule) is one
 * table row: name, handler, argument spec.  A new kind = one row + one handler.
 */
#ifndef DL_LOWER_INT_H
#define DL_LOWER_INT_H

#include "lower.h"

/* ---- argument specs ------------------------------------------------------ */

typedef enum ArgType {
    AT_TENSOR, /* a tensor of the network (a layer's input) */
    AT_INT,    /* an integer */
    AT_NUM,    /* a number */
    AT_BOOL,   /* true | false */
    AT_STR,    /* a string literal */
    AT_EXPR,   /* anything: the handler checks it (lists, ranges, label refs, calls) */
} ArgType;

typedef struct ArgSpec {
    const char *name;  /* keyword; positional arguments fill the spec in order */
    ArgType type;
    int required;
    double def;        /* the default of an optional number / bool (documentation and handlers) */
} ArgSpec;

#define LW_MAX_ARGS 8

typedef DL_VEC(DlKV) KVVec;

/* ---- what lowering collects --------------------------------------------- */

typedef struct DataLabel {
    const char *name;  /* item name: "age" */
    DlSrcLoc loc;
    const char *from;  /* "column:age" | "name:pitch" */
    const char *unit;  /* "years", "" */
    int axis;          /* index in the [B,A] label input (a target axis), or -1 */
} DataLabel;

typedef struct DataInfo {
    const AstDecl *decl;
    const char *source_kind;       /* row name of the source table, once known */
    int used;
    int input_ok;                  /* input = image(...) was valid */
    int C, H, W;
    KVVec kv;                      /* source, split, crop, input keys (label and augment keys added later) */
    DL_VEC(DataLabel) labels;
    int hflip;
    int crop_pad;                  /* random_crop(pad = P): pixels */
    const AstExpr *negate;         /* hflip(negate = [...]) list, resolved with the axes */
    int have_source, have_split, have_input, have_crop, have_augment;
} DataInfo;

typedef struct TargetInfo {
    const AstDecl *decl;
    const char *name;
    const char *kind;              /* table name: gaussian1d, gaussian2d, onehot */
    int ok, used;
    int naxes;
    int label[DL_MAX_AXES];        /* index into DataInfo.labels */
    int nbins[DL_MAX_AXES];
    float *bins[DL_MAX_AXES];
    float sigma[DL_MAX_AXES];
    int64_t K;
} TargetInfo;

/* One weighted term of the loss, resolved against the declarations. */
typedef enum LossKind { LOSS_KL, LOSS_L1 } LossKind;
typedef struct LossTerm {
    LossKind kind;
    const char *name;              /* output name: "kl", "l1" (made unique) */
    double weight;
    int weighted;                  /* a weight was written */
    DlSrcLoc loc;
} LossTerm;

typedef struct Lower {
    const AstFile *f;
    DlPool *pool;
    DlDiag *diag;
    int quiet;                     /* second lowering pass (eval): no messages */
    int nerr;

    DataInfo data;                 /* the one data declaration */
    DL_VEC(TargetInfo) targets;
    const AstDecl *net, *loss, *opt, *train, *metrics;
    DL_VEC(const AstDecl *) blocks;
    int *block_used;               /* per blocks entry */
    int *block_seen;               /* per blocks entry: instantiated once (warnings given) */

    TargetInfo *target;            /* the target the loss and metrics use (NULL: none valid) */
    DL_VEC(LossTerm) terms;
    int batch, eval_batch, epochs;
    double weight_decay;           /* the optimizer's weight_decay (Graph.weight_decay of the train graph) */
    GOp optimizer;                 /* its update op and constant attr (Graph.optimizer, optimizer_attr) */
    GAttr optimizer_attr;
    KVVec hyper;
    DL_VEC(DlPlanMetric) metrics_out;
} Lower;

/* ---- lower.c: messages and small helpers --------------------------------- */
void lw_error(Lower *L, DlSrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lw_warn(Lower *L, DlSrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void lw_note(Lower *L, DlSrcLoc loc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* "unknown W 'word'" + "; did you mean 'x'?" when one of names is close. */
void lw_unknown(Lower *L, DlSrcLoc loc, const char *what, const char *word,
                const char *const *names, int n, const char *context);
void lw_kv(Lower *L, KVVec *vec, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
const AstDecl *lw_find_decl(const Lower *L, const char *name);

/* ---- lower_args.c -------------------------------------------------------- */
/* Bind call's positional and keyword arguments to spec (slots[i] = the
 * expression for spec[i] or NULL).  what names the callee in messages
 * ("layer 'conv2d'").  Reports unknown / duplicate / missing / surplus
 * arguments; returns the number of errors. */
int lw_bind(Lower *L, const AstExpr *call, const char *what, const ArgSpec *spec, int nspec,
            const AstExpr **slots);
/* Constant evaluation (numbers, -x, + - * /).  Report "ARG of WHAT must be a
 * number" and return -1 when e is not constant. */
int lw_const(Lower *L, const AstExpr *e, const char *arg, const char *what, double *out);
int lw_get_num(Lower *L, const AstExpr *e, const char *arg, const char *what, double def, double *out);
int lw_get_int(Lower *L, const AstExpr *e, const char *arg, const char *what, int def, int *out);
int lw_get_bool(Lower *L, const AstExpr *e, const char *arg, const char *what, int def, int *out);
int lw_get_str(Lower *L, const AstExpr *e, const char *arg, const char *what, const char *def,
               const char **out);
/* A list of exactly n numbers ("'ARG' of WHAT must be a list of N numbers"). */
int lw_num_list(Lower *L, const AstExpr *e, const char *arg, const char *what, int n, double *out);
const char *lw_type_name(ArgType t);
const char *lw_expr_desc(const AstExpr *e); /* "a string", "a list", "'x'" ... */

/* ---- lower_data.c -------------------------------------------------------- */
void lw_data(Lower *L, const AstDecl *d);
void lw_target(Lower *L, const AstDecl *d);
/* Resolve `data.label` (or a list of them) to DataInfo.labels indices.
 * Returns the count (<= max) or -1 after an error. */
int lw_label_refs(Lower *L, const AstExpr *e, int *idx, int max);
/* A name for a target: the TargetInfo, or NULL after an error at e. */
TargetInfo *lw_target_ref(Lower *L, const AstExpr *e);
/* Number the labels by the target's axes and write the data binding to meta. */
void lw_data_binding(Lower *L, DlPlan *meta);

/* ---- lower_net.c --------------------------------------------------------- */
typedef struct NetOut {
    uint32_t logits;               /* [B,K] */
    uint32_t logsm, probs, expect; /* LOG_SOFTMAX, EXP, EXPECT nodes */
    uint32_t image, target, label, scalars;
    int ok;
} NetOut;
/* Build one mode's forward graph (train: 1, eval: 0) with inputs and the
 * softmax/expectation read-out; returns NULL after errors. */
Graph *lw_network(Lower *L, int train, int batch, NetOut *out);
/* Is e a reference to the network (its name)? Reports otherwise. */
int lw_net_ref(Lower *L, const AstExpr *e);
/* Append a named output to g (the array lives in g's pool). */
void lw_output(Graph *g, GOutKind kind, const char *name, uint32_t node);
/* "[64, 128, 8, 8]" into buf. */
const char *lw_shape_str(const GNode *n, char *buf, size_t cap);

/* ---- lower_loss.c -------------------------------------------------------- */
void lw_loss(Lower *L, const AstDecl *d);        /* parse and check: L->terms */
void lw_metrics(Lower *L, const AstDecl *d);     /* parse and check: L->metrics_out */
/* Append the loss nodes and the outputs to the train graph. */
void lw_loss_graph(Lower *L, Graph *g, const NetOut *no);

#endif
