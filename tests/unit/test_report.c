/* test_report.c - the run's outputs (report.h): dataset.jsonl bytes and order,
 * rejected.jsonl, the data card's sections and secrets scrub, training exports
 * in every format, the seeded held-out split, the card/export commands and
 * their error cases. Every store is built through the store API. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "eval/feedback.h"
#include "report/report.h"
#include "report/report_html.h"
#include "store/store.h"
#include "util/hash.h"
#include "util/jsonx.h"

#include "helpers.h"

static char tdir[64];
static char dbpath[160];

static void tmp_setup(void) {
  th_mkdtemp(tdir, sizeof tdir, "report");
  snprintf(dbpath, sizeof dbpath, "%s/store.db", tdir);
}

static void tmp_teardown(void) { th_rmtree(tdir); /* best effort */ }

TestSuite(report, .init = tmp_setup, .fini = tmp_teardown);

#define SHA_RECIPE "1111111111111111111111111111111111111111111111111111111111111111"
#define SHA_CHAL "c0ffee0000000000000000000000000000000000000000000000000000000001"
#define SHA_JUDGE "d00d000000000000000000000000000000000000000000000000000000000002"
#define CHAL_TEXT \
  "You are the challenger.\n```json\n{\"question\": \"...\"}\n```\nWrite {{source}}."
#define JUDGE_TEXT "Judge the answer against each criterion. Reply with JSON."
#define SHA_COT "c07c07000000000000000000000000000000000000000000000000000000000c"
#define SHA_ORCH "0c0c0c000000000000000000000000000000000000000000000000000000000e"
#define COT_TEXT "Step 1 #Main Elements List#, Step 2 #Plan#, Step 3 #Synthetic Example#."

static store *open_rw(void) {
  store *st = NULL;
  int rc = store_open(dbpath, 0, &st);
  cr_assert_eq(rc, 0, "open: %s", store_errmsg(st));
  return st;
}

static store *open_ro(void) {
  store *st = NULL;
  int rc = store_open(dbpath, STORE_OPEN_READONLY, &st);
  cr_assert_eq(rc, 0, "open ro: %s", store_errmsg(st));
  return st;
}

/* method: NULL for an agentic run as recorded before methods existed, else the
 * run info's `method` object (stolen). A baseline run also gets what the loop
 * records for one: its own challenger prompt, and no orchestrator among the
 * prompts and hashes although the recipe declares one. */
static store_id begin_method(store *st, const char *command_line, json_t *method) {
  json_t *hashes = json_pack("{s:s, s:s}", "challenger", method ? SHA_COT : SHA_CHAL, "judge",
                             SHA_JUDGE);
  json_t *prices = json_pack("{s:{s:f, s:f}}", "m-strong", "prompt_per_mtok", 2.0,
                             "completion_per_mtok", 10.0);
  json_t *extra = json_pack(
      "{s:{s:s, s:s, s:i, s:s, s:s, s:{s:s, s:i},"
      "    s:{s:{s:[s], s:i}},"
      "    s:{s:{s:s, s:s, s:f, s:n, s:n, s:i, s:{s:s, s:s}},"
      "       s:{s:s, s:s, s:f, s:f, s:i, s:i, s:{s:s, s:s}},"
      "       s:{s:s, s:s, s:f, s:n, s:n, s:i, s:{s:s, s:s}},"
      "       s:{s:s, s:s, s:f, s:n, s:n, s:i, s:{s:s, s:s}}},"
      "    s:{s:[s, s, s], s:b, s:f, s:s},"
      "    s:{s:i, s:i, s:i}, s:{s:i, s:f}},"
      " s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}},"
      " s:{s:s, s:i, s:s, s:i}}",
      "recipe", "name", "cs-qa", "task", "rubric", "seed", 7, "method", "agentic", "goal",
      "Hard questions | grounded", "sources", "path", "corpus.jsonl", "max_chars", 20000,
      "endpoints", "local", "base_urls", "http://127.0.0.1:8000/v1", "max_inflight", 32, "roles",
      "challenger", "endpoint", "local", "model", "m-chal", "temperature", 0.7, "top_p",
      "max_tokens", "samples", 1, "prompt", "path", "prompts/challenger.md", "sha256", SHA_CHAL,
      "weak", "endpoint", "local", "model", "m-weak", "temperature", 1.0, "top_p", 0.95,
      "max_tokens", 2048, "samples", 3, "prompt", "path", "prompts/solver.md", "sha256", "5050",
      "strong", "endpoint", "local", "model", "m-strong", "temperature", 1.0, "top_p", "max_tokens",
      "samples", 3, "prompt", "path", "prompts/solver.md", "sha256", "5050", "judge", "endpoint",
      "local", "model", "m-judge", "temperature", 0.0, "top_p", "max_tokens", "samples", 1,
      "prompt", "path", "prompts/judge.md", "sha256", SHA_JUDGE, "accept", "bounds",
      "weak_mean <= 0.65", "strong_mean >= 0.6", "gap >= 0.2", "short_circuit", 1, "pass_threshold",
      0.5, "preset", "cs-deployed", "budgets", "rounds_per_source", 5, "examples_per_source", 1,
      "max_calls", 0, "checks", "leakage_ngram", 8, "leakage_max_overlap", 0.5, "prompts",
      "challenger", "path", "prompts/challenger.md", "sha256", SHA_CHAL, "text", CHAL_TEXT, "judge",
      "path", "prompts/judge.md", "sha256", SHA_JUDGE, "text", JUDGE_TEXT, "corpus", "path",
      "corpus.jsonl", "count", 4, "sha256", "feedbeef", "truncated", 1);
  cr_assert_not_null(extra);
  if (method) {
    json_t *recipe = json_object_get(extra, "recipe");
    json_object_set_new(json_object_get(recipe, "roles"), "orchestrator",
                        json_pack("{s:s, s:s, s:f, s:i, s:{s:s, s:s}}", "endpoint", "local",
                                  "model", "m-orch", "temperature", 0.7, "samples", 1, "prompt",
                                  "path", "prompts/orchestrator.md", "sha256", SHA_ORCH));
    json_object_set_new(json_object_get(extra, "prompts"), "challenger",
                        json_pack("{s:s, s:s, s:s}", "path",
                                  "/opt/prompts/cot-self-instruct-rubric.md", "sha256", SHA_COT,
                                  "text", COT_TEXT));
    json_object_set_new(extra, "method", method);
  }
  struct store_run_info info = {.recipe_name = "cs-qa",
                                .recipe_sha256 = SHA_RECIPE,
                                .prompt_hashes = hashes,
                                .seed = 7,
                                .version = "0.3.0",
                                .command_line = command_line,
                                .prices = prices,
                                .extra = extra};
  store_id run = 0;
  int resumed = -1;
  int rc = store_run_begin(st, &info, 0, &run, &resumed);
  cr_assert_eq(rc, 0, "%s", store_errmsg(st));
  json_decref(hashes);
  json_decref(prices);
  json_decref(extra);
  return run;
}

static store_id begin(store *st, const char *command_line) {
  return begin_method(st, command_line, NULL);
}

