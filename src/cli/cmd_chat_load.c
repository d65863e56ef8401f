/* cmd_chat_load.c - `autodata chat-load` (hidden): a load and fault-tolerance driver.
 *
 * Submits N distinct deterministic requests (request i depends only on i and
 * --seed) to one endpoint, keeping max(1024, 2 x concurrency) of them submitted and
 * unfinished (the client queues what is above its concurrency limit), and prints one
 * JSON line per finished call (only failures with --quiet),
 *   {"i":3,"ok":true,"content_hash":"9f1c...","attempts":2}
 * (with "error" instead of "content_hash" on failure), then a summary line
 * {"summary":true,...}. Exit 0 when every call succeeded exactly once, else 1.
 * Used by tests/e2e/t_client_faults.sh and the client benchmark (bench/client).
 *
 * --store FILE persists every call the way the run loop does, through the same
 * recorder (src/loop/callrec.h): canonical request text + cache key at submit, the
 * row with the request and reply bodies and the attempt list in the done callback,
 * store_maybe_flush() once per loop iteration, a final store_flush() (all inside
 * the measured time). --cache-lookup adds the loop's store_cache_get() per call.
 * The summary reports wall time, calls/s (overall and between the 10% and 90%
 * completion marks, which leaves out ramp-up and tail), this process's CPU per
 * call (getrusage: user + system, also split) and its peak RSS (ru_maxrss).
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "llm/llm.h"
#include "loop/callrec.h"
#include "store/store.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"
#include "util/timeu.h"

struct load_state {
  int *done_count; /* per call i */
  int n, ok, failed, duplicates, quiet, finished;
  int64_t attempts;
  int64_t t0_us, t1_us;   /* start; first call finished */
  int64_t t10_us, t90_us; /* when 10% / 90% of the calls had finished */
  store *st;              /* --store, or NULL */
  store_id run;
  int store_failed;
};
struct load_call {
  struct load_state *s;
  int i;
  struct callrec rec; /* --store: the call's record */
};

static void load_attempt(void *ud, const struct llm_attempt *a) {
  struct load_call *lc = ud;
  callrec_attempt(&lc->rec, a);
}

/* Record one finished call in the store, as the run loop does. */
static void load_record(struct load_state *s, struct load_call *lc, const struct llm_result *res) {
  struct callrec_id id = {"load", NULL, -1, "load", "load"};
  if (callrec_put(s->st, s->run, &lc->rec, &id, res) && !s->store_failed) {
    s->store_failed = 1;
    fprintf(stderr, "autodata chat-load: %s\n", store_errmsg(s->st));
  }
}

static void load_done(void *ud, const struct llm_result *res) {
  struct load_call *lc = ud;
  struct load_state *s = lc->s;
  if (s->done_count[lc->i]++) s->duplicates++;
  s->attempts += res->attempts;
  s->finished++;
  if (s->finished == 1) s->t1_us = time_now_us();
  if (s->finished == (s->n + 9) / 10) s->t10_us = time_now_us();
  if (s->finished == (s->n * 9 + 9) / 10) s->t90_us = time_now_us();
  if (s->st) load_record(s, lc, res);
  callrec_release(&lc->rec);
  json_t *line;
  if (res->rc == 0 && s->quiet) {
    s->ok++;
    return;
  }
  if (res->rc == 0) {
    s->ok++;
    char hex[17];
    snprintf(hex, sizeof hex, "%016" PRIx64, hash64_str(res->reply->content));
    line = json_pack("{s:i,s:b,s:s,s:i}", "i", lc->i, "ok", 1, "content_hash", hex, "attempts",
                     res->attempts);
  } else {
    s->failed++;
    line = json_pack("{s:i,s:b,s:s,s:i}", "i", lc->i, "ok", 0, "error",
                     res->error ? res->error : "?", "attempts", res->attempts);
  }
  if (!s->quiet || res->rc) {
    char *txt = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (txt) printf("%s\n", txt);
    free(txt);
  }
  json_decref(line);
}

