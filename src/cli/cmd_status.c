/* cmd_status.c - `autodata status --store FILE [--run ID] [--json]`: progress and
 * statistics of a run store. Opens the store read-only (no lock), so it works
 * while a run is writing to it. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "store/store.h"
#include "util/jsonx.h"

enum { O_STORE = 1, O_RUN, O_JSON };
static const struct opts_spec status_opts[] = {
    {"store", "FILE", O_STORE, "the run store (a SQLite file or a postgres:// URL)"},
    {"run", "ID", O_RUN, "a run in the store (default: the latest)"},
    {"json", NULL, O_JSON, "print the statistics as one JSON object"},
    {0}};
static const struct opts_cli status_cli = {
    "status", "--store FILE [--run ID] [--json]",
    "Progress and statistics of a run store: sources by state, accepted examples,\n"
    "rejections by reason, model calls by role and status, retries, cache hits,\n"
    "tokens and cost by model; the workers of a run shared on PostgreSQL. Read-only:\n"
    "safe while a run is going on.",
    status_opts, NULL};

static long long ji(const json_t *o, const char *k) { return jx_int(o, k, 0); }

static void print_human(const char *path, const json_t *s) {
  const json_t *run = json_object_get(s, "run");
  char when[64] = "?";
  time_t t = (time_t)jx_num(run, "created", 0);
  struct tm tm;
  if (t && localtime_r(&t, &tm)) strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
  const char *recipe = jx_str(run, "recipe_name");
  printf("store %s: run %lld, recipe %s, seed %lld, %s (started %s)\n", path, ji(run, "id"),
         recipe ? recipe : "?", ji(run, "seed"),
         jx_str(run, "status") ? jx_str(run, "status") : "?", when);

  const json_t *src = json_object_get(s, "sources");
  printf("sources:     %lld total: %lld done, %lld in progress, %lld pending, %lld exhausted\n",
         ji(src, "total"), ji(src, "done"), ji(src, "in_progress"), ji(src, "pending"),
         ji(src, "exhausted"));
  printf("accepted:    %lld examples (%lld candidates evaluated)\n", ji(s, "accepted"),
         ji(s, "candidates"));

  const json_t *rej = json_object_get(s, "rejections");
  printf("rejections: ");
  if (!json_object_size(rej)) printf(" none");
  const char *k;
  json_t *v;
  int first = 1;
  json_object_foreach((json_t *)rej, k, v) {
    printf("%s %s %lld", first ? "" : ",", k, (long long)json_integer_value(v));
    first = 0;
  }
  printf("\n");

  const json_t *calls = json_object_get(s, "calls");
  printf(
      "calls:       %lld (%lld ok, %lld failed, %lld from the cache); %lld attempts, %lld "
      "retries\n",
      ji(calls, "total"), ji(calls, "ok"), ji(calls, "error"), ji(calls, "cache_hits"),
      ji(calls, "attempts"), ji(calls, "retries"));
  json_object_foreach(json_object_get(calls, "by_role"), k, v) {
    printf("  %-16s %8lld ok %6lld failed %6lld cached\n", k, ji(v, "ok"), ji(v, "error"),
           ji(v, "cache_hits"));
  }

  const json_t *tok = json_object_get(s, "tokens");
  printf("tokens:      %lld prompt, %lld completion (cache hits excluded)\n", ji(tok, "prompt"),
         ji(tok, "completion"));
  if (ji(tok, "prompt") > 0)
    printf(
        "prefix:      %.1f%% of prompt tokens repeat the start of an earlier request to the "
        "same endpoint and model (%lld tokens a prefix cache can reuse)\n",
        100.0 * (double)ji(tok, "prefix") / (double)ji(tok, "prompt"), ji(tok, "prefix"));
  json_object_foreach(json_object_get(tok, "by_model"), k, v) {
    printf("  %-24s %12lld prompt %12lld completion %8lld calls", k, ji(v, "prompt"),
           ji(v, "completion"), ji(v, "calls"));
    if (json_object_get(v, "cost_usd")) printf("  $%.4f", jx_num(v, "cost_usd", 0));
    printf("\n");
  }
  if (json_object_get(s, "cost_usd")) {
    printf("cost:        $%.4f", jx_num(s, "cost_usd", 0));
    const json_t *un = json_object_get(s, "unpriced_models");
    if (json_array_size(un)) printf(" (no price for %zu model(s))", json_array_size(un));
    printf("\n");
  }
  const json_t *lat = json_object_get(s, "latency_ms");
  if (lat)
    printf("latency:     mean %.0f ms, p50 %.0f ms, p95 %.0f ms\n", jx_num(lat, "mean", 0),
           jx_num(lat, "p50", 0), jx_num(lat, "p95", 0));
}

/* `autodata optimize` stores (docs/optimize.md): the latest optimisation's progress, or NULL
 * when the store holds none (also a store older than the optimisation tables). */
