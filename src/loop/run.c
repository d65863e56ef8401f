/* run.c - the run: scheduler, model calls behind the store's cache, progress.
 *
 * One event loop: llm_client_run_once() fires call completions; cache hits wait
 * in a ready queue and are delivered from the same loop (never from inside
 * run_call), so an episode sees the same order of events whether a reply came
 * from the network or from the store. After every iteration the store's batch
 * is flushed when due, and new episodes are started up to the concurrency.
 */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "loop/run_int.h"
#include "report/compare.h"
#include "report/report.h"
#include "util/fs.h"
#include "util/hash.h"
#include "version.h"
#include "util/jsonx.h"
#include "util/log.h"
#include "util/rng.h"
#include "util/timeu.h"

static volatile sig_atomic_t g_signals;

static void on_signal(int sig) {
  (void)sig;
  g_signals++;
}

int64_t run_seed(const struct run *r, const char *source_id, int round, const char *label,
                 int sample) {
  return (int64_t)rng_derive((uint64_t)r->rc->seed, "%s|%d|%s|%d", source_id, round, label, sample);
}

void run_store_failed(struct run *r, const char *what) {
  if (!r->fatal) {
    r->fatal = 1;
    snprintf(r->fatal_msg, sizeof r->fatal_msg, "store error while %s: %s", what,
             store_errmsg(r->st));
  }
  r->stopping = 1;
}

/* ---- calls ------------------------------------------------------------------ */

static void call_free(struct call *c) {
  json_decref(c->body);
  free(c->canon);
  free(c->cached);
  for (int i = 0; i < c->n_attempts; i++) free(c->attempt_err[i]);
  free(c);
}

static double call_cost(const struct run *r, const struct call *c, int64_t pt, int64_t ct) {
  const struct recipe_role *ro = &r->rc->roles[c->role];
  double in = 0, out = 0;
  if (recipe_price(r->rc, ro->endpoint_index, ro->model, &in, &out)) return 0;
  return (double)pt / 1e6 * in + (double)ct / 1e6 * out;
}

static int budget_exceeded(struct run *r) {
  const struct recipe_budgets *b = &r->rc->budgets;
  const struct run_summary *s = r->sum;
  const char *why = NULL;
  char msg[200];
  if (b->max_calls > 0 && s->calls_sent >= b->max_calls) why = "max_calls";
  else if (b->max_tokens > 0 && s->prompt_tokens + s->completion_tokens >= b->max_tokens) why = "max_tokens";
  else if (b->max_cost > 0 && s->cost >= b->max_cost) why = "max_cost";
  if (!why) return 0;
  if (!r->sum->stopped) {
    r->sum->stopped = 1;
    snprintf(msg, sizeof msg, "budget reached: %s", why);
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason, "%s", msg);
    json_t *ev = json_pack("{s:s,s:s}", "msg", msg, "budget", why);
    if (store_event_put(r->st, r->run_id, LOG_WARN, ev)) run_store_failed(r, "recording an event");
    json_decref(ev);
  }
  r->stopping = 1;
  return 1;
}

static void call_deliver(struct call *c, const struct call_out *out) {
  struct run *r = c->run;
  r->outstanding--;
  c->cb(c->ep, c->sample, out);
}

static void on_attempt(void *ud, const struct llm_attempt *a) {
  struct call *c = ud;
  if (c->n_attempts >= CALL_MAX_ATTEMPTS) return;
  int i = c->n_attempts++;
  c->attempt_err[i] = a->error ? strdup(a->error) : NULL;
  c->attempts[i].number = a->number;
  c->attempts[i].http_status = a->http_status;
  c->attempts[i].error = c->attempt_err[i];
  c->attempts[i].latency_us = a->latency_us;
  c->attempts[i].retry_after_ms = a->retry ? a->retry_after_ms : 0;
}

void run_call_outcome(struct store_call *sc, const struct llm_result *res) {
  sc->reply = res->body;
  sc->reply_len = res->body_len;
  sc->error = res->rc ? (res->error ? res->error : ad_strerror(res->rc)) : NULL;
  sc->http_status = res->http_status;
  if (res->rc == 0 && res->reply) {
    sc->prompt_tokens = res->reply->prompt_tokens;
    sc->completion_tokens = res->reply->completion_tokens;
  }
  sc->latency_us = res->latency_us;
  sc->attempts = res->attempts;
  sc->retries = res->attempts > 0 ? res->attempts - 1 : 0;
}

