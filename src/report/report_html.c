/* report_html.c - report.html, the self-contained page (report_html.h). */
#include "report/report_html.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/accept.h"
#include "report/compare.h"
#include "report/html.h"
#include "report/report.h"
#include "report/show.h"
#include "report/svg.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"

#define MAX_ROUND 1000  /* rounds past this are not plotted */
#define MAX_REASONS 8   /* the stacked plot's reasons; the rest are "other" */
#define MAX_POINTS 4000 /* scatter points drawn; past it every k-th */
#define PAGE_CAP (512u * 1024 * 1024)

/* ---- one run's figures ---- */

struct dvec {
  double *v;
  size_t n, cap;
};

static void dpush(struct dvec *a, double x) {
  if (a->n == a->cap) {
    a->cap = a->cap ? a->cap * 2 : 64;
    a->v = xrealloc(a->v, a->cap * sizeof *a->v);
  }
  a->v[a->n++] = x;
}

/* What the candidates say of a source of the run, compactly (a report of a million sources
 * keeps a million of these): its id and its candidates' reasons are offsets into the run's
 * arena, the reasons interned (a few distinct strings shared by every source). The rest of a
 * source's row (title, state, rounds) is read again from the store as the row is written. */
enum { V_NONE = 0, V_REJECTED, V_ACCEPTED }; /* its candidates' verdict */
#define NO_STR ((size_t)-1)
struct srow {
  size_t id, reasons, last; /* reasons "|a|b|"; last: the last candidate's reason */
  uint8_t verdict;          /* V_* */
};

struct rdata {
  const struct report_html_run *in;
  char sfx[16]; /* id suffix: "" for the first run, "-2", ... */
  json_t *row, *stats;
  const json_t *meta, *recipe;
  struct srow *srcs; /* the run's sources, store order */
  size_t n_srcs, cap_srcs;
  size_t *by_id;    /* indexes of srcs sorted by id, for the candidates' source ids */
  size_t cur;       /* the source of the last candidate seen (they come grouped by source) */
  struct buf strs;  /* the arena: NUL-terminated strings */
  json_t *interned; /* reason strings in the arena: string -> offset */
  size_t with_acc;  /* sources with an accepted example */
  int n_rounds;     /* highest round seen (<= MAX_ROUND) */
  double cand_r[MAX_ROUND + 1], acc_r[MAX_ROUND + 1];
  json_t *reasons_r;       /* reason -> [count by round] */
  struct dvec sx, sy, sc;  /* the scatter's points: every `stride`-th candidate with scores */
  size_t n_points, stride; /* candidates with scores; the sample's stride (a power of two) */
  /* the round of each source's first accepted candidate, as counts (rounds past MAX_ROUND
   * listed): bounded memory whatever the number of sources */
  size_t acc_count[MAX_ROUND + 1], n_acc;
  double acc_sum;
  struct dvec acc_over;
  size_t n_cands;
};

static void rdata_release(struct rdata *d) {
  json_decref(d->row);
  json_decref(d->stats);
  free(d->srcs);
  free(d->by_id);
  buf_release(&d->strs);
  json_decref(d->interned);
  json_decref(d->reasons_r);
  free(d->sx.v), free(d->sy.v), free(d->sc.v), free(d->acc_over.v);
}

/* s into the arena: its offset (NO_STR for NULL). */
static size_t str_put(struct rdata *d, const char *s) {
  if (!s) return NO_STR;
  size_t at = d->strs.len;
  if (buf_append(&d->strs, s, strlen(s) + 1)) mem_oom(strlen(s) + 1);
  return at;
}

/* s into the arena once: the offset of its first copy. */
static size_t str_intern(struct rdata *d, const char *s) {
  const json_t *at = json_object_get(d->interned, s);
  if (at) return (size_t)json_integer_value(at);
  size_t off = str_put(d, s);
  json_object_set_new(d->interned, s, json_integer((json_int_t)off));
  return off;
}

static const char *str_at(const struct rdata *d, size_t at) {
  return at == NO_STR ? NULL : d->strs.data + at;
}

static int src_row(void *ud, const json_t *row) {
  struct rdata *d = ud;
  if (d->n_srcs == d->cap_srcs) {
    d->cap_srcs = d->cap_srcs ? d->cap_srcs * 2 : 256;
    d->srcs = xrealloc(d->srcs, d->cap_srcs * sizeof *d->srcs);
  }
  struct srow *r = &d->srcs[d->n_srcs++];
  *r = (struct srow){str_put(d, jx_str(row, "source_id") ? jx_str(row, "source_id") : ""), NO_STR,
                     NO_STR, V_NONE};
  d->with_acc += jx_int(row, "accepted", 0) > 0;
  return 0;
}

static const struct rdata *g_sort; /* qsort has no user pointer */
static int cmp_src_id(const void *a, const void *b) {
  return strcmp(str_at(g_sort, g_sort->srcs[*(const size_t *)a].id),
                str_at(g_sort, g_sort->srcs[*(const size_t *)b].id));
}

/* d->by_id, once the sources are read. */
static void index_sources(struct rdata *d) {
  d->by_id = xcalloc(d->n_srcs ? d->n_srcs : 1, sizeof *d->by_id);
  for (size_t i = 0; i < d->n_srcs; i++) d->by_id[i] = i;
  g_sort = d;
  qsort(d->by_id, d->n_srcs, sizeof *d->by_id, cmp_src_id);
  g_sort = NULL;
  d->cur = NO_STR;
}

