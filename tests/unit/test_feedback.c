/* test_feedback.c - challenger feedback block, orchestrator history, and the default
 * prompts rendered against the prompt <-> sim contract. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "eval/feedback.h"
#include "prompt/template.h"

#include "helpers.h"

static const struct fb_round MIXED[] = {
    {1, "quality-check", "Which fact?", "check:leakage", 0, 0, 0, 0, "check:leakage",
     "62% of the reference answer's 8-word sequences appear verbatim in the context", NULL},
    {2, "recall", "What is F-3a9c?", "too_easy", 0.8333, 0, 0, 0, NULL, NULL, "F-3a9c is 17."},
    {3, "synthesis", "How do F-1b2c and\n  F-77aa interact?", "failed_on_strong", 0.2, 0.4, 0.2, 1,
     NULL, NULL, NULL},
    {4, NULL, NULL, "parse_error", 0, 0, 0, 0, NULL, "reply truncated: unbalanced braces at byte 0",
     NULL},
    {5, "prediction", "What if F-0001 doubled?", "accepted", 0.3, 0.9, 0.6, 1, NULL, NULL, NULL},
    {6, "design", "Pick a design.", "too_easy", 0.7, 0, 0, 0, NULL, NULL, NULL},
    {7, "tradeoff", "Which tradeoff?", "no_gap", 0.55, 0.7, 0.15, 1, NULL, NULL, NULL},
    {8, "edge", "Edge case?", "too_hard", 0.2, 0, 0, 0, NULL, NULL, NULL},
    {9, "q", "Leaky?", "quality:leakage", 0, 0, 0, 0, "leakage", "The context states F-3a9c = 17.",
     NULL},
    {10, "q", "Infra", "solver_error", 0, 0, 0, 0, NULL, NULL, NULL},
};

static const char *EXPECTED =
    "REFINEMENT: The following questions were previously generated for this source but did not meet our criteria:\n"
    "\n"
    "Questions that were TOO EASY (weak model scored too high):\n"
    "1. [recall] \"What is F-3a9c?\" — weak avg: 83%\n"
    "2. [design] \"Pick a design.\" — weak avg: 70%\n"
    "\n"
    "Questions that FAILED ON STRONG (weak was low but strong also struggled or scored worse):\n"
    "3. [synthesis] \"How do F-1b2c and F-77aa interact?\" — weak avg: 20%, strong avg: 40%, gap: 20%\n"
    "4. [tradeoff] \"Which tradeoff?\" — weak avg: 55%, strong avg: 70%, gap: 15%\n"
    "5. [edge] \"Edge case?\" — weak avg: 20%, strong avg: n/a, gap: n/a\n"
    "\n"
    "Questions that FAILED QUALITY CHECK (quality verifier rejected):\n"
    "6. [quality-check] \"Which fact?\" — QV reason: check:leakage: 62% of the reference answer's 8-word "
    "sequences appear verbatim in the context\n"
    "7. [unspecified] \"(no question: the reply did not parse)\" — QV reason: parse_error: reply truncated: "
    "unbalanced braces at byte 0\n"
    "8. [q] \"Leaky?\" — QV reason: leakage: The context states F-3a9c = 17.\n"
    "\n"
    "Generate an ENTIRELY NEW question from a DIFFERENT angle that requires deeper reasoning.";

Test(feedback, mixed_history_exact_text) {
  struct buf b = BUF_INIT;
  cr_assert_eq(fb_compose(&b, MIXED, 10, NULL), 0);
  cr_assert_str_eq(buf_str(&b), EXPECTED);
  buf_release(&b);
}

Test(feedback, with_orchestrator_analysis) {
  struct buf b = BUF_INIT;
  cr_assert_eq(
      fb_compose(&b, MIXED, 2, "\nAim for target difficulty around 0.62.\nAvoid recall.\n\n"), 0);
  const char *want =
      "REFINEMENT: The following questions were previously generated for this source but did not meet our criteria:\n"
      "\n"
      "Questions that were TOO EASY (weak model scored too high):\n"
      "1. [recall] \"What is F-3a9c?\" — weak avg: 83%\n"
      "\n"
      "Questions that FAILED QUALITY CHECK (quality verifier rejected):\n"
      "2. [quality-check] \"Which fact?\" — QV reason: check:leakage: 62% of the reference answer's 8-word "
      "sequences appear verbatim in the context\n"
      "\n"
      "Generate an ENTIRELY NEW question from a DIFFERENT angle that requires deeper reasoning.\n"
      "\n"
      "Instructions from the lead data scientist:\n"
      "Aim for target difficulty around 0.62.\nAvoid recall.";
  cr_assert_str_eq(buf_str(&b), want);
  buf_release(&b);
}

Test(feedback, empty_groups_omitted_and_nothing_for_no_rejections) {
  struct buf b = BUF_INIT;
  cr_assert_eq(fb_compose(&b, NULL, 0, NULL), 0);
  cr_assert_str_eq(buf_str(&b), "");
  /* only accepted / infrastructure rounds: no block at all */
  cr_assert_eq(fb_compose(&b, &MIXED[4], 1, NULL), 0);
  cr_assert_eq(fb_compose(&b, &MIXED[9], 1, ""), 0);
  cr_assert_str_eq(buf_str(&b), "");
  /* only the analysis */
  cr_assert_eq(fb_compose(&b, &MIXED[4], 1, "Go deeper."), 0);
  cr_assert_str_eq(buf_str(&b), "Instructions from the lead data scientist:\nGo deeper.");
  buf_reset(&b);
  /* a single FAILED ON STRONG item is numbered 1 and no other heading appears */
  cr_assert_eq(fb_compose(&b, &MIXED[2], 1, NULL), 0);
  cr_assert(strstr(buf_str(&b), "\n\nQuestions that FAILED ON STRONG"), "%s", buf_str(&b));
  cr_assert(strstr(buf_str(&b), "\n1. [synthesis]"), "%s", buf_str(&b));
  cr_assert_null(strstr(buf_str(&b), "TOO EASY"));
  cr_assert_null(strstr(buf_str(&b), "QUALITY CHECK"));
  buf_release(&b);
}

