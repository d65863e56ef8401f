/* test_opts.c - the CLI option layer (src/cli/opts.h): the parse loop over
 * getopt_long, the typed value parsers and their one message format. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cli/opts.h"

enum { T_LIMIT = 1, T_CONC, T_CACHE, T_QUIET };
static const struct opts_spec t_opts[] = {
    {"limit", "N", T_LIMIT, "process only the first N sources"},
    {"concurrency", "N", T_CONC, "in flight"},
    {"cache-from", "FILE", T_CACHE, "another store\nsecond line"},
    {"quiet", NULL, T_QUIET, "no progress lines"},
    {0}};
static const struct opts_cli t_cli = {"tcmd", "RECIPE [options]", "About it.", t_opts, "Footer."};

/* Parses argv (NULL-terminated, argv[0] the command) to the end; records the
 * ids and values seen. Returns the last opts_next() result. */
struct seen {
  int n, ids[16];
  char flags[16][64];
  const char *vals[16];
};
static int parse_all(char **argv, struct opts_parser *op, struct seen *s) {
  int argc = 0;
  while (argv[argc]) argc++;
  memset(s, 0, sizeof *s);
  opts_begin(op, &t_cli, argc, argv);
  int id;
  while ((id = opts_next(op)) > 0 && s->n < 16) {
    s->ids[s->n] = id;
    snprintf(s->flags[s->n], sizeof s->flags[s->n], "%s", op->flag);
    s->vals[s->n++] = op->val;
  }
  return id;
}

Test(opts, both_value_forms_prefixes_and_positionals) {
  char *argv[] = {"tcmd", "--limit=3", "R", "--quiet", "--conc", "8", "--", "--cache-from", NULL};
  struct opts_parser op;
  struct seen s;
  cr_assert_eq(parse_all(argv, &op, &s), OPTS_DONE);
  cr_assert_eq(s.n, 3);
  cr_assert_eq(s.ids[0], T_LIMIT);
  cr_assert_str_eq(s.flags[0], "--limit");
  cr_assert_str_eq(s.vals[0], "3");
  cr_assert_eq(s.ids[1], T_QUIET);
  cr_assert_null(s.vals[1]);
  cr_assert_eq(s.ids[2], T_CONC);
  cr_assert_str_eq(s.flags[2], "--concurrency", "the full name, not the prefix typed");
  cr_assert_str_eq(s.vals[2], "8");
  cr_assert_eq(op.npos, 2);
  cr_assert_str_eq(op.pos[0], "R");
  cr_assert_str_eq(op.pos[1], "--cache-from", "after --, options are positional");
}

Test(opts, a_second_parse_starts_afresh) {
  char *a1[] = {"tcmd", "--limit", "1", "X", NULL};
  char *a2[] = {"tcmd", "--cache-from", "F", NULL};
  struct opts_parser op;
  struct seen s;
  cr_assert_eq(parse_all(a1, &op, &s), OPTS_DONE);
  cr_assert_eq(op.npos, 1);
  cr_assert_eq(parse_all(a2, &op, &s), OPTS_DONE);
  cr_assert_eq(s.n, 1);
  cr_assert_eq(s.ids[0], T_CACHE);
  cr_assert_str_eq(s.vals[0], "F");
  cr_assert_eq(op.npos, 0);
}

Test(opts, mistakes_are_einval_and_help_is_not, .init = cr_redirect_stderr) {
  struct opts_parser op;
  struct seen s;
  char *unknown[] = {"tcmd", "--bogus", NULL};
  char *missing[] = {"tcmd", "--limit", NULL};
  char *extra[] = {"tcmd", "--quiet=1", NULL};
  char *ambiguous[] = {"tcmd", "--c", "1", NULL};
  char *short_bad[] = {"tcmd", "-x", NULL};
  cr_assert_eq(parse_all(unknown, &op, &s), AD_EINVAL);
  cr_assert_eq(parse_all(missing, &op, &s), AD_EINVAL);
  cr_assert_eq(parse_all(extra, &op, &s), AD_EINVAL);
  cr_assert_eq(parse_all(ambiguous, &op, &s), AD_EINVAL);
  cr_assert_eq(parse_all(short_bad, &op, &s), AD_EINVAL);
  cr_assert_eq(opts_exit_code(AD_EINVAL), 2);
  cr_assert_eq(opts_exit_code(OPTS_HELP), 0);
}