static void record_call(struct run *r, struct call *c, const struct llm_result *res,
                        const char *canon, size_t canon_len) {
  const struct recipe_role *ro = &r->rc->roles[c->role];
  struct store_call sc;
  memset(&sc, 0, sizeof sc);
  sc.run = r->run_id;
  sc.role = c->label;
  sc.source_id = c->ep ? ep_source_id(c->ep) : NULL;
  sc.round = c->ep ? ep_round(c->ep) : -1;
  sc.endpoint = ro->endpoint;
  sc.model = ro->model;
  sc.cache_key = c->key;
  sc.request = canon;
  sc.request_len = canon_len;
  if (res)
    run_call_outcome(&sc, res);
  else
    sc.cache_hit = 1;
  sc.attempt_list = c->attempts;
  sc.n_attempt_list = c->n_attempts;
  if (store_call_put(r->st, &sc)) run_store_failed(r, "recording a model call");
}

int run_schema_ok(const struct run *r, const char *endpoint) {
  return !json_object_get(r->no_schema, endpoint);
}

/* A 400 that names response_format: the server has no structured outputs. */
static int refused_schema(const struct call *c, const struct llm_result *res) {
  return res->rc == AD_EHTTP && res->http_status == 400 && res->error &&
         json_object_get(c->body, "response_format") &&
         (strcasestr(res->error, "response_format") || strcasestr(res->error, "json_schema") ||
          strcasestr(res->error, "structured output"));
}

/* Send the same request again without response_format (the parser extracts the
 * JSON from the text), and stop asking this endpoint for it in this run. */
static void resend_without_schema(struct run *r, struct call *c, const struct llm_result *res) {
  const char *endpoint = r->rc->roles[c->role].endpoint;
  if (!json_object_get(r->no_schema, endpoint)) {
    log_warn("endpoint '%s' refused response_format (%s); sending its requests without it",
             endpoint, res->error);
    json_t *ev = json_pack("{s:s,s:s,s:s}", "msg", "endpoint refused response_format",
                           "endpoint", endpoint, "error", res->error);
    if (store_event_put(r->st, r->run_id, LOG_WARN, ev)) run_store_failed(r, "recording an event");
    json_decref(ev);
    json_object_set_new(r->no_schema, endpoint, json_true());
  }
  json_t *body = json_deep_copy(c->body);
  json_object_del(body, "response_format");
  r->outstanding--; /* this call ends here; run_call counts the new one */
  if (run_call(r, c->ep, c->role, c->label, c->sample, body, c->cb)) {
    struct call_out out;
    memset(&out, 0, sizeof out);
    out.budget_stop = 1;
    c->cb(c->ep, c->sample, &out);
  }
}

/* Failed calls in a row (each after its own retries) that stop the run. */
#define RUN_INFRA_STOP 3

/* Whether a call's final failure is the infrastructure's (the endpoint is down,
 * overloaded, misconfigured, or answers garbage) rather than this request's
 * (400/413/422: e.g. a prompt longer than the model's context, or a reply over
 * the size cap). Only the request's failures become a candidate's rejection
 * reason; an infrastructure failure sets the episode aside, unfinished, so a
 * later run resumes it: no source is written off because a server was down. */
static int infra_failure(const struct llm_result *res) {
  switch (res->rc) {
  case 0:
  case AD_ECANCELED:
  case AD_ETOOBIG: return 0;
  case AD_EHTTP:
    return !(res->http_status == 400 || res->http_status == 413 || res->http_status == 422);
  default: return 1; /* AD_ENET, AD_ETIMEOUT, AD_EPARSE (garbage after retries), ... */
  }
}

static void on_infra_failure(struct run *r, const struct call *c, const struct llm_result *res) {
  const char *endpoint = r->rc->roles[c->role].endpoint;
  const char *why = res->error ? res->error : ad_strerror(res->rc);
  log_warn("%s call failed after %d attempts, source set aside for a later run: %s", c->label,
           res->attempts, why);
  json_t *ev = json_pack("{s:s,s:s,s:s,s:s?}", "msg", "infrastructure failure", "endpoint",
                         endpoint, "error", why, "source_id", c->ep ? ep_source_id(c->ep) : NULL);
  if (store_event_put(r->st, r->run_id, LOG_WARN, ev)) run_store_failed(r, "recording an event");
  json_decref(ev);
  if (++r->infra_streak >= RUN_INFRA_STOP && !r->sum->stopped) {
    r->sum->stopped = 1;
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason,
             "%d calls in a row failed after their retries; last: %s", r->infra_streak, why);
    r->stopping = 1;
  }
}

