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

#define AD_COMMANDS(XX)                                                                       \
  XX("run", run, "run (or resume) a recipe: the agentic loop over its sources")               \
  XX("optimize", optimize, "optimise the harness's prompts, with a held-out test split")      \
  XX("compare", compare, "compare runs side by side: gap, acceptance, cost, with 95% CIs")    \
  XX("status", status, "progress and statistics of a run store")                              \
  XX("show", show, "one source's story: every round, answer and verdict")                     \
  XX("report", report, "a self-contained HTML report: summary, plots, trajectory browser")    \
  XX("analyze", analyze, "dataset-level analysis: near-duplicates, contamination, diversity") \
  XX("card", card, "regenerate DATACARD.md from a run store")                                 \
  XX("export", export, "training exports: jsonl, chat (SFT), rl (GRPO)")                      \
  XX("sim-sources", sim_sources, "write a synthetic corpus for the sim world")                \
  XX("sim-server", sim_server,                                                                \
     "OpenAI-compatible sim server over HTTP (tests, demos, benchmarks)")                     \
  XX("chat", chat, "one model call: check an endpoint")                                       \
  XX("chat-load", chat_load, "(internal) many model calls: client load/fault driver")         \
  XX("validate", validate, "check a recipe without running it")                               \
  XX("version", version, "print the version")                                                 \
  XX("eval", eval, "evaluate a model on a dataset with its own judge (mean@k, pass@k, CIs)")  \
  XX("reward-server", reward_server, "the dataset's judge as an HTTP reward endpoint (GRPO)") \
  XX("store", store, "copy a run store: SQLite file <-> PostgreSQL URL")

#define XX(name, fn, help) int cmd_##fn(int argc, char **argv);
AD_COMMANDS(XX)
#undef XX

#endif
