/* train.h - what dldlrun does with a plan: train, evaluate, predict.
 *
 * Each entry point loads what it needs (data, executor, weights), prints its
 * results on stdout and progress on stderr, and returns the process exit
 * code: 0 ok, 1 runtime failure (each failure one line on stderr).
 */
#ifndef DL_TRAIN_H
#define DL_TRAIN_H

#include "../common/plan.h"
#include "data.h"
#include "exec.h"

typedef struct DlRunOpts {
    const char *plan_path;
    int epochs;             /* 0: the plan's "epochs" */
    const char *data_root;  /* --data, else dl_data_root() */
    const char *out_dir;    /* --out, else runs/<plan basename> */
    const char *weights;    /* --weights: for eval and predict (else OUT/weights.safetensors);
                               for train, the initial weights (fine-tuning; NULL: from scratch) */
    int resume, skip_bad, threads, profile, quiet, debug;
    int overwrite;          /* --overwrite: start over in an OUT that holds a run (train.c) */
    int cv;                 /* --cv */
    DlDevice device;        /* --device (main.c resolves auto) */
    char **images;          /* --predict */
    int nimages;
    struct DlComm *comm;    /* under mpirun with N > 1 processes (comm.h); NULL: one process */
} DlRunOpts;

/* Train for the plan's epochs (dropping the last partial batch of each epoch:
 * the plan's batch size is fixed), evaluating on the test split after each
 * epoch; saves OUT/weights.safetensors and OUT/checkpoint.safetensors after
 * every epoch.  With resume, continues from the checkpoint at the next epoch
 * on the same schedule (bit-exact: all randomness is counter-based).  OUT is
 * locked for the whole run; one that holds a run is refused without resume
 * or overwrite (train.c, "the run folder"). */
int dl_train(const DlPlan *p, const DlRunOpts *o);
/* Evaluate saved weights on the test split and print the plan's metrics. */
int dl_eval(const DlPlan *p, const DlRunOpts *o);
/* Print, per image, the expectation per axis and the top-3 bins. */
int dl_predict(const DlPlan *p, const DlRunOpts *o);

/* Cross-validation (--cv): train and evaluate every fold of the plan's
 * kfold or folds split with the same seed, one run each under OUT/foldN/,
 * then print each metric as mean +- std over the folds (population std) and
 * write OUT/cv.csv and OUT/cv.json. */
int dl_cv(const DlPlan *p, const DlRunOpts *o);

/* ---- what every mode shares (run.c) -------------------------------------- */

/* A program's inputs and outputs as tensor indices (-1 when absent). */
#define DL_IO_MAX 64
typedef struct DlProgIO {
    int prog, batch;
    int input, scalars, loss;
    int ntarget, target[DL_IO_MAX];   /* TARGET inputs (the plan tensor's ref names the target) */
    int nlabel, label[DL_IO_MAX];     /* LABEL inputs ([B,ncols] of the plan's label columns) */
    int data_stats;                   /* the DATA_STATS tensor, or -1 */
    int probs[DL_PLAN_MAX_TARGETS];   /* per head */
    int nexpect;
    struct { int head, target, tensor; } expect[DL_IO_MAX];
} DlProgIO;
/* Returns 0, or -1 with *err when the program is missing or lacks an input. */
int dl_prog_io(const DlPlan *p, const char *name, DlProgIO *io, char **err);
/* The EXPECT output of (head, target) in io, or -1. */
int dl_prog_expect(const DlProgIO *io, int head, int target);

/* Write one batch of samples idx[0..B) into the program's inputs: the
 * network input, every target's distribution and every label input.
 * labels: scratch [B, nlabels]; masks: scratch [B, H, W] for the batch's
 * label maps (dl_feed_masks bytes; NULL when the data has none), left
 * holding them (augmented as the images). */
void dl_feed(DlExec *e, const DlPlan *p, const DlProgIO *io, const DlDataset *d, const int *idx, int B,
             int augment, uint64_t seed, int epoch, float *labels, uint8_t *masks);
/* Bytes of dl_feed's masks scratch for a batch of B (0 without label maps). */
size_t dl_feed_masks(const DlDataset *d, int B);

/* Run the eval program over the test split (padding the last batch by
 * repeating its last sample; only real rows count) and fill one metric
 * accumulator per plan metric (acc[p->nmetrics]). */
int dl_eval_pass(DlExec *e, const DlPlan *p, const DlProgIO *io, const DlDataset *d, DlMetricAcc *acc, char **err);
/* "mae age 6.21 years  accuracy ..." with prefix before each metric. */
void dl_format_metrics(const DlPlan *p, const DlMetricAcc *acc, const char *prefix, char *buf, size_t n);
/* OUT: o->out_dir or runs/<plan basename without .plan> (malloc'd). */
char *dl_out_dir(const DlRunOpts *o);
/* Load the data with the run's options (fold -1: the plan's split; f >= 0:
 * test on fold f of dl_data_folds); one-line error in *err. */
int dl_load_data(const DlPlan *p, const DlRunOpts *o, int fold, DlDataset **d, char **err);
/* Executor options from the run's (threads, profile, debug). */
DlExecOpts dl_exec_opts(const DlRunOpts *o);
/* mkdir -p; 0 or -1 with errno. */
int dl_mkdir_p(const char *path);

#endif
