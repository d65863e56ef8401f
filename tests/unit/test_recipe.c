/* test_recipe.c - recipe loading: defaults, presets, interpolation, endpoint
 * conversion, canonical JSON, and one test per kind of error message (with its
 * file:line:column and wording). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "recipe/recipe.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"

#include "helpers.h"

static char tmpdir[64], promptdir[128];

static void setup(void) {
  th_mkdtemp(tmpdir, sizeof tmpdir, "rcp");
  snprintf(promptdir, sizeof promptdir, "%s/prompts", tmpdir);
  cr_assert_eq(mkdir(promptdir, 0755), 0);
  const char *names[] = {"orchestrator", "challenger-rubric", "challenger-verifiable", "quality",
                         "solver",       "judge-rubric",      "judge-verifiable"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    char p[256], body[256];
    snprintf(p, sizeof p, "%s/%s.md", promptdir, names[i]);
    snprintf(body, sizeof body, "=== system ===\nYou are the %s.\n=== user ===\n{{task}}\n",
             names[i]);
    th_write_file(p, body);
  }
}

static void teardown(void) { cr_assert_eq(th_rmtree(tmpdir), 0); }

TestSuite(recipe, .init = setup, .fini = teardown);

static const char *fake_env(void *ud, const char *name) {
  (void)ud;
  if (!strcmp(name, "MODEL")) return "big-model";
  if (!strcmp(name, "TEMP")) return "0.25";
  if (!strcmp(name, "EMPTY")) return "";
  if (!strcmp(name, "TOKEN")) return "sk-secret-value";
  if (!strcmp(name, "VLLM_KEY")) return "vllm-key-value";
  return NULL;
}

static const char *MINIMAL =
    "name: demo\n"
    "sources:\n"
    "  path: data/papers.jsonl\n"
    "roles:\n"
    "  challenger: {endpoint: sim, model: sim-challenger}\n"
    "  weak: {endpoint: sim, model: sim-solver@0.35}\n"
    "  strong: {endpoint: sim, model: sim-solver@0.8}\n"
    "  judge: {endpoint: sim, model: sim-judge}\n";

/* Load text as <tmpdir>/recipe.yaml (in memory). */
/* The names a caller (the loop's method table) lets `method:` take. */
static const char *const g_methods[] = {"agentic", "self-instruct", "cot-self-instruct", NULL};

static int load(const char *text, struct recipe **r, struct recipe_diag *d) {
  struct recipe_load_opts o = {0};
  o.prompts_dir = promptdir;
  o.methods = g_methods;
  o.getenv_fn = fake_env;
  char vp[128];
  snprintf(vp, sizeof vp, "%s/recipe.yaml", tmpdir);
  memset(d, 0, sizeof *d);
  return recipe_load_mem(text, strlen(text), vp, &o, r, d);
}

static struct recipe *load_ok(const char *text) {
  struct recipe *r = NULL;
  struct recipe_diag d;
  int rc = load(text, &r, &d);
  cr_assert_eq(rc, 0, "load failed (%d): %s", rc, d.n ? d.msgs[0] : "");
  recipe_diag_release(&d);
  return r;
}

/* Expect failure and that some message equals "<tmpdir>/recipe.yaml:" + want. */
static void expect_error(const char *text, const char *want) {
  struct recipe *r = NULL;
  struct recipe_diag d;
  int rc = load(text, &r, &d);
  cr_assert_neq(rc, 0, "expected an error: %s", want);
  cr_assert_null(r);
  char full[1024];
  snprintf(full, sizeof full, "%s/recipe.yaml:%s", tmpdir, want);
  int found = 0;
  for (int i = 0; i < d.n && !found; i++) found = !strcmp(d.msgs[i], full);
  if (!found) {
    for (int i = 0; i < d.n; i++) fprintf(stderr, "  got: %s\n", d.msgs[i]);
    cr_assert_fail("missing error: %s", full);
  }
  recipe_diag_release(&d);
}

static char *with(const char *extra) {
  char *s = NULL;
  cr_assert_geq(asprintf(&s, "%s%s", MINIMAL, extra), 0);
  return s;
}

/* ---- defaults ---- */

Test(recipe, minimal_defaults) {
  struct recipe *r = load_ok(MINIMAL);
  cr_assert_str_eq(r->name, "demo");
  cr_assert_eq(r->task, CAND_TASK_RUBRIC);
  cr_assert_eq(r->seed, 1);
  cr_assert_str_eq(r->method, "agentic");
  cr_assert_eq(r->concurrency, 64);
  cr_assert_str_eq(r->goal, "");
  cr_assert_str_eq(r->sources.path, "data/papers.jsonl");
  cr_assert_eq(r->sources.format, SRC_FORMAT_AUTO);
  cr_assert_str_eq(r->sources.id_field, "id");
  cr_assert_str_eq(r->sources.text_field, "text");
  cr_assert_eq(r->sources.max_chars, 20000);
  cr_assert_eq(r->sources.limit, 0);
  cr_assert_eq(r->sources.shuffle_seed, 1, "shuffle_seed defaults to seed");
  /* sim is built in */
  cr_assert_eq(r->n_endpoints, 1);
  cr_assert_str_eq(r->endpoints[0].name, "sim");
  cr_assert_str_eq(r->endpoints[0].base_urls[0], "sim");
  cr_assert_eq(r->endpoints[0].builtin, 1);
  /* roles */
  const struct recipe_role *ro = r->roles;
  cr_assert_eq(ro[RECIPE_ROLE_ORCHESTRATOR].present, 0, "orchestrator absent -> off");
  cr_assert_eq(ro[RECIPE_ROLE_QUALITY].present, 1, "quality defaults on");
  cr_assert_str_eq(ro[RECIPE_ROLE_QUALITY].model, "sim-judge", "quality uses the judge's model");
  cr_assert_eq(ro[RECIPE_ROLE_WEAK].samples, 3);
  cr_assert_eq(ro[RECIPE_ROLE_STRONG].samples, 3);
  cr_assert_float_eq(ro[RECIPE_ROLE_WEAK].temperature, 1.0, 1e-9);
  cr_assert_float_eq(ro[RECIPE_ROLE_STRONG].temperature, 1.0, 1e-9);
  cr_assert_float_eq(ro[RECIPE_ROLE_CHALLENGER].temperature, 0.7, 1e-9);
  cr_assert_float_eq(ro[RECIPE_ROLE_JUDGE].temperature, 0.0, 1e-9);
  cr_assert_float_eq(ro[RECIPE_ROLE_QUALITY].temperature, 0.0, 1e-9);
  cr_assert_eq(ro[RECIPE_ROLE_WEAK].top_p, LLM_UNSET);
  cr_assert_eq(ro[RECIPE_ROLE_WEAK].endpoint_index, 0);
  /* default prompt files per role and task */
  cr_assert(strstr(ro[RECIPE_ROLE_CHALLENGER].prompt.path, "/challenger-rubric.md"));
  cr_assert(strstr(ro[RECIPE_ROLE_JUDGE].prompt.path, "/judge-rubric.md"));
  cr_assert(strstr(ro[RECIPE_ROLE_WEAK].prompt.path, "/solver.md"));
  cr_assert(strstr(ro[RECIPE_ROLE_QUALITY].prompt.path, "/quality.md"));
  char hex[65];
  sha256_hex(ro[RECIPE_ROLE_WEAK].prompt.text, ro[RECIPE_ROLE_WEAK].prompt.len, hex);
  cr_assert_str_eq(ro[RECIPE_ROLE_WEAK].prompt.sha256, hex);
  cr_assert_not_null(ro[RECIPE_ROLE_WEAK].prompt.tpl.system);
  cr_assert_not_null(ro[RECIPE_ROLE_WEAK].prompt.tpl.user);
  /* budgets, checks, output */
  cr_assert_eq(r->budgets.rounds_per_source, 15); /* the paper's cap (docs/recipes.md) */
  cr_assert_eq(r->budgets.examples_per_source, 1);
  cr_assert_eq(r->budgets.max_calls, 0);
  cr_assert_eq(r->checks.max_context_chars, 6000);
  cr_assert_eq(r->checks.leakage_ngram, 8);
  cr_assert_float_eq(r->checks.leakage_max_overlap, 0.5, 1e-9);
  cr_assert_eq(r->checks.rubric_min, 1);
  cr_assert_eq(r->checks.rubric_max, 20);
  cr_assert_eq(r->checks.max_weight, 7);
  cr_assert_eq(r->checks.dedup, 1);
  cr_assert_eq(r->verifiable_matcher, SCORE_AUTO);
  cr_assert_str_eq(r->output_folder, "runs/demo");
  cr_assert_str_eq(r->store_path, "runs/demo/store.db");
  sha256_hex(MINIMAL, strlen(MINIMAL), hex);
  cr_assert_str_eq(r->sha256, hex);
  recipe_free(r);
}

