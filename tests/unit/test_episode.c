/* test_episode.c - the episode state machine (src/loop/episode.c and the methods), driven
 * through its environment by scripted model replies: no HTTP, no sim world, no store.
 *
 * The fake environment queues every call the episode submits; the test loop answers the
 * oldest one from a script (per call label and sample) until the episode ends, and the
 * records it receives are kept for the assertions. Every verdict reason is covered, and
 * the failure paths: the repair turn, the short-circuit, calls that fail or are set aside,
 * a budget that refuses calls mid-phase, a run that stops, a store that refuses a record. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "eval/feedback.h"
#include "loop/episode.h"
#include "loop/method.h"
#include "recipe/recipe.h"
#include "source/source.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"

/* ---- the scripted world --------------------------------------------------------------- */

#define MAXQ 256
#define MAXR 16

struct qcall {
  int tag;
  char label[32];
  int sample, round;
  json_t *body;
};

struct rec {
  char *reason;
  json_t *cand, *example;
  int round, finished, accepted;
};

struct fake {
  struct qcall q[MAXQ];
  int head, tail;
  /* what happened */
  struct rec recs[MAXR];
  int n_recs;
  int calls;      /* submitted */
  char log[4096]; /* labels in submission order, space-separated */
  json_t *bodies; /* label -> array of request bodies */
  /* knobs */
  int refuse_from;           /* submit refuses the call numbered >= this (1-based); 0 = never */
  int stop_after_record;     /* stopping() is true once this many rounds are recorded */
  int record_fails;          /* record() fails */
  int no_schema;             /* schema_ok() says no */
  const char *challenger[8]; /* replies to challenger calls in order (NULL: a valid candidate) */
  int n_chal;
  int chal_dup;                                     /* every candidate asks the same question */
  const char *quality;                              /* the quality verifier's reply (NULL: pass) */
  int weak_met[64], strong_met[64], filter_met[64]; /* criteria met (of 2) per sample */
  int weak_ok[64], strong_ok[64], filter_ok[64];    /* verifiable: answer correct */
  const char *fail_label;   /* calls with this label fail (a request error) */
  int fail_sample;          /* ... only this sample (-1: all) */
  const char *aside_label;  /* calls with this label are set aside (infrastructure) */
  int aside_sample;         /* ... only this sample (-1: all) */
  const char *orchestrator; /* its reply (NULL: "Try a harder angle.") */
  const char *extractor;    /* the extractor's reply (NULL: suitable, with an extraction) */
  const char *loop_judge;   /* the loop judge's reply (NULL: accept) */
  const char *cut_label;    /* replies to calls with this label end with finish_reason "length" */
  const char *bad_judge;    /* this judge reply (e.g. skipping a criterion) to judge calls... */
  int bad_judge_repairs;    /* ... and to their repair turns too */
  const char *bad_batch;    /* this reply to batched judge calls (and, with bad_judge_repairs,
                               to their repair turns) */
};

static int fake_submit(void *data, struct episode *ep, const struct ep_call *c) {
  (void)ep;
  struct fake *f = data;
  f->calls++;
  if (f->refuse_from && f->calls >= f->refuse_from) {
    json_decref(c->body);
    return AD_EBUDGET;
  }
  cr_assert_lt(f->tail, MAXQ);
  struct qcall *q = &f->q[f->tail++];
  q->tag = c->tag;
  snprintf(q->label, sizeof q->label, "%s", c->label);
  q->sample = c->sample;
  q->round = c->round;
  q->body = c->body;
  size_t n = strlen(f->log);
  snprintf(f->log + n, sizeof f->log - n, "%s%s", n ? " " : "", c->label);
  json_t *arr = json_object_get(f->bodies, c->label);
  if (!arr) {
    arr = json_array();
    json_object_set_new(f->bodies, c->label, arr);
  }
  json_array_append(arr, c->body);
  return 0;
}

static int64_t fake_seed(void *data, const char *source_id, int round, const char *label,
                         int sample) {
  (void)data;
  return (int64_t)(strlen(source_id) * 1000 + (size_t)round * 100 + strlen(label) * 10 +
                   (size_t)sample);
}

static int fake_schema_ok(void *data, enum recipe_role_id role) {
  (void)role;
  return !((struct fake *)data)->no_schema;
}

static int fake_record(void *data, const struct ep_round_end *e) {
  struct fake *f = data;
  cr_assert_lt(f->n_recs, MAXR);
  struct rec *r = &f->recs[f->n_recs++];
  r->reason = xstrdup(e->reason);
  r->cand = json_deep_copy(e->cand_record);
  r->example = e->example ? json_deep_copy(e->example) : NULL;
  r->round = e->round;
  r->finished = e->finished;
  r->accepted = e->accepted;
  if (e->example) cr_assert_not_null(e->example_id);
  return f->record_fails ? AD_EIO : 0;
}

static int fake_stopping(void *data) {
  struct fake *f = data;
  return f->stop_after_record && f->n_recs >= f->stop_after_record;
}

static const char *user_content(const json_t *body) {
  json_t *msgs = json_object_get(body, "messages");
  return jx_str(json_array_get(msgs, json_array_size(msgs) - 1), "content");
}

static char g_reply[4096];

/* A valid rubric candidate; its question is unique per call unless chal_dup. */
static const char *candidate(struct fake *f, int i) {
  snprintf(g_reply, sizeof g_reply,
           "{\"question_type\":\"analysis\",\"context\":\"The study measures how reefs recover "
           "after storms.\",\"question\":\"Why do reefs recover %s?\",\"reference_answer\":"
           "\"Because larvae settle quickly.\",\"rubric\":[{\"criterion\":\"Names larval "
           "settlement\",\"weight\":3},{\"criterion\":\"Says it is quick\",\"weight\":3}]}",
           f->chal_dup ? "fast"
                       : (const char *[]){"fast", "slowly", "at all", "again", "late", "early",
                                          "twice", "once"}[i % 8]);
  return g_reply;
}

static const char *verdicts(int met) {
  snprintf(g_reply, sizeof g_reply,
           "{\"verdicts\":[{\"criterion\":1,\"met\":%s},{\"criterion\":2,\"met\":%s}]}",
           met >= 1 ? "true" : "false", met >= 2 ? "true" : "false");
  return g_reply;
}

/* A batched judge's reply: for each "RESPONSE k:" of the request, the verdicts the script
 * gives the sample whose answer ("<phase>-ANSWER-<i>", or "ANSWER: 42/41") it is. */
static const char *batch_reply(struct fake *f, const struct qcall *q, int verifiable) {
  if (f->bad_batch && (!strstr(q->label, "_repair") || f->bad_judge_repairs)) return f->bad_batch;
  const json_t *sent = json_object_get(f->bodies, q->label);
  const char *u = user_content(json_array_get(sent, json_array_size(sent) - 1));
  json_t *answers = json_array();
  int weak = strstr(q->label, "weak") != NULL;
  char h[32];
  for (int k = 1; snprintf(h, sizeof h, "RESPONSE %d:", k), u && strstr(u, h); k++) {
    const char *a = strstr(u, h) + strlen(h);
    json_t *item = json_pack("{s:i}", "answer", k);
    if (verifiable) {
      json_object_set_new(item, "correct", json_boolean(!strncmp(a, "\nWorking.\nANSWER: 42", 20)));
    } else {
      const char *n = strstr(a, "-ANSWER-");
      int i = n ? atoi(n + 8) : 0, met = weak ? f->weak_met[i] : f->strong_met[i];
      json_object_set_new(item, "verdicts",
                          json_pack("[{s:i,s:b},{s:i,s:b}]", "criterion", 1, "met", met >= 1,
                                    "criterion", 2, "met", met >= 2));
    }
    json_array_append_new(answers, item);
  }
  json_t *o = json_pack("{s:o}", "answers", answers);
  char *d = json_dumps(o, JSON_COMPACT);
  snprintf(g_reply, sizeof g_reply, "%s", d);
  free(d);
  json_decref(o);
  return g_reply;
}

