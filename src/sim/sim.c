/* sim.c - the sim backend as a pure function: routing, request validation, the
 * generic (non-world) reply, the OpenAI reply envelope, and fault specs.
 *
 * Replies are byte-identical for identical request bodies: ids come from a hash
 * of the canonical request, `created` is a fixed constant, and every draw is
 * derived from the request. No shared mutable state, so it is thread-safe.
 */
#include "sim/sim.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "sim/think.h"
#include "sim/world.h"
#include "sim/world_agent.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#define SIM_CREATED 1767225600 /* 2026-01-01T00:00:00Z: fixed so replies are stable */
#define SIM_MAX_N 128          /* OpenAI's own limit on "n" */
#define SIM_JSON "application/json"

static const char *const sim_models[] = {"sim-challenger", "sim-orchestrator", "sim-quality",
                                         "sim-judge",      "sim-solver@0.35",  "sim-solver@0.8"};

/* ---------------------------------------------------------------- replies */

/* body (taken) is the reply; NULL when it could not be built (jansson refused a value,
 * or the reply outgrew its cap): then a 500 that still is valid JSON. */
static void set_body(struct sim_response *out, int status, char *body) {
  out->status = status;
  out->content_type = SIM_JSON;
  if (!body) {
    out->status = 500;
    body = xstrdup(
        "{\"error\":{\"message\":\"sim: could not build the reply\",\"type\":\"server_error\"}}");
  }
  out->body = body;
  out->len = strlen(body);
}

/* An OpenAI-style error object. */
static void set_error(struct sim_response *out, int status, const char *type, const char *fmt, ...)
    AD_PRINTF(4, 5);
static void set_error(struct sim_response *out, int status, const char *type, const char *fmt,
                      ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  json_t *root = json_pack("{s:{s:o,s:s,s:n,s:n}}", "error", "message",
                           jx_string_lossy(msg, strlen(msg)), "type", type, "param", "code");
  set_body(out, status, root ? json_dumps(root, JSON_COMPACT) : NULL);
  json_decref(root);
}

static void handle_models(struct sim_response *out) {
  json_t *data = json_array();
  for (size_t i = 0; i < sizeof sim_models / sizeof *sim_models; i++)
    json_array_append_new(data,
                          json_pack("{s:s,s:s,s:i,s:s}", "id", sim_models[i], "object", "model",
                                    "created", SIM_CREATED, "owned_by", "autodata-sim"));
  json_t *root = json_pack("{s:s,s:o}", "object", "list", "data", data);
  set_body(out, 200, root ? json_dumps(root, JSON_COMPACT) : NULL);
  json_decref(root);
}

/* Characters of message text (string content, or the text parts of an array). */
static size_t content_chars(const json_t *content) {
  if (json_is_string(content)) return json_string_length(content);
  size_t n = 0, i;
  json_t *part;
  if (json_is_array(content)) json_array_foreach(content, i, part) {
      const json_t *t = json_object_get(part, "text");
      if (json_is_string(t)) n += json_string_length(t);
    }
  return n;
}

/* Validate messages and count their characters into *chars: 0, or AD_EINVAL with a
 * message in err. */
static int check_messages(const json_t *msgs, long long *chars, char *err, size_t errlen) {
  if (!json_is_array(msgs) || json_array_size(msgs) == 0) {
    ad_set_err(err, errlen, "'messages' must be a non-empty array");
    return AD_EINVAL;
  }
  *chars = 0;
  size_t i;
  json_t *m;
  json_array_foreach(msgs, i, m) {
    if (!json_is_object(m) || !json_is_string(json_object_get(m, "role"))) {
      ad_set_err(err, errlen, "messages[%zu]: must be an object with a string 'role'", i);
      return AD_EINVAL;
    }
    const json_t *c = json_object_get(m, "content");
    if (c && !json_is_string(c) && !json_is_array(c) && !json_is_null(c)) {
      ad_set_err(err, errlen, "messages[%zu].content: must be a string, an array or null", i);
      return AD_EINVAL;
    }
    const char *role = json_string_value(json_object_get(m, "role"));
    if (!strcmp(role, "tool") && !json_is_string(json_object_get(m, "tool_call_id"))) {
      ad_set_err(err, errlen, "messages[%zu]: a tool message needs a string 'tool_call_id'", i);
      return AD_EINVAL;
    }
    const json_t *tc = json_object_get(m, "tool_calls");
    if (tc && !json_is_null(tc) && !json_is_array(tc)) {
      ad_set_err(err, errlen, "messages[%zu].tool_calls: must be an array", i);
      return AD_EINVAL;
    }
    *chars += (long long)content_chars(c);
  }
  return 0;
}

