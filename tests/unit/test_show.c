/* test_show.c - report/show.c on hand-made stores: samples recovered from sampling seeds,
 * calls without a seed numbered in call order, cache hits matched through their key,
 * judge verdicts per criterion, and the errors for unknown sources and rounds. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "report/show.h"
#include "store/store.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#include "helpers.h"

static char tdir[64];
static char dbpath[128];

static void setup(void) {
  th_mkdtemp(tdir, sizeof tdir, "show");
  snprintf(dbpath, sizeof dbpath, "%s/store.db", tdir);
}
static void teardown(void) { th_rmtree(tdir); }

TestSuite(show, .init = setup, .fini = teardown);

#define SEED 7

static store_id begin(store *st, int new_run) {
  json_t *ph = json_object();
  struct store_run_info info = {"r", "abc", ph, SEED, "test", "autodata run r.yaml", NULL, NULL};
  store_id run = 0;
  int resumed = 0;
  cr_assert_eq(store_run_begin(st, &info, new_run, &run, &resumed), 0, "%s", store_errmsg(st));
  json_decref(ph);
  return run;
}

/* A call of role for sample k of round 1 of source s1; seeded = put the loop's seed in the
 * request; key = cache key; cache_hit = no body, answered from the cache. */
static void call(store *st, store_id run, const char *role, int k, int seeded, const char *key,
                 const char *content, int cache_hit) {
  char *req = seeded ? xasprintf("{\"model\":\"m\",\"seed\":%lld}",
                                 (long long)(int64_t)rng_derive(SEED, "s1|1|%s|%d", role, k))
                     : xstrdup("{\"model\":\"m\"}");
  char hex[33];
  store_cache_key_text("e", key, strlen(key), hex); /* a key per label */
  json_t *r = json_pack("{s:[{s:{s:s}}]}", "choices", "message", "content", content);
  char *reply = json_dumps(r, JSON_COMPACT);
  struct store_call c = {.run = run,
                         .role = role,
                         .source_id = "s1",
                         .round = 1,
                         .endpoint = "e",
                         .model = "m",
                         .cache_key = hex,
                         .request = cache_hit ? NULL : req,
                         .reply = cache_hit ? NULL : reply,
                         .attempts = cache_hit ? 0 : 1,
                         .cache_hit = cache_hit};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
  free(req);
  free(reply);
  json_decref(r);
}

static void candidate(store *st, store_id run) {
  json_t *rec = json_pack(
      "{s:{s:s,s:s,s:s,s:[{s:s,s:i},{s:s,s:i}]},s:[f,f],s:[],s:n,s:{s:b,s:[],s:s}}", "candidate",
      "context", "ctx", "question", "q?", "reference_answer", "ref", "rubric", "criterion", "A",
      "weight", 3, "criterion", "B", "weight", 1, "weak_scores", 0.75, 0.0, "strong_scores",
      "instructions", "quality", "pass", 1, "issues", "feedback", "fine");
  cr_assert_eq(store_candidate_put(st, run, "s1", 1, 0, "rejected", "too_hard", rec), 0);
  json_decref(rec);
}

#define MET_A                                                            \
  "{\"verdicts\":[{\"criterion\":1,\"met\":true,\"reason\":\"says A\"}," \
  "{\"criterion\":2,\"met\":false,\"reason\":\"no B\"}]}"
#define MET_NONE "{\"verdicts\":[{\"criterion\":1,\"met\":false},{\"criterion\":2,\"met\":false}]}"

static json_t *build(store *st, store_id run, int round, int expect_rc, char *err, size_t n) {
  json_t *doc = NULL;
  int rc = report_show_build(st, run, "s1", round, 0, &doc, err, n);
  cr_assert_eq(rc, expect_rc, "rc %d: %s", rc, err);
  return doc;
}

static const json_t *weak(const json_t *doc, size_t i) {
  const json_t *r = json_array_get(json_object_get(doc, "rounds"), 0);
  return json_array_get(json_object_get(json_object_get(r, "samples"), "weak"), i);
}

Test(show, samples_from_seeds_not_call_order) {
  store *st = NULL;
  cr_assert_eq(store_open(dbpath, 0, &st), 0);
  store_id run = begin(st, 0);
  cr_assert_eq(store_source_put(st, run, "s1", "T", "h"), 0);
  candidate(st, run);
  /* answered out of order: sample 1 first, its judge first too */
  call(st, run, "weak", 1, 1, "k-w1", "answer one", 0);
  call(st, run, "weak", 0, 1, "k-w0", "answer zero", 0);
  call(st, run, "judge_weak", 1, 1, "k-j1", MET_NONE, 0);
  call(st, run, "judge_weak", 0, 1, "k-j0", MET_A, 0);
  cr_assert_eq(store_flush(st), 0);
  char err[512] = "";
  json_t *doc = build(st, 0, 0, 0, err, sizeof err);
  const json_t *s0 = weak(doc, 0), *s1 = weak(doc, 1);
  cr_assert_str_eq(jx_str(s0, "answer"), "answer zero");
  cr_assert_str_eq(jx_str(s1, "answer"), "answer one");
  const json_t *j0 = json_object_get(s0, "judge");
  cr_assert_float_eq(jx_num(j0, "score", -1), 0.75, 1e-9);
  cr_assert_float_eq(jx_num(json_object_get(s1, "judge"), "score", -1), 0.0, 1e-9);
  cr_assert_float_eq(jx_num(s0, "score", -1), 0.75, 1e-9, "the recorded score");
  const json_t *v = json_array_get(json_object_get(j0, "verdicts"), 0);
  cr_assert(json_is_true(json_object_get(v, "met")));
  cr_assert_str_eq(jx_str(v, "text"), "A");
  cr_assert_str_eq(jx_str(v, "reason"), "says A");
  cr_assert_eq(jx_int(json_object_get(doc, "counts"), "samples", 0), 2);
  cr_assert_eq(jx_int(json_object_get(doc, "counts"), "calls", 0), 4);
  json_decref(doc);

  /* the text names both samples and the per-criterion verdicts */
  doc = build(st, 0, 1, 0, err, sizeof err);
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  report_show_print(doc, f);
  fclose(f);
  cr_assert(strstr(text, "== round 1: rejected - too_hard"), "%s", text);
  cr_assert(strstr(text, "#1  score 0.750"), "%s", text);
  cr_assert(strstr(text, "met     1. A - says A"), "%s", text);
  cr_assert(strstr(text, "not met 2. B - no B"), "%s", text);
  free(text);
  json_decref(doc);
  store_close(st);
}