/* The source with id sid, or NULL (a candidate of a source the run does not list). */
static struct srow *src_find(struct rdata *d, const char *sid) {
  if (d->cur != NO_STR && !strcmp(str_at(d, d->srcs[d->cur].id), sid)) return &d->srcs[d->cur];
  size_t lo = 0, hi = d->n_srcs;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    int c = strcmp(str_at(d, d->srcs[d->by_id[mid]].id), sid);
    if (!c) {
      d->cur = d->by_id[mid];
      return &d->srcs[d->cur];
    }
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

static void acc_round(struct rdata *d, long long r) {
  d->n_acc++;
  d->acc_sum += (double)r;
  if (r <= MAX_ROUND) d->acc_count[r]++;
  else dpush(&d->acc_over, (double)r);
}

/* The value at rank k (0-based) of the rounds to accept, in ascending order. */
static double acc_rank(const struct rdata *d, size_t k) {
  for (int r = 1; r <= MAX_ROUND; r++) {
    if (k < d->acc_count[r]) return r;
    k -= d->acc_count[r];
  }
  return d->acc_over.v[k]; /* sorted by summary() */
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double acc_median(struct rdata *d) {
  if (!d->n_acc) return NAN;
  if (d->acc_over.n) qsort(d->acc_over.v, d->acc_over.n, sizeof *d->acc_over.v, cmp_double);
  size_t n = d->n_acc;
  return n % 2 ? acc_rank(d, n / 2) : (acc_rank(d, n / 2 - 1) + acc_rank(d, n / 2)) / 2;
}

/* A candidate's point for the scatter plot: every stride-th one is kept, and the stride doubles
 * (every other kept point dropped) when MAX_POINTS are kept, so the plot's memory is bounded
 * and its points spread over the whole run. */
static void scatter_point(struct rdata *d, double weak, double strong, int acc) {
  if (d->n_points++ % d->stride) return;
  if (d->sx.n == MAX_POINTS) {
    size_t m = 0;
    for (size_t k = 0; k < d->sx.n; k += 2, m++) {
      d->sx.v[m] = d->sx.v[k];
      d->sy.v[m] = d->sy.v[k];
      d->sc.v[m] = d->sc.v[k];
    }
    d->sx.n = d->sy.n = d->sc.n = m;
    d->stride *= 2;
    if ((d->n_points - 1) % d->stride) return;
  }
  dpush(&d->sx, weak);
  dpush(&d->sy, strong);
  dpush(&d->sc, acc ? 1 : 0);
}

static int cand_row(void *ud, const json_t *row) {
  struct rdata *d = ud;
  const char *sid = jx_str(row, "source_id");
  const char *verdict = jx_str(row, "verdict");
  const char *reason = jx_str(row, "reason");
  long long r = jx_int(row, "round", 0);
  int acc = verdict && !strcmp(verdict, "accepted");
  d->n_cands++;
  struct srow *sr = sid ? src_find(d, sid) : NULL;
  if (sr) {
    if (sr->verdict == V_NONE) sr->verdict = V_REJECTED;
    if (acc && sr->verdict != V_ACCEPTED) {
      sr->verdict = V_ACCEPTED;
      if (r >= 1) acc_round(d, r);
    }
    if (reason) {
      const char *had = sr->reasons == NO_STR ? "|" : str_at(d, sr->reasons);
      char *want = xasprintf("|%s|", reason);
      if (!strstr(had, want)) {
        char *both = xasprintf("%s%s|", had, reason);
        sr->reasons = str_intern(d, both);
        free(both);
      }
      free(want);
    }
    sr->last = reason ? str_intern(d, reason) : NO_STR;
  }
  if (r >= 1 && r <= MAX_ROUND) {
    if (r > d->n_rounds) d->n_rounds = (int)r;
    d->cand_r[r] += 1;
    if (acc) d->acc_r[r] += 1;
    if (!acc) {
      const char *k = reason ? reason : "unspecified";
      json_t *arr = json_object_get(d->reasons_r, k);
      if (!arr) {
        arr = json_array();
        json_object_set_new(d->reasons_r, k, arr);
      }
      while ((long long)json_array_size(arr) <= r) json_array_append_new(arr, json_integer(0));
      json_array_set_new(arr, (size_t)r,
                         json_integer(json_integer_value(json_array_get(arr, r)) + 1));
    }
  }
  const json_t *st = json_object_get(json_object_get(row, "record"), "stats");
  const json_t *w = json_object_get(st, "weak_mean"), *s = json_object_get(st, "strong_mean");
  if (json_is_number(w) && json_is_number(s))
    scatter_point(d, json_number_value(w), json_number_value(s), acc);
  return 0;
}

static int collect(struct rdata *d, char *err, size_t n) {
  store *st = d->in->st;
  int rc = report_run_row(st, d->in->run, &d->row, err, n);
  if (rc) return rc;
  store_id run = (store_id)jx_int(d->row, "id", 0);
  d->meta = report_run_meta(d->row);
  d->recipe = json_object_get(d->meta, "recipe");
  d->reasons_r = json_object();
  d->interned = json_object();
  d->stride = 1;
  buf_init(&d->strs, SIZE_MAX / 2);
  if ((rc = store_stats(st, run, &d->stats)) || (rc = store_sources_each(st, run, src_row, d)))
    return report_err(err, n, rc, "%s", store_errmsg(st));
  index_sources(d);
  if ((rc = store_candidates_each(st, run, NULL, cand_row, d)))
    return report_err(err, n, rc, "%s", store_errmsg(st));
  return 0;
}

/* ---- small pieces ---- */

static const char *label_of(const struct rdata *d) {
  return d->in->label ? d->in->label : store_path(d->in->st);
}

static void row_kv(struct html *h, const char *k, const char *v) {
  html_raw(h, "<tr><th>");
  html_text(h, k);
  html_raw(h, "</th><td>");
  html_text(h, v ? v : "-");
  html_raw(h, "</td></tr>");
}

static void pre(struct html *h, const char *cls, const char *text) {
  html_rawf(h, "<pre class=\"%s\">", cls);
  html_text(h, text);
  html_raw(h, "</pre>");
}

/* A reply's text (report/show.c puts a reasoning model's reasoning first, in <think> tags):
 * the reasoning cut to its first REPORT_REASONING_SHOWN bytes, so that a run of reasoning
 * models (thousands of tokens per sample) keeps its report small; `autodata show` prints it
 * whole. */
#define REPORT_REASONING_SHOWN 2000
static void reply_pre(struct html *h, const char *text) {
  const char *end = strncmp(text, "<think>", 7) ? NULL : strstr(text, "</think>");
  size_t len = end ? (size_t)(end - text) - 7 : 0;
  if (len <= REPORT_REASONING_SHOWN) {
    pre(h, "t", text);
    return;
  }
  size_t cut = REPORT_REASONING_SHOWN;
  while (cut > 0 && ((unsigned char)text[7 + cut] & 0xC0) == 0x80) cut--; /* a whole character */
  char *shown = xasprintf(
      "<think>%.*s\n[... %zu more bytes of reasoning: autodata show prints "
      "them]%s",
      (int)cut, text + 7, len - cut, end);
  pre(h, "t", shown);
  free(shown);
}

static void fmt_duration(double s, char *out, size_t n) {
  if (!isfinite(s) || s < 0) snprintf(out, n, "-");
  else if (s < 120) snprintf(out, n, "%.1f s", s);
  else if (s < 7200) snprintf(out, n, "%.1f min", s / 60);
  else snprintf(out, n, "%.1f h", s / 3600);
}

/* ---- summary ---- */

static void summary(struct html *h, struct rdata *d) {
  const json_t *s = d->stats, *src = json_object_get(s, "sources");
  long long total = jx_int(src, "total", 0), done = jx_int(src, "done", 0),
            exh = jx_int(src, "exhausted", 0);
  size_t with_acc = d->with_acc, i;
  char b[512];
  html_rawf(h,
            "<section class=\"summary\" id=\"summary%s\"><h2>Summary</h2><div class=\"cols\">"
            "<div><table class=\"kv\">",
            d->sfx);
  row_kv(h, "store", label_of(d));
  snprintf(b, sizeof b, "%s (run %lld, seed %lld, %s)",
           jx_str(d->row, "recipe_name") ? jx_str(d->row, "recipe_name") : "?",
           jx_int(d->row, "id", 0), jx_int(d->row, "seed", 0),
           jx_str(d->row, "status") ? jx_str(d->row, "status") : "?");
  row_kv(h, "recipe", b);
  const char *method = jx_str(json_object_get(d->meta, "method"), "name");
  if (!method) method = jx_str(d->recipe, "method");
  row_kv(h, "method", method ? method : "agentic");
  snprintf(b, sizeof b, "%lld: %lld done, %lld exhausted, %lld in progress, %lld pending", total,
           done, exh, jx_int(src, "in_progress", 0), jx_int(src, "pending", 0));
  row_kv(h, "sources", b);
  snprintf(b, sizeof b, "%lld examples from %zu sources (%zu candidates evaluated)",
           jx_int(s, "accepted", 0), with_acc, d->n_cands);
  row_kv(h, "accepted", b);
  if (done + exh > 0)
    snprintf(b, sizeof b, "%.1f%% of finished sources (%zu of %lld)",
             100.0 * (double)with_acc / (double)(done + exh), with_acc, done + exh);
  else snprintf(b, sizeof b, "- (no finished source)");
  row_kv(h, "acceptance rate", b);
  if (d->n_acc) {
    snprintf(b, sizeof b, "mean %.2f, median %g", d->acc_sum / (double)d->n_acc, acc_median(d));
  } else {
    snprintf(b, sizeof b, "- (nothing accepted)");
  }
  row_kv(h, "rounds to accept", b);
  const json_t *calls = json_object_get(s, "calls"), *tok = json_object_get(s, "tokens");
  snprintf(b, sizeof b, "%lld (%lld ok, %lld failed, %lld from the cache; %lld retries)",
           jx_int(calls, "total", 0), jx_int(calls, "ok", 0), jx_int(calls, "error", 0),
           jx_int(calls, "cache_hits", 0), jx_int(calls, "retries", 0));
  row_kv(h, "model calls", b);
  snprintf(b, sizeof b, "%lld prompt, %lld completion", jx_int(tok, "prompt", 0),
           jx_int(tok, "completion", 0));
  row_kv(h, "tokens", b);
  if (json_is_number(json_object_get(s, "cost_usd")))
    snprintf(b, sizeof b, "%.4f USD%s", jx_num(s, "cost_usd", 0),
             json_object_get(s, "unpriced_models") ? " (some models unpriced)" : "");
  else snprintf(b, sizeof b, "- (no prices given)");
  row_kv(h, "cost", b);
  fmt_duration(jx_num(s, "wall_s", NAN), b, sizeof b);
  row_kv(h, "wall time (first to last call)", b);
  row_kv(h, "autodata", jx_str(d->row, "version"));
  row_kv(h, "command", jx_str(d->row, "command_line"));
  html_raw(h, "</table></div><div>");

  /* roles and models */
  const json_t *roles = json_object_get(d->recipe, "roles");
  if (json_object_size(roles)) {
    html_raw(h,
             "<h3>Roles and models</h3><table class=\"grid\"><tr><th>role</th><th>model</th>"
             "<th>endpoint</th><th>samples</th><th>temperature</th></tr>");
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)roles, k, v) {
      if (!json_is_object(v)) continue;
      html_raw(h, "<tr><td>");
      html_text(h, k);
      html_raw(h, "</td><td>");
      html_text(h, jx_str(v, "model"));
      html_raw(h, "</td><td>");
      html_text(h, jx_str(v, "endpoint"));
      html_rawf(h, "</td><td>%lld</td><td>%g</td></tr>", jx_int(v, "samples", 1),
                jx_num(v, "temperature", 0));
    }
    html_raw(h, "</table>");
  }
  /* calls, tokens and cost by role */
  html_raw(
      h,
      "</div><div><h3>Calls, tokens and cost by role</h3><table class=\"grid\"><tr><th>role</th>"
      "<th>ok</th><th>failed</th><th>cached</th><th>prompt tokens</th>"
      "<th>completion tokens</th><th>cost (USD)</th></tr>");
  const char *k;
  json_t *v;
  json_object_foreach(json_object_get(calls, "by_role"), k, v) {
    html_raw(h, "<tr><td>");
    html_text(h, k);
    html_rawf(h, "</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td><td>%lld</td>",
              jx_int(v, "ok", 0), jx_int(v, "error", 0), jx_int(v, "cache_hits", 0),
              jx_int(v, "prompt", 0), jx_int(v, "completion", 0));
    if (json_is_number(json_object_get(v, "cost_usd")))
      html_rawf(h, "<td>%.4f</td></tr>", jx_num(v, "cost_usd", 0));
    else html_raw(h, "<td>-</td></tr>");
  }
  html_raw(h, "</table>");
  /* acceptance bounds */
  const json_t *bounds = json_object_get(json_object_get(d->recipe, "accept"), "bounds");
  if (json_array_size(bounds)) {
    html_raw(h, "<h3>Acceptance bounds</h3><ul class=\"bounds\">");
    json_t *bd;
    json_array_foreach(bounds, i, bd) {
      html_raw(h, "<li><code>");
      html_text(h, json_string_value(bd));
      html_raw(h, "</code></li>");
    }
    html_raw(h, "</ul>");
  }
  html_raw(h, "</div></div></section>\n");
}

