/* episode.c - one source's Agentic Self-Instruct episode, as a state machine.
 *
 * A round runs these phases; each phase submits calls and the last completion
 * of the phase moves the episode on (no threads, no blocking):
 *
 *   ORCHESTRATOR (rounds >= 2, when the recipe has one): history -> instructions
 *   CHALLENGER: source + instructions + feedback -> candidate JSON
 *     parse + schema (one repair turn that shows the model its parse error)
 *     programmatic checks (context length, leakage, rubric, duplicates)
 *   QUALITY (when the recipe has one): LLM verifier pass/fail
 *   WEAK x n: each answer judged (rubric judge, LLM verifier or a local matcher)
 *     weak gate (short-circuit: a failing weak gate skips the strong solver)
 *   STRONG x n: each answer judged
 *   DECIDE: the recipe's acceptance bounds -> accepted or a rejection reason
 *
 * A round ends with a record in the store; the rejected round's summary feeds
 * the next round's feedback block. A failed or malformed reply in any role ends
 * that candidate with a recorded reason ("error:<role>", "parse_error", ...),
 * never the run. The episode ends when it has examples_per_source accepted
 * examples (source "done") or its rounds are spent ("exhausted"); that end is
 * written in one store transaction with the final candidate and example.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/extract.h"
#include "loop/feedback.h"
#include "loop/run_int.h"
#include "loop/score.h"
#include "prompt/template.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/log.h"

struct sample {
  int done;      /* judged or failed */
  int ok;        /* judged: score valid */
  double score;
  char *answer;  /* solver reply (owned) */
  char *error;   /* why the sample has no score (owned) */
};

struct episode {
  struct run *run;
  const struct recipe *rc;
  const struct src_doc *doc;
  int round;                 /* 1-based */
  int accepted;              /* examples accepted so far */
  json_t *history;           /* array of round summaries (feedback material) */
  uint64_t *seen;            /* normalised-question hashes of this source */
  size_t n_seen, cap_seen;

  /* the current round */
  char *instructions;        /* orchestrator output, NULL when none */
  char *orch_error;
  json_t *chal_messages;     /* challenger request messages (for the repair turn) */
  char *chal_raw;            /* the challenger's last reply */
  int repaired;
  struct cand cand;
  int have_cand;
  struct score_qv qv;
  int have_qv;
  int pending;               /* samples of the current solver phase still open */
  struct sample weak[EP_MAX_SAMPLES], strong[EP_MAX_SAMPLES];
  int n_weak, n_strong;      /* samples requested */
  struct ep_stats stats;
};

/* ---- small helpers -------------------------------------------------------- */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static int is_verifiable(const struct episode *ep) { return ep->rc->task == RECIPE_TASK_VERIFIABLE; }

static enum cand_task cand_task_of(const struct episode *ep) {
  return is_verifiable(ep) ? CAND_TASK_VERIFIABLE : CAND_TASK_RUBRIC;
}

static void sample_reset(struct sample *s) {
  free(s->answer);
  free(s->error);
  memset(s, 0, sizeof *s);
}

static void round_reset(struct episode *ep) {
  free(ep->instructions);
  ep->instructions = NULL;
  free(ep->orch_error);
  ep->orch_error = NULL;
  json_decref(ep->chal_messages);
  ep->chal_messages = NULL;
  free(ep->chal_raw);
  ep->chal_raw = NULL;
  ep->repaired = 0;
  if (ep->have_cand) cand_free(&ep->cand);
  memset(&ep->cand, 0, sizeof ep->cand);
  ep->have_cand = 0;
  memset(&ep->qv, 0, sizeof ep->qv);
  ep->have_qv = 0;
  ep->pending = 0;
  for (int i = 0; i < EP_MAX_SAMPLES; i++) {
    sample_reset(&ep->weak[i]);
    sample_reset(&ep->strong[i]);
  }
  ep->n_weak = ep->n_strong = 0;
  memset(&ep->stats, 0, sizeof ep->stats);
}

static void seen_add(struct episode *ep, uint64_t h) {
  for (size_t i = 0; i < ep->n_seen; i++)
    if (ep->seen[i] == h) return;
  if (ep->n_seen == ep->cap_seen) {
    size_t cap = ep->cap_seen ? ep->cap_seen * 2 : 8;
    uint64_t *p = realloc(ep->seen, cap * sizeof *p);
    if (!p) return; /* dedup is best effort under memory pressure */
    ep->seen = p;
    ep->cap_seen = cap;
  }
  ep->seen[ep->n_seen++] = h;
}

