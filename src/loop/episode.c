/* episode.c - the episode core: state, requests, steps, judging, records.
 *
 * A round is a sequence of steps chosen by the method (method.h); each step submits
 * calls through the environment (episode.h) and, when its last call is back, leaves
 * its outcome on the episode and calls the method's next(). The steps:
 *
 *   ORCHESTRATE  history of this source's rounds -> instructions for the challenger
 *   CHALLENGE    source + instructions + feedback -> candidate JSON; parse + schema
 *                (one REPAIR turn that shows the model its parse error), then the
 *                programmatic checks (context length, leakage, rubric, duplicates)
 *   QUALITY      the LLM quality verifier's pass/fail
 *   WEAK, STRONG, FILTER
 *                n solver samples, each judged (rubric judge, LLM verifier or a local
 *                matcher); statistics of weak and strong
 *
 * A round ends with a record (through the environment); its summary feeds the next
 * round's feedback block and orchestrator history. A malformed reply, or a call the
 * server refused for its content, ends in a recorded reason ("error:<role>",
 * "parse_error", ...), never in a stop; a call set aside (the run is stopping, or an
 * infrastructure failure) parks the episode unfinished, so no source is written off
 * because a server was down. The episode finishes when it has examples_per_source
 * examples or its rounds are spent; that last record carries the source's end.
 *
 * Invariant: the episode ends (FINISHED or PARKED) only when none of its calls is
 * outstanding; `inflight` counts them and ep_deliver() checks it.
 */
#include "loop/episode.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/batch.h"
#include "eval/extract.h"
#include "eval/feedback.h"
#include "eval/screen.h"
#include "loop/method.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/mem.h"

/* ---- the solver phases ---------------------------------------------------------- */

enum { PH_WEAK = 0, PH_STRONG, PH_FILTER, N_PH };

/* One row per solver phase. FILTER samples come from the strong solver's role under
 * their own labels (and so their own seeds). Answer-Consistency groups extracted
 * answers itself, so FILTER samples of a verifiable task are matched locally whatever
 * the recipe's matcher. */
static const struct phase {
  enum ep_state state;
  enum recipe_role_id role;
  const char *label, *judge_label, *error;
  int local_match;
} k_phases[N_PH] = {
    [PH_WEAK] = {EP_WEAK, RECIPE_ROLE_WEAK, "weak", "judge_weak", "error:weak", 0},
    [PH_STRONG] = {EP_STRONG, RECIPE_ROLE_STRONG, "strong", "judge_strong", "error:strong", 0},
    [PH_FILTER] = {EP_FILTER, RECIPE_ROLE_STRONG, "filter", "judge_filter", "error:filter", 1},
};

static int phase_of(enum ep_state s) {
  switch (s) {
  case EP_WEAK: return PH_WEAK;
  case EP_STRONG: return PH_STRONG;
  case EP_FILTER: return PH_FILTER;
  default: return -1;
  }
}

/* A call's tag: what kind of call, for which phase and sample. */
enum {
  CALL_ORCHESTRATOR = 1,
  CALL_CHALLENGER,
  CALL_QUALITY,
  CALL_SOLVER,
  CALL_JUDGE,
  CALL_TURN,
  CALL_EXTRACTOR,
  CALL_LOOP_JUDGE,
  CALL_BATCH
};
#define TAG(kind, ph, sample) (((kind) << 16) | ((ph) << 8) | (sample))
#define TAG_KIND(t) (((t) >> 16) & 0xff)
#define TAG_CAND(t) (((t) >> 24) & 0x7f) /* the candidate of a screening call (ep_screen) */
#define TAG_PHASE(t) (((t) >> 8) & 0xff)
#define TAG_SAMPLE(t) ((t)&0xff)

struct episode {
  const struct ep_config *cfg;
  const struct recipe *rc;
  const struct method_ops *method;
  struct ep_env env;
  const struct src_doc *doc;
  enum ep_state state;
  int inflight;    /* calls submitted and not yet delivered */
  int round;       /* 1-based */
  int accepted;    /* examples kept so far */
  json_t *history; /* array of round summaries (feedback material) */
  uint64_t *seen;  /* normalised-question hashes of this source */
  size_t n_seen, cap_seen;
  void *mstate;      /* the method's state (method->state_size bytes) */
  char *extraction;  /* the extractor's output (once per episode), NULL when none */
  int extracted;     /* the extractor has judged the document */
  int closing;       /* ep_end_source: the round in hand is the source's last */
  char *loop_reason; /* the loop judge's reason this round */
  char *note;        /* the dataset note (recipe analysis:), NULL when none */
  int note_checkpoint;

  /* the current round */
  char *fail_reason, *fail_detail; /* the last step's failure; NULL when it succeeded */
  char *instructions;              /* orchestrator output, NULL when none */
  char *orch_error;
  json_t *chal_messages; /* challenger request messages (for the repair turn) */
  char *chal_raw;        /* the challenger's last reply */
  int repaired;
  struct cand cand;
  int have_cand;
  struct score_qv qv;
  int have_qv;
  int pending; /* samples of the current phase still open */
  struct ep_sample samples[N_PH][ACCEPT_MAX_SAMPLES];
  int n_samples[N_PH]; /* samples requested (those issued, once the phase stopped early) */
  int planned[N_PH];   /* samples requested when the phase began */
  int issued[N_PH];    /* samples submitted so far (waves) */
  int stopped_early;   /* a phase stopped before all its samples: the verdict was certain */
  /* batched judging (evaluation.batch_judge): a wave's answers graded in one call */
  int batch_wait;                             /* solver replies of the wave still out */
  int batch_aside;                            /* one of them was set aside: judge none */
  int batch_n, batch_idx[ACCEPT_MAX_SAMPLES]; /* the samples the batch call grades */
  json_t *batch_messages;                     /* its request messages, for the repair turn */
  int batch_repaired;
  struct accept_stats stats;

  /* a conversational method's round (method.h: the agent method's seam) */
  int variant; /* seeds are drawn for this candidate (0: as usual) */
  int turn_ok; /* the last orchestrator turn */
  char *turn_content, *turn_finish, *turn_error;
  json_t *turn_calls;

  /* several challengers per round (ep_screen; roles.challenger.parallel) */
  int cand_index;       /* the current candidate's index in the round (its record's index) */
  struct scr_cand *scr; /* the round's candidates (NULL: a round of one candidate) */
  int n_scr, scr_left;  /* their count; those still being screened */
  int screening;        /* their challenger and quality calls are out */
  int scr_issuing;      /* ep_screen is submitting them */
  unsigned scr_gen;     /* ep_screen calls so far (a delivery's screening is still the same) */
  int order[SCREEN_MAX_PARALLEL], n_order; /* the survivors in evaluation order (screen.h) */
  int picked;                              /* the survivor evaluated last, -1 before the first */
};

/* One candidate of a round with several challengers. */
struct scr_cand {
  struct ep_slot *slot;  /* its state while it is not the episode's current candidate */
  char *reason, *detail; /* why screening failed it, or NULL */
  int done;              /* screened */
  int aside;             /* one of its calls was set aside: the episode parks */
  int at_quality;        /* it failed at the quality verifier (not at its checks) */
  int rank;              /* its place in the evaluation order, -1: not a survivor */
  int recorded;          /* its record is written */
};

static void screen_step(struct episode *ep, enum ep_state done);

/* After a step: the method decides, except while the round's candidates are screened. */
static void next(struct episode *ep, enum ep_state done) {
  if (ep->screening) screen_step(ep, done);
  else ep->method->next(ep, done);
}

/* ---- small helpers ------------------------------------------------------------ */

static int is_verifiable(const struct episode *ep) { return ep->rc->task == CAND_TASK_VERIFIABLE; }

static void sample_reset(struct ep_sample *s) {
  free(s->met);
  free(s->answer);
  free(s->error);
  json_decref(s->judge_messages);
  memset(s, 0, sizeof *s);
}

/* The step's failure (reason NULL: it succeeded); ep_failure() reads it. */
static void set_failure(struct episode *ep, const char *reason, const char *detail) {
  xset_str(&ep->fail_reason, reason);
  xset_str(&ep->fail_detail, detail);
}

/* Release the current candidate's state (what an ep_slot holds) and leave it empty. */
static void cand_state_clear(struct episode *ep) {
  json_decref(ep->chal_messages);
  ep->chal_messages = NULL;
  xset_str(&ep->chal_raw, NULL);
  ep->repaired = 0;
  if (ep->have_cand) cand_release(&ep->cand);
  memset(&ep->cand, 0, sizeof ep->cand);
  ep->have_cand = 0;
  memset(&ep->qv, 0, sizeof ep->qv);
  ep->have_qv = 0;
  ep->pending = 0;
  for (int p = 0; p < N_PH; p++) {
    for (int i = 0; i < ACCEPT_MAX_SAMPLES; i++) sample_reset(&ep->samples[p][i]);
    ep->n_samples[p] = ep->planned[p] = ep->issued[p] = 0;
  }
  ep->stopped_early = 0;
  ep->batch_wait = ep->batch_aside = ep->batch_n = ep->batch_repaired = 0;
  json_decref(ep->batch_messages);
  ep->batch_messages = NULL;
  memset(&ep->stats, 0, sizeof ep->stats);
  xset_str(&ep->loop_reason, NULL);
}

static void scr_free(struct episode *ep);

/* Forget the agent's last orchestrator turn (its reply, finish reason, error, tool calls). */
static void turn_clear(struct episode *ep) {
  ep->turn_ok = 0;
  xset_str(&ep->turn_content, NULL);
  xset_str(&ep->turn_finish, NULL);
  xset_str(&ep->turn_error, NULL);
  json_decref(ep->turn_calls);
  ep->turn_calls = NULL;
}

static void round_reset(struct episode *ep) {
  set_failure(ep, NULL, NULL);
  scr_free(ep);
  xset_str(&ep->instructions, NULL);
  xset_str(&ep->orch_error, NULL);
  cand_state_clear(ep);
  ep->variant = 0;
  turn_clear(ep);
  if (ep->mstate) {
    if (ep->method->reset) ep->method->reset(ep->mstate);
    memset(ep->mstate, 0, ep->method->state_size);
  }
}

static void seen_add(struct episode *ep, uint64_t h) {
  for (size_t i = 0; i < ep->n_seen; i++)
    if (ep->seen[i] == h) return;
  if (ep->n_seen == ep->cap_seen) {
    ep->cap_seen = ep->cap_seen ? ep->cap_seen * 2 : 8;
    ep->seen = xrealloc(ep->seen, ep->cap_seen * sizeof *ep->seen);
  }
  ep->seen[ep->n_seen++] = h;
}

static void scr_finish(struct episode *ep, int aside, int at_quality);

/* The episode is set aside unfinished (while screening: the current candidate is, and the
 * episode parks once the others are back). */
