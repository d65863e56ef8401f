/* store_impl.h - for store backends only: the vtable and the handle's layout.
 *
 * Callers include store.h and never this file. A backend fills a struct
 * store_ops (redis dictType style) and keeps its own state in st->impl. The
 * public store_* functions in store.c check arguments, then dispatch through
 * st->ops; a backend reports errors with store_seterr() and returns AD_E* codes.
 * The puts a backend leaves NULL are queued by store.c in st->wq (store/wqueue.h), which its
 * flush writes; store_stats() objects are assembled by stats.c from the backend's queries.
 * Both backends run the same test bodies (tests/unit/store_shared.c) besides their own
 * (tests/unit/test_store.c, test_store_pg.c).
 */
#ifndef AD_STORE_IMPL_H
#define AD_STORE_IMPL_H

#include "store/store.h"

struct store_ops {
  const char *name; /* "sqlite", "postgres" */
  int (*open)(store *st, const char *path, int flags);
  int (*close)(store *st); /* flush + free impl; st itself is freed by store.c */
  int (*attach_cache)(store *st, const char *other_path);
  int (*flush)(store *st);
  int (*maybe_flush)(store *st, int64_t now_ms);
  size_t (*pending)(const store *st);
  void (*set_batch)(store *st, int max_rows, int max_ms);
  int (*run_begin)(store *st, const struct store_run_info *info, int new_run, store_id *run,
                   int *resumed);
  /* A run id the backend holds (the queued puts below check it first): 0 or AD_EINVAL. */
  int (*check_run)(store *st, store_id run);
  /* The puts marked "queued" may be NULL: store.c then checks the run and queues the rows in
   * st->wq (store/wqueue.h), which the backend's flush writes. */
  int (*run_set_status)(store *st, store_id run, const char *status); /* queued */
  int (*run_latest)(store *st, store_id *run);
  int (*source_put)(store *st, store_id run, const char *source_id, const char *title,
                    const char *text_sha256);
  int (*source_set_state)(store *st, store_id run, const char *source_id,
                          enum store_source_state state, int rounds_used); /* queued */
  int (*source_get)(store *st, store_id run, const char *source_id, struct store_source *out);
  int (*candidate_put)(store *st, store_id run, const char *source_id, int round, int index,
                       const char *verdict, const char *reason, const json_t *record); /* queued */
  int (*example_put)(store *st, store_id run, const char *source_id, const char *example_id,
                     const json_t *example);                                         /* queued */
  int (*episode_finish)(store *st, store_id run, const struct store_episode_end *e); /* queued */
  int (*call_put)(store *st, const struct store_call *c);                            /* queued */
  int (*cache_get)(store *st, const char *key, char **reply_body, size_t *len);
  int (*event_put)(store *st, store_id run, enum log_level level, const json_t *event); /* queued */
  int (*runs_each)(store *st, store_row_fn fn, void *ud);
  int (*sources_each)(store *st, store_id run, store_row_fn fn, void *ud);
  int (*candidates_each)(store *st, store_id run, const char *verdict, store_row_fn fn, void *ud);
  int (*examples_each)(store *st, store_id run, store_row_fn fn, void *ud);
  int (*calls_each)(store *st, store_id run, const char *role, int with_bodies, store_row_fn fn,
                    void *ud);
  int (*events_each)(store *st, store_id run, store_row_fn fn, void *ud);
  int (*source_candidates_each)(store *st, store_id run, const char *source_id, store_row_fn fn,
                                void *ud);
  int (*source_calls_each)(store *st, store_id run, const char *source_id, int with_bodies,
                           store_row_fn fn, void *ud);
  int (*stats)(store *st, store_id run, json_t **out);
  int (*opt_put)(store *st, enum store_opt_table t, const char *optimization, const char *key,
                 const json_t *record); /* queued */
  int (*opt_each)(store *st, enum store_opt_table t, const char *optimization, store_row_fn fn,
                  void *ud);
  int (*analysis_put)(store *st, store_id run, const json_t *analysis); /* queued */
  int (*analysis_get)(store *st, store_id run, json_t **out);
  /* optional: NULL -> store_run_stamp() answers AD_ENOTFOUND (outputs always rewritten) */
  int (*run_stamp)(store *st, store_id run, char out[33]);
  /* workers (store.h); NULL in a backend without them (SQLite) */
  int (*worker_join)(store *st, store_id run, const char *host, int lease_ms, int64_t *worker);
  int (*lease_claim)(store *st, store_id run, int64_t worker, const char *source_id, int reopen,
                     enum store_claim *out, int64_t *took_from);
  int (*worker_beat)(store *st, store_id run, int64_t worker,
                     const struct store_worker_counts *mine,
                     void (*fn)(void *ud, const char *source_id), void *ud,
                     struct store_worker_counts *others, int *alive);
  int (*lease_finish)(store *st, store_id run, int64_t worker, const struct store_episode_end *e);
  int (*lease_release)(store *st, store_id run, int64_t worker, const char *source_id);
  int (*workers_each)(store *st, store_id run, store_row_fn fn, void *ud);
};

