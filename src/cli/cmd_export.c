/* cmd_export.c - `autodata export --store FILE --format jsonl|chat|rl
 * [--holdout N] [--seed S] [--run ID] --out DIR`: training exports of a run's
 * dataset (read-only open: safe while a run goes on). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "report/report.h"
#include "store/store.h"

enum { O_STORE = 1, O_FORMAT, O_OUT, O_HOLDOUT, O_SEED, O_RUN };
static const struct opts_spec export_opts[] = {
    {"store", "FILE", O_STORE, "the run store (a SQLite file or a postgres:// URL)"},
    {"format", "F", O_FORMAT, "jsonl, chat or rl"},
    {"out", "DIR", O_OUT, "output folder (created if missing)"},
    {"holdout", "N", O_HOLDOUT, "hold N examples out into DIR/heldout.jsonl (a seeded shuffle)"},
    {"seed", "S", O_SEED, "the split seed (default: the run's seed)"},
    {"run", "ID", O_RUN, "a run in the store (default: the latest)"},
    {0}};
static const struct opts_cli export_cli = {
    "export",
    "--store FILE --format jsonl|chat|rl --out DIR\n"
    "                       [--holdout N] [--seed S] [--run ID]",
    "Write a run's accepted examples as training data into DIR/train.jsonl, sorted by id.\n"
    "  jsonl  the dataset lines as stored (scores and provenance included)\n"
    "  chat   {\"id\", \"messages\": [user: context + question, assistant: reference answer]}"
    " for SFT\n"
    "  rl     {\"id\", \"prompt\", \"reward\": {\"type\": \"rubric\", \"rubric\", "
    "\"reference_answer\"} or\n"
    "         {\"type\": \"verifiable\", \"answer\"}} for GRPO-style reward functions",
    export_opts, NULL};

int cmd_export(int argc, char **argv) {
  const char *path = NULL, *dir = NULL, *fmt = NULL;
  long long run = 0;
  struct report_export_opts o = {REPORT_FMT_JSONL, 0, 0, 0};
  struct opts_parser op;
  opts_begin(&op, &export_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_STORE: path = op.val; break;
    case O_OUT: dir = op.val; break;
    case O_FORMAT:
      fmt = op.val;
      if (report_format_parse(fmt, &o.format))
        bad = opts_reject(op.cmd, op.flag, fmt, "jsonl, chat or rl");
      break;
    case O_HOLDOUT: bad = opts_size(op.cmd, op.flag, op.val, 0, SIZE_MAX, &o.holdout); break;
    case O_SEED:
      bad = opts_u64(op.cmd, op.flag, op.val, 0, UINT64_MAX, &o.seed);
      o.seed_set = 1;
      break;
    case O_RUN: bad = opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run); break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&export_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  if (!path || !dir || !fmt) {
    opts_usage_error(&export_cli, "--store FILE, --format F and --out DIR are required");
    return 2;
  }
  store *st = NULL;
  char err[1024] = "";
  struct report_export_result res;
  int ret = 1;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  if (rc) {
    fprintf(stderr, "autodata export: %s\n", st ? store_errmsg(st) : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  rc = report_export(st, (store_id)run, dir, &o, &res, err, sizeof err);
  if (rc) {
    fprintf(stderr, "autodata export: %s\n", err[0] ? err : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND || rc == AD_EINVAL) ? 2 : 1;
    goto cleanup;
  }
  printf("wrote %s (%zu examples, format %s)\n", res.train, res.n_train,
         report_format_name(o.format));
  if (res.heldout[0])
    printf("wrote %s (%zu held-out examples, split seed %llu)\n", res.heldout, res.n_heldout,
           (unsigned long long)res.seed);
  ret = 0;
cleanup:
  store_close(st);
  return ret;
}
