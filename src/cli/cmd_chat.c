/* cmd_chat.c - `autodata chat`: one model call, to check an endpoint.
 *
 * Prints the reply content (reasoning, when the server sends it, comes first
 * between markers) and a usage line; --json prints the raw reply body instead.
 * A down server or a garbage reply gives a one-line diagnosis naming the
 * endpoint and exit 1, within the timeout and retry settings.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "llm/llm.h"

static void chat_usage(FILE *f) {
  fprintf(f,
          "usage: autodata chat --base-url URL --model M [options] PROMPT\n\n"
          "One chat completion call: checks that an OpenAI-compatible endpoint answers.\n\n"
          "  --base-url URL       e.g. http://127.0.0.1:8000/v1, or \"sim\" (in-process sim)\n"
          "  --model M            model name\n"
          "  --system TEXT        system message\n"
          "  --json               print the raw reply JSON\n"
          "  --api-key-env NAME   send $NAME as a Bearer token\n"
          "  --temperature T      sampling temperature (omitted by default)\n"
          "  --max-tokens N       completion token limit (omitted by default)\n"
          "  --timeout-ms MS      per-attempt timeout (default 60000)\n"
          "  --retries N          retries after the first attempt (default 2)\n");
}

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
  printf("usage: prompt=%lld completion=%lld total=%lld tokens, %d attempt%s, %lld ms\n",
         (long long)r->prompt_tokens, (long long)r->completion_tokens, (long long)r->total_tokens,
         res->attempts, res->attempts == 1 ? "" : "s", (long long)(res->latency_us / 1000));
}

static int parse_num(const char *flag, const char *v, double lo, double hi, double *out) {
  char *end;
  double d = strtod(v, &end);
  if (!*v || *end || d < lo || d > hi) {
    fprintf(stderr, "autodata chat: %s expects a number in [%g, %g], got '%s'\n", flag, lo, hi, v);
    return -1;
  }
  *out = d;
  return 0;
}

int cmd_chat(int argc, char **argv) {
  enum { O_BASE = 1, O_MODEL, O_SYSTEM, O_JSON, O_KEY, O_TEMP, O_MAXTOK, O_TIMEOUT, O_RETRIES, O_HELP };
  static const struct option opts[] = {
      {"base-url", required_argument, 0, O_BASE},   {"model", required_argument, 0, O_MODEL},
      {"system", required_argument, 0, O_SYSTEM},   {"json", no_argument, 0, O_JSON},
      {"api-key-env", required_argument, 0, O_KEY}, {"temperature", required_argument, 0, O_TEMP},
      {"max-tokens", required_argument, 0, O_MAXTOK}, {"timeout-ms", required_argument, 0, O_TIMEOUT},
      {"retries", required_argument, 0, O_RETRIES}, {"help", no_argument, 0, O_HELP},
      {0, 0, 0, 0}};
  const char *base = NULL, *model = NULL, *system_msg = NULL, *key_env = NULL;
  struct chat_state st = {0, 0, 0};
  double temp = LLM_UNSET, maxtok = 0, timeout = 60000, retries = 2;
  optind = 1;
  opterr = 0;
  int o;
  while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
    switch (o) {
    case O_BASE: base = optarg; break;
    case O_MODEL: model = optarg; break;
    case O_SYSTEM: system_msg = optarg; break;
    case O_JSON: st.json = 1; break;
    case O_KEY: key_env = optarg; break;
    case O_TEMP: if (parse_num("--temperature", optarg, 0, 10, &temp)) return 2; break;
    case O_MAXTOK: if (parse_num("--max-tokens", optarg, 1, 1e9, &maxtok)) return 2; break;
    case O_TIMEOUT: if (parse_num("--timeout-ms", optarg, 1, 864e5, &timeout)) return 2; break;
    case O_RETRIES: if (parse_num("--retries", optarg, 0, 100, &retries)) return 2; break;
    case O_HELP: chat_usage(stdout); return 0;
    default:
      fprintf(stderr, "autodata chat: unknown or incomplete option '%s'\n", argv[optind - 1]);
      chat_usage(stderr);
      return 2;
    }
  }
  if (!base || !model || optind != argc - 1) {
    fprintf(stderr, "autodata chat: --base-url, --model and one PROMPT are required\n");
    chat_usage(stderr);
    return 2;
  }
  const char *prompt = argv[optind];

  int rc = 1;
  llm_client *c = llm_client_new();
  json_t *msgs = json_array(), *body = NULL;
  if (!c || !msgs) {
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
