/* client.c - the asynchronous model client: endpoints, admission, retries, curl multi loop.
 *
 * Life of a call: llm_submit() serialises the body and appends the call to its
 * endpoint's FIFO queue. llm_client_run_once() moves due retries from the backoff
 * heap to the head of their queue, admits queued calls while the endpoint's
 * (adaptive) concurrency limit and rate budgets allow, starts one attempt per
 * admitted call (a curl easy handle in the multi, or a sim_handle() call whose
 * result waits in the sim list), and then handles finished attempts: success ->
 * `done`; retryable failure with retries left -> backoff heap; else -> `done`
 * with a one-line diagnosis. Every attempt goes through finish_attempt(), HTTP or sim.
 */
#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "llm/llm.h"
#include "llm/retry.h"
#include "sim/sim.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/log.h"
#include "util/mem.h"
#include "util/secret.h"
#include "util/timeu.h"

#define LLM_DEFAULT_SEED 0x6c6c6d2d6a697474ull /* "llm-jitt" */
#define LLM_RETRY_AFTER_CAP_MS 120000          /* honour Retry-After up to this (or backoff max) */

struct llm_url {
  char *base;  /* as configured, for matching */
  char *shown; /* base without any user:password@, for messages */
  char *post;  /* base + "/chat/completions" */
  int is_sim, is_https;
  int consecutive_fail;
  struct llm_url_state st;
};

struct llm_call;

struct llm_ep {
  char *name;
  struct llm_url urls[LLM_MAX_URLS];
  int n_urls;
  struct curl_slist *headers; /* Content-Type, Authorization (secret), extras */
  json_t *extra_body;         /* owned copy or NULL */
  int max_inflight, connect_timeout_ms, request_timeout_ms, max_retries;
  int backoff_base_ms, backoff_max_ms, adaptive;
  struct llm_aimd aimd;
  struct llm_bucket req_bucket, tok_bucket;
  int64_t blocked_until_ms; /* rate budget: nothing admitted before this */
  struct llm_call *q_head, *q_tail;
  int queued, backoff, inflight;
  unsigned rr;
  struct llm_endpoint_stats st;
  struct llm_ep *next;
};

enum call_where { W_NONE, W_QUEUE, W_BACKOFF, W_CURL, W_SIM };

struct llm_call {
  struct llm_call *prev, *next; /* all outstanding calls */
  struct llm_call *qnext;       /* endpoint queue or sim-done list */
  struct llm_ep *ep;
  uint64_t seq;
  enum call_where where;
  char *body;
  size_t body_len;
  double est_tokens;
  llm_done_fn done;
  llm_attempt_fn attempt_cb;
  void *ud;
  int attempts;
  int url_idx;
  unsigned epoch;
  int64_t submit_us, attempt_start_us, ready_ms;
  int heap_idx;
  CURL *easy;
  struct buf resp;
  int too_big;
  int sim_status;
  int64_t retry_after_ms; /* from the last response's headers, -1 = none */
  char errbuf[CURL_ERROR_SIZE];
};

struct llm_client {
  CURLM *multi;
  struct llm_ep *eps;
  struct llm_call *all; /* doubly linked list of outstanding calls */
  int outstanding;
  struct llm_call **heap; /* backoff min-heap by ready_ms */
  int heap_n, heap_cap;
  struct llm_call *sim_head, *sim_tail;
  CURL **free_easy;
  int n_free, cap_free;
  int n_curl;
  uint64_t next_seq, cancel_upto;
  uint64_t pass_seq; /* calls submitted during this pass (seq >= pass_seq) wait for the next */
  int in_callback;   /* user callbacks running now (the re-entrancy guard) */
  struct rng rng;
  char errmsg[512];
};

/* ---------------------------------------------------------------- helpers */

static void set_err(llm_client *c, const char *fmt, ...) AD_PRINTF(2, 3);
static void set_err(llm_client *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(c->errmsg, sizeof c->errmsg, fmt, ap);
  va_end(ap);
}

/* "http://user:pw@host/v1" -> "http://host/v1" (credentials never reach a message). */
static char *strip_userinfo(const char *url) {
  const char *s = strstr(url, "://");
  if (!s) return xstrdup(url);
  s += 3;
  const char *slash = strchr(s, '/');
  const char *at = strchr(s, '@');
  if (!at || (slash && at > slash)) return xstrdup(url);
  return xasprintf("%.*s%s", (int)(s - url), url, at + 1);
}

static struct llm_ep *find_ep(const llm_client *c, const char *name) {
  for (struct llm_ep *e = c->eps; e; e = e->next)
    if (!strcmp(e->name, name)) return e;
  return NULL;
}

/* ---------------------------------------------------------------- backoff heap */

static void heap_swap(llm_client *c, int i, int j) {
  struct llm_call *t = c->heap[i];
  c->heap[i] = c->heap[j];
  c->heap[j] = t;
  c->heap[i]->heap_idx = i;
  c->heap[j]->heap_idx = j;
}

static void heap_up(llm_client *c, int i) {
  while (i > 0) {
    int p = (i - 1) / 2;
    if (c->heap[p]->ready_ms <= c->heap[i]->ready_ms) break;
    heap_swap(c, i, p);
    i = p;
  }
}

static void heap_down(llm_client *c, int i) {
  for (;;) {
    int l = 2 * i + 1, r = l + 1, m = i;
    if (l < c->heap_n && c->heap[l]->ready_ms < c->heap[m]->ready_ms) m = l;
    if (r < c->heap_n && c->heap[r]->ready_ms < c->heap[m]->ready_ms) m = r;
    if (m == i) return;
    heap_swap(c, i, m);
    i = m;
  }
}

