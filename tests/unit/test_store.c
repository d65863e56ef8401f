/* test_store.c - the run store (store.h) on its SQLite backend: cache keys,
 * schema migrations, the writer lock, read-only/full/corrupt files, resume
 * checks, atomic episode ends, batching, the read side and status aggregates. */
#include <criterion/criterion.h>
#include <criterion/redirect.h>
#include <errno.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zstd.h>

#include "cli/cmd.h"
#include "store/store.h"
#include "store/store_impl.h"
#include "util/buf.h"
#include "util/fs.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/timeu.h"

#include "helpers.h"

/* ---- fixtures ---- */

static char tdir[64];
static char dbpath[128];

static void tmp_setup(void) {
  th_mkdtemp(tdir, sizeof tdir, "store");
  snprintf(dbpath, sizeof dbpath, "%s/run.db", tdir);
}

static void tmp_teardown(void) { th_rmtree(tdir); /* best effort */ }

TestSuite(store, .init = tmp_setup, .fini = tmp_teardown);

static store *open_rw(const char *path) {
  store *st = NULL;
  int rc = store_open(path, 0, &st);
  cr_assert_eq(rc, 0, "open %s: %s", path, store_errmsg(st));
  return st;
}

static store *open_ro(const char *path) {
  store *st = NULL;
  int rc = store_open(path, STORE_OPEN_READONLY, &st);
  cr_assert_eq(rc, 0, "open ro %s: %s", path, store_errmsg(st));
  return st;
}

static json_t *prompts_json(const char *challenger_hash) {
  return json_pack("{s:s, s:s}", "challenger", challenger_hash, "judge",
                   "1111111111111111111111111111111111111111111111111111111111111111");
}

#define SHA_A "aaaaaaaa00000000000000000000000000000000000000000000000000000000"
#define SHA_B "bbbbbbbb00000000000000000000000000000000000000000000000000000000"
#define SHA_C "cccccccc00000000000000000000000000000000000000000000000000000000"

static store_id begin_run(store *st, const char *recipe_sha, json_t *prompts, uint64_t seed,
                          int new_run, int *resumed, int expect_rc) {
  struct store_run_info info = {.recipe_name = "cs-qa",
                                .recipe_sha256 = recipe_sha,
                                .prompt_hashes = prompts,
                                .seed = seed,
                                .version = "0.1.0",
                                .command_line = "autodata run recipe.yaml"};
  store_id run = 0;
  int res = -1;
  int rc = store_run_begin(st, &info, new_run, &run, &res);
  cr_assert_eq(rc, expect_rc, "run_begin rc %d: %s", rc, store_errmsg(st));
  if (resumed) *resumed = res;
  return run;
}

static store_id simple_run(store *st) {
  json_t *p = prompts_json(SHA_C);
  store_id run = begin_run(st, SHA_A, p, 1, 0, NULL, 0);
  json_decref(p);
  return run;
}

/* a successful call with a given key and reply */
static void put_call(store *st, store_id run, const char *role, const char *key, const char *reply,
                     const char *error, int cache_hit) {
  struct store_attempt at[2] = {{1, 429, "rate limited", 1000, 500}, {2, 200, NULL, 2000, 0}};
  struct store_call c = {.run = run,
                         .role = role,
                         .source_id = "s1",
                         .round = 1,
                         .endpoint = "local",
                         .model = "m-small",
                         .cache_key = key,
                         .request = "{\"model\":\"m-small\"}",
                         .reply = reply,
                         .error = error,
                         .http_status = error ? 500 : 200,
                         .prompt_tokens = 100,
                         .completion_tokens = 20,
                         .latency_us = 3000,
                         .attempts = cache_hit ? 0 : 2,
                         .retries = cache_hit ? 0 : 1,
                         .cache_hit = cache_hit,
                         .attempt_list = cache_hit ? NULL : at,
                         .n_attempt_list = cache_hit ? 0 : 2};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
}

static int64_t count_rows(const char *path, const char *sql) {
  sqlite3 *db;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *s;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  cr_assert_eq(sqlite3_step(s), SQLITE_ROW);
  int64_t n = sqlite3_column_int64(s, 0);
  sqlite3_finalize(s);
  sqlite3_close(db);
  return n;
}

/* ---- cache key ---- */

static json_t *req(const char *model, const char *msg, double temp, int seed) {
  return json_pack("{s:s, s:[{s:s, s:s}], s:f, s:i, s:i}", "model", model, "messages", "role",
                   "user", "content", msg, "temperature", temp, "seed", seed, "max_tokens", 512);
}

Test(store, cache_key_changes_with_every_request_byte) {
  char base[33], k[33];
  json_t *r = req("m1", "What is X?", 1.0, 7);
  cr_assert_eq(store_cache_key("local", r, base), 0);
  cr_assert_eq(strlen(base), 32);
  cr_assert_eq(strspn(base, "0123456789abcdef"), 32);

  json_t *variants[] = {req("m1", "What is Y?", 1.0, 7), req("m1", "What is X? ", 1.0, 7),
                        req("m2", "What is X?", 1.0, 7), req("m1", "What is X?", 0.7, 7),
                        req("m1", "What is X?", 1.0, 8)};
  for (size_t i = 0; i < sizeof variants / sizeof *variants; i++) {
    cr_assert_eq(store_cache_key("local", variants[i], k), 0);
    cr_assert_str_neq(k, base, "variant %zu must change the key", i);
    json_decref(variants[i]);
  }
  cr_assert_eq(store_cache_key("remote", r, k), 0);
  cr_assert_str_neq(k, base, "endpoint name is part of the key");
  /* an extra sampling field changes it too */
  json_t *r2 = json_deep_copy(r);
  json_object_set_new(r2, "top_p", json_real(0.9));
  cr_assert_eq(store_cache_key("local", r2, k), 0);
  cr_assert_str_neq(k, base);
  json_decref(r2);
  json_decref(r);
}

