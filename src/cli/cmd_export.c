/* cmd_export.c - `autodata export --store FILE --format jsonl|chat|rl
 * [--holdout N] [--seed S] [--run ID] --out DIR`: training exports of a run's
 * dataset (read-only open: safe while a run goes on). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "report/report.h"
#include "store/store.h"

static void export_usage(FILE *f) {
  fprintf(f,
          "usage: autodata export --store FILE --format jsonl|chat|rl --out DIR\n"
          "                       [--holdout N] [--seed S] [--run ID]\n\n"
          "Write a run's accepted examples as training data into DIR/train.jsonl, sorted by id.\n"
          "  jsonl  the dataset lines as stored (scores and provenance included)\n"
          "  chat   {\"id\", \"messages\": [user: context + question, assistant: reference answer]}"
          " for SFT\n"
          "  rl     {\"id\", \"prompt\", \"reward\": {\"type\": \"rubric\", \"rubric\", "
          "\"reference_answer\"} or\n"
          "         {\"type\": \"verifiable\", \"answer\"}} for GRPO-style reward functions\n\n"
          "  --store FILE   the run store (SQLite file)\n"
          "  --format F     jsonl, chat or rl\n"
          "  --out DIR      output folder (created if missing)\n"
          "  --holdout N    hold N examples out into DIR/heldout.jsonl (a seeded shuffle)\n"
          "  --seed S       the split seed (default: the run's seed)\n"
          "  --run ID       a run in the store (default: the latest)\n");
}

static int parse_u64(const char *s, unsigned long long *out) {
  char *end;
  errno = 0;
  if (!s || !*s || *s == '-') return -1;
  *out = strtoull(s, &end, 10);
  return (*end || errno) ? -1 : 0;
}

int cmd_export(int argc, char **argv) {
  const char *path = NULL, *dir = NULL, *fmt = NULL;
  long long run = 0;
  struct report_export_opts o = {REPORT_FMT_JSONL, 0, 0, 0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    unsigned long long u;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      export_usage(stdout);
      return 0;
    } else if (!strcmp(a, "--store") && v) {
      path = v, i++;
    } else if (!strcmp(a, "--out") && v) {
      dir = v, i++;
    } else if (!strcmp(a, "--format") && v) {
      fmt = v, i++;
    } else if (!strcmp(a, "--holdout") && v) {
      if (parse_u64(v, &u)) {
        fprintf(stderr, "autodata export: --holdout needs a count >= 0, not '%s'\n", v);
        return 2;
      }
      o.holdout = (size_t)u, i++;
    } else if (!strcmp(a, "--seed") && v) {
      if (parse_u64(v, &u)) {
        fprintf(stderr, "autodata export: --seed needs an integer >= 0, not '%s'\n", v);
        return 2;
      }
      o.seed = u, o.seed_set = 1, i++;
    } else if (!strcmp(a, "--run") && v) {
      char *end;
      run = strtoll(v, &end, 10);
      if (*end || run <= 0) {
        fprintf(stderr, "autodata export: --run needs a positive run id, not '%s'\n", v);
        return 2;
      }
      i++;
    } else {
      fprintf(stderr, "autodata export: unknown or incomplete option '%s'\n\n", a);
      export_usage(stderr);
      return 2;
    }
  }
  if (!path || !dir || !fmt) {
    fprintf(stderr, "autodata export: --store FILE, --format F and --out DIR are required\n\n");
    export_usage(stderr);
    return 2;
  }
  if (report_format_parse(fmt, &o.format)) {
    fprintf(stderr, "autodata export: unknown format '%s' (use jsonl, chat or rl)\n", fmt);
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