static int matches(const char *label, int sample, const char *want, int want_sample) {
  return want && !strcmp(label, want) && (want_sample < 0 || want_sample == sample);
}

static int g_chal_calls;

/* Answer one call from the script. */
static void answer_call(struct fake *f, const struct qcall *q, struct ep_reply *out,
                        int verifiable) {
  memset(out, 0, sizeof *out);
  if (matches(q->label, q->sample, f->aside_label, f->aside_sample)) {
    out->set_aside = 1;
    return;
  }
  if (matches(q->label, q->sample, f->fail_label, f->fail_sample)) {
    out->error = "endpoint 'sim' (sim): HTTP 400: the prompt is too long";
    return;
  }
  out->ok = 1;
  const char *l = q->label;
  int i = q->sample;
  if (f->cut_label && !strcmp(l, f->cut_label)) {
    out->finish_reason = "length";
    out->completion_tokens = 64;
  }
  int repair_turn = strstr(l, "_repair") != NULL;
  if (f->bad_judge && !strncmp(l, "judge_", 6) && (!repair_turn || f->bad_judge_repairs)) {
    out->content = f->bad_judge;
    return;
  }
  static char lb[32];
  snprintf(lb, sizeof lb, "%s", l);
  if (repair_turn && !strncmp(l, "judge_", 6)) *strstr(lb, "_repair") = 0;
  l = lb;
  if (!strcmp(l, "loop_judge")) {
    out->content = f->loop_judge ? f->loop_judge : "{\"verdict\": \"accept\", \"reason\": \"ok\"}";
  } else if (!strcmp(l, "extractor")) {
    out->content = f->extractor ? f->extractor
                                : "{\"suitable\": true, \"reason\": \"r\", \"extraction\": "
                                  "\"EXTRACTED-FACTS\"}";
  } else if (!strcmp(l, "orchestrator")) {
    out->content = f->orchestrator ? f->orchestrator : "<think>plan</think>Try a harder angle.";
  } else if (!strncmp(l, "challenger", 10)) {
    int k = g_chal_calls++;
    if (k < f->n_chal && f->challenger[k]) out->content = f->challenger[k];
    else if (verifiable)
      out->content = "{\"question\":\"What is six times seven?\",\"answer\":\"42\"}";
    else out->content = candidate(f, k);
  } else if (!strcmp(l, "quality")) {
    out->content = f->quality ? f->quality : "{\"pass\":true,\"issues\":[],\"feedback\":\"\"}";
  } else if (!strcmp(l, "weak") || !strcmp(l, "strong") || !strcmp(l, "filter")) {
    int good = !strcmp(l, "weak")     ? f->weak_ok[i]
               : !strcmp(l, "strong") ? f->strong_ok[i]
                                      : f->filter_ok[i];
    snprintf(g_reply, sizeof g_reply, verifiable ? "Working.\nANSWER: %s" : "%s-ANSWER-%d",
             verifiable ? (good ? "42" : "41") : l, i);
    out->content = g_reply;
  } else if (!strncmp(l, "batch_", 6)) {
    out->content = batch_reply(f, q, verifiable);
  } else if (!strncmp(l, "judge_", 6)) {
    const char *ph = l + 6;
    int met = !strcmp(ph, "weak")     ? f->weak_met[i]
              : !strcmp(ph, "strong") ? f->strong_met[i]
                                      : f->filter_met[i];
    if (verifiable) {
      int good = !strcmp(ph, "weak")     ? f->weak_ok[i]
                 : !strcmp(ph, "strong") ? f->strong_ok[i]
                                         : f->filter_ok[i];
      out->content = good ? "{\"correct\": true}" : "{\"correct\": false}";
    } else {
      out->content = verdicts(met);
    }
  } else {
    cr_assert_fail("unexpected call label %s", l);
  }
}

/* ---- recipes, sources, the driver ------------------------------------------------------ */

static struct src_doc g_doc = {.id = "doc-1",
                               .title = "Reef recovery",
                               .text = "Reefs recover after storms because larvae settle."};

static const char *g_roles_extra = ""; /* more roles (the extractor) */

static struct recipe *load_recipe(const char *extra, const char *task, const char *bounds) {
  char text[4096];
  snprintf(text, sizeof text,
           "name: ep-test\n"
           "task: %s\n"
           "sources: {path: none.jsonl}\n"
           "roles:\n"
           "  orchestrator: {endpoint: sim, model: o}\n"
           "  challenger: {endpoint: sim, model: c}\n"
           "  weak: {endpoint: sim, model: w, samples: 3}\n"
           "  strong: {endpoint: sim, model: s, samples: 3}\n"
           "  judge: {endpoint: sim, model: j}\n"
           "%s"
           "accept:\n"
           "  bounds: %s\n"
           "  short_circuit: true\n"
           "%s%s",
           task, g_roles_extra, bounds,
           /* full evaluation unless the test says otherwise (the early-decision tests) */
           extra && strstr(extra, "evaluation:") ? "" : "evaluation: {early_stop: false}\n",
           extra ? extra : "");
  struct recipe_load_opts o = {0};
  o.prompts_dir = "prompts";
  struct recipe *r = NULL;
  struct recipe_diag d = {0};
  int rc = recipe_load_mem(text, strlen(text), "ep-test.yaml", &o, &r, &d);
  cr_assert_eq(rc, 0, "%s", d.n ? d.msgs[0] : "?");
  recipe_diag_release(&d);
  return r;
}

#define RUBRIC_BOUNDS "[\"weak_mean <= 0.5\", \"strong_mean >= 0.6\", \"gap >= 0.2\"]"

struct world {
  struct recipe *rc;
  struct fake f;
  struct bl_params bl;
  struct tpl_prompt method_tpl;
  int have_method_tpl;
  struct ep_config cfg;
  struct ep_env env;
  json_t *hashes;
  enum ep_state end;
};

static void world_init(struct world *w, const char *extra, const char *task, const char *bounds,
                       const struct method_ops *m) {
  memset(w, 0, sizeof *w);
  g_chal_calls = 0;
  w->rc = load_recipe(extra, task, bounds);
  w->f.bodies = json_object();
  w->f.fail_sample = w->f.aside_sample = -1;
  w->bl = w->rc->baselines;
  w->hashes = json_pack("{s:s}", "judge", "abc");
  if (m->challenger_prompt) {
    char path[256], *text = NULL;
    snprintf(path, sizeof path, "prompts/%s-%s.md", m->challenger_prompt,
             cand_task_name(w->rc->task));
    size_t n = 0;
    cr_assert_eq(fs_read_all(path, RECIPE_MAX_PROMPT_FILE, &text, &n), 0, "%s", path);
    char err[256];
    cr_assert_eq(tpl_prompt_compile(text, n, path, &w->method_tpl, err, sizeof err), 0, "%s", err);
    free(text);
    w->have_method_tpl = 1;
  }
  w->cfg = (struct ep_config){w->rc,     m,   &w->bl, w->have_method_tpl ? &w->method_tpl : NULL,
                              w->hashes, NULL};
  w->env = (struct ep_env){&w->f,       fake_submit,   fake_seed, fake_schema_ok,
                           fake_record, fake_stopping, NULL};
}

