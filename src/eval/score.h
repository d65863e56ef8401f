/* score.h - judge/verifier reply parsing and scoring.
 *
 * Rubric tasks: the judge returns {"verdicts":[{"criterion":1,"met":true,...}]}
 * (criterion numbers are 1-based, as in the RUBRIC: section of the prompt).
 * Tolerated: "met" as "yes"/"no"/"true"/"false"/1/0, a bare array of verdicts,
 * "index"/"number"/"id" instead of "criterion", verdicts without any number
 * (taken in order). Strict about coverage: a judgement must give exactly one
 * boolean verdict for each criterion 1..n; a missing, duplicated or out-of-range
 * criterion, a verdict without a boolean, or an empty list makes the judgement
 * invalid (never a silent "unmet", which would make answers look weaker than the
 * judge found them). score = clip(sum w_i*met_i / sum_{w_i>0} w_i, 0, 1).
 *
 * Verifiable tasks: the solver's final answer is extracted from its text and
 * compared with the reference by a matcher (exact, normalised, numeric) or by
 * an LLM judge whose {"correct": bool} reply is parsed here.
 *
 * Quality verifier: {"pass": bool, "issues": [...], "feedback": "..."}, or the
 * paper's line format (CHECK_n_VERDICT: ..., OVERALL: PASS|FAIL, FEEDBACK: ...).
 *
 * Pure functions, thread-safe. Errors are AD_EPARSE with a message in err
 * suitable for logs and for a repair turn.
 */
#ifndef AD_SCORE_H
#define AD_SCORE_H

#include <jansson.h>
#include <stddef.h>

/* ---- rubric judge ---- */

/* Parse a judge reply for a rubric of n criteria. met[0..n) is set to 0/1.
 * Returns 0 when every criterion has exactly one boolean verdict, else AD_EPARSE
 * with err naming the problem (no JSON, missing / duplicated / out-of-range
 * criteria, a verdict that is not true or false, an empty list) and met all 0. */
int score_parse_verdicts(const char *text, size_t len, int n, int *met, char *err, size_t errlen);

/* Weighted score in [0,1]: sum(w*met) / sum(positive w), clipped. 0 when no
 * positive weight. */
double score_rubric(const int *weights, const int *met, int n);

/* ---- verifiable ---- */

enum score_matcher {
  SCORE_AUTO = 0, /* SCORE_NUMERIC when the reference parses as a number, else SCORE_NORMALISED */
  SCORE_EXACT,
  SCORE_NORMALISED,
  SCORE_NUMERIC,
  SCORE_LLM /* an LLM verifier decides (the judge role) */
};

/* "auto" / "exact" / "normalised" (also "normalized") / "numeric" / "llm" -> 0 and *m,
 * else AD_EINVAL. */
int score_matcher_parse(const char *name, enum score_matcher *m);
const char *score_matcher_name(enum score_matcher m);

/* The solver's final answer: after skipping <think> blocks, the text after the
 * last "ANSWER:" (case-insensitive, markdown ** around it tolerated) to the end
 * of that line; else the content of the last \boxed{...}; else the last number;
 * else the last non-empty line. Trimmed; a trailing '.' is dropped. Caller
 * frees; never NULL ("" for an empty reply). */
char *score_final_answer(const char *text, size_t len);

/* Compare an extracted answer with the reference. Returns 1 match, 0 no match.
 * SCORE_EXACT: trimmed byte equality.
 * SCORE_NORMALISED: case-folded, \boxed{}/\text{}/$ removed, punctuation and
 *   whitespace stripped, articles (a, an, the) dropped.
 * SCORE_NUMERIC: both parse as numbers (integers, decimals, thousands
 *   separators "1,234", scientific "1e-3", fractions "3/4" and \frac{3}{4},
 *   a leading '+'/'-'; for the answer, the last number in it when it is not a
 *   number as a whole) and |a-b| <= 1e-6 * max(|a|,|b|) (or both are 0).
 * SCORE_AUTO: SCORE_NUMERIC when the reference parses as a number, else
 *   SCORE_NORMALISED.
 * SCORE_LLM: not decidable here; returns 0 (use score_parse_correct). */
int score_match(enum score_matcher m, const char *answer, const char *reference);

/* Parse a number as SCORE_NUMERIC does (whole string). 0 and *v, AD_EPARSE when s
 * is not a number, AD_EINVAL when s is NULL. */
int score_parse_number(const char *s, double *v);

/* Parse an LLM verifier reply {"correct": bool, "reason": "..."} ("yes"/"no",
 * 1/0 tolerated; also a line "CORRECT: yes|no"). Returns 0 with *correct set
 * to 0/1, or AD_EPARSE. */
int score_parse_correct(const char *text, size_t len, int *correct, char *err, size_t errlen);

/* ---- quality verifier ---- */

#define SCORE_QV_MAX_ISSUES 16

struct score_qv {
  int pass; /* 1 pass, 0 fail */
  int n_issues;
  char issues[SCORE_QV_MAX_ISSUES][48]; /* short tags: "leakage", "rubric_malformed", ... */
  char feedback[2048];                  /* free text, truncated on a UTF-8 boundary */
};

/* Parse a quality-verifier reply. JSON form {"pass", "issues", "feedback"}
 * ("pass" may also be "PASS"/"FAIL"/"yes"/"no"); or the line form where
 * OVERALL: PASS|FAIL decides and failing CHECK_n verdicts become issues
 * (LEAKS_ANSWER -> "leakage", TOO_EASY/RECALL -> "question_quality",
 * CHECK_3 FAIL -> "rubric_malformed", INCONSISTENT -> "type_mismatch").
 * Returns 0 or AD_EPARSE (err filled) when neither form is found. */
int score_parse_qv(const char *text, size_t len, struct score_qv *out, char *err, size_t errlen);

/* The rejection reason for a failed QV: "quality:<first issue>", or
 * "quality:rejected" when it listed none. Writes into out. */
void score_qv_reason(const struct score_qv *qv, char *out, size_t n);

/* ---- structured outputs ----
 * JSON Schemas of the replies parsed above (new references), as strict as the
 * parsers: the rubric judge's exactly n verdicts with criterion in [1, n] (JSON
 * Schema cannot say "each number once"; the parser checks that), the verifier's
 * {"correct", "reason"}, the quality verifier's {"pass", "issues", "feedback"}. */
json_t *score_judge_schema(int n);
json_t *score_correct_schema(void);
json_t *score_qv_schema(void);

#endif
