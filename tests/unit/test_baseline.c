/* test_baseline.c - the CoT-Self-Instruct filters: majority answer
 * (incl. ties and unextractable answers), Answer-Consistency, the RIP lowest-score
 * rule and its threshold boundary. */
#include <criterion/criterion.h>
#include <string.h>

#include "eval/baseline.h"

Test(baseline, params_check) {
  struct bl_params p;
  char err[128];
  bl_params_default(&p);
  cr_assert_eq(p.k, 4);
  cr_assert_eq(bl_params_check(&p, err, sizeof err), 0);
  p.k = 0;
  cr_assert_eq(bl_params_check(&p, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "k"));
  bl_params_default(&p);
  p.rip_threshold = 1.5;
  cr_assert_eq(bl_params_check(&p, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "rip"));
  bl_params_default(&p);
  p.ac_min_share = 0; /* a zero share would keep any answer: refused, as in recipes */
  cr_assert_eq(bl_params_check(&p, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "answer-consistency"));
  p.ac_min_share = 1;
  cr_assert_eq(bl_params_check(&p, err, sizeof err), 0);
}

Test(baseline, rip_lowest_score_rule) {
  double s[] = {0.9, 1.0, 0.4, 0.8};
  double q = -1;
  /* The mean (0.775) would pass 0.5; the lowest score (0.4) decides. */
  cr_assert_eq(bl_rip(s, 4, 0.5, &q), 0);
  cr_assert_float_eq(q, 0.4, 1e-12);
  cr_assert_eq(bl_rip(s, 4, 0.4, &q), 1, "quality equal to the threshold is kept");
  cr_assert_eq(bl_rip(s, 4, 0.41, &q), 0);
  cr_assert_eq(bl_rip(s, 2, 0.5, &q), 1, "only the first two samples: min 0.9");
  cr_assert_float_eq(q, 0.9, 1e-12);
  cr_assert_eq(bl_rip(s, 0, 0.0, &q), 0, "no scored sample rejects");
  cr_assert_eq(q, 0.0);
  double z[] = {0.0};
  cr_assert_eq(bl_rip(z, 1, 0.0, &q), 1, "threshold 0 keeps everything scored");
}

Test(baseline, same_answer) {
  cr_assert(bl_same_answer("17", "17.0"));
  cr_assert(bl_same_answer("1,234", "1234"));
  cr_assert(bl_same_answer("The Paris", "paris"));
  cr_assert_not(bl_same_answer("17", "18"));
  cr_assert_not(bl_same_answer("", ""));
  cr_assert_not(bl_same_answer(NULL, "1"));
}

Test(baseline, majority_plain) {
  const char *a[] = {"17", "18", "17.0", "17"};
  struct bl_majority m;
  bl_majority(a, 4, &m);
  cr_assert_eq(m.winner, 0);
  cr_assert_eq(m.count, 3);
  cr_assert_eq(m.tied, 0);
  cr_assert_float_eq(m.share, 0.75, 1e-12);
}

Test(baseline, majority_tie_has_no_winner) {
  const char *a[] = {"17", "18", "18", "17"};
  struct bl_majority m;
  bl_majority(a, 4, &m);
  cr_assert_eq(m.winner, -1);
  cr_assert_eq(m.count, 2);
  cr_assert_eq(m.tied, 1);
  cr_assert_eq(bl_answer_consistency(a, 4, "17", 0.0, NULL), 0, "a tie rejects even at share 0");
  const char *b[] = {"5", "6", "7"};
  bl_majority(b, 3, &m);
  cr_assert_eq(m.winner, -1, "all different: a three-way tie");
}

Test(baseline, majority_ignores_missing_answers) {
  const char *a[] = {NULL, "", "42", ""};
  struct bl_majority m;
  bl_majority(a, 4, &m);
  cr_assert_eq(m.winner, 2);
  cr_assert_eq(m.count, 1);
  cr_assert_float_eq(m.share, 0.25, 1e-12, "missing answers count in K");
  const char *none[] = {NULL, ""};
  bl_majority(none, 2, &m);
  cr_assert_eq(m.winner, -1);
  cr_assert_eq(m.count, 0);
  bl_majority(none, 0, &m);
  cr_assert_eq(m.winner, -1);
}

Test(baseline, answer_consistency) {
  const char *a[] = {"17", "17", "18", "17"};
  struct bl_majority m;
  cr_assert_eq(bl_answer_consistency(a, 4, "17", 0.5, &m), 1);
  cr_assert_eq(m.count, 3);
  cr_assert_eq(bl_answer_consistency(a, 4, "18", 0.5, &m), 0,
               "majority differs from the generated answer");
  cr_assert_eq(bl_answer_consistency(a, 4, "17", 0.75, NULL), 1, "share 3/4 meets 0.75");
  cr_assert_eq(bl_answer_consistency(a, 4, "17", 0.8, NULL), 0, "share 3/4 below 0.8");
  const char *b[] = {"17", "18", "19", "17", NULL};
  /* plurality 17 with 2 of 5 = 0.4 */
  cr_assert_eq(bl_answer_consistency(b, 5, "17", 0.5, NULL), 0);
  cr_assert_eq(bl_answer_consistency(b, 5, "17", 0.4, NULL), 1);
  cr_assert_eq(bl_answer_consistency(b, 5, "seventeen", 0.0, NULL), 0);
}
