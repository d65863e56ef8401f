/* html.c - escaped HTML into a buffer (html.h). */
#include "report/html.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

void html_init(struct html *h, size_t limit) {
  buf_init(&h->b, limit);
  h->rc = 0;
  h->spill = NULL;
  h->spill_ud = NULL;
}

void html_release(struct html *h) {
  buf_release(&h->b);
  h->rc = 0;
}

int html_escape(struct buf *out, const char *s, size_t n) {
  size_t before = out->len;
  size_t run = 0; /* start of the bytes that need no escape */
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    const char *rep = NULL;
    switch (c) {
    case '&': rep = "&amp;"; break;
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '"': rep = "&quot;"; break;
    case '\'': rep = "&#39;"; break;
    default:
      if (c < 0x20 && c != '\t' && c != '\n' && c != '\r') rep = "\xEF\xBF\xBD";
    }
    if (!rep) continue;
    rc = buf_append(out, s + run, i - run);
    if (!rc) rc = buf_puts(out, rep);
    run = i + 1;
  }
  if (!rc) rc = buf_append(out, s + run, n - run);
  if (rc) { /* keep what out had */
    out->len = before;
    out->data[before] = '\0';
  }
  return rc;
}

static void keep(struct html *h, int rc) {
  if (rc && !h->rc) h->rc = rc;
  if (!h->rc && h->spill && h->b.len >= HTML_SPILL) {
    h->rc = h->spill(h->spill_ud, h->b.data, h->b.len);
    buf_reset(&h->b);
  }
}

void html_text(struct html *h, const char *s) {
  if (s && !h->rc) keep(h, html_escape(&h->b, s, strlen(s)));
}

void html_textf(struct html *h, const char *fmt, ...) {
  if (h->rc) return;
  va_list ap;
  va_start(ap, fmt);
  struct buf t = BUF_INIT;
  int rc = buf_vprintf(&t, fmt, ap);
  va_end(ap);
  if (!rc) rc = html_escape(&h->b, t.data, t.len);
  keep(h, rc);
  buf_release(&t);
}

void html_raw(struct html *h, const char *s) {
  if (s && !h->rc) keep(h, buf_puts(&h->b, s));
}

void html_rawf(struct html *h, const char *fmt, ...) {
  if (h->rc) return;
  va_list ap;
  va_start(ap, fmt);
  keep(h, buf_vprintf(&h->b, fmt, ap));
  va_end(ap);
}

void html_elem(struct html *h, const char *tag, const char *cls, const char *text) {
  if (cls) html_rawf(h, "<%s class=\"%s\">", tag, cls);
  else html_rawf(h, "<%s>", tag);
  html_text(h, text);
  html_rawf(h, "</%s>", tag);
}
