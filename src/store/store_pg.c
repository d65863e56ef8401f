/* store_pg.c - the PostgreSQL backend of the run store (see store.h, docs/store.md).
 *
 * Selected by a "postgres://" or "postgresql://" URL (libpq's connection URI; a schema can be
 * picked with options=-csearch_path%3DNAME). The same tables, keys and semantics as the SQLite
 * backend (store_sqlite.c), its own DDL: `migrations[]` below mirrors SQLite's step by step
 * (append only, each step recorded in schema_migrations). Layout of this file:
 *   schema and migrations      the versioned SQL steps
 *   the handle                 the connection and the pending batch (store/wqueue.h)
 *   errors                     SQLSTATE -> AD_E* with actionable text
 *   open / close / flush       the writer lock is a session advisory lock
 *   writes                     *_put: queue rows (store/wqueue.c); run_begin writes at once
 *   reads                      iterators (single-row mode) and aggregates
 *   workers                    leases, heartbeats, the fenced end of an episode (synchronous)
 *
 * Writes are queued in memory like SQLite's, and a flush sends them in ONE transaction: the
 * other rows statement by statement, the model calls (the bulk) with COPY, CALL_CHUNK rows at
 * a time, ids drawn from the calls sequence in one round trip first, then their bodies the
 * same way. A batch is either all in the database or not at all; a failed flush keeps it.
 * The call cache is the calls table itself, so every process using the database shares it.
 * Every value is sent as text (format 0): bodies with invalid UTF-8 or NUL bytes (an
 * untrusted reply) are stored with U+FFFD in their place, which PostgreSQL's text requires.
 */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "store/store_impl.h"
#include "store/wqueue.h"
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"
#include "util/timeu.h"

#define APP_ID 1094796372 /* 0x41444154 "ADAT": the advisory lock's first key */
#define STORE_COMMENT "autodata store"
#define CALL_CHUNK 1000 /* calls per COPY */

/* ======== Schema and migrations ======== */

/* Step i (0-based) brings the schema from version i to i+1; each mirrors the SQLite step of
 * the same number. Append only. */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY,"
    "  applied DOUBLE PRECISION NOT NULL);"
    "COMMENT ON TABLE schema_migrations IS '" STORE_COMMENT
    "';"
    "CREATE TABLE runs("
    "  id BIGSERIAL PRIMARY KEY,"
    "  recipe_name TEXT, recipe_sha256 TEXT NOT NULL, prompt_hashes TEXT NOT NULL,"
    "  seed BIGINT NOT NULL, version TEXT, command_line TEXT,"
    "  created DOUBLE PRECISION NOT NULL, status TEXT NOT NULL, info TEXT);"
    "CREATE TABLE sources("
    "  seq BIGSERIAL," /* insertion order (SQLite's rowid) */
    "  run BIGINT NOT NULL REFERENCES runs(id), source_id TEXT NOT NULL, title TEXT,"
    "  text_sha256 TEXT, state TEXT NOT NULL DEFAULT 'pending',"
    "  accepted INTEGER NOT NULL DEFAULT 0, rounds_used INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(run, source_id));"
    "CREATE TABLE candidates("
    "  run BIGINT NOT NULL REFERENCES runs(id), source_id TEXT NOT NULL,"
    "  round INTEGER NOT NULL, idx INTEGER NOT NULL, verdict TEXT NOT NULL, reason TEXT,"
    "  record TEXT, created DOUBLE PRECISION NOT NULL,"
    "  PRIMARY KEY(run, source_id, round, idx));"
    "CREATE INDEX candidates_verdict ON candidates(run, verdict, reason);"
    "CREATE TABLE examples("
    "  run BIGINT NOT NULL REFERENCES runs(id), example_id TEXT NOT NULL,"
    "  source_id TEXT NOT NULL, example TEXT NOT NULL, created DOUBLE PRECISION NOT NULL,"
    "  PRIMARY KEY(run, example_id));"
    "CREATE INDEX examples_source ON examples(run, source_id);"
    "CREATE TABLE calls("
    "  id BIGSERIAL PRIMARY KEY, run BIGINT NOT NULL REFERENCES runs(id),"
    "  role TEXT NOT NULL, source_id TEXT, round INTEGER, endpoint TEXT, model TEXT,"
    "  cache_key TEXT, status TEXT NOT NULL, error TEXT,"
    "  http_status INTEGER, prompt_tokens BIGINT, completion_tokens BIGINT,"
    "  latency_us BIGINT, attempts INTEGER, retries INTEGER,"
    "  cache_hit INTEGER NOT NULL DEFAULT 0, attempt_list TEXT,"
    "  created DOUBLE PRECISION NOT NULL);"
    "CREATE INDEX calls_cache ON calls(cache_key) WHERE status = 'ok' AND cache_hit = 0;"
    "CREATE INDEX calls_run_role ON calls(run, role);"
    "CREATE TABLE call_bodies("
    "  call_id BIGINT PRIMARY KEY REFERENCES calls(id), request TEXT, reply TEXT);"
    "CREATE TABLE events("
    "  id BIGSERIAL PRIMARY KEY, run BIGINT NOT NULL REFERENCES runs(id),"
    "  time DOUBLE PRECISION NOT NULL, level TEXT NOT NULL, event TEXT NOT NULL);"
    "CREATE INDEX events_run ON events(run);",
    /* 2 */
    "ALTER TABLE calls ADD COLUMN finish_reason TEXT;",
    /* 3 */
    "ALTER TABLE calls ADD COLUMN prefix_tokens BIGINT;",
    /* 4: optimize */
    "CREATE TABLE IF NOT EXISTS opt_splits(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));"
    "CREATE TABLE IF NOT EXISTS opt_variants(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));"
    "CREATE TABLE IF NOT EXISTS opt_evaluations(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));"
    "CREATE TABLE IF NOT EXISTS opt_iterations(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));",
    /* 5: analyses */
    "CREATE TABLE IF NOT EXISTS analyses(run BIGINT NOT NULL PRIMARY KEY REFERENCES runs(id),"
    "  analysis TEXT NOT NULL, created DOUBLE PRECISION NOT NULL);",
    /* 6 */
    "CREATE INDEX IF NOT EXISTS calls_run_source ON calls(run, source_id);",
    /* 7: workers sharing a run (PostgreSQL only: SQLite has one writer) */
    "ALTER TABLE sources ADD COLUMN lease_owner BIGINT, ADD COLUMN lease_until DOUBLE PRECISION;"
    "CREATE INDEX sources_lease ON sources(run, lease_owner) WHERE lease_owner IS NOT NULL;"
    "CREATE TABLE workers("
    "  id BIGSERIAL PRIMARY KEY, run BIGINT NOT NULL REFERENCES runs(id),"
    "  session BIGINT NOT NULL, host TEXT NOT NULL, pid BIGINT NOT NULL,"
    "  started DOUBLE PRECISION NOT NULL, heartbeat DOUBLE PRECISION NOT NULL,"
    "  lease_ms INTEGER NOT NULL, left_at DOUBLE PRECISION,"
    "  calls BIGINT NOT NULL DEFAULT 0, cache_hits BIGINT NOT NULL DEFAULT 0,"
    "  prompt_tokens BIGINT NOT NULL DEFAULT 0, completion_tokens BIGINT NOT NULL DEFAULT 0,"
    "  cost DOUBLE PRECISION NOT NULL DEFAULT 0, finished BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX workers_run ON workers(run, session);",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* The statement of each queued kind (store/wqueue.h); calls and their bodies go by COPY. */
