/* test_llm.c - llm module: request building, reply parsing, retry arithmetic, URL
 * selection, AIMD, budgets, and the client against the in-process sim, a dead
 * port and a scripted loopback HTTP server. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "llm/llm.h"
#include "llm/retry.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/timeu.h"

#include "helpers.h"

/* ------------------------------------------------------------ request building */

static json_t *user_msgs(const char *text) {
  return json_pack("[{s:s,s:s}]", "role", "user", "content", text);
}

Test(llm_request, omits_unset_fields) {
  json_t *m = user_msgs("hi");
  struct llm_params p;
  llm_params_init(&p);
  json_t *r = llm_request_build("m1", m, &p);
  cr_assert_not_null(r);
  cr_assert_eq(json_object_size(r), 2, "only model and messages");
  cr_assert_str_eq(json_string_value(json_object_get(r, "model")), "m1");
  cr_assert(json_equal(json_object_get(r, "messages"), m));
  json_decref(r);
  r = llm_request_build("m1", m, NULL);
  cr_assert_eq(json_object_size(r), 2);
  json_decref(r);
  cr_assert_null(llm_request_build(NULL, m, &p));
  cr_assert_null(llm_request_build("m", json_object_get(m, "x"), &p));
  json_decref(m);
}

Test(llm_request, all_fields_and_extras) {
  json_t *m = user_msgs("hi");
  json_t *stop = json_pack("[s]", "END");
  json_t *rf = json_pack("{s:s,s:{s:s,s:{s:s}}}", "type", "json_schema", "json_schema", "name", "c",
                         "schema", "type", "object");
  json_t *tools = json_pack("[{s:s}]", "type", "function");
  json_t *tc = json_string("auto");
  json_t *extra = json_pack("{s:{s:b},s:f}", "chat_template_kwargs", "enable_thinking", 0, "top_p",
                            0.5);
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = 0.7;
  p.top_p = 0.9;
  p.max_tokens = 128;
  p.has_seed = 1;
  p.seed = 1234567890123LL;
  p.stop = stop;
  p.response_format = rf;
  p.tools = tools;
  p.tool_choice = tc;
  p.extra = extra;
  json_t *r = llm_request_build("m", m, &p);
  cr_assert_not_null(r);
  cr_assert_float_eq(json_real_value(json_object_get(r, "temperature")), 0.7, 1e-12);
  cr_assert_float_eq(json_real_value(json_object_get(r, "top_p")), 0.5, 1e-12, "extra wins");
  cr_assert_eq(json_integer_value(json_object_get(r, "max_tokens")), 128);
  cr_assert_eq(json_integer_value(json_object_get(r, "seed")), 1234567890123LL);
  cr_assert(json_equal(json_object_get(r, "stop"), stop));
  cr_assert(json_equal(json_object_get(r, "response_format"), rf));
  cr_assert(json_equal(json_object_get(r, "tools"), tools));
  cr_assert(json_equal(json_object_get(r, "tool_choice"), tc));
  cr_assert(json_is_false(
      json_object_get(json_object_get(r, "chat_template_kwargs"), "enable_thinking")));
  /* The request holds copies: changing the inputs afterwards does not change it. */
  json_array_append_new(stop, json_string("X"));
  cr_assert_eq(json_array_size(json_object_get(r, "stop")), 1);
  json_decref(r);
  p.stop = tc; /* a string stop is fine */
  r = llm_request_build("m", m, &p);
  cr_assert_not_null(r);
  json_decref(r);
  p.stop = extra; /* an object is not */
  cr_assert_null(llm_request_build("m", m, &p));
  json_decref(m);
  json_decref(stop);
  json_decref(rf);
  json_decref(tools);
  json_decref(tc);
  json_decref(extra);
}

/* ------------------------------------------------------------ reply parsing */

static int parse(const char *s, struct llm_reply *r, char *err) {
  return llm_reply_parse(s, strlen(s), r, err, 256);
}

Test(llm_reply, basic_usage_and_null_content) {
  struct llm_reply r;
  char err[256];
  cr_assert_eq(
      parse(
          "{\"model\":\"m\",\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hello\"},"
          "\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":12,\"completion_tokens\":34,"
          "\"total_tokens\":46}}",
          &r, err),
      0, "%s", err);
  cr_assert_str_eq(r.content, "Hello");
  cr_assert_str_eq(r.finish_reason, "stop");
  cr_assert_str_eq(r.model, "m");
  cr_assert_null(r.reasoning_content);
  cr_assert_null(r.tool_calls);
  cr_assert_eq(r.prompt_tokens, 12);
  cr_assert_eq(r.completion_tokens, 34);
  cr_assert_eq(r.total_tokens, 46);
  llm_reply_release(&r);
  cr_assert_eq(
      parse("{\"choices\":[{\"message\":{\"content\":null}}],\"usage\":{\"prompt_tokens\":1,"
            "\"completion_tokens\":2}}",
            &r, err),
      0);
  cr_assert_str_eq(r.content, "");
  cr_assert_eq(r.total_tokens, 3, "total derived when absent");
  cr_assert_null(r.finish_reason);
  llm_reply_release(&r);
}

Test(llm_reply, reasoning_and_tool_calls) {
  struct llm_reply r;
  char err[256];
  cr_assert_eq(
      parse("{\"choices\":[{\"message\":{\"content\":\"A\",\"reasoning_content\":\"think\"}}]}", &r,
            err),
      0);
  cr_assert_str_eq(r.reasoning_content, "think");
  llm_reply_release(&r);
  cr_assert_eq(
      parse("{\"choices\":[{\"message\":{\"content\":\"A\",\"reasoning\":\"alt\"}}]}", &r, err), 0);
  cr_assert_str_eq(r.reasoning_content, "alt");
  llm_reply_release(&r);
  /* content as parts: a reasoning or thinking part is not the answer */
  cr_assert_eq(parse("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"thinking\","
                     "\"text\":\"hmm\"},{\"type\":\"reasoning\",\"text\":\"hm\"},{\"type\":"
                     "\"text\",\"text\":\"A\"},\"B\"]}}]}",
                     &r, err),
               0);
  cr_assert_str_eq(r.content, "AB");
  llm_reply_release(&r);
  /* reasoning only, cut off: no content, the tokens counted */
  cr_assert_eq(parse("{\"choices\":[{\"message\":{\"content\":null,\"reasoning_content\":\"so\"},"
                     "\"finish_reason\":\"length\"}],\"usage\":{\"prompt_tokens\":5,"
                     "\"completion_tokens\":64}}",
                     &r, err),
               0);
  cr_assert_str_eq(r.content, "");
  cr_assert_str_eq(r.reasoning_content, "so");
  cr_assert_str_eq(r.finish_reason, "length");
  cr_assert_eq(r.completion_tokens, 64);
  llm_reply_release(&r);
  cr_assert_eq(
      parse("{\"choices\":[{\"message\":{\"content\":null,\"tool_calls\":[{\"id\":\"c1\",\"type\":"
            "\"function\",\"function\":{\"name\":\"f\",\"arguments\":\"{\\\"x\\\":1}\"}}]},"
            "\"finish_reason\":\"tool_calls\"}]}",
            &r, err),
      0);
  cr_assert_str_eq(r.content, "");
  cr_assert_eq(json_array_size(r.tool_calls), 1);
  cr_assert_str_eq(json_string_value(json_object_get(
                       json_object_get(json_array_get(r.tool_calls, 0), "function"), "name")),
                   "f");
  cr_assert_str_eq(r.finish_reason, "tool_calls");
  llm_reply_release(&r);
  /* content as an array of parts */
  cr_assert_eq(parse("{\"choices\":[{\"message\":{\"content\":[{\"type\":\"text\",\"text\":\"a\"},"
                     "{\"type\":\"text\",\"text\":\"b\"}]}}]}",
                     &r, err),
               0);
  cr_assert_str_eq(r.content, "ab");
  llm_reply_release(&r);
}

