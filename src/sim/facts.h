/* facts.h - the sim world's facts: naming, hidden difficulty, true value, and
 * finding facts in text (see docs/sim.md).
 *
 * A fact is named "F-" + 4 lowercase hex digits (e.g. "F-3a9c") and written in
 * sim sources as `F-3a9c = 17`. Its difficulty in [0,1) and its true integer
 * value in [10,99] are pure functions of the name, so every sim model (sources,
 * challenger, solvers, judge, quality verifier) recomputes them without shared
 * state. A solver of skill s recalls a fact of difficulty d with probability
 * sim_recall_prob(s, d) = (1 - SIM_RECALL_SLIP) / (1 + exp(-SIM_RECALL_SLOPE * (s - d))).
 *
 * All functions are pure and thread-safe; none allocates.
 */
#ifndef AD_SIM_FACTS_H
#define AD_SIM_FACTS_H

#include <stddef.h>

#define SIM_FACT_NAME_LEN 6 /* "F-" + 4 hex digits, without the NUL */
#define SIM_RECALL_SLOPE 12.0
#define SIM_RECALL_SLIP 0.15 /* even a fact well within a solver's skill is misstated this often */
#define SIM_SOLVER_FORM 0.10 /* sd of a sample's skill around the solver's (its form) */

struct sim_fact {
  char name[SIM_FACT_NAME_LEN + 2]; /* NUL-terminated "F-xxxx" */
  long long value;                  /* the value as written in the text */
  double difficulty;                /* sim_fact_difficulty(name) */
};

/* Name for id (only the low 16 bits are used): "F-%04x". */
void sim_fact_name(unsigned id, char out[SIM_FACT_NAME_LEN + 2]);
/* Difficulty in [0,1) of the fact named by the first SIM_FACT_NAME_LEN chars of
 * name (a hash of the name: uniform over the 65536 names). */
double sim_fact_difficulty(const char *name);
/* True value in [10,99] of the named fact (another hash of the name). */
long long sim_fact_value(const char *name);
/* (1 - SIM_RECALL_SLIP) * sigma(SIM_RECALL_SLOPE * (skill - difficulty)). */
double sim_recall_prob(double skill, double difficulty);

/* 1 if text[i..] starts a fact name with word boundaries on both sides (no
 * alphanumeric before "F-", no hex digit/letter/digit after the 4 hex digits). */
int sim_fact_name_at(const char *text, size_t len, size_t i);

/* Statement forms accepted by the scanners (bit mask). */
enum {
  SIM_STATE_EQ = 1,    /* F-3a9c = 17 */
  SIM_STATE_IS = 2,    /* F-3a9c is 17 */
  SIM_STATE_COLON = 4, /* F-3a9c: 17 */
  SIM_STATE_ANY = 7
};

/* If a fact name starts at text[i] and is followed (spaces allowed) by one of
 * the forms in `forms` and an integer, returns 1 and sets *value (and *end, the
 * index after the integer, when end != NULL). Otherwise 0. */
int sim_fact_statement_at(const char *text, size_t len, size_t i, int forms, long long *value,
                          size_t *end);

/* Facts stated in text with the forms in `forms`, in order of first statement,
 * one per name (the first statement wins). Fills at most max; returns the number
 * filled. */
size_t sim_facts_scan(const char *text, size_t len, int forms, struct sim_fact *out, size_t max);

/* Distinct fact names mentioned in text, in order of first mention; at most max.
 * Returns the number filled. */
size_t sim_fact_names_scan(const char *text, size_t len, char (*out)[SIM_FACT_NAME_LEN + 2],
                           size_t max);

/* First statement of the named fact in text (forms as above): returns 1 and sets
 * *value, or 0 when the text never states that fact. */
int sim_fact_stated(const char *text, size_t len, const char *name, int forms, long long *value);

#endif
