/* optimize.c - the optimiser's algorithm (optimize.h, docs/optimize.md).
 *
 * One iteration, in order (every draw seeded from the recipe's seed and the iteration):
 *   1. parent: Boltzmann sampling over the admitted variants' validation means (or the
 *      Pareto frontier; or, every merge_every-th iteration, a merge of two lineages);
 *   2. the parent plays a train minibatch (the loop on those sources, its prompts in a copy
 *      of the recipe); its candidates, answers and verdicts are the trajectories;
 *   3. the analyzer reads them (and the history log) and writes a root-cause analysis;
 *   4. the implementer reads the analysis, the history and the current prompts and
 *      returns new prompt texts as JSON;
 *   5. the lock (lock.h) checks the proposal; a refused one is recorded and never run;
 *   6. parent and mutant play the validation split; the parent's score joins its
 *      accumulated scores; the mutant is admitted only when its score strictly exceeds
 *      the parent's mean;
 *   7. a one-paragraph summary goes into the history log.
 * Each iteration is a state machine (struct iter) advanced on the one event loop: its
 * evaluations are runs in steps (run_start / run_step) on the optimiser's client and store,
 * its analyzer and implementer calls asynchronous calls on the same client. Up to
 * optimize.parallel iterations are in flight: iteration n starts on the population after
 * iterations 1..n-P are applied, and iterations are applied in their order, so the lineage
 * does not depend on timing. The budgets are checked at each application; a signal stops
 * everything at once (the calls in flight finish). The test split is read only after the
 * last iteration.
 */
#include "optimize/optimize.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/callrec.h"
#include "loop/method.h"
#include "loop/run.h"
#include "optimize/lock.h"
#include "optimize/opt_internal.h"
#include "report/bootstrap.h"
#include "source/source.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/rng.h"
#include "util/version.h"

static const char *const split_names[3] = {"train", "val", "test"};

double opt_val_mean(const struct variant *v) {
  if (!v->n_val) return NAN;
  double s = 0;
  for (int i = 0; i < v->n_val; i++) s += v->val[i];
  return s / v->n_val;
}

/* ---- variants ------------------------------------------------------------------- */

static void variant_free(struct variant *v) {
  if (!v) return;
  json_decref(v->prompts);
  free(v->diff);
  free(v->rationale);
  free(v->val);
  free(v->vs_sum);
  free(v->vs_n);
  free(v->test_src);
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (v->has[i]) {
      free(v->compiled[i].path);
      free(v->compiled[i].text);
      tpl_prompt_release(&v->compiled[i].tpl);
    }
  free(v);
}

/* A line diff of a against b: the common head and tail kept out, the middle as
 * "-" and "+" lines. */
static char *line_diff(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), h = 0;
  while (h < la && h < lb && a[h] == b[h]) h++;
  while (h > 0 && a[h - 1] != '\n') h--; /* back to a line start */
  size_t t = 0;
  while (t < la - h && t < lb - h && a[la - 1 - t] == b[lb - 1 - t]) t++;
  /* the tail starts a line in both texts */
  while (t > 0 &&
         !((la - t == h || a[la - t - 1] == '\n') && (lb - t == h || b[lb - t - 1] == '\n')))
    t--;
  struct buf out = BUF_INIT;
  const char *parts[2] = {a + h, b + h};
  size_t lens[2] = {la - h - t, lb - h - t};
  for (int k = 0; k < 2; k++) {
    const char *p = parts[k], *end = parts[k] + lens[k];
    while (p < end) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
      if (buf_putc(&out, k ? '+' : '-') || buf_append(&out, p, n) || buf_putc(&out, '\n')) break;
      p += n + 1;
    }
  }
  return buf_take(&out, NULL);
}

static char *prompts_diff(const json_t *parent, const json_t *child) {
  struct buf out = BUF_INIT;
  const char *k;
  json_t *v;
  json_object_foreach((json_t *)child, k, v) {
    const char *a = json_string_value(json_object_get(parent, k)), *b = json_string_value(v);
    if (!a || !b || !strcmp(a, b)) continue;
    char *d = line_diff(a, b);
    if (buf_printf(&out, "--- %s\n+++ %s\n%s", k, k, d)) {
      free(d);
      break;
    }
    free(d);
  }
  return buf_take(&out, NULL);
}

/* A variant (taking prompts), not yet in the population's list (variant_add). */
static struct variant *variant_make(struct opt *x, json_t *prompts, const struct variant *parent,
                                    int iteration, const char *rationale) {
  struct variant *v = xcalloc(1, sizeof *v);
  v->prompts = prompts;
  opt_variant_sha(prompts, v->sha);
  snprintf(v->parent, sizeof v->parent, "%s", parent ? parent->sha : "");
  v->iteration = iteration;
  v->diff = parent ? prompts_diff(parent->prompts, prompts) : xstrdup("");
  v->rationale = xstrdup(rationale ? rationale : "");
  v->test = NAN;
  const char *k;
  json_t *t;
  json_object_foreach(prompts, k, t) {
    int i = 0;
    while (i < RECIPE_N_ROLES && strcmp(k, recipe_role_name((enum recipe_role_id)i))) i++;
    if (i == RECIPE_N_ROLES) continue;
    struct recipe_prompt *p = &v->compiled[i];
    p->text = xstrdup(json_string_value(t));
    p->len = strlen(p->text);
    sha256_hex(p->text, p->len, p->sha256);
    p->path = xasprintf("%s/%.12s/%s.md", x->out_dir, v->sha, k);
    if (tpl_prompt_compile(p->text, p->len, p->path, &p->tpl, NULL, 0)) { /* checked by the lock */
      free(p->text);
      free(p->path);
      memset(p, 0, sizeof *p);
      continue;
    }
    v->has[i] = 1;
  }
  return v;
}

static void variant_add(struct opt *x, struct variant *v) {
  x->vars = xrealloc(x->vars, (size_t)(x->n_vars + 1) * sizeof *x->vars);
  x->vars[x->n_vars++] = v;
}

static struct variant *variant_find(struct opt *x, const char *sha) {
  for (int i = 0; i < x->n_vars; i++)
    if (!strcmp(x->vars[i]->sha, sha)) return x->vars[i];
  return NULL;
}

static int put_variant(struct opt *x, const struct variant *v, const char *status,
                       const char *reason) {
  json_t *val = json_array();
  for (int i = 0; i < v->n_val; i++) json_array_append_new(val, json_real(jx_round6(v->val[i])));
  json_t *rec = json_pack("{s:s,s:s?,s:i,s:s,s:s,s:s,s:O,s:o}", "sha256", v->sha, "parent",
                          v->parent[0] ? v->parent : NULL, "iteration", v->iteration, "status",
                          status, "diff", v->diff, "rationale", v->rationale, "prompts", v->prompts,
                          "validation", val);
  if (reason) json_object_set_new(rec, "reason", json_string(reason));
  if (v->parent2[0]) json_object_set_new(rec, "parent2", json_string(v->parent2));
  int rc = store_opt_put(x->st, STORE_OPT_VARIANTS, x->id, v->sha, rec);
  json_decref(rec);
  return rc;
}

/* ---- evaluations: the loop on a subset of sources with a variant's prompts ---------- */

struct src_acc {
  const char *id;
  int cands, passed, accepted;
  double gap_sum;
  int gap_n;
};

struct collect {
  store *st;
  struct src_acc *acc;
  size_t n;
  struct buf *traj; /* NULL: no trajectories */
  json_t *answers;  /* "source|round" -> [weak answers], judge verdicts */
};

static struct src_acc *acc_find(struct collect *c, const char *id) {
  for (size_t i = 0; i < c->n; i++)
    if (!strcmp(c->acc[i].id, id)) return &c->acc[i];
  return NULL;
}

/* The content of a stored reply body, truncated to max characters (new string). */
static char *reply_text(const char *body, size_t max) {
  struct llm_reply rep;
  memset(&rep, 0, sizeof rep);
  char *s = NULL;
  if (body && !llm_reply_parse(body, strlen(body), &rep, NULL, 0) && rep.content) {
    size_t n = strlen(rep.content);
    if (n > max) n = max;
    s = xstrndup(rep.content, n);
    for (char *p = s; *p; p++)
      if (*p == '\n') *p = ' ';
  }
  llm_reply_release(&rep);
  return s;
}