Test(llm_reply, unicode_escapes) {
  struct llm_reply r;
  char err[256];
  cr_assert_eq(
      parse(
          "{\"choices\":[{\"message\":{\"content\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n\"}}]}",
          &r, err),
      0, "%s", err);
  cr_assert_str_eq(r.content, "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\"\n");
  llm_reply_release(&r);
  /* a lone surrogate is invalid JSON text */
  cr_assert_eq(parse("{\"choices\":[{\"message\":{\"content\":\"\\ud83d\"}}]}", &r, err),
               AD_EPARSE);
}

Test(llm_reply, error_bodies) {
  struct llm_reply r;
  char err[256];
  cr_assert_eq(
      parse("{\"error\":{\"message\":\"model 'x' not found\",\"type\":\"invalid_request_error\"}}",
            &r, err),
      AD_EHTTP);
  cr_assert(strstr(err, "model 'x' not found"), "%s", err);
  cr_assert(strstr(err, "invalid_request_error"), "%s", err);
  cr_assert_eq(parse("{\"error\":\"overloaded\\nretry later\"}", &r, err), AD_EHTTP);
  cr_assert(strstr(err, "overloaded retry later"), "one line: %s", err);
  cr_assert_null(strchr(err, '\n'));
  cr_assert_eq(parse("{\"object\":\"error\",\"message\":\"x\"}", &r, err), AD_EPARSE);
  cr_assert(strstr(err, "choices"), "%s", err);
  cr_assert_eq(parse("{\"choices\":[]}", &r, err), AD_EPARSE);
  cr_assert_eq(parse("{\"choices\":[{\"text\":\"x\"}]}", &r, err), AD_EPARSE);
  cr_assert(strstr(err, "message"), "%s", err);
  cr_assert_eq(parse("[1,2]", &r, err), AD_EPARSE);
}

Test(llm_reply, truncated_and_not_json) {
  struct llm_reply r;
  char err[256];
  cr_assert_eq(parse("{\"choices\":[{\"message\":{\"content\":\"Hel", &r, err), AD_EPARSE);
  cr_assert(strstr(err, "truncated"), "%s", err);
  cr_assert_eq(parse("<html>502 Bad Gateway</html>", &r, err), AD_EPARSE);
  cr_assert(strstr(err, "not JSON"), "%s", err);
  cr_assert_eq(llm_reply_parse("", 0, &r, err, sizeof err), AD_EPARSE);
  cr_assert(strstr(err, "empty"), "%s", err);
  cr_assert_eq(llm_reply_parse(NULL, 0, &r, err, sizeof err), AD_EPARSE);
  cr_assert_eq(llm_reply_parse("{}", 2, &r, NULL, 0), AD_EPARSE, "no err buffer is fine");
  cr_assert_null(r.content);
}

Test(llm_reply, huge_replies) {
  /* 4 MiB of content parses; a body over AD_MAX_RESPONSE is refused before parsing. */
  size_t n = 4u << 20;
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(buf_puts(&b, "{\"choices\":[{\"message\":{\"content\":\""), 0);
  cr_assert_eq(buf_reserve(&b, n + 64), 0);
  memset(b.data + b.len, 'x', n);
  b.len += n;
  b.data[b.len] = 0;
  cr_assert_eq(buf_puts(&b, "\"}}]}"), 0);
  struct llm_reply r;
  char err[256];
  cr_assert_eq(llm_reply_parse(b.data, b.len, &r, err, sizeof err), 0, "%s", err);
  cr_assert_eq(strlen(r.content), n);
  llm_reply_release(&r);
  cr_assert_eq(llm_reply_parse(b.data, (size_t)AD_MAX_RESPONSE + 1, &r, err, sizeof err),
               AD_EPARSE);
  cr_assert(strstr(err, "limit"), "%s", err);
  buf_release(&b);
}

/* ------------------------------------------------------------ retry arithmetic */

Test(llm_retry, backoff_bounds_and_full_jitter) {
  struct rng g;
  rng_seed(&g, 7);
  for (int a = 0; a < 70; a++) {
    int64_t cap = 500;
    for (int i = 0; i < a && cap < 30000; i++) cap *= 2;
    if (cap > 30000) cap = 30000;
    for (int k = 0; k < 200; k++) {
      int64_t d = llm_backoff_ms(&g, a, 500, 30000);
      cr_assert(d >= 0 && d <= cap, "attempt %d: %lld not in [0,%lld]", a, (long long)d,
                (long long)cap);
    }
  }
  /* Full jitter: the whole range [0, cap] is used, mean near cap/2. */
  int64_t lo = 1 << 30, hi = -1;
  double sum = 0;
  for (int k = 0; k < 20000; k++) {
    int64_t d = llm_backoff_ms(&g, 3, 100, 30000); /* cap 800 */
    lo = d < lo ? d : lo;
    hi = d > hi ? d : hi;
    sum += (double)d;
  }
  cr_assert(lo < 20 && hi > 780 && hi <= 800, "range [%lld,%lld]", (long long)lo, (long long)hi);
  cr_assert(sum / 20000 > 370 && sum / 20000 < 430, "mean %f", sum / 20000);
  /* deterministic per seed */
  struct rng a, b;
  rng_seed(&a, 99);
  rng_seed(&b, 99);
  for (int k = 0; k < 50; k++)
    cr_assert_eq(llm_backoff_ms(&a, k % 10, 500, 30000), llm_backoff_ms(&b, k % 10, 500, 30000));
  cr_assert_eq(llm_backoff_ms(&a, 5, 0, 30000), 0);
}

/* The delay in ms, or llm_parse_retry_after()'s error code. */
static int64_t retry_after(const char *value, time_t now) {
  int64_t ms = -7;
  int rc = llm_parse_retry_after(value, now, &ms);
  return rc ? rc : ms;
}

Test(llm_retry, retry_after_values) {
  time_t now = 1445412450; /* Wed, 21 Oct 2015 07:27:30 GMT */
  cr_assert_eq(retry_after("120", now), 120000);
  cr_assert_eq(retry_after(" 1.5 ", now), 1500);
  cr_assert_eq(retry_after("0", now), 0);
  cr_assert_eq(retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), 30000);
  cr_assert_eq(retry_after("Wednesday, 21-Oct-15 07:28:00 GMT", now), 30000);
  cr_assert_eq(retry_after("Wed Oct 21 07:28:00 2015", now), 30000);
  cr_assert_eq(retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now), 0, "past date");
  cr_assert_eq(retry_after("Thu, 01 Jan 1970 00:00:00 GMT", 0), 0);
  cr_assert_eq(retry_after("Sat, 01 Jan 2000 00:00:10 GMT", 946684800), 10000);
  cr_assert_eq(retry_after("soon", now), AD_EPARSE);
  cr_assert_eq(retry_after("-5", now), AD_EPARSE);
  cr_assert_eq(retry_after("12abc", now), AD_EPARSE);
  cr_assert_eq(retry_after("", now), AD_EPARSE);
  cr_assert_eq(retry_after(NULL, now), AD_EPARSE);
  cr_assert_eq(retry_after("Wed, 32 Foo 2015 07:28:00 GMT", now), AD_EPARSE);
  int64_t ms = 42;
  cr_assert_eq(llm_parse_retry_after("later", now, &ms), AD_EPARSE);
  cr_assert_eq(ms, 42, "*ms untouched on failure");
}

