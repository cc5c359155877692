/*
 * txn.h - the transaction layer: transaction objects, their read, write and
 * range sets, the one commit path of both schemes, cursors.
 *
 * Layer: txn (base <- index <- record <- lock <- gc <- txn <- db).  It is
 * the only layer that knows struct txkv_txn; db.c embeds its database-wide
 * part, struct txn_global, and calls txn_* for the public functions that
 * take a txkv_db.  src/txn/README gives the rules (MVCC, commit, isolation).
 *
 * Concurrency: a transaction is used by one thread at a time (any thread).
 * Every public entry resolves its handle with txn_enter and ends with
 * txn_leave: stale handles are refused in every build, and a second thread
 * inside a call on the same transaction is caught (exactly in debug builds,
 * best effort in release builds; see txn_enter).
 */
#ifndef TXKV_TXN_TXN_H
#define TXKV_TXN_TXN_H

#include <assert.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/handle.h"
#include "gc/gc.h"
#include "lock/lock.h"
#include "record/keyspace.h"
#include "record/record.h"
#include "txkv.h"
#include "wal/wal.h"

/* The database-wide part of the transaction layer (in struct txkv_db). */
struct txn_global {
    struct record_store *store;
    struct ks_set *ks;
    struct lock_mgr *lm;
    struct gc *gc;
    struct txkv_txn *_Atomic txns; /* every transaction object, push-only */
    _Atomic uint64_t next_id;      /* txkv_txn_id / lock owner ids */
    _Atomic latch_t next_token;    /* latch tokens of transaction objects */
    uint64_t db_id;                /* unique per open, for thread-local hints */
    int isolation, cc;             /* defaults */
    uint64_t lock_timeout_us;
    bool skip_validation; /* tests only: txn_test_skip_validation */
    struct wal *wal;      /* WAL hook: the log, NULL in memory (src/wal/) */
};

/* A buffered write: key -> new version (tomb for a delete). */
struct wentry {
    struct txkv_ks *ks;
    struct record *rec; /* resolved at commit (pessimistic: at the write) */
    uint64_t hv;
    const uint8_t *key; /* copy in the txn arena */
    uint32_t klen;
    bool latched;        /* commit holds rec's latch */
    bool made;           /* commit created rec (empty until installed) */
    struct version *ver; /* allocated at put, linked at commit */
};

/* A read that must still hold at commit: key's newest version ts <= read_ts. */
struct rentry {
    struct txkv_ks *ks;
    struct record *rec; /* NULL: the key had no record */
    const uint8_t *key; /* arena copy when rec is NULL */
    uint32_t klen;
    uint64_t hv;
    uint64_t read_ts;
};

/* A savepoint: the write set as it was (src/txn/savepoint.c). */
struct savepoint {
    uint32_t id;   /* from t->next_sp: never reused on this object */
    size_t nws;    /* write-set entries then */
    size_t nundo;  /* undo records then */
    size_t wbytes; /* t->wbytes then */
};

/* A write-set entry's version replaced while a savepoint covered it: old
 * comes back if the savepoint is rolled back to. */
struct undo {
    size_t idx;          /* into ws */
    struct version *old; /* owned by the undo log until restored */
};

/* A scanned key range that must be unchanged at commit (SERIALIZABLE). */
struct rangeentry {
    struct txkv_ks *ks;
    const uint8_t *lo, *hi; /* arena copies; NULL = unbounded */
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
 * g->txns for its whole life and reused, so the GC can read every pin
 * without a lock and without the object ever vanishing.  The first cache
 * line holds what other threads read (pin, in_use, counters); the rest is
 * touched only by the thread that uses the transaction at the moment.
 */
struct txkv_txn {
    struct gc_pin pin; /* registered with the GC once */
    _Atomic int in_use;
    _Atomic uint64_t begin_ns; /* now_ns() at begin, for stats */
    struct txkv_txn *all_next; /* g->txns, immutable once linked */
    /* per-object counters, summed by txkv_stats */
    _Atomic uint64_t n_commits, n_conflict, n_full, n_user, n_since_horizon, n_deadlock, n_timeout,
        n_rdonly_abort;

    struct txn_global *g __attribute__((aligned(64)));
    uint64_t begin_ts;
    int isolation, cc;
    unsigned flags;
    int failed; /* 0, or the code that failed the txn */
    /*
     * gen << 1 | busy.  gen: the generation that handles of the current
     * transaction carry (base/handle.h); bumped when it ends, so older
     * handles are stale.  busy: a call is inside (txn_enter).  Written by
     * the thread using the transaction; read by anyone holding a handle.
     */
    _Atomic uint64_t state;

