/* test_accept.c - acceptance predicate: stats, bound parsing, operators, default gates, reasons. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "eval/accept.h"
#include "util/err.h"

static struct accept_stats mk(const double *w, int nw, const double *s, int ns, double thr) {
  struct accept_stats st;
  memset(&st, 0, sizeof st);
  st.n_weak = nw;
  st.n_strong = ns;
  for (int i = 0; i < nw; i++) st.weak[i] = w[i];
  for (int i = 0; i < ns; i++) st.strong[i] = s[i];
  st.strong_ran = ns > 0;
  accept_stats_compute(&st, thr);
  return st;
}

Test(accept, stats_compute) {
  double w[] = {0.2, 0.4, 0.6}, s[] = {1.0, 0.5, 0.9};
  struct accept_stats st = mk(w, 3, s, 3, 0.5);
  cr_assert_float_eq(st.weak_mean, 0.4, 1e-12);
  cr_assert_float_eq(st.weak_std, sqrt((0.04 + 0 + 0.04) / 3), 1e-12);
  cr_assert_float_eq(st.weak_min, 0.2, 1e-12);
  cr_assert_float_eq(st.weak_max, 0.6, 1e-12);
  cr_assert_float_eq(st.strong_mean, 0.8, 1e-12);
  cr_assert_float_eq(st.strong_min, 0.5, 1e-12);
  cr_assert_float_eq(st.strong_max, 1.0, 1e-12);
  cr_assert_float_eq(st.gap, 0.4, 1e-12);
  cr_assert_eq(st.weak_correct, 1);   /* only 0.6 >= 0.5 */
  cr_assert_eq(st.strong_correct, 3); /* 0.5 counts */
  cr_assert_float_eq(st.weak_pass_rate, 1.0 / 3, 1e-12);
  cr_assert_float_eq(st.strong_pass_rate, 1.0, 1e-12);
}

Test(accept, stats_empty_and_clamped) {
  struct accept_stats st;
  memset(&st, 0, sizeof st);
  st.n_weak = 0;
  st.n_strong = 1000; /* clamped to ACCEPT_MAX_SAMPLES */
  accept_stats_compute(&st, 1.0);
  cr_assert_eq(st.n_strong, ACCEPT_MAX_SAMPLES);
  cr_assert_eq(st.weak_mean, 0);
  cr_assert_eq(st.weak_pass_rate, 0);
  cr_assert_eq(st.strong_correct, 0);
}

Test(accept, get_every_name) {
  double w[] = {0, 1}, s[] = {1, 1};
  struct accept_stats st = mk(w, 2, s, 2, 1.0);
  for (int i = 0; accept_stat_names[i]; i++) {
    double v = -99;
    cr_assert_eq(accept_stats_get(&st, accept_stat_names[i], &v), 0, "%s", accept_stat_names[i]);
    cr_assert_neq(v, -99);
  }
  double v;
  cr_assert_eq(accept_stats_get(&st, "weak_median", &v), AD_ENOTFOUND);
  cr_assert_eq(accept_stats_get(&st, NULL, &v), AD_EINVAL);
  cr_assert_eq(accept_stats_get(&st, "n_weak", &v), 0);
  cr_assert_eq(v, 2);
  cr_assert_eq(accept_stats_get(&st, "strong_correct", &v), 0);
  cr_assert_eq(v, 2);
}

Test(accept, parse_operators_and_groups) {
  struct {
    const char *txt;
    enum accept_op op;
    double v;
    enum accept_group g;
  } c[] = {
      {"weak_mean <= 0.65", ACC_LE, 0.65, ACC_WEAK},
      {"weak_max<0.75", ACC_LT, 0.75, ACC_WEAK},
      {"  weak_min > 0  ", ACC_GT, 0, ACC_WEAK},
      {"strong_mean >= 60%", ACC_GE, 0.60, ACC_STRONG},
      {"strong_correct == 3", ACC_EQ, 3, ACC_STRONG},
      {"n_strong != 0", ACC_NE, 0, ACC_STRONG},
      {"gap >= 0.2", ACC_GE, 0.2, ACC_GAP},
      {"n_weak >= 3", ACC_GE, 3, ACC_WEAK},
  };
  for (size_t i = 0; i < sizeof c / sizeof c[0]; i++) {
    struct accept_bound b;
    char err[256];
    cr_assert_eq(accept_bound_parse(c[i].txt, &b, err, sizeof err), 0, "%s: %s", c[i].txt, err);
    cr_assert_eq(b.op, c[i].op, "%s", c[i].txt);
    cr_assert_float_eq(b.value, c[i].v, 1e-12, "%s", c[i].txt);
    cr_assert_eq(b.group, c[i].g, "%s", c[i].txt);
  }
}

