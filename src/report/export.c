/* export.c - training exports of a run's dataset: jsonl, chat (SFT), rl (GRPO),
 * with an optional seeded held-out split. See report.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/report.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

static const char *const k_formats[] = {"jsonl", "chat", "rl"};

int report_format_parse(const char *name, enum report_format *out) {
  for (int i = 0; i < 3; i++)
    if (name && !strcmp(name, k_formats[i])) {
      *out = (enum report_format)i;
      return 0;
    }
  return AD_EINVAL;
}

const char *report_format_name(enum report_format f) {
  return (unsigned)f < 3 ? k_formats[f] : "?";
}

/* ======== one line ======== */

static int is_verifiable(const json_t *ex) {
  const char *task = jx_str(ex, "task");
  if (task) return !strcmp(task, "verifiable");
  return !json_object_get(ex, "reference_answer") && json_object_get(ex, "answer");
}

/* The user turn: context + blank line + question, or the question alone. */
static int user_content(const json_t *ex, struct buf *b) {
  const char *q = jx_str(ex, "question");
  if (!q || !*q) return AD_EINVAL;
  const char *ctx = jx_str(ex, "context");
  int rc = 0;
  if (ctx && *ctx) {
    rc = buf_puts(b, ctx);
    if (!rc) rc = buf_puts(b, "\n\n");
  }
  if (!rc) rc = buf_puts(b, q);
  return rc;
}

int report_export_line(const json_t *ex, enum report_format f, struct buf *out) {
  if (!json_is_object(ex)) return AD_EINVAL;
  if (f == REPORT_FMT_JSONL) {
    char *t = jx_dump_canonical(ex);
    if (!t) return AD_EINTERNAL;
    int rc = buf_puts(out, t);
    free(t);
    return rc;
  }
  int verifiable = is_verifiable(ex);
  const json_t *answer = json_object_get(ex, verifiable ? "answer" : "reference_answer");
  if (!answer || json_is_null(answer)) return AD_EINVAL;
  const json_t *id = json_object_get(ex, "id");
  struct buf user;
  buf_init(&user, 0);
  json_t *o = NULL;
  char *text = NULL;
  int rc = user_content(ex, &user);
  if (rc) goto cleanup;
  rc = AD_EINTERNAL; /* jansson refused a value below (not for memory: that aborts) */
  if (f == REPORT_FMT_CHAT) {
    json_t *a = json_is_string(answer) ? json_incref((json_t *)answer) : NULL;
    if (!a) { /* a number or other JSON answer: its JSON text */
      char *d = jx_dump_canonical(answer);
      a = d ? json_string(d) : NULL;
      free(d);
    }
    if (!a) goto cleanup;
    o = json_pack("{s:O?, s:[{s:s, s:s}, {s:s, s:o}]}", "id", id, "messages", "role", "user",
                  "content", buf_str(&user), "role", "assistant", "content", a);
  } else if (f == REPORT_FMT_RL) {
    json_t *reward;
    if (verifiable) reward = json_pack("{s:s, s:O}", "type", "verifiable", "answer", answer);
    else
      reward = json_pack("{s:s, s:O, s:O}", "type", "rubric", "rubric",
                         json_object_get(ex, "rubric") ? json_object_get(ex, "rubric")
                                                       : json_null(),
                         "reference_answer", answer);
    if (!reward) goto cleanup;
    o = json_pack("{s:O?, s:s, s:o}", "id", id, "prompt", buf_str(&user), "reward", reward);
  } else {
    rc = AD_EINVAL;
    goto cleanup;
  }
  if (!o || !(text = jx_dump_canonical(o))) goto cleanup;
  rc = buf_puts(out, text);
cleanup:
  free(text);
  json_decref(o);
  buf_release(&user);
  return rc;
}

/* ======== the export ======== */

struct ids {
  char **v;
  size_t n, cap;
  const json_t *removed; /* the analysis's removals (report_removals), or NULL */
};

static void ids_free(struct ids *s) {
  for (size_t i = 0; i < s->n; i++) free(s->v[i]);
  free(s->v);
}

