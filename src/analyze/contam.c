/* contam.c - contamination: the normalised n-grams (13 words by default, as in the GPT-3
 * report) of reference items in one index, and the scan of a text against it. */
#include <string.h>

#include "analyze/analyze.h"

/* The n-gram hashes of w in one pass: a polynomial rolling hash of the word hashes,
 * H(i) = sum_j h[i+j] * B^(k-1-j) mod 2^64 (B odd), finished with a 64-bit mixer. The index
 * and the scan use the same function, so only their agreement matters. */
#define ROLL_B 0x100000001b3ull
static uint64_t mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

struct roll {
  uint64_t h, top; /* top = B^(k-1) */
  size_t k;
};
static void roll_init(struct roll *r, const struct an_words *w, size_t k) {
  r->k = k;
  r->h = 0;
  r->top = 1;
  for (size_t j = 0; j + 1 < k; j++) r->top *= ROLL_B;
  for (size_t j = 0; j < k && j < w->n; j++) r->h = r->h * ROLL_B + w->h[j];
}
/* The hash of the gram at i; then step to i + 1. */
static uint64_t roll_next(struct roll *r, const struct an_words *w, size_t i) {
  uint64_t out = mix(r->h);
  if (i + r->k < w->n) r->h = (r->h - w->h[i] * r->top) * ROLL_B + w->h[i + r->k];
  return out;
}

void an_index_init(struct an_index *ix, int n) {
  memset(ix, 0, sizeof *ix);
  ix->n = n > 0 ? n : AN_NGRAM_DEFAULT;
}

size_t an_index_add(struct an_index *ix, const char *text, size_t len, uint32_t item) {
  struct an_words w = {0};
  an_words_split(&w, text, len);
  size_t k = (size_t)ix->n, count = 0;
  struct roll r;
  roll_init(&r, &w, k);
  for (size_t i = 0; i + k <= w.n; i++, count++) an_set_add(&ix->grams, roll_next(&r, &w, i), item);
  an_words_release(&w);
  ix->items++;
  return count;
}

void an_index_release(struct an_index *ix) {
  an_set_release(&ix->grams);
  memset(ix, 0, sizeof *ix);
}

size_t an_index_scan(const struct an_index *ix, const char *text, size_t len, an_match_fn fn,
                     void *ud) {
  if (!ix->grams.n) return 0;
  struct an_words w = {0};
  an_words_split(&w, text, len);
  size_t k = (size_t)ix->n, hits = 0;
  struct roll r;
  roll_init(&r, &w, k);
  for (size_t i = 0; i + k <= w.n; i++) {
    uint32_t item;
    if (!an_set_get(&ix->grams, roll_next(&r, &w, i), &item)) continue;
    hits++;
    if (fn && fn(ud, &w, i, item)) break;
  }
  an_words_release(&w);
  return hits;
}
