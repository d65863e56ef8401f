/* store.h - the run store: everything a run did, its model-call cache, and resume.
 *
 * One storage interface for the whole program. A store is one file (SQLite, WAL)
 * holding one or more runs of the same recipe: runs, sources, candidates (every
 * round of every episode, with statistics and verdicts), model calls (request,
 * reply, tokens, latency, attempts), accepted examples and run events. The
 * model-call table doubles as a cache keyed by store_cache_key().
 * Backends sit behind a vtable (struct store_ops in store/store_impl.h, redis
 * dictType style); callers only ever see the opaque `store` handle. Paths that
 * start with "postgres://" or "postgresql://" open the PostgreSQL backend
 * (store_pg.c, libpq's connection URI; a password in it is redacted wherever the
 * path is shown: PGPASSWORD or ~/.pgpass is the documented way); anything else
 * is a SQLite file.
 *
 * WRITES ARE BATCHED. Every *_put / *_finish / *_set_* call only queues its row
 * in memory (values copied; the caller's json_t and strings are borrowed for the
 * call only) and returns 0 or AD_EINVAL. Rows reach the file in one
 * transaction (BEGIN IMMEDIATE ... COMMIT) when store_maybe_flush() decides to
 * (>= max_ms since the last commit or >= max_rows pending; defaults 50 ms / 1000
 * rows) or on store_flush() / store_close(). Everything put before a successful
 * flush is durable after it (WAL, synchronous=NORMAL: survives a process crash;
 * a power loss may lose the last commits but never corrupts or half-writes).
 * A single call's rows always land in the same transaction, so
 * store_episode_finish() is atomic. If a flush fails (disk full, I/O error),
 * the transaction is rolled back, nothing of the batch is in the file, the batch
 * stays queued in memory (a later flush retries it) and the error names the
 * path and what to do; the caller decides whether to stop the run.
 *
 * READS on a writable store first flush the pending batch (so they see every
 * put), except store_cache_get(), which also looks in the pending batch. A store
 * opened STORE_OPEN_READONLY takes no lock and sees the last committed state of
 * a run that may be going on in another process (status, card, report).
 *
 * LOCKING. A writable open takes an exclusive lock on "<path>.lock" (which holds
 * the owner's pid); a second writer, in this or another process, gets AD_EBUSY
 * "store runs/x.db is in use by pid 1234". A PostgreSQL store's lock is an advisory
 * lock, which run workers hold shared (STORE_OPEN_SHARED; Workers below).
 *
 * SCHEMA. Versioned with PRAGMA user_version; a writable open applies the
 * missing migration steps in order. A store written by a newer autodata is
 * refused (AD_EMISMATCH) rather than misread.
 *
 * SECRETS. Nothing here ever sees an API key: request bodies carry none, and
 * headers are never passed to the store.
 *
 * ERRORS. Functions return 0 or a negative AD_E* code; store_errmsg() then
 * holds a message naming the store path and what to do. Notable codes:
 * AD_EBUSY (locked by another writer), AD_EREADONLY (file/dir not writable),
 * AD_EFULL (disk full), AD_ECORRUPT (not a store / damaged file), AD_EMISMATCH
 * (schema too new; resume with a changed recipe, prompt or seed), AD_EIO.
 *
 * THREADS. A handle is used by one thread at a time (the loop thread). Separate
 * read-only handles may be used from other threads.
 */
#ifndef AD_STORE_H
#define AD_STORE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "util/err.h"
#include "util/log.h"

typedef struct store store;
typedef int64_t store_id; /* a run id; > 0. Readers accept 0 = "the latest run". */

/* ======== Open / close ======== */

#define STORE_OPEN_READONLY 0x1 /* no lock, no migration; the file must exist */
/* A run worker (PostgreSQL): the writer lock is shared with the other workers of the store
 * (they coordinate through leases, below) and excludes only the exclusive writers (store
 * copy, optimize, a run with analysis.every). SQLite ignores it: its lock stays exclusive. */
#define STORE_OPEN_SHARED 0x2

/* Open (creating if missing, unless READONLY) the store at path.
 * On success *out is a new handle. On failure *out is still set to a handle
 * (unless out itself is NULL: AD_EINVAL) whose store_errmsg() explains the
 * failure: the caller prints it and calls store_close(*out). */
AD_WUR int store_open(const char *path, int flags, store **out);

/* Flush pending writes, release the lock and free the handle (NULL is a no-op).
 * Returns the flush result: on error the pending rows are lost and the message
 * is printed by the caller only if it first called store_flush(). Prefer:
 * rc = store_flush(st) (report errors), then store_close(st). */
