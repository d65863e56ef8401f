/* svg.h - the report's plots as inline SVG, drawn by our own code.
 *
 * The pieces are pure and tested on their own (tests/unit/test_report_html.c):
 *   a linear scale (domain -> pixels), "nice" axis ticks (steps of 1, 2 or 5 times a power
 *   of ten covering the data range), tick labels with as many decimals as the step needs,
 *   and the clipping of the unit square by half-planes (the acceptance region of the weak
 *   vs strong scatter is the square cut by the recipe's linear bounds).
 * The charts (bars, stacked bars, scatter with a region, lines) write one
 * <figure id=ID><svg viewBox=...>...</svg><figcaption>...</figcaption></figure> into an
 * html writer; every label is escaped (html.h). Series take the colours of a fixed
 * palette in order; a legend names them.
 */
#ifndef AD_REPORT_SVG_H
#define AD_REPORT_SVG_H

#include <stddef.h>

#include "report/html.h"

struct svg_scale {
  double d0, d1; /* domain */
  double r0, r1; /* range (pixels) */
};
/* v mapped linearly from [d0,d1] onto [r0,r1]; a zero-width domain maps to the middle. */
double svg_map(const struct svg_scale *s, double v);

/* Nice ticks for the data range [lo,hi] with about max_ticks intervals: step gets the
 * step (1, 2 or 5 x 10^k), t0 and t1 the first and last tick (t0 <= lo, t1 >= hi, both
 * multiples of step). Returns the number of ticks (t1 - t0) / step + 1 (>= 2). lo == hi
 * widens the range around the value; max_ticks < 1 counts as 1. */
int svg_ticks(double lo, double hi, int max_ticks, double *t0, double *t1, double *step);

/* A tick label for v on an axis whose step is step, with exactly as many decimals as the
 * step has (step 0.05 -> 2, step 5 -> 0) and "-0" as "0"; thousands ("20k", for values
 * from 10,000 on an axis stepping by 1,000 or more) and millions ("1.5M", step >= 10^6)
 * keep labels short. */
void svg_label(double v, double step, char *out, size_t n);

/* Half-plane a*x + b*y <= c (or >= c when ge). */
struct svg_half {
  double a, b, c;
  int ge;
};
/* The unit square [0,1]^2 cut by halves[0..n): the polygon's vertices in (xs, ys), at
 * most cap (>= 4 + n is always enough). Returns the vertex count, 0 when empty. */
int svg_clip_unit(const struct svg_half *halves, int n, double *xs, double *ys, int cap);

/* ---- charts ---- */

/* Bars over categories: values[s * n_cats + c] for series s and category c. Stacked
 * when n_series > 1. y_label names the value axis. */
struct svg_bars {
  const char *id, *title, *x_label, *y_label, *caption;
  int n_cats, n_series;
  const char *const *cats;   /* category labels */
  const char *const *series; /* series names (legend; NULL names for one series) */
  const double *values;
  int percent; /* values are fractions in [0,1]: the axis shows 0..100% */
};
void svg_bar_chart(struct html *h, const struct svg_bars *c);

/* Points (x[i], y[i]) in [0,1]^2, cls[i] 0 or 1 (e.g. rejected / accepted), with the
 * polygon (rx, ry)[0..nr) drawn under them as the shaded region. */
struct svg_scatter {
  const char *id, *title, *x_label, *y_label, *caption;
  const char *cls_names[2];
  size_t n;
  const double *x, *y;
  const unsigned char *cls;
  int nr;
  const double *rx, *ry;
  const char *region_name;
};
void svg_scatter_chart(struct html *h, const struct svg_scatter *c);

/* Lines: series s has n[s] points (x[s][i], y[s][i]); markers on every point. */
struct svg_lines {
  const char *id, *title, *x_label, *y_label, *caption;
  int n_series;
  const char *const *series;
  const int *n;
  const double *const *x, *const *y;
  int y_unit;    /* 1: the y axis is fixed to [0,1] */
  int x_integer; /* 1: x takes whole numbers (ticks at whole numbers only) */
};
void svg_line_chart(struct html *h, const struct svg_lines *c);

#endif
