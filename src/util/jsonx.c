/* jsonx.c - jansson helpers. */
#include "util/jsonx.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

const char *jx_str(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return json_is_string(v) ? json_string_value(v) : NULL;
}

long long jx_int(const json_t *obj, const char *key, long long dflt) {
  const json_t *v = json_object_get(obj, key);
  if (json_is_integer(v)) return (long long)json_integer_value(v);
  if (json_is_real(v)) return (long long)json_real_value(v);
  return dflt;
}

double jx_num(const json_t *obj, const char *key, double dflt) {
  const json_t *v = json_object_get(obj, key);
  return json_is_number(v) ? json_number_value(v) : dflt;
}

char *jx_dump_canonical(const json_t *v) {
  return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

/* jansson's dump callback contract: 0 to go on, -1 to stop the dump. */
static int dump_cb(const char *p, size_t n, void *ud) {
  return buf_append((struct buf *)ud, p, n) ? -1 : 0;
}

int jx_dump_buf(const json_t *v, struct buf *out, size_t flags) {
  if (!v) return AD_EINVAL;
  if (json_dump_callback(v, dump_cb, out, flags | JSON_ENCODE_ANY)) return AD_ETOOBIG;
  return 0;
}

size_t jx_utf8_seq(const unsigned char *p, size_t n) {
  unsigned c = p[0];
  size_t len;
  unsigned min;
  if (c < 0x80) return 1;
  if (c >= 0xc2 && c <= 0xdf) {
    len = 2;
    min = 0x80;
  } else if (c >= 0xe0 && c <= 0xef) {
    len = 3;
    min = 0x800;
  } else if (c >= 0xf0 && c <= 0xf4) {
    len = 4;
    min = 0x10000;
  } else return 0;
  if (n < len) return 0;
  unsigned cp = c & (0x3f >> (len - 1));
  for (size_t i = 1; i < len; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return len;
}

int jx_text_check(const char *p, size_t n, size_t *at) {
  const unsigned char *u = (const unsigned char *)p;
  size_t ctl = 0, first_ctl = 0, blank = 1;
  if (at) *at = 0;
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    if (c == 0) {
      if (at) *at = i;
      return JX_TEXT_NUL;
    }
    size_t k = jx_utf8_seq(u + i, n - i);
    if (!k) {
      if (at) *at = i;
      return JX_TEXT_BAD_UTF8;
    }
    if (c < 0x20 && c != '\t' && c != '\n' && c != '\r' && c != '\f') {
      if (!ctl++) first_ctl = i;
    } else if (c == 0x7f) {
      if (!ctl++) first_ctl = i;
    }
    if (!(c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v')) blank = 0;
    i += k;
  }
  if (ctl && ctl * 100 > n) {
    if (at) *at = first_ctl;
    return JX_TEXT_BINARY;
  }
  return blank ? JX_TEXT_EMPTY : JX_TEXT_OK;
}

const char *jx_text_problem(int code) {
  switch (code) {
  case JX_TEXT_OK: return "is text";
  case JX_TEXT_EMPTY: return "is empty";
  case JX_TEXT_NUL: return "holds a NUL byte (a binary file?)";
  case JX_TEXT_BAD_UTF8: return "is not valid UTF-8";
  default: return "looks binary (control characters)";
  }
}

json_t *jx_string_lossy(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;
  while (i < n) {
    size_t k = jx_utf8_seq(p + i, n - i);
    if (!k || p[i] == 0) break;
    i += k;
  }
  if (i == n) return json_stringn(s, n);
  /* Two passes over the rest: the repaired length, then the bytes (U+FFFD is 3). */
  size_t len = i;
  for (size_t j = i; j < n;) {
    size_t k = jx_utf8_seq(p + j, n - j);
    len += k && p[j] != 0 ? k : 3;
    j += k && p[j] != 0 ? k : 1;
  }
  char *r = xmalloc(len + 1), *q = r + i;
  memcpy(r, s, i);
  while (i < n) {
    size_t k = jx_utf8_seq(p + i, n - i);
    if (k && p[i] != 0) {
      memcpy(q, p + i, k);
      q += k;
      i += k;
    } else {
      memcpy(q, "\xef\xbf\xbd", 3);
      q += 3;
      i++;
    }
  }
  *q = '\0';
  json_t *v = json_stringn(r, len);
  free(r);
  return v;
}

double jx_round6(double x) { return isfinite(x) ? round(x * 1e6) / 1e6 : 0.0; }

size_t jx_utf8_chars(const char *s) {
  size_t n = 0;
  for (const unsigned char *p = (const unsigned char *)s; p && *p; p++)
    if ((*p & 0xC0) != 0x80) n++;
  return n;
}
