/* store.c - the store front end: argument checks, dispatch to the backend,
 * error messages, the cache key and source-state names. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/prefix.h"
#include "store/store_impl.h"
#include "store/wqueue.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"

int store_seterr(store *st, int code, const char *fmt, ...) {
  if (!st) return code;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(st->errmsg, sizeof st->errmsg, fmt, ap);
  va_end(ap);
  return code;
}

void store_short_hash(char out[16], const char *h) {
  snprintf(out, 16, "%.8s\u2026", h ? h : "none");
}

/* Append one difference to b, after "; " when b already holds one: 0 or AD_ETOOBIG. */
static int diff_add(struct buf *b, const char *fmt, ...) AD_PRINTF(2, 3);
static int diff_add(struct buf *b, const char *fmt, ...) {
  int rc = b->len ? buf_puts(b, "; ") : 0;
  va_list ap;
  va_start(ap, fmt);
  if (!rc) rc = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

int store_run_diff(struct buf *b, const char *old_sha, const char *old_prompts, int64_t old_seed,
                   const struct store_run_info *info) {
  int rc = 0;
  if (strcmp(old_sha, info->recipe_sha256)) {
    char a[16], c[16];
    store_short_hash(a, old_sha);
    store_short_hash(c, info->recipe_sha256);
    rc = diff_add(b, "recipe changed: sha256 %s -> %s", a, c);
  }
  json_t *old = json_loads(old_prompts ? old_prompts : "{}", 0, NULL);
  const json_t *neu = info->prompt_hashes;
  const char *k;
  json_t *v;
  if (json_is_object(old)) {
    json_object_foreach(old, k, v) {
      const json_t *nv = neu ? json_object_get(neu, k) : NULL;
      if (!nv) {
        if (!rc) rc = diff_add(b, "prompt '%s' removed", k);
      } else if (!json_equal(v, (json_t *)nv)) {
        char a[16], c[16];
        store_short_hash(a, json_string_value(v));
        store_short_hash(c, json_string_value(nv));
        if (!rc) rc = diff_add(b, "prompt '%s' changed (sha256 %s -> %s)", k, a, c);
      }
    }
  }
  if (neu) {
    json_object_foreach((json_t *)neu, k, v) {
      if ((!json_is_object(old) || !json_object_get(old, k)) && !rc)
        rc = diff_add(b, "prompt '%s' added", k);
    }
  }
  json_decref(old);
  if ((uint64_t)old_seed != info->seed && !rc)
    rc = diff_add(b, "seed %llu -> %llu", (unsigned long long)(uint64_t)old_seed,
                  (unsigned long long)info->seed);
  return rc;
}

static int is_postgres(const char *path) {
  return !strncmp(path, "postgres://", 11) || !strncmp(path, "postgresql://", 13);
}

int store_is_url(const char *path) { return path && is_postgres(path); }

/* The password of each "scheme://user:password@" in s: [start, end) offsets via a callback. */
typedef void (*pw_fn)(void *ud, const char *start, const char *end);
static void each_url_password(const char *s, pw_fn fn, void *ud) {
  for (const char *p = s; (p = strstr(p, "://")); p += 3) {
    const char *ui = p + 3;
    size_t span = strcspn(ui, "/?# \t\n\"'");
    const char *at = memchr(ui, '@', span);
    if (!at) continue;
    const char *colon = memchr(ui, ':', (size_t)(at - ui));
    if (colon && at > colon + 1) fn(ud, colon + 1, at);
  }
}

static void add_secret(void *ud, const char *a, const char *b) {
  (void)ud;
  char *pw = xstrndup(a, (size_t)(b - a));
  secret_add(pw);
  free(pw);
}

void url_password_register(const char *s) {
  if (s) each_url_password(s, add_secret, NULL);
}

struct redact {
  struct buf *out;
  const char *from;
};
static void redact_one(void *ud, const char *a, const char *b) {
  struct redact *r = ud;
  if (buf_append(r->out, r->from, (size_t)(a - r->from)) || buf_puts(r->out, SECRET_MASK)) {
    /* past the buffer's cap: the rest is cut below */
  }
  r->from = b;
}

char *store_url_redact(const char *s) {
  if (!s) return NULL;
  struct buf b = BUF_INIT;
  struct redact r = {&b, s};
  each_url_password(s, redact_one, &r);
  char *out = buf_puts(&b, r.from) ? xstrdup("(a store URL too long to show)")
                                   : xstrdup(buf_str(&b));
  buf_release(&b);
  return out;
}

int store_open(const char *path, int flags, store **out) {
  if (!out) return AD_EINVAL;
  *out = NULL;
  store *st = xcalloc(1, sizeof *st);
  *out = st;
  st->flags = flags;
  st->ops = &store_sqlite_ops;
  if (!path || !*path) return store_seterr(st, AD_EINVAL, "store: no path given");
  if (is_postgres(path)) {
    /* the URL's password, if any, is a credential: masked wherever text leaves the process,
     * and never part of the path shown (store_path, errors, status, card) */
    url_password_register(path);
    st->ops = &store_pg_ops;
    st->path = store_url_redact(path);
  } else {
    st->path = xstrdup(path);
  }
  int rc = st->ops->open(st, path, flags);
  if (rc == 0) st->errmsg[0] = 0;
  return rc;
}

int store_close(store *st) {
  if (!st) return 0;
  int rc = 0;
  if (st->impl && st->ops->close) rc = st->ops->close(st);
  store_prefix_free(st->prefix);
  free(st->path);
  free(st);
  return rc;
}

const char *store_errmsg(const store *st) {
  if (!st) return "store: no store handle";
  return st->errmsg[0] ? st->errmsg : "no error";
}

const char *store_path(const store *st) { return st && st->path ? st->path : ""; }

/* Every other entry point needs an open backend. */
#define NEED_OPEN(st)                                                                              \
  do {                                                                                             \
    if (!(st)) return AD_EINVAL;                                                                   \
    if (!(st)->impl) return store_seterr((st), AD_EINVAL, "store %s is not open", store_path(st)); \
  } while (0)

int store_attach_cache(store *st, const char *other_path) {
  NEED_OPEN(st);
  if (!other_path || !*other_path)
    return store_seterr(st, AD_EINVAL, "store %s: --cache-from needs a path", st->path);
  return st->ops->attach_cache(st, other_path);
}

int store_maybe_flush(store *st, int64_t now_ms) {
  NEED_OPEN(st);
  return st->ops->maybe_flush(st, now_ms);
}

int store_flush(store *st) {
  NEED_OPEN(st);
  return st->ops->flush(st);
}

size_t store_pending(const store *st) { return st && st->impl ? st->ops->pending(st) : 0; }

void store_set_batch(store *st, int max_rows, int max_ms) {
  if (st && st->impl) st->ops->set_batch(st, max_rows, max_ms);
}

static int need_write(store *st) {
  if (st->flags & STORE_OPEN_READONLY)
    return store_seterr(st, AD_EREADONLY, "store %s was opened read-only", st->path);
  return 0;
}

static int bad_run(store *st, store_id run) {
  if (run <= 0)
    return store_seterr(st, AD_EINVAL, "store %s: invalid run id %lld", st->path, (long long)run);
  return 0;
}

static int bad_str(store *st, const char *what, const char *s) {
  if (!s || !*s) return store_seterr(st, AD_EINVAL, "store %s: %s is missing", st->path, what);
  return 0;
}

/* Before a put is queued in st->wq (store/wqueue.h): the backend knows the run. */
static int queue_run(store *st, store_id run) {
  return st->ops->check_run ? st->ops->check_run(st, run) : 0;
}

int store_run_begin(store *st, const struct store_run_info *info, int new_run, store_id *run,
                    int *resumed) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st))) return rc;
  if (!info || !run) return store_seterr(st, AD_EINVAL, "store %s: run info missing", st->path);
  if ((rc = bad_str(st, "recipe sha256", info->recipe_sha256))) return rc;
  if (info->prompt_hashes && !json_is_object(info->prompt_hashes))
    return store_seterr(st, AD_EINVAL, "store %s: prompt hashes must be an object", st->path);
  int dummy;
  return st->ops->run_begin(st, info, new_run, run, resumed ? resumed : &dummy);
}

