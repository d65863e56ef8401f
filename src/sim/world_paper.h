/* world_paper.h - the sim world's models for the paper's setups (docs/sim.md, "The
 * paper's setups"): signed rubrics (negative criteria). Called from world.c's models
 * through small hooks; private to src/sim.
 */
#ifndef AD_SIM_WORLD_PAPER_H
#define AD_SIM_WORLD_PAPER_H

#include <jansson.h>
#include <stddef.h>

#include "sim/facts.h"
#include "util/rng.h"

/* 1 when the challenger's messages ask for negative rubric criteria ("negative
 * criteria", case-insensitive): a signed rubric. */
int sim_paper_wants_negative(const char *all);

/* Turn the rubric of the challenger's reply o (a rubric candidate) into a signed one:
 * every criterion gets "category": "positive", then one or two negative criteria
 * follow, each "States that F-xxxx is <a wrong value>" (one of the picked facts, its
 * value off by 1..3, as a weaker solver misstates it) with a weight in -7..-1; and
 * "reasoning_skills" (two tags) is added. Draws from r after every other draw of the
 * reply. 0, or AD_EINVAL when o has no rubric array. */
int sim_paper_sign_rubric(struct rng *r, json_t *o, struct sim_fact *const *pick, size_t m);

/* The quality verifier's weight rule for one rubric item: an integer in 1..7, or in
 * -7..-1 with "category": "negative". */
int sim_paper_weight_ok(const json_t *item);

#endif
