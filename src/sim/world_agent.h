/* world_agent.h - the sim world's tool-calling models (see docs/sim.md, "sim-agent").
 *
 *   sim-agent[@n=N,prior=P]   the data scientist as a tool-calling agent: it answers every
 *                             turn with tool calls (generate, check_quality, evaluate, submit,
 *                             give_up) chosen by a fixed policy that reads the earlier tool
 *                             results in the conversation;
 *   sim-hostile@script=A:B:C  a scripted adversary for tests: turn k plays step k of the
 *                             script (the last step repeats): unknown tools, malformed
 *                             arguments, unknown ids, premature submits, text-only replies.
 *
 * Like every sim model they read only the model name, the seed and the messages (contents,
 * and the tool calls of earlier assistant messages). Thread-safe, no state between calls.
 */
#ifndef AD_SIM_WORLD_AGENT_H
#define AD_SIM_WORLD_AGENT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* 1 when model names a tool-calling sim model (sim-agent, sim-hostile, with or without
 * parameters), else 0. */
int sim_agent_model(const char *model);

/* Answer a request for a tool-calling sim model. Returns 1 with *content (malloc'd, ""
 * when the reply is only tool calls) and *tool_calls (a new reference to an OpenAI
 * tool_calls array, or NULL for a text-only reply) and the token counts; 0 when the model
 * is not one of them; or a negative AD_E* code with a message in err (a bad parameter, a
 * malformed request). */
int sim_agent_answer(const json_t *request, char **content, json_t **tool_calls,
                     int64_t *prompt_tokens, int64_t *completion_tokens, char *err, size_t errlen);

/* The effective parameters of a tool-calling sim model name as a new JSON object in
 * *params: 1 for such a name, 0 (and *params NULL) for another, AD_EINVAL with a
 * message in err for a bad parameter. */
int sim_agent_params(const char *model, json_t **params, char *err, size_t errlen);

#endif
