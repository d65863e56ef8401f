/* sources.h - synthetic "papers" for the sim world (see docs/sim.md).
 *
 * A sim source is a generated title plus paragraphs of filler prose in which K
 * named facts are written exactly as `F-3a9c = 17`. The value written is
 * sim_fact_value(name) and the names are drawn so that each source covers the
 * difficulty range: the k-th fact falls in band [k/K, (k+1)/K). Source i of a
 * corpus depends only on (seed, i, K), not on how many sources are written.
 *
 * Thread-safe (no shared state).
 */
#ifndef AD_SIM_SOURCES_H
#define AD_SIM_SOURCES_H

#include <stdint.h>
#include <stdio.h>

#include "sim/facts.h"
#include "util/err.h"

#define SIM_SOURCE_MAX_FACTS 64
#define SIM_SOURCE_DEFAULT_FACTS 32

struct sim_source {
  char id[24]; /* "sim-0001" (index 1 -> 0001) */
  char *title; /* malloc'd, owned */
  char *text;  /* malloc'd, owned; paragraphs separated by "\n\n" */
  size_t nfacts;
  struct sim_fact facts[SIM_SOURCE_MAX_FACTS]; /* in band order (difficulty ascending) */
};

/* Generate source number `index` (1-based) of the corpus for `seed` with
 * facts_per_source facts (1..SIM_SOURCE_MAX_FACTS). On success the caller owns
 * out's strings (sim_source_release). Returns 0, AD_EINVAL (bad count) or AD_ETOOBIG
 * (text past its 1 MiB cap); on failure out holds nothing to free. */
AD_WUR int sim_source_make(uint64_t seed, unsigned index, unsigned facts_per_source,
                           struct sim_source *out);
void sim_source_release(struct sim_source *s);

/* Write sources 1..count as JSONL lines {"id","title","text"} to f.
 * Returns 0, AD_EINVAL, AD_ETOOBIG (as sim_source_make) or AD_EIO (write failed;
 * errno kept). */
AD_WUR int sim_sources_write(FILE *f, unsigned count, uint64_t seed, unsigned facts_per_source);

#endif
