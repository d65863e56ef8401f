/* store_sqlite.c - the SQLite backend of the run store (see store.h).
 *
 * Layout of this file:
 *   schema and migrations      the versioned SQL steps
 *   pending batch              the queued rows (store/wqueue.h) bound to statements
 *   errors                     SQLite result codes -> AD_E* with actionable text
 *   lock                       "<path>.lock", an OFD write lock holding our pid
 *   open / close / flush
 *   writes                     *_put: queue rows (store/wqueue.c); run_begin writes at once
 *   reads                      iterators and aggregates
 *
 * Why a queue rather than an open transaction: when a COMMIT fails (disk full),
 * SQLite may roll the whole transaction back by itself. Keeping the rows in
 * memory until a COMMIT succeeds lets a later flush retry them, and guarantees
 * that a batch is either entirely in the file or not at all. One writer
 * connection, prepared statements reused, WAL, synchronous=NORMAL.
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include "store/bodyref.h"
#include "store/store_impl.h"
#include "store/wqueue.h"
#include "util/buf.h"
#include "util/hash.h"
#include "util/jsonx.h"
#include "util/mem.h"
#include "util/secret.h"
#include "util/timeu.h"

#define APP_ID 0x41444154           /* "ADAT" in PRAGMA application_id */
#define WAL_CHECKPOINT_PAGES "1024" /* x 16 KiB pages = 16 MiB */
#define WAL_SIZE_LIMIT "16777216"

/* ======== Schema and migrations ======== */

/* Step i (0-based) brings the schema from version i to i+1. Append only: never
 * edit a released step; add a new one (ALTER TABLE / CREATE INDEX ...). */
static const char *const migrations[] = {
    /* 1: the initial schema */
    "CREATE TABLE schema_migrations(version INTEGER PRIMARY KEY, applied REAL NOT NULL);"
    "CREATE TABLE runs("
    "  id INTEGER PRIMARY KEY,"
    "  recipe_name TEXT, recipe_sha256 TEXT NOT NULL, prompt_hashes TEXT NOT NULL,"
    "  seed INTEGER NOT NULL, version TEXT, command_line TEXT,"
    "  created REAL NOT NULL, status TEXT NOT NULL, info TEXT);"
    "CREATE TABLE sources("
    "  run INTEGER NOT NULL REFERENCES runs(id), source_id TEXT NOT NULL, title TEXT,"
    "  text_sha256 TEXT, state TEXT NOT NULL DEFAULT 'pending',"
    "  accepted INTEGER NOT NULL DEFAULT 0, rounds_used INTEGER NOT NULL DEFAULT 0,"
    "  PRIMARY KEY(run, source_id));"
    "CREATE TABLE candidates("
    "  run INTEGER NOT NULL REFERENCES runs(id), source_id TEXT NOT NULL,"
    "  round INTEGER NOT NULL, idx INTEGER NOT NULL, verdict TEXT NOT NULL, reason TEXT,"
    "  record TEXT, created REAL NOT NULL,"
    "  PRIMARY KEY(run, source_id, round, idx));"
    "CREATE INDEX candidates_verdict ON candidates(run, verdict, reason);"
    "CREATE TABLE examples("
    "  run INTEGER NOT NULL REFERENCES runs(id), example_id TEXT NOT NULL,"
    "  source_id TEXT NOT NULL, example TEXT NOT NULL, created REAL NOT NULL,"
    "  PRIMARY KEY(run, example_id));"
    "CREATE INDEX examples_source ON examples(run, source_id);"
    "CREATE TABLE calls("
    "  id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id),"
    "  role TEXT NOT NULL, source_id TEXT, round INTEGER, endpoint TEXT, model TEXT,"
    "  cache_key TEXT, status TEXT NOT NULL, error TEXT,"
    "  http_status INTEGER, prompt_tokens INTEGER, completion_tokens INTEGER,"
    "  latency_us INTEGER, attempts INTEGER, retries INTEGER,"
    "  cache_hit INTEGER NOT NULL DEFAULT 0, attempt_list TEXT, created REAL NOT NULL);"
    "CREATE INDEX calls_cache ON calls(cache_key) WHERE status = 'ok' AND cache_hit = 0;"
    "CREATE INDEX calls_run_role ON calls(run, role);"
    /* bodies apart, so scans of calls (status, stats) do not read megabytes of text */
    "CREATE TABLE call_bodies("
    "  call_id INTEGER PRIMARY KEY REFERENCES calls(id), request TEXT, reply TEXT);"
    "CREATE TABLE events("
    "  id INTEGER PRIMARY KEY, run INTEGER NOT NULL REFERENCES runs(id),"
    "  time REAL NOT NULL, level TEXT NOT NULL, event TEXT NOT NULL);"
    "CREATE INDEX events_run ON events(run);",
    /* 2: why the server stopped a reply ("stop", "length", ...), NULL when not said */
    "ALTER TABLE calls ADD COLUMN finish_reason TEXT;",
    /* prompt tokens repeating the start of an earlier request (store/prefix.h) */
    "ALTER TABLE calls ADD COLUMN prefix_tokens INTEGER;",
    /* optimize: `autodata optimize` (docs/optimize.md); one row per (optimization, key),
     * the record as JSON: the split of each source, the harness variants, their
     * evaluations and the iterations */
    "CREATE TABLE IF NOT EXISTS opt_splits(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));"
    "CREATE TABLE IF NOT EXISTS opt_variants(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));"
    "CREATE TABLE IF NOT EXISTS opt_evaluations(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));"
    "CREATE TABLE IF NOT EXISTS opt_iterations(optimization TEXT NOT NULL, key TEXT NOT NULL,"
    "  record TEXT NOT NULL, PRIMARY KEY(optimization, key));",
    /* the dataset-level analysis of a run (docs/analyze.md): the latest one per run, as JSON */
    "CREATE TABLE IF NOT EXISTS analyses(run INTEGER NOT NULL PRIMARY KEY REFERENCES runs(id),"
    "  analysis TEXT NOT NULL, created REAL NOT NULL);",
    /* one source's calls (`autodata show`, the report's trajectories) without a scan of
     * the run's calls */
    "CREATE INDEX IF NOT EXISTS calls_run_source ON calls(run, source_id);",
    /* the compact store (store/bodyref.h): a source's call bodies are compressed against its
     * reference, whose generations are body_refs rows; ref NULL: a body written before */
    "CREATE TABLE IF NOT EXISTS body_refs(id INTEGER PRIMARY KEY, base INTEGER, data BLOB NOT NULL);"
    "ALTER TABLE call_bodies ADD COLUMN ref INTEGER;",
    /* fast status: the calls' aggregates, kept by a trigger (and filled from the calls already
     * there), and an index for the latency percentiles */
    "CREATE TABLE IF NOT EXISTS call_agg(run INTEGER NOT NULL, role TEXT NOT NULL,"
    "  model TEXT NOT NULL, model_null INTEGER NOT NULL, status TEXT NOT NULL,"
    "  cache_hit INTEGER NOT NULL, n INTEGER NOT NULL, attempts INTEGER NOT NULL,"
    "  retries INTEGER NOT NULL, prompt INTEGER NOT NULL, completion INTEGER NOT NULL,"
    "  prefix INTEGER NOT NULL, lat_n INTEGER NOT NULL, lat_sum INTEGER NOT NULL,"
    "  first REAL, last REAL,"
    "  PRIMARY KEY(run, role, model, model_null, status, cache_hit));"
    "INSERT INTO call_agg SELECT run, role, coalesce(model, ''), model IS NULL, status, cache_hit,"
    "  count(*), coalesce(sum(attempts), 0), coalesce(sum(retries), 0),"
    "  coalesce(sum(prompt_tokens), 0), coalesce(sum(completion_tokens), 0),"
    "  coalesce(sum(prefix_tokens), 0), count(latency_us), coalesce(sum(latency_us), 0),"
    "  min(created), max(created) FROM calls GROUP BY 1, 2, 3, 4, 5, 6;"
    "CREATE TRIGGER IF NOT EXISTS calls_agg AFTER INSERT ON calls BEGIN"
    "  INSERT INTO call_agg VALUES(NEW.run, NEW.role, coalesce(NEW.model, ''), NEW.model IS NULL,"
    "    NEW.status, NEW.cache_hit, 1, coalesce(NEW.attempts, 0), coalesce(NEW.retries, 0),"
    "    coalesce(NEW.prompt_tokens, 0), coalesce(NEW.completion_tokens, 0),"
    "    coalesce(NEW.prefix_tokens, 0), NEW.latency_us IS NOT NULL,"
    "    coalesce(NEW.latency_us, 0), NEW.created, NEW.created)"
    "  ON CONFLICT DO UPDATE SET n = n + 1, attempts = attempts + excluded.attempts,"
    "    retries = retries + excluded.retries, prompt = prompt + excluded.prompt,"
    "    completion = completion + excluded.completion, prefix = prefix + excluded.prefix,"
    "    lat_n = lat_n + excluded.lat_n, lat_sum = lat_sum + excluded.lat_sum,"
    "    first = min(first, excluded.first), last = max(last, excluded.last);"
    "END;"
    "CREATE INDEX IF NOT EXISTS calls_latency ON calls(run, status, cache_hit, latency_us);",
    /* compact records and call rows (docs/store.md): a candidate's record and an example are
     * compressed against their source's reference (ref, as call bodies are); rows written from
     * here on hold cache keys as 16-byte BLOBs and a lone attempt as its latency (rows before
     * stay as they were and read the same); the index on calls(run, role), which no query
     * needs, is dropped and the latency index narrowed to the rows status reads */
    "ALTER TABLE candidates ADD COLUMN ref INTEGER;"
    "ALTER TABLE examples ADD COLUMN ref INTEGER;"
    "DROP INDEX IF EXISTS calls_run_role;"
    "DROP INDEX IF EXISTS calls_latency;"
    "CREATE INDEX IF NOT EXISTS calls_ok_latency ON calls(run, latency_us)"
    "  WHERE status = 'ok' AND cache_hit = 0;",
};
#define SCHEMA_VERSION ((int)(sizeof migrations / sizeof *migrations))

