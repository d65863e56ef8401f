/* stats.c - store_stats()'s object, assembled the same way for every backend (store_impl.h).
 *
 * The backend supplies its queries (its SQL dialect, its fast aggregates) and a way to run
 * them; the object's shape, its sums, costs and percentiles are computed here once.
 */
#include <stdio.h>
#include <string.h>

#include "store/store_impl.h"
#include "util/jsonx.h"

/* 0, or AD_EINVAL when jansson refuses the key (a name from the store that is not UTF-8).
 * The aggregates below return 0 or AD_EINVAL the same way. */
static int set_int(json_t *o, const char *k, int64_t v) {
  return json_object_set_new(o, k, json_integer((json_int_t)v)) ? AD_EINVAL : 0;
}
static int add_int(json_t *o, const char *k, int64_t n) {
  return set_int(o, k, json_integer_value(json_object_get(o, k)) + n);
}
static const char *col_str(const struct store_stats_row *r, int i, const char *dflt) {
  return r->s[i] ? r->s[i] : dflt;
}

/* state, count */
static int agg_sources(const struct store_stats_row *r, json_t *o) {
  int64_t n = r->i[1];
  json_t *tot = json_object_get(o, "total");
  int rc = set_int(o, col_str(r, 0, "unknown"), n);
  return rc ? rc : set_int(o, "total", json_integer_value(tot) + n);
}

/* name, count */
static int agg_pairs(const struct store_stats_row *r, json_t *o) {
  return set_int(o, col_str(r, 0, "unknown"), r->i[1]);
}

/* role, status, cache_hit, count, attempts, retries */
static int agg_calls(const struct store_stats_row *r, json_t *calls) {
  const char *role = col_str(r, 0, "unknown");
  const char *status = col_str(r, 1, "unknown");
  int hit = r->i[2] != 0;
  int64_t n = r->i[3];
  json_t *by = json_object_get(calls, "by_role");
  json_t *o = json_object_get(by, role);
  if (!o) {
    o = json_pack("{s:i, s:i, s:i, s:i}", "ok", 0, "error", 0, "cache_hits", 0, "retries", 0);
    if (json_object_set_new(by, role, o)) return AD_EINVAL; /* role is not UTF-8 */
  }
  const char *k = hit ? "cache_hits" : (!strcmp(status, "ok") ? "ok" : "error");
  int rc = add_int(o, k, n) | add_int(o, "retries", r->i[5]) | add_int(calls, k, n) |
           add_int(calls, "total", n);
  rc |= add_int(calls, "attempts", r->i[4]) | add_int(calls, "retries", r->i[5]);
  return rc ? AD_EINVAL : 0;
}

/* model, prompt, completion, calls; acc = {"tokens": ..., "prices": ..., "unpriced": [...]} */
static int agg_tokens(const struct store_stats_row *r, json_t *acc) {
  json_t *tokens = json_object_get(acc, "tokens");
  json_t *by = json_object_get(tokens, "by_model");
  const char *model = col_str(r, 0, "unknown");
  int64_t p = r->i[1], c = r->i[2];
  json_t *m = json_pack("{s:I, s:I, s:I}", "prompt", (json_int_t)p, "completion", (json_int_t)c,
                        "calls", (json_int_t)r->i[3]);
  if (json_object_set_new(by, model, m)) return AD_EINVAL; /* model is not UTF-8 */
  int rc = add_int(tokens, "prompt", p) | add_int(tokens, "completion", c);
  json_t *price = json_object_get(json_object_get(acc, "prices"), model);
  if (json_is_object(price)) {
    double cost = (double)p / 1e6 * jx_num(price, "prompt_per_mtok", 0) +
                  (double)c / 1e6 * jx_num(price, "completion_per_mtok", 0);
    rc |= json_object_set_new(m, "cost_usd", json_real(cost));
    rc |= json_object_set_new(acc, "cost_usd", json_real(jx_num(acc, "cost_usd", 0) + cost));
  } else if (p || c) {
    json_t *un = json_object_get(acc, "unpriced");
    if (un) rc |= json_array_append_new(un, json_string(model));
  }
  return rc ? AD_EINVAL : 0;
}