int store_run_set_status(store *st, store_id run, const char *status) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run)) || (rc = bad_str(st, "status", status)))
    return rc;
  if (st->ops->run_set_status) return st->ops->run_set_status(st, run, status);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_run_status(st->wq, run, status));
}

int store_run_latest(store *st, store_id *run) {
  NEED_OPEN(st);
  if (!run) return AD_EINVAL;
  return st->ops->run_latest(st, run);
}

static const char *const state_names[] = {"pending", "in_progress", "done", "exhausted"};

const char *store_source_state_name(enum store_source_state s) {
  if ((unsigned)s < sizeof state_names / sizeof *state_names) return state_names[s];
  return "unknown";
}

int store_source_state_parse(const char *name, enum store_source_state *out) {
  for (unsigned i = 0; name && i < sizeof state_names / sizeof *state_names; i++)
    if (!strcmp(name, state_names[i])) {
      if (out) *out = (enum store_source_state)i;
      return 0;
    }
  return AD_EINVAL;
}

static int bad_state(store *st, enum store_source_state s) {
  if ((unsigned)s > STORE_SRC_EXHAUSTED)
    return store_seterr(st, AD_EINVAL, "store %s: invalid source state %d", st->path, (int)s);
  return 0;
}

int store_source_put(store *st, store_id run, const char *source_id, const char *title,
                     const char *text_sha256) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run)) ||
      (rc = bad_str(st, "source id", source_id)))
    return rc;
  return st->ops->source_put(st, run, source_id, title, text_sha256);
}