Test(llm_retry, pick_least_outstanding_and_failover) {
  struct llm_url_state u[3] = {{5, 0}, {2, 0}, {7, 0}};
  cr_assert_eq(llm_pick_url(u, 3, 1000, 0, -1), 1);
  cr_assert_eq(llm_pick_url(u, 3, 1000, 2, -1), 1);
  /* ties go round robin */
  struct llm_url_state t[3] = {{1, 0}, {1, 0}, {1, 0}};
  cr_assert_eq(llm_pick_url(t, 3, 1000, 0, -1), 0);
  cr_assert_eq(llm_pick_url(t, 3, 1000, 1, -1), 1);
  cr_assert_eq(llm_pick_url(t, 3, 1000, 5, -1), 2);
  /* a down URL is skipped even when it is idle */
  u[1].down_until_ms = 5000;
  cr_assert_eq(llm_pick_url(u, 3, 1000, 0, -1), 0);
  /* and comes back after its cool-off */
  cr_assert_eq(llm_pick_url(u, 3, 5000, 0, -1), 1);
  /* avoid: a retry goes to another URL when one is up */
  struct llm_url_state v[2] = {{0, 0}, {3, 0}};
  cr_assert_eq(llm_pick_url(v, 2, 0, 0, 0), 1);
  v[1].down_until_ms = 10;
  cr_assert_eq(llm_pick_url(v, 2, 0, 0, 0), 0, "avoided URL is the only one up");
  /* all down: the one that comes back first */
  struct llm_url_state w[3] = {{0, 900}, {0, 300}, {0, 600}};
  cr_assert_eq(llm_pick_url(w, 3, 100, 0, -1), 1);
  cr_assert_eq(llm_pick_url(w, 0, 100, 0, -1), -1);
  cr_assert_eq(llm_down_cooloff_ms(1), 2000);
  cr_assert_eq(llm_down_cooloff_ms(2), 4000);
  cr_assert_eq(llm_down_cooloff_ms(50), 60000);
}

Test(llm_retry, aimd) {
  struct llm_aimd a;
  llm_aimd_init(&a, 64, 1);
  cr_assert_eq(a.limit, 16);
  llm_aimd_init(&a, 4, 1);
  cr_assert_eq(a.limit, 4);
  llm_aimd_init(&a, 64, 0);
  cr_assert_eq(a.limit, 64);
  llm_aimd_init(&a, 64, 1);
  unsigned e = a.epoch;
  cr_assert_eq(llm_aimd_overload(&a, e), 1);
  cr_assert_eq(a.limit, 8);
  cr_assert_eq(llm_aimd_overload(&a, e), 0, "attempts from before the cut do not cut again");
  cr_assert_eq(a.limit, 8);
  for (int i = 0; i < 5; i++) llm_aimd_overload(&a, a.epoch);
  cr_assert_eq(a.limit, 1, "never below 1");
  llm_aimd_success(&a);
  cr_assert_eq(a.limit, 2);
  llm_aimd_success(&a);
  cr_assert_eq(a.limit, 2);
  llm_aimd_success(&a);
  cr_assert_eq(a.limit, 3);
  for (int i = 0; i < 10000; i++) llm_aimd_success(&a);
  cr_assert_eq(a.limit, 64, "capped at max_inflight");
}

Test(llm_retry, token_bucket) {
  struct llm_bucket b;
  llm_bucket_init(&b, 600, 0); /* 10/s, burst 60 */
  for (int i = 0; i < 60; i++) cr_assert_eq(llm_bucket_take(&b, 1, 0), 0);
  int64_t w = llm_bucket_take(&b, 1, 0);
  cr_assert(w >= 100 && w <= 101, "wait %lld", (long long)w);
  cr_assert_eq(llm_bucket_take(&b, 1, 100), 0);
  /* a cost above the burst is admitted once the bucket is full */
  cr_assert(llm_bucket_take(&b, 1000, 200) > 0);
  cr_assert_eq(llm_bucket_take(&b, 1000, 100000), 0);
  cr_assert(llm_bucket_take(&b, 1, 100000) > 0, "debt must be repaid");
  llm_bucket_adjust(&b, 2000, 100000); /* usage came in lower than estimated */
  cr_assert_eq(llm_bucket_take(&b, 1, 100000), 0);
  llm_bucket_init(&b, 0, 0);
  cr_assert_eq(llm_bucket_take(&b, 1e12, 0), 0, "0 = unlimited");
}

/* ------------------------------------------------------------ the client */

struct rec {
  int done, rc, attempts_cb, retries_flagged, http_status, attempts;
  int url_hits[4];
  char error[512];
  char content[256];
  int64_t retry_after_ms[16];
};

static void rec_attempt(void *ud, const struct llm_attempt *a) {
  struct rec *r = ud;
  if (a->number >= 1 && a->number <= 16) r->retry_after_ms[a->number - 1] = a->retry_after_ms;
  r->attempts_cb++;
  r->retries_flagged += a->retry;
  if (!strcmp(a->url, "sim")) r->url_hits[1]++;
  else r->url_hits[0]++;
}

static void rec_done(void *ud, const struct llm_result *res) {
  struct rec *r = ud;
  r->done++;
  r->rc = res->rc;
  r->attempts = res->attempts;
  r->http_status = res->http_status;
  if (res->error) snprintf(r->error, sizeof r->error, "%s", res->error);
  if (res->reply) snprintf(r->content, sizeof r->content, "%s", res->reply->content);
}

static void drain(llm_client *c, int64_t limit_ms) {
  int64_t end = time_now_ms() + limit_ms;
  while (llm_client_run_once(c, 100) > 0)
    cr_assert(time_now_ms() < end, "client did not finish in time");
}

static json_t *simple_body(const char *model, const char *text) {
  json_t *m = user_msgs(text);
  json_t *b = llm_request_build(model, m, NULL);
  json_decref(m);
  return b;
}

/* A loopback port with a socket bound but not listening: connects are refused. */
static int dead_port(int *fd) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  *fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert(*fd >= 0);
  cr_assert_eq(bind(*fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(getsockname(*fd, (struct sockaddr *)&a, &l), 0);
  return ntohs(a.sin_port);
}

Test(llm_client, sim_done_only_from_the_loop) {
  llm_client *c = th_sim_client("s", NULL);
  struct llm_endpoint_config cfg;
  th_sim_config(&cfg, "s");
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), AD_EEXISTS);
  json_t *b = simple_body("m", "hello");
  struct rec r = {0};
  cr_assert_eq(llm_submit(c, "nope", b, rec_done, rec_attempt, &r), AD_ENOTFOUND);
  cr_assert_eq(llm_submit(c, "s", b, rec_done, rec_attempt, &r), 0);
  cr_assert_eq(r.done, 0, "never inside llm_submit");
  cr_assert_eq(llm_client_pending(c), 1);
  drain(c, 5000);
  cr_assert_eq(r.done, 1);
  cr_assert_eq(r.rc, 0);
  cr_assert_eq(r.attempts_cb, 1);
  cr_assert_eq(r.http_status, 200);
  cr_assert_neq(r.content[0], 0);
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(c, "s", &st), 0);
  cr_assert_eq(st.calls_ok, 1);
  cr_assert_eq(st.attempts, 1);
  cr_assert_eq(st.inflight + st.queued, 0);
  cr_assert_eq(st.concurrency_limit, 16);
  json_decref(b);
  llm_client_free(c);
}

