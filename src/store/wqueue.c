/* wqueue.c - the pending batch of the store backends (see wqueue.h). */
#include "store/wqueue.h"

#include <stdlib.h>
#include <string.h>

#include "store/store_impl.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"
#include "util/timeu.h"

#define DEFAULT_MAX_ROWS 1000
#define DEFAULT_MAX_MS 50
#define MAX_BATCH_BYTES (32u * 1024 * 1024) /* flush early past this much queued text */
#define CHUNK_SIZE (1u << 20)

struct wq_chunk {
  struct wq_chunk *next;
  size_t used, cap;
  char data[];
};

void wq_init(struct wqueue *q, int utf8) {
  memset(q, 0, sizeof *q);
  q->utf8 = utf8;
  q->max_rows = DEFAULT_MAX_ROWS;
  q->max_ms = DEFAULT_MAX_MS;
  q->last_commit_ms = time_now_ms();
}

static char *arena_alloc(struct wqueue *q, size_t n) {
  struct wq_chunk *c = q->chunks;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
    struct wq_chunk *nc = xmalloc(sizeof *nc + cap);
    nc->next = c;
    nc->used = 0;
    nc->cap = cap;
    q->chunks = nc;
    c = nc;
  }
  char *p = c->data + c->used;
  c->used += (n + 7) & ~(size_t)7;
  if (c->used > c->cap) c->used = c->cap;
  q->bytes += n;
  return p;
}

/* Free the arena but one standard chunk, kept for the next batch (keep_one), or all. */
static void arena_reset(struct wqueue *q, int keep_one) {
  struct wq_chunk *keep = NULL, *c = q->chunks;
  while (c) {
    struct wq_chunk *next = c->next;
    if (keep_one && !keep && c->cap == CHUNK_SIZE) {
      keep = c;
      keep->next = NULL;
      keep->used = 0;
    } else {
      free(c);
    }
    c = next;
  }
  q->chunks = keep;
  q->bytes = 0;
}

void wq_release(struct wqueue *q) {
  arena_reset(q, 0);
  free(q->ops);
  free(q->vals);
  q->ops = NULL;
  q->vals = NULL;
  q->n_ops = q->cap_ops = q->n_vals = q->cap_vals = 0;
}

void wq_committed(struct wqueue *q) {
  q->n_ops = 0;
  q->n_vals = 0;
  arena_reset(q, 1);
  q->last_commit_ms = time_now_ms();
}

int wq_due(const struct wqueue *q, int64_t now_ms) {
  return q->n_ops && (q->n_ops >= (size_t)q->max_rows || q->bytes >= MAX_BATCH_BYTES ||
                      now_ms - q->last_commit_ms >= q->max_ms);
}

void wq_set_batch(struct wqueue *q, int max_rows, int max_ms) {
  q->max_rows = max_rows > 0 ? max_rows : DEFAULT_MAX_ROWS;
  q->max_ms = max_ms > 0 ? max_ms : DEFAULT_MAX_MS;
}

void wq_drop(struct wqueue *q, size_t i, size_t n) {
  size_t v0 = q->ops[i].v0, nv = 0;
  for (size_t k = i; k < i + n; k++) nv += (size_t)q->ops[k].nv;
  memmove(&q->vals[v0], &q->vals[v0 + nv], (q->n_vals - v0 - nv) * sizeof *q->vals);
  q->n_vals -= nv;
  memmove(&q->ops[i], &q->ops[i + n], (q->n_ops - i - n) * sizeof *q->ops);
  q->n_ops -= n;
  for (size_t k = i; k < q->n_ops; k++) q->ops[k].v0 -= nv;
}

void wq_drop_row(struct wqueue *q, size_t i) {
  int body = q->ops[i].kind == WQ_CALL && i + 1 < q->n_ops && q->ops[i + 1].kind == WQ_CALL_BODY;
  wq_drop(q, i, body ? 2 : 1);
}

const char *wq_cached(const struct wqueue *q, const char *key, size_t *len) {
  for (size_t i = q->n_ops; i-- > 0;) {
    const struct wq_op *o = &q->ops[i];
    if (o->cacheable && !memcmp(o->key, key, 32)) {
      *len = o->reply_n;
      return o->reply;
    }
  }
  return NULL;
}

/* ---- values ---- */

/* Start an op; its values follow with v_*(). */
static struct wq_op *op_begin(struct wqueue *q, enum wq_kind kind) {
  if (q->n_ops == q->cap_ops) {
    q->cap_ops = q->cap_ops ? q->cap_ops * 2 : 256;
    q->ops = xrealloc(q->ops, q->cap_ops * sizeof *q->ops);
  }
  struct wq_op *o = &q->ops[q->n_ops++];
  memset(o, 0, sizeof *o);
  o->kind = kind;
  o->v0 = q->n_vals;
  return o;
}

