/* cmd_validate.c - `autodata validate RECIPE`: check a recipe without running it.
 *
 * Prints a summary of the effective recipe (after defaults and interpolation):
 * roles, models, endpoints, prompt hashes, accept bounds, budgets, checks; or
 * every error found, one "file:line:column: message" per line. Beyond the recipe it checks
 * all it can without a model call: api_key_env variables set, prompt files usable text
 * (recipe.c), and the first VALIDATE_CORPUS_SAMPLE records of the corpus. Exit 0 when the
 * recipe is valid, 2 otherwise (and on usage errors).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "loop/method.h"
#include "recipe/recipe.h"
#include "source/source.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"

enum { O_JSON = 1, O_PROMPTS };
static const struct opts_spec validate_opts[] = {
    {"json", NULL, O_JSON, "print the effective configuration as canonical JSON"},
    {"prompts", "DIR", O_PROMPTS,
     "default prompts folder (else $AUTODATA_PROMPTS, else the one\n"
     "next to the executable)"},
    {0}};
static const struct opts_cli validate_cli = {
    "validate", "[--json] [--prompts DIR] RECIPE",
    "Check a recipe without running it: print the effective configuration or every\n"
    "error found (file:line:column: message).",
    validate_opts, NULL};

static const char *yesno(int b) { return b ? "yes" : "no"; }

static void print_prompt(const char *label, const struct recipe_prompt *p) {
  if (!p->path) return;
  printf("      %-14s %s  sha256:%.16s  %s%s\n", label, p->path, p->sha256,
         p->tpl.system ? "system+user" : "user only", "");
}

/* A JSON setting merged into requests (extra_body, a role's extra), compact, on its own line. */
static void print_json_setting(const char *label, const json_t *v) {
  if (!v || !json_object_size(v)) return;
  char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
  if (s) printf("      %-14s %s\n", label, s);
  free(s);
}

/* The run identity a resume compares, and the variables that set values. */
static void print_identity(const struct recipe *r) {
  json_t *id = recipe_identity(r);
  char sha[65] = "?";
  if (recipe_identity_sha256(id, sha)) snprintf(sha, sizeof sha, "?");
  json_decref(id);
  printf("identity    sha256:%.16s  (the effective configuration a resume compares)\n", sha);
  size_t i;
  const json_t *e;
  json_array_foreach(r->env_refs, i, e) {
    const char *from = jx_str(e, "from");
    printf("%s $%s -> %s%s\n", i ? "           " : "environment", jx_str(e, "variable"),
           jx_str(e, "field"), from && !strcmp(from, "default") ? "  (unset: the default)" : "");
  }
}

/* A method with its own prompts (a baseline's challenger, the agent's orchestrator): check
 * them as `run --method` will load them. Returns 0 or prints the error. */
static int check_method_prompt(const struct recipe *r) {
  const struct method_ops *m = method_find(r->method);
  const enum recipe_role_id roles[] = {RECIPE_ROLE_CHALLENGER, RECIPE_ROLE_ORCHESTRATOR};
  for (size_t i = 0; m && i < sizeof roles / sizeof *roles; i++) {
    if (!method_has_prompt(m, roles[i])) continue;
    struct method_prompt p;
    char err[1024] = "";
    int rc = method_prompt_load(m, r, roles[i], &p, err, sizeof err);
    method_prompt_release(&p);
    if (rc) {
      fprintf(stderr, "%s\n", err);
      return rc;
    }
  }
  return 0;
}

