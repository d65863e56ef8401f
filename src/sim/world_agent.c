/* world_agent.c - the sim world's tool-calling models: sim-agent and sim-hostile
 * (world_agent.h; the policy is documented in docs/sim.md, "sim-agent").
 *
 * sim-agent rebuilds what it knows from the conversation on every turn (a sim model keeps
 * no state): the candidates the generate results listed, and what check_quality,
 * evaluate and submit said about each. Its decisions depend only on those tool results
 * and on its own earlier instructions; it never sees a fact's difficulty, the solvers'
 * skills or the gate's thresholds except as the tool results report them.
 */
#include "sim/world_agent.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/err.h"
#include "util/jsonx.h"
#include "util/mem.h"

#define AGENT_N 2       /* candidates asked for per generate call */
#define AGENT_PRIOR 0.5 /* the first target difficulty */
#define AGENT_MAX_CANDS 64
#define AGENT_MAX_EVAL 2 /* evaluate / check_quality calls in one turn */
#define STEP_TOO_EASY 0.15
#define STEP_TOO_HARD -0.10
#define STEP_FAILED_STRONG -0.10
#define STEP_NO_GAP 0.05
#define TARGET_LO 0.05
#define TARGET_HI 0.95
#define HOSTILE_MAX_STEPS 32

enum amodel { A_NONE = 0, A_AGENT, A_HOSTILE };

static const char *const k_steps[] = {"gen",     "unknown", "badjson", "badargs", "badid",
                                      "quality", "weak",    "strong",  "submit",  "text",
                                      "giveup",  "multi",   "noid",    NULL};

struct apar {
  int n;
  double prior;
  int steps[HOSTILE_MAX_STEPS];
  int n_steps;
};

static int step_index(const char *s, size_t len) {
  for (int i = 0; k_steps[i]; i++)
    if (strlen(k_steps[i]) == len && !strncmp(k_steps[i], s, len)) return i;
  return -1;
}

static int parse_script(const char *model, const char *s, size_t len, struct apar *p, char *err,
                        size_t errlen) {
  p->n_steps = 0;
  size_t i = 0;
  while (i < len) {
    size_t k = i;
    while (k < len && s[k] != ':') k++;
    int st = step_index(s + i, k - i);
    if (st < 0 || p->n_steps == HOSTILE_MAX_STEPS) {
      ad_set_err(err, errlen,
                 "model '%s': script step '%.*s' is not one of gen, unknown, badjson, badargs, "
                 "badid, quality, weak, strong, submit, text, giveup, multi, noid (at most %d "
                 "steps)",
                 model, (int)(k - i), s + i, HOSTILE_MAX_STEPS);
      return AD_EINVAL;
    }
    p->steps[p->n_steps++] = st;
    i = k + 1;
  }
  if (!p->n_steps) {
    ad_set_err(err, errlen, "model '%s': the script is empty", model);
    return AD_EINVAL;
  }
  return 0;
}

/* The model a name selects, with its parameters in *p: A_* or AD_EINVAL. */
static int classify(const char *model, struct apar *p, char *err, size_t errlen) {
  memset(p, 0, sizeof *p);
  p->n = AGENT_N;
  p->prior = AGENT_PRIOR;
  int kind;
  const char *rest;
  if (!strncmp(model, "sim-agent", 9) && (!model[9] || model[9] == '@')) {
    kind = A_AGENT;
    rest = model + 9;
  } else if (!strncmp(model, "sim-hostile", 11) && (!model[11] || model[11] == '@')) {
    kind = A_HOSTILE;
    rest = model + 11;
  } else {
    return A_NONE;
  }
  if (*rest == '@') rest++;
  while (*rest) {
    size_t len = strcspn(rest, ",");
    const char *eq = memchr(rest, '=', len);
    size_t kl = eq ? (size_t)(eq - rest) : len;
    const char *v = eq ? eq + 1 : "";
    size_t vl = eq ? len - kl - 1 : 0;
    char num[32];
    snprintf(num, sizeof num, "%.*s", (int)(vl < 31 ? vl : 31), v);
    char *end;
    double x = strtod(num, &end);
    int ok_num = vl > 0 && vl < 31 && !*end;
    if (kind == A_AGENT && kl == 1 && !strncmp(rest, "n", 1) && ok_num && x >= 1 && x <= 5 &&
        x == (int)x) {
      p->n = (int)x;
    } else if (kind == A_AGENT && kl == 5 && !strncmp(rest, "prior", 5) && ok_num && x >= 0 &&
               x <= 1) {
      p->prior = x;
    } else if (kind == A_HOSTILE && kl == 6 && !strncmp(rest, "script", 6)) {
      int rc = parse_script(model, v, vl, p, err, errlen);
      if (rc) return rc;
    } else {
      ad_set_err(err, errlen,
                 "model '%s': bad world parameter '%.*s' (sim-agent takes n=1..5 and "
                 "prior=0..1, sim-hostile takes script=STEP:STEP...; see docs/sim.md)",
                 model, (int)len, rest);
      return AD_EINVAL;
    }
    rest += len;
    if (*rest == ',') rest++;
  }
  if (kind == A_HOSTILE && !p->n_steps) {
    ad_set_err(err, errlen, "model '%s': sim-hostile needs script=STEP:STEP... (docs/sim.md)",
               model);
    return AD_EINVAL;
  }
  return kind;
}

