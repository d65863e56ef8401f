/* test_sim_world.c - the sim world: facts, sources, and each sim model's behaviour,
 * plus a small stand-in for the Agentic Self-Instruct loop that checks the
 * calibration (one-shot acceptance low, looped acceptance clearly higher).
 *
 * Set AD_SIM_CALIBRATE=1 to print the calibration figures (docs/sim.md). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/facts.h"
#include "sim/sources.h"
#include "sim/world.h"
#include "sim/world_notes.h"
#include "util/buf.h"
#include "util/rng.h"

#define GUARDS                                                                         \
  "The context must not contain the answer. Rubric weights are integers from 1 to 7. " \
  "Reply with only the JSON object."

/* ---- request helpers ---- */

/* Ask model with a system message (may be NULL) and a user message; returns the
 * malloc'd reply (asserts success). */
static char *ask(const char *model, const char *sys, const char *user, long long seed) {
  json_t *msgs = json_array();
  if (sys) json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "system", "content", sys));
  json_array_append_new(msgs, json_pack("{s:s, s:s}", "role", "user", "content", user));
  json_t *req = json_pack("{s:s, s:o, s:I, s:f}", "model", model, "messages", msgs, "seed",
                          (json_int_t)seed, "temperature", 1.0);
  char *content = NULL, err[256];
  int64_t pt = 0, ct = 0;
  int rc = sim_world_answer(req, &content, &pt, &ct, err, sizeof err);
  cr_assert_eq(rc, 1, "sim_world_answer(%s) = %d: %s", model, rc, err);
  cr_assert(content && pt >= 1 && ct >= 1);
  json_decref(req);
  return content;
}

static json_t *ask_json(const char *model, const char *user, long long seed) {
  char *c = ask(model, NULL, user, seed);
  json_t *j = json_loads(c, 0, NULL);
  cr_assert(j, "reply of %s is not JSON: %s", model, c);
  free(c);
  return j;
}

static char *solver_prompt(const char *ctx, const char *q) {
  char *s = NULL;
  cr_assert(asprintf(&s, "Answer the question.\n\nCONTEXT:\n%s\n\nQUESTION:\n%s\n", ctx, q) > 0);
  return s;
}

/* ---- facts ---- */

Test(sim_facts, difficulty_is_pure_and_spread) {
  char name[8];
  int bins[10] = {0};
  for (unsigned id = 0; id < 65536; id++) {
    sim_fact_name(id, name);
    double d = sim_fact_difficulty(name);
    cr_assert(d >= 0 && d < 1);
    cr_assert_eq(d, sim_fact_difficulty(name));
    long long v = sim_fact_value(name);
    cr_assert(v >= 10 && v <= 99);
    bins[(int)(d * 10)]++;
  }
  for (int b = 0; b < 10; b++)
    cr_assert(bins[b] > 5900 && bins[b] < 7200, "bin %d: %d", b, bins[b]);
  /* only the name matters, not what follows it */
  cr_assert_eq(sim_fact_difficulty("F-3a9c"), sim_fact_difficulty("F-3a9c = 17"));
  cr_assert_neq(sim_fact_difficulty("F-3a9c"), sim_fact_difficulty("F-3a9d"));
}

Test(sim_facts, scanning) {
  const char *t =
      "x F-3a9c = 17, yF-0000 = 3, F-12ab is 40. F-12ab = 41 F-abcde = 2 F-00ff: 9 "
      "F-1111 = 17.5 F-2222 = -4.";
  struct sim_fact f[8];
  size_t n = sim_facts_scan(t, strlen(t), SIM_STATE_EQ, f, 8);
  cr_assert_eq(n, 3);
  cr_assert_str_eq(f[0].name, "F-3a9c");
  cr_assert_eq(f[0].value, 17);
  cr_assert_str_eq(f[1].name, "F-12ab");
  cr_assert_eq(f[1].value, 41);
  cr_assert_str_eq(f[2].name, "F-2222");
  cr_assert_eq(f[2].value, -4);
  n = sim_facts_scan(t, strlen(t), SIM_STATE_ANY, f, 8);
  cr_assert_eq(n, 4);
  cr_assert_eq(f[1].value, 40, "first statement wins");
  char names[8][8];
  n = sim_fact_names_scan(t, strlen(t), names, 8);
  cr_assert_eq(n, 5); /* F-3a9c F-12ab F-00ff F-1111 F-2222 */
  long long v;
  cr_assert(sim_fact_stated(t, strlen(t), "F-00ff", SIM_STATE_COLON, &v) && v == 9);
  cr_assert(!sim_fact_stated(t, strlen(t), "F-00ff", SIM_STATE_EQ, &v));
  cr_assert(!sim_fact_stated(t, strlen(t), "F-1111", SIM_STATE_ANY, &v), "17.5 is not an integer");
  cr_assert(!sim_fact_stated("F-3a9c = ", 9, "F-3a9c", SIM_STATE_ANY, &v));
  cr_assert_float_eq(sim_recall_prob(0.5, 0.5), 0.5 * (1 - SIM_RECALL_SLIP), 1e-12);
  cr_assert(sim_recall_prob(0.8, 0.2) > 0.99 * (1 - SIM_RECALL_SLIP));
}

/* ---- sources ---- */

Test(sim_sources, facts_parse_back_and_spread) {
  for (unsigned i = 1; i <= 20; i++) {
    struct sim_source s;
    cr_assert_eq(sim_source_make(7, i, 8, &s), 0);
    struct sim_fact f[16];
    size_t n = sim_facts_scan(s.text, strlen(s.text), SIM_STATE_EQ, f, 16);
    cr_assert_eq(n, 8, "source %u: %zu facts parsed", i, n);
    int band_seen[8] = {0};
    for (size_t k = 0; k < n; k++) {
      cr_assert_eq(f[k].value, sim_fact_value(f[k].name));
      band_seen[(int)(f[k].difficulty * 8)]++;
    }
    for (int b = 0; b < 8; b++) cr_assert_eq(band_seen[b], 1, "one fact per difficulty band");
    cr_assert(strlen(s.title) > 10 && strlen(s.text) > 1000);
    cr_assert(strstr(s.text, "\n\n"));
    sim_source_release(&s);
  }
  struct sim_source s;
  cr_assert_eq(sim_source_make(7, 1, 0, &s), AD_EINVAL);
  cr_assert_eq(sim_source_make(7, 1, SIM_SOURCE_MAX_FACTS + 1, &s), AD_EINVAL);
  cr_assert_eq(sim_source_make(7, 1, SIM_SOURCE_MAX_FACTS, &s), 0);
  struct sim_fact f[SIM_SOURCE_MAX_FACTS + 1];
  cr_assert_eq(sim_facts_scan(s.text, strlen(s.text), SIM_STATE_EQ, f, SIM_SOURCE_MAX_FACTS + 1),
               SIM_SOURCE_MAX_FACTS);
  sim_source_release(&s);
}

static char *write_corpus(unsigned count, uint64_t seed, unsigned k) {
  char *p = NULL;
  size_t n = 0;
  FILE *f = open_memstream(&p, &n);
  cr_assert(f);
  cr_assert_eq(sim_sources_write(f, count, seed, k), 0);
  fclose(f);
  return p;
}