static void park(struct episode *ep) {
  if (ep->screening) scr_finish(ep, 1, 0);
  else ep->state = EP_PARKED;
}

/* A step that cannot make its call ends the round with reason (a template error); while
 * screening, only the current candidate's screening ends. */
static void step_abort(struct episode *ep, const char *reason, const char *detail) {
  if (!ep->screening) {
    ep_end_round(ep, reason, detail, 0);
    return;
  }
  set_failure(ep, reason, detail);
  scr_finish(ep, 0, ep->state == EP_QUALITY);
}

/* Submit a call; 0, or the environment refused it (the run is stopping). */
static int submit(struct episode *ep, enum recipe_role_id role, const char *label, int sample,
                  int tag, json_t *body) {
  if (ep->screening) tag |= ep->cand_index << 24; /* whose screening call (TAG_CAND) */
  struct ep_call c = {role, label, sample, tag, ep->doc->id, ep->round, body};
  int rc = ep->env.submit(ep->env.data, ep, &c);
  if (rc == 0) ep->inflight++;
  return rc;
}

/* ---- requests ------------------------------------------------------------------ */

/* Variables every prompt may use. New reference. */
static json_t *base_vars(const struct episode *ep) {
  const struct recipe *rc = ep->rc;
  json_t *v = json_pack("{s:s, s:s, s:s, s:i, s:s, s:b, s:i, s:i, s:i}", "source_title",
                        ep->doc->title ? ep->doc->title : "", "source_text", ep->doc->text, "goal",
                        rc->goal ? rc->goal : "", "round", ep->round, "task",
                        cand_task_name(rc->task), "verifiable", is_verifiable(ep), "max_weight",
                        rc->checks.max_weight, "rubric_min", rc->checks.rubric_min, "rubric_max",
                        rc->checks.rubric_max);
  const struct cand_checks *k = &rc->checks; /* the counts of each kind (signed rubrics) */
  json_object_set_new(v, "positive_min", json_integer(k->positive_min));
  json_object_set_new(v, "positive_max", json_integer(k->positive_max));
  json_object_set_new(v, "negative_min", json_integer(k->negative_min));
  json_object_set_new(v, "negative_max", json_integer(k->negative_max));
  return v;
}

/* Sampling parameters of a role, with the seed of (label, sample). */
static void role_params(const struct episode *ep, enum recipe_role_id role, const char *label,
                        int sample, struct llm_params *p) {
  const struct recipe_role *ro = &ep->rc->roles[role];
  llm_params_init(p);
  p->temperature = ro->temperature;
  p->top_p = ro->top_p;
  p->max_tokens = ro->max_tokens;
  p->has_seed = 1;
  p->seed = ep->env.seed(ep->env.data, ep->doc->id, ep->round, label,
                         sample + ep->variant * ACCEPT_MAX_SAMPLES);
  p->extra = ro->extra;
}

/* The response_format of a role's requests (new reference), or NULL: the roles that
 * must return a shape get its JSON Schema (strict, or "basic" for servers that reject
 * length/size/range keywords) unless the endpoint has json_schema off or refused it in
 * this run. The same schema goes with every retry and repair turn of the call. */
static json_t *role_schema(const struct episode *ep, enum recipe_role_id role) {
  const struct recipe_role *ro = &ep->rc->roles[role];
  int mode = ep->rc->endpoints[ro->endpoint_index].json_schema;
  if (mode == RECIPE_SCHEMA_OFF || !ep->env.schema_ok(ep->env.data, role)) return NULL;
  int basic = mode == RECIPE_SCHEMA_BASIC;
  switch (role) {
  case RECIPE_ROLE_CHALLENGER:
    return ep->method->challenger_schema
               ? cand_response_format(ep->rc->task, &ep->rc->checks, basic)
               : NULL;
  case RECIPE_ROLE_QUALITY: return cand_schema_wrap("quality_verdict", score_qv_schema(), basic);
  case RECIPE_ROLE_JUDGE:
    if (is_verifiable(ep))
      return cand_schema_wrap("verifier_verdict", score_correct_schema(), basic);
    return cand_schema_wrap("rubric_verdicts", score_judge_schema(ep->cand.n_rubric), basic);
  default: return NULL;
  }
}

/* Tell the environment whether a reply of a shaped role was usable. */
static void reply_seen(struct episode *ep, enum recipe_role_id role, int usable, const char *why,
                       const char *reply) {
  if (ep->env.reply_seen) ep->env.reply_seen(ep->env.data, role, usable, why, reply);
}

/* A reply cut off at max_tokens: 1 with a message in msg naming the role's limit. */
static int truncated(const struct episode *ep, enum recipe_role_id role, const char *label,
                     const struct ep_reply *out, char *msg, size_t cap) {
  if (!out->ok || !out->finish_reason || strcmp(out->finish_reason, "length")) return 0;
  int limit = ep->rc->roles[role].max_tokens;
  const char *rname = recipe_role_name(role);
  if (limit > 0)
    snprintf(msg, cap,
             "the %s reply hit max_tokens (%d tokens; the server counted %lld) and was cut off; "
             "raise roles.%s.max_tokens",
             label, limit, (long long)out->completion_tokens, rname);
  else
    snprintf(msg, cap,
             "the %s reply was cut off by the server's own token limit after %lld tokens "
             "(finish_reason \"length\"); set roles.%s.max_tokens or raise the server's limit",
             label, (long long)out->completion_tokens, rname);
  return 1;
}

/* Who reads the dataset note: the orchestrator whenever it is called, and the challenger in
 * a round without the orchestrator's instructions (the first round, a method without one,
 * an orchestrator call that failed). */
static int reads_note(const struct episode *ep, enum recipe_role_id role) {
  return role == RECIPE_ROLE_ORCHESTRATOR || (role == RECIPE_ROLE_CHALLENGER && !ep->instructions);
}

void ep_set_note(struct episode *ep, const char *note, int checkpoint) {
  xset_str(&ep->note, note);
  ep->note_checkpoint = checkpoint;
}

/* Render a role's prompt with vars and build its request body (the caller owns it).
 * Returns NULL with a message in err on a template error. messages_out (may be NULL)
 * gets the rendered messages. */
static json_t *build_request(struct episode *ep, enum recipe_role_id role, const char *label,
                             int sample, const json_t *vars, json_t **messages_out, char *err,
                             size_t errlen) {
  const struct recipe_role *ro = &ep->rc->roles[role];
  const tpl *sys = ro->system_prompt.tpl.user; /* NULL unless a system_prompt file is set */
  const struct tpl_prompt *pt = &ro->prompt.tpl;
  if (role == RECIPE_ROLE_CHALLENGER && ep->cfg->challenger_tpl) {
    pt = ep->cfg->challenger_tpl; /* the method's own challenger prompt */
    sys = NULL;
  }
  json_t *messages = NULL;
  /* a prompt sees only the variables its role is entitled to (recipe_role_vars) */
  json_t *given = recipe_role_filter_vars(role, ep->rc->task, vars);
  int trc = tpl_prompt_render(pt, sys, given, 0, &messages, err, errlen);
  json_decref(given);
  if (trc) return NULL;
  if (ep->note && reads_note(ep, role)) {
    /* the dataset note (analysis:), after the prompt: shipped prompts stay as they are */
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *text = jx_str(last, "content");
    char *t = xasprintf("%s\n\n%s", text ? text : "", ep->note);
    json_object_set_new(last, "content", jx_string_lossy(t, strlen(t)));
    free(t);
  }
  if (role == RECIPE_ROLE_CHALLENGER && ep->screening && ep->n_scr > 1) {
    /* several challengers: candidate k's angle, at the end so the prefix stays shared */
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *text = jx_str(last, "content");
    char angle[1024];
    fb_angle_line(angle, sizeof angle, ep->cand_index + 1, ep->n_scr);
    char *t = xasprintf("%s%s", text ? text : "", angle);
    json_object_set_new(last, "content", jx_string_lossy(t, strlen(t)));
    free(t);
  }
  struct llm_params p;
  role_params(ep, role, label, sample, &p);
  json_t *rf = role_schema(ep, role);
  p.response_format = rf;
  json_t *body = llm_request_build(ro->model, messages, &p);
  json_decref(rf);
  if (!body) ad_set_err(err, errlen, "could not build the %s request", label);
  if (messages_out && body) *messages_out = messages;
  else json_decref(messages);
  return body;
}

