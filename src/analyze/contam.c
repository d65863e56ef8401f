/* contam.c - contamination: the normalised n-grams (13 words by default, as in the GPT-3
 * report) of reference items in one index, and the scan of a text against it. */
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"
#include "util/mem.h"

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

/* Index and scan handle the n-grams in blocks: the block's hashes first, each slot prefetched,
 * then the inserts or lookups, so the cache misses of a large index overlap instead of
 * queueing one after the other. */
#define SCAN_BLOCK 32

static void prefetch(const void *p) {
#if defined(__GNUC__)
  __builtin_prefetch(p);
#else
  (void)p;
#endif
}

static uint64_t filter_bits(uint64_t g) { return 1ull << (g & 63) | 1ull << (g >> 6 & 63); }
static uint64_t *filter_word(const struct an_index *ix, uint64_t g) {
  return &ix->filter[(g >> 32) & ix->filter_mask];
}

/* Resize the filter to ~16 bits per gram and refill it from the set. */
static void filter_rebuild(struct an_index *ix) {
  size_t words = 64;
  while (words * 4 < ix->grams.n) words *= 2;
  free(ix->filter);
  ix->filter = xcalloc(words, sizeof *ix->filter);
  ix->filter_mask = words - 1;
  size_t pos = 0;
  uint64_t g;
  while (an_set_next(&ix->grams, &pos, &g)) *filter_word(ix, g) |= filter_bits(g);
}

size_t an_index_add(struct an_index *ix, const char *text, size_t len, uint32_t item) {
  struct an_words w = {0};
  an_words_split(&w, text, len);
  size_t k = (size_t)ix->n, count = 0;
  struct roll r;
  roll_init(&r, &w, k);
  uint64_t g[SCAN_BLOCK];
  for (size_t i0 = 0; i0 + k <= w.n; i0 += SCAN_BLOCK) {
    size_t m = w.n - k + 1 - i0 < SCAN_BLOCK ? w.n - k + 1 - i0 : SCAN_BLOCK;
    for (size_t j = 0; j < m; j++) {
      g[j] = roll_next(&r, &w, i0 + j);
      an_set_prefetch(&ix->grams, g[j]);
    }
    for (size_t j = 0; j < m; j++, count++) {
      if (!an_set_add(&ix->grams, g[j], item)) continue;
      if (!ix->filter || ix->grams.n > 4 * (ix->filter_mask + 1)) filter_rebuild(ix);
      else *filter_word(ix, g[j]) |= filter_bits(g[j]);
    }
  }
  an_words_release(&w);
  ix->items++;
  return count;
}

void an_index_release(struct an_index *ix) {
  an_set_release(&ix->grams);
  free(ix->filter);
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
  uint64_t g[SCAN_BLOCK];
  size_t at[SCAN_BLOCK];
  int stop = 0;
  for (size_t i0 = 0; !stop && i0 + k <= w.n; i0 += SCAN_BLOCK) {
    size_t m = w.n - k + 1 - i0 < SCAN_BLOCK ? w.n - k + 1 - i0 : SCAN_BLOCK, c = 0;
    for (size_t j = 0; j < m; j++) {
      g[j] = roll_next(&r, &w, i0 + j);
      prefetch(filter_word(ix, g[j]));
    }
    for (size_t j = 0; j < m; j++) { /* the filter's survivors, their slots prefetched */
      uint64_t bits = filter_bits(g[j]);
      if ((*filter_word(ix, g[j]) & bits) != bits) continue;
      an_set_prefetch(&ix->grams, g[j]);
      g[c] = g[j];
      at[c++] = i0 + j;
    }
    for (size_t j = 0; j < c; j++) {
      uint32_t item;
      if (!an_set_get(&ix->grams, g[j], &item)) continue;
      hits++;
      if (fn && fn(ud, &w, at[j], item)) {
        stop = 1;
        break;
      }
    }
  }
  an_words_release(&w);
  return hits;
}
