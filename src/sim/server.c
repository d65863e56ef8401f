/* server.c - the sim server: sim_handle() behind the program's HTTP server (httpd/),
 * with latency and fault injection and real servers' behaviours.
 *
 * Every chat completions request waits latency_ms +/- jitter_ms (a reply timer in the
 * HTTP worker, never a sleep) and draws one fault from its worker's rng, seeded from
 * opts.seed and the worker index (with threads = 1 the fault sequence is a pure function
 * of the seed and the request order).
 */
#include "sim/server.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "httpd/httpd.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/hash.h"
#include "util/mem.h"
#include "util/rng.h"

struct sim_worker {
  struct rng rng;
  uint64_t chat;
  uint64_t faults[8];
  char pad[64]; /* workers write their own counters: keep them off each other's lines */
};

struct sim_server {
  struct sim_server_opts o;
  struct httpd *http;
  struct sim_worker w[SIM_SERVER_MAX_THREADS];
};

static int is_chat_path(const char *path) {
  size_t n = strcspn(path, "?#");
  if (n >= 3 && !strncmp(path, "/v1", 3)) path += 3, n -= 3;
  while (n > 1 && path[n - 1] == '/') n--;
  return n == 17 && !strncmp(path, "/chat/completions", 17);
}

static const char garbage_body[] =
    "<html><head><title>502 Bad Gateway</title></head><body>sim-server fault injection: "
    "garbage reply \x7f{\"choices\": [</body></html>\n";

/* ---------------------------------------------------------------- real-server behaviours */

static int real_behaviours(const struct sim_server_opts *o) {
  return o->ctx_size > 0 || o->cut_max_tokens || o->ignore_schema || o->judge_skip > 0 ||
         o->judge_dup > 0;
}

/* The request's prompt tokens as the sim counts them (characters / 4). */
static long long prompt_tokens(const json_t *req) {
  long long chars = 0;
  size_t i;
  json_t *m;
  json_array_foreach(json_object_get(req, "messages"), i, m) {
    json_t *c = json_object_get(m, "content");
    if (json_is_string(c)) chars += (long long)json_string_length(c);
  }
  return chars / 4;
}

/* 400 in llama-server's words when the prompt does not fit --ctx-size; NULL otherwise
 * (a malloc'd body). */
static char *ctx_overflow(const struct sim_server_opts *o, const json_t *req) {
  if (o->ctx_size <= 0 || !req) return NULL;
  long long n = prompt_tokens(req);
  if (n <= o->ctx_size) return NULL;
  return xasprintf(
      "{\"error\":{\"code\":400,\"message\":\"request (%lld tokens) exceeds the "
      "available context size (%d tokens), try increasing it\",\"type\":"
      "\"exceed_context_size_error\",\"n_prompt_tokens\":%lld,\"n_ctx\":%d}}",
      n, o->ctx_size, n, o->ctx_size);
}

/* Rewrite a verdicts reply: drop the last verdict, or repeat the first. */
static char *mangle_verdicts(const char *content, int dup) {
  json_t *v = json_loads(content, 0, NULL);
  json_t *arr = json_object_get(v, "verdicts");
  char *out = NULL;
  if (json_array_size(arr) >= 2) {
    if (dup) json_array_append_new(arr, json_deep_copy(json_array_get(arr, 0)));
    else json_array_remove(arr, json_array_size(arr) - 1);
    out = json_dumps(v, JSON_COMPACT);
  }
  json_decref(v);
  return out;
}

