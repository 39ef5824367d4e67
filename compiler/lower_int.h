/* lower_int.h - what the lowering files share (not a public interface):
 *   lower.c       driver: declarations, names, train, optimizer, metrics, data binding
 *   lower_args.c  the argument binder and constant evaluation used by every table
 *   lower_data.c  data blocks, label references, the data binding
 *   lower_target.c targets, ce's one-hot targets, the plan's targets, heads and metrics
 *   lower_net.c   networks and blocks: layers, shapes, the forward graph
 *   lower_heads.c the network's heads and references to them; label inputs
 *   lower_loss.c  the loss: terms, weights, and their graph
 * Each kind (data key, source, target, layer, loss, metric, schedule) is one
 * table row: name, handler, argument spec.  A new kind = one row + one handler.
 */
#ifndef DL_LOWER_INT_H
#define DL_LOWER_INT_H

#include <math.h>

#include "lower.h"

/* ---- argument specs ------------------------------------------------------ */

typedef enum ArgType {
    AT_TENSOR, /* a tensor of the network (a layer's input) */
    AT_INT,    /* an integer */
    AT_INT2,   /* an integer, or a pair [h, w] of integers (a layer's kernel) */
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
    const char *from;  /* "column:age" | "name:pitch" | "var:age" | "argmax:labels" */
    const char *unit;  /* "years", "" */
    int used;          /* read by a target, loss or metric */
    int col;           /* the plan's label column (numbered by lw_data_binding), or -1 */
} DataLabel;

/* `name = distribution(variable("labels"))`: a label distribution per sample
 * read from the data (a GIVEN target's rows). */
typedef struct DataDist {
    const char *name;
    DlSrcLoc loc;
    const char *from;  /* "var:labels" */
    int used;
    int index;         /* dist.N of the binding, or -1 */
    int width;         /* values per sample when the kind fixes it (objects(): 20), else 0 */
    int map;           /* mask(): a label map of the input's size (width 0) */
} DataDist;

typedef struct DataInfo {
    const AstDecl *decl;
    const char *source_kind;       /* row name of the source table, once known */
    int used;
    int input_ok;                  /* input = image(...) was valid */
    int C, H, W;                   /* images; features: C = d, H = W = 0 */
    int features;                  /* input = features(d): [B,d] vectors */
    int standardize;               /* features(standardize = true) */
    KVVec kv;                      /* source, split, crop, input keys (label and augment keys added later) */
    DL_VEC(DataLabel) labels;
    DL_VEC(DataDist) dists;
    int hflip;
    int crop_pad;                  /* random_crop(pad = P): pixels */
    double scale_min, scale_max;   /* random_scale(min, max); 0 when absent */
    const AstExpr *negate;         /* hflip(negate = [...]) list, resolved with the axes */
    int have_source, have_split, have_input, have_crop, have_augment;
} DataInfo;

typedef struct TargetInfo {
    const AstDecl *decl;           /* NULL for the one-hot target a ce() term implies */
    const char *name;
    DlSrcLoc loc;                  /* of its name (or of the ce term) */
    int kind;                      /* DlTargetKind */
    int ok, used;
    int naxes;
    int label[DL_MAX_AXES];        /* index into DataInfo.labels, or -1 (GIVEN) */
    int sigma_label[DL_MAX_AXES];  /* per-sample sigma: index into DataInfo.labels, or -1 */
    int nbins[DL_MAX_AXES];        /* 0 until known (a ce target takes its head's width) */
    float *bins[DL_MAX_AXES];
    float sigma[DL_MAX_AXES];
    int dist;                      /* GIVEN: index into DataInfo.dists; else -1 */
    int has_ignore;
    float ignore;
    int clamp;                     /* labels outside the bins' range are clamped (else bad samples) */
    float difficult;               /* MULTILABEL: weight of a class present only as difficult objects */
    int class_head;                /* a ce target: the head whose classes it spans; else -1 */
    int map_h, map_w;              /* LABEL_MAP: the label map's size (the input's); else 0 */
    int64_t K;
} TargetInfo;

/* Rows of a target per sample: map_h * map_w for a label map, else 1. */
static inline int64_t lw_target_rows(const TargetInfo *t) { return t->map_h ? (int64_t)t->map_h * t->map_w : 1; }

/* A head of the network: `return softmax(z)` (named after the network) or
 * `return heads(name = softmax(z), ...)`.  Found from the return statement
 * before the network is lowered (so the loss and metrics can name heads);
 * K is known once it is. */
