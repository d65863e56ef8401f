/* reward.c - `autodata reward-server`: the dataset's judge as an HTTP reward endpoint
 * (docs/eval.md). HTTP workers (httpd/) parse and check each request and look its
 * examples up; the main thread runs every judge call through the llm client behind the
 * store's cache (grade_judge_async) and answers the deferred request when its last
 * response is graded. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "grade/grade.h"
#include "httpd/httpd.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/timeu.h"
#include "util/version.h"

/* ---- the request parser (pure) ---- */

/* An array of strings (or, with nulls_ok, nulls) at key: 0 and *arr (borrowed; NULL when
 * absent and optional), or AD_EINVAL with err. */
static int str_array(const json_t *root, const char *key, int required, int nulls_ok,
                     const json_t **arr, char *err, size_t errlen) {
  const json_t *a = json_object_get(root, key);
  *arr = NULL;
  if (!a || json_is_null(a)) {
    if (!required) return 0;
    ad_set_err(err, errlen, "missing field \"%s\" (an array of strings)", key);
    return AD_EINVAL;
  }
  if (!json_is_array(a)) {
    ad_set_err(err, errlen, "\"%s\": expected an array of strings", key);
    return AD_EINVAL;
  }
  if (json_array_size(a) > GRADE_REWARD_MAX_ITEMS) {
    ad_set_err(err, errlen, "\"%s\" has %zu items; at most %d per request", key, json_array_size(a),
               GRADE_REWARD_MAX_ITEMS);
    return AD_EINVAL;
  }
  size_t i;
  const json_t *v;
  json_array_foreach(a, i, v) {
    if (json_is_string(v) || (nulls_ok && json_is_null(v))) continue;
    ad_set_err(err, errlen, "\"%s\"[%zu]: expected a string", key, i);
    return AD_EINVAL;
  }
  *arr = a;
  return 0;
}

static int parse_openrlhf(struct grade_reward_req *r, char *err, size_t errlen) {
  const json_t *q, *p, *l;
  int rc;
  if ((rc = str_array(r->root, "query", 1, 0, &q, err, errlen)) ||
      (rc = str_array(r->root, "prompts", 0, 1, &p, err, errlen)) ||
      (rc = str_array(r->root, "labels", 0, 1, &l, err, errlen)))
    return rc;
  size_t n = json_array_size(q);
  if (!n) {
    ad_set_err(err, errlen, "\"query\" is empty");
    return AD_EINVAL;
  }
  if ((p && json_array_size(p) != n) || (l && json_array_size(l) != n)) {
    ad_set_err(err, errlen, "\"%s\" has %zu items but \"query\" has %zu",
               p && json_array_size(p) != n ? "prompts" : "labels",
               p && json_array_size(p) != n ? json_array_size(p) : json_array_size(l), n);
    return AD_EINVAL;
  }
  r->items = xcalloc(n, sizeof *r->items);
  r->n = n;
  for (size_t i = 0; i < n; i++) {
    struct grade_reward_item *it = &r->items[i];
    const char *query = json_string_value(json_array_get(q, i));
    const char *prompt = p ? json_string_value(json_array_get(p, i)) : NULL;
    const char *label = l ? json_string_value(json_array_get(l, i)) : NULL;
    it->id = label && *label ? label : NULL;
    it->prompt = prompt && *prompt ? prompt : NULL;
    it->response = query;
    size_t pl = it->prompt ? strlen(it->prompt) : 0;
    if (pl && !strncmp(query, it->prompt, pl))
      it->response = query + pl;                    /* query = prompt + response */
    if (!it->id && !it->prompt) it->prompt = query; /* the example is found in the query */
  }
  return 0;
}