static const char *const write_sql[WQ_N] = {
    [WQ_RUN_STATUS] = "UPDATE runs SET status = $1 WHERE id = $2",
    [WQ_SRC_INS] =
        "INSERT INTO sources(run, source_id, title, text_sha256) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
    [WQ_SRC_STATE] =
        "UPDATE sources SET state = $1, rounds_used = CASE WHEN $2::int < 0 THEN "
        "rounds_used ELSE $2::int END WHERE run = $3 AND source_id = $4",
    [WQ_CAND] =
        "INSERT INTO candidates(run, source_id, round, idx, verdict, reason, record, created) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run, source_id, round, idx) DO "
        "UPDATE SET verdict = excluded.verdict, reason = excluded.reason, record = "
        "excluded.record, created = excluded.created",
    [WQ_EXAMPLE] =
        "INSERT INTO examples(run, example_id, source_id, example, created) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run, example_id) DO UPDATE SET source_id = "
        "excluded.source_id, example = excluded.example, created = excluded.created",
    [WQ_SRC_ACCEPTED] =
        "UPDATE sources SET accepted = (SELECT count(*) FROM examples WHERE "
        "run = $1 AND source_id = $2) WHERE run = $1 AND source_id = $2",
    [WQ_CALL] = NULL,
    [WQ_CALL_BODY] = NULL,
    [WQ_EVENT] = "INSERT INTO events(run, time, level, event) VALUES ($1, $2, $3, $4)",
    [WQ_OPT_SPLIT] =
        "INSERT INTO opt_splits(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [WQ_OPT_VARIANT] =
        "INSERT INTO opt_variants(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [WQ_OPT_EVAL] =
        "INSERT INTO opt_evaluations(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [WQ_OPT_ITER] =
        "INSERT INTO opt_iterations(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [WQ_ANALYSIS] =
        "INSERT INTO analyses(run, analysis, created) VALUES ($1, $2, $3) "
        "ON CONFLICT (run) DO UPDATE SET analysis = excluded.analysis, created = excluded.created",
};
#define CALL_COLS                                                                         \
  "run, role, source_id, round, endpoint, model, cache_key, status, error, http_status, " \
  "prompt_tokens, completion_tokens, latency_us, attempts, retries, cache_hit, "          \
  "attempt_list, created, finish_reason, prefix_tokens"

static const char CACHE_SQL[] =
    "SELECT b.reply FROM calls c JOIN call_bodies b ON b.call_id = c.id "
    "WHERE c.cache_key = $1 AND c.status = 'ok' AND c.cache_hit = 0 "
    "AND b.reply IS NOT NULL LIMIT 1";

/* ======== The handle ======== */

struct pg {
  PGconn *c;
  int ro;
  struct wqueue wq; /* the pending batch, text as PostgreSQL's text takes it */
  store_id max_run;
  int calls_one_by_one; /* after a multi-row INSERT hit a row that cannot be written */
  unsigned prepared;    /* bit i: statement i of prepared_sql() is prepared on this connection
                           (a reset drops them) */
  store *cache_from;    /* --cache-from, read-only, any backend */
};

#define PG(st) ((struct pg *)(st)->impl)

/* ======== Errors ======== */

/* A libpq message without its trailing newline, in a static buffer. */
static const char *msg_of(const char *m) {
  static char b[512];
  snprintf(b, sizeof b, "%s", m && *m ? m : "unknown error");
  size_t n = strlen(b);
  while (n && (b[n - 1] == '\n' || b[n - 1] == ' ')) b[--n] = 0;
  return b;
}

/* 1 when the same batch may succeed later: everything but a row the database refuses
 * (data exception 22, integrity 23, a trigger's RAISE P0). */
static int transient_state(const char *sqlstate) {
  if (!sqlstate) return 1;
  return strncmp(sqlstate, "22", 2) && strncmp(sqlstate, "23", 2) && strncmp(sqlstate, "P0", 2);
}

/* Map a failed result (or, r NULL, the connection's state) to AD_E* with a message. */
static int pg_err(store *st, const PGresult *r, const char *doing) {
  const char *path = store_path(st);
  PGconn *c = PG(st)->c;
  const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
  const char *m = msg_of(r && *PQresultErrorMessage(r) ? PQresultErrorMessage(r)
                                                       : (c ? PQerrorMessage(c) : NULL));
  if (!state && c && PQstatus(c) == CONNECTION_OK)
    return store_seterr(st, AD_EIO, "store %s: PostgreSQL error while %s (%s)", path, doing, m);
  if (!state || !strncmp(state, "08", 2) || (c && PQstatus(c) == CONNECTION_BAD))
    return store_seterr(st, AD_EIO,
                        "store %s: lost the connection to PostgreSQL while %s (%s). Check that "
                        "the server is up and reachable, then run the same command again to "
                        "resume",
                        path, doing, m);
  if (!strcmp(state, "53100"))
    return store_seterr(st, AD_EFULL,
                        "store %s: the PostgreSQL server's disk is full while %s (%s). Free "
                        "space there and run the same command again: nothing half-written is "
                        "in the store",
                        path, doing, m);
  if (!strncmp(state, "53", 2))
    return store_seterr(st, AD_ENOMEM, "store %s: the PostgreSQL server is out of %s while %s",
                        path, m, doing);
  if (!strcmp(state, "25006") || !strcmp(state, "42501"))
    return store_seterr(st, AD_EREADONLY,
                        "store %s is read-only for this user (%s while %s). Grant write access "
                        "or give another --store",
                        path, m, doing);
  if (!strncmp(state, "40", 2) || !strcmp(state, "55P03"))
    return store_seterr(st, AD_EBUSY, "store %s is busy (%s while %s); try again", path, m, doing);
  if (!strcmp(state, "42P01"))
    return store_seterr(st, AD_ECORRUPT,
                        "store %s is missing a table (%s while %s): it is not an autodata "
                        "store or was damaged",
                        path, m, doing);
  if (!transient_state(state) || !strncmp(state, "42", 2))
    return store_seterr(st, AD_EINTERNAL, "store %s: %s while %s", path, m, doing);
  return store_seterr(st, AD_EIO, "store %s: PostgreSQL error while %s (%s)", path, doing, m);
}

/* Run sql with n text params; *out gets the result when asked (caller PQclear). */
/* r's outcome: 0 with r in *out (or cleared when out is NULL), or the error (r cleared). */
static int take_result(store *st, PGresult *r, PGresult **out, const char *doing) {
  ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
    int rc = pg_err(st, r, doing);
    PQclear(r);
    return rc;
  }
  if (out) *out = r;
  else PQclear(r);
  return 0;
}

static int run_sql(store *st, const char *sql, int n, const char *const *params, PGresult **out,
                   const char *doing) {
  return take_result(st, PQexecParams(PG(st)->c, sql, n, NULL, params, NULL, NULL, 0), out, doing);
}

/* The statements run again and again, prepared once per connection: a queued row's kind
 * (write_sql), or the cache lookup (PREP_CACHE). Parsing and planning each of them cost the
 * server about as much as running it. */
enum { PREP_CACHE = WQ_N };
static const char *prepared_sql(int id) { return id == PREP_CACHE ? CACHE_SQL : write_sql[id]; }

/* Run prepared statement id (preparing it first) with n text parameters, as run_sql. */
static int run_prepared(store *st, int id, int n, const char *const *params, PGresult **out,
                        const char *doing) {
  struct pg *q = PG(st);
  char name[32];
  snprintf(name, sizeof name, "autodata_%d", id);
  if (!(q->prepared & (1u << id))) {
    PGresult *r = PQprepare(q->c, name, prepared_sql(id), n, NULL);
    int rc = r && PQresultStatus(r) == PGRES_COMMAND_OK ? 0 : pg_err(st, r, doing);
    PQclear(r);
    if (rc) return rc;
    q->prepared |= 1u << id;
  }
  return take_result(st, PQexecPrepared(q->c, name, n, params, NULL, NULL, 0), out, doing);
}

/* sql may hold several statements (a migration step). */
static int run0(store *st, const char *sql, const char *doing) {
  PGresult *r = PQexec(PG(st)->c, sql);
  ExecStatusType s = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
  int rc = (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK) ? 0 : pg_err(st, r, doing);
  PQclear(r);
  return rc;
}

static void rollback(store *st) {
  PGconn *c = PG(st)->c;
  if (c && PQtransactionStatus(c) != PQTRANS_IDLE) PQclear(PQexec(c, "ROLLBACK"));
}

/* One int64 from the first column of the first row (0 when none). */
static int sql_int(store *st, const char *sql, int n, const char *const *params, int64_t *out,
                   const char *doing) {
  PGresult *r;
  int rc = run_sql(st, sql, n, params, &r, doing);
  if (rc) return rc;
  *out = PQntuples(r) && !PQgetisnull(r, 0, 0) ? strtoll(PQgetvalue(r, 0, 0), NULL, 10) : 0;
  PQclear(r);
  return 0;
}

/* A reconnect after the server went away (the next flush retries the batch). */
static int ensure_conn(store *st) {
  PGconn *c = PG(st)->c;
  if (PQstatus(c) == CONNECTION_OK) return 0;
  PG(st)->prepared = 0;
  PQreset(c);
  return PQstatus(c) == CONNECTION_OK ? 0 : pg_err(st, NULL, "reconnecting");
}