/* ---- plots ---- */

/* The acceptance region in the (weak_mean, strong_mean) square: the bounds on the two
 * means and on the gap (strong - weak); 0 vertices when none of them is recorded. */
static int region(const json_t *bounds, double *rx, double *ry, int cap, int *other) {
  struct svg_half hs[ACCEPT_MAX_BOUNDS];
  int nh = 0;
  size_t i;
  json_t *b;
  *other = 0;
  json_array_foreach(bounds, i, b) {
    struct accept_bound ab;
    if (!json_is_string(b) || accept_bound_parse(json_string_value(b), &ab, NULL, 0)) continue;
    double a = 0, bb = 0;
    if (!strcmp(ab.stat, "weak_mean")) a = 1;
    else if (!strcmp(ab.stat, "strong_mean")) bb = 1;
    else if (!strcmp(ab.stat, "gap")) a = -1, bb = 1;
    else {
      (*other)++;
      continue;
    }
    if (ab.op == ACC_EQ || ab.op == ACC_NE || nh >= ACCEPT_MAX_BOUNDS) continue;
    hs[nh++] = (struct svg_half){a, bb, ab.value, ab.op == ACC_GT || ab.op == ACC_GE};
  }
  if (!nh) return 0;
  return svg_clip_unit(hs, nh, rx, ry, cap);
}

static void plots(struct html *h, struct rdata *d) {
  char id[64], cap[512];
  int nr = d->n_rounds;
  html_rawf(h, "<section class=\"plots\" id=\"plots%s\"><h2>Plots</h2><div class=\"plotgrid\">",
            d->sfx);
  /* acceptance by round */
  char **cats = xcalloc((size_t)(nr ? nr : 1), sizeof *cats);
  double *vals = xcalloc((size_t)(nr ? nr : 1), sizeof *vals);
  for (int r = 1; r <= nr; r++) {
    cats[r - 1] = xasprintf("%d", r);
    vals[r - 1] = d->cand_r[r] > 0 ? d->acc_r[r] / d->cand_r[r] : 0;
  }
  snprintf(id, sizeof id, "plot-acceptance%s", d->sfx);
  svg_bar_chart(h, &(struct svg_bars){id, "Acceptance by round", "round", "candidates accepted",
                                      "Share of each round's candidates that the acceptance "
                                      "bounds accepted.",
                                      nr, 1, (const char *const *)cats, NULL, vals, 1});
  /* rounds to accept */
  for (int r = 1; r <= nr; r++) vals[r - 1] = (double)d->acc_count[r];
  snprintf(id, sizeof id, "plot-rounds%s", d->sfx);
  snprintf(cap, sizeof cap, "The round in which each of %zu sources got its accepted example.",
           d->n_acc);
  svg_bar_chart(h, &(struct svg_bars){id, "Rounds to accept", "round", "sources", cap, nr, 1,
                                      (const char *const *)cats, NULL, vals, 0});
  /* weak vs strong */
  double rx[64], ry[64];
  int other = 0;
  int nv = region(json_object_get(json_object_get(d->recipe, "accept"), "bounds"), rx, ry, 64,
                  &other);
  size_t np = d->n_points, stride = d->stride, m = d->sx.n;
  unsigned char *pc = xcalloc(m ? m : 1, 1);
  for (size_t k = 0; k < m; k++) pc[k] = d->sc.v[k] > 0;
  snprintf(cap, sizeof cap,
           "Each candidate both solvers answered (%zu%s): mean weak score against mean strong "
           "score. The shaded region is where the bounds on weak_mean, strong_mean and gap "
           "hold%s.",
           np, stride > 1 ? ", every few drawn" : "",
           other ? "; the recipe's other bounds (spread, minimum, maximum, ...) also apply" : "");
  snprintf(id, sizeof id, "plot-scatter%s", d->sfx);
  svg_scatter_chart(h, &(struct svg_scatter){id,
                                             "Weak vs strong mean score",
                                             "weak mean",
                                             "strong mean",
                                             cap,
                                             {"rejected", "accepted"},
                                             m,
                                             d->sx.v,
                                             d->sy.v,
                                             pc,
                                             nv,
                                             rx,
                                             ry,
                                             "acceptance region"});
  free(pc);
  /* rejection reasons by round: the most frequent MAX_REASONS, then "other" */
  const json_t *rej = json_object_get(d->stats, "rejections"); /* ordered by count */
  const char *names[MAX_REASONS + 1];
  int ns = 0;
  const char *rk;
  json_t *rv;
  json_object_foreach((json_t *)rej, rk, rv) {
    if (ns < MAX_REASONS) names[ns++] = rk;
  }
  int has_other = json_object_size(rej) > MAX_REASONS;
  int nseries = ns + has_other;
  double *stack = xcalloc((size_t)(nseries ? nseries : 1) * (size_t)(nr ? nr : 1), sizeof *stack);
  json_object_foreach(d->reasons_r, rk, rv) {
    int s = ns;
    for (int q = 0; q < ns; q++)
      if (!strcmp(names[q], rk)) s = q;
    if (s == ns && !has_other) continue;
    for (int r = 1; r <= nr; r++)
      stack[s * nr + r - 1] += (double)json_integer_value(json_array_get(rv, (size_t)r));
  }
  if (has_other) names[ns] = "other";
  snprintf(id, sizeof id, "plot-reasons%s", d->sfx);
  svg_bar_chart(h,
                &(struct svg_bars){id, "Rejection reasons by round", "round", "rejected candidates",
                                   "Why each round's rejected candidates were rejected.", nr,
                                   nseries ? nseries : 1, (const char *const *)cats,
                                   nseries ? names : NULL, stack, 0});
  free(stack);
  for (int r = 0; r < nr; r++) free(cats[r]);
  free(cats);
  free(vals);
  /* cost by role (tokens when no model is priced) */
  const json_t *by = json_object_get(json_object_get(d->stats, "calls"), "by_role");
  size_t nrole = json_object_size(by), q = 0;
  const char **rn = xcalloc(nrole ? nrole : 1, sizeof *rn);
  double *rc = xcalloc(nrole ? nrole : 1, sizeof *rc);
  int priced = json_is_number(json_object_get(d->stats, "cost_usd"));
  json_object_foreach((json_t *)by, rk, rv) {
    rn[q] = rk;
    rc[q++] = priced ? jx_num(rv, "cost_usd", 0)
                     : (double)(jx_int(rv, "prompt", 0) + jx_int(rv, "completion", 0));
  }
  snprintf(id, sizeof id, "plot-cost%s", d->sfx);
  svg_bar_chart(h, &(struct svg_bars){id, priced ? "Cost by role" : "Tokens by role", "role",
                                      priced ? "USD" : "tokens (no prices given)",
                                      priced ? "Cost of the real calls (cache hits cost nothing)."
                                             : "Prompt + completion tokens of the real calls; "
                                               "add prices to the recipe for cost.",
                                      (int)q, 1, rn, NULL, rc, 0});
  free(rn);
  free(rc);
  html_raw(h, "</div></section>\n");
}

/* ---- optimisation: validation curve and lineage ---- */