static json_t *load_request(const char *model, int i, uint64_t seed, int max_tokens) {
  char user[160];
  snprintf(user, sizeof user, "chat-load request %d: write a short note about topic %d.", i,
           (int)((uint64_t)i * 7919u % 1000u));
  json_t *msgs = json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content",
                           "You are a load-test model.", "role", "user", "content", user);
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = 1.0;
  p.max_tokens = max_tokens;
  p.has_seed = 1;
  p.seed = (int64_t)rng_derive(seed, "chat-load/%d", i);
  json_t *body = llm_request_build(model, msgs, &p);
  json_decref(msgs);
  return body;
}

enum {
  O_BASE = 1,
  O_MODEL,
  O_CALLS,
  O_CONC,
  O_SEED,
  O_RETRIES,
  O_TIMEOUT,
  O_BBASE,
  O_BMAX,
  O_NOADAPT,
  O_RPM,
  O_TPM,
  O_QUIET,
  O_MAXTOK,
  O_KEY,
  O_STORE,
  O_CACHE
};
static const struct opts_spec chat_load_opts[] = {
    {"base-url", "URL", O_BASE,
     "the endpoint (\"sim\": in-process sim); repeat for more URLs,\n"
     "at most " OPTS_STR(LLM_MAX_URLS)},
    {"model", "M", O_MODEL, "model name"},
    {"calls", "N", O_CALLS, "distinct requests to send, 1..10000000 (default 100)"},
    {"concurrency", "C", O_CONC, "calls in flight, 1..100000 (default 64)"},
    {"seed", "S", O_SEED, "request i depends only on i and S (default 1)"},
    {"retries", "N", O_RETRIES, "retries per call, 0..100 (default: the client's)"},
    {"timeout-ms", "MS", O_TIMEOUT, "per-attempt timeout (default: the client's)"},
    {"backoff-base-ms", "MS", O_BBASE, "first retry backoff (default: the client's)"},
    {"backoff-max-ms", "MS", O_BMAX, "longest retry backoff (default: the client's)"},
    {"no-adaptive", NULL, O_NOADAPT, "fixed concurrency (no adaptive limit)"},
    {"rpm", "R", O_RPM, "requests per minute (default 0: unlimited)"},
    {"tpm", "T", O_TPM, "tokens per minute (default 0: unlimited)"},
    {"max-tokens", "N", O_MAXTOK, "completion token limit per call (default 64)"},
    {"api-key-env", "NAME", O_KEY, "send $NAME as a Bearer token"},
    {"store", "FILE", O_STORE, "record every call in this run store, as a run does"},
    {"cache-lookup", NULL, O_CACHE, "with --store: also look each call up in the cache"},
    {"quiet", NULL, O_QUIET, "print only failed calls and the summary"},
    {0}};
static const struct opts_cli chat_load_cli = {
    "chat-load", "--base-url URL [--base-url URL2 ...] --model M [options]",
    "(internal) A load and fault-tolerance driver: N distinct deterministic requests to\n"
    "one endpoint; one JSON line per finished call, then a summary line. Exit 0 when\n"
    "every call succeeded exactly once, else 1.",
    chat_load_opts, NULL};