/* Write statements: one per queued kind (store/wqueue.h), then the flush's own. */
enum { W_BODY_REF = WQ_N, W_N };
static const char *const write_sql[W_N] = {
    [WQ_RUN_STATUS] = "UPDATE runs SET status = ?1 WHERE id = ?2",
    [WQ_SRC_INS] =
        "INSERT OR IGNORE INTO sources(run, source_id, title, text_sha256) "
        "VALUES (?1, ?2, ?3, ?4)",
    [WQ_SRC_STATE] =
        "UPDATE sources SET state = ?1, rounds_used = CASE WHEN ?2 < 0 THEN "
        "rounds_used ELSE ?2 END WHERE run = ?3 AND source_id = ?4",
    [WQ_CAND] =
        "INSERT OR REPLACE INTO candidates(run, source_id, round, idx, verdict, "
        "reason, record, created, ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    [WQ_EXAMPLE] =
        "INSERT OR REPLACE INTO examples(run, example_id, source_id, example, "
        "created, ref) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    [WQ_SRC_ACCEPTED] =
        "UPDATE sources SET accepted = (SELECT count(*) FROM examples WHERE "
        "run = ?1 AND source_id = ?2) WHERE run = ?1 AND source_id = ?2",
    [WQ_CALL] =
        "INSERT INTO calls(run, role, source_id, round, endpoint, model, cache_key, "
        "status, error, http_status, prompt_tokens, completion_tokens, latency_us, "
        "attempts, retries, cache_hit, attempt_list, created, finish_reason, prefix_tokens) "
        "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, "
        "?19, ?20)",
    /* always queued after its WQ_CALL (and its W_BODY_REFs), in the same transaction: the
     * call is the newest row of calls */
    [WQ_CALL_BODY] =
        "INSERT INTO call_bodies(call_id, request, reply, ref) "
        "VALUES ((SELECT max(id) FROM calls), ?1, ?2, ?3)",
    [W_BODY_REF] = "INSERT INTO body_refs(id, base, data) VALUES (?1, ?2, ?3)",
    [WQ_EVENT] = "INSERT INTO events(run, time, level, event) VALUES (?1, ?2, ?3, ?4)",
    [WQ_OPT_SPLIT] =
        "INSERT OR REPLACE INTO opt_splits(optimization, key, record) VALUES (?1, ?2, ?3)",
    [WQ_OPT_VARIANT] =
        "INSERT OR REPLACE INTO opt_variants(optimization, key, record) VALUES (?1, ?2, ?3)",
    [WQ_OPT_EVAL] =
        "INSERT OR REPLACE INTO opt_evaluations(optimization, key, record) VALUES (?1, ?2, ?3)",
    [WQ_OPT_ITER] =
        "INSERT OR REPLACE INTO opt_iterations(optimization, key, record) VALUES (?1, ?2, ?3)",
    [WQ_ANALYSIS] = "INSERT OR REPLACE INTO analyses(run, analysis, created) VALUES (?1, ?2, ?3)",
};

/* Call bodies (request and reply) of BODY_ZSTD_MIN bytes or more are stored as
 * zstd frames in BLOB columns; shorter ones, and every row written before this
 * existed, as TEXT. Readers tell them apart by the column's type, so no schema
 * change was needed. Prompts repeat the source text in several requests, so this
 * cuts a store to about a fifth. */
#define BODY_ZSTD_MIN 1024
#define BODY_ZSTD_LEVEL 3
#define BODY_MAX ((size_t)256 * 1024 * 1024) /* refuse to inflate past this */

#define CACHE_SQL(ref)                                                     \
  "SELECT b.reply, " ref                                                   \
  " FROM calls c JOIN call_bodies b ON b.call_id = c.id "                  \
  "WHERE c.cache_key IN (?1, ?2) AND c.status = 'ok' AND c.cache_hit = 0 " \
  "AND b.reply IS NOT NULL LIMIT 1"

/* 1 when db's call_bodies has the compact store's ref column (a store not yet migrated, opened
 * read-only, has not). */
static int db_has_refs(sqlite3 *db) {
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(db, "SELECT 1 FROM pragma_table_info('call_bodies') WHERE name = 'ref'",
                         -1, &s, NULL))
    return 0;
  int yes = sqlite3_step(s) == SQLITE_ROW;
  sqlite3_finalize(s);
  return yes;
}

/* Prepare the cache lookup for db. */
static int prepare_cache(sqlite3 *db, sqlite3_stmt **out) {
  return sqlite3_prepare_v3(db, db_has_refs(db) ? CACHE_SQL("b.ref") : CACHE_SQL("NULL"), -1,
                            SQLITE_PREPARE_PERSISTENT, out, NULL);
}

/* ======== Pending batch ======== */

struct sq {
  sqlite3 *db;
  int ro;
  int lock_fd;
  sqlite3_stmt *w[W_N];
  sqlite3_stmt *cache_stmt;
  sqlite3 *cache_db; /* --cache-from, read-only */
  sqlite3_stmt *cache_db_stmt;
  char *cache_path;
  struct wqueue wq;          /* the pending batch */
  store_id max_run;          /* highest run id in the file */
  ZSTD_CCtx *zc;             /* body compression, created on first use */
  int has_refs;              /* call_bodies has its ref column (the compact store's migration) */
  int has_agg;               /* the call_agg table (fast status's migration) */
  struct bodyrefs *refs;     /* the writer's references (store/bodyref.h) */
  struct bodyref_reader *rd; /* the reader's reference contents, by db and id */
  sqlite3_stmt *ref_stmt[2]; /* a generation's row: in db, in cache_db */
  ZSTD_DCtx *dc;
};

#define SQ(st) ((struct sq *)(st)->impl)

/* Bind a call body compressed (BLOB); falls back to TEXT if compression fails (zstd
 * could not make its context, or reports an error). */
static void bind_body_zstd(struct sq *q, sqlite3_stmt *s, int idx, const char *p, size_t n) {
  if (!q->zc) q->zc = ZSTD_createCCtx();
  size_t cap = ZSTD_compressBound(n);
  void *z = q->zc ? xmalloc(cap) : NULL;
  size_t zn = z ? ZSTD_compressCCtx(q->zc, z, cap, p, n, BODY_ZSTD_LEVEL) : 0;
  if (!z || ZSTD_isError(zn)) {
    free(z);
    sqlite3_bind_text64(s, idx, p, n, SQLITE_STATIC, SQLITE_UTF8);
    return;
  }
  sqlite3_bind_blob64(s, idx, z, zn, free); /* SQLite frees it */
}

/* ======== Errors ======== */

static int sq_err(store *st, sqlite3 *db, int src, const char *doing) {
  const char *path = store_path(st);
  const char *m = db ? sqlite3_errmsg(db) : sqlite3_errstr(src);
  switch (src & 0xff) {
  case SQLITE_FULL:
    return store_seterr(st, AD_EFULL,
                        "store %s: disk full while %s (%s). Free space on that disk (or move "
                        "the store) and run the same command again: nothing half-written is "
                        "in the store, and what was saved is resumed",
                        path, doing, m);
  case SQLITE_READONLY:
  case SQLITE_PERM:
  case SQLITE_AUTH:
    return store_seterr(st, AD_EREADONLY,
                        "store %s is read-only (%s while %s). Make the file and its directory "
                        "writable, or give another --store path",
                        path, m, doing);
  case SQLITE_CORRUPT:
  case SQLITE_NOTADB:
    return store_seterr(st, AD_ECORRUPT,
                        "store %s is not an autodata store or is damaged (%s while %s). Check "
                        "the --store path; if it is the right file, move it away and start a "
                        "new store (or restore a backup)",
                        path, m, doing);
  case SQLITE_BUSY:
  case SQLITE_LOCKED:
    return store_seterr(st, AD_EBUSY,
                        "store %s is locked by another process (%s while %s); try again when "
                        "it is done",
                        path, m, doing);
  case SQLITE_CANTOPEN:
    return store_seterr(st, AD_EIO,
                        "cannot open store %s (%s): check that the path is right and its "
                        "directory exists and is accessible",
                        path, m);
  case SQLITE_NOMEM:
    return store_seterr(st, AD_ENOMEM, "store %s: out of memory while %s", path, doing);
  case SQLITE_TOOBIG:
    return store_seterr(st, AD_ETOOBIG, "store %s: a value is too big while %s (%s)", path, doing,
                        m);
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_ERROR: return store_seterr(st, AD_EINTERNAL, "store %s: %s while %s", path, m, doing);
  default:
    return store_seterr(st, AD_EIO,
                        "store %s: I/O error while %s (%s). Check the disk and the file; "
                        "then run the same command again to resume",
                        path, doing, m);
  }
}

/* Errors after which the same batch may succeed later (keep it queued). */
static int transient(int src) {
  switch (src & 0xff) {
  case SQLITE_CONSTRAINT:
  case SQLITE_MISMATCH:
  case SQLITE_RANGE:
  case SQLITE_TOOBIG:
  case SQLITE_ERROR: return 0;
  default: return 1;
  }
}

static int exec(store *st, const char *sql, const char *doing) {
  struct sq *q = SQ(st);
  int rc = sqlite3_exec(q->db, sql, NULL, NULL, NULL);
  return rc == SQLITE_OK ? 0 : sq_err(st, q->db, rc, doing);
}

static void rollback(struct sq *q) {
  if (!sqlite3_get_autocommit(q->db)) sqlite3_exec(q->db, "ROLLBACK", NULL, NULL, NULL);
  bodyrefs_reset(q->refs); /* generations of this batch are gone: the next starts anew */
}

/* ======== Lock ======== */

static int take_lock(store *st, struct sq *q, const char *path) {
  struct buf lp = BUF_INIT;
  int rc = buf_printf(&lp, "%s.lock", path);
  if (rc) return store_seterr(st, rc, "store %s: path too long", path);
  int fd = open(buf_str(&lp), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    int e = errno;
    if (e == EACCES || e == EROFS || e == EPERM)
      rc = store_seterr(st, AD_EREADONLY,
                        "store %s is read-only: cannot create its lock file %s (%s). Make the "
                        "directory writable, or give another --store path",
                        path, buf_str(&lp), strerror(e));
    else
      rc = store_seterr(st, AD_EIO, "cannot open store %s: lock file %s: %s", path, buf_str(&lp),
                        strerror(e));
    buf_release(&lp);
    return rc;
  }
  struct flock fl;
  memset(&fl, 0, sizeof fl);
  fl.l_type = F_WRLCK;
  fl.l_whence = SEEK_SET;
  if (fcntl(fd, F_OFD_SETLK, &fl) < 0) {
    int e = errno;
    if (e == EAGAIN || e == EACCES) {
      char pid[32] = "";
      ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
      long holder = n > 0 ? strtol(pid, NULL, 10) : 0;
      if (holder > 0)
        rc = store_seterr(st, AD_EBUSY,
                          "store %s is in use by pid %ld (lock %s): wait for that run to end "
                          "or stop it; `autodata status --store %s` works meanwhile",
                          path, holder, buf_str(&lp), path);
      else
        rc = store_seterr(st, AD_EBUSY, "store %s is in use by another process (lock %s)", path,
                          buf_str(&lp));
    } else {
      rc = store_seterr(st, AD_EIO, "store %s: cannot lock %s: %s", path, buf_str(&lp),
                        strerror(e));
    }
    close(fd);
    buf_release(&lp);
    return rc;
  }
  char pid[32];
  int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
  if (ftruncate(fd, 0) == 0 && pwrite(fd, pid, (size_t)n, 0) == n) {
    /* pid recorded */
  }
  q->lock_fd = fd;
  buf_release(&lp);
  return 0;
}

