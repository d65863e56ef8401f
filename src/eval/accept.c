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