/* Run an episode to its end, answering calls oldest first. */
static enum ep_state drive(struct world *w) {
  struct episode *ep = ep_new(&w->cfg, &w->env, &g_doc);
  enum ep_state s = ep_start(ep);
  int verifiable = w->rc->task == CAND_TASK_VERIFIABLE;
  while (!ep_ended(s)) {
    cr_assert_lt(w->f.head, w->f.tail, "the episode waits for a call nobody made (state %s)",
                 ep_state_name(s));
    struct qcall *q = &w->f.q[w->f.head++];
    struct ep_reply out;
    answer_call(&w->f, q, &out, verifiable);
    s = ep_deliver(ep, q->tag, &out);
  }
  cr_assert_eq(w->f.head, w->f.tail, "ended with %d calls outstanding", w->f.tail - w->f.head);
  cr_assert_eq(ep_state(ep), s);
  ep_free(ep);
  w->end = s;
  return s;
}

static void world_release(struct world *w) {
  for (int i = 0; i < w->f.tail; i++) json_decref(w->f.q[i].body);
  for (int i = 0; i < w->f.n_recs; i++) {
    free(w->f.recs[i].reason);
    json_decref(w->f.recs[i].cand);
    json_decref(w->f.recs[i].example);
  }
  json_decref(w->f.bodies);
  json_decref(w->hashes);
  if (w->have_method_tpl) tpl_prompt_release(&w->method_tpl);
  recipe_free(w->rc);
}

static int count(const struct world *w, const char *label) {
  return (int)json_array_size(json_object_get(w->f.bodies, label));
}

static const json_t *body_of(const struct world *w, const char *label, int i) {
  return json_array_get(json_object_get(w->f.bodies, label), (size_t)i);
}

static const char *reason_of(const struct world *w, int i) { return w->f.recs[i].reason; }

static const char *detail_of(const struct world *w, int i) {
  return jx_str(w->f.recs[i].cand, "detail");
}

static void set_scores(int *a, int v0, int v1, int v2) {
  a[0] = v0;
  a[1] = v1;
  a[2] = v2;
}

/* ---- agentic: every verdict ----------------------------------------------------------- */

Test(episode, accepted_in_round_one) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.strong_met, 2, 2, 2); /* weak 0, strong 1: gap 1 */
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.n_recs, 1);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_not_null(w.f.recs[0].example);
  cr_assert(w.f.recs[0].finished);
  cr_assert_eq(w.f.recs[0].accepted, 1);
  cr_assert_str_eq(jx_str(w.f.recs[0].example, "id"), "doc-1-1");
  cr_assert_eq(jx_num(w.f.recs[0].example, "gap", -1), 1.0);
  cr_assert_str_eq(w.f.log,
                   "challenger quality weak weak weak judge_weak judge_weak judge_weak "
                   "strong strong strong judge_strong judge_strong judge_strong");
  /* round 1 has no orchestrator; the challenger asks for structured output */
  cr_assert_not_null(json_object_get(body_of(&w, "challenger", 0), "response_format"));
  /* solvers never see the source, the rubric or the reference */
  const char *weak = user_content(body_of(&w, "weak", 0));
  cr_assert_null(strstr(weak, "larvae settle quickly"));
  cr_assert_null(strstr(weak, "Names larval"));
  world_release(&w);
}

Test(episode, too_easy_short_circuits_the_strong_solver) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 1);
  set_scores(w.f.strong_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  cr_assert_str_eq(detail_of(&w, 0), "weak gate failed: weak_mean <= 0.5");
  cr_assert_eq(count(&w, "strong"), 0, "the short-circuit skips the strong solver");
  cr_assert_eq(w.f.recs[0].accepted, 0);
  cr_assert_null(w.f.recs[0].example);
  world_release(&w);
}

Test(episode, too_easy_without_short_circuit_runs_strong) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.rc->accept.short_circuit = 0;
  set_scores(w.f.weak_met, 2, 2, 2);
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  cr_assert_str_eq(detail_of(&w, 0), "bound failed: weak_mean <= 0.5");
  cr_assert_eq(count(&w, "strong"), 3);
  world_release(&w);
}

Test(episode, too_hard) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric",
             "[\"weak_min > 0\", \"strong_mean >= 0.6\"]", &method_agentic);
  set_scores(w.f.weak_met, 1, 0, 1);
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "too_hard");
  cr_assert_eq(count(&w, "strong"), 0);
  world_release(&w);
}

Test(episode, failed_on_strong) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.strong_met, 1, 1, 1); /* strong 0.5 < 0.6 */
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "failed_on_strong");
  cr_assert_str_eq(detail_of(&w, 0), "bound failed: strong_mean >= 0.6");
  world_release(&w);
}

Test(episode, no_gap) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 1, 1, 1);   /* 0.5 */
  set_scores(w.f.strong_met, 1, 1, 2); /* 0.667: gap 0.167 */
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "no_gap");
  const json_t *st = json_object_get(w.f.recs[0].cand, "stats");
  cr_assert_float_eq(jx_num(st, "gap", -1), 0.166667, 1e-6);
  world_release(&w);
}

/* ---- the challenger: repair, parse errors, checks -------------------------------------- */

Test(episode, repair_turn_recovers) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.challenger[0] = "Sure! Here is a question about reefs.";
  w.f.n_chal = 1;
  set_scores(w.f.strong_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_eq(count(&w, "challenger_repair"), 1);
  const json_t *rb = body_of(&w, "challenger_repair", 0);
  cr_assert_not_null(strstr(user_content(rb), "Your reply could not be used: "));
  json_t *msgs = json_object_get(rb, "messages");
  cr_assert_str_eq(jx_str(json_array_get(msgs, json_array_size(msgs) - 2), "content"),
                   "Sure! Here is a question about reefs.", "the model sees its own reply");
  cr_assert_eq(json_is_true(json_object_get(w.f.recs[0].cand, "repaired")), 1);
  world_release(&w);
}

Test(episode, parse_error_after_the_repair) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.challenger[0] = "no json here";
  w.f.challenger[1] = "{\"question\": \"cut off";
  w.f.n_chal = 2;
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_str_eq(reason_of(&w, 0), "parse_error");
  cr_assert_not_null(strstr(detail_of(&w, 0), "truncated"), "%s", detail_of(&w, 0));
  cr_assert_eq(count(&w, "quality"), 0);
  cr_assert(json_is_null(json_object_get(w.f.recs[0].cand, "candidate")));
  cr_assert_str_eq(jx_str(w.f.recs[0].cand, "raw"), "{\"question\": \"cut off");
  world_release(&w);
}

Test(episode, failed_check_is_not_repaired) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.challenger[0] =
      "{\"context\":\"c\",\"question\":\"q?\",\"reference_answer\":\"a\","
      "\"rubric\":[{\"criterion\":\"x\",\"weight\":9},{\"criterion\":\"y\",\"weight\":1}]}";
  w.f.n_chal = 1;
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "check:rubric_weight");
  cr_assert_eq(count(&w, "challenger_repair"), 0);
  cr_assert_eq(count(&w, "quality"), 0);
  cr_assert(json_is_object(json_object_get(w.f.recs[0].cand, "candidate")));
  world_release(&w);
}

