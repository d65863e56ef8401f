/* test_accept_decided.c - early decisions (accept_decided) against brute force: for every
 * statistic and operator the accept spec supports, and for the default gates, every
 * partial evaluation on a grid is decided only when every completion on a grid of scores
 * (and failed samples) gets the same verdict and reason from accept_evaluate(). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/accept.h"

/* Scores an outstanding sample may end with; MISSING: its call failed. */
#define MISSING (-1.0)
static const double k_ends[] = {0, 0.25, 0.5, 0.75, 1, MISSING};
#define N_ENDS ((int)(sizeof k_ends / sizeof *k_ends))
/* Scores already known. */
static const double k_known[] = {0, 0.5, 0.75, 1};
#define N_KNOWN ((int)(sizeof k_known / sizeof *k_known))

struct side {
  double x[8];
  int k, left;
};

/* Fill completion number c (base N_ENDS digits) of side sd into a[] (the known scores
 * first, then the outstanding ones that were judged); returns the count. */
static int complete(const struct side *sd, int c, double *a) {
  int n = 0;
  for (int i = 0; i < sd->k; i++) a[n++] = sd->x[i];
  for (int i = 0; i < sd->left; i++, c /= N_ENDS)
    if (k_ends[c % N_ENDS] != MISSING) a[n++] = k_ends[c % N_ENDS];
  return n;
}

static int ipow(int b, int e) {
  int r = 1;
  while (e-- > 0) r *= b;
  return r;
}

struct tally {
  long partials, decided, completions;
};

/* Decide (w, s) and check the decision against every completion. */
static void check_one(const struct accept_spec *sp, const struct side *w, const struct side *s,
                      struct tally *t) {
  struct accept_partial p = {w->x, s->x, w->k, s->k, w->left, s->left};
  const char *reason = NULL;
  char failed[128];
  enum accept_decision d = accept_decided(sp, &p, &reason, failed, sizeof failed);
  t->partials++;
  if (d == ACCEPT_OPEN) return;
  t->decided++;
  if (d == ACCEPT_ACCEPTED) cr_assert(w->left == 0 && s->left == 0, "accepted with samples out");
  if (d == ACCEPT_REJECTED) cr_assert(reason && failed[0]);
  int nw = ipow(N_ENDS, w->left), ns = ipow(N_ENDS, s->left);
  for (int cw = 0; cw < nw; cw++) {
    for (int cs = 0; cs < ns; cs++) {
      struct accept_stats st;
      memset(&st, 0, sizeof st);
      st.n_weak = complete(w, cw, st.weak);
      st.n_strong = complete(s, cs, st.strong);
      accept_stats_compute(&st, sp->pass_threshold);
      char ff[128];
      const char *full = accept_evaluate(sp, &st, ff, sizeof ff);
      t->completions++;
      if (d == ACCEPT_ACCEPTED) {
        cr_assert_null(full);
        continue;
      }
      if (!full || strcmp(full, reason) != 0) {
        char b[128];
        accept_bound_format(&sp->bounds[0], b, sizeof b);
        cr_assert_fail(
            "spec [%s ...]: decided %s (%s) with weak k=%d left=%d, strong k=%d left=%d; "
            "completion (%d,%d) gives %s (%s)",
            b, reason, failed, w->k, w->left, s->k, s->left, cw, cs, full ? full : "accepted", ff);
      }
      /* the bound named is one that fails in every completion */
      struct accept_bound fb;
      cr_assert_eq(accept_bound_parse(failed, &fb, NULL, 0), 0);
      struct accept_spec one;
      memset(&one, 0, sizeof one);
      one.bounds[0] = fb;
      one.n = 1;
      one.pass_threshold = sp->pass_threshold;
      cr_assert_not_null(accept_evaluate(&one, &st, NULL, 0), "'%s' passes a completion", failed);
    }
  }
}

/* Every known-score vector of length k over k_known, with left outstanding. */
static void each_side(int k, int left, void (*fn)(const struct side *, void *), void *ud) {
  int total = ipow(N_KNOWN, k);
  for (int c = 0; c < total; c++) {
    struct side sd;
    memset(&sd, 0, sizeof sd);
    sd.k = k;
    sd.left = left;
    for (int i = 0, cc = c; i < k; i++, cc /= N_KNOWN) sd.x[i] = k_known[cc % N_KNOWN];
    fn(&sd, ud);
  }
}

