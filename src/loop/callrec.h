/* callrec.h - one model call's record in the store, the same for every caller.
 *
 * A call is recorded with its canonical request text (the cache key's material and
 * the bytes sent), its cache key, every attempt the client made (status, error,
 * latency, Retry-After) and its outcome (reply body, error, tokens). `autodata run`
 * and the client load driver (`autodata chat-load --store`) both record through this,
 * so their rows are the same and a benchmark measures what a run does.
 *
 * Usage: callrec_begin() when the call is made; callrec_attempt() from the client's
 * attempt callback; callrec_put() when it is done (or, for a
 * reply taken from the cache, at once with res NULL); callrec_release() at the end.
 * Not thread-safe; one struct callrec per call.
 */
#ifndef AD_CALLREC_H
#define AD_CALLREC_H

#include <jansson.h>

#include "llm/llm.h"
#include "store/store.h"

#define CALLREC_MAX_ATTEMPTS 32 /* attempts past this are not itemised (the count is kept) */

struct callrec {
  char *canon; /* canonical request text (owned) */
  size_t canon_len;
  char key[33]; /* cache key of (endpoint, canon) */
  struct store_attempt attempts[CALLREC_MAX_ATTEMPTS];
  char *attempt_err[CALLREC_MAX_ATTEMPTS]; /* owned copies behind attempts[].error */
  int n_attempts;
};

/* What the call was: borrowed strings, as stored in the calls table. */
struct callrec_id {
  const char *role;      /* "challenger", "judge_weak", "load", ... */
  const char *source_id; /* NULL when not tied to a source */
  int round;             /* -1 when not tied to a round */
  const char *endpoint;
  const char *model;
};

/* Compute the canonical text and cache key of body, the request exactly as it goes
 * on the wire (endpoint extras merged, see llm_merge_extra). Zeroes r first. */
void callrec_begin(struct callrec *r, const char *endpoint, const json_t *body);
/* Record one attempt (call it from the client's llm_attempt_fn). */
void callrec_attempt(struct callrec *r, const struct llm_attempt *a);
/* Fill the outcome fields of a store row (reply, error, HTTP status, tokens, latency,
 * attempts, retries) from a finished call. Pointers borrow from res. */
void callrec_outcome(struct store_call *sc, const struct llm_result *res);
/* Write the row: res is the call's outcome, or NULL for a reply taken from the cache
 * (then no request body is stored and the row counts as a cache hit). Returns 0 or
 * the store's AD_E* code (message in store_errmsg). */
AD_WUR int callrec_put(store *st, store_id run, const struct callrec *r,
                       const struct callrec_id *id, const struct llm_result *res);
/* Free what r owns (r itself is the caller's). */
void callrec_release(struct callrec *r);

#endif
