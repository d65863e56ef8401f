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
 * the next round's feedback block. A malformed reply, or a call the server
 * refused for its content (400/413/422), ends that candidate with a recorded
 * reason ("error:<role>", "parse_error", ...), never the run; a call that failed
 * for infrastructure reasons sets the episode aside unfinished (run.c), so no
 * source is written off because a server was down. The episode ends when it has examples_per_source accepted
 * examples (source "done") or its rounds are spent ("exhausted"); that end is
 * written in one store transaction with the final candidate and example.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loop/baseline.h"
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

  /* baselines (one-shot methods, see baseline.h) */
  int baseline;              /* 1: no orchestrator, no feedback, no short-circuit, 1 round */
  char *pre_reason, *pre_detail;       /* first check / quality failure (gate and filter) */
  char *filter_reason, *filter_detail; /* the CoT filter's failure */
  json_t *filter_info;       /* the CoT filter's record, NULL for self-instruct */
  int passed_filter;         /* the example is kept in the dataset */
  struct sample filt[EP_MAX_SAMPLES];
  int n_filt;
};

/* ---- small helpers -------------------------------------------------------- */

static char *xstrdup(const char *s) { return s ? strdup(s) : NULL; }

static void set_str(char **dst, const char *s) {
  free(*dst);
  *dst = xstrdup(s);
}

/* A solver phase: weak, strong, or the CoT-Self-Instruct filter's samples (drawn
 * from the strong solver's role under their own labels and seeds). */
enum ph { PH_WEAK = 0, PH_STRONG, PH_FILTER };

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
  for (int i = 0; i < EP_MAX_SAMPLES; i++) sample_reset(&ep->filt[i]);
  ep->n_filt = 0;
  free(ep->pre_reason);
  free(ep->pre_detail);
  free(ep->filter_reason);
  free(ep->filter_detail);
  ep->pre_reason = ep->pre_detail = ep->filter_reason = ep->filter_detail = NULL;
  json_decref(ep->filter_info);
  ep->filter_info = NULL;
  ep->passed_filter = 0;
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
  const struct tpl_prompt *pt = &ro->prompt.tpl;
  int bl_chal = ep->baseline && role == RECIPE_ROLE_CHALLENGER;
  if (bl_chal) {
    /* Baselines use their method's own challenger prompt (run.c loads it). */
    pt = &ep->run->bl_prompt;
    sys = NULL;
  }
  if (tpl_prompt_render(pt, sys, vars, 0, &messages, err, errlen)) return NULL;
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
  /* CoT-Self-Instruct reasons before its JSON: no response_format for it. */
  if ((role == RECIPE_ROLE_CHALLENGER) && e->json_schema && run_schema_ok(ep->run, ro->endpoint) &&
      !(bl_chal && ep->run->method == BL_COT_SELF_INSTRUCT))
    rf = cand_response_format(cand_task_of(ep));
  p.response_format = rf;
  json_t *body = llm_request_build(ro->model, messages, &p);
  json_decref(rf);
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
static void solvers(struct episode *ep, enum ph p);
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
  if (issue.kind == CAND_CHECK && ep->baseline) {
    /* Baselines evaluate every parsed candidate; the failed check is the
     * candidate's gate and filter verdict. */
    set_str(&ep->pre_reason, issue.reason);
    set_str(&ep->pre_detail, issue.message);
    quality(ep);
    return;
  }
  if (issue.kind == CAND_CHECK) { round_end(ep, issue.reason, issue.message); return; }
  if (!ep->repaired) { repair(ep, issue.message); return; }
  round_end(ep, "parse_error", issue.message);
}

static void on_quality(struct episode *ep, int sample, const struct call_out *out) {
  (void)sample;
  if (out->budget_stop) { park(ep); return; }
  char err[512];
  if (ep->baseline) {
    /* Recorded, never a stop: the candidate is evaluated anyway. */
    if (!out->ok) {
      if (!ep->pre_reason) { set_str(&ep->pre_reason, "error:quality"); set_str(&ep->pre_detail, out->error); }
    } else if (score_parse_qv(out->content, strlen(out->content), &ep->qv, err, sizeof err)) {
      if (!ep->pre_reason) { set_str(&ep->pre_reason, "error:quality_reply"); set_str(&ep->pre_detail, err); }
    } else {
      ep->have_qv = 1;
      if (!ep->qv.pass && !ep->pre_reason) {
        char reason[64];
        score_qv_reason(&ep->qv, reason, sizeof reason);
        set_str(&ep->pre_reason, reason);
        set_str(&ep->pre_detail, ep->qv.feedback);
      }
    }
    solvers(ep, PH_WEAK);
    return;
  }
  if (!out->ok) { round_end(ep, "error:quality", out->error); return; }
  if (score_parse_qv(out->content, strlen(out->content), &ep->qv, err, sizeof err))
    { round_end(ep, "error:quality_reply", err); return; }
  ep->have_qv = 1;
  if (!ep->qv.pass) {
    char reason[64];
    score_qv_reason(&ep->qv, reason, sizeof reason);
    { round_end(ep, reason, ep->qv.feedback); return; }
  }
  solvers(ep, PH_WEAK);
}