static int parse_plain(struct grade_reward_req *r, char *err, size_t errlen) {
  const json_t *root = r->root;
  const json_t *id = json_object_get(root, "id"), *prompt = json_object_get(root, "prompt");
  if ((id && !json_is_string(id)) || (prompt && !json_is_string(prompt))) {
    ad_set_err(err, errlen, "\"%s\": expected a string",
               id && !json_is_string(id) ? "id" : "prompt");
    return AD_EINVAL;
  }
  if (!id && !prompt) {
    ad_set_err(err, errlen, "give the example's \"id\" or its \"prompt\"");
    return AD_EINVAL;
  }
  const json_t *one = json_object_get(root, "response"), *many = NULL;
  if (one && !json_is_string(one)) {
    ad_set_err(err, errlen, "\"response\": expected a string");
    return AD_EINVAL;
  }
  int rc = str_array(root, "responses", !one, 0, &many, err, errlen);
  if (rc) {
    if (!one && !json_object_get(root, "responses"))
      ad_set_err(err, errlen, "missing field \"responses\" (an array of strings) or \"response\"");
    return rc;
  }
  if (one && many) {
    ad_set_err(err, errlen, "give \"response\" or \"responses\", not both");
    return AD_EINVAL;
  }
  size_t n = one ? 1 : json_array_size(many);
  if (!n) {
    ad_set_err(err, errlen, "\"responses\" is empty");
    return AD_EINVAL;
  }
  r->items = xcalloc(n, sizeof *r->items);
  r->n = n;
  for (size_t i = 0; i < n; i++) {
    r->items[i].id = id ? json_string_value(id) : NULL;
    r->items[i].prompt = prompt ? json_string_value(prompt) : NULL;
    r->items[i].response = one ? json_string_value(one)
                               : json_string_value(json_array_get(many, i));
  }
  return 0;
}

int grade_reward_parse(enum grade_reward_kind kind, const char *body, size_t len,
                       struct grade_reward_req *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  out->kind = kind;
  json_error_t je;
  out->root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
  if (!out->root) {
    ad_set_err(err, errlen, "body is not JSON: %s at line %d, column %d", je.text, je.line,
               je.column);
    for (char *q = err; q && *q; q++) /* jansson may quote the input: keep it one line */
      if ((unsigned char)*q < 32) *q = ' ';
    return AD_EPARSE;
  }
  if (!json_is_object(out->root)) {
    ad_set_err(err, errlen, "body: expected a JSON object");
    grade_reward_req_release(out);
    return AD_EPARSE;
  }
  int rc = kind == GRADE_RW_OPENRLHF ? parse_openrlhf(out, err, errlen)
                                     : parse_plain(out, err, errlen);
  if (rc) grade_reward_req_release(out);
  return rc;
}

void grade_reward_req_release(struct grade_reward_req *r) {
  json_decref(r->root);
  free(r->items);
  memset(r, 0, sizeof *r);
}

/* ---- the server ---- */

struct item {
  struct job *job;
  const struct grade_example *e;
  char *response;
  int done, ok, infra;
  double score;
  json_t *detail;
  char *error;
};

struct job {
  struct srv *srv;
  enum grade_reward_kind kind;
  struct httpd_pending *token;
  struct item *items;
  size_t n, left;
  struct job *next;
};

struct srv {
  const struct grade_set *s;
  const struct grade_server_opts *o;
  struct httpd *http;
  llm_client *llm;
  struct grade_caller caller;
  char jlabel[48];
  pthread_mutex_t mu;
  struct job *queue_head, *queue_tail; /* from the workers to the main thread */
  int efd;                             /* wakes the main thread */
  atomic_int http_done;
  size_t active; /* jobs started and not answered (main thread) */
  atomic_ullong requests, bad, rewards;
};

static struct srv *g_srv; /* for the signal handler only */
static volatile sig_atomic_t g_stop;

static void wake(struct srv *v) {
  uint64_t one = 1;
  ssize_t r = write(v->efd, &one, sizeof one);
  (void)r;
  llm_client_wakeup(v->llm);
}

static void on_signal(int sig) {
  (void)sig;
  g_stop = g_stop < 2 ? g_stop + 1 : 2; /* a second signal abandons the judge calls */
  if (g_srv) {
    httpd_stop(g_srv->http);
    uint64_t one = 1;
    ssize_t r = write(g_srv->efd, &one, sizeof one);
    (void)r;
  }
}

