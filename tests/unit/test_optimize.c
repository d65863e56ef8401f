/* test_optimize.c - `autodata optimize`'s pure parts: the locked evaluator (one test per
 * kind of refusal), the seeded splits, the recipe's optimize: section, and the sim world's
 * analyzer and implementer. The algorithm itself is exercised end to end by
 * tests/e2e/t_optimize.sh. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "optimize/lock.h"
#include "recipe/recipe.h"
#include "sim/world.h"
#include "util/jsonx.h"
#include "util/mem.h"

#include "helpers.h"

static char tmpdir[64], promptdir[128];

#define CHALLENGER                                                                       \
  "=== system ===\nWrite a question.\n=== user ===\n{{source_title}}\n{{source_text}}\n" \
  "{{#feedback}}{{feedback}}{{/feedback}}\n"

static void setup(void) {
  th_mkdtemp(tmpdir, sizeof tmpdir, "opt");
  snprintf(promptdir, sizeof promptdir, "%s/prompts", tmpdir);
  cr_assert_eq(mkdir(promptdir, 0755), 0);
  const char *names[] = {"orchestrator", "quality",          "solver",
                         "judge-rubric", "judge-verifiable", "challenger-verifiable"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char body[256];
    snprintf(body, sizeof body, "=== system ===\nYou are the %s.\n=== user ===\n{{task}}\n",
             names[i]);
    char file[64];
    snprintf(file, sizeof file, "%s.md", names[i]);
    th_write_file(th_path(promptdir, file), body);
  }
  th_write_file(th_path(promptdir, "challenger-rubric.md"), CHALLENGER);
}

static void teardown(void) { cr_assert_eq(th_rmtree(tmpdir), 0); }

TestSuite(optimize, .init = setup, .fini = teardown);

static const char *RECIPE =
    "name: opt\n"
    "sources: {path: s.jsonl}\n"
    "roles:\n"
    "  orchestrator: {endpoint: sim, model: sim-orchestrator}\n"
    "  challenger: {endpoint: sim, model: sim-challenger}\n"
    "  weak: {endpoint: sim, model: sim-solver@0.35}\n"
    "  strong: {endpoint: sim, model: sim-solver@0.8}\n"
    "  judge: {endpoint: sim, model: sim-judge}\n"
    "optimize:\n"
    "  max_prompt_chars: 400\n"
    "  analyzer: {endpoint: sim, model: sim-analyzer}\n"
    "  implementer: {endpoint: sim, model: sim-implementer}\n";

static int load_text(const char *text, struct recipe **r, struct recipe_diag *d) {
  struct recipe_load_opts o = {0};
  o.prompts_dir = promptdir;
  memset(d, 0, sizeof *d);
  return recipe_load_mem(text, strlen(text), th_path(tmpdir, "r.yaml"), &o, r, d);
}

static struct recipe *load(void) {
  struct recipe *r = NULL;
  struct recipe_diag d;
  int rc = load_text(RECIPE, &r, &d);
  cr_assert_eq(rc, 0, "load: %s", d.n ? d.msgs[0] : "");
  recipe_diag_release(&d);
  return r;
}

static json_t *base_prompts(const struct recipe *r) {
  return json_pack("{s:s,s:s}", "challenger", r->roles[RECIPE_ROLE_CHALLENGER].prompt.text,
                   "orchestrator", r->roles[RECIPE_ROLE_ORCHESTRATOR].prompt.text);
}

/* Check reply; returns 0 (mutant freed) or AD_EINVAL with the reason in reason. */
static int check(const char *reply, char *reason, size_t n, json_t **mutant_out) {
  struct recipe *r = load();
  json_t *base = base_prompts(r), *mutant = NULL;
  char *why = NULL;
  reason[0] = '\0';
  int rc = opt_lock_check(r, base, base, reply, &mutant, &why, reason, n);
  if (mutant_out) *mutant_out = mutant;
  else json_decref(mutant);
  free(why);
  json_decref(base);
  recipe_free(r);
  return rc;
}

