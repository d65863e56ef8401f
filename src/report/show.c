/* show.c - one source's story from a run store (show.h). */
#include "report/show.h"

#include <stdlib.h>
#include <string.h>

#include "eval/extract.h"
#include "eval/score.h"
#include "report/report.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/rng.h"

#define SHOW_MAX_SAMPLES 64 /* = ACCEPT_MAX_SAMPLES: the most samples a phase has */

/* ---- gathering ---- */

struct src_scan {
  const char *want;
  json_t *row;  /* the wanted source's row (copy) */
  json_t *list; /* every source (copies), for the listing */
  size_t total;
};

static int scan_source(void *ud, const json_t *row) {
  struct src_scan *s = ud;
  s->total++;
  if (s->list) json_array_append_new(s->list, json_deep_copy(row));
  if (s->want && !s->row) {
    const char *id = jx_str(row, "source_id");
    if (id && !strcmp(id, s->want)) s->row = json_deep_copy(row);
  }
  return 0;
}

struct cand_scan {
  const char *src;
  int round;
  json_t *rounds; /* object: round number as text -> array of candidate rows */
};

static json_t *round_slot(json_t *rounds, long long r, const char *key) {
  char k[32];
  snprintf(k, sizeof k, "%lld", r);
  json_t *o = json_object_get(rounds, k);
  if (!o) {
    o = json_pack("{s:I,s:[],s:[]}", "round", (json_int_t)r, "candidates", "calls");
    json_object_set_new(rounds, k, o);
  }
  return json_object_get(o, key);
}

static int scan_cand(void *ud, const json_t *row) {
  struct cand_scan *c = ud;
  const char *id = jx_str(row, "source_id");
  long long r = jx_int(row, "round", 0);
  if (!id || strcmp(id, c->src) || (c->round > 0 && r != c->round)) return 0;
  json_t *rec = json_object_get(row, "record");
  json_t *cand = json_is_object(rec) ? json_deep_copy(rec) : json_object();
  /* the row's key and verdict are the truth; the record repeats them */
  json_object_set_new(cand, "round", json_integer(r));
  json_object_set_new(cand, "index", json_integer(jx_int(row, "index", 0)));
  json_object_set(cand, "verdict", json_object_get(row, "verdict"));
  json_t *reason = json_object_get(row, "reason");
  json_object_set_new(cand, "reason", reason ? json_deep_copy(reason) : json_null());
  json_array_append_new(round_slot(c->rounds, r, "candidates"), cand);
  return 0;
}

struct call_scan {
  store *st;
  const char *src;
  int round;
  uint64_t seed;
  int prompts;
  json_t *rounds;
};

/* The reply's message text: choices[0].message.content (with any reasoning before
 * it), else the raw body. */
static json_t *reply_content(const char *reply) {
  if (!reply) return json_null();
  json_t *o = json_loads(reply, 0, NULL);
  const json_t *msg = json_object_get(json_array_get(json_object_get(o, "choices"), 0), "message");
  json_t *res = NULL;
  if (json_is_object(msg)) {
    const char *content = jx_str(msg, "content");
    const char *reasoning = jx_str(msg, "reasoning_content");
    if (!reasoning) reasoning = jx_str(msg, "reasoning");
    if (reasoning && *reasoning) {
      char *both = xasprintf("<think>%s</think>%s", reasoning, content ? content : "");
      res = jx_string_lossy(both, strlen(both));
      free(both);
    } else if (content) {
      res = json_string(content);
    }
  }
  json_decref(o);
  return res ? res : jx_string_lossy(reply, strlen(reply));
}

/* The sample a call answered: the k whose derived seed its request carries. */
static int call_sample(const struct call_scan *c, const char *role, long long round,
                       const json_t *req) {
  const json_t *sj = json_object_get(req, "seed");
  if (!json_is_integer(sj)) return -1;
  int64_t seed = (int64_t)json_integer_value(sj);
  for (int k = 0; k < SHOW_MAX_SAMPLES; k++)
    if ((int64_t)rng_derive(c->seed, "%s|%lld|%s|%d", c->src, round, role, k) == seed) return k;
  return -1;
}

