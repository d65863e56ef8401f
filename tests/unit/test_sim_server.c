/* test_sim_server.c - sim backend (sim_handle, fault specs) and the HTTP server
 * over loopback with raw sockets (pipelining, chunked bodies, limits, faults). */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <jansson.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "sim/server.h"
#include "sim/sim.h"

#define CHAT \
  "{\"model\":\"gpt-test\",\"messages\":[{\"role\":\"user\",\"content\":\"What is 2+2?\"}]}"

static json_t *handle_json(const char *m, const char *path, const char *body, int *status) {
  struct sim_response r;
  sim_handle(m, path, body, body ? strlen(body) : 0, &r);
  *status = r.status;
  cr_assert_not_null(r.body);
  cr_assert_eq(strlen(r.body), r.len);
  json_error_t e;
  json_t *v = json_loadb(r.body, r.len, 0, &e);
  cr_assert_not_null(v, "reply is JSON: %s", r.body);
  sim_response_release(&r);
  return v;
}

/* ---------------------------------------------------------------- faults */

Test(sim_faults, parse_valid) {
  struct sim_faults f;
  char err[256];
  cr_assert_eq(sim_faults_parse("429=0.1, 500=0.05,503=0.05,drop=0.02,garbage=0.02,slow=0.05,"
                                "truncate=0.01",
                                &f, err, sizeof err),
               0, "%s", err);
  cr_assert_float_eq(f.p[SIM_FAULT_429], 0.1, 1e-12);
  cr_assert_float_eq(f.p[SIM_FAULT_500], 0.05, 1e-12);
  cr_assert_float_eq(f.p[SIM_FAULT_503], 0.05, 1e-12);
  cr_assert_float_eq(f.p[SIM_FAULT_DROP], 0.02, 1e-12);
  cr_assert_float_eq(f.p[SIM_FAULT_GARBAGE], 0.02, 1e-12);
  cr_assert_float_eq(f.p[SIM_FAULT_SLOW], 0.05, 1e-12);
  cr_assert_float_eq(f.p[SIM_FAULT_TRUNCATE], 0.01, 1e-12);
  cr_assert_eq(f.retry_after_s, 1);
  cr_assert_eq(f.slow_ms, 2000);
  cr_assert_eq(sim_faults_parse("", &f, err, sizeof err), 0);
  for (int i = 0; i < 8; i++) cr_assert_eq(f.p[i], 0);
  cr_assert_eq(sim_faults_parse(NULL, &f, err, sizeof err), 0);
  cr_assert_eq(sim_faults_parse("429=1", &f, err, sizeof err), 0);
  cr_assert_eq(sim_faults_parse("DROP=0.5,garbage=0.5", &f, err, sizeof err), 0, "%s", err);
  cr_assert_str_eq(sim_fault_name(SIM_FAULT_TRUNCATE), "truncate");
}

Test(sim_faults, parse_errors_name_the_item) {
  struct sim_faults f;
  char err[256];
  cr_assert_eq(sim_faults_parse("429=0.1,boom=0.2", &f, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "boom"), "%s", err);
  cr_assert(strstr(err, "unknown kind"), "%s", err);
  cr_assert_eq(sim_faults_parse("500=abc", &f, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "500=abc"), "%s", err);
  cr_assert_eq(sim_faults_parse("500=1.5", &f, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "500=1.5"), "%s", err);
  cr_assert_eq(sim_faults_parse("500=-0.1", &f, err, sizeof err), AD_EINVAL);
  cr_assert_eq(sim_faults_parse("500=", &f, err, sizeof err), AD_EINVAL);
  cr_assert_eq(sim_faults_parse("500=nan", &f, err, sizeof err), AD_EINVAL);
  cr_assert_eq(sim_faults_parse("drop", &f, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "'drop'"), "%s", err);
  cr_assert_eq(sim_faults_parse("429=0.6,500=0.6", &f, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "sum"), "%s", err);
  cr_assert_eq(sim_faults_parse("429=0.1,429=0.2", &f, err, sizeof err), AD_EINVAL);
  cr_assert(strstr(err, "twice"), "%s", err);
}

