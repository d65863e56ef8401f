/* test_paper.c - the paper's setups: signed rubrics (scoring, parsing, checks, schema,
 * the sim world's negative criteria). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/candidate.h"
#include "eval/score.h"
#include "sim/sources.h"
#include "sim/world.h"
#include "util/err.h"

/* ---- signed scoring: clip(sum w*s / sum_{w>0} w, 0, 1) ---- */

Test(signed_score, clipping) {
  /* positives 6 + 4 = 10; a met negative subtracts its weight; the sum is clipped to [0, 1] */
  int w[] = {6, 4, -3, -8};
  int m_all_pos[] = {1, 1, 0, 0}, m_one_err[] = {1, 1, 1, 0}, m_worse[] = {1, 0, 0, 1};
  cr_assert_float_eq(score_rubric(w, m_all_pos, 4), 1.0, 1e-12);
  cr_assert_float_eq(score_rubric(w, m_one_err, 4), 0.7, 1e-12);
  cr_assert_float_eq(score_rubric(w, m_worse, 4), 0.0, 1e-12); /* 6 - 8 < 0: clipped */
  int m_pos_only[] = {0, 1, 0, 0};
  cr_assert_float_eq(score_rubric(w, m_pos_only, 4), 0.4, 1e-12);
  /* never above 1, whatever the verdicts */
  int m_every[] = {1, 1, 1, 1};
  cr_assert(score_rubric(w, m_every, 4) >= 0 && score_rubric(w, m_every, 4) <= 1);
}

Test(signed_score, all_negative) {
  int w[] = {-2, -5};
  int none[] = {0, 0}, both[] = {1, 1};
  /* no positive weight: nothing to normalise by; the score is 0, never a division by 0 */
  cr_assert_float_eq(score_rubric(w, none, 2), 0.0, 1e-12);
  cr_assert_float_eq(score_rubric(w, both, 2), 0.0, 1e-12);
}

Test(signed_score, zero_weight_sums) {
  int w0[] = {0, 0}, m[] = {1, 1};
  cr_assert_float_eq(score_rubric(w0, m, 2), 0.0, 1e-12);
  /* a zero weight counts for nothing on either side */
  int w[] = {5, 0, -0}, m2[] = {1, 1, 1};
  cr_assert_float_eq(score_rubric(w, m2, 3), 1.0, 1e-12);
  /* positives and negatives that cancel: 0, not negative */
  int wc[] = {3, -3}, mc[] = {1, 1};
  cr_assert_float_eq(score_rubric(wc, mc, 2), 0.0, 1e-12);
}

/* ---- signed rubrics in candidates ---- */

static char *signed_cand(int npos, int nneg, const char *extra) {
  char rub[4096] = "";
  size_t k = 0;
  for (int i = 0; i < npos; i++)
    k += (size_t)snprintf(rub + k, sizeof rub - k,
                          "%s{\"criterion\": \"States point %d\", \"weight\": %d, \"category\": "
                          "\"positive\"}",
                          k ? ", " : "", i, 1 + i % 10);
  for (int i = 0; i < nneg; i++)
    k += (size_t)snprintf(rub + k, sizeof rub - k,
                          "%s{\"criterion\": \"States error %d\", \"weight\": %d, \"category\": "
                          "\"negative\"}",
                          k ? ", " : "", i, -1 - i);
  char *s = NULL;
  cr_assert(asprintf(&s,
                     "{\"question_type\": \"design tradeoff\", %s\"context\": \"A setting.\", "
                     "\"question\": \"What follows?\", \"reference_answer\": \"This follows "
                     "because of that.\", \"rubric\": [%s]}",
                     extra ? extra : "", rub) > 0);
  return s;
}

static int parse_with(const char *t, const struct cand_checks *ck, struct cand *c,
                      struct cand_issue *is) {
  return cand_parse(t, strlen(t), CAND_TASK_RUBRIC, ck, NULL, c, is);
}

