/*
 * db.h - txkv's internal structures: database, keyspace, record, version,
 * transaction.  Private to the library; see src/txn/README for the rules
 * that govern them and docs/design.md for the picture.
 */
#ifndef TXKV_DB_H
#define TXKV_DB_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "index/btree.h"
#include "index/hash.h"
#include "rcu.h"
#include "txkv.h"

#define container_of_(p, type, member) ((type *)((char *)(p) - offsetof(type, member)))

/*
 * A committed version of a key.  Immutable once linked into a chain, except
 * `next`, which the record's latch holder may cut when pruning.  Linked only
 * with its final commit timestamp: visibility never has to ask whether a
 * version's writer committed (see "Timestamps" in src/txn/README).
 */
struct version {
    uint64_t ts;                   /* commit timestamp */
    struct version *_Atomic next;  /* next older version */
    uint32_t vlen;
    uint8_t tomb;                  /* a delete */
    struct rcu_head rcu;           /* freed through rcu_defer */
    struct txkv_db *db;            /* for accounting in the RCU callback */
    char val[];
};

/*
 * One record per key per keyspace, shared by the keyspace's indexes.
 * Invariants:
 *  - head is the newest committed version or NULL (no committed version yet,
 *    e.g. its creator's commit failed); it only changes under the latch.
 *  - latch is 0 or the address of the transaction that holds the record
 *    (an optimistic commit installing, or a pruner).  Pessimistic locking
 *    will share this word.
 *  - dead is set, under the latch, when the record leaves the indexes; a
 *    dead record is never written again.  Its memory stays valid until every
 *    transaction active at that moment has ended and a grace period passed
 *    (gc.c), so transactions may keep pointers to records in their read and
 *    write sets.
 */
struct record {
    struct hash_entry he;           /* embedded: bucket -> record in one step */
    struct version *_Atomic head;
    _Atomic uintptr_t latch;
    _Atomic uint8_t dead;
    uint8_t queued;
    _Atomic uint32_t plock;         /* pessimistic locks: PLOCK_X | shared count */
    struct lockstate *ls;           /* lock queue (lock.c, under lm_mu) */                 /* on the tombstone queue (gc.c, under gc_mu) */
    struct txkv_ks *ks;
    struct record *gc_next;         /* tombstone queue / retire list link */
    uint64_t retire_ts;             /* visible timestamp when retired */
    struct rcu_head rcu;
    uint32_t klen;
    uint8_t key[];
};

/* Pessimistic lock modes. */
enum { LOCK_S = 1, LOCK_X = 2 };
#define PLOCK_X 0x80000000u

/* A lock request on a record, granted or waiting (lock.c, under lm_mu). */
struct lockreq {
    struct txkv_txn *t;
    struct record *rec;
    int mode;
    bool granted;
    struct lockreq *next;
};

/* A record's lock queue. */
struct lockstate {
    struct lockreq *holders;
    struct lockreq *waitq; /* FIFO, oldest first */
};

struct rangelock;

struct heldlock {
    struct record *rec;
    int mode;
};

struct txkv_ks {
    struct txkv_db *db;
    struct txkv_ks *next;
    char *name;
    unsigned flags;                 /* TXKV_HASH | TXKV_ORDERED */
    uint64_t seed;
    struct hash_index *hash;        /* NULL if the keyspace has no hash index */
    struct btree *tree;             /* NULL if it has no B+tree */
    _Atomic int64_t nrecords;       /* records in the indexes (approximate) */
    int64_t maintained_at;          /* nrecords at the last hash_maintain (GC thread) */
};

/* A buffered write: key -> new version (tomb for a delete). */
struct wentry {
    struct txkv_ks *ks;
    struct record *rec;             /* resolved at commit */
    uint64_t hv;
    const uint8_t *key;             /* copy in the txn arena */
    uint32_t klen;
    bool latched;                   /* commit holds rec's latch */
    bool made;                      /* commit created rec (empty until installed) */
    struct version *ver;            /* allocated at put, linked at commit */
};

/* A read that must still hold at commit: key's newest version ts <= read_ts. */
struct rentry {
    struct txkv_ks *ks;
    struct record *rec;             /* NULL: the key had no record */
    const uint8_t *key;             /* arena copy when rec is NULL */
    uint32_t klen;
    uint64_t hv;
    uint64_t read_ts;
};

