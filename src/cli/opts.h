/* opts.h - the option layer every subcommand parses its command line with.
 *
 * A command describes itself once, in a static struct opts_cli: its name, a
 * synopsis, a paragraph about it and a table of options (long name, value
 * placeholder, id, help text). From that table the layer
 *   - runs getopt_long, so `--opt value`, `--opt=value` and unambiguous
 *     prefixes (`--conc 8`) work the same in every command, and options and
 *     positional arguments may come in any order (`--` ends the options);
 *   - adds `-h` / `--help` to every command and prints the help in one layout;
 *   - reports command-line mistakes in one format, on stderr:
 *       autodata run: unknown option '--bogus'
 *       autodata run: ambiguous option '--c' (--concurrency, --cache-from, --cot-k)
 *       autodata run: --limit needs a value
 *       autodata run: --quiet takes no value
 *     each followed by the line "usage: autodata run RECIPE [options]  (--help: all options)".
 * The typed value parsers below report a bad value in one format, naming the
 * command, the flag and the value:
 *       autodata run: --concurrency expects an integer in 1..100000, got 'x'
 *
 * Typical use (exit codes: 0 ok, 1 runtime failure, 2 usage or input error):
 *
 *   enum { O_LIMIT = 1, O_QUIET };
 *   static const struct opts_spec run_opts[] = {
 *       {"limit", "N", O_LIMIT, "process only the first N sources"},
 *       {"quiet", NULL, O_QUIET, "no progress lines"},
 *       {0}};
 *   static const struct opts_cli run_cli = {"run", "RECIPE [options]", "Run ...", run_opts, NULL};
 *
 *   struct opts_parser op;
 *   opts_begin(&op, &run_cli, argc, argv);
 *   int id;
 *   while ((id = opts_next(&op)) > 0) {
 *     switch (id) {
 *     case O_LIMIT: if (opts_size(op.cmd, op.flag, op.val, 0, SIZE_MAX, &limit)) return 2; break;
 *     case O_QUIET: quiet = 1; break;
 *     }
 *   }
 *   if (id < 0) return opts_exit_code(id);      (--help: 0; a mistake: 2)
 *   if (op.npos != 1) { opts_usage_error(&run_cli, "RECIPE is required"); return 2; }
 *
 * Ownership: the layer allocates nothing. Tables and texts are the caller's
 * (static in practice); op.val and op.pos point into argv; op.flag points into
 * the parser. getopt_long's globals (optind, optarg, opterr, optopt) are reset
 * by opts_begin() and belong to the parser until it finishes, so one parse
 * runs at a time per process (the CLI parses once, on the main thread).
 * getopt_long permutes argv (options first, then the positional arguments).
 * Prefixes are accepted as getopt_long does: a new option that shares a
 * prefix with an old one makes that prefix ambiguous (an error that names both).
 */
#ifndef AD_CLI_OPTS_H
#define AD_CLI_OPTS_H

#include <getopt.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "util/err.h"

/* Most options one command may have (its table, not counting --help). */
#define OPTS_MAX 32

/* Turn a numeric macro into a string literal for help texts:
 * "1.." OPTS_STR(SIM_SOURCE_MAX_FACTS) gives "1..64". */
#define OPTS_STR_(x) #x
#define OPTS_STR(x) OPTS_STR_(x)

/* One option. A table is an array of these ending with {0} (name NULL). */
struct opts_spec {
  const char *name; /* long name without the dashes, e.g. "limit"; "help" is reserved */
  const char *arg;  /* the value's placeholder in the help ("N", "FILE"); NULL: a switch,
                       which takes no value */
  int id;           /* what opts_next() returns for it: > 0, unique in the table */
  const char *help; /* help text; each '\n' continues it on a line of its own, aligned */
};

/* One command's description: everything its --help prints. */
struct opts_cli {
  const char *cmd;              /* the subcommand, e.g. "run": starts every message */
  const char *synopsis;         /* what follows "usage: autodata <cmd> ", e.g.
                                   "RECIPE [options]"; may hold '\n' */
  const char *about;            /* text between the usage line and the options, or NULL */
  const struct opts_spec *opts; /* the table (may be just {0}) */
  const char *footer;           /* text after the options, or NULL */
};

