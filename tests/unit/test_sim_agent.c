/* test_sim_agent.c - the tool-calling sim models (src/sim/world_agent.c) through the sim
 * backend: the OpenAI tool_calls shape, the refusal of tools by other models, sim-agent's
 * policy reading the tool results, sim-hostile's script, and their parameters. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llm/llm.h"
#include "sim/sim.h"
#include "sim/world.h"
#include "util/jsonx.h"

#define TOOLS "[{\"type\":\"function\",\"function\":{\"name\":\"generate\",\"parameters\":{}}}]"

/* POST a request body (messages, a model and the tools) to the sim; the reply as JSON. */
static json_t *post(const char *model, json_t *messages, int *status) {
  json_t *req = json_pack("{s:s,s:O,s:o,s:s,s:i}", "model", model, "messages", messages, "tools",
                          json_loads(TOOLS, 0, NULL), "tool_choice", "auto", "seed", 3);
  char *body = json_dumps(req, JSON_COMPACT);
  struct sim_response r;
  sim_handle("POST", "/v1/chat/completions", body, strlen(body), &r);
  *status = r.status;
  json_t *v = json_loadb(r.body, r.len, 0, NULL);
  cr_assert_not_null(v, "%s", r.body);
  sim_response_release(&r);
  free(body);
  json_decref(req);
  return v;
}

static json_t *start_messages(void) {
  return json_pack("[{s:s,s:s},{s:s,s:s}]", "role", "system", "content", "You are the agent.",
                   "role", "user", "content", "SOURCE TITLE: x. Start with generate.");
}

/* The reply's tool calls, parsed as the program parses them. */
static struct llm_tool_call *calls_of(json_t *reply, int *n) {
  const json_t *msg = json_object_get(json_array_get(json_object_get(reply, "choices"), 0),
                                      "message");
  struct llm_tool_call *c;
  char err[256];
  cr_assert_eq(llm_tool_calls_parse(json_object_get(msg, "tool_calls"), &c, n, err, sizeof err), 0,
               "%s", err);
  return c;
}

/* Append the assistant turn of reply and one tool result per call (results[i]). */
static void answer(json_t *msgs, json_t *reply, const char *const *results) {
  int n;
  struct llm_tool_call *c = calls_of(reply, &n);
  json_array_append_new(msgs, llm_assistant_message("", c, n));
  for (int i = 0; i < n; i++) json_array_append_new(msgs, llm_tool_message(c[i].id, results[i]));
  llm_tool_calls_free(c, n);
}

/* The first call of the next turn: name and arguments (owned). */
static char *next_call(json_t *msgs, char **args) {
  int st, n;
  json_t *r = post("sim-agent", msgs, &st);
  cr_assert_eq(st, 200);
  struct llm_tool_call *c = calls_of(r, &n);
  cr_assert_geq(n, 1);
  char *name = strdup(c[0].name);
  *args = strdup(c[0].arguments);
  llm_tool_calls_free(c, n);
  json_decref(r);
  return name;
}

Test(sim_agent, tool_call_shape_and_determinism) {
  json_t *msgs = start_messages();
  int st, st2;
  json_t *r = post("sim-agent", msgs, &st), *r2 = post("sim-agent", msgs, &st2);
  cr_assert_eq(st, 200);
  cr_assert(json_equal(r, r2), "the same request gets the same reply");
  const json_t *c0 = json_array_get(json_object_get(r, "choices"), 0);
  cr_assert_str_eq(jx_str(c0, "finish_reason"), "tool_calls");
  const json_t *msg = json_object_get(c0, "message");
  cr_assert(json_is_null(json_object_get(msg, "content")));
  int n;
  struct llm_tool_call *c = calls_of(r, &n);
  cr_assert_eq(n, 1);
  cr_assert_str_eq(c[0].name, "generate");
  cr_assert_str_eq(c[0].id, "call_0_0");
  json_t *args = json_loads(c[0].arguments, 0, NULL);
  cr_assert_eq(jx_int(args, "n", 0), 2);
  cr_assert(strstr(jx_str(args, "instructions"), "target difficulty around 0.50"));
  json_decref(args);
  llm_tool_calls_free(c, n);
  json_decref(r);
  json_decref(r2);
  json_decref(msgs);
}

Test(sim_agent, other_models_refuse_tools) {
  json_t *msgs = start_messages();
  int st;
  json_t *r = post("sim-orchestrator", msgs, &st);
  cr_assert_eq(st, 400);
  const char *m = jx_str(json_object_get(r, "error"), "message");
  cr_assert(m && strstr(m, "does not support tools"), "%s", m);
  cr_assert(llm_error_about_tools(m));
  json_decref(r);
  json_decref(msgs);
}