/* Validate "tools" (absent, or an array of {"type":"function","function":{"name":...}}):
 * 0, or AD_EINVAL with a message in err. *n gets the number of tools. */
static int check_tools(const json_t *tools, size_t *n, char *err, size_t errlen) {
  *n = 0;
  if (!tools || json_is_null(tools)) return 0;
  if (!json_is_array(tools)) {
    ad_set_err(err, errlen, "'tools' must be an array");
    return AD_EINVAL;
  }
  size_t i;
  const json_t *t;
  json_array_foreach(tools, i, t) {
    const json_t *fn = json_object_get(t, "function");
    const char *type = json_string_value(json_object_get(t, "type"));
    if (!type || strcmp(type, "function") || !json_is_string(json_object_get(fn, "name"))) {
      ad_set_err(err, errlen,
                 "tools[%zu]: must be {\"type\": \"function\", \"function\": {\"name\": ...}}", i);
      return AD_EINVAL;
    }
  }
  *n = json_array_size(tools);
  return 0;
}

/* The text built in b when rc is 0 (owned by the caller), else NULL; b is released. */
static char *take_if_ok(struct buf *b, int rc) {
  if (!rc) return buf_take(b, NULL);
  buf_release(b);
  return NULL;
}

static const char *const sim_words[] = {
    "alpha",  "bravo",   "cobalt",  "delta", "ember",  "fjord",  "granite", "harbor",
    "indigo", "juniper", "kestrel", "lumen", "meadow", "nimbus", "opal",    "prism"};

/* The generic reply for a non-world model: a sentence that names the model and
 * carries a token and a few words derived from h. NULL when it would exceed the
 * buffer's default cap (a model name of hundreds of MiB). */
static char *generic_content(const char *model, uint64_t h) {
  struct rng r;
  rng_seed(&r, h);
  struct buf b = BUF_INIT;
  int rc = buf_printf(&b, "This is a simulated reply from %s (sim token %016" PRIx64 "):", model,
                      h);
  int words = 3 + (int)rng_below(&r, 6);
  for (int i = 0; i < words && !rc; i++)
    rc = buf_printf(&b, " %s", sim_words[rng_below(&r, sizeof sim_words / sizeof *sim_words)]);
  if (!rc) rc = buf_putc(&b, '.');
  return take_if_ok(&b, rc);
}

/* ---------------------------------------------------------------- the reply writer
 * The chat reply is serialised by hand: it is the hot path of the sim server
 * (json_dumps was a third of sim_handle's time). Strings are escaped as JSON
 * and invalid UTF-8 becomes U+FFFD, like jx_string_lossy(). */

static int put_str(struct buf *b, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s, *e = p + n;
  int rc = buf_putc(b, '"');
  while (!rc && p < e) {
    const unsigned char *run = p;
    while (p < e && *p >= 0x20 && *p < 0x80 && *p != '"' && *p != '\\') p++;
    if (p > run) rc = buf_append(b, run, (size_t)(p - run));
    if (rc || p >= e) break;
    unsigned c = *p;
    if (c >= 0x80) {
      size_t l = jx_utf8_seq(p, (size_t)(e - p));
      if (l) rc = buf_append(b, p, l), p += l;
      else rc = buf_append(b, "\xef\xbf\xbd", 3), p++;
      continue;
    }
    char esc[8];
    switch (c) {
    case '"': rc = buf_append(b, "\\\"", 2); break;
    case '\\': rc = buf_append(b, "\\\\", 2); break;
    case '\n': rc = buf_append(b, "\\n", 2); break;
    case '\r': rc = buf_append(b, "\\r", 2); break;
    case '\t': rc = buf_append(b, "\\t", 2); break;
    default: snprintf(esc, sizeof esc, "\\u%04x", c); rc = buf_append(b, esc, 6);
    }
    p++;
  }
  if (!rc) rc = buf_putc(b, '"');
  return rc;
}