static json_t *example(const char *id, const char *sid, double weak, int rounds) {
  return json_pack(
      "{s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:[{s:s, s:i}], s:[f], s:[i], s:f, "
      "s:i, s:f, s:i, s:i, s:{s:s}}",
      "id", id, "source_id", sid, "source_title", "Paper é", "task", "rubric", "question_type",
      "why", "context", "C", "question", "Q?", "rubric", "criterion", "c1", "weight", 2,
      "weak_scores", weak, "strong_scores", 1, "weak_mean", weak, "strong_mean", 1, "gap",
      1.0 - weak, "weak_std", 0, "rounds_used", rounds, "prompt_hashes", "challenger", SHA_CHAL);
}

static json_t *cand_record(const char *sid, int round, const char *verdict, const char *reason,
                           const char *detail, double weak_mean) {
  return json_pack(
      "{s:s, s:i, s:i, s:s, s:{s:s, s:s, s:s, s:s, s:[]}, s:b, s:s, s:s?, s:s?, "
      "s:{s:b, s:[], s:s}, s:[f], s:[], s:{s:i, s:f, s:f}}",
      "source_id", sid, "round", round, "index", 0, "instructions", "go harder", "candidate",
      "question_type", "how", "context", "ctx", "question", "What is the question?",
      "reference_answer", "ref", "rubric", "repaired", 0, "verdict", verdict, "reason", reason,
      "detail", detail, "quality", "pass", 1, "issues", "feedback", "ok", "weak_scores", weak_mean,
      "strong_scores", "stats", "n_weak", 1, "weak_mean", weak_mean, "gap", 0.0);
}

static void put_cand(store *st, store_id run, const char *sid, int round, const char *verdict,
                     const char *reason, const char *detail, double wm) {
  json_t *rec = cand_record(sid, round, verdict, reason, detail, wm);
  cr_assert_not_null(rec);
  cr_assert_eq(store_candidate_put(st, run, sid, round, 0, verdict, reason, rec), 0, "%s",
               store_errmsg(st));
  json_decref(rec);
}

static void put_call(store *st, store_id run, const char *role, const char *model, int hit,
                     int retries, int64_t pt, int64_t ct) {
  struct store_call c = {.run = run,
                         .role = role,
                         .source_id = "s1",
                         .round = 1,
                         .endpoint = "local",
                         .model = model,
                         .request = "{}",
                         .reply = "{}",
                         .http_status = 200,
                         .prompt_tokens = pt,
                         .completion_tokens = ct,
                         .latency_us = 1000,
                         .attempts = hit ? 0 : retries + 1,
                         .retries = retries,
                         .cache_hit = hit};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
}

/* The standard fixture: s1 accepted in round 2, s2 in round 1, s3 exhausted
 * after 3 rejections, s4 pending; calls for the cost table. */
static void build_store(const char *command_line) {
  store *st = open_rw();
  store_id run = begin(st, command_line ? command_line : "autodata run cs.yaml");
  const char *sids[] = {"s1", "s2", "s3", "s4"};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(store_source_put(st, run, sids[i], "T", SHA_RECIPE), 0, "%s", store_errmsg(st));
  put_cand(st, run, "s3", 2, "rejected", "quality:leakage", "8-gram overlap 0.7", 0.0);
  put_cand(st, run, "s1", 1, "rejected", "too_easy", "weak_mean 0.9 > 0.65", 0.9);
  put_cand(st, run, "s3", 1, "rejected", "too_easy", NULL, 0.8);
  put_cand(st, run, "s3", 3, "rejected", "failed_on_strong", "strong_mean 0.3 < 0.6", 0.1);
  /* examples put out of id order: the dataset must come sorted */
  json_t *e2 = example("ex-b", "s2", 0.5, 1), *e1 = example("ex-a", "s1", 0.25, 2);
  json_t *r2 = cand_record("s2", 1, "accepted", NULL, NULL, 0.5);
  json_t *r1 = cand_record("s1", 2, "accepted", NULL, NULL, 0.25);
  struct store_episode_end ends[2] = {
      {"s2", STORE_SRC_DONE, 1, 1, 0, "accepted", NULL, r2, "ex-b", e2},
      {"s1", STORE_SRC_DONE, 2, 2, 0, "accepted", NULL, r1, "ex-a", e1}};
  for (int i = 0; i < 2; i++)
    cr_assert_eq(store_episode_finish(st, run, &ends[i]), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_source_set_state(st, run, "s3", STORE_SRC_EXHAUSTED, 3), 0);
  json_decref(e1);
  json_decref(e2);
  json_decref(r1);
  json_decref(r2);
  put_call(st, run, "challenger", "m-chal", 0, 2, 1000, 500);
  put_call(st, run, "challenger", "m-chal", 1, 0, 1000, 500); /* cache hit: no tokens */
  put_call(st, run, "strong", "m-strong", 0, 0, 1000000, 100000);
  put_call(st, run, "weak", "m-weak", 0, 1, 10, 20);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  store_close(st);
}

#define EX_A                                                                                      \
  "{\"context\":\"C\",\"gap\":0.75,\"id\":\"ex-a\",\"prompt_hashes\":{\"challenger\":\"" SHA_CHAL \
  "\"},\"question\":\"Q?\",\"question_type\":\"why\","                                            \
  "\"rounds_used\":2,\"rubric\":[{\"criterion\":\"c1\",\"weight\":2}],\"source_id\":\"s1\","      \
  "\"source_title\":\"Paper é\",\"strong_mean\":1,\"strong_scores\":[1],\"task\":\"rubric\","    \
  "\"weak_mean\":0.25,\"weak_scores\":[0.25],\"weak_std\":0}\n"

/* ---- dataset.jsonl ---- */

Test(report, dataset_exact_bytes_sorted_by_id) {
  build_store(NULL);
  store *st = open_ro();
  char err[512] = "";
  size_t count = 99;
  const char *p = th_path(tdir, "dataset.jsonl");
  cr_assert_eq(report_write_dataset(st, 0, p, &count, err, sizeof err), 0, "%s", err);
  cr_assert_eq(count, 2);
  char *t = th_read_file(p, NULL);
  cr_assert_eq(strncmp(t, EX_A, strlen(EX_A)), 0, "line 1:\n%s\nexpected:\n%s", t, EX_A);
  const char *l2 = t + strlen(EX_A);
  cr_assert(!strncmp(l2, "{\"context\":\"C\",\"gap\":0.5,\"id\":\"ex-b\"", 34), "%s", l2);
  int lines = 0;
  for (const char *q = t; *q; q++) lines += *q == '\n';
  cr_assert_eq(lines, 2);
  cr_assert_eq(t[strlen(t) - 1], '\n');
  /* byte-stable: a second write gives the same bytes, and no .tmp stays */
  const char *p2 = th_path(tdir, "dataset2.jsonl");
  cr_assert_eq(report_write_dataset(st, 1, p2, NULL, err, sizeof err), 0, "%s", err);
  char *t2 = th_read_file(p2, NULL);
  cr_assert_str_eq(t, t2);
  char tmpname[64];
  snprintf(tmpname, sizeof tmpname, "dataset.jsonl.%ld.tmp", (long)getpid());
  cr_assert_neq(access(th_path(tdir, tmpname), F_OK), 0);
  free(t);
  free(t2);
  store_close(st);
}