Test(sim_sources, deterministic_jsonl) {
  char *a = write_corpus(5, 42, 6), *b = write_corpus(5, 42, 6), *c = write_corpus(5, 43, 6);
  char *d = write_corpus(3, 42, 6);
  cr_assert_str_eq(a, b);
  cr_assert_str_neq(a, c);
  cr_assert_eq(strncmp(a, d, strlen(d)), 0, "source i does not depend on the count");
  int lines = 0;
  for (char *line = strtok(a, "\n"); line; line = strtok(NULL, "\n"), lines++) {
    json_t *j = json_loads(line, 0, NULL);
    cr_assert(j);
    char id[16];
    snprintf(id, sizeof id, "sim-%04d", lines + 1);
    cr_assert_str_eq(json_string_value(json_object_get(j, "id")), id);
    cr_assert(json_is_string(json_object_get(j, "title")));
    const char *t = json_string_value(json_object_get(j, "text"));
    struct sim_fact f[8];
    cr_assert_eq(sim_facts_scan(t, strlen(t), SIM_STATE_EQ, f, 8), 6);
    json_decref(j);
  }
  cr_assert_eq(lines, 5);
  free(a), free(b), free(c), free(d);
}

/* ---- request handling ---- */

Test(sim_world, non_world_and_malformed) {
  char *content = (char *)1, err[200];
  int64_t pt, ct;
  json_t *r = json_pack("{s:s, s:[]}", "model", "gpt-4o", "messages");
  cr_assert_eq(sim_world_answer(r, &content, &pt, &ct, err, sizeof err), 0);
  json_decref(r);
  r = json_pack("{s:s}", "model", "sim-judge");
  cr_assert_eq(sim_world_answer(r, &content, &pt, &ct, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "messages"));
  json_decref(r);
  r = json_pack("{s:s, s:[]}", "model", "sim-solver@high", "messages");
  cr_assert_eq(sim_world_answer(r, &content, &pt, &ct, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "skill"), "%s", err);
  json_decref(r);
  r = json_pack("{s:s, s:[s]}", "model", "sim-judge", "messages", "not an object");
  cr_assert_eq(sim_world_answer(r, &content, &pt, &ct, err, sizeof err), AD_EINVAL);
  json_decref(r);
  /* content as an array of parts; garbage text never crashes */
  r = json_pack("{s:s, s:[{s:s, s:[{s:s, s:s}]}]}", "model", "sim-quality", "messages", "role",
                "user", "content", "type", "text", "text",
                "CANDIDATE: {\"rubric\": [{\"weight\": \"x\"");
  cr_assert_eq(sim_world_answer(r, &content, &pt, &ct, err, sizeof err), 1);
  json_t *j = json_loads(content, 0, NULL);
  cr_assert(json_is_false(json_object_get(j, "pass")));
  json_decref(j);
  free(content);
  json_decref(r);
}

Test(sim_world, determinism) {
  const char *u = "CONTEXT:\nBackground.\n\nQUESTION:\nState F-3a9c, F-12ab and F-0f0f.";
  char *a = ask("sim-solver@0.5", "sys", u, 11), *b = ask("sim-solver@0.5", "sys", u, 11);
  cr_assert_str_eq(a, b);
  int differ = 0;
  for (long long s = 12; s < 40 && !differ; s++) {
    char *c = ask("sim-solver@0.5", "sys", u, s);
    differ = strcmp(a, c) != 0;
    free(c);
  }
  cr_assert(differ, "some other seed gives another answer");
  free(a), free(b);
}

/* ---- solver ---- */

/* A fact name whose difficulty is near d. */
static void name_near(double d, char out[8], unsigned start) {
  for (unsigned id = start;; id++) {
    sim_fact_name(id, out);
    if (fabs(sim_fact_difficulty(out) - d) < 0.01) return;
  }
}

Test(sim_world, solver_recall_rate) {
  const double skills[] = {0.35, 0.8};
  const double diffs[] = {0.2, 0.5, 0.75};
  for (int si = 0; si < 2; si++)
    for (int di = 0; di < 3; di++) {
      char nm[8];
      name_near(diffs[di], nm, 100);
      char q[128];
      snprintf(q, sizeof q, "What is %s?", nm);
      char *p = solver_prompt("Some background without values.", q);
      char model[32];
      snprintf(model, sizeof model, "sim-solver@%.2f", skills[si]);
      int hits = 0, hedged = 0;
      const int N = 2000;
      for (int s = 0; s < N; s++) {
        char *a = ask(model, NULL, p, s);
        long long v;
        if (!sim_fact_stated(a, strlen(a), nm, SIM_STATE_IS, &v)) {
          /* not recalled and hedged: names the fact, commits to no value */
          cr_assert(strstr(a, nm) && strstr(a, "hard to pin down"), "%s", a);
          hedged++;
        } else if (v == sim_fact_value(nm)) {
          hits++;
        } else {
          cr_assert(llabs(v - sim_fact_value(nm)) <= 3);
        }
        free(a);
      }
      /* each sample's form moves its skill by SIM_SOLVER_FORM x a standard normal */
      double want = 0, wsum = 0;
      for (int z = -60; z <= 60; z++) {
        double x = z / 10.0, wz = exp(-x * x / 2);
        want += wz * sim_recall_prob(skills[si] + SIM_SOLVER_FORM * x, sim_fact_difficulty(nm));
        wsum += wz;
      }
      want /= wsum;
      double got = (double)hits / N, tol = 4 * sqrt(want * (1 - want) / N) + 0.005;
      cr_assert(fabs(got - want) <= tol, "skill %.2f d %.3f: recall %.3f, want %.3f", skills[si],
                sim_fact_difficulty(nm), got, want);
      /* a miss is hedged 30% of the time (docs/sim.md) */
      if (N - hits > 200) {
        double h = (double)hedged / (N - hits);
        cr_assert(fabs(h - 0.30) < 0.05, "hedged %.3f of the misses", h);
      }
      free(p);
    }
}

Test(sim_world, solver_uses_stated_values_and_verifiable) {
  char hard[8];
  name_near(0.97, hard, 0);
  long long tv = sim_fact_value(hard);
  char ctx[128], q[128];
  snprintf(ctx, sizeof ctx, "The study reports %s = %lld.", hard, tv);
  snprintf(q, sizeof q, "Give %s.", hard);
  char *p = solver_prompt(ctx, q);
  for (int s = 0; s < 200; s++) {
    char *a = ask("sim-solver@0.0", NULL, p, s);
    long long v;
    cr_assert(sim_fact_stated(a, strlen(a), hard, SIM_STATE_IS, &v) && v == tv, "%s", a);
    cr_assert(!strstr(a, "ANSWER:"));
    free(a);
  }
  free(p);
  /* verifiable: ends with ANSWER: <value>, the sum when the question asks for one */
  char e1[8], e2[8];
  name_near(0.02, e1, 0);
  name_near(0.03, e2, 0);
  snprintf(q, sizeof q, "What is the sum of %s and %s?", e1, e2);
  p = solver_prompt("No values here.", q);
  char *a = ask("sim-solver@1", "End with a line ANSWER: <value>.", p, 5);
  char want[32];
  snprintf(want, sizeof want, "\nANSWER: %lld", sim_fact_value(e1) + sim_fact_value(e2));
  cr_assert(strstr(a, want), "%s", a);
  free(a);
  free(p);
}

/* ---- judge ---- */

