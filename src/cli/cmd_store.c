/* cmd_store.c - `autodata store copy FROM TO`: copy every run of one store into a new one,
 * between SQLite files and PostgreSQL URLs in either direction (store/copy.h). */
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "store/copy.h"
#include "store/store.h"

static const struct opts_spec store_opts[] = {{0}};
static const struct opts_cli store_cli = {
    "store", "copy FROM TO",
    "Copy every run of store FROM into store TO, which must hold no run yet: runs,\n"
    "sources, candidates, examples, model calls with their bodies (TO's cache serves\n"
    "them), events, analyses and optimisation tables. Either may be a SQLite file or a\n"
    "postgres:// URL (give a password with PGPASSWORD or ~/.pgpass). FROM is opened\n"
    "read-only. Creation times are the copy's; exports are the same bytes.",
    store_opts, NULL};

int cmd_store(int argc, char **argv) {
  struct opts_parser op;
  opts_begin(&op, &store_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos < 1 || strcmp(op.pos[0], "copy")) {
    opts_usage_error(&store_cli, "the only subcommand is 'copy FROM TO'");
    return 2;
  }
  if (op.npos != 3) {
    opts_usage_error(&store_cli, "copy needs FROM and TO");
    return 2;
  }
  store *from = NULL, *to = NULL;
  int ret = 1;
  int rc = store_open(op.pos[1], STORE_OPEN_READONLY, &from);
  if (rc) {
    fprintf(stderr, "autodata store: %s\n", store_errmsg(from));
    ret = rc == AD_ENOTFOUND ? 2 : 1;
    goto done;
  }
  if ((rc = store_open(op.pos[2], 0, &to))) {
    fprintf(stderr, "autodata store: %s\n", store_errmsg(to));
    goto done;
  }
  char err[1536];
  struct store_copy_counts n;
  if ((rc = store_copy(from, to, &n, err, sizeof err)) || (rc = store_flush(to))) {
    fprintf(stderr, "autodata store: copy %s -> %s: %s\n", store_path(from), store_path(to),
            rc == AD_EMISMATCH || err[0] ? err : store_errmsg(to));
    ret = rc == AD_EMISMATCH ? 2 : 1;
    goto done;
  }
  printf(
      "copied %s -> %s: %lld run(s), %lld sources, %lld candidates, %lld examples, %lld "
      "calls, %lld events, %lld optimisation rows\n",
      store_path(from), store_path(to), (long long)n.runs, (long long)n.sources,
      (long long)n.candidates, (long long)n.examples, (long long)n.calls, (long long)n.events,
      (long long)n.opt_rows);
  ret = 0;
done:
  store_close(from);
  if (to && store_close(to) && !ret) ret = 1;
  return ret;
}