/* A scanned key range that must be unchanged at commit (SERIALIZABLE). */
struct rangeentry {
    struct txkv_ks *ks;
    const uint8_t *lo, *hi;         /* arena copies; NULL = unbounded */
    uint32_t lolen, hilen;
    uint64_t read_ts;
};

struct arena_chunk {
    struct arena_chunk *next;
    size_t used, cap;
    uint8_t data[];
};

/*
 * A transaction object.  The objects are owned by the database, kept on
 * db->txns for its whole life and reused, so the GC can read every
 * transaction's pin without a lock and without the object ever vanishing.
 * The first cache line holds what other threads read (pin, in_use); the rest
 * is touched only by the thread that uses the transaction at the moment.
 */
struct txkv_txn {
    _Atomic uint64_t pin;           /* 0: inactive; else no version visible at
                                       this timestamp may be freed */
    _Atomic int in_use;
    _Atomic uint64_t begin_ns;      /* CLOCK_MONOTONIC at begin, for stats */
    struct txkv_txn *all_next;      /* db->txns, immutable once linked */
    /* per-object counters, summed by txkv_stats */
    _Atomic uint64_t n_commits, n_conflict, n_full, n_user, n_since_horizon, n_deadlock,
        n_timeout;

    struct txkv_db *db __attribute__((aligned(64)));
    uint64_t begin_ts;
    int isolation, cc;
    unsigned flags;
    int failed;                     /* 0, or the code that failed the txn */

    struct wentry *ws;
    size_t nws, capws;
    uint32_t *wmap;                 /* open addressing: index+1 into ws, 0 = empty */
    size_t wmap_cap;
    uint32_t *wsorted;              /* ws indices by (ks, key), for cursors */
    size_t nsorted;
    bool sorted_valid;
    size_t wbytes;                  /* bytes the writes will add when installed */

    struct rentry *rs;
    size_t nrs, caprs;
    struct rangeentry *ranges;
    size_t nranges, capranges;

    /* pessimistic locking (lock.c; the wait fields under db->lm_mu) */
    uint64_t serial;                /* begin order, for the youngest-victim rule */
    uint64_t lock_timeout_us;
    struct heldlock *held;
    size_t nheld, capheld;
    struct rangelock *rlocks;       /* range locks held */
    pthread_cond_t cv;              /* signalled when what it waits for may be free */
    bool cv_ready;
    struct lockreq *wait_req;       /* the request it sleeps on, or NULL */
    struct rangelock *wait_range;   /* or the range lock it waits to get */
    bool victim;                    /* chosen as a deadlock victim while asleep */
    uint64_t dl_mark;               /* deadlock search visit mark */
    struct txkv_txn *wait_next;     /* db->waiters */

    struct arena_chunk *arena;
    struct version *superseded;     /* own writes replaced by later ones: a get may
                                       still point into them, freed at the end */
    struct txkv_cursor *cursors;    /* open cursors, closed with the txn */
};

struct txkv_db {
    /* Written by every commit: its own cache lines. */
    _Atomic uint64_t next_ts __attribute__((aligned(64)));
    _Atomic uint64_t visible_ts __attribute__((aligned(64))); /* read at every begin */
    _Atomic uint64_t horizon __attribute__((aligned(64)));    /* cached GC horizon */
    _Atomic int64_t mem_used __attribute__((aligned(64)));
    _Atomic int64_t nkeys, nversions;
    _Atomic uint64_t gc_freed;

    uint64_t id __attribute__((aligned(64))); /* unique per open, for thread-local hints */
    txkv_options opt;
    struct txkv_ks *ks_default;

    pthread_mutex_t ks_mu;          /* keyspace list */
    struct txkv_ks *ks_list;

    struct txkv_txn *_Atomic txns;  /* every transaction object, push-only */

    /* GC (gc.c) */
    pthread_mutex_t gc_mu;
    pthread_cond_t gc_cv;
    pthread_t gc_thread;
    bool gc_running, gc_stop;
    struct record *tomb_queue;      /* records whose head is a tombstone */
    struct record *retired;         /* unlinked records waiting for old txns */

