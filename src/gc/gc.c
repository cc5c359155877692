/*
 * gc.c - version and record garbage collection.
 *
 * Owns: the GC horizon, the pin list and the GC thread of each database.
 * The queues it works through (tombstones, retired records) belong to the
 * record store (src/record/record.c).  See "Garbage collection" in
 * src/txn/README.
 *
 * Horizon.  Every active reader publishes a pin: a timestamp at or below
 * every timestamp it will read at (gc_pin_enter stores the pin, then loads
 * visible_ts again as the snapshot).  The horizon H is min(visible_ts,
 * every pin), read in that order with seq_cst loads.  A reader that
 * publishes its pin after we scanned its slot loaded its read timestamp
 * after its pin store, hence after our load of visible_ts, so it reads at
 * >= H.  Versions below the newest one with ts <= H are therefore
 * unreachable by every present and future reader except those still
 * inside an RCU section, and go through rcu_defer.
 *
 * Records.  A record whose newest version is a tombstone with ts <= H (or
 * that has no version at all) leaves its indexes: under its latch it is
 * marked dead (if no lock is held or awaited on it), unlinked, and retired
 * with tag = visible_ts.  Transactions may hold pointers to records in
 * their read and write sets outside any RCU section, so a retired record is
 * freed only once every active pin is > tag (every transaction that could
 * have found it has ended), and then after a grace period for readers
 * still in flight.
 *
 * Lock order: gc->mu only guards the thread's sleep; latches are only
 * tried, never waited for, by the GC.
 */
#include "config.h"

#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include "gc/gc.h"

#define GC_PERIOD_MS      10
#define GC_IDLE_PERIOD_MS 50

void gc_init(struct gc *gc, struct record_store *store, struct ks_set *ks, struct lock_mgr *lm)
{
    atomic_init(&gc->horizon, 1);
    atomic_init(&gc->pins, NULL);
    gc->store = store;
    gc->ks = ks;
    gc->lm = lm;
    pthread_mutex_init(&gc->mu, NULL);
    cond_init_monotonic(&gc->cv);
    gc->running = gc->stop = false;
}

void gc_fini(struct gc *gc)
{
    assert(!gc->running);
    pthread_mutex_destroy(&gc->mu);
    pthread_cond_destroy(&gc->cv);
}

void gc_pin_register(struct gc *gc, struct gc_pin *pin)
{
    struct gc_pin *head = atomic_load(&gc->pins);
    do {
        pin->next = head;
    } while (!atomic_compare_exchange_weak(&gc->pins, &head, pin));
}

uint64_t gc_pin_enter(struct gc *gc, struct gc_pin *pin)
{
    struct record_store *s = gc->store;
    /* Pin first, then take the snapshot: see the file comment. */
    atomic_store(&pin->ts, atomic_load(&s->visible_ts));
    return atomic_load(&s->visible_ts);
}

/* The smallest active pin, at most `below` (UINT64_MAX: no bound). */
static uint64_t min_pin(struct gc *gc, uint64_t below)
{
    uint64_t m = below;
    for (struct gc_pin *p = atomic_load(&gc->pins); p; p = p->next) {
        uint64_t ts = atomic_load(&p->ts);
        if (ts && ts < m)
            m = ts;
    }
    return m;
}

uint64_t gc_horizon(struct gc *gc)
{
    uint64_t h = min_pin(gc, atomic_load(&gc->store->visible_ts));
    /* Every reader reads at >= any H ever computed (see the file comment),
     * so keeping the largest is safe and never moves pruning backwards. */
    uint64_t old = atomic_load_explicit(&gc->horizon, memory_order_relaxed);
    while (h > old && !atomic_compare_exchange_weak(&gc->horizon, &old, h))
        ;
    return h;
}

static void record_free_cb(struct rcu_head *h)
{
    RCU_CALLBACK_ENTER();
    struct record *r = container_of_(h, struct record, rcu);
    struct record_store *s = r->ks->store;
    atomic_fetch_add_explicit(&s->gc_freed, 1, memory_order_relaxed);
    record_free_now(s, r);
    RCU_CALLBACK_EXIT();
}

enum gc_outcome { GC_KEEP, GC_REMOVED, GC_REVIVED };

/* Takes r out of its indexes if its newest version is an old tombstone. */
static enum gc_outcome gc_try_remove(struct gc *gc, struct record *r, uint64_t h)
{
    if (!latch_try(r, LATCH_GC))
        return GC_KEEP;
    struct version *v = atomic_load_explicit(&r->head, memory_order_relaxed);
    if (v && !v->tomb) { /* written again since: nothing to do */
        latch_release(r);
        return GC_REVIVED;
    }
    if (v && v->ts > h) { /* some snapshot may still see the older value */
        latch_release(r);
        return GC_KEEP;
    }
    /* A record with pessimistic locks or waiters stays. */
    bool dead = lock_mark_dead_if_free(gc->lm, r);
    latch_release(r);
    if (!dead)
        return GC_KEEP;
    struct txkv_ks *ks = r->ks;
    rcu_read_enter();
    ks_unlink(ks, r);
    rcu_read_leave();
    atomic_fetch_sub_explicit(&ks->nrecords, 1, memory_order_relaxed);
    return GC_REMOVED;
}

