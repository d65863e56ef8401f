/* jsonx.h - small helpers over jansson.
 *
 * Ownership follows jansson: getters return borrowed references valid while the
 * parent lives. jx_dump_canonical() is the one serialisation used for anything
 * hashed or compared (sorted keys, compact, no ASCII escaping), so the same
 * value always gives the same bytes.
 */
#ifndef AD_JSONX_H
#define AD_JSONX_H

#include <jansson.h>
#include <stddef.h>

#include "util/buf.h"

/* Borrowed string member, or NULL when missing or not a string. */
const char *jx_str(const json_t *obj, const char *key);
/* Integer member (real values truncated), or dflt. */
long long jx_int(const json_t *obj, const char *key, long long dflt);
/* Number member (integer or real), or dflt. */
double jx_num(const json_t *obj, const char *key, double dflt);
/* x rounded to 6 decimals, the precision of every score in the records; 0 for a
 * value that is not finite. */
double jx_round6(double x);
/* Canonical compact dump with sorted keys; caller frees. NULL only when v is NULL or
 * contains itself (jansson refuses a cycle); memory failure aborts (util/mem.h). */
char *jx_dump_canonical(const json_t *v);
/* Compact dump in insertion order appended to a buf (for request bodies, JSONL):
 * 0, AD_EINVAL for a NULL v, or AD_ETOOBIG past the buffer's limit (and for a value
 * that contains itself, which jansson refuses to dump). */
AD_WUR int jx_dump_buf(const json_t *v, struct buf *out, size_t flags);
/* Length (1..4) of the valid UTF-8 sequence starting at p[0] (n bytes available),
 * or 0 when it is invalid (overlong, surrogate, out of range, truncated). */
size_t jx_utf8_seq(const unsigned char *p, size_t n);
/* Whether n bytes are usable text: JX_TEXT_OK, or the first problem - JX_TEXT_EMPTY (nothing
 * but white space), JX_TEXT_NUL (a NUL byte), JX_TEXT_BAD_UTF8 (invalid UTF-8), JX_TEXT_BINARY
 * (control characters other than tab, newline, carriage return and form feed make up more
 * than 1% of the bytes) - with the offset of the first bad byte in *at (may be NULL).
 * jx_text_problem names a code ("holds a NUL byte", ...). */
enum { JX_TEXT_OK = 0, JX_TEXT_EMPTY, JX_TEXT_NUL, JX_TEXT_BAD_UTF8, JX_TEXT_BINARY };
int jx_text_check(const char *p, size_t n, size_t *at);
const char *jx_text_problem(int code);
/* Code points of the NUL-terminated UTF-8 string s (bytes that are not continuation
 * bytes); 0 for NULL. */
size_t jx_utf8_chars(const char *s);
/* json_string() for arbitrary bytes: invalid UTF-8 (and NUL) is replaced by U+FFFD.
 * Returns a new reference; never NULL (there is no size cap; memory failure aborts). */
json_t *jx_string_lossy(const char *s, size_t n);

#endif