int store_close(store *st);

/* The last error message (borrowed, valid until the next call on st). Never NULL. */
const char *store_errmsg(const store *st);
/* The path the store was opened with (borrowed; a URL's password redacted). */
const char *store_path(const store *st);
/* 1 when path names a PostgreSQL store (a postgres:// or postgresql:// URL), not a file. */
int store_is_url(const char *path);

/* Serve cache hits also from another store (read-only; never written), for
 * `--cache-from OTHER`. Only its successful, non-cache-hit call rows are used.
 * Returns 0, AD_ENOTFOUND, AD_ECORRUPT, AD_EMISMATCH (newer schema). */
AD_WUR int store_attach_cache(store *st, const char *other_path);

/* ======== Batching ======== */

/* Commit the pending batch if >= max_ms passed since the last commit or
 * >= max_rows rows are pending (now_ms from time_now_ms()). Returns 0 when
 * nothing was due or the commit succeeded, else the flush error. Call once per
 * event-loop iteration. */
AD_WUR int store_maybe_flush(store *st, int64_t now_ms);
/* Commit the pending batch now. 0 (also when nothing is pending) or an error;
 * on error the batch stays pending and nothing of it is in the file. */
AD_WUR int store_flush(store *st);
/* Rows waiting for the next commit. */
size_t store_pending(const store *st);
/* Batch thresholds (defaults 1000 rows, 50 ms). Values <= 0 keep the default. */
void store_set_batch(store *st, int max_rows, int max_ms);

/* ======== Runs ======== */

struct store_run_info {
  const char *recipe_name;
  const char *recipe_sha256;   /* hex SHA-256 of the recipe file */
  const json_t *prompt_hashes; /* object: prompt name -> hex sha256 (borrowed) */
  uint64_t seed;               /* run seed */
  const char *version;         /* autodata version string */
  const char *command_line;    /* as typed, for the record (no secrets!) */
  const json_t *prices;        /* optional, for cost in status/card:
                                    {"model": {"prompt_per_mtok": 0.5,
                                               "completion_per_mtok": 1.5}} (USD) */
  const json_t *extra;         /* optional free-form object kept with the run */
};

/* Start or resume a run. If the store holds no run, a new one starts. If it
 * holds one, the latest run is compared with info: same recipe_sha256, same
 * prompt_hashes (as a set of name->hash) and same seed -> that run is resumed
 * (*run = its id, *resumed = 1, status set back to "running"). Otherwise, unless
 * new_run is set, AD_EMISMATCH with a message that says exactly what changed:
 *   "recipe changed: sha256 ab12cd34… -> 9f8e7d6c…; prompt 'challenger' changed;
 *    seed 1 -> 2; ..."
 * With new_run set a new run starts in the same store (*resumed = 0); the
 * cache (calls of every run in the file) still serves it.
 * Writes immediately (not batched). */
AD_WUR int store_run_begin(store *st, const struct store_run_info *info, int new_run, store_id *run,
                           int *resumed);

/* Set a run's status: "running", "done", "failed", "interrupted" (batched). */
AD_WUR int store_run_set_status(store *st, store_id run, const char *status);

/* The latest run's id, or AD_ENOTFOUND when the store holds no run. */
AD_WUR int store_run_latest(store *st, store_id *run);

/* ======== Sources ======== */

enum store_source_state {
  STORE_SRC_PENDING = 0,
  STORE_SRC_IN_PROGRESS,
  STORE_SRC_DONE,     /* finished with its accepted example(s) */
  STORE_SRC_EXHAUSTED /* round budget spent without acceptance */
};
/* "pending", "in_progress", "done", "exhausted". */
const char *store_source_state_name(enum store_source_state s);
/* Parse a state name; 0 or AD_EINVAL. */
int store_source_state_parse(const char *name, enum store_source_state *out);

struct store_source {
  char source_id[256];
  char text_sha256[65];
  enum store_source_state state;
  int accepted; /* accepted examples stored for this source */
  int rounds_used;
};

/* Register a source of a run (state pending). Idempotent: an existing row is
 * kept as is (its state survives a resume), but if its text_sha256 differs,
 * AD_EMISMATCH "source 'x' changed since the run started (sha256 … -> …)".
 * title may be NULL. */
AD_WUR int store_source_put(store *st, store_id run, const char *source_id, const char *title,
                            const char *text_sha256);
/* Set a source's state and rounds used (rounds_used < 0 keeps the stored value). */
AD_WUR int store_source_set_state(store *st, store_id run, const char *source_id,
                                  enum store_source_state state, int rounds_used);
