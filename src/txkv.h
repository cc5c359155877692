/*
 * txkv.h - the public interface of txkv, an embeddable in-memory
 * transactional key-value store.
 *
 * Every function that can fail returns 0 (TXKV_OK) or a negative TXKV_*
 * code; txkv_strerror() names it.  See txkv(3) for the whole contract.
 */
#ifndef TXKV_H
#define TXKV_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * The version of this header.  txkv_version() returns the version of the
 * library actually linked, which a program can compare with
 * TXKV_VERSION_STRING.  (configure.ac's AC_INIT carries the same version;
 * tests/base/version checks that they agree.)
 */
#define TXKV_VERSION_MAJOR  0
#define TXKV_VERSION_MINOR  2
#define TXKV_VERSION_PATCH  0
#define TXKV_VERSION_STRING "0.2.0"
/* "MAJOR.MINOR.PATCH" of the library linked. */
const char *txkv_version(void);

/*
 * The error table: X(NAME, value, retryable, message).  It is the one
 * definition of the codes; the enum, txkv_strerror(), txkv_is_retryable()
 * and the ERRORS section of txkv(3) are all generated from it.
 */
#define TXKV_ERROR_TABLE(X)                                                                        \
    X(OK, 0, 0, "success")                                                                         \
    X(NOTFOUND, -1, 0, "key not found, or cursor moved past the end")                              \
    X(CONFLICT, -2, 1, "transaction conflicts with a concurrent commit; retry it")                 \
    X(DEADLOCK, -3, 1, "transaction chosen as a deadlock victim; retry it")                        \
    X(LOCK_TIMEOUT, -4, 1, "lock wait exceeded the lock timeout; retry it")                        \
    X(FULL, -5, 0, "memory limit of the database reached")                                         \
    X(NOMEM, -6, 0, "out of memory")                                                               \
    X(INVALID, -7, 0, "invalid argument")                                                          \
    X(READONLY, -8, 0, "write in a read-only transaction")                                         \
    X(ABORTED, -9, 0, "transaction has failed and must be ended")                                  \
    X(NOTSUP, -10, 0, "operation not supported by this keyspace or build")                         \
    X(EXISTS, -11, 0, "already exists")                                                            \
    X(IO, -12, 0, "input/output error")                                                            \
    X(BUSY, -13, 0, "database directory is in use by another process")

#define TXKV_ENUM_ENTRY_(name, value, retry, msg) TXKV_##name = (value),
enum { TXKV_ERROR_TABLE(TXKV_ENUM_ENTRY_) };
#undef TXKV_ENUM_ENTRY_

enum txkv_isolation { TXKV_READ_COMMITTED = 1, TXKV_SNAPSHOT = 2, TXKV_SERIALIZABLE = 3 };
enum txkv_cc { TXKV_OPTIMISTIC = 1, TXKV_PESSIMISTIC = 2 };
enum { TXKV_RDONLY = 1 };                                  /* transaction flag */
enum { TXKV_CREATE = 1, TXKV_HASH = 2, TXKV_ORDERED = 4 }; /* keyspace flags */

/* Largest key and value a transaction accepts; anything else is TXKV_INVALID. */
#define TXKV_MAX_KEY   65535u
#define TXKV_MAX_VALUE ((size_t)1 << 31)

typedef struct txkv_options {
    /* Bytes of keys, values, versions and index entries the database may
     * hold; a write that would pass it fails with TXKV_FULL.  0 = no limit;
     * so is any value of 2^63 or more (SIZE_MAX is the customary "none"). */
    size_t mem_limit;
    int isolation;            /* default for transactions; TXKV_SNAPSHOT */
    int cc;                   /* default scheme; TXKV_OPTIMISTIC */
    uint64_t lock_timeout_us; /* pessimistic waits; 0 = wait, deadlocks still detected */
    /* Durability (docs/durability.md).  NULL dir: in memory only; else the
     * database's directory, created if absent, recovered if not. */
    const char *dir;
    int sync;                  /* TXKV_SYNC_COMMIT (default), _INTERVAL or _NONE */
    uint32_t sync_interval_ms; /* TXKV_SYNC_INTERVAL; 0 = 100 */
    /* Checkpoint automatically once the log since the last checkpoint
     * passes this many bytes; 0 = only when txkv_checkpoint is called. */
    uint64_t checkpoint_log_bytes;
} txkv_options;