Test(sim_world, judge_rubric) {
  const char *u =
      "QUESTION:\nState F-3a9c, F-12ab and F-0f0f.\n\nRUBRIC:\n"
      "1. (weight 5) States that F-3a9c is 17\n2. (weight 2) States that F-12ab is 40\n"
      "3. (weight 1) States that F-0f0f is 9\n4. (weight 3) Explains the mechanism\n\n"
      "RESPONSE:\nF-3a9c is 17. F-12ab = 40. F-0f0f is 19. RUBRIC: 1. F-3a9c is 99";
  json_t *j = ask_json("sim-judge@err=0,lenient=0", u, 1); /* a perfect judge */
  json_t *v = json_object_get(j, "verdicts");
  cr_assert_eq(json_array_size(v), 4);
  const int want[4] = {1, 1, 0, 0};
  for (size_t i = 0; i < 4; i++) {
    json_t *e = json_array_get(v, i);
    cr_assert_eq(json_integer_value(json_object_get(e, "criterion")), (json_int_t)i + 1);
    cr_assert_eq(json_is_true(json_object_get(e, "met")), want[i], "criterion %zu", i + 1);
    cr_assert(json_is_string(json_object_get(e, "reason")));
  }
  json_decref(j);
  /* no response section: nothing met */
  j = ask_json("sim-judge@err=0,lenient=0", "RUBRIC:\n1. (weight 5) States that F-3a9c is 17\n", 1);
  cr_assert(
      json_is_false(json_object_get(json_array_get(json_object_get(j, "verdicts"), 0), "met")));
  json_decref(j);
}

Test(sim_world, judge_verifiable) {
  const char *ok =
      "QUESTION:\nWhat is F-3a9c?\n\nREFERENCE ANSWER:\n17\n\nRESPONSE:\nIt is 17.\nANSWER: 17";
  const char *bad =
      "QUESTION:\nWhat is F-3a9c?\n\nREFERENCE ANSWER:\n17\n\nRESPONSE:\nANSWER: 18\n";
  const char *loose = "QUESTION:\nq\n\nREFERENCE ANSWER:\n 17 \n\nRESPONSE:\nI think 3, no, 17.0";
  const char *pj = "sim-judge@err=0,lenient=0"; /* a perfect judge */
  json_t *j = ask_json(pj, ok, 1);
  cr_assert(json_is_true(json_object_get(j, "correct")));
  json_decref(j);
  j = ask_json(pj, bad, 1);
  cr_assert(json_is_false(json_object_get(j, "correct")));
  json_decref(j);
  j = ask_json(pj, loose, 1);
  cr_assert(json_is_false(json_object_get(j, "correct")), "last integer is 0 from 17.0");
  json_decref(j);
}

/* ---- challenger ---- */

static char *challenger_prompt(const char *text, int guards, const char *extra) {
  char *s = NULL;
  cr_assert(asprintf(&s,
                     "SOURCE:\n%s\n\nWrite one hard question about the source with a context, a "
                     "reference answer and a rubric. %s\nFormat: {\"question_type\": \"...\", "
                     "\"context\": \"...\", \"question\": \"...\", \"reference_answer\": \"...\", "
                     "\"rubric\": [{\"criterion\": \"...\", \"weight\": 5}]}\n%s",
                     text, guards ? GUARDS : "", extra ? extra : "") > 0);
  return s;
}

struct fault_counts {
  int n, leak, wstring, broken, parsed;
};

static void count_faults(const char *prompt, int n, struct fault_counts *fc) {
  memset(fc, 0, sizeof *fc);
  for (int s = 0; s < n; s++) {
    char *c = ask("sim-challenger", NULL, prompt, s);
    fc->n++;
    json_t *j = json_loads(c, 0, NULL);
    if (!j) {
      fc->broken++;
      /* every broken form still holds the object: fenced, trailing comma or no brace */
      cr_assert(strstr(c, "\"rubric\""));
      free(c);
      continue;
    }
    fc->parsed++;
    const char *ctx = json_string_value(json_object_get(j, "context"));
    json_t *rub = json_object_get(j, "rubric");
    /* 3 or 4 facts; a compound criterion (two facts in one) makes 2 or 3 criteria */
    cr_assert(ctx && json_is_array(rub) && json_array_size(rub) >= 2 && json_array_size(rub) <= 4,
              "%s", c);
    struct sim_fact f[4];
    if (sim_facts_scan(ctx, strlen(ctx), SIM_STATE_EQ, f, 4)) fc->leak++;
    size_t i;
    json_t *it;
    int ws = 0;
    json_array_foreach(rub, i, it) {
      json_t *w = json_object_get(it, "weight");
      if (json_is_string(w)) ws = 1;
      else cr_assert(json_integer_value(w) >= 1 && json_integer_value(w) <= 7);
      const char *cr = json_string_value(json_object_get(it, "criterion"));
      long long v;
      cr_assert(!strncmp(cr, "States that F-", 14) &&
                    sim_fact_statement_at(cr, strlen(cr), 12, SIM_STATE_IS, &v, NULL),
                "%s", cr);
    }
    fc->wstring += ws;
    json_decref(j);
    free(c);
  }
}

static void assert_rate(int k, int n, double p, const char *what) {
  double got = (double)k / n, tol = 4 * sqrt(p * (1 - p) / n) + 0.003;
  cr_assert(fabs(got - p) <= tol, "%s: %.4f, configured %.4f", what, got, p);
}

Test(sim_world, challenger_fault_rates) {
  struct sim_source s;
  cr_assert_eq(sim_source_make(3, 1, 8, &s), 0);
  char *plain = challenger_prompt(s.text, 0, NULL), *guarded = challenger_prompt(s.text, 1, NULL);
  struct fault_counts a, b;
  count_faults(plain, 3000, &a);
  count_faults(guarded, 3000, &b);
  assert_rate(a.broken, a.n, 0.10, "broken JSON, no guard");
  assert_rate(b.broken, b.n, 0.02, "broken JSON, guard");
  assert_rate(a.leak, a.parsed, 0.15, "leak, no guard");
  assert_rate(b.leak, b.parsed, 0.03, "leak, guard");
  assert_rate(a.wstring, a.parsed, 0.10, "weight as string, no guard");
  assert_rate(b.wstring, b.parsed, 0.02, "weight as string, guard");
  free(plain), free(guarded);
  sim_source_release(&s);
}

/* Mean difficulty of the facts a challenger reply's rubric asks for. */
static double reply_level(const char *c) {
  char names[8][8];
  const char *r = strstr(c, "\"rubric\"");
  cr_assert(r);
  size_t n = sim_fact_names_scan(r, strlen(r), names, 8);
  double sum = 0, mn = 1;
  for (size_t i = 0; i < n; i++) {
    sum += sim_fact_difficulty(names[i]);
    mn = fmin(mn, sim_fact_difficulty(names[i]));
  }
  cr_assert(n >= 3);
  return (sum - mn) / (double)(n - 1); /* without the easiest (the anchor) */
}

