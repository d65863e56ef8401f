/* judge_batch.c - the sim judge's batched mode (see judge_batch.h). */
#include "sim/judge_batch.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "util/err.h"
#include "util/jsonx.h"

/* "RESPONSE k:" at the start of a line in text: the heading's start, or NULL. */
static const char *heading(const char *text, int k, size_t *hlen) {
  char h[32];
  int n = snprintf(h, sizeof h, "RESPONSE %d:", k);
  for (const char *p = text; (p = strstr(p, h)) != NULL; p += n) {
    if (p == text || p[-1] == '\n') {
      *hlen = (size_t)n;
      return p;
    }
  }
  return NULL;
}

int sim_judge_is_batch(const char *text) {
  size_t n;
  return text && heading(text, 1, &n) != NULL;
}

int sim_judge_batch(const char *text, sim_judge_one_fn one, void *ctx, struct buf *out) {
  size_t hl;
  const char *first = heading(text, 1, &hl);
  if (!first) return AD_EINVAL;
  json_t *answers = json_array();
  struct buf single = BUF_INIT, reply = BUF_INIT;
  buf_init(&single, AD_MAX_REQUEST);
  buf_init(&reply, AD_MAX_RESPONSE);
  int rc = 0;
  const char *p = first;
  for (int k = 1; p && k <= SIM_BATCH_MAX && !rc; k++) {
    size_t nl = 0;
    const char *body = p + hl;
    const char *next = heading(body, k + 1, &nl);
    const char *end = next ? next : body + strlen(body);
    buf_reset(&single);
    buf_reset(&reply);
    rc = buf_append(&single, text, (size_t)(first - text));
    if (!rc) rc = buf_puts(&single, "RESPONSE:");
    if (!rc) rc = buf_append(&single, body, (size_t)(end - body));
    if (!rc) rc = one(ctx, single.data, &reply);
    json_t *o = rc ? NULL : json_loads(reply.data, 0, NULL);
    if (!rc && !json_is_object(o)) rc = AD_EINTERNAL;
    if (!rc) {
      json_t *item = json_pack("{s:i}", "answer", k);
      json_object_update(item, o);
      json_array_append_new(answers, item);
    }
    json_decref(o);
    p = next;
    hl = nl;
  }
  json_t *root = json_pack("{s:o}", "answers", answers);
  if (!rc) rc = jx_dump_buf(root, out, JSON_PRESERVE_ORDER);
  json_decref(root);
  buf_release(&single);
  buf_release(&reply);
  return rc;
}
