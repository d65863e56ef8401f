/* accept.c - the acceptance predicate (see accept.h). */
#include "eval/accept.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"

/* Tolerance for comparisons: means of three scores such as (0.65*3)/3 must
 * still satisfy "<= 0.65". */
#define ACC_EPS 1e-9

const char *const accept_stat_names[] = {"weak_mean",
                                         "weak_std",
                                         "weak_min",
                                         "weak_max",
                                         "strong_mean",
                                         "strong_std",
                                         "strong_min",
                                         "strong_max",
                                         "gap",
                                         "weak_correct",
                                         "strong_correct",
                                         "weak_pass_rate",
                                         "strong_pass_rate",
                                         "n_weak",
                                         "n_strong",
                                         "loop_accept",
                                         NULL};

static const char *const op_text[] = {"<", "<=", ">", ">=", "==", "!="};

static void summarise(const double *x, int n, double thr, double *mean, double *std, double *mn,
                      double *mx, int *correct) {
  *mean = *std = *mn = *mx = 0;
  *correct = 0;
  if (n <= 0) return;
  double sum = 0;
  *mn = x[0];
  *mx = x[0];
  for (int i = 0; i < n; i++) {
    sum += x[i];
    if (x[i] < *mn) *mn = x[i];
    if (x[i] > *mx) *mx = x[i];
    if (x[i] >= thr - ACC_EPS) (*correct)++;
  }
  *mean = sum / n;
  double ss = 0;
  for (int i = 0; i < n; i++) ss += (x[i] - *mean) * (x[i] - *mean);
  *std = sqrt(ss / n);
}

void accept_stats_compute(struct accept_stats *s, double pass_threshold) {
  if (s->n_weak < 0) s->n_weak = 0;
  if (s->n_weak > ACCEPT_MAX_SAMPLES) s->n_weak = ACCEPT_MAX_SAMPLES;
  if (s->n_strong < 0) s->n_strong = 0;
  if (s->n_strong > ACCEPT_MAX_SAMPLES) s->n_strong = ACCEPT_MAX_SAMPLES;
  summarise(s->weak, s->n_weak, pass_threshold, &s->weak_mean, &s->weak_std, &s->weak_min,
            &s->weak_max, &s->weak_correct);
  summarise(s->strong, s->n_strong, pass_threshold, &s->strong_mean, &s->strong_std, &s->strong_min,
            &s->strong_max, &s->strong_correct);
  s->gap = s->strong_mean - s->weak_mean;
  s->weak_pass_rate = s->n_weak > 0 ? (double)s->weak_correct / s->n_weak : 0;
  s->strong_pass_rate = s->n_strong > 0 ? (double)s->strong_correct / s->n_strong : 0;
}

int accept_stats_get(const struct accept_stats *s, const char *name, double *v) {
  if (!name) return AD_EINVAL;
#define STAT(nm, expr)         \
  if (strcmp(name, nm) == 0) { \
    *v = (double)(expr);       \
    return 0;                  \
  }
  STAT("weak_mean", s->weak_mean)
  STAT("weak_std", s->weak_std)
  STAT("weak_min", s->weak_min)
  STAT("weak_max", s->weak_max)
  STAT("strong_mean", s->strong_mean)
  STAT("strong_std", s->strong_std)
  STAT("strong_min", s->strong_min)
  STAT("strong_max", s->strong_max)
  STAT("gap", s->gap)
  STAT("weak_correct", s->weak_correct)
  STAT("strong_correct", s->strong_correct)
  STAT("weak_pass_rate", s->weak_pass_rate)
  STAT("strong_pass_rate", s->strong_pass_rate)
  STAT("n_weak", s->n_weak)
  STAT("n_strong", s->n_strong)
  STAT("loop_accept", s->loop_accept)
#undef STAT
  return AD_ENOTFOUND;
}

static int stat_known(const char *name) {
  for (int i = 0; accept_stat_names[i]; i++)
    if (strcmp(accept_stat_names[i], name) == 0) return 1;
  return 0;
}