/* fb_round views over the history array (borrowed strings; the caller frees the array). */
static struct fb_round *history_view(const struct episode *ep, int *n) {
  size_t len = json_array_size(ep->history);
  *n = (int)len;
  if (!len) return NULL;
  struct fb_round *r = xcalloc(len, sizeof *r);
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

/* The history (orchestrator) or feedback (challenger) text of the earlier rounds. A
 * block too big for its cap is left out rather than cut. New reference. */
static json_t *history_text(const struct episode *ep, int for_orchestrator) {
  struct buf b = BUF_INIT;
  int n;
  struct fb_round *view = history_view(ep, &n);
  int rc = for_orchestrator ? fb_history(&b, view, n) : fb_compose(&b, view, n, NULL);
  if (rc) buf_reset(&b);
  free(view);
  json_t *s = json_string(buf_str(&b));
  buf_release(&b);
  return s;
}

/* base_vars() plus the current candidate as indented JSON ({{candidate_json}}). */
static json_t *candidate_vars(struct episode *ep) {
  json_t *vars = base_vars(ep);
  json_t *cj = cand_to_json(&ep->cand);
  char *cs = json_dumps(cj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(cj);
  json_object_set_new(vars, "candidate_json", json_string(cs ? cs : "{}"));
  free(cs);
  return vars;
}

/* Build one call of a single-reply role (orchestrator, extractor, challenger, quality,
 * loop judge) from vars (consumed) and submit it tagged kind; a template error ends the
 * round as "error:<label>" before any call, a refused submit parks the episode. */
static void send_one(struct episode *ep, enum recipe_role_id role, const char *label, int kind,
                     json_t *vars, json_t **messages_out) {
  char err[512], reason[64];
  json_t *body = build_request(ep, role, label, 0, vars, messages_out, err, sizeof err);
  json_decref(vars);
  if (!body) {
    snprintf(reason, sizeof reason, "error:%s", label);
    step_abort(ep, reason, err); /* before any call: a template error */
    return;
  }
  if (submit(ep, role, label, 0, TAG(kind, 0, 0), body)) park(ep);
}

/* ---- ORCHESTRATE ------------------------------------------------------------------ */

void ep_orchestrate(struct episode *ep) {
  ep->state = EP_ORCHESTRATE;
  set_failure(ep, NULL, NULL);
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "history", history_text(ep, 1));
  send_one(ep, RECIPE_ROLE_ORCHESTRATOR, "orchestrator", CALL_ORCHESTRATOR, vars, NULL);
}

static void on_orchestrator(struct episode *ep, const struct ep_reply *out) {
  char msg[400];
  if (truncated(ep, RECIPE_ROLE_ORCHESTRATOR, "orchestrator", out, msg, sizeof msg)) {
    ep->orch_error = xstrdup(msg); /* half an instruction is worse than none */
  } else if (out->ok) {
    size_t n = 0;
    const char *t = extract_skip_think(out->content, strlen(out->content), &n);
    ep->instructions = xstrndup(t, n);
  } else {
    ep->orch_error = xstrdup(out->error); /* the round goes on from the feedback alone */
  }
  next(ep, EP_ORCHESTRATE);
}

/* ---- EXTRACT: the two-stage challenger's first stage ---------------------------------- */

void ep_extract(struct episode *ep) {
  ep->state = EP_EXTRACT;
  set_failure(ep, NULL, NULL);
  send_one(ep, RECIPE_ROLE_EXTRACTOR, "extractor", CALL_EXTRACTOR, base_vars(ep), NULL);
}

static void on_extractor(struct episode *ep, const struct ep_reply *out) {
  static const char *const keys[] = {"suitable", NULL};
  char err[512];
  json_t *v = NULL;
  if (!out->ok) {
    set_failure(ep, "error:extractor", out->error);
  } else if (truncated(ep, RECIPE_ROLE_EXTRACTOR, "extractor", out, err, sizeof err)) {
    set_failure(ep, "truncated:extractor", err);
  } else if (!(v = extract_json(out->content, strlen(out->content), keys, 0, err, sizeof err)) ||
             !json_is_boolean(json_object_get(v, "suitable"))) {
    set_failure(ep, "error:extractor_reply",
                v ? "the extractor's reply has no boolean \"suitable\"" : err);
  } else {
    ep->extracted = 1;
    const char *why = jx_str(v, "reason");
    if (!json_is_true(json_object_get(v, "suitable"))) {
      set_failure(ep, "unsuitable", why ? why : "the extractor found the document unsuitable");
    } else {
      const char *x = jx_str(v, "extraction");
      xset_str(&ep->extraction, x ? x : "");
    }
  }
  json_decref(v);
  next(ep, EP_EXTRACT);
}

int ep_extracted(const struct episode *ep) { return ep->extracted; }

/* ---- LOOP_JUDGE: accept or improve, a statistic the bounds may require ------------------ */

void ep_loop_judge(struct episode *ep) {
  ep->state = EP_LOOP_JUDGE;
  set_failure(ep, NULL, NULL);
  json_t *vars = candidate_vars(ep);
  /* the evaluation: the scores, and one weak and one strong answer */
  struct buf b = BUF_INIT;
  const struct accept_stats *s = &ep->stats;
  int brc = buf_printf(
      &b, "weak avg: %.0f%% over %d answers, strong avg: %.0f%% over %d answers, gap: %.0f%%",
      s->weak_mean * 100, s->n_weak, s->strong_mean * 100, s->n_strong, s->gap * 100);
  for (int ph = PH_WEAK; ph <= PH_STRONG && !brc; ph++)
    for (int i = 0; i < ep->n_samples[ph]; i++)
      if (ep->samples[ph][i].answer) {
        const char *a = ep->samples[ph][i].answer;
        size_t len = strlen(a);
        brc = buf_printf(&b, "\n\nA %s answer (%.0f%%):\n%.*s", k_phases[ph].label,
                         ep->samples[ph][i].score * 100, (int)(len > 1500 ? 1500 : len), a);
        break;
      }
  json_object_set_new(vars, "evaluation", jx_string_lossy(buf_str(&b), strlen(buf_str(&b))));
  buf_release(&b);
  send_one(ep, RECIPE_ROLE_LOOP_JUDGE, "loop_judge", CALL_LOOP_JUDGE, vars, NULL);
}

static void on_loop_judge(struct episode *ep, const struct ep_reply *out) {
  static const char *const keys[] = {"verdict", NULL};
  char err[512];
  json_t *v = NULL;
  const char *verdict = NULL;
  if (!out->ok) {
    set_failure(ep, "error:loop_judge", out->error);
  } else if (truncated(ep, RECIPE_ROLE_LOOP_JUDGE, "loop judge", out, err, sizeof err)) {
    set_failure(ep, "truncated:loop_judge", err);
  } else if (!(v = extract_json(out->content, strlen(out->content), keys, 0, err, sizeof err)) ||
             !(verdict = jx_str(v, "verdict")) ||
             (strcmp(verdict, "accept") && strcmp(verdict, "improve"))) {
    set_failure(ep, "error:loop_judge_reply",
                v ? "the loop judge's \"verdict\" must be \"accept\" or \"improve\"" : err);
  } else {
    ep->stats.loop_judged = 1;
    ep->stats.loop_accept = strcmp(verdict, "accept") ? 0.0 : 1.0;
    const char *why = jx_str(v, "reason");
    xset_str(&ep->loop_reason, why ? why : "");
  }
  json_decref(v);
  next(ep, EP_LOOP_JUDGE);
}

const char *ep_loop_reason(const struct episode *ep) {
  return ep->loop_reason ? ep->loop_reason : "";
}

void ep_end_source(struct episode *ep, const char *reason, const char *detail) {
  ep->closing = 1;
  ep_end_round(ep, reason, detail, 0);
}

/* ---- CHALLENGE and REPAIR ----------------------------------------------------------- */

void ep_challenge(struct episode *ep) {
  ep->state = EP_CHALLENGE;
  set_failure(ep, NULL, NULL);
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "feedback", history_text(ep, 0));
  json_object_set_new(vars, "instructions", json_string(ep->instructions ? ep->instructions : ""));
  json_object_set_new(vars, "extraction", json_string(ep->extraction ? ep->extraction : ""));
  send_one(ep, RECIPE_ROLE_CHALLENGER, "challenger", CALL_CHALLENGER, vars, &ep->chal_messages);
}

/* The repair turn: the same conversation, the model's reply, and its parse error. */
static void repair(struct episode *ep, const char *problem) {
  json_t *messages = json_deep_copy(ep->chal_messages);
  json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "assistant", "content",
                                            ep->chal_raw ? ep->chal_raw : ""));
  char msg[1024];
  fb_repair_message(msg, sizeof msg, problem); /* the text is recorded (fb_program_texts) */
  json_array_append_new(messages, json_pack("{s:s,s:s}", "role", "user", "content", msg));
  struct llm_params p;
  role_params(ep, RECIPE_ROLE_CHALLENGER, "challenger_repair", 0, &p);
  json_t *rf = role_schema(ep, RECIPE_ROLE_CHALLENGER);
  p.response_format = rf;
  json_t *body = llm_request_build(ep->rc->roles[RECIPE_ROLE_CHALLENGER].model, messages, &p);
  json_decref(rf);
  json_decref(messages);
  ep->state = EP_REPAIR;
  ep->repaired = 1;
  if (!body) {
    step_abort(ep, "parse_error", problem);
    return;
  }
  if (submit(ep, RECIPE_ROLE_CHALLENGER, "challenger_repair", 0, TAG(CALL_CHALLENGER, 0, 0), body))
    park(ep);
}

static void on_challenger(struct episode *ep, const struct ep_reply *out) {
  if (!out->ok) {
    set_failure(ep, "error:challenger", out->error);
    next(ep, EP_CHALLENGE);
    return;
  }
  xset_str(&ep->chal_raw, out->content);
  if (ep->have_cand) cand_release(&ep->cand);
  ep->have_cand = 0;
  char msg[400];
  if (truncated(ep, RECIPE_ROLE_CHALLENGER, ep->repaired ? "challenger repair" : "challenger", out,
                msg, sizeof msg)) {
    /* no repair turn: it would ask for the same content under the same limit */
    set_failure(ep, "truncated:challenger", msg);
    reply_seen(ep, RECIPE_ROLE_CHALLENGER, 0, msg, out->content);
    next(ep, EP_CHALLENGE);
    return;
  }
  struct cand_seen seen = {ep->seen, ep->n_seen};
  struct cand_issue issue;
  memset(&issue, 0, sizeof issue);
  int rc = cand_parse(out->content, strlen(out->content), ep->rc->task, &ep->rc->checks,
                      ep->rc->checks.dedup ? &seen : NULL, &ep->cand, &issue);
  if (rc == 0 || issue.kind == CAND_CHECK) {
    ep->have_cand = 1;
    /* while screening, the round's questions join in index order once all are in
       (screen_end), so no candidate's checks depend on which reply came first */
    if (!ep->screening) seen_add(ep, ep->cand.question_hash);
  }
  if (rc != 0 && issue.kind != CAND_CHECK && !ep->repaired) {
    repair(ep, issue.message);
    return;
  }
  if (rc != 0)
    set_failure(ep, issue.kind == CAND_CHECK ? issue.reason : "parse_error", issue.message);
  reply_seen(ep, RECIPE_ROLE_CHALLENGER, rc == 0 || issue.kind == CAND_CHECK, issue.message,
             out->content);
  next(ep, EP_CHALLENGE);
}

/* ---- QUALITY -------------------------------------------------------------------------- */

void ep_quality(struct episode *ep) {
  ep->state = EP_QUALITY;
  set_failure(ep, NULL, NULL);
  if (!ep->rc->roles[RECIPE_ROLE_QUALITY].present) {
    next(ep, EP_QUALITY);
    return;
  }
  json_t *vars = candidate_vars(ep);
  send_one(ep, RECIPE_ROLE_QUALITY, "quality", CALL_QUALITY, vars, NULL);
}

static void on_quality(struct episode *ep, const struct ep_reply *out) {
  char err[512];
  if (!out->ok) {
    set_failure(ep, "error:quality", out->error);
  } else if (truncated(ep, RECIPE_ROLE_QUALITY, "quality", out, err, sizeof err)) {
    set_failure(ep, "truncated:quality", err);
    reply_seen(ep, RECIPE_ROLE_QUALITY, 0, err, out->content);
  } else if (score_parse_qv(out->content, strlen(out->content), &ep->qv, err, sizeof err)) {
    set_failure(ep, "error:quality_reply", err);
    reply_seen(ep, RECIPE_ROLE_QUALITY, 0, err, out->content);
  } else {
    reply_seen(ep, RECIPE_ROLE_QUALITY, 1, NULL, out->content);
    ep->have_qv = 1;
    if (!ep->qv.pass) {
      char reason[64];
      score_qv_reason(&ep->qv, reason, sizeof reason);
      set_failure(ep, reason, ep->qv.feedback);
    }
  }
  next(ep, EP_QUALITY);
}

/* ---- WEAK, STRONG, FILTER: solver samples and their judging ------------------------------ */

