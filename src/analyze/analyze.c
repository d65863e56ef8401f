/* analyze.c - a run's dataset-level analysis: the accepted examples from the store through
 * the near-duplicate, contamination and diversity steps into one JSON document. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"

#define AN_FILE_LIMIT ((size_t)4 << 30) /* a reference file read whole */
#define AN_LISTED_PAIRS 200             /* near-duplicate pairs and split overlaps listed */

void an_opts_defaults(struct an_opts *o) {
  memset(o, 0, sizeof *o);
  an_dedup_defaults(&o->dedup);
  o->ngram = AN_NGRAM_DEFAULT;
  o->max_listed = 3;
}

/* What the analysis keeps of an example: the question (near-duplicates and distinct-n need
 * it) but not the context and answer, which are scanned for contamination as the example is
 * read and then dropped, so memory grows with the questions, not with whole examples. */
struct ex {
  char *id, *source_id, *qtype, *question;
  size_t context_words;
  double gap, weak_mean;
  int has_weak;
  long rubric;         /* -1: no rubric */
  const char *removed; /* the reason, or NULL: kept */
  char *detail;
  char *reason_own; /* a reason given by an earlier step (an_opts.removed_before) */
};

struct ref_items;
static json_t *scan_example(const char *question, const char *context, const char *answer,
                            const struct ref_items *ref, int max_listed);
static size_t word_count(const char *s);
static size_t ref_count(const struct ref_items *ref);

struct exs {
  struct ex *v;
  size_t n, cap;
  /* contamination, as the examples are read: */
  const struct ref_items *ref;
  int ngram, max_listed;
  json_t *flagged; /* [{"id", "matches"}] */
  size_t n_contam;
  const json_t *removed_before; /* an_opts.removed_before: not scanned, kept as removed */
};

static char *dup_or_empty(const char *s) { return xstrdup(s ? s : ""); }

static int collect_example(void *ud, const json_t *row) {
  struct exs *e = ud;
  const json_t *x = json_object_get(row, "example");
  if (e->n == e->cap) {
    e->cap = e->cap ? 2 * e->cap : 64;
    e->v = xrealloc(e->v, e->cap * sizeof *e->v);
  }
  struct ex *p = &e->v[e->n++];
  memset(p, 0, sizeof *p);
  p->id = dup_or_empty(jx_str(row, "example_id"));
  p->source_id = dup_or_empty(jx_str(row, "source_id"));
  p->qtype = dup_or_empty(jx_str(x, "question_type"));
  p->question = dup_or_empty(jx_str(x, "question"));
  const char *ctx = jx_str(x, "context"), *ans = jx_str(x, "reference_answer");
  ans = ans ? ans : jx_str(x, "answer");
  p->context_words = word_count(ctx ? ctx : "");
  p->gap = jx_num(x, "gap", 0);
  p->has_weak = json_is_number(json_object_get(x, "weak_mean"));
  p->weak_mean = jx_num(x, "weak_mean", 0);
  const json_t *rub = json_object_get(x, "rubric");
  p->rubric = json_is_array(rub) ? (long)json_array_size(rub) : -1;
  const json_t *why = e->removed_before ? json_object_get(e->removed_before, p->id) : NULL;
  if (why) { /* removed by an earlier step */
    p->removed = p->reason_own = xstrdup(jx_str(why, "reason") ? jx_str(why, "reason") : "removed");
    p->detail = xstrdup(jx_str(why, "detail") ? jx_str(why, "detail") : "");
    return 0;
  }
  json_t *m = ref_count(e->ref)
                  ? scan_example(p->question, ctx ? ctx : "", ans ? ans : "", e->ref, e->max_listed)
                  : NULL;
  if (m) {
    e->n_contam++;
    p->removed = "contamination";
    p->detail = xasprintf("shares %d-grams with %s", e->ngram,
                          jx_str(json_array_get(m, 0), "item"));
    json_array_append_new(e->flagged, json_pack("{s:s, s:o}", "id", p->id, "matches", m));
  }
  return 0;
}

static void exs_release(struct exs *e) {
  for (size_t i = 0; i < e->n; i++) {
    struct ex *p = &e->v[i];
    free(p->id);
    free(p->source_id);
    free(p->qtype);
    free(p->question);
    free(p->detail);
    free(p->reason_own);
  }
  free(e->v);
}

