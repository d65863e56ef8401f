/* against.c - the user's reference files for the contamination check: JSONL (the string
 * values of the named fields, or of every field) or text (one item per paragraph). */
#include <string.h>

#include "analyze/analyze.h"
#include "util/buf.h"
#include "util/mem.h"

static int skipped_key(const char *k) {
  size_t n = strlen(k);
  return !strcmp(k, "id") || (n >= 3 && !strcmp(k + n - 3, "_id")) ||
         (n >= 6 && !strcmp(k + n - 6, "hashes"));
}

static int wanted(const char *k, const char *const *fields, size_t nfields) {
  for (size_t i = 0; i < nfields; i++)
    if (!strcmp(fields[i], k)) return 1;
  return 0;
}

/* Append every string below v to out, separated by newlines (all: every key counts).
 * 0 or AD_ETOOBIG past the buffer's cap. */
static int collect(const json_t *v, int all, const char *const *fields, size_t nfields,
                   struct buf *out) {
  if (json_is_string(v)) {
    if (!all) return 0;
    if (out->len && buf_putc(out, '\n')) return AD_ETOOBIG;
    return buf_append(out, json_string_value(v), json_string_length(v));
  } else if (json_is_array(v)) {
    size_t i;
    const json_t *e;
    json_array_foreach(v, i, e) if (collect(e, all, fields, nfields, out)) return AD_ETOOBIG;
  } else if (json_is_object(v)) {
    const char *k;
    const json_t *e;
    json_object_foreach((json_t *)v, k, e) {
      if (skipped_key(k)) continue;
      /* A named field may sit deeper: without a match, look inside. */
      if (collect(e, all || wanted(k, fields, nfields), fields, nfields, out)) return AD_ETOOBIG;
    }
  }
  return 0;
}

static int parse_jsonl(const char *data, size_t len, const char *name, const char *const *fields,
                       size_t nfields, an_item_fn fn, void *ud, char *err, size_t errlen) {
  struct buf text;
  buf_init(&text, AD_MAX_LINE);
  int line = 0, rc = 0;
  for (size_t p = 0; p < len && !rc;) {
    const char *nl = memchr(data + p, '\n', len - p);
    size_t e = nl ? (size_t)(nl - data) : len;
    line++;
    size_t s = p;
    p = e + 1;
    while (s < e && (data[s] == ' ' || data[s] == '\t' || data[s] == '\r')) s++;
    if (s == e) continue;
    json_error_t je;
    json_t *v = json_loadb(data + s, e - s, JSON_DECODE_ANY | JSON_ALLOW_NUL, &je);
    if (!v || !json_is_object(v)) {
      ad_set_err(err, errlen, "%s:%d: %s", name, line,
                 v ? "a JSONL line must be an object" : je.text);
      json_decref(v);
      rc = AD_EINVAL;
      break;
    }
    buf_reset(&text);
    int crc = collect(v, nfields == 0, fields, nfields, &text);
    json_decref(v);
    if (crc) {
      ad_set_err(err, errlen, "%s:%d: the line's text is too long", name, line);
      rc = AD_EINVAL;
      break;
    }
    rc = fn(ud, line, text.data, text.len);
  }
  buf_release(&text);
  return rc;
}

static int blank_line(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

static int parse_text(const char *data, size_t len, an_item_fn fn, void *ud) {
  int line = 0, start_line = 0, rc = 0;
  size_t start = 0, end = 0;
  int open = 0;
  for (size_t p = 0; p <= len && !rc;) {
    const char *nl = p < len ? memchr(data + p, '\n', len - p) : NULL;
    size_t e = nl ? (size_t)(nl - data) : len;
    line++;
    int blank = p >= len || blank_line(data + p, e - p);
    if (!blank && !open) {
      open = 1;
      start = p;
      start_line = line;
    }
    if (!blank) end = e;
    if ((blank || !nl) && open) {
      rc = fn(ud, start_line, data + start, end - start);
      open = 0;
    }
    if (!nl) break;
    p = e + 1;
  }
  return rc;
}

int an_against_parse(const char *data, size_t len, const char *name, const char *const *fields,
                     size_t nfields, an_item_fn fn, void *ud, char *err, size_t errlen) {
  size_t i = 0;
  while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) i++;
  if (i < len && data[i] == '{')
    return parse_jsonl(data, len, name, fields, nfields, fn, ud, err, errlen);
  return parse_text(data, len, fn, ud);
}
