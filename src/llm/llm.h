/* llm.h - the asynchronous model client (OpenAI-compatible Chat Completions).
 *
 * One llm_client drives every model call of a process from one event loop
 * (libcurl multi + timers). Callers submit requests with a completion callback
 * and then pump the loop with llm_client_run_once().
 *
 * CALLBACK CONTRACT (libuv's rule): if llm_submit() returns an error, neither
 * callback is ever called for that request. If it returns 0, `done` is called
 * exactly once, always from inside llm_client_run_once() and never from inside
 * llm_submit(). `attempt` (optional) is called once per attempt, before `done`,
 * so the store can record every attempt.
 *
 * RE-ENTRANCY: a callback (`done` or `attempt`) may call every function of its
 * own client except llm_client_run_once() and llm_client_free().
 * - It may submit (llm_submit, llm_submit_serialized): the new call is queued
 *   and starts in a later llm_client_run_once(), so its callbacks never fire
 *   inside the submit nor in the pass that submitted it. A chain of calls, each
 *   submitted from the previous one's `done`, advances at most one call per pass.
 * - It may call llm_client_cancel_all(): every call outstanding at that moment
 *   gets exactly one `done`, with AD_ECANCELED (in the running pass if its
 *   attempt finishes in it, else in the next); calls submitted after it are not
 *   affected. The call whose `done` is running has already finished and is not
 *   affected. A call whose `attempt` is running ends with that attempt's outcome
 *   if it was the last, else its retry is canceled.
 * - It may add an endpoint and submit to it at once, and read
 *   llm_client_pending() (a call whose `done` is running no longer counts),
 *   llm_client_endpoint_stats(), llm_client_errmsg() and llm_merge_extra().
 * - llm_client_run_once() from a callback returns AD_EBUSY and does nothing
 *   else (the message is in llm_client_errmsg()).
 * - llm_client_free() from a callback is a programming error (the loop that
 *   runs the callback still uses the client): it prints a message and aborts.
 *
 * Endpoints: each has a configured name (used in cache keys, logs, errors) and
 * one or more base URLs (least-outstanding balancing, failover when one is
 * down). The base URL "sim" selects the in-process sim backend (src/sim/sim.h):
 * same request, same reply as `autodata sim-server` over HTTP.
 *
 * Admission control is ours: at most max_inflight transfers are inside curl per
 * endpoint (adaptive within that bound); the rest wait in our queue, so the
 * request timeout measures the request, not the queue.
 *
 * Secrets: the API key is read from the environment variable named by
 * api_key_env at llm_client_add_endpoint() time; it is never logged, never put
 * in an error message and never part of a request body or cache key.
 *
 * Not thread-safe: one client per thread.
 */
#ifndef AD_LLM_H
#define AD_LLM_H

#include <jansson.h>
#include <stdint.h>

#include "util/err.h"

typedef struct llm_client llm_client;

#define LLM_MAX_URLS 16
#define LLM_MAX_HEADERS 32

struct llm_endpoint_config {
  const char *name;                    /* configured name, e.g. "local-vllm" */
  const char *base_urls[LLM_MAX_URLS]; /* "http://127.0.0.1:8000/v1" or "sim" */
  int n_urls;
  const char *api_key_env;              /* env var holding the key; NULL = none */
  const char *headers[LLM_MAX_HEADERS]; /* extra "Name: value" headers */
  int n_headers;
  int max_inflight;         /* transfers inside curl; default 64 */
  double requests_per_min;  /* 0 = unlimited */
  double tokens_per_min;    /* 0 = unlimited (estimated from usage) */
  int connect_timeout_ms;   /* default 10000 */
  int request_timeout_ms;   /* default 600000 */
  int max_retries;          /* per call; default 8 */
  int backoff_base_ms;      /* default 500 */
  int backoff_max_ms;       /* default 30000 */
  int adaptive;             /* adaptive concurrency (default on: 1) */
  const json_t *extra_body; /* merged into every request (borrowed, copied) */
};
/* Fill cfg with the defaults above (adaptive = 1, max_retries = 8, ...). A zeroed
 * config also works: zero/negative numbers mean the default, except max_retries,
 * where 0 means "no retries" and only a negative value means the default, and
 * adaptive, where 0 means off. */
void llm_endpoint_config_init(struct llm_endpoint_config *cfg);

