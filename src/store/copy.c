/* copy.c - store_copy(): every run of one store into another, through store.h only. */
#include <stdlib.h>
#include <string.h>

#include "store/copy.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/timeu.h"

struct cp {
  store *from, *to;
  store_id run; /* the run being copied, in both stores */
  struct store_copy_counts *n;
  char *err;
  size_t errlen;
};

/* The target's error (a put or a flush failed): 1 stops the iteration, cp->err has it. */
static int to_failed(struct cp *c, int rc) {
  ad_set_err(c->err, c->errlen, "%s", store_errmsg(c->to));
  return rc ? rc : AD_EINTERNAL;
}

static int put_done(struct cp *c, int rc, int64_t *count) {
  if (!rc) rc = store_maybe_flush(c->to, time_now_ms());
  if (rc) return to_failed(c, rc);
  (*count)++;
  return 0;
}

static int source_row(void *ud, const json_t *row) {
  struct cp *c = ud;
  const char *sid = jx_str(row, "source_id");
  enum store_source_state state = STORE_SRC_PENDING;
  (void)store_source_state_parse(jx_str(row, "state"), &state);
  int rc = store_source_put(c->to, c->run, sid, jx_str(row, "title"), jx_str(row, "text_sha256"));
  if (!rc)
    rc = store_source_set_state(c->to, c->run, sid, state, (int)jx_int(row, "rounds_used", 0));
  return put_done(c, rc, &c->n->sources);
}

static int candidate_row(void *ud, const json_t *row) {
  struct cp *c = ud;
  const json_t *rec = json_object_get(row, "record");
  int rc = store_candidate_put(c->to, c->run, jx_str(row, "source_id"),
                               (int)jx_int(row, "round", 0), (int)jx_int(row, "index", 0),
                               jx_str(row, "verdict"), jx_str(row, "reason"),
                               json_is_null(rec) ? NULL : rec);
  return put_done(c, rc, &c->n->candidates);
}

static int example_row(void *ud, const json_t *row) {
  struct cp *c = ud;
  int rc = store_example_put(c->to, c->run, jx_str(row, "source_id"), jx_str(row, "example_id"),
                             json_object_get(row, "example"));
  return put_done(c, rc, &c->n->examples);
}

static int call_row(void *ud, const json_t *row) {
  struct cp *c = ud;
  const json_t *al = json_object_get(row, "attempt_list");
  size_t na = json_is_array(al) ? json_array_size(al) : 0;
  struct store_attempt *at = na ? xcalloc(na, sizeof *at) : NULL;
  for (size_t i = 0; i < na; i++) {
    const json_t *a = json_array_get(al, i);
    at[i].number = (int)jx_int(a, "n", (json_int_t)i + 1);
    at[i].http_status = (int)jx_int(a, "http_status", 0);
    at[i].error = jx_str(a, "error");
    at[i].latency_us = jx_int(a, "latency_us", 0);
    at[i].retry_after_ms = jx_int(a, "retry_after_ms", 0);
  }
  const char *status = jx_str(row, "status"), *error = jx_str(row, "error");
  if (status && strcmp(status, "ok") && !error) error = status;
  const json_t *rnd = json_object_get(row, "round");
  struct store_call k = {.run = c->run,
                         .role = jx_str(row, "role"),
                         .source_id = jx_str(row, "source_id"),
                         .round = json_is_integer(rnd) ? (int)json_integer_value(rnd) : -1,
                         .endpoint = jx_str(row, "endpoint"),
                         .model = jx_str(row, "model"),
                         .cache_key = jx_str(row, "cache_key"),
                         .request = jx_str(row, "request"),
                         .reply = jx_str(row, "reply"),
                         .error = status && !strcmp(status, "ok") ? NULL : error,
                         .http_status = (int)jx_int(row, "http_status", 0),
                         .prompt_tokens = jx_int(row, "prompt_tokens", 0),
                         .completion_tokens = jx_int(row, "completion_tokens", 0),
                         .latency_us = jx_int(row, "latency_us", 0),
                         .attempts = (int)jx_int(row, "attempts", 0),
                         .retries = (int)jx_int(row, "retries", 0),
                         .cache_hit = json_is_true(json_object_get(row, "cache_hit")),
                         .attempt_list = at,
                         .n_attempt_list = (int)na,
                         .finish_reason = jx_str(row, "finish_reason")};
  if (k.request) k.request_len = strlen(k.request);
  if (k.reply) k.reply_len = strlen(k.reply);
  int rc = store_call_put(c->to, &k);
  free(at);
  return put_done(c, rc, &c->n->calls);
}

static int event_row(void *ud, const json_t *row) {
  struct cp *c = ud;
  const char *l = jx_str(row, "level");
  enum log_level level = !l                    ? LOG_INFO
                         : !strcmp(l, "error") ? LOG_ERROR
                         : !strcmp(l, "warn")  ? LOG_WARN
                         : !strcmp(l, "debug") ? LOG_DEBUG
                                               : LOG_INFO;
  const json_t *ev = json_object_get(row, "event");
  json_t *wrapped = json_is_object(ev) ? NULL : json_pack("{s:O}", "msg", ev);
  int rc = store_event_put(c->to, c->run, level, wrapped ? wrapped : ev);
  json_decref(wrapped);
  return put_done(c, rc, &c->n->events);
}