Test(signed_rubric, preset_accepts_the_papers_shape) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  cr_assert_eq(cand_rubric_preset("signed", &ck), 0);
  cr_assert_eq(cand_rubric_preset("nope", &ck), AD_EINVAL);
  cr_assert(ck.signed_rubric && ck.rubric_min == 10 && ck.rubric_max == 15 && ck.max_weight == 10);
  char *t = signed_cand(8, 4, "\"reasoning_skills\": [\"causal_reasoning\", \"counterfactual\"], ");
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse_with(t, &ck, &c, &is), 0, "%s: %s", is.reason, is.message);
  cr_assert_eq(c.n_rubric, 12);
  cr_assert_eq(c.n_negative, 4);
  cr_assert(c.rubric[8].negative && c.rubric[8].weight == -1);
  int pos = 0;
  for (int i = 0; i < 8; i++) pos += 1 + i % 10;
  cr_assert_eq(c.total_weight, pos, "the normaliser is the positive weights only");
  /* records keep the category and the skills */
  json_t *j = cand_to_json(&c);
  json_t *r8 = json_array_get(json_object_get(j, "rubric"), 8);
  cr_assert_str_eq(json_string_value(json_object_get(r8, "category")), "negative");
  cr_assert_eq(json_integer_value(json_object_get(r8, "weight")), -1);
  cr_assert_eq(json_array_size(json_object_get(j, "reasoning_skills")), 2);
  json_decref(j);
  json_t *v = cand_rubric_vars(&c);
  cr_assert(json_is_true(json_object_get(json_array_get(v, 8), "negative")));
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(v, 0), "category")),
                   "positive");
  json_decref(v);
  cand_release(&c);
  free(t);
}

static void expect(const char *t, const struct cand_checks *ck, const char *reason,
                   const char *part) {
  struct cand c;
  struct cand_issue is;
  cr_assert_neq(parse_with(t, ck, &c, &is), 0, "expected %s", reason);
  cr_assert_str_eq(is.reason, reason, "%s", is.message);
  if (part) cr_assert(strstr(is.message, part), "'%s' not in '%s'", part, is.message);
  cand_release(&c);
}

Test(signed_rubric, counts_weights_and_categories) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  cand_rubric_preset("signed", &ck);
  char *t = signed_cand(9, 2, NULL); /* too few negative criteria */
  expect(t, &ck, "check:rubric_kinds", "2 negative criteria; it must have between 3 and 5");
  free(t);
  t = signed_cand(6, 5, NULL); /* too few positive */
  expect(t, &ck, "check:rubric_kinds", "6 positive criteria");
  free(t);
  /* a negative criterion with a positive weight */
  t = strdup(
      "{\"context\": \"c\", \"question\": \"q\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 3, \"category\": \"negative\"}]}");
  ck.rubric_min = 1;
  expect(t, &ck, "check:rubric_weight", "negative criteria have integer weights from -10 to -1");
  free(t);
  /* a signed rubric needs every category */
  t = strdup(
      "{\"context\": \"c\", \"question\": \"q\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 3}]}");
  expect(t, &ck, "rubric_category", "no \"category\"");
  free(t);
  /* the default (positive-only) rule refuses negative criteria, and a bad category */
  struct cand_checks dflt;
  cand_checks_default(&dflt);
  t = signed_cand(2, 1, NULL);
  expect(t, &dflt, "check:rubric_weight", "weights are integers from 1 to 7");
  free(t);
  t = strdup(
      "{\"context\": \"c\", \"question\": \"q\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 3, \"category\": \"negative\"}]}");
  expect(t, &dflt, "check:rubric_kinds", "positive criteria only");
  free(t);
  t = strdup(
      "{\"context\": \"c\", \"question\": \"q\", \"reference_answer\": \"r\", \"rubric\": "
      "[{\"criterion\": \"a\", \"weight\": 3, \"category\": \"neutral\"}]}");
  expect(t, &dflt, "rubric_category", "invalid");
  free(t);
}

