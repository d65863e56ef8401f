/* cmd_version.c - `autodata version`. */
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>

#include "cli/cmd.h"
#include "util/version.h"

int cmd_version(int argc, char **argv) {
  (void)argc;
  (void)argv;
  printf("autodata %s (%s)\n", ad_version(), AD_GITREV_STR);
  printf("libcurl %s, jansson %s, sqlite %s\n", curl_version_info(CURLVERSION_NOW)->version,
         JANSSON_VERSION, sqlite3_libversion());
  return 0;
}
