/* recipe.h - YAML recipes -> a fully validated struct recipe.
 *
 * A recipe says which corpus to read, which model endpoints exist, which model
 * and prompt plays each role, how acceptance is decided, the budgets and the
 * programmatic checks. docs/recipes.md is the user reference.
 *
 * Parsing uses libyaml's document API so every error names file:line:column
 * (1-based). `${VAR}` and `${VAR:-default}` are interpolated in every scalar
 * value (not in keys) before it is typed; `$${` writes a literal `${`. Unknown
 * keys, wrong types, missing required keys, references to undeclared endpoints,
 * missing prompt files, template syntax errors in prompt files and bad accept
 * bounds are all errors. The loader collects as many errors as it can (up to
 * RECIPE_MAX_ERRORS) rather than stopping at the first.
 *
 * Secrets: only the NAME of the API-key variable is kept (api_key_env); header
 * values are kept interpolated (they go to the server) but recipe_to_json()
 * prints their uninterpolated text and redacts values of headers whose name
 * suggests a secret (authorization, *key*, *token*, *secret*).
 *
 * Ownership: a struct recipe owns every string, json_t and compiled template it
 * points to; recipe_free() releases them all. A loaded recipe is read-only and
 * may be shared by threads.
 */
#ifndef AD_RECIPE_H
#define AD_RECIPE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/accept.h"
#include "eval/baseline.h"
#include "eval/candidate.h"
#include "eval/override.h"
#include "eval/score.h"
#include "eval/screen.h"
#include "llm/llm.h"
#include "prompt/template.h"
#include "source/source.h"
#include "util/buf.h"
#include "util/err.h"

#define RECIPE_MAX_ERRORS 32
#define RECIPE_MAX_FILE (4u * 1024 * 1024) /* recipe file size cap */
#define RECIPE_MAX_PROMPT_FILE (1u * 1024 * 1024)

enum recipe_role_id {
  RECIPE_ROLE_ORCHESTRATOR = 0,
  RECIPE_ROLE_CHALLENGER,
  RECIPE_ROLE_QUALITY,
  RECIPE_ROLE_WEAK,
  RECIPE_ROLE_STRONG,
  RECIPE_ROLE_JUDGE,
  RECIPE_ROLE_EXTRACTOR,  /* optional: the two-stage challenger's first stage (docs/recipes.md) */
  RECIPE_ROLE_LOOP_JUDGE, /* optional: accept/improve after the solvers (stat loop_accept) */
  RECIPE_N_ROLES
};
/* "orchestrator", "challenger", "quality", "weak", "strong", "judge", "extractor",
 * "loop_judge". */
const char *recipe_role_name(enum recipe_role_id r);

struct recipe_price {
  char *model;
  double input_per_mtok;  /* currency units per million prompt tokens */
  double output_per_mtok; /* per million completion tokens */
};

enum { RECIPE_SCHEMA_OFF = 0, RECIPE_SCHEMA_STRICT = 1, RECIPE_SCHEMA_BASIC = 2 };

struct recipe_endpoint {
  char *name;
  char *base_urls[LLM_MAX_URLS];
  int n_urls;
  char *api_key_env;                  /* NULL = no key */
  char *headers[LLM_MAX_HEADERS];     /* "Name: value" (interpolated) */
  char *headers_raw[LLM_MAX_HEADERS]; /* "Name: value" as written (for recipe_to_json) */
  int n_headers;
  int max_inflight;        /* default 64 */
  double requests_per_min; /* 0 = unlimited */
  double tokens_per_min;   /* 0 = unlimited */
  int connect_timeout_ms;  /* default 10000 */
  int request_timeout_ms;  /* default 600000 */
  int max_retries;         /* default 8 */
  json_t *extra_body;      /* object or NULL */
  int json_schema;         /* response_format json_schema: RECIPE_SCHEMA_OFF / _STRICT (default)
                              / _BASIC (shape and types only, docs/servers.md) */
  struct recipe_price *prices;
  int n_prices;
  int builtin;   /* 1 for the implicit `sim` endpoint */
  int line, col; /* where it is declared (0 for builtin) */
};