static enum accept_group group_of(const char *stat) {
  if (strncmp(stat, "weak_", 5) == 0 || strcmp(stat, "n_weak") == 0) return ACC_WEAK;
  if (strncmp(stat, "strong_", 7) == 0 || strcmp(stat, "n_strong") == 0) return ACC_STRONG;
  if (strcmp(stat, "loop_accept") == 0) return ACC_LOOP;
  return ACC_GAP;
}

static void known_list(char *out, size_t n) {
  size_t off = 0;
  out[0] = 0;
  for (int i = 0; accept_stat_names[i] && off < n; i++) {
    int w = snprintf(out + off, n - off, "%s%s", i ? ", " : "", accept_stat_names[i]);
    if (w < 0) break;
    off += (size_t)w;
  }
}

int accept_bound_parse(const char *text, struct accept_bound *b, char *err, size_t errlen) {
  static const char usage[] =
      "expected '<statistic> <operator> <number>', e.g. 'weak_mean <= 0.65'";
  char known[400];
  if (err && errlen) err[0] = 0;
  if (!text || !b) {
    ad_set_err(err, errlen, "%s", usage);
    return AD_EINVAL;
  }
  memset(b, 0, sizeof *b);
  const char *p = text;
  while (isspace((unsigned char)*p)) p++;
  const char *ns = p;
  while (isalnum((unsigned char)*p) || *p == '_') p++;
  size_t nl = (size_t)(p - ns);
  if (nl == 0) {
    ad_set_err(err, errlen, "bound '%s': %s", text, usage);
    return AD_EPARSE;
  }
  if (nl >= sizeof b->stat) nl = sizeof b->stat - 1;
  memcpy(b->stat, ns, nl);
  b->stat[nl] = 0;
  if (!stat_known(b->stat)) {
    known_list(known, sizeof known);
    ad_set_err(err, errlen, "bound '%s': unknown statistic '%s' (known: %s)", text, b->stat, known);
    return AD_EPARSE;
  }
  while (isspace((unsigned char)*p)) p++;
  if (p[0] == '<' && p[1] == '=') b->op = ACC_LE, p += 2;
  else if (p[0] == '>' && p[1] == '=') b->op = ACC_GE, p += 2;
  else if (p[0] == '=' && p[1] == '=') b->op = ACC_EQ, p += 2;
  else if (p[0] == '!' && p[1] == '=') b->op = ACC_NE, p += 2;
  else if (p[0] == '<') b->op = ACC_LT, p += 1;
  else if (p[0] == '>') b->op = ACC_GT, p += 1;
  else {
    ad_set_err(err, errlen, "bound '%s': expected an operator (<, <=, >, >=, ==, !=) after '%s'",
               text, b->stat);
    return AD_EPARSE;
  }
  while (isspace((unsigned char)*p)) p++;
  errno = 0;
  char *end = NULL;
  double v = strtod(p, &end);
  if (end == p || errno == ERANGE || !isfinite(v)) {
    ad_set_err(err, errlen, "bound '%s': expected a number after the operator", text);
    return AD_EPARSE;
  }
  p = end;
  if (*p == '%') {
    v /= 100.0;
    p++;
  }
  while (isspace((unsigned char)*p)) p++;
  if (*p) {
    ad_set_err(err, errlen, "bound '%s': unexpected text '%s' after the number", text, p);
    return AD_EPARSE;
  }
  b->value = v;
  b->group = group_of(b->stat);
  return 0;
}

void accept_bound_format(const struct accept_bound *b, char *out, size_t n) {
  if (!out || n == 0) return;
  int op = (int)b->op;
  if (op < 0 || op > ACC_NE) op = ACC_EQ;
  snprintf(out, n, "%s %s %g", b->stat, op_text[op], b->value);
}

static void add(struct accept_spec *s, const char *stat, enum accept_op op, double v) {
  if (s->n >= ACCEPT_MAX_BOUNDS) return;
  struct accept_bound *b = &s->bounds[s->n++];
  memset(b, 0, sizeof *b);
  snprintf(b->stat, sizeof b->stat, "%s", stat);
  b->op = op;
  b->value = v;
  b->group = group_of(stat);
}