Test(feedback, group_mapping) {
  cr_assert_eq(fb_group_of("too_easy"), FB_TOO_EASY);
  cr_assert_eq(fb_group_of("too_hard"), FB_FAILED_ON_STRONG);
  cr_assert_eq(fb_group_of("failed_on_strong"), FB_FAILED_ON_STRONG);
  cr_assert_eq(fb_group_of("no_gap"), FB_FAILED_ON_STRONG);
  cr_assert_eq(fb_group_of("parse_error"), FB_QUALITY);
  cr_assert_eq(fb_group_of("check:duplicate"), FB_QUALITY);
  cr_assert_eq(fb_group_of("quality:leakage"), FB_QUALITY);
  cr_assert_eq(fb_group_of("accepted"), FB_NONE);
  cr_assert_eq(fb_group_of(NULL), FB_NONE);
  cr_assert_eq(fb_group_of("solver_error"), FB_NONE);
}

Test(feedback, percentages_round_and_gap_can_be_negative) {
  struct fb_round r = {1, "t", "Q", "failed_on_strong", 0.625, 0.4, -0.225, 1, NULL, NULL, NULL};
  struct buf b = BUF_INIT;
  cr_assert_eq(fb_compose(&b, &r, 1, NULL), 0);
  cr_assert(strstr(buf_str(&b), "— weak avg: 63%, strong avg: 40%, gap: -23%"), "%s", buf_str(&b));
  buf_release(&b);
}

Test(feedback, long_question_cut_on_utf8_boundary) {
  static char q[3000];
  for (int i = 0; i < 1000; i++) memcpy(q + 2 * i, "\xc3\xa9", 2);
  q[2000] = 0;
  struct fb_round r = {1, "t", q, "too_easy", 0.9, 0, 0, 0, NULL, NULL, NULL};
  struct buf b = BUF_INIT;
  cr_assert_eq(fb_compose(&b, &r, 1, NULL), 0);
  const char *s = strstr(buf_str(&b), "1. [t] \"");
  cr_assert_not_null(s);
  s += strlen("1. [t] \"");
  const char *e = strstr(s, "…\" — weak avg: 90%");
  cr_assert_not_null(e, "%s", buf_str(&b));
  cr_assert_eq((size_t)(e - s), (size_t)FB_MAX_QUESTION);
  buf_release(&b);
}

