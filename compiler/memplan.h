/* memplan.h - memory plan: an (arena, offset) for every materialised node.
 *
 * Arenas (graph.h GArena), offsets in floats, every offset a multiple of
 * MEM_ALIGN floats (64 bytes):
 *   AR_PARAM  PARAM nodes in node order (train and eval graphs create them in
 *             the same order, so their offsets agree);
 *   AR_GRAD   a parameter's gradient (GNode.param set) at its parameter's offset;
 *   AR_OPT    an optimizer STATE (GNode.param set: "*.momentum", "*.exp_avg",
 *             "*.exp_avg_sq") at slot * P + its parameter's offset, P the
 *             size of AR_PARAM and slot its attr.ostate.slot (< MEM_OPT_SLOTS):
 *             the arena holds one copy of the parameter layout per slot, so
 *             the optimizer kernel reads each state as one region;
 *   AR_STATE  other STATE nodes (batch norm running statistics), node order;
 *   AR_INPUT  INPUT and SCALARS nodes, node order;
 *   AR_CONST  CONST nodes, node order;
 *   AR_ACT    every other materialised node (group outs), with offsets reused
 *             by liveness over the group schedule: a buffer is live from the
 *             group that writes it to the last group that reads it (graph
 *             outputs: to the end); intervals are closed, so a kernel never
 *             writes over its own inputs.  Placement: largest first, each in
 *             the best-fitting gap among the buffers live at the same time.
 * Group members computed inside their kernel (not in outs), and inlined
 * producers, get no storage: numel 0, offset -1.  In-place writers
 * (optimizer updates, BN_RUNNING) share their target's buffer; VIEW nodes
 * alias their input.
 */
#ifndef DL_MEMPLAN_H
#define DL_MEMPLAN_H

#include "graph.h"

#define MEM_ALIGN 16
/* Copies of the parameter layout in AR_OPT (Adam: exp_avg and exp_avg_sq). */
#define MEM_OPT_SLOTS 2

/* Fill out->buf (g->n entries, from pool) and out->arena_size.
 * Returns 0, or the number of internal errors reported to diag (a group reads
 * a node that no earlier group writes). */
int mem_plan(const Graph *g, const GSchedule *s, DlPool *pool, GMemPlan *out, DlDiag *diag);

/* Check a memory plan (the verifier between memory planning and code
 * generation): every group in and out has storage inside its arena, gradients
 * and optimizer states sit at their parameter's place, and no two ACT buffers
 * live at the same time overlap (every pair that overlaps in memory is looked
 * at, found by sorting on offsets).  Returns the number of problems, reported
 * to diag as internal errors. */
int mem_verify(const Graph *g, const GSchedule *s, const GMemPlan *mp, DlDiag *diag);

/* The memory a plan takes at run time, in bytes: each arena once, as large as
 * the largest of the n programs needs (the programs share the arenas; float32). */
int64_t mem_total_bytes(const GMemPlan *const *mp, int n);

/* Warn when the programs' memory (mem_total_bytes) exceeds the machine's:
 * physical memory (sysconf), or $DLDL_MEMORY_LIMIT bytes when set (tests; a
 * plan meant for another machine).  The warning names the total and the
 * limit, and a note at each of the three largest buffers gives its name,
 * shape, program, arena and size, pointing at the spec line that made it:
 *   warning: the memory plan takes 1.6 TiB, more than this machine's 125.5 GiB ...
 *   net.dldl:31:10: note: 'l0' [1000000000, 64] (train, act): 238.4 GiB
 * names[i] names program i ("train").  Returns 1 when it warned. */
int mem_check_total(const Graph *const *g, const GMemPlan *const *mp, const char *const *names, int n,
                    DlDiag *diag);

/* 1 when node has storage in the plan. */
static inline int mem_has_storage(const GMemPlan *mp, uint32_t node) { return mp->buf[node].offset >= 0; }

/* Statistics of the activation arena, for --emit=mem and tests. */
typedef struct MemStats {
    int64_t act_peak;      /* floats: arena_size[AR_ACT] */
    int64_t act_total;     /* floats: sum of every ACT buffer (no reuse) */
    int nbuffers;          /* ACT buffers */
} MemStats;
void mem_stats(const Graph *g, const GMemPlan *mp, MemStats *st);

/* Live interval [*first, *last] (schedule positions) of node's storage as
 * mem_plan computed it; returns 0 when the node has no ACT buffer. */
int mem_live_range(const Graph *g, const GSchedule *s, uint32_t node, int *first, int *last);

/* The --emit=mem text: arena sizes (floats and MiB), the reuse factor, then
 * one line per node with storage:
 *   %12 act   off 4096  numel 262144  [64,32,64,64] live 3..7  ; c1.y */
void mem_dump(const Graph *g, const GSchedule *s, const GMemPlan *mp, DlBuf *out);

#endif