static void reply_json(struct httpd_reply *rep, int status, json_t *o) {
  char *t = json_dumps(o, JSON_COMPACT);
  httpd_reply_set(rep, status, t ? t : "{}", t ? strlen(t) : 2);
  free(t);
  json_decref(o);
}

static void reply_error(struct srv *v, struct httpd_reply *rep, int status, const char *type,
                        const char *msg) {
  atomic_fetch_add(&v->bad, 1);
  reply_json(rep, status, json_pack("{s:{s:s,s:s}}", "error", "message", msg, "type", type));
}

/* The path without its query string is p (n bytes). */
static int path_is(const char *path, const char *p) {
  size_t n = strcspn(path, "?#"), l = strlen(p);
  return n == l && !strncmp(path, p, l);
}

static void handle(void *ud, const struct httpd_req *req, struct httpd_reply *rep) {
  struct srv *v = ud;
  atomic_fetch_add(&v->requests, 1);
  if (path_is(req->path, "/health")) {
    if (strcmp(req->method, "GET") && strcmp(req->method, "HEAD")) {
      reply_error(v, rep, 405, "invalid_request_error", "/health takes GET");
      return;
    }
    reply_json(rep, 200,
               json_pack("{s:s,s:I,s:s,s:s,s:s}", "status", "ok", "examples", (json_int_t)v->s->n,
                         "task", cand_task_name(v->s->task), "judge_model", v->s->judge_model,
                         "version", ad_version()));
    return;
  }
  enum grade_reward_kind kind;
  if (path_is(req->path, "/get_reward")) kind = GRADE_RW_OPENRLHF;
  else if (path_is(req->path, "/v1/reward")) kind = GRADE_RW_PLAIN;
  else {
    char msg[2200];
    snprintf(msg, sizeof msg,
             "no such endpoint: %s %.2048s (POST /get_reward, POST /v1/reward, GET /health)",
             req->method, req->path);
    reply_error(v, rep, 404, "not_found", msg);
    return;
  }
  if (strcmp(req->method, "POST")) {
    reply_error(v, rep, 405, "invalid_request_error", "this endpoint takes POST with a JSON body");
    return;
  }
  char err[512];
  struct grade_reward_req r;
  if (grade_reward_parse(kind, req->body, req->len, &r, err, sizeof err)) {
    reply_error(v, rep, 400, "invalid_request_error", err);
    return;
  }
  struct job *j = xcalloc(1, sizeof *j);
  j->srv = v;
  j->kind = kind;
  j->n = j->left = r.n;
  j->items = xcalloc(r.n, sizeof *j->items);
  for (size_t i = 0; i < r.n; i++) {
    const struct grade_reward_item *it = &r.items[i];
    const struct grade_example *e = it->id ? grade_find_id(v->s, it->id) : NULL;
    if (!e && it->prompt) e = grade_find_prompt(v->s, it->prompt);
    if (!e) {
      char msg[400];
      if (it->id && !it->prompt)
        snprintf(msg, sizeof msg, "item %zu: no example has the id '%.100s'", i, it->id);
      else
        snprintf(msg, sizeof msg, "item %zu: no example matches the prompt '%.120s%s'", i,
                 it->prompt, strlen(it->prompt) > 120 ? "..." : "");
      for (size_t k = 0; k < i; k++) free(j->items[k].response);
      free(j->items);
      free(j);
      grade_reward_req_release(&r);
      reply_error(v, rep, 404, "not_found", msg);
      return;
    }
    j->items[i].job = j;
    j->items[i].e = e;
    j->items[i].response = xstrdup(it->response);
  }
  grade_reward_req_release(&r);
  j->token = httpd_defer(req, rep);
  pthread_mutex_lock(&v->mu);
  if (v->queue_tail) v->queue_tail->next = j;
  else v->queue_head = j;
  v->queue_tail = j;
  pthread_mutex_unlock(&v->mu);
  wake(v);
}

