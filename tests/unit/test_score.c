/* test_score.c - judge verdict parsing, rubric maths, answer extraction, matchers, QV parsing. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "eval/score.h"
#include "util/err.h"

static int verdicts(const char *t, int n, int *met) {
  char err[256];
  return score_parse_verdicts(t, strlen(t), n, met, err, sizeof err);
}

Test(score, verdicts_canonical) {
  int met[3];
  const char *t =
      "{\"verdicts\": [{\"criterion\": 1, \"met\": true, \"reason\": \"ok\"}, "
      "{\"criterion\": 2, \"met\": false}, {\"criterion\": 3, \"met\": true}]}";
  cr_assert_eq(verdicts(t, 3, met), 0);
  cr_assert_eq(met[0], 1);
  cr_assert_eq(met[1], 0);
  cr_assert_eq(met[2], 1);
}

Test(score, verdicts_tolerant_forms) {
  int met[4];
  /* yes/no strings, 1/0, out of order, a bare array in a fence */
  const char *t =
      "```json\n[{\"criterion\": 3, \"met\": \"yes\"}, {\"criterion\": 1, \"met\": 1}, "
      "{\"criterion\": 2, \"met\": \"no\"}, {\"criterion\": 4, \"met\": 0}]\n```";
  cr_assert_eq(verdicts(t, 4, met), 0);
  cr_assert_eq(met[0], 1);
  cr_assert_eq(met[1], 0);
  cr_assert_eq(met[2], 1);
  cr_assert_eq(met[3], 0);
}

/* A judgement that does not cover every criterion exactly once is invalid, never a
 * silent "unmet" (which would make answers look weaker than the judge found them). */
Test(score, verdicts_must_cover_each_criterion_once) {
  int met[3] = {1, 1, 1};
  char err[400];
  const char *missing =
      "{\"verdicts\": [{\"criterion\": 1, \"met\": true}, "
      "{\"criterion\": 3, \"met\": true}]}";
  cr_assert_eq(score_parse_verdicts(missing, strlen(missing), 3, met, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "missing: 2"), "%s", err);
  cr_assert_eq(met[0] + met[1] + met[2], 0, "met is cleared on an invalid judgement");
  const char *dup =
      "{\"verdicts\": [{\"criterion\": 1, \"met\": true}, {\"criterion\": 2, "
      "\"met\": true}, {\"criterion\": 2, \"met\": false}, {\"criterion\": 3, "
      "\"met\": true}]}";
  cr_assert_eq(score_parse_verdicts(dup, strlen(dup), 3, met, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "more than once: 2"), "%s", err);
  const char *range =
      "{\"verdicts\": [{\"criterion\": 1, \"met\": true}, {\"criterion\": 2, "
      "\"met\": true}, {\"criterion\": 3, \"met\": true}, {\"criterion\": 7, "
      "\"met\": true}]}";
  cr_assert_eq(score_parse_verdicts(range, strlen(range), 3, met, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "not in the rubric: 7"), "%s", err);
  const char *empty = "{\"verdicts\": []}";
  cr_assert_eq(score_parse_verdicts(empty, strlen(empty), 3, met, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "empty"), "%s", err);
}

Test(score, verdicts_positional_without_numbers) {
  int met[2];
  cr_assert_eq(verdicts("{\"verdicts\": [{\"met\": false}, {\"met\": true}]}", 2, met), 0);
  cr_assert_eq(met[0], 0);
  cr_assert_eq(met[1], 1);
  cr_assert_eq(verdicts("{\"verdicts\": [{\"met\": false}]}", 2, met), AD_EPARSE,
               "too few positional verdicts");
}

Test(score, verdicts_errors) {
  int met[2];
  char err[256];
  cr_assert_eq(score_parse_verdicts("I think they are all met.", 25, 2, met, err, sizeof err),
               AD_EPARSE);
  cr_assert(strstr(err, "judge reply"), "%s", err);
  const char *t = "{\"result\": \"fine\"}";
  cr_assert_eq(score_parse_verdicts(t, strlen(t), 2, met, err, sizeof err), AD_EPARSE);
  const char *t2 = "{\"verdicts\": [{\"criterion\": 1, \"met\": \"maybe\"}]}";
  cr_assert_eq(score_parse_verdicts(t2, strlen(t2), 2, met, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "met"), "%s", err);
}

Test(score, judge_schema_bounds) {
  json_t *s = score_judge_schema(4);
  json_t *v = json_object_get(json_object_get(s, "properties"), "verdicts");
  cr_assert_eq(json_integer_value(json_object_get(v, "minItems")), 4);
  cr_assert_eq(json_integer_value(json_object_get(v, "maxItems")), 4);
  json_t *c = json_object_get(json_object_get(json_object_get(v, "items"), "properties"),
                              "criterion");
  cr_assert_eq(json_integer_value(json_object_get(c, "minimum")), 1);
  cr_assert_eq(json_integer_value(json_object_get(c, "maximum")), 4);
  json_decref(s);
  s = score_qv_schema();
  cr_assert_eq(json_array_size(json_object_get(s, "required")), 3);
  json_decref(s);
  s = score_correct_schema();
  cr_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(json_object_get(s, "properties"), "correct"), "type")),
                   "boolean");
  json_decref(s);
}

