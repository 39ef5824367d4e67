/* lower.h - from the AST of a .dldl file to the forward op graphs and the
 * plan's metadata: the compiler's semantic stage.
 *
 * lower_file checks every declaration against tables of kinds (data keys and
 * sources, targets, layers, losses, metrics, optimizer, schedules, train keys;
 * docs/reference.md lists them), infers every tensor's shape, and builds the
 * forward graph twice from one network:
 *
 *   train  B = train.batch: inputs image [B,C,H,W], target [B,K], label [B,A],
 *          scalars [4]; batch norm with batch statistics (BN_STATS, BN_APPLY,
 *          BN_RUNNING on the "<path>.running" state, PyTorch momentum 0.1,
 *          eps 1e-5), dropout active, the loss; outputs loss, one loss_term
 *          per term ("kl", "l1"), probs [B,K], expect [B,A].
 *   eval   B = train.eval_batch (default train.batch): input image only; batch
 *          norm with the running statistics (BN_INFER), dropout removed, no
 *          loss; outputs probs and expect.
 *
 * Both graphs create their PARAM and STATE nodes in the same order with the
 * same names (e.g. "c1.y.weight", "c1.z.running", "logits.bias"), so one
 * parameter arena serves both programs.  ad_differentiate (autodiff.h) then
 * adds the backward pass and the optimizer update to the train graph
 * (Graph.optimizer: OP_SGD, OP_SGD_NESTEROV, OP_ADAM or OP_ADAMW).
 *
 * Errors (file:line:col with a caret, via diag) are reported several per run;
 * unused items are warned about.  Nothing is printed when there are none.
 */
#ifndef DL_LOWER_H
#define DL_LOWER_H

#include "../common/plan.h"
#include "../grammar/ast.h"
#include "graph.h"

typedef struct LowerResult {
    Graph *train, *eval;  /* forward graphs (pool-allocated); NULL when errors prevented them */
    DlPlan meta;          /* only source_name, hyper, data, nlabels, target and metrics are
                             filled.  Every string and array in it is allocated from the
                             pool given to lower_file and dies with it: the plan builder
                             copies what it keeps. */
    Graph *rank_train[16];  /* lower_file_ranks: the train@N graph of each N asked for (docs/parallel.md) */
    int rank_n[16];
    int nrank_train;
} LowerResult;

/* Check f and lower it.  meta.hyper keys: optimizer (sgd, adam, adamw), lr,
 * momentum, nesterov (sgd), beta1, beta2, eps (adam, adamw), weight_decay,
 * schedule, max_lr, pct_start, div_factor, final_div_factor, cycle_momentum,
 * base_momentum, max_momentum, step_every, step_gamma, epochs, batch,
 * eval_batch, seed (numbers printed with %.9g).  meta.data: the data binding
 * (docs/plan-format.md, "Data binding"); the label input [B,A] holds the
 * target's axes in order, so meta.nlabels = A and label.N is axis N.
 * ov[0..nov) override params { } values (dldlc -D name=value); an override
 * naming no parameter is an error.
 * Returns the number of errors (0: out->train and out->eval are set and pass
 * graph_verify). */
typedef struct LowerOverride { const char *name, *value; } LowerOverride;
int lower_file(const AstFile *f, DlPool *pool, DlDiag *diag, const LowerOverride *ov, int nov, LowerResult *out);
/* lower_file, and for each ranks[i] (N in 2..DL_MAX_RANKS dividing the batch B, else an error; at most 16)
 * also the train graph of one of N data-parallel processes (out->rank_train[i], N in out->rank_n[i]): batch
 * B/N, batch norm synchronised over the ranks (BN_PARTIAL, ALLREDUCE, BN_FINALIZE over the global count;
 * its backward all-reduces BN_BWD_STATS before BN_BWD_DATA), the loss scaled by 1/N (docs/parallel.md). */
#define LOWER_MAX_RANK_PROGRAMS 16
int lower_file_ranks(const AstFile *f, DlPool *pool, DlDiag *diag, const LowerOverride *ov, int nov,
                     const int *ranks, int nranks, LowerResult *out);

#endif
