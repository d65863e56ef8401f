/* world_paper.c - the sim world's support for the paper's setups (see world_paper.h). */
#include "sim/world_paper.h"

#include <stdio.h>
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
