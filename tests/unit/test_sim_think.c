/* test_sim_think.c - the sim solver's reasoning (`sim-solver@SKILL,think=N[,tags=1]`,
 * src/sim/think.h): the answer does not depend on it, it says nothing the world reads,
 * completion tokens count it, max_tokens cuts it, both server shapes, bad keys refused. */
#include <criterion/criterion.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "eval/extract.h"
#include "sim/sim.h"
#include "sim/think.h"
#include "sim/world.h"

#define Q "CONTEXT: A study of condensates.\n\nQUESTION: What are F-3a9c, F-0011 and F-7b2e?"

/* POST a solver request; the reply's JSON (asserts HTTP status want). */
static json_t *post(const char *model, long long seed, long long max_tokens, int want) {
  json_t *req = json_pack("{s:s, s:I, s:[{s:s, s:s}]}", "model", model, "seed", (json_int_t)seed,
                          "messages", "role", "user", "content", Q);
  if (max_tokens) json_object_set_new(req, "max_tokens", json_integer(max_tokens));
  char *body = json_dumps(req, JSON_COMPACT);
  json_decref(req);
  struct sim_response r;
  sim_handle("POST", "/v1/chat/completions", body, strlen(body), &r);
  free(body);
  cr_assert_eq(r.status, want, "%s: %s", model, r.body);
  json_t *v = json_loadb(r.body, r.len, 0, NULL);
  cr_assert_not_null(v, "%s", r.body);
  sim_response_release(&r);
  return v;
}

static json_t *msg(json_t *v) {
  return json_object_get(json_array_get(json_object_get(v, "choices"), 0), "message");
}
static const char *str(json_t *o, const char *k) {
  return json_string_value(json_object_get(o, k));
}
static long long ctok(json_t *v) {
  return json_integer_value(json_object_get(json_object_get(v, "usage"), "completion_tokens"));
}

Test(sim_think, answer_unchanged_reasoning_separate_and_counted) {
  for (long long seed = 1; seed <= 40; seed++) {
    json_t *a = post("sim-solver@0.5", seed, 0, 200);
    json_t *b = post("sim-solver@0.5,think=400", seed, 0, 200);
    cr_assert_str_eq(str(msg(a), "content"), str(msg(b), "content"), "the answer is think's own");
    cr_assert_null(json_object_get(msg(a), "reasoning_content"), "think=0: no reasoning");
    const char *rs = str(msg(b), "reasoning_content");
    cr_assert_not_null(rs);
    size_t n = strlen(rs);
    cr_assert(n >= 200 * 4 && n <= 600 * 4, "N/2..3N/2 tokens: %zu characters", n);
    /* filler: nothing the world reads (no digit, fact name, statement or heading) */
    for (const char *p = rs; *p; p++)
      cr_assert(!isdigit((unsigned char)*p) && *p != '=' && *p != ':');
    cr_assert_null(strstr(rs, "F-"));
    cr_assert_eq(ctok(b), (long long)((n + strlen(str(msg(b), "content"))) / 4));
    cr_assert_str_eq(str(json_array_get(json_object_get(b, "choices"), 0), "finish_reason"),
                     "stop");
    json_decref(a);
    json_decref(b);
  }
}

Test(sim_think, lengths_vary_with_the_seed) {
  size_t lo = (size_t)-1, hi = 0;
  for (long long seed = 1; seed <= 30; seed++) {
    json_t *b = post("sim-solver@0.5,think=1000", seed, 0, 200);
    size_t n = strlen(str(msg(b), "reasoning_content"));
    lo = n < lo ? n : lo;
    hi = n > hi ? n : hi;
    json_decref(b);
  }
  cr_assert(hi - lo > 1000, "reasoning lengths spread: %zu..%zu", lo, hi);
}

Test(sim_think, tags_in_content_and_the_final_answer_is_the_same) {
  json_t *a = post("sim-solver@0.35", 7, 0, 200);
  json_t *b = post("sim-solver@0.35,think=100,tags=1", 7, 0, 200);
  const char *c = str(msg(b), "content");
  cr_assert(!strncmp(c, "<think>\n", 8), "%s", c);
  cr_assert_null(json_object_get(msg(b), "reasoning_content"));
  size_t n = 0;
  const char *fin = extract_final_text(c, strlen(c), &n);
  cr_assert(fin && n == strlen(str(msg(a), "content")) && !strncmp(fin, str(msg(a), "content"), n));
  cr_assert_eq(ctok(b), (long long)((strlen(c) + 3) / 4));
  json_decref(a);
  json_decref(b);
}

Test(sim_think, max_tokens_cuts_the_reply) {
  json_t *b = post("sim-solver@0.5,think=1000", 3, 300, 200);
  json_t *ch = json_array_get(json_object_get(b, "choices"), 0);
  cr_assert_str_eq(str(ch, "finish_reason"), "length");
  cr_assert_str_eq(str(msg(b), "content"), "", "cut while reasoning: no answer");
  cr_assert_eq(strlen(str(msg(b), "reasoning_content")), 1200u);
  cr_assert_eq(ctok(b), 300);
  json_decref(b);
  b = post("sim-solver@0.5,think=1000,tags=1", 3, 300, 200);
  const char *c = str(msg(b), "content");
  cr_assert_null(strstr(c, "</think>"), "cut inside the block");
  size_t n;
  cr_assert_null(extract_final_text(c, strlen(c), &n), "no final answer to grade");
  json_decref(b);
  b = post("sim-solver@0.5,think=1000", 3, 100000, 200); /* room enough: not cut */
  cr_assert_str_eq(str(json_array_get(json_object_get(b, "choices"), 0), "finish_reason"), "stop");
  json_decref(b);
}

Test(sim_think, bad_keys_refused_and_params_reported) {
  const char *bad[] = {"sim-solver@0.5,think=-1",  "sim-solver@0.5,think=70000",
                       "sim-solver@0.5,think=1.5", "sim-solver@0.5,tags=2",
                       "sim-solver@0.5,err=0.1",   "sim-solver@0.5,think",
                       "sim-solver@0.5,"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *v = post(bad[i], 1, 0, 400);
    const char *m = str(json_object_get(v, "error"), "message");
    cr_assert(m && strstr(m, bad[i]), "%s: %s", bad[i], m);
    json_decref(v);
  }
  json_t *p = NULL;
  char err[256];
  cr_assert_eq(sim_world_params("sim-solver@0.5,think=2000,tags=1", &p, err, sizeof err), 1, "%s",
               err);
  cr_assert_eq(json_integer_value(json_object_get(p, "think")), 2000);
  cr_assert_eq(json_integer_value(json_object_get(p, "tags")), 1);
  json_decref(p);
  cr_assert_eq(sim_world_params("sim-solver@0.5", &p, err, sizeof err), 1);
  cr_assert_null(json_object_get(p, "think"), "unchanged for a name without the keys");
  json_decref(p);
}
