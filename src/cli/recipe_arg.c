/* recipe_arg.c - the command line and RECIPE argument of `run` and `optimize`. */
#include "cli/recipe_arg.h"

#include <stdio.h>
#include <string.h>

#include "loop/method.h"

void cli_command_line(struct buf *cl, int argc, char **argv) {
  int ok = buf_puts(cl, "autodata") == 0;
  for (int i = 0; ok && i < argc; i++) ok = buf_printf(cl, " %s", argv[i]) == 0;
}

struct recipe *cli_recipe_load(const char *path) {
  struct recipe *rc = NULL;
  struct recipe_diag diag;
  memset(&diag, 0, sizeof diag);
  struct recipe_load_opts lo = {0};
  lo.methods = method_name_list();
  if (recipe_load(path, &lo, &rc, &diag)) {
    for (int i = 0; i < diag.n; i++) fprintf(stderr, "%s\n", diag.msgs[i]);
    if (diag.dropped) fprintf(stderr, "(%d more errors)\n", diag.dropped);
    rc = NULL;
  }
  recipe_diag_release(&diag);
  return rc;
}
