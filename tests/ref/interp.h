/* interp.h - the reference interpreter: the op graph evaluated in double
 * precision, one naive loop nest per op, straight from the one-line maths of
 * compiler/ops.def.  It is what every numeric test compares against:
 * gradient checks (finite differences of the loss computed here), generated
 * CPU kernels (float results against these doubles) and the numpy loss
 * fixture.  It is deliberately slow and simple: no fusion, no blocking, no
 * shared code between an op and its gradient.
 *
 * Linking: the Makefile links every tests/unit/test_*.c with the objects of
 * grammar/, compiler/, codegen/, runtime/ and common/, but not with tests/ref/.
 * A test that uses the interpreter therefore does
 *     #include "../ref/interp.c"
 * once (it is one translation unit per test binary, so no symbol clashes),
 * which keeps the reference out of the shipped objects and needs no extra
 * Makefile rule.
 *
 * Tensor layout: row-major NCHW, as the graph (compiler/graph.h); a node's
 * value is graph_numel(node) doubles.
 */
#ifndef DL_REF_INTERP_H
#define DL_REF_INTERP_H

#include "../../compiler/graph.h"

/* Evaluate every node of g in node order, in double precision.
 *
 * vals: g->n pointers.  Source nodes (INPUT, SCALARS, PARAM, STATE) must be
 * given by the caller (numel doubles each); SCALARS is [lr, momentum or
 * beta1, step, seed].  CONST nodes are filled from attr.cst.data when vals[i] is NULL.
 * Every other vals[i] is allocated here (dl_xcalloc) when NULL and
 * overwritten when not; free them with ref_free_values.
 *
 * In-place ops: the value of an optimizer update (SGD, SGD_NESTEROV, ADAM,
 * ADAMW) is the updated weight w and the value of a BN_RUNNING node is the
 * updated running statistics; the inputs w and running are left as they were
 * (so the same vals can be run again).  The optimizer's state inputs (SGD's v,
 * Adam's m and v) are the one exception: the graph has no node for their new
 * values, so these are written over vals[state] (as the optimizer kernel does).
 *
 * DROPOUT / DROPOUT_BWD use ref_dropout_keep, the mirror of the generated
 * code's keep rule (codegen's prelude dl_keep).
 *
 * Returns 0, or -1 after printing "ref_run: node %i (op): reason" to stderr
 * (a missing source value, a shape the reference does not understand). */
int ref_run(const Graph *g, double **vals);
/* The same for nodes [0, end) only: the forward part of a differentiated
 * graph (finite differences need only the loss). */
int ref_run_until(const Graph *g, double **vals, uint32_t end);
/* Nodes [from, end): a run in pieces, e.g. the ranks of a train@N graph in
 * lockstep, their ALLREDUCE values summed between the pieces. */
int ref_run_range(const Graph *g, double **vals, uint32_t from, uint32_t end);

/* vals[] with every source node (except CONST) allocated and zeroed, other
 * entries NULL: fill the sources, then call ref_run. */
double **ref_alloc_values(const Graph *g);
void ref_free_values(const Graph *g, double **vals);

/* The dropout keep decision for element i of a tensor, mirroring the
 * generated code's counter-based rule (codegen prelude dl_keep): a pure
 * function of (seed, step, i) and p. */
int ref_dropout_keep(double seed, double step, int64_t i, double p);

#endif