Test(llm_client, merge_extra_and_serialized_submit) {
  json_t *extra = json_pack("{s:{s:b,s:i},s:i}", "chat_template_kwargs", "enable_thinking", 0,
                            "depth", 1, "top_k", 20);
  llm_client *c = th_sim_client("s", extra);
  /* The request's own fields win, nested objects merge. */
  json_t *b = json_pack("{s:s,s:[{s:s,s:s}],s:{s:i},s:i}", "model", "m", "messages", "role", "user",
                        "content", "hi", "chat_template_kwargs", "depth", 2, "top_k", 5);
  json_t *w = llm_merge_extra(c, "s", b);
  cr_assert_not_null(w);
  char *t = jx_dump_canonical(w);
  cr_assert_str_eq(t,
                   "{\"chat_template_kwargs\":{\"depth\":2,\"enable_thinking\":false},"
                   "\"messages\":[{\"content\":\"hi\",\"role\":\"user\"}],\"model\":\"m\","
                   "\"top_k\":5}");
  cr_assert_null(llm_merge_extra(c, "nope", b));
  /* Merging again changes nothing (what the run relies on for its cache key). */
  json_t *w2 = llm_merge_extra(c, "s", w);
  char *t2 = jx_dump_canonical(w2);
  cr_assert_str_eq(t, t2);
  /* The serialised submission gets the same reply as the plain one. */
  struct rec r1 = {0}, r2 = {0};
  cr_assert_eq(llm_submit(c, "s", b, rec_done, rec_attempt, &r1), 0);
  cr_assert_eq(llm_submit_serialized(c, "s", w, t, strlen(t), rec_done, rec_attempt, &r2), 0);
  cr_assert_eq(r2.done, 0, "never inside llm_submit_serialized");
  cr_assert_eq(llm_submit_serialized(c, "nope", w, t, strlen(t), rec_done, rec_attempt, &r2),
               AD_ENOTFOUND);
  drain(c, 5000);
  cr_assert_eq(r1.done, 1);
  cr_assert_eq(r2.done, 1);
  cr_assert_eq(r2.rc, 0);
  cr_assert_str_eq(r1.content, r2.content);
  free(t);
  free(t2);
  json_decref(w);
  json_decref(w2);
  json_decref(b);
  json_decref(extra);
  llm_client_free(c);
}

Test(llm_client, cancel_all) {
  llm_client *c = th_sim_client("s", NULL);
  json_t *b = simple_body("m", "hello");
  struct rec r[5] = {{0}};
  for (int i = 0; i < 5; i++) cr_assert_eq(llm_submit(c, "s", b, rec_done, rec_attempt, &r[i]), 0);
  llm_client_cancel_all(c);
  struct rec late = {0};
  cr_assert_eq(llm_submit(c, "s", b, rec_done, rec_attempt, &late), 0);
  drain(c, 5000);
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(r[i].done, 1);
    cr_assert_eq(r[i].rc, AD_ECANCELED);
  }
  cr_assert_eq(late.done, 1);
  cr_assert_eq(late.rc, 0, "a call submitted after cancel_all is not canceled");
  json_decref(b);
  llm_client_free(c);
}

Test(llm_client, failover_away_from_a_down_url) {
  int fd, port = dead_port(&fd);
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", port);
  llm_client *c = llm_client_new();
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "two";
  cfg.base_urls[0] = url;
  cfg.base_urls[1] = "sim";
  cfg.n_urls = 2;
  cfg.max_inflight = 1; /* one at a time so the pick order is deterministic */
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), 0);
  json_t *b = simple_body("m", "hello");
  struct rec r[20] = {{0}};
  for (int i = 0; i < 20; i++)
    cr_assert_eq(llm_submit(c, "two", b, rec_done, rec_attempt, &r[i]), 0);
  drain(c, 10000);
  int dead_hits = 0;
  for (int i = 0; i < 20; i++) {
    cr_assert_eq(r[i].done, 1);
    cr_assert_eq(r[i].rc, 0, "call %d: %s", i, r[i].error);
    dead_hits += r[i].url_hits[0];
  }
  cr_assert_eq(dead_hits, 1, "the down URL is tried once, then skipped during its cool-off");
  json_decref(b);
  llm_client_free(c);
  close(fd);
}

Test(llm_client, down_endpoint_diagnosis) {
  int fd, port = dead_port(&fd);
  char url[64], want[160];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1/", port);
  llm_client *c = llm_client_new();
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "dead";
  cfg.base_urls[0] = url;
  cfg.n_urls = 1;
  cfg.max_retries = 2;
  cfg.backoff_base_ms = 5;
  cfg.backoff_max_ms = 20;
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), 0);
  json_t *b = simple_body("m", "hello");
  struct rec r = {0};
  cr_assert_eq(llm_submit(c, "dead", b, rec_done, rec_attempt, &r), 0);
  drain(c, 10000);
  snprintf(want, sizeof want,
           "endpoint 'dead' (http://127.0.0.1:%d/v1): connection refused after 3 attempts", port);
  cr_assert_eq(r.done, 1);
  cr_assert_eq(r.rc, AD_ENET);
  cr_assert_str_eq(r.error, want);
  cr_assert_eq(r.attempts_cb, 3);
  cr_assert_eq(r.retries_flagged, 2);
  json_decref(b);
  llm_client_free(c);
  close(fd);
}

Test(llm_client, config_errors) {
  llm_client *c = llm_client_new();
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "x";
  cfg.base_urls[0] = "ftp://h";
  cfg.n_urls = 1;
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), AD_EINVAL);
  cr_assert(strstr(llm_client_errmsg(c), "ftp://h"));
  cfg.base_urls[0] = "sim";
  cfg.api_key_env = "AUTODATA_TEST_SURELY_UNSET_KEY";
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), AD_EINVAL);
  cr_assert(strstr(llm_client_errmsg(c), "AUTODATA_TEST_SURELY_UNSET_KEY"));
  cfg.api_key_env = NULL;
  cfg.headers[0] = "NoColon";
  cfg.n_headers = 1;
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), AD_EINVAL);
  cfg.headers[0] = "X-A: 1\r\nX-B: 2";
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), AD_EINVAL);
  llm_client_free(c);
}

/* ------------------------------------------------------------ scripted loopback server */

#define HANG "HANG"
struct fake {
  int fd, port;
  const char *script[8];
  int n, next;
  pthread_mutex_t mu;
  char last_req[16384];
};

