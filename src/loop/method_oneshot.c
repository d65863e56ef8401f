/* method_oneshot.c - the one-shot baselines: self-instruct and cot-self-instruct.
 *
 * One round per source from the method's own challenger prompt, no orchestrator and
 * no feedback. Every candidate that parses is evaluated with weak and strong (no
 * short-circuit), so its statistics are comparable with the agentic loop's: a failed
 * check or quality verdict is noted, not acted on. The recipe's acceptance gate is
 * recorded, never looped on. What the dataset keeps is the method's own rule:
 *   self-instruct       every candidate with no failed check or quality verdict;
 *   cot-self-instruct   the same, and it must pass the CoT-Self-Instruct filter on k
 *                       more samples from the strong solver's role (eval/baseline.h:
 *                       RIP for rubric tasks, Answer-Consistency for verifiable ones).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/method.h"
#include "util/jsonx.h"
#include "util/mem.h"

/* What a round noted (the method's per-episode state). */
struct oneshot {
  char *pre_reason, *pre_detail;       /* the first failed check or quality verdict */
  char *filter_reason, *filter_detail; /* the CoT filter's failure */
  json_t *filter_info;                 /* the CoT filter's record; NULL for self-instruct */
  int passed_filter;                   /* the example is kept */
};

static void oneshot_reset(void *state) {
  struct oneshot *s = state;
  free(s->pre_reason);
  free(s->pre_detail);
  free(s->filter_reason);
  free(s->filter_detail);
  json_decref(s->filter_info);
}

/* Note the first failure of a check or the quality verifier; the candidate goes on. */
static void note(struct oneshot *s, struct ep_failure f) {
  if (!f.reason || s->pre_reason) return;
  s->pre_reason = xstrdup(f.reason);
  s->pre_detail = xstrdup(f.detail);
}

/* The CoT-Self-Instruct filter over the FILTER samples: RIP (rubric) or
 * Answer-Consistency (verifiable). Sets filter_info and, on failure,
 * filter_reason/detail. */
static void cot_filter(struct episode *ep, struct oneshot *s) {
  const struct bl_params *bp = ep_filter_params(ep);
  const struct cand *c = ep_cand(ep);
  int n_filt;
  const struct ep_sample *filt = ep_samples(ep, EP_FILTER, &n_filt);
  char d[600];
  json_decref(s->filter_info);
  if (ep_recipe(ep)->task != CAND_TASK_VERIFIABLE) {
    double scores[ACCEPT_MAX_SAMPLES];
    int n = 0;
    json_t *sc = json_array();
    for (int i = 0; i < n_filt; i++)
      if (filt[i].ok) {
        scores[n++] = filt[i].score;
        json_array_append_new(sc, json_real(jx_round6(filt[i].score)));
      }
    double q = 0;
    int keep = bl_rip(scores, n, bp->rip_threshold, &q);
    s->filter_info = json_pack("{s:s,s:i,s:i,s:o,s:f,s:f,s:b}", "name", "rip", "k", bp->k, "scored",
                               n, "scores", sc, "quality", jx_round6(q), "threshold",
                               bp->rip_threshold, "pass", keep);
    if (n == 0) {
      xset_str(&s->filter_reason, "error:filter");
      xset_str(&s->filter_detail, ep_failure(ep).detail);
    } else if (!keep) {
      snprintf(d, sizeof d, "RIP: lowest of %d scores %.3f < threshold %.3f", n, q,
               bp->rip_threshold);
      xset_str(&s->filter_reason, "filter:rip");
      xset_str(&s->filter_detail, d);
    }
    return;
  }
  char *ans[ACCEPT_MAX_SAMPLES];
  json_t *aj = json_array();
  for (int i = 0; i < n_filt; i++) {
    ans[i] = filt[i].ok && filt[i].answer
                 ? score_final_answer(filt[i].answer, strlen(filt[i].answer))
                 : NULL;
    json_array_append_new(aj, ans[i] ? jx_string_lossy(ans[i], strlen(ans[i])) : json_null());
  }
  struct bl_majority m;
  int keep = bl_answer_consistency((const char *const *)ans, n_filt, c->reference_answer,
                                   bp->ac_min_share, &m);
  s->filter_info = json_pack(
      "{s:s,s:i,s:o,s:o,s:i,s:f,s:b,s:f,s:s,s:b}", "name", "answer_consistency", "k", bp->k,
      "answers", aj, "majority",
      m.winner >= 0 ? jx_string_lossy(ans[m.winner], strlen(ans[m.winner])) : json_null(), "count",
      m.count, "share", jx_round6(m.share), "tied", m.tied, "min_share", bp->ac_min_share,
      "reference", c->reference_answer, "pass", keep);
  if (!keep) {
    if (m.winner < 0)
      snprintf(d, sizeof d, "Answer-Consistency: no majority answer (%s %d of %d)",
               m.tied ? "tie at" : "top count", m.count, n_filt);
    else if (m.share + 1e-12 < bp->ac_min_share)
      snprintf(d, sizeof d, "Answer-Consistency: majority share %.2f < %.2f", m.share,
               bp->ac_min_share);
    else
      snprintf(d, sizeof d,
               "Answer-Consistency: majority answer %.60s (%d of %d) differs from the generated "
               "answer %.60s",
               ans[m.winner], m.count, n_filt, c->reference_answer);
    xset_str(&s->filter_reason, "filter:answer_consistency");
    xset_str(&s->filter_detail, d);
  }
  for (int i = 0; i < n_filt; i++) free(ans[i]);
}