/* Fill stats from the judged samples of the phases run so far. */
static void fill_stats(struct episode *ep) {
  struct accept_stats *s = &ep->stats;
  s->n_weak = s->n_strong = 0;
  for (int i = 0; i < ep->n_samples[PH_WEAK]; i++)
    if (ep->samples[PH_WEAK][i].ok) s->weak[s->n_weak++] = ep->samples[PH_WEAK][i].score;
  for (int i = 0; i < ep->n_samples[PH_STRONG]; i++)
    if (ep->samples[PH_STRONG][i].ok) s->strong[s->n_strong++] = ep->samples[PH_STRONG][i].score;
  s->strong_ran = ep->n_samples[PH_STRONG] > 0;
  accept_stats_compute(s, ep->rc->accept.pass_threshold);
}

/* The phase's last sample is in: park when one was set aside, else report. */
static void phase_done(struct episode *ep, int ph) {
  int n = ep->n_samples[ph], judged = 0;
  for (int i = 0; i < n; i++) {
    const struct ep_sample *s = &ep->samples[ph][i];
    if (s->done && !s->ok && !s->error) { /* set aside */
      park(ep);
      return;
    }
    judged += s->ok;
  }
  if (ph != PH_FILTER) fill_stats(ep);
  if (!judged) {
    char d[600];
    snprintf(d, sizeof d, "no %s answer could be judged: %s", k_phases[ph].label,
             ep_first_error(ep, k_phases[ph].state));
    set_failure(ep, k_phases[ph].error, d);
  }
  next(ep, k_phases[ph].state);
}

static void wave_done(struct episode *ep, int ph);

static void sample_finish(struct episode *ep, int ph, int i, int ok, double score,
                          const char *error) {
  struct ep_sample *s = &ep->samples[ph][i];
  if (s->done) return;
  s->done = 1;
  s->ok = ok;
  s->score = score;
  if (!ok) s->error = xstrdup(error ? error : "failed");
  if (--ep->pending == 0) wave_done(ep, ph);
}

/* A sample whose next call was not made or not answered (the run is stopping, or an
 * infrastructure failure): done without a score or an error, which phase_done reads
 * as "set the episode aside". */
static void sample_set_aside(struct episode *ep, int ph, int i) {
  ep->samples[ph][i].done = 1;
  if (--ep->pending == 0) wave_done(ep, ph);
}

/* Judge one answer: locally with a matcher, or through a judge call. */
static void judge(struct episode *ep, int ph, int i) {
  struct ep_sample *s = &ep->samples[ph][i];
  const struct recipe *rc = ep->rc;
  if (is_verifiable(ep) && (rc->verifiable_matcher != SCORE_LLM || k_phases[ph].local_match)) {
    /* the FILTER phase may get here with the LLM matcher: match it the auto way */
    enum score_matcher m = rc->verifiable_matcher == SCORE_LLM ? SCORE_AUTO
                                                               : rc->verifiable_matcher;
    char *ans = score_final_answer(s->answer, strlen(s->answer));
    int match = ans ? score_match(m, ans, ep->cand.reference_answer) : 0;
    free(ans);
    sample_finish(ep, ph, i, 1, match ? 1.0 : 0.0, NULL);
    return;
  }
  char err[512];
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "question", json_string(ep->cand.question));
  json_object_set_new(vars, "response", jx_string_lossy(s->answer, strlen(s->answer)));
  json_object_set_new(vars, "reference_answer", json_string(ep->cand.reference_answer));
  json_object_set_new(vars, "rubric", cand_rubric_vars(&ep->cand));
  const char *label = k_phases[ph].judge_label;
  json_t *body = build_request(ep, RECIPE_ROLE_JUDGE, label, i, vars, &s->judge_messages, err,
                               sizeof err);
  json_decref(vars);
  if (!body) {
    sample_finish(ep, ph, i, 0, 0, err);
    return;
  }
  if (submit(ep, RECIPE_ROLE_JUDGE, label, i, TAG(CALL_JUDGE, ph, i), body))
    sample_set_aside(ep, ph, i);
}

/* The judge's repair turn: the same request, its task restated after a note that names
 * why the last judgement could not be used, with the same schema. (The note comes
 * first, so the response under judgement stays the last thing the judge reads.) */
static void judge_repair(struct episode *ep, int ph, int i, const char *problem) {
  struct ep_sample *s = &ep->samples[ph][i];
  s->judge_repaired = 1;
  json_t *messages = json_deep_copy(s->judge_messages);
  json_t *last = json_array_get(messages, json_array_size(messages) - 1);
  const char *task = jx_str(last, "content");
  char note[1024];
  fb_judge_repair_note(note, sizeof note, is_verifiable(ep), ep->cand.n_rubric, problem);
  char *text = xasprintf("%s%s", note, task ? task : "");
  json_object_set_new(last, "content", jx_string_lossy(text, strlen(text)));
  free(text);
  char label[32];
  snprintf(label, sizeof label, "%s_repair", k_phases[ph].judge_label);
  struct llm_params p;
  role_params(ep, RECIPE_ROLE_JUDGE, label, i, &p);
  json_t *rf = role_schema(ep, RECIPE_ROLE_JUDGE);
  p.response_format = rf;
  json_t *body = llm_request_build(ep->rc->roles[RECIPE_ROLE_JUDGE].model, messages, &p);
  json_decref(rf);
  json_decref(messages);
  if (!body) {
    s->judge_invalid = 1;
    sample_finish(ep, ph, i, 0, 0, problem);
    return;
  }
  if (submit(ep, RECIPE_ROLE_JUDGE, label, i, TAG(CALL_JUDGE, ph, i), body))
    sample_set_aside(ep, ph, i);
}

static void on_judge(struct episode *ep, int ph, int i, const struct ep_reply *out) {
  struct ep_sample *s = &ep->samples[ph][i];
  if (!out->ok) {
    sample_finish(ep, ph, i, 0, 0, out->error);
    return;
  }
  char err[512];
  if (truncated(ep, RECIPE_ROLE_JUDGE, s->judge_repaired ? "judge repair" : "judge", out, err,
                sizeof err)) {
    s->judge_invalid = 1;
    reply_seen(ep, RECIPE_ROLE_JUDGE, 0, err, out->content);
    sample_finish(ep, ph, i, 0, 0, err);
    return;
  }
  size_t len = strlen(out->content);
  int rc;
  double score = 0;
  if (is_verifiable(ep)) {
    int correct = 0;
    rc = score_parse_correct(out->content, len, &correct, err, sizeof err);
    score = correct ? 1.0 : 0.0;
  } else {
    int n = ep->cand.n_rubric;
    int *met = xcalloc((size_t)n + 1, sizeof *met);
    int *w = xcalloc((size_t)n + 1, sizeof *w);
    for (int k = 0; k < n; k++) w[k] = ep->cand.rubric[k].weight;
    rc = score_parse_verdicts(out->content, len, n, met, err, sizeof err);
    if (!rc) score = score_rubric(w, met, n);
    free(s->met); /* the verdicts are kept with the sample (the agent's evaluate shows them) */
    s->met = rc ? NULL : met;
    s->n_met = rc ? 0 : n;
    if (rc) free(met);
    free(w);
  }
  if (rc && !s->judge_repaired) {
    judge_repair(ep, ph, i, err);
    return;
  }
  if (rc) {
    char e2[600];
    snprintf(e2, sizeof e2, "invalid judgement after a repair turn: %s", err);
    s->judge_invalid = 1;
    reply_seen(ep, RECIPE_ROLE_JUDGE, 0, err, out->content);
    sample_finish(ep, ph, i, 0, 0, e2);
    return;
  }
  reply_seen(ep, RECIPE_ROLE_JUDGE, 1, NULL, out->content);
  sample_finish(ep, ph, i, 1, score, NULL);
}

static int batching(const struct episode *ep, int ph);
static void batch_judge(struct episode *ep, int ph);

static void on_solver(struct episode *ep, int ph, int i, const struct ep_reply *out) {
  char msg[400];
  const char *error = NULL;
  if (!out->ok) error = out->error;
  /* a cut-off answer is not the solver's answer: judging it would score the limit */
  else if (truncated(ep, k_phases[ph].role, k_phases[ph].label, out, msg, sizeof msg)) error = msg;
  else {
    /* the judge grades the final answer, never the reasoning before it */
    size_t n = 0;
    const char *a = extract_final_text(out->content, strlen(out->content), &n);
    if (a) ep->samples[ph][i].answer = xstrndup(a, n);
    else error = "the reply ended inside its <think> block: no final answer";
  }
  if (batching(ep, ph)) {
    /* the wave's answers wait for one judge call, sent when its last reply is in (and
     * before this sample's error may end the phase) */
    if (--ep->batch_wait == 0) batch_judge(ep, ph);
    if (error) sample_finish(ep, ph, i, 0, 0, error);
    return;
  }
  if (error) sample_finish(ep, ph, i, 0, 0, error);
  else judge(ep, ph, i);
}

/* ---- batched judging ------------------------------------------------------------------- */

/* One judge call grades every answer of a wave (evaluation.batch_judge) when the phase's
 * answers go to the LLM judge at all. */
static int batching(const struct episode *ep, int ph) {
  if (!ep->rc->evaluation.batch_judge || !ep->rc->judge_batch.tpl.user) return 0;
  return !(is_verifiable(ep) &&
           (ep->rc->verifiable_matcher != SCORE_LLM || k_phases[ph].local_match));
}

/* The batched judge's response_format (new reference) or NULL, as role_schema() decides. */
static json_t *batch_schema(const struct episode *ep, int n) {
  const struct recipe_role *ro = &ep->rc->roles[RECIPE_ROLE_JUDGE];
  int mode = ep->rc->endpoints[ro->endpoint_index].json_schema;
  if (mode == RECIPE_SCHEMA_OFF || !ep->env.schema_ok(ep->env.data, RECIPE_ROLE_JUDGE)) return NULL;
  int basic = mode == RECIPE_SCHEMA_BASIC;
  if (is_verifiable(ep)) return cand_schema_wrap("batch_verdicts", batch_correct_schema(n), basic);
  return cand_schema_wrap("batch_rubric_verdicts", batch_judge_schema(n, ep->cand.n_rubric), basic);
}

static json_t *batch_body(struct episode *ep, const char *label, int sample, json_t *messages) {
  struct llm_params p;
  role_params(ep, RECIPE_ROLE_JUDGE, label, sample, &p);
  json_t *rf = batch_schema(ep, ep->batch_n);
  p.response_format = rf;
  json_t *body = llm_request_build(ep->rc->roles[RECIPE_ROLE_JUDGE].model, messages, &p);
  json_decref(rf);
  return body;
}