Test(signed_rubric, reasoning_skills) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  char *t = signed_cand(2, 0, "\"reasoning_skills\": [\"one\"], ");
  expect(t, &ck, "reasoning_skills", "2 or 3");
  free(t);
  t = signed_cand(2, 0, "\"reasoning_skills\": [\"a\", 3], ");
  expect(t, &ck, "reasoning_skills", NULL);
  free(t);
  t = signed_cand(2, 0, NULL); /* optional by default */
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(parse_with(t, &ck, &c, &is), 0, "%s", is.message);
  cr_assert_null(c.reasoning_skills);
  json_t *j = cand_to_json(&c);
  cr_assert_null(json_object_get(j, "reasoning_skills"));
  cr_assert_null(json_object_get(json_array_get(json_object_get(j, "rubric"), 0), "category"),
                 "a positive-only rubric's records are as before");
  json_decref(j);
  cand_release(&c);
  ck.reasoning_skills = 1;
  expect(t, &ck, "reasoning_skills", "no \"reasoning_skills\"");
  free(t);
}

Test(signed_rubric, schema_follows_the_settings) {
  struct cand_checks ck;
  cand_checks_default(&ck);
  json_t *s = cand_json_schema(CAND_TASK_RUBRIC, &ck);
  json_t *item = json_object_get(json_object_get(json_object_get(s, "properties"), "rubric"),
                                 "items");
  cr_assert_null(json_object_get(json_object_get(item, "properties"), "category"));
  cr_assert_eq(json_integer_value(json_object_get(
                   json_object_get(json_object_get(item, "properties"), "weight"), "minimum")),
               1);
  cr_assert_null(json_object_get(json_object_get(s, "properties"), "reasoning_skills"));
  json_decref(s);
  cand_rubric_preset("signed", &ck);
  ck.reasoning_skills = 1;
  s = cand_json_schema(CAND_TASK_RUBRIC, &ck);
  json_t *props = json_object_get(s, "properties");
  item = json_object_get(json_object_get(props, "rubric"), "items");
  json_t *w = json_object_get(json_object_get(item, "properties"), "weight");
  cr_assert_eq(json_integer_value(json_object_get(w, "minimum")), -10);
  cr_assert_eq(json_integer_value(json_object_get(w, "maximum")), 10);
  cr_assert_eq(json_array_size(json_object_get(item, "required")), 3);
  cr_assert_eq(json_array_size(json_object_get(
                   json_object_get(json_object_get(item, "properties"), "category"), "enum")),
               2);
  json_t *rs = json_object_get(props, "reasoning_skills");
  cr_assert_eq(json_integer_value(json_object_get(rs, "minItems")), 2);
  cr_assert_eq(json_integer_value(json_object_get(rs, "maxItems")), 3);
  cr_assert_eq(json_array_size(json_object_get(s, "required")), 6);
  json_decref(s);
}

/* ---- the sim world's negative criteria ---- */

static char *ask(const char *model, const char *user, long long seed) {
  json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", user);
  json_t *req = json_pack("{s:s, s:o, s:I}", "model", model, "messages", msgs, "seed",
                          (json_int_t)seed);
  char *content = NULL, err[256];
  int64_t pt = 0, ct = 0;
  cr_assert_eq(sim_world_answer(req, &content, &pt, &ct, err, sizeof err), 1, "%s", err);
  json_decref(req);
  return content;
}

Test(sim_paper, challenger_writes_negative_criteria_when_asked) {
  struct sim_source src;
  cr_assert_eq(sim_source_make(5, 1, 8, &src), 0);
  char *plain = NULL, *asked = NULL;
  const char *fmt =
      "SOURCE:\n%s\n\nWrite one question with a rubric. Reply with only the JSON "
      "object. Weights are integers. %s\n{\"rubric\": []}";
  cr_assert(asprintf(&plain, fmt, src.text, "") > 0);
  cr_assert(asprintf(&asked, fmt, src.text, "Add 1 to 3 negative criteria, phrased as the error.") >
            0);
  struct cand_checks ck;
  cand_checks_default(&ck);
  cand_rubric_preset("signed", &ck);
  ck.rubric_min = 2, ck.positive_min = 1, ck.negative_min = 1, ck.negative_max = 2;
  int parsed = 0, with_neg = 0;
  for (int seed = 0; seed < 40; seed++) {
    char *a = ask("sim-challenger", plain, seed);
    cr_assert_null(strstr(a, "negative"), "not asked, none written: %s", a);
    free(a);
    a = ask("sim-challenger", asked, seed);
    struct cand c;
    struct cand_issue is;
    if (cand_parse(a, strlen(a), CAND_TASK_RUBRIC, &ck, NULL, &c, &is) == 0) {
      parsed++;
      with_neg += c.n_negative > 0;
      cr_assert(c.reasoning_skills);
      /* a negative criterion names a picked fact with a value the reference does not give */
      for (int i = 0; i < c.n_rubric; i++)
        if (c.rubric[i].negative)
          cr_assert_null(strstr(c.reference_answer, c.rubric[i].criterion + 12));
    }
    cand_release(&c);
    free(a);
  }
  cr_assert(parsed >= 25, "parsed %d of 40", parsed);
  cr_assert_eq(with_neg, parsed);
  free(plain);
  free(asked);
  sim_source_release(&src);
}