Test(store, cache_key_ignores_key_order_and_api_keys) {
  char a[33], b[33], c[33];
  json_t *msgs = json_pack("[{s:s, s:s}]", "role", "user", "content", "hi");
  json_t *r1 = json_object();
  json_object_set_new(r1, "model", json_string("m"));
  json_object_set(r1, "messages", msgs);
  json_object_set_new(r1, "temperature", json_real(1.0));
  json_t *r2 = json_object();
  json_object_set_new(r2, "temperature", json_real(1.0));
  json_object_set(r2, "messages", msgs);
  json_object_set_new(r2, "model", json_string("m"));
  cr_assert_eq(store_cache_key("local", r1, a), 0);
  cr_assert_eq(store_cache_key("local", r2, b), 0);
  cr_assert_str_eq(a, b, "JSON key order must not matter");
  setenv("AUTODATA_TEST_API_KEY", "sk-secret-1", 1);
  cr_assert_eq(store_cache_key("local", r1, c), 0);
  setenv("AUTODATA_TEST_API_KEY", "sk-secret-2", 1);
  cr_assert_eq(store_cache_key("local", r1, b), 0);
  cr_assert_str_eq(c, b, "API key value must not matter");
  cr_assert_str_eq(a, b);
  /* the text variant over the canonical dump gives the same key */
  char *canon = jx_dump_canonical(r2);
  store_cache_key_text("local", canon, strlen(canon), c);
  cr_assert_str_eq(a, c);
  free(canon);
  json_decref(msgs);
  json_decref(r1);
  json_decref(r2);
}

/* ---- schema ---- */

Test(store, migrates_an_empty_file) {
  th_write_file(dbpath, ""); /* 0 bytes */
  store *st = open_rw(dbpath);
  store_close(st);
  int64_t ver = count_rows(dbpath, "PRAGMA user_version");
  cr_assert_gt(ver, 0);
  cr_assert_eq(count_rows(dbpath, "PRAGMA application_id"), 0x41444154);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM schema_migrations"), ver);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM sqlite_master WHERE name = 'calls'"), 1);
  /* reopening applies nothing twice */
  st = open_rw(dbpath);
  store_close(st);
  cr_assert_eq(count_rows(dbpath, "PRAGMA user_version"), ver);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM schema_migrations"), ver);
}

Test(store, refuses_a_newer_schema) {
  store *st = open_rw(dbpath);
  store_close(st);
  sqlite3 *db;
  cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "PRAGMA user_version = 999", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  int rc = store_open(dbpath, 0, &st);
  cr_assert_eq(rc, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "newer autodata"), "%s", store_errmsg(st));
  cr_assert(strstr(store_errmsg(st), dbpath), "message names the path");
  store_close(st);
  rc = store_open(dbpath, STORE_OPEN_READONLY, &st);
  cr_assert_eq(rc, AD_EMISMATCH);
  store_close(st);
}

Test(store, refuses_a_foreign_sqlite_database) {
  sqlite3 *db;
  cr_assert_eq(sqlite3_open(dbpath, &db), SQLITE_OK);
  cr_assert_eq(sqlite3_exec(db, "CREATE TABLE t(x)", NULL, NULL, NULL), SQLITE_OK);
  sqlite3_close(db);
  store *st;
  cr_assert_eq(store_open(dbpath, 0, &st), AD_ECORRUPT);
  cr_assert(strstr(store_errmsg(st), "not an autodata store"), "%s", store_errmsg(st));
  store_close(st);
}

Test(store, corrupt_file_is_a_clear_error) {
  FILE *f = fopen(dbpath, "w");
  cr_assert_not_null(f);
  for (int i = 0; i < 512; i++) fputs("garbage!", f);
  fclose(f);
  store *st;
  cr_assert_eq(store_open(dbpath, 0, &st), AD_ECORRUPT);
  cr_assert(strstr(store_errmsg(st), dbpath), "%s", store_errmsg(st));
  cr_assert(strstr(store_errmsg(st), "move it away"), "%s", store_errmsg(st));
  store_close(st);
  cr_assert_eq(store_open(dbpath, STORE_OPEN_READONLY, &st), AD_ECORRUPT);
  store_close(st);
  /* the garbage file is left untouched */
  struct stat sb;
  cr_assert_eq(stat(dbpath, &sb), 0);
  cr_assert_eq(sb.st_size, 4096);
}

Test(store, readonly_open_of_missing_file) {
  store *st;
  cr_assert_eq(store_open(dbpath, STORE_OPEN_READONLY, &st), AD_ENOTFOUND);
  cr_assert(strstr(store_errmsg(st), "no store at"), "%s", store_errmsg(st));
  store_close(st);
  cr_assert_neq(access(dbpath, F_OK), 0, "a read-only open creates nothing");
}

/* A URL opens the PostgreSQL backend (test_store_pg.c), never a file of that name. */
Test(store, postgres_urls_open_the_postgres_backend) {
  store *st;
  cr_assert_eq(store_open("postgresql://127.0.0.1:1/x", 0, &st), AD_EIO);
  cr_assert(strstr(store_errmsg(st), "cannot connect to store postgresql://127.0.0.1:1/x"), "%s",
            store_errmsg(st));
  store_close(st);
  cr_assert_neq(access("postgresql:", F_OK), 0);
}

/* ---- lock ---- */

Test(store, second_writer_is_refused_with_the_pid) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  /* same process, second handle */
  store *st2;
  cr_assert_eq(store_open(dbpath, 0, &st2), AD_EBUSY);
  char want[64];
  snprintf(want, sizeof want, "in use by pid %ld", (long)getpid());
  cr_assert(strstr(store_errmsg(st2), want), "%s", store_errmsg(st2));
  store_close(st2);

  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    store *c;
    int rc = store_open(dbpath, 0, &c);
    int ok = rc == AD_EBUSY && strstr(store_errmsg(c), want) && strstr(store_errmsg(c), dbpath);
    store_close(c);
    /* a read-only open works while the writer holds the store */
    rc = store_open(dbpath, STORE_OPEN_READONLY, &c);
    store_id r = 0;
    ok = ok && rc == 0 && store_run_latest(c, &r) == 0 && r == run;
    store_close(c);
    _exit(ok ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child saw a refusal with the pid");
  store_close(st);
  /* released on close */
  st = open_rw(dbpath);
  store_close(st);
}

/* ---- read-only file ---- */

