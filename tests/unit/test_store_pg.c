/* test_store_pg.c - the run store's suite on its PostgreSQL backend (store_pg.c).
 *
 * Runs against the server named by AUTODATA_TEST_PG_URL (`make test` starts a throwaway one
 * with scripts/pg-test-server.sh and sets it); each test works in a schema of its own
 * (options=-csearch_path), dropped at the end. Without the variable every test is skipped
 * with a message, unless AUTODATA_TEST_PG_REQUIRED=1 (make test), which makes that a failure.
 * The same behaviour as test_store.c checks on SQLite; stats are compared with a SQLite
 * store fed the same rows. */
#include <criterion/criterion.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "store/store.h"
#include "store/store_impl.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/secret.h"
#include "util/timeu.h"

#include "helpers.h"
#include "store_shared.h"

static char url[1024];
static char schema[64];
static char tdir[64];

static PGconn *admin(void) {
  PGconn *c = PQconnectdb(getenv("AUTODATA_TEST_PG_URL"));
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  return c;
}

static void admin_exec(const char *sql) {
  PGconn *c = admin();
  PQclear(PQexec(c, "SET client_min_messages = warning"));
  PGresult *r = PQexec(c, sql);
  cr_assert(PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK, "%s: %s",
            sql, PQerrorMessage(c));
  PQclear(r);
  PQfinish(c);
}

/* The first column of the first row of sql, run in this test's schema. */
static int64_t pg_count(const char *sql) {
  PGconn *c = PQconnectdb(url);
  cr_assert_eq(PQstatus(c), CONNECTION_OK, "%s", PQerrorMessage(c));
  PGresult *r = PQexec(c, sql);
  cr_assert_eq(PQresultStatus(r), PGRES_TUPLES_OK, "%s: %s", sql, PQerrorMessage(c));
  int64_t n = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  PQfinish(c);
  return n;
}

static void pg_setup(void) {
  th_mkdtemp(tdir, sizeof tdir, "storepg");
  const char *base = getenv("AUTODATA_TEST_PG_URL");
  if (!base || !*base) {
    const char *req = getenv("AUTODATA_TEST_PG_REQUIRED");
    cr_assert(!(req && !strcmp(req, "1")),
              "AUTODATA_TEST_PG_URL is not set but AUTODATA_TEST_PG_REQUIRED=1");
    cr_skip_test(
        "AUTODATA_TEST_PG_URL is not set: the PostgreSQL store suite is skipped "
        "(make test starts a server and sets it; scripts/pg-test-server.sh)");
  }
  static int seq;
  snprintf(schema, sizeof schema, "t_%ld_%d_%lld", (long)getpid(), ++seq,
           (long long)(time_now_ms() % 100000000));
  char sql[128];
  snprintf(sql, sizeof sql, "CREATE SCHEMA %s", schema);
  admin_exec(sql);
  snprintf(url, sizeof url, "%s%soptions=-csearch_path%%3D%s", base, strchr(base, '?') ? "&" : "?",
           schema);
}

static void pg_teardown(void) {
  if (schema[0] && getenv("AUTODATA_TEST_PG_URL")) {
    char sql[128];
    snprintf(sql, sizeof sql, "DROP SCHEMA IF EXISTS %s CASCADE", schema);
    admin_exec(sql);
  }
  th_rmtree(tdir);
}

TestSuite(store_pg, .init = pg_setup, .fini = pg_teardown);

static int first_row(void *ud, const json_t *row) {
  *(json_t **)ud = json_deep_copy(row);
  return 1;
}

/* ---- open, schema, lock ---- */