static void bounds_text(const struct accept_spec *s, char *out, size_t n) {
  out[0] = '\0';
  for (int i = 0; i < s->n; i++) {
    char b[64];
    accept_bound_format(&s->bounds[i], b, sizeof b);
    strncat(out, b, n - strlen(out) - 1);
    strncat(out, "; ", n - strlen(out) - 1);
  }
}

/* The paper's deployed CS gate: weak_avg <= 0.65, max_weak <= 0.75, no zero weak
 * score, 0.60 <= strong_avg < 0.95, no zero strong score, gap >= 0.20. */
static void assert_cs_deployed(const struct accept_spec *s) {
  struct accept_stats st;
  /* a textbook accept */
  memset(&st, 0, sizeof st);
  st.n_weak = st.n_strong = 3;
  double w[3] = {0.3, 0.5, 0.4}, g[3] = {0.8, 0.9, 0.7};
  memcpy(st.weak, w, sizeof w);
  memcpy(st.strong, g, sizeof g);
  st.strong_ran = 1;
  accept_stats_compute(&st, s->pass_threshold);
  char failed[128];
  cr_assert_null(accept_evaluate(s, &st, failed, sizeof failed), "should accept; failed %s",
                 failed);
  /* best weak above 0.75 -> too easy */
  st.weak[1] = 0.8;
  accept_stats_compute(&st, s->pass_threshold);
  cr_assert_not_null(accept_evaluate(s, &st, failed, sizeof failed));
  cr_assert_str_eq(failed, "weak_max <= 0.75");
  /* a weak zero is rejected */
  st.weak[1] = 0.0;
  accept_stats_compute(&st, s->pass_threshold);
  cr_assert_not_null(accept_evaluate(s, &st, failed, sizeof failed));
  cr_assert_str_eq(failed, "weak_min > 0");
  /* strong mean >= 0.95 is rejected */
  st.weak[1] = 0.5;
  st.strong[0] = st.strong[1] = st.strong[2] = 0.96;
  accept_stats_compute(&st, s->pass_threshold);
  cr_assert_not_null(accept_evaluate(s, &st, failed, sizeof failed));
  cr_assert_str_eq(failed, "strong_mean < 0.95");
}

Test(recipe, default_accept_is_the_papers_cs_deployed_gate) {
  struct recipe *r = load_ok(MINIMAL);
  cr_assert_str_eq(r->accept_preset, "");
  struct accept_spec preset;
  cr_assert_eq(recipe_accept_preset("cs-deployed", CAND_TASK_RUBRIC, &preset), 0);
  char a[1024], b[1024];
  bounds_text(&r->accept, a, sizeof a);
  bounds_text(&preset, b, sizeof b);
  cr_assert_str_eq(b,
                   "weak_mean <= 0.65; weak_max <= 0.75; weak_min > 0; strong_mean >= 0.6; "
                   "strong_mean < 0.95; strong_min > 0; gap >= 0.2; ");
  /* the default and the preset agree as predicates (order of bounds aside) */
  assert_cs_deployed(&r->accept);
  assert_cs_deployed(&preset);
  cr_assert_eq(r->accept.short_circuit, 1);
  recipe_free(r);
}

Test(recipe, presets) {
  char *t = with("accept: {preset: cs-prose}\n");
  struct recipe *r = load_ok(t);
  char b[1024];
  bounds_text(&r->accept, b, sizeof b);
  cr_assert_str_eq(b, "strong_mean >= 0.65; weak_mean < 0.5; gap >= 0.2; ");
  cr_assert_str_eq(r->accept_preset, "cs-prose");
  recipe_free(r);
  free(t);

  t = with("accept: math-exact\n"); /* scalar shorthand */
  r = load_ok(t);
  bounds_text(&r->accept, b, sizeof b);
  cr_assert_str_eq(b, "weak_correct <= 1; strong_correct >= 3; ");
  cr_assert_eq(r->roles[RECIPE_ROLE_WEAK].samples, 4, "math-exact runs 4+4 samples");
  cr_assert_eq(r->roles[RECIPE_ROLE_STRONG].samples, 4);
  recipe_free(r);
  free(t);

  /* explicit samples win over the preset's */
  const char *ms =
      "name: m\nsources: {path: x.jsonl}\naccept: {preset: math-exact}\nroles:\n"
      "  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim, model: w, samples: 8}\n"
      "  strong: {endpoint: sim, model: s}\n  judge: {endpoint: sim, model: j}\n";
  r = load_ok(ms);
  cr_assert_eq(r->roles[RECIPE_ROLE_WEAK].samples, 8);
  cr_assert_eq(r->roles[RECIPE_ROLE_STRONG].samples, 4);
  recipe_free(r);

  /* preset plus extra bounds: appended; short_circuit / pass_threshold settable */
  t = with(
      "accept:\n  preset: cs-prose\n  bounds: [\"weak_std <= 0.3\"]\n  short_circuit: false\n"
      "  pass_threshold: 0.6\n");
  r = load_ok(t);
  bounds_text(&r->accept, b, sizeof b);
  cr_assert_str_eq(b, "strong_mean >= 0.65; weak_mean < 0.5; gap >= 0.2; weak_std <= 0.3; ");
  cr_assert_eq(r->accept.short_circuit, 0);
  cr_assert_float_eq(r->accept.pass_threshold, 0.6, 1e-9);
  recipe_free(r);
  free(t);

  /* a plain list replaces the default */
  t = with("accept:\n  - gap >= 0.5\n");
  r = load_ok(t);
  bounds_text(&r->accept, b, sizeof b);
  cr_assert_str_eq(b, "gap >= 0.5; ");
  recipe_free(r);
  free(t);
}

