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

#include <pthread.h>
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

/*
 * A committed version of a key.  Immutable once linked into a chain, except
 * `next`, which the record's latch holder may cut when pruning.  Linked only
 * with its final commit timestamp: visibility never has to ask whether a
 * version's writer committed (R1).
 *
 * A version is either out of line (its own allocation, inl = 0) or the
 * record's inline slot (inl = 1, inside the record's allocation, see
 * struct record).  24 bytes before the value.
 */
struct version {
    uint64_t ts;                  /* commit timestamp */
    struct version *_Atomic next; /* next older version */
    uint32_t vlen;
    uint8_t tomb; /* a delete */
    uint8_t inl;  /* the record's inline slot */
    char val[];
};

/* Values up to this size live inline in their record (see struct record). */
#define RECORD_INLINE_MAX 256

/*
 * One record per key per keyspace, shared by the keyspace's indexes; one
 * allocation holding the header (40 bytes with a 16-byte hash entry), the
 * key (padded to 8 bytes) and, when the record was created for a value of
 * at most RECORD_INLINE_MAX bytes, an inline version slot sized for it:
 *
 *     | he | head | latch klen flags icap | gc_next | key... | slot: version + value |
 *
 *  - head is the newest committed version or NULL (no committed version yet,
 *    e.g. its creator's commit failed); it only changes under the latch (R2).
 *    head == NULL means the slot has never been used.
 *  - The slot holds a version only while it is reachable from head; cut off
 *    by pruning, it is free again for a later commit (version.c says why no
 *    reader can still be looking at it then).  A version too large for the
 *    slot, or written while the slot is in the chain, goes out of line.
 *  - latch is 0 or the 32-bit token of its holder: a committing transaction
 *    (each transaction object has its own, src/txn/txn.c), the GC
 *    (LATCH_GC), recovery, or the record's creator while it links the
 *    record into the indexes.
 *  - REC_LOCK_X / REC_LOCK_S summarise the pessimistic locks (an X holder,
 *    at least one S holder) for optimistic committers, which read them
 *    without the lock manager's mutex; the lock queue itself lives in the
 *    lock manager (src/lock/), keyed by the record's address, and only the
 *    lock manager, under its mutex, changes these two bits.
 *  - REC_DEAD is set, under the latch, when the record leaves the indexes; a
 *    dead record is never written again (R3).  Its memory stays valid until
 *    every transaction active at that moment has ended and a grace period
 *    passed (src/gc/), so transactions may keep pointers to records in
 *    their read and write sets.
 *  - REC_QUEUED: on its keyspace's tombstone queue or the retire list, both
 *    linked through gc_next (under queue_mu).
 * flags is one atomic byte: every change to it is an atomic read-modify-
 * write of the bits it means to change, so writers of different bits
 * (the GC, the lock manager, the queues) never undo each other.
 */
typedef uint32_t latch_t;

struct record {
    struct hash_entry he; /* embedded: bucket -> record in one step */
    struct version *_Atomic head;
    _Atomic latch_t latch;
    uint16_t klen;
    _Atomic uint8_t flags; /* REC_* */
    uint8_t icap8;         /* slot capacity / 8; 0 with REC_SLOT: empty values only */
    struct record *gc_next;
    uint8_t key[]; /* klen bytes, then padding to 8, then the slot */
};
_Static_assert(sizeof(void *) != 8 || sizeof(struct record) == 40, "record header is 40 bytes");

#define REC_DEAD   0x01
#define REC_QUEUED 0x02
#define REC_SLOT   0x04 /* the record has an inline slot */
#define REC_LOCK_S 0x08 /* some owner holds an S lock (lock manager, under its mutex) */
#define REC_LOCK_X 0x10 /* some owner holds the X lock (idem) */
#define REC_LOCKED (REC_LOCK_S | REC_LOCK_X)

/* The GC's latch token.  Transactions latch with their object's token
 * (LATCH_FIRST_TXN and up), so 1 is nobody's but the GC's. */
#define LATCH_GC ((latch_t)1)
/* The latch a new record carries until it is in every index (keyspace.c). */
#define LATCH_CREATOR ((latch_t)2)
/* Recovery's (src/wal/): it runs alone, before any transaction. */
#define LATCH_RECOVERY  ((latch_t)3)
#define LATCH_FIRST_TXN ((latch_t)16)

