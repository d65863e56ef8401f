/* sim.h - the sim backend: an OpenAI-compatible "server" as a pure function.
 *
 * sim_handle() answers one HTTP-shaped request. It is what `autodata sim-server`
 * serves over HTTP and what the llm client calls in-process for base URL "sim".
 * The reply body depends only on the request body (content, model, seed, ...):
 * the same request gets the same reply, over HTTP or in-process, with or without
 * faults. Faults (429/500/drop/garbage/slow) are drawn per HTTP request by the
 * server (sim_faults_*), never by sim_handle().
 *
 * Model names choose the sim model: sim-challenger, sim-orchestrator,
 * sim-quality, sim-judge, sim-solver@SKILL (the sim world, src/sim/world.h).
 * Any other model name gets a deterministic generic reply derived from a hash
 * of the request. Thread-safe (no shared mutable state).
 */
#ifndef AD_SIM_H
#define AD_SIM_H

#include <stddef.h>
#include <stdint.h>

#include "util/err.h"

struct sim_response {
  int status; /* HTTP status */
  char *body; /* malloc'd, owned by the caller after the call */
  size_t len;
  const char *content_type;
};

/* method "GET"/"POST", path "/v1/chat/completions" or "/v1/models" (a "/v1"
 * prefix is optional). Always fills out (404/400/405 for bad requests). */
void sim_handle(const char *method, const char *path, const char *body, size_t len,
                struct sim_response *out);
void sim_response_release(struct sim_response *r);

/* Fault injection for the HTTP server. */
enum sim_fault {
  SIM_FAULT_NONE = 0,
  SIM_FAULT_429,
  SIM_FAULT_500,
  SIM_FAULT_503,
  SIM_FAULT_DROP,
  SIM_FAULT_GARBAGE,
  SIM_FAULT_SLOW,
  SIM_FAULT_TRUNCATE
};
struct sim_faults {
  double p[8];       /* probability per enum sim_fault */
  int retry_after_s; /* sent with 429 (default 1) */
  int slow_ms;       /* extra delay for SLOW (default 2000) */
};
/* Parse "429=0.1,500=0.05,drop=0.02,garbage=0.02,slow=0.05" (NULL or "" = no faults).
 * Returns 0, or AD_EINVAL with a message naming the bad item in err (*out untouched). */
AD_WUR int sim_faults_parse(const char *spec, struct sim_faults *out, char *err, size_t errlen);
/* Draw a fault for one request given a uniform u in [0,1). */
enum sim_fault sim_faults_draw(const struct sim_faults *f, double u);
/* The spec name of a fault kind ("429", "drop", ...; "none" for SIM_FAULT_NONE). */
const char *sim_fault_name(enum sim_fault f);

#endif
