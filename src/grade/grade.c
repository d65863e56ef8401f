/* grade.c - the dataset's examples and its run's judge settings; requests and scoring. */
#include "grade/grade.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "eval/extract.h"
#include "eval/feedback.h"
#include "recipe/recipe.h"
#include "report/bootstrap.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#define DATASET_MAX (1024u * 1024 * 1024)

static int is_dir(const char *p) {
  struct stat st;
  return !stat(p, &st) && S_ISDIR(st.st_mode);
}

static int latest_row(void *ud, const json_t *row) {
  json_t **out = ud;
  json_decref(*out);
  *out = json_deep_copy(row);
  return 0;
}

static double num_or(const json_t *o, const char *k, double dflt) {
  const json_t *v = json_object_get(o, k);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

/* A recorded prompt text (info.extra.prompts.<role>.text) compiled into t. */
static int compile_prompt(const json_t *prompts, const char *role, struct tpl_prompt *t,
                          char sha[65], const char *store_path, char *err, size_t errlen) {
  const json_t *p = json_object_get(prompts, role);
  const char *text = jx_str(p, "text");
  if (!text) {
    ad_set_err(err, errlen, "%s: the run records no %s prompt (info.extra.prompts.%s.text)",
               store_path, role, role);
    return AD_ENOTFOUND;
  }
  if (sha) snprintf(sha, 65, "%s", jx_str(p, "sha256") ? jx_str(p, "sha256") : "");
  char name[64];
  snprintf(name, sizeof name, "recorded %s prompt", role);
  return tpl_prompt_compile(text, strlen(text), name, t, err, errlen);
}

/* The judge's and solver's settings from the latest run's info. */
static int load_settings(struct grade_set *s, const json_t *row, const char *judge_url,
                         const char *judge_model, char *err, size_t errlen) {
  const json_t *extra = json_object_get(json_object_get(row, "info"), "extra");
  const json_t *rc = json_object_get(extra, "recipe");
  const json_t *prompts = json_object_get(extra, "prompts");
  const json_t *roles = json_object_get(rc, "roles");
  const json_t *judge = json_object_get(roles, "judge");
  const json_t *weak = json_object_get(roles, "weak");
  if (!rc || !judge || !weak) {
    ad_set_err(err, errlen, "%s: the run info records no recipe with judge and weak roles",
               s->store_path);
    return AD_ENOTFOUND;
  }
  if (cand_task_parse(jx_str(rc, "task") ? jx_str(rc, "task") : "rubric", &s->task)) {
    ad_set_err(err, errlen, "%s: unknown task '%s'", s->store_path, jx_str(rc, "task"));
    return AD_EINVAL;
  }
  s->seed = (uint64_t)jx_int(rc, "seed", 1);
  s->goal = xstrdup(jx_str(rc, "goal") ? jx_str(rc, "goal") : "");
  const json_t *checks = json_object_get(rc, "checks");
  const char *m = jx_str(checks, "verifiable_matcher");
  if (score_matcher_parse(m ? m : "auto", &s->matcher)) s->matcher = SCORE_AUTO;
  s->judge_endpoint = xstrdup(jx_str(judge, "endpoint") ? jx_str(judge, "endpoint") : "judge");
  s->judge_model = xstrdup(judge_model              ? judge_model
                           : jx_str(judge, "model") ? jx_str(judge, "model")
                                                    : "");
  s->judge_temperature = num_or(judge, "temperature", LLM_UNSET);
  s->judge_top_p = num_or(judge, "top_p", LLM_UNSET);
  s->judge_max_tokens = (int)jx_int(judge, "max_tokens", 0);
  const json_t *jx = json_object_get(judge, "extra");
  s->judge_extra = json_is_object(jx) ? json_deep_copy(jx) : NULL;
  s->solver_temperature = num_or(weak, "temperature", LLM_UNSET);
  s->solver_top_p = num_or(weak, "top_p", LLM_UNSET);
  s->solver_max_tokens = (int)jx_int(weak, "max_tokens", 0);
  s->weak_samples = (int)jx_int(weak, "samples", 3);
  s->strong_samples = (int)jx_int(json_object_get(roles, "strong"), "samples", 3);
  const json_t *ep = json_object_get(json_object_get(rc, "endpoints"), s->judge_endpoint);
  const json_t *urls = json_object_get(ep, "base_urls");
  const char *url = judge_url ? judge_url : json_string_value(json_array_get(urls, 0));
  if (!url) {
    ad_set_err(err, errlen,
               "%s: the judge's endpoint '%s' has no recorded base URL; give --judge-base-url",
               s->store_path, s->judge_endpoint);
    return AD_ENOTFOUND;
  }
  s->judge_url = xstrdup(url);
  const json_t *js = json_object_get(ep, "json_schema");
  s->json_schema = json_is_false(js) ? 0 : json_is_string(js) ? 2 : 1;
  const char *key = jx_str(ep, "api_key_env");
  s->judge_key_env = key ? xstrdup(key) : NULL;
  const json_t *eb = json_object_get(ep, "extra_body");
  s->judge_extra_body = json_is_object(eb) ? json_deep_copy(eb) : NULL;
  llm_endpoint_config_init(&s->judge_cfg);
  s->judge_cfg.name = s->judge_endpoint;
  s->judge_cfg.base_urls[0] = s->judge_url;
  s->judge_cfg.n_urls = 1;
  s->judge_cfg.api_key_env = s->judge_key_env;
  s->judge_cfg.extra_body = s->judge_extra_body;
  if (jx_int(ep, "max_inflight", 0) > 0)
    s->judge_cfg.max_inflight = (int)jx_int(ep, "max_inflight", 0);
  if (jx_int(ep, "request_timeout_ms", 0) > 0)
    s->judge_cfg.request_timeout_ms = (int)jx_int(ep, "request_timeout_ms", 0);
  if (json_is_integer(json_object_get(ep, "max_retries")))
    s->judge_cfg.max_retries = (int)jx_int(ep, "max_retries", 8);
  int rc_ = compile_prompt(prompts, "judge", &s->judge_tpl, s->judge_prompt_sha, s->store_path, err,
                           errlen);
  if (!rc_) rc_ = compile_prompt(prompts, "weak", &s->solver_tpl, NULL, s->store_path, err, errlen);
  return rc_;
}

static int load_examples(struct grade_set *s, const char *text, size_t len, char *err,
                         size_t errlen) {
  struct cand_checks checks;
  cand_checks_default(&checks);
  checks.rubric_max = 1000;
  checks.max_weight = 1000000;
  checks.max_context_chars = 0;
  size_t cap = 0, line = 0;
  const char *p = text, *end = text + len;
  while (p < end) {
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
    line++;
    const char *q = p;
    p = nl ? nl + 1 : end;
    if (!n || (n == 1 && q[0] == '\r')) continue;
    json_error_t je;
    json_t *o = json_loadb(q, n, 0, &je);
    if (!json_is_object(o)) {
      ad_set_err(err, errlen, "%s:%zu: not a JSON object: %s", s->dataset_path, line,
                 o ? "another JSON value" : je.text);
      json_decref(o);
      return AD_EPARSE;
    }
    const char *id = jx_str(o, "id");
    if (!id || !*id) {
      ad_set_err(err, errlen, "%s:%zu: field \"id\": expected a non-empty string", s->dataset_path,
                 line);
      json_decref(o);
      return AD_EPARSE;
    }
    if (s->n == cap) {
      cap = cap ? cap * 2 : 64;
      s->ex = xrealloc(s->ex, cap * sizeof *s->ex);
    }
    struct grade_example *e = &s->ex[s->n];
    memset(e, 0, sizeof *e);
    struct cand_issue iss;
    checks.signed_rubric = 0;
    const json_t *r0 = json_array_get(json_object_get(o, "rubric"), 0);
    if (json_object_get(r0, "category")) checks.signed_rubric = 1;
    int crc = cand_from_json(o, s->task, &checks, NULL, &e->cand, &iss);
    if (crc && iss.kind != CAND_CHECK) {
      ad_set_err(err, errlen, "%s:%zu: example '%s': %s", s->dataset_path, line, id, iss.message);
      json_decref(o);
      return AD_EPARSE;
    }
    e->line = o;
    e->id = xstrdup(id);
    e->source_id = xstrdup(jx_str(o, "source_id") ? jx_str(o, "source_id") : "");
    e->round = (int)jx_int(o, "rounds_used", 1);
    s->n++;
    char perr[256];
    json_t *msgs = grade_solver_messages(s, e, perr, sizeof perr);
    if (!msgs) {
      ad_set_err(err, errlen, "%s:%zu: example '%s': %s", s->dataset_path, line, id, perr);
      return AD_EPARSE;
    }
    const char *u = jx_str(json_array_get(msgs, json_array_size(msgs) - 1), "content");
    e->prompt_hash = hash64_str(u ? u : "");
    json_decref(msgs);
    const char *ctx = e->cand.context ? e->cand.context : "";
    e->user_text = *ctx ? xasprintf("%s\n\n%s", ctx, e->cand.question) : xstrdup(e->cand.question);
    e->user_hash = hash64_str(e->user_text);
  }
  if (!s->n) {
    ad_set_err(err, errlen, "%s: the dataset holds no example", s->dataset_path);
    return AD_EINVAL;
  }
  return 0;
}

int grade_set_load(const char *dataset, const char *store_path, const char *judge_url,
                   const char *judge_model, struct grade_set *out, char *err, size_t errlen) {
  memset(out, 0, sizeof *out);
  struct grade_set *s = out;
  char *dir = NULL;
  if (is_dir(dataset)) {
    dir = xstrdup(dataset);
    if (fs_join_buf(s->dataset_path, sizeof s->dataset_path, dataset, "dataset.jsonl"))
      goto toolong;
  } else {
    dir = fs_dirname(dataset);
    snprintf(s->dataset_path, sizeof s->dataset_path, "%s", dataset);
  }
  if (store_path) snprintf(s->store_path, sizeof s->store_path, "%s", store_path);
  else if (fs_join_buf(s->store_path, sizeof s->store_path, dir, "store.db")) goto toolong;
  free(dir);
  dir = NULL;
  char *text = NULL;
  size_t len = 0;
  int rc = fs_read_all(s->dataset_path, DATASET_MAX, &text, &len);
  if (rc) {
    ad_set_err(err, errlen, "cannot read %s: %s", s->dataset_path,
               rc == AD_ETOOBIG ? "file too big" : strerror(errno));
    return rc;
  }
  sha256_hex(text, len, s->dataset_sha);
  store *st = NULL;
  json_t *row = NULL;
  rc = store_open(s->store_path, STORE_OPEN_READONLY, &st);
  if (!rc) rc = store_runs_each(st, latest_row, &row);
  if (rc) ad_set_err(err, errlen, "%s (the dataset's store: give --store FILE)", store_errmsg(st));
  store_close(st);
  if (!rc && !row) {
    ad_set_err(err, errlen, "%s: the store holds no run", s->store_path);
    rc = AD_ENOTFOUND;
  }
  if (!rc) rc = load_settings(s, row, judge_url, judge_model, err, errlen);
  json_decref(row);
  if (!rc) rc = load_examples(s, text, len, err, errlen);
  free(text);
  if (rc) grade_set_release(s);
  return rc;
toolong:
  free(dir);
  ad_set_err(err, errlen, "path too long: %s", dataset);
  return AD_EINVAL;
}

void grade_set_release(struct grade_set *s) {
  for (size_t i = 0; i < s->n; i++) {
    struct grade_example *e = &s->ex[i];
    free(e->id);
    free(e->source_id);
    free(e->user_text);
    cand_release(&e->cand);
    json_decref(e->line);
  }
  free(s->ex);
  free(s->goal);
  free(s->judge_endpoint);
  free(s->judge_model);
  free(s->judge_url);
  free(s->judge_key_env);
  json_decref(s->judge_extra_body);
  json_decref(s->judge_extra);
  tpl_prompt_release(&s->judge_tpl);
  tpl_prompt_release(&s->solver_tpl);
  memset(s, 0, sizeof *s);
}

const struct grade_example *grade_find_id(const struct grade_set *s, const char *id) {
  for (size_t i = 0; id && i < s->n; i++)
    if (!strcmp(s->ex[i].id, id)) return &s->ex[i];
  return NULL;
}

const struct grade_example *grade_find_prompt(const struct grade_set *s, const char *text) {
  if (!text || !*text) return NULL;
  uint64_t h = hash64_str(text);
  for (size_t i = 0; i < s->n; i++)
    if (s->ex[i].prompt_hash == h || s->ex[i].user_hash == h) return &s->ex[i];
  /* a prompt wrapped in a chat template: the example whose export prompt it contains, else
   * the one with the longest question it contains */
  const struct grade_example *best = NULL;
  size_t best_len = 0;
  for (size_t i = 0; i < s->n; i++) {
    const struct grade_example *e = &s->ex[i];
    if (strstr(text, e->user_text)) return e;
    size_t ql = strlen(e->cand.question);
    if (ql > best_len && strstr(text, e->cand.question)) {
      best = e;
      best_len = ql;
    }
  }
  return best;
}

static json_t *vars_of(const struct grade_set *s) {
  return json_pack("{s:s,s:b,s:s}", "task", cand_task_name(s->task), "verifiable",
                   s->task == CAND_TASK_VERIFIABLE, "goal", s->goal);
}

json_t *grade_solver_messages(const struct grade_set *s, const struct grade_example *e, char *err,
                              size_t errlen) {
  json_t *vars = vars_of(s);
  json_object_set_new(vars, "context", json_string(e->cand.context ? e->cand.context : ""));
  json_object_set_new(vars, "question", json_string(e->cand.question));
  json_t *given = recipe_role_filter_vars(RECIPE_ROLE_WEAK, s->task, vars);
  json_decref(vars);
  json_t *messages = NULL;
  int rc = tpl_prompt_render(&s->solver_tpl, NULL, given, 0, &messages, err, errlen);
  json_decref(given);
  return rc ? NULL : messages;
}

int64_t grade_seed(const struct grade_set *s, const struct grade_example *e, const char *label,
                   int sample) {
  return (int64_t)rng_derive(s->seed, "%s|%d|%s|%d", e->source_id, e->round, label, sample);
}

int grade_needs_judge(const struct grade_set *s) {
  return s->task != CAND_TASK_VERIFIABLE || s->matcher == SCORE_LLM;
}

json_t *grade_judge_request(const struct grade_set *s, const struct grade_example *e,
                            const char *response, int64_t seed, const char *repair_problem,
                            char *err, size_t errlen) {
  int verifiable = s->task == CAND_TASK_VERIFIABLE;
  json_t *vars = vars_of(s);
  json_object_set_new(vars, "question", json_string(e->cand.question));
  /* the final answer, not the reasoning before it (none when it never stopped reasoning) */
  size_t alen = 0;
  const char *a = extract_final_text(response, strlen(response), &alen);
  json_object_set_new(vars, "response", jx_string_lossy(a ? a : "", alen));
  json_object_set_new(vars, "reference_answer", json_string(e->cand.reference_answer));
  json_object_set_new(vars, "rubric", cand_rubric_vars(&e->cand));
  json_t *given = recipe_role_filter_vars(RECIPE_ROLE_JUDGE, s->task, vars);
  json_decref(vars);
  json_t *messages = NULL;
  int rc = tpl_prompt_render(&s->judge_tpl, NULL, given, 0, &messages, err, errlen);
  json_decref(given);
  if (rc) return NULL;
  if (repair_problem) { /* as the loop's judge_repair(): the note before the task */
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    const char *task = jx_str(last, "content");
    char note[1024];
    fb_judge_repair_note(note, sizeof note, verifiable, e->cand.n_rubric, repair_problem);
    char *t = xasprintf("%s%s", note, task ? task : "");
    json_object_set_new(last, "content", jx_string_lossy(t, strlen(t)));
    free(t);
  }
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = s->judge_temperature;
  p.top_p = s->judge_top_p;
  p.max_tokens = s->judge_max_tokens;
  p.has_seed = 1;
  p.seed = seed;
  p.extra = s->judge_extra;
  json_t *rf = NULL;
  if (s->json_schema)
    rf = verifiable
             ? cand_schema_wrap("verifier_verdict", score_correct_schema(), s->json_schema == 2)
             : cand_schema_wrap("rubric_verdicts", score_judge_schema(e->cand.n_rubric),
                                s->json_schema == 2);
  p.response_format = rf;
  json_t *body = llm_request_build(s->judge_model, messages, &p);
  json_decref(rf);
  json_decref(messages);
  if (!body) ad_set_err(err, errlen, "could not build the judge request");
  return body;
}

int grade_judge_reply(const struct grade_set *s, const struct grade_example *e, const char *content,
                      double *score, json_t **detail, char *err, size_t errlen) {
  size_t len = strlen(content);
  *detail = NULL;
  if (s->task == CAND_TASK_VERIFIABLE) {
    int correct = 0;
    int rc = score_parse_correct(content, len, &correct, err, errlen);
    if (rc) return rc;
    *score = correct ? 1.0 : 0.0;
    *detail = json_pack("{s:b}", "correct", correct);
    return 0;
  }
  int n = e->cand.n_rubric;
  int *met = xcalloc((size_t)n + 1, sizeof *met);
  int *w = xcalloc((size_t)n + 1, sizeof *w);
  for (int k = 0; k < n; k++) w[k] = e->cand.rubric[k].weight;
  int rc = score_parse_verdicts(content, len, n, met, err, errlen);
  if (!rc) {
    *score = score_rubric(w, met, n);
    json_t *a = json_array();
    for (int k = 0; k < n; k++)
      json_array_append_new(a,
                            json_pack("{s:i,s:s,s:i,s:b}", "number", k + 1, "criterion",
                                      e->cand.rubric[k].criterion, "weight", w[k], "met", met[k]));
    *detail = a;
  }
  free(met);
  free(w);
  return rc;
}

double grade_match(const struct grade_set *s, const struct grade_example *e, const char *response,
                   json_t **detail) {
  enum score_matcher m = s->matcher == SCORE_LLM ? SCORE_AUTO : s->matcher;
  char *ans = score_final_answer(response, strlen(response));
  int match = ans ? score_match(m, ans, e->cand.reference_answer) : 0;
  *detail = json_pack("{s:s,s:b}", "answer", ans ? ans : "", "correct", match);
  free(ans);
  return match ? 1.0 : 0.0;
}

/* ---- metrics ---- */

void grade_metrics_of(const double *scores, int n, struct grade_metrics *out) {
  out->n = n;
  out->mean = out->best = NAN;
  if (n <= 0) return;
  double sum = 0, best = scores[0];
  for (int i = 0; i < n; i++) {
    sum += scores[i];
    if (scores[i] > best) best = scores[i];
  }
  out->mean = sum / n;
  out->best = best;
}

void grade_paired_diff(const double *a, const double *b, size_t n, int resamples, uint64_t seed,
                       struct grade_paired *out) {
  memset(out, 0, sizeof *out);
  double *d = xcalloc(n ? n : 1, sizeof *d);
  for (size_t i = 0; i < n; i++) {
    d[i] = a[i] - b[i];
    if (d[i] > 1e-12) out->a_wins++;
    else if (d[i] < -1e-12) out->b_wins++;
    else out->ties++;
  }
  struct boot_ci ci;
  boot_mean_ci(d, n, resamples > 0 ? resamples : BOOT_DEFAULT_RESAMPLES, BOOT_DEFAULT_LEVEL, seed,
               &ci);
  out->est = ci.est;
  out->lo = ci.lo;
  out->hi = ci.hi;
  out->n = ci.n;
  free(d);
}