/* ---- rejected.jsonl ---- */

Test(report, rejected_lines_ordered_with_fields) {
  build_store(NULL);
  store *st = open_ro();
  char err[512] = "";
  size_t count = 0;
  const char *p = th_path(tdir, "rejected.jsonl");
  cr_assert_eq(report_write_rejected(st, 0, p, &count, err, sizeof err), 0, "%s", err);
  cr_assert_eq(count, 4);
  char *t = th_read_file(p, NULL);
  const char *want[4][3] = {{"s1", "1", "too_easy"},
                            {"s3", "1", "too_easy"},
                            {"s3", "2", "quality:leakage"},
                            {"s3", "3", "failed_on_strong"}};
  char *save = NULL, *line = strtok_r(t, "\n", &save);
  for (int i = 0; i < 4; i++, line = strtok_r(NULL, "\n", &save)) {
    cr_assert_not_null(line, "line %d missing", i);
    json_error_t je;
    json_t *o = json_loads(line, 0, &je);
    cr_assert_not_null(o, "line %d: %s", i, je.text);
    cr_assert_str_eq(jx_str(o, "source_id"), want[i][0]);
    cr_assert_eq(jx_int(o, "round", -1), atoi(want[i][1]));
    cr_assert_eq(jx_int(o, "index", -1), 0);
    cr_assert_str_eq(jx_str(o, "reason"), want[i][2]);
    cr_assert_str_eq(jx_str(o, "question"), "What is the question?");
    cr_assert_str_eq(jx_str(o, "question_type"), "how");
    cr_assert(json_is_object(json_object_get(o, "stats")));
    cr_assert(json_is_object(json_object_get(o, "quality")));
    cr_assert_not_null(json_object_get(o, "detail"), "detail key present (may be null)");
    cr_assert_eq(json_object_size(o), 9, "exactly the documented keys");
    if (i == 2) cr_assert_str_eq(jx_str(o, "detail"), "8-gram overlap 0.7");
    if (i == 1) cr_assert(json_is_null(json_object_get(o, "detail")));
    json_decref(o);
  }
  cr_assert_null(line, "no extra line");
  free(t);
  store_close(st);
}

/* ---- the data card ---- */

static char *render_card(store *st) {
  struct buf b;
  buf_init(&b, 0);
  char err[512] = "";
  int rc = report_card_render(st, 0, &b, err, sizeof err);
  cr_assert_eq(rc, 0, "%s", err);
  return buf_take(&b, NULL);
}

Test(report, card_front_matter_and_sections) {
  build_store(NULL);
  store *st = open_ro();
  char *c = render_card(st);
  /* front matter: between the first two "---" lines, every line is YAML-ish */
  cr_assert(!strncmp(c, "---\n", 4));
  char *end = strstr(c + 4, "\n---\n");
  cr_assert_not_null(end);
  char *fm = strndup(c + 4, (size_t)(end - (c + 4)));
  char *save = NULL;
  int keys = 0;
  for (char *l = strtok_r(fm, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    if (l[0] == '-' && l[1] == ' ') continue; /* list item */
    if (!strncmp(l, "  ", 2)) continue;       /* nested */
    char *colon = strchr(l, ':');
    cr_assert_not_null(colon, "front matter line is not 'key: value': %s", l);
    cr_assert(colon[1] == '\0' || colon[1] == ' ', "%s", l);
    for (char *k = l; k < colon; k++) cr_assert(*k == '_' || (*k >= 'a' && *k <= 'z'), "%s", l);
    keys++;
  }
  cr_assert_geq(keys, 6);
  free(fm);
  cr_assert_not_null(strstr(c, "license: other\n"));
  cr_assert_not_null(strstr(c, "pretty_name: \"cs-qa\"\n"));
  cr_assert_not_null(strstr(c, "size_categories:\n- n<1K\n"));
  cr_assert_not_null(strstr(c, "tags:\n- synthetic\n- autodata\n- agentic-self-instruct\n"));
  cr_assert_not_null(strstr(c, "    path: dataset.jsonl\n"));
  cr_assert_not_null(strstr(c, "task_categories:\n- question-answering\n- text-generation\n"));

  const char *sections[] = {"## Summary",
                            "## How it was made: the agent",
                            "### Roles",
                            "### Acceptance criteria",
                            "### Budgets",
                            "### Quality checks and filters",
                            "## Source corpus",
                            "## Results",
                            "### Rejections by reason",
                            "### Rounds to accept",
                            "### Scores of the accepted examples",
                            "## Cost",
                            "## Prompts",
                            "## Reproduce",
                            "## Limitations"};
  const char *prev = c;
  for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
    const char *s = strstr(c, sections[i]);
    cr_assert_not_null(s, "missing section %s", sections[i]);
    cr_assert_gt(s, prev, "section %s out of order", sections[i]);
    prev = s;
  }
  /* roles with models and decoding, in role order */
  cr_assert_not_null(strstr(c, "| weak | local | m-weak | 1 | 0.95 | 2048 | 3 |"), "%s", c);
  cr_assert_not_null(strstr(c, "| challenger | local | m-chal | 0.7 | default | default | 1 |"));
  cr_assert_lt(strstr(c, "| challenger |"), strstr(c, "| weak |"));
  cr_assert_lt(strstr(c, "| strong |"), strstr(c, "| judge |"));
  cr_assert_not_null(strstr(c, "- `weak_mean <= 0.65`\n- `strong_mean >= 0.6`\n- `gap >= 0.2`"));
  cr_assert_not_null(strstr(c, "preset `cs-deployed`"));
  cr_assert_not_null(strstr(c, "Short-circuit: on"));
  cr_assert_not_null(strstr(c, "| rounds_per_source | 5 |"));
  cr_assert_not_null(strstr(c, "| leakage_ngram | 8 |"));
  cr_assert_not_null(strstr(c, "Goal given to the agent: Hard questions | grounded\n"));
  /* corpus */
  cr_assert_not_null(strstr(c,
                            "- path: `corpus.jsonl`\n- documents: 4\n- sha256: `feedbeef`\n"
                            "- truncated documents: 1 (cut at 20000 characters)"));
  /* results: 2 done, 1 exhausted, 1 pending; 4 rejections */
  cr_assert_not_null(strstr(c, "| processed | 3 |"));
  cr_assert_not_null(strstr(c, "| accepted (done) | 2 |"));
  cr_assert_not_null(strstr(c, "| exhausted (round budget spent) | 1 |"));
  cr_assert_not_null(strstr(c, "| pending or in progress | 1 |"));
  cr_assert_not_null(strstr(c, "| accepted examples | 2 |"));
  cr_assert_not_null(strstr(c,
                            "Acceptance rate: 66.7% of processed sources (2 of 3); 33.3% of "
                            "candidates (2 of 6)"));
  /* rejections by reason: count desc then name */
  const char *tz = strstr(c, "| `too_easy` | 2 | 50.0% |");
  const char *fs = strstr(c, "| `failed_on_strong` | 1 | 25.0% |");
  const char *ql = strstr(c, "| `quality:leakage` | 1 | 25.0% |");
  cr_assert(tz && fs && ql, "%s", c);
  cr_assert(tz < fs && fs < ql);
  /* rounds to accept: one example after 1 round, one after 2 */
  cr_assert_not_null(strstr(c, "| rounds | examples |\n|---|---|\n| 1 | 1 |\n| 2 | 1 |\n"));
  cr_assert_not_null(strstr(c, "Mean rounds to accept: 1.50."));
  /* score spread over the 2 examples: weak 0.25 and 0.5 */
  cr_assert_not_null(strstr(c, "| weak mean | 0.375 | 0.125 | 0.250 | 0.500 |"), "%s", c);
  cr_assert_not_null(strstr(c, "| strong mean | 1.000 | 0.000 | 1.000 | 1.000 |"));
  cr_assert_not_null(strstr(c, "| gap (strong − weak) | 0.625 | 0.125 | 0.500 | 0.750 |"));
  /* cost: challenger 2 calls (1 hit), 2 retries, tokens of the real call only; strong priced:
   * 1e6 * 2/1e6 + 1e5 * 10/1e6 = 3.0 */
  cr_assert_not_null(strstr(c, "| challenger | 2 | 1 | 0 | 1 | 2 | 1000 | 500 | — |"), "%s", c);
  cr_assert_not_null(strstr(c, "| strong | 1 | 1 | 0 | 0 | 0 | 1000000 | 100000 | 3.0000 |"));
  cr_assert_not_null(strstr(c,
                            "| **total** | 4 | 3 | 0 | 1 | 3 | 1001010 | 100520 | 3.0000 "
                            "(partial) |"));
  /* prompts: every prompt's sha256 and full text, fenced past the text's own ``` */
  cr_assert_not_null(strstr(c, SHA_CHAL));
  cr_assert_not_null(strstr(c, SHA_JUDGE));
  cr_assert_not_null(strstr(c, "````text\n" CHAL_TEXT "\n````\n"), "%s", c);
  cr_assert_not_null(strstr(c, "```text\n" JUDGE_TEXT "\n```\n"));
  cr_assert_not_null(strstr(c, "- path: `prompts/challenger.md`"));
  /* reproduce */
  cr_assert_not_null(strstr(c, "```sh\nautodata run cs.yaml\n```"));
  cr_assert_not_null(strstr(c, "- seed: 7\n"));
  cr_assert_not_null(strstr(c, SHA_RECIPE));
  cr_assert_not_null(strstr(c, "`0.3.0`"));
  free(c);
  store_close(st);
}