static void on_done(void *ud, const struct llm_result *res) {
  struct call *c = ud;
  struct run *r = c->run;
  if (res->rc != AD_ECANCELED) record_call(r, c, res, c->canon, c->canon_len);
  if (refused_schema(c, res)) {
    resend_without_schema(r, c, res);
    call_free(c);
    return;
  }
  struct call_out out;
  memset(&out, 0, sizeof out);
  if (res->rc == 0 && res->reply) {
    r->infra_streak = 0;
    r->sum->prompt_tokens += res->reply->prompt_tokens;
    r->sum->completion_tokens += res->reply->completion_tokens;
    r->sum->cost += call_cost(r, c, res->reply->prompt_tokens, res->reply->completion_tokens);
    out.ok = 1;
    out.content = res->reply->content ? res->reply->content : "";
  } else if (res->rc == AD_ECANCELED) {
    out.budget_stop = 1;
  } else if (infra_failure(res)) {
    on_infra_failure(r, c, res);
    out.budget_stop = 1; /* set the episode aside */
  } else {
    out.error = res->error ? res->error : ad_strerror(res->rc);
  }
  call_deliver(c, &out);
  call_free(c);
}

int run_call(struct run *r, struct episode *ep, enum recipe_role_id role, const char *label,
             int sample, json_t *body, call_cb cb) {
  struct call *c = calloc(1, sizeof *c);
  if (!c) {
    json_decref(body);
    return AD_ENOMEM;
  }
  c->run = r;
  c->ep = ep;
  c->cb = cb;
  c->sample = sample;
  c->role = role;
  c->body = body;
  snprintf(c->label, sizeof c->label, "%s", label);
  const struct recipe_role *ro = &r->rc->roles[role];
  /* The body as sent (endpoint extras merged in), so the cache key covers it;
   * its canonical text is both the key's material and what goes on the wire. */
  json_t *wire = llm_merge_extra(r->llm, ro->endpoint, body);
  if (!wire) {
    call_free(c);
    return AD_ENOMEM;
  }
  json_decref(c->body);
  c->body = wire;
  body = wire;
  c->canon = jx_dump_canonical(body);
  if (!c->canon) {
    call_free(c);
    return AD_ENOMEM;
  }
  c->canon_len = strlen(c->canon);
  store_cache_key_text(ro->endpoint, c->canon, c->canon_len, c->key);
  char *reply = NULL;
  size_t len = 0;
  int rc = store_cache_get(r->st, c->key, &reply, &len);
  if (rc == 0) {
    c->cache_hit = 1;
    c->cached = reply;
    c->cached_len = len;
    r->sum->cache_hits++;
    record_call(r, c, NULL, NULL, 0);
    if (r->ready_tail)
      r->ready_tail->next = c;
    else
      r->ready_head = c;
    r->ready_tail = c;
    r->outstanding++;
    return 0;
  }
  if (rc != AD_ENOTFOUND) {
    run_store_failed(r, "reading the cache");
    call_free(c);
    return rc;
  }
  if (r->stopping || budget_exceeded(r)) {
    call_free(c);
    return AD_EBUDGET;
  }
  rc = llm_submit_serialized(r->llm, ro->endpoint, body, c->canon, c->canon_len, on_done,
                             on_attempt, c);
  if (rc) {
    call_free(c);
    return rc;
  }
  r->sum->calls_sent++;
  r->outstanding++;
  return 0;
}

/* Deliver cache hits queued so far (and those their callbacks queue). */
static void drain_ready(struct run *r) {
  while (r->ready_head) {
    struct call *c = r->ready_head;
    r->ready_head = c->next;
    if (!r->ready_head) r->ready_tail = NULL;
    struct llm_reply rep;
    char err[256];
    struct call_out out;
    memset(&out, 0, sizeof out);
    memset(&rep, 0, sizeof rep);
    if (llm_reply_parse(c->cached, c->cached_len, &rep, err, sizeof err) == 0) {
      out.ok = 1;
      out.content = rep.content ? rep.content : "";
    } else {
      out.error = err; /* a cached reply that no longer parses: treat as a failed call */
    }
    call_deliver(c, &out);
    llm_reply_free(&rep);
    call_free(c);
  }
}