Test(episode, duplicate_question_in_a_later_round) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.chal_dup = 1;
  set_scores(w.f.weak_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.n_recs, 2);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  cr_assert_str_eq(reason_of(&w, 1), "check:duplicate");
  world_release(&w);
}

/* ---- quality ---------------------------------------------------------------------------- */

Test(episode, quality_rejects) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.quality =
      "{\"pass\": false, \"issues\": [\"leakage\"], \"feedback\": \"the context states it\"}";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "quality:leakage");
  cr_assert_str_eq(detail_of(&w, 0), "the context states it");
  cr_assert_eq(count(&w, "weak"), 0);
  world_release(&w);
}

Test(episode, quality_reply_unreadable) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.quality = "I think it is fine.";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:quality_reply");
  world_release(&w);
}

Test(episode, quality_call_fails) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.fail_label = "quality";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:quality");
  cr_assert_not_null(strstr(detail_of(&w, 0), "HTTP 400"));
  world_release(&w);
}

Test(episode, quality_off_goes_straight_to_the_solvers) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.rc->roles[RECIPE_ROLE_QUALITY].present = 0;
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_eq(count(&w, "quality"), 0);
  cr_assert(json_is_null(json_object_get(w.f.recs[0].cand, "quality")));
  world_release(&w);
}

/* ---- calls that fail: request errors ---------------------------------------------------- */

Test(episode, challenger_call_fails) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.fail_label = "challenger";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:challenger");
  world_release(&w);
}

Test(episode, one_failed_judge_leaves_the_sample_out) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.fail_label = "judge_weak";
  w.f.fail_sample = 1;
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_null(reason_of(&w, 0));
  const json_t *st = json_object_get(w.f.recs[0].cand, "stats");
  cr_assert_eq(jx_int(st, "n_weak", -1), 2);
  const json_t *errs = json_object_get(w.f.recs[0].cand, "sample_errors");
  cr_assert_eq(json_array_size(errs), 1);
  cr_assert_str_eq(jx_str(json_array_get(errs, 0), "role"), "weak");
  cr_assert_eq(jx_int(json_array_get(errs, 0), "sample", -1), 1);
  world_release(&w);
}

Test(episode, no_weak_answer_judged) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.fail_label = "weak";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:weak");
  cr_assert_not_null(strstr(detail_of(&w, 0), "no weak answer could be judged: endpoint"));
  world_release(&w);
}

Test(episode, no_strong_answer_judged) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.fail_label = "judge_strong";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:strong");
  world_release(&w);
}

/* ---- infrastructure: set aside, refused, stopping, store ---------------------------------- */

Test(episode, challenger_set_aside_parks_without_a_record) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.aside_label = "challenger";
  cr_assert_eq(drive(&w), EP_PARKED);
  cr_assert_eq(w.f.n_recs, 0, "a source is never written off because a server was down");
  world_release(&w);
}

Test(episode, one_sample_set_aside_parks_after_the_others_are_in) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.aside_label = "judge_weak";
  w.f.aside_sample = 0;
  cr_assert_eq(drive(&w), EP_PARKED); /* drive() checks no call is outstanding */
  cr_assert_eq(w.f.n_recs, 0);
  cr_assert_eq(count(&w, "judge_weak"), 3);
  cr_assert_eq(count(&w, "strong"), 0);
  world_release(&w);
}

Test(episode, budget_refuses_mid_phase) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.refuse_from = 4; /* challenger, quality, weak 0 go out; weak 1 and 2 are refused */
  cr_assert_eq(drive(&w), EP_PARKED);
  cr_assert_eq(count(&w, "weak"), 1);
  cr_assert_eq(w.f.n_recs, 0);
  world_release(&w);
}

Test(episode, budget_refuses_the_first_call) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.refuse_from = 1;
  cr_assert_eq(drive(&w), EP_PARKED);
  cr_assert_eq(w.f.tail, 0);
  world_release(&w);
}

Test(episode, stopping_run_records_the_round_then_parks) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 2);
  w.f.stop_after_record = 1;
  cr_assert_eq(drive(&w), EP_PARKED);
  cr_assert_eq(w.f.n_recs, 1);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  cr_assert(!w.f.recs[0].finished);
  world_release(&w);
}

Test(episode, store_refusing_a_record_parks) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 2);
  w.f.record_fails = 1;
  cr_assert_eq(drive(&w), EP_PARKED);
  cr_assert_eq(w.f.n_recs, 1);
  cr_assert_eq(count(&w, "challenger"), 1, "no second round after a failed record");
  world_release(&w);
}

/* ---- rounds, feedback, the orchestrator --------------------------------------------------- */

Test(episode, rounds_spent_exhausts) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 3}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.n_recs, 3);
  cr_assert(!w.f.recs[0].finished && !w.f.recs[1].finished && w.f.recs[2].finished);
  cr_assert_eq(w.f.recs[2].accepted, 0);
  cr_assert_eq(w.f.recs[2].round, 3);
  world_release(&w);
}

Test(episode, round_two_has_the_orchestrator_and_the_feedback) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 2); /* round 1 too easy */
  drive(&w);
  cr_assert_eq(count(&w, "orchestrator"), 1);
  cr_assert_not_null(strstr(w.f.log, "judge_weak orchestrator challenger"), "%s", w.f.log);
  const char *hist = user_content(body_of(&w, "orchestrator", 0));
  cr_assert_not_null(strstr(hist, "round 1, verdict too_easy"), "%s", hist);
  const char *chal2 = user_content(body_of(&w, "challenger", 1));
  cr_assert_not_null(strstr(chal2, fb_heading_too_easy), "the challenger sees the feedback");
  cr_assert_not_null(strstr(chal2, "Try a harder angle."), "and the orchestrator's instructions");
  cr_assert_null(strstr(chal2, "<think>"), "without its reasoning");
  cr_assert_str_eq(jx_str(w.f.recs[1].cand, "instructions"), "Try a harder angle.");
  world_release(&w);
}

Test(episode, failed_orchestrator_call_is_recorded_and_the_round_goes_on) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 2);
  w.f.fail_label = "orchestrator";
  drive(&w);
  cr_assert_eq(w.f.n_recs, 2);
  cr_assert_not_null(jx_str(w.f.recs[1].cand, "orchestrator_error"));
  cr_assert(json_is_null(json_object_get(w.f.recs[1].cand, "instructions")));
  world_release(&w);
}

Test(episode, two_examples_per_source) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 5, examples_per_source: 2}\n", "rubric",
             RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.strong_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.n_recs, 2);
  cr_assert_str_eq(jx_str(w.f.recs[1].example, "id"), "doc-1-2");
  cr_assert_eq(w.f.recs[1].accepted, 2);
  world_release(&w);
}

Test(episode, endpoint_without_structured_outputs) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.no_schema = 1;
  drive(&w);
  cr_assert_null(json_object_get(body_of(&w, "challenger", 0), "response_format"));
  world_release(&w);
}

/* ---- verifiable tasks ------------------------------------------------------------------------ */

#define VERIF_BOUNDS "[\"weak_correct <= 1\", \"strong_correct >= 2\"]"