static struct wq_val *val_push(struct wqueue *q) {
  if (q->n_vals == q->cap_vals) {
    q->cap_vals = q->cap_vals ? q->cap_vals * 2 : 2048;
    q->vals = xrealloc(q->vals, q->cap_vals * sizeof *q->vals);
  }
  struct wq_val *v = &q->vals[q->n_vals++];
  q->ops[q->n_ops - 1].nv++;
  memset(v, 0, sizeof *v);
  return v;
}

static void v_int(struct wqueue *q, int64_t i) {
  struct wq_val *v = val_push(q);
  v->type = WQ_INT;
  v->i = i;
}

static void v_real(struct wqueue *q, double d) {
  struct wq_val *v = val_push(q);
  v->type = WQ_REAL;
  v->d = d;
}

static void v_copy(struct wqueue *q, struct wq_val *v, const char *s, size_t n) {
  char *p = arena_alloc(q, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  v->type = WQ_TEXT;
  v->s = p;
  v->n = n;
}

/* 1 when n bytes are valid UTF-8 without a NUL byte (what PostgreSQL's text takes). Call
 * bodies are mostly ASCII: eight bytes at a time while no byte has its high bit set or is 0,
 * jx_utf8_seq for the rest. */
static int utf8_clean(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  const uint64_t high = 0x8080808080808080ull, ones = 0x0101010101010101ull;
  size_t i = 0;
  while (i < n) {
    uint64_t w;
    if (n - i >= 8 && (memcpy(&w, u + i, 8), !(w & high) && !((w - ones) & ~w & high))) {
      i += 8;
      continue;
    }
    size_t k = u[i] ? jx_utf8_seq(u + i, n - i) : 0;
    if (!k) return 0;
    i += k;
  }
  return 1;
}

/* Text value (copied); s == NULL gives SQL NULL; n == 0 means strlen. */
static void v_textn(struct wqueue *q, const char *s, size_t n) {
  struct wq_val *v = val_push(q);
  if (!s) return; /* WQ_NULL */
  if (!n) n = strlen(s);
  size_t sn;
  char *clean = secret_scrub(s, n, &sn); /* no secret value reaches the store */
  if (clean) {
    s = clean;
    n = sn;
  }
  if (q->utf8 && !utf8_clean(s, n)) {
    json_t *j = jx_string_lossy(s, n); /* U+FFFD for each bad byte */
    v_copy(q, v, json_string_value(j), json_string_length(j));
    json_decref(j);
  } else {
    v_copy(q, v, s, n);
  }
  free(clean);
}
static void v_text(struct wqueue *q, const char *s) { v_textn(q, s, 0); }

/* JSON value as canonical text (NULL json -> SQL NULL): 0, or AD_EINVAL for a value
 * jansson cannot dump (one that contains itself). */
static int v_json(struct wqueue *q, const json_t *j) {
  if (!j) {
    v_textn(q, NULL, 0);
    return 0;
  }
  char *s = jx_dump_canonical(j);
  if (!s) return AD_EINVAL;
  v_textn(q, s, strlen(s));
  free(s);
  return 0;
}

/* A put's end: on failure, roll the queue back to mark ops (a put queues all or nothing). */
static int done(struct wqueue *q, size_t mark, int rc) {
  if (rc && mark < q->n_ops) {
    q->n_vals = q->ops[mark].v0;
    q->n_ops = mark;
  }
  return rc;
}

int wq_queued(store *st, int rc) {
  if (!rc) return 0;
  return store_seterr(st, rc, "store %s: %s while queueing a record", store_path(st),
                      ad_strerror(rc));
}

/* ---- rows ---- */

int wq_run_status(struct wqueue *q, store_id run, const char *status) {
  op_begin(q, WQ_RUN_STATUS);
  v_text(q, status);
  v_int(q, run);
  return 0;
}

int wq_source(struct wqueue *q, store_id run, const char *source_id, const char *title,
              const char *text_sha256) {
  op_begin(q, WQ_SRC_INS);
  v_int(q, run);
  v_text(q, source_id);
  v_text(q, title);
  v_text(q, text_sha256);
  return 0;
}

int wq_source_state(struct wqueue *q, store_id run, const char *source_id,
                    enum store_source_state state, int rounds_used) {
  op_begin(q, WQ_SRC_STATE);
  v_text(q, store_source_state_name(state));
  v_int(q, rounds_used);
  v_int(q, run);
  v_text(q, source_id);
  return 0;
}

static int q_cand(struct wqueue *q, store_id run, const char *source_id, int round, int index,
                  const char *verdict, const char *reason, const json_t *record) {
  op_begin(q, WQ_CAND);
  v_int(q, run);
  v_text(q, source_id);
  v_int(q, round);
  v_int(q, index);
  v_text(q, verdict);
  v_text(q, reason);
  int rc = v_json(q, record);
  if (!rc) v_real(q, time_wall());
  return rc;
}

int wq_candidate(struct wqueue *q, store_id run, const char *source_id, int round, int index,
                 const char *verdict, const char *reason, const json_t *record) {
  size_t mark = q->n_ops;
  return done(q, mark, q_cand(q, run, source_id, round, index, verdict, reason, record));
}

static int q_example(struct wqueue *q, store_id run, const char *source_id, const char *example_id,
                     const json_t *example) {
  op_begin(q, WQ_EXAMPLE);
  v_int(q, run);
  v_text(q, example_id);
  v_text(q, source_id);
  int rc = v_json(q, example);
  if (rc) return rc;
  v_real(q, time_wall());
  op_begin(q, WQ_SRC_ACCEPTED);
  v_int(q, run);
  v_text(q, source_id);
  return 0;
}

int wq_example(struct wqueue *q, store_id run, const char *source_id, const char *example_id,
               const json_t *example) {
  size_t mark = q->n_ops;
  return done(q, mark, q_example(q, run, source_id, example_id, example));
}

int wq_episode(struct wqueue *q, store_id run, const struct store_episode_end *e) {
  size_t mark = q->n_ops;
  int rc = 0;
  if (e->cand_record)
    rc = q_cand(q, run, e->source_id, e->round, e->index, e->verdict, e->reason, e->cand_record);
  if (!rc && e->example) rc = q_example(q, run, e->source_id, e->example_id, e->example);
  if (!rc) wq_source_state(q, run, e->source_id, e->state, e->rounds_used);
  return done(q, mark, rc);
}

static json_t *attempts_json(const struct store_call *c) {
  json_t *a = json_array();
  for (int i = 0; i < c->n_attempt_list; i++) {
    const struct store_attempt *t = &c->attempt_list[i];
    json_t *o = json_pack("{s:i, s:i, s:I}", "n", t->number, "http_status", t->http_status,
                          "latency_us", (json_int_t)t->latency_us);
    if (t->error) json_object_set_new(o, "error", jx_string_lossy(t->error, strlen(t->error)));
    if (t->retry_after_ms)
      json_object_set_new(o, "retry_after_ms", json_integer((json_int_t)t->retry_after_ms));
    json_array_append_new(a, o);
  }
  return a;
}

/* A call's bodies as text (a backend may compress them when it writes them). */
static void q_call_body(struct wqueue *q, const struct store_call *c, int ok) {
  struct wq_op *o = op_begin(q, WQ_CALL_BODY);
  v_textn(q, c->request, c->request_len);
  v_textn(q, c->reply, c->reply_len);
  if (c->cache_key && ok && !c->cache_hit && c->reply) {
    const struct wq_val *v = &q->vals[o->v0 + 1];
    o->cacheable = 1;
    memcpy(o->key, c->cache_key, 33);
    o->reply = v->s;
    o->reply_n = v->n;
  }
}

int wq_call(struct wqueue *q, const struct store_call *c) {
  size_t mark = q->n_ops;
  op_begin(q, WQ_CALL);
  int ok = !c->error;
  v_int(q, c->run);
  v_text(q, c->role);
  v_text(q, c->source_id);
  v_int(q, c->round);
  v_text(q, c->endpoint);
  v_text(q, c->model);
  v_text(q, c->cache_key);
  v_text(q, ok ? "ok" : "error");
  v_text(q, c->error);
  v_int(q, c->http_status);
  v_int(q, c->prompt_tokens);
  v_int(q, c->completion_tokens);
  v_int(q, c->latency_us);
  v_int(q, c->attempts);
  v_int(q, c->retries);
  v_int(q, c->cache_hit ? 1 : 0);
  json_t *a = c->n_attempt_list ? attempts_json(c) : NULL;
  int rc = v_json(q, a); /* NULL: SQL NULL */
  json_decref(a);
  if (rc) return done(q, mark, rc);
  v_real(q, time_wall());
  v_text(q, c->finish_reason);
  v_int(q, c->prefix_tokens);
  if (c->request || c->reply) q_call_body(q, c, ok);
  return 0;
}

static const char *level_name(enum log_level l) {
  switch (l) {
  case LOG_ERROR: return "error";
  case LOG_WARN: return "warn";
  case LOG_INFO: return "info";
  default: return "debug";
  }
}

int wq_event(struct wqueue *q, store_id run, enum log_level level, const json_t *event) {
  size_t mark = q->n_ops;
  op_begin(q, WQ_EVENT);
  v_int(q, run);
  v_real(q, time_wall());
  v_text(q, level_name(level));
  return done(q, mark, v_json(q, event));
}

int wq_opt(struct wqueue *q, enum store_opt_table t, const char *optimization, const char *key,
           const json_t *record) {
  size_t mark = q->n_ops;
  op_begin(q, WQ_OPT_SPLIT + (int)t);
  v_text(q, optimization);
  v_text(q, key);
  return done(q, mark, v_json(q, record));
}

int wq_analysis(struct wqueue *q, store_id run, const json_t *analysis) {
  size_t mark = q->n_ops;
  op_begin(q, WQ_ANALYSIS);
  v_int(q, run);
  int rc = v_json(q, analysis);
  if (!rc) v_real(q, time_wall());
  return done(q, mark, rc);
}
