/* test_report_html.c - the report page's pieces: the HTML escaper (html.h) and the SVG
 * scale, tick, label and region helpers (svg.h). */
#include <criterion/criterion.h>
#include <math.h>
#include <string.h>

#include "report/html.h"
#include "report/svg.h"

#include "helpers.h"

static char *esc(const char *s) {
  struct buf b = BUF_INIT;
  cr_assert_eq(html_escape(&b, s, strlen(s)), 0);
  return buf_take(&b, NULL);
}

Test(report_html, escapes_markup_and_quotes) {
  char *s = esc("<script>alert('x')</script> & \"q\"");
  cr_assert_str_eq(s, "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;");
  free(s);
  s = esc("<img src=x onerror=\"alert(1)\">");
  cr_assert_str_eq(s, "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;");
  cr_assert_null(strchr(s, '<'));
  cr_assert_null(strchr(s, '"'));
  free(s);
}

Test(report_html, keeps_text_and_utf8_replaces_controls) {
  char *s = esc("plain text\tand\nlines: caf\xC3\xA9 \xE2\x9C\x93");
  cr_assert_str_eq(s, "plain text\tand\nlines: caf\xC3\xA9 \xE2\x9C\x93");
  free(s);
  s = esc(
      "a\x01"
      "b\x1f"
      "c");
  cr_assert_str_eq(s,
                   "a\xEF\xBF\xBD"
                   "b\xEF\xBF\xBD"
                   "c");
  free(s);
  s = esc("");
  cr_assert_str_eq(s, "");
  free(s);
}

Test(report_html, escape_respects_the_buffer_cap) {
  struct buf b;
  buf_init(&b, 16);
  cr_assert_eq(buf_puts(&b, "keep"), 0);
  cr_assert_eq(html_escape(&b, "<<<<<<<<", 8), AD_ETOOBIG);
  cr_assert_str_eq(buf_str(&b), "keep"); /* nothing half-written */
  buf_release(&b);
}

Test(report_html, writer_escapes_text_and_keeps_the_first_error) {
  struct html h;
  html_init(&h, 0);
  html_raw(&h, "<p>");
  html_text(&h, "<b>");
  html_textf(&h, "%d<%s", 3, "x");
  html_elem(&h, "span", "c", "a&b");
  html_text(&h, NULL);
  html_raw(&h, "</p>");
  cr_assert_eq(h.rc, 0);
  cr_assert_str_eq(buf_str(&h.b), "<p>&lt;b&gt;3&lt;x<span class=\"c\">a&amp;b</span></p>");
  html_release(&h);
  html_init(&h, 8);
  html_raw(&h, "12345");
  html_text(&h, "<<<<");
  html_raw(&h, "6");
  cr_assert_eq(h.rc, AD_ETOOBIG);
  cr_assert_str_eq(buf_str(&h.b), "12345"); /* nothing after the first failure */
  html_release(&h);
}

Test(report_svg, scale_maps_linearly_and_inverted) {
  struct svg_scale x = {0, 1, 60, 584};
  cr_assert_float_eq(svg_map(&x, 0), 60, 1e-9);
  cr_assert_float_eq(svg_map(&x, 0.5), 322, 1e-9);
  cr_assert_float_eq(svg_map(&x, 1), 584, 1e-9);
  struct svg_scale y = {0, 10, 250, 10}; /* pixels grow downwards */
  cr_assert_float_eq(svg_map(&y, 0), 250, 1e-9);
  cr_assert_float_eq(svg_map(&y, 2.5), 190, 1e-9);
  struct svg_scale z = {3, 3, 0, 100};
  cr_assert_float_eq(svg_map(&z, 3), 50, 1e-9);
}

Test(report_svg, nice_ticks_cover_the_range) {
  double t0, t1, st;
  int n = svg_ticks(0, 1, 5, &t0, &t1, &st);
  cr_assert_float_eq(st, 0.2, 1e-12);
  cr_assert_float_eq(t0, 0, 1e-12);
  cr_assert_float_eq(t1, 1, 1e-12);
  cr_assert_eq(n, 6);
  n = svg_ticks(0, 28, 5, &t0, &t1, &st);
  cr_assert_float_eq(st, 10, 1e-9);
  cr_assert_float_eq(t1, 30, 1e-9);
  cr_assert_eq(n, 4);
  n = svg_ticks(3, 97, 5, &t0, &t1, &st);
  cr_assert_float_eq(st, 20, 1e-9);
  cr_assert_float_eq(t0, 0, 1e-9);
  cr_assert_float_eq(t1, 100, 1e-9);
  n = svg_ticks(-0.37, 0.41, 4, &t0, &t1, &st);
  cr_assert_float_eq(st, 0.2, 1e-12);
  cr_assert_leq(t0, -0.37);
  cr_assert_geq(t1, 0.41);
  cr_assert_eq(n, (int)lround((t1 - t0) / st) + 1);
  n = svg_ticks(5, 5, 5, &t0, &t1, &st); /* one value: widened around it */
  cr_assert_lt(t0, 5);
  cr_assert_gt(t1, 5);
  cr_assert_geq(n, 2);
  n = svg_ticks(0, 0, 5, &t0, &t1, &st);
  cr_assert_geq(n, 2);
  cr_assert_lt(t0, t1);
  n = svg_ticks(0, 812345, 5, &t0, &t1, &st); /* steps are 1, 2 or 5 x 10^k */
  cr_assert_float_eq(st, 200000, 1e-6);
  cr_assert_float_eq(t1, 1000000, 1e-6);
}

