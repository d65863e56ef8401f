/* cmd_chat.c - `autodata chat`: one model call, to check an endpoint.
 *
 * Prints the reply content (reasoning, when the server sends it, comes first
 * between markers) and a usage line; --json prints the raw reply body instead.
 * A down server or a garbage reply gives a one-line diagnosis naming the
 * endpoint and exit 1, within the timeout and retry settings.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "llm/llm.h"

enum { O_BASE = 1, O_MODEL, O_SYSTEM, O_JSON, O_KEY, O_TEMP, O_MAXTOK, O_TIMEOUT, O_RETRIES };
static const struct opts_spec chat_opts[] = {
    {"base-url", "URL", O_BASE, "e.g. http://127.0.0.1:8000/v1, or \"sim\" (in-process sim)"},
    {"model", "M", O_MODEL, "model name"},
    {"system", "TEXT", O_SYSTEM, "system message"},
    {"json", NULL, O_JSON, "print the raw reply JSON"},
    {"api-key-env", "NAME", O_KEY, "send $NAME as a Bearer token"},
    {"temperature", "T", O_TEMP, "sampling temperature (omitted by default)"},
    {"max-tokens", "N", O_MAXTOK, "completion token limit (omitted by default)"},
    {"timeout-ms", "MS", O_TIMEOUT, "per-attempt timeout (default 60000)"},
    {"retries", "N", O_RETRIES, "retries after the first attempt (default 2)"},
    {0}};
static const struct opts_cli chat_cli = {
    "chat", "--base-url URL --model M [options] PROMPT",
    "One chat completion call: checks that an OpenAI-compatible endpoint answers.", chat_opts,
    NULL};

struct chat_state {
  int finished, rc, json;
};

static void chat_done(void *ud, const struct llm_result *res) {
  struct chat_state *s = ud;
  s->finished = 1;
  s->rc = res->rc;
  if (res->rc) {
    fprintf(stderr, "autodata: error: %s\n", res->error ? res->error : "call failed");
    return;
  }
  if (s->json) {
    fwrite(res->body, 1, res->body_len, stdout);
    if (res->body_len && res->body[res->body_len - 1] != '\n') putchar('\n');
    return;
  }
  const struct llm_reply *r = res->reply;
  if (r->reasoning_content && *r->reasoning_content)
    printf("--- reasoning ---\n%s\n--- answer ---\n", r->reasoning_content);
  printf("%s\n", r->content);
  if (r->tool_calls) {
    char *tc = json_dumps(r->tool_calls, JSON_COMPACT);
    printf("tool_calls: %s\n", tc ? tc : "?");
    free(tc);
  }
  printf(
      "usage: prompt=%lld completion=%lld total=%lld tokens, %d attempt%s, %lld ms, "
      "finish_reason %s\n",
      (long long)r->prompt_tokens, (long long)r->completion_tokens, (long long)r->total_tokens,
      res->attempts, res->attempts == 1 ? "" : "s", (long long)(res->latency_us / 1000),
      r->finish_reason ? r->finish_reason : "(none)");
  if (r->finish_reason && !strcmp(r->finish_reason, "length"))
    fprintf(stderr,
            "autodata: the reply was cut off at the token limit (finish_reason "
            "\"length\"); raise --max-tokens\n");
}

int cmd_chat(int argc, char **argv) {
  const char *base = NULL, *model = NULL, *system_msg = NULL, *key_env = NULL;
  struct chat_state st = {0, 0, 0};
  double temp = LLM_UNSET;
  int maxtok = 0, timeout = 60000, retries = 2;
  struct opts_parser op;
  opts_begin(&op, &chat_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_BASE: base = op.val; break;
    case O_MODEL: model = op.val; break;
    case O_SYSTEM: system_msg = op.val; break;
    case O_JSON: st.json = 1; break;
    case O_KEY: key_env = op.val; break;
    case O_TEMP: bad = opts_double(op.cmd, op.flag, op.val, 0, 10, &temp); break;
    case O_MAXTOK: bad = opts_int(op.cmd, op.flag, op.val, 1, 1000000000, &maxtok); break;
    case O_TIMEOUT: bad = opts_int(op.cmd, op.flag, op.val, 1, 86400000, &timeout); break;
    case O_RETRIES: bad = opts_int(op.cmd, op.flag, op.val, 0, 100, &retries); break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (!base || !model || op.npos != 1) {
    opts_usage_error(&chat_cli, "--base-url, --model and one PROMPT are required");
    return 2;
  }
  const char *prompt = op.pos[0];

  int rc = 1;
  llm_client *c = llm_client_new();
  json_t *msgs = json_array(), *body = NULL;
  if (!c) {
    fprintf(stderr, "autodata: error: out of memory\n");
    goto cleanup;
  }
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "chat";
  cfg.base_urls[0] = base;
  cfg.n_urls = 1;
  cfg.api_key_env = key_env;
  cfg.max_inflight = 1;
  cfg.request_timeout_ms = (int)timeout;
  cfg.connect_timeout_ms = timeout < 10000 ? (int)timeout : 10000;
  cfg.max_retries = (int)retries;
  cfg.backoff_base_ms = 250;
  cfg.backoff_max_ms = 4000;
  if (llm_client_add_endpoint(c, &cfg)) {
    fprintf(stderr, "autodata chat: %s\n", llm_client_errmsg(c));
    rc = 2;
    goto cleanup;
  }
  if (system_msg)
    json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "system", "content", system_msg));
  json_array_append_new(msgs, json_pack("{s:s,s:s}", "role", "user", "content", prompt));
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = temp;
  p.max_tokens = (int)maxtok;
  body = llm_request_build(model, msgs, &p);
  if (!body || json_array_size(msgs) != (system_msg ? 2u : 1u)) {
    fprintf(stderr, "autodata chat: could not build the request (is the prompt valid UTF-8?)\n");
    rc = 2;
    goto cleanup;
  }
  if (llm_submit(c, "chat", body, chat_done, NULL, &st)) {
    fprintf(stderr, "autodata chat: %s\n", llm_client_errmsg(c));
    goto cleanup;
  }
  while (llm_client_run_once(c, 1000) > 0) {
  }
  rc = st.finished && st.rc == 0 ? 0 : 1;
cleanup:
  json_decref(body);
  json_decref(msgs);
  llm_client_free(c);
  return rc;
}