Test(opts, help_prints_to_stdout, .init = cr_redirect_stdout) {
  char *argv[] = {"tcmd", "X", "-h", NULL};
  struct opts_parser op;
  struct seen s;
  cr_assert_eq(parse_all(argv, &op, &s), OPTS_HELP);
  fflush(stdout);
  cr_assert_stdout_eq_str(
      "usage: autodata tcmd RECIPE [options]\n\n"
      "About it.\n\n"
      "  --limit N          process only the first N sources\n"
      "  --concurrency N    in flight\n"
      "  --cache-from FILE  another store\n"
      "                     second line\n"
      "  --quiet            no progress lines\n"
      "  -h, --help         print this help\n\n"
      "Footer.\n");
}

#define USAGE "usage: autodata tcmd RECIPE [options]  (--help: all options)\n"

Test(opts, message_unknown, .init = cr_redirect_stderr) {
  char *argv[] = {"tcmd", "--bogus=2", NULL};
  struct opts_parser op;
  struct seen s;
  parse_all(argv, &op, &s);
  fflush(stderr);
  cr_assert_stderr_eq_str("autodata tcmd: unknown option '--bogus'\n" USAGE);
}

Test(opts, message_missing_value, .init = cr_redirect_stderr) {
  char *argv[] = {"tcmd", "R", "--lim", NULL};
  struct opts_parser op;
  struct seen s;
  parse_all(argv, &op, &s);
  fflush(stderr);
  cr_assert_stderr_eq_str("autodata tcmd: --limit needs a value\n" USAGE);
}

Test(opts, message_switch_with_value, .init = cr_redirect_stderr) {
  char *argv[] = {"tcmd", "--quiet=yes", NULL};
  struct opts_parser op;
  struct seen s;
  parse_all(argv, &op, &s);
  fflush(stderr);
  cr_assert_stderr_eq_str("autodata tcmd: --quiet takes no value\n" USAGE);
}

Test(opts, message_ambiguous, .init = cr_redirect_stderr) {
  char *argv[] = {"tcmd", "--c=1", NULL};
  struct opts_parser op;
  struct seen s;
  parse_all(argv, &op, &s);
  fflush(stderr);
  cr_assert_stderr_eq_str(
      "autodata tcmd: ambiguous option '--c' (--concurrency, --cache-from)\n" USAGE);
}

Test(opts, message_unknown_short, .init = cr_redirect_stderr) {
  char *argv[] = {"tcmd", "-bogus", NULL};
  struct opts_parser op;
  struct seen s;
  parse_all(argv, &op, &s);
  fflush(stderr);
  cr_assert_stderr_eq_str("autodata tcmd: unknown option '-bogus'\n" USAGE);
}

Test(opts, message_usage_error, .init = cr_redirect_stderr) {
  cr_assert_eq(opts_usage_error(&t_cli, "RECIPE is required (%d)", 0), AD_EINVAL);
  fflush(stderr);
  cr_assert_stderr_eq_str("autodata tcmd: RECIPE is required (0)\n" USAGE);
}

