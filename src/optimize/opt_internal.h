/* opt_internal.h - the optimiser's state, shared by optimize.c and outputs.c only. */
#ifndef AD_OPT_INTERNAL_H
#define AD_OPT_INTERNAL_H

#include <jansson.h>
#include <stdint.h>

#include "llm/llm.h"
#include "optimize/optimize.h"
#include "recipe/recipe.h"
#include "store/store.h"

struct eval;

/* A harness variant. */
struct variant {
  char sha[65];
  char parent[65];  /* "" for the baseline */
  char parent2[65]; /* a merge's other parent, "" when none */
  int iteration;    /* the iteration that proposed it (0: the baseline) */
  json_t *prompts;  /* role name -> full text, every editable prompt */
  char *diff;       /* against the parent ("" for the baseline) */
  char *rationale;  /* the implementer's, "" when none */
  int admitted;     /* in the population */
  int gated;        /* stopped by the minibatch gate */
  double *val;      /* accumulated validation scores */
  int n_val;
  struct recipe_prompt compiled[RECIPE_N_ROLES]; /* the texts as the loop uses them */
  int has[RECIPE_N_ROLES];
  double *vs_sum; /* per validation source (split order): the sum and count of its values */
  int *vs_n;
  double test;      /* test-split score (NAN when not evaluated) */
  double *test_src; /* per-source test values */
  size_t n_test_src;
};

struct opt {
  struct recipe *rc;
  const struct opt_opts *o;
  struct opt_summary *sum;
  struct recipe_optimize cfg; /* the recipe's with the options' overrides */
  uint64_t seed;              /* the recipe's seed */
  char id[17];                /* the optimisation's id (a prefix of its identity hash) */
  char *out_dir;
  store *st;
  store_id run_id; /* the run row of the optimiser's own calls */
  llm_client *llm;
  char **ids; /* corpus source ids */
  size_t n_ids;
  const char **split_ids[3]; /* train, val, test: borrowed from ids */
  size_t split_n[3];
  struct variant **vars; /* every variant, admitted or not, in creation order */
  int n_vars;
  json_t *history; /* array of paragraphs */
  json_t *iters;   /* array of iteration records */
  struct tpl_prompt analyzer_tpl, implementer_tpl;
  int interrupted; /* stopped (a signal, a run's own stop, an error): no test split */
  int stopping;    /* nothing new starts */
  int signals_seen;
  int fail; /* an error ended it (fail_err) */
  char fail_err[1024];
  struct eval *evals; /* evaluations in flight (optimize.c) */
  /* what the baseline and the applied iterations used: calls sent or answered from the
   * store, tokens and cost of the calls sent (the optimisation's budgets) */
  int64_t used_calls, used_tokens;
  double used_cost;
  int budget_hit; /* a budget is spent: no iteration starts */
};

/* outputs.c: best/, OPTIMIZE.md, curve.jsonl. */
int opt_write_outputs(struct opt *x, const struct variant *base, const struct variant *best,
                      char *err, size_t errlen);
/* The mean of a variant's validation scores (NAN when none). */
double opt_val_mean(const struct variant *v);

#endif
