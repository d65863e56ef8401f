/* main.c - autodata entry point: global init and subcommand dispatch. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "cli/cmd.h"
#include "util/mem.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: autodata <command> [options]\n\n"
          "autodata turns source documents into synthetic training and evaluation data\n"
          "with an agentic loop of language-model roles (Agentic Self-Instruct).\n\n"
          "commands:\n");
#define XX(name, fn, help) fprintf(f, "  %-12s %s\n", name, help);
  AD_COMMANDS(XX)
#undef XX
  fprintf(f, "\nRun `autodata <command> --help` for a command's options.\n");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (!strcmp(name, "help") || !strcmp(name, "--help") || !strcmp(name, "-h")) {
    usage(stdout);
    return 0;
  }
  if (!strcmp(name, "--version")) name = "version";
  mem_init();
  if (curl_global_init(CURL_GLOBAL_DEFAULT)) {
    fprintf(stderr, "autodata: error: libcurl failed to initialise\n");
    return 1;
  }
  int rc = -1;
#define XX(cname, fn, help) \
  if (rc == -1 && !strcmp(name, cname)) rc = cmd_##fn(argc - 1, argv + 1);
  AD_COMMANDS(XX)
#undef XX
  if (rc == -1) {
    fprintf(stderr, "autodata: unknown command '%s'\n\n", name);
    usage(stderr);
    rc = 2;
  }
  curl_global_cleanup();
  return rc;
}