static int collect_call(void *ud, const json_t *row) {
  struct collect *c = ud;
  const char *src = jx_str(row, "source_id"), *role = jx_str(row, "role");
  if (!src || !role) return 0;
  char key[300];
  snprintf(key, sizeof key, "%s|%lld", src, jx_int(row, "round", 0));
  json_t *e = json_object_get(c->answers, key);
  if (!e) {
    e = json_pack("{s:[],s:[]}", "weak", "judge");
    json_object_set_new(c->answers, key, e);
  }
  int weak = !strcmp(role, "weak");
  json_t *arr = json_object_get(e, weak ? "weak" : "judge");
  /* a reply answered from the cache is not stored again with its row: read it there */
  const char *body = jx_str(row, "reply"), *ckey = jx_str(row, "cache_key");
  char *cached = NULL;
  if (!body && ckey && !store_cache_get(c->st, ckey, &cached, NULL)) body = cached;
  char *t = reply_text(body, weak ? 400 : 300);
  if (t) json_array_append_new(arr, jx_string_lossy(t, strlen(t)));
  free(t);
  free(cached);
  return 0;
}

static int cmp_json_str(const void *a, const void *b) {
  return strcmp(json_string_value(*(json_t *const *)a), json_string_value(*(json_t *const *)b));
}

/* Each source and round's answers and verdicts in a fixed order (sorted, at most 3 of
 * each): the trajectories do not depend on the order the calls completed in. */
static void sort_answers(json_t *answers) {
  const char *k;
  json_t *e;
  json_object_foreach(answers, k, e) {
    static const char *const parts[] = {"weak", "judge"};
    for (int p = 0; p < 2; p++) {
      json_t *a = json_object_get(e, parts[p]);
      size_t n = json_array_size(a);
      json_t **v = xcalloc(n + 1, sizeof *v);
      for (size_t i = 0; i < n; i++) v[i] = json_incref(json_array_get(a, i));
      qsort(v, n, sizeof *v, cmp_json_str);
      json_array_clear(a);
      for (size_t i = 0; i < n; i++) {
        if (i < 3) json_array_append(a, v[i]);
        json_decref(v[i]);
      }
      free(v);
    }
  }
}

static void put_scores(struct buf *b, const char *name, const json_t *a) {
  if (!json_array_size(a)) return;
  int rc = buf_printf(b, "  %s scores:", name);
  size_t i;
  json_t *v;
  json_array_foreach(a, i, v) if (!rc) rc = buf_printf(b, " %.2f", json_number_value(v));
  if (!rc) rc = buf_putc(b, '\n');
  (void)rc; /* a trajectory past its cap is cut */
}

static int collect_cand(void *ud, const json_t *row) {
  struct collect *c = ud;
  const char *src = jx_str(row, "source_id"), *verdict = jx_str(row, "verdict");
  struct src_acc *a = src ? acc_find(c, src) : NULL;
  if (!a) return 0;
  a->cands++;
  int passed = verdict && !strcmp(verdict, "accepted");
  const json_t *rec = json_object_get(row, "record");
  if (passed) {
    a->passed++;
    a->accepted = 1;
  }
  const json_t *gap = json_object_get(json_object_get(rec, "stats"), "gap");
  if (json_is_number(gap)) {
    a->gap_sum += json_number_value(gap);
    a->gap_n++;
  }
  if (!c->traj) return 0;
  struct buf *b = c->traj;
  const char *reason = jx_str(row, "reason");
  const json_t *cand = json_object_get(rec, "candidate");
  int rc = buf_printf(b, "TRAJECTORY source=%s round=%lld verdict=%s reason=%s\n", src,
                      jx_int(row, "round", 0), verdict ? verdict : "?", reason ? reason : "none");
  if (!rc && jx_str(cand, "question"))
    rc = buf_printf(b, "  question: %s\n", jx_str(cand, "question"));
  if (!rc && jx_str(rec, "detail") && *jx_str(rec, "detail"))
    rc = buf_printf(b, "  detail: %s\n", jx_str(rec, "detail"));
  const json_t *qv = json_object_get(rec, "quality");
  if (!rc && jx_str(qv, "feedback") && !json_is_true(json_object_get(qv, "pass")))
    rc = buf_printf(b, "  quality verifier: %s\n", jx_str(qv, "feedback"));
  if (rc) return 0;
  put_scores(b, "weak", json_object_get(rec, "weak_scores"));
  put_scores(b, "strong", json_object_get(rec, "strong_scores"));
  char key[300];
  snprintf(key, sizeof key, "%s|%lld", src, jx_int(row, "round", 0));
  const json_t *e = json_object_get(c->answers, key);
  size_t i;
  json_t *v;
  json_array_foreach(json_object_get(e, "weak"), i,
                     v) if (buf_printf(b, "  weak answer: %s\n", json_string_value(v))) break;
  json_array_foreach(json_object_get(e, "judge"), i,
                     v) if (buf_printf(b, "  judge: %s\n", json_string_value(v))) break;
  return 0;
}

/* The per-source value of the objective (NAN: the source made no candidate). */
static double src_value(const struct opt *x, const struct src_acc *a) {
  if (!a->cands) return NAN;
  switch (x->cfg.objective) {
  case RECIPE_OPT_ACCEPTANCE: return a->accepted ? 1.0 : 0.0;
  case RECIPE_OPT_GAP: return a->gap_n ? a->gap_sum / a->gap_n : 0.0;
  default: return (double)a->passed / a->cands;
  }
}

struct eval_out {
  double score;  /* mean of the per-source values */
  double *src;   /* per-source values (sources with a value), owned */
  double *by_id; /* per source in the order evaluated, NAN when none, owned */
  size_t n_src;
  char *traj; /* trajectories (want_traj), owned */
};

static void eval_out_release(struct eval_out *e) {
  free(e->src);
  free(e->by_id);
  free(e->traj);
  memset(e, 0, sizeof *e);
}

#define OPT_STOPPED 1 /* an evaluation or call was stopped (signal, a run's own stop) */

/* An evaluation in flight (eval_start .. eval_poll returned 0). */
struct eval {
  struct opt *x;
  struct variant *v;
  int split, k, want_traj;
  const char *const *ids;
  size_t n;
  struct recipe rc; /* x->rc with the variant's prompts and the evaluation's seed */
  struct run_opts ro;
  struct run_summary rs;
  struct run *run; /* NULL once over */
  int rc_;         /* once over: 0 (out), OPT_STOPPED, or an AD_E* code (err) */
  char err[1024];
  struct eval_out out;
  struct eval *next; /* x->evals */
};

/* The analyzer's or implementer's call (ocall_start .. done). */
struct ocall {
  struct opt *x;
  const struct recipe_opt_role *ro;
  struct callrec rec;
  int begun; /* rec is set */
  struct callrec_id id;
  json_t *body;
  int done;
  int rc_; /* once done: 0 (content), OPT_STOPPED, or an AD_E* code (err) */
  char err[1024];
  char *content;
  int64_t tokens;
  double cost;
};

/* Stop the whole optimisation: no new evaluation or model call starts; the runs in flight
 * stop like at a first Ctrl-C (their calls in flight finish). */
static void opt_stop(struct opt *x, const char *reason) {
  if (!x->sum->stopped) {
    x->sum->stopped = 1;
    snprintf(x->sum->stop_reason, sizeof x->sum->stop_reason, "%.200s", reason);
  }
  x->interrupted = 1;
  x->stopping = 1;
  for (struct eval *e = x->evals; e; e = e->next)
    if (e->run) run_stop(e->run, reason);
}

/* An evaluation: the loop (run_start/run_step on the optimiser's client and store) on the
 * split's sources with the variant's prompts and the seed
 * rng_derive(seed, "optimize|<sha>|<split>|<k>"). */
static struct eval *eval_start(struct opt *x, struct variant *v, int split, int k,
                               const char *const *ids, size_t n, int want_traj) {
  struct eval *e = xcalloc(1, sizeof *e);
  e->x = x;
  e->v = v;
  e->split = split;
  e->k = k;
  e->ids = ids;
  e->n = n;
  e->want_traj = want_traj;
  e->rc = *x->rc; /* a shallow copy: the variant's prompts and this evaluation's seed */
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (v->has[i]) e->rc.roles[i].prompt = v->compiled[i];
  e->rc.seed = (int64_t)rng_derive(x->seed, "optimize|%s|%s|%d", v->sha, split_names[split], k);
  e->ro.new_run = 1;
  e->ro.quiet = 1;
  e->ro.progress = 0;
  e->ro.command_line = x->o->command_line;
  e->ro.source_ids = ids;
  e->ro.n_source_ids = n;
  e->ro.store = x->st;
  e->ro.llm = x->llm;
  e->next = x->evals;
  x->evals = e;
  if (x->stopping) {
    e->rc_ = OPT_STOPPED;
    return e;
  }
  int r = run_start(&e->rc, &e->ro, &e->rs, &e->run, e->err, sizeof e->err);
  if (r) {
    e->rc_ = r;
    if (e->rs.bad_input) x->sum->bad_input = 1;
  }
  return e;
}