/* role, model, prompt, completion; acc = {"by_role": ..., "prices": ...}: each role's real
 * calls' tokens and, when its models are priced, their cost */
static int agg_role_tokens(const struct store_stats_row *r, json_t *acc) {
  json_t *o = json_object_get(json_object_get(acc, "by_role"), col_str(r, 0, "unknown"));
  if (!o) return 0;
  int64_t p = r->i[2], c = r->i[3];
  int rc = add_int(o, "prompt", p) | add_int(o, "completion", c);
  json_t *price = json_object_get(json_object_get(acc, "prices"), col_str(r, 1, "unknown"));
  if (json_is_object(price)) {
    double cost = jx_num(o, "cost_usd", 0) + (double)p / 1e6 * jx_num(price, "prompt_per_mtok", 0) +
                  (double)c / 1e6 * jx_num(price, "completion_per_mtok", 0);
    rc |= json_object_set_new(o, "cost_usd", json_real(cost));
  }
  return rc ? AD_EINVAL : 0;
}

/* for queries read through agg_ctx.first only */
static int first_col(const struct store_stats_row *r, json_t *acc) {
  (void)r;
  (void)acc;
  return 0;
}

struct agg_ctx {
  int (*fn)(const struct store_stats_row *r, json_t *acc);
  json_t *acc;
  int bad; /* fn refused a row */
  int rows;
  struct store_stats_row first;
};

static int agg_row(void *ud, const struct store_stats_row *r) {
  struct agg_ctx *c = ud;
  if (!c->rows++) {
    c->first = *r;
    for (int i = 0; i < STORE_STATS_COLS; i++) c->first.s[i] = NULL; /* not kept past the row */
  }
  if (c->fn(r, c->acc)) {
    c->bad = 1;
    return AD_EINVAL;
  }
  return 0;
}

/* Run one query (the run its parameter) through fn into acc. */
static int agg(store *st, const struct store_stats_q *q, store_id run, const char *sql,
               int (*fn)(const struct store_stats_row *r, json_t *acc), json_t *acc,
               struct agg_ctx *out) {
  struct agg_ctx c = {.fn = fn, .acc = acc};
  int rc = q->rows(st, run, sql, agg_row, &c);
  if (rc && c.bad)
    rc = store_seterr(st, AD_EINVAL,
                      "store %s: computing statistics: a value JSON cannot carry "
                      "(a name that is not UTF-8, or a cost that is not finite)",
                      store_path(st));
  if (out) *out = c;
  return rc;
}

/* One integer: the first column of the first row (0 when no row or NULL). */
static int one_int(store *st, const struct store_stats_q *q, store_id run, const char *sql,
                   int64_t *out) {
  struct agg_ctx c;
  int rc = agg(st, q, run, sql, first_col, NULL, &c);
  *out = c.rows ? c.first.i[0] : 0;
  return rc;
}

struct capture {
  json_t *row;
};
static int capture_row(void *ud, const json_t *row) {
  ((struct capture *)ud)->row = json_deep_copy(row);
  return 0;
}

/* The latency of real successful calls: mean, p50, p95 (cnt of them) into res. */
static int latency(store *st, const struct store_stats_q *q, store_id run, int64_t cnt,
                   json_t *res) {
  int64_t mean = 0, p50 = 0, p95 = 0;
  char sql[512];
  int rc = one_int(st, q, run, q->latency_mean, &mean);
  snprintf(sql, sizeof sql, q->latency_at, (long long)((cnt - 1) / 2));
  if (!rc) rc = one_int(st, q, run, sql, &p50);
  snprintf(sql, sizeof sql, q->latency_at, (long long)((cnt - 1) * 95 / 100));
  if (!rc) rc = one_int(st, q, run, sql, &p95);
  if (!rc)
    json_object_set_new(res, "latency_ms",
                        json_pack("{s:f, s:f, s:f}", "mean", (double)mean / 1000.0, "p50",
                                  (double)p50 / 1000.0, "p95", (double)p95 / 1000.0));
  return rc;
}

