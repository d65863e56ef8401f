/* err.c - messages for AD_E* codes. */
#include "util/err.h"

const char *ad_strerror(int code) {
  switch (code) {
  case AD_OK: return "ok";
#define XX(name, msg) case AD_E##name: return msg;
  AD_ERR_MAP(XX)
#undef XX
  default: return "unknown error";
  }
}
