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
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/timeu.h"

#include "helpers.h"
#include "store_shared.h"

/* ---- fixtures ---- */

static char tdir[64];
static char dbpath[128];

static void tmp_setup(void) {
  th_mkdtemp(tdir, sizeof tdir, "store");
  snprintf(dbpath, sizeof dbpath, "%s/run.db", tdir);
}

static void tmp_teardown(void) { th_rmtree(tdir); /* best effort */ }

TestSuite(store, .init = tmp_setup, .fini = tmp_teardown);

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
  store *st = ts_open_rw(dbpath);
  store_close(st);
  int64_t ver = count_rows(dbpath, "PRAGMA user_version");
  cr_assert_gt(ver, 0);
  cr_assert_eq(count_rows(dbpath, "PRAGMA application_id"), 0x41444154);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM schema_migrations"), ver);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM sqlite_master WHERE name = 'calls'"), 1);
  /* reopening applies nothing twice */
  st = ts_open_rw(dbpath);
  store_close(st);
  cr_assert_eq(count_rows(dbpath, "PRAGMA user_version"), ver);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM schema_migrations"), ver);
}

Test(store, refuses_a_newer_schema) {
  store *st = ts_open_rw(dbpath);
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
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
  st = ts_open_rw(dbpath);
  store_close(st);
}

/* ---- read-only file ---- */

Test(store, readonly_file_is_a_clear_error) {
  store *st = ts_open_rw(dbpath);
  ts_simple_run(st);
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
  store_close(st);
  st = ts_open_ro(dbpath);
  json_t *e = json_pack("{s:s}", "msg", "x");
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), AD_EREADONLY);
  json_decref(e);
  store_close(st);
}

/* ---- full disk ---- */