/* Finish every sample of the batch: judged with scores (score != NULL) or failed. */
static void batch_finish(struct episode *ep, int ph, const double *score, const char *error,
                         int invalid) {
  int n = ep->batch_n, idx[ACCEPT_MAX_SAMPLES], repaired = ep->batch_repaired;
  memcpy(idx, ep->batch_idx, sizeof idx);
  ep->batch_n = 0; /* the last sample_finish may start the next wave and its batch */
  for (int k = 0; k < n; k++) {
    ep->samples[ph][idx[k]].judge_repaired = repaired;
    ep->samples[ph][idx[k]].judge_invalid = invalid;
    sample_finish(ep, ph, idx[k], score != NULL, score ? score[k] : 0, error);
  }
}

static void batch_aside_all(struct episode *ep, int ph) {
  int n = ep->batch_n, idx[ACCEPT_MAX_SAMPLES];
  memcpy(idx, ep->batch_idx, sizeof idx);
  ep->batch_n = 0;
  for (int k = 0; k < n; k++) sample_set_aside(ep, ph, idx[k]);
}

/* The wave's solver replies are in: one judge call for every answer still to grade. */
static void batch_judge(struct episode *ep, int ph) {
  int n = 0;
  for (int i = 0; i < ep->issued[ph]; i++) {
    const struct ep_sample *s = &ep->samples[ph][i];
    if (!s->done && s->answer && !s->judge_messages) ep->batch_idx[n++] = i;
  }
  ep->batch_n = n;
  ep->batch_repaired = 0;
  if (!n) return;
  if (ep->batch_aside) { /* the phase parks: spend nothing more on it */
    batch_aside_all(ep, ph);
    return;
  }
  char err[512];
  json_t *vars = base_vars(ep), *responses = json_array();
  for (int k = 0; k < n; k++) {
    const char *a = ep->samples[ph][ep->batch_idx[k]].answer;
    json_array_append_new(responses, json_pack("{s:i,s:o}", "number", k + 1, "response",
                                               jx_string_lossy(a, strlen(a))));
  }
  json_object_set_new(vars, "question", json_string(ep->cand.question));
  json_object_set_new(vars, "response", json_string(""));
  json_object_set_new(vars, "responses", responses);
  json_object_set_new(vars, "reference_answer", json_string(ep->cand.reference_answer));
  json_object_set_new(vars, "rubric", cand_rubric_vars(&ep->cand));
  json_t *given = recipe_role_filter_vars(RECIPE_ROLE_JUDGE, ep->rc->task, vars);
  json_decref(vars);
  json_t *messages = NULL;
  int trc = tpl_prompt_render(&ep->rc->judge_batch.tpl, NULL, given, 0, &messages, err, sizeof err);
  json_decref(given);
  char label[24]; /* "batch_weak", ... (the run keeps 23 characters of a label) */
  snprintf(label, sizeof label, "batch_%s", k_phases[ph].label);
  json_t *body = trc ? NULL : batch_body(ep, label, ep->batch_idx[0], messages);
  if (!body) {
    json_decref(messages);
    batch_finish(ep, ph, NULL, trc ? err : "could not build the batched judge request", 0);
    return;
  }
  json_decref(ep->batch_messages);
  ep->batch_messages = messages;
  for (int k = 0; k < n; k++)
    ep->samples[ph][ep->batch_idx[k]].judge_messages = json_incref(messages);
  if (submit(ep, RECIPE_ROLE_JUDGE, label, ep->batch_idx[0], TAG(CALL_BATCH, ph, ep->batch_idx[0]),
             body))
    batch_aside_all(ep, ph);
}

/* The batched judge's repair turn: as the single judge's (judge_repair). */
static void batch_repair(struct episode *ep, int ph, const char *problem) {
  ep->batch_repaired = 1;
  json_t *messages = json_deep_copy(ep->batch_messages);
  json_t *last = json_array_get(messages, json_array_size(messages) - 1);
  const char *task = jx_str(last, "content");
  char note[1024];
  snprintf(note, sizeof note,
           "NOTE: your previous grading of these responses could not be used: %s\nReply with "
           "only the JSON object: exactly one entry for each response from 1 to %d%s.\n\n",
           problem, ep->batch_n,
           is_verifiable(ep) ? ", each with a boolean \"correct\""
                             : ", each with exactly one verdict for each criterion");
  char *text = xasprintf("%s%s", note, task ? task : "");
  json_object_set_new(last, "content", jx_string_lossy(text, strlen(text)));
  free(text);
  char label[24];
  snprintf(label, sizeof label, "batch_%s_repair", k_phases[ph].label);
  json_t *body = batch_body(ep, label, ep->batch_idx[0], messages);
  json_decref(messages);
  if (!body) {
    batch_finish(ep, ph, NULL, problem, 1);
    return;
  }
  if (submit(ep, RECIPE_ROLE_JUDGE, label, ep->batch_idx[0], TAG(CALL_BATCH, ph, ep->batch_idx[0]),
             body))
    batch_aside_all(ep, ph);
}

static void on_batch(struct episode *ep, int ph, const struct ep_reply *out) {
  char err[512];
  if (!out->ok) {
    batch_finish(ep, ph, NULL, out->error, 0);
    return;
  }
  if (truncated(ep, RECIPE_ROLE_JUDGE,
                ep->batch_repaired ? "batched judge repair" : "batched judge", out, err,
                sizeof err)) {
    reply_seen(ep, RECIPE_ROLE_JUDGE, 0, err, out->content);
    batch_finish(ep, ph, NULL, err, 1);
    return;
  }
  int n = ep->batch_n, nr = ep->cand.n_rubric, rc;
  size_t len = strlen(out->content);
  double score[ACCEPT_MAX_SAMPLES];
  if (is_verifiable(ep)) {
    int correct[ACCEPT_MAX_SAMPLES];
    rc = batch_parse_correct(out->content, len, n, correct, err, sizeof err);
    for (int k = 0; k < n; k++) score[k] = correct[k] ? 1.0 : 0.0;
  } else {
    int *met = xcalloc((size_t)n * (size_t)(nr > 0 ? nr : 1), sizeof *met);
    int *w = xcalloc((size_t)nr + 1, sizeof *w);
    for (int c = 0; c < nr; c++) w[c] = ep->cand.rubric[c].weight;
    rc = batch_parse_verdicts(out->content, len, n, nr, met, err, sizeof err);
    for (int k = 0; k < n; k++) score[k] = rc ? 0 : score_rubric(w, met + (size_t)k * nr, nr);
    free(met);
    free(w);
  }
  if (rc && !ep->batch_repaired) {
    batch_repair(ep, ph, err);
    return;
  }
  if (rc) {
    char e2[600];
    snprintf(e2, sizeof e2, "invalid batched judgement after a repair turn: %s", err);
    reply_seen(ep, RECIPE_ROLE_JUDGE, 0, err, out->content);
    batch_finish(ep, ph, NULL, e2, 1);
    return;
  }
  reply_seen(ep, RECIPE_ROLE_JUDGE, 1, NULL, out->content);
  batch_finish(ep, ph, score, NULL, 0);
}

/* ---- early decisions: samples in waves ------------------------------------------------ */

/* Early decisions apply to the weak and strong samples of a method that loops on the
 * acceptance gate (a baseline records its gate's statistics in full). */
static int early_stop(const struct episode *ep, int ph) {
  return ep->rc->evaluation.early_stop && !ep->method->baseline &&
         (ph == PH_WEAK || ph == PH_STRONG);
}

/* Samples a phase asks for: as requested when it began, else the role's default. */
static int planned(const struct episode *ep, int ph) {
  if (ep->planned[ph] > 0) return ep->planned[ph];
  int n = ep->rc->roles[k_phases[ph].role].samples;
  return n < 1 ? 1 : n > ACCEPT_MAX_SAMPLES ? ACCEPT_MAX_SAMPLES : n;
}

/* The judged scores among samples [0, upto) of phase ph, in sample order. */
static int judged_scores(const struct episode *ep, int ph, int upto, double *out) {
  int k = 0;
  for (int i = 0; i < upto && i < ep->n_samples[ph]; i++)
    if (ep->samples[ph][i].ok) out[k++] = ep->samples[ph][i].score;
  return k;
}

/* The weak samples [0, nw) and strong samples [0, ns) are in: is the verdict certain,
 * whatever the other samples of a full evaluation (planned()) would score? */
static int certain(const struct episode *ep, int nw, int ns) {
  double w[ACCEPT_MAX_SAMPLES], st[ACCEPT_MAX_SAMPLES];
  struct accept_partial p = {w,
                             st,
                             judged_scores(ep, PH_WEAK, nw, w),
                             judged_scores(ep, PH_STRONG, ns, st),
                             planned(ep, PH_WEAK) - nw,
                             planned(ep, PH_STRONG) - ns};
  return accept_decided(&ep->rc->accept, &p, NULL, NULL, 0) == ACCEPT_REJECTED;
}

/* The shortest prefix of the samples, weak 0.. then strong 0.., after which the
 * rejection was certain: its length (its statistics in *out), or -1 when there is none
 * among the samples issued. It is the same under early decisions and full evaluation
 * (each stops no earlier), so the feedback built from it is too. */
static int decisive_prefix(const struct episode *ep, struct accept_stats *out) {
  int nw = planned(ep, PH_WEAK), ns = planned(ep, PH_STRONG);
  if (!ep->n_samples[PH_WEAK]) return -1;
  for (int t = 0; t <= nw + ns; t++) {
    int tw = t < nw ? t : nw, ts = t < nw ? 0 : t - nw;
    if (tw > ep->n_samples[PH_WEAK] || ts > ep->n_samples[PH_STRONG]) return -1;
    if (!certain(ep, tw, ts)) continue;
    memset(out, 0, sizeof *out);
    out->n_weak = judged_scores(ep, PH_WEAK, tw, out->weak);
    out->n_strong = judged_scores(ep, PH_STRONG, ts, out->strong);
    out->strong_ran = ts > 0;
    accept_stats_compute(out, ep->rc->accept.pass_threshold);
    return t;
  }
  return -1;
}

/* Submit the next wave of phase ph's samples (all of them without early decisions). */
static void issue_wave(struct episode *ep, int ph) {
  const struct phase *P = &k_phases[ph];
  int n = ep->n_samples[ph], from = ep->issued[ph];
  int to = early_stop(ep, ph) ? from + ep->rc->evaluation.wave : n;
  if (to > n || to <= from) to = n;
  ep->issued[ph] = to;
  ep->pending = to - from;
  ep->batch_wait = to - from;
  ep->batch_aside = 0;
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "context", json_string(ep->cand.context ? ep->cand.context : ""));
  json_object_set_new(vars, "question", json_string(ep->cand.question));
  /* Submit every sample first; a sample that cannot start means the run is stopping. */
  int refused = 0;
  for (int i = from; i < to; i++) {
    char err[512];
    json_t *body = build_request(ep, P->role, P->label, i, vars, NULL, err, sizeof err);
    if (!body) {
      /* A template error is the same for every sample: fail them all. */
      json_decref(vars);
      for (int k = i; k < n; k++) ep->samples[ph][k].done = 1;
      ep->issued[ph] = n;
      ep->pending -= to - i;
      if (ep->pending == 0)
        ep_end_round(ep, P->error, err, 0); /* before any call: a template error */
      return;
    }
    if (submit(ep, P->role, P->label, i, TAG(CALL_SOLVER, ph, i), body)) {
      ep->samples[ph][i].done = 1;
      refused++;
    }
  }
  json_decref(vars);
  if (refused) {
    ep->pending -= refused;
    ep->batch_wait -= refused;
    ep->batch_aside = 1;
    if (ep->pending == 0) park(ep);
  }
}