void accept_spec_default_rubric(struct accept_spec *s) {
  memset(s, 0, sizeof *s);
  add(s, "weak_mean", ACC_LE, 0.65);
  add(s, "weak_max", ACC_LE, 0.75);
  add(s, "weak_min", ACC_GT, 0);
  add(s, "strong_mean", ACC_GE, 0.60);
  add(s, "strong_mean", ACC_LT, 0.95);
  add(s, "strong_min", ACC_GT, 0);
  add(s, "gap", ACC_GE, 0.20);
  s->short_circuit = 1;
  s->pass_threshold = 0.5;
}

void accept_spec_default_verifiable(struct accept_spec *s) {
  memset(s, 0, sizeof *s);
  add(s, "weak_pass_rate", ACC_LT, 0.5);
  add(s, "strong_pass_rate", ACC_GT, 0.5);
  s->short_circuit = 1;
  s->pass_threshold = 1.0;
}

static int holds(enum accept_op op, double a, double b) {
  if (isnan(a) || isnan(b)) return 0;
  switch (op) {
  case ACC_LT: return a < b - ACC_EPS;
  case ACC_LE: return a <= b + ACC_EPS;
  case ACC_GT: return a > b + ACC_EPS;
  case ACC_GE: return a >= b - ACC_EPS;
  case ACC_EQ: return fabs(a - b) <= ACC_EPS;
  case ACC_NE: return fabs(a - b) > ACC_EPS;
  }
  return 0;
}

/* Index of the first failing bound of group g, or -1. */
static int first_fail(const struct accept_spec *s, enum accept_group g,
                      const struct accept_stats *st, double *actual) {
  int n = s->n < 0 ? 0 : (s->n > ACCEPT_MAX_BOUNDS ? ACCEPT_MAX_BOUNDS : s->n);
  for (int i = 0; i < n; i++) {
    const struct accept_bound *b = &s->bounds[i];
    if (b->group != g) continue;
    double v;
    if (accept_stats_get(st, b->stat, &v) != 0) {
      *actual = NAN;
      return i; /* unknown statistic never passes */
    }
    if (!holds(b->op, v, b->value)) {
      *actual = v;
      return i;
    }
  }
  return -1;
}

/* The failing bound's text, exactly as accept_bound_format() writes it. */
static void fail_text(const struct accept_bound *b, double actual, char *out, size_t n) {
  (void)actual;
  if (!out || n == 0) return;
  accept_bound_format(b, out, n);
}

int accept_check_group(const struct accept_spec *s, enum accept_group g,
                       const struct accept_stats *st, char *failed, size_t n) {
  double actual = 0;
  int i = first_fail(s, g, st, &actual);
  if (i < 0) {
    if (failed && n) failed[0] = 0;
    return 1;
  }
  fail_text(&s->bounds[i], actual, failed, n);
  return 0;
}

/* A failed weak bound: a lower bound (> >=) means the weak solver did too badly. */
static const char *weak_reason(const struct accept_bound *b, double actual) {
  switch (b->op) {
  case ACC_GT:
  case ACC_GE: return "too_hard";
  case ACC_EQ: return (!isnan(actual) && actual < b->value) ? "too_hard" : "too_easy";
  default: return "too_easy";
  }
}

const char *accept_evaluate(const struct accept_spec *s, const struct accept_stats *st,
                            char *failed, size_t n) {
  double actual = 0;
  int i = first_fail(s, ACC_WEAK, st, &actual);
  if (i >= 0) {
    fail_text(&s->bounds[i], actual, failed, n);
    return weak_reason(&s->bounds[i], actual);
  }
  i = first_fail(s, ACC_STRONG, st, &actual);
  if (i >= 0) {
    fail_text(&s->bounds[i], actual, failed, n);
    return "failed_on_strong";
  }
  i = first_fail(s, ACC_GAP, st, &actual);
  if (i >= 0) {
    fail_text(&s->bounds[i], actual, failed, n);
    return "no_gap";
  }
  i = first_fail(s, ACC_LOOP, st, &actual);
  if (i >= 0) {
    fail_text(&s->bounds[i], actual, failed, n);
    return "loop_judge:improve";
  }
  if (failed && n) failed[0] = 0;
  return NULL;
}

