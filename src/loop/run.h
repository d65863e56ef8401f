/* run.h - a run: many Agentic Self-Instruct episodes on one event loop.
 *
 * run_execute() loads the corpus, opens (or resumes) the store, and drives one
 * episode per source, `concurrency` sources in flight, every model call through
 * the async client (src/llm) with the store's model-call cache in front of it:
 * a call answered before (in this store, or in --cache-from) is never sent
 * again. Finished sources are skipped on resume; an episode cut mid-round is
 * replayed from the cache and sends only the calls that are missing. Every
 * sampling seed is derived from (run seed, source, round, role, sample), so the
 * same recipe and seed give the same dataset, in-process or over HTTP, with or
 * without transient faults.
 *
 * Budgets (max_calls, max_tokens, max_cost) and SIGINT/SIGTERM stop the run
 * cleanly: no new call is sent, calls in flight finish (or are cancelled on a
 * second SIGINT/SIGTERM), and the same holds when the session is gone: SIGHUP (the
 * terminal closed; not when started under nohup) and SIGPIPE (stdout or stderr was a
 * pipe whose reader left), unfinished sources stay "in_progress" for a later resume, and
 * the outputs are written from what is done. A call that fails after its retries
 * for infrastructure reasons (endpoint down, overloaded, misconfigured) sets its
 * episode aside the same way; three in a row stop the run (docs/loop.md).
 *
 * At the end run_execute() writes dataset.jsonl, rejected.jsonl, candidates.jsonl
 * and DATACARD.md into the output folder (regenerable from the store alone).
 *
 * Methods (docs/baselines.md): "agentic" runs the loop above; the one-shot
 * baselines "self-instruct" and "cot-self-instruct" play one round per source
 * with their own challenger prompt, no orchestrator and no feedback, evaluate
 * every parsed candidate with weak and strong (no short-circuit), record the
 * recipe's acceptance verdict and keep in dataset.jsonl what passes the
 * method's filter. The method and its filter settings are part of the run's
 * identity: resuming a store with another method is refused.
 */
#ifndef AD_RUN_H
#define AD_RUN_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "eval/baseline.h"
#include "llm/llm.h"
#include "recipe/recipe.h"
#include "store/store.h"

struct run_opts {
  int new_run;                /* start a new run even if the store holds a different one */
  int reopen_exhausted;       /* resume: play on the exhausted sources that used fewer rounds
                                 than rounds_per_source now allows (a raised budget) */
  const char *cache_from;     /* another store whose answered calls may be reused */
  size_t limit;               /* 0 = the recipe's sources.limit */
  int concurrency;            /* 0 = the recipe's */
  int quiet;                  /* no progress lines */
  int progress;               /* -1 auto (TTY: live line), 0 plain lines, 1 live line */
  const char *command_line;   /* recorded in the store and the card */
  const char *method;         /* NULL = the recipe's `method:` ("agentic" by default);
                               "self-instruct" | "cot-self-instruct" (docs/baselines.md) */
  const struct bl_params *bl; /* CoT filter settings that override the recipe's `baselines:`,
                                 field by field: k <= 0 and a NaN threshold/share mean "not
                                 given" (the recipe's value is used); NULL = all from the recipe */
  const char *output_folder;  /* NULL = the recipe's; for a baseline whose recipe keeps the
                                 default runs/<name>, runs/<name>-<method> */
  const char *store_path;     /* NULL = the recipe's output.store (`--store`) */
  int lease_ms;               /* a PostgreSQL store's run is shared by every `autodata run` on
                                 it (workers, docs/store.md): a source's lease, 0 = 30 s */
  const json_t *sim_world;    /* {role: {model, params}} of the roles on sim world models
                                 (docs/sim.md), recorded in the run info as "sim_world"; or NULL */
  /* `autodata optimize` (docs/optimize.md): play only these sources of the corpus, in this
   * order (NULL: all); and use this open store (borrowed: flushed, never closed; NULL: open
   * the recipe's). Prompt texts and the seed come from the recipe the caller passes. */
  const char *const *source_ids;
  size_t n_source_ids;
  store *store;
  /* The client to use (borrowed; the caller drives its loop and owns signals: run_start /
   * run_step); NULL: the run's own (run_execute). */
  llm_client *llm;
};