static void eval_free(struct eval *e) {
  if (!e) return;
  struct eval **p = &e->x->evals;
  while (*p != e) p = &(*p)->next;
  *p = e->next;
  eval_out_release(&e->out);
  free(e);
}

/* The finished run's candidates, per source, into e->out (and the trajectories). */
static int eval_collect(struct eval *e) {
  struct opt *x = e->x;
  struct eval_out *out = &e->out;
  size_t n = e->n;
  char *err = e->err;
  size_t errlen = sizeof e->err;
  int rc_ = 0;
  struct collect c = {x->st, xcalloc(n + 1, sizeof *c.acc), n, NULL, json_object()};
  struct buf traj;
  buf_init(&traj, 256 * 1024);
  if (e->want_traj) c.traj = &traj;
  for (size_t i = 0; i < n; i++) c.acc[i].id = e->ids[i];
  if (e->want_traj) {
    if (!(rc_ = store_calls_each(x->st, e->rs.run_id, "weak", 1, collect_call, &c)))
      rc_ = store_calls_each(x->st, e->rs.run_id, "judge_weak", 1, collect_call, &c);
    if (!rc_) sort_answers(c.answers);
  }
  if (!rc_) rc_ = store_candidates_each(x->st, e->rs.run_id, NULL, collect_cand, &c);
  if (rc_) ad_set_err(err, errlen, "%s", store_errmsg(x->st));
  out->src = xcalloc(n + 1, sizeof *out->src);
  out->by_id = xcalloc(n + 1, sizeof *out->by_id);
  double sum = 0;
  json_t *per = json_object();
  for (size_t i = 0; i < n && !rc_; i++) {
    double val = src_value(x, &c.acc[i]);
    out->by_id[i] = val;
    if (isnan(val)) continue;
    out->src[out->n_src++] = val;
    sum += val;
    json_object_set_new(per, c.acc[i].id,
                        json_pack("{s:i,s:i,s:f}", "candidates", c.acc[i].cands, "passed",
                                  c.acc[i].passed, "value", jx_round6(val)));
  }
  out->score = out->n_src ? sum / (double)out->n_src : 0.0;
  if (e->want_traj) out->traj = buf_take(&traj, NULL);
  buf_release(&traj);
  free(c.acc);
  json_decref(c.answers);
  if (!rc_) {
    char key[160];
    snprintf(key, sizeof key, "%s|%s|%04d", e->v->sha, split_names[e->split], e->k);
    json_t *rec = json_pack("{s:s,s:s,s:i,s:I,s:f,s:I,s:o}", "variant", e->v->sha, "split",
                            split_names[e->split], "k", e->k, "run", (json_int_t)e->rs.run_id,
                            "score", jx_round6(out->score), "sources", (json_int_t)out->n_src,
                            "per_source", per);
    per = NULL;
    if (store_opt_put(x->st, STORE_OPT_EVALUATIONS, x->id, key, rec) || store_flush(x->st)) {
      ad_set_err(err, errlen, "%s", store_errmsg(x->st));
      rc_ = AD_EIO;
    }
    json_decref(rec);
  }
  json_decref(per);
  return rc_;
}

/* Advance an evaluation: 2 work ready, 1 waiting on the client, 0 over (e->rc_: 0 and
 * e->out, OPT_STOPPED, or an AD_E* code with e->err). */
static int eval_poll(struct eval *e) {
  if (!e->run) return 0;
  int m = run_step(e->run);
  if (m) return m;
  struct opt *x = e->x;
  int r = run_end(e->run, e->err, sizeof e->err);
  e->run = NULL;
  x->sum->calls_sent += e->rs.calls_sent;
  x->sum->cache_hits += e->rs.cache_hits;
  if (r) {
    e->rc_ = r;
    if (e->rs.bad_input) x->sum->bad_input = 1;
  } else if (e->rs.stopped) { /* a signal, or the run's own stop (the recipe's budgets...) */
    opt_stop(x, e->rs.stop_reason);
    e->rc_ = OPT_STOPPED;
  } else {
    e->rc_ = eval_collect(e);
  }
  return 0;
}

/* ---- the optimiser's own model calls (analyzer, implementer), behind the cache --- */

static void ocall_attempt(void *ud, const struct llm_attempt *a) {
  callrec_attempt(&((struct ocall *)ud)->rec, a);
}

static double ocall_cost(const struct opt *x, const struct recipe_opt_role *ro, int64_t pt,
                         int64_t ct) {
  double in = 0, out = 0;
  if (recipe_price(x->rc, ro->endpoint_index, ro->model, &in, &out)) return 0;
  return (double)pt / 1e6 * in + (double)ct / 1e6 * out;
}

static void ocall_done(void *ud, const struct llm_result *res) {
  struct ocall *c = ud;
  struct opt *x = c->x;
  c->done = 1;
  if (res->rc == AD_ECANCELED) {
    c->rc_ = OPT_STOPPED;
    return;
  }
  if (callrec_put(x->st, x->run_id, &c->rec, &c->id, res)) {
    c->rc_ = AD_EIO;
    ad_set_err(c->err, sizeof c->err, "%s", store_errmsg(x->st));
  } else if (res->rc == 0 && res->reply) {
    c->content = xstrdup(res->reply->content ? res->reply->content : "");
    c->tokens = res->reply->prompt_tokens + res->reply->completion_tokens;
    c->cost = ocall_cost(x, c->ro, res->reply->prompt_tokens, res->reply->completion_tokens);
  } else {
    c->rc_ = AD_EHTTP;
    ad_set_err(c->err, sizeof c->err, "optimize.%s (%s on endpoint '%s'): %s", c->id.role,
               c->ro->model, c->ro->endpoint, res->error ? res->error : ad_strerror(res->rc));
  }
}

/* Start the analyzer's or implementer's call: answered from the store's cache at once
 * (c->done), or sent (done later, from the client's loop). */
static struct ocall *ocall_start(struct opt *x, const struct recipe_opt_role *ro, const char *label,
                                 const struct tpl_prompt *tp, const json_t *vars, int64_t seed) {
  struct ocall *c = xcalloc(1, sizeof *c);
  c->x = x;
  c->ro = ro;
  c->id = (struct callrec_id){label, NULL, -1, ro->endpoint, ro->model};
  json_t *messages = NULL;
  if ((c->rc_ = tpl_prompt_render(tp, NULL, vars, 0, &messages, c->err, sizeof c->err))) {
    c->done = 1;
    return c;
  }
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = ro->temperature;
  p.max_tokens = ro->max_tokens;
  p.has_seed = 1;
  p.seed = seed;
  json_t *body = llm_request_build(ro->model, messages, &p);
  json_decref(messages);
  c->body = body ? llm_merge_extra(x->llm, ro->endpoint, body) : NULL;
  json_decref(body);
  c->done = 1;
  if (!c->body) {
    ad_set_err(c->err, sizeof c->err, "optimize.%s: cannot build the request", label);
    c->rc_ = AD_EINVAL;
    return c;
  }
  callrec_begin(&c->rec, ro->endpoint, c->body);
  c->begun = 1;
  if (x->stopping) {
    c->rc_ = OPT_STOPPED;
    return c;
  }
  char *cached = NULL;
  size_t clen = 0;
  int rc = store_cache_get(x->st, c->rec.key, &cached, &clen);
  if (rc == 0) {
    struct llm_reply rep;
    memset(&rep, 0, sizeof rep);
    if (llm_reply_parse(cached, clen, &rep, c->err, sizeof c->err) == 0)
      c->content = xstrdup(rep.content ? rep.content : "");
    else c->rc_ = AD_EPARSE;
    llm_reply_release(&rep);
    free(cached);
    x->sum->cache_hits++;
    if (!c->rc_ && callrec_put(x->st, x->run_id, &c->rec, &c->id, NULL)) {
      c->rc_ = AD_EIO;
      ad_set_err(c->err, sizeof c->err, "%s", store_errmsg(x->st));
    }
  } else if (rc != AD_ENOTFOUND) {
    c->rc_ = rc;
    ad_set_err(c->err, sizeof c->err, "%s", store_errmsg(x->st));
  } else if ((rc = llm_submit_serialized(x->llm, ro->endpoint, c->body, c->rec.canon,
                                         c->rec.canon_len, ocall_done, ocall_attempt, c))) {
    c->rc_ = rc;
    ad_set_err(c->err, sizeof c->err, "%s", llm_client_errmsg(x->llm));
  } else {
    c->done = 0;
    x->sum->calls_sent++;
  }
  return c;
}

static void ocall_free(struct ocall *c) {
  if (!c) return;
  free(c->content);
  if (c->begun) callrec_release(&c->rec);
  json_decref(c->body);
  free(c);
}

/* ---- setup ---------------------------------------------------------------------- */