/* ---- early decisions ------------------------------------------------------------ */

#define N_STATS ((int)(sizeof accept_stat_names / sizeof *accept_stat_names) - 1)

/* The range of every statistic over a set of completions. */
struct stat_range {
  double lo[N_STATS], hi[N_STATS];
  int seen[N_STATS];
};

static int stat_index(const char *name) {
  for (int i = 0; accept_stat_names[i]; i++)
    if (strcmp(accept_stat_names[i], name) == 0) return i;
  return -1;
}

static void range_put(struct stat_range *r, int i, double v) {
  if (!r->seen[i] || v < r->lo[i]) r->lo[i] = v;
  if (!r->seen[i] || v > r->hi[i]) r->hi[i] = v;
  r->seen[i] = 1;
}

/* Widen r by the statistics of one side (weak or strong) of st. */
static void range_add(struct stat_range *r, const struct accept_stats *st, enum accept_group side) {
  for (int i = 0; accept_stat_names[i]; i++) {
    double v;
    if (group_of(accept_stat_names[i]) == side &&
        accept_stats_get(st, accept_stat_names[i], &v) == 0)
      range_put(r, i, v);
  }
}

/* The extreme completions of one side: the known scores x[0..k) followed by m of the
 * r outstanding samples (m = 0..r: the others failed), j of them scoring 1 and m - j
 * scoring 0 (these give the extremes of every monotone statistic and, the variance
 * being convex, its maximum), or all m scoring the known mean (the smallest spread). */
static void side_range(const double *x, int k, int r, enum accept_group side, double thr,
                       struct stat_range *out) {
  if (k < 0) k = 0;
  if (k > ACCEPT_MAX_SAMPLES) k = ACCEPT_MAX_SAMPLES;
  if (r < 0) r = 0;
  if (k + r > ACCEPT_MAX_SAMPLES) r = ACCEPT_MAX_SAMPLES - k; /* the statistics stop there */
  double known_mean = 0;
  for (int i = 0; i < k; i++) known_mean += x[i];
  if (k) known_mean /= k;
  struct accept_stats s;
  for (int m = 0; m <= r; m++) {
    for (int j = 0; j <= m + 1; j++) {
      int at_mean = j == m + 1;
      if (at_mean && (k == 0 || m == 0)) continue;
      memset(&s, 0, sizeof s);
      double *a = side == ACC_WEAK ? s.weak : s.strong;
      int n = 0;
      for (int i = 0; i < k; i++) a[n++] = x[i];
      for (int q = 0; q < m; q++) a[n++] = at_mean ? known_mean : (q < j ? 1.0 : 0.0);
      if (side == ACC_WEAK) s.n_weak = n;
      else s.n_strong = n;
      accept_stats_compute(&s, thr);
      range_add(out, &s, side);
    }
  }
}

enum { B_PASS, B_FAIL, B_OPEN };

/* Whether bound b passes (or fails) for every value in [lo, hi]. */
static int classify(const struct accept_bound *b, double lo, double hi) {
  int hl = holds(b->op, lo, b->value), hh = holds(b->op, hi, b->value);
  int straddles = lo <= b->value && b->value <= hi;
  switch (b->op) {
  case ACC_EQ: /* holds on [v - eps, v + eps] */
    if (hl && hh) return B_PASS;
    if (!hl && !hh && !straddles) return B_FAIL;
    return B_OPEN;
  case ACC_NE: /* fails on [v - eps, v + eps] */
    if (!hl && !hh) return B_FAIL;
    if (hl && hh && !straddles) return B_PASS;
    return B_OPEN;
  default: /* a half-line: both ends decide */
    if (hl && hh) return B_PASS;
    if (!hl && !hh) return B_FAIL;
    return B_OPEN;
  }
}

/* The rejection reasons a failing bound can give for a statistic in [lo, hi] (k: the
 * statistic's index, -1 when unknown). */