Test(show, unseeded_calls_in_call_order_and_cache_hits_by_key) {
  store *st = NULL;
  cr_assert_eq(store_open(dbpath, 0, &st), 0);
  store_id run = begin(st, 0);
  cr_assert_eq(store_source_put(st, run, "s1", NULL, "h"), 0);
  candidate(st, run);
  call(st, run, "weak", 0, 0, "k-w0", "first", 0);
  call(st, run, "weak", 1, 0, "k-w1", "second", 0);
  call(st, run, "judge_weak", 0, 0, "k-j0", MET_A, 0);
  call(st, run, "judge_weak", 1, 0, "k-j1", MET_NONE, 0);
  cr_assert_eq(store_flush(st), 0);
  char err[512] = "";
  json_t *doc = build(st, 0, 0, 0, err, sizeof err);
  cr_assert_str_eq(jx_str(weak(doc, 0), "answer"), "first");
  cr_assert_float_eq(jx_num(json_object_get(weak(doc, 0), "judge"), "score", -1), 0.75, 1e-9);
  cr_assert_float_eq(jx_num(json_object_get(weak(doc, 1), "judge"), "score", -1), 0.0, 1e-9);
  json_decref(doc);

  /* a second run answered from the cache in the opposite order, without bodies */
  json_t *ph = json_object();
  struct store_run_info info = {"r", "abc", ph, SEED, "test", "autodata run r.yaml", NULL, NULL};
  store_id run2 = 0;
  int resumed = 0;
  cr_assert_eq(store_run_begin(st, &info, 1, &run2, &resumed), 0);
  json_decref(ph);
  cr_assert_eq(store_source_put(st, run2, "s1", NULL, "h"), 0);
  candidate(st, run2);
  call(st, run2, "weak", 1, 1, "k-w1", "x", 1);
  call(st, run2, "weak", 0, 1, "k-w0", "x", 1);
  call(st, run2, "judge_weak", 1, 1, "k-j1", "x", 1);
  call(st, run2, "judge_weak", 0, 1, "k-j0", "x", 1);
  cr_assert_eq(store_flush(st), 0);
  doc = build(st, run2, 0, 0, err, sizeof err);
  /* run 1's calls carry no seed either, so the order of run 1's calls is all there is:
   * the cache keys must still pair each hit with its own reply */
  const json_t *a = weak(doc, 0), *b = weak(doc, 1);
  cr_assert(jx_str(a, "answer") && jx_str(b, "answer"), "replies found through the cache");
  const char *ans_a = jx_str(a, "answer");
  double sc_a = jx_num(json_object_get(a, "judge"), "score", -1);
  cr_assert((!strcmp(ans_a, "first") && sc_a == 0.75) || (!strcmp(ans_a, "second") && sc_a == 0.0),
            "answer %s paired with score %f", ans_a, sc_a);
  json_decref(doc);
  store_close(st);
}

Test(show, unknown_source_and_round) {
  store *st = NULL;
  cr_assert_eq(store_open(dbpath, 0, &st), 0);
  store_id run = begin(st, 0);
  cr_assert_eq(store_source_put(st, run, "s1", NULL, "h"), 0);
  candidate(st, run);
  cr_assert_eq(store_flush(st), 0);
  char err[512] = "";
  json_t *doc = NULL;
  cr_assert_eq(report_show_build(st, 0, "nope", 0, 0, &doc, err, sizeof err), AD_ENOTFOUND);
  cr_assert_null(doc);
  cr_assert(strstr(err, "no source 'nope'") && strstr(err, "e.g. s1") &&
                strstr(err, "lists every source id"),
            "%s", err);
  doc = build(st, 0, 4, AD_ENOTFOUND, err, sizeof err);
  cr_assert_null(doc);
  cr_assert(strstr(err, "has no round 4"), "%s", err);
  json_t *list = NULL;
  cr_assert_eq(report_show_sources(st, 0, &list, err, sizeof err), 0);
  cr_assert_eq(json_array_size(json_object_get(list, "sources")), 1);
  json_decref(list);
  store_close(st);
}
