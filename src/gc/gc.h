/*
 * gc.h - garbage collection: the horizon below which no transaction reads,
 * version pruning, taking tombstoned records out of the indexes, freeing
 * retired records, and the GC thread that does it.  src/txn/README
 * ("Garbage collection") gives the argument.
 *
 * Layer: gc (base <- index <- record <- lock <- gc <- txn <- db).  It knows
 * nothing of transactions: a transaction registers a struct gc_pin and
 * keeps in it a timestamp at or below every timestamp it will read at.
 */
#ifndef TXKV_GC_GC_H
#define TXKV_GC_GC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "lock/lock.h"
#include "record/keyspace.h"
#include "record/record.h"

/* A reader's pin: 0 when inactive.  Written by its reader only, read by
 * any thread computing the horizon.  GC_PIN_EXACT in ts: the reader reads
 * at exactly this timestamp (gc_pin_enter_exact). */
struct gc_pin {
    _Atomic uint64_t ts;
    struct gc_pin *next; /* gc->pins, immutable once linked */
};
#define GC_PIN_EXACT (UINT64_C(1) << 63)

/* What the GC retired in one round, freed once every pin is past tag:
 * records out of the indexes (linked through gc_next) and out-of-line
 * versions that promotion replaced by their inline copy. */
struct gc_gen {
    uint64_t tag;
    struct record *recs;
    struct version **vers;
    size_t nvers;
};

struct gc {
    _Atomic uint64_t horizon __attribute__((aligned(64))); /* largest horizon computed */
    /* The prune bounds of a recent scan, as one pair: a sequence count,
     * odd while a gc_horizon writes them (gc_prune_bounds). */
    _Atomic uint32_t bounds_seq;
    _Atomic uint64_t bound_young, bound_old;
    struct gc_pin *_Atomic pins; /* push-only */

    struct record_store *store;
    struct ks_set *ks;
    struct lock_mgr *lm;

    /* The GC thread's own (no lock): retired generations, oldest first;
     * versions promoted since the last generation; its limbo batch. */
    struct gc_gen *gens;
    size_t ngens, capgens;
    struct version **promoted;
    size_t npromoted, cappromoted;
    struct limbo limbo;
    uint64_t seen_visible;  /* visible_ts at the last round */
    uint64_t visible_moved; /* now_ns() when a round saw it change: idle after GC_IDLE_AFTER_MS */

    pthread_mutex_t mu; /* the thread's sleep; a leaf lock */
    pthread_cond_t cv;
    pthread_t thread;
    bool running, stop;
};

void gc_init(struct gc *gc, struct record_store *store, struct ks_set *ks, struct lock_mgr *lm);
/* Starts / stops the GC thread; gc_start: 0 or TXKV_NOMEM. */
int gc_start(struct gc *gc);
void gc_stop(struct gc *gc);
/* Frees what the GC still held (close: no transactions, no readers). */
void gc_fini(struct gc *gc);

/* Registers pin (once, for the life of the database).  Any thread. */
void gc_pin_register(struct gc *gc, struct gc_pin *pin);

/* Pins a reader: pin = visible_ts, then returns visible_ts read again,
 * the snapshot it may read at (gc.c says why this order).  Outside any
 * RCU read-side section or inside, any thread; the pin is the caller's. */
uint64_t gc_pin_enter(struct gc *gc, struct gc_pin *pin);

/* gc_pin_enter for a reader that reads only at the snapshot returned (a
 * checkpoint): the pin then says so, and pruning may cut the versions
 * between that snapshot's and the younger readers' (version.c, V2). */
uint64_t gc_pin_enter_exact(struct gc *gc, struct gc_pin *pin);

/* Unpins: the versions the reader could see may go (release). */
static inline void gc_pin_leave(struct gc_pin *pin)
{
    atomic_store_explicit(&pin->ts, 0, memory_order_release);
}

/* Scans every pin; returns the horizon H (every reader reads at >= H),
 * caches max(H, old), and publishes the scan's prune bounds. */
uint64_t gc_horizon(struct gc *gc);

/* The cached horizon, for pruning as a commit installs. */
static inline uint64_t gc_horizon_cached(struct gc *gc)
{
    /* acquire: pairs with gc_horizon's CAS, which came after its loads of
     * the pins; so a reader's use of a version happens before our cut of
     * it (reader: use, then release its pin; GC: see the pin gone). */
    return atomic_load_explicit(&gc->horizon, memory_order_acquire);
}

/* The prune bounds of a recent scan, for a commit's installs: read as one
 * pair or not at all.  While a writer is busy, or if one changed them
 * under us, the single cached horizon, always safe.  Never waits. */
static inline struct prune_bounds gc_prune_bounds(struct gc *gc)
{
    /* acquire: pairs with the writer's release store of the even count,
     * made after its loads of the pins (as for gc_horizon_cached) */
    uint32_t s1 = atomic_load_explicit(&gc->bounds_seq, memory_order_acquire);
    /* acquire: the second load of the count comes after these; if either
     * read a newer writer's bound, it sees that writer's odd count */
    struct prune_bounds b = {atomic_load_explicit(&gc->bound_young, memory_order_acquire),
                             atomic_load_explicit(&gc->bound_old, memory_order_acquire)};
    if ((s1 & 1) || atomic_load_explicit(&gc->bounds_seq, memory_order_relaxed) != s1)
        return prune_below(gc_horizon_cached(gc));
    return b;
}

#endif /* TXKV_GC_GC_H */