/* Read one source. 0, AD_ENOTFOUND. */
AD_WUR int store_source_get(store *st, store_id run, const char *source_id,
                            struct store_source *out);

/* ======== Candidates, examples, episodes ======== */

/* Record one round's candidate of an episode. verdict is "accepted" or
 * "rejected"; reason the rejection reason ("too_easy", "quality:leakage", ...)
 * or NULL when accepted. record (borrowed) holds the rest: the candidate, the
 * orchestrator instructions, statistics, scores, feedback, verifier result.
 * (run, source_id, round, index) is the key: putting it again replaces it. */
AD_WUR int store_candidate_put(store *st, store_id run, const char *source_id, int round, int index,
                               const char *verdict, const char *reason, const json_t *record);

/* Store an accepted example (borrowed; stored as canonical JSON). example_id is
 * unique in the run (putting it again replaces it); the source's accepted count
 * is recomputed. */
AD_WUR int store_example_put(store *st, store_id run, const char *source_id, const char *example_id,
                             const json_t *example);

/* The end of an episode (or of one of its rounds), in ONE transaction: the
 * final candidate (if cand_record != NULL), the accepted example (if
 * example != NULL) and the source's new state and rounds used. After a crash
 * either all of it is in the file or none of it is. */
struct store_episode_end {
  const char *source_id;
  enum store_source_state state; /* usually DONE or EXHAUSTED */
  int rounds_used;
  /* final candidate (optional: cand_record == NULL records none) */
  int round, index;
  const char *verdict, *reason;
  const json_t *cand_record;
  /* accepted example (optional) */
  const char *example_id;
  const json_t *example;
};
AD_WUR int store_episode_finish(store *st, store_id run, const struct store_episode_end *e);

/* ======== Model calls and the cache ======== */

/* The cache key of a request: XXH3-128 (32 lowercase hex + NUL) over the
 * endpoint's configured name, a NUL byte, and jx_dump_canonical(request_body)
 * (sorted keys, compact). Everything in the body counts: model, messages,
 * sampling parameters, seed, response_format, extras. So any byte of a prompt,
 * the model, temperature/top_p/max_tokens, the derived seed or the endpoint
 * name gives a new key; JSON key order does not. API keys and headers are not
 * in the body and never in the key. Returns 0, or AD_EINVAL (a NULL argument, or a
 * body that contains itself). */
AD_WUR int store_cache_key(const char *endpoint_name, const json_t *request_body, char out[33]);
/* Same, over an already canonical body text. */
void store_cache_key_text(const char *endpoint_name, const char *canonical_body, size_t len,
                          char out[33]);

/* One attempt of a call. */
struct store_attempt {
  int number;        /* 1-based */
  int http_status;   /* 0 when no HTTP answer */
  const char *error; /* NULL on success */
  int64_t latency_us;
  int64_t retry_after_ms; /* delay before the next attempt, 0 if none */
};

struct store_call {
  store_id run;
  const char *role;      /* "challenger", "weak_solver", "judge", ... */
  const char *source_id; /* NULL when not tied to a source */
  int round;             /* episode round, or -1 */
  const char *endpoint;  /* configured endpoint name */
  const char *model;
  const char *cache_key; /* from store_cache_key(); NULL = not cacheable */
  const char *request;   /* request body JSON text (no secrets); may be NULL */
  size_t request_len;    /* 0 = strlen(request) */
  const char *reply;     /* raw reply body; may be NULL */
  size_t reply_len;      /* 0 = strlen(reply) */
  const char *error;     /* NULL = status "ok"; else status "error" + this text */
  int http_status;
  int64_t prompt_tokens, completion_tokens;
  int64_t latency_us;
  int attempts; /* attempts made (0 for a cache hit) */
  int retries;
  int cache_hit;                            /* 1: answered from the cache, no model call made
                                (record it so status counts hits; reply may be NULL) */
  const struct store_attempt *attempt_list; /* each attempt, stored as a JSON array */
  int n_attempt_list;
  const char *finish_reason; /* the reply's finish_reason ("stop", "length"), or NULL */
  int64_t prefix_tokens;     /* set by store_call_put (callers leave it 0): prompt tokens that
                                repeat the start of an earlier request (store/prefix.h) */
};

/* Record a model call (every field borrowed for the call only). */
AD_WUR int store_call_put(store *st, const struct store_call *c);

/* Look up a cached reply: the reply of a successful (status ok, not itself a
 * cache hit) call with this key, from any run of this store, from the pending
 * batch, or from the store given to store_attach_cache(). On 0, *reply_body is
 * a malloc'd NUL-terminated copy the caller frees, *len its length (len may be
 * NULL). AD_ENOTFOUND when there is none; other codes on read errors. */