/* ======== Open / close / flush ======== */

static void pg_free(struct pg *q) {
  if (q->c) PQfinish(q->c);
  store_close(q->cache_from);
  wq_release(&q->wq);
  free(q);
}

/* *version: the schema version; *fresh: no store tables at all. */
static int check_schema(store *st, int64_t *version, int *fresh) {
  PGresult *r;
  int rc = run0(st, "SET client_min_messages = warning", "setting up the session");
  if (rc || (rc = run_sql(st,
                          "SELECT to_regclass('schema_migrations') IS NOT NULL, "
                          "coalesce(obj_description(to_regclass('schema_migrations'), "
                          "'pg_class'), ''), to_regclass('runs') IS NOT NULL",
                          0, NULL, &r, "reading the schema version")))
    return rc;
  int has = !strcmp(PQgetvalue(r, 0, 0), "t");
  int ours = !strcmp(PQgetvalue(r, 0, 1), STORE_COMMENT);
  int runs = !strcmp(PQgetvalue(r, 0, 2), "t");
  PQclear(r);
  *fresh = !has && !runs;
  *version = 0;
  if (*fresh) return 0;
  if (!has || !ours)
    return store_seterr(st, AD_ECORRUPT,
                        "%s is a PostgreSQL database (schema) but not an autodata store. "
                        "Check the URL, or pick an empty schema (options=-csearch_path%%3DNAME)",
                        store_path(st));
  if ((rc = sql_int(st, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, version,
                    "reading the schema version")))
    return rc;
  if (*version > SCHEMA_VERSION)
    return store_seterr(st, AD_EMISMATCH,
                        "store %s has schema version %lld, written by a newer autodata; this "
                        "one (schema %d) cannot read it safely. Use a newer autodata",
                        store_path(st), (long long)*version, SCHEMA_VERSION);
  return 0;
}

/* Workers open a store together (their writer lock is shared), so each step takes a
 * transaction lock and skips itself when another process applied it meanwhile. */
static int migrate(store *st, int64_t from) {
  for (int v = (int)from; v < SCHEMA_VERSION; v++) {
    char sql[160];
    int64_t now = 0;
    int rc = run0(st, "BEGIN", "starting a schema migration");
    if (!rc)
      rc = run0(st, "SELECT pg_advisory_xact_lock(1094796373, hashtext(current_schema()))",
                "waiting for a schema migration");
    if (!rc)
      rc = sql_int(st, "SELECT (to_regclass('schema_migrations') IS NOT NULL)::int", 0, NULL, &now,
                   "reading the schema version");
    if (!rc && now)
      rc = sql_int(st, "SELECT coalesce(max(version), 0) FROM schema_migrations", 0, NULL, &now,
                   "reading the schema version");
    if (rc) {
      rollback(st);
      return rc;
    }
    if (now > v) { /* applied by another worker */
      rollback(st);
      continue;
    }
    snprintf(sql, sizeof sql, "INSERT INTO schema_migrations(version, applied) VALUES (%d, %.3f)",
             v + 1, time_wall());
    if ((rc = run0(st, migrations[v], "migrating the schema")) ||
        (rc = run0(st, sql, "migrating the schema")) ||
        (rc = run0(st, "COMMIT", "committing a schema migration"))) {
      rollback(st);
      return rc;
    }
  }
  return 0;
}

/* The writer lock: a session advisory lock on (APP_ID, the schema), released when the
 * connection ends (also when the process dies). Run workers (STORE_OPEN_SHARED) hold it
 * shared: they exclude the exclusive writers, not each other. */
static int take_lock(store *st, int shared) {
  PGresult *r;
  int rc = run_sql(st,
                   shared
                       ? "SELECT pg_try_advisory_lock_shared($1::int, hashtext(current_schema()))"
                       : "SELECT pg_try_advisory_lock($1::int, hashtext(current_schema()))",
                   1, (const char *[]){"1094796372"}, &r, "taking the writer lock");
  if (rc) return rc;
  int got = !strcmp(PQgetvalue(r, 0, 0), "t");
  PQclear(r);
  if (got) return 0;
  char holder[128] = "";
  if (!run_sql(st,
               "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = "
               "l.pid WHERE l.locktype = 'advisory' AND l.granted AND l.classid = $1::oid AND "
               "l.objsubid = 2 AND l.objid::bigint = (hashtext(current_schema())::bigint + "
               "4294967296) % 4294967296 LIMIT 1",
               1, (const char *[]){"1094796372"}, &r, "finding the writer")) {
    if (PQntuples(r)) snprintf(holder, sizeof holder, "%s", PQgetvalue(r, 0, 0));
    PQclear(r);
  }
  const char *pid = !strncmp(holder, "autodata pid ", 13) ? holder + 13 : NULL;
  if (pid)
    return store_seterr(st, AD_EBUSY,
                        "store %s is in use by pid %s: wait for that run to end or stop it; "
                        "`autodata status --store URL` works meanwhile",
                        store_path(st), pid);
  return store_seterr(st, AD_EBUSY, "store %s is in use by another writer", store_path(st));
}

static int pg_open(store *st, const char *url, int flags) {
  struct pg *q = xcalloc(1, sizeof *q);
  q->ro = !!(flags & STORE_OPEN_READONLY);
  wq_init(&q->wq, 1);
  st->impl = q;
  st->wq = &q->wq;
  char app[64];
  snprintf(app, sizeof app, "autodata pid %ld", (long)getpid());
  const char *keys[] = {"dbname", "application_name", "connect_timeout", NULL};
  const char *vals[] = {url, app, "10", NULL};
  q->c = PQconnectdbParams(keys, vals, 1);
  int rc;
  int64_t version = 0;
  int fresh = 0;
  if (!q->c || PQstatus(q->c) != CONNECTION_OK) {
    rc = store_seterr(st, AD_EIO,
                      "cannot connect to store %s: %s. Check the URL and that the server is up; "
                      "give a password with PGPASSWORD or ~/.pgpass, not in the URL",
                      store_path(st), msg_of(q->c ? PQerrorMessage(q->c) : "out of memory"));
    goto fail;
  }
  if ((rc = check_schema(st, &version, &fresh))) goto fail;
  if (q->ro) {
    if (fresh) {
      rc = store_seterr(st, AD_ENOTFOUND, "%s holds no autodata store yet", store_path(st));
      goto fail;
    }
    if (version < SCHEMA_VERSION) {
      rc = store_seterr(st, AD_EMISMATCH,
                        "store %s has the older schema version %lld; open it once for "
                        "writing (e.g. resume the run) to upgrade it",
                        store_path(st), (long long)version);
      goto fail;
    }
    if ((rc = run0(st, "SET default_transaction_read_only = on", "setting up the session")))
      goto fail;
  } else {
    if ((rc = take_lock(st, !!(flags & STORE_OPEN_SHARED))) || (rc = migrate(st, version)))
      goto fail;
    /* lz4 for the bodies PostgreSQL compresses (TOAST): far less server CPU than its default
     * pglz; a server built without lz4 keeps its default */
    PQclear(PQexec(q->c, "SET default_toast_compression = 'lz4'"));
  }
  if ((rc = sql_int(st, "SELECT coalesce(max(id), 0) FROM runs", 0, NULL, &q->max_run,
                    "reading runs")))
    goto fail;
  return 0;
fail:
  pg_free(q);
  st->impl = NULL;
  st->wq = NULL;
  return rc;
}

/* v's decimal digits into out (at least 21 bytes), NUL-terminated: their length. snprintf's
 * "%lld" costs more than the rest of a call row's COPY text. */
static size_t fmt_int(char *out, int64_t v) {
  char tmp[24];
  size_t n = 0;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do tmp[n++] = (char)('0' + u % 10);
  while (u /= 10);
  size_t len = 0;
  if (v < 0) out[len++] = '-';
  while (n) out[len++] = tmp[--n];
  out[len] = 0;
  return len;
}

/* Value v as a text parameter: the queue's text, or the number written into num; NULL for
 * SQL NULL. */
static const char *param(const struct wq_val *v, char num[40]) {
  switch (v->type) {
  case WQ_TEXT: return v->s;
  case WQ_INT: fmt_int(num, v->i); return num;
  case WQ_REAL: snprintf(num, 40, "%.17g", v->d); return num;
  default: return NULL;
  }
}

/* One COPY text-format field: \N for NULL, else the text with backslash, tab, newline and
 * carriage return escaped (the queue's text has no NUL byte). 0 or the buffer's error. */