/* A reply that sets prompt name to text (JSON-escaped here). */
static char *reply_with(const char *name, const char *text, const char *extra) {
  json_t *o = json_pack("{s:{s:s},s:s}", "prompts", name, text, "rationale", "a change");
  if (extra) json_object_set_new(o, extra, json_pack("{s:f}", "weak_max", 0.9));
  char *s = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  return s;
}

Test(optimize, lock_admits_an_editable_prompt_edit) {
  char reason[512];
  json_t *m = NULL;
  char *rep = reply_with("challenger", CHALLENGER "Keep the answer out of the context.\n", NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, &m), 0, "%s", reason);
  cr_assert(strstr(json_string_value(json_object_get(m, "challenger")), "Keep the answer"));
  cr_assert_not_null(json_object_get(m, "orchestrator"), "the parent's other prompts are kept");
  json_decref(m);
  free(rep);
}

Test(optimize, lock_refuses_a_solver_prompt_edit) {
  char reason[512];
  char *rep = reply_with("weak", "=== user ===\nAnswer vaguely.\n{{question}}\n", NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "edits the weak prompt, which is part of the locked evaluator"), "%s",
            reason);
  free(rep);
}

Test(optimize, lock_refuses_a_judge_prompt_edit) {
  char reason[512];
  char *rep = reply_with("judge", "=== user ===\nMark everything met.\n{{question}}\n", NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "edits the judge prompt"), "%s", reason);
  free(rep);
}

Test(optimize, lock_refuses_a_changed_bound_or_setting) {
  char reason[512];
  char *rep = reply_with("challenger", CHALLENGER "Be brief.\n", "accept");
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "changes 'accept'; only the texts of the editable prompts"), "%s",
            reason);
  free(rep);
  rep = reply_with("challenger", CHALLENGER "Be brief.\n", "temperature");
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "changes 'temperature'"), "%s", reason);
  free(rep);
}

Test(optimize, lock_refuses_a_dropped_template_variable) {
  char reason[512];
  char *rep = reply_with("challenger",
                         "=== system ===\nWrite a question.\n=== user ===\n{{source_title}}\n"
                         "{{#feedback}}{{feedback}}{{/feedback}}\n",
                         NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "no longer uses {{source_text}}"), "%s", reason);
  free(rep);
}

Test(optimize, lock_refuses_a_variable_the_role_is_not_given) {
  char reason[512];
  char *rep = reply_with("challenger", CHALLENGER "{{reference_answer}}\n", NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "reference_answer"), "%s", reason);
  free(rep);
}

Test(optimize, lock_refuses_a_prompt_over_the_size_limit) {
  char reason[512], big[600];
  memset(big, 'x', sizeof big - 1);
  big[sizeof big - 1] = '\0';
  char *text = xasprintf("%s%s\n", CHALLENGER, big);
  char *rep = reply_with("challenger", text, NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "over the limit of 400"), "%s", reason);
  free(rep);
  free(text);
}

Test(optimize, lock_refuses_bad_replies) {
  char reason[512];
  cr_assert_eq(check("I would rather not.", reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "not a JSON object"), "%s", reason);
  cr_assert_eq(check("{\"prompts\": {}}", reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "no \"prompts\" object"), "%s", reason);
  char *rep = reply_with("challenger", CHALLENGER, NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "changes nothing"), "%s", reason);
  free(rep);
  rep = reply_with("challenger", CHALLENGER "{{#feedback}}\n", NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "does not compile"), "%s", reason);
  free(rep);
  rep = reply_with("acceptance", "=== user ===\n{{task}}\n", NULL);
  cr_assert_eq(check(rep, reason, sizeof reason, NULL), AD_EINVAL);
  cr_assert(strstr(reason, "names 'acceptance', which is not a prompt of this recipe"), "%s",
            reason);
  free(rep);
}

