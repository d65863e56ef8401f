/* outputs.c - dataset.jsonl, rejected.jsonl, and report_write_all() (every output of a
 * run). The helpers they share with card.c and compare.c are in files.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/compare.h"
#include "report/report.h"
#include "report/report_html.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/version.h"

/* ======== dataset.jsonl ======== */

struct line_ctx {
  struct report_file *rf;
  size_t count;
  int rc; /* our own failure (vs a store read error) */
  char *err;
  size_t n;
  const json_t *removed; /* example id -> {"reason", "detail"}: the analysis's removals */
  int only_removed;      /* 1: removed.jsonl (the removed examples), 0: dataset.jsonl */
};

static int write_json_line(struct line_ctx *c, const json_t *v) {
  char *text = jx_dump_canonical(v);
  if (!text)
    return c->rc = report_err(c->err, c->n, AD_EINTERNAL, "cannot serialise a row as JSON");
  size_t len = strlen(text);
  text[len] = '\n'; /* overwrite the NUL: write len + 1 bytes */
  int rc = report_file_write(c->rf, text, len + 1, c->err, c->n);
  free(text);
  if (rc) return c->rc = rc;
  c->count++;
  return 0;
}

static int dataset_row(void *ud, const json_t *row) {
  struct line_ctx *c = ud;
  const json_t *ex = json_object_get(row, "example");
  if (!json_is_object(ex))
    return c->rc = report_err(c->err, c->n, AD_ECORRUPT,
                              "example '%s' in the store is not a JSON "
                              "object",
                              jx_str(row, "example_id") ? jx_str(row, "example_id") : "?");
  const json_t *why = c->removed ? json_object_get(c->removed, jx_str(row, "example_id")) : NULL;
  if (!c->only_removed) return why ? 0 : write_json_line(c, ex);
  if (!why) return 0;
  json_t *o = json_deep_copy(ex);
  json_object_set(o, "removed", (json_t *)why);
  int rc = write_json_line(c, o);
  json_decref(o);
  return rc;
}

/* Run the iterator `each` into a fresh atomic file at path. */
typedef int (*each_fn)(store *st, store_id run, void *arg, struct line_ctx *c);

static int write_lines(store *st, store_id run, const char *path, each_fn each, void *arg,
                       size_t *count, char *err, size_t n) {
  json_t *row = NULL;
  int rc = report_run_row(st, run, &row, err, n);
  if (rc) return rc;
  run = (store_id)jx_int(row, "id", run);
  json_decref(row);
  struct report_file rf;
  if ((rc = report_file_open(&rf, path, err, n))) return rc;
  struct line_ctx c = {&rf, 0, 0, err, n, NULL, 0};
  rc = each(st, run, arg, &c);
  if (rc) {
    if (!c.rc) report_err(err, n, rc, "%s", store_errmsg(st));
    report_file_abort(&rf);
    return c.rc ? c.rc : rc;
  }
  if ((rc = report_file_commit(&rf, err, n))) return rc;
  if (count) *count = c.count;
  return 0;
}

struct removals {
  json_t *removed; /* example id -> {"reason", "detail"}, or NULL: nothing removed */
  int only_removed;
};

static int each_example(store *st, store_id run, void *arg, struct line_ctx *c) {
  const struct removals *r = arg;
  c->removed = r->removed;
  c->only_removed = r->only_removed;
  return store_examples_each(st, run, dataset_row, c);
}

/* The removals the run's analysis applied (its finalize step with remove on), or NULL. */
static json_t *removals_of(const json_t *analysis) {
  if (!json_is_true(json_object_get(json_object_get(analysis, "finalize"), "remove"))) return NULL;
  json_t *m = json_object();
  size_t i;
  const json_t *r;
  json_array_foreach(json_object_get(analysis, "removed"), i, r) {
    if (!jx_str(r, "id")) continue;
    json_object_set_new(m, jx_str(r, "id"),
                        json_pack("{s:O?, s:O?}", "reason", json_object_get(r, "reason"), "detail",
                                  json_object_get(r, "detail")));
  }
  return m;
}