Test(episode, verifiable_matched_locally) {
  struct world w;
  world_init(&w, NULL, "verifiable", VERIF_BOUNDS, &method_agentic);
  set_scores(w.f.weak_ok, 1, 0, 0);
  set_scores(w.f.strong_ok, 1, 1, 0);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_eq(count(&w, "judge_weak") + count(&w, "judge_strong"), 0, "no judge calls");
  cr_assert_str_eq(jx_str(w.f.recs[0].example, "answer"), "42");
  world_release(&w);
}

Test(episode, verifiable_llm_matcher_asks_the_judge) {
  struct world w;
  world_init(&w, "checks: {verifiable_matcher: llm}\nbudgets: {rounds_per_source: 1}\n",
             "verifiable", VERIF_BOUNDS, &method_agentic);
  set_scores(w.f.weak_ok, 1, 1, 0); /* 2 correct: too easy */
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  cr_assert_eq(count(&w, "judge_weak"), 3);
  world_release(&w);
}

/* ---- the one-shot baselines ----------------------------------------------------------------- */

Test(episode, self_instruct_evaluates_a_failed_check_and_does_not_keep_it) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_self_instruct);
  w.f.challenger[0] =
      "{\"context\":\"c\",\"question\":\"q?\",\"reference_answer\":\"a\","
      "\"rubric\":[{\"criterion\":\"x\",\"weight\":9},{\"criterion\":\"y\",\"weight\":1}]}";
  w.f.n_chal = 1;
  set_scores(w.f.weak_met, 2, 2, 2); /* it would be too easy too: weak never short-circuits */
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.n_recs, 1, "one round");
  cr_assert_eq(count(&w, "strong"), 3, "no short-circuit: every statistic is measured");
  cr_assert_eq(count(&w, "orchestrator"), 0);
  cr_assert_str_eq(reason_of(&w, 0), "check:rubric_weight");
  const json_t *c = w.f.recs[0].cand;
  cr_assert_str_eq(jx_str(c, "method"), "self-instruct");
  cr_assert_eq(json_is_false(json_object_get(c, "passed_filter")), 1);
  cr_assert_str_eq(jx_str(c, "filter_reason"), "check:rubric_weight");
  cr_assert_null(w.f.recs[0].example);
  world_release(&w);
}

Test(episode, self_instruct_keeps_what_fails_the_gate) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_self_instruct);
  set_scores(w.f.weak_met, 2, 2, 2);
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy", "the gate is recorded");
  cr_assert_not_null(w.f.recs[0].example, "the baseline keeps it");
  cr_assert_eq(json_is_false(json_object_get(w.f.recs[0].example, "passed_gate")), 1);
  cr_assert_str_eq(jx_str(w.f.recs[0].example, "gate_reason"), "too_easy");
  cr_assert_null(strstr(user_content(body_of(&w, "challenger", 0)), "REFINEMENT"));
  world_release(&w);
}

Test(episode, self_instruct_notes_the_first_quality_failure) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_self_instruct);
  w.f.quality = "{\"pass\": false, \"issues\": [\"question_quality\"], \"feedback\": \"recall\"}";
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "quality:question_quality");
  cr_assert_eq(count(&w, "weak"), 3);
  cr_assert_null(w.f.recs[0].example);
  world_release(&w);
}

Test(episode, cot_rip_keeps_and_rejects) {
  struct world w;
  world_init(&w, "baselines: {k: 4, rip_threshold: 0.5}\n", "rubric", RUBRIC_BOUNDS,
             &method_cot_self_instruct);
  set_scores(w.f.strong_met, 2, 2, 2);
  w.f.filter_met[0] = w.f.filter_met[1] = w.f.filter_met[2] = w.f.filter_met[3] = 1;
  drive(&w);
  cr_assert_eq(count(&w, "filter"), 4);
  cr_assert_eq(count(&w, "judge_filter"), 4);
  cr_assert_null(json_object_get(body_of(&w, "challenger", 0), "response_format"),
                 "the CoT challenger reasons before its JSON");
  cr_assert_not_null(w.f.recs[0].example);
  const json_t *fi = json_object_get(w.f.recs[0].cand, "filter");
  cr_assert_str_eq(jx_str(fi, "name"), "rip");
  cr_assert_eq(jx_num(fi, "quality", -1), 0.5);
  world_release(&w);

  world_init(&w, "baselines: {k: 2, rip_threshold: 0.6}\n", "rubric", RUBRIC_BOUNDS,
             &method_cot_self_instruct);
  set_scores(w.f.strong_met, 2, 2, 2);
  w.f.filter_met[0] = 2;
  w.f.filter_met[1] = 1;
  drive(&w);
  cr_assert_null(w.f.recs[0].example);
  cr_assert_str_eq(jx_str(w.f.recs[0].cand, "filter_reason"), "filter:rip");
  cr_assert_null(reason_of(&w, 0), "it passed the gate");
  world_release(&w);
}

Test(episode, cot_answer_consistency) {
  struct world w;
  world_init(&w, "baselines: {k: 3, ac_min_share: 0.6}\n", "verifiable", VERIF_BOUNDS,
             &method_cot_self_instruct);
  set_scores(w.f.strong_ok, 1, 1, 1);
  set_scores(w.f.filter_ok, 1, 1, 0);
  drive(&w);
  cr_assert_not_null(w.f.recs[0].example);
  cr_assert_str_eq(jx_str(json_object_get(w.f.recs[0].cand, "filter"), "majority"), "42");
  world_release(&w);

  world_init(&w, "baselines: {k: 3, ac_min_share: 0.6}\n", "verifiable", VERIF_BOUNDS,
             &method_cot_self_instruct);
  set_scores(w.f.strong_ok, 1, 1, 1);
  set_scores(w.f.filter_ok, 0, 0, 1); /* the majority answer is 41 */
  drive(&w);
  cr_assert_null(w.f.recs[0].example);
  cr_assert_str_eq(jx_str(w.f.recs[0].cand, "filter_reason"), "filter:answer_consistency");
  world_release(&w);
}

Test(episode, cot_filter_with_no_judged_sample) {
  struct world w;
  world_init(&w, "baselines: {k: 2}\n", "rubric", RUBRIC_BOUNDS, &method_cot_self_instruct);
  set_scores(w.f.strong_met, 2, 2, 2);
  w.f.fail_label = "judge_filter";
  drive(&w);
  cr_assert_str_eq(jx_str(w.f.recs[0].cand, "filter_reason"), "error:filter");
  cr_assert_not_null(
      strstr(jx_str(w.f.recs[0].cand, "filter_detail"), "no filter answer could be judged"));
  world_release(&w);
}

/* ---- a new method plugs in without touching the core ------------------------------------------ */

/* A method written here, outside src/loop/: one challenger call, the weak solver only, and
 * the example kept when no weak sample scores above 0.5. The episode core runs it as it
 * runs the built-in ones: this is all a new method needs (plus a line in method.c's table
 * to reach it from the command line). */
static void weak_only_next(struct episode *ep, enum ep_state done) {
  struct ep_failure f = ep_failure(ep);
  if (done == EP_IDLE) {
    ep_challenge(ep);
  } else if (f.reason) {
    ep_end_round(ep, f.reason, f.detail, 0);
  } else if (done == EP_CHALLENGE) {
    ep_solve(ep, EP_WEAK, 2);
  } else {
    int hard = ep_stats(ep)->weak_max <= 0.5;
    ep_end_round(ep, hard ? NULL : "too_easy", hard ? NULL : "a weak answer scored above 0.5",
                 hard);
  }
}

static const struct method_ops weak_only = {
    .name = "weak-only", .challenger_schema = 1, .max_rounds = 2, .next = weak_only_next};

