/* test_compare.c - bootstrap intervals (quantiles, determinism, coverage of a
 * known mean, the unpaired difference) and the compare figures of runs built
 * through the store API (populations, acceptance over finished sources,
 * rounds, rejections, differences against the first run, rendering). */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "report/bootstrap.h"
#include "report/compare.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/rng.h"

#include "helpers.h"

/* ---- bootstrap ------------------------------------------------------------------- */

Test(bootstrap, quantile_interpolates) {
  double s[] = {1, 2, 3, 4, 5};
  cr_assert_float_eq(boot_quantile(s, 5, 0.0), 1, 1e-12);
  cr_assert_float_eq(boot_quantile(s, 5, 1.0), 5, 1e-12);
  cr_assert_float_eq(boot_quantile(s, 5, 0.5), 3, 1e-12);
  cr_assert_float_eq(boot_quantile(s, 5, 0.1), 1.4, 1e-12); /* h = 0.4 */
  cr_assert_float_eq(boot_quantile(s, 5, 0.975), 4.9, 1e-12);
  cr_assert(isnan(boot_quantile(s, 0, 0.5)));
}

Test(bootstrap, empty_single_constant) {
  struct boot_ci c;
  boot_mean_ci(NULL, 0, 2000, 0.95, 1, &c);
  cr_assert(isnan(c.est));
  cr_assert_eq(c.n, 0);
  double one = 0.7;
  boot_mean_ci(&one, 1, 2000, 0.95, 1, &c);
  cr_assert_float_eq(c.lo, 0.7, 1e-12);
  cr_assert_float_eq(c.hi, 0.7, 1e-12);
  double k[50];
  for (int i = 0; i < 50; i++) k[i] = 0.25;
  boot_mean_ci(k, 50, 500, 0.95, 9, &c);
  cr_assert_float_eq(c.lo, 0.25, 1e-12);
  cr_assert_float_eq(c.hi, 0.25, 1e-12);
}

Test(bootstrap, deterministic_and_width_matches_theory) {
  /* 400 Bernoulli(0.5)-like values: exactly 200 ones. Standard error 0.025, so
   * the 95% interval is about mean +- 0.049. */
  double x[400];
  for (int i = 0; i < 400; i++) x[i] = (i % 2) ? 1.0 : 0.0;
  struct boot_ci a, b, c;
  boot_mean_ci(x, 400, 2000, 0.95, 7, &a);
  boot_mean_ci(x, 400, 2000, 0.95, 7, &b);
  cr_assert_eq(a.lo, b.lo, "same seed, same interval");
  cr_assert_eq(a.hi, b.hi);
  cr_assert_float_eq(a.est, 0.5, 1e-12);
  cr_assert_eq(a.n, 400);
  cr_assert(a.lo < 0.5 && a.hi > 0.5);
  cr_assert(fabs((a.hi - a.lo) - 2 * 1.96 * 0.025) < 0.012, "width %g", a.hi - a.lo);
  boot_mean_ci(x, 400, 2000, 0.95, 8, &c);
  cr_assert(c.lo != a.lo || c.hi != a.hi, "another seed, another draw");
  /* A narrower level gives a narrower interval. */
  boot_mean_ci(x, 400, 2000, 0.5, 7, &c);
  cr_assert(c.hi - c.lo < a.hi - a.lo);
}

Test(bootstrap, difference_unpaired) {
  double x[300], y[200];
  struct rng g;
  rng_seed(&g, 3);
  for (int i = 0; i < 300; i++) x[i] = 0.6 + 0.2 * (rng_double(&g) - 0.5);
  for (int i = 0; i < 200; i++) y[i] = 0.4 + 0.2 * (rng_double(&g) - 0.5);
  struct boot_ci d;
  boot_diff_ci(x, 300, y, 200, 2000, 0.95, 1, &d);
  cr_assert_float_eq(d.est, boot_mean(x, 300) - boot_mean(y, 200), 1e-12);
  cr_assert(d.lo > 0.18 && d.hi < 0.22, "[%g, %g]", d.lo, d.hi);
  cr_assert(d.lo < d.est && d.est < d.hi);
  struct boot_ci r;
  boot_diff_ci(y, 200, x, 300, 2000, 0.95, 1, &r);
  cr_assert_float_eq(r.est, -d.est, 1e-12);
  boot_diff_ci(x, 300, y, 0, 2000, 0.95, 1, &r);
  cr_assert(isnan(r.est), "an empty side gives no difference");
}