Test(opts_values, integers) {
  int i = 7;
  cr_assert_eq(opts_int("c", "--n", "42", 1, 100, &i), 0);
  cr_assert_eq(i, 42);
  cr_assert_eq(opts_int("c", "--n", "+5", 1, 100, &i), 0);
  cr_assert_eq(i, 5);
  cr_assert_eq(opts_int("c", "--n", "-3", -5, 5, &i), 0);
  cr_assert_eq(i, -3);
  const char *bad[] = {"",
                       " 5",
                       "5 ",
                       "5x",
                       "x",
                       "1.5",
                       "1e3",
                       "0x10",
                       "+",
                       "-",
                       "101",
                       "0",
                       "99999999999999999999"};
  freopen("/dev/null", "w", stderr);
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    i = 7;
    cr_assert_eq(opts_int("c", "--n", bad[k], 1, 100, &i), AD_EINVAL, "'%s'", bad[k]);
    cr_assert_eq(i, 7, "out unchanged on '%s'", bad[k]);
  }
  cr_assert_eq(opts_int("c", "--n", NULL, 1, 100, &i), AD_EINVAL);

  long long ll = 0;
  cr_assert_eq(opts_llong("c", "--run", "9223372036854775807", 1, LLONG_MAX, &ll), 0);
  cr_assert_eq(ll, LLONG_MAX);
  cr_assert_eq(opts_llong("c", "--run", "9223372036854775808", 1, LLONG_MAX, &ll), AD_EINVAL);

  uint64_t u = 1;
  cr_assert_eq(opts_u64("c", "--seed", "18446744073709551615", 0, UINT64_MAX, &u), 0);
  cr_assert_eq(u, UINT64_MAX);
  cr_assert_eq(opts_u64("c", "--seed", "18446744073709551616", 0, UINT64_MAX, &u), AD_EINVAL);
  cr_assert_eq(opts_u64("c", "--seed", "-1", 0, UINT64_MAX, &u), AD_EINVAL, "no wrap-around");
  cr_assert_eq(u, UINT64_MAX);

  size_t z = 9;
  cr_assert_eq(opts_size("c", "--limit", "0", 0, SIZE_MAX, &z), 0);
  cr_assert_eq(z, 0);
  cr_assert_eq(opts_size("c", "--limit", "-1", 0, SIZE_MAX, &z), AD_EINVAL);
}

Test(opts_values, doubles_and_choices) {
  double d = -1;
  cr_assert_eq(opts_double("c", "--x", "0.25", 0, 1, &d), 0);
  cr_assert_eq(d, 0.25);
  cr_assert_eq(opts_double("c", "--x", "1e-1", 0, 1, &d), 0);
  cr_assert_eq(d, 0.1);
  cr_assert_eq(opts_double("c", "--x", "1", 0, 1, &d), 0, "bounds are inclusive");
  freopen("/dev/null", "w", stderr);
  const char *bad[] = {"", " 0.5", "0.5x", "nan", "inf", "-0.1", "1.01", "x"};
  for (size_t k = 0; k < sizeof bad / sizeof *bad; k++) {
    d = -1;
    cr_assert_eq(opts_double("c", "--x", bad[k], 0, 1, &d), AD_EINVAL, "'%s'", bad[k]);
    cr_assert_eq(d, -1);
  }
  static const char *const modes[] = {"live", "plain", NULL};
  int idx = -1;
  cr_assert_eq(opts_choice("c", "--progress", "plain", modes, &idx), 0);
  cr_assert_eq(idx, 1);
  cr_assert_eq(opts_choice("c", "--progress", "Plain", modes, &idx), AD_EINVAL);
  cr_assert_eq(opts_choice("c", "--progress", NULL, modes, &idx), AD_EINVAL);
  cr_assert_eq(idx, 1);
}

Test(opts_values, one_message_format, .init = cr_redirect_stderr) {
  int i;
  long long ll;
  uint64_t u;
  double d;
  int idx;
  static const char *const fmts[] = {"table", "markdown", "json", NULL};
  opts_int("run", "--concurrency", "x", 1, 100000, &i);
  opts_llong("card", "--run", "0", 1, LLONG_MAX, &ll);
  opts_u64("export", "--seed", "-1", 0, UINT64_MAX, &u);
  opts_double("run", "--rip-threshold", "2", 0, 1, &d);
  opts_double("chat-load", "--rpm", "-1", 0, 1e9, &d);
  opts_choice("compare", "--format", "csv", fmts, &idx);
  opts_reject("sim-sources", "--out", "", "a file name");
  fflush(stderr);
  cr_assert_stderr_eq_str(
      "autodata run: --concurrency expects an integer in 1..100000, got 'x'\n"
      "autodata card: --run expects an integer >= 1, got '0'\n"
      "autodata export: --seed expects a non-negative integer, got '-1'\n"
      "autodata run: --rip-threshold expects a number in [0, 1], got '2'\n"
      "autodata chat-load: --rpm expects a number in [0, 1e+09], got '-1'\n"
      "autodata compare: --format expects table, markdown or json, got 'csv'\n"
      "autodata sim-sources: --out expects a file name, got ''\n");
}