static int put_int(struct buf *b, int64_t v) {
  char tmp[24], *q = tmp + sizeof tmp;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do *--q = (char)('0' + u % 10);
  while (u /= 10);
  if (v < 0) *--q = '-';
  return buf_append(b, q, (size_t)(tmp + sizeof tmp - q));
}

#define PUT(lit) (rc = rc ? rc : buf_append(&b, lit, sizeof lit - 1))

static char *write_reply(const char *id, const char *model, char **contents, json_t **calls,
                         char **reasonings, const int *cut, long long n, int64_t pt, int64_t ct) {
  struct buf b;
  buf_init(&b, AD_MAX_RESPONSE * 8);
  int rc = 0;
  PUT("{\"id\":");
  if (!rc) rc = put_str(&b, id, strlen(id));
  PUT(",\"object\":\"chat.completion\",\"created\":");
  if (!rc) rc = put_int(&b, SIM_CREATED);
  PUT(",\"model\":");
  if (!rc) rc = put_str(&b, model, strlen(model));
  PUT(",\"choices\":[");
  for (long long i = 0; i < n && !rc; i++) {
    if (i) PUT(",");
    PUT("{\"index\":");
    if (!rc) rc = put_int(&b, i);
    PUT(",\"message\":{\"role\":\"assistant\",\"content\":");
    if (calls[i] && !contents[i][0]) PUT("null");
    else if (!rc) rc = put_str(&b, contents[i], strlen(contents[i]));
    if (reasonings[i]) {
      PUT(",\"reasoning_content\":");
      if (!rc) rc = put_str(&b, reasonings[i], strlen(reasonings[i]));
    }
    if (calls[i]) {
      PUT(",\"tool_calls\":");
      if (!rc) rc = jx_dump_buf(calls[i], &b, JSON_COMPACT | JSON_PRESERVE_ORDER);
    }
    if (calls[i]) PUT("},\"logprobs\":null,\"finish_reason\":\"tool_calls\"}");
    else if (cut[i]) PUT("},\"logprobs\":null,\"finish_reason\":\"length\"}");
    else PUT("},\"logprobs\":null,\"finish_reason\":\"stop\"}");
  }
  PUT("],\"usage\":{\"prompt_tokens\":");
  if (!rc) rc = put_int(&b, pt);
  PUT(",\"completion_tokens\":");
  if (!rc) rc = put_int(&b, ct);
  PUT(",\"total_tokens\":");
  if (!rc) rc = put_int(&b, pt + ct);
  PUT("}}");
  return take_if_ok(&b, rc);
}

/* A sim solver's reasoning (think.h) for the world's answer *content to request r, whose
 * canonical text is cs: in *reasoning, or with tags=1 inside *content before the answer;
 * completion tokens *ct count it. A request's max_tokens cuts the reply as a reasoning
 * server does: *cut set, and no answer when the reasoning alone reaches the limit.
 * 0, or AD_EINVAL (err set) for a bad solver key. */
