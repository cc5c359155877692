/*
 * kvb-sqlite.c - kv-bench's SQLite engine: what many embedders reach for
 * first.  SQLite is serializable and has one writer at a time, so its rows
 * run at ser only; rows asking for rc or si are marked n/a (never run under
 * a name they do not deserve).
 *
 * Settings (man/kv-bench.1, bench/RESULTS.md): one database file in a
 * scratch directory under /dev/shm, journal_mode=WAL (readers never block
 * the writer), synchronous=OFF, a page cache per connection large enough
 * for the whole data set, one WITHOUT ROWID table kv(k BLOB PRIMARY KEY,
 * v BLOB), so that a key's row lives in the primary-key B-tree as in a
 * key-value store.  One connection per thread (SQLITE_OPEN_NOMUTEX: a
 * connection is used by one thread at a time), every statement prepared
 * once per connection and reset after use.  Read-only transactions begin
 * with BEGIN (a WAL snapshot at the first read), read-write ones with
 * BEGIN IMMEDIATE (the write lock at begin, so a transaction never has to
 * upgrade and fail with SQLITE_BUSY half-way).
 *
 * A connection that finds the write lock held waits in a busy handler that
 * yields the CPU and tries again (up to SQ_BUSY_TRIES times); every wait is
 * counted, and the row's notes give the count.  A SQLITE_BUSY that still
 * comes back is retryable: the transaction is rolled back and counted as
 * an abort.  A value that get returns is copied out of the statement (its
 * blob lives only until the statement is reset).
 */
#include "config.h"

#include <sched.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvb.h"

#define SQ_BUSY_TRIES 1000000

struct sq_db {
    char dir[96], path[128];
    uint64_t cache_kib;
    _Atomic uint64_t busy_waits;
};

enum { S_GET, S_PUT, S_SCAN, S_BEGIN, S_BEGIN_W, S_COMMIT, S_ROLLBACK, S_COUNT };

static const char *const sq_sql[S_COUNT] = {
    "SELECT v FROM kv WHERE k = ?1",
    "INSERT INTO kv (k, v) VALUES (?1, ?2) ON CONFLICT (k) DO UPDATE SET v = excluded.v",
    "SELECT k, v FROM kv WHERE k >= ?1 ORDER BY k LIMIT ?2",
    "BEGIN",
    "BEGIN IMMEDIATE",
    "COMMIT",
    "ROLLBACK",
};

struct sq_thread {
    struct sq_db *d;
    sqlite3 *db;
    sqlite3_stmt *st[S_COUNT];
    uint8_t *buf; /* the last value get returned */
    size_t cap;
    int open;
    uint64_t busy;
    char err[200];
};

static const char *sq_version(void)
{
    return sqlite3_libversion();
}

static int sq_busy(void *arg, int count)
{
    struct sq_thread *t = arg;
    t->busy++;
    sched_yield();
    return count < SQ_BUSY_TRIES;
}

static int sq_fail(struct sq_thread *t, const char *what, int rc)
{
    if ((rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED)
        return BENCH_RETRY;
    snprintf(t->err, sizeof t->err, "sqlite %s: %s", what, sqlite3_errmsg(t->db));
    return BENCH_FAIL;
}

/* One connection with the bench's settings; exec runs after the pragmas. */
static int sq_connect(struct sq_db *d, int create, sqlite3 **dbp, char *err, size_t errlen)
{
    char sql[256], *msg = NULL;
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(
        d->path, &db,
        SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0), NULL);
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "sqlite3_open_v2 %s: %s", d->path,
                 db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return BENCH_FAIL;
    }
    /* The pragmas need the database lock too: wait for it rather than fail
     * with "database is locked" while another connection checkpoints (the
     * thread's own busy handler replaces this once it is set up). */
    sqlite3_busy_timeout(db, 10000);
    snprintf(sql, sizeof sql,
             "PRAGMA synchronous = OFF; PRAGMA cache_size = -%llu; PRAGMA temp_store = MEMORY;%s",
             (unsigned long long)d->cache_kib,
             create ? " PRAGMA journal_mode = WAL;"
                      " CREATE TABLE kv (k BLOB PRIMARY KEY, v BLOB) WITHOUT ROWID;"
                    : "");
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "sqlite setup: %s", msg ? msg : sqlite3_errmsg(db));
        sqlite3_free(msg);
        sqlite3_close(db);
        return BENCH_FAIL;
    }
    *dbp = db;
    return BENCH_OK;
}