Test(recipe, verifiable_task_defaults) {
  char *t = with("task: verifiable\n");
  struct recipe *r = load_ok(t);
  cr_assert_eq(r->task, CAND_TASK_VERIFIABLE);
  cr_assert(strstr(r->roles[RECIPE_ROLE_CHALLENGER].prompt.path, "/challenger-verifiable.md"));
  cr_assert(strstr(r->roles[RECIPE_ROLE_JUDGE].prompt.path, "/judge-verifiable.md"));
  struct accept_spec v;
  accept_spec_default_verifiable(&v);
  char a[512], b[512];
  bounds_text(&r->accept, a, sizeof a);
  bounds_text(&v, b, sizeof b);
  cr_assert_str_eq(a, b);
  recipe_free(r);
  free(t);
}

/* ---- interpolation ---- */

Test(recipe, interpolation) {
  char *t = with(
      "goal: \"use ${MODEL} at ${TEMP}, ${MISSING:-fallback}, ${EMPTY:-was empty}, $${LITERAL}\"\n"
      "seed: ${SEED:-7}\n"
      "checks: {leakage_max_overlap: \"${TEMP}\"}\n");
  struct recipe *r = load_ok(t);
  cr_assert_str_eq(r->goal, "use big-model at 0.25, fallback, was empty, ${LITERAL}");
  cr_assert_eq(r->seed, 7, "interpolated before typing");
  cr_assert_float_eq(r->checks.leakage_max_overlap, 0.25, 1e-9);
  recipe_free(r);
  free(t);
}

Test(recipe, error_unset_variable) {
  char *t = with("goal: text ${NOT_SET} more\n");
  expect_error(
      t,
      "9:12: environment variable 'NOT_SET' is not set (write '${NOT_SET:-default}' to give a default)");
  free(t);
  t = with("goal: ${EMPTY}\n");
  expect_error(
      t,
      "9:7: environment variable 'EMPTY' is empty (write '${EMPTY:-default}' to give a default)");
  free(t);
}

Test(recipe, error_bad_variable_reference) {
  char *t = with("goal: ${1BAD}\n");
  expect_error(t,
               "9:7: bad variable reference '${1BAD}' (expected '${NAME}' or '${NAME:-default}'; "
               "NAME is letters, digits and '_')");
  free(t);
  t = with("goal: ${OPEN\n");
  expect_error(t, "9:7: unterminated '${' (expected '${NAME}' or '${NAME:-default}')");
  free(t);
}

/* ---- one test per error kind ---- */

Test(recipe, error_unknown_key) {
  const char *t =
      "name: x\nsources: {path: a}\nroles:\n"
      "  challenger: {endpoint: sim, model: c}\n"
      "  weak:\n    endpoint: sim\n    model: w\n    temprature: 1\n"
      "  strong: {endpoint: sim, model: s}\n  judge: {endpoint: sim, model: j}\n";
  expect_error(t,
               "8:5: unknown key 'temprature' in roles.weak; expected one of: endpoint, model, "
               "prompt, system_prompt, temperature, top_p, max_tokens, extra, samples");
  char *t2 = with("colour: blue\n");
  expect_error(t2,
               "9:1: unknown key 'colour' in the recipe; expected one of: name, task, seed, "
               "method, goal, concurrency, sources, endpoints, roles, accept, budgets, "
               "evaluation, checks, baselines, output, optimize, finalize, analysis");
  free(t2);
  /* samples is only for solvers */
  const char *t3 =
      "name: x\nsources: {path: a}\nroles:\n"
      "  challenger: {endpoint: sim, model: c, samples: 2}\n"
      "  weak: {endpoint: sim, model: w}\n"
      "  strong: {endpoint: sim, model: s}\n  judge: {endpoint: sim, model: j}\n";
  expect_error(t3,
               "4:41: unknown key 'samples' in roles.challenger; expected one of: endpoint, "
               "model, prompt, system_prompt, temperature, top_p, max_tokens, extra, parallel");
}

Test(recipe, error_type) {
  char *t = with(
      "seed: abc\nconcurrency: 2.5\nchecks:\n  dedup: maybe\n  leakage_max_overlap: lots\n"
      "sources2: 1\n");
  expect_error(t, "9:7: seed: expected an integer, got 'abc'");
  expect_error(t, "10:14: concurrency: expected an integer, got '2.5'");
  expect_error(t, "12:10: checks.dedup: expected a boolean (true/false), got 'maybe'");
  expect_error(t, "13:24: checks.leakage_max_overlap: expected a number, got 'lots'");
  free(t);
  t = with("budgets: [1, 2]\n");
  expect_error(t, "9:10: budgets: expected a mapping, got a list");
  free(t);
  t = with("goal: {a: 1}\n");
  expect_error(t, "9:7: goal: expected a string, got a mapping");
  free(t);
}

Test(recipe, error_out_of_range_and_enum) {
  char *t = with(
      "budgets: {rounds_per_source: 0}\ntask: rubrik\nchecks: {leakage_max_overlap: 1.5}\n");
  expect_error(t, "9:30: budgets.rounds_per_source: 0 is out of range (1..1000)");
  expect_error(t, "10:7: task: unknown value 'rubrik'; expected one of: rubric, verifiable");
  expect_error(t, "11:31: checks.leakage_max_overlap: 1.5 is out of range (0..1)");
  free(t);
}

Test(recipe, error_missing_required_keys) {
  expect_error(
      "sources: {path: a}\nroles:\n  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim, model: w}\n  strong: {endpoint: sim, model: s}\n"
      "  judge: {endpoint: sim, model: j}\n",
      "1:1: missing required key 'name' in the recipe");
  expect_error(
      "name: x\nsources: {path: a}\nroles:\n  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim}\n  strong: {endpoint: sim, model: s}\n",
      "5:9: missing required key 'model' in roles.weak");
  expect_error(
      "name: x\nsources: {path: a}\nroles:\n  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim}\n  strong: {endpoint: sim, model: s}\n",
      "4:3: missing required key 'judge' in roles");
  expect_error("name: x\nsources: {format: jsonl}\nroles: {}\n",
               "2:10: missing required key 'path' in sources");
}

Test(recipe, error_undeclared_endpoint) {
  const char *t =
      "name: x\nsources: {path: a}\n"
      "endpoints:\n  local: {base_url: \"http://127.0.0.1:8000/v1\"}\n"
      "roles:\n  challenger: {endpoint: locl, model: c}\n"
      "  weak: {endpoint: sim, model: w}\n  strong: {endpoint: sim, model: s}\n"
      "  judge: {endpoint: sim, model: j}\n";
  expect_error(t,
               "6:26: roles.challenger.endpoint: endpoint 'locl' is not declared; declared "
               "endpoints: local, sim");
}

