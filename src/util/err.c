/* err.c - messages for AD_E* codes. */
#include "util/err.h"

#include <stdarg.h>
#include <stdio.h>

const char *ad_strerror(int code) {
  switch (code) {
  case AD_OK: return "ok";
#define XX(name, msg) \
  case AD_E##name: return msg;
    AD_ERR_MAP(XX)
#undef XX
  default: return "unknown error";
  }
}

void ad_set_err(char *err, size_t errlen, const char *fmt, ...) {
  if (!err || errlen == 0) return;
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
}