struct run_summary {
  size_t sources, done, exhausted, pending, skipped_done;
  size_t accepted, rejected_candidates; /* candidates that passed / failed the gate */
  size_t kept;     /* baselines: examples kept by the method's filter this session */
  char method[32]; /* the method that ran */
  int baseline;    /* 1 for a one-shot baseline method (method_ops.baseline) */
  int64_t calls_sent, cache_hits, prompt_tokens, completion_tokens;
  double cost;
  double seconds;
  size_t parked;           /* episodes set aside unfinished (infrastructure errors, stop) */
  int64_t worker;          /* this process's worker id in a PostgreSQL store's run, else 0 */
  size_t taken_over, lost; /* workers: sources taken over from an expired lease; episodes
                              whose lease another worker took over (their result dropped) */
  int stopped; /* 1 when a budget, a signal, failing endpoints, systematic request errors
                    or a role's unusable replies stopped the run */
  char stop_reason[512];
  int unusable_role;                      /* 1: stopped on a role's unusable replies */
  int64_t judgements, judgements_invalid; /* judge replies this session; invalid after repair */
  int all_errors;                         /* every source finished this session ended on an error */
  char error_reason[256];                 /* the last of those errors */
  store_id run_id;                        /* the run in the store */
  char store_path[4096];                  /* the store file */
  char output_folder[4096];               /* where the outputs belong */
  int bad_input;          /* run_execute failed on its input (the corpus): exit 2, not 1 */
  size_t invalid_skipped; /* corpus records skipped (sources.on_invalid: skip) */
};

/* Run the recipe. Returns 0 when the run finished or stopped cleanly (see
 * sum->stopped; the store is closed and its outputs may be written), else an AD_E*
 * code with a one-line message in err (nothing already stored is lost). */
int run_execute(const struct recipe *rc, const struct run_opts *o, struct run_summary *sum,
                char *err, size_t errlen);

/* The same run in steps, for a caller that drives several runs on one event loop (`autodata
 * optimize`): o->llm is the caller's client, which the caller pumps with
 * llm_client_run_once() between steps, and signals are the caller's (run_execute's own
 * SIGINT/SIGTERM handling is not installed). rc, o and sum must outlive the run.
 *
 * run_start sets the run up (corpus, method, store): 0 and *out, or an AD_E* code with the
 * message in err (sum->bad_input for a bad corpus) and *out NULL. run_step advances it
 * without waiting: 2 when it has work ready (step again before waiting), 1 while it waits
 * on the client, 0 once it is over (every source done, or stopped with nothing in flight).
 * run_stop asks it to stop like a first Ctrl-C: no new call, calls in flight finish (cancel
 * them with llm_client_cancel_all for a second one). run_end, once run_step returned 0,
 * records its status, flushes and frees it; it returns what run_execute would. */
struct run;
AD_WUR int run_start(const struct recipe *rc, const struct run_opts *o, struct run_summary *sum,
                     struct run **out, char *err, size_t errlen);
int run_step(struct run *r);
void run_stop(struct run *r, const char *reason);
int run_end(struct run *r, char *err, size_t errlen);

/* run_execute's signal handling, for such a caller: run_signals_install sets the handlers
 * (SIGINT, SIGTERM; SIGHUP unless ignored, SIGPIPE) and clears the count, saving the old
 * ones for run_signals_restore. run_signals: how many stop requests came (each SIGINT or
 * SIGTERM counts; the session gone, SIGHUP or SIGPIPE, counts as one however often), with
 * the last one's reason ("interrupted (SIGINT)", ...) when reason is not NULL. */
struct run_sigsave {
  struct sigaction s_int, s_term, s_hup, s_pipe;
};
void run_signals_install(struct run_sigsave *save);
void run_signals_restore(const struct run_sigsave *save);
int run_signals(const char **reason);

#endif
