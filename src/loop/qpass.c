/* qpass.c - the end-of-loop quality pass (qpass.h). */
#include "loop/qpass.h"

#include <stdlib.h>
#include <string.h>

#include "eval/candidate.h"
#include "eval/score.h"
#include "llm/llm.h"
#include "loop/callrec.h"
#include "source/source.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#define QPASS_WINDOW 64 /* calls in flight */

struct qcall {
  struct qp *q;
  char *example_id, *source_id;
  json_t *body;
  struct callrec rec;
  char *content; /* the reply, once done */
  int done, failed;
  char err[512];
};

struct qp {
  const struct recipe *rc;
  store *st;
  store_id run;
  llm_client *llm;
  const char *endpoint, *model;
  struct src_corpus corpus;
  json_t *docs;     /* source id -> position */
  json_t *examples; /* the stored rows */
  int store_failed;
  struct qpass_calls n;
};

static void on_attempt(void *ud, const struct llm_attempt *a) {
  callrec_attempt(&((struct qcall *)ud)->rec, a);
}

static void on_done(void *ud, const struct llm_result *res) {
  struct qcall *c = ud;
  struct callrec_id id = {"quality_pass", c->source_id, 0, c->q->endpoint, c->q->model};
  c->done = 1;
  if (callrec_put(c->q->st, c->q->run, &c->rec, &id, res)) c->q->store_failed = 1;
  if (res->rc == 0 && res->reply) {
    c->content = xstrdup(res->reply->content ? res->reply->content : "");
  } else {
    c->failed = 1;
    snprintf(c->err, sizeof c->err, "%s", res->error ? res->error : ad_strerror(res->rc));
  }
}

/* The quality prompt's variables for one stored example (as the loop's base_vars and
 * candidate_vars give them). New reference, or NULL with err set. */