/* ---- compare over real stores ---------------------------------------------------- */

static char tdir[64];

static void tmp_setup(void) { th_mkdtemp(tdir, sizeof tdir, "compare"); }

static void tmp_teardown(void) { th_rmtree(tdir); /* best effort */ }

TestSuite(compare, .init = tmp_setup, .fini = tmp_teardown);

#define SHA "1111111111111111111111111111111111111111111111111111111111111111"

struct cand_spec {
  const char *src;
  int round;
  const char *reason; /* NULL = accepted by the gate */
  double weak, strong;
  int kept; /* an example is stored */
  int strong_ran;
};

/* Build a store with one run of method `method` and the given candidates; a
 * source's state is done when it has an example, else exhausted. */
static void make_store(const char *path, const char *method, const struct cand_spec *c, int n) {
  store *st = NULL;
  cr_assert_eq(store_open(path, 0, &st), 0);
  json_t *ph = json_pack("{s:s}", "challenger", SHA);
  json_t *extra = json_pack("{s:{s:s}}", "method", "name", method);
  struct store_run_info info = {"t", SHA, ph, 1, "0", "test", NULL, extra};
  store_id run;
  int resumed;
  cr_assert_eq(store_run_begin(st, &info, 0, &run, &resumed), 0);
  for (int i = 0; i < n; i++) {
    cr_assert_eq(store_source_put(st, run, c[i].src, NULL, SHA), 0);
    json_t *stats = json_pack("{s:i,s:i,s:b,s:f,s:f,s:f}", "n_weak", 3, "n_strong",
                              c[i].strong_ran ? 3 : 0, "strong_ran", c[i].strong_ran, "weak_mean",
                              c[i].weak, "strong_mean", c[i].strong, "gap",
                              c[i].strong - c[i].weak);
    json_t *rec = json_pack("{s:o}", "stats", stats);
    if (strcmp(method, "agentic"))
      json_object_set_new(rec, "passed_filter", json_boolean(c[i].kept));
    if (strcmp(method, "agentic") && !c[i].kept)
      json_object_set_new(rec, "filter_reason", json_string("filter:rip"));
    cr_assert_eq(store_candidate_put(st, run, c[i].src, c[i].round, 0,
                                     c[i].reason ? "rejected" : "accepted", c[i].reason, rec),
                 0);
    json_decref(rec);
    if (c[i].kept) {
      char id[64];
      snprintf(id, sizeof id, "%s-1", c[i].src);
      json_t *ex = json_pack("{s:s,s:s,s:f,s:f,s:f,s:f,s:i,s:[{s:s,s:i},{s:s,s:i}]}", "id", id,
                             "question", "Wh\xc3\xa9re?", "weak_mean", c[i].weak, "strong_mean",
                             c[i].strong, "gap", c[i].strong - c[i].weak, "weak_std", 0.1,
                             "rounds_used", c[i].round, "rubric", "criterion", "a", "weight", 1,
                             "criterion", "b", "weight", 2);
      cr_assert_eq(store_example_put(st, run, c[i].src, id, ex), 0);
      json_decref(ex);
    }
  }
  /* States: done when the source has an example. */
  for (int i = 0; i < n; i++) {
    int has = 0;
    for (int k = 0; k < n; k++)
      if (!strcmp(c[k].src, c[i].src) && c[k].kept) has = 1;
    cr_assert_eq(store_source_set_state(st, run, c[i].src,
                                        has ? STORE_SRC_DONE : STORE_SRC_EXHAUSTED, c[i].round),
                 0);
  }
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_close(st), 0);
  json_decref(ph);
  json_decref(extra);
}