int sim_agent_model(const char *model) {
  if (!model) return 0;
  return (!strncmp(model, "sim-agent", 9) && (!model[9] || model[9] == '@')) ||
         (!strncmp(model, "sim-hostile", 11) && (!model[11] || model[11] == '@'));
}

int sim_agent_params(const char *model, json_t **params, char *err, size_t errlen) {
  *params = NULL;
  struct apar p;
  int kind = classify(model ? model : "", &p, err, errlen);
  if (kind <= 0) return kind;
  if (kind == A_AGENT) {
    *params = json_pack("{s:i,s:f}", "n", p.n, "prior", p.prior);
  } else {
    json_t *s = json_array();
    for (int i = 0; i < p.n_steps; i++) json_array_append_new(s, json_string(k_steps[p.steps[i]]));
    *params = json_pack("{s:o}", "script", s);
  }
  return 1;
}

/* ---- what the conversation says ----------------------------------------------------- */

enum cstate { C_NEW = 0, C_QOK, C_WEAK_OK, C_READY, C_DEAD };

struct convo {
  char ids[AGENT_MAX_CANDS][16];
  enum cstate st[AGENT_MAX_CANDS];
  int n;
  int turns;        /* assistant messages so far */
  double target;    /* the target of the next generate call */
  int budget_spent; /* a generate call was refused: no candidates left */
  int results;      /* tool results read */
};

static int cand_find(const struct convo *c, const char *id) {
  for (int i = 0; id && i < c->n; i++)
    if (!strcmp(c->ids[i], id)) return i;
  return -1;
}

static double clampt(double t) { return t < TARGET_LO ? TARGET_LO : t > TARGET_HI ? TARGET_HI : t; }

/* A rejected evaluation moves the target: too easy up, too hard or failing on the strong
 * solver down, no gap slightly up. */
static void learn(struct convo *c, const char *reason) {
  if (!reason) return;
  if (!strcmp(reason, "too_easy")) c->target = clampt(c->target + STEP_TOO_EASY);
  else if (!strcmp(reason, "too_hard")) c->target = clampt(c->target + STEP_TOO_HARD);
  else if (!strcmp(reason, "failed_on_strong")) c->target = clampt(c->target + STEP_FAILED_STRONG);
  else if (!strcmp(reason, "no_gap")) c->target = clampt(c->target + STEP_NO_GAP);
}

/* One tool result (content parsed as JSON) of the call named `name`. */
static void read_result(struct convo *c, const char *name, const json_t *res) {
  c->results++;
  const char *err = jx_str(res, "error");
  const char *id = jx_str(res, "id");
  int k = cand_find(c, id);
  if (!strcmp(name, "generate")) {
    if (err && strstr(err, "budget")) c->budget_spent = 1;
    size_t i;
    const json_t *cd;
    json_array_foreach(json_object_get(res, "candidates"), i, cd) {
      const char *cid = jx_str(cd, "id");
      if (!cid || strlen(cid) >= sizeof c->ids[0] || c->n == AGENT_MAX_CANDS ||
          cand_find(c, cid) >= 0)
        continue;
      snprintf(c->ids[c->n], sizeof c->ids[0], "%s", cid);
      const char *status = jx_str(cd, "status");
      c->st[c->n++] = status && !strcmp(status, "ok") ? C_NEW : C_DEAD;
    }
    if (json_is_true(json_object_get(res, "budget_spent"))) c->budget_spent = 1;
    return;
  }
  if (k < 0 || err) return; /* an error about a call: the policy simply goes on */
  if (!strcmp(name, "check_quality")) {
    if (c->st[k] == C_NEW) c->st[k] = json_is_true(json_object_get(res, "pass")) ? C_QOK : C_DEAD;
  } else if (!strcmp(name, "evaluate")) {
    const char *gate = jx_str(res, "gate");
    if (gate && !strcmp(gate, "fails")) {
      if (c->st[k] != C_DEAD) learn(c, jx_str(res, "reason"));
      c->st[k] = C_DEAD;
    } else if (gate && !strcmp(gate, "holds")) {
      c->st[k] = C_READY;
    } else if (c->st[k] == C_QOK) {
      c->st[k] = C_WEAK_OK;
    }
  } else if (!strcmp(name, "submit")) {
    if (json_is_false(json_object_get(res, "accepted"))) {
      if (c->st[k] != C_DEAD) learn(c, jx_str(res, "reason"));
      c->st[k] = C_DEAD;
    }
  }
}