static int sq_open(const struct bench_config *cfg, const struct bench_row *row, void **dbp,
                   char *err, size_t errlen)
{
    struct sq_db *d;
    sqlite3 *db;
    if (row->isolation != ISO_SER) {
        snprintf(err, errlen, "sqlite provides SERIALIZABLE only");
        return BENCH_NA;
    }
    if (!(d = calloc(1, sizeof *d))) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    if (bench_scratch_dir(d->dir, sizeof d->dir, "sqlite", err, errlen) != BENCH_OK) {
        free(d);
        return BENCH_FAIL;
    }
    snprintf(d->path, sizeof d->path, "%s/bench.db", d->dir);
    /* the whole data set, B-tree pages about 2/3 full, plus slack */
    d->cache_kib = (16u << 10) + cfg->keys * 2 * (cfg->key_size + cfg->value_size + 16) / 1024;
    if (sq_connect(d, 1, &db, err, errlen) != BENCH_OK) {
        bench_scratch_remove(d->dir);
        free(d);
        return BENCH_FAIL;
    }
    sqlite3_close(db); /* journal_mode=WAL stays with the file */
    *dbp = d;
    return BENCH_OK;
}

static void sq_close(void *db)
{
    struct sq_db *d = db;
    bench_scratch_remove(d->dir);
    free(d);
}

static void sq_thread_close(void *tp)
{
    struct sq_thread *t = tp;
    if (t->open)
        sqlite3_step(t->st[S_ROLLBACK]);
    for (int i = 0; i < S_COUNT; i++)
        sqlite3_finalize(t->st[i]);
    sqlite3_close(t->db);
    atomic_fetch_add(&t->d->busy_waits, t->busy);
    free(t->buf);
    free(t);
}

static int sq_thread_open(void *db, void **tp, char *err, size_t errlen)
{
    struct sq_db *d = db;
    struct sq_thread *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    t->d = d;
    if (sq_connect(d, 0, &t->db, err, errlen) != BENCH_OK) {
        free(t);
        return BENCH_FAIL;
    }
    sqlite3_busy_handler(t->db, sq_busy, t);
    for (int i = 0; i < S_COUNT; i++) {
        if (sqlite3_prepare_v3(t->db, sq_sql[i], -1, SQLITE_PREPARE_PERSISTENT, &t->st[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "sqlite prepare '%s': %s", sq_sql[i], sqlite3_errmsg(t->db));
            sq_thread_close(t);
            return BENCH_FAIL;
        }
    }
    *tp = t;
    return BENCH_OK;
}

/* Runs a statement without results (BEGIN, COMMIT, ...). */
static int sq_run(struct sq_thread *t, int s)
{
    int rc = sqlite3_step(t->st[s]);
    sqlite3_reset(t->st[s]);
    return rc == SQLITE_DONE ? BENCH_OK : sq_fail(t, sq_sql[s], rc);
}

static int sq_begin(void *tp, unsigned flags)
{
    struct sq_thread *t = tp;
    int rc = sq_run(t, flags & BENCH_TXN_RDONLY ? S_BEGIN : S_BEGIN_W);
    t->open = rc == BENCH_OK;
    return rc;
}

static void sq_abort(void *tp)
{
    struct sq_thread *t = tp;
    if (t->open && sqlite3_get_autocommit(t->db) == 0)
        sq_run(t, S_ROLLBACK);
    t->open = 0;
}

static int sq_commit(void *tp)
{
    struct sq_thread *t = tp;
    int rc = sq_run(t, S_COMMIT);
    if (rc != BENCH_OK)
        sq_abort(t); /* a failed COMMIT leaves the transaction open */
    t->open = 0;
    return rc;
}

static int sq_get(void *tp, const void *key, size_t klen, const void **val, size_t *vlen,
                  int for_update)
{
    struct sq_thread *t = tp;
    sqlite3_stmt *s = t->st[S_GET];
    int rc;
    sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
    rc = sqlite3_step(s);
    if (rc == SQLITE_ROW) {
        const void *v = sqlite3_column_blob(s, 0);
        size_t n = (size_t)sqlite3_column_bytes(s, 0);
        if (n > t->cap) {
            uint8_t *nb = realloc(t->buf, n);
            if (!nb) {
                sqlite3_reset(s);
                snprintf(t->err, sizeof t->err, "out of memory");
                return BENCH_FAIL;
            }
            t->buf = nb;
            t->cap = n;
        }
        if (n)
            memcpy(t->buf, v, n);
        *val = t->buf;
        *vlen = n;
        sqlite3_reset(s);
        return BENCH_OK;
    }
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? BENCH_NOTFOUND : sq_fail(t, "get", rc);
}

static int sq_put(void *tp, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct sq_thread *t = tp;
    sqlite3_stmt *s = t->st[S_PUT];
    int rc;
    sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, val, (int)vlen, SQLITE_STATIC);
    rc = sqlite3_step(s);
    sqlite3_reset(s);
    return rc == SQLITE_DONE ? BENCH_OK : sq_fail(t, "put", rc);
}

