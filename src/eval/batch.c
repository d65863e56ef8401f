/* batch.c - batched judging replies (see batch.h). */
#include "eval/batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/extract.h"
#include "eval/score.h"
#include "util/err.h"
#include "util/mem.h"

/* The answers array of a batched reply (root owned by the caller through *root), or NULL
 * with err set. */
static json_t *answers_of(const char *text, size_t len, json_t **root, char *err, size_t errlen) {
  static const char *const keys[] = {"answers", NULL};
  char e1[300] = "";
  *root = extract_json(text, len, keys, 0, e1, sizeof e1);
  if (!*root) {
    ad_set_err(err, errlen, "batched judge reply: %s", e1);
    return NULL;
  }
  json_t *arr = json_object_get(*root, "answers");
  if (!json_is_array(arr)) {
    ad_set_err(err, errlen,
               "batched judge reply: expected {\"answers\": [{\"answer\": 1, ...}, ...]}");
    return NULL;
  }
  return arr;
}

/* Run each item of a batched reply through one (the single judge's parser of the item's
 * text), checking that every answer 1..n appears exactly once. */
typedef int (*item_fn)(const char *text, size_t len, int a, void *ud, char *err, size_t errlen);

static int each_answer(const char *text, size_t len, int n, item_fn one, void *ud, char *err,
                       size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (n < 1 || n > BATCH_MAX_ANSWERS) {
    ad_set_err(err, errlen, "batched judge: %d answers (1..%d)", n, BATCH_MAX_ANSWERS);
    return AD_EINVAL;
  }
  json_t *root = NULL;
  json_t *arr = answers_of(text, len, &root, err, errlen);
  int rc = 0;
  int seen[BATCH_MAX_ANSWERS] = {0};
  if (!arr) {
    rc = AD_EPARSE;
    goto out;
  }
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    json_t *num = json_object_get(v, "answer");
    if (!json_is_object(v) || !json_is_integer(num)) {
      ad_set_err(err, errlen, "batched judge reply: item %zu has no integer \"answer\" number",
                 i + 1);
      rc = AD_EPARSE;
      goto out;
    }
    json_int_t a = json_integer_value(num);
    if (a < 1 || a > n) {
      ad_set_err(err, errlen,
                 "batched judge reply: answer %lld does not exist (there are %d answers)",
                 (long long)a, n);
      rc = AD_EPARSE;
      goto out;
    }
    if (seen[a - 1]++) {
      ad_set_err(err, errlen, "batched judge reply: answer %lld is graded twice", (long long)a);
      rc = AD_EPARSE;
      goto out;
    }
    char *s = json_dumps(v, JSON_COMPACT);
    char e1[400] = "";
    int r = s ? one(s, strlen(s), (int)a - 1, ud, e1, sizeof e1) : AD_EPARSE;
    free(s);
    if (r) {
      ad_set_err(err, errlen, "batched judge reply, answer %lld: %s", (long long)a, e1);
      rc = AD_EPARSE;
      goto out;
    }
  }
  for (int a = 0; a < n; a++)
    if (!seen[a]) {
      ad_set_err(err, errlen, "batched judge reply: answer %d is not graded (grade each of the %d)",
                 a + 1, n);
      rc = AD_EPARSE;
      goto out;
    }
out:
  json_decref(root);
  return rc;
}

struct verdicts_ud {
  int n_criteria;
  int *met;
};

static int one_verdicts(const char *text, size_t len, int a, void *ud, char *err, size_t errlen) {
  struct verdicts_ud *u = ud;
  return score_parse_verdicts(text, len, u->n_criteria, u->met + (size_t)a * u->n_criteria, err,
                              errlen);
}

int batch_parse_verdicts(const char *text, size_t len, int n_answers, int n_criteria, int *met,
                         char *err, size_t errlen) {
  struct verdicts_ud u = {n_criteria, met};
  int rc = each_answer(text, len, n_answers, one_verdicts, &u, err, errlen);
  if (rc && n_answers > 0 && n_criteria > 0)
    memset(met, 0, (size_t)n_answers * (size_t)n_criteria * sizeof *met);
  return rc == AD_EINVAL ? AD_EPARSE : rc;
}

static int one_correct(const char *text, size_t len, int a, void *ud, char *err, size_t errlen) {
  int *correct = ud;
  return score_parse_correct(text, len, &correct[a], err, errlen);
}

int batch_parse_correct(const char *text, size_t len, int n_answers, int *correct, char *err,
                        size_t errlen) {
  int rc = each_answer(text, len, n_answers, one_correct, correct, err, errlen);
  if (rc && n_answers > 0) memset(correct, 0, (size_t)n_answers * sizeof *correct);
  return rc == AD_EINVAL ? AD_EPARSE : rc;
}

/* {"answers": [item x n]} with item = {"answer": 1..n} + the single judge's shape. */
static json_t *wrap(json_t *single, int n) {
  if (n < 1) n = 1;
  json_t *props = json_object_get(single, "properties");
  json_object_set_new(props, "answer",
                      json_pack("{s:s,s:i,s:i}", "type", "integer", "minimum", 1, "maximum", n));
  json_array_insert_new(json_object_get(single, "required"), 0, json_string("answer"));
  return json_pack("{s:s,s:b,s:[s],s:{s:{s:s,s:o,s:i,s:i}}}", "type", "object",
                   "additionalProperties", 0, "required", "answers", "properties", "answers",
                   "type", "array", "items", single, "minItems", n, "maxItems", n);
}

json_t *batch_judge_schema(int n_answers, int n_criteria) {
  return wrap(score_judge_schema(n_criteria), n_answers);
}

json_t *batch_correct_schema(int n_answers) { return wrap(score_correct_schema(), n_answers); }
