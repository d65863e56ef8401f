/* buf.h - a growable byte buffer with a hard size cap (curl's dynbuf, git's strbuf).
 *
 * Invariants: after buf_init() `data` is never NULL and is always NUL-terminated,
 * so it can be passed to any C string function; `len` excludes the terminator.
 * Every append returns 0 or AD_ETOOBIG / AD_ENOMEM, and on failure the buffer keeps
 * its previous contents. A zero-initialised struct buf is valid (empty, default cap).
 *
 * Named limits keep a runaway model reply or input line from exhausting memory.
 */
#ifndef AD_BUF_H
#define AD_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "util/err.h"

#define AD_MAX_RESPONSE  (16u * 1024 * 1024) /* one HTTP reply body */
#define AD_MAX_REQUEST   (16u * 1024 * 1024) /* one HTTP request body */
#define AD_MAX_PROMPT    (4u * 1024 * 1024)  /* one rendered prompt */
#define AD_MAX_LINE      (64u * 1024 * 1024) /* one JSONL input line */
#define AD_BUF_DEFAULT_CAP (256u * 1024 * 1024)

struct buf {
  char *data;   /* NUL-terminated; NULL only before first use */
  size_t len;   /* bytes used, excluding the terminator */
  size_t cap;   /* bytes allocated */
  size_t limit; /* max len; 0 = AD_BUF_DEFAULT_CAP */
};

#define BUF_INIT {NULL, 0, 0, 0}

void buf_init(struct buf *b, size_t limit);
AD_WUR int buf_append(struct buf *b, const void *p, size_t n);
AD_WUR int buf_puts(struct buf *b, const char *s);
AD_WUR int buf_putc(struct buf *b, char c);
AD_WUR int buf_printf(struct buf *b, const char *fmt, ...) AD_PRINTF(2, 3);
AD_WUR int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Ensure room for n more bytes (plus terminator). */
AD_WUR int buf_reserve(struct buf *b, size_t n);
/* Empty the buffer, keeping its allocation. */
void buf_reset(struct buf *b);
/* Contents as a C string; "" for an untouched buffer. Borrowed. */
const char *buf_str(const struct buf *b);
/* Move the contents out: the caller owns the malloc'd, NUL-terminated result and
 * the buffer is reset to empty. Never NULL (returns an empty string on an empty
 * buffer) unless memory runs out. */
char *buf_take(struct buf *b, size_t *len);
void buf_release(struct buf *b);

#endif
