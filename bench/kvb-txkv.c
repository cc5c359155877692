/*
 * kvb-txkv.c - kv-bench's txkv engine: the row's isolation level and
 * concurrency-control scheme become per-transaction txkv options.
 *
 * Each row opens a fresh database with one keyspace, "bench", whose indexes
 * are the row's --index (TXKV_HASH, TXKV_ORDERED or both), so no row
 * inherits another's garbage versions.  Read-only transactions carry
 * TXKV_RDONLY; the loader uses the database defaults (SNAPSHOT, OPTIMISTIC)
 * so that a scheme this build lacks shows up in the probe, not in the load.
 * Only the public API (txkv.h) is used, as an application would.
 */
#include "config.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvb.h"
#include "txkv.h"
#ifdef KVB_TEST_HOOKS
#include <stdbool.h>

#include "db.h" /* db_test_skip_validation: the test build's --break-validation */
#endif

struct tx_db {
    txkv_db *db;
    txkv_ks *ks;
    int isolation, cc;
    uint64_t lock_timeout_us;
    char *dir; /* a durable row's fresh database directory, removed at close */
};

/* Removes a database directory kv-bench made (files only, no subdirectories). */
static void remove_db_dir(const char *dir)
{
    DIR *dh = opendir(dir);
    struct dirent *e;
    if (dh) {
        while ((e = readdir(dh))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            size_t n = strlen(dir) + strlen(e->d_name) + 2;
            char *p = malloc(n);
            if (p) {
                snprintf(p, n, "%s/%s", dir, e->d_name);
                unlink(p);
                free(p);
            }
        }
        closedir(dh);
    }
    rmdir(dir);
}

struct tx_thread {
    struct tx_db *d;
    txkv_txn *txn;
    txkv_txn_options rw, ro;
    char err[160];
};

/* Maps a txkv code; anything unexpected is kept as the message for error(). */
static int tx_map(struct tx_thread *t, const char *what, int rc)
{
    if (rc == TXKV_OK)
        return BENCH_OK;
    if (rc == TXKV_NOTFOUND)
        return BENCH_NOTFOUND;
    if (txkv_is_retryable(rc))
        return BENCH_RETRY;
    snprintf(t->err, sizeof t->err, "txkv_%s: TXKV_%s", what, txkv_strerror(rc));
    return rc == TXKV_NOTSUP ? BENCH_NOTSUP : BENCH_FAIL;
}

static int tx_open(const struct bench_config *cfg, const struct bench_row *row, void **dbp,
                   char *err, size_t errlen)
{
    struct tx_db *d = calloc(1, sizeof *d);
    unsigned flags = TXKV_CREATE;
    int rc;

    if (!d) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    if (row->index & IDX_HASH)
        flags |= TXKV_HASH;
    if (row->index & IDX_BTREE)
        flags |= TXKV_ORDERED;
    d->isolation = row->isolation;
    d->cc = row->cc;
    d->lock_timeout_us = cfg->lock_timeout_us;
    txkv_options o;
    txkv_options_init(&o);
    if (row->sync != BENCH_SYNC_MEM) {
        static unsigned seq;
        size_t n = strlen(cfg->dir) + 64;
        if (!(d->dir = malloc(n))) {
            free(d);
            snprintf(err, errlen, "out of memory");
            return BENCH_FAIL;
        }
        snprintf(d->dir, n, "%s/kv-bench-%ld-%u", cfg->dir, (long)getpid(), seq++);
        o.dir = d->dir;
        o.sync = row->sync == BENCH_SYNC_COMMIT     ? TXKV_SYNC_COMMIT
                 : row->sync == BENCH_SYNC_INTERVAL ? TXKV_SYNC_INTERVAL
                                                    : TXKV_SYNC_NONE;
    }
    if ((rc = txkv_open(&o, &d->db)) != TXKV_OK) {
        snprintf(err, errlen, "txkv_open%s%s: %s", d->dir ? " " : "", d->dir ? d->dir : "",
                 txkv_strerror(rc));
        if (d->dir && rc != TXKV_BUSY && rc != TXKV_INVALID)
            remove_db_dir(d->dir);
        free(d->dir);
        free(d);
        return BENCH_FAIL;
    }
#ifdef KVB_TEST_HOOKS
    if (cfg->break_validation)
        db_test_skip_validation(d->db, true);
#endif
    if ((rc = txkv_keyspace(d->db, "bench", flags, &d->ks)) != TXKV_OK) {
        snprintf(err, errlen, "txkv_keyspace: %s", txkv_strerror(rc));
        txkv_close(d->db);
        if (d->dir)
            remove_db_dir(d->dir);
        free(d->dir);
        free(d);
        return rc == TXKV_NOTSUP ? BENCH_NOTSUP : BENCH_FAIL;
    }
    *dbp = d;
    return BENCH_OK;
}

static void tx_close(void *db)
{
    struct tx_db *d = db;
    txkv_close(d->db);
    if (d->dir)
        remove_db_dir(d->dir);
    free(d->dir);
    free(d);
}

static int tx_thread_open(void *db, void **tp, char *err, size_t errlen)
{
    struct tx_db *d = db;
    struct tx_thread *t = calloc(1, sizeof *t);
    if (!t) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    t->d = d;
    txkv_txn_options_init(&t->rw);
    t->rw.isolation = d->isolation;
    t->rw.cc = d->cc;
    t->rw.lock_timeout_us = d->lock_timeout_us;
    t->ro = t->rw;
    t->ro.flags = TXKV_RDONLY;
    *tp = t;
    return BENCH_OK;
}