static void quality(struct episode *ep) {
  if (!ep->rc->roles[RECIPE_ROLE_QUALITY].present) { solvers(ep, PH_WEAK); return; }
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

static enum recipe_role_id ph_role(enum ph p) {
  return p == PH_WEAK ? RECIPE_ROLE_WEAK : RECIPE_ROLE_STRONG;
}
static const char *ph_label(enum ph p) {
  return p == PH_WEAK ? "weak" : p == PH_STRONG ? "strong" : "filter";
}
static const char *ph_judge_label(enum ph p) {
  return p == PH_WEAK ? "judge_weak" : p == PH_STRONG ? "judge_strong" : "judge_filter";
}
static const char *ph_error(enum ph p) {
  return p == PH_WEAK ? "error:weak" : p == PH_STRONG ? "error:strong" : "error:filter";
}

static void phase_done(struct episode *ep, enum ph p);

static struct sample *sample_of(struct episode *ep, enum ph p, int i) {
  return p == PH_WEAK ? &ep->weak[i] : p == PH_STRONG ? &ep->strong[i] : &ep->filt[i];
}

static void sample_finish(struct episode *ep, enum ph p, int i, int ok, double score,
                          const char *error) {
  struct sample *s = sample_of(ep, p, i);
  if (s->done) return;
  s->done = 1;
  s->ok = ok;
  s->score = score;
  if (!ok) s->error = xstrdup(error ? error : "failed");
  if (--ep->pending == 0) phase_done(ep, p);
}

/* A sample whose next call was not made (the run is stopping, or the call failed
 * for infrastructure reasons): done without a score or an error, which
 * phase_done reads as "set the episode aside". */
static void sample_set_aside(struct episode *ep, enum ph p, int i) {
  sample_of(ep, p, i)->done = 1;
  if (--ep->pending == 0) park(ep);
}

static void on_judge(struct episode *ep, enum ph p, int i, const struct call_out *out) {
  if (out->budget_stop) { sample_set_aside(ep, p, i); return; }
  if (!out->ok) { sample_finish(ep, p, i, 0, 0, out->error); return; }
  char err[512];
  size_t len = strlen(out->content);
  if (is_verifiable(ep)) {
    int correct = 0;
    if (score_parse_correct(out->content, len, &correct, err, sizeof err))
      { sample_finish(ep, p, i, 0, 0, err); return; }
    { sample_finish(ep, p, i, 1, correct ? 1.0 : 0.0, NULL); return; }
  }
  int n = ep->cand.n_rubric;
  int *met = calloc((size_t)n + 1, sizeof *met);
  int *w = calloc((size_t)n + 1, sizeof *w);
  if (!met || !w) {
    free(met);
    free(w);
    { sample_finish(ep, p, i, 0, 0, "out of memory"); return; }
  }
  for (int k = 0; k < n; k++) w[k] = ep->cand.rubric[k].weight;
  int got = score_parse_verdicts(out->content, len, n, met, err, sizeof err);
  if (got < 0)
    sample_finish(ep, p, i, 0, 0, err);
  else
    sample_finish(ep, p, i, 1, score_rubric(w, met, n), NULL);
  free(met);
  free(w);
}

static void on_judge_weak(struct episode *ep, int i, const struct call_out *o) {
  on_judge(ep, PH_WEAK, i, o);
}
static void on_judge_strong(struct episode *ep, int i, const struct call_out *o) {
  on_judge(ep, PH_STRONG, i, o);
}
static void on_judge_filter(struct episode *ep, int i, const struct call_out *o) {
  on_judge(ep, PH_FILTER, i, o);
}

/* Judge one answer: a judge call (rubric, or the LLM matcher), or locally.
 * Answer-Consistency samples (filter phase, verifiable tasks) are matched
 * locally whatever the matcher: the filter groups extracted answers itself. */
static void judge(struct episode *ep, enum ph p, int i) {
  struct sample *s = sample_of(ep, p, i);
  const struct recipe *rc = ep->rc;
  if (is_verifiable(ep) &&
      (rc->checks.verifiable_matcher != RECIPE_MATCH_LLM || p == PH_FILTER)) {
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
    { sample_finish(ep, p, i, 1, match ? 1.0 : 0.0, NULL); return; }
  }
  char err[512];
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "question", json_string(ep->cand.question));
  json_object_set_new(vars, "response", jx_string_lossy(s->answer, strlen(s->answer)));
  json_object_set_new(vars, "reference_answer", json_string(ep->cand.reference_answer));
  json_object_set_new(vars, "rubric", cand_rubric_vars(&ep->cand));
  const char *label = ph_judge_label(p);
  json_t *body = build_request(ep, RECIPE_ROLE_JUDGE, label, i, vars, NULL, err, sizeof err);
  json_decref(vars);
  if (!body) { sample_finish(ep, p, i, 0, 0, err); return; }
  if (run_call(ep->run, ep, RECIPE_ROLE_JUDGE, label, i, body,
               p == PH_WEAK ? on_judge_weak : p == PH_STRONG ? on_judge_strong : on_judge_filter))
    sample_set_aside(ep, p, i);
}

