/* message.c - Chat Completions request bodies and reply parsing (no I/O). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "llm/retry.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/mem.h"

void llm_params_init(struct llm_params *p) {
  memset(p, 0, sizeof *p);
  p->temperature = LLM_UNSET;
  p->top_p = LLM_UNSET;
}

/* Set key to a copy of v (borrowed). Returns 0, or AD_EINVAL when v cannot be copied
 * (it contains itself). */
static int set_copy(json_t *obj, const char *key, const json_t *v) {
  json_t *c = json_deep_copy(v);
  return c && !json_object_set_new(obj, key, c) ? 0 : AD_EINVAL;
}

json_t *llm_request_build(const char *model, const json_t *messages, const struct llm_params *p) {
  if (!model || !*model || !json_is_array(messages)) return NULL;
  struct llm_params dflt;
  if (!p) {
    llm_params_init(&dflt);
    p = &dflt;
  }
  json_t *req = json_object();
  int bad = json_object_set_new(req, "model", json_string(model));
  bad |= set_copy(req, "messages", messages);
  if (p->temperature != LLM_UNSET)
    bad |= json_object_set_new(req, "temperature", json_real(p->temperature));
  if (p->top_p != LLM_UNSET) bad |= json_object_set_new(req, "top_p", json_real(p->top_p));
  if (p->max_tokens > 0) bad |= json_object_set_new(req, "max_tokens", json_integer(p->max_tokens));
  if (p->has_seed) bad |= json_object_set_new(req, "seed", json_integer((json_int_t)p->seed));
  if (p->stop) {
    if (!json_is_string(p->stop) && !json_is_array(p->stop)) goto fail;
    bad |= set_copy(req, "stop", p->stop);
  }
  if (p->response_format) {
    if (!json_is_object(p->response_format)) goto fail;
    bad |= set_copy(req, "response_format", p->response_format);
  }
  if (p->tools) {
    if (!json_is_array(p->tools)) goto fail;
    bad |= set_copy(req, "tools", p->tools);
  }
  if (p->tool_choice) bad |= set_copy(req, "tool_choice", p->tool_choice);
  if (p->extra) {
    if (!json_is_object(p->extra)) goto fail;
    json_t *x = json_deep_copy(p->extra);
    /* Per-call extras merge last: nested objects (chat_template_kwargs) merge key by key. */
    bad |= !x || json_object_update_recursive(req, x);
    json_decref(x);
  }
  if (bad) goto fail;
  return req;
fail:
  json_decref(req);
  return NULL;
}

static char *dup_json_str(const json_t *v) {
  return xstrndup(json_string_value(v), json_string_length(v));
}

/* message.content may be a string, null, or an array of parts ({"type":"text","text":...};
 * "thinking"/"reasoning" parts are left out).
 * NULL only when the parts together exceed AD_MAX_RESPONSE. */
static char *content_text(const json_t *v) {
  if (json_is_string(v)) return dup_json_str(v);
  if (json_is_array(v)) {
    struct buf b;
    buf_init(&b, AD_MAX_RESPONSE);
    size_t i;
    const json_t *part;
    json_array_foreach(v, i, part) {
      const char *type = json_string_value(json_object_get(part, "type"));
      if (type && (strstr(type, "thinking") || strstr(type, "reasoning")))
        continue; /* a reasoning part is not the answer */
      const json_t *t = json_is_string(part) ? part : json_object_get(part, "text");
      if (json_is_string(t) && buf_append(&b, json_string_value(t), json_string_length(t))) {
        buf_release(&b);
        return NULL;
      }
    }
    return buf_take(&b, NULL);
  }
  return xstrdup("");
}

/* "message" of an error object (or the error itself when it is a string), one line. */
static void error_text(const json_t *e, char *err, size_t errlen) {
  const char *msg = NULL;
  size_t n = 0;
  const json_t *m = json_is_object(e) ? json_object_get(e, "message") : e;
  if (json_is_string(m)) {
    msg = json_string_value(m);
    n = json_string_length(m);
  }
  char clean[240];
  if (msg) llm_sanitize(msg, n, clean, sizeof clean);
  else {
    char *dump = json_dumps(e, JSON_COMPACT);
    llm_sanitize(dump ? dump : "?", dump ? strlen(dump) : 1, clean, sizeof clean);
    free(dump);
  }
  const char *type = json_is_object(e) ? json_string_value(json_object_get(e, "type")) : NULL;
  if (type) ad_set_err(err, errlen, "server error (%s): %s", type, clean);
  else ad_set_err(err, errlen, "server error: %s", clean);
}