Test(feedback, history_block) {
  struct buf b = BUF_INIT;
  cr_assert_eq(fb_history(&b, NULL, 0), 0);
  cr_assert_str_eq(buf_str(&b), "No earlier rounds for this source.");
  buf_reset(&b);
  cr_assert_eq(fb_history(&b, MIXED, 3), 0);
  const char *want =
      "Questions that were TOO EASY (weak model scored too high):\n"
      "1. [recall] \"What is F-3a9c?\" — weak avg: 83%\n"
      "   round 2, verdict too_easy; a weak answer began: \"F-3a9c is 17.\"\n"
      "\n"
      "Questions that FAILED ON STRONG (weak was low but strong also struggled or scored worse):\n"
      "2. [synthesis] \"How do F-1b2c and F-77aa interact?\" — weak avg: 20%, strong avg: 40%, gap: 20%\n"
      "   round 3, verdict failed_on_strong\n"
      "\n"
      "Questions that FAILED QUALITY CHECK (quality verifier rejected):\n"
      "3. [quality-check] \"Which fact?\" — QV reason: check:leakage: 62% of the reference answer's 8-word "
      "sequences appear verbatim in the context\n"
      "   round 1, verdict check:leakage\n"
      "\n"
      "Rounds so far: 3 (too easy: 1, failed on strong: 1, failed quality check: 1, other: 0).";
  cr_assert_str_eq(buf_str(&b), want);
  buf_release(&b);
}

/* Several candidates of one round (roles.challenger.parallel): each is an item; the history
 * counts rounds and items apart. */
Test(feedback, history_parallel_round) {
  const struct fb_round r[] = {
      {1, "recall", "First?", "too_easy", 0.8, 0, 0, 0, NULL, NULL, NULL},
      {1, "recall", "Second?", "no_gap", 0.4, 0.5, 0.1, 1, NULL, NULL, NULL},
      {2, "design", "Third?", "too_easy", 0.9, 0, 0, 0, NULL, NULL, NULL},
  };
  struct buf b = BUF_INIT;
  cr_assert_eq(fb_history(&b, r, 3), 0);
  cr_assert(strstr(buf_str(&b),
                   "\n\nRounds so far: 2, with 3 candidates (too easy: 2, failed on "
                   "strong: 1, failed quality check: 0, other: 0)."),
            "%s", buf_str(&b));
  cr_assert(strstr(buf_str(&b), "   round 1, verdict no_gap"));
  buf_reset(&b);
  cr_assert_eq(fb_compose(&b, r, 3, NULL), 0);
  cr_assert(strstr(buf_str(&b), "1. [recall] \"First?\"") &&
                strstr(buf_str(&b), "3. [recall] \"Second?\""),
            "%s", buf_str(&b));
  buf_release(&b);
}

Test(feedback, angle_line) {
  char t[1024];
  fb_angle_line(t, sizeof t, 2, 3);
  const char *head = "\n\nThis round 3 challengers write a candidate";
  cr_assert(!strncmp(t, head, strlen(head)), "%s", t);
  cr_assert(strstr(t, "you are challenger 2 of 3. Take angle 2 of 3:"), "%s", t);
  json_t *texts = fb_program_texts();
  const char *spec = json_string_value(
      json_object_get(json_object_get(texts, "challenger_angle"), "text"));
  cr_assert(spec && strstr(spec, "you are challenger <k> of <n>"));
  json_decref(texts);
}

Test(feedback, buffer_cap_reported) {
  struct buf b;
  buf_init(&b, 64);
  cr_assert_eq(fb_compose(&b, MIXED, 10, NULL), AD_ETOOBIG);
  buf_release(&b);
}

/* ---- default prompts keep the prompt <-> sim contract (helpers/contract.md) ---- */

/* prompts/<name> (or $AUTODATA_PROMPTS/<name>), malloc'd. */
static char *slurp_prompt(const char *name, size_t *n) {
  const char *dir = getenv("AUTODATA_PROMPTS");
  const char *path = th_path(dir && *dir ? dir : "prompts", name);
  cr_assert_eq(access(path, R_OK), 0,
               "cannot open %s (run from the repository root or set AUTODATA_PROMPTS)", path);
  return th_read_file(path, n);
}

