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
 * any thread computing the horizon. */
struct gc_pin {
    _Atomic uint64_t ts;
    struct gc_pin *next; /* gc->pins, immutable once linked */
};

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
    struct gc_pin *_Atomic pins;                           /* push-only */

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

/* Unpins: the versions the reader could see may go (release). */
static inline void gc_pin_leave(struct gc_pin *pin)
{
    atomic_store_explicit(&pin->ts, 0, memory_order_release);
}

/* Scans every pin; returns the horizon H and caches max(H, old). */
uint64_t gc_horizon(struct gc *gc);

/* The cached horizon, for pruning as a commit installs. */
static inline uint64_t gc_horizon_cached(struct gc *gc)
{
    /* acquire: pairs with gc_horizon's CAS, which came after its loads of
     * the pins; so a reader's use of a version happens before our cut of
     * it (reader: use, then release its pin; GC: see the pin gone). */
    return atomic_load_explicit(&gc->horizon, memory_order_acquire);
}

#endif /* TXKV_GC_GC_H */
