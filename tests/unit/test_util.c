/* test_util.c - util module: buf, hashes, rng, json helpers, fs. */
#include <criterion/criterion.h>
#include <string.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/fs.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/rng.h"
#include "util/secret.h"

#include "helpers.h"

Test(buf, append_and_cap) {
  struct buf b;
  buf_init(&b, 8);
  cr_assert_str_eq(buf_str(&b), "");
  cr_assert_eq(buf_puts(&b, "abcd"), 0);
  cr_assert_eq(buf_printf(&b, "%d", 1234), 0);
  cr_assert_str_eq(buf_str(&b), "abcd1234");
  cr_assert_eq(buf_putc(&b, 'x'), AD_ETOOBIG);
  cr_assert_str_eq(buf_str(&b), "abcd1234", "failed append keeps contents");
  size_t n;
  char *p = buf_take(&b, &n);
  cr_assert_eq(n, 8);
  cr_assert_str_eq(p, "abcd1234");
  cr_assert_eq(b.len, 0);
  free(p);
  buf_release(&b);
}

/* The invariant of buf.h: data is never NULL and always NUL-terminated. */
static void assert_empty_buf(const struct buf *b) {
  cr_assert_not_null(b->data);
  cr_assert_eq(b->len, 0);
  cr_assert_eq(b->data[0], '\0');
  cr_assert_str_eq(buf_str(b), "");
}

Test(buf, data_never_null) {
  struct buf a = BUF_INIT;
  assert_empty_buf(&a);
  cr_assert_eq(a.cap, 0, "BUF_INIT allocates nothing");
  cr_assert_eq(a.data, buf_empty_);

  struct buf b;
  buf_init(&b, 16);
  assert_empty_buf(&b);
  cr_assert_eq(b.cap, 0);
  cr_assert_eq(b.limit, 16);
  cr_assert_eq(buf_puts(&b, "abc"), 0);
  cr_assert_neq(b.data, buf_empty_, "the first growth allocates");
  cr_assert_str_eq(b.data, "abc");
  buf_reset(&b);
  assert_empty_buf(&b);
  cr_assert_gt(b.cap, 0, "reset keeps the allocation");
  buf_release(&b);
  assert_empty_buf(&b);
  cr_assert_eq(b.cap, 0);
  cr_assert_eq(b.data, buf_empty_, "release points at the shared empty string");
  cr_assert_eq(b.limit, 16, "release keeps the limit");
  cr_assert_eq(buf_puts(&b, "again"), 0, "a released buffer is usable");
  cr_assert_str_eq(b.data, "again");

  size_t n = 99;
  char *p = buf_take(&b, &n);
  cr_assert_str_eq(p, "again");
  cr_assert_eq(n, 5);
  assert_empty_buf(&b);
  cr_assert_eq(b.data, buf_empty_, "take points at the shared empty string");
  free(p);
  p = buf_take(&b, &n); /* nothing allocated: a new "" of the caller's own */
  cr_assert_not_null(p);
  cr_assert_neq(p, buf_empty_);
  cr_assert_str_eq(p, "");
  cr_assert_eq(n, 0);
  free(p);
  buf_release(&b);
  buf_release(&a);
  cr_assert_eq(buf_empty_[0], '\0', "the shared empty string is never written");
}

Test(buf, zeroed_struct_is_empty) {
  struct buf z;
  memset(&z, 0, sizeof z);
  cr_assert_str_eq(buf_str(&z), "");
  buf_reset(&z);
  assert_empty_buf(&z);
  memset(&z, 0, sizeof z);
  char *p = buf_take(&z, NULL);
  cr_assert_str_eq(p, "");
  free(p);
  assert_empty_buf(&z);
  memset(&z, 0, sizeof z);
  buf_release(&z);
  assert_empty_buf(&z);
  memset(&z, 0, sizeof z);
  cr_assert_eq(buf_reserve(&z, 0), 0);
  assert_empty_buf(&z);
  cr_assert_gt(z.cap, 0);
  buf_release(&z);
  memset(&z, 0, sizeof z);
  cr_assert_eq(buf_printf(&z, "%d-%s", 7, "x"), 0);
  cr_assert_str_eq(z.data, "7-x");
  cr_assert_eq(z.len, 3);
  buf_release(&z);
}