static int64_t usage_int(const json_t *u, const char *k) {
  const json_t *v = json_object_get(u, k);
  if (json_is_integer(v)) return (int64_t)json_integer_value(v);
  if (json_is_real(v)) return (int64_t)json_real_value(v);
  return 0;
}

int llm_reply_parse(const char *body, size_t len, struct llm_reply *out, char *err, size_t errlen) {
  char dummy[8];
  if (!err || !errlen) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = 0;
  memset(out, 0, sizeof *out);
  if (!body || len == 0) {
    ad_set_err(err, errlen, "empty body");
    return AD_EPARSE;
  }
  if (len > AD_MAX_RESPONSE) {
    ad_set_err(err, errlen, "reply of %zu bytes exceeds the %u MiB limit", len,
               AD_MAX_RESPONSE / (1024 * 1024));
    return AD_EPARSE;
  }
  json_error_t je;
  json_t *root = json_loadb(body, len, 0, &je);
  if (!root) {
    int truncated = strstr(je.text, "premature end of input") || strstr(je.text, "unexpected end");
    char why[JSON_ERROR_TEXT_LENGTH];
    llm_sanitize(je.text, strlen(je.text), why, sizeof why);
    ad_set_err(err, errlen, "%s (%s at byte %d)", truncated ? "truncated JSON" : "not JSON", why,
               je.position);
    return AD_EPARSE;
  }
  int rc = AD_EPARSE;
  if (!json_is_object(root)) {
    ad_set_err(err, errlen, "top-level JSON value is not an object");
    goto done;
  }
  const json_t *e = json_object_get(root, "error");
  if (e && !json_is_null(e)) {
    error_text(e, err, errlen);
    rc = AD_EHTTP;
    goto done;
  }
  const json_t *choices = json_object_get(root, "choices");
  const json_t *c0 = json_array_get(choices, 0);
  if (!json_is_object(c0)) {
    ad_set_err(err, errlen, "reply has no choices[0] object");
    goto done;
  }
  const json_t *msg = json_object_get(c0, "message");
  if (!json_is_object(msg)) {
    ad_set_err(err, errlen, "choices[0] has no message object");
    goto done;
  }
  out->content = content_text(json_object_get(msg, "content"));
  if (!out->content) {
    ad_set_err(err, errlen, "message content exceeds the %u MiB limit",
               AD_MAX_RESPONSE / (1024 * 1024));
    goto done;
  }
  const json_t *rsn = json_object_get(msg, "reasoning_content");
  if (!json_is_string(rsn)) rsn = json_object_get(msg, "reasoning");
  if (json_is_string(rsn)) out->reasoning_content = dup_json_str(rsn);
  const json_t *tc = json_object_get(msg, "tool_calls");
  if (json_is_array(tc) && json_array_size(tc) > 0) out->tool_calls = json_incref((json_t *)tc);
  const json_t *fr = json_object_get(c0, "finish_reason");
  if (json_is_string(fr)) out->finish_reason = dup_json_str(fr);
  const json_t *model = json_object_get(root, "model");
  if (json_is_string(model)) out->model = dup_json_str(model);
  const json_t *u = json_object_get(root, "usage");
  if (json_is_object(u)) {
    out->prompt_tokens = usage_int(u, "prompt_tokens");
    out->completion_tokens = usage_int(u, "completion_tokens");
    out->total_tokens = usage_int(u, "total_tokens");
    if (!json_object_get(u, "total_tokens"))
      out->total_tokens = out->prompt_tokens + out->completion_tokens;
  }
  rc = 0;
done:
  if (rc) llm_reply_release(out);
  json_decref(root);
  return rc;
}

void llm_reply_release(struct llm_reply *r) {
  if (!r) return;
  free(r->content);
  free(r->reasoning_content);
  json_decref(r->tool_calls);
  free(r->finish_reason);
  free(r->model);
  memset(r, 0, sizeof *r);
}

/* ---- tool calling ------------------------------------------------------------------ */

json_t *llm_tool_def(const char *name, const char *description, json_t *parameters) {
  return json_pack("{s:s,s:{s:s,s:s,s:o}}", "type", "function", "function", "name", name,
                   "description", description, "parameters", parameters);
}

void llm_tool_calls_free(struct llm_tool_call *calls, int n) {
  for (int i = 0; calls && i < n; i++) {
    free(calls[i].id);
    free(calls[i].name);
    free(calls[i].arguments);
  }
  free(calls);
}