static int scan_call(void *ud, const json_t *row) {
  struct call_scan *c = ud;
  const char *id = jx_str(row, "source_id");
  long long r = jx_int(row, "round", -1);
  if (!id || strcmp(id, c->src) || (c->round > 0 && r != c->round)) return 0;
  const char *role = jx_str(row, "role");
  if (!role) role = "?";
  json_t *req = jx_str(row, "request") ? json_loads(jx_str(row, "request"), 0, NULL) : NULL;
  char *cached = NULL;
  const char *reply = jx_str(row, "reply");
  const char *key = jx_str(row, "cache_key");
  if (!reply && key && json_is_true(json_object_get(row, "cache_hit")) &&
      store_cache_get(c->st, key, &cached, NULL) == 0)
    reply = cached;
  json_t *call = json_pack(
      "{s:I,s:s,s:i,s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "id", (json_int_t)jx_int(row, "id", 0),
      "role", role, "sample", call_sample(c, role, r, req), "model",
      json_object_get(row, "model") ? json_object_get(row, "model") : json_null(), "endpoint",
      json_object_get(row, "endpoint") ? json_object_get(row, "endpoint") : json_null(), "status",
      json_object_get(row, "status") ? json_object_get(row, "status") : json_null(), "error",
      json_object_get(row, "error") ? json_object_get(row, "error") : json_null(), "cache_hit",
      json_object_get(row, "cache_hit") ? json_object_get(row, "cache_hit") : json_false(),
      "attempts", json_object_get(row, "attempts") ? json_object_get(row, "attempts") : json_null(),
      "prompt_tokens",
      json_object_get(row, "prompt_tokens") ? json_object_get(row, "prompt_tokens") : json_null(),
      "completion_tokens",
      json_object_get(row, "completion_tokens") ? json_object_get(row, "completion_tokens")
                                                : json_null());
  json_object_set_new(call, "cache_key", key ? json_string(key) : json_null());
  const json_t *fr = json_object_get(row, "finish_reason");
  json_object_set_new(call, "finish_reason", json_is_string(fr) ? json_deep_copy(fr) : json_null());
  json_object_set_new(call, "content", reply_content(reply));
  if (c->prompts) {
    json_t *msgs = json_object_get(req, "messages");
    json_object_set(call, "messages", msgs ? msgs : json_null());
  }
  free(cached);
  json_decref(req);
  json_array_append_new(round_slot(c->rounds, r, "calls"), call);
  return 0;
}

/* Cache hits whose original call is in another run of the store: their sample
 * comes from that call's request (same body, so the same seed). */
struct key_scan {
  struct call_scan *cs;
  json_t *want; /* cache key -> sample (-1 while unknown) */
};

static int scan_key(void *ud, const json_t *row) {
  struct key_scan *k = ud;
  const char *id = jx_str(row, "source_id"), *key = jx_str(row, "cache_key");
  const char *req_text = jx_str(row, "request");
  if (!id || !key || !req_text || strcmp(id, k->cs->src)) return 0;
  json_t *w = json_object_get(k->want, key);
  if (!w || json_integer_value(w) >= 0) return 0;
  json_t *req = json_loads(req_text, 0, NULL);
  int sample = call_sample(k->cs, jx_str(row, "role") ? jx_str(row, "role") : "?",
                           jx_int(row, "round", -1), req);
  json_decref(req);
  if (sample >= 0) json_object_set_new(k->want, key, json_integer(sample));
  return 0;
}

struct run_ids {
  store_id skip;
  store_id ids[64];
  int n;
};

static int scan_run(void *ud, const json_t *row) {
  struct run_ids *r = ud;
  store_id id = (store_id)jx_int(row, "id", 0);
  if (id != r->skip && r->n < 64) r->ids[r->n++] = id;
  return 0;
}

static int resolve_keys(store *st, store_id run, struct call_scan *cs, json_t *rounds) {
  json_t *want = json_object();
  const char *rk;
  json_t *rnd;
  json_object_foreach(rounds, rk, rnd) {
    size_t i;
    json_t *c;
    json_array_foreach(json_object_get(rnd, "calls"), i, c) {
      const char *key = jx_str(c, "cache_key");
      if (key && jx_int(c, "sample", -1) < 0) json_object_set_new(want, key, json_integer(-1));
    }
  }
  int rc = 0;
  if (json_object_size(want)) {
    struct run_ids ids = {run, {0}, 0};
    rc = store_runs_each(st, scan_run, &ids);
    struct key_scan ks = {cs, want};
    for (int i = ids.n - 1; !rc && i >= 0; i--)
      rc = store_source_calls_each(st, ids.ids[i], cs->src, 1, scan_key, &ks);
    json_object_foreach(rounds, rk, rnd) {
      size_t i;
      json_t *c;
      json_array_foreach(json_object_get(rnd, "calls"), i, c) {
        const char *key = jx_str(c, "cache_key");
        long long k = key ? jx_int(want, key, -1) : -1;
        if (jx_int(c, "sample", -1) < 0 && k >= 0)
          json_object_set_new(c, "sample", json_integer(k));
      }
    }
  }
  json_decref(want);
  return rc;
}

/* ---- samples: solver answers paired with their judgements ---- */

static int is_single_role(const char *role) {
  return !strcmp(role, "orchestrator") || !strcmp(role, "challenger") || !strcmp(role, "quality") ||
         !strcmp(role, "agent"); /* the agent's turns: shown as its trajectory */
}
static int is_judge_role(const char *role) { return !strncmp(role, "judge", 5); }