static void *fake_main(void *arg) {
  struct fake *f = arg;
  for (;;) {
    int cfd = accept(f->fd, NULL, NULL);
    if (cfd < 0) return NULL;
    char req[16384];
    size_t have = 0;
    for (;;) {
      /* read one request: headers, then Content-Length bytes */
      char *eoh;
      ssize_t k;
      while (!(eoh = memmem(req, have, "\r\n\r\n", 4))) {
        if (have == sizeof req || (k = read(cfd, req + have, sizeof req - have)) <= 0) goto closed;
        have += (size_t)k;
      }
      size_t hlen = (size_t)(eoh - req) + 4, clen = 0;
      char *cl = memmem(req, hlen, "Content-Length:", 15);
      if (cl) clen = strtoul(cl + 15, NULL, 10);
      while (have < hlen + clen) {
        if (have == sizeof req || (k = read(cfd, req + have, sizeof req - have)) <= 0) goto closed;
        have += (size_t)k;
      }
      pthread_mutex_lock(&f->mu);
      size_t m = hlen + clen < sizeof f->last_req - 1 ? hlen + clen : sizeof f->last_req - 1;
      memcpy(f->last_req, req, m);
      f->last_req[m] = 0;
      const char *resp = f->script[f->next < f->n ? f->next : f->n - 1];
      f->next++;
      pthread_mutex_unlock(&f->mu);
      memmove(req, req + hlen + clen, have - hlen - clen);
      have -= hlen + clen;
      if (!strcmp(resp, HANG)) {
        while (read(cfd, req, sizeof req) > 0) {
        }
        goto closed;
      }
      if (write(cfd, resp, strlen(resp)) < 0) goto closed;
    }
  closed:
    close(cfd);
  }
}

static char *http_resp(int status, const char *extra_headers, const char *body) {
  char *s = NULL;
  cr_assert(
      asprintf(&s,
               "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
               status, strlen(body), extra_headers, body) > 0);
  return s;
}

static void fake_start(struct fake *f) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t l = sizeof a;
  f->fd = socket(AF_INET, SOCK_STREAM, 0);
  cr_assert_eq(bind(f->fd, (struct sockaddr *)&a, sizeof a), 0);
  cr_assert_eq(listen(f->fd, 16), 0);
  cr_assert_eq(getsockname(f->fd, (struct sockaddr *)&a, &l), 0);
  f->port = ntohs(a.sin_port);
  pthread_mutex_init(&f->mu, NULL);
  pthread_t th;
  cr_assert_eq(pthread_create(&th, NULL, fake_main, f), 0);
  pthread_detach(th);
}

static const char *OK_BODY =
    "{\"choices\":[{\"message\":{\"content\":\"fine\"},\"finish_reason\":\"stop\"}],"
    "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1,\"total_tokens\":4}}";

static llm_client *fake_client(struct fake *f, int retries, const char *key_env) {
  static char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/v1", f->port);
  llm_client *c = llm_client_new();
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "fake";
  cfg.base_urls[0] = url;
  cfg.n_urls = 1;
  cfg.max_inflight = 1;
  cfg.max_retries = retries;
  cfg.backoff_base_ms = 5;
  cfg.backoff_max_ms = 20;
  cfg.request_timeout_ms = 300;
  cfg.api_key_env = key_env;
  cfg.headers[0] = "X-Test: yes";
  cfg.n_headers = 1;
  json_t *xb = json_pack("{s:{s:b}}", "chat_template_kwargs", "enable_thinking", 0);
  cfg.extra_body = xb;
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), 0, "%s", llm_client_errmsg(c));
  json_decref(xb);
  return c;
}

static struct rec run_one(llm_client *c) {
  json_t *b = simple_body("m", "hello");
  struct rec r = {0};
  cr_assert_eq(llm_submit(c, "fake", b, rec_done, rec_attempt, &r), 0);
  drain(c, 10000);
  json_decref(b);
  cr_assert_eq(r.done, 1, "done exactly once");
  return r;
}

Test(llm_http, retry_after_429_then_ok_with_key_headers_and_extras) {
  static struct fake f;
  char *r429 = http_resp(429, "Retry-After: 1\r\n", "{\"error\":{\"message\":\"slow down\"}}");
  char *ok = http_resp(200, "", OK_BODY);
  f.script[0] = r429;
  f.script[1] = ok;
  f.n = 2;
  fake_start(&f);
  setenv("AUTODATA_TEST_KEY", "sekrit-123", 1);
  llm_client *c = fake_client(&f, 3, "AUTODATA_TEST_KEY");
  int64_t t0 = time_now_ms();
  struct rec r = run_one(c);
  cr_assert_eq(r.rc, 0, "%s", r.error);
  cr_assert_str_eq(r.content, "fine");
  cr_assert_eq(r.attempts, 2);
  cr_assert_eq(r.attempts_cb, 2);
  cr_assert_geq(r.retry_after_ms[0], 1000, "Retry-After is a lower bound");
  cr_assert_geq(time_now_ms() - t0, 1000);
  pthread_mutex_lock(&f.mu);
  cr_assert(strstr(f.last_req, "Authorization: Bearer sekrit-123\r\n"), "%s", f.last_req);
  cr_assert(strstr(f.last_req, "X-Test: yes\r\n"));
  cr_assert(strstr(f.last_req, "POST /v1/chat/completions HTTP/1.1\r\n"));
  cr_assert(strstr(f.last_req, "\"chat_template_kwargs\":{\"enable_thinking\":false}"), "%s",
            f.last_req);
  cr_assert_null(strstr(strstr(f.last_req, "\r\n\r\n"), "sekrit"), "the key is never in the body");
  pthread_mutex_unlock(&f.mu);
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(c, "fake", &st), 0);
  cr_assert_eq(st.retries, 1);
  cr_assert_eq(st.concurrency_limit, 1, "cut by the 429 (max 1 anyway)");
  llm_client_free(c);
}

Test(llm_http, client_error_is_final_with_server_message) {
  static struct fake f;
  f.script[0] = http_resp(400, "", "{\"error\":{\"message\":\"max_tokens is too large\"}}");
  f.n = 1;
  fake_start(&f);
  setenv("AUTODATA_TEST_KEY", "sekrit-123", 1);
  llm_client *c = fake_client(&f, 3, "AUTODATA_TEST_KEY");
  struct rec r = run_one(c);
  cr_assert_eq(r.rc, AD_EHTTP);
  cr_assert_eq(r.attempts, 1, "4xx other than 408/429 is not retried");
  cr_assert_eq(r.http_status, 400);
  cr_assert(strstr(r.error, "endpoint 'fake' (http://127.0.0.1:"), "%s", r.error);
  cr_assert(strstr(r.error, "answered HTTP 400: server error: max_tokens is too large"), "%s",
            r.error);
  cr_assert_null(strstr(r.error, "sekrit"));
  llm_client_free(c);
}

Test(llm_http, garbage_is_retried_then_diagnosed) {
  static struct fake f;
  f.script[0] = http_resp(200, "", "<html>\n<b>oops</b></html>");
  f.n = 1;
  fake_start(&f);
  llm_client *c = fake_client(&f, 2, NULL);
  struct rec r = run_one(c);
  cr_assert_eq(r.rc, AD_EPARSE);
  cr_assert_eq(r.attempts, 3);
  cr_assert(
      strstr(
          r.error,
          "answered HTTP 200 with a body that is not JSON: '<html> <b>oops</b></html>' after 3 attempts"),
      "%s", r.error);
  llm_client_free(c);
}