Test(store, readonly_file_is_a_clear_error) {
  store *st = open_rw(dbpath);
  simple_run(st);
  store_close(st);
  char lock[160];
  snprintf(lock, sizeof lock, "%s.lock", dbpath);
  cr_assert_eq(chmod(tdir, 0755), 0);
  cr_assert_eq(chmod(lock, 0666), 0);
  cr_assert_eq(chmod(dbpath, 0444), 0);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    /* root ignores file modes: drop to nobody so 0444 means read-only */
    if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0)) _exit(3);
    store *c;
    int rc = store_open(dbpath, 0, &c);
    int ok = rc == AD_EREADONLY && strstr(store_errmsg(c), dbpath) &&
             strstr(store_errmsg(c), "writable");
    if (!ok) fprintf(stderr, "rc %d: %s\n", rc, store_errmsg(c));
    store_close(c);
    /* and without even a lock file we may create */
    _exit(ok ? 0 : 1);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "child exit %d", WEXITSTATUS(status));
}

Test(store, readonly_handle_refuses_writes) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  store_close(st);
  st = open_ro(dbpath);
  json_t *e = json_pack("{s:s}", "msg", "x");
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), AD_EREADONLY);
  json_decref(e);
  store_close(st);
}

/* ---- full disk ---- */

Test(store, full_disk_keeps_batch_and_retries) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_sqlite_exec(st, "PRAGMA max_page_count = 1"), 0);
  char reply[4000];
  memset(reply, 'r', sizeof reply - 1);
  reply[sizeof reply - 1] = 0;
  char key[33];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "%032x", i);
    put_call(st, run, "judge", key, reply, NULL, 0);
  }
  cr_assert_eq(store_pending(st), 200); /* a call row + its body each */
  int rc = store_flush(st);
  cr_assert_eq(rc, AD_EFULL, "rc %d: %s", rc, store_errmsg(st));
  cr_assert(strstr(store_errmsg(st), "disk full"), "%s", store_errmsg(st));
  cr_assert(strstr(store_errmsg(st), dbpath), "%s", store_errmsg(st));
  cr_assert_eq(store_pending(st), 200, "the failed batch stays queued");
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM calls"), 0, "nothing half-written");
  /* the queued rows still serve the cache */
  char *body = NULL;
  cr_assert_eq(store_cache_get(st, "00000000000000000000000000000005", &body, NULL), 0);
  free(body);
  /* space comes back: the same batch commits */
  cr_assert_eq(store_sqlite_exec(st, "PRAGMA max_page_count = 1000000"), 0);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_pending(st), 0);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM calls"), 100);
  store_close(st);
}

/* ---- runs and resume ---- */

Test(store, resume_and_mismatch_messages) {
  store *st = open_rw(dbpath);
  json_t *p = prompts_json(SHA_C);
  int resumed;
  store_id r1 = begin_run(st, SHA_A, p, 1, 0, &resumed, 0);
  cr_assert_eq(r1, 1);
  cr_assert_eq(resumed, 0);
  put_call(st, r1, "challenger", "0123456789abcdef0123456789abcdef", "{\"x\":1}", NULL, 0);
  cr_assert_eq(store_run_set_status(st, r1, "interrupted"), 0);
  store_close(st);

  st = open_rw(dbpath);
  store_id r = begin_run(st, SHA_A, p, 1, 0, &resumed, 0);
  cr_assert_eq(r, r1);
  cr_assert_eq(resumed, 1);

  begin_run(st, SHA_B, p, 1, 0, NULL, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "recipe changed: sha256 aaaaaaaa\u2026 -> bbbbbbbb\u2026"),
            "%s", store_errmsg(st));

  json_t *p2 = prompts_json(SHA_B);
  begin_run(st, SHA_A, p2, 1, 0, NULL, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "prompt 'challenger' changed"), "%s", store_errmsg(st));
  cr_assert_null(strstr(store_errmsg(st), "judge"), "%s", store_errmsg(st));

  begin_run(st, SHA_A, p, 2, 0, NULL, AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "seed 1 -> 2"), "%s", store_errmsg(st));

  json_t *p3 = prompts_json(SHA_C);
  json_object_set_new(p3, "orchestrator", json_string(SHA_A));
  begin_run(st, SHA_B, p3, 3, 0, NULL, AD_EMISMATCH);
  const char *m = store_errmsg(st);
  cr_assert(strstr(m, "recipe changed") && strstr(m, "prompt 'orchestrator' added") &&
                strstr(m, "seed 1 -> 3"),
            "%s", m);

  /* a new run in the same store; the cache still serves it */
  store_id r2 = begin_run(st, SHA_B, p2, 2, 1, &resumed, 0);
  cr_assert_eq(r2, 2);
  cr_assert_eq(resumed, 0);
  char *body = NULL;
  size_t len = 0;
  cr_assert_eq(store_cache_get(st, "0123456789abcdef0123456789abcdef", &body, &len), 0);
  cr_assert_str_eq(body, "{\"x\":1}");
  cr_assert_eq(len, 7);
  free(body);
  store_close(st);
  json_decref(p);
  json_decref(p2);
  json_decref(p3);
}

Test(store, source_text_change_is_reported) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  cr_assert_eq(store_source_put(st, run, "s1", "Paper 1", SHA_A), 0);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_source_put(st, run, "s1", "Paper 1", SHA_A), 0, "idempotent");
  cr_assert_eq(store_pending(st), 0, "nothing queued for a known source");
  cr_assert_eq(store_source_put(st, run, "s1", "Paper 1", SHA_B), AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "source 's1' changed"), "%s", store_errmsg(st));
  store_close(st);
}

Test(store, puts_for_unknown_run_are_refused) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  cr_assert_eq(store_source_put(st, run + 1, "s", NULL, NULL), AD_EINVAL);
  cr_assert_eq(store_candidate_put(st, run, "s", 1, 0, "maybe", NULL, NULL), AD_EINVAL);
  cr_assert_eq(store_pending(st), 0);
  store_close(st);
}

/* ---- cache ---- */

Test(store, cache_serves_only_successful_real_calls) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  const char *k_ok = "11111111111111111111111111111111";
  const char *k_err = "22222222222222222222222222222222";
  const char *k_hit = "33333333333333333333333333333333";
  put_call(st, run, "weak_solver", k_ok, "{\"ok\":true}", NULL, 0);
  put_call(st, run, "weak_solver", k_err, "{\"error\":{}}", "HTTP 500", 0);
  put_call(st, run, "weak_solver", k_hit, "{\"hit\":1}", NULL, 1);
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, k_ok, &b, NULL), 0, "served from the pending batch");
  cr_assert_str_eq(b, "{\"ok\":true}");
  free(b);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_cache_get(st, k_ok, &b, NULL), 0, "served from the file");
  free(b);
  cr_assert_eq(store_cache_get(st, k_err, &b, NULL), AD_ENOTFOUND);
  cr_assert_null(b);
  cr_assert_eq(store_cache_get(st, k_hit, &b, NULL), AD_ENOTFOUND);
  cr_assert_eq(store_cache_get(st, "not-a-key", &b, NULL), AD_EINVAL);
  store_close(st);
}