Test(recipe, error_missing_prompt_file) {
  const char *t =
      "name: x\nsources: {path: a}\nroles:\n"
      "  challenger: {endpoint: sim, model: c, prompt: nope.md}\n"
      "  weak: {endpoint: sim, model: w}\n  strong: {endpoint: sim, model: s}\n"
      "  judge: {endpoint: sim, model: j}\n";
  char want[512];
  snprintf(
      want, sizeof want,
      "4:49: roles.challenger.prompt: prompt file 'nope.md' not found (looked for: %s/nope.md, "
      "%s/nope.md)",
      tmpdir, promptdir);
  expect_error(t, want);
}

Test(recipe, error_prompt_template_syntax) {
  const char *p = th_write_file(th_path(tmpdir, "broken.md"),
                                "=== user ===\nfine\n{{#rubric}} never closed\n");
  const char *t =
      "name: x\nsources: {path: a}\nroles:\n"
      "  challenger: {endpoint: sim, model: c, prompt: broken.md}\n"
      "  weak: {endpoint: sim, model: w}\n  strong: {endpoint: sim, model: s}\n"
      "  judge: {endpoint: sim, model: j}\n";
  struct recipe *r;
  struct recipe_diag d;
  cr_assert_eq(load(t, &r, &d), AD_EINVAL);
  cr_assert_eq(d.n, 1);
  char want[512];
  snprintf(want, sizeof want,
           "%s:3:1: section 'rubric' is never closed (expected '{{/rubric}}') "
           "(prompt of roles.challenger.prompt)",
           p);
  cr_assert_str_eq(d.msgs[0], want);
  recipe_diag_release(&d);
}

