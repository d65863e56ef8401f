/* text.c - the one text normalisation of the analysis (words: lowercased ASCII letters and
 * digits, or runs of bytes >= 0x80), n-gram hashes, and a small open-addressing set. */
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/hash.h"
#include "util/mem.h"

static int word_byte(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c >= 0x80;
}

void an_words_split(struct an_words *w, const char *text, size_t n) {
  char tmp[256];
  size_t i = 0;
  while (i < n) {
    while (i < n && !word_byte((unsigned char)text[i])) i++;
    if (i >= n) break;
    size_t s = i;
    while (i < n && word_byte((unsigned char)text[i])) i++;
    if (w->n == w->cap) {
      w->cap = w->cap ? 2 * w->cap : 64;
      w->h = xrealloc(w->h, w->cap * sizeof *w->h);
      w->off = xrealloc(w->off, w->cap * sizeof *w->off);
      w->len = xrealloc(w->len, w->cap * sizeof *w->len);
    }
    /* Lowercase in chunks: a word longer than tmp is hashed chunk by chunk. */
    uint64_t h = 0x9e3779b97f4a7c15ull;
    for (size_t p = s; p < i; p += sizeof tmp) {
      size_t m = i - p < sizeof tmp ? i - p : sizeof tmp;
      for (size_t k = 0; k < m; k++) {
        unsigned char c = (unsigned char)text[p + k];
        tmp[k] = (char)(c >= 'A' && c <= 'Z' ? c + 32 : c);
      }
      h = hash64_seed(tmp, m, h);
    }
    w->h[w->n] = h;
    w->off[w->n] = (uint32_t)s;
    w->len[w->n] = (uint32_t)(i - s);
    w->n++;
  }
}

void an_words_release(struct an_words *w) {
  free(w->h);
  free(w->off);
  free(w->len);
  memset(w, 0, sizeof *w);
}

uint64_t an_gram_hash(const struct an_words *w, size_t i, size_t k) {
  return hash64(w->h + i, k * sizeof *w->h);
}

static size_t slot_of(uint64_t key, size_t cap) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdull;
  key ^= key >> 33;
  return (size_t)key & (cap - 1);
}

static void set_grow(struct an_set *s) {
  struct an_set t = {0, s->cap ? 2 * s->cap : 64, NULL, NULL, NULL};
  t.keys = xmalloc(t.cap * sizeof *t.keys);
  t.vals = xmalloc(t.cap * sizeof *t.vals);
  t.used = xcalloc(t.cap, 1);
  for (size_t i = 0; i < s->cap; i++)
    if (s->used[i]) an_set_add(&t, s->keys[i], s->vals[i]);
  an_set_release(s);
  *s = t;
}

int an_set_add(struct an_set *s, uint64_t key, uint32_t val) {
  if (2 * (s->n + 1) > s->cap) set_grow(s);
  size_t i = slot_of(key, s->cap);
  while (s->used[i]) {
    if (s->keys[i] == key) return 0;
    i = (i + 1) & (s->cap - 1);
  }
  s->used[i] = 1;
  s->keys[i] = key;
  s->vals[i] = val;
  s->n++;
  return 1;
}

int an_set_get(const struct an_set *s, uint64_t key, uint32_t *val) {
  if (!s->cap) return 0;
  size_t i = slot_of(key, s->cap);
  while (s->used[i]) {
    if (s->keys[i] == key) {
      if (val) *val = s->vals[i];
      return 1;
    }
    i = (i + 1) & (s->cap - 1);
  }
  return 0;
}

void an_set_release(struct an_set *s) {
  free(s->keys);
  free(s->vals);
  free(s->used);
  memset(s, 0, sizeof *s);
}
