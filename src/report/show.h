/* show.h - one source's story, read from a run store (`autodata show`).
 *
 * report_show_build() gathers everything a run did for one source into one JSON
 * document, from the store alone (read-only is enough):
 *
 *   {"run": id, "seed": n, "recipe_name": "...",
 *    "source": {"source_id","title","text_sha256","state","accepted","rounds_used"},
 *    "rounds": [{"round": r,
 *                "candidates": [record, ...],   every (round, index) row as stored:
 *                                               instructions, candidate, checks'
 *                                               reason/detail, quality, stats, scores,
 *                                               verdict, reason
 *                "checks": "passed" | "failed" | "not_run",
 *                "samples": {"weak": [sample, ...], "strong": [...], ...},
 *                "calls": [call, ...]}],          every model call of the round
 *    "counts": {"rounds": n, "candidates": n, "calls": n, "samples": n}}
 *
 * A call: {"id","role","sample","model","endpoint","status","error","cache_hit",
 * "attempts","prompt_tokens","completion_tokens","finish_reason","content"} where content is the
 * reply's message text (a cache hit's reply is looked up by its cache key), and,
 * with prompts set, "messages": the rendered request messages.
 * A sample pairs one solver answer with its judgement: {"sample": i (0-based),
 * "model","status","error","answer","finish_reason","judge": {"status","error","content",
 * "verdicts": [{"criterion": k (1-based),"text","weight","met","reason"}],
 * "score"} | null, "score": the score the loop recorded for it (when the record's
 * scores can be matched to the samples)}. A solver call's sample index is recovered from its sampling
 * seed (the loop derives it from run seed, source, round, role and sample; see
 * util/rng.h); a call whose seed matches none is numbered in call order.
 * When a (role, sample) was called more than once (a resumed round), the last
 * successful call is the sample; every call stays in "calls".
 *
 * report_show_print() renders the same document as text for a terminal.
 *
 * Errors: AD_ENOTFOUND with a message that says how to list the ids (no such
 * run, source or round), store read errors with the store's message.
 */
#ifndef AD_REPORT_SHOW_H
#define AD_REPORT_SHOW_H

#include <jansson.h>
#include <stdio.h>

#include "store/store.h"
#include "util/err.h"

/* One source's story (round 0 = every round) in *out (caller decrefs). */
AD_WUR int report_show_build(store *st, store_id run, const char *source_id, int round, int prompts,
                             json_t **out, char *err, size_t n);

/* The same document for a source already in hand: run_row as store_runs_each() gives it,
 * source_row as store_sources_each() does (the report's browser: no scan of the run's
 * sources per source). Every round. */
AD_WUR int report_show_build_source(store *st, const json_t *run_row, const json_t *source_row,
                                    int prompts, json_t **out, char *err, size_t n);

/* The sources of a run: {"run": id, "sources": [{"source_id","title","state",
 * "accepted","rounds_used"}, ...]} in *out (caller decrefs). */
AD_WUR int report_show_sources(store *st, store_id run, json_t **out, char *err, size_t n);

/* The document of report_show_build() as text. */
void report_show_print(const json_t *doc, FILE *f);

/* The document of report_show_sources() as text, one line per source. */
void report_show_print_sources(const json_t *doc, FILE *f);

#endif
