/* hash.c - XXH3 wrappers and a plain SHA-256 (FIPS 180-4). */
#define XXH_INLINE_ALL
#include <xxhash.h>

#include "util/hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/err.h"
#include "util/mem.h"

uint64_t hash64(const void *p, size_t n) { return XXH3_64bits(p, n); }
uint64_t hash64_seed(const void *p, size_t n, uint64_t seed) {
  return XXH3_64bits_withSeed(p, n, seed);
}
uint64_t hash64_str(const char *s) { return XXH3_64bits(s, strlen(s)); }

void hash128_hex(const void *p, size_t n, char out[33]) {
  XXH128_hash_t h = XXH3_128bits(p, n);
  snprintf(out, 33, "%016llx%016llx", (unsigned long long)h.high64, (unsigned long long)h.low64);
}

struct hash128_stream {
  XXH3_state_t *st;
};

struct hash128_stream *hash128_stream_new(void) {
  struct hash128_stream *h = xcalloc(1, sizeof *h);
  if (!(h->st = XXH3_createState())) mem_oom(sizeof(XXH3_state_t));
  XXH3_128bits_reset(h->st);
  return h;
}

void hash128_stream_update(struct hash128_stream *h, const void *p, size_t n) {
  if (n) XXH3_128bits_update(h->st, p, n);
}

void hash128_stream_hex(const struct hash128_stream *h, char out[33]) {
  XXH128_hash_t d = XXH3_128bits_digest(h->st);
  snprintf(out, 33, "%016llx%016llx", (unsigned long long)d.high64, (unsigned long long)d.low64);
}

void hash128_stream_free(struct hash128_stream *h) {
  if (!h) return;
  XXH3_freeState(h->st);
  free(h);
}

int hash128_file_hex(const char *path, char out[33], uint64_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return AD_EIO;
  struct hash128_stream *h = hash128_stream_new();
  enum { CHUNK = 1 << 16 };
  char *chunk = xmalloc(CHUNK);
  size_t got;
  uint64_t total = 0;
  while ((got = fread(chunk, 1, CHUNK, f)) > 0) {
    hash128_stream_update(h, chunk, got);
    total += got;
  }
  int bad = ferror(f);
  fclose(f);
  free(chunk);
  if (!bad) hash128_stream_hex(h, out);
  hash128_stream_free(h);
  if (bad) return AD_EIO;
  if (size) *size = total;
  return 0;
}

/* ---- SHA-256 ------------------------------------------------------------ */

static const uint32_t K[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static void sha256_block(struct sha256 *s, const unsigned char *b) {
  uint32_t w[64];
  for (int i = 0; i < 16; i++)
    w[i] = (uint32_t)b[4 * i] << 24 | (uint32_t)b[4 * i + 1] << 16 | (uint32_t)b[4 * i + 2] << 8 |
           (uint32_t)b[4 * i + 3];
  for (int i = 16; i < 64; i++) {
    uint32_t s0 = ROR(w[i - 15], 7) ^ ROR(w[i - 15], 18) ^ (w[i - 15] >> 3);
    uint32_t s1 = ROR(w[i - 2], 17) ^ ROR(w[i - 2], 19) ^ (w[i - 2] >> 10);
    w[i] = w[i - 16] + s0 + w[i - 7] + s1;
  }
  uint32_t a = s->h[0], bb = s->h[1], c = s->h[2], d = s->h[3];
  uint32_t e = s->h[4], f = s->h[5], g = s->h[6], h = s->h[7];
  for (int i = 0; i < 64; i++) {
    uint32_t S1 = ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25);
    uint32_t ch = (e & f) ^ (~e & g);
    uint32_t t1 = h + S1 + ch + K[i] + w[i];
    uint32_t S0 = ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22);
    uint32_t maj = (a & bb) ^ (a & c) ^ (bb & c);
    uint32_t t2 = S0 + maj;
    h = g;
    g = f;
    f = e;
    e = d + t1;
    d = c;
    c = bb;
    bb = a;
    a = t1 + t2;
  }
  s->h[0] += a;
  s->h[1] += bb;
  s->h[2] += c;
  s->h[3] += d;
  s->h[4] += e;
  s->h[5] += f;
  s->h[6] += g;
  s->h[7] += h;
}

void sha256_init(struct sha256 *s) {
  static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
  memcpy(s->h, iv, sizeof iv);
  s->total = 0;
  s->fill = 0;
}

void sha256_update(struct sha256 *s, const void *p, size_t n) {
  const unsigned char *b = p;
  s->total += n;
  while (n) {
    size_t take = 64 - s->fill;
    if (take > n) take = n;
    memcpy(s->block + s->fill, b, take);
    s->fill += take;
    b += take;
    n -= take;
    if (s->fill == 64) {
      sha256_block(s, s->block);
      s->fill = 0;
    }
  }
}

void sha256_final(struct sha256 *s, unsigned char out[32]) {
  uint64_t bits = s->total * 8;
  unsigned char pad = 0x80;
  sha256_update(s, &pad, 1);
  unsigned char zero = 0;
  while (s->fill != 56) sha256_update(s, &zero, 1);
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)(bits >> (56 - 8 * i));
  sha256_update(s, len, 8);
  for (int i = 0; i < 8; i++) {
    out[4 * i] = (unsigned char)(s->h[i] >> 24);
    out[4 * i + 1] = (unsigned char)(s->h[i] >> 16);
    out[4 * i + 2] = (unsigned char)(s->h[i] >> 8);
    out[4 * i + 3] = (unsigned char)s->h[i];
  }
}

void sha256_hex(const void *p, size_t n, char out[65]) {
  struct sha256 s;
  unsigned char d[32];
  sha256_init(&s);
  sha256_update(&s, p, n);
  sha256_final(&s, d);
  for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}