Test(accept, parse_errors_say_what_is_expected) {
  struct accept_bound b;
  char err[512];
  cr_assert_eq(accept_bound_parse("weak_avg <= 0.5", &b, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "unknown statistic 'weak_avg'"), "%s", err);
  cr_assert(strstr(err, "weak_mean"), "lists known names: %s", err);
  cr_assert_eq(accept_bound_parse("weak_mean =< 0.5", &b, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "operator"), "%s", err);
  cr_assert_eq(accept_bound_parse("weak_mean <= high", &b, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "number"), "%s", err);
  cr_assert_eq(accept_bound_parse("weak_mean <= 0.5 or so", &b, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "unexpected text"), "%s", err);
  cr_assert_eq(accept_bound_parse("", &b, err, sizeof err), AD_EPARSE);
  cr_assert_eq(accept_bound_parse("<= 0.5", &b, err, sizeof err), AD_EPARSE);
  cr_assert_eq(accept_bound_parse(NULL, &b, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "expected '<statistic>"), "%s", err);
  cr_assert_eq(accept_bound_parse("weak_avg <= 0.5", &b, NULL, 0), AD_EPARSE, "err may be NULL");
}

Test(accept, format_roundtrip) {
  const char *t[] = {"weak_mean <= 0.65", "gap >= 0.2",        "strong_mean < 0.95",
                     "weak_min > 0",      "weak_correct == 1", "n_weak != 0"};
  for (size_t i = 0; i < 6; i++) {
    struct accept_bound b;
    char out[64];
    cr_assert_eq(accept_bound_parse(t[i], &b, NULL, 0), 0);
    accept_bound_format(&b, out, sizeof out);
    cr_assert_str_eq(out, t[i]);
  }
}

/* Every operator on both sides of its boundary (and at it). */
Test(accept, operators_at_boundaries) {
  struct {
    const char *bound;
    double at, below, above;
    int r_at, r_below, r_above;
  } c[] = {
      {"weak_mean < 0.5", 0.5, 0.49, 0.51, 0, 1, 0},
      {"weak_mean <= 0.5", 0.5, 0.49, 0.51, 1, 1, 0},
      {"weak_mean > 0.5", 0.5, 0.49, 0.51, 0, 0, 1},
      {"weak_mean >= 0.5", 0.5, 0.49, 0.51, 1, 0, 1},
      {"weak_mean == 0.5", 0.5, 0.49, 0.51, 1, 0, 0},
      {"weak_mean != 0.5", 0.5, 0.49, 0.51, 0, 1, 1},
  };
  for (size_t i = 0; i < 6; i++) {
    struct accept_spec s;
    memset(&s, 0, sizeof s);
    cr_assert_eq(accept_bound_parse(c[i].bound, &s.bounds[0], NULL, 0), 0);
    s.n = 1;
    double vals[3] = {c[i].at, c[i].below, c[i].above};
    int want[3] = {c[i].r_at, c[i].r_below, c[i].r_above};
    for (int k = 0; k < 3; k++) {
      struct accept_stats st = mk(&vals[k], 1, NULL, 0, 0.5);
      cr_assert_eq(accept_check_group(&s, ACC_WEAK, &st, NULL, 0), want[k], "%s with %g",
                   c[i].bound, vals[k]);
    }
  }
}

