/* world_paper.h - the sim world's models for the paper's setups (docs/sim.md, "The
 * paper's setups"): signed rubrics (negative criteria). Called from world.c's models
 * through small hooks; private to src/sim.
 */
#ifndef AD_SIM_WORLD_PAPER_H
#define AD_SIM_WORLD_PAPER_H

#include <jansson.h>
#include <stddef.h>

#include "sim/facts.h"
#include "util/buf.h"
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

/* sim-extractor: the first stage of a two-stage challenger. Declares the document
 * unsuitable with probability p_unsuitable (a draw seeded by the request, so fixed per
 * document) or when it states no fact; else suitable, with an extraction that counts the
 * document's facts without naming them (the writer reads the source itself; naming them would
 * make every fact look "asked before" to the sim challenger). Reply:
 * {"suitable": bool, "reason": "...", "extraction"?: "..."}. 0 or a buf error. */
int sim_paper_extractor(struct rng *r, const char *user, double p_unsuitable, struct buf *out);

/* sim-loop-judge: reads "weak avg: W%" and "strong avg: S%" in the evaluation and answers
 * accept when the strong model mostly succeeds and clearly beats the weak one (S >= 50 and
 * S - W >= 20: its own standard, not the recipe's bounds), improve otherwise or when it finds
 * no numbers; the verdict is flipped with probability err. Reply {"verdict", "reason"}. */
int sim_paper_loop_judge(struct rng *r, const char *last, double err, struct buf *out);

#endif
