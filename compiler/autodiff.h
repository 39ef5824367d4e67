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
 *   update    per PARAM with a gradient, in parameter order, the op
 *             Graph.optimizer (one row per optimizer in autodiff.c):
 *               SGD, SGD_NESTEROV  v = STATE "<param>.momentum" (slot 0)
 *                                  OP(w, g, v, scalars), attr.sgd.wd
 *               ADAM, ADAMW        m = STATE "<param>.exp_avg" (slot 0),
 *                                  v = STATE "<param>.exp_avg_sq" (slot 1)
 *                                  OP(w, g, m, v, scalars), attr.adam =
 *                                  Graph.optimizer_attr.adam
 *             each state of the param's shape, attr.ostate.slot its copy of
 *             the parameter layout in AR_OPT; the weight decay is
 *             Graph.weight_decay; inplace = w.  Adam's states carry
 *             PyTorch's names (its state_dict's exp_avg, exp_avg_sq); SGD's is
 *             "momentum" (PyTorch: momentum_buffer).
 *
 * How later passes tell the roles apart (memory planner: AR_GRAD / AR_OPT):
 *   - a parameter's gradient: the node with GNode.param = the PARAM index and
 *     op != OP_STATE (exactly one per parameter: the final, accumulated one);
 *   - an optimizer state (momentum, exp_avg, exp_avg_sq): op == OP_STATE with
 *     GNode.param = the PARAM index and attr.ostate.slot; batch norm running
 *     statistics are OP_STATE nodes with param == G_NONE.
 * Returns the number of errors (an op without a rule on the loss path, no
 * loss output, a Graph.optimizer that is not an optimizer), reported to diag
 * as internal errors.
 */
#ifndef DL_AUTODIFF_H
#define DL_AUTODIFF_H

#include "graph.h"

int ad_differentiate(Graph *g, DlDiag *diag);

#endif
