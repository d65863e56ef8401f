/* cmd_compare.c - `autodata compare STORE... [--format table|markdown|json]`:
 * side-by-side figures of runs (one column per store, latest run of each) with
 * bootstrap confidence intervals and differences against the first run
 * (src/report/compare.h, docs/baselines.md). Opens every store read-only. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "report/compare.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/jsonx.h"

#define COMPARE_MAX_RUNS 32

static void usage(FILE *f) {
  fprintf(f,
          "usage: autodata compare STORE... [options]\n\n"
          "Compare runs side by side: one column per run (the latest run of each store;\n"
          "a folder means FOLDER/store.db). Weak and strong means, gap, weak-rollout std,\n"
          "question length and rubric size of each run's dataset, with bootstrap 95%%\n"
          "confidence intervals; acceptance rate, rounds, calls, tokens and cost per\n"
          "accepted example; rejections by reason; differences against the first run.\n\n"
          "  --format F       table (default) | markdown | json\n"
          "  --resamples N    bootstrap resamples (default 2000)\n"
          "  --seed N         bootstrap seed (default 1)\n");
}

int cmd_compare(int argc, char **argv) {
  static const struct option longopts[] = {{"format", required_argument, 0, 'f'},
                                           {"resamples", required_argument, 0, 'r'},
                                           {"seed", required_argument, 0, 's'},
                                           {"help", no_argument, 0, 'h'},
                                           {0, 0, 0, 0}};
  struct compare_opts co;
  compare_opts_default(&co);
  int format = 0; /* 0 table, 1 markdown, 2 json */
  int ch;
  char *end;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
    switch (ch) {
    case 'f':
      if (!strcmp(optarg, "table")) format = 0;
      else if (!strcmp(optarg, "markdown")) format = 1;
      else if (!strcmp(optarg, "json")) format = 2;
      else {
        fprintf(stderr, "autodata compare: --format expects table, markdown or json, got '%s'\n", optarg);
        return 2;
      }
      break;
    case 'r': {
      long v = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end || v < 100 || v > 1000000) {
        fprintf(stderr, "autodata compare: --resamples expects an integer in 100..1000000, got '%s'\n", optarg);
        return 2;
      }
      co.resamples = (int)v;
      break;
    }
    case 's': {
      unsigned long long v = strtoull(optarg, &end, 10);
      if (*optarg == '\0' || *end) {
        fprintf(stderr, "autodata compare: --seed expects a non-negative integer, got '%s'\n", optarg);
        return 2;
      }
      co.seed = v;
      break;
    }
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  int n = argc - optind;
  if (n < 1) {
    usage(stderr);
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
    const char *arg = argv[optind + i];
    char path[4096];
    struct stat sb;
    if (stat(arg, &sb) == 0 && S_ISDIR(sb.st_mode))
      snprintf(path, sizeof path, "%s/store.db", arg);
    else
      snprintf(path, sizeof path, "%s", arg);
    if (stat(path, &sb) != 0) {
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
    rc = compare_load(st, 0, arg, &runs[i], err, sizeof err);
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
      fprintf(stderr, "autodata compare: out of memory\n");
      status = 1;
      goto done;
    }
    printf("%s\n", s);
    free(s);
  } else {
    if (compare_render(cmp, format == 1, &out)) {
      fprintf(stderr, "autodata compare: out of memory\n");
      status = 1;
      goto done;
    }
    fputs(buf_str(&out), stdout);
    if (format == 0)
      printf("\n[lo, hi]: bootstrap %.0f%% percentile intervals, %d resamples, seed %llu; "
             "'vs first' rows: difference against the first run (unpaired bootstrap)\n",
             100 * co.level, co.resamples, (unsigned long long)co.seed);
  }
done:
  buf_free(&out);
  json_decref(cmp);
  for (int i = 0; i < n; i++) compare_run_free(runs[i]);
  return status;
}