struct recipe_prompt {
  char *path; /* resolved path of the file, NULL when not set */
  char *text; /* whole file */
  size_t len;
  char sha256[65];       /* of the file's bytes */
  struct tpl_prompt tpl; /* compiled system/user parts */
};

struct recipe_role {
  int present;        /* 0: role not used (orchestrator absent, quality: false) */
  char *endpoint;     /* endpoint name */
  int endpoint_index; /* index into recipe.endpoints */
  char *model;
  struct recipe_prompt prompt;
  struct recipe_prompt system_prompt; /* optional file whose WHOLE text is one template,
                                         compiled into system_prompt.tpl.user (no split);
                                         when set it replaces prompt's system part:
                                         tpl_prompt_render(&prompt.tpl,
                                         system_prompt.tpl.user, ...) */
  double temperature;                 /* defaults: solvers 1.0, challenger 0.7, judge/quality 0.0,
                         orchestrator 0.7 */
  double top_p;                       /* LLM_UNSET when not set */
  int max_tokens;                     /* 0 when not set */
  json_t *extra;                      /* object merged into the request body, or NULL */
  int samples;   /* weak/strong: default 3 (4 with preset math-exact); others 1 */
  int parallel;  /* challenger: challengers asked at once per round, 1..SCREEN_MAX_PARALLEL
                    (docs/loop.md, "Several challengers per round"); default 1; others 1 */
  int line, col; /* position of the role's mapping (0 when defaulted) */
};

struct recipe_budgets {
  int rounds_per_source;   /* default 5 */
  int examples_per_source; /* default 1 */
  int agent_steps;         /* method agent: tool calls per source; default 40 */
  int64_t max_calls;       /* 0 = none */
  int64_t max_tokens;      /* 0 = none */
  double max_cost;         /* 0 = none */
};

/* budgets.rounds_per_source when the recipe does not say (docs/recipes.md, "Budgets"). */
#define RECIPE_DEFAULT_ROUNDS 15
/* `evaluation:` how a candidate's solver samples and their judgements are issued
 * (docs/recipes.md). */
struct recipe_evaluation {
  int early_stop;  /* default 1: stop issuing samples once the verdict is certain */
  int wave;        /* samples issued together before the next decision; default 1 */
  int batch_judge; /* default 0: one judge call grades all the answers of a wave */
};
/* ---- optimize: (`autodata optimize`, docs/optimize.md) ---- */
enum recipe_opt_objective {
  RECIPE_OPT_PASS_RATE = 0, /* share of generated candidates that pass the gate (default) */
  RECIPE_OPT_ACCEPTANCE,    /* share of sources that end with an accepted example */
  RECIPE_OPT_GAP            /* mean strong - weak gap of the accepted candidates */
};
/* Parent selection: the paper's Boltzmann sampling over validation means, or GEPA's
 * Pareto frontier over per-source validation scores. */