Test(report, card_holds_no_secret) {
  setenv("OPENAI_API_KEY", "sk-test", 1);
  setenv("AUTODATA_TEST_TOKEN", "sk-live-0123456789abcdef", 1);
  /* a careless command line that pasted a key: the scrub must catch it */
  build_store("autodata run cs.yaml --header 'Authorization: Bearer sk-live-0123456789abcdef'");
  store *st = open_ro();
  char *c = render_card(st);
  cr_assert_null(strstr(c, "sk-"), "secret in the card");
  cr_assert_not_null(strstr(c, "Bearer [redacted]"));
  free(c);
  /* the written file too, and it is byte-stable */
  char err[512] = "";
  cr_assert_eq(report_write_card(st, 0, th_path(tdir, "DATACARD.md"), err, sizeof err), 0, "%s",
               err);
  char *f1 = th_read_file(th_path(tdir, "DATACARD.md"), NULL);
  cr_assert_null(strstr(f1, "sk-"));
  cr_assert_eq(report_write_card(st, 0, th_path(tdir, "DATACARD2.md"), err, sizeof err), 0, "%s",
               err);
  char *f2 = th_read_file(th_path(tdir, "DATACARD2.md"), NULL);
  cr_assert_str_eq(f1, f2);
  free(f1);
  free(f2);
  store_close(st);
  unsetenv("AUTODATA_TEST_TOKEN");
  unsetenv("OPENAI_API_KEY");
}

Test(report, size_categories) {
  cr_assert_str_eq(report_size_category(0), "n<1K");
  cr_assert_str_eq(report_size_category(999), "n<1K");
  cr_assert_str_eq(report_size_category(1000), "1K<n<10K");
  cr_assert_str_eq(report_size_category(12345), "10K<n<100K");
  cr_assert_str_eq(report_size_category(999999), "100K<n<1M");
}

Test(report, write_all_and_card_command) {
  build_store(NULL);
  store *st = open_ro();
  char err[512] = "";
  struct report_paths p;
  char folder[256];
  snprintf(folder, sizeof folder, "%s/out/nested", tdir);
  cr_assert_eq(report_write_all(st, 0, folder, &p, err, sizeof err), 0, "%s", err);
  cr_assert_eq(p.n_examples, 2);
  cr_assert_eq(p.n_rejected, 4);
  cr_assert(strstr(p.card, "/out/nested/DATACARD.md"));
  cr_assert_eq(access(p.dataset, F_OK), 0);
  cr_assert_eq(access(p.rejected, F_OK), 0);
  char *mine = th_read_file(p.card, NULL);
  store_close(st);
  /* `autodata card --store FILE`: DATACARD.md next to the store, same bytes */
  char *argv[] = {"card", "--store", dbpath, NULL};
  cr_assert_eq(cmd_card(3, argv), 0);
  char *cli = th_read_file(th_path(tdir, "DATACARD.md"), NULL);
  cr_assert_str_eq(mine, cli);
  char *argv2[] = {"card", "--store", dbpath, "--run", "9", NULL};
  cr_assert_eq(cmd_card(5, argv2), 2, "a missing run is an input error");
  free(mine);
  free(cli);
}

/* A run of many sources: the page's memory must not grow with them, and its figures stay
 * exact. 4,501 candidates with scores: the scatter draws a sample spread over the whole run
 * (at most 4,000 points); the rounds to accept are counted, so their mean and median are
 * those of every source, a round past the plotted ones (1,500) included. The card counts
 * the rounds of an example that recorded none from its source's row. */