/* opts_next() returns an option's id (> 0), OPTS_DONE, OPTS_HELP or a negative
 * AD_E* code. OPTS_HELP is not an error code: it means "the help has been printed
 * to stdout", and opts_exit_code() turns it into exit status 0. */
enum { OPTS_DONE = 0, OPTS_HELP = AD_ERR_BASE_ - 1 };

/* Parser state: one per parse, on the caller's stack. Read the public fields
 * after each opts_next(); the rest is private. */
struct opts_parser {
  const char *cmd;  /* = cli->cmd, for the value parsers' messages */
  const char *flag; /* the option just returned, spelled out in full ("--limit", even
                       when the user typed "--lim"); points into this struct */
  const char *val;  /* its value (points into argv), or NULL for a switch */
  char **pos;       /* after OPTS_DONE: the positional arguments, in order */
  int npos;         /* ... and how many there are */

  /* private */
  const struct opts_cli *cli_;
  int argc_;
  char **argv_;
  int n_;
  struct option long_[OPTS_MAX + 2];
  char flagbuf_[64];
};

/* Resets getopt_long's state and prepares a parse of argv[1..argc-1] (argv[0] is
 * the subcommand's name, as cmd.h passes it). The table must have at most
 * OPTS_MAX entries, ids > 0 and names shorter than 60 bytes (checked by assert). */
void opts_begin(struct opts_parser *p, const struct opts_cli *cli, int argc, char **argv);

/* The next option: its id, with p->flag and p->val set. OPTS_DONE when the
 * options are over (p->pos / p->npos then hold the positional arguments).
 * -h / --help: prints the help to stdout, returns OPTS_HELP. An unknown or
 * ambiguous option, a missing value or a value given to a switch: prints the
 * message and the usage line to stderr, returns AD_EINVAL. */
int opts_next(struct opts_parser *p);

/* The exit status for a negative opts_next() result: 0 for OPTS_HELP, else 2. */
int opts_exit_code(int rc);

/* The full help (usage line, about, options, -h/--help, footer) to f. */
void opts_help(const struct opts_cli *cli, FILE *f);

/* A usage mistake the table cannot catch (a required option or positional
 * argument missing, one too many): prints "autodata <cmd>: <message>" and the
 * usage line to stderr; returns AD_EINVAL. */
int opts_usage_error(const struct opts_cli *cli, const char *fmt, ...) AD_PRINTF(2, 3);

/* Typed values. Each parses text (NULL counts as empty) as a whole: decimal
 * digits with an optional sign for integers ('+' only, for unsigned ones), what
 * strtod takes for numbers; no blanks, nothing left over. On success it stores
 * the value in *out and returns 0; otherwise *out is unchanged, and it prints
 *   autodata <cmd>: <flag> expects <what>, got '<text>'
 * to stderr and returns AD_EINVAL. <what> names the range: "an integer in 1..64",
 * "a non-negative integer" or "an integer >= 1" when hi is the type's maximum,
 * "a number in [0, 1]". */
int opts_int(const char *cmd, const char *flag, const char *text, int lo, int hi, int *out);
int opts_llong(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
               long long *out);
int opts_u64(const char *cmd, const char *flag, const char *text, uint64_t lo, uint64_t hi,
             uint64_t *out);
int opts_size(const char *cmd, const char *flag, const char *text, size_t lo, size_t hi,
              size_t *out);
int opts_double(const char *cmd, const char *flag, const char *text, double lo, double hi,
                double *out);

/* text must equal one of choices[] (NULL-terminated); stores its index in *idx.
 * The message lists them: "--progress expects live or plain, got 'x'". */
int opts_choice(const char *cmd, const char *flag, const char *text, const char *const choices[],
                int *idx);

/* The same message for a value a command checks itself (a format name, a file
 * name): prints "autodata <cmd>: <flag> expects <what>, got '<text>'" with <what>
 * from the printf format; returns AD_EINVAL. */
int opts_reject(const char *cmd, const char *flag, const char *text, const char *what_fmt, ...)
    AD_PRINTF(4, 5);

#endif
