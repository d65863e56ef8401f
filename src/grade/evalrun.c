/* evalrun.c - `autodata eval`: k answers per example, each graded by the dataset's judge;
 * mean@k / best@k (rubric) or avg@k / pass@k (verifiable) with bootstrap CIs; resumable
 * through the eval's own store (every call is cached there). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/extract.h"
#include "grade/grade.h"
#include "report/bootstrap.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeu.h"
#include "util/version.h"

#define EVAL_ENDPOINT "eval"

struct sample {
  int state; /* 0 not started, 1 in flight, 2 done */
  int ok;
  double score;
  char *answer;
  char *error;
  json_t *detail;
};

struct ev {
  const struct grade_set *s;
  const struct grade_eval_opts *o;
  struct grade_caller caller;
  struct sample *sm; /* n * k */
  int k;
  size_t next; /* next sample index to start */
  size_t done, inflight;
  char label[32], jlabel[40];
  struct llm_params sp;
  int fatal;
  char fatal_msg[512];
};

struct tag {
  struct ev *ev;
  size_t idx;
};

static const struct grade_example *ex_of(const struct ev *ev, size_t idx) {
  return &ev->s->ex[idx / (size_t)ev->k];
}

static void finish(struct ev *ev, size_t idx, int ok, double score, const char *error) {
  struct sample *s = &ev->sm[idx];
  s->state = 2;
  s->ok = ok;
  s->score = score;
  if (error) s->error = xstrdup(error);
  ev->done++;
  ev->inflight--;
}

static void on_verdict(void *ud, const struct grade_verdict *v) {
  struct tag *t = ud;
  struct ev *ev = t->ev;
  size_t idx = t->idx;
  free(t);
  if (v->ok) ev->sm[idx].detail = v->detail ? json_incref((json_t *)v->detail) : NULL;
  finish(ev, idx, v->ok, v->score, v->error);
}

static void on_solver(void *ud, const struct grade_reply *r) {
  struct tag *t = ud;
  struct ev *ev = t->ev;
  size_t idx = t->idx;
  free(t);
  struct sample *s = &ev->sm[idx];
  if (!r->ok) {
    finish(ev, idx, 0, 0, r->error);
    return;
  }
  if (r->finish_reason && !strcmp(r->finish_reason, "length")) {
    finish(ev, idx, 0, 0, "the answer hit max_tokens and was cut off (raise --max-tokens)");
    return;
  }
  size_t n = 0; /* the judge grades the final answer, never the reasoning before it */
  const char *a = extract_final_text(r->content, strlen(r->content), &n);
  if (!a) {
    finish(ev, idx, 0, 0, "the reply ended inside its <think> block: no final answer");
    return;
  }
  s->answer = xstrndup(a, n);
  struct tag *jt = xcalloc(1, sizeof *jt);
  jt->ev = ev;
  jt->idx = idx;
  grade_judge_async(&ev->caller, ev->s, ex_of(ev, idx), s->answer, ev->jlabel,
                    (int)(idx % (size_t)ev->k), on_verdict, jt);
}

static void start(struct ev *ev, size_t idx) {
  const struct grade_example *e = ex_of(ev, idx);
  int j = (int)(idx % (size_t)ev->k);
  char err[512];
  ev->sm[idx].state = 1;
  ev->inflight++;
  json_t *msgs = grade_solver_messages(ev->s, e, err, sizeof err);
  if (!msgs) {
    finish(ev, idx, 0, 0, err);
    return;
  }
  struct llm_params p = ev->sp;
  p.has_seed = 1;
  p.seed = grade_seed(ev->s, e, ev->label, j);
  json_t *body = llm_request_build(ev->o->model, msgs, &p);
  json_decref(msgs);
  if (!body) {
    finish(ev, idx, 0, 0, "could not build the solver request (a model name that is not UTF-8?)");
    return;
  }
  struct tag *t = xcalloc(1, sizeof *t);
  t->ev = ev;
  t->idx = idx;
  int rc = grade_call(&ev->caller, EVAL_ENDPOINT, ev->label, e->source_id, e->round, body,
                      on_solver, t);
  json_decref(body);
  if (rc) {
    free(t);
    finish(ev, idx, 0, 0, llm_client_errmsg(ev->caller.llm));
  }
}

static json_t *ci_json(const double *x, size_t n, uint64_t seed) {
  struct boot_ci ci;
  boot_mean_ci(x, n, BOOT_DEFAULT_RESAMPLES, BOOT_DEFAULT_LEVEL, seed, &ci);
  if (!n) return json_pack("{s:n,s:n,s:n,s:i}", "est", "lo", "hi", "n", 0);
  return json_pack("{s:f,s:f,s:f,s:I}", "est", jx_round6(ci.est), "lo", jx_round6(ci.lo), "hi",
                   jx_round6(ci.hi), "n", (json_int_t)ci.n);
}