Test(score, rubric_maths) {
  int w[] = {5, 3, 2}, m1[] = {1, 0, 1}, m0[] = {0, 0, 0}, mall[] = {1, 1, 1};
  cr_assert_float_eq(score_rubric(w, m1, 3), 0.7, 1e-12);
  cr_assert_float_eq(score_rubric(w, m0, 3), 0.0, 1e-12);
  cr_assert_float_eq(score_rubric(w, mall, 3), 1.0, 1e-12);
  cr_assert_float_eq(score_rubric(w, m1, 0), 0.0, 1e-12);
  /* negative (penalty) criteria: met means the bad behaviour; clipped at 0 */
  int wn[] = {4, -6}, mn[] = {1, 1}, mn2[] = {0, 1};
  cr_assert_float_eq(score_rubric(wn, mn, 2), 0.0, 1e-12);
  cr_assert_float_eq(score_rubric(wn, mn2, 2), 0.0, 1e-12);
  int wn3[] = {4, 4, -2}, mn3[] = {1, 1, 1};
  cr_assert_float_eq(score_rubric(wn3, mn3, 3), 0.75, 1e-12);
}

static void fa(const char *text, const char *want) {
  char *a = score_final_answer(text, strlen(text));
  cr_assert_not_null(a);
  cr_assert_str_eq(a, want, "from: %s", text);
  free(a);
}

Test(score, final_answer_extraction) {
  fa("F-3a9c is 17.\nANSWER: 17", "17");
  fa("First guess ANSWER: 3\nThen I reconsidered.\nAnswer: 5.", "5");
  fa("**ANSWER:** 42", "42");
  fa("**Answer**: 12", "12");
  fa("ANSWER:\n  9\n", "9");
  fa("The value is \\boxed{\\frac{3}{4}} so done", "\\frac{3}{4}");
  fa("ANSWER: $\\boxed{12}$", "12");
  fa("We get 12 then 15 and finally 1,234.5 units", "1,234.5");
  fa("Temperature of -40 degrees", "-40");
  fa("Mass is 6.02e23 grams", "6.02e23");
  fa("no numbers here\nParis\n\n", "Paris");
  fa("<think>ANSWER: 1</think>The answer is ANSWER: 2", "2");
  fa("", "");
}

Test(score, match_exact) {
  cr_assert_eq(score_match(SCORE_EXACT, " 17 ", "17"), 1);
  cr_assert_eq(score_match(SCORE_EXACT, "Paris", "paris"), 0);
  cr_assert_eq(score_match(SCORE_EXACT, NULL, "x"), 0);
}

Test(score, match_normalised) {
  cr_assert_eq(score_match(SCORE_NORMALISED, "The Eiffel Tower.", "eiffel tower"), 1);
  cr_assert_eq(score_match(SCORE_NORMALISED, "$\\boxed{x^2}$", "x^2"), 1);
  cr_assert_eq(score_match(SCORE_NORMALISED, "\\text{an apple}", "Apple"), 1);
  cr_assert_eq(score_match(SCORE_NORMALISED, "New-York", "new york"), 1);
  cr_assert_eq(score_match(SCORE_NORMALISED, "theory", "ory"), 0,
               "'the' inside a word is not an article");
  cr_assert_eq(score_match(SCORE_NORMALISED, "cat", "dog"), 0);
}

Test(score, match_numeric) {
  cr_assert_eq(score_match(SCORE_NUMERIC, "0.75", "3/4"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "\\frac{3}{4}", "0.75"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "-\\frac{1}{2}", "-0.5"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "1,234,567", "1234567"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "1.5e3", "1500"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "$\\boxed{42}$", "42"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "The total is 42 apples", "42"), 1,
               "last number in prose");
  cr_assert_eq(score_match(SCORE_NUMERIC, "1000000.5", "1000000"), 1,
               "relative difference 5e-7 is within 1e-6");
  cr_assert_eq(score_match(SCORE_NUMERIC, "1000002", "1000000"), 0, "relative difference 2e-6");
}