static void heap_push(llm_client *c, struct llm_call *k) {
  if (c->heap_n == c->heap_cap) {
    c->heap_cap = c->heap_cap ? c->heap_cap * 2 : 64;
    c->heap = xrealloc(c->heap, (size_t)c->heap_cap * sizeof *c->heap);
  }
  k->heap_idx = c->heap_n;
  c->heap[c->heap_n++] = k;
  heap_up(c, k->heap_idx);
}

static struct llm_call *heap_pop(llm_client *c) {
  struct llm_call *top = c->heap[0];
  c->heap_n--;
  if (c->heap_n > 0) {
    c->heap[0] = c->heap[c->heap_n];
    c->heap[0]->heap_idx = 0;
    heap_down(c, 0);
  }
  top->heap_idx = -1;
  return top;
}

/* ---------------------------------------------------------------- queues */

static void queue_push(struct llm_ep *ep, struct llm_call *k, int front) {
  k->where = W_QUEUE;
  k->qnext = NULL;
  ep->queued++;
  if (!ep->q_head) {
    ep->q_head = ep->q_tail = k;
  } else if (front) {
    k->qnext = ep->q_head;
    ep->q_head = k;
  } else {
    ep->q_tail->qnext = k;
    ep->q_tail = k;
  }
}

static struct llm_call *queue_pop(struct llm_ep *ep) {
  struct llm_call *k = ep->q_head;
  if (!k) return NULL;
  ep->q_head = k->qnext;
  if (!ep->q_head) ep->q_tail = NULL;
  k->qnext = NULL;
  k->where = W_NONE;
  ep->queued--;
  return k;
}

static void all_unlink(llm_client *c, struct llm_call *k) {
  if (k->prev) k->prev->next = k->next;
  else c->all = k->next;
  if (k->next) k->next->prev = k->prev;
  k->prev = k->next = NULL;
}

static void easy_release(llm_client *c, CURL *e) {
  if (!e) return;
  if (c->n_free == c->cap_free) {
    c->cap_free = c->cap_free ? c->cap_free * 2 : 64;
    c->free_easy = xrealloc(c->free_easy, (size_t)c->cap_free * sizeof *c->free_easy);
  }
  c->free_easy[c->n_free++] = e;
}

static void call_free(struct llm_call *k) {
  free(k->body);
  buf_release(&k->resp);
  free(k);
}

/* Every user callback runs through these two, so the client knows when one is on
 * the stack (llm_client_run_once() and llm_client_free() refuse to run under it). */
static void fire_attempt(llm_client *c, struct llm_call *k, const struct llm_attempt *a) {
  if (!k->attempt_cb) return;
  c->in_callback++;
  k->attempt_cb(k->ud, a);
  c->in_callback--;
}

static void fire_done(llm_client *c, struct llm_call *k, const struct llm_result *res) {
  c->in_callback++;
  k->done(k->ud, res);
  c->in_callback--;
}

/* ---------------------------------------------------------------- client setup */

llm_client *llm_client_new(void) {
  llm_client *c = xcalloc(1, sizeof *c);
  c->multi = curl_multi_init();
  if (!c->multi) { /* curl could not allocate its multi handle */
    free(c);
    return NULL;
  }
  rng_seed(&c->rng, LLM_DEFAULT_SEED);
  return c;
}

void llm_client_set_seed(llm_client *c, uint64_t seed) { rng_seed(&c->rng, seed); }

const char *llm_client_errmsg(const llm_client *c) { return c->errmsg; }

void llm_endpoint_config_init(struct llm_endpoint_config *cfg) {
  memset(cfg, 0, sizeof *cfg);
  cfg->max_inflight = 64;
  cfg->connect_timeout_ms = 10000;
  cfg->request_timeout_ms = 600000;
  cfg->max_retries = 8;
  cfg->backoff_base_ms = 500;
  cfg->backoff_max_ms = 30000;
  cfg->adaptive = 1;
}

static void endpoint_free(struct llm_ep *ep) {
  if (!ep) return;
  for (int i = 0; i < ep->n_urls; i++) {
    free(ep->urls[i].base);
    free(ep->urls[i].shown);
    free(ep->urls[i].post);
  }
  curl_slist_free_all(ep->headers);
  json_decref(ep->extra_body);
  free(ep->name);
  free(ep);
}

/* 0, or AD_ENOMEM when curl cannot allocate the list item (curl's own allocator). */
static int add_header(struct llm_ep *ep, const char *h) {
  struct curl_slist *n = curl_slist_append(ep->headers, h);
  if (!n) return AD_ENOMEM;
  ep->headers = n;
  return 0;
}

