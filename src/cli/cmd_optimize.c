/* cmd_optimize.c - `autodata optimize RECIPE`: meta-optimisation of the harness's prompts
 * (docs/optimize.md). */
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "cli/recipe_arg.h"
#include "loop/method.h"
#include "optimize/optimize.h"
#include "recipe/recipe.h"
#include "util/buf.h"

enum { O_ITER = 1, O_PAR, O_TRAIN, O_VAL, O_TEST, O_MB, O_TEMP, O_OUT, O_QUIET };
static const struct opts_spec optimize_opts[] = {
    {"iterations", "N", O_ITER, "iterations (default: optimize.iterations, 30)"},
    {"parallel", "P", O_PAR,
     "iterations in flight on one event loop (default: optimize.parallel,\n"
     "1); iteration n starts on the population after n-P are applied"},
    {"train", "N", O_TRAIN, "train split size in sources (default: optimize.train, 20)"},
    {"val", "N", O_VAL, "validation split size (default: optimize.val, 30)"},
    {"test", "N", O_TEST, "held-out test split size (default: optimize.test, 100)"},
    {"minibatch", "N", O_MB, "train sources per iteration (default: optimize.minibatch, 5)"},
    {"temperature", "T", O_TEMP,
     "Boltzmann temperature of parent selection (default:\n"
     "optimize.temperature, 0.1)"},
    {"out", "DIR", O_OUT, "output folder (default: <output.folder>/optimize)"},
    {"quiet", NULL, O_QUIET, "no progress lines"},
    {0}};
static const struct opts_cli optimize_cli = {
    "optimize", "RECIPE [options]",
    "Optimise the recipe's editable prompts (challenger, orchestrator, quality by default)\n"
    "against its own acceptance gate, with a held-out test split; rerun to resume.",
    optimize_opts, NULL};

int cmd_optimize(int argc, char **argv) {
  struct opt_opts o;
  memset(&o, 0, sizeof o);
  o.iterations = o.parallel = o.train = o.val = o.test = o.minibatch = -1;
  o.temperature = NAN;
  struct opts_parser op;
  opts_begin(&op, &optimize_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_ITER: bad = opts_int(op.cmd, op.flag, op.val, 0, 100000, &o.iterations); break;
    case O_PAR: bad = opts_int(op.cmd, op.flag, op.val, 1, 64, &o.parallel); break;
    case O_TRAIN: bad = opts_int(op.cmd, op.flag, op.val, 1, 1000000, &o.train); break;
    case O_VAL: bad = opts_int(op.cmd, op.flag, op.val, 1, 1000000, &o.val); break;
    case O_TEST: bad = opts_int(op.cmd, op.flag, op.val, 1, 1000000, &o.test); break;
    case O_MB: bad = opts_int(op.cmd, op.flag, op.val, 1, 1000000, &o.minibatch); break;
    case O_TEMP: bad = opts_double(op.cmd, op.flag, op.val, 1e-6, 1000, &o.temperature); break;
    case O_OUT: o.out_dir = op.val; break;
    case O_QUIET: o.quiet = 1; break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos != 1) {
    if (op.npos) opts_usage_error(&optimize_cli, "one RECIPE at a time, got %d arguments", op.npos);
    else opts_usage_error(&optimize_cli, "RECIPE is required");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  struct buf cl = BUF_INIT;
  cli_command_line(&cl, argc, argv);
  o.command_line = buf_str(&cl);
  struct recipe *rc = cli_recipe_load(op.pos[0]);
  if (!rc) {
    buf_release(&cl);
    return 2;
  }
  struct opt_summary sum;
  char err[1024] = "";
  int rc_ = opt_execute(rc, &o, &sum, err, sizeof err);
  int status = 0;
  if (rc_) {
    fprintf(stderr, "autodata optimize: %s\n", err[0] ? err : ad_strerror(rc_));
    status = sum.bad_input ? 2 : 1;
  } else {
    printf("optimization %s: %d iteration(s): %d admitted, %d not better, %d gated, %d refused\n",
           rc->name, sum.iterations, sum.accepted, sum.rejected, sum.gated, sum.refused);
    printf("baseline %.8s validation %.3f; best %.8s validation %.3f over %d evaluation(s)\n",
           sum.baseline, sum.base_val, sum.best, sum.best_val, sum.best_val_n);
    if (sum.test_n)
      printf(
          "test split (%zu sources, %s): baseline %.3f [%.3f, %.3f], best %.3f [%.3f, %.3f], "
          "difference %+.3f [%+.3f, %+.3f]\n",
          sum.test_n, recipe_opt_objective_name(rc->optimize.objective), sum.base_test, sum.base_lo,
          sum.base_hi, sum.best_test, sum.best_lo, sum.best_hi, sum.diff, sum.diff_lo, sum.diff_hi);
    printf("model calls sent: %lld, answered from the cache: %lld\n", (long long)sum.calls_sent,
           (long long)sum.cache_hits);
    if (sum.stopped) {
      printf("stopped: %s (run the same command again to resume)\n", sum.stop_reason);
      status = 3;
    }
    printf("best prompts: %s/best/\nreport:       %s/OPTIMIZE.md\ncurve:        %s/curve.jsonl\n",
           sum.out_dir, sum.out_dir, sum.out_dir);
  }
  recipe_free(rc);
  buf_release(&cl);
  return status;
}