/* The last successful call of (role, sample) among calls, else the last one. */
static const json_t *pick_call(const json_t *calls, const char *role, int sample) {
  const json_t *best = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(calls, i, c) {
    const char *r = jx_str(c, "role");
    if (!r || strcmp(r, role) || jx_int(c, "sample", -1) != sample) continue;
    const char *st = jx_str(c, "status");
    int ok = st && !strcmp(st, "ok");
    const char *bst = best ? jx_str(best, "status") : NULL;
    if (!best || ok || !(bst && !strcmp(bst, "ok"))) best = c;
  }
  return best;
}

/* The candidate of a round the samples answered: the last one with a candidate. */
static const json_t *round_candidate(const json_t *cands) {
  const json_t *best = NULL;
  size_t i;
  json_t *c;
  json_array_foreach(cands, i, c) if (json_is_object(json_object_get(c, "candidate")))
      best = json_object_get(c, "candidate");
  return best;
}

static json_t *judge_verdicts(const char *content, const json_t *rubric, double *score) {
  size_t n = json_array_size(rubric);
  *score = -1;
  if (!content || !n || n > 256) return NULL;
  int met[256], weights[256];
  char err[256];
  int got = score_parse_verdicts(content, strlen(content), (int)n, met, err, sizeof err);
  if (got < 0) return NULL;
  static const char *const keys[] = {"verdicts", NULL};
  json_t *parsed = extract_json(content, strlen(content), keys, EXTRACT_ALLOW_ARRAY, NULL, 0);
  const json_t *arr = json_is_array(parsed) ? parsed : json_object_get(parsed, "verdicts");
  json_t *out = json_array();
  for (size_t k = 0; k < n; k++) {
    const json_t *item = json_array_get(rubric, k);
    weights[k] = (int)jx_int(item, "weight", 0);
    const char *reason = NULL;
    size_t j;
    json_t *v;
    json_array_foreach(arr, j, v) {
      if (jx_int(v, "criterion", -1) == (long long)k + 1) reason = jx_str(v, "reason");
    }
    if (!reason) reason = jx_str(json_array_get(arr, k), "reason");
    json_array_append_new(
        out, json_pack("{s:I,s:O,s:i,s:b,s:o}", "criterion", (json_int_t)k + 1, "text",
                       json_object_get(item, "criterion") ? json_object_get(item, "criterion")
                                                          : json_null(),
                       "weight", weights[k], "met", met[k], "reason",
                       reason ? jx_string_lossy(reason, strlen(reason)) : json_null()));
  }
  *score = jx_round6(score_rubric(weights, met, (int)n));
  json_decref(parsed);
  return out;
}

static json_t *sample_of(const json_t *call, const json_t *judge, const json_t *cand) {
  json_t *s = json_pack("{s:I,s:O,s:O,s:O,s:O}", "sample", (json_int_t)jx_int(call, "sample", 0),
                        "model", json_object_get(call, "model"), "status",
                        json_object_get(call, "status"), "error", json_object_get(call, "error"),
                        "answer", json_object_get(call, "content"));
  if (!s) return json_object();
  json_object_set(s, "finish_reason", json_object_get(call, "finish_reason"));
  if (!judge) {
    json_object_set_new(s, "judge", json_null());
    const char *ans = jx_str(call, "content");
    if (ans && cand && jx_str(cand, "answer")) {
      char *fin = score_final_answer(ans, strlen(ans));
      json_object_set_new(s, "final_answer", jx_string_lossy(fin, strlen(fin)));
      free(fin);
    }
    return s;
  }
  json_t *j = json_pack("{s:O,s:O,s:O,s:O}", "model", json_object_get(judge, "model"), "status",
                        json_object_get(judge, "status"), "error", json_object_get(judge, "error"),
                        "content", json_object_get(judge, "content"));
  if (!j) j = json_object();
  const char *content = jx_str(judge, "content");
  const json_t *rubric = json_object_get(cand, "rubric");
  double score = -1;
  if (json_array_size(rubric)) {
    json_t *v = judge_verdicts(content, rubric, &score);
    if (v) json_object_set_new(j, "verdicts", v);
  } else if (content) {
    int correct = 0;
    if (!score_parse_correct(content, strlen(content), &correct, NULL, 0)) score = correct;
  }
  if (score >= 0) json_object_set_new(j, "score", json_real(score));
  json_object_set_new(s, "judge", j);
  return s;
}

static int is_ok(const json_t *o) {
  return jx_str(o, "status") && !strcmp(jx_str(o, "status"), "ok");
}

/* 1 when a sample counts in the statistics: its answer and its judgement (if any) arrived */
static int sample_judged(const json_t *s) {
  const json_t *j = json_object_get(s, "judge");
  return is_ok(s) && (!json_is_object(j) || is_ok(j));
}

