/* method_agent.c - the data scientist as a tool-calling agent (docs/agent.md).
 *
 * One round per source: a conversation in which the orchestrator model acts only through
 * tools - generate(instructions, n), check_quality(id), evaluate(id, solvers),
 * submit(id), give_up(reason) - and the program executes them with the episode's own
 * steps (ep_challenge, ep_quality, ep_solve) on candidate slots (method.h). The program,
 * not the model, holds the guardrails:
 *   - no tool can change a prompt, the sampling or the bounds (arguments are checked
 *     against each tool's schema; anything else is refused with a readable error);
 *   - each side of a candidate is evaluated once (its samples are fixed: no resampling
 *     until the bounds happen to hold);
 *   - submit applies the recipe's full acceptance predicate to a candidate that passed its
 *     checks and the quality verifier and was evaluated on both solvers; otherwise it is
 *     refused with the failing bounds;
 *   - unknown tools, malformed arguments and unknown ids get a tool error;
 *   - a reply without a tool call gets one reminder, a second in a row ends the source;
 *   - budgets: candidates per source (rounds_per_source), tool calls per source
 *     (budgets.agent_steps), and the run's call, token and cost budgets.
 * Every turn is an ordinary call through the environment (cached and recorded), so a
 * resumed run replays the conversation from the store and continues identically.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "loop/method.h"
#include "util/jsonx.h"
#include "util/mem.h"

#define AGENT_MAX_N 5        /* challengers per generate call */
#define AGENT_MAX_CANDS 64   /* candidates per source, whatever rounds_per_source says */
#define AGENT_EXCERPT 160    /* characters of a solver answer shown by evaluate */
#define AGENT_MAX_INSTR 4000 /* characters of generate's instructions */

/* ---- the tools ------------------------------------------------------------------------ */

enum tool { T_GENERATE, T_QUALITY, T_EVALUATE, T_SUBMIT, T_GIVE_UP, N_TOOLS };

static const char *const k_tool_names[N_TOOLS] = {"generate", "check_quality", "evaluate", "submit",
                                                  "give_up"};

static json_t *prop_str(const char *description) {
  return json_pack("{s:s,s:s}", "type", "string", "description", description);
}

static json_t *params_of(json_t *props, const char *req1, const char *req2) {
  json_t *req = json_array();
  if (req1) json_array_append_new(req, json_string(req1));
  if (req2) json_array_append_new(req, json_string(req2));
  return json_pack("{s:s,s:o,s:o,s:b}", "type", "object", "properties", props, "required", req,
                   "additionalProperties", 0);
}

/* The tool definitions sent with every turn (and recorded in the run's identity and the
 * data card). New reference. */
static json_t *agent_tools(void) {
  json_t *t = json_array();
  json_array_append_new(
      t, llm_tool_def(
             "generate",
             "Run n challengers (1-5) on this source with your instructions. Each writes one "
             "candidate question; the program parses it and runs the programmatic checks "
             "(format, context length, leakage, rubric, duplicates). Returns each candidate's "
             "id, the candidate itself and its check result. Candidates per source are "
             "limited.",
             params_of(json_pack("{s:o,s:{s:s,s:i,s:i,s:s}}", "instructions",
                                 prop_str("What the challengers should write: the reasoning "
                                          "angle, the kind of question, what to avoid, how hard "
                                          "it should be."),
                                 "n", "type", "integer", "minimum", 1, "maximum", AGENT_MAX_N,
                                 "description", "How many candidates to write (1-5)."),
                       "instructions", "n")));
  json_array_append_new(
      t, llm_tool_def("check_quality",
                      "Ask the quality verifier about a candidate that passed its checks: its "
                      "verdict (pass or fail), the issues it found and its feedback. A candidate "
                      "must pass it before it is evaluated.",
                      params_of(json_pack("{s:o}", "id", prop_str("A candidate id, e.g. c1.")),
                                "id", NULL)));
  json_array_append_new(
      t,
      llm_tool_def(
          "evaluate",
          "Answer the candidate with the weak or the strong solver (the recipe's samples), judge "
          "every answer, and report the per-sample scores, the statistics, which acceptance "
          "bounds hold so far and short excerpts of the answers. Each side is evaluated once.",
          params_of(json_pack("{s:o,s:{s:s,s:[s,s],s:s}}", "id",
                              prop_str("A candidate id that passed check_quality."), "solvers",
                              "type", "string", "enum", "weak", "strong", "description",
                              "Which solver answers: weak or strong."),
                    "id", "solvers")));
  json_array_append_new(
      t,
      llm_tool_def("submit",
                   "Submit a candidate evaluated on both solvers. The program applies the "
                   "full acceptance predicate: an accepted candidate becomes this source's "
                   "example and ends the conversation; otherwise the failing bounds come "
                   "back.",
                   params_of(json_pack("{s:o}", "id", prop_str("A candidate id.")), "id", NULL)));
  json_array_append_new(
      t, llm_tool_def("give_up",
                      "Stop working on this source without an example (ends the conversation).",
                      params_of(json_pack("{s:o}", "reason", prop_str("Why, in one sentence.")),
                                "reason", NULL)));
  return t;
}

