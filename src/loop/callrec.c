/* callrec.c - recording model calls in the store (callrec.h). */
#include "loop/callrec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/jsonx.h"
#include "util/mem.h"

void callrec_begin(struct callrec *r, const char *endpoint, const json_t *body) {
  memset(r, 0, sizeof *r);
  r->canon = jx_dump_canonical(body);
  if (!r->canon) { /* jansson allocates through xmalloc: only a value it cannot encode */
    fprintf(stderr, "autodata: internal error: a request body could not be serialised\n");
    abort();
  }
  r->canon_len = strlen(r->canon);
  store_cache_key_text(endpoint, r->canon, r->canon_len, r->key);
}

void callrec_attempt(struct callrec *r, const struct llm_attempt *a) {
  if (r->n_attempts >= CALLREC_MAX_ATTEMPTS) return;
  int i = r->n_attempts++;
  r->attempt_err[i] = xstrdup(a->error);
  r->attempts[i].number = a->number;
  r->attempts[i].http_status = a->http_status;
  r->attempts[i].error = r->attempt_err[i];
  r->attempts[i].latency_us = a->latency_us;
  r->attempts[i].retry_after_ms = a->retry ? a->retry_after_ms : 0;
}

void callrec_outcome(struct store_call *sc, const struct llm_result *res) {
  sc->reply = res->body;
  sc->reply_len = res->body_len;
  sc->error = res->rc ? (res->error ? res->error : ad_strerror(res->rc)) : NULL;
  sc->http_status = res->http_status;
  if (res->rc == 0 && res->reply) {
    sc->prompt_tokens = res->reply->prompt_tokens;
    sc->completion_tokens = res->reply->completion_tokens;
    sc->finish_reason = res->reply->finish_reason;
  }
  sc->latency_us = res->latency_us;
  sc->attempts = res->attempts;
  sc->retries = res->attempts > 0 ? res->attempts - 1 : 0;
}

int callrec_put(store *st, store_id run, const struct callrec *r, const struct callrec_id *id,
                const struct llm_result *res) {
  struct store_call sc;
  memset(&sc, 0, sizeof sc);
  sc.run = run;
  sc.role = id->role;
  sc.source_id = id->source_id;
  sc.round = id->round;
  sc.endpoint = id->endpoint;
  sc.model = id->model;
  sc.cache_key = r->key;
  if (res) {
    sc.request = r->canon;
    sc.request_len = r->canon_len;
    callrec_outcome(&sc, res);
  } else {
    sc.cache_hit = 1;
  }
  sc.attempt_list = r->attempts;
  sc.n_attempt_list = r->n_attempts;
  return store_call_put(st, &sc);
}

void callrec_release(struct callrec *r) {
  free(r->canon);
  r->canon = NULL;
  for (int i = 0; i < r->n_attempts; i++) free(r->attempt_err[i]);
  r->n_attempts = 0;
}
