/* secret.h - the secrets the process holds, and their removal from every text it keeps.
 *
 * Whoever reads a secret (an API key from its environment variable, a secret header value)
 * registers its value here; the sinks scrub every registered value before text leaves the
 * process or reaches disk: the response body of every model call as it arrives
 * (llm/client.c), every text the store writes (store/store_sqlite.c), every log line
 * (util/log.c) and everything printed on stdout and stderr (secret_guard_stdio). A scrubbed
 * value reads SECRET_MASK, which is valid inside a JSON string.
 *
 * Values shorter than SECRET_MIN_LEN bytes are not registered (scrubbing "ab" would mangle
 * every text); a real key is far longer. Single-threaded, like the loop; the registry lives
 * until exit.
 */
#ifndef AD_SECRET_H
#define AD_SECRET_H

#include <stddef.h>

#include "util/buf.h"

#define SECRET_MASK "[redacted]"
#define SECRET_MIN_LEN 6
#define SECRET_MAX 64 /* registered values beyond this many are ignored (and logged) */

/* Register a value (copied; duplicates and NULL ignored). */
void secret_add(const char *value);
/* Register the values of the environment variables whose names look secret (secret_name):
 * *KEY*, *TOKEN*, *SECRET*, *PASSWORD*, *PASSWD*, *CREDENTIAL*, case-insensitive. */
void secret_add_env(void);
/* 1 when a variable name looks like it holds a secret. */
int secret_name(const char *name, size_t len);
/* 1 when text that should be a variable NAME looks like a pasted key instead: long, with
 * lowercase letters and digits mixed (variable names are conventionally upper case), or a
 * well-known key prefix. Never prints it. */
int secret_looks_like_key(const char *s);
/* Number of registered values. */
size_t secret_count(void);
/* Forget every value (tests). */
void secret_clear(void);

/* An owned copy of s[0..n) with every registered value replaced by SECRET_MASK, its length in
 * *out_len; NULL when s holds none (use s as it is). */
char *secret_scrub(const char *s, size_t n, size_t *out_len);
/* Scrub a buffer in place (it may grow past its limit by the mask's length). */
void secret_scrub_buf(struct buf *b);
/* Scrub a NUL-terminated string in place: each value is overwritten by SECRET_MASK cut to the
 * value's length (or padded with '*'), so the length never changes. */
void secret_scrub_inplace(char *s);

/* Route stdout and stderr through the scrub: whatever any code prints is scrubbed before it
 * is written. Write errors keep their errno (EPIPE, EIO) so callers see them. Call once,
 * first thing in main. */
void secret_guard_stdio(void);

#endif
