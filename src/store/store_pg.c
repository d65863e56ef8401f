/* store_pg.c - the PostgreSQL backend of the run store (see store.h, docs/store.md).
 *
 * Selected by a "postgres://" or "postgresql://" URL (libpq's connection URI; a schema can be
 * picked with options=-csearch_path%3DNAME). The same tables, keys and semantics as the SQLite
 * backend (store_sqlite.c), its own DDL: `migrations[]` below mirrors SQLite's step by step
 * (append only, each step recorded in schema_migrations). Layout of this file:
 *   schema and migrations      the versioned SQL steps
 *   pending batch              an arena + a queue of (statement, text values)
 *   errors                     SQLSTATE -> AD_E* with actionable text
 *   open / close / flush       the writer lock is a session advisory lock
 *   writes                     *_put: queue rows; run_begin writes at once
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
#include "util/buf.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"
#include "util/timeu.h"

#define APP_ID 1094796372 /* 0x41444154 "ADAT": the advisory lock's first key */
#define STORE_COMMENT "autodata store"
#define DEFAULT_MAX_ROWS 1000
#define DEFAULT_MAX_MS 50
#define MAX_BATCH_BYTES (32u * 1024 * 1024)
#define CHUNK_SIZE (1u << 20)
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

enum {
  W_RUN_STATUS,
  W_SRC_INS,
  W_SRC_STATE,
  W_CAND,
  W_EXAMPLE,
  W_SRC_ACCEPTED,
  W_CALL, /* sent in multi-row chunks, see put_calls() */
  W_CALL_BODY,
  W_EVENT,
  W_OPT_SPLIT,
  W_OPT_VARIANT,
  W_OPT_EVAL,
  W_OPT_ITER,
  W_ANALYSIS,
  W_N
};
static const char *const write_sql[W_N] = {
    [W_RUN_STATUS] = "UPDATE runs SET status = $1 WHERE id = $2",
    [W_SRC_INS] =
        "INSERT INTO sources(run, source_id, title, text_sha256) VALUES ($1, $2, $3, $4) "
        "ON CONFLICT DO NOTHING",
    [W_SRC_STATE] =
        "UPDATE sources SET state = $1, rounds_used = CASE WHEN $2::int < 0 THEN "
        "rounds_used ELSE $2::int END WHERE run = $3 AND source_id = $4",
    [W_CAND] =
        "INSERT INTO candidates(run, source_id, round, idx, verdict, reason, record, created) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (run, source_id, round, idx) DO "
        "UPDATE SET verdict = excluded.verdict, reason = excluded.reason, record = "
        "excluded.record, created = excluded.created",
    [W_EXAMPLE] =
        "INSERT INTO examples(run, example_id, source_id, example, created) "
        "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (run, example_id) DO UPDATE SET source_id = "
        "excluded.source_id, example = excluded.example, created = excluded.created",
    [W_SRC_ACCEPTED] =
        "UPDATE sources SET accepted = (SELECT count(*) FROM examples WHERE "
        "run = $1 AND source_id = $2) WHERE run = $1 AND source_id = $2",
    [W_CALL] = NULL,
    [W_CALL_BODY] = NULL,
    [W_EVENT] = "INSERT INTO events(run, time, level, event) VALUES ($1, $2, $3, $4)",
    [W_OPT_SPLIT] =
        "INSERT INTO opt_splits(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [W_OPT_VARIANT] =
        "INSERT INTO opt_variants(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [W_OPT_EVAL] =
        "INSERT INTO opt_evaluations(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [W_OPT_ITER] =
        "INSERT INTO opt_iterations(optimization, key, record) VALUES ($1, $2, $3) "
        "ON CONFLICT (optimization, key) DO UPDATE SET record = excluded.record",
    [W_ANALYSIS] =
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

/* ======== Pending batch ======== */

struct val {
  const char *s; /* in the arena; NULL = SQL NULL */
  size_t n;
};
struct op {
  int stmt;
  int nv;
  size_t v0;
  int cacheable;
  char key[33];
  size_t reply_v;
};
struct chunk {
  struct chunk *next;
  size_t used, cap;
  char data[];
};

struct pg {
  PGconn *c;
  int ro;
  struct op *ops;
  size_t n_ops, cap_ops;
  struct val *vals;
  size_t n_vals, cap_vals;
  struct chunk *chunks;
  size_t batch_bytes;
  int64_t last_commit_ms;
  int max_rows, max_ms;
  store_id max_run;
  int calls_one_by_one; /* after a multi-row INSERT hit a row that cannot be written */
  store *cache_from;    /* --cache-from, read-only, any backend */
};

#define PG(st) ((struct pg *)(st)->impl)

static char *arena_alloc(struct pg *q, size_t n) {
  struct chunk *c = q->chunks;
  if (!c || c->cap - c->used < n) {
    size_t cap = n > CHUNK_SIZE ? n : CHUNK_SIZE;
    struct chunk *nc = xmalloc(sizeof *nc + cap);
    nc->next = c;
    nc->used = 0;
    nc->cap = cap;
    q->chunks = nc;
    c = nc;
  }
  char *p = c->data + c->used;
  c->used += (n + 7) & ~(size_t)7;
  if (c->used > c->cap) c->used = c->cap;
  q->batch_bytes += n;
  return p;
}

static void arena_reset(struct pg *q) {
  struct chunk *keep = NULL, *c = q->chunks;
  while (c) {
    struct chunk *next = c->next;
    if (!keep && c->cap == CHUNK_SIZE) {
      keep = c;
      keep->next = NULL;
      keep->used = 0;
    } else {
      free(c);
    }
    c = next;
  }
  q->chunks = keep;
  q->batch_bytes = 0;
}

static void queue_reset(struct pg *q) {
  q->n_ops = 0;
  q->n_vals = 0;
  arena_reset(q);
}

static struct op *op_begin(struct pg *q, int stmt) {
  if (q->n_ops == q->cap_ops) {
    q->cap_ops = q->cap_ops ? q->cap_ops * 2 : 256;
    q->ops = xrealloc(q->ops, q->cap_ops * sizeof *q->ops);
  }
  struct op *o = &q->ops[q->n_ops++];
  memset(o, 0, sizeof *o);
  o->stmt = stmt;
  o->v0 = q->n_vals;
  return o;
}

static struct val *val_push(struct pg *q) {
  if (q->n_vals == q->cap_vals) {
    q->cap_vals = q->cap_vals ? q->cap_vals * 2 : 2048;
    q->vals = xrealloc(q->vals, q->cap_vals * sizeof *q->vals);
  }
  struct val *v = &q->vals[q->n_vals++];
  q->ops[q->n_ops - 1].nv++;
  v->s = NULL;
  v->n = 0;
  return v;
}

static void v_copy(struct pg *q, struct val *v, const char *s, size_t n) {
  char *p = arena_alloc(q, n + 1);
  memcpy(p, s, n);
  p[n] = 0;
  v->s = p;
  v->n = n;
}

static void v_int(struct pg *q, int64_t i) {
  char b[32];
  int n = snprintf(b, sizeof b, "%lld", (long long)i);
  v_copy(q, val_push(q), b, (size_t)n);
}

static void v_real(struct pg *q, double d) {
  char b[40];
  int n = snprintf(b, sizeof b, "%.17g", d);
  v_copy(q, val_push(q), b, (size_t)n);
}

/* Text value (copied, secrets scrubbed, made valid UTF-8 without NUL); NULL = SQL NULL. */
static void v_textn(struct pg *q, const char *s, size_t n) {
  struct val *v = val_push(q);
  if (!s) return;
  if (!n) n = strlen(s);
  size_t sn;
  char *clean = secret_scrub(s, n, &sn);
  if (clean) {
    s = clean;
    n = sn;
  }
  int prob = jx_text_check(s, n, NULL);
  if (prob == JX_TEXT_NUL || prob == JX_TEXT_BAD_UTF8) {
    json_t *j = jx_string_lossy(s, n); /* U+FFFD for each bad byte */
    v_copy(q, v, json_string_value(j), json_string_length(j));
    json_decref(j);
  } else {
    v_copy(q, v, s, n);
  }
  free(clean);
}
static void v_text(struct pg *q, const char *s) { v_textn(q, s, 0); }

static int v_json(struct pg *q, const json_t *j) {
  if (!j) {
    v_textn(q, NULL, 0);
    return 0;
  }
  char *s = jx_dump_canonical(j);
  if (!s) return AD_EINVAL;
  v_textn(q, s, strlen(s));
  free(s);
  return 0;
}

static void queue_truncate(struct pg *q, size_t n_ops) {
  if (n_ops >= q->n_ops) return;
  q->n_vals = q->ops[n_ops].v0;
  q->n_ops = n_ops;
}

static void drop_ops(struct pg *q, size_t i, size_t n) {
  size_t v0 = q->ops[i].v0, nv = 0;
  for (size_t k = i; k < i + n; k++) nv += (size_t)q->ops[k].nv;
  memmove(&q->vals[v0], &q->vals[v0 + nv], (q->n_vals - v0 - nv) * sizeof *q->vals);
  q->n_vals -= nv;
  memmove(&q->ops[i], &q->ops[i + n], (q->n_ops - i - n) * sizeof *q->ops);
  q->n_ops -= n;
  for (size_t k = i; k < q->n_ops; k++) {
    q->ops[k].v0 -= nv;
    if (q->ops[k].cacheable) q->ops[k].reply_v -= nv;
  }
}

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
static int run_sql(store *st, const char *sql, int n, const char *const *params, PGresult **out,
                   const char *doing) {
  PGresult *r = PQexecParams(PG(st)->c, sql, n, NULL, params, NULL, NULL, 0);
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
  PQreset(c);
  return PQstatus(c) == CONNECTION_OK ? 0 : pg_err(st, NULL, "reconnecting");
}

/* ======== Open / close / flush ======== */

static void pg_free(struct pg *q) {
  if (q->c) PQfinish(q->c);
  store_close(q->cache_from);
  queue_reset(q);
  free(q->chunks);
  free(q->ops);
  free(q->vals);
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
  q->max_rows = DEFAULT_MAX_ROWS;
  q->max_ms = DEFAULT_MAX_MS;
  q->last_commit_ms = time_now_ms();
  st->impl = q;
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
  return rc;
}

/* A parameter list for op o. */
static void op_params(const struct pg *q, const struct op *o, const char **p) {
  for (int j = 0; j < o->nv; j++) p[j] = q->vals[o->v0 + (size_t)j].s;
}

/* Drop call op i (and its body) after it was refused. */
static void drop_call(struct pg *q, size_t i) {
  size_t n = (i + 1 < q->n_ops && q->ops[i + 1].stmt == W_CALL_BODY) ? 2 : 1;
  drop_ops(q, i, n);
}

/* One COPY text-format field: \N for NULL, else the text with backslash, tab, newline and
 * carriage return escaped. 0 or the buffer's error. */
static int copy_field(struct buf *b, const char *s, int first) {
  int rc = first ? 0 : buf_putc(b, '\t');
  if (!s) return rc ? rc : buf_puts(b, "\\N");
  const char *run = s;
  for (const char *p = s; !rc && *p; p++) {
    const char *esc = *p == '\\'   ? "\\\\"
                      : *p == '\t' ? "\\t"
                      : *p == '\n' ? "\\n"
                      : *p == '\r' ? "\\r"
                                   : NULL;
    if (!esc) continue;
    rc = buf_append(b, run, (size_t)(p - run));
    if (!rc) rc = buf_puts(b, esc);
    run = p + 1;
  }
  return rc ? rc : buf_puts(b, run);
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
  struct pg *q = PG(st);
  size_t chunk = q->calls_one_by_one ? 1 : CALL_CHUNK;
  size_t *idx = xmalloc((q->n_ops + 1) * sizeof *idx);
  size_t n = 0;
  for (size_t i = 0; i < q->n_ops; i++)
    if (q->ops[i].stmt == W_CALL) idx[n++] = i;
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
      const struct op *o = &q->ops[i];
      const char *id = PQgetvalue(r, (int)j, 0);
      berr = copy_field(&rows, id, 1);
      for (int v = 0; v < o->nv && !berr; v++)
        berr = copy_field(&rows, q->vals[o->v0 + (size_t)v].s, 0);
      if (!berr) berr = buf_putc(&rows, '\n');
      if (berr || i + 1 >= q->n_ops || q->ops[i + 1].stmt != W_CALL_BODY) continue;
      const struct op *b = &q->ops[i + 1];
      berr = copy_field(&bodies, id, 1);
      if (!berr) berr = copy_field(&bodies, q->vals[b->v0].s, 0);
      if (!berr) berr = copy_field(&bodies, q->vals[b->v0 + 1].s, 0);
      if (!berr) berr = buf_putc(&bodies, '\n');
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

static int pg_flush(store *st) {
  struct pg *q = PG(st);
  if (q->ro || !q->n_ops) {
    q->last_commit_ms = time_now_ms();
    return 0;
  }
  int rc = ensure_conn(st);
  if (rc || (rc = run0(st, "BEGIN", "starting a transaction"))) return rc;
  const char *p[16];
  size_t bad = (size_t)-1;
  int in_calls = 0;
  for (size_t i = 0; i < q->n_ops && !rc; i++) {
    const struct op *o = &q->ops[i];
    if (o->stmt == W_CALL || o->stmt == W_CALL_BODY) continue;
    op_params(q, o, p);
    if ((rc = run_sql(st, write_sql[o->stmt], o->nv, p, NULL, "saving a batch of records")))
      bad = i;
  }
  if (!rc) {
    in_calls = 1;
    rc = put_calls(st, &bad);
  }
  if (!rc) rc = run0(st, "COMMIT", "committing a batch of records");
  if (rc) {
    rollback(st);
    const char *state = NULL;
    (void)state;
    if (rc == AD_EINTERNAL && bad != (size_t)-1) {
      if (in_calls && !q->calls_one_by_one) {
        /* some row of a multi-row INSERT: find it one row at a time */
        q->calls_one_by_one = 1;
        return pg_flush(st);
      }
      char m[sizeof st->errmsg];
      snprintf(m, sizeof m, "%s", st->errmsg);
      if (in_calls) drop_call(q, bad);
      else drop_ops(q, bad, 1);
      store_seterr(st, AD_EINTERNAL, "%s (the row was dropped)", m);
    }
    return rc;
  }
  q->calls_one_by_one = 0;
  queue_reset(q);
  q->last_commit_ms = time_now_ms();
  return 0;
}

static int pg_maybe_flush(store *st, int64_t now_ms) {
  struct pg *q = PG(st);
  if (!q->n_ops) return 0;
  if (q->n_ops >= (size_t)q->max_rows || q->batch_bytes >= MAX_BATCH_BYTES ||
      now_ms - q->last_commit_ms >= q->max_ms)
    return pg_flush(st);
  return 0;
}

static size_t pg_pending(const store *st) { return PG(st)->n_ops; }

static void pg_set_batch(store *st, int max_rows, int max_ms) {
  struct pg *q = PG(st);
  q->max_rows = max_rows > 0 ? max_rows : DEFAULT_MAX_ROWS;
  q->max_ms = max_ms > 0 ? max_ms : DEFAULT_MAX_MS;
}

static int pg_close(store *st) {
  struct pg *q = PG(st);
  int rc = q->ro ? 0 : pg_flush(st);
  pg_free(q);
  st->impl = NULL;
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

static int queued(store *st, size_t mark, int rc) {
  if (rc) {
    queue_truncate(PG(st), mark);
    return store_seterr(st, rc, "store %s: %s while queueing a record", store_path(st),
                        ad_strerror(rc));
  }
  return 0;
}

static int pg_run_set_status(store *st, store_id run, const char *status) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  op_begin(q, W_RUN_STATUS);
  v_text(q, status);
  v_int(q, run);
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
  op_begin(q, W_SRC_INS);
  v_int(q, run);
  v_text(q, source_id);
  v_text(q, title);
  v_text(q, text_sha256);
  return 0;
}

static void q_src_state(struct pg *q, store_id run, const char *source_id,
                        enum store_source_state state, int rounds_used) {
  op_begin(q, W_SRC_STATE);
  v_text(q, store_source_state_name(state));
  v_int(q, rounds_used);
  v_int(q, run);
  v_text(q, source_id);
}

static int pg_source_set_state(store *st, store_id run, const char *source_id,
                               enum store_source_state state, int rounds_used) {
  int rc = check_run(st, run);
  if (rc) return rc;
  q_src_state(PG(st), run, source_id, state, rounds_used);
  return 0;
}

static int q_cand(struct pg *q, store_id run, const char *source_id, int round, int index,
                  const char *verdict, const char *reason, const json_t *record) {
  op_begin(q, W_CAND);
  v_int(q, run);
  v_text(q, source_id);
  v_int(q, round);
  v_int(q, index);
  v_text(q, verdict);
  v_text(q, reason);
  int rc = v_json(q, record);
  if (!rc) v_real(q, time_wall());
  return rc;
}

static int q_example(struct pg *q, store_id run, const char *source_id, const char *example_id,
                     const json_t *example) {
  op_begin(q, W_EXAMPLE);
  v_int(q, run);
  v_text(q, example_id);
  v_text(q, source_id);
  int rc = v_json(q, example);
  if (rc) return rc;
  v_real(q, time_wall());
  op_begin(q, W_SRC_ACCEPTED);
  v_int(q, run);
  v_text(q, source_id);
  return 0;
}

static int pg_candidate_put(store *st, store_id run, const char *source_id, int round, int index,
                            const char *verdict, const char *reason, const json_t *record) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  size_t mark = q->n_ops;
  return queued(st, mark, q_cand(q, run, source_id, round, index, verdict, reason, record));
}

static int pg_example_put(store *st, store_id run, const char *source_id, const char *example_id,
                          const json_t *example) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  size_t mark = q->n_ops;
  return queued(st, mark, q_example(q, run, source_id, example_id, example));
}