struct opt_rows {
  json_t *rows;
};
static int opt_row(void *ud, const json_t *row) {
  json_array_append_new(((struct opt_rows *)ud)->rows, json_deep_copy(row));
  return 0;
}

struct opt_ids {
  json_t *ids;
};
static int opt_run(void *ud, const json_t *row) {
  const char *id = jx_str(report_run_meta(row), "optimization");
  if (id) json_object_set_new(((struct opt_ids *)ud)->ids, id, json_true());
  return 0;
}

static int optimisation(struct html *h, struct rdata *d, char *err, size_t n) {
  store *st = d->in->st;
  struct opt_ids oi = {json_object()};
  int rc = store_runs_each(st, opt_run, &oi);
  const char *oid;
  json_t *ov;
  json_object_foreach(oi.ids, oid, ov) {
    if (rc) break;
    struct opt_rows it = {json_array()}, var = {json_array()}, ev = {json_array()};
    if ((rc = store_opt_each(st, STORE_OPT_ITERATIONS, oid, opt_row, &it)) ||
        (rc = store_opt_each(st, STORE_OPT_VARIANTS, oid, opt_row, &var)) ||
        (rc = store_opt_each(st, STORE_OPT_EVALUATIONS, oid, opt_row, &ev))) {
      json_decref(it.rows), json_decref(var.rows), json_decref(ev.rows);
      break;
    }
    html_rawf(h, "<section class=\"optimize\" id=\"optimize%s\"><h2>Optimisation ", d->sfx);
    html_text(h, oid);
    html_raw(h, "</h2>");
    size_t ni = json_array_size(it.rows), i;
    double *x = xcalloc(ni ? ni : 1, sizeof *x), *best = xcalloc(ni ? ni : 1, sizeof *best),
           *mut = xcalloc(ni ? ni : 1, sizeof *mut);
    json_t *r;
    json_array_foreach(it.rows, i, r) {
      const json_t *rec = json_object_get(r, "record");
      x[i] = (double)jx_int(rec, "iteration", (long long)i + 1);
      best[i] = jx_num(rec, "best_mean", NAN);
      mut[i] = jx_num(rec, "mutant_val", NAN);
    }
    const char *series[] = {"best validation mean", "mutant validation score"};
    const int nn[] = {(int)ni, (int)ni};
    const double *xs[] = {x, x}, *ys[] = {best, mut};
    char id[64];
    snprintf(id, sizeof id, "plot-optimize%s", d->sfx);
    html_raw(h, "<div class=\"plotgrid\">");
    svg_line_chart(h, &(struct svg_lines){id, "Validation curve", "iteration", "validation score",
                                          "The best admitted variant's mean validation score "
                                          "after each iteration, and each mutant's own score.",
                                          2, series, nn, xs, ys, 0, 1});
    html_raw(h, "</div>");
    free(x), free(best), free(mut);
    /* test split */
    int any_test = 0;
    json_array_foreach(ev.rows, i, r) {
      const json_t *rec = json_object_get(r, "record");
      if (!jx_str(rec, "split") || strcmp(jx_str(rec, "split"), "test")) continue;
      if (!any_test)
        html_raw(h,
                 "<h3>Test split</h3><table class=\"grid\"><tr><th>variant</th><th>score</th>"
                 "<th>sources</th></tr>");
      any_test = 1;
      html_raw(h, "<tr><td><code>");
      html_textf(h, "%.12s", jx_str(rec, "variant") ? jx_str(rec, "variant") : "?");
      html_rawf(h, "</code></td><td>%.3f</td><td>%lld</td></tr>", jx_num(rec, "score", 0),
                jx_int(rec, "sources", 0));
    }
    if (any_test) html_raw(h, "</table>");
    html_raw(h,
             "<h3>Lineage</h3><table class=\"grid\"><tr><th>variant</th><th>parent</th>"
             "<th>iteration</th><th>status</th><th>validation mean</th><th>change</th></tr>");
    json_array_foreach(var.rows, i, r) {
      const json_t *rec = json_object_get(r, "record");
      const json_t *val = json_object_get(rec, "validation");
      double sum = 0;
      size_t k;
      json_t *vv;
      json_array_foreach(val, k, vv) sum += json_number_value(vv);
      html_raw(h, "<tr><td><code>");
      html_textf(h, "%.12s", jx_str(r, "key") ? jx_str(r, "key") : "?");
      html_raw(h, "</code></td><td><code>");
      html_textf(h, "%.12s", jx_str(rec, "parent") ? jx_str(rec, "parent") : "-");
      html_rawf(h, "</code></td><td>%lld</td><td>", jx_int(rec, "iteration", 0));
      html_text(h, jx_str(rec, "status"));
      if (json_array_size(val))
        html_rawf(h, "</td><td>%.3f (%zu)</td><td>", sum / (double)json_array_size(val),
                  json_array_size(val));
      else html_raw(h, "</td><td>-</td><td>");
      html_text(h, jx_str(rec, "rationale"));
      if (jx_str(rec, "diff") && *jx_str(rec, "diff")) {
        html_raw(h, "<details><summary>diff</summary>");
        pre(h, "t", jx_str(rec, "diff"));
        html_raw(h, "</details>");
      }
      html_raw(h, "</td></tr>");
    }
    html_raw(h, "</table></section>\n");
    json_decref(it.rows), json_decref(var.rows), json_decref(ev.rows);
  }
  json_decref(oi.ids);
  if (rc) return report_err(err, n, rc, "%s", store_errmsg(st));
  return 0;
}

/* ---- dataset-level analysis (the recipe's finalize:, docs/analyze.md) ---- */

/* The run's stored analysis, when it has one: the counts, the near-duplicate clusters, the
 * contaminated examples with the item they match, and the diversity figures. */
static int analysis(struct html *h, struct rdata *d, char *err, size_t n) {
  json_t *a = NULL;
  int rc = store_analysis_get(d->in->st, (store_id)jx_int(d->row, "id", 0), &a);
  if (rc == AD_ENOTFOUND) return 0;
  if (rc) return report_err(err, n, rc, "%s", store_errmsg(d->in->st));
  const json_t *nd = json_object_get(a, "near_duplicates"),
               *ct = json_object_get(a, "contamination"), *dv = json_object_get(a, "diversity"),
               *qt = json_object_get(dv, "question_types"), *ds = json_object_get(dv, "distinct"),
               *so = json_object_get(dv, "sources");
  char v[160], id[64];
  html_rawf(h, "<section class=\"analysis\" id=\"analysis%s\"><h2>Dataset-level analysis</h2>",
            d->sfx);
  html_raw(h, "<table class=\"kv\">");
  snprintf(v, sizeof v, "%lld of %lld", jx_int(a, "kept", 0), jx_int(a, "examples", 0));
  row_kv(h, "examples kept", v);
  snprintf(v, sizeof v, "%lld pairs in %lld clusters, %lld removed (Jaccard >= %g)",
           jx_int(nd, "pairs_found", 0), jx_int(nd, "clusters_found", 0), jx_int(nd, "removed", 0),
           jx_num(nd, "threshold", 0));
  row_kv(h, "near-duplicates", v);
  snprintf(v, sizeof v, "%lld examples share %lld-grams with %lld reference items",
           jx_int(ct, "flagged", 0), jx_int(ct, "ngram_words", 0),
           jx_int(ct, "reference_items", 0));
  row_kv(h, "contamination", v);
  snprintf(v, sizeof v, "%lld, entropy %.3f bits", jx_int(qt, "types", 0),
           jx_num(qt, "entropy_bits", 0));
  row_kv(h, "question types", v);
  snprintf(v, sizeof v, "%.3f / %.3f / %.3f", jx_num(ds, "1", 0), jx_num(ds, "2", 0),
           jx_num(ds, "3", 0));
  row_kv(h, "distinct-1 / 2 / 3", v);
  snprintf(v, sizeof v, "%lld of %lld (%.3f)", jx_int(so, "with_examples", 0),
           jx_int(so, "total", 0), jx_num(so, "coverage", 0));
  row_kv(h, "source coverage", v);
  html_raw(h, "</table><div class=\"plotgrid\">");
  /* question types and the weak-mean histogram */
  const json_t *dist = json_object_get(qt, "distribution");
  int nt = (int)json_object_size(dist), k = 0;
  const char **cats = xcalloc((size_t)(nt ? nt : 1), sizeof *cats);
  double *vals = xcalloc((size_t)(nt > 10 ? nt : 10), sizeof *vals);
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)dist, key, val) {
    cats[k] = key;
    vals[k++] = json_number_value(val);
  }
  snprintf(id, sizeof id, "plot-qtypes%s", d->sfx);
  svg_bar_chart(h, &(struct svg_bars){id, "Question types", "type", "examples",
                                      "The kept examples by question type.", nt, 1, cats, NULL,
                                      vals, 0});
  const json_t *bins = json_object_get(json_object_get(dv, "weak_mean_histogram"), "bins");
  const char *bcats[10] = {"0", ".1", ".2", ".3", ".4", ".5", ".6", ".7", ".8", ".9"};
  for (int b = 0; b < 10; b++) vals[b] = json_number_value(json_array_get(bins, (size_t)b));
  snprintf(id, sizeof id, "plot-weakhist%s", d->sfx);
  svg_bar_chart(h, &(struct svg_bars){id, "Difficulty spread", "weak mean (bin start)", "examples",
                                      "The kept examples by the weak solver's mean score.", 10, 1,
                                      bcats, NULL, vals, 0});
  free(cats), free(vals);
  html_raw(h, "</div>");
  size_t i, j;
  const json_t *c, *m;
  if (json_array_size(json_object_get(nd, "clusters"))) {
    html_raw(h,
             "<h3>Near-duplicate clusters</h3><table class=\"grid\"><tr><th>kept</th>"
             "<th>members</th></tr>");
    json_array_foreach(json_object_get(nd, "clusters"), i, c) {
      html_raw(h, "<tr><td><code>");
      html_text(h, jx_str(c, "kept") ? jx_str(c, "kept") : "none");
      html_raw(h, "</code></td><td>");
      json_array_foreach(json_object_get(c, "members"), j, m) {
        if (j) html_raw(h, ", ");
        html_raw(h, "<code>");
        html_text(h, json_string_value(m));
        html_raw(h, "</code>");
      }
      html_raw(h, "</td></tr>");
    }
    html_raw(h, "</table>");
  }
  if (json_array_size(json_object_get(ct, "examples"))) {
    html_raw(h,
             "<h3>Contaminated examples</h3><table class=\"grid\"><tr><th>example</th>"
             "<th>matching item</th><th>shared n-grams</th><th>first n-gram</th></tr>");
    json_array_foreach(json_object_get(ct, "examples"), i, c) {
      m = json_array_get(json_object_get(c, "matches"), 0);
      html_raw(h, "<tr><td><code>");
      html_text(h, jx_str(c, "id"));
      html_raw(h, "</code></td><td>");
      html_text(h, jx_str(m, "item"));
      html_rawf(h, "</td><td>%lld</td><td>", jx_int(m, "count", 0));
      html_text(h, json_string_value(json_array_get(json_object_get(m, "ngrams"), 0)));
      html_raw(h, "</td></tr>");
    }
    html_raw(h, "</table>");
  }
  html_raw(h, "</section>\n");
  json_decref(a);
  return 0;
}