int llm_client_add_endpoint(llm_client *c, const struct llm_endpoint_config *cfg) {
  if (!cfg || !cfg->name || !*cfg->name) {
    set_err(c, "endpoint has no name");
    return AD_EINVAL;
  }
  if (find_ep(c, cfg->name)) {
    set_err(c, "endpoint '%s' is defined twice", cfg->name);
    return AD_EEXISTS;
  }
  if (cfg->n_urls < 1 || cfg->n_urls > LLM_MAX_URLS) {
    set_err(c, "endpoint '%s': needs 1 to %d base URLs, got %d", cfg->name, LLM_MAX_URLS,
            cfg->n_urls);
    return AD_EINVAL;
  }
  if (cfg->n_headers < 0 || cfg->n_headers > LLM_MAX_HEADERS) {
    set_err(c, "endpoint '%s': at most %d extra headers", cfg->name, LLM_MAX_HEADERS);
    return AD_EINVAL;
  }
  if (cfg->extra_body && !json_is_object(cfg->extra_body)) {
    set_err(c, "endpoint '%s': extra_body must be a JSON object", cfg->name);
    return AD_EINVAL;
  }
  struct llm_ep *ep = xcalloc(1, sizeof *ep);
  int rc;
  char *auth = NULL;
  ep->name = xstrdup(cfg->name);
  for (int i = 0; i < cfg->n_urls; i++) {
    const char *u = cfg->base_urls[i];
    struct llm_url *url = &ep->urls[i];
    if (!u || (strcmp(u, "sim") && strncmp(u, "http://", 7) && strncmp(u, "https://", 8))) {
      set_err(c, "endpoint '%s': base URL '%s' must start with http:// or https:// (or be \"sim\")",
              cfg->name, u ? u : "(null)");
      rc = AD_EINVAL;
      goto done;
    }
    ep->n_urls = i + 1;
    url->is_sim = !strcmp(u, "sim");
    url->is_https = !strncmp(u, "https://", 8);
    size_t n = strlen(u);
    while (n > 0 && u[n - 1] == '/') n--;
    url->base = xstrndup(u, n);
    url->shown = strip_userinfo(url->base);
    url->post = xasprintf("%s/chat/completions", url->base);
  }
  if ((rc = add_header(ep, "Content-Type: application/json")) || (rc = add_header(ep, "Expect:")))
    goto done;
  if (cfg->api_key_env && *cfg->api_key_env) {
    const char *key = getenv(cfg->api_key_env);
    if (!key || !*key) {
      set_err(c, "endpoint '%s': environment variable %s (api_key_env) is not set", cfg->name,
              cfg->api_key_env);
      rc = AD_EINVAL;
      goto done;
    }
    if (strpbrk(key, "\r\n")) {
      set_err(c, "endpoint '%s': environment variable %s holds a line break", cfg->name,
              cfg->api_key_env);
      rc = AD_EINVAL;
      goto done;
    }
    secret_add(key); /* masked wherever text leaves the process (util/secret.h) */
    auth = xasprintf("Authorization: Bearer %s", key);
    if ((rc = add_header(ep, auth))) goto done;
  }
  for (int i = 0; i < cfg->n_headers; i++) {
    const char *h = cfg->headers[i];
    const char *colon = h ? strchr(h, ':') : NULL;
    if (!h || !colon || colon == h || strpbrk(h, "\r\n")) {
      set_err(c, "endpoint '%s': header %d must look like \"Name: value\" on one line", cfg->name,
              i + 1);
      rc = AD_EINVAL;
      goto done;
    }
    if ((rc = add_header(ep, h))) goto done;
  }
  if (cfg->extra_body && !(ep->extra_body = json_deep_copy(cfg->extra_body))) {
    set_err(c, "endpoint '%s': extra_body cannot be copied (it contains itself)", cfg->name);
    rc = AD_EINVAL;
    goto done;
  }
  ep->max_inflight = cfg->max_inflight > 0 ? cfg->max_inflight : 64;
  ep->connect_timeout_ms = cfg->connect_timeout_ms > 0 ? cfg->connect_timeout_ms : 10000;
  ep->request_timeout_ms = cfg->request_timeout_ms > 0 ? cfg->request_timeout_ms : 600000;
  ep->max_retries = cfg->max_retries >= 0 ? cfg->max_retries : 8;
  ep->backoff_base_ms = cfg->backoff_base_ms > 0 ? cfg->backoff_base_ms : 500;
  ep->backoff_max_ms = cfg->backoff_max_ms > 0 ? cfg->backoff_max_ms : 30000;
  if (ep->backoff_max_ms < ep->backoff_base_ms) ep->backoff_max_ms = ep->backoff_base_ms;
  ep->adaptive = cfg->adaptive != 0;
  if (cfg->requests_per_min < 0 || cfg->tokens_per_min < 0) {
    set_err(c, "endpoint '%s': requests_per_min and tokens_per_min must be >= 0", cfg->name);
    rc = AD_EINVAL;
    goto done;
  }
  int64_t now = time_now_ms();
  llm_aimd_init(&ep->aimd, ep->max_inflight, ep->adaptive);
  llm_bucket_init(&ep->req_bucket, cfg->requests_per_min, now);
  llm_bucket_init(&ep->tok_bucket, cfg->tokens_per_min, now);
  ep->next = c->eps;
  c->eps = ep;
  ep = NULL;
  rc = 0;
done: /* success or failure: the secret is wiped either way */
  if (auth) {
    memset(auth, 0, strlen(auth));
    free(auth);
  }
  if (rc == AD_ENOMEM) set_err(c, "out of memory adding endpoint '%s'", cfg->name); /* curl's */
  endpoint_free(ep);
  return rc;
}

/* ---------------------------------------------------------------- submit */

static double estimate_tokens(const json_t *body, size_t len) {
  /* ~4 bytes per prompt token, plus the completion the request allows (capped). */
  json_int_t mt = 0;
  const json_t *v = json_object_get(body, "max_tokens");
  if (!v) v = json_object_get(body, "max_completion_tokens");
  if (json_is_integer(v)) mt = json_integer_value(v);
  if (mt <= 0 || mt > 4096) mt = mt <= 0 ? 512 : 4096;
  return (double)len / 4.0 + (double)mt;
}

/* Endpoint extras first, then the request over them (the call's own fields win). */
static json_t *merge_extra(const struct llm_ep *ep, const json_t *body) {
  json_t *merged = json_deep_copy(ep->extra_body);
  if (merged && json_object_update_recursive(merged, (json_t *)body)) {
    json_decref(merged);
    merged = NULL;
  }
  return merged;
}