/* ---- contamination ---- */

struct ref_items {
  char **labels;
  size_t n, cap;
  struct an_index *ix;
  const char *path;
};

static int add_item(void *ud, int line, const char *text, size_t len) {
  struct ref_items *r = ud;
  if (r->n == r->cap) {
    r->cap = r->cap ? 2 * r->cap : 64;
    r->labels = xrealloc(r->labels, r->cap * sizeof *r->labels);
  }
  r->labels[r->n] = xasprintf("%s:%d", r->path, line);
  an_index_add(r->ix, text, len, (uint32_t)r->n);
  r->n++;
  return 0;
}

static int load_file(struct ref_items *r, const char *path, const struct an_opts *o, char *err,
                     size_t errlen) {
  char *data = NULL;
  size_t len = 0;
  int rc = fs_read_all(path, AN_FILE_LIMIT, &data, &len);
  if (rc) {
    ad_set_err(err, errlen, "%s: %s", path, rc == AD_ETOOBIG ? "file too large" : strerror(errno));
    return rc == AD_ETOOBIG ? AD_EINVAL : AD_EIO;
  }
  r->path = path;
  rc = an_against_parse(data, len, path, o->fields, o->nfields, add_item, r, err, errlen);
  free(data);
  return rc;
}

static size_t ref_count(const struct ref_items *ref) { return ref ? ref->n : 0; }

static void ref_release(struct ref_items *r) {
  for (size_t i = 0; i < r->n; i++) free(r->labels[i]);
  free(r->labels);
}

/* One scanned text's matches: per item, its n-gram count and the first few n-grams. */
struct scan {
  const char *text;
  int k, max_listed;
  json_t *by_item; /* label -> {"item","ngrams":[],"count"} */
  const struct ref_items *ref;
  const char *field;
};

static int on_match(void *ud, const struct an_words *w, size_t word, uint32_t item) {
  struct scan *s = ud;
  const char *label = s->ref->labels[item];
  json_t *m = json_object_get(s->by_item, label);
  if (!m) {
    m = json_pack("{s:s, s:[], s:[], s:i}", "item", label, "fields", "ngrams", "count", 0);
    json_object_set_new(s->by_item, label, m);
  }
  json_object_set_new(m, "count", json_integer(jx_int(m, "count", 0) + 1));
  json_t *fields = json_object_get(m, "fields");
  size_t i;
  json_t *f;
  int have = 0;
  json_array_foreach(fields, i, f) have |= !strcmp(json_string_value(f), s->field);
  if (!have) json_array_append_new(fields, json_string(s->field));
  json_t *ng = json_object_get(m, "ngrams");
  if (json_array_size(ng) < (size_t)s->max_listed) {
    size_t a = w->off[word], b = w->off[word + (size_t)s->k - 1] + w->len[word + (size_t)s->k - 1];
    json_array_append_new(ng, jx_string_lossy(s->text + a, b - a));
  }
  return 0;
}

/* The matches of one example as an array sorted by count (desc), then label; NULL if none. */
static json_t *scan_example(const char *question, const char *context, const char *answer,
                            const struct ref_items *ref, int max_listed) {
  struct scan s = {NULL, ref->ix->n, max_listed, json_object(), ref, NULL};
  const char *names[] = {"question", "context", "answer"};
  const char *texts[] = {question, context, answer};
  for (int f = 0; f < 3; f++) {
    s.text = texts[f];
    s.field = names[f];
    an_index_scan(ref->ix, texts[f], strlen(texts[f]), on_match, &s);
  }
  if (!json_object_size(s.by_item)) {
    json_decref(s.by_item);
    return NULL;
  }
  json_t *arr = json_array();
  const char *k;
  json_t *v;
  json_object_foreach(s.by_item, k, v) json_array_append(arr, v);
  json_decref(s.by_item);
  /* insertion sort: few items per example */
  size_t n = json_array_size(arr);
  for (size_t i = 1; i < n; i++)
    for (size_t j = i; j > 0; j--) {
      json_t *x = json_array_get(arr, j - 1), *y = json_array_get(arr, j);
      long long cx = jx_int(x, "count", 0), cy = jx_int(y, "count", 0);
      if (cx > cy || (cx == cy && strcmp(jx_str(x, "item"), jx_str(y, "item")) <= 0)) break;
      json_incref(x);
      json_array_set(arr, j - 1, y);
      json_array_set_new(arr, j, x);
    }
  return arr;
}