int cmd_chat_load(int argc, char **argv) {
  struct llm_endpoint_config cfg;
  llm_endpoint_config_init(&cfg);
  cfg.name = "load";
  const char *model = NULL, *store_file = NULL;
  int cache_lookup = 0;
  double calls = 100, conc = 64, seed = 1, maxtok = 64;
  int quiet = 0;
  struct opts_parser op;
  opts_begin(&op, &chat_load_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    long long v = 0; /* the counts stay doubles below */
    switch (id) {
    case O_BASE:
      if (cfg.n_urls == LLM_MAX_URLS) {
        opts_usage_error(&chat_load_cli, "at most %d --base-url", LLM_MAX_URLS);
        return 2;
      }
      cfg.base_urls[cfg.n_urls++] = op.val;
      break;
    case O_MODEL: model = op.val; break;
    case O_CALLS:
      bad = opts_llong(op.cmd, op.flag, op.val, 1, 10000000, &v);
      calls = (double)v;
      break;
    case O_CONC:
      bad = opts_llong(op.cmd, op.flag, op.val, 1, 100000, &v);
      conc = (double)v;
      break;
    case O_SEED:
      bad = opts_llong(op.cmd, op.flag, op.val, 0, 9000000000000000LL, &v);
      seed = (double)v;
      break;
    case O_MAXTOK:
      bad = opts_llong(op.cmd, op.flag, op.val, 1, 1000000, &v);
      maxtok = (double)v;
      break;
    case O_RETRIES: bad = opts_int(op.cmd, op.flag, op.val, 0, 100, &cfg.max_retries); break;
    case O_TIMEOUT:
      bad = opts_int(op.cmd, op.flag, op.val, 1, 86400000, &cfg.request_timeout_ms);
      break;
    case O_BBASE: bad = opts_int(op.cmd, op.flag, op.val, 1, 10000000, &cfg.backoff_base_ms); break;
    case O_BMAX: bad = opts_int(op.cmd, op.flag, op.val, 1, 10000000, &cfg.backoff_max_ms); break;
    case O_NOADAPT: cfg.adaptive = 0; break;
    case O_RPM: bad = opts_double(op.cmd, op.flag, op.val, 0, 1e9, &cfg.requests_per_min); break;
    case O_TPM: bad = opts_double(op.cmd, op.flag, op.val, 0, 1e12, &cfg.tokens_per_min); break;
    case O_QUIET: quiet = 1; break;
    case O_KEY: cfg.api_key_env = op.val; break;
    case O_STORE: store_file = op.val; break;
    case O_CACHE: cache_lookup = 1; break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&chat_load_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  if (!cfg.n_urls || !model) {
    opts_usage_error(&chat_load_cli, "--base-url URL and --model M are required");
    return 2;
  }
  if (cache_lookup && !store_file) {
    fprintf(stderr, "autodata chat-load: --cache-lookup needs --store FILE\n");
    return 2;
  }
  cfg.max_inflight = (int)conc;
  int n = (int)calls, rc = 1;
  struct load_state st = {0};
  st.n = n;
  st.quiet = quiet;
  st.done_count = xcalloc((size_t)n, sizeof *st.done_count);
  struct load_call *lcs = xcalloc((size_t)n, sizeof *lcs);
  llm_client *c = llm_client_new();
  if (!c) {
    fprintf(stderr, "autodata: error: out of memory\n");
    goto cleanup;
  }
  if (store_file) {
    int orc = store_open(store_file, 0, &st.st);
    if (orc) {
      fprintf(stderr, "autodata chat-load: %s\n", st.st ? store_errmsg(st.st) : "out of memory");
      rc = 2;
      goto cleanup;
    }
    struct store_run_info info = {
        .recipe_name = "chat-load",
        .recipe_sha256 = "0000000000000000000000000000000000000000000000000000000000000000",
        .seed = (uint64_t)seed,
        .version = "chat-load",
        .command_line = "autodata chat-load"};
    int resumed = 0;
    if (store_run_begin(st.st, &info, 1, &st.run, &resumed)) {
      fprintf(stderr, "autodata chat-load: %s\n", store_errmsg(st.st));
      rc = 2;
      goto cleanup;
    }
  }
  llm_client_set_seed(c, (uint64_t)seed);
  if (llm_client_add_endpoint(c, &cfg)) {
    fprintf(stderr, "autodata chat-load: %s\n", llm_client_errmsg(c));
    rc = 2;
    goto cleanup;
  }
  struct rusage ru0, ru1;
  getrusage(RUSAGE_SELF, &ru0);
  int64_t t0 = time_now_us();
  st.t0_us = t0;
  /* Requests are built and submitted as the run goes, keeping twice the concurrency
   * queued, so the first request goes out at once and memory stays flat. */
  int next = 0, window = (int)conc * 2 > 1024 ? (int)conc * 2 : 1024;
  for (;;) {
    for (; next < n && next - st.finished < window; next++) {
      int i = next;
      lcs[i].s = &st;
      lcs[i].i = i;
      json_t *body = load_request(model, i, (uint64_t)seed, (int)maxtok);
      if (!body) { /* llm_request_build refused an argument */
        fprintf(stderr,
                "autodata chat-load: could not build request %d (is --model valid UTF-8?)\n", i);
        goto cleanup;
      }
      if (st.st) { /* as the run does: canonical text, cache key, optional lookup */
        callrec_begin(&lcs[i].rec, "load", body);
        char *hit = NULL;
        if (cache_lookup && store_cache_get(st.st, lcs[i].rec.key, &hit, NULL) == 0) free(hit);
      }
      int src = llm_submit(c, "load", body, load_done, st.st ? load_attempt : NULL, &lcs[i]);
      json_decref(body);
      if (src) {
        fprintf(stderr, "autodata chat-load: submit %d: %s\n", i, llm_client_errmsg(c));
        callrec_release(&lcs[i].rec);
        goto cleanup;
      }
    }
    if (llm_client_run_once(c, 1000) <= 0 && next >= n) break;
    if (st.st && store_maybe_flush(st.st, time_now_ms()) && !st.store_failed) {
      st.store_failed = 1;
      fprintf(stderr, "autodata chat-load: %s\n", store_errmsg(st.st));
    }
  }
  if (st.st && store_run_set_status(st.st, st.run, st.failed ? "failed" : "done") &&
      !st.store_failed) {
    st.store_failed = 1;
    fprintf(stderr, "autodata chat-load: %s\n", store_errmsg(st.st));
  }
  if (st.st && store_flush(st.st)) {
    st.store_failed = 1;
    fprintf(stderr, "autodata chat-load: %s\n", store_errmsg(st.st));
  }
  int64_t wall = time_now_us() - t0;
  getrusage(RUSAGE_SELF, &ru1);
  int64_t usr = (int64_t)(ru1.ru_utime.tv_sec - ru0.ru_utime.tv_sec) * 1000000 +
                (ru1.ru_utime.tv_usec - ru0.ru_utime.tv_usec);
  int64_t sys = (int64_t)(ru1.ru_stime.tv_sec - ru0.ru_stime.tv_sec) * 1000000 +
                (ru1.ru_stime.tv_usec - ru0.ru_stime.tv_usec);
  int64_t cpu = usr + sys;
  double steady = 0;
  int n_mid = (n * 9 + 9) / 10 - (n + 9) / 10;
  if (st.t90_us > st.t10_us) steady = n_mid * 1e6 / (double)(st.t90_us - st.t10_us);
  int missing = 0;
  for (int i = 0; i < n; i++) missing += st.done_count[i] == 0;
  struct llm_endpoint_stats es;
  if (llm_client_endpoint_stats(c, "load", &es)) memset(&es, 0, sizeof es);
  printf(
      "{\"summary\":true,\"calls\":%d,\"ok\":%d,\"failed\":%d,\"missing\":%d,\"duplicates\":%d,"
      "\"attempts\":%lld,\"retries\":%lld,\"wall_ms\":%.1f,\"first_done_ms\":%.1f,\"calls_per_s\":%.1f,"
      "\"steady_calls_per_s\":%.1f,\"client_cpu_us_per_call\":%.1f,"
      "\"client_user_us_per_call\":%.1f,\"client_sys_us_per_call\":%.1f,"
      "\"peak_rss_kb\":%ld,\"store\":%s,\"concurrency_limit\":%d,\"prompt_tokens\":%lld,"
      "\"completion_tokens\":%lld}\n",
      n, st.ok, st.failed, missing, st.duplicates, (long long)es.attempts, (long long)es.retries,
      wall / 1000.0, st.t1_us ? (st.t1_us - t0) / 1000.0 : 0.0,
      wall > 0 ? n * 1e6 / (double)wall : 0.0, steady, (double)cpu / n, (double)usr / n,
      (double)sys / n, ru1.ru_maxrss, st.st ? "true" : "false", es.concurrency_limit,
      (long long)es.prompt_tokens, (long long)es.completion_tokens);
  rc = st.ok == n && !st.duplicates && !missing && !st.store_failed ? 0 : 1;
cleanup:
  llm_client_free(c);
  if (lcs)
    for (int i = 0; i < n; i++) callrec_release(&lcs[i].rec);
  if (st.st && store_close(st.st) && rc == 0) rc = 1;
  free(lcs);
  free(st.done_count);
  return rc;
}
