/* optimize.c - the optimiser's algorithm (optimize.h, docs/optimize.md).
 *
 * One iteration, in order (every draw seeded from the recipe's seed and the iteration):
 *   1. parent: Boltzmann sampling over the admitted variants' validation means;
 *   2. the parent plays a train minibatch (run_execute on those sources, its prompts
 *      swapped into the recipe); its candidates, answers and verdicts are the trajectories;
 *   3. the analyzer reads them (and the history log) and writes a root-cause analysis;
 *   4. the implementer reads the analysis, the history and the current prompts and
 *      returns new prompt texts as JSON;
 *   5. the lock (lock.h) checks the proposal; a refused one is recorded and never run;
 *   6. parent and mutant play the validation split; the parent's score joins its
 *      accumulated scores; the mutant is admitted only when its score strictly exceeds
 *      the parent's mean;
 *   7. a one-paragraph summary goes into the history log.
 * Iterations run one after another. The test split is read only after the last one.
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

static struct variant *variant_new(struct opt *x, json_t *prompts, const struct variant *parent,
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
  x->vars = xrealloc(x->vars, (size_t)(x->n_vars + 1) * sizeof *x->vars);
  x->vars[x->n_vars++] = v;
  return v;
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

#define OPT_STOPPED 1 /* evaluate(): the run was stopped (budget, signal) */

static int over_budget(struct opt *x) {
  const struct recipe_optimize *c = &x->cfg;
  if (x->final) return 0; /* the test split is read once the budget is spent */
  const char *why = NULL;
  /* calls used, sent or answered from the store: a resumed optimisation replays the same
   * calls and so stops where an uninterrupted one would */
  if (c->max_calls > 0 && x->sum->calls_sent + x->sum->cache_hits >= c->max_calls)
    why = "optimize.budgets.max_calls";
  else if (c->max_tokens > 0 && x->tokens >= c->max_tokens) why = "optimize.budgets.max_tokens";
  else if (c->max_cost > 0 && x->cost >= c->max_cost) why = "optimize.budgets.max_cost";
  if (!why) return 0;
  x->sum->stopped = 1;
  snprintf(x->sum->stop_reason, sizeof x->sum->stop_reason, "budget reached: %s", why);
  return 1;
}