/* ---- an export's splits ---- */

struct split_scan {
  json_t *pairs;
  struct an_set heldout_hit;
  size_t overlapping_train;
  const struct ref_items *ref;
  int k, max_listed, line;
  const char *text;
  json_t *cur;
};

static int on_split_match(void *ud, const struct an_words *w, size_t word, uint32_t item) {
  struct split_scan *s = ud;
  an_set_add(&s->heldout_hit, item, 0);
  if (!s->cur) {
    s->cur = json_pack("{s:s, s:s, s:[]}", "train", "", "heldout", s->ref->labels[item], "ngrams");
    char *t = xasprintf("train.jsonl:%d", s->line);
    json_object_set_new(s->cur, "train", json_string(t));
    free(t);
  }
  json_t *ng = json_object_get(s->cur, "ngrams");
  if (json_array_size(ng) < (size_t)s->max_listed) {
    size_t a = w->off[word], b = w->off[word + (size_t)s->k - 1] + w->len[word + (size_t)s->k - 1];
    json_array_append_new(ng, jx_string_lossy(s->text + a, b - a));
  }
  return 0;
}

static int on_train_item(void *ud, int line, const char *text, size_t len) {
  struct split_scan *s = ud;
  s->line = line;
  s->text = text;
  s->cur = NULL;
  an_index_scan(s->ref->ix, text, len, on_split_match, s);
  if (s->cur) {
    s->overlapping_train++;
    if (json_array_size(s->pairs) < AN_LISTED_PAIRS) json_array_append(s->pairs, s->cur);
    json_decref(s->cur);
  }
  return 0;
}

static int split_check(const struct an_opts *o, json_t **out, char *err, size_t errlen) {
  char *train = fs_join(o->export_dir, "train.jsonl"),
       *held = fs_join(o->export_dir, "heldout.jsonl");
  struct an_index ix;
  an_index_init(&ix, o->ngram);
  struct ref_items ref = {0};
  ref.ix = &ix;
  struct an_opts all = *o;
  all.nfields = 0; /* an export's lines: every text field */
  struct split_scan s = {json_array(), {0}, 0, &ref, ix.n, o->max_listed, 0, NULL, NULL};
  char *data = NULL;
  size_t len = 0;
  int rc = load_file(&ref, held, &all, err, errlen);
  if (rc) goto done;
  rc = fs_read_all(train, AN_FILE_LIMIT, &data, &len);
  if (rc) {
    ad_set_err(err, errlen, "%s: %s", train, strerror(errno));
    rc = AD_EIO;
    goto done;
  }
  /* The held-out labels say heldout.jsonl:N. */
  rc = an_against_parse(data, len, train, NULL, 0, on_train_item, &s, err, errlen);
  if (rc) goto done;
  *out = json_pack("{s:s, s:I, s:I, s:I, s:O}", "folder", o->export_dir, "heldout",
                   (json_int_t)ref.n, "heldout_overlapping", (json_int_t)s.heldout_hit.n,
                   "train_overlapping", (json_int_t)s.overlapping_train, "pairs", s.pairs);
done:
  free(data);
  json_decref(s.pairs);
  an_set_release(&s.heldout_hit);
  ref_release(&ref);
  an_index_release(&ix);
  free(train);
  free(held);
  return rc;
}

/* ---- diversity ---- */

struct count_kv {
  const char *key;
  size_t n;
};

static int cmp_count(const void *x, const void *y) {
  const struct count_kv *a = x, *b = y;
  if (a->n != b->n) return a->n < b->n ? 1 : -1;
  return strcmp(a->key, b->key);
}

static int cmp_size(const void *x, const void *y) {
  size_t a = *(const size_t *)x, b = *(const size_t *)y;
  return (a > b) - (a < b);
}