Test(store, full_disk_keeps_batch_and_retries) {
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_sqlite_exec(st, "PRAGMA max_page_count = 1"), 0);
  char reply[4000];
  memset(reply, 'r', sizeof reply - 1);
  reply[sizeof reply - 1] = 0;
  char key[33];
  for (int i = 0; i < 100; i++) {
    snprintf(key, sizeof key, "%032x", i);
    ts_put_call(st, run, "judge", key, reply, NULL, 0);
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

Test(store, resume_and_mismatch_messages) { ts_check_resume_and_mismatch(dbpath); }

Test(store, sources_changes_and_unknown_runs) { ts_check_sources_and_unknown_runs(dbpath); }

/* ---- cache ---- */

Test(store, cache_serves_only_successful_real_calls) {
  ts_check_cache_serves_only_successful_real_calls(dbpath);
}

static int body_cb(void *ud, const json_t *row) {
  json_t **out = ud;
  *out = json_deep_copy(row);
  return 1;
}

Test(store, large_bodies_are_compressed_and_read_back_exactly) {
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
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
    store *r = pass ? ts_open_ro(dbpath) : st;
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
  st = ts_open_rw(dbpath);
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

/* Copy a fixture store to dbpath (the test changes its copy). */
static void copy_fixture(const char *path) {
  char *raw = NULL;
  size_t n = 0;
  cr_assert_eq(fs_read_all(path, 1 << 24, &raw, &n), 0);
  FILE *f = fopen(dbpath, "wb");
  cr_assert(f && fwrite(raw, 1, n, f) == n);
  fclose(f);
  free(raw);
}

/* A store written by the version before the compact store (tests/unit/fixtures/store-v6.db:
 * `autodata run examples/sim.yaml` on 2 sim sources, 1 round, at commit f23b78f, then
 * VACUUMed with 1 KiB pages to keep it small): a writable open migrates it, every body reads
 * back the same as before, and new calls of a source are written against a reference. */
Test(store, migrates_a_store_written_before_the_compact_store) {
  copy_fixture("tests/unit/fixtures/store-v6.db");
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
  store *st = ts_open_rw(dbpath); /* migrates */
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

/* Everything a store holds as its readers return it: runs, sources, candidates, examples, calls
 * with their bodies, events and the statistics, as one canonical JSON text's sha256. */
static void api_view_sha256(store *st, store_id run, char out[65]) {
  json_t *v = json_object(), *a;
  json_object_set_new(v, "runs", a = json_array());
  cr_assert_eq(store_runs_each(st, collect_cb, a), 0, "%s", store_errmsg(st));
  json_object_set_new(v, "sources", a = json_array());
  cr_assert_eq(store_sources_each(st, run, collect_cb, a), 0, "%s", store_errmsg(st));
  json_object_set_new(v, "candidates", a = json_array());
  cr_assert_eq(store_candidates_each(st, run, NULL, collect_cb, a), 0, "%s", store_errmsg(st));
  json_object_set_new(v, "examples", a = json_array());
  cr_assert_eq(store_examples_each(st, run, collect_cb, a), 0, "%s", store_errmsg(st));
  json_object_set_new(v, "calls", a = json_array());
  cr_assert_eq(store_calls_each(st, run, NULL, 1, collect_cb, a), 0, "%s", store_errmsg(st));
  json_object_set_new(v, "events", a = json_array());
  cr_assert_eq(store_events_each(st, run, collect_cb, a), 0, "%s", store_errmsg(st));
  json_t *stats = NULL;
  cr_assert_eq(store_stats(st, run, &stats), 0, "%s", store_errmsg(st));
  /* calls.by_role.*.retries came after that version: the view is the members it had (the
   * retries per role are checked in stats_aggregates) */
  const char *role;
  json_t *r;
  json_object_foreach(json_object_get(json_object_get(stats, "calls"), "by_role"), role, r)
      json_object_del(r, "retries");
  json_object_set_new(v, "stats", stats);
  char *text = jx_dump_canonical(v);
  cr_assert(text);
  sha256_hex(text, strlen(text), out);
  free(text);
  json_decref(v);
}

/* The rows of sql (text columns) from path as SQLite holds them: an array of arrays. */
static json_t *raw_rows(const char *path, const char *sql) {
  sqlite3 *db;
  cr_assert_eq(sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
  sqlite3_stmt *s;
  cr_assert_eq(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK, "%s", sqlite3_errmsg(db));
  json_t *rows = json_array();
  while (sqlite3_step(s) == SQLITE_ROW) {
    json_t *r = json_array();
    for (int i = 0; i < sqlite3_column_count(s); i++) {
      cr_assert_neq(sqlite3_column_type(s, i), SQLITE_BLOB);
      const char *p = (const char *)sqlite3_column_text(s, i);
      json_array_append_new(r, p ? json_string(p) : json_null());
    }
    json_array_append_new(rows, r);
  }
  sqlite3_finalize(s);
  sqlite3_close(db);
  return rows;
}

/* Each row's member key equals the JSON text in the first column of raw's row (raw_rows()). */
static void same_json_members(const json_t *rows, const char *key, const json_t *raw) {
  cr_assert_eq(json_array_size(rows), json_array_size(raw));
  for (size_t i = 0; i < json_array_size(rows); i++) {
    json_t *want = json_loads(json_string_value(json_array_get(json_array_get(raw, i), 0)), 0,
                              NULL);
    cr_assert(want && json_equal(json_object_get(json_array_get(rows, i), key), want), "row %zu",
              i);
    json_decref(want);
  }
}

/* What the version that wrote tests/unit/fixtures/store-v8.db read from it through
 * api_view_sha256() (computed with that version, commit 9f2ae78). */
#define STORE_V8_VIEW "c4a3fce03a1aadc47bc3f02f544c99a1f81b2b50789cbe4059c8cd7b5abe18b7"

/* A store written by the version before the compact records (tests/unit/fixtures/store-v8.db:
 * `autodata run examples/sim.yaml` on 3 sim sources, 3 rounds, 85 calls, at commit 9f2ae78,
 * then VACUUMed with 1 KiB pages to keep it small): a writable open migrates it, every reader
 * returns what that version returned, the cache answers, the run resumes, and new rows are
 * written in the new layout and read back. */
Test(store, migrates_a_store_written_before_the_compact_records) {
  copy_fixture("tests/unit/fixtures/store-v8.db");
  cr_assert_eq(count_rows(dbpath, "PRAGMA user_version"), 8);
  /* before: records, examples, keys and attempt lists as text, read by hand */
  json_t *cands = raw_rows(dbpath, "SELECT record FROM candidates ORDER BY source_id, round, idx");
  json_t *exs = raw_rows(dbpath, "SELECT example FROM examples ORDER BY example_id");
  json_t *keys = raw_rows(dbpath, "SELECT cache_key, attempt_list FROM calls ORDER BY id");
  cr_assert_eq(json_array_size(cands), 9);
  cr_assert_eq(json_array_size(exs), 3);
  cr_assert_eq(json_array_size(keys), 85);

  store *st = ts_open_rw(dbpath); /* migrates */
  char view[65];
  api_view_sha256(st, 1, view);
  cr_assert_str_eq(view, STORE_V8_VIEW);
  json_t *rows = json_array();
  cr_assert_eq(store_candidates_each(st, 1, NULL, collect_cb, rows), 0);
  same_json_members(rows, "record", cands);
  json_array_clear(rows);
  cr_assert_eq(store_examples_each(st, 1, collect_cb, rows), 0);
  same_json_members(rows, "example", exs);
  json_array_clear(rows);
  cr_assert_eq(store_calls_each(st, 1, NULL, 1, collect_cb, rows), 0);
  cr_assert_eq(json_array_size(rows), json_array_size(keys));
  for (size_t i = 0; i < json_array_size(rows); i++) {
    const json_t *r = json_array_get(rows, i), *k = json_array_get(keys, i);
    cr_assert_str_eq(jx_str(r, "cache_key"), json_string_value(json_array_get(k, 0)));
    json_t *want = json_loads(json_string_value(json_array_get(k, 1)), 0, NULL);
    cr_assert(json_equal(json_object_get(r, "attempt_list"), want));
    json_decref(want);
    /* the old cache still answers, with the row's reply */
    char *b = NULL;
    if (!strcmp(jx_str(r, "status"), "ok")) {
      cr_assert_eq(store_cache_get(st, jx_str(r, "cache_key"), &b, NULL), 0);
      cr_assert_str_eq(b, jx_str(r, "reply"));
      free(b);
    }
  }
  /* the run resumes */
  json_array_clear(rows);
  cr_assert_eq(store_runs_each(st, collect_cb, rows), 0);
  const json_t *r0 = json_array_get(rows, 0);
  struct store_run_info info = {.recipe_name = jx_str(r0, "recipe_name"),
                                .recipe_sha256 = jx_str(r0, "recipe_sha256"),
                                .prompt_hashes = json_object_get(r0, "prompt_hashes"),
                                .seed = (uint64_t)json_integer_value(json_object_get(r0, "seed")),
                                .version = "test"};
  store_id run = 0;
  int resumed = 0;
  cr_assert_eq(store_run_begin(st, &info, 0, &run, &resumed), 0, "%s", store_errmsg(st));
  cr_assert(resumed && run == 1);
  /* new rows of a source, in the new layout, read back */
  json_t *rec = json_loads(json_string_value(json_array_get(json_array_get(cands, 0), 0)), 0, NULL);
  json_t *ex = json_loads(json_string_value(json_array_get(json_array_get(exs, 0), 0)), 0, NULL);
  json_object_set_new(rec, "round", json_integer(9));
  cr_assert_eq(store_candidate_put(st, 1, "sim-0001", 9, 0, "accepted", NULL, rec), 0);
  cr_assert_eq(store_example_put(st, 1, "sim-0001", "sim-0001-9", ex), 0);
  struct store_attempt at = {1, 200, NULL, 1234, 0};
  struct store_call c = {.run = 1,
                         .role = "challenger",
                         .source_id = "sim-0001",
                         .round = 9,
                         .endpoint = "sim",
                         .model = "m",
                         .cache_key = "abcdef0123456789abcdef0123456789",
                         .request = "{\"new\":1}",
                         .reply = "{\"new\":2}",
                         .http_status = 200,
                         .latency_us = 5000,
                         .attempts = 1,
                         .attempt_list = &at,
                         .n_attempt_list = 1};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  store_close(st);
  /* ... compact: the record and the example compressed against the source's reference, the
   * key as bytes, the lone attempt as its latency; the rows before as they were */
  cr_assert_eq(count_rows(dbpath, "PRAGMA user_version"), 9);
  cr_assert_eq(count_rows(dbpath,
                          "SELECT count(*) FROM candidates WHERE typeof(record) = 'blob' "
                          "AND ref IS NOT NULL"),
               1);
  cr_assert_eq(count_rows(dbpath,
                          "SELECT count(*) FROM examples WHERE typeof(example) = 'blob' "
                          "AND ref IS NOT NULL"),
               1);
  cr_assert_eq(count_rows(dbpath,
                          "SELECT count(*) FROM calls WHERE typeof(cache_key) = 'blob' "
                          "AND length(cache_key) = 16 AND attempt_list = '1234'"),
               1);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM calls WHERE typeof(cache_key) = 'text'"),
               85);
  st = ts_open_ro(dbpath);
  json_array_clear(rows);
  cr_assert_eq(store_source_candidates_each(st, 1, "sim-0001", collect_cb, rows), 0);
  cr_assert(
      json_equal(json_object_get(json_array_get(rows, json_array_size(rows) - 1), "record"), rec));
  json_array_clear(rows);
  cr_assert_eq(store_examples_each(st, 1, collect_cb, rows), 0);
  cr_assert_eq(json_array_size(rows), 4);
  cr_assert(json_equal(json_object_get(json_array_get(rows, 1), "example"), ex));
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, "abcdef0123456789abcdef0123456789", &b, NULL), 0);
  cr_assert_str_eq(b, "{\"new\":2}");
  free(b);
  json_array_clear(rows);
  cr_assert_eq(store_source_calls_each(st, 1, "sim-0001", 1, collect_cb, rows), 0);
  const json_t *last = json_array_get(rows, json_array_size(rows) - 1);
  cr_assert_str_eq(jx_str(last, "cache_key"), "abcdef0123456789abcdef0123456789");
  cr_assert_str_eq(jx_str(last, "request"), "{\"new\":1}");
  json_t *want_at = json_pack("[{s:i, s:i, s:i}]", "http_status", 200, "latency_us", 1234, "n", 1);
  cr_assert(json_equal(json_object_get(last, "attempt_list"), want_at));
  json_decref(want_at);
  store_close(st);
  json_decref(rec);
  json_decref(ex);
  json_decref(rows);
  json_decref(cands);
  json_decref(exs);
  json_decref(keys);
}

Test(store, cache_from_another_store) {
  char other[160];
  snprintf(other, sizeof other, "%s/other.db", tdir);
  store *o = ts_open_rw(other);
  store_id orun = ts_simple_run(o);
  ts_put_call(o, orun, "judge", "44444444444444444444444444444444", "{\"from\":\"other\"}", NULL,
              0);
  cr_assert_eq(store_flush(o), 0);
  /* the other store may stay open for writing: attaching is read-only */
  store *st = ts_open_rw(dbpath);
  ts_simple_run(st);
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
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

/* pad: bytes of filler in the candidate record (to need new pages: pseudo-random letters, which
 * the store's compression cannot shrink away) */
static void finish_episode(store *st, store_id run, const char *sid, const char *exid, size_t pad) {
  char *fill = calloc(1, pad + 1);
  uint32_t x = 12345;
  for (size_t i = 0; i < pad; i++) {
    x = x * 1103515245u + 12345u;
    fill[i] = (char)('a' + (x >> 16) % 26);
  }
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
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
  st = ts_open_rw(dbpath); /* the dead child's lock is gone */
  cr_assert_eq(store_source_get(st, run, "s2", &s), 0);
  cr_assert_eq(s.state, STORE_SRC_PENDING, "nothing of the killed episode");
  cr_assert_eq(s.accepted, 0);
  cr_assert_eq(count_rows(dbpath, "SELECT count(*) FROM examples"), 1);
  store_close(st);
}

/* ---- read side ---- */

Test(store, iterators_order_and_content) { ts_check_iterators_order_and_content(dbpath); }

Test(store, one_sources_rows_only) {
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
  json_t *rec = json_pack("{s:s}", "question", "q");
  cr_assert_eq(store_candidate_put(st, run, "s2", 1, 0, "rejected", "too_easy", rec), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 2, 0, "rejected", "no_gap", rec), 0);
  cr_assert_eq(store_candidate_put(st, run, "s1", 1, 0, "rejected", "too_hard", rec), 0);
  json_decref(rec);
  struct ts_collect r = {.key = "reason"};
  cr_assert_eq(store_source_candidates_each(st, run, "s1", ts_collect_fn, &r), 0, "%s",
               store_errmsg(st));
  cr_assert_eq(r.n, 2);
  cr_assert_str_eq(r.ids[0], "too_hard", "by round");
  cr_assert_str_eq(r.ids[1], "no_gap");

  ts_put_call(st, run, "judge", NULL, "{\"a\":1}", NULL, 0); /* put_call: source s1 */
  struct store_call other = {.run = run,
                             .role = "judge",
                             .source_id = "s2",
                             .round = 1,
                             .endpoint = "local",
                             .model = "m",
                             .request = "{}",
                             .reply = "{}"};
  cr_assert_eq(store_call_put(st, &other), 0);
  ts_put_call(st, run, "weak", NULL, "{\"b\":2}", NULL, 0);
  struct ts_collect k = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, 0, "s1", 1, ts_collect_fn, &k), 0, "%s",
               store_errmsg(st));
  cr_assert_eq(k.n, 2);
  cr_assert_str_eq(k.ids[0], "{\"a\":1}", "by id, with bodies");
  cr_assert_str_eq(k.ids[1], "{\"b\":2}");
  struct ts_collect nb = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, run, "s2", 0, ts_collect_fn, &nb), 0);
  cr_assert_eq(nb.n, 1);
  cr_assert_str_eq(nb.ids[0], "(null)", "no bodies when not asked");
  struct ts_collect none = {.key = "reply"};
  cr_assert_eq(store_source_calls_each(st, run, "nope", 1, ts_collect_fn, &none), 0);
  cr_assert_eq(none.n, 0);
  cr_assert_eq(store_source_calls_each(st, run, NULL, 1, ts_collect_fn, &none), AD_EINVAL);
  store_close(st);
}