static struct compare_run *load(const char *path) {
  store *st = NULL;
  cr_assert_eq(store_open(path, STORE_OPEN_READONLY, &st), 0);
  struct compare_run *r = NULL;
  char err[256];
  cr_assert_eq(compare_load(st, 0, path, &r, err, sizeof err), 0, "%s", err);
  store_close(st);
  return r;
}

static double est(const json_t *o, const char *a, const char *b) {
  const json_t *v = json_object_get(o, a);
  if (b) v = json_object_get(v, b);
  return jx_num(v, "est", NAN);
}

Test(compare, figures_and_differences) {
  char pa[128], pb[128];
  snprintf(pa, sizeof pa, "%s/a.db", tdir);
  snprintf(pb, sizeof pb, "%s/b.db", tdir);
  /* agentic: s1 accepted in round 2 (round 1 too easy, short-circuited), s2
   * exhausted after 2 rounds, s3 accepted in round 1. */
  struct cand_spec a[] = {
      {"s1", 1, "too_easy", 0.9, 0, 0, 0},
      {"s1", 2, NULL, 0.3, 0.9, 1, 1},
      {"s2", 1, "failed_on_strong", 0.2, 0.4, 0, 1},
      {"s2", 2, "too_easy", 0.8, 0, 0, 0},
      {"s3", 1, NULL, 0.1, 0.7, 1, 1},
  };
  /* baseline: one round each; s1 passes the gate but fails the filter. */
  struct cand_spec b[] = {
      {"s1", 1, NULL, 0.2, 0.8, 0, 1},
      {"s2", 1, "too_easy", 0.7, 0.9, 1, 1},
      {"s3", 1, "too_easy", 0.6, 1.0, 1, 1},
      {"s4", 1, "no_gap", 0.5, 0.6, 1, 1},
  };
  make_store(pa, "agentic", a, 5);
  make_store(pb, "cot-self-instruct", b, 4);
  struct compare_run *runs[2] = {load(pa), load(pb)};
  struct compare_opts o;
  compare_opts_default(&o);
  json_t *cmp = NULL;
  char err[256];
  cr_assert_eq(compare_build(runs, 2, &o, &cmp, err, sizeof err), 0, "%s", err);
  const json_t *ra = json_array_get(json_object_get(cmp, "runs"), 0);
  const json_t *rb = json_array_get(json_object_get(cmp, "runs"), 1);
  cr_assert_str_eq(jx_str(ra, "method"), "agentic");
  cr_assert_str_eq(jx_str(rb, "method"), "cot-self-instruct");
  cr_assert_eq(jx_int(ra, "sources", 0), 3);
  cr_assert_eq(jx_int(ra, "accepted", 0), 2);
  cr_assert_eq(jx_int(ra, "kept", 0), 2);
  cr_assert_eq(jx_int(ra, "candidates", 0), 5);
  cr_assert_float_eq(est(ra, "acceptance_rate", NULL), 2.0 / 3, 1e-9);
  cr_assert_float_eq(jx_num(ra, "rounds_to_accept", 0), 1.5, 1e-9);
  cr_assert_float_eq(jx_num(ra, "rounds_per_accepted", 0), 2.5, 1e-9);
  cr_assert_float_eq(est(ra, "dataset", "weak_mean"), 0.2, 1e-9);
  cr_assert_float_eq(est(ra, "dataset", "gap"), 0.6, 1e-9);
  cr_assert_float_eq(est(ra, "dataset", "question_chars"), 6, 1e-9, "code points, not bytes");
  cr_assert_float_eq(est(ra, "dataset", "rubric_items"), 2, 1e-9);
  /* evaluated: weak over all 5, strong and gap over the 3 where strong ran */
  cr_assert_eq(jx_int(json_object_get(ra, "evaluated"), "n", 0), 5);
  cr_assert_float_eq(est(ra, "evaluated", "weak_mean"), (0.9 + 0.3 + 0.2 + 0.8 + 0.1) / 5, 1e-9);
  cr_assert_float_eq(est(ra, "evaluated", "strong_mean"), (0.9 + 0.4 + 0.7) / 3, 1e-9);
  cr_assert_eq(jx_int(json_object_get(ra, "rejections"), "too_easy", 0), 2);
  cr_assert_eq(jx_int(json_object_get(ra, "rejections"), "failed_on_strong", 0), 1);
  cr_assert_null(json_object_get(ra, "vs_first"));
  /* baseline: gate acceptance 1/4, kept 3 */
  cr_assert_eq(jx_int(rb, "accepted", 0), 1);
  cr_assert_eq(jx_int(rb, "kept", 0), 3);
  cr_assert_float_eq(est(rb, "acceptance_rate", NULL), 0.25, 1e-9);
  cr_assert_float_eq(jx_num(rb, "rounds_per_accepted", 0), 4, 1e-9);
  cr_assert_float_eq(est(rb, "dataset", "weak_mean"), 0.6, 1e-9);
  cr_assert_eq(jx_int(json_object_get(rb, "filter_rejections"), "filter:rip", 0), 1);
  const json_t *vs = json_object_get(rb, "vs_first");
  cr_assert_float_eq(est(vs, "dataset.weak_mean", NULL), 0.6 - 0.2, 1e-9);
  cr_assert_float_eq(est(vs, "acceptance_rate", NULL), 0.25 - 2.0 / 3, 1e-9);
  const json_t *ci = json_object_get(vs, "dataset.gap");
  cr_assert(jx_num(ci, "lo", 9) <= jx_num(ci, "est", 0) &&
            jx_num(ci, "est", 0) <= jx_num(ci, "hi", -9));

  struct buf t = BUF_INIT, m = BUF_INIT;
  cr_assert_eq(compare_render(cmp, 0, &t), 0);
  cr_assert_eq(compare_render(cmp, 1, &m), 0);
  cr_assert(strstr(buf_str(&t), "acceptance rate"));
  cr_assert(strstr(buf_str(&t), "0.667 ["), "%s", buf_str(&t));
  cr_assert(strstr(buf_str(&t), "rejected: failed_on_strong"));
  cr_assert(strstr(buf_str(&t), "filter rejected: filter:rip"));
  cr_assert(strstr(buf_str(&t), "vs first: dataset gap"));
  cr_assert(strstr(buf_str(&m), "|:--"), "%s", buf_str(&m));
  buf_release(&t);
  buf_release(&m);
  json_decref(cmp);
  compare_run_free(runs[0]);
  compare_run_free(runs[1]);
}

