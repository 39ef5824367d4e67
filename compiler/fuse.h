/* fuse.h - fusion: partition a graph's nodes into groups (future kernels) and
 * order them (compiler/graph.h GSchedule).
 *
 * Rules (graph.h GGroupKind, ops.def kinds):
 *  - SOURCE and VIEW nodes belong to no group (views alias their input).
 *  - each LIB node is a GG_LIB group, each WINDOW node a GG_WINDOW group, each
 *    MEAN a GG_BATCHRED group; all optimizer updates (SGD, Adam, ...) form
 *    one GG_OPT group, last.
 *  - chains of ELEM ops of one output shape fuse into a GG_ELEM group.
 *  - a cheap ELEM producer (relu_bwd, scale, mean_bwd, gap_bwd, fill) whose
 *    consumers can all take it as a prologue is duplicated into every consumer
 *    group and materialised nowhere (such members are "inlined").
 *  - reductions over one input space form a GG_CHANRED group, with inlined
 *    producers as prologue and ELEM consumers of [r,C]/[C] shape as epilogue.
 *  - ROW ops and the ELEM ops on [B,K]/[B,A]/[B] shapes connected to them form
 *    GG_ROW groups (the loss tail, forward and backward in one kernel).
 *  - in-place writers (optimizer updates, BN_RUNNING) run after every other reader of the
 *    storage they overwrite.
 * A merge that would make a group depend on itself through an outside node
 * is refused, so the groups always have a topological order; so is one past
 * what a kernel may be (64 members, 16 buffers, 8 reductions: fuse.c), and
 * an inlined producer recomputes at most 3 buffers' and 8 nodes' worth.
 * Fusion is near-linear in the graph's size.
 */
#ifndef DL_FUSE_H
#define DL_FUSE_H

#include "graph.h"

/* Partition g into groups, in execution order, allocated from pool.
 * Group names are C identifiers "k<index>_<ops>", unique in the schedule.
 * Returns 0, or the number of internal errors reported to diag (a cycle among
 * groups, which a well-formed graph never produces). */
int fuse_graph(const Graph *g, DlPool *pool, GSchedule *out, DlDiag *diag);

/* Check a schedule (the verifier between fusion and memory planning): every
 * computing node in a group (several only if recomputed, then never stored),
 * members sorted, outs members written once, every member input a member or
 * an in, every in a source or written by an earlier group, in-place writers
 * after the other readers of their target, the optimizer last, outputs stored.
 * Returns the number of problems, reported to diag as internal errors. */
int fuse_verify(const Graph *g, const GSchedule *s, DlDiag *diag);

/* 1 when node is a member of group gr (binary search of its sorted members). */
int fuse_group_has(const GGroup *gr, uint32_t node);

/* 1 when node is a member of gr but computed inside the kernel only (not in
 * gr->outs): it needs no storage of its own. */
int fuse_is_internal(const GGroup *gr, uint32_t node);

/* The --emit=fused text: one line per group
 *   k3_bn_apply_relu  elem  %12 bn_apply, %13 relu | in %9 %10 %4 %5 | out %13
 * members recomputed in several groups (inlined producers) are marked '*';
 * members not in "out" live in registers only; a final comment line
 * counts the groups of each kind. */
void fuse_dump(const Graph *g, const GSchedule *s, DlBuf *out);

#endif
