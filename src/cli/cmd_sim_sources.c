/* cmd_sim_sources.c - `autodata sim-sources`: write a synthetic corpus for the sim world. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "sim/sources.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: autodata sim-sources [--count N] [--seed S] [--facts-per-source K] [--out FILE]\n\n"
          "Write N synthetic \"papers\" as JSONL lines {\"id\", \"title\", \"text\"} for the sim\n"
          "world. Each holds K named facts written as `F-3a9c = 17` inside filler prose, with\n"
          "difficulties spread over [0,1]. The corpus is a pure function of (N, S, K).\n\n"
          "  --count N             number of sources (default 10)\n"
          "  --seed S              corpus seed (default 1)\n"
          "  --facts-per-source K  facts per source, 1..%d (default %d)\n"
          "  --out FILE            output file (default: standard output)\n",
          SIM_SOURCE_MAX_FACTS, SIM_SOURCE_DEFAULT_FACTS);
}

/* Parse an unsigned decimal in [lo, hi]; returns 0 or -1. */
static int parse_u64(const char *s, unsigned long long lo, unsigned long long hi,
                     unsigned long long *out) {
  if (!s || !*s || *s == '-' || *s == '+') return -1;
  errno = 0;
  char *end;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

int cmd_sim_sources(int argc, char **argv) {
  unsigned long long count = 10, seed = 1, k = SIM_SOURCE_DEFAULT_FACTS;
  const char *out = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
      usage(stdout);
      return 0;
    } else if (!strcmp(a, "--count")) {
      if (parse_u64(v, 0, 1000000, &count)) {
        fprintf(stderr, "autodata: sim-sources: --count needs an integer in 0..1000000\n");
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--seed")) {
      if (parse_u64(v, 0, UINT64_MAX, &seed)) {
        fprintf(stderr, "autodata: sim-sources: --seed needs a non-negative integer\n");
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--facts-per-source")) {
      if (parse_u64(v, 1, SIM_SOURCE_MAX_FACTS, &k)) {
        fprintf(stderr, "autodata: sim-sources: --facts-per-source needs an integer in 1..%d\n",
                SIM_SOURCE_MAX_FACTS);
        return 2;
      }
      i++;
    } else if (!strcmp(a, "--out")) {
      if (!v || !*v) {
        fprintf(stderr, "autodata: sim-sources: --out needs a file name\n");
        return 2;
      }
      out = v;
      i++;
    } else {
      fprintf(stderr, "autodata: sim-sources: unknown option '%s'\n\n", a);
      usage(stderr);
      return 2;
    }
  }
  FILE *f = stdout;
  if (out) {
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