struct opt_scan {
  char id[64]; /* "" when none */
  json_t *last;
  int n, admitted, rejected, refused;
};
static int opt_run_row(void *ud, const json_t *row) {
  const char *id = jx_str(json_object_get(json_object_get(row, "info"), "extra"), "optimization");
  if (id) snprintf(((struct opt_scan *)ud)->id, sizeof((struct opt_scan *)ud)->id, "%s", id);
  return 0;
}
static int opt_iter_row(void *ud, const json_t *row) {
  struct opt_scan *o = ud;
  const json_t *rec = json_object_get(row, "record");
  const char *st = jx_str(rec, "status");
  o->n++;
  o->admitted += st && !strcmp(st, "accepted");
  o->rejected += st && !strcmp(st, "rejected");
  o->refused += st && !strcmp(st, "refused");
  json_decref(o->last);
  o->last = json_deep_copy(rec);
  return 0;
}
static json_t *optimization_status(store *st) {
  struct opt_scan o = {0};
  if (store_runs_each(st, opt_run_row, &o) || !o.id[0] ||
      store_opt_each(st, STORE_OPT_ITERATIONS, o.id, opt_iter_row, &o)) {
    json_decref(o.last);
    return NULL;
  }
  json_t *r = json_pack("{s:s,s:i,s:i,s:i,s:i}", "id", o.id, "iterations", o.n, "admitted",
                        o.admitted, "not_better", o.rejected, "refused", o.refused);
  if (o.last) {
    json_object_set(r, "best", json_object_get(o.last, "best"));
    json_object_set(r, "best_mean", json_object_get(o.last, "best_mean"));
    json_object_set(r, "best_n", json_object_get(o.last, "best_n"));
    json_object_set(r, "calls_sent", json_object_get(o.last, "calls_sent"));
  }
  json_decref(o.last);
  return r;
}

/* The run's workers (a PostgreSQL store shared by several `autodata run`; docs/store.md) as an
 * array with each one's calls per second over its life; NULL when it has none. */
static int worker_row(void *ud, const json_t *row) {
  json_t *w = json_deep_copy(row);
  double life = jx_num(row, "heartbeat", 0) - jx_num(row, "started", 0);
  json_object_set_new(w, "calls_per_s",
                      json_real(life > 0 ? (double)jx_int(row, "calls", 0) / life : 0));
  json_array_append_new(ud, w);
  return 0;
}

static json_t *workers_status(store *st, store_id run) {
  json_t *a = json_array();
  if (store_workers_each(st, run, worker_row, a) || !json_array_size(a)) {
    json_decref(a);
    return NULL;
  }
  return a;
}

static void print_workers(const json_t *ws) {
  size_t i, alive = 0, left = 0;
  json_t *w;
  json_array_foreach(ws, i, w) {
    alive += json_is_true(json_object_get(w, "alive"));
    left += json_is_true(json_object_get(w, "left"));
  }
  printf("workers:     %zu (%zu alive, %zu left, %zu gone without leaving)\n", json_array_size(ws),
         alive, left, json_array_size(ws) - alive - left);
  json_array_foreach(ws, i, w) {
    const int up = json_is_true(json_object_get(w, "alive"));
    const char *state = up ? "alive" : json_is_true(json_object_get(w, "left")) ? "left" : "gone";
    printf(
        "  worker %-4lld %s pid %lld  %-5s heartbeat %.1f s ago  %lld leases  %lld calls "
        "(%.1f/s), %lld cached, %lld sources finished\n",
        ji(w, "id"), jx_str(w, "host") ? jx_str(w, "host") : "?", ji(w, "pid"), state,
        jx_num(w, "age_s", 0), ji(w, "leases"), ji(w, "calls"), jx_num(w, "calls_per_s", 0),
        ji(w, "cache_hits"), ji(w, "finished"));
  }
}

int cmd_status(int argc, char **argv) {
  const char *path = NULL;
  int as_json = 0;
  long long run = 0;
  struct opts_parser op;
  opts_begin(&op, &status_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_STORE: path = op.val; break;
    case O_JSON: as_json = 1; break;
    case O_RUN:
      if (opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run)) return 2;
      break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&status_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  if (!path) {
    opts_usage_error(&status_cli, "--store FILE is required");
    return 2;
  }
  store *st = NULL;
  json_t *stats = NULL;
  int ret = 1;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  if (rc) {
    fprintf(stderr, "autodata status: %s\n", st ? store_errmsg(st) : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  rc = store_stats(st, (store_id)run, &stats);
  if (rc) {
    fprintf(stderr, "autodata status: %s\n", store_errmsg(st));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  json_t *opt = optimization_status(st);
  if (opt) json_object_set_new(stats, "optimization", opt);
  json_t *workers = workers_status(st, (store_id)jx_int(json_object_get(stats, "run"), "id", 0));
  if (workers) json_object_set_new(stats, "workers", workers);
  if (as_json) {
    char *text = json_dumps(stats, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!text) goto cleanup;
    puts(text);
    free(text);
  } else {
    print_human(path, stats);
    if (workers) print_workers(workers);
    if (opt)
      printf(
          "optimization %s: %lld iterations (%lld admitted, %lld not better, %lld refused); "
          "best %.8s, validation mean %.3f over %lld evaluation(s); %lld calls sent\n",
          jx_str(opt, "id"), ji(opt, "iterations"), ji(opt, "admitted"), ji(opt, "not_better"),
          ji(opt, "refused"), jx_str(opt, "best") ? jx_str(opt, "best") : "-",
          jx_num(opt, "best_mean", 0), ji(opt, "best_n"), ji(opt, "calls_sent"));
  }
  ret = 0;
cleanup:
  json_decref(stats);
  store_close(st);
  return ret;
}