static void gc_process_tombstones(struct gc *gc, struct record *list, uint64_t h)
{
    struct record *keep = NULL;
    while (list) {
        struct record *r = list;
        list = r->gc_next;
        switch (gc_try_remove(gc, r, h)) {
        case GC_KEEP:
            r->gc_next = keep;
            keep = r;
            break;
        case GC_REMOVED:
            record_retire(gc->store, r);
            break;
        case GC_REVIVED:
            record_unqueue(gc->store, r);
            break;
        }
    }
    record_requeue(gc->store, keep, true);
}

static void gc_process_retired(struct gc *gc, struct record *list)
{
    uint64_t m = min_pin(gc, UINT64_MAX);
    struct record *keep = NULL;
    while (list) {
        struct record *r = list;
        list = r->gc_next;
        if (r->retire_ts < m) {
            rcu_defer(&r->rcu, record_free_cb);
        } else {
            r->gc_next = keep;
            keep = r;
        }
    }
    record_requeue(gc->store, keep, false);
}

static void prune_one(struct record *r, void *arg)
{
    uint64_t h = *(const uint64_t *)arg;
    struct version *v = atomic_load_explicit(&r->head, memory_order_acquire);
    if (!v || !atomic_load_explicit(&v->next, memory_order_acquire))
        return;
    if (latch_try(r, LATCH_GC)) {
        version_prune(r, h);
        latch_release(r);
    }
}

/* Prunes every chain: after long snapshots end, versions they pinned on keys
 * nobody writes again would otherwise stay. */
static void gc_sweep(struct gc *gc, uint64_t h)
{
    for (struct txkv_ks *ks = ks_first(gc->ks); ks; ks = ks->next)
        ks_for_each_record(ks, prune_one, &h);
}

/*
 * Keeps each hash table sized to its population.  liburcu's automatic
 * resize can get stuck (src/index/hash.c explains the race); resizing
 * explicitly when the population has doubled or halved both sizes the
 * table and unsticks it.  O(n) per call, amortised over n/2 inserts.
 */
static void gc_maintain_hashes(struct gc *gc)
{
    for (struct txkv_ks *ks = ks_first(gc->ks); ks; ks = ks->next) {
        int64_t n = atomic_load_explicit(&ks->nrecords, memory_order_relaxed);
        if (!ks->hash || (n < 2 * ks->maintained_at + 1024 && 2 * n + 1024 > ks->maintained_at))
            continue;
        hash_maintain(ks->hash);
        ks->maintained_at = n;
    }
}

/* One round of the GC thread; returns true if it found nothing to do. */
static bool gc_round(struct gc *gc, uint64_t *swept_at)
{
    struct record_store *s = gc->store;
    uint64_t h = gc_horizon(gc);
    gc_maintain_hashes(gc);
    struct record *tombs = record_take_tombstones(s);
    if (tombs)
        gc_process_tombstones(gc, tombs, h);
    /* after the tombstones: what they retired may go in this round */
    struct record *retired = record_take_retired(s);
    bool work = tombs || retired;
    gc_process_retired(gc, retired);
    int64_t nv = atomic_load_explicit(&s->nversions, memory_order_relaxed);
    int64_t nk = atomic_load_explicit(&s->nkeys, memory_order_relaxed);
    if (nv > 2 * nk + 4096 && h > *swept_at) {
        gc_sweep(gc, h);
        *swept_at = h;
    }
    return !work && h == *swept_at;
}

static void *gc_main(void *arg)
{
    struct gc *gc = arg;
    uint64_t swept_at = 0;
    bool idle = false;
    pthread_mutex_lock(&gc->mu);
    while (!gc->stop) {
        struct timespec deadline;
        deadline_after(&deadline, (idle ? GC_IDLE_PERIOD_MS : GC_PERIOD_MS) * 1000u);
        pthread_cond_timedwait(&gc->cv, &gc->mu, &deadline);
        if (gc->stop)
            break;
        pthread_mutex_unlock(&gc->mu);
        idle = gc_round(gc, &swept_at);
        pthread_mutex_lock(&gc->mu);
    }
    pthread_mutex_unlock(&gc->mu);
    return NULL;
}

int gc_start(struct gc *gc)
{
    if (pthread_create(&gc->thread, NULL, gc_main, gc) != 0)
        return TXKV_NOMEM;
    gc->running = true;
    return 0;
}

void gc_stop(struct gc *gc)
{
    if (!gc->running)
        return;
    pthread_mutex_lock(&gc->mu);
    gc->stop = true;
    pthread_cond_signal(&gc->cv);
    pthread_mutex_unlock(&gc->mu);
    pthread_join(gc->thread, NULL);
    gc->running = false;
}