/* Variables every prompt may use. New reference. */
static json_t *base_vars(const struct episode *ep) {
  const struct recipe *rc = ep->rc;
  return json_pack("{s:s, s:s, s:s, s:i, s:s, s:b, s:i, s:i, s:i}", "source_title",
                   ep->doc->title ? ep->doc->title : "", "source_text", ep->doc->text, "goal",
                   rc->goal ? rc->goal : "", "round", ep->round, "task", recipe_task_name(rc->task),
                   "verifiable", is_verifiable(ep), "max_weight", rc->checks.max_weight,
                   "rubric_min", rc->checks.rubric_min, "rubric_max", rc->checks.rubric_max);
}

/* Render a role's prompt with vars and build its request body (taken by the
 * caller). Returns NULL with a message in err on a template error. */
static json_t *build_request(struct episode *ep, enum recipe_role_id role, const char *label,
                             int sample, const json_t *vars, json_t **messages_out, char *err,
                             size_t errlen) {
  const struct recipe *rc = ep->rc;
  const struct recipe_role *ro = &rc->roles[role];
  json_t *messages = NULL;
  const tpl *sys = ro->system_prompt.tpl.user; /* NULL unless a system_prompt file is set */
  if (tpl_prompt_render(&ro->prompt.tpl, sys, vars, 0, &messages, err, errlen)) return NULL;
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = ro->temperature;
  p.top_p = ro->top_p;
  p.max_tokens = ro->max_tokens;
  p.has_seed = 1;
  p.seed = run_seed(ep->run, ep->doc->id, ep->round, label, sample);
  p.extra = ro->extra;
  json_t *rf = NULL;
  const struct recipe_endpoint *e = &rc->endpoints[ro->endpoint_index];
  if ((role == RECIPE_ROLE_CHALLENGER) && e->json_schema) rf = cand_response_format(cand_task_of(ep));
  p.response_format = rf;
  json_t *body = llm_request_build(ro->model, messages, &p);
  json_decref(rf);
  /* The endpoint's extra body goes into the request here (the client would
   * merge it anyway) so that the cache key covers it. */
  if (body && e->extra_body) json_object_update_missing(body, e->extra_body);
  if (!body) snprintf(err, errlen, "could not build the %s request", label);
  if (messages_out && body)
    *messages_out = messages;
  else
    json_decref(messages);
  return body;
}

static json_t *stats_json(const struct ep_stats *s) {
  json_t *o = json_object();
  json_object_set_new(o, "n_weak", json_integer(s->n_weak));
  json_object_set_new(o, "n_strong", json_integer(s->n_strong));
  json_object_set_new(o, "strong_ran", json_boolean(s->strong_ran));
#define NUM(f) json_object_set_new(o, #f, json_real(isfinite(s->f) ? round(s->f * 1e6) / 1e6 : 0.0))
  NUM(weak_mean); NUM(weak_std); NUM(weak_min); NUM(weak_max);
  NUM(strong_mean); NUM(strong_std); NUM(strong_min); NUM(strong_max); NUM(gap);
#undef NUM
  json_object_set_new(o, "weak_correct", json_integer(s->weak_correct));
  json_object_set_new(o, "strong_correct", json_integer(s->strong_correct));
  return o;
}

static json_t *scores_json(const double *x, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_real(round(x[i] * 1e6) / 1e6));
  return a;
}

static double r6(double x) { return isfinite(x) ? round(x * 1e6) / 1e6 : 0.0; }

/* ---- phases ----------------------------------------------------------------- */

static void round_begin(struct episode *ep);
static void challenge(struct episode *ep);
static void quality(struct episode *ep);
static void solvers(struct episode *ep, enum recipe_role_id role);
static void round_end(struct episode *ep, const char *reason, const char *detail);

/* The run is stopping (budget, signal): leave the source in progress. */
static void park(struct episode *ep) { run_episode_ended(ep->run, ep, 0, 0); }

