/* think.h - a sim solver's reasoning: filler sized by a token count (docs/sim.md).
 *
 * `sim-solver@SKILL,think=N` answers the way a reasoning server does: about N tokens
 * of reasoning before the final answer, returned in the message's "reasoning_content"
 * (vLLM's and SGLang's reasoning parsers, llama-server), or with `tags=1` inside the
 * content as "<think>...</think>" before the answer (a server with no reasoning
 * parser). The reasoning is filler: no fact name, number or heading the sim world
 * reads elsewhere, drawn from its own stream, so the answer is the same whatever N is.
 * Completion tokens count it (characters / 4, as the sim counts every reply).
 */
#ifndef AD_SIM_THINK_H
#define AD_SIM_THINK_H

#include <stddef.h>
#include <stdint.h>

#define SIM_THINK_MAX 65536 /* the paper's reasoning budget, tokens */

struct sim_think {
  int tokens; /* N: the mean reasoning length in tokens; 0 = no reasoning */
  int tags;   /* 1: "<think>...</think>" in the content instead of reasoning_content */
};

/* Parse the solver's keys after its skill and comma ("think=2000,tags=1") into *t.
 * 0, or AD_EINVAL with a message naming the model and the key. */
int sim_think_parse(const char *model, const char *spec, struct sim_think *t, char *err,
                    size_t errlen);

/* The solver keys of a model name "sim-solver@SKILL[,key=value...]": 1 and *t filled
 * for a sim solver (zeros when it sets none), 0 for another model name, AD_EINVAL (err
 * set) for a bad key. */
int sim_think_of_model(const char *model, struct sim_think *t, char *err, size_t errlen);

/* The reasoning text for one reply: between N/2 and 3N/2 tokens (4 characters each),
 * the length and words drawn from seed. malloc'd; *len set. NULL when t->tokens is 0. */
char *sim_think_text(const struct sim_think *t, uint64_t seed, size_t *len);

#endif