static json_t *length_stats(size_t *v, size_t n) {
  if (!n) return json_pack("{s:i, s:i, s:i}", "mean", 0, "p50", 0, "max", 0);
  qsort(v, n, sizeof *v, cmp_size);
  double sum = 0;
  for (size_t i = 0; i < n; i++) sum += (double)v[i];
  return json_pack("{s:f, s:I, s:I}", "mean", jx_round6(sum / (double)n), "p50",
                   (json_int_t)v[(n - 1) / 2], "max", (json_int_t)v[n - 1]);
}

static size_t word_count(const char *s) {
  struct an_words w = {0};
  an_words_split(&w, s, strlen(s));
  size_t n = w.n;
  an_words_release(&w);
  return n;
}

static int count_source(void *ud, const json_t *row) {
  (void)row;
  (*(size_t *)ud)++;
  return 0;
}

/* Count occurrences of keys (strings) into an object key -> n. */
static void bump(json_t *obj, const char *key) {
  json_object_set_new(obj, key, json_integer(jx_int(obj, key, 0) + 1));
}

static json_t *diversity(const struct exs *e, size_t sources_total) {
  json_t *types = json_object(), *per_source = json_object();
  struct an_distinct d = {0};
  size_t kept = 0, *qw = xcalloc(e->n + 1, sizeof *qw), *cw = xcalloc(e->n + 1, sizeof *cw);
  size_t rub_n = 0, rub_min = 0, rub_max = 0, rub_sum = 0, hist[10] = {0}, nweak = 0;
  for (size_t i = 0; i < e->n; i++) {
    const struct ex *x = &e->v[i];
    if (x->removed) continue;
    bump(types, x->qtype[0] ? x->qtype : "(none)");
    bump(per_source, x->source_id);
    an_distinct_add(&d, x->question, strlen(x->question));
    qw[kept] = word_count(x->question);
    cw[kept] = x->context_words;
    kept++;
    if (x->rubric >= 0) {
      size_t r = (size_t)x->rubric;
      rub_min = rub_n ? (r < rub_min ? r : rub_min) : r;
      rub_max = r > rub_max ? r : rub_max;
      rub_sum += r;
      rub_n++;
    }
    if (x->has_weak) {
      int b = (int)floor(x->weak_mean * 10);
      hist[b < 0 ? 0 : b > 9 ? 9 : b]++;
      nweak++;
    }
  }
  size_t k = json_object_size(types);
  struct count_kv *kv = xcalloc(k + 1, sizeof *kv);
  size_t *counts = xcalloc(k + 1, sizeof *counts), j = 0;
  const char *key;
  json_t *val;
  json_object_foreach(types, key, val)
      kv[j++] = (struct count_kv){key, (size_t)json_integer_value(val)};
  qsort(kv, k, sizeof *kv, cmp_count);
  json_t *dist = json_array();
  for (j = 0; j < k; j++) {
    counts[j] = kv[j].n;
    json_array_append_new(dist, json_pack("{s:s, s:I, s:f}", "type", kv[j].key, "count",
                                          (json_int_t)kv[j].n, "share",
                                          jx_round6((double)kv[j].n / (double)kept)));
  }
  double h = an_entropy(counts, k);
  size_t max_per = 0, hist_per[5] = {0};
  json_object_foreach(per_source, key, val) {
    size_t c = (size_t)json_integer_value(val);
    max_per = c > max_per ? c : max_per;
    hist_per[c >= 5 ? 4 : c - 1]++;
  }
  size_t covered = json_object_size(per_source);
  json_t *weak = json_array();
  for (int b = 0; b < 10; b++) json_array_append_new(weak, json_integer((json_int_t)hist[b]));
  json_t *out = json_pack(
      "{s:I, s:{s:o, s:I, s:f, s:f}, s:{s:f, s:f, s:f},"
      " s:{s:I, s:I, s:f, s:f, s:I, s:[I,I,I,I,I]}, s:o, s:o, s:o, s:{s:I, s:o}}",
      "examples", (json_int_t)kept, "question_types", "distribution", dist, "types", (json_int_t)k,
      "entropy_bits", jx_round6(h), "entropy_normalised",
      jx_round6(k > 1 ? h / log2((double)k) : 0), "distinct", "1",
      jx_round6(an_distinct_value(&d, 1)), "2", jx_round6(an_distinct_value(&d, 2)), "3",
      jx_round6(an_distinct_value(&d, 3)), "sources", "total", (json_int_t)sources_total,
      "with_examples", (json_int_t)covered, "coverage",
      jx_round6(sources_total ? (double)covered / (double)sources_total : 0),
      "examples_per_source_mean", jx_round6(covered ? (double)kept / (double)covered : 0),
      "examples_per_source_max", (json_int_t)max_per, "examples_per_source_histogram",
      (json_int_t)hist_per[0], (json_int_t)hist_per[1], (json_int_t)hist_per[2],
      (json_int_t)hist_per[3], (json_int_t)hist_per[4], "question_words", length_stats(qw, kept),
      "context_words", length_stats(cw, kept), "rubric_size",
      rub_n ? json_pack("{s:f, s:I, s:I}", "mean", jx_round6((double)rub_sum / (double)rub_n),
                        "min", (json_int_t)rub_min, "max", (json_int_t)rub_max)
            : json_null(),
      "weak_mean_histogram", "examples", (json_int_t)nweak, "bins", weak);
  free(kv);
  free(counts);
  free(qw);
  free(cw);
  json_decref(types);
  json_decref(per_source);
  an_distinct_release(&d);
  return out;
}