static int pg_episode_finish(store *st, store_id run, const struct store_episode_end *e) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  size_t mark = q->n_ops;
  if (e->cand_record)
    rc = q_cand(q, run, e->source_id, e->round, e->index, e->verdict, e->reason, e->cand_record);
  if (!rc && e->example) rc = q_example(q, run, e->source_id, e->example_id, e->example);
  if (!rc) q_src_state(q, run, e->source_id, e->state, e->rounds_used);
  return queued(st, mark, rc);
}

static json_t *attempts_json(const struct store_call *c) {
  json_t *a = json_array();
  for (int i = 0; i < c->n_attempt_list; i++) {
    const struct store_attempt *t = &c->attempt_list[i];
    json_t *o = json_pack("{s:i, s:i, s:I}", "n", t->number, "http_status", t->http_status,
                          "latency_us", (json_int_t)t->latency_us);
    if (t->error) json_object_set_new(o, "error", jx_string_lossy(t->error, strlen(t->error)));
    if (t->retry_after_ms)
      json_object_set_new(o, "retry_after_ms", json_integer((json_int_t)t->retry_after_ms));
    json_array_append_new(a, o);
  }
  return a;
}

static int pg_call_put(store *st, const struct store_call *c) {
  struct pg *q = PG(st);
  int rc = check_run(st, c->run);
  if (rc) return rc;
  size_t mark = q->n_ops;
  op_begin(q, W_CALL);
  int ok = !c->error;
  v_int(q, c->run);
  v_text(q, c->role);
  v_text(q, c->source_id);
  v_int(q, c->round);
  v_text(q, c->endpoint);
  v_text(q, c->model);
  v_text(q, c->cache_key);
  v_text(q, ok ? "ok" : "error");
  v_text(q, c->error);
  v_int(q, c->http_status);
  v_int(q, c->prompt_tokens);
  v_int(q, c->completion_tokens);
  v_int(q, c->latency_us);
  v_int(q, c->attempts);
  v_int(q, c->retries);
  v_int(q, c->cache_hit ? 1 : 0);
  json_t *a = c->n_attempt_list ? attempts_json(c) : NULL;
  rc = v_json(q, a);
  json_decref(a);
  if (rc) return queued(st, mark, rc);
  v_real(q, time_wall());
  v_text(q, c->finish_reason);
  v_int(q, c->prefix_tokens);
  if (c->request || c->reply) {
    struct op *o = op_begin(q, W_CALL_BODY);
    if (c->cache_key && ok && !c->cache_hit && c->reply) {
      o->cacheable = 1;
      memcpy(o->key, c->cache_key, 33);
      o->reply_v = q->n_vals + 1;
    }
    v_textn(q, c->request, c->request_len);
    v_textn(q, c->reply, c->reply_len);
  }
  return 0;
}