/* fb_round views over the history array (borrowed strings). */
static struct fb_round *history_view(const struct episode *ep, int *n) {
  size_t len = json_array_size(ep->history);
  *n = (int)len;
  if (!len) return NULL;
  struct fb_round *r = calloc(len, sizeof *r);
  if (!r) {
    *n = 0;
    return NULL;
  }
  for (size_t i = 0; i < len; i++) {
    const json_t *h = json_array_get(ep->history, i);
    r[i].round = (int)jx_int(h, "round", 0);
    r[i].question_type = jx_str(h, "question_type");
    r[i].question = jx_str(h, "question");
    r[i].verdict = jx_str(h, "reason");
    r[i].weak_mean = jx_num(h, "weak_mean", 0);
    r[i].strong_mean = jx_num(h, "strong_mean", 0);
    r[i].gap = jx_num(h, "gap", 0);
    r[i].strong_ran = json_is_true(json_object_get(h, "strong_ran"));
    r[i].qv_reason = jx_str(h, "reason");
    r[i].qv_message = jx_str(h, "detail");
    r[i].weak_excerpt = jx_str(h, "weak_excerpt");
  }
  return r;
}

static void on_orchestrator(struct episode *ep, int sample, const struct call_out *out) {
  (void)sample;
  if (out->budget_stop) { park(ep); return; }
  if (out->ok) {
    size_t n = 0;
    const char *t = extract_skip_think(out->content, strlen(out->content), &n);
    ep->instructions = strndup(t, n);
  } else {
    /* The round goes on from the template's feedback alone. */
    ep->orch_error = xstrdup(out->error);
  }
  challenge(ep);
}

static void round_begin(struct episode *ep) {
  round_reset(ep);
  if (!ep->rc->roles[RECIPE_ROLE_ORCHESTRATOR].present || ep->round == 1) {
    challenge(ep);
    return;
  }
  char err[512];
  json_t *vars = base_vars(ep);
  struct buf hist = BUF_INIT;
  int n;
  struct fb_round *view = history_view(ep, &n);
  if (fb_history(&hist, view, n)) buf_reset(&hist);
  free(view);
  json_object_set_new(vars, "history", json_string(buf_str(&hist)));
  buf_free(&hist);
  json_t *body = build_request(ep, RECIPE_ROLE_ORCHESTRATOR, "orchestrator", 0, vars, NULL, err,
                               sizeof err);
  json_decref(vars);
  if (!body) { round_end(ep, "error:orchestrator", err); return; }
  if (run_call(ep->run, ep, RECIPE_ROLE_ORCHESTRATOR, "orchestrator", 0, body, on_orchestrator))
    park(ep);
}

static void on_challenger(struct episode *ep, int sample, const struct call_out *out);

static void challenge(struct episode *ep) {
  char err[512];
  json_t *vars = base_vars(ep);
  struct buf fb = BUF_INIT;
  int n;
  struct fb_round *view = history_view(ep, &n);
  if (fb_compose(&fb, view, n, NULL)) buf_reset(&fb);
  free(view);
  json_object_set_new(vars, "feedback", json_string(buf_str(&fb)));
  json_object_set_new(vars, "instructions", json_string(ep->instructions ? ep->instructions : ""));
  buf_free(&fb);
  json_t *body = build_request(ep, RECIPE_ROLE_CHALLENGER, "challenger", 0, vars,
                               &ep->chal_messages, err, sizeof err);
  json_decref(vars);
  if (!body) { round_end(ep, "error:challenger", err); return; }
  if (run_call(ep->run, ep, RECIPE_ROLE_CHALLENGER, "challenger", 0, body, on_challenger))
    park(ep);
}

/* The repair turn: the same conversation, the model's reply, and its parse error. */
static void repair(struct episode *ep, const char *problem) {
  json_t *messages = json_deep_copy(ep->chal_messages);
  json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "assistant", "content",
                                            ep->chal_raw ? ep->chal_raw : ""));
  char msg[1024];
  snprintf(msg, sizeof msg,
           "Your reply could not be used: %s\nReply again with only the corrected JSON object, "
           "with the same content and nothing before or after it.",
           problem);
  json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "user", "content", msg));
  const struct recipe_role *ro = &ep->rc->roles[RECIPE_ROLE_CHALLENGER];
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = ro->temperature;
  p.top_p = ro->top_p;
  p.max_tokens = ro->max_tokens;
  p.has_seed = 1;
  p.seed = run_seed(ep->run, ep->doc->id, ep->round, "challenger_repair", 0);
  p.extra = ro->extra;
  json_t *body = llm_request_build(ro->model, messages, &p);
  json_decref(messages);
  const struct recipe_endpoint *e = &ep->rc->endpoints[ro->endpoint_index];
  if (body && e->extra_body) json_object_update_missing(body, e->extra_body);
  ep->repaired = 1;
  if (!body) { round_end(ep, "parse_error", problem); return; }
  if (run_call(ep->run, ep, RECIPE_ROLE_CHALLENGER, "challenger_repair", 0, body, on_challenger))
    park(ep);
}

