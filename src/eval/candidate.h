/* candidate.h - parse and validate a challenger's candidate example.
 *
 * Two task kinds:
 *   rubric      {"question_type"?, "reasoning_skills"?, "context", "question",
 *                "reference_answer", "rubric": [{"criterion": "...", "weight": 5,
 *                "category"?: "positive"|"negative"}, ...]}
 *               A signed rubric (checks.signed_rubric, the paper's original form) gives
 *               every criterion a "category"; a negative criterion has a negative weight,
 *               is phrased in the affirmative ("States that X is 12") and is met when
 *               the answer shows that error (score.h: the clipped, normalised sum).
 *               "reasoning_skills" is an array of 2-3 short tags, optional unless
 *               checks.reasoning_skills asks for it.
 *   verifiable  {"question", "answer", "context"?}   (a numeric answer is accepted
 *                and kept as its text, e.g. 17 -> "17")
 *
 * cand_parse() runs, in order: extraction from the raw reply (extract.h), the
 * schema (field presence and types), then the programmatic checks configured
 * in struct cand_checks. The first problem found is reported as a cand_issue:
 *
 *   kind            reason                  example
 *   CAND_PARSE      "parse_error"           no JSON object in the reply / truncated
 *   CAND_SCHEMA     "not_object"            the JSON value is not an object
 *                   "missing_field"         "question" missing
 *                   "field_type"            "context" is a number
 *                   "empty_field"           "question" is blank
 *                   "rubric_type"           "rubric" is not an array
 *                   "rubric_item_type"      rubric[2] is not an object
 *                   "rubric_empty_criterion"
 *                   "rubric_weight_type"    weight missing, a string ("5"), a bool or
 *                                           a non-integral number
 *                   "rubric_category"       signed rubric: "category" missing or not
 *                                           "positive" / "negative" (any rubric: a
 *                                           category that is neither)
 *                   "reasoning_skills"      not an array of 2-3 non-empty strings, or
 *                                           missing when required
 *   CAND_CHECK      "check:rubric_size"     size outside [rubric_min, rubric_max]
 *                   "check:rubric_weight"   weight < 1 or > max_weight (signed: a positive
 *                                           criterion's in [1, max_weight], a negative
 *                                           one's in [-max_weight, -1])
 *                   "check:rubric_kinds"    counts of positive / negative criteria outside
 *                                           their bounds (a negative criterion in a
 *                                           positive-only rubric)
 *                   "check:context_length"  context outside [min, max] characters
 *                   "check:leakage"         reference answer leaks into the context
 *                   "check:duplicate"       question already seen for this source
 *                   "check:question_length" overrides: the question is too long
 *                   "check:pattern"         overrides: a refused pattern matches
 *
 * The message names the field / item and says what is expected, so it can go
 * straight into the challenger's feedback ("QV reason: <reason>: <message>").
 * The episode's rejection reason is "parse_error" for CAND_PARSE and
 * CAND_SCHEMA, and the reason itself ("check:...") for CAND_CHECK.
 *
 * Pure functions, thread-safe.
 */
#ifndef AD_CANDIDATE_H
#define AD_CANDIDATE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct override_set;

enum cand_task { CAND_TASK_RUBRIC = 0, CAND_TASK_VERIFIABLE = 1 };

/* "rubric" / "verifiable" -> 0 and *t, else AD_EINVAL. */
int cand_task_parse(const char *name, enum cand_task *t);
const char *cand_task_name(enum cand_task t);

/* Programmatic checks, filled from the recipe's `checks` section. */
struct cand_checks {
  int max_context_chars;      /* characters (UTF-8 code points); 0 = no limit; default 6000 */
  int min_context_chars;      /* rubric tasks only; default 0 */
  int leakage_ngram;          /* word n-gram size; default 8; 0 disables the leakage check */
  double leakage_max_overlap; /* max fraction of the reference's n-grams found in the context;
                                 default 0.5 */
  int rubric_min, rubric_max; /* criteria count bounds; default 1 and 20 */
  int max_weight;             /* weights must be in [1, max_weight]; default 7 */
  int dedup;                  /* reject duplicate questions; default 1 */
  /* Signed rubrics (the paper's original CS rubric). 0 (default): positive criteria only,
   * weights in [1, max_weight]. 1: each criterion has a "category"; negative ones carry
   * weights in [-max_weight, -1]. */
  int signed_rubric;
  int positive_min, positive_max; /* counts of positive criteria; default 1 and 0 (no bound) */
  int negative_min, negative_max; /* counts of negative criteria; default 0 and 0 (no bound) */
  int reasoning_skills;           /* 1: "reasoning_skills" is required (and in the schema) */
  /* Programmatic overrides (override.h: maximum question length, refused patterns), checked
   * after the others; borrowed from its owner (the recipe); NULL: none. */
  const struct override_set *overrides;
};
void cand_checks_default(struct cand_checks *c);

/* Rubric presets (checks.rubric_preset): "positive" (the default: positive criteria only,
 * weights 1..7, 1..20 criteria - the paper's rule after optimisation) and "signed" (the
 * paper's original CS rubric: 10-15 criteria, 7-10 positive with weights 1..10 and 3-5
 * negative with weights -10..-1). Sets the rubric fields of c (the others are kept).
 * 0, or AD_EINVAL for an unknown name. */
int cand_rubric_preset(const char *name, struct cand_checks *c);

struct cand_criterion {
  const char *criterion; /* borrowed from cand.json */
  int weight;
  int negative; /* category "negative" */
};