static int body_cb(void *ud, const json_t *row) {
  json_t **out = ud;
  *out = json_deep_copy(row);
  return 1;
}

Test(store, large_bodies_are_compressed_and_read_back_exactly) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  /* A request that repeats a source text, as challenger requests do, and a reply
   * with multi-byte UTF-8; both past the compression threshold. */
  struct buf rq = BUF_INIT, rp = BUF_INIT;
  cr_assert_eq(buf_puts(&rq, "{\"messages\":\""), 0);
  for (int i = 0; i < 2000; i++) cr_assert_eq(buf_printf(&rq, "fact F-%04x = %d. ", i, i % 97), 0);
  cr_assert_eq(buf_puts(&rq, "\"}"), 0);
  for (int i = 0; i < 300; i++) cr_assert_eq(buf_puts(&rp, "réponse ✓ "), 0);
  const char *key = "44444444444444444444444444444444";
  struct store_call c = {.run = run,
                         .role = "challenger",
                         .endpoint = "e",
                         .model = "m",
                         .cache_key = key,
                         .request = buf_str(&rq),
                         .reply = buf_str(&rp),
                         .http_status = 200,
                         .attempts = 1};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  cr_assert_eq(count_rows(dbpath,
                          "SELECT count(*) FROM call_bodies WHERE typeof(request) = "
                          "'blob' AND typeof(reply) = 'blob'"),
               1);
  cr_assert_lt(count_rows(dbpath, "SELECT length(request) FROM call_bodies"), (int64_t)rq.len / 4,
               "the repeated source text compresses");
  char *b = NULL;
  size_t n = 0;
  cr_assert_eq(store_cache_get(st, key, &b, &n), 0, "%s", store_errmsg(st));
  cr_assert_eq(n, rp.len);
  cr_assert_str_eq(b, buf_str(&rp));
  free(b);
  json_t *row = NULL;
  cr_assert_eq(store_calls_each(st, run, "challenger", 1, body_cb, &row), 1);
  cr_assert_str_eq(jx_str(row, "request"), buf_str(&rq));
  cr_assert_str_eq(jx_str(row, "reply"), buf_str(&rp));
  json_decref(row);
  /* A small body of a call without a source stays TEXT. */
  c.cache_key = "55555555555555555555555555555555";
  c.request = c.reply = "{\"ok\":true}";
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM call_bodies WHERE typeof(reply) = 'text'"),
               1);
  buf_release(&rq);
  buf_release(&rp);
  store_close(st);
}

/* A source text as a challenger request holds it, with a per-call tail. */
static void source_request(struct buf *b, int source, int call) {
  buf_reset(b);
  cr_assert_eq(buf_puts(b, "{\"messages\":[{\"content\":\"SOURCE: "), 0);
  for (int i = 0; i < 400; i++)
    cr_assert_eq(buf_printf(b, "fact %d.%d = %d. ", source, i, (i * 7919 + source) % 1009), 0);
  cr_assert_eq(buf_printf(b, "\"}],\"seed\":%d}", call), 0);
}

static int collect_cb(void *ud, const json_t *row) {
  json_array_append(ud, (json_t *)row);
  return 0;
}

/* The compact store: a source's bodies are compressed against its reference (body_refs), read
 * back exactly by every reader, from this handle and from a new one, and much smaller than
 * standalone frames. */
Test(store, source_bodies_share_a_reference) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  struct buf rq = BUF_INIT;
  json_t *want = json_array();
  const char *roles[] = {"challenger", "quality", "weak"};
  size_t raw = 0;
  for (int src = 0; src < 3; src++) {
    char sid[16];
    snprintf(sid, sizeof sid, "s%d", src);
    for (int k = 0; k < 6; k++) {
      char key[33], reply[200];
      snprintf(key, sizeof key, "%02u%02u%028u", (unsigned)src % 100u, (unsigned)k % 100u, 0u);
      snprintf(reply, sizeof reply,
               "{\"choices\":[{\"message\":{\"content\":\"answer %d of %s ✓\"}}]}", k, sid);
      source_request(&rq, src, k);
      raw += rq.len + strlen(reply);
      struct store_call c = {.run = run,
                             .role = roles[k % 3],
                             .source_id = sid,
                             .round = 1 + k / 3,
                             .endpoint = "e",
                             .model = "m",
                             .cache_key = key,
                             .request = buf_str(&rq),
                             .reply = reply,
                             .http_status = 200,
                             .attempts = 1};
      cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
      json_array_append_new(
          want, json_pack("{s:s,s:s,s:s}", "key", key, "request", buf_str(&rq), "reply", reply));
    }
    struct store_episode_end e = {.source_id = sid, .state = STORE_SRC_DONE, .rounds_used = 2};
    cr_assert_eq(store_episode_finish(st, run, &e), 0, "%s", store_errmsg(st));
    cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st)); /* s0 leaves the run's root */
  }
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM call_bodies WHERE ref IS NULL"), 0);
  cr_assert_gt(count_rows(dbpath, "SELECT count(*) FROM body_refs"), 0);
  int64_t stored = count_rows(dbpath,
                              "SELECT sum(length(request) + length(reply)) FROM "
                              "call_bodies") +
                   count_rows(dbpath, "SELECT sum(length(data)) FROM body_refs");
  cr_assert_lt(stored, (int64_t)raw / 12, "stored %lld of %zu bytes", (long long)stored, raw);
  for (int pass = 0; pass < 2; pass++) { /* this handle, then a read-only one */
    store *r = pass ? open_ro(dbpath) : st;
    json_t *rows = json_array();
    cr_assert_eq(store_calls_each(r, run, NULL, 1, collect_cb, rows), 0, "%s", store_errmsg(r));
    cr_assert_eq(json_array_size(rows), json_array_size(want));
    for (size_t i = 0; i < json_array_size(want); i++) {
      const json_t *w = json_array_get(want, i), *g = json_array_get(rows, i);
      cr_assert_str_eq(jx_str(g, "request"), jx_str(w, "request"), "row %zu", i);
      cr_assert_str_eq(jx_str(g, "reply"), jx_str(w, "reply"), "row %zu", i);
      char *b = NULL;
      cr_assert_eq(store_cache_get(r, jx_str(w, "key"), &b, NULL), 0, "%s", store_errmsg(r));
      cr_assert_str_eq(b, jx_str(w, "reply"));
      free(b);
    }
    json_decref(rows);
    rows = json_array();
    cr_assert_eq(store_source_calls_each(r, run, "s2", 1, collect_cb, rows), 0);
    cr_assert_eq(json_array_size(rows), 6);
    cr_assert_str_eq(jx_str(json_array_get(rows, 5), "request"),
                     jx_str(json_array_get(want, 17), "request"));
    json_decref(rows);
    if (pass) store_close(r);
  }
  /* A new writer continues the generations' ids. */
  store_close(st);
  st = open_rw(dbpath);
  source_request(&rq, 9, 0);
  struct store_call c = {.run = run,
                         .role = "challenger",
                         .source_id = "s9",
                         .round = 1,
                         .endpoint = "e",
                         .model = "m",
                         .cache_key = "99990000000000000000000000000000",
                         .request = buf_str(&rq),
                         .reply = "{}",
                         .http_status = 200,
                         .attempts = 1};
  cr_assert_eq(store_call_put(st, &c), 0);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  json_t *row = NULL;
  cr_assert_eq(store_source_calls_each(st, run, "s9", 1, body_cb, &row), 1);
  cr_assert_str_eq(jx_str(row, "request"), buf_str(&rq));
  json_decref(row);
  store_close(st);
  json_decref(want);
  buf_release(&rq);
}