/* ---- the run ---- */

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return (x > y) - (x < y);
}

static json_t *dedup_json(const struct an_opts *o, const struct exs *e,
                          const struct an_dedup_result *r, size_t *removed) {
  json_t *pairs = json_array(), *clusters = json_array();
  for (size_t i = 0; i < r->npairs && i < AN_LISTED_PAIRS; i++)
    json_array_append_new(pairs, json_pack("{s:s, s:s, s:f}", "a", e->v[r->pairs[i].a].id, "b",
                                           e->v[r->pairs[i].b].id, "jaccard",
                                           jx_round6(r->pairs[i].jaccard)));
  /* Clusters: the items ordered by (root, index), so each cluster's members are adjacent and
   * in id order (the examples come sorted by id); the kept one by the rule among the members
   * that are not contaminated. */
  size_t n = e->n, nclusters = 0, in_clusters = 0;
  uint64_t *order = xcalloc(n + 1, sizeof *order);
  for (size_t i = 0; i < n; i++) order[i] = ((uint64_t)r->root[i] << 32) | i;
  qsort(order, n, sizeof *order, cmp_u64);
  for (size_t s = 0; s < n;) {
    size_t t = s + 1;
    while (t < n && order[t] >> 32 == order[s] >> 32) t++;
    if (t - s < 2) {
      s = t;
      continue;
    }
    nclusters++;
    long keep = -1;
    for (size_t q = s; q < t; q++) {
      size_t j = (size_t)(order[q] & 0xffffffffu);
      if (e->v[j].removed) continue;
      if (keep < 0 || !an_keep_first(e->v[keep].gap, e->v[keep].id, e->v[j].gap, e->v[j].id))
        keep = (long)j;
    }
    json_t *members = json_array();
    for (size_t q = s; q < t; q++) {
      size_t j = (size_t)(order[q] & 0xffffffffu);
      in_clusters++;
      json_array_append_new(members, json_string(e->v[j].id));
      if ((long)j == keep || e->v[j].removed) continue;
      e->v[j].removed = "near_duplicate";
      e->v[j].detail = xasprintf("of %s", e->v[keep].id);
      (*removed)++;
    }
    json_array_append_new(clusters,
                          json_pack("{s:o, s:o}", "members", members, "kept",
                                    keep >= 0 ? json_string(e->v[keep].id) : json_null()));
    s = t;
  }
  free(order);
  return json_pack("{s:f, s:i, s:i, s:i, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:o, s:o}", "threshold",
                   o->dedup.threshold, "shingle_words", o->dedup.shingle, "permutations",
                   o->dedup.perms, "bands", o->dedup.bands, "text", "question", "keep_rule",
                   "the largest gap, then the smallest id", "candidate_pairs",
                   (json_int_t)r->candidates, "pairs_found", (json_int_t)r->npairs,
                   "clusters_found", (json_int_t)nclusters, "examples_in_clusters",
                   (json_int_t)in_clusters, "removed", (json_int_t)*removed, "pairs", pairs,
                   "clusters", clusters);
}