#define CAND_MAX_RUBRIC 256 /* hard cap on criteria, whatever rubric_max says */

struct cand {
  enum cand_task task;
  json_t *json;                  /* the parsed object (owned: one reference) */
  const char *question_type;     /* borrowed; "" when absent */
  const char *context;           /* borrowed; "" when absent (verifiable) */
  const char *question;          /* borrowed */
  const char *reference_answer;  /* rubric: reference_answer; verifiable: answer (borrowed) */
  struct cand_criterion *rubric; /* owned array (malloc), n_rubric items; NULL for verifiable */
  int n_rubric;
  int total_weight;         /* sum of the positive weights */
  int n_negative;           /* criteria with category "negative" */
  int signed_rubric;        /* parsed under checks.signed_rubric: records carry "category" */
  json_t *reasoning_skills; /* borrowed array of strings, or NULL when absent */
  uint64_t question_hash;   /* cand_question_hash(question) */
  char answer_buf[64];      /* holds a numeric "answer" rendered as text */
};

enum cand_issue_kind { CAND_OK = 0, CAND_PARSE, CAND_SCHEMA, CAND_CHECK };

struct cand_issue {
  enum cand_issue_kind kind;
  char reason[48];   /* see the table above; "" when kind == CAND_OK */
  char message[512]; /* human-readable, names the field/item and the expectation */
};

/* Hashes of normalised questions already seen (earlier candidates of this
 * source and accepted examples). Borrowed; may be NULL with n == 0. */
struct cand_seen {
  const uint64_t *hashes;
  size_t n;
};

/* Parse a raw challenger reply (text[0..len)) into out. Returns 0 when the
 * candidate passed everything; otherwise a negative AD_E* code (AD_EPARSE for
 * CAND_PARSE/CAND_SCHEMA, AD_EINVAL for CAND_CHECK) with issue filled in.
 * Whenever the schema step succeeded (including CAND_CHECK failures), *out is
 * filled and must be released with cand_release(); on CAND_PARSE/CAND_SCHEMA
 * failures *out is left empty (cand_release() on it is still safe).
 * checks NULL = defaults; seen may be NULL. */
int cand_parse(const char *text, size_t len, enum cand_task task, const struct cand_checks *checks,
               const struct cand_seen *seen, struct cand *out, struct cand_issue *issue);

/* Same from an already-parsed JSON value (borrowed; cand takes its own reference). */
int cand_from_json(json_t *obj, enum cand_task task, const struct cand_checks *checks,
                   const struct cand_seen *seen, struct cand *out, struct cand_issue *issue);

/* Run only the programmatic checks on a filled cand. Returns 0 or AD_EINVAL
 * with issue filled (kind CAND_CHECK). */
int cand_check(const struct cand *c, const struct cand_checks *checks, const struct cand_seen *seen,
               struct cand_issue *issue);

void cand_release(struct cand *c);

/* Hash of a normalised question: lowercase ASCII, every run of characters that
 * are not letters/digits (ASCII) becomes one space, trimmed. Bytes >= 0x80 are
 * kept as they are. Stable (XXH3), may be stored. */
uint64_t cand_question_hash(const char *question);

/* Fraction in [0,1] of the reference's distinct word n-grams (lowercased,
 * punctuation stripped; n shrinks to the reference's word count when that is
 * shorter) that also occur in text. 0 when the reference has no words. */
double cand_ngram_overlap(const char *reference, const char *text, int n);

/* 1 when the words of `answer` appear as a contiguous word sequence in text
 * (same tokenisation as above), else 0. An answer with no words gives 0. */
int cand_answer_in_text(const char *answer, const char *text);

/* Candidate as the JSON shown to the quality verifier (context, question,
 * question_type, reference_answer/answer, rubric). New reference. */
json_t *cand_to_json(const struct cand *c);

/* The rubric as the judge prompt's `rubric` variable: a new array of
 * {"number": 1, "weight": 5, "criterion": "...", "category": "positive",
 *  "negative": false} (numbers 1-based). Empty array for verifiable candidates. */
json_t *cand_rubric_vars(const struct cand *c);

/* The rubric as records keep it: [{"criterion", "weight"}, ...], each with its
 * "category" when the candidate is a signed rubric. New reference. */
json_t *cand_rubric_json(const struct cand *c);

/* JSON Schema of a candidate for the task (new reference), as strict as cand_parse() and
 * the checks (NULL: the defaults) allow: non-empty strings, the context's length bounds,
 * rubric size in [rubric_min, rubric_max] and integer weights in [1, max_weight] (signed
 * rubrics: in [-max_weight, max_weight], with a required "category"), and a required
 * "reasoning_skills" of 2-3 strings when checks->reasoning_skills.
 * cand_response_format() wraps it in a Chat Completions response_format object:
 * {"type":"json_schema","json_schema":{"name":"rubric_candidate"|"verifiable_candidate",
 *  "strict":true,"schema":...}}. */
json_t *cand_json_schema(enum cand_task task, const struct cand_checks *checks);
json_t *cand_response_format(enum cand_task task, const struct cand_checks *checks, int basic);

/* Wrap a schema (taken) as response_format {"type":"json_schema","json_schema":{"name":
 * name,"strict":true,"schema":schema}}. basic != 0 first drops the keywords some servers
 * reject (minLength, maxLength, minItems, maxItems, minimum, maximum, pattern) at every
 * depth, leaving the shape and the types. New reference. */
json_t *cand_schema_wrap(const char *name, json_t *schema, int basic);

#endif
