/* contam.c - contamination: the normalised n-grams (13 words by default, as in the GPT-3
 * report) of reference items in one index, and the scan of a text against it. */
#include <string.h>

#include "analyze/analyze.h"

void an_index_init(struct an_index *ix, int n) {
  memset(ix, 0, sizeof *ix);
  ix->n = n > 0 ? n : AN_NGRAM_DEFAULT;
}

size_t an_index_add(struct an_index *ix, const char *text, size_t len, uint32_t item) {
  struct an_words w = {0};
  an_words_split(&w, text, len);
  size_t k = (size_t)ix->n, count = 0;
  for (size_t i = 0; i + k <= w.n; i++, count++)
    an_set_add(&ix->grams, an_gram_hash(&w, i, k), item);
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
  for (size_t i = 0; i + k <= w.n; i++) {
    uint32_t item;
    if (!an_set_get(&ix->grams, an_gram_hash(&w, i, k), &item)) continue;
    hits++;
    if (fn && fn(ud, &w, i, item)) break;
  }
  an_words_release(&w);
  return hits;
}
