/* retry.h - the llm client's pure policy arithmetic (internal to src/llm/, exposed for tests).
 *
 * Nothing here does I/O or reads a clock: every function takes "now" and its state
 * as arguments, so tests can check bounds and decisions exactly.
 */
#ifndef AD_LLM_RETRY_H
#define AD_LLM_RETRY_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util/err.h"
#include "util/rng.h"

/* Exponential backoff with FULL jitter for the delay before retry number
 * `attempt` (0 = the delay after the first failed attempt):
 *   uniform(0, min(max_ms, base_ms * 2^attempt))  (integer ms, inclusive of 0).
 * Overflow-safe for any attempt >= 0. */
int64_t llm_backoff_ms(struct rng *r, int attempt, int64_t base_ms, int64_t max_ms);

/* Parse a Retry-After header value: delta-seconds ("120", fractional accepted) or
 * an HTTP-date ("Wed, 21 Oct 2015 07:28:00 GMT", also RFC 850 and asctime forms)
 * relative to now (seconds since the epoch). Returns 0 with the delay in *ms (>= 0;
 * a date in the past gives 0), or AD_EPARSE (*ms untouched) when the value is not
 * understood (also for NULL). */
AD_WUR int llm_parse_retry_after(const char *value, time_t now, int64_t *ms);

/* One base URL's state as the selector sees it. */
struct llm_url_state {
  int outstanding;       /* attempts in flight on this URL */
  int64_t down_until_ms; /* marked down until this monotonic time; 0 = up */
};

/* Pick a base URL: among URLs that are up (down_until_ms <= now_ms), the one with
 * the fewest outstanding attempts; ties go to the first at or after index
 * rr % n (round robin). If every URL is down, the one that comes back soonest
 * (failover must never leave a call without a URL). `avoid` (or -1) is skipped
 * when another URL is up (a retry goes elsewhere when it can). Returns an index
 * in [0, n), or -1 when n <= 0. */
int llm_pick_url(const struct llm_url_state *u, int n, int64_t now_ms, unsigned rr, int avoid);

/* Cool-off after a URL failed to connect `consecutive` times in a row (>= 1):
 * 2 s, 4 s, 8 s, ... capped at 60 s. */
int64_t llm_down_cooloff_ms(int consecutive);

/* AIMD concurrency limit of one endpoint. */
struct llm_aimd {
  int limit;      /* current limit, 1..max */
  int max;        /* the configured max_inflight */
  int successes;  /* successes since the last change */
  unsigned epoch; /* bumped on every cut; an attempt started in an older epoch cannot cut again */
};
/* Start at min(16, max) (adaptive) or max (not adaptive). */
void llm_aimd_init(struct llm_aimd *a, int max, int adaptive);
/* A success: +1 after `limit` successes in a row (one window), up to max. */
void llm_aimd_success(struct llm_aimd *a);
/* Overload (429 or timeout) seen by an attempt started in `epoch`: halve (not below
 * 1) unless a cut already happened since that attempt started. Returns 1 if cut. */
int llm_aimd_overload(struct llm_aimd *a, unsigned epoch);

/* A token bucket refilled continuously at rate_per_min, holding at most cap. */
struct llm_bucket {
  double rate_per_min; /* 0 = unlimited */
  double cap;
  double level; /* may go negative after a correction */
  int64_t last_ms;
};
void llm_bucket_init(struct llm_bucket *b, double rate_per_min, int64_t now_ms);
/* 0 if `cost` can be taken now (and takes it), else the ms to wait (> 0). A cost
 * above cap is admitted when the bucket is full, so nothing waits forever. */
int64_t llm_bucket_take(struct llm_bucket *b, double cost, int64_t now_ms);
/* Add (or with a negative delta, take) tokens after the fact, e.g. when a reply's
 * usage corrects an estimate. */
void llm_bucket_adjust(struct llm_bucket *b, double delta, int64_t now_ms);

/* Write at most cap-1 bytes of s[0..n) into out for an error message: control
 * bytes become spaces, other non-printable bytes '?', quotes kept; NUL-terminated. */
void llm_sanitize(const char *s, size_t n, char *out, size_t cap);

#endif
