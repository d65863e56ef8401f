/* recipe_arg.h - what `run` and `optimize` do with their command line and RECIPE argument. */
#ifndef AD_CLI_RECIPE_ARG_H
#define AD_CLI_RECIPE_ARG_H

#include "recipe/recipe.h"
#include "util/buf.h"

/* "autodata ARGV...", appended to cl, for the record (it never carries secrets: keys come
 * from the environment). */
void cli_command_line(struct buf *cl, int argc, char **argv);

/* The recipe at path, loaded with every method name allowed; NULL after printing each
 * error (file:line:col) to stderr. */
struct recipe *cli_recipe_load(const char *path);

#endif
