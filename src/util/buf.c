/* buf.c - capped growable buffer. */
#include "util/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

char buf_empty_[1];

void buf_init(struct buf *b, size_t limit) {
  b->data = buf_empty_;
  b->len = 0;
  b->cap = 0;
  b->limit = limit;
}

int buf_reserve(struct buf *b, size_t n) {
  size_t limit = b->limit ? b->limit : AD_BUF_DEFAULT_CAP;
  if (n > limit || b->len > limit - n) return AD_ETOOBIG;
  size_t need = b->len + n + 1;
  if (need <= b->cap) return 0;
  size_t ncap = b->cap ? b->cap : 64;
  while (ncap < need) ncap = ncap > SIZE_MAX / 2 ? need : ncap * 2;
  if (b->cap) {
    b->data = xrealloc(b->data, ncap);
  } else { /* data is buf_empty_ (or NULL in a zeroed struct): never realloc'd */
    b->data = xmalloc(ncap);
    b->data[0] = '\0';
  }
  b->cap = ncap;
  return 0;
}

int buf_append(struct buf *b, const void *p, size_t n) {
  int rc = buf_reserve(b, n);
  if (rc) return rc;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int buf_puts(struct buf *b, const char *s) { return buf_append(b, s, strlen(s)); }

int buf_putc(struct buf *b, char c) { return buf_append(b, &c, 1); }

int buf_vprintf(struct buf *b, const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0) return AD_EINVAL;
  int rc = buf_reserve(b, (size_t)n);
  if (rc) return rc;
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  b->len += (size_t)n;
  return 0;
}

int buf_printf(struct buf *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int rc = buf_vprintf(b, fmt, ap);
  va_end(ap);
  return rc;
}

void buf_reset(struct buf *b) {
  b->len = 0;
  if (b->cap) b->data[0] = '\0';
  else b->data = buf_empty_;
}

const char *buf_str(const struct buf *b) { return b->data ? b->data : ""; }

char *buf_take(struct buf *b, size_t *len) {
  char *p = b->cap ? b->data : xcalloc(1, 1);
  if (len) *len = b->len;
  b->data = buf_empty_;
  b->len = 0;
  b->cap = 0;
  return p;
}

void buf_release(struct buf *b) {
  if (b->cap) free(b->data);
  b->data = buf_empty_;
  b->len = 0;
  b->cap = 0;
}