Test(score, match_numeric_tolerance) {
  cr_assert_eq(score_match(SCORE_NUMERIC, "1.0000005", "1"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "1.00001", "1"), 0);
  cr_assert_eq(score_match(SCORE_NUMERIC, "0", "0.0"), 1);
  cr_assert_eq(score_match(SCORE_NUMERIC, "0.000001", "0"), 0);
  cr_assert_eq(score_match(SCORE_NUMERIC, "abc", "1"), 0);
  cr_assert_eq(score_match(SCORE_NUMERIC, "1", "abc"), 0);
  cr_assert_eq(score_match(SCORE_NUMERIC, "1/0", "1"), 0);
  cr_assert_eq(score_match(SCORE_LLM, "1", "1"), 0);
  double v;
  cr_assert_eq(score_parse_number("12,34", &v), AD_EPARSE, "not a thousands separator");
  cr_assert_eq(score_parse_number("inf", &v), AD_EPARSE);
  cr_assert_eq(score_parse_number("0x10", &v), AD_EPARSE);
  cr_assert_eq(score_parse_number(NULL, &v), AD_EINVAL);
  cr_assert_eq(score_parse_number(" +7. ", &v), 0);
  cr_assert_float_eq(v, 7, 1e-12);
}

Test(score, matcher_names) {
  enum score_matcher m;
  cr_assert_eq(score_matcher_parse("normalized", &m), 0);
  cr_assert_eq(m, SCORE_NORMALISED);
  cr_assert_eq(score_matcher_parse("numeric", &m), 0);
  cr_assert_str_eq(score_matcher_name(m), "numeric");
  cr_assert_eq(score_matcher_parse("fuzzy", &m), AD_EINVAL);
}

Test(score, llm_correct) {
  int c = -1;
  char err[256];
  const char *t = "{\"correct\": true, \"reason\": \"matches\"}";
  cr_assert_eq(score_parse_correct(t, strlen(t), &c, err, sizeof err), 0);
  cr_assert_eq(c, 1);
  t = "Verdict:\n```json\n{\"correct\": \"no\"}\n```";
  cr_assert_eq(score_parse_correct(t, strlen(t), &c, err, sizeof err), 0);
  cr_assert_eq(c, 0);
  t = "The response is right.\nCORRECT: yes";
  cr_assert_eq(score_parse_correct(t, strlen(t), &c, err, sizeof err), 0);
  cr_assert_eq(c, 1);
  t = "Hard to say.";
  cr_assert_eq(score_parse_correct(t, strlen(t), &c, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "correct"), "%s", err);
  t = "{\"correct\": \"perhaps\"}";
  cr_assert_eq(score_parse_correct(t, strlen(t), &c, err, sizeof err), AD_EPARSE);
}

Test(score, qv_json) {
  struct score_qv q;
  char err[256], reason[64];
  const char *t =
      "{\"pass\": false, \"issues\": [\"leakage\", \"Rubric Malformed\"], \"feedback\": \"The context gives F-3a9c.\"}";
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, err, sizeof err), 0);
  cr_assert_eq(q.pass, 0);
  cr_assert_eq(q.n_issues, 2);
  cr_assert_str_eq(q.issues[0], "leakage");
  cr_assert_str_eq(q.issues[1], "rubric_malformed");
  cr_assert_str_eq(q.feedback, "The context gives F-3a9c.");
  score_qv_reason(&q, reason, sizeof reason);
  cr_assert_str_eq(reason, "quality:leakage");
  t = "{\"pass\": \"PASS\", \"issues\": []}";
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, err, sizeof err), 0);
  cr_assert_eq(q.pass, 1);
  cr_assert_eq(q.n_issues, 0);
  score_qv_reason(&q, reason, sizeof reason);
  cr_assert_str_eq(reason, "quality:rejected");
}

Test(score, qv_line_format) {
  struct score_qv q;
  char err[256];
  const char *t =
      "CHECK_1_VERDICT: LEAKS_ANSWER\nCHECK_2_VERDICT: RECALL\nCHECK_3_VERDICT: PASS\n"
      "Positive: 7, Negative: 3, Total: 10\nCHECK_4_VERDICT: CONSISTENT\n**OVERALL:** FAIL\n"
      "FEEDBACK: The context states the result.\nAlso the question is recall.\n";
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, err, sizeof err), 0, "%s", err);
  cr_assert_eq(q.pass, 0);
  cr_assert_eq(q.n_issues, 2);
  cr_assert_str_eq(q.issues[0], "leakage");
  cr_assert_str_eq(q.issues[1], "question_quality");
  cr_assert_str_eq(q.feedback, "The context states the result.\nAlso the question is recall.");
  t = "OVERALL: PASS\nFEEDBACK: none";
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, err, sizeof err), 0);
  cr_assert_eq(q.pass, 1);
  t = "Looks good to me!";
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "\"pass\""), "%s", err);
  t = "OVERALL: MAYBE";
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, err, sizeof err), AD_EPARSE);
}

Test(score, qv_feedback_truncated_on_utf8_boundary) {
  static char t[6000];
  strcpy(t, "{\"pass\": false, \"feedback\": \"");
  for (int i = 0; i < 1500; i++) strcat(t, "\xc3\xa9");
  strcat(t, "\"}");
  struct score_qv q;
  cr_assert_eq(score_parse_qv(t, strlen(t), &q, NULL, 0), 0);
  size_t n = strlen(q.feedback);
  cr_assert_lt(n, sizeof q.feedback);
  cr_assert_eq(n % 2, 0, "no half character at the cut");
}