static void print_summary(const struct recipe *r) {
  printf("recipe      %s  (sha256:%.16s)\n", r->path, r->sha256);
  printf("name        %s\n", r->name);
  printf("task        %s   method %s   seed %lld   concurrency %d\n", cand_task_name(r->task),
         r->method, (long long)r->seed, r->concurrency);
  if (r->goal && *r->goal)
    printf("goal        %.200s%s\n", r->goal, strlen(r->goal) > 200 ? "..." : "");
  const struct src_options *s = &r->sources;
  printf(
      "sources     %s  (format %s; fields id=%s title=%s text=%s; max_chars %zu; limit %zu; "
      "shuffle %s",
      s->path, src_format_name(s->format), s->id_field, s->title_field, s->text_field, s->max_chars,
      s->limit, yesno(s->shuffle));
  if (s->shuffle) printf(", seed %llu", (unsigned long long)s->shuffle_seed);
  printf(")\n");
  printf("prompts     %s\n", r->prompts_dir ? r->prompts_dir : "(no default prompts folder)");
  printf("endpoints\n");
  for (int i = 0; i < r->n_endpoints; i++) {
    const struct recipe_endpoint *e = &r->endpoints[i];
    printf("  %-14s", e->name);
    for (int k = 0; k < e->n_urls; k++) printf("%s%s", k ? ", " : "", e->base_urls[k]);
    if (e->builtin) printf("  (built in)");
    printf("\n    max_inflight %d, retries %d, timeouts %d/%d ms", e->max_inflight, e->max_retries,
           e->connect_timeout_ms, e->request_timeout_ms);
    if (e->requests_per_min > 0) printf(", %g req/min", e->requests_per_min);
    if (e->tokens_per_min > 0) printf(", %g tok/min", e->tokens_per_min);
    if (e->api_key_env) printf(", key from $%s", e->api_key_env);
    if (e->n_headers) printf(", %d header(s)", e->n_headers);
    printf(", json_schema %s\n", yesno(e->json_schema));
    print_json_setting("extra_body", e->extra_body);
    for (int k = 0; k < e->n_prices; k++)
      printf("    price %s: %g in / %g out per Mtok\n", e->prices[k].model,
             e->prices[k].input_per_mtok, e->prices[k].output_per_mtok);
  }
  printf("roles\n");
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const struct recipe_role *ro = &r->roles[i];
    if (!ro->present && i >= RECIPE_ROLE_EXTRACTOR) continue; /* optional, rarely used */
    if (!ro->present) {
      printf("  %-13s (off)\n", recipe_role_name((enum recipe_role_id)i));
      continue;
    }
    printf("  %-13s %s / %s  temperature %g", recipe_role_name((enum recipe_role_id)i),
           ro->endpoint, ro->model, ro->temperature);
    if (ro->top_p != LLM_UNSET) printf("  top_p %g", ro->top_p);
    if (ro->max_tokens > 0) printf("  max_tokens %d", ro->max_tokens);
    if (i == RECIPE_ROLE_WEAK || i == RECIPE_ROLE_STRONG) printf("  samples %d", ro->samples);
    if (ro->parallel > 1) printf("  parallel %d", ro->parallel);
    printf("\n");
    print_json_setting("extra", ro->extra);
    print_prompt("prompt", &ro->prompt);
    print_prompt("system_prompt", &ro->system_prompt);
  }
  printf("accept      %s%s, short-circuit %s, pass threshold %g\n",
         r->accept_preset[0] ? "preset " : "bounds", r->accept_preset,
         yesno(r->accept.short_circuit), r->accept.pass_threshold);
  for (int i = 0; i < r->accept.n; i++) {
    char b[128];
    accept_bound_format(&r->accept.bounds[i], b, sizeof b);
    printf("  %s\n", b);
  }
  const struct recipe_budgets *b = &r->budgets;
  printf("budgets     rounds/source %d, examples/source %d", b->rounds_per_source,
         b->examples_per_source);
  if (b->max_calls) printf(", max calls %lld", (long long)b->max_calls);
  if (b->max_tokens) printf(", max tokens %lld", (long long)b->max_tokens);
  if (b->max_cost > 0) printf(", max cost %g", b->max_cost);
  printf("\n");
  if (r->evaluation.early_stop)
    printf("evaluation  early decisions, waves of %d sample%s\n", r->evaluation.wave,
           r->evaluation.wave == 1 ? "" : "s");
  else printf("evaluation  full (every sample of every candidate)\n");
  const struct cand_checks *c = &r->checks;
  printf(
      "checks      context %d..%d chars, leakage %d-grams > %g, rubric %d..%d items, max weight "
      "%d, dedup %s, matcher %s\n",
      c->min_context_chars, c->max_context_chars, c->leakage_ngram, c->leakage_max_overlap,
      c->rubric_min, c->rubric_max, c->max_weight, yesno(c->dedup),
      score_matcher_name(r->verifiable_matcher));
  if (c->signed_rubric)
    printf(
        "rubric      signed: %d..%d positive (weights 1..%d), %d..%d negative (weights "
        "-%d..-1)%s\n",
        c->positive_min, c->positive_max, c->max_weight, c->negative_min, c->negative_max,
        c->max_weight, c->reasoning_skills ? ", reasoning_skills required" : "");
  else if (c->reasoning_skills) printf("rubric      positive only, reasoning_skills required\n");
  if (c->overrides)
    printf("overrides   max question %d chars, %d refused patterns\n",
           c->overrides->max_question_chars, c->overrides->n);
  printf("baselines   cot k %d, rip threshold %g, answer-consistency share %g\n", r->baselines.k,
         r->baselines.rip_threshold, r->baselines.ac_min_share);
  const struct recipe_optimize *o = &r->optimize;
  if (o->present) {
    printf(
        "optimize    %d iterations; train %d, val %d, test %d; minibatch %d; %s (T %g)%s; "
        "objective %s; editable",
        o->iterations, o->train, o->val, o->test, o->minibatch,
        recipe_opt_strategy_name(o->strategy), o->temperature,
        o->minibatch_gate ? ", minibatch gate" : "", recipe_opt_objective_name(o->objective));
    for (int i = 0; i < RECIPE_N_ROLES; i++)
      if (o->editable[i]) printf(" %s", recipe_role_name((enum recipe_role_id)i));
    printf("; analyzer %s/%s, implementer %s/%s\n",
           o->analyzer.present ? o->analyzer.endpoint : "-",
           o->analyzer.present ? o->analyzer.model : "-",
           o->implementer.present ? o->implementer.endpoint : "-",
           o->implementer.present ? o->implementer.model : "-");
  }
  printf("output      %s  (store %s)\n", r->output_folder, r->store_path);
  print_identity(r);
}

