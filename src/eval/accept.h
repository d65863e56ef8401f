/* accept.h - the acceptance predicate: bounds over named statistics.
 *
 * A recipe declares acceptance as a list of bounds such as "weak_mean <= 0.65",
 * "gap >= 0.20", "weak_correct <= 1". The program, never a model, evaluates them.
 * Bounds are grouped by the solver they need: weak-only bounds form the weak
 * gate (checked first; with short-circuit the strong solver is not run when the
 * weak gate fails, as the paper does), then strong bounds, then the gap bounds.
 *
 * Rejection reasons: a failing weak bound -> "too_easy" (or "too_hard" when the
 * bound is a lower bound on a weak statistic, e.g. weak_min > 0); a failing strong
 * bound -> "failed_on_strong"; a failing gap bound -> "no_gap"; a failing bound on the loop
 * judge's verdict ("loop_accept == 1", checked last) -> "loop_judge:improve".
 */
#ifndef AD_ACCEPT_H
#define AD_ACCEPT_H

#include <stddef.h>

#define ACCEPT_MAX_SAMPLES 64
#define ACCEPT_MAX_BOUNDS 32

/* Statistics of one evaluated candidate. Scores are in [0,1]; for verifiable
 * tasks a score is 1 (correct) or 0. */
struct accept_stats {
  int n_weak, n_strong; /* samples judged (failed calls excluded) */
  double weak[ACCEPT_MAX_SAMPLES];
  double strong[ACCEPT_MAX_SAMPLES];
  int strong_ran; /* 0 when the weak gate short-circuited */
  double weak_mean, weak_std, weak_min, weak_max;
  double strong_mean, strong_std, strong_min, strong_max;
  double gap;                       /* strong_mean - weak_mean */
  int weak_correct, strong_correct; /* samples with score >= pass_threshold */
  double weak_pass_rate, strong_pass_rate;
  /* The loop judge's verdict (the recipe's optional loop_judge role): 1 accept, 0 improve
   * or not judged; loop_judged says whether it ran. Set by the loop, not by
   * accept_stats_compute(). */
  double loop_accept;
  int loop_judged;
};

/* Fill the derived fields from weak[]/strong[]. pass_threshold decides
 * "correct" (1.0 for verifiable tasks; e.g. 0.5 for rubric tasks). std is the
 * population standard deviation. */
void accept_stats_compute(struct accept_stats *s, double pass_threshold);

/* The names accepted in bounds, NULL-terminated. */
extern const char *const accept_stat_names[];
/* Value of a named statistic; returns 0 and sets *v, AD_ENOTFOUND for an unknown
 * name, or AD_EINVAL for a NULL name. */
int accept_stats_get(const struct accept_stats *s, const char *name, double *v);

enum accept_op { ACC_LT, ACC_LE, ACC_GT, ACC_GE, ACC_EQ, ACC_NE };
enum accept_group { ACC_WEAK, ACC_STRONG, ACC_GAP, ACC_LOOP };

struct accept_bound {
  char stat[32];
  enum accept_op op;
  double value;
  enum accept_group group; /* derived from stat */
};

struct accept_spec {
  struct accept_bound bounds[ACCEPT_MAX_BOUNDS];
  int n;
  int short_circuit;     /* skip the strong solver when the weak gate fails */
  double pass_threshold; /* score at or above which a sample counts as correct */
};

/* Parse "weak_mean <= 0.65" into b. Returns 0, or AD_EPARSE with a message in err
 * that says what was expected (stat names, operators); AD_EINVAL when text or b
 * is NULL. err may be NULL/0. */
int accept_bound_parse(const char *text, struct accept_bound *b, char *err, size_t errlen);
/* Format a bound back to text ("weak_mean <= 0.65"). */
void accept_bound_format(const struct accept_bound *b, char *out, size_t n);

/* The paper's deployed CS gate (DESIGN.md §2), the default for rubric tasks. */
void accept_spec_default_rubric(struct accept_spec *s);
/* Strong majority right and weak majority wrong: the default for verifiable tasks. */
void accept_spec_default_verifiable(struct accept_spec *s);

/* Evaluate one group of bounds. Returns 1 if all pass; on failure returns 0 and
 * writes the first failing bound's text to failed (if non-NULL). */
int accept_check_group(const struct accept_spec *s, enum accept_group g,
                       const struct accept_stats *st, char *failed, size_t n);
/* Evaluate everything: returns NULL when accepted, else the rejection reason
 * ("too_easy", "too_hard", "failed_on_strong", "no_gap") and the failing bound text. */
const char *accept_evaluate(const struct accept_spec *s, const struct accept_stats *st,
                            char *failed, size_t n);

/* ---- early decisions (sequential evaluation) --------------------------------------
 *
 * A candidate whose samples are still coming in: the judged scores so far on each side
 * (in sample order) and the samples still outstanding. Each outstanding sample ends with
 * a score in [0,1] or with none (its call failed: it is left out of the statistics), and
 * comes after the known ones in sample order. */
struct accept_partial {
  const double *weak, *strong; /* judged scores so far (may be NULL when n_* is 0) */
  int n_weak, n_strong;
  int weak_left, strong_left; /* samples still outstanding */
};

enum accept_decision {
  ACCEPT_OPEN = 0, /* the outcome still depends on the outstanding samples */
  ACCEPT_REJECTED, /* every completion is rejected, for the same reason */
  ACCEPT_ACCEPTED  /* nothing is outstanding and the candidate passes */
};

/* Is accept_evaluate()'s verdict already certain, whatever the outstanding samples
 * score (or whether they are judged at all)? Each statistic is bounded over the best and
 * worst completions (outstanding samples all 0, all 1 or missing, and the known mean for
 * the smallest spread); a bound is certain to pass or to fail when it does so over its
 * statistic's whole range. ACCEPT_REJECTED when some bound is certain to fail and every
 * bound that could fail before it (in accept_evaluate()'s order) gives the same reason:
 * every completion is then rejected for that reason, which is set, and failed gets the
 * bound certain to fail (under full evaluation the first failing bound may be an earlier
 * one with the same reason, e.g. weak_mean before weak_max). Accepting is certain only
 * when nothing is outstanding: an accepted candidate always carries all its samples.
 * Only certain decisions: when in doubt, ACCEPT_OPEN. reason and failed may be NULL/0. */
enum accept_decision accept_decided(const struct accept_spec *s, const struct accept_partial *p,
                                    const char **reason, char *failed, size_t n);

#endif