/* ---- the trajectory browser ---- */

static void candidate_html(struct html *h, const json_t *rec) {
  const json_t *agent = json_object_get(rec, "agent");
  const json_t *ins = json_object_get(rec, "instructions");
  if (agent) {
    html_rawf(h, "<div class=\"part\"><b>agent</b>: %lld turns, %lld tool calls<ol>",
              jx_int(agent, "turns", 0), jx_int(agent, "tool_calls", 0));
    size_t i;
    const json_t *t;
    json_array_foreach(json_object_get(agent, "trajectory"), i, t) {
      html_raw(h, "<li>");
      if (!jx_str(t, "tool")) {
        html_text(h, jx_str(t, "problem") ? jx_str(t, "problem") : "no tool call");
      } else {
        html_raw(h, "<code>");
        html_text(h, jx_str(t, "tool"));
        html_raw(h, "</code> ");
        html_text(h, jx_str(t, "arguments"));
        char *res = json_dumps(json_object_get(t, "result"), JSON_COMPACT | JSON_ENCODE_ANY);
        pre(h, "t", res ? res : "null");
        free(res);
      }
      html_raw(h, "</li>");
    }
    html_raw(h, "</ol></div>");
  } else if (jx_str(rec, "orchestrator_error")) {
    html_raw(h, "<div class=\"part\"><b>orchestrator</b>: failed: ");
    html_text(h, jx_str(rec, "orchestrator_error"));
    html_raw(h, "</div>");
  } else if (json_is_string(ins) && *json_string_value(ins)) {
    html_raw(h, "<div class=\"part\"><b>orchestrator instructions</b>");
    pre(h, "t", json_string_value(ins));
    html_raw(h, "</div>");
  } else {
    html_raw(h, "<div class=\"part\"><b>orchestrator</b>: no instructions</div>");
  }
  const json_t *cand = json_object_get(rec, "candidate");
  if (!json_is_object(cand)) {
    html_raw(h, "<div class=\"part\"><b>candidate</b>: none");
    if (jx_str(rec, "raw")) {
      html_raw(h, "; the challenger replied:");
      pre(h, "t", jx_str(rec, "raw"));
    }
    html_raw(h, "</div>");
  } else {
    html_rawf(h, "<div class=\"part cand\"><b>candidate%s</b><dl>",
              json_is_true(json_object_get(rec, "repaired")) ? " (after a repair turn)" : "");
    static const char *const keys[] = {"question_type", "context",          "question",
                                       "answer",        "reference_answer", NULL};
    static const char *const labels[] = {"type", "context", "question", "answer",
                                         "reference answer"};
    for (int i = 0; keys[i]; i++) {
      const char *v = jx_str(cand, keys[i]);
      if (!v) continue;
      html_rawf(h, "<dt>%s</dt><dd>", labels[i]);
      pre(h, "t", v);
      html_raw(h, "</dd>");
    }
    const json_t *rubric = json_object_get(cand, "rubric");
    if (json_array_size(rubric)) {
      html_raw(h, "<dt>rubric</dt><dd><ol class=\"rubric\">");
      size_t i;
      json_t *it;
      json_array_foreach(rubric, i, it) {
        html_rawf(h, "<li><span class=\"w\">%lld</span> ", jx_int(it, "weight", 0));
        html_text(h, jx_str(it, "criterion") ? jx_str(it, "criterion") : "?");
        html_raw(h, "</li>");
      }
      html_raw(h, "</ol></dd>");
    }
    html_raw(h, "</dl></div>");
  }
  const char *reason = jx_str(rec, "reason");
  html_raw(h, "<div class=\"part\"><b>checks</b>: ");
  if (reason && !strncmp(reason, "check:", 6)) {
    html_raw(h, "<span class=\"bad\">failed</span> ");
    html_text(h, reason);
    if (jx_str(rec, "detail")) {
      html_raw(h, ": ");
      html_text(h, jx_str(rec, "detail"));
    }
  } else {
    html_raw(h, json_is_object(cand) && (!reason || strncmp(reason, "parse", 5)) ? "passed"
                                                                                 : "not run");
  }
  html_raw(h, "</div>");
  const json_t *q = json_object_get(rec, "quality");
  if (json_is_object(q)) {
    int pass = json_is_true(json_object_get(q, "pass"));
    html_rawf(h, "<div class=\"part\"><b>quality</b>: <span class=\"%s\">%s</span>",
              pass ? "good" : "bad", pass ? "pass" : "fail");
    size_t i;
    json_t *is;
    json_array_foreach(json_object_get(q, "issues"), i, is) {
      html_raw(h, " <code>");
      html_text(h, json_string_value(is));
      html_raw(h, "</code>");
    }
    if (jx_str(q, "feedback")) {
      html_raw(h, " &mdash; ");
      html_text(h, jx_str(q, "feedback"));
    }
    html_raw(h, "</div>");
  }
}

