/* hash.h - fast non-cryptographic hashes (xxHash XXH3) and SHA-256.
 *
 * XXH3 is stable since xxHash 0.8.0, so its values may be stored (cache keys).
 * SHA-256 is used where a user may want to verify a hash with standard tools
 * (prompt files and source corpora in the data card).
 */
#ifndef AD_HASH_H
#define AD_HASH_H

#include <stddef.h>
#include <stdint.h>

uint64_t hash64(const void *p, size_t n);
uint64_t hash64_seed(const void *p, size_t n, uint64_t seed);
uint64_t hash64_str(const char *s);
/* 128-bit XXH3 as 32 lowercase hex digits + NUL. */
void hash128_hex(const void *p, size_t n, char out[33]);

/* The same 128-bit XXH3 over data given in pieces (hash128_hex of their concatenation). */
struct hash128_stream;
struct hash128_stream *hash128_stream_new(void);
void hash128_stream_update(struct hash128_stream *h, const void *p, size_t n);
/* The digest so far as 32 hex digits + NUL (the stream may go on). */
void hash128_stream_hex(const struct hash128_stream *h, char out[33]);
void hash128_stream_free(struct hash128_stream *h);
/* hash128_hex of a whole file's bytes, and its size: 0, or AD_EIO (errno set) when it cannot
 * be opened or read. */
int hash128_file_hex(const char *path, char out[33], uint64_t *size);

struct sha256 {
  uint32_t h[8];
  uint64_t total;
  unsigned char block[64];
  size_t fill;
};
void sha256_init(struct sha256 *s);
void sha256_update(struct sha256 *s, const void *p, size_t n);
void sha256_final(struct sha256 *s, unsigned char out[32]);
/* One-shot SHA-256 as 64 lowercase hex digits + NUL. */
void sha256_hex(const void *p, size_t n, char out[65]);

#endif
