/* cmd_run.c - `autodata run RECIPE`: run (or resume) a recipe end to end. */
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analyze/analyze.h"
#include "cli/cmd.h"
#include "cli/opts.h"
#include "cli/recipe_arg.h"
#include "loop/method.h"
#include "loop/qpass.h"
#include "loop/run.h"
#include "recipe/recipe.h"
#include "report/report.h"
#include "sim/world.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/mem.h"

/* A recipe whose roles are all sim models and whose corpus file does not exist:
 * after the loop's "cannot open" error, the one command that makes a sim corpus. */
static void sim_corpus_hint(const struct recipe *rc) {
  const char *p = rc->sources.path;
  struct stat sb;
  if (!p || !stat(p, &sb) || errno != ENOENT) return;
  for (int i = 0; i < RECIPE_N_ROLES; i++)
    if (rc->roles[i].present && (!rc->roles[i].model || strncmp(rc->roles[i].model, "sim-", 4)))
      return;
  fprintf(stderr,
          "autodata run: this recipe runs on the sim world; make its corpus first with\n"
          "  autodata sim-sources --count 100 --out %s\n",
          p);
}

enum {
  O_LIMIT = 1,
  O_CONC,
  O_NEWRUN,
  O_REOPEN,
  O_CACHE,
  O_METHOD,
  O_COTK,
  O_RIP,
  O_AC,
  O_OUT,
  O_PROGRESS,
  O_QUIET,
  O_STORE,
  O_LEASE
};
static const struct opts_spec run_opts[] = {
    {"limit", "N", O_LIMIT, "process only the first N sources (a quick preview)"},
    {"concurrency", "N", O_CONC, "sources in flight (default: the recipe's, 64)"},
    {"new-run", NULL, O_NEWRUN, "start a new run even if the store holds a different one"},
    {"reopen-exhausted", NULL, O_REOPEN,
     "resume: give exhausted sources the rounds a raised\n"
     "rounds_per_source now allows (default: they stay exhausted)"},
    {"cache-from", "FILE", O_CACHE, "reuse answered model calls from another run store"},
    {"method", "M", O_METHOD,
     "agentic (default: the recipe's method:), self-instruct or\n"
     "cot-self-instruct (one shot, same evaluation; docs/baselines.md),\n"
     "or agent (the orchestrator calls tools; docs/agent.md)"},
    {"cot-k", "N", O_COTK,
     "cot-self-instruct: filter samples per example (default: the\n"
     "recipe's baselines.k, 4)"},
    {"rip-threshold", "X", O_RIP,
     "cot-self-instruct, rubric tasks: RIP keeps lowest score >= X\n"
     "(default: baselines.rip_threshold, 0.5)"},
    {"ac-share", "X", O_AC,
     "cot-self-instruct, verifiable: majority share needed\n"
     "(default: baselines.ac_min_share, 0.5)"},
    {"out", "DIR", O_OUT,
     "output folder (default: the recipe's; a baseline with the\n"
     "default runs/<name> writes to runs/<name>-<method>)"},
    {"store", "PATH", O_STORE,
     "the run store, a SQLite file or a postgres:// URL (default: the\n"
     "recipe's output.store); on PostgreSQL every `autodata run` of the\n"
     "same recipe joins the run as a worker (docs/store.md)"},
    {"lease", "SECONDS", O_LEASE,
     "workers on PostgreSQL: how long a source stays leased without a\n"
     "heartbeat before another worker takes it over (default 30)"},
    {"progress", "MODE", O_PROGRESS, "live | plain (default: live on a terminal)"},
    {"quiet", NULL, O_QUIET, "no progress lines"},
    {0}};
static const struct opts_cli run_cli = {
    "run", "RECIPE [options]",
    "Run the recipe's agentic loop (or a one-shot baseline) over its sources; on an\n"
    "existing store, resume.",
    run_opts, NULL};

/* The run's outputs, from its store alone (report/report.h): what is done, also when
 * the run stopped early. */
static int write_outputs(const struct run_summary *sum, struct report_paths *paths, char *err,
                         size_t errlen) {
  store *st = NULL;
  int skipped = 0;    /* up to date: a resume that changed nothing rewrites nothing */
  mem_release_free(); /* the loop's freed heap, before the writers map their own buffers */
  int rc = store_open(sum->store_path, STORE_OPEN_READONLY, &st);
  if (rc) ad_set_err(err, errlen, "%s", st ? store_errmsg(st) : ad_strerror(rc));
  else
    rc = report_write_all_changed(st, sum->run_id, sum->output_folder, paths, &skipped, err,
                                  errlen);
  if (st) (void)store_close(st); /* read-only: nothing left to commit */
  return rc;
}

