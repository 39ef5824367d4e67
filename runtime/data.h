/* data.h - samples, label-distribution targets, augmentation and metrics.
 *
 * The runtime core (runtime/train.c) sees the data only through this header.
 * A DlDataset is built from a plan's data binding (DlPlan.data, keys listed in
 * docs/plan-format.md) and data root; it decodes every image once (libjpeg-
 * turbo), crops (Pointing'04's face box), resizes (stb_image_resize) and keeps
 * the result as uint8 NCHW in memory; batches are then cheap.
 *
 * Randomness is counter-based (ROADMAP 2): every random choice is a pure
 * function of (seed, epoch, sample index, purpose), so any split of the work
 * gives the same samples and augmentations.
 */
#ifndef DL_DATA_H
#define DL_DATA_H

#include <stdint.h>
#include "../common/plan.h"

typedef enum DlSplit { DL_TRAIN = 0, DL_TEST = 1 } DlSplit;

typedef struct DlDataset {
    int n;              /* samples loaded (both splits) */
    int nlabels;        /* the plan's label columns */
    char **files;       /* [n] path relative to the data root (or "file.mat row N"), for messages */
    float *labels;      /* [n, nlabels] raw labels (years, degrees, class indices) */
    uint8_t *split;     /* [n] DlSplit */
    int features;       /* 1: the input is a feature vector [d] = [C]; 0: an image [C,H,W] */
    int C, H, W;        /* input size (features: C = d, H = W = 1) */
    uint8_t *pixels;    /* images: [n, C, H, W] decoded, cropped, resized */
    float *vectors;     /* features: [n, d] */
    int ndist;          /* distribution fields (GIVEN targets) */
    int dist_width[DL_PLAN_MAX_TARGETS];
    float *dist[DL_PLAN_MAX_TARGETS];   /* [n, width] rows summing to 1 */
    float lo, hi;       /* pixel value range after scaling: x = lo + (hi-lo) * v/255 */
    int hflip;          /* augmentation: random horizontal flip with p = 0.5 */
    int negate[DL_MAX_AXES]; /* label columns negated by a flip (Pointing'04 yaw) */
    int crop_pad;       /* augmentation: random crop of H x W from the image padded by crop_pad
                           pixels of black on every side (a random shift by -pad..pad); 0 = off */
    float scale_min, scale_max; /* augmentation: a zoom about the centre by s in [min, max]
                           (1, 1 = off): bilinear for the image, nearest for the label map */
    int mask_field;     /* the distribution field holding label maps ([H*W] class indices as
                           floats, 255 void), or -1 */
    int nskipped;       /* bad samples skipped (with skip_bad) */
    int ntrain, ntest;
    int *train_idx, *test_idx; /* sample indices of each split */
} DlDataset;

typedef struct DlDataOpts {
    const char *root;   /* data root (dl_data_root() unless --data) */
    int skip_bad;       /* go on past unreadable/unlabelable samples, counting them */
    int nthreads;       /* decoding threads */
    int quiet;
    int fold;           /* 0: the plan's split; f > 0: test on fold f (1-based) of dl_data_folds (--cv) */
} DlDataOpts;

/* Load the data the plan names.  Each bad sample is reported on stderr by file
 * ("utkface/images/61_3_20170109150557335.jpg.chip.jpg: malformed name: ...");
 * without skip_bad any bad sample fails the load.  Returns 0 or -1 with a
 * one-line message in *err (malloc'd), e.g. a missing data root. */
int dl_data_load(const DlPlan *plan, const DlDataOpts *opts, DlDataset **out, char **err);
/* The size of one sample's input, C x H x W (features: d x 1 x 1), as the
 * plan's data binding declares it (checked, without reading any data).
 * Returns 0, or -1 with *err naming the binding's bad key. */
int dl_data_input_shape(const DlPlan *plan, int *C, int *H, int *W, char **err);
void dl_data_free(DlDataset *d);

/* The folds a cross-validation runs (--cv): kfold(k): "fold1".."foldk";
 * folds(path): every column of that csv but `file`.  Returns the count (names
 * malloc'd into *names), or -1 with *err (a split without folds). */
int dl_data_folds(const DlPlan *plan, const char *root, char ***names, char **err);

/* Load and preprocess one image file for --predict (no crop unless the plan's
 * crop can be had for it).  pixels: [C,H,W] floats already scaled. */
int dl_data_load_image(const DlPlan *plan, const char *path, float *pixels, char **err);

/* The epoch's training order: a permutation of d->train_idx from
 * (seed, epoch).  order has d->ntrain entries. */
void dl_data_shuffle(const DlDataset *d, uint64_t seed, int epoch, int *order);

/* Fill one batch from samples idx[0..B) (runtime/augment.c).  input:
 * [B,C,H,W] (images, scaled, augmented) or [B,d] (features); labels:
 * [B,nlabels] raw labels (a flip negates the negate columns); masks: [B,H,W]
 * the samples' label maps (d->mask_field) under the same geometric
 * augmentation as their images, 255 (void) where the augmented view leaves
 * the map.  augment: apply the random flip, crop and scale (decided per
 * sample from (seed, epoch, sample)).  Any output pointer may be NULL. */
void dl_data_batch(const DlDataset *d, const int *idx, int B, int augment, uint64_t seed, int epoch,
                   float *input, float *labels, uint8_t *masks);

/* Mean and biased variance per feature over the training split: stats [2,d]
 * (row 0 mean, row 1 variance), for the DATA_STATS tensor of a plan whose
 * features are standardised.  No-op for images. */
void dl_data_feature_stats(const DlDataset *d, float *stats);