/* ======== Open / close / flush ======== */

static int pragma_int(sqlite3 *db, const char *sql, int64_t *out) {
  sqlite3_stmt *s = NULL;
  int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);
  if (rc == SQLITE_OK) {
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
      *out = sqlite3_column_int64(s, 0);
      rc = SQLITE_OK;
    } else if (rc == SQLITE_DONE) {
      *out = 0;
      rc = SQLITE_OK;
    }
  }
  sqlite3_finalize(s);
  return rc;
}

/* Check the identity and version of an open database. fresh=1 when it is empty.
 * db is st's main db or another store's (for --cache-from; name its path). */
static int check_schema(store *st, sqlite3 *db, const char *path, int64_t *version, int *fresh) {
  int64_t app = 0, ver = 0, objects = 0;
  int rc;
  if ((rc = pragma_int(db, "PRAGMA application_id", &app)) ||
      (rc = pragma_int(db, "PRAGMA user_version", &ver)) ||
      (rc = pragma_int(db, "SELECT count(*) FROM sqlite_master", &objects))) {
    int code = sq_err(st, db, rc, "reading the schema version");
    if (db != SQ(st)->db) /* name the other store, not ours */
      return store_seterr(st, code, "%s (in --cache-from %s)", store_errmsg(st), path);
    return code;
  }
  *fresh = (ver == 0 && objects == 0 && app == 0);
  *version = ver;
  if (*fresh) return 0;
  if (app != APP_ID || ver == 0)
    return store_seterr(st, AD_ECORRUPT,
                        "%s is a SQLite database but not an autodata store. Check the path, "
                        "or give a new file",
                        path);
  if (ver > SCHEMA_VERSION)
    return store_seterr(st, AD_EMISMATCH,
                        "store %s has schema version %lld, written by a newer autodata; this "
                        "one (schema %d) cannot read it safely. Use a newer autodata",
                        path, (long long)ver, SCHEMA_VERSION);
  return 0;
}

static int migrate(store *st, int64_t from) {
  struct sq *q = SQ(st);
  for (int v = (int)from; v < SCHEMA_VERSION; v++) {
    char sql[256];
    int rc = exec(st, "BEGIN IMMEDIATE", "starting a schema migration");
    if (rc) return rc;
    if ((rc = exec(st, migrations[v], "migrating the schema"))) goto fail;
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations(version, applied) VALUES (%d, %.3f);"
             "PRAGMA user_version = %d; PRAGMA application_id = %d;",
             v + 1, time_wall(), v + 1, APP_ID);
    if ((rc = exec(st, sql, "migrating the schema"))) goto fail;
    if ((rc = exec(st, "COMMIT", "committing a schema migration"))) goto fail;
    continue;
  fail:
    rollback(q);
    return rc;
  }
  return 0;
}

static void sq_free(struct sq *q) {
  for (int i = 0; i < W_N; i++) sqlite3_finalize(q->w[i]);
  sqlite3_finalize(q->cache_stmt);
  sqlite3_finalize(q->cache_db_stmt);
  ZSTD_freeCCtx(q->zc);
  bodyrefs_free(q->refs);
  ZSTD_freeDCtx(q->dc);
  bodyref_reader_free(q->rd);
  sqlite3_finalize(q->ref_stmt[0]);
  sqlite3_finalize(q->ref_stmt[1]);
  if (q->cache_db) sqlite3_close(q->cache_db);
  if (q->db) sqlite3_close(q->db);
  if (q->lock_fd >= 0) close(q->lock_fd);
  wq_release(&q->wq);
  free(q->cache_path);
  free(q);
}

/* 1 when new files can be made next to path (SQLite's -shm and -wal). */
static int dir_writable(const char *path) {
  char *dir = xstrdup(path);
  char *slash = strrchr(dir, '/');
  if (slash) slash[slash == dir] = '\0';
  int ok = access(slash ? dir : ".", W_OK) == 0;
  free(dir);
  return ok;
}

/* Open path read-only as an immutable file (no -shm, no locks); refused when its -wal holds
 * writes that an immutable open would not see. */
static int open_immutable(store *st, struct sq *q, const char *path) {
  char *wal = xasprintf("%s-wal", path);
  struct stat sb;
  int pending = stat(wal, &sb) == 0 && sb.st_size > 0;
  free(wal);
  if (pending)
    return store_seterr(st, AD_EREADONLY,
                        "store %s is on a read-only disk or folder and its last writes are "
                        "still in %s-wal (it was not closed cleanly), which SQLite cannot read "
                        "without write access there. Copy the store with its -wal file to a "
                        "writable folder and open the copy",
                        path, path);
  struct buf uri = BUF_INIT;
  int brc = buf_puts(&uri, "file:");
  for (const char *c = path; !brc && *c; c++) { /* percent-encode what a URI reserves */
    if (*c == '%' || *c == '?' || *c == '#') brc = buf_printf(&uri, "%%%02X", (unsigned char)*c);
    else brc = buf_putc(&uri, *c);
  }
  if (!brc) brc = buf_puts(&uri, "?immutable=1");
  if (brc) {
    buf_release(&uri);
    return store_seterr(st, AD_ETOOBIG, "store path %s is too long", path);
  }
  int src = sqlite3_open_v2(buf_str(&uri), &q->db,
                            SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_URI, NULL);
  buf_release(&uri);
  if (src != SQLITE_OK)
    return store_seterr(st, AD_EREADONLY,
                        "store %s is on a read-only disk or folder and cannot be opened there "
                        "(%s). Copy it to a writable folder and open the copy",
                        path, q->db ? sqlite3_errmsg(q->db) : sqlite3_errstr(src));
  return 0;
}

