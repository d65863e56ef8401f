/* fuzz_reward.c - libFuzzer target for grade_reward_parse() (the reward server's request
 * bodies; the first byte picks the protocol): any bytes must give 0 with 1..max items,
 * each with a response, or AD_EPARSE / AD_EINVAL with a one-line, NUL-terminated message,
 * and never crash, leak or read out of bounds. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "grade/grade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  enum grade_reward_kind kind = data[0] & 1 ? GRADE_RW_PLAIN : GRADE_RW_OPENRLHF;
  struct grade_reward_req r;
  char err[256];
  memset(err, 'x', sizeof err);
  int rc = grade_reward_parse(kind, (const char *)data + 1, size - 1, &r, err, sizeof err);
  if (rc != 0 && rc != AD_EPARSE && rc != AD_EINVAL) abort();
  if (rc) {
    if (!memchr(err, 0, sizeof err) || strchr(err, '\n') || r.root || r.items) abort();
    return 0;
  }
  if (!r.n || r.n > GRADE_REWARD_MAX_ITEMS || !r.items) abort();
  for (size_t i = 0; i < r.n; i++) {
    if (!r.items[i].response) abort();
    (void)strlen(r.items[i].response);
    if (!r.items[i].id && !r.items[i].prompt) abort();
  }
  grade_reward_req_release(&r);
  return 0;
}