static int add_think(const json_t *r, const char *cs, char **content, char **reasoning, int *cut,
                     int64_t *ct, char *err, size_t errlen) {
  struct sim_think t;
  int rc = sim_think_of_model(jx_str(r, "model"), &t, err, errlen);
  if (rc <= 0 || t.tokens == 0) return rc < 0 ? rc : 0;
  size_t rlen = 0;
  char *text = sim_think_text(&t, rng_derive(hash64(cs, strlen(cs)), "think"), &rlen);
  if (!text) {
    ad_set_err(err, errlen, "the reasoning is too large");
    return AD_ETOOBIG;
  }
  size_t alen = strlen(*content);
  json_int_t max = json_integer_value(json_object_get(r, "max_tokens"));
  if (max > 0 && (json_int_t)((rlen + alen) / 4) > max) { /* cut off, as at finish "length" */
    *cut = 1;
    if ((json_int_t)(rlen / 4) >= max) {
      rlen = (size_t)max * 4;
      text[rlen] = '\0';
      (*content)[0] = '\0';
    } else {
      (*content)[(size_t)max * 4 - rlen] = '\0';
    }
  }
  if (t.tags) {
    char *c = xasprintf("<think>\n%s%s%s", text, *cut && !(*content)[0] ? "" : "\n</think>\n\n",
                        *content);
    *ct = (int64_t)(strlen(c) + 3) / 4;
    free(text);
    free(*content);
    *content = c;
  } else {
    *ct = (int64_t)(rlen + strlen(*content)) / 4;
    *reasoning = text;
  }
  if (*cut && *ct > max) *ct = max; /* the tags' own characters */
  if (*ct < 1) *ct = 1;
  return 0;
}

/* Answer choice i: the world model when it claims the model, else the generic
 * reply. canon0 is the canonical request, usable as choice 0's when the request
 * has no "n". Returns 0, or with err set AD_EINVAL (malformed for the world) or
 * AD_ETOOBIG (a reply past its cap). */
static int answer_choice(json_t *req, int i, uint64_t seed_base, const char *canon0,
                         long long prompt_chars, char **content, json_t **calls, char **reasoning,
                         int *cut, int64_t *pt, int64_t *ct, char *err, size_t errlen) {
  json_t *r = req;
  int fresh = i > 0 || json_object_get(req, "n");
  if (fresh) {
    r = json_copy(req); /* shallow: members shared, only top-level keys change */
    json_object_del(r, "n");
    if (i > 0)
      json_object_set_new(r, "seed",
                          json_integer((json_int_t)rng_derive(seed_base, "choice-%d", i)));
  }
  *content = NULL;
  *calls = NULL;
  *pt = *ct = 0;
  int rc = sim_agent_answer(r, content, calls, pt, ct, err, errlen);
  if (rc == 0) rc = sim_world_answer(r, content, pt, ct, err, errlen);
  if (rc == 1) {
    char *canon = fresh ? jx_dump_canonical(r) : NULL;
    int trc = add_think(r, fresh ? canon : canon0, content, reasoning, cut, ct, err, errlen);
    free(canon);
    if (trc) rc = trc;
  } else if (rc == 0) {
    char *canon = fresh ? jx_dump_canonical(r) : NULL;
    const char *cs = fresh ? canon : canon0;
    uint64_t h = hash64(cs, strlen(cs));
    free(canon);
    *content = generic_content(jx_str(r, "model"), h);
    *pt = (prompt_chars + 3) / 4;
    if (*pt < 1) *pt = 1;
    if (*content) {
      *ct = (int64_t)(strlen(*content) + 3) / 4;
    } else {
      rc = AD_ETOOBIG;
      ad_set_err(err, errlen, "the generic reply is too large");
    }
  } else if (rc < 0 && !err[0]) {
    ad_set_err(err, errlen, "malformed request for the sim world");
  }
  if (fresh) json_decref(r);
  return rc > 0 ? 0 : rc;
}