json_t *llm_merge_extra(const llm_client *c, const char *endpoint, const json_t *body) {
  const struct llm_ep *ep = endpoint ? find_ep((llm_client *)c, endpoint) : NULL;
  if (!ep || !json_is_object(body)) return NULL;
  return ep->extra_body ? merge_extra(ep, body) : json_deep_copy(body);
}

static int check_submit(llm_client *c, const char *endpoint, const json_t *body, llm_done_fn done,
                        struct llm_ep **out) {
  struct llm_ep *ep = endpoint ? find_ep(c, endpoint) : NULL;
  if (!ep) {
    set_err(c, "no endpoint named '%s'", endpoint ? endpoint : "(null)");
    return AD_ENOTFOUND;
  }
  if (!json_is_object(body) || !done) {
    set_err(c, "endpoint '%s': request body must be a JSON object and done must be set", ep->name);
    return AD_EINVAL;
  }
  *out = ep;
  return 0;
}

/* Queue a call whose wire body is text (taken). */
static void submit_body(llm_client *c, struct llm_ep *ep, const json_t *body, char *text,
                        size_t len, llm_done_fn done, llm_attempt_fn attempt, void *ud);

int llm_submit(llm_client *c, const char *endpoint, const json_t *body, llm_done_fn done,
               llm_attempt_fn attempt, void *ud) {
  struct llm_ep *ep;
  int rc = check_submit(c, endpoint, body, done, &ep);
  if (rc) return rc;
  json_t *merged = NULL;
  if (ep->extra_body && !(merged = merge_extra(ep, body))) {
    set_err(c,
            "endpoint '%s': the request body cannot be merged with extra_body (it contains "
            "itself)",
            ep->name);
    return AD_EINVAL;
  }
  struct buf b;
  buf_init(&b, AD_MAX_REQUEST);
  int drc = jx_dump_buf(merged ? merged : body, &b, JSON_COMPACT);
  json_decref(merged);
  if (drc) {
    buf_release(&b);
    set_err(c, "endpoint '%s': request body larger than %u MiB", ep->name,
            AD_MAX_REQUEST / (1024 * 1024));
    return drc;
  }
  size_t len;
  char *text = buf_take(&b, &len);
  submit_body(c, ep, body, text, len, done, attempt, ud);
  return 0;
}

int llm_submit_serialized(llm_client *c, const char *endpoint, const json_t *body, const char *text,
                          size_t len, llm_done_fn done, llm_attempt_fn attempt, void *ud) {
  struct llm_ep *ep;
  int rc = check_submit(c, endpoint, body, done, &ep);
  if (rc) return rc;
  if (len > AD_MAX_REQUEST) {
    set_err(c, "endpoint '%s': request body larger than %u MiB", ep->name,
            AD_MAX_REQUEST / (1024 * 1024));
    return AD_ETOOBIG;
  }
  submit_body(c, ep, body, xstrndup(text, len), len, done, attempt, ud);
  return 0;
}

static void submit_body(llm_client *c, struct llm_ep *ep, const json_t *body, char *text,
                        size_t len, llm_done_fn done, llm_attempt_fn attempt, void *ud) {
  struct llm_call *k = xcalloc(1, sizeof *k);
  k->body = text;
  k->body_len = len;
  k->ep = ep;
  k->seq = c->next_seq++;
  k->done = done;
  k->attempt_cb = attempt;
  k->ud = ud;
  k->url_idx = -1;
  k->heap_idx = -1;
  k->retry_after_ms = -1;
  k->est_tokens = estimate_tokens(body, k->body_len);
  k->submit_us = time_now_us();
  buf_init(&k->resp, AD_MAX_RESPONSE);
  k->next = c->all;
  if (c->all) c->all->prev = k;
  c->all = k;
  c->outstanding++;
  queue_push(ep, k, 0);
}

/* ---------------------------------------------------------------- attempts */

static size_t write_cb(char *p, size_t sz, size_t n, void *ud) {
  struct llm_call *k = ud;
  size_t len = sz * n;
  if (buf_append(&k->resp, p, len)) {
    k->too_big = 1;
    return 0; /* short count: curl aborts with CURLE_WRITE_ERROR */
  }
  return len;
}

/* Retry-After (seconds or HTTP-date) and retry-after-ms (OpenAI style). A new
 * status line (e.g. after "100 Continue") forgets earlier values. */
static size_t header_cb(char *p, size_t sz, size_t n, void *ud) {
  struct llm_call *k = ud;
  size_t len = sz * n;
  char v[128];
  if (len >= 5 && !strncmp(p, "HTTP/", 5)) {
    k->retry_after_ms = -1;
    return len;
  }
  int ms = 0;
  size_t skip;
  if (len > 15 && !strncasecmp(p, "retry-after-ms:", 15)) {
    ms = 1;
    skip = 15;
  } else if (len > 12 && !strncasecmp(p, "retry-after:", 12)) {
    skip = 12;
  } else {
    return len;
  }
  size_t m = len - skip < sizeof v - 1 ? len - skip : sizeof v - 1;
  memcpy(v, p + skip, m);
  v[m] = 0;
  while (m > 0 && (v[m - 1] == '\r' || v[m - 1] == '\n' || v[m - 1] == ' ')) v[--m] = 0;
  int64_t d;
  if (llm_parse_retry_after(v, time(NULL), &d)) return len; /* not understood: ignored */
  if (ms) d = (d + 500) / 1000;                             /* the value was already in ms */
  if (ms || k->retry_after_ms < 0) k->retry_after_ms = d;
  return len;
}

static void sim_push(llm_client *c, struct llm_call *k) {
  k->where = W_SIM;
  k->qnext = NULL;
  if (c->sim_tail) c->sim_tail->qnext = k;
  else c->sim_head = k;
  c->sim_tail = k;
}

