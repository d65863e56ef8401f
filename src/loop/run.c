/* run.c - the run: scheduler, model calls behind the store's cache, progress.
 *
 * One event loop: llm_client_run_once() fires call completions; cache hits wait
 * in a ready queue and are delivered from the same loop (never from inside
 * run_call), so an episode sees the same order of events whether a reply came
 * from the network or from the store. After every iteration the store's batch
 * is flushed when due, and new episodes are started up to the concurrency.
 *
 * The run is each episode's environment (episode.h): it submits the episode's
 * calls, derives their seeds, records its rounds and owns every counter. An
 * episode that ends (finished or parked) is freed here, by its owner.
 */
#include "loop/run.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "eval/feedback.h"
#include "llm/llm.h"
#include "loop/callrec.h"
#include "loop/dnote.h"
#include "loop/episode.h"
#include "loop/method.h"
#include "source/source.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/rng.h"
#include "util/timeu.h"
#include "util/version.h"

/* A worker's default lease (run_opts.lease_ms). */
#define RUN_LEASE_MS 30000

/* A model call of an episode, from submission to delivery. */
struct call {
  struct run *run;
  struct episode *ep;
  int tag; /* the episode's, handed back on delivery */
  enum recipe_role_id role;
  char label[24]; /* role label in the store: "weak", "judge_strong", ... */
  int sample;
  const char *source_id; /* borrowed from the episode's source */
  int round;
  json_t *body;       /* the request as sent (endpoint extras merged; owned) */
  struct callrec rec; /* canonical text, cache key, attempts */
  char *cached;       /* a reply from the cache (owned), waiting in the ready queue */
  size_t cached_len;
  char *held_error;  /* a request error held back while it may be systematic (owned) */
  struct call *next; /* ready queue, or the held list */
};

/* How a shaped role's replies have gone (env reply_seen). */
struct role_tally {
  int64_t seen, unusable;
  int streak; /* unusable replies in a row */
  char why[256], sample[200];
};

struct run {
  const struct recipe *rc;
  const struct run_opts *opts;
  struct run_summary *sum;
  llm_client *llm;
  store *st;
  store_id run_id;
  struct src_corpus corpus;
  json_t *prompt_hashes; /* role -> sha256 */
  size_t next_doc;       /* next corpus index to start */
  int active;            /* episodes in flight */
  int in_flight;         /* this run's calls submitted to the client and not yet done */
  int own_llm;           /* the client is the run's (else the caller's: run_opts.llm) */
  int concurrency;
  struct call *ready_head, *ready_tail; /* cache hits waiting for delivery */
  int stopping;                         /* no new calls */
  int fatal;                            /* a store error: stop and report */
  char fatal_msg[512];
  int64_t t0_ms, last_progress_ms;
  int live_progress;
  json_t *no_schema; /* endpoint name -> true: it refused response_format */
  int infra_streak;  /* calls in a row that failed for infrastructure reasons */
  /* Request errors (4xx) held back until it is clear whether they are systematic:
   * a success releases them as the candidates' errors; RUN_REQ_STOP of the same
   * reason in a row stop the run and set their sources aside. */
  struct call *held;
  int n_held;
  char held_key[256];  /* the streak's reason, digits folded */
  int *schema_no_json; /* per endpoint: schema-constrained replies in a row with no JSON */
  int *schema_warned;
  struct role_tally tally[RECIPE_N_ROLES];
  size_t finished_session, finished_error; /* sources finished this session; on an error */
  char last_error[256];

  /* The method (loop/method.h) and what its episodes share. */
  const struct method_ops *method;
  struct bl_params bl; /* its filter settings (recipe's `baselines:` + options) */
  struct method_prompt method_chal, method_orch; /* its own challenger and orchestrator prompts */
  struct ep_config ep_cfg;
  struct ep_env ep_env;
  char *output_folder, *store_path; /* effective */
  struct dnote *dnote;              /* analysis.every: the dataset notes (dnote.h), else NULL */
  struct src_known *known; /* per corpus document: its state in the store when the run was set
                              up (one read of the run's sources instead of one per source) */
  int dnote_wait;          /* the next source waits for earlier ones (its note is not decided) */

  /* Workers (a PostgreSQL store's run shared by several processes; docs/store.md). */
  int64_t worker; /* this process's worker id, 0 when the run is not shared */
  int lease_ms;
  int64_t last_beat_ms, last_revisit_ms;
  struct store_worker_counts others;    /* the session's other workers, at the last heartbeat */
  struct store_worker_counts beat_mine; /* this worker's own, as the last heartbeat sent them */
  int others_alive;
  size_t *skipped; /* corpus indexes leased to other workers when reached: revisited */
  size_t n_skipped, cap_skipped;
  json_t *leased;  /* source id -> true: this worker's episodes in flight */
  json_t *renewed; /* the leases the last heartbeat renewed (scratch) */
  json_t *lost;    /* source id -> true: leases another worker took over; results dropped */
};

/* A source as the store held it at setup: finished ones are skipped without a query. */
struct src_known {
  int32_t accepted;
  uint16_t rounds_used; /* a source with more is not kept here (read when reached) */
  uint8_t state;        /* enum store_source_state */
  uint8_t seen;         /* registered, with the corpus's text hash */
};

/* SIGINT and SIGTERM count (a second one cancels the calls in flight). SIGHUP (the terminal
 * closed) and SIGPIPE (stdout or stderr is a pipe whose reader left: `| head -1`, quitting
 * `less`) mean the session is gone: the run stops like at a first Ctrl-C - no new call,
 * the calls in flight finish, the outputs are written, exit 3 - however often they come. */
static volatile sig_atomic_t g_signals, g_session_gone, g_last_signal;

static void on_signal(int sig) {
  g_last_signal = sig;
  if (sig == SIGHUP || sig == SIGPIPE) g_session_gone = 1;
  else g_signals++;
}

static const char *signal_reason(int sig) {
  switch (sig) {
  case SIGHUP: return "the terminal was closed (SIGHUP)";
  case SIGPIPE: return "the output pipe was closed (SIGPIPE)";
  case SIGTERM: return "terminated (SIGTERM)";
  default: return "interrupted (SIGINT)";
  }
}

static void store_failed(struct run *r, const char *what) {
  if (!r->fatal) {
    r->fatal = 1;
    snprintf(r->fatal_msg, sizeof r->fatal_msg, "store error while %s: %s", what,
             store_errmsg(r->st));
  }
  r->stopping = 1;
}

static void put_event(struct run *r, enum log_level level, json_t *ev) {
  if (store_event_put(r->st, r->run_id, level, ev)) store_failed(r, "recording an event");
  json_decref(ev);
}

/* ---- calls ---------------------------------------------------------------------- */

static void call_free(struct call *c) {
  json_decref(c->body);
  callrec_release(&c->rec);
  free(c->cached);
  free(c->held_error);
  free(c);
}

static double call_cost(const struct run *r, const struct call *c, int64_t pt, int64_t ct) {
  const struct recipe_role *ro = &r->rc->roles[c->role];
  double in = 0, out = 0;
  if (recipe_price(r->rc, ro->endpoint_index, ro->model, &in, &out)) return 0;
  return (double)pt / 1e6 * in + (double)ct / 1e6 * out;
}

static void worker_beat(struct run *r);

static int64_t tokens_of(const struct store_worker_counts *c) {
  return c->prompt_tokens + c->completion_tokens;
}

/* What a worker spent since its last heartbeat the others cannot see. With a budget it beats
 * (sends its own, reads theirs) as soon as it has spent an eighth of its share of what is left
 * (a worker alone: an eighth), so the workers together overshoot a budget by about a call
 * each; the factor 8 was measured against 2 (docs/store.md). */
static void budget_refresh(struct run *r) {
  const struct recipe_budgets *b = &r->rc->budgets;
  const struct run_summary *s = r->sum;
  const struct store_worker_counts *m = &r->beat_mine, *o = &r->others;
  double n = 8.0 * (r->others_alive + 1);
  int64_t tok = s->prompt_tokens + s->completion_tokens;
  int due = 0;
  if (b->max_calls > 0)
    due |= (double)(s->calls_sent - m->calls) * n >= (double)(b->max_calls - m->calls - o->calls);
  if (b->max_tokens > 0)
    due |= (double)(tok - tokens_of(m)) * n >=
           (double)(b->max_tokens - tokens_of(m) - tokens_of(o));
  if (b->max_cost > 0) due |= (s->cost - m->cost) * n >= b->max_cost - m->cost - o->cost;
  if (due) worker_beat(r);
}

/* Budgets hold over the run's workers: the others' totals at the last heartbeat (all 0 for a
 * run that is not shared) plus this process's own, which are always current. */
