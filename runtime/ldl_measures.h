/* ldl_measures.h - label-distribution measures, the ChaLearn epsilon-error and
 * mean +- std over folds.  Pure functions: no allocation, no state, no I/O.
 *
 * Legend: K = number of label bins; B = rows (samples); a row is one label
 * distribution (non-negative; the benchmark rows sum to 1, but nothing here
 * normalises or requires it).  Every measure is computed in double.
 *
 * The six measures are those of Geng, "Label Distribution Learning", IEEE TKDE
 * 2016 (Table 1 there), written exactly as the project's PyTorch reference
 * (shared/reference/torch_ldl.py, measures()) computes them: both rows are first
 * clipped from below at DL_LDL_EPS, p'_k = max(p_k, EPS), y'_k = max(y_k, EPS),
 * so that a bin that is 0 in both rows adds 0 to Clark and Canberra and KL stays
 * finite; then, over k = 0..K-1:
 *
 *   chebyshev     max_k |p'_k - y'_k|                          lower is better
 *   clark         sqrt(sum_k (p'_k - y'_k)^2 / (p'_k + y'_k)^2)   lower is better
 *   canberra      sum_k |p'_k - y'_k| / (p'_k + y'_k)           lower is better
 *   kl            sum_k y'_k log(y'_k / p'_k)   KL(y || p)       lower is better
 *   cosine        sum_k p'_k y'_k / (|p'| |y'|), |.| Euclidean  higher is better
 *   intersection  sum_k min(p'_k, y'_k)                         higher is better
 *
 * Identical rows give 0 for the first four and 1 for cosine; intersection is
 * then the row's (clipped) sum, 1 for a distribution (plus EPS per zero bin).
 * The reference reports each measure's mean over the test rows of a fold
 * (dl_ldl_mean), then mean +- std over the ten folds (dl_mean_std).
 */
#ifndef DL_LDL_MEASURES_H
#define DL_LDL_MEASURES_H

/* The clip applied to both rows before every measure (torch_ldl.py EPS). */
#define DL_LDL_EPS 1e-12

/* One row per measure, in the reference's output order:
 * X(ENUM, name, lower_is_better).  The C functions are ldl_<name> in
 * ldl_measures.c; add a measure by adding a row and its function. */
#define DL_LDL_MEASURES(X)      \
    X(CHEBYSHEV, chebyshev, 1)  \
    X(CLARK, clark, 1)          \
    X(CANBERRA, canberra, 1)    \
    X(KL, kl, 1)                \
    X(COSINE, cosine, 0)        \
    X(INTERSECTION, intersection, 0)

typedef enum DlLdlMeasure {
#define DL_LDL_ENUM_(id, name, lower) DL_LDL_##id,
    DL_LDL_MEASURES(DL_LDL_ENUM_)
#undef DL_LDL_ENUM_
    DL_LDL_COUNT
} DlLdlMeasure;

/* "chebyshev", "clark", "canberra", "kl", "cosine", "intersection";
 * NULL for a value outside 0..DL_LDL_COUNT-1. */
const char *dl_ldl_name(DlLdlMeasure m);

/* 1 for chebyshev, clark, canberra, kl; 0 for cosine, intersection; -1 for a
 * value outside 0..DL_LDL_COUNT-1. */
int dl_ldl_lower_is_better(DlLdlMeasure m);

/* Measure m of one predicted row p [K] against one target row y [K] (both
 * clipped at DL_LDL_EPS first, see above).  NaN when m is out of range or
 * K <= 0.  Reads p and y only. */
double dl_ldl_measure(DlLdlMeasure m, const float *p, const float *y, int K);

/* All DL_LDL_COUNT measures of one row pair: out[m] = dl_ldl_measure(m, p, y, K). */
void dl_ldl_all(const float *p, const float *y, int K, double out[DL_LDL_COUNT]);

/* The mean of each measure over B row pairs: P [B,K], Y [B,K] row-major;
 * out[m] = 1/B sum_b dl_ldl_measure(m, P_b, Y_b, K), as torch_ldl.py's
 * measures(P, Y) (one fold's test set).  Overwrites out; NaN when B <= 0. */
void dl_ldl_mean(const float *P, const float *Y, int B, int K, double out[DL_LDL_COUNT]);

/* The epsilon-error of one prediction in the ChaLearn Looking at People 2015
 * apparent-age challenge (Escalera et al., ChaLearn LAP 2015):
 *   e = 1 - exp(-(x - mu)^2 / (2 sigma^2))
 * x the predicted age, mu the mean and sigma > 0 the standard deviation of the
 * human votes for the image, all in years.  e is in [0, 1): 0 when x = mu,
 * near 1 when |x - mu| >> sigma; the challenge score is its mean over images.
 * NaN when sigma <= 0 or any argument is NaN. */
double dl_eps_error(double x, double mu, double sigma);

/* Mean and population standard deviation of x [n] (folds' results):
 *   mean = 1/n sum_i x_i,  std = sqrt(1/n sum_i (x_i - mean)^2)
 * i.e. divided by n, not n - 1: numpy's default ddof=0, which torch_ldl.py's
 * r.std(0) uses for its "mean+-std" over ten folds.  Two passes (the mean,
 * then the squared deviations from it), as numpy.  n = 1 gives std 0; n <= 0
 * gives NaN for both.  Either output pointer may be NULL. */
void dl_mean_std(const double *x, int n, double *mean, double *std);

#endif