struct run {
  const struct accept_spec *sp;
  int max_w, max_s; /* samples per side */
  const struct side *w;
  struct tally t;
};

static void with_strong(const struct side *s, void *ud) {
  struct run *r = ud;
  check_one(r->sp, r->w, s, &r->t);
}

static void with_weak(const struct side *w, void *ud) {
  struct run *r = ud;
  r->w = w;
  for (int k = 0; k <= r->max_s; k++) each_side(k, r->max_s - k, with_strong, r);
}

/* Every partial evaluation with max_w weak and max_s strong samples in all. */
static struct tally brute(const struct accept_spec *sp, int max_w, int max_s) {
  struct run r = {sp, max_w, max_s, NULL, {0, 0, 0}};
  for (int k = 0; k <= max_w; k++) each_side(k, max_w - k, with_weak, &r);
  return r.t;
}

static void spec_of(struct accept_spec *sp, const char *const *bounds, double thr) {
  memset(sp, 0, sizeof *sp);
  sp->pass_threshold = thr;
  for (; *bounds; bounds++) {
    char err[256];
    cr_assert_eq(accept_bound_parse(*bounds, &sp->bounds[sp->n], err, sizeof err), 0, "%s", err);
    sp->n++;
  }
}

/* Every statistic with every operator, alone, at a value inside its range. */
Test(accept_decided, every_statistic_and_operator) {
  static const char *const ops[] = {"<", "<=", ">", ">=", "==", "!="};
  for (int si = 0; accept_stat_names[si]; si++) {
    const char *st = accept_stat_names[si];
    int count = strstr(st, "correct") || strncmp(st, "n_", 2) == 0;
    double values[2] = {count ? 1 : 0.5, count ? 2 : 0.75};
    if (!strcmp(st, "gap")) values[0] = 0.25, values[1] = 0;
    if (strstr(st, "std")) values[0] = 0.25, values[1] = 0;
    for (int oi = 0; oi < 6; oi++) {
      for (int vi = 0; vi < 2; vi++) {
        char text[96];
        snprintf(text, sizeof text, "%s %s %g", st, ops[oi], values[vi]);
        const char *const b[] = {text, NULL};
        struct accept_spec sp;
        spec_of(&sp, b, 0.5);
        int weak_side = strstr(st, "weak") != NULL, strong_side = strstr(st, "strong") != NULL;
        int mw = weak_side ? 3 : strong_side ? 1 : 2, ms = strong_side ? 3 : weak_side ? 1 : 2;
        struct tally t = brute(&sp, mw, ms);
        cr_assert_gt(t.decided, 0, "%s: never decided", text);
      }
    }
  }
}

/* The deployed gates, several bounds of each group, with both pass thresholds. */
Test(accept_decided, default_gates) {
  struct accept_spec sp;
  accept_spec_default_rubric(&sp);
  struct tally t = brute(&sp, 3, 2);
  cr_assert_gt(t.decided, t.partials / 10);
  accept_spec_default_verifiable(&sp);
  t = brute(&sp, 3, 2);
  cr_assert_gt(t.decided, t.partials / 10);
  static const char *const mixed[] = {
      "weak_correct <= 1",   "weak_min > 0",          "strong_std < 0.3",
      "strong_correct >= 1", "n_strong == 2",         "gap >= 0.25",
      "weak_mean != 0.5",    "weak_pass_rate < 0.75", NULL};
  spec_of(&sp, mixed, 1.0);
  t = brute(&sp, 3, 2);
  cr_assert_gt(t.decided, 0);
}

static enum accept_decision decide(const struct accept_spec *sp, const double *w, int kw, int lw,
                                   const double *s, int ks, int ls, const char **reason) {
  struct accept_partial p = {w, s, kw, ks, lw, ls};
  char failed[128];
  return accept_decided(sp, &p, reason, failed, sizeof failed);
}

/* The examples: one weak score above weak_max; a zero under "no zero weak"; a weak
 * mean that can no longer reach its bound; two correct weak answers under a count gate. */