static int budget_exceeded(struct run *r) {
  if (r->worker) budget_refresh(r);
  const struct recipe_budgets *b = &r->rc->budgets;
  const struct run_summary *s = r->sum;
  const struct store_worker_counts *o = &r->others;
  const char *why = NULL;
  if (b->max_calls > 0 && s->calls_sent + o->calls >= b->max_calls) why = "max_calls";
  else if (b->max_tokens > 0 &&
           s->prompt_tokens + s->completion_tokens + o->prompt_tokens + o->completion_tokens >=
               b->max_tokens)
    why = "max_tokens";
  else if (b->max_cost > 0 && s->cost + o->cost >= b->max_cost) why = "max_cost";
  if (!why) return 0;
  if (!r->sum->stopped) {
    char msg[200];
    r->sum->stopped = 1;
    snprintf(msg, sizeof msg, "budget reached: %s", why);
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason, "%s", msg);
    put_event(r, LOG_WARN, json_pack("{s:s,s:s}", "msg", msg, "budget", why));
  }
  r->stopping = 1;
  return 1;
}

static void episode_ended(struct run *r, struct episode *ep, enum ep_state end);

/* Hand a call's outcome to its episode; free the episode when that ended it. */
static void call_deliver(struct call *c, const struct ep_reply *out) {
  struct episode *ep = c->ep;
  enum ep_state s = ep_deliver(ep, c->tag, out);
  if (ep_ended(s)) episode_ended(c->run, ep, s);
}

static void record_call(struct run *r, const struct call *c, const struct llm_result *res) {
  const struct recipe_role *ro = &r->rc->roles[c->role];
  struct callrec_id id = {c->label, c->source_id, c->round, ro->endpoint, ro->model};
  if (callrec_put(r->st, r->run_id, &c->rec, &id, res)) store_failed(r, "recording a model call");
}

static int schema_ok(const struct run *r, const char *endpoint) {
  return !json_object_get(r->no_schema, endpoint);
}

/* A 400 that names response_format: the server has no structured outputs. */
static int refused_schema(const struct call *c, const struct llm_result *res) {
  return res->rc == AD_EHTTP && res->http_status == 400 && res->error &&
         json_object_get(c->body, "response_format") &&
         (strcasestr(res->error, "response_format") || strcasestr(res->error, "json_schema") ||
          strcasestr(res->error, "structured output"));
}

static int run_call(struct run *r, struct episode *ep, const struct ep_call *ec);

/* Send the same request again without response_format (the parser extracts the
 * JSON from the text), and stop asking this endpoint for it in this run. The new
 * call takes the old one's place: the episode sees one delivery. */
static void resend_without_schema(struct run *r, struct call *c, const struct llm_result *res) {
  const char *endpoint = r->rc->roles[c->role].endpoint;
  if (!json_object_get(r->no_schema, endpoint)) {
    log_warn("endpoint '%s' refused response_format (%s); sending its requests without it%s",
             endpoint, res->error,
             r->rc->endpoints[r->rc->roles[c->role].endpoint_index].json_schema ==
                     RECIPE_SCHEMA_STRICT
                 ? " (if the server only rejects some schema keywords, json_schema: basic on the "
                   "endpoint keeps the shapes; docs/servers.md)"
                 : "");
    put_event(r, LOG_WARN,
              json_pack("{s:s,s:s,s:s}", "msg", "endpoint refused response_format", "endpoint",
                        endpoint, "error", res->error));
    json_object_set_new(r->no_schema, endpoint, json_true());
  }
  json_t *body = json_deep_copy(c->body);
  json_object_del(body, "response_format");
  struct ep_call ec = {c->role, c->label, c->sample, c->tag, c->source_id, c->round, body};
  if (run_call(r, c->ep, &ec)) {
    struct ep_reply out = {.set_aside = 1};
    call_deliver(c, &out);
  }
}

/* A request with tools that the server refused for them: it does not do tool calling
 * (vLLM without --enable-auto-tool-choice answers 400; some llama-server builds without
 * --jinja answer 500, which reaches here after the client's retries). */
static int refused_tools(const struct call *c, const struct llm_result *res) {
  return res->rc == AD_EHTTP && res->http_status >= 400 && json_object_get(c->body, "tools") &&
         llm_error_about_tools(res->error);
}

/* Every request of the method needs tools: stop the run at once with one line that names
 * the endpoint and the way out; the sources are set aside for a rerun. */
static void on_refused_tools(struct run *r, const struct call *c, const struct llm_result *res) {
  const struct recipe_role *ro = &r->rc->roles[c->role];
  if (!r->sum->stopped) {
    r->sum->stopped = 1;
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason,
             "endpoint '%s' (model '%s') does not take tool calls (%s); --method %s needs a "
             "server with tool calling (vLLM: --enable-auto-tool-choice --tool-call-parser ..., "
             "llama-server: --jinja; docs/agent.md), or use --method agentic",
             ro->endpoint, ro->model, res->error ? res->error : "refused", r->method->name);
    log_error("%s", r->sum->stop_reason);
    put_event(r, LOG_ERROR,
              json_pack("{s:s,s:s,s:s}", "msg", "endpoint refused tools", "endpoint", ro->endpoint,
                        "error", res->error ? res->error : ""));
  }
  r->stopping = 1;
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
  log_warn("%s call failed after %d attempt%s, source set aside for a later run: %s", c->label,
           res->attempts, res->attempts == 1 ? "" : "s", why);
  put_event(r, LOG_WARN,
            json_pack("{s:s,s:s,s:s,s:s?}", "msg", "infrastructure failure", "endpoint", endpoint,
                      "error", why, "source_id", c->source_id));
  if (++r->infra_streak >= RUN_INFRA_STOP && !r->sum->stopped) {
    r->sum->stopped = 1;
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason,
             "%d calls in a row failed after their retries; last: %s", r->infra_streak, why);
    r->stopping = 1;
  }
}

/* Request errors of the same reason in a row that stop the run. */
#define RUN_REQ_STOP 3

/* The reason of a request error with every run of digits folded to '#', so a context
 * overflow that names the prompt's size still matches the next one. */
static void req_key(const struct llm_result *res, char *out, size_t cap) {
  const char *e = res->error ? res->error : ad_strerror(res->rc);
  size_t k = (size_t)snprintf(out, cap, "%d:", res->http_status);
  for (; *e && k + 1 < cap; e++) {
    if (*e >= '0' && *e <= '9') {
      if (out[k - 1] != '#') out[k++] = '#';
    } else {
      out[k++] = *e;
    }
  }
  out[k < cap ? k : cap - 1] = 0;
}

/* Deliver the held request errors: as the candidates' errors (they were not
 * systematic), or set aside (the run stops on them; a rerun resumes the sources). */
static void release_held(struct run *r, int set_aside) {
  while (r->held) {
    struct call *c = r->held;
    r->held = c->next;
    r->n_held--;
    struct ep_reply out = {0};
    if (set_aside) out.set_aside = 1;
    else out.error = c->held_error;
    call_deliver(c, &out);
    call_free(c);
  }
  r->held_key[0] = 0;
}

/* Episodes waiting on a held call: they do not count against the concurrency, so
 * the next sources can show whether the error is systematic. */
static int held_episodes(const struct run *r) {
  int n = 0;
  for (const struct call *c = r->held; c; c = c->next) {
    const struct call *d = r->held;
    while (d != c && d->ep != c->ep) d = d->next;
    n += d == c;
  }
  return n;
}

static void on_request_error(struct run *r, struct call *c, const struct llm_result *res) {
  char key[256];
  req_key(res, key, sizeof key);
  if (r->held && strcmp(key, r->held_key)) release_held(r, 0);
  snprintf(r->held_key, sizeof r->held_key, "%s", key);
  c->held_error = xstrdup(res->error ? res->error : ad_strerror(res->rc));
  c->next = r->held;
  r->held = c;
  r->n_held++;
  if (r->n_held >= RUN_REQ_STOP) {
    const struct recipe_role *ro = &r->rc->roles[c->role];
    if (!r->sum->stopped) {
      r->sum->stopped = 1;
      snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason,
               "%d requests in a row were refused with the same error (role %s, model '%s'): %s; "
               "their sources are set aside, fix the cause and run again to resume them",
               r->n_held, recipe_role_name(c->role), ro->model, c->held_error);
    }
    log_error("%d requests in a row were refused with the same error; stopping: %s", r->n_held,
              c->held_error);
    put_event(r, LOG_ERROR,
              json_pack("{s:s,s:s,s:s,s:i}", "msg", "systematic request error", "endpoint",
                        ro->endpoint, "error", c->held_error, "calls", r->n_held));
    r->stopping = 1;
    release_held(r, 1);
  }
}

/* A schema-constrained reply without any JSON, RUN_SCHEMA_IGNORED times in a row on
 * one endpoint: the server most likely accepts response_format and ignores it. */
#define RUN_SCHEMA_IGNORED 3

static void check_schema_used(struct run *r, const struct call *c, const struct llm_reply *rep) {
  if (!json_object_get(c->body, "response_format")) return;
  if (rep->finish_reason && !strcmp(rep->finish_reason, "length")) return; /* cut off */
  const struct recipe_role *ro = &r->rc->roles[c->role];
  int e = ro->endpoint_index;
  const char *t = rep->content ? rep->content : "";
  if (strchr(t, '{') || strchr(t, '[')) {
    r->schema_no_json[e] = 0;
    return;
  }
  if (++r->schema_no_json[e] < RUN_SCHEMA_IGNORED || r->schema_warned[e]) return;
  r->schema_warned[e] = 1;
  log_warn(
      "endpoint '%s': %d replies in a row to requests with a JSON schema (response_format) "
      "held no JSON at all (model '%s'); the server most likely accepts response_format and "
      "ignores it (older llama-server builds do): upgrade the server, or set "
      "json_schema: false on the endpoint (docs/servers.md)",
      ro->endpoint, r->schema_no_json[e], ro->model);
  put_event(r, LOG_WARN,
            json_pack("{s:s,s:s,s:s}", "msg", "schema ignored", "endpoint", ro->endpoint, "model",
                      ro->model));
}