static size_t build_samples(json_t *rnd) {
  json_t *calls = json_object_get(rnd, "calls");
  const json_t *cand = round_candidate(json_object_get(rnd, "candidates"));
  /* a cache hit has no request of its own: it answered the sample whose call has
   * the same cache key (in this round, or in another run: see resolve_keys());
   * what is left is numbered in call order, per role */
  json_t *next = json_object();
  size_t i;
  json_t *c;
  json_array_foreach(calls, i, c) {
    const char *key = jx_str(c, "cache_key");
    if (jx_int(c, "sample", -1) >= 0 || !key) continue;
    size_t j;
    json_t *o;
    json_array_foreach(calls, j, o) {
      const char *ok = jx_str(o, "cache_key");
      if (jx_int(o, "sample", -1) >= 0 && ok && !strcmp(ok, key)) {
        json_object_set(c, "sample", json_object_get(o, "sample"));
        break;
      }
    }
  }
  json_array_foreach(calls, i, c) {
    if (jx_int(c, "sample", -1) >= 0) continue;
    const char *role = jx_str(c, "role");
    long long k = jx_int(next, role, 0);
    json_object_set_new(c, "sample", json_integer(is_single_role(role) ? 0 : k));
    json_object_set_new(next, role, json_integer(k + 1));
  }
  json_decref(next);

  json_t *samples = json_object();
  size_t count = 0;
  json_array_foreach(calls, i, c) {
    const char *role = jx_str(c, "role");
    if (is_single_role(role) || is_judge_role(role)) continue;
    json_t *arr = json_object_get(samples, role);
    if (!arr) {
      arr = json_array();
      json_object_set_new(samples, role, arr);
    }
    int k = (int)jx_int(c, "sample", 0);
    int seen = 0;
    size_t j;
    json_t *s;
    json_array_foreach(arr, j, s) if (jx_int(s, "sample", -1) == k) seen = 1;
    if (seen) continue;
    const json_t *call = pick_call(calls, role, k);
    char jrole[96];
    snprintf(jrole, sizeof jrole, "judge_%s", role);
    const json_t *judge = pick_call(calls, jrole, k);
    json_array_append_new(arr, sample_of(call, judge, cand));
    count++;
  }
  /* samples in index order */
  const char *role;
  json_t *arr;
  json_object_foreach(samples, role, arr) {
    size_t n = json_array_size(arr);
    for (size_t a = 1; a < n; a++)
      for (size_t b = a; b > 0; b--) {
        json_t *x = json_array_get(arr, b - 1), *y = json_array_get(arr, b);
        if (jx_int(x, "sample", 0) <= jx_int(y, "sample", 0)) break;
        json_incref(x);
        json_array_set(arr, b - 1, y);
        json_array_set_new(arr, b, x);
      }
  }
  /* the score the loop recorded for each judged sample: "<role>_scores" of the
   * round's record lists them in sample order, leaving out samples whose solver or
   * judge call failed; only when the round has one candidate and the counts agree */
  const json_t *cands = json_object_get(rnd, "candidates");
  const json_t *rec = json_array_size(cands) == 1 ? json_array_get(cands, 0) : NULL;
  json_object_foreach(samples, role, arr) {
    char key[112];
    snprintf(key, sizeof key, "%s_scores", role);
    const json_t *scores = json_object_get(rec, key);
    size_t k, used = 0, judged = 0;
    json_t *smp;
    json_array_foreach(arr, k, smp) judged += sample_judged(smp);
    if (!json_is_array(scores) || judged != json_array_size(scores)) continue;
    json_array_foreach(arr, k, smp) {
      if (sample_judged(smp)) json_object_set(smp, "score", json_array_get(scores, used++));
    }
  }
  json_object_set_new(rnd, "samples", samples);
  return count;
}

/* The programmatic checks run on every parsed candidate, before anything else. */
static const char *checks_state(const json_t *cands) {
  const json_t *last = json_array_get(cands, json_array_size(cands) - 1);
  const char *reason = jx_str(last, "reason");
  if (reason && !strncmp(reason, "check:", 6)) return "failed";
  return json_is_object(json_object_get(last, "candidate")) ? "passed" : "not_run";
}

static int cmp_round(const void *a, const void *b) {
  long long x = jx_int(*(json_t *const *)a, "round", 0),
            y = jx_int(*(json_t *const *)b, "round", 0);
  return (x > y) - (x < y);
}

int report_show_sources(store *st, store_id run, json_t **out, char *err, size_t n) {
  *out = NULL;
  json_t *row = NULL;
  int rc = report_run_row(st, run, &row, err, n);
  if (rc) return rc;
  struct src_scan s = {NULL, NULL, json_array(), 0};
  rc = store_sources_each(st, (store_id)jx_int(row, "id", 0), scan_source, &s);
  if (rc) {
    json_decref(s.list);
    json_decref(row);
    return report_err(err, n, rc, "%s", store_errmsg(st));
  }
  *out = json_pack("{s:I,s:o}", "run", (json_int_t)jx_int(row, "id", 0), "sources", s.list);
  json_decref(row);
  return 0;
}