AD_WUR int store_cache_get(store *st, const char *key, char **reply_body, size_t *len);

/* ======== Events ======== */

/* A run event (borrowed object: {"msg": "...", ...}), e.g. endpoint down,
 * prompt revised, budget reached. */
AD_WUR int store_event_put(store *st, store_id run, enum log_level level, const json_t *event);

/* ======== Read side ======== */

/* Row callback: row is a borrowed object valid during the call. Return 0 to go
 * on; any other value stops the iteration and is returned by the iterator. */
typedef int (*store_row_fn)(void *ud, const json_t *row);

/* Iterators return 0, the callback's nonzero value, or an AD_E* read error.
 * run 0 = the latest run. Row keys: */
/* {"id","recipe_name","recipe_sha256","prompt_hashes":{},"seed","version",
 *  "command_line","created","status","info":{}} ordered by id. */
AD_WUR int store_runs_each(store *st, store_row_fn fn, void *ud);
/* {"source_id","title","text_sha256","state","accepted","rounds_used"} by rowid. */
AD_WUR int store_sources_each(store *st, store_id run, store_row_fn fn, void *ud);
/* {"source_id","round","index","verdict","reason"|null,"record":{}} ordered by
 * source_id, round, index. verdict NULL = all. */
AD_WUR int store_candidates_each(store *st, store_id run, const char *verdict, store_row_fn fn,
                                 void *ud);
/* {"example_id","source_id","created","example":{}} ordered by example_id. */
AD_WUR int store_examples_each(store *st, store_id run, store_row_fn fn, void *ud);
/* {"id","role","source_id","round","endpoint","model","cache_key","status",
 *  "error","http_status","prompt_tokens","completion_tokens","latency_us",
 *  "attempts","retries","cache_hit","attempt_list":[],"request":"…","reply":"…"}
 * ordered by id; role NULL = all. request/reply only when with_bodies. */
AD_WUR int store_calls_each(store *st, store_id run, const char *role, int with_bodies,
                            store_row_fn fn, void *ud);
/* The rows of store_candidates_each() (verdict NULL) and store_calls_each() (role
 * NULL) of one source only, in the same order: reads no other source's records or
 * bodies (`autodata show`). */
AD_WUR int store_source_candidates_each(store *st, store_id run, const char *source_id,
                                        store_row_fn fn, void *ud);
AD_WUR int store_source_calls_each(store *st, store_id run, const char *source_id, int with_bodies,
                                   store_row_fn fn, void *ud);
/* {"id","time","level","event":{}} ordered by id. */
AD_WUR int store_events_each(store *st, store_id run, store_row_fn fn, void *ud);

/* Aggregates of a run (run 0 = latest) as a new object (caller decrefs):
 * {"run": {...as in store_runs_each},
 *  "sources": {"total","pending","in_progress","done","exhausted"},
 *  "accepted": n, "candidates": n,
 *  "rejections": {"too_easy": n, ...},
 *  "calls": {"total","ok","error","cache_hits","attempts","retries",
 *            "by_role": {"judge": {"ok": n, "error": n, "cache_hits": n, "retries": n, "prompt": n,
 *                                  "completion": n (real calls' tokens),
 *                                  "cost_usd"?: x (when its models are priced)}}},
 *  "tokens": {"prompt","completion","prefix" (prompt tokens repeating the start of an
 *             earlier request to the same endpoint and model: store/prefix.h),
 *             "by_model": {"m": {"prompt","completion","calls","cost_usd"?}}},
 *  "cost_usd"?: x,   (only when the run info holds prices for its models)
 *  "latency_ms": {"mean","p50","p95"} (ok, non-cached calls),
 *  "wall_s"?: seconds from the first model call's row to the last one's (any pause of a
 *             resumed run included; absent without calls)}
 * Tokens and cost count real calls only (cache hits cost nothing). */
AD_WUR int store_stats(store *st, store_id run, json_t **out);

/* A stamp of what a run's outputs are written from (report.h): its run row, sources,
 * candidates, examples, events, model calls and analysis, and the schema, as 32 hex digits in
 * out (run 0 = the latest). Two stamps of a run are equal while none of that changed: a
 * resume of a finished run compares them to leave its outputs as they are (docs/store.md
 * "Stamps"). It reads aggregates and indexes, not the records: its time does not grow with
 * their size. 0; AD_ENOTFOUND when the backend keeps no stamp (the caller then treats the
 * outputs as out of date) or the run does not exist; read errors. */
AD_WUR int store_run_stamp(store *st, store_id run, char out[33]);