Test(store_pg, migrates_a_fresh_schema_and_reads_it_back) {
  store *st = NULL;
  cr_assert_eq(store_open(url, STORE_OPEN_READONLY, &st), AD_ENOTFOUND, "nothing there yet");
  cr_assert(strstr(store_errmsg(st), "no autodata store"), "%s", store_errmsg(st));
  store_close(st);
  st = ts_open_rw(url);
  cr_assert_eq(store_close(st), 0);
  cr_assert_eq(pg_count("SELECT count(*) FROM schema_migrations"), 7, "every step recorded");
  st = ts_open_rw(url); /* a second open applies nothing */
  store_close(st);
  cr_assert_eq(pg_count("SELECT count(*) FROM schema_migrations"), 7);
  st = ts_open_ro(url);
  store_id run;
  cr_assert_eq(store_run_latest(st, &run), AD_ENOTFOUND);
  store_close(st);
}

Test(store_pg, refuses_a_foreign_schema_and_a_newer_one) {
  char sql[256];
  snprintf(sql, sizeof sql, "CREATE TABLE %s.schema_migrations(version int)", schema);
  admin_exec(sql);
  store *st = NULL;
  cr_assert_eq(store_open(url, 0, &st), AD_ECORRUPT);
  cr_assert(strstr(store_errmsg(st), "not an autodata store"), "%s", store_errmsg(st));
  store_close(st);
  snprintf(sql, sizeof sql, "DROP TABLE %s.schema_migrations", schema);
  admin_exec(sql);
  st = ts_open_rw(url);
  store_close(st);
  snprintf(sql, sizeof sql, "INSERT INTO %s.schema_migrations VALUES (99, 0)", schema);
  admin_exec(sql);
  cr_assert_eq(store_open(url, 0, &st), AD_EMISMATCH);
  cr_assert(strstr(store_errmsg(st), "newer autodata"), "%s", store_errmsg(st));
  store_close(st);
}

Test(store_pg, second_writer_is_refused_with_the_pid) {
  store *st = ts_open_rw(url);
  store *st2 = NULL;
  cr_assert_eq(store_open(url, 0, &st2), AD_EBUSY);
  char pid[32];
  snprintf(pid, sizeof pid, "pid %ld", (long)getpid());
  cr_assert(strstr(store_errmsg(st2), pid), "%s", store_errmsg(st2));
  store_close(st2);
  store *ro = ts_open_ro(url); /* readers take no lock */
  store_close(ro);
  store_close(st);
  st2 = ts_open_rw(url); /* released at close */
  store_close(st2);
}

Test(store_pg, a_password_in_the_url_is_never_shown) {
  const char *base = getenv("AUTODATA_TEST_PG_URL");
  (void)base;
  char bad[1200]; /* nothing listens there: the open fails and says so */
  snprintf(bad, sizeof bad, "postgresql://nobody:Hunter2Secret@/autodata?host=%s&port=1", tdir);
  store *st = NULL;
  cr_assert_neq(store_open(bad, 0, &st), 0);
  cr_assert_null(strstr(store_errmsg(st), "Hunter2Secret"), "%s", store_errmsg(st));
  cr_assert_null(strstr(store_path(st), "Hunter2Secret"), "%s", store_path(st));
  cr_assert(strstr(store_path(st), "nobody:" SECRET_MASK "@"), "%s", store_path(st));
  cr_assert(strstr(store_errmsg(st), "PGPASSWORD"), "%s", store_errmsg(st));
  size_t n;
  char *scrubbed = secret_scrub("x Hunter2Secret y", 17, &n);
  cr_assert_not_null(scrubbed, "the password is registered as a secret");
  free(scrubbed);
  store_close(st);
  char *red = store_url_redact("run --cache-from postgres://a:pw12@h/db --x");
  cr_assert_str_eq(red, "run --cache-from postgres://a:" SECRET_MASK "@h/db --x");
  free(red);
}

/* ---- runs and sources ---- */

Test(store_pg, resume_and_mismatch_messages) { ts_check_resume_and_mismatch(url); }

Test(store_pg, sources_changes_and_unknown_runs) { ts_check_sources_and_unknown_runs(url); }

/* ---- the cache, shared by every process ---- */

Test(store_pg, cache_serves_only_successful_real_calls_to_every_reader) {
  ts_check_cache_serves_only_successful_real_calls(url);
}