Test(llm_http, error_in_200_and_5xx_retried) {
  static struct fake f;
  f.script[0] = http_resp(200, "", "{\"error\":{\"message\":\"upstream hiccup\"}}");
  f.script[1] = http_resp(503, "", "busy");
  f.script[2] = http_resp(200, "", "{\"choices\":[{\"message\":{\"content\":\"fi");
  f.script[3] = http_resp(200, "", OK_BODY);
  f.n = 4;
  fake_start(&f);
  llm_client *c = fake_client(&f, 5, NULL);
  struct rec r = run_one(c);
  cr_assert_eq(r.rc, 0, "%s", r.error);
  cr_assert_eq(r.attempts, 4);
  cr_assert_str_eq(r.content, "fine");
  llm_client_free(c);
}

Test(llm_http, request_timeout) {
  static struct fake f;
  f.script[0] = HANG;
  f.n = 1;
  fake_start(&f);
  llm_client *c = fake_client(&f, 0, NULL);
  int64_t t0 = time_now_ms();
  struct rec r = run_one(c);
  cr_assert_eq(r.rc, AD_ETIMEOUT, "%s", r.error);
  cr_assert(strstr(r.error, "within 300 ms"), "%s", r.error);
  cr_assert_lt(time_now_ms() - t0, 5000);
  llm_client_free(c);
}

Test(llm_http, cancel_in_flight) {
  static struct fake f;
  f.script[0] = HANG;
  f.n = 1;
  fake_start(&f);
  llm_client *c = fake_client(&f, 3, NULL);
  json_t *b = simple_body("m", "hello");
  struct rec r = {0};
  cr_assert_eq(llm_submit(c, "fake", b, rec_done, rec_attempt, &r), 0);
  for (int i = 0; i < 5; i++) llm_client_run_once(c, 20); /* the transfer is now inside curl */
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(c, "fake", &st), 0);
  cr_assert_eq(st.inflight, 1);
  cr_assert_eq(r.done, 0);
  llm_client_cancel_all(c);
  cr_assert_eq(r.done, 0, "done fires from the loop, not from cancel_all");
  drain(c, 5000);
  cr_assert_eq(r.done, 1);
  cr_assert_eq(r.rc, AD_ECANCELED);
  cr_assert_eq(r.attempts_cb, 1, "the canceled attempt is reported");
  cr_assert_eq(llm_client_endpoint_stats(c, "fake", &st), 0);
  cr_assert_eq(st.inflight, 0);
  json_decref(b);
  llm_client_free(c);
}

/* ------------------------------------------------------------ re-entrancy (llm.h RE-ENTRANCY) */

static llm_client *sim_client(int max_inflight) {
  llm_client *c = llm_client_new();
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "s";
  cfg.base_urls[0] = "sim";
  cfg.n_urls = 1;
  cfg.max_inflight = max_inflight;
  cfg.adaptive = 0; /* the limit is exactly max_inflight */
  cr_assert_eq(llm_client_add_endpoint(c, &cfg), 0);
  return c;
}

/* Passes of the loop so far: callbacks record it to show which pass fired them. */
static int g_pass;

static void drain_passes(llm_client *c) {
  int64_t end = time_now_ms() + 10000;
  int left;
  while ((left = llm_client_run_once(c, 100)) > 0) {
    g_pass++;
    cr_assert(time_now_ms() < end, "client did not finish in time");
  }
  g_pass++;
  cr_assert_eq(left, 0);
}

/* One call of a test: its record, the pass its done fired in, and the test's state. */
struct reent;
struct slot {
  struct reent *t;
  struct rec r;
  int pass;
};
struct reent {
  llm_client *c;
  json_t *body;
  struct slot s[32];
  int n, want; /* calls submitted so far (chain), calls wanted */
  int submit_rc, seen_done_in_submit, pending_in_done, cancels, busy_done, busy_attempt;
  struct slot before, after;
};

static void slot_done(void *ud, const struct llm_result *res) {
  struct slot *sl = ud;
  rec_done(&sl->r, res);
  sl->pass = g_pass;
}

static void slot_attempt(void *ud, const struct llm_attempt *a) {
  rec_attempt(&((struct slot *)ud)->r, a);
}

static void follow_up_done(void *ud, const struct llm_result *res) {
  struct slot *sl = ud;
  struct reent *t = sl->t;
  slot_done(sl, res);
  t->pending_in_done = llm_client_pending(t->c);
  t->submit_rc = llm_submit(t->c, "s", t->body, slot_done, slot_attempt, &t->s[1]);
  t->seen_done_in_submit = t->s[1].r.done;
}

Test(llm_reentry, done_submits_a_follow_up) {
  struct reent t = {.c = sim_client(64), .body = simple_body("m", "hello")};
  t.s[0].t = t.s[1].t = &t;
  cr_assert_eq(llm_submit(t.c, "s", t.body, follow_up_done, slot_attempt, &t.s[0]), 0);
  drain_passes(t.c);
  cr_assert_eq(t.s[0].r.done, 1);
  cr_assert_eq(t.submit_rc, 0);
  cr_assert_eq(t.pending_in_done, 0, "the call whose done runs no longer counts");
  cr_assert_eq(t.seen_done_in_submit, 0, "never inside llm_submit, even from a callback");
  cr_assert_eq(t.s[1].r.done, 1, "the follow-up completes exactly once");
  cr_assert_eq(t.s[1].r.rc, 0, "%s", t.s[1].r.error);
  cr_assert_eq(t.s[1].r.attempts_cb, 1);
  cr_assert_gt(t.s[1].pass, t.s[0].pass, "in a later pass than the done that submitted it");
  cr_assert_eq(llm_client_pending(t.c), 0);
  json_decref(t.body);
  llm_client_free(t.c);
}

static void chain_done(void *ud, const struct llm_result *res) {
  struct slot *sl = ud;
  struct reent *t = sl->t;
  slot_done(sl, res);
  if (t->n < t->want) {
    struct slot *next = &t->s[t->n++];
    cr_assert_eq(llm_submit_serialized(t->c, "s", t->body, "{\"model\":\"m\",\"messages\":[]}", 27,
                                       chain_done, slot_attempt, next),
                 0);
  }
}

Test(llm_reentry, chain_of_submits_from_done) {
  struct reent t = {.c = sim_client(64), .body = simple_body("m", "hello"), .want = 20};
  for (int i = 0; i < 32; i++) t.s[i].t = &t;
  cr_assert_eq(llm_submit(t.c, "s", t.body, chain_done, slot_attempt, &t.s[t.n++]), 0);
  drain_passes(t.c);
  cr_assert_eq(t.n, 20);
  for (int i = 0; i < 20; i++) {
    cr_assert_eq(t.s[i].r.done, 1, "call %d: done exactly once", i);
    cr_assert_eq(t.s[i].r.attempts_cb, 1, "call %d", i);
    if (i) cr_assert_gt(t.s[i].pass, t.s[i - 1].pass, "call %d: one link per pass", i);
  }
  for (int i = 20; i < 32; i++) cr_assert_eq(t.s[i].r.done, 0);
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(t.c, "s", &st), 0);
  cr_assert_eq(st.calls_ok + st.calls_failed, 20);
  cr_assert_eq(st.inflight + st.queued, 0);
  json_decref(t.body);
  llm_client_free(t.c);
}

/* The first done submits one call, cancels everything, then submits another. */
static void cancel_done(void *ud, const struct llm_result *res) {
  struct slot *sl = ud;
  struct reent *t = sl->t;
  slot_done(sl, res);
  if (t->cancels++) return;
  cr_assert_eq(llm_submit(t->c, "s", t->body, slot_done, slot_attempt, &t->before), 0);
  llm_client_cancel_all(t->c);
  cr_assert_eq(llm_submit(t->c, "s", t->body, slot_done, slot_attempt, &t->after), 0);
}

