/* optimize.h - `autodata optimize`: meta-optimisation of the harness (docs/optimize.md).
 *
 * The harness is the text of the recipe's editable prompts (default: challenger,
 * orchestrator, quality). A variant is one full set of those texts, content-addressed by
 * the SHA-256 of their canonical JSON, with its parent and its diff. The optimiser keeps a
 * population of variants; each iteration picks a parent by Boltzmann sampling over the
 * means of its accumulated validation scores, plays it on a train minibatch (the whole
 * loop, run_execute, on those sources only), has the analyzer role write a root-cause
 * analysis of the trajectories and the implementer role propose new prompt texts, checks
 * the proposal against the locked evaluator (lock.h), evaluates parent and mutant on the
 * validation split, and admits the mutant only when its score strictly exceeds the
 * parent's mean. Up to optimize.parallel iterations run at once on one event loop, with a
 * lineage that does not depend on timing (docs/optimize.md, "Several iterations at once").
 * At the end the baseline and the best variant are evaluated once on the test split, which
 * nothing before reads.
 *
 * Every model call goes through the store's cache, and every draw is seeded from the
 * recipe's seed, so a killed optimisation rerun with the same command replays what was
 * answered and reproduces the same lineage.
 *
 * Writes (out folder): best/<role>.md, OPTIMIZE.md, curve.jsonl, store.db.
 */
#ifndef AD_OPTIMIZE_H
#define AD_OPTIMIZE_H

#include <stddef.h>
#include <stdint.h>

#include "recipe/recipe.h"

struct opt_opts {
  /* Overrides of the recipe's optimize: settings; < 0 (NAN for temperature) = the recipe's */
  int iterations, parallel, train, val, test, minibatch;
  double temperature;
  const char *out_dir;      /* NULL: <output.folder>/optimize */
  int quiet;                /* no progress lines */
  const char *command_line; /* recorded */
};

struct opt_summary {
  int iterations;                  /* iterations done (this session and before) */
  int accepted, refused, rejected; /* mutants admitted / refused by the lock / not better */
  int gated;                       /* mutants stopped by the minibatch gate */
  char baseline[65], best[65];     /* variant sha256s */
  double base_val, best_val;       /* validation means */
  int best_val_n;
  double base_test, base_lo, base_hi, best_test, best_lo, best_hi; /* test split, 95% CIs */
  double diff, diff_lo, diff_hi;                                   /* best - baseline */
  size_t test_n;
  int64_t calls_sent, cache_hits;
  int stopped; /* a budget or a signal stopped it (rerun to resume) */
  char stop_reason[256];
  char out_dir[4096];
  int bad_input; /* failed on its input (exit 2) */
};

/* Run the optimisation of rc (the optimiser changes rc's prompts and seed while it runs
 * and restores them). 0 (see sum->stopped), or an AD_E* code with a message in err. */
int opt_execute(struct recipe *rc, const struct opt_opts *o, struct opt_summary *sum, char *err,
                size_t errlen);

#endif