Test(optimize, splits_are_disjoint_seeded_and_sized) {
  int a[100], b[100], c[100];
  cr_assert_eq(opt_split_draw(100, 7, 10, 20, 30, a, NULL, 0), 0);
  cr_assert_eq(opt_split_draw(100, 7, 10, 20, 30, b, NULL, 0), 0);
  cr_assert_eq(opt_split_draw(100, 8, 10, 20, 30, c, NULL, 0), 0);
  int n[4] = {0}, same = 1, differs = 0;
  for (int i = 0; i < 100; i++) {
    cr_assert(a[i] >= -1 && a[i] <= 2);
    n[a[i] + 1]++;
    same &= a[i] == b[i];
    differs |= a[i] != c[i];
  }
  cr_assert_eq(n[0], 40);
  cr_assert_eq(n[1], 10);
  cr_assert_eq(n[2], 20);
  cr_assert_eq(n[3], 30);
  cr_assert(same, "the same seed gives the same split");
  cr_assert(differs, "another seed gives another split");
  char err[256];
  cr_assert_eq(opt_split_draw(50, 7, 10, 20, 30, a, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "the corpus has 50 sources; the splits need 60"), "%s", err);
}

Test(optimize, recipe_section_defaults_and_errors) {
  struct recipe *r = load();
  const struct recipe_optimize *o = &r->optimize;
  cr_assert(o->present);
  cr_assert_eq(o->iterations, 30);
  cr_assert_eq(o->minibatch, 5);
  cr_assert_float_eq(o->temperature, 0.1, 1e-12);
  cr_assert(o->editable[RECIPE_ROLE_CHALLENGER] && o->editable[RECIPE_ROLE_ORCHESTRATOR] &&
            o->editable[RECIPE_ROLE_QUALITY]);
  cr_assert(!o->editable[RECIPE_ROLE_WEAK] && !o->editable[RECIPE_ROLE_JUDGE]);
  cr_assert_str_eq(o->analyzer.model, "sim-analyzer");
  cr_assert_eq(o->strategy, RECIPE_OPT_BOLTZMANN);
  cr_assert(!o->minibatch_gate);
  recipe_free(r);
  char *gepa = xasprintf("%s  strategy: pareto\n  minibatch_gate: true\n", RECIPE);
  struct recipe_diag d0;
  cr_assert_eq(load_text(gepa, &r, &d0), 0, "%s", d0.n ? d0.msgs[0] : "");
  cr_assert_eq(r->optimize.strategy, RECIPE_OPT_PARETO);
  cr_assert(r->optimize.minibatch_gate);
  cr_assert_eq(r->optimize.merge_every, 0, "no merges unless asked");
  cr_assert_str_eq(recipe_opt_strategy_name(r->optimize.strategy), "pareto");
  recipe_diag_release(&d0);
  recipe_free(r);
  free(gepa);
  char *merge = xasprintf("%s  merge_every: 4\n  parallel: 3\n", RECIPE);
  cr_assert_eq(load_text(merge, &r, &d0), 0, "%s", d0.n ? d0.msgs[0] : "");
  cr_assert_eq(r->optimize.merge_every, 4);
  cr_assert_eq(r->optimize.parallel, 3);
  recipe_diag_release(&d0);
  recipe_free(r);
  free(merge);
  char *bad = xasprintf("%s  editable: [challenger, judge]\n  minibatch: 50\n  merge_every: -1\n",
                        RECIPE);
  struct recipe_diag d;
  cr_assert_neq(load_text(bad, &r, &d), 0);
  int locked = 0, mb = 0, me = 0;
  for (int i = 0; i < d.n; i++) {
    locked |= strstr(d.msgs[i], "'judge' is part of the locked evaluator") != NULL;
    mb |= strstr(d.msgs[i], "minibatch (50) is larger than the train split (20)") != NULL;
    me |= strstr(d.msgs[i], "optimize.merge_every") != NULL;
  }
  cr_assert(locked && mb && me, "%s", d.n ? d.msgs[0] : "");
  recipe_diag_release(&d);
  free(bad);
}

static char *ask(const char *model, const char *user, int64_t seed) {
  json_t *req = json_pack("{s:s,s:I,s:[{s:s,s:s}]}", "model", model, "seed", (json_int_t)seed,
                          "messages", "role", "user", "content", user);
  char *content = NULL, err[256];
  int64_t pt, ct;
  cr_assert_eq(sim_world_answer(req, &content, &pt, &ct, err, sizeof err), 1, "%s", err);
  json_decref(req);
  return content;
}

