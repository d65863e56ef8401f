/* cmd_card.c - `autodata card --store FILE [--run ID] [--out PATH]`: regenerate
 * DATACARD.md from a run store (read-only open: safe while a run goes on). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "report/report.h"
#include "store/store.h"

static void card_usage(FILE *f) {
  fprintf(f,
          "usage: autodata card --store FILE [--run ID] [--out PATH]\n\n"
          "Regenerate DATACARD.md (a Hugging Face dataset card) from a run store: the agent's\n"
          "roles and models, acceptance bounds, budgets, checks, the source corpus, results,\n"
          "rejections by reason, rounds to accept, score spread, cost by role, every prompt\n"
          "with its sha256, and how to reproduce the run. Read-only: safe during a run.\n\n"
          "  --store FILE   the run store (SQLite file)\n"
          "  --run ID       a run in the store (default: the latest)\n"
          "  --out PATH     where to write the card (default: DATACARD.md in the store's folder)\n");
}

int cmd_card(int argc, char **argv) {
  const char *path = NULL, *outp = NULL;
  long long run = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
      card_usage(stdout);
      return 0;
    } else if (!strcmp(argv[i], "--store") && i + 1 < argc) {
      path = argv[++i];
    } else if (!strncmp(argv[i], "--store=", 8)) {
      path = argv[i] + 8;
    } else if (!strcmp(argv[i], "--out") && i + 1 < argc) {
      outp = argv[++i];
    } else if (!strncmp(argv[i], "--out=", 6)) {
      outp = argv[i] + 6;
    } else if (!strcmp(argv[i], "--run") && i + 1 < argc) {
      char *end;
      run = strtoll(argv[++i], &end, 10);
      if (*end || run <= 0) {
        fprintf(stderr, "autodata card: --run needs a positive run id, not '%s'\n", argv[i]);
        return 2;
      }
    } else {
      fprintf(stderr, "autodata card: unknown or incomplete option '%s'\n\n", argv[i]);
      card_usage(stderr);
      return 2;
    }
  }
  if (!path) {
    fprintf(stderr, "autodata card: --store FILE is required\n\n");
    card_usage(stderr);
    return 2;
  }
  char defpath[4096];
  if (!outp) {
    const char *slash = strrchr(path, '/');
    int w = slash ? snprintf(defpath, sizeof defpath, "%.*s/DATACARD.md", (int)(slash - path),
                             path)
                  : snprintf(defpath, sizeof defpath, "DATACARD.md");
    if (w < 0 || (size_t)w >= sizeof defpath) {
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