static int easy_setup(struct llm_call *k, CURL *e, const struct llm_url *url) {
  const struct llm_ep *ep = k->ep;
  int bad = 0;
  bad |= curl_easy_setopt(e, CURLOPT_URL, url->post) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https") != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
  /* h2c reuse is broken in curl 7.88 (curl#10634): HTTP/1.1 for http://. */
  bad |= curl_easy_setopt(e, CURLOPT_HTTP_VERSION,
                          url->is_https ? (long)CURL_HTTP_VERSION_2TLS
                                        : (long)CURL_HTTP_VERSION_1_1) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POST, 1L) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDS, k->body) != CURLE_OK; /* lives as long as k */
  bad |= curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)k->body_len) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HTTPHEADER, ep->headers) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)ep->connect_timeout_ms) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ep->request_timeout_ms) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, write_cb) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_WRITEDATA, k) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, header_cb) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_HEADERDATA, k) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_PRIVATE, k) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, k->errbuf) != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_USERAGENT, "autodata") != CURLE_OK;
  bad |= curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L) != CURLE_OK;
  return bad ? AD_EINVAL : 0;
}

struct outcome {
  int ok;        /* reply parsed */
  int retryable; /* worth another attempt */
  int rc;
  int overload;  /* 429 or timeout: AIMD cut */
  int conn_fail; /* URL unreachable: mark it down */
  int http_status;
  int transport;
  char what[512]; /* diagnosis, without the "endpoint 'x' (url): " prefix */
};

static void finish_attempt(llm_client *c, struct llm_call *k, struct outcome *o);

static void start_attempt(llm_client *c, struct llm_call *k, int64_t now_ms) {
  struct llm_ep *ep = k->ep;
  struct llm_url_state st[LLM_MAX_URLS];
  for (int i = 0; i < ep->n_urls; i++) st[i] = ep->urls[i].st;
  int ui = llm_pick_url(st, ep->n_urls, now_ms, ep->rr++, k->url_idx);
  struct llm_url *url = &ep->urls[ui];
  k->url_idx = ui;
  url->st.outstanding++;
  ep->inflight++;
  k->attempts++;
  k->epoch = ep->aimd.epoch;
  k->attempt_start_us = time_now_us();
  buf_reset(&k->resp);
  k->too_big = 0;
  k->retry_after_ms = -1;
  k->errbuf[0] = 0;
  ep->st.attempts++;
  if (url->is_sim) {
    struct sim_response r = {0};
    sim_handle("POST", "/v1/chat/completions", k->body, k->body_len, &r);
    k->sim_status = r.status;
    if (r.body && r.len && buf_append(&k->resp, r.body, r.len)) k->too_big = 1;
    sim_response_release(&r);
    sim_push(c, k); /* delivered by the loop, like a transfer that just finished */
    return;
  }
  CURL *e = c->n_free ? c->free_easy[--c->n_free] : curl_easy_init();
  if (e) curl_easy_reset(e); /* keeps the connection cache: connections stay alive */
  if (!e || easy_setup(k, e, url) || curl_multi_add_handle(c->multi, e) != CURLM_OK) {
    if (e) curl_easy_cleanup(e);
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.rc = AD_ENOMEM; /* curl's own allocation (or option) failure */
    snprintf(o.what, sizeof o.what, "could not start a transfer (out of memory)");
    finish_attempt(c, k, &o);
    return;
  }
  k->easy = e;
  k->where = W_CURL;
  c->n_curl++;
}

/* Classify an HTTP answer (from curl or the sim): status + the body in k->resp. */
static void classify_http(struct llm_call *k, int status, struct outcome *o,
                          struct llm_reply *reply) {
  char perr[300], snip[96];
  o->http_status = status;
  llm_sanitize(k->resp.data, k->resp.len < 80 ? k->resp.len : 80, snip, sizeof snip);
  if (status >= 200 && status < 300) {
    int prc = llm_reply_parse(k->resp.data, k->resp.len, reply, perr, sizeof perr);
    if (prc == 0) {
      o->ok = 1;
      return;
    }
    o->rc = prc == AD_EHTTP ? AD_EHTTP : AD_EPARSE;
    o->retryable = 1;
    if (prc == AD_EHTTP)
      snprintf(o->what, sizeof o->what, "answered HTTP %d with an error: %s", status, perr);
    else if (k->resp.len == 0)
      snprintf(o->what, sizeof o->what, "answered HTTP %d with an empty body", status);
    else if (!strncmp(perr, "not JSON", 8))
      snprintf(o->what, sizeof o->what, "answered HTTP %d with a body that is not JSON: '%s'",
               status, snip);
    else if (!strncmp(perr, "truncated JSON", 14))
      snprintf(o->what, sizeof o->what, "answered HTTP %d with a truncated JSON body: '%s'", status,
               snip);
    else {
      o->retryable = 0; /* valid JSON of the wrong shape: retrying will not help */
      snprintf(o->what, sizeof o->what, "answered HTTP %d with an unexpected reply (%s): '%s'",
               status, perr, snip);
    }
    return;
  }
  /* Not 2xx: the server's own message when it sent an error object. */
  struct llm_reply tmp;
  const char *msg = snip;
  if (llm_reply_parse(k->resp.data, k->resp.len, &tmp, perr, sizeof perr) == AD_EHTTP) msg = perr;
  else llm_reply_release(&tmp);
  o->rc = AD_EHTTP;
  o->retryable = status == 408 || status == 429 || status >= 500;
  o->overload = status == 429;
  if (*msg) snprintf(o->what, sizeof o->what, "answered HTTP %d: %s", status, msg);
  else snprintf(o->what, sizeof o->what, "answered HTTP %d", status);
}