static void on_challenger(struct episode *ep, int sample, const struct call_out *out) {
  (void)sample;
  if (out->budget_stop) { park(ep); return; }
  if (!out->ok) { round_end(ep, "error:challenger", out->error); return; }
  free(ep->chal_raw);
  ep->chal_raw = xstrdup(out->content);
  if (ep->have_cand) cand_free(&ep->cand);
  ep->have_cand = 0;
  struct cand_seen seen = {ep->seen, ep->n_seen};
  struct cand_issue issue;
  memset(&issue, 0, sizeof issue);
  int rc = cand_parse(out->content, strlen(out->content), cand_task_of(ep), &ep->run->checks,
                      ep->rc->checks.dedup ? &seen : NULL, &ep->cand, &issue);
  if (rc == 0 || issue.kind == CAND_CHECK) ep->have_cand = 1;
  if (ep->have_cand) seen_add(ep, ep->cand.question_hash);
  if (rc == 0) { quality(ep); return; }
  if (issue.kind == CAND_CHECK) { round_end(ep, issue.reason, issue.message); return; }
  if (!ep->repaired) { repair(ep, issue.message); return; }
  round_end(ep, "parse_error", issue.message);
}

static void on_quality(struct episode *ep, int sample, const struct call_out *out) {
  (void)sample;
  if (out->budget_stop) { park(ep); return; }
  if (!out->ok) { round_end(ep, "error:quality", out->error); return; }
  char err[512];
  if (score_parse_qv(out->content, strlen(out->content), &ep->qv, err, sizeof err))
    { round_end(ep, "error:quality_reply", err); return; }
  ep->have_qv = 1;
  if (!ep->qv.pass) {
    char reason[64];
    score_qv_reason(&ep->qv, reason, sizeof reason);
    { round_end(ep, reason, ep->qv.feedback); return; }
  }
  solvers(ep, RECIPE_ROLE_WEAK);
}