Test(llm_reentry, cancel_all_from_done) {
  /* Two calls start in the first pass (both sim answers are in hand when the
   * first done runs), three wait in the queue. */
  struct reent t = {.c = sim_client(2), .body = simple_body("m", "hello")};
  t.before.t = t.after.t = &t;
  for (int i = 0; i < 5; i++) {
    t.s[i].t = &t;
    cr_assert_eq(llm_submit(t.c, "s", t.body, cancel_done, slot_attempt, &t.s[i]), 0);
  }
  drain_passes(t.c);
  int ok = 0, attempts = 0;
  for (int i = 0; i < 5; i++) {
    cr_assert_eq(t.s[i].r.done, 1, "call %d: exactly one done", i);
    attempts += t.s[i].r.attempts_cb;
    if (t.s[i].r.rc == 0) {
      ok++;
      continue;
    }
    cr_assert_eq(t.s[i].r.rc, AD_ECANCELED, "call %d: %s", i, t.s[i].r.error);
    cr_assert_str_eq(t.s[i].r.error, "endpoint 's': canceled");
  }
  cr_assert_eq(ok, 1, "only the call whose done canceled (it had already finished)");
  cr_assert_eq(attempts, 2, "the started call that was canceled reports its attempt once");
  cr_assert_eq(t.before.r.done, 1);
  cr_assert_eq(t.before.r.rc, AD_ECANCELED, "submitted before cancel_all: canceled");
  cr_assert_eq(t.before.r.attempts_cb, 0, "canceled before it started");
  cr_assert_eq(t.after.r.done, 1);
  cr_assert_eq(t.after.r.rc, 0, "submitted after cancel_all: not affected");
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(t.c, "s", &st), 0);
  cr_assert_eq(st.calls_ok, 2);
  cr_assert_eq(st.calls_failed, 5);
  cr_assert_eq(st.inflight + st.queued, 0);
  cr_assert_eq(llm_client_pending(t.c), 0);
  json_decref(t.body);
  llm_client_free(t.c);
}

Test(llm_reentry, done_of_a_canceled_call_submits_a_follow_up) {
  struct reent t = {.c = sim_client(64), .body = simple_body("m", "hello")};
  t.s[0].t = t.s[1].t = &t;
  cr_assert_eq(llm_submit(t.c, "s", t.body, follow_up_done, slot_attempt, &t.s[0]), 0);
  llm_client_cancel_all(t.c);
  drain_passes(t.c);
  cr_assert_eq(t.s[0].r.done, 1);
  cr_assert_eq(t.s[0].r.rc, AD_ECANCELED);
  cr_assert_eq(t.submit_rc, 0);
  cr_assert_eq(t.s[1].r.done, 1);
  cr_assert_eq(t.s[1].r.rc, 0, "submitted after the cancel: not affected");
  cr_assert_gt(t.s[1].pass, t.s[0].pass, "starts in a later pass, even after a cancel");
  json_decref(t.body);
  llm_client_free(t.c);
}

static void cancel_in_attempt(void *ud, const struct llm_attempt *a) {
  struct slot *sl = ud;
  slot_attempt(sl, a);
  llm_client_cancel_all(sl->t->c);
}

Test(llm_reentry, cancel_all_from_the_last_attempt) {
  struct reent t = {.c = sim_client(64), .body = simple_body("m", "hello")};
  t.s[0].t = t.s[1].t = &t;
  cr_assert_eq(llm_submit(t.c, "s", t.body, slot_done, cancel_in_attempt, &t.s[0]), 0);
  cr_assert_eq(llm_submit(t.c, "s", t.body, slot_done, slot_attempt, &t.s[1]), 0);
  drain_passes(t.c);
  cr_assert_eq(t.s[0].r.done, 1);
  cr_assert_eq(t.s[0].r.rc, 0, "its last attempt succeeded: done reports that outcome");
  cr_assert_eq(t.s[1].r.done, 1);
  cr_assert_eq(t.s[1].r.rc, AD_ECANCELED, "the other outstanding call is canceled");
  json_decref(t.body);
  llm_client_free(t.c);
}

static void busy_done(void *ud, const struct llm_result *res) {
  struct slot *sl = ud;
  sl->t->busy_done = llm_client_run_once(sl->t->c, 0);
  slot_done(sl, res);
}

static void busy_attempt(void *ud, const struct llm_attempt *a) {
  struct slot *sl = ud;
  sl->t->busy_attempt = llm_client_run_once(sl->t->c, 0);
  slot_attempt(sl, a);
}

Test(llm_reentry, run_once_from_a_callback_is_refused) {
  struct reent t = {.c = sim_client(64), .body = simple_body("m", "hello")};
  for (int i = 0; i < 4; i++) {
    t.s[i].t = &t;
    cr_assert_eq(llm_submit(t.c, "s", t.body, busy_done, busy_attempt, &t.s[i]), 0);
  }
  drain_passes(t.c);
  cr_assert_eq(t.busy_done, AD_EBUSY);
  cr_assert_eq(t.busy_attempt, AD_EBUSY);
  cr_assert(strstr(llm_client_errmsg(t.c), "inside a callback"), "%s", llm_client_errmsg(t.c));
  for (int i = 0; i < 4; i++) {
    cr_assert_eq(t.s[i].r.done, 1, "call %d: no callback lost, none doubled", i);
    cr_assert_eq(t.s[i].r.rc, 0, "call %d: %s", i, t.s[i].r.error);
    cr_assert_eq(t.s[i].r.attempts_cb, 1, "call %d", i);
  }
  cr_assert_eq(llm_client_run_once(t.c, 0), 0, "outside a callback it runs again");
  json_decref(t.body);
  llm_client_free(t.c);
}

static void add_endpoint_done(void *ud, const struct llm_result *res) {
  struct slot *sl = ud;
  struct reent *t = sl->t;
  slot_done(sl, res);
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "late";
  cfg.base_urls[0] = "sim";
  cfg.n_urls = 1;
  t->submit_rc = llm_client_add_endpoint(t->c, &cfg);
  if (!t->submit_rc)
    t->submit_rc = llm_submit(t->c, "late", t->body, slot_done, slot_attempt, &t->s[1]);
}

Test(llm_reentry, add_endpoint_from_done) {
  struct reent t = {.c = sim_client(64), .body = simple_body("m", "hello")};
  t.s[0].t = t.s[1].t = &t;
  cr_assert_eq(llm_submit(t.c, "s", t.body, add_endpoint_done, slot_attempt, &t.s[0]), 0);
  drain_passes(t.c);
  cr_assert_eq(t.submit_rc, 0, "%s", llm_client_errmsg(t.c));
  cr_assert_eq(t.s[1].r.done, 1);
  cr_assert_eq(t.s[1].r.rc, 0, "%s", t.s[1].r.error);
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(t.c, "late", &st), 0);
  cr_assert_eq(st.calls_ok, 1);
  json_decref(t.body);
  llm_client_free(t.c);
}

static void free_in_done(void *ud, const struct llm_result *res) {
  (void)res;
  llm_client_free(ud);
}

Test(llm_reentry, free_from_a_callback_aborts, .signal = SIGABRT) {
  llm_client *c = sim_client(64);
  json_t *b = simple_body("m", "hello");
  cr_assert_eq(llm_submit(c, "s", b, free_in_done, NULL, c), 0);
  drain_passes(c);
  cr_assert_fail("llm_client_free() from a callback returned");
}