/* A string member of o of at most cap bytes (and not empty unless allow_empty), copied
 * into *out; else AD_EPARSE naming where.key. */
static int tool_str(const json_t *o, const char *key, size_t cap, int allow_empty,
                    const char *where, char **out, char *err, size_t errlen) {
  const json_t *v = json_object_get(o, key);
  if (!json_is_string(v)) {
    ad_set_err(err, errlen, "%s.%s: expected a string", where, key);
    return AD_EPARSE;
  }
  size_t len = json_string_length(v);
  if ((!len && !allow_empty) || len > cap) {
    ad_set_err(err, errlen, "%s.%s: expected %s of at most %zu bytes, got %zu", where, key,
               allow_empty ? "a string" : "a non-empty string", cap, len);
    return AD_EPARSE;
  }
  *out = dup_json_str(v);
  return 0;
}

int llm_tool_calls_parse(const json_t *tool_calls, struct llm_tool_call **calls, int *n, char *err,
                         size_t errlen) {
  *calls = NULL;
  *n = 0;
  if (!tool_calls || json_is_null(tool_calls)) return 0;
  if (!json_is_array(tool_calls)) {
    ad_set_err(err, errlen, "tool_calls: expected an array");
    return AD_EPARSE;
  }
  size_t count = json_array_size(tool_calls);
  if (count > LLM_MAX_TOOL_CALLS) {
    ad_set_err(err, errlen, "tool_calls: %zu calls in one reply, at most %d are taken", count,
               LLM_MAX_TOOL_CALLS);
    return AD_EPARSE;
  }
  if (!count) return 0;
  struct llm_tool_call *c = xcalloc(count, sizeof *c);
  for (size_t i = 0; i < count; i++) {
    const json_t *tc = json_array_get(tool_calls, i);
    char where[48];
    snprintf(where, sizeof where, "tool_calls[%zu]", i);
    const json_t *type = json_object_get(tc, "type");
    const json_t *fn = json_object_get(tc, "function");
    int rc = 0;
    if (!json_is_object(tc)) {
      ad_set_err(err, errlen, "%s: expected an object", where);
      rc = AD_EPARSE;
    } else if (type && !(json_is_string(type) && !strcmp(json_string_value(type), "function"))) {
      ad_set_err(err, errlen, "%s.type: expected \"function\"", where);
      rc = AD_EPARSE;
    } else if (!json_is_object(fn)) {
      ad_set_err(err, errlen, "%s.function: expected an object", where);
      rc = AD_EPARSE;
    } else {
      char fwhere[64];
      snprintf(fwhere, sizeof fwhere, "%s.function", where);
      rc = tool_str(tc, "id", LLM_MAX_TOOL_ID, 0, where, &c[i].id, err, errlen);
      if (!rc) rc = tool_str(fn, "name", LLM_MAX_TOOL_NAME, 0, fwhere, &c[i].name, err, errlen);
      if (!rc)
        rc = tool_str(fn, "arguments", LLM_MAX_TOOL_ARGS, 1, fwhere, &c[i].arguments, err, errlen);
    }
    if (rc) {
      llm_tool_calls_free(c, (int)count);
      return rc;
    }
  }
  *calls = c;
  *n = (int)count;
  return 0;
}

json_t *llm_assistant_message(const char *content, const struct llm_tool_call *calls, int n) {
  json_t *m = json_object();
  json_object_set_new(m, "role", json_string("assistant"));
  json_object_set_new(
      m, "content", content && *content ? jx_string_lossy(content, strlen(content)) : json_null());
  if (n > 0) {
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
      json_array_append_new(
          a,
          json_pack("{s:o,s:s,s:{s:o,s:o}}", "id",
                    jx_string_lossy(calls[i].id, strlen(calls[i].id)), "type", "function",
                    "function", "name", jx_string_lossy(calls[i].name, strlen(calls[i].name)),
                    "arguments", jx_string_lossy(calls[i].arguments, strlen(calls[i].arguments))));
    json_object_set_new(m, "tool_calls", a);
  }
  return m;
}

json_t *llm_tool_message(const char *tool_call_id, const char *content) {
  return json_pack("{s:s,s:o,s:o}", "role", "tool", "tool_call_id",
                   jx_string_lossy(tool_call_id, strlen(tool_call_id)), "content",
                   jx_string_lossy(content, strlen(content)));
}

int llm_error_about_tools(const char *error) {
  if (!error) return 0;
  return strcasestr(error, "tool") != NULL || strcasestr(error, "--jinja") != NULL ||
         strcasestr(error, "function call") != NULL;
}