Test(sim_paper, judge_and_quality_read_negative_criteria) {
  const char *u =
      "QUESTION:\nState F-3a9c.\n\nRUBRIC:\n"
      "1. (positive, weight 5) States that F-3a9c is 17\n"
      "2. (negative, weight -4) States that F-3a9c is 19\n\nRESPONSE:\n";
  char *q = NULL;
  cr_assert(asprintf(&q, "%sF-3a9c is 19.", u) > 0);
  char *a = ask("sim-judge@err=0,lenient=0", q, 1);
  json_t *j = json_loads(a, 0, NULL);
  json_t *v = json_object_get(j, "verdicts");
  cr_assert(json_is_false(json_object_get(json_array_get(v, 0), "met")));
  cr_assert(json_is_true(json_object_get(json_array_get(v, 1), "met")),
            "the answer shows the error: the negative criterion is met");
  int w[] = {5, -4}, met[] = {0, 1};
  cr_assert_float_eq(score_rubric(w, met, 2), 0.0, 1e-12);
  json_decref(j);
  free(a);
  free(q);
  /* the quality verifier takes negative weights on negative criteria only */
  const char *cand_ok =
      "CANDIDATE:\n{\"context\": \"c\", \"question\": \"What is F-3a9c?\", \"rubric\": "
      "[{\"criterion\": \"States that F-3a9c is 17\", \"weight\": 5, \"category\": \"positive\"}, "
      "{\"criterion\": \"States that F-3a9c is 19\", \"weight\": -4, \"category\": "
      "\"negative\"}]}";
  const char *cand_bad =
      "CANDIDATE:\n{\"context\": \"c\", \"question\": \"What is F-3a9c?\", \"rubric\": "
      "[{\"criterion\": \"States that F-3a9c is 17\", \"weight\": -5}]}";
  int ok_malformed = 0, bad_malformed = 0;
  for (int seed = 0; seed < 20; seed++) {
    char *r1 = ask("sim-quality", cand_ok, seed), *r2 = ask("sim-quality", cand_bad, seed);
    ok_malformed += strstr(r1, "rubric_malformed") != NULL;
    bad_malformed += strstr(r2, "rubric_malformed") != NULL;
    free(r1);
    free(r2);
  }
  cr_assert_eq(ok_malformed, 0);
  cr_assert_eq(bad_malformed, 20);
}

/* ---- the recipe's rubric settings ---- */

#include "recipe/recipe.h"

static const char *RUBRIC_RECIPE =
    "name: t\n"
    "sources: {path: x.jsonl}\n"
    "roles:\n"
    "  challenger: {endpoint: sim, model: sim-challenger}\n"
    "  weak: {endpoint: sim, model: sim-solver@0.35}\n"
    "  strong: {endpoint: sim, model: sim-solver@0.8}\n"
    "  judge: {endpoint: sim, model: sim-judge}\n";

static int load_with(const char *checks, struct recipe **r, struct recipe_diag *d) {
  char *text = NULL;
  cr_assert(asprintf(&text, "%s%s", RUBRIC_RECIPE, checks) > 0);
  struct recipe_load_opts o = {0};
  o.prompts_dir = "prompts";
  int rc = recipe_load_mem(text, strlen(text), "r.yaml", &o, r, d);
  free(text);
  return rc;
}