Test(episode, a_method_defined_in_one_place) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &weak_only);
  w.f.weak_met[0] = 2; /* round 1: too easy; round 2 gets the same scores from the script */
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_str_eq(w.f.log,
                   "challenger weak weak judge_weak judge_weak "
                   "challenger weak weak judge_weak judge_weak");
  cr_assert_eq(w.f.n_recs, 2, "its own round cap");
  cr_assert_str_eq(reason_of(&w, 1), "too_easy");
  world_release(&w);

  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &weak_only);
  w.f.weak_met[0] = 1;
  drive(&w);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_not_null(w.f.recs[0].example);
  world_release(&w);
}

/* ---- the methods table and the delivery contract ---------------------------------------------- */

Test(episode, method_table) {
  cr_assert_eq(method_find("agentic"), &method_agentic);
  cr_assert_eq(method_find("self-instruct"), &method_self_instruct);
  cr_assert_eq(method_find("cot-self-instruct"), &method_cot_self_instruct);
  cr_assert_null(method_find("cot"));
  cr_assert_null(method_find(NULL));
  for (int i = 0; method_table[i]; i++) cr_assert_not_null(method_table[i]->next);
  const char *const *names = method_name_list();
  cr_assert_str_eq(names[0], "agentic");
  cr_assert_str_eq(names[2], "cot-self-instruct");
  cr_assert_str_eq(names[3], "agent");
  cr_assert_null(names[4]);
  cr_assert_eq(method_find("agent"), &method_agent);
  cr_assert_str_eq(method_names(), "agentic, self-instruct, cot-self-instruct or agent");
  struct bl_params p = {4, 0.5, 0.5};
  json_t *id = method_identity(&method_cot_self_instruct, &p);
  char *s = jx_dump_canonical(id);
  cr_assert_str_eq(
      s, "{\"ac_min_share\":0.5,\"k\":4,\"name\":\"cot-self-instruct\",\"rip_threshold\":0.5}");
  free(s);
  json_decref(id);
  id = method_identity(&method_agentic, &p);
  s = jx_dump_canonical(id);
  cr_assert_str_eq(s, "{\"name\":\"agentic\"}");
  free(s);
  json_decref(id);
}

Test(episode, a_delivery_nobody_asked_for_aborts, .signal = SIGABRT) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.refuse_from = 1;
  struct episode *ep = ep_new(&w.cfg, &w.env, &g_doc);
  cr_assert_eq(ep_start(ep), EP_PARKED); /* its first call was refused: nothing outstanding */
  struct ep_reply out = {.ok = 1, .content = "{}"};
  ep_deliver(ep, 1 << 16, &out);
}

/* ---- real-server behaviours (issue 10) ----------------------------------------------------- */

/* A judgement that skips a criterion gets one repair turn, with the same schema. */
Test(episode, invalid_judgement_is_repaired_with_the_same_schema) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.bad_judge = "{\"verdicts\":[{\"criterion\":1,\"met\":true,\"reason\":\"r\"}]}";
  set_scores(w.f.weak_met, 1, 1, 1);
  set_scores(w.f.strong_met, 2, 2, 2);
  drive(&w);
  cr_assert_eq(count(&w, "judge_weak_repair"), 3, "%s", w.f.log);
  const json_t *j = json_object_get(w.f.recs[0].cand, "judgements");
  cr_assert_eq(jx_int(j, "repaired", -1), 6);
  cr_assert_eq(jx_int(j, "invalid", -1), 0);
  json_t *first = json_array_get(json_object_get(w.f.bodies, "judge_weak"), 0);
  json_t *rep = json_array_get(json_object_get(w.f.bodies, "judge_weak_repair"), 0);
  cr_assert_not_null(json_object_get(first, "response_format"));
  cr_assert(json_equal(json_object_get(first, "response_format"),
                       json_object_get(rep, "response_format")),
            "the repair turn carries the judge's schema");
  world_release(&w);
}

/* A judgement still invalid after its repair is the sample's error, never a score. */
Test(episode, invalid_judgement_after_repair_is_an_error) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.bad_judge = "{\"verdicts\":[]}";
  w.f.bad_judge_repairs = 1;
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:weak");
  const json_t *j = json_object_get(w.f.recs[0].cand, "judgements");
  cr_assert_eq(jx_int(j, "invalid", -1), 3);
  cr_assert_eq(json_array_size(json_object_get(w.f.recs[0].cand, "weak_scores")), 0,
               "no silent zero");
  world_release(&w);
}

/* A challenger reply cut off at max_tokens: its own reason, no repair turn. */
Test(episode, truncated_challenger_is_not_repaired) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.challenger[0] = "{\"question\": \"Why do re";
  w.f.n_chal = 1;
  w.f.cut_label = "challenger";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "truncated:challenger");
  cr_assert_eq(count(&w, "challenger_repair"), 0, "%s", w.f.log);
  cr_assert_not_null(strstr(jx_str(w.f.recs[0].cand, "detail"), "max_tokens"));
  world_release(&w);
}

/* The challenger's repair turn carries the same schema as its first request. */
Test(episode, challenger_repair_carries_the_schema) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.challenger[0] = "not json at all";
  w.f.n_chal = 1;
  drive(&w);
  json_t *first = json_array_get(json_object_get(w.f.bodies, "challenger"), 0);
  json_t *rep = json_array_get(json_object_get(w.f.bodies, "challenger_repair"), 0);
  cr_assert_not_null(rep, "%s", w.f.log);
  cr_assert_not_null(json_object_get(first, "response_format"));
  cr_assert(json_equal(json_object_get(first, "response_format"),
                       json_object_get(rep, "response_format")));
  world_release(&w);
}

/* The loop renders a prompt with its role's variables only (recipe_role_vars): a
 * solver prompt that reaches for the source fails to render, even when it got
 * past the recipe's check, and no solver call carries the source. */
Test(episode, solver_prompt_cannot_reach_the_source) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  struct recipe_role *weak = &w.rc->roles[RECIPE_ROLE_WEAK];
  tpl_prompt_release(&weak->prompt.tpl);
  static const char text[] = "=== user ===\nQUESTION: {{question}}\nSOURCE: {{source_text}}\n";
  char err[256];
  cr_assert_eq(
      tpl_prompt_compile(text, sizeof text - 1, "leaky.md", &weak->prompt.tpl, err, sizeof err), 0,
      "%s", err);
  drive(&w);
  cr_assert_eq(count(&w, "weak"), 0, "a weak call was made");
  cr_assert_geq(w.f.n_recs, 1);
  cr_assert_str_eq(reason_of(&w, 0), "error:weak");
  cr_assert(strstr(detail_of(&w, 0), "leaky.md:3:9: unknown variable 'source_text'"), "%s",
            detail_of(&w, 0));
  world_release(&w);
}

/* ---- the two-stage challenger: the extractor and its "unsuitable" exit ---------------- */

Test(episode, unsuitable_document_ends_the_source_and_spends_nothing_else) {
  struct world w;
  g_roles_extra = "  extractor: {endpoint: sim, model: x}\n";
  world_init(&w, "budgets: {rounds_per_source: 5}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  g_roles_extra = "";
  w.f.extractor = "{\"suitable\": false, \"reason\": \"a docket entry, no reasoning\"}";
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.tail, 1, "one call: the extractor's, nothing else is spent");
  cr_assert_eq(count(&w, "extractor"), 1);
  cr_assert_eq(count(&w, "challenger"), 0);
  cr_assert_eq(w.f.n_recs, 1);
  cr_assert_str_eq(reason_of(&w, 0), "unsuitable");
  cr_assert_str_eq(detail_of(&w, 0), "a docket entry, no reasoning");
  cr_assert(w.f.recs[0].finished, "the source ends with this round");
  cr_assert_eq(w.f.recs[0].accepted, 0);
  world_release(&w);
}

