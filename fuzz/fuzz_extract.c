/* fuzz_extract.c - libFuzzer target for extract_json() / extract_skip_think().
 *
 *   clang -std=c17 -D_GNU_SOURCE -Isrc -fsanitize=fuzzer,address,undefined \
 *     fuzz/fuzz_extract.c src/eval/extract.c src/util/\*.c -ljansson -lxxhash -lm
 *   ./a.out -max_total_time=60 fuzz/corpus/fuzz_extract
 *
 * Properties checked: no crash, no leak, no hang; a returned value is an object
 * (or an array with EXTRACT_ALLOW_ARRAY); on failure the error is a non-empty
 * NUL-terminated string; the keyed result has the keys whenever any object has
 * them at the top level (weak check: the result is an object). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eval/extract.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char *const keys[] = {"question", "rubric", NULL};
  char err[200];
  const char *t = (const char *)data;
  for (int mode = 0; mode < 3; mode++) {
    memset(err, 'x', sizeof err);
    json_t *v = extract_json(t, size, mode == 1 ? keys : NULL, mode == 2 ? EXTRACT_ALLOW_ARRAY : 0,
                             err, sizeof err);
    if (v) {
      if (mode != 2 && !json_is_object(v)) abort();
      if (mode == 2 && !json_is_object(v) && !json_is_array(v)) abort();
      json_decref(v);
    } else {
      size_t n = strnlen(err, sizeof err);
      if (n == 0 || n == sizeof err) abort();
    }
  }
  size_t rest;
  const char *r = extract_skip_think(t, size, &rest);
  if (rest > size || (rest > 0 && (r < t || r + rest != t + size))) abort();
  return 0;
}
