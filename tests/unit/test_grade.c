/* test_grade.c - eval's metrics (mean@k / best@k, avg@k / pass@k), the paired comparison
 * of two evals, and the reward server's request parser (both protocols, every refusal). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "grade/grade.h"

/* ---- metrics ---- */

Test(grade, mean_and_best_of_rubric_scores) {
  double s[] = {0.25, 1.0, 0.5};
  struct grade_metrics m;
  grade_metrics_of(s, 3, &m);
  cr_assert_float_eq(m.mean, 1.75 / 3, 1e-12);
  cr_assert_float_eq(m.best, 1.0, 1e-12);
  cr_assert_eq(m.n, 3);
  grade_metrics_of(s, 1, &m); /* k = 1: mean@1 = best@1 */
  cr_assert_float_eq(m.mean, 0.25, 1e-12);
  cr_assert_float_eq(m.best, 0.25, 1e-12);
}

Test(grade, avg_and_pass_of_verifiable_scores) {
  double none[] = {0, 0, 0, 0}, one[] = {0, 0, 1, 0}, all[] = {1, 1, 1, 1};
  struct grade_metrics m;
  grade_metrics_of(none, 4, &m);
  cr_assert_float_eq(m.mean, 0, 1e-12);
  cr_assert_float_eq(m.best, 0, 1e-12); /* pass@4 = 0 */
  grade_metrics_of(one, 4, &m);
  cr_assert_float_eq(m.mean, 0.25, 1e-12); /* avg@4 */
  cr_assert_float_eq(m.best, 1, 1e-12);    /* pass@4: one correct answer suffices */
  grade_metrics_of(all, 4, &m);
  cr_assert_float_eq(m.mean, 1, 1e-12);
}

Test(grade, no_scored_sample_is_nan) {
  struct grade_metrics m;
  grade_metrics_of(NULL, 0, &m);
  cr_assert(isnan(m.mean) && isnan(m.best));
  cr_assert_eq(m.n, 0);
}

/* ---- the paired comparison ---- */

Test(grade, paired_difference_and_wins) {
  double a[] = {0.9, 0.8, 0.7, 0.9, 0.6}, b[] = {0.5, 0.8, 0.3, 0.4, 0.2};
  struct grade_paired p;
  grade_paired_diff(a, b, 5, 2000, 7, &p);
  cr_assert_float_eq(p.est, (0.4 + 0 + 0.4 + 0.5 + 0.4) / 5, 1e-12);
  cr_assert_eq(p.n, 5);
  cr_assert_eq(p.a_wins, 4);
  cr_assert_eq(p.b_wins, 0);
  cr_assert_eq(p.ties, 1);
  cr_assert(p.lo <= p.est && p.est <= p.hi);
  cr_assert(p.lo >= 0 && p.hi <= 0.5 + 1e-12); /* resampled means of the diffs */
  struct grade_paired q;
  grade_paired_diff(b, a, 5, 2000, 7, &q); /* antisymmetric */
  cr_assert_float_eq(q.est, -p.est, 1e-12);
  cr_assert_eq(q.b_wins, 4);
}

/* Pairing removes the between-example spread: a constant gain over very different
 * examples has a zero-width interval, which an unpaired comparison would not give. */
Test(grade, paired_interval_ignores_example_difficulty) {
  double a[8], b[8];
  for (int i = 0; i < 8; i++) {
    b[i] = i / 10.0;
    a[i] = b[i] + 0.1;
  }
  struct grade_paired p;
  grade_paired_diff(a, b, 8, 1000, 3, &p);
  cr_assert_float_eq(p.est, 0.1, 1e-9);
  cr_assert_float_eq(p.lo, 0.1, 1e-9);
  cr_assert_float_eq(p.hi, 0.1, 1e-9);
}

Test(grade, compare_pairs_by_id) {
  json_t *a = json_loads(
      "[{\"id\":\"x\",\"mean@2\":1.0,\"best@2\":1.0},"
      "{\"id\":\"y\",\"mean@2\":0.5,\"best@2\":1.0},"
      "{\"id\":\"only-a\",\"mean@2\":0.0,\"best@2\":0.0}]",
      0, NULL);
  json_t *b = json_loads(
      "[{\"id\":\"y\",\"mean@2\":0.25,\"best@2\":0.5},"
      "{\"id\":\"x\",\"mean@2\":0.5,\"best@2\":1.0},"
      "{\"id\":\"z\",\"mean@2\":null,\"best@2\":null}]",
      0, NULL);
  json_t *c = grade_eval_compare(a, b, 500, 1);
  cr_assert_eq(json_integer_value(json_object_get(c, "pairs")), 2);
  json_t *m = json_object_get(json_object_get(c, "metrics"), "mean@2");
  cr_assert_float_eq(json_number_value(json_object_get(m, "diff")), (0.5 + 0.25) / 2, 1e-9);
  cr_assert_float_eq(json_number_value(json_object_get(m, "a")), 0.75, 1e-9);
  cr_assert_eq(json_integer_value(json_object_get(m, "a_wins")), 2);
  json_t *bm = json_object_get(json_object_get(c, "metrics"), "best@2");
  cr_assert_eq(json_integer_value(json_object_get(bm, "ties")), 1);
  json_decref(a);
  json_decref(b);
  json_decref(c);
}

/* ---- the reward request parser ---- */

static int parse(enum grade_reward_kind k, const char *body, struct grade_reward_req *r,
                 char *err) {
  return grade_reward_parse(k, body, strlen(body), r, err, 256);
}

