/* test_batch.c - batched judging replies (eval/batch.h): strict coverage of answers and, per
 * answer, of criteria; the schemas. */
#include <criterion/criterion.h>
#include <string.h>

#include "eval/batch.h"
#include "util/err.h"

#define V2(a, m1, m2)                                                    \
  "{\"answer\": " #a ", \"verdicts\": [{\"criterion\": 1, \"met\": " #m1 \
  ", \"reason\": \"x\"},"                                                \
  " {\"criterion\": 2, \"met\": " #m2 ", \"reason\": \"y\"}]}"

Test(batch, rubric_verdicts_per_answer) {
  const char *r = "{\"answers\": [" V2(2, false, true) ", " V2(1, true, true) "]}";
  int met[4];
  char err[512];
  cr_assert_eq(batch_parse_verdicts(r, strlen(r), 2, 2, met, err, sizeof err), 0, "%s", err);
  cr_assert(met[0] == 1 && met[1] == 1 && met[2] == 0 && met[3] == 1);
  /* prose and a code fence around it are tolerated, as for the single judge */
  char fenced[1024];
  snprintf(fenced, sizeof fenced, "Here you go:\n```json\n%s\n```", r);
  cr_assert_eq(batch_parse_verdicts(fenced, strlen(fenced), 2, 2, met, err, sizeof err), 0);
}

static void refused(const char *reply, int n, const char *want) {
  int met[8] = {1, 1, 1, 1, 1, 1, 1, 1};
  char err[512];
  cr_assert_eq(batch_parse_verdicts(reply, strlen(reply), n, 2, met, err, sizeof err), AD_EPARSE,
               "accepted: %s", reply);
  cr_assert(strstr(err, want), "error '%s' lacks '%s'", err, want);
  for (int i = 0; i < n * 2; i++) cr_assert_eq(met[i], 0, "met is cleared on an error");
}

Test(batch, rubric_coverage_is_strict) {
  refused("{\"answers\": [" V2(1, true, true) "]}", 2, "answer 2 is not graded");
  refused("{\"answers\": [" V2(1, true, true) ", " V2(1, true, false) "]}", 2,
          "answer 1 is graded twice");
  refused("{\"answers\": [" V2(1, true, true) ", " V2(3, true, false) "]}", 2,
          "answer 3 does not exist");
  refused("{\"answers\": [{\"answer\": 1, \"verdicts\": [{\"criterion\": 1, \"met\": true}]}]}", 1,
          "answer 1");
  refused("{\"answers\": [{\"verdicts\": []}]}", 1, "no integer \"answer\"");
  refused("{\"verdicts\": []}", 1, "expected {\"answers\"");
  refused("no JSON at all", 1, "batched judge reply");
}

Test(batch, verifier_verdicts) {
  const char *r =
      "{\"answers\": [{\"answer\": 1, \"correct\": false, \"reason\": \"a\"}, "
      "{\"answer\": 2, \"correct\": true, \"reason\": \"b\"}]}";
  int c[2] = {7, 7};
  char err[512];
  cr_assert_eq(batch_parse_correct(r, strlen(r), 2, c, err, sizeof err), 0, "%s", err);
  cr_assert(c[0] == 0 && c[1] == 1);
  const char *miss = "{\"answers\": [{\"answer\": 2, \"correct\": true, \"reason\": \"b\"}]}";
  cr_assert_eq(batch_parse_correct(miss, strlen(miss), 2, c, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "answer 1 is not graded"));
}

Test(batch, schemas) {
  json_t *s = batch_judge_schema(3, 4);
  const json_t *answers = json_object_get(json_object_get(s, "properties"), "answers");
  cr_assert_eq(json_integer_value(json_object_get(answers, "minItems")), 3);
  cr_assert_eq(json_integer_value(json_object_get(answers, "maxItems")), 3);
  const json_t *item = json_object_get(answers, "items");
  const json_t *num = json_object_get(json_object_get(item, "properties"), "answer");
  cr_assert_eq(json_integer_value(json_object_get(num, "maximum")), 3);
  cr_assert_not_null(json_object_get(json_object_get(item, "properties"), "verdicts"));
  cr_assert_str_eq(json_string_value(json_array_get(json_object_get(item, "required"), 0)),
                   "answer");
  json_decref(s);
  s = batch_correct_schema(2);
  item = json_object_get(json_object_get(json_object_get(s, "properties"), "answers"), "items");
  cr_assert_not_null(json_object_get(json_object_get(item, "properties"), "correct"));
  json_decref(s);
}