/* The metric names for k: rubric mean@k / best@k, verifiable avg@k / pass@k. */
static void metric_names(enum cand_task t, int k, char mean[32], char best[32]) {
  int v = t == CAND_TASK_VERIFIABLE;
  snprintf(mean, 32, "%s@%d", v ? "avg" : "mean", k);
  snprintf(best, 32, "%s@%d", v ? "pass" : "best", k);
}

/* Write eval.jsonl and summary.json; the summary (new reference) into *out. */
static int write_outputs(struct ev *ev, json_t **out, char *err, size_t errlen) {
  const struct grade_set *s = ev->s;
  int k = ev->k;
  char mname[32], bname[32];
  metric_names(s->task, k, mname, bname);
  struct buf lines = BUF_INIT;
  double *means = xcalloc(s->n + 1, sizeof *means), *bests = xcalloc(s->n + 1, sizeof *bests);
  size_t scored = 0, sample_errors = 0;
  json_t *first_error = NULL;
  for (size_t i = 0; i < s->n; i++) {
    const struct grade_example *e = &s->ex[i];
    double sc[GRADE_MAX_K];
    int n = 0;
    json_t *scores = json_array(), *errors = json_array(), *details = json_array();
    json_t *answers = json_array();
    for (int j = 0; j < k; j++) {
      struct sample *m = &ev->sm[i * (size_t)k + (size_t)j];
      if (m->ok) {
        sc[n++] = m->score;
        json_array_append_new(scores, json_real(jx_round6(m->score)));
      } else {
        json_array_append_new(scores, json_null());
        json_array_append_new(
            errors, json_pack("{s:i,s:s}", "sample", j, "error", m->error ? m->error : "not run"));
        sample_errors++;
        if (!first_error) first_error = json_string(m->error ? m->error : "not run");
      }
      json_array_append(details, m->detail ? m->detail : json_null());
      json_array_append_new(answers, m->answer ? jx_string_lossy(m->answer, strlen(m->answer))
                                               : json_null());
    }
    struct grade_metrics gm;
    grade_metrics_of(sc, n, &gm);
    json_t *l = json_pack("{s:s,s:s,s:o,s:i}", "id", e->id, "source_id", e->source_id, "scores",
                          scores, "n", n);
    json_object_set_new(l, mname, n ? json_real(jx_round6(gm.mean)) : json_null());
    json_object_set_new(l, bname, n ? json_real(jx_round6(gm.best)) : json_null());
    if (json_array_size(errors)) json_object_set_new(l, "errors", errors);
    else json_decref(errors);
    json_object_set_new(l, "detail", details);
    json_object_set_new(l, "answers", answers);
    if (n) {
      means[scored] = gm.mean;
      bests[scored] = gm.best;
      scored++;
    }
    char *t = json_dumps(l, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(l);
    if (t) {
      int brc = buf_append(&lines, t, strlen(t));
      if (!brc) brc = buf_append(&lines, "\n", 1);
      free(t);
      if (brc) break;
    }
  }
  json_t *metrics = json_object();
  json_object_set_new(metrics, mname, ci_json(means, scored, s->seed ^ 0x6d65616eULL));
  json_object_set_new(metrics, bname, ci_json(bests, scored, s->seed ^ 0x62657374ULL));
  free(means);
  free(bests);
  json_t *sum = json_pack(
      "{s:s,s:s,s:s,s:i,s:s,s:I,s:I,s:I,s:o,s:{s:s,s:s},s:{s:I,s:I,s:I},s:s,s:s}", "dataset",
      s->dataset_path, "model", ev->o->model, "base_url", ev->o->base_url, "k", k, "task",
      cand_task_name(s->task), "examples", (json_int_t)s->n, "scored", (json_int_t)scored,
      "sample_errors", (json_int_t)sample_errors, "metrics", metrics, "judge", "model",
      s->judge_model, "endpoint", s->judge_url, "calls", "sent", (json_int_t)ev->caller.sent,
      "cache_hits", (json_int_t)ev->caller.cache_hits, "failed", (json_int_t)ev->caller.failed,
      "seeds", ev->label, "version", ad_version());
  if (first_error) json_object_set_new(sum, "first_error", first_error);
  char path[4200];
  int rc = 0;
  snprintf(path, sizeof path, "%s/eval.jsonl", ev->o->out_dir);
  rc = fs_write_atomic(path, lines.data, lines.len);
  buf_release(&lines);
  if (!rc) {
    char *t = json_dumps(sum, JSON_INDENT(2) | JSON_SORT_KEYS);
    snprintf(path, sizeof path, "%s/summary.json", ev->o->out_dir);
    rc = fs_write_atomic(path, t ? t : "{}", t ? strlen(t) : 2);
    free(t);
  }
  if (rc) {
    ad_set_err(err, errlen, "cannot write %s: %s", path, strerror(errno));
    json_decref(sum);
    return rc;
  }
  *out = sum;
  return 0;
}

/* The eval's identity: what decides its answers and grades. */
static int begin_store(struct ev *ev, store *st, char *err, size_t errlen) {
  const struct grade_set *s = ev->s;
  json_t *id = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s,s:f,s:i}", "dataset_sha256", s->dataset_sha,
                         "model", ev->o->model, "k", ev->k, "seeds", ev->label, "judge_model",
                         s->judge_model, "judge_prompt", s->judge_prompt_sha, "temperature",
                         ev->sp.temperature, "max_tokens", ev->sp.max_tokens);
  char *canon = jx_dump_canonical(id);
  char sha[65];
  sha256_hex(canon ? canon : "", canon ? strlen(canon) : 0, sha);
  free(canon);
  json_t *hashes = json_pack("{s:s}", "judge", s->judge_prompt_sha);
  char name[300];
  snprintf(name, sizeof name, "eval:%s", ev->o->model);
  json_t *extra = json_pack("{s:O,s:s}", "eval", id, "dataset", s->dataset_path);
  struct store_run_info info = {
      name, sha,  hashes, s->seed, ad_version(), ev->o->command_line ? ev->o->command_line : "",
      NULL, extra};
  int resumed = 0;
  int rc = store_run_begin(st, &info, 0, &ev->caller.run, &resumed);
  if (rc == AD_EMISMATCH)
    ad_set_err(err, errlen,
               "%s holds an eval with other settings (dataset, model, k, seeds or judge): give "
               "another --out",
               store_path(st));
  else if (rc) ad_set_err(err, errlen, "%s", store_errmsg(st));
  else if (resumed && !ev->o->quiet) log_info("resuming the eval in %s", store_path(st));
  json_decref(hashes);
  json_decref(extra);
  json_decref(id);
  return rc;
}