Test(episode, suitable_document_goes_to_the_writer_with_the_extraction_once) {
  struct world w;
  g_roles_extra = "  extractor: {endpoint: sim, model: x}\n";
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  g_roles_extra = "";
  set_scores(w.f.weak_met, 2, 2, 2); /* too easy: two rounds */
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(count(&w, "extractor"), 1, "the extractor reads the source once per source");
  cr_assert_eq(count(&w, "challenger"), 2);
  cr_assert_eq(w.f.n_recs, 2);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  /* an unreadable extractor reply is an error, not an exit */
  world_release(&w);
  g_roles_extra = "  extractor: {endpoint: sim, model: x}\n";
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  g_roles_extra = "";
  w.f.extractor = "I think it is fine.";
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:extractor_reply");
  world_release(&w);
}

/* ---- the loop judge: its verdict is a statistic the bounds may require ---------------- */

#define LOOP_BOUNDS "[\"weak_mean <= 0.5\", \"strong_mean >= 0.6\", \"loop_accept == 1\"]"

Test(episode, loop_judge_verdict_is_a_statistic_the_bounds_require) {
  struct world w;
  g_roles_extra = "  loop_judge: {endpoint: sim, model: lj}\n";
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", LOOP_BOUNDS, &method_agentic);
  g_roles_extra = "";
  /* weak 0/2, strong 2/2: the statistical bounds pass; the loop judge says improve */
  w.f.loop_judge = "{\"verdict\": \"improve\", \"reason\": \"the rubric was eased\"}";
  set_scores(w.f.strong_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(count(&w, "loop_judge"), 2, "once per round, after the strong solver");
  cr_assert_not_null(strstr(w.f.log, "judge_strong loop_judge"), "%s", w.f.log);
  cr_assert_str_eq(reason_of(&w, 0), "loop_judge:improve");
  cr_assert(strstr(detail_of(&w, 0), "the rubric was eased"), "%s", detail_of(&w, 0));
  cr_assert_eq(jx_int(json_object_get(w.f.recs[0].cand, "stats"), "loop_accept", -1), 0);
  /* the loop judge saw the scores */
  cr_assert(strstr(user_content(body_of(&w, "loop_judge", 0)), "strong avg: 100%"));
  /* its "improve" reaches the next round's writer */
  cr_assert(strstr(user_content(body_of(&w, "challenger", 1)), "loop_judge:improve"));
  world_release(&w);

  g_roles_extra = "  loop_judge: {endpoint: sim, model: lj}\n";
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", LOOP_BOUNDS, &method_agentic);
  g_roles_extra = "";
  set_scores(w.f.strong_met, 2, 2, 2); /* accept: the bounds and the loop judge agree */
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_eq(w.f.n_recs, 1);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_eq(jx_int(json_object_get(w.f.recs[0].cand, "stats"), "loop_accept", -1), 1);
  world_release(&w);

  /* a failing statistical bound wins over the loop judge's accept: the program decides */
  g_roles_extra = "  loop_judge: {endpoint: sim, model: lj}\n";
  world_init(&w, "budgets: {rounds_per_source: 1}\n", "rubric", LOOP_BOUNDS, &method_agentic);
  g_roles_extra = "";
  set_scores(w.f.strong_met, 0, 1, 0);
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "failed_on_strong");
  world_release(&w);
}

/* ---- early decisions -------------------------------------------------------------------- */

#define EARLY "evaluation: {early_stop: true, wave: 1}\nbudgets: {rounds_per_source: 1}\n"

Test(episode, early_decision_stops_when_the_verdict_is_certain) {
  struct world w;
  world_init(&w, EARLY, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 2, 2, 2); /* 1.0, 1.0: the weak mean can no longer be <= 0.5 */
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "too_easy");
  cr_assert_str_eq(detail_of(&w, 0), "weak gate failed: weak_mean <= 0.5");
  cr_assert_str_eq(w.f.log, "challenger quality weak judge_weak weak judge_weak");
  const json_t *c = w.f.recs[0].cand;
  cr_assert(json_is_true(json_object_get(c, "stopped_early")));
  cr_assert_eq(jx_int(c, "stopped_after", 0), 2);
  cr_assert_eq(jx_int(c, "decided_after", 0), 2);
  cr_assert_eq(json_array_size(json_object_get(c, "weak_scores")), 2);
  world_release(&w);
}

Test(episode, early_decision_never_accepts_early) {
  struct world w;
  world_init(&w, EARLY, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.strong_met, 2, 2, 2);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_str_eq(w.f.log,
                   "challenger quality weak judge_weak weak judge_weak weak judge_weak "
                   "strong judge_strong strong judge_strong strong judge_strong");
  cr_assert_eq(json_array_size(json_object_get(w.f.recs[0].example, "weak_scores")), 3);
  cr_assert_eq(json_array_size(json_object_get(w.f.recs[0].example, "strong_scores")), 3);
  cr_assert(json_is_false(json_object_get(w.f.recs[0].cand, "stopped_early")));
  world_release(&w);
}

Test(episode, early_decision_on_the_strong_side_and_in_waves) {
  struct world w;
  world_init(&w, "evaluation: {wave: 2}\nbudgets: {rounds_per_source: 1}\n", "rubric",
             RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.strong_met, 0, 0, 2); /* strong 0, 0: its mean can no longer reach 0.6 */
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "failed_on_strong");
  cr_assert_str_eq(w.f.log,
                   "challenger quality weak weak judge_weak judge_weak weak judge_weak "
                   "strong strong judge_strong judge_strong");
  cr_assert_eq(jx_int(w.f.recs[0].cand, "stopped_after", 0), 5);
  cr_assert_eq(jx_int(w.f.recs[0].cand, "decided_after", 0), 5);
  world_release(&w);
}

Test(episode, early_decision_needs_a_judged_sample) {
  /* a failed first answer decides nothing, even when the bounds could never pass */
  struct world w;
  world_init(&w, EARLY, "rubric", "[\"weak_mean > 2\"]", &method_agentic);
  w.f.fail_label = "weak";
  w.f.fail_sample = 0;
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "too_hard");
  cr_assert_str_eq(w.f.log, "challenger quality weak weak judge_weak");
  world_release(&w);
}