/* The first records of the corpus, read as `run` reads them (nothing is sent): a bad record
 * there is an error under on_invalid: fail, a count under skip. 0 or an AD_E* code. */
#define VALIDATE_CORPUS_SAMPLE 1000
static int check_corpus(const struct recipe *r, char *line, size_t n) {
  struct src_options so = r->sources;
  so.read_max = VALIDATE_CORPUS_SAMPLE;
  so.limit = 0;
  so.shuffle = 0;
  struct stat sb;
  if (so.path && stat(so.path, &sb) && errno == ENOENT) {
    /* Not made yet (e.g. by `autodata sim-sources`): a note, since a recipe is often
     * written before its corpus; `run` fails on it, before creating anything. */
    snprintf(line, n, "corpus      %s does not exist yet (run needs it)", so.path);
    return 0;
  }
  if (so.path && !stat(so.path, &sb) &&
      (S_ISCHR(sb.st_mode) || (S_ISREG(sb.st_mode) && !sb.st_size))) {
    snprintf(line, n, "corpus      %s is empty so far (run needs documents)", so.path);
    return 0; /* a placeholder (/dev/null, a file still to fill): noted, like a missing one */
  }
  struct src_corpus c;
  int rc = src_load(&so, &c, line, n);
  if (rc) return rc;
  if (c.n_invalid)
    snprintf(line, n,
             "corpus      %zu of the first %zu records are invalid and will be skipped "
             "(sources.on_invalid: skip); the first: %s",
             c.n_invalid, c.n_invalid + c.n_read, c.first_invalid);
  else snprintf(line, n, "corpus      the first %zu records are valid", c.n_read);
  src_corpus_release(&c);
  return 0;
}

int cmd_validate(int argc, char **argv) {
  int json_out = 0;
  const char *path, *prompts = NULL;
  struct opts_parser op;
  opts_begin(&op, &validate_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_JSON: json_out = 1; break;
    case O_PROMPTS: prompts = op.val; break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos != 1) {
    if (op.npos) opts_usage_error(&validate_cli, "one RECIPE at a time, got %d arguments", op.npos);
    else opts_usage_error(&validate_cli, "RECIPE is required");
    return 2;
  }
  path = op.pos[0];
  struct recipe_load_opts opts = {0};
  opts.prompts_dir = prompts;
  opts.methods = method_name_list();
  struct recipe *r = NULL;
  struct recipe_diag diag = {0};
  int rc = recipe_load(path, &opts, &r, &diag);
  if (rc) {
    for (int i = 0; i < diag.n; i++) fprintf(stderr, "%s\n", diag.msgs[i]);
    if (diag.dropped) fprintf(stderr, "(%d more errors not shown)\n", diag.dropped);
    int total = diag.n + diag.dropped;
    fprintf(stderr, "autodata validate: %s: %d error%s\n", path, total ? total : 1,
            total == 1 ? "" : "s");
    recipe_diag_release(&diag);
    return 2;
  }
  if (check_method_prompt(r)) {
    fprintf(stderr, "autodata validate: %s: 1 error\n", path);
    recipe_free(r);
    recipe_diag_release(&diag);
    return 2;
  }
  char corpus[1024] = "";
  if (check_corpus(r, corpus, sizeof corpus)) {
    fprintf(stderr, "%s\n", corpus);
    fprintf(stderr, "autodata validate: %s: the corpus cannot be used as it is\n", path);
    recipe_free(r);
    recipe_diag_release(&diag);
    return 2;
  }
  if (json_out) {
    json_t *j = recipe_to_json(r);
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s) printf("%s\n", s);
    free(s);
    json_decref(j);
  } else {
    print_summary(r);
    printf("%s\n", corpus);
    printf("ok: %s is valid\n", path);
  }
  recipe_free(r);
  recipe_diag_release(&diag);
  return 0;
}