/* ---- aggregates ---- */

Test(store, stats_aggregates) {
  store *st = ts_open_rw(dbpath);
  json_t *p = ts_prompts_json(SHA_C);
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
  ts_put_call(st, run, "judge", "55555555555555555555555555555555", "{}", NULL, 0);
  ts_put_call(st, run, "judge", "55555555555555555555555555555555", NULL, NULL, 1);
  ts_put_call(st, run, "weak_solver", NULL, NULL, "HTTP 500", 0);
  cr_assert_eq(store_flush(st), 0);
  store_close(st);

  st = ts_open_ro(dbpath);
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
  /* each role's retries (the card's cost table reads them here, not from every call) */
  cr_assert_eq(jx_int(judge, "retries", -1), 1);
  cr_assert_eq(
      jx_int(json_object_get(json_object_get(calls, "by_role"), "weak_solver"), "retries", -1), 1);
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
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
  st = ts_open_ro(dbpath); /* no call_agg: the scan */
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
  store *st = ts_open_rw(dbpath);
  store_id run = ts_simple_run(st);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_sqlite_exec(st,
                                 "CREATE TEMP TRIGGER boom BEFORE INSERT ON calls WHEN "
                                 "NEW.role = 'bad' BEGIN SELECT RAISE(ABORT, 'boom'); END"),
               0);
  ts_put_call(st, run, "good1", "66666666666666666666666666666661", "{\"n\":1}", NULL, 0);
  ts_put_call(st, run, "bad", "66666666666666666666666666666662", "{\"n\":2}", NULL, 0);
  ts_put_call(st, run, "good3", "66666666666666666666666666666663", "{\"n\":3}", NULL, 0);
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

