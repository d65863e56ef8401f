/* bootstrap.c - percentile bootstrap confidence intervals (see bootstrap.h). */
#include "report/bootstrap.h"

#include <math.h>
#include <stdlib.h>

#include "util/mem.h"
#include "util/rng.h"

double boot_mean(const double *x, size_t n) {
  if (!n) return NAN;
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[i];
  return s / (double)n;
}

double boot_quantile(const double *sorted, size_t n, double q) {
  if (!n) return NAN;
  if (q <= 0) return sorted[0];
  if (q >= 1) return sorted[n - 1];
  double h = q * (double)(n - 1);
  size_t i = (size_t)floor(h);
  if (i + 1 >= n) return sorted[n - 1];
  return sorted[i] + (h - (double)i) * (sorted[i + 1] - sorted[i]);
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static double resample_mean(const double *x, size_t n, struct rng *g) {
  double s = 0;
  for (size_t i = 0; i < n; i++) s += x[rng_below(g, n)];
  return s / (double)n;
}

/* Shared core: y == NULL -> one-sample mean; else the difference. */
static void boot_core(const double *x, size_t nx, const double *y, size_t ny, int resamples,
                      double level, uint64_t seed, struct boot_ci *out) {
  out->n = nx;
  if (!nx || (y && !ny)) {
    out->est = out->lo = out->hi = NAN;
    out->n = 0;
    return;
  }
  out->est = boot_mean(x, nx) - (y ? boot_mean(y, ny) : 0);
  if (resamples < 1) resamples = BOOT_DEFAULT_RESAMPLES;
  if (!(level > 0 && level < 1)) level = BOOT_DEFAULT_LEVEL;
  double *m = xmalloc((size_t)resamples * sizeof *m);
  struct rng g;
  rng_seed(&g, seed);
  for (int b = 0; b < resamples; b++) {
    m[b] = resample_mean(x, nx, &g);
    if (y) m[b] -= resample_mean(y, ny, &g);
  }
  qsort(m, (size_t)resamples, sizeof *m, cmp_double);
  out->lo = boot_quantile(m, (size_t)resamples, (1 - level) / 2);
  out->hi = boot_quantile(m, (size_t)resamples, (1 + level) / 2);
  free(m);
}

void boot_mean_ci(const double *x, size_t n, int resamples, double level, uint64_t seed,
                  struct boot_ci *out) {
  boot_core(x, n, NULL, 0, resamples, level, seed, out);
}

void boot_diff_ci(const double *x, size_t nx, const double *y, size_t ny, int resamples,
                  double level, uint64_t seed, struct boot_ci *out) {
  boot_core(x, nx, y, ny, resamples, level, seed, out);
}