/* The end-of-loop quality pass's failed examples as an_opts.removed_before (new). */
static json_t *qpass_removed(const json_t *qp) {
  json_t *out = json_object();
  const char *id;
  json_t *v;
  json_object_foreach(json_object_get(qp, "examples"), id, v) {
    if (!jx_str(v, "reason")) continue;
    json_object_set_new(out, id,
                        json_pack("{s:s, s:s}", "reason", jx_str(v, "reason"), "detail",
                                  jx_str(v, "feedback") ? jx_str(v, "feedback") : ""));
  }
  return out;
}

/* The recipe's finalize: step (docs/analyze.md): the dataset-level analysis of the run's
 * accepted examples, kept in the store, from which write_outputs() writes analysis.json and
 * removed.jsonl and leaves the removed examples out of dataset.jsonl. */
static int finalize_run(const struct recipe *rc, struct run_summary *sum, char *err,
                        size_t errlen) {
  const struct recipe_finalize *f = &rc->finalize;
  struct an_opts o;
  an_opts_defaults(&o);
  o.dedup.threshold = f->threshold;
  o.dedup.shingle = f->shingle;
  o.ngram = f->ngram;
  o.against = (const char *const *)f->against;
  o.nagainst = (size_t)f->n_against;
  o.fields = (const char *const *)f->fields;
  o.nfields = (size_t)f->n_fields;
  store *st = NULL;
  json_t *doc = NULL, *qp = NULL, *before = NULL;
  /* shared: on PostgreSQL the other workers of the run may still be leaving it */
  int rc_ = store_open(sum->store_path, STORE_OPEN_SHARED, &st);
  if (rc_) ad_set_err(err, errlen, "%s", st ? store_errmsg(st) : ad_strerror(rc_));
  else if (f->quality) {
    struct qpass_calls n = {0, 0};
    rc_ = qpass_run(rc, st, sum->run_id, &qp, &n, err, errlen);
    sum->calls_sent += n.sent; /* the pass's calls count with the run's */
    sum->cache_hits += n.cache_hits;
    if (!rc_) o.removed_before = before = qpass_removed(qp);
  }
  if (!rc_ && !(rc_ = an_run(st, sum->run_id, &o, &doc, err, errlen))) {
    json_object_set_new(doc, "finalize", json_pack("{s:b}", "remove", f->remove));
    if (qp) json_object_set(doc, "quality_pass", qp);
    if ((rc_ = store_analysis_put(st, sum->run_id, doc)) || (rc_ = store_flush(st)))
      ad_set_err(err, errlen, "%s", store_errmsg(st));
  }
  json_decref(doc);
  json_decref(qp);
  json_decref(before);
  if (st) (void)store_close(st);
  return rc_;
}

/* The sim world's effective parameters of every role whose model is a sim world model
 * ({"judge": {"model": "sim-judge", "params": {...}}, ...}; docs/sim.md), or NULL when none
 * is. The sim backend answers such names whether in-process or over HTTP. */
static json_t *sim_world_record(const struct recipe *rc) {
  json_t *o = NULL;
  for (int i = 0; i < RECIPE_N_ROLES; i++) {
    const struct recipe_role *r = &rc->roles[i];
    json_t *params = NULL;
    char err[256];
    if (!r->present || !r->model || sim_world_params(r->model, &params, err, sizeof err) != 1)
      continue;
    if (!o) o = json_object();
    json_object_set_new(o, recipe_role_name((enum recipe_role_id)i),
                        json_pack("{s:s, s:o}", "model", r->model, "params", params));
  }
  return o;
}