static void handle_chat(const char *body, size_t len, struct sim_response *out) {
  json_error_t jerr;
  json_t *req = json_loadb(body ? body : "", body ? len : 0, 0, &jerr);
  char **contents = NULL, **reasonings = NULL;
  int *cut = NULL;
  json_t **calls = NULL;
  char *canon = NULL;
  long long n = 1, done = 0;
  char err[512] = "";
  if (!req) {
    set_error(out, 400, "invalid_request_error",
              "invalid JSON in request body: %s (line %d, column %d)", jerr.text, jerr.line,
              jerr.column);
    return;
  }
  if (!json_is_object(req)) {
    set_error(out, 400, "invalid_request_error", "request body must be a JSON object");
    goto cleanup;
  }
  const char *model = jx_str(req, "model");
  if (!model || !*model) {
    set_error(out, 400, "invalid_request_error",
              "missing required parameter: 'model' (a non-empty string)");
    goto cleanup;
  }
  if (!json_object_get(req, "messages")) {
    set_error(out, 400, "invalid_request_error", "missing required parameter: 'messages'");
    goto cleanup;
  }
  long long chars;
  if (check_messages(json_object_get(req, "messages"), &chars, err, sizeof err)) {
    set_error(out, 400, "invalid_request_error", "%s", err);
    goto cleanup;
  }
  json_t *nv = json_object_get(req, "n");
  if (nv && !json_is_null(nv)) {
    if (!json_is_integer(nv) || json_integer_value(nv) < 1 || json_integer_value(nv) > SIM_MAX_N) {
      set_error(out, 400, "invalid_request_error", "'n' must be an integer from 1 to %d",
                SIM_MAX_N);
      goto cleanup;
    }
    n = json_integer_value(nv);
  }
  size_t n_tools;
  if (check_tools(json_object_get(req, "tools"), &n_tools, err, sizeof err)) {
    set_error(out, 400, "invalid_request_error", "%s", err);
    goto cleanup;
  }
  if (n_tools && !sim_agent_model(model)) { /* as llama-server without --jinja answers */
    set_error(out, 400, "invalid_request_error",
              "model '%.200s' does not support tools (the sim's tool-calling models are "
              "sim-agent and sim-hostile)",
              model);
    goto cleanup;
  }
  if (json_is_true(json_object_get(req, "stream"))) {
    set_error(out, 400, "invalid_request_error",
              "'stream': true is not supported by the sim backend; send stream false");
    goto cleanup;
  }

  canon = jx_dump_canonical(req);
  contents = xcalloc((size_t)n, sizeof *contents);
  reasonings = xcalloc((size_t)n, sizeof *reasonings);
  cut = xcalloc((size_t)n, sizeof *cut);
  calls = xcalloc((size_t)n, sizeof *calls);
  char hex[33];
  hash128_hex(canon, strlen(canon), hex);
  uint64_t seed_base = json_is_integer(json_object_get(req, "seed"))
                           ? (uint64_t)json_integer_value(json_object_get(req, "seed"))
                           : hash64(canon, strlen(canon));

  int64_t prompt_tokens = 0, completion_tokens = 0;
  for (; done < n; done++) {
    int64_t pt, ct;
    err[0] = 0;
    if (answer_choice(req, (int)done, seed_base, canon, chars, &contents[done], &calls[done],
                      &reasonings[done], &cut[done], &pt, &ct, err, sizeof err)) {
      set_error(out, 400, "invalid_request_error", "%s", err);
      goto cleanup;
    }
    if (done == 0) prompt_tokens = pt;
    completion_tokens += ct;
  }
  char id[64];
  snprintf(id, sizeof id, "chatcmpl-sim%.24s", hex);
  set_body(out, 200,
           write_reply(id, model, contents, calls, reasonings, cut, n, prompt_tokens,
                       completion_tokens));

cleanup:
  for (long long i = 0; contents && i <= done && i < n; i++) {
    free(contents[i]);
    free(reasonings[i]);
    json_decref(calls[i]);
  }
  free(contents);
  free(reasonings);
  free(cut);
  free(calls);
  free(canon);
  json_decref(req);
}

/* ---------------------------------------------------------------- routing */

enum route { ROUTE_NONE, ROUTE_CHAT, ROUTE_MODELS };

static enum route route_of(const char *path) {
  if (!path) return ROUTE_NONE;
  size_t n = strcspn(path, "?#");
  if (n >= 3 && !strncmp(path, "/v1", 3) && (n == 3 || path[3] == '/')) path += 3, n -= 3;
  while (n > 1 && path[n - 1] == '/') n--; /* tolerate a trailing slash */
  if (n == 17 && !strncmp(path, "/chat/completions", 17)) return ROUTE_CHAT;
  if (n == 7 && !strncmp(path, "/models", 7)) return ROUTE_MODELS;
  return ROUTE_NONE;
}

