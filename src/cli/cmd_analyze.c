/* cmd_analyze.c - `autodata analyze STORE|DIR [--against FILE...] [--field NAME...]
 * [--threshold X] [--shingle N] [--ngram N] [--export DIR] [--run ID] [--json] [--out FILE]`:
 * the dataset-level analysis of a run's accepted examples (analyze/analyze.h). Read-only. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "analyze/analyze.h"
#include "cli/cmd.h"
#include "cli/opts.h"
#include "store/store.h"
#include "util/fs.h"
#include "util/mem.h"

enum { O_AGAINST = 1, O_FIELD, O_THRESHOLD, O_SHINGLE, O_NGRAM, O_EXPORT, O_RUN, O_JSON, O_OUT };
static const struct opts_spec analyze_opts[] = {
    {"against", "FILE", O_AGAINST,
     "a benchmark or held-out set to check for contamination (repeatable):\n"
     "JSONL (one item per line) or text (one item per paragraph)"},
    {"field", "NAME", O_FIELD,
     "the JSONL field(s) of the --against files to compare (repeatable; default: every\n"
     "text field)"},
    {"threshold", "X", O_THRESHOLD,
     "Jaccard similarity of two questions' word shingles at or above which they are\n"
     "near-duplicates (default 0.7)"},
    {"shingle", "N", O_SHINGLE, "words per shingle (default 3)"},
    {"ngram", "N", O_NGRAM, "words per contamination n-gram (default 13)"},
    {"export", "DIR", O_EXPORT,
     "an `autodata export` folder: check its heldout.jsonl against its train.jsonl"},
    {"run", "ID", O_RUN, "a run in the store (default: the latest)"},
    {"json", NULL, O_JSON, "print the analysis as one JSON document"},
    {"out", "FILE", O_OUT, "also write the JSON document to FILE"},
    {0}};
static const struct opts_cli analyze_cli = {
    "analyze",
    "STORE|DIR [--against FILE...] [--field NAME...] [--threshold X] [--shingle N]\n"
    "                        [--ngram N] [--export DIR] [--run ID] [--json] [--out FILE]",
    "Dataset-level analysis of a run's accepted examples: near-duplicate questions (MinHash,\n"
    "LSH, exact Jaccard, clusters with one example kept each), contamination against the\n"
    "--against files (normalised 13-gram overlap, the matching item and n-grams per\n"
    "example) and diversity (question types and entropy, distinct-1/2/3, source coverage,\n"
    "lengths, rubric size, weak-mean histogram). STORE is a store file; DIR an output folder\n"
    "holding store.db. Read-only: lists what would be removed (docs/analyze.md).",
    analyze_opts, NULL};

int cmd_analyze(int argc, char **argv) {
  struct an_opts o;
  an_opts_defaults(&o);
  const char **against = xcalloc((size_t)argc + 1, sizeof *against);
  const char **fields = xcalloc((size_t)argc + 1, sizeof *fields);
  const char *out_path = NULL;
  int as_json = 0, ret = 2;
  long long run = 0;
  char *path = NULL;
  store *st = NULL;
  json_t *doc = NULL;
  struct opts_parser op;
  opts_begin(&op, &analyze_cli, argc, argv);
  int id;
  while ((id = opts_next(&op)) > 0) {
    int bad = 0;
    switch (id) {
    case O_AGAINST: against[o.nagainst++] = op.val; break;
    case O_FIELD: fields[o.nfields++] = op.val; break;
    case O_THRESHOLD:
      bad = opts_double(op.cmd, op.flag, op.val, 0.01, 1.0, &o.dedup.threshold);
      break;
    case O_SHINGLE: bad = opts_int(op.cmd, op.flag, op.val, 1, 64, &o.dedup.shingle); break;
    case O_NGRAM: bad = opts_int(op.cmd, op.flag, op.val, 1, 1000, &o.ngram); break;
    case O_EXPORT: o.export_dir = op.val; break;
    case O_RUN: bad = opts_llong(op.cmd, op.flag, op.val, 1, LLONG_MAX, &run); break;
    case O_JSON: as_json = 1; break;
    case O_OUT: out_path = op.val; break;
    }
    if (bad) goto cleanup;
  }
  o.against = against;
  o.fields = fields;
  if (id < 0) {
    ret = opts_exit_code(id);
    goto cleanup;
  }
  if (op.npos != 1) {
    opts_usage_error(&analyze_cli, op.npos ? "unexpected argument '%s'" : "STORE|DIR is required",
                     op.npos ? op.pos[1] : "");
    goto cleanup;
  }
  const char *arg = op.pos[0];
  struct stat sb;
  if (!stat(arg, &sb) && S_ISDIR(sb.st_mode)) {
    path = fs_join(arg, "store.db");
    if (stat(path, &sb)) {
      fprintf(stderr,
              "autodata analyze: %s is a folder without store.db; give a run's output folder "
              "or its store file\n",
              arg);
      goto cleanup;
    }
  } else {
    path = xstrdup(arg);
  }
  char err[2048] = "";
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  if (rc) {
    fprintf(stderr, "autodata analyze: %s\n", st ? store_errmsg(st) : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND) ? 2 : 1;
    goto cleanup;
  }
  rc = an_run(st, (store_id)run, &o, &doc, err, sizeof err);
  if (rc) {
    fprintf(stderr, "autodata analyze: %s\n", err[0] ? err : ad_strerror(rc));
    ret = (rc == AD_ENOTFOUND || rc == AD_EINVAL || rc == AD_EIO) ? 2 : 1;
    goto cleanup;
  }
  char *text = json_dumps(doc, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
  if (out_path && fs_write_atomic(out_path, text, strlen(text))) {
    fprintf(stderr, "autodata analyze: cannot write %s\n", out_path);
    free(text);
    ret = 1;
    goto cleanup;
  }
  if (as_json) puts(text);
  else an_print_summary(doc, stdout);
  free(text);
  ret = 0;
cleanup:
  json_decref(doc);
  store_close(st);
  free(path);
  free(against);
  free(fields);
  return ret;
}
