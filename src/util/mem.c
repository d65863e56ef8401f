/* mem.c - allocation that aborts on failure (see mem.h for the policy). */
#include "util/mem.h"

#include <jansson.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void mem_init(void) { json_set_alloc_funcs(xmalloc, free); }

void mem_release_free(void) {
#ifdef __GLIBC__
  (void)malloc_trim(0);
#endif
}

_Noreturn void mem_oom(size_t n) {
  fprintf(stderr,
          "autodata: out of memory (%zu bytes); the store keeps everything committed, "
          "run the same command again to resume\n",
          n);
  abort();
}

void *xmalloc(size_t n) {
  void *p = malloc(n ? n : 1);
  if (!p) mem_oom(n);
  return p;
}

void *xcalloc(size_t count, size_t size) {
  void *p = calloc(count ? count : 1, size ? size : 1);
  if (!p) mem_oom(count * size);
  return p;
}

void *xrealloc(void *p, size_t n) {
  void *q = realloc(p, n ? n : 1);
  if (!q) mem_oom(n);
  return q;
}

char *xstrdup(const char *s) { return s ? xstrndup(s, strlen(s)) : NULL; }

char *xstrndup(const char *s, size_t n) {
  char *p = xmalloc(n + 1);
  if (n) memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

char *xvasprintf(const char *fmt, va_list ap) {
  va_list cp;
  va_copy(cp, ap);
  int n = vsnprintf(NULL, 0, fmt, cp);
  va_end(cp);
  if (n < 0) n = 0; /* an encoding error: an empty string rather than garbage */
  char *p = xmalloc((size_t)n + 1);
  if (vsnprintf(p, (size_t)n + 1, fmt, ap) < 0) p[0] = '\0';
  return p;
}

char *xasprintf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char *p = xvasprintf(fmt, ap);
  va_end(ap);
  return p;
}

void xset_str(char **dst, const char *s) {
  char *c = xstrdup(s);
  free(*dst);
  *dst = c;
}