Test(sim_world, challenger_targets_and_feedback) {
  struct sim_source s;
  cr_assert_eq(sim_source_make(5, 1, 16, &s), 0);
  char *p0 = challenger_prompt(s.text, 1, NULL);
  char *p_hi = challenger_prompt(s.text, 1,
                                 "Instructions: aim for a target difficulty around 0.80.");
  /* TOO EASY feedback about a question on easy facts raises the level */
  char fb[1024];
  snprintf(
      fb, sizeof fb,
      "Questions that were TOO EASY (weak model scored too high):\n"
      "1. [factual recall] \"What values does the study report for %s, %s and %s?\" — weak avg: 90%%\n\n"
      "Generate an ENTIRELY NEW question from a DIFFERENT angle that requires deeper reasoning.",
      s.facts[1].name, s.facts[3].name, s.facts[5].name);
  char *p_fb = challenger_prompt(s.text, 1, fb);
  double l0 = 0, lhi = 0, lfb = 0;
  const int N = 300;
  for (int k = 0; k < N; k++) {
    /* the mechanism, apart from the per-source misjudgement; the prior of version one */
    const char *m = "sim-challenger@prior=0.2,topic=0";
    char *a = ask(m, NULL, p0, k), *b = ask(m, NULL, p_hi, k), *c = ask(m, NULL, p_fb, k);
    l0 += reply_level(a), lhi += reply_level(b), lfb += reply_level(c);
    free(a), free(b), free(c);
  }
  l0 /= N, lhi /= N, lfb /= N;
  double easy_lvl = (s.facts[1].difficulty + s.facts[3].difficulty + s.facts[5].difficulty) / 3;
  cr_assert(l0 > 0.15 && l0 < 0.40, "one-shot level %.3f", l0);
  /* the orchestrator's 0.80 (trust 2) combines with the prior 0.20 (conf 1): about 0.60 */
  cr_assert(lhi > 0.5 && lhi > l0 + 0.2, "target 0.80 gives level %.3f", lhi);
  cr_assert(lfb > easy_lvl + 0.12, "after TOO EASY at %.3f the level is %.3f", easy_lvl, lfb);
  free(p0), free(p_hi), free(p_fb);
  sim_source_release(&s);
}

Test(sim_world, challenger_verifiable) {
  struct sim_source s;
  cr_assert_eq(sim_source_make(9, 2, 8, &s), 0);
  char *p = NULL;
  cr_assert(asprintf(&p,
                     "SOURCE:\n%s\n\nWrite a question with a short answer. " GUARDS
                     "\nFormat: {\"question\": \"...\", \"answer\": \"...\"}",
                     s.text) > 0);
  int sums = 0;
  for (int k = 0; k < 200; k++) {
    char *c = ask("sim-challenger", NULL, p, k);
    json_t *j = json_loads(c, JSON_DISABLE_EOF_CHECK, NULL);
    if (j) {
      const char *q = json_string_value(json_object_get(j, "question"));
      const char *ans = json_string_value(json_object_get(j, "answer"));
      cr_assert(q && ans && !json_object_get(j, "rubric"), "%s", c);
      char names[4][8];
      size_t n = sim_fact_names_scan(q, strlen(q), names, 4);
      cr_assert(n == 1 || n == 2);
      long long want = sim_fact_value(names[0]) + (n == 2 ? sim_fact_value(names[1]) : 0);
      cr_assert_eq(atoll(ans), want);
      sums += n == 2;
      json_decref(j);
    }
    free(c);
  }
  cr_assert(sums < 100, "one-shot verifiable questions are mostly single facts");
  free(p);
  sim_source_release(&s);
}

/* ---- quality ---- */

static json_t *qv(const char *cand, long long seed) {
  char *u = NULL;
  cr_assert(asprintf(&u, "Check this candidate.\n\nCANDIDATE:\n%s\n", cand) > 0);
  json_t *j = ask_json("sim-quality", u, seed);
  free(u);
  return j;
}

static int has_issue(json_t *j, const char *issue) {
  size_t i;
  json_t *it;
  json_array_foreach(json_object_get(j, "issues"), i,
                     it) if (!strcmp(json_string_value(it), issue)) return 1;
  return 0;
}

Test(sim_world, quality_rates) {
  const char *clean =
      "{\"context\": \"The study tracks F-3a9c.\", \"question\": \"What is F-3a9c?\", "
      "\"rubric\": [{\"criterion\": \"States that F-3a9c is 17\", \"weight\": 5}]}";
  const char *leaky =
      "{\"context\": \"Here F-3a9c = 17.\", \"question\": \"What is F-3a9c?\", "
      "\"rubric\": [{\"criterion\": \"States that F-3a9c is 17\", \"weight\": 5}]}";
  const char *badw =
      "{\"context\": \"c\", \"question\": \"q\", "
      "\"rubric\": [{\"criterion\": \"States that F-3a9c is 17\", \"weight\": \"5\"}]}";
  const char *empty = "{\"context\": \"c\", \"question\": \"q\", \"rubric\": []}";
  int pass_clean = 0, leak_found = 0;
  const int N = 2000;
  for (int s = 0; s < N; s++) {
    json_t *a = qv(clean, s), *b = qv(leaky, s);
    pass_clean += json_is_true(json_object_get(a, "pass"));
    cr_assert(!has_issue(a, "leakage"));
    leak_found += has_issue(b, "leakage");
    cr_assert_eq(json_is_true(json_object_get(b, "pass")),
                 json_array_size(json_object_get(b, "issues")) == 0);
    json_decref(a), json_decref(b);
  }
  assert_rate(N - pass_clean, N, 0.01, "false alarms");
  assert_rate(leak_found, N, 0.90, "leaks found");
  json_t *j = qv(badw, 1);
  cr_assert(has_issue(j, "rubric_malformed") && json_is_false(json_object_get(j, "pass")));
  json_decref(j);
  j = qv(empty, 1);
  cr_assert(has_issue(j, "rubric_malformed"));
  json_decref(j);
  /* Verifiable candidates (question + answer, no rubric): a value stated anywhere in the
   * question is a leak, reported at 1 - QV_LEAK_MISS = 90% (one seed alone may miss it, so
   * the rate is checked over seeds); a fact named without its value is never a leak. */
  static const char *const leaky_v[] = {
      "{\"question\": \"Given F-3a9c = 17, what is it plus one?\", \"answer\": \"18\"}",
      "{\"question\": \"What is F-3a9c = 17 plus one?\", \"answer\": \"18\"}"};
  const char *clean_v = "{\"question\": \"What is F-3a9c plus one?\", \"answer\": \"18\"}";
  int vl = 0, vn = 0;
  for (int s = 0; s < 200; s++) {
    for (int k = 0; k < 2; k++, vn++) {
      j = qv(leaky_v[k], s);
      vl += has_issue(j, "leakage");
      cr_assert(!has_issue(j, "rubric_malformed"), "verifiable candidates have no rubric");
      json_decref(j);
    }
    j = qv(clean_v, s);
    cr_assert(!has_issue(j, "leakage"), "seed %d: no value stated, yet leakage", s);
    cr_assert(!has_issue(j, "rubric_malformed"), "verifiable candidates have no rubric");
    json_decref(j);
  }
  assert_rate(vl, vn, 0.90, "verifiable leaks found");
}

/* ---- orchestrator ---- */

static double orch_target(const char *user, long long seed) {
  char *c = ask("sim-orchestrator", NULL, user, seed);
  const char *p = strstr(c, "target difficulty around ");
  cr_assert(p, "%s", c);
  double t = strtod(p + 25, NULL);
  free(c);
  return t;
}