Test(optimize, sim_analyzer_names_the_frequent_causes) {
  const char *traj =
      "TRAJECTORY source=a round=1 verdict=rejected reason=quality:leakage\n"
      "TRAJECTORY source=b round=1 verdict=rejected reason=quality:leakage\n"
      "TRAJECTORY source=c round=1 verdict=rejected reason=quality:leakage\n"
      "TRAJECTORY source=d round=1 verdict=accepted reason=none\n";
  int named = 0;
  for (int s = 0; s < 20; s++) {
    char *a = ask("sim-analyzer", traj, s);
    cr_assert(strstr(a, "ROOT-CAUSE ANALYSIS of 4 candidates"), "%s", a);
    named += strstr(a, "CAUSE leakage (3 of 4)") != NULL;
    char *b = ask("sim-analyzer", traj, s);
    cr_assert_str_eq(a, b, "the same request gets the same reply");
    free(a);
    free(b);
  }
  cr_assert(named >= 12 && named < 20, "named in %d of 20 (it misses a cause now and then)", named);
}

Test(optimize, sim_implementer_proposes_varied_json_edits) {
  const char *msg =
      "ANALYSIS:\nCAUSE leakage (3 of 4): the context states values.\n\n"
      "CURRENT PROMPTS:\n<<<PROMPT challenger>>>\n" CHALLENGER "<<<END PROMPT>>>\n";
  int fix = 0, weak = 0, parsed = 0;
  for (int s = 0; s < 60; s++) {
    char *c = ask("sim-implementer", msg, s);
    json_t *o = json_loads(c, 0, NULL);
    cr_assert_not_null(o, "%s", c);
    json_t *p = json_object_get(o, "prompts");
    cr_assert(json_is_object(p) && json_object_size(p) == 1, "%s", c);
    parsed++;
    const char *t = json_string_value(json_object_get(p, "challenger"));
    if (t && strstr(t, "Keep the answer out of the context")) fix++;
    if (json_object_get(p, "weak")) weak++;
    json_decref(o);
    free(c);
  }
  cr_assert_eq(parsed, 60);
  cr_assert(fix > 5 && fix < 50, "the leakage fix in %d of 60", fix);
  cr_assert(weak > 0 && weak < 12, "edits outside the surface in %d of 60", weak);
}

Test(optimize, sim_implementer_other_edits_the_other_prompts) {
  const char *msg =
      "ANALYSIS:\nCAUSE leakage (3 of 4): the context states values.\n\n"
      "CURRENT PROMPTS:\n<<<PROMPT challenger>>>\n" CHALLENGER
      "<<<END PROMPT>>>\n"
      "<<<PROMPT quality>>>\n=== user ===\nCheck {{candidate_json}}\n"
      "<<<END PROMPT>>>\n";
  int other = 0, chal = 0, plain = 0;
  for (int s = 0; s < 40; s++) {
    char *a = ask("sim-implementer", msg, s);
    plain += strstr(a, "\"quality\"") != NULL;
    free(a);
    char *c = ask("sim-implementer@other=0.5", msg, s);
    json_t *o = json_loads(c, 0, NULL);
    cr_assert_not_null(o, "%s", c);
    const json_t *p = json_object_get(o, "prompts");
    other += json_object_get(p, "quality") != NULL;
    chal += json_object_get(p, "challenger") != NULL;
    json_decref(o);
    free(c);
  }
  cr_assert(other > 8 && chal > 8, "quality %d, challenger %d of 40", other, chal);
  cr_assert_eq(plain, 0, "without @other it edits the challenger's prompt only");
  json_t *req = json_pack("{s:s,s:[{s:s,s:s}]}", "model", "sim-implementer@other=2", "messages",
                          "role", "user", "content", msg);
  char *content = NULL, err[256] = "";
  int64_t pt, ct;
  cr_assert_lt(sim_world_answer(req, &content, &pt, &ct, err, sizeof err), 0);
  cr_assert(strstr(err, "'other' must be a number in [0, 1]"), "%s", err);
  json_decref(req);
}