/* ---- episodes ----------------------------------------------------------------- */

void run_episode_ended(struct run *r, struct episode *ep, int finished, int accepted) {
  (void)accepted;
  r->active--;
  if (finished) {
    if (accepted)
      r->sum->done++;
    else
      r->sum->exhausted++;
  } else {
    r->sum->parked++;
  }
  ep_free(ep);
}

/* Start episodes up to the concurrency. Sources already finished in the store
 * are skipped (resume). */
static void start_episodes(struct run *r) {
  while (!r->stopping && r->active < r->concurrency && r->next_doc < r->corpus.n) {
    const struct src_doc *doc = &r->corpus.docs[r->next_doc++];
    struct store_source ss;
    int rc = store_source_get(r->st, r->run_id, doc->id, &ss);
    if (rc == 0 && (ss.state == STORE_SRC_DONE || ss.state == STORE_SRC_EXHAUSTED)) {
      r->sum->skipped_done++;
      if (ss.state == STORE_SRC_DONE) {
        r->sum->done++;
        if (r->method == BL_AGENTIC)
          r->sum->accepted += (size_t)ss.accepted;
        else
          r->sum->kept += (size_t)ss.accepted; /* baselines store what their filter keeps */
      } else {
        r->sum->exhausted++;
      }
      continue;
    }
    if (rc != 0 && rc != AD_ENOTFOUND) {
      run_store_failed(r, "reading a source");
      return;
    }
    if (store_source_set_state(r->st, r->run_id, doc->id, STORE_SRC_IN_PROGRESS, -1)) {
      run_store_failed(r, "marking a source in progress");
      return;
    }
    struct episode *ep = ep_new(r, doc);
    if (!ep) {
      r->fatal = 1;
      snprintf(r->fatal_msg, sizeof r->fatal_msg, "out of memory");
      r->stopping = 1;
      return;
    }
    r->active++;
    ep_start(ep);
  }
}

/* ---- progress ----------------------------------------------------------------- */

static void progress(struct run *r, int final) {
  if (r->opts->quiet) return;
  int64_t now = time_now_ms();
  int interval = r->live_progress ? 250 : 5000;
  if (!final && now - r->last_progress_ms < interval) return;
  r->last_progress_ms = now;
  const struct run_summary *s = r->sum;
  double el = (double)(now - r->t0_ms) / 1000.0;
  size_t finished = s->done + s->exhausted;
  size_t fresh = finished - s->skipped_done;
  double rate = finished ? 100.0 * (double)s->done / (double)finished : 0;
  double eta = fresh && el > 0 ? el / (double)fresh * (double)(r->corpus.n - finished) : -1;
  char etas[32] = "?";
  if (eta >= 0) snprintf(etas, sizeof etas, "%.0fs", eta);
  char costs[32] = "";
  if (s->cost > 0) snprintf(costs, sizeof costs, ", $%.2f", s->cost);
  char line[400];
  snprintf(line, sizeof line,
           "sources %zu/%zu, accepted %zu (%.0f%% of finished), %.1f calls/s, %.0f tok/s%s, "
           "cache %lld, ETA %s",
           finished, r->corpus.n, s->accepted, rate, el > 0 ? (double)s->calls_sent / el : 0,
           el > 0 ? (double)(s->prompt_tokens + s->completion_tokens) / el : 0, costs,
           (long long)s->cache_hits, final ? "0s" : etas);
  if (r->live_progress) {
    fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
  } else {
    fprintf(stderr, "autodata: %s\n", line);
  }
  fflush(stderr);
}

/* ---- setup ------------------------------------------------------------------- */

/* The method and its settings, as recorded in the run info ("method"). */
static json_t *method_json(const struct run *r) {
  if (r->method == BL_AGENTIC) return json_pack("{s:s}", "name", "agentic");
  if (r->method == BL_SELF_INSTRUCT) return json_pack("{s:s}", "name", "self-instruct");
  return json_pack("{s:s,s:i,s:f,s:f}", "name", bl_method_name(r->method), "k", r->bl.k,
                   "rip_threshold", r->bl.rip_threshold, "ac_min_share", r->bl.ac_min_share);
}