/* Sync policies (txkv_options.sync). */
#define TXKV_SYNC_COMMIT   0 /* txkv_commit returns once its log record is synced */
#define TXKV_SYNC_INTERVAL 1 /* written at commit, synced every sync_interval_ms */
#define TXKV_SYNC_NONE     2 /* written at commit; the OS syncs when it likes */

typedef struct txkv_txn_options {
    int isolation;            /* 0 = the database default */
    int cc;                   /* 0 = the database default */
    unsigned flags;           /* TXKV_RDONLY */
    uint64_t lock_timeout_us; /* 0 = the database default */
} txkv_txn_options;

/* The NAME of a code ("CONFLICT"), or "UNKNOWN" for a value not in the
 * table.  (Unlike strerror(3): txkv_errmsg gives the description.) */
const char *txkv_strerror(int rc);
/* A one-line DESCRIPTION of a code, for messages ("transaction conflicts
 * with a concurrent commit; retry it"). */
const char *txkv_errmsg(int rc);
/* 1 for TXKV_CONFLICT, TXKV_DEADLOCK and TXKV_LOCK_TIMEOUT, else 0. */
int txkv_is_retryable(int rc);

/* Fills *o with the defaults: no memory limit, SNAPSHOT, OPTIMISTIC, no lock timeout. */
void txkv_options_init(txkv_options *o);
/* Fills *o so that every field means "the database default" (0). */
void txkv_txn_options_init(txkv_txn_options *o);

typedef struct txkv_db txkv_db; /* a database: keyspaces + transaction manager */
typedef struct txkv_ks txkv_ks; /* a keyspace; NULL means the default one, "default" */
/* A transaction; usable by one thread at a time.  The pointer is a handle:
 * once the transaction ends, calls with it return TXKV_INVALID (even when a
 * later txkv_begin returned an equal-looking pointer: handles are never
 * dereferenced, only checked). */
typedef struct txkv_txn txkv_txn;
typedef struct txkv_cursor txkv_cursor; /* an ordered cursor inside a transaction; a handle too */

/*
 * Opens a database.  o may be NULL (txkv_options_init's defaults).  With
 * o->dir NULL it is an empty in-memory database; with a directory, the
 * database in it is recovered (newest checkpoint + the log after it) or a
 * new one created.  Errors: TXKV_INVALID (bad isolation, cc or sync in o; a
 * directory that is not a txkv database or has a newer format: left
 * untouched), TXKV_BUSY (the directory is open, in this process or
 * another), TXKV_IO, TXKV_FULL (the data passes mem_limit), TXKV_NOMEM.
 */
int txkv_open(const txkv_options *o, txkv_db **dbp);

/*
 * Frees the database and everything in it.  Transactions still open are a
 * caller bug: they are aborted and freed here, and their handles become
 * invalid.  No other thread may use db during or after the call.
 */
void txkv_close(txkv_db *db);

/*
 * Finds the keyspace called name, or creates it when flags has TXKV_CREATE.
 * flags may name the indexes: TXKV_HASH, TXKV_ORDERED, or both (the default
 * when neither is given).  For a keyspace that exists, index flags given
 * must match its indexes; none given matches any.  A name is 1 to 255
 * bytes.  The default keyspace (ks == NULL everywhere) has both indexes and
 * is called "default": txkv_keyspace(db, "default", ...) returns it.
 * Errors: TXKV_NOTFOUND (absent, no TXKV_CREATE), TXKV_EXISTS (present with
 * other index flags), TXKV_INVALID, TXKV_NOMEM.
 */
int txkv_keyspace(txkv_db *db, const char *name, unsigned flags, txkv_ks **ksp);

/*
 * Begins a transaction.  o may be NULL (the database defaults).  The
 * snapshot of SNAPSHOT and SERIALIZABLE transactions is taken here.
 * Errors: TXKV_INVALID (bad options), TXKV_NOTSUP (a scheme this build does
 * not provide), TXKV_NOMEM.
 */
int txkv_begin(txkv_db *db, const txkv_txn_options *o, txkv_txn **txnp);