Test(compare, candidates_jsonl_and_errors) {
  char pa[128], out[160];
  snprintf(pa, sizeof pa, "%s/a.db", tdir);
  snprintf(out, sizeof out, "%s/candidates.jsonl", tdir);
  struct cand_spec a[] = {{"s1", 1, "too_easy", 0.9, 0, 0, 0}, {"s1", 2, NULL, 0.3, 0.9, 1, 1}};
  make_store(pa, "agentic", a, 2);
  store *st = NULL;
  cr_assert_eq(store_open(pa, STORE_OPEN_READONLY, &st), 0);
  size_t n = 0;
  char err[256];
  cr_assert_eq(compare_write_candidates(st, 0, out, &n, err, sizeof err), 0, "%s", err);
  cr_assert_eq(n, 2);
  char *text = NULL;
  size_t len = 0;
  cr_assert_eq(fs_read_all(out, 1 << 20, &text, &len), 0);
  cr_assert(strstr(text, "\"reason\":\"too_easy\""));
  cr_assert(strstr(text, "\"verdict\":\"accepted\""));
  free(text);
  struct compare_run *r = NULL;
  cr_assert_neq(compare_load(st, 99, "x", &r, err, sizeof err), 0, "no run 99");
  cr_assert_null(r);
  store_close(st);
  json_t *cmp = NULL;
  cr_assert_neq(compare_build(NULL, 0, NULL, &cmp, err, sizeof err), 0);
}

/* A run's intervals do not depend on where it stands among the arguments, and runs over
 * the same sources are compared paired by source. */
