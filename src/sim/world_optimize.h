/* world_optimize.h - the sim world's optimiser models (docs/sim.md, docs/optimize.md).
 *
 * sim-analyzer reads the trajectories an `autodata optimize` iteration shows it (the
 * TRAJECTORY lines of prompts/optimize-analyzer.md) and writes a root-cause analysis;
 * sim-implementer reads that analysis and the current prompts (<<<PROMPT name>>> ...
 * <<<END PROMPT>>> blocks, prompts/optimize-implementer.md) and proposes new prompt
 * texts as JSON. Like every sim model they read only the model name, the seed and the
 * messages' text; the implementer's edits are drawn from the sim challenger's guidance
 * topics with noise, decoys and harmful edits, so only measurement finds the good ones.
 */
#ifndef AD_SIM_WORLD_OPTIMIZE_H
#define AD_SIM_WORLD_OPTIMIZE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* As sim_world_answer(): 1 and *content (malloc'd) for sim-analyzer / sim-implementer,
 * 0 for another model, or a negative AD_E* code with a message in err. */
int sim_world_optimize_answer(const json_t *request, const char *model, char **content,
                              int64_t *prompt_tokens, int64_t *completion_tokens, char *err,
                              size_t errlen);

#endif