Test(recipe, error_bad_accept_bound) {
  char *t = with("accept:\n  - weak_mean <= 0.65\n  - wek_mean < 3\n");
  struct recipe *r;
  struct recipe_diag d;
  cr_assert_eq(load(t, &r, &d), AD_EINVAL);
  cr_assert_eq(d.n, 1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s/recipe.yaml:11:5: accept[1]: ", tmpdir);
  cr_assert_eq(strncmp(d.msgs[0], prefix, strlen(prefix)), 0, "%s", d.msgs[0]);
  cr_assert(strstr(d.msgs[0], "wek_mean"), "%s", d.msgs[0]);
  recipe_diag_release(&d);
  free(t);
  t = with("accept: {preset: cs-strict}\n");
  expect_error(t,
               "9:18: accept.preset: unknown value 'cs-strict'; expected one of: cs-deployed, "
               "cs-prose, math-exact, verifiable-majority");
  free(t);
}

Test(recipe, error_duplicate_key) {
  char *t = with("seed: 1\nseed: 2\n");
  expect_error(t, "10:1: duplicate key 'seed' in the recipe (first at line 9)");
  free(t);
}

Test(recipe, error_yaml_syntax) {
  struct recipe *r;
  struct recipe_diag d;
  cr_assert_eq(load("name: x\nroles: [a, b\n", &r, &d), AD_EPARSE);
  cr_assert_eq(d.n, 1);
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s/recipe.yaml:3:1: YAML syntax error: ", tmpdir);
  cr_assert_eq(strncmp(d.msgs[0], prefix, strlen(prefix)), 0, "%s", d.msgs[0]);
  recipe_diag_release(&d);
  expect_error("", "1:1: the recipe is empty (expected a mapping with name, sources, roles, ...)");
  expect_error("- a\n- b\n", "1:1: the recipe: expected a mapping, got a list");
}

Test(recipe, error_endpoint_problems) {
  const char *t =
      "name: x\nsources: {path: a}\n"
      "endpoints:\n"
      "  a: {base_url: \"ftp://x\"}\n"
      "  b: {max_inflight: 2}\n"
      "  c: {base_url: \"http://h\", base_urls: [\"http://i\"]}\n"
      "  d: {base_url: \"http://h\", api_key_env: \"sk-abc 123\"}\n"
      "  e: {base_url: \"http://h\", headers: {\"Bad Name\": v}}\n"
      "roles:\n  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim, model: w}\n  strong: {endpoint: sim, model: s}\n"
      "  judge: {endpoint: sim, model: j}\n";
  expect_error(
      t,
      "4:17: endpoints.a.base_url: 'ftp://x' is not a URL (expected http://..., https://... or sim)");
  expect_error(t, "5:6: missing required key 'base_url' (or 'base_urls') in endpoints.b");
  expect_error(t, "6:40: endpoints.c: give either base_url or base_urls, not both");
  /* the pasted value is never echoed */
  expect_error(t,
               "7:42: endpoints.d.api_key_env: not an environment variable name (letters, "
               "digits and '_', not starting with a digit; give the NAME of the variable that "
               "holds the key, never the key itself)");
  expect_error(t, "8:39: endpoints.e.headers: 'Bad Name' is not a valid header name");
}

Test(recipe, collects_many_errors) {
  char *t = with("seed: x\nconcurrency: y\nbudgets: {max_cost: z}\nchecks: {dedup: w}\n");
  struct recipe *r;
  struct recipe_diag d;
  cr_assert_eq(load(t, &r, &d), AD_EINVAL);
  cr_assert_eq(d.n, 4, "all four errors are reported, got %d", d.n);
  recipe_diag_release(&d);
  free(t);
}

/* ---- endpoints ---- */

Test(recipe, endpoint_conversion) {
  const char *t =
      "name: x\nsources: {path: a}\n"
      "endpoints:\n"
      "  vllm:\n"
      "    base_urls: [\"http://127.0.0.1:8000/v1\", \"http://127.0.0.1:8001/v1\"]\n"
      "    api_key_env: VLLM_KEY\n"
      "    headers: {X-Team: data, Authorization: \"Bearer ${TOKEN}\"}\n"
      "    max_inflight: 128\n    requests_per_min: 600\n    tokens_per_min: 1e6\n"
      "    connect_timeout_ms: 2000\n    request_timeout_ms: 90000\n    max_retries: 3\n"
      "    extra_body: {chat_template_kwargs: {enable_thinking: false}, top_k: 20, tag: \"007\", n: ~}\n"
      "    json_schema: false\n"
      "    prices: {big-model: {input_per_mtok: 0.5, output_per_mtok: 2}}\n"
      "roles:\n  challenger: {endpoint: vllm, model: \"${MODEL}\", extra: {seed_offset: 3}}\n"
      "  weak: {endpoint: sim, model: w, top_p: 0.9, max_tokens: 512}\n"
      "  strong: {endpoint: vllm, model: s}\n  judge: {endpoint: sim, model: j}\n";
  struct recipe *r = load_ok(t);
  cr_assert_eq(r->n_endpoints, 2);
  int i = recipe_find_endpoint(r, "vllm");
  cr_assert_eq(i, 0);
  cr_assert_eq(recipe_find_endpoint(r, "sim"), 1);
  cr_assert_eq(recipe_find_endpoint(r, "other"), -1);
  struct llm_endpoint_config c;
  cr_assert_eq(recipe_endpoint_config(r, i, &c), 0);
  cr_assert_str_eq(c.name, "vllm");
  cr_assert_eq(c.n_urls, 2);
  cr_assert_str_eq(c.base_urls[1], "http://127.0.0.1:8001/v1");
  cr_assert_str_eq(c.api_key_env, "VLLM_KEY");
  cr_assert_eq(c.n_headers, 2);
  cr_assert_str_eq(c.headers[0], "X-Team: data");
  cr_assert_str_eq(c.headers[1], "Authorization: Bearer sk-secret-value");
  cr_assert_eq(c.max_inflight, 128);
  cr_assert_float_eq(c.requests_per_min, 600, 1e-9);
  cr_assert_float_eq(c.tokens_per_min, 1e6, 1e-9);
  cr_assert_eq(c.connect_timeout_ms, 2000);
  cr_assert_eq(c.request_timeout_ms, 90000);
  cr_assert_eq(c.max_retries, 3);
  cr_assert_eq(c.adaptive, 1);
  cr_assert_gt(c.backoff_base_ms, 0);
  char *eb = jx_dump_canonical(c.extra_body);
  cr_assert_str_eq(
      eb,
      "{\"chat_template_kwargs\":{\"enable_thinking\":false},\"n\":null,\"tag\":\"007\",\"top_k\":20}");
  free(eb);
  cr_assert_eq(r->endpoints[i].json_schema, 0);
  double in, out;
  cr_assert_eq(recipe_price(r, i, "big-model", &in, &out), 0);
  cr_assert_float_eq(in, 0.5, 1e-12);
  cr_assert_float_eq(out, 2.0, 1e-12);
  cr_assert_eq(recipe_price(r, i, "unknown", &in, &out), AD_ENOTFOUND);
  cr_assert_eq(recipe_endpoint_config(r, 5, &c), AD_EINVAL);
  /* sim defaults */
  cr_assert_eq(recipe_endpoint_config(r, 1, &c), 0);
  cr_assert_str_eq(c.base_urls[0], "sim");
  cr_assert_eq(c.max_inflight, 64);
  cr_assert_eq(c.max_retries, 8);
  cr_assert_null(c.api_key_env);
  /* roles */
  cr_assert_str_eq(r->roles[RECIPE_ROLE_CHALLENGER].model, "big-model");
  cr_assert_eq(r->roles[RECIPE_ROLE_CHALLENGER].endpoint_index, 0);
  cr_assert_eq(
      json_integer_value(json_object_get(r->roles[RECIPE_ROLE_CHALLENGER].extra, "seed_offset")),
      3);
  cr_assert_float_eq(r->roles[RECIPE_ROLE_WEAK].top_p, 0.9, 1e-9);
  cr_assert_eq(r->roles[RECIPE_ROLE_WEAK].max_tokens, 512);

  /* canonical JSON: no secrets, header text as written, secret headers redacted */
  json_t *j = recipe_to_json(r);
  char *s = jx_dump_canonical(j);
  cr_assert_null(strstr(s, "sk-secret-value"), "the key never reaches the card");
  cr_assert_not_null(strstr(s, "\"Authorization: <redacted>\""));
  cr_assert_not_null(strstr(s, "\"X-Team: data\""));
  cr_assert_not_null(strstr(s, "\"api_key_env\":\"VLLM_KEY\""));
  cr_assert_not_null(strstr(s, r->roles[RECIPE_ROLE_WEAK].prompt.sha256));
  /* stable: a second load gives the same bytes */
  struct recipe *r2 = load_ok(t);
  json_t *j2 = recipe_to_json(r2);
  char *s2 = jx_dump_canonical(j2);
  cr_assert_str_eq(s, s2);
  free(s);
  free(s2);
  json_decref(j);
  json_decref(j2);
  recipe_free(r2);
  recipe_free(r);
}

Test(recipe, sim_can_be_declared_with_settings) {
  char *t = with("endpoints:\n  sim: {max_inflight: 7}\n");
  struct recipe *r = load_ok(t);
  cr_assert_eq(r->n_endpoints, 1);
  cr_assert_eq(r->endpoints[0].max_inflight, 7);
  cr_assert_str_eq(r->endpoints[0].base_urls[0], "sim");
  cr_assert_eq(r->endpoints[0].builtin, 0);
  recipe_free(r);
  free(t);
}

/* ---- roles and prompts ---- */

Test(recipe, optional_roles_and_prompt_resolution) {
  /* a prompt next to the recipe wins over the prompts folder */
  th_write_file(th_path(tmpdir, "solver.md"), "local solver {{question}}");
  th_write_file(th_path(tmpdir, "sys.md"), "system {{goal}}\n=== user ===\nnot split");
  th_write_file(th_path(promptdir, "strong.md"), "strong prompt");
  const char *t =
      "name: x\nsources: {path: a}\nroles:\n"
      "  orchestrator: {endpoint: sim, model: o}\n"
      "  quality: false\n"
      "  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim, model: w, prompt: solver.md, system_prompt: sys.md}\n"
      "  strong: {endpoint: sim, model: s, prompt: strong.md}\n"
      "  judge: {endpoint: sim, model: j}\n";
  struct recipe *r = load_ok(t);
  cr_assert_eq(r->roles[RECIPE_ROLE_ORCHESTRATOR].present, 1);
  cr_assert(strstr(r->roles[RECIPE_ROLE_ORCHESTRATOR].prompt.path, "/orchestrator.md"));
  cr_assert_eq(r->roles[RECIPE_ROLE_QUALITY].present, 0);
  char want[256];
  snprintf(want, sizeof want, "%s/solver.md", tmpdir);
  cr_assert_str_eq(r->roles[RECIPE_ROLE_WEAK].prompt.path, want);
  cr_assert_null(r->roles[RECIPE_ROLE_WEAK].prompt.tpl.system);
  snprintf(want, sizeof want, "%s/strong.md", promptdir);
  cr_assert_str_eq(r->roles[RECIPE_ROLE_STRONG].prompt.path, want);
  /* the system_prompt file is one template, not split */
  const struct recipe_role *w = &r->roles[RECIPE_ROLE_WEAK];
  json_t *vars = json_pack("{s:s, s:i}", "question", "Q?", "goal", 1), *msgs = NULL;
  char err[256];
  cr_assert_eq(
      tpl_prompt_render(&w->prompt.tpl, w->system_prompt.tpl.user, vars, 0, &msgs, err, sizeof err),
      0, "%s", err);
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 0), "content")),
                   "system 1\n=== user ===\nnot split");
  cr_assert_str_eq(json_string_value(json_object_get(json_array_get(msgs, 1), "content")),
                   "local solver Q?");
  json_decref(msgs);
  json_decref(vars);
  json_t *j = recipe_to_json(r);
  cr_assert(json_is_null(json_object_get(json_object_get(j, "roles"), "quality")));
  json_decref(j);
  recipe_free(r);
}

Test(recipe, no_prompts_folder_is_an_error_naming_the_role) {
  struct recipe_load_opts o = {0};
  o.prompts_dir = th_path(tmpdir, "no-prompts"); /* inside a fresh temp dir: not there */
  struct recipe *r;
  struct recipe_diag d = {0};
  cr_assert_eq(recipe_load_mem(MINIMAL, strlen(MINIMAL), "r.yaml", &o, &r, &d), AD_EINVAL);
  cr_assert_geq(d.n, 5);
  char want[512];
  snprintf(want, sizeof want,
           "r.yaml:5:15: roles.challenger.prompt: no prompt given and the default prompt file "
           "'challenger-rubric.md' was not found (%s); set AUTODATA_PROMPTS to the prompts "
           "folder or give roles.challenger.prompt",
           o.prompts_dir);
  cr_assert_str_eq(d.msgs[0], want);
  recipe_diag_release(&d);
}