/* Sampling parameters. Fields left at their LLM_UNSET value are omitted. */
#define LLM_UNSET (-1.0)
struct llm_params {
  double temperature; /* LLM_UNSET to omit */
  double top_p;       /* LLM_UNSET to omit */
  int max_tokens;     /* <= 0 to omit */
  int has_seed;
  int64_t seed;
  const json_t *stop;            /* string or array, or NULL */
  const json_t *response_format; /* e.g. {"type":"json_schema",...}, or NULL */
  const json_t *tools;           /* array, or NULL */
  const json_t *tool_choice;     /* or NULL */
  const json_t *extra;           /* object merged last (per-role extras), or NULL */
};
void llm_params_init(struct llm_params *p);

/* Build a Chat Completions request body. messages is borrowed (copied in).
 * Returns a new reference, or NULL on bad arguments (no model, messages not an
 * array, a parameter of the wrong JSON type, a model name that is not UTF-8). */
json_t *llm_request_build(const char *model, const json_t *messages, const struct llm_params *p);

/* A parsed reply. Strings are owned by the reply; free with llm_reply_release(). */
struct llm_reply {
  char *content;           /* "" when the server sent null content */
  char *reasoning_content; /* NULL when absent */
  json_t *tool_calls;      /* array or NULL */
  char *finish_reason;     /* NULL when absent */
  char *model;             /* model the server reports, NULL when absent */
  int64_t prompt_tokens;
  int64_t completion_tokens;
  int64_t total_tokens;
};
/* Parse a response body. Returns 0, AD_EPARSE (not JSON / wrong shape / content past
 * AD_MAX_RESPONSE) or AD_EHTTP (an {"error":...} object). err receives a one-line
 * description. */
int llm_reply_parse(const char *body, size_t len, struct llm_reply *out, char *err, size_t errlen);
void llm_reply_release(struct llm_reply *r);

/* ---- tool calling (OpenAI `tools` / `tool_calls`) ------------------------------------
 * A request offers functions in llm_params.tools (llm_tool_def) with tool_choice; a reply
 * may call them (llm_reply.tool_calls, read strictly with llm_tool_calls_parse); the
 * conversation goes on with the assistant's message (llm_assistant_message) and one
 * `role: tool` message per call (llm_tool_message). Everything a model sends is untrusted
 * text: a name is only compared, the arguments are kept as the exact string sent. */
#define LLM_MAX_TOOL_CALLS 16   /* calls in one reply */
#define LLM_MAX_TOOL_NAME 64    /* bytes of a function name */
#define LLM_MAX_TOOL_ID 128     /* bytes of a call id */
#define LLM_MAX_TOOL_ARGS 65536 /* bytes of one call's arguments string */

struct llm_tool_call {
  char *id;        /* the call's id, as sent */
  char *name;      /* the function's name, as sent (untrusted) */
  char *arguments; /* the arguments string, as sent (untrusted; may not be JSON) */
};

/* {"type":"function","function":{"name","description","parameters"}}; parameters (a JSON
 * Schema object) is taken. New reference. */
json_t *llm_tool_def(const char *name, const char *description, json_t *parameters);
/* Read a reply's tool_calls (NULL: none) strictly: an array of at most LLM_MAX_TOOL_CALLS
 * objects, each with a non-empty string "id", "type" absent or "function", and a
 * "function" object with a non-empty string "name" and a string "arguments", within the
 * caps above. Returns 0 with *calls (owned, *n entries; NULL when 0), or AD_EPARSE with
 * err naming the entry and field ("tool_calls[1].function.arguments: expected a string"). */
int llm_tool_calls_parse(const json_t *tool_calls, struct llm_tool_call **calls, int *n, char *err,
                         size_t errlen);
void llm_tool_calls_free(struct llm_tool_call *calls, int n);
/* The assistant message of a reply: {"role":"assistant","content":<text or null>,
 * "tool_calls":[...]} (tool_calls left out when n is 0). New reference. */
json_t *llm_assistant_message(const char *content, const struct llm_tool_call *calls, int n);
/* {"role":"tool","tool_call_id":id,"content":content}. New reference. */
json_t *llm_tool_message(const char *tool_call_id, const char *content);
/* 1 when a server's error message says it does not take tools (vLLM without
 * --enable-auto-tool-choice, llama.cpp without --jinja, a model without a tool template). */
int llm_error_about_tools(const char *error);

/* One attempt of one call, as reported to the attempt callback. */
struct llm_attempt {
  int number;           /* 1-based */
  const char *endpoint; /* configured endpoint name */
  const char *url;      /* base URL tried (never carries a key) */
  int http_status;      /* 0 when no HTTP answer */
  int transport_error;  /* curl code, 0 if none */
  int64_t latency_us;
  int retry;              /* 1 if another attempt follows */
  int64_t retry_after_ms; /* delay before the next attempt */
  const char *error;      /* NULL on success, else a one-line diagnosis */
};