static void quality(struct episode *ep) {
  if (!ep->rc->roles[RECIPE_ROLE_QUALITY].present) { solvers(ep, RECIPE_ROLE_WEAK); return; }
  char err[512];
  json_t *vars = base_vars(ep);
  json_t *cj = cand_to_json(&ep->cand);
  char *cs = json_dumps(cj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(cj);
  json_object_set_new(vars, "candidate_json", json_string(cs ? cs : "{}"));
  free(cs);
  json_t *body = build_request(ep, RECIPE_ROLE_QUALITY, "quality", 0, vars, NULL, err, sizeof err);
  json_decref(vars);
  if (!body) { round_end(ep, "error:quality", err); return; }
  if (run_call(ep->run, ep, RECIPE_ROLE_QUALITY, "quality", 0, body, on_quality)) park(ep);
}

/* ---- solvers and judging ------------------------------------------------------ */

static void phase_done(struct episode *ep, enum recipe_role_id role);

static struct sample *sample_of(struct episode *ep, enum recipe_role_id role, int i) {
  return role == RECIPE_ROLE_WEAK ? &ep->weak[i] : &ep->strong[i];
}

static void sample_finish(struct episode *ep, enum recipe_role_id role, int i, int ok,
                          double score, const char *error) {
  struct sample *s = sample_of(ep, role, i);
  if (s->done) return;
  s->done = 1;
  s->ok = ok;
  s->score = score;
  if (!ok) s->error = xstrdup(error ? error : "failed");
  if (--ep->pending == 0) phase_done(ep, role);
}

static void on_judge(struct episode *ep, enum recipe_role_id role, int i,
                     const struct call_out *out) {
  if (out->budget_stop) {
    sample_of(ep, role, i)->done = 1;
    if (--ep->pending == 0) park(ep);
    return;
  }
  if (!out->ok) { sample_finish(ep, role, i, 0, 0, out->error); return; }
  char err[512];
  size_t len = strlen(out->content);
  if (is_verifiable(ep)) {
    int correct = 0;
    if (score_parse_correct(out->content, len, &correct, err, sizeof err))
      { sample_finish(ep, role, i, 0, 0, err); return; }
    { sample_finish(ep, role, i, 1, correct ? 1.0 : 0.0, NULL); return; }
  }
  int n = ep->cand.n_rubric;
  int *met = calloc((size_t)n + 1, sizeof *met);
  int *w = calloc((size_t)n + 1, sizeof *w);
  if (!met || !w) {
    free(met);
    free(w);
    { sample_finish(ep, role, i, 0, 0, "out of memory"); return; }
  }
  for (int k = 0; k < n; k++) w[k] = ep->cand.rubric[k].weight;
  int got = score_parse_verdicts(out->content, len, n, met, err, sizeof err);
  if (got < 0)
    sample_finish(ep, role, i, 0, 0, err);
  else
    sample_finish(ep, role, i, 1, score_rubric(w, met, n), NULL);
  free(met);
  free(w);
}

static void on_judge_weak(struct episode *ep, int i, const struct call_out *o) {
  on_judge(ep, RECIPE_ROLE_WEAK, i, o);
}
static void on_judge_strong(struct episode *ep, int i, const struct call_out *o) {
  on_judge(ep, RECIPE_ROLE_STRONG, i, o);
}

/* Judge one answer: a judge call (rubric, or the LLM matcher), or locally. */
static void judge(struct episode *ep, enum recipe_role_id role, int i) {
  struct sample *s = sample_of(ep, role, i);
  const struct recipe *rc = ep->rc;
  if (is_verifiable(ep) && rc->checks.verifiable_matcher != RECIPE_MATCH_LLM) {
    char *ans = score_final_answer(s->answer, strlen(s->answer));
    enum score_matcher m;
    double dummy;
    switch (rc->checks.verifiable_matcher) {
    case RECIPE_MATCH_EXACT: m = SCORE_EXACT; break;
    case RECIPE_MATCH_NORMALISED: m = SCORE_NORMALISED; break;
    case RECIPE_MATCH_NUMERIC: m = SCORE_NUMERIC; break;
    default:
      m = score_parse_number(ep->cand.reference_answer, &dummy) == 0 ? SCORE_NUMERIC
                                                                     : SCORE_NORMALISED;
    }
    int match = ans ? score_match(m, ans, ep->cand.reference_answer) : 0;
    free(ans);
    { sample_finish(ep, role, i, 1, match ? 1.0 : 0.0, NULL); return; }
  }
  char err[512];
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "question", json_string(ep->cand.question));
  json_object_set_new(vars, "response", jx_string_lossy(s->answer, strlen(s->answer)));
  json_object_set_new(vars, "reference_answer", json_string(ep->cand.reference_answer));
  json_object_set_new(vars, "rubric", cand_rubric_vars(&ep->cand));
  const char *label = role == RECIPE_ROLE_WEAK ? "judge_weak" : "judge_strong";
  json_t *body = build_request(ep, RECIPE_ROLE_JUDGE, label, i, vars, NULL, err, sizeof err);
  json_decref(vars);
  if (!body) { sample_finish(ep, role, i, 0, 0, err); return; }
  if (run_call(ep->run, ep, RECIPE_ROLE_JUDGE, label, i, body,
               role == RECIPE_ROLE_WEAK ? on_judge_weak : on_judge_strong)) {
    s->done = 1;
    if (--ep->pending == 0) park(ep);
  }
}

static void on_solver(struct episode *ep, enum recipe_role_id role, int i,
                      const struct call_out *out) {
  if (out->budget_stop) {
    sample_of(ep, role, i)->done = 1;
    if (--ep->pending == 0) park(ep);
    return;
  }
  if (!out->ok) { sample_finish(ep, role, i, 0, 0, out->error); return; }
  sample_of(ep, role, i)->answer = xstrdup(out->content);
  judge(ep, role, i);
}

static void on_weak(struct episode *ep, int i, const struct call_out *o) {
  on_solver(ep, RECIPE_ROLE_WEAK, i, o);
}
static void on_strong(struct episode *ep, int i, const struct call_out *o) {
  on_solver(ep, RECIPE_ROLE_STRONG, i, o);
}

