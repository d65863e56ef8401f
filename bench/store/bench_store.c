/* bench_store.c - store write throughput: persist N model-call records
 * (~2 KB request + ~1 KB reply each, like a solver call) through the store API
 * with batching, the way the episode loop does (store_call_put, then
 * store_maybe_flush after each event-loop turn), then read some back through
 * the cache.
 *
 *   bench_store [--n 200000] [--path FILE] [--batch-rows 1000] [--batch-ms 50] [--lookups L]
 *
 * Prints records/s (wall), CPU µs per record (process user+sys, including
 * SQLite), file size and cache-lookup speed. The records are generated on the
 * fly (snprintf); that cost is measured separately and reported.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"
#include "util/rng.h"
#include "util/timeu.h"

#define REQ_CAP 4096
#define REPLY_CAP 2048

static const char *lorem =
    "Transformers process tokens in parallel with self-attention; the paper measures the "
    "effect of rubric weighting on weak and strong solver scores, and reports that the gap "
    "widens when the challenger receives feedback from previous rounds. ";

/* A ~2 KB chat request: system prompt, source excerpt, question; varies per i. */
static size_t make_request(char *out, size_t cap, long i) {
  char excerpt[1400];
  size_t n = 0, ll = strlen(lorem);
  while (n + ll < sizeof excerpt - 32) {
    memcpy(excerpt + n, lorem, ll);
    n += ll;
  }
  n += (size_t)snprintf(excerpt + n, sizeof excerpt - n, " [source %ld]", i / 9);
  excerpt[n] = 0;
  int w = snprintf(out, cap,
                   "{\"max_tokens\":1024,\"messages\":[{\"content\":\"You are a careful "
                   "expert. Answer the question using only the context. Think step by step "
                   "and give a complete, precise answer.\",\"role\":\"system\"},"
                   "{\"content\":\"Context: %s\\n\\nQuestion %ld: Which mechanism explains "
                   "the result in section %ld, and what would change if the rubric weights "
                   "were uniform?\",\"role\":\"user\"}],\"model\":\"weak-model-8b\","
                   "\"seed\":%ld,\"temperature\":1.0,\"top_p\":0.95}",
                   excerpt, i, i % 17, i * 2654435761L);
  return (size_t)w;
}

/* A ~1 KB chat completion reply. */
static size_t make_reply(char *out, size_t cap, long i) {
  int w = snprintf(out, cap,
                   "{\"id\":\"chatcmpl-%ld\",\"object\":\"chat.completion\",\"created\":"
                   "1760000000,\"model\":\"weak-model-8b\",\"choices\":[{\"index\":0,"
                   "\"message\":{\"role\":\"assistant\",\"content\":\"The mechanism is "
                   "attention re-weighting: %.*s (answer %ld)\"},\"finish_reason\":\"stop\"}],"
                   "\"usage\":{\"prompt_tokens\":%ld,\"completion_tokens\":%ld,"
                   "\"total_tokens\":%ld}}",
                   i, 700,
                   "when the rubric emphasises the derivation, the weak solver loses "
                   "points on the intermediate step it skips, while the strong solver keeps "
                   "them; with uniform weights the gap shrinks because the easy criteria "
                   "dominate the score. The experiments in section 4 confirm this: the gap "
                   "falls from 0.41 to 0.18 when all weights are set to one, and the weak "
                   "solver's mean rises from 0.32 to 0.51. A second effect is variance: the "
                   "weak solver's answers differ more across samples, so its standard "
                   "deviation stays high regardless of the weighting. Overall, rubric design "
                   "is a lever on difficulty that the orchestrator can use without leaking "
                   "the answer into the context.",
                   i, 480 + i % 50, 150 + i % 40, 630 + i % 90);
  return (size_t)w;
}

static const char *roles[] = {"challenger",    "quality_verifier", "weak_solver",
                              "weak_solver",   "weak_solver",      "strong_solver",
                              "strong_solver", "strong_solver",    "judge"};