/* A wave's last sample is in: stop when the verdict is certain (with one sample of the
 * phase judged, so that "no answer could be judged" is ruled out), else issue the next
 * wave, else the phase is done. */
static void wave_done(struct episode *ep, int ph) {
  int issued = ep->issued[ph], judged = 0, aside = 0;
  for (int i = 0; i < issued; i++) {
    const struct ep_sample *s = &ep->samples[ph][i];
    judged += s->ok;
    aside += s->done && !s->ok && !s->error;
  }
  if (issued < ep->n_samples[ph] && !aside) {
    int nw = ph == PH_WEAK ? issued : ep->n_samples[PH_WEAK];
    if (!early_stop(ep, ph) || !judged || !certain(ep, nw, ph == PH_STRONG ? issued : 0)) {
      issue_wave(ep, ph);
      return;
    }
    ep->n_samples[ph] = issued; /* the rest is never asked for */
    ep->stopped_early = 1;
  }
  phase_done(ep, ph);
}

void ep_solve(struct episode *ep, enum ep_state phase, int n) {
  int ph = phase_of(phase);
  if (ph < 0) abort(); /* a method bug: not a solver phase */
  const struct phase *P = &k_phases[ph];
  if (n <= 0) n = ep->rc->roles[P->role].samples;
  if (n < 1) n = 1;
  if (n > ACCEPT_MAX_SAMPLES) n = ACCEPT_MAX_SAMPLES;
  ep->state = phase;
  set_failure(ep, NULL, NULL);
  ep->n_samples[ph] = ep->planned[ph] = n;
  ep->issued[ph] = 0;
  issue_wave(ep, ph);
}

/* ---- the end of a round ------------------------------------------------------------- */

static json_t *scores_json(const double *x, int n) {
  json_t *a = json_array();
  for (int i = 0; i < n; i++) json_array_append_new(a, json_real(jx_round6(x[i])));
  return a;
}

/* A statistic, or null when it was not measured (no judged sample behind it). */
static json_t *stat_num(int measured, double v) {
  return measured ? json_real(jx_round6(v)) : json_null();
}

static json_t *stats_json(const struct accept_stats *s) {
  json_t *o = json_object();
  json_object_set_new(o, "n_weak", json_integer(s->n_weak));
  json_object_set_new(o, "n_strong", json_integer(s->n_strong));
  json_object_set_new(o, "strong_ran", json_boolean(s->strong_ran));
  int w = s->n_weak > 0, st = s->n_strong > 0;
#define NUM(f, m) json_object_set_new(o, #f, stat_num(m, s->f))
  NUM(weak_mean, w);
  NUM(weak_std, w);
  NUM(weak_min, w);
  NUM(weak_max, w);
  NUM(strong_mean, st);
  NUM(strong_std, st);
  NUM(strong_min, st);
  NUM(strong_max, st);
  NUM(gap, w && st);
#undef NUM
  if (s->loop_judged) json_object_set_new(o, "loop_accept", json_integer((int)s->loop_accept));
  json_object_set_new(o, "weak_correct", json_integer(s->weak_correct));
  json_object_set_new(o, "strong_correct", json_integer(s->strong_correct));
  return o;
}

static json_t *candidate_record(const struct episode *ep, const char *reason, const char *detail) {
  json_t *rec = json_object();
  json_object_set_new(rec, "source_id", json_string(ep->doc->id));
  json_object_set_new(rec, "round", json_integer(ep->round));
  json_object_set_new(rec, "index", json_integer(ep->cand_index));
  if (ep->scr) { /* several challengers: the round's size and this one's evaluation order */
    int rank = ep->scr[ep->cand_index].rank;
    json_object_set_new(rec, "screen",
                        json_pack("{s:i,s:o}", "of", ep->n_scr, "order",
                                  rank >= 0 ? json_integer(rank) : json_null()));
  }
  json_object_set_new(rec, "instructions",
                      ep->instructions ? json_string(ep->instructions) : json_null());
  if (ep->note) /* only with analysis: (older records stay as they were) */
    json_object_set_new(rec, "dataset_note", json_integer(ep->note_checkpoint));
  if (ep->orch_error) json_object_set_new(rec, "orchestrator_error", json_string(ep->orch_error));
  json_object_set_new(rec, "candidate", ep->have_cand ? cand_to_json(&ep->cand) : json_null());
  if (!ep->have_cand && ep->chal_raw)
    json_object_set_new(rec, "raw", jx_string_lossy(ep->chal_raw, strlen(ep->chal_raw)));
  json_object_set_new(rec, "repaired", json_boolean(ep->repaired));
  json_object_set_new(rec, "verdict", json_string(reason ? "rejected" : "accepted"));
  json_object_set_new(rec, "reason", reason ? json_string(reason) : json_null());
  json_object_set_new(rec, "detail",
                      detail ? jx_string_lossy(detail, strlen(detail)) : json_null());
  if (ep->have_qv) {
    json_t *issues = json_array();
    for (int i = 0; i < ep->qv.n_issues; i++)
      json_array_append_new(issues, json_string(ep->qv.issues[i]));
    json_object_set_new(rec, "quality",
                        json_pack("{s:b,s:o,s:s}", "pass", ep->qv.pass, "issues", issues,
                                  "feedback", ep->qv.feedback));
  } else {
    json_object_set_new(rec, "quality", json_null());
  }
  json_object_set_new(rec, "weak_scores", scores_json(ep->stats.weak, ep->stats.n_weak));
  json_object_set_new(rec, "strong_scores", scores_json(ep->stats.strong, ep->stats.n_strong));
  json_object_set_new(rec, "stats", ep->n_samples[PH_WEAK] ? stats_json(&ep->stats) : json_null());
  if (ep->n_samples[PH_WEAK]) { /* early decisions: where the verdict became certain */
    struct accept_stats pre;
    int t = decisive_prefix(ep, &pre);
    json_object_set_new(rec, "decided_after", t >= 0 ? json_integer(t) : json_null());
    json_object_set_new(rec, "stopped_early", json_boolean(ep->stopped_early));
    if (ep->stopped_early)
      json_object_set_new(rec, "stopped_after",
                          json_integer(ep->n_samples[PH_WEAK] + ep->n_samples[PH_STRONG]));
  }
  /* Sample failures, for the record. */
  json_t *errs = json_array();
  for (int ph = 0; ph < N_PH; ph++)
    for (int i = 0; i < ep->n_samples[ph]; i++)
      if (ep->samples[ph][i].error)
        json_array_append_new(errs, json_pack("{s:s,s:i,s:s}", "role", k_phases[ph].label, "sample",
                                              i, "error", ep->samples[ph][i].error));
  if (json_array_size(errs)) json_object_set_new(rec, "sample_errors", errs);
  else json_decref(errs);
  /* Judge calls: how many judgements, how many needed a repair turn, how many stayed
   * invalid (those samples have an error, never a score). */
  int judged = 0, repaired = 0, invalid = 0;
  for (int ph = 0; ph < N_PH; ph++)
    for (int i = 0; i < ep->n_samples[ph]; i++) {
      const struct ep_sample *sm = &ep->samples[ph][i];
      judged += sm->judge_messages != NULL;
      repaired += sm->judge_repaired;
      invalid += sm->judge_invalid;
    }
  if (judged)
    json_object_set_new(
        rec, "judgements",
        json_pack("{s:i,s:i,s:i}", "total", judged, "repaired", repaired, "invalid", invalid));
  return rec;
}

static json_t *example_record(const struct episode *ep, const char *example_id) {
  const struct cand *c = &ep->cand;
  json_t *ex = json_object();
  json_object_set_new(ex, "id", json_string(example_id));
  json_object_set_new(ex, "source_id", json_string(ep->doc->id));
  json_object_set_new(ex, "source_title", json_string(ep->doc->title ? ep->doc->title : ""));
  json_object_set_new(ex, "task", json_string(cand_task_name(ep->rc->task)));
  json_object_set_new(ex, "question_type", json_string(c->question_type ? c->question_type : ""));
  json_object_set_new(ex, "context", json_string(c->context ? c->context : ""));
  json_object_set_new(ex, "question", json_string(c->question));
  if (is_verifiable(ep)) {
    json_object_set_new(ex, "answer", json_string(c->reference_answer));
  } else {
    json_object_set_new(ex, "reference_answer", json_string(c->reference_answer));
    json_object_set_new(ex, "rubric", cand_rubric_json(c));
  }
  if (c->reasoning_skills) json_object_set(ex, "reasoning_skills", c->reasoning_skills);
  json_object_set_new(ex, "weak_scores", scores_json(ep->stats.weak, ep->stats.n_weak));
  json_object_set_new(ex, "strong_scores", scores_json(ep->stats.strong, ep->stats.n_strong));
  int w = ep->stats.n_weak > 0, st = ep->stats.n_strong > 0;
  json_object_set_new(ex, "weak_mean", stat_num(w, ep->stats.weak_mean));
  json_object_set_new(ex, "strong_mean", stat_num(st, ep->stats.strong_mean));
  json_object_set_new(ex, "gap", stat_num(w && st, ep->stats.gap));
  json_object_set_new(ex, "weak_std", stat_num(w, ep->stats.weak_std));
  json_object_set_new(ex, "rounds_used", json_integer(ep->round));
  json_object_set_new(ex, "prompt_hashes", json_deep_copy(ep->cfg->prompt_hashes));
  return ex;
}

/* The round's summary, for the next rounds' feedback and orchestrator history. */
static void history_add(struct episode *ep, const char *reason, const char *detail) {
  json_t *h = json_object();
  json_object_set_new(h, "round", json_integer(ep->round));
  if (ep->have_cand) {
    json_object_set_new(h, "question_type",
                        json_string(ep->cand.question_type ? ep->cand.question_type : ""));
    json_object_set_new(h, "question", json_string(ep->cand.question));
  }
  json_object_set_new(h, "reason", json_string(reason ? reason : "accepted"));
  if (detail) json_object_set_new(h, "detail", jx_string_lossy(detail, strlen(detail)));
  /* the statistics of the samples that decided a rejection: the same whether the
   * evaluation stopped there or went on (docs/loop.md, early decisions) */
  struct accept_stats pre;
  const struct accept_stats *hs = decisive_prefix(ep, &pre) >= 0 ? &pre : &ep->stats;
  json_object_set_new(h, "weak_mean", json_real(hs->weak_mean));
  json_object_set_new(h, "strong_mean", json_real(hs->strong_mean));
  json_object_set_new(h, "gap", json_real(hs->gap));
  json_object_set_new(h, "strong_ran", json_boolean(hs->strong_ran));
  for (int i = 0; i < ep->n_samples[PH_WEAK]; i++) {
    const char *a = ep->samples[PH_WEAK][i].answer;
    if (!a) continue;
    size_t len = strlen(a);
    json_object_set_new(h, "weak_excerpt", jx_string_lossy(a, len > 300 ? 300 : len));
    break;
  }
  json_array_append_new(ep->history, h);
}