/* A store written by the version before the compact store (tests/unit/fixtures/store-v6.db:
 * `autodata run examples/sim.yaml` on 2 sim sources, 1 round, at commit f23b78f, then
 * VACUUMed with 1 KiB pages to keep it small): a writable open migrates it, every body reads
 * back the same as before, and new calls of a source are written against a reference. */
Test(store, migrates_a_store_written_before_the_compact_store) {
  char *raw = NULL;
  size_t n = 0;
  cr_assert_eq(fs_read_all("tests/unit/fixtures/store-v6.db", 1 << 24, &raw, &n), 0);
  FILE *f = fopen(dbpath, "wb");
  cr_assert(f && fwrite(raw, 1, n, f) == n);
  fclose(f);
  free(raw);
  /* before: the bodies as SQLite holds them (zstd frames and text), inflated by hand */
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM call_bodies"), 6);
  cr_assert_eq(count_rows(dbpath,
                          "SELECT count(*) FROM pragma_table_info('call_bodies') "
                          "WHERE name = 'ref'"),
               0);
  sqlite3 *db;
  cr_assert_eq(sqlite3_open_v2(dbpath, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *q;
  cr_assert_eq(sqlite3_prepare_v2(db, "SELECT request, reply FROM call_bodies ORDER BY call_id", -1,
                                  &q, NULL),
               SQLITE_OK);
  json_t *before = json_array();
  while (sqlite3_step(q) == SQLITE_ROW) {
    for (int i = 0; i < 2; i++) {
      const void *p = sqlite3_column_blob(q, i);
      size_t pn = (size_t)sqlite3_column_bytes(q, i);
      if (sqlite3_column_type(q, i) == SQLITE_BLOB) {
        unsigned long long m = ZSTD_getFrameContentSize(p, pn);
        char *out = xmalloc((size_t)m + 1);
        cr_assert_eq(ZSTD_decompress(out, (size_t)m, p, pn), m);
        json_array_append_new(before, json_stringn(out, (size_t)m));
        free(out);
      } else {
        json_array_append_new(before, json_stringn(p, pn));
      }
    }
  }
  sqlite3_finalize(q);
  sqlite3_close(db);
  store *st = open_rw(dbpath); /* migrates */
  cr_assert_eq(count_rows(dbpath,
                          "SELECT count(*) FROM pragma_table_info('call_bodies') "
                          "WHERE name = 'ref'"),
               1);
  json_t *rows = json_array();
  cr_assert_eq(store_calls_each(st, 1, NULL, 1, collect_cb, rows), 0, "%s", store_errmsg(st));
  cr_assert_eq(json_array_size(rows) * 2, json_array_size(before));
  for (size_t i = 0; i < json_array_size(rows); i++) {
    const json_t *r = json_array_get(rows, i);
    cr_assert_str_eq(jx_str(r, "request"), json_string_value(json_array_get(before, 2 * i)));
    cr_assert_str_eq(jx_str(r, "reply"), json_string_value(json_array_get(before, 2 * i + 1)));
  }
  /* the old cache still answers */
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, jx_str(json_array_get(rows, 0), "cache_key"), &b, NULL), 0);
  cr_assert_str_eq(b, json_string_value(json_array_get(before, 1)));
  free(b);
  /* a new call of a source: against a reference */
  struct store_call c = {.run = 1,
                         .role = "challenger",
                         .source_id = "sim-0001",
                         .round = 2,
                         .endpoint = "sim",
                         .model = "m",
                         .cache_key = "77770000000000000000000000000000",
                         .request = json_string_value(json_array_get(before, 0)),
                         .reply = "{}",
                         .http_status = 200,
                         .attempts = 1};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM call_bodies WHERE ref IS NOT NULL"), 1);
  json_t *row = NULL;
  cr_assert_eq(store_source_calls_each(st, 1, "sim-0001", 1, body_cb, &row), 1);
  json_decref(row);
  json_decref(rows);
  rows = json_array();
  cr_assert_eq(store_source_calls_each(st, 1, "sim-0001", 1, collect_cb, rows), 0);
  cr_assert_str_eq(jx_str(json_array_get(rows, json_array_size(rows) - 1), "request"),
                   json_string_value(json_array_get(before, 0)));
  json_decref(rows);
  json_decref(before);
  store_close(st);
}

