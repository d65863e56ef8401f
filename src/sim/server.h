/* server.h - `autodata sim-server`: sim_handle() served over HTTP/1.1.
 *
 * A small epoll server: N worker threads, each with its own epoll instance and
 * its own SO_REUSEPORT listener on the same address, so the kernel spreads new
 * connections over the workers and the workers share nothing but counters they
 * sum at the end. It speaks HTTP/1.1 with keep-alive and pipelining (replies
 * leave in request order), Content-Length and chunked request bodies (413 past
 * AD_MAX_REQUEST), `Expect: 100-continue`, and answers malformed requests with
 * 400 and a closed connection.
 *
 * Latency and faults are the server's, never sim_handle()'s: every chat
 * completions request waits latency_ms +/- jitter_ms (a timer in the worker's
 * min-heap, never a sleep) and draws one fault from the worker's rng, seeded
 * from opts.seed and the worker index (with threads = 1 the fault sequence is a
 * pure function of the seed and the request order). Answered requests always
 * carry sim_handle()'s reply for their body. GET /v1/models is never faulted
 * or delayed, so it works as a health check.
 */
#ifndef AD_SIM_SERVER_H
#define AD_SIM_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "sim/sim.h"

#define SIM_SERVER_MAX_THREADS 64

struct sim_server_opts {
  const char *host;         /* numeric or resolvable; NULL = "127.0.0.1" */
  int port;                 /* 0 = let the kernel pick (see sim_server_port) */
  int threads;              /* worker threads, 1..SIM_SERVER_MAX_THREADS; 0 = 2 */
  uint64_t seed;            /* fault and jitter draws */
  int latency_ms;           /* added to every chat completions reply */
  int jitter_ms;            /* uniform in [-jitter, +jitter] around latency_ms, floor 0 */
  struct sim_faults faults; /* from sim_faults_parse(); zeroed = no faults */
  int no_response_format;   /* answer 400 to requests carrying "response_format", as servers
                                without structured outputs do (tests the client's fallback) */
  /* Real-server behaviours (docs/sim-server.md, "Real-server behaviours"): */
  int ctx_size;       /* > 0: a request whose prompt is estimated above this many tokens gets
                         llama-server's 400 "request exceeds the available context size" */
  int cut_max_tokens; /* cut replies at the request's max_tokens: finish_reason "length" */
  int ignore_schema;  /* accept response_format and ignore it: replies carry no JSON */
  double judge_skip, judge_dup; /* share of judge replies that drop their last verdict /
                                   repeat their first (drawn from the request's hash) */
};

struct sim_server_stats {
  uint64_t connections; /* accepted */
  uint64_t requests;    /* HTTP requests parsed (including bad ones) */
  uint64_t chat;        /* chat completions requests among them */
  uint64_t bad;         /* malformed requests answered 400/413/431/501 */
  uint64_t faults[8];   /* by enum sim_fault (index 0 unused) */
};

struct sim_server;

/* Resolve host, raise RLIMIT_NOFILE to its hard limit, create and bind the
 * listeners. Returns 0, or with a message in err AD_EINVAL (bad options, a host that
 * does not resolve) or AD_EIO (socket, bind/listen - e.g. the address in use -,
 * eventfd or epoll failed). The server does not serve until sim_server_run(). */
int sim_server_open(const struct sim_server_opts *opts, struct sim_server **out, char *err,
                    size_t errlen);
/* The bound port (the kernel's choice when opts.port was 0). */
int sim_server_port(const struct sim_server *s);
/* "http://HOST:PORT/v1" into out. */
void sim_server_url(const struct sim_server *s, char *out, size_t outlen);
/* Serve until sim_server_stop(): starts the workers and joins them. On stop,
 * listeners close, idle connections close, and replies already waiting on a
 * latency timer are still sent (for at most 5 s). Returns 0, or AD_ENOMEM when the
 * system cannot start a worker thread (the server is then stopped). */
int sim_server_run(struct sim_server *s);
/* Ask a running server to stop. Async-signal-safe (one write to an eventfd). */
void sim_server_stop(struct sim_server *s);
/* Counters summed over workers; exact after sim_server_run() returns. */
void sim_server_stats(const struct sim_server *s, struct sim_server_stats *out);
void sim_server_free(struct sim_server *s);

#endif
