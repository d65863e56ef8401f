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
#include "util/jsonx.h"
#include "util/mem.h"

/* ======== dataset.jsonl ======== */

struct line_ctx {
  struct report_file *rf;
  size_t count;
  int rc; /* our own failure (vs a store read error) */
  char *err;
  size_t n;
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
  return write_json_line(c, ex);
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
  struct line_ctx c = {&rf, 0, 0, err, n};
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

static int each_example(store *st, store_id run, void *arg, struct line_ctx *c) {
  (void)arg;
  return store_examples_each(st, run, dataset_row, c);
}

int report_write_dataset(store *st, store_id run, const char *path, size_t *count, char *err,
                         size_t n) {
  return write_lines(st, run, path, each_example, NULL, count, err, n);
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

int report_write_all(store *st, store_id run, const char *folder, struct report_paths *out,
                     char *err, size_t n) {
  struct report_paths local;
  struct report_paths *p = out ? out : &local;
  memset(p, 0, sizeof *p);
  int rc;
  if (!folder || !*folder) return report_err(err, n, AD_EINVAL, "no output folder given");
  if ((rc = fs_mkdirs(folder)))
    return report_err(err, n, rc, "cannot create the output folder %s: %s", folder,
                      strerror(errno));
  if ((rc = report_join(p->dataset, sizeof p->dataset, folder, "dataset.jsonl", err, n)) ||
      (rc = report_join(p->rejected, sizeof p->rejected, folder, "rejected.jsonl", err, n)) ||
      (rc = report_join(p->card, sizeof p->card, folder, "DATACARD.md", err, n)) ||
      (rc = report_join(p->candidates, sizeof p->candidates, folder, "candidates.jsonl", err, n)) ||
      (rc = report_join(p->report, sizeof p->report, folder, "report.html", err, n)))
    return rc;
  if ((rc = report_write_dataset(st, run, p->dataset, &p->n_examples, err, n))) return rc;
  if ((rc = report_write_rejected(st, run, p->rejected, &p->n_rejected, err, n))) return rc;
  if ((rc = report_write_card(st, run, p->card, err, n))) return rc;
  if ((rc = compare_write_candidates(st, run, p->candidates, &p->n_candidates, err, n))) return rc;
  struct report_html_run one = {st, run, folder};
  return report_write_html(&one, 1, NULL, p->report, err, n);
}
