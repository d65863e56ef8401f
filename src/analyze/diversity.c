/* diversity.c - the entropy of a distribution and distinct-n over a set of texts. */
#include <math.h>
#include <string.h>

#include "analyze/analyze.h"

double an_entropy(const size_t *counts, size_t k) {
  double total = 0, h = 0;
  for (size_t i = 0; i < k; i++) total += (double)counts[i];
  if (total <= 0) return 0;
  for (size_t i = 0; i < k; i++) {
    if (!counts[i]) continue;
    double p = (double)counts[i] / total;
    h -= p * log2(p);
  }
  return h;
}

void an_distinct_add(struct an_distinct *d, const char *text, size_t len) {
  struct an_words w = {0};
  an_words_split(&w, text, len);
  for (size_t n = 1; n <= 3; n++)
    for (size_t i = 0; i + n <= w.n; i++) {
      an_set_add(&d->seen[n - 1], an_gram_hash(&w, i, n), 0);
      d->total[n - 1]++;
    }
  an_words_release(&w);
}

double an_distinct_value(const struct an_distinct *d, int n) {
  if (n < 1 || n > 3 || !d->total[n - 1]) return 0;
  return (double)d->seen[n - 1].n / (double)d->total[n - 1];
}

void an_distinct_release(struct an_distinct *d) {
  for (int i = 0; i < 3; i++) an_set_release(&d->seen[i]);
  memset(d, 0, sizeof *d);
}
