/* cmd_sim_server.c - `autodata sim-server`: the sim backend over HTTP. */
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "sim/server.h"
#include "sim/sim.h"
#include "util/err.h"
#include "util/mem.h"

static struct sim_server *g_server; /* for the signal handler only */

static void on_signal(int sig) {
  (void)sig;
  sim_server_stop(g_server);
}

enum {
  O_HOST = 1,
  O_PORT,
  O_THREADS,
  O_SEED,
  O_LAT,
  O_JIT,
  O_FAULTS,
  O_RETRY,
  O_SLOW,
  O_NORF,
  O_CTX,
  O_CUT,
  O_IGNSCHEMA,
  O_JUDGE,
  O_QUIET
};
static const struct opts_spec sim_server_opts[] = {
    {"host", "H", O_HOST, "address to bind (default 127.0.0.1)"},
    {"port", "N", O_PORT, "port (default 8000; 0 picks a free port, printed at start)"},
    {"threads", "N", O_THREADS,
     "worker threads, 1.." OPTS_STR(SIM_SERVER_MAX_THREADS) " (default 2)"},
    {"seed", "S", O_SEED, "seed for fault and jitter draws (default 0)"},
    {"latency-ms", "MS", O_LAT, "delay every chat completions reply by MS (default 0)"},
    {"jitter-ms", "MS", O_JIT, "vary that delay uniformly by +/- MS (default 0)"},
    {"faults", "SPEC", O_FAULTS,
     "e.g. 429=0.1,500=0.05,503=0.02,drop=0.02,garbage=0.02,\n"
     "slow=0.05,truncate=0.01 (probabilities per request, sum <= 1)"},
    {"retry-after", "S", O_RETRY, "Retry-After seconds sent with 429 (default 1)"},
    {"slow-ms", "MS", O_SLOW, "extra delay of a 'slow' fault (default 2000)"},
    {"no-response-format", NULL, O_NORF,
     "answer 400 to requests with response_format, like a\n"
     "server without structured outputs"},
    {"ctx-size", "N", O_CTX,
     "answer 400 \"request exceeds the available context size\"\n"
     "to prompts above N tokens (chars/4), like llama-server"},
    {"cut-at-max-tokens", NULL, O_CUT,
     "cut replies at the request's max_tokens (finish_reason length)"},
    {"ignore-schema", NULL, O_IGNSCHEMA,
     "accept response_format but ignore it: replies hold no JSON"},
    {"judge-faults", "SPEC", O_JUDGE,
     "skip=P,dup=P: share of sim-judge replies that drop their\n"
     "last verdict / repeat their first (per request hash)"},
    {"quiet", NULL, O_QUIET, "no stats line at exit"},
    {0}};
static const struct opts_cli sim_server_cli = {
    "sim-server", "[--host H] [--port N] [options]",
    "Serve the sim backend (OpenAI-compatible) over HTTP: POST /v1/chat/completions,\n"
    "GET /v1/models. Stops on SIGINT/SIGTERM and prints request and fault counts.",
    sim_server_opts, "See docs/sim-server.md."};

/* "skip=P,dup=P" (either may be left out; P in [0, 1], sum <= 1). 0, or 1 after a message. */
static int parse_judge_faults(const char *spec, struct sim_server_opts *o) {
  char *copy = xstrdup(spec), *save = NULL;
  int bad = 0;
  for (char *it = strtok_r(copy, ",", &save); it && !bad; it = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(it, '='), *end = NULL;
    double p = eq ? strtod(eq + 1, &end) : -1;
    if (!eq || end == eq + 1 || *end || !(p >= 0 && p <= 1)) bad = 1;
    else if (!strncmp(it, "skip=", 5)) o->judge_skip = p;
    else if (!strncmp(it, "dup=", 4)) o->judge_dup = p;
    else bad = 1;
    if (bad)
      fprintf(stderr,
              "autodata sim-server: error: --judge-faults: bad item '%s' (expected skip=P or "
              "dup=P, P in [0, 1])\n",
              it);
  }
  if (!bad && o->judge_skip + o->judge_dup > 1) {
    fprintf(stderr, "autodata sim-server: error: --judge-faults: skip + dup must be <= 1\n");
    bad = 1;
  }
  free(copy);
  return bad;
}

int cmd_sim_server(int argc, char **argv) {
  struct sim_server_opts o = {.host = "127.0.0.1", .port = 8000, .threads = 2};
  const char *faults = "";
  int retry = -1, slow = -1, ctx = 0;
  int quiet = 0;
  struct opts_parser op;
  opts_begin(&op, &sim_server_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_HOST: o.host = op.val; break;
    case O_PORT: bad = opts_int(op.cmd, op.flag, op.val, 0, 65535, &o.port); break;
    case O_SEED: bad = opts_u64(op.cmd, op.flag, op.val, 0, UINT64_MAX, &o.seed); break;
    case O_LAT: bad = opts_int(op.cmd, op.flag, op.val, 0, 3600000, &o.latency_ms); break;
    case O_JIT: bad = opts_int(op.cmd, op.flag, op.val, 0, 3600000, &o.jitter_ms); break;
    case O_FAULTS: faults = op.val; break;
    case O_THREADS:
      bad = opts_int(op.cmd, op.flag, op.val, 1, SIM_SERVER_MAX_THREADS, &o.threads);
      break;
    case O_RETRY: bad = opts_int(op.cmd, op.flag, op.val, 0, 86400, &retry); break;
    case O_SLOW: bad = opts_int(op.cmd, op.flag, op.val, 0, 3600000, &slow); break;
    case O_QUIET: quiet = 1; break;
    case O_NORF: o.no_response_format = 1; break;
    case O_CTX: bad = opts_int(op.cmd, op.flag, op.val, 1, 100000000, &ctx); break;
    case O_CUT: o.cut_max_tokens = 1; break;
    case O_IGNSCHEMA: o.ignore_schema = 1; break;
    case O_JUDGE: bad = parse_judge_faults(op.val, &o); break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&sim_server_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  char err[512];
  if (sim_faults_parse(faults, &o.faults, err, sizeof err)) {
    fprintf(stderr, "autodata sim-server: error: --faults: %s\n", err);
    return 2;
  }
  if (retry >= 0) o.faults.retry_after_s = (int)retry;
  if (slow >= 0) o.faults.slow_ms = (int)slow;
  o.ctx_size = ctx;

  struct sim_server *srv;
  int rc = sim_server_open(&o, &srv, err, sizeof err);
  if (rc) {
    fprintf(stderr, "autodata sim-server: error: %s\n", err[0] ? err : ad_strerror(rc));
    return rc == AD_EINVAL ? 2 : 1;
  }
  g_server = srv;
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  signal(SIGPIPE, SIG_IGN);

  char url[320];
  sim_server_url(srv, url, sizeof url);
  printf("sim-server listening on %s\n", url);
  fflush(stdout);
  rc = sim_server_run(srv);

  struct sim_server_stats st;
  sim_server_stats(srv, &st);
  if (!quiet) {
    printf("sim-server: stopped; %" PRIu64 " connections, %" PRIu64 " requests (%" PRIu64
           " chat completions, %" PRIu64 " malformed); faults:",
           st.connections, st.requests, st.chat, st.bad);
    for (int k = 1; k < 8; k++)
      printf(" %s=%" PRIu64, sim_fault_name((enum sim_fault)k), st.faults[k]);
    printf("\n");
    fflush(stdout);
  }
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  g_server = NULL;
  sim_server_free(srv);
  if (rc) {
    fprintf(stderr, "autodata sim-server: error: %s\n", ad_strerror(rc));
    return 1;
  }
  return 0;
}