static inline bool record_dead(const struct record *r)
{
    /* acquire: pairs with the release in record_set_dead */
    return atomic_load_explicit(&r->flags, memory_order_acquire) & REC_DEAD;
}

static inline void record_set_dead(struct record *r)
{
    atomic_fetch_or_explicit(&r->flags, REC_DEAD, memory_order_release);
}

/* r's inline slot, or NULL if it has none. */
static inline struct version *record_slot(struct record *r)
{
    if (!(atomic_load_explicit(&r->flags, memory_order_relaxed) & REC_SLOT))
        return NULL;
    return (struct version *)(void *)(r->key + (((size_t)r->klen + 7) & ~(size_t)7));
}

static inline size_t record_slot_cap(const struct record *r)
{
    return (size_t)r->icap8 * 8;
}

/* Is v (r's head) an out-of-line version the GC could move into r's slot?
 * The store counts such records (nooline) to decide when to sweep. */
static inline bool record_promotable(struct record *r, const struct version *v)
{
    return v && !v->inl && !v->tomb && record_slot(r) && v->vlen <= record_slot_cap(r);
}

/* A batch of objects to free after a grace period (record.c): what a
 * thread cuts off or retires goes here instead of into a per-object
 * rcu_head.  Owned by one thread at a time (a transaction, the GC). */
struct limbo {
    struct limbo_batch *b;
};

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
    _Atomic int64_t nooline; /* records whose head is record_promotable */
    _Atomic uint64_t gc_freed;

    /* A record out of the indexes waits on `retired` (linked through
     * gc_next) until no transaction can hold it.  The tombstone queues are
     * per keyspace (struct txkv_ks) under the same mutex, a leaf lock. */
    pthread_mutex_t queue_mu __attribute__((aligned(64)));
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

/*
 * Waits until visible_ts >= ts: the commits up to ts are published.  The
 * thread that holds ts may be descheduled between drawing it and
 * publishing it (more runnable threads than cores), hence spin, then
 * yield.  (A futex sleep after the spin was tried again: it made waits
 * cheaper only when they were long, and cost up to half of the in-memory
 * update rate at 2 threads on 2 cores, where every wake-up is a system
 * call and a cross-CPU interrupt; docs/durability.md, "Who walks".)
 */
void clock_wait_visible(struct record_store *s, uint64_t ts);

/* visible_ts = ts; the caller saw visible_ts == ts - 1. */
static inline void clock_publish(struct record_store *s, uint64_t ts)
{
    /* release: pairs with the acquire loads of visible_ts at begin/read
     * and in clock_wait_visible */
    atomic_store_explicit(&s->visible_ts, ts, memory_order_release);
}

/* The last commit timestamp drawn (published or not). */
static inline uint64_t clock_drawn(struct record_store *s)
{
    return atomic_load(&s->next_ts); /* seq_cst: src/wal/checkpoint.c, "Cursor" */
}

/* Inline slot capacity for a first value of vlen bytes (0: none). */
size_t record_icap(size_t vlen, bool has_value);
/* Bytes a record (with a slot of icap bytes, or none) or an out-of-line
 * version costs against the memory limit. */
size_t record_bytes(size_t klen, bool slot, size_t icap);
size_t version_bytes(size_t vlen);

/* A new record for key in ks, latched by owner, not yet in any index; with
 * an inline slot of icap bytes if slot. */
struct record *record_new(const void *key, size_t klen, bool slot, size_t icap, latch_t owner);
/* Frees a record that no reader can reach, with its chain, at once.  Its
 * lock queue must be gone (nobody holds or waits for a lock on it). */
void record_free_now(struct record_store *s, struct record *r);

/* r is out of every index (dead): the GC frees it once no transaction that
 * could have found it is active.  Any thread. */
void record_retire(struct record_store *s, struct record *r);
/* Moves the retire list to the caller (the GC). */
struct record *record_take_retired(struct record_store *s);
/* Gives retired records back. */
void record_requeue_retired(struct record_store *s, struct record *list);

