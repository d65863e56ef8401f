/* buf.h - a growable byte buffer with a hard size cap (curl's dynbuf, git's strbuf).
 *
 * Invariants: after BUF_INIT or buf_init() `data` is never NULL and is always
 * NUL-terminated, so it can be passed to any C string function; `len` excludes the
 * terminator. An empty buffer that owns no memory (cap == 0) points at buf_empty_, a
 * shared "" that is never written; the first growth allocates, and buf_release() and
 * buf_take() leave the buffer pointing at buf_empty_ again (as git's strbuf_slopbuf).
 * A zero-initialised struct buf (data == NULL, default cap) is valid too and reads as
 * empty everywhere (buf_str() gives ""); only its `data` field may still be NULL until
 * the first append, buf_reset(), buf_release() or buf_take().
 *
 * Memory comes from util/mem.h (an allocation failure aborts), so every append returns
 * 0 or AD_ETOOBIG (past the buffer's limit), and on failure the buffer keeps its
 * previous contents. buf_printf()/buf_vprintf() may also return AD_EINVAL (an output
 * encoding error in vsnprintf).
 *
 * Named limits keep a runaway model reply or input line from exhausting memory.
 */
#ifndef AD_BUF_H
#define AD_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include "util/err.h"

#define AD_MAX_RESPONSE (16u * 1024 * 1024) /* one HTTP reply body */
#define AD_MAX_REQUEST (16u * 1024 * 1024)  /* one HTTP request body */
#define AD_MAX_PROMPT (4u * 1024 * 1024)    /* one rendered prompt */
#define AD_MAX_LINE (64u * 1024 * 1024)     /* one JSONL input line */
#define AD_BUF_DEFAULT_CAP (256u * 1024 * 1024)

/* The "" that every buffer without memory of its own points at. Never written. */
extern char buf_empty_[1];

struct buf {
  char *data;   /* NUL-terminated; buf_empty_ while cap == 0 (NULL in a zeroed struct) */
  size_t len;   /* bytes used, excluding the terminator */
  size_t cap;   /* bytes allocated; 0 = nothing allocated */
  size_t limit; /* max len; 0 = AD_BUF_DEFAULT_CAP */
};

#define BUF_INIT \
  { buf_empty_, 0, 0, 0 }

void buf_init(struct buf *b, size_t limit);
AD_WUR int buf_append(struct buf *b, const void *p, size_t n);
AD_WUR int buf_puts(struct buf *b, const char *s);
AD_WUR int buf_putc(struct buf *b, char c);
AD_WUR int buf_printf(struct buf *b, const char *fmt, ...) AD_PRINTF(2, 3);
AD_WUR int buf_vprintf(struct buf *b, const char *fmt, va_list ap);
/* Ensure room for n more bytes (plus terminator): 0 or AD_ETOOBIG. Allocates when
 * the buffer owns no memory yet, even for n == 0. */
AD_WUR int buf_reserve(struct buf *b, size_t n);
/* Empty the buffer, keeping its allocation. */
void buf_reset(struct buf *b);
/* Contents as a C string; "" for an empty buffer. Borrowed. */
const char *buf_str(const struct buf *b);
/* Move the contents out: the caller owns the malloc'd, NUL-terminated result (a new
 * "" for a buffer without memory; never NULL), *len (len may be NULL) its length; the
 * buffer is left empty, owning nothing, pointing at buf_empty_. */
char *buf_take(struct buf *b, size_t *len);
/* Free the memory and leave the buffer empty, pointing at buf_empty_ (limit kept). */
void buf_release(struct buf *b);

#endif