/* The client's callbacks (llm.h: called from llm_client_run_once). */
static void on_attempt(void *ud, const struct llm_attempt *a) {
  struct call *c = ud;
  callrec_attempt(&c->rec, a);
}

static void on_done(void *ud, const struct llm_result *res) {
  struct call *c = ud;
  struct run *r = c->run;
  r->in_flight--;
  if (res->rc != AD_ECANCELED) record_call(r, c, res);
  if (refused_schema(c, res)) {
    resend_without_schema(r, c, res);
    call_free(c);
    return;
  }
  struct ep_reply out = {0};
  if (res->rc == 0 && res->reply) {
    r->infra_streak = 0;
    if (r->held) release_held(r, 0); /* the endpoint answers: those errors were the requests' */
    r->sum->prompt_tokens += res->reply->prompt_tokens;
    r->sum->completion_tokens += res->reply->completion_tokens;
    r->sum->cost += call_cost(r, c, res->reply->prompt_tokens, res->reply->completion_tokens);
    check_schema_used(r, c, res->reply);
    out.ok = 1;
    out.content = res->reply->content ? res->reply->content : "";
    out.tool_calls = res->reply->tool_calls;
    out.finish_reason = res->reply->finish_reason;
    out.completion_tokens = res->reply->completion_tokens;
  } else if (res->rc == AD_ECANCELED) {
    out.set_aside = 1;
  } else if (refused_tools(c, res)) {
    on_refused_tools(r, c, res);
    out.set_aside = 1;
  } else if (infra_failure(res)) {
    on_infra_failure(r, c, res);
    out.set_aside = 1;
  } else if (!r->stopping) {
    on_request_error(r, c, res); /* delivered later, one way or the other */
    return;
  } else {
    out.set_aside = 1; /* the run stops: a rerun sends it again */
  }
  call_deliver(c, &out);
  call_free(c);
}

/* Submit an episode's call (the environment's submit): answered from the cache when
 * the store has it, else sent. Takes ec->body. 0, or a negative code when it could
 * not be started (then it is never delivered). */
static int run_call(struct run *r, struct episode *ep, const struct ep_call *ec) {
  struct call *c = xcalloc(1, sizeof *c);
  c->run = r;
  c->ep = ep;
  c->tag = ec->tag;
  c->role = ec->role;
  c->sample = ec->sample;
  c->source_id = ec->source_id;
  c->round = ec->round;
  snprintf(c->label, sizeof c->label, "%s", ec->label);
  const struct recipe_role *ro = &r->rc->roles[ec->role];
  /* The body as sent (endpoint extras merged in), so the cache key covers it;
   * its canonical text is both the key's material and what goes on the wire. */
  c->body = llm_merge_extra(r->llm, ro->endpoint, ec->body);
  json_decref(ec->body);
  if (!c->body) { /* not an object, or an unknown endpoint: a bug upstream */
    call_free(c);
    return AD_EINTERNAL;
  }
  callrec_begin(&c->rec, ro->endpoint, c->body);
  int rc = store_cache_get(r->st, c->rec.key, &c->cached, &c->cached_len);
  if (rc == 0) {
    r->sum->cache_hits++;
    record_call(r, c, NULL);
    if (r->ready_tail) r->ready_tail->next = c;
    else r->ready_head = c;
    r->ready_tail = c;
    return 0;
  }
  if (rc != AD_ENOTFOUND) {
    store_failed(r, "reading the cache");
    call_free(c);
    return rc;
  }
  if (r->stopping || budget_exceeded(r)) {
    call_free(c);
    return AD_EBUDGET;
  }
  rc = llm_submit_serialized(r->llm, ro->endpoint, c->body, c->rec.canon, c->rec.canon_len, on_done,
                             on_attempt, c);
  if (rc) {
    call_free(c);
    return rc;
  }
  r->sum->calls_sent++;
  r->in_flight++;
  return 0;
}

/* Deliver cache hits queued so far (and those their deliveries queue). */
static void drain_ready(struct run *r) {
  while (r->ready_head) {
    struct call *c = r->ready_head;
    r->ready_head = c->next;
    if (!r->ready_head) r->ready_tail = NULL;
    struct llm_reply rep;
    char err[256];
    struct ep_reply out = {0};
    memset(&rep, 0, sizeof rep);
    if (llm_reply_parse(c->cached, c->cached_len, &rep, err, sizeof err) == 0) {
      out.ok = 1;
      out.content = rep.content ? rep.content : "";
      out.tool_calls = rep.tool_calls;
      out.finish_reason = rep.finish_reason;
      out.completion_tokens = rep.completion_tokens;
    } else {
      out.error = err; /* a cached reply that no longer parses: treat as a failed call */
    }
    call_deliver(c, &out);
    llm_reply_release(&rep);
    call_free(c);
  }
}

/* ---- the episodes' environment ------------------------------------------------------ */

static int env_submit(void *data, struct episode *ep, const struct ep_call *ec) {
  return run_call(data, ep, ec);
}

static int64_t env_seed(void *data, const char *source_id, int round, const char *label,
                        int sample) {
  const struct run *r = data;
  return (int64_t)rng_derive((uint64_t)r->rc->seed, "%s|%d|%s|%d", source_id, round, label, sample);
}

static int env_schema_ok(void *data, enum recipe_role_id role) {
  const struct run *r = data;
  return schema_ok(r, r->rc->roles[role].endpoint);
}

static int env_stopping(void *data) { return ((const struct run *)data)->stopping; }

/* Unusable replies of one role in a row that stop the run, and the judge's share of
 * invalid judgements (after their repair turn) that does, once it has given enough. */
#define RUN_UNUSABLE_STOP 10
#define RUN_JUDGE_MIN 20
#define RUN_JUDGE_MAX_INVALID 0.25

static void env_reply_seen(void *data, enum recipe_role_id role, int usable, const char *why,
                           const char *reply) {
  struct run *r = data;
  struct role_tally *t = &r->tally[role];
  t->seen++;
  if (role == RECIPE_ROLE_JUDGE) r->sum->judgements++;
  if (usable) {
    t->streak = 0;
    return;
  }
  t->unusable++;
  t->streak++;
  if (role == RECIPE_ROLE_JUDGE) r->sum->judgements_invalid++;
  snprintf(t->why, sizeof t->why, "%s", why ? why : "unusable");
  /* a one-line excerpt of the reply, control bytes as spaces */
  size_t k = 0;
  for (const char *p = reply ? reply : ""; *p && k + 1 < sizeof t->sample; p++)
    t->sample[k++] = (unsigned char)*p < 0x20 ? ' ' : *p;
  t->sample[k] = 0;
  const struct recipe_role *ro = &r->rc->roles[role];
  char msg[sizeof r->sum->stop_reason];
  if (t->streak >= RUN_UNUSABLE_STOP)
    snprintf(msg, sizeof msg,
             "role %s (model '%s' on endpoint '%s') gave %d unusable replies in a row; last: %s; "
             "reply: '%.100s'",
             recipe_role_name(role), ro->model, ro->endpoint, t->streak, t->why, t->sample);
  else if (role == RECIPE_ROLE_JUDGE && t->seen >= RUN_JUDGE_MIN &&
           (double)t->unusable > RUN_JUDGE_MAX_INVALID * (double)t->seen)
    snprintf(msg, sizeof msg,
             "role judge (model '%s' on endpoint '%s'): %lld of %lld judgements invalid (more "
             "than %.0f%%); last: %s; reply: '%.100s'",
             ro->model, ro->endpoint, (long long)t->unusable, (long long)t->seen,
             100 * RUN_JUDGE_MAX_INVALID, t->why, t->sample);
  else return;
  if (!r->sum->stopped) {
    r->sum->stopped = 1;
    r->sum->unusable_role = 1;
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason, "%s", msg);
    log_error("stopping: %s", msg);
    put_event(r, LOG_ERROR,
              json_pack("{s:s,s:s,s:s,s:s}", "msg", "unusable replies", "role",
                        recipe_role_name(role), "model", ro->model, "detail", msg));
  }
  r->stopping = 1;
}

/* ---- workers ------------------------------------------------------------------------- */

static void lease_renewed(void *ud, const char *source_id) {
  json_object_set_new(((struct run *)ud)->renewed, source_id, json_true());
}

/* The heartbeat: this worker's counters out, its leases renewed, the other workers' totals in
 * (the budgets). An episode whose lease was not renewed was taken over by another worker after
 * it expired (this process stalled past it): its result is dropped from now on. */