Test(accept, mean_of_equal_scores_meets_inclusive_bound) {
  /* (0.65+0.65+0.65)/3 is not exactly 0.65 in binary; the gate must still pass. */
  double w[] = {0.65, 0.65, 0.65};
  struct accept_stats st = mk(w, 3, NULL, 0, 0.5);
  struct accept_spec s;
  memset(&s, 0, sizeof s);
  accept_bound_parse("weak_mean <= 0.65", &s.bounds[0], NULL, 0);
  s.n = 1;
  cr_assert_eq(accept_check_group(&s, ACC_WEAK, &st, NULL, 0), 1);
}

Test(accept, default_rubric_is_the_deployed_cs_gate) {
  struct accept_spec s;
  accept_spec_default_rubric(&s);
  cr_assert_eq(s.n, 7);
  cr_assert_eq(s.short_circuit, 1);
  cr_assert_float_eq(s.pass_threshold, 0.5, 1e-12);
  const char *want[] = {"weak_mean <= 0.65",  "weak_max <= 0.75",   "weak_min > 0",
                        "strong_mean >= 0.6", "strong_mean < 0.95", "strong_min > 0",
                        "gap >= 0.2"};
  for (int i = 0; i < 7; i++) {
    char t[64];
    accept_bound_format(&s.bounds[i], t, sizeof t);
    cr_assert_str_eq(t, want[i]);
  }
  cr_assert_eq(s.bounds[0].group, ACC_WEAK);
  cr_assert_eq(s.bounds[3].group, ACC_STRONG);
  cr_assert_eq(s.bounds[6].group, ACC_GAP);
}

Test(accept, default_rubric_reasons) {
  struct accept_spec s;
  accept_spec_default_rubric(&s);
  char failed[128];
  /* accepted */
  double w1[] = {0.3, 0.4, 0.5}, s1[] = {0.8, 0.9, 0.7};
  struct accept_stats st = mk(w1, 3, s1, 3, 0.5);
  cr_assert_null(accept_evaluate(&s, &st, failed, sizeof failed));
  cr_assert_str_eq(failed, "");
  /* weak mean too high -> too_easy */
  double w2[] = {0.7, 0.7, 0.7};
  st = mk(w2, 3, s1, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "too_easy");
  cr_assert_str_eq(failed, "weak_mean <= 0.65");
  /* best weak attempt too high -> too_easy */
  double w3[] = {0.8, 0.3, 0.3};
  st = mk(w3, 3, s1, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "too_easy");
  cr_assert_str_eq(failed, "weak_max <= 0.75");
  /* a weak zero -> too_hard */
  double w4[] = {0.0, 0.3, 0.3};
  st = mk(w4, 3, s1, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "too_hard");
  cr_assert_str_eq(failed, "weak_min > 0");
  /* strong too weak -> failed_on_strong */
  double s5[] = {0.5, 0.5, 0.6};
  st = mk(w1, 3, s5, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "failed_on_strong");
  cr_assert_str_eq(failed, "strong_mean >= 0.6");
  /* strong saturated -> failed_on_strong (upper bound) */
  double s6[] = {1, 1, 1};
  st = mk(w1, 3, s6, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "failed_on_strong");
  cr_assert_str_eq(failed, "strong_mean < 0.95");
  /* a strong zero -> failed_on_strong */
  double s7[] = {0, 1, 1};
  st = mk(w1, 3, s7, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "failed_on_strong");
  cr_assert_str_eq(failed, "strong_min > 0");
  /* everything in band but the gap -> no_gap */
  double w8[] = {0.6, 0.6, 0.6}, s8[] = {0.7, 0.7, 0.7};
  st = mk(w8, 3, s8, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "no_gap");
  cr_assert_str_eq(failed, "gap >= 0.2");
}

Test(accept, weak_gate_checked_first) {
  /* Weak fails and strong fails too: the weak reason wins (short-circuit order). */
  struct accept_spec s;
  accept_spec_default_rubric(&s);
  double w[] = {0.9, 0.9, 0.9}, st_[] = {0.1, 0.1, 0.1};
  struct accept_stats st = mk(w, 3, st_, 3, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "too_easy");
  cr_assert_eq(accept_check_group(&s, ACC_WEAK, &st, NULL, 0), 0);
  cr_assert_eq(accept_check_group(&s, ACC_STRONG, &st, NULL, 0), 0);
  cr_assert_eq(accept_check_group(&s, ACC_GAP, &st, NULL, 0), 0);
}