/* Resolve the method, its settings and the output paths. */
static int setup_method(struct run *r, char *err, size_t errlen) {
  const struct recipe *rc = r->rc;
  const char *name = r->opts->method ? r->opts->method : rc->method ? rc->method : "agentic";
  if (bl_method_parse(name, &r->method)) {
    snprintf(err, errlen, "unknown method '%s' (expected agentic, self-instruct or cot-self-instruct)", name);
    return AD_EINVAL;
  }
  snprintf(r->sum->method, sizeof r->sum->method, "%s", bl_method_name(r->method));
  /* The recipe's `baselines:` (defaults k 4, 0.5, 0.5), each overridden by
   * the option when given (k > 0, a threshold or share that is not NaN). */
  r->bl.k = rc->baselines.k;
  r->bl.rip_threshold = rc->baselines.rip_threshold;
  r->bl.ac_min_share = rc->baselines.ac_min_share;
  if (r->opts->bl) {
    const struct bl_params *ob = r->opts->bl;
    if (ob->k > 0) r->bl.k = ob->k;
    if (!isnan(ob->rip_threshold)) r->bl.rip_threshold = ob->rip_threshold;
    if (!isnan(ob->ac_min_share)) r->bl.ac_min_share = ob->ac_min_share;
  }
  if (bl_params_check(&r->bl, err, errlen)) return AD_EINVAL;
  /* Output folder: the option, else the recipe's; a baseline whose recipe
   * keeps the default folder runs/<name> goes to runs/<name>-<method>. */
  const char *folder = rc->output_folder;
  char *def = NULL, *def_store = NULL, *alt = NULL;
  int rc_ = 0;
  if (asprintf(&def, "runs/%s", rc->name) < 0) def = NULL;
  if (asprintf(&def_store, "%s/store.db", rc->output_folder) < 0) def_store = NULL;
  if (!def || !def_store) { rc_ = AD_ENOMEM; goto done; }
  int default_store = !strcmp(rc->store_path, def_store);
  if (r->opts->output_folder) {
    folder = r->opts->output_folder;
    default_store = 1;
  } else if (r->method != BL_AGENTIC && !strcmp(rc->output_folder, def) && default_store) {
    if (asprintf(&alt, "%s-%s", def, bl_method_name(r->method)) < 0) { rc_ = AD_ENOMEM; goto done; }
    folder = alt;
  }
  r->output_folder = strdup(folder);
  if (default_store) {
    if (asprintf(&r->store_path, "%s/store.db", folder) < 0) r->store_path = NULL;
  } else {
    r->store_path = strdup(rc->store_path);
  }
  if (!r->output_folder || !r->store_path) rc_ = AD_ENOMEM;
done:
  free(def);
  free(def_store);
  free(alt);
  if (rc_ == AD_ENOMEM) snprintf(err, errlen, "out of memory");
  return rc_;
}

/* Load and compile the baseline's challenger prompt <method>-<task>.md from the
 * default prompts folder. */
static int load_baseline_prompt(struct run *r, char *err, size_t errlen) {
  char dir[4096];
  const struct recipe *rc = r->rc;
  if (rc->prompts_dir)
    snprintf(dir, sizeof dir, "%s", rc->prompts_dir);
  else if (recipe_default_prompts_dir(dir, sizeof dir)) {
    snprintf(err, errlen, "method %s: the default prompts folder was not found (set AUTODATA_PROMPTS)",
             bl_method_name(r->method));
    return AD_ENOTFOUND;
  }
  if (asprintf(&r->bl_prompt_path, "%s/%s-%s.md", dir, bl_method_name(r->method),
               recipe_task_name(rc->task)) < 0) {
    r->bl_prompt_path = NULL;
    return AD_ENOMEM;
  }
  int rc_ = fs_read_all(r->bl_prompt_path, RECIPE_MAX_PROMPT_FILE, &r->bl_prompt_text, &r->bl_prompt_len);
  if (rc_) {
    snprintf(err, errlen, "method %s: cannot read its challenger prompt %s: %s",
             bl_method_name(r->method), r->bl_prompt_path, ad_strerror(rc_));
    return rc_;
  }
  sha256_hex(r->bl_prompt_text, r->bl_prompt_len, r->bl_prompt_sha);
  char e2[512];
  rc_ = tpl_prompt_compile(r->bl_prompt_text, r->bl_prompt_len, r->bl_prompt_path, &r->bl_prompt, e2, sizeof e2);
  if (rc_) snprintf(err, errlen, "%s", e2);
  return rc_;
}