/* ---- files, robustness ---- */

Test(recipe, load_from_file) {
  const char *p = th_write_file(th_path(tmpdir, "r.yaml"), MINIMAL);
  struct recipe_load_opts o = {0};
  o.prompts_dir = promptdir;
  struct recipe *r;
  struct recipe_diag d = {0};
  cr_assert_eq(recipe_load(p, &o, &r, &d), 0);
  cr_assert_str_eq(r->dir, tmpdir);
  char hex[65];
  sha256_hex(MINIMAL, strlen(MINIMAL), hex);
  cr_assert_str_eq(r->sha256, hex);
  recipe_free(r);
  const char *missing = th_path(tmpdir, "no-such-dir/r.yaml");
  cr_assert_eq(recipe_load(missing, &o, &r, &d), AD_EIO);
  char want[512];
  snprintf(want, sizeof want, "%s: cannot read recipe: No such file or directory", missing);
  cr_assert_str_eq(d.msgs[0], want);
  recipe_diag_release(&d);
}

Test(recipe, alias_bomb_is_bounded) {
  /* billion laughs inside extra_body: the converter's node budget stops it */
  const char *t =
      "name: x\nsources: {path: a}\n"
      "endpoints:\n  e:\n    base_url: http://h\n    extra_body:\n"
      "      a: &a [x, x, x, x, x, x, x, x, x, x]\n"
      "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
      "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
      "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
      "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
      "      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
      "      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
      "roles:\n  challenger: {endpoint: sim, model: c}\n"
      "  weak: {endpoint: sim, model: w}\n  strong: {endpoint: sim, model: s}\n"
      "  judge: {endpoint: sim, model: j}\n";
  struct recipe *r;
  struct recipe_diag d;
  cr_assert_eq(load(t, &r, &d), AD_EINVAL);
  cr_assert(strstr(d.msgs[0], "too many nodes"), "%s", d.msgs[0]);
  recipe_diag_release(&d);
}

/* ---- baselines: the CoT-Self-Instruct filter settings ---- */

Test(recipe, baselines_defaults) {
  struct recipe *r = load_ok(MINIMAL);
  cr_assert_eq(r->baselines.k, 4);
  cr_assert_float_eq(r->baselines.rip_threshold, 0.5, 1e-12);
  cr_assert_float_eq(r->baselines.ac_min_share, 0.5, 1e-12);
  json_t *j = recipe_to_json(r);
  char *s = jx_dump_canonical(json_object_get(j, "baselines"));
  cr_assert_str_eq(s, "{\"ac_min_share\":0.5,\"k\":4,\"rip_threshold\":0.5}");
  free(s);
  json_decref(j);
  recipe_free(r);
  /* an empty mapping keeps the defaults too */
  char *t = with("baselines: {}\n");
  r = load_ok(t);
  cr_assert_eq(r->baselines.k, 4);
  cr_assert_float_eq(r->baselines.ac_min_share, 0.5, 1e-12);
  recipe_free(r);
  free(t);
}

Test(recipe, method_names_come_from_the_caller) {
  char *t = with("method: cot\n");
  expect_error(t,
               "9:9: method: unknown value 'cot'; expected one of: agentic, self-instruct, "
               "cot-self-instruct");
  /* Without a list the name is kept for the caller to check (the run refuses it). */
  struct recipe_load_opts o = {0};
  o.prompts_dir = promptdir;
  struct recipe *r = NULL;
  struct recipe_diag d = {0};
  cr_assert_eq(recipe_load_mem(t, strlen(t), "r.yaml", &o, &r, &d), 0);
  cr_assert_str_eq(r->method, "cot");
  recipe_free(r);
  recipe_diag_release(&d);
  free(t);
}

Test(recipe, baselines_values) {
  char *t = with(
      "method: cot-self-instruct\nbaselines:\n  k: 8\n  rip_threshold: ${TEMP}\n"
      "  ac_min_share: 1\n");
  struct recipe *r = load_ok(t);
  cr_assert_str_eq(r->method, "cot-self-instruct");
  cr_assert_eq(r->baselines.k, 8);
  cr_assert_float_eq(r->baselines.rip_threshold, 0.25, 1e-12, "interpolated like every value");
  cr_assert_float_eq(r->baselines.ac_min_share, 1.0, 1e-12);
  json_t *j = recipe_to_json(r);
  const json_t *b = json_object_get(j, "baselines");
  cr_assert_eq(json_integer_value(json_object_get(b, "k")), 8);
  cr_assert_float_eq(json_number_value(json_object_get(b, "rip_threshold")), 0.25, 1e-12);
  cr_assert_float_eq(json_number_value(json_object_get(b, "ac_min_share")), 1.0, 1e-12);
  json_decref(j);
  recipe_free(r);
  free(t);
  /* the edges of each range are valid */
  t = with("baselines: {k: 1, rip_threshold: 0, ac_min_share: 0.001}\n");
  r = load_ok(t);
  cr_assert_eq(r->baselines.k, 1);
  cr_assert_float_eq(r->baselines.rip_threshold, 0.0, 1e-12);
  cr_assert_float_eq(r->baselines.ac_min_share, 0.001, 1e-12);
  recipe_free(r);
  free(t);
  t = with("baselines: {k: 64, rip_threshold: 1}\n");
  r = load_ok(t);
  cr_assert_eq(r->baselines.k, 64);
  cr_assert_float_eq(r->baselines.rip_threshold, 1.0, 1e-12);
  recipe_free(r);
  free(t);
}

Test(recipe, baselines_errors) {
  char *t = with("baselines:\n  k: 4\n  rip: 0.5\n");
  expect_error(t,
               "11:3: unknown key 'rip' in baselines; expected one of: k, rip_threshold, "
               "ac_min_share");
  free(t);
  t = with("baselines: [4]\n");
  expect_error(t, "9:12: baselines: expected a mapping, got a list");
  free(t);
  t = with("baselines: 4\n");
  expect_error(t, "9:12: baselines: expected a mapping, got a scalar");
  free(t);
  t = with("baselines:\n  k: four\n  rip_threshold: high\n  ac_min_share: [1]\n");
  expect_error(t, "10:6: baselines.k: expected an integer, got 'four'");
  expect_error(t, "11:18: baselines.rip_threshold: expected a number, got 'high'");
  expect_error(t, "12:17: baselines.ac_min_share: expected a string, got a list");
  free(t);
  t = with("baselines:\n  k: 2.5\n");
  expect_error(t, "10:6: baselines.k: expected an integer, got '2.5'");
  free(t);
  t = with("baselines:\n  k: 0\n  rip_threshold: 1.5\n  ac_min_share: 0\n");
  expect_error(t, "10:6: baselines.k: 0 is out of range (1..64)");
  expect_error(t, "11:18: baselines.rip_threshold: 1.5 is out of range (0..1)");
  expect_error(t,
               "12:17: baselines.ac_min_share: must be greater than 0 (a share in (0, 1]), got 0");
  free(t);
  t = with("baselines:\n  k: 65\n  rip_threshold: -0.1\n  ac_min_share: 1.01\n");
  expect_error(t, "10:6: baselines.k: 65 is out of range (1..64)");
  expect_error(t, "11:18: baselines.rip_threshold: -0.1 is out of range (0..1)");
  expect_error(t, "12:17: baselines.ac_min_share: 1.01 is out of range (0..1)");
  free(t);
  t = with("baselines:\n  k: 4\n  k: 5\n");
  expect_error(t, "11:3: duplicate key 'k' in baselines (first at line 10)");
  free(t);
}