static void classify_transport(struct llm_call *k, CURLcode cc, long os_errno, int connected,
                               struct outcome *o) {
  const struct llm_ep *ep = k->ep;
  const char *detail = k->errbuf[0] ? k->errbuf : curl_easy_strerror(cc);
  o->transport = (int)cc;
  o->rc = AD_ENET;
  o->retryable = 1;
  switch (cc) {
  case CURLE_COULDNT_CONNECT:
    o->conn_fail = 1;
    if (os_errno == ECONNREFUSED) snprintf(o->what, sizeof o->what, "connection refused");
    else snprintf(o->what, sizeof o->what, "could not connect (%s)", detail);
    break;
  case CURLE_COULDNT_RESOLVE_HOST:
    o->conn_fail = 1;
    snprintf(o->what, sizeof o->what, "could not resolve the host name");
    break;
  case CURLE_OPERATION_TIMEDOUT:
    o->rc = AD_ETIMEOUT;
    if (!connected) {
      o->conn_fail = 1;
      snprintf(o->what, sizeof o->what, "connect timed out after %d ms", ep->connect_timeout_ms);
    } else {
      o->overload = 1;
      snprintf(o->what, sizeof o->what, "no complete answer within %d ms (request timeout)",
               ep->request_timeout_ms);
    }
    break;
  case CURLE_GOT_NOTHING:
    snprintf(o->what, sizeof o->what, "closed the connection without answering");
    break;
  case CURLE_SEND_ERROR:
  case CURLE_RECV_ERROR: snprintf(o->what, sizeof o->what, "connection broken (%s)", detail); break;
  case CURLE_PARTIAL_FILE:
    snprintf(o->what, sizeof o->what, "closed the connection in the middle of the body");
    break;
  case CURLE_WRITE_ERROR:
    if (k->too_big) {
      o->rc = AD_ETOOBIG;
      o->retryable = 0;
      snprintf(o->what, sizeof o->what, "answered with a body larger than the %u MiB limit",
               AD_MAX_RESPONSE / (1024 * 1024));
      break;
    }
    /* fall through */
  default:
    o->retryable = 0;
    snprintf(o->what, sizeof o->what, "%s (%s)", curl_easy_strerror(cc), detail);
    break;
  }
}

static void finish_call(llm_client *c, struct llm_call *k, const struct llm_result *res) {
  all_unlink(c, k);
  c->outstanding--;
  if (res->rc == 0) k->ep->st.calls_ok++;
  else k->ep->st.calls_failed++;
  fire_done(c, k, res);
  call_free(k);
}

/* End a call that is already out of every list (and out of flight) with
 * AD_ECANCELED: report its running attempt, if any, as canceled, then `done`. */
static void cancel_call(llm_client *c, struct llm_call *k, int attempt_running) {
  struct llm_ep *ep = k->ep;
  if (attempt_running) {
    struct llm_url *url = &ep->urls[k->url_idx];
    char full[512];
    snprintf(full, sizeof full, "endpoint '%s' (%s): canceled", ep->name, url->shown);
    struct llm_attempt a = {.number = k->attempts,
                            .endpoint = ep->name,
                            .url = url->shown,
                            .latency_us = time_now_us() - k->attempt_start_us,
                            .error = full};
    fire_attempt(c, k, &a);
  }
  char msg[256];
  snprintf(msg, sizeof msg, "endpoint '%s': canceled", ep->name);
  struct llm_result res = {.rc = AD_ECANCELED,
                           .error = msg,
                           .attempts = k->attempts,
                           .latency_us = time_now_us() - k->submit_us,
                           .endpoint = ep->name};
  c->outstanding--;
  ep->st.calls_failed++;
  fire_done(c, k, &res);
  call_free(k);
}

static int other_url_up(const struct llm_ep *ep, int except, int64_t now_ms) {
  for (int i = 0; i < ep->n_urls; i++)
    if (i != except && ep->urls[i].st.down_until_ms <= now_ms) return 1;
  return 0;
}

