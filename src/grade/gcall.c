/* gcall.c - eval's and the reward server's model calls, behind the store's cache. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "grade/grade.h"
#include "loop/callrec.h"
#include "util/mem.h"

struct gcall {
  struct grade_caller *c;
  struct callrec rec;
  json_t *body;
  char *endpoint, *role, *source_id, *model;
  int round;
  char *cached;
  size_t cached_len;
  grade_done_fn done;
  void *ud;
  struct gcall *next;
};

static void gcall_free(struct gcall *g) {
  callrec_release(&g->rec);
  json_decref(g->body);
  free(g->endpoint);
  free(g->role);
  free(g->source_id);
  free(g->model);
  free(g->cached);
  free(g);
}

static void record(struct gcall *g, const struct llm_result *res) {
  if (!g->c->st) return;
  struct callrec_id id = {g->role, g->source_id, g->round, g->endpoint, g->model};
  if (callrec_put(g->c->st, g->c->run, &g->rec, &id, res)) g->c->store_errors++;
}

static void on_attempt(void *ud, const struct llm_attempt *a) {
  struct gcall *g = ud;
  callrec_attempt(&g->rec, a);
}

static void on_done(void *ud, const struct llm_result *res) {
  struct gcall *g = ud;
  if (res->rc != AD_ECANCELED) record(g, res);
  struct grade_reply r = {0};
  if (res->rc == 0 && res->reply) {
    r.ok = 1;
    r.content = res->reply->content ? res->reply->content : "";
    r.finish_reason = res->reply->finish_reason;
  } else {
    g->c->failed++;
    r.error = res->error ? res->error : ad_strerror(res->rc);
    r.http_status = res->http_status;
    r.rc = res->rc;
  }
  g->done(g->ud, &r);
  gcall_free(g);
}

int grade_call(struct grade_caller *c, const char *endpoint, const char *role,
               const char *source_id, int round, const json_t *body, grade_done_fn done, void *ud) {
  struct gcall *g = xcalloc(1, sizeof *g);
  g->c = c;
  g->body = llm_merge_extra(c->llm, endpoint, body);
  if (!g->body) {
    gcall_free(g);
    return AD_ENOTFOUND;
  }
  g->endpoint = xstrdup(endpoint);
  g->role = xstrdup(role);
  g->source_id = source_id ? xstrdup(source_id) : NULL;
  const char *m = json_string_value(json_object_get(body, "model"));
  g->model = xstrdup(m ? m : "");
  g->round = round;
  g->done = done;
  g->ud = ud;
  callrec_begin(&g->rec, endpoint, g->body);
  if (c->st && store_cache_get(c->st, g->rec.key, &g->cached, &g->cached_len) == 0) {
    c->cache_hits++;
    record(g, NULL);
    if (c->ready_tail) c->ready_tail->next = g;
    else c->ready_head = g;
    c->ready_tail = g;
    return 0;
  }
  int rc = llm_submit_serialized(c->llm, endpoint, g->body, g->rec.canon, g->rec.canon_len, on_done,
                                 on_attempt, g);
  if (rc) {
    gcall_free(g);
    return rc;
  }
  c->sent++;
  return 0;
}

static void drain(struct grade_caller *c) {
  while (c->ready_head) {
    struct gcall *g = c->ready_head;
    c->ready_head = g->next;
    if (!c->ready_head) c->ready_tail = NULL;
    struct llm_reply rep;
    char err[256];
    memset(&rep, 0, sizeof rep);
    struct grade_reply r = {0};
    if (llm_reply_parse(g->cached, g->cached_len, &rep, err, sizeof err) == 0) {
      r.ok = 1;
      r.content = rep.content ? rep.content : "";
      r.finish_reason = rep.finish_reason;
    } else {
      r.error = err;
      r.rc = AD_EPARSE;
    }
    g->done(g->ud, &r);
    llm_reply_release(&rep);
    gcall_free(g);
  }
}

int grade_caller_pump(struct grade_caller *c, int wait_ms) {
  drain(c);
  int n = llm_client_run_once(c->llm, c->ready_head ? 0 : wait_ms);
  drain(c);
  return n < 0 ? n : n + (c->ready_head ? 1 : 0);
}

int grade_caller_pending(const struct grade_caller *c) {
  return llm_client_pending(c->llm) + (c->ready_head ? 1 : 0);
}

/* ---- one response graded, with the judge's repair turn ---- */

