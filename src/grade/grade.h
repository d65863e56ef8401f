/* grade.h - scoring answers against a dataset's own examples, with the dataset's own judge.
 *
 * `autodata eval` and `autodata reward-server` (docs/eval.md) grade answers exactly as
 * the run that made the dataset graded its solvers: the judge's prompt text, model,
 * endpoint, sampling and JSON schema, the solver prompt and the matcher all come from
 * the run recorded in the dataset's store (run info: extra.recipe, extra.prompts), and
 * the rubric score is the loop's (score_parse_verdicts + score_rubric, one repair turn
 * for an invalid judgement, fb_judge_repair_note).
 *
 * A grade_set is loaded once (grade_set_load) and read-only afterwards. Requests are
 * built here; sending them (through the llm client, behind a store cache) is the
 * caller's (evalrun.c, reward.c).
 */
#ifndef AD_GRADE_H
#define AD_GRADE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/candidate.h"
#include "eval/score.h"
#include "llm/llm.h"
#include "prompt/template.h"
#include "store/store.h"

#define GRADE_MAX_K 64 /* samples per example */

/* One example of the dataset (a dataset.jsonl line). */
struct grade_example {
  char *id;        /* "id" */
  char *source_id; /* "source_id" ("" when absent) */
  int round;       /* "rounds_used": the round it was accepted in */
  struct cand cand;
  json_t *line;         /* the whole line (owned) */
  uint64_t prompt_hash; /* of the solver's user message, for lookups by prompt text */
  char *user_text;      /* the export's prompt: context + "\n\n" + question, or the question */
  uint64_t user_hash;
};

/* The judge and solver settings of the run that made the dataset. */
struct grade_set {
  enum cand_task task;
  uint64_t seed; /* the run's seed */
  char *goal;
  enum score_matcher matcher;
  /* judge */
  char *judge_endpoint, *judge_model;
  struct llm_endpoint_config judge_cfg; /* strings borrow from the fields below */
  char *judge_url;
  char *judge_key_env;
  json_t *judge_extra_body;
  int json_schema; /* 0 off, 1 strict, 2 basic */
  double judge_temperature, judge_top_p;
  int judge_max_tokens;
  json_t *judge_extra;
  struct tpl_prompt judge_tpl;
  char judge_prompt_sha[65];
  /* solver (the weak role's prompt and sampling) */
  struct tpl_prompt solver_tpl;
  double solver_temperature, solver_top_p;
  int solver_max_tokens;
  int weak_samples, strong_samples;
  /* examples, in dataset order */
  struct grade_example *ex;
  size_t n;
  char dataset_path[4096], store_path[4096];
  char dataset_sha[65];
};

/* Load the dataset (DIR holding dataset.jsonl and store.db, or a dataset .jsonl file
 * whose folder holds store.db; store_path overrides where the store is) and the judge
 * settings of the store's latest run. judge_url / judge_model (NULL: the recorded ones)
 * override the judge's base URL and model. Returns 0, or AD_EIO / AD_EPARSE /
 * AD_ENOTFOUND / AD_EINVAL with a message naming the file and line or the missing field. */
int grade_set_load(const char *dataset, const char *store_path, const char *judge_url,
                   const char *judge_model, struct grade_set *out, char *err, size_t errlen);
void grade_set_release(struct grade_set *s);

/* The example with this id; or the one whose solver user message or export prompt
 * (context + "\n\n" + question) is text, else whose export prompt, else whose longest
 * question text contains (a prompt in a chat template); NULL if none. */
const struct grade_example *grade_find_id(const struct grade_set *s, const char *id);
const struct grade_example *grade_find_prompt(const struct grade_set *s, const char *text);

/* The solver's messages for an example (what the solvers saw: context and question). New
 * reference, or NULL with err. */
json_t *grade_solver_messages(const struct grade_set *s, const struct grade_example *e, char *err,
                              size_t errlen);

/* Seeds as the run derives them: rng_derive(run seed, "source|round|label|sample"). */
int64_t grade_seed(const struct grade_set *s, const struct grade_example *e, const char *label,
                   int sample);

/* 1 when a response of this set is graded by a judge call, 0 when a local matcher decides. */
int grade_needs_judge(const struct grade_set *s);

