/* report.h - a run's outputs, all regenerated from the run store alone.
 *
 * dataset.jsonl  one canonical JSON line (sorted keys, compact) per accepted
 *                example, exactly the example object the loop stored, ordered by
 *                example id (the store's key; the loop sets example.id to it).
 *                No wall-clock field: the same store gives the same bytes.
 * rejected.jsonl one line per rejected candidate: {"source_id","round","index",
 *                "reason","detail","question","question_type","stats","quality"}
 *                ordered by source_id, round, index (missing values are null).
 * DATACARD.md    a Hugging Face dataset card (YAML front matter + sections: the
 *                agent's roles and models, acceptance bounds, budgets, checks,
 *                source corpus, results, rejections by reason, rounds to accept,
 *                score spread, cost by role, every prompt in full with its
 *                sha256, how to reproduce, limitations). Deterministic given the
 *                store (no dates, no latencies).
 * exports        training formats: jsonl (= dataset lines), chat (SFT messages),
 *                rl (prompt + reward spec for GRPO), with an optional seeded
 *                held-out split.
 *
 * Where the run row's "info" keeps the run's recipe, prompts and corpus, the
 * card reads them from info (or info.extra, where store_run_begin() files the
 * loop's extra object): {"recipe": {...}, "prompts": {role: {path, sha256,
 * text}}, "corpus": {path, count, sha256, truncated}}. Missing parts are
 * reported as "not recorded", never guessed.
 *
 * Files are written atomically: PATH.PID.tmp, fsync, rename; on failure the old
 * file (if any) is left as it was and the temporary file is removed.
 *
 * SECRETS. The store holds no API key. As a second line of defence the card is
 * scrubbed of the values of environment variables whose names look secret
 * (*KEY*, *TOKEN*, *SECRET*, *PASSWORD*, values of 8+ bytes) before it is
 * written: such a value is replaced by "[redacted]".
 *
 * ERRORS. Functions return 0 or a negative AD_E* code and write a message the
 * user can act on into err (n bytes, may be NULL/0): AD_ENOTFOUND for a store
 * without the run or (for exports) without accepted examples, AD_EINVAL for bad
 * options, AD_EIO / AD_EFULL naming the file, and store read errors as returned
 * by the store (with store_errmsg()'s text).
 *
 * THREADS. Each call uses st from the calling thread only; open the store
 * STORE_OPEN_READONLY to regenerate outputs while a run writes to it.
 */
#ifndef AD_REPORT_H
#define AD_REPORT_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"

/* ======== dataset.jsonl, rejected.jsonl, everything ======== */

/* Write dataset.jsonl for run (0 = latest) to path. *count (may be NULL) gets
 * the number of lines. A run without accepted examples gives an empty file. */
AD_WUR int report_write_dataset(store *st, store_id run, const char *path, size_t *count, char *err,
                                size_t n);

/* Write rejected.jsonl for run (0 = latest) to path; *count (may be NULL) as above. */
AD_WUR int report_write_rejected(store *st, store_id run, const char *path, size_t *count,
                                 char *err, size_t n);

struct report_paths {
  char dataset[4096];    /* <folder>/dataset.jsonl */
  char rejected[4096];   /* <folder>/rejected.jsonl */
  char card[4096];       /* <folder>/DATACARD.md */
  char candidates[4096]; /* <folder>/candidates.jsonl */
  char removed[4096];    /* <folder>/removed.jsonl, "" when the run has no analysis */
  char analysis[4096];   /* <folder>/analysis.json, "" when the run has no analysis */
  char report[4096];     /* <folder>/report.html (report_html.h) */
  size_t n_examples;     /* lines in dataset.jsonl */
  size_t n_removed;      /* lines in removed.jsonl */
  size_t n_rejected;     /* lines in rejected.jsonl */
  size_t n_candidates;   /* lines in candidates.jsonl */
};

/* Create folder (mkdir -p) and write a run's outputs into it: dataset.jsonl,
 * rejected.jsonl, candidates.jsonl (compare.h), DATACARD.md and report.html (report_html.h,
 * default options), and when the run has a stored analysis (store_analysis_get; the
 * recipe's finalize:, docs/analyze.md) analysis.json and removed.jsonl (the examples it
 * removed, each with "removed": {"reason", "detail"}; they are then left out of
 * dataset.jsonl); out (may be NULL) gets their paths and counts. Everything comes from
 * the store alone. */
AD_WUR int report_write_all(store *st, store_id run, const char *folder, struct report_paths *out,
                            char *err, size_t n);

/* report_write_all, unless the folder's outputs are up to date: written by this version
 * from the same store (path, run) in the same state (store_run_stamp) and each file still
 * as written (size and XXH3-128 hash), as recorded in <folder>/.outputs.json after the last
 * write. Then nothing is written, *skipped = 1 and out gets the paths and counts of that
 * write. Otherwise everything is written again (*skipped = 0) and the record renewed; a
 * store that keeps no stamp is always written. `autodata run` uses it for its outputs, so
 * a resume of a finished run costs what its checks cost, not what the outputs cost. */
