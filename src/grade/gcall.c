/* gcall.c - eval's and the reward server's model calls, behind the store's cache. */
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
