/* test_bodyref.c - the compact store's references (store/bodyref.h): generations that join
 * several bodies at once, and the reader that rebuilds a reference's content from them. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "store/bodyref.h"
#include "util/buf.h"
#include "util/err.h"

/* A fake store: generation i (id i + 1) as the writer gave it. */
struct gens {
  struct bodyref_gen g[8];
  int n;
  int fetches;
};

static int fetch(void *ud, int64_t id, int64_t *base, const void **z, size_t *zn) {
  struct gens *s = ud;
  s->fetches++;
  if (id < 1 || id > s->n) return AD_ENOTFOUND;
  *base = s->g[id - 1].base;
  *z = s->g[id - 1].data;
  *zn = s->g[id - 1].n;
  return 0;
}

/* n bytes of text that does not compress to nothing: words from a small generator */
static char *text(unsigned seed, size_t n) {
  char *t = malloc(n + 1);
  for (size_t i = 0; i < n; i++) {
    seed = seed * 1103515245u + 12345u;
    t[i] = (i % 7 == 6) ? ' ' : (char)('a' + (seed >> 16) % 26);
  }
  t[n] = 0;
  return t;
}

static void grow(struct bodyrefs *t, struct gens *s, int n, const struct bodyref_part *p,
                 int want) {
  struct bodyref_gen g;
  cr_assert_eq(bodyrefs_grow_n(t, 1, "src", n, p, &g), want);
  if (want == 1) {
    cr_assert_eq(g.id, s->n + 1);
    s->g[s->n++] = g;
  }
}

Test(bodyref, parts_of_new_kinds_join_as_one_generation_and_read_back) {
  char *a = text(1, 3000), *b = text(2, 2000), *c = text(3, 1500), *d = text(4, 900);
  struct gens s = {0};
  struct bodyrefs *t = bodyrefs_new(1);
  struct bodyref_part p1[2] = {{"q", a, strlen(a)}, {"a/1", b, strlen(b)}};
  grow(t, &s, 2, p1, 1); /* a + b: one generation */
  grow(t, &s, 2, p1, 0); /* both kinds known: nothing */
  struct bodyref_part p2[2] = {{"q", c, strlen(c)}, {"a/2", c, strlen(c)}};
  grow(t, &s, 2, p2, 1); /* only a/2 joins */
  struct bodyref_part p3[2] = {{"x", d, strlen(d)}, {"x", a, strlen(a)}};
  grow(t, &s, 2, p3, 1); /* one kind once: d */
  cr_assert_eq(s.g[0].base, 0);
  cr_assert_eq(s.g[1].base, 1);
  cr_assert_eq(s.g[2].base, 2);
  struct buf want = BUF_INIT;
  cr_assert_eq(buf_printf(&want, "%s%s%s%s", a, b, c, d), 0);
  size_t l1 = strlen(a) + strlen(b), l2 = l1 + strlen(c), l3 = want.len;

  /* the reader: the newest first, then the older ones from the same buffer without fetching */
  struct bodyref_reader *r = bodyref_reader_new();
  size_t len = 0;
  const char *got = bodyref_reader_content(r, &s, 3, fetch, &s, &len);
  cr_assert(got);
  cr_assert_eq(len, l3);
  cr_assert(!memcmp(got, buf_str(&want), l3));
  cr_assert_eq(s.fetches, 3);
  got = bodyref_reader_content(r, &s, 1, fetch, &s, &len);
  cr_assert(got && len == l1 && !memcmp(got, buf_str(&want), l1));
  got = bodyref_reader_content(r, &s, 2, fetch, &s, &len);
  cr_assert(got && len == l2 && !memcmp(got, buf_str(&want), l2));
  cr_assert_eq(s.fetches, 3);
  /* another store's ids are not these */
  int other;
  cr_assert_null(bodyref_reader_content(r, &other, 3, fetch, &(struct gens){0}, &len));

  /* a body packed against the reference inflates with its content */
  void *z = NULL;
  size_t zn = 0;
  int64_t ref = 0;
  cr_assert_eq(bodyrefs_pack(t, 1, "src", b, strlen(b), &z, &zn, &ref), 0);
  cr_assert_eq(ref, 3);
  cr_assert_lt(zn, 64, "a body the reference holds packs to a few bytes (%zu)", zn);
  got = bodyref_reader_content(r, &s, ref, fetch, &s, &len);
  char *body = bodyref_inflate(NULL, z, zn, got, len, 1 << 20, &len);
  cr_assert(body && !strcmp(body, b));
  free(body);
  free(z);

  /* a fresh reader starting in the middle: fetches down to the first generation only */
  bodyref_reader_forget(r, &s);
  s.fetches = 0;
  got = bodyref_reader_content(r, &s, 2, fetch, &s, &len);
  cr_assert(got && len == l2 && s.fetches == 2);
  got = bodyref_reader_content(r, &s, 3, fetch, &s, &len); /* only the newest is fetched */
  cr_assert(got && len == l3 && !memcmp(got, buf_str(&want), l3) && s.fetches == 3);

  /* damaged: a cut frame, a missing generation, a loop */
  bodyref_reader_forget(r, &s);
  s.g[1].n -= 3;
  cr_assert_null(bodyref_reader_content(r, &s, 3, fetch, &s, &len));
  s.g[1].n += 3;
  s.n = 2;
  cr_assert_null(bodyref_reader_content(r, &s, 3, fetch, &s, &len));
  s.n = 3;
  bodyref_reader_forget(r, &s); /* generation 1 was read before generation 2's cut frame */
  s.g[0].base = 2;
  cr_assert_null(bodyref_reader_content(r, &s, 2, fetch, &s, &len));

  bodyref_reader_free(r);
  for (int i = 0; i < s.n; i++) free(s.g[i].data);
  bodyrefs_free(t);
  buf_release(&want);
  free(a);
  free(b);
  free(c);
  free(d);
}