/* ---- limbo (record.c) ------------------------------------------------------ */

/* Frees v (out of line) / r after a grace period, releasing their bytes
 * then.  May call into liburcu; not under the queue mutex. */
void limbo_add_version(struct limbo *l, struct record_store *s, struct version *v);
/* True if the next limbo_add_version(l, s, ...) is sure to wait for a grace
 * period (a batch with room exists); false if no memory for one. */
bool limbo_ready(struct limbo *l, struct record_store *s);
void limbo_add_record(struct limbo *l, struct record_store *s, struct record *r);
/* Hands the batch to RCU now (a transaction's end, a GC round's end). */
void limbo_flush(struct limbo *l);

/* ---- the latch ----------------------------------------------------------- */

static inline bool latch_try(struct record *r, latch_t owner)
{
    latch_t zero = 0;
    assert(owner != 0);
    /* seq_cst (acquire at least: pairs with the release in latch_release):
     * an optimistic committer's latch and its later look at REC_LOCKED are
     * one side of the Dekker handshake with the lock manager
     * (src/lock/README, "Mixing schemes"). */
    return atomic_compare_exchange_strong_explicit(&r->latch, &zero, owner, memory_order_seq_cst,
                                                   memory_order_relaxed);
}

static inline void latch_release(struct record *r)
{
    assert(atomic_load_explicit(&r->latch, memory_order_relaxed) != 0);
    atomic_store_explicit(&r->latch, 0, memory_order_release);
}

static inline bool latch_held(struct record *r, latch_t owner)
{
    return atomic_load_explicit(&r->latch, memory_order_relaxed) == owner;
}

/* Waits for r's latch (spinning, then yielding).  Latch holders never wait
 * for anything but latches taken in address order, so this wait cannot be
 * part of a cycle (src/txn/README, "Commit"). */
void latch_wait(struct record *r, latch_t owner);

/* True if r is latched by a committer other than me.  The GC latches too,
 * but it never installs a version, so it is nobody's conflict. */
static inline bool latch_held_by_other(struct record *r, latch_t me)
{
    latch_t l = atomic_load_explicit(&r->latch, memory_order_acquire);
    return l && l != me && l != LATCH_GC;
}

/* ---- versions (version.c) ------------------------------------------------ */

/*
 * Where pruning may cut a chain (version.c, "Pruning"): every reader reads
 * at >= young, except readers of one exact snapshot, old (old <= young;
 * old == young when there are none).  The GC computes them (src/gc/).
 */
struct prune_bounds {
    uint64_t young, old;
};

/* Bounds for a single horizon h: every reader reads at >= h. */
static inline struct prune_bounds prune_below(uint64_t h)
{
    return (struct prune_bounds){h, h};
}

struct version *version_new(const void *val, size_t vlen, bool tomb);
/* A version never linked, or unreachable by any reader. */
void version_free_now(struct version *v);
/* The newest version of r with ts <= ts, or NULL.  RCU read side. */
struct version *version_visible(struct record *r, uint64_t ts);
/*
 * Makes the buffered version v, stamped ts, r's newest version: in r's
 * inline slot when that is free and v fits (v stays the caller's, to free
 * when it likes), else v itself out of line (then owned by the chain).
 * Prunes with bounds b first (cut versions go to limbo l).  Returns the
 * version linked.  Caller holds r's latch.
 */
struct version *version_install(struct record_store *s, struct record *r, struct version *v,
                                uint64_t ts, struct prune_bounds b, struct limbo *l);
/* Cuts every version no reader within bounds b can reach: below the newest
 * one with ts <= b.old, and between the newest with ts <= b.young and the
 * newest with ts <= b.old except the inline slot.  Returns how many.
 * Caller holds r's latch. */
size_t version_prune(struct record_store *s, struct record *r, struct prune_bounds b,
                     struct limbo *l);
/* Moves r's newest version into its free inline slot, if it has one that
 * fits; returns the out-of-line version replaced (the caller retires it
 * until no transaction can hold it), or NULL.  Caller holds r's latch. */
struct version *version_promote(struct record_store *s, struct record *r);

#endif /* TXKV_RECORD_RECORD_H */
