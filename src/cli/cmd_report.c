/* cmd_report.c - `autodata report STORE|DIR... [--out FILE] [--all] [--trajectories N]
 * [--run ID]`: the self-contained HTML report of one run, or of several side by side
 * (report/report_html.h, docs/report.md). Opens every store read-only. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "report/report_html.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/mem.h"

enum { O_OUT = 1, O_ALL, O_TRAJ, O_RUN };
static const struct opts_spec report_opts[] = {
    {"out", "FILE", O_OUT,
     "where to write the page (default: report.html next to the store; with several\n"
     "stores, report.html in the current folder)"},
    {"all", NULL, O_ALL, "every source's full trajectory, however many sources there are"},
    {"trajectories", "N", O_TRAJ,
     "full trajectories for at most N sources (default 300); past it a deterministic\n"
     "sample, and every source still has its row"},
    {"run", "ID", O_RUN, "a run in the store (default: the latest; one store only)"},
    {0}};
static const struct opts_cli report_cli = {
    "report", "STORE|DIR... [--out FILE] [--all] [--trajectories N] [--run ID]",
    "Write one self-contained HTML page about a run: a summary (sources, acceptance,\n"
    "rounds to accept, calls, tokens and cost by role, wall time, recipe and models),\n"
    "plots, the optimisation curve and lineage of an `autodata optimize` store, and a\n"
    "trajectory browser with every round of each source, filtered by verdict, reason\n"
    "and text. Several stores add a comparison (the `compare` table and overlaid\n"
    "distributions). No network: CSS, SVG and script are inline; model text is escaped.\n"
    "STORE is a store file; DIR an output folder holding store.db. Read-only.",
    report_opts, NULL};

/* arg as a store path (a folder means FOLDER/store.db), or NULL with a message */
static char *store_path_of(const char *arg) {
  if (store_is_url(arg)) return xstrdup(arg); /* a PostgreSQL store */
  struct stat sb;
  char *path = (!stat(arg, &sb) && S_ISDIR(sb.st_mode)) ? fs_join(arg, "store.db") : xstrdup(arg);
  if (stat(path, &sb)) {
    fprintf(stderr,
            "autodata report: no store at %s (give a store file or a run's output folder)\n", path);
    free(path);
    return NULL;
  }
  return path;
}

int cmd_report(int argc, char **argv) {
  const char *out = NULL;
  long long run = 0;
  struct report_html_opts ro = {0, 0};
  struct opts_parser op;
  opts_begin(&op, &report_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_OUT: out = op.val; break;
    case O_ALL: ro.all = 1; break;
    case O_TRAJ:
      if (opts_int(op.cmd, op.flag, op.val, 1, INT_MAX, &ro.max_traj)) return 2;
      break;
    case O_RUN:
      if (opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run)) return 2;
      break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  int n = op.npos;
  if (n < 1) {
    opts_usage_error(&report_cli, "at least one STORE|DIR is required");
    return 2;
  }
  if (n > REPORT_HTML_MAX_RUNS) {
    fprintf(stderr, "autodata report: at most %d stores, got %d\n", REPORT_HTML_MAX_RUNS, n);
    return 2;
  }
  if (run && n > 1) {
    opts_usage_error(&report_cli, "--run takes one store");
    return 2;
  }
  struct report_html_run runs[REPORT_HTML_MAX_RUNS];
  char *paths[REPORT_HTML_MAX_RUNS] = {0};
  char *dest = NULL;
  char err[1024] = "";
  int ret = 1, opened = 0;
  for (int i = 0; i < n; i++) {
    if (!(paths[i] = store_path_of(op.pos[i]))) {
      ret = 2;
      goto done;
    }
    store *st = NULL;
    int rc = store_open(paths[i], STORE_OPEN_READONLY, &st);
    if (rc) {
      fprintf(stderr, "autodata report: %s\n", st ? store_errmsg(st) : ad_strerror(rc));
      store_close(st);
      ret = rc == AD_ENOTFOUND ? 2 : 1;
      goto done;
    }
    /* a URL is labelled by store_path(): its password masked */
    runs[opened++] = (struct report_html_run){st, (store_id)run,
                                              store_is_url(op.pos[i]) ? NULL : op.pos[i]};
  }
  if (out) {
    dest = xstrdup(out);
  } else if (n == 1 && !store_is_url(paths[0])) {
    char *dir = xstrdup(paths[0]);
    char *slash = strrchr(dir, '/');
    if (slash) *slash = '\0';
    dest = slash ? fs_join(dir, "report.html") : xstrdup("report.html");
    free(dir);
  } else {
    dest = xstrdup("report.html");
  }
  int rc = report_write_html(runs, n, &ro, dest, err, sizeof err);
  if (rc) {
    fprintf(stderr, "autodata report: %s\n", err[0] ? err : ad_strerror(rc));
    ret = rc == AD_ENOTFOUND ? 2 : 1;
    goto done;
  }
  printf("report: %s\n", dest);
  ret = fflush(stdout) ? 1 : 0;
done:
  for (int i = 0; i < opened; i++) store_close(runs[i].st);
  for (int i = 0; i < n; i++) free(paths[i]);
  free(dest);
  return ret;
}