static int copy_field(struct buf *b, const char *s, int first) {
  int rc = first ? 0 : buf_putc(b, '\t');
  if (!s) return rc ? rc : buf_append(b, "\\N", 2);
  while (!rc) {
    size_t k = strcspn(s, "\\\t\n\r"); /* glibc: SSE4.2, many bytes a step */
    rc = buf_append(b, s, k);
    s += k;
    if (rc || !*s) break;
    char esc[2] = {'\\', *s == '\\' ? '\\' : *s == '\t' ? 't' : *s == '\n' ? 'n' : 'r'};
    rc = buf_append(b, esc, 2);
    s++;
  }
  return rc;
}

/* A COPY row: id, then op o's values. 0 or the buffer's error. */
static int copy_row(struct buf *b, const char *id, const struct wqueue *q, const struct wq_op *o) {
  int rc = copy_field(b, id, 1);
  char num[40];
  for (int v = 0; v < o->nv && !rc; v++)
    rc = copy_field(b, param(&q->vals[o->v0 + (size_t)v], num), 0);
  return rc ? rc : buf_putc(b, '\n');
}

/* COPY the rows in data (text format) with copy_sql. */
static int copy_in(store *st, const char *copy_sql, const struct buf *data, const char *doing) {
  PGconn *c = PG(st)->c;
  PGresult *r = PQexec(c, copy_sql);
  if (!r || PQresultStatus(r) != PGRES_COPY_IN) {
    int rc = pg_err(st, r, doing);
    PQclear(r);
    return rc;
  }
  PQclear(r);
  int ok = PQputCopyData(c, data->len ? buf_str(data) : "", (int)data->len) == 1;
  ok = PQputCopyEnd(c, ok ? NULL : "client error") == 1 && ok;
  int rc = 0;
  while ((r = PQgetResult(c))) {
    if (!rc && PQresultStatus(r) != PGRES_COMMAND_OK) rc = pg_err(st, r, doing);
    PQclear(r);
  }
  if (!rc && !ok) rc = pg_err(st, NULL, doing);
  return rc;
}

/* COPY the queued calls and their bodies: chunks of CALL_CHUNK rows (1 after a refused row),
 * ids drawn from the sequence first so the bodies can name them. */
static int put_calls(store *st, size_t *bad) {
  struct pg *pg = PG(st);
  const struct wqueue *q = &pg->wq;
  size_t chunk = pg->calls_one_by_one ? 1 : CALL_CHUNK;
  size_t *idx = xmalloc((q->n_ops + 1) * sizeof *idx);
  size_t n = 0;
  for (size_t i = 0; i < q->n_ops; i++)
    if (q->ops[i].kind == WQ_CALL) idx[n++] = i;
  struct buf rows = BUF_INIT, bodies = BUF_INIT;
  int rc = 0;
  for (size_t k = 0; k < n && !rc; k += chunk) {
    size_t m = n - k < chunk ? n - k : chunk;
    char cnt[24];
    snprintf(cnt, sizeof cnt, "%zu", m);
    PGresult *r;
    if ((rc = run_sql(st,
                      "SELECT nextval(pg_get_serial_sequence('calls', 'id')) FROM "
                      "generate_series(1, $1::int)",
                      1, (const char *[]){cnt}, &r, "saving a batch of records")))
      break;
    buf_reset(&rows);
    buf_reset(&bodies);
    int berr = 0;
    for (size_t j = 0; j < m && !berr; j++) {
      size_t i = idx[k + j];
      const char *id = PQgetvalue(r, (int)j, 0);
      berr = copy_row(&rows, id, q, &q->ops[i]);
      if (!berr && i + 1 < q->n_ops && q->ops[i + 1].kind == WQ_CALL_BODY)
        berr = copy_row(&bodies, id, q, &q->ops[i + 1]);
    }
    PQclear(r);
    if (berr) {
      rc = store_seterr(st, AD_ENOMEM, "store %s: building a batch", store_path(st));
      break;
    }
    const char *doing = chunk == 1 ? "saving a record (the row was dropped)"
                                   : "saving a batch of records";
    if ((rc = copy_in(st, "COPY calls(id, " CALL_COLS ") FROM STDIN", &rows, doing)) ||
        (bodies.len && (rc = copy_in(st, "COPY call_bodies(call_id, request, reply) FROM STDIN",
                                     &bodies, doing))))
      *bad = idx[k];
  }
  buf_release(&rows);
  buf_release(&bodies);
  free(idx);
  return rc;
}

/* The rows but the calls, statement by statement: 0, or the error with *bad the op. */
static int put_others(store *st, size_t *bad) {
  const struct wqueue *q = &PG(st)->wq;
  const char *p[16];
  char num[16][40];
  for (size_t i = 0; i < q->n_ops; i++) {
    const struct wq_op *o = &q->ops[i];
    if (o->kind == WQ_CALL || o->kind == WQ_CALL_BODY) continue;
    for (int j = 0; j < o->nv; j++) p[j] = param(&q->vals[o->v0 + (size_t)j], num[j]);
    int rc = run_prepared(st, o->kind, o->nv, p, NULL, "saving a batch of records");
    if (rc) {
      *bad = i;
      return rc;
    }
  }
  return 0;
}

static int pg_flush(store *st) {
  struct pg *q = PG(st);
  if (q->ro || !q->wq.n_ops) {
    q->wq.last_commit_ms = time_now_ms();
    return 0;
  }
  int rc = ensure_conn(st);
  if (rc || (rc = run0(st, "BEGIN", "starting a transaction"))) return rc;
  size_t bad = (size_t)-1;
  int in_calls = 0;
  rc = put_others(st, &bad);
  if (!rc) {
    in_calls = 1;
    rc = put_calls(st, &bad);
  }
  if (!rc) rc = run0(st, "COMMIT", "committing a batch of records");
  if (rc) {
    rollback(st);
    if (rc == AD_EINTERNAL && bad != (size_t)-1) {
      if (in_calls && !q->calls_one_by_one) {
        /* some row of a multi-row COPY: find it one row at a time */
        q->calls_one_by_one = 1;
        return pg_flush(st);
      }
      char m[sizeof st->errmsg];
      snprintf(m, sizeof m, "%s", st->errmsg);
      wq_drop_row(&q->wq, bad);
      store_seterr(st, AD_EINTERNAL, "%s (the row was dropped)", m);
    }
    return rc;
  }
  q->calls_one_by_one = 0;
  wq_committed(&q->wq);
  return 0;
}

static int pg_maybe_flush(store *st, int64_t now_ms) {
  return wq_due(&PG(st)->wq, now_ms) ? pg_flush(st) : 0;
}

static size_t pg_pending(const store *st) { return PG(st)->wq.n_ops; }

static void pg_set_batch(store *st, int max_rows, int max_ms) {
  wq_set_batch(&PG(st)->wq, max_rows, max_ms);
}

static int pg_close(store *st) {
  struct pg *q = PG(st);
  int rc = q->ro ? 0 : pg_flush(st);
  pg_free(q);
  st->impl = NULL;
  st->wq = NULL;
  return rc;
}

static int pg_attach_cache(store *st, const char *other) {
  struct pg *q = PG(st);
  store_close(q->cache_from);
  q->cache_from = NULL;
  store *o = NULL;
  int rc = store_open(other, STORE_OPEN_READONLY, &o);
  if (rc) {
    store_seterr(st, rc, "--cache-from %s: %s", other, store_errmsg(o));
    store_close(o);
    return rc;
  }
  q->cache_from = o;
  return 0;
}

/* ======== Writes ======== */

static int check_run(store *st, store_id run) {
  struct pg *q = PG(st);
  if (run > q->max_run) { /* another process may have started it */
    int64_t m = 0;
    if (!sql_int(st, "SELECT coalesce(max(id), 0) FROM runs", 0, NULL, &m, "reading runs"))
      q->max_run = m;
  }
  if (run > q->max_run)
    return store_seterr(st, AD_EINVAL, "store %s: no run %lld (start one with store_run_begin)",
                        store_path(st), (long long)run);
  return 0;
}