Test(store, cache_from_another_store) {
  char other[160];
  snprintf(other, sizeof other, "%s/other.db", tdir);
  store *o = open_rw(other);
  store_id orun = simple_run(o);
  put_call(o, orun, "judge", "44444444444444444444444444444444", "{\"from\":\"other\"}", NULL, 0);
  cr_assert_eq(store_flush(o), 0);
  /* the other store may stay open for writing: attaching is read-only */
  store *st = open_rw(dbpath);
  simple_run(st);
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, "44444444444444444444444444444444", &b, NULL), AD_ENOTFOUND);
  cr_assert_eq(store_attach_cache(st, other), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_cache_get(st, "44444444444444444444444444444444", &b, NULL), 0);
  cr_assert_str_eq(b, "{\"from\":\"other\"}");
  free(b);
  cr_assert_eq(store_attach_cache(st, th_path(tdir, "no-such-dir/x.db")), AD_ENOTFOUND);
  store_close(st);
  store_close(o);
}

/* ---- batching and atomicity ---- */

Test(store, maybe_flush_thresholds) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  store_set_batch(st, 3, 1000000);
  json_t *e = json_pack("{s:s}", "msg", "hello");
  int64_t now = time_now_ms();
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), 0);
  cr_assert_eq(store_event_put(st, run, LOG_WARN, e), 0);
  cr_assert_eq(store_maybe_flush(st, now), 0);
  cr_assert_eq(store_pending(st), 2, "below both thresholds");
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), 0);
  cr_assert_eq(store_maybe_flush(st, now), 0);
  cr_assert_eq(store_pending(st), 0, "row threshold");
  store_set_batch(st, 1000, 50);
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), 0);
  cr_assert_eq(store_maybe_flush(st, time_now_ms()), 0);
  cr_assert_eq(store_pending(st), 1);
  cr_assert_eq(store_maybe_flush(st, time_now_ms() + 60), 0);
  cr_assert_eq(store_pending(st), 0, "time threshold");
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM events"), 4);
  json_decref(e);
  store_close(st);
}

/* pad: bytes of filler in the candidate record (to need new pages) */
static void finish_episode(store *st, store_id run, const char *sid, const char *exid, size_t pad) {
  char *fill = calloc(1, pad + 1);
  memset(fill, 'f', pad);
  json_t *cand = json_pack("{s:s, s:f, s:s}", "question", "Q?", "gap", 0.4, "pad", fill);
  free(fill);
  json_t *ex = json_pack("{s:s, s:s}", "question", "Q?", "reference_answer", "A");
  struct store_episode_end e = {.source_id = sid,
                                .state = STORE_SRC_DONE,
                                .rounds_used = 2,
                                .round = 2,
                                .index = 0,
                                .verdict = "accepted",
                                .cand_record = cand,
                                .example_id = exid,
                                .example = ex};
  cr_assert_eq(store_episode_finish(st, run, &e), 0, "%s", store_errmsg(st));
  json_decref(cand);
  json_decref(ex);
}

Test(store, episode_finish_is_all_or_nothing) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  cr_assert_eq(store_source_put(st, run, "s1", "P1", SHA_A), 0);
  cr_assert_eq(store_source_put(st, run, "s2", "P2", SHA_B), 0);
  cr_assert_eq(store_flush(st), 0);
  /* a failing commit leaves nothing of the episode (max_page_count cannot go
   * below the current size, so the 64 KB record needs pages it cannot get) */
  cr_assert_eq(store_sqlite_exec(st, "PRAGMA max_page_count = 1"), 0);
  finish_episode(st, run, "s1", "ex-0001", 65536);
  cr_assert_eq(store_pending(st), 4); /* candidate, example, accepted count, state */
  cr_assert_eq(store_flush(st), AD_EFULL);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM candidates"), 0);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM examples"), 0);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM sources WHERE state != 'pending'"), 0);
  cr_assert_eq(store_sqlite_exec(st, "PRAGMA max_page_count = 1000000"), 0);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  struct store_source s;
  cr_assert_eq(store_source_get(st, run, "s1", &s), 0);
  cr_assert_eq(s.state, STORE_SRC_DONE);
  cr_assert_eq(s.accepted, 1);
  cr_assert_eq(s.rounds_used, 2);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM candidates"), 1);

  /* kill -9 between a committed episode and an unflushed one */
  fflush(NULL);
  store_close(st);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    store *c = NULL;
    if (store_open(dbpath, 0, &c)) _exit(2);
    finish_episode(c, run, "s2", "ex-0002", 0);
    raise(SIGKILL);
    _exit(3);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFSIGNALED(status));
  st = open_rw(dbpath); /* the dead child's lock is gone */
  cr_assert_eq(store_source_get(st, run, "s2", &s), 0);
  cr_assert_eq(s.state, STORE_SRC_PENDING, "nothing of the killed episode");
  cr_assert_eq(s.accepted, 0);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM examples"), 1);
  store_close(st);
}

/* ---- read side ---- */

struct collect {
  char ids[16][64];
  int n;
  const char *key;
};
static int collect_fn(void *ud, const json_t *row) {
  struct collect *c = ud;
  const char *v = jx_str(row, c->key);
  if (c->n < 16) snprintf(c->ids[c->n++], 64, "%s", v ? v : "(null)");
  return 0;
}
static int stop_fn(void *ud, const json_t *row) {
  (void)row;
  ++*(int *)ud;
  return 42;
}

Test(store, iterators_order_and_content) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  const char *sids[] = {"s3", "s1", "s2"};
  for (int i = 0; i < 3; i++) cr_assert_eq(store_source_put(st, run, sids[i], NULL, NULL), 0);
  json_t *ex = json_pack("{s:s}", "question", "q");
  cr_assert_eq(store_example_put(st, run, "s3", "ex-b", ex), 0);
  cr_assert_eq(store_example_put(st, run, "s1", "ex-a", ex), 0);
  cr_assert_eq(store_example_put(st, run, "s1", "ex-a", ex), 0); /* replace, not duplicate */
  cr_assert_eq(store_candidate_put(st, run, "s2", 1, 0, "rejected", "too_easy", ex), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 2, 0, "rejected", "no_gap", ex), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 3, 0, "accepted", NULL, ex), 0);
  json_decref(ex);

  struct collect c = {.key = "example_id"};
  cr_assert_eq(store_examples_each(st, 0, collect_fn, &c), 0, "%s", store_errmsg(st));
  cr_assert_eq(c.n, 2);
  cr_assert_str_eq(c.ids[0], "ex-a");
  cr_assert_str_eq(c.ids[1], "ex-b");

  struct collect r = {.key = "reason"};
  cr_assert_eq(store_candidates_each(st, run, "rejected", collect_fn, &r), 0);
  cr_assert_eq(r.n, 2);
  cr_assert_str_eq(r.ids[0], "no_gap"); /* s1 before s2 */
  cr_assert_str_eq(r.ids[1], "too_easy");

  struct collect s = {.key = "source_id"};
  cr_assert_eq(store_sources_each(st, run, collect_fn, &s), 0);
  cr_assert_eq(s.n, 3);
  cr_assert_str_eq(s.ids[0], "s3", "insertion order");
  struct store_source src;
  cr_assert_eq(store_source_get(st, run, "s1", &src), 0);
  cr_assert_eq(src.accepted, 1);
  cr_assert_eq(store_source_get(st, run, "nope", &src), AD_ENOTFOUND);

  int calls = 0;
  cr_assert_eq(store_candidates_each(st, run, NULL, stop_fn, &calls), 42, "callback stops");
  cr_assert_eq(calls, 1);

  put_call(st, run, "judge", NULL, "{}", NULL, 0);
  struct collect k = {.key = "reply"};
  cr_assert_eq(store_calls_each(st, run, "judge", 1, collect_fn, &k), 0);
  cr_assert_eq(k.n, 1);
  cr_assert_str_eq(k.ids[0], "{}");
  store_close(st);
}