static int load_role_prompt(struct opt *x, const struct recipe_opt_role *ro, const char *role,
                            struct tpl_prompt *out, char *err, size_t errlen) {
  char dflt[64];
  snprintf(dflt, sizeof dflt, "optimize-%s.md", role);
  const char *rel = ro->prompt ? ro->prompt : dflt;
  char *cands[3] = {NULL, NULL, NULL};
  if (rel[0] == '/') cands[0] = xstrdup(rel);
  else {
    cands[0] = fs_join(x->rc->dir, rel);
    if (x->rc->prompts_dir) cands[1] = fs_join(x->rc->prompts_dir, rel);
  }
  int rc = AD_ENOTFOUND;
  for (int i = 0; i < 3 && cands[i] && rc; i++) {
    char *text = NULL;
    size_t len = 0;
    if (fs_read_all(cands[i], RECIPE_MAX_PROMPT_FILE, &text, &len)) continue;
    rc = tpl_prompt_compile(text, len, cands[i], out, err, errlen);
    free(text);
    if (rc) break;
  }
  if (rc == AD_ENOTFOUND)
    ad_set_err(err, errlen, "optimize.%s: prompt file '%s' not found (recipe folder %s%s%s)", role,
               rel, x->rc->dir, x->rc->prompts_dir ? ", prompts folder " : "",
               x->rc->prompts_dir ? x->rc->prompts_dir : "");
  for (int i = 0; i < 3; i++) free(cands[i]);
  return rc;
}

static int setup(struct opt *x, char *err, size_t errlen) {
  struct recipe *rc = x->rc;
  const struct opt_opts *o = x->o;
  struct recipe_optimize *c = &x->cfg;
  *c = rc->optimize;
  if (o->iterations >= 0) c->iterations = o->iterations;
  if (o->parallel > 0) c->parallel = o->parallel;
  if (o->train > 0) c->train = o->train;
  if (o->val > 0) c->val = o->val;
  if (o->test > 0) c->test = o->test;
  if (o->minibatch > 0) c->minibatch = o->minibatch;
  if (!isnan(o->temperature)) c->temperature = o->temperature;
  if (c->minibatch > c->train) {
    ad_set_err(err, errlen, "the minibatch (%d) is larger than the train split (%d)", c->minibatch,
               c->train);
    x->sum->bad_input = 1;
    return AD_EINVAL;
  }
  if (!c->analyzer.present || !c->implementer.present) {
    ad_set_err(err, errlen,
               "the recipe's optimize: section must name the analyzer and implementer roles "
               "(optimize.analyzer: {endpoint, model}, optimize.implementer: {endpoint, model})");
    x->sum->bad_input = 1;
    return AD_EINVAL;
  }
  int any = 0;
  for (int i = 0; i < RECIPE_N_ROLES; i++) any |= c->editable[i] && rc->roles[i].present;
  if (!any) {
    ad_set_err(err, errlen, "no editable prompt: optimize.editable names no role this recipe has");
    x->sum->bad_input = 1;
    return AD_EINVAL;
  }
  int r;
  if ((r = load_role_prompt(x, &c->analyzer, "analyzer", &x->analyzer_tpl, err, errlen)) ||
      (r = load_role_prompt(x, &c->implementer, "implementer", &x->implementer_tpl, err, errlen))) {
    x->sum->bad_input = 1;
    return r;
  }
  x->seed = (uint64_t)rc->seed;
  x->out_dir = o->out_dir ? xstrdup(o->out_dir) : fs_join(rc->output_folder, "optimize");
  snprintf(x->sum->out_dir, sizeof x->sum->out_dir, "%s", x->out_dir);
  /* the optimisation's identity: the recipe's and the settings that decide its lineage */
  json_t *editable = json_array();
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (c->editable[i] && rc->roles[i].present)
      json_array_append_new(editable, json_string(recipe_role_name((enum recipe_role_id)i)));
  json_t *ident = json_pack(
      "{s:o,s:i,s:i,s:i,s:i,s:f,s:s,s:s,s:o,s:i,s:{s:s,s:s,s:f,s:i},s:{s:s,s:s,s:f,s:i}}", "recipe",
      recipe_identity(rc), "train", c->train, "val", c->val, "test", c->test, "minibatch",
      c->minibatch, "temperature", c->temperature, "strategy",
      recipe_opt_strategy_name(c->strategy), "objective", recipe_opt_objective_name(c->objective),
      "editable", editable, "max_prompt_chars", c->max_prompt_chars, "analyzer", "endpoint",
      c->analyzer.endpoint, "model", c->analyzer.model, "temperature", c->analyzer.temperature,
      "max_tokens", c->analyzer.max_tokens, "implementer", "endpoint", c->implementer.endpoint,
      "model", c->implementer.model, "temperature", c->implementer.temperature, "max_tokens",
      c->implementer.max_tokens);
  /* settings added later join the identity only when set, so older ids stay */
  if (c->parallel > 1) json_object_set_new(ident, "parallel", json_integer(c->parallel));
  if (c->merge_every > 0) json_object_set_new(ident, "merge_every", json_integer(c->merge_every));
  char sha[65];
  opt_variant_sha(ident, sha);
  json_decref(ident);
  snprintf(x->id, sizeof x->id, "%.16s", sha);
  /* the corpus's ids, and the splits: an index is enough (the texts are not kept; each run
   * of a variant streams them) */
  struct src_corpus corpus;
  struct src_options so = rc->sources;
  so.stream = 1;
  if ((r = src_load(&so, &corpus, err, errlen))) {
    x->sum->bad_input = 1;
    return r;
  }
  x->n_ids = corpus.n;
  x->ids = xcalloc(corpus.n + 1, sizeof *x->ids);
  for (size_t i = 0; i < corpus.n; i++) x->ids[i] = xstrdup(src_corpus_id(&corpus, i));
  src_corpus_release(&corpus);
  int *split = xcalloc(x->n_ids + 1, sizeof *split);
  if ((r = opt_split_draw(x->n_ids, x->seed, c->train, c->val, c->test, split, err, errlen))) {
    free(split);
    x->sum->bad_input = 1;
    return r;
  }
  for (int s = 0; s < 3; s++) x->split_ids[s] = xcalloc(x->n_ids + 1, sizeof(char *));
  for (size_t i = 0; i < x->n_ids; i++)
    if (split[i] >= 0) x->split_ids[split[i]][x->split_n[split[i]]++] = x->ids[i];
  free(split);
  /* the store and the client */
  if ((r = fs_mkdirs(x->out_dir))) {
    ad_set_err(err, errlen, "cannot create %s", x->out_dir);
    return r;
  }
  char *path = fs_join(x->out_dir, "store.db");
  r = store_open(path, 0, &x->st);
  free(path);
  if (r) {
    ad_set_err(err, errlen, "%s", x->st ? store_errmsg(x->st) : ad_strerror(r));
    return r;
  }
  for (int s = 0; s < 3; s++)
    for (size_t i = 0; i < x->split_n[s] && !r; i++) {
      json_t *rec = json_pack("{s:s}", "split", split_names[s]);
      r = store_opt_put(x->st, STORE_OPT_SPLITS, x->id, x->split_ids[s][i], rec);
      json_decref(rec);
    }
  json_t *ph = json_object(),
         *extra = json_pack("{s:s,s:s}", "optimization", x->id, "role", "optimizer");
  char name[300];
  snprintf(name, sizeof name, "optimize:%s", rc->name);
  struct store_run_info info = {name,         rc->sha256,      ph,   x->seed,
                                ad_version(), o->command_line, NULL, extra};
  int resumed = 0;
  if (!r) r = store_run_begin(x->st, &info, 1, &x->run_id, &resumed);
  json_decref(ph);
  json_decref(extra);
  if (!r) r = store_flush(x->st);
  if (r) {
    ad_set_err(err, errlen, "%s", store_errmsg(x->st));
    return r;
  }
  x->llm = llm_client_new();
  llm_client_set_seed(x->llm, x->seed);
  for (int i = 0; i < rc->n_endpoints; i++) {
    struct llm_endpoint_config cfg;
    r = recipe_endpoint_config(rc, i, &cfg);
    if (!r) r = llm_client_add_endpoint(x->llm, &cfg);
    if (r) {
      ad_set_err(err, errlen, "%s", llm_client_errmsg(x->llm));
      return r;
    }
  }
  x->history = json_array();
  x->iters = json_array();
  return 0;
}

/* ---- one iteration ---------------------------------------------------------------- */