/* json_schema: true (strict) / basic / false; per-role max_tokens defaults; 0 = not sent. */
Test(recipe, json_schema_modes_and_max_tokens_defaults) {
  const char *t =
      "name: x\nsources: {path: a}\n"
      "endpoints:\n  a: {base_url: \"http://127.0.0.1:8000/v1\", json_schema: basic}\n"
      "  b: {base_url: \"http://127.0.0.1:8001/v1\"}\n"
      "roles:\n  challenger: {endpoint: a, model: c}\n"
      "  weak: {endpoint: b, model: w, max_tokens: 0}\n  strong: {endpoint: b, model: s}\n"
      "  judge: {endpoint: b, model: j}\n";
  struct recipe *r = load_ok(t);
  cr_assert_eq(r->endpoints[recipe_find_endpoint(r, "a")].json_schema, RECIPE_SCHEMA_BASIC);
  cr_assert_eq(r->endpoints[recipe_find_endpoint(r, "b")].json_schema, RECIPE_SCHEMA_STRICT);
  cr_assert_eq(r->roles[RECIPE_ROLE_CHALLENGER].max_tokens, 4096);
  cr_assert_eq(r->roles[RECIPE_ROLE_WEAK].max_tokens, 0, "0 = not sent");
  cr_assert_eq(r->roles[RECIPE_ROLE_STRONG].max_tokens, 8192);
  cr_assert_eq(r->roles[RECIPE_ROLE_JUDGE].max_tokens, 2048);
  recipe_free(r);
  const char *bad =
      "name: x\nsources: {path: a}\n"
      "endpoints:\n  a: {base_url: \"http://127.0.0.1:8000/v1\", json_schema: loose}\n"
      "roles:\n  challenger: {endpoint: a, model: c}\n"
      "  weak: {endpoint: a, model: w}\n  strong: {endpoint: a, model: s}\n"
      "  judge: {endpoint: a, model: j}\n";
  expect_error(bad, "4:58: endpoints.a.json_schema: expected true, false or basic, got 'loose'");
}

/* api_key_env is an environment variable's NAME: a key pasted there (with '-', or '${VAR}'
 * that gives the key itself, or an unset key-like name) is refused, never echoed. */
Test(recipe, api_key_env_must_be_a_variable_name) {
  static const char *bad[] = {"sk-proj-AbC123dEf456", "MY.KEY", "1KEY", "${TOKEN}",
                              "hf_aBcDeFgH1234567890xYz"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char y[1024];
    snprintf(y, sizeof y,
             "name: t\ntask: rubric\ngoal: g\nsources: {path: s.jsonl}\n"
             "endpoints:\n  e: {base_url: 'http://x/v1', api_key_env: '%s'}\n"
             "roles:\n  challenger: {endpoint: e, model: m}\n",
             bad[i]);
    struct recipe *r = NULL;
    struct recipe_diag d;
    cr_assert_neq(load(y, &r, &d), 0, "'%s' accepted", bad[i]);
    int named = 0;
    for (int k = 0; k < d.n; k++) {
      if (strstr(d.msgs[k], "api_key_env")) named = 1;
      /* the value, or its tail for a long one: never a single character that the temporary
       * folder's name in the message could contain by chance */
      const char *v = bad[i][0] == '$' ? "sk-secret" : strlen(bad[i]) > 8 ? bad[i] + 3 : bad[i];
      cr_assert_null(strstr(d.msgs[k], v), "echoed: %s", d.msgs[k]);
    }
    cr_assert(named, "'%s': no message names api_key_env", bad[i]);
    recipe_diag_release(&d);
    recipe_free(r);
  }
}

/* ---- identity and per-role prompt variables (issue 22) ---- */

static const char *ENVRECIPE =
    "name: demo\n"
    "sources:\n"
    "  path: data/papers.jsonl\n"
    "roles:\n"
    "  challenger: {endpoint: sim, model: sim-challenger}\n"
    "  weak: {endpoint: sim, model: \"${MODEL}\", temperature: \"${TEMP}\"}\n"
    "  strong: {endpoint: sim, model: \"${STRONG:-sim-solver@0.8}\"}\n"
    "  judge: {endpoint: sim, model: sim-judge}\n"
    "endpoints:\n"
    "  other: {base_url: \"http://127.0.0.1:1/v1\", headers: {Authorization: \"Bearer ${TOKEN}\"}}\n";

Test(recipe, env_refs_record_names_and_fields_never_values) {
  struct recipe *r = load_ok(ENVRECIPE);
  char *d = jx_dump_canonical(r->env_refs);
  cr_assert_str_eq(d,
                   "[{\"field\":\"endpoints.other.headers\",\"from\":\"environment\","
                   "\"variable\":\"TOKEN\"},{\"field\":\"roles.weak.model\",\"from\":"
                   "\"environment\",\"variable\":\"MODEL\"},{\"field\":\"roles.weak.temperature\","
                   "\"from\":\"environment\",\"variable\":\"TEMP\"},{\"field\":"
                   "\"roles.strong.model\",\"from\":\"default\",\"variable\":\"STRONG\"}]",
                   "%s", d);
  cr_assert_null(strstr(d, "sk-secret-value"));
  free(d);
  recipe_free(r);
}