Test(store_pg, cache_from_a_sqlite_store) {
  char *db = th_path(tdir, "other.db");
  store *o = ts_open_rw(db);
  store_id r = ts_simple_run(o);
  ts_put_call(o, r, "judge", "77777777777777777777777777777777", "{\"from\":\"sqlite\"}", NULL, 0);
  store_close(o);
  store *st = ts_open_rw(url);
  ts_simple_run(st);
  cr_assert_eq(store_attach_cache(st, db), 0, "%s", store_errmsg(st));
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, "77777777777777777777777777777777", &b, NULL), 0);
  cr_assert_str_eq(b, "{\"from\":\"sqlite\"}");
  free(b);
  store_close(st);
}

Test(store_pg, bodies_round_trip_exactly_and_bad_utf8_is_replaced) {
  store *st = ts_open_rw(url);
  store_id run = ts_simple_run(st);
  struct buf rq = BUF_INIT;
  cr_assert_eq(buf_puts(&rq, "{\"messages\":\""), 0);
  for (int i = 0; i < 2000; i++) cr_assert_eq(buf_printf(&rq, "fact F-%04x = %d. ", i, i % 97), 0);
  cr_assert_eq(buf_puts(&rq, "réponse ✓\"}"), 0);
  struct store_call c = {.run = run,
                         .role = "challenger",
                         .endpoint = "e",
                         .model = "m",
                         .cache_key = "44444444444444444444444444444444",
                         .request = buf_str(&rq),
                         .reply = "ok \xff\xfe end\t\\N\n\r\\"};
  cr_assert_eq(store_call_put(st, &c), 0);
  cr_assert_eq(store_flush(st), 0, "an untrusted reply never blocks the batch: %s",
               store_errmsg(st));
  json_t *row = NULL;
  cr_assert_eq(store_calls_each(st, run, NULL, 1, first_row, &row), 1);
  cr_assert_str_eq(jx_str(row, "request"), buf_str(&rq), "exact");
  cr_assert_str_eq(jx_str(row, "reply"), "ok \xef\xbf\xbd\xef\xbf\xbd end\t\\N\n\r\\",
                   "COPY's escapes undone");
  json_decref(row);
  buf_release(&rq);
  store_close(st);
}

/* The cache lookup is a statement prepared on the connection: when the server drops the
 * connection, the next flush reconnects and the lookup is prepared again on the new one. */
Test(store_pg, cache_lookup_survives_a_reconnect) {
  store *st = ts_open_rw(url);
  store_id run = ts_simple_run(st);
  ts_put_call(st, run, "solver", "88888888888888888888888888888881", "{\"n\":1}", NULL, 0);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, "88888888888888888888888888888881", &b, NULL), 0, "%s",
               store_errmsg(st));
  free(b);
  char sql[160];
  snprintf(sql, sizeof sql,
           "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = "
           "'autodata pid %ld'",
           (long)getpid());
  admin_exec(sql);
  ts_put_call(st, run, "solver", "88888888888888888888888888888882", "{\"n\":2}", NULL, 0);
  int rc = store_flush(st); /* may fail first: libpq learns of the loss by using it */
  if (rc) rc = store_flush(st);
  cr_assert_eq(rc, 0, "%s", store_errmsg(st));
  cr_assert_eq(pg_count("SELECT count(*) FROM calls"), 2);
  for (int i = 1; i <= 2; i++) {
    char key[48], want[24];
    snprintf(key, sizeof key, "8888888888888888888888888888888%d", i);
    snprintf(want, sizeof want, "{\"n\":%d}", i);
    cr_assert_eq(store_cache_get(st, key, &b, NULL), 0, "%s", store_errmsg(st));
    cr_assert_str_eq(b, want);
    free(b);
  }
  store_close(st);
}

/* ---- batching and atomicity ---- */