Test(grade, openrlhf_request_splits_query_into_prompt_and_response) {
  struct grade_reward_req r;
  char err[256];
  cr_assert_eq(
      parse(GRADE_RW_OPENRLHF,
            "{\"query\":[\"Q1 A1\",\"other A2\",\"Q3 A3\"],\"prompts\":[\"Q1 \",\"Q2\",\"\"],"
            "\"labels\":[\"\",\"ex-2\",null]}",
            &r, err),
      0, "%s", err);
  cr_assert_eq(r.n, 3);
  cr_assert_str_eq(r.items[0].response, "A1");
  cr_assert_str_eq(r.items[0].prompt, "Q1 ");
  cr_assert_null(r.items[0].id);
  cr_assert_str_eq(r.items[1].response, "other A2"); /* the prompt is not its start */
  cr_assert_str_eq(r.items[1].id, "ex-2");
  cr_assert_str_eq(r.items[2].prompt, "Q3 A3"); /* neither: the example is looked up in it */
  cr_assert_str_eq(r.items[2].response, "Q3 A3");
  grade_reward_req_release(&r);
  cr_assert_eq(parse(GRADE_RW_OPENRLHF, "{\"query\":[\"just a query\"]}", &r, err), 0, "%s", err);
  cr_assert_eq(r.n, 1);
  grade_reward_req_release(&r);
}

Test(grade, plain_request_forms) {
  struct grade_reward_req r;
  char err[256];
  cr_assert_eq(parse(GRADE_RW_PLAIN, "{\"id\":\"e1\",\"responses\":[\"a\",\"b\"]}", &r, err), 0);
  cr_assert_eq(r.n, 2);
  cr_assert_str_eq(r.items[1].response, "b");
  cr_assert_str_eq(r.items[1].id, "e1");
  grade_reward_req_release(&r);
  cr_assert_eq(parse(GRADE_RW_PLAIN, "{\"prompt\":\"P\",\"response\":\"a\"}", &r, err), 0);
  cr_assert_eq(r.n, 1);
  cr_assert_str_eq(r.items[0].prompt, "P");
  grade_reward_req_release(&r);
}

struct bad_case {
  enum grade_reward_kind kind;
  const char *body, *message;
  int rc;
};

Test(grade, bad_requests_name_the_problem) {
  static const struct bad_case cases[] = {
      {GRADE_RW_OPENRLHF, "{\"query\": [", "body is not JSON", AD_EPARSE},
      {GRADE_RW_OPENRLHF, "", "body is not JSON", AD_EPARSE},
      {GRADE_RW_OPENRLHF, "[1]", "expected a JSON object", AD_EPARSE},
      {GRADE_RW_OPENRLHF, "{\"prompts\":[]}", "missing field \"query\"", AD_EINVAL},
      {GRADE_RW_OPENRLHF, "{\"query\":\"x\"}", "\"query\": expected an array", AD_EINVAL},
      {GRADE_RW_OPENRLHF, "{\"query\":[\"a\",2]}", "\"query\"[1]: expected a string", AD_EINVAL},
      {GRADE_RW_OPENRLHF, "{\"query\":[]}", "\"query\" is empty", AD_EINVAL},
      {GRADE_RW_OPENRLHF, "{\"query\":[\"a\",\"b\"],\"prompts\":[\"a\"]}",
       "\"prompts\" has 1 items but \"query\" has 2", AD_EINVAL},
      {GRADE_RW_OPENRLHF, "{\"query\":[\"a\"],\"labels\":[\"x\",\"y\"]}", "\"labels\" has 2",
       AD_EINVAL},
      {GRADE_RW_OPENRLHF, "{\"query\":[\"a\"],\"query\":[\"b\"]}", "duplicate", AD_EPARSE},
      {GRADE_RW_PLAIN, "{\"responses\":[\"a\"]}", "give the example's \"id\"", AD_EINVAL},
      {GRADE_RW_PLAIN, "{\"id\":3,\"responses\":[\"a\"]}", "\"id\": expected a string", AD_EINVAL},
      {GRADE_RW_PLAIN, "{\"id\":\"e\"}", "missing field \"responses\"", AD_EINVAL},
      {GRADE_RW_PLAIN, "{\"id\":\"e\",\"responses\":[]}", "\"responses\" is empty", AD_EINVAL},
      {GRADE_RW_PLAIN, "{\"id\":\"e\",\"response\":1}", "\"response\": expected a string",
       AD_EINVAL},
      {GRADE_RW_PLAIN, "{\"id\":\"e\",\"response\":\"a\",\"responses\":[\"b\"]}", "not both",
       AD_EINVAL},
      {GRADE_RW_PLAIN, "{\"id\":\"e\",\"responses\":[null]}", "\"responses\"[0]", AD_EINVAL},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct grade_reward_req r;
    char err[256] = "";
    int rc = parse(cases[i].kind, cases[i].body, &r, err);
    cr_assert_eq(rc, cases[i].rc, "case %zu (%s): rc %d, %s", i, cases[i].body, rc, err);
    cr_assert(strstr(err, cases[i].message), "case %zu: '%s' lacks '%s'", i, err, cases[i].message);
    cr_assert_null(r.root);
    cr_assert_null(r.items);
  }
}

Test(grade, too_many_items_are_refused) {
  size_t n = GRADE_REWARD_MAX_ITEMS + 1;
  char *body = malloc(n * 4 + 32);
  char *p = body + sprintf(body, "{\"query\":[");
  for (size_t i = 0; i < n; i++) p += sprintf(p, "%s\"q\"", i ? "," : "");
  strcpy(p, "]}");
  struct grade_reward_req r;
  char err[256];
  cr_assert_eq(parse(GRADE_RW_OPENRLHF, body, &r, err), AD_EINVAL);
  cr_assert(strstr(err, "at most 4096"), "%s", err);
  free(body);
}
