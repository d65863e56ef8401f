/* compare.c - side-by-side figures of runs, candidates.jsonl (see compare.h). */
#include "report/compare.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "report/bootstrap.h"
#include "report/report.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

/* ---- growable vectors ---------------------------------------------------------- */

struct vec {
  double *v;
  size_t n, cap;
};

/* Append x unless it is not finite. */
static void vec_push(struct vec *a, double x) {
  if (!isfinite(x)) return;
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = x;
}

static void vec_free(struct vec *a) {
  free(a->v);
  memset(a, 0, sizeof *a);
}

/* ---- one run ------------------------------------------------------------------- */

enum { D_WEAK, D_STRONG, D_GAP, D_WSTD, D_QLEN, D_RUBRIC, D_ROUNDS, D_N };
static const char *const k_dnames[D_N] = {"weak_mean",      "strong_mean",  "gap",   "weak_std",
                                          "question_chars", "rubric_items", "rounds"};
enum { E_WEAK, E_STRONG, E_GAP, E_N };
static const char *const k_enames[E_N] = {"weak_mean", "strong_mean", "gap"};

struct compare_run {
  char *label;
  json_t *row;   /* the run row */
  json_t *stats; /* store_stats() */
  char method[32];
  struct vec d[D_N]; /* dataset (delivered examples) */
  struct vec e[E_N]; /* evaluated candidates */
  struct vec acc;    /* finished sources: 1 accepted by the gate, 0 not */
  size_t candidates, accepted_cands;
  double accept_round_sum;
  json_t *src_acc; /* source_id -> true when a candidate passed the gate */
  json_t *src_fin; /* finished source_id -> 1 accepted by the gate, 0 not */
  json_t *rejections, *filter_rejections;
};

void compare_opts_default(struct compare_opts *o) {
  o->resamples = BOOT_DEFAULT_RESAMPLES;
  o->level = BOOT_DEFAULT_LEVEL;
  o->seed = 1;
}

void compare_run_free(struct compare_run *r) {
  if (!r) return;
  free(r->label);
  json_decref(r->row);
  json_decref(r->stats);
  for (int i = 0; i < D_N; i++) vec_free(&r->d[i]);
  for (int i = 0; i < E_N; i++) vec_free(&r->e[i]);
  vec_free(&r->acc);
  json_decref(r->src_acc);
  json_decref(r->src_fin);
  json_decref(r->rejections);
  json_decref(r->filter_rejections);
  free(r);
}

static void count_reason(json_t *obj, const char *reason) {
  if (!reason) return;
  json_int_t n = json_integer_value(json_object_get(obj, reason));
  json_object_set_new(obj, reason, json_integer(n + 1));
}

static double num_or_nan(const json_t *o, const char *k) {
  const json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : NAN;
}

static int on_example(void *ud, const json_t *row) {
  struct compare_run *r = ud;
  const json_t *ex = json_object_get(row, "example");
  if (!json_is_object(ex)) return 0;
  vec_push(&r->d[D_WEAK], num_or_nan(ex, "weak_mean"));
  vec_push(&r->d[D_STRONG], num_or_nan(ex, "strong_mean"));
  vec_push(&r->d[D_GAP], num_or_nan(ex, "gap"));
  vec_push(&r->d[D_WSTD], num_or_nan(ex, "weak_std"));
  const char *q = jx_str(ex, "question");
  if (q) vec_push(&r->d[D_QLEN], (double)jx_utf8_chars(q));
  const json_t *rub = json_object_get(ex, "rubric");
  if (json_is_array(rub)) vec_push(&r->d[D_RUBRIC], (double)json_array_size(rub));
  vec_push(&r->d[D_ROUNDS], num_or_nan(ex, "rounds_used"));
  return 0;
}

