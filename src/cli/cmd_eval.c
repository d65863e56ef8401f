/* cmd_eval.c - `autodata eval`: evaluate a model on a dataset with the dataset's own judge
 * (docs/eval.md); `autodata eval --compare A B`: two evals paired by example. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "cli/recipe_arg.h"
#include "grade/grade.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"

enum {
  O_BASE = 1,
  O_MODEL,
  O_K,
  O_JBASE,
  O_JMODEL,
  O_OUT,
  O_JSON,
  O_COMPARE,
  O_STORE,
  O_KEY,
  O_CONC,
  O_TEMP,
  O_MAXTOK,
  O_SEEDS,
  O_QUIET
};
static const struct opts_spec eval_opts[] = {
    {"base-url", "URL", O_BASE, "the evaluated model's endpoint (\"sim\": in-process sim)"},
    {"model", "M", O_MODEL, "the evaluated model"},
    {"k", "N", O_K, "answers per example, 1..64 (default 3)"},
    {"judge-base-url", "URL", O_JBASE, "judge endpoint (default: the dataset's judge endpoint)"},
    {"judge-model", "M", O_JMODEL, "judge model (default: the dataset's judge model)"},
    {"out", "DIR", O_OUT, "output folder (default DATASET_DIR/eval-<model>)"},
    {"json", NULL, O_JSON, "print the summary (or the comparison) as JSON"},
    {"compare", NULL, O_COMPARE, "compare two eval outputs A B, paired by example"},
    {"store", "FILE", O_STORE, "the dataset's store (default: store.db next to the dataset)"},
    {"api-key-env", "NAME", O_KEY, "send $NAME as the evaluated endpoint's key"},
    {"concurrency", "N", O_CONC, "answers in flight (default 64)"},
    {"temperature", "T", O_TEMP, "sampling temperature (default: the dataset's weak solver's)"},
    {"max-tokens", "N", O_MAXTOK, "answer token limit (default: the dataset's weak solver's)"},
    {"seeds", "eval|weak|strong", O_SEEDS,
     "seed labels: eval (default), or a solver role's seeds in the accepted round\n"
     "(with that role's model, the run's own answers and scores)"},
    {"quiet", NULL, O_QUIET, "no progress lines"},
    {0}};
static const struct opts_cli eval_cli = {
    "eval",
    "DATASET --base-url URL --model M [options]\n       autodata eval --compare A B [--json]",
    "Ask a model each example's question k times (context and question, as the solvers saw\n"
    "them), grade every answer with the dataset's own judge prompt, model and scoring, and\n"
    "report mean@k / best@k (rubric) or avg@k / pass@k (verifiable) with bootstrap 95% CIs.\n"
    "DATASET is a run folder (dataset.jsonl + store.db) or a dataset .jsonl file. Every call\n"
    "is kept in OUT/store.db: a rerun resumes and pays no call twice.",
    eval_opts, NULL};

static void print_metric(const char *name, const json_t *m) {
  const json_t *est = json_object_get(m, "est");
  if (!json_is_number(est)) {
    printf("  %-10s n/a (no example scored)\n", name);
    return;
  }
  printf("  %-10s %.3f  [%.3f, %.3f]  (95%% CI, %lld examples)\n", name, json_number_value(est),
         jx_num(m, "lo", NAN), jx_num(m, "hi", NAN), (long long)jx_int(m, "n", 0));
}

static int do_compare(const char *a, const char *b, int json) {
  char err[1024];
  json_t *la = NULL, *lb = NULL;
  if (grade_eval_read(a, &la, err, sizeof err) || grade_eval_read(b, &lb, err, sizeof err)) {
    fprintf(stderr, "autodata eval: %s\n", err);
    json_decref(la);
    return 2;
  }
  json_t *c = grade_eval_compare(la, lb, 0, 1);
  json_object_set_new(c, "a", json_string(a));
  json_object_set_new(c, "b", json_string(b));
  if (json) {
    char *t = json_dumps(c, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", t ? t : "{}");
    free(t);
  } else {
    printf("A: %s\nB: %s\npaired by example: %lld pairs\n", a, b, (long long)jx_int(c, "pairs", 0));
    printf("  %-10s %8s %8s %9s  %-20s %s\n", "metric", "A", "B", "A - B", "95% CI", "A>B/A<B/=");
    const char *key;
    json_t *m;
    json_object_foreach(json_object_get(c, "metrics"), key, m) {
      if (!jx_int(m, "n", 0)) {
        printf("  %-10s (no pair)\n", key);
        continue;
      }
      char ci[64];
      snprintf(ci, sizeof ci, "[%+.3f, %+.3f]", jx_num(m, "lo", 0), jx_num(m, "hi", 0));
      printf("  %-10s %8.3f %8.3f %+9.3f  %-20s %lld/%lld/%lld\n", key, jx_num(m, "a", 0),
             jx_num(m, "b", 0), jx_num(m, "diff", 0), ci, (long long)jx_int(m, "a_wins", 0),
             (long long)jx_int(m, "b_wins", 0), (long long)jx_int(m, "ties", 0));
    }
  }
  json_decref(c);
  json_decref(la);
  json_decref(lb);
  return 0;
}

/* "eval-<model>" with every character outside [A-Za-z0-9._-] as '_'. */
static char *default_out(const char *dataset, const char *model) {
  char *dir = NULL;
  size_t l = strlen(dataset);
  if (l > 6 && !strcmp(dataset + l - 6, ".jsonl")) dir = fs_dirname(dataset);
  else dir = xstrdup(dataset);
  char *m = xstrdup(model);
  for (char *p = m; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '.' || *p == '-' || *p == '_'))
      *p = '_';
  char *name = xasprintf("eval-%s", m);
  char *out = fs_join(dir, name);
  free(name);
  free(m);
  free(dir);
  return out;
}

