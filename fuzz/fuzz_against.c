/* fuzz_against.c - libFuzzer target for an_against_parse() (the --against reference files of
 * `autodata analyze`: JSONL or text) and the n-gram index built from what it reads.
 *
 *   make fuzz   (or: make build/fuzz/fuzz_against && build/fuzz/fuzz_against fuzz/corpus/fuzz_against)
 *
 * Properties checked: no crash, no leak, no hang; every item's text lies within the input
 * (text files) or is a NUL-free-length string (JSONL); line numbers increase; on failure
 * the error names the file and a line ("f.jsonl:N: ..."); scanning the input against the
 * index of its own items never finds more n-grams than it has. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "analyze/analyze.h"

struct st {
  const char *data;
  size_t size;
  int last_line;
  struct an_index ix;
  uint32_t n;
};

static int on_item(void *ud, int line, const char *text, size_t len) {
  struct st *s = ud;
  if (line <= s->last_line) abort();
  s->last_line = line;
  if (len && !text) abort();
  an_index_add(&s->ix, text, len, s->n++);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const fields[] = {"question", "text"};
  for (int mode = 0; mode < 2; mode++) {
    struct st s = {(const char *)data, size, 0, {0}, 0};
    an_index_init(&s.ix, mode ? 2 : 13);
    char err[256];
    memset(err, 'x', sizeof err);
    int rc = an_against_parse((const char *)data, size, "f.jsonl", fields, (size_t)mode * 2,
                              on_item, &s, err, sizeof err);
    if (rc) {
      if (rc != AD_EINVAL || strncmp(err, "f.jsonl:", 8) || strnlen(err, sizeof err) == sizeof err)
        abort();
    } else {
      struct an_words w = {0};
      an_words_split(&w, (const char *)data, size);
      size_t grams = w.n >= (size_t)s.ix.n ? w.n - (size_t)s.ix.n + 1 : 0;
      an_words_release(&w);
      if (an_index_scan(&s.ix, (const char *)data, size, NULL, NULL) > grams) abort();
    }
    an_index_release(&s.ix);
  }
  return 0;
}
