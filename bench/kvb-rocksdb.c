/*
 * kvb-rocksdb.c - kv-bench's RocksDB engines, through the C API
 * (<rocksdb/c.h>): rocksdb-txn (TransactionDB: pessimistic, row locks,
 * deadlock detection) and rocksdb-occ (OptimisticTransactionDB: validation
 * at commit).  One file, because the two differ only in how a database is
 * opened and a transaction begun.
 *
 * Fair settings (man/kv-bench.1, bench/RESULTS.md): the database lives in a
 * scratch directory under /dev/shm; the WAL is off; compression is off; the
 * memtable (write_buffer_size) is larger than the loaded data set, so the
 * load does not flush half-way, and the LRU block cache holds the whole
 * data set once flushed; after the load, untimed, the memtable is flushed
 * (waiting) so that reads go to one sorted file, not to a memtable alone.
 * Point reads use a bloom filter of 10 bits per key, as RocksDB's tuning
 * guide advises for point lookups.  Every thread reuses one
 * rocksdb_transaction_t (the old_txn argument of begin), one read-options
 * object and one pinnable slice.
 *
 * Isolation, as RocksDB provides it (the output states it too):
 *   rc   no snapshot: each Get reads the newest committed value; reads made
 *        for update are GetForUpdate (an exclusive lock under rocksdb-txn,
 *        a key validated at commit under rocksdb-occ), so a
 *        read-modify-write cannot lose an update, as under txkv.
 *   si   set_snapshot at begin, every read at that snapshot; a key read for
 *        update is GetForUpdate and every Put is checked against the
 *        snapshot (rocksdb-txn when it locks, rocksdb-occ at commit), so a
 *        write-write conflict fails the later transaction: first updater
 *        (txn) or first committer (occ) wins.
 *   ser  every read of a read-write transaction is GetForUpdate:
 *        rocksdb-txn without a snapshot, shared locks for reads and
 *        exclusive ones for writes (strict two-phase locking);
 *        rocksdb-occ at a snapshot, every key read validated at commit.
 *        A declared read-only transaction reads one snapshot, which is a
 *        prefix of the serial order.  RocksDB cannot lock or validate a
 *        range, so a scan inside a read-write transaction at ser is
 *        refused (BENCH_NOTSUP) rather than run as less than serializable;
 *        kv-bench's workloads scan only in read-only transactions.
 * Busy, TryAgain, TimedOut (a lock wait that ran out) and deadlock
 * (Busy/kDeadlock) are retryable: the transaction is rolled back and
 * counted as an abort, as txkv's CONFLICT, DEADLOCK and LOCK_TIMEOUT are.
 * rocksdb-txn's lock timeout is --lock-timeout, the same as txkv's in the
 * row (0: wait for ever; deadlocks are still detected).
 */
#include "config.h"

#include <rocksdb/c.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvb.h"

#define RK_OVERHEAD (64 + 32) /* per record in the memtable and cache: skiplist node, index */

struct rk_db {
    int occ, isolation;
    rocksdb_options_t *opts;
    rocksdb_block_based_table_options_t *bbto;
    rocksdb_cache_t *cache;
    rocksdb_writeoptions_t *wo;
    rocksdb_transactiondb_options_t *tdbo;
    rocksdb_transactiondb_t *tdb;
    rocksdb_optimistictransactiondb_t *odb;
    /* begin options: [0] read-write, [1] read-only, [2] the loader */
    rocksdb_transaction_options_t *to[3];
    rocksdb_optimistictransaction_options_t *oo[3];
    char dir[96];
};

struct rk_thread {
    struct rk_db *d;
    rocksdb_transaction_t *txn; /* reused through old_txn */
    rocksdb_readoptions_t *ro;
    const rocksdb_snapshot_t *snap; /* the open transaction's, set in ro */
    rocksdb_pinnableslice_t *pin;   /* the last value get returned */
    int open, rdonly;
    char *mvals[BENCH_MAX_OPS]; /* the last multiget's values, freed by the next or the end */
    size_t mvlens[BENCH_MAX_OPS];
    char *merrs[BENCH_MAX_OPS];
    unsigned nmvals;
    char err[200];
};