static void on_solver(struct episode *ep, enum ph p, int i, const struct call_out *out) {
  if (out->budget_stop) { sample_set_aside(ep, p, i); return; }
  if (!out->ok) { sample_finish(ep, p, i, 0, 0, out->error); return; }
  sample_of(ep, p, i)->answer = xstrdup(out->content);
  judge(ep, p, i);
}

static void on_weak(struct episode *ep, int i, const struct call_out *o) {
  on_solver(ep, PH_WEAK, i, o);
}
static void on_strong(struct episode *ep, int i, const struct call_out *o) {
  on_solver(ep, PH_STRONG, i, o);
}
static void on_filter(struct episode *ep, int i, const struct call_out *o) {
  on_solver(ep, PH_FILTER, i, o);
}

static int *ph_count(struct episode *ep, enum ph p) {
  return p == PH_WEAK ? &ep->n_weak : p == PH_STRONG ? &ep->n_strong : &ep->n_filt;
}

static void solvers(struct episode *ep, enum ph p) {
  enum recipe_role_id role = ph_role(p);
  const struct recipe_role *ro = &ep->rc->roles[role];
  int want = p == PH_FILTER ? ep->run->bl.k : ro->samples;
  int n = want < 1 ? 1 : (want > EP_MAX_SAMPLES ? EP_MAX_SAMPLES : want);
  const char *label = ph_label(p);
  *ph_count(ep, p) = n;
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
      for (int k = i; k < n; k++) sample_of(ep, p, k)->done = 1;
      ep->pending -= n - i;
      if (ep->pending == 0) round_end(ep, ph_error(p), err);
      return;
    }
    if (run_call(ep->run, ep, role, label, i, body,
                 p == PH_WEAK ? on_weak : p == PH_STRONG ? on_strong : on_filter)) {
      sample_of(ep, p, i)->done = 1;
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

/* ---- baselines: the filter and the decision ---------------------------------- */

/* The CoT-Self-Instruct filter over the filter samples: RIP (rubric) or
 * Answer-Consistency (verifiable). Sets filter_info and, on failure,
 * filter_reason/detail. */
static void cot_filter(struct episode *ep) {
  const struct bl_params *bp = &ep->run->bl;
  char d[600];
  json_decref(ep->filter_info);
  if (!is_verifiable(ep)) {
    double scores[EP_MAX_SAMPLES];
    int n = 0;
    json_t *sc = json_array();
    for (int i = 0; i < ep->n_filt; i++)
      if (ep->filt[i].ok) {
        scores[n++] = ep->filt[i].score;
        json_array_append_new(sc, json_real(r6(ep->filt[i].score)));
      }
    double q = 0;
    int keep = bl_rip(scores, n, bp->rip_threshold, &q);
    ep->filter_info = json_pack("{s:s,s:i,s:i,s:o,s:f,s:f,s:b}", "name", "rip", "k", bp->k,
                                "scored", n, "scores", sc, "quality", r6(q), "threshold",
                                bp->rip_threshold, "pass", keep);
    if (n == 0) {
      snprintf(d, sizeof d, "no filter answer could be judged: %s", first_error(ep->filt, ep->n_filt));
      set_str(&ep->filter_reason, "error:filter");
      set_str(&ep->filter_detail, d);
    } else if (!keep) {
      snprintf(d, sizeof d, "RIP: lowest of %d scores %.3f < threshold %.3f", n, q, bp->rip_threshold);
      set_str(&ep->filter_reason, "filter:rip");
      set_str(&ep->filter_detail, d);
    }
    return;
  }
  char *ans[EP_MAX_SAMPLES];
  json_t *aj = json_array();
  for (int i = 0; i < ep->n_filt; i++) {
    ans[i] = ep->filt[i].ok && ep->filt[i].answer
                 ? score_final_answer(ep->filt[i].answer, strlen(ep->filt[i].answer))
                 : NULL;
    json_array_append_new(aj, ans[i] ? jx_string_lossy(ans[i], strlen(ans[i])) : json_null());
  }
  struct bl_majority m;
  int keep = bl_answer_consistency((const char *const *)ans, ep->n_filt, ep->cand.reference_answer,
                                   bp->ac_min_share, &m);
  ep->filter_info = json_pack("{s:s,s:i,s:o,s:o,s:i,s:f,s:b,s:f,s:s,s:b}", "name",
                              "answer_consistency", "k", bp->k, "answers", aj, "majority",
                              m.winner >= 0 ? jx_string_lossy(ans[m.winner], strlen(ans[m.winner]))
                                            : json_null(),
                              "count", m.count, "share", r6(m.share), "tied", m.tied, "min_share",
                              bp->ac_min_share, "reference", ep->cand.reference_answer, "pass", keep);
  if (!keep) {
    if (m.winner < 0)
      snprintf(d, sizeof d, "Answer-Consistency: no majority answer (%s %d of %d)",
               m.tied ? "tie at" : "top count", m.count, ep->n_filt);
    else if (m.share + 1e-12 < bp->ac_min_share)
      snprintf(d, sizeof d, "Answer-Consistency: majority share %.2f < %.2f", m.share, bp->ac_min_share);
    else
      snprintf(d, sizeof d, "Answer-Consistency: majority answer %.60s (%d of %d) differs from the generated answer %.60s",
               ans[m.winner], m.count, ep->n_filt, ep->cand.reference_answer);
    set_str(&ep->filter_reason, "filter:answer_consistency");
    set_str(&ep->filter_detail, d);
  }
  for (int i = 0; i < ep->n_filt; i++) free(ans[i]);
}

/* A baseline candidate has been evaluated: record the gate (the recipe's
 * acceptance, the same predicate as the agentic loop, never looped on) and the
 * method's own filter (which decides what the dataset keeps). */
static void baseline_decide(struct episode *ep) {
  char failed[128], d[200];
  if (ep->run->method == BL_COT_SELF_INSTRUCT) cot_filter(ep);
  ep->passed_filter = !ep->pre_reason && !ep->filter_reason;
  if (ep->pre_reason) {
    round_end(ep, ep->pre_reason, ep->pre_detail);
    return;
  }
  const char *reason = accept_evaluate(&ep->rc->accept, &ep->stats, failed, sizeof failed);
  if (!reason) { round_end(ep, NULL, NULL); return; }
  snprintf(d, sizeof d, "bound failed: %s", failed);
  round_end(ep, reason, d);
}

static void phase_done(struct episode *ep, enum ph p) {
  /* A parked sample (run stopping) leaves done=1, ok=0, error=NULL. */
  struct sample *ss = p == PH_WEAK ? ep->weak : p == PH_STRONG ? ep->strong : ep->filt;
  int n = *ph_count(ep, p);
  for (int i = 0; i < n; i++)
    if (ss[i].done && !ss[i].ok && !ss[i].error) { park(ep); return; }
  if (p == PH_FILTER) { baseline_decide(ep); return; }
  fill_stats(ep);
  char failed[128];
  if (p == PH_WEAK) {
    if (ep->stats.n_weak == 0) {
      char d[600];
      snprintf(d, sizeof d, "no weak answer could be judged: %s", first_error(ep->weak, ep->n_weak));
      { round_end(ep, "error:weak", d); return; }
    }
    /* Baselines never short-circuit: every statistic is measured. */
    if (!ep->baseline && ep->rc->accept.short_circuit &&
        !accept_check_group(&ep->rc->accept, ACC_WEAK, &ep->stats, failed, sizeof failed)) {
      const char *reason = accept_evaluate(&ep->rc->accept, &ep->stats, failed, sizeof failed);
      char d[200];
      snprintf(d, sizeof d, "weak gate failed: %s", failed);
      { round_end(ep, reason ? reason : "too_easy", d); return; }
    }
    { solvers(ep, PH_STRONG); return; }
  }
  if (ep->stats.n_strong == 0) {
    char d[600];
    snprintf(d, sizeof d, "no strong answer could be judged: %s",
             first_error(ep->strong, ep->n_strong));
    { round_end(ep, "error:strong", d); return; }
  }
  if (ep->baseline) {
    if (ep->run->method == BL_COT_SELF_INSTRUCT)
      solvers(ep, PH_FILTER);
    else
      baseline_decide(ep);
    return;
  }
  const char *reason = accept_evaluate(&ep->rc->accept, &ep->stats, failed, sizeof failed);
  if (!reason) { round_end(ep, NULL, NULL); return; }
  char d[200];
  snprintf(d, sizeof d, "bound failed: %s", failed);
  round_end(ep, reason, d);
}

/* ---- the end of a round ------------------------------------------------------ */

/* Why a baseline candidate is not kept (NULL when it is): a failed check or
 * quality verdict, the CoT filter, or the round's own failure (errors). */
static const char *filter_reason_of(const struct episode *ep, const char *reason) {
  if (ep->passed_filter) return NULL;
  if (ep->pre_reason) return ep->pre_reason;
  if (ep->filter_reason) return ep->filter_reason;
  return reason ? reason : "not_evaluated";
}

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
  for (int i = 0; i < ep->n_filt; i++)
    if (ep->filt[i].error) json_array_append_new(errs, json_pack("{s:s,s:i,s:s}", "role", "filter", "sample", i, "error", ep->filt[i].error));
  if (json_array_size(errs))
    json_object_set_new(rec, "sample_errors", errs);
  else
    json_decref(errs);
  if (ep->baseline) {
    const char *fr = filter_reason_of(ep, reason);
    const char *fd = ep->pre_reason ? ep->pre_detail : ep->filter_reason ? ep->filter_detail : detail;
    json_object_set_new(rec, "method", json_string(bl_method_name(ep->run->method)));
    json_object_set_new(rec, "passed_gate", json_boolean(!reason));
    json_object_set_new(rec, "passed_filter", json_boolean(ep->passed_filter));
    json_object_set_new(rec, "filter_reason", fr ? json_string(fr) : json_null());
    json_object_set_new(rec, "filter_detail", fr && fd ? jx_string_lossy(fd, strlen(fd)) : json_null());
    json_object_set_new(rec, "filter", ep->filter_info ? json_deep_copy(ep->filter_info) : json_null());
  }
  return rec;
}

