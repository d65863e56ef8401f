/* cmd_run.c - `autodata run RECIPE`: run (or resume) a recipe end to end. */
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "loop/method.h"
#include "loop/run.h"
#include "recipe/recipe.h"
#include "report/report.h"
#include "store/store.h"
#include "util/buf.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: autodata run RECIPE [options]\n\n"
          "Run the recipe's agentic loop (or a one-shot baseline) over its sources; on an\n"
          "existing store, resume.\n\n"
          "  --limit N          process only the first N sources (a quick preview)\n"
          "  --concurrency N    sources in flight (default: the recipe's, 64)\n"
          "  --new-run          start a new run even if the store holds a different one\n"
          "  --cache-from FILE  reuse answered model calls from another run store\n"
          "  --method M         agentic (default: the recipe's method:), self-instruct or\n"
          "                     cot-self-instruct (one shot, same evaluation; docs/baselines.md)\n"
          "  --cot-k N          cot-self-instruct: filter samples per example (default: the\n"
          "                     recipe's baselines.k, 4)\n"
          "  --rip-threshold X  cot-self-instruct, rubric tasks: RIP keeps lowest score >= X\n"
          "                     (default: baselines.rip_threshold, 0.5)\n"
          "  --ac-share X       cot-self-instruct, verifiable: majority share needed\n"
          "                     (default: baselines.ac_min_share, 0.5)\n"
          "  --out DIR          output folder (default: the recipe's; a baseline with the\n"
          "                     default runs/<name> writes to runs/<name>-<method>)\n"
          "  --progress MODE    live | plain (default: live on a terminal)\n"
          "  --quiet            no progress lines\n");
}

static int parse_size(const char *s, size_t *out) {
  char *end;
  long long v = strtoll(s, &end, 10);
  if (*s == '\0' || *end || v < 0) return -1;
  *out = (size_t)v;
  return 0;
}

/* The run's outputs, from its store alone (report/report.h): what is done, also when
 * the run stopped early. */
static int write_outputs(const struct run_summary *sum, struct report_paths *paths, char *err,
                         size_t errlen) {
  store *st = NULL;
  int rc = store_open(sum->store_path, STORE_OPEN_READONLY, &st);
  if (rc)
    ad_set_err(err, errlen, "%s", st ? store_errmsg(st) : ad_strerror(rc));
  else
    rc = report_write_all(st, sum->run_id, sum->output_folder, paths, err, errlen);
  if (st) (void)store_close(st); /* read-only: nothing left to commit */
  return rc;
}

