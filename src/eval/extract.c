/* extract.c - pull one JSON value out of messy model text (see extract.h). */
#include "eval/extract.h"
#include "util/err.h"
#include "util/mem.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

static int is_ws(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static size_t skip_ws(const char *t, size_t i, size_t len) {
  while (i < len && is_ws(t[i])) i++;
  return i;
}

static const char *find(const char *hay, size_t hlen, const char *needle) {
  size_t nl = strlen(needle);
  if (hlen < nl) return NULL;
  return memmem(hay, hlen, needle, nl);
}

const char *extract_skip_think(const char *text, size_t len, size_t *rest_len) {
  size_t i = 0;
  if (!text) {
    *rest_len = 0;
    return "";
  }
  if (len >= 3 && memcmp(text, "\xEF\xBB\xBF", 3) == 0) i = 3;
  int saw_open = 0;
  for (;;) {
    size_t j = skip_ws(text, i, len);
    if (len - j >= 7 && strncasecmp(text + j, "<think>", 7) == 0) {
      saw_open = 1;
      const char *close = find(text + j + 7, len - j - 7, "</think>");
      if (!close) {
        *rest_len = 0;
        return text + len;
      }
      i = (size_t)(close - text) + 8;
      continue;
    }
    break;
  }
  if (!saw_open) {
    const char *close = find(text + i, len - i, "</think>");
    if (close) i = (size_t)(close - text) + 8;
  }
  *rest_len = len - i;
  return text + i;
}

const char *extract_final_text(const char *text, size_t len, size_t *rest_len) {
  size_t n = 0;
  const char *t = extract_skip_think(text, len, &n);
  *rest_len = 0;
  if (!text) return "";
  if (t == text) { /* no reasoning (or only a BOM): the reply as it is */
    *rest_len = n;
    return t;
  }
  if (n == 0 && !find(text, len, "</think>")) return NULL; /* an unclosed <think> */
  while (n > 0 && is_ws(*t)) t++, n--;
  *rest_len = n;
  return t;
}

/* End (exclusive) of the balanced value opening at t[s], or 0 when it never
 * closes. Strings and escapes are respected. */
static size_t scan_balanced(const char *t, size_t s, size_t len) {
  size_t depth = 0;
  int in_str = 0, esc = 0;
  for (size_t i = s; i < len; i++) {
    char c = t[i];
    if (in_str) {
      if (esc) esc = 0;
      else if (c == '\\') esc = 1;
      else if (c == '"') in_str = 0;
      continue;
    }
    if (c == '"') in_str = 1;
    else if (c == '{' || c == '[') depth++;
    else if (c == '}' || c == ']') {
      if (--depth == 0) return i + 1;
    }
  }
  return 0;
}

/* Copy t[s..e) dropping trailing commas outside strings and escaping raw
 * control characters inside strings. Returns owned text and *n. */
static char *repair(const char *t, size_t s, size_t e, size_t *n) {
  size_t cap = (e - s) * 6 + 1;
  char *o = xmalloc(cap);
  size_t k = 0;
  int in_str = 0, esc = 0;
  for (size_t i = s; i < e; i++) {
    unsigned char c = (unsigned char)t[i];
    if (in_str) {
      if (esc) {
        esc = 0;
        o[k++] = (char)c;
      } else if (c == '\\') {
        esc = 1;
        o[k++] = (char)c;
      } else if (c == '"') {
        in_str = 0;
        o[k++] = (char)c;
      } else if (c < 0x20) {
        if (c == '\n') o[k++] = '\\', o[k++] = 'n';
        else if (c == '\r') o[k++] = '\\', o[k++] = 'r';
        else if (c == '\t') o[k++] = '\\', o[k++] = 't';
        else k += (size_t)snprintf(o + k, cap - k, "\\u%04x", c);
      } else {
        o[k++] = (char)c;
      }
      continue;
    }
    if (c == '"') in_str = 1;
    if (c == ',') {
      size_t j = skip_ws(t, i + 1, e);
      if (j < e && (t[j] == '}' || t[j] == ']')) continue;
    }
    o[k++] = (char)c;
  }
  o[k] = 0;
  *n = k;
  return o;
}

static int has_keys(const json_t *v, const char *const *keys) {
  if (!json_is_object(v)) return 0;
  for (int i = 0; keys[i]; i++)
    if (!json_object_get(v, keys[i])) return 0;
  return 1;
}

/* v itself or one of its object members (one level) that has all keys;
 * borrowed, or NULL. */
static json_t *find_keyed(json_t *v, const char *const *keys) {
  if (has_keys(v, keys)) return v;
  if (json_is_object(v)) {
    const char *k;
    json_t *m;
    json_object_foreach(v, k, m) {
      if (has_keys(m, keys)) return m;
    }
  }
  return NULL;
}

/* Write a short quoted excerpt of t (whitespace collapsed, UTF-8 safe). */
static void excerpt(const char *t, size_t len, char *out, size_t outlen, size_t maxbytes) {
  size_t k = 0, i = skip_ws(t, 0, len);
  int space = 0;
  if (outlen == 0) return;
  while (i < len && k + 5 < outlen && k < maxbytes) {
    unsigned char c = (unsigned char)t[i];
    if (is_ws((char)c)) {
      space = 1;
      i++;
      continue;
    }
    if (space) {
      out[k++] = ' ';
      space = 0;
      continue;
    }
    if (c < 0x20 || c == 0x7f) {
      out[k++] = '?';
      i++;
      continue;
    }
    size_t cl = 1;
    if (c >= 0xF0) cl = 4;
    else if (c >= 0xE0) cl = 3;
    else if (c >= 0xC0) cl = 2;
    if (i + cl > len || k + cl + 4 >= outlen) break;
    int ok = 1;
    for (size_t q = 1; q < cl; q++)
      if (((unsigned char)t[i + q] & 0xC0) != 0x80) ok = 0;
    if (!ok || (c >= 0x80 && c < 0xC0)) {
      out[k++] = '?';
      i++;
      continue;
    }
    memcpy(out + k, t + i, cl);
    k += cl;
    i += cl;
  }
  if (skip_ws(t, i, len) < len && k + 4 <= outlen) {
    memcpy(out + k, "\xE2\x80\xA6", 3); /* "…": the text goes on */
    k += 3;
  }
  out[k] = 0;
}

/* A '{' or '[' at t[p] that looks like the start of JSON rather than prose. */
static int json_looking(const char *t, size_t p, size_t len) {
  size_t j = skip_ws(t, p + 1, len);
  if (j >= len) return 1; /* the reply ends right after it */
  char c = t[j];
  if (t[p] == '{') return c == '"' || c == '}';
  return c == '{' || c == '[' || c == '"' || c == ']' || (c >= '0' && c <= '9') || c == '-';
}

json_t *extract_json(const char *text, size_t len, const char *const *keys, int flags, char *err,
                     size_t errlen) {
  if (err && errlen) err[0] = 0;
  if (!text) len = 0;
  size_t rlen = 0;
  const char *t = extract_skip_think(text ? text : "", len, &rlen);
  size_t base = (size_t)(t - (text ? text : t));
  int think_cut = text && rlen == 0 && len > 0 && base >= len && find(text, len, "<think>") &&
                  !find(text, len, "</think>");
  if (think_cut) {
    ad_set_err(err, errlen, "reply truncated inside a <think> block (no '</think>' and no answer)");
    return NULL;
  }
  if (skip_ws(t, 0, rlen) >= rlen) {
    ad_set_err(err, errlen, "empty reply%s", base > 3 ? " after the <think> block" : "");
    return NULL;
  }
  int allow_array = (flags & EXTRACT_ALLOW_ARRAY) != 0;
  json_t *fallback = NULL;
  size_t fallback_pos = 0;
  long trunc_pos = -1, any_trunc = -1;
  char perr[400] = "";
  int starts = 0;
  size_t i = 0;
  while (i < rlen && starts < EXTRACT_MAX_STARTS) {
    size_t p = i;
    while (p < rlen && t[p] != '{' && !(allow_array && t[p] == '[')) p++;
    if (p >= rlen) break;
    starts++;
    size_t e = scan_balanced(t, p, rlen);
    if (!e) {
      if (any_trunc < 0) any_trunc = (long)p;
      if (trunc_pos < 0 && json_looking(t, p, rlen)) trunc_pos = (long)p;
      i = p + 1;
      continue;
    }
    json_error_t je;
    json_t *v = json_loadb(t + p, e - p, 0, &je);
    if (!v) {
      if (!perr[0]) {
        char near[48];
        size_t at = je.position > 0 ? (size_t)je.position : 0;
        if (at > e - p) at = e - p;
        excerpt(t + p + at, (e - p) - at, near, sizeof near, 24);
        snprintf(perr, sizeof perr, "invalid JSON at byte %zu: %s%s%s%s", base + p + at, je.text,
                 near[0] ? " (near '" : "", near, near[0] ? "')" : "");
      }
      size_t rn = 0;
      char *fixed = repair(t, p, e, &rn);
      v = json_loadb(fixed, rn, 0, &je);
      free(fixed);
    }
    if (!v) {
      i = p + 1;
      continue;
    }
    if (keys) {
      json_t *hit = find_keyed(v, keys);
      if (hit) {
        json_incref(hit);
        json_decref(v);
        json_decref(fallback);
        return hit;
      }
    }
    if (!fallback) {
      fallback = v;
      fallback_pos = p;
    } else {
      json_decref(v);
    }
    if (!keys) break;
    i = e;
  }
  if (fallback) {
    if (trunc_pos >= 0 && (size_t)trunc_pos < fallback_pos) {
      json_decref(fallback);
      ad_set_err(
          err, errlen,
          "reply truncated: unbalanced braces at byte %zu (the object opened there never closes)",
          base + (size_t)trunc_pos);
      return NULL;
    }
    return fallback;
  }
  if (trunc_pos >= 0) {
    ad_set_err(
        err, errlen,
        "reply truncated: unbalanced braces at byte %zu (the object opened there never closes)",
        base + (size_t)trunc_pos);
  } else if (perr[0]) {
    ad_set_err(err, errlen, "%s", perr);
  } else if (any_trunc >= 0) {
    ad_set_err(
        err, errlen,
        "reply truncated: unbalanced braces at byte %zu (the object opened there never closes)",
        base + (size_t)any_trunc);
  } else {
    char ex[64];
    excerpt(t, rlen, ex, sizeof ex, 40);
    ad_set_err(err, errlen, "expected a JSON object; found prose starting '%s'", ex);
  }
  return NULL;
}

json_t *extract_json_object(const char *text, const char *const *keys, char *err, size_t errlen) {
  return extract_json(text, text ? strlen(text) : 0, keys, 0, err, errlen);
}
