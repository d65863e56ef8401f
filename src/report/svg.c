/* svg.c - inline SVG plots (svg.h). */
#include "report/svg.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/mem.h"

/* ---- pure helpers ---- */

double svg_map(const struct svg_scale *s, double v) {
  double span = s->d1 - s->d0;
  if (span == 0 || !isfinite(span)) return (s->r0 + s->r1) / 2;
  return s->r0 + (v - s->d0) / span * (s->r1 - s->r0);
}

int svg_ticks(double lo, double hi, int max_ticks, double *t0, double *t1, double *step) {
  if (!isfinite(lo) || !isfinite(hi)) lo = 0, hi = 1;
  if (lo > hi) {
    double t = lo;
    lo = hi;
    hi = t;
  }
  if (hi - lo <= 0) {
    double d = lo != 0 ? fabs(lo) * 0.1 : 1;
    lo -= d;
    hi += d;
  }
  if (max_ticks < 1) max_ticks = 1;
  double raw = (hi - lo) / max_ticks;
  double mag = pow(10, floor(log10(raw)));
  double f = raw / mag;
  double st = (f <= 1 + 1e-9 ? 1 : f <= 2 + 1e-9 ? 2 : f <= 5 + 1e-9 ? 5 : 10) * mag;
  double a = floor(lo / st + 1e-9) * st, b = ceil(hi / st - 1e-9) * st;
  if (b <= a) b = a + st;
  *t0 = a;
  *t1 = b;
  *step = st;
  return (int)lround((b - a) / st) + 1;
}

void svg_label(double v, double step, char *out, size_t n) {
  const char *unit = "";
  if (step >= 1e6) v /= 1e6, step /= 1e6, unit = "M";
  else if (step >= 1e3 && fabs(v) >= 1e4) v /= 1e3, step /= 1e3, unit = "k";
  int dec = 0;
  if (step > 0 && step < 1) dec = (int)ceil(-log10(step) - 1e-9);
  if (dec > 9) dec = 9;
  if (fabs(v) < step * 1e-6) v = 0;
  snprintf(out, n, "%.*f%s", dec, v, unit);
  size_t digits = strlen(out) - strlen(unit); /* "-0.00" (a tiny negative) is "0.00" */
  if (out[0] == '-' && strspn(out + 1, "0.") == digits - 1) memmove(out, out + 1, strlen(out));
}

static int inside(const struct svg_half *h, double x, double y) {
  double v = h->a * x + h->b * y;
  return h->ge ? v >= h->c - 1e-12 : v <= h->c + 1e-12;
}

int svg_clip_unit(const struct svg_half *halves, int n, double *xs, double *ys, int cap) {
  if (cap < 4) return 0;
  int m = 4, size = cap;
  double *ax = xmalloc(sizeof *ax * (size_t)size), *ay = xmalloc(sizeof *ay * (size_t)size);
  double *bx = xmalloc(sizeof *bx * (size_t)size), *by = xmalloc(sizeof *by * (size_t)size);
  static const double sx[4] = {0, 1, 1, 0}, sy[4] = {0, 0, 1, 1};
  memcpy(ax, sx, sizeof sx);
  memcpy(ay, sy, sizeof sy);
  for (int k = 0; k < n && m > 0; k++) {
    const struct svg_half *h = &halves[k];
    int o = 0;
    for (int i = 0; i < m; i++) {
      double px = ax[i], py = ay[i], qx = ax[(i + 1) % m], qy = ay[(i + 1) % m];
      int pin = inside(h, px, py), qin = inside(h, qx, qy);
      if (pin && o < size) bx[o] = px, by[o++] = py;
      if (pin != qin && o < size) {
        double vp = h->a * px + h->b * py - h->c, vq = h->a * qx + h->b * qy - h->c;
        double t = vp / (vp - vq);
        bx[o] = px + t * (qx - px);
        by[o++] = py + t * (qy - py);
      }
    }
    m = o;
    double *t = ax;
    ax = bx, bx = t;
    t = ay, ay = by, by = t;
  }
  if (m > cap) m = cap;
  memcpy(xs, ax, sizeof *xs * (size_t)m);
  memcpy(ys, ay, sizeof *ys * (size_t)m);
  free(ax), free(ay), free(bx), free(by);
  return m < 3 ? 0 : m;
}