static int sq_scan(void *tp, const void *key, size_t klen, unsigned n, unsigned *got,
                   uint64_t *fold)
{
    struct sq_thread *t = tp;
    sqlite3_stmt *s = t->st[S_SCAN];
    unsigned i = 0;
    int rc;
    sqlite3_bind_blob(s, 1, key, (int)klen, SQLITE_STATIC);
    sqlite3_bind_int64(s, 2, n);
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        size_t kl = (size_t)sqlite3_column_bytes(s, 0);
        const void *v = sqlite3_column_blob(s, 1);
        *fold += kl + bench_fold(v, (size_t)sqlite3_column_bytes(s, 1));
        i++;
    }
    sqlite3_reset(s);
    *got = i;
    return rc == SQLITE_DONE ? BENCH_OK : sq_fail(t, "scan", rc);
}

static const char *sq_error(void *tp)
{
    struct sq_thread *t = tp;
    return t->err[0] ? t->err : "sqlite: unknown error";
}

static int sq_footprint(void *db, uint64_t *bytes, uint64_t *keys, char *err, size_t errlen)
{
    struct sq_db *d = db;
    sqlite3 *c;
    sqlite3_stmt *s = NULL;
    int rc;
    if (sq_connect(d, 0, &c, err, errlen) != BENCH_OK)
        return BENCH_FAIL;
    rc = sqlite3_prepare_v2(c,
                            "SELECT (SELECT page_count FROM pragma_page_count()) * "
                            "(SELECT page_size FROM pragma_page_size()), (SELECT count(*) FROM kv)",
                            -1, &s, NULL);
    if (rc == SQLITE_OK && (rc = sqlite3_step(s)) == SQLITE_ROW) {
        *bytes = (uint64_t)sqlite3_column_int64(s, 0);
        *keys = (uint64_t)sqlite3_column_int64(s, 1);
        rc = SQLITE_OK;
    } else {
        snprintf(err, errlen, "sqlite footprint: %s", sqlite3_errmsg(c));
    }
    sqlite3_finalize(s);
    sqlite3_close(c);
    return rc == SQLITE_OK ? BENCH_OK : BENCH_FAIL;
}

static void sq_note(void *db, char *buf, size_t len)
{
    struct sq_db *d = db;
    snprintf(buf, len, "busy-waits=%llu", (unsigned long long)atomic_load(&d->busy_waits));
}

static const char *sq_mapping(int iso, int cc)
{
    return iso == ISO_SER ? "WAL; BEGIN (read-only: a snapshot) or BEGIN IMMEDIATE (one writer "
                            "at a time)"
                          : "n/a: SQLite provides SERIALIZABLE only";
}

const struct bench_engine bench_engine_sqlite = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .thread_open = sq_thread_open,
    .thread_close = sq_thread_close,
    .begin = sq_begin,
    .get = sq_get,
    .put = sq_put,
    .scan = sq_scan,
    .commit = sq_commit,
    .abort = sq_abort,
    .error = sq_error,
    .footprint = sq_footprint,
    .version = sq_version,
    .note = sq_note,
    .mapping = sq_mapping,
};
