/* judge_batch.h - the sim judge's batched mode (src/sim/world.c dispatches to it).
 *
 * A batched judge request lists several responses to one question after its rubric (or
 * reference answer), each under its own heading:
 *
 *   QUESTION: ... RUBRIC: ... (or REFERENCE ANSWER: ...)
 *   RESPONSE 1:
 *   <text>
 *   RESPONSE 2:
 *   <text>
 *
 * The sim grades each response exactly as the single judge grades a request with that
 * header and "RESPONSE:\n<text>" (the same models, the same error rates, draws from the
 * same stream in response order) and replies
 *   {"answers": [{"answer": 1, <the single judge's reply>...}, ...]}
 * (eval/batch.h). Nothing here knows a verdict that the single judge does not.
 */
#ifndef AD_SIM_JUDGE_BATCH_H
#define AD_SIM_JUDGE_BATCH_H

#include "util/buf.h"

#define SIM_BATCH_MAX 64

/* 1 when text (the last user message) is a batched judge request. */
int sim_judge_is_batch(const char *text);

/* Grade one single-judge request text into reply (the single judge's JSON). 0 or AD_E*. */
typedef int (*sim_judge_one_fn)(void *ctx, const char *single_text, struct buf *reply);

/* Grade every response of a batched request through one() and write the batched reply
 * to out. 0, or an AD_E* code (one()'s, or AD_EINVAL for a request with no response). */
int sim_judge_batch(const char *text, sim_judge_one_fn one, void *ctx, struct buf *out);

#endif