typedef struct HeadInfo {
    const char *name;
    DlSrcLoc loc;
    int64_t K;                     /* 0 until the network is lowered */
    int64_t rows;                  /* rows per sample: 1, or H*W for a softmax over [B,K,H,W] */
} HeadInfo;

/* One weighted term of the loss, resolved against the declarations. */
typedef enum LossKind { LOSS_KL, LOSS_L1 } LossKind;
typedef struct LossTerm {
    LossKind kind;                 /* a ce() term is a KL term to a one-hot target */
    const char *name;              /* output name: "kl", "l1", "ce" (made unique) */
    double weight;
    int weighted;                  /* a weight was written */
    DlSrcLoc loc;
    int head, target;              /* indices into Lower.heads and Lower.targets */
    int ncols;                     /* L1: the labels compared, indices into DataInfo.labels */
    int cols[DL_MAX_AXES];
} LossTerm;

/* A metric before its label columns are numbered (lw_plan_meta). */
typedef struct MetricInfo {
    DlPlanMetric m;                /* cols[] and sigma_col: indices into DataInfo.labels */
    DlSrcLoc loc;
} MetricInfo;

/* params { name = value }: a constant the spec names, overridable by dldlc -D. */
typedef struct SpecParam {
    const char *name;
    DlSrcLoc loc;
    const AstExpr *value;
    int used;
} SpecParam;