/* The stamp test's own store calls (not the suite's helpers, which the backends' suites share). */
static store *stamp_open(int flags) {
  store *st = NULL;
  cr_assert_eq(store_open(dbpath, flags, &st), 0, "open %s: %s", dbpath, store_errmsg(st));
  return st;
}

static void stamp_call(store *st, store_id run) {
  struct store_call c = {.run = run,
                         .role = "judge",
                         .source_id = "s1",
                         .round = 1,
                         .endpoint = "local",
                         .model = "m",
                         .cache_key = "0123456789abcdef0123456789abcdef",
                         .request = "{}",
                         .reply = "{\"r\":1}",
                         .http_status = 200,
                         .attempts = 1};
  cr_assert_eq(store_call_put(st, &c), 0, "%s", store_errmsg(st));
}

Test(store, run_stamp_changes_with_what_outputs_read) {
  store *st = stamp_open(0);
  json_t *prompts = json_pack("{s:s}", "judge", SHA_C);
  struct store_run_info info = {
      .recipe_name = "r", .recipe_sha256 = SHA_A, .prompt_hashes = prompts, .seed = 1};
  store_id run = 0;
  int resumed = 0;
  cr_assert_eq(store_run_begin(st, &info, 0, &run, &resumed), 0, "%s", store_errmsg(st));
  json_decref(prompts);
  cr_assert_eq(store_source_put(st, run, "s1", "T", SHA_A), 0);
  cr_assert_eq(store_source_put(st, run, "s2", "T", SHA_B), 0);
  char a[33], b[33];
  cr_assert_eq(store_run_stamp(st, run, a), 0, "%s", store_errmsg(st));
  cr_assert_eq(strlen(a), 32);
  cr_assert_eq(store_run_stamp(st, 0, b), 0);
  cr_assert_str_eq(a, b, "nothing changed, run 0 = the latest");
  /* a source put again (a resume) changes nothing */
  cr_assert_eq(store_source_put(st, run, "s1", "T", SHA_A), 0);
  cr_assert_eq(store_run_stamp(st, run, b), 0);
  cr_assert_str_eq(a, b);
#define CHANGED(what)                                      \
  do {                                                     \
    cr_assert_eq(store_run_stamp(st, run, b), 0);          \
    cr_assert_str_neq(a, b, "the stamp follows %s", what); \
    memcpy(a, b, sizeof a);                                \
  } while (0)
  cr_assert_eq(store_source_set_state(st, run, "s2", STORE_SRC_IN_PROGRESS, 1), 0);
  CHANGED("a source's state");
  stamp_call(st, run);
  CHANGED("a call");
  json_t *rec = json_pack("{s:s}", "question", "Q?");
  cr_assert_eq(store_candidate_put(st, run, "s2", 1, 0, "rejected", "too_easy", rec), 0);
  CHANGED("a candidate");
  /* the newest candidate replaced: same count, same rowid, a new `created` */
  usleep(2000);
  cr_assert_eq(store_candidate_put(st, run, "s2", 1, 0, "rejected", "too_hard", rec), 0);
  CHANGED("a replaced candidate");
  json_decref(rec);
  finish_episode(st, run, "s1", "ex1", 10);
  CHANGED("an example");
  json_t *ev = json_pack("{s:s}", "msg", "hello");
  cr_assert_eq(store_event_put(st, run, LOG_INFO, ev), 0);
  json_decref(ev);
  CHANGED("an event");
  json_t *an = json_pack("{s:i}", "n", 1);
  cr_assert_eq(store_analysis_put(st, run, an), 0);
  json_decref(an);
  CHANGED("the analysis");
  cr_assert_eq(store_run_set_status(st, run, "done"), 0);
  CHANGED("the run's status");
#undef CHANGED
  cr_assert_eq(store_close(st), 0);
  /* a read-only handle sees the same stamp */
  st = stamp_open(STORE_OPEN_READONLY);
  cr_assert_eq(store_run_stamp(st, run, b), 0, "%s", store_errmsg(st));
  cr_assert_str_eq(a, b);
  (void)store_close(st);
}

/* Workers share a run only in a PostgreSQL store (test_store_pg.c): SQLite says so. */
Test(store, sqlite_stores_have_no_workers) {
  char path[256];
  snprintf(path, sizeof path, "%s/w.db", tdir);
  store *st = ts_open_rw(path);
  store_id run = ts_simple_run(st);
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