Test(report, many_sources_bounded_page_exact_rounds) {
  store *st = open_rw();
  store_id run = begin(st, "autodata run x.yaml");
  char sid[32];
  for (int i = 0; i <= 4500; i++) {
    snprintf(sid, sizeof sid, "s%05d", i);
    cr_assert_eq(store_source_put(st, run, sid, "T", NULL), 0);
    int round = i == 4500 ? 1500 : i % 3 + 1; /* 1,500 each of 1, 2, 3; one of 1500 */
    json_t *rec = json_pack("{s:{s:f, s:f}}", "stats", "weak_mean", (i % 100) / 100.0,
                            "strong_mean", 1.0);
    cr_assert_eq(store_candidate_put(st, run, sid, round, 0, "accepted", NULL, rec), 0);
    json_decref(rec);
  }
  /* the card's rounds: one example with rounds_used, one without (its source's: 4) */
  json_t *e = example("ex-1", "s00001", 0.2, 2);
  cr_assert_eq(store_example_put(st, run, "s00001", "ex-1", e), 0);
  json_decref(e);
  e = example("ex-2", "s00002", 0.2, 0);
  cr_assert_eq(store_example_put(st, run, "s00002", "ex-2", e), 0);
  json_decref(e);
  cr_assert_eq(store_source_set_state(st, run, "s00002", STORE_SRC_DONE, 4), 0);
  cr_assert_eq(store_flush(st), 0);
  store_close(st);

  st = open_ro();
  struct report_html_run one = {st, 0, NULL};
  struct buf page = BUF_INIT;
  char err[256] = "";
  cr_assert_eq(report_html_render(&one, 1, NULL, &page, err, sizeof err), 0, "%s", err);
  cr_assert_eq(buf_append(&page, "", 1), 0);
  const char *html = page.data;
  /* mean (1500 * (1 + 2 + 3) + 1500) / 4501; the median of 4501 values is the 2251st: 2 */
  char want[128];
  snprintf(want, sizeof want, "mean %.2f, median 2", (1500.0 * 6 + 1500) / 4501);
  cr_assert_not_null(strstr(html, want), "%s", want);
  cr_assert_not_null(strstr(html, "Each candidate both solvers answered (4501, every few drawn)"));
  const char *sc = strstr(html, "id=\"plot-scatter");
  cr_assert_not_null(sc);
  const char *end = strstr(sc, "</svg>");
  cr_assert_not_null(end);
  size_t circles = 0;
  for (const char *c = sc; (c = strstr(c, "<circle")) && c < end; c++) circles++;
  cr_assert(circles >= 2000 && circles <= 4000, "%zu points drawn", circles);
  /* every source has a row, its title read back from the store */
  size_t rows = 0;
  for (const char *c = html; (c = strstr(c, "<details class=\"src\"")); c++) rows++;
  cr_assert_eq(rows, 4501);
  cr_assert_not_null(strstr(html, "<code>s04500</code> <span class=\"badge good\">accepted"));
  cr_assert_not_null(strstr(html,
                            "<code>s00002</code> <span class=\"badge good\">accepted</span> "
                            "done, 4 rounds <span class=\"title\">T</span></summary>"),
                     "the row's state, rounds and title are the store's");
  buf_release(&page);

  char card[256];
  snprintf(card, sizeof card, "%s/card.md", tdir);
  cr_assert_eq(report_write_card(st, 0, card, err, sizeof err), 0, "%s", err);
  char *c = th_read_file(card, NULL);
  cr_assert_not_null(strstr(c, "| 2 | 1 |"), "the example that recorded its rounds");
  cr_assert_not_null(strstr(c, "| 4 | 1 |"), "the one that did not: its source's rounds");
  cr_assert_not_null(strstr(c, "Mean rounds to accept: 3.00."));
  free(c);
  store_close(st);
}

/* ---- exports ---- */

static store *store_with_examples(int n, int verifiable_extra) {
  store *st = open_rw();
  store_id run = begin(st, "autodata run x.yaml");
  char id[32], sid[32];
  for (int i = 0; i < n; i++) {
    snprintf(id, sizeof id, "ex-%03d", i);
    snprintf(sid, sizeof sid, "s%03d", i);
    json_t *e = example(id, sid, 0.1, 1);
    json_object_set_new(e, "reference_answer", json_string("R"));
    cr_assert_eq(store_example_put(st, run, sid, id, e), 0, "%s", store_errmsg(st));
    json_decref(e);
  }
  if (verifiable_extra) {
    json_t *v = json_pack("{s:s, s:s, s:s, s:s, s:s}", "id", "ex-v", "source_id", "sv", "task",
                          "verifiable", "question", "2+2?", "answer", "4");
    cr_assert_eq(store_example_put(st, run, "sv", "ex-v", v), 0);
    json_decref(v);
  }
  cr_assert_eq(store_flush(st), 0);
  return st;
}

Test(report, export_lines_in_three_formats) {
  store *st = store_with_examples(1, 1);
  char err[512] = "";
  struct report_export_result r;
  struct report_export_opts o = {REPORT_FMT_CHAT, 0, 0, 0};
  char dir[256];
  snprintf(dir, sizeof dir, "%s/exp", tdir);
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), 0, "%s", err);
  cr_assert_eq(r.n_train, 2);
  cr_assert_eq(r.n_heldout, 0);
  cr_assert_str_eq(r.heldout, "");
  char *t = th_read_file(r.train, NULL);
  cr_assert_str_eq(t,
                   "{\"id\":\"ex-000\",\"messages\":[{\"content\":\"C\\n\\nQ?\",\"role\":\"user\"},"
                   "{\"content\":\"R\",\"role\":\"assistant\"}]}\n"
                   "{\"id\":\"ex-v\",\"messages\":[{\"content\":\"2+2?\",\"role\":\"user\"},"
                   "{\"content\":\"4\",\"role\":\"assistant\"}]}\n");
  free(t);

  o.format = REPORT_FMT_RL;
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), 0, "%s", err);
  t = th_read_file(r.train, NULL);
  cr_assert_str_eq(t,
                   "{\"id\":\"ex-000\",\"prompt\":\"C\\n\\nQ?\",\"reward\":{\"reference_answer\":"
                   "\"R\",\"rubric\":[{\"criterion\":\"c1\",\"weight\":2}],\"type\":\"rubric\"}}\n"
                   "{\"id\":\"ex-v\",\"prompt\":\"2+2?\",\"reward\":{\"answer\":\"4\",\"type\":"
                   "\"verifiable\"}}\n");
  free(t);

  o.format = REPORT_FMT_JSONL;
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), 0, "%s", err);
  t = th_read_file(r.train, NULL);
  const char *ds = th_path(tdir, "ds.jsonl");
  cr_assert_eq(report_write_dataset(st, 0, ds, NULL, err, sizeof err), 0, "%s", err);
  char *d = th_read_file(ds, NULL);
  cr_assert_str_eq(t, d, "jsonl export = dataset lines");
  free(t);
  free(d);
  store_close(st);
}

static char *split_file(store *st, const char *sub, size_t holdout, uint64_t seed, int seed_set,
                        char **train_out) {
  char err[512] = "";
  char dir[256];
  snprintf(dir, sizeof dir, "%s/%s", tdir, sub);
  struct report_export_opts o = {REPORT_FMT_JSONL, holdout, seed, seed_set};
  struct report_export_result r;
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), 0, "%s", err);
  cr_assert_eq(r.n_heldout, holdout);
  cr_assert_eq(r.n_train + r.n_heldout, 20);
  if (train_out) *train_out = th_read_file(r.train, NULL);
  return th_read_file(r.heldout, NULL);
}