int grade_eval_run(const struct grade_set *s, const struct grade_eval_opts *o, json_t **summary,
                   char *err, size_t errlen) {
  *summary = NULL;
  struct ev ev;
  memset(&ev, 0, sizeof ev);
  size_t total = 0;
  ev.s = s;
  ev.o = o;
  ev.k = o->k;
  snprintf(ev.label, sizeof ev.label, "%s", o->seed_role ? o->seed_role : "eval");
  snprintf(ev.jlabel, sizeof ev.jlabel, "judge_%s", ev.label);
  llm_params_init(&ev.sp);
  ev.sp.temperature = o->temperature != LLM_UNSET ? o->temperature : s->solver_temperature;
  ev.sp.top_p = s->solver_top_p;
  ev.sp.max_tokens = o->max_tokens > 0 ? o->max_tokens : s->solver_max_tokens;
  int rc = fs_mkdirs(o->out_dir);
  if (rc) {
    ad_set_err(err, errlen, "cannot create %s: %s", o->out_dir, strerror(errno));
    return rc;
  }
  char spath[4200];
  snprintf(spath, sizeof spath, "%s/store.db", o->out_dir);
  store *st = NULL;
  if ((rc = store_open(spath, 0, &st))) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    store_close(st);
    return rc;
  }
  llm_client *llm = llm_client_new();
  llm_client_set_seed(llm, s->seed);
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = EVAL_ENDPOINT;
  cfg.base_urls[0] = o->base_url;
  cfg.n_urls = 1;
  cfg.api_key_env = o->api_key_env;
  if ((rc = llm_client_add_endpoint(llm, &cfg)) ||
      (rc = llm_client_add_endpoint(llm, &s->judge_cfg))) {
    ad_set_err(err, errlen, "%s", llm_client_errmsg(llm));
    goto out;
  }
  ev.caller.llm = llm;
  ev.caller.st = st;
  if ((rc = begin_store(&ev, st, err, errlen))) goto out;
  total = s->n * (size_t)ev.k;
  ev.sm = xcalloc(total + 1, sizeof *ev.sm);
  size_t limit = o->concurrency > 0 ? (size_t)o->concurrency : 64;
  int64_t last = time_now_ms();
  while (ev.done < total) {
    while (ev.next < total && ev.inflight < limit) start(&ev, ev.next++);
    int n = grade_caller_pump(&ev.caller, 100);
    if (n < 0) {
      rc = n;
      ad_set_err(err, errlen, "%s", llm_client_errmsg(llm));
      goto out;
    }
    if ((rc = store_maybe_flush(st, time_now_ms()))) {
      ad_set_err(err, errlen, "%s", store_errmsg(st));
      goto out;
    }
    if (!o->quiet && time_now_ms() - last >= 5000) {
      last = time_now_ms();
      log_info("eval: %zu/%zu answers graded (%lld calls sent, %lld from the store)", ev.done,
               total, (long long)ev.caller.sent, (long long)ev.caller.cache_hits);
    }
  }
  if ((rc = store_flush(st))) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    goto out;
  }
  if (store_run_set_status(st, ev.caller.run, "done") || store_flush(st)) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    rc = AD_EIO;
    goto out;
  }
  rc = write_outputs(&ev, summary, err, errlen);