int an_run(store *st, store_id run, const struct an_opts *o, json_t **out, char *err,
           size_t errlen) {
  *out = NULL;
  struct exs e = {0};
  struct an_index ix;
  an_index_init(&ix, o->ngram);
  struct ref_items ref = {0};
  ref.ix = &ix;
  struct an_dedup_result dr = {0};
  json_t *doc = NULL, *split = NULL;
  const char **texts = NULL;
  size_t sources = 0;
  int rc = 0;
  if (!run && (rc = store_run_latest(st, &run))) {
    ad_set_err(err, errlen, "%s holds no run", store_path(st));
    goto done;
  }
  /* contamination: the reference files first, then each example scanned as it is read */
  json_t *files = json_array();
  e.flagged = json_array();
  for (size_t i = 0; i < o->nagainst; i++) {
    size_t before = ref.n;
    if ((rc = load_file(&ref, o->against[i], o, err, errlen))) {
      json_decref(files);
      goto done;
    }
    json_array_append_new(files, json_pack("{s:s, s:I}", "path", o->against[i], "items",
                                           (json_int_t)(ref.n - before)));
  }
  e.ref = &ref;
  e.ngram = ix.n;
  e.max_listed = o->max_listed;
  e.removed_before = o->removed_before;
  if ((rc = store_examples_each(st, run, collect_example, &e)) ||
      (rc = store_sources_each(st, run, count_source, &sources))) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    json_decref(files);
    goto done;
  }
  json_t *flagged = e.flagged;
  size_t n_contam = e.n_contam;
  e.flagged = NULL;
  json_t *contam = json_pack("{s:i, s:o, s:I, s:I, s:o}", "ngram_words", ix.n, "files", files,
                             "reference_items", (json_int_t)ref.n, "flagged", (json_int_t)n_contam,
                             "examples", flagged);
  if (o->export_dir && (rc = split_check(o, &split, err, errlen))) {
    json_decref(contam);
    goto done;
  }
  /* near-duplicates */
  texts = xcalloc(e.n + 1, sizeof *texts);
  for (size_t i = 0; i < e.n; i++) texts[i] = e.v[i].question;
  if ((rc = an_dedup(&o->dedup, texts, e.n, &dr, err, errlen))) {
    json_decref(contam);
    json_decref(split);
    goto done;
  }
  size_t n_dup = 0;
  json_t *dups = dedup_json(o, &e, &dr, &n_dup);
  json_t *removed = json_array();
  for (size_t i = 0; i < e.n; i++)
    if (e.v[i].removed)
      json_array_append_new(removed, json_pack("{s:s, s:s, s:s, s:s}", "id", e.v[i].id, "source_id",
                                               e.v[i].source_id, "reason", e.v[i].removed, "detail",
                                               e.v[i].detail));
  doc = json_pack("{s:I, s:I, s:I, s:o, s:o}", "run", (json_int_t)run, "examples", (json_int_t)e.n,
                  "kept", (json_int_t)(e.n - json_array_size(removed)), "near_duplicates", dups,
                  "contamination", contam);
  if (split) json_object_set_new(doc, "split", split);
  json_object_set_new(doc, "diversity", diversity(&e, sources));
  json_object_set_new(doc, "removed", removed);
  *out = doc;
done:
  free(texts);
  an_dedup_release(&dr);
  ref_release(&ref);
  an_index_release(&ix);
  json_decref(e.flagged);
  exs_release(&e);
  return rc;
}