Test(signed_rubric, recipe_preset_overrides_and_prompts) {
  struct recipe *r = NULL;
  struct recipe_diag d = {0};
  cr_assert_eq(load_with("", &r, &d), 0, "%s", d.n ? d.msgs[0] : "");
  cr_assert_eq(r->checks.signed_rubric, 0);
  cr_assert(strstr(r->roles[RECIPE_ROLE_JUDGE].prompt.path, "judge-rubric.md"));
  json_t *j = recipe_to_json(r);
  cr_assert_null(json_object_get(json_object_get(j, "checks"), "rubric_kinds"),
                 "a default recipe's configuration (and identity) is as before");
  json_decref(j);
  recipe_free(r);
  cr_assert_eq(load_with("checks: {rubric_preset: signed, negative_min: 1, reasoning_skills: "
                         "true}\n",
                         &r, &d),
               0, "%s", d.n ? d.msgs[0] : "");
  cr_assert(r->checks.signed_rubric && r->checks.reasoning_skills);
  cr_assert_eq(r->checks.negative_min, 1, "a key overrides the preset");
  cr_assert_eq(r->checks.negative_max, 5);
  cr_assert_eq(r->checks.rubric_min, 10);
  cr_assert(strstr(r->roles[RECIPE_ROLE_JUDGE].prompt.path, "judge-rubric-signed.md"));
  cr_assert(strstr(r->roles[RECIPE_ROLE_CHALLENGER].prompt.path, "challenger-rubric-signed.md"));
  j = recipe_to_json(r);
  json_t *k = json_object_get(json_object_get(j, "checks"), "rubric_kinds");
  cr_assert_str_eq(json_string_value(json_object_get(k, "preset")), "signed");
  json_decref(j);
  recipe_free(r);
  cr_assert_neq(load_with("checks: {negative_min: 2}\n", &r, &d), 0);
  cr_assert(strstr(d.msgs[0], "need signed rubrics"), "%s", d.msgs[0]);
  recipe_diag_release(&d);
  cr_assert_neq(load_with("checks: {rubric_preset: mixed}\n", &r, &d), 0);
  cr_assert(strstr(d.msgs[0], "rubric_preset"), "%s", d.msgs[0]);
  recipe_diag_release(&d);
}

/* ---- programmatic overrides (the legal pipeline's Layer 1) ---- */

#include "eval/override.h"

static const char *const LEGAL_PATTERNS[] = {
    "court of appeals|supreme court of|in the case of|in re ", "you are an|act as|as a law clerk",
    "(^|[^0-9])(18[0-9][0-9]|19[0-3][0-9])([^0-9]|$)"};

Test(overrides, length_and_patterns_send_the_candidate_back_with_the_text) {
  struct override_set o = {0};
  char err[300];
  cr_assert_eq(override_compile(&o, LEGAL_PATTERNS, 3, 60, err, sizeof err), 0, "%s", err);
  struct cand_issue is;
  memset(&is, 0, sizeof is);
  cr_assert_eq(override_check(&o, "May the lessee withhold rent?", "A lease dispute.", &is), 0);
  cr_assert_eq(override_check(NULL, "anything", "", &is), 0, "no overrides: nothing applies");
  /* too long: the length and the limit */
  cr_assert_eq(override_check(&o,
                              "May the lessee withhold rent when the landlord fails to repair "
                              "the heating for a whole winter?",
                              "", &is),
               AD_EINVAL);
  cr_assert_eq(is.kind, CAND_CHECK);
  cr_assert_str_eq(is.reason, "check:question_length");
  cr_assert(strstr(is.message, "at most 60"), "%s", is.message);
  /* a refused pattern: the matching text is shown, case-insensitively */
  cr_assert_eq(override_check(&o, "What did the Court of Appeals decide?", "", &is), AD_EINVAL);
  cr_assert_str_eq(is.reason, "check:pattern");
  cr_assert(strstr(is.message, "\"Court of Appeals\""), "%s", is.message);
  cr_assert(strstr(is.message, "the question matches"), "%s", is.message);
  /* in the context too, and the pre-1940 year rule */
  cr_assert_eq(override_check(&o, "Is the clause valid?", "A contract signed in 1923 says.", &is),
               AD_EINVAL);
  cr_assert(strstr(is.message, "the context matches"), "%s", is.message);
  cr_assert(strstr(is.message, "1923"), "%s", is.message);
  cr_assert_eq(override_check(&o, "Is the 1987 clause valid?", "", &is), 0, "1987 is allowed");
  override_release(&o);
  override_release(&o); /* idempotent */
  /* a bad pattern is refused, naming it */
  const char *bad[] = {"ok", "(unclosed"};
  cr_assert_eq(override_compile(&o, bad, 2, 0, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "pattern 2 '(unclosed'"), "%s", err);
  cr_assert_eq(o.n, 0);
}