/* A validation evaluation's per-source values join the variant's. */
static void add_val(struct opt *x, struct variant *v, const struct eval_out *e) {
  size_t n = x->split_n[1];
  if (!v->vs_sum) {
    v->vs_sum = xcalloc(n + 1, sizeof *v->vs_sum);
    v->vs_n = xcalloc(n + 1, sizeof *v->vs_n);
  }
  for (size_t j = 0; j < n; j++)
    if (!isnan(e->by_id[j])) {
      v->vs_sum[j] += e->by_id[j];
      v->vs_n[j]++;
    }
  v->val = xrealloc(v->val, (size_t)(v->n_val + 1) * sizeof *v->val);
  v->val[v->n_val++] = e->score;
}

/* GEPA's Pareto selection: for every validation source, the admitted variants with the best
 * mean value on it; a variant is drawn with probability proportional to the number of
 * sources it is best on. NULL when no variant has per-source values. */
static struct variant *pick_pareto(struct opt *x, struct rng *r) {
  size_t n = x->split_n[1];
  int *wins = xcalloc((size_t)x->n_vars + 1, sizeof *wins), total = 0;
  for (size_t j = 0; j < n; j++) {
    double best = -INFINITY;
    for (int i = 0; i < x->n_vars; i++) {
      const struct variant *v = x->vars[i];
      if (v->admitted && v->vs_n && v->vs_n[j] && v->vs_sum[j] / v->vs_n[j] > best)
        best = v->vs_sum[j] / v->vs_n[j];
    }
    for (int i = 0; i < x->n_vars; i++) {
      const struct variant *v = x->vars[i];
      if (v->admitted && v->vs_n && v->vs_n[j] && v->vs_sum[j] / v->vs_n[j] >= best - 1e-9) {
        wins[i]++;
        total++;
      }
    }
  }
  struct variant *pick = NULL;
  if (total > 0) {
    int u = (int)rng_below(r, (uint64_t)total);
    for (int i = 0; i < x->n_vars && !pick; i++) {
      if (u < wins[i]) pick = x->vars[i];
      u -= wins[i];
    }
  }
  free(wins);
  return pick;
}

static struct variant *pick_parent(struct opt *x, int iter) {
  if (x->cfg.strategy == RECIPE_OPT_PARETO) {
    struct rng r;
    rng_seed(&r, rng_derive(x->seed, "optimize|pareto|%d", iter));
    struct variant *v = pick_pareto(x, &r);
    if (v) return v;
  }
  double best = -INFINITY;
  for (int i = 0; i < x->n_vars; i++)
    if (x->vars[i]->admitted && opt_val_mean(x->vars[i]) > best) best = opt_val_mean(x->vars[i]);
  double total = 0;
  for (int i = 0; i < x->n_vars; i++)
    if (x->vars[i]->admitted) total += exp((opt_val_mean(x->vars[i]) - best) / x->cfg.temperature);
  struct rng r;
  rng_seed(&r, rng_derive(x->seed, "optimize|parent|%d", iter));
  double u = rng_double(&r) * total;
  struct variant *last = NULL;
  for (int i = 0; i < x->n_vars; i++) {
    if (!x->vars[i]->admitted) continue;
    last = x->vars[i];
    u -= exp((opt_val_mean(x->vars[i]) - best) / x->cfg.temperature);
    if (u < 0) return x->vars[i];
  }
  return last;
}

static const char **draw_minibatch(struct opt *x, int iter) {
  size_t n = x->split_n[0], m = (size_t)x->cfg.minibatch;
  const char **pool = xcalloc(n + 1, sizeof *pool);
  memcpy(pool, x->split_ids[0], n * sizeof *pool);
  struct rng r;
  rng_seed(&r, rng_derive(x->seed, "optimize|minibatch|%d", iter));
  for (size_t i = 0; i < m; i++) {
    size_t j = i + (size_t)rng_below(&r, n - i);
    const char *t = pool[i];
    pool[i] = pool[j];
    pool[j] = t;
  }
  return pool;
}

static json_t *prompts_list(const struct opt *x, const json_t *prompts) {
  json_t *a = json_array();
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const char *name = recipe_role_name((enum recipe_role_id)i);
    const char *t = json_string_value(json_object_get(prompts, name));
    if (t && x->cfg.editable[i])
      json_array_append_new(a, json_pack("{s:s,s:s}", "name", name, "text", t));
  }
  return a;
}

static json_t *history_tail(const struct opt *x) {
  json_t *a = json_array();
  size_t n = json_array_size(x->history), from = n > 20 ? n - 20 : 0;
  for (size_t i = from; i < n; i++) json_array_append(a, json_array_get(x->history, i));
  return a;
}

static void note(struct opt *x, int iter, const char *fmt, ...) AD_PRINTF(3, 4);
static void note(struct opt *x, int iter, const char *fmt, ...) {
  char line[1200];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  json_array_append_new(x->history, json_pack("{s:i,s:s}", "iteration", iter, "text", line));
}

/* The first line of text, at most n characters (new string). */
static char *first_line(const char *text, size_t n) {
  size_t k = strcspn(text, "\n");
  if (k > n) k = n;
  return xstrndup(text, k);
}

/* ---- merge (GEPA): two admitted lineages that changed different prompts ---------------- */

/* Whether anc is v or one of v's ancestors (through first parents). */
static int descends(struct opt *x, const struct variant *v, const struct variant *anc) {
  for (int guard = 0; v && guard <= x->n_vars; guard++) {
    if (v == anc) return 1;
    v = v->parent[0] ? variant_find(x, v->parent) : NULL;
  }
  return 0;
}

/* The prompts v changed against its ancestor anc, as a bit set over the roles. */
static unsigned changed_roles(const struct variant *v, const struct variant *anc) {
  unsigned m = 0;
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const char *name = recipe_role_name((enum recipe_role_id)i);
    const char *a = json_string_value(json_object_get(v->prompts, name)),
               *b = json_string_value(json_object_get(anc->prompts, name));
    if (a && b && strcmp(a, b)) m |= 1u << i;
  }
  return m;
}

/* The merge an iteration tries: among pairs of admitted variants (a, b), neither an
 * ancestor of the other, whose nearest common ancestor c is such that a and b changed
 * disjoint, non-empty sets of prompts against it, and whose merge (c's texts, a's changes
 * and b's changes) is not a variant yet, the pair with the highest sum of validation
 * means (the first in creation order on a tie). a is the one with the higher mean. The
 * implementer-style reply (b's texts for b's prompts; the parent is a) in *reply. */
static int find_merge(struct opt *x, struct variant **pa, struct variant **pb, char **reply) {
  double best = -INFINITY;
  struct variant *ba = NULL, *bb = NULL, *bc = NULL;
  unsigned bmb = 0;
  for (int i = 0; i < x->n_vars; i++)
    for (int j = i + 1; j < x->n_vars; j++) {
      struct variant *a = x->vars[i], *b = x->vars[j];
      if (!a->admitted || !b->admitted || descends(x, a, b) || descends(x, b, a)) continue;
      struct variant *c = a->parent[0] ? variant_find(x, a->parent) : NULL;
      while (c && !descends(x, b, c)) c = c->parent[0] ? variant_find(x, c->parent) : NULL;
      if (!c) continue;
      unsigned ma = changed_roles(a, c), mb = changed_roles(b, c);
      if (!ma || !mb || (ma & mb)) continue;
      json_t *m = json_deep_copy(a->prompts);
      for (int r = 0; r < RECIPE_N_ROLES; r++)
        if (mb & (1u << r)) {
          const char *name = recipe_role_name((enum recipe_role_id)r);
          json_object_set(m, name, json_object_get(b->prompts, name));
        }
      char sha[65];
      opt_variant_sha(m, sha);
      json_decref(m);
      double s = opt_val_mean(a) + opt_val_mean(b);
      if (variant_find(x, sha) || !(s > best)) continue;
      best = s;
      ba = a, bb = b, bc = c, bmb = mb;
    }
  if (!ba) return 0;
  if (opt_val_mean(bb) > opt_val_mean(ba)) { /* the parent: the higher mean */
    struct variant *t = ba;
    ba = bb;
    bb = t;
    bmb = changed_roles(bb, bc);
  }
  json_t *pr = json_object();
  char roles[128] = "";
  for (int r = 0, off = 0; r < RECIPE_N_ROLES; r++)
    if (bmb & (1u << r)) {
      const char *name = recipe_role_name((enum recipe_role_id)r);
      json_object_set(pr, name, json_object_get(bb->prompts, name));
      off += snprintf(roles + off, sizeof roles - (size_t)off, "%s%s", off ? ", " : "", name);
    }
  char why[400];
  snprintf(why, sizeof why,
           "merge: %.8s with the %s prompt(s) of %.8s (their common ancestor %.8s; each "
           "lineage changed different prompts)",
           ba->sha, roles, bb->sha, bc->sha);
  json_t *rep = json_pack("{s:o,s:s}", "prompts", pr, "rationale", why);
  *reply = json_dumps(rep, JSON_COMPACT | JSON_SORT_KEYS);
  json_decref(rep);
  *pa = ba;
  *pb = bb;
  return 1;
}