static void check_sorted_ids(const char *text, int *seen) {
  char *copy = strdup(text), *save = NULL;
  char prev[64] = "";
  for (char *l = strtok_r(copy, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
    json_t *o = json_loads(l, 0, NULL);
    cr_assert_not_null(o);
    const char *id = jx_str(o, "id");
    cr_assert_gt(strcmp(id, prev), 0, "ids not sorted: %s after %s", id, prev);
    snprintf(prev, sizeof prev, "%s", id);
    int k = atoi(id + 3);
    cr_assert_eq(seen[k], 0, "id %s twice", id);
    seen[k] = 1;
    json_decref(o);
  }
  free(copy);
}

Test(report, holdout_is_seeded_and_disjoint) {
  store *st = store_with_examples(20, 0);
  char *train = NULL;
  char *h1 = split_file(st, "a", 5, 42, 1, &train);
  char *h2 = split_file(st, "b", 5, 42, 1, NULL);
  char *h3 = split_file(st, "c", 5, 43, 1, NULL);
  char *h4 = split_file(st, "d", 5, 0, 0, NULL); /* default: the run's seed (7) */
  char *h5 = split_file(st, "e", 5, 7, 1, NULL);
  cr_assert_str_eq(h1, h2, "same seed, same split");
  cr_assert_str_neq(h1, h3, "another seed, another split");
  cr_assert_str_eq(h4, h5, "default seed is the run's");
  int seen[20] = {0};
  check_sorted_ids(h1, seen);
  check_sorted_ids(train, seen);
  for (int i = 0; i < 20; i++) cr_assert_eq(seen[i], 1, "example %d lost", i);
  /* an export without a holdout removes the stale heldout.jsonl */
  char err[512] = "";
  char dir[256];
  snprintf(dir, sizeof dir, "%s/a", tdir);
  struct report_export_opts o = {REPORT_FMT_CHAT, 0, 0, 0};
  struct report_export_result r;
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), 0, "%s", err);
  cr_assert_eq(r.n_train, 20);
  cr_assert_neq(access(th_path(tdir, "a/heldout.jsonl"), F_OK), 0);
  free(train);
  free(h1);
  free(h2);
  free(h3);
  free(h4);
  free(h5);
  store_close(st);
}

/* ---- errors ---- */

Test(report, errors_are_clear) {
  char err[512] = "";
  char dir[256];
  snprintf(dir, sizeof dir, "%s/x", tdir);
  struct report_export_opts o = {REPORT_FMT_JSONL, 0, 0, 0};
  struct report_export_result r;
  enum report_format f;
  cr_assert_eq(report_format_parse("parquet", &f), AD_EINVAL);
  cr_assert_eq(report_format_parse("rl", &f), 0);
  cr_assert_eq(f, REPORT_FMT_RL);

  /* a store without a run */
  store *st = open_rw();
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), AD_ENOTFOUND);
  cr_assert_not_null(strstr(err, "holds no run"), "%s", err);
  struct buf b;
  buf_init(&b, 0);
  cr_assert_eq(report_card_render(st, 0, &b, err, sizeof err), AD_ENOTFOUND);
  cr_assert_eq(report_write_dataset(st, 0, th_path(tdir, "d.jsonl"), NULL, err, sizeof err),
               AD_ENOTFOUND);
  cr_assert_neq(access(th_path(tdir, "d.jsonl"), F_OK), 0, "no file for a failed write");
  buf_release(&b);

  /* a run without examples: export refuses, the dataset is empty, the card says so */
  store_id run = begin(st, "autodata run x.yaml");
  cr_assert_gt(run, 0);
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), AD_ENOTFOUND);
  cr_assert_not_null(strstr(err, "no accepted examples"), "%s", err);
  size_t count = 9;
  cr_assert_eq(report_write_dataset(st, 0, th_path(tdir, "d.jsonl"), &count, err, sizeof err), 0);
  cr_assert_eq(count, 0);
  char *c = render_card(st);
  cr_assert_not_null(strstr(c, "No example was accepted."));
  cr_assert_not_null(strstr(c, "No candidate was rejected."));
  free(c);
  cr_assert_eq(report_export(st, 5, dir, &o, &r, err, sizeof err), AD_ENOTFOUND);
  cr_assert_not_null(strstr(err, "no run 5"), "%s", err);
  store_close(st);

  /* holdout too large */
  tmp_teardown();
  tmp_setup();
  st = store_with_examples(3, 0);
  snprintf(dir, sizeof dir, "%s/x", tdir);
  o.holdout = 3;
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), AD_EINVAL);
  cr_assert_not_null(strstr(err, "--holdout 3 is too large"), "%s", err);
  o.holdout = 2;
  cr_assert_eq(report_export(st, 0, dir, &o, &r, err, sizeof err), 0, "%s", err);
  cr_assert_eq(r.n_train, 1);
  /* an unwritable destination names the file and leaves no .tmp */
  const char *nodir = th_path(tdir, "no-such-dir/d.jsonl");
  cr_assert_eq(report_write_dataset(st, 0, nodir, NULL, err, sizeof err), AD_EIO);
  cr_assert_not_null(strstr(err, nodir), "%s", err);
  cr_assert_neq(access(th_path(tdir, "no-such-dir"), F_OK), 0, "the folder is not created");
  store_close(st);

  /* the command: unknown format and missing options are usage errors */
  char *a1[] = {"export", "--store", dbpath, "--format", "xml", "--out", dir, NULL};
  cr_assert_eq(cmd_export(7, a1), 2);
  char *a2[] = {"export", "--store", dbpath, "--format", "rl", NULL};
  cr_assert_eq(cmd_export(5, a2), 2);
  char *a3[] = {"export", "--store", dbpath,      "--format", "rl",
                "--out",  dir,       "--holdout", "-1",       NULL};
  cr_assert_eq(cmd_export(9, a3), 2);
  char *a4[] = {"export", "--store",   dbpath, "--format", "rl", "--out",
                dir,      "--holdout", "1",    "--seed",   "5",  NULL};
  cr_assert_eq(cmd_export(11, a4), 0);
}

/* ---- the data card of a baseline run ---- */

/* A cot-self-instruct run: s1 kept although it failed the gate (too_easy),
 * s2 kept and passed the gate, s3 not kept by RIP (gate: failed_on_strong),
 * s4 not kept by the quality verifier. */