/* The document of one source whose run row and source row (as store_sources_each()
 * gives it) are known. */
static int build_doc(store *st, const json_t *row, const json_t *srcrow, int round, int prompts,
                     json_t **out, char *err, size_t n) {
  store_id rid = (store_id)jx_int(row, "id", 0);
  const char *path = store_path(st);
  const char *source_id = jx_str(srcrow, "source_id");
  json_t *rounds = json_object();
  int rc = 0;
  struct cand_scan cs = {source_id, round, rounds};
  rc = store_source_candidates_each(st, rid, source_id, scan_cand, &cs);
  struct call_scan ks = {st, source_id, round, (uint64_t)jx_int(row, "seed", 0), prompts, rounds};
  if (!rc) rc = store_source_calls_each(st, rid, source_id, 1, scan_call, &ks);
  if (!rc) rc = resolve_keys(st, rid, &ks, rounds);
  if (rc) {
    rc = report_err(err, n, rc, "%s", store_errmsg(st));
    goto out;
  }
  if (round > 0 && !json_object_size(rounds)) {
    rc = report_err(err, n, AD_ENOTFOUND,
                    "source '%s' has no round %d in run %lld of %s (it used %lld round%s)",
                    source_id, round, (long long)rid, path, jx_int(srcrow, "rounds_used", 0),
                    jx_int(srcrow, "rounds_used", 0) == 1 ? "" : "s");
    goto out;
  }
  /* rounds in order; calls outside a round (round < 1) come first as round 0 */
  size_t nr = json_object_size(rounds), k = 0;
  json_t **list = xcalloc(nr ? nr : 1, sizeof *list);
  const char *key;
  json_t *v;
  json_object_foreach(rounds, key, v) list[k++] = v;
  qsort(list, nr, sizeof *list, cmp_round);
  json_t *arr = json_array();
  size_t n_cand = 0, n_calls = 0, n_samples = 0;
  for (k = 0; k < nr; k++) {
    n_samples += build_samples(list[k]);
    json_t *cands = json_object_get(list[k], "candidates");
    n_cand += json_array_size(cands);
    n_calls += json_array_size(json_object_get(list[k], "calls"));
    json_object_set_new(list[k], "checks", json_string(checks_state(cands)));
    json_array_append(arr, list[k]);
  }
  free(list);
  json_t *src = json_deep_copy(srcrow);
  *out = json_pack(
      "{s:I,s:O,s:O,s:o,s:o,s:{s:I,s:I,s:I,s:I}}", "run", (json_int_t)rid, "seed",
      json_object_get(row, "seed"), "recipe_name",
      json_object_get(row, "recipe_name") ? json_object_get(row, "recipe_name") : json_null(),
      "source", src, "rounds", arr, "counts", "rounds", (json_int_t)nr, "candidates",
      (json_int_t)n_cand, "calls", (json_int_t)n_calls, "samples", (json_int_t)n_samples);
  if (!*out) rc = report_err(err, n, AD_EINTERNAL, "could not assemble the document");
out:
  json_decref(rounds);
  return rc;
}

int report_show_build_source(store *st, const json_t *run_row, const json_t *source_row,
                             int prompts, json_t **out, char *err, size_t n) {
  *out = NULL;
  if (!jx_str(source_row, "source_id"))
    return report_err(err, n, AD_EINVAL, "a source row without a source_id");
  return build_doc(st, run_row, source_row, 0, prompts, out, err, n);
}

int report_show_build(store *st, store_id run, const char *source_id, int round, int prompts,
                      json_t **out, char *err, size_t n) {
  *out = NULL;
  json_t *row = NULL;
  int rc = report_run_row(st, run, &row, err, n);
  if (rc) return rc;
  store_id rid = (store_id)jx_int(row, "id", 0);
  const char *path = store_path(st);
  struct src_scan s = {source_id, NULL, json_array(), 0};
  rc = store_sources_each(st, rid, scan_source, &s);
  if (rc) {
    rc = report_err(err, n, rc, "%s", store_errmsg(st));
    goto done;
  }
  if (!s.row) {
    char some[512] = "";
    size_t i, used = 0;
    json_t *r;
    json_array_foreach(s.list, i, r) {
      if (i == 3) break;
      used += (size_t)snprintf(some + used, sizeof some - used, "%s%s", i ? ", " : "",
                               jx_str(r, "source_id") ? jx_str(r, "source_id") : "?");
      if (used >= sizeof some) break;
    }
    rc = report_err(err, n, AD_ENOTFOUND,
                    "no source '%s' in run %lld of %s (%zu source%s%s%s%s); "
                    "`autodata show %s` lists every source id with its state",
                    source_id, (long long)rid, path, s.total, s.total == 1 ? "" : "s",
                    s.total ? ", e.g. " : "", some, s.total > 3 ? ", ..." : "", path);
    goto done;
  }
  rc = build_doc(st, row, s.row, round, prompts, out, err, n);
done:
  json_decref(s.row);
  json_decref(s.list);
  json_decref(row);
  return rc;
}