/* The judge request for response (new reference), as the loop builds it; repair_problem
 * non-NULL: the repair turn after an invalid judgement naming that problem. NULL with err. */
json_t *grade_judge_request(const struct grade_set *s, const struct grade_example *e,
                            const char *response, int64_t seed, const char *repair_problem,
                            char *err, size_t errlen);

/* Score a judge reply's content: 0 with *score in [0,1] and *detail (new reference: rubric:
 * [{"criterion","weight","met"}], verifiable: {"correct"}), or AD_EPARSE with err (the
 * judgement is invalid: the caller's repair turn). */
int grade_judge_reply(const struct grade_set *s, const struct grade_example *e, const char *content,
                      double *score, json_t **detail, char *err, size_t errlen);

/* Local matching of a verifiable answer (grade_needs_judge() == 0): the score, 0 or 1, and
 * *detail {"answer": extracted, "correct": bool} (new reference). */
double grade_match(const struct grade_set *s, const struct grade_example *e, const char *response,
                   json_t **detail);

/* ---- model calls behind the store's cache (gcall.c) ------------------------------------
 * Every call goes through the store as a run's do (loop/callrec.h): a request answered
 * before (same endpoint, same canonical body) is replayed from the store and costs
 * nothing; others are sent and recorded with every attempt. Callbacks follow llm.h's
 * contract: never from inside grade_call(), exactly once after a 0 return, from
 * grade_caller_pump(). One thread. */
struct grade_caller {
  llm_client *llm; /* borrowed */
  store *st;       /* borrowed; NULL: no cache, nothing recorded */
  store_id run;
  int64_t sent, cache_hits, failed;
  int64_t store_errors; /* rows the store refused (the next flush names the error) */
  struct gcall *ready_head, *ready_tail; /* cache hits waiting for delivery */
};
/* The outcome of a call: ok with content (borrowed for the callback), or error. */
struct grade_reply {
  int ok;
  const char *content, *finish_reason, *error;
  int http_status; /* of the failed call (0: no HTTP answer) */
  int rc;          /* the client's code of a failed call */
};
typedef void (*grade_done_fn)(void *ud, const struct grade_reply *r);
/* Submit body (borrowed) to endpoint; role, source_id and round are what the store row
 * says. 0, or the client's error (message in llm_client_errmsg). */
int grade_call(struct grade_caller *c, const char *endpoint, const char *role,
               const char *source_id, int round, const json_t *body, grade_done_fn done, void *ud);
/* Deliver queued cache hits and drive the client for at most wait_ms; returns the calls
 * still outstanding. */
int grade_caller_pump(struct grade_caller *c, int wait_ms);
int grade_caller_pending(const struct grade_caller *c);

/* Grade one response as the loop does: a local matcher, or a judge call (seed of
 * (label, sample): grade_seed) with one repair turn (label "<label>_repair") for an
 * invalid judgement. fn is called exactly once, possibly before this returns. */
struct grade_verdict {
  int ok;
  double score;
  const json_t *detail; /* borrowed for the callback (see grade_judge_reply) */
  const char *error;    /* when !ok */
  int infra;            /* !ok because the judge endpoint failed (down, 5xx, 429, auth) */
};
typedef void (*grade_verdict_fn)(void *ud, const struct grade_verdict *v);
void grade_judge_async(struct grade_caller *c, const struct grade_set *s,
                       const struct grade_example *e, const char *response, const char *label,
                       int sample, grade_verdict_fn fn, void *ud);

/* ---- `autodata eval` (evalrun.c) -------------------------------------------------------- */
struct grade_eval_opts {
  const char *base_url, *model, *api_key_env; /* the model under evaluation */
  int k;                                      /* answers per example, 1..GRADE_MAX_K */
  int concurrency;                            /* samples in flight; 0 = 64 */
  double temperature;                         /* LLM_UNSET: the run's weak solver's */
  int max_tokens;                             /* 0: the run's weak solver's */
  const char *seed_role; /* NULL: seeds labelled "eval"; "weak" / "strong": that role's seeds
                            in the example's accepted round (the run's own draws) */
  const char *out_dir;
  const char *command_line;
  int quiet;
};
/* Evaluate; writes OUT/eval.jsonl (one line per example) and OUT/summary.json, and keeps
 * every call in OUT/store.db (a rerun replays them). 0 and *summary (new reference), or
 * an error with err. */
