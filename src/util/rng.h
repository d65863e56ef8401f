/* rng.h - deterministic pseudo-random numbers (xoshiro256**, seeded by splitmix64).
 *
 * Everything random in autodata (sampling seeds, jitter, sim draws, shuffles) comes
 * from an explicit struct rng, never from rand() or time, so runs are reproducible.
 * rng_derive() turns a base seed plus labelled parts into a new seed: the program
 * derives each call's sampling seed from (run seed, source, round, role, sample).
 */
#ifndef AD_RNG_H
#define AD_RNG_H

#include <stdint.h>

struct rng {
  uint64_t s[4];
};

void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
/* Uniform in [0, 1). */
double rng_double(struct rng *r);
/* Uniform in [0, n); n > 0. */
uint64_t rng_below(struct rng *r, uint64_t n);
/* A 63-bit seed (fits a JSON integer) derived from base and a printf-style label. */
uint64_t rng_derive(uint64_t base, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