Test(store, one_sources_rows_only) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  json_t *rec = json_pack("{s:s}", "question", "q");
  cr_assert_eq(store_candidate_put(st, run, "s2", 1, 0, "rejected", "too_easy", rec), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 2, 0, "rejected", "no_gap", rec), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 1, 0, "rejected", "too_hard", rec), 0);
  json_decref(rec);
  struct collect r = {.key = "reason"};
  cr_assert_eq(store_source_candidates_each(st, run, "s1", collect_fn, &r), 0, "%s",
               store_errmsg(st));
  cr_assert_eq(r.n, 2);
  cr_assert_str_eq(r.ids[0], "too_hard", "by round");
  cr_assert_str_eq(r.ids[1], "no_gap");

  put_call(st, run, "judge", NULL, "{\"a\":1}", NULL, 0); /* put_call: source s1 */
  struct store_call other = {.run = run,
                             .role = "judge",
                             .source_id = "s2",
                             .round = 1,
                             .endpoint = "local",
                             .model = "m",
                             .request = "{}",
                             .reply = "{}"};
  cr_assert_eq(store_call_put(st, &other), 0);
  put_call(st, run, "weak", NULL, "{\"b\":2}", NULL, 0);
  struct collect k = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, 0, "s1", 1, collect_fn, &k), 0, "%s", store_errmsg(st));
  cr_assert_eq(k.n, 2);
  cr_assert_str_eq(k.ids[0], "{\"a\":1}", "by id, with bodies");
  cr_assert_str_eq(k.ids[1], "{\"b\":2}");
  struct collect nb = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, run, "s2", 0, collect_fn, &nb), 0);
  cr_assert_eq(nb.n, 1);
  cr_assert_str_eq(nb.ids[0], "(null)", "no bodies when not asked");
  struct collect none = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, run, "nope", 1, collect_fn, &none), 0);
  cr_assert_eq(none.n, 0);
  cr_assert_eq(store_source_calls_each(st, run, NULL, 1, collect_fn, &none), AD_EINVAL);
  store_close(st);
}

/* ---- aggregates ---- */

Test(store, stats_aggregates) {
  store *st = open_rw(dbpath);
  json_t *p = prompts_json(SHA_C);
  json_t *prices = json_pack("{s:{s:f, s:f}}", "m-small", "prompt_per_mtok", 1.0,
                             "completion_per_mtok", 2.0);
  struct store_run_info info = {.recipe_name = "cs-qa",
                                .recipe_sha256 = SHA_A,
                                .prompt_hashes = p,
                                .seed = 9,
                                .prices = prices};
  store_id run;
  cr_assert_eq(store_run_begin(st, &info, 0, &run, NULL), 0);
  const char *sids[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; i++) cr_assert_eq(store_source_put(st, run, sids[i], NULL, NULL), 0);
  cr_assert_eq(store_source_set_state(st, run, "b", STORE_SRC_IN_PROGRESS, 1), 0);
  cr_assert_eq(store_source_set_state(st, run, "c", STORE_SRC_EXHAUSTED, 4), 0);
  finish_episode(st, run, "a", "ex-1", 0);
  cr_assert_eq(store_candidate_put(st, run, "c", 1, 0, "rejected", "too_easy", NULL), 0);
  cr_assert_eq(store_candidate_put(st, run, "c", 2, 0, "rejected", "too_easy", NULL), 0);
  cr_assert_eq(store_candidate_put(st, run, "c", 3, 0, "rejected", "quality:leakage", NULL), 0);
  put_call(st, run, "judge", "55555555555555555555555555555555", "{}", NULL, 0);
  put_call(st, run, "judge", "55555555555555555555555555555555", NULL, NULL, 1);
  put_call(st, run, "weak_solver", NULL, NULL, "HTTP 500", 0);
  cr_assert_eq(store_flush(st), 0);
  store_close(st);

  st = open_ro(dbpath);
  json_t *s = NULL;
  cr_assert_eq(store_stats(st, 0, &s), 0, "%s", store_errmsg(st));
  json_t *src = json_object_get(s, "sources");
  cr_assert_eq(jx_int(src, "total", -1), 5);
  cr_assert_eq(jx_int(src, "pending", -1), 2);
  cr_assert_eq(jx_int(src, "in_progress", -1), 1);
  cr_assert_eq(jx_int(src, "done", -1), 1);
  cr_assert_eq(jx_int(src, "exhausted", -1), 1);
  cr_assert_eq(jx_int(s, "accepted", -1), 1);
  cr_assert_eq(jx_int(s, "candidates", -1), 4);
  json_t *rej = json_object_get(s, "rejections");
  cr_assert_eq(jx_int(rej, "too_easy", -1), 2);
  cr_assert_eq(jx_int(rej, "quality:leakage", -1), 1);
  json_t *calls = json_object_get(s, "calls");
  cr_assert_eq(jx_int(calls, "total", -1), 3);
  cr_assert_eq(jx_int(calls, "ok", -1), 1);
  cr_assert_eq(jx_int(calls, "error", -1), 1);
  cr_assert_eq(jx_int(calls, "cache_hits", -1), 1);
  cr_assert_eq(jx_int(calls, "retries", -1), 2);
  cr_assert_eq(jx_int(calls, "attempts", -1), 4);
  json_t *judge = json_object_get(json_object_get(calls, "by_role"), "judge");
  cr_assert_eq(jx_int(judge, "ok", -1), 1);
  cr_assert_eq(jx_int(judge, "cache_hits", -1), 1);
  json_t *tok = json_object_get(s, "tokens");
  cr_assert_eq(jx_int(tok, "prompt", -1), 200, "cache hits cost no tokens");
  cr_assert_eq(jx_int(tok, "completion", -1), 40);
  /* 200 prompt tokens at $1/M + 40 completion at $2/M */
  cr_assert_float_eq(jx_num(s, "cost_usd", -1), 200e-6 + 80e-6, 1e-12);
  cr_assert_not_null(json_object_get(s, "latency_ms"));
  cr_assert_eq(jx_int(json_object_get(s, "run"), "seed", -1), 9);
  json_decref(s);
  store_close(st);

  /* the CLI: JSON and human output succeed; a missing store is a usage error */
  cr_redirect_stdout();
  cr_redirect_stderr();
  char *argv1[] = {"status", "--store", dbpath, "--json", NULL};
  cr_assert_eq(cmd_status(4, argv1), 0);
  char *argv2[] = {"status", "--store", dbpath, NULL};
  cr_assert_eq(cmd_status(3, argv2), 0);
  char missing[160];
  snprintf(missing, sizeof missing, "%s/missing.db", tdir);
  char *argv3[] = {"status", "--store", missing, NULL};
  cr_assert_eq(cmd_status(3, argv3), 2);
  json_decref(p);
  json_decref(prices);
}