static int evaluate(struct opt *x, struct variant *v, int split, int k, const char *const *ids,
                    size_t n, int want_traj, struct eval_out *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  if (over_budget(x)) return OPT_STOPPED;
  struct recipe *rc = x->rc;
  struct recipe_prompt saved[RECIPE_N_ROLES];
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (v->has[i]) {
      saved[i] = rc->roles[i].prompt;
      rc->roles[i].prompt = v->compiled[i];
    }
  int64_t seed0 = rc->seed;
  rc->seed = (int64_t)rng_derive(x->seed, "optimize|%s|%s|%d", v->sha, split_names[split], k);
  struct run_opts ro;
  memset(&ro, 0, sizeof ro);
  ro.new_run = 1;
  ro.quiet = 1;
  ro.progress = 0;
  ro.command_line = x->o->command_line;
  ro.source_ids = ids;
  ro.n_source_ids = n;
  ro.store = x->st;
  struct run_summary rs;
  int rc_ = run_execute(rc, &ro, &rs, err, errlen);
  rc->seed = seed0;
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (v->has[i]) rc->roles[i].prompt = saved[i];
  x->sum->calls_sent += rs.calls_sent;
  x->sum->cache_hits += rs.cache_hits;
  x->tokens += rs.prompt_tokens + rs.completion_tokens;
  x->cost += rs.cost;
  if (rc_) {
    if (rs.bad_input) x->sum->bad_input = 1;
    return rc_;
  }
  if (rs.stopped) {
    x->interrupted = 1;
    x->sum->stopped = 1;
    snprintf(x->sum->stop_reason, sizeof x->sum->stop_reason, "%.200s", rs.stop_reason);
    return OPT_STOPPED;
  }
  struct collect c = {x->st, xcalloc(n + 1, sizeof *c.acc), n, NULL, json_object()};
  struct buf traj;
  buf_init(&traj, 256 * 1024);
  if (want_traj) c.traj = &traj;
  for (size_t i = 0; i < n; i++) c.acc[i].id = ids[i];
  if (want_traj) {
    if (!(rc_ = store_calls_each(x->st, rs.run_id, "weak", 1, collect_call, &c)))
      rc_ = store_calls_each(x->st, rs.run_id, "judge_weak", 1, collect_call, &c);
    if (!rc_) sort_answers(c.answers);
  }
  if (!rc_) rc_ = store_candidates_each(x->st, rs.run_id, NULL, collect_cand, &c);
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
  if (want_traj) out->traj = buf_take(&traj, NULL);
  buf_release(&traj);
  free(c.acc);
  json_decref(c.answers);
  if (!rc_) {
    char key[160];
    snprintf(key, sizeof key, "%s|%s|%04d", v->sha, split_names[split], k);
    json_t *rec = json_pack("{s:s,s:s,s:i,s:I,s:f,s:I,s:o}", "variant", v->sha, "split",
                            split_names[split], "k", k, "run", (json_int_t)rs.run_id, "score",
                            jx_round6(out->score), "sources", (json_int_t)out->n_src, "per_source",
                            per);
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

/* ---- the optimiser's own model calls (analyzer, implementer), behind the cache --- */

struct ocall {
  struct opt *x;
  struct callrec rec;
  struct callrec_id id;
  int done, store_failed;
  char *content, *error;
};

static void ocall_attempt(void *ud, const struct llm_attempt *a) {
  callrec_attempt(&((struct ocall *)ud)->rec, a);
}

static void ocall_done(void *ud, const struct llm_result *res) {
  struct ocall *c = ud;
  c->done = 1;
  if (callrec_put(c->x->st, c->x->run_id, &c->rec, &c->id, res)) c->store_failed = 1;
  if (res->rc == 0 && res->reply) {
    c->content = xstrdup(res->reply->content ? res->reply->content : "");
    c->x->tokens += res->reply->prompt_tokens + res->reply->completion_tokens;
  } else {
    c->error = xstrdup(res->error ? res->error : ad_strerror(res->rc));
  }
}

static int model_call(struct opt *x, const struct recipe_opt_role *ro, const char *label,
                      const struct tpl_prompt *tp, const json_t *vars, int64_t seed, char **content,
                      char *err, size_t errlen) {
  *content = NULL;
  json_t *messages = NULL;
  int rc = tpl_prompt_render(tp, NULL, vars, 0, &messages, err, errlen);
  if (rc) return rc;
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = ro->temperature;
  p.max_tokens = ro->max_tokens;
  p.has_seed = 1;
  p.seed = seed;
  json_t *body = llm_request_build(ro->model, messages, &p);
  json_decref(messages);
  json_t *merged = body ? llm_merge_extra(x->llm, ro->endpoint, body) : NULL;
  json_decref(body);
  if (!merged) {
    ad_set_err(err, errlen, "optimize.%s: cannot build the request", label);
    return AD_EINVAL;
  }
  struct ocall c;
  memset(&c, 0, sizeof c);
  c.x = x;
  c.id = (struct callrec_id){label, NULL, -1, ro->endpoint, ro->model};
  callrec_begin(&c.rec, ro->endpoint, merged);
  char *cached = NULL;
  size_t clen = 0;
  rc = over_budget(x) ? OPT_STOPPED : store_cache_get(x->st, c.rec.key, &cached, &clen);
  if (rc == 0) {
    struct llm_reply rep;
    memset(&rep, 0, sizeof rep);
    if (llm_reply_parse(cached, clen, &rep, err, errlen) == 0)
      *content = xstrdup(rep.content ? rep.content : "");
    else rc = AD_EPARSE;
    llm_reply_release(&rep);
    free(cached);
    x->sum->cache_hits++;
    if (!rc && callrec_put(x->st, x->run_id, &c.rec, &c.id, NULL)) rc = AD_EIO;
  } else if (rc == AD_ENOTFOUND) {
    if ((rc = llm_submit_serialized(x->llm, ro->endpoint, merged, c.rec.canon, c.rec.canon_len,
                                    ocall_done, ocall_attempt, &c))) {
      ad_set_err(err, errlen, "%s", llm_client_errmsg(x->llm));
    } else {
      x->sum->calls_sent++;
      while (!c.done) llm_client_run_once(x->llm, 100);
      if (c.store_failed) rc = AD_EIO;
      else if (c.error) {
        ad_set_err(err, errlen, "optimize.%s (%s on endpoint '%s'): %s", label, ro->model,
                   ro->endpoint, c.error);
        rc = AD_EHTTP;
      } else {
        *content = c.content;
        c.content = NULL;
      }
    }
  }
  if (rc == AD_EIO) ad_set_err(err, errlen, "%s", store_errmsg(x->st));
  free(c.content);
  free(c.error);
  callrec_release(&c.rec);
  json_decref(merged);
  return rc;
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
  if (c->parallel > 1 && !o->quiet)
    log_warn(
        "optimize.parallel %d: iterations run one after another in this version "
        "(docs/optimize.md)",
        c->parallel);
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
  char sha[65];
  opt_variant_sha(ident, sha);
  json_decref(ident);
  snprintf(x->id, sizeof x->id, "%.16s", sha);
  /* the corpus's ids, and the splits */
  struct src_corpus corpus;
  if ((r = src_load(&rc->sources, &corpus, err, errlen))) {
    x->sum->bad_input = 1;
    return r;
  }
  x->n_ids = corpus.n;
  x->ids = xcalloc(corpus.n + 1, sizeof *x->ids);
  for (size_t i = 0; i < corpus.n; i++) x->ids[i] = xstrdup(corpus.docs[i].id);
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

static int iteration(struct opt *x, int iter, char *err, size_t errlen) {
  struct variant *parent = pick_parent(x, iter);
  double parent_mean0 = opt_val_mean(parent);
  const char **mb = draw_minibatch(x, iter);
  struct eval_out tr, pv, mv;
  memset(&pv, 0, sizeof pv);
  memset(&mv, 0, sizeof mv);
  int rc = evaluate(x, parent, 0, iter, mb, (size_t)x->cfg.minibatch, 1, &tr, err, errlen);
  if (rc) {
    free(mb);
    return rc;
  }
  double parent_train = tr.score;
  const char *objective = recipe_opt_objective_name(x->cfg.objective);
  char *analysis = NULL, *reply = NULL, *rationale = NULL;
  json_t *mutant_prompts = NULL, *hist = history_tail(x);
  json_t *vars = json_pack("{s:s,s:o,s:s,s:f,s:s}", "trajectories", tr.traj ? tr.traj : "",
                           "history", hist, "objective", objective, "score", jx_round6(tr.score),
                           "goal", x->rc->goal);
  rc = model_call(x, &x->cfg.analyzer, "analyzer", &x->analyzer_tpl, vars,
                  (int64_t)rng_derive(x->seed, "optimize|analyzer|%d", iter), &analysis, err,
                  errlen);
  json_decref(vars);
  eval_out_release(&tr);
  if (rc) goto out;
  char list[128] = "";
  for (int i = 0, off = 0; i < RECIPE_N_ROLES; i++)
    if (x->cfg.editable[i] && json_object_get(parent->prompts, recipe_role_name(i)))
      off += snprintf(list + off, sizeof list - (size_t)off, "%s%s", off ? ", " : "",
                      recipe_role_name((enum recipe_role_id)i));
  vars = json_pack("{s:s,s:o,s:o,s:s,s:i,s:s,s:s}", "analysis", analysis, "history",
                   history_tail(x), "prompts", prompts_list(x, parent->prompts), "editable", list,
                   "max_prompt_chars", x->cfg.max_prompt_chars, "objective", objective, "goal",
                   x->rc->goal);
  rc = model_call(x, &x->cfg.implementer, "implementer", &x->implementer_tpl, vars,
                  (int64_t)rng_derive(x->seed, "optimize|implementer|%d", iter), &reply, err,
                  errlen);
  json_decref(vars);
  if (rc) goto out;
  char reason[512];
  json_t *base_prompts = x->vars[0]->prompts;
  const char *status;
  struct variant *mut = NULL;
  char *ana1 = first_line(strchr(analysis, '\n') ? strchr(analysis, '\n') + 1 : analysis, 200);
  if (opt_lock_check(x->rc, base_prompts, parent->prompts, reply, &mutant_prompts, &rationale,
                     reason, sizeof reason)) {
    status = "refused";
    char sha[65];
    json_t *raw = json_pack("{s:s}", "reply", reply);
    opt_variant_sha(raw, sha);
    json_t *rec = json_pack("{s:s,s:s,s:i,s:s,s:s,s:s}", "sha256", sha, "parent", parent->sha,
                            "iteration", iter, "status", status, "reason", reason, "reply", reply);
    rc = store_opt_put(x->st, STORE_OPT_VARIANTS, x->id, sha, rec);
    json_decref(rec);
    json_decref(raw);
    x->sum->refused++;
    note(x, iter,
         "Iteration %d: parent %.8s (validation mean %.3f over %d). Analysis: %s The "
         "implementer's proposal was refused by the locked evaluator: %s.",
         iter, parent->sha, parent_mean0, parent->n_val, ana1, reason);
    json_array_append_new(x->iters,
                          json_pack("{s:i,s:s,s:s,s:s,s:f,s:i}", "iteration", iter, "parent",
                                    parent->sha, "status", status, "reason", reason, "parent_mean",
                                    jx_round6(parent_mean0), "parent_n", parent->n_val));
    free(ana1);
    goto out;
  }
  char msha[65];
  opt_variant_sha(mutant_prompts, msha);
  struct variant *dup = variant_find(x, msha);
  if (dup) {
    status = "refused";
    snprintf(reason, sizeof reason, "the proposal repeats variant %.8s", dup->sha);
    x->sum->refused++;
    note(x, iter, "Iteration %d: parent %.8s. Analysis: %s The proposal repeated variant %.8s.",
         iter, parent->sha, ana1, dup->sha);
    json_array_append_new(x->iters,
                          json_pack("{s:i,s:s,s:s,s:s,s:f,s:i}", "iteration", iter, "parent",
                                    parent->sha, "status", status, "reason", reason, "parent_mean",
                                    jx_round6(parent_mean0), "parent_n", parent->n_val));
    free(ana1);
    goto out;
  }
  mut = variant_new(x, mutant_prompts, parent, iter, rationale);
  mutant_prompts = NULL;
  if (x->cfg.minibatch_gate) { /* GEPA: the parent's minibatch first */
    struct eval_out g;
    if ((rc = evaluate(x, mut, 0, iter, mb, (size_t)x->cfg.minibatch, 0, &g, err, errlen))) {
      free(ana1);
      goto out;
    }
    double ms = g.score;
    eval_out_release(&g);
    if (!(ms > parent_train)) {
      status = "gated";
      mut->gated = 1;
      x->sum->gated++;
      note(x, iter,
           "Iteration %d: parent %.8s. Analysis: %s Change: %s. The mutant %.8s scored %.3f on "
           "the parent's train minibatch against the parent's %.3f: not evaluated on "
           "validation.",
           iter, parent->sha, ana1, *mut->rationale ? mut->rationale : "(no rationale given)",
           mut->sha, ms, parent_train);
      free(ana1);
      if ((rc = put_variant(x, mut, "gated", NULL))) {
        ad_set_err(err, errlen, "%s", store_errmsg(x->st));
        goto out;
      }
      json_array_append_new(
          x->iters, json_pack("{s:i,s:s,s:s,s:s,s:f,s:i,s:f,s:f}", "iteration", iter, "parent",
                              parent->sha, "mutant", mut->sha, "status", status, "parent_mean",
                              jx_round6(parent_mean0), "parent_n", parent->n_val, "parent_train",
                              jx_round6(parent_train), "mutant_train", jx_round6(ms)));
      goto out;
    }
  }
  if ((rc = evaluate(x, parent, 1, parent->n_val, x->split_ids[1], x->split_n[1], 0, &pv, err,
                     errlen)) ||
      (rc = evaluate(x, mut, 1, 0, x->split_ids[1], x->split_n[1], 0, &mv, err, errlen))) {
    free(ana1);
    goto out;
  }
  add_val(x, parent, &pv);
  add_val(x, mut, &mv);
  double pmean = opt_val_mean(parent);
  mut->admitted = mv.score > pmean;
  status = mut->admitted ? "accepted" : "rejected";
  if (mut->admitted) x->sum->accepted++;
  else x->sum->rejected++;
  note(x, iter,
       "Iteration %d: parent %.8s. Analysis: %s Change: %s. The mutant %.8s scored %.3f on "
       "validation against the parent's mean %.3f over %d evaluations: %s.",
       iter, parent->sha, ana1, *mut->rationale ? mut->rationale : "(no rationale given)", mut->sha,
       mv.score, pmean, parent->n_val, mut->admitted ? "admitted" : "not admitted");
  free(ana1);
  if ((rc = put_variant(x, mut, mut->admitted ? "admitted" : "rejected", NULL)) ||
      (rc = put_variant(x, parent, "admitted", NULL))) {
    ad_set_err(err, errlen, "%s", store_errmsg(x->st));
    goto out;
  }
  json_array_append_new(x->iters,
                        json_pack("{s:i,s:s,s:s,s:s,s:f,s:i,s:f,s:f}", "iteration", iter, "parent",
                                  parent->sha, "mutant", mut->sha, "status", status, "parent_mean",
                                  jx_round6(pmean), "parent_n", parent->n_val, "parent_val",
                                  jx_round6(pv.score), "mutant_val", jx_round6(mv.score)));
out:
  if (!rc) {
    json_t *it = json_array_get(x->iters, json_array_size(x->iters) - 1);
    struct variant *best = NULL;
    for (int i = 0; i < x->n_vars; i++)
      if (x->vars[i]->admitted && (!best || opt_val_mean(x->vars[i]) > opt_val_mean(best)))
        best = x->vars[i];
    json_object_set_new(it, "best", json_string(best->sha));
    json_object_set_new(it, "best_mean", json_real(jx_round6(opt_val_mean(best))));
    json_object_set_new(it, "best_n", json_integer(best->n_val));
    json_object_set_new(it, "calls_sent", json_integer(x->sum->calls_sent));
    json_object_set_new(it, "summary",
                        json_deep_copy(json_object_get(
                            json_array_get(x->history, json_array_size(x->history) - 1), "text")));
    char key[16];
    snprintf(key, sizeof key, "%05d", iter);
    if (store_opt_put(x->st, STORE_OPT_ITERATIONS, x->id, key, it) || store_flush(x->st)) {
      ad_set_err(err, errlen, "%s", store_errmsg(x->st));
      rc = AD_EIO;
    }
    if (!x->o->quiet)
      log_info("iteration %d/%d: %s; best %.8s validation %.3f over %d; %lld calls sent", iter,
               x->cfg.iterations, jx_str(it, "status"), best->sha, opt_val_mean(best), best->n_val,
               (long long)x->sum->calls_sent);
  }
  free(mb);
  eval_out_release(&pv);
  eval_out_release(&mv);
  json_decref(mutant_prompts);
  free(analysis);
  free(reply);
  free(rationale);
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
  int rc = evaluate(x, v, 2, 0, x->split_ids[2], x->split_n[2], 0, &e, err, errlen);
  if (rc) return rc;
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
  int r = setup(&x, err, errlen);
  if (r) goto done;
  /* the baseline: the recipe's own prompts */
  json_t *bp = json_object();
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (x.cfg.editable[i] && rc->roles[i].present && rc->roles[i].prompt.text)
      json_object_set_new(bp, recipe_role_name((enum recipe_role_id)i),
                          jx_string_lossy(rc->roles[i].prompt.text, rc->roles[i].prompt.len));
  struct variant *base = variant_new(&x, bp, NULL, 0, "the recipe's prompts");
  base->admitted = 1;
  snprintf(sum->baseline, sizeof sum->baseline, "%s", base->sha);
  struct eval_out e;
  r = evaluate(&x, base, 1, 0, x.split_ids[1], x.split_n[1], 0, &e, err, errlen);
  if (r) goto done;
  add_val(&x, base, &e);
  eval_out_release(&e);
  if ((r = put_variant(&x, base, "admitted", NULL))) {
    ad_set_err(err, errlen, "%s", store_errmsg(x.st));
    goto done;
  }
  if (!o->quiet)
    log_info(
        "optimization %s: baseline %.8s validation %.3f (%zu sources); train %zu, val %zu, "
        "test %zu sources",
        x.id, base->sha, base->val[0], x.split_n[1], x.split_n[0], x.split_n[1], x.split_n[2]);
  for (int it = 1; it <= x.cfg.iterations; it++) {
    if ((r = iteration(&x, it, err, errlen))) break;
    sum->iterations = it;
  }
  if (r && r != OPT_STOPPED) goto done;
  struct variant *best = base;
  for (int i = 0; i < x.n_vars; i++)
    if (x.vars[i]->admitted && opt_val_mean(x.vars[i]) > opt_val_mean(best)) best = x.vars[i];
  snprintf(sum->best, sizeof sum->best, "%s", best->sha);
  sum->base_val = opt_val_mean(base);
  sum->best_val = opt_val_mean(best);
  sum->best_val_n = best->n_val;
  if (r == OPT_STOPPED && x.interrupted) { /* interrupted: the test split waits for the end */
    r = 0;
    goto outputs;
  }
  x.final = 1; /* done, or the optimisation's budget is spent: the test split, once */
  if ((r = test_split(&x, base, err, errlen)) || (r = test_split(&x, best, err, errlen))) {
    if (r == OPT_STOPPED) r = 0;
    else goto done;
  }
outputs:
  r = opt_write_outputs(&x, base, best, err, errlen);
done:
  if (r == OPT_STOPPED) r = 0;
  opt_release(&x);
  return r;
}