/* The final outcome of a call. Everything is borrowed for the callback's duration. */
struct llm_result {
  int rc;                        /* 0 ok, else AD_EHTTP / AD_ENET / AD_ETIMEOUT / AD_EPARSE /
                                    AD_ETOOBIG (reply past AD_MAX_RESPONSE) / AD_ECANCELED /
                                    AD_ENOMEM (curl could not start a transfer) */
  const char *error;             /* NULL on success; "endpoint 'x' (url): what it answered" */
  const struct llm_reply *reply; /* valid when rc == 0 */
  const char *body;              /* raw response body of the last attempt; NULL when no
                                    attempt of the call received a body byte */
  size_t body_len;
  int http_status; /* of the last attempt */
  int attempts;
  int64_t latency_us; /* submit to completion */
  const char *endpoint;
};

typedef void (*llm_done_fn)(void *ud, const struct llm_result *res);
typedef void (*llm_attempt_fn)(void *ud, const struct llm_attempt *a);

/* A new client; NULL only when curl cannot create its multi handle. */
llm_client *llm_client_new(void);
/* Seed the retry-jitter generator (a fixed default seed otherwise, so runs and
 * tests are reproducible). */
void llm_client_set_seed(llm_client *c, uint64_t seed);
/* Copies everything it needs from cfg. Returns 0, AD_EINVAL, AD_EEXISTS for a
 * duplicate name, or AD_ENOMEM when curl cannot allocate a header list; the message
 * is in llm_client_errmsg(). */
AD_WUR int llm_client_add_endpoint(llm_client *c, const struct llm_endpoint_config *cfg);
/* The last error message set on the client (borrowed). */
const char *llm_client_errmsg(const llm_client *c);

/* Submit a request body (borrowed; serialised at once) to a named endpoint.
 * Returns 0, AD_ENOTFOUND (no such endpoint), AD_EINVAL (body not a JSON object, no
 * done, or a body that cannot be merged with the endpoint's extra_body) or
 * AD_ETOOBIG (serialised body past AD_MAX_REQUEST); the message is in
 * llm_client_errmsg(). */
AD_WUR int llm_submit(llm_client *c, const char *endpoint, const json_t *body, llm_done_fn done,
                      llm_attempt_fn attempt, void *ud);

/* The body as it goes on the wire: a copy of the endpoint's extra_body with
 * body's fields merged over it recursively (the request's own fields win), or a
 * plain copy when the endpoint has no extras. New reference; NULL for an
 * unknown endpoint, or a body that is not an object (or contains itself). */
json_t *llm_merge_extra(const llm_client *c, const char *endpoint, const json_t *body);

/* Like llm_submit(), for a caller that serialises the body anyway (e.g. for a
 * cache key): body must already be merged (llm_merge_extra) and text[0..len)
 * is its serialisation, sent as is (copied; any key order). body is read only
 * for estimates (max_tokens). Same callback contract and errors as llm_submit(),
 * plus AD_ETOOBIG past AD_MAX_REQUEST. */
AD_WUR int llm_submit_serialized(llm_client *c, const char *endpoint, const json_t *body,
                                 const char *text, size_t len, llm_done_fn done,
                                 llm_attempt_fn attempt, void *ud);

/* Drive transfers and timers for at most max_wait_ms, firing callbacks.
 * Returns the number of calls still outstanding (queued + in flight + backing off),
 * or AD_EBUSY, doing nothing, when called from inside a callback (RE-ENTRANCY). */
int llm_client_run_once(llm_client *c, int max_wait_ms);
/* Outstanding calls. */
int llm_client_pending(const llm_client *c);
/* Wake a llm_client_run_once() waiting for transfers (or the next one, when none is
 * waiting). The only function that may be called from another thread. */
void llm_client_wakeup(llm_client *c);
/* Cancel everything outstanding: each pending call's done fires once with
 * AD_ECANCELED from the loop, never from inside this function. Calls submitted
 * afterwards are not affected. Allowed from a callback (RE-ENTRANCY). */
void llm_client_cancel_all(llm_client *c);
/* Free the client. Outstanding calls are dropped without callbacks. Never from
 * inside a callback of this client: that aborts (RE-ENTRANCY). */
void llm_client_free(llm_client *c);

/* Per-endpoint counters for progress and benchmarks. */
struct llm_endpoint_stats {
  int64_t calls_ok, calls_failed, attempts, retries;
  int64_t prompt_tokens, completion_tokens;
  int inflight, queued, concurrency_limit;
};
/* Fill *out for the named endpoint: 0, or AD_ENOTFOUND (no such endpoint). */
int llm_client_endpoint_stats(const llm_client *c, const char *endpoint,
                              struct llm_endpoint_stats *out);

#endif