static void round_begin(struct episode *ep) {
  round_reset(ep);
  ep->state = EP_IDLE;
  next(ep, EP_IDLE);
}

static int record_others(struct episode *ep, int keep);

void ep_end_round(struct episode *ep, const char *reason, const char *detail, int keep) {
  const struct recipe *rc = ep->rc;
  /* reason and detail may point into the round's state: keep copies */
  char *why = xstrdup(reason), *what = xstrdup(detail);
  if (ep->scr && record_others(ep, keep)) { /* the round's other candidates come first */
    free(why);
    free(what);
    park(ep);
    return;
  }
  json_t *rec = candidate_record(ep, why, what);
  json_t *ex = NULL;
  char example_id[300] = "";
  if (keep) {
    ep->accepted++;
    snprintf(example_id, sizeof example_id, "%s-%d", ep->doc->id, ep->accepted);
    ex = example_record(ep, example_id);
  }
  if (ep->method->annotate) ep->method->annotate(ep, why, what, rec, ex);
  history_add(ep, why, what);
  int max_rounds = ep->method->max_rounds ? ep->method->max_rounds : rc->budgets.rounds_per_source;
  int finished = ep->accepted >= rc->budgets.examples_per_source || ep->round >= max_rounds ||
                 ep->closing;
  struct ep_round_end e = {.source_id = ep->doc->id,
                           .round = ep->round,
                           .reason = why,
                           .cand_record = rec,
                           .example_id = ex ? example_id : NULL,
                           .example = ex,
                           .finished = finished,
                           .accepted = ep->accepted,
                           .index = ep->cand_index};
  int rc_store = ep->env.record(ep->env.data, &e);
  json_decref(rec);
  json_decref(ex);
  free(why);
  free(what);
  if (rc_store) {
    park(ep);
    return;
  }
  if (finished) {
    ep->state = EP_FINISHED;
    return;
  }
  if (ep->env.stopping(ep->env.data)) {
    park(ep);
    return;
  }
  ep->round++;
  round_begin(ep);
}

/* ---- a conversation and candidate slots (method.h: the agent method's seam) ------------- */

json_t *ep_orchestrator_messages(struct episode *ep, char *err, size_t errlen) {
  const struct recipe_role *ro = &ep->rc->roles[RECIPE_ROLE_ORCHESTRATOR];
  const struct tpl_prompt *pt = ep->cfg->orchestrator_tpl ? ep->cfg->orchestrator_tpl
                                                          : &ro->prompt.tpl;
  const tpl *sys = ep->cfg->orchestrator_tpl ? NULL : ro->system_prompt.tpl.user;
  json_t *vars = base_vars(ep);
  json_object_set_new(vars, "history", history_text(ep, 1));
  json_t *given = recipe_role_filter_vars(RECIPE_ROLE_ORCHESTRATOR, ep->rc->task, vars);
  json_t *messages = NULL;
  int rc = tpl_prompt_render(pt, sys, given, 0, &messages, err, errlen);
  json_decref(given);
  json_decref(vars);
  return rc ? NULL : messages;
}

void ep_converse(struct episode *ep, const json_t *messages, const json_t *tools, int turn) {
  ep->state = EP_ORCHESTRATE;
  set_failure(ep, NULL, NULL);
  turn_clear(ep);
  struct llm_params p;
  role_params(ep, RECIPE_ROLE_ORCHESTRATOR, "agent", turn, &p);
  json_t *choice = json_string("auto");
  p.tools = tools;
  p.tool_choice = choice;
  json_t *body = llm_request_build(ep->rc->roles[RECIPE_ROLE_ORCHESTRATOR].model, messages, &p);
  json_decref(choice);
  if (!body) {
    ep->turn_error = xstrdup("could not build the agent's request");
    next(ep, EP_ORCHESTRATE);
    return;
  }
  if (submit(ep, RECIPE_ROLE_ORCHESTRATOR, "agent", turn, TAG(CALL_TURN, 0, 0), body)) park(ep);
}

static void on_turn(struct episode *ep, const struct ep_reply *out) {
  ep->turn_ok = out->ok;
  if (out->ok) {
    /* a turn must call a tool: a run whose agent keeps answering in prose stops (env) */
    int usable = json_array_size(out->tool_calls) > 0;
    reply_seen(ep, RECIPE_ROLE_ORCHESTRATOR, usable,
               usable ? NULL
                      : "the reply had no tool call (a server without a tool-call parser leaves "
                        "them in the text; docs/agent.md)",
               out->content ? out->content : "");
    ep->turn_content = xstrdup(out->content ? out->content : "");
    ep->turn_finish = out->finish_reason ? xstrdup(out->finish_reason) : NULL;
    ep->turn_calls = out->tool_calls ? json_deep_copy(out->tool_calls) : NULL;
  } else {
    ep->turn_error = xstrdup(out->error ? out->error : "failed");
  }
  next(ep, EP_ORCHESTRATE);
}

struct ep_turn ep_turn(const struct episode *ep) {
  struct ep_turn t = {ep->turn_ok, ep->turn_content ? ep->turn_content : "", ep->turn_calls,
                      ep->turn_finish, ep->turn_error};
  return t;
}

void ep_set_instructions(struct episode *ep, const char *text) {
  xset_str(&ep->instructions, text);
}

void ep_set_variant(struct episode *ep, int variant) { ep->variant = variant; }

struct ep_slot {
  json_t *chal_messages;
  char *chal_raw;
  int repaired;
  struct cand cand;
  int have_cand;
  struct score_qv qv;
  int have_qv;
  struct ep_sample samples[N_PH][ACCEPT_MAX_SAMPLES];
  int n_samples[N_PH];
  int planned[N_PH];
  int issued[N_PH];
  int stopped_early;
  struct accept_stats stats;
};

/* Move the candidate state fields between the episode and a slot (dst gets src's; src is
 * left empty). */
/* clang-format off */
#define SLOT_FIELDS(X)                                                                 \
  X(chal_messages) X(chal_raw) X(repaired) X(cand) X(have_cand) X(qv) X(have_qv)       \
  X(samples) X(n_samples) X(planned) X(issued) X(stopped_early) X(stats)
/* clang-format on */
#define SLOT_MOVE(f)                       \
  memcpy(&dst->f, &src->f, sizeof dst->f); \
  memset(&src->f, 0, sizeof src->f);

/* A numeric answer lives in the candidate's own answer_buf: point into the new copy. */
#define SLOT_MOVE_ALL()                                                  \
  do {                                                                   \
    int own_answer = src->cand.reference_answer == src->cand.answer_buf; \
    SLOT_FIELDS(SLOT_MOVE)                                               \
    if (own_answer) dst->cand.reference_answer = dst->cand.answer_buf;   \
  } while (0)

struct ep_slot *ep_slot_take(struct episode *ep) {
  struct ep_slot *dst = xcalloc(1, sizeof *dst);
  struct episode *src = ep;
  SLOT_MOVE_ALL();
  return dst;
}

void ep_slot_put(struct episode *ep, struct ep_slot *s) {
  cand_state_clear(ep);
  struct episode *dst = ep;
  struct ep_slot *src = s;
  SLOT_MOVE_ALL();
  free(s);
}

void ep_slot_free(struct ep_slot *s) {
  if (!s) return;
  if (s->have_cand) cand_release(&s->cand);
  json_decref(s->chal_messages);
  free(s->chal_raw);
  for (int p = 0; p < N_PH; p++)
    for (int i = 0; i < ACCEPT_MAX_SAMPLES; i++) sample_reset(&s->samples[p][i]);
  free(s);
}

/* ---- several challengers per round (method.h: ep_screen) --------------------------------- */

static void scr_free(struct episode *ep) {
  for (int k = 0; k < ep->n_scr; k++) {
    ep_slot_free(ep->scr[k].slot);
    free(ep->scr[k].reason);
    free(ep->scr[k].detail);
  }
  free(ep->scr);
  ep->scr = NULL;
  ep->n_scr = ep->scr_left = ep->screening = ep->scr_issuing = ep->n_order = 0;
  ep->cand_index = 0;
  ep->picked = -1;
}

static int seen_has(const struct episode *ep, uint64_t h) {
  for (size_t i = 0; i < ep->n_seen; i++)
    if (ep->seen[i] == h) return 1;
  return 0;
}

/* Every candidate is screened: park when one was set aside; else the round's questions join
 * the source's (a repeat of an earlier candidate of the round, in index order, fails as
 * check:duplicate, as it would have in rounds of one), the survivors are put in order
 * (screen_order) and the method goes on. */
static void screen_end(struct episode *ep) {
  ep->screening = 0;
  int aside = 0;
  for (int k = 0; k < ep->n_scr; k++) aside |= ep->scr[k].aside;
  if (aside) {
    ep->state = EP_PARKED;
    return;
  }
  struct screen_cand sc[SCREEN_MAX_PARALLEL];
  for (int k = 0; k < ep->n_scr; k++) {
    struct scr_cand *c = &ep->scr[k];
    const struct ep_slot *sl = c->slot;
    if (sl->have_cand) {
      uint64_t h = sl->cand.question_hash;
      if (ep->rc->checks.dedup && (!c->reason || c->at_quality) && seen_has(ep, h)) {
        xset_str(&c->reason, "check:duplicate");
        xset_str(&c->detail,
                 "the question repeats an earlier candidate of this round; ask a "
                 "new question");
      }
      seen_add(ep, h);
    }
    sc[k].survived = !c->reason;
    sc[k].qv_issues = sl->have_qv ? sl->qv.n_issues : 0;
    sc[k].repaired = sl->repaired;
    c->rank = -1;
  }
  ep->n_order = screen_order(sc, ep->n_scr, ep->order);
  for (int i = 0; i < ep->n_order; i++) ep->scr[ep->order[i]].rank = i;
  ep->picked = -1;
  ep->state = EP_SCREEN;
  ep->method->next(ep, EP_SCREEN);
}