Test(sim_faults, draw_boundaries_and_distribution) {
  struct sim_faults f;
  char err[256];
  cr_assert_eq(sim_faults_parse("429=0.25,drop=0.25", &f, err, sizeof err), 0);
  cr_assert_eq(sim_faults_draw(&f, 0.0), SIM_FAULT_429);
  cr_assert_eq(sim_faults_draw(&f, 0.2499), SIM_FAULT_429);
  cr_assert_eq(sim_faults_draw(&f, 0.25), SIM_FAULT_DROP);
  cr_assert_eq(sim_faults_draw(&f, 0.4999), SIM_FAULT_DROP);
  cr_assert_eq(sim_faults_draw(&f, 0.5), SIM_FAULT_NONE);
  cr_assert_eq(sim_faults_draw(&f, 0.999999), SIM_FAULT_NONE);
  cr_assert_eq(sim_faults_parse("429=0.1,500=0.2,garbage=0.3", &f, err, sizeof err), 0);
  int count[8] = {0};
  const int N = 100000;
  for (int i = 0; i < N; i++) count[sim_faults_draw(&f, (i + 0.5) / N)]++;
  cr_assert_eq(count[SIM_FAULT_429], 10000);
  cr_assert_eq(count[SIM_FAULT_500], 20000);
  cr_assert_eq(count[SIM_FAULT_GARBAGE], 30000);
  cr_assert_eq(count[SIM_FAULT_NONE], 40000);
  cr_assert_eq(sim_faults_parse("slow=1", &f, err, sizeof err), 0);
  cr_assert_eq(sim_faults_draw(&f, 0.999999), SIM_FAULT_SLOW);
}

/* ---------------------------------------------------------------- sim_handle */