static void build_baseline_store(void) {
  store *st = open_rw();
  json_t *method = json_pack("{s:s, s:i, s:f, s:f}", "name", "cot-self-instruct", "k", 6,
                             "rip_threshold", 0.4, "ac_min_share", 0.75);
  store_id run = begin_method(st, "autodata run cs.yaml --method cot-self-instruct", method);
  const char *sids[] = {"s1", "s2", "s3", "s4"};
  for (int i = 0; i < 4; i++)
    cr_assert_eq(store_source_put(st, run, sids[i], "T", SHA_RECIPE), 0, "%s", store_errmsg(st));
  struct {
    const char *sid, *reason, *filter_reason;
    double weak;
  } c[4] = {{"s1", "too_easy", NULL, 0.9},
            {"s2", NULL, NULL, 0.25},
            {"s3", "failed_on_strong", "filter:rip", 0.1},
            {"s4", "quality:leakage", "quality:leakage", 0.5}};
  for (int i = 0; i < 4; i++) {
    const char *verdict = c[i].reason ? "rejected" : "accepted";
    json_t *rec = cand_record(c[i].sid, 1, verdict, c[i].reason, NULL, c[i].weak);
    json_object_set_new(rec, "method", json_string("cot-self-instruct"));
    json_object_set_new(rec, "passed_gate", json_boolean(!c[i].reason));
    json_object_set_new(rec, "passed_filter", json_boolean(!c[i].filter_reason));
    json_object_set_new(rec, "filter_reason",
                        c[i].filter_reason ? json_string(c[i].filter_reason) : json_null());
    json_t *ex = NULL;
    char id[16];
    snprintf(id, sizeof id, "%s-1", c[i].sid);
    if (!c[i].filter_reason) {
      ex = example(id, c[i].sid, c[i].weak, 1);
      json_object_set_new(ex, "method", json_string("cot-self-instruct"));
      json_object_set_new(ex, "passed_filter", json_true());
      json_object_set_new(ex, "passed_gate", json_boolean(!c[i].reason));
      json_object_set_new(ex, "gate_reason", c[i].reason ? json_string(c[i].reason) : json_null());
    }
    struct store_episode_end end = {c[i].sid,
                                    ex ? STORE_SRC_DONE : STORE_SRC_EXHAUSTED,
                                    1,
                                    1,
                                    0,
                                    verdict,
                                    c[i].reason,
                                    rec,
                                    ex ? id : NULL,
                                    ex};
    cr_assert_eq(store_episode_finish(st, run, &end), 0, "%s", store_errmsg(st));
    json_decref(rec);
    json_decref(ex);
  }
  put_call(st, run, "challenger", "m-chal", 0, 0, 1000, 500);
  put_call(st, run, "filter", "m-strong", 0, 0, 100, 10);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  store_close(st);
}

Test(report, card_of_a_baseline_says_which_method_made_the_data) {
  build_baseline_store();
  store *st = open_ro();
  char *c = render_card(st);
  /* front matter: the method's tag, not the agentic one */
  cr_assert_not_null(strstr(c, "tags:\n- synthetic\n- autodata\n- cot-self-instruct\nconfigs:"),
                     "%s", c);
  cr_assert_null(strstr(c, "agentic-self-instruct\n"));
  /* summary: the method and its settings, from the run info */
  cr_assert_not_null(strstr(c,
                            "2 rubric-task examples kept by the **cot-self-instruct** "
                            "baseline method, made by autodata 0.3.0 from 4 source documents "
                            "(method: cot-self-instruct; K = 6 filter samples, RIP threshold "
                            "0.4, Answer-Consistency share 0.75; run 1, status running)"),
                     "%s", c);
  cr_assert_not_null(strstr(c, "**one round, with no orchestrator and no feedback**"));
  cr_assert_not_null(strstr(c,
                            "the method's own challenger prompt "
                            "(`cot-self-instruct-rubric.md`)"));
  cr_assert_not_null(strstr(c, "drew 6 more answers from the strong solver's role"));
  cr_assert_not_null(strstr(c, "applied **RIP**"), "a rubric task names RIP");
  cr_assert_null(strstr(c, "applied **Answer-Consistency**"));
  cr_assert_not_null(strstr(c,
                            "recorded, per example as `passed_gate` (with `gate_reason`), "
                            "but it did not select the examples: 1 of the 2 kept examples "
                            "passed it."));
  cr_assert_not_null(strstr(c, "`candidates.jsonl`"));
  cr_assert_null(strstr(c, "went back to the orchestrator"), "no agentic prose");
  /* how it was made: the method table, and no orchestrator among the roles or prompts */
  const char *sections[] = {"## Summary",
                            "## How it was made: the cot-self-instruct baseline",
                            "### Method",
                            "### Roles",
                            "### Acceptance criteria",
                            "### Budgets",
                            "### Quality checks and filters",
                            "## Source corpus",
                            "## Results",
                            "### Why candidates were not kept",
                            "### Acceptance-gate rejections by reason (recorded only)",
                            "### Scores of the kept examples",
                            "## Cost",
                            "## Prompts",
                            "## Reproduce",
                            "## Limitations"};
  const char *prev = c;
  for (size_t i = 0; i < sizeof sections / sizeof *sections; i++) {
    const char *sec = strstr(c, sections[i]);
    cr_assert_not_null(sec, "missing section %s", sections[i]);
    cr_assert_gt(sec, prev, "section %s out of order", sections[i]);
    prev = sec;
  }
  cr_assert_not_null(strstr(c,
                            "| method | `cot-self-instruct` |\n| rounds per source | 1 |\n"
                            "| orchestrator | not used |\n| feedback | none |\n"
                            "| challenger prompt | `cot-self-instruct-rubric.md (outside the "
                            "output folder)` |\n| challenger prompt sha256 | `" SHA_COT "` |\n"
                            "| filter samples (K, from the strong solver) | 6 |\n"
                            "| RIP threshold (rubric tasks) | 0.4 |\n"
                            "| Answer-Consistency share (verifiable tasks) | 0.75 |\n"),
                     "%s", c);
  cr_assert_null(strstr(c, "| orchestrator | local"), "orchestrator listed as a used role");
  cr_assert_null(strstr(c, "m-orch"));
  cr_assert_null(strstr(c, SHA_ORCH), "the orchestrator's prompt is not the run's");
  cr_assert_null(strstr(c, "### orchestrator"));
  /* the challenger row and prompt are the method's */
  cr_assert_not_null(
      strstr(c,
             "| challenger | local | m-chal | 0.7 | default | default | 1 | — | `" SHA_COT "` |"),
      "%s", c);
  cr_assert_not_null(strstr(c, "```text\n" COT_TEXT "\n```\n"));
  cr_assert_null(strstr(c, CHAL_TEXT), "the agentic challenger prompt was not used");
  cr_assert_not_null(strstr(c, "**recorded, not applied**"));
  cr_assert_not_null(strstr(c, "Short-circuit: not used by a baseline"));
  /* results: kept vs not kept, why, and the gate as recorded */
  cr_assert_not_null(strstr(c, "| kept (done) | 2 |\n| not kept (exhausted) | 2 |"));
  cr_assert_not_null(strstr(c, "| kept examples that passed the acceptance gate | 1 |"));
  cr_assert_not_null(strstr(c, "| candidates kept by the method's filters | 2 |"));
  cr_assert_not_null(strstr(c, "Acceptance gate (recorded only): 25.0% of candidates (1 of 4)"));
  const char *why = strstr(c, "### Why candidates were not kept");
  const char *gate = strstr(c, "### Acceptance-gate rejections");
  const char *rip = strstr(why, "| `filter:rip` | 1 | 50.0% |");
  cr_assert(rip && rip < gate, "%s", c);
  cr_assert_not_null(strstr(why, "| `quality:leakage` | 1 | 50.0% |"));
  cr_assert_not_null(strstr(gate, "| `too_easy` | 1 | 33.3% |"), "%s", gate);
  cr_assert_null(strstr(c, "### Rounds to accept"));
  cr_assert_not_null(strstr(c, "| weak mean | 0.575 |"), "scores over the kept examples");
  cr_assert_not_null(strstr(c, "| filter | 1 |"), "the filter's calls are costed");
  cr_assert_not_null(strstr(c,
                            "\"Kept\" means only that the example passed the method's "
                            "filters."));
  free(c);
  store_close(st);
}

