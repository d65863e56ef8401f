/* wqueue.h - for store backends only: the pending batch both backends write at a flush.
 *
 * A store's *_put functions do not write: they queue rows here (every value copied, secrets
 * scrubbed), and the backend's flush writes the whole queue in one transaction, keeping it
 * when the transaction fails so a later flush retries it (docs/store.md, "Writing"). The
 * queue holds what a row is (a wq_kind and its typed values, in the order the kind's SQL
 * takes them); how it is written (bound to SQLite statements, sent as COPY rows or
 * parameters, compressed) is the backend's.
 */
#ifndef AD_STORE_WQUEUE_H
#define AD_STORE_WQUEUE_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* What a queued op writes; its values, in order, are in the comments. */
enum wq_kind {
  WQ_RUN_STATUS,   /* status, run */
  WQ_SRC_INS,      /* run, source_id, title, text_sha256 */
  WQ_SRC_STATE,    /* state name, rounds_used (< 0: unchanged), run, source_id */
  WQ_CAND,         /* run, source_id, round, idx, verdict, reason, record, created */
  WQ_EXAMPLE,      /* run, example_id, source_id, example, created */
  WQ_SRC_ACCEPTED, /* run, source_id: recount the source's examples */
  WQ_CALL,         /* run, role, source_id, round, endpoint, model, cache_key, status,
                       error, http_status, prompt_tokens, completion_tokens, latency_us,
                       attempts, retries, cache_hit, attempt_list, created, finish_reason,
                       prefix_tokens */
  WQ_CALL_BODY,    /* request, reply: always right after its WQ_CALL */
  WQ_EVENT,        /* run, time, level, event */
  WQ_OPT_SPLIT,    /* optimization, key, record (the four in store_opt_table's order) */
  WQ_OPT_VARIANT,  /* " */
  WQ_OPT_EVAL,     /* " */
  WQ_OPT_ITER,     /* " */
  WQ_ANALYSIS,     /* run, analysis, created */
  WQ_N
};

enum wq_type { WQ_NULL, WQ_INT, WQ_REAL, WQ_TEXT };
struct wq_val {
  enum wq_type type;
  int64_t i;
  double d;
  const char *s; /* WQ_TEXT: in the queue's arena, NUL-terminated */
  size_t n;
};

struct wq_op {
  enum wq_kind kind;
  int nv; /* its values: vals[v0 .. v0 + nv) */
  size_t v0;
  int cacheable; /* WQ_CALL_BODY of a successful, non-hit call: wq_cached() serves it */
  char key[33];
  const char *reply; /* the reply as queued (in the arena) */
  size_t reply_n;
};

struct wq_chunk;
struct wqueue {
  struct wq_op *ops;
  size_t n_ops, cap_ops;
  struct wq_val *vals;
  size_t n_vals, cap_vals;
  struct wq_chunk *chunks; /* the arena holding the text values */
  size_t bytes;            /* text bytes queued */
  int64_t last_commit_ms;
  int max_rows, max_ms;
  int utf8; /* text made valid UTF-8 without NUL (U+FFFD): PostgreSQL's text needs it */
};

/* An empty queue with the default batch (1,000 rows, 50 ms); utf8 as above. */
void wq_init(struct wqueue *q, int utf8);
void wq_release(struct wqueue *q);
/* Empty the queue after a commit (keeps one arena chunk) and note the commit's time. */
void wq_committed(struct wqueue *q);
/* 1 when the queue is due for a flush at now_ms: max_rows rows, 32 MB or max_ms since the
 * last commit. */
int wq_due(const struct wqueue *q, int64_t now_ms);
/* max_rows / max_ms, each <= 0 for its default. */
void wq_set_batch(struct wqueue *q, int max_rows, int max_ms);
/* Remove ops [i, i+n) (their arena bytes stay until wq_committed). */
void wq_drop(struct wqueue *q, size_t i, size_t n);
/* Remove the row at op i that can never be written: a call together with its body. */
void wq_drop_row(struct wqueue *q, size_t i);
/* The reply of the newest queued cacheable call with key (32 hex digits), or NULL. */
const char *wq_cached(const struct wqueue *q, const char *key, size_t *len);

/* Row queueing: each queues the rows of one store_* put (store.h says what they mean) and
 * returns 0, or AD_EINVAL for a JSON value jansson cannot dump, leaving the queue as it was
 * (a put queues all of its rows or none). */
int wq_run_status(struct wqueue *q, store_id run, const char *status);
int wq_source(struct wqueue *q, store_id run, const char *source_id, const char *title,
              const char *text_sha256);
int wq_source_state(struct wqueue *q, store_id run, const char *source_id,
                    enum store_source_state state, int rounds_used);
int wq_candidate(struct wqueue *q, store_id run, const char *source_id, int round, int index,
                 const char *verdict, const char *reason, const json_t *record);
int wq_example(struct wqueue *q, store_id run, const char *source_id, const char *example_id,
               const json_t *example);
/* The final candidate, the example and its recount, the source's state: together. */
int wq_episode(struct wqueue *q, store_id run, const struct store_episode_end *e);
/* The call row, then its body row when it has a request or a reply. */
int wq_call(struct wqueue *q, const struct store_call *c);
int wq_event(struct wqueue *q, store_id run, enum log_level level, const json_t *event);
int wq_opt(struct wqueue *q, enum store_opt_table t, const char *optimization, const char *key,
           const json_t *record);
int wq_analysis(struct wqueue *q, store_id run, const json_t *analysis);

/* A put's result for its caller: rc unchanged, with st's message set when it failed. */
int wq_queued(store *st, int rc);

#endif