/* The job's answer, once every item is graded. */
static void answer(struct srv *v, struct job *j) {
  const struct item *infra = NULL;
  for (size_t i = 0; i < j->n && !infra; i++)
    if (j->items[i].infra) infra = &j->items[i];
  json_t *o;
  int status = 200;
  if (infra) {
    status = 503;
    char *m = xasprintf("the judge could not be reached: %s", infra->error);
    o = json_pack("{s:{s:s,s:s}}", "error", "message", m, "type", "judge_unavailable");
    free(m);
  } else {
    json_t *scores = json_array(), *results = json_array(), *errors = json_array();
    for (size_t i = 0; i < j->n; i++) {
      const struct item *it = &j->items[i];
      double sc = it->ok ? jx_round6(it->score) : 0.0;
      json_array_append_new(scores, json_real(sc));
      json_t *res = json_pack("{s:s,s:o}", "id", it->e->id, "score",
                              it->ok ? json_real(sc) : json_null());
      if (it->ok) json_object_set(res, "detail", it->detail ? it->detail : json_null());
      else {
        json_object_set_new(res, "error", json_string(it->error ? it->error : "?"));
        json_array_append_new(errors, json_pack("{s:I,s:s}", "index", (json_int_t)i, "error",
                                                it->error ? it->error : "?"));
      }
      json_array_append_new(results, res);
    }
    if (j->kind == GRADE_RW_OPENRLHF) {
      o = json_pack("{s:O,s:o}", "rewards", scores, "scores", scores);
    } else {
      o = json_pack("{s:s,s:o,s:o}", "id", j->items[0].e->id, "scores", scores, "results", results);
      results = NULL;
    }
    json_decref(results);
    if (json_array_size(errors)) json_object_set_new(o, "errors", errors);
    else json_decref(errors);
    atomic_fetch_add(&v->rewards, j->n);
  }
  char *t = json_dumps(o, JSON_COMPACT);
  json_decref(o);
  httpd_answer(j->token, status, NULL, t ? t : "{}", t ? strlen(t) : 2);
  free(t);
  for (size_t i = 0; i < j->n; i++) {
    free(j->items[i].response);
    free(j->items[i].error);
    json_decref(j->items[i].detail);
  }
  free(j->items);
  free(j);
  v->active--;
}

static void on_verdict(void *ud, const struct grade_verdict *vd) {
  struct item *it = ud;
  struct job *j = it->job;
  it->done = 1;
  it->ok = vd->ok;
  it->infra = vd->infra;
  it->score = vd->score;
  if (vd->detail) it->detail = json_incref((json_t *)vd->detail);
  if (vd->error) it->error = xstrdup(vd->error);
  if (--j->left == 0) answer(j->srv, j);
}

static void start_jobs(struct srv *v) {
  pthread_mutex_lock(&v->mu);
  struct job *j = v->queue_head;
  v->queue_head = v->queue_tail = NULL;
  pthread_mutex_unlock(&v->mu);
  while (j) {
    struct job *next = j->next;
    v->active++;
    size_t n = j->n;
    for (size_t i = 0; i < n; i++) /* the last verdict may answer (and free) the job */
      grade_judge_async(&v->caller, v->s, j->items[i].e, j->items[i].response, v->jlabel, 0,
                        on_verdict, &j->items[i]);
    j = next;
  }
}

static void *http_main(void *arg) {
  struct srv *v = arg;
  httpd_run(v->http);
  atomic_store(&v->http_done, 1);
  uint64_t one = 1;
  ssize_t r = write(v->efd, &one, sizeof one);
  (void)r;
  return NULL;
}

