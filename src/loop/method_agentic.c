/* method_agentic.c - the Agentic Self-Instruct loop (Kulikov et al., 2026).
 *
 * Per round: from round 2 the orchestrator (when the recipe has one) reads this
 * source's earlier rounds and writes instructions; the challenger writes a candidate
 * from the source, the instructions and the feedback on earlier rounds; any failed
 * check, quality verdict or judging ends the round with its reason; the weak solver
 * runs first and, with short_circuit, a failing weak gate ends the round before the
 * strong solver is paid for (as the paper does); then the recipe's acceptance bounds
 * decide. An accepted candidate is the example; a rejected one feeds the next round.
 *
 * With roles.challenger.parallel = n > 1 a round asks n challengers at once (ep_screen): each
 * candidate is checked and quality-verified before any solver runs, and the survivors are
 * evaluated one at a time in the order of eval/screen.h until one is accepted; a rejected
 * survivor is recorded and the next one is evaluated; the round ends with the accepted one,
 * or with the last survivor's rejection, or (none survived) with the last candidate's own
 * screening failure.
 */
#include <stdio.h>
#include <string.h>

#include "loop/method.h"

/* The current candidate is rejected: the round's next survivor is evaluated (several
 * challengers per round), else the round ends. */
static void reject(struct episode *ep, const char *reason, const char *detail) {
  int k = ep_screen_next(ep);
  if (k < 0) {
    ep_end_round(ep, reason, detail, 0);
    return;
  }
  if (ep_screen_reject(ep, reason, detail)) return; /* parked */
  ep_screen_pick(ep, k);
  ep_solve(ep, EP_WEAK, 0);
}

/* Reject the current candidate with the step's failure when there is one; 1 if it did. */
static int ended_on_failure(struct episode *ep) {
  struct ep_failure f = ep_failure(ep);
  if (!f.reason) return 0;
  reject(ep, f.reason, f.detail);
  return 1;
}

/* The round's candidate(s): one challenger, or n at once, screened. */
static void challenge(struct episode *ep) {
  int n = ep_recipe(ep)->roles[RECIPE_ROLE_CHALLENGER].parallel;
  if (n > 1) ep_screen(ep, n);
  else ep_challenge(ep);
}

/* The acceptance bounds decide the round. */
static void gate(struct episode *ep) {
  char failed[128], detail[600];
  const char *reason = accept_evaluate(&ep_recipe(ep)->accept, ep_stats(ep), failed, sizeof failed);
  if (reason && !strcmp(reason, "loop_judge:improve")) {
    snprintf(detail, sizeof detail, "the loop judge asked to improve: %s", ep_loop_reason(ep));
    reject(ep, reason, detail);
  } else if (reason) {
    snprintf(detail, sizeof detail, "bound failed: %s", failed);
    reject(ep, reason, detail);
  } else {
    ep_end_round(ep, NULL, NULL, 1);
  }
}

static void agentic_next(struct episode *ep, enum ep_state done) {
  const struct recipe *rc = ep_recipe(ep);
  const struct accept_spec *acc = &rc->accept;
  char failed[128], detail[200];
  switch (done) {
  case EP_IDLE: /* round 1 has no history for the orchestrator to analyse */
    if (rc->roles[RECIPE_ROLE_EXTRACTOR].present && !ep_extracted(ep)) ep_extract(ep);
    else if (ep_round(ep) > 1 && rc->roles[RECIPE_ROLE_ORCHESTRATOR].present) ep_orchestrate(ep);
    else challenge(ep);
    return;
  case EP_EXTRACT: { /* an unsuitable document ends the source: nothing else is spent */
    struct ep_failure f = ep_failure(ep);
    if (f.reason && !strcmp(f.reason, "unsuitable")) ep_end_source(ep, f.reason, f.detail);
    else if (!ended_on_failure(ep)) agentic_next(ep, EP_IDLE);
    return;
  }
  case EP_ORCHESTRATE: /* a failed orchestrator call is recorded; the round goes on */
    challenge(ep);
    return;
  case EP_SCREEN: { /* the first survivor, else the last candidate's own failure ends it */
    int k = ep_screen_next(ep);
    ep_screen_pick(ep, k >= 0 ? k : ep_screen_count(ep) - 1);
    if (!ended_on_failure(ep)) ep_solve(ep, EP_WEAK, 0);
    return;
  }
  case EP_CHALLENGE:
    if (!ended_on_failure(ep)) ep_quality(ep);
    return;
  case EP_QUALITY:
    if (!ended_on_failure(ep)) ep_solve(ep, EP_WEAK, 0);
    return;
  case EP_WEAK:
    if (ended_on_failure(ep)) return;
    if (acc->short_circuit &&
        !accept_check_group(acc, ACC_WEAK, ep_stats(ep), failed, sizeof failed)) {
      const char *reason = accept_evaluate(acc, ep_stats(ep), failed, sizeof failed);
      snprintf(detail, sizeof detail, "weak gate failed: %s", failed);
      reject(ep, reason ? reason : "too_easy", detail);
      return;
    }
    ep_solve(ep, EP_STRONG, 0);
    return;
  case EP_STRONG:
    if (ended_on_failure(ep)) return;
    if (rc->roles[RECIPE_ROLE_LOOP_JUDGE].present) ep_loop_judge(ep); /* a statistic too */
    else gate(ep);
    return;
  case EP_LOOP_JUDGE:
    if (!ended_on_failure(ep)) gate(ep);
    return;
  default: /* EP_REPAIR, EP_FILTER and the end states never reach a method */
    ep_end_round(ep, "error:internal", ep_state_name(done), 0);
    return;
  }
}

const struct method_ops method_agentic = {
    .name = "agentic",
    .challenger_schema = 1,
    .uses_orchestrator = 1,
    .next = agentic_next,
};