int store_source_set_state(store *st, store_id run, const char *source_id,
                           enum store_source_state state, int rounds_used) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run)) ||
      (rc = bad_str(st, "source id", source_id)) || (rc = bad_state(st, state)))
    return rc;
  if (st->ops->source_set_state)
    return st->ops->source_set_state(st, run, source_id, state, rounds_used);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_source_state(st->wq, run, source_id, state, rounds_used));
}

int store_source_get(store *st, store_id run, const char *source_id, struct store_source *out) {
  NEED_OPEN(st);
  int rc;
  if ((rc = bad_str(st, "source id", source_id))) return rc;
  if (!out) return AD_EINVAL;
  return st->ops->source_get(st, run, source_id, out);
}

static int bad_verdict(store *st, const char *verdict) {
  if (!verdict || (strcmp(verdict, "accepted") && strcmp(verdict, "rejected")))
    return store_seterr(st, AD_EINVAL,
                        "store %s: verdict must be \"accepted\" or \"rejected\", not \"%s\"",
                        st->path, verdict ? verdict : "(null)");
  return 0;
}

int store_candidate_put(store *st, store_id run, const char *source_id, int round, int index,
                        const char *verdict, const char *reason, const json_t *record) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run)) ||
      (rc = bad_str(st, "source id", source_id)) || (rc = bad_verdict(st, verdict)))
    return rc;
  if (st->ops->candidate_put)
    return st->ops->candidate_put(st, run, source_id, round, index, verdict, reason, record);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_candidate(st->wq, run, source_id, round, index, verdict, reason, record));
}

int store_example_put(store *st, store_id run, const char *source_id, const char *example_id,
                      const json_t *example) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run)) ||
      (rc = bad_str(st, "source id", source_id)) || (rc = bad_str(st, "example id", example_id)))
    return rc;
  if (!example) return store_seterr(st, AD_EINVAL, "store %s: example missing", st->path);
  if (st->ops->example_put) return st->ops->example_put(st, run, source_id, example_id, example);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_example(st->wq, run, source_id, example_id, example));
}

int store_episode_finish(store *st, store_id run, const struct store_episode_end *e) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run))) return rc;
  if (!e) return store_seterr(st, AD_EINVAL, "store %s: episode end missing", st->path);
  if ((rc = bad_str(st, "source id", e->source_id)) || (rc = bad_state(st, e->state))) return rc;
  if (e->cand_record && (rc = bad_verdict(st, e->verdict))) return rc;
  if (e->example && (rc = bad_str(st, "example id", e->example_id))) return rc;
  if (st->ops->episode_finish) return st->ops->episode_finish(st, run, e);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_episode(st->wq, run, e));
}

/* ---- cache key ---- */

void store_cache_key_text(const char *endpoint_name, const char *canonical_body, size_t len,
                          char out[33]) {
  /* XXH3-128 over "<endpoint>\0<canonical body>". hash128_hex takes one span,
   * so build it in a stack buffer when small, else on the heap. */
  size_t en = endpoint_name ? strlen(endpoint_name) : 0;
  size_t n = en + 1 + len;
  char small[8192];
  char *p = n <= sizeof small ? small : xmalloc(n);
  if (en) memcpy(p, endpoint_name, en);
  p[en] = 0;
  if (len) memcpy(p + en + 1, canonical_body, len);
  hash128_hex(p, n, out);
  if (p != small) free(p);
}