int cmd_run(int argc, char **argv) {
  struct run_opts o;
  memset(&o, 0, sizeof o);
  o.progress = -1;
  /* Filter settings the user gives; the rest are "not given" (k 0, NAN) and
   * come from the recipe's `baselines:` (run.h, struct run_opts.bl). */
  struct bl_params bl = {0, NAN, NAN};
  static const char *const progress_modes[] = {"live", "plain", NULL};
  struct opts_parser op;
  opts_begin(&op, &run_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_LIMIT: bad = opts_size(op.cmd, op.flag, op.val, 0, SIZE_MAX, &o.limit); break;
    case O_CONC: bad = opts_int(op.cmd, op.flag, op.val, 1, 100000, &o.concurrency); break;
    case O_NEWRUN: o.new_run = 1; break;
    case O_REOPEN: o.reopen_exhausted = 1; break;
    case O_CACHE: o.cache_from = op.val; break;
    case O_METHOD: {
      if (!method_find(op.val)) bad = opts_reject(op.cmd, op.flag, op.val, "%s", method_names());
      o.method = op.val;
      break;
    }
    case O_COTK: bad = opts_int(op.cmd, op.flag, op.val, 1, BL_MAX_K, &bl.k); break;
    case O_RIP: bad = opts_double(op.cmd, op.flag, op.val, 0, 1, &bl.rip_threshold); break;
    case O_AC: bad = opts_double(op.cmd, op.flag, op.val, 0, 1, &bl.ac_min_share); break;
    case O_OUT: o.output_folder = op.val; break;
    case O_STORE: o.store_path = op.val; break;
    case O_LEASE: {
      double sec = 0;
      bad = opts_double(op.cmd, op.flag, op.val, 0.5, 86400, &sec);
      o.lease_ms = (int)(sec * 1000);
      break;
    }
    case O_PROGRESS: {
      int mode = 0;
      bad = opts_choice(op.cmd, op.flag, op.val, progress_modes, &mode);
      o.progress = mode == 0; /* live: 1, plain: 0 */
      break;
    }
    case O_QUIET: o.quiet = 1; break;
    }
    if (bad) return 2;
  }
  if (id < 0) return opts_exit_code(id);
  if (op.npos != 1) {
    if (op.npos) opts_usage_error(&run_cli, "one RECIPE at a time, got %d arguments", op.npos);
    else opts_usage_error(&run_cli, "RECIPE is required");
    return 2;
  }
  const char *path = op.pos[0];
  o.bl = &bl;
  /* A closed stdout or stderr pipe must not kill the command: the run stops on it (run.h)
   * and the outputs are still written; later writes to the pipe just fail. */
  signal(SIGPIPE, SIG_IGN);

  struct buf cl = BUF_INIT;
  cli_command_line(&cl, argc, argv);
  o.command_line = buf_str(&cl);
  struct recipe *rc = cli_recipe_load(path);
  if (!rc) {
    buf_release(&cl);
    return 2;
  }

  struct run_summary sum;
  char err[1024] = "";
  json_t *sim_world = sim_world_record(rc);
  o.sim_world = sim_world;
  int rc_ = run_execute(rc, &o, &sum, err, sizeof err);
  json_decref(sim_world);
  signal(SIGHUP, SIG_IGN); /* the terminal closing now must not cut the outputs short */
  struct report_paths paths;
  if (!rc_ && rc->finalize.present) rc_ = finalize_run(rc, &sum, err, sizeof err);
  if (!rc_) {
    rc_ = write_outputs(&sum, &paths, err, sizeof err);
  } else if (sum.run_id) {
    /* The run failed after it began in the store (a full disk, a store error): what it
     * committed is there, so the outputs are brought up to date with it rather than left
     * as an earlier session wrote them. */
    char oerr[1024] = "";
    if (write_outputs(&sum, &paths, oerr, sizeof oerr))
      fprintf(stderr, "autodata run: the outputs could not be brought up to date: %s\n", oerr);
    else
      fprintf(stderr, "autodata run: the outputs in %s hold what the store holds\n",
              sum.output_folder);
  }
  int status = 0;
  if (rc_) {
    fprintf(stderr, "autodata run: %s\n", err[0] ? err : ad_strerror(rc_));
    sim_corpus_hint(rc);
    status = sum.bad_input ? 2 : 1; /* a bad corpus is bad input, like a bad recipe */
  } else {
    size_t finished = sum.done + sum.exhausted;
    int is_bl = sum.baseline;
    printf("%s %s in %.1fs: %zu sources, %zu finished (%zu %s, %zu %s), %zu pending\n", rc->name,
           sum.stopped ? "stopped" : "done", sum.seconds, sum.sources, finished, sum.done,
           is_bl ? "kept" : "accepted", sum.exhausted, is_bl ? "not kept" : "exhausted",
           sum.pending);
    if (sum.invalid_skipped)
      printf("invalid source records skipped: %zu (sources.on_invalid: skip; see the card)\n",
             sum.invalid_skipped);
    if (is_bl)
      printf(
          "method %s: examples kept by its filter: %zu; candidates that passed the acceptance "
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
    if (sum.worker)
      printf(
          "worker %lld: %zu sources taken over from expired leases, %zu results dropped "
          "(their lease was taken over)\n",
          (long long)sum.worker, sum.taken_over, sum.lost);
    if (sum.judgements > 0)
      printf("judgements: %lld, invalid after their repair turn: %lld\n", (long long)sum.judgements,
             (long long)sum.judgements_invalid);
    if (sum.stopped)
      printf("stopped: %s (run the same command again to resume)\n", sum.stop_reason);
    else if (sum.parked)
      printf(
          "%zu sources were set aside after calls failed for infrastructure reasons (see "
          "`autodata status`); run the same command again to resume them\n",
          sum.parked);
    printf(
        "dataset:    %s\nrejections: %s\ncandidates: %s\ndata card:  %s\nreport:     %s\n"
        "store:      %s\n",
        paths.dataset, paths.rejected, paths.candidates, paths.card, paths.report, sum.store_path);
    if (paths.analysis[0])
      printf("analysis:   %s (%zu examples removed: %s)\n", paths.analysis, paths.n_removed,
             paths.removed);
    if (sum.stopped || sum.parked) status = 3;
    if (sum.all_errors && !sum.stopped) {
      fprintf(stderr,
              "autodata run: every source finished in this session ended on an error; last: %s\n",
              sum.error_reason);
      status = 1;
    }
  }
  recipe_free(rc);
  buf_release(&cl);
  return status;
}