static int sq_open(store *st, const char *path, int flags) {
  struct sq *q = xcalloc(1, sizeof *q);
  q->lock_fd = -1;
  q->ro = !!(flags & STORE_OPEN_READONLY);
  wq_init(&q->wq, 0);
  int rc = 0, src;
  int64_t version = 0;
  int fresh = 0;
  st->impl = q; /* so helpers can reach the db; undone on failure */
  st->wq = &q->wq;

  if (q->ro) {
    struct stat sb;
    if (stat(path, &sb) != 0) {
      rc = store_seterr(st, AD_ENOTFOUND, "no store at %s (%s)", path, strerror(errno));
      goto fail;
    }
    src = sqlite3_open_v2(path, &q->db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
      rc = sq_err(st, q->db, src, "opening");
      goto fail;
    }
    sqlite3_busy_timeout(q->db, 5000);
    if ((rc = check_schema(st, q->db, path, &version, &fresh)) && !dir_writable(path)) {
      /* A WAL store on a read-only disk (or folder): SQLite cannot make its -shm file
       * there. Read it as immutable when its WAL holds nothing (every store closed
       * cleanly is checkpointed), else say why it cannot be read. */
      sqlite3_close(q->db);
      q->db = NULL;
      if ((rc = open_immutable(st, q, path))) goto fail;
      rc = check_schema(st, q->db, path, &version, &fresh);
    }
    if (rc) goto fail;
    if (fresh) {
      rc = store_seterr(st, AD_ENOTFOUND, "%s is empty: not an autodata store yet", path);
      goto fail;
    }
    if (version < SCHEMA_VERSION) {
      rc = store_seterr(st, AD_EMISMATCH,
                        "store %s has the older schema version %lld; open it once for "
                        "writing (e.g. resume the run) to upgrade it",
                        path, (long long)version);
      goto fail;
    }
  } else {
    if ((rc = take_lock(st, q, path))) goto fail;
    src = sqlite3_open_v2(path, &q->db,
                          SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (src != SQLITE_OK) {
      rc = sq_err(st, q->db, src, "opening");
      goto fail;
    }
    if (sqlite3_db_readonly(q->db, "main") == 1) {
      rc = store_seterr(st, AD_EREADONLY,
                        "store %s is read-only (file permissions or a read-only disk). Make "
                        "it writable, or give another --store path",
                        path);
      goto fail;
    }
    sqlite3_busy_timeout(q->db, 5000);
    sqlite3_extended_result_codes(q->db, 1);
    if ((rc = check_schema(st, q->db, path, &version, &fresh))) goto fail;
    /* Call rows are 2-4 KB: 16 KB pages pack them with little slack (4 KB pages
     * waste about a third). Only effective before the first table exists. */
    if (fresh && (rc = exec(st, "PRAGMA page_size = 16384", "setting the page size"))) goto fail;
    if ((rc = exec(st, "PRAGMA journal_mode = WAL", "switching to WAL")) ||
        (rc = exec(st,
                   "PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;"
                   /* The WAL stays bounded (docs/store.md): a checkpoint after every
                    * commit that leaves it past 16 MiB (1024 pages of 16 KiB), the file cut
                    * back to 16 MiB after it, and truncated to 0 at close. 64 MiB wrote
                    * about 1.5x faster in bench/store, but a run writes far slower than
                    * that and a WAL twice the size of its store surprised users. */
                   "PRAGMA wal_autocheckpoint = " WAL_CHECKPOINT_PAGES "; "
                   "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT,
                   "setting pragmas")))
      goto fail;
    if ((rc = migrate(st, version))) goto fail;
    for (int i = 0; i < W_N; i++) {
      src = sqlite3_prepare_v3(q->db, write_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &q->w[i], NULL);
      if (src != SQLITE_OK) {
        rc = sq_err(st, q->db, src, "preparing statements");
        goto fail;
      }
    }
  }
  q->has_refs = db_has_refs(q->db);
  int64_t agg_tables = 0;
  if ((src = pragma_int(q->db,
                        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND "
                        "name = 'call_agg'",
                        &agg_tables))) {
    rc = sq_err(st, q->db, src, "reading the schema");
    goto fail;
  }
  q->has_agg = agg_tables > 0;
  src = prepare_cache(q->db, &q->cache_stmt);
  if (src != SQLITE_OK) {
    rc = sq_err(st, q->db, src, "preparing statements");
    goto fail;
  }
  if ((src = pragma_int(q->db, "SELECT coalesce(max(id), 0) FROM runs", &q->max_run))) {
    rc = sq_err(st, q->db, src, "reading runs");
    goto fail;
  }
  if (!q->ro && q->has_refs) {
    int64_t max_ref = 0;
    if ((src = pragma_int(q->db, "SELECT coalesce(max(id), 0) FROM body_refs", &max_ref))) {
      rc = sq_err(st, q->db, src, "reading body_refs");
      goto fail;
    }
    q->refs = bodyrefs_new(max_ref + 1);
  }
  return 0;
fail:
  sq_free(q);
  st->impl = NULL;
  st->wq = NULL;
  return rc;
}

/* Write a generation of a reference (before the rows that use it): a SQLite code. */
static int write_gen(struct sq *q, struct bodyref_gen *g) {
  sqlite3_stmt *w = q->w[W_BODY_REF];
  sqlite3_bind_int64(w, 1, g->id);
  if (g->base) sqlite3_bind_int64(w, 2, g->base);
  else sqlite3_bind_null(w, 2);
  sqlite3_bind_blob64(w, 3, g->data, g->n, free); /* SQLite frees it */
  int src = sqlite3_step(w);
  sqlite3_reset(w);
  sqlite3_clear_bindings(w);
  return src == SQLITE_DONE ? SQLITE_OK : src;
}

/* A cache key of 32 lowercase hex digits as its 16 bytes: 1, or 0 when it is not one (it stays
 * text). Keys are stored as BLOBs (half the bytes, in the row and in the cache's index). */
static int key_bytes(const char *s, size_t n, unsigned char out[16]) {
  if (!s || n != 32) return 0;
  for (size_t i = 0; i < 32; i++) {
    int c = (unsigned char)s[i];
    int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (d < 0) return 0;
    if (i % 2) out[i / 2] = (unsigned char)(out[i / 2] | d);
    else out[i / 2] = (unsigned char)(d << 4);
  }
  return 1;
}

/* The attempt list of a call answered at its first attempt, exactly
 * [{"http_status":H,"latency_us":L,"n":1}] with H the call's HTTP status, is stored as L's
 * digits alone (the column is TEXT; a list always starts with '['; col_value() rebuilds it): 1
 * with *lat set when list is that text. */
static int lone_attempt(const struct wq_val *list, const struct wq_val *http, int64_t *lat) {
  if (list->type != WQ_TEXT || http->type != WQ_INT || list->n > 96) return 0;
  char pre[64], want[128];
  int pn = snprintf(pre, sizeof pre, "[{\"http_status\":%lld,\"latency_us\":", (long long)http->i);
  long long l = 0;
  if (pn <= 0 || list->n <= (size_t)pn || memcmp(list->s, pre, (size_t)pn) ||
      sscanf(list->s + pn, "%lld", &l) != 1)
    return 0;
  int wn = snprintf(want, sizeof want, "%s%lld,\"n\":1}]", pre, l);
  if (wn <= 0 || (size_t)wn != list->n || memcmp(want, list->s, list->n)) return 0;
  *lat = l;
  return 1;
}

/* Bind a call row's cache key (?7) as bytes and a lone attempt (?17) as its latency; the bits
 * of the values bound here. */
static uint64_t bind_call_row(struct sq *q, const struct wq_op *o, sqlite3_stmt *s) {
  const struct wq_val *v = &q->wq.vals[o->v0];
  uint64_t done = 0;
  unsigned char key[16];
  int64_t lat;
  if (o->nv >= 17 && v[6].type == WQ_TEXT && key_bytes(v[6].s, v[6].n, key)) {
    sqlite3_bind_blob(s, 7, key, 16, SQLITE_TRANSIENT);
    done |= 1u << 6;
  }
  if (o->nv >= 17 && lone_attempt(&v[16], &v[9], &lat)) {
    char digits[24];
    int n = snprintf(digits, sizeof digits, "%lld", (long long)lat);
    sqlite3_bind_text(s, 17, digits, n, SQLITE_TRANSIENT);
    done |= 1u << 16;
  }
  return done;
}

/* Bind a candidate's record (?7) or an example (?4), canonical JSON, compressed against its
 * source's reference, which the first record of each kind of the source joins (so the run's
 * root holds the records' common text), and the reference (?9 or ?6); a source without a
 * reference: a standalone frame from BODY_ZSTD_MIN bytes, text below. *done: the bits of the
 * values bound here. Returns a SQLite code. */
static int bind_record(struct sq *q, const struct wq_op *o, sqlite3_stmt *s, uint64_t *done) {
  int cand = o->kind == WQ_CAND;
  int p = cand ? 7 : 4, pref = cand ? 9 : 6;
  const struct wq_val *run = &q->wq.vals[o->v0], *source = &q->wq.vals[o->v0 + (cand ? 1 : 2)],
                      *v = &q->wq.vals[o->v0 + (size_t)p - 1];
  sqlite3_bind_null(s, pref);
  if (v->type != WQ_TEXT) return SQLITE_OK;
  if (q->refs && source->type == WQ_TEXT) {
    struct bodyref_gen g;
    if (bodyrefs_grow(q->refs, run->i, source->s, cand ? "record/candidate" : "record/example",
                      v->s, v->n, &g) > 0) {
      int src = write_gen(q, &g);
      if (src != SQLITE_OK) return src;
    }
    void *z = NULL;
    size_t zn = 0;
    int64_t ref = 0;
    if (!bodyrefs_pack(q->refs, run->i, source->s, v->s, v->n, &z, &zn, &ref)) {
      sqlite3_bind_blob64(s, p, z, zn, free); /* SQLite frees it */
      sqlite3_bind_int64(s, pref, ref);
      *done |= 1u << (p - 1);
      return SQLITE_OK;
    }
  }
  if (v->n >= BODY_ZSTD_MIN) {
    bind_body_zstd(q, s, p, v->s, v->n);
    *done |= 1u << (p - 1);
  }
  return SQLITE_OK;
}

/* Bind a call body (op o, its call c) against its source's reference (store/bodyref.h),
 * writing the generations that a new kind of body adds first: *bound = 1. A call without a
 * source, or a store without the ref column, is left to the generic binding (*bound = 0).
 * Returns a SQLite code. */
static int bind_call_body(struct sq *q, const struct wq_op *c, const struct wq_op *o,
                          sqlite3_stmt *s, int *bound) {
  *bound = 0;
  const struct wq_val *run = &q->wq.vals[c->v0], *role = &q->wq.vals[c->v0 + 1],
                      *source = &q->wq.vals[c->v0 + 2], *body = &q->wq.vals[o->v0];
  if (!q->refs || source->type != WQ_TEXT) return SQLITE_OK;
  char kind[2][160];
  struct bodyref_part parts[2];
  const struct wq_val *round = &q->wq.vals[c->v0 + 3];
  for (int i = 0; i < 2; i++) {
    /* a role's first reply of every round joins: later requests of the round quote it (the
     * candidate, the solvers' answers); requests repeat the source and the templates, so a
     * role's first one is enough */
    snprintf(kind[i], sizeof kind[i], "%s/%c/%lld", role->type == WQ_TEXT ? role->s : "",
             i ? 'a' : 'q', i && round->type == WQ_INT ? (long long)round->i : 0LL);
    int text = body[i].type == WQ_TEXT;
    parts[i] = (struct bodyref_part){kind[i], text ? body[i].s : NULL, text ? body[i].n : 0};
  }
  struct bodyref_gen g;
  if (bodyrefs_grow_n(q->refs, run->i, source->s, 2, parts, &g) > 0) {
    int src = write_gen(q, &g);
    if (src != SQLITE_OK) return src;
  }
  void *z[2] = {NULL, NULL};
  size_t zn[2] = {0, 0};
  int64_t ref = 0;
  for (int i = 0; i < 2; i++)
    if (body[i].type == WQ_TEXT &&
        bodyrefs_pack(q->refs, run->i, source->s, body[i].s, body[i].n, &z[i], &zn[i], &ref)) {
      free(z[0]);
      free(z[1]);
      return SQLITE_OK; /* no reference: the generic binding */
    }
  for (int i = 0; i < 2; i++) {
    if (body[i].type == WQ_TEXT) sqlite3_bind_blob64(s, i + 1, z[i], zn[i], free);
    else sqlite3_bind_null(s, i + 1);
  }
  if (ref) sqlite3_bind_int64(s, 3, ref);
  else sqlite3_bind_null(s, 3);
  *bound = 1;
  return SQLITE_OK;
}

/* Bind the values of op i to its statement s: a call body against its source's reference
 * when it has one (bind_call_body), else each value as its type, a call body of
 * BODY_ZSTD_MIN bytes or more compressed alone. Returns a SQLite code. */
static int bind_op(struct sq *q, size_t i, sqlite3_stmt *s) {
  const struct wq_op *o = &q->wq.ops[i];
  int body = o->kind == WQ_CALL_BODY, bound = 0, src;
  uint64_t done = 0; /* values the encoders below bound (compact rows: docs/store.md) */
  if (o->kind == WQ_CALL) done = bind_call_row(q, o, s);
  if ((o->kind == WQ_CAND || o->kind == WQ_EXAMPLE) &&
      (src = bind_record(q, o, s, &done)) != SQLITE_OK)
    return src;
  if (body && i > 0 && q->wq.ops[i - 1].kind == WQ_CALL &&
      (src = bind_call_body(q, &q->wq.ops[i - 1], o, s, &bound)) != SQLITE_OK)
    return src;
  if (bound) return SQLITE_OK;
  for (int j = 0; j < o->nv; j++) {
    if (done >> j & 1) continue;
    const struct wq_val *v = &q->wq.vals[o->v0 + (size_t)j];
    switch (v->type) {
    case WQ_INT: sqlite3_bind_int64(s, j + 1, v->i); break;
    case WQ_REAL: sqlite3_bind_double(s, j + 1, v->d); break;
    case WQ_TEXT:
      if (body && v->n >= BODY_ZSTD_MIN) bind_body_zstd(q, s, j + 1, v->s, v->n);
      else sqlite3_bind_text64(s, j + 1, v->s, v->n, SQLITE_STATIC, SQLITE_UTF8);
      break;
    default: sqlite3_bind_null(s, j + 1); break;
    }
  }
  if (body) sqlite3_bind_null(s, 3); /* no reference */
  return SQLITE_OK;
}

static int sq_flush(store *st) {
  struct sq *q = SQ(st);
  if (q->ro || !q->wq.n_ops) {
    q->wq.last_commit_ms = time_now_ms();
    return 0;
  }
  int src = sqlite3_exec(q->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
  if (src != SQLITE_OK) {
    rollback(q);
    return sq_err(st, q->db, src, "starting a transaction");
  }
  for (size_t i = 0; i < q->wq.n_ops; i++) {
    const struct wq_op *o = &q->wq.ops[i];
    const struct wq_val *v = &q->wq.vals[o->v0];
    sqlite3_stmt *s = q->w[o->kind];
    if ((src = bind_op(q, i, s)) != SQLITE_OK) {
      int rc = sq_err(st, q->db, src, "saving a batch of records");
      sqlite3_clear_bindings(s);
      rollback(q);
      return rc;
    }
    if (o->kind == WQ_SRC_STATE && o->nv == 4 && v[0].type == WQ_TEXT &&
        strcmp(v[0].s, "in_progress")) /* the episode ended */
      bodyrefs_release(q->refs, v[2].i, v[3].s);
    src = sqlite3_step(s);
    sqlite3_reset(s);
    if (src != SQLITE_DONE) {
      int rc = sq_err(st, q->db, src,
                      transient(src) ? "saving a batch of records"
                                     : "saving a record (the row was dropped)");
      sqlite3_clear_bindings(s);
      rollback(q);
      /* A row that can never be written (a bug in the caller or here) is dropped (a call
       * together with its body) so the rest of the batch can still be committed by the
       * next flush. */
      if (!transient(src)) wq_drop_row(&q->wq, i);
      return rc;
    }
  }
  for (int i = 0; i < W_N; i++) sqlite3_clear_bindings(q->w[i]); /* no dangling STATIC text */
  src = sqlite3_exec(q->db, "COMMIT", NULL, NULL, NULL);
  if (src != SQLITE_OK) {
    int rc = sq_err(st, q->db, src, "committing a batch of records");
    rollback(q);
    return rc;
  }
  wq_committed(&q->wq);
  return 0;
}

static int sq_maybe_flush(store *st, int64_t now_ms) {
  return wq_due(&SQ(st)->wq, now_ms) ? sq_flush(st) : 0;
}

static size_t sq_pending(const store *st) { return SQ(st)->wq.n_ops; }

static void sq_set_batch(store *st, int max_rows, int max_ms) {
  wq_set_batch(&SQ(st)->wq, max_rows, max_ms);
}

static int sq_close(store *st) {
  struct sq *q = SQ(st);
  int rc = q->ro ? 0 : sq_flush(st);
  /* Everything back into the main file and the WAL cut to 0 bytes: a closed store is one
   * file (copyable alone, readable on read-only media). Busy readers just leave it for the
   * next writer; nothing is lost either way. */
  if (!q->ro && q->db)
    (void)sqlite3_exec(q->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
  sq_free(q);
  st->impl = NULL;
  st->wq = NULL;
  return rc;
}

/* Percent-free read-only open of another store for cache hits. */
static int sq_attach_cache(store *st, const char *other) {
  struct sq *q = SQ(st);
  if (q->cache_db) {
    sqlite3_finalize(q->cache_db_stmt);
    sqlite3_finalize(q->ref_stmt[1]);
    q->ref_stmt[1] = NULL;
    bodyref_reader_forget(q->rd, q->cache_db);
    sqlite3_close(q->cache_db);
    q->cache_db = NULL;
    q->cache_db_stmt = NULL;
  }
  struct stat sb;
  if (stat(other, &sb) != 0)
    return store_seterr(st, AD_ENOTFOUND, "--cache-from %s: no such store (%s)", other,
                        strerror(errno));
  sqlite3 *db = NULL;
  int src = sqlite3_open_v2(other, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX, NULL);
  int rc = 0;
  int64_t version;
  int fresh;
  if (src != SQLITE_OK) {
    rc = sq_err(st, db, src, "opening the --cache-from store");
    goto fail;
  }
  sqlite3_busy_timeout(db, 5000);
  if ((rc = check_schema(st, db, other, &version, &fresh))) goto fail;
  if (fresh) {
    rc = store_seterr(st, AD_ECORRUPT, "--cache-from %s is empty, not an autodata store", other);
    goto fail;
  }
  src = prepare_cache(db, &q->cache_db_stmt);
  if (src != SQLITE_OK) {
    rc = sq_err(st, db, src, "reading the --cache-from store");
    goto fail;
  }
  q->cache_db = db;
  return 0;
fail:
  if (db) sqlite3_close(db);
  return rc;
}

/* ======== Writes ======== */

static int check_run(store *st, store_id run) {
  if (run > SQ(st)->max_run)
    return store_seterr(st, AD_EINVAL, "store %s: no run %lld (start one with store_run_begin)",
                        store_path(st), (long long)run);
  return 0;
}

static int sq_run_begin(store *st, const struct store_run_info *info, int new_run, store_id *run,
                        int *resumed) {
  struct sq *q = SQ(st);
  int rc = sq_flush(st);
  if (rc) return rc;
  *resumed = 0;
  sqlite3_stmt *s = NULL;
  struct buf diff = BUF_INIT;
  char *prompts = NULL, *infotext = NULL, *cmdline = NULL;
  json_t *infoj = NULL;
  int src = sqlite3_prepare_v2(q->db,
                               "SELECT id, recipe_sha256, prompt_hashes, seed FROM runs "
                               "ORDER BY id DESC LIMIT 1",
                               -1, &s, NULL);
  if (src != SQLITE_OK) {
    rc = sq_err(st, q->db, src, "reading runs");
    goto cleanup;
  }
  src = sqlite3_step(s);
  if (src == SQLITE_ROW && !new_run) {
    store_id id = sqlite3_column_int64(s, 0);
    if ((rc = store_run_diff(&diff, (const char *)sqlite3_column_text(s, 1),
                             (const char *)sqlite3_column_text(s, 2), sqlite3_column_int64(s, 3),
                             info))) {
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
    sqlite3_finalize(s);
    s = NULL;
    char sql[128];
    snprintf(sql, sizeof sql, "UPDATE runs SET status = 'running' WHERE id = %lld", (long long)id);
    if ((rc = exec(st, sql, "resuming the run"))) goto cleanup;
    *run = id;
    *resumed = 1;
    goto cleanup;
  } else if (src != SQLITE_ROW && src != SQLITE_DONE) {
    rc = sq_err(st, q->db, src, "reading runs");
    goto cleanup;
  }
  sqlite3_finalize(s);
  s = NULL;

  /* a new run */
  prompts = info->prompt_hashes ? jx_dump_canonical(info->prompt_hashes) : xstrdup("{}");
  infoj = json_object();
  if (info->prices) json_object_set(infoj, "prices", (json_t *)info->prices);
  if (info->extra) json_object_set(infoj, "extra", (json_t *)info->extra);
  infotext = jx_dump_canonical(infoj);
  if (infotext) secret_scrub_inplace(infotext); /* the effective configuration, no secrets */
  cmdline = info->command_line ? xstrdup(info->command_line) : NULL;
  secret_scrub_inplace(cmdline);
  src = sqlite3_prepare_v2(q->db,
                           "INSERT INTO runs(recipe_name, recipe_sha256, prompt_hashes, seed, "
                           "version, command_line, created, status, info) "
                           "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'running', ?8)",
                           -1, &s, NULL);
  if (src != SQLITE_OK) {
    rc = sq_err(st, q->db, src, "creating a run");
    goto cleanup;
  }
  sqlite3_bind_text(s, 1, info->recipe_name, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 2, info->recipe_sha256, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 3, prompts, -1, SQLITE_STATIC);
  sqlite3_bind_int64(s, 4, (sqlite3_int64)info->seed);
  sqlite3_bind_text(s, 5, info->version, -1, SQLITE_STATIC);
  sqlite3_bind_text(s, 6, cmdline, -1, SQLITE_STATIC);
  sqlite3_bind_double(s, 7, time_wall());
  sqlite3_bind_text(s, 8, infotext, -1, SQLITE_STATIC);
  if ((rc = exec(st, "BEGIN IMMEDIATE", "creating a run"))) goto cleanup;
  src = sqlite3_step(s);
  if (src != SQLITE_DONE) {
    rc = sq_err(st, q->db, src, "creating a run");
    rollback(q);
    goto cleanup;
  }
  *run = sqlite3_last_insert_rowid(q->db);
  if ((rc = exec(st, "COMMIT", "creating a run"))) {
    rollback(q);
    goto cleanup;
  }
  q->max_run = *run;
cleanup:
  sqlite3_finalize(s);
  buf_release(&diff);
  free(prompts);
  free(infotext);
  free(cmdline);
  json_decref(infoj);
  return rc;
}

static int sq_run_latest(store *st, store_id *run) {
  struct sq *q = SQ(st);
  int64_t id = 0;
  int src = pragma_int(q->db, "SELECT coalesce(max(id), 0) FROM runs", &id);
  if (src) return sq_err(st, q->db, src, "reading runs");
  if (id > q->max_run) q->max_run = id;
  if (!id) return store_seterr(st, AD_ENOTFOUND, "store %s holds no run yet", store_path(st));
  *run = id;
  return 0;
}

static int sq_source_put(store *st, store_id run, const char *source_id, const char *title,
                         const char *text_sha256) {
  struct sq *q = SQ(st);
  int rc = check_run(st, run);
  if (rc) return rc;
  sqlite3_stmt *s = NULL;
  int src = sqlite3_prepare_v2(
      q->db, "SELECT text_sha256 FROM sources WHERE run = ?1 AND source_id = ?2", -1, &s, NULL);
  if (src == SQLITE_OK) {
    sqlite3_bind_int64(s, 1, run);
    sqlite3_bind_text(s, 2, source_id, -1, SQLITE_STATIC);
    src = sqlite3_step(s);
  }
  if (src == SQLITE_ROW) {
    const char *old = (const char *)sqlite3_column_text(s, 0);
    if (old && text_sha256 && strcmp(old, text_sha256)) {
      char a[16], c[16];
      store_short_hash(a, old);
      store_short_hash(c, text_sha256);
      rc = store_seterr(st, AD_EMISMATCH,
                        "store %s: source '%s' changed since the run started (sha256 %s -> "
                        "%s); resume with the same corpus or start a new run",
                        store_path(st), source_id, a, c);
    }
    sqlite3_finalize(s);
    return rc; /* already registered */
  }
  if (src != SQLITE_DONE) {
    rc = sq_err(st, q->db, src, "reading sources");
    sqlite3_finalize(s);
    return rc;
  }
  sqlite3_finalize(s);
  return wq_source(&q->wq, run, source_id, title, text_sha256);
}

/* bodyref_fetch_fn over a prepared "SELECT base, data FROM body_refs WHERE id = ?1". */
static int fetch_gen(void *ud, int64_t id, int64_t *base, const void **z, size_t *zn) {
  sqlite3_stmt *s = ud;
  sqlite3_reset(s);
  sqlite3_bind_int64(s, 1, id);
  if (sqlite3_step(s) != SQLITE_ROW) return AD_ENOTFOUND;
  *base = sqlite3_column_int64(s, 0);
  *z = sqlite3_column_blob(s, 1);
  *zn = (size_t)sqlite3_column_bytes(s, 1);
  return 0;
}

/* The content of reference id (store/bodyref.h) in db (q's or its --cache-from), borrowed from
 * the reader (valid until the next call); NULL when it is missing or damaged. */
static const char *ref_content(struct sq *q, sqlite3 *db, int64_t id, size_t *len) {
  sqlite3_stmt **ps = &q->ref_stmt[db == q->cache_db];
  if (!*ps && sqlite3_prepare_v3(db, "SELECT base, data FROM body_refs WHERE id = ?1", -1,
                                 SQLITE_PREPARE_PERSISTENT, ps, NULL))
    return NULL;
  if (!q->rd) q->rd = bodyref_reader_new();
  const char *c = bodyref_reader_content(q->rd, db, id, fetch_gen, *ps, len);
  sqlite3_reset(*ps); /* hold no read snapshot */
  return c;
}

/* A body column as a malloc'd NUL-terminated string (TEXT as is, BLOB inflated, against
 * the reference in column ref_col when that is not NULL; ref_col < 0: none).
 * NULL for SQL NULL, a damaged frame, or SQLite out of memory converting the text. */
static char *column_body(struct sq *q, sqlite3 *db, sqlite3_stmt *s, int i, int ref_col,
                         size_t *len) {
  int type = sqlite3_column_type(s, i);
  if (type == SQLITE_NULL) return NULL;
  if (type != SQLITE_BLOB) {
    const char *p = (const char *)sqlite3_column_text(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    if (!p) return NULL;
    if (len) *len = n;
    return xstrndup(p, n);
  }
  const char *dict = NULL;
  size_t dn = 0;
  if (ref_col >= 0 && sqlite3_column_type(s, ref_col) != SQLITE_NULL &&
      !(dict = ref_content(q, db, sqlite3_column_int64(s, ref_col), &dn)))
    return NULL;
  if (!q->dc && !(q->dc = ZSTD_createDCtx())) return NULL;
  return bodyref_inflate(q->dc, sqlite3_column_blob(s, i), (size_t)sqlite3_column_bytes(s, i), dict,
                         dn, BODY_MAX, len);
}

static int cache_query(store *st, sqlite3 *db, sqlite3_stmt *s, const char *key, char **reply,
                       size_t *len) {
  unsigned char kb[16];
  sqlite3_bind_text(s, 1, key, 32, SQLITE_STATIC); /* a row written before keys were bytes */
  if (key_bytes(key, strlen(key), kb)) sqlite3_bind_blob(s, 2, kb, 16, SQLITE_TRANSIENT);
  int src = sqlite3_step(s);
  int rc = AD_ENOTFOUND;
  if (src == SQLITE_ROW) {
    size_t n = 0;
    char *body = column_body(SQ(st), db, s, 0, 1, &n);
    if (body) {
      *reply = body;
      if (len) *len = n;
      rc = 0;
    } else {
      rc = sqlite3_column_type(s, 0) == SQLITE_BLOB
               ? store_seterr(st, AD_ECORRUPT,
                              "store %s: a cached reply is damaged (its zstd frame does not "
                              "inflate); move the store away to start afresh",
                              store_path(st))
               : AD_ENOTFOUND;
    }
  } else if (src != SQLITE_DONE) {
    rc = sq_err(st, db, src, "reading the cache");
  }
  sqlite3_reset(s);
  sqlite3_clear_bindings(s);
  return rc;
}

static int sq_cache_get(store *st, const char *key, char **reply, size_t *len) {
  struct sq *q = SQ(st);
  size_t n;
  const char *pending = wq_cached(&q->wq, key, &n);
  if (pending) {
    *reply = xstrndup(pending, n);
    if (len) *len = n;
    return 0;
  }
  int rc = cache_query(st, q->db, q->cache_stmt, key, reply, len);
  if (rc == AD_ENOTFOUND && q->cache_db)
    rc = cache_query(st, q->cache_db, q->cache_db_stmt, key, reply, len);
  if (rc == AD_ENOTFOUND) store_seterr(st, rc, "no cached reply for key %s", key);
  return rc;
}

/* ======== Reads ======== */

/* Column kinds for row objects: 'i' integer, 'r' real, 't' text (NULL -> null),
 * 'j' JSON text parsed (unparsable -> the text as a string; a BLOB: a compressed record),
 * 'b' boolean, 'k' a cache key (a BLOB: its bytes, given as hex), 'A' a call's attempt list
 * ('j'; a number: a lone attempt's latency, lone_attempt(), with the HTTP status in column
 * CALL_COL_HTTP). */
struct col {
  const char *name;
  char kind;
};

#define CALL_COL_HTTP 9 /* http_status in call_cols */

/* ref_col: the column of a body's reference (-1: none). */
static json_t *col_value(struct sq *q, sqlite3_stmt *s, int i, char kind, int ref_col) {
  int type = sqlite3_column_type(s, i);
  if (type == SQLITE_NULL) return json_null();
  if (type == SQLITE_BLOB && kind == 'k' && sqlite3_column_bytes(s, i) == 16) {
    const unsigned char *b = sqlite3_column_blob(s, i);
    static const char digits[] = "0123456789abcdef";
    char hex[33];
    for (int k = 0; k < 16; k++) {
      hex[2 * k] = digits[b[k] >> 4];
      hex[2 * k + 1] = digits[b[k] & 15];
    }
    hex[32] = 0;
    return json_string(hex);
  }
  if (kind == 'A' && type != SQLITE_BLOB) {
    const char *p = (const char *)sqlite3_column_text(s, i);
    if (p && *p != '[') /* a lone attempt's latency */
      return json_pack("[{s:i, s:I, s:i}]", "http_status", sqlite3_column_int(s, CALL_COL_HTTP),
                       "latency_us", (json_int_t)strtoll(p, NULL, 10), "n", 1);
  }
  if (type == SQLITE_BLOB) { /* a compressed call body or record */
    size_t n = 0;
    char *body = column_body(q, sqlite3_db_handle(s), s, i, ref_col, &n);
    json_t *v = body && kind == 'j' ? json_loadb(body, n, JSON_DECODE_ANY, NULL) : NULL;
    if (!v) v = body ? jx_string_lossy(body, n) : json_null();
    free(body);
    return v;
  }
  switch (kind) {
  case 'i': return json_integer((json_int_t)sqlite3_column_int64(s, i));
  case 'r': return json_real(sqlite3_column_double(s, i));
  case 'b': return json_boolean(sqlite3_column_int64(s, i) != 0);
  case 'A':
  case 'j': {
    const char *p = (const char *)sqlite3_column_text(s, i);
    size_t n = (size_t)sqlite3_column_bytes(s, i);
    json_t *v = json_loadb(p, n, JSON_DECODE_ANY, NULL);
    return v ? v : jx_string_lossy(p, n);
  }
  default: {
    const char *p = (const char *)sqlite3_column_text(s, i);
    return jx_string_lossy(p ? p : "", (size_t)sqlite3_column_bytes(s, i));
  }
  }
}

/* The row as an object; NULL when a column holds a value JSON cannot carry (an
 * infinite real: jansson's json_real() refuses it). */
static json_t *row_obj(struct sq *q, sqlite3_stmt *s, const struct col *cols, int n) {
  json_t *o = json_object();
  int ref_col = sqlite3_column_count(s) > n ? n : -1; /* a column past cols: bodies' reference */
  for (int i = 0; i < n; i++) {
    json_t *v = col_value(q, s, i, cols[i].kind, ref_col);
    if (!v || json_object_set_new(o, cols[i].name, v)) {
      json_decref(o);
      return NULL;
    }
  }
  return o;
}

/* Writable handles flush before reading so reads see every put. */
static int pre_read(store *st) {
  struct sq *q = SQ(st);
  return (!q->ro && q->wq.n_ops) ? sq_flush(st) : 0;
}

static int resolve_run(store *st, store_id *run) {
  int rc = pre_read(st);
  if (rc) return rc;
  if (*run > 0) return 0;
  return sq_run_latest(st, run);
}

/* Prepare sql, bind run (if > 0) as ?1 and text1 (if any) as ?2. */
static int prep(store *st, const char *sql, store_id run, const char *text1, sqlite3_stmt **out) {
  struct sq *q = SQ(st);
  int src = sqlite3_prepare_v2(q->db, sql, -1, out, NULL);
  if (src != SQLITE_OK) return sq_err(st, q->db, src, "reading");
  if (run > 0) sqlite3_bind_int64(*out, 1, run);
  if (text1) sqlite3_bind_text(*out, 2, text1, -1, SQLITE_TRANSIENT);
  return 0;
}

static int each(store *st, sqlite3_stmt *s, const struct col *cols, int n, store_row_fn fn,
                void *ud) {
  struct sq *q = SQ(st);
  int rc = 0, src;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    json_t *row = row_obj(q, s, cols, n);
    if (!row) {
      rc = store_seterr(st, AD_ECORRUPT, "store %s: a row holds a value that JSON cannot represent",
                        store_path(st));
      break;
    }
    rc = fn(ud, row);
    json_decref(row);
    if (rc) break;
  }
  if (!rc && src != SQLITE_DONE) rc = sq_err(st, q->db, src, "reading");
  sqlite3_finalize(s);
  return rc;
}

#define NCOLS(a) ((int)(sizeof(a) / sizeof *(a)))

/* each() over sql for run (0 = the latest), with text1 (if any) bound as ?2. */
static int each_in_run(store *st, store_id run, const char *sql, const char *text1,
                       const struct col *cols, int n, store_row_fn fn, void *ud) {
  sqlite3_stmt *s;
  int rc = resolve_run(st, &run);
  if (rc || (rc = prep(st, sql, run, text1, &s))) return rc;
  return each(st, s, cols, n, fn, ud);
}

static const struct col run_cols[] = {
    {"id", 'i'},     {"recipe_name", 't'}, {"recipe_sha256", 't'}, {"prompt_hashes", 'j'},
    {"seed", 'i'},   {"version", 't'},     {"command_line", 't'},  {"created", 'r'},
    {"status", 't'}, {"info", 'j'}};
#define RUN_SELECT                                                                      \
  "SELECT id, recipe_name, recipe_sha256, prompt_hashes, seed, version, command_line, " \
  "created, status, info FROM runs"

static int sq_runs_each(store *st, store_row_fn fn, void *ud) {
  sqlite3_stmt *s;
  int rc = pre_read(st);
  if (rc || (rc = prep(st, RUN_SELECT " ORDER BY id", 0, NULL, &s))) return rc;
  return each(st, s, run_cols, NCOLS(run_cols), fn, ud);
}

static int sq_sources_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {{"source_id", 't'}, {"title", 't'},    {"text_sha256", 't'},
                                    {"state", 't'},     {"accepted", 'i'}, {"rounds_used", 'i'}};
  return each_in_run(st, run,
                     "SELECT source_id, title, text_sha256, state, accepted, rounds_used "
                     "FROM sources WHERE run = ?1 ORDER BY rowid",
                     NULL, cols, NCOLS(cols), fn, ud);
}

static int sq_source_get(store *st, store_id run, const char *source_id, struct store_source *out) {
  struct sq *q = SQ(st);
  sqlite3_stmt *s;
  int rc = resolve_run(st, &run);
  if (rc || (rc = prep(st,
                       "SELECT source_id, text_sha256, state, accepted, rounds_used FROM "
                       "sources WHERE run = ?1 AND source_id = ?2",
                       run, source_id, &s)))
    return rc;
  int src = sqlite3_step(s);
  if (src == SQLITE_ROW) {
    memset(out, 0, sizeof *out);
    snprintf(out->source_id, sizeof out->source_id, "%s", (const char *)sqlite3_column_text(s, 0));
    const char *h = (const char *)sqlite3_column_text(s, 1);
    snprintf(out->text_sha256, sizeof out->text_sha256, "%s", h ? h : "");
    enum store_source_state state = STORE_SRC_PENDING;
    (void)store_source_state_parse((const char *)sqlite3_column_text(s, 2), &state);
    out->state = state;
    out->accepted = sqlite3_column_int(s, 3);
    out->rounds_used = sqlite3_column_int(s, 4);
    rc = 0;
  } else if (src == SQLITE_DONE) {
    rc = store_seterr(st, AD_ENOTFOUND, "store %s: run %lld has no source '%s'", store_path(st),
                      (long long)run, source_id);
  } else {
    rc = sq_err(st, q->db, src, "reading sources");
  }
  sqlite3_finalize(s);
  return rc;
}

static int sq_candidates_each(store *st, store_id run, const char *verdict, store_row_fn fn,
                              void *ud) {
  static const struct col cols[] = {{"source_id", 't'}, {"round", 'i'},  {"index", 'i'},
                                    {"verdict", 't'},   {"reason", 't'}, {"record", 'j'}};
  return each_in_run(st, run,
                     verdict ? "SELECT source_id, round, idx, verdict, reason, record, ref FROM "
                               "candidates WHERE run = ?1 AND verdict = ?2 "
                               "ORDER BY source_id, round, idx"
                             : "SELECT source_id, round, idx, verdict, reason, record, ref FROM "
                               "candidates WHERE run = ?1 ORDER BY source_id, round, idx",
                     verdict, cols, NCOLS(cols), fn, ud);
}

static int sq_examples_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {
      {"example_id", 't'}, {"source_id", 't'}, {"created", 'r'}, {"example", 'j'}};
  return each_in_run(st, run,
                     "SELECT example_id, source_id, created, example, ref FROM examples "
                     "WHERE run = ?1 ORDER BY example_id",
                     NULL, cols, NCOLS(cols), fn, ud);
}

static const struct col call_cols[] = {
    {"id", 'i'},          {"role", 't'},          {"source_id", 't'},
    {"round", 'i'},       {"endpoint", 't'},      {"model", 't'},
    {"cache_key", 'k'},   {"status", 't'},        {"error", 't'},
    {"http_status", 'i'}, {"prompt_tokens", 'i'}, {"completion_tokens", 'i'},
    {"latency_us", 'i'},  {"attempts", 'i'},      {"retries", 'i'},
    {"cache_hit", 'b'},   {"attempt_list", 'A'},  {"finish_reason", 't'},
    {"request", 't'},     {"reply", 't'}};

static int sq_calls_each(store *st, store_id run, const char *role, int with_bodies,
                         store_row_fn fn, void *ud) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT c.id, role, source_id, round, endpoint, model, cache_key, status, error, "
           "http_status, prompt_tokens, completion_tokens, latency_us, attempts, retries, "
           "cache_hit, attempt_list, finish_reason%s FROM calls c%s WHERE run = ?1%s ORDER BY c.id",
           !with_bodies       ? ""
           : SQ(st)->has_refs ? ", b.request, b.reply, b.ref"
                              : ", b.request, b.reply",
           with_bodies ? " LEFT JOIN call_bodies b ON b.call_id = c.id" : "",
           role ? " AND role = ?2" : "");
  return each_in_run(st, run, sql, role, call_cols, NCOLS(call_cols) - (with_bodies ? 0 : 2), fn,
                     ud);
}