void an_print_summary(const json_t *doc, FILE *f) {
  const json_t *nd = json_object_get(doc, "near_duplicates"),
               *ct = json_object_get(doc, "contamination"), *dv = json_object_get(doc, "diversity"),
               *sp = json_object_get(doc, "split");
  fprintf(f, "run %lld: %lld accepted examples, %lld kept after the analysis\n",
          jx_int(doc, "run", 0), jx_int(doc, "examples", 0), jx_int(doc, "kept", 0));
  fprintf(f,
          "near-duplicates (Jaccard >= %g over %lld-word shingles of the question): %lld pairs "
          "in %lld clusters (%lld examples), %lld removed (kept: %s)\n",
          jx_num(nd, "threshold", 0), jx_int(nd, "shingle_words", 0), jx_int(nd, "pairs_found", 0),
          jx_int(nd, "clusters_found", 0), jx_int(nd, "examples_in_clusters", 0),
          jx_int(nd, "removed", 0), jx_str(nd, "keep_rule"));
  size_t i;
  const json_t *c;
  json_array_foreach(json_object_get(nd, "clusters"), i, c) {
    if (i >= 10) {
      fprintf(f, "  ... (--json lists every cluster)\n");
      break;
    }
    fprintf(f, "  cluster:");
    size_t j;
    const json_t *m;
    json_array_foreach(json_object_get(c, "members"), j, m) fprintf(f, " %s", json_string_value(m));
    fprintf(f, "; kept %s\n", jx_str(c, "kept") ? jx_str(c, "kept") : "none");
  }
  if (jx_int(ct, "reference_items", 0) || json_array_size(json_object_get(ct, "files"))) {
    fprintf(
        f, "contamination (%lld-gram overlap with %lld reference items): %lld examples flagged\n",
        jx_int(ct, "ngram_words", 0), jx_int(ct, "reference_items", 0), jx_int(ct, "flagged", 0));
    json_array_foreach(json_object_get(ct, "examples"), i, c) {
      const json_t *m = json_array_get(json_object_get(c, "matches"), 0);
      const json_t *ng = json_array_get(json_object_get(m, "ngrams"), 0);
      fprintf(f, "  %s: %s (%lld %lld-grams), e.g. \"%s\"\n", jx_str(c, "id"), jx_str(m, "item"),
              jx_int(m, "count", 0), jx_int(ct, "ngram_words", 0), ng ? json_string_value(ng) : "");
    }
  }
  if (sp)
    fprintf(f,
            "export %s: %lld of %lld held-out examples share a %lld-gram with %lld training "
            "examples\n",
            jx_str(sp, "folder"), jx_int(sp, "heldout_overlapping", 0), jx_int(sp, "heldout", 0),
            jx_int(ct, "ngram_words", 0), jx_int(sp, "train_overlapping", 0));
  const json_t *qt = json_object_get(dv, "question_types"), *d = json_object_get(dv, "distinct"),
               *so = json_object_get(dv, "sources");
  fprintf(f, "diversity of the %lld kept examples:\n", jx_int(dv, "examples", 0));
  fprintf(f, "  question types: %lld, entropy %.3f bits (normalised %.3f):", jx_int(qt, "types", 0),
          jx_num(qt, "entropy_bits", 0), jx_num(qt, "entropy_normalised", 0));
  json_array_foreach(json_object_get(qt, "distribution"), i, c)
      fprintf(f, "%s %s %lld", i ? "," : "", jx_str(c, "type"), jx_int(c, "count", 0));
  fprintf(f, "\n  distinct-1/2/3 of the questions: %.3f / %.3f / %.3f\n", jx_num(d, "1", 0),
          jx_num(d, "2", 0), jx_num(d, "3", 0));
  fprintf(f,
          "  sources: %lld of %lld with an example (coverage %.3f), %.2f per source (max %lld)\n",
          jx_int(so, "with_examples", 0), jx_int(so, "total", 0), jx_num(so, "coverage", 0),
          jx_num(so, "examples_per_source_mean", 0), jx_int(so, "examples_per_source_max", 0));
  const json_t *qw = json_object_get(dv, "question_words"),
               *cw = json_object_get(dv, "context_words"), *rs = json_object_get(dv, "rubric_size");
  fprintf(
      f, "  question words: mean %.1f, median %lld, max %lld; context words: mean %.1f, max %lld\n",
      jx_num(qw, "mean", 0), jx_int(qw, "p50", 0), jx_int(qw, "max", 0), jx_num(cw, "mean", 0),
      jx_int(cw, "max", 0));
  if (json_is_object(rs))
    fprintf(f, "  rubric size: mean %.2f, min %lld, max %lld\n", jx_num(rs, "mean", 0),
            jx_int(rs, "min", 0), jx_int(rs, "max", 0));
  fprintf(f, "  weak mean histogram (0.0-0.1 ... 0.9-1.0):");
  json_array_foreach(json_object_get(json_object_get(dv, "weak_mean_histogram"), "bins"), i, c)
      fprintf(f, " %lld", (long long)json_integer_value(c));
  fprintf(f, "\n");
}