/* ---- text ---- */

/* text with every line after the first indented by ind spaces */
static void put_block(FILE *f, const char *text, int ind) {
  for (const char *p = text; *p; p++) {
    fputc(*p, f);
    if (*p == '\n' && p[1]) fprintf(f, "%*s", ind, "");
  }
  fputc('\n', f);
}

static void field(FILE *f, int ind, const char *label, const json_t *v) {
  fprintf(f, "%*s%-11s ", ind, "", label);
  if (json_is_string(v) && !*json_string_value(v)) {
    fprintf(f, "(empty)\n");
  } else if (json_is_string(v)) {
    put_block(f, json_string_value(v), ind + 12);
  } else if (!v || json_is_null(v)) {
    fprintf(f, "-\n");
  } else {
    char *t = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
    fprintf(f, "%s\n", t ? t : "?");
    free(t);
  }
}

static void print_candidate(FILE *f, const json_t *rec) {
  const json_t *cand = json_object_get(rec, "candidate");
  if (!json_is_object(cand)) {
    fprintf(f, "  candidate: none");
    const char *raw = jx_str(rec, "raw");
    if (raw) {
      fprintf(f, "; the challenger replied:\n    ");
      put_block(f, raw, 4);
    } else {
      fprintf(f, "\n");
    }
    return;
  }
  fprintf(f, "  candidate%s:\n",
          json_is_true(json_object_get(rec, "repaired")) ? " (after a repair turn)" : "");
  static const char *const keys[] = {"question_type", "context",          "question",
                                     "answer",        "reference_answer", NULL};
  static const char *const labels[] = {"type:", "context:", "question:", "answer:", "reference:"};
  for (int i = 0; keys[i]; i++)
    if (json_object_get(cand, keys[i])) field(f, 4, labels[i], json_object_get(cand, keys[i]));
  const json_t *rubric = json_object_get(cand, "rubric");
  if (json_array_size(rubric)) {
    fprintf(f, "    rubric:\n");
    size_t i;
    json_t *it;
    json_array_foreach(rubric, i, it) {
      fprintf(f, "      %zu. (weight %lld) ", i + 1, jx_int(it, "weight", 0));
      put_block(f, jx_str(it, "criterion") ? jx_str(it, "criterion") : "?", 8);
    }
  }
}

static void print_sample(FILE *f, const json_t *s) {
  fprintf(f, "    #%lld", jx_int(s, "sample", 0) + 1);
  const json_t *j = json_object_get(s, "judge");
  if (json_object_get(j, "score")) fprintf(f, "  score %.3f", jx_num(j, "score", 0));
  else if (json_is_number(json_object_get(s, "score")))
    fprintf(f, "  score %.3f", jx_num(s, "score", 0));
  const char *st = jx_str(s, "status");
  if (st && strcmp(st, "ok"))
    fprintf(f, "  %s: %s", st, jx_str(s, "error") ? jx_str(s, "error") : "");
  fprintf(f, "\n");
  if (jx_str(s, "answer")) {
    fprintf(f, "      answer: ");
    put_block(f, jx_str(s, "answer"), 14);
  }
  if (jx_str(s, "finish_reason") && !strcmp(jx_str(s, "finish_reason"), "length"))
    fprintf(f, "      (the reply was cut at max_tokens)\n");
  if (jx_str(s, "final_answer")) fprintf(f, "      final answer: %s\n", jx_str(s, "final_answer"));
  if (!json_is_object(j)) return;
  const char *jst = jx_str(j, "status");
  if (jst && strcmp(jst, "ok")) {
    fprintf(f, "      judge %s: %s\n", jst, jx_str(j, "error") ? jx_str(j, "error") : "");
    return;
  }
  const json_t *verdicts = json_object_get(j, "verdicts");
  if (json_array_size(verdicts)) {
    size_t i;
    json_t *v;
    json_array_foreach(verdicts, i, v) {
      fprintf(f, "      %s %lld. %s",
              json_is_true(json_object_get(v, "met")) ? "met    " : "not met",
              jx_int(v, "criterion", 0), jx_str(v, "text") ? jx_str(v, "text") : "?");
      if (jx_str(v, "reason")) fprintf(f, " - %s", jx_str(v, "reason"));
      fprintf(f, "\n");
    }
  } else if (jx_str(j, "content")) {
    fprintf(f, "      judge: ");
    put_block(f, jx_str(j, "content"), 13);
  }
}