static int pg_cache_get(store *st, const char *key, char **reply, size_t *len) {
  struct pg *q = PG(st);
  for (size_t i = q->n_ops; i-- > 0;) {
    const struct op *o = &q->ops[i];
    if (o->cacheable && !memcmp(o->key, key, 32)) {
      const struct val *v = &q->vals[o->reply_v];
      *reply = xstrndup(v->s, v->n);
      if (len) *len = v->n;
      return 0;
    }
  }
  PGresult *r;
  int rc = run_sql(st, CACHE_SQL, 1, (const char *[]){key}, &r, "reading the cache");
  if (rc) return rc;
  if (PQntuples(r)) {
    size_t n = (size_t)PQgetlength(r, 0, 0);
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

static const char *level_name(enum log_level l) {
  switch (l) {
  case LOG_ERROR: return "error";
  case LOG_WARN: return "warn";
  case LOG_INFO: return "info";
  default: return "debug";
  }
}

static int pg_event_put(store *st, store_id run, enum log_level level, const json_t *event) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  size_t mark = q->n_ops;
  op_begin(q, W_EVENT);
  v_int(q, run);
  v_real(q, time_wall());
  v_text(q, level_name(level));
  return queued(st, mark, v_json(q, event));
}

static int pg_opt_put(store *st, enum store_opt_table t, const char *optimization, const char *key,
                      const json_t *record) {
  struct pg *q = PG(st);
  size_t mark = q->n_ops;
  op_begin(q, W_OPT_SPLIT + (int)t);
  v_text(q, optimization);
  v_text(q, key);
  return queued(st, mark, v_json(q, record));
}

static int pg_analysis_put(store *st, store_id run, const json_t *analysis) {
  struct pg *q = PG(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  size_t mark = q->n_ops;
  op_begin(q, W_ANALYSIS);
  v_int(q, run);
  rc = v_json(q, analysis);
  v_real(q, time_wall());
  return queued(st, mark, rc);
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
  return (!q->ro && q->n_ops) ? pg_flush(st) : 0;
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

/* ---- aggregates (the same object as the SQLite backend's, see store.h) ---- */

static int set_int(json_t *o, const char *k, int64_t v) {
  return json_object_set_new(o, k, json_integer((json_int_t)v)) ? AD_EINVAL : 0;
}
static int64_t geti(const PGresult *r, int row, int col) {
  return PQgetisnull(r, row, col) ? 0 : strtoll(PQgetvalue(r, row, col), NULL, 10);
}
static const char *gets(const PGresult *r, int row, int col, const char *dflt) {
  return PQgetisnull(r, row, col) ? dflt : PQgetvalue(r, row, col);
}

typedef int (*agg_fn)(const PGresult *r, int row, json_t *acc);
static int agg(store *st, store_id run, const char *sql, agg_fn cb, json_t *acc) {
  char rs[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  PGresult *r;
  int rc = run_sql(st, sql, 1, (const char *[]){rs}, &r, "computing statistics");
  if (rc) return rc;
  for (int i = 0; i < PQntuples(r) && !rc; i++)
    if (cb(r, i, acc))
      rc = store_seterr(st, AD_EINVAL,
                        "store %s: computing statistics: a value JSON cannot carry "
                        "(a name that is not UTF-8, or a cost that is not finite)",
                        store_path(st));
  PQclear(r);
  return rc;
}

static int agg_sources(const PGresult *r, int i, json_t *o) {
  int64_t n = geti(r, i, 1);
  json_t *tot = json_object_get(o, "total");
  int rc = set_int(o, gets(r, i, 0, "unknown"), n);
  return rc ? rc : set_int(o, "total", json_integer_value(tot) + n);
}

static int agg_pairs(const PGresult *r, int i, json_t *o) {
  return set_int(o, gets(r, i, 0, "unknown"), geti(r, i, 1));
}

static int add_int(json_t *o, const char *k, int64_t n) {
  return set_int(o, k, json_integer_value(json_object_get(o, k)) + n);
}

static int agg_calls(const PGresult *r, int i, json_t *calls) {
  const char *role = gets(r, i, 0, "unknown");
  const char *status = gets(r, i, 1, "unknown");
  int hit = geti(r, i, 2) != 0;
  int64_t n = geti(r, i, 3);
  json_t *by = json_object_get(calls, "by_role");
  json_t *o = json_object_get(by, role);
  if (!o) {
    o = json_pack("{s:i, s:i, s:i}", "ok", 0, "error", 0, "cache_hits", 0);
    if (json_object_set_new(by, role, o)) return AD_EINVAL;
  }
  const char *k = hit ? "cache_hits" : (!strcmp(status, "ok") ? "ok" : "error");
  int rc = add_int(o, k, n) | add_int(calls, k, n) | add_int(calls, "total", n);
  rc |= add_int(calls, "attempts", geti(r, i, 4)) | add_int(calls, "retries", geti(r, i, 5));
  return rc ? AD_EINVAL : 0;
}

static int agg_tokens(const PGresult *r, int i, json_t *acc) {
  json_t *tokens = json_object_get(acc, "tokens");
  json_t *by = json_object_get(tokens, "by_model");
  const char *model = gets(r, i, 0, "unknown");
  int64_t p = geti(r, i, 1), c = geti(r, i, 2);
  json_t *m = json_pack("{s:I, s:I, s:I}", "prompt", (json_int_t)p, "completion", (json_int_t)c,
                        "calls", (json_int_t)geti(r, i, 3));
  if (json_object_set_new(by, model, m)) return AD_EINVAL;
  int rc = add_int(tokens, "prompt", p) | add_int(tokens, "completion", c);
  json_t *price = json_object_get(json_object_get(acc, "prices"), model);
  if (json_is_object(price)) {
    double cost = (double)p / 1e6 * jx_num(price, "prompt_per_mtok", 0) +
                  (double)c / 1e6 * jx_num(price, "completion_per_mtok", 0);
    rc |= json_object_set_new(m, "cost_usd", json_real(cost));
    rc |= json_object_set_new(acc, "cost_usd", json_real(jx_num(acc, "cost_usd", 0) + cost));
  } else if (p || c) {
    json_t *un = json_object_get(acc, "unpriced");
    if (un) rc |= json_array_append_new(un, json_string(model));
  }
  return rc ? AD_EINVAL : 0;
}

static int agg_role_tokens(const PGresult *r, int i, json_t *acc) {
  json_t *o = json_object_get(json_object_get(acc, "by_role"), gets(r, i, 0, "unknown"));
  if (!o) return 0;
  int64_t p = geti(r, i, 2), c = geti(r, i, 3);
  int rc = add_int(o, "prompt", p) | add_int(o, "completion", c);
  json_t *price = json_object_get(json_object_get(acc, "prices"), gets(r, i, 1, "unknown"));
  if (json_is_object(price)) {
    double cost = jx_num(o, "cost_usd", 0) + (double)p / 1e6 * jx_num(price, "prompt_per_mtok", 0) +
                  (double)c / 1e6 * jx_num(price, "completion_per_mtok", 0);
    rc |= json_object_set_new(o, "cost_usd", json_real(cost));
  }
  return rc ? AD_EINVAL : 0;
}

struct capture {
  json_t *row;
};
static int capture_row(void *ud, const json_t *row) {
  ((struct capture *)ud)->row = json_deep_copy(row);
  return 0;
}

static int run_int(store *st, store_id run, const char *sql, int64_t *out) {
  char rs[24];
  snprintf(rs, sizeof rs, "%lld", (long long)run);
  return sql_int(st, sql, 1, (const char *[]){rs}, out, "computing statistics");
}

static int pg_stats(store *st, store_id run, json_t **out) {
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  json_t *res = json_object(), *sources = NULL, *rej = NULL, *calls = NULL, *acc = NULL;
  struct capture cap = {NULL};
  if ((rc = each(st, RUN_SELECT " WHERE id = $1", run, NULL, run_cols, NCOLS(run_cols), capture_row,
                 &cap)))
    goto cleanup;
  if (!cap.row) {
    rc = store_seterr(st, AD_ENOTFOUND, "store %s has no run %lld", store_path(st), (long long)run);
    goto cleanup;
  }
  json_object_set_new(res, "run", cap.row);
  sources = json_pack("{s:i, s:i, s:i, s:i, s:i}", "total", 0, "pending", 0, "in_progress", 0,
                      "done", 0, "exhausted", 0);
  rej = json_object();
  calls = json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:{}}", "total", 0, "ok", 0, "error", 0,
                    "cache_hits", 0, "attempts", 0, "retries", 0, "by_role");
  acc = json_pack("{s:{s:i, s:i, s:{}}, s:[]}", "tokens", "prompt", 0, "completion", 0, "by_model",
                  "unpriced");
  json_t *prices = json_object_get(json_object_get(cap.row, "info"), "prices");
  if (prices) json_object_set(acc, "prices", prices);
  int64_t n = 0;
  if ((rc = agg(st, run,
                "SELECT state, count(*) FROM sources WHERE run = $1 GROUP BY state "
                "ORDER BY state COLLATE \"C\"",
                agg_sources, sources)))
    goto cleanup;
  json_object_set(res, "sources", sources);
  if ((rc = run_int(st, run, "SELECT count(*) FROM examples WHERE run = $1", &n))) goto cleanup;
  set_int(res, "accepted", n);
  if ((rc = run_int(st, run, "SELECT count(*) FROM candidates WHERE run = $1", &n))) goto cleanup;
  set_int(res, "candidates", n);
  if ((rc = agg(st, run,
                "SELECT coalesce(reason, 'unspecified'), count(*) FROM candidates WHERE "
                "run = $1 AND verdict = 'rejected' GROUP BY 1 "
                "ORDER BY 2 DESC, coalesce(reason, 'unspecified') COLLATE \"C\"",
                agg_pairs, rej)))
    goto cleanup;
  json_object_set(res, "rejections", rej);
  if ((rc = agg(st, run,
                "SELECT role, status, cache_hit, count(*), coalesce(sum(attempts), 0), "
                "coalesce(sum(retries), 0) FROM calls WHERE run = $1 "
                "GROUP BY role, status, cache_hit "
                "ORDER BY role COLLATE \"C\", status COLLATE \"C\", cache_hit",
                agg_calls, calls)))
    goto cleanup;
  json_object_set(res, "calls", calls);
  json_object_set(acc, "by_role", json_object_get(calls, "by_role"));
  if ((rc = agg(st, run,
                "SELECT role, model, coalesce(sum(prompt_tokens), 0), "
                "coalesce(sum(completion_tokens), 0) FROM calls WHERE run = $1 AND cache_hit = 0 "
                "GROUP BY role, model ORDER BY role COLLATE \"C\", model COLLATE \"C\"",
                agg_role_tokens, acc)) ||
      (rc = agg(st, run,
                "SELECT model, coalesce(sum(prompt_tokens), 0), "
                "coalesce(sum(completion_tokens), 0), count(*) FROM calls "
                "WHERE run = $1 AND cache_hit = 0 GROUP BY model ORDER BY model COLLATE \"C\"",
                agg_tokens, acc)))
    goto cleanup;
  json_object_set(res, "tokens", json_object_get(acc, "tokens"));
  if ((rc = run_int(st, run,
                    "SELECT coalesce(sum(prefix_tokens), 0) FROM calls WHERE run = $1 AND "
                    "cache_hit = 0",
                    &n)))
    goto cleanup;
  set_int(json_object_get(res, "tokens"), "prefix", n);
  if (json_object_get(acc, "cost_usd")) {
    json_object_set(res, "cost_usd", json_object_get(acc, "cost_usd"));
    if (json_array_size(json_object_get(acc, "unpriced")))
      json_object_set(res, "unpriced_models", json_object_get(acc, "unpriced"));
  }
  {
    char rs[24];
    snprintf(rs, sizeof rs, "%lld", (long long)run);
    PGresult *r;
    if ((rc = run_sql(st, "SELECT max(created) - min(created) FROM calls WHERE run = $1", 1,
                      (const char *[]){rs}, &r, "computing statistics")))
      goto cleanup;
    if (PQntuples(r) && !PQgetisnull(r, 0, 0))
      json_object_set_new(res, "wall_s", json_real(strtod(PQgetvalue(r, 0, 0), NULL)));
    PQclear(r);
  }
  int64_t cnt = 0;
  if ((rc = run_int(st, run,
                    "SELECT count(*) FROM calls WHERE run = $1 AND status = 'ok' AND "
                    "cache_hit = 0",
                    &cnt)))
    goto cleanup;
  if (cnt > 0) {
    int64_t mean = 0, p50 = 0, p95 = 0;
    char sql[256];
    if ((rc = run_int(st, run,
                      "SELECT trunc(avg(latency_us))::bigint FROM calls WHERE run = $1 AND "
                      "status = 'ok' AND cache_hit = 0",
                      &mean)))
      goto cleanup;
    snprintf(sql, sizeof sql,
             "SELECT latency_us FROM calls WHERE run = $1 AND status = 'ok' AND cache_hit = 0 "
             "ORDER BY latency_us LIMIT 1 OFFSET %lld",
             (long long)((cnt - 1) / 2));
    if ((rc = run_int(st, run, sql, &p50))) goto cleanup;
    snprintf(sql, sizeof sql,
             "SELECT latency_us FROM calls WHERE run = $1 AND status = 'ok' AND cache_hit = 0 "
             "ORDER BY latency_us LIMIT 1 OFFSET %lld",
             (long long)((cnt - 1) * 95 / 100));
    if ((rc = run_int(st, run, sql, &p95))) goto cleanup;
    json_object_set_new(res, "latency_ms",
                        json_pack("{s:f, s:f, s:f}", "mean", (double)mean / 1000.0, "p50",
                                  (double)p50 / 1000.0, "p95", (double)p95 / 1000.0));
  }
  *out = res;
  res = NULL;
cleanup:
  json_decref(sources);
  json_decref(rej);
  json_decref(calls);
  json_decref(acc);
  json_decref(res);
  return rc;
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

/* The episode's end rows go through the queue's own statements (pg_episode_finish queues
 * them on the empty queue), sent here inside the transaction that holds the source's row. */
static int pg_lease_finish(store *st, store_id run, int64_t worker,
                           const struct store_episode_end *e) {
  struct pg *q = PG(st);
  int rc = pg_flush(st); /* the episode's calls and earlier rounds first */
  if (rc) return rc;
  char rs[24], ws[24];
  id_text(rs, run);
  id_text(ws, worker);
  int64_t owner = 0;
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
  if ((rc = pg_episode_finish(st, run, e))) goto done;
  const char *p[16];
  for (size_t i = 0; i < q->n_ops && !rc; i++) {
    op_params(q, &q->ops[i], p);
    rc = run_sql(st, write_sql[q->ops[i].stmt], q->ops[i].nv, p, NULL, "finishing a source");
  }
  if (!rc)
    rc = run_sql(st,
                 "UPDATE sources SET lease_owner = NULL, lease_until = NULL WHERE run = $1 AND "
                 "source_id = $2",
                 2, (const char *[]){rs, e->source_id}, NULL, "ending a lease");
  if (!rc) rc = run0(st, "COMMIT", "committing a finished source");
done:
  if (rc) rollback(st);
  queue_reset(q);
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
    .run_set_status = pg_run_set_status,
    .run_latest = pg_run_latest,
    .source_put = pg_source_put,
    .source_set_state = pg_source_set_state,
    .source_get = pg_source_get,
    .candidate_put = pg_candidate_put,
    .example_put = pg_example_put,
    .episode_finish = pg_episode_finish,
    .call_put = pg_call_put,
    .cache_get = pg_cache_get,
    .event_put = pg_event_put,
    .runs_each = pg_runs_each,
    .sources_each = pg_sources_each,
    .candidates_each = pg_candidates_each,
    .examples_each = pg_examples_each,
    .calls_each = pg_calls_each,
    .events_each = pg_events_each,
    .opt_put = pg_opt_put,
    .opt_each = pg_opt_each,
    .analysis_put = pg_analysis_put,
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