/* Render prompts/<name> with vars; returns system and user texts (malloc'd). */
static void render(const char *name, json_t *vars, char **sys, char **user) {
  size_t n;
  char *text = slurp_prompt(name, &n);
  struct tpl_prompt p;
  char err[512];
  cr_assert_eq(tpl_prompt_compile(text, n, name, &p, err, sizeof err), 0, "%s", err);
  json_t *msgs = NULL;
  cr_assert_eq(tpl_prompt_render(&p, NULL, vars, 0, &msgs, err, sizeof err), 0, "%s: %s", name,
               err);
  *sys = NULL;
  *user = NULL;
  size_t i;
  json_t *m;
  json_array_foreach(msgs, i, m) {
    const char *role = json_string_value(json_object_get(m, "role"));
    char *c = strdup(json_string_value(json_object_get(m, "content")));
    if (!strcmp(role, "system")) *sys = c;
    else *user = c;
  }
  cr_assert_not_null(*sys, "%s has a system part", name);
  cr_assert_not_null(*user);
  json_decref(msgs);
  tpl_prompt_release(&p);
  free(text);
}

static json_t *challenger_vars(const char *feedback, const char *instructions) {
  return json_pack("{s:s,s:s,s:s,s:i,s:s,s:s,s:i,s:i,s:i,s:s,s:b}", "source_title", "A study",
                   "source_text", "The study reports F-3a9c = 17 among other things.", "goal", "",
                   "round", 2, "feedback", feedback, "instructions", instructions, "max_weight", 7,
                   "rubric_min", 1, "rubric_max", 20, "task", "rubric", "verifiable", 0);
}

Test(prompts, challenger_rubric_contract) {
  struct fb_round r = {1, "recall", "What is F-3a9c?", "too_easy", 0.83, 0, 0, 0, NULL, NULL, NULL};
  struct buf fb = BUF_INIT;
  cr_assert_eq(fb_compose(&fb, &r, 1, NULL), 0);
  json_t *v = challenger_vars(buf_str(&fb), "Aim higher. Target difficulty around 0.62.");
  char *sys, *user;
  render("challenger-rubric.md", v, &sys, &user);
  char *all = NULL;
  cr_assert(asprintf(&all, "%s\n\n%s", sys, user) > 0);
  cr_assert(strcasestr(all, "The context must not contain the answer"));
  cr_assert(strcasestr(all, "weights are integers"));
  cr_assert(strcasestr(all, "Reply with only the JSON object"));
  cr_assert(strstr(all, "\"rubric\""), "the sim tells the task kind by the \"rubric\" key");
  cr_assert(strstr(user, "F-3a9c = 17"), "the source text is in the user message verbatim");
  cr_assert(strstr(user, buf_str(&fb)), "the feedback block is in the user message verbatim");
  cr_assert(strstr(user, "Instructions from the lead data scientist:\nAim higher."), "%s", user);
  cr_assert_null(strstr(sys, "target difficulty"), "the template itself sets no target");
  free(all);
  free(sys);
  free(user);
  json_decref(v);
  /* round 1: no feedback, no instructions headings */
  v = challenger_vars("", "");
  render("challenger-rubric.md", v, &sys, &user);
  cr_assert_null(strstr(user, "Instructions from the lead"));
  cr_assert_null(strstr(user, "REFINEMENT"));
  cr_assert(strstr(user, "Generate a challenging question-answer pair"));
  free(sys);
  free(user);
  json_decref(v);
  buf_release(&fb);
}

Test(prompts, challenger_verifiable_contract) {
  json_t *v = challenger_vars("", "");
  char *sys, *user;
  render("challenger-verifiable.md", v, &sys, &user);
  char *all = NULL;
  cr_assert(asprintf(&all, "%s\n\n%s", sys, user) > 0);
  cr_assert(strstr(all, "\"answer\""));
  cr_assert_null(strstr(all, "\"rubric\""),
                 "a verifiable prompt must not mention a \"rubric\" key");
  cr_assert(strcasestr(all, "The context must not contain the answer"));
  cr_assert(strcasestr(all, "Reply with only the JSON object"));
  free(all);
  free(sys);
  free(user);
  json_decref(v);
}