/* ---- state ------------------------------------------------------------------------------ */

struct acand {
  char id[8];           /* "c1", ... */
  struct ep_slot *slot; /* its state while another candidate is in the episode */
  const char *failed;   /* why it cannot go further (check, quality, no judged answer), or
                           NULL; borrowed from `why` */
  char why[64];
  int quality; /* 0 not asked, 1 passed */
  json_t *quality_result;
  int evaluated[2]; /* weak, strong */
};

struct agent {
  json_t *messages;   /* the conversation */
  json_t *tools;      /* the definitions */
  json_t *trajectory; /* every tool call with its arguments and result, every odd reply */
  struct acand cands[AGENT_MAX_CANDS];
  int n_cands;
  struct llm_tool_call *calls; /* the turn being carried out */
  int n_calls, next_call;
  int turn;      /* turns sent */
  int steps;     /* tool calls carried out (or refused) */
  int reminders; /* replies without a tool call in a row */
  /* the tool in progress */
  int cur;         /* its candidate, -1 when none */
  int gen_left;    /* generate: challengers still to run */
  char *gen_instr; /* generate: the instructions */
  json_t *result;  /* its result being built */
};

static void agent_reset(void *state) {
  struct agent *a = state;
  json_decref(a->messages);
  json_decref(a->tools);
  json_decref(a->trajectory);
  for (int i = 0; i < a->n_cands; i++) {
    ep_slot_free(a->cands[i].slot);
    json_decref(a->cands[i].quality_result);
  }
  llm_tool_calls_free(a->calls, a->n_calls);
  free(a->gen_instr);
  json_decref(a->result);
}

static json_t *agent_identity(const struct method_ops *m, const struct bl_params *filter) {
  (void)filter;
  return json_pack("{s:s,s:o}", "name", m->name, "tools", agent_tools());
}

static int cand_cap(const struct episode *ep) {
  int cap = ep_recipe(ep)->budgets.rounds_per_source;
  return cap < AGENT_MAX_CANDS ? cap : AGENT_MAX_CANDS;
}

static void send_turn(struct episode *ep, struct agent *a);
static void run_calls(struct episode *ep, struct agent *a);

/* End the source (reason NULL: the current candidate is accepted). */
static void finish(struct episode *ep, const char *reason, const char *detail) {
  ep_end_round(ep, reason, detail, reason == NULL);
}

static void trajectory_add(struct agent *a, const struct llm_tool_call *c, const json_t *result) {
  json_array_append_new(a->trajectory,
                        json_pack("{s:i,s:o,s:o,s:o,s:O}", "turn", a->turn, "call_id",
                                  jx_string_lossy(c->id, strlen(c->id)), "tool",
                                  jx_string_lossy(c->name, strlen(c->name)), "arguments",
                                  jx_string_lossy(c->arguments, strlen(c->arguments)), "result",
                                  result));
}

/* The result of the current call goes to the model (and the trajectory); the next call
 * of the turn follows. result is taken. */