struct opt_cp {
  struct cp *c;
  enum store_opt_table t;
  const char *id;
};
static int opt_row(void *ud, const json_t *row) {
  struct opt_cp *o = ud;
  int rc = store_opt_put(o->c->to, o->t, o->id, jx_str(row, "key"), json_object_get(row, "record"));
  return put_done(o->c, rc, &o->c->n->opt_rows);
}

/* The source's read error, or the target's (already in err), from an iteration. */
static int each_failed(struct cp *c, int rc, const char *what) {
  if (!c->err[0])
    ad_set_err(c->err, c->errlen, "reading the %s of run %lld: %s", what, (long long)c->run,
               store_errmsg(c->from));
  return rc;
}

static int run_row(void *ud, const json_t *row) {
  struct cp *c = ud;
  const json_t *info = json_object_get(row, "info");
  const json_t *seed = json_object_get(row, "seed");
  struct store_run_info ri = {
      .recipe_name = jx_str(row, "recipe_name"),
      .recipe_sha256 = jx_str(row, "recipe_sha256"),
      .prompt_hashes = json_is_object(json_object_get(row, "prompt_hashes"))
                           ? json_object_get(row, "prompt_hashes")
                           : NULL,
      .seed = (uint64_t)(json_is_integer(seed) ? json_integer_value(seed) : 0),
      .version = jx_str(row, "version"),
      .command_line = jx_str(row, "command_line"),
      .prices = json_object_get(info, "prices"),
      .extra = json_object_get(info, "extra")};
  store_id from_run = jx_int(row, "id", 0), to_run = 0;
  int rc = store_run_begin(c->to, &ri, 1, &to_run, NULL);
  if (rc) return to_failed(c, rc);
  if (to_run != from_run) {
    ad_set_err(c->err, c->errlen, "run %lld became run %lld in the copy: is the target empty?",
               (long long)from_run, (long long)to_run);
    return AD_EMISMATCH;
  }
  c->run = from_run;
  c->n->runs++;
  if ((rc = store_sources_each(c->from, c->run, source_row, c)))
    return each_failed(c, rc, "sources");
  if ((rc = store_candidates_each(c->from, c->run, NULL, candidate_row, c)))
    return each_failed(c, rc, "candidates");
  if ((rc = store_examples_each(c->from, c->run, example_row, c)))
    return each_failed(c, rc, "examples");
  if ((rc = store_calls_each(c->from, c->run, NULL, 1, call_row, c)))
    return each_failed(c, rc, "model calls");
  if ((rc = store_events_each(c->from, c->run, event_row, c))) return each_failed(c, rc, "events");
  json_t *an = NULL;
  rc = store_analysis_get(c->from, c->run, &an);
  if (!rc) {
    rc = store_analysis_put(c->to, c->run, an);
    json_decref(an);
    if (rc) return to_failed(c, rc);
  } else if (rc != AD_ENOTFOUND) {
    return each_failed(c, rc, "analysis");
  }
  const char *opt = jx_str(json_object_get(info, "extra"), "optimization");
  for (int t = STORE_OPT_SPLITS; opt && t <= STORE_OPT_ITERATIONS; t++) {
    struct opt_cp o = {c, (enum store_opt_table)t, opt};
    if ((rc = store_opt_each(c->from, o.t, opt, opt_row, &o)))
      return each_failed(c, rc, "optimisation rows");
  }
  const char *status = jx_str(row, "status");
  if (status && (rc = store_run_set_status(c->to, c->run, status))) return to_failed(c, rc);
  if ((rc = store_flush(c->to))) return to_failed(c, rc);
  return 0;
}

int store_copy(store *from, store *to, struct store_copy_counts *counts, char *err, size_t errlen) {
  struct store_copy_counts dummy;
  if (!counts) counts = &dummy;
  memset(counts, 0, sizeof *counts);
  if (err && errlen) err[0] = 0;
  char buf[1024] = "";
  struct cp c = {from, to, 0, counts, err ? err : buf, err ? errlen : sizeof buf};
  store_id latest;
  int rc = store_run_latest(to, &latest);
  if (rc == 0) {
    ad_set_err(c.err, c.errlen,
               "store %s already holds runs: copy into a new store (a new file, or an empty "
               "PostgreSQL schema)",
               store_path(to));
    return AD_EMISMATCH;
  }
  if (rc != AD_ENOTFOUND) {
    ad_set_err(c.err, c.errlen, "%s", store_errmsg(to));
    return rc;
  }
  store_set_batch(to, 5000, 1000);
  rc = store_runs_each(from, run_row, &c);
  if (rc && !c.err[0])
    ad_set_err(c.err, c.errlen, "reading the runs of %s: %s", store_path(from), store_errmsg(from));
  return rc;
}
