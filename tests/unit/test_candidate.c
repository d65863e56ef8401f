/* test_candidate.c - candidate parsing, schema errors and programmatic checks. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "eval/candidate.h"
#include "util/err.h"

static const char *GOOD =
    "{\"question_type\": \"failure mode prediction\", \"context\": \"A team trains a model on "
    "synthetic data produced by a loop of language-model roles.\", \"question\": \"What happens to "
    "the weak solver score when feedback is removed?\", \"reference_answer\": \"It rises because the "
    "challenger no longer adapts the difficulty of its questions to the weak solver.\", \"rubric\": "
    "[{\"criterion\": \"States that the weak score rises\", \"weight\": 5}, {\"criterion\": \"Explains "
    "that difficulty no longer adapts\", \"weight\": 3}]}";

static int parse(const char *t, enum cand_task task, const struct cand_checks *ck, struct cand *c,
                 struct cand_issue *is) {
  return cand_parse(t, strlen(t), task, ck, NULL, c, is);
}

Test(candidate, good_rubric) {
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(GOOD, CAND_TASK_RUBRIC, NULL, &c, &is), 0, "%s: %s", is.reason, is.message);
  cr_assert_eq(is.kind, CAND_OK);
  cr_assert_str_eq(c.question_type, "failure mode prediction");
  cr_assert_eq(c.n_rubric, 2);
  cr_assert_eq(c.rubric[0].weight, 5);
  cr_assert_str_eq(c.rubric[1].criterion, "Explains that difficulty no longer adapts");
  cr_assert_eq(c.total_weight, 8);
  cr_assert_eq(c.question_hash, cand_question_hash(c.question));
  json_t *j = cand_to_json(&c);
  cr_assert_eq(json_integer_value(
                   json_object_get(json_array_get(json_object_get(j, "rubric"), 0), "weight")),
               5);
  cr_assert_str_eq(json_string_value(json_object_get(j, "reference_answer")), c.reference_answer);
  json_decref(j);
  cand_release(&c);
  cand_release(&c); /* idempotent */
}

Test(candidate, fenced_with_prose) {
  char t[4096];
  snprintf(t, sizeof t, "Here you go:\n```json\n%s\n```\nHope this helps!", GOOD);
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(t, CAND_TASK_RUBRIC, NULL, &c, &is), 0, "%s", is.message);
  cand_release(&c);
}

static void expect_issue(const char *t, enum cand_task task, const struct cand_checks *ck,
                         enum cand_issue_kind kind, const char *reason, const char *msg_part) {
  struct cand c;
  struct cand_issue is;
  int rc = parse(t, task, ck, &c, &is);
  cr_assert_neq(rc, 0, "expected %s for %s", reason, t);
  cr_assert_eq(is.kind, kind, "kind for %s: got %s (%s)", reason, is.reason, is.message);
  cr_assert_str_eq(is.reason, reason, "message: %s", is.message);
  if (msg_part) cr_assert(strstr(is.message, msg_part), "'%s' not in '%s'", msg_part, is.message);
  cr_assert_eq(rc, kind == CAND_CHECK ? AD_EINVAL : AD_EPARSE);
  cand_release(&c);
}

Test(candidate, parse_and_schema_errors) {
  expect_issue("I cannot help with that.", CAND_TASK_RUBRIC, NULL, CAND_PARSE, "parse_error",
               "expected a JSON object");
  expect_issue("{\"question\": \"Q\", \"rubric\": [", CAND_TASK_RUBRIC, NULL, CAND_PARSE,
               "parse_error", "truncated");
  expect_issue("{\"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": []}",
               CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "missing_field", "\"question\"");
  expect_issue("{\"question\": \"Q\", \"reference_answer\": \"r\", \"rubric\": []}",
               CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "missing_field", "\"context\"");
  expect_issue("{\"question\": \"Q\", \"context\": 3, \"reference_answer\": \"r\", \"rubric\": []}",
               CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "field_type", "\"context\"");
  expect_issue(
      "{\"question\": \"  \", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": []}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "empty_field", "\"question\"");
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": \"x\"}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_type", NULL);
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": [\"x\"]}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_item_type", "item 1");
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 2}, {\"criterion\": \"\", \"weight\": 2}]}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_empty_criterion", "item 2");
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": \"5\"}]}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_weight_type", "weights are integers");
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 2.5}]}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_weight_type", "fractional");
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\"}]}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_weight_type", "no weight");
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": true}]}",
      CAND_TASK_RUBRIC, NULL, CAND_SCHEMA, "rubric_weight_type", "boolean");
}

Test(candidate, not_object_from_json) {
  json_t *a = json_array();
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(cand_from_json(a, CAND_TASK_RUBRIC, NULL, NULL, &c, &is), AD_EPARSE);
  cr_assert_str_eq(is.reason, "not_object");
  cand_release(&c);
  json_decref(a);
}