Test(report_svg, labels_have_the_steps_precision) {
  char b[32];
  svg_label(0.4, 0.2, b, sizeof b);
  cr_assert_str_eq(b, "0.4");
  svg_label(0.15, 0.05, b, sizeof b);
  cr_assert_str_eq(b, "0.15");
  svg_label(20, 10, b, sizeof b);
  cr_assert_str_eq(b, "20");
  svg_label(-1e-17, 0.2, b, sizeof b);
  cr_assert_str_eq(b, "0.0");
  svg_label(-0.4, 0.2, b, sizeof b);
  cr_assert_str_eq(b, "-0.4");
  svg_label(800000, 200000, b, sizeof b);
  cr_assert_str_eq(b, "800k");
  svg_label(1500000, 500000, b, sizeof b);
  cr_assert_str_eq(b, "1500k");
  svg_label(3000000, 1000000, b, sizeof b);
  cr_assert_str_eq(b, "3M");
  svg_label(5000, 1000, b, sizeof b); /* below 10,000: the digits */
  cr_assert_str_eq(b, "5000");
}

static double area(const double *x, const double *y, int n) {
  double a = 0;
  for (int i = 0; i < n; i++) a += x[i] * y[(i + 1) % n] - x[(i + 1) % n] * y[i];
  return fabs(a) / 2;
}

Test(report_svg, region_is_the_square_cut_by_the_bounds) {
  double x[16], y[16];
  /* no bound: the whole square */
  int n = svg_clip_unit(NULL, 0, x, y, 16);
  cr_assert_eq(n, 4);
  cr_assert_float_eq(area(x, y, n), 1, 1e-12);
  /* weak_mean <= 0.65 and strong_mean >= 0.6 */
  struct svg_half box[] = {{1, 0, 0.65, 0}, {0, 1, 0.6, 1}};
  n = svg_clip_unit(box, 2, x, y, 16);
  cr_assert_eq(n, 4);
  cr_assert_float_eq(area(x, y, n), 0.65 * 0.4, 1e-12);
  /* gap >= 0.2: strong - weak >= 0.2, the triangle above the diagonal */
  struct svg_half gap[] = {{-1, 1, 0.2, 1}};
  n = svg_clip_unit(gap, 1, x, y, 16);
  cr_assert_eq(n, 3);
  cr_assert_float_eq(area(x, y, n), 0.8 * 0.8 / 2, 1e-12);
  for (int i = 0; i < n; i++) cr_assert_geq(y[i] - x[i], 0.2 - 1e-12);
  /* the paper's gate: the three together */
  struct svg_half gate[] = {{1, 0, 0.65, 0}, {0, 1, 0.6, 1}, {0, 1, 0.95, 0}, {-1, 1, 0.2, 1}};
  n = svg_clip_unit(gate, 4, x, y, 16);
  cr_assert_geq(n, 4);
  for (int i = 0; i < n; i++) {
    cr_assert_leq(x[i], 0.65 + 1e-12);
    cr_assert_geq(y[i], 0.6 - 1e-12);
    cr_assert_leq(y[i], 0.95 + 1e-12);
    cr_assert_geq(y[i] - x[i], 0.2 - 1e-12);
  }
  /* contradictory bounds: empty */
  struct svg_half none[] = {{1, 0, 0.3, 0}, {1, 0, 0.5, 1}};
  cr_assert_eq(svg_clip_unit(none, 2, x, y, 16), 0);
}

Test(report_svg, charts_escape_their_labels) {
  struct html h;
  html_init(&h, 0);
  const char *cats[] = {"<b>1</b>", "2"};
  const char *series[] = {"a\"<x>", "b"};
  double v[] = {1, 2, 3, 4};
  svg_bar_chart(&h,
                &(struct svg_bars){"p1", "T<itle>", "x", "y", "cap<", 2, 2, cats, series, v, 0});
  cr_assert_eq(h.rc, 0);
  const char *s = buf_str(&h.b);
  cr_assert_null(strstr(s, "<b>"));
  cr_assert_null(strstr(s, "<x>"));
  cr_assert_null(strstr(s, "<itle>"));
  cr_assert_not_null(strstr(s, "&lt;b&gt;1&lt;/b&gt;"));
  cr_assert_not_null(strstr(s, "id=\"p1\""));
  /* four bars, stacked: two categories x two series */
  size_t rects = 0;
  for (const char *p = s; (p = strstr(p, "<rect ")); p++) rects++;
  cr_assert_eq(rects, 4);
  html_release(&h);
}
