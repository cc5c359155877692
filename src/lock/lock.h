/*
 * lock.h - the pessimistic lock manager: record locks (S, X, S->X upgrade),
 * key-range locks for SERIALIZABLE scans, FIFO waits with timeouts, and
 * deadlock detection on the wait-for graph.  src/lock/README explains the
 * design and its invariants.
 *
 * Layer: lock (base <- index <- record <- lock <- gc <- txn <- db).  It
 * knows records and keyspaces, not transactions: a transaction embeds a
 * struct lock_owner and the lock manager deals with owners only.  Its
 * queues (struct lockstate behind record->ls) and range locks are private
 * to src/lock/; others ask through the functions below.
 *
 * Concurrency: one mutex per database (lock_mgr.mu) guards every queue,
 * range lock, owner's wait fields and the deadlock history.  Functions
 * here take it themselves; none may be called with it held, nor inside an
 * RCU read-side section (they may sleep).
 */
#ifndef TXKV_LOCK_LOCK_H
#define TXKV_LOCK_LOCK_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/util.h"
#include "record/keyspace.h"
#include "record/record.h"
#include "txkv.h"

/* Lock modes: the public TXKV_LOCK_* values, so txkv_locks copies them. */
enum { LOCK_S = TXKV_LOCK_SHARED, LOCK_X = TXKV_LOCK_EXCLUSIVE };

struct lockreq;
struct rangelock;
struct heldlock;
struct lock_owner;

struct lock_mgr {
    struct mutex mu;
    struct lock_owner *owners;  /* every owner, push-only (lock_owner_init) */
    struct lock_owner *waiters; /* owners asleep on a request */
    struct rangelock *ranges;   /* every range lock granted */
    _Atomic int nranges;        /* lets optimistic commits skip mu */
    uint64_t dl_epoch;          /* deadlock search visit marks */
    uint64_t dl_seq;
    struct txkv_deadlock_info *dl_hist; /* ring of the last TXKV_DEADLOCK_HISTORY */
    struct lock_owner **blk;            /* lock_blockers' scratch array */
    size_t blk_cap;
    /* record address -> its lock queue (open addressing, linear probing;
     * at most half full) */
    struct lockstate **lsmap;
    size_t lscap, lsn;
};

/*
 * The lock manager's part of a transaction.  id and timeout_us are set by
 * the owner before each request; latch is the owner's latch token (what it
 * writes into record latches when it commits).  The rest is the lock
 * manager's, under mu, except held/nheld, which only the owner's thread
 * writes and the lock manager reads under mu.
 */
struct lock_owner {
    struct lock_mgr *lm;
    uint64_t id;         /* age for the youngest-victim rule; txkv_txn_id */
    uint64_t timeout_us; /* 0: wait forever */
    latch_t latch;
    struct heldlock *held;
    size_t nheld, capheld;
    struct rangelock *rlocks; /* range locks held */
    pthread_cond_t cv;        /* signalled when what it waits for may be free */
    bool cv_ready;
    struct lockreq *wait_req;     /* the request it sleeps on, or NULL */
    struct rangelock *wait_range; /* or the range lock it waits to get */
    bool victim;                  /* chosen as a deadlock victim while asleep */
    uint64_t dl_mark;             /* deadlock search visit mark */
    struct lock_owner *wait_next; /* lm->waiters */
    struct lock_owner *all_next;  /* lm->owners */
};

int lock_mgr_init(struct lock_mgr *lm);
void lock_mgr_fini(struct lock_mgr *lm);

/* Registers o (once, for the life of the database). */
void lock_owner_init(struct lock_mgr *lm, struct lock_owner *o, latch_t latch);
/* Frees what o keeps between transactions (close; o holds nothing). */
void lock_owner_fini(struct lock_owner *o);

/*
 * Locks key in mode for o, creating its record if needed; *recp is the
 * record.  Waits (sleeping) while the lock is held in a conflicting mode.
 * 0, TXKV_DEADLOCK, TXKV_LOCK_TIMEOUT, TXKV_FULL or TXKV_NOMEM.  On
 * DEADLOCK and LOCK_TIMEOUT the caller fails its transaction.
 */
int lock_key(struct lock_owner *o, const struct kref *k, int mode, const struct version *v,
             struct record **recp);

/* A key range of a keyspace; NULL bounds are unbounded, both ends inclusive. */
struct key_range {
    const void *lo, *hi;
    size_t lolen, hilen;
};

/*
 * Locks range of ks in shared mode for o: until o releases, no other owner
 * may write a key in it.  Waits while another owner holds an exclusive lock
 * on a key in the range.  0, TXKV_DEADLOCK, TXKV_LOCK_TIMEOUT or TXKV_NOMEM.
 */
int lock_range(struct lock_owner *o, struct txkv_ks *ks, const struct key_range *range);

/*
 * Releases every lock of o and wakes the waiters that may now go.
 * empty(r, arg) is called (under mu) for each record o had locked that
 * now has no lock and no version: a record made only to be locked, which
 * the caller hands to the GC.
 */
void lock_release_all(struct lock_owner *o,
                      void (*empty)(struct record *r, struct txkv_ks *ks, void *arg), void *arg);

/* True if o holds no lock at all (no mutex: o's own thread only). */
static inline bool lock_none_held(const struct lock_owner *o)
{
    return !o->nheld && !o->rlocks;
}

/*
 * For an optimistic commit that holds r's latch: does a pessimistic lock on
 * r stop it?  Any lock does, except, for a committing pessimistic owner,
 * its own exclusive lock (it then holds X: nobody else holds anything).
 * seq_cst: ordered after the latch CAS (src/lock/README, "Sharing with
 * optimistic commits").  No mutex.
 */
static inline bool lock_blocks_commit(struct record *r, bool pessimistic)
{
    uint8_t f = atomic_load(&r->flags);
    return f & (pessimistic ? REC_LOCK_S : REC_LOCKED);
}

/* For an optimistic commit holding the latches of recs[0..n): does another
 * owner's range lock cover one of them?  Takes mu only if a range lock exists. */
bool lock_ranges_block(struct lock_mgr *lm, const struct lock_owner *o, struct txkv_ks *const *kss,
                       struct record *const *recs, size_t n);

/* Is any range lock held now?  (Relaxed hint: lock_ranges_block decides.) */
static inline bool lock_any_ranges(struct lock_mgr *lm)
{
    return atomic_load(&lm->nranges) != 0;
}

/* Waits until no optimistic commit other than o's is installing on r. */
void lock_wait_unlatched(const struct lock_owner *o, struct record *r);

/*
 * For the GC, holding r's latch: marks r dead unless a lock is held or
 * awaited on it, under mu, so that lock_key (which checks dead under mu
 * before it queues) never queues on a dead record.  True if marked.
 */
bool lock_mark_dead_if_free(struct lock_mgr *lm, struct record *r);

/* How many owners are asleep on a lock (tests poll it). */
size_t lock_waiting(struct lock_mgr *lm);

/* txkv_locks and txkv_deadlocks (see txkv.h). */
size_t lock_list(struct lock_mgr *lm, struct txkv_lock_info *out, size_t max);
size_t lock_deadlocks(struct lock_mgr *lm, struct txkv_deadlock_info *out, size_t max);

#endif /* TXKV_LOCK_LOCK_H */