Test(candidate, integral_real_weight_accepted) {
  const char *t =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 5.0}]}";
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(t, CAND_TASK_RUBRIC, NULL, &c, &is), 0, "%s", is.message);
  cr_assert_eq(c.rubric[0].weight, 5);
  cand_release(&c);
}

Test(candidate, rubric_size_check) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.rubric_min = 2;
  ck.rubric_max = 3;
  const char *one =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 1}]}";
  expect_issue(one, CAND_TASK_RUBRIC, &ck, CAND_CHECK, "check:rubric_size", "between 2 and 3");
  const char *four =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 1}, {\"criterion\": \"b\", \"weight\": 1}, "
      "{\"criterion\": \"c\", \"weight\": 1}, {\"criterion\": \"d\", \"weight\": 1}]}";
  expect_issue(four, CAND_TASK_RUBRIC, &ck, CAND_CHECK, "check:rubric_size", "has 4 criteria");
  const char *two =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 1}, {\"criterion\": \"b\", \"weight\": 7}]}";
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(two, CAND_TASK_RUBRIC, &ck, &c, &is), 0, "%s", is.message);
  cand_release(&c);
  expect_issue(
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": []}",
      CAND_TASK_RUBRIC, NULL, CAND_CHECK, "check:rubric_size", "has 0");
}

Test(candidate, rubric_weight_check) {
  const char *t8 =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 8}]}";
  expect_issue(t8, CAND_TASK_RUBRIC, NULL, CAND_CHECK, "check:rubric_weight", "from 1 to 7");
  const char *t0 =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 0}]}";
  expect_issue(t0, CAND_TASK_RUBRIC, NULL, CAND_CHECK, "check:rubric_weight", "weight 0");
  const char *tn =
      "{\"question\": \"Q\", \"context\": \"c\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": -3}]}";
  expect_issue(tn, CAND_TASK_RUBRIC, NULL, CAND_CHECK, "check:rubric_weight", NULL);
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.max_weight = 10;
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(t8, CAND_TASK_RUBRIC, &ck, &c, &is), 0, "max_weight raised: %s", is.message);
  cand_release(&c);
}

Test(candidate, context_length_check) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.max_context_chars = 10;
  ck.min_context_chars = 3;
  /* "éééééééééé" is 10 characters (20 bytes): passes max 10 */
  const char *ok =
      "{\"question\": \"Q\", \"context\": \"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\", "
      "\"reference_answer\": \"r\", \"rubric\": [{\"criterion\": \"a\", \"weight\": 1}]}";
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(ok, CAND_TASK_RUBRIC, &ck, &c, &is), 0, "%s", is.message);
  cand_release(&c);
  const char *longc =
      "{\"question\": \"Q\", \"context\": \"01234567890\", \"reference_answer\": \"r\", "
      "\"rubric\": [{\"criterion\": \"a\", \"weight\": 1}]}";
  expect_issue(longc, CAND_TASK_RUBRIC, &ck, CAND_CHECK, "check:context_length", "at most 10");
  const char *shortc =
      "{\"question\": \"Q\", \"context\": \"ab\", \"reference_answer\": \"r\", "
      "\"rubric\": [{\"criterion\": \"a\", \"weight\": 1}]}";
  expect_issue(shortc, CAND_TASK_RUBRIC, &ck, CAND_CHECK, "check:context_length", "at least 3");
  /* min applies to rubric tasks only; verifiable context is optional */
  cr_assert_eq(parse("{\"question\": \"What is F-1a2b plus 2?\", \"answer\": \"19\"}",
                     CAND_TASK_VERIFIABLE, &ck, &c, &is),
               0, "%s", is.message);
  cand_release(&c);
}

Test(candidate, ngram_overlap) {
  cr_assert_float_eq(cand_ngram_overlap("a b c d", "x a b c d y", 2), 1.0, 1e-12);
  cr_assert_float_eq(cand_ngram_overlap("a b c d", "a b x c d", 2), 2.0 / 3, 1e-12);
  /* case and punctuation are ignored */
  cr_assert_float_eq(cand_ngram_overlap("The Cat, sat!", "the cat sat", 3), 1.0, 1e-12);
  /* short reference: n shrinks to its length */
  cr_assert_float_eq(cand_ngram_overlap("cat sat", "the cat sat down", 8), 1.0, 1e-12);
  cr_assert_float_eq(cand_ngram_overlap("", "anything", 8), 0, 1e-12);
  cr_assert_float_eq(cand_ngram_overlap("cat sat", "", 8), 0, 1e-12);
}