static int sq_source_candidates_each(store *st, store_id run, const char *source_id,
                                     store_row_fn fn, void *ud) {
  static const struct col cols[] = {{"source_id", 't'}, {"round", 'i'},  {"index", 'i'},
                                    {"verdict", 't'},   {"reason", 't'}, {"record", 'j'}};
  return each_in_run(st, run,
                     "SELECT source_id, round, idx, verdict, reason, record, ref FROM candidates "
                     "WHERE run = ?1 AND source_id = ?2 ORDER BY source_id, round, idx",
                     source_id, cols, NCOLS(cols), fn, ud);
}

/* The columns of sq_calls_each(), for one source (bodies joined for its rows only). */
static int sq_source_calls_each(store *st, store_id run, const char *source_id, int with_bodies,
                                store_row_fn fn, void *ud) {
  char sql[512];
  snprintf(sql, sizeof sql,
           "SELECT c.id, role, source_id, round, endpoint, model, cache_key, status, error, "
           "http_status, prompt_tokens, completion_tokens, latency_us, attempts, retries, "
           "cache_hit, attempt_list, finish_reason%s FROM calls c%s WHERE run = ?1 AND "
           "source_id = ?2 "
           "ORDER BY c.id",
           !with_bodies       ? ""
           : SQ(st)->has_refs ? ", b.request, b.reply, b.ref"
                              : ", b.request, b.reply",
           with_bodies ? " LEFT JOIN call_bodies b ON b.call_id = c.id" : "");
  return each_in_run(st, run, sql, source_id, call_cols, NCOLS(call_cols) - (with_bodies ? 0 : 2),
                     fn, ud);
}