Test(recipe, identity_covers_effective_values_not_budgets) {
  struct recipe *a = load_ok(ENVRECIPE);
  char *t = NULL;
  cr_assert_geq(asprintf(&t,
                         "%s# a comment changes the file, not the configuration\n"
                         "budgets: {rounds_per_source: 9, max_calls: 100}\nconcurrency: 3\n"
                         "output: {folder: elsewhere}\n",
                         ENVRECIPE),
                0);
  struct recipe *b = load_ok(t);
  free(t);
  cr_assert_str_neq(a->sha256, b->sha256, "the files differ");
  json_t *ia = recipe_identity(a), *ib = recipe_identity(b);
  char ha[65], hb[65];
  cr_assert_eq(recipe_identity_sha256(ia, ha), 0);
  cr_assert_eq(recipe_identity_sha256(ib, hb), 0);
  cr_assert_str_eq(ha, hb, "budgets, concurrency and output are not the identity");
  /* the unused endpoint `other` (and its secret header) is not part of it */
  cr_assert_null(json_object_get(json_object_get(ia, "endpoints"), "other"));
  /* a changed model and temperature are, named with both values and their variable */
  free(b->roles[RECIPE_ROLE_WEAK].model);
  b->roles[RECIPE_ROLE_WEAK].model = xstrdup("sim-solver@0.6");
  b->roles[RECIPE_ROLE_WEAK].temperature = 0.5;
  json_decref(ib);
  ib = recipe_identity(b);
  struct buf out = BUF_INIT;
  cr_assert_eq(recipe_identity_diff(ia, ib, b->env_refs, 0, &out), 2);
  cr_assert_str_eq(buf_str(&out),
                   "roles.weak.model \"big-model\" -> \"sim-solver@0.6\" (set through $MODEL); "
                   "roles.weak.temperature 0.25 -> 0.5 (set through $TEMP)");
  /* a record from an older version projects the same way; a setting it did not
     record is not a difference, a recorded one that changed is */
  json_t *full = recipe_to_json(a), *proj = recipe_identity_of(full);
  cr_assert(json_equal(proj, ia));
  json_object_del(json_object_get(proj, "checks"), "dedup");
  buf_reset(&out);
  cr_assert_eq(recipe_identity_diff(proj, ia, NULL, 0, &out), 1, "strict: %s", buf_str(&out));
  cr_assert_str_eq(buf_str(&out), "checks.dedup (not recorded) -> true");
  buf_reset(&out);
  cr_assert_eq(recipe_identity_diff(proj, ia, NULL, 1, &out), 0, "%s", buf_str(&out));
  cr_assert_eq(recipe_identity_diff(proj, ib, NULL, 1, &out), 2);
  buf_release(&out);
  json_decref(full);
  json_decref(proj);
  json_decref(ia);
  json_decref(ib);
  recipe_free(a);
  recipe_free(b);
}

/* Load MINIMAL with one role's prompt replaced by text; returns the first message. */
static char *load_with_prompt(const char *role, const char *task, const char *text) {
  th_write_file(th_path(tmpdir, "p.md"), text);
  char *t = NULL;
  cr_assert_geq(asprintf(&t,
                         "name: demo\ntask: %s\nsources: {path: a}\nroles:\n"
                         "  challenger: {endpoint: sim, model: c}\n"
                         "  weak: {endpoint: sim, model: w%s}\n"
                         "  strong: {endpoint: sim, model: s}\n"
                         "  judge: {endpoint: sim, model: j%s}\n",
                         task, !strcmp(role, "weak") ? ", prompt: p.md" : "",
                         !strcmp(role, "judge") ? ", prompt: p.md" : ""),
                0);
  struct recipe *r = NULL;
  struct recipe_diag d;
  int rc = load(t, &r, &d);
  free(t);
  char *msg = rc ? xstrdup(d.n ? d.msgs[0] : "?") : NULL;
  recipe_diag_release(&d);
  recipe_free(r);
  return msg;
}

Test(recipe, prompts_get_only_their_roles_variables) {
  char want[512];
  char *m = load_with_prompt("weak", "rubric", "=== user ===\nQ: {{question}}\n{{source_text}}");
  snprintf(want, sizeof want,
           "%s/p.md:3:1: unknown variable 'source_text' (not given to this role); the weak prompt "
           "may use: task, verifiable, goal, context, question (docs/templates.md)",
           tmpdir);
  cr_assert_str_eq(m, want);
  free(m);
  /* the rubric judge never sees the reference answer (no role of a rubric task does); the
     verifiable judge does */
  m = load_with_prompt("judge", "rubric", "{{question}} {{response}} {{reference_answer}}");
  cr_assert_not_null(m);
  cr_assert(strstr(m, "p.md:1:27: unknown variable 'reference_answer'; the judge prompt may use"),
            "%s", m);
  free(m);
  m = load_with_prompt("judge", "verifiable", "{{question}} {{response}} {{reference_answer}}");
  cr_assert_null(m, "%s", m);
  /* a typo inside an inverted section is found too */
  m = load_with_prompt("weak", "rubric", "{{^context}}\n{{questoin}}\n{{/context}}");
  cr_assert_not_null(m);
  cr_assert(strstr(m, "p.md:2:1: unknown variable 'questoin'; the weak prompt"), "%s", m);
  free(m);
  /* the loop's filter keeps only the role's variables */
  json_t *all = json_pack("{s:s, s:s, s:s, s:s}", "question", "q", "source_text", "S", "rubric",
                          "R", "context", "c");
  json_t *f = recipe_role_filter_vars(RECIPE_ROLE_STRONG, CAND_TASK_RUBRIC, all);
  cr_assert_eq(json_object_size(f), 2);
  cr_assert_null(json_object_get(f, "source_text"));
  json_decref(f);
  json_decref(all);
}

Test(recipe, evaluation_defaults_and_errors) {
  struct recipe *r = NULL;
  struct recipe_diag d;
  char *t = with("");
  cr_assert_eq(load(t, &r, &d), 0);
  cr_assert_eq(r->evaluation.early_stop, 1, "early decisions by default");
  cr_assert_eq(r->evaluation.wave, 1);
  recipe_free(r);
  free(t);
  t = with("evaluation: {early_stop: false, wave: 4}\n");
  cr_assert_eq(load(t, &r, &d), 0);
  cr_assert_eq(r->evaluation.early_stop, 0);
  cr_assert_eq(r->evaluation.wave, 4);
  recipe_free(r);
  free(t);
  t = with("evaluation: {wave: 0}\n");
  expect_error(t, "9:20: evaluation.wave: 0 is out of range (1..64)");
  free(t);
}

/* analysis: and finalize.quality (issue 17): parsed, validated, and in the identity only
 * when set. */
Test(recipe, analysis_and_quality_pass) {
  struct recipe *a = load_ok(MINIMAL);
  cr_assert_eq(a->analysis.every, 0);
  cr_assert_eq(a->finalize.quality, 0);
  json_t *ia = recipe_identity(a);
  cr_assert_null(json_object_get(ia, "analysis"));
  char *t = with(
      "  quality: {endpoint: sim, model: sim-quality}\n"
      "analysis: {every: 10}\n"
      "finalize: {quality: {model: judge}}\n");
  struct recipe *b = load_ok(t);
  free(t);
  cr_assert_eq(b->analysis.every, 10);
  cr_assert_eq(b->finalize.quality, 1);
  cr_assert_str_eq(b->finalize.quality_model, "sim-judge");
  cr_assert_str_eq(b->finalize.quality_endpoint, "sim");
  json_t *ib = recipe_identity(b);
  cr_assert_eq(json_integer_value(json_object_get(json_object_get(ib, "analysis"), "every")), 10);
  json_t *fb = recipe_to_json(b);
  cr_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(json_object_get(fb, "finalize"), "quality"), "model")),
                   "sim-judge");
  json_decref(fb);
  json_decref(ia);
  json_decref(ib);
  recipe_free(a);
  recipe_free(b);
  t = with("  quality: {endpoint: sim, model: sim-quality}\nfinalize: {quality: true}\n");
  struct recipe *c = load_ok(t);
  free(t);
  cr_assert_str_eq(c->finalize.quality_model, "sim-quality");
  recipe_free(c);
  t = with("analysis: {every: 0}\n");
  expect_error(t, "9:19: analysis.every: 0 is out of range (1..1000000)");
  free(t);
}