enum recipe_opt_strategy { RECIPE_OPT_BOLTZMANN = 0, RECIPE_OPT_PARETO };
/* One of the optimiser's own roles (analyzer, implementer). */
struct recipe_opt_role {
  int present;
  char *endpoint; /* endpoint name */
  int endpoint_index;
  char *model;
  char *prompt;       /* as written (resolved by the optimiser: recipe folder, then prompts
                   folder), NULL: prompts/optimize-<role>.md */
  double temperature; /* default 0.7 */
  int max_tokens;     /* default 8192 */
  int line, col;
};
struct recipe_optimize {
  int present;          /* the recipe has an optimize: section */
  int iterations;       /* default 30 */
  int parallel;         /* iterations in flight; default 1 */
  int train, val, test; /* split sizes (sources); defaults 20, 30, 100 */
  int minibatch;        /* train sources per iteration; default 5 */
  double temperature;   /* Boltzmann temperature; default 0.1 */
  enum recipe_opt_strategy strategy;
  int minibatch_gate; /* 1: a mutant goes on to validation only when it beats its parent on
                         the parent's train minibatch (GEPA); default 0 (the paper's) */
  int merge_every;    /* N > 0: every N-th iteration merges two admitted lineages that changed
                         different prompts, when a pair exists (GEPA's merge); 0: never */
  enum recipe_opt_objective objective;
  int editable[RECIPE_N_ROLES];  /* 1: the role's prompt may change (default challenger,
                                   orchestrator, quality) */
  int max_prompt_chars;          /* a mutant's prompt past this is refused; default 20000 */
  int64_t max_calls, max_tokens; /* the whole optimisation; 0 = none */
  double max_cost;
  struct recipe_opt_role analyzer, implementer;
  int line, col;
};
/* "pass_rate", "acceptance", "gap"; "boltzmann", "pareto". */
const char *recipe_opt_objective_name(enum recipe_opt_objective o);
const char *recipe_opt_strategy_name(enum recipe_opt_strategy s);

/* `finalize:` the dataset-level analysis after the loop (docs/analyze.md). */
struct recipe_finalize {
  int present;      /* the recipe has a finalize: section */
  double threshold; /* near-duplicate Jaccard threshold; default 0.7 */
  int shingle;      /* words per shingle; default 3 */
  int ngram;        /* words per contamination n-gram; default 13 */
  char **against;   /* reference files (as written: relative to the working folder) */
  int n_against;
  char **fields; /* JSONL fields of the reference files; none = every field */
  int n_fields;
  int remove;  /* default 1: removed examples leave dataset.jsonl for removed.jsonl */
  int quality; /* 1: the end-of-loop quality pass (`quality: true` or a mapping) */
  char *quality_endpoint, *quality_model; /* its endpoint and model: the quality role's, another
                                             role's (`model: ROLE`) or the named model */
  int line, col;
};

/* `analysis:` batched dataset-level feedback during the run (docs/analyze.md). */
struct recipe_analysis {
  int every; /* N > 0: a dataset note from every N accepted examples (in source order); 0: off */
  int line, col;
};

struct recipe {
  /* Provenance */
  char *path;        /* as given */
  char *dir;         /* folder of the recipe file ("." for a bare name) */
  char sha256[65];   /* of the recipe file's bytes */
  char *prompts_dir; /* default prompts folder used, NULL if none was found */

  /* Top level */
  char *name;
  enum cand_task task; /* "rubric" (default) | "verifiable" */
  int64_t seed;        /* default 1 */
  char *method;        /* "agentic" (default), or one of recipe_load_opts.methods */
  char *goal;          /* "" when not set */
  int concurrency;     /* sources in flight; default 64 */

  /* sources: strings inside point into recipe-owned memory */
  struct src_options sources;

  struct recipe_endpoint *endpoints; /* declared ones, then `sim` if not declared */
  int n_endpoints;

  struct recipe_role roles[RECIPE_N_ROLES];

  struct accept_spec accept;
  char accept_preset[32]; /* "" when bounds were listed or defaulted */

  struct recipe_budgets budgets;
  struct cand_checks checks;     /* `checks:` (defaults: cand_checks_default) */
  struct override_set overrides; /* checks.max_question_chars, checks.reject_patterns (owned;
                                    checks.overrides points here when any is set) */
  struct recipe_evaluation evaluation;
  struct recipe_prompt judge_batch;      /* judge-batch-<task>.md from the prompts folder, loaded
                                       when evaluation.batch_judge is on */
  enum score_matcher verifiable_matcher; /* checks.verifiable_matcher; default SCORE_AUTO */
  struct bl_params baselines;            /* `baselines:` (defaults: bl_params_default); only
                                         cot-self-instruct reads them; `autodata run`'s
                                         --cot-k, --rip-threshold, --ac-share override them */