/* ---- iterations: state machines on the one event loop -------------------------------- */

enum it_step { IT_TRAIN, IT_ANALYZE, IT_IMPLEMENT, IT_GATE, IT_VAL, IT_DONE };
enum it_outcome { IT_REFUSED = 1, IT_REPEAT, IT_GATED, IT_VALIDATED };

/* One iteration from its start to its application. Everything it reads of the population
 * it reads when it starts; everything it changes, it changes when applied. */
struct iter {
  int n;
  enum it_step step;
  enum it_outcome outcome;
  int stopped; /* an evaluation or call was stopped: never applied */
  int merge;   /* a merge iteration: no analyzer or implementer */
  struct variant *parent, *parent2;
  double parent_mean0;
  int parent_n0;
  const char **mb;
  json_t *hist; /* the history log's tail when it started */
  struct eval *ev[2];
  struct ocall *call;
  double parent_train, mutant_train;
  char *analysis, *reply, *rationale;
  struct variant *mut; /* made, registered when applied */
  char reason[512];
  char dup[65]; /* IT_REPEAT: the variant it repeats */
  struct eval_out pv, mv;
  int64_t calls, tokens; /* what it used: calls sent or answered from the store */
  double cost;
};

static void it_free(struct iter *it) {
  if (!it) return;
  for (int k = 0; k < 2; k++) eval_free(it->ev[k]);
  ocall_free(it->call);
  free(it->mb);
  json_decref(it->hist);
  free(it->analysis);
  free(it->reply);
  free(it->rationale);
  variant_free(it->mut);
  eval_out_release(&it->pv);
  eval_out_release(&it->mv);
  free(it);
}

/* An evaluation or call failed: stopped (never applied) or an error (the optimisation
 * ends with it). */
static void it_fail(struct opt *x, struct iter *it, int rc, const char *err) {
  it->stopped = 1;
  it->step = IT_DONE;
  if (rc == OPT_STOPPED || x->fail) return;
  x->fail = rc;
  snprintf(x->fail_err, sizeof x->fail_err, "%s", err && *err ? err : ad_strerror(rc));
  opt_stop(x, "an error");
}

/* An evaluation of the iteration is over: its usage is the iteration's. 0, or it failed. */
static int it_eval_over(struct opt *x, struct iter *it, struct eval *e) {
  it->calls += e->rs.calls_sent + e->rs.cache_hits;
  it->tokens += e->rs.prompt_tokens + e->rs.completion_tokens;
  it->cost += e->rs.cost;
  if (e->rc_) it_fail(x, it, e->rc_, e->err);
  return e->rc_;
}

/* A call of the iteration is over: its content (new string), or NULL when it failed. */
static char *it_call_over(struct opt *x, struct iter *it) {
  struct ocall *c = it->call;
  it->call = NULL;
  it->calls++;
  it->tokens += c->tokens;
  it->cost += c->cost;
  char *s = NULL;
  if (c->rc_) it_fail(x, it, c->rc_, c->err);
  else {
    s = c->content;
    c->content = NULL;
  }
  ocall_free(c);
  return s;
}

static void it_validate(struct opt *x, struct iter *it) {
  it->ev[0] = eval_start(x, it->parent, 1, it->n, x->split_ids[1], x->split_n[1], 0);
  it->ev[1] = eval_start(x, it->mut, 1, 0, x->split_ids[1], x->split_n[1], 0);
  it->step = IT_VAL;
}

/* The implementer's (or the merge's) reply: the lock, the repeat check against the
 * variants the iteration saw, then the gate or validation. */
static void it_propose(struct opt *x, struct iter *it) {
  json_t *mp = NULL;
  if (opt_lock_check(x->rc, x->vars[0]->prompts, it->parent->prompts, it->reply, &mp,
                     &it->rationale, it->reason, sizeof it->reason)) {
    it->outcome = IT_REFUSED;
    it->step = IT_DONE;
    return;
  }
  char sha[65];
  opt_variant_sha(mp, sha);
  for (int i = 0; i < x->n_vars; i++)
    if (x->vars[i]->iteration <= it->n - x->cfg.parallel && !strcmp(x->vars[i]->sha, sha)) {
      snprintf(it->dup, sizeof it->dup, "%s", sha);
      it->outcome = IT_REPEAT;
      it->step = IT_DONE;
      json_decref(mp);
      return;
    }
  it->mut = variant_make(x, mp, it->parent, it->n, it->rationale);
  if (it->parent2) snprintf(it->mut->parent2, sizeof it->mut->parent2, "%s", it->parent2->sha);
  if (x->cfg.minibatch_gate) { /* GEPA: the parent's minibatch first */
    it->ev[0] = eval_start(x, it->mut, 0, it->n, it->mb, (size_t)x->cfg.minibatch, 0);
    it->step = IT_GATE;
  } else {
    it_validate(x, it);
  }
}

static void it_analyze(struct opt *x, struct iter *it, const char *traj) {
  const char *objective = recipe_opt_objective_name(x->cfg.objective);
  json_t *vars = json_pack("{s:s,s:O,s:s,s:f,s:s}", "trajectories", traj ? traj : "", "history",
                           it->hist, "objective", objective, "score", jx_round6(it->parent_train),
                           "goal", x->rc->goal);
  it->call = ocall_start(x, &x->cfg.analyzer, "analyzer", &x->analyzer_tpl, vars,
                         (int64_t)rng_derive(x->seed, "optimize|analyzer|%d", it->n));
  json_decref(vars);
  it->step = IT_ANALYZE;
}

static void it_implement(struct opt *x, struct iter *it) {
  const char *objective = recipe_opt_objective_name(x->cfg.objective);
  char list[128] = "";
  for (int i = 0, off = 0; i < RECIPE_N_ROLES; i++)
    if (x->cfg.editable[i] && json_object_get(it->parent->prompts, recipe_role_name(i)))
      off += snprintf(list + off, sizeof list - (size_t)off, "%s%s", off ? ", " : "",
                      recipe_role_name((enum recipe_role_id)i));
  json_t *vars = json_pack("{s:s,s:O,s:o,s:s,s:i,s:s,s:s}", "analysis", it->analysis, "history",
                           it->hist, "prompts", prompts_list(x, it->parent->prompts), "editable",
                           list, "max_prompt_chars", x->cfg.max_prompt_chars, "objective",
                           objective, "goal", x->rc->goal);
  it->call = ocall_start(x, &x->cfg.implementer, "implementer", &x->implementer_tpl, vars,
                         (int64_t)rng_derive(x->seed, "optimize|implementer|%d", it->n));
  json_decref(vars);
  it->step = IT_IMPLEMENT;
}

/* Advance an iteration as far as it goes without waiting: 2 work ready, 1 waiting, 0 done. */
static int it_advance(struct opt *x, struct iter *it) {
  for (;;) {
    int m = 0;
    switch (it->step) {
    case IT_TRAIN: {
      if ((m = eval_poll(it->ev[0]))) return m;
      struct eval *e = it->ev[0];
      it->ev[0] = NULL;
      if (!it_eval_over(x, it, e)) {
        it->parent_train = e->out.score;
        if (it->merge) it_propose(x, it); /* the gate needs the parent's train score */
        else it_analyze(x, it, e->out.traj);
      }
      eval_free(e);
      break;
    }
    case IT_ANALYZE:
      if (!it->call->done) return 1;
      if ((it->analysis = it_call_over(x, it))) it_implement(x, it);
      break;
    case IT_IMPLEMENT:
      if (!it->call->done) return 1;
      if ((it->reply = it_call_over(x, it))) it_propose(x, it);
      break;
    case IT_GATE: {
      if ((m = eval_poll(it->ev[0]))) return m;
      struct eval *e = it->ev[0];
      it->ev[0] = NULL;
      if (!it_eval_over(x, it, e)) {
        it->mutant_train = e->out.score;
        if (it->mutant_train > it->parent_train) it_validate(x, it);
        else {
          it->outcome = IT_GATED;
          it->step = IT_DONE;
        }
      }
      eval_free(e);
      break;
    }
    case IT_VAL: {
      int m0 = eval_poll(it->ev[0]), m1 = eval_poll(it->ev[1]);
      if (m0 || m1) return m0 == 2 || m1 == 2 ? 2 : 1;
      int failed = 0;
      for (int k = 0; k < 2; k++) {
        failed |= it_eval_over(x, it, it->ev[k]) != 0;
        struct eval_out *o = k ? &it->mv : &it->pv;
        *o = it->ev[k]->out;
        memset(&it->ev[k]->out, 0, sizeof it->ev[k]->out);
        eval_free(it->ev[k]);
        it->ev[k] = NULL;
      }
      if (!failed) {
        it->outcome = IT_VALIDATED;
        it->step = IT_DONE;
      }
      break;
    }
    case IT_DONE: return 0;
    }
  }
}