static json_t *example_record(struct episode *ep, const char *example_id, const char *reason) {
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
  if (ep->baseline) {
    json_object_set_new(ex, "method", json_string(bl_method_name(ep->run->method)));
    json_object_set_new(ex, "passed_filter", json_true());
    json_object_set_new(ex, "passed_gate", json_boolean(!reason));
    json_object_set_new(ex, "gate_reason", reason ? json_string(reason) : json_null());
    json_object_set_new(ex, "filter", ep->filter_info ? json_deep_copy(ep->filter_info) : json_null());
  }
  return ex;
}

static void round_end(struct episode *ep, const char *reason, const char *detail) {
  struct run *r = ep->run;
  const struct recipe *rc = ep->rc;
  json_t *rec = candidate_record(ep, reason, detail);
  json_t *ex = NULL;
  char example_id[300] = "";
  /* The agentic loop keeps what passes the gate; a baseline keeps what passes
   * its own filter (the gate is recorded, never looped on). */
  if (ep->baseline ? ep->passed_filter : !reason) {
    ep->accepted++;
    snprintf(example_id, sizeof example_id, "%s-%d", ep->doc->id, ep->accepted);
    ex = example_record(ep, example_id, reason);
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

  int finished = ep->baseline || ep->accepted >= rc->budgets.examples_per_source ||
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
  if (ex && ep->baseline) r->sum->kept++;
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
  ep->baseline = r->method != BL_AGENTIC;
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
