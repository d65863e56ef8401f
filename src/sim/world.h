/* world.h - the sim world's models (see docs/sim.md).
 *
 * sim_world_answer() answers one Chat Completions request whose model names a
 * sim world model (sim-challenger, sim-orchestrator, sim-quality, sim-judge,
 * sim-solver@SKILL). It reads the prompts the program really renders and
 * answers in the real formats. Every draw is seeded from the request (messages,
 * seed, model), so the same request gets the same reply. Thread-safe.
 *
 * Returns 1 and sets *content (malloc'd, caller frees; never NULL) and the token
 * counts when the model is a sim world model; 0 when it is not (the caller makes a
 * generic reply); or, with a message in err, a negative AD_E* code: AD_EINVAL for a
 * malformed request (not an object, no model or messages, a bad solver skill, a
 * value the reply cannot carry), AD_ETOOBIG for messages or a reply past their caps.
 */
#ifndef AD_SIM_WORLD_H
#define AD_SIM_WORLD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

int sim_world_answer(const json_t *request, char **content, int64_t *prompt_tokens,
                     int64_t *completion_tokens, char *err, size_t errlen);

/* The effective world parameters of a sim world model name (its defaults with what the
 * name sets after '@'; docs/sim.md), as a new JSON object in *params. Returns 1 for a world
 * model, 0 (and *params NULL) for another name, AD_EINVAL with a message in err for a
 * world model name with a bad parameter. */
int sim_world_params(const char *model, json_t **params, char *err, size_t errlen);

#endif
