/* store_shared.c - the store suites' shared helpers and test bodies (store_shared.h). */
#include "store_shared.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonx.h"

store *ts_open_rw(const char *path) {
  store *st = NULL;
  int rc = store_open(path, 0, &st);
  cr_assert_eq(rc, 0, "open %s: %s", path, store_errmsg(st));
  return st;
}

store *ts_open_ro(const char *path) {
  store *st = NULL;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  cr_assert_eq(rc, 0, "open ro %s: %s", path, store_errmsg(st));
  return st;
}

json_t *ts_prompts_json(const char *challenger_hash) {
  return json_pack("{s:s, s:s}", "challenger", challenger_hash, "judge",
                   "1111111111111111111111111111111111111111111111111111111111111111");
}

store_id ts_begin_run(store *st, const char *recipe_sha, json_t *prompts, uint64_t seed,
                      int new_run, int *resumed, int expect_rc) {
  struct store_run_info info = {.recipe_name = "cs-qa",
                                .recipe_sha256 = recipe_sha,
                                .prompt_hashes = prompts,
                                .seed = seed,
                                .version = "0.1.0",
                                .command_line = "autodata run recipe.yaml"};
  store_id run = 0;
  int res = -1;
  int rc = store_run_begin(st, &info, new_run, &run, &res);
  cr_assert_eq(rc, expect_rc, "run_begin rc %d: %s", rc, store_errmsg(st));
  if (resumed) *resumed = res;
  return run;
}

store_id ts_simple_run(store *st) {
  json_t *p = ts_prompts_json(SHA_C);
  store_id run = ts_begin_run(st, SHA_A, p, 1, 0, NULL, 0);
  json_decref(p);
  return run;
}

void ts_put_call(store *st, store_id run, const char *role, const char *key, const char *reply,
                 const char *error, int cache_hit) {
  struct store_attempt at[2] = {{1, 429, "rate limited", 1000, 500}, {2, 200, NULL, 2000, 0}};
  struct store_call c = {.run = run,
                         .role = role,
                         .source_id = "s1",
                         .round = 1,
                         .endpoint = "local",
                         .model = "m-small",
                         .cache_key = key,
                         .request = "{\"model\":\"m-small\"}",
                         .reply = reply,
                         .error = error,
                         .http_status = error ? 500 : 200,
                         .prompt_tokens = 100,
                         .completion_tokens = 20,
                         .latency_us = 3000,
                         .attempts = cache_hit ? 0 : 2,
                         .retries = cache_hit ? 0 : 1,
                         .cache_hit = cache_hit,
                         .attempt_list = cache_hit ? NULL : at,
                         .n_attempt_list = cache_hit ? 0 : 2};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
}

int ts_collect_fn(void *ud, const json_t *row) {
  struct ts_collect *c = ud;
  const char *v = jx_str(row, c->key);
  if (c->n < 16) snprintf(c->ids[c->n++], 64, "%s", v ? v : "(null)");
  return 0;
}

/* ---- test bodies ---- */

void ts_check_resume_and_mismatch(const char *path) {
  store *st = ts_open_rw(path);
  json_t *p = ts_prompts_json(SHA_C);
  int resumed;
  store_id r1 = ts_begin_run(st, SHA_A, p, 1, 0, &resumed, 0);
  cr_assert_eq(r1, 1);
  cr_assert_eq(resumed, 0);
  ts_put_call(st, r1, "challenger", "0123456789abcdef0123456789abcdef", "{\"x\":1}", NULL, 0);
  cr_assert_eq(store_run_set_status(st, r1, "interrupted"), 0);
  store_close(st);

  st = ts_open_rw(path);
  cr_assert_eq(ts_begin_run(st, SHA_A, p, 1, 0, &resumed, 0), r1);
  cr_assert_eq(resumed, 1);
  ts_begin_run(st, SHA_B, p, 1, 0, NULL, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "recipe changed: sha256 aaaaaaaa\u2026 -> bbbbbbbb\u2026"),
            "%s", store_errmsg(st));
  json_t *p2 = ts_prompts_json(SHA_B);
  ts_begin_run(st, SHA_A, p2, 1, 0, NULL, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "prompt 'challenger' changed"), "%s", store_errmsg(st));
  cr_assert_null(strstr(store_errmsg(st), "judge"), "%s", store_errmsg(st));
  ts_begin_run(st, SHA_A, p, 2, 0, NULL, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "seed 1 -> 2"), "%s", store_errmsg(st));
  json_t *p3 = ts_prompts_json(SHA_C);
  json_object_set_new(p3, "orchestrator", json_string(SHA_A));
  ts_begin_run(st, SHA_B, p3, 3, 0, NULL, AD_EMISMATCH);
  const char *m = store_errmsg(st);
  cr_assert(strstr(m, "recipe changed") && strstr(m, "prompt 'orchestrator' added") &&
                strstr(m, "seed 1 -> 3"),
            "%s", m);

  /* a new run in the same store; the cache still serves it */
  store_id r2 = ts_begin_run(st, SHA_B, p2, 2, 1, &resumed, 0);
  cr_assert_eq(r2, 2);
  cr_assert_eq(resumed, 0);
  char *body = NULL;
  size_t len = 0;
  cr_assert_eq(store_cache_get(st, "0123456789abcdef0123456789abcdef", &body, &len), 0);
  cr_assert_str_eq(body, "{\"x\":1}");
  cr_assert_eq(len, 7);
  free(body);
  store_close(st);
  json_decref(p);
  json_decref(p2);
  json_decref(p3);
}

