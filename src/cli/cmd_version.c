/* cmd_version.c - `autodata version`. */
#include <curl/curl.h>
#include <jansson.h>
#include <sqlite3.h>
#include <stdio.h>

#include "cli/cmd.h"
#include "cli/opts.h"
#include "util/version.h"

static const struct opts_spec version_opts[] = {{0}};
static const struct opts_cli version_cli = {
    "version", "", "Print the version of autodata and of the libraries it runs on.", version_opts,
    NULL};

int cmd_version(int argc, char **argv) {
  struct opts_parser op;
  opts_begin(&op, &version_cli, argc, argv);
  int id = opts_next(&op); /* no options: only the end, --help or a mistake */
  if (id < 0) return opts_exit_code(id);
  if (op.npos) {
    opts_usage_error(&version_cli, "unexpected argument '%s'", op.pos[0]);
    return 2;
  }
  printf("autodata %s (%s)\n", ad_version(), AD_GITREV_STR);
  printf("libcurl %s, jansson %s, sqlite %s\n", curl_version_info(CURLVERSION_NOW)->version,
         JANSSON_VERSION, sqlite3_libversion());
  return 0;
}