static int sq_events_each(store *st, store_id run, store_row_fn fn, void *ud) {
  static const struct col cols[] = {{"id", 'i'}, {"time", 'r'}, {"level", 't'}, {"event", 'j'}};
  return each_in_run(st, run,
                     "SELECT id, time, level, event FROM events WHERE run = ?1 ORDER BY id", NULL,
                     cols, NCOLS(cols), fn, ud);
}

static int sq_opt_each(store *st, enum store_opt_table t, const char *optimization, store_row_fn fn,
                       void *ud) {
  static const char *const sql[] = {
      "SELECT key, record FROM opt_splits WHERE optimization = ?2 ORDER BY key",
      "SELECT key, record FROM opt_variants WHERE optimization = ?2 ORDER BY key",
      "SELECT key, record FROM opt_evaluations WHERE optimization = ?2 ORDER BY key",
      "SELECT key, record FROM opt_iterations WHERE optimization = ?2 ORDER BY key"};
  static const struct col cols[] = {{"key", 't'}, {"record", 'j'}};
  sqlite3_stmt *s;
  int rc = pre_read(st);
  if (rc || (rc = prep(st, sql[t], 0, optimization, &s))) return rc;
  return each(st, s, cols, NCOLS(cols), fn, ud);
}

static int sq_analysis_get(store *st, store_id run, json_t **out) {
  struct sq *q = SQ(st);
  sqlite3_stmt *s;
  *out = NULL;
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  /* A read-only open of a store from before the table: no analysis. */
  if (sqlite3_table_column_metadata(q->db, NULL, "analyses", "analysis", NULL, NULL, NULL, NULL,
                                    NULL) != SQLITE_OK)
    return AD_ENOTFOUND;
  if ((rc = prep(st, "SELECT analysis FROM analyses WHERE run = ?1", run, NULL, &s))) return rc;
  int src = sqlite3_step(s);
  if (src == SQLITE_ROW) {
    const char *p = (const char *)sqlite3_column_text(s, 0);
    *out = json_loadb(p, (size_t)sqlite3_column_bytes(s, 0), 0, NULL);
    rc = *out ? 0
              : store_seterr(st, AD_ECORRUPT, "store %s: run %lld's analysis is not JSON",
                             store_path(st), (long long)run);
  } else if (src == SQLITE_DONE) {
    rc = AD_ENOTFOUND;
  } else {
    rc = sq_err(st, q->db, src, "reading the analysis");
  }
  sqlite3_finalize(s);
  return rc;
}