enum { R_EASY = 1, R_HARD = 2, R_STRONG = 4, R_GAP = 8 };

static int reasons_of(const struct accept_bound *b, int k, double lo, double hi) {
  if (b->group == ACC_STRONG) return R_STRONG;
  if (b->group == ACC_GAP) return R_GAP;
  if (k < 0) return strcmp(weak_reason(b, NAN), "too_hard") ? R_EASY : R_HARD;
  switch (b->op) {
  case ACC_GT:
  case ACC_GE: return R_HARD;
  case ACC_EQ: return (lo < b->value ? R_HARD : 0) | (hi >= b->value ? R_EASY : 0);
  default: return R_EASY;
  }
}

static const char *reason_name(int r) {
  switch (r) {
  case R_EASY: return "too_easy";
  case R_HARD: return "too_hard";
  case R_STRONG: return "failed_on_strong";
  default: return "no_gap";
  }
}

static void set_reason(const char **reason, const char *why) {
  if (reason) *reason = why;
}

enum accept_decision accept_decided(const struct accept_spec *s, const struct accept_partial *p,
                                    const char **reason, char *failed, size_t n) {
  set_reason(reason, NULL);
  if (failed && n) failed[0] = 0;
  if (p->weak_left <= 0 && p->strong_left <= 0) { /* everything is in: evaluate it */
    struct accept_stats st;
    memset(&st, 0, sizeof st);
    st.n_weak = p->n_weak < ACCEPT_MAX_SAMPLES ? p->n_weak : ACCEPT_MAX_SAMPLES;
    st.n_strong = p->n_strong < ACCEPT_MAX_SAMPLES ? p->n_strong : ACCEPT_MAX_SAMPLES;
    for (int i = 0; i < st.n_weak; i++) st.weak[i] = p->weak[i];
    for (int i = 0; i < st.n_strong; i++) st.strong[i] = p->strong[i];
    accept_stats_compute(&st, s->pass_threshold);
    const char *why = accept_evaluate(s, &st, failed, n);
    set_reason(reason, why);
    return why ? ACCEPT_REJECTED : ACCEPT_ACCEPTED;
  }
  struct stat_range r;
  memset(&r, 0, sizeof r);
  side_range(p->weak, p->n_weak, p->weak_left, ACC_WEAK, s->pass_threshold, &r);
  side_range(p->strong, p->n_strong, p->strong_left, ACC_STRONG, s->pass_threshold, &r);
  int g = stat_index("gap"), wm = stat_index("weak_mean"), sm = stat_index("strong_mean");
  range_put(&r, g, r.lo[sm] - r.hi[wm]);
  range_put(&r, g, r.hi[sm] - r.lo[wm]);
  /* In accept_evaluate()'s order: every completion's first failing bound is one of the
   * bounds not certain to pass up to the first bound certain to fail; the reason is
   * certain when all of those give the same one. */
  static const enum accept_group order[] = {ACC_WEAK, ACC_STRONG, ACC_GAP};
  int nb = s->n < 0 ? 0 : (s->n > ACCEPT_MAX_BOUNDS ? ACCEPT_MAX_BOUNDS : s->n);
  int possible = 0;
  for (int o = 0; o < 3; o++) {
    for (int i = 0; i < nb; i++) {
      const struct accept_bound *b = &s->bounds[i];
      if (b->group != order[o]) continue;
      int k = stat_index(b->stat);
      int c = k < 0 ? B_FAIL : classify(b, r.lo[k], r.hi[k]); /* unknown: never passes */
      if (c == B_PASS) continue;
      possible |= k < 0 ? reasons_of(b, k, 0, 0) : reasons_of(b, k, r.lo[k], r.hi[k]);
      if (c == B_OPEN) continue;
      if (possible & (possible - 1)) return ACCEPT_OPEN; /* more than one reason */
      fail_text(b, 0, failed, n);
      set_reason(reason, reason_name(possible));
      return ACCEPT_REJECTED;
    }
  }
  return ACCEPT_OPEN; /* nothing certain to fail, and accepting needs all the samples */
}