static void read_convo(const json_t *msgs, double prior, struct convo *c) {
  memset(c, 0, sizeof *c);
  c->target = prior;
  json_t *calls = json_object(); /* call id -> function name */
  size_t i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    const char *role = jx_str(m, "role");
    if (!role) continue;
    if (!strcmp(role, "assistant")) {
      c->turns++;
      size_t k;
      const json_t *tc;
      json_array_foreach(json_object_get(m, "tool_calls"), k, tc) {
        const json_t *fn = json_object_get(tc, "function");
        const char *id = jx_str(tc, "id"), *name = jx_str(fn, "name");
        if (id && name) json_object_set_new(calls, id, json_string(name));
      }
    } else if (!strcmp(role, "tool")) {
      const char *name = json_string_value(json_object_get(calls, jx_str(m, "tool_call_id")));
      const char *text = jx_str(m, "content");
      json_t *res = text ? json_loads(text, 0, NULL) : NULL;
      if (name && json_is_object(res)) read_result(c, name, res);
      json_decref(res);
    }
  }
  json_decref(calls);
}

/* ---- replies -------------------------------------------------------------------------- */

static void add_call(json_t *calls, int turn, const char *name, const char *args) {
  char id[48];
  snprintf(id, sizeof id, "call_%d_%zu", turn, json_array_size(calls));
  json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id, "type", "function",
                                         "function", "name", name, "arguments", args));
}

static void add_call_json(json_t *calls, int turn, const char *name, json_t *args) {
  char *a = json_dumps(args, JSON_COMPACT | JSON_SORT_KEYS);
  add_call(calls, turn, name, a ? a : "{}");
  free(a);
  json_decref(args);
}

static void add_id_call(json_t *calls, int turn, const char *name, const char *id,
                        const char *solvers) {
  json_t *a = json_pack("{s:s}", "id", id);
  if (solvers) json_object_set_new(a, "solvers", json_string(solvers));
  add_call_json(calls, turn, name, a);
}

/* The documented policy (docs/sim.md): submit what holds, then carry the most advanced
 * candidates one step further, then generate towards the target the results suggest. */
static void agent_policy(const struct convo *c, const struct apar *p, json_t *calls) {
  int t = c->turns;
  for (int i = 0; i < c->n; i++)
    if (c->st[i] == C_READY) {
      add_id_call(calls, t, "submit", c->ids[i], NULL);
      return;
    }
  for (int i = 0; i < c->n; i++)
    if (c->st[i] == C_WEAK_OK) {
      add_id_call(calls, t, "evaluate", c->ids[i], "strong");
      return;
    }
  for (int i = 0; i < c->n && json_array_size(calls) < AGENT_MAX_EVAL; i++)
    if (c->st[i] == C_QOK) add_id_call(calls, t, "evaluate", c->ids[i], "weak");
  if (json_array_size(calls)) return;
  for (int i = 0; i < c->n && json_array_size(calls) < AGENT_MAX_EVAL; i++)
    if (c->st[i] == C_NEW) add_id_call(calls, t, "check_quality", c->ids[i], NULL);
  if (json_array_size(calls)) return;
  if (c->budget_spent) {
    add_call_json(calls, t, "give_up",
                  json_pack("{s:s}", "reason", "no candidates left and none holds the gate"));
    return;
  }
  char ins[512];
  snprintf(ins, sizeof ins,
           "Write one question that only this source can answer, target difficulty around %.2f "
           "(0 = trivial for any model, 1 = beyond the strong solver), mixing one anchor fact "
           "with harder ones. Keep the answer out of the context; one test per criterion.",
           c->target);
  add_call_json(calls, t, "generate", json_pack("{s:s,s:i}", "instructions", ins, "n", p->n));
}

