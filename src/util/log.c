/* log.c - leveled logging to stderr. */
#include "util/log.h"

#include <stdarg.h>
#include <stdio.h>

#include "util/secret.h"

static enum log_level g_level = LOG_INFO;

void log_set_level(enum log_level lvl) { g_level = lvl; }
enum log_level log_get_level(void) { return g_level; }

void log_msg(enum log_level lvl, const char *fmt, ...) {
  static const char *names[] = {"error", "warning", "info", "debug"};
  if (lvl > g_level) return;
  char line[4096];
  int n = snprintf(line, sizeof line, "autodata: %s: ", names[lvl]);
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
  va_end(ap);
  secret_scrub_inplace(line);
  fprintf(stderr, "%s\n", line);
}