    struct wentry *ws;
    size_t nws, capws;
    uint32_t *wmap; /* open addressing: index+1 into ws, 0 = empty */
    size_t wmap_cap;
    uint32_t *wsorted; /* ws indices by (ks, key), for cursors */
    size_t nsorted, capsorted;
    bool sorted_valid;
    size_t wbytes; /* bytes the writes will add when installed */

    struct rentry *rs;
    size_t nrs, caprs;
    struct rangeentry *ranges;
    size_t nranges, capranges;

    struct lock_owner lk; /* pessimistic locks (src/lock/) */
    struct limbo limbo;   /* versions its commits cut off (record.c) */

    struct arena_chunk *arena;
    struct version *superseded;      /* own writes replaced by later ones: a get may
                                        still point into them, freed at the end */
    struct txkv_cursor *cursors;     /* open cursors, closed with the txn */
    struct txkv_cursor *cursor_pool; /* closed cursor objects, kept for reuse:
                                        stale cursor handles point here */

    /* Savepoints, oldest first, and the undo log (src/txn/savepoint.c).
     * Invariant: every version the transaction allocated is owned by
     * exactly one of ws[0..nws).ver, the superseded list and
     * undo[0..nundo).old; txn_end frees all three. */
    struct savepoint *sps;
    size_t nsps, capsps;
    struct undo *undo;
    size_t nundo, capundo;
    uint32_t next_sp; /* the last savepoint id given; never reset */