/* A row that can never be written (here: a trigger aborts it) is dropped with
 * its body; the rest of the batch commits on the next flush, bodies attached
 * to the right calls. */
/* status's numbers come from call_agg (kept by a trigger): the same as a scan of calls gives,
 * NULL models, errors, cache hits and latencies included. */
Test(store, stats_from_aggregates_equal_a_scan_of_calls) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  const char *roles[] = {"judge", "weak", "strong"};
  for (int i = 0; i < 60; i++) {
    char key[33];
    snprintf(key, sizeof key, "%032x", (unsigned)i % 40u);
    struct store_call c = {.run = run,
                           .role = roles[i % 3],
                           .source_id = i % 2 ? "s1" : "s2",
                           .round = 1,
                           .endpoint = "e",
                           .model = i % 7 == 0 ? NULL
                                    : i % 2    ? "m-a"
                                               : "m-b",
                           .cache_key = key,
                           .request = "{}",
                           .reply = i % 5 ? "{\"ok\":1}" : NULL,
                           .error = i % 5 ? NULL : "HTTP 500",
                           .prompt_tokens = 10 + i,
                           .completion_tokens = i % 4 ? 3 * i : 0,
                           .prefix_tokens = i % 3,
                           .latency_us = i % 9 ? 1000 + (i * 7919) % 5000 : 0,
                           .attempts = 1 + i % 2,
                           .retries = i % 2,
                           .cache_hit = i >= 40};
    cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
  }
  cr_assert_eq(store_flush(st), 0);
  json_t *fast = NULL, *slow = NULL;
  cr_assert_eq(store_stats(st, run, &fast), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_sqlite_exec(st, "DROP TRIGGER calls_agg; DROP TABLE call_agg"), 0);
  store_close(st);
  st = open_ro(dbpath); /* no call_agg: the scan */
  cr_assert_eq(store_stats(st, run, &slow), 0, "%s", store_errmsg(st));
  char *a = json_dumps(fast, JSON_COMPACT), *b = json_dumps(slow, JSON_COMPACT);
  cr_assert_str_eq(a, b);
  cr_assert(strstr(a, "\"latency_ms\""), "%s", a);
  free(a);
  free(b);
  json_decref(fast);
  json_decref(slow);
  store_close(st);
}

Test(store, poison_row_is_dropped_not_retried_forever) {
  store *st = open_rw(dbpath);
  store_id run = simple_run(st);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_sqlite_exec(st,
                                 "CREATE TEMP TRIGGER boom BEFORE INSERT ON calls WHEN "
                                 "NEW.role = 'bad' BEGIN SELECT RAISE(ABORT, 'boom'); END"),
               0);
  put_call(st, run, "good1", "66666666666666666666666666666661", "{\"n\":1}", NULL, 0);
  put_call(st, run, "bad", "66666666666666666666666666666662", "{\"n\":2}", NULL, 0);
  put_call(st, run, "good3", "66666666666666666666666666666663", "{\"n\":3}", NULL, 0);
  cr_assert_eq(store_pending(st), 6);
  cr_assert_eq(store_flush(st), AD_EINTERNAL);
  cr_assert(strstr(store_errmsg(st), "dropped"), "%s", store_errmsg(st));
  cr_assert_eq(store_pending(st), 4);
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, "66666666666666666666666666666663", &b, NULL), 0);
  cr_assert_str_eq(b, "{\"n\":3}", "pending lookup still finds the right reply");
  free(b);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM calls"), 2);
  json_t *row = NULL;
  cr_assert_eq(store_calls_each(st, run, "good3", 1, body_cb, &row), 1);
  cr_assert_str_eq(jx_str(row, "reply"), "{\"n\":3}", "its body reads back");
  json_decref(row);
  store_close(st);
}

/* Workers share a run only in a PostgreSQL store (test_store_pg.c): SQLite says so. */
Test(store, sqlite_stores_have_no_workers) {
  char path[256];
  snprintf(path, sizeof path, "%s/w.db", tdir);
  store *st = open_rw(path);
  store_id run = simple_run(st);
  int64_t w = 0;
  cr_assert_eq(store_worker_join(st, run, "h", 30000, &w), AD_EINVAL);
  cr_assert(strstr(store_errmsg(st), "only in a PostgreSQL store"), "%s", store_errmsg(st));
  json_t *rows = json_array();
  cr_assert_eq(store_workers_each(st, run, collect_cb, rows), 0);
  cr_assert_eq(json_array_size(rows), 0);
  json_decref(rows);
  store *st2 = NULL; /* a second SQLite writer is refused, shared or not */
  cr_assert_eq(store_open(path, STORE_OPEN_SHARED, &st2), AD_EBUSY);
  store_close(st2);
  store_close(st);
}
