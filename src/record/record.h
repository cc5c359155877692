/*
 * record.h - records, their latch and their version chains; the commit
 * clock; the queues that carry a record from its last write to its free.
 *
 * Layer: record (base <- index <- record <- lock <- gc <- txn <- db).
 * src/txn/README ("Records and versions", "Timestamps") gives the rules;
 * the invariants R1-R3 it numbers are asserted here in debug builds.
 */
#ifndef TXKV_RECORD_RECORD_H
#define TXKV_RECORD_RECORD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/mem.h"
#include "base/rcu.h"
#include "base/util.h"
#include "index/hash.h"

struct record_store;
struct txkv_ks;
struct lockstate; /* the lock manager's queue of a record (src/lock/) */

/*
 * A committed version of a key.  Immutable once linked into a chain, except
 * `next`, which the record's latch holder may cut when pruning.  Linked only
 * with its final commit timestamp: visibility never has to ask whether a
 * version's writer committed (R1).
 */
struct version {
    uint64_t ts;                  /* commit timestamp */
    struct version *_Atomic next; /* next older version */
    uint32_t vlen;
    uint8_t tomb;               /* a delete */
    struct rcu_head rcu;        /* freed through rcu_defer */
    struct record_store *store; /* for accounting in the RCU callback */
    char val[];
};

/*
 * One record per key per keyspace, shared by the keyspace's indexes.
 *  - head is the newest committed version or NULL (no committed version yet,
 *    e.g. its creator's commit failed); it only changes under the latch (R2).
 *  - latch is 0 or the token of its holder: a committing transaction, the
 *    GC (LATCH_GC), or the record's creator while it links the record into
 *    the indexes.
 *  - plock summarises the pessimistic locks (PLOCK_X | shared count) for
 *    optimistic committers, which read it without the lock manager's mutex;
 *    ls is the lock queue itself, owned by src/lock/ (under its mutex) and
 *    NULL whenever nobody holds or waits for a lock on the record.
 *  - dead is set, under the latch, when the record leaves the indexes; a
 *    dead record is never written again (R3).  Its memory stays valid until
 *    every transaction active at that moment has ended and a grace period
 *    passed (src/gc/), so transactions may keep pointers to records in
 *    their read and write sets.
 *  - queued: on the tombstone queue or the retire list (under queue_mu).
 */
struct record {
    struct hash_entry he; /* embedded: bucket -> record in one step */
    struct version *_Atomic head;
    _Atomic uintptr_t latch;
    _Atomic uint8_t dead;
    uint8_t queued;
    _Atomic uint32_t plock;
    struct lockstate *ls;
    struct txkv_ks *ks;
    struct record *gc_next; /* tombstone queue / retire list link */
    uint64_t retire_ts;     /* visible timestamp when retired */
    struct rcu_head rcu;
    uint32_t klen;
    uint8_t key[];
};

#define PLOCK_X 0x80000000u

/* The GC's latch token.  Transactions latch with their own address (always
 * 64-byte aligned), so 1 is nobody's but the GC's. */
#define LATCH_GC ((uintptr_t)1)
/* The latch a new record carries until it is in every index (keyspace.c). */
#define LATCH_CREATOR ((uintptr_t)2)

/*
 * The database-wide state of this layer (embedded in struct txkv_db).
 * next_ts and visible_ts: the commit clock (src/txn/README, "Timestamps").
 * Commits write next_ts and visible_ts, beginners read visible_ts: each has
 * its own cache line.  The memory count and the key/version counters share
 * one line, written by commits and frees only.
 */
struct record_store {
    _Atomic uint64_t next_ts __attribute__((aligned(64)));
    _Atomic uint64_t visible_ts __attribute__((aligned(64)));
    struct mem_limit mem; /* aligned(64) */
    _Atomic int64_t nkeys, nversions;
    _Atomic uint64_t gc_freed;