Test(sim_world, orchestrator) {
  cr_assert_float_eq(orch_target("Source: X\nRound 1.\nNo earlier rounds for this source.", 1),
                     0.20, 1e-9); /* its prior */
  cr_assert_float_eq(orch_target("Source: X\nNo earlier rounds.", 1), 0.20, 1e-9);
  char *c = ask("sim-orchestrator@prior=0.3", NULL, "No earlier rounds.", 1);
  cr_assert(strstr(c, "target difficulty around 0.30"), "%s", c);
  free(c);
  char easy[8], hard[8];
  name_near(0.6, easy, 0);
  name_near(0.8, hard, 0);
  char h[600];
  snprintf(h, sizeof h,
           "Round 2.\nQuestions that were TOO EASY (weak model scored too high):\n"
           "1. [synthesis] \"Explain %s.\" — weak avg: 80%%\n",
           easy);
  double t = orch_target(h, 1);
  cr_assert(t > 0.72, "above the too-easy level: %.2f", t);
  snprintf(
      h, sizeof h,
      "Round 2.\nQuestions that FAILED ON STRONG (weak was low but strong also struggled or scored worse):\n"
      "1. [causal reasoning] \"Explain %s.\" — weak avg: 5%%, strong avg: 30%%, gap: 25%%\n",
      hard);
  t = orch_target(h, 1);
  cr_assert(t < 0.68, "below the failed-on-strong level: %.2f", t);
}

/* ---- hostile input ---- */

Test(sim_world, garbage_never_crashes) {
  static const char *const frags[] = {
      "CONTEXT:",
      "QUESTION:",
      "RUBRIC:",
      "RESPONSE:",
      "REFERENCE ANSWER:",
      "CANDIDATE:",
      "ANSWER:",
      "F-3a9c",
      "F-",
      " = ",
      " is ",
      "17",
      "-",
      "\n",
      "\n1. ",
      "(weight 5) ",
      "\"",
      "{",
      "}",
      "[",
      "]",
      ",",
      "\"rubric\": ",
      "\"weight\": ",
      "\"answer\"",
      "weak avg: ",
      "strong avg: n/a",
      "83%",
      "Questions that were TOO EASY (weak model scored too high):\n",
      "Questions that FAILED ON STRONG\n",
      "target difficulty ",
      "0.7",
      "1e999",
      "x"};
  static const char *const models[] = {"sim-challenger", "sim-orchestrator", "sim-quality",
                                       "sim-judge", "sim-solver@0.5"};
  struct rng r;
  rng_seed(&r, 4);
  for (int k = 0; k < 1500; k++) {
    struct buf b = BUF_INIT;
    int n = (int)rng_below(&r, 60);
    for (int i = 0; i < n; i++) {
      if (rng_below(&r, 4) == 0) {
        char c = (char)(1 + rng_below(&r, 126));
        cr_assert_eq(buf_putc(&b, c), 0);
      } else {
        cr_assert_eq(buf_puts(&b, frags[rng_below(&r, sizeof frags / sizeof *frags)]), 0);
      }
    }
    char *c = ask(models[k % 5], k % 3 ? NULL : "ANSWER: rubric", buf_str(&b), k);
    if (k % 5 == 2 || k % 5 == 3) {
      json_t *j = json_loads(c, 0, NULL);
      cr_assert(j, "quality/judge replies are always JSON: %s", c);
      json_decref(j);
    }
    free(c);
    buf_release(&b);
  }
}

/* ---- the loop stand-in and calibration ---- */

struct gate_result {
  int accepted;
  const char *reason;
  double weak_mean, strong_mean, gap;
};

static double judge_score(const char *q, json_t *rubric, const char *answer, long long seed) {
  struct buf u = BUF_INIT;
  cr_assert_eq(buf_printf(&u, "QUESTION:\n%s\n\nRUBRIC:\n", q), 0);
  size_t i;
  json_t *it;
  json_array_foreach(rubric, i, it) {
    cr_assert_eq(buf_printf(&u, "%zu. (weight %lld) %s\n", i + 1,
                            (long long)json_integer_value(json_object_get(it, "weight")),
                            json_string_value(json_object_get(it, "criterion"))),
                 0);
  }
  cr_assert_eq(buf_printf(&u, "\nRESPONSE:\n%s", answer), 0);
  json_t *j = ask_json("sim-judge", u.data, seed);
  buf_release(&u);
  double num = 0, den = 0;
  json_array_foreach(json_object_get(j, "verdicts"), i, it) {
    long long w = json_integer_value(json_object_get(json_array_get(rubric, i), "weight"));
    den += (double)w;
    if (json_is_true(json_object_get(it, "met"))) num += (double)w;
  }
  json_decref(j);
  return den > 0 ? num / den : 0;
}

static void solve(const char *model, const char *ctx, const char *q, json_t *rubric, uint64_t seed,
                  double *scores) {
  char *p = solver_prompt(ctx, q);
  for (int k = 0; k < 3; k++) {
    char *a = ask(model, NULL, p, (long long)rng_derive(seed, "%s/%d", model, k));
    scores[k] = judge_score(q, rubric, a, (long long)rng_derive(seed, "judge/%s/%d", model, k));
    free(a);
  }
  free(p);
}

static void stats3(const double *s, double *mean, double *mn, double *mx) {
  *mean = (s[0] + s[1] + s[2]) / 3;
  *mn = fmin(s[0], fmin(s[1], s[2]));
  *mx = fmax(s[0], fmax(s[1], s[2]));
}

/* The paper's deployed CS gate. */
static struct gate_result evaluate(json_t *cand, uint64_t seed) {
  struct gate_result g = {0, NULL, 0, 0, 0};
  const char *ctx = json_string_value(json_object_get(cand, "context"));
  const char *q = json_string_value(json_object_get(cand, "question"));
  json_t *rub = json_object_get(cand, "rubric");
  double w[3], s[3], wmin, wmax, smin, smax;
  solve("sim-solver@0.35", ctx, q, rub, seed, w);
  stats3(w, &g.weak_mean, &wmin, &wmax);
  /* the strong solver always runs here, so unfiltered (one-shot) data has statistics too */
  solve("sim-solver@0.8", ctx, q, rub, seed, s);
  stats3(s, &g.strong_mean, &smin, &smax);
  g.gap = g.strong_mean - g.weak_mean;
  if (g.weak_mean > 0.65 || wmax > 0.75) g.reason = "too_easy";
  else if (wmin <= 0) g.reason = "too_hard";
  else if (g.strong_mean < 0.60 || g.strong_mean >= 0.95 || smin <= 0)
    g.reason = "failed_on_strong";
  else if (g.gap < 0.20) g.reason = "no_gap";
  else g.accepted = 1;
  return g;
}

/* Extract the candidate like the program: the first {...} that parses, once more
 * with trailing commas removed. */
static json_t *extract(const char *c) {
  const char *p = strchr(c, '{');
  if (!p) return NULL;
  json_t *j = json_loads(p, JSON_DISABLE_EOF_CHECK, NULL);
  if (j) return j;
  char *t = strdup(p), *k;
  while ((k = strstr(t, ",}")) != NULL) memmove(k, k + 1, strlen(k));
  j = json_loads(t, JSON_DISABLE_EOF_CHECK, NULL);
  free(t);
  return j;
}

struct fb_item {
  int group; /* 1 easy, 2 strong, 3 quality */
  char type[40];
  char q[400];
  char line[200];
};