static void worker_beat(struct run *r) {
  const struct run_summary *s = r->sum;
  struct store_worker_counts mine = {s->calls_sent,
                                     s->cache_hits,
                                     s->prompt_tokens,
                                     s->completion_tokens,
                                     (int64_t)(r->finished_session),
                                     s->cost};
  r->last_beat_ms = time_now_ms();
  r->beat_mine = mine;
  json_object_clear(r->renewed);
  if (store_worker_beat(r->st, r->run_id, r->worker, &mine, lease_renewed, r, &r->others,
                        &r->others_alive)) {
    store_failed(r, "renewing the leases");
    return;
  }
  const char *id;
  json_t *v;
  json_object_foreach(r->leased, id, v) {
    if (json_object_get(r->renewed, id) || json_object_get(r->lost, id)) continue;
    log_warn(
        "worker %lld: the lease of source '%s' expired and another worker took it over; "
        "this worker's result for it is dropped",
        (long long)r->worker, id);
    json_object_set_new(r->lost, id, json_true());
  }
}

/* Whether a round of source_id may be written: not when its lease was lost, checked afresh
 * when the last heartbeat is a lease old (the process stalled). */
static int lease_lost(struct run *r, const char *source_id) {
  if (!r->worker) return 0;
  if (time_now_ms() - r->last_beat_ms >= r->lease_ms) worker_beat(r);
  return json_object_get(r->lost, source_id) != NULL;
}

/* Record a round: the candidate, the kept example, the source's state; the last
 * round of an episode in one transaction with the source's end (for a worker, only while it
 * holds the source's lease). */
static int env_record(void *data, const struct ep_round_end *e) {
  struct run *r = data;
  const char *verdict = e->reason ? "rejected" : "accepted";
  int rc;
  if (lease_lost(r, e->source_id)) return 0;
  if (e->finished) {
    struct store_episode_end fin;
    memset(&fin, 0, sizeof fin);
    fin.source_id = e->source_id;
    fin.state = e->accepted > 0 ? STORE_SRC_DONE : STORE_SRC_EXHAUSTED;
    fin.rounds_used = e->round;
    fin.round = e->round;
    fin.index = e->index;
    fin.verdict = verdict;
    fin.reason = e->reason;
    fin.cand_record = e->cand_record;
    fin.example_id = e->example_id;
    fin.example = e->example;
    rc = r->worker ? store_lease_finish(r->st, r->run_id, r->worker, &fin)
                   : store_episode_finish(r->st, r->run_id, &fin);
    if (rc == AD_EBUSY && r->worker) { /* taken over in the meantime: the other one's now */
      log_warn("worker %lld: %s", (long long)r->worker, store_errmsg(r->st));
      json_object_set_new(r->lost, e->source_id, json_true());
      return 0;
    }
  } else {
    rc = store_candidate_put(r->st, r->run_id, e->source_id, e->round, e->index, verdict, e->reason,
                             e->cand_record);
    if (!rc && e->example)
      rc = store_example_put(r->st, r->run_id, e->source_id, e->example_id, e->example);
    /* not for a worker: its lease marked the source in progress, and a write left in the batch
     * of a worker that stalled past its lease must not reopen a source another one finished */
    if (!rc && !r->worker)
      rc = store_source_set_state(r->st, r->run_id, e->source_id, STORE_SRC_IN_PROGRESS, e->round);
  }
  if (e->reason) r->sum->rejected_candidates++;
  else r->sum->accepted++;
  if (e->finished) {
    r->finished_session++;
    if (e->reason && !strncmp(e->reason, "error:", 6)) {
      r->finished_error++;
      const char *d = jx_str(e->cand_record, "detail");
      snprintf(r->last_error, sizeof r->last_error, "%s: %s", e->reason, d ? d : "");
    }
  }
  if (e->example && r->method->baseline) r->sum->kept++;
  if (e->example && r->dnote) dnote_example(r->dnote, e->source_id, e->example_id, e->example);
  if (rc) store_failed(r, "recording a round");
  return rc;
}

/* ---- episodes ------------------------------------------------------------------------- */

/* A finished source joins the dataset notes' prefix; each new checkpoint is an event. */
static void dnote_source_done(struct run *r, const char *source_id) {
  if (!r->dnote) return;
  dnote_finished(r->dnote, source_id);
  int k;
  size_t ex, srcs;
  const char *note;
  while (dnote_next_new(r->dnote, &k, &ex, &srcs, &note))
    put_event(r, LOG_INFO,
              json_pack("{s:s, s:i, s:i, s:I, s:I, s:s}", "msg", "dataset note", "every",
                        r->rc->analysis.every, "checkpoint", k, "examples", (json_int_t)ex,
                        "sources", (json_int_t)srcs, "note", note));
}

/* A worker revisits the corpus's i-th source (revisit()) until it is finished: another worker
 * held its lease when this one reached it, or took it over from this one. */
static void skip_doc(struct run *r, size_t i) {
  if (r->n_skipped == r->cap_skipped) {
    r->cap_skipped = r->cap_skipped ? 2 * r->cap_skipped : 64;
    r->skipped = xrealloc(r->skipped, r->cap_skipped * sizeof *r->skipped);
  }
  r->skipped[r->n_skipped++] = i;
}

static void episode_ended(struct run *r, struct episode *ep, enum ep_state end) {
  struct src_doc *doc = (struct src_doc *)ep_doc(ep); /* src_doc_open()'s, closed here */
  const char *id = ep_source_id(ep);
  r->active--;
  if (r->worker) json_object_del(r->leased, id);
  if (r->worker && json_object_get(r->lost, id)) {
    /* another worker's result counts: this one waits for it as for a source it skipped (its
     * outputs, written when it ends, must hold it) */
    json_object_del(r->lost, id);
    r->sum->lost++;
    skip_doc(r, doc->index);
  } else if (end == EP_FINISHED) {
    dnote_source_done(r, id);
    if (ep_accepted(ep)) r->sum->done++;
    else r->sum->exhausted++;
  } else {
    /* set aside: a worker frees its lease now, for another worker to play it */
    if (r->worker && store_lease_release(r->st, r->run_id, r->worker, id))
      store_failed(r, "releasing a lease");
    r->sum->parked++;
  }
  ep_free(ep);
  src_doc_close(&r->corpus, doc); /* a streamed corpus: its text from start to end */
}

/* The store's record of the corpus's i-th source: from the setup's read when it was finished
 * then (a finished source stays finished), else read now. */
static int source_state(struct run *r, size_t i, struct store_source *ss) {
  const struct src_known *k = r->known ? &r->known[i] : NULL;
  if (!k || !k->seen || (k->state != STORE_SRC_DONE && k->state != STORE_SRC_EXHAUSTED))
    return store_source_get(r->st, r->run_id, src_corpus_id(&r->corpus, i), ss);
  memset(ss, 0, sizeof *ss);
  ss->state = (enum store_source_state)k->state;
  ss->accepted = k->accepted;
  ss->rounds_used = k->rounds_used;
  return 0;
}

/* A source the store holds finished (resume, or another worker's): counted, not played. */
static void count_finished(struct run *r, const char *id, const struct store_source *ss) {
  dnote_source_done(r, id);
  r->sum->skipped_done++;
  if (ss->state == STORE_SRC_DONE) {
    r->sum->done++;
    if (r->method->baseline)
      r->sum->kept += (size_t)ss->accepted; /* baselines store what their filter keeps */
    else r->sum->accepted += (size_t)ss->accepted;
  } else {
    r->sum->exhausted++;
  }
}

static int is_finished(const struct store_source *ss) {
  return ss->state == STORE_SRC_DONE || ss->state == STORE_SRC_EXHAUSTED;
}

/* --reopen-exhausted: a raised round budget gives exhausted sources more rounds (the episode
 * replays its recorded rounds from the cache, then plays on). */
static int reopens(const struct run *r, const struct store_source *ss) {
  return ss->state == STORE_SRC_EXHAUSTED && r->opts->reopen_exhausted && !r->method->baseline &&
         ss->rounds_used < r->rc->budgets.rounds_per_source;
}

/* Start the episode of the corpus's i-th source (a worker holds its lease). */
static void start_doc(struct run *r, size_t i, const char *note, int checkpoint) {
  struct src_doc *doc;
  if (src_doc_open(&r->corpus, i, &doc, r->fatal_msg, sizeof r->fatal_msg)) {
    r->fatal = 1; /* the corpus file changed or went away under the run */
    r->stopping = 1;
    return;
  }
  /* a worker's lease marked it in progress already */
  if (!r->worker && store_source_set_state(r->st, r->run_id, doc->id, STORE_SRC_IN_PROGRESS, -1)) {
    store_failed(r, "marking a source in progress");
    src_doc_close(&r->corpus, doc);
    return;
  }
  if (r->worker) json_object_set_new(r->leased, doc->id, json_true());
  struct episode *ep = ep_new(&r->ep_cfg, &r->ep_env, doc);
  if (note) ep_set_note(ep, note, checkpoint);
  r->active++;
  enum ep_state s = ep_start(ep);
  if (ep_ended(s)) episode_ended(r, ep, s);
}