static const char *rk_version(void)
{
    return KVB_ROCKSDB_VERSION;
}

/* Maps an error string of the C API (Status::ToString) and frees it. */
static int rk_status(struct rk_thread *t, const char *what, char *e)
{
    int retry = strncmp(e, "Resource busy", 13) == 0 ||
                strncmp(e, "Operation timed out", 19) == 0 ||
                strncmp(e, "Operation failed. Try again", 27) == 0;
    if (!retry)
        snprintf(t->err, sizeof t->err, "rocksdb %s: %s", what, e);
    rocksdb_free(e);
    return retry ? BENCH_RETRY : BENCH_FAIL;
}

static void rk_release(struct rk_db *d)
{
    if (d->tdb)
        rocksdb_transactiondb_close(d->tdb);
    if (d->odb)
        rocksdb_optimistictransactiondb_close(d->odb);
    for (int i = 0; i < 3; i++) {
        if (d->to[i])
            rocksdb_transaction_options_destroy(d->to[i]);
        if (d->oo[i])
            rocksdb_optimistictransaction_options_destroy(d->oo[i]);
    }
    if (d->tdbo)
        rocksdb_transactiondb_options_destroy(d->tdbo);
    if (d->wo)
        rocksdb_writeoptions_destroy(d->wo);
    if (d->opts) {
        if (d->dir[0]) {
            char *e = NULL;
            rocksdb_destroy_db(d->opts, d->dir, &e);
            free(e);
        }
        rocksdb_options_destroy(d->opts);
    }
    if (d->bbto)
        rocksdb_block_based_options_destroy(d->bbto);
    if (d->cache)
        rocksdb_cache_destroy(d->cache);
    if (d->dir[0])
        bench_scratch_remove(d->dir);
    free(d);
}