int store_stats_build(store *st, store_id run, const struct store_stats_q *q, json_t **out) {
  json_t *res = json_object(), *sources = NULL, *rej = NULL, *calls = NULL, *acc = NULL;
  struct capture cap = {NULL};
  int rc = q->run_row(st, run, capture_row, &cap);
  if (rc) goto cleanup;
  if (!cap.row) {
    rc = store_seterr(st, AD_ENOTFOUND, "store %s has no run %lld", store_path(st), (long long)run);
    goto cleanup;
  }
  json_object_set_new(res, "run", cap.row);
  sources = json_pack("{s:i, s:i, s:i, s:i, s:i}", "total", 0, "pending", 0, "in_progress", 0,
                      "done", 0, "exhausted", 0);
  rej = json_object();
  calls = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:{}}", "total", 0, "ok", 0, "error", 0,
                    "cache_hits", 0, "attempts", 0, "retries", 0, "by_role");
  acc = json_pack("{s:{s:i, s:i, s:{}}, s:[]}", "tokens", "prompt", 0, "completion", 0, "by_model",
                  "unpriced");
  json_t *prices = json_object_get(json_object_get(cap.row, "info"), "prices");
  if (prices) json_object_set(acc, "prices", prices);
  int64_t n = 0;
  if ((rc = agg(st, q, run, q->sources, agg_sources, sources, NULL))) goto cleanup;
  json_object_set(res, "sources", sources);
  if ((rc = one_int(st, q, run, q->examples, &n))) goto cleanup;
  set_int(res, "accepted", n);
  if ((rc = one_int(st, q, run, q->candidates, &n))) goto cleanup;
  set_int(res, "candidates", n);
  if ((rc = agg(st, q, run, q->rejections, agg_pairs, rej, NULL))) goto cleanup;
  json_object_set(res, "rejections", rej);
  if ((rc = agg(st, q, run, q->calls, agg_calls, calls, NULL))) goto cleanup;
  json_object_set(res, "calls", calls);
  json_object_set(acc, "by_role", json_object_get(calls, "by_role"));
  if ((rc = agg(st, q, run, q->role_tokens, agg_role_tokens, acc, NULL)) ||
      (rc = agg(st, q, run, q->tokens, agg_tokens, acc, NULL)))
    goto cleanup;
  json_object_set(res, "tokens", json_object_get(acc, "tokens"));
  if ((rc = one_int(st, q, run, q->prefix, &n))) goto cleanup;
  set_int(json_object_get(res, "tokens"), "prefix", n);
  if (json_object_get(acc, "cost_usd")) {
    json_object_set(res, "cost_usd", json_object_get(acc, "cost_usd"));
    if (json_array_size(json_object_get(acc, "unpriced")))
      json_object_set(res, "unpriced_models", json_object_get(acc, "unpriced"));
  }
  /* wall time: from the first model call's row to the last one's */
  struct agg_ctx wall;
  if ((rc = agg(st, q, run, q->wall, first_col, NULL, &wall))) goto cleanup;
  if (wall.rows && !wall.first.null[0])
    json_object_set_new(res, "wall_s", json_real(wall.first.d[0]));
  int64_t cnt = 0;
  if ((rc = one_int(st, q, run, q->ok_calls, &cnt))) goto cleanup;
  if (cnt > 0 && (rc = latency(st, q, run, cnt, res))) goto cleanup;
  *out = res;
  res = NULL;
cleanup:
  json_decref(sources);
  json_decref(rej);
  json_decref(calls);
  json_decref(acc);
  json_decref(res);
  return rc;
}