Test(sim_agent, policy_follows_the_tool_results) {
  json_t *msgs = start_messages();
  int st;
  char *args, *name;
  json_t *r = post("sim-agent", msgs, &st);
  const char *gen[] = {
      "{\"candidates\":[{\"id\":\"c1\",\"status\":\"ok\"},"
      "{\"id\":\"c2\",\"status\":\"failed\",\"reason\":\"check:leakage\"}]}"};
  answer(msgs, r, gen);
  json_decref(r);
  name = next_call(msgs, &args);
  cr_assert_str_eq(name, "check_quality", "only the candidate that passed its checks");
  cr_assert_str_eq(args, "{\"id\":\"c1\"}");
  free(name), free(args);

  /* what happens next depends on the verdict */
  json_t *fail = json_deep_copy(msgs);
  r = post("sim-agent", msgs, &st);
  const char *pass[] = {"{\"id\":\"c1\",\"pass\":true}"},
             *no[] = {"{\"id\":\"c1\",\"pass\":false}"};
  answer(msgs, r, pass);
  answer(fail, r, no);
  json_decref(r);
  name = next_call(msgs, &args);
  cr_assert_str_eq(name, "evaluate");
  cr_assert_str_eq(args, "{\"id\":\"c1\",\"solvers\":\"weak\"}");
  free(name), free(args);
  name = next_call(fail, &args);
  cr_assert_str_eq(name, "generate", "a failed verdict: new candidates at the same target");
  cr_assert(strstr(args, "target difficulty around 0.50"), "%s", args);
  free(name), free(args);
  json_decref(fail);

  /* the weak evaluation: too easy moves the target up, a pending gate goes on to strong */
  json_t *easy = json_deep_copy(msgs);
  r = post("sim-agent", msgs, &st);
  const char *pending[] = {"{\"id\":\"c1\",\"gate\":\"pending\",\"reason\":null}"};
  const char *too_easy[] = {"{\"id\":\"c1\",\"gate\":\"fails\",\"reason\":\"too_easy\"}"};
  answer(msgs, r, pending);
  answer(easy, r, too_easy);
  json_decref(r);
  name = next_call(easy, &args);
  cr_assert_str_eq(name, "generate");
  cr_assert(strstr(args, "target difficulty around 0.65"), "%s", args);
  free(name), free(args);
  json_decref(easy);
  name = next_call(msgs, &args);
  cr_assert_str_eq(name, "evaluate");
  cr_assert_str_eq(args, "{\"id\":\"c1\",\"solvers\":\"strong\"}");
  free(name), free(args);

  /* the gate holds: submit */
  r = post("sim-agent", msgs, &st);
  const char *holds[] = {"{\"id\":\"c1\",\"gate\":\"holds\"}"};
  answer(msgs, r, holds);
  json_decref(r);
  name = next_call(msgs, &args);
  cr_assert_str_eq(name, "submit");
  cr_assert_str_eq(args, "{\"id\":\"c1\"}");
  free(name), free(args);
  json_decref(msgs);
}

Test(sim_agent, hostile_script_and_parameters) {
  json_t *msgs = start_messages();
  int st, n;
  json_t *r = post("sim-hostile@script=badjson:text", msgs, &st);
  cr_assert_eq(st, 200);
  struct llm_tool_call *c = calls_of(r, &n);
  cr_assert_eq(n, 1);
  cr_assert_null(json_loads(c[0].arguments, 0, NULL), "malformed arguments on purpose");
  llm_tool_calls_free(c, n);
  const char *res[] = {"{\"error\":\"not JSON\"}"};
  answer(msgs, r, res);
  json_decref(r);
  r = post("sim-hostile@script=badjson:text", msgs, &st);
  const json_t *msg = json_object_get(json_array_get(json_object_get(r, "choices"), 0), "message");
  cr_assert_null(json_object_get(msg, "tool_calls"), "step 2 is a text-only reply");
  cr_assert(json_string_length(json_object_get(msg, "content")) > 0);
  json_decref(r);
  /* bad parameters are a 400 naming them */
  r = post("sim-hostile@script=gen:launch", msgs, &st);
  cr_assert_eq(st, 400);
  cr_assert(strstr(jx_str(json_object_get(r, "error"), "message"), "'launch'"));
  json_decref(r);
  r = post("sim-agent@n=9", msgs, &st);
  cr_assert_eq(st, 400);
  json_decref(r);
  json_decref(msgs);
  json_t *p = NULL;
  char err[256];
  cr_assert_eq(sim_world_params("sim-agent@n=3", &p, err, sizeof err), 1, "%s", err);
  cr_assert_eq(jx_int(p, "n", 0), 3);
  cr_assert_float_eq(jx_num(p, "prior", 0), 0.5, 1e-9);
  json_decref(p);
}