/* ---- aggregates (store_stats_build in stats.c; these are the queries) ---- */

static int stats_rows(store *st, store_id run, const char *sql, store_stats_fn fn, void *ud) {
  struct sq *q = SQ(st);
  sqlite3_stmt *s;
  int rc = 0, src = sqlite3_prepare_v2(q->db, sql, -1, &s, NULL);
  if (src != SQLITE_OK) return sq_err(st, q->db, src, "computing statistics");
  sqlite3_bind_int64(s, 1, run);
  int nc = sqlite3_column_count(s);
  if (nc > STORE_STATS_COLS) nc = STORE_STATS_COLS;
  while (!rc && (src = sqlite3_step(s)) == SQLITE_ROW) {
    struct store_stats_row row;
    memset(&row, 0, sizeof row);
    for (int k = 0; k < nc; k++) {
      row.null[k] = sqlite3_column_type(s, k) == SQLITE_NULL;
      if (row.null[k]) continue;
      row.i[k] = sqlite3_column_int64(s, k);
      row.d[k] = sqlite3_column_double(s, k);
      row.s[k] = (const char *)sqlite3_column_text(s, k);
    }
    rc = fn(ud, &row);
  }
  if (!rc && src != SQLITE_DONE) rc = sq_err(st, q->db, src, "computing statistics");
  sqlite3_finalize(s);
  return rc;
}