    /* A record whose newest version is a tombstone (or that has none) waits
     * on tomb_queue until the GC can take it out of the indexes; then on
     * retired until no transaction can hold it.  queue_mu is a leaf lock. */
    pthread_mutex_t queue_mu __attribute__((aligned(64)));
    struct record *tomb_queue;
    struct record *retired;
};

void record_store_init(struct record_store *s, size_t mem_limit);
/* Frees the records still queued (close: no other users). */
void record_store_fini(struct record_store *s);

/* The snapshot a transaction that begins now reads at. */
static inline uint64_t clock_visible(struct record_store *s)
{
    /* acquire: pairs with the release store that publishes a commit */
    return atomic_load_explicit(&s->visible_ts, memory_order_acquire);
}

/* Bytes a record or version costs against the memory limit. */
size_t record_bytes(size_t klen);
size_t version_bytes(size_t vlen);

/* A new record for key in ks, latched by owner, not yet in any index. */
struct record *record_new(struct txkv_ks *ks, const void *key, size_t klen, uintptr_t owner);
/* Frees a record that no reader can reach, with its chain, at once.  Its
 * lock queue must be gone (nobody holds or waits for a lock on it). */
void record_free_now(struct record_store *s, struct record *r);

/* Queues r for the GC: its newest version is a tombstone, or it has none.
 * Any thread; idempotent while r is queued. */
void record_queue_tombstone(struct record_store *s, struct record *r);
/* r is out of every index (dead): the GC frees it once no transaction that
 * could have found it is active.  Any thread. */
void record_retire(struct record_store *s, struct record *r);
/* Moves the tombstone queue / retire list to the caller (the GC). */
struct record *record_take_tombstones(struct record_store *s);
struct record *record_take_retired(struct record_store *s);
/* Gives records back: still tombstones (tomb) or still retired.  Records
 * that leave both lists go through record_unqueue. */
void record_requeue(struct record_store *s, struct record *list, bool tomb);
void record_unqueue(struct record_store *s, struct record *r);

/* ---- the latch ----------------------------------------------------------- */

static inline bool latch_try(struct record *r, uintptr_t owner)
{
    uintptr_t zero = 0;
    assert(owner != 0);
    /* acquire: pairs with the release in latch_release */
    return atomic_compare_exchange_strong_explicit(&r->latch, &zero, owner, memory_order_acquire,
                                                   memory_order_relaxed);
}

static inline void latch_release(struct record *r)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    atomic_store_explicit(&r->latch, 0, memory_order_release);
}

static inline bool latch_held(struct record *r, uintptr_t owner)
{
    return atomic_load_explicit(&r->latch, memory_order_relaxed) == owner;
}

/* Waits for r's latch (spinning, then yielding).  Latch holders never wait
 * for anything but latches taken in address order, so this wait cannot be
 * part of a cycle (src/txn/README, "Commit"). */
void latch_wait(struct record *r, uintptr_t owner);

/* True if r is latched by a committer other than me.  The GC latches too,
 * but it never installs a version, so it is nobody's conflict. */
static inline bool latch_held_by_other(struct record *r, uintptr_t me)
{
    uintptr_t l = atomic_load_explicit(&r->latch, memory_order_acquire);
    return l && l != me && l != LATCH_GC;
}

/* ---- versions (version.c) ------------------------------------------------ */

struct version *version_new(struct record_store *s, const void *val, size_t vlen, bool tomb);
/* A version never linked, or unreachable by any reader. */
void version_free_now(struct version *v);
/* The newest version of r with ts <= ts, or NULL.  RCU read side. */
struct version *version_visible(struct record *r, uint64_t ts);
/* Links v, stamped ts, as r's newest version.  Caller holds r's latch. */
void version_install(struct record *r, struct version *v, uint64_t ts);
/* Cuts the versions below the newest one with ts <= horizon; returns how
 * many.  Caller holds r's latch. */
size_t version_prune(struct record *r, uint64_t horizon);

#endif /* TXKV_RECORD_RECORD_H */
