/* cmd_card.c - `autodata card --store FILE [--run ID] [--out PATH]`: regenerate
 * DATACARD.md from a run store (read-only open: safe while a run goes on). */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "report/report.h"
#include "store/store.h"
#include "util/fs.h"

enum { O_STORE = 1, O_RUN, O_OUT };
static const struct opts_spec card_opts[] = {
    {"store", "FILE", O_STORE, "the run store (a SQLite file or a postgres:// URL)"},
    {"run", "ID", O_RUN, "a run in the store (default: the latest)"},
    {"out", "PATH", O_OUT, "where to write the card (default: DATACARD.md in the store's folder)"},
    {0}};
static const struct opts_cli card_cli = {
    "card", "--store FILE [--run ID] [--out PATH]",
    "Regenerate DATACARD.md (a Hugging Face dataset card) from a run store: the agent's\n"
    "roles and models, acceptance bounds, budgets, checks, the source corpus, results,\n"
    "rejections by reason, rounds to accept, score spread, cost by role, every prompt\n"
    "with its sha256, and how to reproduce the run. Read-only: safe during a run.",
    card_opts, NULL};

int cmd_card(int argc, char **argv) {
  const char *path = NULL, *outp = NULL;
  long long run = 0;
  struct opts_parser op;
  opts_begin(&op, &card_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_STORE: path = op.val; break;
    case O_OUT: outp = op.val; break;
    case O_RUN:
      if (opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run)) return 2;
      break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&card_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  if (!path) {
    opts_usage_error(&card_cli, "--store FILE is required");
    return 2;
  }
  char defpath[4096];
  if (!outp) { /* next to the store; a bare file name: in the current folder */
    char *dir = strchr(path, '/') && !store_is_url(path) ? fs_dirname(path) : NULL;
    int too_long = fs_join_buf(defpath, sizeof defpath, dir, "DATACARD.md");
    free(dir);
    if (too_long) {
      fprintf(stderr, "autodata card: store path too long; give --out PATH\n");
      return 2;
    }
    outp = defpath;
  }
  store *st = NULL;
  char err[1024] = "";
  int ret = 1;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  if (rc) {
    fprintf(stderr, "autodata card: %s\n", st ? store_errmsg(st) : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  rc = report_write_card(st, (store_id)run, outp, err, sizeof err);
  if (rc) {
    fprintf(stderr, "autodata card: %s\n", err[0] ? err : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  printf("wrote %s\n", outp);
  ret = 0;
cleanup:
  store_close(st);
  return ret;
}