/* The agent method's conversation (docs/agent.md): each tool call and a line of its
 * result; the candidate, samples and statistics below are the accepted candidate's and
 * every candidate's (the trajectory says which was which). */
static void print_agent(FILE *f, const json_t *agent) {
  fprintf(f, "  agent:      %lld turns, %lld tool calls\n", jx_int(agent, "turns", 0),
          jx_int(agent, "tool_calls", 0));
  size_t i;
  const json_t *t;
  json_array_foreach(json_object_get(agent, "trajectory"), i, t) {
    const char *tool = jx_str(t, "tool");
    if (!tool) {
      fprintf(f, "    turn %lld: %s\n", jx_int(t, "turn", 0),
              jx_str(t, "problem") ? jx_str(t, "problem") : "no tool call");
      continue;
    }
    char *res = json_dumps(json_object_get(t, "result"), JSON_COMPACT | JSON_PRESERVE_ORDER);
    fprintf(f, "    turn %lld: %s %.200s\n      -> %.300s%s\n", jx_int(t, "turn", 0), tool,
            jx_str(t, "arguments") ? jx_str(t, "arguments") : "", res ? res : "null",
            res && strlen(res) > 300 ? "..." : "");
    free(res);
  }
}

/* " label 0.123", or " label -" for a statistic that was not measured (null) */
static void print_stat(FILE *f, const char *label, const json_t *stats, const char *key) {
  const json_t *v = json_object_get(stats, key);
  if (json_is_number(v)) fprintf(f, "%s %.3f", label, json_number_value(v));
  else fprintf(f, "%s -", label);
}

static void print_round(FILE *f, const json_t *rnd) {
  const json_t *cands = json_object_get(rnd, "candidates");
  const json_t *last = json_array_get(cands, json_array_size(cands) - 1);
  size_t ci;
  json_t *cj;
  json_array_foreach(cands, ci, cj) { /* several per round: the round's verdict is the kept one */
    const char *v = jx_str(cj, "verdict");
    if (v && !strcmp(v, "accepted")) last = cj;
  }
  fprintf(f, "\n== round %lld", jx_int(rnd, "round", 0));
  if (last) {
    const char *reason = jx_str(last, "reason");
    fprintf(f, ": %s%s%s", jx_str(last, "verdict") ? jx_str(last, "verdict") : "?",
            reason ? " - " : "", reason ? reason : "");
  } else {
    fprintf(f, ": no candidate recorded (interrupted round?)");
  }
  fprintf(f, "\n");
  const json_t *calls = json_object_get(rnd, "calls");
  size_t i;
  json_t *rec;
  json_array_foreach(cands, i, rec) {
    if (json_array_size(cands) > 1) fprintf(f, " -- candidate %zu\n", i + 1);
    const json_t *ins = json_object_get(rec, "instructions");
    const json_t *agent = json_object_get(rec, "agent");
    if (agent) print_agent(f, agent);
    else if (jx_str(rec, "orchestrator_error"))
      fprintf(f, "  orchestrator: failed: %s\n", jx_str(rec, "orchestrator_error"));
    else if (json_is_string(ins) && *json_string_value(ins)) field(f, 2, "orchestrator:", ins);
    else fprintf(f, "  orchestrator: no instructions\n");
    print_candidate(f, rec);
    const char *reason = jx_str(rec, "reason");
    const char *checks = json_string_value(json_object_get(rnd, "checks"));
    if (reason && !strncmp(reason, "check:", 6))
      fprintf(f, "  checks:     failed - %s%s%s\n", reason, jx_str(rec, "detail") ? ": " : "",
              jx_str(rec, "detail") ? jx_str(rec, "detail") : "");
    else
      fprintf(f, "  checks:     %s\n", checks && !strcmp(checks, "passed") ? "passed" : "not run");
    const json_t *q = json_object_get(rec, "quality");
    if (json_is_object(q)) {
      fprintf(f, "  quality:    %s", json_is_true(json_object_get(q, "pass")) ? "pass" : "FAIL");
      const json_t *issues = json_object_get(q, "issues");
      size_t k;
      json_t *is;
      json_array_foreach(issues, k, is)
          fprintf(f, "%s%s", k ? ", " : " [", json_string_value(is) ? json_string_value(is) : "?");
      if (json_array_size(issues)) fprintf(f, "]");
      if (jx_str(q, "feedback")) fprintf(f, " - %s", jx_str(q, "feedback"));
      fprintf(f, "\n");
    }
  }
  const char *role;
  json_t *arr;
  json_object_foreach(json_object_get(rnd, "samples"), role, arr) {
    const json_t *first = json_array_get(arr, 0);
    fprintf(f, "  %s solver (%s), %zu sample%s:\n", role,
            jx_str(first, "model") ? jx_str(first, "model") : "?", json_array_size(arr),
            json_array_size(arr) == 1 ? "" : "s");
    size_t k;
    json_t *s;
    json_array_foreach(arr, k, s) print_sample(f, s);
  }
  if (last) {
    const json_t *stats = json_object_get(last, "stats");
    if (json_is_object(stats)) {
      fprintf(f, "  stats:     ");
      print_stat(f, " weak mean", stats, "weak_mean");
      fprintf(f, " (n %lld),", jx_int(stats, "n_weak", 0));
      print_stat(f, " strong mean", stats, "strong_mean");
      fprintf(f, " (n %lld),", jx_int(stats, "n_strong", 0));
      print_stat(f, " gap", stats, "gap");
      fprintf(f, "\n");
    }
    const char *reason = jx_str(last, "reason");
    fprintf(f, "  verdict:    %s", jx_str(last, "verdict") ? jx_str(last, "verdict") : "?");
    if (reason) fprintf(f, " - %s", reason);
    if (jx_str(last, "detail")) fprintf(f, ": %s", jx_str(last, "detail"));
    fprintf(f, "\n");
  }
  size_t ncached = 0, nerr = 0;
  json_t *c;
  json_array_foreach(calls, i, c) {
    if (json_is_true(json_object_get(c, "cache_hit"))) ncached++;
    if (jx_str(c, "status") && strcmp(jx_str(c, "status"), "ok")) nerr++;
  }
  fprintf(f, "  calls:      %zu (%zu from the cache, %zu failed)\n", json_array_size(calls),
          ncached, nerr);
  json_array_foreach(calls, i, c) {
    const json_t *msgs = json_object_get(c, "messages");
    if (!json_is_array(msgs)) continue;
    fprintf(f, "  -- prompt of call %lld (%s, sample %lld, %s):\n", jx_int(c, "id", 0),
            jx_str(c, "role") ? jx_str(c, "role") : "?", jx_int(c, "sample", 0) + 1,
            jx_str(c, "model") ? jx_str(c, "model") : "?");
    size_t k;
    json_t *m;
    json_array_foreach(msgs, k, m) {
      fprintf(f, "    [%s] ", jx_str(m, "role") ? jx_str(m, "role") : "?");
      put_block(f, jx_str(m, "content") ? jx_str(m, "content") : "", 6);
    }
  }
}