Test(buf, cap_reached_keeps_contents) {
  struct buf b;
  buf_init(&b, 4);
  cr_assert_eq(buf_append(&b, "12345", 5), AD_ETOOBIG, "over the limit before any growth");
  assert_empty_buf(&b);
  cr_assert_eq(b.cap, 0, "a refused append allocates nothing");
  cr_assert_eq(buf_puts(&b, "1234"), 0, "exactly the limit fits");
  cr_assert_eq(buf_putc(&b, '5'), AD_ETOOBIG);
  cr_assert_eq(buf_printf(&b, "%s", "x"), AD_ETOOBIG);
  cr_assert_eq(buf_reserve(&b, 1), AD_ETOOBIG);
  cr_assert_eq(buf_reserve(&b, 0), 0);
  cr_assert_eq(b.len, 4);
  cr_assert_str_eq(b.data, "1234");
  buf_release(&b);
  assert_empty_buf(&b);
}

Test(hash, sha256_known_vectors) {
  char hex[65];
  sha256_hex("", 0, hex);
  cr_assert_str_eq(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  sha256_hex("abc", 3, hex);
  cr_assert_str_eq(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  const char *m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
  sha256_hex(m, strlen(m), hex);
  cr_assert_str_eq(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
}

Test(hash, xxh3_stable) {
  /* XXH3 output is frozen since xxHash 0.8.0; stored cache keys rely on it.  Reference values
   * from a separate program linked against the system libxxhash 0.8.1 (XXH3_64bits,
   * XXH3_64bits_withSeed, XXH3_128bits printed high64 then low64, as `xxhsum -H2` does), not
   * through this wrapper; those for "" and "abc" are also XXH3's published values. */
  char hex[33];
  cr_assert_eq(hash64("", 0), 0x2d06800538d394c2ULL);
  cr_assert_eq(hash64("abc", 3), 0x78af5f94892f3950ULL);
  cr_assert_eq(hash64("autodata", 8), 0x402d7fc5bb160cbdULL);
  cr_assert_eq(hash64_str("autodata"), 0x402d7fc5bb160cbdULL);
  cr_assert_eq(hash64_seed("abc", 3, 42), 0xd8438def21bbdcc3ULL);
  cr_assert_eq(hash64_seed("autodata", 8, 42), 0xc34bd7422637d7e0ULL);
  hash128_hex("", 0, hex);
  cr_assert_str_eq(hex, "99aa06d3014798d86001c324468d497f");
  hash128_hex("abc", 3, hex);
  cr_assert_str_eq(hex, "06b05ab6733a618578af5f94892f3950");
  hash128_hex("autodata", 8, hex);
  cr_assert_str_eq(hex, "b3f80cd5ac5a4259f20098ccfc2996c1");
}

Test(rng, deterministic_and_uniform) {
  struct rng a, b;
  rng_seed(&a, 42);
  rng_seed(&b, 42);
  for (int i = 0; i < 100; i++) cr_assert_eq(rng_next(&a), rng_next(&b));
  double sum = 0;
  for (int i = 0; i < 100000; i++) {
    double d = rng_double(&a);
    cr_assert(d >= 0 && d < 1);
    sum += d;
  }
  cr_assert_float_eq(sum / 100000, 0.5, 0.01);
  cr_assert_eq(rng_derive(7, "src=%d", 1), rng_derive(7, "src=%d", 1));
  cr_assert_neq(rng_derive(7, "src=%d", 1), rng_derive(7, "src=%d", 2));
  cr_assert_neq(rng_derive(7, "src=%d", 1), rng_derive(8, "src=%d", 1));
  cr_assert_lt(rng_derive(7, "x"), (uint64_t)1 << 63);
}

Test(jsonx, canonical_and_lossy) {
  json_t *o = json_pack("{s:i,s:s}", "b", 1, "a", "x");
  char *s = jx_dump_canonical(o);
  cr_assert_str_eq(s, "{\"a\":\"x\",\"b\":1}");
  free(s);
  json_decref(o);
  json_t *j = jx_string_lossy("ok\xff!", 4);
  cr_assert_not_null(j);
  cr_assert_str_eq(json_string_value(j), "ok\xef\xbf\xbd!");
  json_decref(j);
  /* NUL and a truncated 3-byte sequence: one U+FFFD per byte not part of valid UTF-8 */
  j = jx_string_lossy("a\0b\xe2\x82", 5);
  cr_assert_not_null(j);
  cr_assert_eq(json_string_length(j), 2 + 3 * 3);
  cr_assert_str_eq(json_string_value(j),
                   "a\xef\xbf\xbd"
                   "b\xef\xbf\xbd\xef\xbf\xbd");
  json_decref(j);
  j = jx_string_lossy("caf\xc3\xa9", 5); /* valid: kept as is */
  cr_assert_str_eq(json_string_value(j), "caf\xc3\xa9");
  json_decref(j);
}

Test(fs, atomic_write_and_read) {
  char dir[64];
  th_mkdtemp(dir, sizeof dir, "fs");
  const char *path = th_write_file(th_path(dir, "f"), "old"); /* replaced atomically */
  cr_assert_eq(fs_write_atomic(path, "hello", 5), 0);
  char *p;
  size_t n;
  cr_assert_eq(fs_read_all(path, 100, &p, &n), 0);
  cr_assert_eq(n, 5);
  cr_assert_str_eq(p, "hello");
  free(p);
  cr_assert_eq(fs_read_all(path, 3, &p, &n), AD_ETOOBIG);
  cr_assert_eq(fs_read_all(th_path(dir, "no-such-dir/x"), 3, &p, &n), AD_EIO);
  cr_assert_eq(th_rmtree(dir), 0);
}

/* ---- secret: the registry and the scrub (util/secret.h) ---- */

Test(secret, scrub_masks_every_registered_value) {
  secret_clear();
  secret_add("abc"); /* too short: never registered */
  secret_add("sk-short-1");
  secret_add("sk-short-1-and-longer");
  cr_assert_eq(secret_count(), 2);
  const char *in = "a sk-short-1-and-longer b sk-short-1 c abc";
  size_t n;
  char *out = secret_scrub(in, strlen(in), &n);
  cr_assert_not_null(out);
  cr_assert_str_eq(out, "a [redacted] b [redacted] c abc", "longest first, whole value");
  cr_assert_eq(n, strlen(out));
  free(out);
  cr_assert_null(secret_scrub("clean text", 10, &n), "nothing to mask: NULL");
  char s[] = "key=sk-short-1-and-longer;";
  secret_scrub_inplace(s);
  cr_assert_str_eq(s, "key=[redacted]***********;", "in place: same length");
  struct buf b = BUF_INIT;
  cr_assert_eq(buf_puts(&b, "{\"m\":\"bad key sk-short-1\"}"), 0);
  secret_scrub_buf(&b);
  cr_assert_str_eq(buf_str(&b), "{\"m\":\"bad key [redacted]\"}", "JSON stays valid");
  buf_release(&b);
  secret_clear();
}

Test(secret, names_and_pasted_keys) {
  cr_assert(secret_name("OPENAI_API_KEY", 14));
  cr_assert(secret_name("hf_token", 8));
  cr_assert_not(secret_name("HOME", 4));
  cr_assert(secret_looks_like_key("sk-proj-abcdefgh12345"));
  cr_assert(secret_looks_like_key("hf_aBcDeFgH1234567890xYz"));
  cr_assert_not(secret_looks_like_key("OPENAI_API_KEY"));
  cr_assert_not(secret_looks_like_key("MY_SERVICE_API_KEY_2024"));
}