static void samples_html(struct html *h, const json_t *samples) {
  const char *role;
  json_t *arr;
  json_object_foreach((json_t *)samples, role, arr) {
    const json_t *first = json_array_get(arr, 0);
    html_raw(h, "<div class=\"part\"><b>");
    html_text(h, role);
    html_raw(h, " solver</b> (");
    html_text(h, jx_str(first, "model") ? jx_str(first, "model") : "?");
    html_rawf(h,
              "), %zu sample%s<table class=\"grid samples\"><tr><th>#</th><th>answer</th>"
              "<th>judge</th><th>score</th></tr>",
              json_array_size(arr), json_array_size(arr) == 1 ? "" : "s");
    size_t k;
    json_t *s;
    json_array_foreach(arr, k, s) {
      html_rawf(h, "<tr><td>%lld</td><td>", jx_int(s, "sample", 0) + 1);
      const char *st = jx_str(s, "status");
      if (st && strcmp(st, "ok")) {
        html_raw(h, "<span class=\"bad\">");
        html_text(h, st);
        html_raw(h, "</span> ");
        html_text(h, jx_str(s, "error"));
      }
      if (jx_str(s, "answer")) reply_pre(h, jx_str(s, "answer"));
      if (jx_str(s, "final_answer")) {
        html_raw(h, "final answer: <code>");
        html_text(h, jx_str(s, "final_answer"));
        html_raw(h, "</code>");
      }
      html_raw(h, "</td><td>");
      const json_t *j = json_object_get(s, "judge");
      const json_t *verdicts = json_object_get(j, "verdicts");
      if (json_array_size(verdicts)) {
        html_raw(h, "<ul class=\"verdicts\">");
        size_t i;
        json_t *v;
        json_array_foreach(verdicts, i, v) {
          int met = json_is_true(json_object_get(v, "met"));
          html_rawf(h, "<li class=\"%s\">%s %lld. ", met ? "good" : "bad", met ? "met" : "not met",
                    jx_int(v, "criterion", 0));
          html_text(h, jx_str(v, "text"));
          if (jx_str(v, "reason")) {
            html_raw(h, " &mdash; <i>");
            html_text(h, jx_str(v, "reason"));
            html_raw(h, "</i>");
          }
          html_raw(h, "</li>");
        }
        html_raw(h, "</ul>");
      } else if (json_is_object(j) && jx_str(j, "status") && strcmp(jx_str(j, "status"), "ok")) {
        html_raw(h, "<span class=\"bad\">");
        html_text(h, jx_str(j, "status"));
        html_raw(h, "</span> ");
        html_text(h, jx_str(j, "error"));
      } else if (jx_str(j, "content")) {
        reply_pre(h, jx_str(j, "content"));
      }
      html_raw(h, "</td><td>");
      const json_t *sc = json_object_get(j, "score");
      if (!json_is_number(sc)) sc = json_object_get(s, "score");
      if (json_is_number(sc)) html_rawf(h, "%.3f", json_number_value(sc));
      else html_raw(h, "-");
      html_raw(h, "</td></tr>");
    }
    html_raw(h, "</table></div>");
  }
}

static void stat_cell(struct html *h, const json_t *stats, const char *key) {
  const json_t *v = json_object_get(stats, key);
  if (json_is_number(v)) html_rawf(h, "%.3f", json_number_value(v));
  else html_raw(h, "-");
}