static int rk_open(const struct bench_config *cfg, const struct bench_row *row, void **dbp,
                   char *err, size_t errlen, int occ)
{
    struct rk_db *d = calloc(1, sizeof *d);
    size_t data = (size_t)cfg->keys * 2 * (cfg->key_size + cfg->value_size + RK_OVERHEAD);
    size_t memtable = ((size_t)64 << 20) + data, cache = ((size_t)64 << 20) + data;
    /* lock timeout in ms: -1 waits for ever, like txkv's 0 */
    int64_t timeout = cfg->lock_timeout_us ? (int64_t)((cfg->lock_timeout_us + 999) / 1000) : -1;
    char *e = NULL;

    if (!d) {
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    d->occ = occ;
    d->isolation = row->isolation;
    if (bench_scratch_dir(d->dir, sizeof d->dir, "rocksdb", err, errlen) != BENCH_OK) {
        d->dir[0] = 0;
        rk_release(d);
        return BENCH_FAIL;
    }
    d->opts = rocksdb_options_create();
    d->bbto = rocksdb_block_based_options_create();
    d->cache = rocksdb_cache_create_lru(cache);
    rocksdb_block_based_options_set_block_cache(d->bbto, d->cache);
    rocksdb_block_based_options_set_filter_policy(d->bbto, rocksdb_filterpolicy_create_bloom(10));
    rocksdb_options_set_block_based_table_factory(d->opts, d->bbto);
    rocksdb_options_set_create_if_missing(d->opts, 1);
    rocksdb_options_set_compression(d->opts, rocksdb_no_compression);
    rocksdb_options_set_write_buffer_size(d->opts, memtable);
    rocksdb_options_set_max_write_buffer_number(d->opts, 4);
    d->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_disable_WAL(d->wo, 1);

    for (int i = 0; i < 3; i++) {
        /* i: 0 read-write, 1 read-only, 2 loader (no snapshot) */
        int snap = i == 2                   ? 0
                   : d->isolation == ISO_RC ? 0
                   : d->isolation == ISO_SI ? 1
                   : i == 1                 ? 1 /* ser, read-only: one snapshot */
                                            : occ;              /* ser: occ validates at a snapshot */
        if (occ) {
            d->oo[i] = rocksdb_optimistictransaction_options_create();
            rocksdb_optimistictransaction_options_set_set_snapshot(d->oo[i], (unsigned char)snap);
        } else {
            d->to[i] = rocksdb_transaction_options_create();
            rocksdb_transaction_options_set_set_snapshot(d->to[i], (unsigned char)snap);
            rocksdb_transaction_options_set_deadlock_detect(d->to[i], 1);
            rocksdb_transaction_options_set_lock_timeout(d->to[i], timeout);
        }
    }
    if (occ) {
        d->odb = rocksdb_optimistictransactiondb_open(d->opts, d->dir, &e);
    } else {
        d->tdbo = rocksdb_transactiondb_options_create();
        rocksdb_transactiondb_options_set_transaction_lock_timeout(d->tdbo, timeout);
        d->tdb = rocksdb_transactiondb_open(d->opts, d->tdbo, d->dir, &e);
    }
    if (e) {
        snprintf(err, errlen, "rocksdb %s open %s: %s",
                 occ ? "optimistictransactiondb" : "transactiondb", d->dir, e);
        free(e);
        rk_release(d);
        return BENCH_FAIL;
    }
    *dbp = d;
    return BENCH_OK;
}

static int rk_open_txn(const struct bench_config *cfg, const struct bench_row *row, void **dbp,
                       char *err, size_t errlen)
{
    return rk_open(cfg, row, dbp, err, errlen, 0);
}

static int rk_open_occ(const struct bench_config *cfg, const struct bench_row *row, void **dbp,
                       char *err, size_t errlen)
{
    return rk_open(cfg, row, dbp, err, errlen, 1);
}

static void rk_close(void *db)
{
    rk_release(db);
}

static int rk_thread_open(void *db, void **tp, char *err, size_t errlen)
{
    struct rk_thread *t = calloc(1, sizeof *t);
    if (!t || !(t->ro = rocksdb_readoptions_create())) {
        free(t);
        snprintf(err, errlen, "out of memory");
        return BENCH_FAIL;
    }
    t->d = db;
    *tp = t;
    return BENCH_OK;
}

/* Frees the values the last multiget returned. */
static void rk_free_mvals(struct rk_thread *t)
{
    for (unsigned i = 0; i < t->nmvals; i++)
        rocksdb_free(t->mvals[i]);
    t->nmvals = 0;
}

/* Ends the transaction's reads: the pinned value, multiget's values and the snapshot. */
static void rk_end(struct rk_thread *t)
{
    rk_free_mvals(t);
    if (t->pin) {
        rocksdb_pinnableslice_destroy(t->pin);
        t->pin = NULL;
    }
    if (t->snap) {
        rocksdb_readoptions_set_snapshot(t->ro, NULL);
        rocksdb_free((void *)t->snap); /* the wrapper; the transaction owns the snapshot */
        t->snap = NULL;
    }
    t->open = 0;
}

static void rk_abort(void *tp)
{
    struct rk_thread *t = tp;
    char *e = NULL;
    if (!t->open)
        return;
    rk_end(t);
    rocksdb_transaction_rollback(t->txn, &e);
    free(e);
}

static void rk_thread_close(void *tp)
{
    struct rk_thread *t = tp;
    rk_abort(t);
    if (t->txn)
        rocksdb_transaction_destroy(t->txn);
    rocksdb_readoptions_destroy(t->ro);
    free(t);
}

static int rk_begin(void *tp, unsigned flags)
{
    struct rk_thread *t = tp;
    struct rk_db *d = t->d;
    int i = flags & BENCH_TXN_LOAD ? 2 : flags & BENCH_TXN_RDONLY ? 1 : 0;
    rocksdb_transaction_t *x =
        d->occ ? rocksdb_optimistictransaction_begin(d->odb, d->wo, d->oo[i], t->txn)
               : rocksdb_transaction_begin(d->tdb, d->wo, d->to[i], t->txn);
    if (!x) {
        snprintf(t->err, sizeof t->err, "rocksdb: begin failed");
        return BENCH_FAIL;
    }
    t->txn = x;
    t->open = 1;
    t->rdonly = i == 1;
    /* A snapshot set at begin is only read from when the read options name it. */
    if (i != 2 && (d->isolation == ISO_SI || (d->isolation == ISO_SER && (d->occ || i == 1)))) {
        t->snap = rocksdb_transaction_get_snapshot(x);
        rocksdb_readoptions_set_snapshot(t->ro, t->snap);
    }
    return BENCH_OK;
}

static int rk_get(void *tp, const void *key, size_t klen, const void **val, size_t *vlen,
                  int for_update)
{
    struct rk_thread *t = tp;
    char *e = NULL;
    if (t->pin) {
        rocksdb_pinnableslice_destroy(t->pin);
        t->pin = NULL;
    }
    /* ser: every read of a read-write transaction is GetForUpdate (shared unless for update) */
    if (for_update || (t->d->isolation == ISO_SER && !t->rdonly))
        t->pin = rocksdb_transaction_get_pinned_for_update(t->txn, t->ro, key, klen,
                                                           (unsigned char)(for_update != 0), &e);
    else
        t->pin = rocksdb_transaction_get_pinned(t->txn, t->ro, key, klen, &e);
    if (e)
        return rk_status(t, for_update ? "GetForUpdate" : "Get", e);
    if (!t->pin)
        return BENCH_NOTFOUND;
    *val = rocksdb_pinnableslice_value(t->pin, vlen);
    return BENCH_OK;
}

static int rk_put(void *tp, const void *key, size_t klen, const void *val, size_t vlen)
{
    struct rk_thread *t = tp;
    char *e = NULL;
    rocksdb_transaction_put(t->txn, key, klen, val, vlen, &e);
    return e ? rk_status(t, "Put", e) : BENCH_OK;
}

/*
 * n keys: one rocksdb_transaction_multi_get, except at ser in a read-write
 * transaction, where every read must be a GetForUpdate (a shared lock, or
 * a key validated at commit) and MultiGet takes none: there one
 * rocksdb_transaction_get_for_update per key (the C API has no batched
 * form of it).
 */
static int rk_multiget(void *tp, unsigned n, const void *const *keys, const size_t *klens,
                       const void **vals, size_t *vlens, int *rcs)
{
    struct rk_thread *t = tp;
    int rc = BENCH_OK;
    rk_free_mvals(t);
    if (t->d->isolation == ISO_SER && !t->rdonly) {
        for (unsigned i = 0; i < n; i++) {
            t->merrs[i] = NULL;
            t->mvals[i] = rocksdb_transaction_get_for_update(t->txn, t->ro, keys[i], klens[i],
                                                             &t->mvlens[i], 0, &t->merrs[i]);
        }
    } else {
        rocksdb_transaction_multi_get(t->txn, t->ro, n, (const char *const *)keys, klens, t->mvals,
                                      t->mvlens, t->merrs);
    }
    t->nmvals = n;
    for (unsigned i = 0; i < n; i++) {
        if (t->merrs[i]) {
            int r = rk_status(t, "MultiGet", t->merrs[i]);
            if (rc == BENCH_OK || r == BENCH_FAIL)
                rc = r;
            rcs[i] = r;
        } else if (t->mvals[i]) {
            vals[i] = t->mvals[i];
            vlens[i] = t->mvlens[i];
            rcs[i] = BENCH_OK;
        } else {
            rcs[i] = BENCH_NOTFOUND;
        }
    }
    return rc;
}

static int rk_scan(void *tp, const void *key, size_t klen, unsigned n, unsigned *got,
                   uint64_t *fold)
{
    struct rk_thread *t = tp;
    rocksdb_iterator_t *it;
    char *e = NULL;
    unsigned i = 0;
    if (t->d->isolation == ISO_SER && !t->rdonly) {
        snprintf(t->err, sizeof t->err,
                 "rocksdb: a range cannot be locked or validated: a scan in a read-write "
                 "transaction is not serializable");
        return BENCH_NOTSUP;
    }
    it = rocksdb_transaction_create_iterator(t->txn, t->ro);
    for (rocksdb_iter_seek(it, key, klen); i < n && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t kl, vl;
        rocksdb_iter_key(it, &kl);
        const char *v = rocksdb_iter_value(it, &vl);
        *fold += kl + bench_fold(v, vl);
        i++;
    }
    rocksdb_iter_get_error(it, &e);
    rocksdb_iter_destroy(it);
    *got = i;
    return e ? rk_status(t, "Iterator", e) : BENCH_OK;
}

static int rk_commit(void *tp)
{
    struct rk_thread *t = tp;
    char *e = NULL;
    rk_end(t);
    rocksdb_transaction_commit(t->txn, &e);
    if (e) { /* the transaction is still open: end it */
        char *e2 = NULL;
        rocksdb_transaction_rollback(t->txn, &e2);
        free(e2);
        return rk_status(t, "Commit", e);
    }
    return BENCH_OK;
}

static const char *rk_error(void *tp)
{
    struct rk_thread *t = tp;
    return t->err[0] ? t->err : "rocksdb: unknown error";
}

static int rk_property(struct rk_db *d, const char *name, uint64_t *v)
{
    return d->occ ? rocksdb_optimistictransactiondb_property_int(d->odb, name, v)
                  : rocksdb_transactiondb_property_int(d->tdb, name, v);
}

static int rk_footprint(void *db, uint64_t *bytes, uint64_t *keys, char *err, size_t errlen)
{
    struct rk_db *d = db;
    uint64_t sst = 0, mem = 0;
    if (rk_property(d, "rocksdb.total-sst-files-size", &sst) != 0 ||
        rk_property(d, "rocksdb.cur-size-all-mem-tables", &mem) != 0 ||
        rk_property(d, "rocksdb.estimate-num-keys", keys) != 0) {
        snprintf(err, errlen, "rocksdb: size properties are not available");
        return BENCH_FAIL;
    }
    *bytes = sst + mem;
    return BENCH_OK;
}

static int rk_loaded(void *db, char *err, size_t errlen)
{
    struct rk_db *d = db;
    rocksdb_flushoptions_t *fo = rocksdb_flushoptions_create();
    char *e = NULL;
    rocksdb_flushoptions_set_wait(fo, 1);
    if (d->occ) {
        rocksdb_t *base = rocksdb_optimistictransactiondb_get_base_db(d->odb);
        rocksdb_flush(base, fo, &e);
        rocksdb_optimistictransactiondb_close_base_db(base);
    } else {
        rocksdb_transactiondb_flush(d->tdb, fo, &e);
    }
    rocksdb_flushoptions_destroy(fo);
    if (e) {
        snprintf(err, errlen, "rocksdb flush: %s", e);
        free(e);
        return BENCH_FAIL;
    }
    return BENCH_OK;
}

static const char *rk_mapping_txn(int iso, int cc)
{
    return iso == ISO_RC   ? "no snapshot; reads for update GetForUpdate (exclusive lock)"
           : iso == ISO_SI ? "set_snapshot; reads at the snapshot; reads for update GetForUpdate; "
                             "Put checked against the snapshot"
                           : "no snapshot; every read GetForUpdate (shared lock, exclusive for "
                             "update): strict 2PL; read-only transactions at a snapshot";
}

static const char *rk_mapping_occ(int iso, int cc)
{
    return iso == ISO_RC   ? "no snapshot; reads for update GetForUpdate (validated at commit)"
           : iso == ISO_SI ? "set_snapshot; reads at the snapshot; reads for update GetForUpdate; "
                             "written keys validated at commit"
                           : "set_snapshot; every read GetForUpdate, validated at commit; "
                             "read-only transactions at a snapshot";
}

#define RK_ENGINE(nm, openfn, mapfn)                                                               \
    {                                                                                              \
        .name = (nm), .open = (openfn), .close = rk_close, .thread_open = rk_thread_open,          \
        .thread_close = rk_thread_close, .begin = rk_begin, .get = rk_get, .put = rk_put,          \
        .scan = rk_scan, .commit = rk_commit, .abort = rk_abort, .error = rk_error,                \
        .footprint = rk_footprint, .version = rk_version, .multiget = rk_multiget,                 \
        .loaded = rk_loaded, .mapping = (mapfn)                                                    \
    }

const struct bench_engine bench_engine_rocksdb_txn =
    RK_ENGINE("rocksdb-txn", rk_open_txn, rk_mapping_txn);
const struct bench_engine bench_engine_rocksdb_occ =
    RK_ENGINE("rocksdb-occ", rk_open_occ, rk_mapping_occ);