int grade_serve(const struct grade_set *s, const struct grade_server_opts *o, char *err,
                size_t errlen) {
  struct srv v;
  memset(&v, 0, sizeof v);
  v.s = s;
  v.o = o;
  snprintf(v.jlabel, sizeof v.jlabel, "judge_%s", o->seed_role ? o->seed_role : "reward");
  int rc = 0;
  store *st = NULL;
  if ((rc = store_open(o->cache_path, 0, &st))) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    store_close(st);
    return rc;
  }
  json_t *hashes = json_pack("{s:s}", "judge", s->judge_prompt_sha);
  struct store_run_info info = {
      "reward-server", s->dataset_sha, hashes, s->seed, ad_version(), "", NULL, NULL};
  int resumed = 0;
  rc = store_run_begin(st, &info, 1, &v.caller.run, &resumed);
  json_decref(hashes);
  if (rc) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    store_close(st);
    return rc;
  }
  v.llm = llm_client_new();
  struct llm_endpoint_config cfg = s->judge_cfg;
  if (o->judge_retries >= 0) cfg.max_retries = o->judge_retries;
  if (o->judge_timeout_ms > 0) cfg.request_timeout_ms = o->judge_timeout_ms;
  if ((rc = llm_client_add_endpoint(v.llm, &cfg))) {
    ad_set_err(err, errlen, "%s", llm_client_errmsg(v.llm));
    llm_client_free(v.llm);
    store_close(st);
    return rc;
  }
  v.caller.llm = v.llm;
  v.caller.st = st;
  v.efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  pthread_mutex_init(&v.mu, NULL);
  struct httpd_opts ho = {"127.0.0.1", o->port, o->threads, o->max_body ? o->max_body : 8u << 20,
                          handle,      &v};
  if (v.efd < 0 || (rc = httpd_open(&ho, &v.http, err, errlen))) {
    if (v.efd < 0) {
      ad_set_err(err, errlen, "eventfd: %s", strerror(errno));
      rc = AD_EIO;
    }
    goto out;
  }
  g_srv = &v;
  g_stop = 0;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);
  pthread_t th;
  if (pthread_create(&th, NULL, http_main, &v)) {
    ad_set_err(err, errlen, "cannot start the HTTP thread");
    rc = AD_ENOMEM;
    goto out;
  }
  char url[300];
  httpd_url(v.http, "", url, sizeof url);
  printf(
      "listening on %s (POST /get_reward, POST /v1/reward, GET /health); %zu examples, judge %s\n",
      url, s->n, s->judge_model);
  fflush(stdout);
  int64_t last_flush_err = 0;
  int canceled = 0;
  for (;;) {
    start_jobs(&v);
    if (g_stop >= 2 && !canceled) { /* their requests get 503 */
      canceled = 1;
      llm_client_cancel_all(v.llm);
    }
    if (atomic_load(&v.http_done) && !v.active) break;
    if (grade_caller_pending(&v.caller)) {
      grade_caller_pump(&v.caller, 100);
    } else {
      struct pollfd pf = {v.efd, POLLIN, 0};
      poll(&pf, 1, 100);
    }
    uint64_t x;
    ssize_t r = read(v.efd, &x, sizeof x);
    (void)r;
    if (store_maybe_flush(st, time_now_ms()) && time_now_ms() - last_flush_err > 10000) {
      last_flush_err = time_now_ms();
      log_warn("%s", store_errmsg(st));
    }
  }
  pthread_join(th, NULL);
  if (!o->quiet)
    fprintf(stderr,
            "reward-server stopped: %llu requests, %llu refused, %llu responses graded; judge "
            "calls sent %lld, answered from the store %lld\n",
            (unsigned long long)atomic_load(&v.requests), (unsigned long long)atomic_load(&v.bad),
            (unsigned long long)atomic_load(&v.rewards), (long long)v.caller.sent,
            (long long)v.caller.cache_hits);
out:
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  g_srv = NULL;
  httpd_free(v.http);
  llm_client_free(v.llm);
  if (store_flush(st) && !rc) {
    ad_set_err(err, errlen, "%s", store_errmsg(st));
    rc = AD_EIO;
  }
  store_close(st);
  if (v.efd >= 0) close(v.efd);
  pthread_mutex_destroy(&v.mu);
  return rc;
}
