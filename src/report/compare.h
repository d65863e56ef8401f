/* compare.h - side-by-side figures of runs (`autodata compare`), candidates.jsonl.
 *
 * The paper's evidence is a table of one-shot CoT Self-Instruct against Agentic
 * Self-Instruct with the same solvers and judge. compare_load() reads one run
 * from a store (open it STORE_OPEN_READONLY), compare_build() computes every
 * figure with bootstrap confidence intervals (bootstrap.h) and the differences
 * against the first run, compare_render() prints it. docs/baselines.md defines
 * each figure; in short:
 *
 *   dataset      the examples the run delivers (dataset.jsonl): agentic = the
 *                accepted examples, baselines = what their filter kept. Means
 *                over examples of weak_mean, strong_mean, gap, weak_std (the
 *                weak-rollout std), question length (code points), rubric items,
 *                rounds_used; a CI on each mean.
 *   evaluated    every candidate that reached the solvers: weak mean over those
 *                with weak scores, strong mean and gap over those where the
 *                strong solver ran (the agentic loop's short-circuit skips it
 *                for weak-gate failures, so its strong/gap are over fewer).
 *   acceptance   finished sources (done or exhausted) with a candidate that
 *                passed the recipe's gate / finished sources; CI by bootstrap
 *                over sources.
 *   rounds       rounds_to_accept = mean round of the gate-accepted candidates;
 *                rounds_per_accepted = all candidates / gate-accepted ones.
 *   cost         calls (real, not cache hits), tokens, cost (when priced) in
 *                total and per gate-accepted candidate.
 *   rejections   gate rejections by reason; baselines also filter rejections.
 *   vs_first     for runs after the first: difference of each mean against the
 *                first run, unpaired bootstrap of the difference of means.
 *
 * Errors: 0 or a negative AD_E* code with a message in err naming the store.
 * Not thread-safe per store handle (the store's rule).
 */
#ifndef AD_COMPARE_H
#define AD_COMPARE_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

struct compare_opts {
  int resamples; /* default BOOT_DEFAULT_RESAMPLES (2000) */
  double level;  /* default 0.95 */
  uint64_t seed; /* default 1 */
};
void compare_opts_default(struct compare_opts *o);

struct compare_run; /* one run's raw material (opaque) */

/* Load run (0 = latest) of st; label names it in the output (e.g. its path). */
AD_WUR int compare_load(store *st, store_id run, const char *label, struct compare_run **out,
                        char *err, size_t n);
void compare_run_free(struct compare_run *r);

/* The comparison of runs[0..n) as a new object (caller decrefs):
 * {"bootstrap": {"resamples","level","seed","kind":"percentile"},
 *  "runs": [{"label","run_id","name","method","status","sources","candidates",
 *            "accepted","kept","acceptance_rate":CI,"rounds_to_accept","rounds_per_accepted",
 *            "calls","tokens","cost","calls_per_accepted","tokens_per_accepted",
 *            "cost_per_accepted", "prompt_tokens_per_accepted",
 *            "completion_tokens_per_accepted", "prefix_share" (store/prefix.h),
 *            "dataset": {"n","weak_mean":CI,"strong_mean":CI,"gap":CI,"weak_std":CI,
 *                        "question_chars":CI,"rubric_items":CI,"rounds":CI},
 *            "evaluated": {"n","weak_mean":CI,"strong_mean":CI,"gap":CI},
 *            "rejections": {reason: n}, "filter_rejections": {reason: n},
 *            "vs_first": {"<group>.<stat>": CI, ...}   (runs after the first)}]}
 * where CI = {"est","lo","hi","n"} (null when there is no value) and absent
 * figures (no accepted candidate, no price) are null. */
AD_WUR int compare_build(struct compare_run *const *runs, int n, const struct compare_opts *o,
                         json_t **out, char *err, size_t errn);

/* Render a compare_build() object: an aligned text table (markdown = 0) or a
 * GitHub markdown table (markdown = 1), one column per run. Appends to out. */
AD_WUR int compare_render(const json_t *cmp, int markdown, struct buf *out);

/* Write <path> (atomically): one canonical JSON line per candidate of run, every
 * round, as store_candidates_each() gives it: {"source_id","round","index",
 * "verdict","reason","record"}. *count (may be NULL) gets the number of lines. */
AD_WUR int compare_write_candidates(store *st, store_id run, const char *path, size_t *count,
                                    char *err, size_t n);

#endif