/* The run's stored analysis in *out (NULL when it has none): 0 or a store read error. */
static int analysis_of(store *st, store_id run, json_t **out, char *err, size_t n) {
  int rc = store_analysis_get(st, run, out);
  if (rc == AD_ENOTFOUND) return 0;
  if (rc) return report_err(err, n, rc, "%s", store_errmsg(st));
  return 0;
}

int report_removals(store *st, store_id run, json_t **out, char *err, size_t n) {
  json_t *a = NULL;
  *out = NULL;
  int rc = analysis_of(st, run, &a, err, n);
  if (!rc) *out = removals_of(a);
  json_decref(a);
  return rc;
}

int report_write_dataset(store *st, store_id run, const char *path, size_t *count, char *err,
                         size_t n) {
  json_t *a = NULL;
  int rc = analysis_of(st, run, &a, err, n);
  if (rc) return rc;
  struct removals r = {removals_of(a), 0};
  rc = write_lines(st, run, path, each_example, &r, count, err, n);
  json_decref(r.removed);
  json_decref(a);
  return rc;
}

/* removed.jsonl and analysis.json from the run's analysis; without one, stale files of an
 * earlier analysis are removed (they would disagree with dataset.jsonl). */
static int write_analysis(store *st, store_id run, struct report_paths *p, char *err, size_t n) {
  json_t *a = NULL;
  int rc = analysis_of(st, run, &a, err, n);
  if (rc) return rc;
  if (!a) {
    unlink(p->removed);
    unlink(p->analysis);
    p->removed[0] = p->analysis[0] = '\0';
    return 0;
  }
  struct removals r = {removals_of(a), 1};
  if (!r.removed) r.removed = json_object(); /* analysed, nothing removed */
  rc = write_lines(st, run, p->removed, each_example, &r, &p->n_removed, err, n);
  json_decref(r.removed);
  char *text = rc ? NULL : json_dumps(a, JSON_INDENT(2) | JSON_SORT_KEYS);
  if (text) {
    struct report_file rf;
    size_t len = strlen(text);
    text[len] = '\n';
    if (!(rc = report_file_open(&rf, p->analysis, err, n)) &&
        (rc = report_file_write(&rf, text, len + 1, err, n)))
      report_file_abort(&rf);
    else if (!rc) rc = report_file_commit(&rf, err, n);
  } else if (!rc) {
    rc = report_err(err, n, AD_EINTERNAL, "cannot serialise the analysis");
  }
  free(text);
  json_decref(a);
  return rc;
}

/* ======== rejected.jsonl ======== */

static json_t *or_null(const json_t *v) { return v ? json_incref((json_t *)v) : json_null(); }

static int rejected_row(void *ud, const json_t *row) {
  struct line_ctx *c = ud;
  const json_t *rec = json_object_get(row, "record");
  const json_t *cand = json_object_get(rec, "candidate");
  const json_t *reason = json_object_get(row, "reason");
  if (!json_is_string(reason)) reason = json_object_get(rec, "reason");
  json_t *o = json_object();
  json_object_set_new(o, "source_id", or_null(json_object_get(row, "source_id")));
  json_object_set_new(o, "round", or_null(json_object_get(row, "round")));
  json_object_set_new(o, "index", or_null(json_object_get(row, "index")));
  json_object_set_new(o, "reason", or_null(reason));
  json_object_set_new(o, "detail", or_null(json_object_get(rec, "detail")));
  json_object_set_new(o, "question", or_null(json_object_get(cand, "question")));
  json_object_set_new(o, "question_type", or_null(json_object_get(cand, "question_type")));
  json_object_set_new(o, "stats", or_null(json_object_get(rec, "stats")));
  json_object_set_new(o, "quality", or_null(json_object_get(rec, "quality")));
  int rc = write_json_line(c, o);
  json_decref(o);
  return rc;
}

static int each_rejected(store *st, store_id run, void *arg, struct line_ctx *c) {
  (void)arg;
  return store_candidates_each(st, run, "rejected", rejected_row, c);
}