Test(sim_handle, chat_shape_and_determinism) {
  struct sim_response a, b;
  sim_handle("POST", "/v1/chat/completions", CHAT, strlen(CHAT), &a);
  sim_handle("POST", "/chat/completions", CHAT, strlen(CHAT), &b);
  cr_assert_eq(a.status, 200);
  cr_assert_str_eq(a.content_type, "application/json");
  cr_assert_eq(a.len, b.len);
  cr_assert(!memcmp(a.body, b.body, a.len), "same body, same bytes");
  /* a different request (here: a different seed) gives a different reply */
  const char *other =
      "{\"model\":\"gpt-test\",\"seed\":7,\"messages\":[{\"role\":\"user\","
      "\"content\":\"What is 2+2?\"}]}";
  struct sim_response c;
  sim_handle("POST", "/v1/chat/completions", other, strlen(other), &c);
  cr_assert(c.len != a.len || memcmp(a.body, c.body, a.len));
  sim_response_release(&a);
  sim_response_release(&b);
  sim_response_release(&c);

  int st;
  json_t *v = handle_json("POST", "/v1/chat/completions", CHAT, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(json_string_value(json_object_get(v, "object")), "chat.completion");
  cr_assert_str_eq(json_string_value(json_object_get(v, "model")), "gpt-test");
  const char *id = json_string_value(json_object_get(v, "id"));
  cr_assert(id && !strncmp(id, "chatcmpl-", 9));
  cr_assert_eq(json_integer_value(json_object_get(v, "created")), 1767225600);
  json_t *ch = json_object_get(v, "choices");
  cr_assert_eq(json_array_size(ch), 1);
  json_t *c0 = json_array_get(ch, 0);
  cr_assert_eq(json_integer_value(json_object_get(c0, "index")), 0);
  cr_assert_str_eq(json_string_value(json_object_get(c0, "finish_reason")), "stop");
  json_t *msg = json_object_get(c0, "message");
  cr_assert_str_eq(json_string_value(json_object_get(msg, "role")), "assistant");
  const char *content = json_string_value(json_object_get(msg, "content"));
  cr_assert(content && strstr(content, "gpt-test"), "mentions the model: %s", content);
  json_t *u = json_object_get(v, "usage");
  long long pt = json_integer_value(json_object_get(u, "prompt_tokens"));
  long long ct = json_integer_value(json_object_get(u, "completion_tokens"));
  cr_assert_eq(pt, 3, "12 chars of messages ~ 3 tokens, got %lld", pt);
  cr_assert_eq(ct, (long long)(strlen(content) + 3) / 4);
  cr_assert_eq(json_integer_value(json_object_get(u, "total_tokens")), pt + ct);
  json_decref(v);
}

Test(sim_handle, n_choices) {
  const char *req =
      "{\"model\":\"gpt-test\",\"n\":3,\"messages\":[{\"role\":\"user\","
      "\"content\":\"What is 2+2?\"}]}";
  int st;
  json_t *v = handle_json("POST", "/v1/chat/completions", req, &st);
  cr_assert_eq(st, 200);
  json_t *ch = json_object_get(v, "choices");
  cr_assert_eq(json_array_size(ch), 3);
  const char *s[3];
  for (int i = 0; i < 3; i++) {
    json_t *c = json_array_get(ch, (size_t)i);
    cr_assert_eq(json_integer_value(json_object_get(c, "index")), i);
    s[i] = json_string_value(json_object_get(json_object_get(c, "message"), "content"));
    cr_assert_not_null(s[i]);
  }
  cr_assert(strcmp(s[0], s[1]) && strcmp(s[1], s[2]), "choices differ");
  /* choice 0 of n=3 is the n=1 reply */
  json_t *one = handle_json("POST", "/v1/chat/completions", CHAT, &st);
  const char *s1 = json_string_value(json_object_get(
      json_object_get(json_array_get(json_object_get(one, "choices"), 0), "message"), "content"));
  cr_assert_str_eq(s1, s[0]);
  json_decref(one);
  json_decref(v);
}

static void expect_error(const char *method, const char *path, const char *body, int status,
                         const char *needle) {
  int st;
  json_t *v = handle_json(method, path, body, &st);
  cr_assert_eq(st, status, "%s %s %s -> %d", method, path, body ? body : "", st);
  json_t *e = json_object_get(v, "error");
  const char *m = json_string_value(json_object_get(e, "message"));
  cr_assert(m && *m, "error message present");
  cr_assert_str_eq(json_string_value(json_object_get(e, "type")), "invalid_request_error");
  if (needle) cr_assert(strstr(m, needle), "'%s' in '%s'", needle, m);
  json_decref(v);
}

Test(sim_handle, error_statuses) {
  const char *P = "/v1/chat/completions";
  expect_error("POST", P, "{\"model\":", 400, "invalid JSON");
  expect_error("POST", P, "", 400, "invalid JSON");
  expect_error("POST", P, "[1,2]", 400, "object");
  expect_error("POST", P, "{\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}", 400, "model");
  expect_error("POST", P, "{\"model\":\"m\"}", 400, "messages");
  expect_error("POST", P, "{\"model\":\"m\",\"messages\":[]}", 400, "messages");
  expect_error("POST", P, "{\"model\":\"m\",\"messages\":[{\"content\":\"x\"}]}", 400, "role");
  expect_error("POST", P, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":5}]}", 400,
               "content");
  expect_error("POST", P,
               "{\"model\":\"m\",\"n\":0,\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}",
               400, "'n'");
  expect_error("GET", P, NULL, 405, "POST");
  expect_error("POST", "/v1/models", "{}", 405, "GET");
  expect_error("GET", "/v1/nothing", NULL, 404, "/v1/nothing");
  expect_error("GET", "/v2/models", NULL, 404, NULL);
  expect_error("GET", "/v1/chat/completionsX", NULL, 404, NULL);
}

Test(sim_handle, models_list) {
  int st;
  json_t *v = handle_json("GET", "/v1/models", NULL, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(json_string_value(json_object_get(v, "object")), "list");
  json_t *d = json_object_get(v, "data");
  const char *want[] = {"sim-challenger", "sim-orchestrator", "sim-quality",
                        "sim-judge",      "sim-solver@0.35",  "sim-solver@0.8"};
  cr_assert_eq(json_array_size(d), 6);
  for (size_t i = 0; i < 6; i++) {
    json_t *m = json_array_get(d, i);
    cr_assert_str_eq(json_string_value(json_object_get(m, "id")), want[i]);
    cr_assert_str_eq(json_string_value(json_object_get(m, "object")), "model");
  }
  json_decref(v);
  v = handle_json("GET", "/models?x=1", NULL, &st);
  cr_assert_eq(st, 200);
  json_decref(v);
}

/* ---------------------------------------------------------------- the server */

struct srv_fixture {
  struct sim_server *s;
  pthread_t th;
  int port;
};

static void *run_thread(void *p) {
  sim_server_run(p);
  return NULL;
}

static void srv_start(struct srv_fixture *f, const char *faults, int latency_ms) {
  struct sim_server_opts o = {
      .host = "127.0.0.1", .port = 0, .threads = 2, .seed = 42, .latency_ms = latency_ms};
  char err[256];
  cr_assert_eq(sim_faults_parse(faults, &o.faults, err, sizeof err), 0, "%s", err);
  o.faults.retry_after_s = 3;
  cr_assert_eq(sim_server_open(&o, &f->s, err, sizeof err), 0, "%s", err);
  f->port = sim_server_port(f->s);
  cr_assert_gt(f->port, 0);
  cr_assert_eq(pthread_create(&f->th, NULL, run_thread, f->s), 0);
}

static void srv_stop(struct srv_fixture *f, struct sim_server_stats *st) {
  sim_server_stop(f->s);
  pthread_join(f->th, NULL);
  if (st) sim_server_stats(f->s, st);
  sim_server_free(f->s);
}

static int dial(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_geq(fd, 0);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
  struct timeval tv = {.tv_sec = 10};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void send_all(int fd, const char *p, size_t n) {
  while (n) {
    ssize_t k = send(fd, p, n, MSG_NOSIGNAL);
    if (k <= 0) return; /* the server may have closed: the reply tells */
    p += k;
    n -= (size_t)k;
  }
}

/* Read until the peer closes (or the 10 s timeout); malloc'd, NUL-terminated. */
static char *read_all(int fd, size_t *len) {
  size_t cap = 1 << 16, n = 0;
  char *b = malloc(cap);
  for (;;) {
    if (n + 4096 > cap) b = realloc(b, cap *= 2);
    ssize_t k = recv(fd, b + n, cap - n - 1, 0);
    if (k <= 0) break;
    n += (size_t)k;
  }
  b[n] = 0;
  *len = n;
  return b;
}

static int count_of(const char *hay, const char *needle) {
  int k = 0;
  for (const char *p = hay; (p = strstr(p, needle)); p++) k++;
  return k;
}

static char *post_req(const char *body, const char *extra_hdr) {
  char *r;
  if (asprintf(&r,
               "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "%sContent-Length: %zu\r\n\r\n%s",
               extra_hdr ? extra_hdr : "", strlen(body), body) < 0)
    return NULL;
  return r;
}

Test(sim_server, pipelining_keepalive_and_identical_bytes, .timeout = 30) {
  struct srv_fixture f;
  srv_start(&f, "", 0);
  int fd = dial(f.port);
  char *one = post_req(CHAT, NULL);
  /* three pipelined requests in one write, the last asks to close */
  char *last = post_req(CHAT, "Connection: close\r\n");
  char req[8192];
  snprintf(req, sizeof req, "%s%sGET /v1/models HTTP/1.1\r\nHost: x\r\n\r\n%s", one, one, last);
  send_all(fd, req, strlen(req));
  size_t n;
  char *got = read_all(fd, &n);
  cr_assert_eq(count_of(got, "HTTP/1.1 200 OK\r\n"), 4, "%s", got);
  cr_assert_eq(count_of(got, "\"object\":\"chat.completion\""), 3);
  cr_assert_eq(count_of(got, "\"object\":\"list\""), 1);
  cr_assert(strstr(got, "Connection: close\r\n"));
  /* the replies to the same body are byte-identical, in order: models is third */
  char *r1 = strstr(got, "{\"id\""), *r2 = strstr(r1 + 1, "{\"id\"");
  char *m = strstr(got, "\"object\":\"list\"");
  cr_assert(r2 && m > r2);
  char *e1 = strstr(r1, "HTTP/1.1");
  cr_assert_not_null(e1);
  cr_assert(!strncmp(r1, r2, (size_t)(e1 - r1)), "identical reply bytes");
  free(got);
  close(fd);
  free(one);
  free(last);
  struct sim_server_stats st;
  srv_stop(&f, &st);
  cr_assert_eq(st.requests, 4);
  cr_assert_eq(st.chat, 3);
  cr_assert_eq(st.connections, 1);
}

Test(sim_server, chunked_body_and_expect_continue, .timeout = 30) {
  struct srv_fixture f;
  srv_start(&f, "", 0);
  int fd = dial(f.port);
  /* CHAT split into chunks of 10 bytes, with a chunk extension and a trailer */
  char req[4096];
  int off = snprintf(req, sizeof req,
                     "POST /chat/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                     "Expect: 100-continue\r\nConnection: close\r\n\r\n");
  size_t L = strlen(CHAT);
  for (size_t i = 0; i < L; i += 10) {
    size_t k = L - i < 10 ? L - i : 10;
    off += snprintf(req + off, sizeof req - (size_t)off, "%zx%s\r\n%.*s\r\n", k,
                    i == 0 ? ";ext=1" : "", (int)k, CHAT + i);
  }
  off += snprintf(req + off, sizeof req - (size_t)off, "0\r\nX-Trailer: y\r\n\r\n");
  /* send the head first, then the body in two pieces */
  char *body = strstr(req, "\r\n\r\n") + 4;
  send_all(fd, req, (size_t)(body - req));
  char cont[64] = {0};
  ssize_t k = recv(fd, cont, sizeof cont - 1, 0);
  cr_assert_gt(k, 0);
  cr_assert(!strncmp(cont, "HTTP/1.1 100 Continue\r\n\r\n", 25), "%s", cont);
  size_t rest = strlen(body);
  send_all(fd, body, rest / 2);
  usleep(20000);
  send_all(fd, body + rest / 2, rest - rest / 2);
  size_t n;
  char *got = read_all(fd, &n);
  close(fd);
  /* the reply equals the in-process reply to the same body */
  struct sim_response r;
  sim_handle("POST", "/v1/chat/completions", CHAT, strlen(CHAT), &r);
  cr_assert(!strncmp(got, "HTTP/1.1 200 OK\r\n", 17), "%s", got);
  char *b = strstr(got, "\r\n\r\n") + 4;
  cr_assert_eq(strlen(b), r.len);
  cr_assert(!memcmp(b, r.body, r.len));
  sim_response_release(&r);
  free(got);
  srv_stop(&f, NULL);
}

static char *exchange(int port, const char *raw, size_t len) {
  int fd = dial(port);
  send_all(fd, raw, len);
  size_t n;
  char *got = read_all(fd, &n);
  close(fd);
  return got;
}

Test(sim_server, malformed_and_limits, .timeout = 30) {
  struct srv_fixture f;
  srv_start(&f, "", 0);
  const char *bad[] = {
      "GARBAGE\r\n\r\n",
      "GET /v1/models\r\n\r\n",
      "GET /v1/models HTTP/1.1\r\nNo colon here\r\n\r\n",
      "GET /v1/models HTTP/1.1\r\nBad Name: x\r\n\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 12x\r\n\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char *got = exchange(f.port, bad[i], strlen(bad[i]));
    cr_assert(!strncmp(got, "HTTP/1.1 400 ", 13), "case %zu: %s", i, got);
    cr_assert(strstr(got, "\"error\""), "case %zu: JSON error body", i);
    free(got);
  }
  const char *big = "POST /v1/chat/completions HTTP/1.1\r\nContent-Length: 16777217\r\n\r\n";
  char *got = exchange(f.port, big, strlen(big));
  cr_assert(!strncmp(got, "HTTP/1.1 413 ", 13), "%s", got);
  free(got);
  const char *bigc =
      "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n"
      "1000001\r\n";
  got = exchange(f.port, bigc, strlen(bigc));
  cr_assert(!strncmp(got, "HTTP/1.1 413 ", 13), "%s", got);
  free(got);
  const char *te = "POST /v1/chat/completions HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n";
  got = exchange(f.port, te, strlen(te));
  cr_assert(!strncmp(got, "HTTP/1.1 501 ", 13), "%s", got);
  free(got);
  /* headers over 64 KiB */
  size_t hl = 70000;
  char *h = malloc(hl + 64);
  int o = snprintf(h, 64, "GET /v1/models HTTP/1.1\r\nX-Big: ");
  memset(h + o, 'a', hl);
  got = exchange(f.port, h, (size_t)o + hl);
  cr_assert(!strncmp(got, "HTTP/1.1 431 ", 13), "%.40s", got);
  free(got);
  free(h);
  /* HTTP/1.0 without keep-alive gets an answer and a close */
  const char *h10 = "GET /v1/models HTTP/1.0\r\n\r\n";
  got = exchange(f.port, h10, strlen(h10));
  cr_assert(!strncmp(got, "HTTP/1.1 200 ", 13), "%s", got);
  cr_assert(strstr(got, "Connection: close\r\n"));
  free(got);
  /* a large body (1 MiB of content) is read in full */
  size_t cl = 1 << 20;
  char *lb = malloc(cl + 256);
  int lo = snprintf(lb, 256, "{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"");
  memset(lb + lo, 'x', cl);
  strcpy(lb + lo + cl, "\"}]}");
  char *lr = post_req(lb, "Connection: close\r\n");
  got = exchange(f.port, lr, strlen(lr));
  cr_assert(!strncmp(got, "HTTP/1.1 200 ", 13), "%.100s", got);
  cr_assert(strstr(got, "\"prompt_tokens\":262144"), "%s", strstr(got, "usage"));
  free(got);
  free(lr);
  free(lb);
  struct sim_server_stats st;
  srv_stop(&f, &st);
  cr_assert_eq(st.bad, 12);
}

Test(sim_server, faults_429_drop_truncate, .timeout = 30) {
  struct srv_fixture f;
  srv_start(&f, "429=1", 0);
  char *req = post_req(CHAT, NULL);
  char *got = exchange(f.port, req, strlen(req));
  cr_assert(!strncmp(got, "HTTP/1.1 429 ", 13), "%s", got);
  cr_assert(strstr(got, "Retry-After: 3\r\n"), "%s", got);
  free(got);
  /* models is never faulted */
  const char *models = "GET /v1/models HTTP/1.1\r\nConnection: close\r\n\r\n";
  got = exchange(f.port, models, strlen(models));
  cr_assert(!strncmp(got, "HTTP/1.1 200 ", 13), "%s", got);
  free(got);
  struct sim_server_stats st;
  srv_stop(&f, &st);
  cr_assert_eq(st.faults[SIM_FAULT_429], 1);

  srv_start(&f, "drop=1", 0);
  got = exchange(f.port, req, strlen(req));
  cr_assert_str_eq(got, "", "dropped: no bytes");
  free(got);
  srv_stop(&f, NULL);

  srv_start(&f, "truncate=1", 0);
  got = exchange(f.port, req, strlen(req));
  struct sim_response r;
  sim_handle("POST", "/v1/chat/completions", CHAT, strlen(CHAT), &r);
  char *b = strstr(got, "\r\n\r\n");
  cr_assert_not_null(b);
  cr_assert_eq(strlen(b + 4), r.len / 2, "half the body");
  cr_assert(!memcmp(b + 4, r.body, r.len / 2), "a prefix of the true reply");
  sim_response_release(&r);
  free(got);
  srv_stop(&f, NULL);
  free(req);
}

Test(sim_server, latency_uses_timers, .timeout = 30) {
  struct srv_fixture f;
  srv_start(&f, "", 150);
  /* three connections at once, each reply waits at least the latency */
  char *req = post_req(CHAT, "Connection: close\r\n");
  struct timeval t0, t1;
  gettimeofday(&t0, NULL);
  int a = dial(f.port), b = dial(f.port), c = dial(f.port);
  send_all(a, req, strlen(req));
  send_all(b, req, strlen(req));
  send_all(c, req, strlen(req));
  size_t n;
  char *ga = read_all(a, &n), *gb = read_all(b, &n), *gc = read_all(c, &n);
  gettimeofday(&t1, NULL);
  double ms = (t1.tv_sec - t0.tv_sec) * 1e3 + (t1.tv_usec - t0.tv_usec) / 1e3;
  cr_assert_geq(ms, 150, "waited the latency (%.0f ms)", ms);
  cr_assert(!strncmp(ga, "HTTP/1.1 200", 12) && !strncmp(gb, "HTTP/1.1 200", 12) &&
            !strncmp(gc, "HTTP/1.1 200", 12));
  free(ga);
  free(gb);
  free(gc);
  close(a);
  close(b);
  close(c);
  free(req);
  srv_stop(&f, NULL);
}

Test(sim_handle, odd_strings_are_escaped_valid_json) {
  /* a model name with a quote, a backslash, a newline, a control char and
   * non-ASCII text comes back intact through the hand-written reply writer */
  const char *req =
      "{\"model\":\"m\\\"q\\\\b\\n\\u0001\xc3\xa9\",\"messages\":[{\"role\":\"user\","
      "\"content\":\"x\"}]}";
  int st;
  json_t *v = handle_json("POST", "/v1/chat/completions", req, &st);
  cr_assert_eq(st, 200);
  cr_assert_str_eq(json_string_value(json_object_get(v, "model")), "m\"q\\b\n\x01\xc3\xa9");
  json_decref(v);
  /* invalid UTF-8 in the body is rejected by the JSON parser with a 400 */
  const char *bad = "{\"model\":\"m\xff\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}";
  expect_error("POST", "/v1/chat/completions", bad, 400, "invalid JSON");
}
