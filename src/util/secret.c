/* secret.c - the registry of secret values and the scrub (secret.h). */
#include "util/secret.h"

#include <ctype.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/mem.h"

extern char **environ;

static char *g_vals[SECRET_MAX];
static size_t g_lens[SECRET_MAX];
static size_t g_n;
static int g_dropped;

void secret_add(const char *value) {
  if (!value) return;
  size_t n = strlen(value);
  if (n < SECRET_MIN_LEN) return;
  for (size_t i = 0; i < g_n; i++)
    if (g_lens[i] == n && !memcmp(g_vals[i], value, n)) return;
  if (g_n == SECRET_MAX) {
    if (!g_dropped++)
      fprintf(stderr, "autodata: warning: more than %d secret values; the rest are not scrubbed\n",
              SECRET_MAX);
    return;
  }
  /* Longest first: a value that contains another is masked whole. */
  size_t at = g_n;
  while (at > 0 && g_lens[at - 1] < n) {
    g_vals[at] = g_vals[at - 1];
    g_lens[at] = g_lens[at - 1];
    at--;
  }
  g_vals[at] = xstrdup(value);
  g_lens[at] = n;
  g_n++;
}

int secret_name(const char *name, size_t len) {
  static const char *const pats[] = {"KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"};
  for (size_t p = 0; p < sizeof pats / sizeof *pats; p++) {
    size_t pl = strlen(pats[p]);
    for (size_t i = 0; i + pl <= len; i++)
      if (!strncasecmp(name + i, pats[p], pl)) return 1;
  }
  return 0;
}

void secret_add_env(void) {
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (!eq || !secret_name(*e, (size_t)(eq - *e))) continue;
    if (strlen(eq + 1) >= 8) secret_add(eq + 1); /* a guess by name: only key-sized values */
  }
}

int secret_looks_like_key(const char *s) {
  static const char *const prefixes[] = {"sk-",  "sk_",         "hf_",    "gsk_", "xai-", "AIza",
                                         "ghp_", "github_pat_", "glpat-", "pk-",  "rk_"};
  for (size_t i = 0; i < sizeof prefixes / sizeof *prefixes; i++)
    if (!strncmp(s, prefixes[i], strlen(prefixes[i])) && strlen(s) > strlen(prefixes[i]) + 8)
      return 1;
  size_t n = strlen(s), lower = 0, digit = 0;
  for (size_t i = 0; i < n; i++) {
    lower += islower((unsigned char)s[i]) != 0;
    digit += isdigit((unsigned char)s[i]) != 0;
  }
  return n >= 20 && lower >= 4 && digit >= 3;
}

size_t secret_count(void) { return g_n; }

void secret_clear(void) {
  for (size_t i = 0; i < g_n; i++) {
    memset(g_vals[i], 0, g_lens[i]);
    free(g_vals[i]);
  }
  g_n = 0;
  g_dropped = 0;
}

/* The first registered value in s[0..n), longest first at one position. */
static const char *first_hit(const char *s, size_t n, size_t *which) {
  const char *best = NULL;
  for (size_t i = 0; i < g_n; i++) {
    const char *h = memmem(s, n, g_vals[i], g_lens[i]);
    if (h && (!best || h < best)) {
      best = h;
      *which = i;
    }
  }
  return best;
}

char *secret_scrub(const char *s, size_t n, size_t *out_len) {
  size_t w = 0;
  if (!g_n || !s || !first_hit(s, n, &w)) return NULL;
  struct buf b;
  buf_init(&b, SIZE_MAX / 2);
  const char *p = s, *end = s + n, *h;
  while (p < end && (h = first_hit(p, (size_t)(end - p), &w))) {
    if (buf_append(&b, p, (size_t)(h - p)) || buf_puts(&b, SECRET_MASK)) abort(); /* no limit */
    p = h + g_lens[w];
  }
  if (buf_append(&b, p, (size_t)(end - p))) abort();
  size_t len;
  char *out = buf_take(&b, &len);
  if (out_len) *out_len = len;
  return out;
}

void secret_scrub_buf(struct buf *b) {
  size_t len;
  char *s = secret_scrub(b->data, b->len, &len);
  if (!s) return;
  size_t limit = b->limit;
  buf_release(b);
  b->data = s;
  b->len = len;
  b->cap = len + 1;
  b->limit = limit && limit < len ? len : limit;
}

void secret_scrub_inplace(char *s) {
  if (!s || !g_n) return;
  size_t n = strlen(s), w = 0;
  char *p = s, *h;
  while ((h = (char *)first_hit(p, n - (size_t)(p - s), &w))) {
    size_t vl = g_lens[w], ml = sizeof SECRET_MASK - 1;
    for (size_t i = 0; i < vl; i++) h[i] = i < ml ? SECRET_MASK[i] : '*';
    p = h + vl;
  }
}

/* ---------------------------------------------------------------- stdio */

static ssize_t write_all(int fd, const char *p, size_t n) {
  size_t done = 0;
  while (done < n) {
    ssize_t k = write(fd, p + done, n - done);
    if (k < 0) {
      if (errno == EINTR) continue;
      return -1;
    }
    done += (size_t)k;
  }
  return (ssize_t)n;
}

static ssize_t guard_write(void *cookie, const char *p, size_t n) {
  int fd = (int)(intptr_t)cookie;
  size_t len;
  char *s = secret_scrub(p, n, &len);
  ssize_t k = write_all(fd, s ? s : p, s ? len : n);
  free(s);
  return k < 0 ? -1 : (ssize_t)n;
}

static FILE *guard(int fd, int mode) {
  cookie_io_functions_t io = {NULL, guard_write, NULL, NULL};
  FILE *f = fopencookie((void *)(intptr_t)fd, "w", io);
  if (!f) return NULL;
  /* stderr unbuffered: one write per call, so a value is never split; stdout buffered in
   * large blocks (line by line on a terminal). */
  setvbuf(f, NULL, mode, mode == _IONBF ? 0 : 1 << 16);
  return f;
}

void secret_guard_stdio(void) {
  FILE *e = guard(STDERR_FILENO, _IONBF);
  FILE *o = guard(STDOUT_FILENO, isatty(STDOUT_FILENO) ? _IOLBF : _IOFBF);
  if (e) stderr = e;
  if (o) stdout = o;
}