/* The current candidate's screening is over (aside: a call was set aside). */
static void scr_finish(struct episode *ep, int aside, int at_quality) {
  struct scr_cand *c = &ep->scr[ep->cand_index];
  c->done = 1;
  c->aside = aside;
  if (!aside && ep->fail_reason) {
    c->reason = xstrdup(ep->fail_reason);
    c->detail = xstrdup(ep->fail_detail ? ep->fail_detail : "");
    c->at_quality = at_quality;
  }
  c->slot = ep_slot_take(ep);
  if (--ep->scr_left == 0 && !ep->scr_issuing) screen_end(ep);
}

/* A screening step is done: a candidate that parsed and passed its checks goes to the
 * quality verifier; otherwise its screening is over. */
static void screen_step(struct episode *ep, enum ep_state done) {
  if (done == EP_CHALLENGE && !ep->fail_reason) ep_quality(ep);
  else scr_finish(ep, 0, done == EP_QUALITY);
}

void ep_screen(struct episode *ep, int n) {
  if (n < 1) n = 1;
  if (n > SCREEN_MAX_PARALLEL) n = SCREEN_MAX_PARALLEL;
  scr_free(ep);
  ep->scr = xcalloc((size_t)n, sizeof *ep->scr);
  ep->n_scr = ep->scr_left = n;
  ep->screening = ep->scr_issuing = 1;
  ep->scr_gen++;
  for (int k = 0; k < n; k++) {
    ep->cand_index = k;
    ep->variant = k; /* candidate 0 draws the seeds a round of one would */
    ep_challenge(ep);
    if (!ep->scr[k].done) ep->scr[k].slot = ep_slot_take(ep);
  }
  ep->scr_issuing = 0;
  if (ep->scr_left == 0) screen_end(ep);
}

int ep_screen_count(const struct episode *ep) { return ep->n_scr; }

int ep_screen_next(const struct episode *ep) {
  if (!ep->scr) return -1;
  if (ep->picked < 0) return ep->n_order ? ep->order[0] : -1;
  int rank = ep->scr[ep->picked].rank; /* -1: the pick was not a survivor */
  return rank >= 0 && rank + 1 < ep->n_order ? ep->order[rank + 1] : -1;
}

void ep_screen_pick(struct episode *ep, int k) {
  if (!ep->scr || k < 0 || k >= ep->n_scr || !ep->scr[k].slot) abort(); /* a method bug */
  ep_slot_put(ep, ep->scr[k].slot);
  ep->scr[k].slot = NULL;
  ep->cand_index = k;
  ep->variant = k; /* its solver and judge calls draw candidate k's seeds */
  ep->picked = k;
  set_failure(ep, ep->scr[k].reason, ep->scr[k].detail);
}

/* Write the current candidate's record (not the round's last), with a history entry when
 * hist. 0, or the store's error. */
static int record_current(struct episode *ep, const char *why, const char *what, int hist) {
  json_t *rec = candidate_record(ep, why, what);
  if (ep->method->annotate) ep->method->annotate(ep, why, what, rec, NULL);
  if (hist) history_add(ep, why, what);
  struct ep_round_end e = {.source_id = ep->doc->id,
                           .round = ep->round,
                           .reason = why,
                           .cand_record = rec,
                           .accepted = ep->accepted,
                           .index = ep->cand_index};
  int rc = ep->env.record(ep->env.data, &e);
  json_decref(rec);
  ep->scr[ep->cand_index].recorded = 1;
  return rc;
}

int ep_screen_reject(struct episode *ep, const char *reason, const char *detail) {
  char *why = xstrdup(reason), *what = xstrdup(detail);
  int rc = record_current(ep, why, what, 1);
  free(why);
  free(what);
  cand_state_clear(ep);
  if (rc) park(ep);
  return rc ? -1 : 0;
}

/* At the round's end, the records of its candidates not yet recorded, in index order: each
 * with its screening failure, or a survivor never evaluated with not_evaluated:*. The
 * feedback gets the evaluated candidates (ep_screen_reject, and the last in ep_end_round);
 * when none survived, every candidate of the round, in index order. */
static int record_others(struct episode *ep, int keep) {
  int cur = ep->cand_index, hist = ep->n_order == 0;
  struct ep_slot *mine = ep_slot_take(ep);
  int rc = 0;
  for (int k = 0; k < ep->n_scr && !rc; k++) {
    struct scr_cand *c = &ep->scr[k];
    if (k == cur || c->recorded || !c->slot) continue;
    ep_slot_put(ep, c->slot);
    c->slot = NULL;
    ep->cand_index = k;
    if (c->reason) rc = record_current(ep, c->reason, c->detail, hist);
    else if (keep)
      rc = record_current(ep, "not_evaluated:accepted_earlier",
                          "a candidate earlier in this round's order was accepted", hist);
    else
      rc = record_current(ep, "not_evaluated:round_ended",
                          "the round ended before this candidate was evaluated", hist);
    c->slot = ep_slot_take(ep);
  }
  ep_slot_put(ep, mine);
  ep->cand_index = cur;
  return rc;
}

/* ---- life cycle and delivery ----------------------------------------------------------- */

struct episode *ep_new(const struct ep_config *cfg, const struct ep_env *env,
                       const struct src_doc *doc) {
  struct episode *ep = xcalloc(1, sizeof *ep);
  ep->cfg = cfg;
  ep->rc = cfg->rc;
  ep->method = cfg->method;
  ep->env = *env;
  ep->doc = doc;
  ep->round = 1;
  ep->history = json_array();
  ep->picked = -1;
  if (ep->method->state_size) ep->mstate = xcalloc(1, ep->method->state_size);
  return ep;
}

enum ep_state ep_start(struct episode *ep) {
  round_begin(ep);
  return ep->state;
}

enum ep_state ep_deliver(struct episode *ep, int tag, const struct ep_reply *out) {
  if (ep->inflight <= 0 || ep_ended(ep->state)) abort(); /* a delivery nobody asked for */
  ep->inflight--;
  int kind = TAG_KIND(tag), ph = TAG_PHASE(tag), i = TAG_SAMPLE(tag), k = TAG_CAND(tag);
  int solver_call = kind == CALL_SOLVER || kind == CALL_JUDGE || kind == CALL_BATCH;
  if (solver_call && (ph >= N_PH || i >= ep->n_samples[ph])) abort();
  /* a screening call: its candidate becomes the current one while its outcome is read */
  int screened = ep->screening && (kind == CALL_CHALLENGER || kind == CALL_QUALITY);
  unsigned gen = ep->scr_gen;
  if (screened) {
    if (k >= ep->n_scr || ep->scr[k].done || !ep->scr[k].slot) abort();
    ep_slot_put(ep, ep->scr[k].slot);
    ep->scr[k].slot = NULL;
    ep->cand_index = k;
    ep->variant = k;
    set_failure(ep, NULL, NULL); /* another candidate's step may have failed meanwhile */
  }
  if (out->set_aside) {
    if (kind == CALL_BATCH) batch_aside_all(ep, ph);
    else if (kind == CALL_SOLVER && batching(ep, ph)) {
      ep->batch_aside = 1;
      if (--ep->batch_wait == 0) batch_judge(ep, ph);
      sample_set_aside(ep, ph, i);
    } else if (solver_call) sample_set_aside(ep, ph, i);
    else park(ep);
  } else {
    switch (kind) {
    case CALL_ORCHESTRATOR: on_orchestrator(ep, out); break;
    case CALL_CHALLENGER: on_challenger(ep, out); break;
    case CALL_QUALITY: on_quality(ep, out); break;
    case CALL_SOLVER: on_solver(ep, ph, i, out); break;
    case CALL_JUDGE: on_judge(ep, ph, i, out); break;
    case CALL_TURN: on_turn(ep, out); break;
    case CALL_EXTRACTOR: on_extractor(ep, out); break;
    case CALL_LOOP_JUDGE: on_loop_judge(ep, out); break;
    case CALL_BATCH: on_batch(ep, ph, out); break;
    default: abort();
    }
  }
  /* its next call is out (or it finished, and the screening may have ended) */
  if (screened && ep->screening && ep->scr_gen == gen && !ep->scr[k].done)
    ep->scr[k].slot = ep_slot_take(ep);
  if (ep_ended(ep->state) && ep->inflight) abort(); /* ended with calls outstanding */
  return ep->state;
}

void ep_free(struct episode *ep) {
  if (!ep) return;
  round_reset(ep);
  json_decref(ep->history);
  free(ep->extraction);
  free(ep->loop_reason);
  free(ep->note);
  free(ep->seen);
  free(ep->mstate);
  free(ep);
}

static const char *const k_state_names[] = {
    "idle",   "orchestrate", "challenge", "repair",  "quality",    "weak",  "strong",
    "filter", "finished",    "parked",    "extract", "loop_judge", "screen"};

const char *ep_state_name(enum ep_state s) {
  return (unsigned)s < sizeof k_state_names / sizeof *k_state_names ? k_state_names[s] : "?";
}

enum ep_state ep_state(const struct episode *ep) { return ep->state; }
const char *ep_source_id(const struct episode *ep) { return ep->doc->id; }
const struct src_doc *ep_doc(const struct episode *ep) { return ep->doc; }
int ep_round(const struct episode *ep) { return ep->round; }
int ep_accepted(const struct episode *ep) { return ep->accepted; }

/* ---- what methods read ------------------------------------------------------------------- */

struct ep_failure ep_failure(const struct episode *ep) {
  struct ep_failure f = {ep->fail_reason, ep->fail_detail ? ep->fail_detail : ""};
  return f;
}
const struct recipe *ep_recipe(const struct episode *ep) { return ep->rc; }
const struct bl_params *ep_filter_params(const struct episode *ep) { return ep->cfg->filter; }
const struct method_ops *ep_method(const struct episode *ep) { return ep->method; }
const struct cand *ep_cand(const struct episode *ep) { return ep->have_cand ? &ep->cand : NULL; }
const struct score_qv *ep_qv(const struct episode *ep) { return ep->have_qv ? &ep->qv : NULL; }
const struct accept_stats *ep_stats(const struct episode *ep) { return &ep->stats; }
void *ep_method_state(struct episode *ep) { return ep->mstate; }

const struct ep_sample *ep_samples(const struct episode *ep, enum ep_state phase, int *n) {
  int ph = phase_of(phase);
  if (ph < 0) {
    *n = 0;
    return NULL;
  }
  *n = ep->n_samples[ph];
  return ep->samples[ph];
}

int ep_samples_planned(const struct episode *ep, enum ep_state phase) {
  int ph = phase_of(phase);
  return ph < 0 ? 0 : ep->planned[ph] > 0 ? ep->planned[ph] : ep->n_samples[ph];
}

const char *ep_first_error(const struct episode *ep, enum ep_state phase) {
  int n;
  const struct ep_sample *s = ep_samples(ep, phase, &n);
  for (int i = 0; i < n; i++)
    if (s[i].error) return s[i].error;
  return "no answer";
}