/* Start iteration n on the population as it is now (after iterations 1..n-P applied). */
static struct iter *it_start(struct opt *x, int n) {
  struct iter *it = xcalloc(1, sizeof *it);
  it->n = n;
  if (x->cfg.merge_every > 0 && n % x->cfg.merge_every == 0 &&
      find_merge(x, &it->parent, &it->parent2, &it->reply))
    it->merge = 1;
  else it->parent = pick_parent(x, n);
  it->parent_mean0 = opt_val_mean(it->parent);
  it->parent_n0 = it->parent->n_val;
  it->hist = history_tail(x);
  it->mb = draw_minibatch(x, n);
  if (it->merge && !x->cfg.minibatch_gate) it_propose(x, it);
  else {
    it->ev[0] = eval_start(x, it->parent, 0, n, it->mb, (size_t)x->cfg.minibatch, !it->merge);
    it->step = IT_TRAIN;
  }
  return it;
}

/* Whether a budget is spent by what the applied iterations (and the baseline) used. */
static void check_budget(struct opt *x) {
  const struct recipe_optimize *c = &x->cfg;
  const char *why = NULL;
  if (c->max_calls > 0 && x->used_calls >= c->max_calls) why = "optimize.budgets.max_calls";
  else if (c->max_tokens > 0 && x->used_tokens >= c->max_tokens)
    why = "optimize.budgets.max_tokens";
  else if (c->max_cost > 0 && x->used_cost >= c->max_cost) why = "optimize.budgets.max_cost";
  if (!why || x->budget_hit) return;
  x->budget_hit = 1;
  if (!x->sum->stopped) {
    x->sum->stopped = 1;
    snprintf(x->sum->stop_reason, sizeof x->sum->stop_reason, "budget reached: %s", why);
  }
}

static void iter_record(struct opt *x, struct iter *it, const char *status, const char *mutant) {
  json_t *r = json_pack("{s:i,s:s,s:s,s:f,s:i}", "iteration", it->n, "parent", it->parent->sha,
                        "status", status, "parent_mean", jx_round6(it->parent_mean0), "parent_n",
                        it->parent_n0);
  if (mutant) json_object_set_new(r, "mutant", json_string(mutant));
  if (it->parent2) json_object_set_new(r, "parent2", json_string(it->parent2->sha));
  if (it->merge) json_object_set_new(r, "merge", json_true());
  if (it->outcome == IT_REFUSED || it->outcome == IT_REPEAT)
    json_object_set_new(r, "reason", json_string(it->reason));
  json_array_append_new(x->iters, r);
}

/* Apply a finished iteration to the population (in iteration order). */
static int it_apply(struct opt *x, struct iter *it, char *err, size_t errlen) {
  int rc = 0;
  struct variant *parent = it->parent;
  char *ana1 = it->merge ? xasprintf("(a merge iteration)")
                         : first_line(strchr(it->analysis, '\n') ? strchr(it->analysis, '\n') + 1
                                                                 : it->analysis,
                                      200);
  if (it->mut && it->outcome != IT_REFUSED) { /* made since the iteration started? */
    struct variant *d = variant_find(x, it->mut->sha);
    if (d) {
      snprintf(it->dup, sizeof it->dup, "%s", d->sha);
      it->outcome = IT_REPEAT;
    }
  }
  json_t *it_rec = NULL;
  if (it->outcome == IT_REFUSED) {
    char sha[65];
    json_t *raw = json_pack("{s:s}", "reply", it->reply);
    opt_variant_sha(raw, sha);
    json_t *rec = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s}", "sha256", sha, "parent", parent->sha,
                            "iteration", it->n, "status", "refused", "reason", it->reason, "reply",
                            it->reply);
    rc = store_opt_put(x->st, STORE_OPT_VARIANTS, x->id, sha, rec);
    json_decref(rec);
    json_decref(raw);
    x->sum->refused++;
    note(x, it->n,
         "Iteration %d: parent %.8s (validation mean %.3f over %d). Analysis: %s The "
         "implementer's proposal was refused by the locked evaluator: %s.",
         it->n, parent->sha, it->parent_mean0, it->parent_n0, ana1, it->reason);
    iter_record(x, it, "refused", NULL);
  } else if (it->outcome == IT_REPEAT) {
    snprintf(it->reason, sizeof it->reason, "the proposal repeats variant %.8s", it->dup);
    x->sum->refused++;
    note(x, it->n, "Iteration %d: parent %.8s. Analysis: %s The proposal repeated variant %.8s.",
         it->n, parent->sha, ana1, it->dup);
    iter_record(x, it, "refused", NULL);
  } else {
    struct variant *mut = it->mut;
    it->mut = NULL;
    variant_add(x, mut);
    const char *change = *mut->rationale ? mut->rationale : "(no rationale given)";
    if (it->outcome == IT_GATED) {
      mut->gated = 1;
      x->sum->gated++;
      note(x, it->n,
           "Iteration %d: parent %.8s. Analysis: %s Change: %s. The mutant %.8s scored %.3f on "
           "the parent's train minibatch against the parent's %.3f: not evaluated on "
           "validation.",
           it->n, parent->sha, ana1, change, mut->sha, it->mutant_train, it->parent_train);
      rc = put_variant(x, mut, "gated", NULL);
      iter_record(x, it, "gated", mut->sha);
      it_rec = json_array_get(x->iters, json_array_size(x->iters) - 1);
      json_object_set_new(it_rec, "parent_train", json_real(jx_round6(it->parent_train)));
      json_object_set_new(it_rec, "mutant_train", json_real(jx_round6(it->mutant_train)));
    } else {
      add_val(x, parent, &it->pv);
      add_val(x, mut, &it->mv);
      double pmean = opt_val_mean(parent), bar = pmean;
      if (it->parent2 && opt_val_mean(it->parent2) > bar) bar = opt_val_mean(it->parent2);
      mut->admitted = it->mv.score > bar;
      if (mut->admitted) x->sum->accepted++;
      else x->sum->rejected++;
      note(x, it->n,
           "Iteration %d: parent %.8s%s%.8s. Analysis: %s Change: %s. The mutant %.8s scored "
           "%.3f on validation against the parent's mean %.3f over %d evaluations%s: %s.",
           it->n, parent->sha, it->parent2 ? " and " : "", it->parent2 ? it->parent2->sha : "",
           ana1, change, mut->sha, it->mv.score, pmean, parent->n_val,
           it->parent2 ? " (and the other parent's)" : "",
           mut->admitted ? "admitted" : "not admitted");
      if (!(rc = put_variant(x, mut, mut->admitted ? "admitted" : "rejected", NULL)))
        rc = put_variant(x, parent, "admitted", NULL);
      iter_record(x, it, mut->admitted ? "accepted" : "rejected", mut->sha);
      it_rec = json_array_get(x->iters, json_array_size(x->iters) - 1);
      json_object_set_new(it_rec, "parent_mean", json_real(jx_round6(pmean)));
      json_object_set_new(it_rec, "parent_n", json_integer(parent->n_val));
      json_object_set_new(it_rec, "parent_val", json_real(jx_round6(it->pv.score)));
      json_object_set_new(it_rec, "mutant_val", json_real(jx_round6(it->mv.score)));
    }
  }
  free(ana1);
  if (rc) {
    ad_set_err(err, errlen, "%s", store_errmsg(x->st));
    return rc;
  }
  x->used_calls += it->calls;
  x->used_tokens += it->tokens;
  x->used_cost += it->cost;
  check_budget(x);
  it_rec = json_array_get(x->iters, json_array_size(x->iters) - 1);
  struct variant *best = NULL;
  for (int i = 0; i < x->n_vars; i++)
    if (x->vars[i]->admitted && (!best || opt_val_mean(x->vars[i]) > opt_val_mean(best)))
      best = x->vars[i];
  json_object_set_new(it_rec, "best", json_string(best->sha));
  json_object_set_new(it_rec, "best_mean", json_real(jx_round6(opt_val_mean(best))));
  json_object_set_new(it_rec, "best_n", json_integer(best->n_val));
  json_object_set_new(it_rec, "calls_used", json_integer(x->used_calls));
  json_object_set_new(it_rec, "calls_sent", json_integer(x->sum->calls_sent));
  json_object_set_new(it_rec, "summary",
                      json_deep_copy(json_object_get(
                          json_array_get(x->history, json_array_size(x->history) - 1), "text")));
  char key[16];
  snprintf(key, sizeof key, "%05d", it->n);
  if (store_opt_put(x->st, STORE_OPT_ITERATIONS, x->id, key, it_rec) || store_flush(x->st)) {
    ad_set_err(err, errlen, "%s", store_errmsg(x->st));
    return AD_EIO;
  }
  x->sum->iterations = it->n;
  if (!x->o->quiet)
    log_info("iteration %d/%d: %s; best %.8s validation %.3f over %d; %lld calls used", it->n,
             x->cfg.iterations, jx_str(it_rec, "status"), best->sha, opt_val_mean(best),
             best->n_val, (long long)x->used_calls);
  return 0;
}