Test(episode, early_decision_set_aside_parks_without_the_next_wave) {
  struct world w;
  world_init(&w, "evaluation: {wave: 1}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.aside_label = "judge_weak";
  w.f.aside_sample = 0;
  cr_assert_eq(drive(&w), EP_PARKED);
  cr_assert_eq(w.f.n_recs, 0);
  cr_assert_str_eq(w.f.log, "challenger quality weak judge_weak");
  world_release(&w);
}

/* ---- batched judging ------------------------------------------------------------------- */

#define BATCH \
  "evaluation: {early_stop: false, batch_judge: true}\nbudgets: {rounds_per_source: 1}\n"

Test(episode, batched_judging_grades_a_wave_in_one_call) {
  struct world w;
  world_init(&w, BATCH, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.weak_met, 0, 1, 0);
  set_scores(w.f.strong_met, 2, 2, 1);
  cr_assert_eq(drive(&w), EP_FINISHED);
  cr_assert_null(reason_of(&w, 0));
  cr_assert_str_eq(w.f.log,
                   "challenger quality weak weak weak batch_weak "
                   "strong strong strong batch_strong");
  const json_t *ws = json_object_get(w.f.recs[0].example, "weak_scores");
  const json_t *ss = json_object_get(w.f.recs[0].example, "strong_scores");
  cr_assert_eq(json_real_value(json_array_get(ws, 1)), 0.5);
  cr_assert_eq(json_real_value(json_array_get(ss, 2)), 0.5);
  cr_assert_eq(json_real_value(json_array_get(ss, 0)), 1.0);
  cr_assert_eq(jx_int(json_object_get(w.f.recs[0].cand, "judgements"), "total", 0), 6);
  /* the batch request numbers the answers and sends the batched schema */
  const json_t *b = body_of(&w, "batch_weak", 0);
  cr_assert_not_null(strstr(user_content(b), "RESPONSE 3:"));
  char *rf = json_dumps(json_object_get(b, "response_format"), 0);
  cr_assert_not_null(rf);
  cr_assert_not_null(strstr(rf, "answers"));
  free(rf);
  world_release(&w);
}

Test(episode, batched_judging_leaves_out_a_failed_answer) {
  struct world w;
  world_init(&w, BATCH, "rubric", RUBRIC_BOUNDS, &method_agentic);
  set_scores(w.f.strong_met, 2, 2, 2);
  w.f.fail_label = "weak";
  w.f.fail_sample = 1;
  drive(&w);
  cr_assert_eq(count(&w, "batch_weak"), 1);
  cr_assert_null(strstr(user_content(body_of(&w, "batch_weak", 0)), "RESPONSE 3:"));
  cr_assert_eq(json_array_size(json_object_get(w.f.recs[0].cand, "weak_scores")), 2);
  world_release(&w);
}

Test(episode, batched_judging_invalid_reply_is_repaired_then_an_error) {
  struct world w;
  world_init(&w, BATCH, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.f.bad_batch = "{\"answers\": [{\"answer\": 1, \"verdicts\": []}]}";
  w.f.bad_judge_repairs = 1;
  drive(&w);
  cr_assert_str_eq(reason_of(&w, 0), "error:weak");
  cr_assert_str_eq(w.f.log, "challenger quality weak weak weak batch_weak batch_weak_repair");
  const char *repair = user_content(body_of(&w, "batch_weak_repair", 0));
  cr_assert_not_null(strstr(repair, "NOTE: your previous grading"));
  const json_t *j = json_object_get(w.f.recs[0].cand, "judgements");
  cr_assert_eq(jx_int(j, "invalid", 0), 3);
  cr_assert_eq(jx_int(j, "repaired", 0), 3);
  cr_assert_not_null(strstr(jx_str(w.f.recs[0].cand, "detail"), "invalid batched judgement"));
  world_release(&w);
}

/* ---- several challengers per round (roles.challenger.parallel) -------------------------- */

static const char *rec_reason(const struct world *w, int i) {
  return w->f.recs[i].reason ? w->f.recs[i].reason : "accepted";
}
static int rec_index(const struct world *w, int i) {
  return (int)jx_int(w->f.recs[i].cand, "index", -1);
}

Test(episode, parallel_screens_every_candidate_then_evaluates_in_order) {
  struct world w;
  world_init(&w, NULL, "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.rc->roles[RECIPE_ROLE_CHALLENGER].parallel = 3;
  set_scores(w.f.strong_met, 2, 2, 2); /* the first survivor is accepted */
  cr_assert_eq(drive(&w), EP_FINISHED);
  /* the three challengers go out together, each screened before any solver runs */
  cr_assert_str_eq(w.f.log,
                   "challenger challenger challenger quality quality quality weak weak weak "
                   "judge_weak judge_weak judge_weak strong strong strong judge_strong "
                   "judge_strong judge_strong");
  for (int k = 0; k < 3; k++) {
    char want[128];
    snprintf(want, sizeof want, "you are challenger %d of 3. Take angle %d of 3", k + 1, k + 1);
    cr_assert_not_null(strstr(user_content(body_of(&w, "challenger", k)), want));
  }
  /* their seeds differ (candidate k draws sample + k*64) */
  cr_assert_neq(jx_int(body_of(&w, "challenger", 0), "seed", 0),
                jx_int(body_of(&w, "challenger", 1), "seed", 0));
  /* every candidate has its record: the survivors not evaluated first, then the kept one */
  cr_assert_eq(w.f.n_recs, 3);
  cr_assert_eq(rec_index(&w, 0), 1);
  cr_assert_str_eq(rec_reason(&w, 0), "not_evaluated:accepted_earlier");
  cr_assert_eq(rec_index(&w, 1), 2);
  cr_assert_eq(rec_index(&w, 2), 0);
  cr_assert_null(reason_of(&w, 2));
  cr_assert(w.f.recs[2].finished && !w.f.recs[0].finished);
  cr_assert_eq(jx_int(json_object_get(w.f.recs[1].cand, "screen"), "order", -1), 2);
  cr_assert_eq(jx_int(json_object_get(w.f.recs[1].cand, "screen"), "of", -1), 3);
  world_release(&w);
}

Test(episode, parallel_duplicates_rejections_and_a_round_without_survivors) {
  struct world w;
  world_init(&w, "budgets: {rounds_per_source: 2}\n", "rubric", RUBRIC_BOUNDS, &method_agentic);
  w.rc->roles[RECIPE_ROLE_CHALLENGER].parallel = 3;
  w.f.chal_dup = 1;                     /* every challenger asks the same question */
  set_scores(w.f.weak_met, 2, 2, 2);    /* too easy */
  cr_assert_eq(drive(&w), EP_FINISHED); /* exhausted */
  cr_assert_eq(w.f.n_recs, 6);
  /* round 1: candidates 1 and 2 repeat candidate 0 (index order, whatever came first) */
  cr_assert_str_eq(rec_reason(&w, 0), "check:duplicate");
  cr_assert_eq(rec_index(&w, 0), 1);
  cr_assert_str_eq(rec_reason(&w, 1), "check:duplicate");
  cr_assert_str_eq(rec_reason(&w, 2), "too_easy");
  cr_assert_eq(rec_index(&w, 2), 0);
  cr_assert(json_is_null(json_object_get(json_object_get(w.f.recs[0].cand, "screen"), "order")));
  /* round 2: all three repeat round 1's question: no survivor, no solver; the last candidate's
   * own failure ends the round */
  for (int i = 3; i < 6; i++) {
    cr_assert_str_eq(rec_reason(&w, i), "check:duplicate");
    cr_assert_eq(w.f.recs[i].round, 2);
  }
  cr_assert_eq(rec_index(&w, 5), 2);
  cr_assert(w.f.recs[5].finished);
  cr_assert_eq(count(&w, "weak"), 3); /* round 1's one survivor only */
  cr_assert_eq(count(&w, "quality"), 3);
  /* round 2's feedback covers round 1's evaluated candidate only */
  const char *fb = user_content(body_of(&w, "challenger", 3));
  cr_assert_not_null(strstr(fb, "TOO EASY"));
  cr_assert_null(strstr(fb, "FAILED QUALITY CHECK"));
  world_release(&w);
}
