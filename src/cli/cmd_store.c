/* cmd_store.c - `autodata store copy FROM TO`: copy every run of one store into a new one,
 * between SQLite files and PostgreSQL URLs in either direction (store/copy.h);
 * `autodata store calls STORE`: every model call of a run, one JSON line each, its request
 * and reply decoded (whatever the store's compression). */
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "store/copy.h"
#include "store/store.h"

enum { O_RUN = 1, O_ROLE };
static const struct opts_spec store_opts[] = {
    {"run", "ID", O_RUN, "calls: a run in the store (default: the latest)"},
    {"role", "ROLE", O_ROLE, "calls: only this role's calls (e.g. judge_weak)"},
    {0}};
static const struct opts_cli store_cli = {
    "store", "copy FROM TO | calls STORE [--run ID] [--role ROLE]",
    "Copy every run of store FROM into store TO, which must hold no run yet: runs,\n"
    "sources, candidates, examples, model calls with their bodies (TO's cache serves\n"
    "them), events, analyses and optimisation tables. Either may be a SQLite file or a\n"
    "postgres:// URL (give a password with PGPASSWORD or ~/.pgpass). FROM is opened\n"
    "read-only. Creation times are the copy's; exports are the same bytes.\n\n"
    "calls: print every model call of a run as one JSON line (id, role, source, round,\n"
    "status, tokens, finish_reason, cache key, and the request and reply bodies as\n"
    "text), in call order; read-only, safe during a run.",
    store_opts, NULL};

static int print_call(void *ud, const json_t *row) {
  (void)ud;
  if (json_dumpf(row, stdout, JSON_COMPACT | JSON_PRESERVE_ORDER) || fputc('\n', stdout) == EOF)
    return AD_EIO;
  return 0;
}

static int store_calls(const char *path, long long run, const char *role) {
  store *st = NULL;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  if (rc) {
    fprintf(stderr, "autodata store: %s\n", store_errmsg(st));
    store_close(st);
    return rc == AD_ENOTFOUND ? 2 : 1;
  }
  store_id id = (store_id)run;
  if (!id && (rc = store_run_latest(st, &id))) {
    fprintf(stderr, "autodata store: %s holds no run\n", store_path(st));
    store_close(st);
    return 2;
  }
  rc = store_calls_each(st, id, role, 1, print_call, NULL);
  if (rc) fprintf(stderr, "autodata store: calls of %s: %s\n", store_path(st), store_errmsg(st));
  store_close(st);
  return rc || fflush(stdout) ? 1 : 0;
}

int cmd_store(int argc, char **argv) {
  struct opts_parser op;
  opts_begin(&op, &store_cli, argc, argv);
  int id;
  long long run = 0;
  const char *role = NULL;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_RUN:
      if (opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run)) return 2;
      break;
    case O_ROLE: role = op.val; break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos >= 1 && !strcmp(op.pos[0], "calls")) {
    if (op.npos != 2) {
      opts_usage_error(&store_cli, "calls needs STORE");
      return 2;
    }
    return store_calls(op.pos[1], run, role);
  }
  if (op.npos < 1 || strcmp(op.pos[0], "copy")) {
    opts_usage_error(&store_cli, "the subcommands are 'copy FROM TO' and 'calls STORE'");
    return 2;
  }
  if (op.npos != 3) {
    opts_usage_error(&store_cli, "copy needs FROM and TO");
    return 2;
  }
  if (run || role) {
    opts_usage_error(&store_cli, "--run and --role go with 'calls', not 'copy'");
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