Test(candidate, leakage_check_rubric) {
  const char *leak =
      "{\"question\": \"Why does the loop help?\", \"context\": \"Background: it rises because the "
      "challenger no longer adapts the difficulty of its questions to the weak solver, as shown.\", "
      "\"reference_answer\": \"It rises because the challenger no longer adapts the difficulty of its "
      "questions to the weak solver.\", \"rubric\": [{\"criterion\": \"a\", \"weight\": 1}]}";
  expect_issue(leak, CAND_TASK_RUBRIC, NULL, CAND_CHECK, "check:leakage",
               "the context must not contain the answer");
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.leakage_ngram = 0; /* disabled */
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(leak, CAND_TASK_RUBRIC, &ck, &c, &is), 0);
  cand_release(&c);
  cand_checks_default(&ck);
  ck.leakage_max_overlap = 1.0; /* nothing exceeds 100% */
  cr_assert_eq(parse(leak, CAND_TASK_RUBRIC, &ck, &c, &is), 0);
  cand_release(&c);
  cr_assert_eq(parse(GOOD, CAND_TASK_RUBRIC, NULL, &c, &is), 0, "no leak in GOOD");
  cand_release(&c);
}

Test(candidate, verifiable) {
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse("{\"question\": \"What is F-3a9c times 2?\", \"answer\": \"34\"}",
                     CAND_TASK_VERIFIABLE, NULL, &c, &is),
               0, "%s", is.message);
  cr_assert_str_eq(c.reference_answer, "34");
  cr_assert_str_eq(c.context, "");
  cr_assert_null(c.rubric);
  json_t *j = cand_to_json(&c);
  cr_assert_str_eq(json_string_value(json_object_get(j, "answer")), "34");
  json_decref(j);
  cand_release(&c);
  /* numeric answer kept as text */
  cr_assert_eq(parse("{\"question\": \"Q?\", \"answer\": 17}", CAND_TASK_VERIFIABLE, NULL, &c, &is),
               0);
  cr_assert_str_eq(c.reference_answer, "17");
  cand_release(&c);
  cr_assert_eq(
      parse("{\"question\": \"Q?\", \"answer\": 0.25}", CAND_TASK_VERIFIABLE, NULL, &c, &is), 0);
  cr_assert_str_eq(c.reference_answer, "0.25");
  cand_release(&c);
  expect_issue("{\"question\": \"Q?\"}", CAND_TASK_VERIFIABLE, NULL, CAND_SCHEMA, "missing_field",
               "answer");
  expect_issue("{\"question\": \"Q?\", \"answer\": \"4\", \"context\": 1}", CAND_TASK_VERIFIABLE,
               NULL, CAND_SCHEMA, "field_type", "context");
}

Test(candidate, verifiable_answer_leak) {
  expect_issue(
      "{\"context\": \"We know F-3a9c = 17.\", \"question\": \"What is F-3a9c?\", \"answer\": \"17\"}",
      CAND_TASK_VERIFIABLE, NULL, CAND_CHECK, "check:leakage", "in the context");
  expect_issue("{\"question\": \"Is the answer 17 or 18?\", \"answer\": \"17\"}",
               CAND_TASK_VERIFIABLE, NULL, CAND_CHECK, "check:leakage", "in the question");
  /* a token that merely contains the answer is not a leak */
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse("{\"question\": \"What is F-17ab plus 1?\", \"answer\": \"17\"}",
                     CAND_TASK_VERIFIABLE, NULL, &c, &is),
               0, "%s", is.message);
  cand_release(&c);
  cr_assert_eq(cand_answer_in_text("New York", "I live in new  york city"), 1);
  cr_assert_eq(cand_answer_in_text("New York", "new jersey, york"), 0);
  cr_assert_eq(cand_answer_in_text("", "x"), 0);
}

Test(candidate, duplicate_check) {
  uint64_t h[2] = {
      cand_question_hash("something else"),
      cand_question_hash("  what happens to the WEAK solver score, when feedback is removed ")};
  struct cand_seen seen = {h, 2};
  struct cand c;
  struct cand_issue is;
  int rc = cand_parse(GOOD, strlen(GOOD), CAND_TASK_RUBRIC, NULL, &seen, &c, &is);
  cr_assert_eq(rc, AD_EINVAL);
  cr_assert_str_eq(is.reason, "check:duplicate");
  cr_assert_not_null(c.json, "the candidate is kept on check failures");
  cand_release(&c);
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.dedup = 0;
  cr_assert_eq(cand_parse(GOOD, strlen(GOOD), CAND_TASK_RUBRIC, &ck, &seen, &c, &is), 0);
  cand_release(&c);
  struct cand_seen other = {h, 1};
  cr_assert_eq(cand_parse(GOOD, strlen(GOOD), CAND_TASK_RUBRIC, NULL, &other, &c, &is), 0);
  cand_release(&c);
}