/* sim-hostile: step `turns` of the script (the last one repeats). Returns the text of a
 * text-only reply, or NULL when calls were added. */
static const char *hostile_step(const struct convo *c, const struct apar *p, json_t *calls,
                                json_t *first_id_holder) {
  int t = c->turns;
  int st = p->steps[t < p->n_steps ? t : p->n_steps - 1];
  const char *first = json_string_value(first_id_holder);
  const char *name = k_steps[st];
  if (!strcmp(name, "gen"))
    add_call_json(
        calls, t, "generate",
        json_pack("{s:s,s:i}", "instructions", "Write a question about the source.", "n", 1));
  else if (!strcmp(name, "unknown")) add_call(calls, t, "drop_bounds", "{\"bound\":\"weak_mean\"}");
  else if (!strcmp(name, "badjson"))
    add_call(calls, t, "generate", "{\"instructions\": \"x\", \"n\": ");
  else if (!strcmp(name, "badargs"))
    add_call(calls, t, "generate", "{\"instructions\": 7, \"n\": 9, \"samples\": 100}");
  else if (!strcmp(name, "badid")) add_id_call(calls, t, "check_quality", "c999", NULL);
  else if (!strcmp(name, "quality")) add_id_call(calls, t, "check_quality", first, NULL);
  else if (!strcmp(name, "weak")) add_id_call(calls, t, "evaluate", first, "weak");
  else if (!strcmp(name, "strong")) add_id_call(calls, t, "evaluate", first, "strong");
  else if (!strcmp(name, "submit")) add_id_call(calls, t, "submit", first, NULL);
  else if (!strcmp(name, "giveup"))
    add_call_json(calls, t, "give_up", json_pack("{s:s}", "reason", "scripted give-up"));
  else if (!strcmp(name, "multi")) {
    add_call(calls, t, "drop_bounds", "{}");
    add_id_call(calls, t, "check_quality", "c999", NULL);
  } else if (!strcmp(name, "noid"))
    json_array_append_new(calls, json_pack("{s:s,s:{s:s,s:s}}", "type", "function", "function",
                                           "name", "submit", "arguments", "{}"));
  else return "I have looked at the source and I think the question is fine as it is.";
  return NULL;
}

static size_t messages_chars(const json_t *msgs) {
  size_t n = 0, i;
  const json_t *m;
  json_array_foreach(msgs, i, m) {
    const char *s = jx_str(m, "content");
    if (s) n += strlen(s);
  }
  return n;
}

int sim_agent_answer(const json_t *request, char **content, json_t **tool_calls,
                     int64_t *prompt_tokens, int64_t *completion_tokens, char *err, size_t errlen) {
  *content = NULL;
  *tool_calls = NULL;
  const char *model = jx_str(request, "model");
  if (!model) return 0;
  struct apar p;
  int kind = classify(model, &p, err, errlen);
  if (kind <= 0) return kind;
  const json_t *msgs = json_object_get(request, "messages");
  if (!json_is_array(msgs)) {
    ad_set_err(err, errlen, "request for model '%s' has no 'messages' array", model);
    return AD_EINVAL;
  }
  struct convo c;
  read_convo(msgs, p.prior, &c);
  json_t *calls = json_array();
  const char *text = NULL;
  if (kind == A_AGENT) {
    agent_policy(&c, &p, calls);
  } else {
    json_t *first = json_string(c.n ? c.ids[0] : "c1");
    text = hostile_step(&c, &p, calls, first);
    json_decref(first);
  }
  size_t out_chars = text ? strlen(text) : 0;
  if (json_array_size(calls)) {
    char *dump = json_dumps(calls, JSON_COMPACT);
    out_chars += dump ? strlen(dump) : 0;
    free(dump);
    *tool_calls = calls;
  } else {
    json_decref(calls);
  }
  *content = xstrdup(text ? text : "");
  size_t in = messages_chars(msgs);
  *prompt_tokens = in / 4 > 0 ? (int64_t)(in / 4) : 1;
  *completion_tokens = out_chars / 4 > 0 ? (int64_t)(out_chars / 4) : 1;
  return 1;
}
