/* store_shared.h - what the store suites of both backends share (tests/unit/store_shared.c):
 * helpers that open a store and feed it, and test bodies that take the store's path, run by
 * test_store.c on a SQLite file and by test_store_pg.c on a PostgreSQL schema, so both
 * backends are held to the same behaviour by one copy of each check. */
#ifndef AD_TEST_STORE_SHARED_H
#define AD_TEST_STORE_SHARED_H

#include <jansson.h>

#include "store/store.h"

#define SHA_A "aaaaaaaa00000000000000000000000000000000000000000000000000000000"
#define SHA_B "bbbbbbbb00000000000000000000000000000000000000000000000000000000"
#define SHA_C "cccccccc00000000000000000000000000000000000000000000000000000000"

/* A writable / read-only store at path (asserts that it opens). */
store *ts_open_rw(const char *path);
store *ts_open_ro(const char *path);
/* Prompt hashes: challenger = challenger_hash, judge = 1111…. */
json_t *ts_prompts_json(const char *challenger_hash);
/* store_run_begin of recipe "cs-qa" with recipe_sha, prompts and seed; asserts its result is
 * expect_rc; *resumed (may be NULL) as it says. */
store_id ts_begin_run(store *st, const char *recipe_sha, json_t *prompts, uint64_t seed,
                      int new_run, int *resumed, int expect_rc);
/* A run of SHA_A, prompts of SHA_C, seed 1. */
store_id ts_simple_run(store *st);
/* A call of source s1 with key (may be NULL) and reply; failed with error when not NULL;
 * answered from the cache when cache_hit. */
void ts_put_call(store *st, store_id run, const char *role, const char *key, const char *reply,
                 const char *error, int cache_hit);

/* A row callback collecting the text of one member of each row (16 at most). */
struct ts_collect {
  char ids[16][64];
  int n;
  const char *key;
};
int ts_collect_fn(void *ud, const json_t *row);

/* ---- test bodies, each on a fresh store at path ---- */
void ts_check_resume_and_mismatch(const char *path);
void ts_check_sources_and_unknown_runs(const char *path);
void ts_check_cache_serves_only_successful_real_calls(const char *path);
void ts_check_iterators_order_and_content(const char *path);

#endif