static int latest_run_row(void *ud, const json_t *row) {
  json_t **out = ud;
  json_decref(*out);
  *out = json_deep_copy(row);
  return 0;
}

/* Resume must not mix methods: compare the latest run's recorded method (runs
 * from before methods existed are agentic) with this one. */
static int check_method(struct run *r, char *err, size_t errlen) {
  json_t *row = NULL;
  int rc_ = store_runs_each(r->st, latest_run_row, &row);
  if (rc_ || !row) {
    json_decref(row);
    if (rc_) snprintf(err, errlen, "%s", store_errmsg(r->st));
    return rc_;
  }
  const json_t *info = json_object_get(row, "info");
  const json_t *extra = json_object_get(info, "extra");
  const json_t *old = json_object_get(extra, "method");
  json_t *def = json_pack("{s:s}", "name", "agentic");
  json_t *neu = method_json(r);
  if (!old) old = def;
  if (!json_equal((json_t *)old, neu)) {
    char *a = jx_dump_canonical(old), *b = jx_dump_canonical(neu);
    snprintf(err, errlen,
             "store %s holds a run of another method or filter setting: %s -> %s (use --new-run "
             "to start a new run in this store, or --out DIR for another folder)",
             r->store_path, a ? a : "?", b ? b : "?");
    free(a);
    free(b);
    rc_ = AD_EMISMATCH;
  }
  json_decref(def);
  json_decref(neu);
  json_decref(row);
  return rc_;
}

static json_t *run_extra(const struct run *r) {
  const struct recipe *rc = r->rc;
  json_t *prompts = json_object();
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const struct recipe_role *ro = &rc->roles[i];
    if (!ro->present || !ro->prompt.text) continue;
    if (r->method != BL_AGENTIC && i == RECIPE_ROLE_ORCHESTRATOR) continue;
    if (r->method != BL_AGENTIC && i == RECIPE_ROLE_CHALLENGER) {
      json_object_set_new(prompts, "challenger",
                          json_pack("{s:s,s:s,s:o}", "path", r->bl_prompt_path, "sha256",
                                    r->bl_prompt_sha, "text",
                                    jx_string_lossy(r->bl_prompt_text, r->bl_prompt_len)));
      continue;
    }
    json_object_set_new(prompts, recipe_role_name((enum recipe_role_id)i),
                        json_pack("{s:s,s:s,s:o}", "path", ro->prompt.path ? ro->prompt.path : "",
                                  "sha256", ro->prompt.sha256, "text",
                                  jx_string_lossy(ro->prompt.text, ro->prompt.len)));
  }
  json_t *corpus = json_pack("{s:s,s:I,s:s,s:I,s:I}", "path", rc->sources.path ? rc->sources.path : "",
                             "count", (json_int_t)r->corpus.n, "sha256", r->corpus.sha256,
                             "read", (json_int_t)r->corpus.n_read, "truncated",
                             (json_int_t)r->corpus.n_truncated);
  return json_pack("{s:o,s:o,s:o,s:s,s:s,s:o}", "recipe", recipe_to_json(rc), "prompts", prompts,
                   "corpus", corpus, "command_line",
                   r->opts->command_line ? r->opts->command_line : "", "version", ad_version(),
                   "method", method_json(r));
}

static json_t *prices_json(const struct recipe *rc) {
  json_t *p = json_object();
  for (int i = 0; i < rc->n_endpoints; i++)
    for (int k = 0; k < rc->endpoints[i].n_prices; k++) {
      const struct recipe_price *pr = &rc->endpoints[i].prices[k];
      json_object_set_new(p, pr->model, json_pack("{s:f,s:f}", "prompt_per_mtok", pr->input_per_mtok,
                                                  "completion_per_mtok", pr->output_per_mtok));
    }
  return p;
}