void report_show_print(const json_t *doc, FILE *f) {
  const json_t *src = json_object_get(doc, "source");
  const char *title = jx_str(src, "title");
  fprintf(f, "source %s%s%s%s: %s, %lld round%s used, %lld accepted (run %lld, recipe %s)\n",
          jx_str(src, "source_id") ? jx_str(src, "source_id") : "?", title ? " \"" : "",
          title ? title : "", title ? "\"" : "", jx_str(src, "state") ? jx_str(src, "state") : "?",
          jx_int(src, "rounds_used", 0), jx_int(src, "rounds_used", 0) == 1 ? "" : "s",
          jx_int(src, "accepted", 0), jx_int(doc, "run", 0),
          jx_str(doc, "recipe_name") ? jx_str(doc, "recipe_name") : "?");
  size_t i;
  json_t *r;
  json_array_foreach(json_object_get(doc, "rounds"), i, r) print_round(f, r);
  const json_t *cn = json_object_get(doc, "counts");
  fprintf(f, "\n%lld round%s, %lld candidate%s, %lld solver sample%s, %lld model call%s\n",
          jx_int(cn, "rounds", 0), jx_int(cn, "rounds", 0) == 1 ? "" : "s",
          jx_int(cn, "candidates", 0), jx_int(cn, "candidates", 0) == 1 ? "" : "s",
          jx_int(cn, "samples", 0), jx_int(cn, "samples", 0) == 1 ? "" : "s",
          jx_int(cn, "calls", 0), jx_int(cn, "calls", 0) == 1 ? "" : "s");
}

void report_show_print_sources(const json_t *doc, FILE *f) {
  const json_t *list = json_object_get(doc, "sources");
  fprintf(f, "run %lld: %zu source%s (autodata show STORE --source ID for one)\n",
          jx_int(doc, "run", 0), json_array_size(list), json_array_size(list) == 1 ? "" : "s");
  fprintf(f, "%-24s %-12s %6s %8s  %s\n", "source", "state", "rounds", "accepted", "title");
  size_t i;
  json_t *s;
  json_array_foreach(list, i, s) {
    fprintf(f, "%-24s %-12s %6lld %8lld  %s\n",
            jx_str(s, "source_id") ? jx_str(s, "source_id") : "?",
            jx_str(s, "state") ? jx_str(s, "state") : "?", jx_int(s, "rounds_used", 0),
            jx_int(s, "accepted", 0), jx_str(s, "title") ? jx_str(s, "title") : "");
  }
}