static int collect_id(void *ud, const json_t *row) {
  struct ids *s = ud;
  const char *id = jx_str(row, "example_id");
  if (!id || (s->removed && json_object_get(s->removed, id))) return 0;
  if (s->n == s->cap) {
    size_t nc = s->cap ? 2 * s->cap : 256;
    s->v = xrealloc(s->v, nc * sizeof *s->v);
    s->cap = nc;
  }
  s->v[s->n++] = xstrdup(id);
  return 0;
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

struct wctx {
  enum report_format fmt;
  struct report_file *train, *held;
  char **held_ids; /* sorted */
  size_t n_held_ids;
  size_t n_train, n_held;
  const json_t *removed;
  struct buf line;
  int rc;
  char *err;
  size_t n;
};

static int write_row(void *ud, const json_t *row) {
  struct wctx *c = ud;
  const char *id = jx_str(row, "example_id");
  if (!id || (c->removed && json_object_get(c->removed, id))) return 0;
  buf_reset(&c->line);
  int rc = report_export_line(json_object_get(row, "example"), c->fmt, &c->line);
  if (rc == AD_EINVAL)
    return c->rc = report_err(c->err, c->n, AD_ECORRUPT,
                              "example '%s' has no question or no %s: cannot export it as %s", id,
                              "answer", report_format_name(c->fmt));
  if (!rc) rc = buf_putc(&c->line, '\n');
  if (rc)
    return c->rc = report_err(c->err, c->n, rc, "cannot export '%s': %s", id, ad_strerror(rc));
  int held = c->n_held_ids &&
             bsearch(&id, c->held_ids, c->n_held_ids, sizeof *c->held_ids, cmp_str) != NULL;
  rc = report_file_write(held ? c->held : c->train, c->line.data, c->line.len, c->err, c->n);
  if (rc) return c->rc = rc;
  if (held) c->n_held++;
  else c->n_train++;
  return 0;
}

int report_export(store *st, store_id run, const char *dir, const struct report_export_opts *opts,
                  struct report_export_result *res, char *err, size_t n) {
  struct report_export_result local;
  struct report_export_result *r = res ? res : &local;
  memset(r, 0, sizeof *r);
  struct ids ids = {NULL, 0, 0, NULL};
  json_t *removed = NULL;
  struct report_file train = {0}, held = {0};
  struct wctx c;
  memset(&c, 0, sizeof c);
  buf_init(&c.line, AD_MAX_LINE);
  json_t *row = NULL;
  char **order = NULL;
  int rc;

  if (!dir || !*dir) {
    rc = report_err(err, n, AD_EINVAL, "no output folder given (--out DIR)");
    goto cleanup;
  }
  if (!opts || (unsigned)opts->format > REPORT_FMT_RL) {
    rc = report_err(err, n, AD_EINVAL, "unknown export format %d (use jsonl, chat or rl)",
                    opts ? (int)opts->format : -1);
    goto cleanup;
  }
  if ((rc = report_run_row(st, run, &row, err, n))) goto cleanup;
  run = (store_id)jx_int(row, "id", run);
  r->seed = opts->seed_set ? opts->seed : (uint64_t)jx_int(row, "seed", 0);

  if ((rc = report_removals(st, run, &removed, err, n))) goto cleanup;
  ids.removed = c.removed = removed; /* what the analysis removed is not exported */
  rc = store_examples_each(st, run, collect_id, &ids);
  if (rc) {
    report_err(err, n, rc, "%s", store_errmsg(st));
    goto cleanup;
  }
  if (!ids.n) {
    rc = report_err(err, n, AD_ENOTFOUND,
                    "run %lld of store %s has no accepted examples yet (see `autodata status "
                    "--store %s`)",
                    (long long)run, store_path(st), store_path(st));
    goto cleanup;
  }
  if (opts->holdout >= ids.n) {
    rc = report_err(err, n, AD_EINVAL,
                    "--holdout %zu is too large: the dataset has %zu examples and at least one "
                    "must be left to train on",
                    opts->holdout, ids.n);
    goto cleanup;
  }
  qsort(ids.v, ids.n, sizeof *ids.v, cmp_str); /* the store's order already; make sure */

  if (opts->holdout) {
    order = xmalloc(ids.n * sizeof *order);
    memcpy(order, ids.v, ids.n * sizeof *order);
    struct rng g;
    rng_seed(&g, rng_derive(r->seed, "holdout"));
    for (size_t i = ids.n - 1; i > 0; i--) {
      size_t j = (size_t)rng_below(&g, (uint64_t)i + 1);
      char *t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
    qsort(order, opts->holdout, sizeof *order, cmp_str);
    c.held_ids = order;
    c.n_held_ids = opts->holdout;
  }

  if ((rc = fs_mkdirs(dir))) {
    rc = report_err(err, n, rc, "cannot create the output folder %s: %s", dir, strerror(errno));
    goto cleanup;
  }
  if ((rc = report_join(r->train, sizeof r->train, dir, "train.jsonl", err, n))) goto cleanup;
  char heldpath[sizeof r->heldout];
  if ((rc = report_join(heldpath, sizeof heldpath, dir, "heldout.jsonl", err, n))) goto cleanup;
  if ((rc = report_file_open(&train, r->train, err, n))) goto cleanup;
  if (opts->holdout && (rc = report_file_open(&held, heldpath, err, n))) goto cleanup;

  c.fmt = opts->format;
  c.train = &train;
  c.held = &held;
  c.err = err;
  c.n = n;
  rc = store_examples_each(st, run, write_row, &c);
  if (rc) {
    if (!c.rc) report_err(err, n, rc, "%s", store_errmsg(st));
    rc = c.rc ? c.rc : rc;
    goto cleanup;
  }
  if ((rc = report_file_commit(&train, err, n))) goto cleanup;
  if (opts->holdout) {
    if ((rc = report_file_commit(&held, err, n))) goto cleanup;
    memcpy(r->heldout, heldpath, sizeof heldpath);
  } else if (unlink(heldpath) && errno != ENOENT) {
    rc = report_err(err, n, AD_EIO, "cannot remove the stale %s: %s", heldpath, strerror(errno));
    goto cleanup;
  }
  r->n_train = c.n_train;
  r->n_heldout = c.n_held;
cleanup:
  report_file_abort(&train);
  report_file_abort(&held);
  buf_release(&c.line);
  free(order);
  ids_free(&ids);
  json_decref(removed);
  json_decref(row);
  return rc;
}
