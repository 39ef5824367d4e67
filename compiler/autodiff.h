/* autodiff.h - reverse-mode differentiation as a graph-to-graph pass.
 *
 * ad_differentiate appends to the train graph (lower.h) the backward pass of
 * its GOUT_LOSS output and the optimizer update, as ordinary nodes (so they
 * are verified, dumped, fused and planned like the forward ones):
 *
 *   seed      FILL 1.0 [1] "grad.loss"
 *   backward  nodes in reverse order, one rule per op (the maths of ops.def);
 *             a node feeding several consumers gets the ADD of their
 *             contributions.  Only nodes that lead to the loss AND depend on a
 *             PARAM get a gradient.  Gradient nodes are named "grad.<node>".
 *   update    per PARAM with a gradient, in parameter order:
 *               v = STATE "<param>.momentum" (shape of the param)
 *               SGD(w, g, v, scalars), attr.sgd.wd = Graph.weight_decay,
 *               inplace = w.
 *
 * How later passes tell the roles apart (memory planner: AR_GRAD / AR_OPT):
 *   - a parameter's gradient: the node with GNode.param = the PARAM index and
 *     op != OP_STATE (exactly one per parameter: the final, accumulated one);
 *   - a momentum buffer: op == OP_STATE with GNode.param = the PARAM index
 *     (and a name ending in ".momentum"); batch norm running statistics are
 *     OP_STATE nodes with param == G_NONE.
 * Returns the number of errors (an op without a rule on the loss path, no
 * loss output), reported to diag as internal errors.
 */
#ifndef DL_AUTODIFF_H
#define DL_AUTODIFF_H

#include "graph.h"

int ad_differentiate(Graph *g, DlDiag *diag);

#endif
