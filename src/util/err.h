/* err.h - autodata's error codes.
 *
 * Every fallible function returns int: 0 on success, a negative AD_E* code on
 * failure (libuv style). Details the user can act on live on the handle that
 * failed (e.g. store_errmsg()), never in a global. The enum and the messages
 * come from one X-macro table so they cannot drift apart.
 */
#ifndef AD_ERR_H
#define AD_ERR_H

#define AD_ERR_MAP(XX)                        \
  XX(NOMEM, "out of memory")                  \
  XX(INVAL, "invalid argument")               \
  XX(IO, "input/output error")                \
  XX(PARSE, "parse error")                    \
  XX(TOOBIG, "value exceeds its size limit")  \
  XX(NOTFOUND, "not found")                   \
  XX(EXISTS, "already exists")                \
  XX(BUSY, "resource busy or locked")         \
  XX(HTTP, "HTTP error")                      \
  XX(NET, "network error")                    \
  XX(TIMEOUT, "timed out")                    \
  XX(RETRIES, "retry budget exhausted")       \
  XX(CANCELED, "canceled")                    \
  XX(BUDGET, "budget exhausted")              \
  XX(MISMATCH, "stored state does not match") \
  XX(CORRUPT, "corrupt data")                 \
  XX(READONLY, "read-only")                   \
  XX(FULL, "disk full")                       \
  XX(INTERNAL, "internal error")

enum {
  AD_OK = 0,
  AD_ERR_BASE_ = -1000,
#define XX(name, msg) AD_E##name,
  AD_ERR_MAP(XX)
#undef XX
      AD_ERR_END_
};

/* Human-readable text for a code returned by any autodata function. Never NULL. */
const char *ad_strerror(int code);

#include <stddef.h>

#if defined(__GNUC__)
#define AD_WUR __attribute__((warn_unused_result))
#define AD_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define AD_WUR
#define AD_PRINTF(a, b)
#endif

/* printf into a caller's message buffer; a no-op when err is NULL or errlen 0. */
void ad_set_err(char *err, size_t errlen, const char *fmt, ...) AD_PRINTF(3, 4);

#endif
