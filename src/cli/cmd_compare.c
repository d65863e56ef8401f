/* cmd_compare.c - `autodata compare STORE... [--format table|markdown|json]`:
 * side-by-side figures of runs (one column per store, latest run of each) with
 * bootstrap confidence intervals and differences against the first run
 * (src/report/compare.h, docs/baselines.md). Opens every store read-only. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "report/compare.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/jsonx.h"

#define COMPARE_MAX_RUNS 32

enum { O_FORMAT = 1, O_RESAMPLES, O_SEED };
static const struct opts_spec compare_opts[] = {
    {"format", "F", O_FORMAT, "table (default) | markdown | json"},
    {"resamples", "N", O_RESAMPLES, "bootstrap resamples (default 2000)"},
    {"seed", "N", O_SEED, "bootstrap seed (default 1)"},
    {0}};
static const struct opts_cli compare_cli = {
    "compare", "STORE... [options]",
    "Compare runs side by side: one column per run (the latest run of each store;\n"
    "a folder means FOLDER/store.db). Weak and strong means, gap, weak-rollout std,\n"
    "question length and rubric size of each run's dataset, with bootstrap 95%\n"
    "confidence intervals; acceptance rate, rounds, calls, tokens and cost per\n"
    "accepted example; rejections by reason; differences against the first run.",
    compare_opts, NULL};

int cmd_compare(int argc, char **argv) {
  static const char *const formats[] = {"table", "markdown", "json", NULL};
  struct compare_opts co;
  compare_opts_default(&co);
  int format = 0; /* 0 table, 1 markdown, 2 json */
  struct opts_parser op;
  opts_begin(&op, &compare_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_FORMAT: bad = opts_choice(op.cmd, op.flag, op.val, formats, &format); break;
    case O_RESAMPLES: bad = opts_int(op.cmd, op.flag, op.val, 100, 1000000, &co.resamples); break;
    case O_SEED: bad = opts_u64(op.cmd, op.flag, op.val, 0, UINT64_MAX, &co.seed); break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  int n = op.npos;
  if (n < 1) {
    opts_usage_error(&compare_cli, "at least one STORE is required");
    return 2;
  }
  if (n > COMPARE_MAX_RUNS) {
    fprintf(stderr, "autodata compare: at most %d stores, got %d\n", COMPARE_MAX_RUNS, n);
    return 2;
  }
  struct compare_run *runs[COMPARE_MAX_RUNS] = {0};
  json_t *cmp = NULL;
  struct buf out = BUF_INIT;
  char err[1024] = "";
  int status = 0;
  for (int i = 0; i < n; i++) {
    const char *arg = op.pos[i];
    char path[4096];
    struct stat sb;
    if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode)) snprintf(path, sizeof path, "%s/store.db", arg);
    else snprintf(path, sizeof path, "%s", arg);
    if (!store_is_url(path) && stat(path, &sb) != 0) {
      fprintf(stderr, "autodata compare: no store at %s\n", path);
      status = 2;
      goto done;
    }
    store *st = NULL;
    int rc = store_open(path, STORE_OPEN_READONLY, &st);
    if (rc) {
      fprintf(stderr, "autodata compare: %s\n", st ? store_errmsg(st) : "out of memory");
      store_close(st);
      status = 1;
      goto done;
    }
    /* a URL is labelled by store_path(): its password masked */
    rc = compare_load(st, 0, store_is_url(arg) ? NULL : arg, &runs[i], err, sizeof err);
    store_close(st);
    if (rc) {
      fprintf(stderr, "autodata compare: %s: %s\n", path, err);
      status = 1;
      goto done;
    }
  }
  if (compare_build(runs, n, &co, &cmp, err, sizeof err)) {
    fprintf(stderr, "autodata compare: %s\n", err);
    status = 1;
    goto done;
  }
  if (format == 2) {
    char *s = json_dumps(cmp, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    if (!s) {
      fprintf(stderr, "autodata compare: cannot serialise the comparison as JSON\n");
      status = 1;
      goto done;
    }
    printf("%s\n", s);
    free(s);
  } else {
    int rrc = compare_render(cmp, format == 1, &out);
    if (rrc) {
      fprintf(stderr, "autodata compare: rendering the table: %s\n", ad_strerror(rrc));
      status = 1;
      goto done;
    }
    fputs(buf_str(&out), stdout);
    if (format == 0)
      printf(
          "\n[lo, hi]: bootstrap %.0f%% percentile intervals, %d resamples, seed %llu; "
          "'vs first' rows: difference against the first run (unpaired bootstrap)\n",
          100 * co.level, co.resamples, (unsigned long long)co.seed);
  }
done:
  buf_release(&out);
  json_decref(cmp);
  for (int i = 0; i < n; i++) compare_run_free(runs[i]);
  return status;
}
