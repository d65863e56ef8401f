/* cmd_sim_sources.c - `autodata sim-sources`: write a synthetic corpus for the sim world. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "sim/sources.h"
#include "util/fs.h"

enum { O_COUNT = 1, O_SEED, O_FACTS, O_OUT };
static const struct opts_spec sim_sources_opts[] = {
    {"count", "N", O_COUNT, "number of sources (default 10)"},
    {"seed", "S", O_SEED, "corpus seed (default 1)"},
    {"facts-per-source", "K", O_FACTS,
     "facts per source, 1.." OPTS_STR(SIM_SOURCE_MAX_FACTS) " (default " OPTS_STR(
         SIM_SOURCE_DEFAULT_FACTS) ")"},
    {"out", "FILE", O_OUT, "output file, its folder made if missing (default: standard output)"},
    {0}};
static const struct opts_cli sim_sources_cli = {
    "sim-sources", "[--count N] [--seed S] [--facts-per-source K] [--out FILE]",
    "Write N synthetic \"papers\" as JSONL lines {\"id\", \"title\", \"text\"} for the sim\n"
    "world. Each holds K named facts written as `F-3a9c = 17` inside filler prose, with\n"
    "difficulties spread over [0,1]. The corpus is a pure function of (N, S, K).",
    sim_sources_opts, NULL};

int cmd_sim_sources(int argc, char **argv) {
  unsigned long long count = 10, seed = 1, k = SIM_SOURCE_DEFAULT_FACTS;
  const char *out = NULL;
  struct opts_parser op;
  opts_begin(&op, &sim_sources_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    uint64_t v = 0;
    switch (id) {
    case O_COUNT:
      bad = opts_u64(op.cmd, op.flag, op.val, 0, 1000000, &v);
      count = v;
      break;
    case O_SEED:
      bad = opts_u64(op.cmd, op.flag, op.val, 0, UINT64_MAX, &v);
      seed = v;
      break;
    case O_FACTS:
      bad = opts_u64(op.cmd, op.flag, op.val, 1, SIM_SOURCE_MAX_FACTS, &v);
      k = v;
      break;
    case O_OUT:
      out = op.val;
      if (!*out) bad = opts_reject(op.cmd, op.flag, out, "a file name");
      break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&sim_sources_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  FILE *f = stdout;
  if (out) {
    char *dir = strchr(out, '/') ? fs_dirname(out) : NULL; /* its folder, made if missing */
    int mk = dir ? fs_mkdirs(dir) : 0;
    if (mk) {
      fprintf(stderr, "autodata: sim-sources: cannot create folder %s: %s\n", dir, strerror(errno));
      free(dir);
      return 1;
    }
    free(dir);
    f = fopen(out, "w");
    if (!f) {
      fprintf(stderr, "autodata: sim-sources: cannot open %s for writing: %s\n", out,
              strerror(errno));
      return 1;
    }
  }
  int rc = sim_sources_write(f, (unsigned)count, seed, (unsigned)k);
  int werr = ferror(f);
  int cerr = (f != stdout) ? fclose(f) : fflush(f);
  if (rc || werr || cerr) {
    fprintf(stderr, "autodata: sim-sources: writing %s failed: %s\n", out ? out : "stdout",
            rc ? ad_strerror(rc) : strerror(errno));
    return 1;
  }
  if (out) fprintf(stderr, "autodata: wrote %llu sim sources to %s\n", count, out);
  return 0;
}