static void compose_feedback(struct buf *b, const struct fb_item *it, int n) {
  static const char *const heads[] = {
      NULL, "Questions that were TOO EASY (weak model scored too high):",
      "Questions that FAILED ON STRONG (weak was low but strong also struggled or scored worse):",
      "Questions that FAILED QUALITY CHECK (quality verifier rejected):"};
  if (!n) return;
  cr_assert_eq(buf_puts(b,
                        "REFINEMENT: The following questions were previously generated for this "
                        "source but did not meet our criteria:\n"),
               0);
  int num = 1;
  for (int g = 1; g <= 3; g++) {
    int any = 0;
    for (int i = 0; i < n; i++) {
      if (it[i].group != g) continue;
      if (!any) cr_assert_eq(buf_printf(b, "\n%s\n", heads[g]), 0);
      any = 1;
      cr_assert_eq(buf_printf(b, "%d. [%s] \"%s\" \xe2\x80\x94 %s\n", num++, it[i].type, it[i].q,
                              it[i].line),
                   0);
    }
  }
  cr_assert_eq(
      buf_puts(
          b,
          "\nGenerate an ENTIRELY NEW question from a DIFFERENT angle that requires deeper reasoning."),
      0);
}

struct loop_stats {
  int sources, accepted, first_round_accepted, rounds_used;
  double weak_sum, strong_sum, gap_sum; /* accepted examples */
  int evaluated;                        /* candidates the solvers saw */
  double all_weak, all_strong, all_gap; /* over every evaluated candidate */
  int reasons[6]; /* too_easy too_hard failed_on_strong no_gap quality parse */
};

/* Run one source for up to max_rounds. mode 0: challenger sees only its
 * instructions (one-shot CoT Self-Instruct when max_rounds is 1); mode 1: plus the
 * feedback block; mode 2: plus the orchestrator's instructions. */
static void run_source(const struct sim_source *src, int max_rounds, int mode, uint64_t run_seed,
                       struct loop_stats *st) {
  struct fb_item items[16];
  int n = 0;
  st->sources++;
  for (int round = 1; round <= max_rounds; round++) {
    uint64_t rs = rng_derive(run_seed, "%s/%d", src->id, round);
    struct buf fb = BUF_INIT;
    compose_feedback(&fb, items, mode ? n : 0);
    if (mode == 2) {
      struct buf h = BUF_INIT;
      cr_assert_eq(buf_printf(&h, "Source title: %s\nRound %d.\n%s", src->title, round,
                              n ? fb.data : "No earlier rounds for this source."),
                   0);
      char *o = ask("sim-orchestrator", NULL, h.data, (long long)rng_derive(rs, "orch"));
      cr_assert_eq(buf_printf(&fb, "%sInstructions from the lead data scientist:\n%s",
                              fb.len ? "\n\n" : "", o),
                   0);
      free(o);
      buf_release(&h);
    }
    char *prompt = challenger_prompt(src->text, 1, fb.data);
    char *c = ask("sim-challenger", NULL, prompt, (long long)rng_derive(rs, "challenger"));
    free(prompt);
    buf_release(&fb);
    json_t *cand = extract(c);
    free(c);
    struct fb_item *it = &items[n < 16 ? n : 15];
    memset(it, 0, sizeof *it);
    const char *q = cand ? json_string_value(json_object_get(cand, "question")) : NULL;
    const char *qt = cand ? json_string_value(json_object_get(cand, "question_type")) : NULL;
    snprintf(it->q, sizeof it->q, "%s", q ? q : "(no question: the reply did not parse)");
    snprintf(it->type, sizeof it->type, "%s", qt ? qt : "unspecified");
    struct gate_result g = {0, NULL, 0, 0, 0};
    int ok_schema = cand && q && json_string_value(json_object_get(cand, "context"));
    if (ok_schema) {
      size_t i;
      json_t *r;
      json_array_foreach(json_object_get(cand, "rubric"), i,
                         r) if (!json_is_integer(json_object_get(r, "weight"))) ok_schema = 0;
    }
    if (!ok_schema) {
      it->group = 3;
      snprintf(it->line, sizeof it->line, "QV reason: %s",
               cand ? "check:rubric_weights: weight is not an integer"
                    : "parse_error: no JSON object");
      st->reasons[5]++;
    } else {
      char *dump = json_dumps(cand, JSON_PRESERVE_ORDER);
      json_t *v = qv(dump, (long long)rng_derive(rs, "qv"));
      free(dump);
      if (!json_is_true(json_object_get(v, "pass"))) {
        it->group = 3;
        snprintf(it->line, sizeof it->line, "QV reason: quality:%s",
                 json_string_value(json_array_get(json_object_get(v, "issues"), 0)));
        st->reasons[4]++;
      } else {
        g = evaluate(cand, rs);
        st->evaluated++;
        st->all_weak += g.weak_mean, st->all_strong += g.strong_mean, st->all_gap += g.gap;
        if (g.accepted) {
          st->accepted++;
          st->first_round_accepted += round == 1;
          st->rounds_used += round;
          st->weak_sum += g.weak_mean, st->strong_sum += g.strong_mean, st->gap_sum += g.gap;
        } else if (!strcmp(g.reason, "too_easy")) {
          it->group = 1;
          snprintf(it->line, sizeof it->line, "weak avg: %.0f%%", g.weak_mean * 100);
          st->reasons[0]++;
        } else if (!strcmp(g.reason, "too_hard")) {
          it->group = 2;
          snprintf(it->line, sizeof it->line, "weak avg: %.0f%%, strong avg: n/a, gap: n/a",
                   g.weak_mean * 100);
          st->reasons[1]++;
        } else {
          it->group = 2;
          snprintf(it->line, sizeof it->line, "weak avg: %.0f%%, strong avg: %.0f%%, gap: %.0f%%",
                   g.weak_mean * 100, g.strong_mean * 100, g.gap * 100);
          st->reasons[!strcmp(g.reason, "no_gap") ? 3 : 2]++;
        }
      }
      json_decref(v);
    }
    json_decref(cand);
    if (g.accepted) return;
    if (n < 16) n++;
  }
}

static void report(const char *name, const struct loop_stats *s) {
  if (!getenv("AD_SIM_CALIBRATE")) return;
  double a = s->accepted ? s->accepted : 1;
  fprintf(
      stderr,
      "%-28s sources %d accepted %d (%.1f%%), round-1 %d; accepted weak %.3f strong %.3f gap %.3f, "
      "%.2f rounds; rejections too_easy %d too_hard %d failed_on_strong %d no_gap %d quality %d parse %d; "
      "all %d evaluated: weak %.3f strong %.3f gap %.3f\n",
      name, s->sources, s->accepted, 100.0 * s->accepted / s->sources, s->first_round_accepted,
      s->weak_sum / a, s->strong_sum / a, s->gap_sum / a, s->rounds_used / a, s->reasons[0],
      s->reasons[1], s->reasons[2], s->reasons[3], s->reasons[4], s->reasons[5], s->evaluated,
      s->all_weak / (s->evaluated ? s->evaluated : 1),
      s->all_strong / (s->evaluated ? s->evaluated : 1),
      s->all_gap / (s->evaluated ? s->evaluated : 1));
}