int main(int argc, char **argv) {
  long n = 200000;
  const char *path = NULL;
  int batch_rows = 1000, batch_ms = 50;
  long lookups = -1; /* default: n, at most 100,000 */
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--n") && i + 1 < argc) n = atol(argv[++i]);
    else if (!strcmp(argv[i], "--path") && i + 1 < argc) path = argv[++i];
    else if (!strcmp(argv[i], "--batch-rows") && i + 1 < argc) batch_rows = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--batch-ms") && i + 1 < argc) batch_ms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--lookups") && i + 1 < argc) lookups = atol(argv[++i]);
    else {
      fprintf(stderr,
              "usage: bench_store [--n N] [--path FILE] [--batch-rows R] [--batch-ms M] "
              "[--lookups L]\n");
      return 2;
    }
  }
  char tmpl[] = "/tmp/adbench.XXXXXX";
  char dflt[64];
  if (!path) {
    if (!mkdtemp(tmpl)) return 1;
    snprintf(dflt, sizeof dflt, "%s/bench.db", tmpl);
    path = dflt;
  }
  char *req = malloc(REQ_CAP), *rep = malloc(REPLY_CAP);
  char(*keys)[33] = malloc(sizeof *keys * (size_t)n);
  if (!req || !rep || !keys) return 1;

  /* cost of generating the records alone */
  int64_t g0 = time_cpu_us();
  size_t bytes = 0;
  for (long i = 0; i < 20000 && i < n; i++) {
    bytes += make_request(req, REQ_CAP, i);
    bytes += make_reply(rep, REPLY_CAP, i);
  }
  double gen_us = (double)(time_cpu_us() - g0) / (double)(n < 20000 ? n : 20000);
  double avg_bytes = (double)bytes / (double)(n < 20000 ? n : 20000);

  store *st = NULL;
  if (store_open(path, 0, &st)) {
    fprintf(stderr, "bench_store: %s\n", store_errmsg(st));
    store_close(st);
    return 1;
  }
  store_set_batch(st, batch_rows, batch_ms);
  struct store_run_info info = {.recipe_name = "bench", .recipe_sha256 = "00", .seed = 1};
  store_id run;
  int resumed;
  if (store_run_begin(st, &info, 1, &run, &resumed)) {
    fprintf(stderr, "bench_store: %s\n", store_errmsg(st));
    return 1;
  }

  int64_t t0 = time_now_us(), c0 = time_cpu_us();
  for (long i = 0; i < n; i++) {
    size_t rl = make_request(req, REQ_CAP, i);
    size_t pl = make_reply(rep, REPLY_CAP, i);
    store_cache_key_text("local-vllm", req, rl, keys[i]);
    struct store_attempt at = {1, 200, NULL, 800000 + i % 1000, 0};
    char sid[32];
    snprintf(sid, sizeof sid, "src-%06ld", i / 9);
    struct store_call c = {.run = run,
                           .role = roles[i % 9],
                           .source_id = sid,
                           .round = 1 + (int)(i % 3),
                           .endpoint = "local-vllm",
                           .model = "weak-model-8b",
                           .cache_key = keys[i],
                           .request = req,
                           .request_len = rl,
                           .reply = rep,
                           .reply_len = pl,
                           .http_status = 200,
                           .prompt_tokens = 480,
                           .completion_tokens = 150,
                           .latency_us = 800000,
                           .attempts = 1,
                           .attempt_list = &at,
                           .n_attempt_list = 1};
    if (store_call_put(st, &c) || store_maybe_flush(st, time_now_ms())) {
      fprintf(stderr, "bench_store: %s\n", store_errmsg(st));
      return 1;
    }
  }
  if (store_flush(st)) {
    fprintf(stderr, "bench_store: %s\n", store_errmsg(st));
    return 1;
  }
  int64_t wall = time_now_us() - t0, cpu = time_cpu_us() - c0;

  /* cache lookups of stored keys */
  struct rng r;
  rng_seed(&r, 42);
  if (lookups < 0) lookups = n < 100000 ? n : 100000;
  int64_t l0 = time_now_us();
  for (long i = 0; i < lookups; i++) {
    char *body;
    size_t len;
    long k = (long)(rng_below(&r, (uint64_t)n));
    if (store_cache_get(st, keys[k], &body, &len)) {
      fprintf(stderr, "bench_store: cache miss: %s\n", store_errmsg(st));
      return 1;
    }
    free(body);
  }
  int64_t lwall = time_now_us() - l0;
  store_close(st);

  struct stat sb;
  long long fsize = stat(path, &sb) == 0 ? (long long)sb.st_size : -1;
  printf("store bench: %ld call records, %.0f B each (request+reply), batch %d rows / %d ms\n", n,
         avg_bytes, batch_rows, batch_ms);
  printf(
      "  write: %.0f records/s, %.1f CPU us/record (%.1f us of it generating the record), "
      "%.2f s wall\n",
      (double)n * 1e6 / (double)wall, (double)cpu / (double)n, gen_us, (double)wall / 1e6);
  if (lookups)
    printf("  cache_get: %.0f lookups/s (%ld random stored keys)\n",
           (double)lookups * 1e6 / (double)lwall, lookups);
  if (store_is_url(path)) printf("  database: %s\n", path);
  else
    printf("  file: %s, %.1f MB (%.0f B/record)\n", path, (double)fsize / 1e6,
           (double)fsize / (double)n);
  free(req);
  free(rep);
  free(keys);
  if (path == dflt) {
    char cmd[160];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmpl);
    if (system(cmd)) { /* best effort */
    }
  }
  return 0;
}