Test(compare, seed_independent_of_order_and_paired_by_source) {
  char pa[128], pb[128], pc[128];
  snprintf(pa, sizeof pa, "%s/a.db", tdir);
  snprintf(pb, sizeof pb, "%s/b.db", tdir);
  snprintf(pc, sizeof pc, "%s/c.db", tdir);
  struct cand_spec a[] = {
      {"s1", 1, NULL, 0.3, 0.9, 1, 1},     {"s2", 1, "too_easy", 0.8, 0, 0, 0},
      {"s3", 1, NULL, 0.1, 0.7, 1, 1},     {"s4", 1, NULL, 0.2, 0.8, 1, 1},
      {"s5", 1, "too_easy", 0.9, 0, 0, 0}, {"s6", 1, NULL, 0.4, 0.9, 1, 1},
  };
  struct cand_spec b[] = {/* the same sources: paired */
                          {"s1", 1, NULL, 0.2, 0.8, 1, 1},     {"s2", 1, "too_easy", 0.7, 0, 0, 0},
                          {"s3", 1, "too_easy", 0.9, 0, 0, 0}, {"s4", 1, NULL, 0.3, 0.9, 1, 1},
                          {"s5", 1, "too_easy", 0.9, 0, 0, 0}, {"s6", 1, "no_gap", 0.4, 0.5, 0, 1}};
  struct cand_spec c[] = {/* other sources: unpaired */
                          {"x1", 1, NULL, 0.2, 0.8, 1, 1},
                          {"x2", 1, "too_easy", 0.7, 0, 0, 0}};
  make_store(pa, "agentic", a, 6);
  make_store(pb, "self-instruct", b, 6);
  make_store(pc, "cot-self-instruct", c, 2);
  struct compare_opts o;
  compare_opts_default(&o);
  char err[256];
  struct compare_run *ra = load(pa), *rb = load(pb), *rc = load(pc);
  struct compare_run *abc[3] = {ra, rb, rc}, *acb[3] = {ra, rc, rb};
  json_t *x = NULL, *y = NULL;
  cr_assert_eq(compare_build(abc, 3, &o, &x, err, sizeof err), 0, "%s", err);
  cr_assert_eq(compare_build(acb, 3, &o, &y, err, sizeof err), 0, "%s", err);
  const json_t *xr = json_object_get(x, "runs"), *yr = json_object_get(y, "runs");
  /* b is second in one order and third in the other: the same intervals, every one */
  json_t *xb = json_deep_copy(json_array_get(xr, 1)), *yb = json_deep_copy(json_array_get(yr, 2));
  cr_assert(json_equal(xb, yb), "b's figures depend on the argument order");
  json_t *xc = json_array_get(xr, 2), *yc = json_array_get(yr, 1);
  cr_assert(json_equal(xc, yc), "c's figures depend on the argument order");
  /* b finished the same sources as a: paired; c did not */
  const json_t *vb = json_object_get(xb, "vs_first"), *vc = json_object_get(xc, "vs_first");
  cr_assert_eq(jx_int(vb, "paired_sources", -1), 6);
  cr_assert_eq(jx_int(vc, "paired_sources", -1), 0);
  /* paired: the mean of per-source differences (= the difference of the rates) with the
   * interval of those differences: s3 and s6 went from accepted to not, the rest agree */
  const json_t *acc = json_object_get(vb, "acceptance_rate");
  cr_assert_float_eq(jx_num(acc, "est", 9), 2.0 / 6 - 4.0 / 6, 1e-9);
  cr_assert(jx_num(acc, "hi", 9) <= 0, "every paired difference is <= 0, so is the CI");
  cr_assert(jx_num(acc, "lo", 9) >= -1);
  struct buf t = BUF_INIT;
  cr_assert_eq(compare_render(x, 0, &t), 0);
  cr_assert(strstr(buf_str(&t), "yes (6 sources)"), "%s", buf_str(&t));
  cr_assert(strstr(buf_str(&t), "no (other sources)"), "%s", buf_str(&t));
  buf_release(&t);
  json_decref(xb);
  json_decref(yb);
  json_decref(x);
  json_decref(y);
  compare_run_free(ra);
  compare_run_free(rb);
  compare_run_free(rc);
}
