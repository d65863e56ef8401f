/* text.c - the one text normalisation of the analysis (words: lowercased ASCII letters and
 * digits, or runs of bytes >= 0x80), n-gram hashes, and a small open-addressing set. */
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/hash.h"
#include "util/mem.h"

/* Words are hashed with hash64_seed's function (XXH3), compiled into this file so the short-
 * input paths are specialised here instead of going through a call per word. */
#define XXH_INLINE_ALL
#include <xxhash.h>

/* Per byte: 0 for a separator, else the byte lowercased (ASCII letters) or as it is. */
#define WM(c)                                                                                      \
  ((unsigned char)((c) >= 'A' && (c) <= 'Z' ? (c) + 32                                             \
                   : ((c) >= 'a' && (c) <= 'z') || ((c) >= '0' && (c) <= '9') || (c) >= 0x80 ? (c) \
                                                                                             : 0))
#define WM4(c) WM(c), WM((c) + 1), WM((c) + 2), WM((c) + 3)
#define WM16(c) WM4(c), WM4((c) + 4), WM4((c) + 8), WM4((c) + 12)
#define WM64(c) WM16(c), WM16((c) + 16), WM16((c) + 32), WM16((c) + 48)
static const unsigned char word_map[256] = {WM64(0), WM64(64), WM64(128), WM64(192)};

static void words_grow(struct an_words *w, size_t need) {
  if (need <= w->cap) return;
  size_t cap = w->cap ? 2 * w->cap : 64;
  while (cap < need) cap *= 2;
  w->cap = cap;
  w->h = xrealloc(w->h, cap * sizeof *w->h);
  w->off = xrealloc(w->off, cap * sizeof *w->off);
  w->len = xrealloc(w->len, cap * sizeof *w->len);
}

#define WORD_SEED 0x9e3779b97f4a7c15ull

/* The hash of a word of text[s..e): XXH3 of its lowercased bytes, 256 at a time (a longer
 * word is hashed chunk by chunk, each chunk seeded with the previous chunk's hash). A word
 * without upper case is hashed where it stands. */
static uint64_t word_hash(const unsigned char *t, size_t s, size_t e, int upper) {
  if (!upper && e - s <= 256) return XXH3_64bits_withSeed(t + s, e - s, WORD_SEED);
  char tmp[256];
  uint64_t h = WORD_SEED;
  for (size_t p = s; p < e; p += sizeof tmp) {
    size_t m = e - p < sizeof tmp ? e - p : sizeof tmp;
    for (size_t k = 0; k < m; k++) tmp[k] = (char)word_map[t[p + k]];
    h = XXH3_64bits_withSeed(tmp, m, h);
  }
  return h;
}

void an_words_split(struct an_words *w, const char *text, size_t n) {
  const unsigned char *t = (const unsigned char *)text;
  size_t i = 0;
  while (i < n) {
    while (i < n && !word_map[t[i]]) i++;
    if (i >= n) break;
    size_t s = i;
    int upper = 0;
    for (; i < n && word_map[t[i]]; i++) upper |= word_map[t[i]] != t[i];
    words_grow(w, w->n + 1);
    w->h[w->n] = word_hash(t, s, i, upper);
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
  struct an_set t = {0, s->cap ? 2 * s->cap : 64, NULL, NULL, 0, 0};
  t.keys = xcalloc(t.cap, sizeof *t.keys);
  if (s->vals) t.vals = xcalloc(t.cap, sizeof *t.vals);
  for (size_t i = 0; i < s->cap; i++)
    if (s->keys[i]) an_set_add(&t, s->keys[i], s->vals ? s->vals[i] : 0);
  t.has_zero = s->has_zero;
  t.zero_val = s->zero_val;
  t.n += t.has_zero;
  an_set_release(s);
  *s = t;
}

int an_set_add(struct an_set *s, uint64_t key, uint32_t val) {
  if (!key) {
    if (s->has_zero) return 0;
    s->has_zero = 1;
    s->zero_val = val;
    s->n++;
    return 1;
  }
  if (2 * (s->n + 1) > s->cap) set_grow(s);
  size_t i = slot_of(key, s->cap);
  while (s->keys[i]) {
    if (s->keys[i] == key) return 0;
    i = (i + 1) & (s->cap - 1);
  }
  if (val && !s->vals) s->vals = xcalloc(s->cap, sizeof *s->vals);
  s->keys[i] = key;
  if (s->vals) s->vals[i] = val;
  s->n++;
  return 1;
}

int an_set_get(const struct an_set *s, uint64_t key, uint32_t *val) {
  if (!key) {
    if (s->has_zero && val) *val = s->zero_val;
    return s->has_zero;
  }
  if (!s->cap) return 0;
  size_t i = slot_of(key, s->cap);
  while (s->keys[i]) {
    if (s->keys[i] == key) {
      if (val) *val = s->vals ? s->vals[i] : 0;
      return 1;
    }
    i = (i + 1) & (s->cap - 1);
  }
  return 0;
}

int an_set_next(const struct an_set *s, size_t *pos, uint64_t *key) {
  if (*pos == 0) { /* position 0 is key 0; slot i is position i + 1 */
    *pos = 1;
    if (s->has_zero) {
      *key = 0;
      return 1;
    }
  }
  while (*pos <= s->cap) {
    uint64_t k = s->keys[*pos - 1];
    (*pos)++;
    if (k) {
      *key = k;
      return 1;
    }
  }
  return 0;
}

void an_set_prefetch(const struct an_set *s, uint64_t key) {
#if defined(__GNUC__)
  if (s->cap) __builtin_prefetch(&s->keys[slot_of(key, s->cap)]);
#else
  (void)s;
  (void)key;
#endif
}

void an_set_release(struct an_set *s) {
  free(s->keys);
  free(s->vals);
  memset(s, 0, sizeof *s);
}