/* A worker leases source id before playing it: 1 leased (play it), 0 finished meanwhile
 * (counted), 2 held by another live worker (revisit it), -1 a store error (the run stops). */
static int claim(struct run *r, const char *id, int reopen) {
  enum store_claim cl;
  int64_t from = 0;
  if (store_lease_claim(r->st, r->run_id, r->worker, id, reopen, &cl, &from)) {
    store_failed(r, "leasing a source");
    return -1;
  }
  if (cl == STORE_CLAIM_HELD) return 2;
  if (cl == STORE_CLAIM_GOT) {
    if (from) {
      r->sum->taken_over++;
      log_info(
          "worker %lld: took over source '%s' from worker %lld, whose lease expired (its "
          "recorded calls replay from the store's cache)",
          (long long)r->worker, id, (long long)from);
    }
    return 1;
  }
  struct store_source ss;
  if (store_source_get(r->st, r->run_id, id, &ss)) {
    store_failed(r, "reading a source");
    return -1;
  }
  count_finished(r, id, &ss);
  return 0;
}

static int room(const struct run *r) {
  return !r->stopping && r->active - held_episodes(r) < r->concurrency;
}

/* A worker's sources skipped because another worker held them, once the corpus is through:
 * every poll interval each one is found finished (counted), leased to this worker (played; a
 * takeover when the other's lease expired) or still held (kept for the next poll). */
static void revisit(struct run *r) {
  int64_t now = time_now_ms(), poll = r->lease_ms / 4;
  if (poll < 200) poll = 200;
  if (poll > 2000) poll = 2000;
  if (!r->n_skipped || r->next_doc < r->corpus.n || now - r->last_revisit_ms < poll) return;
  r->last_revisit_ms = now;
  size_t k = 0;
  for (size_t j = 0; j < r->n_skipped; j++) {
    size_t i = r->skipped[j];
    const char *id = src_corpus_id(&r->corpus, i);
    struct store_source ss;
    int c = 2;
    if (!room(r)) {
      /* kept */
    } else if (store_source_get(r->st, r->run_id, id, &ss)) {
      store_failed(r, "reading a source");
    } else if (is_finished(&ss) && !reopens(r, &ss)) {
      count_finished(r, id, &ss);
      c = 0;
    } else {
      c = claim(r, id, reopens(r, &ss));
    }
    if (c == 1) start_doc(r, i, NULL, 0);
    else if (c != 0) r->skipped[k++] = i;
  }
  r->n_skipped = k;
}

/* Start episodes up to the concurrency. Sources already finished in the store
 * are skipped (resume); a worker skips those another worker holds, and revisits them. */
static void start_episodes(struct run *r) {
  while (room(r) && r->next_doc < r->corpus.n) {
    size_t i = r->next_doc;
    const char *id = src_corpus_id(&r->corpus, i);
    struct store_source ss;
    int rc = source_state(r, i, &ss);
    int reopen = rc == 0 && reopens(r, &ss);
    if (rc == 0 && !reopen && is_finished(&ss)) {
      r->next_doc++;
      count_finished(r, id, &ss);
      continue;
    }
    if (rc != 0 && rc != AD_ENOTFOUND) {
      store_failed(r, "reading a source");
      return;
    }
    const char *note = NULL;
    int checkpoint = 0;
    r->dnote_wait = r->dnote && !dnote_ready(r->dnote, r->next_doc, &note, &checkpoint);
    if (r->dnote_wait) return;
    r->next_doc++;
    int c = r->worker ? claim(r, id, reopen) : 1;
    if (c < 0) return;
    if (c == 2) {
      skip_doc(r, i);
    }
    if (c == 1) start_doc(r, i, note, checkpoint);
  }
  if (r->worker) revisit(r);
}

/* ---- progress ------------------------------------------------------------------------- */

static void progress(struct run *r, int final) {
  if (r->opts->quiet) return;
  int64_t now = time_now_ms();
  int interval = r->live_progress ? 250 : 5000;
  if (!final && now - r->last_progress_ms < interval) return;
  /* Rates over less than a second are noise (the first line used to say thousands of calls/s). */
  if (!final && now - r->t0_ms < 1000) return;
  r->last_progress_ms = now;
  const struct run_summary *s = r->sum;
  double el = (double)(now - r->t0_ms) / 1000.0;
  size_t finished = s->done + s->exhausted;
  size_t fresh = finished - s->skipped_done;
  double rate = finished ? 100.0 * (double)s->done / (double)finished : 0;
  char tail[64];
  if (final) {
    snprintf(tail, sizeof tail, "%s after %.0fs", s->stopped ? "stopped" : "finished", el);
  } else if (fresh && el > 0) {
    snprintf(tail, sizeof tail, "ETA %.0fs", el / (double)fresh * (double)(r->corpus.n - finished));
  } else {
    snprintf(tail, sizeof tail, "ETA unknown until a source finishes");
  }
  char costs[32] = "";
  if (s->cost > 0) snprintf(costs, sizeof costs, ", $%.2f", s->cost);
  char line[400];
  snprintf(line, sizeof line,
           "sources %zu/%zu, accepted %zu (%.0f%% of finished), %.1f calls/s, %.0f tok/s%s, "
           "cache %lld, %s",
           finished, r->corpus.n, s->accepted, rate, el > 0 ? (double)s->calls_sent / el : 0,
           el > 0 ? (double)(s->prompt_tokens + s->completion_tokens) / el : 0, costs,
           (long long)s->cache_hits, tail);
  if (r->live_progress) fprintf(stderr, "\r\033[K%s%s", line, final ? "\n" : "");
  else fprintf(stderr, "autodata: %s\n", line);
  fflush(stderr);
}

/* The first signal is acknowledged at once, with what the run is waiting for: with a stuck
 * server the calls in flight can take minutes, and silence looks like a hang. */
static void acknowledge_stop(struct run *r, int signals_seen) {
  if (r->live_progress) fputs("\r\033[K", stderr);
  if (signals_seen >= 2) {
    fprintf(stderr,
            "autodata: second interrupt: abandoning %d call(s) in flight; writing the "
            "outputs (the run resumes where it stopped)\n",
            r->in_flight);
  } else {
    fprintf(stderr,
            "autodata: interrupted: starting no new work; waiting for %d call(s) in flight "
            "across %d source(s) to finish, then writing the outputs (interrupt again to "
            "abandon them)\n",
            r->in_flight, r->active);
  }
  fflush(stderr);
}

/* ---- setup ----------------------------------------------------------------------------- */

/* Resolve the method, its settings and the output paths. */
static int setup_method(struct run *r, char *err, size_t errlen) {
  const struct recipe *rc = r->rc;
  const char *name = r->opts->method ? r->opts->method : rc->method ? rc->method : "agentic";
  r->method = method_find(name);
  if (!r->method) {
    ad_set_err(err, errlen, "unknown method '%s' (expected %s)", name, method_names());
    return AD_EINVAL;
  }
  if (r->method->orchestrator_prompt && !rc->roles[RECIPE_ROLE_ORCHESTRATOR].present) {
    ad_set_err(err, errlen,
               "method %s needs roles.orchestrator: the tool-calling model that runs each "
               "source's conversation (docs/agent.md)",
               r->method->name);
    return AD_EINVAL;
  }
  snprintf(r->sum->method, sizeof r->sum->method, "%s", r->method->name);
  r->sum->baseline = r->method->baseline;
  /* The recipe's `baselines:` (defaults k 4, 0.5, 0.5), each overridden by
   * the option when given (k > 0, a threshold or share that is not NaN). */
  r->bl = rc->baselines;
  if (r->opts->bl) {
    const struct bl_params *ob = r->opts->bl;
    if (ob->k > 0) r->bl.k = ob->k;
    if (!isnan(ob->rip_threshold)) r->bl.rip_threshold = ob->rip_threshold;
    if (!isnan(ob->ac_min_share)) r->bl.ac_min_share = ob->ac_min_share;
  }
  int rc_ = bl_params_check(&r->bl, err, errlen);
  if (rc_) return rc_;
  /* Output folder: the option, else the recipe's; a baseline whose recipe keeps the
   * default folder runs/<name> goes to runs/<name>-<method>. */
  char *def = xasprintf("runs/%s", rc->name);
  char *def_store = xasprintf("%s/store.db", rc->output_folder);
  int default_store = !strcmp(rc->store_path, def_store);
  if (r->opts->output_folder) {
    r->output_folder = xstrdup(r->opts->output_folder);
    default_store = 1;
  } else if (r->method->baseline && !strcmp(rc->output_folder, def) && default_store) {
    r->output_folder = xasprintf("%s-%s", def, r->method->name);
  } else {
    r->output_folder = xstrdup(rc->output_folder);
  }
  r->store_path = r->opts->store_path ? xstrdup(r->opts->store_path)
                  : default_store     ? xasprintf("%s/store.db", r->output_folder)
                                      : xstrdup(rc->store_path);
  free(def);
  free(def_store);
  return 0;
}

static int latest_run_row(void *ud, const json_t *row) {
  json_t **out = ud;
  json_decref(*out);
  *out = json_deep_copy(row);
  return 0;
}