static json_t *vars_for(const struct qp *q, const json_t *row, char *err, size_t errlen) {
  const struct recipe *rc = q->rc;
  const char *sid = jx_str(row, "source_id");
  const json_t *pos = sid ? json_object_get(q->docs, sid) : NULL;
  if (!pos) {
    ad_set_err(err, errlen, "quality pass: source '%s' of example '%s' is not in the corpus %s",
               sid ? sid : "?", jx_str(row, "example_id"), rc->sources.path);
    return NULL;
  }
  struct src_doc *d;
  if (src_doc_open(&q->corpus, (size_t)json_integer_value(pos), &d, err, errlen))
    return NULL; /* streamed: read it for now */
  struct cand c;
  struct cand_issue issue;
  memset(&c, 0, sizeof c);
  json_t *ex = json_deep_copy(json_object_get(row, "example"));
  (void)cand_from_json(ex, rc->task, &rc->checks, NULL, &c, &issue);
  json_decref(ex);
  json_t *cj = cand_to_json(&c);
  cand_release(&c);
  char *cs = json_dumps(cj, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  json_decref(cj);
  const struct cand_checks *k = &rc->checks;
  json_t *v = json_pack(
      "{s:s, s:s, s:s, s:i, s:s, s:b, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:s}", "source_title",
      d->title ? d->title : "", "source_text", d->text, "goal", rc->goal ? rc->goal : "", "round",
      0, "task", cand_task_name(rc->task), "verifiable", rc->task == CAND_TASK_VERIFIABLE,
      "max_weight", k->max_weight, "rubric_min", k->rubric_min, "rubric_max", k->rubric_max,
      "positive_min", k->positive_min, "positive_max", k->positive_max, "negative_min",
      k->negative_min, "negative_max", k->negative_max, "candidate_json", cs ? cs : "{}");
  free(cs);
  src_doc_close(&q->corpus, d); /* the prompt holds a copy */
  return v;
}

/* Start one example's call: from the cache (done at once) or sent. 0 or an AD_E* code. */
static int start(struct qp *q, struct qcall *c, const json_t *row, char *err, size_t errlen) {
  const struct recipe_role *ro = &q->rc->roles[RECIPE_ROLE_QUALITY];
  json_t *vars = vars_for(q, row, err, errlen);
  if (!vars) return AD_ENOTFOUND;
  json_t *given = recipe_role_filter_vars(RECIPE_ROLE_QUALITY, q->rc->task, vars);
  json_decref(vars);
  json_t *messages = NULL;
  int rc = tpl_prompt_render(&ro->prompt.tpl, ro->system_prompt.tpl.user, given, 0, &messages, err,
                             errlen);
  json_decref(given);
  if (rc) return rc;
  struct llm_params p;
  llm_params_init(&p);
  p.temperature = ro->temperature;
  p.top_p = ro->top_p;
  p.max_tokens = ro->max_tokens;
  p.has_seed = 1;
  p.seed = (int64_t)rng_derive((uint64_t)q->rc->seed, "%s|quality_pass|%s", c->source_id,
                               c->example_id);
  p.extra = ro->extra;
  json_t *body = llm_request_build(q->model, messages, &p);
  json_decref(messages);
  c->body = body ? llm_merge_extra(q->llm, q->endpoint, body) : NULL;
  json_decref(body);
  if (!c->body) {
    ad_set_err(err, errlen, "quality pass: cannot build the request for '%s'", c->example_id);
    return AD_EINVAL;
  }
  callrec_begin(&c->rec, q->endpoint, c->body);
  char *cached = NULL;
  size_t clen = 0;
  rc = store_cache_get(q->st, c->rec.key, &cached, &clen);
  if (rc == 0) {
    struct llm_reply rep;
    memset(&rep, 0, sizeof rep);
    if (llm_reply_parse(cached, clen, &rep, c->err, sizeof c->err) == 0)
      c->content = xstrdup(rep.content ? rep.content : "");
    else c->failed = 1;
    llm_reply_release(&rep);
    free(cached);
    struct callrec_id id = {"quality_pass", c->source_id, 0, q->endpoint, q->model};
    if (callrec_put(q->st, q->run, &c->rec, &id, NULL)) q->store_failed = 1;
    c->done = 1;
    q->n.cache_hits++;
    return 0;
  }
  if (rc != AD_ENOTFOUND) {
    ad_set_err(err, errlen, "%s", store_errmsg(q->st));
    return rc;
  }
  rc = llm_submit_serialized(q->llm, q->endpoint, c->body, c->rec.canon, c->rec.canon_len, on_done,
                             on_attempt, c);
  if (rc) ad_set_err(err, errlen, "quality pass: %s", llm_client_errmsg(q->llm));
  else q->n.sent++;
  return rc;
}

/* One finished call's verdict into out's examples. */
static void verdict(struct qcall *c, json_t *out) {
  struct score_qv qv;
  char perr[256];
  memset(&qv, 0, sizeof qv);
  json_t *ex = json_object_get(out, "examples");
  if (score_parse_qv(c->content, strlen(c->content), &qv, perr, sizeof perr)) {
    json_object_set_new(out, "invalid", json_integer(jx_int(out, "invalid", 0) + 1));
    json_object_set_new(
        ex, c->example_id,
        json_pack("{s:s, s:n, s:s}", "source_id", c->source_id, "pass", "error", perr));
    return;
  }
  json_t *issues = json_array();
  char reason[512] = "quality_pass: ";
  for (int i = 0; i < qv.n_issues; i++) {
    json_array_append_new(issues, json_string(qv.issues[i]));
    size_t l = strlen(reason);
    snprintf(reason + l, sizeof reason - l, "%s%s", i ? ", " : "", qv.issues[i]);
  }
  if (!qv.n_issues) snprintf(reason + strlen(reason), sizeof reason - strlen(reason), "rejected");
  json_t *v = json_pack("{s:s, s:b, s:o, s:s}", "source_id", c->source_id, "pass", qv.pass,
                        "issues", issues, "feedback", qv.feedback);
  if (!qv.pass) {
    json_object_set_new(v, "reason", json_string(reason));
    json_object_set_new(out, "failed", json_integer(jx_int(out, "failed", 0) + 1));
  }
  json_object_set_new(ex, c->example_id, v);
}

static int collect(void *ud, const json_t *row) {
  json_array_append((json_t *)ud, (json_t *)row);
  return 0;
}

static void qcall_free(struct qcall *c) {
  if (!c) return;
  free(c->example_id);
  free(c->source_id);
  free(c->content);
  json_decref(c->body);
  callrec_release(&c->rec);
  free(c);
}

int qpass_run(const struct recipe *rc, store *st, store_id run, json_t **out,
              struct qpass_calls *counts, char *err, size_t errlen) {
  *out = NULL;
  const struct recipe_finalize *f = &rc->finalize;
  struct qp q = {rc,   st,   run, NULL,  f->quality_endpoint, f->quality_model, {0},
                 NULL, NULL, 0,   {0, 0}};
  struct src_options so = rc->sources;
  so.limit = 0;  /* every source an example may come from */
  so.stream = 1; /* an index: each text is read while its prompt is rendered */
  int r = src_load(&so, &q.corpus, err, errlen);
  if (r) return r;
  q.docs = json_object();
  for (size_t i = 0; i < q.corpus.n; i++)
    json_object_set_new(q.docs, src_corpus_id(&q.corpus, i), json_integer((json_int_t)i));
  q.examples = json_array();
  if ((r = store_examples_each(st, run, collect, q.examples)))
    ad_set_err(err, errlen, "%s", store_errmsg(st));
  q.llm = llm_client_new();
  llm_client_set_seed(q.llm, (uint64_t)rc->seed);
  for (int i = 0; i < rc->n_endpoints && !r; i++) {
    struct llm_endpoint_config cfg;
    r = recipe_endpoint_config(rc, i, &cfg);
    if (!r) r = llm_client_add_endpoint(q.llm, &cfg);
    if (r) ad_set_err(err, errlen, "%s", llm_client_errmsg(q.llm));
  }
  size_t n = json_array_size(q.examples);
  struct qcall **calls = xcalloc(n + 1, sizeof *calls);
  json_t *res = json_pack("{s:s, s:s, s:I, s:i, s:i, s:o}", "endpoint", q.endpoint, "model",
                          q.model, "checked", (json_int_t)n, "failed", 0, "invalid", 0, "examples",
                          json_object());
  size_t next = 0, finished = 0;
  while (!r && finished < n) {
    /* keep the window full; finish the calls in example order */
    while (!r && next < n && next - finished < QPASS_WINDOW) {
      const json_t *row = json_array_get(q.examples, next);
      struct qcall *c = calls[next] = xcalloc(1, sizeof *c);
      c->q = &q;
      c->example_id = xstrdup(jx_str(row, "example_id") ? jx_str(row, "example_id") : "");
      c->source_id = xstrdup(jx_str(row, "source_id") ? jx_str(row, "source_id") : "");
      r = start(&q, c, row, err, errlen);
      next++;
    }
    while (!r && finished < next && calls[finished]->done) {
      struct qcall *c = calls[finished];
      if (c->failed) {
        ad_set_err(err, errlen, "quality pass (%s on endpoint '%s'), example %s: %s", q.model,
                   q.endpoint, c->example_id, c->err);
        r = AD_EHTTP;
        break;
      }
      verdict(c, res);
      qcall_free(c);
      calls[finished++] = NULL;
    }
    if (q.store_failed && !r) {
      ad_set_err(err, errlen, "%s", store_errmsg(st));
      r = AD_EIO;
    }
    if (!r && finished < next && !calls[finished]->done) llm_client_run_once(q.llm, 100);
  }
  llm_client_free(q.llm); /* calls still out are dropped without callbacks */
  for (size_t i = 0; i < n; i++) qcall_free(calls[i]);
  free(calls);
  json_decref(q.examples);
  json_decref(q.docs);
  src_corpus_release(&q.corpus);
  if (counts) *counts = q.n;
  if (r) json_decref(res);
  else *out = res;
  return r;
}
