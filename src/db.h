/*
 * db.h - the database object: every layer's database-wide part, embedded
 * (WiredTiger's WT_CONNECTION_IMPL holding WT_TXN_GLOBAL is the model).
 *
 * Layer: db, the top (base <- index <- record <- lock <- gc <- txn <- db).
 * Only db.c and tests include this header; each part is owned and
 * documented by its own module.
 */
#ifndef TXKV_DB_H
#define TXKV_DB_H

#include <stdbool.h>
#include <stdint.h>

#include "gc/gc.h"
#include "lock/lock.h"
#include "record/keyspace.h"
#include "record/record.h"
#include "txkv.h"
#include "txn/txn.h"
#include "wal/wal.h"

struct txkv_db {
    struct record_store store; /* clock, counters, memory limit, GC queues */
    struct gc gc;              /* horizon, pins, the GC thread */
    struct txn_global txn;     /* transaction objects, defaults */
    struct ks_set ks;          /* keyspaces and their indexes */
    struct lock_mgr lm;        /* pessimistic locks, deadlock history */
    struct wal *wal;           /* the log, or NULL in memory (src/wal/) */
    txkv_options opt;
    uint64_t id; /* unique per open */
};

/*
 * Tests only (not in the public API): makes every commit skip validation,
 * so the history checker and the fuzzer can show that they catch the
 * anomalies a commit without validation lets through.  Set before any
 * transaction runs.
 */
void db_test_skip_validation(struct txkv_db *db, bool skip);

/* Tests only: how many transactions are asleep on a lock. */
size_t db_test_lock_waiters(struct txkv_db *db);

#endif /* TXKV_DB_H */