/* The candidate has been evaluated: record the gate (the recipe's acceptance, the
 * same predicate as the agentic loop) and keep what the method's rule keeps. */
static void decide(struct episode *ep, struct oneshot *s) {
  char failed[128], d[200];
  s->passed_filter = !s->pre_reason && !s->filter_reason;
  if (s->pre_reason) {
    ep_end_round(ep, s->pre_reason, s->pre_detail, 0);
    return;
  }
  const char *reason = accept_evaluate(&ep_recipe(ep)->accept, ep_stats(ep), failed, sizeof failed);
  if (!reason) {
    ep_end_round(ep, NULL, NULL, s->passed_filter);
    return;
  }
  snprintf(d, sizeof d, "bound failed: %s", failed);
  ep_end_round(ep, reason, d, s->passed_filter);
}

static void self_instruct_next(struct episode *ep, enum ep_state done) {
  struct oneshot *s = ep_method_state(ep);
  struct ep_failure f = ep_failure(ep);
  switch (done) {
  case EP_IDLE: ep_challenge(ep); return;
  case EP_CHALLENGE:
    if (f.reason && !ep_cand(ep)) { /* nothing to evaluate */
      ep_end_round(ep, f.reason, f.detail, 0);
      return;
    }
    note(s, f); /* a failed check: the candidate is evaluated anyway */
    ep_quality(ep);
    return;
  case EP_QUALITY:
    note(s, f);
    ep_solve(ep, EP_WEAK, 0);
    return;
  case EP_WEAK:
    if (f.reason) ep_end_round(ep, f.reason, f.detail, 0);
    else ep_solve(ep, EP_STRONG, 0);
    return;
  case EP_STRONG:
    if (f.reason) ep_end_round(ep, f.reason, f.detail, 0);
    else decide(ep, s);
    return;
  default: ep_end_round(ep, "error:internal", ep_state_name(done), 0); return;
  }
}

/* cot-self-instruct: self-instruct, plus the filter's samples after the strong ones. */
static void cot_next(struct episode *ep, enum ep_state done) {
  struct oneshot *s = ep_method_state(ep);
  struct ep_failure f = ep_failure(ep);
  if (done == EP_STRONG && !f.reason) {
    ep_solve(ep, EP_FILTER, ep_filter_params(ep)->k);
    return;
  }
  if (done == EP_FILTER) {
    cot_filter(ep, s);
    decide(ep, s);
    return;
  }
  self_instruct_next(ep, done);
}

/* Why the candidate is not kept (NULL when it is). */
static const char *not_kept_reason(const struct oneshot *s, const char *reason) {
  if (s->passed_filter) return NULL;
  if (s->pre_reason) return s->pre_reason;
  if (s->filter_reason) return s->filter_reason;
  return reason ? reason : "not_evaluated";
}

static void oneshot_annotate(struct episode *ep, const char *reason, const char *detail,
                             json_t *rec, json_t *ex) {
  const struct oneshot *s = ep_method_state(ep);
  const char *name = ep_method(ep)->name;
  const char *fr = not_kept_reason(s, reason);
  const char *fd = s->pre_reason ? s->pre_detail : s->filter_reason ? s->filter_detail : detail;
  json_object_set_new(rec, "method", json_string(name));
  json_object_set_new(rec, "passed_gate", json_boolean(!reason));
  json_object_set_new(rec, "passed_filter", json_boolean(s->passed_filter));
  json_object_set_new(rec, "filter_reason", fr ? json_string(fr) : json_null());
  json_object_set_new(rec, "filter_detail",
                      fr && fd ? jx_string_lossy(fd, strlen(fd)) : json_null());
  json_object_set_new(rec, "filter", s->filter_info ? json_deep_copy(s->filter_info) : json_null());
  if (!ex) return;
  json_object_set_new(ex, "method", json_string(name));
  json_object_set_new(ex, "passed_filter", json_true());
  json_object_set_new(ex, "passed_gate", json_boolean(!reason));
  json_object_set_new(ex, "gate_reason", reason ? json_string(reason) : json_null());
  json_object_set_new(ex, "filter", s->filter_info ? json_deep_copy(s->filter_info) : json_null());
}

static json_t *cot_identity(const struct method_ops *m, const struct bl_params *p) {
  return json_pack("{s:s,s:i,s:f,s:f}", "name", m->name, "k", p->k, "rip_threshold",
                   p->rip_threshold, "ac_min_share", p->ac_min_share);
}

const struct method_ops method_self_instruct = {
    .name = "self-instruct",
    .challenger_prompt = "self-instruct",
    .challenger_schema = 1,
    .baseline = 1,
    .max_rounds = 1,
    .state_size = sizeof(struct oneshot),
    .reset = oneshot_reset,
    .next = self_instruct_next,
    .annotate = oneshot_annotate,
};

const struct method_ops method_cot_self_instruct = {
    .name = "cot-self-instruct",
    .challenger_prompt = "cot-self-instruct",
    .challenger_schema = 0, /* it reasons and plans before its JSON */
    .baseline = 1,
    .max_rounds = 1,
    .state_size = sizeof(struct oneshot),
    .reset = oneshot_reset,
    .identity = cot_identity,
    .next = cot_next,
    .annotate = oneshot_annotate,
};