/*
 * Commits and frees txn, whatever it returns.  Errors: TXKV_CONFLICT,
 * TXKV_DEADLOCK, TXKV_LOCK_TIMEOUT (retryable: nothing was written),
 * TXKV_FULL, TXKV_NOMEM, TXKV_ABORTED (txn had already failed),
 * TXKV_INVALID (txn is NULL or already ended: nothing happens).
 */
int txkv_commit(txkv_txn *txn);

/* Rolls back and frees txn.  NULL and ended transactions are ignored.
 * Aborting a TXKV_RDONLY transaction counts in aborts_rdonly, not
 * aborts_user (txkv_stats). */
void txkv_abort(txkv_txn *txn);

/*
 * Every call below that takes a txn (or a cursor) returns TXKV_INVALID for a
 * NULL one, one that has ended (stale handles), and one that another thread
 * is inside a call on: release builds catch most such overlaps, debug
 * builds (--enable-debug) all of them, and abort the program with a message.
 */

/*
 * Reads key.  *val stays valid until txn ends; it is not NUL-terminated.
 * val and vlen may be NULL: the value is then not returned (an existence
 * check).  Errors: TXKV_NOTFOUND, TXKV_INVALID (NULL key, key length 0 or
 * > TXKV_MAX_KEY; txn stays usable), TXKV_ABORTED, and for pessimistic
 * transactions the lock errors.
 */
int txkv_get(txkv_txn *txn, txkv_ks *ks, const void *key, size_t klen, const void **val,
             size_t *vlen);

/*
 * Batched point reads: reads the n keys keys[i] (klens[i] bytes) of one
 * keyspace as n txkv_get calls in order would (the same visibility, own
 * writes, read-set entries and locks; duplicates are read twice), with
 * their cache misses overlapped.  rcs[i] is 0 (found: vals[i], vlens[i] set
 * as by txkv_get, valid until txn ends) or TXKV_NOTFOUND.  vals and vlens
 * may be NULL (an existence check); keys, klens and rcs may not unless
 * n is 0.  At READ_COMMITTED the whole batch is read at one timestamp.
 * Returns 0 (n == 0 included), or the first error that is not
 * TXKV_NOTFOUND: TXKV_INVALID for bad arguments, and then nothing is read,
 * rcs[i] is TXKV_INVALID for each bad key and the transaction stays usable;
 * TXKV_ABORTED, TXKV_NOMEM, and for pessimistic transactions the lock
 * errors, where rcs[] from the key that failed on hold the error (those
 * keys were not read).
 */
int txkv_get_many(txkv_txn *txn, txkv_ks *ks, size_t n, const void *const *keys,
                  const size_t *klens, const void **vals, size_t *vlens, int *rcs);

/*
 * Reads key and declares the intent to write it: optimistic transactions
 * fail at commit with TXKV_CONFLICT if another transaction commits key after
 * this read; pessimistic ones lock it exclusively now.  Errors as txkv_get,
 * plus TXKV_READONLY.
 */
int txkv_get_for_update(txkv_txn *txn, txkv_ks *ks, const void *key, size_t klen, const void **val,
                        size_t *vlen);

/*
 * Writes key = val (vlen 0 .. TXKV_MAX_VALUE).  Visible to txn's own reads at
 * once, to others after commit.  Errors: TXKV_INVALID, TXKV_READONLY,
 * TXKV_FULL (the transaction fails), TXKV_NOMEM, TXKV_ABORTED.
 */
int txkv_put(txkv_txn *txn, txkv_ks *ks, const void *key, size_t klen, const void *val,
             size_t vlen);

/* Deletes key (absent keys are not an error).  Errors as txkv_put. */
int txkv_del(txkv_txn *txn, txkv_ks *ks, const void *key, size_t klen);

/*
 * Ordered cursors over a keyspace with a B+tree.  A cursor sees what txn's
 * gets see, merged with txn's own pending writes, in key order.
 * txkv_cursor_open errors: TXKV_NOTSUP (hash-only keyspace), TXKV_INVALID,
 * TXKV_ABORTED, TXKV_NOMEM.  Ending txn closes its cursors; calls on them
 * afterwards return TXKV_INVALID, and txkv_cursor_close on them does
 * nothing, so a late close is harmless.
 */
