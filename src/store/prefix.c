/* prefix.c - the prefix share of a run's prompts (see prefix.h). */
#include "store/prefix.h"

#include <stdlib.h>
#include <string.h>

#include "util/hash.h"
#include "util/mem.h"

#define SLOTS_SOURCE 1024 /* last request per (endpoint, model, source) */
#define SLOTS_MODEL 64    /* last request per (endpoint, model) */

struct slot {
  uint64_t key; /* 0: empty */
  char *text;
  size_t len;
};

struct store_prefix {
  struct slot source[SLOTS_SOURCE];
  struct slot model[SLOTS_MODEL];
};

struct store_prefix *store_prefix_new(void) {
  return xcalloc(1, sizeof(struct store_prefix));
}

void store_prefix_free(struct store_prefix *p) {
  if (!p) return;
  for (int i = 0; i < SLOTS_SOURCE; i++) free(p->source[i].text);
  for (int i = 0; i < SLOTS_MODEL; i++) free(p->model[i].text);
  free(p);
}

int store_prefix_messages(const char *body, size_t n, size_t *off, size_t *len) {
  static const char key[] = "\"messages\":";
  if (!body) return -1;
  const char *b = body, *e = body + n;
  const char *k = NULL;
  /* the key outside any string: canonical bodies start with the top-level keys, so the
   * first occurrence that is followed by '[' is it unless a string before it holds one */
  int in_str = 0, depth = 0;
  for (const char *p = b; p < e; p++) {
    if (in_str) {
      if (*p == '\\') p++;
      else if (*p == '"') in_str = 0;
      continue;
    }
    if (*p == '{' || *p == '[') depth++;
    else if (*p == '}' || *p == ']') depth--;
    else if (*p == '"') {
      if (depth == 1 && (size_t)(e - p) >= sizeof key - 1 && !memcmp(p, key, sizeof key - 1)) {
        k = p + sizeof key - 1;
        break;
      }
      in_str = 1;
    }
  }
  if (!k || k >= e || *k != '[') return -1;
  in_str = 0;
  depth = 0;
  for (const char *p = k; p < e; p++) {
    if (in_str) {
      if (*p == '\\') p++;
      else if (*p == '"') in_str = 0;
      continue;
    }
    if (*p == '"') in_str = 1;
    else if (*p == '[' || *p == '{') depth++;
    else if ((*p == ']' || *p == '}') && --depth == 0) {
      *off = (size_t)(k - b);
      *len = (size_t)(p + 1 - k);
      return 0;
    }
  }
  return -1;
}

static size_t common(const char *a, size_t na, const char *b, size_t nb) {
  size_t n = na < nb ? na : nb, i = 0;
  while (i < n && a[i] == b[i]) i++;
  return i;
}

static uint64_t key_of(const char *endpoint, const char *model, const char *source_id) {
  char buf[1024];
  size_t n = 0;
  const char *parts[3] = {endpoint ? endpoint : "", model ? model : "", source_id};
  for (int i = 0; i < 3 && parts[i]; i++) {
    size_t l = strlen(parts[i]);
    if (l > sizeof buf - n - 1) l = sizeof buf - n - 1;
    memcpy(buf + n, parts[i], l);
    n += l;
    buf[n++] = 0;
    if (n >= sizeof buf - 1) break;
  }
  uint64_t h = hash64(buf, n);
  return h ? h : 1;
}

/* Common prefix with slot s (when it holds key), then s holds this request. */
static size_t use_slot(struct slot *s, uint64_t key, const char *m, size_t n) {
  size_t l = s->key == key ? common(s->text, s->len, m, n) : 0;
  s->key = key;
  s->text = xrealloc(s->text, n + 1);
  memcpy(s->text, m, n);
  s->text[n] = 0;
  s->len = n;
  return l;
}

int64_t store_prefix_tokens(struct store_prefix *p, const char *endpoint, const char *model,
                            const char *source_id, const char *request, size_t request_len,
                            int64_t prompt_tokens) {
  size_t off, n;
  if (!p || !request) return 0;
  if (!request_len) request_len = strlen(request);
  if (store_prefix_messages(request, request_len, &off, &n) || n == 0) return 0;
  const char *m = request + off;
  uint64_t km = key_of(endpoint, model, NULL);
  size_t l = use_slot(&p->model[km % SLOTS_MODEL], km, m, n);
  if (source_id) {
    uint64_t ks = key_of(endpoint, model, source_id);
    size_t ls = use_slot(&p->source[ks % SLOTS_SOURCE], ks, m, n);
    if (ls > l) l = ls;
  }
  if (prompt_tokens <= 0) return 0;
  return (int64_t)((double)prompt_tokens * (double)l / (double)n + 0.5);
}
