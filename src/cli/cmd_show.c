/* cmd_show.c - `autodata show STORE|DIR [--source ID] [--round N] [--run ID] [--json]
 * [--prompts]`: one source's story from a run store (report/show.h). Read-only. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "report/show.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/mem.h"

enum { O_SOURCE = 1, O_ROUND, O_RUN, O_JSON, O_PROMPTS };
static const struct opts_spec show_opts[] = {
    {"source", "ID", O_SOURCE, "the source to show (without it: every source id with its state)"},
    {"round", "N", O_ROUND, "only round N of that source"},
    {"run", "ID", O_RUN, "a run in the store (default: the latest)"},
    {"json", NULL, O_JSON, "print one JSON document instead of text"},
    {"prompts", NULL, O_PROMPTS, "also print every call's rendered prompt (request messages)"},
    {0}};
static const struct opts_cli show_cli = {
    "show", "STORE|DIR [--source ID] [--round N] [--run ID] [--json] [--prompts]",
    "One source's story from a run store: every round's orchestrator instructions, the\n"
    "candidate (context, question, reference answer, rubric), the checks and the quality\n"
    "verdict, each solver answer with the judge's per-criterion verdicts, and the verdict\n"
    "with its reason. STORE is a store file; DIR an output folder holding store.db.\n"
    "Without --source, lists the run's sources with their state. Read-only: safe during a run.",
    show_opts, NULL};

static void print_json(const json_t *doc) {
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (text) puts(text);
  free(text);
}

int cmd_show(int argc, char **argv) {
  const char *source = NULL;
  int as_json = 0, prompts = 0, round = 0;
  long long run = 0;
  struct opts_parser op;
  opts_begin(&op, &show_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_SOURCE: source = op.val; break;
    case O_JSON: as_json = 1; break;
    case O_PROMPTS: prompts = 1; break;
    case O_ROUND:
      if (opts_int(op.cmd, op.flag, op.val, 1, INT_MAX, &round)) return 2;
      break;
    case O_RUN:
      if (opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run)) return 2;
      break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos != 1) {
    opts_usage_error(&show_cli, op.npos ? "unexpected argument '%s'" : "STORE|DIR is required",
                     op.npos ? op.pos[1] : "");
    return 2;
  }
  if (round && !source) {
    opts_usage_error(&show_cli, "--round needs --source ID");
    return 2;
  }
  const char *arg = op.pos[0];
  char *path = NULL;
  struct stat sb;
  if (!stat(arg, &sb) && S_ISDIR(sb.st_mode)) {
    path = fs_join(arg, "store.db");
    if (stat(path, &sb)) {
      fprintf(stderr,
              "autodata show: %s is a folder without store.db; give a run's output folder "
              "or its store file\n",
              arg);
      free(path);
      return 2;
    }
  } else {
    path = xstrdup(arg);
  }
  store *st = NULL;
  json_t *doc = NULL;
  char err[1024] = "";
  int ret = 1;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  if (rc) {
    fprintf(stderr, "autodata show: %s\n", st ? store_errmsg(st) : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  if (source)
    rc = report_show_build(st, (store_id)run, source, round, prompts, &doc, err, sizeof err);
  else rc = report_show_sources(st, (store_id)run, &doc, err, sizeof err);
  if (rc) {
    fprintf(stderr, "autodata show: %s\n", err[0] ? err : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  if (as_json) print_json(doc);
  else if (source) report_show_print(doc, stdout);
  else report_show_print_sources(doc, stdout);
  ret = fflush(stdout) ? 1 : 0;
cleanup:
  json_decref(doc);
  store_close(st);
  free(path);
  return ret;
}
