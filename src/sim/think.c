/* think.c - a sim solver's reasoning filler (see think.h). */
#include "sim/think.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/mem.h"
#include "util/rng.h"

#include <stdlib.h>
#include <string.h>

int sim_think_parse(const char *model, const char *spec, struct sim_think *t, char *err,
                    size_t errlen) {
  memset(t, 0, sizeof *t);
  const char *q = spec;
  if (!*q) { /* "sim-solver@0.5," */
    ad_set_err(err, errlen, "model '%s': a world parameter is missing after ','", model);
    return AD_EINVAL;
  }
  while (*q) {
    const char *eq = strchr(q, '=');
    size_t kl = eq ? (size_t)(eq - q) : strcspn(q, ",");
    long lo = 0, hi = 0;
    int *dst = NULL;
    if (eq && kl == 5 && !strncmp(q, "think", 5)) dst = &t->tokens, hi = SIM_THINK_MAX;
    else if (eq && kl == 4 && !strncmp(q, "tags", 4)) dst = &t->tags, hi = 1;
    if (!dst) {
      ad_set_err(err, errlen, "model '%s': unknown world parameter '%.*s' (see docs/sim.md)", model,
                 (int)kl, q);
      return AD_EINVAL;
    }
    char *end;
    long v = strtol(eq + 1, &end, 10);
    if (end == eq + 1 || (*end && *end != ',') || v < lo || v > hi) {
      ad_set_err(err, errlen, "model '%s': parameter '%.*s' must be an integer in [%ld, %ld]",
                 model, (int)kl, q, lo, hi);
      return AD_EINVAL;
    }
    *dst = (int)v;
    q = *end ? end + 1 : end;
  }
  return 0;
}

int sim_think_of_model(const char *model, struct sim_think *t, char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  if (!model || strncmp(model, "sim-solver@", 11)) return 0;
  const char *comma = strchr(model + 11, ',');
  if (!comma) return 1;
  int rc = sim_think_parse(model, comma + 1, t, err, errlen);
  return rc ? rc : 1;
}

/* Words of a reasoning trace that say nothing: no digit, no '=', no ':' (so no fact
 * statement, no "ANSWER:" line, no heading the world reads). */
static const char *const OPENERS[] = {
    "Let me",           "I should",           "First I will", "Now I",
    "Perhaps I should", "Before answering I", "Next I",       "Then I"};
static const char *const VERBS[] = {"reconsider", "check",     "weigh",   "recall",   "compare",
                                    "reread",     "set aside", "revisit", "question", "summarise"};
static const char *const OBJECTS[] = {
    "what the question asks",           "the study's design",
    "the wording of the question",      "the conditions described in the context",
    "how the quantities relate",        "whether my first reading holds",
    "the assumptions behind the setup", "what a careful reader would expect",
    "the main claim of the work",       "an alternative interpretation"};
static const char *const TAILS[] = {".",
                                    " carefully.",
                                    " once more.",
                                    " before going on.",
                                    ", and see whether it changes anything.",
                                    ", since that matters here."};

#define PICK(a, r) (a)[rng_below((r), sizeof(a) / sizeof *(a))]

char *sim_think_text(const struct sim_think *t, uint64_t seed, size_t *len) {
  *len = 0;
  if (!t || t->tokens <= 0) return NULL;
  struct rng r;
  rng_seed(&r, seed);
  /* N/2 .. 3N/2 tokens: reasoning lengths vary from sample to sample */
  size_t tokens = (size_t)((double)t->tokens * (0.5 + rng_double(&r)) + 0.5);
  if (tokens < 1) tokens = 1;
  size_t want = tokens * 4;
  struct buf b;
  buf_init(&b, want + 256);
  int rc = 0;
  while (!rc && b.len < want) {
    if (b.len) rc = buf_putc(&b, ' ');
    if (!rc)
      rc = buf_printf(&b, "%s %s %s%s", PICK(OPENERS, &r), PICK(VERBS, &r), PICK(OBJECTS, &r),
                      PICK(TAILS, &r));
  }
  if (rc) {
    buf_release(&b);
    return NULL;
  }
  if (b.len > want) b.len = want, b.data[want] = '\0'; /* exactly the drawn length */
  return buf_take(&b, len);
}