Test(overrides, candidates_and_recipes_use_them) {
  struct override_set o = {0};
  char err[300];
  cr_assert_eq(override_compile(&o, LEGAL_PATTERNS, 3, 0, err, sizeof err), 0);
  struct cand_checks ck;
  cand_checks_default(&ck);
  ck.overrides = &o;
  const char *t =
      "{\"context\": \"Background.\", \"question\": \"As a law clerk, what follows?\", "
      "\"reference_answer\": \"It follows.\", \"rubric\": [{\"criterion\": \"a\", "
      "\"weight\": 2}]}";
  struct cand c;
  struct cand_issue is;
  cr_assert_eq(cand_parse(t, strlen(t), CAND_TASK_RUBRIC, &ck, NULL, &c, &is), AD_EINVAL);
  cr_assert_str_eq(is.reason, "check:pattern");
  cr_assert(strstr(is.message, "\"As a law clerk\""), "%s", is.message);
  cand_release(&c);
  override_release(&o);
  /* the recipe compiles them and names a bad one by position */
  struct recipe *r = NULL;
  struct recipe_diag d = {0};
  cr_assert_eq(load_with("checks: {max_question_chars: 1000, reject_patterns: ['in re ', "
                         "'act as']}\n",
                         &r, &d),
               0, "%s", d.n ? d.msgs[0] : "");
  cr_assert_not_null(r->checks.overrides);
  cr_assert_eq(r->checks.overrides->n, 2);
  cr_assert_eq(r->checks.overrides->max_question_chars, 1000);
  json_t *j = recipe_to_json(r);
  cr_assert_eq(json_array_size(json_object_get(
                   json_object_get(json_object_get(j, "checks"), "overrides"), "reject_patterns")),
               2);
  json_decref(j);
  recipe_free(r);
  cr_assert_neq(load_with("checks: {reject_patterns: ['ok', '(x']}\n", &r, &d), 0);
  cr_assert(strstr(d.msgs[0], "checks.reject_patterns[1]"), "%s", d.msgs[0]);
  recipe_diag_release(&d);
  cr_assert_eq(load_with("", &r, &d), 0);
  cr_assert_null(r->checks.overrides);
  recipe_free(r);
}

/* ---- the loop judge's statistic ---- */

#include "eval/accept.h"

Test(loop_judge, bound_on_loop_accept_is_checked_last) {
  struct accept_bound b;
  char err[200];
  cr_assert_eq(accept_bound_parse("loop_accept == 1", &b, err, sizeof err), 0, "%s", err);
  cr_assert_eq(b.group, ACC_LOOP);
  struct accept_spec s = {0};
  s.bounds[s.n++] = b;
  cr_assert_eq(accept_bound_parse("gap >= 0.2", &s.bounds[s.n], err, sizeof err), 0);
  s.n++;
  struct accept_stats st = {0};
  st.n_weak = st.n_strong = 1;
  st.weak[0] = 0.1;
  st.strong[0] = 0.9;
  accept_stats_compute(&st, 0.5);
  char failed[64];
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "loop_judge:improve");
  cr_assert_str_eq(failed, "loop_accept == 1");
  st.loop_judged = 1;
  st.loop_accept = 1;
  cr_assert_null(accept_evaluate(&s, &st, failed, sizeof failed));
  st.strong[0] = 0.2; /* a failing gap is reported first */
  accept_stats_compute(&st, 0.5);
  st.loop_accept = 0;
  cr_assert_str_eq(accept_evaluate(&s, &st, failed, sizeof failed), "no_gap");
}
