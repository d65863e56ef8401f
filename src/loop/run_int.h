/* run_int.h - internals shared by run.c (scheduler, calls, cache) and
 * episode.c (the per-source state machine). Not for use outside src/loop/. */
#ifndef AD_RUN_INT_H
#define AD_RUN_INT_H

#include <jansson.h>
#include <stdint.h>

#include "llm/llm.h"
#include "loop/accept.h"
#include "loop/baseline.h"
#include "loop/candidate.h"
#include "loop/run.h"
#include "recipe/recipe.h"
#include "source/source.h"
#include "store/store.h"

struct episode;
struct call;

/* What a finished call hands to its episode. Strings borrowed for the callback. */
struct call_out {
  int ok;               /* 1: content is the model's reply */
  const char *content;  /* reply content ("" when none) */
  const char *error;    /* when !ok: one-line diagnosis */
  int budget_stop;      /* set the episode aside, unfinished: the run is stopping, or the
                           call failed for infrastructure reasons (see run.c) */
};

typedef void (*call_cb)(struct episode *ep, int sample, const struct call_out *out);

#define CALL_MAX_ATTEMPTS 32

struct call {
  struct run *run;
  struct episode *ep;
  call_cb cb;
  int sample;
  enum recipe_role_id role;
  char label[24];              /* role label in the store: "weak", "judge_strong", ... */
  json_t *body;                /* the request (owned) */
  char *canon;                 /* canonical request text (owned) */
  size_t canon_len;
  char key[33];                /* cache key */
  int cache_hit;
  char *cached;                /* cached reply body (owned) */
  size_t cached_len;
  struct store_attempt attempts[CALL_MAX_ATTEMPTS];
  char *attempt_err[CALL_MAX_ATTEMPTS];
  int n_attempts;
  struct call *next;           /* ready queue */
};

struct run {
  const struct recipe *rc;
  const struct run_opts *opts;
  struct run_summary *sum;
  llm_client *llm;
  store *st;
  store_id run_id;
  struct src_corpus corpus;
  struct cand_checks checks;
  json_t *prompt_hashes;       /* role -> sha256 */
  size_t next_doc;             /* next corpus index to start */
  int active;                  /* episodes in flight */
  int concurrency;
  int outstanding;             /* calls submitted and not yet delivered */
  struct call *ready_head, *ready_tail; /* cache hits waiting for delivery */
  int stopping;                /* no new calls */
  int fatal;                   /* a store error: stop and report */
  char fatal_msg[512];
  int64_t t0_ms, last_progress_ms;
  int live_progress;
  json_t *no_schema;           /* endpoint name -> true: it refused response_format */
  int infra_streak;            /* calls in a row that failed for infrastructure reasons */

  /* The method (docs/baselines.md). Baselines use their own challenger prompt. */
  enum bl_method method;
  struct bl_params bl;
  struct tpl_prompt bl_prompt;  /* compiled <method>-<task>.md (baselines only) */
  char *bl_prompt_path, *bl_prompt_text;
  size_t bl_prompt_len;
  char bl_prompt_sha[65];
  char *output_folder, *store_path; /* effective (owned) */
};

/* Submit a call for role (label for the store) with the request body (taken).
 * Delivers through cb exactly once, from the loop. Returns 0, or a negative code
 * when it could not be started (then cb is never called and body is freed). */
int run_call(struct run *r, struct episode *ep, enum recipe_role_id role, const char *label,
             int sample, json_t *body, call_cb cb);
/* Sampling seed for (source, round, role label, sample). */
int64_t run_seed(const struct run *r, const char *source_id, int round, const char *label,
                 int sample);
/* 0 when the endpoint has refused response_format in this run (requests then go
 * without it and the JSON is extracted from the text), else 1. */
int run_schema_ok(const struct run *r, const char *endpoint);
/* Record a store failure as fatal (stops the run). */
void run_store_failed(struct run *r, const char *what);

/* Episodes (episode.c). */
struct episode *ep_new(struct run *r, const struct src_doc *doc);
/* Begin the episode: submits its first calls. */
void ep_start(struct episode *ep);
/* Called by episode code when it finishes or parks; the run frees it. */
void run_episode_ended(struct run *r, struct episode *ep, int finished, int accepted);
void ep_free(struct episode *ep);
const char *ep_source_id(const struct episode *ep);
int ep_round(const struct episode *ep);

#endif