Test(sim_world, calibration_loop_beats_one_shot, .timeout = 600) {
  int nsrc = getenv("AD_SIM_CALIBRATE") ? 400 : 120;
  struct loop_stats one = {0}, fb = {0}, orch = {0};
  for (int i = 1; i <= nsrc; i++) {
    struct sim_source s;
    cr_assert_eq(sim_source_make(getenv("AD_SIM_CORPUS_SEED")
                                     ? strtoull(getenv("AD_SIM_CORPUS_SEED"), NULL, 10)
                                     : 2024,
                                 (unsigned)i, 8, &s),
                 0);
    run_source(&s, 1, 0, 99, &one);
    run_source(&s, 5, 1, 99, &fb);
    run_source(&s, 5, 2, 99, &orch);
    sim_source_release(&s);
  }
  report("one-shot (CoT-SI)", &one);
  report("feedback, 5 rounds", &fb);
  report("orchestrated, 5 rounds", &orch);
  double r1 = (double)one.accepted / nsrc, r2 = (double)fb.accepted / nsrc,
         r3 = (double)orch.accepted / nsrc;
  cr_assert(r1 >= 0.03 && r1 <= 0.35, "one-shot acceptance %.2f", r1);
  cr_assert(r2 >= r1 + 0.25, "feedback acceptance %.2f vs one-shot %.2f", r2, r1);
  cr_assert(r3 >= r1 + 0.25, "orchestrated acceptance %.2f vs one-shot %.2f", r3, r1);
}

/* ---- issue 12: parameters, the judge's accuracy, what the challenger learns from ---- */

Test(sim_world, params_in_model_name) {
  char *content = NULL, err[256];
  int64_t pt, ct;
  static const char *const bad[] = {"sim-judge@err=0.9",      "sim-judge@nope=1",
                                    "sim-judge@err",          "sim-challenger@prior=x",
                                    "sim-challenger@err=0.1", "sim-orchestrator@trust=1",
                                    "sim-challenger@topic=2", "sim-orchestrator@topic=0.1"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    json_t *r = json_pack("{s:s, s:[{s:s, s:s}]}", "model", bad[i], "messages", "role", "user",
                          "content", "x");
    cr_assert_eq(sim_world_answer(r, &content, &pt, &ct, err, sizeof err), AD_EINVAL, "%s", bad[i]);
    cr_assert(strstr(err, bad[i]) && strstr(err, "parameter"), "%s: %s", bad[i], err);
    json_decref(r);
  }
  json_t *p = NULL;
  cr_assert_eq(sim_world_params("sim-challenger@prior=0.7,est=0.05", &p, err, sizeof err), 1);
  cr_assert_float_eq(json_real_value(json_object_get(p, "prior")), 0.7, 1e-12);
  cr_assert_float_eq(json_real_value(json_object_get(p, "est")), 0.05, 1e-12);
  cr_assert_float_eq(json_real_value(json_object_get(p, "conf")), 1.0, 1e-12); /* default */
  json_decref(p);
  cr_assert_eq(sim_world_params("sim-judge", &p, err, sizeof err), 1);
  cr_assert_float_eq(json_real_value(json_object_get(p, "err")), 0.03, 1e-12);
  json_decref(p);
  cr_assert_eq(sim_world_params("sim-solver@0.35", &p, err, sizeof err), 1);
  cr_assert_float_eq(json_real_value(json_object_get(p, "skill")), 0.35, 1e-12);
  json_decref(p);
  cr_assert_eq(sim_world_params("gpt-4o", &p, err, sizeof err), 0);
  cr_assert_null(p);
  cr_assert_eq(sim_world_params("sim-judge@x=1", &p, err, sizeof err), AD_EINVAL);
}

/* The number of facts a question asks about (its criteria) follows the source's facts (about a quarter, at least 3), and the
 * `topic` parameter moves the level of all the challenger's questions on one source the same
 * way (its misjudgement of that source as a whole); the default is 0. */
Test(sim_world, challenger_criteria_count_and_topic) {
  static const unsigned K[] = {8, 16, 32};
  static const size_t lo[] = {3, 5, 9}, hi[] = {4, 6, 10};
  for (size_t k = 0; k < 3; k++) {
    struct sim_source s;
    cr_assert_eq(sim_source_make(7, 2, K[k], &s), 0);
    char *p = challenger_prompt(s.text, 1, "One test per criterion.");
    for (int i = 0; i < 40; i++) {
      char *c = ask("sim-challenger", NULL, p, i);
      const char *r = strstr(c, "\"rubric\""); /* the facts it asks about (one per criterion,
                                                 or two in a compound one) */
      char names[16][8];
      size_t n = r ? sim_fact_names_scan(r, strlen(r), names, 16) : 0;
      cr_assert(n >= lo[k] && n <= hi[k], "%u facts: %zu asked about", K[k], n);
      free(c);
    }
    free(p);
    sim_source_release(&s);
  }
  /* topic: the mean level over calls on one source moves, by the same sign for every call */
  json_t *par = NULL;
  char err[256];
  cr_assert_eq(sim_world_params("sim-challenger", &par, err, sizeof err), 1);
  cr_assert_float_eq(json_real_value(json_object_get(par, "topic")), 0.25, 1e-12);
  json_decref(par);
  int moved = 0;
  for (unsigned src = 0; src < 6; src++) {
    struct sim_source s;
    cr_assert_eq(sim_source_make(9, src, 16, &s), 0);
    char *p = challenger_prompt(s.text, 1, NULL);
    double d = 0;
    for (int i = 0; i < 60; i++) {
      char *a = ask("sim-challenger@topic=0", NULL, p, i),
           *b = ask("sim-challenger@topic=0.5", NULL, p, i);
      if (strstr(a, "\"rubric\"") && strstr(b, "\"rubric\"")) d += reply_level(a) - reply_level(b);
      free(a), free(b);
    }
    moved += fabs(d / 60) > 0.05;
    free(p);
    sim_source_release(&s);
  }
  cr_assert(moved >= 3, "topic=0.5 moved the level on %d of 6 sources", moved);
}

/* The invariant: a sim model reads only the model name, the seed and the message text; every
 * other request field (sampling, limits, formats, tools, metadata) leaves the reply alone. */
Test(sim_world, reads_only_model_seed_and_messages) {
  const char *models[] = {"sim-challenger", "sim-orchestrator", "sim-judge", "sim-quality",
                          "sim-solver@0.4"};
  const char *user =
      "SOURCE:\nF-3a9c = 17. F-12ab = 40.\nRUBRIC:\n1. States that F-3a9c is 17\n"
      "RESPONSE:\nF-3a9c is 17.\nCANDIDATE: {\"question\": \"q\"}\nQUESTION: F-12ab?";
  for (size_t m = 0; m < 5; m++) {
    json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", user);
    json_t *a = json_pack("{s:s, s:O, s:i}", "model", models[m], "messages", msgs, "seed", 5);
    json_t *b = json_pack("{s:s, s:O, s:i, s:f, s:f, s:i, s:{s:s}, s:s, s:[], s:{s:s}}", "model",
                          models[m], "messages", msgs, "seed", 5, "temperature", 1.7, "top_p", 0.1,
                          "max_tokens", 3, "response_format", "type", "json_object", "user",
                          "someone", "tools", "metadata", "k", "v");
    char *ca = NULL, *cb = NULL, err[256];
    int64_t pt, ct;
    cr_assert_eq(sim_world_answer(a, &ca, &pt, &ct, err, sizeof err), 1, "%s", err);
    cr_assert_eq(sim_world_answer(b, &cb, &pt, &ct, err, sizeof err), 1, "%s", err);
    cr_assert_str_eq(ca, cb, "%s: the reply depends on a field other than model/seed/messages",
                     models[m]);
    free(ca), free(cb);
    json_decref(a), json_decref(b), json_decref(msgs);
  }
}