AD_WUR int report_write_all_changed(store *st, store_id run, const char *folder,
                                    struct report_paths *out, int *skipped, char *err, size_t n);

/* ======== DATACARD.md ======== */

/* Render the data card of run (0 = latest) into out (appended; the caller
 * owns out). Already scrubbed of secret-looking environment values. */
AD_WUR int report_card_render(store *st, store_id run, struct buf *out, char *err, size_t n);

/* Render and write the card atomically to path. */
AD_WUR int report_write_card(store *st, store_id run, const char *path, char *err, size_t n);

/* The Hugging Face size_categories value for count examples ("n<1K", "1K<n<10K", ...). */
const char *report_size_category(size_t count);

/* ======== Training exports ======== */

enum report_format {
  REPORT_FMT_JSONL = 0, /* the dataset lines as they are */
  REPORT_FMT_CHAT,      /* {"id","messages":[{user},{assistant}]} for SFT */
  REPORT_FMT_RL         /* {"id","prompt","reward":{"type":"rubric"|"verifiable",...}} */
};

/* "jsonl", "chat", "rl" -> 0; else AD_EINVAL. */
int report_format_parse(const char *name, enum report_format *out);
const char *report_format_name(enum report_format f);

struct report_export_opts {
  enum report_format format;
  size_t holdout; /* examples held out into heldout.jsonl; 0 = no split */
  uint64_t seed;  /* split seed */
  int seed_set;   /* 0: use the run's seed */
};

struct report_export_result {
  char train[4096];   /* <dir>/train.jsonl */
  char heldout[4096]; /* <dir>/heldout.jsonl, "" without a split */
  size_t n_train, n_heldout;
  uint64_t seed; /* the split seed used */
};

/* Write <dir>/train.jsonl (and <dir>/heldout.jsonl with a holdout) in the
 * chosen format, both sorted by example id. The split: the id-sorted list is
 * shuffled (Fisher-Yates, struct rng seeded with rng_derive(seed, "holdout"))
 * and its first `holdout` ids are held out. Same store + seed -> same files.
 * Without a holdout a stale <dir>/heldout.jsonl is removed (it could hold
 * training examples of a different split). dir is created if missing.
 * Errors: AD_ENOTFOUND (no run, or no accepted examples), AD_EINVAL (holdout
 * >= the number of examples: nothing would be left to train on). */
AD_WUR int report_export(store *st, store_id run, const char *dir,
                         const struct report_export_opts *opts, struct report_export_result *res,
                         char *err, size_t n);

/* One example as an export line (no newline) appended to out; for tests and
 * other writers. AD_EINVAL when the example lacks a question or an answer,
 * AD_ETOOBIG past out's cap, AD_EINTERNAL if jansson refuses one of its values. */
AD_WUR int report_export_line(const json_t *example, enum report_format f, struct buf *out);

/* ======== Shared by the report module files (not for other modules) ======== */

/* The data card's section on the run's stored analysis, appended to out; nothing when the
 * run has none. 0, or a store read error / AD_ETOOBIG with a message in err. */
/* The examples the run's stored analysis removed (its finalize: step with remove on): a new
 * object example id -> {"reason", "detail"} in *out, or NULL (no analysis, or remove off).
 * 0 or a store read error. dataset.jsonl and `autodata export` leave these out. */
AD_WUR int report_removals(store *st, store_id run, json_t **out, char *err, size_t n);
AD_WUR int report_card_analysis(store *st, store_id run, struct buf *out, char *err, size_t n);

/* printf into err (NULL-safe); returns code. */
int report_err(char *err, size_t n, int code, const char *fmt, ...) AD_PRINTF(4, 5);

/* dir "/" name into out[cap] (fs_join_buf): 0, or AD_ETOOBIG with a message in err. */
AD_WUR int report_join(char *out, size_t cap, const char *dir, const char *name, char *err,
                       size_t n);

/* A deep copy of run's row from store_runs_each() (run 0 = the latest) in *row
 * (caller decrefs). AD_ENOTFOUND with a message when the store has no such run. */
AD_WUR int report_run_row(store *st, store_id run, json_t **row, char *err, size_t n);

/* The object holding "recipe"/"prompts"/"corpus" in a run row: info, or
 * info.extra when that is where they are. Borrowed; NULL when neither. */
const json_t *report_run_meta(const json_t *run_row);

/* An atomically published output file: written to path.PID.tmp, renamed on commit. */
struct report_file {
  FILE *f;
  char *path, *tmp;
};
AD_WUR int report_file_open(struct report_file *rf, const char *path, char *err, size_t n);
AD_WUR int report_file_write(struct report_file *rf, const void *p, size_t len, char *err,
                             size_t n);
/* Flush, fsync, close and rename; frees rf either way. */
AD_WUR int report_file_commit(struct report_file *rf, char *err, size_t n);
/* Close and remove the temporary file (safe on an unopened, zeroed rf). */
void report_file_abort(struct report_file *rf);

#endif