/* The store's latest run row (NULL when it has none), read once for the resume checks. */
static int latest_run(struct run *r, json_t **row, char *err, size_t errlen) {
  *row = NULL;
  int rc_ = store_runs_each(r->st, latest_run_row, row);
  if (rc_) {
    json_decref(*row);
    *row = NULL;
    ad_set_err(err, errlen, "%s", store_errmsg(r->st));
  }
  return rc_;
}

/* Resume must not mix methods: compare the latest run's recorded method (runs
 * from before methods existed are agentic) with this one. 0 or AD_EMISMATCH. */
static int check_method(struct run *r, const json_t *row, char *err, size_t errlen) {
  if (!row) return 0; /* a new store */
  const json_t *old = json_object_get(json_object_get(json_object_get(row, "info"), "extra"),
                                      "method");
  json_t *def = json_pack("{s:s}", "name", "agentic");
  json_t *neu = method_identity(r->method, &r->bl);
  if (!old) old = def;
  int rc_ = 0;
  if (!json_equal((json_t *)old, neu)) {
    char *a = jx_dump_canonical(old), *b = jx_dump_canonical(neu);
    ad_set_err(err, errlen,
               "store %s holds a run of another method or filter setting: %s -> %s (use --new-run "
               "to start a new run in this store, or --out DIR for another folder)",
               r->store_path, a ? a : "?", b ? b : "?");
    free(a);
    free(b);
    rc_ = AD_EMISMATCH;
  }
  json_decref(def);
  json_decref(neu);
  return rc_;
}

/* A run's identity is its effective configuration (recipe_identity()): compare it
 * with the latest run's (row) before resuming, naming every field that changed. Sets
 * store_sha to the hash store_run_begin() is to compare: the identity's, or for a
 * run made before identities were recorded, the hash that run recorded when its
 * recorded effective values (info.extra.recipe) project to the same identity, else
 * the recipe file's (the old rule: the same file resumes). 0 or AD_EMISMATCH. */
static int check_identity(struct run *r, const json_t *row, const json_t *identity,
                          const char *identity_sha, char store_sha[65], char *err, size_t errlen) {
  snprintf(store_sha, 65, "%s", identity_sha);
  if (!row) return 0;
  const json_t *extra = json_object_get(json_object_get(row, "info"), "extra");
  json_t *old = json_incref(json_object_get(extra, "identity"));
  int legacy = !old;
  if (legacy) old = recipe_identity_of(json_object_get(extra, "recipe"));
  if (!old) { /* nothing recorded: the store compares the recipe file's hash */
    snprintf(store_sha, 65, "%s", r->rc->sha256);
    return 0;
  }
  int rc_ = 0;
  struct buf diff;
  buf_init(&diff, 16384);
  int n = recipe_identity_diff(old, identity, r->rc->env_refs, legacy, &diff);
  if (n != 0) {
    ad_set_err(err, errlen,
               "store %s holds run %lld made with a different configuration: %s. Resume with the "
               "same effective configuration (recipe, environment variables, prompts), or use "
               "--new-run to start a new run in this store (cached calls are reused), or --out "
               "DIR for another folder",
               r->store_path, (long long)jx_int(row, "id", 0),
               n > 0 ? buf_str(&diff) : "(too many differences to list)");
    rc_ = AD_EMISMATCH;
  } else if (legacy) {
    const char *was = jx_str(row, "recipe_sha256");
    if (was) snprintf(store_sha, 65, "%s", was);
  }
  buf_release(&diff);
  json_decref(old);
  return rc_;
}

/* The prompts this run uses, by role: what the method does not use is left out, and
 * a method's own challenger or orchestrator prompt replaces the recipe's. */
static json_t *prompt_record(const struct run *r, int with_text) {
  json_t *prompts = json_object();
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const struct recipe_role *ro = &r->rc->roles[i];
    if (!ro->present) continue;
    if (!r->method->uses_orchestrator && i == RECIPE_ROLE_ORCHESTRATOR) continue;
    const char *name = recipe_role_name((enum recipe_role_id)i);
    const char *path = ro->prompt.path ? ro->prompt.path : "", *sha = ro->prompt.sha256;
    const char *text = ro->prompt.text;
    size_t len = ro->prompt.len;
    const struct method_prompt *own = NULL;
    if (r->method->challenger_prompt && i == RECIPE_ROLE_CHALLENGER) own = &r->method_chal;
    if (r->method->orchestrator_prompt && i == RECIPE_ROLE_ORCHESTRATOR) own = &r->method_orch;
    if (own) {
      path = own->path;
      sha = own->sha;
      text = own->text;
      len = own->len;
    }
    if (!with_text) json_object_set_new(prompts, name, json_string(sha));
    else if (text)
      json_object_set_new(prompts, name,
                          json_pack("{s:s,s:s,s:o}", "path", path, "sha256", sha, "text",
                                    jx_string_lossy(text, len)));
  }
  return prompts;
}

static json_t *run_extra(const struct run *r, json_t *identity, const char *identity_sha) {
  const struct recipe *rc = r->rc;
  json_t *corpus = json_pack(
      "{s:s,s:I,s:s,s:I,s:I}", "path", rc->sources.path ? rc->sources.path : "", "count",
      (json_int_t)r->corpus.n, "sha256", r->corpus.sha256, "read", (json_int_t)r->corpus.n_read,
      "truncated", (json_int_t)r->corpus.n_truncated);
  if (r->corpus.n_invalid) /* sources.on_invalid: skip - for the card */
    json_object_set_new(corpus, "invalid_skipped",
                        json_pack("{s:I,s:s}", "count", (json_int_t)r->corpus.n_invalid, "first",
                                  r->corpus.first_invalid));
  char *cwd = getcwd(NULL, 0), *out = realpath(r->output_folder, NULL);
  json_t *paths = json_pack("{s:s,s:s}", "cwd", cwd ? cwd : "", "output_folder", out ? out : "");
  free(cwd);
  free(out);
  json_t *x = json_pack("{s:o,s:o,s:o,s:s,s:s,s:o,s:O,s:s,s:O,s:o}", "recipe", recipe_to_json(rc),
                        "prompts", prompt_record(r, 1), "corpus", corpus, "command_line",
                        r->opts->command_line ? r->opts->command_line : "", "version", ad_version(),
                        "method", method_identity(r->method, &r->bl), "identity", identity,
                        "identity_sha256", identity_sha, "env", rc->env_refs, "paths", paths);
  if (x) json_object_set_new(x, "program_texts", fb_program_texts()); /* for the data card */
  if (x && r->opts->sim_world)
    json_object_set_new(x, "sim_world", json_deep_copy(r->opts->sim_world));
  return x;
}

static json_t *prices_json(const struct recipe *rc) {
  json_t *p = json_object();
  for (int i = 0; i < rc->n_endpoints; i++)
    for (int k = 0; k < rc->endpoints[i].n_prices; k++) {
      const struct recipe_price *pr = &rc->endpoints[i].prices[k];
      json_object_set_new(p, pr->model,
                          json_pack("{s:f,s:f}", "prompt_per_mtok", pr->input_per_mtok,
                                    "completion_per_mtok", pr->output_per_mtok));
    }
  return p;
}

static int setup_llm(struct run *r, char *err, size_t errlen) {
  if (r->opts->llm) { /* the caller's, with the recipe's endpoints */
    r->llm = r->opts->llm;
    return 0;
  }
  r->own_llm = 1;
  r->llm = llm_client_new();
  llm_client_set_seed(r->llm, (uint64_t)r->rc->seed);
  for (int i = 0; i < r->rc->n_endpoints; i++) {
    struct llm_endpoint_config cfg;
    int rc = recipe_endpoint_config(r->rc, i, &cfg);
    if (!rc) rc = llm_client_add_endpoint(r->llm, &cfg);
    if (rc) { /* the client's message names the endpoint already */
      ad_set_err(err, errlen, "%s", llm_client_errmsg(r->llm));
      return rc;
    }
  }
  return 0;
}

/* The run's sources in the store, matched to the corpus by id (an open-addressing table of
 * document indexes keyed by the ids' hashes). */
struct known_fill {
  struct run *r;
  size_t *slot, mask; /* doc index + 1; 0 = empty */
};

static size_t *known_slot(struct known_fill *f, const char *id) {
  size_t h = (size_t)hash64_str(id) & f->mask;
  while (f->slot[h] && strcmp(src_corpus_id(&f->r->corpus, f->slot[h] - 1), id))
    h = (h + 1) & f->mask;
  return &f->slot[h];
}

static int known_row(void *ud, const json_t *row) {
  struct known_fill *f = ud;
  const char *id = jx_str(row, "source_id"), *sha = jx_str(row, "text_sha256");
  size_t at = id ? *known_slot(f, id) : 0;
  if (!at) return 0; /* not in this corpus (--limit, a changed corpus) */
  char want[65];
  src_corpus_sha256_hex(&f->r->corpus, at - 1, want);
  enum store_source_state state = STORE_SRC_PENDING;
  if (!sha || strcmp(sha, want) || store_source_state_parse(jx_str(row, "state"), &state))
    return 0; /* store_source_put says what changed */
  long long accepted = jx_int(row, "accepted", 0), rounds = jx_int(row, "rounds_used", 0);
  if (accepted < 0 || accepted > INT32_MAX || rounds < 0 || rounds > UINT16_MAX)
    return 0; /* not kept in 8 bytes: registered and read again (exact, slower) */
  struct src_known *k = &f->r->known[at - 1];
  k->seen = 1;
  k->state = (uint8_t)state;
  k->accepted = (int32_t)accepted;
  k->rounds_used = (uint16_t)rounds;
  return 0;
}