/* Signals: the first stops the optimisation (nothing new starts; calls in flight finish),
 * a second cancels the calls in flight. */
static void check_signals(struct opt *x) {
  const char *why = NULL;
  int n = run_signals(&why);
  if (n <= x->signals_seen) return;
  x->signals_seen = n;
  opt_stop(x, why);
  if (n >= 2) {
    fprintf(stderr, "autodata: second interrupt: abandoning %d call(s) in flight\n",
            llm_client_pending(x->llm));
    llm_client_cancel_all(x->llm);
  } else {
    fprintf(stderr,
            "autodata: interrupted: starting no new work; waiting for %d call(s) in flight to "
            "finish, then writing the outputs (interrupt again to abandon them; rerun the same "
            "command to resume)\n",
            llm_client_pending(x->llm));
  }
  fflush(stderr);
}

/* Iterations 1..cfg.iterations, P = cfg.parallel at a time: iteration n starts once
 * iteration n-P is applied, and iterations are applied in order. */
static int iterations(struct opt *x, char *err, size_t errlen) {
  int P = x->cfg.parallel, last = x->cfg.iterations, next = 1, applied = 0, rc = 0;
  struct iter **win = xcalloc((size_t)P + 1, sizeof *win); /* iteration n at win[(n-1) % P] */
  for (; next <= last && next <= P && !x->budget_hit; next++) win[next - 1] = it_start(x, next);
  for (;;) {
    check_signals(x);
    int ready = 0;
    for (int s = 0; s < P; s++)
      if (win[s]) ready |= it_advance(x, win[s]) == 2;
    /* apply what is done, in order; each application lets iteration n+P start */
    while (!rc && applied < next - 1) {
      struct iter *it = win[applied % P];
      if (it->step != IT_DONE || it->stopped || x->fail) break;
      rc = it_apply(x, it, err, errlen);
      it_free(it);
      win[applied % P] = NULL;
      applied++;
      if (!rc && next <= last && !x->budget_hit && !x->stopping) {
        win[(next - 1) % P] = it_start(x, next);
        next++;
        ready = 1;
      }
    }
    if (rc) {
      x->fail = rc;
      snprintf(x->fail_err, sizeof x->fail_err, "%s", err);
      opt_stop(x, "an error");
      rc = 0;
    }
    int open = 0, left = 0; /* iterations still moving; started and not applied */
    for (int s = 0; s < P; s++) {
      open |= win[s] && win[s]->step != IT_DONE;
      left |= win[s] != NULL;
    }
    if (!open && (!left || x->stopping)) break; /* all applied, or the rest never will be */
    llm_client_run_once(x->llm, ready ? 0 : 100);
  }
  for (int s = 0; s < P; s++) it_free(win[s]);
  free(win);
  if (x->fail) {
    ad_set_err(err, errlen, "%s", x->fail_err);
    return x->fail;
  }
  return 0;
}

/* One evaluation on its own (the baseline's, the test split's), on the same loop. */
static int eval_sync(struct opt *x, struct variant *v, int split, const char *const *ids, size_t n,
                     struct eval_out *out, int count, char *err, size_t errlen) {
  struct eval *e = eval_start(x, v, split, 0, ids, n, 0);
  int m;
  for (;;) {
    check_signals(x);
    if (!(m = eval_poll(e))) break;
    llm_client_run_once(x->llm, m == 2 ? 0 : 100);
  }
  int rc = e->rc_;
  if (count) { /* the baseline's: part of the budgets */
    x->used_calls += e->rs.calls_sent + e->rs.cache_hits;
    x->used_tokens += e->rs.prompt_tokens + e->rs.completion_tokens;
    x->used_cost += e->rs.cost;
  }
  if (rc && rc != OPT_STOPPED) ad_set_err(err, errlen, "%s", e->err);
  *out = e->out;
  memset(&e->out, 0, sizeof e->out);
  eval_free(e);
  return rc;
}

/* ---- the whole optimisation --------------------------------------------------------- */

static void opt_release(struct opt *x) {
  for (int i = 0; i < x->n_vars; i++) variant_free(x->vars[i]);
  free(x->vars);
  for (size_t i = 0; i < x->n_ids; i++) free(x->ids[i]);
  free(x->ids);
  for (int s = 0; s < 3; s++) free(x->split_ids[s]);
  json_decref(x->history);
  json_decref(x->iters);
  tpl_prompt_release(&x->analyzer_tpl);
  tpl_prompt_release(&x->implementer_tpl);
  llm_client_free(x->llm);
  if (x->st) {
    int rc = store_close(x->st);
    (void)rc; /* flushed before: nothing is pending */
  }
  free(x->out_dir);
}

static int test_split(struct opt *x, struct variant *v, char *err, size_t errlen) {
  if (!isnan(v->test)) return 0;
  struct eval_out e;
  int rc = eval_sync(x, v, 2, x->split_ids[2], x->split_n[2], &e, 0, err, errlen);
  if (rc) {
    eval_out_release(&e);
    return rc;
  }
  v->test = e.score;
  v->test_src = e.src;
  v->n_test_src = e.n_src;
  e.src = NULL;
  eval_out_release(&e);
  return 0;
}

int opt_execute(struct recipe *rc, const struct opt_opts *o, struct opt_summary *sum, char *err,
                size_t errlen) {
  struct opt x;
  memset(&x, 0, sizeof x);
  memset(sum, 0, sizeof *sum);
  x.rc = rc;
  x.o = o;
  x.sum = sum;
  struct run_sigsave sigs;
  run_signals_install(&sigs);
  int r = setup(&x, err, errlen);
  if (r) goto done;
  /* the baseline: the recipe's own prompts */
  json_t *bp = json_object();
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (x.cfg.editable[i] && rc->roles[i].present && rc->roles[i].prompt.text)
      json_object_set_new(bp, recipe_role_name((enum recipe_role_id)i),
                          jx_string_lossy(rc->roles[i].prompt.text, rc->roles[i].prompt.len));
  struct variant *base = variant_make(&x, bp, NULL, 0, "the recipe's prompts");
  variant_add(&x, base);
  base->admitted = 1;
  snprintf(sum->baseline, sizeof sum->baseline, "%s", base->sha);
  struct eval_out e;
  r = eval_sync(&x, base, 1, x.split_ids[1], x.split_n[1], &e, 1, err, errlen);
  if (r) {
    eval_out_release(&e);
    if (r == OPT_STOPPED) r = 0;
    goto done; /* nothing to report yet: rerun to resume */
  }
  add_val(&x, base, &e);
  eval_out_release(&e);
  if ((r = put_variant(&x, base, "admitted", NULL))) {
    ad_set_err(err, errlen, "%s", store_errmsg(x.st));
    goto done;
  }
  if (!o->quiet)
    log_info(
        "optimization %s: baseline %.8s validation %.3f (%zu sources); train %zu, val %zu, "
        "test %zu sources; %d iteration(s) in flight",
        x.id, base->sha, base->val[0], x.split_n[1], x.split_n[0], x.split_n[1], x.split_n[2],
        x.cfg.parallel);
  check_budget(&x);
  if ((r = iterations(&x, err, errlen))) goto done;
  struct variant *best = base;
  for (int i = 0; i < x.n_vars; i++)
    if (x.vars[i]->admitted && opt_val_mean(x.vars[i]) > opt_val_mean(best)) best = x.vars[i];
  snprintf(sum->best, sizeof sum->best, "%s", best->sha);
  sum->base_val = opt_val_mean(base);
  sum->best_val = opt_val_mean(best);
  sum->best_val_n = best->n_val;
  if (!x.interrupted) { /* done, or a budget is spent: the test split, once (outside it) */
    if ((r = test_split(&x, base, err, errlen)) || (r = test_split(&x, best, err, errlen))) {
      if (r == OPT_STOPPED) r = 0;
      else goto done;
    }
  }
  r = opt_write_outputs(&x, base, best, err, errlen);
done:
  if (r == OPT_STOPPED) r = 0;
  opt_release(&x);
  run_signals_restore(&sigs);
  return r;
}