Test(accept_decided, the_decisions_users_pay_for) {
  const char *why = NULL;
  struct accept_spec sp;
  static const char *const cap[] = {"weak_max <= 0.75", NULL};
  spec_of(&sp, cap, 0.5);
  double w1[] = {1.0};
  cr_assert_eq(decide(&sp, w1, 1, 3, NULL, 0, 3, &why), ACCEPT_REJECTED);
  cr_assert_str_eq(why, "too_easy");

  static const char *const nozero[] = {"weak_mean <= 0.65", "weak_min > 0", NULL};
  spec_of(&sp, nozero, 0.5);
  cr_assert_eq(decide(&sp, (double[]){0.5, 0.0}, 2, 1, NULL, 0, 3, &why), ACCEPT_REJECTED);
  cr_assert_str_eq(why, "too_hard");

  accept_spec_default_rubric(&sp); /* weak_mean <= 0.65 comes first: still too easy */
  cr_assert_eq(decide(&sp, w1, 1, 2, NULL, 0, 3, &why), ACCEPT_REJECTED);
  cr_assert_str_eq(why, "too_easy");
  double w0[] = {0.5, 0.0};
  /* weak_min > 0 fails, but a last 1.0 would make weak_max <= 0.75 fail first: too easy */
  cr_assert_eq(decide(&sp, w0, 2, 1, NULL, 0, 3, &why), ACCEPT_OPEN);
  double wm[] = {0.75, 0.7};
  cr_assert_eq(decide(&sp, wm, 2, 1, NULL, 0, 3, &why), ACCEPT_OPEN); /* could be 0.48 */
  double wh[] = {0.75, 0.75}; /* a last 0 would pass the mean and fail weak_min: too hard */
  cr_assert_eq(decide(&sp, wh, 2, 1, NULL, 0, 3, &why), ACCEPT_OPEN);
  double wt[] = {1.0, 1.0};
  cr_assert_eq(decide(&sp, wt, 2, 1, NULL, 0, 3, &why), ACCEPT_REJECTED); /* mean >= 0.67 */
  cr_assert_str_eq(why, "too_easy");
  double wl[] = {0.25, 0.25, 0.25};
  double sl[] = {0.25};
  cr_assert_eq(decide(&sp, wl, 3, 0, sl, 1, 2, &why), ACCEPT_OPEN); /* strong mean may be 0.75 */
  double s0[] = {0.25, 0.25};
  cr_assert_eq(decide(&sp, wl, 3, 0, s0, 2, 1, &why), ACCEPT_REJECTED); /* <= 0.5 */
  cr_assert_str_eq(why, "failed_on_strong");
  double s1[] = {1.0, 1.0, 1.0};
  cr_assert_eq(decide(&sp, wl, 3, 0, s1, 3, 0, &why), ACCEPT_REJECTED); /* strong_mean < 0.95 */
  double s2[] = {0.75, 0.75, 0.5};
  cr_assert_eq(decide(&sp, wl, 3, 0, s2, 3, 0, &why), ACCEPT_ACCEPTED);
  cr_assert_eq(decide(&sp, wl, 3, 0, s2, 2, 1, &why), ACCEPT_OPEN); /* never accepted early */

  static const char *const exact[] = {"weak_correct <= 1", "strong_correct >= 2", NULL};
  spec_of(&sp, exact, 1.0);
  double c2[] = {1, 0, 1};
  cr_assert_eq(decide(&sp, c2, 3, 2, NULL, 0, 4, &why), ACCEPT_REJECTED);
  cr_assert_str_eq(why, "too_easy");
  cr_assert_eq(decide(&sp, c2, 2, 3, NULL, 0, 4, &why), ACCEPT_OPEN);
}

/* Reasons that differ keep it open: weak_mean >= 0.5 (too hard when it fails) before
 * weak_max <= 0.75 (too easy). */
Test(accept_decided, mixed_reasons_stay_open) {
  const char *why = NULL;
  struct accept_spec sp;
  static const char *const b[] = {"weak_mean >= 0.5", "weak_max <= 0.75", NULL};
  spec_of(&sp, b, 0.5);
  double w[] = {1.0};
  cr_assert_eq(decide(&sp, w, 1, 3, NULL, 0, 0, &why), ACCEPT_OPEN);
  double w2[] = {1.0, 1.0};
  cr_assert_eq(decide(&sp, w2, 2, 2, NULL, 0, 0, &why), ACCEPT_REJECTED); /* mean >= 0.5 now */
  cr_assert_str_eq(why, "too_easy");
}