/* ======== Workers: several processes share one run (PostgreSQL; docs/store.md) ========
 *
 * Each worker registers itself (a `workers` row: host, pid, heartbeat, counters) and leases a
 * source before it plays it: the lease (owner, expiry on the database's clock) is renewed by
 * the worker's heartbeat, and a lease that expired may be taken over by another worker. The
 * end of an episode is written only while its lease is held (store_lease_finish). These are
 * synchronous (not batched). SQLite stores have no workers: every function but
 * store_workers_each (no rows) fails with AD_EINVAL saying so. */

/* A worker's counters, as this session made them. */
struct store_worker_counts {
  int64_t calls, cache_hits, prompt_tokens, completion_tokens, finished;
  double cost;
};

/* Register a worker of run with leases of lease_ms: *worker its id. Its session is the one
 * of the live workers of run (a heartbeat younger than their lease), or a new one when none
 * is alive: budgets hold over a session (store_worker_beat). */
AD_WUR int store_worker_join(store *st, store_id run, const char *host, int lease_ms,
                             int64_t *worker);

enum store_claim {
  STORE_CLAIM_GOT = 0,  /* leased to this worker (new, its own, or taken over) */
  STORE_CLAIM_HELD,     /* leased to another worker whose lease has not expired */
  STORE_CLAIM_FINISHED, /* done or exhausted (reopen: exhausted sources may be claimed) */
};
/* Lease source_id of run to worker and mark it in progress. *took_from: the worker whose
 * expired lease this took over (0 when none). */
AD_WUR int store_lease_claim(store *st, store_id run, int64_t worker, const char *source_id,
                             int reopen, enum store_claim *out, int64_t *took_from);
/* The heartbeat: record mine (this worker's counters), renew this worker's leases (fn is
 * called with each source id still leased to it; a lease another worker took over is not
 * renewed) and sum the counters of the other workers of its session into *others, *alive
 * the number of them alive. fn and others may be NULL. */
AD_WUR int store_worker_beat(store *st, store_id run, int64_t worker,
                             const struct store_worker_counts *mine,
                             void (*fn)(void *ud, const char *source_id), void *ud,
                             struct store_worker_counts *others, int *alive);
/* store_episode_finish() fenced by the lease: the pending batch is flushed first, then the
 * final candidate, example, count and state are written in one transaction that also ends
 * the lease, only while source e->source_id is leased to worker. AD_EBUSY (nothing written)
 * when another worker holds it. */
AD_WUR int store_lease_finish(store *st, store_id run, int64_t worker,
                              const struct store_episode_end *e);
/* Release the worker's lease of source_id (NULL: all of them; the worker then has left). */
AD_WUR int store_lease_release(store *st, store_id run, int64_t worker, const char *source_id);
/* The workers of run (0 = the latest), by id: {"id","session","host","pid","started",
 * "heartbeat","age_s" (seconds since its heartbeat, by the database's clock),"lease_s",
 * "alive" (heartbeat younger than its lease, and it has not left),"left","leases" (sources
 * leased to it now),"calls","cache_hits","prompt_tokens","completion_tokens","cost",
 * "finished"}. No rows on a store without workers. */
AD_WUR int store_workers_each(store *st, store_id run, store_row_fn fn, void *ud);

/* ======== Optimisations (`autodata optimize`, docs/optimize.md) ======== */

/* One table per kind; a row is (optimization, key) -> record (a JSON object). */
enum store_opt_table {
  STORE_OPT_SPLITS = 0, /* key: source id; {"split": "train"|"val"|"test"} */
  STORE_OPT_VARIANTS,   /* key: the variant's sha256 */
  STORE_OPT_EVALUATIONS,
  STORE_OPT_ITERATIONS
};
/* Put a row (batched; putting the same key again replaces it). record is borrowed. */
AD_WUR int store_opt_put(store *st, enum store_opt_table t, const char *optimization,
                         const char *key, const json_t *record);
/* {"key", "record": {}} of one optimization, ordered by key. */
AD_WUR int store_opt_each(store *st, enum store_opt_table t, const char *optimization,
                          store_row_fn fn, void *ud);

/* ======== Dataset-level analysis (docs/analyze.md) ======== */

/* Keep run's analysis (an object, borrowed; batched), replacing an earlier one of the run. */
AD_WUR int store_analysis_put(store *st, store_id run, const json_t *analysis);
/* The latest analysis of run (0 = the latest run) as a new object in *out (caller decrefs);
 * AD_ENOTFOUND when the run has none (or the store predates analyses). */
AD_WUR int store_analysis_get(store *st, store_id run, json_t **out);

#endif