static int on_candidate(void *ud, const json_t *row) {
  struct compare_run *r = ud;
  r->candidates++;
  const char *verdict = jx_str(row, "verdict");
  const char *sid = jx_str(row, "source_id");
  const json_t *rec = json_object_get(row, "record");
  if (verdict && !strcmp(verdict, "accepted")) {
    r->accepted_cands++;
    r->accept_round_sum += (double)jx_int(row, "round", 1);
    if (sid) json_object_set_new(r->src_acc, sid, json_true());
  } else {
    count_reason(r->rejections, jx_str(row, "reason") ? jx_str(row, "reason") : "unknown");
  }
  if (json_is_object(rec) && json_object_get(rec, "passed_filter") &&
      !json_is_true(json_object_get(rec, "passed_filter")))
    count_reason(r->filter_rejections,
                 jx_str(rec, "filter_reason") ? jx_str(rec, "filter_reason") : "unknown");
  const json_t *st = json_is_object(rec) ? json_object_get(rec, "stats") : NULL;
  if (!json_is_object(st)) return 0;
  int nw = (int)jx_int(st, "n_weak", 0), ns = (int)jx_int(st, "n_strong", 0);
  int sr = json_is_true(json_object_get(st, "strong_ran"));
  if (nw > 0) vec_push(&r->e[E_WEAK], num_or_nan(st, "weak_mean"));
  if (sr && ns > 0) vec_push(&r->e[E_STRONG], num_or_nan(st, "strong_mean"));
  if (nw > 0 && sr && ns > 0) vec_push(&r->e[E_GAP], num_or_nan(st, "gap"));
  return 0;
}

static int on_source(void *ud, const json_t *row) {
  struct compare_run *r = ud;
  const char *state = jx_str(row, "state");
  if (!state || (strcmp(state, "done") && strcmp(state, "exhausted"))) return 0;
  const char *sid = jx_str(row, "source_id");
  int a = sid && json_is_true(json_object_get(r->src_acc, sid));
  vec_push(&r->acc, a ? 1.0 : 0.0);
  if (sid) json_object_set_new(r->src_fin, sid, json_integer(a));
  return 0;
}

int compare_load(store *st, store_id run, const char *label, struct compare_run **out, char *err,
                 size_t n) {
  *out = NULL;
  struct compare_run *r = xcalloc(1, sizeof *r);
  int rc;
  r->label = xstrdup(label ? label : store_path(st));
  r->src_acc = json_object();
  r->src_fin = json_object();
  r->rejections = json_object();
  r->filter_rejections = json_object();
  if ((rc = report_run_row(st, run, &r->row, err, n))) goto fail;
  store_id id = (store_id)jx_int(r->row, "id", 0);
  const json_t *meta = report_run_meta(r->row);
  const char *m = jx_str(json_object_get(meta, "method"), "name");
  snprintf(r->method, sizeof r->method, "%s", m ? m : "agentic");
  if ((rc = store_examples_each(st, id, on_example, r)) ||
      (rc = store_candidates_each(st, id, NULL, on_candidate, r)) ||
      (rc = store_sources_each(st, id, on_source, r)) || (rc = store_stats(st, id, &r->stats))) {
    report_err(err, n, rc, "%s: %s", r->label, store_errmsg(st));
    goto fail;
  }
  *out = r;
  return 0;
fail:
  compare_run_free(r);
  return rc;
}

/* ---- building -------------------------------------------------------------------- */

static json_t *ci_json(const struct boot_ci *c) {
  if (!c->n || !isfinite(c->est)) return json_null();
  return json_pack("{s:f,s:f,s:f,s:I}", "est", c->est, "lo", c->lo, "hi", c->hi, "n",
                   (json_int_t)c->n);
}

static json_t *num_or_null(double x) { return isfinite(x) ? json_real(x) : json_null(); }

static json_t *mean_ci(const struct vec *v, const struct compare_opts *o, uint64_t seed) {
  struct boot_ci c;
  boot_mean_ci(v->v, v->n, o->resamples, o->level, seed, &c);
  return ci_json(&c);
}

static json_t *diff_ci(const struct vec *x, const struct vec *y, const struct compare_opts *o,
                       uint64_t seed) {
  struct boot_ci c;
  boot_diff_ci(x->v, x->n, y->v, y->n, o->resamples, o->level, seed, &c);
  return ci_json(&c);
}