int cmd_eval(int argc, char **argv) {
  struct grade_eval_opts o;
  memset(&o, 0, sizeof o);
  o.k = 3;
  o.temperature = LLM_UNSET;
  const char *jbase = NULL, *jmodel = NULL, *storep = NULL, *out = NULL;
  int json = 0, compare = 0;
  struct buf cl = BUF_INIT;
  cli_command_line(&cl, argc, argv);
  struct opts_parser op;
  opts_begin(&op, &eval_cli, argc, argv);
  int id, rc = 2;
  static const char *const seeds[] = {"eval", "weak", "strong", NULL};
  int si = 0;
  while ((id = opts_next(&op)) > 0) {
    switch (id) {
    case O_BASE: o.base_url = op.val; break;
    case O_MODEL: o.model = op.val; break;
    case O_K:
      if (opts_int(op.cmd, op.flag, op.val, 1, GRADE_MAX_K, &o.k)) goto done;
      break;
    case O_JBASE: jbase = op.val; break;
    case O_JMODEL: jmodel = op.val; break;
    case O_OUT: out = op.val; break;
    case O_JSON: json = 1; break;
    case O_COMPARE: compare = 1; break;
    case O_STORE: storep = op.val; break;
    case O_KEY: o.api_key_env = op.val; break;
    case O_CONC:
      if (opts_int(op.cmd, op.flag, op.val, 1, 100000, &o.concurrency)) goto done;
      break;
    case O_TEMP:
      if (opts_double(op.cmd, op.flag, op.val, 0, 10, &o.temperature)) goto done;
      break;
    case O_MAXTOK:
      if (opts_int(op.cmd, op.flag, op.val, 1, 10000000, &o.max_tokens)) goto done;
      break;
    case O_SEEDS:
      if (opts_choice(op.cmd, op.flag, op.val, seeds, &si)) goto done;
      o.seed_role = si ? seeds[si] : NULL;
      break;
    case O_QUIET: o.quiet = 1; break;
    }
  }
  if (id < 0) {
    rc = opts_exit_code(id);
    goto done;
  }
  if (compare) {
    if (op.npos != 2) {
      opts_usage_error(&eval_cli, "--compare needs two eval outputs A B");
      goto done;
    }
    rc = do_compare(op.pos[0], op.pos[1], json);
    goto done;
  }
  if (op.npos != 1) {
    opts_usage_error(&eval_cli, "DATASET is required (one)");
    goto done;
  }
  if (!o.base_url || !o.model) {
    opts_usage_error(&eval_cli, "--base-url and --model are required");
    goto done;
  }
  char err[2048];
  struct grade_set set;
  if (grade_set_load(op.pos[0], storep, jbase, jmodel, &set, err, sizeof err)) {
    fprintf(stderr, "autodata eval: %s\n", err);
    goto done;
  }
  char *outd = out ? xstrdup(out) : default_out(op.pos[0], o.model);
  o.out_dir = outd;
  o.command_line = buf_str(&cl);
  json_t *sum = NULL;
  if (grade_eval_run(&set, &o, &sum, err, sizeof err)) {
    fprintf(stderr, "autodata eval: %s\n", err);
    rc = 1;
  } else if (json) {
    char *t = json_dumps(sum, JSON_INDENT(2) | JSON_SORT_KEYS);
    printf("%s\n", t ? t : "{}");
    free(t);
    rc = 0;
  } else {
    printf("eval of %s on %s: %lld examples, k = %d, judge %s\n", o.model, set.dataset_path,
           (long long)jx_int(sum, "examples", 0), o.k, set.judge_model);
    const char *key;
    json_t *m;
    json_object_foreach(json_object_get(sum, "metrics"), key, m) print_metric(key, m);
    const json_t *calls = json_object_get(sum, "calls");
    printf("calls sent: %lld, answered from the store: %lld, failed: %lld; sample errors: %lld\n",
           (long long)jx_int(calls, "sent", 0), (long long)jx_int(calls, "cache_hits", 0),
           (long long)jx_int(calls, "failed", 0), (long long)jx_int(sum, "sample_errors", 0));
    if (jx_str(sum, "first_error")) printf("first error: %s\n", jx_str(sum, "first_error"));
    printf("per example: %s/eval.jsonl\nsummary:     %s/summary.json\n", outd, outd);
    rc = 0;
  }
  if (!rc && jx_int(sum, "scored", 0) == 0) {
    fprintf(stderr, "autodata eval: no example could be scored (%s)\n",
            jx_str(sum, "first_error") ? jx_str(sum, "first_error") : "?");
    rc = 1;
  }
  json_decref(sum);
  free(outd);
  grade_set_release(&set);
done:
  buf_release(&cl);
  return rc;
}