    struct wal_rec wal; /* a durable commit's log record; empty between commits */
};

/* ---- for db.c ------------------------------------------------------------ */

void txn_global_init(struct txn_global *g, const txkv_options *o, uint64_t db_id);
/* Aborts transactions still open (a caller bug txkv_close tolerates). */
void txn_abort_open(struct txn_global *g);
/* Frees every transaction object (close: none in use). */
void txn_global_fini(struct txn_global *g);
int txn_begin(struct txn_global *g, const txkv_txn_options *o, struct txkv_txn **txnp);
int txn_run(struct txn_global *g, const txkv_txn_options *o, int (*fn)(txkv_txn *, void *),
            void *arg, int max_tries);
/* Adds the transaction counters and active-transaction figures to st. */
void txn_stats(struct txn_global *g, struct txkv_stats *st);

/* ---- inside src/txn/ ----------------------------------------------------- */

/* The timestamp t reads at now. */
static inline uint64_t txn_read_ts(struct txkv_txn *t)
{
    if (t->isolation == TXKV_READ_COMMITTED)
        return clock_visible(t->g->store);
    return t->begin_ts;
}

/* Reads that validate (or lock) under SERIALIZABLE: all but read-only ones. */
static inline bool txn_ser_reads(const struct txkv_txn *t)
{
    return t->isolation == TXKV_SERIALIZABLE && !(t->flags & TXKV_RDONLY);
}

/* The handle of t's current transaction. */
static inline struct txkv_txn *txn_handle(struct txkv_txn *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    return (struct txkv_txn *)handle_make(t, (uint32_t)(s >> 1));
}

/* Out of line: why txn_enter refused (stale: TXKV_INVALID; another thread
 * inside: debug builds say so and abort, release builds TXKV_INVALID). */
int txn_enter_refused(struct txkv_txn *t, uint64_t seen, uint64_t want, const char *fn);

/*
 * The start of every public call on a transaction: resolves handle h into
 * *tp and marks the transaction busy.  0, or TXKV_INVALID for a NULL or
 * stale handle, or one another thread is inside a call on.  On 0 the
 * caller ends with txn_leave(*tp).
 *
 * Debug builds take busy with a CAS, so two threads are always caught.
 * Release builds load and store (no read-modify-write, no fence: the word
 * sits on the transaction's own cache line): a second thread that arrives
 * while the first is inside is refused, two that arrive within the same
 * few nanoseconds may both get in.  No false alarms either way: a caller
 * that hands a transaction to another thread synchronises with it, and
 * txn_leave's release store comes before that.
 */
static inline int txn_enter(txkv_txn *h, struct txkv_txn **tp, const char *fn)
{
    struct txkv_txn *t = handle_ptr((uintptr_t)h);
    *tp = t;
    if (!t)
        return TXKV_INVALID;
    uint64_t want = (uint64_t)handle_gen((uintptr_t)h) << 1, seen = want;
#ifndef NDEBUG
    if (atomic_compare_exchange_strong_explicit(&t->state, &seen, want | 1, memory_order_acquire,
                                                memory_order_acquire))
        return 0;
#else
    seen = atomic_load_explicit(&t->state, memory_order_acquire);
    if (seen == want) {
        atomic_store_explicit(&t->state, want | 1, memory_order_relaxed);
        return 0;
    }
#endif
    return txn_enter_refused(t, seen, want, fn);
}

/* The end of a public call that txn_enter let in. */
static inline void txn_leave(struct txkv_txn *t)
{
    uint64_t s = atomic_load_explicit(&t->state, memory_order_relaxed);
    assert(s & 1);
    atomic_store_explicit(&t->state, s & ~(uint64_t)1, memory_order_release);
}

/* The latch token of t's commits and lock waits. */
static inline latch_t txn_token(const struct txkv_txn *t)
{
    return t->lk.latch;
}

/* Keeps v, a buffered version no write-set entry owns any more, until t
 * ends: a get or cursor may have returned a pointer into it. */
static inline void txn_supersede(struct txkv_txn *t, struct version *v)
{
    atomic_store_explicit(&v->next, t->superseded, memory_order_relaxed);
    t->superseded = v;
}

/* n bytes (8-aligned) that live until t ends; NULL if out of memory. */
void *arena_alloc(struct txkv_txn *t, size_t n);
const uint8_t *arena_copy(struct txkv_txn *t, const void *p, size_t n);
/* Fails t with rc (counted) and releases its locks; returns rc. */
int txn_fail(struct txkv_txn *t, int rc);
/* Sorts the write set by (keyspace, key) into t->wsorted, if it can. */
void wset_sort(struct txkv_txn *t);
/* Adds a scanned range to the read set (optimistic SERIALIZABLE). */
int rset_add_range(struct txkv_txn *t, struct txkv_ks *ks, const struct key_range *kr);
/* Hands a record made only for a lock to the GC (lock_release_all's callback). */
void txn_record_empty(struct record *r, struct txkv_ks *ks, void *arg);

/* commit.c: latch, timestamp, validate, install, publish (both schemes). */
int txn_commit_writes(struct txkv_txn *t);

/* Rebuilds the write set's hash map after entries were dropped (rwset.c). */
void wset_rebuild_map(struct txkv_txn *t);

/* rwset.c, the read path's steps (getmany.c batches them). */
/* t's buffered write of k, or NULL. */
struct wentry *wset_find(struct txkv_txn *t, const struct kref *k);
/* 0 if key is a valid key (non-NULL, 1..TXKV_MAX_KEY bytes), else TXKV_INVALID. */
int check_key(const void *key, size_t klen);
/* Checks the arguments common to every access and fills *k (the default
 * keyspace for NULL, the key's hash); 0, or the code to return. */
int access_prepare(struct txkv_txn *t, struct txkv_ks *ks, const void *key, size_t klen,
                   struct kref *k);
/* Records a read of k that found record r (NULL: none) at read_ts, for
 * commit to validate; 0 or TXKV_NOMEM. */
int rset_add(struct txkv_txn *t, const struct kref *k, struct record *r, uint64_t read_ts);
/* The result of a read that found v (NULL or a tombstone: TXKV_NOTFOUND);
 * fills *val and *vlen where not NULL. */
int read_found(const struct version *v, const void **val, size_t *vlen);
/* Reads k as txkv_get (for_update: txkv_get_for_update) does: t's own
 * write, else under a lock or at t's read timestamp.  Outside any RCU
 * read-side section. */
int txn_read(struct txkv_txn *t, const struct kref *k, const void **val, size_t *vlen,
             bool for_update);

/* savepoint.c: before ws[idx]'s version is replaced by a later write, keep
 * old for a savepoint that covers idx.  True if the undo log took old (else
 * the caller puts it on t->superseded).  Never fails: room was reserved by
 * savepoint_reserve. */
bool savepoint_keep(struct txkv_txn *t, size_t idx, struct version *old);
/* Room for one more undo record; 0 or TXKV_NOMEM. */
int savepoint_reserve(struct txkv_txn *t);
/* Drops every savepoint, freeing the versions the undo log owns (end). */
void savepoint_clear(struct txkv_txn *t);

/* cursor.c */
/* Closes t's open cursors (their handles become stale) at the end of t. */
void cursor_close_all(struct txkv_txn *t);
/* Frees every cursor object of t, open or pooled (close of the database). */
void cursor_destroy_all(struct txkv_txn *t);

#endif /* TXKV_TXN_TXN_H */