/* A run's key for its bootstrap seeds: what it is (configuration identity, method, run id,
 * seed), never where it stands on the command line, so a run's intervals do not change
 * when the arguments are reordered. Written into key[n]. */
static void run_key(const struct compare_run *r, char *key, size_t n) {
  snprintf(key, n, "%s/%s/%lld/%lld",
           jx_str(r->row, "recipe_sha256") ? jx_str(r->row, "recipe_sha256") : "", r->method,
           (long long)jx_int(r->row, "id", 0), (long long)jx_int(r->row, "seed", 0));
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* The per-source differences r - first of gate acceptance, sorted by source id, when both
 * runs finished exactly the same sources (then the comparison is paired); else NULL with
 * *n = 0. Caller frees. */
static double *paired_acceptance(const struct compare_run *r, const struct compare_run *first,
                                 size_t *n) {
  *n = 0;
  size_t m = json_object_size(r->src_fin);
  if (!m || m != json_object_size(first->src_fin)) return NULL;
  const char **ids = xcalloc(m, sizeof *ids);
  const char *k;
  json_t *v;
  size_t i = 0;
  json_object_foreach(r->src_fin, k, v) {
    if (!json_object_get(first->src_fin, k)) {
      free(ids);
      return NULL;
    }
    ids[i++] = k;
  }
  qsort(ids, m, sizeof *ids, cmp_str);
  double *d = xcalloc(m, sizeof *d);
  for (i = 0; i < m; i++)
    d[i] = (double)json_integer_value(json_object_get(r->src_fin, ids[i])) -
           (double)json_integer_value(json_object_get(first->src_fin, ids[i]));
  free(ids);
  *n = m;
  return d;
}

/* One run's figures (new reference); first is the run to diff against, NULL for
 * the first run itself. */
static json_t *build_one(const struct compare_run *r, const struct compare_run *first,
                         const struct compare_opts *o) {
  char rk[200], fk[200];
  run_key(r, rk, sizeof rk);
  if (first) run_key(first, fk, sizeof fk);
  json_t *j = json_object(), *ds = json_object(), *ev = json_object();
  const json_t *calls = json_object_get(r->stats, "calls");
  const json_t *tokens = json_object_get(r->stats, "tokens");
  double ncalls = (double)(jx_int(calls, "total", 0) - jx_int(calls, "cache_hits", 0));
  double ntok = (double)(jx_int(tokens, "prompt", 0) + jx_int(tokens, "completion", 0));
  const json_t *costj = json_object_get(r->stats, "cost_usd");
  double cost = json_is_number(costj) ? json_number_value(costj) : NAN;
  double acc = (double)r->accepted_cands;
  json_object_set_new(j, "label", json_string(r->label));
  json_object_set_new(j, "run_id", json_integer(jx_int(r->row, "id", 0)));
  json_object_set_new(
      j, "name", json_string(jx_str(r->row, "recipe_name") ? jx_str(r->row, "recipe_name") : ""));
  json_object_set_new(j, "method", json_string(r->method));
  json_object_set_new(j, "status",
                      json_string(jx_str(r->row, "status") ? jx_str(r->row, "status") : ""));
  json_object_set_new(j, "sources", json_integer((json_int_t)r->acc.n));
  json_object_set_new(j, "candidates", json_integer((json_int_t)r->candidates));
  json_object_set_new(j, "accepted", json_integer((json_int_t)r->accepted_cands));
  json_object_set_new(j, "kept", json_integer((json_int_t)r->d[D_WEAK].n));
  json_object_set_new(j, "acceptance_rate",
                      mean_ci(&r->acc, o, rng_derive(o->seed, "%s|acceptance", rk)));
  json_object_set_new(j, "rounds_to_accept",
                      num_or_null(acc > 0 ? r->accept_round_sum / acc : NAN));
  json_object_set_new(j, "rounds_per_accepted",
                      num_or_null(acc > 0 ? (double)r->candidates / acc : NAN));
  json_object_set_new(j, "calls", json_integer((json_int_t)ncalls));
  json_object_set_new(j, "tokens", json_integer((json_int_t)ntok));
  json_object_set_new(j, "cost", num_or_null(cost));
  json_object_set_new(j, "calls_per_accepted", num_or_null(acc > 0 ? ncalls / acc : NAN));
  json_object_set_new(j, "tokens_per_accepted", num_or_null(acc > 0 ? ntok / acc : NAN));
  json_object_set_new(j, "cost_per_accepted", num_or_null(acc > 0 ? cost / acc : NAN));
  double ptok = (double)jx_int(tokens, "prompt", 0), ctok = (double)jx_int(tokens, "completion", 0);
  json_object_set_new(j, "prompt_tokens_per_accepted", num_or_null(acc > 0 ? ptok / acc : NAN));
  json_object_set_new(j, "completion_tokens_per_accepted", num_or_null(acc > 0 ? ctok / acc : NAN));
  json_object_set_new(j, "prefix_share",
                      num_or_null(ptok > 0 ? (double)jx_int(tokens, "prefix", 0) / ptok : NAN));
  json_object_set_new(ds, "n", json_integer((json_int_t)r->d[D_WEAK].n));
  for (int i = 0; i < D_N; i++)
    json_object_set_new(
        ds, k_dnames[i],
        mean_ci(&r->d[i], o, rng_derive(o->seed, "%s|dataset.%s", rk, k_dnames[i])));
  json_object_set_new(ev, "n", json_integer((json_int_t)r->e[E_WEAK].n));
  for (int i = 0; i < E_N; i++)
    json_object_set_new(
        ev, k_enames[i],
        mean_ci(&r->e[i], o, rng_derive(o->seed, "%s|evaluated.%s", rk, k_enames[i])));
  json_object_set_new(j, "dataset", ds);
  json_object_set_new(j, "evaluated", ev);
  json_object_set_new(j, "rejections", json_deep_copy(r->rejections));
  json_object_set_new(j, "filter_rejections", json_deep_copy(r->filter_rejections));
  if (first) {
    json_t *vs = json_object();
    char key[64];
    for (int i = 0; i < D_N; i++) {
      snprintf(key, sizeof key, "dataset.%s", k_dnames[i]);
      json_object_set_new(
          vs, key,
          diff_ci(&r->d[i], &first->d[i], o, rng_derive(o->seed, "%s|diff|%s|%s", rk, fk, key)));
    }
    for (int i = 0; i < E_N; i++) {
      snprintf(key, sizeof key, "evaluated.%s", k_enames[i]);
      json_object_set_new(
          vs, key,
          diff_ci(&r->e[i], &first->e[i], o, rng_derive(o->seed, "%s|diff|%s|%s", rk, fk, key)));
    }
    /* Over the same sources the comparison is paired: each source's outcome in this run
     * against its outcome in the first (the mean of the differences is the difference of
     * the rates; the interval is that of the paired differences). */
    size_t np = 0;
    double *pd = paired_acceptance(r, first, &np);
    uint64_t sd = rng_derive(o->seed, "%s|diff|%s|acceptance", rk, fk);
    if (pd) {
      struct boot_ci c;
      boot_mean_ci(pd, np, o->resamples, o->level, sd, &c);
      json_object_set_new(vs, "acceptance_rate", ci_json(&c));
    } else {
      json_object_set_new(vs, "acceptance_rate", diff_ci(&r->acc, &first->acc, o, sd));
    }
    free(pd);
    json_object_set_new(vs, "paired_sources", json_integer((json_int_t)np));
    json_object_set_new(j, "vs_first", vs);
  }
  return j;
}

int compare_build(struct compare_run *const *runs, int n, const struct compare_opts *opts,
                  json_t **out, char *err, size_t errn) {
  *out = NULL;
  struct compare_opts o;
  compare_opts_default(&o);
  if (opts) o = *opts;
  if (o.resamples < 1) o.resamples = BOOT_DEFAULT_RESAMPLES;
  if (!(o.level > 0 && o.level < 1)) o.level = BOOT_DEFAULT_LEVEL;
  if (n < 1) return report_err(err, errn, AD_EINVAL, "no runs to compare");
  json_t *arr = json_array();
  json_t *root = json_pack("{s:{s:i,s:f,s:I,s:s}}", "bootstrap", "resamples", o.resamples, "level",
                           o.level, "seed", (json_int_t)(o.seed & 0x7fffffffffffffffULL), "kind",
                           "percentile");
  for (int i = 0; i < n; i++)
    json_array_append_new(arr, build_one(runs[i], i ? runs[0] : NULL, &o));
  json_object_set_new(root, "runs", arr);
  *out = root;
  return 0;
}

/* ---- rendering ------------------------------------------------------------------- */

struct table {
  int ncol; /* 1 + runs */
  int nrow, caprow;
  char **cells; /* nrow * ncol */
};

static void tab_set(struct table *t, int row, int col, const char *fmt, ...) AD_PRINTF(4, 5);
static void tab_set(struct table *t, int row, int col, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *s = xvasprintf(fmt, ap);
  va_end(ap);
  free(t->cells[row * t->ncol + col]);
  t->cells[row * t->ncol + col] = s;
}

/* Append a row whose first cell is label; returns its index. */
static int tab_row(struct table *t, const char *label) {
  if (t->nrow == t->caprow) {
    t->caprow = t->caprow ? t->caprow * 2 : 32;
    t->cells = xrealloc(t->cells, (size_t)t->caprow * (size_t)t->ncol * sizeof *t->cells);
  }
  for (int c = 0; c < t->ncol; c++) t->cells[t->nrow * t->ncol + c] = NULL;
  tab_set(t, t->nrow, 0, "%s", label);
  return t->nrow++;
}

static void tab_free(struct table *t) {
  for (int i = 0; i < t->nrow * t->ncol; i++) free(t->cells[i]);
  free(t->cells);
}

static const json_t *run_at(const json_t *cmp, int i) {
  return json_array_get(json_object_get(cmp, "runs"), (size_t)i);
}

/* A CI cell: "0.431 [0.412, 0.450]" (prec digits), or "n/a". */
static void cell_ci(struct table *t, int row, int col, const json_t *ci, int prec, int sign) {
  if (!json_is_object(ci)) {
    tab_set(t, row, col, "n/a");
    return;
  }
  tab_set(t, row, col, sign ? "%+.*f [%+.*f, %+.*f]" : "%.*f [%.*f, %.*f]", prec,
          jx_num(ci, "est", 0), prec, jx_num(ci, "lo", 0), prec, jx_num(ci, "hi", 0));
}

static void cell_num(struct table *t, int row, int col, const json_t *v, int prec) {
  if (json_is_integer(v)) tab_set(t, row, col, "%lld", (long long)json_integer_value(v));
  else if (json_is_number(v)) tab_set(t, row, col, "%.*f", prec, json_number_value(v));
  else tab_set(t, row, col, "n/a");
}

static const json_t *path_get(const json_t *o, const char *a, const char *b) {
  const json_t *v = json_object_get(o, a);
  return b ? json_object_get(v, b) : v;
}

int compare_render(const json_t *cmp, int markdown, struct buf *out) {
  int nruns = (int)json_array_size(json_object_get(cmp, "runs"));
  struct table t = {0};
  t.ncol = 1 + nruns;
  int rc = 0;
  int r = tab_row(&t, "run");
  for (int i = 0; i < nruns; i++) tab_set(&t, r, 1 + i, "%s", jx_str(run_at(cmp, i), "label"));
  r = tab_row(&t, "method");
  for (int i = 0; i < nruns; i++) tab_set(&t, r, 1 + i, "%s", jx_str(run_at(cmp, i), "method"));
  static const struct {
    const char *label, *a, *b;
    int prec, ci;
  } rows[] = {
      {"sources (finished)", "sources", NULL, 0, 0},
      {"accepted (gate)", "accepted", NULL, 0, 0},
      {"acceptance rate", "acceptance_rate", NULL, 3, 1},
      {"kept (dataset)", "kept", NULL, 0, 0},
      {"dataset: weak mean", "dataset", "weak_mean", 3, 1},
      {"dataset: strong mean", "dataset", "strong_mean", 3, 1},
      {"dataset: gap", "dataset", "gap", 3, 1},
      {"dataset: weak-rollout std", "dataset", "weak_std", 3, 1},
      {"dataset: question length (chars)", "dataset", "question_chars", 1, 1},
      {"dataset: rubric items", "dataset", "rubric_items", 2, 1},
      {"dataset: rounds", "dataset", "rounds", 2, 1},
      {"rounds to accept (mean)", "rounds_to_accept", NULL, 2, 0},
      {"rounds per accepted", "rounds_per_accepted", NULL, 2, 0},
      {"evaluated candidates", "evaluated", "n", 0, 0},
      {"evaluated: weak mean", "evaluated", "weak_mean", 3, 1},
      {"evaluated: strong mean", "evaluated", "strong_mean", 3, 1},
      {"evaluated: gap", "evaluated", "gap", 3, 1},
      {"calls", "calls", NULL, 0, 0},
      {"tokens", "tokens", NULL, 0, 0},
      {"cost", "cost", NULL, 4, 0},
      {"calls per accepted", "calls_per_accepted", NULL, 1, 0},
      {"tokens per accepted", "tokens_per_accepted", NULL, 0, 0},
      {"cost per accepted", "cost_per_accepted", NULL, 4, 0},
      {"prompt tokens per accepted", "prompt_tokens_per_accepted", NULL, 0, 0},
      {"completion tokens per accepted", "completion_tokens_per_accepted", NULL, 0, 0},
      {"prefix share", "prefix_share", NULL, 3, 0},
  };
  for (size_t k = 0; k < sizeof rows / sizeof rows[0]; k++) {
    r = tab_row(&t, rows[k].label);
    for (int i = 0; i < nruns; i++) {
      const json_t *v = path_get(run_at(cmp, i), rows[k].a, rows[k].b);
      if (rows[k].ci) cell_ci(&t, r, 1 + i, v, rows[k].prec, 0);
      else cell_num(&t, r, 1 + i, v, rows[k].prec);
    }
  }
  /* Rejections: the union of reasons, sorted by name. */
  static const char *const groups[] = {"rejections", "filter_rejections"};
  for (int g = 0; g < 2; g++) {
    json_t *names = json_object();
    for (int i = 0; i < nruns; i++) {
      const char *k;
      json_t *v;
      json_object_foreach((json_t *)json_object_get(run_at(cmp, i), groups[g]), k, v)
          json_object_set_new(names, k, json_true());
    }
    const char **keys = xcalloc(json_object_size(names) + 1, sizeof *keys);
    size_t nk = 0;
    const char *k;
    json_t *v;
    json_object_foreach(names, k, v) keys[nk++] = k;
    for (size_t a = 1; a < nk; a++)
      for (size_t b = a; b > 0 && strcmp(keys[b - 1], keys[b]) > 0; b--) {
        const char *tmp = keys[b];
        keys[b] = keys[b - 1];
        keys[b - 1] = tmp;
      }
    for (size_t a = 0; a < nk; a++) {
      char label[160];
      snprintf(label, sizeof label, "%s: %s", g ? "filter rejected" : "rejected", keys[a]);
      r = tab_row(&t, label);
      for (int i = 0; i < nruns; i++)
        tab_set(&t, r, 1 + i, "%lld",
                (long long)json_integer_value(path_get(run_at(cmp, i), groups[g], keys[a])));
    }
    free(keys);
    json_decref(names);
  }
  static const struct {
    const char *label, *key;
    int prec;
  } diffs[] = {
      {"vs first: dataset gap", "dataset.gap", 3},
      {"vs first: dataset weak mean", "dataset.weak_mean", 3},
      {"vs first: dataset strong mean", "dataset.strong_mean", 3},
      {"vs first: weak-rollout std", "dataset.weak_std", 3},
      {"vs first: acceptance rate", "acceptance_rate", 3},
      {"vs first: evaluated gap", "evaluated.gap", 3},
  };
  if (nruns > 1) {
    r = tab_row(&t, "vs first: paired by source");
    tab_set(&t, r, 1, "-");
    for (int i = 1; i < nruns; i++) {
      json_int_t np = json_integer_value(path_get(run_at(cmp, i), "vs_first", "paired_sources"));
      if (np) tab_set(&t, r, 1 + i, "yes (%lld sources)", (long long)np);
      else tab_set(&t, r, 1 + i, "no (other sources)");
    }
  }
  if (nruns > 1)
    for (size_t k = 0; k < sizeof diffs / sizeof diffs[0]; k++) {
      r = tab_row(&t, diffs[k].label);
      tab_set(&t, r, 1, "-");
      for (int i = 1; i < nruns; i++)
        cell_ci(&t, r, 1 + i, path_get(run_at(cmp, i), "vs_first", diffs[k].key), diffs[k].prec, 1);
    }
  /* Output. */
  {
    size_t *w = xcalloc((size_t)t.ncol, sizeof *w);
    for (int i = 0; i < t.nrow; i++)
      for (int c = 0; c < t.ncol; c++) {
        const char *s = t.cells[i * t.ncol + c];
        size_t l = jx_utf8_chars(s ? s : "");
        if (l > w[c]) w[c] = l;
      }
    for (int i = 0; i < t.nrow && !rc; i++) {
      for (int c = 0; c < t.ncol && !rc; c++) {
        const char *s = t.cells[i * t.ncol + c];
        if (!s) s = "";
        int pad = (int)(w[c] - jx_utf8_chars(s));
        if (markdown) rc = buf_printf(out, "| %s%*s ", s, pad, "");
        else rc = buf_printf(out, "%s%s%*s", c ? "  " : "", s, c + 1 < t.ncol ? pad : 0, "");
      }
      if (!rc) rc = buf_puts(out, markdown ? "|\n" : "\n");
      if (!rc && markdown && i == 0) {
        for (int c = 0; c < t.ncol && !rc; c++) {
          rc = buf_puts(out, c ? "|-" : "|:");
          for (size_t k = 0; k < w[c] && !rc; k++) rc = buf_puts(out, "-");
          if (!rc) rc = buf_puts(out, c ? ":" : "-");
        }
        if (!rc) rc = buf_puts(out, "|\n");
      }
    }
    free(w);
  }
  tab_free(&t);
  return rc;
}

/* ---- candidates.jsonl --------------------------------------------------------------- */

struct cand_writer {
  struct report_file rf;
  size_t count;
  char *err;
  size_t errn;
  int failed;
};

static int write_candidate(void *ud, const json_t *row) {
  struct cand_writer *w = ud;
  char *line = jx_dump_canonical(row);
  if (!line) {
    w->failed = report_err(w->err, w->errn, AD_EINTERNAL,
                           "cannot serialise a candidate row as JSON");
    return 1;
  }
  int rc = report_file_write(&w->rf, line, strlen(line), w->err, w->errn);
  if (!rc) rc = report_file_write(&w->rf, "\n", 1, w->err, w->errn);
  free(line);
  if (rc) {
    w->failed = rc;
    return 1;
  }
  w->count++;
  return 0;
}

int compare_write_candidates(store *st, store_id run, const char *path, size_t *count, char *err,
                             size_t n) {
  struct cand_writer w;
  memset(&w, 0, sizeof w);
  w.err = err;
  w.errn = n;
  json_t *row = NULL;
  int rc = report_run_row(st, run, &row, err, n);
  if (rc) return rc;
  store_id id = (store_id)jx_int(row, "id", 0);
  json_decref(row);
  if ((rc = report_file_open(&w.rf, path, err, n))) return rc;
  rc = store_candidates_each(st, id, NULL, write_candidate, &w);
  if (w.failed) {
    report_file_abort(&w.rf);
    return w.failed;
  }
  if (rc) {
    report_file_abort(&w.rf);
    return report_err(err, n, rc, "reading candidates: %s", store_errmsg(st));
  }
  if ((rc = report_file_commit(&w.rf, err, n))) return rc;
  if (count) *count = w.count;
  return 0;
}