static void round_html(struct html *h, const json_t *rnd) {
  const json_t *cands = json_object_get(rnd, "candidates");
  const json_t *last = json_array_get(cands, json_array_size(cands) - 1);
  const char *verdict = jx_str(last, "verdict"), *reason = jx_str(last, "reason");
  int ok = verdict && !strcmp(verdict, "accepted");
  html_rawf(h, "<div class=\"round\"><h4>Round %lld: <span class=\"%s\">", jx_int(rnd, "round", 0),
            ok ? "good" : "bad");
  html_text(h, verdict ? verdict : "no candidate recorded");
  html_raw(h, "</span>");
  if (reason) {
    html_raw(h, " <code>");
    html_text(h, reason);
    html_raw(h, "</code>");
  }
  html_raw(h, "</h4>");
  size_t i;
  json_t *rec;
  json_array_foreach(cands, i, rec) {
    if (json_array_size(cands) > 1) html_rawf(h, "<h5>candidate %zu</h5>", i + 1);
    candidate_html(h, rec);
  }
  samples_html(h, json_object_get(rnd, "samples"));
  if (last) {
    const json_t *stats = json_object_get(last, "stats");
    if (json_is_object(stats)) {
      html_raw(h, "<div class=\"part\"><b>statistics</b>: weak mean ");
      stat_cell(h, stats, "weak_mean");
      html_raw(h, ", strong mean ");
      stat_cell(h, stats, "strong_mean");
      html_raw(h, ", gap ");
      stat_cell(h, stats, "gap");
      html_raw(h, "</div>");
    }
    html_rawf(h, "<div class=\"part verdict\"><b>verdict</b>: <span class=\"%s\">",
              ok ? "good" : "bad");
    html_text(h, verdict);
    html_raw(h, "</span>");
    if (reason) {
      html_raw(h, " &mdash; ");
      html_text(h, reason);
    }
    if (jx_str(last, "detail")) {
      html_raw(h, ": ");
      html_text(h, jx_str(last, "detail"));
    }
    html_raw(h, "</div>");
  }
  html_raw(h, "</div>");
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The browser's rows: the sources read again in store order (their title, state and rounds),
 * each joined with what the candidates said of it (d->srcs, the same order). */
struct browse {
  struct html *h;
  struct rdata *d;
  int all;
  uint64_t cut;
  size_t i;
  int rc;
  char *err;
  size_t n;
};

static int browse_row(void *ud, const json_t *row) {
  struct browse *b = ud;
  struct html *h = b->h;
  struct rdata *d = b->d;
  const char *sid = jx_str(row, "source_id") ? jx_str(row, "source_id") : "";
  const char *title = jx_str(row, "title");
  long long rounds = jx_int(row, "rounds_used", 0);
  enum store_source_state state = STORE_SRC_PENDING;
  (void)store_source_state_parse(jx_str(row, "state"), &state);
  /* a source registered since the first read (a run writing the store) has no candidates' row */
  static const struct srow none = {NO_STR, NO_STR, NO_STR, V_NONE};
  const struct srow *sr = &none;
  if (b->i < d->n_srcs && !strcmp(str_at(d, d->srcs[b->i].id), sid)) sr = &d->srcs[b->i++];
  static const char *const verdicts[] = {"none", "rejected", "accepted"};
  const char *verdict = verdicts[sr->verdict];
  html_raw(h, "<details class=\"src\" data-verdict=\"");
  html_text(h, verdict);
  html_raw(h, "\" data-reasons=\"");
  html_text(h, sr->reasons != NO_STR ? str_at(d, sr->reasons) : "|");
  html_raw(h, "\"><summary><code>");
  html_text(h, sid);
  html_rawf(h, "</code> <span class=\"badge %s\">", !strcmp(verdict, "accepted") ? "good" : "bad");
  html_text(h, verdict);
  html_raw(h, "</span> ");
  html_text(h, store_source_state_name(state));
  html_rawf(h, ", %lld round%s", rounds, rounds == 1 ? "" : "s");
  if (sr->last != NO_STR && sr->verdict != V_ACCEPTED) {
    html_raw(h, ", last: <code>");
    html_text(h, str_at(d, sr->last));
    html_raw(h, "</code>");
  }
  if (title) {
    html_raw(h, " <span class=\"title\">");
    html_text(h, title);
    html_raw(h, "</span>");
  }
  html_raw(h, "</summary>");
  if (*sid && (b->all || hash64_str(sid) <= b->cut)) {
    json_t *doc = NULL;
    json_t *r = json_pack("{s:s, s:I}", "source_id", sid, "rounds_used", (json_int_t)rounds);
    b->rc = report_show_build_source(d->in->st, d->row, r, 0, &doc, b->err, b->n);
    json_decref(r);
    if (b->rc) return b->rc;
    size_t k;
    json_t *rnd;
    json_array_foreach(json_object_get(doc, "rounds"), k, rnd) round_html(h, rnd);
    if (!json_array_size(json_object_get(doc, "rounds")))
      html_raw(h, "<p class=\"note\">No round recorded.</p>");
    json_decref(doc);
  } else {
    html_raw(h,
             "<p class=\"note\">Trajectory not included (sampled); "
             "<code>autodata show STORE --source ID</code> prints it.</p>");
  }
  html_raw(h, "</details>\n");
  return h->rc ? (b->rc = h->rc) : 0;
}

static int browser(struct html *h, struct rdata *d, const struct report_html_opts *o, char *err,
                   size_t n) {
  size_t ns = d->n_srcs, i;
  int max = o && o->max_traj > 0 ? o->max_traj : REPORT_HTML_MAX_TRAJ;
  int all = (o && o->all) || ns <= (size_t)max;
  uint64_t cut = UINT64_MAX;
  if (!all && ns) {
    uint64_t *hs = xcalloc(ns, sizeof *hs);
    for (i = 0; i < ns; i++) hs[i] = hash64_str(str_at(d, d->srcs[i].id));
    qsort(hs, ns, sizeof *hs, cmp_u64);
    cut = hs[max - 1];
    free(hs);
  }
  html_rawf(h,
            "<section class=\"browser\" id=\"trajectories%s\"><h2>Trajectories</h2>"
            "<p class=\"note\">",
            d->sfx);
  if (all) html_rawf(h, "Every round of each of the %zu sources.", ns);
  else
    html_rawf(h,
              "%zu sources: every one has a row; the full trajectories are those of a "
              "deterministic sample of %d (the lowest hashes of the source ids). "
              "<code>autodata report --all</code> includes every one.",
              ns, max);
  html_raw(h,
           "</p><div class=\"filters\"><label>verdict <select class=\"f-verdict\">"
           "<option value=\"\">any</option><option value=\"accepted\">accepted</option>"
           "<option value=\"rejected\">rejected</option><option value=\"none\">no candidate"
           "</option></select></label> <label>reason <select class=\"f-reason\">"
           "<option value=\"\">any</option>");
  const char *rk;
  json_t *rv;
  json_object_foreach(json_object_get(d->stats, "rejections"), rk, rv) {
    html_raw(h, "<option value=\"");
    html_text(h, rk);
    html_raw(h, "\">");
    html_text(h, rk);
    html_rawf(h, " (%lld)</option>", (long long)json_integer_value(rv));
  }
  html_rawf(h,
            "</select></label> <label>search <input class=\"f-q\" type=\"search\" "
            "placeholder=\"text in a source's rows\"></label> <span class=\"f-count\">%zu</span>"
            " of %zu sources shown</div><div class=\"rows\">\n",
            ns, ns);
  struct browse b = {h, d, all, cut, 0, 0, err, n};
  int rc = store_sources_each(d->in->st, (store_id)jx_int(d->row, "id", 0), browse_row, &b);
  if (b.rc) rc = b.rc;
  else if (rc) rc = report_err(err, n, rc, "%s", store_errmsg(d->in->st));
  html_raw(h, "</div></section>\n");
  return rc;
}

/* ---- comparison of several runs ---- */

struct ex_dist {
  double weak[10], gap[10];
  size_t n;
};
static int ex_row(void *ud, const json_t *row) {
  struct ex_dist *e = ud;
  const json_t *ex = json_object_get(row, "example");
  double w = jx_num(ex, "weak_mean", NAN), g = jx_num(ex, "gap", NAN);
  if (isfinite(w)) e->weak[w >= 1 ? 9 : w <= 0 ? 0 : (int)(w * 10)] += 1;
  if (isfinite(g)) e->gap[g >= 1 ? 9 : g <= 0 ? 0 : (int)(g * 10)] += 1;
  e->n++;
  return 0;
}

static int comparison(struct html *h, struct rdata *ds, int nr, char *err, size_t n) {
  struct compare_run *cr[REPORT_HTML_MAX_RUNS] = {0};
  struct ex_dist *ed = xcalloc((size_t)nr, sizeof *ed);
  json_t *cmp = NULL;
  struct buf table = BUF_INIT;
  int rc = 0;
  for (int i = 0; i < nr && !rc; i++) {
    rc = compare_load(ds[i].in->st, (store_id)jx_int(ds[i].row, "id", 0), label_of(&ds[i]), &cr[i],
                      err, n);
    if (!rc && (rc = store_examples_each(ds[i].in->st, (store_id)jx_int(ds[i].row, "id", 0), ex_row,
                                         &ed[i])))
      rc = report_err(err, n, rc, "%s", store_errmsg(ds[i].in->st));
  }
  struct compare_opts co;
  compare_opts_default(&co);
  if (!rc) rc = compare_build(cr, nr, &co, &cmp, err, n);
  if (!rc && (rc = compare_render(cmp, 0, &table)))
    rc = report_err(err, n, rc, "rendering the comparison table: %s", ad_strerror(rc));
  if (!rc) {
    html_raw(h,
             "<section class=\"compare\" id=\"compare\"><h2>Comparison</h2>"
             "<p class=\"note\">As <code>autodata compare</code> prints it: one column per "
             "run, bootstrap 95% confidence intervals, differences against the first run.</p>");
    pre(h, "table", buf_str(&table));
    html_raw(h, "<div class=\"plotgrid\">");
    const char **names = xcalloc((size_t)nr, sizeof *names);
    int *cnt = xcalloc((size_t)nr, sizeof *cnt);
    double **xs = xcalloc((size_t)nr, sizeof *xs), **ys = xcalloc((size_t)nr, sizeof *ys);
    static const double centres[10] = {0.05, 0.15, 0.25, 0.35, 0.45, 0.55, 0.65, 0.75, 0.85, 0.95};
    for (int which = 0; which < 2; which++) {
      for (int i = 0; i < nr; i++) {
        names[i] = label_of(&ds[i]);
        cnt[i] = 10;
        xs[i] = (double *)centres;
        ys[i] = xcalloc(10, sizeof **ys);
        for (int b = 0; b < 10; b++)
          ys[i][b] = ed[i].n ? (which ? ed[i].gap[b] : ed[i].weak[b]) / (double)ed[i].n : 0;
      }
      svg_line_chart(h, &(struct svg_lines){
                            which ? "plot-compare-gap" : "plot-compare-weak",
                            which ? "Dataset gap (strong - weak mean)" : "Dataset weak mean",
                            which ? "gap" : "weak mean", "share of examples",
                            "The distribution over each run's dataset, in bins of 0.1.", nr, names,
                            cnt, (const double *const *)xs, (const double *const *)ys, 0, 0});
      for (int i = 0; i < nr; i++) free(ys[i]);
    }
    free(names), free(cnt), free(xs), free(ys);
    html_raw(h, "</div><p>Runs: ");
    for (int i = 0; i < nr; i++) {
      html_rawf(h, "%s<a href=\"#summary%s\">", i ? ", " : "", ds[i].sfx);
      html_text(h, label_of(&ds[i]));
      html_raw(h, "</a>");
    }
    html_raw(h, "</p></section>\n");
  }
  for (int i = 0; i < nr; i++) compare_run_free(cr[i]);
  json_decref(cmp);
  buf_release(&table);
  free(ed);
  return rc;
}

/* ---- the page ---- */

static const char k_css[] =
    "body{font:14px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#222;"
    "background:#fafafa}header{background:#233;color:#fff;padding:12px 24px}"
    "header h1{margin:0;font-size:20px}header nav a{color:#cde;margin-right:14px}"
    "main{padding:8px 24px;max-width:1400px}.cols{display:flex;flex-wrap:wrap;gap:8px 32px}"
    ".cols h3:first-child{margin-top:0}h2{border-bottom:2px solid #ccd;padding-bottom:4px}"
    "h3{font-size:15px;margin:14px 0 6px}table{border-collapse:collapse}"
    "table.kv th{text-align:left;padding:2px 14px 2px 0;color:#555;font-weight:600}"
    "table.grid th,table.grid td{border:1px solid #ddd;padding:3px 7px;vertical-align:top;"
    "text-align:left}table.grid th{background:#eef}"
    ".plotgrid{display:grid;grid-template-columns:repeat(auto-fill,minmax(520px,1fr));gap:16px}"
    "figure.plot{margin:0;background:#fff;border:1px solid #ddd;padding:8px}"
    "figure.plot h3{margin:0 0 4px}figure svg{width:100%;height:auto}"
    "figcaption{color:#555;font-size:12px}svg text{font-size:11px;fill:#333}"
    "svg .label{font-size:12px}svg .grid{stroke:#eee}svg .axis{stroke:#888}"
    ".region{fill:#59a14f;fill-opacity:.15;stroke:#59a14f;stroke-dasharray:4 3}"
    ".pts0 circle{fill:#999;fill-opacity:.45}.pts1 circle{fill:#2a7f3a;fill-opacity:.8}"
    ".legend span{margin-right:12px;font-size:12px;white-space:nowrap}"
    ".legend i{display:inline-block;width:10px;height:10px;margin-right:4px;border-radius:2px}"
    ".legend i.pts0{background:#999}.legend i.pts1{background:#2a7f3a}"
    ".legend i.region{background:#cfe6cc;border:1px dashed #59a14f}"
    ".filters{position:sticky;top:0;background:#fafafa;padding:6px 0;z-index:1}"
    ".filters input{width:240px}details.src{background:#fff;border:1px solid #ddd;"
    "margin:3px 0;padding:3px 8px}details.src summary{cursor:pointer}"
    ".badge{border-radius:3px;padding:0 5px;font-size:12px;color:#fff}.badge.good{background:#2a7f3a}"
    ".badge.bad{background:#a33}.good{color:#2a7f3a}.bad{color:#a33}.title{color:#666}"
    ".round{border-left:3px solid #ccd;margin:8px 0 8px 6px;padding-left:10px}"
    ".round h4{margin:6px 0}.part{margin:5px 0}pre.t{white-space:pre-wrap;margin:2px 0;"
    "background:#f4f4f8;padding:4px 6px;max-height:24em;overflow:auto;font-size:12.5px}"
    "pre.table{overflow:auto;background:#fff;border:1px solid #ddd;padding:8px;font-size:12px}"
    "dl{margin:2px 0}dt{font-weight:600;color:#555}dd{margin:0 0 4px 12px}"
    ".rubric .w{display:inline-block;min-width:1.5em;color:#555}.verdicts{margin:0;padding-left:16px}"
    ".note{color:#666}[hidden]{display:none!important}";

/* The browser's filters: verdict, reason and text, each from its control or from the
 * URL fragment (#verdict=...&reason=...&q=...; &open=1 opens the rows shown).
 * data-js="ready" on <body> says it ran; data-ready-ms when (ms after the navigation
 * started, the whole page parsed: docs/performance.md's load time). #selftest (tests/e2e/t_report.sh) tries every
 * verdict and reason option and a search for the first source id, puts the rows shown
 * by each into <pre id="selftest"> as JSON and logs one console line. */
static const char k_js[] =
    "(function(){'use strict';\n"
    "var bs=[].slice.call(document.querySelectorAll('section.browser'));\n"
    "function apply(b){var v=b.querySelector('.f-verdict').value,"
    "r=b.querySelector('.f-reason').value,q=b.querySelector('.f-q').value.toLowerCase(),n=0;\n"
    " var rows=b.querySelectorAll('details.src');\n"
    " for(var i=0;i<rows.length;i++){var e=rows[i];\n"
    "  if(q&&e._t===undefined)e._t=e.textContent.toLowerCase();\n"
    "  var ok=(!v||e.getAttribute('data-verdict')===v)&&"
    "(!r||e.getAttribute('data-reasons').indexOf('|'+r+'|')>=0)&&(!q||e._t.indexOf(q)>=0);\n"
    "  e.hidden=!ok;if(ok)n++;}\n"
    " b.querySelector('.f-count').textContent=String(n);}\n"
    "function fromHash(){var p=new URLSearchParams(location.hash.replace(/^#/,''));\n"
    " bs.forEach(function(b){\n"
    "  if(p.has('verdict'))b.querySelector('.f-verdict').value=p.get('verdict');\n"
    "  if(p.has('reason'))b.querySelector('.f-reason').value=p.get('reason');\n"
    "  if(p.has('q'))b.querySelector('.f-q').value=p.get('q');\n"
    "  if(p.has('open'))[].forEach.call(b.querySelectorAll('details.src:not([hidden])'),"
    "function(d){d.open=true;});\n"
    "  apply(b);});}\n"
    "function shown(b){return b.querySelectorAll('details.src:not([hidden])').length;}\n"
    "function selftest(){var out=bs.map(function(b){\n"
    " var sv=b.querySelector('.f-verdict'),sr=b.querySelector('.f-reason'),"
    "sq=b.querySelector('.f-q'),keep=[sv.value,sr.value,sq.value],"
    "res={verdict:{},reason:{},q:null};\n"
    " sr.value='';sq.value='';[].forEach.call(sv.options,function(o){sv.value=o.value;apply(b);"
    "res.verdict[o.value]=shown(b);});sv.value='';\n"
    " [].forEach.call(sr.options,function(o){sr.value=o.value;apply(b);"
    "res.reason[o.value]=shown(b);});sr.value='';\n"
    " var c=b.querySelector('details.src summary code');if(c){sq.value=c.textContent;apply(b);"
    "res.q={text:c.textContent,shown:shown(b)};}\n"
    " sv.value=keep[0];sr.value=keep[1];sq.value=keep[2];apply(b);return res;});\n"
    " var pre=document.createElement('pre');pre.id='selftest';pre.textContent=JSON.stringify(out);"
    "document.body.appendChild(pre);console.log('autodata-selftest '+out.length);}\n"
    "bs.forEach(function(b){['.f-verdict','.f-reason','.f-q'].forEach(function(s){\n"
    " b.querySelector(s).addEventListener('input',function(){apply(b);});});});\n"
    "window.addEventListener('hashchange',fromHash);fromHash();\n"
    "if(/(^|[#&])selftest(=|&|$)/.test(location.hash))selftest();\n"
    "document.body.setAttribute('data-ready-ms',String(Math.round(performance.now())));\n"
    "document.body.setAttribute('data-js','ready');})();\n";

/* The page into h (its buffer, or through its spill). */
static int render(const struct report_html_run *runs, int n, const struct report_html_opts *opts,
                  struct html *hp, char *err, size_t errn) {
  if (!runs || n < 1 || n > REPORT_HTML_MAX_RUNS)
    return report_err(err, errn, AD_EINVAL, "a report takes 1 to %d stores", REPORT_HTML_MAX_RUNS);
  struct rdata *ds = xcalloc((size_t)n, sizeof *ds);
  int rc = 0;
  for (int i = 0; i < n && !rc; i++) {
    ds[i].in = &runs[i];
    if (i) snprintf(ds[i].sfx, sizeof ds[i].sfx, "-%d", i + 1);
    rc = collect(&ds[i], err, errn);
  }
  if (rc) goto done;
  html_raw(hp,
           "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">"
           "<title>autodata report: ");
  for (int i = 0; i < n; i++) {
    if (i) html_raw(hp, " vs ");
    html_text(hp, jx_str(ds[i].row, "recipe_name") ? jx_str(ds[i].row, "recipe_name") : "run");
  }
  html_rawf(hp, "</title><style>%s</style></head>\n<body><header><h1>autodata report</h1><nav>",
            k_css);
  if (n > 1) html_raw(hp, "<a href=\"#compare\">comparison</a>");
  for (int i = 0; i < n; i++) {
    html_rawf(hp, "<a href=\"#summary%s\">", ds[i].sfx);
    if (n > 1) {
      html_text(hp, label_of(&ds[i]));
      html_raw(hp, ": ");
    }
    html_rawf(hp,
              "summary</a><a href=\"#plots%s\">plots</a><a href=\"#trajectories%s\">"
              "trajectories</a>",
              ds[i].sfx, ds[i].sfx);
  }
  html_raw(hp, "</nav></header><main>\n");
  if (n > 1 && (rc = comparison(hp, ds, n, err, errn))) goto done;
  for (int i = 0; i < n && !rc; i++) {
    html_rawf(hp, "<article class=\"run\" id=\"run%s\">", ds[i].sfx);
    if (n > 1) {
      html_raw(hp, "<h2 class=\"runtitle\">");
      html_text(hp, label_of(&ds[i]));
      html_raw(hp, "</h2>");
    }
    summary(hp, &ds[i]);
    plots(hp, &ds[i]);
    if ((rc = optimisation(hp, &ds[i], err, errn))) break;
    if ((rc = analysis(hp, &ds[i], err, errn))) break;
    if ((rc = browser(hp, &ds[i], opts, err, errn))) break;
    html_raw(hp, "</article>\n");
  }
  if (rc) goto done;
  html_rawf(hp, "</main><script>%s</script></body></html>\n", k_js);
  if (!rc && hp->rc)
    rc = hp->spill ? hp->rc /* the file's error, already in err */
                   : report_err(err, errn, hp->rc,
                                "the report is larger than %u MiB; use fewer trajectories",
                                PAGE_CAP >> 20);
done:
  for (int i = 0; i < n; i++) rdata_release(&ds[i]);
  free(ds);
  return rc;
}

int report_html_render(const struct report_html_run *runs, int n,
                       const struct report_html_opts *opts, struct buf *out, char *err,
                       size_t errn) {
  if (!out) return report_err(err, errn, AD_EINVAL, "no buffer for the report");
  struct html h;
  html_init(&h, PAGE_CAP);
  int rc = render(runs, n, opts, &h, err, errn);
  if (!rc && (rc = buf_append(out, h.b.data, h.b.len)))
    rc = report_err(err, errn, rc, "the report does not fit its buffer");
  html_release(&h);
  return rc;
}

struct html_file {
  struct report_file rf;
  char *err;
  size_t errn;
};

static int html_to_file(void *ud, const char *p, size_t n) {
  struct html_file *f = ud;
  return report_file_write(&f->rf, p, n, f->err, f->errn);
}

/* Written as it is rendered: the page's size does not count against memory. */
int report_write_html(const struct report_html_run *runs, int n,
                      const struct report_html_opts *opts, const char *path, char *err,
                      size_t errn) {
  struct html_file f = {.err = err, .errn = errn};
  int rc = report_file_open(&f.rf, path, err, errn);
  if (rc) return rc;
  struct html h;
  html_init(&h, PAGE_CAP);
  h.spill = html_to_file;
  h.spill_ud = &f;
  rc = render(runs, n, opts, &h, err, errn);
  if (!rc) rc = html_to_file(&f, h.b.data, h.b.len);
  html_release(&h);
  if (rc) report_file_abort(&f.rf);
  else rc = report_file_commit(&f.rf, err, errn);
  return rc;
}