static void solvers(struct episode *ep, enum recipe_role_id role) {
  const struct recipe_role *ro = &ep->rc->roles[role];
  int n = ro->samples < 1 ? 1 : (ro->samples > EP_MAX_SAMPLES ? EP_MAX_SAMPLES : ro->samples);
  const char *label = role == RECIPE_ROLE_WEAK ? "weak" : "strong";
  if (role == RECIPE_ROLE_WEAK)
    ep->n_weak = n;
  else
    ep->n_strong = n;
  ep->pending = n;
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "context", json_string(ep->cand.context ? ep->cand.context : ""));
  json_object_set_new(vars, "question", json_string(ep->cand.question));
  /* Submit all samples first, counting failures to start; a failure to start
   * means the run is stopping. */
  int refused = 0;
  for (int i = 0; i < n; i++) {
    char err[512];
    json_t *body = build_request(ep, role, label, i, vars, NULL, err, sizeof err);
    if (!body) {
      /* A template error is the same for every sample: fail them all. */
      json_decref(vars);
      for (int k = i; k < n; k++) sample_of(ep, role, k)->done = 1;
      ep->pending -= n - i;
      if (ep->pending == 0) round_end(ep, role == RECIPE_ROLE_WEAK ? "error:weak" : "error:strong", err);
      return;
    }
    if (run_call(ep->run, ep, role, label, i, body,
                 role == RECIPE_ROLE_WEAK ? on_weak : on_strong)) {
      sample_of(ep, role, i)->done = 1;
      refused++;
    }
  }
  json_decref(vars);
  if (refused) {
    ep->pending -= refused;
    if (ep->pending == 0) park(ep);
  }
}

/* Fill stats from the judged samples of the phases run so far. */
static void fill_stats(struct episode *ep) {
  struct ep_stats *s = &ep->stats;
  s->n_weak = s->n_strong = 0;
  for (int i = 0; i < ep->n_weak; i++)
    if (ep->weak[i].ok) s->weak[s->n_weak++] = ep->weak[i].score;
  for (int i = 0; i < ep->n_strong; i++)
    if (ep->strong[i].ok) s->strong[s->n_strong++] = ep->strong[i].score;
  s->strong_ran = ep->n_strong > 0;
  ep_stats_compute(s, ep->rc->accept.pass_threshold);
}

static const char *first_error(const struct sample *s, int n) {
  for (int i = 0; i < n; i++)
    if (s[i].error) return s[i].error;
  return "no answer";
}

static void phase_done(struct episode *ep, enum recipe_role_id role) {
  /* A parked sample (run stopping) leaves done=1, ok=0, error=NULL. */
  struct sample *ss = role == RECIPE_ROLE_WEAK ? ep->weak : ep->strong;
  int n = role == RECIPE_ROLE_WEAK ? ep->n_weak : ep->n_strong;
  for (int i = 0; i < n; i++)
    if (ss[i].done && !ss[i].ok && !ss[i].error) { park(ep); return; }
  fill_stats(ep);
  char failed[128];
  if (role == RECIPE_ROLE_WEAK) {
    if (ep->stats.n_weak == 0) {
      char d[600];
      snprintf(d, sizeof d, "no weak answer could be judged: %s", first_error(ep->weak, ep->n_weak));
      { round_end(ep, "error:weak", d); return; }
    }
    if (ep->rc->accept.short_circuit &&
        !accept_check_group(&ep->rc->accept, ACC_WEAK, &ep->stats, failed, sizeof failed)) {
      const char *reason = accept_evaluate(&ep->rc->accept, &ep->stats, failed, sizeof failed);
      char d[200];
      snprintf(d, sizeof d, "weak gate failed: %s", failed);
      { round_end(ep, reason ? reason : "too_easy", d); return; }
    }
    { solvers(ep, RECIPE_ROLE_STRONG); return; }
  }
  if (ep->stats.n_strong == 0) {
    char d[600];
    snprintf(d, sizeof d, "no strong answer could be judged: %s",
             first_error(ep->strong, ep->n_strong));
    { round_end(ep, "error:strong", d); return; }
  }
  const char *reason = accept_evaluate(&ep->rc->accept, &ep->stats, failed, sizeof failed);
  if (!reason) { round_end(ep, NULL, NULL); return; }
  char d[200];
  snprintf(d, sizeof d, "bound failed: %s", failed);
  round_end(ep, reason, d);
}

/* ---- the end of a round ------------------------------------------------------ */