static void finish_attempt(llm_client *c, struct llm_call *k, struct outcome *o) {
  struct llm_ep *ep = k->ep;
  struct llm_url *url = &ep->urls[k->url_idx];
  int64_t now_us = time_now_us(), now_ms = time_now_ms();
  struct llm_reply reply;
  memset(&reply, 0, sizeof reply);
  k->where = W_NONE;
  url->st.outstanding--;
  ep->inflight--;
  if (c->cancel_upto && k->seq < c->cancel_upto) {
    /* A callback earlier in this pass canceled it: its outcome no longer counts. */
    all_unlink(c, k);
    cancel_call(c, k, 1);
    return;
  }
  /* A server may echo the key (a 401 body with the bearer token): no byte of a reply is
   * read before the secrets are masked in it. */
  secret_scrub_buf(&k->resp);
  if (!o->transport && o->rc != AD_ENOMEM && !o->what[0])
    classify_http(k, o->http_status, o, &reply);

  if (o->conn_fail) {
    url->consecutive_fail++;
    url->st.down_until_ms = now_ms + llm_down_cooloff_ms(url->consecutive_fail);
  } else if (o->http_status) {
    url->consecutive_fail = 0;
    url->st.down_until_ms = 0;
  }
  if (ep->adaptive) {
    if (o->overload) llm_aimd_overload(&ep->aimd, k->epoch);
    else if (o->ok) llm_aimd_success(&ep->aimd);
  }
  if (o->ok) {
    ep->st.prompt_tokens += reply.prompt_tokens;
    ep->st.completion_tokens += reply.completion_tokens;
    if (reply.total_tokens > 0)
      llm_bucket_adjust(&ep->tok_bucket, k->est_tokens - (double)reply.total_tokens, now_ms);
  } else {
    llm_bucket_adjust(&ep->tok_bucket, k->est_tokens, now_ms); /* refund the estimate */
  }

  int retry = !o->ok && o->retryable && k->attempts <= ep->max_retries;
  int64_t delay = 0;
  if (retry) {
    if (!(o->conn_fail && other_url_up(ep, k->url_idx, now_ms))) {
      delay = llm_backoff_ms(&c->rng, k->attempts - 1, ep->backoff_base_ms, ep->backoff_max_ms);
      int64_t ra = k->retry_after_ms;
      int64_t cap = ep->backoff_max_ms > LLM_RETRY_AFTER_CAP_MS ? ep->backoff_max_ms
                                                                : LLM_RETRY_AFTER_CAP_MS;
      if (ra > cap) ra = cap;
      if (ra > delay) delay = ra;
    }
  }
  char full[768];
  full[0] = 0;
  if (!o->ok && o->http_status == 404)
    snprintf(
        full, sizeof full,
        "endpoint '%s' (POST %s/chat/completions): %s; is the base URL right? "
        "OpenAI-compatible servers serve /v1/chat/completions, so base_url usually ends in /v1",
        ep->name, url->shown, o->what);
  else if (!o->ok)
    snprintf(full, sizeof full, "endpoint '%s' (%s): %s", ep->name, url->shown, o->what);
  struct llm_attempt a = {
      .number = k->attempts,
      .endpoint = ep->name,
      .url = url->shown,
      .http_status = o->http_status,
      .transport_error = o->transport,
      .latency_us = now_us - k->attempt_start_us,
      .retry = retry,
      .retry_after_ms = delay,
      .error = o->ok ? NULL : full,
  };
  if (!o->ok) log_debug("attempt %d: %s%s", k->attempts, full, retry ? " (will retry)" : "");
  fire_attempt(c, k, &a);

  if (retry) {
    ep->st.retries++;
    k->ready_ms = now_ms + delay;
    heap_push(c, k);
    k->where = W_BACKOFF;
    ep->backoff++;
    return;
  } else if (!o->ok && k->attempts > 1) {
    size_t n = strlen(full);
    snprintf(full + n, sizeof full - n, " after %d attempts", k->attempts);
  }
  struct llm_result res = {
      .rc = o->ok ? 0 : o->rc,
      .error = o->ok ? NULL : full,
      .reply = o->ok ? &reply : NULL,
      .body = k->resp.cap ? k->resp.data : NULL, /* NULL: no attempt got a body byte */
      .body_len = k->resp.len,
      .http_status = o->http_status,
      .attempts = k->attempts,
      .latency_us = now_us - k->submit_us,
      .endpoint = ep->name,
  };
  if (!res.rc && !o->ok) res.rc = AD_EINTERNAL;
  finish_call(c, k, &res);
  llm_reply_release(&reply);
}

/* ---------------------------------------------------------------- the loop */

/* Start queued calls. Nothing starts while a cancel is pending, nor a call
 * submitted by a callback during this pass (it waits for the next one). */
static void admit(llm_client *c, struct llm_ep *ep, int64_t now) {
  while (ep->q_head && ep->inflight < ep->aimd.limit) {
    if (c->cancel_upto || ep->q_head->seq >= c->pass_seq) return;
    if (ep->blocked_until_ms > now) return;
    int64_t w = llm_bucket_take(&ep->req_bucket, 1, now);
    if (w > 0) {
      ep->blocked_until_ms = now + w;
      return;
    }
    struct llm_call *k = ep->q_head;
    w = llm_bucket_take(&ep->tok_bucket, k->est_tokens, now);
    if (w > 0) {
      llm_bucket_adjust(&ep->req_bucket, 1, now);
      ep->blocked_until_ms = now + w;
      return;
    }
    queue_pop(ep);
    start_attempt(c, k, now);
  }
}

static int drain_curl(llm_client *c) {
  int fired = 0, left;
  CURLMsg *m;
  while ((m = curl_multi_info_read(c->multi, &left))) {
    if (m->msg != CURLMSG_DONE) continue;
    CURL *e = m->easy_handle;
    CURLcode cc = m->data.result;
    struct llm_call *k = NULL;
    long status = 0, os_errno = 0;
    curl_off_t connect_us = 0;
    curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&k);
    curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(e, CURLINFO_OS_ERRNO, &os_errno);
    curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect_us);
    curl_multi_remove_handle(c->multi, e);
    c->n_curl--;
    k->easy = NULL;
    easy_release(c, e);
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.http_status = (int)status;
    if (cc != CURLE_OK) classify_transport(k, cc, os_errno, connect_us > 0, &o);
    finish_attempt(c, k, &o);
    fired++;
  }
  return fired;
}