Test(prompts, solver_contract) {
  for (int verif = 0; verif < 2; verif++) {
    json_t *v = json_pack("{s:s,s:s,s:b}", "context", verif ? "" : "Some background.", "question",
                          "What is F-3a9c?", "verifiable", verif);
    char *sys, *user;
    render("solver.md", v, &sys, &user);
    const char *c = strstr(user, "CONTEXT:"), *q = strstr(user, "QUESTION:");
    cr_assert(c && q && c < q, "CONTEXT: comes before QUESTION:");
    cr_assert_null(strstr(c + 1, "CONTEXT:"), "one CONTEXT: heading");
    char *all = NULL;
    cr_assert(asprintf(&all, "%s\n\n%s", sys, user) > 0);
    if (verif) cr_assert(strstr(all, "ANSWER:"), "verifiable solvers end with ANSWER:");
    else cr_assert_null(strstr(all, "ANSWER:"), "rubric solvers must not be asked for ANSWER:");
    if (verif) cr_assert(strstr(user, "(none)"), "empty context shown as (none)");
    free(all);
    free(sys);
    free(user);
    json_decref(v);
  }
}

Test(prompts, judge_contract) {
  json_t *v = json_pack("{s:s,s:[{s:i,s:i,s:s},{s:i,s:i,s:s}],s:s}", "question", "Q?", "rubric",
                        "number", 1, "weight", 5, "criterion", "States that F-3a9c is 17", "number",
                        2, "weight", 2, "criterion", "States that F-0b1c is 4", "response",
                        "F-3a9c is 17.");
  char *sys, *user;
  render("judge-rubric.md", v, &sys, &user);
  const char *q = strstr(user, "QUESTION:"), *r = strstr(user, "RUBRIC:"),
             *s = strstr(user, "RESPONSE:");
  cr_assert(q && r && s && q < r && r < s, "%s", user);
  cr_assert(
      strstr(
          user,
          "RUBRIC:\n1. (weight 5) States that F-3a9c is 17\n2. (weight 2) States that F-0b1c is 4\n"),
      "%s", user);
  cr_assert_str_eq(s + strlen("RESPONSE:\n"), "F-3a9c is 17.", "the response runs to the end");
  cr_assert(strstr(sys, "\"verdicts\""));
  free(sys);
  free(user);
  json_decref(v);
  v = json_pack("{s:s,s:s,s:s}", "question", "Q?", "reference_answer", "17", "response",
                "ANSWER: 17");
  render("judge-verifiable.md", v, &sys, &user);
  q = strstr(user, "QUESTION:");
  r = strstr(user, "REFERENCE ANSWER:");
  s = strstr(user, "RESPONSE:");
  cr_assert(q && r && s && q < r && r < s, "%s", user);
  cr_assert_null(strstr(user, "RUBRIC:"));
  cr_assert(strstr(sys, "\"correct\""));
  free(sys);
  free(user);
  json_decref(v);
}

Test(prompts, quality_and_orchestrator_contract) {
  json_t *v = json_pack("{s:s,s:s,s:s,s:b,s:i,s:i,s:i}", "source_text", "The study.",
                        "candidate_json", "{\"question\": \"Q\", \"answer\": \"4\"}", "task",
                        "verifiable", "verifiable", 1, "rubric_min", 1, "rubric_max", 20,
                        "max_weight", 7);
  char *sys, *user;
  render("quality.md", v, &sys, &user);
  const char *c = strstr(user, "CANDIDATE:");
  cr_assert_not_null(c);
  cr_assert_null(strstr(c + 1, "CANDIDATE:"));
  cr_assert(strncmp(c, "CANDIDATE:\n{\"question\"", 22) == 0, "JSON follows the heading: %s", c);
  cr_assert(strstr(sys, "\"pass\""));
  cr_assert_null(strstr(sys, "rubric_malformed"), "no rubric check for verifiable tasks");
  free(sys);
  free(user);
  json_decref(v);
  struct fb_round r = {1, "recall", "What is F-3a9c?", "too_easy", 0.83, 0, 0, 0, NULL, NULL, NULL};
  struct buf h = BUF_INIT;
  cr_assert_eq(fb_history(&h, &r, 1), 0);
  v = json_pack("{s:s,s:s,s:s,s:i,s:s}", "source_title", "A study", "goal", "", "task", "rubric",
                "round", 2, "history", buf_str(&h));
  render("orchestrator.md", v, &sys, &user);
  cr_assert(strstr(user, "A study"));
  cr_assert(strstr(user, "Next attempt: 2"));
  cr_assert(strstr(user, "Questions that were TOO EASY (weak model scored too high):\n1. [recall]"),
            "%s", user);
  free(sys);
  free(user);
  json_decref(v);
  buf_release(&h);
}