    /* Pessimistic locking (lock.c, deadlock.c): one mutex for the lock
     * queues, the range locks, the waiter list and the deadlock history. */
    pthread_mutex_t lm_mu;
    struct txkv_txn *waiters;
    struct rangelock *ranges;       /* every range lock held */
    _Atomic int nranges;            /* lets optimistic commits skip lm_mu */
    _Atomic uint64_t txn_serial;
    uint64_t dl_epoch;
    uint64_t dl_seq;
    struct txkv_deadlock_info *dl_hist; /* ring of the last TXKV_DEADLOCK_HISTORY */
    bool broken_skip_validation;    /* tests only: see occ_break_validation */
    struct txkv_txn **blk;          /* lock_blockers' scratch array */
    size_t blk_cap;
};

/* --- db.c ------------------------------------------------------------- */
struct txkv_ks *db_ks(struct txkv_db *db, struct txkv_ks *ks);
uint64_t db_hash(const struct txkv_ks *ks, const void *key, size_t klen);
struct record *ks_lookup(struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv);
int ks_insert(struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv, uintptr_t owner,
              struct record **recp, bool *created);
void record_free_now(struct txkv_db *db, struct record *r);
uint64_t now_ns(void);

/* --- mem.c -------------------------------------------------------------- */
int mem_reserve(struct txkv_db *db, size_t bytes, bool exempt);
bool mem_over(struct txkv_db *db, size_t bytes);
void mem_release(struct txkv_db *db, size_t bytes);
size_t mem_record_bytes(size_t klen);
size_t mem_version_bytes(size_t vlen);

/* --- txn/version.c ------------------------------------------------------ */
struct version *version_new(struct txkv_db *db, const void *val, size_t vlen, bool tomb);
void version_free_now(struct version *v);
void version_free_deferred(struct version *v);
struct version *version_visible(struct record *r, uint64_t ts);
size_t version_prune(struct record *r, uint64_t horizon);

/* --- txn/txn.c ---------------------------------------------------------- */
uint64_t txn_read_ts(struct txkv_txn *t);
void *arena_alloc(struct txkv_txn *t, size_t n);
int txn_fail(struct txkv_txn *t, int rc);
void txn_destroy(struct txkv_txn *t);
struct wentry *wset_find(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                         uint64_t hv);
void wset_sort(struct txkv_txn *t);
int rset_add_range(struct txkv_txn *t, struct txkv_ks *ks, const void *lo, size_t lolen,
                   const void *hi, size_t hilen);
int key_cmp(const void *a, size_t alen, const void *b, size_t blen);

/* --- txn/occ.c ---------------------------------------------------------- */
int occ_commit(struct txkv_txn *t);
void occ_break_validation(struct txkv_db *db, bool broken);
bool latch_try(struct record *r, uintptr_t owner);
void latch_release(struct record *r);

/* --- txn/gc.c ----------------------------------------------------------- */
int gc_start(struct txkv_db *db);
void gc_stop(struct txkv_db *db);
uint64_t gc_horizon(struct txkv_db *db);
void gc_queue_tombstone(struct txkv_db *db, struct record *r);
void gc_retire(struct txkv_db *db, struct record *r);
void gc_close(struct txkv_db *db);

/* --- txn/lock.c, txn/deadlock.c ---------------------------------------- */
int lock_key(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen, uint64_t hv,
             int mode, struct record **recp);
int lock_range(struct txkv_txn *t, struct txkv_ks *ks, const void *lo, size_t lolen,
               const void *hi, size_t hilen);
void lock_release_all(struct txkv_txn *t);
bool lock_occ_blocked(struct txkv_txn *t);
void lock_wait_unlatched(struct txkv_txn *t, struct record *r);
size_t lock_waiting(struct txkv_db *db);
int lock_init(struct txkv_db *db);
void lock_fini(struct txkv_db *db);
/* under lm_mu: */
struct txkv_txn **lock_blockers(struct txkv_txn *w, size_t *n);
struct record *lock_waited_record(struct txkv_txn *w);
int dl_check(struct txkv_txn *t);

/* --- cursor.c ----------------------------------------------------------- */
void cursor_close_all(struct txkv_txn *t);

#endif /* TXKV_DB_H */