  struct recipe_optimize optimize; /* `optimize:` (defaults when absent) */
  struct recipe_finalize finalize; /* `finalize:` (defaults when absent) */
  struct recipe_analysis analysis; /* `analysis:` (every 0 when absent) */

  char *output_folder; /* default "runs/<name>" */
  char *store_path;    /* default "<output_folder>/store.db" */

  /* Every ${VAR} the recipe read, in recipe order, as [{"variable": NAME, "field":
   * "roles.weak.model", "from": "environment" | "default"}] ("default": the variable
   * was unset or empty and the ${VAR:-default} text was used). Names only, never
   * values: a variable may hold a secret. Never NULL. */
  json_t *env_refs;
};

/* Errors collected while loading; each message is one line
 * "file:line:col: message". */
struct recipe_diag {
  int n;
  char *msgs[RECIPE_MAX_ERRORS];
  int dropped; /* errors past RECIPE_MAX_ERRORS, not stored */
};
void recipe_diag_release(struct recipe_diag *d);

struct recipe_load_opts {
  const char *prompts_dir; /* default prompts folder; NULL = recipe_default_prompts_dir() */
  int skip_prompts;        /* 1: do not read prompt files (fuzzing); prompts stay empty */
  /* The names `method:` may take, NULL-terminated (the loop's method table,
   * method_name_list()); NULL: any name is kept, for the caller to check. */
  const char *const *methods;
  /* Variable lookup for ${VAR}; NULL = getenv. */
  const char *(*getenv_fn)(void *ud, const char *name);
  void *getenv_ud;
};

/* Load and validate the recipe file at path. opts may be NULL. On success
 * returns 0 and *out (free with recipe_free). On failure returns AD_EIO (file
 * unreadable), AD_ETOOBIG (file too big), AD_EPARSE (YAML syntax), AD_EINVAL
 * (validation) or AD_ENOMEM (libyaml could not allocate its parser), *out is NULL
 * and diag holds at least one message (diag may be NULL to ignore them; free with
 * recipe_diag_release). */
AD_WUR int recipe_load(const char *path, const struct recipe_load_opts *opts, struct recipe **out,
                       struct recipe_diag *diag);
/* The same from memory: virtual_path names the file in messages and gives the
 * folder relative prompt paths resolve against. text need not be NUL-terminated. */
AD_WUR int recipe_load_mem(const char *text, size_t n, const char *virtual_path,
                           const struct recipe_load_opts *opts, struct recipe **out,
                           struct recipe_diag *diag);
void recipe_free(struct recipe *r);

/* Index of the endpoint called name, or -1 when there is none. */
int recipe_find_endpoint(const struct recipe *r, const char *name);

/* Fill out for endpoint i (0 <= i < n_endpoints). Every pointer in out borrows
 * from r and is valid while r lives. Fields the recipe leaves unset get the llm
 * defaults (backoff 500/30000 ms, adaptive on). Returns 0 or AD_EINVAL for a bad i. */
int recipe_endpoint_config(const struct recipe *r, int i, struct llm_endpoint_config *out);

/* Price per million tokens of model on endpoint i; returns 0 and sets both, or
 * AD_ENOTFOUND when the recipe lists no price for it (cost then unknown, 0). */
int recipe_price(const struct recipe *r, int i, const char *model, double *in_per_mtok,
                 double *out_per_mtok);

/* The effective configuration as canonical JSON material (new reference): every
 * field after defaults, prompts as {path, sha256}, no secrets. Dump it with
 * jx_dump_canonical() for a stable byte form. Never NULL. */
json_t *recipe_to_json(const struct recipe *r);