Test(llm_reentry, cancel_all_from_an_attempt_that_will_retry) {
  static struct fake f;
  f.script[0] = http_resp(503, "", "busy");
  f.n = 1;
  fake_start(&f);
  struct reent t = {.c = fake_client(&f, 3, NULL), .body = simple_body("m", "hello")};
  t.s[0].t = &t;
  cr_assert_eq(llm_submit(t.c, "fake", t.body, slot_done, cancel_in_attempt, &t.s[0]), 0);
  drain_passes(t.c);
  cr_assert_eq(t.s[0].r.done, 1);
  cr_assert_eq(t.s[0].r.rc, AD_ECANCELED, "%s", t.s[0].r.error);
  cr_assert_eq(t.s[0].r.attempts_cb, 1, "the retry never starts");
  cr_assert_eq(t.s[0].r.retries_flagged, 1, "the attempt had a retry scheduled");
  struct llm_endpoint_stats st;
  cr_assert_eq(llm_client_endpoint_stats(t.c, "fake", &st), 0);
  cr_assert_eq(st.attempts, 1);
  cr_assert_eq(st.inflight + st.queued, 0);
  json_decref(t.body);
  llm_client_free(t.c);
}

/* ------------------------------------------------------------ tool calling */

Test(llm_tools, request_carries_tools_and_choice_and_key_covers_them) {
  json_t *m = user_msgs("hi");
  json_t *tools = json_array();
  json_array_append_new(
      tools, llm_tool_def("submit", "Submit a candidate",
                          json_pack("{s:s,s:{s:{s:s}},s:[s]}", "type", "object", "properties", "id",
                                    "type", "string", "required", "id")));
  json_t *choice = json_string("auto");
  struct llm_params p;
  llm_params_init(&p);
  p.tools = tools;
  p.tool_choice = choice;
  json_t *r = llm_request_build("m", m, &p);
  cr_assert_not_null(r);
  const json_t *t0 = json_array_get(json_object_get(r, "tools"), 0);
  cr_assert_str_eq(jx_str(t0, "type"), "function");
  cr_assert_str_eq(jx_str(json_object_get(t0, "function"), "name"), "submit");
  cr_assert_str_eq(json_string_value(json_object_get(r, "tool_choice")), "auto");
  /* the canonical text (the cache key's material) differs when only the tools differ */
  char *a = jx_dump_canonical(r);
  json_object_set_new(json_object_get(t0, "function"), "description", json_string("other"));
  char *b = jx_dump_canonical(r);
  cr_assert_str_neq(a, b);
  free(a);
  free(b);
  json_decref(r);
  /* tools must be an array */
  p.tools = choice;
  cr_assert_null(llm_request_build("m", m, &p));
  json_decref(tools);
  json_decref(choice);
  json_decref(m);
}

Test(llm_tools, reply_tool_calls_parse_strictly) {
  struct llm_reply r;
  char err[256];
  cr_assert_eq(
      parse("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
            "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"generate\","
            "\"arguments\":\"{\\\"n\\\": 2}\"}},"
            "{\"id\":\"call_2\",\"function\":{\"name\":\"give_up\",\"arguments\":\"not json\"}}]},"
            "\"finish_reason\":\"tool_calls\"}]}",
            &r, err),
      0, "%s", err);
  cr_assert_str_eq(r.content, "");
  struct llm_tool_call *c;
  int n;
  cr_assert_eq(llm_tool_calls_parse(r.tool_calls, &c, &n, err, sizeof err), 0, "%s", err);
  cr_assert_eq(n, 2);
  cr_assert_str_eq(c[0].id, "call_1");
  cr_assert_str_eq(c[0].name, "generate");
  cr_assert_str_eq(c[0].arguments, "{\"n\": 2}");
  cr_assert_str_eq(c[1].arguments, "not json", "arguments are kept as the text sent");
  /* the conversation's messages */
  json_t *am = llm_assistant_message("", c, n);
  cr_assert(json_is_null(json_object_get(am, "content")));
  const json_t *f1 = json_object_get(json_array_get(json_object_get(am, "tool_calls"), 1),
                                     "function");
  cr_assert_str_eq(jx_str(f1, "arguments"), "not json");
  json_decref(am);
  json_t *tm = llm_tool_message("call_2", "{\"ok\":true}");
  cr_assert_str_eq(jx_str(tm, "role"), "tool");
  cr_assert_str_eq(jx_str(tm, "tool_call_id"), "call_2");
  json_decref(tm);
  llm_tool_calls_free(c, n);
  llm_reply_release(&r);
  /* none */
  cr_assert_eq(llm_tool_calls_parse(NULL, &c, &n, err, sizeof err), 0);
  cr_assert_eq(n, 0);
}

static int tc_error(const char *json, char *err) {
  json_t *v = json_loads(json, 0, NULL);
  cr_assert_not_null(v, "%s", json);
  struct llm_tool_call *c = NULL;
  int n = 0;
  int rc = llm_tool_calls_parse(v, &c, &n, err, 256);
  cr_assert_null(c);
  json_decref(v);
  return rc;
}

Test(llm_tools, malformed_tool_calls_are_named) {
  char err[256];
  cr_assert_eq(tc_error("{}", err), AD_EPARSE);
  cr_assert(strstr(err, "expected an array"), "%s", err);
  cr_assert_eq(tc_error("[{\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}]", err), AD_EPARSE);
  cr_assert(strstr(err, "tool_calls[0].id"), "%s", err);
  cr_assert_eq(tc_error("[{\"id\":\"x\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}},"
                        "{\"id\":\"y\",\"function\":{\"name\":\"a\",\"arguments\":{}}}]",
                        err),
               AD_EPARSE);
  cr_assert(strstr(err, "tool_calls[1].function.arguments: expected a string"), "%s", err);
  cr_assert_eq(tc_error("[{\"id\":\"x\",\"type\":\"code\",\"function\":{\"name\":\"a\","
                        "\"arguments\":\"{}\"}}]",
                        err),
               AD_EPARSE);
  cr_assert(strstr(err, "tool_calls[0].type"), "%s", err);
  cr_assert_eq(tc_error("[{\"id\":\"x\",\"function\":{\"name\":\"\",\"arguments\":\"{}\"}}]", err),
               AD_EPARSE);
  cr_assert(strstr(err, "function.name"), "%s", err);
  /* too many calls in one reply */
  char big[4096] = "[";
  for (int i = 0; i <= LLM_MAX_TOOL_CALLS; i++)
    snprintf(big + strlen(big), sizeof big - strlen(big),
             "%s{\"id\":\"c%d\",\"function\":{\"name\":\"a\",\"arguments\":\"{}\"}}", i ? "," : "",
             i);
  strcat(big, "]");
  cr_assert_eq(tc_error(big, err), AD_EPARSE);
  cr_assert(strstr(err, "at most"), "%s", err);
}

Test(llm_tools, error_about_tools) {
  cr_assert(llm_error_about_tools(
      "server error: \"auto\" tool choice requires --enable-auto-tool-choice and --tool-call-parser "
      "to be set"));
  cr_assert(llm_error_about_tools("tools param requires --jinja flag"));
  cr_assert_not(llm_error_about_tools("maximum context length exceeded"));
  cr_assert_not(llm_error_about_tools(NULL));
}
