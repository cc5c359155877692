/*
 * db.c - opening and closing a database, and the public functions that take
 * a txkv_db: keyspaces, begin, txkv_run, stats, lock and deadlock reports.
 *
 * Owns the txkv_db object and the order in which its parts start and stop.
 * Everything else lives in the modules below (docs/design.md, "Layers").
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "db.h"

static _Atomic uint64_t db_ids = 1; /* unique ids for thread-local hints only */

int txkv_open(const txkv_options *o, txkv_db **dbp)
{
    txkv_options def;
    struct txkv_db *db;
    int rc;

    if (!dbp)
        return TXKV_INVALID;
    *dbp = NULL;
    if (!o) {
        txkv_options_init(&def);
        o = &def;
    }
    if (o->isolation < TXKV_READ_COMMITTED || o->isolation > TXKV_SERIALIZABLE ||
        (o->cc != TXKV_OPTIMISTIC && o->cc != TXKV_PESSIMISTIC))
        return TXKV_INVALID;
    if (posix_memalign((void **)&db, 64, sizeof *db) != 0)
        return TXKV_NOMEM;
    memset(db, 0, sizeof *db);
    db->opt = *o;
    db->id = atomic_fetch_add(&db_ids, 1);
    record_store_init(&db->store, o->mem_limit);
    if ((rc = lock_mgr_init(&db->lm)) != 0) {
        lock_mgr_fini(&db->lm);
        record_store_fini(&db->store);
        free(db);
        return rc;
    }
    gc_init(&db->gc, &db->store, &db->ks, &db->lm);
    txn_global_init(&db->txn, o, db->id);
    db->txn.store = &db->store;
    db->txn.ks = &db->ks;
    db->txn.lm = &db->lm;
    db->txn.gc = &db->gc;
    if ((rc = ks_set_init(&db->ks, &db->store, db->id * 0x9e3779b97f4a7c15ull)) != 0 ||
        (o->dir && (rc = wal_open(o, &db->store, &db->ks, &db->gc, &db->wal)) != 0) ||
        (rc = gc_start(&db->gc)) != 0) {
        txkv_close(db);
        return rc;
    }
    db->txn.wal = db->wal; /* commits log from now on */
    *dbp = db;
    return 0;
}

void txkv_close(txkv_db *db)
{
    if (!db)
        return;
    gc_stop(&db->gc);
    /* Open transactions are a caller bug; the contract lets us abort them. */
    txn_abort_open(&db->txn);
    wal_close(db->wal); /* writes and syncs what is appended */
    db->wal = NULL;
    rcu_drain(); /* callbacks account into the store: let them finish first */
    ks_set_free_records(&db->ks);
    record_store_fini(&db->store); /* queued and retired records */
    rcu_drain();
    ks_set_fini(&db->ks);
    txn_global_fini(&db->txn);
    gc_fini(&db->gc);
    lock_mgr_fini(&db->lm);
    free(db);
}

int txkv_keyspace(txkv_db *db, const char *name, unsigned flags, txkv_ks **ksp)
{
    if (!db || !name || !ksp || !*name || strlen(name) > 255 ||
        (flags & ~(unsigned)(TXKV_CREATE | TXKV_HASH | TXKV_ORDERED)))
        return TXKV_INVALID;
    if (!db->wal || !(flags & TXKV_CREATE))
        return ks_open(&db->ks, name, flags, ksp);
    /* A durable database logs the creation (recovery re-creates it). */
    int rc = ks_open(&db->ks, name, flags & ~(unsigned)TXKV_CREATE, ksp);
    if (rc != TXKV_NOTFOUND)
        return rc;
    if ((rc = wal_check(db->wal)) || (rc = ks_open(&db->ks, name, flags, ksp)))
        return rc;
    return wal_log_keyspace(db->wal, *ksp);
}

int txkv_checkpoint(txkv_db *db)
{
    if (!db || !db->wal)
        return TXKV_INVALID;
    return wal_checkpoint(db->wal);
}

int txkv_begin(txkv_db *db, const txkv_txn_options *o, txkv_txn **txnp)
{
    if (!txnp)
        return TXKV_INVALID;
    *txnp = NULL;
    if (!db)
        return TXKV_INVALID;
    return txn_begin(&db->txn, o, txnp);
}

int txkv_run(txkv_db *db, const txkv_txn_options *o, int (*fn)(txkv_txn *, void *), void *arg,
             int max_tries)
{
    if (!db || !fn || max_tries < 0)
        return TXKV_INVALID;
    return txn_run(&db->txn, o, fn, arg, max_tries);
}

void txkv_stats(txkv_db *db, struct txkv_stats *st)
{
    if (!st)
        return;
    memset(st, 0, sizeof *st);
    if (!db)
        return;
    txn_stats(&db->txn, st);
    int64_t k = atomic_load_explicit(&db->store.nkeys, memory_order_relaxed);
    int64_t v = atomic_load_explicit(&db->store.nversions, memory_order_relaxed);
    st->keys = k > 0 ? (uint64_t)k : 0;
    st->versions = v > 0 ? (uint64_t)v : 0;
    st->bytes = mem_used(&db->store.mem);
    st->gc_freed = atomic_load_explicit(&db->store.gc_freed, memory_order_relaxed);
    if (db->wal)
        wal_stats(db->wal, st);
}

size_t txkv_locks(txkv_db *db, struct txkv_lock_info *out, size_t max)
{
    return db ? lock_list(&db->lm, out, max) : 0;
}

size_t txkv_deadlocks(txkv_db *db, struct txkv_deadlock_info *out, size_t max)
{
    return db ? lock_deadlocks(&db->lm, out, max) : 0;
}

void db_test_skip_validation(struct txkv_db *db, bool skip)
{
    db->txn.skip_validation = skip;
}

size_t db_test_lock_waiters(struct txkv_db *db)
{
    return lock_waiting(&db->lm);
}
