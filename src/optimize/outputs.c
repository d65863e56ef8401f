/* outputs.c - what an optimisation leaves in its folder: best/<role>.md (the best
 * harness's prompt files), OPTIMIZE.md (settings, the test-split comparison with bootstrap
 * 95% CIs, the lineage, every accepted diff, refusals, the history log) and curve.jsonl
 * (one line per iteration, then the test numbers). All of it is rewritten from the
 * optimiser's state at the end of every session. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "optimize/opt_internal.h"
#include "report/bootstrap.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"

static int write_file(const char *dir, const char *name, const struct buf *b, char *err,
                      size_t errlen) {
  char *p = fs_join(dir, name);
  int rc = fs_write_atomic(p, b->data, b->len);
  if (rc) ad_set_err(err, errlen, "cannot write %s: %s", p, ad_strerror(rc));
  free(p);
  return rc;
}

static int write_best(const struct opt *x, const struct variant *best, char *err, size_t errlen) {
  char *dir = fs_join(x->out_dir, "best");
  int rc = fs_mkdirs(dir);
  const char *k;
  json_t *v;
  json_object_foreach(best->prompts, k, v) {
    if (rc) break;
    struct buf b = BUF_INIT;
    char name[64];
    snprintf(name, sizeof name, "%s.md", k);
    rc = buf_puts(&b, json_string_value(v));
    if (!rc) rc = write_file(dir, name, &b, err, errlen);
    buf_release(&b);
  }
  if (rc && err && !*err) ad_set_err(err, errlen, "cannot write %s", dir);
  free(dir);
  return rc;
}

static const char *short_sha(const char *sha, char out[9]) {
  snprintf(out, 9, "%.8s", sha);
  return out;
}

int opt_write_outputs(struct opt *x, const struct variant *base, const struct variant *best,
                      char *err, size_t errlen) {
  struct opt_summary *s = x->sum;
  const char *objective = recipe_opt_objective_name(x->cfg.objective);
  int tested = !isnan(base->test) && !isnan(best->test);
  struct boot_ci cb = {NAN, NAN, NAN, 0}, cs = cb, cd = cb;
  if (tested) {
    uint64_t seed = x->seed;
    boot_mean_ci(base->test_src, base->n_test_src, BOOT_DEFAULT_RESAMPLES, BOOT_DEFAULT_LEVEL, seed,
                 &cb);
    boot_mean_ci(best->test_src, best->n_test_src, BOOT_DEFAULT_RESAMPLES, BOOT_DEFAULT_LEVEL,
                 seed + 1, &cs);
    boot_diff_ci(best->test_src, best->n_test_src, base->test_src, base->n_test_src,
                 BOOT_DEFAULT_RESAMPLES, BOOT_DEFAULT_LEVEL, seed + 2, &cd);
    s->base_test = cb.est;
    s->base_lo = cb.lo;
    s->base_hi = cb.hi;
    s->best_test = cs.est;
    s->best_lo = cs.lo;
    s->best_hi = cs.hi;
    s->diff = cd.est;
    s->diff_lo = cd.lo;
    s->diff_hi = cd.hi;
    s->test_n = cs.n;
  }
  int rc = write_best(x, best, err, errlen);
  if (rc) return rc;

  /* curve.jsonl */
  struct buf b = BUF_INIT;
  size_t i;
  json_t *it;
  json_array_foreach(x->iters, i, it) {
    char *line = json_dumps(it, JSON_COMPACT | JSON_SORT_KEYS);
    rc = buf_printf(&b, "%s\n", line);
    free(line);
    if (rc) break;
  }
  if (!rc) {
    json_t *fin = json_pack("{s:b,s:s,s:s,s:f,s:i,s:f,s:i}", "final", 1, "baseline", base->sha,
                            "best", best->sha, "baseline_val", jx_round6(opt_val_mean(base)),
                            "baseline_val_n", base->n_val, "best_val",
                            jx_round6(opt_val_mean(best)), "best_val_n", best->n_val);
    if (tested)
      json_object_set_new(
          fin, "test",
          json_pack("{s:s,s:I,s:[f,f,f],s:[f,f,f],s:[f,f,f]}", "objective", objective, "sources",
                    (json_int_t)cs.n, "baseline", jx_round6(cb.est), jx_round6(cb.lo),
                    jx_round6(cb.hi), "best", jx_round6(cs.est), jx_round6(cs.lo), jx_round6(cs.hi),
                    "difference", jx_round6(cd.est), jx_round6(cd.lo), jx_round6(cd.hi)));
    char *line = json_dumps(fin, JSON_COMPACT | JSON_SORT_KEYS);
    rc = buf_printf(&b, "%s\n", line);
    free(line);
    json_decref(fin);
  }
  if (!rc) rc = write_file(x->out_dir, "curve.jsonl", &b, err, errlen);
  buf_release(&b);
  if (rc) return rc;

  /* OPTIMIZE.md */
  char s1[9], s2[9];
  buf_init(&b, 64u * 1024 * 1024);
  rc = buf_printf(&b,
                  "# Optimisation of `%s`\n\n"
                  "Optimisation `%s`: %d iteration(s) done of %d; objective **%s**; strategy %s "
                  "(temperature %g)%s; editable prompts:",
                  x->rc->name, x->id, s->iterations, x->cfg.iterations, objective,
                  recipe_opt_strategy_name(x->cfg.strategy), x->cfg.temperature,
                  x->cfg.minibatch_gate ? ", minibatch gate" : "");
  json_t *v;
  const char *k;
  json_object_foreach(base->prompts, k, v) if (!rc) rc = buf_printf(&b, " %s", k);
  if (!rc)
    rc = buf_printf(&b,
                    ".\nSplits (a seeded draw, disjoint): train %zu, validation %zu, test %zu "
                    "sources; minibatch %d; %d iteration(s) in flight%s. Model calls used by the "
                    "baseline and the iterations: %lld; this session sent %lld, answered from "
                    "the cache: %lld.%s%s\n\n",
                    x->split_n[0], x->split_n[1], x->split_n[2], x->cfg.minibatch, x->cfg.parallel,
                    x->cfg.merge_every > 0 ? "; merges" : "", (long long)x->used_calls,
                    (long long)s->calls_sent, (long long)s->cache_hits,
                    s->stopped ? " **Stopped**: " : "", s->stopped ? s->stop_reason : "");
  if (!rc) rc = buf_printf(&b, "## Test split: baseline against the best harness\n\n");
  if (!rc && tested)
    rc = buf_printf(
        &b,
        "The test split is read only here, after the last iteration: selection never saw it.\n\n"
        "| harness | variant | test %s | 95%% CI | sources |\n|---|---|---|---|---|\n"
        "| baseline | `%s` | %.3f | [%.3f, %.3f] | %zu |\n"
        "| best | `%s` | %.3f | [%.3f, %.3f] | %zu |\n\n"
        "Difference best - baseline: %+.3f [%+.3f, %+.3f] (bootstrap over sources, %d "
        "resamples).\n\n",
        objective, short_sha(base->sha, s1), cb.est, cb.lo, cb.hi, cb.n, short_sha(best->sha, s2),
        cs.est, cs.lo, cs.hi, cs.n, cd.est, cd.lo, cd.hi, BOOT_DEFAULT_RESAMPLES);
  else if (!rc)
    rc = buf_printf(&b,
                    "Not measured: the optimisation stopped before its end (rerun the same "
                    "command to resume).\n\n");
  if (!rc)
    rc = buf_printf(
        &b,
        "## Validation and test\n\n"
        "The best harness is the admitted variant with the highest mean validation score. "
        "That mean is biased upwards: among many variants whose true scores are close, the one "
        "with the luckiest validation draws is picked, and the validation sources were used to "
        "pick it. The test split was used for nothing else, so its numbers are the honest "
        "estimate of what the change is worth; expect them to be lower than the validation "
        "curve. Baseline validation %.3f over %d evaluation(s); best %.3f over %d.\n\n",
        opt_val_mean(base), base->n_val, opt_val_mean(best), best->n_val);
  if (!rc)
    rc = buf_printf(&b,
                    "## Lineage\n\n| variant | parent | iteration | status | validation mean "
                    "| evaluations |\n|---|---|---|---|---|---|\n");
  for (int j = 0; j < x->n_vars && !rc; j++) {
    const struct variant *w = x->vars[j];
    char s3[9];
    rc = buf_printf(&b, "| `%s` | %s%s%s%s%s%s | %d | %s%s | %.3f | %d |\n", short_sha(w->sha, s1),
                    w->parent[0] ? "`" : "", w->parent[0] ? short_sha(w->parent, s2) : "-",
                    w->parent[0] ? "`" : "", w->parent2[0] ? " + `" : "",
                    w->parent2[0] ? short_sha(w->parent2, s3) : "", w->parent2[0] ? "`" : "",
                    w->iteration,
                    w->admitted ? "admitted"
                    : w->gated  ? "gated"
                                : "rejected",
                    w == best ? " (best)" : "", opt_val_mean(w), w->n_val);
  }
  if (!rc) rc = buf_printf(&b, "\n## Accepted diffs\n\n");
  for (int j = 1; j < x->n_vars && !rc; j++) {
    const struct variant *w = x->vars[j];
    if (!w->admitted) continue;
    char s3[9];
    rc = buf_printf(&b, "### `%s` (iteration %d, parent `%s`%s%s%s)\n\n%s\n\n```diff\n%s```\n\n",
                    short_sha(w->sha, s1), w->iteration, short_sha(w->parent, s2),
                    w->parent2[0] ? ", merged with `" : "",
                    w->parent2[0] ? short_sha(w->parent2, s3) : "", w->parent2[0] ? "`" : "",
                    *w->rationale ? w->rationale : "(no rationale)", w->diff);
  }
  if (!rc) rc = buf_printf(&b, "## Iterations\n\n");
  json_array_foreach(x->iters, i, it) {
    if (rc) break;
    const char *st = jx_str(it, "status");
    if (st && !strcmp(st, "refused"))
      rc = buf_printf(&b, "- %lld: refused: %s\n", jx_int(it, "iteration", 0),
                      jx_str(it, "reason"));
    else if (st && !strcmp(st, "gated"))
      rc = buf_printf(&b,
                      "- %lld: gated (mutant `%.8s` %.3f vs parent `%.8s` %.3f on the parent's "
                      "train minibatch)\n",
                      jx_int(it, "iteration", 0), jx_str(it, "mutant"),
                      jx_num(it, "mutant_train", NAN), jx_str(it, "parent"),
                      jx_num(it, "parent_train", NAN));
    else
      rc = buf_printf(&b,
                      "- %lld: %s%s (mutant `%.8s` %.3f vs parent `%.8s` mean %.3f over %lld)\n",
                      jx_int(it, "iteration", 0), st ? st : "?",
                      json_is_true(json_object_get(it, "merge")) ? ", a merge" : "",
                      jx_str(it, "mutant"), jx_num(it, "mutant_val", NAN), jx_str(it, "parent"),
                      jx_num(it, "parent_mean", NAN), jx_int(it, "parent_n", 0));
  }
  if (!rc) rc = buf_printf(&b, "\n## History log\n\n");
  json_array_foreach(x->history, i, it) {
    if (rc) break;
    rc = buf_printf(&b, "%s\n\n", jx_str(it, "text"));
  }
  if (!rc) rc = write_file(x->out_dir, "OPTIMIZE.md", &b, err, errlen);
  else ad_set_err(err, errlen, "OPTIMIZE.md: %s", ad_strerror(rc));
  buf_release(&b);
  return rc;
}