void sim_handle(const char *method, const char *path, const char *body, size_t len,
                struct sim_response *out) {
  memset(out, 0, sizeof *out);
  if (!method) method = "";
  switch (route_of(path)) {
  case ROUTE_CHAT:
    if (strcmp(method, "POST")) {
      set_error(out, 405, "invalid_request_error", "method %.16s not allowed on %.200s (use POST)",
                method, path);
      return;
    }
    handle_chat(body, len, out);
    return;
  case ROUTE_MODELS:
    if (strcmp(method, "GET")) {
      set_error(out, 405, "invalid_request_error", "method %.16s not allowed on %.200s (use GET)",
                method, path);
      return;
    }
    handle_models(out);
    return;
  default:
    set_error(out, 404, "invalid_request_error",
              "unknown endpoint %.16s %.200s (the sim serves POST /v1/chat/completions and "
              "GET /v1/models)",
              method, path ? path : "");
  }
}

void sim_response_release(struct sim_response *r) {
  if (!r) return;
  free(r->body);
  r->body = NULL;
  r->len = 0;
}

/* ---------------------------------------------------------------- faults */

static const char *const fault_names[] = {"none", "429",     "500",  "503",
                                          "drop", "garbage", "slow", "truncate"};

const char *sim_fault_name(enum sim_fault f) {
  return (unsigned)f < sizeof fault_names / sizeof *fault_names ? fault_names[f] : "?";
}

int sim_faults_parse(const char *spec, struct sim_faults *out, char *err, size_t errlen) {
  struct sim_faults f;
  memset(&f, 0, sizeof f);
  f.retry_after_s = 1;
  f.slow_ms = 2000;
  if (errlen) err[0] = 0;
  const char *p = spec ? spec : "";
  int seen[8] = {0};
  double sum = 0;
  while (*p) {
    size_t n = strcspn(p, ",");
    char item[128];
    snprintf(item, sizeof item, "%.*s", (int)(n < 127 ? n : 127), p);
    /* trim */
    char *s = item, *e = item + strlen(item);
    while (isspace((unsigned char)*s)) s++;
    while (e > s && isspace((unsigned char)e[-1])) *--e = 0;
    if (*s) {
      char *eq = strchr(s, '=');
      if (!eq) {
        ad_set_err(err, errlen, "fault spec item '%s': expected KIND=PROBABILITY", s);
        return AD_EINVAL;
      }
      *eq = 0;
      char *k = s, *v = eq + 1, *ke = eq;
      while (ke > k && isspace((unsigned char)ke[-1])) *--ke = 0;
      while (isspace((unsigned char)*v)) v++;
      int kind = 0;
      for (int i = 1; i < 8; i++)
        if (!strcasecmp(k, fault_names[i])) kind = i;
      if (!kind) {
        ad_set_err(err, errlen,
                   "fault spec item '%s=%s': unknown kind '%s' (known: 429, 500, 503, drop, "
                   "garbage, slow, truncate)",
                   k, v, k);
        return AD_EINVAL;
      }
      char *end;
      errno = 0;
      double x = strtod(v, &end);
      if (!*v || *end || errno || !isfinite(x) || x < 0 || x > 1) {
        ad_set_err(err, errlen, "fault spec item '%s=%s': probability must be a number from 0 to 1",
                   k, v);
        return AD_EINVAL;
      }
      if (seen[kind]++) {
        ad_set_err(err, errlen, "fault spec item '%s=%s': kind '%s' given twice", k, v, k);
        return AD_EINVAL;
      }
      f.p[kind] = x;
      sum += x;
    }
    p += n;
    if (*p == ',') p++;
  }
  if (sum > 1 + 1e-9) {
    ad_set_err(err, errlen, "fault spec '%s': probabilities sum to %g, must be at most 1", spec,
               sum);
    return AD_EINVAL;
  }
  *out = f;
  return 0;
}

enum sim_fault sim_faults_draw(const struct sim_faults *f, double u) {
  double cum = 0;
  for (int i = 1; i < 8; i++) {
    if (f->p[i] <= 0) continue;
    cum += f->p[i];
    if (u < cum) return (enum sim_fault)i;
  }
  return SIM_FAULT_NONE;
}