/* ---- identity ----------------------------------------------------------------
 * A run's identity is its effective configuration: the recipe after ${VAR}
 * interpolation and defaults, restricted to what decides the data a run makes:
 * task, seed, method, goal; how sources are read (format, fields, max_chars,
 * shuffle; not the path or limit); the endpoints the roles use (headers as
 * recipe_to_json prints them, extra_body, json_schema; not base URLs - a server
 * restarted on another host or port serves the same model, and an overnight run must
 * resume there -, keys, rate limits, timeouts, retries or prices); every role's
 * endpoint, model, sampling, samples and
 * prompt texts (by sha256, not by path); accept and checks. Budgets, concurrency,
 * output paths, prices and the recipe's name are not part of it: changing them
 * between runs resumes the same run (docs/recipes.md, "Resume"). */

/* The identity of a loaded recipe. New reference. */
json_t *recipe_identity(const struct recipe *r);
/* The same projection of a recipe_to_json() object (also one recorded by an older
 * version); NULL when full is not an object. New reference. */
json_t *recipe_identity_of(const json_t *full);
/* SHA-256 (hex) of the identity's canonical JSON: 0, or AD_EINVAL. */
int recipe_identity_sha256(const json_t *identity, char out[65]);
/* Describe what differs between two identities into out, one "field old -> new"
 * per difference, "; "-separated, values as compact JSON, at most 8 then "and N
 * more"; each field a ${VAR} set (env_refs of the new recipe, may be NULL) is
 * followed by "(set through $VAR)". skip_unrecorded: a member old does not have
 * is not a difference (old was projected from a record of an older version, which
 * did not know that setting). Returns the number of differences (0: the same), or
 * a negative AD_E* code (out past its cap). */
int recipe_identity_diff(const json_t *old, const json_t *neu, const json_t *env_refs,
                         int skip_unrecorded, struct buf *out);

/* ---- prompt variables by role ---------------------------------------------------
 * The variables each role's prompt is given, the one list both `validate` and the
 * loop use (docs/templates.md). Every role gets task, verifiable and goal; then
 *   orchestrator: source_title, round, history
 *   challenger:   source_title, source_text, round, feedback, instructions,
 *                 max_weight, rubric_min, rubric_max (also a method's own challenger)
 *   quality:      source_title, source_text, candidate_json, max_weight, rubric_min,
 *                 rubric_max
 *   weak, strong: context, question (never the source, reference answer or rubric)
 *   judge:        question, response, and rubric (rubric tasks) or reference_answer
 *                 (verifiable tasks)
 * NULL-terminated list of names. */
const char *const *recipe_role_vars(enum recipe_role_id role, enum cand_task task);
/* Is name one of role's variables? */
int recipe_role_has_var(enum recipe_role_id role, enum cand_task task, const char *name);
/* A new object with only the members of vars the role is entitled to. */
json_t *recipe_role_filter_vars(enum recipe_role_id role, enum cand_task task, const json_t *vars);
/* Check a role's prompt before any call: render it (and system, which may be NULL)
 * with sample values of exactly the role's variables, every section body visited
 * (tpl TPL_CHECK). Returns 0, or AD_ENOTFOUND / AD_EPARSE with "file:line:col:
 * unknown variable 'x' ..." in err, naming the role and what it may use. */
int recipe_check_prompt(const struct recipe *r, enum recipe_role_id role,
                        const struct tpl_prompt *p, const tpl *system, char *err, size_t errlen);

/* Locate the default prompts folder: $AUTODATA_PROMPTS, else
 * <exe dir>/../../prompts, <exe dir>/../prompts, else AD_PREFIX/share/autodata/prompts.
 * A folder counts when it holds solver.md. Writes it to out and returns 0, or
 * AD_ENOTFOUND. */
int recipe_default_prompts_dir(char *out, size_t n);

/* The default prompt file name for a role and task ("challenger-rubric.md"). */
const char *recipe_default_prompt_file(enum recipe_role_id role, enum cand_task task);

/* Accept presets: fill s for preset name given the task. Returns 0, or
 * AD_ENOTFOUND for an unknown name. Names: cs-deployed, cs-prose, math-exact,
 * verifiable-majority. */
int recipe_accept_preset(const char *name, enum cand_task task, struct accept_spec *s);

#endif
