/* cmd_sim_server.c - `autodata sim-server`: the sim backend over HTTP. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "sim/server.h"
#include "sim/sim.h"
#include "util/err.h"

static struct sim_server *g_server; /* for the signal handler only */

static void on_signal(int sig) {
  (void)sig;
  sim_server_stop(g_server);
}

static void usage(FILE *f) {
  fprintf(f,
          "usage: autodata sim-server [--host H] [--port N] [options]\n\n"
          "Serve the sim backend (OpenAI-compatible) over HTTP: POST /v1/chat/completions,\n"
          "GET /v1/models. Stops on SIGINT/SIGTERM and prints request and fault counts.\n\n"
          "  --host H          address to bind (default 127.0.0.1)\n"
          "  --port N          port (default 8000; 0 picks a free port, printed at start)\n"
          "  --threads N       worker threads, 1..%d (default 2)\n"
          "  --seed S          seed for fault and jitter draws (default 0)\n"
          "  --latency-ms MS   delay every chat completions reply by MS (default 0)\n"
          "  --jitter-ms MS    vary that delay uniformly by +/- MS (default 0)\n"
          "  --faults SPEC     e.g. 429=0.1,500=0.05,503=0.02,drop=0.02,garbage=0.02,\n"
          "                    slow=0.05,truncate=0.01 (probabilities per request, sum <= 1)\n"
          "  --retry-after S   Retry-After seconds sent with 429 (default 1)\n"
          "  --slow-ms MS      extra delay of a 'slow' fault (default 2000)\n"
          "  --no-response-format  answer 400 to requests with response_format, like a\n"
          "                    server without structured outputs\n"
          "  --quiet           no stats line at exit\n"
          "See docs/sim-server.md.\n",
          SIM_SERVER_MAX_THREADS);
}

/* Parse an integer flag value in [lo, hi]; 0 or -1 with a message. */
static int parse_int(const char *flag, const char *v, long long lo, long long hi, long long *out) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || errno || x < lo || x > hi) {
    fprintf(stderr, "autodata sim-server: error: %s expects an integer from %lld to %lld, got '%s'\n",
            flag, lo, hi, v);
    return -1;
  }
  *out = x;
  return 0;
}

int cmd_sim_server(int argc, char **argv) {
  enum { O_HOST = 1, O_PORT, O_SEED, O_LAT, O_JIT, O_FAULTS, O_THREADS, O_RETRY, O_SLOW, O_QUIET,
         O_NORF, O_HELP };
  static const struct option longopts[] = {
      {"host", required_argument, 0, O_HOST},       {"port", required_argument, 0, O_PORT},
      {"seed", required_argument, 0, O_SEED},       {"latency-ms", required_argument, 0, O_LAT},
      {"jitter-ms", required_argument, 0, O_JIT},   {"faults", required_argument, 0, O_FAULTS},
      {"threads", required_argument, 0, O_THREADS}, {"retry-after", required_argument, 0, O_RETRY},
      {"slow-ms", required_argument, 0, O_SLOW},    {"quiet", no_argument, 0, O_QUIET},
      {"no-response-format", no_argument, 0, O_NORF},
      {"help", no_argument, 0, O_HELP},             {0, 0, 0, 0}};
  struct sim_server_opts o = {.host = "127.0.0.1", .port = 8000, .threads = 2};
  const char *faults = "";
  long long retry = -1, slow = -1, v;
  int quiet = 0;
  optind = 0; /* full reinitialisation (GNU) */
  opterr = 0;
  for (;;) {
    int idx = 0;
    int c = getopt_long(argc, argv, ":h", longopts, &idx);
    if (c == -1) break;
    switch (c) {
      case O_HOST: o.host = optarg; break;
      case O_PORT:
        if (parse_int("--port", optarg, 0, 65535, &v)) return 2;
        o.port = (int)v;
        break;
      case O_SEED: {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(optarg, &end, 10);
        if (!*optarg || *end || errno || optarg[0] == '-') {
          fprintf(stderr,
                  "autodata sim-server: error: --seed expects a non-negative integer, got '%s'\n",
                  optarg);
          return 2;
        }
        o.seed = s;
        break;
      }
      case O_LAT:
        if (parse_int("--latency-ms", optarg, 0, 3600000, &v)) return 2;
        o.latency_ms = (int)v;
        break;
      case O_JIT:
        if (parse_int("--jitter-ms", optarg, 0, 3600000, &v)) return 2;
        o.jitter_ms = (int)v;
        break;
      case O_FAULTS: faults = optarg; break;
      case O_THREADS:
        if (parse_int("--threads", optarg, 1, SIM_SERVER_MAX_THREADS, &v)) return 2;
        o.threads = (int)v;
        break;
      case O_RETRY:
        if (parse_int("--retry-after", optarg, 0, 86400, &retry)) return 2;
        break;
      case O_SLOW:
        if (parse_int("--slow-ms", optarg, 0, 3600000, &slow)) return 2;
        break;
      case O_QUIET: quiet = 1; break;
      case O_NORF: o.no_response_format = 1; break;
      case 'h':
      case O_HELP: usage(stdout); return 0;
      case ':':
        fprintf(stderr, "autodata sim-server: error: %s needs a value\n", argv[optind - 1]);
        return 2;
      default:
        fprintf(stderr, "autodata sim-server: error: unknown option '%s' (see --help)\n",
                argv[optind - 1]);
        return 2;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "autodata sim-server: error: unexpected argument '%s' (see --help)\n",
            argv[optind]);
    return 2;
  }
  char err[512];
  if (sim_faults_parse(faults, &o.faults, err, sizeof err)) {
    fprintf(stderr, "autodata sim-server: error: --faults: %s\n", err);
    return 2;
  }
  if (retry >= 0) o.faults.retry_after_s = (int)retry;
  if (slow >= 0) o.faults.slow_ms = (int)slow;

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
