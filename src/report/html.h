/* html.h - writing HTML into a buffer: escaped text, trusted markup, one sticky error.
 *
 * Every string that came from a store (model replies, source titles, reasons, recipe
 * values) goes through html_text() / html_escape(), which escape & < > " ' so that the
 * text can sit in element content or in a double- or single-quoted attribute value and
 * never becomes markup: a reply holding "<script>" or an onerror attribute renders as
 * text. C0 control characters other than tab, newline and carriage return (not allowed
 * in HTML text) become U+FFFD. html_raw()/html_rawf() are for markup the program
 * itself writes (tags, numbers); never pass stored text to them.
 *
 * struct html keeps the first append error (AD_ETOOBIG past the buffer's limit), so a
 * writer appends freely and checks h->rc once at the end.
 */
#ifndef AD_REPORT_HTML_H
#define AD_REPORT_HTML_H

#include <stddef.h>

#include "util/buf.h"
#include "util/err.h"

struct html {
  struct buf b;
  int rc; /* the first append error, 0 while none */
  /* optional: past HTML_SPILL bytes the buffer is handed to spill (a file being written) and
   * emptied, so a page of any size takes a bounded buffer; its error sticks in rc */
  int (*spill)(void *ud, const char *p, size_t n);
  void *spill_ud;
};
#define HTML_SPILL (1u << 20)

/* An empty writer whose buffer holds at most limit bytes (0 = AD_BUF_DEFAULT_CAP). */
void html_init(struct html *h, size_t limit);
/* Free the buffer (the writer can be initialised again). */
void html_release(struct html *h);

/* Append s[0..n) escaped to out: 0 or AD_ETOOBIG (out keeps what it had). */
AD_WUR int html_escape(struct buf *out, const char *s, size_t n);

/* Escaped text; NULL appends nothing. */
void html_text(struct html *h, const char *s);
/* Formatted, then escaped. */
void html_textf(struct html *h, const char *fmt, ...) AD_PRINTF(2, 3);
/* Trusted markup, as it is. */
void html_raw(struct html *h, const char *s);
void html_rawf(struct html *h, const char *fmt, ...) AD_PRINTF(2, 3);
/* <tag class="cls">escaped text</tag>; tag and cls are markup (cls may be NULL). */
void html_elem(struct html *h, const char *tag, const char *cls, const char *text);

#endif