Test(accept, default_verifiable) {
  struct accept_spec s;
  accept_spec_default_verifiable(&s);
  cr_assert_float_eq(s.pass_threshold, 1.0, 1e-12);
  char failed[64];
  double w_ok[] = {0, 0, 1}, s_ok[] = {1, 1, 0};
  struct accept_stats st = mk(w_ok, 3, s_ok, 3, 1.0);
  cr_assert_null(accept_evaluate(&s, &st, failed, sizeof failed));
  double w_easy[] = {1, 1, 0};
  st = mk(w_easy, 3, s_ok, 3, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "too_easy");
  cr_assert_str_eq(failed, "weak_pass_rate < 0.5");
  double s_bad[] = {1, 0, 0};
  st = mk(w_ok, 3, s_bad, 3, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "failed_on_strong");
  /* exactly half right is not a majority either way */
  double w_half[] = {1, 0}, s_half[] = {1, 0};
  st = mk(w_half, 2, s_half, 2, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "too_easy");
  double w_half2[] = {0, 0};
  st = mk(w_half2, 2, s_half, 2, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "failed_on_strong");
}

Test(accept, maths_exact_counts) {
  /* The paper's maths gate: weak <= 1 of 4 correct, strong >= 3 of 4. */
  struct accept_spec s;
  memset(&s, 0, sizeof s);
  cr_assert_eq(accept_bound_parse("weak_correct <= 1", &s.bounds[0], NULL, 0), 0);
  cr_assert_eq(accept_bound_parse("strong_correct >= 3", &s.bounds[1], NULL, 0), 0);
  s.n = 2;
  s.pass_threshold = 1.0;
  double w[] = {1, 0, 0, 0}, st4[] = {1, 1, 1, 0};
  struct accept_stats st = mk(w, 4, st4, 4, 1.0);
  cr_assert_null(accept_evaluate(&s, &st, NULL, 0));
  double w2[] = {1, 1, 0, 0};
  st = mk(w2, 4, st4, 4, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "too_easy");
  double st2[] = {1, 1, 0, 0};
  st = mk(w, 4, st2, 4, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "failed_on_strong");
}

Test(accept, weak_reason_by_bound_direction) {
  struct accept_spec s;
  memset(&s, 0, sizeof s);
  char failed[64];
  /* a lower bound on a weak statistic failing means the task is too hard */
  accept_bound_parse("weak_mean >= 0.2", &s.bounds[0], NULL, 0);
  s.n = 1;
  double w[] = {0.1};
  struct accept_stats st = mk(w, 1, NULL, 0, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "too_hard");
  /* == failing from below: too_hard; from above: too_easy */
  accept_bound_parse("weak_correct == 1", &s.bounds[0], NULL, 0);
  double w0[] = {0, 0};
  st = mk(w0, 2, NULL, 0, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "too_hard");
  double w2[] = {1, 1};
  st = mk(w2, 2, NULL, 0, 1.0);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "too_easy");
  /* gap-only spec: no_gap */
  accept_bound_parse("gap > 0.5", &s.bounds[0], NULL, 0);
  double sx[] = {0.5};
  st = mk(w, 1, sx, 1, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "no_gap");
  cr_assert_str_eq(failed, "gap > 0.5");
}

Test(accept, unknown_stat_in_spec_never_passes) {
  struct accept_spec s;
  memset(&s, 0, sizeof s);
  snprintf(s.bounds[0].stat, sizeof s.bounds[0].stat, "bogus");
  s.bounds[0].op = ACC_GE;
  s.bounds[0].group = ACC_GAP;
  s.n = 1;
  double w[] = {0.1};
  struct accept_stats st = mk(w, 1, w, 1, 0.5);
  cr_assert_str_eq(accept_evaluate(&s, &st, NULL, 0), "no_gap");
}