out:
  llm_client_free(llm);
  if (store_flush(st) && !rc) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    rc = AD_EIO;
  }
  store_close(st);
  if (ev.sm)
    for (size_t i = 0; i < total; i++) {
      free(ev.sm[i].answer);
      free(ev.sm[i].error);
      json_decref(ev.sm[i].detail);
    }
  free(ev.sm);
  return rc;
}

int grade_eval_read(const char *path, json_t **lines, char *err, size_t errlen) {
  *lines = NULL;
  char file[4200];
  size_t pl = strlen(path);
  if (pl > 6 && !strcmp(path + pl - 6, ".jsonl")) snprintf(file, sizeof file, "%s", path);
  else snprintf(file, sizeof file, "%s/eval.jsonl", path);
  char *text = NULL;
  size_t len = 0;
  int rc = fs_read_all(file, 1u << 30, &text, &len);
  if (rc) {
    ad_set_err(err, errlen, "cannot read %s: %s", file, strerror(errno));
    return rc;
  }
  json_t *a = json_array();
  size_t line = 0;
  for (char *p = text, *end = text + len; p < end;) {
    char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    if (n) {
      json_error_t je;
      json_t *o = json_loadb(p, n, 0, &je);
      if (!json_is_object(o) || !jx_str(o, "id")) {
        ad_set_err(err, errlen, "%s:%zu: not an eval line (a JSON object with \"id\")", file, line);
        json_decref(o);
        json_decref(a);
        free(text);
        return AD_EPARSE;
      }
      json_array_append_new(a, o);
    }
    p = nl ? nl + 1 : end;
  }
  free(text);
  *lines = a;
  return 0;
}

/* The metric keys of an eval line ("mean@3", "best@3", ...): every key with an '@'. */
json_t *grade_eval_compare(const json_t *a, const json_t *b, int resamples, uint64_t seed) {
  size_t na = json_array_size(a);
  json_t *out = json_object(), *metrics = json_object();
  const json_t *first = json_array_get(a, 0);
  const char *key;
  json_t *v;
  size_t pairs = 0;
  json_object_foreach((json_t *)first, key, v) {
    if (!strchr(key, '@')) continue;
    double *xa = xcalloc(na + 1, sizeof *xa), *xb = xcalloc(na + 1, sizeof *xb);
    size_t n = 0;
    for (size_t i = 0; i < na; i++) {
      const json_t *la = json_array_get(a, i);
      const char *id = jx_str(la, "id");
      const json_t *va = json_object_get(la, key);
      if (!json_is_number(va)) continue;
      for (size_t j = 0; j < json_array_size(b); j++) {
        const json_t *lb = json_array_get(b, j);
        if (strcmp(jx_str(lb, "id"), id)) continue;
        const json_t *vb = json_object_get(lb, key);
        if (json_is_number(vb)) {
          xa[n] = json_number_value(va);
          xb[n] = json_number_value(vb);
          n++;
        }
        break;
      }
    }
    struct grade_paired pd;
    grade_paired_diff(xa, xb, n, resamples, seed, &pd);
    double ma = boot_mean(xa, n), mb = boot_mean(xb, n);
    free(xa);
    free(xb);
    if (n > pairs) pairs = n;
    json_object_set_new(metrics, key,
                        n ? json_pack("{s:f,s:f,s:f,s:f,s:f,s:i,s:i,s:i,s:I}", "a", jx_round6(ma),
                                      "b", jx_round6(mb), "diff", jx_round6(pd.est), "lo",
                                      jx_round6(pd.lo), "hi", jx_round6(pd.hi), "a_wins", pd.a_wins,
                                      "b_wins", pd.b_wins, "ties", pd.ties, "n", (json_int_t)n)
                          : json_pack("{s:I}", "n", (json_int_t)0));
  }
  json_object_set_new(out, "pairs", json_integer((json_int_t)pairs));
  json_object_set_new(out, "metrics", metrics);
  return out;
}
