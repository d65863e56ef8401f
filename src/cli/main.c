/* main.c - autodata entry point: global init and subcommand dispatch. */
#include <curl/curl.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/cmd.h"
#include "util/mem.h"
#include "util/secret.h"

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

/* A closed standard descriptor (`autodata run x >&-`) would be reused by the next open(),
 * and a message meant for the terminal written into an output file: fill it with /dev/null. */
static void keep_std_fds(void) {
  for (int fd = 0; fd <= 2; fd++) {
    if (fcntl(fd, F_GETFD) != -1) continue;
    int n = open("/dev/null", fd ? O_WRONLY : O_RDONLY);
    if (n >= 0 && n != fd) {
      dup2(n, fd);
      close(n);
    }
  }
}

int main(int argc, char **argv) {
  keep_std_fds();
  /* Every secret value the process can hold is masked in whatever it prints. */
  secret_add_env();
  secret_guard_stdio();
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