static int stats_run_row(store *st, store_id run, store_row_fn fn, void *ud) {
  sqlite3_stmt *s;
  int rc = prep(st, RUN_SELECT " WHERE id = ?1", run, NULL, &s);
  return rc ? rc : each(st, s, run_cols, NCOLS(run_cols), fn, ud);
}

#define REAL_OK "WHERE run = ?1 AND status = 'ok' AND cache_hit = 0"
#define COMMON_QUERIES                                                            \
  .rows = stats_rows, .run_row = stats_run_row,                                   \
  .sources = "SELECT state, count(*) FROM sources WHERE run = ?1 GROUP BY state", \
  .examples = "SELECT count(*) FROM examples WHERE run = ?1",                     \
  .candidates = "SELECT count(*) FROM candidates WHERE run = ?1",                 \
  .rejections =                                                                   \
      "SELECT coalesce(reason, 'unspecified'), count(*) FROM candidates WHERE "   \
      "run = ?1 AND verdict = 'rejected' GROUP BY 1 ORDER BY 2 DESC, 1",          \
  .latency_at = "SELECT latency_us FROM calls " REAL_OK " ORDER BY latency_us LIMIT 1 OFFSET %lld"

/* The calls' numbers from call_agg (kept by a trigger), in the order a scan of calls gave;
 * the percentiles from the calls_latency index. */
#define AGG_MODEL "CASE WHEN model_null THEN NULL ELSE model END"
#define AGG_OK "FROM call_agg WHERE run = ?1 AND status = 'ok' AND cache_hit = 0"
static const struct store_stats_q stats_agg = {
    COMMON_QUERIES,
    .calls =
        "SELECT role, status, cache_hit, sum(n), sum(attempts), sum(retries) FROM "
        "call_agg WHERE run = ?1 GROUP BY role, status, cache_hit "
        "ORDER BY role, status, cache_hit",
    .role_tokens = "SELECT role, " AGG_MODEL
                   " AS m, sum(prompt), sum(completion) FROM "
                   "call_agg WHERE run = ?1 AND cache_hit = 0 GROUP BY role, m ORDER BY role, m",
    .tokens = "SELECT " AGG_MODEL
              " AS m, sum(prompt), sum(completion), sum(n) FROM "
              "call_agg WHERE run = ?1 AND cache_hit = 0 GROUP BY m ORDER BY m",
    .prefix = "SELECT coalesce(sum(prefix), 0) FROM call_agg WHERE run = ?1 AND cache_hit = 0",
    .wall = "SELECT max(last) - min(first) FROM call_agg WHERE run = ?1",
    .ok_calls = "SELECT coalesce(sum(n), 0) " AGG_OK,
    /* avg() of the integers: their sum (exact below 2^53) over their count, truncated */
    .latency_mean = "SELECT CAST(CAST(sum(lat_sum) AS REAL) / sum(lat_n) AS INTEGER) " AGG_OK,
};

/* Before the fast status's migration (a store opened read-only): a scan of calls. */
static const struct store_stats_q stats_scan = {
    COMMON_QUERIES,
    .calls =
        "SELECT role, status, cache_hit, count(*), coalesce(sum(attempts), 0), "
        "coalesce(sum(retries), 0) FROM calls WHERE run = ?1 "
        "GROUP BY role, status, cache_hit",
    .role_tokens =
        "SELECT role, model, coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(completion_tokens), 0) FROM calls "
        "WHERE run = ?1 AND cache_hit = 0 GROUP BY role, model",
    .tokens =
        "SELECT model, coalesce(sum(prompt_tokens), 0), "
        "coalesce(sum(completion_tokens), 0), count(*) FROM calls "
        "WHERE run = ?1 AND cache_hit = 0 GROUP BY model ORDER BY model",
    .prefix =
        "SELECT coalesce(sum(prefix_tokens), 0) FROM calls WHERE run = ?1 "
        "AND cache_hit = 0",
    .wall = "SELECT max(created) - min(created) FROM calls WHERE run = ?1",
    .ok_calls = "SELECT count(*) FROM calls " REAL_OK,
    .latency_mean = "SELECT CAST(avg(latency_us) AS INTEGER) FROM calls " REAL_OK,
};

static int sq_stats(store *st, store_id run, json_t **out) {
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  return store_stats_build(st, run, SQ(st)->has_agg ? &stats_agg : &stats_scan, out);
}

int store_sqlite_exec(store *st, const char *sql) {
  if (!st || !st->impl || st->ops != &store_sqlite_ops) return AD_EINVAL;
  return exec(st, sql, "running SQL");
}

/* ---- the run's stamp (store_run_stamp) ---- */

/* Feed every value of every row of sql (run bound as ?1) to h, each with its type: 0, or a
 * read error; optional: a statement that does not prepare (a table an older store lacks in a
 * read-only open) feeds a marker instead and returns 1. */
static int stamp_rows(store *st, struct hash128_stream *h, const char *sql, store_id run,
                      int optional) {
  struct sq *q = SQ(st);
  sqlite3_stmt *s;
  if (sqlite3_prepare_v2(q->db, sql, -1, &s, NULL) != SQLITE_OK) {
    if (!optional) return sq_err(st, q->db, sqlite3_errcode(q->db), "reading");
    hash128_stream_update(h, "-", 1);
    return 1;
  }
  if (sqlite3_bind_parameter_count(s) > 0) sqlite3_bind_int64(s, 1, run);
  int src, nrows = 0;
  while ((src = sqlite3_step(s)) == SQLITE_ROW) {
    int nc = sqlite3_column_count(s);
    for (int i = 0; i < nc; i++) {
      unsigned char t = (unsigned char)sqlite3_column_type(s, i);
      int64_t iv;
      double dv;
      hash128_stream_update(h, &t, 1);
      if (t == SQLITE_INTEGER) {
        iv = sqlite3_column_int64(s, i);
        hash128_stream_update(h, &iv, sizeof iv);
      } else if (t == SQLITE_FLOAT) {
        dv = sqlite3_column_double(s, i);
        hash128_stream_update(h, &dv, sizeof dv);
      } else if (t != SQLITE_NULL) {
        const void *p = sqlite3_column_blob(s, i);
        int64_t n = sqlite3_column_bytes(s, i);
        hash128_stream_update(h, &n, sizeof n);
        hash128_stream_update(h, p, (size_t)n);
      }
    }
    nrows++;
  }
  sqlite3_finalize(s);
  if (src != SQLITE_DONE) return sq_err(st, q->db, src, "reading");
  hash128_stream_update(h, &nrows, sizeof nrows);
  return 0;
}

/* The run row, every source row (small: states change in place), the calls' maintained
 * aggregates, and of the tables that grow by inserts and replacements (candidates,
 * examples, events) the count, the sum and maximum of the rowids and the newest row: a
 * replaced row gets a new rowid, the newest one a new `created`. Schema-agnostic (SELECT *),
 * so it follows changes to the rows' encoding. */
static int sq_run_stamp(store *st, store_id run, char out[33]) {
  static const char *const sql[] = {
      "PRAGMA user_version",
      "SELECT * FROM sources WHERE run = ?1 ORDER BY rowid",
      "SELECT count(*), total(rowid), max(rowid) FROM candidates WHERE run = ?1",
      "SELECT * FROM candidates WHERE rowid = (SELECT max(rowid) FROM candidates WHERE run = ?1)",
      "SELECT count(*), total(rowid), max(rowid) FROM examples WHERE run = ?1",
      "SELECT * FROM examples WHERE rowid = (SELECT max(rowid) FROM examples WHERE run = ?1)",
      "SELECT count(*), max(id) FROM events WHERE run = ?1",
  };
  int rc = resolve_run(st, &run);
  if (rc) return rc;
  struct hash128_stream *h = hash128_stream_new();
  rc = stamp_rows(st, h, "SELECT * FROM runs WHERE id = ?1", run, 0);
  for (size_t i = 0; !rc && i < sizeof sql / sizeof *sql; i++)
    rc = stamp_rows(st, h, sql[i], run, 0);
  /* optional: tables an older store (opened read-only, not migrated) does not have */
  if (!rc &&
      (rc = stamp_rows(st, h, "SELECT * FROM call_agg WHERE run = ?1 ORDER BY 1, 2, 3, 4, 5, 6",
                       run, 1)) == 1) /* calls are only ever inserted */
    rc = stamp_rows(st, h, "SELECT count(*), max(id) FROM calls WHERE run = ?1", run, 0);
  if (!rc) rc = stamp_rows(st, h, "SELECT * FROM analyses WHERE run = ?1", run, 1);
  if (rc == 1) rc = 0;
  if (!rc) hash128_stream_hex(h, out);
  hash128_stream_free(h);
  return rc;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .attach_cache = sq_attach_cache,
    .flush = sq_flush,
    .maybe_flush = sq_maybe_flush,
    .pending = sq_pending,
    .set_batch = sq_set_batch,
    .run_begin = sq_run_begin,
    .run_latest = sq_run_latest,
    .check_run = check_run,
    .source_put = sq_source_put,
    .source_get = sq_source_get,
    .cache_get = sq_cache_get,
    .runs_each = sq_runs_each,
    .sources_each = sq_sources_each,
    .candidates_each = sq_candidates_each,
    .examples_each = sq_examples_each,
    .calls_each = sq_calls_each,
    .events_each = sq_events_each,
    .opt_each = sq_opt_each,
    .analysis_get = sq_analysis_get,
    .source_candidates_each = sq_source_candidates_each,
    .source_calls_each = sq_source_calls_each,
    .stats = sq_stats,
    .run_stamp = sq_run_stamp,
};