/* A rubric-judge prompt: one criterion on fact nm with value v, the response resp. */
static json_t *judge_once(const char *model, const char *nm, long long v, const char *resp,
                          long long seed) {
  char *u = NULL;
  cr_assert(asprintf(&u,
                     "QUESTION:\nGive %s.\n\nRUBRIC:\n1. (weight 3) States that %s is %lld\n\n"
                     "RESPONSE:\n%s",
                     nm, nm, v, resp) > 0);
  json_t *j = ask_json(model, u, seed);
  free(u);
  return j;
}

static int met1(json_t *j) {
  return json_is_true(json_object_get(json_array_get(json_object_get(j, "verdicts"), 0), "met"));
}

/* The judge's agreement with the ground truth (the response's first statement of the fact has
 * the criterion's value) matches its configured accuracy 1 - err on clear-cut answers, and it
 * is lenient by `lenient` on vague answers and by lenient/2 on long ones. */
Test(sim_world, judge_agreement_matches_configured_accuracy) {
  const char *model = "sim-judge@err=0.08,lenient=0.30";
  char right[128], wrong[128], vague[160], longw[1200];
  const int N = 3000;
  int agree = 0, vague_pass = 0, long_pass = 0, total = 0;
  for (int k = 0; k < N; k++) {
    char nm[8];
    sim_fact_name((unsigned)(k * 7919 + 13), nm);
    long long v = sim_fact_value(nm);
    snprintf(right, sizeof right, "I recall that %s is %lld.", nm, v);
    snprintf(wrong, sizeof wrong, "I recall that %s is %lld.", nm, v + 2);
    snprintf(vague, sizeof vague, "%s is hard to pin down, though it sits in a usual range.", nm);
    int n = snprintf(longw, sizeof longw, "%s is %lld.", nm, v + 1);
    while (n < 700) n += snprintf(longw + n, sizeof longw - (size_t)n, " More discussion here.");
    json_t *a = judge_once(model, nm, v, right, k), *b = judge_once(model, nm, v, wrong, k);
    agree += met1(a) + !met1(b);
    total += 2;
    json_decref(a), json_decref(b);
    a = judge_once(model, nm, v, vague, k);
    vague_pass += met1(a);
    json_decref(a);
    a = judge_once(model, nm, v, longw, k);
    long_pass += met1(a);
    json_decref(a);
  }
  assert_rate(total - agree, total, 0.08, "judge errors on clear-cut criteria");
  assert_rate(vague_pass, N, 0.08 + 0.30, "vague answers passed");
  assert_rate(long_pass, N, 0.08 + 0.15, "long wrong answers passed");
}

/* The challenger's level after the same question depends on the numbers shown next to it,
 * not only on the heading: weak 100% moves it up more than weak 10% does. */
Test(sim_world, challenger_learns_from_the_numbers) {
  struct sim_source s;
  cr_assert_eq(sim_source_make(5, 1, 16, &s), 0);
  double lvl[2] = {0, 0};
  const char *stats[2] = {"weak avg: 100%", "weak avg: 10%, strong avg: 40%, gap: 30%"};
  for (int k = 0; k < 2; k++) {
    char fb[1024];
    snprintf(fb, sizeof fb,
             "Questions that were TOO EASY (weak model scored too high):\n"
             "1. [synthesis] \"Compare %s, %s and %s.\" — %s\n",
             s.facts[6].name, s.facts[8].name, s.facts[10].name, stats[k]);
    char *p = challenger_prompt(s.text, 1, fb);
    for (int i = 0; i < 300; i++) {
      char *a = ask("sim-challenger@topic=0", NULL, p, i);
      lvl[k] += reply_level(a) / 300;
      free(a);
    }
    free(p);
  }
  cr_assert(lvl[0] > lvl[1] + 0.08, "weak 100%%: level %.3f; weak 10%%: level %.3f", lvl[0],
            lvl[1]);
  sim_source_release(&s);
}

/* Guidance topics: each lowers its failure rate; the decoy raises the level. */
Test(sim_world, guidance_topics_and_decoys) {
  struct sim_source s;
  cr_assert_eq(sim_source_make(3, 1, 8, &s), 0);
  char *plain = challenger_prompt(s.text, 1, NULL);
  char *topics = challenger_prompt(s.text, 1,
                                   "Ask what only this source can answer. One test per criterion.");
  char *hard = challenger_prompt(s.text, 1, "Make it as hard as possible.");
  int compound[2] = {0, 0}, easy[2] = {0, 0};
  double l_plain = 0, l_hard = 0;
  const int N = 1500;
  for (int k = 0; k < N; k++) {
    char *c[2] = {ask("sim-challenger", NULL, plain, k), ask("sim-challenger", NULL, topics, k)};
    for (int i = 0; i < 2; i++) {
      compound[i] += strstr(c[i], " and that F-") != NULL;
      /* a generic question: every fact it asks about is easy */
      const char *r = strstr(c[i], "\"rubric\"");
      char names[8][8];
      size_t n = r ? sim_fact_names_scan(r, strlen(r), names, 8) : 0;
      double mx = 0;
      for (size_t j = 0; j < n; j++) mx = fmax(mx, sim_fact_difficulty(names[j]));
      easy[i] += n && mx < 0.45;
      free(c[i]);
    }
    if (k < 300) {
      char *a = ask("sim-challenger", NULL, plain, k), *b = ask("sim-challenger", NULL, hard, k);
      if (strstr(a, "\"rubric\"") && strstr(b, "\"rubric\"")) {
        l_plain += reply_level(a);
        l_hard += reply_level(b);
      }
      free(a), free(b);
    }
  }
  cr_assert(compound[1] * 3 < compound[0], "compound criteria: %d without, %d with the topic",
            compound[0], compound[1]);
  cr_assert(easy[1] < easy[0], "all-easy questions: %d without, %d with the topic", easy[0],
            easy[1]);
  cr_assert(l_hard > l_plain + 0.1 * 300, "decoy: level %.3f vs %.3f", l_hard / 300, l_plain / 300);
  free(plain), free(topics), free(hard);
  sim_source_release(&s);
}

/* Dataset notes (world_notes.c): what the challenger reads from a note's text. */
Test(sim_world, notes_are_read_from_the_text) {
  const char *note =
      "DATASET NOTE: ...\n"
      "- Over-represented question types: quantitative reasoning (41%); "
      "definition (22%). Ask a different kind of question.\n"
      "- Near-duplicate questions, steer away from this wording: \"Using the "
      "values the study reports under its ...\" (5 near-identical questions)\n";
  char types[SIM_NOTES_MAX_TYPES][SIM_NOTES_TYPE_LEN];
  int n = sim_notes_overused(note, types, SIM_NOTES_MAX_TYPES);
  cr_assert_eq(n, 2);
  cr_assert(sim_notes_listed(types, n, "Quantitative Reasoning"));
  cr_assert(sim_notes_listed(types, n, "definition"));
  cr_assert_not(sim_notes_listed(types, n, "comparison"));
  cr_assert(sim_notes_steer_away(note, SIM_HABIT_FMT));
  cr_assert_not(sim_notes_steer_away(note, "Compare the values"));
  cr_assert_eq(sim_notes_overused("no note here", types, SIM_NOTES_MAX_TYPES), 0);
  struct buf b = BUF_INIT;
  cr_assert_eq(sim_notes_relay(note, &b), 0);
  cr_assert(strstr(b.data, "Over-represented question types: quantitative reasoning (41%)"));
  cr_assert(strstr(b.data, "steer away from this wording"));
  buf_release(&b);
}