static void tool_done(struct episode *ep, struct agent *a, json_t *result) {
  const struct llm_tool_call *c = &a->calls[a->next_call];
  char *text = json_dumps(result, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_array_append_new(a->messages, llm_tool_message(c->id, text ? text : "{}"));
  free(text);
  trajectory_add(a, c, result);
  json_decref(result);
  a->next_call++;
  run_calls(ep, a);
}

static json_t *tool_error(const char *fmt, const char *x, const char *y) {
  char msg[700];
  snprintf(msg, sizeof msg, fmt, x ? x : "", y ? y : "");
  return json_pack("{s:o}", "error", jx_string_lossy(msg, strlen(msg)));
}

/* ---- arguments ---------------------------------------------------------------------------- */

/* The keys each tool takes ("n" is the only integer, "instructions" the only long text). */
static const char *const k_args[N_TOOLS][3] = {[T_GENERATE] = {"instructions", "n", NULL},
                                               [T_QUALITY] = {"id", NULL, NULL},
                                               [T_EVALUATE] = {"id", "solvers", NULL},
                                               [T_SUBMIT] = {"id", NULL, NULL},
                                               [T_GIVE_UP] = {"reason", NULL, NULL}};

/* Parse and check a call's arguments against its tool: the object, or NULL with *err a
 * tool error (new reference). */
static json_t *read_args(enum tool t, const char *text, json_t **err) {
  json_error_t je;
  json_t *o = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  char msg[600];
  if (!o) {
    snprintf(msg, sizeof msg,
             "the arguments are not valid JSON (%s at character %d); send one JSON object as "
             "the tool's parameters describe",
             je.text, je.position);
    *err = tool_error("%s", msg, NULL);
    return NULL;
  }
  if (!json_is_object(o)) {
    *err = tool_error("the arguments must be a JSON object, as the tool's parameters describe",
                      NULL, NULL);
    json_decref(o);
    return NULL;
  }
  const char *key;
  json_t *v;
  json_object_foreach(o, key, v) {
    int known = 0;
    for (int k = 0; k < 3 && k_args[t][k]; k++) known |= !strcmp(key, k_args[t][k]);
    if (!known) {
      snprintf(msg, sizeof msg,
               "unknown argument '%.60s' for %s: the tools cannot change prompts, sampling, "
               "solvers or bounds; %s takes only the parameters in its definition",
               key, k_tool_names[t], k_tool_names[t]);
      *err = tool_error("%s", msg, NULL);
      json_decref(o);
      return NULL;
    }
  }
  for (int k = 0; k < 3 && k_args[t][k]; k++) {
    const char *name = k_args[t][k];
    v = json_object_get(o, name);
    const char *bad = NULL;
    if (!strcmp(name, "n")) {
      if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > AGENT_MAX_N)
        bad = "an integer from 1 to 5";
    } else if (!strcmp(name, "solvers")) {
      const char *s = json_string_value(v);
      if (!s || (strcmp(s, "weak") && strcmp(s, "strong"))) bad = "\"weak\" or \"strong\"";
    } else if (!json_is_string(v) || !json_string_length(v)) {
      bad = "a non-empty string";
    } else if (json_string_length(v) > AGENT_MAX_INSTR) {
      bad = "a string of at most 4000 characters";
    }
    if (bad) {
      snprintf(msg, sizeof msg, "argument '%s' of %s must be %s", name, k_tool_names[t], bad);
      *err = tool_error("%s", msg, NULL);
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* The candidate an id names, or -1 with *err a tool error. */
static int find_cand(const struct agent *a, const char *id, json_t **err) {
  for (int i = 0; i < a->n_cands; i++)
    if (!strcmp(a->cands[i].id, id)) return i;
  char known[200] = "";
  size_t len = 0;
  for (int i = 0; i < a->n_cands && len + 8 < sizeof known; i++)
    len += (size_t)snprintf(known + len, sizeof known - len, "%s%s", i ? ", " : "", a->cands[i].id);
  *err = tool_error("unknown candidate id '%.40s'; the candidates so far: %s", id,
                    a->n_cands ? known : "none (call generate first)");
  return -1;
}

/* ---- generate ------------------------------------------------------------------------------ */

static void gen_next(struct episode *ep, struct agent *a) {
  a->cur = a->n_cands;
  ep_set_variant(ep, a->cur + 1); /* each candidate draws its own seeds */
  ep_set_instructions(ep, a->gen_instr);
  ep_challenge(ep);
}

static void gen_step_done(struct episode *ep, struct agent *a) {
  struct ep_failure f = ep_failure(ep);
  const struct cand *c = ep_cand(ep);
  struct acand *ac = &a->cands[a->n_cands++];
  memset(ac, 0, sizeof *ac);
  snprintf(ac->id, sizeof ac->id, "c%d", a->n_cands);
  if (f.reason) {
    snprintf(ac->why, sizeof ac->why, "%s", f.reason);
    ac->failed = ac->why;
  }
  json_t *entry = json_pack(
      "{s:s,s:s,s:o,s:o,s:o}", "id", ac->id, "status", f.reason ? "failed" : "ok", "reason",
      f.reason ? json_string(f.reason) : json_null(), "detail",
      f.reason && f.detail[0] ? jx_string_lossy(f.detail, strlen(f.detail)) : json_null(),
      "candidate", c ? cand_to_json(c) : json_null());
  json_array_append_new(json_object_get(a->result, "candidates"), entry);
  ac->slot = ep_slot_take(ep);
  if (--a->gen_left > 0) {
    gen_next(ep, a);
    return;
  }
  json_t *r = a->result;
  a->result = NULL;
  json_object_set_new(r, "candidates_left", json_integer(cand_cap(ep) - a->n_cands));
  tool_done(ep, a, r);
}

/* ---- the bounds, as evaluate and submit report them ------------------------------------------ */

/* Each bound with whether it holds (null while the solvers it needs have not run); *gate
 * "holds", "fails" or "pending"; *reason the first failing bound's rejection reason. */
static json_t *bounds_report(const struct accept_spec *acc, const struct accept_stats *st,
                             const int evaluated[2], const char **gate, const char **reason) {
  json_t *arr = json_array();
  int pending = 0, fails = 0;
  *reason = NULL;
  for (int i = 0; i < acc->n; i++) {
    const struct accept_bound *b = &acc->bounds[i];
    char text[128], failed[128];
    accept_bound_format(b, text, sizeof text);
    int have = b->group == ACC_WEAK     ? evaluated[0]
               : b->group == ACC_STRONG ? evaluated[1]
                                        : evaluated[0] && evaluated[1];
    json_t *holds = json_null();
    if (have) {
      struct accept_spec one = *acc;
      one.n = 1;
      one.bounds[0] = *b;
      const char *why = accept_evaluate(&one, st, failed, sizeof failed);
      holds = json_boolean(!why);
      if (why) {
        fails++;
        if (!*reason) *reason = why;
      }
    } else {
      pending++;
    }
    json_array_append_new(arr, json_pack("{s:s,s:o}", "bound", text, "holds", holds));
  }
  *gate = fails ? "fails" : pending ? "pending" : "holds";
  return arr;
}

static json_t *stats_of(const struct accept_stats *s, const int evaluated[2]) {
  json_t *o = json_object();
  if (evaluated[0])
    json_object_set_new(o, "weak",
                        json_pack("{s:f,s:f,s:f,s:f,s:i}", "mean", jx_round6(s->weak_mean), "std",
                                  jx_round6(s->weak_std), "min", jx_round6(s->weak_min), "max",
                                  jx_round6(s->weak_max), "correct", s->weak_correct));
  if (evaluated[1])
    json_object_set_new(o, "strong",
                        json_pack("{s:f,s:f,s:f,s:f,s:i}", "mean", jx_round6(s->strong_mean), "std",
                                  jx_round6(s->strong_std), "min", jx_round6(s->strong_min), "max",
                                  jx_round6(s->strong_max), "correct", s->strong_correct));
  if (evaluated[0] && evaluated[1]) json_object_set_new(o, "gap", json_real(jx_round6(s->gap)));
  return o;
}

/* ---- check_quality and evaluate ------------------------------------------------------------ */

static void quality_done(struct episode *ep, struct agent *a) {
  struct acand *ac = &a->cands[a->cur];
  struct ep_failure f = ep_failure(ep);
  const struct score_qv *qv = ep_qv(ep);
  json_t *r = json_pack("{s:s}", "id", ac->id);
  if (qv) {
    json_t *issues = json_array();
    for (int i = 0; i < qv->n_issues; i++)
      json_array_append_new(issues, json_string(qv->issues[i]));
    json_object_set_new(r, "pass", json_boolean(qv->pass));
    json_object_set_new(r, "issues", issues);
    json_object_set_new(r, "feedback", jx_string_lossy(qv->feedback, strlen(qv->feedback)));
  } else {
    json_object_set_new(r, "pass", json_boolean(!f.reason));
    if (!f.reason)
      json_object_set_new(r, "note", json_string("this recipe has no quality verifier"));
  }
  if (f.reason) {
    json_object_set_new(r, "reason", json_string(f.reason));
    snprintf(ac->why, sizeof ac->why, "%s", f.reason);
    ac->failed = ac->why;
    if (!qv) json_object_set_new(r, "detail", jx_string_lossy(f.detail, strlen(f.detail)));
  } else {
    ac->quality = 1;
  }
  ac->quality_result = json_incref(r);
  ac->slot = ep_slot_take(ep);
  tool_done(ep, a, r);
}

static void evaluate_done(struct episode *ep, struct agent *a, enum ep_state phase) {
  struct acand *ac = &a->cands[a->cur];
  int side = phase == EP_STRONG;
  struct ep_failure f = ep_failure(ep);
  ac->evaluated[side] = 1;
  json_t *r = json_pack("{s:s,s:s}", "id", ac->id, "solvers", side ? "strong" : "weak");
  int n;
  const struct ep_sample *s = ep_samples(ep, phase, &n);
  json_t *answers = json_array();
  for (int i = 0; i < n; i++) {
    json_t *e = json_pack("{s:i}", "sample", i);
    if (s[i].ok) json_object_set_new(e, "score", json_real(jx_round6(s[i].score)));
    else json_object_set_new(e, "error", json_string(s[i].error ? s[i].error : "no answer"));
    if (s[i].ok && s[i].met) {
      json_t *v = json_array();
      for (int k = 0; k < s[i].n_met; k++) json_array_append_new(v, json_boolean(s[i].met[k]));
      json_object_set_new(e, "criteria_met", v);
    }
    if (s[i].answer) {
      size_t len = strlen(s[i].answer);
      json_object_set_new(e, "excerpt",
                          jx_string_lossy(s[i].answer, len > AGENT_EXCERPT ? AGENT_EXCERPT : len));
    }
    json_array_append_new(answers, e);
  }
  json_object_set_new(r, "answers", answers);
  int planned = ep_samples_planned(ep, phase);
  if (n < planned) { /* early decisions (recipe evaluation:): the rest was never asked for */
    json_object_set_new(r, "stopped_early", json_true());
    json_object_set_new(r, "note",
                        json_sprintf("the gate's failure was certain after %d of %d "
                                     "answers; the others were not asked for",
                                     n, planned));
  }
  if (f.reason) { /* no answer could be judged: this candidate cannot be accepted */
    snprintf(ac->why, sizeof ac->why, "%s", f.reason);
    ac->failed = ac->why;
    json_object_set_new(r, "error", jx_string_lossy(f.detail, strlen(f.detail)));
  } else {
    const char *gate, *reason;
    json_object_set_new(r, "stats", stats_of(ep_stats(ep), ac->evaluated));
    json_object_set_new(
        r, "bounds",
        bounds_report(&ep_recipe(ep)->accept, ep_stats(ep), ac->evaluated, &gate, &reason));
    json_object_set_new(r, "gate", json_string(gate));
    json_object_set_new(r, "reason", reason ? json_string(reason) : json_null());
  }
  ac->slot = ep_slot_take(ep);
  tool_done(ep, a, r);
}

/* ---- carrying out one call ----------------------------------------------------------------- */

static int tool_of(const char *name) {
  for (int t = 0; t < N_TOOLS; t++)
    if (!strcmp(name, k_tool_names[t])) return t;
  return -1;
}

/* A candidate that failed earlier cannot go on: the error, or NULL. */
static json_t *blocked(const struct acand *ac, const char *what) {
  if (!ac->failed) return NULL;
  char msg[300];
  snprintf(msg, sizeof msg, "%s %s: it failed earlier (%s); generate another candidate", what,
           ac->id, ac->failed);
  return tool_error("%s", msg, NULL);
}

/* Carry out the current call. 1: a step is running (its end continues the turn); 0: its
 * result is in (tool_done was called and went on); -1: the source ended. */
static int start_tool(struct episode *ep, struct agent *a) {
  const struct llm_tool_call *c = &a->calls[a->next_call];
  int t = tool_of(c->name);
  json_t *err = NULL;
  if (t < 0) {
    err = tool_error(
        "unknown tool '%.64s'; the tools are generate, check_quality, evaluate, "
        "submit and give_up",
        c->name, NULL);
    tool_done(ep, a, err);
    return 0;
  }
  json_t *args = read_args((enum tool)t, c->arguments, &err);
  if (!args) {
    tool_done(ep, a, err);
    return 0;
  }
  int k = -1;
  if (t == T_QUALITY || t == T_EVALUATE || t == T_SUBMIT) {
    k = find_cand(a, jx_str(args, "id"), &err);
    if (k < 0) {
      json_decref(args);
      tool_done(ep, a, err);
      return 0;
    }
  }
  struct acand *ac = k >= 0 ? &a->cands[k] : NULL;
  a->cur = k;
  switch ((enum tool)t) {
  case T_GENERATE: {
    int n = (int)json_integer_value(json_object_get(args, "n"));
    int left = cand_cap(ep) - a->n_cands;
    if (left <= 0) {
      char msg[300];
      snprintf(msg, sizeof msg,
               "the candidate budget of this source is spent (%d candidates); evaluate or submit "
               "what you have, or give_up",
               cand_cap(ep));
      err = json_pack("{s:s,s:b}", "error", msg, "budget_spent", 1);
      json_decref(args);
      tool_done(ep, a, err);
      return 0;
    }
    a->gen_left = n < left ? n : left;
    xset_str(&a->gen_instr, jx_str(args, "instructions"));
    json_decref(args);
    a->result = json_pack("{s:[]}", "candidates");
    if (a->gen_left < n)
      json_object_set_new(a->result, "note",
                          json_string("fewer candidates than asked: the candidate budget"));
    gen_next(ep, a);
    return 1;
  }
  case T_QUALITY:
    json_decref(args);
    if ((err = blocked(ac, "check_quality"))) {
      tool_done(ep, a, err);
      return 0;
    }
    if (ac->quality_result) { /* asked before: the same verdict, no new call */
      tool_done(ep, a, json_deep_copy(ac->quality_result));
      return 0;
    }
    ep_slot_put(ep, ac->slot);
    ac->slot = NULL;
    ep_set_variant(ep, k + 1);
    ep_quality(ep);
    return 1;
  case T_EVALUATE: {
    int side = !strcmp(jx_str(args, "solvers"), "strong");
    json_decref(args);
    if ((err = blocked(ac, "evaluate"))) {
      tool_done(ep, a, err);
      return 0;
    }
    if (!ac->quality) {
      err = tool_error(
          "check_quality(%s) first: a candidate is evaluated only after the quality "
          "verifier passed it",
          ac->id, NULL);
      tool_done(ep, a, err);
      return 0;
    }
    if (ac->evaluated[side]) {
      err = tool_error(
          "%s was already evaluated on the %s solver; its samples are fixed (see "
          "that result)",
          ac->id, side ? "strong" : "weak");
      tool_done(ep, a, err);
      return 0;
    }
    ep_slot_put(ep, ac->slot);
    ac->slot = NULL;
    ep_set_variant(ep, k + 1);
    ep_solve(ep, side ? EP_STRONG : EP_WEAK, 0);
    return 1;
  }
  case T_SUBMIT: {
    json_decref(args);
    if ((err = blocked(ac, "submit"))) {
      json_object_set_new(err, "accepted", json_false());
      tool_done(ep, a, err);
      return 0;
    }
    json_t *missing = json_array();
    if (!ac->quality) json_array_append_new(missing, json_string("check_quality"));
    if (!ac->evaluated[0]) json_array_append_new(missing, json_string("evaluate weak"));
    if (!ac->evaluated[1]) json_array_append_new(missing, json_string("evaluate strong"));
    if (json_array_size(missing)) {
      char msg[200];
      snprintf(msg, sizeof msg,
               "%s cannot be submitted yet: the acceptance predicate needs the quality verdict "
               "and both solvers' evaluations",
               ac->id);
      tool_done(ep, a,
                json_pack("{s:s,s:b,s:s,s:o}", "id", ac->id, "accepted", 0, "error", msg, "missing",
                          missing));
      return 0;
    }
    json_decref(missing);
    ep_slot_put(ep, ac->slot);
    ac->slot = NULL;
    const char *gate, *reason;
    json_t *bounds = bounds_report(&ep_recipe(ep)->accept, ep_stats(ep), ac->evaluated, &gate,
                                   &reason);
    char failed[128];
    const char *verdict = accept_evaluate(&ep_recipe(ep)->accept, ep_stats(ep), failed,
                                          sizeof failed);
    if (!verdict) { /* the gate holds: this is the source's example */
      json_t *r = json_pack("{s:s,s:b}", "id", ac->id, "accepted", 1);
      trajectory_add(a, c, r);
      json_decref(r);
      json_decref(bounds);
      finish(ep, NULL, NULL);
      return -1;
    }
    json_t *failing = json_array();
    size_t i;
    json_t *b;
    json_array_foreach(bounds, i, b) if (json_is_false(json_object_get(b, "holds")))
        json_array_append_new(failing, json_incref(json_object_get(b, "bound")));
    json_decref(bounds);
    ac->slot = ep_slot_take(ep);
    snprintf(ac->why, sizeof ac->why, "submitted and refused: %s", verdict);
    ac->failed = ac->why;
    tool_done(ep, a,
              json_pack("{s:s,s:b,s:s,s:o}", "id", ac->id, "accepted", 0, "reason", verdict,
                        "failing_bounds", failing));
    return 0;
  }
  case T_GIVE_UP: {
    json_t *r = json_pack("{s:b}", "ended", 1);
    trajectory_add(a, c, r);
    json_decref(r);
    char detail[300];
    snprintf(detail, sizeof detail, "the agent gave up: %s", jx_str(args, "reason"));
    json_decref(args);
    finish(ep, "gave_up", detail);
    return -1;
  }
  default: break;
  }
  json_decref(args);
  return -1;
}

/* Carry out the turn's next call (each call's end, tool_done, comes back here), then send
 * the next turn. */
static void run_calls(struct episode *ep, struct agent *a) {
  if (a->next_call < a->n_calls) {
    int budget = ep_recipe(ep)->budgets.agent_steps;
    if (a->steps >= budget) {
      char detail[160];
      snprintf(detail, sizeof detail,
               "the agent used its %d tool calls (budgets.agent_steps) without an accepted "
               "submit",
               budget);
      finish(ep, "step_budget", detail);
      return;
    }
    a->steps++;
    start_tool(ep, a); /* a step runs, or its result is in and the turn went on, or the end */
    return;
  }
  llm_tool_calls_free(a->calls, a->n_calls);
  a->calls = NULL;
  a->n_calls = a->next_call = 0;
  send_turn(ep, a);
}

/* ---- turns ------------------------------------------------------------------------------------ */

static void send_turn(struct episode *ep, struct agent *a) {
  a->turn++;
  ep_set_variant(ep, 0);
  ep_converse(ep, a->messages, a->tools, a->turn);
}

static void text_only(struct episode *ep, struct agent *a, const struct ep_turn *t,
                      const char *problem) {
  size_t len = strlen(t->content);
  json_t *excerpt = jx_string_lossy(t->content, len > 300 ? 300 : len);
  json_array_append_new(a->trajectory, json_pack("{s:i,s:o,s:s}", "turn", a->turn, "text", excerpt,
                                                 "problem", problem));
  if (++a->reminders > 1) {
    char detail[400];
    snprintf(detail, sizeof detail, "two replies in a row without a usable tool call; last: %s",
             problem);
    finish(ep, "no_tool_call", detail);
    return;
  }
  json_array_append_new(a->messages, llm_assistant_message(t->content, NULL, 0));
  char msg[600];
  snprintf(msg, sizeof msg,
           "%s. You act only through the tools: generate, check_quality, evaluate, submit, "
           "give_up. Reply with a tool call.",
           problem);
  json_array_append_new(a->messages, json_pack("{s:s,s:o}", "role", "user", "content",
                                               jx_string_lossy(msg, strlen(msg))));
  send_turn(ep, a);
}

static void on_reply(struct episode *ep, struct agent *a) {
  struct ep_turn t = ep_turn(ep);
  if (!t.ok) {
    finish(ep, "error:orchestrator", t.error ? t.error : "the agent's call failed");
    return;
  }
  char err[300];
  struct llm_tool_call *calls;
  int n;
  if (llm_tool_calls_parse(t.tool_calls, &calls, &n, err, sizeof err)) {
    char problem[400];
    snprintf(problem, sizeof problem, "Your tool calls could not be read (%s)", err);
    text_only(ep, a, &t, problem);
    return;
  }
  if (n == 0) {
    const char *p = t.finish_reason && !strcmp(t.finish_reason, "length")
                        ? "Your reply was cut off at max_tokens before any tool call"
                        : "Your reply had no tool call";
    text_only(ep, a, &t, p);
    return;
  }
  a->reminders = 0;
  json_array_append_new(a->messages, llm_assistant_message(t.content, calls, n));
  a->calls = calls;
  a->n_calls = n;
  a->next_call = 0;
  run_calls(ep, a);
}

static void agent_next(struct episode *ep, enum ep_state done) {
  struct agent *a = ep_method_state(ep);
  char err[512];
  switch (done) {
  case EP_IDLE:
    a->messages = ep_orchestrator_messages(ep, err, sizeof err);
    if (!a->messages) {
      finish(ep, "error:orchestrator", err);
      return;
    }
    a->tools = agent_tools();
    a->trajectory = json_array();
    a->cur = -1;
    send_turn(ep, a);
    return;
  case EP_ORCHESTRATE: on_reply(ep, a); return;
  case EP_CHALLENGE: gen_step_done(ep, a); return;
  case EP_QUALITY: quality_done(ep, a); return;
  case EP_WEAK:
  case EP_STRONG: evaluate_done(ep, a, done); return;
  default: finish(ep, "error:internal", ep_state_name(done)); return;
  }
}

/* The conversation's record: its trajectory and what became of each candidate. */
static void agent_annotate(struct episode *ep, const char *reason, const char *detail,
                           json_t *cand_rec, json_t *example) {
  (void)reason;
  (void)detail;
  (void)example;
  struct agent *a = ep_method_state(ep);
  json_t *cands = json_array();
  for (int i = 0; i < a->n_cands; i++) {
    const struct acand *ac = &a->cands[i];
    json_array_append_new(cands, json_pack("{s:s,s:o,s:b,s:b,s:b}", "id", ac->id, "failed",
                                           ac->failed ? json_string(ac->failed) : json_null(),
                                           "quality_passed", ac->quality, "weak_evaluated",
                                           ac->evaluated[0], "strong_evaluated", ac->evaluated[1]));
  }
  json_object_set_new(cand_rec, "agent",
                      json_pack("{s:i,s:i,s:o,s:o}", "turns", a->turn, "tool_calls", a->steps,
                                "candidates", cands, "trajectory",
                                a->trajectory ? json_incref(a->trajectory) : json_array()));
}

const struct method_ops method_agent = {
    .name = "agent",
    .challenger_schema = 1,
    .uses_orchestrator = 1,
    .orchestrator_prompt = "agent",
    .max_rounds = 1,
    .state_size = sizeof(struct agent),
    .reset = agent_reset,
    .identity = agent_identity,
    .next = agent_next,
    .annotate = agent_annotate,
};