/* The label distribution of target t for one sample, y[K]:
 *   GAUSSIAN1D/2D  y_k proportional to exp(-sum_a (v_a(k) - l_a)^2 / (2 sigma_a^2))
 *                  over the bins, normalised (Gao et al., TIP 2017, Sec. III);
 *                  sigma_a per sample from labels[sigma_label] when set;
 *   ONEHOT         all mass on the nearest bin of each axis (zero row when
 *                  the label equals the target's ignore value);
 *   GIVEN          the sample's row of distribution field t->dist.
 * labels: the sample's [nlabels] raw labels; dist: its row of the field, or
 * NULL when t is not GIVEN. */
void dl_target_build(const DlPlanTarget *t, const float *labels, const float *dist, float *y);
int dl_target_bins(const DlPlanTarget *t); /* K */
/* The index of the bin of ax nearest to label l (ties: the lower bin). */
int dl_target_nearest_bin(const DlPlanAxis *ax, float l);
/* Does target t read a data field's rows (GIVEN, MULTILABEL) rather than labels? */
int dl_target_reads_field(const DlPlanTarget *t);
/* A sample's labels against target t (labels: the sample's label columns):
 * each axis's label within its bins' range [bins[0], bins[nbins-1]] (or
 * equal to a one-hot target's ignore value), clamped into it when t->clamp;
 * a per-sample sigma positive and finite.  NULL, or what is wrong, e.g.
 * "age 1e+09 is outside target 'dist''s bins [0, 116] years (clamp = true in
 * the target clamps it)" (malloc'd). */
char *dl_target_check_labels(const DlPlanTarget *t, float *labels);
/* The target rows of samples idx[0..B) from their (possibly augmented)
 * labels [B,nlabels] and label maps masks [B,H,W] (LABEL_MAP; else may be
 * NULL): y [B*rows, K], rows = dl_plan_target_rows(t). */
void dl_target_batch(const DlPlanTarget *t, const DlDataset *d, const int *idx, int B, const float *labels,
                     const uint8_t *masks, float *y);
/* The width of the data field a target reads: K (GIVEN, MULTILABEL),
 * map_h * map_w (LABEL_MAP), 0 when it reads none. */
int64_t dl_target_field_width(const DlPlanTarget *t);
/* The LABEL_MAP rows of one H x W label map m (class indices, 255 void):
 * y [H*W, K] (Gao et al., TIP 2017, Sec. IV-D: a Gaussian-weighted vote of
 * the neighbouring pixels' labels): for a pixel p that is not void,
 *   y_k(p) = sum_{q in N(p), m(q) = k} g(q - p) / sum_{q in N(p), m(q) != 255} g(q - p),
 *   g(d) = exp(-|d|^2 / (2 sigma^2)), N(p) the (2r+1)^2 window, r = ceil(3 sigma),
 * clipped to the map; void pixels get an all-zero row; sigma 0: one-hot.
 * Labels >= K count as void.  Separable (two 1-D passes per class present),
 * in double; allocates two H*W scratch planes. */
void dl_target_label_map(const uint8_t *m, int H, int W, int K, float sigma, float *y);

/* Metrics over an evaluation pass: one accumulator per plan metric. */
typedef struct DlMetricAcc {
    int n;
    double sum[DL_MAX_AXES + 1];      /* per component: sums (|error|, hits, measure) */
    float *scores;                    /* whole-pass metrics (mean_ap): [n, K] the head's rows */
    int8_t *truth;                    /* [n, K] the target's field rows (class presence) */
    int64_t *conf;                    /* per-pixel metrics: the confusion matrix [K, K] (truth, predicted) */
    uint8_t *pred;                    /* scratch: arg-max classes of a batch's pixels */
    size_t pred_cap;
    size_t cap;                       /* rows allocated */
} DlMetricAcc;
/* Empty n accumulators for a new pass (their buffers freed). */
void dl_metric_reset(DlMetricAcc *acc, int n);
/* What one batch of B rows gives the metrics: the metric's head's probs
 * [B,K], its expectation [B,naxes] (or NULL), every label column
 * [B,nlabels], its target's distribution [B,K] (or NULL), and the rows of
 * its target's data field [B,K] (MULTILABEL: class presence; or NULL). */
typedef struct DlMetricRows {
    const float *probs, *expect, *labels, *target, *field;
    const uint8_t *masks;             /* per-pixel metrics: the batch's label maps [B, rows] (255 void) */
} DlMetricRows;
void dl_metric_add(DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *spec, const DlMetricRows *r, int B);
/* A metric's values after a pass: name ("mae_age", "kl"), value (in the
 * label's unit, a fraction for accuracies) and unit; returns the count. */
typedef struct DlMetricValue {
    char name[96];
    double value;
    const char *unit; /* "years", "%" (value a fraction), "" */
} DlMetricValue;
int dl_metric_values(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *spec, DlMetricValue *out, int max);
/* Does this metric read its target's distribution rows? (the LDL measures) */
int dl_metric_needs_target(const DlPlanMetric *spec);
/* Does it read its target's data field rows? (mean_ap) */
int dl_metric_needs_field(const DlPlanMetric *spec);
/* "mae age 6.21 years" / "accuracy pitch 91.2% yaw 80.1% joint 73.0%" / "kl 0.0401" */
void dl_metric_format(const DlMetricAcc *m, const DlPlan *p, const DlPlanMetric *spec, char *buf, size_t n);

/* Counter-based random numbers: a 64-bit hash of (seed, a, b, c) (SplitMix64
 * finaliser chain), and a uniform float in [0,1) from it. */
uint64_t dl_rng_u64(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
float dl_rng_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

#endif
