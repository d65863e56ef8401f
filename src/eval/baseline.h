/* baseline.h - the CoT-Self-Instruct filters (pure logic).
 *
 * The one-shot baseline methods (src/loop/method.h, docs/baselines.md) evaluate
 * every parsed candidate once; cot-self-instruct keeps an example only when it
 * passes one of these filters:
 *     Answer-Consistency (verifiable tasks): K sampled solutions; keep when the
 *       unique plurality answer has a share >= ac_min_share of the K and equals
 *       the generated answer. A tie for the top count means "no majority" and
 *       rejects. Unextractable answers count in K but never win.
 *     RIP (rubric tasks): K answers scored by the judge; the LOWEST score is the
 *       example's quality; keep when quality >= rip_threshold. A sample whose
 *       answer or judging failed is left out; no scored sample rejects.
 *
 * Pure functions, thread-safe, no allocation except where stated.
 */
#ifndef AD_BASELINE_H
#define AD_BASELINE_H

#include <stddef.h>

#include "eval/score.h"
#include "util/err.h"

#define BL_MAX_K 64

struct bl_params {
  int k;                /* filter samples (1..BL_MAX_K); default 4 */
  double rip_threshold; /* RIP keeps quality >= this; default 0.5 */
  double ac_min_share;  /* Answer-Consistency plurality share needed; default 0.5 */
};
void bl_params_default(struct bl_params *p);
/* 0, or AD_EINVAL with a message naming the bad field in err (err may be NULL/0). */
int bl_params_check(const struct bl_params *p, char *err, size_t errlen);

/* RIP over n scores (n may be 0). *quality = the minimum score (0 when n == 0).
 * Returns 1 keep (n > 0 and min >= threshold), 0 reject. */
int bl_rip(const double *scores, int n, double threshold, double *quality);

/* Two extracted answers are the same answer: both parse as numbers
 * (score_parse_number) and match numerically, else they match normalised
 * (score_match SCORE_NORMALISED). NULL or "" never equals anything. */
int bl_same_answer(const char *a, const char *b);

struct bl_majority {
  int winner;   /* index into answers of the first answer of the unique top
                      group, or -1 (no answers, or a tie for the top count) */
  int count;    /* size of the top group (also on a tie) */
  int tied;     /* 1 when two or more groups share the top count */
  double share; /* count / n (0 when n == 0) */
};
/* Group the n answers (NULL or "" = no answer, never grouped) by bl_same_answer
 * and find the plurality. */
void bl_majority(const char *const *answers, int n, struct bl_majority *out);

/* Answer-Consistency: 1 keep when there is a unique plurality answer, its share
 * >= min_share, and it is the same answer as reference; else 0. maj (may be
 * NULL) gets the plurality. */
int bl_answer_consistency(const char *const *answers, int n, const char *reference,
                          double min_share, struct bl_majority *maj);

#endif