static void tx_thread_close(void *tp)
{
    struct tx_thread *t = tp;
    txkv_abort(t->txn);
    free(t);
}

static int tx_begin(void *tp, unsigned flags)
{
    struct tx_thread *t = tp;
    const txkv_txn_options *o = flags & BENCH_TXN_LOAD     ? NULL
                                : flags & BENCH_TXN_RDONLY ? &t->ro
                                                           : &t->rw;
    return tx_map(t, "begin", txkv_begin(t->d->db, o, &t->txn));
}

static int tx_get(void *tp, const void *key, size_t klen, const void **val, size_t *vlen,
                  int for_update)
{
    struct tx_thread *t = tp;
    int rc = for_update ? txkv_get_for_update(t->txn, t->d->ks, key, klen, val, vlen)
                        : txkv_get(t->txn, t->d->ks, key, klen, val, vlen);
    return rc == TXKV_OK ? BENCH_OK : tx_map(t, for_update ? "get_for_update" : "get", rc);
}

/* txkv_get_many: one call, the misses of the n lookups overlapped. */
static int tx_multiget(void *tp, unsigned n, const void *const *keys, const size_t *klens,
                       const void **vals, size_t *vlens, int *rcs)
{
    struct tx_thread *t = tp;
    int rc = txkv_get_many(t->txn, t->d->ks, n, keys, klens, vals, vlens, rcs);
    if (rc != TXKV_OK)
        return tx_map(t, "get_many", rc);
    for (unsigned i = 0; i < n; i++) /* 0 or TXKV_NOTFOUND */
        rcs[i] = rcs[i] == TXKV_OK ? BENCH_OK : BENCH_NOTFOUND;
    return BENCH_OK;
}

static int tx_put(void *tp, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct tx_thread *t = tp;
    int rc = txkv_put(t->txn, t->d->ks, key, klen, val, vlen);
    return rc == TXKV_OK ? BENCH_OK : tx_map(t, "put", rc);
}

static int tx_scan(void *tp, const void *key, size_t klen, unsigned n, unsigned *got,
                   uint64_t *fold)
{
    struct tx_thread *t = tp;
    txkv_cursor *c;
    const void *k, *v;
    size_t kl, vl;
    unsigned i = 0;
    int rc = txkv_cursor_open(t->txn, t->d->ks, &c);

    if (rc == TXKV_NOTSUP) { /* the one cause: no ordered index to walk */
        snprintf(t->err, sizeof t->err,
                 "a hash-only keyspace (--index hash) cannot scan: txkv_cursor_open returns "
                 "TXKV_NOTSUP; use --index btree or both");
        return BENCH_NOTSUP;
    }
    if (rc != TXKV_OK)
        return tx_map(t, "cursor_open", rc);
    for (rc = txkv_cursor_seek(c, key, klen); rc == TXKV_OK && i < n; rc = txkv_cursor_next(c)) {
        if ((rc = txkv_cursor_get(c, &k, &kl, &v, &vl)) != TXKV_OK)
            break;
        *fold += kl + bench_fold(v, vl);
        if (++i == n)
            break;
    }
    txkv_cursor_close(c);
    *got = i;
    return rc == TXKV_NOTFOUND ? BENCH_OK : tx_map(t, "cursor", rc);
}

static int tx_commit(void *tp)
{
    struct tx_thread *t = tp;
    int rc = txkv_commit(t->txn);
    t->txn = NULL; /* freed whatever commit returned */
    return rc == TXKV_OK ? BENCH_OK : tx_map(t, "commit", rc);
}

static void tx_abort(void *tp)
{
    struct tx_thread *t = tp;
    txkv_abort(t->txn);
    t->txn = NULL;
}

static const char *tx_error(void *tp)
{
    struct tx_thread *t = tp;
    return t->err[0] ? t->err : "txkv: unknown error";
}

static int tx_footprint(void *db, uint64_t *bytes, uint64_t *keys, char *err, size_t errlen)
{
    struct tx_db *d = db;
    struct txkv_stats st;
    txkv_stats(d->db, &st);
    *bytes = st.bytes;
    *keys = st.keys;
    return BENCH_OK;
}

static const char *tx_version(void)
{
    return PACKAGE_VERSION;
}

static const char *tx_mapping(int iso, int cc)
{
    return iso == ISO_RC   ? "TXKV_READ_COMMITTED; reads for update txkv_get_for_update"
           : iso == ISO_SI ? "TXKV_SNAPSHOT; reads for update txkv_get_for_update"
                           : "TXKV_SERIALIZABLE; reads for update txkv_get_for_update";
}

const struct bench_engine bench_engine_txkv = {
    .name = "txkv",
    .open = tx_open,
    .close = tx_close,
    .thread_open = tx_thread_open,
    .thread_close = tx_thread_close,
    .begin = tx_begin,
    .get = tx_get,
    .put = tx_put,
    .scan = tx_scan,
    .commit = tx_commit,
    .abort = tx_abort,
    .error = tx_error,
    .footprint = tx_footprint,
    .version = tx_version,
    .multiget = tx_multiget,
    .mapping = tx_mapping,
};