/* Apply the behaviours to a 200 chat reply r of request req (both parsed here). */
static void apply_behaviours(const struct sim_server_opts *o, const json_t *req, const char *body,
                             size_t len, struct sim_response *r) {
  if (!req || r->status != 200) return;
  json_t *rep = json_loadb(r->body, r->len, 0, NULL);
  json_t *choice = json_array_get(json_object_get(rep, "choices"), 0);
  json_t *msg = json_object_get(choice, "message");
  const char *content = json_string_value(json_object_get(msg, "content"));
  if (!content) {
    json_decref(rep);
    return;
  }
  char *text = xstrdup(content);
  const char *model = json_string_value(json_object_get(req, "model"));
  if (model && !strcmp(model, "sim-judge") && (o->judge_skip > 0 || o->judge_dup > 0)) {
    double u = (double)(hash64_seed(body, len, 0x6a75646765) >> 11) / 9007199254740992.0;
    int dup = u >= o->judge_skip && u < o->judge_skip + o->judge_dup;
    if (u < o->judge_skip || dup) {
      char *m = mangle_verdicts(text, dup);
      if (m) {
        free(text);
        text = m;
      }
    }
  }
  if (o->ignore_schema && json_object_get(req, "response_format")) {
    /* what a server that ignores the schema sends: prose around the content, no JSON */
    for (char *p = text; *p; p++) {
      if (*p == '{' || *p == '[') *p = '(';
      else if (*p == '}' || *p == ']') *p = ')';
    }
    char *t = xasprintf("Sure! Here is what you asked for: %s", text);
    free(text);
    text = t;
  }
  json_int_t max = json_integer_value(json_object_get(req, "max_tokens"));
  json_t *usage = json_object_get(rep, "usage");
  if (o->cut_max_tokens && max > 0 && (json_int_t)(strlen(text) / 4) > max) {
    size_t keep = (size_t)max * 4;
    while (keep > 0 && ((unsigned char)text[keep] & 0xC0) == 0x80) keep--; /* UTF-8 boundary */
    text[keep] = 0;
    json_object_set_new(choice, "finish_reason", json_string("length"));
    json_int_t pt = json_integer_value(json_object_get(usage, "prompt_tokens"));
    json_object_set_new(usage, "completion_tokens", json_integer(max));
    json_object_set_new(usage, "total_tokens", json_integer(pt + max));
  }
  json_object_set_new(msg, "content", json_string(text));
  free(text);
  char *nb = json_dumps(rep, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(rep);
  if (!nb) return;
  free(r->body);
  r->body = nb;
  r->len = strlen(nb);
}

/* Answer one request (the httpd handler, on worker req->worker). */
static void answer(void *ud, const struct httpd_req *req, struct httpd_reply *rep) {
  struct sim_server *s = ud;
  struct sim_worker *w = &s->w[req->worker];
  const struct sim_faults *f = &s->o.faults;
  const char *body = req->body;
  size_t len = req->len;
  enum sim_fault fault = SIM_FAULT_NONE;
  int64_t delay_us = 0;
  int chat = !strcmp(req->method, "POST") && is_chat_path(req->path);
  if (chat) {
    w->chat++;
    double total = 0;
    for (int i = 1; i < 8; i++) total += f->p[i];
    if (total > 0) fault = sim_faults_draw(f, rng_double(&w->rng));
    double d = s->o.latency_ms;
    if (s->o.jitter_ms > 0) d += (rng_double(&w->rng) * 2 - 1) * s->o.jitter_ms;
    if (d < 0) d = 0;
    delay_us = (int64_t)(d * 1000);
    w->faults[fault]++;
  }
  rep->delay_us = delay_us;
  switch (fault) {
  case SIM_FAULT_DROP: rep->drop = 1; return;
  case SIM_FAULT_429:
  case SIM_FAULT_500:
  case SIM_FAULT_503: {
    int st = fault == SIM_FAULT_429 ? 429 : fault == SIM_FAULT_500 ? 500 : 503;
    const char *type = st == 429 ? "rate_limit_error" : "server_error";
    char msg[160];
    int n = snprintf(msg, sizeof msg,
                     "{\"error\":{\"message\":\"sim-server fault injection: %d\",\"type\":\"%s\"}}",
                     st, type);
    httpd_reply_set(rep, st, msg, (size_t)n);
    if (st == 429) {
      rep->has_retry_after = 1;
      rep->retry_after = f->retry_after_s;
    }
    return;
  }
  case SIM_FAULT_GARBAGE: httpd_reply_set(rep, 200, garbage_body, sizeof garbage_body - 1); return;
  default: break;
  }
  if (fault == SIM_FAULT_SLOW) rep->delay_us += (int64_t)f->slow_ms * 1000;
  if (chat && s->o.no_response_format && memmem(body, len, "\"response_format\"", 17)) {
    static const char msg[] =
        "{\"error\":{\"message\":\"response_format is not supported by this server\","
        "\"type\":\"invalid_request_error\",\"param\":\"response_format\"}}";
    httpd_reply_set(rep, 400, msg, sizeof msg - 1);
    return;
  }
  json_t *jreq = chat && real_behaviours(&s->o) ? json_loadb(body, len, 0, NULL) : NULL;
  char *overflow = ctx_overflow(&s->o, jreq);
  if (overflow) {
    httpd_reply_set(rep, 400, overflow, strlen(overflow));
    free(overflow);
    json_decref(jreq);
    return;
  }
  struct sim_response r;
  sim_handle(req->method, req->path, body, len, &r);
  apply_behaviours(&s->o, jreq, body, len, &r);
  json_decref(jreq);
  httpd_reply_set(rep, r.status, r.body ? r.body : "", r.len);
  rep->ctype = r.content_type; /* a static string */
  rep->truncate = fault == SIM_FAULT_TRUNCATE;
  sim_response_release(&r);
}

int sim_server_open(const struct sim_server_opts *opts, struct sim_server **out, char *err,
                    size_t errlen) {
  *out = NULL;
  if (errlen) err[0] = 0;
  if (opts->threads > SIM_SERVER_MAX_THREADS || opts->latency_ms < 0 || opts->jitter_ms < 0) {
    ad_set_err(err, errlen, "invalid server options (threads 1..%d, port 0..65535, latency >= 0)",
               SIM_SERVER_MAX_THREADS);
    return AD_EINVAL;
  }
  struct sim_server *s = xcalloc(1, sizeof *s);
  s->o = *opts;
  for (int i = 0; i < SIM_SERVER_MAX_THREADS; i++)
    rng_seed(&s->w[i].rng, rng_derive(opts->seed, "sim-server worker %d", i));
  struct httpd_opts ho = {opts->host, opts->port, opts->threads, 0, answer, s};
  int rc = httpd_open(&ho, &s->http, err, errlen);
  if (rc) {
    free(s);
    return rc;
  }
  *out = s;
  return 0;
}

int sim_server_port(const struct sim_server *s) { return httpd_port(s->http); }

void sim_server_url(const struct sim_server *s, char *out, size_t outlen) {
  httpd_url(s->http, "/v1", out, outlen);
}

int sim_server_run(struct sim_server *s) { return httpd_run(s->http); }

void sim_server_stop(struct sim_server *s) {
  if (s) httpd_stop(s->http);
}

void sim_server_stats(const struct sim_server *s, struct sim_server_stats *out) {
  memset(out, 0, sizeof *out);
  struct httpd_stats hs;
  httpd_stats(s->http, &hs);
  out->connections = hs.connections;
  out->requests = hs.requests;
  out->bad = hs.bad;
  for (int i = 0; i < SIM_SERVER_MAX_THREADS; i++) {
    out->chat += s->w[i].chat;
    for (int k = 0; k < 8; k++) out->faults[k] += s->w[i].faults[k];
  }
}

void sim_server_free(struct sim_server *s) {
  if (!s) return;
  httpd_free(s->http);
  free(s);
}