int txkv_cursor_open(txkv_txn *txn, txkv_ks *ks, txkv_cursor **cp);
/* Positions on the first key >= key (key NULL with klen 0: the first key;
 * NULL with klen > 0 is TXKV_INVALID).  0 or TXKV_NOTFOUND (past the end). */
int txkv_cursor_seek(txkv_cursor *c, const void *key, size_t klen);
/* Positions on the last key <= key (key NULL with klen 0: the last key).
 * 0 or TXKV_NOTFOUND (before the start). */
int txkv_cursor_seek_prev(txkv_cursor *c, const void *key, size_t klen);
/* Positions on the last key; 0 or TXKV_NOTFOUND (empty). */
int txkv_cursor_last(txkv_cursor *c);
/* Moves to the next key; TXKV_NOTFOUND past the end (the cursor stays there).
 * On a cursor not positioned yet: the first key (as seek(c, NULL, 0)). */
int txkv_cursor_next(txkv_cursor *c);
/* Moves to the previous key; TXKV_NOTFOUND before the start.  On a cursor
 * not positioned yet: the last key (as txkv_cursor_last). */
int txkv_cursor_prev(txkv_cursor *c);
/* The current entry; pointers valid until txn ends; any out-parameter may
 * be NULL.  TXKV_NOTFOUND if unpositioned or off either end. */
int txkv_cursor_get(txkv_cursor *c, const void **key, size_t *klen, const void **val, size_t *vlen);
/* Closes c.  NULL, and cursors already closed (also by the end of their
 * transaction), are ignored. */
void txkv_cursor_close(txkv_cursor *c);

/*
 * Savepoints.  txkv_savepoint marks the transaction's writes so far and
 * returns an id in *sp; txkv_rollback_to(txn, sp) undoes every put and
 * delete made after it, and discards the savepoints taken after it (sp
 * itself stays and can be rolled back to again).  Kept, as PostgreSQL and
 * RocksDB keep them: the snapshot, what was read (SERIALIZABLE still
 * validates those reads and scans), pessimistic locks (until the end), and
 * every pointer gets and cursors returned, rolled-back values included.
 * Ids are never reused within a transaction object, so an id that was
 * discarded, belongs to another transaction or was never given is
 * TXKV_INVALID.  Errors: TXKV_INVALID, TXKV_ABORTED (failed txn: a
 * rollback does not revive it), TXKV_NOMEM.
 */
int txkv_savepoint(txkv_txn *txn, uint32_t *sp);
int txkv_rollback_to(txkv_txn *txn, uint32_t sp);

/*
 * Runs fn in a transaction and commits it; while fn or the commit fails with
 * a retryable code, runs it again in a new transaction, up to max_tries times
 * (0: no limit).  fn returns 0 to commit, anything else to abort and return
 * that value.
 */
int txkv_run(txkv_db *db, const txkv_txn_options *o, int (*fn)(txkv_txn *txn, void *arg), void *arg,
             int max_tries);

/* A transaction's identifier, never 0: unique for the database's life (no
 * later transaction gets the id of an earlier one, so the deadlock history
 * never names a later transaction), stable for the transaction's life
 * (kv-cli and the deadlock history show it).  0 for NULL or an ended txn. */
uint64_t txkv_txn_id(txkv_txn *txn);

/*
 * Deadlocks the pessimistic lock manager detected, oldest first: the last
 * TXKV_DEADLOCK_HISTORY are kept.  Each names the transactions of the
 * cycle (up to TXKV_DEADLOCK_MAX_TXNS), the key each was waiting for
 * (truncated to TXKV_DEADLOCK_KEY_MAX bytes) and the victim, which failed
 * with TXKV_DEADLOCK.  Returns how many it wrote to out (at most max).
 */