int store_cache_key(const char *endpoint_name, const json_t *request_body, char out[33]) {
  if (!endpoint_name || !request_body || !out) return AD_EINVAL;
  char *canon = jx_dump_canonical(request_body);
  if (!canon) return AD_EINVAL; /* a body that contains itself */
  store_cache_key_text(endpoint_name, canon, strlen(canon), out);
  free(canon);
  return 0;
}

static int bad_key(store *st, const char *key) {
  size_t n = key ? strlen(key) : 0;
  if (n != 32 || strspn(key, "0123456789abcdef") != 32)
    return store_seterr(st, AD_EINVAL, "store %s: cache key must be 32 lowercase hex digits",
                        st->path);
  return 0;
}

static int call_put(store *st, const struct store_call *c) {
  int rc;
  if (st->ops->call_put) return st->ops->call_put(st, c);
  if ((rc = queue_run(st, c->run))) return rc;
  return wq_queued(st, wq_call(st->wq, c));
}

int store_call_put(store *st, const struct store_call *c) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st))) return rc;
  if (!c) return AD_EINVAL;
  if ((rc = bad_run(st, c->run)) || (rc = bad_str(st, "call role", c->role))) return rc;
  if (c->cache_key && (rc = bad_key(st, c->cache_key))) return rc;
  if (c->n_attempt_list < 0 || (c->n_attempt_list && !c->attempt_list))
    return store_seterr(st, AD_EINVAL, "store %s: bad attempt list", st->path);
  if (c->cache_hit || c->error || !c->request) return call_put(st, c);
  /* a model call: how much of its prompt repeats an earlier request's start */
  if (!st->prefix) st->prefix = store_prefix_new();
  struct store_call cc = *c;
  cc.prefix_tokens = store_prefix_tokens(st->prefix, c->endpoint, c->model, c->source_id,
                                         c->request, c->request_len, c->prompt_tokens);
  return call_put(st, &cc);
}

int store_cache_get(store *st, const char *key, char **reply_body, size_t *len) {
  NEED_OPEN(st);
  int rc;
  if ((rc = bad_key(st, key))) return rc;
  if (!reply_body) return AD_EINVAL;
  *reply_body = NULL;
  if (len) *len = 0;
  return st->ops->cache_get(st, key, reply_body, len);
}

int store_event_put(store *st, store_id run, enum log_level level, const json_t *event) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st)) || (rc = bad_run(st, run))) return rc;
  if (!event) return store_seterr(st, AD_EINVAL, "store %s: event missing", st->path);
  if (st->ops->event_put) return st->ops->event_put(st, run, level, event);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_event(st->wq, run, level, event));
}

#define NEED_FN(st, fn)          \
  do {                           \
    NEED_OPEN(st);               \
    if (!(fn)) return AD_EINVAL; \
  } while (0)

int store_runs_each(store *st, store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  return st->ops->runs_each(st, fn, ud);
}

int store_sources_each(store *st, store_id run, store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  return st->ops->sources_each(st, run, fn, ud);
}

int store_candidates_each(store *st, store_id run, const char *verdict, store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  return st->ops->candidates_each(st, run, verdict, fn, ud);
}

int store_examples_each(store *st, store_id run, store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  return st->ops->examples_each(st, run, fn, ud);
}

int store_calls_each(store *st, store_id run, const char *role, int with_bodies, store_row_fn fn,
                     void *ud) {
  NEED_FN(st, fn);
  return st->ops->calls_each(st, run, role, with_bodies, fn, ud);
}

int store_source_candidates_each(store *st, store_id run, const char *source_id, store_row_fn fn,
                                 void *ud) {
  NEED_FN(st, fn);
  if (!source_id) return store_seterr(st, AD_EINVAL, "no source id given");
  return st->ops->source_candidates_each(st, run, source_id, fn, ud);
}

int store_source_calls_each(store *st, store_id run, const char *source_id, int with_bodies,
                            store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  if (!source_id) return store_seterr(st, AD_EINVAL, "no source id given");
  return st->ops->source_calls_each(st, run, source_id, with_bodies, fn, ud);
}

int store_events_each(store *st, store_id run, store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  return st->ops->events_each(st, run, fn, ud);
}

int store_opt_put(store *st, enum store_opt_table t, const char *optimization, const char *key,
                  const json_t *record) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st))) return rc;
  if ((unsigned)t > STORE_OPT_ITERATIONS || !optimization || !key || !record)
    return store_seterr(st, AD_EINVAL, "store %s: optimisation row incomplete", st->path);
  if (st->ops->opt_put) return st->ops->opt_put(st, t, optimization, key, record);
  return wq_queued(st, wq_opt(st->wq, t, optimization, key, record));
}