static json_t *candidate_record(struct episode *ep, const char *reason, const char *detail) {
  json_t *rec = json_object();
  json_object_set_new(rec, "source_id", json_string(ep->doc->id));
  json_object_set_new(rec, "round", json_integer(ep->round));
  json_object_set_new(rec, "index", json_integer(0));
  json_object_set_new(rec, "instructions", ep->instructions ? json_string(ep->instructions) : json_null());
  if (ep->orch_error) json_object_set_new(rec, "orchestrator_error", json_string(ep->orch_error));
  if (ep->have_cand)
    json_object_set_new(rec, "candidate", cand_to_json(&ep->cand));
  else
    json_object_set_new(rec, "candidate", json_null());
  if (!ep->have_cand && ep->chal_raw)
    json_object_set_new(rec, "raw", jx_string_lossy(ep->chal_raw, strlen(ep->chal_raw)));
  json_object_set_new(rec, "repaired", json_boolean(ep->repaired));
  json_object_set_new(rec, "verdict", json_string(reason ? "rejected" : "accepted"));
  json_object_set_new(rec, "reason", reason ? json_string(reason) : json_null());
  json_object_set_new(rec, "detail", detail ? jx_string_lossy(detail, strlen(detail)) : json_null());
  if (ep->have_qv) {
    json_t *issues = json_array();
    for (int i = 0; i < ep->qv.n_issues; i++) json_array_append_new(issues, json_string(ep->qv.issues[i]));
    json_object_set_new(rec, "quality", json_pack("{s:b,s:o,s:s}", "pass", ep->qv.pass, "issues",
                                                  issues, "feedback", ep->qv.feedback));
  } else {
    json_object_set_new(rec, "quality", json_null());
  }
  json_object_set_new(rec, "weak_scores", scores_json(ep->stats.weak, ep->stats.n_weak));
  json_object_set_new(rec, "strong_scores", scores_json(ep->stats.strong, ep->stats.n_strong));
  json_object_set_new(rec, "stats", ep->n_weak ? stats_json(&ep->stats) : json_null());
  /* Sample failures, for the record. */
  json_t *errs = json_array();
  for (int i = 0; i < ep->n_weak; i++)
    if (ep->weak[i].error) json_array_append_new(errs, json_pack("{s:s,s:i,s:s}", "role", "weak", "sample", i, "error", ep->weak[i].error));
  for (int i = 0; i < ep->n_strong; i++)
    if (ep->strong[i].error) json_array_append_new(errs, json_pack("{s:s,s:i,s:s}", "role", "strong", "sample", i, "error", ep->strong[i].error));
  if (json_array_size(errs))
    json_object_set_new(rec, "sample_errors", errs);
  else
    json_decref(errs);
  return rec;
}

static json_t *example_record(struct episode *ep, const char *example_id) {
  const struct cand *c = &ep->cand;
  json_t *ex = json_object();
  json_object_set_new(ex, "id", json_string(example_id));
  json_object_set_new(ex, "source_id", json_string(ep->doc->id));
  json_object_set_new(ex, "source_title", json_string(ep->doc->title ? ep->doc->title : ""));
  json_object_set_new(ex, "task", json_string(recipe_task_name(ep->rc->task)));
  json_object_set_new(ex, "question_type", json_string(c->question_type ? c->question_type : ""));
  json_object_set_new(ex, "context", json_string(c->context ? c->context : ""));
  json_object_set_new(ex, "question", json_string(c->question));
  if (is_verifiable(ep)) {
    json_object_set_new(ex, "answer", json_string(c->reference_answer));
  } else {
    json_object_set_new(ex, "reference_answer", json_string(c->reference_answer));
    json_t *rub = json_array();
    for (int i = 0; i < c->n_rubric; i++)
      json_array_append_new(rub, json_pack("{s:s,s:i}", "criterion", c->rubric[i].criterion,
                                           "weight", c->rubric[i].weight));
    json_object_set_new(ex, "rubric", rub);
  }
  json_object_set_new(ex, "weak_scores", scores_json(ep->stats.weak, ep->stats.n_weak));
  json_object_set_new(ex, "strong_scores", scores_json(ep->stats.strong, ep->stats.n_strong));
  json_object_set_new(ex, "weak_mean", json_real(r6(ep->stats.weak_mean)));
  json_object_set_new(ex, "strong_mean", json_real(r6(ep->stats.strong_mean)));
  json_object_set_new(ex, "gap", json_real(r6(ep->stats.gap)));
  json_object_set_new(ex, "weak_std", json_real(r6(ep->stats.weak_std)));
  json_object_set_new(ex, "rounds_used", json_integer(ep->round));
  json_object_set_new(ex, "prompt_hashes", json_deep_copy(ep->run->prompt_hashes));
  return ex;
}

