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
    int nlabels;        /* A */
    char **files;       /* [n] path relative to the data root, for messages */
    float *labels;      /* [n, A] raw labels (years, degrees) */
    uint8_t *split;     /* [n] DlSplit */
    int C, H, W;        /* input size */
    uint8_t *pixels;    /* [n, C, H, W] decoded, cropped, resized */
    float lo, hi;       /* pixel value range after scaling: x = lo + (hi-lo) * v/255 */
    int hflip;          /* augmentation: random horizontal flip with p = 0.5 */
    int negate[DL_MAX_AXES]; /* labels negated by a flip (Pointing'04 yaw) */
    int crop_pad;       /* augmentation: random crop of H x W from the image padded by crop_pad
                           pixels of black on every side (a random shift by -pad..pad); 0 = off */
    int nskipped;       /* bad samples skipped (with skip_bad) */
    int ntrain, ntest;
    int *train_idx, *test_idx; /* sample indices of each split */
} DlDataset;

typedef struct DlDataOpts {
    const char *root;   /* data root (dl_data_root() unless --data) */
    int skip_bad;       /* go on past unreadable/unlabelable samples, counting them */
    int nthreads;       /* decoding threads */
    int quiet;
} DlDataOpts;

/* Load the data the plan names.  Each bad sample is reported on stderr by file
 * ("utkface/images/61_3_20170109150557335.jpg.chip.jpg: malformed name: ...");
 * without skip_bad any bad sample fails the load.  Returns 0 or -1 with a
 * one-line message in *err (malloc'd), e.g. a missing data root. */
int dl_data_load(const DlPlan *plan, const DlDataOpts *opts, DlDataset **out, char **err);
void dl_data_free(DlDataset *d);

/* Load and preprocess one image file for --predict (no crop unless the plan's
 * crop can be had for it).  pixels: [C,H,W] floats already scaled. */
int dl_data_load_image(const DlPlan *plan, const char *path, float *pixels, char **err);

/* The epoch's training order: a permutation of d->train_idx from
 * (seed, epoch).  order has d->ntrain entries. */
void dl_data_shuffle(const DlDataset *d, uint64_t seed, int epoch, int *order);

/* Fill one batch from samples idx[0..B).  image [B,C,H,W] float; target
 * [B,K] from dl_target_build; label [B,A].  augment: apply the random flip
 * (decided per sample from (seed, epoch, sample)).  Any pointer may be NULL. */
void dl_data_batch(const DlDataset *d, const DlPlanTarget *t, const int *idx, int B,
                   int augment, uint64_t seed, int epoch,
                   float *image, float *target, float *label);

/* The label distribution for one sample: y_k proportional to
 * exp(-sum_a (v_a(k) - l_a)^2 / (2 sigma_a^2)) over the bins, normalised to
 * sum 1 (Gao et al., TIP 2017, Eq. for the age and head-pose distributions).
 * "onehot": all mass on the nearest bin of each axis.  y has K entries. */
void dl_target_build(const DlPlanTarget *t, const float *labels, float *y);
int dl_target_bins(const DlPlanTarget *t); /* K */
/* The index of the bin of ax nearest to label l (ties: the lower bin). */
int dl_target_nearest_bin(const DlPlanAxis *ax, float l);

/* Metrics over an evaluation pass. */
typedef struct DlMetricAcc {
    int n;
    double abs_err[DL_MAX_AXES];      /* sum |expectation - label| per axis */
    long hit[DL_MAX_AXES], hit_joint; /* exact (or within tolerance) per axis, all axes */
    int label_stride;   /* labels per row in dl_metric_add (the plan's nlabels);
                           0 = max axes[].label + 1 */
} DlMetricAcc;
/* Add B samples: probs [B,K], expect [B,naxes] (one expectation per target
 * axis), labels [B,label_stride] raw labels read at axes[a].label. */
void dl_metric_add(DlMetricAcc *m, const DlPlanTarget *t, const DlPlanMetric *spec,
                   const float *probs, const float *expect, const float *labels, int B);
/* "mae age 6.21 years" / "accuracy pitch 91.2% yaw 80.1% joint 73.0%" */
void dl_metric_format(const DlMetricAcc *m, const DlPlanTarget *t, const DlPlanMetric *spec,
                      char *buf, size_t n);

/* Counter-based random numbers: a 64-bit hash of (seed, a, b, c) (SplitMix64
 * finaliser chain), and a uniform float in [0,1) from it. */
uint64_t dl_rng_u64(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);
float dl_rng_uniform(uint64_t seed, uint64_t a, uint64_t b, uint64_t c);

#endif
