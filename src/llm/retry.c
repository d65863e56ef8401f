/* retry.c - backoff, Retry-After, URL selection, AIMD and token buckets (pure). */
#include "llm/retry.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int64_t llm_backoff_ms(struct rng *r, int attempt, int64_t base_ms, int64_t max_ms) {
  if (base_ms < 0) base_ms = 0;
  if (max_ms < 0) max_ms = 0;
  if (attempt < 0) attempt = 0;
  int64_t cap = base_ms;
  for (int i = 0; i < attempt && cap < max_ms; i++) cap *= 2;
  if (cap > max_ms) cap = max_ms;
  if (cap <= 0) return 0;
  return (int64_t)rng_below(r, (uint64_t)cap + 1);
}

static const char *const months[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                     "jul", "aug", "sep", "oct", "nov", "dec"};

/* 0..11 for a three-letter month name (any case), -1 for none. */
static int month_index(const char *s) {
  for (int i = 0; i < 12; i++)
    if (!strncasecmp(s, months[i], 3)) return i;
  return -1;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

int llm_parse_retry_after(const char *value, time_t now, int64_t *ms) {
  if (!value) return AD_EPARSE;
  while (*value == ' ' || *value == '\t') value++;
  if (!*value) return AD_EPARSE;
  if (isdigit((unsigned char)*value)) {
    char *end;
    double s = strtod(value, &end);
    while (*end == ' ' || *end == '\t' || *end == '\r' || *end == '\n') end++;
    if (*end || s < 0 || s > 1e9) return AD_EPARSE;
    *ms = (int64_t)(s * 1000.0 + 0.5);
    return 0;
  }
  /* HTTP-date. Skip the weekday ("Wed," / "Wednesday," / "Wed "). */
  const char *p = value;
  while (*p && isalpha((unsigned char)*p)) p++;
  if (*p == ',') p++;
  while (*p == ' ') p++;
  int day = 0, year = 0, hh = 0, mm = 0, ss = 0, mon = -1;
  char mname[4] = {0};
  if (sscanf(p, "%d %3s %d %d:%d:%d", &day, mname, &year, &hh, &mm, &ss) == 6) {
    mon = month_index(mname); /* IMF-fixdate: 21 Oct 2015 07:28:00 GMT */
  } else if (sscanf(p, "%d-%3s-%d %d:%d:%d", &day, mname, &year, &hh, &mm, &ss) == 6) {
    mon = month_index(mname); /* RFC 850: 21-Oct-15 07:28:00 GMT */
    if (year < 100) year += year < 70 ? 2000 : 1900;
  } else if (sscanf(p, "%3s %d %d:%d:%d %d", mname, &day, &hh, &mm, &ss, &year) == 6) {
    mon = month_index(mname); /* asctime: Oct 21 07:28:00 2015 */
  } else {
    return AD_EPARSE;
  }
  if (mon < 0 || day < 1 || day > 31 || hh > 23 || mm > 59 || ss > 60 || year < 1970 ||
      year > 9999 || hh < 0 || mm < 0 || ss < 0)
    return AD_EPARSE;
  int64_t t = days_from_civil(year, mon + 1, day) * 86400 + hh * 3600 + mm * 60 + ss;
  int64_t d = t - (int64_t)now;
  *ms = d > 0 ? d * 1000 : 0;
  return 0;
}

int llm_pick_url(const struct llm_url_state *u, int n, int64_t now_ms, unsigned rr, int avoid) {
  if (n <= 0) return -1;
  int n_up = 0;
  for (int i = 0; i < n; i++)
    if (u[i].down_until_ms <= now_ms) n_up++;
  if (n_up == 0) {
    int best = 0;
    for (int i = 1; i < n; i++)
      if (u[i].down_until_ms < u[best].down_until_ms) best = i;
    return best;
  }
  int best = -1;
  for (int k = 0; k < n; k++) {
    int i = (int)((rr + (unsigned)k) % (unsigned)n);
    if (u[i].down_until_ms > now_ms) continue;
    if (i == avoid && n_up > 1) continue;
    if (best < 0 || u[i].outstanding < u[best].outstanding) best = i;
  }
  return best;
}

int64_t llm_down_cooloff_ms(int consecutive) {
  if (consecutive < 1) consecutive = 1;
  int64_t ms = 2000;
  for (int i = 1; i < consecutive && ms < 60000; i++) ms *= 2;
  return ms > 60000 ? 60000 : ms;
}

void llm_aimd_init(struct llm_aimd *a, int max, int adaptive) {
  if (max < 1) max = 1;
  a->max = max;
  a->limit = adaptive ? (max < 16 ? max : 16) : max;
  a->successes = 0;
  a->epoch = 0;
}

void llm_aimd_success(struct llm_aimd *a) {
  if (a->limit >= a->max) return;
  if (++a->successes >= a->limit) {
    a->limit++;
    a->successes = 0;
  }
}

int llm_aimd_overload(struct llm_aimd *a, unsigned epoch) {
  if (epoch != a->epoch) return 0;
  a->epoch++;
  a->successes = 0;
  a->limit = a->limit / 2;
  if (a->limit < 1) a->limit = 1;
  return 1;
}

static void bucket_refill(struct llm_bucket *b, int64_t now_ms) {
  if (now_ms > b->last_ms) {
    b->level += b->rate_per_min * (double)(now_ms - b->last_ms) / 60000.0;
    if (b->level > b->cap) b->level = b->cap;
    b->last_ms = now_ms;
  }
}

void llm_bucket_init(struct llm_bucket *b, double rate_per_min, int64_t now_ms) {
  b->rate_per_min = rate_per_min > 0 ? rate_per_min : 0;
  /* Burst: a tenth of a minute's budget, at least one unit. */
  b->cap = b->rate_per_min / 10.0;
  if (b->cap < 1) b->cap = 1;
  b->level = b->cap;
  b->last_ms = now_ms;
}

int64_t llm_bucket_take(struct llm_bucket *b, double cost, int64_t now_ms) {
  if (b->rate_per_min <= 0) return 0;
  bucket_refill(b, now_ms);
  double need = cost < b->cap ? cost : b->cap;
  if (b->level >= need) {
    b->level -= cost;
    return 0;
  }
  double ms = (need - b->level) * 60000.0 / b->rate_per_min;
  return ms < 1 ? 1 : (int64_t)ms + 1;
}

void llm_bucket_adjust(struct llm_bucket *b, double delta, int64_t now_ms) {
  if (b->rate_per_min <= 0) return;
  bucket_refill(b, now_ms);
  b->level += delta;
  if (b->level > b->cap) b->level = b->cap;
}

void llm_sanitize(const char *s, size_t n, char *out, size_t cap) {
  if (!cap) return;
  size_t j = 0;
  for (size_t i = 0; i < n && j + 1 < cap; i++) {
    unsigned char ch = (unsigned char)s[i];
    if (ch == '\n' || ch == '\r' || ch == '\t') out[j++] = ' ';
    else if (ch < 0x20 || ch >= 0x7f) out[j++] = '?';
    else out[j++] = (char)ch;
  }
  out[j] = 0;
}