static int setup_llm(struct run *r, char *err, size_t errlen) {
  r->llm = llm_client_new();
  if (!r->llm) return AD_ENOMEM;
  llm_client_set_seed(r->llm, (uint64_t)r->rc->seed);
  for (int i = 0; i < r->rc->n_endpoints; i++) {
    struct llm_endpoint_config cfg;
    if (recipe_endpoint_config(r->rc, i, &cfg)) return AD_EINVAL;
    int rc = llm_client_add_endpoint(r->llm, &cfg);
    if (rc) {
      snprintf(err, errlen, "endpoint '%s': %s", r->rc->endpoints[i].name,
               llm_client_errmsg(r->llm));
      return rc;
    }
  }
  return 0;
}

static void init_checks(struct run *r) {
  const struct recipe_checks *k = &r->rc->checks;
  cand_checks_default(&r->checks);
  r->checks.max_context_chars = k->max_context_chars;
  r->checks.min_context_chars = k->min_context_chars;
  r->checks.leakage_ngram = k->leakage_ngram;
  r->checks.leakage_max_overlap = k->leakage_max_overlap;
  r->checks.rubric_min = k->rubric_min;
  r->checks.rubric_max = k->rubric_max;
  r->checks.max_weight = k->max_weight;
  r->checks.dedup = k->dedup;
}