Test(candidate, question_hash_normalisation) {
  cr_assert_eq(cand_question_hash("Why, exactly?"), cand_question_hash("why exactly"));
  cr_assert_eq(cand_question_hash("a\n\tb"), cand_question_hash("A B"));
  cr_assert_neq(cand_question_hash("a b"), cand_question_hash("ab"));
  cr_assert_eq(cand_question_hash(NULL), cand_question_hash(""));
}

Test(candidate, task_names) {
  enum cand_task t;
  cr_assert_eq(cand_task_parse("rubric", &t), 0);
  cr_assert_eq(t, CAND_TASK_RUBRIC);
  cr_assert_eq(cand_task_parse("verifiable", &t), 0);
  cr_assert_eq(t, CAND_TASK_VERIFIABLE);
  cr_assert_eq(cand_task_parse("other", &t), AD_EINVAL);
  cr_assert_eq(cand_task_parse(NULL, &t), AD_EINVAL);
  cr_assert_str_eq(cand_task_name(CAND_TASK_VERIFIABLE), "verifiable");
}

Test(candidate, json_schema) {
  json_t *s = cand_json_schema(CAND_TASK_RUBRIC, NULL);
  cr_assert_not_null(s);
  json_t *req = json_object_get(s, "required");
  cr_assert_eq(json_array_size(req), 5);
  json_t *w = json_object_get(
      json_object_get(
          json_object_get(json_object_get(json_object_get(s, "properties"), "rubric"), "items"),
          "properties"),
      "weight");
  cr_assert_str_eq(json_string_value(json_object_get(w, "type")), "integer");
  json_decref(s);
  json_t *rf = cand_response_format(CAND_TASK_VERIFIABLE, NULL, 0);
  cr_assert_str_eq(json_string_value(json_object_get(rf, "type")), "json_schema");
  json_t *js = json_object_get(rf, "json_schema");
  cr_assert(json_is_true(json_object_get(js, "strict")));
  cr_assert_eq(json_array_size(json_object_get(json_object_get(js, "schema"), "required")), 2);
  json_decref(rf);
}

/* The schema is as strict as the checks: an enforcing server cannot return what the
 * checks then reject (empty strings, an empty rubric, a weight of -2725767342247357). */
Test(candidate, json_schema_follows_checks) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.rubric_min = 2;
  ck.rubric_max = 9;
  ck.max_weight = 5;
  ck.min_context_chars = 10;
  ck.max_context_chars = 3000;
  json_t *s = cand_json_schema(CAND_TASK_RUBRIC, &ck);
  json_t *props = json_object_get(s, "properties");
  json_t *rub = json_object_get(props, "rubric");
  cr_assert_eq(json_integer_value(json_object_get(rub, "minItems")), 2);
  cr_assert_eq(json_integer_value(json_object_get(rub, "maxItems")), 9);
  json_t *ip = json_object_get(json_object_get(rub, "items"), "properties");
  json_t *w = json_object_get(ip, "weight");
  cr_assert_eq(json_integer_value(json_object_get(w, "minimum")), 1);
  cr_assert_eq(json_integer_value(json_object_get(w, "maximum")), 5);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(ip, "criterion"), "minLength")),
               1);
  json_t *ctx = json_object_get(props, "context");
  cr_assert_eq(json_integer_value(json_object_get(ctx, "minLength")), 10);
  cr_assert_eq(json_integer_value(json_object_get(ctx, "maxLength")), 3000);
  const char *nonempty[] = {"question", "reference_answer", NULL};
  for (int i = 0; nonempty[i]; i++)
    cr_assert_eq(
        json_integer_value(json_object_get(json_object_get(props, nonempty[i]), "minLength")), 1,
        "%s", nonempty[i]);
  json_decref(s);
  /* basic: the same shape and types, none of the length/size/range keywords */
  json_t *rf = cand_response_format(CAND_TASK_RUBRIC, &ck, 1);
  char *txt = json_dumps(rf, JSON_SORT_KEYS);
  cr_assert_null(strstr(txt, "minLength"), "%s", txt);
  cr_assert_null(strstr(txt, "maxItems"), "%s", txt);
  cr_assert_null(strstr(txt, "\"maximum\""), "%s", txt);
  cr_assert_not_null(strstr(txt, "\"integer\""), "%s", txt);
  free(txt);
  json_decref(rf);
}

Test(candidate, rubric_vars) {
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse(GOOD, CAND_TASK_RUBRIC, NULL, &c, &is), 0);
  json_t *a = cand_rubric_vars(&c);
  cr_assert_eq(json_array_size(a), 2);
  json_t *second = json_array_get(a, 1);
  cr_assert_eq(json_integer_value(json_object_get(second, "number")), 2);
  cr_assert_eq(json_integer_value(json_object_get(second, "weight")), 3);
  cr_assert_str_eq(json_string_value(json_object_get(second, "criterion")),
                   "Explains that difficulty no longer adapts");
  json_decref(a);
  cand_release(&c);
}
