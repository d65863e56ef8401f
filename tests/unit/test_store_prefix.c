/* test_store_prefix.c - the prefix share (store/prefix.h): the messages span of a request
 * body, and the prefix tokens against the previous request of the same source or model. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "store/prefix.h"

Test(store_prefix, messages_span) {
  const char *b =
      "{\"max_tokens\":5,\"messages\":[{\"content\":\"a]\\\"}\",\"role\":\"user\"}],"
      "\"model\":\"m\"}";
  size_t off = 0, len = 0;
  cr_assert_eq(store_prefix_messages(b, strlen(b), &off, &len), 0);
  cr_assert_eq(strncmp(b + off, "[{\"content\":\"a]\\\"}\",\"role\":\"user\"}]", len), 0);
  cr_assert_eq(b[off + len], ',');
  const char *v = "{\"model\":\"\\\"messages\\\":[\",\"x\":1}"; /* only inside a string */
  cr_assert_eq(store_prefix_messages(v, strlen(v), &off, &len), -1);
  const char *cut = "{\"messages\":[{\"content\":\"abc";
  cr_assert_eq(store_prefix_messages(cut, strlen(cut), &off, &len), -1);
}

static char *body(const char *sys, const char *user) {
  static char b[4][512];
  static int k;
  char *o = b[k++ % 4];
  snprintf(o, 512,
           "{\"messages\":[{\"content\":\"%s\",\"role\":\"system\"},{\"content\":\"%s\","
           "\"role\":\"user\"}],\"model\":\"m\",\"seed\":1}",
           sys, user);
  return o;
}

Test(store_prefix, shares_with_the_same_source_or_the_same_model) {
  struct store_prefix *p = store_prefix_new();
  const char *r1 = body("SYSTEM PROMPT", "SOURCE ONE round 1");
  cr_assert_eq(store_prefix_tokens(p, "e", "m", "s1", r1, 0, 100), 0, "nothing before it");
  /* the same source, next round: everything up to the round number is shared */
  const char *r2 = body("SYSTEM PROMPT", "SOURCE ONE round 2");
  size_t off, len;
  cr_assert_eq(store_prefix_messages(r2, strlen(r2), &off, &len), 0);
  size_t common = (size_t)(strstr(r2, "2\"") - (r2 + off));
  int64_t want = (int64_t)(100.0 * (double)common / (double)len + 0.5);
  cr_assert_eq(store_prefix_tokens(p, "e", "m", "s1", r2, 0, 100), want);
  /* another source shares the system prompt with the model's previous request */
  const char *r3 = body("SYSTEM PROMPT", "ANOTHER SOURCE");
  int64_t t3 = store_prefix_tokens(p, "e", "m", "s2", r3, 0, 100);
  cr_assert(t3 > 0 && t3 < want);
  /* another model or endpoint shares nothing */
  cr_assert_eq(store_prefix_tokens(p, "e", "m2", "s1", r2, 0, 100), 0);
  cr_assert_eq(store_prefix_tokens(p, "e2", "m", "s1", r2, 0, 100), 0);
  /* the same request again: all of it */
  cr_assert_eq(store_prefix_tokens(p, "e2", "m", "s1", r2, 0, 100), 100);
  cr_assert_eq(store_prefix_tokens(p, "e2", "m", "s1", NULL, 0, 100), 0);
  store_prefix_free(p);
}
