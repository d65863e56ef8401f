/* bootstrap.h - percentile bootstrap confidence intervals (pure statistics).
 *
 * Used by `autodata compare` (compare.h). Everything is deterministic: the
 * resampling stream is a struct rng seeded by the caller, so the same data and
 * seed give the same interval bit for bit.
 *
 *   boot_mean_ci   CI of the mean of one sample: resample n values with
 *                  replacement `resamples` times, take the mean of each, and
 *                  report the (1-level)/2 and (1+level)/2 quantiles of those
 *                  means (linear interpolation between order statistics, the
 *                  numpy default) around the plain sample mean.
 *   boot_diff_ci   CI of mean(x) - mean(y) for two independent samples
 *                  (unpaired): each resample draws x and y independently.
 *
 * A sample of size 0 gives est = lo = hi = NAN and n = 0; a sample of size 1
 * gives lo = hi = est. Pure functions, thread-safe; they cannot fail.
 */
#ifndef AD_BOOTSTRAP_H
#define AD_BOOTSTRAP_H

#include <stddef.h>
#include <stdint.h>

#define BOOT_DEFAULT_RESAMPLES 2000
#define BOOT_DEFAULT_LEVEL 0.95

struct boot_ci {
  double est; /* the statistic on the data itself */
  double lo, hi;
  size_t n; /* sample size (for a difference: of x) */
};

/* Mean of x[0..n) (NAN when n == 0). */
double boot_mean(const double *x, size_t n);
/* The q-quantile (0..1) of sorted[0..n) with linear interpolation (NAN when n == 0). */
double boot_quantile(const double *sorted, size_t n, double q);

void boot_mean_ci(const double *x, size_t n, int resamples, double level, uint64_t seed,
                  struct boot_ci *out);
void boot_diff_ci(const double *x, size_t nx, const double *y, size_t ny, int resamples,
                  double level, uint64_t seed, struct boot_ci *out);

#endif