int run_execute(const struct recipe *rc, const struct run_opts *o, struct run_summary *sum,
                char *err, size_t errlen) {
  struct run r;
  memset(&r, 0, sizeof r);
  memset(sum, 0, sizeof *sum);
  r.rc = rc;
  r.opts = o;
  r.sum = sum;
  r.t0_ms = time_now_ms();
  r.no_schema = json_object();
  int rc_ = 0;
  struct sigaction sa, old_int, old_term;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &old_int);
  sigaction(SIGTERM, &sa, &old_term);
  g_signals = 0;

  /* Sources. */
  struct src_options so = rc->sources;
  if (o->limit) so.limit = o->limit;
  rc_ = src_load(&so, &r.corpus, err, errlen);
  if (rc_) goto out;
  sum->sources = r.corpus.n;
  if ((rc_ = setup_method(&r, err, errlen))) goto out;
  if (r.method != BL_AGENTIC && (rc_ = load_baseline_prompt(&r, err, errlen))) goto out;
  init_checks(&r);
  r.concurrency = o->concurrency > 0 ? o->concurrency : rc->concurrency;
  if (r.concurrency < 1) r.concurrency = 1;

  /* Store. */
  if (fs_mkdirs(r.output_folder)) {
    snprintf(err, errlen, "cannot create output folder %s: %s", r.output_folder, strerror(errno));
    rc_ = AD_EIO;
    goto out;
  }
  snprintf(sum->store_path, sizeof sum->store_path, "%s", r.store_path);
  rc_ = store_open(r.store_path, 0, &r.st);
  if (rc_) {
    snprintf(err, errlen, "%s", r.st ? store_errmsg(r.st) : "out of memory");
    goto out;
  }
  if (o->cache_from && (rc_ = store_attach_cache(r.st, o->cache_from))) {
    snprintf(err, errlen, "%s", store_errmsg(r.st));
    goto out;
  }
  r.prompt_hashes = json_object();
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    if (!rc->roles[i].present) continue;
    const char *sha = rc->roles[i].prompt.sha256;
    if (r.method != BL_AGENTIC && i == RECIPE_ROLE_ORCHESTRATOR) continue; /* not used */
    if (r.method != BL_AGENTIC && i == RECIPE_ROLE_CHALLENGER) sha = r.bl_prompt_sha;
    json_object_set_new(r.prompt_hashes, recipe_role_name((enum recipe_role_id)i), json_string(sha));
  }
  if (!o->new_run && (rc_ = check_method(&r, err, errlen))) goto out;
  {
    json_t *extra = run_extra(&r);
    json_t *prices = prices_json(rc);
    struct store_run_info info = {rc->name, rc->sha256, r.prompt_hashes, (uint64_t)rc->seed,
                                  ad_version(), o->command_line, prices, extra};
    int resumed = 0;
    rc_ = store_run_begin(r.st, &info, o->new_run, &r.run_id, &resumed);
    json_decref(extra);
    json_decref(prices);
    if (rc_) {
      snprintf(err, errlen, "%s%s", store_errmsg(r.st),
               rc_ == AD_EMISMATCH ? " (use --new-run to start a new run in this store, or "
                                     "point output.folder elsewhere)"
                                   : "");
      goto out;
    }
    if (resumed && !o->quiet) log_info("resuming run %lld in %s", (long long)r.run_id, r.store_path);
  }
  for (size_t i = 0; i < r.corpus.n; i++) {
    char sha[65];
    sha256_hex(r.corpus.docs[i].text, r.corpus.docs[i].text_len, sha);
    if ((rc_ = store_source_put(r.st, r.run_id, r.corpus.docs[i].id, r.corpus.docs[i].title, sha))) {
      snprintf(err, errlen, "%s", store_errmsg(r.st));
      goto out;
    }
  }
  if ((rc_ = store_flush(r.st))) {
    snprintf(err, errlen, "%s", store_errmsg(r.st));
    goto out;
  }
  if ((rc_ = setup_llm(&r, err, errlen))) goto out;
  r.live_progress = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;

  /* The loop. */
  int signals_seen = 0;
  for (;;) {
    if (g_signals > signals_seen) {
      signals_seen = g_signals;
      if (!sum->stopped) {
        sum->stopped = 1;
        snprintf(sum->stop_reason, sizeof sum->stop_reason, "interrupted by a signal");
      }
      r.stopping = 1;
      if (signals_seen >= 2) llm_client_cancel_all(r.llm);
    }
    start_episodes(&r);
    drain_ready(&r);
    if (r.active == 0 && (r.stopping || r.next_doc >= r.corpus.n)) break;
    llm_client_run_once(r.llm, r.ready_head ? 0 : 100);
    drain_ready(&r);
    if (store_maybe_flush(r.st, time_now_ms())) run_store_failed(&r, "committing");
    progress(&r, 0);
  }
  if (store_run_set_status(r.st, r.run_id, r.fatal ? "failed" : sum->stopped ? "interrupted" : "done"))
    run_store_failed(&r, "finishing the run");
  if (store_flush(r.st) && !r.fatal) run_store_failed(&r, "committing");
  progress(&r, 1);
  if (r.fatal) {
    snprintf(err, errlen, "%s", r.fatal_msg);
    rc_ = AD_EIO;
    goto out;
  }
  sum->pending = r.corpus.n - sum->done - sum->exhausted;

  /* Outputs, from the store alone. */
  {
    struct report_paths paths;
    rc_ = report_write_all(r.st, r.run_id, r.output_folder, &paths, err, errlen);
    if (rc_) goto out;
    int n = snprintf(sum->candidates_path, sizeof sum->candidates_path, "%s/candidates.jsonl", r.output_folder);
    if (n < 0 || (size_t)n >= sizeof sum->candidates_path) {
      snprintf(err, errlen, "output folder path too long: %s", r.output_folder);
      rc_ = AD_EINVAL;
      goto out;
    }
    rc_ = compare_write_candidates(r.st, r.run_id, sum->candidates_path, NULL, err, errlen);
    if (rc_) goto out;
    snprintf(sum->dataset_path, sizeof sum->dataset_path, "%s", paths.dataset);
    snprintf(sum->rejected_path, sizeof sum->rejected_path, "%s", paths.rejected);
    snprintf(sum->card_path, sizeof sum->card_path, "%s", paths.card);
  }

out:
  sum->seconds = (double)(time_now_ms() - r.t0_ms) / 1000.0;
  /* Free the client first: outstanding calls are dropped without callbacks,
   * then queued cache hits, then the store. */
  llm_client_free(r.llm);
  while (r.ready_head) {
    struct call *c = r.ready_head;
    r.ready_head = c->next;
    call_free(c);
  }
  if (r.st) {
    int frc = store_close(r.st);
    if (frc && !rc_) {
      snprintf(err, errlen, "closing the store: %s", ad_strerror(frc));
      rc_ = frc;
    }
  }
  json_decref(r.prompt_hashes);
  json_decref(r.no_schema);
  src_corpus_free(&r.corpus);
  tpl_prompt_free(&r.bl_prompt);
  free(r.bl_prompt_path);
  free(r.bl_prompt_text);
  free(r.output_folder);
  free(r.store_path);
  sigaction(SIGINT, &old_int, NULL);
  sigaction(SIGTERM, &old_term, NULL);
  return rc_;
}