/* Fail every call submitted before the cancel point with AD_ECANCELED. */
static int do_cancel(llm_client *c) {
  uint64_t upto = c->cancel_upto;
  c->cancel_upto = 0;
  struct llm_call *victims = NULL;
  for (struct llm_call *k = c->all, *nx; k; k = nx) {
    nx = k->next;
    if (k->seq >= upto) continue;
    all_unlink(c, k);
    k->next = victims;
    victims = k;
  }
  if (!victims) return 0;
  /* Rebuild the queues, heap and sim list without the victims. */
  for (struct llm_ep *ep = c->eps; ep; ep = ep->next) {
    struct llm_call *q = ep->q_head;
    ep->q_head = ep->q_tail = NULL;
    ep->queued = 0;
    for (struct llm_call *nx; q; q = nx) {
      nx = q->qnext;
      if (q->seq >= upto) queue_push(ep, q, 0);
    }
  }
  int n = 0;
  for (int i = 0; i < c->heap_n; i++)
    if (c->heap[i]->seq >= upto) c->heap[n++] = c->heap[i];
    else c->heap[i]->ep->backoff--;
  c->heap_n = n;
  for (int i = 0; i < n; i++) c->heap[i]->heap_idx = i;
  for (int i = n / 2; i >= 0; i--) heap_down(c, i);
  struct llm_call *s = c->sim_head;
  c->sim_head = c->sim_tail = NULL;
  for (struct llm_call *nx; s; s = nx) {
    nx = s->qnext;
    if (s->seq >= upto) sim_push(c, s);
  }
  int fired = 0;
  for (struct llm_call *k = victims, *nx; k; k = nx) {
    nx = k->next;
    k->next = NULL;
    int running = k->where == W_CURL || k->where == W_SIM;
    if (running) {
      k->ep->urls[k->url_idx].st.outstanding--;
      k->ep->inflight--;
      if (k->easy) {
        curl_multi_remove_handle(c->multi, k->easy);
        c->n_curl--;
        easy_release(c, k->easy);
        k->easy = NULL;
      }
    }
    cancel_call(c, k, running);
    fired++;
  }
  return fired;
}

static int step(llm_client *c) {
  int fired = 0;
  if (c->cancel_upto) fired += do_cancel(c);
  int64_t now = time_now_ms();
  while (c->heap_n && c->heap[0]->ready_ms <= now) {
    struct llm_call *k = heap_pop(c);
    k->ep->backoff--;
    queue_push(k->ep, k, 1); /* retries go ahead of new work */
  }
  for (struct llm_ep *ep = c->eps; ep; ep = ep->next) admit(c, ep, now);
  while (c->sim_head) {
    struct llm_call *k = c->sim_head;
    c->sim_head = k->qnext;
    if (!c->sim_head) c->sim_tail = NULL;
    k->qnext = NULL;
    struct outcome o;
    memset(&o, 0, sizeof o);
    o.http_status = k->sim_status;
    if (k->too_big) {
      o.rc = AD_ETOOBIG;
      snprintf(o.what, sizeof o.what, "answered with a body larger than the %u MiB limit",
               AD_MAX_RESPONSE / (1024 * 1024));
    }
    finish_attempt(c, k, &o);
    fired++;
  }
  if (c->n_curl) {
    int running;
    curl_multi_perform(c->multi, &running);
    fired += drain_curl(c);
  }
  return fired;
}

/* The earliest of our own timers (a retry coming due, a rate budget refilling), or -1. */
static int64_t next_timer(const llm_client *c) {
  int64_t t = c->heap_n ? c->heap[0]->ready_ms : -1;
  for (const struct llm_ep *ep = c->eps; ep; ep = ep->next)
    if (ep->q_head && ep->inflight < ep->aimd.limit && (t < 0 || ep->blocked_until_ms < t))
      t = ep->blocked_until_ms;
  return t;
}

int llm_client_run_once(llm_client *c, int max_wait_ms) {
  if (c->in_callback) {
    set_err(c, "llm_client_run_once() called from inside a callback of the same client");
    return AD_EBUSY;
  }
  c->pass_seq = c->next_seq;
  if (max_wait_ms < 0) max_wait_ms = 0;
  int64_t deadline = time_now_ms() + max_wait_ms;
  int fired = step(c);
  if (fired || c->outstanding == 0 || c->cancel_upto) return c->outstanding;
  int64_t now = time_now_ms();
  int64_t wait = deadline - now;
  int64_t t = next_timer(c);
  if (t >= 0 && t - now < wait) wait = t - now;
  if (wait > 0) curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL);
  step(c);
  return c->outstanding;
}

int llm_client_pending(const llm_client *c) { return c->outstanding; }

void llm_client_wakeup(llm_client *c) { curl_multi_wakeup(c->multi); }

void llm_client_cancel_all(llm_client *c) { c->cancel_upto = c->next_seq; }

void llm_client_free(llm_client *c) {
  if (!c) return;
  if (c->in_callback) {
    /* The loop that called the callback still uses c: freeing it here would be a
     * use-after-free. A programming error, so stop loudly. */
    fputs(
        "autodata: llm_client_free() called from inside a callback of the same client "
        "(not allowed, see RE-ENTRANCY in src/llm/llm.h); aborting\n",
        stderr);
    abort();
  }
  for (struct llm_call *k = c->all, *nx; k; k = nx) {
    nx = k->next;
    if (k->easy) {
      curl_multi_remove_handle(c->multi, k->easy);
      curl_easy_cleanup(k->easy);
    }
    call_free(k);
  }
  for (int i = 0; i < c->n_free; i++) curl_easy_cleanup(c->free_easy[i]);
  free(c->free_easy);
  free(c->heap);
  for (struct llm_ep *ep = c->eps, *nx; ep; ep = nx) {
    nx = ep->next;
    endpoint_free(ep);
  }
  curl_multi_cleanup(c->multi);
  free(c);
}

int llm_client_endpoint_stats(const llm_client *c, const char *endpoint,
                              struct llm_endpoint_stats *out) {
  const struct llm_ep *ep = endpoint ? find_ep(c, endpoint) : NULL;
  if (!ep) return AD_ENOTFOUND;
  *out = ep->st;
  out->inflight = ep->inflight;
  out->queued = ep->queued + ep->backoff;
  out->concurrency_limit = ep->aimd.limit;
  return 0;
}