struct gj {
  struct grade_caller *c;
  const struct grade_set *s;
  const struct grade_example *e;
  char *response;
  char label[48];
  int sample, repaired;
  grade_verdict_fn fn;
  void *ud;
};

static void gj_end(struct gj *g, const struct grade_verdict *v) {
  g->fn(g->ud, v);
  free(g->response);
  free(g);
}

static void gj_fail(struct gj *g, const char *error, int infra) {
  struct grade_verdict v = {0, 0, NULL, error, infra};
  gj_end(g, &v);
}

static void gj_send(struct gj *g, const char *problem);

/* The judge endpoint's fault, not the request's (as the loop sorts them, docs/loop.md). */
static int infra_status(const struct grade_reply *r) {
  int h = r->http_status;
  return r->rc != AD_EPARSE &&
         (h == 0 || h == 401 || h == 403 || h == 404 || h == 408 || h == 429 || h >= 500);
}

static void gj_done(void *ud, const struct grade_reply *r) {
  struct gj *g = ud;
  if (!r->ok) {
    gj_fail(g, r->error, infra_status(r));
    return;
  }
  if (r->finish_reason && !strcmp(r->finish_reason, "length")) {
    gj_fail(g, "the judge's reply hit max_tokens and was cut off", 0);
    return;
  }
  char err[512];
  double score = 0;
  json_t *detail = NULL;
  if (grade_judge_reply(g->s, g->e, r->content, &score, &detail, err, sizeof err)) {
    if (!g->repaired) {
      g->repaired = 1;
      gj_send(g, err);
      return;
    }
    char e2[600];
    snprintf(e2, sizeof e2, "invalid judgement after a repair turn: %s", err);
    gj_fail(g, e2, 0);
    return;
  }
  struct grade_verdict v = {1, score, detail, NULL, 0};
  gj_end(g, &v);
  json_decref(detail);
}

static void gj_send(struct gj *g, const char *problem) {
  char err[512], label[64];
  snprintf(label, sizeof label, problem ? "%s_repair" : "%s", g->label);
  json_t *body = grade_judge_request(
      g->s, g->e, g->response, grade_seed(g->s, g->e, label, g->sample), problem, err, sizeof err);
  if (!body) {
    gj_fail(g, err, 0);
    return;
  }
  int rc = grade_call(g->c, g->s->judge_endpoint, label, g->e->source_id, g->e->round, body,
                      gj_done, g);
  json_decref(body);
  if (rc) gj_fail(g, llm_client_errmsg(g->c->llm), 1);
}

void grade_judge_async(struct grade_caller *c, const struct grade_set *s,
                       const struct grade_example *e, const char *response, const char *label,
                       int sample, grade_verdict_fn fn, void *ud) {
  if (!grade_needs_judge(s)) {
    json_t *detail = NULL;
    double sc = grade_match(s, e, response, &detail);
    struct grade_verdict v = {1, sc, detail, NULL, 0};
    fn(ud, &v);
    json_decref(detail);
    return;
  }
  struct gj *g = xcalloc(1, sizeof *g);
  g->c = c;
  g->s = s;
  g->e = e;
  g->response = xstrdup(response);
  snprintf(g->label, sizeof g->label, "%s", label);
  g->sample = sample;
  g->fn = fn;
  g->ud = ud;
  gj_send(g, NULL);
}
