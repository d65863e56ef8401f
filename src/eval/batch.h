/* batch.h - batched judging: one judge reply grading several answers to one question.
 *
 * The reply gives, for each answer numbered 1..n_answers, what the single judge gives for
 * one answer (score.h):
 *   rubric:     {"answers": [{"answer": 1, "verdicts": [{"criterion": 1, "met": true,
 *                             "reason": "..."}, ...]}, ...]}
 *   verifiable: {"answers": [{"answer": 1, "correct": true, "reason": "..."}, ...]}
 * Parsing is as strict as the single judge's: every answer exactly once (none missing,
 * repeated or out of range), and each answer's verdicts checked by score_parse_verdicts()
 * (exactly one boolean verdict per criterion) or score_parse_correct(). The replies are
 * untrusted: an error names the answer and what is wrong. Pure functions.
 */
#ifndef AD_EVAL_BATCH_H
#define AD_EVAL_BATCH_H

#include <jansson.h>
#include <stddef.h>

#define BATCH_MAX_ANSWERS 64

/* Rubric verdicts of n_answers answers with n_criteria criteria each: 0 with
 * met[a * n_criteria + c] set for answer a (0-based) and criterion c; else AD_EPARSE with a
 * message in err and met all 0. */
int batch_parse_verdicts(const char *text, size_t len, int n_answers, int n_criteria, int *met,
                         char *err, size_t errlen);
/* Verifier verdicts: 0 with correct[a] = 0/1 for each answer; else AD_EPARSE. */
int batch_parse_correct(const char *text, size_t len, int n_answers, int *correct, char *err,
                        size_t errlen);

/* JSON Schemas of the two replies (new references): exactly n_answers items, answer numbers
 * in [1, n_answers] (the parser checks each appears once), each item the single judge's
 * shape. */
json_t *batch_judge_schema(int n_answers, int n_criteria);
json_t *batch_correct_schema(int n_answers);

#endif