static int pg_run_begin(store *st, const struct store_run_info *info, int new_run, store_id *run,
                        int *resumed) {
  struct pg *q = PG(st);
  int rc = pg_flush(st);
  if (rc) return rc;
  *resumed = 0;
  PGresult *r = NULL;
  struct buf diff = BUF_INIT;
  char *prompts = NULL, *infotext = NULL, *cmdline = NULL;
  json_t *infoj = NULL;
  /* workers starting together must resume one run, not each create one */
  if ((rc = run0(st, "SELECT pg_advisory_lock(1094796373, hashtext(current_schema()))",
                 "waiting for another worker to begin the run")))
    return rc;
  if ((rc = run_sql(st,
                    "SELECT id, recipe_sha256, prompt_hashes, seed FROM runs ORDER BY id DESC "
                    "LIMIT 1",
                    0, NULL, &r, "reading runs")))
    goto cleanup;
  if (PQntuples(r) && !new_run) {
    store_id id = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
    if ((rc = store_run_diff(&diff, PQgetvalue(r, 0, 1), PQgetvalue(r, 0, 2),
                             strtoll(PQgetvalue(r, 0, 3), NULL, 10), info))) {
      rc = store_seterr(st, rc, "store %s: cannot describe how run %lld differs (%s)",
                        store_path(st), (long long)id, ad_strerror(rc));
      goto cleanup;
    }
    if (diff.len) {
      rc = store_seterr(st, AD_EMISMATCH,
                        "store %s holds run %lld made with different settings: %s. Resume "
                        "with the same recipe, prompts and seed; or start a new run in this "
                        "store (cached calls are reused); or use another store",
                        store_path(st), (long long)id, buf_str(&diff));
      goto cleanup;
    }
    char ids[24];
    snprintf(ids, sizeof ids, "%lld", (long long)id);
    if ((rc = run_sql(st, "UPDATE runs SET status = 'running' WHERE id = $1", 1,
                      (const char *[]){ids}, NULL, "resuming the run")))
      goto cleanup;
    *run = id;
    *resumed = 1;
    if (id > q->max_run) q->max_run = id;
    goto cleanup;
  }
  prompts = info->prompt_hashes ? jx_dump_canonical(info->prompt_hashes) : xstrdup("{}");
  infoj = json_object();
  if (info->prices) json_object_set(infoj, "prices", (json_t *)info->prices);
  if (info->extra) json_object_set(infoj, "extra", (json_t *)info->extra);
  infotext = jx_dump_canonical(infoj);
  if (infotext) secret_scrub_inplace(infotext);
  cmdline = info->command_line ? store_url_redact(info->command_line) : NULL;
  secret_scrub_inplace(cmdline);
  char seed[24], created[40];
  snprintf(seed, sizeof seed, "%lld", (long long)(int64_t)info->seed);
  snprintf(created, sizeof created, "%.17g", time_wall());
  const char *p[] = {
      info->recipe_name, info->recipe_sha256, prompts, seed, info->version, cmdline, created,
      infotext};
  PQclear(r);
  r = NULL;
  if ((rc = run_sql(st,
                    "INSERT INTO runs(recipe_name, recipe_sha256, prompt_hashes, seed, version, "
                    "command_line, created, status, info) VALUES ($1, $2, $3, $4, $5, $6, $7, "
                    "'running', $8) RETURNING id",
                    8, p, &r, "creating a run")))
    goto cleanup;
  *run = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
  q->max_run = *run;
cleanup:
  PQclear(r);
  PQclear(PQexec(q->c, "SELECT pg_advisory_unlock(1094796373, hashtext(current_schema()))"));
  buf_release(&diff);
  free(prompts);
  free(infotext);
  free(cmdline);
  json_decref(infoj);
  return rc;
}

static int pg_run_latest(store *st, store_id *run) {
  int64_t id = 0;
  int rc = sql_int(st, "SELECT coalesce(max(id), 0) FROM runs", 0, NULL, &id, "reading runs");
  if (rc) return rc;
  if (id > PG(st)->max_run) PG(st)->max_run = id;
  if (!id) return store_seterr(st, AD_ENOTFOUND, "store %s holds no run yet", store_path(st));
  *run = id;
  return 0;
}

static int pg_source_put(store *st, store_id run, const char *source_id, const char *title,
                         const char *text_sha256) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  char rs[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  PGresult *r;
  if ((rc = run_sql(st, "SELECT text_sha256 FROM sources WHERE run = $1 AND source_id = $2", 2,
                    (const char *[]){rs, source_id}, &r, "reading sources")))
    return rc;
  if (PQntuples(r)) {
    const char *old = PQgetisnull(r, 0, 0) ? NULL : PQgetvalue(r, 0, 0);
    if (old && text_sha256 && strcmp(old, text_sha256)) {
      char a[16], c[16];
      store_short_hash(a, old);
      store_short_hash(c, text_sha256);
      rc = store_seterr(st, AD_EMISMATCH,
                        "store %s: source '%s' changed since the run started (sha256 %s -> "
                        "%s); resume with the same corpus or start a new run",
                        store_path(st), source_id, a, c);
    }
    PQclear(r);
    return rc;
  }
  PQclear(r);
  return wq_source(&q->wq, run, source_id, title, text_sha256);
}

static int pg_cache_get(store *st, const char *key, char **reply, size_t *len) {
  struct pg *q = PG(st);
  size_t n;
  const char *pending = wq_cached(&q->wq, key, &n);
  if (pending) {
    *reply = xstrndup(pending, n);
    if (len) *len = n;
    return 0;
  }
  PGresult *r = NULL;
  int rc = run_prepared(st, PREP_CACHE, 1, (const char *[]){key}, &r, "reading the cache");
  if (rc) return rc;
  if (PQntuples(r)) {
    n = (size_t)PQgetlength(r, 0, 0);
    *reply = xstrndup(PQgetvalue(r, 0, 0), n);
    if (len) *len = n;
    PQclear(r);
    return 0;
  }
  PQclear(r);
  rc = AD_ENOTFOUND;
  if (q->cache_from) {
    rc = store_cache_get(q->cache_from, key, reply, len);
    if (rc && rc != AD_ENOTFOUND)
      return store_seterr(st, rc, "--cache-from: %s", store_errmsg(q->cache_from));
  }
  if (rc == AD_ENOTFOUND) store_seterr(st, rc, "no cached reply for key %s", key);
  return rc;
}

/* ======== Reads ======== */

struct col {
  const char *name;
  char kind; /* 'i' integer, 'r' real, 't' text, 'j' JSON text, 'b' boolean */
};
#define NCOLS(a) ((int)(sizeof(a) / sizeof *(a)))

static json_t *col_value(const PGresult *r, int row, int i, char kind) {
  if (PQgetisnull(r, row, i)) return json_null();
  const char *p = PQgetvalue(r, row, i);
  size_t n = (size_t)PQgetlength(r, row, i);
  switch (kind) {
  case 'i': return json_integer((json_int_t)strtoll(p, NULL, 10));
  case 'r': return json_real(strtod(p, NULL));
  case 'b': return json_boolean(strcmp(p, "0") != 0);
  case 'j': {
    json_t *v = json_loadb(p, n, JSON_DECODE_ANY, NULL);
    return v ? v : jx_string_lossy(p, n);
  }
  default: return jx_string_lossy(p, n);
  }
}