void ts_check_sources_and_unknown_runs(const char *path) {
  store *st = ts_open_rw(path);
  store_id run = ts_simple_run(st);
  cr_assert_eq(store_source_put(st, run, "s1", "Paper 1", SHA_A), 0);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_source_put(st, run, "s1", "Paper 1", SHA_A), 0, "idempotent");
  cr_assert_eq(store_pending(st), 0, "nothing queued for a known source");
  cr_assert_eq(store_source_put(st, run, "s1", "Paper 1", SHA_B), AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "source 's1' changed"), "%s", store_errmsg(st));
  cr_assert_eq(store_source_put(st, run + 1, "s", NULL, NULL), AD_EINVAL);
  cr_assert_eq(store_candidate_put(st, run, "s", 1, 0, "maybe", NULL, NULL), AD_EINVAL);
  cr_assert_eq(store_pending(st), 0);
  store_close(st);
}

void ts_check_cache_serves_only_successful_real_calls(const char *path) {
  store *st = ts_open_rw(path);
  store_id run = ts_simple_run(st);
  const char *k_ok = "11111111111111111111111111111111";
  const char *k_err = "22222222222222222222222222222222";
  const char *k_hit = "33333333333333333333333333333333";
  ts_put_call(st, run, "weak_solver", k_ok, "{\"ok\":true}", NULL, 0);
  ts_put_call(st, run, "weak_solver", k_err, "{\"error\":{}}", "HTTP 500", 0);
  ts_put_call(st, run, "weak_solver", k_hit, "{\"hit\":1}", NULL, 1);
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, k_ok, &b, NULL), 0, "served from the pending batch");
  cr_assert_str_eq(b, "{\"ok\":true}");
  free(b);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  store *other = ts_open_ro(path); /* another reader, as another process would be */
  for (int i = 0; i < 2; i++) {
    store *s = i ? other : st;
    b = NULL;
    cr_assert_eq(store_cache_get(s, k_ok, &b, NULL), 0, "served from the store: %s",
                 store_errmsg(s));
    cr_assert_str_eq(b, "{\"ok\":true}");
    free(b);
    b = NULL;
    cr_assert_eq(store_cache_get(s, k_err, &b, NULL), AD_ENOTFOUND);
    cr_assert_null(b);
    cr_assert_eq(store_cache_get(s, k_hit, &b, NULL), AD_ENOTFOUND);
    cr_assert_eq(store_cache_get(s, "not-a-key", &b, NULL), AD_EINVAL);
  }
  store_close(other);
  store_close(st);
}

static int stop_fn(void *ud, const json_t *row) {
  (void)row;
  ++*(int *)ud;
  return 42;
}