Test(report, card_method_of_an_agentic_run_and_a_self_instruct_run) {
  /* agentic, recorded as such: the agentic card */
  store *st = open_rw();
  begin_method(st, "autodata run x.yaml", json_pack("{s:s}", "name", "agentic"));
  char *c = render_card(st);
  cr_assert_not_null(strstr(c, "with the Agentic Self-Instruct method (method: agentic;"));
  cr_assert_not_null(strstr(c, "## How it was made: the agent\n"));
  cr_assert_null(strstr(c, "### Method"));
  free(c);
  store_close(st);
  /* self-instruct: no CoT filter or its settings */
  tmp_teardown();
  tmp_setup();
  st = open_rw();
  begin_method(st, "autodata run x.yaml --method self-instruct",
               json_pack("{s:s}", "name", "self-instruct"));
  c = render_card(st);
  cr_assert_not_null(strstr(c,
                            "0 rubric-task examples kept by the **self-instruct** baseline "
                            "method"),
                     "%s", c);
  cr_assert_not_null(strstr(c, "(method: self-instruct; run 1, status running)"));
  cr_assert_not_null(strstr(c, "(the programmatic checks and the quality verifier). "));
  cr_assert_null(strstr(c, "CoT-Self-Instruct filter"));
  cr_assert_null(strstr(c, "filter samples"));
  cr_assert_not_null(strstr(c, "- self-instruct\nconfigs:"));
  cr_assert_not_null(strstr(c, "No example was kept."));
  free(c);
  store_close(st);
}

/* Issue 22: the card holds no absolute local path (files inside the project are shown
 * relative to the output folder, others by name), and lists the environment variables
 * the recipe read with the effective value (none for a secret-looking name). */
Test(report, card_paths_relative_and_environment_names) {
  store *st = open_rw();
  json_t *extra = json_pack(
      "{s:{s:s, s:{s:s}, s:{s:{s:s, s:s}}},"
      " s:{s:{s:s, s:s, s:s}, s:{s:s, s:s, s:s}},"
      " s:{s:s, s:i, s:s}, s:s, s:{s:s},"
      " s:[{s:s, s:s, s:s}, {s:s, s:s, s:s}],"
      " s:{s:s, s:s}}",
      "recipe", "name", "p", "sources", "path", "data/c.jsonl", "roles", "weak", "model", "m-weak",
      "endpoint", "local", "prompts", "challenger", "path", "/home/u/proj/prompts/challenger.md",
      "sha256", SHA_CHAL, "text", "C", "judge", "path", "/usr/share/autodata/prompts/judge.md",
      "sha256", SHA_JUDGE, "text", "J", "corpus", "path", "data/c.jsonl", "count", 1, "sha256",
      "feed", "identity_sha256", "ab12", "identity", "task", "rubric", "env", "variable",
      "WEAK_MODEL", "field", "roles.weak.model", "from", "environment", "variable", "API_TOKEN",
      "field", "roles.weak.model", "from", "default", "paths", "cwd", "/home/u/proj",
      "output_folder", "/home/u/proj/runs/x");
  cr_assert_not_null(extra);
  json_t *hashes = json_pack("{s:s}", "challenger", SHA_CHAL);
  struct store_run_info info = {.recipe_name = "p",
                                .recipe_sha256 = SHA_RECIPE,
                                .prompt_hashes = hashes,
                                .seed = 1,
                                .version = "0.3.0",
                                .command_line =
                                    "autodata run /home/u/proj/r.yaml --out=/home/u/proj/runs/x "
                                    "--cache-from /mnt/old/store.db",
                                .extra = extra};
  store_id run = 0;
  int resumed = -1;
  cr_assert_eq(store_run_begin(st, &info, 0, &run, &resumed), 0, "%s", store_errmsg(st));
  json_decref(hashes);
  json_decref(extra);
  cr_assert_eq(store_flush(st), 0);
  char *c = render_card(st);
  cr_assert_null(strstr(c, "/home/"), "an absolute path in the card:\n%s", c);
  cr_assert_null(strstr(c, "/usr/"), "%s", c);
  cr_assert_null(strstr(c, "/mnt/"), "%s", c);
  cr_assert(strstr(c, "- path: `../../prompts/challenger.md`"), "%s", c);
  cr_assert(strstr(c, "- path: `judge.md (outside the project folder)`"), "%s", c);
  cr_assert(strstr(c, "## Source corpus\n\n- path: `../../data/c.jsonl`"), "%s", c);
  cr_assert(strstr(c, "autodata run ../../r.yaml --out=. --cache-from store.db\n"), "%s", c);
  cr_assert(strstr(c, "| `WEAK_MODEL` | `roles.weak.model` | m-weak | environment |"), "%s", c);
  cr_assert(strstr(c, "| `API_TOKEN` | `roles.weak.model` | — | unset: the recipe's default |"),
            "%s", c);
  cr_assert(strstr(c, "configuration sha256 `" SHA_RECIPE "`"), "%s", c);
  /* the reproduce section names the variables the command needs */
  char *rep = strstr(c, "## Reproduce");
  cr_assert(rep && strstr(rep, "- `WEAK_MODEL` (set in the run) for `roles.weak.model`"), "%s", c);
  cr_assert(strstr(rep, "- `API_TOKEN` (unset in the run: leave it unset"), "%s", c);
  free(c);
  store_close(st);
}

/* The card names only the roles the run had, every text the program writes into prompts
 * with its hash, and the environment variables a reproduction needs. */
Test(report, card_roles_program_texts_and_reproduce_env) {
  build_store(NULL); /* a run with no orchestrator, no quality verifier */
  store *st = open_ro();
  char *c = render_card(st);
  cr_assert(strstr(c, "This run had no orchestrator"), "the summary says so");
  cr_assert_null(strstr(c, "an orchestrator model wrote instructions"));
  cr_assert(strstr(c, "(the run had no quality verifier)"));
  cr_assert(strstr(c, "### Text the program writes into prompts"));
  /* this store recorded no texts: the card shows the current ones and says so */
  cr_assert(strstr(c, "The run did not record these texts"));
  json_t *t = fb_program_texts();
  const char *keys[] = {"feedback_block", "challenger_repair", "judge_repair_rubric"};
  for (size_t i = 0; i < 3; i++) {
    json_t *e = json_object_get(t, keys[i]);
    const char *sha = json_string_value(json_object_get(e, "sha256"));
    const char *text = json_string_value(json_object_get(e, "text"));
    cr_assert(sha && strstr(c, sha), "%s's hash is in the card", keys[i]);
    char line[200];
    snprintf(line, sizeof line, "%.60s", text);
    cr_assert(strstr(c, line), "%s's text is in the card", keys[i]);
    char want[65];
    sha256_hex(text, strlen(text), want);
    cr_assert_str_eq(sha, want);
  }
  /* the orchestrator's history is not: the run had none */
  cr_assert_null(strstr(
      c, json_string_value(json_object_get(json_object_get(t, "orchestrator_history"), "sha256"))));
  cr_assert_null(strstr(c, "judge_repair_verifiable"));
  json_decref(t);
  free(c);
  store_close(st);
}