static json_t *row_obj(const PGresult *r, int row, const struct col *cols, int n) {
  json_t *o = json_object();
  for (int i = 0; i < n; i++) {
    json_t *v = col_value(r, row, i, cols[i].kind);
    if (!v || json_object_set_new(o, cols[i].name, v)) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

static int pre_read(store *st) {
  struct pg *q = PG(st);
  return (!q->ro && q->wq.n_ops) ? pg_flush(st) : 0;
}

static int resolve_run(store *st, store_id *run) {
  int rc = pre_read(st);
  if (rc) return rc;
  if (*run > 0) return 0;
  return pg_run_latest(st, run);
}

/* Hand the rows of sql (params: run as $1 when > 0, text1 as $2 when given, after as $3 when
 * >= 0) to fn. The whole result is fetched first, so fn may use the same connection (a copy
 * writes while it reads); big tables are read in pages (calls_query). *n_rows: rows seen. */
static int each_page(store *st, const char *sql, store_id run, const char *text1, int64_t after,
                     const struct col *cols, int n, store_row_fn fn, void *ud, int *n_rows,
                     int64_t *last_id) {
  char rs[24], as[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  snprintf(as, sizeof as, "%lld", (long long)after);
  const char *p[3] = {rs, text1 ? text1 : "", as};
  int np = after >= 0 ? 3 : text1 ? 2 : (run > 0 ? 1 : 0);
  PGresult *r;
  int rc = run_sql(st, sql, np, p, &r, "reading");
  if (rc) return rc;
  int rows = PQntuples(r);
  for (int i = 0; i < rows && !rc; i++) {
    json_t *row = row_obj(r, i, cols, n);
    if (!row) {
      rc = store_seterr(st, AD_ECORRUPT, "store %s: a row holds a value that JSON cannot represent",
                        store_path(st));
      break;
    }
    if (last_id) *last_id = strtoll(PQgetvalue(r, i, 0), NULL, 10);
    rc = fn(ud, row);
    json_decref(row);
  }
  if (n_rows) *n_rows = rows;
  PQclear(r);
  return rc;
}

static int each(store *st, const char *sql, store_id run, const char *text1, const struct col *cols,
                int n, store_row_fn fn, void *ud) {
  return each_page(st, sql, run, text1, -1, cols, n, fn, ud, NULL, NULL);
}

static int each_in_run(store *st, store_id run, const char *sql, const char *text1,
                       const struct col *cols, int n, store_row_fn fn, void *ud) {
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  return each(st, sql, run, text1, cols, n, fn, ud);
}

static const struct col run_cols[] = {
    {"id", 'i'},     {"recipe_name", 't'}, {"recipe_sha256", 't'}, {"prompt_hashes", 'j'},
    {"seed", 'i'},   {"version", 't'},     {"command_line", 't'},  {"created", 'r'},
    {"status", 't'}, {"info", 'j'}};
#define RUN_SELECT                                                                      \
  "SELECT id, recipe_name, recipe_sha256, prompt_hashes, seed, version, command_line, " \
  "created, status, info FROM runs"

static int pg_runs_each(store *st, store_row_fn fn, void *ud) {
  int rc = pre_read(st);
  if (rc) return rc;
  return each(st, RUN_SELECT " ORDER BY id", 0, NULL, run_cols, NCOLS(run_cols), fn, ud);
}

static int pg_sources_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {{"source_id", 't'}, {"title", 't'},    {"text_sha256", 't'},
                                    {"state", 't'},     {"accepted", 'i'}, {"rounds_used", 'i'}};
  return each_in_run(st, run,
                     "SELECT source_id, title, text_sha256, state, accepted, rounds_used "
                     "FROM sources WHERE run = $1 ORDER BY seq",
                     NULL, cols, NCOLS(cols), fn, ud);
}

static int pg_source_get(store *st, store_id run, const char *source_id, struct store_source *out) {
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  char rs[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  PGresult *r;
  if ((rc = run_sql(st,
                    "SELECT source_id, text_sha256, state, accepted, rounds_used FROM sources "
                    "WHERE run = $1 AND source_id = $2",
                    2, (const char *[]){rs, source_id}, &r, "reading sources")))
    return rc;
  if (!PQntuples(r)) {
    PQclear(r);
    return store_seterr(st, AD_ENOTFOUND, "store %s: run %lld has no source '%s'", store_path(st),
                        (long long)run, source_id);
  }
  memset(out, 0, sizeof *out);
  snprintf(out->source_id, sizeof out->source_id, "%s", PQgetvalue(r, 0, 0));
  snprintf(out->text_sha256, sizeof out->text_sha256, "%s", PQgetvalue(r, 0, 1));
  enum store_source_state state = STORE_SRC_PENDING;
  (void)store_source_state_parse(PQgetvalue(r, 0, 2), &state);
  out->state = state;
  out->accepted = atoi(PQgetvalue(r, 0, 3));
  out->rounds_used = atoi(PQgetvalue(r, 0, 4));
  PQclear(r);
  return 0;
}

static const struct col cand_cols[] = {{"source_id", 't'}, {"round", 'i'},  {"index", 'i'},
                                       {"verdict", 't'},   {"reason", 't'}, {"record", 'j'}};

static int pg_candidates_each(store *st, store_id run, const char *verdict, store_row_fn fn,
                              void *ud) {
  return each_in_run(st, run,
                     verdict ? "SELECT source_id, round, idx, verdict, reason, record FROM "
                               "candidates WHERE run = $1 AND verdict = $2 "
                               "ORDER BY source_id COLLATE \"C\", round, idx"
                             : "SELECT source_id, round, idx, verdict, reason, record FROM "
                               "candidates WHERE run = $1 ORDER BY source_id COLLATE \"C\", "
                               "round, idx",
                     verdict, cand_cols, NCOLS(cand_cols), fn, ud);
}

static int pg_examples_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {
      {"example_id", 't'}, {"source_id", 't'}, {"created", 'r'}, {"example", 'j'}};
  return each_in_run(st, run,
                     "SELECT example_id, source_id, created, example FROM examples "
                     "WHERE run = $1 ORDER BY example_id COLLATE \"C\"",
                     NULL, cols, NCOLS(cols), fn, ud);
}

static const struct col call_cols[] = {
    {"id", 'i'},          {"role", 't'},          {"source_id", 't'},
    {"round", 'i'},       {"endpoint", 't'},      {"model", 't'},
    {"cache_key", 't'},   {"status", 't'},        {"error", 't'},
    {"http_status", 'i'}, {"prompt_tokens", 'i'}, {"completion_tokens", 'i'},
    {"latency_us", 'i'},  {"attempts", 'i'},      {"retries", 'i'},
    {"cache_hit", 'b'},   {"attempt_list", 'j'},  {"finish_reason", 't'},
    {"request", 't'},     {"reply", 't'}};

#define CALL_PAGE 2000

/* The calls of run matching where ($2 = text1), by id, CALL_PAGE rows at a time ($3 = the
 * last id seen), so bodies never all sit in memory. */
static int calls_query(store *st, store_id run, const char *where, const char *text1,
                       int with_bodies, store_row_fn fn, void *ud) {
  char sql[768];
  snprintf(sql, sizeof sql,
           "SELECT c.id, role, source_id, round, endpoint, model, cache_key, status, error, "
           "http_status, prompt_tokens, completion_tokens, latency_us, attempts, retries, "
           "cache_hit, attempt_list, finish_reason%s FROM calls c%s WHERE run = $1%s AND "
           "($2::text IS NOT NULL) AND c.id > $3::bigint ORDER BY c.id LIMIT %d",
           with_bodies ? ", b.request, b.reply" : "",
           with_bodies ? " LEFT JOIN call_bodies b ON b.call_id = c.id" : "", where, CALL_PAGE);
  int rc = resolve_run(st, &run);
  int64_t last = 0;
  int rows = CALL_PAGE;
  while (!rc && rows == CALL_PAGE)
    rc = each_page(st, sql, run, text1 ? text1 : "", last, call_cols,
                   NCOLS(call_cols) - (with_bodies ? 0 : 2), fn, ud, &rows, &last);
  return rc;
}

static int pg_calls_each(store *st, store_id run, const char *role, int with_bodies,
                         store_row_fn fn, void *ud) {
  return calls_query(st, run, role ? " AND role = $2" : "", role, with_bodies, fn, ud);
}

static int pg_source_candidates_each(store *st, store_id run, const char *source_id,
                                     store_row_fn fn, void *ud) {
  return each_in_run(st, run,
                     "SELECT source_id, round, idx, verdict, reason, record FROM candidates "
                     "WHERE run = $1 AND source_id = $2 ORDER BY round, idx",
                     source_id, cand_cols, NCOLS(cand_cols), fn, ud);
}

static int pg_source_calls_each(store *st, store_id run, const char *source_id, int with_bodies,
                                store_row_fn fn, void *ud) {
  return calls_query(st, run, " AND source_id = $2", source_id, with_bodies, fn, ud);
}

static int pg_events_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {{"id", 'i'}, {"time", 'r'}, {"level", 't'}, {"event", 'j'}};
  return each_in_run(st, run,
                     "SELECT id, time, level, event FROM events WHERE run = $1 ORDER BY id", NULL,
                     cols, NCOLS(cols), fn, ud);
}

static int pg_opt_each(store *st, enum store_opt_table t, const char *optimization, store_row_fn fn,
                       void *ud) {
  static const char *const sql[] = {
      "SELECT key, record FROM opt_splits WHERE optimization = $2 AND $1::int IS NOT NULL "
      "ORDER BY key COLLATE \"C\"",
      "SELECT key, record FROM opt_variants WHERE optimization = $2 AND $1::int IS NOT NULL "
      "ORDER BY key COLLATE \"C\"",
      "SELECT key, record FROM opt_evaluations WHERE optimization = $2 AND $1::int IS NOT NULL "
      "ORDER BY key COLLATE \"C\"",
      "SELECT key, record FROM opt_iterations WHERE optimization = $2 AND $1::int IS NOT NULL "
      "ORDER BY key COLLATE \"C\""};
  static const struct col cols[] = {{"key", 't'}, {"record", 'j'}};
  int rc = pre_read(st);
  if (rc) return rc;
  return each(st, sql[t], 0, optimization, cols, NCOLS(cols), fn, ud);
}

static int pg_analysis_get(store *st, store_id run, json_t **out) {
  *out = NULL;
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  char rs[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  PGresult *r;
  if ((rc = run_sql(st, "SELECT analysis FROM analyses WHERE run = $1", 1, (const char *[]){rs}, &r,
                    "reading the analysis")))
    return rc;
  if (!PQntuples(r)) {
    PQclear(r);
    return AD_ENOTFOUND;
  }
  *out = json_loadb(PQgetvalue(r, 0, 0), (size_t)PQgetlength(r, 0, 0), 0, NULL);
  PQclear(r);
  return *out ? 0
              : store_seterr(st, AD_ECORRUPT, "store %s: run %lld's analysis is not JSON",
                             store_path(st), (long long)run);
}

/* ---- aggregates (store_stats_build in stats.c; these are the queries) ---- */

static int stats_rows(store *st, store_id run, const char *sql, store_stats_fn fn, void *ud) {
  char rs[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  PGresult *r;
  int rc = run_sql(st, sql, 1, (const char *[]){rs}, &r, "computing statistics");
  if (rc) return rc;
  int nc = PQnfields(r) < STORE_STATS_COLS ? PQnfields(r) : STORE_STATS_COLS;
  for (int i = 0; i < PQntuples(r) && !rc; i++) {
    struct store_stats_row row;
    memset(&row, 0, sizeof row);
    for (int k = 0; k < nc; k++) {
      row.null[k] = PQgetisnull(r, i, k);
      if (row.null[k]) continue;
      row.s[k] = PQgetvalue(r, i, k);
      row.i[k] = strtoll(row.s[k], NULL, 10);
      row.d[k] = strtod(row.s[k], NULL);
    }
    rc = fn(ud, &row);
  }
  PQclear(r);
  return rc;
}

static int stats_run_row(store *st, store_id run, store_row_fn fn, void *ud) {
  return each(st, RUN_SELECT " WHERE id = $1", run, NULL, run_cols, NCOLS(run_cols), fn, ud);
}

#define REAL_OK "WHERE run = $1 AND status = 'ok' AND cache_hit = 0"
static const struct store_stats_q stats_q = {
    .rows = stats_rows,
    .run_row = stats_run_row,
    .sources =
        "SELECT state, count(*) FROM sources WHERE run = $1 GROUP BY state "
        "ORDER BY state COLLATE \"C\"",
    .examples = "SELECT count(*) FROM examples WHERE run = $1",
    .candidates = "SELECT count(*) FROM candidates WHERE run = $1",
    .rejections =
        "SELECT coalesce(reason, 'unspecified'), count(*) FROM candidates WHERE "
        "run = $1 AND verdict = 'rejected' GROUP BY 1 "
        "ORDER BY 2 DESC, coalesce(reason, 'unspecified') COLLATE \"C\"",
    .calls =
        "SELECT role, status, cache_hit, count(*), coalesce(sum(attempts), 0), "
        "coalesce(sum(retries), 0) FROM calls WHERE run = $1 "
        "GROUP BY role, status, cache_hit "
        "ORDER BY role COLLATE \"C\", status COLLATE \"C\", cache_hit",
    .role_tokens =
        "SELECT role, model, coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(completion_tokens), 0) FROM calls WHERE run = $1 AND "
        "cache_hit = 0 GROUP BY role, model ORDER BY role COLLATE \"C\", "
        "model COLLATE \"C\"",
    .tokens =
        "SELECT model, coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(completion_tokens), 0), count(*) FROM calls "
        "WHERE run = $1 AND cache_hit = 0 GROUP BY model ORDER BY model COLLATE \"C\"",
    .prefix =
        "SELECT coalesce(sum(prefix_tokens), 0) FROM calls WHERE run = $1 AND "
        "cache_hit = 0",
    .wall = "SELECT max(created) - min(created) FROM calls WHERE run = $1",
    .ok_calls = "SELECT count(*) FROM calls " REAL_OK,
    .latency_mean = "SELECT trunc(avg(latency_us))::bigint FROM calls " REAL_OK,
    .latency_at = "SELECT latency_us FROM calls " REAL_OK
                  " ORDER BY latency_us LIMIT 1 "
                  "OFFSET %lld",
};

static int pg_stats(store *st, store_id run, json_t **out) {
  int rc = resolve_run(st, &run);
  return rc ? rc : store_stats_build(st, run, &stats_q, out);
}

/* ======== Workers ======== */

/* Several `autodata run` processes share one run (store.h, docs/store.md). Everything here is
 * synchronous, one statement at a time (autocommit), apart from the write queue: a lease must
 * be known held before an episode starts, and an episode's end written only while it is. Times
 * are the database's clock (NOW_EPOCH), so hosts with skewed clocks agree on expiry. */
#define NOW_EPOCH "extract(epoch from clock_timestamp())"
#define LEASE_OF(w) "((SELECT lease_ms FROM workers WHERE id = " w ") / 1000.0)"
#define FINISHED_STATE "state IN ('done', 'exhausted')"

static void id_text(char out[24], int64_t v) { snprintf(out, 24, "%lld", (long long)v); }

static int pg_worker_join(store *st, store_id run, const char *host, int lease_ms,
                          int64_t *worker) {
  char rs[24], pid[24], ls[24];
  id_text(rs, run);
  id_text(pid, (int64_t)getpid());
  id_text(ls, lease_ms);
  int rc = check_run(st, run);
  /* the live workers' session, or a new one: two first workers at once both take max + 1 */
  if (!rc)
    rc = sql_int(
        st,
        "INSERT INTO workers(run, session, host, pid, started, heartbeat, lease_ms) "
        "SELECT $1::bigint, coalesce((SELECT max(session) FROM workers WHERE run = $1 AND "
        "left_at IS NULL AND heartbeat > " NOW_EPOCH
        " - lease_ms / 1000.0), "
        "(SELECT coalesce(max(session), 0) + 1 FROM workers WHERE run = $1)), $2, $3::bigint, " NOW_EPOCH
        ", " NOW_EPOCH ", $4::int RETURNING id",
        4, (const char *[]){rs, host, pid, ls}, worker, "registering a worker");
  return rc;
}

/* One statement: the row is locked (SKIP LOCKED: a worker claiming or finishing it now makes
 * it "held", to be revisited), then leased when it is unfinished (or exhausted and reopen)
 * and unleased, ours, or expired. */
static int pg_lease_claim(store *st, store_id run, int64_t worker, const char *source_id,
                          int reopen, enum store_claim *out, int64_t *took_from) {
  char rs[24], ws[24];
  id_text(rs, run);
  id_text(ws, worker);
  PGresult *r;
  int rc = run_sql(
      st,
      "WITH cur AS (SELECT state, lease_owner, lease_until FROM sources WHERE run = $1 AND "
      "source_id = $2 FOR UPDATE SKIP LOCKED), "
      "upd AS (UPDATE sources s SET lease_owner = $3, lease_until = " NOW_EPOCH
      " + " LEASE_OF("$3") ", state = 'in_progress' FROM cur WHERE s.run = $1 AND "
      "s.source_id = $2 AND (cur.state NOT IN ('done', 'exhausted') OR ($4 = '1' AND "
      "cur.state = 'exhausted')) AND (cur.lease_owner IS NULL OR cur.lease_owner = $3 OR "
      "cur.lease_until < " NOW_EPOCH ") RETURNING 1) "
      "SELECT cur.state, cur.lease_owner, (SELECT count(*) FROM upd) FROM cur",
      4, (const char *[]){rs, source_id, ws, reopen ? "1" : "0"}, &r, "leasing a source");
  if (rc) return rc;
  *out = STORE_CLAIM_HELD; /* no row: another worker has it locked right now */
  if (PQntuples(r)) {
    const char *state = PQgetvalue(r, 0, 0);
    int64_t owner = PQgetisnull(r, 0, 1) ? 0 : strtoll(PQgetvalue(r, 0, 1), NULL, 10);
    if (atoi(PQgetvalue(r, 0, 2)) == 1) {
      *out = STORE_CLAIM_GOT;
      if (owner && owner != worker) *took_from = owner;
    } else if (!strcmp(state, "done") || !strcmp(state, "exhausted")) {
      *out = STORE_CLAIM_FINISHED;
    }
  }
  PQclear(r);
  return 0;
}

static int pg_worker_beat(store *st, store_id run, int64_t worker,
                          const struct store_worker_counts *m,
                          void (*fn)(void *ud, const char *source_id), void *ud,
                          struct store_worker_counts *others, int *alive) {
  char rs[24], ws[24], v[6][40];
  id_text(rs, run);
  id_text(ws, worker);
  id_text(v[0], m->calls);
  id_text(v[1], m->cache_hits);
  id_text(v[2], m->prompt_tokens);
  id_text(v[3], m->completion_tokens);
  id_text(v[4], m->finished);
  snprintf(v[5], sizeof v[5], "%.17g", m->cost);
  PGresult *r = NULL;
  int rc = ensure_conn(st);
  if (!rc)
    rc = run_sql(st,
                 "UPDATE workers SET heartbeat = " NOW_EPOCH
                 ", calls = $2, cache_hits = $3, "
                 "prompt_tokens = $4, completion_tokens = $5, finished = $6, cost = $7 "
                 "WHERE id = $1",
                 7, (const char *[]){ws, v[0], v[1], v[2], v[3], v[4], v[5]}, NULL,
                 "recording a heartbeat");
  if (!rc)
    rc = run_sql(st,
                 "UPDATE sources SET lease_until = " NOW_EPOCH
                 " + " LEASE_OF("$2") " WHERE run = $1 AND lease_owner = $2 AND NOT " FINISHED_STATE
                                      " RETURNING source_id",
                 2, (const char *[]){rs, ws}, &r, "renewing leases");
  if (rc) return rc;
  for (int i = 0; fn && i < PQntuples(r); i++) fn(ud, PQgetvalue(r, i, 0));
  PQclear(r);
  if (!others && !alive) return 0;
  if ((rc = run_sql(st,
                    "SELECT coalesce(sum(calls), 0), coalesce(sum(cache_hits), 0), "
                    "coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0), "
                    "coalesce(sum(finished), 0), coalesce(sum(cost), 0), count(*) FILTER "
                    "(WHERE left_at IS NULL AND heartbeat > " NOW_EPOCH " - lease_ms / 1000.0) "
                    "FROM workers WHERE run = $1 AND id <> $2 AND session = (SELECT session "
                    "FROM workers WHERE id = $2)",
                    2, (const char *[]){rs, ws}, &r, "reading the workers' totals")))
    return rc;
  if (others)
    *others = (struct store_worker_counts){
        strtoll(PQgetvalue(r, 0, 0), NULL, 10), strtoll(PQgetvalue(r, 0, 1), NULL, 10),
        strtoll(PQgetvalue(r, 0, 2), NULL, 10), strtoll(PQgetvalue(r, 0, 3), NULL, 10),
        strtoll(PQgetvalue(r, 0, 4), NULL, 10), strtod(PQgetvalue(r, 0, 5), NULL)};
  if (alive) *alive = atoi(PQgetvalue(r, 0, 6));
  PQclear(r);
  return 0;
}

/* The episode's end rows go through the queue's own statements (wq_episode queues them on the
 * queue the flush emptied), sent here inside the transaction that holds the source's row; the
 * queue is emptied whatever happens (a result without its lease is dropped). */
static int pg_lease_finish(store *st, store_id run, int64_t worker,
                           const struct store_episode_end *e) {
  struct pg *q = PG(st);
  int rc = pg_flush(st); /* the episode's calls and earlier rounds first */
  if (rc) return rc;
  char rs[24], ws[24];
  id_text(rs, run);
  id_text(ws, worker);
  int64_t owner = 0;
  size_t bad;
  if ((rc = run0(st, "BEGIN", "starting a transaction")) ||
      (rc = sql_int(st,
                    "SELECT coalesce(lease_owner, 0) FROM sources WHERE run = $1 AND "
                    "source_id = $2 FOR UPDATE",
                    2, (const char *[]){rs, e->source_id}, &owner, "checking a lease")))
    goto done;
  if (owner != worker) {
    rc = store_seterr(st, AD_EBUSY,
                      "store %s: source '%s' is leased to worker %lld, not to this one (%lld): "
                      "its lease expired and was taken over; this result is dropped",
                      store_path(st), e->source_id, (long long)owner, (long long)worker);
    goto done;
  }
  if ((rc = wq_queued(st, wq_episode(&q->wq, run, e))) || (rc = put_others(st, &bad))) goto done;
  rc = run_sql(st,
               "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE run = $1 AND "
               "source_id = $2",
               2, (const char *[]){rs, e->source_id}, NULL, "ending a lease");
  if (!rc) rc = run0(st, "COMMIT", "committing a finished source");
done:
  if (rc) rollback(st);
  wq_committed(&q->wq);
  return rc;
}

static int pg_lease_release(store *st, store_id run, int64_t worker, const char *source_id) {
  char rs[24], ws[24];
  id_text(rs, run);
  id_text(ws, worker);
  int rc = run_sql(st,
                   source_id ? "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE "
                               "run = $1 AND lease_owner = $2 AND source_id = $3"
                             : "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE "
                               "run = $1 AND lease_owner = $2",
                   source_id ? 3 : 2, (const char *[]){rs, ws, source_id}, NULL,
                   "releasing a lease");
  if (!rc && !source_id)
    rc = run_sql(
        st, "UPDATE workers SET left_at = " NOW_EPOCH ", heartbeat = " NOW_EPOCH " WHERE id = $1",
        1, (const char *[]){ws}, NULL, "leaving the run");
  return rc;
}

static int pg_workers_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {
      {"id", 'i'},         {"session", 'i'},       {"host", 't'},
      {"pid", 'i'},        {"started", 'r'},       {"heartbeat", 'r'},
      {"age_s", 'r'},      {"lease_s", 'r'},       {"alive", 'b'},
      {"left", 'b'},       {"leases", 'i'},        {"calls", 'i'},
      {"cache_hits", 'i'}, {"prompt_tokens", 'i'}, {"completion_tokens", 'i'},
      {"cost", 'r'},       {"finished", 'i'}};
  return each_in_run(
      st, run,
      "SELECT w.id, w.session, w.host, w.pid, w.started, w.heartbeat, " NOW_EPOCH
      " - w.heartbeat, w.lease_ms / 1000.0, (w.left_at IS NULL AND w.heartbeat > " NOW_EPOCH
      " - w.lease_ms / 1000.0)::int, (w.left_at IS NOT NULL)::int, (SELECT count(*) FROM sources "
      "s WHERE s.run = w.run AND s.lease_owner = w.id AND NOT s." FINISHED_STATE
      "), w.calls, "
      "w.cache_hits, w.prompt_tokens, w.completion_tokens, w.cost, w.finished FROM workers w "
      "WHERE w.run = $1 ORDER BY w.id",
      NULL, cols, NCOLS(cols), fn, ud);
}

int store_pg_exec(store *st, const char *sql) {
  if (!st || !st->impl || st->ops != &store_pg_ops) return AD_EINVAL;
  return run0(st, sql, "running SQL");
}

const struct store_ops store_pg_ops = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .attach_cache = pg_attach_cache,
    .flush = pg_flush,
    .maybe_flush = pg_maybe_flush,
    .pending = pg_pending,
    .set_batch = pg_set_batch,
    .run_begin = pg_run_begin,
    .run_latest = pg_run_latest,
    .check_run = check_run,
    .source_put = pg_source_put,
    .source_get = pg_source_get,
    .cache_get = pg_cache_get,
    .runs_each = pg_runs_each,
    .sources_each = pg_sources_each,
    .candidates_each = pg_candidates_each,
    .examples_each = pg_examples_each,
    .calls_each = pg_calls_each,
    .events_each = pg_events_each,
    .opt_each = pg_opt_each,
    .analysis_get = pg_analysis_get,
    .source_candidates_each = pg_source_candidates_each,
    .source_calls_each = pg_source_calls_each,
    .stats = pg_stats,
    .worker_join = pg_worker_join,
    .lease_claim = pg_lease_claim,
    .worker_beat = pg_worker_beat,
    .lease_finish = pg_lease_finish,
    .lease_release = pg_lease_release,
    .workers_each = pg_workers_each,
};