typedef struct Lower {
    const AstFile *f;
    DlPool *pool;
    DlDiag *diag;
    int quiet;                     /* second lowering pass (eval): no messages */
    int nerr;
    int ref_errors;                /* errors in data, targets, loss and metrics (warnings about unused labels would echo them) */

    DataInfo data;                 /* the one data declaration */
    DL_VEC(TargetInfo) targets;    /* declared, then those ce() terms imply */
    DL_VEC(HeadInfo) heads;
    DL_VEC(SpecParam) params;
    NameMap param_index;           /* name -> index in params */
    NameMap decl_index;            /* declaration name -> index in f->decls (the first) */
    const AstDecl *net, *loss, *opt, *train, *metrics;
    DL_VEC(const AstDecl *) blocks;
    int *block_used;               /* per blocks entry */
    int *block_seen;               /* per blocks entry: instantiated once (warnings given) */

    DL_VEC(LossTerm) terms;
    int loss_kind_count[8];        /* terms of each row of lower_loss.c's table so far (their names) */
    int loss_nterms;               /* terms seen (LW_MAX_LOSS_TERMS) */
    int batch, eval_batch, epochs;
    double weight_decay;           /* the optimizer's weight_decay (Graph.weight_decay of the train graph) */
    GOp optimizer;                 /* its update op and constant attr (Graph.optimizer, optimizer_attr) */
    GAttr optimizer_attr;
    KVVec hyper;
    DL_VEC(MetricInfo) metrics_out;
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
/* The value of spec parameter `name` (marking it used), or NULL. */
const AstExpr *lw_param(Lower *L, const char *name);

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
/* A parameter's value may name another parameter, to this depth (so
 * p = q, q = p is an error, not a loop). */
#define LW_MAX_PARAM_CHAIN 16
/* Integers (epochs, batch, channels, sizes, ...) are whole numbers within
 * +-LW_MAX_INT, so that they and their sums fit an int. */
#define LW_MAX_INT 1000000000
static inline int lw_is_int(double v) { return v == floor(v) && fabs(v) <= LW_MAX_INT; }
/* The message for a number that is not such an integer: "must be an
 * integer, not 2.5", "is too large: 1e+20 (at most 1000000000)". */
void lw_int_error(Lower *L, DlSrcLoc loc, const char *arg, const char *what, double v);
int lw_get_num(Lower *L, const AstExpr *e, const char *arg, const char *what, double def, double *out);
int lw_get_int(Lower *L, const AstExpr *e, const char *arg, const char *what, int def, int *out);
int lw_get_bool(Lower *L, const AstExpr *e, const char *arg, const char *what, int def, int *out);
int lw_get_str(Lower *L, const AstExpr *e, const char *arg, const char *what, const char *def,
               const char **out);
/* A list of exactly n numbers ("'ARG' of WHAT must be a list of N numbers"). */
int lw_num_list(Lower *L, const AstExpr *e, const char *arg, const char *what, int n, double *out);
const char *lw_type_name(ArgType t);
const char *lw_expr_desc(const AstExpr *e); /* "a string", "a list", "'x'" ... */

/* ---- lower_data.c and lower_target.c ---------------------------------------- */
void lw_data(Lower *L, const AstDecl *d);
void lw_target(Lower *L, const AstDecl *d);
/* Resolve `data.label` (or a list of them) to DataInfo.labels indices,
 * marking them used.  Returns the count (<= max) or -1 after an error. */
int lw_label_refs(Lower *L, const AstExpr *e, int *idx, int max);
/* A target's name: its index in L->targets (marked used), or -1 after an error at e. */
int lw_target_ref(Lower *L, const AstExpr *e);
/* The one-hot target over a head's classes that ce(head, label) fits:
 * index in L->targets (its bins are filled once the head's width is known). */
int lw_class_target(Lower *L, int head, int label, int has_ignore, double ignore, DlSrcLoc loc);
/* Number the used labels (DataLabel.col) and distribution fields and write
 * the data binding to meta. */
void lw_data_binding(Lower *L, DlPlan *meta);
/* After the network is lowered: heads, targets (bins of ce targets from
 * their head) and metrics into meta, label indices mapped to columns. */
void lw_plan_meta(Lower *L, DlPlan *meta);

/* ---- lower_net.c --------------------------------------------------------- */
/* Elements of one tensor: 2^40 floats are 4 TiB, past any machine; sizes stay
 * far from int64 overflow in every pass after lowering. */
#define LW_MAX_NUMEL ((int64_t)1 << 40)
#define LW_MAX_HEADS 16
typedef struct NetOut {
    int nheads;
    uint32_t logits[LW_MAX_HEADS]; /* [B,K] per head */
    uint32_t logsm[LW_MAX_HEADS], probs[LW_MAX_HEADS]; /* LOG_SOFTMAX, EXP nodes */
    uint32_t *expect;              /* [heads x targets]: EXPECT node of (head, target), or G_NONE */
    uint32_t image, scalars;
    uint32_t *target_in;           /* per target: its [B,K] input (train), or G_NONE */
    int ok;
} NetOut;
/* Build one mode's forward graph (train: 1, eval: 0) with its inputs (train:
 * the targets and labels the loss reads), each head's softmax, and the
 * expectations the loss and metrics read; returns NULL after errors. */
Graph *lw_network(Lower *L, int train, int batch, NetOut *out);
/* The train graph of one of `ranks` data-parallel processes, batch = B/ranks (lower.h lower_file_ranks). */
Graph *lw_network_ranks(Lower *L, int batch, int ranks, NetOut *out);
/* The heads the network's return statement declares (L->heads); reports a
 * malformed return.  Called once before the loss and metrics are resolved. */
void lw_net_heads(Lower *L);
/* A head reference (`net` for a one-head network, or `net.head`): its index
 * in L->heads, or -1 after an error at e. */
int lw_head_ref(Lower *L, const AstExpr *e);
/* The [B,ncols] label input of the train graph for these DataInfo.labels
 * indices (one node per distinct list; attr.input.cols holds the plan's label
 * columns, so lw_data_binding must have numbered them). */
uint32_t lw_label_input(Lower *L, Graph *g, const int *labels, int n);
/* Append a named output to g (the array lives in g's pool); head and target
 * -1 unless the output is a head's probabilities or expectation. */
void lw_output(Graph *g, GOutKind kind, const char *name, uint32_t node, int head, int target);
/* "[64, 128, 8, 8]" into buf. */
const char *lw_shape_str(const GNode *n, char *buf, size_t cap);

/* ---- lower_loss.c -------------------------------------------------------- */
/* Terms of one loss: each is an output of the plan, reported per batch (real
 * losses have one to three). */
#define LW_MAX_LOSS_TERMS 1000
void lw_loss(Lower *L, const AstDecl *d);        /* parse and check: L->terms */
void lw_metrics(Lower *L, const AstDecl *d);     /* parse and check: L->metrics_out */
/* Which (head, target) expectations the loss and metrics read: mark[h * ntargets + t]. */
void lw_expectations_used(const Lower *L, uint8_t *mark);
/* Check each term's and metric's head against its target's width (after the
 * network gave the heads their K); returns the number of errors. */
int lw_check_widths(Lower *L);
/* Append the loss nodes and the outputs to the train graph. */
void lw_loss_graph(Lower *L, Graph *g, const NetOut *no);

#endif
