/* copy.h - copy every run of one store into another (`autodata store copy FROM TO`).
 *
 * Works between any two backends (SQLite file <-> PostgreSQL URL) through the public store
 * interface only: for each run of FROM, in order, a new run in TO with the same recipe,
 * prompt hashes, seed, version, command line and info, then its sources (state, rounds
 * used), candidates, examples, model calls (every field and both bodies, so TO's cache
 * serves them), events, status and analysis, and the `autodata optimize` tables of every
 * optimisation a run names. TO must hold no run yet, so run ids stay the same. What is not
 * kept: the creation times (of runs, rows and events: they are the copy's), and call ids
 * (renumbered in the same order). Exports and outputs written from either store are the
 * same bytes.
 */
#ifndef AD_STORE_COPY_H
#define AD_STORE_COPY_H

#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

struct store_copy_counts {
  int64_t runs, sources, candidates, examples, calls, events, opt_rows;
};

/* Copy from (open, any mode) into to (open writable, holding no run); flushes to. 0, or an
 * AD_E* code with the message in err (naming the store and the row). */
AD_WUR int store_copy(store *from, store *to, struct store_copy_counts *counts, char *err,
                      size_t errlen);

#endif