int grade_eval_run(const struct grade_set *s, const struct grade_eval_opts *o, json_t **summary,
                   char *err, size_t errlen);
/* The summary of an eval.jsonl (a folder holding one, or the file) as grade_eval_run
 * gives it; resamples and seed of the bootstrap. */
int grade_eval_read(const char *path, json_t **lines, char *err, size_t errlen);
/* Paired comparison of two evals' per-example lines: new reference
 * {"a","b","pairs","metrics":{"mean@k":{"a","b","diff","lo","hi","a_wins","b_wins","ties"},...}}. */
json_t *grade_eval_compare(const json_t *a, const json_t *b, int resamples, uint64_t seed);

/* ---- reward requests (reward.c) --------------------------------------------------------
 * Two protocols: OpenRLHF's remote reward model (POST /get_reward {"query": [text],
 * "prompts": [text], "labels": [text]} -> {"rewards": [x]}; a query is prompt + response,
 * a label an example id or empty) and the plain API (POST /v1/reward {"id" or "prompt",
 * "responses": [text] or "response": text} -> scores with per-criterion detail). */
#define GRADE_REWARD_MAX_ITEMS 4096
enum grade_reward_kind { GRADE_RW_OPENRLHF = 0, GRADE_RW_PLAIN };
struct grade_reward_item {
  const char *id;       /* a label / id, or NULL (borrowed from the request) */
  const char *prompt;   /* or NULL */
  const char *response; /* never NULL */
};
struct grade_reward_req {
  enum grade_reward_kind kind;
  json_t *root; /* owns the strings */
  struct grade_reward_item *items;
  size_t n;
};
/* Parse a request body strictly: 0, or AD_EPARSE / AD_EINVAL with err naming the field
 * and the problem ("body is not JSON: ... at line 1, column 7", "\"query\"[2]: expected a
 * string", "\"prompts\" has 2 items but \"query\" has 3", ...). */
int grade_reward_parse(enum grade_reward_kind kind, const char *body, size_t len,
                       struct grade_reward_req *out, char *err, size_t errlen);
void grade_reward_req_release(struct grade_reward_req *r);

struct grade_server_opts {
  int port;               /* 0: the kernel picks */
  int threads;            /* HTTP workers; 0 = 2 */
  size_t max_body;        /* bytes; 0 = 8 MiB */
  const char *seed_role;  /* NULL: judge seeds labelled "judge_reward"; "weak"/"strong" */
  const char *cache_path; /* the store of judge calls (created) */
  int judge_retries;      /* < 0: the recorded endpoint's */
  int judge_timeout_ms;   /* <= 0: the recorded endpoint's */
  int quiet;
};
/* Serve until SIGINT/SIGTERM (installs the handlers): no new connection is taken, and the
 * requests being judged are answered first (a second signal cancels their judge calls:
 * 503). Prints "listening on URL" on stdout once bound. 0, or an error with err. */
int grade_serve(const struct grade_set *s, const struct grade_server_opts *o, char *err,
                size_t errlen);

/* ---- metrics (pure) -------------------------------------------------------------------- */

/* Per example over its n judged sample scores (n >= 1): the mean (mean@k / avg@k) and the
 * best (best@k; for verifiable scores 0/1 it is pass@k). A sample is correct (pass) when
 * its score >= threshold. */
struct grade_metrics {
  double mean, best;
  int n;
};
void grade_metrics_of(const double *scores, int n, struct grade_metrics *out);

/* Paired comparison of two evals over the examples they share: diffs[i] = a[i] - b[i]
 * of the per-example value. Fills est/lo/hi (bootstrap over the pairs, seeded) and n;
 * n == 0 gives NANs. */
struct grade_paired {
  double est, lo, hi;
  size_t n;
  int a_wins, b_wins, ties;
};
void grade_paired_diff(const double *a, const double *b, size_t n, int resamples, uint64_t seed,
                       struct grade_paired *out);

#endif