/* r->known from one read of the run's sources (a resume: most are registered, many finished). */
static int load_known(struct run *r) {
  size_t n = r->corpus.n, cap = 16;
  while (cap < 2 * n) cap *= 2;
  struct known_fill f = {r, xcalloc(cap, sizeof(size_t)), cap - 1};
  for (size_t i = 0; i < n; i++) {
    size_t *s = known_slot(&f, src_corpus_id(&r->corpus, i));
    if (!*s) *s = i + 1; /* ids are unique (src_load) */
  }
  r->known = xcalloc(n ? n : 1, sizeof *r->known);
  int rc = store_sources_each(r->st, r->run_id, known_row, &f);
  free(f.slot);
  return rc;
}

/* Join the run as a worker: registered, and its first heartbeat (the others' totals). */
static int join_run(struct run *r, char *err, size_t errlen) {
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) || !host[0]) snprintf(host, sizeof host, "unknown");
  r->lease_ms = r->opts->lease_ms > 0 ? r->opts->lease_ms : RUN_LEASE_MS;
  r->leased = json_object();
  r->renewed = json_object();
  r->lost = json_object();
  int rc_ = store_worker_join(r->st, r->run_id, host, r->lease_ms, &r->worker);
  if (!rc_) {
    r->sum->worker = r->worker;
    worker_beat(r);
    if (r->fatal) rc_ = AD_EIO;
  }
  if (rc_) ad_set_err(err, errlen, "%s", store_errmsg(r->st));
  else if (!r->opts->quiet)
    log_info("worker %lld of run %lld (%d other worker%s alive; leases of %.1f s)",
             (long long)r->worker, (long long)r->run_id, r->others_alive,
             r->others_alive == 1 ? "" : "s", r->lease_ms / 1000.0);
  return rc_;
}

/* Open (or resume) the run in the store and register the corpus. */
static int setup_store(struct run *r, char *err, size_t errlen) {
  const struct recipe *rc = r->rc;
  const struct run_opts *o = r->opts;
  int rc_;
  if ((rc_ = fs_mkdirs(r->output_folder))) {
    ad_set_err(err, errlen, "cannot create output folder %s: %s", r->output_folder,
               strerror(errno));
    return rc_;
  }
  snprintf(r->sum->store_path, sizeof r->sum->store_path, "%s", r->store_path);
  snprintf(r->sum->output_folder, sizeof r->sum->output_folder, "%s", r->output_folder);
  /* A PostgreSQL store's run is shared by every `autodata run` on it (workers), except with
   * analysis.every, whose notes need the finished prefix in source order: one writer. */
  int shared = !o->store && store_is_url(r->store_path) && rc->analysis.every <= 0;
  if (o->store) r->st = o->store;
  else if ((rc_ = store_open(r->store_path, shared ? STORE_OPEN_SHARED : 0, &r->st)) ||
           (o->cache_from && (rc_ = store_attach_cache(r->st, o->cache_from)))) {
    ad_set_err(err, errlen, "%s%s", r->st ? store_errmsg(r->st) : ad_strerror(rc_),
               rc_ == AD_EBUSY && store_is_url(r->store_path) && rc->analysis.every > 0
                   ? " (a recipe with analysis.every runs as the store's only writer: its "
                     "dataset notes need the finished sources in order, which workers sharing "
                     "the run cannot keep; docs/store.md)"
                   : "");
    return rc_;
  }
  r->prompt_hashes = prompt_record(r, 0);
  json_t *identity = recipe_identity(rc);
  char id_sha[65], store_sha[65];
  if ((rc_ = recipe_identity_sha256(identity, id_sha))) {
    ad_set_err(err, errlen, "cannot hash the configuration");
    json_decref(identity);
    return rc_;
  }
  snprintf(store_sha, sizeof store_sha, "%s", id_sha);
  if (!o->new_run) {
    json_t *last = NULL;
    if (!(rc_ = latest_run(r, &last, err, errlen)) && !(rc_ = check_method(r, last, err, errlen)))
      rc_ = check_identity(r, last, identity, id_sha, store_sha, err, errlen);
    json_decref(last);
    if (rc_) {
      json_decref(identity);
      return rc_;
    }
  }
  json_t *extra = run_extra(r, identity, id_sha);
  json_decref(identity);
  json_t *prices = prices_json(rc);
  struct store_run_info info = {rc->name,     store_sha,       r->prompt_hashes, (uint64_t)rc->seed,
                                ad_version(), o->command_line, prices,           extra};
  int resumed = 0;
  rc_ = store_run_begin(r->st, &info, o->new_run, &r->run_id, &resumed);
  json_decref(extra);
  json_decref(prices);
  if (rc_) {
    ad_set_err(err, errlen, "%s%s", store_errmsg(r->st),
               rc_ == AD_EMISMATCH ? " (use --new-run to start a new run in this store, or "
                                     "point output.folder elsewhere)"
                                   : "");
    return rc_;
  }
  r->sum->run_id = r->run_id;
  if (shared && (rc_ = join_run(r, err, errlen))) return rc_;
  if (resumed && !o->quiet)
    log_info("resuming run %lld in %s", (long long)r->run_id, r->store_path);
  if (resumed && (rc_ = load_known(r))) {
    ad_set_err(err, errlen, "%s", store_errmsg(r->st));
    return rc_;
  }
  for (size_t i = 0; i < r->corpus.n; i++) {
    char sha[65];
    if (r->known && r->known[i].seen) continue; /* registered with this text */
    src_corpus_sha256_hex(&r->corpus, i, sha);
    if ((rc_ = store_source_put(r->st, r->run_id, src_corpus_id(&r->corpus, i),
                                src_corpus_title(&r->corpus, i), sha)) ||
        (rc_ = store_maybe_flush(r->st, time_now_ms()))) /* a batch at a time, not the corpus */
      break;
  }
  if (!rc_) rc_ = store_flush(r->st);
  if (rc_) ad_set_err(err, errlen, "%s", store_errmsg(r->st));
  /* registered: an episode reads its source's title with its text (memory per source in
   * flight, not per source of the corpus) */
  else src_corpus_drop_titles(&r->corpus);
  return rc_;
}

static int dnote_load_example(void *ud, const json_t *row) {
  dnote_example(ud, jx_str(row, "source_id"), jx_str(row, "example_id"),
                json_object_get(row, "example"));
  return 0;
}

/* analysis.every: the dataset notes, with the examples earlier sessions accepted. */
static int setup_dnote(struct run *r, char *err, size_t errlen) {
  r->dnote = dnote_new(r->rc->analysis.every, &r->corpus);
  int rc_ = store_examples_each(r->st, r->run_id, dnote_load_example, r->dnote);
  if (rc_) ad_set_err(err, errlen, "%s", store_errmsg(r->st));
  return rc_;
}

/* One pass of the run's side of the event loop (the client's side is the caller's
 * llm_client_run_once): deliver what arrived, commit when due, start episodes up to the
 * concurrency, release held errors that nothing left can explain. */
int run_step(struct run *r) {
  if (r->worker && time_now_ms() - r->last_beat_ms >= r->lease_ms / 3) worker_beat(r);
  drain_ready(r);
  if (store_maybe_flush(r->st, time_now_ms())) store_failed(r, "committing");
  progress(r, 0);
  start_episodes(r);
  drain_ready(r);
  /* Held request errors with nothing left that could tell: the run stops for
   * another reason (set them aside), or nothing else is in flight and no source
   * is left to start (they were the requests' own errors). */
  if (r->held && r->stopping) release_held(r, 1);
  else if (r->held && !r->ready_head && r->in_flight == 0 && r->next_doc >= r->corpus.n)
    release_held(r, 0);
  if (r->active == 0 && !r->stopping && r->next_doc < r->corpus.n && r->dnote_wait) {
    /* the next source waited for earlier ones: now that none is in flight, either its note
     * is decided (start it on the next pass) or it waits for one set aside (a rerun resumes
     * both) */
    const char *note;
    int k;
    return dnote_ready(r->dnote, r->next_doc, &note, &k) ? 2 : 0;
  }
  if (r->active == 0 && (r->stopping || r->next_doc >= r->corpus.n))
    return !r->stopping && r->n_skipped ? 1 : 0; /* a worker waits for the skipped ones */
  return r->ready_head ? 2 : 1;
}

void run_stop(struct run *r, const char *reason) {
  if (!r->sum->stopped) {
    r->sum->stopped = 1;
    snprintf(r->sum->stop_reason, sizeof r->sum->stop_reason, "%s", reason);
  }
  r->stopping = 1;
}

