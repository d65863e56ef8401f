/* cmd_reward_server.c - `autodata reward-server`: the dataset's judge as an HTTP reward
 * endpoint for GRPO trainers (OpenRLHF's remote reward model, a plain JSON API;
 * docs/eval.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "grade/grade.h"
#include "util/fs.h"
#include "util/mem.h"

enum {
  O_PORT = 1,
  O_JBASE,
  O_JMODEL,
  O_STORE,
  O_CACHE,
  O_THREADS,
  O_MAXBODY,
  O_RETRIES,
  O_TIMEOUT,
  O_SEEDS,
  O_QUIET
};
static const struct opts_spec rs_opts[] = {
    {"port", "N", O_PORT, "port on 127.0.0.1 (0: the kernel picks one, printed at start)"},
    {"judge-base-url", "URL", O_JBASE, "judge endpoint (default: the dataset's judge endpoint)"},
    {"judge-model", "M", O_JMODEL, "judge model (default: the dataset's judge model)"},
    {"store", "FILE", O_STORE, "the dataset's store (default: store.db next to the dataset)"},
    {"cache", "FILE", O_CACHE,
     "store of the judge calls: a response scored before costs nothing\n"
     "(default DATASET_DIR/reward-cache.db)"},
    {"threads", "N", O_THREADS, "HTTP worker threads (default 2)"},
    {"max-body", "BYTES", O_MAXBODY, "request body limit, larger bodies get 413 (default 8388608)"},
    {"judge-retries", "N", O_RETRIES, "retries of a failed judge call (default 2)"},
    {"judge-timeout-ms", "MS", O_TIMEOUT, "per-attempt judge timeout (default 120000)"},
    {"seeds", "reward|weak|strong", O_SEEDS,
     "judge seeds: reward (default), or a solver role's first sample's in the run"},
    {"quiet", NULL, O_QUIET, "no summary on exit"},
    {0}};
static const struct opts_cli rs_cli = {
    "reward-server", "DATASET --port N [options]",
    "Serve the dataset's judge as a reward endpoint on 127.0.0.1: POST /get_reward (OpenRLHF's\n"
    "remote reward model: query, prompts, labels -> rewards), POST /v1/reward (an example id\n"
    "or prompt and responses -> scores with per-criterion detail), GET /health. Rewards are\n"
    "the judge's scores with the dataset's own judge prompt, model and scoring.",
    rs_opts, "See docs/eval.md."};

int cmd_reward_server(int argc, char **argv) {
  struct grade_server_opts o;
  memset(&o, 0, sizeof o);
  o.port = -1;
  o.judge_retries = 2;
  o.judge_timeout_ms = 120000;
  const char *jbase = NULL, *jmodel = NULL, *storep = NULL, *cache = NULL;
  static const char *const seeds[] = {"reward", "weak", "strong", NULL};
  int si = 0;
  size_t maxbody = 8u << 20;
  struct opts_parser op;
  opts_begin(&op, &rs_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_PORT:
      if (opts_int(op.cmd, op.flag, op.val, 0, 65535, &o.port)) return 2;
      break;
    case O_JBASE: jbase = op.val; break;
    case O_JMODEL: jmodel = op.val; break;
    case O_STORE: storep = op.val; break;
    case O_CACHE: cache = op.val; break;
    case O_THREADS:
      if (opts_int(op.cmd, op.flag, op.val, 1, 64, &o.threads)) return 2;
      break;
    case O_MAXBODY:
      if (opts_size(op.cmd, op.flag, op.val, 1024, 16u << 20, &maxbody)) return 2;
      break;
    case O_RETRIES:
      if (opts_int(op.cmd, op.flag, op.val, 0, 100, &o.judge_retries)) return 2;
      break;
    case O_TIMEOUT:
      if (opts_int(op.cmd, op.flag, op.val, 1, 86400000, &o.judge_timeout_ms)) return 2;
      break;
    case O_SEEDS:
      if (opts_choice(op.cmd, op.flag, op.val, seeds, &si)) return 2;
      o.seed_role = si ? seeds[si] : NULL;
      break;
    case O_QUIET: o.quiet = 1; break;
    }
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos != 1) {
    opts_usage_error(&rs_cli, "DATASET is required (one)");
    return 2;
  }
  if (o.port < 0) {
    opts_usage_error(&rs_cli, "--port is required");
    return 2;
  }
  o.max_body = maxbody;
  char err[2048];
  struct grade_set set;
  if (grade_set_load(op.pos[0], storep, jbase, jmodel, &set, err, sizeof err)) {
    fprintf(stderr, "autodata reward-server: %s\n", err);
    return 2;
  }
  char *dflt = NULL;
  if (!cache) {
    char *dir = fs_dirname(set.dataset_path);
    dflt = fs_join(dir, "reward-cache.db");
    free(dir);
  }
  o.cache_path = cache ? cache : dflt;
  int rc = grade_serve(&set, &o, err, sizeof err);
  if (rc) fprintf(stderr, "autodata reward-server: %s\n", err);
  free(dflt);
  grade_set_release(&set);
  return rc ? 1 : 0;
}