static void round_end(struct episode *ep, const char *reason, const char *detail) {
  struct run *r = ep->run;
  const struct recipe *rc = ep->rc;
  json_t *rec = candidate_record(ep, reason, detail);
  json_t *ex = NULL;
  char example_id[300] = "";
  if (!reason) {
    ep->accepted++;
    snprintf(example_id, sizeof example_id, "%s-%d", ep->doc->id, ep->accepted);
    ex = example_record(ep, example_id);
  }
  /* Summary for the next rounds' feedback. */
  json_t *h = json_object();
  json_object_set_new(h, "round", json_integer(ep->round));
  if (ep->have_cand) {
    json_object_set_new(h, "question_type", json_string(ep->cand.question_type ? ep->cand.question_type : ""));
    json_object_set_new(h, "question", json_string(ep->cand.question));
  }
  json_object_set_new(h, "reason", json_string(reason ? reason : "accepted"));
  if (detail) json_object_set_new(h, "detail", jx_string_lossy(detail, strlen(detail)));
  json_object_set_new(h, "weak_mean", json_real(ep->stats.weak_mean));
  json_object_set_new(h, "strong_mean", json_real(ep->stats.strong_mean));
  json_object_set_new(h, "gap", json_real(ep->stats.gap));
  json_object_set_new(h, "strong_ran", json_boolean(ep->stats.strong_ran));
  for (int i = 0; i < ep->n_weak; i++)
    if (ep->weak[i].answer) {
      json_object_set_new(h, "weak_excerpt", jx_string_lossy(ep->weak[i].answer, strlen(ep->weak[i].answer) > 300 ? 300 : strlen(ep->weak[i].answer)));
      break;
    }
  json_array_append_new(ep->history, h);

  int finished = ep->accepted >= rc->budgets.examples_per_source ||
                 ep->round >= rc->budgets.rounds_per_source;
  int rc_store;
  if (finished) {
    struct store_episode_end e;
    memset(&e, 0, sizeof e);
    e.source_id = ep->doc->id;
    e.state = ep->accepted > 0 ? STORE_SRC_DONE : STORE_SRC_EXHAUSTED;
    e.rounds_used = ep->round;
    e.round = ep->round;
    e.index = 0;
    e.verdict = reason ? "rejected" : "accepted";
    e.reason = reason;
    e.cand_record = rec;
    e.example_id = ex ? example_id : NULL;
    e.example = ex;
    rc_store = store_episode_finish(r->st, r->run_id, &e);
  } else {
    rc_store = store_candidate_put(r->st, r->run_id, ep->doc->id, ep->round, 0,
                                   reason ? "rejected" : "accepted", reason, rec);
    if (!rc_store && ex) rc_store = store_example_put(r->st, r->run_id, ep->doc->id, example_id, ex);
    if (!rc_store) rc_store = store_source_set_state(r->st, r->run_id, ep->doc->id, STORE_SRC_IN_PROGRESS, ep->round);
  }
  json_decref(rec);
  json_decref(ex);
  if (reason)
    r->sum->rejected_candidates++;
  else
    r->sum->accepted++;
  if (rc_store) {
    run_store_failed(r, "recording a round");
    { park(ep); return; }
  }
  if (finished) {
    run_episode_ended(r, ep, 1, ep->accepted);
    return;
  }
  if (r->stopping) { park(ep); return; }
  ep->round++;
  round_begin(ep);
}

/* ---- life cycle --------------------------------------------------------------- */

struct episode *ep_new(struct run *r, const struct src_doc *doc) {
  struct episode *ep = calloc(1, sizeof *ep);
  if (!ep) return NULL;
  ep->run = r;
  ep->rc = r->rc;
  ep->doc = doc;
  ep->round = 1;
  ep->history = json_array();
  return ep;
}

void ep_start(struct episode *ep) { round_begin(ep); }

void ep_free(struct episode *ep) {
  if (!ep) return;
  round_reset(ep);
  json_decref(ep->history);
  free(ep->seen);
  free(ep);
}

const char *ep_source_id(const struct episode *ep) { return ep->doc->id; }
int ep_round(const struct episode *ep) { return ep->round; }