/* The event loop of a run on its own, until every source is done or the run stops. */
static void loop(struct run *r) {
  int signals_seen = 0, gone_seen = 0;
  for (;;) {
    if (g_signals > signals_seen || g_session_gone > gone_seen) {
      signals_seen = g_signals;
      gone_seen = g_session_gone;
      run_stop(r, signal_reason(g_last_signal));
      acknowledge_stop(r, signals_seen);
      if (signals_seen >= 2) llm_client_cancel_all(r->llm);
    }
    int more = run_step(r);
    if (!more) break;
    if (r->worker && r->active == 0 && !llm_client_pending(r->llm)) {
      /* a worker waiting for sources other workers hold: nothing in flight would wake the
       * client's poll, which returns at once */
      struct timespec ts = {0, 100 * 1000000L};
      nanosleep(&ts, NULL);
      continue;
    }
    llm_client_run_once(r->llm, more == 2 ? 0 : 100);
  }
}

/* Everything run_end frees; safe on a partly set-up run. */
static void run_release(struct run *r) {
  /* Free the client first (when it is the run's): outstanding calls are dropped without
   * callbacks (and their episodes with them), then queued cache hits, then the store. */
  if (r->own_llm) llm_client_free(r->llm);
  while (r->held) { /* only left when the run ended on an error */
    struct call *c = r->held;
    r->held = c->next;
    call_free(c);
  }
  free(r->schema_no_json);
  free(r->schema_warned);
  while (r->ready_head) {
    struct call *c = r->ready_head;
    r->ready_head = c->next;
    call_free(c);
  }
  dnote_free(r->dnote);
  free(r->known);
  free(r->skipped);
  json_decref(r->leased);
  json_decref(r->renewed);
  json_decref(r->lost);
  json_decref(r->prompt_hashes);
  json_decref(r->no_schema);
  src_corpus_release(&r->corpus);
  method_prompt_release(&r->method_chal);
  method_prompt_release(&r->method_orch);
  free(r->output_folder);
  free(r->store_path);
}

/* Close (or, when it is the caller's, flush) the store; frees r. */
static int run_close(struct run *r, int rc_, char *err, size_t errlen) {
  r->sum->seconds = (double)(time_now_ms() - r->t0_ms) / 1000.0;
  run_release(r);
  if (r->st) {
    int frc = r->opts->store ? store_flush(r->st) : store_close(r->st);
    if (frc && !rc_) {
      ad_set_err(err, errlen, "closing the store: %s", ad_strerror(frc));
      rc_ = frc;
    }
  }
  free(r);
  return rc_;
}

int run_start(const struct recipe *rc, const struct run_opts *o, struct run_summary *sum,
              struct run **out, char *err, size_t errlen) {
  *out = NULL;
  struct run *r = xcalloc(1, sizeof *r);
  memset(sum, 0, sizeof *sum);
  r->rc = rc;
  r->opts = o;
  r->sum = sum;
  r->t0_ms = time_now_ms();
  r->no_schema = json_object();
  int rc_ = 0;
  if ((rc_ = setup_method(r, err, errlen))) goto fail;
  struct src_options so = rc->sources;
  if (o->limit) so.limit = o->limit;
  so.stream = 1; /* an index in memory; each text from its start to its end (source.h) */
  /* the index kept in the output folder: a resume does not read the whole corpus again */
  char *idx = fs_join(r->output_folder, ".sources.idx");
  so.index_cache = idx;
  rc_ = fs_mkdirs(r->output_folder); /* not fatal here: setup_store reports it */
  rc_ = src_load(&so, &r->corpus, err, errlen);
  free(idx);
  if (rc_) {
    sum->bad_input = 1;
    goto fail;
  }
  if (o->source_ids &&
      (rc_ = src_corpus_keep(&r->corpus, o->source_ids, o->n_source_ids, err, errlen))) {
    sum->bad_input = 1;
    goto fail;
  }
  sum->sources = r->corpus.n;
  sum->invalid_skipped = r->corpus.n_invalid;
  if (r->corpus.n_invalid)
    log_warn("%zu invalid source records skipped (sources.on_invalid: skip); the first: %s",
             r->corpus.n_invalid, r->corpus.first_invalid);
  if (r->method->challenger_prompt &&
      (rc_ = method_prompt_load(r->method, r->rc, RECIPE_ROLE_CHALLENGER, &r->method_chal, err,
                                errlen)))
    goto fail;
  if (r->method->orchestrator_prompt &&
      (rc_ = method_prompt_load(r->method, r->rc, RECIPE_ROLE_ORCHESTRATOR, &r->method_orch, err,
                                errlen)))
    goto fail;
  r->concurrency = o->concurrency > 0 ? o->concurrency : rc->concurrency;
  if (r->concurrency < 1) r->concurrency = 1;
  /* The client before the store: a run that cannot start (a key not set, a bad header)
   * creates no store and no run that a corrected rerun would find "changed". */
  if ((rc_ = setup_llm(r, err, errlen))) goto fail;
  if ((rc_ = setup_store(r, err, errlen))) goto fail;
  if (rc->analysis.every > 0 && (rc_ = setup_dnote(r, err, errlen))) goto fail;
  r->live_progress = o->progress < 0 ? isatty(STDERR_FILENO) : o->progress;
  r->ep_cfg = (struct ep_config){rc,
                                 r->method,
                                 &r->bl,
                                 r->method->challenger_prompt ? &r->method_chal.tpl : NULL,
                                 r->prompt_hashes,
                                 r->method->orchestrator_prompt ? &r->method_orch.tpl : NULL};
  r->ep_env = (struct ep_env){r,          env_submit,   env_seed,      env_schema_ok,
                              env_record, env_stopping, env_reply_seen};
  r->schema_no_json = xcalloc((size_t)rc->n_endpoints + 1, sizeof *r->schema_no_json);
  r->schema_warned = xcalloc((size_t)rc->n_endpoints + 1, sizeof *r->schema_warned);
  *out = r;
  return 0;
fail:
  return run_close(r, rc_, err, errlen);
}

int run_end(struct run *r, char *err, size_t errlen) {
  struct run_summary *sum = r->sum;
  int rc_ = 0;
  for (int i = 0; i < RECIPE_N_ROLES; i++) /* how each shaped role's replies went */
    if (r->tally[i].seen)
      put_event(r, LOG_INFO,
                json_pack("{s:s,s:s,s:I,s:I}", "msg", "replies", "role",
                          recipe_role_name((enum recipe_role_id)i), "seen",
                          (json_int_t)r->tally[i].seen, "unusable",
                          (json_int_t)r->tally[i].unusable));
  if (r->worker) { /* the last counters out, the leases left free for the other workers */
    worker_beat(r);
    if (store_lease_release(r->st, r->run_id, r->worker, NULL)) store_failed(r, "leaving the run");
  }
  /* A worker that stops while others go on leaves the run's status to them. */
  if (!(r->worker && (r->fatal || sum->stopped) && r->others_alive) &&
      store_run_set_status(r->st, r->run_id,
                           r->fatal       ? "failed"
                           : sum->stopped ? "interrupted"
                                          : "done"))
    store_failed(r, "finishing the run");
  if (store_flush(r->st) && !r->fatal) store_failed(r, "committing");
  progress(r, 1);
  if (r->fatal) {
    ad_set_err(err, errlen, "%s", r->fatal_msg);
    rc_ = AD_EIO;
  } else {
    sum->pending = r->corpus.n - sum->done - sum->exhausted;
    if (r->finished_session > 0 && r->finished_error == r->finished_session && sum->done == 0) {
      sum->all_errors = 1;
      snprintf(sum->error_reason, sizeof sum->error_reason, "%s", r->last_error);
    }
  }
  return run_close(r, rc_, err, errlen);
}

void run_signals_install(struct run_sigsave *save) {
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, &save->s_int);
  sigaction(SIGTERM, &sa, &save->s_term);
  sigaction(SIGPIPE, &sa, &save->s_pipe);
  sigaction(SIGHUP, NULL, &save->s_hup);
  if (save->s_hup.sa_handler != SIG_IGN) sigaction(SIGHUP, &sa, NULL); /* nohup: keep running */
  g_signals = g_session_gone = g_last_signal = 0;
}

void run_signals_restore(const struct run_sigsave *save) {
  sigaction(SIGINT, &save->s_int, NULL);
  sigaction(SIGTERM, &save->s_term, NULL);
  sigaction(SIGHUP, &save->s_hup, NULL);
  sigaction(SIGPIPE, &save->s_pipe, NULL);
}

int run_signals(const char **reason) {
  int n = g_signals;
  if (!n && g_session_gone) n = 1;
  if (n && reason) *reason = signal_reason(g_last_signal);
  return n;
}

int run_execute(const struct recipe *rc, const struct run_opts *o, struct run_summary *sum,
                char *err, size_t errlen) {
  struct run_sigsave save;
  run_signals_install(&save);
  struct run *r;
  int rc_ = run_start(rc, o, sum, &r, err, errlen);
  if (!rc_) {
    loop(r);
    rc_ = run_end(r, err, errlen);
  }
  run_signals_restore(&save);
  return rc_;
}