void ts_check_iterators_order_and_content(const char *path) {
  store *st = ts_open_rw(path);
  store_id run = ts_simple_run(st);
  const char *sids[] = {"s3", "s1", "S2", "s2"};
  for (int i = 0; i < 4; i++) cr_assert_eq(store_source_put(st, run, sids[i], NULL, NULL), 0);
  json_t *ex = json_pack("{s:s}", "question", "q");
  cr_assert_eq(store_example_put(st, run, "s3", "ex-b", ex), 0);
  cr_assert_eq(store_example_put(st, run, "s1", "ex-a", ex), 0);
  cr_assert_eq(store_example_put(st, run, "s1", "ex-a", ex), 0); /* replace, not duplicate */
  cr_assert_eq(store_candidate_put(st, run, "s2", 1, 0, "rejected", "too_easy", ex), 0);
  cr_assert_eq(store_candidate_put(st, run, "S2", 1, 0, "rejected", "upper", ex), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 2, 0, "rejected", "no_gap", ex), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 3, 0, "accepted", NULL, ex), 0);
  json_decref(ex);
  struct ts_collect c = {.key = "example_id"};
  cr_assert_eq(store_examples_each(st, 0, ts_collect_fn, &c), 0, "%s", store_errmsg(st));
  cr_assert_eq(c.n, 2);
  cr_assert_str_eq(c.ids[0], "ex-a");
  cr_assert_str_eq(c.ids[1], "ex-b");
  struct ts_collect r = {.key = "reason"};
  cr_assert_eq(store_candidates_each(st, run, "rejected", ts_collect_fn, &r), 0);
  cr_assert_eq(r.n, 3);
  cr_assert_str_eq(r.ids[0], "upper", "bytewise order: S2 < s1 < s2");
  cr_assert_str_eq(r.ids[1], "no_gap");
  cr_assert_str_eq(r.ids[2], "too_easy");
  struct ts_collect s = {.key = "source_id"};
  cr_assert_eq(store_sources_each(st, run, ts_collect_fn, &s), 0);
  cr_assert_eq(s.n, 4);
  cr_assert_str_eq(s.ids[0], "s3", "insertion order");
  cr_assert_str_eq(s.ids[3], "s2");
  struct store_source src;
  cr_assert_eq(store_source_get(st, run, "s1", &src), 0);
  cr_assert_eq(src.accepted, 1);
  cr_assert_eq(store_source_get(st, run, "nope", &src), AD_ENOTFOUND);
  int calls = 0;
  cr_assert_eq(store_candidates_each(st, run, NULL, stop_fn, &calls), 42, "callback stops");
  cr_assert_eq(calls, 1);

  ts_put_call(st, run, "judge", NULL, "{\"a\":1}", NULL, 0);
  struct store_call other = {.run = run,
                             .role = "judge",
                             .source_id = "s2",
                             .round = 1,
                             .endpoint = "local",
                             .model = "m",
                             .request = "{}",
                             .reply = "{}"};
  cr_assert_eq(store_call_put(st, &other), 0);
  struct ts_collect k = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, 0, "s1", 1, ts_collect_fn, &k), 0, "%s",
               store_errmsg(st));
  cr_assert_eq(k.n, 1);
  cr_assert_str_eq(k.ids[0], "{\"a\":1}");
  struct ts_collect wb = {.key = "reply"};
  cr_assert_eq(store_calls_each(st, run, "judge", 1, ts_collect_fn, &wb), 0);
  cr_assert_eq(wb.n, 2);
  cr_assert_str_eq(wb.ids[1], "{}", "bodies when asked, in call order");
  struct ts_collect nb = {.key = "reply"};
  cr_assert_eq(store_calls_each(st, run, "judge", 0, ts_collect_fn, &nb), 0);
  cr_assert_eq(nb.n, 2);
  cr_assert_str_eq(nb.ids[0], "(null)", "no bodies when not asked");
  struct ts_collect sc = {.key = "reason"};
  cr_assert_eq(store_source_candidates_each(st, run, "s1", ts_collect_fn, &sc), 0);
  cr_assert_eq(sc.n, 2);
  cr_assert_str_eq(sc.ids[0], "no_gap", "by round");

  json_t *rec = json_pack("{s:s}", "split", "train");
  cr_assert_eq(store_opt_put(st, STORE_OPT_SPLITS, "o1", "s1", rec), 0);
  cr_assert_eq(store_opt_put(st, STORE_OPT_SPLITS, "o1", "s1", rec), 0);
  struct ts_collect ok = {.key = "key"};
  cr_assert_eq(store_opt_each(st, STORE_OPT_SPLITS, "o1", ts_collect_fn, &ok), 0, "%s",
               store_errmsg(st));
  cr_assert_eq(ok.n, 1);
  json_t *an = json_pack("{s:i}", "n", 3), *got = NULL;
  cr_assert_eq(store_analysis_get(st, run, &got), AD_ENOTFOUND);
  cr_assert_eq(store_analysis_put(st, run, an), 0);
  cr_assert_eq(store_analysis_get(st, run, &got), 0, "%s", store_errmsg(st));
  cr_assert(json_equal(got, an));
  json_decref(got);
  json_decref(an);
  json_decref(rec);
  store_close(st);
}