int cmd_run(int argc, char **argv) {
  static const struct option longopts[] = {
      {"limit", required_argument, 0, 'l'},  {"concurrency", required_argument, 0, 'c'},
      {"new-run", no_argument, 0, 'n'},      {"cache-from", required_argument, 0, 'f'},
      {"method", required_argument, 0, 'm'}, {"progress", required_argument, 0, 'p'},
      {"quiet", no_argument, 0, 'q'},        {"help", no_argument, 0, 'h'},
      {"cot-k", required_argument, 0, 'k'},  {"rip-threshold", required_argument, 0, 't'},
      {"ac-share", required_argument, 0, 'a'}, {"out", required_argument, 0, 'o'},
      {0, 0, 0, 0}};
  struct run_opts o;
  memset(&o, 0, sizeof o);
  o.progress = -1;
  size_t conc = 0;
  /* Filter settings the user gives; the rest are "not given" (k 0, NAN) and
   * come from the recipe's `baselines:` (run.h, struct run_opts.bl). */
  struct bl_params bl = {0, NAN, NAN};
  int ch;
  char *end;
  optind = 1;
  while ((ch = getopt_long(argc, argv, "hq", longopts, NULL)) != -1) {
    switch (ch) {
    case 'l':
      if (parse_size(optarg, &o.limit)) {
        fprintf(stderr, "autodata run: --limit expects a non-negative integer, got '%s'\n", optarg);
        return 2;
      }
      break;
    case 'c':
      if (parse_size(optarg, &conc) || conc == 0 || conc > 100000) {
        fprintf(stderr, "autodata run: --concurrency expects an integer in 1..100000, got '%s'\n", optarg);
        return 2;
      }
      o.concurrency = (int)conc;
      break;
    case 'n': o.new_run = 1; break;
    case 'f': o.cache_from = optarg; break;
    case 'm': {
      if (!method_find(optarg)) {
        fprintf(stderr, "autodata run: --method expects agentic, self-instruct or cot-self-instruct, got '%s'\n", optarg);
        return 2;
      }
      o.method = optarg;
      break;
    }
    case 'k': {
      long v = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end || v < 1 || v > BL_MAX_K) {
        fprintf(stderr, "autodata run: --cot-k expects an integer in 1..%d, got '%s'\n", BL_MAX_K, optarg);
        return 2;
      }
      bl.k = (int)v;
      break;
    }
    case 't':
    case 'a': {
      double v = strtod(optarg, &end);
      if (*optarg == '\0' || *end || !(v >= 0 && v <= 1)) {
        fprintf(stderr, "autodata run: --%s expects a number in [0, 1], got '%s'\n",
                ch == 't' ? "rip-threshold" : "ac-share", optarg);
        return 2;
      }
      if (ch == 't') bl.rip_threshold = v; else bl.ac_min_share = v;
      break;
    }
    case 'o': o.output_folder = optarg; break;
    case 'p':
      if (!strcmp(optarg, "live")) o.progress = 1;
      else if (!strcmp(optarg, "plain")) o.progress = 0;
      else {
        fprintf(stderr, "autodata run: --progress expects live or plain, got '%s'\n", optarg);
        return 2;
      }
      break;
    case 'q': o.quiet = 1; break;
    case 'h': usage(stdout); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1) {
    usage(stderr);
    return 2;
  }
  const char *path = argv[optind];
  o.bl = &bl;

  /* The command line, for the record (it never carries secrets: keys come from
   * the environment). */
  struct buf cl = BUF_INIT;
  int ok = buf_puts(&cl, "autodata") == 0;
  for (int i = 0; ok && i < argc; i++) ok = buf_printf(&cl, " %s", argv[i]) == 0;
  o.command_line = buf_str(&cl);

  struct recipe *rc = NULL;
  struct recipe_diag diag;
  memset(&diag, 0, sizeof diag);
  if (recipe_load(path, NULL, &rc, &diag)) {
    for (int i = 0; i < diag.n; i++) fprintf(stderr, "%s\n", diag.msgs[i]);
    if (diag.dropped) fprintf(stderr, "(%d more errors)\n", diag.dropped);
    recipe_diag_free(&diag);
    buf_free(&cl);
    return 2;
  }
  recipe_diag_free(&diag);

  struct run_summary sum;
  char err[1024] = "";
  int rc_ = run_execute(rc, &o, &sum, err, sizeof err);
  struct report_paths paths;
  if (!rc_) rc_ = write_outputs(&sum, &paths, err, sizeof err);
  int status = 0;
  if (rc_) {
    fprintf(stderr, "autodata run: %s\n", err[0] ? err : ad_strerror(rc_));
    status = 1;
  } else {
    size_t finished = sum.done + sum.exhausted;
    int is_bl = sum.baseline;
    printf("%s %s in %.1fs: %zu sources, %zu finished (%zu %s, %zu %s), %zu pending\n",
           rc->name, sum.stopped ? "stopped" : "done", sum.seconds, sum.sources, finished,
           sum.done, is_bl ? "kept" : "accepted", sum.exhausted, is_bl ? "not kept" : "exhausted",
           sum.pending);
    if (is_bl)
      printf("method %s: examples kept by its filter: %zu; candidates that passed the acceptance "
             "gate this session: %zu, failed it: %zu\n",
             sum.method, sum.kept, sum.accepted, sum.rejected_candidates);
    else
      printf("examples accepted: %zu; candidates rejected this session: %zu\n", sum.accepted,
             sum.rejected_candidates);
    printf("model calls sent: %lld, answered from the cache: %lld, tokens: %lld",
           (long long)sum.calls_sent, (long long)sum.cache_hits,
           (long long)(sum.prompt_tokens + sum.completion_tokens));
    if (sum.cost > 0) printf(", cost: %.4f", sum.cost);
    printf("\n");
    if (sum.stopped) printf("stopped: %s (run the same command again to resume)\n", sum.stop_reason);
    else if (sum.parked)
      printf("%zu sources were set aside after calls failed for infrastructure reasons (see "
             "`autodata status`); run the same command again to resume them\n", sum.parked);
    printf("dataset:    %s\nrejections: %s\ncandidates: %s\ndata card:  %s\nstore:      %s\n",
           paths.dataset, paths.rejected, paths.candidates, paths.card, sum.store_path);
    if (sum.stopped || sum.parked) status = 3;
  }
  recipe_free(rc);
  buf_free(&cl);
  return status;
}