struct store {
  const struct store_ops *ops;
  void *impl; /* backend state */
  char *path;
  int flags;
  char errmsg[1024];
  struct store_prefix *prefix; /* the prefix share's tracker (store/prefix.h), on first use */
  struct wqueue *wq;           /* the backend's pending batch (store/wqueue.h), set by its open */
};

/* Set st->errmsg (printf style) and return code, so backends can write
 * `return store_seterr(st, AD_EIO, "...")`. */
int store_seterr(store *st, int code, const char *fmt, ...) AD_PRINTF(3, 4);

struct buf;
/* The first 8 hex digits of a hash and an ellipsis ("none" for NULL), for messages. */
void store_short_hash(char out[16], const char *h);
/* Describe into b what differs between a stored run (its recipe sha256, prompt hashes as a
 * JSON text, seed) and info, in the words every backend uses ("recipe changed: ...; prompt
 * 'x' added; seed 1 -> 2"): 0, or AD_ETOOBIG (a description past b's cap). */
int store_run_diff(struct buf *b, const char *old_sha, const char *old_prompts, int64_t old_seed,
                   const struct store_run_info *info);

/* store_stats() for a backend (stats.c): the object's shape and arithmetic are shared, the
 * queries are the backend's. Each query has the run as its one parameter. */
#define STORE_STATS_COLS 6
struct store_stats_row {           /* one row of a statistics query */
  int64_t i[STORE_STATS_COLS];     /* each column as an integer (0 for NULL), */
  double d[STORE_STATS_COLS];      /* as a real, */
  const char *s[STORE_STATS_COLS]; /* as text (NULL for NULL; valid during the callback) */
  int null[STORE_STATS_COLS];
};
typedef int (*store_stats_fn)(void *ud, const struct store_stats_row *r);
struct store_stats_q {
  /* Run sql with run as its parameter and give each row to fn until it returns non-zero:
   * 0, fn's code, or an error with st's message set. */
  int (*rows)(store *st, store_id run, const char *sql, store_stats_fn fn, void *ud);
  /* The run's row as store_runs_each() gives it (fn not called: no such run). */
  int (*run_row)(store *st, store_id run, store_row_fn fn, void *ud);
  const char *sources;      /* state, count */
  const char *examples;     /* count */
  const char *candidates;   /* count */
  const char *rejections;   /* reason ('unspecified' for none), count; in the output's order */
  const char *calls;        /* role, status, cache_hit, count, attempts, retries */
  const char *role_tokens;  /* role, model, prompt, completion (cache_hit = 0) */
  const char *tokens;       /* model, prompt, completion, count (cache_hit = 0) */
  const char *prefix;       /* sum of prefix tokens (cache_hit = 0) */
  const char *wall;         /* seconds from the first call's row to the last one's, or NULL */
  const char *ok_calls;     /* count of real successful calls */
  const char *latency_mean; /* their mean latency_us, truncated */
  const char *latency_at;   /* printf format, one %lld: the latency_us at that offset */
};
int store_stats_build(store *st, store_id run, const struct store_stats_q *q, json_t **out);

extern const struct store_ops store_sqlite_ops;
extern const struct store_ops store_pg_ops; /* store_pg.c: postgres:// and postgresql:// URLs */

/* A copy of s (caller frees) with the password of every "scheme://user:PASSWORD@host" in it
 * replaced by SECRET_MASK (util/secret.h), for the path shown and the command line kept. */
char *store_url_redact(const char *s);
/* Register the password of every such URL in s with secret_add(). */
void url_password_register(const char *s);

/* Tests and tools only: run SQL on a PostgreSQL store's own connection (e.g. create a trigger
 * that refuses a row). AD_EINVAL when st is not a PostgreSQL store. */
int store_pg_exec(store *st, const char *sql);

/* Tests and tools only: run SQL on a SQLite store's own connection (e.g.
 * "PRAGMA max_page_count = 50" to simulate a full disk). AD_EINVAL when st is
 * not a SQLite store. */
int store_sqlite_exec(store *st, const char *sql);

#endif
