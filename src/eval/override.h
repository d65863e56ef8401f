/* override.h - programmatic overrides: rules that send a candidate back whatever the models
 * say (the paper's legal pipeline, "Layer 1"): a maximum question length and a list of
 * regular expressions (case-insensitive POSIX extended) that the question and its context
 * must not match (case recaps, exam prompts, role-play openings, old years). A candidate
 * that breaks one is rejected with the programmatic checks, before any solver runs, and the
 * rejection names the matching text, so the next round's feedback shows the writer exactly
 * what to remove:
 *
 *   check:question_length   "the question has 1240 characters; at most 1000 are allowed"
 *   check:pattern           "the question matches the refused pattern 'in re ': \"In re Smith\""
 *
 * An override set is compiled once (override_compile), owned by its holder (the recipe) and
 * released with override_release(); override_check() is pure and thread-safe.
 */
#ifndef AD_OVERRIDE_H
#define AD_OVERRIDE_H

#include <regex.h>
#include <stddef.h>

struct cand_issue;

#define OVERRIDE_MAX_PATTERNS 64

struct override_set {
  int max_question_chars; /* 0: no limit */
  int n;                  /* patterns */
  char **src;             /* the patterns as written (owned) */
  regex_t *re;            /* compiled (owned) */
};

/* Compile patterns[0..n) into o (emptied first). 0, or AD_EINVAL with err naming the
 * pattern (1-based) and the regex error; o is then empty. n <= OVERRIDE_MAX_PATTERNS. */
int override_compile(struct override_set *o, const char *const *patterns, int n,
                     int max_question_chars, char *err, size_t errlen);
void override_release(struct override_set *o);

/* Check a candidate's question and context. 0 when no override applies (o may be NULL),
 * else AD_EINVAL with is filled (kind CAND_CHECK, reason and message as above). */
int override_check(const struct override_set *o, const char *question, const char *context,
                   struct cand_issue *is);

#endif
