/* lower_net_int.h - what lower_net.c (expressions, blocks, the network) and
 * lower_layers.c (the layer table) share; not a stage contract. */
#ifndef DL_LOWER_NET_INT_H
#define DL_LOWER_NET_INT_H

#include "lower_int.h"

typedef enum VKind { V_ERR, V_TENSOR, V_NUM, V_STR, V_BOOL } VKind;
typedef struct Value {
    VKind kind;
    uint32_t node; /* V_TENSOR */
    double num;    /* V_NUM, V_BOOL */
    const char *str;
    double num2;   /* V_NUM of an AT_INT2 argument: the second of [h, w] (num when one number) */
} Value;
static const Value VERR = {V_ERR, G_NONE, 0, NULL, 0};


typedef struct Net {
    Lower *L;
    Graph *g;
    int depth;                     /* of eval's recursion */
    int param_chain;               /* params { } names being evaluated inside one another */
    int too_big;                   /* tensors past LW_MAX_NUMEL (the first is reported) */
    NameMap blocks;                /* block name -> index in L->blocks */
    int train;
    uint32_t scalars;
    uint32_t image;
    uint32_t heads[LW_MAX_HEADS];  /* the logits of each head, from the return */
} Net;

typedef struct LayerCall {
    const AstExpr *call;
    const char *path;     /* the name of the layer's result */
    Value a[LW_MAX_ARGS]; /* evaluated arguments (V_ERR: not given) */
    int given[LW_MAX_ARGS];
} LayerCall;

typedef struct Layer {
    const char *name;
    Value (*fn)(Net *N, const LayerCall *c);
    ArgSpec spec[LW_MAX_ARGS];
    int nspec;
} Layer;

/* The layer table (lower_layers.c): one row per layer a network may call. */
extern const Layer lw_layers[];
extern const int lw_nlayers;

/* "prefix.name" (name alone when prefix is empty), pool-allocated. */
const char *net_join(Net *N, const char *prefix, const char *name);
/* Append a node; a name already used gets a suffix _2, _3, ...  A tensor of
 * more than LW_MAX_NUMEL elements is an error (said once). */
uint32_t net_add(Net *N, GOp op, const uint32_t *in, int nin, const int64_t *shape, int nd, GAttr a,
                 const char *name, DlSrcLoc loc);
const GNode *net_node(Net *N, uint32_t i);
/* A PARAM node initialised by init with fan_in. */
uint32_t net_param(Net *N, const char *name, const int64_t *shape, int nd, GInitKind init, double fan_in,
                   DlSrcLoc loc);
static inline Value net_tensor(uint32_t i) { return (Value){V_TENSOR, i, 0, NULL, 0}; }

#endif
