/* lock.h - the locked evaluator: what an implementer's proposal may change.
 *
 * Only the texts of the recipe's editable prompts (optimize.editable) may change. A
 * proposal is refused, with the reason, and never evaluated when it
 *   - is not a JSON object {"prompts": {role: text, ...}, "rationale": "..."};
 *   - has any other member (a bound, a sampling setting, a budget, a score: "changes
 *     'accept'; only prompt texts may change");
 *   - names a prompt outside the edit surface (a solver, the judge) or no prompt at all;
 *   - gives a text that is not a string, is longer than optimize.max_prompt_chars, does not
 *     compile as a prompt template, uses a variable the role is not given, or no longer
 *     uses a variable the baseline's prompt used (the loop's {{source_text}}, {{feedback}}...);
 *   - changes nothing.
 * Pure: reads no file and no store.
 */
#ifndef AD_OPT_LOCK_H
#define AD_OPT_LOCK_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "recipe/recipe.h"

/* Check reply (the implementer's text) against the edit surface of rc, given the
 * baseline's prompts and the parent's (objects role name -> text). 0 and *mutant (a new
 * object: the parent's texts with the proposal's changes; *rationale a new string, ""
 * when none), or AD_EINVAL with the refusal's reason in reason. */
int opt_lock_check(const struct recipe *rc, const json_t *baseline, const json_t *parent,
                   const char *reply, json_t **mutant, char **rationale, char *reason,
                   size_t reason_len);

/* The variant's id: SHA-256 (hex) of the canonical JSON of its prompts object. */
void opt_variant_sha(const json_t *prompts, char out[65]);

/* Split n ids by a seeded draw: split[i] = 0 train, 1 val, 2 test, -1 unused; the
 * first ntrain of the shuffled order are train, the next nval val, the next ntest test.
 * AD_EINVAL (message in err) when n < ntrain + nval + ntest. */
int opt_split_draw(size_t n, uint64_t seed, int ntrain, int nval, int ntest, int *split, char *err,
                   size_t errlen);

#endif