int store_opt_each(store *st, enum store_opt_table t, const char *optimization, store_row_fn fn,
                   void *ud) {
  NEED_FN(st, fn);
  if ((unsigned)t > STORE_OPT_ITERATIONS || !optimization) return AD_EINVAL;
  return st->ops->opt_each(st, t, optimization, fn, ud);
}

int store_analysis_put(store *st, store_id run, const json_t *analysis) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_write(st))) return rc;
  if (!json_is_object(analysis))
    return store_seterr(st, AD_EINVAL, "store %s: an analysis must be an object", st->path);
  if (st->ops->analysis_put) return st->ops->analysis_put(st, run, analysis);
  if ((rc = queue_run(st, run))) return rc;
  return wq_queued(st, wq_analysis(st->wq, run, analysis));
}

int store_analysis_get(store *st, store_id run, json_t **out) {
  NEED_OPEN(st);
  if (!out) return AD_EINVAL;
  return st->ops->analysis_get(st, run, out);
}

int store_run_stamp(store *st, store_id run, char out[33]) {
  NEED_OPEN(st);
  if (!out) return AD_EINVAL;
  out[0] = '\0';
  if (!st->ops->run_stamp)
    return store_seterr(st, AD_ENOTFOUND, "store %s: the %s backend keeps no stamp", st->path,
                        st->ops->name);
  return st->ops->run_stamp(st, run, out);
}

int store_stats(store *st, store_id run, json_t **out) {
  NEED_OPEN(st);
  if (!out) return AD_EINVAL;
  *out = NULL;
  return st->ops->stats(st, run, out);
}

/* ---- workers (PostgreSQL only) ---- */

static int need_workers(store *st, int has_op) {
  int rc = need_write(st);
  if (!rc && !has_op)
    rc = store_seterr(st, AD_EINVAL,
                      "store %s is a %s store: several workers can share a run only in a "
                      "PostgreSQL store (--store postgres://...; docs/store.md)",
                      st->path, st->ops->name);
  return rc;
}

int store_worker_join(store *st, store_id run, const char *host, int lease_ms, int64_t *worker) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_workers(st, st->ops->worker_join != NULL)) || (rc = bad_run(st, run)) ||
      (rc = bad_str(st, "host", host)))
    return rc;
  if (lease_ms < 100 || !worker)
    return store_seterr(st, AD_EINVAL, "store %s: a lease of %d ms is too short", st->path,
                        lease_ms);
  return st->ops->worker_join(st, run, host, lease_ms, worker);
}

int store_lease_claim(store *st, store_id run, int64_t worker, const char *source_id, int reopen,
                      enum store_claim *out, int64_t *took_from) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_workers(st, st->ops->lease_claim != NULL)) || (rc = bad_run(st, run)) ||
      (rc = bad_str(st, "source id", source_id)))
    return rc;
  if (!out || !took_from) return AD_EINVAL;
  *took_from = 0;
  return st->ops->lease_claim(st, run, worker, source_id, reopen, out, took_from);
}

int store_worker_beat(store *st, store_id run, int64_t worker,
                      const struct store_worker_counts *mine,
                      void (*fn)(void *ud, const char *source_id), void *ud,
                      struct store_worker_counts *others, int *alive) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_workers(st, st->ops->worker_beat != NULL)) || (rc = bad_run(st, run))) return rc;
  if (!mine) return AD_EINVAL;
  return st->ops->worker_beat(st, run, worker, mine, fn, ud, others, alive);
}

int store_lease_finish(store *st, store_id run, int64_t worker, const struct store_episode_end *e) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_workers(st, st->ops->lease_finish != NULL)) || (rc = bad_run(st, run))) return rc;
  if (!e || (rc = bad_str(st, "source id", e->source_id))) return rc ? rc : AD_EINVAL;
  return st->ops->lease_finish(st, run, worker, e);
}

int store_lease_release(store *st, store_id run, int64_t worker, const char *source_id) {
  NEED_OPEN(st);
  int rc;
  if ((rc = need_workers(st, st->ops->lease_release != NULL)) || (rc = bad_run(st, run))) return rc;
  return st->ops->lease_release(st, run, worker, source_id);
}

int store_workers_each(store *st, store_id run, store_row_fn fn, void *ud) {
  NEED_FN(st, fn);
  if (!st->ops->workers_each) return 0; /* a backend without workers has none */
  return st->ops->workers_each(st, run, fn, ud);
}