int report_write_rejected(store *st, store_id run, const char *path, size_t *count, char *err,
                          size_t n) {
  return write_lines(st, run, path, each_rejected, NULL, count, err, n);
}

/* ======== all outputs ======== */

/* p's paths in folder (counts 0). */
static int join_paths(struct report_paths *p, const char *folder, char *err, size_t n) {
  memset(p, 0, sizeof *p);
  int rc;
  if (!folder || !*folder) return report_err(err, n, AD_EINVAL, "no output folder given");
  if ((rc = report_join(p->dataset, sizeof p->dataset, folder, "dataset.jsonl", err, n)) ||
      (rc = report_join(p->rejected, sizeof p->rejected, folder, "rejected.jsonl", err, n)) ||
      (rc = report_join(p->card, sizeof p->card, folder, "DATACARD.md", err, n)) ||
      (rc = report_join(p->candidates, sizeof p->candidates, folder, "candidates.jsonl", err, n)) ||
      (rc = report_join(p->removed, sizeof p->removed, folder, "removed.jsonl", err, n)) ||
      (rc = report_join(p->analysis, sizeof p->analysis, folder, "analysis.json", err, n)) ||
      (rc = report_join(p->report, sizeof p->report, folder, "report.html", err, n)))
    return rc;
  return 0;
}

int report_write_all(store *st, store_id run, const char *folder, struct report_paths *out,
                     char *err, size_t n) {
  struct report_paths local;
  struct report_paths *p = out ? out : &local;
  int rc;
  if ((rc = join_paths(p, folder, err, n))) return rc;
  if ((rc = fs_mkdirs(folder)))
    return report_err(err, n, rc, "cannot create the output folder %s: %s", folder,
                      strerror(errno));
  if ((rc = report_write_dataset(st, run, p->dataset, &p->n_examples, err, n))) return rc;
  if ((rc = write_analysis(st, run, p, err, n))) return rc;
  if ((rc = report_write_rejected(st, run, p->rejected, &p->n_rejected, err, n))) return rc;
  if ((rc = report_write_card(st, run, p->card, err, n))) return rc;
  if ((rc = compare_write_candidates(st, run, p->candidates, &p->n_candidates, err, n))) return rc;
  struct report_html_run one = {st, run, folder};
  return report_write_html(&one, 1, NULL, p->report, err, n);
}

/* ======== all outputs, when out of date ======== */

/* The record of what a folder's outputs were written from (report_write_all_changed). */
#define OUTPUTS_MARK ".outputs.json"

/* The files of p that exist after report_write_all, by name. */
static int mark_files(const struct report_paths *p, const char *names[7], const char *paths[7]) {
  int k = 0;
  const char *all[][2] = {{"dataset.jsonl", p->dataset}, {"rejected.jsonl", p->rejected},
                          {"DATACARD.md", p->card},      {"candidates.jsonl", p->candidates},
                          {"report.html", p->report},    {"removed.jsonl", p->removed},
                          {"analysis.json", p->analysis}};
  for (int i = 0; i < 7; i++) {
    if (!all[i][1][0]) continue; /* removed/analysis: the run has no analysis */
    names[k] = all[i][0];
    paths[k++] = all[i][1];
  }
  return k;
}

/* {"version", "store", "run", "stamp", "files": {name: {"bytes", "xxh128"}}, "counts"}. */
static json_t *mark_build(store *st, store_id run, const char *stamp,
                          const struct report_paths *p) {
  const char *names[7], *paths[7];
  int k = mark_files(p, names, paths);
  json_t *files = json_object();
  for (int i = 0; i < k; i++) {
    char h[33];
    uint64_t size = 0;
    if (hash128_file_hex(paths[i], h, &size)) {
      json_decref(files);
      return NULL; /* gone already: no record, the next session writes them */
    }
    json_object_set_new(files, names[i],
                        json_pack("{s:I, s:s}", "bytes", (json_int_t)size, "xxh128", h));
  }
  return json_pack("{s:s, s:s, s:I, s:s, s:o, s:{s:I, s:I, s:I, s:I}}", "version", ad_version(),
                   "store", store_path(st), "run", (json_int_t)run, "stamp", stamp, "files", files,
                   "counts", "examples", (json_int_t)p->n_examples, "removed",
                   (json_int_t)p->n_removed, "rejected", (json_int_t)p->n_rejected, "candidates",
                   (json_int_t)p->n_candidates);
}