/* ---- drawing ---- */

static const char *const palette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                      "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
#define NPAL ((int)(sizeof palette / sizeof *palette))

enum { W = 600, H = 310, ML = 60, MR = 16, MT = 12, MB = 66 };

struct frame {
  struct svg_scale x, y;
  double ystep, xstep;
};

static void fig_begin(struct html *h, const char *id, const char *title) {
  html_raw(h, "<figure class=\"plot\" id=\"");
  html_text(h, id);
  html_raw(h, "\"><h3>");
  html_text(h, title);
  html_rawf(h, "</h3><svg viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"", W, H);
  html_text(h, title);
  html_raw(h, "\" xmlns=\"http://www.w3.org/2000/svg\">");
}

static void legend(struct html *h, int n, const char *const *names, int first_color) {
  if (n < 1 || !names) return;
  html_raw(h, "<div class=\"legend\">");
  for (int s = 0; s < n; s++) {
    if (!names[s]) continue;
    html_rawf(h, "<span><i style=\"background:%s\"></i>", palette[(first_color + s) % NPAL]);
    html_text(h, names[s]);
    html_raw(h, "</span>");
  }
  html_raw(h, "</div>");
}

/* after the chart's </svg> (and legend) */
static void fig_end(struct html *h, const char *caption) {
  if (caption) {
    html_raw(h, "<figcaption>");
    html_text(h, caption);
    html_raw(h, "</figcaption>");
  }
  html_raw(h, "</figure>\n");
}

/* y axis with grid lines from lo to hi; percent labels when percent */
static void y_axis(struct html *h, struct frame *f, double lo, double hi, int percent,
                   const char *label) {
  double t0, t1, st;
  int n = svg_ticks(lo, hi, 5, &t0, &t1, &st);
  f->y = (struct svg_scale){t0, t1, H - MB, MT};
  f->ystep = st;
  for (int i = 0; i < n; i++) {
    double v = t0 + i * st;
    double py = svg_map(&f->y, v);
    char lab[32];
    if (percent) {
      svg_label(v * 100, st * 100, lab, sizeof lab);
      strcat(lab, "%");
    } else {
      svg_label(v, st, lab, sizeof lab);
    }
    html_rawf(h,
              "<line class=\"grid\" x1=\"%d\" x2=\"%d\" y1=\"%.1f\" y2=\"%.1f\"/>"
              "<text class=\"tick\" x=\"%d\" y=\"%.1f\" text-anchor=\"end\">%s</text>",
              ML, W - MR, py, py, ML - 6, py + 4, lab);
  }
  html_rawf(h,
            "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>"
            "<text class=\"label\" transform=\"translate(14 %d) rotate(-90)\" "
            "text-anchor=\"middle\">",
            ML, ML, MT, H - MB, (MT + H - MB) / 2);
  html_text(h, label);
  html_raw(h, "</text>");
}

static void x_axis_numeric(struct html *h, struct frame *f, double lo, double hi, int integer,
                           const char *label) {
  double t0, t1, st;
  int n = svg_ticks(lo, hi, 6, &t0, &t1, &st);
  if (integer && st < 1) /* whole numbers only: one tick per value */
    n = svg_ticks(floor(lo), ceil(hi), (int)(ceil(hi) - floor(lo)), &t0, &t1, &st);
  f->x = (struct svg_scale){t0, t1, ML, W - MR};
  f->xstep = st;
  for (int i = 0; i < n; i++) {
    double v = t0 + i * st;
    double px = svg_map(&f->x, v);
    char lab[32];
    svg_label(v, st, lab, sizeof lab);
    html_rawf(h,
              "<line class=\"grid\" x1=\"%.1f\" x2=\"%.1f\" y1=\"%d\" y2=\"%d\"/>"
              "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">%s</text>",
              px, px, MT, H - MB, px, H - MB + 16, lab);
  }
  html_rawf(h, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>", ML, W - MR, H - MB,
            H - MB);
  html_rawf(h, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">", (ML + W - MR) / 2,
            H - 8);
  html_text(h, label);
  html_raw(h, "</text>");
}

void svg_bar_chart(struct html *h, const struct svg_bars *c) {
  fig_begin(h, c->id, c->title);
  int nc = c->n_cats > 0 ? c->n_cats : 0, ns = c->n_series > 0 ? c->n_series : 1;
  double top = 0;
  for (int k = 0; k < nc; k++) {
    double sum = 0;
    for (int s = 0; s < ns; s++) {
      double v = c->values[s * nc + k];
      if (isfinite(v) && v > 0) sum += v;
    }
    if (sum > top) top = sum;
  }
  if (c->percent) top = 1;
  if (top <= 0) top = 1;
  struct frame f;
  y_axis(h, &f, 0, top, c->percent, c->y_label);
  double band = (double)(W - MR - ML) / (nc ? nc : 1);
  int every = nc > 24 ? (nc + 23) / 24 : 1;
  size_t longest = 0;
  for (int k = 0; k < nc; k++)
    if (c->cats[k] && strlen(c->cats[k]) > longest) longest = strlen(c->cats[k]);
  int rotate = every == 1 && (double)longest * 6.5 > band * 0.95;
  for (int k = 0; k < nc; k++) {
    double x = ML + band * k + band * 0.15, bw = band * 0.7, base = 0;
    for (int s = 0; s < ns; s++) {
      double v = c->values[s * nc + k];
      if (!isfinite(v) || v <= 0) continue;
      double y1 = svg_map(&f.y, base), y2 = svg_map(&f.y, base + v);
      base += v;
      html_rawf(h,
                "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
                "<title>",
                x, y2, bw, y1 - y2, palette[s % NPAL]);
      html_text(h, c->cats[k]);
      if (ns > 1 && c->series && c->series[s]) {
        html_raw(h, " \xC2\xB7 ");
        html_text(h, c->series[s]);
      }
      if (c->percent) html_rawf(h, ": %.1f%%", v * 100);
      else html_rawf(h, ": %g", v);
      html_raw(h, "</title></rect>");
    }
    if (k % every) continue;
    double cx = ML + band * (k + 0.5);
    if (rotate)
      html_rawf(h,
                "<text class=\"tick\" text-anchor=\"end\" "
                "transform=\"translate(%.1f %d) rotate(-35)\">",
                cx + 3, H - MB + 12);
    else
      html_rawf(h, "<text class=\"tick\" x=\"%.1f\" y=\"%d\" text-anchor=\"middle\">", cx,
                H - MB + 16);
    html_text(h, c->cats[k]);
    html_raw(h, "</text>");
  }
  html_rawf(h, "<line class=\"axis\" x1=\"%d\" x2=\"%d\" y1=\"%d\" y2=\"%d\"/>", ML, W - MR, H - MB,
            H - MB);
  if (!rotate) {
    html_rawf(h, "<text class=\"label\" x=\"%d\" y=\"%d\" text-anchor=\"middle\">",
              (ML + W - MR) / 2, H - 8);
    html_text(h, c->x_label);
    html_raw(h, "</text>");
  }
  html_raw(h, "</svg>");
  if (ns > 1) legend(h, ns, c->series, 0);
  fig_end(h, c->caption);
}

void svg_scatter_chart(struct html *h, const struct svg_scatter *c) {
  fig_begin(h, c->id, c->title);
  struct frame f;
  y_axis(h, &f, 0, 1, 0, c->y_label);
  x_axis_numeric(h, &f, 0, 1, 0, c->x_label);
  if (c->nr >= 3) {
    html_raw(h, "<polygon class=\"region\" points=\"");
    for (int i = 0; i < c->nr; i++)
      html_rawf(h, "%s%.1f,%.1f", i ? " " : "", svg_map(&f.x, c->rx[i]), svg_map(&f.y, c->ry[i]));
    html_raw(h, "\"><title>");
    html_text(h, c->region_name);
    html_raw(h, "</title></polygon>");
  }
  /* rejected first, so accepted points stay visible on top */
  for (int pass = 0; pass < 2; pass++) {
    html_rawf(h, "<g class=\"pts%d\">", pass);
    for (size_t i = 0; i < c->n; i++) {
      if ((c->cls[i] ? 1 : 0) != pass || !isfinite(c->x[i]) || !isfinite(c->y[i])) continue;
      html_rawf(h, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\"/>", svg_map(&f.x, c->x[i]),
                svg_map(&f.y, c->y[i]));
    }
    html_raw(h, "</g>");
  }
  html_raw(h, "</svg><div class=\"legend\">");
  html_raw(h, "<span><i class=\"pts0\"></i>");
  html_text(h, c->cls_names[0]);
  html_raw(h, "</span><span><i class=\"pts1\"></i>");
  html_text(h, c->cls_names[1]);
  html_raw(h, "</span>");
  if (c->nr >= 3) {
    html_raw(h, "<span><i class=\"region\"></i>");
    html_text(h, c->region_name);
    html_raw(h, "</span>");
  }
  html_raw(h, "</div>");
  fig_end(h, c->caption);
}

void svg_line_chart(struct html *h, const struct svg_lines *c) {
  fig_begin(h, c->id, c->title);
  double xlo = INFINITY, xhi = -INFINITY, ylo = INFINITY, yhi = -INFINITY;
  for (int s = 0; s < c->n_series; s++)
    for (int i = 0; i < c->n[s]; i++) {
      if (!isfinite(c->x[s][i]) || !isfinite(c->y[s][i])) continue;
      if (c->x[s][i] < xlo) xlo = c->x[s][i];
      if (c->x[s][i] > xhi) xhi = c->x[s][i];
      if (c->y[s][i] < ylo) ylo = c->y[s][i];
      if (c->y[s][i] > yhi) yhi = c->y[s][i];
    }
  if (xlo > xhi) xlo = 0, xhi = 1;
  if (c->y_unit || ylo > yhi) ylo = 0, yhi = 1;
  struct frame f;
  y_axis(h, &f, ylo, yhi, 0, c->y_label);
  x_axis_numeric(h, &f, xlo, xhi, c->x_integer, c->x_label);
  for (int s = 0; s < c->n_series; s++) {
    const char *col = palette[s % NPAL];
    html_rawf(h, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", col);
    int first = 1;
    for (int i = 0; i < c->n[s]; i++) {
      if (!isfinite(c->x[s][i]) || !isfinite(c->y[s][i])) continue;
      html_rawf(h, "%s%.1f,%.1f", first ? "" : " ", svg_map(&f.x, c->x[s][i]),
                svg_map(&f.y, c->y[s][i]));
      first = 0;
    }
    html_raw(h, "\"/>");
    if (c->n[s] > 60) continue; /* markers only where they stay readable */
    for (int i = 0; i < c->n[s]; i++) {
      if (!isfinite(c->x[s][i]) || !isfinite(c->y[s][i])) continue;
      html_rawf(h, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3\" fill=\"%s\"><title>",
                svg_map(&f.x, c->x[s][i]), svg_map(&f.y, c->y[s][i]), col);
      if (c->series && c->series[s]) html_text(h, c->series[s]);
      html_rawf(h, " (%g, %.3f)</title></circle>", c->x[s][i], c->y[s][i]);
    }
  }
  html_raw(h, "</svg>");
  legend(h, c->n_series, c->series, 0);
  fig_end(h, c->caption);
}
