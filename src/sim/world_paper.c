/* world_paper.c - the sim world's support for the paper's setups (see world_paper.h). */
#include "sim/world_paper.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/err.h"
#include "util/jsonx.h"

static const char *const REASONING_TAGS[] = {"causal_reasoning", "quantitative_reasoning",
                                             "counterfactual", "design_tradeoff"};

int sim_paper_wants_negative(const char *all) {
  static const char needle[] = "negative criteria";
  size_t n = sizeof needle - 1;
  for (const char *p = all; p && *p; p++)
    if (!strncasecmp(p, needle, n)) return 1;
  return 0;
}

int sim_paper_sign_rubric(struct rng *r, json_t *o, struct sim_fact *const *pick, size_t m) {
  json_t *rub = json_object_get(o, "rubric");
  if (!json_is_array(rub)) return AD_EINVAL;
  size_t i;
  json_t *it;
  json_array_foreach(rub, i, it) json_object_set_new(it, "category", json_string("positive"));
  size_t nneg = m ? 1 + (size_t)rng_below(r, 2) : 0;
  for (size_t k = 0; k < nneg; k++) {
    const struct sim_fact *f = pick[(size_t)rng_below(r, m)];
    long long off = 1 + (long long)rng_below(r, 3);
    long long wrong = rng_below(r, 2) ? f->value + off : f->value - off;
    long long wt = -1 - (long long)rng_below(r, 7);
    char crit[96];
    snprintf(crit, sizeof crit, "States that %s is %lld", f->name, wrong);
    json_array_append_new(rub, json_pack("{s:s, s:I, s:s}", "criterion", crit, "weight",
                                         (json_int_t)wt, "category", "negative"));
  }
  size_t t0 = (size_t)rng_below(r, 4), t1 = (t0 + 1 + (size_t)rng_below(r, 3)) % 4;
  json_object_set_new(o, "reasoning_skills",
                      json_pack("[s, s]", REASONING_TAGS[t0], REASONING_TAGS[t1]));
  return 0;
}

int sim_paper_weight_ok(const json_t *item) {
  const json_t *wt = json_object_get(item, "weight");
  if (!json_is_integer(wt)) return 0;
  json_int_t w = json_integer_value(wt);
  if (w >= 1 && w <= 7) return 1;
  const char *cat = jx_str(item, "category");
  return w <= -1 && w >= -7 && cat && !strcmp(cat, "negative");
}

int sim_paper_extractor(struct rng *r, const char *user, double p_unsuitable, struct buf *out) {
  struct sim_fact facts[64];
  size_t nf = sim_facts_scan(user, strlen(user), SIM_STATE_EQ, facts, 64);
  int unsuitable = rng_double(r) < p_unsuitable || nf == 0;
  json_t *o;
  if (unsuitable) {
    o = json_pack("{s:b, s:s}", "suitable", 0, "reason",
                  nf ? "the document is procedural: it reports no finding a question could rest on"
                     : "the document states no quantity a question could rest on");
  } else {
    char x[160];
    snprintf(x, sizeof x,
             "The document reports %zu named quantities under its protocols; a question should "
             "combine several of them.",
             nf);
    o = json_pack("{s:b, s:s, s:s}", "suitable", 1, "reason", "the document reports findings",
                  "extraction", x);
  }
  char *t = json_dumps(o, JSON_COMPACT);
  int rc = t ? buf_puts(out, t) : AD_EINVAL;
  free(t);
  json_decref(o);
  return rc;
}

/* The number after label in text ("weak avg: 42%"), or -1. */
static double pct_of(const char *text, const char *label) {
  const char *p = text ? strstr(text, label) : NULL;
  if (!p) return -1;
  char *end;
  double v = strtod(p + strlen(label), &end);
  return end == p + strlen(label) ? -1 : v;
}

int sim_paper_loop_judge(struct rng *r, const char *last, double err, struct buf *out) {
  double flip = rng_double(r);
  double w = pct_of(last, "weak avg: "), s = pct_of(last, "strong avg: ");
  int accept = w >= 0 && s >= 0 && s >= 50 && s - w >= 20;
  const char *why = w < 0 || s < 0 ? "the evaluation shows no scores; improve"
                    : accept       ? "the strong model mostly succeeds and the weak one does not"
                    : s < 50       ? "even the strong model fails too often: the question may be "
                                     "unanswerable from its context"
                                   : "the weak model does nearly as well as the strong one: ask "
                                     "for deeper reasoning";
  if (flip < err) accept = !accept;
  json_t *o = json_pack("{s:s, s:s}", "verdict", accept ? "accept" : "improve", "reason", why);
  char *t = json_dumps(o, JSON_COMPACT);
  int rc = t ? buf_puts(out, t) : AD_EINVAL;
  free(t);
  json_decref(o);
  return rc;
}