/* 1 when the mark in p's folder says the outputs were written from this stamp by this version
 * and every file it lists is there with its size and hash; then p's counts are the mark's. */
static int mark_current(store *st, store_id run, const char *stamp, const char *path,
                        struct report_paths *p) {
  json_t *m = json_load_file(path, 0, NULL);
  const json_t *files = json_object_get(m, "files");
  int ok = m && json_is_object(files) && jx_str(m, "version") && jx_str(m, "store") &&
           jx_str(m, "stamp") && !strcmp(jx_str(m, "version"), ad_version()) &&
           !strcmp(jx_str(m, "store"), store_path(st)) && jx_int(m, "run", 0) == (json_int_t)run &&
           !strcmp(jx_str(m, "stamp"), stamp);
  /* the analysis' files are listed when the run has an analysis (as when written) */
  if (ok && !json_object_get(files, "analysis.json")) p->removed[0] = p->analysis[0] = '\0';
  const char *names[7], *paths[7];
  int k = ok ? mark_files(p, names, paths) : 0;
  ok = ok && (size_t)k == json_object_size(files);
  for (int i = 0; ok && i < k; i++) {
    const json_t *f = json_object_get(files, names[i]);
    char h[33];
    uint64_t size = 0;
    ok = f && !hash128_file_hex(paths[i], h, &size) && jx_int(f, "bytes", -1) == (json_int_t)size &&
         jx_str(f, "xxh128") && !strcmp(jx_str(f, "xxh128"), h);
  }
  if (ok) {
    const json_t *c = json_object_get(m, "counts");
    p->n_examples = (size_t)jx_int(c, "examples", 0);
    p->n_removed = (size_t)jx_int(c, "removed", 0);
    p->n_rejected = (size_t)jx_int(c, "rejected", 0);
    p->n_candidates = (size_t)jx_int(c, "candidates", 0);
  }
  json_decref(m);
  return ok;
}

int report_write_all_changed(store *st, store_id run, const char *folder, struct report_paths *out,
                             int *skipped, char *err, size_t n) {
  struct report_paths local;
  struct report_paths *p = out ? out : &local;
  *skipped = 0;
  char mark[4096], stamp[33];
  json_t *row = NULL;
  int rc = report_run_row(st, run, &row, err, n);
  if (rc) return rc;
  run = (store_id)jx_int(row, "id", run);
  json_decref(row);
  if ((rc = join_paths(p, folder, err, n)) ||
      (rc = report_join(mark, sizeof mark, folder, OUTPUTS_MARK, err, n)))
    return rc;
  /* no stamp (a backend that keeps none): always written, and no mark left to trust */
  int stamped = store_run_stamp(st, run, stamp) == 0;
  if (stamped && mark_current(st, run, stamp, mark, p)) {
    *skipped = 1;
    return 0;
  }
  unlink(mark);
  if ((rc = report_write_all(st, run, folder, p, err, n)) || !stamped) return rc;
  json_t *m = mark_build(st, run, stamp, p);
  char *text = m ? json_dumps(m, JSON_INDENT(2) | JSON_SORT_KEYS) : NULL;
  json_decref(m);
  if (!text) return 0; /* nothing recorded: the next session writes them again */
  struct report_file rf;
  size_t len = strlen(text);
  text[len] = '\n';
  if (!(rc = report_file_open(&rf, mark, err, n)) &&
      (rc = report_file_write(&rf, text, len + 1, err, n)))
    report_file_abort(&rf);
  else if (!rc) rc = report_file_commit(&rf, err, n);
  free(text);
  return rc;
}