Test(store_pg, maybe_flush_thresholds) {
  store *st = ts_open_rw(url);
  store_id run = ts_simple_run(st);
  store_set_batch(st, 3, 1000000);
  json_t *e = json_pack("{s:s}", "msg", "hello");
  int64_t now = time_now_ms();
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), 0);
  cr_assert_eq(store_event_put(st, run, LOG_WARN, e), 0);
  cr_assert_eq(store_maybe_flush(st, now), 0);
  cr_assert_eq(store_pending(st), 2, "below both thresholds");
  cr_assert_eq(pg_count("SELECT count(*) FROM events"), 0, "nothing committed yet");
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), 0);
  cr_assert_eq(store_maybe_flush(st, now), 0);
  cr_assert_eq(store_pending(st), 0, "row threshold");
  store_set_batch(st, 1000, 50);
  cr_assert_eq(store_event_put(st, run, LOG_INFO, e), 0);
  cr_assert_eq(store_maybe_flush(st, time_now_ms() + 60), 0);
  cr_assert_eq(store_pending(st), 0, "time threshold");
  cr_assert_eq(pg_count("SELECT count(*) FROM events"), 4);
  json_decref(e);
  store_close(st);
}

static void finish_episode(store *st, store_id run, const char *sid, const char *exid) {
  json_t *cand = json_pack("{s:s, s:f}", "question", "Q?", "gap", 0.4);
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

/* A row the database refuses (here a trigger) fails the whole batch, nothing of it is
 * committed; it is found, dropped with its body, and the rest commits on the next flush. */
Test(store_pg, refused_row_rolls_back_the_batch_then_is_dropped) {
  store *st = ts_open_rw(url);
  store_id run = ts_simple_run(st);
  cr_assert_eq(store_source_put(st, run, "s1", "P1", SHA_A), 0);
  cr_assert_eq(store_flush(st), 0);
  cr_assert_eq(store_pg_exec(st,
                             "CREATE FUNCTION boom() RETURNS trigger LANGUAGE plpgsql AS "
                             "$$BEGIN IF NEW.role = 'bad' THEN RAISE EXCEPTION 'boom'; END IF; "
                             "RETURN NEW; END$$"),
               0, "%s", store_errmsg(st));
  cr_assert_eq(store_pg_exec(st,
                             "CREATE TRIGGER boom BEFORE INSERT ON calls FOR EACH ROW "
                             "EXECUTE FUNCTION boom()"),
               0, "%s", store_errmsg(st));
  finish_episode(st, run, "s1", "ex-0001");
  ts_put_call(st, run, "good1", "66666666666666666666666666666661", "{\"n\":1}", NULL, 0);
  ts_put_call(st, run, "bad", "66666666666666666666666666666662", "{\"n\":2}", NULL, 0);
  ts_put_call(st, run, "good3", "66666666666666666666666666666663", "{\"n\":3}", NULL, 0);
  cr_assert_eq(store_pending(st), 10);
  cr_assert_eq(store_flush(st), AD_EINTERNAL);
  cr_assert(strstr(store_errmsg(st), "dropped"), "%s", store_errmsg(st));
  cr_assert_eq(pg_count("SELECT count(*) FROM examples"), 0, "all or nothing");
  cr_assert_eq(pg_count("SELECT count(*) FROM calls"), 0);
  cr_assert_eq(store_pending(st), 8);
  char *b = NULL;
  cr_assert_eq(store_cache_get(st, "66666666666666666666666666666663", &b, NULL), 0);
  cr_assert_str_eq(b, "{\"n\":3}");
  free(b);
  cr_assert_eq(store_flush(st), 0, "%s", store_errmsg(st));
  cr_assert_eq(pg_count("SELECT count(*) FROM calls"), 2);
  cr_assert_eq(pg_count("SELECT count(*) FROM calls c JOIN call_bodies b ON b.call_id = c.id "
                        "WHERE c.role = 'good3' AND b.reply = '{\"n\":3}'"),
               1, "bodies attached to the right calls");
  struct store_source s;
  cr_assert_eq(store_source_get(st, run, "s1", &s), 0);
  cr_assert_eq(s.state, STORE_SRC_DONE);
  cr_assert_eq(s.accepted, 1);
  store_close(st);
}

Test(store_pg, a_killed_writer_leaves_nothing_half_written) {
  store *st = ts_open_rw(url);
  store_id run = ts_simple_run(st);
  cr_assert_eq(store_source_put(st, run, "s1", "P1", SHA_A), 0);
  cr_assert_eq(store_source_put(st, run, "s2", "P2", SHA_B), 0);
  finish_episode(st, run, "s1", "ex-0001");
  cr_assert_eq(store_flush(st), 0);
  store_close(st);
  fflush(NULL);
  pid_t pid = fork();
  cr_assert_geq(pid, 0);
  if (pid == 0) {
    store *c = NULL;
    if (store_open(url, 0, &c)) _exit(2);
    finish_episode(c, run, "s2", "ex-0002");
    raise(SIGKILL);
    _exit(3);
  }
  int status;
  cr_assert_eq(waitpid(pid, &status, 0), pid);
  cr_assert(WIFSIGNALED(status));
  st = ts_open_rw(url); /* the dead child's lock went with its connection */
  struct store_source s;
  cr_assert_eq(store_source_get(st, run, "s2", &s), 0);
  cr_assert_eq(s.state, STORE_SRC_PENDING, "nothing of the killed episode");
  cr_assert_eq(store_source_get(st, run, "s1", &s), 0);
  cr_assert_eq(s.state, STORE_SRC_DONE);
  cr_assert_eq(s.accepted, 1);
  store_close(st);
}

/* ---- read side ---- */

Test(store_pg, iterators_order_and_content) { ts_check_iterators_order_and_content(url); }

/* ---- aggregates: the same object as SQLite's for the same rows ---- */

static void feed(store *st, json_t *p, json_t *prices) {
  struct store_run_info info = {.recipe_name = "cs-qa",
                                .recipe_sha256 = SHA_A,
                                .prompt_hashes = p,
                                .seed = 9,
                                .prices = prices};
  store_id run;
  cr_assert_eq(store_run_begin(st, &info, 0, &run, NULL), 0, "%s", store_errmsg(st));
  const char *sids[] = {"a", "b", "c", "d", "e"};
  for (int i = 0; i < 5; i++) cr_assert_eq(store_source_put(st, run, sids[i], NULL, NULL), 0);
  cr_assert_eq(store_source_set_state(st, run, "b", STORE_SRC_IN_PROGRESS, 1), 0);
  cr_assert_eq(store_source_set_state(st, run, "c", STORE_SRC_EXHAUSTED, 4), 0);
  finish_episode(st, run, "a", "ex-1");
  cr_assert_eq(store_candidate_put(st, run, "c", 1, 0, "rejected", "too_easy", NULL), 0);
  cr_assert_eq(store_candidate_put(st, run, "c", 2, 0, "rejected", "too_easy", NULL), 0);
  cr_assert_eq(store_candidate_put(st, run, "c", 3, 0, "rejected", "quality:leakage", NULL), 0);
  cr_assert_eq(store_candidate_put(st, run, "d", 1, 0, "rejected", "no_gap", NULL), 0);
  ts_put_call(st, run, "judge", "55555555555555555555555555555555", "{}", NULL, 0);
  ts_put_call(st, run, "judge", "55555555555555555555555555555555", NULL, NULL, 1);
  ts_put_call(st, run, "weak_solver", NULL, NULL, "HTTP 500", 0);
  ts_put_call(st, run, "Weak", NULL, "{}", NULL, 0);
  cr_assert_eq(store_flush(st), 0);
}

static char *stats_text(const char *path) {
  store *st = ts_open_ro(path);
  json_t *s = NULL;
  cr_assert_eq(store_stats(st, 0, &s), 0, "%s", store_errmsg(st));
  store_close(st);
  json_object_del(json_object_get(s, "run"), "created");
  json_object_del(s, "wall_s");
  char *t = json_dumps(s, JSON_COMPACT); /* insertion order: the order rows came in */
  json_decref(s);
  return t;
}

Test(store_pg, stats_equal_sqlites) {
  json_t *p = ts_prompts_json(SHA_C);
  json_t *prices = json_pack("{s:{s:f, s:f}}", "m-small", "prompt_per_mtok", 1.0,
                             "completion_per_mtok", 2.0);
  char *db = th_path(tdir, "same.db");
  store *a = ts_open_rw(db), *b = ts_open_rw(url);
  feed(a, p, prices);
  feed(b, p, prices);
  store_close(a);
  store_close(b);
  char *ta = stats_text(db), *tb = stats_text(url);
  cr_assert_str_eq(tb, ta);
  cr_assert(strstr(tb, "\"accepted\":1"), "%s", tb);
  free(ta);
  free(tb);
  json_decref(p);
  json_decref(prices);
}

/* ---- workers (store.h: leases, heartbeats, the fenced end of an episode) ---- */

static store *open_worker(void) {
  store *st = NULL;
  int rc = store_open(url, STORE_OPEN_SHARED, &st);
  cr_assert_eq(rc, 0, "open shared: %s", store_errmsg(st));
  return st;
}

static void collect_id(void *ud, const char *source_id) {
  json_array_append_new(ud, json_string(source_id));
}

static int worker_row_copy(void *ud, const json_t *row) {
  json_array_append(ud, (json_t *)row);
  return 0;
}

static enum store_claim claim(store *st, store_id run, int64_t w, const char *id, int64_t *from) {
  enum store_claim c = STORE_CLAIM_HELD;
  int64_t f = -1;
  cr_assert_eq(store_lease_claim(st, run, w, id, 0, &c, &f), 0, "%s", store_errmsg(st));
  if (from) *from = f;
  return c;
}

Test(store_pg, workers_share_a_run_through_leases) {
  store *a = open_worker(), *b = open_worker(); /* the shared lock admits both */
  store *x = NULL;
  cr_assert_eq(store_open(url, 0, &x), AD_EBUSY, "an exclusive writer waits for the workers");
  store_close(x);
  store_id run = ts_simple_run(a);
  cr_assert_eq(ts_simple_run(b), run, "the second worker resumes the same run");
  cr_assert_eq(store_source_put(a, run, "s1", NULL, SHA_A), 0);
  cr_assert_eq(store_source_put(a, run, "s2", NULL, SHA_B), 0);
  cr_assert_eq(store_flush(a), 0);
  int64_t wa = 0, wb = 0;
  cr_assert_eq(store_worker_join(a, run, "host-a", 300, &wa), 0, "%s", store_errmsg(a));
  cr_assert_eq(store_worker_join(b, run, "host-b", 300, &wb), 0, "%s", store_errmsg(b));
  cr_assert(wa > 0 && wb > wa);

  int64_t from = -1;
  cr_assert_eq(claim(a, run, wa, "s1", &from), STORE_CLAIM_GOT);
  cr_assert_eq(from, 0, "a fresh lease takes over nothing");
  cr_assert_eq(claim(a, run, wa, "s1", NULL), STORE_CLAIM_GOT, "its own lease again");
  cr_assert_eq(claim(b, run, wb, "s1", NULL), STORE_CLAIM_HELD, "leased to a live worker");
  cr_assert_eq(claim(b, run, wb, "s2", NULL), STORE_CLAIM_GOT);

  /* b's heartbeat renews only its own lease and sums the other workers of its session */
  struct store_worker_counts ma = {.calls = 7, .prompt_tokens = 100, .cost = 0.5};
  struct store_worker_counts mb = {.calls = 3}, others;
  json_t *renewed = json_array();
  int alive = -1;
  cr_assert_eq(store_worker_beat(a, run, wa, &ma, NULL, NULL, NULL, NULL), 0);
  cr_assert_eq(store_worker_beat(b, run, wb, &mb, collect_id, renewed, &others, &alive), 0);
  cr_assert_eq(json_array_size(renewed), 1);
  cr_assert_str_eq(json_string_value(json_array_get(renewed, 0)), "s2");
  cr_assert_eq(others.calls, 7, "a's counters count in b's budget");
  cr_assert_eq(others.prompt_tokens, 100);
  cr_assert_float_eq(others.cost, 0.5, 1e-9);
  cr_assert_eq(alive, 1);

  /* a stalls past its lease: b takes s1 over, a's heartbeat no longer renews it */
  usleep(400 * 1000);
  cr_assert_eq(store_worker_beat(b, run, wb, &mb, NULL, NULL, &others, &alive), 0);
  cr_assert_eq(alive, 0, "a's heartbeat is older than its lease");
  cr_assert_eq(claim(b, run, wb, "s1", &from), STORE_CLAIM_GOT);
  cr_assert_eq(from, wa, "taken over from a");
  json_array_clear(renewed);
  cr_assert_eq(store_worker_beat(a, run, wa, &ma, collect_id, renewed, NULL, NULL), 0);
  cr_assert_eq(json_array_size(renewed), 0, "a's lease of s1 is gone");
  cr_assert_eq(claim(a, run, wa, "s1", NULL), STORE_CLAIM_HELD);

  /* the end of s1: refused to a (nothing written), written by b with its lease ended */
  json_t *ex = json_pack("{s:s}", "q", "from a");
  json_t *rec = json_pack("{s:s}", "who", "a");
  struct store_episode_end e = {.source_id = "s1",
                                .state = STORE_SRC_DONE,
                                .rounds_used = 1,
                                .round = 1,
                                .verdict = "accepted",
                                .cand_record = rec,
                                .example_id = "s1-1",
                                .example = ex};
  cr_assert_eq(store_lease_finish(a, run, wa, &e), AD_EBUSY);
  cr_assert(strstr(store_errmsg(a), "taken over"), "%s", store_errmsg(a));
  cr_assert_eq(pg_count("SELECT count(*) FROM examples"), 0, "a's result is not in the store");
  cr_assert_eq(pg_count("SELECT count(*) FROM candidates"), 0);
  json_object_set_new(ex, "q", json_string("from b"));
  cr_assert_eq(store_lease_finish(b, run, wb, &e), 0, "%s", store_errmsg(b));
  cr_assert_eq(store_lease_finish(a, run, wa, &e), AD_EBUSY, "still not a's after the end");
  cr_assert_eq(pg_count("SELECT count(*) FROM examples WHERE source_id = 's1'"), 1,
               "accepted once");
  cr_assert_eq(pg_count("SELECT count(*) FROM examples WHERE example LIKE '%from b%'"), 1);
  cr_assert_eq(pg_count("SELECT count(*) FROM sources WHERE source_id = 's1' AND state = 'done' "
                        "AND accepted = 1 AND lease_owner IS NULL"),
               1);
  cr_assert_eq(claim(a, run, wa, "s1", NULL), STORE_CLAIM_FINISHED);

  /* b leaves: its leases are free at once, and status shows who is where */
  cr_assert_eq(store_lease_release(b, run, wb, NULL), 0);
  cr_assert_eq(claim(a, run, wa, "s2", &from), STORE_CLAIM_GOT);
  cr_assert_eq(from, 0, "a released lease is no takeover");
  json_t *rows = json_array();
  cr_assert_eq(store_workers_each(a, run, worker_row_copy, rows), 0);
  cr_assert_eq(json_array_size(rows), 2);
  json_t *ra = json_array_get(rows, 0), *rb = json_array_get(rows, 1);
  cr_assert_str_eq(jx_str(ra, "host"), "host-a");
  cr_assert_eq(jx_int(ra, "leases", -1), 1);
  cr_assert_eq(jx_int(ra, "calls", -1), 7);
  cr_assert(json_is_true(json_object_get(ra, "alive")), "a's heartbeat is fresh");
  cr_assert(json_is_true(json_object_get(rb, "left")));
  cr_assert(json_is_false(json_object_get(rb, "alive")));
  cr_assert_eq(jx_int(rb, "session", 0), jx_int(ra, "session", -1), "one session");
  json_decref(rows);
  json_decref(renewed);
  json_decref(ex);
  json_decref(rec);
  store_close(a);
  store_close(b);
}
