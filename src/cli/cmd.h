/* cmd.h - the subcommand table.
 *
 * One line per subcommand: its name on the command line, the C function
 * (int cmd_<fn>(int argc, char **argv), argv[0] is the subcommand name) and a
 * one-line summary for `autodata help`. To add a command, add a line here and a
 * src/cli/cmd_<fn>.c file; main.c needs no change.
 * Exit codes: 0 ok, 1 runtime failure, 2 usage or input error.
 */
#ifndef AD_CMD_H
#define AD_CMD_H

#define AD_COMMANDS(XX)                                                           \
  XX("version", version, "print the version")

#define XX(name, fn, help) int cmd_##fn(int argc, char **argv);
AD_COMMANDS(XX)
#undef XX

#endif
