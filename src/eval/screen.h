/* screen.h - several challengers in one round (roles.challenger.parallel): the order in which
 * the candidates that passed screening are evaluated.
 *
 * A parallel round asks N challengers at once; each candidate is screened (parsed, the
 * programmatic checks, the quality verifier) before any solver runs, and the survivors are
 * evaluated one after another until one is accepted. The order uses only what the program
 * knows before a solver runs, and it is total and deterministic (docs/loop.md):
 *
 *   1. only survivors are ordered (a candidate that failed screening is never evaluated);
 *   2. fewer issues listed by the quality verifier in its passing verdict first (a pass
 *      with reservations is a weaker candidate);
 *   3. a candidate whose first reply parsed before one that needed the repair turn;
 *   4. the lower index (the challenger's position in the round) first.
 *
 * With no verifier reservations and no repairs the order is the challengers' own, so the
 * rule prefers nothing it cannot see (no length, topic or style preference).
 *
 * Pure, thread-safe.
 */
#ifndef AD_SCREEN_H
#define AD_SCREEN_H

/* The most challengers one round may ask for (roles.challenger.parallel). */
#define SCREEN_MAX_PARALLEL 8

/* What screening left of one candidate of the round. */
struct screen_cand {
  int survived;  /* passed the checks and the quality verifier */
  int qv_issues; /* issues the quality verifier listed (0 when the recipe has none) */
  int repaired;  /* the challenger needed its repair turn */
};

/* The survivors' indices in evaluation order, written to order[0..n); returns their count. */
int screen_order(const struct screen_cand *c, int n, int *order);

/* 1 when candidate a is evaluated before candidate b (both survivors; ia, ib their indices). */
int screen_before(const struct screen_cand *a, int ia, const struct screen_cand *b, int ib);

#endif
