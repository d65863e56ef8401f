/* test_extract.c - JSON extraction from messy model text. */
#include <criterion/criterion.h>
#include <string.h>

#include "eval/extract.h"

static json_t *ex(const char *t, const char *const *keys, char *err, size_t n) {
  return extract_json(t, strlen(t), keys, 0, err, n);
}

static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}

Test(extract, plain_object) {
  char err[256];
  json_t *v = ex("{\"a\": 1}", NULL, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_eq(json_integer_value(json_object_get(v, "a")), 1);
  json_decref(v);
}

Test(extract, code_fence_and_prose) {
  char err[256];
  const char *t =
      "Sure! Here is the question:\n\n```json\n{\"question\": \"Why?\", \"answer\": \"17\"}\n```\n\n"
      "Let me know if you need anything else.";
  json_t *v = ex(t, NULL, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_str_eq(str(v, "question"), "Why?");
  json_decref(v);
}

Test(extract, trailing_commas) {
  char err[256];
  json_t *v = ex("{\"rubric\": [{\"criterion\": \"x\", \"weight\": 5,},], \"q\": \"a, }\",}", NULL,
                 err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_eq(json_array_size(json_object_get(v, "rubric")), 1);
  cr_assert_str_eq(str(v, "q"), "a, }", "commas inside strings are kept");
  json_decref(v);
}

Test(extract, raw_newline_in_string_repaired) {
  char err[256];
  json_t *v = ex("{\"context\": \"line one\nline two\"}", NULL, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_str_eq(str(v, "context"), "line one\nline two");
  json_decref(v);
}

Test(extract, nested_braces_in_strings) {
  char err[256];
  const char *t =
      "prefix {\"code\": \"if (x) { y(); } }}} \\\" {\", \"n\": {\"m\": [1, {\"k\": 2}]}} suffix }";
  json_t *v = ex(t, NULL, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_str_eq(str(v, "code"), "if (x) { y(); } }}} \" {");
  cr_assert_eq(json_integer_value(json_object_get(
                   json_array_get(json_object_get(json_object_get(v, "n"), "m"), 1), "k")),
               2);
  json_decref(v);
}

Test(extract, multiple_objects_first_or_keyed) {
  char err[256];
  const char *t =
      "Draft: {\"note\": \"thinking\"}\nFinal: {\"question\": \"Q\", \"rubric\": []}\n{\"question\": \"Q2\", \"rubric\": []}";
  json_t *v = ex(t, NULL, err, sizeof err);
  cr_assert_not_null(v);
  cr_assert_str_eq(str(v, "note"), "thinking", "without keys: the first object");
  json_decref(v);
  const char *keys[] = {"question", "rubric", NULL};
  v = ex(t, keys, err, sizeof err);
  cr_assert_not_null(v);
  cr_assert_str_eq(str(v, "question"), "Q", "with keys: the first object that has them");
  json_decref(v);
  /* no object has the keys: fall back to the first object */
  const char *k2[] = {"missing", NULL};
  v = ex(t, k2, err, sizeof err);
  cr_assert_not_null(v);
  cr_assert_str_eq(str(v, "note"), "thinking");
  json_decref(v);
}

Test(extract, keyed_object_one_level_down) {
  char err[256];
  const char *keys[] = {"question", "answer", NULL};
  json_t *v = ex("{\"candidate\": {\"question\": \"Q\", \"answer\": \"4\"}}", keys, err,
                 sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_str_eq(str(v, "answer"), "4");
  json_decref(v);
}

Test(extract, braces_in_prose_before_json) {
  char err[256];
  json_t *v = ex("Use the set {a, b} then: {\"x\": true}", NULL, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert(json_is_true(json_object_get(v, "x")));
  json_decref(v);
}

Test(extract, think_blocks) {
  char err[256];
  json_t *v = ex("<think>The user wants {\"a\": 0}. Let me think.</think>\n{\"a\": 1}", NULL, err,
                 sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_eq(json_integer_value(json_object_get(v, "a")), 1,
               "the object in the think block is skipped");
  json_decref(v);
  /* closing tag only (template put <think> in the prompt) */
  v = ex("reasoning {\"a\": 0} ...</think>{\"a\": 2}", NULL, err, sizeof err);
  cr_assert_not_null(v);
  cr_assert_eq(json_integer_value(json_object_get(v, "a")), 2);
  json_decref(v);
  /* unterminated think block: truncated, nothing invented */
  v = ex("<think>I will answer {\"a\": 3} after", NULL, err, sizeof err);
  cr_assert_null(v);
  cr_assert(strstr(err, "<think>"), "%s", err);
}

Test(extract, skip_think_api) {
  size_t n;
  const char *t = "\xEF\xBB\xBF  <think>x</think><think>y</think> rest";
  const char *r = extract_skip_think(t, strlen(t), &n);
  cr_assert_eq(n, strlen(" rest"));
  cr_assert_eq(strncmp(r, " rest", n), 0);
  r = extract_skip_think("no tags", 7, &n);
  cr_assert_eq(n, 7);
  r = extract_skip_think("<think>open", 11, &n);
  cr_assert_eq(n, 0);
  (void)r;
}

/* A solver's final answer: what the judge grades, never the reasoning before it. */
Test(extract, final_text_after_reasoning) {
  size_t n = 99;
  const char *t = "<think>\nF-0001 is 3, maybe.\n</think>\n\nF-0001 is 4.";
  const char *r = extract_final_text(t, strlen(t), &n);
  cr_assert_not_null(r);
  cr_assert_eq(n, strlen("F-0001 is 4."));
  cr_assert_eq(strncmp(r, "F-0001 is 4.", n), 0);
  t = "template-opened reasoning</think>  answer"; /* Qwen3: "<think>" was in the prompt */
  r = extract_final_text(t, strlen(t), &n);
  cr_assert(r && n == 6 && !strncmp(r, "answer", 6));
  t = "  plain answer, kept as it is ";
  r = extract_final_text(t, strlen(t), &n);
  cr_assert(r == t && n == strlen(t));
  r = extract_final_text("", 0, &n);
  cr_assert(r && n == 0, "an empty reply is an (empty) answer");
  t = "<think>all reasoning</think>\n";
  r = extract_final_text(t, strlen(t), &n);
  cr_assert(r && n == 0, "a closed block and nothing after: an empty answer");
  t = "<think>still reasoning when the reply end";
  cr_assert_null(extract_final_text(t, strlen(t), &n), "an unclosed <think>: no answer");
  cr_assert_eq(n, 0);
  t = "<think>a</think><think>b</think>B";
  r = extract_final_text(t, strlen(t), &n);
  cr_assert(r && n == 1 && *r == 'B');
}

Test(extract, bom) {
  char err[256];
  json_t *v = ex("\xEF\xBB\xBF{\"a\": \"b\"}", NULL, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  json_decref(v);
}

Test(extract, truncation_reported_not_repaired) {
  char err[256];
  const char *t =
      "Here: {\"question\": \"Q\", \"rubric\": [{\"criterion\": \"a\", \"weight\": 5}, {\"criterion\": \"b";
  const char *keys[] = {"question", "rubric", NULL};
  json_t *v = ex(t, keys, err, sizeof err);
  cr_assert_null(v, "a complete rubric item inside the cut object must not be returned");
  cr_assert(strstr(err, "reply truncated: unbalanced braces at byte 6"), "%s", err);
  v = ex(t, NULL, err, sizeof err);
  cr_assert_null(v);
  cr_assert(strstr(err, "reply truncated"), "%s", err);
}

Test(extract, prose_only) {
  char err[256];
  json_t *v = ex("Sure, here is a great question about the paper.", NULL, err, sizeof err);
  cr_assert_null(v);
  cr_assert_str_eq(
      err,
      "expected a JSON object; found prose starting 'Sure, here is a great question about the…'");
  v = ex("   \n ", NULL, err, sizeof err);
  cr_assert_null(v);
  cr_assert_str_eq(err, "empty reply");
  v = extract_json(NULL, 0, NULL, 0, err, sizeof err);
  cr_assert_null(v);
}

Test(extract, invalid_json_message) {
  char err[256];
  json_t *v = ex("{\"a\": 1 \"b\": 2}", NULL, err, sizeof err);
  cr_assert_null(v);
  cr_assert(strncmp(err, "invalid JSON at byte", 20) == 0, "%s", err);
  /* single quotes are not repaired */
  v = ex("{'a': 1}", NULL, err, sizeof err);
  cr_assert_null(v);
}

Test(extract, arrays_only_when_allowed) {
  char err[256];
  const char *t = "[{\"criterion\": 1, \"met\": true}]";
  json_t *v = extract_json(t, strlen(t), NULL, 0, err, sizeof err);
  cr_assert_not_null(v, "object mode finds the object inside");
  cr_assert(json_is_object(v));
  json_decref(v);
  v = extract_json(t, strlen(t), NULL, EXTRACT_ALLOW_ARRAY, err, sizeof err);
  cr_assert(json_is_array(v));
  json_decref(v);
}

Test(extract, embedded_nul_and_bad_utf8_do_not_crash) {
  char err[256];
  const char t[] = "x\0{\"a\": \"\xff\"} {\"b\": 1}";
  json_t *v = extract_json(t, sizeof t - 1, NULL, 0, err, sizeof err);
  cr_assert_not_null(v, "%s", err);
  cr_assert_eq(json_integer_value(json_object_get(v, "b")), 1);
  json_decref(v);
}

Test(extract, many_open_braces_bounded) {
  static char t[200001];
  memset(t, '{', sizeof t - 1);
  t[sizeof t - 1] = 0;
  char err[256];
  json_t *v = ex(t, NULL, err, sizeof err);
  cr_assert_null(v);
  cr_assert(strstr(err, "truncated"), "%s", err);
}