#define TXKV_DEADLOCK_HISTORY  16
#define TXKV_DEADLOCK_MAX_TXNS 8
#define TXKV_DEADLOCK_KEY_MAX  32
struct txkv_deadlock_info {
    uint64_t seq;    /* 1, 2, ... in order of detection */
    uint64_t victim; /* txkv_txn_id of the victim */
    unsigned ntxns;  /* length of the cycle */
    uint64_t txns[TXKV_DEADLOCK_MAX_TXNS];
    unsigned char keys[TXKV_DEADLOCK_MAX_TXNS][TXKV_DEADLOCK_KEY_MAX];
    size_t klens[TXKV_DEADLOCK_MAX_TXNS]; /* full key length; bytes kept: min(klen, KEY_MAX) */
    /* A wait for a key range (a SERIALIZABLE pessimistic scan): range[i] is
     * 1, the range is [keys[i], his[i]] as in txkv_lock_info, and has_lo[i] /
     * has_hi[i] 0 mean unbounded on that side (klens[i] / hilens[i] are 0). */
    unsigned char range[TXKV_DEADLOCK_MAX_TXNS];
    unsigned char has_lo[TXKV_DEADLOCK_MAX_TXNS], has_hi[TXKV_DEADLOCK_MAX_TXNS];
    unsigned char his[TXKV_DEADLOCK_MAX_TXNS][TXKV_DEADLOCK_KEY_MAX];
    size_t hilens[TXKV_DEADLOCK_MAX_TXNS];
};
size_t txkv_deadlocks(txkv_db *db, struct txkv_deadlock_info *out, size_t max);

/*
 * The pessimistic lock table at this moment: every lock held and every
 * request waiting, with the transaction's id.  Keys are truncated to
 * TXKV_DEADLOCK_KEY_MAX bytes (klen is the full length).  A range lock
 * covers [key, hi]; has_lo/has_hi 0 mean unbounded on that side.  Returns
 * how many entries exist (it may exceed max; only max are written).
 */
enum { TXKV_LOCK_SHARED = 1, TXKV_LOCK_EXCLUSIVE = 2, TXKV_LOCK_RANGE = 3 };
struct txkv_lock_info {
    uint64_t txn; /* txkv_txn_id of the holder or waiter */
    int mode;     /* TXKV_LOCK_* */
    int granted;  /* 1: held, 0: waiting */
    struct txkv_ks *ks;
    int has_lo, has_hi; /* TXKV_LOCK_RANGE only */
    size_t klen, hilen;
    unsigned char key[TXKV_DEADLOCK_KEY_MAX];
    unsigned char hi[TXKV_DEADLOCK_KEY_MAX];
};
size_t txkv_locks(txkv_db *db, struct txkv_lock_info *out, size_t max);

struct txkv_stats {
    uint64_t commits;         /* txkv_commit calls that returned 0 (read-only ones too) */
    uint64_t aborts_conflict; /* transactions failed with TXKV_CONFLICT */
    uint64_t aborts_deadlock; /* ... with TXKV_DEADLOCK (deadlock victims) */
    uint64_t aborts_timeout;  /* ... with TXKV_LOCK_TIMEOUT */
    uint64_t aborts_full;     /* ... with TXKV_FULL */
    uint64_t aborts_user;     /* txkv_abort of a writable transaction that had not failed */
    uint64_t keys;            /* keys whose newest committed version is a value, all keyspaces */
    uint64_t versions;        /* committed versions held: old ones and tombstones included */
    uint64_t bytes;           /* bytes counted against mem_limit */
    uint64_t gc_freed;        /* versions and records the garbage collector reclaimed so far */
    uint64_t active_txns;     /* transactions begun and not yet ended */
    uint64_t oldest_snapshot_age_us; /* how long the oldest live snapshot has pinned versions */
    /* txkv_abort of a TXKV_RDONLY transaction that had not failed: the way
     * LMDB-style code ends every read, so not a user abort of work. */
    uint64_t aborts_rdonly;
    /* Durable databases (txkv_options.dir), else 0. */
    uint64_t recovered_bytes_dropped; /* torn/corrupt log tail cut by the last open */
    uint64_t log_bytes;               /* log written since the last checkpoint */
    uint64_t checkpoint_ts;           /* commit timestamp of the newest checkpoint */
};
/* A consistent-enough picture of the database (counters are read without a lock). */
void txkv_stats(txkv_db *db, struct txkv_stats *st);

/*
 * Writes a checkpoint: every keyspace's live keys from one snapshot, while
 * transactions go on; the log it covers is removed afterwards.  0,
 * TXKV_INVALID (db is NULL or in memory only), TXKV_IO (the log has
 * failed, or the checkpoint could not be written: the log still holds
 * everything), TXKV_NOMEM.
 */
int txkv_checkpoint(txkv_db *db);

#ifdef __cplusplus
}
#endif
#endif /* TXKV_H */
